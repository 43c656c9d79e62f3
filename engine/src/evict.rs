//! Choosing keys to evict when memory is over `maxmemory` (Redis's `evict.c`): an
//! eviction pool of [`EVPOOL_SIZE`] candidates per shard, refilled from
//! `maxmemory-samples` random keys of every database per eviction and kept sorted by
//! how good a victim each is (idle time for LRU, `255 - counter` for LFU, nearness of
//! the expiry for volatile-ttl); the random policies take a random key of the next
//! database in turn. The score comes from the entries' access field: no per-key bytes.
//!
//! Pure: the caller deletes the chosen key (and logs it), measures the memory freed and
//! decides when to stop.

use crate::db::{AccessTracking, Db, Entry};
use crate::keyspace::Keyspace;

/// Candidates the pool keeps (Redis's `EVPOOL_SIZE`).
pub const EVPOOL_SIZE: usize = 16;
/// Longest key the pool keeps a buffer for between uses (Redis's `EVPOOL_CACHED_SDS_SIZE`);
/// longer keys are copied into a buffer dropped when the candidate leaves.
const EVPOOL_CACHED_KEY_BYTES: usize = 255;

/// What a policy ranks keys by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    /// Least recently used first (the LRU clock in the access field).
    Lru,
    /// Least frequently used first (the decayed LFU counter in the access field).
    Lfu {
        /// `lfu-decay-time` in minutes.
        decay_minutes: u32,
    },
    /// Nearest expiry first (volatile-ttl).
    Ttl,
    /// Any key (allkeys-random, volatile-random).
    Random,
}

/// A policy that evicts: what it ranks by and whether only keys with a TTL qualify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub rank: Rank,
    pub volatile: bool,
}

impl Policy {
    /// The rank for an access-tracking mode (LRU or LFU policies).
    #[must_use]
    pub fn by_access(access: AccessTracking, volatile: bool) -> Self {
        let rank = match access {
            AccessTracking::Lru => Rank::Lru,
            AccessTracking::Lfu { decay_minutes, .. } => Rank::Lfu { decay_minutes },
        };
        Self { rank, volatile }
    }

    /// How good a victim `entry` is: higher is evicted first (Redis's pool `idle`).
    fn score(self, entry: &Entry, now_ms: i64) -> u64 {
        match self.rank {
            Rank::Lru => entry.idle_time_s(now_ms),
            Rank::Lfu { decay_minutes } => 255 - u64::from(entry.lfu_freq(decay_minutes, now_ms)),
            Rank::Ttl => u64::MAX - entry.expire_at_ms().map_or(0, |t| t.max(0).cast_unsigned()),
            Rank::Random => 0,
        }
    }
}

struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

/// One shard's eviction pool and the state of its random picks.
#[derive(Default)]
pub struct Pool {
    /// Sorted by ascending score: the best victim is last.
    entries: Vec<Candidate>,
    /// Key buffers of candidates that left, reused for the next ones.
    spare: Vec<Vec<u8>>,
    /// The database the random policies look at next (Redis's static `next_db`).
    next_db: usize,
}

impl Pool {
    /// Candidates held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every candidate (the keyspace was replaced or flushed).
    pub fn clear(&mut self) {
        while let Some(c) = self.entries.pop() {
            self.recycle(c.key);
        }
    }

    fn recycle(&mut self, mut key: Vec<u8>) {
        if key.capacity() <= EVPOOL_CACHED_KEY_BYTES && self.spare.len() < EVPOOL_SIZE {
            key.clear();
            self.spare.push(key);
        }
    }

    /// Redis's `evictionPoolPopulate`: offers `samples` random keys of database `db`.
    fn populate(
        &mut self,
        db_index: usize,
        db: &mut Db,
        policy: Policy,
        samples: usize,
        rng: &mut u64,
        now_ms: i64,
    ) {
        for _ in 0..samples {
            let Some((key, entry)) = db.eviction_sample(policy.volatile, rng) else {
                return;
            };
            let score = policy.score(entry, now_ms);
            self.offer(db_index, key, score);
        }
    }

    /// Inserts a candidate in score order; when full, it replaces the worst one, or is
    /// dropped if it is worse than all of them.
    fn offer(&mut self, db: usize, key: &[u8], score: u64) {
        if self.entries.iter().any(|c| c.db == db && c.key == key) {
            return;
        }
        let at = self.entries.partition_point(|c| c.score < score);
        if self.entries.len() == EVPOOL_SIZE {
            if at == 0 {
                return;
            }
            let worst = self.entries.remove(0);
            self.recycle(worst.key);
            self.insert(at - 1, db, key, score);
        } else {
            self.insert(at, db, key, score);
        }
    }

