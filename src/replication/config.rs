//! The replication options (Redis 7.0's names, defaults and ranges); their rows are in
//! the option table (`crate::config`).

/// `repl-diskless-load`: how a replica loads a full sync's RDB (see the README: percore
/// always keeps serving the old data while the new one loads, and swaps it in at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisklessLoad {
    Disabled,
    OnEmptyDb,
    SwapDb,
}

impl DisklessLoad {
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::OnEmptyDb => "on-empty-db",
            Self::SwapDb => "swapdb",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "disabled" => Ok(Self::Disabled),
            "on-empty-db" => Ok(Self::OnEmptyDb),
            "swapdb" => Ok(Self::SwapDb),
            _ => Err(
                "argument(s) must be one of the following: disabled, on-empty-db, swapdb".into(),
            ),
        }
    }
}

/// The primary a `replicaof` line names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Primary {
    pub host: String,
    pub port: u16,
}

/// Replication settings, part of [`crate::config::Config`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReplConfig {
    /// `replicaof` (alias `slaveof`): the primary at start-up.
    pub replicaof: Option<Primary>,
    /// `masterauth`, `masteruser`: credentials for the primary (AUTH during the handshake).
    pub masterauth: String,
    pub masteruser: String,
    /// `replica-read-only` (alias `slave-read-only`).
    pub read_only: bool,
    /// `replica-serve-stale-data` (alias `slave-serve-stale-data`).
    pub serve_stale_data: bool,
    pub diskless_load: DisklessLoad,
    /// `repl-diskless-sync`: full syncs to replicas streamed without a file.
    pub diskless_sync: bool,
    pub diskless_sync_delay_s: u32,
    pub diskless_sync_max_replicas: u32,
    /// `repl-backlog-size`, bytes.
    pub backlog_size_bytes: u64,
    pub backlog_ttl_s: u64,
    /// `repl-timeout`, seconds.
    pub timeout_s: u32,
    /// `repl-ping-replica-period` (alias `repl-ping-slave-period`), seconds.
    pub ping_period_s: u32,
    /// `min-replicas-to-write`, `min-replicas-max-lag` (aliases `min-slaves-*`).
    pub min_replicas_to_write: u32,
    pub min_replicas_max_lag_s: u32,
    /// `replica-priority` (alias `slave-priority`), `replica-announced`.
    pub priority: u32,
    pub announced: bool,
    pub disable_tcp_nodelay: bool,
}

impl Default for ReplConfig {
    fn default() -> Self {
        Self {
            replicaof: None,
            masterauth: String::new(),
            masteruser: String::new(),
            read_only: true,
            serve_stale_data: true,
            diskless_load: DisklessLoad::Disabled,
            diskless_sync: true,
            diskless_sync_delay_s: 5,
            diskless_sync_max_replicas: 0,
            backlog_size_bytes: 1024 * 1024,
            backlog_ttl_s: 3600,
            timeout_s: 60,
            ping_period_s: 10,
            min_replicas_to_write: 0,
            min_replicas_max_lag_s: 10,
            priority: 100,
            announced: true,
            disable_tcp_nodelay: false,
        }
    }
}

/// Parses `replicaof host port` (the file form; `no one` clears it).
pub fn parse_replicaof(args: &[String]) -> Result<Option<Primary>, String> {
    match args {
        [a, b] if a.eq_ignore_ascii_case("no") && b.eq_ignore_ascii_case("one") => Ok(None),
        [host, port] => {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p: &u16| p > 0)
                .ok_or_else(|| "Invalid master port".to_owned())?;
            Ok(Some(Primary {
                host: host.clone(),
                port,
            }))
        }
        _ => Err("wrong number of arguments".into()),
    }
}

pub fn render_replicaof(p: Option<&Primary>) -> String {
    p.map(|p| format!("{} {}", p.host, p.port))
        .unwrap_or_default()
}
