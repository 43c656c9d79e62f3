//! LATENCY HISTOGRAM (per-command latency distributions merged across shards) and HELP.
//! The latency monitor (LATEST, HISTORY, RESET, DOCTOR, GRAPH) is not implemented yet:
//! those reply as a server with no recorded events does.

use super::super::{COMMANDS, Ctx, Gather, Partial, lookup};
use super::info::{decode_hist_into, encode_hist, new_hist};
use super::{help_reply, local_only};
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
            for (i, c) in COMMANDS.iter().enumerate() {
                if let Some(h) = &ctx.shard.stats.cmds[i].latency
                    && !h.is_empty()
                {
                    let _ = writeln!(s, "{} {}", c.name, encode_hist(h));
                }
            }
            Partial::Text(s)
        }
        "latency|help" => local_only(ctx, |w| help_reply(w, "LATENCY", HELP)),
        "latency|latest" | "latency|history" => local_only(ctx, |w| w.array(0)),
        "latency|reset" => local_only(ctx, |w| w.int(0)),
        "latency|doctor" => local_only(ctx, |w| {
            w.verbatim(
                "txt",
                b"Dave, the latency monitor is not implemented yet in percore, so there is nothing to analyze.\n",
            );
        }),
        "latency|graph" => local_only(ctx, |w| {
            w.error("ERR The latency monitor is not implemented yet in percore");
        }),
        _ => local_only(ctx, |w| super::subcommand_error(argv, w)),
    }
}

pub fn latency_merge(g: &mut Gather, w: &mut ReplyWriter) {
    if super::write_encoded(g, w) {
        return;
    }
    let mut hists: Vec<Option<hdrhistogram::Histogram<u64>>> =
        COMMANDS.iter().map(|_| None).collect();
    for p in g.parts.iter().flatten() {
        let Partial::Text(t) = p else { continue };
        for line in t.lines() {
            let Some((name, data)) = line.split_once(' ') else {
                continue;
            };
            if let Some(c) = lookup(name.as_bytes()) {
                decode_hist_into(data, hists[c.index()].get_or_insert_with(new_hist));
            }
        }
    }
    // Named commands in argument order (each once), else every command with data.
    let mut order: Vec<usize> = Vec::new();
    if g.argv.len() > 2 {
        for a in &g.argv[2..] {
            if let Some(c) = lookup(a)
                && !order.contains(&c.index())
            {
                order.push(c.index());
            }
        }
    } else {
        order = (0..COMMANDS.len()).collect();
    }
    order.retain(|&i| hists[i].is_some());
    w.map(order.len());
    for i in order {
        let h = hists[i].as_ref().expect("retained");
        w.bulk(COMMANDS[i].name.as_bytes());
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
