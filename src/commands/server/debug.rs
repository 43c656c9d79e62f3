//! DEBUG and its subcommands (HELP lists them, in Redis 7.0's order and words). DEBUG runs
//! on every shard: POPULATE has each shard create the keys it owns, SET-ACTIVE-EXPIRE flips
//! every shard's flag, HTSTATS joins every shard's tables, a key's subcommands answer from
//! the key's shard. RELOAD and LOADAOF run at a barrier of all shards (`snapshot`).

use super::super::{Ctx, Gather, Partial, eq_ic, errors, parse_i64};
use super::{digest, local_only, write_encoded};
use percore_engine::db::SetExpire;
use percore_engine::table::BucketStats;
use percore_engine::value::Value;
use percore_net::resp::ReplyWriter;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: RESTORE takes payloads whatever their checksum
/// (process-wide, as Redis's `skip_checksum_validation`).
static SKIP_CHECKSUM_VALIDATION: AtomicBool = AtomicBool::new(false);

/// DEBUG PAUSE-CRON 1: the shards' periodic client work (memory peaks, query buffers,
/// client eviction on the tick) stops until DEBUG PAUSE-CRON 0.
static CRON_PAUSED: AtomicBool = AtomicBool::new(false);

/// Whether DEBUG PAUSE-CRON 1 is in force.
pub fn cron_paused() -> bool {
    CRON_PAUSED.load(Ordering::Relaxed)
}

/// Whether DEBUG SET-SKIP-CHECKSUM-VALIDATION 1 is in force.
pub fn skip_checksum_validation() -> bool {
    SKIP_CHECKSUM_VALIDATION.load(Ordering::Relaxed)
}

const HELP: &[&str] = &[
    "ASSERT",
    "    Crash by assertion failed.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "OBJECT <key>",
    "    Show low level info about the key and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
];

/// The most keys one DEBUG POPULATE may ask for.
const POPULATE_MAX_KEYS: i64 = 1 << 40;

fn syntax_error(argv: &[&[u8]], w: &mut ReplyWriter) {
    w.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        super::super::trunc_lossy(argv[1], 128)
    ));
}

