//! The numbered databases (SELECT 0..n) of one shard.

use crate::db::{Db, Entry};
use crate::hash::splitmix64;
use crate::table::{CutEntry, CutStats};

/// Redis's default `databases`.
pub const DEFAULT_DATABASES: usize = 16;

/// All databases of one shard.
pub struct Keyspace {
    dbs: Vec<Db>,
    /// SWAPDB calls (each a change).
    swaps: u64,
}

impl Keyspace {
    /// `databases` empty databases, each with its own seed derived from `hash_seed`.
    #[must_use]
    pub fn new(databases: usize, hash_seed: u64) -> Self {
        assert!(databases > 0, "a keyspace has at least one database");
        let mut seeds = hash_seed;
        Self {
            dbs: (0..databases)
                .map(|_| Db::new(splitmix64(&mut seeds)))
                .collect(),
            swaps: 0,
        }
    }

    /// Keeps per-slot counts and key lists in every database from now on (cluster mode).
    pub fn enable_slot_index(&mut self) {
        self.dbs.iter_mut().for_each(Db::enable_slot_index);
    }

    /// [`Keyspace::enable_slot_index`] when `on`.
    #[must_use]
    pub fn with_slot_index(mut self, on: bool) -> Self {
        if on {
            self.enable_slot_index();
        }
        self
    }

    /// Whether the databases keep per-slot counts (cluster mode).
    #[must_use]
    pub fn has_slot_index(&self) -> bool {
        self.dbs.first().is_some_and(Db::has_slot_index)
    }

    /// Keys in hash `slot` over all databases.
    #[must_use]
    pub fn keys_in_slot(&self, slot: u16) -> usize {
        self.dbs.iter().map(|db| db.keys_in_slot(slot)).sum()
    }

    /// Sets how every database tracks key accesses (`maxmemory-policy`).
    pub fn set_access_tracking(&mut self, access: crate::db::AccessTracking) {
        for db in &mut self.dbs {
            db.set_access_tracking(access);
        }
    }

