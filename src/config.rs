//! percore's configuration: one table of options ([`OPTIONS`]) drives the config file,
//! command-line flags, CONFIG GET, CONFIG SET and CONFIG REWRITE, with Redis 7's names,
//! defaults, value syntax and error texts.
//!
//! The server keeps the live [`Config`] behind `Arc<RwLock<Config>>` with a generation
//! counter; shards cache a clone, so `Config` is plain data (`Clone + Debug`).

mod args;
pub mod kept;
mod rewrite;
mod values;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use args::{repr, split_args};
use values::{
    format_memory, parse_bool, parse_bounded, parse_enum, parse_enum_shown, parse_memory,
    parse_memory_bounded, render_bool,
};

/// The version printed by `--version`, INFO and start-up errors.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Upper bound for `threads` (0 means one per core).
pub const MAX_THREADS: usize = 1024;
/// Redis's `CONFIG_BINDADDR_MAX`.
pub const MAX_BIND_ADDRS: usize = 16;
/// `include` depth at which we assume an include loop.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Redis clamps `hz` into `[CONFIG_MIN_HZ, CONFIG_MAX_HZ]`.
const MIN_HZ: i64 = 1;
const MAX_HZ: i64 = 500;
/// Lower bound of `proto-max-bulk-len` and `client-query-buffer-limit` in Redis 7.
const MIN_PROTO_LIMIT_BYTES: u64 = 1024 * 1024;
/// Redis bounds several options by C's `INT_MAX` / `LONG_MAX`.
const INT_MAX: i64 = i32::MAX as i64;

/// One `save <seconds> <changes>` point: snapshot when at least `changes` writes
/// happened within `seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavePoint {
    pub seconds: u64,
    pub changes: u64,
}

/// One `bind` address; a leading `-` in the config makes it optional (skipped when the
/// address is not available, e.g. no IPv6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAddr {
    pub addr: String,
    pub optional: bool,
}

/// `client-output-buffer-limit` for one client class; 0 disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputBufferLimit {
    pub hard_limit_bytes: u64,
    pub soft_limit_bytes: u64,
    pub soft_limit_secs: u64,
}

/// The three client classes Redis configures; only `normal` and `pubsub` matter until
/// percore has replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOutputBufferLimits {
    pub normal: OutputBufferLimit,
    pub replica: OutputBufferLimit,
    pub pubsub: OutputBufferLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
    Nothing,
}

impl LogLevel {
    const ALL: [LogLevel; 5] = [
        Self::Debug,
        Self::Verbose,
        Self::Notice,
        Self::Warning,
        Self::Nothing,
    ];
    const NAMES: [&'static str; 5] = ["debug", "verbose", "notice", "warning", "nothing"];

    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Redis's eviction policies (see `crate::evict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    Noeviction,
}

impl MaxmemoryPolicy {
    /// Whether the policy evicts by access frequency (Redis's `MAXMEMORY_FLAG_LFU`).
    pub fn is_lfu(self) -> bool {
        matches!(self, Self::VolatileLfu | Self::AllkeysLfu)
    }

    const ALL: [MaxmemoryPolicy; 8] = [
        Self::VolatileLru,
        Self::VolatileLfu,
        Self::VolatileRandom,
        Self::VolatileTtl,
        Self::AllkeysLru,
        Self::AllkeysLfu,
        Self::AllkeysRandom,
        Self::Noeviction,
    ];
    const NAMES: [&'static str; 8] = [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "noeviction",
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Every option percore understands, typed. Field names follow the Redis option names,
/// with the unit appended where the option has one.
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one field per Redis yes/no option; a bitset would hide the names"
)]
pub struct Config {
    /// `port`: TCP port. Immutable at runtime in percore.
    pub port: u16,
    /// `bind`: addresses to listen on. Immutable at runtime in percore.
    pub bind: Vec<BindAddr>,
    /// `protected-mode`: refuse non-loopback clients while the default user has no password.
    pub protected_mode: bool,
    /// `requirepass`: password for AUTH; empty means no password.
    pub requirepass: String,
    /// `aclfile`: where ACL LOAD and ACL SAVE read and write users (empty: none).
    pub aclfile: String,
    /// `acllog-max-len`: entries ACL LOG keeps.
    pub acllog_max_len: u64,
    /// `acl-pubsub-default`: whether new users and selectors start with every channel.
    pub acl_pubsub_default_all: bool,
    /// `user` lines of the configuration file, each `name rule...`, applied at start.
    pub users: Vec<Vec<String>>,
    /// `threads` (percore only): shard threads; 0 means one per core.
    pub threads: usize,
    /// `io-backend` (percore only): `auto` (io_uring unless refused), `io_uring` or `epoll`.
    /// Immutable at runtime.
    pub io_backend: percore_net::backend::IoBackend,
    /// `metrics-port` (percore only): Prometheus endpoint on 127.0.0.1; 0 is off.
    /// Immutable at runtime.
    pub metrics_port: u16,
    /// `hop-spin-us` (percore only): before sleeping, a shard with requests out on another
    /// shard (or that just ran some for another shard) spins up to this long for their
    /// mail (`Io::spin_for_mail`); 0 is off.
    pub hop_spin_us: u64,
    /// `dir`: working directory for the RDB file.
    pub dir: PathBuf,
    /// `dbfilename`: RDB file name inside `dir`.
    pub dbfilename: String,
    /// `appendonly`: keep the append-only file (`crate::aof`).
    pub appendonly: bool,
    /// `appendfilename`: the AOF files' base name (`appendonly.aof`).
    pub appendfilename: String,
    /// `appenddirname`: the AOF directory inside `dir`.
    pub appenddirname: String,
    /// `appendfsync`: when the AOF is fsynced.
    pub appendfsync: crate::aof::Fsync,
    /// `aof-use-rdb-preamble`: a rewrite's base is an RDB file (else commands).
    pub aof_use_rdb_preamble: bool,
    /// `aof-load-truncated`: load an AOF whose last command is cut short (else refuse).
    pub aof_load_truncated: bool,
    /// `auto-aof-rewrite-percentage`: rewrite when the AOF grew by this % over its size
    /// after the last rewrite (0: never).
    pub auto_aof_rewrite_percentage: u32,
    /// `auto-aof-rewrite-min-size`: ... and is at least this big.
    pub auto_aof_rewrite_min_size_bytes: u64,
    /// `aof-timestamp-enabled`, `aof-rewrite-incremental-fsync`,
    /// `no-appendfsync-on-rewrite`: accepted, kept for CONFIG GET (see README).
    pub aof_timestamp_enabled: bool,
    pub aof_rewrite_incremental_fsync: bool,
    pub no_appendfsync_on_rewrite: bool,
    /// `save`: snapshot points; empty disables automatic snapshots.
    pub save: Vec<SavePoint>,
    /// `rdbcompression`: LZF-compress strings in the RDB file.
    pub rdbcompression: bool,
    /// `rdbchecksum`: write and verify the RDB CRC64 trailer.
    pub rdbchecksum: bool,
    /// `default-bgsave-method` (Valkey's name): how BGSAVE snapshots, `fork` or
    /// `forkless` (the copy-on-write page cut, percore's default).
    pub default_bgsave_method: crate::snapshot::Method,
    /// `rdb-key-save-delay`: microseconds to pause per key while saving (tests), as Redis.
    pub rdb_key_save_delay_us: u64,
    /// `forkless-max-copy-memory`: bytes of table entries a forkless save may hold copied
    /// aside (written before the serializer reached them) before the shards throttle; 0:
    /// [`crate::snapshot::FORKLESS_AUTO_COPY_PERCENT`] % of `used_memory` at the cut.
    pub forkless_max_copy_memory_bytes: u64,
    /// The replication options (`replicaof`, `masterauth`, `replica-*`, `repl-*`, ...).
    pub repl: crate::replication::config::ReplConfig,
    /// The TLS options (`tls-*`).
    pub tls: crate::tls::TlsConfig,
    /// `maxclients`: maximum connected clients.
    pub maxclients: u32,
    /// `timeout`: close idle clients after this many seconds; 0 never.
    pub timeout_secs: u32,
    /// `tcp-keepalive`: `SO_KEEPALIVE` interval; 0 disables.
    pub tcp_keepalive_secs: u32,
    /// `tcp-backlog`: `listen(2)` backlog.
    pub tcp_backlog: u32,
    /// `loglevel`.
    pub loglevel: LogLevel,
    /// `logfile`: `None` (config value `""`) logs to stdout.
    pub logfile: Option<PathBuf>,
    /// `pidfile`: `None` (config value `""`) writes no pid file.
    pub pidfile: Option<PathBuf>,
    /// `databases`: number of logical databases (SELECT 0..n-1).
    pub databases: u32,
    /// `cluster-enabled`: run as a Redis/Valkey Cluster node. Immutable at runtime.
    pub cluster_enabled: bool,
    /// `cluster-config-file`: the node's cluster state (nodes.conf), inside `dir`.
    /// Immutable at runtime.
    pub cluster_config_file: String,
    /// `cluster-databases` (Valkey 9): databases in cluster mode, in place of `databases`.
    /// Immutable at runtime.
    pub cluster_databases: u32,
    /// `cluster-announce-ip`: the address this node gives for itself; empty keeps the one
    /// in nodes.conf (none for a new node, as Valkey before its first MEET).
    pub cluster_announce_ip: String,
    /// `cluster-announce-port`: the client port this node gives for itself; 0 is `port`.
    pub cluster_announce_port: u16,
    /// `cluster-announce-bus-port`: the bus port this node gives for itself; 0 derives it.
    pub cluster_announce_bus_port: u16,
    /// `cluster-port`: the bus port (shown only: percore has no cluster bus yet); 0 is
    /// `port` + 10000. Immutable at runtime.
    pub cluster_port: u16,
    /// `cluster-require-full-coverage`: refuse keyed commands unless all slots are served.
    pub cluster_require_full_coverage: bool,
    /// `cluster-allow-reads-when-down`: serve read commands while the cluster is down.
    pub cluster_allow_reads_when_down: bool,
    /// `proto-max-bulk-len`: largest bulk string a client may send.
    pub proto_max_bulk_len_bytes: u64,
    /// `hll-sparse-max-bytes`: largest sparse HyperLogLog before it turns dense.
    pub hll_sparse_max_bytes: u64,
    /// `client-query-buffer-limit`: largest query buffer per client.
    pub client_query_buffer_limit_bytes: u64,
    /// `client-output-buffer-limit`.
    pub client_output_buffer_limit: ClientOutputBufferLimits,
    /// `slowlog-log-slower-than`: microseconds; -1 disables the slow log, 0 logs all.
    pub slowlog_log_slower_than_us: i64,
    /// `slowlog-max-len`: entries kept in the slow log.
    pub slowlog_max_len: u64,
    // sets
    /// `set-max-intset-entries`: largest set kept as an intset.
    pub set_max_intset_entries: usize,
    /// `set-max-listpack-entries`: largest set kept in the small form.
    pub set_max_listpack_entries: usize,
    /// `set-max-listpack-value`: longest member of a set in the small form.
    pub set_max_listpack_value: usize,
    // sorted sets
    /// `zset-max-listpack-entries` (alias `zset-max-ziplist-entries`).
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value` (alias `zset-max-ziplist-value`).
    pub zset_max_listpack_value: usize,
    // streams
    /// `stream-node-max-bytes`: largest stream node (0 = no limit but 1 GiB).
    pub stream_node_max_bytes: usize,
    /// `stream-node-max-entries`: most entries (live and deleted) per stream node.
    pub stream_node_max_entries: usize,
    /// `latency-tracking`: per-command latency histograms (INFO latencystats).
    pub latency_tracking: bool,
    /// `latency-tracking-info-percentiles`: percentiles INFO latencystats reports.
    pub latency_tracking_info_percentiles: Vec<f64>,
    /// `latency-monitor-threshold`: milliseconds; 0 disables the latency monitor.
    pub latency_monitor_threshold_ms: u64,
    /// `busy-reply-threshold` (alias `lua-time-limit`): milliseconds a script runs before
    /// other clients get `-BUSY` and SCRIPT KILL / FUNCTION KILL may stop it.
    pub busy_reply_threshold_ms: u64,
    /// `notify-keyspace-events`: the event classes published as keyspace notifications
    /// (`crate::notify`'s flag bits; empty = off).
    pub notify_keyspace_events: u32,
    /// `hz`: background task frequency, clamped to 1..=500 as Redis does.
    pub hz: u32,
    /// `maxmemory`: 0 means no limit; over it keys are evicted (see `crate::evict`).
    pub maxmemory_bytes: u64,
    /// `maxmemory-policy`: which keys are evicted, and LRU or LFU access tracking
    /// (OBJECT IDLETIME/FREQ).
    pub maxmemory_policy: MaxmemoryPolicy,
    /// `maxmemory-samples`: keys sampled per database for each eviction (Redis: 5).
    pub maxmemory_samples: u32,
    /// `tracking-table-max-keys`: keys CLIENT TRACKING remembers, over all shards, before
    /// some are invalidated to make room (0: no limit; Redis: 1000000).
    pub tracking_table_max_keys: usize,
    /// `maxmemory-eviction-tenacity`: how long one eviction run may take (0-100; 100:
    /// no limit; Redis: 10, i.e. 500 µs).
    pub maxmemory_eviction_tenacity: u32,
    /// `replica-ignore-maxmemory` (alias `slave-ignore-maxmemory`): a replica leaves
    /// eviction to its primary (whose DELs it applies).
    pub replica_ignore_maxmemory: bool,
    /// `lfu-log-factor`: hits it takes to grow an LFU counter (Redis's default 10).
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`: minutes per decrement of an idle LFU counter (default 1).
    pub lfu_decay_time_minutes: u32,
    // lists and hashes
    /// `list-max-listpack-size` (alias `list-max-ziplist-size`): a list node's limit,
    /// bytes (-1..-5: 4..64 KiB) when negative, entries when positive.
    pub list_max_listpack_size: i64,
    /// `list-compress-depth`: accepted and reported; nodes are not compressed.
    pub list_compress_depth: i64,
    /// `hash-max-listpack-entries` (alias `hash-max-ziplist-entries`).
    pub hash_max_listpack_entries: u64,
    /// `hash-max-listpack-value` (alias `hash-max-ziplist-value`): bytes.
    pub hash_max_listpack_value: u64,
    // end lists and hashes
    /// `daemonize`: fork into the background at start-up (stdio to /dev/null).
    pub daemonize: bool,
    /// The options kept by value (`kept::Kind` rows: `unixsocket`, `enable-debug-command`,
    /// `lazyfree-*`, ...), by canonical name; read them through the getters.
    pub kept: kept::Kept,
}

impl Default for Config {
    /// The embedded defaults: Redis 7's defaults (`bind * -::*`, protected mode on), which is
    /// what `percore-server` runs with when given no arguments.
    fn default() -> Self {
        const fn limit(hard: u64, soft: u64, secs: u64) -> OutputBufferLimit {
            OutputBufferLimit {
                hard_limit_bytes: hard,
                soft_limit_bytes: soft,
                soft_limit_secs: secs,
            }
        }
        const MB: u64 = 1024 * 1024;
        Self {
            port: 6379,
            bind: vec![
                BindAddr {
                    addr: "*".to_owned(),
                    optional: false,
                },
                BindAddr {
                    addr: "::*".to_owned(),
                    optional: true,
                },
            ],
            protected_mode: true,
            requirepass: String::new(),
            aclfile: String::new(),
            acllog_max_len: 128,
            acl_pubsub_default_all: false,
            users: Vec::new(),
            threads: 0,
            io_backend: percore_net::backend::IoBackend::Auto,
            metrics_port: 0,
            hop_spin_us: 0,
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".to_owned(),
            appendonly: false,
            appendfilename: "appendonly.aof".to_owned(),
            appenddirname: "appendonlydir".to_owned(),
            appendfsync: crate::aof::Fsync::Everysec,
            aof_use_rdb_preamble: true,
            aof_load_truncated: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size_bytes: 64 * MB,
            aof_timestamp_enabled: false,
            aof_rewrite_incremental_fsync: true,
            no_appendfsync_on_rewrite: false,
            save: [(3600, 1), (300, 100), (60, 10000)]
                .into_iter()
                .map(|(seconds, changes)| SavePoint { seconds, changes })
                .collect(),
            rdbcompression: true,
            rdbchecksum: true,
            default_bgsave_method: crate::snapshot::Method::Forkless,
            rdb_key_save_delay_us: 0,
            forkless_max_copy_memory_bytes: 0,
            repl: crate::replication::config::ReplConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            maxclients: 10000,
            timeout_secs: 0,
            tcp_keepalive_secs: 300,
            tcp_backlog: 511,
            loglevel: LogLevel::Notice,
            logfile: None,
            pidfile: None,
            databases: 16,
            cluster_enabled: false,
            cluster_config_file: "nodes.conf".to_owned(),
            cluster_databases: 1,
            cluster_announce_ip: String::new(),
            cluster_announce_port: 0,
            cluster_announce_bus_port: 0,
            cluster_port: 0,
            cluster_require_full_coverage: true,
            cluster_allow_reads_when_down: false,
            proto_max_bulk_len_bytes: 512 * MB,
            hll_sparse_max_bytes: percore_engine::hyperloglog::DEFAULT_SPARSE_MAX_BYTES as u64,
            client_query_buffer_limit_bytes: 1024 * MB,
            client_output_buffer_limit: ClientOutputBufferLimits {
                normal: limit(0, 0, 0),
                replica: limit(256 * MB, 64 * MB, 60),
                pubsub: limit(32 * MB, 8 * MB, 60),
            },
            slowlog_log_slower_than_us: 10000,
            slowlog_max_len: 128,
            // sets
            set_max_intset_entries: percore_engine::sets::DEFAULT_SET_MAX_INTSET_ENTRIES,
            set_max_listpack_entries: percore_engine::sets::DEFAULT_SET_MAX_LISTPACK_ENTRIES,
            set_max_listpack_value: percore_engine::sets::DEFAULT_SET_MAX_LISTPACK_VALUE_BYTES,
            // sorted sets
            stream_node_max_bytes: percore_engine::streams::DEFAULT_STREAM_NODE_MAX_BYTES,
            stream_node_max_entries: percore_engine::streams::DEFAULT_STREAM_NODE_MAX_ENTRIES,
            zset_max_listpack_entries: percore_engine::zsets::DEFAULT_ZSET_MAX_LISTPACK_ENTRIES,
            zset_max_listpack_value: percore_engine::zsets::DEFAULT_ZSET_MAX_LISTPACK_VALUE_BYTES,
            latency_tracking: true,
            latency_tracking_info_percentiles: vec![50.0, 99.0, 99.9],
            latency_monitor_threshold_ms: 0,
            busy_reply_threshold_ms: 5000,
            notify_keyspace_events: 0,
            hz: 10,
            maxmemory_bytes: 0,
            maxmemory_policy: MaxmemoryPolicy::Noeviction,
            maxmemory_samples: 5,
            tracking_table_max_keys: 1_000_000,
            maxmemory_eviction_tenacity: 10,
            replica_ignore_maxmemory: true,
            lfu_log_factor: 10,
            lfu_decay_time_minutes: 1,
            // lists and hashes
            list_max_listpack_size: percore_engine::lists::DEFAULT_LIST_MAX_LISTPACK_SIZE,
            list_compress_depth: 0,
            hash_max_listpack_entries: percore_engine::hashes::DEFAULT_HASH_MAX_LISTPACK_ENTRIES
                as u64,
            hash_max_listpack_value: percore_engine::hashes::DEFAULT_HASH_MAX_LISTPACK_VALUE_BYTES
                as u64,
            // end lists and hashes
            daemonize: false,
            kept: kept::Kept::new(),
        }
    }
}

/// A start-up configuration error; its `Display` is exactly what to print before exiting
/// with status 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    fn new(message: String) -> Self {
        Self { message }
    }

    /// Redis's fatal config error block, naming where the bad line is.
    fn fatal(location: &str, line: &str, reason: &str) -> Self {
        Self::new(format!(
            "*** FATAL CONFIG FILE ERROR (percore {VERSION}) ***\n\
             Reading {location}\n\
             >>> '{line}'\n\
             {reason}"
        ))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// What `main` should do, decided from the command line.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once at start-up and moved out at once"
)]
pub enum Startup {
    /// Run the server. `config_file` is the absolute path of the config file, if one was
    /// given: CONFIG REWRITE writes there (Redis replies
    /// `ERR The server is running without a config file` when it is `None`).
    Run {
        config: Config,
        config_file: Option<PathBuf>,
    },
    /// `--help` or `--version`: print this to stdout and exit with status 0.
    PrintAndExit(String),
}

