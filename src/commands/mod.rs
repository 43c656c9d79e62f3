//! The command table and the types handlers are written against.
//!
//! The table is data: name, arity, flags, key positions, and how the command runs across
//! shards. Dispatch, COMMAND INFO/DOCS/GETKEYS, key extraction and the auth check all read it.
//! Handlers live by family: `connection.rs`, `strings.rs`, `keyspace.rs`, `server.rs`,
//! `cluster.rs`, `bits.rs`, `hyperloglog.rs`, `lcs.rs` (`gather.rs` collects the values of
//! keys on several shards for BITOP, PFCOUNT, PFMERGE and LCS).

pub mod acl;
pub mod bits;
pub mod cluster;
pub mod connection;
pub mod dump;
pub mod gather;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keyspace;
pub mod lcs;
pub mod lists;
pub mod memory;
pub mod multi;
pub mod multikey;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod table;
pub mod zsets;

use crate::shard::ShardData;
use percore_net::resp::{Protocol, ReplyWriter};
use std::collections::HashMap;
use std::sync::OnceLock;

pub use table::COMMANDS;

/// Command flags, as Redis's `COMMAND INFO` names them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const SKIP_MONITOR: u32 = 1 << 7;
    pub const SKIP_SLOWLOG: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MAY_REPLICATE: u32 = 1 << 11;
    pub const NO_MULTI: u32 = 1 << 12;
    pub const ALLOW_BUSY: u32 = 1 << 13;
    pub const PUBSUB: u32 = 1 << 14;
    pub const BLOCKING: u32 = 1 << 15;
    /// Not set in the table: COMMAND INFO adds it from the key specs
    /// ([`super::Command::movable_keys`]).
    pub const MOVABLE_KEYS: u32 = 1 << 16;
    /// Served on an importing slot without a preceding ASKING (RESTORE-ASKING).
    pub const ASKING: u32 = 1 << 17;
    /// Refused unless `enable-debug-command` (DEBUG) allows it; not shown by COMMAND INFO
    /// (Redis's `CMD_PROTECTED`).
    pub const PROTECTED: u32 = 1 << 18;
    /// Takes keys but may be given none (EVAL, FCALL and their variants): COMMAND
    /// GETKEYS answers an empty array then (Redis's `CMD_NO_MANDATORY_KEYS`).
    pub const NO_MANDATORY_KEYS: u32 = 1 << 19;
    /// Refused during an async load in Redis (`CMD_NO_ASYNC_LOADING`); percore loads
    /// synchronously, so it is only shown by COMMAND INFO.
    pub const NO_ASYNC_LOADING: u32 = 1 << 20;

    /// Names in the order Redis prints them.
    pub const NAMES: [(u32, &str); 19] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        // `may_replicate` is hidden on purpose, as in Redis.
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// What a handler sees: its shard, the database and protocol of the client it serves.
pub struct Ctx<'a> {
    pub shard: &'a mut ShardData,
    pub db: usize,
    pub proto: Protocol,
    /// The client, when the command runs on the client's own shard.
    pub client: Option<&'a mut crate::client::Client>,
}

impl Ctx<'_> {
    /// Publishes keyspace event `name` of `class` on `key` of this database (Redis's
    /// `notifyKeyspaceEvent`); one flag test when the class is off (`crate::notify`).
    #[inline]
    pub fn notify(&mut self, class: u32, name: &str, key: &[u8]) {
        crate::notify::event(self.shard, class, name, key, self.db);
    }
}

/// A handler that writes its reply directly.
pub type Handler = fn(&mut Ctx, &[&[u8]], &mut ReplyWriter);
/// One shard's part of a multi-shard command.
pub type PartFn = fn(&mut Ctx, &[&[u8]]) -> Partial;
/// Combines the shards' parts into the reply.
pub type MergeFn = fn(&mut Gather, &mut ReplyWriter);

