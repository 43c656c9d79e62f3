//! Loop statistics and metrics: each shard reads its reactor's [`LoopStats`] once per
//! tick into a [`LoopView`] (INFO percore), and, when `metrics-port` is set, publishes a
//! [`ShardReport`] into its slot of the [`Board`], which the Prometheus thread
//! (`metrics/http.rs`) renders (`metrics/exposition.rs`) without ever waiting on a shard.

pub mod exposition;
pub mod http;

use crate::shard::{Msg, ShardData};
use percore_net::reactor::{Io, LoopStats};
use std::fmt::Write as _;
use std::sync::Mutex;

/// Rates in INFO percore are taken over windows of at least this long.
pub const LOOP_RATE_WINDOW_MS: i64 = 1000;

/// A shard's loop counters as of its last tick, with rates over the last window.
#[derive(Clone, Debug, Default)]
pub struct LoopView {
    pub now: LoopStats,
    pub iterations_per_sec: u64,
    /// Completions per `io_uring_enter` over the last window.
    pub cqes_per_enter: f64,
    /// Share of the last window spent outside the waiting `io_uring_enter`, in percent.
    pub busy_pct: f64,
    window_start: LoopStats,
    window_start_ms: i64,
}

impl LoopView {
    /// Takes the reactor's counters at `now_ms`; closes the rate window when it is long
    /// enough.
    pub fn update(&mut self, stats: &LoopStats, now_ms: i64) {
        self.now = *stats;
        if self.window_start_ms == 0 {
            self.window_start = *stats;
            self.window_start_ms = now_ms;
            return;
        }
        let elapsed_ms = now_ms - self.window_start_ms;
        if elapsed_ms < LOOP_RATE_WINDOW_MS {
            return;
        }
        let w = &self.window_start;
        let iterations = stats.iterations.saturating_sub(w.iterations);
        let enters = stats.enters.saturating_sub(w.enters);
        let cqes = stats.completions.saturating_sub(w.completions);
        let busy = stats.busy_ns.saturating_sub(w.busy_ns);
        let idle = stats.idle_ns.saturating_sub(w.idle_ns);
        self.iterations_per_sec = iterations * 1000 / elapsed_ms.unsigned_abs();
        self.cqes_per_enter = if enters == 0 {
            0.0
        } else {
            cqes as f64 / enters as f64
        };
        self.busy_pct = if busy + idle == 0 {
            0.0
        } else {
            busy as f64 * 100.0 / (busy + idle) as f64
        };
        self.window_start = *stats;
        self.window_start_ms = now_ms;
    }
}

/// The per-tick work of the loop statistics and the latency probes that read them.
pub fn on_tick(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    let (iteration_ns, mailbox_wait_ns) = io.take_peaks();
    let monitor_on = data.stats.latency_on();
    io.stamp_mail(monitor_on && data.shards > 1);
    if monitor_on {
        let now = data.now_ms;
        data.stats
            .spike(crate::latency::Event::LoopIteration, iteration_ns, now);
        data.stats
            .spike(crate::latency::Event::MailboxWait, mailbox_wait_ns, now);
    }
    data.stats.loops.update(io.loop_stats(), data.now_ms);
    if data.cfg.metrics_port != 0 {
        publish(data);
    }
}

/// This shard's INFO percore line: `shard<N>:iterations=...,keys=...`. `asking` is true
/// on the shard of the client that asked (its client is out of `clients` meanwhile).
pub fn info_line(data: &ShardData, asking: bool) -> String {
    let v = &data.stats.loops;
    let s = &v.now;
    let mut line = format!("shard{}:", data.id);
    let _ = write!(
        line,
        "iterations={},iterations_per_sec={},enters={},completions={},cqes_per_enter={:.2},\
         busy_usec={},idle_usec={},busy_pct={:.2},messages_sent={},batches_sent={},\
         messages_received={},batches_received={},connections={},keys={}",
        s.iterations,
        v.iterations_per_sec,
        s.enters,
        s.completions,
        v.cqes_per_enter,
        s.busy_ns / 1000,
        s.idle_ns / 1000,
        v.busy_pct,
        s.messages_sent,
        s.batches_sent,
        s.messages_received,
        s.batches_received,
        data.clients.iter().flatten().count() + usize::from(asking),
        data.keyspace.total_keys(),
    );
    hop_fields(&data.stats, &mut line);
    line
}

