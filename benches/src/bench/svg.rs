//! `--plot out.svg`: the percentile spectrum (log x axis, 1/(1-p), as HdrHistogram's
//! plotter draws it) and the per-second timeline (p99 and throughput) with event marks,
//! one colour per target, as hand-written SVG.

use std::fmt::Write as _;

use super::args::Config;
use super::report::describe_load;
use super::run::Report;
use super::stats::Latency;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 940.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 50.0;
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// The deepest percentile drawn: 99.9999%.
const MAX_NINES: u32 = 6;

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `max`.
fn nice_step(max: f64, ticks: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// An axis top at a whole step above `max`, and the step.
fn nice_top(max: f64) -> (f64, f64) {
    let step = nice_step(max, 5.0);
    let top = ((max / step).ceil() * step).max(step);
    (top, step)
}

fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

struct Panel {
    top: f64,
    height: f64,
}

impl Panel {
    fn width() -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn frame(&self, out: &mut String, title: &str, y_label: &str) {
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{}" width="{}" height="{}" fill="#fcfcfc" stroke="#999"/>"##,
            self.top,
            Self::width(),
            self.height
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
            self.top - 8.0,
            esc(title)
        );
        let cy = self.top + self.height / 2.0;
        let _ = writeln!(
            out,
            r#"<text x="18" y="{cy}" font-size="12" text-anchor="middle" transform="rotate(-90 18 {cy})">{}</text>"#,
            esc(y_label)
        );
    }

    /// Horizontal grid lines and labels for a linear y axis from 0 to `top`.
    fn y_axis(&self, out: &mut String, top: f64, step: f64) {
        let mut v = 0.0;
        while v <= top * (1.0 + 1e-9) {
            let y = self.y(v, top);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                LEFT + Self::width(),
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(v, step)
            );
            v += step;
        }
    }

    fn y(&self, v: f64, top: f64) -> f64 {
        self.top + self.height - (v / top).clamp(0.0, 1.0) * self.height
    }
}

fn polyline(out: &mut String, points: &[(f64, f64)], colour: &str, extra: &str) {
    if points.is_empty() {
        return;
    }
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="1.6" {extra} points="{}"/>"#,
        pts.join(" ")
    );
}

/// The whole figure.
pub fn plot(cfg: &Config, report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">percore-bench</text><text x="{LEFT}" y="40" font-size="11" fill="#444">{}</text>"##,
        esc(&describe_load(cfg))
    );
    spectrum(
        &mut out,
        report,
        &Panel {
            top: 80.0,
            height: 330.0,
        },
    );
    let max_second = report
        .phases
        .iter()
        .map(|p| p.measured_s.max(p.timeline.len() as f64))
        .fold(1.0, f64::max);
    timeline(
        &mut out,
        report,
        &Panel {
            top: 470.0,
            height: 220.0,
        },
        max_second,
        "p99 latency per second",
        "p99 (ms)",
        |s| s.p99_us as f64 / 1000.0,
    );
    timeline(
        &mut out,
        report,
        &Panel {
            top: 740.0,
            height: 160.0,
        },
        max_second,
        "throughput per second",
        "replies/s",
        |s| s.rate,
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">seconds from the start of measurement</text>"#,
        LEFT + Panel::width() / 2.0,
        HEIGHT - 8.0
    );
    out.push_str("</svg>\n");
    out
}