/// Parses `percore-server [/path/to/percore.conf] [--name value ...]` (`args` without
/// argv\[0\]) like redis-server: the file first, then the flags in order, each flag being
/// one config line through the same table and checks.
pub fn parse_command_line(args: &[String]) -> Result<Startup, ConfigError> {
    match args.first().map(String::as_str) {
        Some("-v" | "--version") => return Ok(Startup::PrintAndExit(version_text())),
        Some("-h" | "--help") => return Ok(Startup::PrintAndExit(usage_text())),
        _ => {}
    }
    let mut rest = args;
    let mut config_file = None;
    if let Some(first) = args.first().filter(|a| !a.starts_with('-')) {
        let path = Path::new(first);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| ConfigError::new(format!("Can't get the current directory: {e}")))?
                .join(path)
        };
        config_file = Some(absolute);
        rest = &args[1..];
    }
    let options = group_options(rest)?;

    let mut config = Config::default();
    let mut loading = Loading::from_file();
    if let Some(path) = &config_file {
        let bytes = fs::read(path).map_err(|e| {
            ConfigError::new(format!(
                "Fatal error, can't open config file '{}': {}",
                path.display(),
                os_error_text(&e)
            ))
        })?;
        load_file_contents(&mut config, &mut loading, path, &bytes, 0)?;
    }
    for (index, option) in options.iter().enumerate() {
        apply_directive(&mut config, &mut loading, option).map_err(|reason| {
            let line = option
                .iter()
                .enumerate()
                .map(|(i, a)| if i == 0 { a.clone() } else { repr(a) })
                .collect::<Vec<_>>()
                .join(" ");
            ConfigError::fatal(
                &format!("the command line options, at option {}", index + 1),
                &line,
                &reason,
            )
        })?;
    }
    Ok(Startup::Run {
        config,
        config_file,
    })
}

/// Groups `--name value ...` into directives as redis-server's `main` does: a `--name`
/// starts a directive, other arguments are its values, a value may itself start with `--`
/// right after its name, and a bare `--save` (last, or followed by `--x`) means `save ""`.
fn group_options(args: &[String]) -> Result<Vec<Vec<String>>, ConfigError> {
    let mut options: Vec<Vec<String>> = Vec::new();
    let mut name_has_value = true;
    for (j, arg) in args.iter().enumerate() {
        if arg == "-" {
            return Err(ConfigError::new(
                "Reading the configuration from stdin ('-') is not supported by percore; \
                 pass a file path"
                    .to_owned(),
            ));
        }
        if name_has_value && let Some(body) = arg.strip_prefix("--") {
            let parts = split_args(body.as_bytes()).ok_or_else(|| {
                ConfigError::fatal(
                    "the command line options",
                    body,
                    "Unbalanced quotes in configuration line",
                )
            })?;
            let mut parts = utf8_args(parts)
                .map_err(|reason| ConfigError::fatal("the command line options", body, &reason))?;
            if parts.len() <= 1 {
                name_has_value = false;
                let next_is_name = args.get(j + 1).is_none_or(|n| n.starts_with("--"));
                if parts.is_empty() {
                    parts.push(String::new());
                } else if arg.eq_ignore_ascii_case("--save") && next_is_name {
                    parts.push(String::new());
                    name_has_value = true;
                }
            } else {
                name_has_value = true;
            }
            options.push(parts);
        } else {
            match options.last_mut() {
                Some(option) => option.push(arg.clone()),
                None => options.push(vec![arg.clone()]),
            }
            name_has_value = true;
        }
    }
    Ok(options)
}

/// `percore-server --version`.
fn version_text() -> String {
    format!(
        "percore v={VERSION} sha={}:0 malloc=libc bits={} build={}",
        option_env!("PERCORE_GIT_SHA").unwrap_or("00000000"),
        usize::BITS,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// `percore-server --help`, shaped like redis-server's.
fn usage_text() -> String {
    "Usage: percore-server [/path/to/percore.conf] [options]\n\
     \x20      percore-server -v or --version\n\
     \x20      percore-server -h or --help\n\
     \n\
     Options are config file directives with a leading --, applied after the file:\n\
     \x20      --port 7777 --bind 127.0.0.1 ::1 --save '' --maxclients 1000\n\
     \n\
     Examples:\n\
     \x20      percore-server (run the server with the default configuration)\n\
     \x20      percore-server /etc/percore/percore.conf\n\
     \x20      percore-server --port 7777\n\
     \x20      percore-server /etc/percore/percore.conf --loglevel verbose --save \"60 1\"\n\
     \n\
     See docs/configuration.md for every option.\n"
        .to_owned()
}

/// State carried across the lines of one load (file, includes, then flags).
struct Loading {
    /// Loading a file or flags (true) or applying CONFIG SET (false).
    from_file: bool,
    /// The first `save` line of a load replaces the defaults; later ones accumulate.
    save_seen: bool,
}

impl Loading {
    fn from_file() -> Self {
        Self {
            from_file: true,
            save_seen: false,
        }
    }

    fn runtime() -> Self {
        Self {
            from_file: false,
            save_seen: false,
        }
    }
}

fn load_file_contents(
    config: &mut Config,
    loading: &mut Loading,
    path: &Path,
    bytes: &[u8],
    depth: usize,
) -> Result<(), ConfigError> {
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let shown = String::from_utf8_lossy(line);
        let fail = |reason: &str| {
            ConfigError::fatal(
                &format!(
                    "the configuration file '{}', at line {}",
                    path.display(),
                    index + 1
                ),
                &shown,
                reason,
            )
        };
        let parts =
            split_args(line).ok_or_else(|| fail("Unbalanced quotes in configuration line"))?;
        if parts.is_empty() {
            continue;
        }
        let parts = utf8_args(parts).map_err(|reason| fail(&reason))?;
        if parts[0].eq_ignore_ascii_case("include") && parts.len() == 2 {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(fail(&format!(
                    "include nesting deeper than {MAX_INCLUDE_DEPTH} levels (an include loop?)"
                )));
            }
            let included = Path::new(&parts[1]);
            let contents = fs::read(included).map_err(|e| {
                fail(&format!(
                    "can't open config file '{}': {}",
                    included.display(),
                    os_error_text(&e)
                ))
            })?;
            load_file_contents(config, loading, included, &contents, depth + 1)?;
            continue;
        }
        apply_directive(config, loading, &parts).map_err(|reason| fail(&reason))?;
    }
    Ok(())
}

