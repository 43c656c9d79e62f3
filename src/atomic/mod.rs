//! Atomic execution across shards: transactions (MULTI/EXEC), multi-key commands whose keys
//! live on several shards, and (with the Lua layer) scripts.
//!
//! The scheme (see docs/architecture.md, "Atomicity across shards"): a [`Txn`] knows up
//! front every key it may touch, grouped by owner shard. It takes an exclusive intent lock
//! on its keys shard by shard, **in ascending shard order**, travelling as one boxed
//! message; on each shard the keys are claimed at once (the shard is single-threaded), and
//! a key already claimed makes the transaction wait in that shard's FIFO of waiters. Once
//! it holds every lock it runs its commands in order, hopping to each command's owner, then
//! releases every lock and answers. Ordered acquisition means a transaction that waits on
//! shard `s` holds locks only on shards below `s`, so no cycle of waits can form: no
//! deadlock, no timeout, no retry. Strict two-phase locking makes the result serializable.
//!
//! A single-shard request on an unlocked shard pays one predictable branch (`Locks::busy`);
//! on a shard with locks, a request whose key is claimed waits behind the lock, in order.

pub mod session;
pub mod watch;

use crate::client::Client;
use crate::commands::{Command, Ctx, Exec, Gather, PartFn, Partial, flags};
use crate::forward::Forward;
use crate::shard::{Argv, Msg, ShardData};
use percore_net::mailbox::Outbox;
use percore_net::reactor::ConnId;
use percore_net::resp::{Protocol, ReplyWriter};
use std::collections::{HashMap, HashSet, VecDeque};

/// A lockable key: database and name.
pub type LockKey = (u16, Box<[u8]>);

/// The most commands one MULTI may queue; past it the transaction is refused at EXEC.
pub const MULTI_MAX_QUEUED_COMMANDS: usize = 1 << 20;
/// The most argument bytes one MULTI may queue (the sum over its queued commands).
pub const MULTI_MAX_QUEUED_BYTES: usize = 1 << 30;

/// Key positions of `cmd` in `argv`: the table's range, or the `numkeys` forms the table
/// cannot express (SINTERCARD, ZUNIONSTORE, LMPOP, EVAL, SORT ... STORE, ...). A bad
/// `numkeys` yields the positions known without it (the command answers the error).
pub fn key_positions(cmd: &Command, argv: &[&[u8]]) -> Vec<usize> {
    let numkeys = |at: usize| -> Vec<usize> {
        let Some(n) = argv
            .get(at)
            .and_then(|a| crate::commands::parse_i64(a))
            .and_then(|n| usize::try_from(n).ok())
        else {
            return Vec::new();
        };
        let first = at + 1;
        if n == 0 || first + n > argv.len() {
            return Vec::new();
        }
        (first..first + n).collect()
    };
    match cmd.name {
        "sintercard" | "zinter" | "zunion" | "zdiff" | "zintercard" | "lmpop" | "zmpop" => {
            numkeys(1)
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let mut v = vec![1];
            v.extend(numkeys(2));
            v
        }
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall"
        | "fcall_ro" => numkeys(2),
        "sort" | "sort_ro" => sort_keys(argv),
        _ => cmd.key_positions(argv.len()).collect(),
    }
}

