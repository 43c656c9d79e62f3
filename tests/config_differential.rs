//! Configuration parameters against a real redis-server 7.0: every parameter redis-server
//! lists has the same value in percore after start-up, CONFIG SET of valid and invalid
//! values answers byte for byte as Redis, protected commands and configs are refused with
//! Redis's texts, `-MISCONF` after a failed save, the Unix socket, and start-up with the
//! Tcl suite's default.conf and Debian's redis.conf.

mod common;

use common::{Conn, Server, scratch_dir, show};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Parameters whose values differ on purpose, with the reason.
const DELIBERATE: &[(&str, &str)] = &[
    // Each server listens on its own port.
    ("port", "the test's ports differ"),
];

/// Parameters percore lists and Redis does not (percore's own).
const PERCORE_ONLY: &[&str] = &[
    "threads",
    "metrics-port",
    "hop-spin-us",
    "default-bgsave-method",
    "forkless-max-copy-memory",
    "cluster-databases",
    "io-backend",
    // Redis 7.2's names, accepted by percore alongside the 7.0 ones.
    "set-max-listpack-entries",
    "set-max-listpack-value",
    // Valkey's: `primaryauth`/`primaryuser` (its names for masterauth/masteruser) and
    // `availability-zone` (tests/valkey_additions.rs compares them with the Valkey peer).
    "primaryauth",
    "primaryuser",
    "availability-zone",
    // Valkey's `hide-user-data-from-log` (its test suite's default.conf sets it).
    "hide-user-data-from-log",
    // Valkey 8.1's (tests/valkey_additions.rs checks it).
    "rdb-version-check",
    // Valkey's `cluster-slot-stats-enabled` (its `start_cluster` sets it).
    "cluster-slot-stats-enabled",
];

/// The settings both servers start with (percore's test harness allows DEBUG and
/// protected configs; here both keep Redis's defaults).
const DEFAULTS: &[&str] = &[
    "--enable-debug-command",
    "no",
    "--enable-protected-configs",
    "no",
];

fn pairs(reply: &[u8]) -> BTreeMap<String, String> {
    // A RESP2 flat array of bulk strings.
    let text = String::from_utf8_lossy(reply).into_owned();
    let mut lines = text.split("\r\n");
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with('*'), "{text}");
    let mut items = Vec::new();
    while let Some(len) = lines.next() {
        if len.is_empty() {
            break;
        }
        items.push(lines.next().unwrap_or_default().to_owned());
    }
    items
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

/// The RESP2 reply of `CONFIG GET name` with one match.
fn get_reply((name, value): (&str, &str)) -> Vec<u8> {
    format!(
        "*2\r\n${}\r\n{name}\r\n${}\r\n{value}\r\n",
        name.len(),
        value.len()
    )
    .into_bytes()
}

fn both() -> Option<(Server, Server)> {
    let percore = Server::percore(DEFAULTS);
    let dir = percore.dir().to_str().expect("utf-8 dir").to_owned();
    let redis = Server::redis_with(&["--dir", &dir])?;
    Some((percore, redis))
}

