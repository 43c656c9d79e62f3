//! `maxmemory`: eviction and the OOM refusal (Redis 7.0's `evict.c` and the maxmemory
//! part of `processCommand`).
//!
//! **One global budget.** The memory used is the process's allocation count
//! ([`crate::alloc::used_memory`]): the sum of per-thread counters, each shard thread
//! publishing its own with relaxed atomics. When the sum is over `maxmemory`, the shard
//! about to run a command evicts from its own keys (its own eviction pool,
//! `percore_engine::evict`) until it has freed the excess, or the tenacity's time is up
//! (the rest is evicted before later commands, at the end of the loop iteration and on
//! the shard's tick). A shard thus evicts in proportion to the writes it runs: nothing
//! caps a shard at 1/N of the budget, and a hot shard holds what its keys need. An idle
//! shard over the budget evicts on its tick.
//!
//! **OOM.** A DENYOOM command (and in MULTI any command but EXEC/DISCARD/QUIT/RESET) is
//! refused with `-OOM command not allowed when used memory > 'maxmemory'.` while memory
//! is over the limit and eviction cannot bring it down: under `noeviction`, or when no
//! key qualifies for the policy on any shard (each shard publishes how many of its keys
//! qualify). An EXEC whose queue holds a DENYOOM command is refused with EXECABORT.
//!
//! Evicted keys go to the stream of effects as DEL (replicas, the AOF), to keyspace
//! notifications as `evicted`, to WATCH as a change, and count in INFO `evicted_keys`.

use crate::commands::{Command, Exec, flags};
use crate::config::MaxmemoryPolicy;
use crate::shard::ShardData;
use percore_engine::evict::{Policy, Pool, Rank};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Redis 7.0's `shared.oomerr`.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// An EXEC refused for memory (Redis's `execCommandAbort` with `shared.oomerr`).
pub const EXEC_OOM: &str = "EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.";
/// Keys evicted between two looks at the clock (Redis checks its time limit every 16).
const KEYS_PER_CLOCK_CHECK: u64 = 16;

/// What the shards share: per shard, how many of its keys the policy may evict (for the
/// OOM decision of other shards).
pub struct Shared {
    evictable: Box<[AtomicU64]>,
}

impl Shared {
    pub fn new(shards: usize) -> Self {
        Self {
            // Unknown until each shard's first tick: not "nothing to evict".
            evictable: (0..shards).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }
}

/// One shard's eviction state.
#[derive(Default)]
pub struct State {
    pool: Pool,
    rng: u64,
    /// Eviction stopped on its time limit with memory still over: continue at the end of
    /// the loop iteration (Redis's eviction time proc).
    pub running: bool,
    /// Whether memory was over the limit with nothing to evict when the current command
    /// was admitted (Redis's `pre_command_oom_state`, read by scripts' first write).
    pub oom_at_command: bool,
    /// The policy the pool's candidates were ranked by.
    policy: Option<MaxmemoryPolicy>,
    /// Keys this shard evicted (INFO `evicted_keys`, summed over shards).
    pub evicted_keys: u64,
    /// Dispatch found memory under the limit just now: the keyed handler that follows
    /// need not add it up again (a forwarded command leaves it for the next one).
    checked_under: bool,
}

impl State {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: seed | 1,
            ..Self::default()
        }
    }
}

/// Outcome of an eviction run (Redis's `EVICT_OK`/`EVICT_RUNNING`/`EVICT_FAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Running,
    Fail,
}

/// Bytes over the limit, or 0.
fn excess(data: &ShardData) -> u64 {
    let limit = data.cfg.maxmemory_bytes;
    if limit == 0 {
        return 0;
    }
    (crate::alloc::used_memory() as u64).saturating_sub(limit)
}

