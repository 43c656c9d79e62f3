//! The full percentile spectrum in HdrHistogram's classic text format (what
//! `outputPercentileDistribution` prints in Java, wrk2 prints with `--latency`, and the
//! HdrHistogram plotter at hdrhistogram.github.io/HdrHistogram/plotFiles.html reads).
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.031 0.000000000000          1           1.00
//!        ...
//! #[Mean    =        0.042, StdDeviation   =        0.013]
//! #[Max     =        1.203, Total count    =       100000]
//! #[Buckets =           22, SubBuckets     =         2048]
//! ```

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Percentile ticks per halving of the distance to 100% (Java's default).
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `h` (recorded in µs) with values in milliseconds.
pub fn percentile_text(h: &Histogram<u64>) -> String {
    let scale = 1000.0;
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / scale;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:>12.digits$} {q:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:>12.digits$} {q:>2.12} {total:>10}");
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let sub_buckets = (2.0 * 10f64.powi(i32::from(h.sigfig())))
        .log2()
        .ceil()
        .exp2() as u64;
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]",
        h.buckets()
    );
    out
}

/// One line of the spectrum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PercentileLine {
    pub value: f64,
    pub percentile: f64,
    pub total_count: u64,
}

/// Reads the text back (header and `#` lines skipped).
pub fn parse_percentile_text(text: &str) -> Result<Vec<PercentileLine>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {}: '{line}'", n + 1);
        if !(3..=4).contains(&cols.len()) {
            return Err(bad());
        }
        out.push(PercentileLine {
            value: cols[0].parse().map_err(|_| bad())?,
            percentile: cols[1].parse().map_err(|_| bad())?,
            total_count: cols[2].parse().map_err(|_| bad())?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::stats::new_histogram;
    use super::*;

    #[test]
    fn round_trips_and_is_monotonic() {
        let mut h = new_histogram();
        for i in 1..=10_000u64 {
            h.record(i * 7 % 5000 + 20).unwrap();
        }
        h.record(250_000).unwrap();
        let text = percentile_text(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(text.contains("#[Buckets = "));
        let lines = parse_percentile_text(&text).unwrap();
        assert!(lines.len() > 50);
        for w in lines.windows(2) {
            assert!(w[0].percentile <= w[1].percentile, "{w:?}");
            assert!(w[0].value <= w[1].value, "{w:?}");
            assert!(w[0].total_count <= w[1].total_count, "{w:?}");
        }
        let last = lines.last().unwrap();
        assert!((last.percentile - 1.0).abs() < f64::EPSILON);
        assert_eq!(last.total_count, 10_001);
        assert!((last.value - 250.0).abs() < 0.5, "{last:?}");
        // The empty histogram still gives a header and the footer.
        let empty = percentile_text(&new_histogram());
        assert!(parse_percentile_text(&empty).unwrap().is_empty());
        assert!(empty.contains("Total count    =            0"));
    }
}