#[test]
fn config_get_of_every_redis_parameter_matches_after_startup() {
    let Some((percore, redis)) = both() else {
        return;
    };
    let (mut p, mut r) = (percore.conn(), redis.conn());
    let redis_all = pairs(&r.cmd_raw(&["CONFIG", "GET", "*"]));
    let percore_all = pairs(&p.cmd_raw(&["CONFIG", "GET", "*"]));
    assert!(redis_all.len() > 150, "{}", redis_all.len());
    let mut differences = Vec::new();
    for (name, value) in &redis_all {
        if DELIBERATE.iter().any(|(n, _)| n == name) {
            continue;
        }
        match percore_all.get(name) {
            None => differences.push(format!("{name}: missing in percore")),
            Some(v) if v != value => {
                differences.push(format!("{name}: redis {value:?}, percore {v:?}"));
            }
            Some(_) => {}
        }
        // One name at a time, as typed (Redis echoes the caller's spelling).
        let upper = name.to_ascii_uppercase();
        if !DELIBERATE.iter().any(|(n, _)| *n == name) {
            assert_eq!(
                common::show(&p.cmd_raw(&["CONFIG", "GET", &upper])),
                common::show(&r.cmd_raw(&["CONFIG", "GET", &upper])),
                "CONFIG GET {upper}"
            );
        }
    }
    for name in percore_all.keys() {
        if !redis_all.contains_key(name) && !PERCORE_ONLY.contains(&name.as_str()) {
            differences.push(format!("{name}: listed by percore only"));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    // Hidden parameters: readable by name, not listed by a pattern.
    for hidden in ["key-load-delay", "rdb-key-save-delay", "watchdog-period"] {
        assert_eq!(
            p.cmd_raw(&["CONFIG", "GET", hidden]),
            r.cmd_raw(&["CONFIG", "GET", hidden]),
            "{hidden}"
        );
    }
}

/// Parameters CONFIG SET must not change in this test: they would cut the connection
/// (requirepass, port, bind, tls-port: tests/listen.rs), or start persistence work.
const NOT_SET: &[&str] = &[
    "requirepass",
    "port",
    "bind",
    "appendonly",
    "tls-port",
    "save",
    "maxmemory",
    "min-replicas-to-write",
    "min-slaves-to-write",
    "masterauth",
    "masteruser",
    "client-output-buffer-limit",
    "repl-backlog-size",
];

#[test]
fn config_set_valid_and_invalid_values_reply_as_redis() {
    let Some((percore, redis)) = both() else {
        return;
    };
    let (mut p, mut r) = (percore.conn(), redis.conn());
    let names: Vec<String> = pairs(&r.cmd_raw(&["CONFIG", "GET", "*"]))
        .into_keys()
        .filter(|n| !NOT_SET.contains(&n.as_str()) && !n.starts_with("tls-"))
        .collect();
    let values = [
        "yes",
        "no",
        "0",
        "1",
        "-1",
        "-101",
        "7",
        "abc",
        "10%",
        "101%",
        "1mb",
        "777",
        "1000",
        "",
        "save nosave",
        "now force",
        "0 200 800",
        "0 200 9000",
        "local",
        "relative",
        "clients",
        "hostname",
        "panic-on-replicas",
        "systemd",
        "local7",
        "4294967296",
    ];
    let mut compared = 0;
    for name in &names {
        for value in values {
            let ours = p.cmd_raw(&["CONFIG", "SET", name, value]);
            let theirs = r.cmd_raw(&["CONFIG", "SET", name, value]);
            assert_eq!(
                common::show(&ours),
                common::show(&theirs),
                "CONFIG SET {name} {value:?}"
            );
            let get = ["CONFIG", "GET", name.as_str()];
            assert_eq!(
                common::show(&p.cmd_raw(&get)),
                common::show(&r.cmd_raw(&get)),
                "CONFIG GET {name} after SET {value:?}"
            );
            compared += 1;
        }
    }
    assert!(compared > 3000, "{compared}");
    // Several at once: all or nothing, duplicates and unknown names.
    for args in [
        &["CONFIG", "SET", "hz", "20", "activerehashing", "maybe"][..],
        &["CONFIG", "SET", "hz", "20", "hz", "30"],
        &["CONFIG", "SET", "no-such-thing", "1"],
        &["CONFIG", "SET", "hz"],
        &[
            "CONFIG",
            "SET",
            "shutdown-timeout",
            "5",
            "lazyfree-lazy-user-del",
            "yes",
        ],
        &["CONFIG", "GET", "hz"],
    ] {
        assert_eq!(
            common::show(&p.cmd_raw(args)),
            common::show(&r.cmd_raw(args)),
            "{args:?}"
        );
    }
    // A pattern lists its matches in Redis's dict order (a hash order): same pairs.
    let get = ["CONFIG", "GET", "lazyfree-*"];
    assert_eq!(pairs(&p.cmd_raw(&get)), pairs(&r.cmd_raw(&get)), "{get:?}");
}

#[test]
fn protected_commands_and_configs_are_refused_as_redis() {
    let Some((percore, redis)) = both() else {
        return;
    };
    let (mut p, mut r) = (percore.conn(), redis.conn());
    for args in [
        &["DEBUG", "SLEEP", "0"][..],
        &["CONFIG", "SET", "dir", "/tmp"],
        &["CONFIG", "SET", "dbfilename", "x.rdb"],
        &["CONFIG", "SET", "enable-debug-command", "yes"],
        &["CONFIG", "SET", "unixsocket", "/tmp/x"],
        &["MULTI"],
        &["DEBUG", "SLEEP", "0"],
        &["EXEC"],
    ] {
        assert_eq!(
            common::show(&p.cmd_raw(args)),
            common::show(&r.cmd_raw(args)),
            "{args:?}"
        );
    }
    // `local` allows a loopback client, as Redis.
    let local = Server::percore(&[
        "--enable-debug-command",
        "local",
        "--enable-protected-configs",
        "local",
    ]);
    let mut c = local.conn();
    assert_eq!(c.cmd_raw(&["DEBUG", "SLEEP", "0"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "dbfilename", "x.rdb"]),
        b"+OK\r\n"
    );
}

#[test]
fn a_failed_background_save_stops_writes_with_misconf_as_redis() {
    let Some((percore, redis)) =
        both_with(&["--enable-protected-configs", "yes", "--save", "3600 1"])
    else {
        return;
    };
    for server in [&percore, &redis] {
        let mut c = server.conn();
        // The dump's name is a non-empty directory: the final rename fails.
        let blocker = server.dir().join(format!("blocker-{}", server.port()));
        std::fs::create_dir_all(blocker.join("inside")).expect("blocking directory");
        let name = blocker.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
        assert_eq!(
            c.cmd_raw(&["CONFIG", "SET", "dbfilename", &name]),
            b"+OK\r\n"
        );
        assert_eq!(c.cmd_raw(&["BGSAVE"]), b"+Background saving started\r\n");
        wait_for(|| {
            common::info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0"
                && common::info_field(&mut c, "persistence", "rdb_last_bgsave_status") == "err"
        });
    }
    let (mut p, mut r) = (percore.conn(), redis.conn());
    for args in [
        &["SET", "k", "v2"][..],
        &["PING"],
        &["GET", "k"],
        &["MULTI"],
        &["INCR", "n"],
        &["EXEC"],
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
        &["SET", "k", "v3"],
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"],
        &["DEL", "k"],
        &["CONFIG", "SET", "save", ""],
        &["DEL", "k"],
    ] {
        assert_eq!(
            common::show(&p.cmd_raw(args)),
            common::show(&r.cmd_raw(args)),
            "{args:?}"
        );
    }
}

fn both_with(extra: &[&str]) -> Option<(Server, Server)> {
    let mut args = DEFAULTS.to_vec();
    args.extend_from_slice(extra);
    let percore = Server::percore(&args);
    let redis = Server::redis_with(extra)?;
    Some((percore, redis))
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn clients_connect_over_the_unix_socket() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("unixsocket");
    let path = dir.join("percore.sock");
    let path_text = path.to_str().expect("utf-8 path");
    let server = Server::percore(&["--unixsocket", path_text, "--unixsocketperm", "700"]);
    let mode = std::fs::metadata(&path)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let mut unix = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    unix.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let read = |stream: &mut std::os::unix::net::UnixStream, expect: &[u8]| {
        let mut got = vec![0; expect.len()];
        stream.read_exact(&mut got).expect("reply");
        assert_eq!(common::show(&got), common::show(expect));
    };
    // Several requests, keys on every shard, and one reply read across them.
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(common::encode_cmd(&["SET", &format!("k{i}"), "v"]));
    }
    unix.write_all(&batch).unwrap();
    read(&mut unix, &b"+OK\r\n".repeat(50));
    unix.write_all(&common::encode_cmd(&["DBSIZE"])).unwrap();
    read(&mut unix, b":50\r\n");
    // A Unix socket client is local: CLIENT INFO has no TCP peer, and TCP sees the keys.
    assert_eq!(server.conn().cmd_raw(&["GET", "k7"]), b"$1\r\nv\r\n");
    assert_eq!(
        server.conn().cmd_raw(&["CONFIG", "GET", "unixsocket"]),
        get_reply(("unixsocket", path_text))
    );
    drop(unix);
    drop(server);
    assert!(!path.exists(), "socket file left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `percore-server FILE ARGS...`, waits for "Ready to accept", and returns it.
fn start_with_file(file: &std::path::Path, args: &[&str]) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .arg(file)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run percore-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines.iter().any(|l: &String| l.contains("Ready to accept")) {
        if let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            lines.push(line);
        } else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("percore did not start: {lines:#?}\n{err}");
        }
    }
    (child, lines)
}

