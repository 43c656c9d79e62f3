//! MEMORY (USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP) and PFSELFTEST.
//!
//! MEMORY runs on every shard (`Exec::All`): USAGE is answered by the key's owner (the
//! others pass), STATS sums each shard's databases. Sizes are percore's own
//! (`percore_engine::memory`): the allocations as percore holds them, not estimates of
//! Redis's structures.

#![allow(
    clippy::many_single_char_names,
    reason = "g = the gather, s = the sums, w = the reply, as the other merges"
)]

use super::{Ctx, Gather, Partial, eq_ic, errors, parse_i64};
use percore_engine::hyperloglog as hll;
use percore_net::resp::ReplyWriter;
use std::fmt::Write as _;

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// Below this much memory MEMORY DOCTOR declines to judge (Redis: 5 MB).
const DOCTOR_MIN_USED_BYTES: u64 = 5 * 1024 * 1024;
/// RSS over used memory above which DOCTOR reports fragmentation (Redis: 1.4).
const DOCTOR_FRAGMENTATION_RATIO: f64 = 1.4;
/// Fragmentation only counts past this many extra bytes (Redis: 10 MB).
const DOCTOR_FRAGMENTATION_MIN_BYTES: u64 = 10 * 1024 * 1024;

fn encoded(ctx: &Ctx, f: impl FnOnce(&mut ReplyWriter)) -> Partial {
    super::keyspace::reply(ctx, f)
}

/// One shard's part of MEMORY.
pub fn memory_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sub = argv[1];
    if eq_ic(sub, "usage") {
        let mut j = 3;
        while j < argv.len() {
            if eq_ic(argv[j], "samples") && j + 1 < argv.len() {
                match parse_i64(argv[j + 1]) {
                    None => return encoded(ctx, |w| w.error(errors::NOT_INTEGER)),
                    Some(n) if n < 0 => return encoded(ctx, |w| w.error(errors::SYNTAX)),
                    Some(_) => {}
                }
                j += 2;
            } else {
                return encoded(ctx, |w| w.error(errors::SYNTAX));
            }
        }
        let key = argv[2];
        if ctx.shard.owner(key) != ctx.shard.id {
            return Partial::Unit;
        }
        // `dbFind`: an expired key not yet deleted still counts, as in Redis. Every
        // member is counted (SAMPLES is accepted; percore's sizes are exact).
        let size = ctx
            .shard
            .keyspace
            .db(ctx.db)
            .table()
            .get(key)
            .map(|e| percore_engine::memory::key_bytes(key, e));
        return match size {
            Some(n) => Partial::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            None => encoded(ctx, |w: &mut ReplyWriter<'_>| w.null()),
        };
    }
    if eq_ic(sub, "stats") {
        // "db keys expires main_overhead expires_overhead" per non-empty database.
        let mut text = String::new();
        let ks = &ctx.shard.keyspace;
        for i in 0..ks.databases() {
            let db = ks.db(i);
            if db.is_empty() {
                continue;
            }
            let _ = writeln!(
                text,
                "{i} {} {} {} {}",
                db.len(),
                db.expires_len(),
                db.table().structure_bytes(),
                db.expires_structure_bytes()
            );
        }
        // This shard's clients' memory (`client_mem`), as INFO's `mem_clients_normal`.
        crate::client_mem::refresh(ctx.shard);
        let clients = &ctx.shard.shared.client_mem.shards[ctx.shard.id];
        let _ = writeln!(
            text,
            "clients {}",
            clients.total.load(std::sync::atomic::Ordering::Relaxed)
        );
        return Partial::Text(text);
    }
    Partial::Unit
}

/// Summed STATS parts.
#[derive(Default)]
struct Stats {
    /// Per database: keys, expires, main overhead, expires overhead.
    dbs: std::collections::BTreeMap<usize, [u64; 4]>,
    clients: u64,
}

