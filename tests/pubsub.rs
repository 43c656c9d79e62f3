//! Pub/sub: message shapes compared byte for byte with a real `redis-server` in RESP2 and
//! RESP3, delivery across shards in publish order, subscribed-mode errors, RESET, and
//! the `client-output-buffer-limit pubsub` disconnect.
//!
//! Connections land on either shard of a two-shard server as the kernel spreads them
//! (`SO_REUSEPORT`), so each transcript runs several times on fresh connections: the
//! subscriber and the publisher share a shard in some rounds and not in others.

mod common;

use common::{Conn, Server, show};
use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

/// One step of a transcript: connection `on` sends `cmd`, then `reads` lists how many
/// frames each connection reads (replies and pushes), compared between the servers.
struct Step {
    on: usize,
    cmd: &'static str,
    reads: &'static [(usize, usize)],
}

const fn s(on: usize, cmd: &'static str, reads: &'static [(usize, usize)]) -> Step {
    Step { on, cmd, reads }
}

/// Runs `steps` on `conns` fresh connections to each server, `rounds` times; returns
/// every difference.
fn run(redis: &Server, percore: &Server, conns: usize, resp3: bool, steps: &[Step]) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut r: Vec<Conn> = (0..conns).map(|_| redis.conn()).collect();
    let mut p: Vec<Conn> = (0..conns).map(|_| percore.conn()).collect();
    for c in [&mut r[0], &mut p[0]] {
        assert_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
    }
    if resp3 {
        for c in r.iter_mut().chain(p.iter_mut()) {
            let hello = c.cmd_raw(&["HELLO", "3"]);
            assert!(hello.starts_with(b"%"), "HELLO 3: {}", show(&hello));
        }
    }
    for step in steps {
        let args: Vec<&str> = step.cmd.split(' ').collect();
        r[step.on].send_cmd(&args);
        p[step.on].send_cmd(&args);
        for &(who, n) in step.reads {
            for i in 0..n {
                let want = r[who].read_raw();
                let got = p[who].read_raw();
                if want != got {
                    diffs.push(format!(
                        "[{} on {}] frame {i} on conn {who}\n    redis:   {}\n    percore: {}",
                        step.cmd,
                        step.on,
                        show(&want),
                        show(&got)
                    ));
                }
            }
        }
    }
    diffs
}

fn check(conns: usize, steps: &[Step]) {
    let Some(redis) = Server::redis() else {
        return;
    };
    for threads in [1, 2] {
        let percore = Server::percore_threads(threads);
        for resp3 in [false, true] {
            // Several rounds: the connections land on different shards each time.
            for _ in 0..4 {
                let diffs = run(&redis, &percore, conns, resp3, steps);
                assert!(
                    diffs.is_empty(),
                    "threads {threads} resp3 {resp3}: {} frames differ:\n{}",
                    diffs.len(),
                    diffs.join("\n")
                );
            }
        }
    }
}