/// Whether this shard may evict: a replica leaves it to its primary
/// (`replica-ignore-maxmemory yes`).
fn may_evict(data: &ShardData) -> bool {
    // While clients are paused the dataset stays as it is: no evictions (Redis 7.0's
    // `performEvictions` returns at once then), as no expiries.
    let ignored_on_replica =
        data.cfg.replica_ignore_maxmemory && data.shared.repl.is_replica.load(Ordering::Relaxed);
    !data.pause.active && !ignored_on_replica
}

/// The policy as the engine ranks it; `None` for noeviction.
fn policy_of(data: &ShardData) -> Option<Policy> {
    let access = data.keyspace.db(0).access_tracking();
    let p = data.cfg.maxmemory_policy;
    Some(match p {
        MaxmemoryPolicy::Noeviction => return None,
        MaxmemoryPolicy::AllkeysLru | MaxmemoryPolicy::AllkeysLfu => {
            Policy::by_access(access, false)
        }
        MaxmemoryPolicy::VolatileLru | MaxmemoryPolicy::VolatileLfu => {
            Policy::by_access(access, true)
        }
        MaxmemoryPolicy::AllkeysRandom => Policy {
            rank: Rank::Random,
            volatile: false,
        },
        MaxmemoryPolicy::VolatileRandom => Policy {
            rank: Rank::Random,
            volatile: true,
        },
        MaxmemoryPolicy::VolatileTtl => Policy {
            rank: Rank::Ttl,
            volatile: true,
        },
    })
}

