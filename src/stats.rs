//! Per-shard statistics: per-command calls and time, latency histograms, error counts, the
//! slow log. Kept per shard without locks and merged on demand (INFO, LATENCY, SLOWLOG).

use crate::commands::{COMMANDS, Command};
use hdrhistogram::Histogram;
use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bounds of the per-command latency histograms, in nanoseconds (as Redis: 1 ns to 1 s).
pub const LATENCY_HIST_MIN_NS: u64 = 1;
pub const LATENCY_HIST_MAX_NS: u64 = 1_000_000_000;
/// Significant figures of the latency histograms (Redis uses 2).
pub const LATENCY_HIST_SIGFIGS: u8 = 2;
/// Distinct error codes tracked in errorstats (Redis: 128), beyond which they are ignored.
pub const ERRORSTATS_MAX_CODES: usize = 128;
/// Arguments kept per slow-log entry, and bytes kept per argument (Redis's limits).
pub const SLOWLOG_ENTRY_MAX_ARGC: usize = 32;
pub const SLOWLOG_ENTRY_MAX_STRING_BYTES: usize = 128;
/// Samples kept for `instantaneous_ops_per_sec`, and the interval between them (Redis:
/// 16 samples, one per 100 ms).
pub const OPS_SAMPLES: usize = 16;
pub const OPS_SAMPLE_INTERVAL_MS: i64 = 100;

/// Statistics slots: one per row of [`COMMANDS`] (same index), then one per subcommand
/// row, in table order. Redis 7.0 keeps calls, errors and latency per subcommand
/// (`cmdstat_config|resetstat`); a container command's own slot only sees calls refused
/// before a subcommand was known (`CLIENT` alone).
struct Slots {
    names: Vec<&'static str>,
    /// Per command index: the slot of its first subcommand.
    first_sub: Vec<usize>,
}

static SLOTS: LazyLock<Slots> = LazyLock::new(|| {
    let mut names: Vec<&'static str> = COMMANDS.iter().map(|c| c.name).collect();
    let mut first_sub = Vec::with_capacity(COMMANDS.len());
    for c in COMMANDS {
        first_sub.push(names.len());
        names.extend(c.subcommands.iter().map(|(full, _, _)| *full));
    }
    Slots { names, first_sub }
});

/// How many statistics slots there are (commands and subcommands).
pub fn slot_count() -> usize {
    SLOTS.names.len()
}

/// The full name of slot `i` (`get`, `client|id`).
pub fn slot_name(i: usize) -> &'static str {
    SLOTS.names[i]
}

/// The slot a call of `cmd` with these arguments counts in: its subcommand's when it has
/// one (`argv[1]`), else its own.
#[inline]
pub fn slot_of(cmd: &'static Command, argv: &[&[u8]]) -> usize {
    if cmd.subcommands.is_empty() {
        return cmd.index();
    }
    sub_slot(cmd, argv.get(1).copied()).unwrap_or_else(|| cmd.index())
}

/// The slot of subcommand `sub` of container `cmd`, if it names one.
#[cold]
pub fn sub_slot(cmd: &'static Command, sub: Option<&[u8]>) -> Option<usize> {
    let sub = sub?;
    let prefix = cmd.name.len() + 1;
    let j = cmd.subcommands.iter().position(|(full, _, _)| {
        full.len() > prefix && full.as_bytes()[prefix..].eq_ignore_ascii_case(sub)
    })?;
    Some(SLOTS.first_sub[cmd.index()] + j)
}

/// The slot named `name` (`set`, `CONFIG|RESETSTAT`), as Redis's `lookupCommandBySds`.
pub fn slot_by_name(name: &[u8]) -> Option<usize> {
    match name.iter().position(|&b| b == b'|') {
        None => crate::commands::lookup(name).map(Command::index),
        Some(bar) => {
            let cmd = crate::commands::lookup(&name[..bar])?;
            sub_slot(cmd, Some(&name[bar + 1..]))
        }
    }
}

/// The slots of container `cmd`'s subcommands.
pub fn sub_slots(cmd: &'static Command) -> std::ops::Range<usize> {
    let first = SLOTS.first_sub[cmd.index()];
    first..first + cmd.subcommands.len()
}