/// Applies one directive (`name arg...`) from the file or the command line.
fn apply_directive(
    config: &mut Config,
    loading: &mut Loading,
    parts: &[String],
) -> Result<(), String> {
    const BAD_DIRECTIVE: &str = "Bad directive or wrong number of arguments";
    let (name, values) = parts.split_first().ok_or(BAD_DIRECTIVE)?;
    if name.eq_ignore_ascii_case("user") && loading.from_file && !values.is_empty() {
        // `user name rule...`: kept for the ACL at start-up (not a CONFIG GET option).
        config.users.push(values.to_vec());
        return Ok(());
    }
    // Redis's `deprecated_configs`: accepted in a file and ignored.
    let deprecated = [
        "list-max-ziplist-entries",
        "list-max-ziplist-value",
        "lua-replicate-commands",
    ];
    if values.len() == 1 && deprecated.iter().any(|d| name.eq_ignore_ascii_case(d)) {
        return Ok(());
    }
    let option = find_option(name.as_bytes()).ok_or(BAD_DIRECTIVE)?;
    // A multi-argument option may have none (`save` alone clears the save points).
    if !option.multi_arg && values.len() != 1 {
        return Err("wrong number of arguments".to_owned());
    }
    if option.multi_arg && values.len() == 1 && !values[0].is_empty() {
        // `--save "60 1"` or `save "60 1"`: one argument holding several.
        let split =
            split_args(values[0].as_bytes()).ok_or("Unbalanced quotes in configuration line")?;
        return (option.set)(config, &utf8_args(split)?, loading);
    }
    (option.set)(config, values, loading)
}

fn utf8_args(parts: Vec<Vec<u8>>) -> Result<Vec<String>, String> {
    parts
        .into_iter()
        .map(|p| String::from_utf8(p).map_err(|_| "argument must be valid UTF-8 text".to_owned()))
        .collect()
}

/// Splits a line as the configuration file's lines are (quotes, escapes), for the ACL file.
pub fn split_args_public(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    split_args(line)
}

/// A memory size as Redis's `memtoull` (DEBUG QUICKLIST-PACKED-THRESHOLD).
pub fn parse_memory_public(s: &str) -> Option<u64> {
    parse_memory(s)
}

/// `strerror` text of an I/O error, for messages outside this module.
pub fn os_error_public(error: &io::Error) -> String {
    os_error_text(error)
}

/// `strerror` text of an I/O error, without Rust's " (os error N)" suffix.
fn os_error_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

impl Config {
    /// How keys' accesses are tracked under this configuration.
    pub fn access_tracking(&self) -> percore_engine::AccessTracking {
        if self.maxmemory_policy.is_lfu() {
            percore_engine::AccessTracking::Lfu {
                log_factor: self.lfu_log_factor,
                decay_minutes: self.lfu_decay_time_minutes,
            }
        } else {
            percore_engine::AccessTracking::Lru
        }
    }

    /// CONFIG GET: every option whose name matches the glob `pattern` (case-insensitive,
    /// as Redis), in table order, with its value rendered as Redis renders it (sizes as
    /// plain byte counts). Redis echoes a glob-free pattern with the caller's spelling
    /// (`CONFIG GET MAXCLIENTS` replies `MAXCLIENTS`); this returns the canonical name,
    /// so the caller substitutes its argument when it contains none of `*?[`. Several
    /// patterns: call once per pattern and drop names already replied.
    #[must_use]
    pub fn get_matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        OPTIONS
            .iter()
            .filter(|o| !(glob && kept::HIDDEN.contains(&o.name)))
            .filter(|o| values::name_matches(pattern, o.name))
            .map(|o| (o.name, (o.get)(self)))
            .collect()
    }

    /// CONFIG SET `name value [name value ...]`, all or nothing. The `Err` is the whole
    /// Redis error text without the leading `-`. The caller replies `ERR syntax error`
    /// for an odd argument count, as Redis does, before calling this.
    pub fn set_many(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let failed = |name: &str, reason: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")
        };
        let mut chosen: Vec<(&ConfigOption, &[u8])> = Vec::with_capacity(pairs.len());
        for &(name, value) in pairs {
            let typed = String::from_utf8_lossy(name);
            let option = find_option(name).ok_or_else(|| {
                format!("ERR Unknown option or number of arguments for CONFIG SET - '{typed}'")
            })?;
            match option.settable {
                // percore's own start-up options take their current value (tools, and
                // Redis's test suite, set every `CONFIG GET *` pair back; Redis has no
                // such option to refuse it).
                Settable::Immutable
                    if PERCORE_STARTUP_ONLY.contains(&option.name)
                        && (option.get)(self).as_bytes() == value =>
                {
                    continue;
                }
                Settable::Immutable => return Err(failed(&typed, "can't set immutable config")),
                // `local` is checked by the caller, who knows the client
                // (`refuse_protected_remote`).
                Settable::Protected if !self.protected_configs_allowed(true) => {
                    return Err(failed(&typed, "can't set protected config"));
                }
                Settable::Runtime | Settable::Protected => {}
            }
            if chosen.iter().any(|(o, _)| o.name == option.name) {
                return Err(failed(&typed, "duplicate parameter"));
            }
            chosen.push((option, value));
        }
        let mut next = self.clone();
        let mut loading = Loading::runtime();
        for (option, value) in chosen {
            let text = std::str::from_utf8(value)
                .map_err(|_| failed(option.name, "argument must be valid UTF-8 text"))?;
            // Redis splits a multi-argument value on single spaces (`sdssplitlen`), so
            // `"60 1  300 2"` has an empty argument and is rejected.
            let args: Vec<String> = if !option.multi_arg {
                vec![text.to_owned()]
            } else if text.is_empty() {
                Vec::new()
            } else {
                text.split(' ').map(str::to_owned).collect()
            };
            (option.set)(&mut next, &args, &mut loading).map_err(|e| failed(option.name, &e))?;
        }
        *self = next;
        Ok(())
    }

    /// CONFIG SET's check of `enable-protected-configs local` for a client that is not
    /// local (`set_many` allows `yes` and `local`): Redis's error for the first protected
    /// option named.
    pub fn refuse_protected_remote(&self, pairs: &[(&[u8], &[u8])], local: bool) -> Option<String> {
        if local || !self.protected_configs_allowed(true) || self.protected_configs_allowed(false) {
            return None;
        }
        pairs.iter().find_map(|&(name, _)| {
            find_option(name)
                .filter(|o| o.settable == Settable::Protected)
                .map(|_| {
                    format!(
                        "ERR CONFIG SET failed (possibly related to argument '{}') - can't set protected config",
                        String::from_utf8_lossy(name)
                    )
                })
        })
    }

    /// CONFIG REWRITE: merge the current values into `path` as Redis does (comments,
    /// `include` and unknown lines kept in place; options equal to their default are only
    /// written if the file already mentions them) and replace the file atomically.
    pub fn rewrite(&self, path: &Path) -> io::Result<()> {
        self.rewrite_with(path, false)
    }

    /// CONFIG REWRITE, or with `force_all` DEBUG CONFIG-REWRITE-FORCE-ALL: every option
    /// is written, defaults included.
    pub fn rewrite_with(&self, path: &Path, force_all: bool) -> io::Result<()> {
        let old = match fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        rewrite::write_atomically(path, self.rewrite_content(&old, force_all).as_bytes())
    }

    fn rewrite_content(&self, old: &str, force_all: bool) -> String {
        let defaults = Config::default();
        // Aliases are not written (Redis rewrites "only the primary names"): their lines
        // in the old file belong to the canonical option.
        let options: Vec<rewrite::OptionLines> = OPTIONS
            .iter()
            .filter(|o| !REWRITE_ALIASES.iter().any(|(alias, _)| *alias == o.name))
            .map(|o| rewrite::OptionLines {
                name: o.name,
                lines: o
                    .file_lines(self, &defaults)
                    .into_iter()
                    .map(|(l, force)| (l, force || force_all))
                    .collect(),
            })
            .collect();
        rewrite::rewrite_content(old, &options, REWRITE_ALIASES)
    }

    /// Shard threads to start on a machine with `cores` usable cores.
    #[must_use]
    pub fn effective_threads(&self, cores: usize) -> usize {
        if self.threads == 0 {
            cores.max(1)
        } else {
            self.threads
        }
    }

    /// Databases per shard: `cluster-databases` in cluster mode, else `databases`.
    #[must_use]
    pub fn keyspace_databases(&self) -> usize {
        if self.cluster_enabled {
            self.cluster_databases as usize
        } else {
            self.databases as usize
        }
    }

    /// Where SAVE/BGSAVE write and start-up loads: `dir/dbfilename`.
    #[must_use]
    pub fn rdb_path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }
}

/// `(alias, canonical)`: the option rows that are aliases of another row (Redis 7.0's
/// `ALIAS_CONFIG`s, and Valkey's `primary*` names for `master*`). CONFIG REWRITE writes
/// only the canonical name.
const REWRITE_ALIASES: &[(&str, &str)] = &[
    ("slaveof", "replicaof"),
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    ("slave-lazy-flush", "replica-lazy-flush"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slave-read-only", "replica-read-only"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    ("slave-announce-ip", "replica-announce-ip"),
    (
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
    ),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("slave-priority", "replica-priority"),
    ("slave-announce-port", "replica-announce-port"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("lua-time-limit", "busy-reply-threshold"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("primaryauth", "masterauth"),
    ("primaryuser", "masteruser"),
];

/// Options whose empty value means "unset" (Redis's `EMPTY_STRING_IS_NULL` strings, and
/// `replicaof` on a primary): CONFIG REWRITE writes no line for them then, even with
/// DEBUG CONFIG-REWRITE-FORCE-ALL, and blanks the file's old lines (`replicaof ""` would
/// not load).
const EMPTY_IS_UNSET: &[&str] = &[
    "replicaof",
    "unixsocket",
    "pidfile",
    "replica-announce-ip",
    "masteruser",
    "masterauth",
    "requirepass",
    "cluster-announce-ip",
    "cluster-announce-hostname",
    "server_cpulist",
    "bio_cpulist",
    "aof_rewrite_cpulist",
    "bgsave_cpulist",
    "bind-source-addr",
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-dh-params-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
];

/// Redis's refusal of DEBUG (or MODULE) when `enable-debug-command` (or
/// `enable-module-command`) does not allow it, without the `-`.
pub fn protected_command_refusal(command: &str) -> String {
    let (name, option) = if command == "module" {
        ("MODULE", "enable-module-command")
    } else {
        ("DEBUG", "enable-debug-command")
    };
    format!(
        "ERR {name} command not allowed. If the {option} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."
    )
}

/// Whether CONFIG SET may change an option (Redis's `IMMUTABLE_CONFIG` and
/// `PROTECTED_CONFIG`: the latter only with `enable-protected-configs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settable {
    Runtime,
    Immutable,
    Protected,
}

/// How CONFIG REWRITE writes an option's value.
#[derive(Clone, Copy, Debug)]
enum FileForm {
    /// The CONFIG GET text as is (numbers, enums, yes/no, address lists).
    Plain,
    /// A string, quoted as `sdscatrepr`.
    Quoted,
    /// A byte count, with the largest exact unit (`512mb`).
    Memory,
    /// One `save <s> <c>` line per point, or `save ""`; always written.
    Save,
    /// One `client-output-buffer-limit <class> ...` line per class.
    OutputBufferLimits,
}

/// One row of the option table.
struct ConfigOption {
    name: &'static str,
    settable: Settable,
    /// Takes several arguments (`save`, `bind`, ...); CONFIG SET splits its value on spaces.
    multi_arg: bool,
    set: fn(&mut Config, &[String], &mut Loading) -> Result<(), String>,
    get: fn(&Config) -> String,
    file_form: FileForm,
}

impl ConfigOption {
    fn file_lines(&self, config: &Config, defaults: &Config) -> Vec<(String, bool)> {
        let value = (self.get)(config);
        let force = value != (self.get)(defaults);
        let name = self.name;
        if value.is_empty() && EMPTY_IS_UNSET.contains(&name) {
            return Vec::new();
        }
        match self.file_form {
            FileForm::Plain if value.is_empty() => vec![(format!("{name} \"\""), force)],
            FileForm::Plain => vec![(format!("{name} {value}"), force)],
            FileForm::Quoted => vec![(format!("{name} {}", repr(&value)), force)],
            FileForm::Memory => {
                let bytes = parse_memory(&value).expect("memory options render as byte counts");
                vec![(format!("{name} {}", format_memory(bytes)), force)]
            }
            FileForm::Save if config.save.is_empty() => vec![(format!("{name} \"\""), true)],
            FileForm::Save => config
                .save
                .iter()
                .map(|p| (format!("{name} {} {}", p.seconds, p.changes), true))
                .collect(),
            FileForm::OutputBufferLimits => {
                let now = &config.client_output_buffer_limit;
                let default = &defaults.client_output_buffer_limit;
                [
                    ("normal", now.normal, default.normal),
                    ("replica", now.replica, default.replica),
                    ("pubsub", now.pubsub, default.pubsub),
                ]
                .into_iter()
                .map(|(class, limit, default)| {
                    let line = format!(
                        "{name} {class} {} {} {}",
                        format_memory(limit.hard_limit_bytes),
                        format_memory(limit.soft_limit_bytes),
                        limit.soft_limit_secs
                    );
                    (line, limit != default)
                })
                .collect()
            }
        }
    }
}

fn find_option(name: &[u8]) -> Option<&'static ConfigOption> {
    OPTIONS
        .iter()
        .find(|o| o.name.as_bytes().eq_ignore_ascii_case(name))
}

fn int<T: TryFrom<i64>>(arg: &str, min: i64, max: i64) -> Result<T, String> {
    let value = parse_bounded(arg, min, max)?;
    Ok(T::try_from(value).ok().expect("bounds fit the field type"))
}

/// A size option of Redis's `MEMORY_CONFIG` kind bounded by `LONG_MAX`, as a `usize`.
fn memory_usize(arg: &str) -> Result<usize, String> {
    let bytes = parse_memory_bounded(arg, 0, i64::MAX as u64)?;
    Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
}

fn path_option(arg: &str) -> Option<PathBuf> {
    (!arg.is_empty()).then(|| PathBuf::from(arg))
}

fn render_path(path: Option<&PathBuf>) -> String {
    path.map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn set_bind(config: &mut Config, args: &[String]) -> Result<(), String> {
    if args.len() > MAX_BIND_ADDRS {
        return Err("Too many bind addresses specified.".to_owned());
    }
    if args.iter().all(String::is_empty) {
        // `bind ""`: no TCP or TLS listener (the Unix socket only, as Redis).
        config.bind = Vec::new();
        return Ok(());
    }
    config.bind = args
        .iter()
        .map(|a| match a.strip_prefix('-') {
            Some(addr) => BindAddr {
                addr: addr.to_owned(),
                optional: true,
            },
            None => BindAddr {
                addr: a.clone(),
                optional: false,
            },
        })
        .collect();
    Ok(())
}

fn get_bind(config: &Config) -> String {
    config
        .bind
        .iter()
        .map(|b| format!("{}{}", if b.optional { "-" } else { "" }, b.addr))
        .collect::<Vec<_>>()
        .join(" ")
}

fn set_dir(config: &mut Config, args: &[String], loading: &Loading) -> Result<(), String> {
    let dir = Path::new(&args[0]);
    // Redis chdir()s here and reports strerror; percore checks at load time and leaves
    // the chdir (or joining paths) to the server.
    if loading.from_file {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err("Not a directory".to_owned()),
            Err(e) => return Err(os_error_text(&e)),
        }
    }
    config.dir = dir.to_path_buf();
    Ok(())
}

fn set_save(config: &mut Config, args: &[String], loading: &mut Loading) -> Result<(), String> {
    const INVALID: &str = "Invalid save parameters";
    let args = if args.len() == 1 && args[0].is_empty() {
        &[][..]
    } else {
        args
    };
    if !args.len().is_multiple_of(2) {
        return Err(INVALID.to_owned());
    }
    let mut points = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks_exact(2) {
        let seconds = pair[0].parse::<i64>().map_err(|_| INVALID)?;
        let changes = pair[1].parse::<i64>().map_err(|_| INVALID)?;
        if seconds < 1 || changes < 0 {
            return Err(INVALID.to_owned());
        }
        points.push(SavePoint {
            seconds: seconds as u64,
            changes: changes as u64,
        });
    }
    // In a file several `save` lines accumulate, the first replacing the defaults;
    // CONFIG SET replaces the whole list. `save ""` clears it either way.
    if !loading.from_file || !loading.save_seen || args.is_empty() {
        config.save.clear();
    }
    loading.save_seen = true;
    config.save.extend(points);
    Ok(())
}

fn get_save(config: &Config) -> String {
    config
        .save
        .iter()
        .map(|p| format!("{} {}", p.seconds, p.changes))
        .collect::<Vec<_>>()
        .join(" ")
}

fn set_output_buffer_limits(config: &mut Config, args: &[String]) -> Result<(), String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
    }
    // Check every class before changing any, as Redis does.
    let mut parsed = Vec::with_capacity(args.len() / 4);
    for group in args.chunks_exact(4) {
        let class = group[0].to_ascii_lowercase();
        if !matches!(class.as_str(), "normal" | "replica" | "slave" | "pubsub") {
            return Err("Invalid client class specified in buffer limit configuration.".to_owned());
        }
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let limit = OutputBufferLimit {
            hard_limit_bytes: parse_memory(&group[1]).ok_or_else(bad)?,
            soft_limit_bytes: parse_memory(&group[2]).ok_or_else(bad)?,
            soft_limit_secs: group[3].parse::<u64>().map_err(|_| bad())?,
        };
        parsed.push((class, limit));
    }
    for (class, limit) in parsed {
        let limits = &mut config.client_output_buffer_limit;
        match class.as_str() {
            "normal" => limits.normal = limit,
            "pubsub" => limits.pubsub = limit,
            _ => limits.replica = limit,
        }
    }
    Ok(())
}