/// Redis's `evictionTimeLimitUs` for `maxmemory-eviction-tenacity`; `None`: no limit.
fn time_limit(tenacity: u32) -> Option<Duration> {
    if tenacity <= 10 {
        Some(Duration::from_micros(50 * u64::from(tenacity)))
    } else if tenacity < 100 {
        Some(Duration::from_micros(
            (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64,
        ))
    } else {
        None
    }
}

/// Keys of this shard the policy may evict.
fn evictable_here(data: &ShardData, policy: Policy) -> u64 {
    let ks = &data.keyspace;
    (0..ks.databases())
        .map(|i| {
            let db = ks.db(i);
            (if policy.volatile {
                db.expires_len()
            } else {
                db.len()
            }) as u64
        })
        .sum()
}

fn publish_evictable(data: &ShardData, policy: Option<Policy>) {
    let n = policy.map_or(0, |p| evictable_here(data, p));
    data.shared.evict.evictable[data.id].store(n, Ordering::Relaxed);
}

/// Before a keyed command runs on this shard: evicts when memory is over the limit.
/// One test when `maxmemory` is 0.
#[inline]
pub fn before_command(data: &mut ShardData) {
    if data.cfg.maxmemory_bytes != 0 && data.cfg.maxmemory_policy != MaxmemoryPolicy::Noeviction {
        make_room(data);
    }
}

#[cold]
#[inline(never)]
fn make_room(data: &mut ShardData) {
    if std::mem::take(&mut data.evict.checked_under) {
        return;
    }
    if excess(data) > 0 && may_evict(data) {
        perform(data);
    }
}

/// Redis's `performEvictions`: evicts from this shard's keys until the excess measured
/// at the start is freed, the time limit is reached (`Running`) or no key qualifies
/// (`Fail`).
fn perform(data: &mut ShardData) -> Outcome {
    let excess = excess(data);
    if excess == 0 {
        data.evict.running = false;
        return Outcome::Ok;
    }
    let Some(policy) = policy_of(data) else {
        return Outcome::Fail;
    };
    let to_free = share_of(data, policy, excess);
    if data.evict.policy != Some(data.cfg.maxmemory_policy) {
        // Candidates ranked by another policy (or none yet) are no use.
        data.evict.pool.clear();
        data.evict.policy = Some(data.cfg.maxmemory_policy);
    }
    let samples = data.cfg.maxmemory_samples as usize;
    let limit = time_limit(data.cfg.maxmemory_eviction_tenacity);
    let start = Instant::now();
    let now_ms = data.now_ms;
    let mut freed = 0u64;
    let mut keys = 0u64;
    let mut outcome = Outcome::Ok;
    while freed < to_free {
        let before = crate::alloc::thread_allocated();
        let Some((db, key, bytes)) = data.evict.pool.evict_one(
            &mut data.keyspace,
            policy,
            samples,
            &mut data.evict.rng,
            now_ms,
        ) else {
            outcome = Outcome::Fail;
            break;
        };
        // What the deletion gave back, or what the key held: a key whose entry slot stays
        // in the table's arena frees little now, but the next key reuses the slot.
        let delta = before - crate::alloc::thread_allocated();
        freed += u64::try_from(delta).unwrap_or(0).max(bytes as u64);
        keys += 1;
        evicted(data, db, &key);
        data.evict.pool.give_back(key);
        if keys.is_multiple_of(KEYS_PER_CLOCK_CHECK)
            && let Some(limit) = limit
            && start.elapsed() > limit
        {
            outcome = Outcome::Running;
            break;
        }
    }
    data.evict.running = outcome == Outcome::Running;
    if keys > 0 || outcome == Outcome::Fail {
        publish_evictable(data, Some(policy));
    }
    outcome
}

/// This shard's part of `excess`: in proportion to the keys it may evict against every
/// shard's (as last published), so the shards' keyspaces shrink alike whichever of them
/// finds memory over the limit first. The others free their parts before their own
/// next commands, or on their tick when idle.
fn share_of(data: &ShardData, policy: Policy, excess: u64) -> u64 {
    let own = evictable_here(data, policy);
    data.shared.evict.evictable[data.id].store(own, Ordering::Relaxed);
    let total: u64 = data
        .shared
        .evict
        .evictable
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .fold(0u64, u64::saturating_add);
    if total == 0 || own == total {
        return excess;
    }
    (u128::from(excess) * u128::from(own) / u128::from(total)).max(1) as u64
}

/// A key was evicted: DEL to the stream of effects, `evicted` to notifications, a
/// change for WATCH, one more in INFO.
fn evicted(data: &mut ShardData, db: usize, key: &[u8]) {
    if data.effects.on {
        data.effects.command(db, &[b"DEL", key]);
    }
    crate::atomic::watch::Registry::touch(data, db, key);
    if data.tracking.armed {
        crate::tracking::key_changed(data, key, 0);
    }
    crate::notify::event(data, crate::notify::class::EVICTED, "evicted", key, db);
    data.evict.evicted_keys += 1;
}

/// Whether memory is over the limit and eviction cannot help (Redis's
/// `performEvictions() == EVICT_FAIL`). `evict_here`: the command does not run through
/// a keyed handler (which evicts itself), so evict for it now.
fn out_of_memory(data: &mut ShardData, evict_here: bool) -> bool {
    if excess(data) == 0 || !may_evict(data) {
        return false;
    }
    let Some(policy) = policy_of(data) else {
        return true;
    };
    if evict_here {
        return perform(data) == Outcome::Fail && none_elsewhere(data);
    }
    evictable_here(data, policy) == 0 && none_elsewhere(data)
}

/// No other shard published a key it may evict.
fn none_elsewhere(data: &ShardData) -> bool {
    data.shared
        .evict
        .evictable
        .iter()
        .enumerate()
        .all(|(i, n)| i == data.id || n.load(Ordering::Relaxed) == 0)
}

/// At dispatch, with `maxmemory` set: the refusal of a command for memory (Redis 7.0's
/// rules), after evicting for it when it does not evict itself. An EXEC refused here
/// discards its transaction.
#[cold]
#[inline(never)]
pub fn refusal(
    data: &mut ShardData,
    client: &mut crate::client::Client,
    cmd: &'static Command,
    argv: &[&[u8]],
    outbox: &mut percore_net::mailbox::Outbox<crate::shard::Msg>,
) -> Option<&'static str> {
    data.evict.oom_at_command = false;
    let keyed = matches!(cmd.exec, Exec::Keyed(_));
    let denyoom = cmd.sub_has(argv, flags::DENYOOM);
    // A script with keys is keyed, but whether it may start depends on its flags
    // (`script_start_refusal` reads `oom_at_command`), as Redis's fcall/evalGetCommandFlags.
    let script = matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    );
    if client.master || (keyed && client.multi.is_none() && !denyoom && !script) {
        // A keyed command that cannot be refused evicts where it runs.
        return None;
    }
    if excess(data) == 0 {
        data.evict.checked_under = true;
        return None;
    }
    let is_exec = cmd.name == "exec";
    let queued_denyoom = is_exec
        && client
            .multi
            .as_ref()
            .is_some_and(|m| m.cmds.iter().any(|q| q.cmd.has(flags::DENYOOM)));
    let reject = denyoom
        || queued_denyoom
        || (client.multi.is_some() && !matches!(cmd.name, "exec" | "discard" | "quit" | "reset"));
    let oom = out_of_memory(data, !keyed);
    data.evict.oom_at_command = oom;
    if !(oom && reject) {
        return None;
    }
    if is_exec {
        client.multi = None;
        crate::atomic::unwatch_all(data, client, |s, m| outbox.send(s, m));
        return Some(EXEC_OOM);
    }
    Some(OOM)
}

