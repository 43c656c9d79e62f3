//! MULTI/EXEC/DISCARD/WATCH/UNWATCH against a real `redis-server`: the same scripts on both
//! servers (percore with three shards, so a transaction's keys spread over them), replies
//! compared byte for byte in RESP2 and RESP3.
//!
//! A script line runs on connection A unless it starts with `B:` (a second client, for
//! writes that must fail another client's EXEC); `!sleep MS` pauses. Without
//! `redis-server` the tests print a notice and pass; `PERCORE_REQUIRE_REDIS=1` fails them.

mod common;

use common::{Conn, Server, show, split_args};
use percore_net::resp::Frame;

const CASES: &[(&str, &str)] = &[
    (
        // A watched key deleted by active expiry (or by another client's read, lazily)
        // fails the EXEC: Redis signals expired keys as modified.
        "watched-key-expires",
        "
        SET x foo
        PEXPIRE x 100
        WATCH x
        !sleep 600
        MULTI
        PING
        EXEC
        SET y foo
        PEXPIRE y 100
        WATCH y
        !sleep 150
        B: GET y
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "basic",
        "
        MULTI
        SET k 1
        INCR k
        GET k
        EXEC
        MULTI
        EXEC
        GET k
        ",
    ),
    (
        "errors-outside-multi",
        "
        EXEC
        DISCARD
        exec
        MULTI
        MULTI
        SET a 1
        EXEC
        GET a
        ",
    ),
    (
        "discard",
        "
        SET x old
        MULTI
        SET x new
        INCR counter
        DISCARD
        GET x
        GET counter
        EXEC
        ",
    ),
    (
        "queueing-errors-abort",
        "
        MULTI
        SET a 1
        NOSUCHCOMMAND x y
        SET b 2
        EXEC
        MGET a b
        MULTI
        SET a 1
        SET a
        EXEC
        EXISTS a
        MULTI
        CONFIG NOSUCHSUB
        EXEC
        MULTI
        SAVE
        EXEC
        ",
    ),
    (
        "runtime-errors-do-not-abort",
        "
        SET s text
        MULTI
        SET a 1
        INCR s
        LPUSH s x
        SET b 2
        MSET c 3 d
        EXEC
        MGET a b c d
        ",
    ),
    (
        "watch-inside-multi",
        "
        MULTI
        WATCH x
        SET x 1
        EXEC
        GET x
        ",
    ),
    (
        "watch-touched-by-another-client",
        "
        SET x 1
        WATCH x
        B: SET x 2
        MULTI
        SET y 1
        EXEC
        EXISTS y
        MULTI
        SET y 1
        EXEC
        GET y
        ",
    ),
    (
        "watch-untouched",
        "
        WATCH x y z w
        SET other 1
        MULTI
        SET x 1
        MSET y 2 z 3 w 4
        EXEC
        MGET x y z w
        ",
    ),
    (
        "watch-own-write-before-multi",
        "
        WATCH x
        SET x 1
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "unwatch-and-discard-clear",
        "
        WATCH x
        B: SET x 1
        UNWATCH
        MULTI
        PING
        EXEC
        WATCH x
        B: SET x 2
        MULTI
        PING
        DISCARD
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "exec-unwatches",
        "
        WATCH x
        MULTI
        PING
        EXEC
        B: SET x 3
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "watch-many-keys-one-touched",
        "
        WATCH a b c d e f g h
        B: SET f 1
        MULTI
        SET z 1
        EXEC
        EXISTS z
        ",
    ),
    (
        "watch-flushall-flushdb",
        "
        SET x 1
        WATCH x
        B: FLUSHALL
        MULTI
        PING
        EXEC
        WATCH missing
        B: FLUSHALL
        MULTI
        PING
        EXEC
        SET x 1
        WATCH x
        B: FLUSHDB
        MULTI
        PING
        EXEC
        SELECT 2
        SET x 1
        SELECT 0
        SET x 1
        WATCH x
        B: SELECT 2
        B: FLUSHDB
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "watch-swapdb",
        "
        SET x 1
        WATCH x
        B: SWAPDB 0 1
        MULTI
        PING
        EXEC
        B: SWAPDB 0 1
        WATCH nothere
        B: SWAPDB 0 1
        MULTI
        PING
        EXEC
        B: SWAPDB 0 1
        SELECT 1
        SET y 1
        SELECT 0
        WATCH y
        B: SWAPDB 0 1
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "watch-remembers-database",
        "
        WATCH x
        B: SELECT 1
        B: SET x 1
        MULTI
        PING
        EXEC
        SELECT 1
        WATCH x
        SELECT 0
        B: SET x 2
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "watch-expire-rename",
        "
        SET x 1
        WATCH x
        B: EXPIRE x 100
        MULTI
        PING
        EXEC
        SET src v
        WATCH dst
        B: RENAME src dst
        MULTI
        PING
        EXEC
        SET q 1
        WATCH q
        B: DEL nothing
        B: SETNX q 2
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "watch-expired-keys",
        "
        DEBUG SET-ACTIVE-EXPIRE 0
        SET x 1 PX 50
        WATCH x
        !sleep 120
        MULTI
        PING
        EXEC
        SET s 1 PX 20
        !sleep 60
        WATCH s
        MULTI
        PING
        EXEC
        SET t 1 PX 20
        !sleep 60
        WATCH t
        B: DEL t
        MULTI
        PING
        EXEC
        DEBUG SET-ACTIVE-EXPIRE 1
        ",
    ),
    (
        "execabort-beats-watch",
        "
        WATCH x
        B: SET x 1
        MULTI
        NOSUCH
        EXEC
        MULTI
        PING
        EXEC
        ",
    ),
    (
        "select-inside-multi",
        "
        MULTI
        SELECT 1
        SET k one
        SELECT 0
        SET k zero
        SELECT 99
        GET k
        EXEC
        GET k
        SELECT 1
        GET k
        ",
    ),
    (
        "reset-inside-multi",
        "
        MULTI
        SET a 1
        RESET
        EXEC
        GET a
        ",
    ),
    (
        "multi-shard-commands-inside",
        "
        MULTI
        MSET a 1 b 2 c 3 d 4 e 5
        MGET a b c d e nope
        DEL a b nope
        EXISTS a b c d e
        RENAME c cc
        COPY d dd
        SADD s1 x y
        SADD s2 y z
        SUNIONSTORE s3 s1 s2
        SMOVE s1 s2 x
        RPUSH l1 p q
        LMOVE l1 l2 LEFT RIGHT
        MSETNX m1 1 m2 2
        MSETNX m2 1 m3 3
        DBSIZE
        EXEC
        SMISMEMBER s3 x y z w
        SMISMEMBER s2 x y z
        LRANGE l2 0 -1
        MGET cc dd m1 m2 m3
        ",
    ),
    (
        "keyless-inside-multi",
        "
        MSET a 1 b 2 c 3
        MULTI
        DBSIZE
        FLUSHDB
        DBSIZE
        SET z 1
        EXEC
        DBSIZE
        ",
    ),
    (
        "multi-key-commands-atomic",
        "
        MSET k1 a k2 b k3 c k4 d
        MGET k1 k2 k3 k4
        MSETNX k1 x k5 y
        MSETNX k5 y k6 z
        MGET k5 k6
        UNLINK k1 k2 k5
        TOUCH k3 k4 k6 nope
        EXISTS k1 k3 k4 k6
        SET str abc
        SET str2 abd
        BITOP AND dst str str2
        GET dst
        PFADD h1 a b
        PFADD h2 c
        PFMERGE h3 h1 h2
        PFCOUNT h3
        ",
    ),
    (
        // SMOVE touches the destination only when the member was added there (Redis's
        // type/set "SMOVE only notify dstset when the addition is successful"), and
        // the source whenever the member left it; on one shard and across shards.
        "smove-touches-what-it-changed",
        "
        SADD {s}src a b
        SADD {s}dst a
        WATCH {s}dst
        MULTI
        SADD {s}dst c
        B: SMOVE {s}src {s}dst a
        EXEC
        SCARD {s}dst
        WATCH {s}src
        MULTI
        PING
        B: SMOVE {s}src {s}dst b
        EXEC
        SADD src2 a b
        SADD dst2 a
        WATCH dst2
        MULTI
        SADD dst2 c
        B: SMOVE src2 dst2 a
        EXEC
        WATCH dst2
        MULTI
        PING
        B: SMOVE src2 dst2 b
        EXEC
        WATCH src2
        MULTI
        PING
        B: SMOVE dst2 src2 b
        EXEC
        SMEMBERS src2
        ",
    ),
];

