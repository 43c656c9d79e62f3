//! MONITOR: the lines a monitoring connection receives, compared with a real
//! `redis-server` 7.0 (timestamps dropped, the client's address replaced by a name),
//! with 2 and 3 shards; lines from clients on every shard; a monitor's own keyspace
//! commands refused; a monitor that does not read is closed at the output limit.

mod common;

use common::{Conn, Server, info_field, show, wait_until};
use percore_net::resp::Frame;

/// The client's commands, in order; each reply is compared too.
const SCRIPT: &[&[&str]] = &[
    &["SET", "k1", "v1"],
    &["GET", "k1"],
    &["SET", "we ird\n\t", "\u{1}\"\\\r"],
    &["DEL", "k1", "k2", "k3", "k4"],
    &["MSET", "a", "1", "b", "2", "c", "3"],
    &["MGET", "a", "b", "c"],
    &["NOSUCH", "x"],
    &["GET"],
    &["CONFIG", "GET", "maxmemory"],
    &["CLIENT", "GETNAME"],
    &["CLIENT", "LIST", "ID", "0"],
    &["AUTH", "secret"],
    &["AUTH", "user", "secret"],
    &["HELLO", "2", "AUTH", "user", "secret"],
    &["MULTI"],
    &["SET", "m", "1"],
    &["INCR", "m"],
    &["EXEC"],
    &["MULTI"],
    &["NOSUCH"],
    &["EXEC"],
    &["MULTI"],
    &["SET", "x", "1"],
    &["DISCARD"],
    &["EVAL", "return redis.call('ping')", "0"],
    &["EVAL", "return redis.call('nosuch')", "0"],
    &["SELECT", "1"],
    &["SET", "k1", "x"],
    &["SELECT", "0"],
    &["PUBLISH", "ch", "msg"],
    &["PING"],
    &["ECHO", "end"],
];

/// `+<secs>.<usecs> [<db> <addr>] <args>` → `[<db> <who>] <args>`, with `who` the client's
/// name in the test (or `lua`).
fn normalize(line: &[u8], me: &str) -> String {
    let text = String::from_utf8_lossy(line).into_owned();
    let rest = text
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("not a status line: {text:?}"));
    let (stamp, rest) = rest.split_once(' ').expect("a timestamp");
    let (secs, usecs) = stamp.split_once('.').expect("seconds.micros");
    assert!(
        secs.bytes().all(|b| b.is_ascii_digit())
            && usecs.len() == 6
            && usecs.bytes().all(|b| b.is_ascii_digit()),
        "timestamp {stamp:?}"
    );
    rest.replace(me, "CLIENT")
}

/// The client's address as the server sees it.
fn addr_of(c: &mut Conn) -> String {
    let Frame::Bulk(info) = c.cmd(&["CLIENT", "INFO"]) else {
        panic!("CLIENT INFO");
    };
    let info = String::from_utf8(info).unwrap();
    info.split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .expect("addr=")
        .to_string()
}

/// Runs the script on `server` with a monitor; the client's replies, the monitor's lines
/// and the reply to a GET the monitor sends.
fn transcript(server: &Server) -> (Vec<String>, Vec<String>, String) {
    let mut mon = Conn::connect(server.port());
    assert_eq!(mon.cmd(&["MONITOR"]), common::ok());
    let mut c = Conn::connect(server.port());
    let me = addr_of(&mut c);
    let mut replies = Vec::new();
    for cmd in SCRIPT {
        replies.push(show(&c.cmd_raw(cmd)));
    }
    let mut lines = Vec::new();
    loop {
        let line = mon.read_raw();
        let text = normalize(line.strip_suffix(b"\r\n").unwrap(), &me);
        let end = text.ends_with("\"ECHO\" \"end\"");
        lines.push(text);
        if end {
            break;
        }
    }
    let refused = show(&mon.cmd_raw(&["GET", "k1"]));
    (replies, lines, refused)
}

#[test]
fn monitor_lines_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let want = transcript(&redis);
    assert!(
        want.1.iter().any(|l| l == "[0 lua] \"ping\""),
        "the reference shows script calls: {:?}",
        want.1
    );
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        // Fresh connections land on any shard: several rounds put the monitor and the
        // client on the same and on different shards.
        for round in 0..4 {
            let got = transcript(&percore);
            assert_eq!(got.0, want.0, "replies, {threads} shards, round {round}");
            assert_eq!(
                got.1, want.1,
                "monitor lines, {threads} shards, round {round}"
            );
            assert_eq!(
                got.2, want.2,
                "a monitor's GET, {threads} shards, round {round}"
            );
        }
    }
}

#[test]
fn monitor_sees_clients_of_every_shard_and_stops_on_reset() {
    let percore = Server::percore(&["--threads", "3"]);
    let mut mon = Conn::connect(percore.port());
    assert_eq!(mon.cmd(&["MONITOR"]), common::ok());
    // A second MONITOR is ignored (no reply), as in Redis.
    mon.send_cmd(&["MONITOR"]);
    let mut clients: Vec<Conn> = (0..9).map(|_| Conn::connect(percore.port())).collect();
    let mut want = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let key = format!("key:{i}");
        assert_eq!(c.cmd(&["SET", &key, "v"]), common::ok());
        want.push(format!("\"SET\" \"{key}\" \"v\""));
    }
    let mut got = Vec::new();
    for _ in 0..want.len() {
        let line = String::from_utf8(mon.read_raw()).unwrap();
        got.push(line.trim_end().rsplit_once("] ").unwrap().1.to_string());
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // CLIENT LIST shows the monitor with flag O; RESET ends monitoring.
    let Frame::Bulk(list) = clients[0].cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST");
    };
    assert!(String::from_utf8_lossy(&list).contains("flags=O "));
    assert_eq!(mon.cmd(&["RESET"]), common::simple("RESET"));
    assert_eq!(mon.cmd(&["GET", "key:0"]), common::bulk("v"));
    assert_eq!(clients[1].cmd(&["SET", "after", "reset"]), common::ok());
    assert_eq!(
        mon.cmd(&["PING"]),
        common::simple("PONG"),
        "no line after RESET"
    );
}

#[test]
fn a_monitor_that_does_not_read_is_closed_at_the_normal_output_limit() {
    let percore = Server::percore(&["--threads", "2"]);
    let mut admin = Conn::connect(percore.port());
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        common::ok()
    );
    let mut mon = Conn::connect(percore.port());
    assert_eq!(mon.cmd(&["MONITOR"]), common::ok());
    let value = "x".repeat(100_000);
    // 40 MB of lines: more than socket buffers hold, so output waits in the server.
    let mut writers: Vec<Conn> = (0..4).map(|_| Conn::connect(percore.port())).collect();
    for i in 0..100 {
        for w in &mut writers {
            assert_eq!(w.cmd(&["SET", &format!("k{i}"), &value]), common::ok());
        }
        let Frame::Bulk(list) = admin.cmd(&["CLIENT", "LIST"]) else {
            panic!("CLIENT LIST");
        };
        if !String::from_utf8_lossy(&list).contains("flags=O") {
            break;
        }
    }
    wait_until("the monitor is closed", || {
        let Frame::Bulk(list) = admin.cmd(&["CLIENT", "LIST"]) else {
            panic!("CLIENT LIST");
        };
        !String::from_utf8_lossy(&list).contains("flags=O")
    });
    assert_eq!(info_field(&mut admin, "clients", "connected_clients"), "5");
}