/// Slow-log ids are unique across shards so the merged log orders by id.
static SLOWLOG_NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The next slow-log entry id.
pub fn next_slowlog_id() -> u64 {
    SLOWLOG_NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

#[derive(Default)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    /// Calls sent to another shard (counted there).
    pub forwarded: u64,
    pub latency: Option<Box<Histogram<u64>>>,
}

/// One slow-log entry.
#[derive(Clone, Debug)]
pub struct SlowEntry {
    pub id: u64,
    pub time_s: i64,
    pub duration_us: u64,
    pub argv: Vec<Vec<u8>>,
    pub peer: String,
    pub name: String,
}

pub struct ShardStats {
    pub cmds: Vec<CmdStat>,
    pub errors: HashMap<String, u64>,
    pub total_error_replies: u64,
    pub commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys_active: u64,
    pub latency_tracking: bool,
    pub slowlog: VecDeque<SlowEntry>,
    /// Latency monitor: stalls of at least this many nanoseconds are recorded, `u64::MAX`
    /// when the monitor is off (so the hot path tests one comparison).
    pub latency_threshold_ns: u64,
    /// This shard's latency spikes (LATENCY LATEST, HISTORY, ...).
    pub latency: crate::latency::Monitor,
    /// This shard's loop counters as of the last tick (INFO percore).
    pub loops: crate::metrics::LoopView,
    ops_samples: [u64; OPS_SAMPLES],
    ops_sample_idx: usize,
    ops_last_ms: i64,
    ops_last_count: u64,
    /// Keyed requests of this shard's clients sent to the shard owning their key, and
    /// answered (INFO percore `hops`).
    pub hops: u64,
    /// Requests of other shards' clients run here (INFO percore `hops_served`).
    pub hops_served: u64,
    /// A hopped request's round trip, from the batch's start on this shard to the start
    /// of the loop iteration that received its answers (both mailbox legs and the
    /// owner's wake-up and work), one sample per request; made at the first hop.
    pub hop_latency: Option<Box<Histogram<u64>>>,
    /// Requests sent to another shard whose answers are not back yet.
    pub hops_in_flight: u64,
    /// `hops_served` when the loop last went to wait (see `hop_spin`).
    hops_served_seen: u64,
}

impl Default for ShardStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardStats {
    pub fn new() -> Self {
        Self {
            cmds: (0..slot_count()).map(|_| CmdStat::default()).collect(),
            errors: HashMap::new(),
            total_error_replies: 0,
            commands_processed: 0,
            keyspace_hits: 0,
            keyspace_misses: 0,
            expired_keys_active: 0,
            latency_tracking: true,
            slowlog: VecDeque::new(),
            latency_threshold_ns: u64::MAX,
            latency: crate::latency::Monitor::default(),
            loops: crate::metrics::LoopView::default(),
            ops_samples: [0; OPS_SAMPLES],
            ops_sample_idx: 0,
            ops_last_ms: 0,
            ops_last_count: 0,
            hops: 0,
            hops_served: 0,
            hop_latency: None,
            hops_in_flight: 0,
            hops_served_seen: 0,
        }
    }

    /// A batch of `n` forwarded requests came back after `ns` (see `hop_latency`).
    pub fn record_hop(&mut self, ns: u64, n: usize, now_ms: i64) {
        let n = n as u64;
        self.hops += n;
        self.hops_in_flight = self.hops_in_flight.saturating_sub(n);
        let h = self.hop_latency.get_or_insert_with(|| {
            Box::new(
                Histogram::new_with_bounds(
                    LATENCY_HIST_MIN_NS,
                    LATENCY_HIST_MAX_NS,
                    LATENCY_HIST_SIGFIGS,
                )
                .expect("valid histogram bounds"),
            )
        });
        h.saturating_record_n(ns.max(LATENCY_HIST_MIN_NS), n);
        if ns >= self.latency_threshold_ns {
            self.spike(crate::latency::Event::CrossShardHop, ns, now_ms);
        }
    }

