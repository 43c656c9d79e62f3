//! Connection lifecycle (issue 20): the protocol a reply is encoded in, end of input,
//! authentication when the password is cleared, CLIENT REPLY modes, idle timeouts, the
//! listening port and the descriptor limit. Where the behaviour is Redis's, the same bytes
//! go to a real `redis-server` 7.0 and to percore (two shards) and the transcripts are
//! compared byte for byte.
//!
//! A transcript is everything a server sends on one connection that writes its requests,
//! half-closes (end of input) and reads until the server closes: Redis runs what it read
//! before the end of input, writes the replies, then closes.

mod common;

use common::{Conn, Server, encode_cmd, show};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How long a transcript may take before the test fails.
const TRANSCRIPT_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends `bytes`, half-closes, and returns every byte the server sends until it closes.
fn transcript(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(TRANSCRIPT_TIMEOUT))
        .expect("read timeout");
    s.set_write_timeout(Some(TRANSCRIPT_TIMEOUT))
        .expect("write timeout");
    s.write_all(bytes).expect("write");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap_or_else(|e| {
        panic!(
            "the server did not close after the end of input ({e}); got {}",
            show(&out)
        )
    });
    out
}

/// HELLO's `id` differs between servers: masked before comparing.
fn mask_ids(bytes: &[u8]) -> Vec<u8> {
    const ID: &[u8] = b"$2\r\nid\r\n:";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(ID) {
            out.extend_from_slice(ID);
            out.push(b'N');
            i += ID.len();
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Both servers, or `None` when redis-server is absent (and not required).
fn pair(extra: &[&str]) -> Option<(Server, Server)> {
    let redis = Server::redis_with(extra)?;
    let mut args = vec!["--threads", "2"];
    args.extend_from_slice(extra);
    Some((redis, Server::percore(&args)))
}

/// Runs each case as a transcript on both servers and fails listing every difference.
fn compare_transcripts(cases: &[(&str, Vec<u8>)], extra: &[&str]) {
    let Some((redis, percore)) = pair(extra) else {
        return;
    };
    let mut diffs = Vec::new();
    for (name, bytes) in cases {
        let want = mask_ids(&transcript(redis.port(), bytes));
        let got = mask_ids(&transcript(percore.port(), bytes));
        if want != got {
            diffs.push(format!(
                "[{name}]\n    redis:   {}\n    percore: {}",
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} transcripts differ from redis-server:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn cmds(lines: &[&[&str]]) -> Vec<u8> {
    lines.iter().flat_map(|l| encode_cmd(l)).collect()
}

/// Keys spread over both shards, half of them set by the case.
const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

// ---------------------------------------------------------------------------------------
// Item 2: a reply is encoded in the protocol its command was read under.

#[test]
fn a_multi_shard_reply_keeps_the_protocol_its_command_was_read_under() {
    let mget: Vec<&str> = std::iter::once("MGET").chain(KEYS).collect();
    let mut script = cmds(&[&["MSET", "k0", "a", "k3", "b", "k5", "c", "k6", "d"]]);
    // MGET waits for the other shard while HELLO switches the protocol behind it.
    for hello in [["HELLO", "3"], ["HELLO", "2"], ["HELLO", "3"]] {
        script.extend(encode_cmd(&mget));
        script.extend(encode_cmd(&["DEL", "k1", "k2", "k4", "k7", "nope"]));
        script.extend(encode_cmd(&hello));
    }
    script.extend(encode_cmd(&mget));
    compare_transcripts(&[("mget-then-hello", script)], &[]);
}

// ---------------------------------------------------------------------------------------
// Item 3: the end of input means "no more requests", not "nobody listens".

#[test]
fn end_of_input_runs_every_request_and_sends_every_reply_then_closes() {
    let mut many = Vec::new();
    for i in 0..300 {
        let k = KEYS[i % KEYS.len()];
        let v = format!("v{i}");
        many.extend(encode_cmd(&["SET", k, &v]));
        many.extend(encode_cmd(&["GET", KEYS[(i + 3) % KEYS.len()]]));
        if i % 10 == 0 {
            let mget: Vec<&str> = std::iter::once("MGET").chain(KEYS).collect();
            many.extend(encode_cmd(&mget));
            many.extend(encode_cmd(&["DBSIZE"]));
        }
    }
    let mut cut = cmds(&[
        &["SET", "k1", "x"],
        &["GET", "k2"],
        &["MGET", "k0", "k1", "k2"],
    ]);
    // An incomplete last request is dropped.
    cut.extend(b"*2\r\n$3\r\nGET\r\n$2\r\nk");
    compare_transcripts(
        &[
            ("one", cmds(&[&["GET", "k5"]])),
            (
                "other-shard",
                cmds(&[&["SET", "k1", "a"], &["GET", "k1"], &["GET", "k2"]]),
            ),
            ("many", many),
            ("incomplete-last", cut),
            (
                "quit-inside",
                cmds(&[&["GET", "k1"], &["QUIT"], &["GET", "k2"]]),
            ),
        ],
        &[],
    );
}

// ---------------------------------------------------------------------------------------
// Item 6: a client reading a long reply is not idle.

/// Larger than what the kernel buffers on both ends of a loopback connection, so the
/// server is still writing while the client reads slowly.
const SLOW_REPLY_BYTES: usize = 48 * 1024 * 1024;
/// The slow client reads this much per pause; `SLOW_REPLY_BYTES` takes > 3 timeouts.
const SLOW_READ_CHUNK_BYTES: usize = 256 * 1024;
const SLOW_READ_PAUSE: Duration = Duration::from_millis(20);
/// The slow client's receive buffer, fixed so the kernel cannot autotune it (tcp_rmem's
/// maximum is 32 MiB on some machines): with a large buffer the server wrote its last
/// byte seconds before the client had read it, and the idle timeout then rightly closed
/// the connection (Redis's `lastinteraction` moves only on writes too). Small, the
/// server's last write is at most its own send buffer (≤ 4 MiB, ~0.3 s) ahead.
const SLOW_READER_RCVBUF_BYTES: libc::c_int = 256 * 1024;

/// Sets SO_RCVBUF on `s`, which also stops the kernel autotuning it.
#[expect(unsafe_code, reason = "setsockopt: std has no SO_RCVBUF")]
fn lock_receive_buffer(s: &TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and a c_int option value of the right length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::from_ref(&bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt SO_RCVBUF: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn a_client_reading_a_long_reply_is_not_closed_by_timeout() {
    let Some((redis, percore)) = pair(&["--timeout", "1"]) else {
        return;
    };
    let value = vec![b'v'; SLOW_REPLY_BYTES];
    for server in [&redis, &percore] {
        let kind = server.kind();
        let mut setter = server.conn();
        assert_eq!(
            setter.cmd_raw(&[b"SET".as_slice(), b"big", &value]),
            b"+OK\r\n"
        );
        drop(setter);
        let mut s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        lock_receive_buffer(&s, SLOW_READER_RCVBUF_BYTES);
        s.set_read_timeout(Some(TRANSCRIPT_TIMEOUT))
            .expect("timeout");
        s.write_all(&encode_cmd(&["GET", "big"])).expect("write");
        let header = format!("${SLOW_REPLY_BYTES}\r\n");
        let want = header.len() + SLOW_REPLY_BYTES + 2;
        let started = Instant::now();
        let mut got = 0;
        let mut chunk = vec![0u8; SLOW_READ_CHUNK_BYTES];
        while got < want {
            let n = s.read(&mut chunk).expect("read the reply");
            assert!(
                n > 0,
                "{kind:?} closed the connection after {got} of {want} bytes"
            );
            got += n;
            // The client is slow: the server keeps writing the whole time.
            std::thread::sleep(SLOW_READ_PAUSE);
        }
        assert!(
            started.elapsed() > Duration::from_secs(2),
            "the read was not slow"
        );
        s.write_all(&encode_cmd(&["PING"])).expect("write PING");
        let mut pong = [0u8; 7];
        s.read_exact(&mut pong)
            .unwrap_or_else(|e| panic!("{kind:?}: no reply to PING after the long reply: {e}"));
        assert_eq!(&pong, b"+PONG\r\n", "{kind:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Item 4: a port another process listens on stops start-up, as in Redis.

/// How long a server refused its port may take to exit.
const REFUSED_EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts `program` on `port` (127.0.0.1) and returns its exit code and what it printed,
/// failing if it does not exit.
fn run_to_exit(program: &str, port: u16) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(program)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + REFUSED_EXIT_TIMEOUT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{program} started on a port in use: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Redis's two lines about the port, without the `pid:M date #` prefix.
fn bind_failure_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(" # ").map(|(_, msg)| msg.to_string()))
        .filter(|m| m.contains("listening"))
        .collect()
}

#[test]
fn a_second_server_on_a_port_in_use_exits_with_redis_message() {
    let first = Server::percore(&["--threads", "2"]);
    let port = first.port();
    let (code, log) = run_to_exit(env!("CARGO_BIN_EXE_percore-server"), port);
    assert_eq!(code, Some(1), "percore on a port in use: {log}");
    let lines = bind_failure_lines(&log);
    assert_eq!(
        lines,
        [
            format!(
                "Warning: Could not create server TCP listening socket 127.0.0.1:{port}: bind: Address already in use"
            ),
            format!("Failed listening on port {port} (TCP), aborting."),
        ],
        "{log}"
    );
    if common::redis_server_available() {
        let (code, redis_log) = run_to_exit("redis-server", port);
        assert_eq!(code, Some(1));
        assert_eq!(
            bind_failure_lines(&redis_log),
            lines,
            "redis-server's lines"
        );
    }
    // Every connection still reaches the first server (none went to a second group).
    let mut c = first.conn();
    assert_eq!(c.cmd_raw(&["SET", "owner", "first"]), b"+OK\r\n");
    for _ in 0..32 {
        let mut c = first.conn();
        assert_eq!(c.cmd_raw(&["GET", "owner"]), b"$5\r\nfirst\r\n");
    }
}

// ---------------------------------------------------------------------------------------
// Item 5: the descriptor limit against maxclients, and accepts when descriptors run out.

/// A server started under `prlimit --nofile=N:N`, with `inherited` extra descriptors
/// open (a shell opens them before it execs the server), killed on drop.
struct Limited {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Limited {
    fn start(program: &str, nofile: u32, inherited: u32, extra: &[&str]) -> Self {
        let port = common::free_port();
        let dir = common::scratch_dir("limited");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let script = format!(
            "for i in $(seq 20 {}); do eval \"exec $i</dev/null\"; done; exec \"$@\"",
            19 + inherited
        );
        let limit = format!("--nofile={nofile}:{nofile}");
        let port_text = port.to_string();
        let dir_text = dir.to_str().expect("utf-8").to_string();
        let mut args = vec![
            "-c",
            &script,
            "sh",
            "prlimit",
            &limit,
            program,
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &dir_text,
        ];
        args.extend_from_slice(extra);
        let child = std::process::Command::new("bash")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn");
        let mut server = Limited { child, port, log };
        let deadline = Instant::now() + common::START_TIMEOUT;
        loop {
            assert!(
                server.child.try_wait().expect("try_wait").is_none(),
                "{program} exited: {}",
                server.output()
            );
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                let mut buf = [0u8; 7];
                if c.write_all(b"PING\r\n").is_ok() && c.read_exact(&mut buf).is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{program} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// CPU seconds the server used so far (utime + stime from /proc, in clock ticks).
    fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("proc stat");
        let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        // Fields 14 and 15 of stat; `after_name` starts at field 3.
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server output:\n{}", self.output());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The descriptor-limit lines of a log, without the `pid:M date #` prefix.
fn limit_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(" # ").map(|(_, msg)| msg.to_string()))
        .filter(|m| m.contains("maxclients") || m.contains("open files"))
        .collect()
}

/// Connections a server accepts before `-ERR max number of clients reached`, at most
/// `most`; they stay open until the returned vector is dropped.
fn fill_clients(port: u16, most: usize) -> (usize, Vec<Conn>, Vec<u8>) {
    let mut open = Vec::new();
    loop {
        let mut c = Conn::connect(port);
        c.send_cmd(&["PING"]);
        let reply = c.read_raw();
        if reply != b"+PONG\r\n" || open.len() == most {
            return (open.len(), open, reply);
        }
        open.push(c);
    }
}

#[test]
fn a_low_descriptor_limit_lowers_maxclients_as_redis_does() {
    let percore = Limited::start(env!("CARGO_BIN_EXE_percore-server"), 64, 0, &[]);
    let lines = limit_lines(&percore.output());
    assert_eq!(
        lines,
        [
            "You requested maxclients of 10000 requiring at least 10032 max file descriptors.",
            "Server can't set maximum open files to 10032 because of OS error: Operation not permitted.",
            "Current maximum open files is 64. maxclients has been reduced to 32 to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
        ],
        "{}",
        percore.output()
    );
    let mut servers = vec![percore];
    if common::redis_server_available() {
        let redis = Limited::start("redis-server", 64, 0, &[]);
        assert_eq!(limit_lines(&redis.output()), lines, "redis-server's lines");
        servers.push(redis);
    }
    let mut seen = Vec::new();
    for server in &servers {
        let mut c = Conn::connect(server.port);
        let mut answers = vec![
            c.cmd_raw(&["CONFIG", "GET", "maxclients"]),
            c.cmd_raw(&["CONFIG", "SET", "maxclients", "100"]),
            c.cmd_raw(&["CONFIG", "SET", "maxclients", "20"]),
            c.cmd_raw(&["CONFIG", "SET", "maxclients", "32"]),
        ];
        // The readiness probe's connection may not be gone yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        while common::info_field(&mut c, "clients", "connected_clients") != "1" {
            assert!(Instant::now() < deadline, "probe connection not closed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (accepted, open, refusal) = fill_clients(server.port, 64);
        answers.push(format!("{accepted} more clients").into_bytes());
        answers.push(refusal);
        drop(open);
        seen.push(answers.iter().map(|a| show(a)).collect::<Vec<_>>());
    }
    assert_eq!(seen[0][0], "*2\r\n$10\r\nmaxclients\r\n$2\r\n32\r\n");
    assert_eq!(seen[0][4], "31 more clients");
    assert_eq!(seen[0][5], "-ERR max number of clients reached\r\n");
    if seen.len() == 2 {
        assert_eq!(seen[0], seen[1], "percore (left) vs redis (right)");
    }
}

/// Descriptors the server inherits, so that accepts fail with EMFILE before maxclients.
const INHERITED_FDS: u32 = 36;
/// Connections opened: more than the descriptors left.
const FLOOD_CONNECTIONS: usize = 40;
/// The last connections opened, which wait in the backlog while descriptors are short.
const WAITING_CONNECTIONS: usize = 5;
/// CPU the server may use in `IDLE_WINDOW` while accepts fail (a busy loop uses it all).
const IDLE_WINDOW: Duration = Duration::from_secs(1);
const IDLE_WINDOW_MAX_CPU_TICKS: u64 = 20;

#[test]
fn accepts_back_off_while_descriptors_run_out() {
    let server = Limited::start(
        env!("CARGO_BIN_EXE_percore-server"),
        64,
        INHERITED_FDS,
        &["--threads", "2"],
    );
    let mut conns: Vec<TcpStream> = (0..FLOOD_CONNECTIONS)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            s.set_read_timeout(Some(common::IO_TIMEOUT))
                .expect("timeout");
            s.write_all(b"PING\r\n").expect("write");
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .output()
        .contains("Accepting client connection: accept: Too many open files")
    {
        assert!(
            Instant::now() < deadline,
            "no EMFILE reported: {}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // While the backlog holds connections it cannot accept, the server idles.
    let before = server.cpu_ticks();
    std::thread::sleep(IDLE_WINDOW);
    let used = server.cpu_ticks() - before;
    assert!(
        used <= IDLE_WINDOW_MAX_CPU_TICKS,
        "{used} CPU ticks in {IDLE_WINDOW:?} while accepts fail: a busy loop"
    );
    let reports = server
        .output()
        .matches("Accepting client connection")
        .count();
    assert!(
        reports <= 2,
        "{reports} accept failures logged: {}",
        server.output()
    );
    // Descriptors come back when clients leave; the waiting connections are then served.
    let waiting = conns.split_off(FLOOD_CONNECTIONS - WAITING_CONNECTIONS);
    drop(conns);
    for mut s in waiting {
        let mut pong = [0u8; 7];
        s.read_exact(&mut pong).expect("a waiting client is served");
        assert_eq!(&pong, b"+PONG\r\n");
    }
}

// ---------------------------------------------------------------------------------------
// Item 7: with `requirepass` cleared, every connection counts as authenticated.

#[test]
fn clearing_requirepass_lets_every_connection_in() {
    let Some((redis, percore)) = pair(&["--requirepass", "pw"]) else {
        return;
    };
    let mut transcripts = Vec::new();
    for server in [&redis, &percore] {
        let mut seen = Vec::new();
        let mut waiting = server.conn();
        seen.push(waiting.cmd_raw(&["PING"]));
        let mut admin = server.conn();
        assert_eq!(admin.cmd_raw(&["AUTH", "pw"]), b"+OK\r\n");
        assert_eq!(
            admin.cmd_raw(&["CONFIG", "SET", "requirepass", ""]),
            b"+OK\r\n"
        );
        // The connection never authenticated, and needs not now...
        seen.push(waiting.cmd_raw(&["PING"]));
        seen.push(waiting.cmd_raw(&["SET", "k", "v"]));
        seen.push(waiting.cmd_raw(&["GET", "k"]));
        // ...except for HELLO, which Redis 7.0 checks against the connection's own flag.
        seen.push(waiting.cmd_raw(&["HELLO", "3"]));
        // A password set again applies to it again.
        assert_eq!(
            admin.cmd_raw(&["CONFIG", "SET", "requirepass", "pw2"]),
            b"+OK\r\n"
        );
        seen.push(waiting.cmd_raw(&["GET", "k"]));
        // A connection that came in without a password keeps its access.
        seen.push(admin.cmd_raw(&["GET", "k"]));
        transcripts.push(seen.iter().map(|r| show(r)).collect::<Vec<_>>());
    }
    assert_eq!(
        transcripts[1], transcripts[0],
        "percore (right) vs redis (left)"
    );
    assert_eq!(transcripts[1][1], "+PONG\r\n");
}

// ---------------------------------------------------------------------------------------
// Item 8: CLIENT REPLY, blank requests, protocol errors under REPLY OFF, HELLO's NOAUTH.

#[test]
fn client_reply_modes_match_redis() {
    let raw = |s: &str| s.as_bytes().to_vec();
    compare_transcripts(
        &[
            (
                "off-reset",
                raw("CLIENT REPLY OFF\r\nPING\r\nRESET\r\nPING\r\n"),
            ),
            (
                "resp3-off-reset",
                raw("HELLO 3\r\nCLIENT REPLY OFF\r\nRESET\r\nPING\r\n"),
            ),
            ("skip-reset", raw("CLIENT REPLY SKIP\r\nRESET\r\nPING\r\n")),
            ("skip", raw("CLIENT REPLY SKIP\r\nPING\r\nPING\r\n")),
            (
                "skip-skip",
                raw("CLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\n"),
            ),
            (
                "off-skip-on",
                raw("CLIENT REPLY OFF\r\nCLIENT REPLY SKIP\r\nPING\r\nCLIENT REPLY ON\r\nPING\r\n"),
            ),
            (
                "skip-on",
                raw("CLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nPING\r\n"),
            ),
            (
                "skip-blank",
                raw("CLIENT REPLY SKIP\r\n\r\nPING\r\nPING\r\n"),
            ),
            (
                "skip-spaces",
                raw("CLIENT REPLY SKIP\r\n   \r\nPING\r\nPING\r\n"),
            ),
            (
                "skip-empty-multibulk",
                raw("CLIENT REPLY SKIP\r\n*0\r\nPING\r\nPING\r\n"),
            ),
            (
                "skip-null-multibulk",
                raw("CLIENT REPLY SKIP\r\n*-1\r\nPING\r\nPING\r\n"),
            ),
            (
                "skip-unknown",
                raw("CLIENT REPLY SKIP\r\nNOSUCH\r\nPING\r\n"),
            ),
            ("blank", raw("\r\n\r\n*0\r\n*-1\r\n  \r\nPING\r\n")),
            (
                "off-protocol-error",
                raw("CLIENT REPLY OFF\r\n*1\r\n$x\r\nPING\r\n"),
            ),
            (
                "off-unbalanced",
                raw("CLIENT REPLY OFF\r\n\"unbalanced\r\nPING\r\n"),
            ),
            (
                "skip-protocol-error",
                raw("CLIENT REPLY SKIP\r\n*1\r\n$x\r\nPING\r\n"),
            ),
            (
                "skipped-then-protocol-error",
                raw("CLIENT REPLY SKIP\r\nPING\r\n*1\r\n$x\r\nPING\r\n"),
            ),
            (
                "off-quit",
                raw("CLIENT REPLY OFF\r\nQUIT\r\nCLIENT REPLY ON\r\nPING\r\n"),
            ),
            ("skip-quit", raw("CLIENT REPLY SKIP\r\nQUIT\r\nPING\r\n")),
            (
                "off-on",
                raw("CLIENT REPLY OFF\r\nCLIENT REPLY ON\r\nPING\r\n"),
            ),
            (
                "bad-mode",
                raw("CLIENT REPLY BOGUS\r\nCLIENT REPLY OFF\r\nCLIENT REPLY BOGUS\r\n"),
            ),
            (
                "off-multi-shard",
                cmds(&[
                    &["CLIENT", "REPLY", "OFF"],
                    &["MSET", "k0", "a", "k1", "b", "k2", "c"],
                    &["MGET", "k0", "k1", "k2"],
                    &["GET", "k1"],
                    &["RESET"],
                    &["MGET", "k0", "k1", "k2"],
                ]),
            ),
        ],
        &[],
    );
}

#[test]
fn hello_without_authentication_answers_redis_7_0_text() {
    let raw = |s: &str| s.as_bytes().to_vec();
    compare_transcripts(
        &[
            (
                "hello",
                raw("HELLO\r\nHELLO 3\r\nHELLO 2 SETNAME x\r\nPING\r\n"),
            ),
            ("hello-auth", raw("HELLO 3 AUTH default pw\r\nPING\r\n")),
            (
                "hello-bad-auth",
                raw("HELLO 3 AUTH default no\r\nHELLO 4\r\nPING\r\n"),
            ),
        ],
        &["--requirepass", "pw"],
    );
}

// ---------------------------------------------------------------------------------------
// Item 1 (second trigger): pipelined requests of several clients stay whole while another
// client's SWAPDB runs on every shard.

/// Commands each pipelining client sends.
const PIPELINED_COMMANDS: usize = 500;

#[test]
fn pipelines_of_four_clients_stay_whole_beside_swapdb() {
    let s = Server::percore(&["--threads", "2"]);
    let port = s.port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(c.cmd_raw(&["SWAPDB", "0", "1"]), b"+OK\r\n");
                swaps += 1;
            }
            swaps
        })
    };
    let clients: Vec<_> = (0..4)
        .map(|n| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let mut want = Vec::new();
                let mut script = Vec::new();
                for i in 0..PIPELINED_COMMANDS {
                    let payload = format!("client{n}-request{i}-{}", "x".repeat(i % 37));
                    match i % 3 {
                        0 => {
                            script.extend(encode_cmd(&["ECHO", &payload]));
                            want.extend(format!("${}\r\n{payload}\r\n", payload.len()).bytes());
                        }
                        1 => {
                            script.extend(encode_cmd(&["SET", &format!("c{n}:{i}"), &payload]));
                            want.extend(b"+OK\r\n");
                        }
                        _ => {
                            script.extend(format!("PING {payload}\r\n").bytes());
                            want.extend(format!("${}\r\n{payload}\r\n", payload.len()).bytes());
                        }
                    }
                }
                // Odd-sized writes split requests across receives.
                for chunk in script.chunks(97) {
                    c.send(chunk);
                }
                let mut got = Vec::new();
                while got.len() < want.len() {
                    got.extend(c.read_raw());
                }
                assert_eq!(show(&got), show(&want), "client {n}");
                assert_eq!(got, want, "client {n}");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("pipelining client");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().expect("swapping client");
    assert!(swaps > 0);
}
