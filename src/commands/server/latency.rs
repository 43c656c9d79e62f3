//! LATENCY: the latency monitor (LATEST, HISTORY, RESET, DOCTOR, GRAPH) over every
//! shard's recorded spikes, and HISTOGRAM (per-command latency distributions); both are
//! merged across shards.

use super::super::{COMMANDS, Ctx, Gather, Partial};
use super::info::{decode_hist_into, encode_hist, new_hist};
use super::{help_reply, local_only};
use crate::latency::{Event, doctor, merge, sparkline};
use crate::stats::{slot_by_name, slot_count, slot_name, sub_slots};
use percore_net::resp::ReplyWriter;
use std::fmt::Write as _;

const HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

/// First bucket of LATENCY HISTOGRAM's log iteration, in nanoseconds, and its growth.
const HISTOGRAM_FIRST_BUCKET_NS: u64 = 1024;
const HISTOGRAM_LOG_BASE: f64 = 2.0;

pub fn latency_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(sub) = super::subcommand(argv, ctx.proto) else {
        return local_only(ctx, |w| super::subcommand_error(argv, w));
    };
    match sub {
        "latency|histogram" => {
            let mut s = String::new();
            for (i, c) in ctx.shard.stats.cmds.iter().enumerate() {
                if let Some(h) = &c.latency
                    && !h.is_empty()
                {
                    let _ = writeln!(s, "{} {}", slot_name(i), encode_hist(h));
                }
            }
            Partial::Text(s)
        }
        "latency|help" => local_only(ctx, |w| help_reply(w, "LATENCY", HELP)),
        "latency|latest" => Partial::Text(ctx.shard.stats.latency.encode(None)),
        "latency|history" | "latency|graph" => match Event::from_name(argv[2]) {
            Some(e) => Partial::Text(ctx.shard.stats.latency.encode(Some(e))),
            None => Partial::Text(String::new()),
        },
        "latency|reset" => {
            let dropped = ctx.shard.stats.latency.reset(&argv[2..]);
            let mut s = String::new();
            for e in dropped {
                s.push_str(e.name());
                s.push('\n');
            }
            Partial::Text(s)
        }
        "latency|doctor" => {
            let mut s = ctx.shard.stats.latency.encode(None);
            if ctx.client.is_some() {
                // The client's shard adds what the report needs besides the events.
                let cfg = &ctx.shard.cfg;
                let _ = writeln!(s, "{DOCTOR_ENV_MARK}{}", cfg.latency_monitor_threshold_ms);
                let _ = writeln!(s, "{DOCTOR_ENV_MARK}{}", cfg.slowlog_log_slower_than_us);
                let _ = writeln!(s, "{DOCTOR_ENV_MARK}{}", cfg.hz);
                let _ = writeln!(s, "{DOCTOR_ENV_MARK}{}", crate::alloc::used_memory());
                let _ = writeln!(s, "{DOCTOR_ENV_MARK}{}", doctor::anon_huge_pages_bytes());
            }
            Partial::Text(s)
        }
        _ => local_only(ctx, |w| super::subcommand_error(argv, w)),
    }
}

/// Starts the lines of DOCTOR's environment (threshold, slow log, hz, used memory, huge
/// pages, in this order); no event name starts with it.
const DOCTOR_ENV_MARK: &str = "@";

fn texts(g: &Gather) -> impl Iterator<Item = &str> {
    g.parts.iter().flatten().filter_map(|p| match p {
        Partial::Text(t) => Some(t.as_str()),
        _ => None,
    })
}

fn doctor_env(g: &Gather, now_s: i64) -> doctor::Env {
    let mut v: Vec<i64> = Vec::new();
    for t in texts(g) {
        for line in t.lines() {
            if let Some(n) = line.strip_prefix(DOCTOR_ENV_MARK) {
                v.push(n.parse().unwrap_or(0));
            }
        }
    }
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    doctor::Env {
        threshold_ms: at(0).unsigned_abs(),
        slowlog_log_slower_than_us: at(1),
        hz: u32::try_from(at(2)).unwrap_or(0),
        used_memory_bytes: at(3).unsigned_abs(),
        anon_huge_pages_bytes: at(4).unsigned_abs(),
        now_s,
    }
}