#[test]
fn subscribe_publish_and_unsubscribe_shapes() {
    check(
        2,
        &[
            s(0, "UNSUBSCRIBE", &[(0, 1)]),
            s(0, "PUNSUBSCRIBE", &[(0, 1)]),
            s(0, "SUNSUBSCRIBE", &[(0, 1)]),
            s(0, "SUBSCRIBE c1 c2 c1", &[(0, 3)]),
            s(0, "PSUBSCRIBE h?llo n*", &[(0, 2)]),
            s(0, "SSUBSCRIBE s1", &[(0, 1)]),
            s(1, "PUBLISH c1 m1", &[(1, 1), (0, 1)]),
            s(1, "PUBLISH hello m2", &[(1, 1), (0, 1)]),
            s(1, "PUBLISH nothere m3", &[(1, 1), (0, 1)]),
            s(1, "PUBLISH other m4", &[(1, 1)]),
            s(1, "SPUBLISH s1 m5", &[(1, 1), (0, 1)]),
            s(1, "SPUBLISH c1 m6", &[(1, 1)]),
            s(1, "PUBLISH s1 m7", &[(1, 1)]),
            s(1, "PUBSUB NUMSUB c1 c2 c3", &[(1, 1)]),
            s(1, "PUBSUB NUMPAT", &[(1, 1)]),
            s(1, "PUBSUB CHANNELS c1", &[(1, 1)]),
            s(1, "PUBSUB CHANNELS x*", &[(1, 1)]),
            s(1, "PUBSUB SHARDCHANNELS", &[(1, 1)]),
            s(1, "PUBSUB SHARDNUMSUB s1 s2", &[(1, 1)]),
            s(1, "PUBSUB HELP", &[(1, 1)]),
            s(1, "PUBSUB CHANNELS a b", &[(1, 1)]),
            s(1, "PUBSUB NUMPAT x", &[(1, 1)]),
            s(1, "PUBSUB FOO", &[(1, 1)]),
            s(0, "UNSUBSCRIBE c2 zz", &[(0, 2)]),
            s(0, "UNSUBSCRIBE", &[(0, 1)]),
            s(0, "PUNSUBSCRIBE n*", &[(0, 1)]),
            s(0, "PUNSUBSCRIBE", &[(0, 1)]),
            s(0, "PUNSUBSCRIBE", &[(0, 1)]),
            s(0, "SUNSUBSCRIBE", &[(0, 1)]),
            s(0, "SUNSUBSCRIBE", &[(0, 1)]),
            s(1, "PUBLISH c1 gone", &[(1, 1)]),
            s(0, "PING", &[(0, 1)]),
            s(0, "SUBSCRIBE", &[(0, 1)]),
            s(0, "PUBLISH", &[(0, 1)]),
        ],
    );
}

#[test]
fn subscribed_mode_restrictions_ping_and_reset() {
    check(
        2,
        &[
            s(0, "SUBSCRIBE ch", &[(0, 1)]),
            s(0, "GET x", &[(0, 1)]),
            s(0, "SET x 1", &[(0, 1)]),
            s(0, "CLIENT GETNAME", &[(0, 1)]),
            s(0, "PUBSUB NUMSUB ch", &[(0, 1)]),
            s(0, "NOSUCH", &[(0, 1)]),
            s(0, "PING", &[(0, 1)]),
            s(0, "PING hi", &[(0, 1)]),
            s(0, "PUBLISH ch self", &[(0, 1)]),
            s(1, "PUBLISH ch other", &[(1, 1), (0, 1)]),
            s(0, "SSUBSCRIBE sc", &[(0, 1)]),
            s(0, "UNSUBSCRIBE", &[(0, 1)]),
            // Still subscribed to a shard channel: still restricted in RESP2.
            s(0, "GET x", &[(0, 1)]),
            s(0, "PSUBSCRIBE p*", &[(0, 1)]),
            s(0, "RESET", &[(0, 1)]),
            s(0, "GET x", &[(0, 1)]),
            s(1, "PUBLISH ch after-reset", &[(1, 1)]),
            s(1, "PUBLISH pp after-reset", &[(1, 1)]),
            s(1, "PUBSUB NUMPAT", &[(1, 1)]),
        ],
    );
}

#[test]
fn several_subscribers_and_patterns() {
    check(
        4,
        &[
            s(0, "SUBSCRIBE news", &[(0, 1)]),
            s(1, "PSUBSCRIBE n* sp*", &[(1, 2)]),
            s(2, "SUBSCRIBE news sports", &[(2, 2)]),
            s(2, "PSUBSCRIBE n*", &[(2, 1)]),
            s(3, "PUBLISH news hello", &[(3, 1), (0, 1), (1, 1), (2, 2)]),
            s(3, "PUBLISH sports goal", &[(3, 1), (1, 1), (2, 1)]),
            s(3, "PUBSUB NUMSUB news sports", &[(3, 1)]),
            s(3, "PUBSUB NUMPAT", &[(3, 1)]),
            s(3, "PUBLISH x empty", &[(3, 1)]),
        ],
    );
}