fn get_output_buffer_limits(config: &Config) -> String {
    let limits = &config.client_output_buffer_limit;
    // Redis 7 names the replica class "slave" in CONFIG GET.
    [
        ("normal", limits.normal),
        ("slave", limits.replica),
        ("pubsub", limits.pubsub),
    ]
    .iter()
    .map(|(class, l)| {
        format!(
            "{class} {} {} {}",
            l.hard_limit_bytes, l.soft_limit_bytes, l.soft_limit_secs
        )
    })
    .collect::<Vec<_>>()
    .join(" ")
}

fn set_percentiles(config: &mut Config, args: &[String]) -> Result<(), String> {
    let args = if args.len() == 1 && args[0].is_empty() {
        &[][..]
    } else {
        args
    };
    let mut percentiles = Vec::with_capacity(args.len());
    for arg in args {
        let p: f64 = arg
            .parse()
            .ok()
            .filter(|p: &f64| !p.is_nan())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .to_owned(),
            );
        }
        percentiles.push(p);
    }
    config.latency_tracking_info_percentiles = percentiles;
    Ok(())
}

fn get_percentiles(config: &Config) -> String {
    // Redis prints "%f" and trims trailing zeros.
    config
        .latency_tracking_info_percentiles
        .iter()
        .map(|p| {
            let text = format!("{p:.6}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `replica-ignore-maxmemory` and its alias `slave-ignore-maxmemory`: one row each.
const fn ignore_maxmemory_row(name: &'static str) -> ConfigOption {
    ConfigOption {
        name,
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.replica_ignore_maxmemory = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.replica_ignore_maxmemory),
        file_form: FileForm::Plain,
    }
}

// replication: rows over `Config::repl` (each `slave*` alias is its own row)
macro_rules! repl_bool {
    ($name:literal, $field:ident) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.repl.$field = parse_bool(&a[0])?;
                Ok(())
            },
            get: |c| render_bool(c.repl.$field),
            file_form: FileForm::Plain,
        }
    };
}
macro_rules! repl_int {
    ($name:literal, $field:ident, $min:expr, $max:expr) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.repl.$field = int(&a[0], $min, $max)?;
                Ok(())
            },
            get: |c| c.repl.$field.to_string(),
            file_form: FileForm::Plain,
        }
    };
}
macro_rules! repl_text {
    ($name:literal, $field:ident) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.repl.$field.clone_from(&a[0]);
                Ok(())
            },
            get: |c| c.repl.$field.clone(),
            file_form: FileForm::Quoted,
        }
    };
}
// TLS: rows over `Config::tls`; CONFIG SET of any of them rebuilds the TLS context
// (`crate::tls::apply_config_set`).
macro_rules! tls_text {
    ($name:literal, $field:ident) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.tls.$field.clone_from(&a[0]);
                Ok(())
            },
            get: |c| c.tls.$field.clone(),
            file_form: FileForm::Quoted,
        }
    };
}
macro_rules! tls_bool {
    ($name:literal, $field:ident) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.tls.$field = parse_bool(&a[0])?;
                Ok(())
            },
            get: |c| render_bool(c.tls.$field),
            file_form: FileForm::Plain,
        }
    };
}
macro_rules! tls_int {
    ($name:literal, $field:ident) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.tls.$field = int(&a[0], 0, INT_MAX)?;
                Ok(())
            },
            get: |c| c.tls.$field.to_string(),
            file_form: FileForm::Plain,
        }
    };
}
macro_rules! replicaof_opt {
    ($name:literal) => {
        ConfigOption {
            name: $name,
            settable: Settable::Immutable,
            multi_arg: true,
            set: |c, a, _| {
                c.repl.replicaof = crate::replication::config::parse_replicaof(a)?;
                Ok(())
            },
            get: |c| crate::replication::config::render_replicaof(c.repl.replicaof.as_ref()),
            file_form: FileForm::Plain,
        }
    };
}
/// The option table. Order is the order of CONFIG GET replies and of lines CONFIG
/// REWRITE appends.
// lists and hashes: option rows shared by a name and its `*-ziplist-*` alias
macro_rules! list_opt {
    ($name:literal) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.list_max_listpack_size = int(&a[0], i64::from(i32::MIN), i64::from(i32::MAX))?;
                Ok(())
            },
            get: |c| c.list_max_listpack_size.to_string(),
            file_form: FileForm::Plain,
        }
    };
}
macro_rules! hash_entries_opt {
    ($name:literal) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.hash_max_listpack_entries = int(&a[0], 0, i64::MAX)?;
                Ok(())
            },
            get: |c| c.hash_max_listpack_entries.to_string(),
            file_form: FileForm::Plain,
        }
    };
}
macro_rules! hash_value_opt {
    ($name:literal) => {
        ConfigOption {
            name: $name,
            settable: Settable::Runtime,
            multi_arg: false,
            set: |c, a, _| {
                c.hash_max_listpack_value = parse_memory_bounded(&a[0], 0, i64::MAX as u64)?;
                Ok(())
            },
            get: |c| c.hash_max_listpack_value.to_string(),
            file_form: FileForm::Plain,
        }
    };
}
// end lists and hashes

// Options kept by value: `kept_opt!(name, Settable, Kind)`, or with the canonical name an
// alias shares its value with: `kept_opt!(alias, canonical, Settable, Kind)`.
macro_rules! kept_opt {
    ($name:literal, $settable:ident, $($kind:tt)+) => {
        kept_opt!($name, $name, $settable, $($kind)+)
    };
    ($name:literal, $canonical:literal, $settable:ident, $($kind:tt)+) => {
        ConfigOption {
            name: $name,
            settable: Settable::$settable,
            multi_arg: kept::Kind::$($kind)+.multi_arg(),
            set: |c, a, _| {
                let text = kept::Kind::$($kind)+.parse(a)?;
                c.kept.insert($canonical, text);
                Ok(())
            },
            get: |c| kept::get(&c.kept, $canonical, kept::Kind::$($kind)+),
            file_form: if (kept::Kind::$($kind)+).quoted() {
                FileForm::Quoted
            } else {
                FileForm::Plain
            },
        }
    };
}

/// The longest `hop-spin-us` may be, in microseconds.
pub const HOP_SPIN_MAX_US: i64 = 1000;

/// percore's own immutable options (Redis has none of these names).
const PERCORE_STARTUP_ONLY: &[&str] =
    &["threads", "io-backend", "metrics-port", "cluster-databases"];

