//! State shared by every shard thread: configuration, server-wide counters, the log.
//!
//! Shards read the configuration through a cached copy refreshed when the generation
//! counter moves, so the hot path never takes the lock.

use crate::config::Config;
use std::io::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// percore's version, reported as `percore_version` and in the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Redis version percore answers as (`redis_version` in INFO, HELLO's `version`):
/// clients gate features on it, and percore speaks 7.0's protocol.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

pub use crate::config::LogLevel;

fn level_mark(level: LogLevel) -> char {
    match level {
        LogLevel::Debug => '.',
        LogLevel::Verbose => '-',
        LogLevel::Notice | LogLevel::Nothing => '*',
        LogLevel::Warning => '#',
    }
}

/// Writes Redis-style log lines: `pid:role dd Mon yyyy hh:mm:ss.mmm <mark> message`.
pub struct Log {
    sink: Mutex<Box<dyn Write + Send>>,
    min: std::sync::atomic::AtomicU8,
    /// The role letter of each line: `M` for a primary, `S` for a replica (as Redis).
    replica: std::sync::atomic::AtomicBool,
}

impl Log {
    pub fn new(sink: Box<dyn Write + Send>, min: LogLevel) -> Self {
        Self {
            sink: Mutex::new(sink),
            min: std::sync::atomic::AtomicU8::new(min as u8),
            replica: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Lines from now on carry the role letter of a replica (`S`) or a primary (`M`).
    pub fn set_replica(&self, replica: bool) {
        self.replica.store(replica, Ordering::Relaxed);
    }

    pub fn set_level(&self, min: LogLevel) {
        self.min.store(min as u8, Ordering::Relaxed);
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        level != LogLevel::Nothing && level as u8 >= self.min.load(Ordering::Relaxed)
    }

    pub fn log(&self, level: LogLevel, msg: &str) {
        if !self.enabled(level) {
            return;
        }
        let line = format!(
            "{}:{} {} {} {}\n",
            std::process::id(),
            if self.replica.load(Ordering::Relaxed) {
                'S'
            } else {
                'M'
            },
            format_log_time(percore_net::reactor::unix_ms()),
            level_mark(level),
            msg
        );
        if let Ok(mut sink) = self.sink.lock() {
            let _ = sink.write_all(line.as_bytes());
            let _ = sink.flush();
        }
    }
}

/// `25 Nov 2026 02:37:47.123` in UTC.
pub fn format_log_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:02} {} {y} {:02}:{:02}:{:02}.{millis:03}",
        MONTHS[(m - 1) as usize],
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Server-wide counters that any shard may bump.
#[derive(Default)]
pub struct ServerStats {
    pub connected_clients: AtomicUsize,
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub next_client_id: AtomicU64,
    /// Clients blocked on keys (INFO `blocked_clients`), counted by the owner of their
    /// first key once registered there.
    pub blocked_clients: AtomicUsize,
    /// Keys with blocked clients (INFO `total_blocking_keys`).
    pub blocking_keys: AtomicUsize,
}

/// Everything shared by the shard threads.
pub struct ServerShared {
    config: RwLock<Config>,
    config_generation: AtomicU64,
    pub config_file: Option<std::path::PathBuf>,
    pub stats: ServerStats,
    pub log: Log,
    pub started: Instant,
    pub shards: usize,
    pub run_id: String,
    /// The TCP listeners (port, CONFIG SET's replacements).
    pub listen: crate::listen::Listeners,
    pub executable: String,
    pub io_uring_features: String,
    /// The reactor backend the shards run on (`io_uring` or `epoll`), set once at start.
    io_backend: std::sync::OnceLock<&'static str>,
    /// `LASTSAVE`: at start-up the dataset is considered saved, as Redis does.
    pub lastsave_s: AtomicI64,
    /// Snapshot status (INFO persistence, save logic).
    pub persist: std::sync::Mutex<crate::snapshot::Status>,
    /// Held while a finished background save is checked and installed, and by a cancel
    /// before it stops the running save (see `snapshot::complete`).
    pub install_lock: std::sync::Mutex<()>,
    /// Multi-shard writes in flight, and the gate a barrier closes (see `snapshot::gate`).
    pub write_gate: crate::snapshot::gate::WriteGate,
    /// Per shard: its keyspace's change counter, published once per loop iteration.
    pub changes: Vec<AtomicU64>,
    /// Per shard: the change counter at the cut of the last successful save.
    pub saved_changes: Vec<AtomicU64>,
    /// Cluster mode (`cluster-enabled yes`): the node's cluster state.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Per shard: the figures it publishes for the metrics endpoint.
    pub metrics: crate::metrics::Board,
    /// The script cache, the function libraries and which shard runs a busy script.
    pub scripts: crate::scripting::Shared,
    /// ACL users (see `acl`).
    pub acl: crate::acl::Acl,
    /// Replication: role, link, offsets (see `crate::replication`).
    pub repl: crate::replication::Shared,
    /// The stream of write effects: shards publish, sinks (AOF, replication) consume.
    pub effects: Arc<crate::propagate::Hub>,
    /// The append-only file's state.
    pub aof: crate::aof::Shared,
    /// What every request must look at (monitors, CLIENT PAUSE): one relaxed load.
    pub attention: crate::monitor::Attention,
    /// CLIENT PAUSE's state (`crate::pause`).
    pub pause: crate::pause::Pause,
    /// The TLS context new connections on `tls-port` get (see `crate::tls`).
    pub tls: crate::tls::Tls,
    /// `maxmemory` eviction: what each shard may evict, evictions counted.
    pub evict: crate::evict::Shared,
    /// Clients' memory per shard, client eviction (`crate::client_mem`).
    pub client_mem: crate::client_mem::Shared,
    /// CLIENT TRACKING: remember tables, BCAST prefixes, invalidation inboxes.
    pub tracking: crate::tracking::Shared,
    /// The MIGRATE thread and its connection cache (`crate::migrate`).
    pub migrate: crate::migrate::Worker,
}

impl ServerShared {
    /// Records the reactor backend in use (the first call wins).
    pub fn set_io_backend(&self, name: &'static str) {
        let _ = self.io_backend.set(name);
    }