/// The percentile at `10^decades` on the 1/(1-p) axis: 0%, 90%, 99%, 99.9%, ...
fn percentile_label(decades: u32) -> String {
    match decades {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        d => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

fn spectrum(out: &mut String, report: &Report, panel: &Panel) {
    panel.frame(out, "latency by percentile", "latency (ms)");
    let count = report
        .targets
        .iter()
        .map(|t| t.hist.len())
        .max()
        .unwrap_or(0);
    // One decade of 1/(1-p) per nine the sample count supports.
    let nines = (count.max(1) as f64)
        .log10()
        .ceil()
        .clamp(2.0, f64::from(MAX_NINES));
    let x_of = |inv: f64| LEFT + (inv.max(1.0).log10() / nines).min(1.0) * Panel::width();
    let max_ms = report
        .targets
        .iter()
        .map(|t| t.hist.max() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let (top, step) = nice_top(max_ms.max(0.001));
    panel.y_axis(out, top, step);
    for d in 0..=(nines as u32) {
        let x = x_of(10f64.powi(d as i32));
        let label = percentile_label(d);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#e4e4e4"/><text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{label}</text>"##,
            panel.top,
            panel.top + panel.height,
            panel.top + panel.height + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">percentile (log scale of 1/(1-p))</text>"#,
        LEFT + Panel::width() / 2.0,
        panel.top + panel.height + 34.0
    );
    // The legend sits in the bottom-right corner, under the curves (a spectrum rises to
    // the right), right-aligned with its colour swatch after the text.
    let shown = report.targets.iter().filter(|t| !t.hist.is_empty()).count();
    let mut legend_y = panel.top + panel.height - 12.0 - 18.0 * shown.saturating_sub(1) as f64;
    let legend_right = LEFT + Panel::width() - 12.0;
    for (i, t) in report.targets.iter().enumerate() {
        if t.hist.is_empty() {
            continue;
        }
        let pts: Vec<(f64, f64)> = t
            .hist
            .iter_quantiles(super::hdr_text::TICKS_PER_HALF_DISTANCE)
            .map(|v| {
                let q = v.quantile_iterated_to();
                let inv = if q < 1.0 {
                    1.0 / (1.0 - q)
                } else {
                    f64::INFINITY
                };
                (
                    x_of(inv),
                    panel.y(v.value_iterated_to() as f64 / 1000.0, top),
                )
            })
            .collect();
        polyline(out, &pts, colour(i), "");
        let l: Latency = t.latency();
        let _ = writeln!(
            out,
            r#"<rect x="{}" y="{}" width="14" height="4" fill="{}"/><text x="{}" y="{}" font-size="12" text-anchor="end">{} (p50 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3} ms)</text>"#,
            legend_right - 14.0,
            legend_y - 4.0,
            colour(i),
            legend_right - 20.0,
            legend_y,
            esc(&t.target.name),
            l.p50 as f64 / 1000.0,
            l.p99 as f64 / 1000.0,
            l.p999 as f64 / 1000.0,
            l.max as f64 / 1000.0
        );
        legend_y += 18.0;
    }
}

fn timeline(
    out: &mut String,
    report: &Report,
    panel: &Panel,
    max_second: f64,
    title: &str,
    y_label: &str,
    value: impl Fn(&super::stats::Second) -> f64,
) {
    panel.frame(out, title, y_label);
    let max_v = report
        .phases
        .iter()
        .flat_map(|p| p.timeline.iter().map(&value))
        .fold(0.0, f64::max);
    let (top, step) = nice_top(max_v.max(1e-3));
    panel.y_axis(out, top, step);
    let x_of = |s: f64| LEFT + (s / max_second).clamp(0.0, 1.0) * Panel::width();
    let x_step = nice_step(max_second, 10.0).max(1.0);
    let mut s = 0.0;
    while s <= max_second + 1e-9 {
        let x = x_of(s);
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{s:.0}</text>"#,
            panel.top + panel.height + 15.0
        );
        s += x_step;
    }
    // Label rows in use: the right end of the last label in each, so labels of nearby
    // events stack instead of overprinting.
    let mut label_rows: Vec<f64> = Vec::new();
    for p in &report.phases {
        // A second's figure is drawn at its middle.
        let pts: Vec<(f64, f64)> = p
            .timeline
            .iter()
            .map(|s| (x_of(s.second as f64 + 0.5), panel.y(value(s), top)))
            .collect();
        let dash = if p.round > 1 {
            r#"stroke-opacity="0.6""#
        } else {
            ""
        };
        polyline(out, &pts, colour(p.target), dash);
        for e in &p.events {
            for (t, label) in e.marks() {
                let x = x_of(t);
                let row = label_rows
                    .iter()
                    .position(|&end| end < x)
                    .unwrap_or(label_rows.len());
                let end = x + 6.0 + 6.0 * label.chars().count() as f64;
                if row == label_rows.len() {
                    label_rows.push(end);
                } else {
                    label_rows[row] = end;
                }
                let _ = writeln!(
                    out,
                    r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{}" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" font-size="10" fill="{}">{}</text>"#,
                    panel.top,
                    panel.top + panel.height,
                    colour(p.target),
                    x + 3.0,
                    panel.top + 12.0 + 11.0 * row as f64,
                    colour(p.target),
                    esc(&label)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert!((nice_step(10.0, 5.0) - 2.0).abs() < 1e-12);
        assert!((nice_step(0.37, 5.0) - 0.1).abs() < 1e-12);
        assert!((nice_step(730.0, 5.0) - 200.0).abs() < 1e-9);
        let (top, step) = nice_top(0.37);
        assert!((top - 0.4).abs() < 1e-9 && (step - 0.1).abs() < 1e-12);
        assert_eq!(fmt_tick(0.1 + 0.2, 0.1), "0.3");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        let labels: Vec<String> = (0..5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }
}
