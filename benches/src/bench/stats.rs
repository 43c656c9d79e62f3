//! Latency histograms, error counts by kind, and the per-second timeline.

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, from 1 µs to one hour, with 3 significant
/// digits (HdrHistogram's usual setting: 0.1% value precision).
pub const LATENCY_LOWEST_US: u64 = 1;
pub const LATENCY_HIGHEST_US: u64 = 3_600_000_000;
pub const LATENCY_SIGFIG: u8 = 3;
/// The most distinct error kinds kept; further kinds are counted as `other`.
pub const MAX_ERROR_KINDS: usize = 32;

/// An empty latency histogram (µs).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_LOWEST_US, LATENCY_HIGHEST_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Counts by kind, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    kinds: Vec<(String, u64)>,
}

impl ErrorCounts {
    /// Adds `n` of `kind`; allocates only the first time a kind is seen.
    pub fn add(&mut self, kind: &[u8], n: u64) {
        if let Some(e) = self.kinds.iter_mut().find(|(k, _)| k.as_bytes() == kind) {
            e.1 += n;
            return;
        }
        let kind = if self.kinds.len() >= MAX_ERROR_KINDS {
            "other".to_string()
        } else {
            String::from_utf8_lossy(kind).into_owned()
        };
        if let Some(e) = self.kinds.iter_mut().find(|(k, _)| *k == kind) {
            e.1 += n;
        } else {
            self.kinds.push((kind, n));
        }
    }

    pub fn merge(&mut self, other: &Self) {
        for (k, n) in &other.kinds {
            self.add(k.as_bytes(), *n);
        }
    }

    pub fn total(&self) -> u64 {
        self.kinds.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Kinds with their counts, most frequent first.
    pub fn sorted(&self) -> Vec<(String, u64)> {
        let mut v = self.kinds.clone();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// `ERR 3, WRONGTYPE 1`, or `none`.
    pub fn describe(&self) -> String {
        if self.kinds.is_empty() {
            return "none".into();
        }
        self.sorted()
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The percentiles a summary shows, in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// One second of the timeline (by reply time, from the start of measurement).
#[derive(Clone, Debug, PartialEq)]
pub struct Second {
    pub second: u64,
    /// Replies counted in this second.
    pub replies: u64,
    /// Replies per second (the last second may be shorter than one).
    pub rate: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Error replies and connection errors.
    pub errors: u64,
    /// Events that happened in this second.
    pub events: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_bounded_and_merge() {
        let mut e = ErrorCounts::default();
        e.add(b"ERR", 2);
        e.add(b"WRONGTYPE", 1);
        e.add(b"ERR", 1);
        assert_eq!(e.describe(), "ERR 3, WRONGTYPE 1");
        for i in 0..100 {
            e.add(format!("K{i}").as_bytes(), 1);
        }
        assert_eq!(e.sorted().len(), MAX_ERROR_KINDS + 1);
        assert_eq!(e.total(), 104);
        let mut f = ErrorCounts::default();
        f.merge(&e);
        assert_eq!(f.total(), 104);
    }

    #[test]
    fn histogram_spans_microseconds_to_an_hour() {
        let mut h = new_histogram();
        h.record(1).unwrap();
        h.record(3_600_000_000).unwrap();
        let l = Latency::of(&h);
        assert_eq!(l.p50, 1);
        assert!(h.equivalent(l.max, 3_600_000_000));
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
    }
}
