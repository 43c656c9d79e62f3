//! LATENCY GRAPH: Redis's ASCII sparkline (`sparkline.c`), rows of `_o#|` characters
//! over the samples with each sample's age printed vertically below it.

use super::Series;

/// Graph width in columns and height in rows (Redis's `LATENCY_GRAPH_COLS`, and the 4
/// rows `latencyCommandGenSparkeline` asks for).
pub const GRAPH_COLS: usize = 80;
pub const GRAPH_ROWS: usize = 4;

/// Characters from the lowest to the highest third of a row (fill mode), and the
/// character of a row entirely below the sample.
const CHARSET_FILL: [char; 3] = ['_', 'o', '#'];
const FULL_ROW: char = '|';
/// Blank rows between the graph and the labels.
const LABEL_MARGIN_TOP: usize = 1;

struct Sequence {
    samples: Vec<(f64, String)>,
    min: f64,
    max: f64,
}

impl Sequence {
    fn add(&mut self, value: f64, label: String) {
        if self.samples.is_empty() {
            self.min = value;
            self.max = value;
        } else if value < self.min {
            self.min = value;
        } else if value > self.max {
            self.max = value;
        }
        self.samples.push((value, label));
    }

    /// Rows for the samples `offset..offset + len` (Redis's `sparklineRenderRange`,
    /// fill mode, linear scale).
    fn render_range(&self, out: &mut String, rows: usize, offset: usize, len: usize) {
        let mut relmax = self.max - self.min;
        if relmax == 0.0 {
            relmax = 1.0;
        }
        let steps = (CHARSET_FILL.len() * rows) as i64;
        let has_labels = self.samples.iter().any(|(_, l)| !l.is_empty());
        let mut row = 0usize;
        loop {
            let mut more = false;
            let mut chars = vec![' '; len];
            for (j, c) in chars.iter_mut().enumerate() {
                let (value, label) = &self.samples[offset + j];
                let relval = value - self.min;
                // As the C code: the product truncated to an integer, then divided.
                let step =
                    ((((relval * steps as f64) as i64) as f64 / relmax) as i64).clamp(0, steps - 1);
                if row < rows {
                    more = true;
                    let idx = step - ((rows - row - 1) * CHARSET_FILL.len()) as i64;
                    if (0..CHARSET_FILL.len() as i64).contains(&idx) {
                        *c = CHARSET_FILL[idx as usize];
                    } else if idx >= CHARSET_FILL.len() as i64 {
                        *c = FULL_ROW;
                    }
                } else {
                    if has_labels && row - rows < LABEL_MARGIN_TOP {
                        more = true;
                        break;
                    }
                    let k = row - rows - LABEL_MARGIN_TOP;
                    if let Some(&b) = label.as_bytes().get(k) {
                        more = true;
                        *c = char::from(b);
                    }
                }
            }
            if !more {
                break;
            }
            row += 1;
            out.extend(chars);
            out.push('\n');
        }
    }

    /// The whole sequence, `columns` samples per block (Redis's `sparklineRender`).
    fn render(&self, out: &mut String, columns: usize, rows: usize) {
        let mut j = 0;
        while j < self.samples.len() {
            let len = (self.samples.len() - j).min(columns);
            if j != 0 {
                out.push('\n');
            }
            self.render_range(out, rows, j, len);
            j += columns;
        }
    }
}

/// A sample's age as Redis labels it: `12s`, `5m`, `3h`, `2d`.
fn age_label(elapsed_s: i64) -> String {
    if elapsed_s < 60 {
        format!("{elapsed_s}s")
    } else if elapsed_s < 3600 {
        format!("{}m", elapsed_s / 60)
    } else if elapsed_s < 86_400 {
        format!("{}h", elapsed_s / 3600)
    } else {
        format!("{}d", elapsed_s / 86_400)
    }
}

/// LATENCY GRAPH's text for `event` (Redis's `latencyCommandGenSparkeline`).
#[must_use]
pub fn graph(event: &str, series: &Series, now_s: i64) -> String {
    let mut seq = Sequence {
        samples: Vec::new(),
        min: 0.0,
        max: 0.0,
    };
    let (mut low, mut high) = (u64::MAX, 0u64);
    for s in series.samples() {
        low = low.min(s.ms);
        high = high.max(s.ms);
        seq.add(s.ms as f64, age_label(now_s - s.time_s));
    }
    if seq.samples.is_empty() {
        low = 0;
    }
    let mut out = format!(
        "{event} - high {high} ms, low {low} ms (all time high {} ms)\n",
        series.max_ms
    );
    out.extend(std::iter::repeat_n('-', GRAPH_COLS));
    out.push('\n');
    seq.render(&mut out, GRAPH_COLS, GRAPH_ROWS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_matches_redis() {
        // redis-server 7.0 after one DEBUG SLEEP of 121 ms, a second before the GRAPH.
        let mut s = Series::default();
        s.add(1000, 121);
        let want = format!(
            "command - high 121 ms, low 121 ms (all time high 121 ms)\n{}\n \n \n \n_\n \n1\ns\n",
            "-".repeat(80)
        );
        assert_eq!(graph("command", &s, 1001), want);
    }

    #[test]
    fn rows_scale_between_low_and_high() {
        let mut s = Series::default();
        s.add(100, 10);
        s.add(200, 20);
        s.add(300, 15);
        let g = graph("fork", &s, 400);
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(
            lines[0],
            "fork - high 20 ms, low 10 ms (all time high 20 ms)"
        );
        // 12 steps over 4 rows: 10 → step 0, 20 → step 11, 15 → step 6.
        assert_eq!(&lines[2..6], [" # ", " |_", " ||", "_||"]);
        assert_eq!(lines[6], "   ");
        assert_eq!(&lines[7..], ["531", "mmm"]);
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!(age_label(59), "59s");
        assert_eq!(age_label(60), "1m");
        assert_eq!(age_label(7200), "2h");
        assert_eq!(age_label(200_000), "2d");
    }
}
