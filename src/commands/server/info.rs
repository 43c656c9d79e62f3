//! INFO: every shard reports its counters as summable lines, the client's own shard adds
//! the server-wide sections, and the merge renders Redis's sections in Redis's order.

use super::super::{Ctx, Gather, Partial};
use crate::stats::{LATENCY_HIST_MAX_NS, LATENCY_HIST_MIN_NS, LATENCY_HIST_SIGFIGS};
use hdrhistogram::Histogram;
use percore_net::resp::ReplyWriter;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Section names in the order Redis prints them, and whether `INFO`/`INFO default` has them.
const SECTIONS: [(&str, &str, bool); 14] = [
    ("server", "Server", true),
    ("clients", "Clients", true),
    ("memory", "Memory", true),
    ("persistence", "Persistence", true),
    ("stats", "Stats", true),
    ("replication", "Replication", true),
    ("cpu", "CPU", true),
    ("modules", "Modules", true),
    ("commandstats", "Commandstats", false),
    ("errorstats", "Errorstats", true),
    ("latencystats", "Latencystats", false),
    ("cluster", "Cluster", true),
    ("keyspace", "Keyspace", true),
    // percore's own: per-shard loop statistics (see `crate::metrics::info_line`).
    ("percore", "Percore", true),
];

/// Which sections `argv` (INFO's arguments) asks for, as indices into [`SECTIONS`].
fn wanted(argv: &[Vec<u8>]) -> [bool; SECTIONS.len()] {
    let mut want = [false; SECTIONS.len()];
    if argv.len() <= 1 {
        for (i, s) in SECTIONS.iter().enumerate() {
            want[i] = s.2;
        }
        return want;
    }
    for a in &argv[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "all" | "everything" => want = [true; SECTIONS.len()],
            "default" => {
                for (i, s) in SECTIONS.iter().enumerate() {
                    want[i] |= s.2;
                }
            }
            name => {
                if let Some(i) = SECTIONS.iter().position(|s| s.0 == name) {
                    want[i] = true;
                }
            }
        }
    }
    want
}

fn section_wanted(argv: &[Vec<u8>], name: &str) -> bool {
    let i = SECTIONS
        .iter()
        .position(|s| s.0 == name)
        .expect("known section");
    wanted(argv)[i]
}