    /// The reactor backend in use (`io_uring` before start-up chose).
    pub fn io_backend(&self) -> &'static str {
        self.io_backend.get().copied().unwrap_or("io_uring")
    }

    pub fn new(
        config: Config,
        config_file: Option<std::path::PathBuf>,
        log: Log,
        shards: usize,
        tcp_port: u16,
        io_uring_features: String,
    ) -> Arc<Self> {
        let now_ms = percore_net::reactor::unix_ms();
        let replicaof = config.repl.replicaof.clone();
        log.set_replica(replicaof.is_some());
        let cluster = config
            .cluster_enabled
            .then(|| crate::cluster::Cluster::new(&config));
        let acl = crate::acl::Acl::new();
        acl.set_default_password(&config.requirepass);
        Arc::new(Self {
            acl,
            config: RwLock::new(config),
            config_generation: AtomicU64::new(1),
            config_file,
            stats: ServerStats {
                next_client_id: AtomicU64::new(1),
                ..ServerStats::default()
            },
            log,
            started: Instant::now(),
            shards,
            run_id: random_hex40(),
            listen: crate::listen::Listeners::new(shards, tcp_port),
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            io_uring_features,
            io_backend: std::sync::OnceLock::new(),
            lastsave_s: AtomicI64::new(now_ms / 1000),
            persist: std::sync::Mutex::new(crate::snapshot::Status::default()),
            install_lock: std::sync::Mutex::new(()),
            write_gate: crate::snapshot::gate::WriteGate::default(),
            changes: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            saved_changes: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            cluster,
            metrics: crate::metrics::Board::new(shards),
            scripts: crate::scripting::Shared::new(shards),
            repl: crate::replication::Shared::new(random_hex40(), replicaof),
            effects: Arc::new(crate::propagate::Hub::new(shards)),
            aof: crate::aof::Shared::default(),
            attention: crate::monitor::Attention::default(),
            pause: crate::pause::Pause::default(),
            tls: crate::tls::Tls::default(),
            evict: crate::evict::Shared::new(shards),
            client_mem: crate::client_mem::Shared::new(shards),
            tracking: crate::tracking::Shared::new(shards),
            migrate: crate::migrate::Worker::default(),
        })
    }

    /// The configuration's generation; it moves on every successful CONFIG SET.
    pub fn config_generation(&self) -> u64 {
        self.config_generation.load(Ordering::Acquire)
    }

    /// Makes every shard refresh its copy of the configuration (and the state it derives
    /// from the server's, such as whether any client tracks keys).
    pub fn bump_generation(&self) {
        self.config_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> Config {
        self.config.read().expect("config lock poisoned").clone()
    }

    /// Applies `f` to the configuration under the write lock and bumps the generation if
    /// it succeeds.
    /// The plain TCP port listened on (CONFIG SET port changes it).
    pub fn tcp_port(&self) -> u16 {
        self.listen.port()
    }

    pub fn update_config<T, E>(&self, f: impl FnOnce(&mut Config) -> Result<T, E>) -> Result<T, E> {
        let mut guard = self.config.write().expect("config lock poisoned");
        let out = f(&mut guard)?;
        self.config_generation.fetch_add(1, Ordering::AcqRel);
        if let Some(c) = &self.cluster {
            // The announced address or the coverage rule may have changed.
            c.touch();
        }
        Ok(out)
    }

    pub fn notice(&self, msg: &str) {
        self.log.log(LogLevel::Notice, msg);
    }

    pub fn warning(&self, msg: &str) {
        self.log.log(LogLevel::Warning, msg);
    }
}

/// 40 random hex characters (run ids), from the kernel's random source.
pub fn random_hex40() -> String {
    use std::fmt::Write as _;
    let mut bytes = [0u8; 20];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        // Fall back to time and address entropy; run ids need uniqueness, not secrecy.
        let seed = percore_net::reactor::unix_ms() as u64 ^ (std::ptr::from_ref(&bytes) as u64);
        let mut s = seed;
        for b in &mut bytes {
            *b = (percore_engine::hash::splitmix64(&mut s) & 0xff) as u8;
        }
    }
    bytes.iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A random 64-bit seed from the kernel's random source.
pub fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok()
    {
        u64::from_ne_bytes(bytes)
    } else {
        percore_net::reactor::unix_ms() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_time_is_redis_style() {
        // 2026-11-25 02:37:47.123 UTC
        assert_eq!(
            format_log_time(1_795_574_267_123),
            "25 Nov 2026 02:37:47.123"
        );
        assert_eq!(format_log_time(0), "01 Jan 1970 00:00:00.000");
    }

    #[test]
    fn run_ids_are_40_hex() {
        let id = random_hex40();
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, random_hex40());
    }
}
