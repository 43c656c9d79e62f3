//! percore: a Redis/Valkey-compatible in-memory key-value server, one pinned shard thread
//! per core, each with its own io_uring. The binary `percore-server` (src/main.rs) calls
//! [`main`]; the library exists so that fuzz targets (fuzz/) reach the pure parts through
//! [`fuzzing`]. Everything else stays private to the crate.

mod acl;
mod alloc;
mod aof;
mod atomic;
mod blocking;
mod client;
mod client_mem;
mod cluster;
mod commands;
mod config;
mod crash;
mod evict;
mod expire;
mod fdlimit;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
mod latency;
mod listen;
mod metrics;
mod migrate;
mod misconf;
mod monitor;
mod notify;
mod pause;
mod prefetch;
mod propagate;
mod pubsub;
mod replication;
mod scripting;
mod server;
mod shard;
mod snapshot;
mod stats;
mod tls;
mod tracking;

use config::Startup;
use percore_net::reactor::Shared;
use percore_net::sys;
use server::{Log, LogLevel, ServerShared};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

/// The server's entry point: parses the command line and runs until SHUTDOWN or a signal.
pub fn main() -> ExitCode {
    // A panic is a broken invariant: crash the whole process (as Redis's assert does) rather
    // than leave a dead shard whose keys and connections hang while the others run on.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        if crash::hook_defers(info) {
            // A command was running: its guard writes the crash report, then aborts.
            return;
        }
        eprintln!("percore: a shard thread panicked; aborting");
        std::process::abort();
    }));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, config_file) = match config::parse_command_line(&args) {
        Ok(Startup::Run {
            config,
            config_file,
        }) => (config, config_file),
        Ok(Startup::PrintAndExit(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match run(config, config_file) {
        Ok(()) => ExitCode::SUCCESS,
        // Empty: already in the log.
        Err(msg) if msg.is_empty() => ExitCode::FAILURE,
        Err(msg) => {
            eprintln!("percore: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn open_log(config: &config::Config) -> Result<Log, String> {
    let sink: Box<dyn std::io::Write + Send> = match &config.logfile {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("Can't open the log file {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    Ok(Log::new(sink, config.loglevel))
}

/// Binds one listener per shard on every bind address (`SO_REUSEPORT`). Port 0 picks a free
/// port once and reuses it for every shard. A port another process listens on stops
/// start-up with Redis's messages, even when that process is another percore of the same
/// user (see `sys::probe_port_free`). Left open: a second server binding in the
/// microseconds between this probe and the shards' binds would still share the port.
fn bind_all(
    config: &config::Config,
    shards: usize,
    log: &Log,
) -> Result<(Vec<Vec<RawFd>>, u16, usize), String> {
    let mut per_shard: Vec<Vec<RawFd>> = vec![Vec::new(); shards];
    // The Unix socket first: listener indexes from `first_tls` on are TLS ones.
    if let Some(path) = config.unixsocket() {
        listen_unix(path, config.unixsocketperm(), &mut per_shard).map_err(|e| {
            log.log(
                LogLevel::Warning,
                &format!("Failed opening Unix socket: {e}"),
            );
            String::new()
        })?;
    }
    // As Redis: `port 0` with a `tls-port` means TLS only (without one, percore's port 0
    // is a port the kernel picks).
    let plain = config.port != 0 || config.tls.port == 0;
    let mut port = config.port;
    if plain {
        bind_port(config, &mut port, &mut per_shard, log, true)?;
    }
    let first_tls = per_shard[0].len();
    if config.tls.port != 0 {
        let mut tls_port = config.tls.port;
        bind_port(config, &mut tls_port, &mut per_shard, log, true)?;
        if !plain {
            port = 0;
        }
    }
    if per_shard[0].is_empty() {
        return Err("Failed listening on any address".into());
    }
    Ok((per_shard, port, first_tls))
}

/// Listens on the Unix socket `path` (an old socket file there is removed first, as
/// Redis does), with mode `perm` when not 0; every shard accepts on its own duplicate of
/// the one listening socket (Unix sockets have no `SO_REUSEPORT` spreading).
fn listen_unix(path: &str, perm: u32, per_shard: &mut [Vec<RawFd>]) -> Result<(), String> {
    use std::os::fd::IntoRawFd;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("bind: {}", config::os_error_public(&e)))?;
    if perm != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
            .map_err(|e| format!("chmod: {}", config::os_error_public(&e)))?;
    }
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut fds = Vec::with_capacity(per_shard.len());
    for _ in 1..per_shard.len() {
        fds.push(
            listener
                .try_clone()
                .map_err(|e| e.to_string())?
                .into_raw_fd(),
        );
    }
    fds.push(listener.into_raw_fd());
    for (shard, fd) in per_shard.iter_mut().zip(fds) {
        shard.push(fd);
    }
    Ok(())
}

/// Binds `port` on every `bind` address, one listener per shard each. `probe`: first make
/// sure no other socket listens there (not for a port this server listens on already, at
/// CONFIG SET).
pub(crate) fn bind_port(
    config: &config::Config,
    port: &mut u16,
    per_shard: &mut [Vec<RawFd>],
    log: &Log,
    probe: bool,
) -> Result<(), String> {
    let shards = per_shard.len();
    for bind in &config.bind {
        // Redis's wildcards, as in its default `bind * -::*`.
        let ip: IpAddr = match bind.addr.as_str() {
            "*" => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            "::*" => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            a => a
                .parse()
                .map_err(|_| format!("Invalid bind address '{}'", bind.addr))?,
        };
        let mut fds = Vec::new();
        let mut failed = if probe {
            sys::probe_port_free(&SocketAddr::new(ip, *port))
                .map(|p| *port = p)
                .err()
        } else {
            None
        };
        for _ in 0..shards {
            if failed.is_some() {
                break;
            }
            match sys::listen_reuseport(
                &SocketAddr::new(ip, *port),
                i32::try_from(config.tcp_backlog).unwrap_or(511),
            ) {
                Ok(fd) => fds.push(fd),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            None => {
                for (s, fd) in fds.into_iter().enumerate() {
                    per_shard[s].push(fd);
                }
            }
            Some(e) => {
                for fd in fds {
                    sys::close(fd);
                }
                log.log(
                    LogLevel::Warning,
                    &format!(
                        "Warning: Could not create server TCP listening socket {}:{port}: bind: {}",
                        bind.addr,
                        sys::strerror(&e)
                    ),
                );
                // As Redis: an optional address that does not exist here, or an address
                // family the host lacks, is skipped; anything else (a port in use) stops.
                let errno = e.raw_os_error().unwrap_or(0);
                let skip = (bind.optional && errno == libc::EADDRNOTAVAIL)
                    || matches!(
                        errno,
                        libc::ENOPROTOOPT
                            | libc::EPROTONOSUPPORT
                            | libc::ESOCKTNOSUPPORT
                            | libc::EPFNOSUPPORT
                            | libc::EAFNOSUPPORT
                            | libc::EADDRNOTAVAIL
                    );
                if skip {
                    continue;
                }
                for fds in per_shard.iter_mut() {
                    for fd in fds.drain(..) {
                        sys::close(fd);
                    }
                }
                return Err(format!("Failed listening on port {port} (TCP), aborting."));
            }
        }
    }
    Ok(())
}

/// Removes temp files a crash left behind and loads `dir/dbfilename` if it exists, one
/// keyspace per shard. A corrupt or truncated file stops start-up (and stays as it is).
fn load_dataset(
    shared: &Arc<ServerShared>,
    shards: usize,
) -> Result<Vec<percore_engine::keyspace::Keyspace>, String> {
    let cfg = shared.config();
    snapshot::remove_stale(shared, &cfg.dir);
    let path = cfg.rdb_path();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let now_ms = percore_net::reactor::unix_ms();
    let mut functions = Vec::new();
    let (keyspaces, stats) = snapshot::load::load_file(
        &path,
        shards,
        cfg.keyspace_databases(),
        cfg.cluster_enabled,
        now_ms,
        server::random_seed(),
        &commands::zsets::zset_limits(&cfg),
        &mut functions,
        |l| shared.notice(l),
    )
    .map_err(|e| format!("Fatal error loading the DB: {e}. Exiting."))?;
    scripting::install_loaded(shared, &functions)
        .map_err(|e| format!("Fatal error loading the DB: {e}. Exiting."))?;
    {
        let mut st = shared.persist.lock().expect("persist lock");
        st.last_load_keys_loaded = stats.keys_loaded;
        st.last_load_keys_expired = stats.keys_expired;
    }
    for (i, ks) in keyspaces.iter().enumerate() {
        shared.changes[i].store(ks.changes(), Ordering::Relaxed);
        shared.saved_changes[i].store(ks.changes(), Ordering::Relaxed);
    }
    shared.notice(&format!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        stats.keys_loaded, stats.keys_expired
    ));
    shared.notice(&format!(
        "DB loaded from disk: {:.3} seconds",
        stats.elapsed.as_secs_f64()
    ));
    Ok(keyspaces)
}

/// Redis's `redisAsciiArt`: with `always-show-logo` (or a terminal on stdout) a line with
/// the mode, port and `PID: <pid>` (what test frameworks wait for), else `Running mode=`.
/// Then `oom-score-adj`, applied as Redis does at start-up.
fn startup_banner(shared: &ServerShared, port: u16) {
    use std::io::IsTerminal;
    let cfg = shared.config();
    let mode = if cfg.cluster_enabled {
        "cluster"
    } else {
        "standalone"
    };
    let port = if port != 0 { port } else { cfg.tls.port };
    let logo = cfg.always_show_logo() || (cfg.logfile.is_none() && std::io::stdout().is_terminal());
    if logo {
        shared.notice(&format!(
            "percore {} (Redis {} compatible) {} bits, running in {mode} mode, Port: {port}, PID: {}",
            server::VERSION,
            server::REDIS_COMPAT_VERSION,
            usize::BITS,
            std::process::id()
        ));
    } else {
        shared.notice(&format!("Running mode={mode}, port={port}."));
    }
    let class = if cfg.repl.replicaof.is_some() {
        config::kept::OOM_REPLICA
    } else {
        config::kept::OOM_PRIMARY
    };
    if let Err(e) = config::kept::apply_oom_score_adj(&cfg, class) {
        shared.warning(&e);
    }
}

fn run(config: config::Config, config_file: Option<std::path::PathBuf>) -> Result<(), String> {
    if config.daemonize {
        sys::daemonize().map_err(|e| format!("daemonize: {e}"))?;
    }
    let log = open_log(&config)?;
    let cpus = sys::allowed_cpus();
    let shards = config.effective_threads(cpus.len()).max(1);

    // Fit maxclients to the descriptor limit (raise it, or lower maxclients), as Redis.
    let mut config = config;
    let reserved = fdlimit::reserved_fds(shards, config.bind.len());
    match fdlimit::adjust_process(config.maxclients, reserved) {
        Ok(adjusted) => {
            for (level, line) in &adjusted.log {
                log.log(*level, line);
            }
            config.maxclients = adjusted.maxclients;
        }
        Err(fatal) => {
            log.log(LogLevel::Warning, &fatal);
            return Err(String::new());
        }
    }

    // The reactor backend: with `io-backend io_uring`, fail early with the cause when
    // io_uring cannot be used; `auto` falls back to epoll then (logged below).
    let backend = percore_net::backend::choose(config.io_backend).map_err(|e| e.to_string())?;
    let features = match &backend {
        percore_net::backend::Chosen::IoUring(f) => f.to_string(),
        percore_net::backend::Chosen::Epoll { .. } => String::new(),
    };
    let signal_fd = sys::block_shutdown_signals().map_err(|e| format!("signalfd: {e}"))?;
    // TLS is configured before listening; a bad certificate stops start-up (Redis's
    // `tlsConfigure` lines).
    let tls_context = if config.tls.active() {
        match tls::build_server_config(&config.tls) {
            Ok(c) => Some(c),
            Err(line) => {
                log.log(LogLevel::Warning, &line);
                log.log(
                    LogLevel::Warning,
                    "Failed to configure TLS. Check logs for more info.",
                );
                return Err(String::new());
            }
        }
    } else {
        None
    };
    let (listeners, port, first_tls) = match bind_all(&config, shards, &log) {
        Ok(bound) => bound,
        Err(msg) => {
            log.log(LogLevel::Warning, &msg);
            return Err(String::new());
        }
    };

    let pidfile = config.pidfile.clone();
    if let Some(p) = &pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| format!("Failed to write PID file {}: {e}", p.display()))?;
    }
    let tls_port = config.tls.port;
    let shared = ServerShared::new(config, config_file, log, shards, port, features.clone());
    shared.set_io_backend(backend.name());
    shared.tls.set_first_listener(first_tls);
    if let Some(c) = tls_context {
        shared.tls.install(c);
    }
    shared.notice("oO0OoO0OoO0Oo percore is starting oO0OoO0OoO0Oo");
    shared.notice(&format!(
        "percore version={}, redis_version={}, bits=64, pid={}, threads={shards}, port={port}, io backend: {}",
        server::VERSION,
        server::REDIS_COMPAT_VERSION,
        std::process::id(),
        match &backend {
            percore_net::backend::Chosen::IoUring(_) => format!("io_uring ({features})"),
            percore_net::backend::Chosen::Epoll { .. } => "epoll".to_owned(),
        }
    ));
    if let percore_net::backend::Chosen::Epoll { why: Some(why) } = &backend {
        shared.warning(&format!(
            "io-backend auto: {why}; running on the epoll backend"
        ));
    }
    if let Some(f) = &shared.config_file {
        shared.notice(&format!("Configuration loaded from {}", f.display()));
    }
    startup_banner(&shared, port);
    // Valkey's test framework waits for this line after the banner's `PID:`.
    shared.notice("Server initialized");

    // Users: the `user` lines or the ACL file (Redis's `ACLLoadUsersAtStartup`).
    {
        let cfg = shared.config();
        if let Err(e) = acl::file::load_at_startup(
            &shared.acl,
            &cfg.aclfile,
            &cfg.users,
            cfg.acl_pubsub_default_all,
        ) {
            shared.warning(&e);
            return Err(String::new());
        }
    }

    // Cluster mode: nodes.conf before the data (a corrupt file stops here), then the
    // slots the loaded keys belong to.
    cluster::start(&shared)?;
    let mut keyspaces = match aof::start(&shared, shards)? {
        Some(k) => k,
        None => load_dataset(&shared, shards)?,
    };
    cluster::adopt_loaded_keys(&shared, &mut keyspaces)?;
    let mut loaded = keyspaces.into_iter();
    let metrics_port = shared.config().metrics_port;
    if metrics_port != 0 {
        metrics::http::spawn(Arc::clone(&shared), metrics_port)?;
        shared.notice(&format!(
            "Metrics endpoint listening on http://127.0.0.1:{metrics_port}/metrics"
        ));
    }

    let net: Arc<Shared<shard::Msg>> = Arc::new(Shared::new(shards));
    let mut handles = Vec::new();
    for (id, fds) in listeners.into_iter().enumerate() {
        let keyspace = loaded.next();
        let net = Arc::clone(&net);
        let shared = Arc::clone(&shared);
        // PERCORE_NO_PIN=1 leaves shard threads unpinned (for comparisons).
        let cpu = if std::env::var_os("PERCORE_NO_PIN").is_some_and(|v| v == "1") {
            None
        } else {
            cpus.get(id % cpus.len().max(1)).copied()
        };
        let sig = (id == 0).then_some(signal_fd);
        let backend = backend.clone();
        let handle = std::thread::Builder::new()
            .name(format!("percore-shard-{id}"))
            .spawn(move || -> Result<(), String> {
                if let Some(cpu) = cpu
                    && let Err(e) = sys::pin_to_cpu(cpu)
                {
                    shared.warning(&format!("Could not pin shard {id} to CPU {cpu}: {e}"));
                }
                crash::register_shard_thread(Arc::clone(&shared), id);
                let mut service = shard::Shard::new(id, shards, Arc::clone(&shared));
                if let Some(ks) = keyspace {
                    service.data.adopt_keyspace(ks);
                }
                propagate::start_shard(&mut service.data);
                percore_net::backend::run_shard(&backend, id, net, fds, sig, &mut service)
            })
            .map_err(|e| format!("spawning shard {id}: {e}"))?;
        handles.push(handle);
    }
    if tls_port != 0 {
        shared.notice(&format!("Ready to accept connections tls port={tls_port}"));
    }
    if port != 0 {
        shared.notice(&format!("Ready to accept connections tcp port={port}"));
    }
    if let Some(path) = shared.config().unixsocket() {
        shared.notice(&format!(
            "The server is now ready to accept connections at {path}"
        ));
    }
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err("a shard thread panicked".into()),
        }
    }
    aof::shutdown(&shared);
    if let Some(p) = &pidfile {
        let _ = std::fs::remove_file(p);
    }
    // A save stopped by the shutdown may leave its temp file (a killed child, a cancelled
    // forkless writer): remove it, as Redis's shutdown does.
    snapshot::remove_stale(&shared, &shared.config().dir);
    if let Some(path) = shared.config().unixsocket() {
        shared.notice("Removing the unix socket file.");
        if let Err(e) = std::fs::remove_file(path) {
            shared.warning(&format!(
                "Error removing the unix socket file: {}",
                config::os_error_public(&e)
            ));
        }
    }
    shared.notice("percore is now ready to exit, bye bye...");
    result
}