static OPTIONS: &[ConfigOption] = &[
    ConfigOption {
        name: "port",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.port = int(&a[0], 0, 65535)?;
            Ok(())
        },
        get: |c| c.port.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "bind",
        settable: Settable::Runtime,
        multi_arg: true,
        set: |c, a, _| set_bind(c, a),
        get: get_bind,
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "protected-mode",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.protected_mode = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.protected_mode),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "requirepass",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.requirepass.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.requirepass.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "aclfile",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.aclfile.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.aclfile.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "acllog-max-len",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.acllog_max_len = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.acllog_max_len.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "acl-pubsub-default",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.acl_pubsub_default_all = parse_enum(&a[0], &["allchannels", "resetchannels"])? == 0;
            Ok(())
        },
        get: |c| {
            if c.acl_pubsub_default_all {
                "allchannels".into()
            } else {
                "resetchannels".into()
            }
        },
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "threads",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.threads = int(&a[0], 0, MAX_THREADS as i64)?;
            Ok(())
        },
        get: |c| c.threads.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "io-backend",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            use percore_net::backend::IoBackend;
            c.io_backend = IoBackend::ALL[parse_enum(&a[0], &IoBackend::NAMES)?];
            Ok(())
        },
        get: |c| c.io_backend.name().to_owned(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "metrics-port",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.metrics_port = int(&a[0], 0, 65535)?;
            Ok(())
        },
        get: |c| c.metrics_port.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "hop-spin-us",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.hop_spin_us = int(&a[0], 0, HOP_SPIN_MAX_US)?;
            Ok(())
        },
        get: |c| c.hop_spin_us.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "dir",
        settable: Settable::Protected,
        multi_arg: false,
        set: |c, a, l| set_dir(c, a, l),
        get: |c| c.dir.to_string_lossy().into_owned(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "dbfilename",
        settable: Settable::Protected,
        multi_arg: false,
        set: |c, a, _| {
            if a[0].contains(['/', '\\']) {
                return Err("dbfilename can't be a path, just a filename".to_owned());
            }
            c.dbfilename.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.dbfilename.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "save",
        settable: Settable::Runtime,
        multi_arg: true,
        set: set_save,
        get: get_save,
        file_form: FileForm::Save,
    },
    ConfigOption {
        name: "rdbcompression",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.rdbcompression = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.rdbcompression),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "rdbchecksum",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.rdbchecksum = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.rdbchecksum),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "default-bgsave-method",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.default_bgsave_method = crate::snapshot::Method::parse(&a[0]).ok_or_else(|| {
                "argument(s) must be one of the following: fork, forkless".to_owned()
            })?;
            Ok(())
        },
        get: |c| c.default_bgsave_method.name().to_owned(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "rdb-key-save-delay",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.rdb_key_save_delay_us = int(&a[0], 0, i64::from(i32::MAX))?;
            Ok(())
        },
        get: |c| c.rdb_key_save_delay_us.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "forkless-max-copy-memory",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.forkless_max_copy_memory_bytes = parse_memory_bounded(&a[0], 0, u64::MAX)?;
            Ok(())
        },
        get: |c| c.forkless_max_copy_memory_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    // replication
    replicaof_opt!("replicaof"),
    replicaof_opt!("slaveof"),
    repl_text!("masterauth", masterauth),
    repl_text!("masteruser", masteruser),
    // Valkey 8's names for the two above.
    repl_text!("primaryauth", masterauth),
    repl_text!("primaryuser", masteruser),
    repl_bool!("replica-read-only", read_only),
    repl_bool!("slave-read-only", read_only),
    repl_bool!("replica-serve-stale-data", serve_stale_data),
    repl_bool!("slave-serve-stale-data", serve_stale_data),
    ConfigOption {
        name: "repl-diskless-load",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.repl.diskless_load = crate::replication::config::DisklessLoad::parse(&a[0])?;
            Ok(())
        },
        get: |c| c.repl.diskless_load.name().to_owned(),
        file_form: FileForm::Plain,
    },
    repl_bool!("repl-diskless-sync", diskless_sync),
    repl_int!(
        "repl-diskless-sync-delay",
        diskless_sync_delay_s,
        0,
        INT_MAX
    ),
    repl_int!(
        "repl-diskless-sync-max-replicas",
        diskless_sync_max_replicas,
        0,
        INT_MAX
    ),
    ConfigOption {
        name: "repl-backlog-size",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            // As Redis: at least 16 KiB (CONFIG_REPL_BACKLOG_MIN_SIZE).
            c.repl.backlog_size_bytes =
                parse_memory_bounded(&a[0], 1, i64::MAX as u64)?.max(16 * 1024);
            Ok(())
        },
        get: |c| c.repl.backlog_size_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    repl_int!("repl-backlog-ttl", backlog_ttl_s, 0, i64::MAX),
    repl_int!("repl-timeout", timeout_s, 1, INT_MAX),
    repl_int!("repl-ping-replica-period", ping_period_s, 1, INT_MAX),
    repl_int!("repl-ping-slave-period", ping_period_s, 1, INT_MAX),
    repl_int!("min-replicas-to-write", min_replicas_to_write, 0, INT_MAX),
    repl_int!("min-slaves-to-write", min_replicas_to_write, 0, INT_MAX),
    repl_int!("min-replicas-max-lag", min_replicas_max_lag_s, 0, INT_MAX),
    repl_int!("min-slaves-max-lag", min_replicas_max_lag_s, 0, INT_MAX),
    repl_int!("replica-priority", priority, 0, INT_MAX),
    repl_int!("slave-priority", priority, 0, INT_MAX),
    repl_bool!("replica-announced", announced),
    repl_bool!("repl-disable-tcp-nodelay", disable_tcp_nodelay),
    ConfigOption {
        name: "tls-port",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.tls.port = int(&a[0], 0, 65535)?;
            Ok(())
        },
        get: |c| c.tls.port.to_string(),
        file_form: FileForm::Plain,
    },
    tls_text!("tls-cert-file", cert_file),
    tls_text!("tls-key-file", key_file),
    tls_text!("tls-key-file-pass", key_file_pass),
    tls_text!("tls-client-cert-file", client_cert_file),
    tls_text!("tls-client-key-file", client_key_file),
    tls_text!("tls-client-key-file-pass", client_key_file_pass),
    tls_text!("tls-dh-params-file", dh_params_file),
    tls_text!("tls-ca-cert-file", ca_cert_file),
    tls_text!("tls-ca-cert-dir", ca_cert_dir),
    tls_text!("tls-protocols", protocols),
    tls_text!("tls-ciphers", ciphers),
    tls_text!("tls-ciphersuites", ciphersuites),
    ConfigOption {
        name: "tls-auth-clients",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            let i = parse_enum(&a[0], &crate::tls::AuthClients::NAMES)?;
            c.tls.auth_clients = crate::tls::AuthClients::from_index(i);
            Ok(())
        },
        get: |c| c.tls.auth_clients.name().to_owned(),
        file_form: FileForm::Plain,
    },
    tls_bool!("tls-prefer-server-ciphers", prefer_server_ciphers),
    tls_bool!("tls-session-caching", session_caching),
    tls_int!("tls-session-cache-size", session_cache_size),
    tls_int!("tls-session-cache-timeout", session_cache_timeout_s),
    tls_bool!("tls-replication", replication),
    tls_bool!("tls-cluster", cluster),
    ConfigOption {
        name: "maxclients",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, loading| {
            let wanted: u32 = int(&a[0], 1, i64::from(u32::MAX))?;
            if !loading.from_file && wanted > c.maxclients {
                // As Redis's updateMaxclients: raise the descriptor limit, or refuse.
                let shards = c.effective_threads(percore_net::sys::allowed_cpus().len());
                let reserved = crate::fdlimit::reserved_fds(shards, c.bind.len());
                let fits =
                    crate::fdlimit::adjust_process(wanted, reserved).map_or(1, |a| a.maxclients);
                if fits != wanted {
                    return Err(format!(
                        "The operating system is not able to handle the specified number of clients, try with {fits}"
                    ));
                }
            }
            c.maxclients = wanted;
            Ok(())
        },
        get: |c| c.maxclients.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "timeout",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.timeout_secs = int(&a[0], 0, INT_MAX)?;
            Ok(())
        },
        get: |c| c.timeout_secs.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "tcp-keepalive",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.tcp_keepalive_secs = int(&a[0], 0, INT_MAX)?;
            Ok(())
        },
        get: |c| c.tcp_keepalive_secs.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "tcp-backlog",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.tcp_backlog = int(&a[0], 0, INT_MAX)?;
            Ok(())
        },
        get: |c| c.tcp_backlog.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "loglevel",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            // `nothing` is Redis 7.2's; the error lists 7.0's names.
            c.loglevel =
                LogLevel::ALL[parse_enum_shown(&a[0], &LogLevel::NAMES, &LogLevel::NAMES[..4])?];
            Ok(())
        },
        get: |c| c.loglevel.name().to_owned(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "logfile",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.logfile = path_option(&a[0]);
            Ok(())
        },
        get: |c| render_path(c.logfile.as_ref()),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "pidfile",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.pidfile = path_option(&a[0]);
            Ok(())
        },
        get: |c| render_path(c.pidfile.as_ref()),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "databases",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.databases = int(&a[0], 1, INT_MAX)?;
            Ok(())
        },
        get: |c| c.databases.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-enabled",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_enabled = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.cluster_enabled),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-config-file",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_config_file.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.cluster_config_file.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "cluster-databases",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_databases = int(&a[0], 1, INT_MAX)?;
            Ok(())
        },
        get: |c| c.cluster_databases.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-announce-ip",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_announce_ip.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.cluster_announce_ip.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "cluster-announce-port",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_announce_port = int(&a[0], 0, 65535)?;
            Ok(())
        },
        get: |c| c.cluster_announce_port.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-announce-bus-port",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_announce_bus_port = int(&a[0], 0, 65535)?;
            Ok(())
        },
        get: |c| c.cluster_announce_bus_port.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-port",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_port = int(&a[0], 0, 65535)?;
            Ok(())
        },
        get: |c| c.cluster_port.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-require-full-coverage",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_require_full_coverage = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.cluster_require_full_coverage),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "cluster-allow-reads-when-down",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.cluster_allow_reads_when_down = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.cluster_allow_reads_when_down),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "daemonize",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            c.daemonize = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.daemonize),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "proto-max-bulk-len",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.proto_max_bulk_len_bytes =
                parse_memory_bounded(&a[0], MIN_PROTO_LIMIT_BYTES, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.proto_max_bulk_len_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    // hyperloglog
    ConfigOption {
        name: "hll-sparse-max-bytes",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.hll_sparse_max_bytes = parse_memory_bounded(&a[0], 0, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.hll_sparse_max_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    ConfigOption {
        name: "client-query-buffer-limit",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.client_query_buffer_limit_bytes =
                parse_memory_bounded(&a[0], MIN_PROTO_LIMIT_BYTES, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.client_query_buffer_limit_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    ConfigOption {
        name: "client-output-buffer-limit",
        settable: Settable::Runtime,
        multi_arg: true,
        set: |c, a, _| set_output_buffer_limits(c, a),
        get: get_output_buffer_limits,
        file_form: FileForm::OutputBufferLimits,
    },
    ConfigOption {
        name: "slowlog-log-slower-than",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.slowlog_log_slower_than_us = int(&a[0], -1, i64::MAX)?;
            Ok(())
        },
        get: |c| c.slowlog_log_slower_than_us.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "slowlog-max-len",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.slowlog_max_len = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.slowlog_max_len.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "latency-tracking",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.latency_tracking = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.latency_tracking),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "latency-tracking-info-percentiles",
        settable: Settable::Runtime,
        multi_arg: true,
        set: |c, a, _| set_percentiles(c, a),
        get: get_percentiles,
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "latency-monitor-threshold",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.latency_monitor_threshold_ms = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.latency_monitor_threshold_ms.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "busy-reply-threshold",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.busy_reply_threshold_ms = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.busy_reply_threshold_ms.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "lua-time-limit",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.busy_reply_threshold_ms = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.busy_reply_threshold_ms.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "notify-keyspace-events",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.notify_keyspace_events = crate::notify::parse_classes(&a[0])?;
            Ok(())
        },
        get: |c| crate::notify::classes_text(c.notify_keyspace_events),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "hz",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            let hz: i64 = int(&a[0], 0, INT_MAX)?;
            c.hz = hz.clamp(MIN_HZ, MAX_HZ) as u32;
            Ok(())
        },
        get: |c| c.hz.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "appendonly",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.appendonly = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.appendonly),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "appendfilename",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            if a[0].contains(['/', '\\']) {
                return Err("appendfilename can't be a path, just a filename".to_owned());
            }
            c.appendfilename.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.appendfilename.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "appenddirname",
        settable: Settable::Immutable,
        multi_arg: false,
        set: |c, a, _| {
            if a[0].contains(['/', '\\']) {
                return Err("appenddirname can't be a path, just a dirname".to_owned());
            }
            c.appenddirname.clone_from(&a[0]);
            Ok(())
        },
        get: |c| c.appenddirname.clone(),
        file_form: FileForm::Quoted,
    },
    ConfigOption {
        name: "appendfsync",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.appendfsync = crate::aof::Fsync::ALL[parse_enum_shown(
                &a[0],
                &crate::aof::Fsync::NAMES,
                &["everysec", "always", "no"],
            )?];
            Ok(())
        },
        get: |c| c.appendfsync.name().to_owned(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "aof-use-rdb-preamble",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.aof_use_rdb_preamble = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.aof_use_rdb_preamble),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "aof-load-truncated",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.aof_load_truncated = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.aof_load_truncated),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "auto-aof-rewrite-percentage",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.auto_aof_rewrite_percentage = int(&a[0], 0, INT_MAX)?;
            Ok(())
        },
        get: |c| c.auto_aof_rewrite_percentage.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "auto-aof-rewrite-min-size",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.auto_aof_rewrite_min_size_bytes = parse_memory_bounded(&a[0], 0, i64::MAX as u64)?;
            Ok(())
        },
        get: |c| c.auto_aof_rewrite_min_size_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    ConfigOption {
        name: "aof-timestamp-enabled",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.aof_timestamp_enabled = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.aof_timestamp_enabled),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "aof-rewrite-incremental-fsync",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.aof_rewrite_incremental_fsync = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.aof_rewrite_incremental_fsync),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "no-appendfsync-on-rewrite",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.no_appendfsync_on_rewrite = parse_bool(&a[0])?;
            Ok(())
        },
        get: |c| render_bool(c.no_appendfsync_on_rewrite),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "maxmemory",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.maxmemory_bytes = parse_memory_bounded(&a[0], 0, u64::MAX)?;
            Ok(())
        },
        get: |c| c.maxmemory_bytes.to_string(),
        file_form: FileForm::Memory,
    },
    ConfigOption {
        name: "maxmemory-policy",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.maxmemory_policy = MaxmemoryPolicy::ALL[parse_enum(&a[0], &MaxmemoryPolicy::NAMES)?];
            Ok(())
        },
        get: |c| c.maxmemory_policy.name().to_owned(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "maxmemory-samples",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.maxmemory_samples = int(&a[0], 1, INT_MAX)?;
            Ok(())
        },
        get: |c| c.maxmemory_samples.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "tracking-table-max-keys",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.tracking_table_max_keys = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.tracking_table_max_keys.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "maxmemory-eviction-tenacity",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.maxmemory_eviction_tenacity = int(&a[0], 0, 100)?;
            Ok(())
        },
        get: |c| c.maxmemory_eviction_tenacity.to_string(),
        file_form: FileForm::Plain,
    },
    ignore_maxmemory_row("replica-ignore-maxmemory"),
    ignore_maxmemory_row("slave-ignore-maxmemory"),
    ConfigOption {
        name: "lfu-log-factor",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.lfu_log_factor = int(&a[0], 0, INT_MAX)?;
            Ok(())
        },
        get: |c| c.lfu_log_factor.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "lfu-decay-time",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.lfu_decay_time_minutes = int(&a[0], 0, INT_MAX)?;
            Ok(())
        },
        get: |c| c.lfu_decay_time_minutes.to_string(),
        file_form: FileForm::Plain,
    },
    // sets
    ConfigOption {
        name: "set-max-intset-entries",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.set_max_intset_entries = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.set_max_intset_entries.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "set-max-listpack-entries",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.set_max_listpack_entries = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.set_max_listpack_entries.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "set-max-listpack-value",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.set_max_listpack_value = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.set_max_listpack_value.to_string(),
        file_form: FileForm::Plain,
    },
    // streams
    ConfigOption {
        name: "stream-node-max-bytes",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.stream_node_max_bytes =
                usize::try_from(parse_memory_bounded(&a[0], 0, i64::MAX as u64)?)
                    .unwrap_or(usize::MAX);
            Ok(())
        },
        get: |c| c.stream_node_max_bytes.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "stream-node-max-entries",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.stream_node_max_entries = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.stream_node_max_entries.to_string(),
        file_form: FileForm::Plain,
    },
    // sorted sets
    ConfigOption {
        name: "zset-max-listpack-entries",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.zset_max_listpack_entries = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.zset_max_listpack_entries.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "zset-max-ziplist-entries",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.zset_max_listpack_entries = int(&a[0], 0, i64::MAX)?;
            Ok(())
        },
        get: |c| c.zset_max_listpack_entries.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "zset-max-listpack-value",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.zset_max_listpack_value = memory_usize(&a[0])?;
            Ok(())
        },
        get: |c| c.zset_max_listpack_value.to_string(),
        file_form: FileForm::Plain,
    },
    ConfigOption {
        name: "zset-max-ziplist-value",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.zset_max_listpack_value = memory_usize(&a[0])?;
            Ok(())
        },
        get: |c| c.zset_max_listpack_value.to_string(),
        file_form: FileForm::Plain,
    },
    // lists and hashes (each `*-ziplist-*` alias is its own row over the same field)
    list_opt!("list-max-listpack-size"),
    list_opt!("list-max-ziplist-size"),
    ConfigOption {
        name: "list-compress-depth",
        settable: Settable::Runtime,
        multi_arg: false,
        set: |c, a, _| {
            c.list_compress_depth = int(&a[0], 0, i64::from(i32::MAX))?;
            Ok(())
        },
        get: |c| c.list_compress_depth.to_string(),
        file_form: FileForm::Plain,
    },
    hash_entries_opt!("hash-max-listpack-entries"),
    hash_entries_opt!("hash-max-ziplist-entries"),
    hash_value_opt!("hash-max-listpack-value"),
    hash_value_opt!("hash-max-ziplist-value"),
    // end lists and hashes
    // kept by value (`kept::Kind`); `DEBUG_CONFIG` options of Redis are plain rows here
    kept_opt!("activedefrag", Runtime, NoDefrag),
    kept_opt!(
        "active-defrag-cycle-max",
        Runtime,
        Int {
            min: 1,
            max: 99,
            default: 25
        }
    ),
    kept_opt!(
        "active-defrag-cycle-min",
        Runtime,
        Int {
            min: 1,
            max: 99,
            default: 1
        }
    ),
    kept_opt!(
        "active-defrag-ignore-bytes",
        Runtime,
        Memory {
            min: 1,
            max: i64::MAX as u64,
            default: 100 << 20
        }
    ),
    kept_opt!(
        "active-defrag-max-scan-fields",
        Runtime,
        Int {
            min: 1,
            max: i64::MAX,
            default: 1000
        }
    ),
    kept_opt!(
        "active-defrag-threshold-lower",
        Runtime,
        Int {
            min: 0,
            max: 1000,
            default: 10
        }
    ),
    kept_opt!(
        "active-defrag-threshold-upper",
        Runtime,
        Int {
            min: 0,
            max: 1000,
            default: 100
        }
    ),
    kept_opt!(
        "active-expire-effort",
        Runtime,
        Int {
            min: 1,
            max: 10,
            default: 1
        }
    ),
    kept_opt!("activerehashing", Runtime, Bool(true)),
    kept_opt!("always-show-logo", Immutable, Bool(false)),
    // Valkey 8: reported by HELLO as `availability_zone` when set.
    kept_opt!("availability-zone", Runtime, Text("")),
    kept_opt!("aof-disable-auto-gc", Runtime, Bool(false)),
    kept_opt!("aof_rewrite_cpulist", Immutable, Text("")),
    kept_opt!("bgsave_cpulist", Immutable, Text("")),
    kept_opt!("bio_cpulist", Immutable, Text("")),
    kept_opt!("server_cpulist", Immutable, Text("")),
    kept_opt!("bind-source-addr", Runtime, Text("")),
    kept_opt!("cluster-allow-pubsubshard-when-down", Runtime, Bool(true)),
    kept_opt!("cluster-allow-replica-migration", Runtime, Bool(true)),
    kept_opt!("cluster-announce-hostname", Runtime, Hostname),
    kept_opt!(
        "cluster-announce-tls-port",
        Runtime,
        Int {
            min: 0,
            max: 65535,
            default: 0
        }
    ),
    kept_opt!(
        "cluster-link-sendbuf-limit",
        Runtime,
        Memory {
            min: 0,
            max: u64::MAX,
            default: 0
        }
    ),
    kept_opt!(
        "cluster-migration-barrier",
        Runtime,
        Int {
            min: 0,
            max: INT_MAX,
            default: 1
        }
    ),
    kept_opt!(
        "cluster-node-timeout",
        Runtime,
        Int {
            min: 0,
            max: i64::MAX,
            default: 15000
        }
    ),
    kept_opt!(
        "cluster-preferred-endpoint-type",
        Runtime,
        Enum(kept::CLUSTER_ENDPOINT_TYPE, 0)
    ),
    kept_opt!("cluster-replica-no-failover", Runtime, Bool(false)),
    kept_opt!(
        "cluster-slave-no-failover",
        "cluster-replica-no-failover",
        Runtime,
        Bool(false)
    ),
    kept_opt!(
        "cluster-replica-validity-factor",
        Runtime,
        Int {
            min: 0,
            max: INT_MAX,
            default: 10
        }
    ),
    kept_opt!(
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
        Runtime,
        Int {
            min: 0,
            max: INT_MAX,
            default: 10
        }
    ),
    kept_opt!("crash-log-enabled", Runtime, Bool(true)),
    kept_opt!("crash-memcheck-enabled", Runtime, Bool(true)),
    kept_opt!("disable-thp", Immutable, Bool(true)),
    kept_opt!("dynamic-hz", Runtime, Bool(true)),
    kept_opt!(
        "enable-debug-command",
        Immutable,
        Enum(kept::PROTECTED_ACTION, 0)
    ),
    kept_opt!(
        "enable-module-command",
        Immutable,
        Enum(kept::PROTECTED_ACTION, 0)
    ),
    kept_opt!(
        "enable-protected-configs",
        Immutable,
        Enum(kept::PROTECTED_ACTION, 0)
    ),
    kept_opt!("ignore-warnings", Runtime, Text("")),
    kept_opt!(
        "io-threads",
        Immutable,
        Int {
            min: 1,
            max: 128,
            default: 1
        }
    ),
    kept_opt!("io-threads-do-reads", Immutable, Bool(false)),
    // Valkey 8's: its test suite's default.conf sets both (the first is hidden there).
    kept_opt!("enable-debug-assert", Immutable, Bool(false)),
    kept_opt!("hide-user-data-from-log", Runtime, Bool(true)),
    kept_opt!(
        "rdb-version-check",
        Runtime,
        Enum(kept::RDB_VERSION_CHECK, 0)
    ),
    kept_opt!("jemalloc-bg-thread", Runtime, Bool(true)),
    kept_opt!("lazyfree-lazy-eviction", Runtime, Bool(false)),
    kept_opt!("lazyfree-lazy-expire", Runtime, Bool(false)),
    kept_opt!("lazyfree-lazy-server-del", Runtime, Bool(false)),
    kept_opt!("lazyfree-lazy-user-del", Runtime, Bool(false)),
    kept_opt!("lazyfree-lazy-user-flush", Runtime, Bool(false)),
    kept_opt!(
        "maxmemory-clients",
        Runtime,
        MemoryOrPercent {
            max_percent: 100,
            max: i64::MAX
        }
    ),
    kept_opt!("oom-score-adj", Runtime, Enum(kept::OOM_SCORE_ADJ, 0)),
    kept_opt!("oom-score-adj-values", Runtime, OomValues),
    kept_opt!("proc-title-template", Runtime, ProcTitle),
    kept_opt!(
        "propagation-error-behavior",
        Runtime,
        Enum(kept::PROPAGATION_ERROR_BEHAVIOR, 0)
    ),
    kept_opt!("rdb-del-sync-files", Runtime, Bool(false)),
    kept_opt!("rdb-save-incremental-fsync", Runtime, Bool(true)),
    kept_opt!("replica-announce-ip", Runtime, Text("")),
    kept_opt!(
        "slave-announce-ip",
        "replica-announce-ip",
        Runtime,
        Text("")
    ),
    kept_opt!(
        "replica-announce-port",
        Runtime,
        Int {
            min: 0,
            max: 65535,
            default: 0
        }
    ),
    kept_opt!(
        "slave-announce-port",
        "replica-announce-port",
        Runtime,
        Int {
            min: 0,
            max: 65535,
            default: 0
        }
    ),
    kept_opt!("replica-ignore-disk-write-errors", Runtime, Bool(false)),
    kept_opt!("replica-lazy-flush", Runtime, Bool(false)),
    kept_opt!(
        "slave-lazy-flush",
        "replica-lazy-flush",
        Runtime,
        Bool(false)
    ),
    kept_opt!(
        "sanitize-dump-payload",
        Runtime,
        Enum(kept::SANITIZE_DUMP_PAYLOAD, 0)
    ),
    kept_opt!("set-proc-title", Immutable, Bool(true)),
    kept_opt!("shutdown-on-sigint", Runtime, Flags(kept::SHUTDOWN_ON_SIG)),
    kept_opt!("shutdown-on-sigterm", Runtime, Flags(kept::SHUTDOWN_ON_SIG)),
    kept_opt!(
        "shutdown-timeout",
        Runtime,
        Int {
            min: 0,
            max: INT_MAX,
            default: 10
        }
    ),
    kept_opt!(
        "socket-mark-id",
        Immutable,
        Int {
            min: 0,
            max: 4_294_967_295,
            default: 0
        }
    ),
    kept_opt!("stop-writes-on-bgsave-error", Runtime, Bool(true)),
    kept_opt!("supervised", Immutable, Enum(kept::SUPERVISED, 0)),
    kept_opt!("syslog-enabled", Immutable, Bool(false)),
    kept_opt!("syslog-facility", Immutable, Enum(kept::SYSLOG_FACILITY, 1)),
    kept_opt!("syslog-ident", Immutable, Text("redis")),
    kept_opt!(
        "tracking-table-max-keys",
        Runtime,
        Int {
            min: 0,
            max: i64::MAX,
            default: 1_000_000
        }
    ),
    kept_opt!("unixsocket", Immutable, Text("")),
    kept_opt!(
        "unixsocketperm",
        Immutable,
        Octal {
            max: 0o777,
            default: 0
        }
    ),
    // Valkey 8's cluster test options (its `start_cluster` sets both): accepted and kept,
    // no effect (percore keeps no per-slot statistics; its bus pings on its own clock).
    kept_opt!("cluster-slot-stats-enabled", Runtime, Bool(false)),
    kept_opt!(
        "cluster-ping-interval",
        Runtime,
        Int {
            min: 0,
            max: INT_MAX,
            default: 0
        }
    ),
    // hidden (Redis's `HIDDEN_CONFIG`: not in `CONFIG GET *`; tests set them)
    kept_opt!("use-exit-on-panic", Runtime, Bool(false)),
    kept_opt!(
        "key-load-delay",
        Runtime,
        Int {
            min: -2_147_483_648,
            max: INT_MAX,
            default: 0
        }
    ),
    kept_opt!(
        "watchdog-period",
        Runtime,
        Int {
            min: 0,
            max: INT_MAX,
            default: 0
        }
    ),
    kept_opt!(
        "loading-process-events-interval-bytes",
        Runtime,
        Int {
            min: 1024,
            max: INT_MAX,
            default: 2 << 20
        }
    ),
];

