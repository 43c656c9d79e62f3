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

pub mod remote;
pub mod session;
pub mod watch;

use crate::client::Client;
use crate::commands::{Command, Ctx, Exec, Gather, PartFn, Partial, flags};
use crate::forward::Forward;
use crate::shard::{Argv, Msg, ShardData};
use percore_net::mailbox::Outbox;
use percore_net::reactor::ConnId;
use percore_net::resp::{Protocol, ReplyWriter};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A lockable key: database and name.
pub type LockKey = (u16, Box<[u8]>);

/// The most commands one MULTI may queue; past it the transaction is refused at EXEC.
pub const MULTI_MAX_QUEUED_COMMANDS: usize = 1 << 20;
/// The most argument bytes one MULTI may queue (the sum over its queued commands).
pub const MULTI_MAX_QUEUED_BYTES: usize = 1 << 30;
/// The most pipelined requests one open transaction gathers (`Client::open_txn`); the
/// next one waits for it to finish.
pub const OPEN_TXN_MAX_COMMANDS: usize = 256;
/// The most argument bytes one open transaction gathers.
pub const OPEN_TXN_MAX_BYTES: usize = 1 << 20;

/// Key positions of `cmd` in `argv`, as the command table finds them (`Command::keys_of`:
/// the legacy range, else Redis's key specs, else the command's getkeys procedure), in the
/// table's order. A bad `numkeys` finds no key (the specs do not fit and the procedures
/// return none, as Redis's); the command then runs on the client's shard and answers its
/// own error. SORT locks its last STORE's destination, the one it writes.
pub fn key_positions(cmd: &Command, argv: &[&[u8]]) -> Vec<usize> {
    cmd.keys_of(argv).collect()
}

// ---------------------------------------------------------------------------------------
// The lock table of one shard

/// The holder and the waiters of one key. A claim exists while the key is held or awaited.
#[derive(Default)]
struct Claim {
    held: bool,
    /// Tickets of the waiters for this key, in arrival order.
    queue: VecDeque<u64>,
}

impl Claim {
    /// Puts `ticket` in its place (tickets are handed out in arrival order; a waiter let
    /// through and stopped again keeps its old one).
    fn enqueue(&mut self, ticket: u64) {
        let at = self.queue.partition_point(|&t| t < ticket);
        self.queue.insert(at, ticket);
    }

    fn dequeue(&mut self, ticket: u64) {
        if let Some(i) = self.queue.iter().position(|&t| t == ticket) {
            self.queue.remove(i);
        }
    }
}

/// Something waiting on this shard for keys to be released.
enum Waiter {
    /// A transaction waiting for its locks here (its current part is this shard).
    Txn(Box<Txn>),
    /// Forwarded commands of shard `from`, stopped at the first one whose key is claimed.
    /// Later mail from `from` waits behind it.
    Forward { from: usize, batch: Forward },
}

/// A waiter in the FIFO, with what it waits for.
struct Parked {
    waiter: Waiter,
    /// Its keys here (a transaction's are moved out of its plan while it waits).
    keys: Vec<LockKey>,
    whole: bool,
    sender: Option<usize>,
    /// Of its keys, how many are held or awaited by an earlier waiter (it goes on at 0).
    blocked: usize,
}

/// A waiter the lock table let through.
pub enum Ready {
    /// Holds its locks here now: continue it with [`advance`].
    Txn(Box<Txn>),
    /// Run the rest of the batch; if it stops again, park it back with ticket `at`.
    Forward {
        from: usize,
        batch: Forward,
        at: u64,
    },
}

/// The intent locks of one shard and what waits for them.
///
/// Each key keeps the FIFO of its waiters; a waiter goes on when it is first in the queue
/// of every key it waits for and none of them is held (and, for forwarded commands, no
/// earlier batch of the same sender waits; for a whole-shard claim, nothing is held and
/// nothing waits before it). Only waiters whose situation changed are looked at again
/// (`candidates`), so a release costs in proportion to the keys it frees, not to the
/// length of the FIFO.
#[derive(Default)]
pub struct Locks {
    claims: HashMap<LockKey, Claim>,
    /// Keys held (the claims with `held`).
    held_keys: usize,
    /// A transaction holds the whole shard (it runs a keyless command such as FLUSHALL,
    /// DBSIZE or KEYS inside MULTI).
    whole_held: bool,
    /// Tickets of the waiters for the whole shard.
    whole_waiting: BTreeSet<u64>,
    /// The waiters by ticket (arrival order). Bounded by the connections of all shards
    /// (each has at most one transaction in flight) plus the forward batches in the
    /// mailboxes.
    waiting: BTreeMap<u64, Parked>,
    next_ticket: u64,
    /// Per sender shard, the tickets of its parked forward batches, in order.
    senders: HashMap<usize, VecDeque<u64>>,
    /// Waiters that may be able to go on: looked at by `next_ready`.
    candidates: Vec<u64>,
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
    /// How the script running now may reach other shards (`remote`).
    pub script_ctx: remote::ScriptCtx,
    /// Every shard taken by the plain script running now (`remote::try_acquire`).
    acquired: Option<remote::Acquired>,
    /// Numbers the units of plain scripts that took every shard.
    next_script_txn: u64,
    /// The inbox's wake-up socket is watched on the ring (`remote::serve_queued`).
    pub calls_armed: bool,
    /// The plain script that just ran must run again as a transaction holding every
    /// shard (`remote::may_call_out`); dispatch starts it.
    pub rerun_global: bool,
    /// A plain script could not take every shard when it named another shard's key: its
    /// identity joins `global_scripts` (`remote::learn`).
    pub learn: bool,
    /// Scripts (SHA1 or `fn:` + function name) that named another shard's key while
    /// other shards were busy: they start holding every shard (`remote::hinted`).
    pub global_scripts: std::collections::HashSet<Box<[u8]>>,
}

