//! Regression tests for the two defects of "no request may abort the server or be
//! misread": a keyed container command without its key crashed a shard, and one
//! connection's unfinished request was resumed at its offsets inside another
//! connection's bytes (the parse state lived in the shard).

mod common;

use common::{Server, bulk, err, show};
use percore_net::resp::Frame;
use std::time::Duration;

#[test]
fn object_subcommands_without_a_key_answer_errors_and_the_server_lives() {
    for threads in ["1", "2"] {
        let s = Server::percore(&["--threads", threads]);
        let mut c = s.conn();
        let help = c.cmd(&["OBJECT", "HELP"]);
        let Frame::Array(lines) = help else {
            panic!("OBJECT HELP: {help:?}")
        };
        assert!(lines.len() > 4, "OBJECT HELP lines: {lines:?}");
        for sub in ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"] {
            let lower = sub.to_ascii_lowercase();
            assert_eq!(
                c.cmd(&["OBJECT", sub]),
                err(&format!(
                    "ERR wrong number of arguments for 'object|{lower}' command"
                ))
            );
        }
        assert_eq!(
            c.cmd(&["OBJECT", "nosuch", "k"]),
            err("ERR unknown subcommand 'nosuch'. Try OBJECT HELP.")
        );
        assert_eq!(
            c.cmd(&["OBJECT", "x"]),
            err("ERR unknown subcommand 'x'. Try OBJECT HELP.")
        );
        assert_eq!(
            c.cmd(&["PING"]),
            common::simple("PONG"),
            "threads {threads}"
        );
    }
}

#[test]
fn a_panic_while_a_command_runs_writes_a_crash_report_naming_it() {
    let mut s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    c.send_cmd(&["DEBUG", "ASSERT"]);
    c.expect_closed();
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server aborts");
    assert!(!status.success());
    let log = s.output();
    assert!(log.contains("PERCORE BUG REPORT START"), "{log}");
    assert!(log.contains("argv[0]: 'DEBUG'"), "{log}");
    assert!(log.contains("argv[1]: 'ASSERT'"), "{log}");
}

/// A client that leaves in the middle of a request must not take the parse state of the
/// next client of its shard with it (it hung every later PING on that shard).
#[test]
fn a_client_that_leaves_mid_request_leaves_no_parse_state_behind() {
    for threads in ["1", "2"] {
        let s = Server::percore(&["--threads", threads]);
        for round in 0..8 {
            let mut quitter = s.conn();
            quitter.send(b"*2\r\n$4\r\nECHO\r\n");
            std::thread::sleep(Duration::from_millis(5));
            drop(quitter);
            for i in 0..4 {
                let mut c = s.conn();
                assert_eq!(
                    c.cmd_raw(&["PING"]),
                    b"+PONG\r\n",
                    "threads {threads} round {round} client {i}"
                );
            }
        }
    }
}

/// Two connections of one shard, each with a request that arrives in two pieces, the
/// pieces interleaved: each request is read from its own bytes only. (Before the parse
/// state moved into the connection, B's first piece resumed A's parse at A's offsets.)
#[test]
fn interleaved_partial_requests_of_two_connections_stay_apart() {
    let s = Server::percore(&["--threads", "1"]);
    let mut a = s.conn();
    let mut b = s.conn();
    for round in 0..20usize {
        // Keys of different lengths, so that offsets taken from one request land anywhere
        // in the other; B's value holds a whole command, to be stored, never run.
        let ka = format!("ka{}", "a".repeat(round));
        let kb = format!("kb{}", "b".repeat(40 - round));
        let va = vec![b'x'; 100 + round];
        let mut vb =
            b"*1\r\n$8\r\nFLUSHALL\r\n*3\r\n$3\r\nSET\r\n$4\r\npwnd\r\n$1\r\n1\r\n".repeat(4);
        vb.extend(vec![b'y'; round * 7]);
        let req_a = common::encode_cmd(&[&b"SET"[..], ka.as_bytes(), &va]);
        let req_b = common::encode_cmd(&[&b"SET"[..], kb.as_bytes(), &vb]);
        // A stops inside its value; B's first piece is longer than A's and incomplete.
        let cut_a = req_a.len() - 60;
        let cut_b = (cut_a + 30 + round).min(req_b.len() - 1);
        a.send(&req_a[..cut_a]);
        std::thread::sleep(Duration::from_millis(5));
        b.send(&req_b[..cut_b]);
        std::thread::sleep(Duration::from_millis(5));
        a.send(&req_a[cut_a..]);
        std::thread::sleep(Duration::from_millis(5));
        b.send(&req_b[cut_b..]);
        assert_eq!(show(&a.read_raw()), "+OK\r\n", "A, round {round}");
        assert_eq!(show(&b.read_raw()), "+OK\r\n", "B, round {round}");
        assert_eq!(a.cmd(&["GET", ka.as_str()]), bulk(&va));
        assert_eq!(b.cmd(&["GET", kb.as_str()]), bulk(&vb));
        assert_eq!(a.cmd(&["EXISTS", "pwnd"]), Frame::Int(0));
    }
}
