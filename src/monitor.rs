//! MONITOR: every command any client runs, on any shard, as one line to every
//! monitoring connection, in Redis 7.0's format:
//! `+1700000000.123456 [0 127.0.0.1:1234] "SET" "k" "v"` (`[0 lua]` for a script's
//! `redis.call`).
//!
//! Cost when nobody monitors and nothing is paused: `dispatch` loads one word
//! ([`Attention`], relaxed) and tests it against zero. While a monitor exists, the
//! client's shard formats the line when the command passed every check (unknown
//! commands, wrong arity, NOAUTH, ACL, subscribed-mode and other refusals are not shown;
//! ADMIN commands are not shown; AUTH/HELLO/MIGRATE passwords are `(redacted)`, as
//! Redis's `redactClientCommandArgument`) into this shard's `Local::lines`. Once per loop
//! iteration (`flush`, from `before_wait`) the lines go to this shard's monitors and, as
//! one shared `Msg::Monitor` buffer, to every other shard that has monitors.
//!
//! Order: one shard's lines reach every monitor in the order that shard ran them
//! (mailboxes are FIFO per sender); lines of different shards are not ordered with each
//! other. Inside MULTI nothing is shown at queue time; EXEC shows the queued commands,
//! then `exec` (a transaction whose WATCH failed shows them too: percore learns that on
//! the keys' shards after the line was written). EVAL/EVALSHA/FCALL are shown before the
//! commands their script runs, as in Redis.
//!
//! Bounds: a monitor is of the `normal` class of `client-output-buffer-limit` (as in
//! Redis), and in any case closed once more than [`MONITOR_PENDING_MAX_BYTES`] wait for
//! it; the per-iteration buffer keeps at most [`MONITOR_BUF_KEEP_BYTES`] of capacity.

use crate::client::Client;
use crate::commands::{Command, eq_ic, flags};
use crate::shard::{Msg, ShardData};
use percore_net::reactor::{ConnId, Io};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// A monitor exists somewhere (`Attention` bit).
pub const MONITORS: u32 = 1 << 0;
/// CLIENT PAUSE is in force (`Attention` bit, see `crate::pause`).
pub const PAUSED: u32 = 1 << 1;
/// The last background save failed (`crate::misconf`).
pub const DISK_ERROR: u32 = 1 << 2;

/// Output waiting for one monitoring connection beyond which it is closed, whatever
/// `client-output-buffer-limit normal` says (its default, `0 0 0`, sets no limit).
pub const MONITOR_PENDING_MAX_BYTES: usize = 256 << 20;
/// Capacity the per-iteration line buffer keeps between iterations.
pub const MONITOR_BUF_KEEP_BYTES: usize = 64 << 10;
/// Shown instead of a password (Redis's `shared.redacted`).
const REDACTED: &[u8] = b"(redacted)";

/// What `dispatch` must look at besides running the command: one word, loaded relaxed.
#[derive(Default)]
pub struct Attention {
    bits: AtomicU32,
    /// Monitoring connections per shard (taken only by MONITOR, a close and `flush`
    /// while the bit is up).
    monitors: Mutex<Vec<u32>>,
}

impl Attention {
    /// Anything to look at: the only cost on the hot path.
    #[inline]
    pub fn raised(&self) -> bool {
        self.bits.load(Ordering::Relaxed) != 0
    }

    #[inline]
    pub fn has(&self, bit: u32) -> bool {
        self.bits.load(Ordering::Relaxed) & bit != 0
    }

    pub fn raise(&self, bit: u32) {
        self.bits.fetch_or(bit, Ordering::Release);
    }

    pub fn lower(&self, bit: u32) {
        self.bits.fetch_and(!bit, Ordering::Release);
    }

    fn count_monitor(&self, shard: usize, delta: i32) {
        let mut m = self
            .monitors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() <= shard {
            m.resize(shard + 1, 0);
        }
        m[shard] = m[shard].saturating_add_signed(delta);
        if m.iter().any(|&n| n > 0) {
            self.raise(MONITORS);
        } else {
            self.lower(MONITORS);
        }
    }

    /// Shards with monitors, other than `me`.
    fn monitor_shards(&self, me: usize) -> Vec<usize> {
        let m = self
            .monitors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (0..m.len()).filter(|&s| s != me && m[s] > 0).collect()
    }
}

/// A shard's monitors and the lines of this iteration.
#[derive(Default)]
pub struct Local {
    /// This shard's monitoring connections, in the order they started.
    pub monitors: Vec<ConnId>,
    /// Lines of commands this shard ran since the last `flush`.
    lines: Vec<u8>,
    /// Lines other shards sent, for this shard's monitors.
    inbox: Vec<Arc<[u8]>>,
}

