//! The active expiry cycle: each tick, every database of the shard is sampled for expired
//! keys within a time budget, as Redis's `activeExpireCycle` (slow cycle).

use crate::shard::ShardData;
use percore_engine::db::ExpireBudget;
use std::time::{Duration, Instant};

/// Samples given to one database per slice before the clock is checked again.
pub const EXPIRE_SAMPLES_PER_SLICE: u64 = 200;

/// Runs the active expiry over every database until done or `budget` is spent.
pub fn active_expire_cycle(data: &mut ShardData, budget: Duration) {
    let start = Instant::now();
    let now_ms = data.now_ms;
    let dbs = data.keyspace.databases();
    for i in 0..dbs {
        let db = data.keyspace.db_mut(i);
        if db.expires_len() == 0 {
            continue;
        }
        loop {
            let mut slice = ExpireBudget::new(EXPIRE_SAMPLES_PER_SLICE);
            let stats = db.active_expire_cycle(now_ms, &mut slice);
            data.stats.expired_keys_active += stats.expired;
            if !stats.budget_exhausted || start.elapsed() >= budget {
                break;
            }
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    if data.stats.latency_on() {
        let ns = start.elapsed().as_nanos() as u64;
        data.stats
            .spike(crate::latency::Event::ExpireCycle, ns, data.now_ms);
    }
}