/// A script's `redis.call` of a DENYOOM command before its first write, when memory was
/// over the limit with nothing to evict as the script started (7.0's `scriptVerifyOOM`);
/// `allow-oom` scripts are exempt.
pub fn script_call_refusal(
    data: &ShardData,
    cmd: &Command,
    script_flags: u32,
    wrote: bool,
) -> Result<(), String> {
    if oom_at_command(data)
        && !wrote
        && cmd.has(flags::DENYOOM)
        && script_flags & crate::scripting::flags::ALLOW_OOM == 0
    {
        return Err(format!("-{OOM}"));
    }
    Ok(())
}

/// Whether the command being run was admitted while memory was over the limit with
/// nothing to evict (read by scripts).
pub fn oom_at_command(data: &ShardData) -> bool {
    data.cfg.maxmemory_bytes != 0 && data.evict.oom_at_command
}

/// A script declaring flags (a shebang) without `allow-oom` or `no-writes`, started while
/// memory was over the limit with nothing to evict. Redis 7.0 refuses it before it runs
/// (such a script makes EVAL/FCALL a DENYOOM command), with the plain OOM error.
pub fn script_start_refusal(oom: bool, script_flags: u32) -> Option<&'static str> {
    use crate::scripting::flags as sf;
    (oom && script_flags & (sf::EVAL_COMPAT | sf::ALLOW_OOM | sf::NO_WRITES) == 0).then_some(OOM)
}

/// End of a loop iteration: eviction that stopped on its time limit goes on. True when
/// it still has work (the loop should not sleep).
#[cold]
pub fn resume(data: &mut ShardData) -> bool {
    may_evict(data) && perform(data) == Outcome::Running
}

/// The shard's tick: evicts when over the limit (an idle shard too, and after CONFIG
/// SET maxmemory lowered the limit), and publishes its evictable keys.
pub fn on_tick(data: &mut ShardData) -> bool {
    let policy = policy_of(data);
    publish_evictable(data, policy);
    if data.cfg.maxmemory_bytes == 0 {
        return false;
    }
    policy.is_some() && may_evict(data) && excess(data) > 0 && perform(data) == Outcome::Running
}

#[cfg(test)]
mod tests {
    use super::time_limit;
    use std::time::Duration;

    #[test]
    fn tenacity_follows_redis() {
        assert_eq!(time_limit(0), Some(Duration::ZERO));
        assert_eq!(time_limit(10), Some(Duration::from_micros(500)));
        assert_eq!(time_limit(11), Some(Duration::from_micros(575)));
        assert_eq!(time_limit(100), None);
    }
}