/// MONITOR: the connection receives every command from now on.
pub fn monitor(
    ctx: &mut crate::commands::Ctx,
    _argv: &[&[u8]],
    w: &mut percore_net::resp::ReplyWriter,
) {
    let Some(c) = ctx.client.as_deref_mut() else {
        w.error("ERR MONITOR isn't allowed for DENY BLOCKING client");
        return;
    };
    // Already monitoring (or a replica link): ignored, no reply, as Redis.
    if c.monitor || c.master {
        return;
    }
    c.monitor = true;
    ctx.shard.monitor.monitors.push(c.conn);
    ctx.shard.shared.attention.count_monitor(ctx.shard.id, 1);
    w.ok();
}

/// The connection stops monitoring (closed, or RESET).
pub fn forget(data: &mut ShardData, client: &mut Client) {
    if !client.monitor {
        return;
    }
    client.monitor = false;
    data.monitor.monitors.retain(|&c| c != client.conn);
    data.shared.attention.count_monitor(data.id, -1);
}

/// What `dispatch` does with a request after [`attend`].
pub enum Attend {
    Run,
    /// Wait for CLIENT PAUSE to end (`crate::pause`).
    Hold,
    /// Refused with this error.
    Refuse(&'static str),
}

/// A monitoring connection may not touch the keyspace (Redis treats it as a replica).
const MONITOR_KEYSPACE: &str = "ERR Replica can't interact with the keyspace";

/// `dispatch`'s hook, when [`Attention::raised`], after the other refusals (Redis's
/// `processCommand` order): a monitor's keyspace command is refused, a paused command
/// held; otherwise the command's line is written for the monitors.
#[cold]
#[inline(never)]
pub fn attend(
    data: &mut ShardData,
    client: &Client,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> Attend {
    if let Some(text) = crate::misconf::refusal(data, client, cmd) {
        return Attend::Refuse(text);
    }
    if client.monitor {
        if cmd.has(flags::WRITE | flags::READONLY | flags::MAY_REPLICATE) {
            return Attend::Refuse(MONITOR_KEYSPACE);
        }
    } else if data.shared.attention.has(PAUSED) {
        let queued = client.multi.as_deref().map(|m| m.cmds.as_slice());
        if crate::pause::holds(data, client.master, queued, cmd, argv) {
            return Attend::Hold;
        }
    }
    if data.shared.attention.has(MONITORS) {
        feed_client_command(data, client, cmd, argv);
    }
    Attend::Run
}

/// The line(s) for a client's command: nothing for ADMIN commands or while queuing in
/// MULTI; EXEC shows its queue first (or only itself after a queuing error).
fn feed_client_command(
    data: &mut ShardData,
    client: &Client,
    cmd: &'static Command,
    argv: &[&[u8]],
) {
    if admin(cmd, argv) {
        return;
    }
    if let Some(m) = client.multi.as_deref() {
        match cmd.name {
            "exec" => {
                if !m.failed {
                    let mut v = Vec::new();
                    for q in &m.cmds {
                        v.clear();
                        q.argv.fill(&mut v);
                        if admin(q.cmd, &v) {
                            continue;
                        }
                        let from = Origin::Client(&client.peer);
                        let db = db_after(data, q.cmd, &v, usize::from(q.db));
                        line(&mut data.monitor.lines, db, from, &v);
                    }
                }
            }
            "discard" | "multi" | "watch" | "quit" | "reset" => {}
            // Queued, not run: shown at EXEC.
            _ => return,
        }
    }
    let db = db_after(data, cmd, argv, client.db);
    line(
        &mut data.monitor.lines,
        db,
        Origin::Client(&client.peer),
        argv,
    );
}

/// The database a line names: Redis writes it after the command ran, so a SELECT shows
/// the database it selected and a RESET database 0.
fn db_after(data: &ShardData, cmd: &Command, argv: &[&[u8]], db: usize) -> usize {
    match cmd.name {
        "select" => crate::commands::parse_i64(argv[1])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n < data.keyspace.databases())
            .unwrap_or(db),
        "reset" => 0,
        _ => db,
    }
}

/// A `redis.call` of a script running in database `db` (shown with `lua` as its address).
pub fn feed_script_call(data: &mut ShardData, db: usize, argv: &[&[u8]]) {
    if !data.shared.attention.has(MONITORS) {
        return;
    }
    if crate::commands::lookup(argv[0]).is_some_and(|cmd| admin(cmd, argv)) {
        return;
    }
    line(&mut data.monitor.lines, db, Origin::Lua, argv);
}

/// Too dangerous to show (Redis: ADMIN commands and subcommands; `skip_monitor` ones are
/// shown by their own code, before what they run).
fn admin(cmd: &Command, argv: &[&[u8]]) -> bool {
    crate::pause::flags_of(cmd, argv) & flags::ADMIN != 0
}

enum Origin<'a> {
    Client(&'a str),
    Lua,
}

/// Appends one line in Redis's format (`replicationFeedMonitors`).
fn line(out: &mut Vec<u8>, db: usize, from: Origin, argv: &[&[u8]]) {
    use std::io::Write as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let _ = write!(out, "+{}.{:06} [{db} ", now.as_secs(), now.subsec_micros());
    match from {
        Origin::Client(peer) => out.extend_from_slice(peer.as_bytes()),
        Origin::Lua => out.extend_from_slice(b"lua"),
    }
    out.extend_from_slice(b"] ");
    let hidden = redacted(argv);
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let a = if hidden.contains(&i) { REDACTED } else { a };
        repr(out, a);
    }
    out.extend_from_slice(b"\r\n");
}