#[cfg(test)]
mod tests {
    use super::{
        BindAddr, Config, EMPTY_IS_UNSET, Loading, LogLevel, MaxmemoryPolicy, OPTIONS,
        OutputBufferLimit, REWRITE_ALIASES, SavePoint, Startup, find_option, load_file_contents,
        parse_command_line,
    };
    use std::path::{Path, PathBuf};

    /// A scratch directory unique to one test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("percore-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run(list: &[&str]) -> Config {
        match parse_command_line(&args(list)) {
            Ok(Startup::Run { config, .. }) => config,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    fn error(list: &[&str]) -> String {
        parse_command_line(&args(list)).unwrap_err().to_string()
    }

    fn get(config: &Config, name: &str) -> String {
        let found = config.get_matching(name.as_bytes());
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0].1.clone()
    }

    fn set(config: &mut Config, pairs: &[(&str, &str)]) -> Result<(), String> {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        config.set_many(&pairs)
    }

    fn save_points(points: &[(u64, u64)]) -> Vec<SavePoint> {
        points
            .iter()
            .map(|&(seconds, changes)| SavePoint { seconds, changes })
            .collect()
    }

    #[test]
    fn defaults_are_redis_defaults() {
        let c = Config::default();
        assert_eq!(c.port, 6379);
        assert_eq!(
            c.bind,
            [
                BindAddr {
                    addr: "*".into(),
                    optional: false
                },
                BindAddr {
                    addr: "::*".into(),
                    optional: true
                },
            ]
        );
        assert_eq!(c.save, save_points(&[(3600, 1), (300, 100), (60, 10000)]));
        assert_eq!(c.loglevel, LogLevel::Notice);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::Noeviction);
        assert_eq!(c.effective_threads(8), 8);
        assert_eq!(c.rdb_path(), Path::new("./dump.rdb"));
        assert_eq!(
            c.client_output_buffer_limit.normal,
            OutputBufferLimit {
                hard_limit_bytes: 0,
                soft_limit_bytes: 0,
                soft_limit_secs: 0
            }
        );
        // No arguments at all: the embedded defaults.
        assert_eq!(run(&[]), c);

