//! The latency monitor (Redis's `latency.c`): per event class, a time series of latency
//! spikes, one sample per second (the worst of that second), recorded only when a
//! measured stall reaches `latency-monitor-threshold` milliseconds.
//!
//! Each shard keeps its own [`Monitor`] without locks; LATENCY asks every shard for its
//! series ([`Monitor::encode`]) and merges them ([`merge`]): samples of the same second
//! merge by maximum, as Redis merges samples within one series.

pub mod doctor;
pub mod sparkline;

use crate::shard::{Msg, ShardData};
use percore_net::reactor::Io;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const LATENCY_TS_LEN: usize = 160;

/// The event classes percore records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// A command without the `fast` flag (Redis's `command`).
    Command,
    /// A command with the `fast` flag (Redis's `fast-command`).
    FastCommand,
    /// The stall of a fork BGSAVE's barrier, fork included (Redis's `fork`).
    Fork,
    /// A shard's stall at any snapshot barrier.
    SnapshotBarrier,
    /// A loop iteration in which writes copied pages of a forkless snapshot cut.
    SnapshotPageCopy,
    /// One active expiry cycle (Redis's `expire-cycle`).
    ExpireCycle,
    /// A reactor loop iteration (its busy time, the wait for I/O excluded).
    LoopIteration,
    /// The time a cross-shard message batch waited in the receiver's mailbox.
    MailboxWait,
    /// A keyed request's round trip to the shard owning its key and back.
    CrossShardHop,
}

impl Event {
    pub const ALL: [Self; 9] = [
        Self::Command,
        Self::FastCommand,
        Self::Fork,
        Self::SnapshotBarrier,
        Self::SnapshotPageCopy,
        Self::ExpireCycle,
        Self::LoopIteration,
        Self::MailboxWait,
        Self::CrossShardHop,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::FastCommand => "fast-command",
            Self::Fork => "fork",
            Self::SnapshotBarrier => "snapshot-barrier",
            Self::SnapshotPageCopy => "snapshot-page-copy",
            Self::ExpireCycle => "expire-cycle",
            Self::LoopIteration => "loop-iteration",
            Self::MailboxWait => "cross-shard-mailbox-wait",
            Self::CrossShardHop => "cross-shard-hop",
        }
    }

    /// The event named exactly `name` (HISTORY and GRAPH match case-sensitively, as
    /// Redis's dictionary lookup does).
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name().as_bytes() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One second's worst latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds; 0 marks an empty slot.
    pub time_s: i64,
    pub ms: u64,
}

/// A ring of [`LATENCY_TS_LEN`] samples and the all-time maximum.
#[derive(Clone, Debug)]
pub struct Series {
    samples: [Sample; LATENCY_TS_LEN],
    /// The slot the next new second goes to.
    idx: usize,
    pub max_ms: u64,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            samples: [Sample::default(); LATENCY_TS_LEN],
            idx: 0,
            max_ms: 0,
        }
    }
}

impl Series {
    /// Adds a sample: a sample in the same second as the latest one only raises it
    /// (Redis's `latencyAddSample`).
    pub fn add(&mut self, time_s: i64, ms: u64) {
        self.max_ms = self.max_ms.max(ms);
        let prev = (self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN;
        if self.samples[prev].time_s == time_s {
            self.samples[prev].ms = self.samples[prev].ms.max(ms);
            return;
        }
        self.samples[self.idx] = Sample { time_s, ms };
        self.idx = (self.idx + 1) % LATENCY_TS_LEN;
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..LATENCY_TS_LEN)
            .map(|j| self.samples[(self.idx + j) % LATENCY_TS_LEN])
            .filter(|s| s.time_s != 0)
    }

    /// The most recent sample.
    #[must_use]
    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
    }
}

/// The series of every event that had a spike since the last reset.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    series: [Option<Box<Series>>; Event::ALL.len()],
    /// Pages of the forkless cut copied as of the last iteration (see [`after_flush`]).
    cut_pages_seen: u64,
}

impl Monitor {
    /// Records a spike of `ms` milliseconds at Unix second `time_s`.
    pub fn record(&mut self, event: Event, time_s: i64, ms: u64) {
        self.series[event.index()]
            .get_or_insert_with(Box::default)
            .add(time_s, ms);
    }

    #[must_use]
    pub fn series(&self, event: Event) -> Option<&Series> {
        self.series[event.index()].as_deref()
    }

    /// The events with a series, in [`Event::ALL`] order.
    pub fn events(&self) -> impl Iterator<Item = (Event, &Series)> {
        Event::ALL
            .into_iter()
            .filter_map(|e| self.series(e).map(|s| (e, s)))
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(Option::is_none)
    }

    /// LATENCY RESET: drops the series named in `names` (case-insensitively, as Redis's
    /// `latencyResetEvent`), or every series when `names` is empty; returns the events
    /// dropped.
    pub fn reset(&mut self, names: &[&[u8]]) -> Vec<Event> {
        let mut dropped = Vec::new();
        for e in Event::ALL {
            let named = names.is_empty()
                || names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(e.name().as_bytes()));
            if named && self.series[e.index()].take().is_some() {
                dropped.push(e);
            }
        }
        dropped
    }

    /// The series (all, or only `only`) as text lines `<event> <max> <time>:<ms>,...`
    /// for [`merge`].
    #[must_use]
    pub fn encode(&self, only: Option<Event>) -> String {
        let mut out = String::new();
        for (e, s) in self.events() {
            if only.is_some_and(|o| o != e) {
                continue;
            }
            let _ = write!(out, "{} {} ", e.name(), s.max_ms);
            for (i, x) in s.samples().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:{}", x.time_s, x.ms);
            }
            out.push('\n');
        }
        out
    }
}