fn sum_stats(g: &Gather) -> Stats {
    let mut s = Stats::default();
    for p in g.parts.iter().flatten() {
        let Partial::Text(t) = p else { continue };
        for line in t.lines() {
            let mut f = line.split(' ');
            let head = f.next().unwrap_or("");
            let nums: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
            if head == "clients" {
                s.clients += nums.first().copied().unwrap_or(0);
            } else if let (Ok(db), [a, b, c, d]) = (head.parse::<usize>(), nums.as_slice()) {
                let e = s.dbs.entry(db).or_default();
                for (x, y) in e.iter_mut().zip([a, b, c, d]) {
                    *x += y;
                }
            }
        }
    }
    s
}

#[allow(
    clippy::cast_precision_loss,
    reason = "ratios and percentages of byte counts"
)]
fn write_stats(g: &Gather, w: &mut ReplyWriter) {
    let s = sum_stats(g);
    let used = crate::alloc::used_memory() as u64;
    let rss = super::server::info::rss_bytes();
    let overhead_dbs: u64 = s.dbs.values().map(|d| d[2] + d[3]).sum();
    let overhead = s.clients + overhead_dbs;
    let keys: u64 = s.dbs.values().map(|d| d[0]).sum();
    let dataset = used.saturating_sub(overhead);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    w.map(27 + s.dbs.len());
    let int = |w: &mut ReplyWriter, k: &str, v: u64| {
        w.bulk(k.as_bytes());
        w.int(i64::try_from(v).unwrap_or(i64::MAX));
    };
    // No peak or startup figure is kept apart: they report the current allocation.
    int(w, "peak.allocated", used);
    int(w, "total.allocated", used);
    int(w, "startup.allocated", 0);
    for k in ["replication.backlog", "clients.slaves"] {
        int(w, k, 0);
    }
    int(w, "clients.normal", s.clients);
    for k in [
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ] {
        int(w, k, 0);
    }
    for (db, d) in &s.dbs {
        w.bulk(format!("db.{db}").as_bytes());
        w.map(3);
        int(w, "overhead.hashtable.main", d[2]);
        int(w, "overhead.hashtable.expires", d[3]);
        int(w, "overhead.hashtable.slot-to-keys", 0);
    }
    // The rest: integers and doubles in Redis's order.
    let frag_bytes = rss.saturating_sub(used);
    let tail: [(&str, Num); 17] = [
        ("overhead.total", Num::Int(overhead)),
        ("keys.count", Num::Int(keys)),
        (
            "keys.bytes-per-key",
            Num::Int(used.checked_div(keys).unwrap_or(0)),
        ),
        ("dataset.bytes", Num::Int(dataset)),
        ("dataset.percentage", Num::Double(pct(dataset, used))),
        ("peak.percentage", Num::Double(100.0)),
        ("allocator.allocated", Num::Int(used)),
        ("allocator.active", Num::Int(used)),
        ("allocator.resident", Num::Int(rss)),
        ("allocator-fragmentation.ratio", Num::Double(1.0)),
        ("allocator-fragmentation.bytes", Num::Int(0)),
        ("allocator-rss.ratio", Num::Double(ratio(rss, used))),
        ("allocator-rss.bytes", Num::Int(frag_bytes)),
        ("rss-overhead.ratio", Num::Double(1.0)),
        ("rss-overhead.bytes", Num::Int(0)),
        ("fragmentation", Num::Double(ratio(rss, used))),
        ("fragmentation.bytes", Num::Int(frag_bytes)),
    ];
    for (name, v) in tail {
        match v {
            Num::Int(n) => int(w, name, n),
            Num::Double(d) => {
                w.bulk(name.as_bytes());
                w.double(d);
            }
        }
    }
}

/// A MEMORY STATS figure.
enum Num {
    Int(u64),
    Double(f64),
}