/// How a command runs across shards.
#[derive(Clone, Copy)]
pub enum Exec {
    /// Runs on the client's own shard with its connection state (no keys).
    Client(Handler),
    /// Runs on the shard that owns the key; with several keys, all must live on one shard,
    /// else `cross` runs (or a CROSSSLOT-like error when there is none).
    Keyed(Handler),
    /// The keys are split by shard; each shard runs `part` on `[name, its keys (with their
    /// values, per the key step)...]`, then `merge` builds the reply in key order.
    Split { part: PartFn, merge: MergeFn },
    /// Every shard runs `part` on the full argv, then `merge` builds the reply.
    All { part: PartFn, merge: MergeFn },
    /// A chain of steps: the first runs on the client's shard; each answers with
    /// [`Partial::Encoded`] (the reply) or [`Partial::Hop`] (the next step, on another
    /// shard). SCAN follows its cursor's shard this way; RENAME, COPY and MSETNX carry
    /// values between shards.
    Hop(PartFn),
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH: they run at once inside MULTI, and EXEC and
    /// WATCH may involve other shards (`commands::multi`).
    Multi(multi::Op),
}

/// One entry of the command table.
pub struct Command {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: exact count if positive, minimum count if negative (name included).
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    /// Last key position; negative counts from the end (-1 = last argument).
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub exec: Exec,
    /// `(name, arity, flags)` of subcommands for COMMAND INFO of container commands.
    pub subcommands: &'static [(&'static str, i32, u32)],
    /// Redis's key specs, for commands whose keys are not the legacy `first_key..last_key`
    /// range (empty: one spec derived from the range).
    pub key_specs: &'static [KeySpec],
    /// Redis's `getkeys_proc`: finds the keys when the specs cannot (an `unknown` spec,
    /// or an invalid `numkeys`).
    pub getkeys: Option<GetKeysFn>,
}

/// Key positions with their flags (`RO`, `access`, ...), as a `getkeys_proc` finds them.
pub type GetKeysFn = fn(&[&[u8]]) -> Vec<(usize, &'static [&'static str])>;

/// Where a key spec's keys begin (`begin_search`).
#[derive(Clone, Copy, Debug)]
pub enum Begin {
    /// At this argument.
    Index(i32),
    /// After the last (or first) occurrence of a keyword.
    #[allow(dead_code, reason = "for XREAD STREAMS, MIGRATE KEYS and the like")]
    Keyword {
        keyword: &'static str,
        startfrom: i32,
    },
    /// Not knowable from the arguments (SORT's BY/GET and STORE).
    Unknown,
}

/// How many keys a key spec takes from where they begin (`find_keys`).
#[derive(Clone, Copy, Debug)]
pub enum Find {
    /// Up to `lastkey` (relative; negative from the end) every `keystep`.
    Range {
        lastkey: i32,
        keystep: i32,
        limit: i32,
    },
    /// A count at `keynumidx`, keys from `firstkey` every `keystep` (relative to begin).
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        keystep: i32,
    },
    Unknown,
}

/// One of Redis's key specs (COMMAND INFO's `key_specs`, COMMAND GETKEYS).
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub find: Find,
}

/// The legacy key positions of a command, as an iterator.
#[derive(Clone, Debug)]
pub struct LegacyKeys {
    next: i32,
    last: i32,
    step: i32,
}

impl Iterator for LegacyKeys {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.next > self.last {
            return None;
        }
        let p = self.next;
        self.next += self.step;
        Some(p as usize)
    }
}

/// Redis's `atoi`: optional blanks and sign, then digits, stopping at the first other byte.
fn atoi(b: &[u8]) -> i64 {
    let t = b.trim_ascii_start();
    let (neg, digits) = match t.split_first() {
        Some((b'-', r)) => (true, r),
        Some((b'+', r)) => (false, r),
        _ => (false, t),
    };
    let v = digits
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |v, c| {
            v.saturating_mul(10).saturating_add(i64::from(c - b'0'))
        });
    if neg { -v } else { v }
}

