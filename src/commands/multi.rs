//! MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis 7.0's replies.
//!
//! The queue lives in the connection (`Client::multi`), bounded by
//! [`MULTI_MAX_QUEUED_COMMANDS`] and [`MULTI_MAX_QUEUED_BYTES`]. EXEC hands the queue to a
//! [`Txn`](crate::atomic::Txn), which runs it atomically wherever its keys live (see
//! `crate::atomic`). Watched keys are registered on their owner shards
//! (`crate::atomic::watch`); the client keeps their names to check and drop them.

use super::{Command, Gather, PartFn, Partial};
use crate::atomic::{
    self, LockKey, MULTI_MAX_QUEUED_BYTES, MULTI_MAX_QUEUED_COMMANDS, Queued, Txn,
};
use crate::client::Client;
use crate::shard::{Argv, Msg, ShardData};
use percore_net::mailbox::Outbox;
use percore_net::resp::ReplyWriter;

/// The transaction commands, which run at once even inside MULTI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
}

/// A connection's open MULTI.
#[derive(Default)]
pub struct MultiState {
    pub cmds: Vec<Queued>,
    /// Argument bytes queued.
    pub bytes: usize,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub failed: bool,
    /// The database the next queued command runs in (SELECT inside MULTI moves it).
    pub db: usize,
}

/// What a transaction command did.
pub enum Outcome {
    /// Answered in the reply writer.
    Replied,
    /// EXEC: the transaction runs; its reply comes later (or at once, from `advance`).
    Run(Box<Txn>),
    /// WATCH of keys on other shards: each owner registers them; OK once all did.
    Gather(Gather, Vec<(usize, PartFn, Argv)>),
    /// The write gate is closed (a snapshot barrier is being set up): run it again later.
    HeldBack,
}

/// Queues `argv` in the client's MULTI and answers `+QUEUED`.
pub fn queue(
    data: &ShardData,
    client: &mut Client,
    cmd: &'static Command,
    argv: &[&[u8]],
    w: &mut ReplyWriter,
) {
    let Some(m) = client.multi.as_deref_mut() else {
        return;
    };
    let bytes: usize = argv.iter().map(|a| a.len()).sum();
    if m.cmds.len() >= MULTI_MAX_QUEUED_COMMANDS || m.bytes + bytes > MULTI_MAX_QUEUED_BYTES {
        m.failed = true;
        w.error(&format!(
            "ERR MULTI queue is full ({MULTI_MAX_QUEUED_COMMANDS} commands or {MULTI_MAX_QUEUED_BYTES} bytes)"
        ));
        return;
    }
    let db = m.db;
    if cmd.name == "select"
        && let Some(n) = super::parse_i64(argv[1])
        && usize::try_from(n).is_ok_and(|n| n < data.keyspace.databases())
    {
        m.db = n as usize;
    }
    m.bytes += bytes;
    if m.cmds.capacity() == 0 {
        m.cmds.reserve(4);
    }
    m.cmds.push(Queued {
        cmd,
        argv: Argv::from_slices(argv),
        db: db as u16,
        discard: false,
        refused: None,
    });
    w.simple("QUEUED");
}

/// Runs a transaction command. `seq`: the reply slot EXEC's reply will fill.
pub fn run(
    op: Op,
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
    seq: u64,
    w: &mut ReplyWriter,
    outbox: &mut Outbox<Msg>,
) -> Outcome {
    match op {
        Op::Multi => {
            if client.multi.is_some() {
                w.error("ERR MULTI calls can not be nested");
            } else {
                client.multi = Some(Box::new(MultiState {
                    db: client.db,
                    ..MultiState::default()
                }));
                w.ok();
            }
            Outcome::Replied
        }
        Op::Discard => {
            if client.multi.take().is_none() {
                w.error("ERR DISCARD without MULTI");
            } else {
                atomic::unwatch_all(data, client, |s, m| outbox.send(s, m));
                w.ok();
            }
            Outcome::Replied
        }
        Op::Unwatch => {
            atomic::unwatch_all(data, client, |s, m| outbox.send(s, m));
            w.ok();
            Outcome::Replied
        }
        Op::Watch => watch(data, client, argv, w),
        Op::Exec => exec(data, client, seq, w, outbox),
    }
}

