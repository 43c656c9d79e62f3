//! The one serial stream of write effects, for the append-only file and replication.
//!
//! Every shard logs the effects of the writes it applies, in the order it applies them
//! ([`Log`], in `ShardData::effects`): a command as Redis 7.0 propagates it
//! ([`rewrite`]: SPOP as SREM, EXPIRE as PEXPIREAT, expiries as DEL, scripts by their
//! effects, ...). At the end of each loop iteration a shard publishes what it logged to the
//! [`Hub`] (one lock, one wake-up). The hub's merger thread turns the shards' logs into one
//! valid serial order ([`merge`]) and hands it, as RESP bytes, to every [`Sink`] (the AOF,
//! replication's backlog).
//!
//! Nothing is logged while no sink is attached: the write path pays one flag test
//! (`Log::on`). A sink attached while shards run sees the stream from a barrier of every
//! shard on ([`Event::Cut`]): that is where a snapshot for it (an AOF base, a full sync)
//! must be cut.

#![allow(
    dead_code,
    reason = "the sinks (AOF, replication) attach in the next commits"
)]

pub mod effects;
pub mod merge;
pub mod rewrite;

use crate::commands::{Command, flags};
use crate::shard::ShardData;
pub use effects::Effects;
pub use merge::{Entry, Event, TxnId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long the merger sleeps with nothing to do before it calls every sink's `tick`
/// (the AOF's `everysec` fsync).
pub const MERGER_TICK: Duration = Duration::from_millis(100);

/// Bytes a shard's buffer of single commands starts with each loop iteration (it grows
/// as needed), so that a pipeline of small writes does not reallocate it.
pub const SINGLES_INITIAL_BYTES: usize = 4096;

/// A consumer of the stream. Called on the merger thread, in stream order.
pub trait Sink: Send {
    /// Bytes of the stream.
    fn write(&mut self, bytes: &[u8]);
    /// Every effect before barrier `id` was written; what follows came after it. Returns
    /// whether this consumer starts reading the stream here (a replica's full sync, a new
    /// AOF file): the next command then selects its database.
    fn cut(&mut self, _id: u64) -> bool {
        false
    }
    /// The end of one merge round: what was written may be flushed (for `appendfsync
    /// always` the bytes must be durable when this returns).
    fn flush(&mut self) {}
    /// Called at least every [`MERGER_TICK`] (periodic fsync).
    fn tick(&mut self) {}
}

/// A sink's handle, to detach it.
pub type SinkId = u64;

// ---------------------------------------------------------------------------------------
// One shard's log

/// The effects one shard logged since it last published.
#[derive(Default)]
pub struct Log {
    /// Some sink is attached: effects are logged.
    pub on: bool,
    entries: Vec<Entry>,
    /// The unit being captured (a transaction's command, a script): its effects are
    /// collected here instead of the log.
    capture: Option<Effects>,
    /// Publications so far (the ticket of the last one).
    published: u64,
}

impl Log {
    /// Logs one command: into the captured unit, or as a single of its own.
    pub fn command(&mut self, db: usize, argv: &[&[u8]]) {
        if let Some(c) = self.capture.as_mut() {
            c.push(db, argv);
            return;
        }
        if let Some(Entry::Singles(fx)) = self.entries.last_mut() {
            fx.push(db, argv);
            return;
        }
        let mut fx = Effects::with_capacity(SINGLES_INITIAL_BYTES);
        fx.push(db, argv);
        self.entries.push(Entry::Singles(fx));
    }

    /// [`Log::command`] with owned arguments.
    pub fn command_owned(&mut self, db: usize, argv: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        self.command(db, &refs);
    }

    /// Starts capturing a unit; returns what an enclosing capture held (to give back to
    /// [`Log::end_capture`]).
    pub fn begin_capture(&mut self) -> Option<Effects> {
        self.capture.replace(Effects::default())
    }

    /// Ends a capture: the unit's effects, and the enclosing capture restored.
    pub fn end_capture(&mut self, outer: Option<Effects>) -> Effects {
        std::mem::replace(&mut self.capture, outer).unwrap_or_default()
    }

    /// Logs a captured unit that ran on this shard alone: into the enclosing capture if
    /// any (a script inside a transaction), else as one atomic entry.
    pub fn atomic(&mut self, fx: Effects) {
        if fx.is_empty() {
            return;
        }
        if let Some(c) = self.capture.as_mut() {
            c.append(fx);
        } else {
            self.entries.push(Entry::Atomic(fx));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Hooks: one call each where writes happen

/// After a command ran on this shard (outside a transaction's capture or inside it): its
/// database's expired keys as DEL first, then the command's effect if it changed anything.
/// `before`: the keyspace's change counter before the command; `reply`: its reply.
#[cold]
#[inline(never)]
pub fn after_command(
    data: &mut ShardData,
    cmd: &'static Command,
    argv: &[&[u8]],
    db: usize,
    before: u64,
    reply: &[u8],
) {
    // A command meets expired keys in its own database; MOVE and COPY also in another.
    if matches!(cmd.name, "move" | "copy") {
        log_expired(data);
    } else {
        log_expired_in(data, db);
    }
    let changed = data.keyspace.changes() != before;
    command_done(data, cmd, argv, db, changed, reply);
}

/// [`log_expired`] for one database.
#[inline]
fn log_expired_in(data: &mut ShardData, db: usize) {
    if data.tracking.armed {
        crate::tracking::expired(data);
        return;
    }
    if db < data.keyspace.databases() && data.keyspace.db(db).has_expired_logged() {
        for key in data.keyspace.db_mut(db).take_expired() {
            data.effects.command(db, &[b"DEL", &key]);
        }
    }
}

/// A command finished (its steps may have run on several shards: `changed` says whether
/// any changed something): logs its effect here.
pub fn command_done(
    data: &mut ShardData,
    cmd: &'static Command,
    argv: &[&[u8]],
    db: usize,
    changed: bool,
    reply: &[u8],
) {
    if !(cmd.has(flags::WRITE) || subcommand_writes(cmd, argv)) || rewrite::by_effects(cmd) {
        return;
    }
    if !changed && !rewrite::always_propagated(cmd) {
        return;
    }
    rewrite::log(data, cmd, argv, db, reply);
}

/// Whether `argv` names a write subcommand of container command `cmd` (XGROUP CREATE,
/// SETID, DESTROY, CREATECONSUMER, DELCONSUMER: the container row has no WRITE flag, as
/// in Redis's COMMAND INFO).
fn subcommand_writes(cmd: &Command, argv: &[&[u8]]) -> bool {
    !cmd.subcommands.is_empty()
        && argv.get(1).is_some_and(|sub| {
            cmd.subcommands.iter().any(|(name, _, f)| {
                f & flags::WRITE != 0
                    && name
                        .split_once('|')
                        .is_some_and(|(_, s)| s.as_bytes().eq_ignore_ascii_case(sub))
            })
        })
}

/// A step of a command ran here (inside a transaction): whether it changed this shard;
/// its expired keys are logged.
pub fn step_ran(data: &mut ShardData, before: u64) -> bool {
    if data.effects.on {
        log_expired(data);
    }
    data.keyspace.changes() != before
}

/// A connection command that succeeded: FUNCTION LOAD/DELETE/FLUSH/RESTORE change the
/// dataset's function libraries and are propagated as they came (7.0's functions are
/// data, replicated and written to the AOF).
#[cold]
pub fn client_command(data: &mut ShardData, cmd: &'static Command, argv: &[&[u8]], db: usize) {
    if cmd.name == "function"
        && argv.get(1).is_some_and(|sub| {
            ["load", "delete", "flush", "restore"]
                .iter()
                .any(|w| sub.eq_ignore_ascii_case(w.as_bytes()))
        })
    {
        data.effects.command(db, argv);
    }
}

/// Keys deleted by expiry since the last look, as DEL (Redis 7.0's `propagateDeletion`
/// with `lazyfree-lazy-expire no`).
pub fn log_expired(data: &mut ShardData) {
    if data.tracking.armed {
        // Invalidated for tracking clients, and logged as DEL.
        crate::tracking::expired(data);
        return;
    }
    let ShardData {
        keyspace, effects, ..
    } = data;
    keyspace.drain_expired(|db, key| effects.command(db, &[b"DEL", key]));
}

/// A transaction took its locks on this shard: its place in this shard's order. False
/// when nothing is logged.
pub fn locked(data: &mut ShardData, txn: TxnId) -> bool {
    if !data.effects.on {
        return false;
    }
    log_expired(data);
    data.effects.entries.push(Entry::Lock(txn));
    true
}

/// A transaction holds every lock: its commit number (None when it logged no lock).
pub fn lock_point(data: &ShardData, any_locked: bool) -> Option<u64> {
    any_locked.then(|| data.shared.effects.commit.fetch_add(1, Ordering::Relaxed))
}

/// A transaction finished on this shard. With locks logged on `shards`, its unit (commit
/// number, effects) for the merger; without, its effects as an atomic unit of this shard.
pub fn finished(
    data: &mut ShardData,
    txn: TxnId,
    commit: Option<u64>,
    shards: Vec<u16>,
    effects: Effects,
) {
    if !data.effects.on {
        return;
    }
    log_expired(data);
    if shards.is_empty() {
        data.effects.atomic(effects);
        return;
    }
    data.effects.entries.push(Entry::Unit {
        txn,
        commit,
        shards,
        effects,
    });
}

/// A shard thread starts: logs if a sink is attached already (the AOF opened at start).
pub fn start_shard(data: &mut ShardData) {
    let on = data.shared.effects.on.load(Ordering::Acquire);
    data.effects.on = on;
    data.keyspace.log_expired(on || data.tracking.armed);
}

/// This shard stands at barrier `id` of every shard (a snapshot cut, a whole-keyspace
/// command): whatever it logged before goes before the barrier in the stream, then
/// `effects` (the barrier's own command, logged by one shard). Also where a shard starts
/// or stops logging (`on`, read once for the barrier by its coordinator, so that every
/// shard switches at the same barrier): sinks attach and detach at barriers.
pub fn at_barrier(data: &mut ShardData, id: u64, on: bool, effects: Effects) {
    let was = data.effects.on;
    if was {
        log_expired(data);
        data.effects.entries.push(Entry::Cut { id, effects });
    }
    if on != was {
        data.effects.on = on;
        data.keyspace.log_expired(on || data.tracking.armed);
        if on {
            data.effects.entries.push(Entry::Cut {
                id,
                effects: Effects::default(),
            });
        }
    }
}

/// Bytes of a whole-keyspace command kept as sent ([`WholeArgv`]): `FLUSHALL ASYNC` is
/// 13, SWAPDB with two 10-digit database numbers 26.
pub const WHOLE_ARGV_BYTES: usize = 32;
/// Arguments (the name included) of a whole-keyspace command kept as sent: SWAPDB's 3.
pub const WHOLE_ARGV_ARGS: usize = 3;

/// A whole-keyspace command (FLUSHALL, FLUSHDB, SWAPDB) as its client sent it, which is
/// how Redis 7.0 propagates it (`forceCommandPropagation` of the client's argv: the
/// name's case, FLUSHALL's and FLUSHDB's `ASYNC|SYNC`), kept inline so that a barrier
/// request stays `Copy`. Empty (a full sync's load, a form too long to keep, which a
/// valid one never is): the canonical form is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeArgv {
    bytes: [u8; WHOLE_ARGV_BYTES],
    /// End of each argument in `bytes`.
    ends: [u8; WHOLE_ARGV_ARGS],
    args: u8,
}

impl Default for WholeArgv {
    fn default() -> Self {
        Self {
            bytes: [0; WHOLE_ARGV_BYTES],
            ends: [0; WHOLE_ARGV_ARGS],
            args: 0,
        }
    }
}

impl WholeArgv {
    /// `argv` as sent, or empty when it does not fit.
    pub fn new(argv: &[&[u8]]) -> Self {
        let mut w = Self::default();
        let total: usize = argv.iter().map(|a| a.len()).sum();
        if argv.len() > WHOLE_ARGV_ARGS || total > WHOLE_ARGV_BYTES {
            return w;
        }
        let mut at = 0;
        for (i, a) in argv.iter().enumerate() {
            w.bytes[at..at + a.len()].copy_from_slice(a);
            at += a.len();
            // At most WHOLE_ARGV_BYTES (32).
            w.ends[i] = at as u8;
        }
        w.args = argv.len() as u8;
        w
    }

    /// The arguments, none when empty.
    pub fn args(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends[..usize::from(self.args)]
            .iter()
            .map(|&end| {
                let a = &self.bytes[start..usize::from(end)];
                start = usize::from(end);
                a
            })
            .collect()
    }
}

/// The command a whole-keyspace barrier applied (FLUSHALL, FLUSHDB, SWAPDB), as effects,
/// logged in `client_db` (the sender's database) as Redis propagates them: as `sent`
/// (when kept), else in the canonical form.
pub fn whole_effects(
    whole: Option<crate::atomic::watch::Whole>,
    client_db: usize,
    sent: &WholeArgv,
) -> Effects {
    use crate::atomic::watch::Whole;
    let mut fx = Effects::default();
    let sent = sent.args();
    let db = match whole {
        Some(Whole::FlushAll | Whole::Swap(..)) => client_db,
        Some(Whole::FlushDb(db)) => db,
        None => return fx,
    };
    if !sent.is_empty() {
        fx.push(db, &sent);
        return fx;
    }
    match whole {
        Some(Whole::FlushAll) => fx.push(db, &[b"FLUSHALL"]),
        Some(Whole::FlushDb(_)) => fx.push(db, &[b"FLUSHDB"]),
        Some(Whole::Swap(a, b)) => {
            fx.push(
                db,
                &[
                    b"SWAPDB",
                    a.to_string().as_bytes(),
                    b.to_string().as_bytes(),
                ],
            );
        }
        None => {}
    }
    fx
}

/// End of a loop iteration: hands what this shard logged to the merger; with a sink that
/// needs durable acknowledgements (`appendfsync always`), waits until it is durable, so
/// the replies sent after this return follow their effects to disk.
pub fn publish(data: &mut ShardData) {
    if data.effects.on {
        // The active expiry cycle's deletions, and lazy ones of commands that log nothing.
        log_expired(data);
    }
    if data.effects.entries.is_empty() {
        return;
    }
    if data.keyspace.logs_expired() != (data.effects.on || data.tracking.armed) {
        // The keyspace was replaced at a barrier (DEBUG RELOAD, a load).
        data.keyspace
            .log_expired(data.effects.on || data.tracking.armed);
    }
    let entries = std::mem::take(&mut data.effects.entries);
    data.effects.published += 1;
    let ticket = data.effects.published;
    let hub = &data.shared.effects;
    hub.publish(data.id, ticket, entries);
    if hub.sync_acks.load(Ordering::Relaxed) {
        hub.wait_durable(data.id, ticket);
    }
}

// ---------------------------------------------------------------------------------------
// The hub: shards publish, the merger thread merges and feeds the sinks

struct Inbox {
    /// Per shard: its publications not yet taken by the merger, each with its stamp.
    entries: Vec<Vec<(u64, Vec<Entry>)>>,
    /// The last publication's stamp (of any shard): the merger emits ready logs oldest
    /// publication first, which keeps the clients' causal order (`merge.rs`).
    stamp: u64,
    /// Per shard: the ticket of its last publication.
    published: Vec<u64>,
    /// Per shard: every publication up to this ticket is written and flushed by every sink.
    durable: Vec<u64>,
    /// Per shard: the merger took publications up to this ticket but could not emit them
    /// all (they wait behind a transaction still running): waiting for them could block
    /// the shard that transaction needs.
    held: Vec<u64>,
    /// Someone wants a merge round now (a WAIT's `REPLCONF GETACK`, [`Hub::nudge`]).
    nudged: bool,
    stop: bool,
}

struct Sinks {
    list: Vec<(SinkId, Box<dyn Sink>)>,
    next_id: SinkId,
}

/// The stream's shared state (in `ServerShared`).
pub struct Hub {
    shards: usize,
    /// A sink is attached: shards log (taken at barriers, and at start).
    pub on: AtomicBool,
    /// A sink was attached since the merger's last round: the stream's next command
    /// selects its database.
    attached: AtomicBool,
    /// A sink acknowledges only durable bytes (`appendfsync always`): shards wait in
    /// [`publish`].
    pub sync_acks: AtomicBool,
    /// The next commit number of a multi-shard transaction.
    commit: AtomicU64,
    inbox: Mutex<Inbox>,
    wake: Condvar,
    durable: Condvar,
    sinks: Mutex<Sinks>,
    merger: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Bytes emitted so far (the stream's offset).
    pub offset: AtomicU64,
    next_cut: AtomicU64,
}

impl Hub {
    pub fn new(shards: usize) -> Self {
        Self {
            shards,
            on: AtomicBool::new(false),
            attached: AtomicBool::new(false),
            sync_acks: AtomicBool::new(false),
            commit: AtomicU64::new(0),
            inbox: Mutex::new(Inbox {
                entries: (0..shards).map(|_| Vec::new()).collect(),
                stamp: 0,
                published: vec![0; shards],
                durable: vec![0; shards],
                held: vec![0; shards],
                nudged: false,
                stop: false,
            }),
            wake: Condvar::new(),
            durable: Condvar::new(),
            sinks: Mutex::new(Sinks {
                list: Vec::new(),
                next_id: 1,
            }),
            merger: Mutex::new(None),
            offset: AtomicU64::new(0),
            next_cut: AtomicU64::new(1),
        }
    }

    /// The sinks, first in the replication locks' order (`replication::lock_order`).
    fn lock_sinks(&self) -> crate::replication::lock_order::Ranked<'_, Sinks> {
        use crate::replication::lock_order::{Rank, Ranked};
        Ranked::lock(&self.sinks, Rank::Sinks, "sinks")
    }

    /// A new barrier's id, and whether shards log after it: taken once by the barrier's
    /// coordinator for every shard.
    pub fn barrier(&self) -> (u64, bool) {
        (
            self.next_cut.fetch_add(1, Ordering::Relaxed),
            self.on.load(Ordering::Acquire),
        )
    }

    /// Attaches a sink and turns logging on (shards start at their next barrier, or at
    /// once before they run). Starts the merger thread on first use.
    pub fn attach(self: &Arc<Self>, sink: Box<dyn Sink>) -> SinkId {
        let id = {
            let mut s = self.lock_sinks();
            let id = s.next_id;
            s.next_id += 1;
            s.list.push((id, sink));
            id
        };
        self.attached.store(true, Ordering::Release);
        self.on.store(true, Ordering::Release);
        let mut m = self.merger.lock().expect("merger lock");
        if m.is_none() {
            let hub = Arc::clone(self);
            *m = Some(
                std::thread::Builder::new()
                    .name("percore-effects".into())
                    .spawn(move || hub.merge_loop())
                    .expect("spawning the effects merger"),
            );
        }
        id
    }

    /// Detaches a sink (it is dropped on the merger thread's next round or here). Logging
    /// stops at the next barrier when none is left.
    pub fn detach(&self, id: SinkId) -> Option<Box<dyn Sink>> {
        let mut s = self.lock_sinks();
        let i = s.list.iter().position(|(i, _)| *i == id)?;
        let (_, sink) = s.list.remove(i);
        if s.list.is_empty() {
            self.on.store(false, Ordering::Release);
            self.sync_acks.store(false, Ordering::Relaxed);
        }
        Some(sink)
    }

    /// Runs `f` on the sink `id` (on the caller's thread, between merge rounds).
    pub fn with_sink<R>(&self, id: SinkId, f: impl FnOnce(&mut dyn Sink) -> R) -> Option<R> {
        let mut s = self.lock_sinks();
        let (_, sink) = s.list.iter_mut().find(|(i, _)| *i == id)?;
        Some(f(sink.as_mut()))
    }

    fn publish(&self, shard: usize, ticket: u64, entries: Vec<Entry>) {
        let mut inbox = self.inbox.lock().expect("effects inbox");
        inbox.stamp += 1;
        let stamp = inbox.stamp;
        inbox.entries[shard].push((stamp, entries));
        inbox.published[shard] = ticket;
        drop(inbox);
        self.wake.notify_one();
    }

    /// Per shard, the ticket of its last publication: what was logged so far (for WAIT).
    pub fn published(&self) -> Vec<u64> {
        self.inbox.lock().expect("effects inbox").published.clone()
    }

    /// Whether every publication up to `tickets` (from [`Hub::published`]) was written to
    /// every sink.
    pub fn written(&self, tickets: &[u64]) -> bool {
        let inbox = self.inbox.lock().expect("effects inbox");
        tickets.iter().zip(&inbox.durable).all(|(t, d)| d >= t)
    }

    /// Waits until every publication up to `tickets` (from [`Hub::published`]) was written
    /// to every sink, at most `timeout`; whether it was (DEBUG LOADAOF's flush).
    pub fn wait_written(&self, tickets: &[u64], timeout: std::time::Duration) -> bool {
        self.wait_in_stream(tickets, timeout, false)
    }

    /// Waits until every publication up to `tickets` (from [`Hub::published`]) was
    /// written to every sink or is held behind a transaction still running (waiting for
    /// those could block the shard that transaction needs), at most `timeout`; whether
    /// it was (INFO's and ROLE's offset, `replication::primary::settle`).
    pub fn wait_emitted(&self, tickets: &[u64], timeout: std::time::Duration) -> bool {
        self.wait_in_stream(tickets, timeout, true)
    }

    fn wait_in_stream(&self, tickets: &[u64], timeout: std::time::Duration, held: bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut inbox = self.inbox.lock().expect("effects inbox");
        loop {
            let done = (tickets.iter().enumerate())
                .all(|(s, &t)| inbox.durable[s] >= t || (held && inbox.held[s] >= t));
            if done {
                return true;
            }
            let now = std::time::Instant::now();
            if inbox.stop || now >= deadline {
                return false;
            }
            inbox.nudged = true;
            self.wake.notify_one();
            inbox = self
                .durable
                .wait_timeout(inbox, deadline - now)
                .expect("effects inbox")
                .0;
        }
    }

    /// Runs a merge round soon even with nothing published (its sinks' `flush`).
    pub fn nudge(&self) {
        self.inbox.lock().expect("effects inbox").nudged = true;
        self.wake.notify_one();
    }

    fn wait_durable(&self, shard: usize, ticket: u64) {
        let mut inbox = self.inbox.lock().expect("effects inbox");
        while inbox.durable[shard] < ticket && inbox.held[shard] < ticket && !inbox.stop {
            inbox = self.durable.wait(inbox).expect("effects inbox");
        }
    }

    /// Stops the merger after a last round (shutdown).
    pub fn stop(&self) {
        self.inbox.lock().expect("effects inbox").stop = true;
        self.wake.notify_one();
        self.durable.notify_all();
        if let Some(h) = self.merger.lock().expect("merger lock").take() {
            let _ = h.join();
        }
    }

    fn merge_loop(&self) {
        let mut merger = merge::Merger::new(self.shards, 0);
        let mut last_tick = std::time::Instant::now();
        loop {
            let (batches, tickets, stop) = {
                let mut inbox = self.inbox.lock().expect("effects inbox");
                while inbox.entries.iter().all(Vec::is_empty) && !inbox.stop && !inbox.nudged {
                    let (g, timeout) = self
                        .wake
                        .wait_timeout(inbox, MERGER_TICK)
                        .expect("effects inbox");
                    inbox = g;
                    if timeout.timed_out() {
                        break;
                    }
                }
                inbox.nudged = false;
                let batches: Vec<Vec<(u64, Vec<Entry>)>> =
                    inbox.entries.iter_mut().map(std::mem::take).collect();
                (batches, inbox.published.clone(), inbox.stop)
            };
            for (s, publications) in batches.into_iter().enumerate() {
                for (stamp, entries) in publications {
                    merger.push_stamped(s, stamp, entries);
                }
            }
            if self.attached.swap(false, Ordering::AcqRel) {
                // A new sink reads from its first command on: it selects.
                merger.forget_db();
            }
            let mut sinks = self.lock_sinks();
            let mut emitted = 0u64;
            merger.run(&mut |ev| match ev {
                Event::Bytes(b) => {
                    emitted += b.len() as u64;
                    for (_, s) in &mut sinks.list {
                        s.write(b);
                    }
                }
                Event::Cut(id, read_from) => {
                    for (_, s) in &mut sinks.list {
                        *read_from |= s.cut(id);
                    }
                }
            });
            for (_, s) in &mut sinks.list {
                s.flush();
            }
            if last_tick.elapsed() >= MERGER_TICK {
                last_tick = std::time::Instant::now();
                for (_, s) in &mut sinks.list {
                    s.tick();
                }
            }
            drop(sinks);
            self.offset.fetch_add(emitted, Ordering::Release);
            {
                let mut inbox = self.inbox.lock().expect("effects inbox");
                for (s, &t) in tickets.iter().enumerate() {
                    if merger.drained(s) {
                        inbox.durable[s] = inbox.durable[s].max(t);
                    } else {
                        inbox.held[s] = inbox.held[s].max(t);
                    }
                }
            }
            self.durable.notify_all();
            if stop {
                return;
            }
        }
    }
}