/// The Tcl suite's tests/assets/default.conf (Redis 7.0.15), as the suite writes it.
const SUITE_DEFAULT_CONF: &str = "always-show-logo yes
notify-keyspace-events KEA
daemonize no
pidfile /var/run/redis.pid
port 6379
timeout 0
bind 127.0.0.1
loglevel verbose
logfile ''
databases 16
latency-monitor-threshold 1
repl-diskless-sync-delay 0
save 900 1
rdbcompression yes
dbfilename dump.rdb
dir ./
slave-serve-stale-data yes
appendonly no
appendfsync everysec
no-appendfsync-on-rewrite no
activerehashing yes
enable-protected-configs yes
enable-debug-command yes
enable-module-command yes
propagation-error-behavior panic
save
";

#[test]
fn starts_with_the_suites_default_conf_and_debians_redis_conf() {
    let dir = scratch_dir("conf");
    let port = common::free_port().to_string();
    let socket = dir.join("socket");
    let conf = dir.join("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "{SUITE_DEFAULT_CONF}dir {}\nport {port}\nunixsocket {}\npidfile {}\n",
            dir.display(),
            socket.display(),
            dir.join("redis.pid").display()
        ),
    )
    .expect("write conf");
    let (mut child, lines) = start_with_file(&conf, &[]);
    let pid = format!(" PID: {}", child.id());
    assert!(
        lines.iter().any(|l| l.contains(&pid)),
        "no '{pid}' line: {lines:#?}"
    );
    let mut c = Conn::connect(port.parse().unwrap());
    assert_eq!(c.cmd_raw(&["DEBUG", "SLEEP", "0"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "propagation-error-behavior"]),
        get_reply(("propagation-error-behavior", "panic"))
    );
    let mut unix = std::os::unix::net::UnixStream::connect(&socket).expect("unix socket");
    unix.write_all(b"PING\r\n").unwrap();
    let mut pong = [0; 7];
    unix.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    let _ = child.kill();
    let _ = child.wait();

    // Debian's packaged redis.conf (needs the file: installed with redis-server).
    let debian = std::path::Path::new("/etc/redis/redis.conf");
    if std::fs::read(debian).is_ok() {
        let port = common::free_port().to_string();
        let dir_text = dir.to_str().unwrap();
        let (mut child, _) = start_with_file(
            debian,
            &[
                "--port",
                &port,
                "--daemonize",
                "no",
                "--logfile",
                "",
                "--pidfile",
                "",
                "--dir",
                dir_text,
                "--supervised",
                "no",
            ],
        );
        let mut c = Conn::connect(port.parse().unwrap());
        assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
        assert_eq!(
            c.cmd_raw(&["CONFIG", "GET", "oom-score-adj-values"]),
            get_reply(("oom-score-adj-values", "0 200 800"))
        );
        let _ = child.kill();
        let _ = child.wait();
    } else {
        println!("skipping Debian's redis.conf: /etc/redis/redis.conf not readable");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `CONFIG GET *` over RESP2 on a fresh connection.
fn config_get_all(port: u16) -> BTreeMap<String, String> {
    let mut c = Conn::connect(port);
    pairs(&c.cmd_raw(&["CONFIG", "GET", "*"]))
}

/// DEBUG CONFIG-REWRITE-FORCE-ALL on a primary, then a restart with the file: the server
/// starts and every parameter reads as before (Valkey's "CONFIG REWRITE sanity"). Neither
/// percore nor redis-server writes `replicaof`/`slaveof` (which `""` would not load) nor
/// an unset string option.
#[test]
fn force_all_rewrite_restarts_with_the_same_config() {
    let dir = scratch_dir("force-all");
    let conf = dir.join("redis.conf");
    let port = common::free_port();
    std::fs::write(
        &conf,
        format!(
            "{SUITE_DEFAULT_CONF}dir {}\nport {port}\npidfile {}\nslave-read-only no\n",
            dir.display(),
            dir.join("redis.pid").display()
        ),
    )
    .expect("write conf");
    let (mut child, _) = start_with_file(&conf, &[]);
    let before = config_get_all(port);
    let mut c = Conn::connect(port);
    assert_eq!(
        c.cmd_raw(&["DEBUG", "CONFIG-REWRITE-FORCE-ALL"]),
        b"+OK\r\n"
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&conf).expect("read rewritten conf");
    // A killed server's listener can outlive it briefly (io_uring tears down late).
    wait_for(|| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    let (mut child, _) = start_with_file(&conf, &[]);
    let after = config_get_all(port);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(before, after, "rewritten file:\n{text}");
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').next().map(str::to_owned))
            .collect()
    };
    // No unset string option, no alias: only the canonical `replica-read-only`.
    let check_names = |who: &str, text: &str| {
        let written = names(text);
        for absent in [
            "replicaof",
            "slaveof",
            "slave-read-only",
            "masterauth",
            "unixsocket",
        ] {
            assert!(
                !written.iter().any(|n| n == absent),
                "{who} wrote {absent}:\n{text}"
            );
        }
        assert!(
            written.iter().any(|n| n == "replica-read-only"),
            "{who}: {text}"
        );
    };
    check_names("percore", &text);

    // redis-server 7.0 writes the same way.
    if common::redis_server_available() {
        let rconf = dir.join("redis7.conf");
        let rport = common::free_port();
        std::fs::write(
            &rconf,
            format!("port {rport}\ndir {}\nslave-read-only no\n", dir.display()),
        )
        .expect("write conf");
        let mut redis = Command::new("redis-server")
            .arg(&rconf)
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let mut connected = None;
        wait_for(|| {
            connected = std::net::TcpStream::connect(("127.0.0.1", rport)).ok();
            connected.is_some()
        });
        drop(connected);
        let mut r = Conn::connect(rport);
        assert_eq!(
            r.cmd_raw(&["DEBUG", "CONFIG-REWRITE-FORCE-ALL"]),
            b"+OK\r\n"
        );
        let _ = redis.kill();
        let _ = redis.wait();
        let rtext = std::fs::read_to_string(&rconf).expect("read redis conf");
        check_names("redis", &rtext);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `oom-score-adj` as Redis's `setOOMScoreAdj`, against redis-server 7.0: replies and the
/// process's `/proc/<pid>/oom_score_adj` (relative to its value at start) after each step:
/// enabling (the base read then), the replica class after REPLICAOF, turning it off (the
/// base written back once), values set while off (the file left alone, even when changed
/// from outside), and where lowering it is not permitted the failed CONFIG SET and its
/// rollback.
#[test]
fn oom_score_adj_follows_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&[]);
    let read = |pid: u32| -> i64 {
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .expect("read oom_score_adj")
            .trim()
            .parse()
            .expect("a number")
    };
    let write = |pid: u32, v: i64| {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), format!("{v}\n"))
            .expect("write oom_score_adj");
    };
    // Lowering below the current value needs CAP_SYS_RESOURCE: the failure steps run only
    // where it is refused (the Tcl suite's condition), checked on this process.
    let own = read(std::process::id());
    let refused = std::fs::write("/proc/self/oom_score_adj", "-1000\n").is_err();
    let _ = std::fs::write("/proc/self/oom_score_adj", format!("{own}\n"));
    let mut trace = Vec::new();
    for server in [&redis, &percore] {
        let pid = server.pid();
        let start = read(pid);
        let mut c = server.conn();
        let mut steps: Vec<(String, i64)> = Vec::new();
        let mut step = |c: &mut Conn, args: &[&str]| {
            let reply = show(&c.cmd_raw(args));
            steps.push((format!("{args:?} -> {reply}"), read(pid) - start));
        };
        step(
            &mut c,
            &["CONFIG", "SET", "oom-score-adj-values", "10 20 30"],
        );
        step(&mut c, &["CONFIG", "SET", "oom-score-adj", "yes"]);
        step(
            &mut c,
            &["CONFIG", "SET", "oom-score-adj-values", "15 20 30"],
        );
        step(&mut c, &["REPLICAOF", "127.0.0.1", "1"]);
        step(&mut c, &["REPLICAOF", "NO", "ONE"]);
        step(&mut c, &["CONFIG", "SET", "oom-score-adj", "no"]);
        write(pid, start + 2);
        step(&mut c, &["CONFIG", "SET", "oom-score-adj-values", "1 1 1"]);
        step(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "oom-score-adj-values",
                "9 9 9",
                "oom-score-adj",
                "yes",
            ],
        );
        step(&mut c, &["CONFIG", "SET", "oom-score-adj", "no"]);
        step(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "oom-score-adj-values",
                "4 4 4",
                "oom-score-adj",
                "absolute",
            ],
        );
        step(&mut c, &["CONFIG", "SET", "oom-score-adj", "no"]);
        if refused {
            step(
                &mut c,
                &["CONFIG", "SET", "oom-score-adj-values", "-1000 -1000 -1000"],
            );
            step(&mut c, &["CONFIG", "SET", "oom-score-adj", "yes"]);
            step(&mut c, &["CONFIG", "GET", "oom-score-adj"]);
            step(
                &mut c,
                &["CONFIG", "SET", "oom-score-adj-values", "0 100 100"],
            );
            step(&mut c, &["CONFIG", "SET", "oom-score-adj", "yes"]);
            step(
                &mut c,
                &["CONFIG", "SET", "oom-score-adj-values", "-1000 -1000 -1000"],
            );
            step(&mut c, &["CONFIG", "GET", "oom-score-adj-values"]);
        }
        trace.push(steps);
    }
    // Both servers start from this process's value, so even the absolute step compares.
    assert_eq!(trace[0], trace[1], "redis (left), percore (right)");
}