/// One shard's part. Lines: `k <name> <n>` (summed), `cmd <name> <calls> <usec> <rejected>
/// <failed>`, `err <code> <n>`, `db <i> <keys> <expires> <avg_ttl_ms>`, `lat <name>
/// <value>:<count>,...` (histogram buckets, summed), and from the client's shard only
/// `s <section> <line>` for the server-wide sections.
pub fn info_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let owned: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let want = |name| section_wanted(&owned, name);
    // Clients' memory is counted when asked for without `maxmemory-clients`.
    crate::client_mem::refresh(ctx.shard);
    let sh = &*ctx.shard;
    let st = &sh.stats;
    let mut s = String::new();
    // This shard's clients' memory (summed) and recent buffer peaks (the largest wins),
    // counted just now: they replace the server-wide lines the client's shard wrote.
    let mem = &sh.shared.client_mem.shards[sh.id];
    let _ = writeln!(
        s,
        "k mem_clients_normal {}\nmax client_recent_max_input_buffer {}\n\
         max client_recent_max_output_buffer {}",
        mem.total.load(Ordering::Relaxed),
        mem.peak_in.load(Ordering::Relaxed),
        mem.peak_out.load(Ordering::Relaxed)
    );
    let counters = [
        ("total_commands_processed", st.commands_processed),
        ("keyspace_hits", st.keyspace_hits),
        ("keyspace_misses", st.keyspace_misses),
        (
            "expired_keys",
            st.expired_keys_active + sh.keyspace.total_expired_keys(),
        ),
        ("evicted_keys", sh.evict.evicted_keys),
        ("total_error_replies", st.total_error_replies),
        ("instantaneous_ops_per_sec", st.instantaneous_ops_per_sec()),
    ];
    // Server-wide tracking totals: shard 0 reports them, the merge sums.
    let (tk, ti, tp) = if sh.id == 0 {
        sh.shared.tracking.totals()
    } else {
        (0, 0, 0)
    };
    let counters = counters
        .into_iter()
        .chain([
            ("tracking_total_keys", tk as u64),
            ("tracking_total_items", ti as u64),
            ("tracking_total_prefixes", tp as u64),
        ])
        .chain(crate::commands::connection::clients_info::counters(
            sh,
            ctx.client.as_deref(),
        ));
    for (k, v) in counters {
        let _ = writeln!(s, "k {k} {v}");
    }
    // A channel or pattern with subscribers on several shards counts once: with one shard
    // the count is exact; with more, each shard lists its names (hex, one `name` line each)
    // and the merge counts distinct ones.
    for (k, map) in [
        ("pubsub_channels", &sh.pubsub.channels),
        ("pubsub_patterns", &sh.pubsub.patterns),
        ("pubsubshard_channels", &sh.pubsub.shard_channels),
    ] {
        if sh.shards == 1 {
            let _ = writeln!(s, "k {k} {}", map.len());
        } else {
            for name in map.keys() {
                let _ = write!(s, "name {k} ");
                for b in name {
                    let _ = write!(s, "{b:02x}");
                }
                s.push('\n');
            }
        }
    }
    for (i, cs) in st.cmds.iter().enumerate() {
        let name = crate::stats::slot_name(i);
        if cs.calls + cs.rejected_calls + cs.failed_calls > 0 {
            let _ = writeln!(
                s,
                "cmd {name} {} {} {} {}",
                cs.calls, cs.usec, cs.rejected_calls, cs.failed_calls
            );
        }
        if want("latencystats")
            && let Some(h) = &cs.latency
            && !h.is_empty()
        {
            let _ = writeln!(s, "lat {name} {}", encode_hist(h));
        }
    }
    for (code, n) in &st.errors {
        let _ = writeln!(s, "err {code} {n}");
    }
    for i in 0..sh.keyspace.databases() {
        let ki = sh.keyspace.db(i).keyspace_info();
        if ki.keys > 0 {
            let _ = writeln!(s, "db {i} {} {} {}", ki.keys, ki.expires, ki.avg_ttl_ms);
        }
    }
    if want("percore") {
        let line = crate::metrics::info_line(sh, ctx.client.is_some());
        let _ = writeln!(s, "pc {line}");
    }
    if ctx.client.is_some() {
        if want("replication") {
            crate::replication::primary::settle(ctx.shard);
        }
        global_sections(ctx, &owned, &mut s);
    }
    Partial::Text(s)
}

/// A histogram's recorded values as `value:count,...`.
pub fn encode_hist(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    for v in h.iter_recorded() {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(
            out,
            "{}:{}",
            v.value_iterated_to(),
            v.count_since_last_iteration()
        );
    }
    out
}

/// Adds `value:count,...` into `h`.
pub fn decode_hist_into(text: &str, h: &mut Histogram<u64>) {
    for pair in text.split(',') {
        if let Some((v, c)) = pair.split_once(':')
            && let (Ok(v), Ok(c)) = (v.parse::<u64>(), c.parse::<u64>())
        {
            h.saturating_record_n(v, c);
        }
    }
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(
        LATENCY_HIST_MIN_NS,
        LATENCY_HIST_MAX_NS,
        LATENCY_HIST_SIGFIGS,
    )
    .expect("valid histogram bounds")
}

/// `1.39M` as Redis's `bytesToHuman`.
pub fn bytes_to_human(n: u64) -> String {
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if n < 1024 * 1024 {
        format!("{:.2}K", d / 1024.0)
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.2}M", d / 1024.0 / 1024.0)
    } else if n < 1024 * 1024 * 1024 * 1024 {
        format!("{:.2}G", d / 1024.0 / 1024.0 / 1024.0)
    } else {
        format!("{:.2}T", d / 1024.0 / 1024.0 / 1024.0 / 1024.0)
    }
}