pub fn debug_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sub = argv[1];
    if eq_ic(sub, "HELP") && argv.len() == 2 {
        local_only(ctx, |w| super::help_reply(w, "DEBUG", HELP))
    } else if eq_ic(sub, "ASSERT") && argv.len() == 2 {
        // Redis's way to test crash reports: the client's shard fails an assertion, which
        // writes the report naming this command and aborts the server.
        assert!(ctx.client.is_none(), "DEBUG ASSERT");
        Partial::Unit
    } else if eq_ic(sub, "SLEEP") && argv.len() == 3 {
        if ctx.client.is_none() {
            return Partial::Unit;
        }
        let secs: f64 = std::str::from_utf8(argv[2])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0);
        if secs > 0.0 && secs.is_finite() {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
        }
        local_only(ctx, super::reply_ok)
    } else if eq_ic(sub, "SET-ACTIVE-EXPIRE") && argv.len() == 3 {
        ctx.shard.active_expire = parse_i64(argv[2]).unwrap_or(0) != 0;
        local_only(ctx, super::reply_ok)
    } else if eq_ic(sub, "POPULATE") && (3..=5).contains(&argv.len()) {
        populate(ctx, argv)
    } else if eq_ic(sub, "OBJECT") && argv.len() == 3 {
        debug_object(ctx, argv)
    } else if eq_ic(sub, "PROTOCOL") && argv.len() == 3 {
        let name = argv[2];
        local_only(ctx, |w| protocol_sample(w, name))
    } else if eq_ic(sub, "RELOAD") {
        // A valid RELOAD runs at a barrier (`snapshot::intercept`); here only bad options.
        local_only(ctx, |w| {
            w.error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        })
    } else if eq_ic(sub, "LOADAOF") {
        // A client's LOADAOF runs at a barrier (`snapshot::intercept`); not one queued in
        // a transaction or called from a script, which cannot wait for one.
        local_only(ctx, |w| {
            w.error("ERR DEBUG LOADAOF is not allowed inside a transaction or a script");
        })
    } else if eq_ic(sub, "DIGEST") && argv.len() == 2 {
        digest_part(ctx)
    } else if eq_ic(sub, "DIGEST-VALUE") {
        digest_value_part(ctx, argv)
    } else if eq_ic(sub, "QUICKLIST-PACKED-THRESHOLD") && argv.len() == 3 {
        let size = std::str::from_utf8(argv[2])
            .ok()
            .and_then(crate::config::parse_memory_public);
        let ok = size.is_some_and(percore_engine::lists::set_packed_threshold);
        local_only(ctx, |w| {
            if ok {
                w.ok();
            } else {
                w.error("ERR argument must be a memory value bigger than 1 and smaller than 4gb");
            }
        })
    } else if eq_ic(sub, "SET-SKIP-CHECKSUM-VALIDATION") && argv.len() == 3 {
        SKIP_CHECKSUM_VALIDATION.store(atoi(argv[2]) != 0, Ordering::Relaxed);
        local_only(ctx, super::reply_ok)
    } else if eq_ic(sub, "HTSTATS") && argv.len() == 3 {
        htstats_part(ctx, argv[2])
    } else if (eq_ic(sub, "HTSTATS-KEY") || eq_ic(sub, "LISTPACK")) && argv.len() == 3
        || eq_ic(sub, "QUICKLIST") && (argv.len() == 3 || argv.len() == 4)
    {
        key_structure(ctx, argv)
    } else if eq_ic(sub, "REPLYBUFFER") && argv.len() == 4 {
        let (what, arg) = (argv[2], argv[3]);
        local_only(ctx, |w| {
            // percore's reply buffers are per-shard and pooled: no per-client peak to
            // reset or resize. The forms are checked and accepted, as Redis's.
            if eq_ic(what, "PEAK-RESET-TIME") {
                if eq_ic(arg, "NEVER") || eq_ic(arg, "RESET") || parse_i64(arg).is_some() {
                    w.ok();
                } else {
                    w.error(errors::NOT_INTEGER);
                }
            } else if eq_ic(what, "RESIZING") {
                w.ok();
            } else {
                syntax_error(argv, w);
            }
        })
    } else if eq_ic(sub, "ERROR") && argv.len() == 3 {
        let text: Vec<u8> = argv[2]
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        local_only(ctx, |w| w.error(&String::from_utf8_lossy(&text)))
    } else if eq_ic(sub, "LOG") && argv.len() == 3 {
        if ctx.client.is_some() {
            let msg = String::from_utf8_lossy(argv[2]);
            ctx.shard.shared.warning(&format!("DEBUG LOG: {msg}"));
        }
        local_only(ctx, super::reply_ok)
    } else if eq_ic(sub, "PAUSE-CRON") && argv.len() == 3 {
        CRON_PAUSED.store(atoi(argv[2]) != 0, Ordering::Relaxed);
        local_only(ctx, super::reply_ok)
    } else if eq_ic(sub, "CONFIG-REWRITE-FORCE-ALL") && argv.len() == 2 {
        if ctx.client.is_none() {
            return Partial::Unit;
        }
        let shared = &ctx.shard.shared;
        let done = match shared.config_file.as_deref() {
            Some(path) => shared
                .config()
                .rewrite_with(path, true)
                .map_err(|e| percore_net::sys::strerror(&e)),
            None => Err("The server is running without a config file".to_owned()),
        };
        local_only(ctx, |w| match done {
            Ok(()) => w.ok(),
            Err(e) => w.error(&format!("ERR CONFIG-REWRITE-FORCE-ALL failed: {e}")),
        })
    } else if eq_ic(sub, "LEAK") && argv.len() == 3 {
        // Nothing leaks in percore: the string is dropped with the request.
        local_only(ctx, super::reply_ok)
    } else {
        local_only(ctx, |w| syntax_error(argv, w))
    }
}

/// C's `atoi`: the leading optional sign and digits, 0 when there are none.
fn atoi(arg: &[u8]) -> i64 {
    let text = std::str::from_utf8(arg).unwrap_or("").trim_start();
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    text[..end].parse().unwrap_or(0)
}

/// DEBUG HTSTATS <dbid> on one shard: its tables' stats (the merge joins the shards').
fn htstats_part(ctx: &mut Ctx, arg: &[u8]) -> Partial {
    let Some(db) = parse_i64(arg) else {
        return local_only(ctx, |w| w.error(errors::NOT_INTEGER));
    };
    let ks = &ctx.shard.keyspace;
    match usize::try_from(db).ok().filter(|&d| d < ks.databases()) {
        Some(d) => {
            // One line per bucket array: table (0 keys, 1 expires), array, then the counts.
            let mut text = String::new();
            for (t, arrays) in ks.db(d).hash_table_stats().iter().enumerate() {
                for (a, st) in arrays.iter().enumerate() {
                    let _ = write!(
                        text,
                        "{t} {a} {} {} {} {}",
                        st.size, st.used, st.slots, st.max_chain
                    );
                    for n in &st.lengths {
                        let _ = write!(text, " {n}");
                    }
                    text.push('\n');
                }
            }
            Partial::Text(text)
        }
        None => local_only(ctx, |w| w.error("ERR Out of range database")),
    }
}

