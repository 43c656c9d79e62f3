//! Warming the table lookups of a batch of commands.
//!
//! A key lookup in a table bigger than the cache waits for memory twice, one load after
//! the other: the bucket, then the entry it links to. Measured here (2 vCPUs, 1 MiB L2):
//! a dependent load into 5 MB of random lines costs 165 ns, sixteen independent ones 8 ns
//! each. So before running a batch (the pipelined requests in a connection's input, or
//! another shard's [`Forward`](crate::forward::Forward) batch) the shard asks the CPU to
//! load every key's bucket, then every bucket's first entry (both of its cache lines),
//! and the lookups that follow find them in the cache. A wrong guess (a command whose
//! first argument is not a key, a key in a longer chain) only costs a wasted load.

use percore_engine::keyspace::Keyspace;
use percore_net::sys::prefetch;

/// Keys warmed at a time: 16 covers `redis-benchmark -P 16`, and 16 loads in flight are
/// about what one core overlaps.
pub const WARM_KEYS: usize = 16;

/// Databases with fewer keys than this are not warmed: their table (under 400 KiB of
/// entries and buckets) stays in the core's 1 MiB L2, and warming would only add work
/// (hashing each key twice).
pub const WARM_MIN_TABLE_KEYS: usize = 4096;

/// The keys of the batch being warmed.
#[derive(Default)]
pub struct Warm {
    /// Database and table hash of each key whose bucket has been asked for.
    keys: Vec<(usize, u64)>,
}

impl Warm {
    /// Whether [`WARM_KEYS`] keys are queued (call [`Warm::finish`]).
    #[must_use]
    pub fn full(&self) -> bool {
        self.keys.len() >= WARM_KEYS
    }

    /// Whether lookups in database `db` are worth warming (it exists and is not small).
    #[must_use]
    #[inline]
    pub fn worth(ks: &Keyspace, db: usize) -> bool {
        db < ks.databases() && ks.db(db).len() >= WARM_MIN_TABLE_KEYS
    }

    /// First stage: asks for the bucket of `key` in database `db`.
    #[inline]
    pub fn add(&mut self, ks: &Keyspace, db: usize, key: &[u8]) {
        if self.full() || !Self::worth(ks, db) {
            return;
        }
        let table = ks.db(db).table();
        let hash = table.hash_key(key);
        if let Some(bucket) = table.bucket_addr(hash) {
            prefetch(bucket);
            self.keys.push((db, hash));
        }
    }

    /// Second stage: asks for the first entry of every bucket asked for (reading the
    /// buckets, which arrive together), then forgets the keys.
    #[inline]
    pub fn finish(&mut self, ks: &Keyspace) {
        for &(db, hash) in &self.keys {
            if let Some((entry, size)) = ks.db(db).table().first_entry_span(hash) {
                prefetch(entry);
                prefetch(entry.wrapping_add(size - 1));
            }
        }
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percore_engine::db::SetExpire;
    use percore_engine::value::Value;

    #[test]
    fn warming_changes_nothing_and_stops_at_the_limit() {
        let mut ks = Keyspace::new(16, 7);
        for i in 0..WARM_MIN_TABLE_KEYS {
            let k = format!("k{i}");
            ks.db_mut(0)
                .set(k.as_bytes(), Value::from_bytes(b"v"), SetExpire::Clear, 0);
        }
        let mut w = Warm::default();
        for i in 0..WARM_KEYS + 5 {
            w.add(&ks, 0, format!("k{i}").as_bytes());
        }
        assert!(w.full());
        // A database that does not exist and an empty one are skipped.
        w.finish(&ks);
        assert!(!w.full());
        w.add(&ks, 99, b"k1");
        w.add(&ks, 3, b"k1");
        w.finish(&ks);
        assert_eq!(ks.db_mut(0).len(), WARM_MIN_TABLE_KEYS);
        // A small database is not worth it.
        ks.db_mut(1)
            .set(b"k", Value::from_bytes(b"v"), SetExpire::Clear, 0);
        assert!(Warm::worth(&ks, 0));
        assert!(!Warm::worth(&ks, 1));
        w.add(&ks, 1, b"k");
        assert!(w.keys.is_empty());
        assert!(ks.db_mut(0).get(b"k5", 0).is_some());
    }
}