impl Locks {
    /// Whether any key of this shard is locked or awaited. One load; the hot path checks
    /// only this.
    #[inline]
    pub fn busy(&self) -> bool {
        self.busy
    }

    fn refresh(&mut self) {
        self.busy = !self.claims.is_empty() || self.whole_held || !self.waiting.is_empty();
    }

    /// Whether a request arriving now for `keys` (or the whole shard) must wait.
    fn conflicts(&self, keys: &[LockKey], whole: bool) -> bool {
        if !self.busy {
            return false;
        }
        if self.whole_held || !self.whole_waiting.is_empty() {
            return true;
        }
        if whole {
            return !self.claims.is_empty() || !self.waiting.is_empty();
        }
        keys.iter().any(|k| self.claims.contains_key(k))
    }

    /// Whether a single command `cmd` with `argv` in `db`, arriving now, must wait.
    pub fn blocks(&self, db: usize, cmd: &Command, argv: &[&[u8]]) -> bool {
        if !self.busy {
            return false;
        }
        if self.whole_held || !self.whole_waiting.is_empty() {
            return true;
        }
        let db = db as u16;
        cmd.keys_of(argv)
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
        cmd.keys_of(argv).any(|p| {
            self.claims
                .get(&(db, Box::from(argv[p])))
                .is_some_and(|c| c.held)
        })
    }

    /// Whether forwarded commands of `from` are parked here (later ones wait behind).
    pub fn sender_parked(&self, from: usize) -> bool {
        self.busy && self.senders.get(&from).is_some_and(|q| !q.is_empty())
    }

    fn hold(&mut self, keys: &[LockKey], whole: bool) {
        for k in keys {
            let c = self.claims.entry(k.clone()).or_default();
            debug_assert!(!c.held, "a key is held once");
            c.held = true;
        }
        self.held_keys += keys.len();
        self.whole_held |= whole;
        self.busy = true;
    }

    /// A transaction's locks here are released (its `Msg::Unlock`).
    pub fn release_keys(&mut self, keys: &[LockKey], whole: bool) {
        self.release(keys, whole);
    }

    fn release(&mut self, keys: &[LockKey], whole: bool) {
        for k in keys {
            if let Some(c) = self.claims.get_mut(k)
                && c.held
            {
                c.held = false;
                self.held_keys -= 1;
                match c.queue.front() {
                    Some(&t) => self.unblock(t),
                    None => {
                        self.claims.remove(k);
                    }
                }
            }
        }
        if whole {
            self.whole_held = false;
            // Everything waited for the whole shard.
            self.candidates.extend(self.waiting.keys().copied());
        }
        if let Some((&t, _)) = self.waiting.first_key_value() {
            self.candidates.push(t);
        }
        self.released = true;
        self.refresh();
    }

    /// Parks `waiter` waiting for `keys` (or the whole shard), with a new ticket or, for a
    /// waiter let through that stops again, its old one.
    fn park(
        &mut self,
        waiter: Waiter,
        keys: Vec<LockKey>,
        whole: bool,
        sender: Option<usize>,
        ticket: Option<u64>,
    ) {
        let t = ticket.unwrap_or_else(|| {
            self.next_ticket += 1;
            self.next_ticket
        });
        let mut blocked = 0;
        for k in &keys {
            let c = self.claims.entry(k.clone()).or_default();
            let front = c.queue.front().copied();
            c.enqueue(t);
            if c.held || c.queue.front() != Some(&t) {
                blocked += 1;
            } else if let Some(f) = front {
                // Put back ahead of the waiter that was first.
                self.waiting.get_mut(&f).expect("queued").blocked += 1;
            }
        }
        if whole {
            self.whole_waiting.insert(t);
        }
        if let Some(s) = sender {
            let q = self.senders.entry(s).or_default();
            let at = q.partition_point(|&x| x < t);
            q.insert(at, t);
        }
        self.waiting.insert(
            t,
            Parked {
                waiter,
                keys,
                whole,
                sender,
                blocked,
            },
        );
        // It may find nothing in its way (its keys were only awaited by waiters let
        // through meanwhile): looked at with the others at the next release.
        self.candidates.push(t);
        self.busy = true;
    }

    fn enqueue_txn(&mut self, mut txn: Box<Txn>) {
        let part = &mut txn.plan[txn.locked];
        let (keys, whole) = (std::mem::take(&mut part.keys), part.whole);
        self.park(Waiter::Txn(txn), keys, whole, None, None);
    }

    /// Parks forwarded commands of `from` whose next command waits for `keys`; `at`: the
    /// ticket they had (they were let through and stopped again), keeping their place.
    pub fn park_forward(
        &mut self,
        from: usize,
        batch: Forward,
        keys: Vec<LockKey>,
        at: Option<u64>,
    ) {
        self.park(Waiter::Forward { from, batch }, keys, false, Some(from), at);
    }

