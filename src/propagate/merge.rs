//! The merger: one valid serial order from the shards' logs (pure logic, no I/O).
//!
//! Each shard's log holds, in the order the shard applied them:
//! - `Singles`: commands that were each a unit of their own (bare in the stream);
//! - `Atomic`: the commands of one unit that ran on this shard alone (a script, a
//!   transaction on one shard): wrapped in MULTI/EXEC when there are several;
//! - `Lock(txn)`: a multi-shard transaction took its locks here; its effects belong at
//!   this place in the serial order;
//! - `Unit`: that transaction finished (logged once, by the shard it finished on), with
//!   its commit number (taken when it held every lock; `None` when it never got there), the
//!   shards it locked and its effects;
//! - `Cut`: a barrier of every shard (a snapshot cut, FLUSHALL at the barrier), with the
//!   barrier's own effects.
//!
//! Units are emitted in commit-number order, each wrapped in MULTI/EXEC. To emit unit N,
//! the merger first emits, from each of N's shards, every `Singles`/`Atomic` logged before
//! `Lock(N)` there, leaving other transactions' `Lock`s in place: those entries ran before
//! N took its keys on that shard, and after any transaction whose `Lock` precedes them took
//! its keys (which therefore held them still: its commit number is above N's, or it has
//! none yet), so they touch none of that transaction's keys and commute with it. A `Lock`
//! at the head of a log whose transaction is emitted or aborted is dropped; one whose
//! transaction is still running holds back what follows it on that shard. A `Cut` is
//! emitted once every shard's log is at it (no transaction spans a barrier: multi-shard
//! transactions hold the write gate).
//!
//! Entries carry the stamp of their publication (one counter for every shard, taken
//! under the hub's inbox lock). When the heads of several logs can go, the oldest
//! publication goes first: a command whose reply a client saw was published before that
//! reply left, so a command the client sent next (to any shard) has a later stamp, and
//! the stream keeps the clients' causal order as Redis's does. Without it, two logs
//! released together (by a barrier whose entry one shard published late, with its next
//! command) went out in shard order: `LPUSH g` then `SET end` from one client came out
//! as `SET end`, `LPUSH g`.

use super::effects::Effects;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// A transaction's identity: its client's id and the reply slot of its EXEC.
pub type TxnId = (u64, u64);

/// One entry of a shard's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Singles(Effects),
    Atomic(Effects),
    Lock(TxnId),
    Unit {
        txn: TxnId,
        commit: Option<u64>,
        shards: Vec<u16>,
        effects: Effects,
    },
    Cut {
        id: u64,
        effects: Effects,
    },
}

