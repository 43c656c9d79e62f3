//! CLIENT TRACKING: server-assisted client-side caching (Redis 7.0's `tracking.c`), across
//! shards.
//!
//! - What a connection asked for (mode, redirect, prefixes, CLIENT CACHING) lives in its
//!   `Client` ([`ClientTracking`]).
//! - Which clients read a key (the remember table) lives with the key's shard: one
//!   [`Table`] per shard in [`Shared`], behind a mutex, because the *reader's* shard
//!   inserts into it when it dispatches the read, before the read runs anywhere (so no write
//!   can slip between the read and the remember), and the key's shard removes from it when
//!   the key changes.
//! - BCAST prefixes are one table for the server ([`Shared::bcast`]): every shard checks
//!   its own writes against it.
//! - Invalidations travel to the tracking client's shard (and on to its redirect target's)
//!   through a per-shard inbox ([`Inbox`]) that the writer's shard fills before the
//!   write's reply leaves (`before_wait`), and that the receiver drains before it reads any
//!   request (`on_input`), on a wake-up message, and after every batch. So an invalidation
//!   reaches its client's output before any request the client sends after it saw the
//!   write's reply, as in Redis; to the client that wrote, after the write's reply.
//!
//! Departures from Redis (see docs/architecture.md): the remembered keys of one shard are
//! limited to `tracking-table-max-keys` counted over the whole server; a write command
//! invalidates every key it names on a shard where it changed something (Redis: the keys
//! it changed); an invalidation to the client that caused it is written after the batch of
//! requests it read at once, not after that one command.

use crate::client::Client;
use crate::commands::{Command, flags};
use crate::shard::{Msg, ShardData};
use percore_net::reactor::{ConnId, Io};
use percore_net::resp::Protocol;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The most BCAST prefixes one client may register (Redis has no limit).
pub const PREFIXES_PER_CLIENT_MAX: usize = 1 << 16;
/// Invalidations waiting for one shard beyond which the rest become one null
/// invalidation ("flush everything") per client concerned.
pub const INBOX_MAX_ITEMS: usize = 1 << 20;
/// Keys taken out of this shard's remember table per call when it is over the limit;
/// the rest at the next batch or tick.
pub const LIMIT_EVICT_BATCH_KEYS: usize = 4096;

/// One connection's tracking state (Redis's `CLIENT_TRACKING*` flags and fields).
#[derive(Clone, Debug, Default)]
pub struct ClientTracking {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) for the next command or transaction.
    pub caching: bool,
    /// CLIENT CACHING was for the transaction that just ran: it ends at the next command.
    pub caching_ends: bool,
    pub broken_redirect: bool,
    /// The client invalidations go to (0: this one).
    pub redirect: u64,
    /// The shard of `redirect`'s connection.
    pub redirect_shard: usize,
    /// BCAST prefixes, as registered.
    pub prefixes: Vec<Box<[u8]>>,
}

/// A reader remembered for a key: client id and its shard.
type Reader = (u64, usize);

/// The remember table of one shard's keys (Redis's `TrackingTable`; keys of every
/// database together, as Redis).
#[derive(Default)]
pub struct Table {
    keys: HashMap<Box<[u8]>, Vec<Reader>>,
    items: usize,
}

/// What travels to a client's shard.
pub enum Item {
    /// `client` read `key` in default mode; `writer` changed it (0: expiry, eviction, the
    /// table's limit).
    Key {
        client: u64,
        key: Box<[u8]>,
        writer: u64,
    },
    /// BCAST: keys under one prefix changed in one loop iteration of a shard, each with
    /// the client that changed it last.
    Bcast { client: u64, keys: ChangedKeys },
    /// FLUSHALL / FLUSHDB (or an overflowing inbox): everything may have changed.
    Flush { client: u64 },
    /// For `target`, the redirect of `origin` (of `origin_shard`): the keys' array, or
    /// the null, encoded.
    Redirected {
        target: u64,
        origin: u64,
        origin_shard: usize,
        payload: Vec<u8>,
    },
    /// `client`'s redirect target `redirect` is gone.
    Broken { client: u64, redirect: u64 },
}

/// Invalidations waiting for one shard.
#[derive(Default)]
pub struct Inbox {
    items: Vec<Item>,
    /// Clients whose items did not fit: each gets one null invalidation.
    overflowed: HashSet<u64>,
}

struct Prefix {
    prefix: Box<[u8]>,
    readers: Vec<Reader>,
}