    /// One of `t`'s keys is free for it now (released, or the waiter before it left).
    fn unblock(&mut self, t: u64) {
        let p = self.waiting.get_mut(&t).expect("a queued waiter is parked");
        p.blocked -= 1;
        if p.blocked == 0 {
            self.candidates.push(t);
        }
    }

    /// Whether the waiter with ticket `t` may go on now.
    fn may_go(&self, t: u64, p: &Parked) -> bool {
        if self.whole_held {
            return false;
        }
        if p.whole {
            return self.held_keys == 0
                && self.waiting.first_key_value().is_some_and(|(&f, _)| f == t);
        }
        if self.whole_waiting.first().is_some_and(|&w| w < t) {
            return false;
        }
        if let Some(s) = p.sender
            && self.senders.get(&s).and_then(|q| q.front()) != Some(&t)
        {
            return false;
        }
        p.blocked == 0
    }

    /// A waiter that may go on now, taken out of the FIFO (see [`Locks`]). A transaction
    /// let through holds its locks here on return.
    pub fn next_ready(&mut self) -> Option<Ready> {
        while let Some(t) = self.candidates.pop() {
            let Some(p) = self.waiting.get(&t) else {
                continue; // Let through already.
            };
            if !self.may_go(t, p) {
                continue;
            }
            let p = self.waiting.remove(&t).expect("looked up");
            // A transaction holds its keys from now on; a forward batch runs and lets
            // them go.
            let holds = matches!(p.waiter, Waiter::Txn(_));
            for k in &p.keys {
                let c = self.claims.get_mut(k).expect("a waiter's key is claimed");
                c.dequeue(t);
                // The next waiter of this key is first in its queue now.
                if !holds && let Some(&n) = c.queue.front() {
                    self.unblock(n);
                }
            }
            if p.whole {
                self.whole_waiting.remove(&t);
            }
            if let Some(s) = p.sender {
                let q = self.senders.get_mut(&s).expect("a parked sender");
                q.retain(|&x| x != t);
                match q.front() {
                    Some(&n) => self.candidates.push(n),
                    None => {
                        self.senders.remove(&s);
                    }
                }
            }
            if let Some((&f, _)) = self.waiting.first_key_value() {
                self.candidates.push(f);
            }
            let ready = match p.waiter {
                Waiter::Txn(mut txn) => {
                    self.hold(&p.keys, p.whole);
                    let part = &mut txn.plan[txn.locked];
                    part.keys = p.keys;
                    part.registered = true;
                    Ready::Txn(txn)
                }
                Waiter::Forward { from, batch } => {
                    for k in &p.keys {
                        if self
                            .claims
                            .get(k)
                            .is_some_and(|c| !c.held && c.queue.is_empty())
                        {
                            self.claims.remove(k);
                        }
                    }
                    Ready::Forward { from, batch, at: t }
                }
            };
            self.refresh();
            return Some(ready);
        }
        None
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
    /// CLIENT REPLY OFF/SKIP dropped this request's reply (a pipelined request gathered
    /// into an open transaction; never inside MULTI).
    pub discard: bool,
    /// EXEC's second ACL check refused it (the user's rules changed since it was queued):
    /// it answers this error and runs nothing.
    pub refused: Option<Box<str>>,
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

/// A command of an eager transaction (see `Txn::eager`), run part by part as each shard
/// is locked. With the stream of effects on, `fx` holds what its parts logged where they
/// ran (expired keys met, a keyed command's own effect): the transaction's unit takes
/// them in command order once every part ran (`merge_early`).
enum Early {
    /// A keyed command that ran on its owner: its reply.
    Reply {
        reply: Vec<u8>,
        fx: crate::propagate::Effects,
    },
    /// A split command: the parts run so far and the jobs of the shards still to lock;
    /// `wrote`: some part changed its shard.
    Parts {
        gather: Box<Gather>,
        part: PartFn,
        jobs: Vec<(usize, Argv)>,
        fx: crate::propagate::Effects,
        wrote: bool,
    },
    /// A split command with an odd number of key-value arguments: its arity error.
    Arity,
}

/// A transaction: its commands, its lock plan, and where it is.
pub struct Txn {
    /// The client's shard, connection and reply slot.
    pub origin: usize,
    pub conn: ConnId,
    pub seq: u64,
    pub client_id: u64,
    pub proto: Protocol,
    /// The client is in CLIENT NO-TOUCH mode: each shard leaves its keys' access times.
    pub no_touch: bool,
    /// Shards in ascending order, each with its keys.
    plan: Vec<Part>,
    /// Parts whose locks are held (`plan[..locked]`).
    locked: usize,
    /// Counted in the write gate until it finished.
    gated: bool,
    /// A watched key was touched: nothing runs, EXEC answers null.
    aborted: bool,
    cmds: Vec<Queued>,
    /// Argument bytes of `cmds` (an open transaction's limit).
    bytes: usize,
    next: usize,
    /// Where the reply of `cmds[next]` starts in `out` (dropped when it is `discard`).
    mark: usize,
    /// EXEC answers an array of every reply; a lone multi-key command (or an open
    /// transaction's gathered requests) answers each command's reply in turn.
    array: bool,
    /// Every command splits into independent per-shard parts (keyed and split commands,
    /// nothing watched, no session): each shard runs its parts as soon as it is locked,
    /// in command order, and the last shard locked merges the replies. Strict two-phase
    /// locking still holds (nothing is released before the last part ran), and with no
    /// watched key nothing can abort after the first part ran.
    eager: bool,
    early: Vec<Option<Early>>,
    /// The plan's keys are sorted and deduplicated (`seal`).
    sealed: bool,
    out: Vec<u8>,
    inflight: Option<Inflight>,
    /// A locked session (a script): its body, on the client's shard.
    session: Option<u64>,
    /// The client's user when it is restricted: the scripts the transaction runs check
    /// their calls as that user (as `dispatch` sets `ShardAcl::caller`).
    user: Option<std::sync::Arc<crate::acl::user::User>>,
    /// A REPLICAOF host port ran: the transaction's effects are not propagated.
    demoted: bool,
    /// The client's address and name, for the slow log wherever a command finishes.
    caller: (String, Option<Vec<u8>>),
    /// The session's call that went to another shard: where its reply starts in `out`.
    pending_call: Option<usize>,
    /// The stream of effects: the commit number taken at the lock point (with a lock
    /// logged), the effects so far, whether the current command wrote on some shard.
    commit: Option<u64>,
    effects: crate::propagate::Effects,
    wrote: bool,
    /// Its client tracks keys and its scripts remember their declared keys when they
    /// read (`tracking::script_runs` around each script step).
    tracks_scripts: bool,
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

    /// Adds a key to lock (duplicates go at `Txn::seal`).
    fn key(&mut self, shard: usize, key: LockKey) {
        self.part(shard).keys.push(key);
    }
}

/// Whether `cmd` runs as independent parts, one per shard it has keys on, with no data
/// carried between shards: a keyed command (all on its owner) or a split one (MGET, MSET,
/// DEL...). An eager transaction holds only such commands.
fn splits_by_shard(cmd: &Command) -> bool {
    matches!(cmd.exec, Exec::Keyed(_) | Exec::Split { .. })
}

/// Whether `cmd` is a script (EVAL, FCALL and their forms) whose declared keys live on
/// several shards: outside cluster mode it runs holding every shard (`remote`).
fn spans_shards_as_script(data: &ShardData, cmd: &Command, args: &[&[u8]], keys: &[usize]) -> bool {
    data.cluster.is_none()
        && is_script(cmd)
        && keys.split_first().is_some_and(|(&f, rest)| {
            rest.iter()
                .any(|&p| data.owner(args[p]) != data.owner(args[f]))
        })
}

/// Whether `cmd` runs a script.
pub fn is_script(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
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
        for q in cmds.iter().filter(|q| q.refused.is_none()) {
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
            let keys = key_positions(q.cmd, &args);
            if spans_shards_as_script(data, q.cmd, &args, &keys)
                || (array && data.cluster.is_none() && is_script(q.cmd))
            {
                // It runs holding every shard whole (`remote`).
                for s in 0..data.shards {
                    b.part(s).whole = true;
                }
                continue;
            }
            for p in keys {
                b.key(data.owner(args[p]), (q.db, Box::from(args[p])));
            }
        }
        for w in watched {
            let s = data.owner(&w.1);
            b.key(s, w.clone());
            b.part(s).watched.push(w.clone());
        }
        b.parts.sort_by_key(|p| p.shard);
        let eager = watched.is_empty()
            && !b.parts.iter().any(|p| p.whole)
            && cmds
                .iter()
                .all(|q| q.refused.is_some() || splits_by_shard(q.cmd));
        let bytes = cmds.iter().map(|q| q.argv.byte_len()).sum();
        Box::new(Txn {
            origin: data.id,
            conn: client.conn,
            seq,
            client_id: client.id,
            proto: client.proto,
            no_touch: client.no_touch,
            plan: b.parts,
            locked: 0,
            gated: false,
            aborted: false,
            cmds,
            bytes,
            next: 0,
            mark: 0,
            array,
            eager,
            early: Vec::new(),
            sealed: false,
            out: Vec::new(),
            inflight: None,
            session: None,
            user: (!client.acl_free)
                .then(|| client.acl_user.clone())
                .flatten(),
            pending_call: None,
            caller: (client.peer.clone(), client.name.clone()),
            demoted: false,
            commit: None,
            effects: crate::propagate::Effects::default(),
            wrote: false,
            tracks_scripts: false,
        })
    }

    /// Its client tracks keys: its scripts remember their declared keys when they read,
    /// on whatever shard they run (Redis's `server.script_caller`).
    pub fn track_scripts(&mut self) {
        self.tracks_scripts = true;
    }

    /// Whether this lone multi-key command should stay open (`Client::open_txn`) and gather
    /// the client's next pipelined requests before it starts: it would hold them anyway
    /// (`orders_later_requests`), and it takes locks on another shard, so one trip
    /// through the shards serves the whole pipeline instead of one trip per request.
    pub fn opens_group(&self) -> bool {
        self.session.is_none()
            && !self.array
            && self.orders_later_requests()
            && self.plan.iter().any(|p| p.shard != self.origin)
    }

    /// Whether `argv` fits in this open transaction's limits.
    pub fn has_room(&self, argv: &[&[u8]]) -> bool {
        let bytes: usize = argv.iter().map(|a| a.len() + 4).sum();
        self.cmds.len() < OPEN_TXN_MAX_COMMANDS && self.bytes + bytes <= OPEN_TXN_MAX_BYTES
    }

    /// Adds a command with keys to this open transaction (not started yet): its keys join
    /// the locks to take. The caller checked `has_room`.
    pub fn push(&mut self, data: &ShardData, q: Queued) {
        debug_assert!(self.locked == 0 && self.next == 0, "not started");
        let mut b = PlanBuilder {
            parts: std::mem::take(&mut self.plan),
        };
        let mut args = Vec::new();
        q.argv.fill(&mut args);
        for p in key_positions(q.cmd, &args) {
            b.key(data.owner(args[p]), (q.db, Box::from(args[p])));
        }
        b.parts.sort_by_key(|p| p.shard);
        self.plan = b.parts;
        self.eager &= splits_by_shard(q.cmd);
        self.bytes += q.argv.byte_len();
        self.cmds.push(q);
    }

    /// The reply slot this transaction answers (an open transaction gets it when it
    /// starts).
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Each part's keys sorted, each once (before the first lock).
    fn seal(&mut self) {
        for p in &mut self.plan {
            p.keys.sort_unstable();
            p.keys.dedup();
        }
        self.sealed = true;
    }

    /// `cmds[next]` answered: its reply stays, or is dropped when its request's was.
    fn complete(&mut self) {
        if self.cmds[self.next].discard {
            self.out.truncate(self.mark);
        }
        self.next += 1;
        self.mark = self.out.len();
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

    /// The barrier a queued REPLICAOF needs after this transaction: the role change
    /// (`replication::BarrierOp::ReplicaOf`) runs at a barrier of every shard, which
    /// starts once the transaction left the write gate; the client's later requests wait
    /// for it, so that its next write already finds the new role (Redis changes it inside
    /// EXEC).
    pub fn replicaof_after(&self) -> Option<crate::snapshot::Op> {
        self.cmds
            .iter()
            .any(|q| q.refused.is_none() && matches!(q.cmd.name, "replicaof" | "slaveof"))
            .then_some(crate::snapshot::Op::Replication(
                crate::replication::BarrierOp::ReplicaOf,
            ))
    }

    /// How a script step of this transaction may reach other shards: anywhere when it
    /// holds every shard whole, else only through its declared keys.
    fn script_ctx(&self, shards: usize) -> remote::ScriptCtx {
        if self.plan.len() == shards && self.plan.iter().all(|p| p.whole) {
            remote::ScriptCtx::GlobalTxn
        } else if self.cmds.len() == 1
            && !self.array
            && self.session.is_none()
            && self
                .plan
                .iter()
                .all(|p| !p.registered && p.watched.is_empty())
        {
            // A lone script that took no lock (its keys were free on their one shard):
            // as a connection's script there, it may take every shard or run again.
            remote::ScriptCtx::Plain
        } else {
            remote::ScriptCtx::Confined
        }
    }

    /// A lone script that took no lock must run again holding every shard (it named
    /// another shard's key and could not take them): its plan becomes every shard whole,
    /// from the first. False when the write gate is closed (it cannot start over now).
    fn restart_global(&mut self, data: &ShardData) -> bool {
        if !self.gated {
            if !data.shared.write_gate.enter(1) {
                return false;
            }
            self.gated = true;
        }
        self.make_global(data.shards);
        self.locked = 0;
        self.sealed = false;
        true
    }

    /// Takes every shard whole (a script run again after it named another shard's key).
    pub fn make_global(&mut self, shards: usize) {
        let mut b = PlanBuilder {
            parts: std::mem::take(&mut self.plan),
        };
        for s in 0..shards {
            b.part(s).whole = true;
        }
        b.parts.sort_by_key(|p| p.shard);
        self.plan = b.parts;
        self.eager = false;
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
    /// closed, try again once it opens. A lone script counts too: it may have to run
    /// again holding every shard (`restart_global`), which must not wait for the gate then.
    pub fn enter_gate(&mut self, data: &ShardData) -> bool {
        let lone_script = self.cmds.len() == 1 && !self.array && is_script(self.cmds[0].cmd);
        if self.plan.len() > 1 || self.plan.first().is_some_and(|p| p.whole) || lone_script {
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
    if data.tracking.armed {
        // Client tracking's NOLOOP: the transaction's client writes here.
        data.tracking.writer = txn.client_id;
    }
    if txn.locked == 0 && !txn.sealed {
        txn.seal();
    }
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
            }
        }
        if txn.plan[i].registered && !txn.plan[i].marked {
            // Its locks here were taken now, or by the lock table letting it through
            // (`Locks::next_ready`): its place in this shard's stream of effects.
            txn.plan[i].marked = crate::propagate::locked(data, (txn.client_id, txn.seq));
        }
        if !txn.plan[i].watched.is_empty() {
            let watched = std::mem::take(&mut txn.plan[i].watched);
            if !watch::Registry::check_and_unwatch(data, txn.client_id, &watched) {
                txn.aborted = true;
            }
        }
        txn.locked += 1;
        if txn.eager {
            with_no_touch(data, txn.no_touch, |data| run_early(data, &mut txn));
            if txn.locked == txn.plan.len() {
                merge_early(data, &mut txn);
            }
        }
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
    let effects = std::mem::take(&mut txn.effects);
    crate::propagate::finished(
        data,
        (txn.client_id, txn.seq),
        txn.commit,
        marked.collect(),
        if txn.demoted {
            crate::propagate::Effects::default()
        } else {
            effects
        },
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
    if txn.no_touch {
        return with_no_touch(data, true, |data| run_next_logged(data, txn, client));
    }
    run_next_logged(data, txn, client)
}

/// Runs `f` with this shard's keyspace in CLIENT NO-TOUCH mode when `on`.
fn with_no_touch<T>(data: &mut ShardData, on: bool, f: impl FnOnce(&mut ShardData) -> T) -> T {
    if !on {
        return f(data);
    }
    data.keyspace.set_no_touch(true);
    let r = f(data);
    data.keyspace.set_no_touch(false);
    r
}

fn run_next_logged(
    data: &mut ShardData,
    txn: &mut Txn,
    client: Option<&mut Client>,
) -> Option<usize> {
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
        return run_inflight(data, txn, inflight, client);
    }
    let q = &txn.cmds[txn.next];
    let (cmd, db) = (q.cmd, usize::from(q.db));
    if let Some(text) = &q.refused {
        let mark = txn.out.len();
        ReplyWriter {
            out: &mut txn.out,
            proto: txn.proto,
        }
        .error(text);
        record(data, txn, &txn.out[mark..]);
        txn.complete();
        return None;
    }
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
                taken = take_client(data, txn.conn);
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
            record(data, txn, &txn.out[mark..]);
            txn.complete();
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
            record(data, txn, &txn.out[mark..]);
            txn.complete();
            None
        }
        Exec::Hop(step) => {
            // A restricted user's script checks its calls as that user (its first step
            // reads the caller; later steps carry the user's name).
            data.acl.caller.clone_from(&txn.user);
            data.locks.script_ctx = txn.script_ctx(data.shards);
            let (result, before) = run_script_step(data, txn, cmd, db, &args, step);
            data.locks.script_ctx = remote::ScriptCtx::Confined;
            data.acl.caller = None;
            if std::mem::take(&mut data.locks.rerun_global) {
                if txn.restart_global(data) {
                    return Some(txn.plan[0].shard);
                }
                let mut w = ReplyWriter {
                    out: &mut txn.out,
                    proto: txn.proto,
                };
                w.error(&format!("ERR {}", crate::scripting::NON_LOCAL_KEY));
                txn.complete();
                return None;
            }
            touched(data, cmd, &args, db, before);
            txn.wrote = crate::propagate::step_ran(data, before);
            hop_result(data, txn, result)
        }
        Exec::Split { part, .. } => {
            let Some((gather, jobs)) = split_gather(data, cmd, &args, txn.proto) else {
                let mark = txn.out.len();
                crate::commands::wrong_arity(
                    cmd.name,
                    &mut ReplyWriter {
                        out: &mut txn.out,
                        proto: txn.proto,
                    },
                );
                record(data, txn, &txn.out[mark..]);
                txn.complete();
                return None;
            };
            txn.wrote = false;
            txn.inflight = Some(Inflight::Parts { gather, part, jobs });
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

/// An eager transaction holds its locks on this shard now: runs every part of its
/// commands that belongs here, in command order.
fn run_early(data: &mut ShardData, txn: &mut Txn) {
    if data.tracking.armed {
        data.tracking.writer = txn.client_id;
    }
    let me = data.id;
    let Txn {
        cmds,
        early,
        proto,
        origin,
        ..
    } = txn;
    let proto = *proto;
    if early.is_empty() {
        early.resize_with(cmds.len(), || None);
    }
    let mut args = Vec::new();
    for (q, slot) in cmds.iter().zip(early.iter_mut()) {
        if q.refused.is_some() {
            continue;
        }
        args.clear();
        q.argv.fill(&mut args);
        let (cmd, db) = (q.cmd, usize::from(q.db));
        match cmd.exec {
            Exec::Keyed(h) => {
                let owner = key_positions(cmd, &args)
                    .first()
                    .map_or(*origin, |&p| data.owner(args[p]));
                if owner != me {
                    continue;
                }
                let logged = data.effects.on;
                let outer = logged.then(|| data.effects.begin_capture());
                let before = data.keyspace.changes();
                let mut reply = Vec::new();
                let mut ctx = Ctx {
                    shard: data,
                    db,
                    proto,
                    client: None,
                };
                crate::crash::guarded(&args, || {
                    crate::snapshot::throttle_before_command(ctx.shard);
                    h(
                        &mut ctx,
                        &args,
                        &mut ReplyWriter {
                            out: &mut reply,
                            proto,
                        },
                    );
                });
                touched(data, cmd, &args, db, before);
                let mut fx = crate::propagate::Effects::default();
                if let Some(outer) = outer {
                    let changed = crate::propagate::step_ran(data, before);
                    crate::propagate::command_done(data, cmd, &args, db, changed, &reply);
                    fx = data.effects.end_capture(outer);
                }
                *slot = Some(Early::Reply { reply, fx });
            }
            Exec::Split { part, .. } => {
                if slot.is_none() {
                    *slot = Some(match split_gather(data, cmd, &args, proto) {
                        Some((gather, jobs)) => Early::Parts {
                            gather,
                            part,
                            jobs,
                            fx: crate::propagate::Effects::default(),
                            wrote: false,
                        },
                        None => Early::Arity,
                    });
                }
                let Some(Early::Parts {
                    gather,
                    part,
                    jobs,
                    fx,
                    wrote,
                }) = slot
                else {
                    continue;
                };
                let Some(i) = jobs.iter().position(|j| j.0 == me) else {
                    continue;
                };
                let (_, argv) = jobs.swap_remove(i);
                let mut sub = Vec::new();
                argv.fill(&mut sub);
                let outer = data.effects.on.then(|| data.effects.begin_capture());
                let (result, before) = run_here(data, db, proto, &sub, *part);
                touched(data, cmd, &sub, db, before);
                if let Some(outer) = outer {
                    *wrote |= crate::propagate::step_ran(data, before);
                    fx.append(data.effects.end_capture(outer));
                }
                gather.parts[me] = Some(result);
                gather.remaining -= 1;
            }
            _ => unreachable!("an eager transaction holds keyed and split commands only"),
        }
    }
}

/// Every shard of an eager transaction ran its parts: the replies, in command order.
fn merge_early(data: &mut ShardData, txn: &mut Txn) {
    let early = std::mem::take(&mut txn.early);
    for e in early {
        let cmd = txn.cmds[txn.next].cmd;
        let mut w = ReplyWriter {
            out: &mut txn.out,
            proto: txn.proto,
        };
        let mark = w.out.len();
        if let Some(text) = &txn.cmds[txn.next].refused {
            w.error(text);
            record(data, txn, &txn.out[mark..]);
            txn.complete();
            continue;
        }
        match e {
            Some(Early::Reply { reply, fx }) => {
                w.out.extend_from_slice(&reply);
                txn.effects.append(fx);
            }
            Some(Early::Parts {
                mut gather,
                fx,
                wrote,
                ..
            }) => {
                debug_assert_eq!(gather.remaining, 0, "every shard ran its part");
                let Exec::Split { merge, .. } = cmd.exec else {
                    unreachable!("parts of a split command")
                };
                merge(&mut gather, &mut w);
                if data.effects.on {
                    // Logged once, as itself, after what its parts met (as `run_inflight`).
                    txn.effects.append(fx);
                    let outer = data.effects.begin_capture();
                    let mut args = Vec::new();
                    txn.cmds[txn.next].argv.fill(&mut args);
                    let (db, reply) = (usize::from(txn.cmds[txn.next].db), &txn.out[mark..]);
                    crate::propagate::command_done(data, cmd, &args, db, wrote, reply);
                    txn.effects.append(data.effects.end_capture(outer));
                }
            }
            Some(Early::Arity) => crate::commands::wrong_arity(cmd.name, &mut w),
            None => w.error("ERR internal error: a command of the transaction did not run"),
        }
        record(data, txn, &txn.out[mark..]);
        txn.complete();
    }
}

/// The parts of a command still to run: per shard, its arguments.
type Jobs = Vec<(usize, Argv)>;

/// A split command's gathering of its parts and the parts to run, per shard; `None` when
/// its key-value arguments do not pair up (its arity error).
fn split_gather(
    data: &ShardData,
    cmd: &'static Command,
    args: &[&[u8]],
    proto: Protocol,
) -> Option<(Box<Gather>, Jobs)> {
    let stride = cmd.step.max(1) as usize;
    if !(args.len().saturating_sub(cmd.first_key as usize)).is_multiple_of(stride) {
        return None;
    }
    let (jobs, key_map, nkeys) = split_jobs(data, cmd, args);
    let gather = Gather {
        cmd,
        parts: (0..data.shards).map(|_| None).collect(),
        key_map,
        nkeys,
        remaining: jobs.len(),
        argv: Vec::new(),
        discard: false,
        proto,
    };
    Some((Box::new(gather), jobs))
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
            record(data, txn, &b);
            if data.effects.on {
                let q = &txn.cmds[txn.next];
                let mut args = Vec::new();
                q.argv.fill(&mut args);
                let (changed, db) = (txn.wrote, usize::from(q.db));
                crate::propagate::command_done(data, cmd, &args, db, changed, &b);
            }
            txn.out.extend_from_slice(&b);
            txn.complete();
            None
        }
        // A blocking command with nothing to take answers at once, as in Redis's MULTI.
        Partial::Block(spec) => hop_result(
            data,
            txn,
            crate::blocking::answer_without_blocking(&spec, txn.proto),
        ),
        Partial::Defer(crate::snapshot::Op::Replication(
            crate::replication::BarrierOp::ReplicaOf,
        )) => {
            // REPLICAOF queued its role change, which runs at the barrier EXEC requested
            // behind this transaction (`replicaof_after`). Made a replica, the server
            // drops its replicas: as in Redis, they never see this transaction.
            let q = &txn.cmds[txn.next];
            let mut args = Vec::new();
            q.argv.fill(&mut args);
            let no_one = args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"no"))
                && args.get(2).is_some_and(|a| a.eq_ignore_ascii_case(b"one"));
            txn.demoted |= !no_one;
            ReplyWriter {
                out: &mut txn.out,
                proto: txn.proto,
            }
            .ok();
            let mark = txn.mark;
            record(data, txn, &txn.out[mark..]);
            txn.complete();
            None
        }
        Partial::Defer(_) => {
            // SAVE/BGSAVE/SHUTDOWN/CLUSTER RESET run at a barrier of every shard, which
            // cannot start while this transaction holds its place in the write gate.
            let mut w = ReplyWriter {
                out: &mut txn.out,
                proto: txn.proto,
            };
            w.error("ERR this command is not supported inside a multi-shard transaction");
            txn.complete();
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
            txn.complete();
            None
        }
    }
}