/// At the end of each iteration, with the monitor on: an iteration in which writes
/// copied pages of a forkless snapshot cut is a `snapshot-page-copy` spike as long as the
/// iteration so far. (Timing each copy would put a clock read in the engine's write
/// path; the iteration is the unit the clients of this shard wait for anyway.)
pub fn after_flush(data: &mut ShardData, io: &Io<Msg, ()>) {
    if !data.stats.latency_on() {
        return;
    }
    let copied = data.keyspace.cut_stats().pages_copied;
    if copied > data.stats.latency.cut_pages_seen {
        let ns = io.now.elapsed().as_nanos() as u64;
        data.stats.spike(Event::SnapshotPageCopy, ns, io.now_ms);
    }
    data.stats.latency.cut_pages_seen = copied;
}

/// A shard stood `ns` nanoseconds at a snapshot barrier (a fork snapshot's barrier
/// includes the fork).
pub fn snapshot_stall(data: &mut ShardData, fork: bool, ns: u64) {
    if !data.stats.latency_on() {
        return;
    }
    let now = percore_net::reactor::unix_ms();
    data.stats.spike(Event::SnapshotBarrier, ns, now);
    if fork {
        data.stats.spike(Event::Fork, ns, now);
    }
}

/// Merges the [`Monitor::encode`] texts of several shards into one monitor: per event the
/// all-time maximum of all, and per second the worst sample of any shard, keeping the
/// latest [`LATENCY_TS_LEN`] seconds.
#[must_use]
pub fn merge<'a>(texts: impl IntoIterator<Item = &'a str>) -> Monitor {
    let mut per_event: BTreeMap<Event, (u64, BTreeMap<i64, u64>)> = BTreeMap::new();
    for text in texts {
        for line in text.lines() {
            let mut it = line.splitn(3, ' ');
            let (Some(name), Some(max), samples) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let (Some(event), Ok(max)) = (Event::from_name(name.as_bytes()), max.parse::<u64>())
            else {
                continue;
            };
            let entry = per_event.entry(event).or_default();
            entry.0 = entry.0.max(max);
            for pair in samples.unwrap_or("").split(',') {
                if let Some((t, ms)) = pair.split_once(':')
                    && let (Ok(t), Ok(ms)) = (t.parse::<i64>(), ms.parse::<u64>())
                {
                    let slot = entry.1.entry(t).or_default();
                    *slot = (*slot).max(ms);
                }
            }
        }
    }
    let mut merged = Monitor::default();
    for (event, (max, samples)) in per_event {
        let mut series = Series::default();
        let skip = samples.len().saturating_sub(LATENCY_TS_LEN);
        for (t, ms) in samples.into_iter().skip(skip) {
            series.add(t, ms);
        }
        series.max_ms = series.max_ms.max(max);
        merged.series[event.index()] = Some(Box::new(series));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_second_merges_by_max_and_ring_keeps_160() {
        let mut s = Series::default();
        s.add(100, 5);
        s.add(100, 3);
        s.add(100, 9);
        assert_eq!(
            s.samples().collect::<Vec<_>>(),
            [Sample { time_s: 100, ms: 9 }]
        );
        for t in 101..400 {
            s.add(t, 1);
        }
        assert_eq!(s.samples().count(), LATENCY_TS_LEN);
        assert_eq!(
            s.samples().next().unwrap().time_s,
            400 - LATENCY_TS_LEN as i64
        );
        assert_eq!(s.latest(), Sample { time_s: 399, ms: 1 });
        assert_eq!(s.max_ms, 9);
    }

    #[test]
    fn reset_names_events_case_insensitively() {
        let mut m = Monitor::default();
        m.record(Event::Command, 10, 50);
        m.record(Event::ExpireCycle, 10, 5);
        assert_eq!(
            m.reset(&[b"COMMAND", b"command", b"nosuch"]),
            [Event::Command]
        );
        assert_eq!(m.reset(&[]), [Event::ExpireCycle]);
        assert!(m.is_empty());
    }

    #[test]
    fn merge_takes_the_worst_per_second_and_the_latest_seconds() {
        let mut a = Monitor::default();
        let mut b = Monitor::default();
        a.record(Event::Command, 10, 50);
        a.record(Event::Command, 12, 7);
        b.record(Event::Command, 10, 80);
        b.record(Event::Command, 11, 6);
        b.record(Event::LoopIteration, 11, 90);
        let m = merge([a.encode(None).as_str(), b.encode(None).as_str()]);
        let c = m.series(Event::Command).unwrap();
        assert_eq!(
            c.samples().map(|s| (s.time_s, s.ms)).collect::<Vec<_>>(),
            [(10, 80), (11, 6), (12, 7)]
        );
        assert_eq!(c.max_ms, 80);
        assert_eq!(c.latest(), Sample { time_s: 12, ms: 7 });
        assert_eq!(m.events().count(), 2);
        // Only one event asked for.
        let only = merge([b.encode(Some(Event::LoopIteration)).as_str()]);
        assert_eq!(
            only.events().map(|(e, _)| e).collect::<Vec<_>>(),
            [Event::LoopIteration]
        );
        // Many shards' seconds: the latest 160 stay, the all-time max survives.
        let mut texts = Vec::new();
        for shard in 0..3i64 {
            let mut m = Monitor::default();
            m.record(Event::Command, 1, 999);
            for t in 0..100 {
                m.record(Event::Command, 1000 + shard * 100 + t, 1);
            }
            texts.push(m.encode(None));
        }
        let m = merge(texts.iter().map(String::as_str));
        let c = m.series(Event::Command).unwrap();
        assert_eq!(c.samples().count(), LATENCY_TS_LEN);
        assert_eq!(c.max_ms, 999);
        assert_eq!(c.latest().time_s, 1299);
    }
}