/// Runs `f` on the shard owning `argv[2]` (the others answer nothing): the reply it writes.
fn on_key_owner(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    f: impl FnOnce(&mut crate::shard::ShardData, usize, &mut ReplyWriter),
) -> Partial {
    let sh = &mut *ctx.shard;
    if sh.owner(argv[2]) != sh.id {
        return Partial::Unit;
    }
    let mut out = Vec::new();
    f(sh, ctx.db, &mut ReplyWriter::new(&mut out, ctx.proto));
    Partial::Encoded(out)
}

/// DEBUG HTSTATS-KEY, LISTPACK and QUICKLIST, on the shard owning the key.
fn key_structure(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    on_key_owner(ctx, argv, |sh, db, w| key_structure_reply(sh, db, argv, w))
}

fn key_structure_reply(
    sh: &mut crate::shard::ShardData,
    db: usize,
    argv: &[&[u8]],
    w: &mut ReplyWriter,
) {
    let now = sh.now_ms;
    let sub = argv[1];
    match sh.keyspace.db_mut(db).get(argv[2], now) {
        None => w.error(errors::NO_SUCH_KEY),
        Some(v) if eq_ic(sub, "HTSTATS-KEY") => match v.hash_table_stats() {
            Some(text) => w.verbatim("txt", text.as_bytes()),
            None => w.error(
                "ERR The value stored at the specified key is not represented using an hash table",
            ),
        },
        Some(v) if eq_ic(sub, "LISTPACK") => {
            if v.encoding() == "listpack" {
                sh.shared.notice(&format!(
                    "DEBUG LISTPACK {}: a listpack-encoded {}",
                    String::from_utf8_lossy(argv[2]),
                    v.type_name()
                ));
                w.simple("Listpack structure printed on stdout");
            } else {
                w.error("ERR Not a listpack encoded object.");
            }
        }
        Some(Value::List(l)) => {
            let sizes: Vec<String> = l.nodes().map(|n| n.len().to_string()).collect();
            sh.shared.notice(&format!(
                "DEBUG QUICKLIST {}: {} entries in {} nodes, entries per node: {}",
                String::from_utf8_lossy(argv[2]),
                l.len(),
                sizes.len(),
                sizes.join(" ")
            ));
            w.simple("Quicklist structure printed on stdout");
        }
        Some(_) => w.error("ERR Not a quicklist encoded object."),
    }
}

fn populate(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    const RANGE: &str = "ERR value is out of range, must be positive";
    let count = match parse_i64(argv[2]) {
        Some(n) if (0..=POPULATE_MAX_KEYS).contains(&n) => n as u64,
        Some(_) => return local_only(ctx, |w| w.error(RANGE)),
        None => return local_only(ctx, |w| w.error(RANGE)),
    };
    // A value longer than any client could SET is refused, not allocated: a terabyte
    // asked for here aborted the server when the allocation failed.
    let max_size = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let size = match argv.get(4).map(|a| parse_i64(a)) {
        None => 0,
        Some(Some(n)) if n >= 0 && n.cast_unsigned() <= max_size => n as usize,
        Some(Some(n)) if n >= 0 => {
            return local_only(ctx, |w| {
                w.error("ERR value size is larger than proto-max-bulk-len");
            });
        }
        Some(Some(_)) => return local_only(ctx, |w| w.error(RANGE)),
        Some(None) => return local_only(ctx, |w| w.error(RANGE)),
    };
    let prefix = argv.get(3).copied().unwrap_or(b"key");
    let sh = &mut *ctx.shard;
    let (me, now) = (sh.id, sh.now_ms);
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut val = String::new();
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        let _ = write!(KeyWriter(&mut key), ":{j}");
        if sh.owner(&key) != me {
            continue;
        }
        let db = sh.keyspace.db_mut(ctx.db);
        if db.contains(&key, now) {
            continue;
        }
        val.clear();
        let _ = write!(val, "value:{j}");
        let value = if size == 0 {
            Value::from_bytes(val.as_bytes())
        } else {
            let mut v = Vec::new();
            if v.try_reserve_exact(size).is_err() {
                return local_only(ctx, |w| {
                    w.error("ERR out of memory for DEBUG POPULATE values");
                });
            }
            v.resize(size, 0);
            let n = size.min(val.len());
            v[..n].copy_from_slice(&val.as_bytes()[..n]);
            Value::from_bytes(&v)
        };
        db.set(&key, value, SetExpire::Clear, now);
    }
    local_only(ctx, super::reply_ok)
}