    /// A command ran here with arguments `argv` (its subcommand counts; empty: the
    /// command's own slot); `reply` is what it wrote (its first bytes tell an error).
    /// The hot path (a call that succeeded, histogram made, under the latency threshold)
    /// is a few adds and the histogram's record; the rest is out of line.
    #[inline]
    pub fn record_call(
        &mut self,
        cmd: &'static Command,
        argv: &[&[u8]],
        took: Duration,
        failed: bool,
        reply: &[u8],
    ) {
        self.commands_processed += 1;
        let slot = slot_of(cmd, argv);
        let st = &mut self.cmds[slot];
        st.calls += 1;
        let ns = took.as_nanos() as u64;
        st.usec += ns / 1000;
        if self.latency_tracking {
            match &mut st.latency {
                Some(h) => h.saturating_record(ns.max(LATENCY_HIST_MIN_NS)),
                None => self.first_latency(slot, ns),
            }
        }
        if failed {
            self.record_failure(slot, reply);
        }
        if ns >= self.latency_threshold_ns {
            let event = if cmd.has(crate::commands::flags::FAST) {
                crate::latency::Event::FastCommand
            } else {
                crate::latency::Event::Command
            };
            self.spike(event, ns, percore_net::reactor::unix_ms());
        }
    }

    /// The first timed call of slot `slot`: its histogram is made.
    #[cold]
    fn first_latency(&mut self, slot: usize, ns: u64) {
        let mut h = Histogram::new_with_bounds(
            LATENCY_HIST_MIN_NS,
            LATENCY_HIST_MAX_NS,
            LATENCY_HIST_SIGFIGS,
        )
        .expect("valid histogram bounds");
        h.saturating_record(ns.max(LATENCY_HIST_MIN_NS));
        self.cmds[slot].latency = Some(Box::new(h));
    }

    /// A call of slot `slot` answered the error `reply`.
    #[cold]
    fn record_failure(&mut self, slot: usize, reply: &[u8]) {
        self.cmds[slot].failed_calls += 1;
        let code = error_code(reply);
        self.count_error(&code);
    }

    /// `latency-monitor-threshold` in milliseconds (0: off).
    pub fn set_latency_threshold_ms(&mut self, ms: u64) {
        self.latency_threshold_ns = if ms == 0 {
            u64::MAX
        } else {
            ms.saturating_mul(1_000_000)
        };
    }

    /// Whether the latency monitor is on.
    #[inline]
    pub fn latency_on(&self) -> bool {
        self.latency_threshold_ns != u64::MAX
    }

    /// Records a stall of `ns` nanoseconds of `event` at `now_ms` if it reaches the
    /// threshold (in whole milliseconds, as Redis's `latencyAddSampleIfNeeded`).
    #[cold]
    pub fn spike(&mut self, event: crate::latency::Event, ns: u64, now_ms: i64) {
        if ns >= self.latency_threshold_ns {
            self.latency.record(event, now_ms / 1000, ns / 1_000_000);
        }
    }

    /// A call refused before it ran (arity, auth, cross-slot).
    /// An unknown subcommand counts no call anywhere (Redis found no command).
    pub fn record_rejected(&mut self, cmd: &'static Command, argv: &[&[u8]], error: &str) {
        let unknown_sub =
            !cmd.subcommands.is_empty() && argv.len() > 1 && sub_slot(cmd, Some(argv[1])).is_none();
        if !unknown_sub {
            self.cmds[slot_of(cmd, argv)].rejected_calls += 1;
        }
        self.count_error(&error_code(error.as_bytes()));
    }

    /// A multi-shard command's merged reply was an error (`sub`: its subcommand).
    pub fn record_failed(&mut self, cmd: &'static Command, sub: Option<&[u8]>, reply: &[u8]) {
        let slot = sub_slot(cmd, sub).unwrap_or_else(|| cmd.index());
        self.cmds[slot].failed_calls += 1;
        self.count_error(&error_code(reply));
    }

    pub fn record_forward(&mut self, cmd: &'static Command) {
        self.hops_in_flight += 1;
        self.cmds[cmd.index()].forwarded += 1;
    }

    /// An error reply not tied to a command (unknown command, protocol error).
    pub fn record_error(&mut self, text: &str) {
        self.count_error(&error_code(text.as_bytes()));
    }