/// In RESP3 a subscriber may run any command; pushes interleave with its replies in
/// order, including replies another shard computes (keys on both shards).
#[test]
fn resp3_subscriber_runs_commands_between_messages() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    for _ in 0..6 {
        let mut out = Vec::new();
        for server in [&redis, &percore] {
            let mut sub = server.conn();
            let mut publ = server.conn();
            sub.cmd_raw(&["HELLO", "3"]);
            sub.cmd_raw(&["SUBSCRIBE", "ch"]);
            let mut transcript = Vec::new();
            for i in 0..20 {
                let key = format!("k{i}");
                // The GETs hit either shard; the message is published after they ran.
                sub.send_cmd(&["SET", &key, "v"]);
                transcript.extend(sub.read_raw());
                assert_eq!(publ.cmd_raw(&["PUBLISH", "ch", &key]), b":1\r\n");
                sub.send_cmd(&["GET", &key]);
                transcript.extend(sub.read_raw());
                transcript.extend(sub.read_raw());
            }
            out.push(transcript);
        }
        assert_eq!(show(&out[0]), show(&out[1]));
    }
}

/// Several publishers pipelining PUBLISH; every subscriber (on either shard, some by
/// pattern) gets every message, each publisher's in publish order.
#[test]
fn messages_arrive_in_publish_order_per_publisher() {
    const PUBLISHERS: usize = 3;
    const SUBSCRIBERS: usize = 6;
    const MESSAGES: usize = 3000;
    let server = Server::percore_threads(2);
    let mut subs: Vec<Conn> = (0..SUBSCRIBERS)
        .map(|i| {
            let mut c = server.conn();
            if i % 2 == 0 {
                c.cmd_raw(&["SUBSCRIBE", "order"]);
            } else {
                c.cmd_raw(&["PSUBSCRIBE", "ord*"]);
            }
            c
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let mut c = server.conn();
            std::thread::spawn(move || {
                let mut pipeline = Vec::new();
                for i in 0..MESSAGES {
                    pipeline.extend(common::encode_cmd(&[
                        "PUBLISH",
                        "order",
                        &format!("{p}:{i}"),
                    ]));
                }
                c.send(&pipeline);
                for _ in 0..MESSAGES {
                    assert_eq!(c.read_raw(), format!(":{SUBSCRIBERS}\r\n").into_bytes());
                }
            })
        })
        .collect();
    for (n, sub) in subs.iter_mut().enumerate() {
        let mut next: HashMap<usize, usize> = HashMap::new();
        for _ in 0..PUBLISHERS * MESSAGES {
            let frame = sub.read_raw();
            let text = String::from_utf8_lossy(&frame).into_owned();
            let payload = text.trim_end().rsplit("\r\n").next().unwrap_or_default();
            let (p, i) = payload.split_once(':').expect("payload p:i");
            let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
            let want = next.entry(p).or_default();
            assert_eq!(i, *want, "subscriber {n}: publisher {p} out of order");
            *want += 1;
        }
    }
    for p in publishers {
        p.join().expect("publisher");
    }
}