/// SORT's keys: the sorted key and, for SORT ... STORE dest, the destination.
fn sort_keys(argv: &[&[u8]]) -> Vec<usize> {
    let mut v = vec![1];
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if crate::commands::eq_ic(a, "STORE") && i + 1 < argv.len() {
            v.push(i + 1);
            i += 2;
        } else if crate::commands::eq_ic(a, "LIMIT") {
            i += 3;
        } else if crate::commands::eq_ic(a, "BY") || crate::commands::eq_ic(a, "GET") {
            i += 2;
        } else {
            i += 1;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// The lock table of one shard

/// Holders and waiters of one key.
#[derive(Default)]
struct Claim {
    held: bool,
    waiting: u32,
}

/// Something waiting on this shard for keys to be released.
enum Waiter {
    /// A transaction waiting for its locks here (its current part is this shard).
    Txn(Box<Txn>),
    /// Forwarded commands of shard `from`, stopped at the first one whose key is claimed;
    /// `keys` are that command's keys. Later mail from `from` waits behind it.
    Forward {
        from: usize,
        batch: Forward,
        keys: Vec<LockKey>,
    },
}

/// A waiter the lock table let through.
pub enum Ready {
    /// Holds its locks here now: continue it with [`advance`].
    Txn(Box<Txn>),
    /// Run the rest of the batch; if it stops again, park it back at `at`.
    Forward {
        from: usize,
        batch: Forward,
        at: usize,
    },
}

/// The intent locks of one shard and what waits for them.
#[derive(Default)]
pub struct Locks {
    claims: HashMap<LockKey, Claim>,
    /// A transaction holds the whole shard (it runs a keyless command such as FLUSHALL,
    /// DBSIZE or KEYS inside MULTI).
    whole_held: bool,
    whole_waiting: u32,
    /// FIFO of waiters. Its length is bounded by the connections of all shards (each has at
    /// most one transaction in flight) plus the forward batches in the mailboxes.
    waiting: VecDeque<Waiter>,
    /// Cached: anything held or waiting (the hot path reads only this).
    busy: bool,
    /// Connections of this shard whose next request waits for a claimed key; run again
    /// after every release here.
    pub held_back: Vec<ConnId>,
    /// The request `dispatch` just refused waits for a lock (not for the write gate).
    pub refused: bool,
    /// Locks were released here: waiters may go on (`Shard::pump_locks`).
    pub released: bool,
    /// Messages queued by code without an outbox (UNWATCH inside a client handler); sent
    /// after the batch.
    pub outgoing: Vec<(usize, Msg)>,
    /// Bodies of the locked sessions whose client is on this shard, by session number.
    bodies: HashMap<u64, Box<dyn session::SessionBody>>,
    next_session: u64,
}

impl Locks {
    /// Whether any key of this shard is locked or awaited. One load; the hot path checks
    /// only this.
    #[inline]
    pub fn busy(&self) -> bool {
        self.busy
    }

    fn refresh(&mut self) {
        self.busy = !self.claims.is_empty()
            || self.whole_held
            || self.whole_waiting > 0
            || !self.waiting.is_empty();
    }

    /// Whether a request arriving now for `keys` (or the whole shard) must wait.
    fn conflicts(&self, keys: &[LockKey], whole: bool) -> bool {
        if !self.busy {
            return false;
        }
        if self.whole_held || self.whole_waiting > 0 {
            return true;
        }
        if whole {
            return !self.claims.is_empty();
        }
        keys.iter().any(|k| self.claims.contains_key(k))
    }

    /// Whether a single command `cmd` with `argv` in `db`, arriving now, must wait.
    pub fn blocks(&self, db: usize, cmd: &Command, argv: &[&[u8]]) -> bool {
        if !self.busy {
            return false;
        }
        if self.whole_held || self.whole_waiting > 0 {
            return true;
        }
        let db = db as u16;
        key_positions(cmd, argv)
            .into_iter()
            .any(|p| self.claims.contains_key(&(db, Box::from(argv[p]))))
    }

    /// Whether a command of a batch let through the FIFO must stop again: only holders
    /// count (the waiters that remain are behind it).
    pub fn blocks_held(&self, db: usize, cmd: &Command, argv: &[&[u8]]) -> bool {
        if !self.busy {
            return false;
        }
        if self.whole_held {
            return true;
        }
        let db = db as u16;
        key_positions(cmd, argv).into_iter().any(|p| {
            self.claims
                .get(&(db, Box::from(argv[p])))
                .is_some_and(|c| c.held)
        })
    }

    /// Whether forwarded commands of `from` are parked here (later ones wait behind).
    pub fn sender_parked(&self, from: usize) -> bool {
        self.busy
            && self
                .waiting
                .iter()
                .any(|w| matches!(w, Waiter::Forward { from: f, .. } if *f == from))
    }

    fn hold(&mut self, keys: &[LockKey], whole: bool) {
        for k in keys {
            self.claims.entry(k.clone()).or_default().held = true;
        }
        self.whole_held |= whole;
        self.busy = true;
    }

    /// A transaction's locks here are released (its `Msg::Unlock`).
    pub fn release_keys(&mut self, keys: &[LockKey], whole: bool) {
        self.release(keys, whole);
    }

    fn release(&mut self, keys: &[LockKey], whole: bool) {
        for k in keys {
            if let Some(c) = self.claims.get_mut(k) {
                c.held = false;
                if c.waiting == 0 {
                    self.claims.remove(k);
                }
            }
        }
        if whole {
            self.whole_held = false;
        }
        self.released = true;
        self.refresh();
    }

    fn wait_on(&mut self, keys: &[LockKey], whole: bool) {
        for k in keys {
            self.claims.entry(k.clone()).or_default().waiting += 1;
        }
        if whole {
            self.whole_waiting += 1;
        }
    }

    fn stop_waiting(&mut self, keys: &[LockKey], whole: bool) {
        for k in keys {
            if let Some(c) = self.claims.get_mut(k) {
                c.waiting -= 1;
                if c.waiting == 0 && !c.held {
                    self.claims.remove(k);
                }
            }
        }
        if whole {
            self.whole_waiting -= 1;
        }
    }

    fn enqueue_txn(&mut self, txn: Box<Txn>) {
        let part = &txn.plan[txn.locked];
        self.wait_on(&part.keys, part.whole);
        self.waiting.push_back(Waiter::Txn(txn));
        self.busy = true;
    }

    /// Parks forwarded commands of `from` whose next command waits for `keys`; `at` puts
    /// them back where they were in the FIFO (they were let through and stopped again).
    pub fn park_forward(
        &mut self,
        from: usize,
        batch: Forward,
        keys: Vec<LockKey>,
        at: Option<usize>,
    ) {
        self.wait_on(&keys, false);
        let w = Waiter::Forward { from, batch, keys };
        match at {
            Some(i) if i <= self.waiting.len() => self.waiting.insert(i, w),
            _ => self.waiting.push_back(w),
        }
        self.busy = true;
    }

    /// The first waiter that may go on now, taken out of the FIFO: a waiter goes on when
    /// none of its keys is held or awaited by a waiter before it (per-key FIFO), and, for
    /// forwarded commands, no earlier batch of the same sender still waits. A transaction
    /// let through holds its locks here on return.
    pub fn next_ready(&mut self) -> Option<Ready> {
        if self.waiting.is_empty() {
            return None;
        }
        let mut ahead: HashSet<&LockKey> = HashSet::new();
        let mut ahead_whole = false;
        let mut senders: Vec<usize> = Vec::new();
        let mut found = None;
        for (i, w) in self.waiting.iter().enumerate() {
            let (keys, whole, sender) = match w {
                Waiter::Txn(t) => {
                    let p = &t.plan[t.locked];
                    (&p.keys, p.whole, None)
                }
                Waiter::Forward { from, keys, .. } => (keys, false, Some(*from)),
            };
            let blocked = self.whole_held
                || ahead_whole
                || sender.is_some_and(|s| senders.contains(&s))
                || if whole {
                    !ahead.is_empty() || self.claims.values().any(|c| c.held)
                } else {
                    keys.iter()
                        .any(|k| ahead.contains(k) || self.claims.get(k).is_some_and(|c| c.held))
                };
            if !blocked {
                found = Some(i);
                break;
            }
            ahead.extend(keys.iter());
            ahead_whole |= whole;
            if let Some(s) = sender {
                senders.push(s);
            }
        }
        let i = found?;
        let w = self.waiting.remove(i).expect("index from the scan");
        let ready = match w {
            Waiter::Txn(mut t) => {
                let p = &mut t.plan[t.locked];
                let (keys, whole) = (std::mem::take(&mut p.keys), p.whole);
                self.stop_waiting(&keys, whole);
                self.hold(&keys, whole);
                p.keys = keys;
                p.registered = true;
                Ready::Txn(t)
            }
            Waiter::Forward { from, batch, keys } => {
                self.stop_waiting(&keys, false);
                Ready::Forward { from, batch, at: i }
            }
        };
        self.refresh();
        Some(ready)
    }
}

/// The keys of the next forwarded command, as lock keys.
pub fn lock_keys(db: usize, cmd: &Command, argv: &[&[u8]]) -> Vec<LockKey> {
    key_positions(cmd, argv)
        .into_iter()
        .map(|p| (db as u16, Box::from(argv[p])))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Transactions

/// One command of a transaction, with its arguments and the database it runs in (SELECT
/// inside MULTI moves the database of the commands after it).
pub struct Queued {
    pub cmd: &'static Command,
    pub argv: Argv,
    pub db: u16,
}

/// The locks a transaction takes on one shard, and the watched keys it checks there.
struct Part {
    shard: usize,
    keys: Vec<LockKey>,
    whole: bool,
    watched: Vec<LockKey>,
    /// The locks are in the table (a transaction that runs entirely on one shard the
    /// moment it arrives takes none).
    registered: bool,
    /// Its place in this shard's stream of effects is logged (`propagate::locked`).
    marked: bool,
}

/// A multi-shard command in the middle of its steps inside a transaction.
enum Inflight {
    /// An `Exec::Hop` step to run on `shard`.
    Hop {
        shard: usize,
        step: PartFn,
        argv: Argv,
    },
    /// The parts of an `Exec::Split`/`Exec::All` command still to run, one per shard.
    Parts {
        gather: Box<Gather>,
        part: PartFn,
        jobs: Vec<(usize, Argv)>,
    },
}

/// A transaction: its commands, its lock plan, and where it is.
pub struct Txn {
    /// The client's shard, connection and reply slot.
    pub origin: usize,
    pub conn: ConnId,
    pub seq: u64,
    pub client_id: u64,
    pub proto: Protocol,
    /// Shards in ascending order, each with its keys.
    plan: Vec<Part>,
    /// Parts whose locks are held (`plan[..locked]`).
    locked: usize,
    /// Counted in the write gate until it finished.
    gated: bool,
    /// A watched key was touched: nothing runs, EXEC answers null.
    aborted: bool,
    cmds: Vec<Queued>,
    next: usize,
    /// EXEC answers an array of every reply; a lone multi-key command answers its reply.
    array: bool,
    out: Vec<u8>,
    inflight: Option<Inflight>,
    /// A locked session (a script): its body, on the client's shard.
    session: Option<u64>,
    /// The session's call that went to another shard: where its reply starts in `out`.
    pending_call: Option<usize>,
    /// The stream of effects: the commit number taken at the lock point (with a lock
    /// logged), the effects so far, whether the current command wrote on some shard.
    commit: Option<u64>,
    effects: crate::propagate::Effects,
    wrote: bool,
}

/// A finished transaction's reply, for its client's slot on this shard.
pub struct Done {
    pub conn: ConnId,
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// What a transaction touches: per shard, keys to lock, whether it needs the whole shard,
/// watched keys to check.
struct PlanBuilder {
    parts: Vec<Part>,
}

impl PlanBuilder {
    fn part(&mut self, shard: usize) -> &mut Part {
        if let Some(i) = self.parts.iter().position(|p| p.shard == shard) {
            return &mut self.parts[i];
        }
        self.parts.push(Part {
            shard,
            keys: Vec::new(),
            whole: false,
            watched: Vec::new(),
            registered: false,
            marked: false,
        });
        self.parts.last_mut().expect("just pushed")
    }

    fn key(&mut self, shard: usize, key: LockKey) {
        let p = self.part(shard);
        if !p.keys.contains(&key) {
            p.keys.push(key);
        }
    }
}

/// Whether `cmd` needs every shard (a keyless command other than a connection command).
fn needs_whole(cmd: &Command, argv: &[&[u8]]) -> bool {
    match cmd.exec {
        Exec::Client(_) | Exec::Multi(_) => false,
        Exec::All { .. } => true,
        Exec::Keyed(_) | Exec::Split { .. } | Exec::Hop(_) => key_positions(cmd, argv).is_empty(),
    }
}

impl Txn {
    /// A transaction of `cmds` for `client`'s reply slot `seq`, checking `watched` keys;
    /// `array`: EXEC's reply shape, else the one command's own reply.
    pub fn new(
        data: &ShardData,
        client: &Client,
        seq: u64,
        cmds: Vec<Queued>,
        watched: &[LockKey],
        array: bool,
    ) -> Box<Self> {
        let mut b = PlanBuilder { parts: Vec::new() };
        let mut args = Vec::new();
        for q in &cmds {
            args.clear();
            q.argv.fill(&mut args);
            if needs_whole(q.cmd, &args) {
                for s in 0..data.shards {
                    b.part(s).whole = true;
                }
                continue;
            }
            if matches!(q.cmd.exec, Exec::Client(_)) {
                continue;
            }
            for p in key_positions(q.cmd, &args) {
                b.key(data.owner(args[p]), (q.db, Box::from(args[p])));
            }
        }
        for w in watched {
            let s = data.owner(&w.1);
            b.key(s, w.clone());
            b.part(s).watched.push(w.clone());
        }
        b.parts.sort_by_key(|p| p.shard);
        Box::new(Txn {
            origin: data.id,
            conn: client.conn,
            seq,
            client_id: client.id,
            proto: client.proto,
            plan: b.parts,
            locked: 0,
            gated: false,
            aborted: false,
            cmds,
            next: 0,
            array,
            out: Vec::new(),
            inflight: None,
            session: None,
            pending_call: None,
            commit: None,
            effects: crate::propagate::Effects::default(),
            wrote: false,
        })
    }

    /// Adds `key` (on `shard`) to the locks to take (a session's declared key).
    fn lock_key(&mut self, shard: usize, key: LockKey) {
        let mut b = PlanBuilder {
            parts: std::mem::take(&mut self.plan),
        };
        b.key(shard, key);
        b.parts.sort_by_key(|p| p.shard);
        self.plan = b.parts;
    }

    /// Whether the client's later requests must wait for this transaction's reply (the
    /// client's `hop_barrier`) so that none overtakes it: not needed when it takes no lock
    /// outside one other shard and runs nothing on the client's shard, since everything
    /// the client sends that shard later is mailed behind it.
    pub fn orders_later_requests(&self) -> bool {
        !(self.plan.len() == 1
            && !self.plan[0].whole
            && self.plan[0].shard != self.origin
            && self.session.is_none()
            && !self
                .cmds
                .iter()
                .any(|q| matches!(q.cmd.exec, Exec::Client(_))))
    }

    /// The queued commands back (a transaction that did not start).
    pub fn into_cmds(self: Box<Self>) -> Vec<Queued> {
        self.cmds
    }

    /// Whether every command runs on `shard` (so, arriving there with its keys free, the
    /// whole transaction runs at once and needs no lock).
    fn runs_only_on(&self, shard: usize) -> bool {
        self.session.is_none()
            && self.plan.len() == 1
            && self.plan[0].shard == shard
            && !self.plan[0].whole
            && (shard == self.origin
                || !self
                    .cmds
                    .iter()
                    .any(|q| matches!(q.cmd.exec, Exec::Client(_))))
    }

    /// Counts the transaction in the write gate (a multi-shard one, so that no snapshot
    /// cut and no whole-keyspace barrier falls between its parts). False: the gate is
    /// closed, try again once it opens.
    pub fn enter_gate(&mut self, data: &ShardData) -> bool {
        if self.plan.len() > 1 || self.plan.first().is_some_and(|p| p.whole) {
            if !data.shared.write_gate.enter(1) {
                return false;
            }
            self.gated = true;
        }
        true
    }
}

/// Moves a transaction on from this shard: takes its locks here (or waits for them, or
/// goes on to the next shard of its plan), runs its commands that belong here, and goes
/// on to wherever the next one runs. When it finishes here, its locks are released
/// everywhere and its reply goes to the client's shard: returned when that is this one.
/// `client`: the transaction's client, when the caller holds it (EXEC in `dispatch`).
pub fn advance(
    data: &mut ShardData,
    outbox: &mut Outbox<Msg>,
    mut txn: Box<Txn>,
    mut client: Option<&mut Client>,
) -> Option<Done> {
    let me = data.id;
    while txn.locked < txn.plan.len() && !txn.aborted {
        let i = txn.locked;
        let shard = txn.plan[i].shard;
        if shard != me {
            outbox.send(shard, Msg::Txn(txn));
            return None;
        }
        if !txn.plan[i].registered {
            let (keys, whole) = (&txn.plan[i].keys, txn.plan[i].whole);
            if data.locks.conflicts(keys, whole) {
                data.locks.enqueue_txn(txn);
                return None;
            }
            if !(i + 1 == txn.plan.len() && txn.runs_only_on(me)) {
                data.locks.hold(keys, whole);
                txn.plan[i].registered = true;
                txn.plan[i].marked = crate::propagate::locked(data, (txn.client_id, txn.seq));
            }
        }
        if !txn.plan[i].watched.is_empty() {
            let watched = std::mem::take(&mut txn.plan[i].watched);
            if !watch::Registry::check_and_unwatch(data, txn.client_id, &watched) {
                txn.aborted = true;
            }
        }
        txn.locked += 1;
    }
    if !txn.aborted && txn.commit.is_none() {
        txn.commit = crate::propagate::lock_point(data, txn.plan.iter().any(|p| p.marked));
    }
    while !txn.aborted {
        while txn.next < txn.cmds.len() || txn.inflight.is_some() {
            if let Some(shard) = run_next(data, &mut txn, client.as_deref_mut()) {
                outbox.send(shard, Msg::Txn(txn));
                return None;
            }
        }
        let Some(id) = txn.session else {
            break;
        };
        // A locked session: its body runs on the client's shard.
        if me != txn.origin {
            outbox.send(txn.origin, Msg::Txn(txn));
            return None;
        }
        let reply = txn.pending_call.take().map(|mark| txn.out.split_off(mark));
        let Some(mut body) = data.locks.bodies.remove(&id) else {
            break;
        };
        let mut s = session::Session {
            data,
            txn: &mut txn,
            client: client.as_deref_mut(),
            finished: None,
        };
        body.resume(&mut s, reply);
        if let Some(r) = s.finished {
            txn.out = r;
            break;
        }
        data.locks.bodies.insert(id, body);
        if txn.pending_call.is_none() {
            // The body returned without finishing or waiting on a call: a bug of the body.
            data.locks.bodies.remove(&id);
            txn.out.clear();
            ReplyWriter {
                out: &mut txn.out,
                proto: txn.proto,
            }
            .error("ERR internal error: a locked session stopped without a reply");
            break;
        }
    }
    finish(data, outbox, txn)
}

/// Releases the locks, drops the watches of shards never reached, and builds the reply.
fn finish(data: &mut ShardData, outbox: &mut Outbox<Msg>, mut txn: Box<Txn>) -> Option<Done> {
    let me = data.id;
    for (i, p) in txn.plan.iter().enumerate() {
        if p.registered {
            if p.shard == me {
                data.locks.release(&p.keys, p.whole);
            } else {
                outbox.send(
                    p.shard,
                    Msg::Unlock {
                        keys: p.keys.clone(),
                        whole: p.whole,
                    },
                );
            }
        }
        if i >= txn.locked && !p.watched.is_empty() {
            unwatch_on(data, outbox, p.shard, txn.client_id, p.watched.clone());
        }
    }
    if txn.gated {
        data.shared.write_gate.leave(1);
    }
    if let Some(id) = txn.session {
        data.locks.bodies.remove(&id);
    }
    let marked = txn.plan.iter().filter(|p| p.marked).map(|p| p.shard as u16);
    crate::propagate::finished(
        data,
        (txn.client_id, txn.seq),
        txn.commit,
        marked.collect(),
        std::mem::take(&mut txn.effects),
    );
    let mut bytes = Vec::new();
    let mut w = ReplyWriter {
        out: &mut bytes,
        proto: txn.proto,
    };
    if txn.aborted {
        w.null_array();
    } else if txn.array {
        w.array(txn.cmds.len());
        bytes.extend_from_slice(&txn.out);
    } else {
        bytes = txn.out;
    }
    let done = Done {
        conn: txn.conn,
        seq: txn.seq,
        bytes,
    };
    if txn.origin == me {
        return Some(done);
    }
    outbox.send(
        txn.origin,
        Msg::Done {
            conn: done.conn,
            seq: done.seq,
            shard: me,
            result: Partial::Encoded(done.bytes),
        },
    );
    None
}

/// Drops `client`'s watches of `keys` on `shard`.
pub fn unwatch_on(
    data: &mut ShardData,
    outbox: &mut Outbox<Msg>,
    shard: usize,
    client: u64,
    keys: Vec<LockKey>,
) {
    if shard == data.id {
        data.watches.unwatch(client, &keys);
    } else {
        outbox.send(shard, Msg::Unwatch { client, keys });
    }
}

/// Drops every watch of `client` (UNWATCH, DISCARD, EXEC refused, RESET, a closed
/// connection), by owner shard; messages for other shards go through `send`.
pub fn unwatch_all(data: &mut ShardData, client: &mut Client, mut send: impl FnMut(usize, Msg)) {
    if client.watched.is_empty() {
        return;
    }
    let mut by_shard: Vec<Vec<LockKey>> = vec![Vec::new(); data.shards];
    for k in client.watched.drain(..) {
        by_shard[data.owner(&k.1)].push(k);
    }
    for (s, keys) in by_shard.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        if s == data.id {
            data.watches.unwatch(client.id, &keys);
        } else {
            send(
                s,
                Msg::Unwatch {
                    client: client.id,
                    keys,
                },
            );
        }
    }
}

/// Runs what of the transaction's next command belongs on this shard. `Some(shard)`: the
/// transaction must go on there. With the stream of effects on, what it logs here is the
/// transaction's (`Txn::effects`).
fn run_next(data: &mut ShardData, txn: &mut Txn, client: Option<&mut Client>) -> Option<usize> {
    if !data.effects.on {
        return run_next_here(data, txn, client);
    }
    let outer = data.effects.begin_capture();
    let next = run_next_here(data, txn, client);
    let fx = data.effects.end_capture(outer);
    txn.effects.append(fx);
    next
}

fn run_next_here(
    data: &mut ShardData,
    txn: &mut Txn,
    client: Option<&mut Client>,
) -> Option<usize> {
    let me = data.id;
    if let Some(inflight) = txn.inflight.take() {
        return run_inflight(data, txn, inflight);
    }
    let q = &txn.cmds[txn.next];
    let (cmd, db) = (q.cmd, usize::from(q.db));
    let mut args = Vec::new();
    q.argv.fill(&mut args);
    match cmd.exec {
        Exec::Multi(_) => unreachable!("transaction commands run at once, never queued"),
        Exec::Client(h) => {
            if me != txn.origin {
                return Some(txn.origin);
            }
            let mut taken = None;
            let client = if let Some(c) = client {
                Some(c)
            } else {
                taken = data
                    .clients
                    .get_mut(txn.conn.index as usize)
                    .and_then(|c| c.take_if(|c| c.conn == txn.conn));
                taken.as_deref_mut()
            };
            let mark = txn.out.len();
            let mut w = ReplyWriter {
                out: &mut txn.out,
                proto: txn.proto,
            };
            match client {
                Some(client) => {
                    let mut ctx = Ctx {
                        shard: data,
                        db,
                        proto: txn.proto,
                        client: Some(client),
                    };
                    h(&mut ctx, &args, &mut w);
                }
                // The connection is gone; its reply would be dropped anyway.
                None => w.null(),
            }
            if let Some(c) = taken {
                data.clients[txn.conn.index as usize] = Some(c);
            }
            record(data, cmd, &txn.out[mark..]);
            txn.next += 1;
            None
        }
        Exec::Keyed(h) => {
            let owner = key_positions(cmd, &args)
                .first()
                .map_or(me, |&p| data.owner(args[p]));
            if owner != me {
                return Some(owner);
            }
            let before = data.keyspace.changes();
            let mark = txn.out.len();
            let mut ctx = Ctx {
                shard: data,
                db,
                proto: txn.proto,
                client: None,
            };
            crate::crash::guarded(&args, || {
                crate::snapshot::throttle_before_command(ctx.shard);
                h(
                    &mut ctx,
                    &args,
                    &mut ReplyWriter {
                        out: &mut txn.out,
                        proto: txn.proto,
                    },
                );
            });
            touched(data, cmd, &args, db, before);
            if data.effects.on {
                let changed = crate::propagate::step_ran(data, before);
                let reply = &txn.out[mark..];
                crate::propagate::command_done(data, cmd, &args, db, changed, reply);
            }
            record(data, cmd, &txn.out[mark..]);
            txn.next += 1;
            None
        }
        Exec::Hop(step) => {
            let before = data.keyspace.changes();
            let mut ctx = Ctx {
                shard: data,
                db,
                proto: txn.proto,
                client: None,
            };
            let result = crate::crash::guarded(&args, || step(&mut ctx, &args));
            touched(data, cmd, &args, db, before);
            txn.wrote = crate::propagate::step_ran(data, before);
            hop_result(data, txn, result)
        }
        Exec::Split { part, .. } => {
            let stride = cmd.step.max(1) as usize;
            if !(args.len().saturating_sub(cmd.first_key as usize)).is_multiple_of(stride) {
                let mark = txn.out.len();
                crate::commands::wrong_arity(
                    cmd.name,
                    &mut ReplyWriter {
                        out: &mut txn.out,
                        proto: txn.proto,
                    },
                );
                record(data, cmd, &txn.out[mark..]);
                txn.next += 1;
                return None;
            }
            let (jobs, key_map, nkeys) = split_jobs(data, cmd, &args);
            txn.wrote = false;
            let gather = Gather {
                cmd,
                parts: (0..data.shards).map(|_| None).collect(),
                key_map,
                nkeys,
                remaining: jobs.len(),
                argv: Vec::new(),
                discard: false,
                proto: txn.proto,
            };
            txn.inflight = Some(Inflight::Parts {
                gather: Box::new(gather),
                part,
                jobs,
            });
            None
        }
        Exec::All { part, .. } => {
            txn.wrote = false;
            let jobs: Vec<(usize, Argv)> = (0..data.shards)
                .map(|s| (s, Argv::from_slices(&args)))
                .collect();
            let gather = Gather {
                cmd,
                parts: (0..data.shards).map(|_| None).collect(),
                key_map: Vec::new(),
                nkeys: 0,
                remaining: jobs.len(),
                argv: args.iter().map(|a| a.to_vec()).collect(),
                discard: false,
                proto: txn.proto,
            };
            txn.inflight = Some(Inflight::Parts {
                gather: Box::new(gather),
                part,
                jobs,
            });
            None
        }
    }
}

/// A split command's parts: per owner shard, `[name, its keys (with their values)...]`;
/// per shard the positions (among the keys) it was sent; the key count.
pub fn split_jobs(
    data: &ShardData,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> (Vec<(usize, Argv)>, Vec<Vec<u32>>, usize) {
    let stride = cmd.step.max(1) as usize;
    let positions: Vec<usize> = cmd.key_positions(argv.len()).collect();
    let mut key_map: Vec<Vec<u32>> = vec![Vec::new(); data.shards];
    for (i, &p) in positions.iter().enumerate() {
        key_map[data.owner(argv[p])].push(i as u32);
    }
    let mut jobs = Vec::new();
    for (s, idxs) in key_map.iter().enumerate() {
        if idxs.is_empty() {
            continue;
        }
        let mut sub: Vec<&[u8]> = vec![argv[0]];
        for &i in idxs {
            let p = positions[i as usize];
            sub.extend_from_slice(&argv[p..(p + stride).min(argv.len())]);
        }
        jobs.push((s, Argv::from_slices(&sub)));
    }
    (jobs, key_map, positions.len())
}

/// A hop step's result inside a transaction: the reply, or the next step.
fn hop_result(data: &mut ShardData, txn: &mut Txn, result: Partial) -> Option<usize> {
    let cmd = txn.cmds[txn.next].cmd;
    match result {
        Partial::Hop { shard, step, argv } => {
            txn.inflight = Some(Inflight::Hop { shard, step, argv });
            None
        }
        Partial::Encoded(b) => {
            record(data, cmd, &b);
            if data.effects.on {
                let q = &txn.cmds[txn.next];
                let mut args = Vec::new();
                q.argv.fill(&mut args);
                let (changed, db) = (txn.wrote, usize::from(q.db));
                crate::propagate::command_done(data, cmd, &args, db, changed, &b);
            }
            txn.out.extend_from_slice(&b);
            txn.next += 1;
            None
        }
        // A blocking command with nothing to take answers at once, as in Redis's MULTI.
        Partial::Block(spec) => hop_result(
            data,
            txn,
            crate::blocking::answer_without_blocking(&spec, txn.proto),
        ),
        Partial::Defer(_) => {
            // SAVE/BGSAVE/SHUTDOWN/CLUSTER RESET run at a barrier of every shard, which
            // cannot start while this transaction holds its place in the write gate.
            let mut w = ReplyWriter {
                out: &mut txn.out,
                proto: txn.proto,
            };
            w.error("ERR this command is not supported inside a multi-shard transaction");
            txn.next += 1;
            None
        }
        other => {
            let mut w = ReplyWriter {
                out: &mut txn.out,
                proto: txn.proto,
            };
            w.error(&format!(
                "ERR internal error: unexpected shard answer {other:?}"
            ));
            txn.next += 1;
            None
        }
    }
}

fn run_inflight(data: &mut ShardData, txn: &mut Txn, inflight: Inflight) -> Option<usize> {
    let me = data.id;
    let q = &txn.cmds[txn.next];
    let (cmd, db) = (q.cmd, usize::from(q.db));
    match inflight {
        Inflight::Hop { shard, step, argv } => {
            if shard != me {
                txn.inflight = Some(Inflight::Hop { shard, step, argv });
                return Some(shard);
            }
            let mut args = Vec::new();
            argv.fill(&mut args);
            let before = data.keyspace.changes();
            let mut ctx = Ctx {
                shard: data,
                db,
                proto: txn.proto,
                client: None,
            };
            let result = crate::crash::guarded(&args, || step(&mut ctx, &args));
            if data.keyspace.changes() != before {
                touch_original(data, txn);
            }
            txn.wrote |= crate::propagate::step_ran(data, before);
            hop_result(data, txn, result)
        }
        Inflight::Parts {
            mut gather,
            part,
            mut jobs,
        } => {
            if let Some(i) = jobs.iter().position(|j| j.0 == me) {
                let (_, argv) = jobs.swap_remove(i);
                let mut args = Vec::new();
                argv.fill(&mut args);
                let before = data.keyspace.changes();
                let mut ctx = Ctx {
                    shard: data,
                    db,
                    proto: txn.proto,
                    client: None,
                };
                let result = crate::crash::guarded(&args, || part(&mut ctx, &args));
                touched(data, cmd, &args, db, before);
                txn.wrote |= crate::propagate::step_ran(data, before);
                gather.parts[me] = Some(result);
                gather.remaining -= 1;
            }
            if let Some(&(next, _)) = jobs.first() {
                txn.inflight = Some(Inflight::Parts { gather, part, jobs });
                return Some(next);
            }
            let (Exec::Split { merge, .. } | Exec::All { merge, .. }) = cmd.exec else {
                unreachable!("parts of a split or all command")
            };
            let mark = txn.out.len();
            merge(
                &mut gather,
                &mut ReplyWriter {
                    out: &mut txn.out,
                    proto: txn.proto,
                },
            );
            if data.effects.on {
                let mut args = Vec::new();
                txn.cmds[txn.next].argv.fill(&mut args);
                let reply = &txn.out[mark..];
                crate::propagate::command_done(data, cmd, &args, db, txn.wrote, reply);
            }
            txn.wrote = false;
            record(data, cmd, &txn.out[mark..]);
            txn.next += 1;
            None
        }
    }
}

/// A hop step of the current command changed this shard: its keys here are touched.
fn touch_original(data: &mut ShardData, txn: &Txn) {
    if data.watches.is_empty() {
        return;
    }
    let q = &txn.cmds[txn.next];
    let mut args = Vec::new();
    q.argv.fill(&mut args);
    watch::after_write(data, q.cmd, &args, usize::from(q.db), u64::MAX);
}

/// After a command (or a part of one) ran here: touch its watched keys if it wrote.
#[inline]
fn touched(data: &mut ShardData, cmd: &'static Command, args: &[&[u8]], db: usize, before: u64) {
    if cmd.has(flags::WRITE) && !data.watches.is_empty() {
        watch::after_write(data, cmd, args, db, before);
    }
}

fn record(data: &mut ShardData, cmd: &'static Command, reply: &[u8]) {
    let took = data.took();
    data.stats
        .record_call(cmd, took, reply.first() == Some(&b'-'), reply);
}
