//! Blocking list commands: see docs/architecture.md, "Blocking operations".
use crate::shard::ShardData;

/// A write made `key` of database `db` (on this shard) ready for waiters.
pub fn signal_key(_shard: &mut ShardData, _db: usize, _key: &[u8]) {}