/// The cross-shard hop's fields of a shard's INFO percore line: requests sent to their
/// key's owner and answered, requests run for other shards, and the round trip's
/// percentiles and maximum in microseconds (`ShardStats::hop_latency`; 0 before any hop).
fn hop_fields(st: &crate::stats::ShardStats, line: &mut String) {
    let _ = write!(
        line,
        ",spin_usec={},spin_hits={},hops={},hops_served={}",
        st.loops.now.spin_ns / 1000,
        st.loops.now.spin_hits,
        st.hops,
        st.hops_served
    );
    let at = |q: f64| {
        st.hop_latency.as_ref().map_or(0.0, |h| {
            h.highest_equivalent(h.value_at_quantile(q)) as f64 / 1000.0
        })
    };
    let max = st
        .hop_latency
        .as_ref()
        .map_or(0.0, |h| h.max() as f64 / 1000.0);
    let _ = write!(
        line,
        ",hop_p50_usec={:.3},hop_p90_usec={:.3},hop_p99_usec={:.3},hop_p999_usec={:.3},\
         hop_max_usec={max:.3}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
    );
}

/// Server-wide persistence figures, copied by shard 0 (the metrics thread never takes
/// the persistence lock a shard may need).
#[derive(Clone, Debug, Default)]
pub struct PersistFigures {
    pub bgsave_in_progress: bool,
    pub last_bgsave_ok: bool,
    pub last_bgsave_time_s: i64,
    pub saves: u64,
    pub last_cow_size: u64,
    pub last_bytes: u64,
    pub last_barrier_us: u64,
}

/// What one shard publishes per tick for the metrics thread.
#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    /// Unix milliseconds of the tick that wrote this (0: never published).
    pub published_ms: i64,
    pub loops: LoopStats,
    pub connections: u64,
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub error_replies: u64,
    /// Per database: (keys, keys with an expiry).
    pub dbs: Vec<(u64, u64)>,
    /// Per command of [`crate::commands::COMMANDS`]: (calls, microseconds).
    pub cmds: Vec<(u64, u64)>,
    /// Shard 0 only.
    pub persist: Option<PersistFigures>,
}

/// One report slot per shard. A shard writes its slot with `try_lock` and skips a tick
/// rather than wait; the metrics thread holds a slot only to clone it.
pub struct Board {
    slots: Vec<Mutex<ShardReport>>,
}

impl Board {
    pub fn new(shards: usize) -> Self {
        Self {
            slots: (0..shards)
                .map(|_| Mutex::new(ShardReport::default()))
                .collect(),
        }
    }

    /// A copy of every shard's latest report.
    pub fn reports(&self) -> Vec<ShardReport> {
        self.slots
            .iter()
            .map(|m| {
                m.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }
}

/// Writes this shard's report into its slot, unless the metrics thread is reading it.
fn publish(data: &ShardData) {
    let Some(slot) = data.shared.metrics.slots.get(data.id) else {
        return;
    };
    let Ok(mut r) = slot.try_lock() else {
        return;
    };
    let st = &data.stats;
    r.published_ms = data.now_ms;
    r.loops = st.loops.now;
    r.connections = data.clients.iter().flatten().count() as u64;
    r.commands_processed = st.commands_processed;
    r.keyspace_hits = st.keyspace_hits;
    r.keyspace_misses = st.keyspace_misses;
    r.expired_keys = st.expired_keys_active + data.keyspace.total_expired_keys();
    r.error_replies = st.total_error_replies;
    r.dbs.clear();
    for i in 0..data.keyspace.databases() {
        let db = data.keyspace.db(i);
        r.dbs.push((db.len() as u64, db.expires_len() as u64));
    }
    r.cmds.clear();
    r.cmds.extend(st.cmds.iter().map(|c| (c.calls, c.usec)));
    if data.id == 0
        && let Ok(p) = data.shared.persist.try_lock()
    {
        r.persist = Some(PersistFigures {
            bgsave_in_progress: p.running.is_some(),
            last_bgsave_ok: p.last_bgsave_ok,
            last_bgsave_time_s: p.last_bgsave_time_s,
            saves: p.saves,
            last_cow_size: p.last_cow_size,
            last_bytes: p.last_bytes,
            last_barrier_us: p.last_barrier_us,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_close_once_per_window() {
        let mut v = LoopView::default();
        let mut s = LoopStats::default();
        v.update(&s, 10_000);
        s.iterations = 500;
        s.enters = 500;
        s.completions = 1500;
        s.busy_ns = 250_000_000;
        s.idle_ns = 750_000_000;
        v.update(&s, 10_500);
        assert_eq!(v.iterations_per_sec, 0, "window still open");
        assert_eq!(v.now.iterations, 500);
        v.update(&s, 12_000);
        assert_eq!(v.iterations_per_sec, 250);
        assert!((v.cqes_per_enter - 3.0).abs() < 1e-9);
        assert!((v.busy_pct - 25.0).abs() < 1e-9);
    }
}