#[allow(clippy::cast_precision_loss, reason = "a ratio of byte counts")]
fn doctor_text() -> String {
    let used = crate::alloc::used_memory() as u64;
    let rss = super::server::info::rss_bytes();
    if used < DOCTOR_MIN_USED_BYTES {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_owned();
    }
    let frag = rss as f64 / used as f64;
    if frag > DOCTOR_FRAGMENTATION_RATIO
        && rss.saturating_sub(used) > DOCTOR_FRAGMENTATION_MIN_BYTES
    {
        return format!(
            "Sam, I detected a few issues in this percore instance memory implants:\n\n \
             * High total RSS: This instance has a memory fragmentation and RSS overhead greater than {DOCTOR_FRAGMENTATION_RATIO} ({frag:.2}). \
             The allocator keeps pages that freed keys left; restarting from a snapshot compacts them.\n\n\
             I'm here to keep you safe, Sam. I want to help you.\n"
        );
    }
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_owned()
}

pub fn memory_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let sub = g.argv.get(1).cloned().unwrap_or_default();
    if eq_ic(&sub, "usage") {
        for p in &mut g.parts {
            match p.take() {
                Some(Partial::Int(n)) => return w.int(n),
                Some(Partial::Encoded(r)) => return w.raw(&r),
                _ => {}
            }
        }
        return w.null();
    }
    if eq_ic(&sub, "stats") {
        return write_stats(g, w);
    }
    if eq_ic(&sub, "doctor") {
        return w.verbatim("txt", doctor_text().as_bytes());
    }
    if eq_ic(&sub, "malloc-stats") {
        return w.bulk(b"Stats not supported for the current allocator");
    }
    if eq_ic(&sub, "purge") {
        return w.ok();
    }
    // HELP (the table checked the subcommand and its arity).
    w.array(HELP.len());
    for line in HELP {
        w.simple(line);
    }
}

/// PFSELFTEST: Redis's HyperLogLog self-test: register access on a dense
/// representation, then the estimate of sparse and dense HyperLogLogs against the true
/// cardinality at 10, 100, ... within Redis's bounds. Redis counts to 10 million; this
/// stops at one million so a shard is busy for well under a second.
pub fn pfselftest(_ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    const LAST_CHECKPOINT: u64 = 1_000_000;
    let relerr = 1.04 / (hll::HLL_REGISTERS as f64).sqrt();
    let mut sparse = hll::new_sparse();
    let mut dense = hll::new_sparse();
    if hll::sparse_to_dense(&mut dense).is_err() {
        return w.error("TESTFAILED Invalid dense representation");
    }
    let salt =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
    let mut checkpoint = 10u64;
    for j in 1..=LAST_CHECKPOINT {
        let ele = (j ^ salt).to_le_bytes();
        let a = hll::add(&mut sparse, &ele, hll::DEFAULT_SPARSE_MAX_BYTES);
        let b = hll::add(&mut dense, &ele, hll::DEFAULT_SPARSE_MAX_BYTES);
        if a.is_err() || b.is_err() {
            return w.error("TESTFAILED HLL add failed");
        }
        if j == checkpoint {
            let (Ok(cs), Ok(cd)) = (hll::count(&sparse), hll::count(&dense)) else {
                return w.error("TESTFAILED HLL count failed");
            };
            if cs != cd {
                return w.error(&format!(
                    "TESTFAILED sparse and dense representations disagree: {cs} {cd}"
                ));
            }
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "Redis's bound"
            )]
            let maxerr = if j == 10 {
                1
            } else {
                (relerr * 6.0 * checkpoint as f64).ceil() as u64
            };
            let abserr = cd.abs_diff(checkpoint);
            if abserr > maxerr {
                return w.error(&format!(
                    "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
                ));
            }
            checkpoint *= 10;
        }
    }
    // Register access: the dense registers read back what `count` saw.
    let regs = hll::dense_registers(&dense);
    if regs.len() != hll::HLL_REGISTERS || regs.iter().any(|&r| r > hll::HLL_REGISTER_MAX) {
        return w.error("TESTFAILED Register error");
    }
    w.ok();
}
