//! What a run prints and writes: the summary table (with ratios against the first
//! target), the per-second timeline as CSV, and JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::args::Config;
use super::run::{PhaseResult, Report, TargetSummary, group_thousands, ms};
use super::stats::Latency;

/// One line describing the load.
pub fn describe_load(cfg: &Config) -> String {
    let mode = match cfg.rate {
        Some(r) => format!("open loop at {} req/s", group_thousands(r)),
        None => "closed loop".into(),
    };
    let limit = match (cfg.duration, cfg.requests) {
        (Some(d), Some(n)) => format!("{:?} or {} requests", d, group_thousands(n as f64)),
        (Some(d), None) => format!("{d:?}"),
        (None, Some(n)) => format!("{} requests", group_thousands(n as f64)),
        (None, None) => String::new(),
    };
    let value = if cfg.value_size.0 == cfg.value_size.1 {
        format!("{} B", cfg.value_size.0)
    } else {
        format!("{}-{} B", cfg.value_size.0, cfg.value_size.1)
    };
    format!(
        "{mode}, {} connections over {} thread(s), pipeline {}, mix {}, keyspace {} {}, values {value}, {limit}{} x {} round(s)",
        cfg.connections,
        cfg.threads,
        cfg.pipeline,
        cfg.mix_text,
        group_thousands(cfg.keyspace as f64),
        cfg.distribution.name(),
        if cfg.warmup.is_zero() {
            String::new()
        } else {
            format!(" after {:?} warm-up", cfg.warmup)
        },
        cfg.rounds,
    )
}

fn latency_cells(l: &Latency) -> [u64; 6] {
    [l.p50, l.p90, l.p99, l.p999, l.p9999, l.max]
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// The summary table and what goes with it.
pub fn summary_text(cfg: &Config, report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\npercore-bench: {}", describe_load(cfg));
    if report.interrupted {
        let _ = writeln!(
            out,
            "(interrupted: figures cover the time measured before Ctrl-C)"
        );
    }
    let name_w = report
        .targets
        .iter()
        .map(|t| t.target.name.len())
        .chain(
            report
                .targets
                .iter()
                .skip(1)
                .map(|t| t.target.name.len() + 1 + report.targets[0].target.name.len()),
        )
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "\n{:<name_w$} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "target", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "p99.99", "max ms", "errors"
    );
    for t in &report.targets {
        let cells = latency_cells(&t.latency());
        let _ = write!(
            out,
            "{:<name_w$} {:>12}",
            t.target.name,
            group_thousands(t.throughput())
        );
        for c in cells {
            let _ = write!(out, " {:>9}", ms(c));
        }
        let _ = writeln!(out, " {:>8}", t.errors());
    }
    if let Some(first) = report.targets.first() {
        let base = latency_cells(&first.latency());
        for t in report.targets.iter().skip(1) {
            let cells = latency_cells(&t.latency());
            let _ = write!(
                out,
                "{:<name_w$} {:>12}",
                format!("{}/{}", t.target.name, first.target.name),
                ratio(t.throughput(), first.throughput())
            );
            for (c, b) in cells.iter().zip(base) {
                let _ = write!(out, " {:>9}", ratio(*c as f64, b as f64));
            }
            let _ = writeln!(out);
        }
    }

    if report.phases.len() > report.targets.len() {
        let _ = writeln!(out, "\nper round:");
        for p in &report.phases {
            let l = Latency::of(&p.hist);
            let _ = writeln!(
                out,
                "  {:<name_w$} r{:<3} {:>12} req/s  p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9} ms  errors {}",
                report.targets[p.target].target.name,
                p.round,
                group_thousands(p.throughput()),
                ms(l.p50),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                p.reply_errors.total() + p.conn_errors.total()
            );
        }
    }

    if report.targets.iter().any(|t| t.errors() > 0) {
        let _ = writeln!(out, "\nerrors by kind:");
        for t in report.targets.iter().filter(|t| t.errors() > 0) {
            let _ = writeln!(
                out,
                "  {}: replies: {}; connections: {}",
                t.target.name,
                t.reply_errors.describe(),
                t.conn_errors.describe()
            );
        }
    }

    if report.phases.iter().any(|p| !p.events.is_empty()) {
        let _ = writeln!(out, "\nevents:");
        for p in &report.phases {
            for e in &p.events {
                let _ = write!(
                    out,
                    "  {} r{}: {}",
                    report.targets[p.target].target.name, p.round, e.command
                );
                match (e.sent_s, e.reply_ms) {
                    (Some(at), Some(took)) => {
                        let _ = write!(out, " at {at:.3}s -> {} ({took:.2} ms)", e.reply);
                    }
                    _ => {
                        let _ = write!(out, ": {}", e.reply);
                    }
                }
                if let Some(f) = e.finished_s {
                    let _ = write!(out, "; finished at {f:.3}s");
                }
                if let Some(n) = &e.note {
                    let _ = write!(out, "; {n}");
                }
                let _ = writeln!(out);
            }
        }
    }

    let _ = writeln!(out);
    for t in &report.targets {
        if let Some((keys, secs)) = t.prefill {
            let _ = writeln!(
                out,
                "{}: prefilled {} keys in {secs:.2}s",
                t.target.name,
                group_thousands(keys as f64)
            );
        }
        if let Some(rate) = cfg.rate
            && t.rounds > 0
            && t.throughput() < rate * 0.95
        {
            let _ = writeln!(
                out,
                "{}: achieved {} of the {} req/s asked: the server or the generator did not keep up; latencies include the backlog",
                t.target.name,
                group_thousands(t.throughput()),
                group_thousands(rate)
            );
        }
    }
    let costs: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.all_replies > 0)
        .map(|t| {
            let share = if t.measured_s > 0.0 {
                t.cpu.total_s() / t.measured_s * 100.0
            } else {
                0.0
            };
            format!(
                "{} {:.2} us (user {:.2}s + sys {:.2}s, {share:.0}% of a core)",
                t.target.name,
                t.cpu_us_per_request(),
                t.cpu.user_s,
                t.cpu.sys_s
            )
        })
        .collect();
    if !costs.is_empty() {
        let _ = writeln!(out, "generator CPU per request: {}", costs.join("; "));
    }
    if let Some(f) = &report.failure {
        let _ = writeln!(out, "error: {f}");
    }
    out
}