fn run_inflight(
    data: &mut ShardData,
    txn: &mut Txn,
    inflight: Inflight,
    client: Option<&mut Client>,
) -> Option<usize> {
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
            data.locks.script_ctx = txn.script_ctx(data.shards);
            let (result, before) = run_script_step(data, txn, cmd, db, &args, step);
            data.locks.script_ctx = remote::ScriptCtx::Confined;
            if std::mem::take(&mut data.locks.rerun_global) && txn.restart_global(data) {
                return Some(txn.plan[0].shard);
            }
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
                // The client's own shard runs its part with the client, as outside a
                // transaction (INFO's server-wide sections come from there).
                let mut taken = None;
                let idx = txn.conn.index as usize;
                let client = match client {
                    Some(c) if me == txn.origin => Some(c),
                    None if me == txn.origin => {
                        taken = take_client(data, txn.conn);
                        taken.as_deref_mut()
                    }
                    _ => None,
                };
                let (result, before) = run_here_as(data, db, txn.proto, &args, part, client);
                if let Some(c) = taken {
                    data.clients[idx] = Some(c);
                }
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
            record(data, txn, &txn.out[mark..]);
            txn.complete();
            None
        }
    }
}

/// Runs `f` (a hop step, or this shard's part of a split command) here on `args`, guarded
/// as every command is; returns its result and the keyspace's change count before it.
fn run_here(
    data: &mut ShardData,
    db: usize,
    proto: Protocol,
    args: &[&[u8]],
    f: PartFn,
) -> (Partial, u64) {
    run_here_as(data, db, proto, args, f, None)
}