    fn insert(&mut self, at: usize, db: usize, key: &[u8], score: u64) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.extend_from_slice(key);
        self.entries.insert(
            at,
            Candidate {
                score,
                db,
                key: buf,
            },
        );
    }

    /// Picks the next key to evict and deletes it from `keyspace`; `None` when no key
    /// qualifies. The caller gets the database, the key (to log it as DEL and as an
    /// `evicted` event; the buffer goes back with [`Pool::give_back`]) and the bytes the
    /// key held ([`crate::memory::key_bytes`]).
    pub fn evict_one(
        &mut self,
        keyspace: &mut Keyspace,
        policy: Policy,
        samples: usize,
        rng: &mut u64,
        now_ms: i64,
    ) -> Option<(usize, Vec<u8>, usize)> {
        let dbs = keyspace.databases();
        if policy.rank == Rank::Random {
            for _ in 0..dbs {
                let db_index = self.next_db % dbs;
                self.next_db = self.next_db.wrapping_add(1);
                let db = keyspace.db_mut(db_index);
                let Some((key, _)) = db.eviction_sample(policy.volatile, rng) else {
                    continue;
                };
                let mut buf = self.spare.pop().unwrap_or_default();
                buf.extend_from_slice(key);
                let bytes = db.evict(&buf, policy.volatile).unwrap_or(0);
                return Some((db_index, buf, bytes));
            }
            return None;
        }
        loop {
            let mut any = false;
            for db_index in 0..dbs {
                let db = keyspace.db_mut(db_index);
                let present = if policy.volatile {
                    db.expires_len()
                } else {
                    db.len()
                };
                if present > 0 {
                    any = true;
                    self.populate(db_index, db, policy, samples, rng, now_ms);
                }
            }
            if !any {
                self.clear();
                return None;
            }
            while let Some(c) = self.entries.pop() {
                let db = keyspace.db_mut(c.db);
                // The candidate may have gone since it was sampled (deleted, or for a
                // volatile policy, its TTL removed).
                if let Some(bytes) = db.evict(&c.key, policy.volatile) {
                    return Some((c.db, c.key, bytes));
                }
                self.recycle(c.key);
            }
        }
    }

    /// Returns a key buffer handed out by [`Pool::evict_one`].
    pub fn give_back(&mut self, key: Vec<u8>) {
        self.recycle(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SetExpire;
    use crate::value::Value;

    fn keyspace_with(n: usize, ttl_every: usize) -> Keyspace {
        let mut ks = Keyspace::new(2, 7);
        for i in 0..n {
            let key = format!("k{i}");
            let ex = if ttl_every > 0 && i % ttl_every == 0 {
                SetExpire::At(1_000_000 + i as i64)
            } else {
                SetExpire::Clear
            };
            ks.db_mut(i % 2)
                .set(key.as_bytes(), Value::from_bytes(b"v"), ex, 0);
        }
        ks
    }

    #[test]
    fn pool_keeps_the_best_sixteen_in_order() {
        let mut pool = Pool::default();
        for s in 0..40u64 {
            let score = (s * 7919) % 97;
            pool.offer(0, format!("k{s}").as_bytes(), score);
        }
        assert_eq!(pool.len(), EVPOOL_SIZE);
        let scores: Vec<u64> = pool.entries.iter().map(|c| c.score).collect();
        let mut sorted = scores.clone();
        sorted.sort_unstable();
        assert_eq!(scores, sorted);
        let mut all: Vec<u64> = (0..40u64).map(|s| (s * 7919) % 97).collect();
        all.sort_unstable();
        assert_eq!(scores, all[all.len() - EVPOOL_SIZE..]);
        // A repeated key is not offered twice.
        pool.offer(0, b"k1", 1000);
        pool.offer(0, b"k1", 1000);
        assert_eq!(pool.entries.iter().filter(|c| c.key == b"k1").count(), 1);
    }

    #[test]
    fn volatile_policies_take_only_keys_with_a_ttl() {
        let mut ks = keyspace_with(200, 4);
        let mut rng = 3;
        let mut pool = Pool::default();
        for rank in [Rank::Lru, Rank::Random, Rank::Ttl] {
            let policy = Policy {
                rank,
                volatile: true,
            };
            while let Some((db, key, _)) = pool.evict_one(&mut ks, policy, 5, &mut rng, 10) {
                let i: usize = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
                assert_eq!(i % 4, 0, "{rank:?} evicted a key without TTL");
                assert_eq!(i % 2, db);
                pool.give_back(key);
            }
            assert_eq!(ks.total_keys(), 150, "{rank:?}: every key with a TTL went");
            ks = keyspace_with(200, 4);
        }
    }

    #[test]
    fn volatile_ttl_takes_the_nearest_expiry_first() {
        let mut ks = keyspace_with(1000, 1);
        let mut rng = 9;
        let mut pool = Pool::default();
        let policy = Policy {
            rank: Rank::Ttl,
            volatile: true,
        };
        let mut taken = Vec::new();
        for _ in 0..100 {
            let (_, key, _) = pool.evict_one(&mut ks, policy, 5, &mut rng, 10).unwrap();
            taken.push(
                std::str::from_utf8(&key[1..])
                    .unwrap()
                    .parse::<usize>()
                    .unwrap(),
            );
            pool.give_back(key);
        }
        // Sampled, not exact: the victims lean heavily towards the early expiries.
        let mean = taken.iter().sum::<usize>() / taken.len();
        assert!(mean < 350, "mean victim {mean}");
    }

    #[test]
    fn lru_prefers_idle_keys_and_allkeys_empties_everything() {
        let mut ks = keyspace_with(400, 0);
        // Keys 0..200 were read 100 s later: the others are idler.
        for i in 0..200 {
            ks.db_mut(i % 2).get(format!("k{i}").as_bytes(), 100_000);
        }
        let mut rng = 5;
        let mut pool = Pool::default();
        let policy = Policy {
            rank: Rank::Lru,
            volatile: false,
        };
        let mut idle_taken = 0;
        for _ in 0..100 {
            let (_, key, _) = pool
                .evict_one(&mut ks, policy, 5, &mut rng, 100_000)
                .unwrap();
            let i: usize = std::str::from_utf8(&key[1..]).unwrap().parse().unwrap();
            idle_taken += usize::from(i >= 200);
            pool.give_back(key);
        }
        assert!(
            idle_taken >= 95,
            "{idle_taken} of 100 victims were idle keys"
        );
        while let Some((_, key, _)) = pool.evict_one(&mut ks, policy, 5, &mut rng, 100_000) {
            pool.give_back(key);
        }
        assert_eq!(ks.total_keys(), 0);
        assert!(pool.is_empty());
    }
}