/// What the merger hands its consumers.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Bytes of the stream (commands, SELECT, MULTI, EXEC).
    Bytes(&'a [u8]),
    /// Every effect before barrier `id` was emitted; what follows came after it. The
    /// consumer sets the flag when something starts reading the stream here (a replica's
    /// full sync, a new AOF file): the next command is then preceded by SELECT, as Redis
    /// resets `slaveseldb`; otherwise the stream goes on in its database (Redis's stream
    /// has no SELECT after a FLUSHALL that left the database as it was).
    Cut(u64, &'a mut bool),
}

struct Resolved {
    commit: Option<u64>,
    shards: Vec<u16>,
    effects: Effects,
}

/// The merger's state between rounds.
pub struct Merger {
    /// Per shard: its entries, each with its publication's stamp.
    queues: Vec<VecDeque<(u64, Entry)>>,
    /// The stamp [`Merger::push`] gives (stamped publications bring their own).
    next_stamp: u64,
    resolved: HashMap<TxnId, Resolved>,
    by_commit: BTreeMap<u64, TxnId>,
    /// Transactions emitted or aborted whose `Lock`s are still in some log.
    gone: HashMap<TxnId, usize>,
    next_commit: u64,
    /// The database the stream's consumer is in (`None`: unknown, the next command
    /// selects).
    db: Option<usize>,
    scratch: Vec<u8>,
}

impl Merger {
    /// A merger of `shards` logs whose first commit number is `first_commit`.
    pub fn new(shards: usize, first_commit: u64) -> Self {
        Self {
            queues: (0..shards).map(|_| VecDeque::new()).collect(),
            next_stamp: 0,
            resolved: HashMap::new(),
            by_commit: BTreeMap::new(),
            gone: HashMap::new(),
            next_commit: first_commit,
            db: None,
            scratch: Vec::new(),
        }
    }

    /// The stream's database is unknown from now on (a new consumer, a new file): the
    /// next command is preceded by SELECT.
    pub fn forget_db(&mut self) {
        self.db = None;
    }

    /// Takes a shard's published entries, stamped after everything pushed before.
    pub fn push(&mut self, shard: usize, entries: Vec<Entry>) {
        self.next_stamp += 1;
        self.push_stamped(shard, self.next_stamp, entries);
    }

    /// Takes a shard's publication `stamp` (the hub's publication counter: a later
    /// publication, of any shard, has a larger one).
    pub fn push_stamped(&mut self, shard: usize, stamp: u64, entries: Vec<Entry>) {
        self.next_stamp = self.next_stamp.max(stamp);
        for e in entries {
            match e {
                Entry::Unit {
                    txn,
                    commit,
                    shards,
                    effects,
                } => {
                    if let Some(c) = commit {
                        self.by_commit.insert(c, txn);
                    }
                    self.resolved.insert(
                        txn,
                        Resolved {
                            commit,
                            shards,
                            effects,
                        },
                    );
                    if commit.is_none() {
                        self.retire(txn);
                    }
                }
                other => self.queues[shard].push_back((stamp, other)),
            }
        }
    }

    /// Whether shard `s`'s log is fully emitted.
    pub fn drained(&self, s: usize) -> bool {
        self.queues[s].is_empty()
    }

    /// Emits everything that can be emitted now.
    pub fn run(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        loop {
            let mut progress = self.drain_heads(out);
            progress |= self.emit_next_unit(out);
            progress |= self.emit_cut(out);
            if !progress {
                break;
            }
        }
    }

    /// A transaction with no more effects to place: its `Lock`s are dropped where met.
    fn retire(&mut self, txn: TxnId) {
        if let Some(r) = self.resolved.remove(&txn) {
            if let Some(c) = r.commit {
                self.by_commit.remove(&c);
            }
            self.gone.insert(txn, r.shards.len());
        }
    }

    /// Emits the commands at the heads of the logs, the oldest publication first, and
    /// drops the `Lock`s of finished transactions met there.
    fn drain_heads(&mut self, out: &mut dyn FnMut(Event<'_>)) -> bool {
        let mut progress = false;
        loop {
            let mut oldest: Option<(u64, usize)> = None;
            for s in 0..self.queues.len() {
                let Some((stamp, front)) = self.queues[s].front() else {
                    continue;
                };
                match front {
                    Entry::Singles(_) | Entry::Atomic(_) => {
                        if oldest.is_none_or(|(o, _)| *stamp < o) {
                            oldest = Some((*stamp, s));
                        }
                    }
                    Entry::Lock(txn) => {
                        let txn = *txn;
                        if self.drop_gone_lock(txn) {
                            self.queues[s].pop_front();
                            progress = true;
                        }
                    }
                    Entry::Cut { .. } | Entry::Unit { .. } => {}
                }
            }
            let Some((_, s)) = oldest else {
                return progress;
            };
            let (_, e) = self.queues[s].pop_front().expect("front exists");
            self.emit_entry(&e, out);
            progress = true;
        }
    }

    /// Counts down a finished transaction's `Lock`; true when it was one.
    fn drop_gone_lock(&mut self, txn: TxnId) -> bool {
        let Some(left) = self.gone.get_mut(&txn) else {
            return false;
        };
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.gone.remove(&txn);
        }
        true
    }

    fn emit_next_unit(&mut self, out: &mut dyn FnMut(Event<'_>)) -> bool {
        let Some(&txn) = self.by_commit.get(&self.next_commit) else {
            return false;
        };
        let shards = self.resolved[&txn].shards.clone();
        // Every shard's Lock must be in: find each.
        let mut at = Vec::with_capacity(shards.len());
        for &s in &shards {
            let q = &self.queues[usize::from(s)];
            let Some(p) = q.iter().position(|(_, e)| *e == Entry::Lock(txn)) else {
                return false;
            };
            if q.iter()
                .take(p)
                .any(|(_, e)| matches!(e, Entry::Cut { .. }))
            {
                // Cannot happen (transactions hold the write gate): wait rather than
                // reorder across a barrier.
                return false;
            }
            at.push(p);
        }
        // The commands before the Locks, from every shard of the unit, the oldest
        // publication first (a stable sort keeps each shard's own order).
        let mut before = Vec::new();
        for (&s, &p) in shards.iter().zip(&at) {
            let s = usize::from(s);
            let mut kept = VecDeque::new();
            for _ in 0..p {
                let (stamp, e) = self.queues[s].pop_front().expect("before the lock");
                match e {
                    Entry::Singles(_) | Entry::Atomic(_) => before.push((stamp, e)),
                    other => kept.push_back((stamp, other)),
                }
            }
            let lock = self.queues[s].pop_front().map(|(_, e)| e);
            debug_assert_eq!(lock, Some(Entry::Lock(txn)));
            while let Some(e) = kept.pop_back() {
                self.queues[s].push_front(e);
            }
        }
        before.sort_by_key(|(stamp, _)| *stamp);
        for (_, e) in &before {
            self.emit_entry(e, out);
        }
        let r = self.resolved.remove(&txn).expect("resolved unit");
        self.by_commit.remove(&self.next_commit);
        self.next_commit += 1;
        self.emit_unit(&r.effects, out);
        true
    }

    fn emit_cut(&mut self, out: &mut dyn FnMut(Event<'_>)) -> bool {
        let mut id = None;
        for q in &self.queues {
            match q.front() {
                Some((_, Entry::Cut { id: c, .. })) if id.is_none_or(|i| i == *c) => id = Some(*c),
                _ => return false,
            }
        }
        let Some(id) = id else {
            return false;
        };
        for s in 0..self.queues.len() {
            if let Some((_, Entry::Cut { effects, .. })) = self.queues[s].pop_front() {
                self.emit_unit(&effects, out);
            }
        }
        let mut read_from = false;
        out(Event::Cut(id, &mut read_from));
        if read_from {
            // Read from here on (a replica's full sync, a new AOF file): its first command
            // carries SELECT, as Redis resets `slaveseldb`.
            self.db = None;
        }
        true
    }

    fn emit_entry(&mut self, e: &Entry, out: &mut dyn FnMut(Event<'_>)) {
        match e {
            Entry::Singles(fx) => {
                for (db, bytes) in fx.iter() {
                    self.select(db, out);
                    out(Event::Bytes(bytes));
                }
            }
            Entry::Atomic(fx) => self.emit_unit(fx, out),
            _ => unreachable!("only commands are emitted as entries"),
        }
    }

    /// One atomic unit: bare when it is one command, else MULTI ... EXEC (Redis 7.0's
    /// `propagatePendingCommands`: MULTI in the first command's database).
    fn emit_unit(&mut self, fx: &Effects, out: &mut dyn FnMut(Event<'_>)) {
        let wrap = fx.len() > 1;
        if wrap {
            self.select(fx.first_db().unwrap_or(0), out);
            out(Event::Bytes(b"*1\r\n$5\r\nMULTI\r\n"));
        }
        for (db, bytes) in fx.iter() {
            self.select(db, out);
            out(Event::Bytes(bytes));
        }
        if wrap {
            out(Event::Bytes(b"*1\r\n$4\r\nEXEC\r\n"));
        }
    }

    fn select(&mut self, db: usize, out: &mut dyn FnMut(Event<'_>)) {
        if self.db == Some(db) {
            return;
        }
        self.db = Some(db);
        self.scratch.clear();
        let n = db.to_string();
        super::effects::encode(&mut self.scratch, &[b"SELECT", n.as_bytes()]);
        out(Event::Bytes(&self.scratch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(db: usize, cmds: &[&str]) -> Effects {
        let mut e = Effects::default();
        for c in cmds {
            let argv: Vec<&[u8]> = c.split(' ').map(str::as_bytes).collect();
            e.push(db, &argv);
        }
        e
    }

    /// The stream as readable text: commands joined by spaces, one per line.
    fn run(m: &mut Merger) -> Vec<String> {
        let mut lines = Vec::new();
        m.run(&mut |ev| match ev {
            Event::Bytes(b) => {
                let text = String::from_utf8_lossy(b);
                let words: Vec<&str> = text
                    .split("\r\n")
                    .filter(|w| !w.is_empty() && !w.starts_with('*') && !w.starts_with('$'))
                    .collect();
                lines.push(words.join(" "));
            }
            Event::Cut(id, read_from) => {
                lines.push(format!("cut {id}"));
                // Cut 9 is read from (a new consumer), others are not.
                *read_from = id == 9;
            }
        });
        lines
    }

    #[test]
    fn singles_stream_as_they_come_with_select_on_database_changes() {
        let mut m = Merger::new(2, 0);
        m.push(0, vec![Entry::Singles(fx(0, &["SET a 1", "SET b 2"]))]);
        m.push(1, vec![Entry::Singles(fx(3, &["SET c 3"]))]);
        assert_eq!(
            run(&mut m),
            ["SELECT 0", "SET a 1", "SET b 2", "SELECT 3", "SET c 3"]
        );
        m.push(0, vec![Entry::Atomic(fx(3, &["INCR x", "INCR y"]))]);
        assert_eq!(run(&mut m), ["MULTI", "INCR x", "INCR y", "EXEC"]);
        m.push(1, vec![Entry::Atomic(fx(3, &["INCR z"]))]);
        assert_eq!(run(&mut m), ["INCR z"]);
    }

    #[test]
    fn a_unit_waits_for_its_commit_number_and_every_lock() {
        let (t1, t2) = ((1, 1), (2, 1));
        let mut m = Merger::new(2, 0);
        // Shard 0: t2 locked first, then a single, then t1 locked (t1 got commit 0).
        m.push(
            0,
            vec![
                Entry::Singles(fx(0, &["SET s0 a"])),
                Entry::Lock(t2),
                Entry::Singles(fx(0, &["SET s0 b"])),
                Entry::Lock(t1),
                Entry::Singles(fx(0, &["SET s0 c"])),
            ],
        );
        assert_eq!(run(&mut m), ["SELECT 0", "SET s0 a"]);
        m.push(
            1,
            vec![
                Entry::Lock(t1),
                Entry::Unit {
                    txn: t2,
                    commit: Some(1),
                    shards: vec![0],
                    effects: fx(0, &["SET t2 x", "SET t2 y"]),
                },
            ],
        );
        // t2 (commit 1) waits for t1 (commit 0).
        assert!(run(&mut m).is_empty());
        m.push(
            1,
            vec![Entry::Unit {
                txn: t1,
                commit: Some(0),
                shards: vec![0, 1],
                effects: fx(0, &["SET t1 a", "SET t1 b"]),
            }],
        );
        assert_eq!(
            run(&mut m),
            [
                "SET s0 b", "MULTI", "SET t1 a", "SET t1 b", "EXEC", "MULTI", "SET t2 x",
                "SET t2 y", "EXEC", "SET s0 c"
            ]
        );
        assert!(m.drained(0) && m.drained(1));
    }

    #[test]
    fn an_aborted_transaction_lets_its_shards_go_on() {
        let t = (7, 3);
        let mut m = Merger::new(2, 0);
        m.push(0, vec![Entry::Lock(t), Entry::Singles(fx(0, &["SET a 1"]))]);
        m.push(1, vec![Entry::Lock(t)]);
        assert!(run(&mut m).is_empty());
        m.push(
            1,
            vec![Entry::Unit {
                txn: t,
                commit: None,
                shards: vec![0, 1],
                effects: Effects::default(),
            }],
        );
        assert_eq!(run(&mut m), ["SELECT 0", "SET a 1"]);
        assert!(m.drained(0) && m.drained(1));
    }

    #[test]
    fn a_cut_comes_after_everything_before_it_on_every_shard() {
        let mut m = Merger::new(2, 0);
        m.push(
            0,
            vec![
                Entry::Singles(fx(0, &["SET a 1"])),
                Entry::Cut {
                    id: 9,
                    effects: fx(0, &["FLUSHALL"]),
                },
                Entry::Singles(fx(0, &["SET a 2"])),
            ],
        );
        assert_eq!(run(&mut m), ["SELECT 0", "SET a 1"]);
        m.push(
            1,
            vec![
                Entry::Singles(fx(0, &["SET b 1"])),
                Entry::Cut {
                    id: 9,
                    effects: Effects::default(),
                },
            ],
        );
        assert_eq!(
            run(&mut m),
            ["SET b 1", "FLUSHALL", "cut 9", "SELECT 0", "SET a 2"]
        );
    }

    #[test]
    fn a_cut_nobody_reads_from_keeps_the_database() {
        let mut m = Merger::new(1, 0);
        m.push(
            0,
            vec![
                Entry::Singles(fx(3, &["SET a 1"])),
                Entry::Cut {
                    id: 4,
                    effects: fx(3, &["FLUSHALL"]),
                },
                Entry::Singles(fx(3, &["SET a 2"])),
                Entry::Cut {
                    id: 9,
                    effects: Effects::default(),
                },
                Entry::Singles(fx(3, &["SET a 3"])),
            ],
        );
        assert_eq!(
            run(&mut m),
            [
                "SELECT 3", "SET a 1", "FLUSHALL", "cut 4", "SET a 2", "cut 9", "SELECT 3",
                "SET a 3"
            ]
        );
    }

    /// Logs released together go out oldest publication first: shard 0 published its
    /// barrier entry late, with the command it ran next (`SET end`), after shard 1's
    /// command of the same client (`LPUSH g`, whose reply the client had seen).
    #[test]
    fn logs_released_together_keep_the_publication_order() {
        let mut m = Merger::new(2, 0);
        let cut = |effects| Entry::Cut { id: 5, effects };
        m.push_stamped(1, 1, vec![cut(fx(9, &["FLUSHALL"]))]);
        m.push_stamped(1, 2, vec![Entry::Singles(fx(9, &["LPUSH g 7"]))]);
        assert_eq!(run(&mut m), Vec::<String>::new());
        m.push_stamped(
            0,
            3,
            vec![
                cut(Effects::default()),
                Entry::Singles(fx(9, &["SET end 1"])),
            ],
        );
        assert_eq!(
            run(&mut m),
            ["SELECT 9", "FLUSHALL", "cut 5", "LPUSH g 7", "SET end 1"]
        );
        // The same before a transaction's unit: the commands before its Locks, oldest
        // first across its shards.
        let mut m = Merger::new(2, 0);
        let t = (1, 1);
        let u = (2, 2);
        m.push_stamped(0, 1, vec![Entry::Lock(u)]);
        m.push_stamped(
            1,
            2,
            vec![Entry::Lock(u), Entry::Singles(fx(0, &["SET b 1"]))],
        );
        m.push_stamped(
            0,
            3,
            vec![Entry::Singles(fx(0, &["SET a 1"])), Entry::Lock(t)],
        );
        m.push_stamped(1, 4, vec![Entry::Lock(t)]);
        m.push_stamped(
            1,
            5,
            vec![Entry::Unit {
                txn: t,
                commit: Some(0),
                shards: vec![0, 1],
                effects: fx(0, &["INCR x", "INCR y"]),
            }],
        );
        assert_eq!(
            run(&mut m),
            [
                "SELECT 0", "SET b 1", "SET a 1", "MULTI", "INCR x", "INCR y", "EXEC"
            ]
        );
    }
}
