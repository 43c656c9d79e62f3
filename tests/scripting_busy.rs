//! A busy script's own shard keeps serving its clients, as Redis serves events from the
//! Lua hook (`processEventsWhileBlocked`): past `busy-reply-threshold` every client gets
//! `-BUSY` (pipelined replies in order), allow-busy commands run (SCRIPT KILL, FUNCTION
//! KILL/STATS, SHUTDOWN NOSAVE), new connections are accepted, and the script's own client
//! gets its reply when the script ends. With one shard every client is on the busy shard;
//! the same scenarios run against redis-server 7.0 when it is installed (differential).
//! tests/scripting_busy_epoll.rs runs them again on `io-backend epoll`.

mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
const PONG: &str = "+PONG\r\n";

/// A raw connection whose reads give up after a while (a silent server is a failure here,
/// not a hang).
struct Raw(TcpStream);

impl Raw {
    fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Raw(s)
    }

    fn send(&mut self, args: &[&str]) {
        self.0.write_all(&common::encode_cmd(args)).unwrap();
    }

    /// Reads until `want` bytes arrived (or `limit` passed): what arrived.
    fn read_bytes(&mut self, want: usize, limit: Duration) -> String {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < want && start.elapsed() < limit {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// The first reply bytes within `limit` (empty: nothing came).
    fn wait(&mut self, limit: Duration) -> String {
        self.read_bytes(1, limit)
    }

    /// Whether the server closed the connection within `limit`.
    fn closed(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < limit {
            match self.0.read(&mut buf) {
                Ok(0) => return true,
                Err(e)
                    if e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut =>
                {
                    return true;
                }
                _ => {}
            }
        }
        false
    }
}

/// Starts `cmd` on a new connection and waits until another connection's PING answers
/// `busy` (the script passed the threshold); returns both.
fn start_busy(port: u16, cmd: &[&str], busy: &str) -> (Raw, Raw) {
    let mut runner = Raw::connect(port);
    runner.send(cmd);
    let mut probe = Raw::connect(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        probe.send(&["PING"]);
        let got = probe.wait(Duration::from_secs(10));
        if got == busy {
            return (runner, probe);
        }
        assert!(
            got == PONG && Instant::now() < deadline,
            "PING during the script: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every server the scenarios run on: percore (`extra` arguments), and redis-server 7.0
/// when installed.
fn servers(extra: &[&str]) -> Vec<Server> {
    let mut args = vec!["--busy-reply-threshold", "100"];
    args.extend_from_slice(extra);
    let mut all = vec![Server::percore(&args)];
    if let Some(r) = Server::redis_with(&["--busy-reply-threshold", "100"]) {
        all.push(r);
    }
    all
}

#[test]
fn clients_of_the_busy_shard_get_busy_and_script_kill_works_with_one_shard() {
    for server in servers(&["--threads", "1"]) {
        let port = server.port();
        let (mut runner, mut probe) =
            start_busy(port, &["EVAL", "while true do end", "0"], BUSY_EVAL);
        // A connection made during the script is accepted and answered.
        let mut late = Raw::connect(port);
        late.send(&["GET", "x"]);
        assert_eq!(late.wait(Duration::from_secs(5)), BUSY_EVAL);
        // A pipeline gets its replies in order: refusals and allow-busy commands.
        let mut piped = Raw::connect(port);
        let mut batch = Vec::new();
        for cmd in [
            &["PING"][..],
            &["FUNCTION", "KILL"],
            &["SET", "k", "v"],
            &["SHUTDOWN"],
            &["ECHO", "e"],
        ] {
            batch.extend_from_slice(&common::encode_cmd(cmd));
        }
        piped.0.write_all(&batch).unwrap();
        let want = [BUSY_EVAL, BUSY_EVAL, BUSY_EVAL, BUSY_EVAL, BUSY_EVAL].concat();
        assert_eq!(
            piped.read_bytes(want.len(), Duration::from_secs(5)),
            want,
            "{:?}",
            server.kind()
        );
        // SCRIPT KILL from a client of the same (only) shard stops it.
        probe.send(&["SCRIPT", "KILL"]);
        assert_eq!(probe.wait(Duration::from_secs(5)), "+OK\r\n");
        let killed = runner.wait(Duration::from_secs(10));
        assert!(
            killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
            "{killed}"
        );
        // Every client is served normally again, the runner too.
        for c in [&mut runner, &mut probe, &mut late, &mut piped] {
            c.send(&["PING"]);
            assert_eq!(c.wait(Duration::from_secs(5)), PONG);
        }
        probe.send(&["SCRIPT", "KILL"]);
        assert_eq!(
            probe.wait(Duration::from_secs(5)),
            "-NOTBUSY No scripts in execution right now.\r\n"
        );
    }
}

#[test]
fn function_kill_from_the_busy_shard() {
    for server in servers(&["--threads", "1"]) {
        let port = server.port();
        let mut c = Raw::connect(port);
        let lib =
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
        c.send(&["FUNCTION", "LOAD", lib]);
        assert_eq!(c.wait(Duration::from_secs(5)), "$4\r\nspin\r\n");
        // Function names are case-insensitive; FUNCTION STATS shows the name as registered
        // and the command as the client sent it.
        let (mut runner, mut probe) = start_busy(port, &["FCall", "SPIN", "0"], BUSY_FUNCTION);
        probe.send(&["SCRIPT", "KILL"]);
        assert_eq!(probe.wait(Duration::from_secs(5)), BUSY_FUNCTION);
        probe.send(&["FUNCTION", "STATS"]);
        // The whole reply (it may arrive in pieces): it ends with the engines map.
        let mut stats = probe.wait(Duration::from_secs(5));
        let start = Instant::now();
        while !stats.contains("functions_count") && start.elapsed() < Duration::from_secs(5) {
            stats += &probe.wait(Duration::from_millis(200));
        }
        assert!(
            stats.contains(
                "$4\r\nname\r\n$4\r\nspin\r\n\
                 $7\r\ncommand\r\n*3\r\n$5\r\nFCall\r\n$4\r\nSPIN\r\n$1\r\n0\r\n\
                 $11\r\nduration_ms\r\n:"
            ),
            "{:?}: {stats}",
            server.kind()
        );
        probe.send(&["FUNCTION", "KILL"]);
        assert_eq!(probe.wait(Duration::from_secs(5)), "+OK\r\n");
        // Located where the hook stopped it, in the library's code.
        assert_eq!(
            runner.wait(Duration::from_secs(10)),
            "-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.\r\n",
            "{:?}",
            server.kind()
        );
        runner.send(&["PING"]);
        assert_eq!(runner.wait(Duration::from_secs(5)), PONG);
    }
}

/// A script that wrote cannot be killed; its own shard's clients still get `-BUSY` until
/// it ends, then their next replies as usual, and the script's client its reply.
#[test]
fn an_unkillable_script_ends_and_its_shard_serves_on() {
    for server in servers(&["--threads", "1"]) {
        let port = server.port();
        let writer = "redis.call('set', KEYS[1], '1') \
                      local function now() local t = redis.call('time') \
                      return tonumber(t[1]) * 1000000 + tonumber(t[2]) end \
                      local stop = now() + 1500000 while now() < stop do end return 'done'";
        let (mut runner, mut probe) = start_busy(port, &["EVAL", writer, "1", "w"], BUSY_EVAL);
        probe.send(&["SCRIPT", "KILL"]);
        let unkillable = probe.wait(Duration::from_secs(5));
        assert!(
            unkillable.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
            "{unkillable}"
        );
        assert_eq!(runner.wait(Duration::from_secs(10)), "$4\r\ndone\r\n");
        probe.send(&["GET", "w"]);
        assert_eq!(probe.wait(Duration::from_secs(5)), "$1\r\n1\r\n");
    }
}

/// SHUTDOWN NOSAVE from a client of the busy shard stops the server, even under a script
/// that wrote (plain SHUTDOWN is refused with BUSY, as Redis).
#[test]
fn shutdown_nosave_from_the_busy_shard_stops_the_server() {
    for threads in ["1", "2"] {
        let mut server = Server::percore(&["--threads", threads, "--busy-reply-threshold", "100"]);
        let port = server.port();
        let writer = "redis.call('set', KEYS[1], '1') while true do end";
        let (mut runner, mut probe) = start_busy(port, &["EVAL", writer, "1", "w"], BUSY_EVAL);
        probe.send(&["SHUTDOWN"]);
        assert_eq!(probe.wait(Duration::from_secs(5)), BUSY_EVAL);
        probe.send(&["SHUTDOWN", "NOSAVE"]);
        assert!(probe.closed(Duration::from_secs(10)));
        assert!(runner.closed(Duration::from_secs(10)));
        assert!(
            server.wait_exit(Duration::from_secs(10)).is_some(),
            "the server still runs"
        );
    }
}

/// With several shards, no client waits for the script: each one, on whichever shard,
/// gets `-BUSY` at once, and SCRIPT KILL works from any of them.
#[test]
fn no_client_of_any_shard_waits_for_a_busy_script() {
    for server in servers(&["--threads", "2"]) {
        let port = server.port();
        let (mut runner, _probe) = start_busy(port, &["EVAL", "while true do end", "0"], BUSY_EVAL);
        let mut others: Vec<Raw> = (0..8).map(|_| Raw::connect(port)).collect();
        for c in &mut others {
            c.send(&["PING"]);
        }
        for c in &mut others {
            assert_eq!(c.wait(Duration::from_secs(5)), BUSY_EVAL);
        }
        others[7].send(&["SCRIPT", "KILL"]);
        assert_eq!(others[7].wait(Duration::from_secs(5)), "+OK\r\n");
        assert!(
            runner
                .wait(Duration::from_secs(10))
                .starts_with("-ERR Script killed")
        );
    }
}