/// [`run_here`] for a hop step of the transaction's current command: a script of a
/// tracking client is watched for reads while it runs (`tracking::script_runs`), with
/// the declared keys of the command as queued (a later step's arguments differ).
fn run_script_step(
    data: &mut ShardData,
    txn: &Txn,
    cmd: &Command,
    db: usize,
    args: &[&[u8]],
    f: PartFn,
) -> (Partial, u64) {
    if !(txn.tracks_scripts && crate::tracking::is_script(cmd)) {
        return run_here(data, db, txn.proto, args, f);
    }
    let mut queued = Vec::new();
    txn.cmds[txn.next].argv.fill(&mut queued);
    crate::tracking::script_runs(data, txn.client_id, txn.origin, cmd, &queued);
    let ran = run_here(data, db, txn.proto, args, f);
    crate::tracking::script_ends(data);
    ran
}

/// The transaction's client out of its slot on this (its) shard, while a command runs
/// with it; the caller puts it back. `None` when the connection is gone or the caller
/// holds it.
fn take_client(data: &mut ShardData, conn: ConnId) -> Option<Box<Client>> {
    data.clients
        .get_mut(conn.index as usize)
        .and_then(|c| c.take_if(|c| c.conn == conn))
}

/// [`run_here`] with the client, when this is its shard.
fn run_here_as(
    data: &mut ShardData,
    db: usize,
    proto: Protocol,
    args: &[&[u8]],
    f: PartFn,
    client: Option<&mut Client>,
) -> (Partial, u64) {
    let before = data.keyspace.changes();
    let mut ctx = Ctx {
        shard: data,
        db,
        proto,
        client,
    };
    (crate::crash::guarded(args, || f(&mut ctx, args)), before)
}