/// The server's tracking state, shared by the shards.
pub struct Shared {
    tables: Box<[Mutex<Table>]>,
    inboxes: Box<[Mutex<Inbox>]>,
    waiting: Box<[AtomicBool]>,
    /// Connected client ids by shard (for REDIRECT's existence check and routing).
    ids: Box<[Mutex<HashSet<u64>>]>,
    /// Clients with tracking on (INFO `tracking_clients`).
    pub clients: AtomicUsize,
    /// Keys in all remember tables (INFO `tracking_total_keys`, the limit).
    keys_total: AtomicUsize,
    items_total: AtomicUsize,
    bcast: RwLock<Vec<Prefix>>,
    prefixes: AtomicUsize,
}

impl Shared {
    pub fn new(shards: usize) -> Self {
        Self {
            tables: (0..shards).map(|_| Mutex::default()).collect(),
            inboxes: (0..shards).map(|_| Mutex::default()).collect(),
            waiting: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            ids: (0..shards).map(|_| Mutex::default()).collect(),
            clients: AtomicUsize::new(0),
            keys_total: AtomicUsize::new(0),
            items_total: AtomicUsize::new(0),
            bcast: RwLock::default(),
            prefixes: AtomicUsize::new(0),
        }
    }

    /// The shard of connected client `id`.
    pub fn shard_of(&self, id: u64) -> Option<usize> {
        self.ids
            .iter()
            .position(|s| s.lock().expect("tracking ids").contains(&id))
    }

    /// INFO's `tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`.
    pub fn totals(&self) -> (usize, usize, usize) {
        (
            self.keys_total.load(Ordering::Relaxed),
            self.items_total.load(Ordering::Relaxed),
            self.prefixes.load(Ordering::Relaxed),
        )
    }
}

/// One shard's side.
#[derive(Default)]
pub struct Local {
    /// Some client tracks (anywhere): writes and expiry look for readers. Refreshed with
    /// the configuration (the count's 0/1 changes move the generation).
    pub armed: bool,
    /// The client whose command runs now (NOLOOP), 0 for none.
    pub writer: u64,
    /// The write command that just ran answered an error: it invalidates nothing.
    pub failed: bool,
    /// A tracking client's script runs here now (or next, from this dispatch): its id,
    /// its connection's shard and its declared keys, remembered once the script calls a
    /// read-only command (`script_read`). Set by `script_starts` on the client's shard,
    /// or by `script_runs` where a transaction runs the script; cleared after it ran.
    pub script_caller: u64,
    script_shard: usize,
    script_keys: Vec<Box<[u8]>>,
    /// This shard's connections by client id.
    conns: HashMap<u64, ConnId>,
    /// This iteration's invalidations, by destination shard.
    out: Vec<Vec<Item>>,
    /// This iteration's changed keys and their writers, while BCAST prefixes exist.
    changed: Vec<(Box<[u8]>, u64)>,
}

/// A connection opened on this shard.
pub fn connected(data: &mut ShardData, id: u64, conn: ConnId) {
    data.tracking.conns.insert(id, conn);
    data.shared.tracking.ids[data.id]
        .lock()
        .expect("tracking ids")
        .insert(id);
}

/// A connection closed: its tracking ends (its remembered keys stay until they change,
/// as in Redis).
pub fn disconnected(data: &mut ShardData, client: &mut Client) {
    data.tracking.conns.remove(&client.id);
    data.shared.tracking.ids[data.id]
        .lock()
        .expect("tracking ids")
        .remove(&client.id);
    if client.tracking.is_some() {
        disable(data, client);
    }
}

/// Turns the client's tracking off (CLIENT TRACKING OFF, a close).
fn disable(data: &mut ShardData, client: &mut Client) {
    let Some(t) = client.tracking.take() else {
        return;
    };
    if t.bcast {
        unregister_prefixes(data, client.id, &t.prefixes);
    }
    if data.shared.tracking.clients.fetch_sub(1, Ordering::AcqRel) == 1 {
        data.shared.bump_generation();
    }
}

fn unregister_prefixes(data: &ShardData, id: u64, prefixes: &[Box<[u8]>]) {
    let shared = &data.shared.tracking;
    let mut table = shared.bcast.write().expect("tracking bcast");
    for p in prefixes {
        if let Some(i) = table.iter().position(|e| e.prefix == *p) {
            table[i].readers.retain(|r| r.0 != id);
            if table[i].readers.is_empty() {
                table.remove(i);
            }
        }
    }
    shared.prefixes.store(table.len(), Ordering::Relaxed);
}