/// Positions of the arguments Redis redacts (`redactClientCommandArgument`): passwords
/// of AUTH, HELLO AUTH, MIGRATE AUTH/AUTH2, every argument of ACL SETUSER after the
/// subcommand, and the values of CONFIG SET's sensitive parameters. MONITOR and the slow
/// log show `(redacted)` there.
pub fn redacted(argv: &[&[u8]]) -> Vec<usize> {
    // A blocked command's slow-log entry, logged when it is served, may come without its
    // arguments: nothing to redact.
    let Some(&name) = argv.first() else {
        return Vec::new();
    };
    // ACL GETUSER / DELUSER names and the TLS key passphrases: Valkey's additions.
    if eq_ic(name, "acl")
        && argv.len() >= 3
        && ["setuser", "getuser", "deluser"]
            .iter()
            .any(|s| eq_ic(argv[1], s))
    {
        return (2..argv.len()).collect();
    }
    if eq_ic(name, "config") && argv.len() >= 4 && eq_ic(argv[1], "set") {
        return (2..argv.len() - 1)
            .step_by(2)
            .filter(|&j| {
                [
                    "masteruser",
                    "masterauth",
                    "primaryuser",
                    "primaryauth",
                    "requirepass",
                    "tls-key-file-pass",
                    "tls-client-key-file-pass",
                ]
                .iter()
                .any(|c| eq_ic(argv[j], c))
            })
            .map(|j| j + 1)
            .collect();
    }
    if eq_ic(name, "auth") {
        return match argv.len() {
            2 => vec![1],
            3 => vec![1, 2],
            _ => Vec::new(),
        };
    }
    let mut out = Vec::new();
    if eq_ic(name, "hello") {
        if argv.len() >= 2 && crate::commands::parse_i64(argv[1]).is_none() {
            return out;
        }
        let mut j = 2;
        while j < argv.len() {
            let more = argv.len() - j - 1;
            if eq_ic(argv[j], "AUTH") && more >= 2 {
                out.extend([j + 1, j + 2]);
                j += 3;
            } else if eq_ic(argv[j], "SETNAME") && more >= 1 {
                j += 2;
            } else {
                break;
            }
        }
    } else if eq_ic(name, "migrate") {
        let mut j = 6;
        while j < argv.len() {
            let more = argv.len() - j - 1;
            if eq_ic(argv[j], "auth") && more >= 1 {
                out.push(j + 1);
                j += 2;
            } else if eq_ic(argv[j], "auth2") && more >= 2 {
                out.extend([j + 1, j + 2]);
                j += 3;
            } else if eq_ic(argv[j], "keys") {
                break;
            } else {
                j += 1;
            }
        }
    }
    out
}

/// Redis's `sdscatrepr`: quoted, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escaped
/// and other unprintable bytes as `\xHH`.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
            }
        }
    }
    out.push(b'"');
}

/// Lines of another shard for this shard's monitors (`Msg::Monitor`).
pub fn receive(data: &mut ShardData, lines: Arc<[u8]>) {
    if !data.monitor.monitors.is_empty() {
        data.monitor.inbox.push(lines);
    }
}

/// Once per loop iteration (`before_wait`): this iteration's lines to the other shards
/// with monitors and, with what they sent, to this shard's monitors.
#[inline]
pub fn flush(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    if !(data.monitor.lines.is_empty() && data.monitor.inbox.is_empty()) {
        deliver(data, io);
    }
}

