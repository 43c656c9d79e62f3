//! Start-up and shutdown as a deployment sees them: SHUTDOWN, SIGTERM/SIGINT with clients
//! connected, pid file, configuration errors.

mod common;

use common::{Server, encode_cmd};
use std::process::{Command, Stdio};
use std::time::Duration;

const EXIT_WAIT: Duration = Duration::from_secs(10);

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

#[test]
fn shutdown_nosave_exits_zero_and_closes_clients() {
    let mut s = Server::percore(&["--threads", "2"]);
    let mut idle = s.conn();
    assert_eq!(idle.cmd_raw(&["PING"]), b"+PONG\r\n");
    let mut c = s.conn();
    c.send(&encode_cmd(&["SHUTDOWN", "NOSAVE"]));
    c.expect_closed();
    let status = s
        .wait_exit(EXIT_WAIT)
        .expect("server did not exit after SHUTDOWN");
    assert!(status.success(), "exit status {status}\n{}", s.output());
    idle.expect_closed();
    assert!(s.output().contains("ready to exit"), "{}", s.output());
}

#[test]
fn sigterm_finishes_in_flight_replies_and_exits_zero() {
    let mut s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    // A pipeline whose replies come from both shards.
    let mut req = Vec::new();
    for i in 0..500 {
        req.extend(encode_cmd(&["SET", &format!("k{i}"), "v"]));
    }
    c.send(&req);
    for _ in 0..500 {
        assert_eq!(c.read_raw(), b"+OK\r\n");
    }
    signal(s.pid(), "-TERM");
    let status = s
        .wait_exit(EXIT_WAIT)
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}\n{}", s.output());
    assert!(s.output().contains("Received SIGTERM"), "{}", s.output());
    c.expect_closed();
}

#[test]
fn sigint_exits_zero() {
    let mut s = Server::percore(&[]);
    signal(s.pid(), "-INT");
    let status = s
        .wait_exit(EXIT_WAIT)
        .expect("server did not exit after SIGINT");
    assert!(status.success(), "exit status {status}\n{}", s.output());
    assert!(s.output().contains("Received SIGINT"), "{}", s.output());
}

#[test]
fn pidfile_is_written_and_removed() {
    let dir = std::env::temp_dir().join(format!("percore-pid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pidfile = dir.join("percore.pid");
    let path = pidfile.to_str().expect("utf-8 path");
    let mut s = Server::percore(&["--pidfile", path]);
    let written = std::fs::read_to_string(&pidfile).expect("pid file written");
    assert_eq!(written.trim(), s.pid().to_string());
    signal(s.pid(), "-TERM");
    assert!(s.wait_exit(EXIT_WAIT).is_some_and(|st| st.success()));
    assert!(!pidfile.exists(), "pid file left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_errors_stop_startup_naming_file_and_line() {
    let dir = std::env::temp_dir().join(format!("percore-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("bad.conf");
    std::fs::write(&conf, "port 0\n# comment\nmaxclients lots\n").expect("write conf");
    let out = Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .expect("run percore-server");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FATAL CONFIG FILE ERROR"), "{err}");
    assert!(err.contains("at line 3"), "{err}");
    assert!(err.contains("maxclients lots"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .args(["--port", "0", "--no-such-option", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("run percore-server");
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let s = Server::percore(&["--timeout", "1"]);
    let mut idle = s.conn();
    assert_eq!(idle.cmd_raw(&["PING"]), b"+PONG\r\n");
    let mut busy = s.conn();
    // `busy` keeps talking while `idle` stays silent past the timeout.
    for _ in 0..25 {
        assert_eq!(busy.cmd_raw(&["PING"]), b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(100));
    }
    idle.expect_closed();
    assert_eq!(busy.cmd_raw(&["PING"]), b"+PONG\r\n");
}