/// Redis's `genericGetKeys`: `count` keys from `first` every `step` (the count at
/// `count_at`, read with `atoi`), then the destination at `store` (0: none); no keys when
/// the count is not between 1 and the arguments left. The keys carry no flags.
pub fn numkeys_getkeys(
    argv: &[&[u8]],
    store: usize,
    count_at: usize,
    first: usize,
    step: usize,
) -> Vec<(usize, &'static [&'static str])> {
    let Some(num) = argv.get(count_at).map(|c| atoi(c)) else {
        return Vec::new();
    };
    if num < 1 || num > (argv.len().saturating_sub(first) / step) as i64 {
        return Vec::new();
    }
    let mut keys: Vec<(usize, &'static [&'static str])> = (0..num as usize)
        .map(|i| (first + i * step, &[][..]))
        .collect();
    if store > 0 {
        keys.push((store, &[]));
    }
    keys
}

impl Command {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether this command, or its subcommand `argv[1]` (a container's: FUNCTION LOAD,
    /// XGROUP CREATE), has `flag`, as Redis checks the subcommand's own flags.
    pub fn sub_has(&self, argv: &[&[u8]], flag: u32) -> bool {
        self.has(flag)
            || argv.get(1).is_some_and(|sub| {
                self.subcommands.iter().any(|(full, _, fl)| {
                    fl & flag != 0
                        && full
                            .split_once('|')
                            .is_some_and(|(_, s)| s.as_bytes().eq_ignore_ascii_case(sub))
                })
            })
    }

    /// Whether `argc` (name included) satisfies the arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Positions of the legacy-range key arguments in `argc` arguments.
    #[inline]
    pub fn key_positions(&self, argc: usize) -> LegacyKeys {
        let argc = argc as i32;
        let (first, step) = (self.first_key, self.step.max(1));
        let last = if first <= 0 {
            -1
        } else if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key.min(argc - 1)
        };
        LegacyKeys {
            next: first.max(1),
            last,
            step,
        }
    }

    /// COMMAND INFO's `movablekeys`: a `getkeys_proc`, or a key spec that is not an
    /// index and a range (Redis's `populateCommandMovableKeys`).
    pub fn movable_keys(&self) -> bool {
        self.getkeys.is_some()
            || self
                .key_specs
                .iter()
                .any(|k| !matches!((k.begin, k.find), (Begin::Index(_), Find::Range { .. })))
    }

    /// Whether the command takes keys at all (Redis's `doesCommandHaveKeys`).
    pub fn has_keys(&self) -> bool {
        self.first_key > 0 || !self.key_specs.is_empty() || self.getkeys.is_some()
    }

    /// The legacy flags of a spec derived from the key range.
    pub fn range_flags(&self) -> &'static [&'static str] {
        if self.has(flags::WRITE) {
            &["RW", "update"]
        } else {
            &["RO", "access"]
        }
    }

    /// Every key of a request with its flags, as Redis's `getKeysFromCommandWithSpecs`:
    /// from the key specs when they all resolve, else the `getkeys_proc`.
    pub fn keys_with_flags(&self, argv: &[&[u8]]) -> Vec<(usize, &'static [&'static str])> {
        if self.key_specs.is_empty() && self.getkeys.is_none() {
            let f = self.range_flags();
            return self.key_positions(argv.len()).map(|p| (p, f)).collect();
        }
        // A command with a getkeys procedure and no spec (EVAL, FCALL...) uses it.
        if !self.key_specs.is_empty()
            && let Some(keys) = keys_from_specs(self.key_specs, argv)
        {
            return keys;
        }
        self.getkeys.map_or_else(Vec::new, |g| g(argv))
    }

    /// The key positions of a request (the movable ones included), for routing.
    #[inline]
    pub fn keys_of(&self, argv: &[&[u8]]) -> KeysOf {
        if self.key_specs.is_empty() && self.getkeys.is_none() {
            KeysOf::Legacy(self.key_positions(argv.len()))
        } else {
            let keys: Vec<usize> = self
                .keys_with_flags(argv)
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            KeysOf::Listed(keys.into_iter())
        }
    }

    /// This command's position in [`COMMANDS`], for per-command statistics.
    pub fn index(&'static self) -> usize {
        let base = COMMANDS.as_ptr() as usize;
        let me = std::ptr::from_ref(self) as usize;
        (me - base) / std::mem::size_of::<Command>()
    }
}