/// Formats into a byte vector.
struct KeyWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for KeyWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// DEBUG PROTOCOL <type>: a sample reply of each RESP type, as Redis's `debug.c`.
#[allow(
    clippy::approx_constant,
    reason = "Redis's sample double is the literal 3.141, not pi"
)]
fn protocol_sample(w: &mut ReplyWriter, name: &[u8]) {
    let is = |t: &str| eq_ic(name, t);
    if is("string") {
        w.bulk(b"Hello World");
    } else if is("integer") {
        w.int(12345);
    } else if is("double") {
        w.double(3.141);
    } else if is("bignum") {
        w.big_number("1234567999999999999999999999999999999");
    } else if is("null") {
        w.null();
    } else if is("array") || is("set") {
        if is("array") {
            w.array(3);
        } else {
            w.set(3);
        }
        for j in 0..3 {
            w.int(j);
        }
    } else if is("map") {
        w.map(3);
        for j in 0..3 {
            w.int(j);
            w.bool(j == 1);
        }
    } else if is("attrib") {
        if w.is_resp3() {
            w.raw(b"|1\r\n");
            w.bulk(b"key-popularity");
            w.array(2);
            w.bulk(b"key:123");
            w.int(90);
        }
        w.bulk(b"Some real reply following the attribute");
    } else if is("push") {
        if !w.is_resp3() {
            w.error("ERR RESP2 is not supported by this command");
            return;
        }
        w.push(2);
        w.bulk(b"server-cpu-usage");
        w.int(42);
        w.bulk(b"Some real reply following the push reply");
    } else if is("true") || is("false") {
        w.bool(is("true"));
    } else if is("verbatim") {
        w.verbatim("txt", b"This is a verbatim\nstring");
    } else {
        w.error(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        );
    }
}

/// DEBUG OBJECT, on the shard owning the key.
fn debug_object(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    on_key_owner(ctx, argv, |sh, db, w| {
        debug_object_reply(sh, db, argv[2], w);
    })
}

fn debug_object_reply(
    sh: &mut crate::shard::ShardData,
    db: usize,
    key: &[u8],
    w: &mut ReplyWriter,
) {
    let now = sh.now_ms;
    let idle = sh.keyspace.db_mut(db).idle_time_s(key, now);
    // Redis's `lru:`, the object's 24-bit LRU clock (seconds) at its last access: the
    // clock now less the idle time gives back the stored access field.
    let lru = idle.map_or(0, |i| {
        ((now.div_euclid(1000)) as u32).wrapping_sub(i as u32) & 0x00FF_FFFF
    });
    match (
        sh.keyspace
            .db_mut(db)
            .lookup_entry(key, now)
            .map(|e| &e.value),
        idle,
    ) {
        (Some(Value::Str(s)), Some(idle)) => {
            let (enc, len) = (s.encoding(), s.len());
            w.simple(&format!(
                "Value at:0x0 refcount:1 encoding:{enc} serializedlength:{} lru:{lru} lru_seconds_idle:{idle}",
                len.max(1)
            ));
        }
        // sets, sorted sets: serializedlength is an estimate (the members' bytes), and
        // Redis's ql_* fields belong to lists only.
        (Some(v @ (Value::Set(_) | Value::ZSet(_))), Some(idle)) => {
            let len = match v {
                Value::Set(s) => s.serialized_len_hint(),
                Value::ZSet(z) => {
                    z.len() * 9 + z.entries().iter().map(|(_, m)| m.len() + 1).sum::<usize>()
                }
                _ => 0,
            };
            w.simple(&format!(
                "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{lru} lru_seconds_idle:{idle}",
                v.encoding(),
                len.max(1)
            ));
        }
        // lists and hashes
        (Some(Value::List(l)), Some(idle)) => {
            let nodes = l.nodes().len();
            let bytes: usize = l.nodes().map(percore_engine::Listpack::bytes_len).sum();
            let fill = sh.cfg.list_max_listpack_size;
            w.simple(&format!(
                "Value at:0x0 refcount:1 encoding:quicklist serializedlength:{bytes} lru:{lru} lru_seconds_idle:{idle} ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:{fill} ql_compressed:0 ql_uncompressed_size:{bytes}",
                l.len() as f64 / nodes.max(1) as f64
            ));
        }
        (Some(Value::Hash(h)), Some(idle)) => {
            let len = h
                .as_listpack()
                .map_or(h.len(), percore_engine::Listpack::bytes_len);
            w.simple(&format!(
                "Value at:0x0 refcount:1 encoding:{} serializedlength:{len} lru:{lru} lru_seconds_idle:{idle}",
                h.encoding()
            ));
        }
        // end lists and hashes
        // streams: serializedlength is the nodes' bytes
        (Some(Value::Stream(st)), Some(idle)) => {
            let len: usize = st.nodes().map(|(_, lp)| lp.bytes_len() + 17).sum();
            w.simple(&format!(
                "Value at:0x0 refcount:1 encoding:stream serializedlength:{} lru:{lru} lru_seconds_idle:{idle}",
                len.max(1)
            ));
        }
        _ => w.error(errors::NO_SUCH_KEY),
    }
}

