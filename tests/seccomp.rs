//! percore where io_uring is refused (issue 18): the server starts under a seccomp filter
//! that makes `io_uring_setup` fail with EPERM (as Docker's default profile does), and with
//! `io-backend auto` it says why and runs on epoll: it serves clients on both shards,
//! snapshots with both BGSAVE methods (the fork child and the forkless writer thread fall
//! back to plain writes), appends to the AOF, and shuts down cleanly with its data on disk.
//! `io-backend io_uring` there stops at start with the cause. The `*_seccomp` binaries run
//! whole test files under the same filter.

mod common;

use common::{Conn, REFUSE_IO_URING, Server, bulk, encode_cmd, info_field, ok, simple};
use percore_net::resp::Frame;
use std::time::{Duration, Instant};

const EXIT_WAIT: Duration = Duration::from_secs(10);
const SAVE_WAIT: Duration = Duration::from_secs(20);
const KEYS: usize = 2000;

/// Waits until no snapshot runs, then checks the last one succeeded.
fn wait_saved(c: &mut Conn) {
    let deadline = Instant::now() + SAVE_WAIT;
    while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(info_field(c, "persistence", "rdb_last_bgsave_status"), "ok");
}

fn fill(c: &mut Conn) {
    let mut req = Vec::new();
    for i in 0..KEYS {
        req.extend(encode_cmd(&[
            "SET",
            &format!("key:{i}"),
            &format!("value-{i}"),
        ]));
    }
    req.extend(encode_cmd(&["RPUSH", "list", "a", "b", "c"]));
    c.send(&req);
    for _ in 0..=KEYS {
        let reply = c.read_raw();
        assert!(reply == b"+OK\r\n" || reply == b":3\r\n", "{reply:?}");
    }
}

fn check_data(c: &mut Conn) {
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(KEYS as i64 + 1));
    for i in [0, 1, KEYS / 2, KEYS - 1] {
        assert_eq!(
            c.cmd(&["GET", &format!("key:{i}")]),
            bulk(format!("value-{i}"))
        );
    }
    assert_eq!(
        c.cmd(&["LRANGE", "list", "0", "-1"]),
        Frame::Array(vec![bulk("a"), bulk("b"), bulk("c")])
    );
}

#[test]
fn auto_runs_on_epoll_where_io_uring_setup_is_refused() {
    let dir = common::scratch_dir("seccomp");
    let d = dir.to_str().expect("utf-8 path");
    let args = ["--threads", "2", "--dir", d, "--appendonly", "yes"];
    let mut s = Server::percore_env(&args, &[REFUSE_IO_URING]);
    let log = s.output();
    assert!(
        log.contains("io_uring_setup returned EPERM") && log.contains("io backend: epoll"),
        "{log}"
    );
    let mut c = s.conn();
    assert_eq!(info_field(&mut c, "server", "io_backend"), "epoll");
    assert_eq!(info_field(&mut c, "server", "multiplexing_api"), "epoll");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "io-backend"]),
        Frame::Array(vec![bulk("io-backend"), bulk("auto")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "io-backend", "epoll"]),
        common::err(
            "ERR CONFIG SET failed (possibly related to argument 'io-backend') - can't set immutable config"
        )
    );
    fill(&mut c);
    check_data(&mut c);

    // Both snapshot methods write through plain writes in this process and its child.
    for method in ["fork", "forkless"] {
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
            ok()
        );
        assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
        wait_saved(&mut c);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_bgsave_method"),
            method
        );
    }
    assert_eq!(c.cmd(&["SET", "after", "save"]), ok());
    assert_eq!(c.cmd(&["DEL", "after"]), Frame::Int(1));
    c.send(&encode_cmd(&["SHUTDOWN"]));
    c.expect_closed();
    let status = s.wait_exit(EXIT_WAIT).expect("no exit after SHUTDOWN");
    assert!(status.success(), "exit status {status}\n{}", s.output());
    assert!(s.output().contains("ready to exit"), "{}", s.output());
    drop(s);

    // The AOF (and the snapshot) written there load back, again without io_uring.
    assert!(dir.join("dump.rdb").is_file());
    let s = Server::percore_env(&args, &[REFUSE_IO_URING]);
    check_data(&mut s.conn());
    drop(s);
    let s = Server::percore_env(&["--dir", d, "--threads", "2"], &[REFUSE_IO_URING]);
    check_data(&mut s.conn());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `percore-server args` to its exit (it must not start), under the filter when
/// `refused`; returns its output.
fn failed_start(args: &[&str], refused: bool) -> String {
    use std::os::unix::process::CommandExt as _;
    let port = common::free_port().to_string();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_percore-server"));
    cmd.args(["--port", &port, "--save", ""]).args(args);
    if refused {
        // SAFETY: the hook only makes two prctl calls (async-signal-safe).
        #[expect(unsafe_code, reason = "pre_exec hook")]
        unsafe {
            cmd.pre_exec(common::refuse_io_uring);
        }
    }
    let out = cmd.output().expect("spawn percore-server");
    assert!(!out.status.success(), "it started: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn io_uring_required_stops_at_start_with_the_cause() {
    let text = failed_start(&["--io-backend", "io_uring"], true);
    assert!(
        text.contains("io_uring is unavailable: io_uring_setup returned EPERM"),
        "{text}"
    );
    let text = failed_start(&["--io-backend", "kqueue"], false);
    assert!(
        text.contains("argument(s) must be one of the following: auto, io_uring, epoll"),
        "{text}"
    );
}