/// The key positions of a request: the legacy range, or a list found by the key specs.
pub enum KeysOf {
    Legacy(LegacyKeys),
    Listed(std::vec::IntoIter<usize>),
}

impl Iterator for KeysOf {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            KeysOf::Legacy(k) => k.next(),
            KeysOf::Listed(k) => k.next(),
        }
    }
}

/// Redis's `getKeysUsingKeySpecs` without partial results: `None` when a spec is
/// `unknown` or does not fit the arguments (a bad `numkeys`).
pub(crate) fn keys_from_specs(
    specs: &[KeySpec],
    argv: &[&[u8]],
) -> Option<Vec<(usize, &'static [&'static str])>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs {
        // An incomplete spec sends Redis to the command's getkeys procedure.
        if spec.flags.contains(&"incomplete") {
            return None;
        }
        let first = match spec.begin {
            Begin::Index(i) => i64::from(i),
            Begin::Keyword { keyword, startfrom } => {
                let found = if startfrom > 0 {
                    (i64::from(startfrom)..argc - 1).find(|&i| eq_ic(argv[i as usize], keyword))
                } else {
                    (1..=argc + i64::from(startfrom))
                        .rev()
                        .find(|&i| eq_ic(argv[i as usize], keyword))
                };
                // A keyword that is absent: this spec names no key (GEORADIUS without
                // STORE).
                let Some(found) = found else { continue };
                found + 1
            }
            Begin::Unknown => return None,
        };
        if first >= argc {
            return None;
        }
        let (first, last, step) = match spec.find {
            Find::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + i64::from(lastkey)
                } else if limit == 0 {
                    argc + i64::from(lastkey)
                } else {
                    first + (argc - first) / i64::from(limit) + i64::from(lastkey)
                };
                (first, last, i64::from(keystep))
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                let at = first + i64::from(keynumidx);
                let n = argv
                    .get(at as usize)
                    .and_then(|a| parse_i64(a))
                    .filter(|&n| n >= 0)?;
                let f = first + i64::from(firstkey);
                // A huge count (any i64 from the client) names keys past the end.
                (f, f.saturating_add(n).saturating_sub(1), i64::from(keystep))
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, spec.flags));
            i += step.max(1);
        }
    }
    Some(keys)
}

/// A shard's answer to its part of a multi-shard command.
#[derive(Debug)]
pub enum Partial {
    /// A complete encoded reply (single-shard commands run remotely).
    Encoded(Vec<u8>),
    Int(i64),
    /// One value per key, in the order the keys were sent (MGET).
    Values(Vec<Option<Vec<u8>>>),
    /// Keys (KEYS, SCAN, RANDOMKEY).
    Keys(Vec<Vec<u8>>),
    /// Text lines (INFO sections).
    Text(String),
    /// Nothing to report beyond success.
    Unit,
    /// An error reply text (without the leading '-').
    #[allow(
        dead_code,
        reason = "no shard part fails on its own yet; merges already handle it"
    )]
    Error(String),
    /// An [`Exec::Hop`] command's reply comes later, from the snapshot machinery.
    Defer(crate::snapshot::Op),
    /// A blocking command found nothing to take: the client's shard makes it wait
    /// (`blocking::block`), or answers it at once where it cannot wait (MULTI, scripts:
    /// `blocking::answer_without_blocking`).
    Block(Box<crate::blocking::BlockSpec>),
    /// An [`Exec::Hop`] command continues with `step` on `shard`.
    Hop {
        shard: usize,
        step: PartFn,
        argv: crate::shard::Argv,
    },
}