/// A subscriber that reads nothing passes `client-output-buffer-limit pubsub` and is
/// closed, with Redis's log line; its subscriptions go with it.
#[test]
fn slow_subscriber_is_disconnected_at_the_pubsub_limit() {
    let server = Server::percore_threads(2);
    let mut admin = server.conn();
    assert_eq!(
        admin.cmd_raw(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let got = admin.cmd_raw(&["CONFIG", "GET", "client-output-buffer-limit"]);
    assert!(show(&got).contains("pubsub 1048576 0 0"), "{}", show(&got));
    let mut slow = server.conn();
    slow.cmd_raw(&["SUBSCRIBE", "flood"]);
    let payload = "x".repeat(64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "the slow subscriber was never closed"
        );
        let n = admin.cmd_raw(&["PUBLISH", "flood", &payload]);
        if n == b":0\r\n" {
            break;
        }
    }
    assert_eq!(
        admin.cmd_raw(&["PUBSUB", "NUMSUB", "flood"]),
        b"*2\r\n$5\r\nflood\r\n:0\r\n"
    );
    // What was sent before the close may still be read; then the end.
    slow.stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = Vec::new();
    let _ = slow.stream().read_to_end(&mut sink);
    let log = server.output();
    assert!(
        log.contains("scheduled to be closed ASAP for overcoming of output buffer limits"),
        "{log}"
    );
    // A normal client is not held to the pubsub limit.
    assert_eq!(admin.cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// CLIENT LIST shows the subscription counts and the `P` flag; INFO counts channels.
#[test]
fn client_list_and_info_show_subscriptions() {
    let server = Server::percore_threads(1);
    let mut sub = server.conn();
    sub.cmd_raw(&["SUBSCRIBE", "a", "b"]);
    sub.cmd_raw(&["PSUBSCRIBE", "p*"]);
    sub.cmd_raw(&["SSUBSCRIBE", "s"]);
    let mut admin = server.conn();
    let list = admin.cmd_raw(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    let text = String::from_utf8_lossy(&list);
    assert!(text.contains("flags=P "), "{text}");
    assert!(text.contains(" sub=2 psub=1 ssub=1 "), "{text}");
    let normal = admin.cmd_raw(&["CLIENT", "LIST", "TYPE", "normal"]);
    assert!(!String::from_utf8_lossy(&normal).contains("flags=P"));
    assert_eq!(
        common::info_field(&mut admin, "stats", "pubsub_channels"),
        "2"
    );
    assert_eq!(
        common::info_field(&mut admin, "stats", "pubsub_patterns"),
        "1"
    );
    assert_eq!(
        common::info_field(&mut admin, "stats", "pubsubshard_channels"),
        "1"
    );
    drop(sub);
    let deadline = Instant::now() + Duration::from_secs(5);
    while common::info_field(&mut admin, "stats", "pubsub_channels") != "0" {
        assert!(
            Instant::now() < deadline,
            "a closed subscriber's channels stay"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A RESP3 client pipelining PUBLISHes to its own channel: each message comes before its
/// PUBLISH reply, and a long pipeline never stalls the connection.
#[test]
fn publishing_to_itself_in_a_long_pipeline() {
    const MESSAGES: usize = 3000;
    for threads in [1, 2] {
        let server = Server::percore_threads(threads);
        let mut c = server.conn();
        c.cmd_raw(&["HELLO", "3"]);
        c.cmd_raw(&["SUBSCRIBE", "me"]);
        let mut pipeline = Vec::new();
        for i in 0..MESSAGES {
            pipeline.extend(common::encode_cmd(&["PUBLISH", "me", &i.to_string()]));
        }
        c.send(&pipeline);
        for i in 0..MESSAGES {
            let want = format!(
                ">3\r\n$7\r\nmessage\r\n$2\r\nme\r\n${}\r\n{i}\r\n",
                i.to_string().len()
            );
            assert_eq!(
                show(&c.read_raw()),
                show(want.as_bytes()),
                "threads {threads}"
            );
            assert_eq!(c.read_raw(), b":1\r\n", "threads {threads}");
        }
    }
}

/// `timeout` closes idle clients but not subscribers, as in Redis.
#[test]
fn idle_timeout_spares_subscribers() {
    let server = Server::percore(&["--timeout", "1"]);
    let mut sub = server.conn();
    sub.cmd_raw(&["SUBSCRIBE", "quiet"]);
    let mut idle = server.conn();
    idle.cmd_raw(&["PING"]);
    std::thread::sleep(Duration::from_millis(2500));
    idle.expect_closed();
    let mut admin = server.conn();
    assert_eq!(admin.cmd_raw(&["PUBLISH", "quiet", "still"]), b":1\r\n");
    assert_eq!(
        show(&sub.read_raw()),
        show(b"*3\r\n$7\r\nmessage\r\n$5\r\nquiet\r\n$5\r\nstill\r\n")
    );
}

/// INFO counts a channel or pattern once however many shards have subscribers to it.
#[test]
fn info_counts_distinct_channels_across_shards() {
    let server = Server::percore_threads(2);
    let mut subs: Vec<_> = (0..8).map(|_| server.conn()).collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        sub.cmd_raw(&["SUBSCRIBE", "same", &format!("own{i}")]);
        sub.cmd_raw(&["PSUBSCRIBE", "p*"]);
        sub.cmd_raw(&["SSUBSCRIBE", "shard"]);
    }
    let mut admin = server.conn();
    let field = |admin: &mut Conn, f| common::info_field(admin, "stats", f);
    assert_eq!(field(&mut admin, "pubsub_channels"), "9");
    assert_eq!(field(&mut admin, "pubsub_patterns"), "1");
    assert_eq!(field(&mut admin, "pubsubshard_channels"), "1");
    let numpat = admin.cmd_raw(&["PUBSUB", "NUMPAT"]);
    assert_eq!(numpat, b":1\r\n");
}