pub fn latency_merge(g: &mut Gather, w: &mut ReplyWriter) {
    if super::write_encoded(g, w) {
        return;
    }
    let now_s = percore_net::reactor::unix_ms() / 1000;
    let sub = g.argv.get(1).map(|a| a.to_ascii_lowercase());
    if sub.as_deref() == Some(b"histogram") {
        histogram_merge(g, w);
        return;
    }
    if sub.as_deref() == Some(b"reset") {
        let mut names: Vec<&str> = texts(g).flat_map(str::lines).collect();
        names.sort_unstable();
        names.dedup();
        w.int(names.len() as i64);
        return;
    }
    let merged = merge(texts(g));
    let asked = || g.argv.get(2).and_then(|name| Event::from_name(name));
    match sub.as_deref() {
        Some(b"latest") => {
            w.array(merged.events().count());
            for (event, series) in merged.events() {
                let last = series.latest();
                w.array(4);
                w.bulk(event.name().as_bytes());
                w.int(last.time_s);
                w.int(last.ms as i64);
                w.int(series.max_ms as i64);
            }
        }
        Some(b"history") => {
            let samples: Vec<_> = asked()
                .and_then(|event| merged.series(event))
                .map(|series| series.samples().collect())
                .unwrap_or_default();
            w.array(samples.len());
            for sample in samples {
                w.array(2);
                w.int(sample.time_s);
                w.int(sample.ms as i64);
            }
        }
        Some(b"graph") => match asked().and_then(|ev| merged.series(ev).map(|se| (ev, se))) {
            Some((event, series)) => {
                let text = sparkline::graph(event.name(), series, now_s);
                w.verbatim("txt", text.as_bytes());
            }
            None => w.error(&format!(
                "ERR No samples available for event '{}'",
                String::from_utf8_lossy(&g.argv[2])
            )),
        },
        _ => {
            let env = doctor_env(g, now_s);
            w.verbatim("txt", doctor::report(&merged, &env).as_bytes());
        }
    }
}

/// LATENCY HISTOGRAM's merge: every shard's histograms of the named commands summed.
/// As Redis's `latencySpecificCommandsFillCDF`: a name is a command or `cmd|sub`; a
/// container command brings its subcommands; unknown names are skipped, repeated ones
/// answered again.
fn histogram_merge(g: &Gather, w: &mut ReplyWriter) {
    let mut hists: Vec<Option<hdrhistogram::Histogram<u64>>> =
        (0..slot_count()).map(|_| None).collect();
    for p in g.parts.iter().flatten() {
        let Partial::Text(t) = p else { continue };
        for line in t.lines() {
            let Some((name, data)) = line.split_once(' ') else {
                continue;
            };
            if let Some(i) = slot_by_name(name.as_bytes()) {
                decode_hist_into(data, hists[i].get_or_insert_with(new_hist));
            }
        }
    }
    let mut order: Vec<usize> = Vec::new();
    let with_subs = |i: usize, order: &mut Vec<usize>| {
        order.push(i);
        if let Some(c) = COMMANDS.get(i) {
            order.extend(sub_slots(c));
        }
    };
    if g.argv.len() > 2 {
        for a in &g.argv[2..] {
            if let Some(i) = slot_by_name(a) {
                with_subs(i, &mut order);
            }
        }
    } else {
        for i in 0..COMMANDS.len() {
            with_subs(i, &mut order);
        }
    }
    order.retain(|&i| hists[i].is_some());
    w.map(order.len());
    for i in order {
        let h = hists[i].as_ref().expect("retained");
        w.bulk(slot_name(i).as_bytes());
        write_cdf(h, w);
    }
}

/// `{calls, histogram_usec: {bucket_us: cumulative count}}` as Redis's `fillCommandCDF`.
fn write_cdf(h: &hdrhistogram::Histogram<u64>, w: &mut ReplyWriter) {
    w.map(2);
    w.bulk(b"calls");
    w.int(h.len() as i64);
    w.bulk(b"histogram_usec");
    let mut buckets = Vec::new();
    let mut cumulative = 0u64;
    let mut previous = 0u64;
    for v in h.iter_log(HISTOGRAM_FIRST_BUCKET_NS, HISTOGRAM_LOG_BASE) {
        cumulative += v.count_since_last_iteration();
        let micros = h.highest_equivalent(v.value_iterated_to()) / 1000;
        if cumulative > previous {
            buckets.push((micros, cumulative));
        }
        previous = cumulative;
    }
    w.map(buckets.len());
    for (us, n) in buckets {
        w.int(us as i64);
        w.int(n as i64);
    }
}