/// DEBUG DIGEST on one shard: per non-empty database, its index (4 bytes, big-endian) and
/// the XOR of its keys' digests.
fn digest_part(ctx: &mut Ctx) -> Partial {
    let ks = &ctx.shard.keyspace;
    let mut out = Vec::new();
    for j in 0..ks.databases() {
        let db = ks.db(j);
        if db.is_empty() {
            continue;
        }
        let mut d = [0; 20];
        for (key, entry) in db.iter() {
            digest::xor(&mut d, &digest::key_digest(key, entry));
        }
        let mut item = (j as u32).to_be_bytes().to_vec();
        item.extend_from_slice(&d);
        out.push(item);
    }
    Partial::Keys(out)
}

/// DEBUG DIGEST-VALUE on one shard: the digests of the keys it owns, in argument order.
fn digest_value_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sh = &mut *ctx.shard;
    let (me, now) = (sh.id, sh.now_ms);
    let mut out = Vec::with_capacity(argv.len() - 2);
    for key in &argv[2..] {
        if sh.owner(key) != me {
            out.push(None);
            continue;
        }
        let mut d = [0; 20];
        if let Some(entry) = sh.keyspace.db_mut(ctx.db).lookup_entry(key, now) {
            digest::mix_entry(&mut d, entry);
        }
        out.push(Some(digest::hex(&d).into_bytes()));
    }
    Partial::Values(out)
}

pub fn debug_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let sub = g.subcommand();
    if sub == b"digest" && g.argv.len() == 2 {
        let mut dbs: Vec<Option<digest::Digest>> = Vec::new();
        for p in g.parts.iter().flatten() {
            if let Partial::Keys(items) = p {
                for item in items {
                    let j = u32::from_be_bytes([item[0], item[1], item[2], item[3]]) as usize;
                    if dbs.len() <= j {
                        dbs.resize(j + 1, None);
                    }
                    let d = dbs[j].get_or_insert([0; 20]);
                    for (x, k) in d.iter_mut().zip(&item[4..]) {
                        *x ^= k;
                    }
                }
            }
        }
        w.simple(&digest::hex(&digest::dataset(&dbs)));
        return;
    }
    if sub == b"digest-value" {
        let n = g.argv.len().saturating_sub(2);
        let mut vals: Vec<Option<Vec<u8>>> = vec![None; n];
        for p in g.parts.iter_mut().flatten() {
            if let Partial::Values(v) = p {
                for (slot, got) in vals.iter_mut().zip(v.drain(..)) {
                    if got.is_some() {
                        *slot = got;
                    }
                }
            }
        }
        w.array(n);
        for v in vals {
            w.simple(&String::from_utf8(v.unwrap_or_default()).unwrap_or_default());
        }
        return;
    }
    if sub == b"htstats" {
        if write_encoded(g, w) {
            return;
        }
        // Every shard's tables of the database add up to one table per kind, as Redis's
        // one dictionary (the shards' `htstats_part` lines).
        let mut sums: [Vec<BucketStats>; 2] = [Vec::new(), Vec::new()];
        for p in g.parts.iter().flatten() {
            let Partial::Text(t) = p else { continue };
            for line in t.lines() {
                let n: Vec<usize> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
                if n.len() < 6 || n[0] > 1 || n[1] > 1 {
                    continue;
                }
                let st = BucketStats {
                    size: n[2],
                    used: n[3],
                    slots: n[4],
                    max_chain: n[5],
                    lengths: n[6..].to_vec(),
                };
                let arrays = &mut sums[n[0]];
                if arrays.len() <= n[1] {
                    arrays.resize(n[1] + 1, BucketStats::default());
                }
                arrays[n[1]].add(&st);
            }
        }
        let mut text = String::new();
        for (title, arrays) in ["[Dictionary HT]\n", "[Expires HT]\n"].iter().zip(&sums) {
            text.push_str(title);
            for (i, st) in arrays.iter().enumerate() {
                st.write_text(i, &mut text);
            }
        }
        w.verbatim("txt", text.as_bytes());
        return;
    }
    if !write_encoded(g, w) {
        w.ok();
    }
}