fn exec(
    data: &mut ShardData,
    client: &mut Client,
    seq: u64,
    w: &mut ReplyWriter,
    outbox: &mut Outbox<Msg>,
) -> Outcome {
    let Some(m) = client.multi.as_deref() else {
        w.error("ERR EXEC without MULTI");
        return Outcome::Replied;
    };
    if m.failed {
        client.multi = None;
        atomic::unwatch_all(data, client, |s, m| outbox.send(s, m));
        w.error("EXECABORT Transaction discarded because of previous errors.");
        return Outcome::Replied;
    }
    if runs_here_now(data, client) {
        let m = client.multi.take().expect("checked");
        exec_here(data, client, &m.cmds, w);
        return Outcome::Replied;
    }
    let MultiState {
        mut cmds,
        bytes,
        db,
        ..
    } = *client.multi.take().expect("checked");
    if !client.acl_free {
        // Redis 7.0 checks every queued command again at EXEC (the user's rules may have
        // changed since it was queued): a refused one answers NOPERM in EXEC's reply.
        for q in &mut cmds {
            let refused = {
                let mut args = Vec::new();
                q.argv.fill(&mut args);
                crate::acl::check_at_exec(data, client, q.cmd, &args).err()
            };
            q.refused = refused.map(String::into_boxed_str);
        }
    }
    let watched: Vec<LockKey> = client.watched.clone();
    let mut txn = Txn::new(data, client, seq, cmds, &watched, true);
    if crate::tracking::scripts_remember(client) {
        // Its scripts remember their declared keys when they read (the transaction runs
        // them, on whatever shard).
        txn.track_scripts();
    }
    if !txn.enter_gate(data) {
        // The queue goes back; EXEC runs again from the input once the gate opens.
        client.multi = Some(Box::new(MultiState {
            cmds: txn.into_cmds(),
            bytes,
            failed: false,
            db,
        }));
        return Outcome::HeldBack;
    }
    // EXEC unwatches everything: each watched key is checked and dropped on its shard.
    client.watched.clear();
    Outcome::Run(txn)
}

fn watch(
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
    w: &mut ReplyWriter,
) -> Outcome {
    if client.multi.is_some() {
        w.error("ERR WATCH inside MULTI is not allowed");
        return Outcome::Replied;
    }
    let db = client.db as u16;
    let mut by_shard: Vec<Vec<&[u8]>> = vec![Vec::new(); data.shards];
    for &k in &argv[1..] {
        let key: LockKey = (db, k.into());
        if client.watched.contains(&key) {
            continue;
        }
        if client.watched.len() >= atomic::watch::MAX_WATCHED_KEYS_PER_CLIENT {
            w.error("ERR too many watched keys");
            return Outcome::Replied;
        }
        client.watched.push(key);
        by_shard[data.owner(k)].push(k);
    }
    let me = data.id;
    let id = client.id.to_string();
    let mut jobs = Vec::new();
    for (s, keys) in by_shard.iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        if s == me {
            atomic::watch::Registry::watch(data, client.id, usize::from(db), keys);
            continue;
        }
        let mut sub: Vec<&[u8]> = vec![argv[0], id.as_bytes()];
        sub.extend_from_slice(keys);
        jobs.push((s, watch_part as PartFn, Argv::from_slices(&sub)));
    }
    if jobs.is_empty() {
        w.ok();
        return Outcome::Replied;
    }
    let cmd = super::lookup(b"watch").expect("in the table");
    let gather = Gather {
        cmd,
        parts: (0..data.shards).map(|_| None).collect(),
        key_map: Vec::new(),
        nkeys: 0,
        remaining: 0,
        argv: Vec::new(),
        discard: false,
        proto: client.proto,
    };
    Outcome::Gather(gather, jobs)
}

/// A shard's part of WATCH: `[WATCH, client id, keys...]` registered here.
pub fn watch_part(ctx: &mut super::Ctx, argv: &[&[u8]]) -> Partial {
    let client = std::str::from_utf8(argv[1])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("the client's shard wrote its id");
    atomic::watch::Registry::watch(ctx.shard, client, ctx.db, &argv[2..]);
    Partial::Unit
}