/// `FILE.ext` -> `FILE.NAME.ext` for per-target files.
pub fn per_target_path(path: &Path, name: &str) -> PathBuf {
    match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => path.with_file_name(format!(
            "{}.{name}.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{}.{name}", path.display())),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The per-second timeline of every phase.
pub fn timeline_csv(report: &Report) -> String {
    let mut out =
        String::from("target,round,second,requests_per_s,p50_ms,p99_ms,max_ms,errors,events\n");
    for p in &report.phases {
        let name = &report.targets[p.target].target.name;
        for s in &p.timeline {
            let _ = writeln!(
                out,
                "{},{},{},{:.1},{},{},{},{},{}",
                csv_field(name),
                p.round,
                s.second,
                s.rate,
                ms(s.p50_us),
                ms(s.p99_us),
                ms(s.max_us),
                s.errors,
                csv_field(&s.events.join("; "))
            );
        }
    }
    out
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.to_string()
        }
    } else {
        "null".into()
    }
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".into(), json_num)
}

fn json_latency(l: &Latency) -> String {
    let m = |us: u64| json_num(us as f64 / 1000.0);
    format!(
        "{{\"count\": {}, \"mean\": {}, \"p50\": {}, \"p90\": {}, \"p99\": {}, \"p99.9\": {}, \"p99.99\": {}, \"max\": {}}}",
        l.count,
        json_num(l.mean / 1000.0),
        m(l.p50),
        m(l.p90),
        m(l.p99),
        m(l.p999),
        m(l.p9999),
        m(l.max)
    )
}