#[cold]
#[inline(never)]
fn deliver(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    if !data.monitor.lines.is_empty() {
        let lines: Arc<[u8]> = Arc::from(data.monitor.lines.as_slice());
        for s in data.shared.attention.monitor_shards(data.id) {
            io.send(s, Msg::Monitor(Arc::clone(&lines)));
        }
        if !data.monitor.monitors.is_empty() {
            data.monitor.inbox.push(lines);
        }
        data.monitor.lines.clear();
        if data.monitor.lines.capacity() > MONITOR_BUF_KEEP_BYTES {
            data.monitor.lines = Vec::new();
        }
    }
    let inbox = std::mem::take(&mut data.monitor.inbox);
    let monitors = data.monitor.monitors.clone();
    for id in monitors {
        let Some(mut client) = data
            .clients
            .get_mut(id.index as usize)
            .and_then(|c| c.take_if(|c| c.conn == id))
        else {
            continue;
        };
        if let Some(conn) = io.conn(id)
            && !conn.is_closing()
            && !client.close_after_reply
        {
            for bytes in &inbox {
                client.push_unsolicited(&mut conn.output, bytes, &mut data.buf_pool);
            }
            crate::shard::check_output_limits(data, &mut client, conn);
            if !client.close_after_reply && conn.pending_output() > MONITOR_PENDING_MAX_BYTES {
                data.shared.warning(&format!(
                    "Client id={} addr={} closed: a monitor with {} bytes of output waiting.",
                    client.id,
                    client.peer,
                    conn.pending_output()
                ));
                conn.close_now();
                client.close_after_reply = true;
            }
            if client.close_after_reply {
                forget(data, &mut client);
            }
        }
        data.clients[id.index as usize] = Some(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(argv: &[&[u8]], from: Origin) -> String {
        let mut out = Vec::new();
        line(&mut out, 3, from, argv);
        let s = String::from_utf8(out).unwrap();
        // Drop the timestamp.
        s.split_once(' ').unwrap().1.to_string()
    }

    #[test]
    fn lines_quote_as_sdscatrepr() {
        assert_eq!(
            text(
                &[b"SET", b"k\"\\", b"a\r\n\t\x07\x08\x00\xff "],
                Origin::Client("1.2.3.4:5")
            ),
            "[3 1.2.3.4:5] \"SET\" \"k\\\"\\\\\" \"a\\r\\n\\t\\a\\b\\x00\\xff \"\r\n"
        );
        assert_eq!(
            text(&[b"get", b"x"], Origin::Lua),
            "[3 lua] \"get\" \"x\"\r\n"
        );
    }

    #[test]
    fn passwords_are_redacted_as_redis_does() {
        assert_eq!(
            redacted(&[b"ACL", b"setuser", b"u s", b"+get", b">pw"]),
            vec![2, 3, 4]
        );
        assert!(redacted(&[b"acl", b"setuser"]).is_empty());
        assert!(redacted(&[]).is_empty());
        // Valkey's additions: ACL GETUSER / DELUSER names, its option names, TLS passes.
        assert_eq!(redacted(&[b"acl", b"getuser", b"u"]), vec![2]);
        assert_eq!(redacted(&[b"ACL", b"DELUSER", b"u", b"v"]), vec![2, 3]);
        assert_eq!(
            redacted(&[
                b"config",
                b"set",
                b"primaryuser",
                b"u",
                b"PRIMARYAUTH",
                b"p",
                b"tls-key-file-pass",
                b"k",
                b"tls-client-key-file-pass",
                b"c"
            ]),
            vec![3, 5, 7, 9]
        );
        assert_eq!(
            redacted(&[
                b"config",
                b"SET",
                b"MasterAuth",
                b"x",
                b"maxmemory",
                b"1",
                b"requirepass",
                b"p"
            ]),
            vec![3, 7]
        );
        assert_eq!(redacted(&[b"auth", b"p"]), vec![1]);
        assert_eq!(redacted(&[b"AUTH", b"u", b"p"]), vec![1, 2]);
        assert!(redacted(&[b"auth", b"u", b"p", b"x"]).is_empty());
        assert_eq!(
            redacted(&[b"hello", b"3", b"SETNAME", b"n", b"auth", b"u", b"p"]),
            vec![5, 6]
        );
        assert!(redacted(&[b"hello", b"x", b"auth", b"u", b"p"]).is_empty());
        let m: &[&[u8]] = &[
            b"migrate", b"h", b"1", b"k", b"0", b"5", b"AUTH2", b"u", b"p",
        ];
        assert_eq!(redacted(m), vec![7, 8]);
        let m: &[&[u8]] = &[
            b"migrate", b"h", b"1", b"", b"0", b"5", b"auth", b"p", b"keys", b"a",
        ];
        assert_eq!(redacted(m), vec![7]);
    }
}