/// Whether a prefix overlaps another (one is a prefix of the other).
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// CLIENT TRACKING ON|OFF [options]: Redis 7.0's parsing, checks and error texts.
pub fn client_tracking(
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
) -> Result<(), String> {
    use crate::commands::{eq_ic, errors, parse_i64};
    let mut redirect: u64 = 0;
    let mut redirect_given = false;
    let (mut bcast, mut optin, mut optout, mut noloop) = (false, false, false, false);
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let a = argv[j];
        if eq_ic(a, "redirect") && more {
            j += 1;
            if redirect_given {
                return Err("ERR A client can only redirect to a single other client".into());
            }
            let Some(id) = parse_i64(argv[j]) else {
                return Err(errors::NOT_INTEGER.into());
            };
            redirect_given = true;
            redirect = u64::try_from(id).unwrap_or(0);
            let exists = redirect == client.id
                || (redirect != 0 && data.shared.tracking.shard_of(redirect).is_some());
            if !exists {
                return Err("ERR The client ID you want redirect to does not exist".into());
            }
        } else if eq_ic(a, "bcast") {
            bcast = true;
        } else if eq_ic(a, "optin") {
            optin = true;
        } else if eq_ic(a, "optout") {
            optout = true;
        } else if eq_ic(a, "noloop") {
            noloop = true;
        } else if eq_ic(a, "prefix") && more {
            j += 1;
            prefixes.push(argv[j]);
        } else {
            return Err(errors::SYNTAX.into());
        }
        j += 1;
    }
    if eq_ic(argv[2], "off") {
        disable(data, client);
        return Ok(());
    }
    if !eq_ic(argv[2], "on") {
        return Err(errors::SYNTAX.into());
    }
    if !bcast && !prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if let Some(t) = &client.tracking
        && t.bcast != bcast
    {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if bcast && (optin || optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if optin && optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if let Some(t) = &client.tracking
        && ((optin && t.optout) || (optout && t.optin))
    {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if bcast {
        let existing = client
            .tracking
            .as_ref()
            .map_or(&[][..], |t| &t.prefixes[..]);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(e) = existing.iter().find(|e| overlaps(e, p)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(e)
                ));
            }
            if let Some(q) = prefixes[i + 1..].iter().find(|q| overlaps(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                ));
            }
        }
        if existing.len() + prefixes.len().max(1) > PREFIXES_PER_CLIENT_MAX {
            return Err(format!(
                "ERR too many prefixes for one client (at most {PREFIXES_PER_CLIENT_MAX})"
            ));
        }
    }
    let redirect_shard = if redirect == 0 || redirect == client.id {
        data.id
    } else {
        data.shared.tracking.shard_of(redirect).unwrap_or(data.id)
    };
    if client.tracking.is_none() && data.shared.tracking.clients.fetch_add(1, Ordering::AcqRel) == 0
    {
        data.shared.bump_generation();
    }
    let t = client.tracking.get_or_insert_with(Box::default);
    t.redirect = redirect;
    t.redirect_shard = redirect_shard;
    t.broken_redirect = false;
    t.bcast = bcast;
    t.optin = optin;
    t.optout = optout;
    t.noloop = noloop;
    if bcast {
        let mut add: Vec<Box<[u8]>> = prefixes.iter().map(|p| Box::from(*p)).collect();
        if add.is_empty() {
            add.push(Box::from(&b""[..]));
        }
        let shared = &data.shared.tracking;
        let mut table = shared.bcast.write().expect("tracking bcast");
        for p in add {
            if t.prefixes.contains(&p) {
                continue;
            }
            match table.iter_mut().find(|e| e.prefix == p) {
                Some(e) => e.readers.push((client.id, data.id)),
                None => table.push(Prefix {
                    prefix: p.clone(),
                    readers: vec![(client.id, data.id)],
                }),
            }
            t.prefixes.push(p);
        }
        // Listed in order, as Redis's radix tree.
        t.prefixes.sort();
        shared.prefixes.store(table.len(), Ordering::Relaxed);
    }
    Ok(())
}