fn run(resp3: bool) {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let percore = Server::percore_threads(3);
    let mut diffs = Vec::new();
    for (name, script) in CASES {
        let mut conns: Vec<[Conn; 2]> = [&redis, &percore]
            .iter()
            .map(|s| [s.conn(), s.conn()])
            .collect();
        for pair in &mut conns {
            assert_eq!(pair[0].cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
            if resp3 {
                for c in pair.iter_mut() {
                    let hello = c.cmd_raw(&["HELLO", "3"]);
                    assert!(hello.starts_with(b"%"), "HELLO 3: {}", show(&hello));
                }
            }
        }
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(ms) = line.strip_prefix("!sleep ") {
                std::thread::sleep(std::time::Duration::from_millis(
                    ms.parse().expect("sleep ms"),
                ));
                continue;
            }
            let (which, text) = match line.strip_prefix("B: ") {
                Some(rest) => (1, rest),
                None => (0, line),
            };
            println!("[{name}] {line}");
            let args = split_args(text);
            let want = conns[0][which].cmd_raw(&args);
            let got = conns[1][which].cmd_raw(&args);
            if want != got {
                diffs.push(format!(
                    "[{name}] {line}\n    redis:   {:?}\n    percore: {:?}",
                    show(&want),
                    show(&got)
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} replies differ from redis-server ({}):\n{}",
        diffs.len(),
        if resp3 { "RESP3" } else { "RESP2" },
        diffs.join("\n")
    );
}

#[test]
fn transactions_match_redis_resp2() {
    run(false);
}

#[test]
fn transactions_match_redis_resp3() {
    run(true);
}

/// The field names of an INFO text, in order (values change between two calls).
fn info_fields(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// INFO inside MULTI/EXEC answers every section and field it answers outside (a
/// transaction's parts once ran without their client, so the server-wide sections, which
/// come from the client's shard, were empty headers).
#[test]
fn info_inside_exec_answers_as_outside() {
    for threads in [1, 3] {
        let percore = Server::percore_threads(threads);
        let mut c = percore.conn();
        // Keys on every shard, so the keyspace section has a line.
        for k in 0..8 {
            assert_eq!(c.cmd_raw(&["SET", &format!("k{k}"), "v"]), b"+OK\r\n");
        }
        for section in ["default", "server", "everything"] {
            let Frame::Bulk(outside) = c.cmd(&["INFO", section]) else {
                panic!("INFO {section} is a bulk string")
            };
            assert_eq!(c.cmd_raw(&["MULTI"]), b"+OK\r\n");
            assert_eq!(c.cmd_raw(&["INFO", section]), b"+QUEUED\r\n");
            let Frame::Array(replies) = c.cmd(&["EXEC"]) else {
                panic!("EXEC answers an array")
            };
            let Some(Frame::Bulk(inside)) = replies.first() else {
                panic!("INFO inside EXEC: {replies:?}")
            };
            assert_eq!(
                info_fields(inside),
                info_fields(&outside),
                "INFO {section} inside EXEC, {threads} shards"
            );
        }
    }
}

/// A replica's view of `port`'s stream, as the Tcl suite's `attach_to_replication_stream`:
/// SYNC, the RDB skipped.
fn attach_to_stream(port: u16) -> std::net::TcpStream {
    use std::io::{BufRead, Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(b"SYNC\r\n").expect("SYNC");
    let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    while line.trim_end().is_empty() {
        line.clear();
        r.read_line(&mut line).expect("the RDB's length");
    }
    let len: usize = line
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("SYNC answered {line:?}"));
    let mut rdb = vec![0; len];
    r.read_exact(&mut rdb).expect("the RDB");
    assert!(r.buffer().is_empty(), "nothing streamed yet");
    s
}

/// REPLICAOF inside MULTI/EXEC (keys on both shards) as Redis's `MULTI / EXEC with
/// REPLICAOF`: EXEC answers every reply, the client's next write gets READONLY, and the
/// replica connected before never sees the transaction.
#[test]
fn replicaof_inside_exec_demotes_as_redis() {
    use std::io::Read;
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2", "--repl-diskless-sync", "no"]);
    let dead = common::free_port().to_string();
    let mut got = Vec::new();
    for server in [&redis, &percore] {
        let mut c = server.conn();
        c.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
        let mut stream = attach_to_stream(server.port());
        let mut replies = Vec::new();
        for cmd in [
            &["SET", "foo", "bar"][..],
            &["MULTI"],
            &["SET", "foo2", "bar"],
            &["REPLICAOF", "127.0.0.1", &dead],
            &["SET", "foo3", "bar"],
            &["EXEC"],
            &["SET", "foo4", "bar"],
            &["MGET", "foo", "foo2", "foo3", "foo4"],
        ] {
            replies.push(format!("{cmd:?}: {}", show(&c.cmd_raw(cmd))));
        }
        // What the replica got: Redis 7.0 keeps its replicas (percore drops them) and
        // propagates nothing more as a replica.
        let mut seen = Vec::new();
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let seen = String::from_utf8_lossy(&seen).to_lowercase();
        replies.push(format!(
            "stream has foo: {}, foo2: {}, foo3: {}",
            seen.contains("\r\nfoo\r\n"),
            seen.contains("foo2"),
            seen.contains("foo3")
        ));
        replies.push(show(&c.cmd_raw(&["REPLICAOF", "NO", "ONE"])));
        replies.push(show(&c.cmd_raw(&["SET", "foo5", "bar"])));
        got.push(replies);
    }
    assert_eq!(got[0], got[1], "redis (left) vs percore (right)");
}