/// A hop step of the current command changed this shard: its keys here are touched.
fn touch_original(data: &mut ShardData, txn: &Txn) {
    if !data.observes_writes() {
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
    if cmd.has(flags::WRITE) && data.observes_writes() {
        watch::after_write(data, cmd, args, db, before);
    }
}

/// Counts `cmds[next]`, which just answered `reply` here, in the command stats (under its
/// subcommand's row for a container) and logs it in the slow log when slow, with its
/// client's address and name (the transaction carries them: its client may be on another
/// shard, or out of its slot).
fn record(data: &mut ShardData, txn: &Txn, reply: &[u8]) {
    let q = &txn.cmds[txn.next];
    let took = data.took();
    let mut args = Vec::new();
    q.argv.fill(&mut args);
    data.stats
        .record_call(q.cmd, &args, took, reply.first() == Some(&b'-'), reply);
    let (peer, name) = &txn.caller;
    crate::stats::note_slow_as(data, q.cmd, took, &args, peer, name.as_deref());
}

#[cfg(test)]
mod tests {
    use super::key_positions;
    use crate::commands::lookup;

    fn keys(line: &str) -> Vec<usize> {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        key_positions(lookup(argv[0]).expect("a command"), &argv)
    }

    #[test]
    fn key_positions_follow_the_command_table() {
        assert_eq!(keys("MSET a 1 b 2"), vec![1, 3]);
        assert_eq!(keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), vec![1, 3, 4]);
        assert_eq!(keys("EVAL s 2 a b c"), vec![3, 4]);
        assert_eq!(keys("LMPOP 2 a b LEFT"), vec![2, 3]);
        // SORT writes its last STORE's destination, the only one it locks.
        assert_eq!(keys("SORT l STORE d1 STORE d2"), vec![1, 5]);
        assert_eq!(keys("SORT l BY store GET # STORE d"), vec![1, 7]);
        assert_eq!(keys("SORT_RO l STORE d"), vec![1]);
        // A bad numkeys finds no key: the command answers its own error.
        assert!(keys("ZUNIONSTORE d 5 a").is_empty());
        assert!(keys("EVAL s 3 a").is_empty());
        assert!(keys("SINTERCARD x a").is_empty());
        assert_eq!(keys("XREAD COUNT 2 STREAMS s1 s2 0 0"), vec![4, 5]);
    }
}