        let expected = [
            ("port", "6379"),
            ("bind", "* -::*"),
            ("protected-mode", "yes"),
            ("requirepass", ""),
            ("aclfile", ""),
            ("acllog-max-len", "128"),
            ("acl-pubsub-default", "resetchannels"),
            ("threads", "0"),
            ("io-backend", "auto"),
            ("metrics-port", "0"),
            ("hop-spin-us", "0"),
            ("dir", "."),
            ("dbfilename", "dump.rdb"),
            ("save", "3600 1 300 100 60 10000"),
            ("rdbcompression", "yes"),
            ("rdbchecksum", "yes"),
            ("default-bgsave-method", "forkless"),
            ("forkless-max-copy-memory", "0"),
            ("replicaof", ""),
            ("slaveof", ""),
            ("masterauth", ""),
            ("masteruser", ""),
            ("primaryauth", ""),
            ("primaryuser", ""),
            ("replica-read-only", "yes"),
            ("slave-read-only", "yes"),
            ("replica-serve-stale-data", "yes"),
            ("slave-serve-stale-data", "yes"),
            ("repl-diskless-load", "disabled"),
            ("repl-diskless-sync", "yes"),
            ("repl-diskless-sync-delay", "5"),
            ("repl-diskless-sync-max-replicas", "0"),
            ("repl-backlog-size", "1048576"),
            ("repl-backlog-ttl", "3600"),
            ("repl-timeout", "60"),
            ("repl-ping-replica-period", "10"),
            ("repl-ping-slave-period", "10"),
            ("min-replicas-to-write", "0"),
            ("min-slaves-to-write", "0"),
            ("min-replicas-max-lag", "10"),
            ("min-slaves-max-lag", "10"),
            ("replica-priority", "100"),
            ("slave-priority", "100"),
            ("replica-announced", "yes"),
            ("repl-disable-tcp-nodelay", "no"),
            ("tls-port", "0"),
            ("tls-cert-file", ""),
            ("tls-key-file", ""),
            ("tls-key-file-pass", ""),
            ("tls-client-cert-file", ""),
            ("tls-client-key-file", ""),
            ("tls-client-key-file-pass", ""),
            ("tls-dh-params-file", ""),
            ("tls-ca-cert-file", ""),
            ("tls-ca-cert-dir", ""),
            ("tls-protocols", ""),
            ("tls-ciphers", ""),
            ("tls-ciphersuites", ""),
            ("tls-auth-clients", "yes"),
            ("tls-prefer-server-ciphers", "no"),
            ("tls-session-caching", "yes"),
            ("tls-session-cache-size", "20480"),
            ("tls-session-cache-timeout", "300"),
            ("tls-replication", "no"),
            ("tls-cluster", "no"),
            ("maxclients", "10000"),
            ("timeout", "0"),
            ("tcp-keepalive", "300"),
            ("tcp-backlog", "511"),
            ("loglevel", "notice"),
            ("logfile", ""),
            ("pidfile", ""),
            ("databases", "16"),
            ("cluster-enabled", "no"),
            ("cluster-config-file", "nodes.conf"),
            ("cluster-databases", "1"),
            ("cluster-announce-ip", ""),
            ("cluster-announce-port", "0"),
            ("cluster-announce-bus-port", "0"),
            ("cluster-port", "0"),
            ("cluster-require-full-coverage", "yes"),
            ("cluster-allow-reads-when-down", "no"),
            ("daemonize", "no"),
            ("proto-max-bulk-len", "536870912"),
            ("hll-sparse-max-bytes", "3000"),
            ("client-query-buffer-limit", "1073741824"),
            (
                "client-output-buffer-limit",
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            ),
            ("slowlog-log-slower-than", "10000"),
            ("slowlog-max-len", "128"),
            ("latency-tracking", "yes"),
            ("latency-tracking-info-percentiles", "50 99 99.9"),
            ("latency-monitor-threshold", "0"),
            ("busy-reply-threshold", "5000"),
            ("lua-time-limit", "5000"),
            ("notify-keyspace-events", ""),
            ("hz", "10"),
            ("appendonly", "no"),
            ("appendfilename", "appendonly.aof"),
            ("appenddirname", "appendonlydir"),
            ("appendfsync", "everysec"),
            ("aof-use-rdb-preamble", "yes"),
            ("aof-load-truncated", "yes"),
            ("auto-aof-rewrite-percentage", "100"),
            ("auto-aof-rewrite-min-size", "67108864"),
            ("aof-timestamp-enabled", "no"),
            ("aof-rewrite-incremental-fsync", "yes"),
            ("no-appendfsync-on-rewrite", "no"),
            ("maxmemory", "0"),
            ("maxmemory-policy", "noeviction"),
            ("maxmemory-samples", "5"),
            ("tracking-table-max-keys", "1000000"),
            ("maxmemory-eviction-tenacity", "10"),
            ("replica-ignore-maxmemory", "yes"),
            ("slave-ignore-maxmemory", "yes"),
            ("lfu-log-factor", "10"),
            ("lfu-decay-time", "1"),
            ("set-max-intset-entries", "512"),
            ("set-max-listpack-entries", "128"),
            ("set-max-listpack-value", "64"),
            ("stream-node-max-bytes", "4096"),
            ("stream-node-max-entries", "100"),
            ("zset-max-listpack-entries", "128"),
            ("zset-max-ziplist-entries", "128"),
            ("zset-max-listpack-value", "64"),
            ("zset-max-ziplist-value", "64"),
            // lists and hashes
            ("list-max-listpack-size", "-2"),
            ("list-max-ziplist-size", "-2"),
            ("list-compress-depth", "0"),
            ("hash-max-listpack-entries", "512"),
            ("hash-max-ziplist-entries", "512"),
            ("hash-max-listpack-value", "64"),
            ("hash-max-ziplist-value", "64"),
        ];
        let all: Vec<(&str, String)> = c.get_matching(b"*");
        let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The options kept by value follow; tests/config_differential.rs compares their
        // defaults with redis-server's.
        assert_eq!(&all[..expected.len()], &expected[..]);
    }

    #[test]
    fn file_parsing_quotes_comments_and_include() {
        let dir = scratch("file");
        let included = dir.join("extra.conf");
        std::fs::write(&included, "maxclients 77\nsave 10 20\n").unwrap();
        let main = dir.join("percore.conf");
        std::fs::write(
            &main,
            format!(
                "# a comment\n\n   PORT 7000\r\nrequirepass \"p a\\\"ss\"\n\
                 logfile '/tmp/x y.log'\nsave 900 1\ninclude {}\n\
                 save \"60 1\"\nbind 0.0.0.0 -::\nLogLevel WARNING\nmaxmemory 1GB\n\
                 client-output-buffer-limit pubsub 64mb 16mb 90\nhz 1000\n",
                included.display()
            ),
        )
        .unwrap();
        let Ok(Startup::Run {
            config: c,
            config_file,
        }) = parse_command_line(&args(&[main.to_str().unwrap()]))
        else {
            panic!("config should load")
        };
        assert_eq!(config_file.as_deref(), Some(main.as_path()));
        assert_eq!(c.port, 7000);
        assert_eq!(c.requirepass, "p a\"ss");
        assert_eq!(c.logfile.as_deref(), Some(Path::new("/tmp/x y.log")));
        assert_eq!(c.maxclients, 77);
        // The first `save` replaces the defaults, later ones (include too) accumulate.
        assert_eq!(c.save, save_points(&[(900, 1), (10, 20), (60, 1)]));
        assert_eq!(get(&c, "bind"), "0.0.0.0 -::");
        assert_eq!(c.loglevel, LogLevel::Warning);
        assert_eq!(c.maxmemory_bytes, 1 << 30);
        assert_eq!(
            c.client_output_buffer_limit.pubsub.hard_limit_bytes,
            64 << 20
        );
        assert_eq!(c.client_output_buffer_limit.normal.hard_limit_bytes, 0);
        assert_eq!(c.hz, 500, "hz is clamped as in Redis");

        // A file without `save` keeps the defaults (Redis 7).
        std::fs::write(&main, "port 7001\n").unwrap();
        let c = run(&[main.to_str().unwrap()]);
        assert_eq!(c.save, Config::default().save);
    }

    #[test]
    fn example_config_documents_every_default() {
        let example = include_str!("../percore.conf");
        let parse = |text: &str| {
            let mut config = Config::default();
            let mut loading = Loading::from_file();
            load_file_contents(
                &mut config,
                &mut loading,
                Path::new("percore.conf"),
                text.as_bytes(),
                0,
            )
            .map(|()| config)
        };
        assert_eq!(parse(example).unwrap(), Config::default());
        // Uncommenting every `# <option> <default>` line must still give the defaults,
        // and every option must be shown.
        let mut shown = Vec::new();
        let uncommented = example
            .lines()
            .map(|line| {
                let directive = line.strip_prefix("# ").filter(|rest| {
                    rest.split_once(' ')
                        .and_then(|(name, _)| find_option(name.as_bytes()))
                        .inspect(|o| shown.push(o.name))
                        .is_some()
                });
                directive.unwrap_or(line)
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(parse(&uncommented).unwrap(), Config::default());
        // The options kept by value (from `activedefrag` on) are documented in
        // docs/configuration.md instead.
        let kept_from = OPTIONS
            .iter()
            .position(|o| o.name == "activedefrag")
            .expect("the kept rows");
        for option in &OPTIONS[..kept_from] {
            assert!(
                shown.contains(&option.name),
                "percore.conf lacks {}",
                option.name
            );
        }
    }

    #[test]
    fn file_errors_name_file_line_and_reason() {
        let dir = scratch("errors");
        let path = dir.join("bad.conf");
        let path_text = path.to_str().unwrap().to_owned();
        let cases = [
            (
                "port 7000\n# ok\nmaxclients abc\n",
                3,
                "maxclients abc",
                "argument couldn't be parsed into an integer",
            ),
            (
                "foo bar\n",
                1,
                "foo bar",
                "Bad directive or wrong number of arguments",
            ),
            ("port 1 2\n", 1, "port 1 2", "wrong number of arguments"),
            (
                "  save \"60 1\n",
                1,
                "save \"60 1",
                "Unbalanced quotes in configuration line",
            ),
            ("save 60\n", 1, "save 60", "Invalid save parameters"),
            (
                "port 99999\n",
                1,
                "port 99999",
                "argument must be between 0 and 65535 inclusive",
            ),
            (
                "loglevel loud\n",
                1,
                "loglevel loud",
                "argument(s) must be one of the following: debug, verbose, notice, warning",
            ),
            (
                "protected-mode maybe\n",
                1,
                "protected-mode maybe",
                "argument must be 'yes' or 'no'",
            ),
            (
                "maxmemory 1.5gb\n",
                1,
                "maxmemory 1.5gb",
                "argument must be a memory value",
            ),
            (
                "dbfilename a/b.rdb\n",
                1,
                "dbfilename a/b.rdb",
                "dbfilename can't be a path, just a filename",
            ),
        ];
        for (contents, line_no, line, reason) in cases {
            std::fs::write(&path, contents).unwrap();
            assert_eq!(
                error(&[&path_text]),
                format!(
                    "*** FATAL CONFIG FILE ERROR (percore 0.1.0) ***\n\
                     Reading the configuration file '{path_text}', at line {line_no}\n\
                     >>> '{line}'\n{reason}"
                ),
                "{contents:?}"
            );
        }
        std::fs::write(&path, "daemonize maybe\n").unwrap();
        assert!(error(&[&path_text]).ends_with("argument must be 'yes' or 'no'"));
        std::fs::write(&path, "appendfsync sometimes\n").unwrap();
        assert!(error(&[&path_text]).contains("argument(s) must be one of the following"));

        // Errors inside an included file name that file and its line.
        let inner = dir.join("inner.conf");
        std::fs::write(&inner, "\nhz fast\n").unwrap();
        std::fs::write(&path, format!("include {}\n", inner.display())).unwrap();
        assert!(error(&[&path_text]).contains(&format!(
            "Reading the configuration file '{}', at line 2\n>>> 'hz fast'",
            inner.display()
        )));
        // An include loop stops instead of overflowing the stack.
        std::fs::write(&path, format!("include {path_text}\n")).unwrap();
        assert!(error(&[&path_text]).contains("include nesting deeper than 16 levels"));

        let missing = dir.join("missing.conf");
        assert_eq!(
            error(&[missing.to_str().unwrap()]),
            format!(
                "Fatal error, can't open config file '{}': No such file or directory",
                missing.display()
            )
        );
    }

    #[test]
    fn command_line_overrides_the_file() {
        let dir = scratch("cli");
        let path = dir.join("percore.conf");
        std::fs::write(&path, "port 7000\nsave 900 1\nmaxclients 5\n").unwrap();
        let file = path.to_str().unwrap();

        let c = run(&[file, "--port", "7001", "--save", ""]);
        assert_eq!((c.port, c.maxclients), (7001, 5));
        assert!(c.save.is_empty(), "--save '' disables snapshots");

        let c = run(&[
            "--save",
            "60 1",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--maxclients",
            "9",
        ]);
        assert_eq!(c.save, save_points(&[(60, 1)]));
        assert_eq!(get(&c, "bind"), "127.0.0.1 -::1");
        assert_eq!(c.maxclients, 9);

        // Like redis-server: file `save` lines and flag `save` lines accumulate.
        let c = run(&[file, "--save", "60 1"]);
        assert_eq!(c.save, save_points(&[(900, 1), (60, 1)]));

        // A bare --save, last or before another --name, means save "".
        assert!(run(&["--save"]).save.is_empty());
        let c = run(&["--save", "--port", "7002"]);
        assert!(c.save.is_empty());
        assert_eq!(c.port, 7002);
        // Name and value in one argument.
        assert_eq!(run(&["--port 7003"]).port, 7003);
        // A value may start with "--" right after its name.
        assert_eq!(run(&["--requirepass", "--secret"]).requirepass, "--secret");

        assert_eq!(
            error(&["--port", "7000", "--maxclients", "abc"]),
            "*** FATAL CONFIG FILE ERROR (percore 0.1.0) ***\n\
             Reading the command line options, at option 2\n\
             >>> 'maxclients \"abc\"'\n\
             argument couldn't be parsed into an integer"
        );
        assert!(error(&["--nosuch", "1"]).ends_with("Bad directive or wrong number of arguments"));
        assert!(error(&["--daemonize", "maybe"]).contains("argument must be 'yes' or 'no'"));

        for flag in ["-v", "--version"] {
            let Ok(Startup::PrintAndExit(text)) = parse_command_line(&args(&[flag])) else {
                panic!("{flag} prints")
            };
            assert!(text.starts_with("percore v=0.1.0 "), "{text}");
        }
        for flag in ["-h", "--help"] {
            let Ok(Startup::PrintAndExit(text)) = parse_command_line(&args(&[flag])) else {
                panic!("{flag} prints")
            };
            assert!(text.starts_with("Usage: percore-server"), "{text}");
        }
    }

    #[test]
    fn config_get_patterns() {
        let c = Config::default();
        let names = |pattern: &str| -> Vec<&'static str> {
            c.get_matching(pattern.as_bytes())
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(
            names("*max*"),
            [
                "acllog-max-len",
                "forkless-max-copy-memory",
                "repl-diskless-sync-max-replicas",
                "min-replicas-max-lag",
                "min-slaves-max-lag",
                "maxclients",
                "proto-max-bulk-len",
                "hll-sparse-max-bytes",
                "slowlog-max-len",
                "maxmemory",
                "maxmemory-policy",
                "maxmemory-samples",
                "tracking-table-max-keys",
                "maxmemory-eviction-tenacity",
                "replica-ignore-maxmemory",
                "slave-ignore-maxmemory",
                "set-max-intset-entries",
                "set-max-listpack-entries",
                "set-max-listpack-value",
                "stream-node-max-bytes",
                "stream-node-max-entries",
                "zset-max-listpack-entries",
                "zset-max-ziplist-entries",
                "zset-max-listpack-value",
                "zset-max-ziplist-value",
                // lists and hashes
                "list-max-listpack-size",
                "list-max-ziplist-size",
                "hash-max-listpack-entries",
                "hash-max-ziplist-entries",
                "hash-max-listpack-value",
                "hash-max-ziplist-value",
                "active-defrag-cycle-max",
                "active-defrag-max-scan-fields",
                "maxmemory-clients",
                "tracking-table-max-keys",
            ]
        );
        assert_eq!(names("MAXCLIENTS"), ["maxclients"]);
        assert_eq!(names("port"), ["port"]);
        assert_eq!(
            names("rdb*"),
            [
                "rdbcompression",
                "rdbchecksum",
                "rdb-version-check",
                "rdb-del-sync-files",
                "rdb-save-incremental-fsync"
            ]
        );
        assert_eq!(names("latency-tracking*").len(), 2);
        assert!(names("nosuch").is_empty());
        assert!(names("max").is_empty(), "no glob, no prefix match");
        assert_eq!(get(&c, "client-query-buffer-limit"), "1073741824");
    }

    #[test]
    fn config_set_applies_renders_and_validates() {
        let mut c = Config::default();
        set(
            &mut c,
            &[("maxmemory", "100mb"), ("MAXMEMORY-POLICY", "ALLKEYS-LRU")],
        )
        .unwrap();
        assert_eq!(get(&c, "maxmemory"), "104857600", "sizes render as bytes");
        assert_eq!(get(&c, "maxmemory-policy"), "allkeys-lru");
        set(&mut c, &[("maxmemory", "100k")]).unwrap();
        assert_eq!(c.maxmemory_bytes, 100_000);
        set(&mut c, &[("save", "10 20 30 40")]).unwrap();
        assert_eq!(
            c.save,
            save_points(&[(10, 20), (30, 40)]),
            "CONFIG SET save replaces"
        );
        set(&mut c, &[("save", "")]).unwrap();
        assert!(c.save.is_empty());
        set(
            &mut c,
            &[("client-output-buffer-limit", "normal 1mb 2k 3 slave 1 2 3")],
        )
        .unwrap();
        assert_eq!(
            get(&c, "client-output-buffer-limit"),
            "normal 1048576 2000 3 slave 1 2 3 pubsub 33554432 8388608 60"
        );
        set(
            &mut c,
            &[("latency-tracking-info-percentiles", "1.5 99.99 100 0")],
        )
        .unwrap();
        assert_eq!(
            get(&c, "latency-tracking-info-percentiles"),
            "1.5 99.99 100 0"
        );
        set(&mut c, &[("hz", "0")]).unwrap();
        assert_eq!(c.hz, 1);
        set(&mut c, &[("appendonly", "no"), ("requirepass", "s3cret")]).unwrap();
        assert_eq!(c.requirepass, "s3cret");

        let failed = |name: &str, reason: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")
        };
        let cases: [(&[(&str, &str)], String); 14] = [
            (
                &[("foo", "bar")],
                "ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into(),
            ),
            (
                &[("databases", "7")],
                failed("databases", "can't set immutable config"),
            ),
            (
                &[("Daemonize", "no")],
                failed("Daemonize", "can't set immutable config"),
            ),
            (
                &[("dir", "/tmp")],
                failed("dir", "can't set protected config"),
            ),
            (
                &[("maxclients", "abc")],
                failed("maxclients", "argument couldn't be parsed into an integer"),
            ),
            (
                &[("MAXCLIENTS", "abc")],
                failed("maxclients", "argument couldn't be parsed into an integer"),
            ),
            (
                &[("maxclients", "0")],
                failed(
                    "maxclients",
                    "argument must be between 1 and 4294967295 inclusive",
                ),
            ),
            (
                &[("maxclients", "10"), ("MAXCLIENTS", "3")],
                failed("MAXCLIENTS", "duplicate parameter"),
            ),
            (
                &[("maxmemory", "12zz")],
                failed("maxmemory", "argument must be a memory value"),
            ),
            (
                &[("proto-max-bulk-len", "1")],
                failed(
                    "proto-max-bulk-len",
                    "argument must be between 1048576 and 9223372036854775807 inclusive",
                ),
            ),
            (
                &[("save", "60 1  300 2")],
                failed("save", "Invalid save parameters"),
            ),
            (
                &[("client-output-buffer-limit", "master 1 2 3")],
                failed(
                    "client-output-buffer-limit",
                    "Invalid client class specified in buffer limit configuration.",
                ),
            ),
            (
                &[("latency-tracking-info-percentiles", "101")],
                failed(
                    "latency-tracking-info-percentiles",
                    "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
                ),
            ),
            (
                &[("loglevel", "loud")],
                failed(
                    "loglevel",
                    "argument(s) must be one of the following: debug, verbose, notice, warning",
                ),
            ),
        ];
        for (pairs, expected) in cases {
            let before = c.clone();
            assert_eq!(set(&mut c, pairs).unwrap_err(), expected, "{pairs:?}");
            assert_eq!(c, before);
        }
    }

    #[test]
    fn percore_startup_options_take_only_their_current_value() {
        let mut c = Config::default();
        let same: &[(&[u8], &[u8])] = &[(b"threads", b"0"), (b"io-backend", b"auto")];
        assert_eq!(c.set_many(same), Ok(()));
        let other: &[(&[u8], &[u8])] = &[(b"threads", b"2")];
        assert_eq!(
            c.set_many(other),
            Err("ERR CONFIG SET failed (possibly related to argument 'threads') - can't set immutable config".into())
        );
        // Redis's own immutable options refuse even their current value.
        let redis: &[(&[u8], &[u8])] = &[(b"databases", b"16")];
        assert!(c.set_many(redis).is_err());
    }

    #[test]
    fn config_set_is_all_or_nothing() {
        let mut c = Config::default();
        let before = c.clone();
        let err = set(
            &mut c,
            &[
                ("maxclients", "50"),
                ("save", "1 1"),
                ("timeout", "-1"),
                ("hz", "20"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
        );
        assert_eq!(c, before, "one bad value changes nothing");
        set(
            &mut c,
            &[("maxclients", "50"), ("save", "1 1"), ("hz", "20")],
        )
        .unwrap();
        assert_eq!((c.maxclients, c.hz), (50, 20));
        assert_eq!(c.save, save_points(&[(1, 1)]));
    }

    #[test]
    fn rewrite_round_trips_and_keeps_the_file_shape() {
        let dir = scratch("rewrite");
        let path = dir.join("percore.conf");
        std::fs::write(
            &path,
            "# percore test config\nport 7000\n\n# snapshots\nsave 900 1\nsave 300 10\n\
             include /dev/null\nmaxclients 10000\n",
        )
        .unwrap();
        let file = path.to_str().unwrap().to_owned();
        let mut c = run(&[&file, "--requirepass", "a \"quoted\" pass"]);
        set(
            &mut c,
            &[
                ("save", "60 1"),
                ("maxmemory", "1gb"),
                ("proto-max-bulk-len", "1000000000"),
                ("client-output-buffer-limit", "normal 1gb 512mb 0"),
                ("latency-tracking-info-percentiles", ""),
                ("loglevel", "debug"),
            ],
        )
        .unwrap();
        c.rewrite(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# percore test config\nport 7000\n\n# snapshots\nsave 60 1\n\ninclude /dev/null\n\
             maxclients 10000\n# Generated by CONFIG REWRITE\nrequirepass \"a \\\"quoted\\\" pass\"\n\
             loglevel debug\nproto-max-bulk-len 1000000000\n\
             client-output-buffer-limit normal 1gb 512mb 0\nlatency-tracking-info-percentiles \"\"\n\
             maxmemory 1gb\n"
        );
        assert_eq!(
            run(&[&file]),
            c,
            "rewrite then re-parse gives the same config"
        );

        // Rewriting again changes nothing; an absent file is created.
        c.rewrite(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let fresh = dir.join("new.conf");
        let mut c = Config::default();
        set(&mut c, &[("save", ""), ("timeout", "30")]).unwrap();
        c.rewrite(&fresh).unwrap();
        assert_eq!(
            std::fs::read_to_string(&fresh).unwrap(),
            "# Generated by CONFIG REWRITE\nsave \"\"\ntimeout 30\n"
        );
        assert_eq!(run(&[fresh.to_str().unwrap()]), c);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .collect();
        assert!(leftovers.is_empty(), "no temporary files left behind");
    }

    #[test]
    fn force_all_rewrite_writes_canonical_names_and_loads_back() {
        for (alias, canonical) in REWRITE_ALIASES {
            assert!(find_option(alias.as_bytes()).is_some(), "{alias} is a row");
            assert!(
                find_option(canonical.as_bytes()).is_some(),
                "{canonical} is a row"
            );
        }
        for name in EMPTY_IS_UNSET {
            assert!(find_option(name.as_bytes()).is_some(), "{name} is a row");
        }
        let dir = scratch("rewrite-force-all");
        let path = dir.join("percore.conf");
        // A primary: no `replicaof ""` (which would not load), no alias rows.
        std::fs::write(&path, "port 7001\nslave-read-only no\n").unwrap();
        let file = path.to_str().unwrap().to_owned();
        let c = run(&[&file]);
        c.rewrite_with(&path, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("port 7001\nreplica-read-only no\n"),
            "{text}"
        );
        for line in text.lines() {
            let name = line.split(' ').next().unwrap();
            assert!(
                !REWRITE_ALIASES.iter().any(|(alias, _)| *alias == name),
                "alias written: {line}"
            );
            assert!(
                !(EMPTY_IS_UNSET.contains(&name) && line.ends_with(" \"\"")),
                "unset option written: {line}"
            );
        }
        // Every option reads the same (the loaded config holds defaults explicitly).
        let values = |c: &Config| -> Vec<(&str, String)> {
            OPTIONS.iter().map(|o| (o.name, (o.get)(c))).collect()
        };
        assert_eq!(
            values(&run(&[&file])),
            values(&c),
            "force-all rewrite then re-parse"
        );

        // A replica named by the alias keeps its line, under the canonical name.
        std::fs::write(&path, "# top\nslaveof 10.0.0.1 6380\n").unwrap();
        let c = run(&[&file]);
        c.rewrite_with(&path, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# top\nreplicaof 10.0.0.1 6380\n"),
            "{text}"
        );
        assert_eq!(text.matches("replicaof").count(), 1, "{text}");
        assert_eq!(values(&run(&[&file])), values(&c));
    }
}