/// WATCH's merge: OK.
pub fn ok_merge(_g: &mut Gather, w: &mut ReplyWriter) {
    w.ok();
}

/// Whether the queued transaction can run right here, inline: every queued command is a
/// connection command or a single-shard keyed command whose keys live on this shard, the
/// watched keys live here too, and no transaction holds or awaits anything here. Then
/// nothing else can run between its commands (the shard is single-threaded): no lock, no
/// message, no boxed transaction.
pub(crate) fn runs_here_now(data: &ShardData, client: &Client) -> bool {
    if data.locks.busy() {
        return false;
    }
    let me = data.id;
    if data.shards > 1 && client.watched.iter().any(|(_, k)| data.owner(k) != me) {
        return false;
    }
    let Some(m) = client.multi.as_deref() else {
        return false;
    };
    let mut args = Vec::new();
    m.cmds.iter().all(|q| match q.cmd.exec {
        super::Exec::Client(_) => true,
        super::Exec::Keyed(_) => {
            if data.shards == 1 {
                return true;
            }
            args.clear();
            q.argv.fill(&mut args);
            q.cmd
                .key_positions(args.len())
                .all(|p| data.owner(args[p]) == me)
        }
        _ => false,
    })
}

/// Runs a transaction that [`runs_here_now`] allowed, writing EXEC's reply.
fn exec_here(data: &mut ShardData, client: &mut Client, cmds: &[Queued], w: &mut ReplyWriter) {
    let watched = std::mem::take(&mut client.watched);
    if !watched.is_empty() && !atomic::watch::Registry::check_and_unwatch(data, client.id, &watched)
    {
        w.null_array();
        return;
    }
    w.array(cmds.len());
    // The transaction's writes are one unit of effects (MULTI/EXEC when several).
    let capture = data.effects.on.then(|| data.effects.begin_capture());
    let mut args = Vec::new();
    for q in cmds {
        args.clear();
        q.argv.fill(&mut args);
        let mark = w.out.len();
        let db = usize::from(q.db);
        if !client.acl_free
            && let Err(text) = crate::acl::check_at_exec(data, client, q.cmd, &args)
        {
            // The user's rules changed since the command was queued (Redis 7.0 checks
            // again at EXEC).
            w.error(&text);
            continue;
        }
        match q.cmd.exec {
            super::Exec::Client(h) => {
                let mut ctx = super::Ctx {
                    shard: data,
                    db,
                    proto: w.proto,
                    client: Some(client),
                };
                h(&mut ctx, &args, w);
            }
            super::Exec::Keyed(h) => {
                if client.tracking.is_some() {
                    // A tracking client's read remembers its keys in queue order.
                    crate::tracking::exec_read(data, client, q.cmd, &args);
                }
                let touch = q.cmd.has(super::flags::WRITE) && data.observes_writes();
                let before = if touch || capture.is_some() {
                    data.keyspace.changes()
                } else {
                    0
                };
                crate::snapshot::throttle_before_command(data);
                let mut ctx = super::Ctx {
                    shard: data,
                    db,
                    proto: w.proto,
                    client: None,
                };
                h(&mut ctx, &args, w);
                if touch {
                    atomic::watch::after_write(data, q.cmd, &args, db, before);
                }
                if capture.is_some() {
                    let reply = &w.out[mark..];
                    crate::propagate::after_command(data, q.cmd, &args, db, before, reply);
                }
            }
            _ => unreachable!("checked by runs_here_now"),
        }
        let took = data.took();
        let reply = &w.out[mark..];
        data.stats
            .record_call(q.cmd, &args, took, reply.first() == Some(&b'-'), reply);
        // EXEC itself is not logged (SKIP_SLOWLOG); the commands it ran are, as Redis.
        crate::stats::note_slow(data, q.cmd, took, client, &args);
    }
    if let Some(outer) = capture {
        let fx = data.effects.end_capture(outer);
        data.effects.atomic(fx);
    }
}