/// The state of a multi-shard command while its parts come back.
pub struct Gather {
    pub cmd: &'static Command,
    /// Per shard: its part, once it arrived.
    pub parts: Vec<Option<Partial>>,
    /// Per shard: the positions (0-based among the keys) of the keys it was sent.
    pub key_map: Vec<Vec<u32>>,
    pub nkeys: usize,
    pub remaining: usize,
    /// Arguments the merge needs (e.g. SCAN's COUNT, the original argv for INFO).
    pub argv: Vec<Vec<u8>>,
    /// CLIENT REPLY OFF/SKIP: merge (it may have effects) but drop the reply.
    pub discard: bool,
    /// The protocol the command was read under: the merged reply is encoded in it, even
    /// when a later HELLO of the same pipeline switched the connection's protocol before
    /// the parts came back.
    pub proto: Protocol,
}

impl Gather {
    /// The subcommand (`argv[1]`) in lower case; empty when there is none.
    pub fn subcommand(&self) -> Vec<u8> {
        self.argv
            .get(1)
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

/// FNV-1a: command names are short, trusted (the table's own), and looked up once per
/// request, where SipHash's setup cost would dominate.
#[derive(Default)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type NameMap = HashMap<&'static [u8], &'static Command, std::hash::BuildHasherDefault<NameHasher>>;

fn lookup_table() -> &'static NameMap {
    static MAP: OnceLock<NameMap> = OnceLock::new();
    MAP.get_or_init(|| COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect())
}

/// Longest command name percore knows; longer names are unknown without a lookup.
const MAX_COMMAND_NAME_BYTES: usize = 32;

/// Finds a command by name, case-insensitively, without allocating.
#[inline]
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    if name.len() > MAX_COMMAND_NAME_BYTES {
        return None;
    }
    let mut buf = [0u8; MAX_COMMAND_NAME_BYTES];
    let lower = &mut buf[..name.len()];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    lookup_table().get(&*lower).copied()
}

/// Writes `ERR unknown command '<name>', with args beginning with: '<a>' '<b>' ` as Redis 7.
pub fn unknown_command(argv: &[&[u8]], out: &mut ReplyWriter) {
    let mut msg = String::from("ERR unknown command '");
    msg.push_str(&trunc_lossy(argv[0], 128));
    msg.push_str("', with args beginning with: ");
    for a in argv.iter().skip(1) {
        if msg.len() >= 128 {
            break;
        }
        let room = 128usize.saturating_sub(msg.len());
        msg.push('\'');
        msg.push_str(&trunc_lossy(a, room));
        msg.push_str("' ");
    }
    out.error(&msg);
}

/// The Redis text for a wrong argument count.
pub fn wrong_arity(name: &str, out: &mut ReplyWriter) {
    out.error(&format!(
        "ERR wrong number of arguments for '{name}' command"
    ));
}

/// Lossy UTF-8 of at most `max` bytes of `b`.
pub fn trunc_lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

/// Redis's shared error texts.
pub mod errors {
    pub const SYNTAX: &str = "ERR syntax error";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    pub const NOAUTH: &str = "NOAUTH Authentication required.";
}

/// Parses a Redis integer argument (strict, as `string2ll`).
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    percore_engine::number::parse_i64_strict(arg)
}

/// Whether `a` equals the ASCII word `word` case-insensitively.
#[inline]
pub fn eq_ic(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_found_by_name_in_any_case() {
        for c in COMMANDS {
            assert_eq!(lookup(c.name.as_bytes()).map(|x| x.name), Some(c.name));
            let upper = c.name.to_ascii_uppercase();
            assert_eq!(lookup(upper.as_bytes()).map(|x| x.name), Some(c.name));
            assert!(c.name.len() <= MAX_COMMAND_NAME_BYTES);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
        }
        assert!(lookup(b"nosuchcommand").is_none());
    }

    #[test]
    fn names_are_unique_and_indices_match() {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in COMMANDS.iter().enumerate() {
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn key_positions_follow_the_table() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let mget = lookup(b"mget").unwrap();
        assert_eq!(mget.key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.key_positions(2).collect::<Vec<_>>(), vec![1]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_positions(2).count(), 0);
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let mut out = Vec::new();
        let mut w = ReplyWriter {
            out: &mut out,
            proto: Protocol::Resp2,
        };
        unknown_command(&[b"foo", b"a", b"b"], &mut w);
        assert_eq!(
            out,
            b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
        );
    }
}