pub(crate) fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    // SAFETY-free: sysconf is a plain libc query.
    let page = page_size();
    pages * page
}

#[expect(unsafe_code, reason = "sysconf and getrusage are libc calls")]
fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer name and has no memory effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// (system, user) CPU seconds of the process.
#[expect(unsafe_code, reason = "getrusage is a libc call")]
fn cpu_times() -> (f64, f64) {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` points to writable memory the size of `rusage`; RUSAGE_SELF is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    // SAFETY: getrusage succeeded, so it filled the struct (and zeroed is valid anyway).
    let ru = unsafe { ru.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_stime), secs(ru.ru_utime))
}

fn global_sections(ctx: &Ctx, argv: &[Vec<u8>], s: &mut String) {
    let sh = &*ctx.shard;
    let shared = &sh.shared;
    let cfg = &sh.cfg;
    let want = |name| section_wanted(argv, name);
    let mut line = |sec: &str, l: String| {
        let _ = writeln!(s, "s {sec} {l}");
    };
    let now_ms = percore_net::reactor::unix_ms();
    if want("server") {
        let up = shared.started.elapsed().as_secs();
        for l in [
            format!("redis_version:{}", crate::server::REDIS_COMPAT_VERSION),
            format!("percore_version:{}", crate::server::VERSION),
            "redis_git_sha1:00000000".into(),
            "redis_git_dirty:0".into(),
            format!(
                "redis_mode:{}",
                if cfg.cluster_enabled {
                    "cluster"
                } else {
                    "standalone"
                }
            ),
            format!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH),
            format!("arch_bits:{}", usize::BITS),
            format!("multiplexing_api:{}", shared.io_backend()),
            format!("process_id:{}", std::process::id()),
            "process_supervised:no".into(),
            format!("run_id:{}", shared.run_id),
            format!("tcp_port:{}", shared.tcp_port()),
            format!("server_time_usec:{}", now_ms * 1000),
            format!("uptime_in_seconds:{up}"),
            format!("uptime_in_days:{}", up / 86_400),
            format!("hz:{}", cfg.hz),
            format!("configured_hz:{}", cfg.hz),
            format!("executable:{}", shared.executable),
            format!(
                "config_file:{}",
                shared
                    .config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            "io_threads_active:0".into(),
            format!("shards:{}", shared.shards),
            format!("io_backend:{}", shared.io_backend()),
            format!("io_uring_features:{}", shared.io_uring_features),
        ] {
            line("server", l);
        }
    }
    if want("clients") {
        let st = &shared.stats;
        line(
            "clients",
            format!(
                "connected_clients:{}",
                st.connected_clients.load(Ordering::Relaxed)
            ),
        );
        line("clients", "cluster_connections:0".into());
        line("clients", format!("maxclients:{}", cfg.maxclients));
        let (peak_in, peak_out) = shared.client_mem.recent_peaks();
        line(
            "clients",
            format!("client_recent_max_input_buffer:{peak_in}"),
        );
        line(
            "clients",
            format!("client_recent_max_output_buffer:{peak_out}"),
        );
        line(
            "clients",
            format!(
                "blocked_clients:{}",
                st.blocked_clients.load(Ordering::Relaxed)
            ),
        );
        line(
            "clients",
            format!(
                "tracking_clients:{}",
                shared.tracking.clients.load(Ordering::Relaxed)
            ),
        );
        line(
            "clients",
            format!(
                "total_blocking_keys:{}",
                st.blocking_keys.load(Ordering::Relaxed)
            ),
        );
        for l in crate::pause::info_lines(&shared.pause, &shared.attention, now_ms) {
            line("clients", l);
        }
    }
    if want("memory") {
        let used = crate::alloc::used_memory() as u64;
        let rss = rss_bytes();
        for l in [
            format!("used_memory:{used}"),
            format!("used_memory_human:{}", bytes_to_human(used)),
            format!("used_memory_rss:{rss}"),
            format!("used_memory_rss_human:{}", bytes_to_human(rss)),
            format!("maxmemory:{}", cfg.maxmemory_bytes),
            format!("maxmemory_human:{}", bytes_to_human(cfg.maxmemory_bytes)),
            format!("maxmemory_policy:{}", cfg.maxmemory_policy.name()),
            format!(
                "mem_fragmentation_ratio:{:.2}",
                if used == 0 {
                    0.0
                } else {
                    rss as f64 / used as f64
                }
            ),
            // Redis leaves replicas' output buffers and the AOF buffer out of the figure
            // eviction compares; percore's stream of effects is counted with the rest.
            "mem_not_counted_for_evict:0".into(),
            // Replicas' links leave the shards: their buffers are not counted apart.
            "mem_clients_slaves:0".into(),
            format!("mem_clients_normal:{}", shared.client_mem.total()),
            "mem_allocator:libc".into(),
            format!(
                "lazyfree_pending_objects:{}",
                crate::snapshot::LAZYFREE_PENDING_OBJECTS.load(Ordering::Relaxed)
            ),
            format!(
                "lazyfreed_objects:{}",
                crate::snapshot::LAZYFREED_OBJECTS.load(Ordering::Relaxed)
            ),
        ] {
            line("memory", l);
        }
    }
    if want("persistence") {
        let st = shared.persist.lock().expect("persist lock").clone();
        let current = st
            .running
            .as_ref()
            .map_or(-1, |r| r.started.elapsed().as_secs() as i64);
        let method = st
            .running
            .as_ref()
            .map(|r| r.method)
            .or(st.last_method)
            .unwrap_or(cfg.default_bgsave_method);
        // All 0 with no save in flight, as Redis's.
        let progress = st
            .running
            .as_ref()
            .map(crate::snapshot::Running::progress)
            .unwrap_or_default();
        for l in [
            "loading:0".to_string(),
            "async_loading:0".into(),
            format!("current_cow_peak:{}", progress.cow_peak_bytes),
            format!("current_cow_size:{}", progress.cow_bytes),
            format!("current_cow_size_age:{}", progress.cow_age_s),
            format!("current_fork_perc:{:.2}", progress.percent()),
            format!("current_save_keys_processed:{}", progress.keys_processed),
            format!("current_save_keys_total:{}", progress.keys_total),
            format!(
                "rdb_changes_since_last_save:{}",
                crate::snapshot::changes_since_save(shared)
            ),
            format!("rdb_bgsave_in_progress:{}", u8::from(st.running.is_some())),
            format!(
                "rdb_last_save_time:{}",
                shared.lastsave_s.load(Ordering::Relaxed)
            ),
            format!(
                "rdb_last_bgsave_status:{}",
                if st.last_bgsave_ok { "ok" } else { "err" }
            ),
            format!("rdb_last_bgsave_time_sec:{}", st.last_bgsave_time_s),
            format!("rdb_current_bgsave_time_sec:{current}"),
            format!("rdb_saves:{}", st.saves),
            format!("rdb_last_cow_size:{}", st.last_cow_size),
            format!("rdb_last_load_keys_expired:{}", st.last_load_keys_expired),
            format!("rdb_last_load_keys_loaded:{}", st.last_load_keys_loaded),
            format!("rdb_bgsave_method:{}", method.name()),
            format!("rdb_last_bgsave_bytes:{}", st.last_bytes),
            format!(
                "rdb_last_bgsave_write_bytes_per_sec:{}",
                st.last_write_bytes_per_s
            ),
            format!(
                "rdb_last_bgsave_peak_extra_memory:{}",
                st.last_peak_extra_bytes
            ),
            format!("rdb_last_barrier_usec:{}", st.last_barrier_us),
            format!(
                "rdb_last_forkless_copies_peak:{}",
                st.last_forkless_copies_peak
            ),
            format!(
                "rdb_last_forkless_throttle_usec:{}",
                st.last_forkless_throttle_us
            ),
            format!(
                "rdb_last_forkless_frozen_values:{}",
                st.last_forkless_frozen_values
            ),
            format!(
                "rdb_last_forkless_frozen_peak_bytes:{}",
                st.last_forkless_frozen_peak_bytes
            ),
        ] {
            line("persistence", l);
        }
        let mut aof = Vec::new();
        crate::aof::info_lines(shared, &mut aof);
        for l in aof {
            line("persistence", l);
        }
    }
    if want("stats") {
        let st = &shared.stats;
        line(
            "stats",
            format!(
                "total_connections_received:{}",
                st.total_connections_received.load(Ordering::Relaxed)
            ),
        );
        line(
            "stats",
            format!(
                "rejected_connections:{}",
                st.rejected_connections.load(Ordering::Relaxed)
            ),
        );
        let r = &shared.repl;
        for (name, n) in [
            ("sync_full", &r.sync_full),
            ("sync_partial_ok", &r.sync_partial_ok),
            ("sync_partial_err", &r.sync_partial_err),
        ] {
            line("stats", format!("{name}:{}", n.load(Ordering::Relaxed)));
        }
        let n = shared.migrate.cached_sockets();
        line("stats", format!("migrate_cached_sockets:{n}"));
    }
    if want("replication") {
        for l in crate::replication::info_lines(shared, cfg, now_ms) {
            line("replication", l);
        }
    }
    if want("cpu") {
        let (sys, user) = cpu_times();
        line("cpu", format!("used_cpu_sys:{sys:.6}"));
        line("cpu", format!("used_cpu_user:{user:.6}"));
        line("cpu", "used_cpu_sys_children:0.000000".into());
        line("cpu", "used_cpu_user_children:0.000000".into());
    }
    if want("cluster") {
        line(
            "cluster",
            format!("cluster_enabled:{}", u8::from(cfg.cluster_enabled)),
        );
    }
    let pct = cfg
        .latency_tracking_info_percentiles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    line("latencypct", pct);
}

/// Merged per-shard figures.
#[derive(Default)]
struct Merged {
    counters: BTreeMap<String, u64>,
    /// name → (calls, usec, rejected, failed)
    cmds: BTreeMap<String, [u64; 4]>,
    errors: BTreeMap<String, u64>,
    /// db → (keys, expires, avg ttl weighted sum)
    dbs: BTreeMap<usize, (u64, u64, i128)>,
    lat: BTreeMap<String, Histogram<u64>>,
    global: BTreeMap<String, Vec<String>>,
    /// `(counter, hex name)` already counted by a `name` line.
    names: std::collections::HashSet<(String, String)>,
    /// INFO percore: shard number → its line.
    shards: BTreeMap<usize, String>,
    /// Figures whose largest value over the shards is shown (`max` lines).
    maxes: BTreeMap<String, u64>,
}

fn merge_parts(parts: &[Option<Partial>]) -> Merged {
    let mut m = Merged::default();
    for p in parts.iter().flatten() {
        let Partial::Text(t) = p else { continue };
        for line in t.lines() {
            let mut it = line.splitn(3, ' ');
            let (Some(kind), Some(name), rest) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let rest = rest.unwrap_or("");
            let nums: Vec<u64> = rest
                .split(' ')
                .filter_map(|x| x.parse::<u64>().ok())
                .collect();
            match kind {
                "k" => {
                    *m.counters.entry(name.into()).or_default() +=
                        nums.first().copied().unwrap_or(0);
                }
                "max" => {
                    let e = m.maxes.entry(name.into()).or_default();
                    *e = (*e).max(nums.first().copied().unwrap_or(0));
                }
                "cmd" if nums.len() == 4 => {
                    let e = m.cmds.entry(name.into()).or_default();
                    for (a, b) in e.iter_mut().zip(&nums) {
                        *a += b;
                    }
                }
                "name" if m.names.insert((name.to_string(), rest.to_string())) => {
                    *m.counters.entry(name.into()).or_default() += 1;
                }
                "err" => {
                    *m.errors.entry(name.into()).or_default() += nums.first().copied().unwrap_or(0);
                }
                "db" => {
                    let f: Vec<i64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
                    if let (Ok(db), [keys, expires, avg]) = (name.parse::<usize>(), f.as_slice()) {
                        let e = m.dbs.entry(db).or_default();
                        e.0 += *keys as u64;
                        e.1 += *expires as u64;
                        e.2 += i128::from(*avg) * i128::from(*expires);
                    }
                }
                "lat" => decode_hist_into(rest, m.lat.entry(name.into()).or_insert_with(new_hist)),
                "s" => m.global.entry(name.into()).or_default().push(rest.into()),
                "pc" => {
                    let n = name
                        .strip_prefix("shard")
                        .and_then(|x| x.split(':').next())
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(usize::MAX);
                    m.shards.insert(n, format!("{name}{rest}"));
                }
                _ => {}
            }
        }
    }
    m
}

/// Renders the merged INFO text.
pub fn render(argv: &[Vec<u8>], parts: &[Option<Partial>]) -> String {
    let want = wanted(argv);
    let m = merge_parts(parts);
    let mut out = String::new();
    for (i, (name, title, _)) in SECTIONS.iter().enumerate() {
        if !want[i] {
            continue;
        }
        let mut body = String::new();
        if let Some(lines) = m.global.get(*name) {
            for l in lines {
                // A figure every shard counted replaces the client's shard's view of it.
                let merged = l.split_once(':').and_then(|(k, _)| {
                    let v = match k {
                        "mem_clients_normal" => m.counters.get(k),
                        _ => m.maxes.get(k),
                    };
                    v.map(|v| format!("{k}:{v}"))
                });
                body.push_str(merged.as_deref().unwrap_or(l));
                body.push_str("\r\n");
            }
        }
        match *name {
            "stats" => {
                let c = |k: &str| m.counters.get(k).copied().unwrap_or(0);
                // Server-wide counters first, in Redis's order.
                let global = m.global.get("stats").cloned().unwrap_or_default();
                // Lines placed further down in Redis's order.
                let (later, global): (Vec<String>, Vec<String>) = global
                    .into_iter()
                    .partition(|l| l.starts_with("migrate_cached_sockets:"));
                let mut global = global.into_iter();
                let mut lines: Vec<String> = global.next().into_iter().collect();
                lines.push(format!(
                    "total_commands_processed:{}",
                    c("total_commands_processed")
                ));
                lines.push(format!(
                    "instantaneous_ops_per_sec:{}",
                    c("instantaneous_ops_per_sec")
                ));
                lines.extend(global);
                lines.push(format!("expired_keys:{}", c("expired_keys")));
                lines.push(format!("evicted_keys:{}", c("evicted_keys")));
                lines.push(format!("evicted_clients:{}", c("evicted_clients")));
                lines.push(format!("keyspace_hits:{}", c("keyspace_hits")));
                lines.push(format!("keyspace_misses:{}", c("keyspace_misses")));
                lines.push(format!("pubsub_channels:{}", c("pubsub_channels")));
                lines.push(format!("pubsub_patterns:{}", c("pubsub_patterns")));
                lines.push(format!(
                    "pubsubshard_channels:{}",
                    c("pubsubshard_channels")
                ));
                lines.extend(later);
                for k in [
                    "tracking_total_keys",
                    "tracking_total_items",
                    "tracking_total_prefixes",
                ] {
                    lines.push(format!("{k}:{}", c(k)));
                }
                lines.push("unexpected_error_replies:0".into());
                lines.push(format!("total_error_replies:{}", c("total_error_replies")));
                body.clear();
                for l in lines {
                    body.push_str(&l);
                    body.push_str("\r\n");
                }
            }
            "commandstats" => {
                for (n, [calls, usec, rej, failed]) in &m.cmds {
                    let per = if *calls == 0 {
                        0.0
                    } else {
                        *usec as f64 / *calls as f64
                    };
                    let _ = write!(
                        body,
                        "cmdstat_{n}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rej},failed_calls={failed}\r\n"
                    );
                }
            }
            "errorstats" => {
                for (code, n) in &m.errors {
                    let _ = write!(body, "errorstat_{code}:count={n}\r\n");
                }
            }
            "latencystats" => {
                let pcts: Vec<f64> = m
                    .global
                    .get("latencypct")
                    .and_then(|v| v.first())
                    .map_or_else(
                        || vec![50.0, 99.0, 99.9],
                        |s| s.split(' ').filter_map(|x| x.parse().ok()).collect(),
                    );
                for (n, h) in &m.lat {
                    let _ = write!(body, "latency_percentiles_usec_{n}:");
                    for (j, p) in pcts.iter().enumerate() {
                        let v = h.value_at_quantile(p / 100.0);
                        let v = h.highest_equivalent(v);
                        if j > 0 {
                            body.push(',');
                        }
                        let _ = write!(body, "p{p}={:.3}", v as f64 / 1000.0);
                    }
                    body.push_str("\r\n");
                }
            }
            "clients" => crate::commands::connection::clients_info::render(&mut body, |k| {
                m.counters.get(k).copied().unwrap_or(0)
            }),
            "percore" => {
                for l in m.shards.values() {
                    body.push_str(l);
                    body.push_str("\r\n");
                }
            }
            "keyspace" => {
                for (db, (k, e, ttl_sum)) in &m.dbs {
                    let avg = if *e == 0 { 0 } else { ttl_sum / i128::from(*e) };
                    let _ = write!(body, "db{db}:keys={k},expires={e},avg_ttl={avg}\r\n");
                }
            }
            _ => {}
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let _ = write!(out, "# {title}\r\n{body}");
    }
    out
}

pub fn info_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let text = render(&g.argv, &g.parts);
    w.verbatim("txt", text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn sections_follow_redis_selection_rules() {
        let d = wanted(&argv(&["info"]));
        assert!(d[0] && !d[8] && !d[10] && d[12]);
        let all = wanted(&argv(&["info", "ALL"]));
        assert!(all.iter().all(|&x| x));
        let two = wanted(&argv(&["info", "keyspace", "Commandstats"]));
        assert_eq!(two.iter().filter(|&&x| x).count(), 2);
        assert!(wanted(&argv(&["info", "nosuch"])).iter().all(|&x| !x));
    }

    #[test]
    fn merge_sums_shards() {
        let a = "k keyspace_hits 2\ncmd get 3 30 1 0\nerr ERR 1\ndb 0 5 2 1000\n\
                 s server redis_version:7.0.15\nlat get 1000:2,3000:1\n";
        let b = "k keyspace_hits 5\ncmd get 1 10 0 1\nerr ERR 2\ndb 0 1 2 3000\ndb 3 1 0 0\nlat get 1000:1\n";
        let parts = vec![Some(Partial::Text(a.into())), Some(Partial::Text(b.into()))];
        let text = render(&argv(&["info", "everything"]), &parts);
        assert!(text.starts_with("# Server\r\nredis_version:7.0.15\r\n\r\n# Clients\r\n"));
        assert!(text.contains("keyspace_hits:7\r\n"));
        assert!(text.contains(
            "cmdstat_get:calls=4,usec=40,usec_per_call=10.00,rejected_calls=1,failed_calls=1\r\n"
        ));
        assert!(text.contains("errorstat_ERR:count=3\r\n"));
        assert!(
            text.contains(
                "db0:keys=6,expires=4,avg_ttl=2000\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n"
            )
        );
        let lat = text
            .lines()
            .find(|l| l.starts_with("latency_percentiles_usec_get:"))
            .unwrap();
        assert!(
            lat.starts_with("latency_percentiles_usec_get:p50=1.00")
                && lat.contains(",p99=3.0")
                && lat.contains(",p99.9=3.0"),
            "{lat}"
        );
        assert!(!text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn human_bytes() {
        assert_eq!(bytes_to_human(1_459_872), "1.39M");
        assert_eq!(bytes_to_human(200), "200B");
    }
}