/// CLIENT CACHING YES|NO.
pub fn client_caching(client: &mut Client, arg: &[u8]) -> Result<(), &'static str> {
    use crate::commands::{eq_ic, errors};
    let Some(t) = client.tracking.as_deref_mut() else {
        return Err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    };
    if eq_ic(arg, "yes") {
        if !t.optin {
            return Err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if eq_ic(arg, "no") {
        if !t.optout {
            return Err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return Err(errors::SYNTAX);
    }
    t.caching = true;
    Ok(())
}

/// CLIENT GETREDIR (and CLIENT LIST's `redir=`).
pub fn redirect_of(client: &Client) -> i64 {
    client.tracking.as_ref().map_or(-1, |t| t.redirect as i64)
}

/// CLIENT TRACKINGINFO's flags, in Redis's order.
pub fn info_flags(client: &Client) -> Vec<&'static str> {
    let Some(t) = &client.tracking else {
        return vec!["off"];
    };
    let mut f = vec!["on"];
    if t.bcast {
        f.push("bcast");
    }
    if t.optin {
        f.push("optin");
        if t.caching {
            f.push("caching-yes");
        }
    }
    if t.optout {
        f.push("optout");
        if t.caching {
            f.push("caching-no");
        }
    }
    if t.noloop {
        f.push("noloop");
    }
    if t.broken_redirect {
        f.push("broken_redirect");
    }
    f
}

/// A tracking client's command is about to run on its shard (not queued in MULTI):
/// remembers the keys it reads (Redis's `trackingRememberKeys` after `call`), and ends
/// CLIENT CACHING's effect after it.
#[cold]
pub fn before_command(
    data: &mut ShardData,
    client: &mut Client,
    cmd: &'static Command,
    argv: &[&[u8]],
) {
    let id = client.id;
    if client.multi.is_some() && cmd.name != "exec" {
        // Queued: remembered when EXEC runs it.
        return;
    }
    let Some(t) = client.tracking.as_deref_mut() else {
        return;
    };
    if std::mem::take(&mut t.caching_ends) {
        t.caching = false;
    }
    if !t.bcast {
        if cmd.name == "exec" {
            // A transaction of this shard remembers its reads as it runs them
            // (`exec_read`), so that its own earlier writes do not invalidate them; one
            // across shards remembers them all now, which can only add an invalidation.
            if let Some(m) = &client.multi
                && !crate::commands::multi::runs_here_now(data, client)
            {
                let t = client.tracking.as_deref().expect("checked");
                let remember_all = (!t.optin || t.caching) && !(t.optout && t.caching);
                if remember_all {
                    for q in &m.cmds {
                        let mut args = Vec::new();
                        q.argv.fill(&mut args);
                        if reads(q.cmd) {
                            remember(data, id, q.cmd, &args);
                        }
                    }
                }
            }
        } else if (!t.optin || t.caching) && !(t.optout && t.caching) {
            if is_script(cmd) {
                script_starts(data, id, cmd, argv);
            } else if reads(cmd) {
                remember(data, id, cmd, argv);
            }
        }
    }
    if cmd.name != "client"
        && let Some(t) = client.tracking.as_deref_mut()
    {
        if cmd.name == "exec" {
            // The transaction's commands run after this: CACHING holds for them.
            t.caching_ends = true;
        } else {
            t.caching = false;
        }
    }
}

pub fn is_script(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Whether `client`'s scripts run now (its transaction's, at EXEC) remember their
/// declared keys when they read: it tracks keys (not BCAST), and OPTIN/OPTOUT with
/// CLIENT CACHING allow it.
pub fn scripts_remember(client: &Client) -> bool {
    let Some(t) = client.tracking.as_deref() else {
        return false;
    };
    let caching_allows = (!t.optin || t.caching) && !(t.optout && t.caching);
    !t.bcast && caching_allows
}

/// A read-only command of a tracking client's transaction runs on this shard.
pub fn exec_read(data: &mut ShardData, client: &Client, cmd: &Command, argv: &[&[u8]]) {
    if let Some(t) = client.tracking.as_deref()
        && !t.bcast
        && (!t.optin || t.caching)
        && !(t.optout && t.caching)
        && reads(cmd)
    {
        remember(data, client.id, cmd, argv);
    }
}

/// A tracking client's script: Redis 7.0 remembers its declared keys when it calls a
/// read-only command, and only then (Valkey 8: only the keys it reads). A script that
/// runs here is watched for that (`script_read`). One that runs as a transaction (its
/// keys on another shard) hands the watch to it (`take_script`, `script_runs` where it
/// runs): remembering its keys here and now sent invalidations Redis does not send, and a
/// client reading its replies in step (the Tcl suite's) went out of step and waited.
fn script_starts(data: &mut ShardData, client: u64, cmd: &Command, argv: &[&[u8]]) {
    data.tracking.script_caller = client;
    data.tracking.script_shard = data.id;
    data.tracking.script_keys = cmd
        .keys_of(argv)
        .filter_map(|p| argv.get(p).map(|k| Box::from(*k)))
        .collect();
}

/// Whether `client`'s script, about to start as a transaction from this shard (its
/// client's), tracks its keys when it reads: the watch `script_starts` set leaves here.
pub fn take_script(data: &mut ShardData, client: u64) -> bool {
    let tracks = data.tracking.script_caller == client && client != 0;
    script_ends(data);
    tracks
}

/// A transaction of `client` (connected on `shard`) runs a script here: watched for its
/// reads, as `script_starts` does on the client's shard. `script_ends` after it.
pub fn script_runs(data: &mut ShardData, client: u64, shard: usize, cmd: &Command, argv: &[&[u8]]) {
    script_starts(data, client, cmd, argv);
    data.tracking.script_shard = shard;
}

/// The script ran (or will not run here): no later script inherits its watch.
pub fn script_ends(data: &mut ShardData) {
    data.tracking.script_caller = 0;
    data.tracking.script_keys.clear();
}

/// The script of `script_caller` called a read-only command.
pub fn script_read(data: &mut ShardData) {
    let client = std::mem::take(&mut data.tracking.script_caller);
    let keys = std::mem::take(&mut data.tracking.script_keys);
    let keys: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    remember_keys_of(data, client, data.tracking.script_shard, &keys);
}

/// A command whose keys a tracking client caches: read-only, keyed, not pub/sub, not
/// the read-only script forms (a script remembers its keys when it reads).
fn reads(cmd: &Command) -> bool {
    cmd.has(flags::READONLY)
        && !cmd.has(flags::PUBSUB)
        && !matches!(cmd.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
}

/// Remembers `client` as a reader of `cmd`'s keys, in each key's shard's table.
pub fn remember(data: &mut ShardData, client: u64, cmd: &Command, argv: &[&[u8]]) {
    let keys: Vec<&[u8]> = cmd
        .keys_of(argv)
        .filter_map(|p| argv.get(p).copied())
        .collect();
    remember_keys(data, client, &keys);
}

/// Remembers `client` (of this shard) as a reader of `keys`, in each key's shard's table.
fn remember_keys(data: &mut ShardData, client: u64, keys: &[&[u8]]) {
    remember_keys_of(data, client, data.id, keys);
}

/// Remembers `client`, connected on shard `me`, as a reader of `keys`.
fn remember_keys_of(data: &mut ShardData, client: u64, me: usize, keys: &[&[u8]]) {
    let shared = &data.shared.tracking;
    for key in keys {
        let owner = data.owner(key);
        let mut table = shared.tables[owner].lock().expect("tracking table");
        if !table.keys.contains_key(*key) {
            shared.keys_total.fetch_add(1, Ordering::Relaxed);
        }
        let readers = table.keys.entry(Box::from(*key)).or_default();
        if !readers.iter().any(|r| r.0 == client) {
            readers.push((client, me));
            table.items += 1;
            shared.items_total.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `key` of this shard changed (Redis's `trackingInvalidateKey`): its readers get an
/// invalidation, and it joins this iteration's BCAST keys.
pub fn key_changed(data: &mut ShardData, key: &[u8], writer: u64) {
    let shared = &data.shared.tracking;
    if shared.prefixes.load(Ordering::Relaxed) != 0 {
        data.tracking.changed.push((Box::from(key), writer));
    }
    let readers = {
        let mut table = shared.tables[data.id].lock().expect("tracking table");
        let Some(r) = table.keys.remove(key) else {
            return;
        };
        table.items -= r.len();
        r
    };
    shared.keys_total.fetch_sub(1, Ordering::Relaxed);
    shared
        .items_total
        .fetch_sub(readers.len(), Ordering::Relaxed);
    for (client, shard) in readers {
        queue(
            data,
            shard,
            Item::Key {
                client,
                key: Box::from(key),
                writer,
            },
        );
    }
}

/// A write command changed this shard (`changes` moved): its keys here are invalidated.
pub fn after_write(data: &mut ShardData, cmd: &Command, argv: &[&[u8]]) {
    let writer = data.tracking.writer;
    for p in cmd.keys_of(argv) {
        if let Some(key) = argv.get(p)
            && data.owner(key) == data.id
        {
            key_changed(data, key, writer);
        }
    }
}

/// Keys this shard deleted by expiry since the last look: invalidated, and logged as DEL
/// while the stream of effects is on (what `propagate::log_expired` does alone otherwise).
pub fn expired(data: &mut ShardData) {
    let mut keys: Vec<(usize, Box<[u8]>)> = Vec::new();
    data.keyspace
        .drain_expired(|db, k| keys.push((db, Box::from(k))));
    for (db, k) in keys {
        if data.effects.on {
            data.effects.command(db, &[b"DEL", &k]);
        }
        key_changed(data, &k, 0);
    }
}

/// FLUSHALL / FLUSHDB ran here: this shard's tracking clients get a null invalidation
/// and its remember table is emptied (Redis's `trackingInvalidateKeysOnFlush`: every
/// client, every key, whatever the database).
pub fn flushed(data: &mut ShardData) {
    if !data.tracking.armed {
        return;
    }
    let shared = &data.shared.tracking;
    let table = std::mem::take(&mut *shared.tables[data.id].lock().expect("tracking table"));
    shared
        .keys_total
        .fetch_sub(table.keys.len(), Ordering::Relaxed);
    shared.items_total.fetch_sub(table.items, Ordering::Relaxed);
    let me = data.id;
    let ids: Vec<u64> = data
        .clients
        .iter()
        .flatten()
        .filter(|c| c.tracking.is_some())
        .map(|c| c.id)
        .collect();
    for client in ids {
        queue(data, me, Item::Flush { client });
    }
    // The client running the flush is out of its slot: it is found by its id.
    if data.tracking.writer != 0
        && data
            .clients
            .iter()
            .flatten()
            .all(|c| c.id != data.tracking.writer)
        && data.tracking.conns.contains_key(&data.tracking.writer)
    {
        let client = data.tracking.writer;
        queue(data, me, Item::Flush { client });
    }
}

fn queue(data: &mut ShardData, shard: usize, item: Item) {
    let out = &mut data.tracking.out;
    if out.len() <= shard {
        out.resize_with(data.shards.max(shard + 1), Vec::new);
    }
    out[shard].push(item);
}

/// `tracking-table-max-keys`: while the server's remember tables hold more keys, this
/// shard invalidates some of its own (Redis's `trackingLimitUsedSlots`, whose random walk
/// is the table's order here). A key is taken only after the total was lowered for it,
/// so shards together never take the total below the limit.
pub fn limit(data: &mut ShardData) {
    let max = data.cfg.tracking_table_max_keys;
    if max == 0 {
        return;
    }
    let shared = data.shared.clone();
    let shared = &shared.tracking;
    let mut taken = Vec::new();
    {
        let mut table = shared.tables[data.id].lock().expect("tracking table");
        while taken.len() < LIMIT_EVICT_BATCH_KEYS && !table.keys.is_empty() {
            let total = shared.keys_total.load(Ordering::Relaxed);
            if total <= max {
                break;
            }
            if shared
                .keys_total
                .compare_exchange(total, total - 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let key = table.keys.keys().next().cloned().expect("not empty");
            let readers = table.keys.remove(&key).unwrap_or_default();
            table.items -= readers.len();
            shared
                .items_total
                .fetch_sub(readers.len(), Ordering::Relaxed);
            taken.push((key, readers));
        }
    }
    for (key, readers) in taken {
        for (client, shard) in readers {
            queue(
                data,
                shard,
                Item::Key {
                    client,
                    key: key.clone(),
                    writer: 0,
                },
            );
        }
    }
}

/// End of a loop iteration's work (`before_wait`), before replies and mail leave: the
/// iteration's BCAST keys become messages, and invalidations for other shards go into
/// their inboxes (with a wake-up).
pub fn flush(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    if !data.tracking.changed.is_empty() {
        broadcast(data);
    }
    let me = data.id;
    for shard in 0..data.tracking.out.len() {
        if shard == me || data.tracking.out[shard].is_empty() {
            continue;
        }
        let items = std::mem::take(&mut data.tracking.out[shard]);
        {
            let mut inbox = data.shared.tracking.inboxes[shard]
                .lock()
                .expect("tracking inbox");
            for item in items {
                if inbox.items.len() < INBOX_MAX_ITEMS {
                    inbox.items.push(item);
                } else {
                    inbox.overflowed.insert(item_client(&item));
                }
            }
        }
        if !data.shared.tracking.waiting[shard].swap(true, Ordering::AcqRel) {
            io.send(shard, Msg::Tracking);
        }
    }
}

fn item_client(item: &Item) -> u64 {
    match item {
        Item::Key { client, .. }
        | Item::Bcast { client, .. }
        | Item::Flush { client }
        | Item::Broken { client, .. } => *client,
        Item::Redirected { origin, .. } => *origin,
    }
}

/// BCAST keys of one prefix, each with its last writer.
type ChangedKeys = Arc<[(Box<[u8]>, u64)]>;

/// Redis's `trackingBroadcastInvalidationMessages` for this shard's changed keys.
fn broadcast(data: &mut ShardData) {
    let changed = std::mem::take(&mut data.tracking.changed);
    let mut sends: Vec<(Reader, ChangedKeys)> = Vec::new();
    {
        let table = data.shared.tracking.bcast.read().expect("tracking bcast");
        for p in table.iter() {
            // One entry per key, with its last writer, in key order (Redis's rax).
            let mut keys: Vec<(Box<[u8]>, u64)> = Vec::new();
            for (k, w) in &changed {
                if k.starts_with(&p.prefix) {
                    match keys.iter_mut().find(|e| e.0 == *k) {
                        Some(e) => e.1 = *w,
                        None => keys.push((k.clone(), *w)),
                    }
                }
            }
            if keys.is_empty() {
                continue;
            }
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            let keys: ChangedKeys = keys.into();
            for r in &p.readers {
                sends.push((*r, keys.clone()));
            }
        }
    }
    for ((client, shard), keys) in sends {
        queue(data, shard, Item::Bcast { client, keys });
    }
}

/// Delivers what waits for this shard's clients: the items this shard made for itself
/// and its inbox. Every client is in its slot.
pub fn deliver(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    let me = data.id;
    let mut items = data
        .tracking
        .out
        .get_mut(me)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut overflowed = HashSet::new();
    if data.shared.tracking.waiting[me].swap(false, Ordering::AcqRel) {
        let mut inbox = data.shared.tracking.inboxes[me]
            .lock()
            .expect("tracking inbox");
        items.append(&mut inbox.items);
        overflowed = std::mem::take(&mut inbox.overflowed);
    }
    if items.is_empty() && overflowed.is_empty() {
        return;
    }
    for item in items {
        deliver_item(data, io, item);
    }
    for client in overflowed {
        deliver_item(data, io, Item::Flush { client });
    }
    if data.tracking.out.iter().any(|o| !o.is_empty()) {
        // Redirections and broken-redirect notices for other shards.
        flush(data, io);
    }
}

/// Whether this shard has tracking work for `deliver` (checked before a connection's
/// requests are read, while some client tracks).
#[inline]
pub fn pending(data: &ShardData) -> bool {
    data.shared.tracking.waiting[data.id].load(Ordering::Acquire)
        || data
            .tracking
            .out
            .get(data.id)
            .is_some_and(|o| !o.is_empty())
}

fn null_of(proto: Protocol) -> &'static [u8] {
    if proto == Protocol::Resp3 {
        b"_\r\n"
    } else {
        b"$-1\r\n"
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn deliver_item(data: &mut ShardData, io: &mut Io<Msg, ()>, item: Item) {
    match item {
        Item::Redirected {
            target,
            origin,
            origin_shard,
            payload,
        } => {
            if !with_client(data, io, target, |_, c, out| {
                write_to_target(c, out, &payload);
            }) {
                queue(
                    data,
                    origin_shard,
                    Item::Broken {
                        client: origin,
                        redirect: target,
                    },
                );
            }
        }
        Item::Broken { client, redirect } => {
            with_client(data, io, client, |_, c, out| broken(c, out, redirect));
        }
        Item::Key { client, .. } | Item::Bcast { client, .. } | Item::Flush { client } => {
            let mut action = Action::Nothing;
            with_client(data, io, client, |data, c, out| {
                action = render(data.id, c, &item, out);
            });
            match action {
                Action::Nothing => {}
                Action::Forward(shard, item) => queue(data, shard, item),
                Action::Local(redirect, payload) => {
                    if !with_client(data, io, redirect, |_, c, out| {
                        write_to_target(c, out, &payload);
                    }) {
                        with_client(data, io, client, |_, c, out| broken(c, out, redirect));
                    }
                }
            }
        }
    }
}

/// What an invalidation for a tracking client leads to besides what it wrote.
enum Action {
    Nothing,
    /// To the redirect target on another shard.
    Forward(usize, Item),
    /// To the redirect target `.0` on this shard, the payload `.1`.
    Local(u64, Vec<u8>),
}

/// An invalidation (key, BCAST keys, flush) for tracking client `c`: what `c` receives
/// itself goes into `out` (RESP3 without redirect).
fn render(me: usize, c: &Client, item: &Item, out: &mut Vec<u8>) -> Action {
    let Some(t) = c.tracking.as_deref() else {
        return Action::Nothing;
    };
    let mut payload = Vec::new();
    match item {
        Item::Key { key, writer, .. } => {
            if t.bcast || (t.noloop && *writer == c.id) {
                return Action::Nothing;
            }
            payload.extend_from_slice(b"*1\r\n");
            bulk(&mut payload, key);
        }
        Item::Bcast { keys, .. } => {
            let mine = |w: u64| t.noloop && w == c.id;
            let n = keys.iter().filter(|(_, w)| !mine(*w)).count();
            if n == 0 {
                return Action::Nothing;
            }
            payload.extend_from_slice(format!("*{n}\r\n").as_bytes());
            for (k, _) in keys.iter().filter(|(_, w)| !mine(*w)) {
                bulk(&mut payload, k);
            }
        }
        _ => payload.extend_from_slice(null_of(c.proto)),
    }
    let (redirect, shard) = (t.redirect, t.redirect_shard);
    if redirect == 0 || redirect == c.id {
        if c.proto == Protocol::Resp3 {
            write_to_target(c, out, &payload);
        }
        Action::Nothing
    } else if shard != me {
        Action::Forward(
            shard,
            Item::Redirected {
                target: redirect,
                origin: c.id,
                origin_shard: me,
                payload,
            },
        )
    } else {
        Action::Local(redirect, payload)
    }
}

/// After each command of a tracking client without a redirect: what it caused for itself
/// on this shard is written behind its reply at once (Redis writes it after the command),
/// not after the whole batch of requests.
pub fn to_self(data: &mut ShardData, client: &mut Client, output: &mut Vec<u8>) {
    let me = data.id;
    let Some(t) = client.tracking.as_deref() else {
        return;
    };
    if t.redirect != 0 && t.redirect != client.id {
        return;
    }
    let Some(items) = data.tracking.out.get_mut(me) else {
        return;
    };
    if items.iter().all(|i| item_client(i) != client.id) {
        return;
    }
    let (mine, rest): (Vec<Item>, Vec<Item>) = std::mem::take(items).into_iter().partition(|i| {
        item_client(i) == client.id && !matches!(i, Item::Redirected { .. } | Item::Broken { .. })
    });
    data.tracking.out[me] = rest;
    let mut bytes = Vec::new();
    for item in &mine {
        render(me, &*client, item, &mut bytes);
    }
    if !bytes.is_empty() {
        client.push_unsolicited(output, &bytes, &mut data.buf_pool);
    }
}

/// Redis's `sendTrackingMessage` on the connection that receives it.
fn write_to_target(c: &Client, out: &mut Vec<u8>, payload: &[u8]) {
    if c.proto == Protocol::Resp3 {
        out.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else if c.subscribed() {
        out.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    } else {
        return;
    }
    out.extend_from_slice(payload);
}

fn broken(c: &mut Client, out: &mut Vec<u8>, redirect: u64) {
    let Some(t) = c.tracking.as_deref_mut() else {
        return;
    };
    t.broken_redirect = true;
    if c.proto == Protocol::Resp3 {
        out.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n");
        out.extend_from_slice(format!(":{redirect}\r\n").as_bytes());
    }
}

/// Runs `f` on this shard's client `id` with a buffer for what it receives, then writes
/// that into its output (behind replies still owed). False when no such client is here.
fn with_client(
    data: &mut ShardData,
    io: &mut Io<Msg, ()>,
    id: u64,
    f: impl FnOnce(&mut ShardData, &mut Client, &mut Vec<u8>),
) -> bool {
    let Some(&conn) = data.tracking.conns.get(&id) else {
        return false;
    };
    let Some(mut client) = data
        .clients
        .get_mut(conn.index as usize)
        .and_then(|c| c.take_if(|c| c.conn == conn))
    else {
        return false;
    };
    let mut bytes = Vec::new();
    f(data, &mut client, &mut bytes);
    if !bytes.is_empty()
        && let Some(c) = io.conn(conn)
        && !c.is_closing()
        && !client.close_after_reply
    {
        client.push_unsolicited(&mut c.output, &bytes, &mut data.buf_pool);
        crate::shard::check_output_limits(data, &mut client, c);
    }
    data.clients[conn.index as usize] = Some(client);
    true
}