    /// CLIENT NO-TOUCH on every database ([`crate::db::Db::set_no_touch`]).
    pub fn set_no_touch(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.set_no_touch(on);
        }
    }

    /// Turns every database's keyspace-event log on or off ([`crate::db::Db::set_event_log`]).
    pub fn set_event_log(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.set_event_log(on);
        }
    }

    /// CLIENT PAUSE: every database keeps its expired keys until `on` is false
    /// ([`crate::db::Db::set_expiry_paused`]).
    pub fn set_expiry_paused(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.set_expiry_paused(on);
        }
    }

    /// Number of databases.
    #[must_use]
    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    /// Database `index`; panics when out of range (the command layer validates SELECT).
    #[must_use]
    pub fn db(&self, index: usize) -> &Db {
        &self.dbs[index]
    }

    pub fn db_mut(&mut self, index: usize) -> &mut Db {
        &mut self.dbs[index]
    }

    /// SWAPDB. The keys blocked clients wait on stay with the database number, and every
    /// one of them is reported ready, to be checked (Redis's `scanDatabaseForReadyKeys`).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
        self.swaps += 1;
        if a != b && a < self.dbs.len() && b < self.dbs.len() {
            let (lo, hi) = (a.min(b), a.max(b));
            let (left, right) = self.dbs.split_at_mut(hi);
            left[lo].swap_waits(&mut right[0]);
            left[lo].ready_all_waited();
            right[0].ready_all_waited();
        }
    }

    /// Keys waited on by blocked clients, over every database.
    #[must_use]
    pub fn waited_total(&self) -> usize {
        self.dbs.iter().map(Db::waited_len).sum()
    }

    /// FLUSHALL that hands the old keys back (see [`Db::detach_contents`]) for freeing
    /// elsewhere.
    pub fn flush_all_detached(&mut self) -> Vec<Db> {
        self.dbs
            .iter_mut()
            .filter_map(Db::detach_contents)
            .collect()
    }

    /// FLUSHALL.
    pub fn flush_all(&mut self) {
        self.dbs.iter_mut().for_each(Db::clear);
    }

    /// Starts a copy-on-write snapshot cut of every database (see [`Db::begin_cut`]).
    pub fn begin_cut(&mut self) {
        for (i, db) in self.dbs.iter_mut().enumerate() {
            db.begin_cut(i);
        }
    }

    /// True while a cut is in progress.
    #[must_use]
    pub fn has_cut(&self) -> bool {
        self.dbs.iter().any(|db| db.cut_index().is_some())
    }

    /// Hands up to about `budget` entries per database of the cut to
    /// `f(database number at the cut, key, entry)`: first the entries writes copied aside
    /// in any database (so the copies' memory goes first), then one database after the
    /// other; true when the whole cut has been handed out.
    pub fn cut_step(
        &mut self,
        budget: usize,
        mut f: impl FnMut(usize, &[u8], CutEntry<'_, Entry>),
    ) -> bool {
        let mut left = budget;
        for db in &mut self.dbs {
            let Some(index) = db.cut_index() else {
                continue;
            };
            left -= db.cut_step_copies(left, |k, e| f(index, k, e));
        }
        if left == 0 && budget > 0 {
            return false;
        }
        for db in &mut self.dbs {
            let Some(index) = db.cut_index() else {
                continue;
            };
            if !db.cut_step(left, |k, e| f(index, k, e)) {
                return false;
            }
        }
        true
    }

    /// Cluster mode: per database of the cut in progress (its number at the cut), the
    /// per-slot counts taken when the cut began; each is handed out once.
    pub fn take_cut_slot_counts(&mut self) -> Vec<(usize, Vec<crate::slot_index::SlotCounts>)> {
        self.dbs
            .iter_mut()
            .filter_map(|db| {
                let index = db.cut_index()?;
                Some((index, db.take_cut_slot_counts()?))
            })
            .collect()
    }

    /// Ends or abandons the cut in every database; the summed counters.
    pub fn end_cut(&mut self) -> CutStats {
        let mut sum = CutStats::default();
        for db in &mut self.dbs {
            if let Some(s) = db.end_cut() {
                sum += s;
            }
        }
        sum
    }

    /// Counters of the cut in progress, summed over databases.
    #[must_use]
    pub fn cut_stats(&self) -> CutStats {
        let mut sum = CutStats::default();
        for s in self.dbs.iter().filter_map(Db::cut_stats) {
            sum += s;
        }
        sum
    }

    /// Entries of the cut copied aside by writes and not yet serialized, in all databases:
    /// the copy-on-write memory a forkless save holds right now.
    #[must_use]
    pub fn cut_pending_copies(&self) -> usize {
        self.dbs.iter().map(Db::cut_pending_copies).sum()
    }

    /// Changes made to all databases (Redis's `dirty`, before any save's baseline).
    #[must_use]
    pub fn changes(&self) -> u64 {
        self.dbs.iter().map(Db::changes).sum::<u64>() + self.swaps
    }

    /// Keys in all databases.
    #[must_use]
    pub fn total_keys(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// Keeps (or stops keeping) the keys every database deletes by expiry
    /// ([`Db::log_expired`]).
    pub fn log_expired(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.log_expired(on);
        }
    }

    /// Whether the databases keep the keys they delete by expiry.
    #[must_use]
    pub fn logs_expired(&self) -> bool {
        self.dbs.first().is_some_and(Db::logs_expired)
    }

    /// Hands `f` every key deleted by expiry since the last call, by database.
    pub fn drain_expired(&mut self, mut f: impl FnMut(usize, &[u8])) {
        for (i, db) in self.dbs.iter_mut().enumerate() {
            if db.has_expired_logged() {
                for key in db.take_expired() {
                    f(i, &key);
                }
            }
        }
    }

    /// Keys with a TTL in all databases.
    #[must_use]
    pub fn total_expires(&self) -> usize {
        self.dbs.iter().map(Db::expires_len).sum()
    }

    /// Expired keys deleted in all databases.
    #[must_use]
    pub fn total_expired_keys(&self) -> u64 {
        self.dbs.iter().map(|db| db.stats().expired_keys).sum()
    }

    /// CONFIG RESETSTAT: the expired-key counts start again from 0.
    pub fn reset_expired_keys(&mut self) {
        for db in &mut self.dbs {
            db.reset_expired_keys();
        }
    }

    /// MOVE `key` from database `src` to `dst`: false when the source key is absent,
    /// the destination key exists, or `src == dst` (the command layer replies the error).
    pub fn move_key(&mut self, src: usize, dst: usize, key: &[u8], now_ms: i64) -> bool {
        if src == dst || self.dbs[dst].contains(key, now_ms) {
            return false;
        }
        let Some(taken) = self.dbs[src].take(key, now_ms) else {
            return false;
        };
        self.dbs[dst].put(taken, now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SetExpire;
    use crate::value::Value;

    #[test]
    fn databases_are_independent() {
        let mut ks = Keyspace::new(DEFAULT_DATABASES, 1);
        assert_eq!(ks.databases(), 16);
        ks.db_mut(0)
            .set(b"a", Value::from_bytes(b"0"), SetExpire::Clear, 0);
        ks.db_mut(3)
            .set(b"a", Value::from_bytes(b"3"), SetExpire::At(100), 0);
        assert_eq!(ks.total_keys(), 2);
        assert_eq!(ks.total_expires(), 1);
        ks.swap_dbs(0, 3);
        assert_eq!(ks.db_mut(0).get(b"a", 0), Some(&Value::from_bytes(b"3")));
        assert_eq!(ks.db(3).len(), 1);
        assert!(ks.move_key(0, 5, b"a", 0));
        assert!(!ks.move_key(0, 5, b"a", 0));
        assert!(!ks.move_key(3, 5, b"a", 0), "destination exists");
        assert!(!ks.move_key(3, 3, b"a", 0));
        assert_eq!(ks.db_mut(5).expire_at(b"a", 0), Some(100));
        assert_eq!(ks.db_mut(5).get(b"a", 101), None);
        assert_eq!(ks.total_expired_keys(), 1);
        ks.flush_all();
        assert_eq!(ks.total_keys(), 0);
    }
}