    fn count_error(&mut self, code: &str) {
        self.total_error_replies += 1;
        if let Some(n) = self.errors.get_mut(code) {
            *n += 1;
        } else if self.errors.len() < ERRORSTATS_MAX_CODES {
            self.errors.insert(code.to_string(), 1);
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        // Like Redis, RESETSTAT keeps the latency monitor's events; the loop counters
        // belong to the reactor and keep counting.
        *self = Self {
            hops_in_flight: self.hops_in_flight,
            latency_tracking: self.latency_tracking,
            slowlog: std::mem::take(&mut self.slowlog),
            latency_threshold_ns: self.latency_threshold_ns,
            latency: std::mem::take(&mut self.latency),
            loops: std::mem::take(&mut self.loops),
            ..Self::new()
        };
    }

    /// Takes an operations-per-second sample when one is due (called from the tick).
    pub fn sample_ops(&mut self, now_ms: i64) {
        let elapsed = now_ms - self.ops_last_ms;
        if elapsed < OPS_SAMPLE_INTERVAL_MS {
            return;
        }
        if self.ops_last_ms != 0 {
            let ops = self.commands_processed.saturating_sub(self.ops_last_count);
            self.ops_samples[self.ops_sample_idx] = ops * 1000 / elapsed.max(1) as u64;
            self.ops_sample_idx = (self.ops_sample_idx + 1) % OPS_SAMPLES;
        }
        self.ops_last_ms = now_ms;
        self.ops_last_count = self.commands_processed;
    }

    /// Mean of the samples (Redis's `getInstantaneousMetric`).
    pub fn instantaneous_ops_per_sec(&self) -> u64 {
        self.ops_samples.iter().sum::<u64>() / OPS_SAMPLES as u64
    }

    /// Adds a slow-log entry, keeping at most `max_len`.
    pub fn push_slow(&mut self, entry: SlowEntry, max_len: usize) {
        self.slowlog.push_front(entry);
        self.slowlog.truncate(max_len);
    }
}

/// Records `argv` in the slow log when it took at least `slower_than_us` (negative:
/// disabled), as Redis's `slowlogPushEntryIfNeeded`.
#[expect(clippy::too_many_arguments, reason = "the fields of one entry")]
#[cold]
pub fn log_if_slow(
    stats: &mut ShardStats,
    slower_than_us: i64,
    max_len: u64,
    argv: &[&[u8]],
    took: Duration,
    now_ms: i64,
    peer: &str,
    name: Option<&[u8]>,
) {
    let us = took.as_micros() as u64;
    if slower_than_us < 0 || us < slower_than_us as u64 {
        return;
    }
    let entry = SlowEntry {
        id: next_slowlog_id(),
        time_s: now_ms / 1000,
        duration_us: us,
        argv: slowlog_args(argv),
        peer: peer.to_string(),
        name: name
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default(),
    };
    stats.push_slow(entry, usize::try_from(max_len).unwrap_or(usize::MAX));
}

/// Whether a call of `cmd` that took `took` belongs in the slow log.
#[inline]
pub fn is_slow(data: &crate::shard::ShardData, cmd: &Command, took: Duration) -> bool {
    let limit_us = data.cfg.slowlog_log_slower_than_us;
    // Whole microseconds as Redis, compared in nanoseconds (no 128-bit division per call).
    limit_us >= 0
        && u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
            >= limit_us.unsigned_abs().saturating_mul(1000)
        && !cmd.has(crate::commands::flags::SKIP_SLOWLOG)
}

/// Records a call in the shard's slow log if it was slow (Redis's `slowlogPushEntryIfNeeded`).
#[inline]
pub fn note_slow(
    data: &mut crate::shard::ShardData,
    cmd: &Command,
    took: Duration,
    client: &crate::client::Client,
    argv: &[&[u8]],
) {
    if is_slow(data, cmd, took) {
        log_slow_call(data, took, client, argv);
    }
}

#[cold]
fn log_slow_call(
    data: &mut crate::shard::ShardData,
    took: Duration,
    client: &crate::client::Client,
    argv: &[&[u8]],
) {
    let (limit, max_len, now) = (
        data.cfg.slowlog_log_slower_than_us,
        data.cfg.slowlog_max_len,
        data.now_ms,
    );
    log_if_slow(
        &mut data.stats,
        limit,
        max_len,
        argv,
        took,
        now,
        &client.peer,
        client.name.as_deref(),
    );
}

/// [`note_slow`] of a call whose client is not at hand: a command a transaction ran (the
/// transaction carries its client's address and name) or a script's call (`?:0`).
#[cold]
pub fn note_slow_as(
    data: &mut crate::shard::ShardData,
    cmd: &Command,
    took: Duration,
    argv: &[&[u8]],
    peer: &str,
    name: Option<&[u8]>,
) {
    if !is_slow(data, cmd, took) {
        return;
    }
    let (limit, max_len, now) = (
        data.cfg.slowlog_log_slower_than_us,
        data.cfg.slowlog_max_len,
        data.now_ms,
    );
    log_if_slow(&mut data.stats, limit, max_len, argv, took, now, peer, name);
}

/// The error code of an error reply: its first word (`-ERR ...` → `ERR`).
pub fn error_code(reply: &[u8]) -> String {
    let body = reply.strip_prefix(b"-").unwrap_or(reply);
    let end = body
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Builds a slow-log entry's argument list with Redis's truncation rules.
pub fn slowlog_args(argv: &[&[u8]]) -> Vec<Vec<u8>> {
    if argv.is_empty() {
        return Vec::new();
    }
    let keep = argv.len().min(SLOWLOG_ENTRY_MAX_ARGC);
    let mut out = Vec::with_capacity(keep);
    let hidden = crate::monitor::redacted(argv);
    for (i, a) in argv.iter().take(keep).enumerate() {
        let a: &[u8] = if hidden.contains(&i) {
            b"(redacted)"
        } else {
            a
        };
        if keep < argv.len() && i == keep - 1 {
            out.push(format!("... ({} more arguments)", argv.len() - keep + 1).into_bytes());
            break;
        }
        if a.len() > SLOWLOG_ENTRY_MAX_STRING_BYTES {
            let mut v = a[..SLOWLOG_ENTRY_MAX_STRING_BYTES].to_vec();
            v.extend_from_slice(
                format!(
                    "... ({} more bytes)",
                    a.len() - SLOWLOG_ENTRY_MAX_STRING_BYTES
                )
                .as_bytes(),
            );
            out.push(v);
        } else {
            out.push(a.to_vec());
        }
    }
    out
}

/// Before the loop waits: spin for mail (`hop-spin-us`) while requests of this shard are
/// out on another shard, or when this iteration ran requests for another shard (its
/// next ones tend to follow) — the cross-shard hop's sleep and wake-up (issue 19).
#[inline]
pub fn hop_spin<S>(
    data: &mut crate::shard::ShardData,
    io: &mut percore_net::reactor::Io<crate::shard::Msg, S>,
) {
    let us = data.cfg.hop_spin_us;
    if us == 0 {
        return;
    }
    let st = &mut data.stats;
    let served = st.hops_served != st.hops_served_seen;
    st.hops_served_seen = st.hops_served;
    if st.hops_in_flight > 0 || served {
        io.spin_for_mail(us * 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_first_words() {
        assert_eq!(error_code(b"-ERR syntax error\r\n"), "ERR");
        assert_eq!(error_code(b"-WRONGTYPE Operation\r\n"), "WRONGTYPE");
        assert_eq!(error_code(b"NOAUTH Authentication required."), "NOAUTH");
    }

    #[test]
    fn slowlog_truncates_like_redis() {
        let long = vec![b'x'; 200];
        let args: Vec<&[u8]> = vec![b"set", b"k", &long];
        let got = slowlog_args(&args);
        assert_eq!(got[2].len(), 128 + "... (72 more bytes)".len());
        let many: Vec<Vec<u8>> = (0..40).map(|i| format!("a{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let got = slowlog_args(&refs);
        assert_eq!(got.len(), 32);
        assert_eq!(got[31], b"... (9 more arguments)");
    }

    #[test]
    fn slowlog_redacts_like_redis() {
        let args: Vec<&[u8]> = vec![b"acl", b"setuser", b"u", b"+get", b"+set"];
        let got = slowlog_args(&args);
        assert_eq!(
            got,
            vec![
                b"acl".to_vec(),
                b"setuser".to_vec(),
                b"(redacted)".to_vec(),
                b"(redacted)".to_vec(),
                b"(redacted)".to_vec()
            ]
        );
        let args: Vec<&[u8]> = vec![b"config", b"set", b"masterauth", b"secret"];
        assert_eq!(slowlog_args(&args)[3], b"(redacted)");
    }
}