fn json_counts(c: &super::stats::ErrorCounts) -> String {
    let items: Vec<String> = c
        .sorted()
        .iter()
        .map(|(k, n)| format!("{}: {n}", json_str(k)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn json_target(t: &TargetSummary, first: &TargetSummary, is_first: bool) -> String {
    let l = t.latency();
    let vs = if is_first {
        "null".to_string()
    } else {
        let b = first.latency();
        let r = |a: f64, b: f64| json_opt((b > 0.0).then(|| a / b));
        format!(
            "{{\"throughput\": {}, \"p50\": {}, \"p90\": {}, \"p99\": {}, \"p99.9\": {}, \"p99.99\": {}, \"max\": {}}}",
            r(t.throughput(), first.throughput()),
            r(l.p50 as f64, b.p50 as f64),
            r(l.p90 as f64, b.p90 as f64),
            r(l.p99 as f64, b.p99 as f64),
            r(l.p999 as f64, b.p999 as f64),
            r(l.p9999 as f64, b.p9999 as f64),
            r(l.max as f64, b.max as f64),
        )
    };
    format!(
        "{{\"name\": {}, \"addr\": {}, \"rounds\": {}, \"sent\": {}, \"replies\": {}, \"measured_s\": {}, \"throughput\": {}, \"latency_ms\": {}, \"errors\": {{\"total\": {}, \"replies\": {}, \"connection\": {}}}, \"generator_cpu_us_per_request\": {}, \"prefill\": {}, \"vs_first\": {vs}}}",
        json_str(&t.target.name),
        json_str(&t.target.addr.to_string()),
        t.rounds,
        t.sent,
        t.replies,
        json_num(t.measured_s),
        json_num(t.throughput()),
        json_latency(&l),
        t.errors(),
        json_counts(&t.reply_errors),
        json_counts(&t.conn_errors),
        json_num(t.cpu_us_per_request()),
        t.prefill.map_or_else(
            || "null".into(),
            |(k, s)| format!("{{\"keys\": {k}, \"seconds\": {}}}", json_num(s))
        ),
    )
}

fn json_phase(p: &PhaseResult, report: &Report) -> String {
    let events: Vec<String> = p
        .events
        .iter()
        .map(|e| {
            format!(
                "{{\"command\": {}, \"sent_s\": {}, \"reply\": {}, \"reply_ms\": {}, \"finished_s\": {}, \"note\": {}}}",
                json_str(&e.command),
                json_opt(e.sent_s),
                json_str(&e.reply),
                json_opt(e.reply_ms),
                json_opt(e.finished_s),
                e.note.as_deref().map_or_else(|| "null".into(), json_str),
            )
        })
        .collect();
    let seconds: Vec<String> = p
        .timeline
        .iter()
        .map(|s| {
            let evs: Vec<String> = s.events.iter().map(|e| json_str(e)).collect();
            format!(
                "{{\"second\": {}, \"requests_per_s\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}, \"errors\": {}, \"events\": [{}]}}",
                s.second,
                json_num(s.rate),
                json_num(s.p50_us as f64 / 1000.0),
                json_num(s.p99_us as f64 / 1000.0),
                json_num(s.max_us as f64 / 1000.0),
                s.errors,
                evs.join(", ")
            )
        })
        .collect();
    format!(
        "{{\"target\": {}, \"round\": {}, \"connections\": {}, \"throughput\": {}, \"measured_s\": {}, \"latency_ms\": {}, \"errors\": {{\"replies\": {}, \"connection\": {}}}, \"interrupted\": {}, \"events\": [{}], \"timeline\": [\n      {}\n    ]}}",
        json_str(&report.targets[p.target].target.name),
        p.round,
        p.connections,
        json_num(p.throughput()),
        json_num(p.measured_s),
        json_latency(&Latency::of(&p.hist)),
        json_counts(&p.reply_errors),
        json_counts(&p.conn_errors),
        p.interrupted,
        events.join(", "),
        seconds.join(",\n      ")
    )
}

/// The whole report as JSON.
pub fn json(cfg: &Config, report: &Report) -> String {
    let config = format!(
        "{{\"mode\": {}, \"rate\": {}, \"connections\": {}, \"threads\": {}, \"pipeline\": {}, \"mix\": {}, \"keyspace\": {}, \"distribution\": {}, \"value_size\": [{}, {}], \"duration_s\": {}, \"requests\": {}, \"warmup_s\": {}, \"rounds\": {}, \"seed\": {}}}",
        json_str(if cfg.rate.is_some() { "open" } else { "closed" }),
        json_opt(cfg.rate),
        cfg.connections,
        cfg.threads,
        cfg.pipeline,
        json_str(&cfg.mix_text),
        cfg.keyspace,
        json_str(&cfg.distribution.name()),
        cfg.value_size.0,
        cfg.value_size.1,
        json_opt(cfg.duration.map(|d| d.as_secs_f64())),
        cfg.requests
            .map_or_else(|| "null".into(), |n| n.to_string()),
        json_num(cfg.warmup.as_secs_f64()),
        cfg.rounds,
        cfg.seed
    );
    let targets: Vec<String> = report
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| json_target(t, &report.targets[0], i == 0))
        .collect();
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|p| json_phase(p, report))
        .collect();
    format!(
        "{{\n  \"tool\": \"percore-bench\",\n  \"config\": {config},\n  \"interrupted\": {},\n  \"failure\": {},\n  \"targets\": [\n    {}\n  ],\n  \"phases\": [\n    {}\n  ]\n}}\n",
        report.interrupted,
        report
            .failure
            .as_ref()
            .map_or_else(|| "null".into(), |f| json_str(&f.to_string())),
        targets.join(",\n    "),
        phases.join(",\n    ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(json_str("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
        assert_eq!(json_num(1.5), "1.5");
        assert_eq!(json_num(2.0), "2");
        assert_eq!(json_num(f64::NAN), "null");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(
            per_target_path(Path::new("out/x.hdr"), "redis"),
            PathBuf::from("out/x.redis.hdr")
        );
        assert_eq!(
            per_target_path(Path::new("x"), "redis"),
            PathBuf::from("x.redis")
        );
        assert_eq!(group_thousands(1_234_567.4), "1,234,567");
        assert_eq!(group_thousands(999.0), "999");
    }
}
