//! Blocking commands (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP)
//! against percore with two shards: waiters and pushers on different shards, FIFO order
//! of many waiters, BLMOVE chains across shards, timeouts, CLIENT UNBLOCK, disconnection,
//! type changes, RESP3 shapes, no element lost or served twice; and the deterministic
//! cases replayed against a real `redis-server`, replies compared byte for byte.
//!
//! A connection lands on either shard (`SO_REUSEPORT`), so each scenario runs with keys
//! on both shards and fresh connections: waiter, key and pusher meet on different shards
//! in every run. Every wait is bounded.

mod common;

use common::{Conn, Server, info_field, show};
use percore_engine::slot::shard_of_key;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a test waits for the server to reach a state (blocked client counts).
const STATE_TIMEOUT: Duration = Duration::from_secs(10);

/// A key named `{prefix}N` that lives on `shard` of `shards`.
fn key_on(shard: usize, shards: usize, prefix: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| shard_of_key(k.as_bytes(), shards) == shard)
        .expect("some key lands on every shard")
}

/// Waits until INFO reports `n` blocked clients (the registrations are in).
fn wait_blocked(ctl: &mut Conn, n: usize) {
    let start = Instant::now();
    loop {
        let now: usize = info_field(ctl, "clients", "blocked_clients")
            .parse()
            .expect("a count");
        if now == n {
            return;
        }
        assert!(
            start.elapsed() < STATE_TIMEOUT,
            "blocked_clients stayed {now}, expected {n}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn raw(c: &mut Conn, args: &[&str]) -> String {
    show(&c.cmd_raw(args))
}

fn pair(key: &str, v: &str) -> String {
    format!("*2\r\n${}\r\n{key}\r\n${}\r\n{v}\r\n", key.len(), v.len())
}

/// Reads one reply, failing (not hanging) if none comes within `d`.
fn read_within(c: &mut Conn, d: Duration) -> String {
    c.stream().set_read_timeout(Some(d)).expect("timeout");
    let r = show(&c.read_raw());
    c.stream()
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    r
}

/// Asserts that nothing arrives on `c` for `d`.
fn nothing_within(conn: &Conn, wait: Duration) {
    use std::io::Read;
    let mut stream = conn.stream();
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => panic!("connection closed"),
        Ok(n) => panic!("unexpected reply {:?}", show(&buf[..n])),
        Err(_) => {}
    }
    stream
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
}

#[test]
fn a_waiter_is_woken_by_a_push_on_any_shard() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    for round in 0..6 {
        for shard in 0..2 {
            let key = key_on(shard, 2, &format!("w{round}-"));
            let mut waiter = server.conn();
            waiter.send_cmd(&["BLPOP", &key, "10"]);
            wait_blocked(&mut ctl, 1);
            let mut pusher = server.conn();
            assert_eq!(raw(&mut pusher, &["RPUSH", &key, "v1", "v2"]), ":2\r\n");
            assert_eq!(read_within(&mut waiter, STATE_TIMEOUT), pair(&key, "v1"));
            assert_eq!(
                raw(&mut ctl, &["LRANGE", &key, "0", "-1"]),
                "*1\r\n$2\r\nv2\r\n"
            );
            wait_blocked(&mut ctl, 0);
        }
        // One waiter on keys of both shards: the push on either wakes it, once.
        let (a, b) = (
            key_on(0, 2, &format!("a{round}-")),
            key_on(1, 2, &format!("b{round}-")),
        );
        let pushed = if round % 2 == 0 { &a } else { &b };
        let mut waiter = server.conn();
        waiter.send_cmd(&["BRPOP", &a, &b, "10"]);
        wait_blocked(&mut ctl, 1);
        let mut pusher = server.conn();
        assert_eq!(raw(&mut pusher, &["LPUSH", pushed, "x", "y"]), ":2\r\n");
        assert_eq!(read_within(&mut waiter, STATE_TIMEOUT), pair(pushed, "x"));
        wait_blocked(&mut ctl, 0);
        assert_eq!(
            raw(&mut ctl, &["LRANGE", pushed, "0", "-1"]),
            "*1\r\n$1\r\ny\r\n"
        );
        assert_eq!(info_field(&mut ctl, "clients", "total_blocking_keys"), "0");
        // What the waiter sent after its blocking command runs once it is served.
        assert_eq!(raw(&mut waiter, &["PING"]), "+PONG\r\n");
    }
}

#[test]
fn many_waiters_on_one_key_are_served_in_the_order_they_blocked() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    for shard in 0..2 {
        let key = key_on(shard, 2, "fifo");
        let mut waiters: Vec<Conn> = Vec::new();
        for i in 0..12 {
            let mut w = server.conn();
            // Mixed commands on one key: all are list pops from the head.
            if i % 3 == 2 {
                w.send_cmd(&["BLMPOP", "10", "1", &key, "LEFT"]);
            } else {
                w.send_cmd(&["BLPOP", &key, "10"]);
            }
            wait_blocked(&mut ctl, i + 1);
            waiters.push(w);
        }
        let items: Vec<String> = (0..12).map(|i| format!("e{i}")).collect();
        let mut push = vec!["RPUSH", key.as_str()];
        push.extend(items.iter().map(String::as_str));
        assert_eq!(raw(&mut ctl, &push), ":12\r\n");
        for (i, w) in waiters.iter_mut().enumerate() {
            let got = read_within(w, STATE_TIMEOUT);
            let want = if i % 3 == 2 {
                format!(
                    "*2\r\n${}\r\n{key}\r\n*1\r\n${}\r\n{}\r\n",
                    key.len(),
                    items[i].len(),
                    items[i]
                )
            } else {
                pair(&key, &items[i])
            };
            assert_eq!(got, want, "waiter {i}");
        }
        assert_eq!(raw(&mut ctl, &["EXISTS", &key]), ":0\r\n");
        wait_blocked(&mut ctl, 0);
    }
}

#[test]
fn blmove_chains_cross_shards() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    // a (shard 0) -> b (shard 1) -> c (shard 0) -> d (shard 1).
    for round in 0..3 {
        let a = key_on(0, 2, &format!("r{round}a"));
        let b = key_on(1, 2, &format!("r{round}b"));
        let c = key_on(0, 2, &format!("r{round}c"));
        let d = key_on(1, 2, &format!("r{round}d"));
        let mut w1 = server.conn();
        w1.send_cmd(&["BLMOVE", &a, &b, "LEFT", "RIGHT", "10"]);
        wait_blocked(&mut ctl, 1);
        let mut w2 = server.conn();
        w2.send_cmd(&["BRPOPLPUSH", &b, &c, "10"]);
        wait_blocked(&mut ctl, 2);
        let mut w3 = server.conn();
        w3.send_cmd(&["BLMOVE", &c, &d, "RIGHT", "LEFT", "10"]);
        wait_blocked(&mut ctl, 3);
        let mut pusher = server.conn();
        assert_eq!(raw(&mut pusher, &["RPUSH", &a, "item"]), ":1\r\n");
        for w in [&mut w1, &mut w2, &mut w3] {
            assert_eq!(read_within(w, STATE_TIMEOUT), "$4\r\nitem\r\n");
        }
        assert_eq!(raw(&mut ctl, &["EXISTS", &a, &b, &c]), ":0\r\n");
        assert_eq!(
            raw(&mut ctl, &["LRANGE", &d, "0", "-1"]),
            "*1\r\n$4\r\nitem\r\n"
        );
        wait_blocked(&mut ctl, 0);
    }
    // A destination of another type: WRONGTYPE to the waiter, the element stays.
    let (src, dst) = (key_on(0, 2, "src"), key_on(1, 2, "dst"));
    assert_eq!(raw(&mut ctl, &["SET", &dst, "string"]), "+OK\r\n");
    let mut w = server.conn();
    w.send_cmd(&["BLMOVE", &src, &dst, "LEFT", "LEFT", "10"]);
    wait_blocked(&mut ctl, 1);
    assert_eq!(raw(&mut ctl, &["RPUSH", &src, "x"]), ":1\r\n");
    assert_eq!(
        read_within(&mut w, STATE_TIMEOUT),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    wait_blocked(&mut ctl, 0);
    assert_eq!(
        raw(&mut ctl, &["LRANGE", &src, "0", "-1"]),
        "*1\r\n$1\r\nx\r\n"
    );
}

#[test]
fn timeouts_answer_null_at_their_time() {
    let server = Server::percore_threads(2);
    let mut c = server.conn();
    for (args, want) in [
        (vec!["BLPOP", "nokey", "0.2"], "*-1\r\n"),
        (vec!["BRPOP", "nokey", "other", "0.05"], "*-1\r\n"),
        (
            vec!["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.1"],
            "*-1\r\n",
        ),
        (vec!["BRPOPLPUSH", "nokey", "d", "0.01"], "*-1\r\n"),
        (
            vec!["BLMPOP", "0.1", "2", "nokey", "k2", "RIGHT"],
            "*-1\r\n",
        ),
        (vec!["BZPOPMIN", "nokey", "0.1"], "*-1\r\n"),
        (vec!["BZMPOP", "0.001", "1", "nokey", "MAX"], "*-1\r\n"),
    ] {
        let secs: f64 = args
            .iter()
            .find_map(|a| a.parse::<f64>().ok().filter(|v| *v > 0.0 && *v < 1.0))
            .expect("a fractional timeout");
        let start = Instant::now();
        assert_eq!(raw(&mut c, &args), want, "{args:?}");
        let took = start.elapsed();
        assert!(
            // Deadlines count whole milliseconds from when the request was read.
            took + Duration::from_millis(1) >= Duration::from_secs_f64(secs)
                && took < Duration::from_secs(5),
            "{args:?} took {took:?}"
        );
    }
    assert!(raw(&mut c, &["HELLO", "3"]).starts_with('%'));
    assert_eq!(raw(&mut c, &["BLPOP", "nokey", "0.01"]), "_\r\n");
    assert_eq!(
        raw(&mut c, &["BLMOVE", "a", "b", "LEFT", "LEFT", "0.01"]),
        "_\r\n"
    );
    let mut ctl = server.conn();
    wait_blocked(&mut ctl, 0);
    assert_eq!(info_field(&mut ctl, "clients", "total_blocking_keys"), "0");
}

#[test]
fn client_unblock_timeout_and_error() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    for shard in 0..2 {
        let key = key_on(shard, 2, "ub");
        let mut w = server.conn();
        let id = raw(&mut w, &["CLIENT", "ID"]);
        let id = id.trim_start_matches(':').trim_end().to_string();
        w.send_cmd(&["BLPOP", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        let list = String::from_utf8_lossy(&ctl.cmd_raw(&["CLIENT", "LIST"])).into_owned();
        assert!(list.contains(&format!("id={id} ")), "{list}");
        assert!(
            list.lines()
                .any(|l| l.contains(&format!("id={id} ")) && l.contains("flags=b")),
            "{list}"
        );
        assert_eq!(raw(&mut ctl, &["CLIENT", "UNBLOCK", &id]), ":1\r\n");
        assert_eq!(read_within(&mut w, STATE_TIMEOUT), "*-1\r\n");
        wait_blocked(&mut ctl, 0);
        w.send_cmd(&["BZPOPMAX", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(
            raw(&mut ctl, &["CLIENT", "UNBLOCK", &id, "error"]),
            ":1\r\n"
        );
        assert_eq!(
            read_within(&mut w, STATE_TIMEOUT),
            "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
        );
        wait_blocked(&mut ctl, 0);
        assert_eq!(raw(&mut ctl, &["CLIENT", "UNBLOCK", &id]), ":0\r\n");
        // Unblocked, it stays usable and nothing is left registered.
        assert_eq!(raw(&mut w, &["RPUSH", &key, "v"]), ":1\r\n");
        assert_eq!(raw(&mut w, &["LPOP", &key]), "$1\r\nv\r\n");
        assert_eq!(info_field(&mut ctl, "clients", "total_blocking_keys"), "0");
    }
}

#[test]
fn a_client_that_disconnects_while_blocked_takes_nothing() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    for shard in 0..2 {
        let key = key_on(shard, 2, "gone");
        for _ in 0..3 {
            let mut w = server.conn();
            w.send_cmd(&["BLPOP", &key, "0"]);
            wait_blocked(&mut ctl, 1);
            drop(w);
            wait_blocked(&mut ctl, 0);
            assert_eq!(info_field(&mut ctl, "clients", "total_blocking_keys"), "0");
            assert_eq!(raw(&mut ctl, &["RPUSH", &key, "kept"]), ":1\r\n");
            assert_eq!(raw(&mut ctl, &["LPOP", &key]), "$4\r\nkept\r\n");
        }
    }
}

#[test]
fn type_changes_while_clients_wait() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    for shard in 0..2 {
        let key = key_on(shard, 2, "ty");
        let other = key_on(1 - shard, 2, "src");
        assert_eq!(raw(&mut ctl, &["SET", &key, "s"]), "+OK\r\n");
        let mut w = server.conn();
        assert_eq!(
            raw(&mut w, &["BLPOP", &key, "0"]),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(raw(&mut ctl, &["DEL", &key]), ":1\r\n");
        w.send_cmd(&["BLPOP", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        // Another type appears: the waiter keeps waiting (Redis 7.0).
        assert_eq!(raw(&mut ctl, &["SET", &key, "str"]), "+OK\r\n");
        assert!(raw(&mut ctl, &["ZADD", &key, "1", "m"]).starts_with("-WRONGTYPE"));
        nothing_within(&w, Duration::from_millis(100));
        // Deleted, then created as a list: served.
        assert_eq!(raw(&mut ctl, &["DEL", &key]), ":1\r\n");
        assert_eq!(raw(&mut ctl, &["RPUSH", &key, "a"]), ":1\r\n");
        assert_eq!(read_within(&mut w, STATE_TIMEOUT), pair(&key, "a"));
        // A RENAME onto the key (from another shard) wakes it.
        w.send_cmd(&["BLPOP", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(raw(&mut ctl, &["RPUSH", &other, "r1", "r2"]), ":2\r\n");
        assert_eq!(raw(&mut ctl, &["RENAME", &other, &key]), "+OK\r\n");
        assert_eq!(read_within(&mut w, STATE_TIMEOUT), pair(&key, "r1"));
        assert_eq!(raw(&mut ctl, &["DEL", &key]), ":1\r\n");
        // A zset waiter and a list waiter on one key: each served by its own type.
        let mut z = server.conn();
        z.send_cmd(&["BZPOPMIN", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        w.send_cmd(&["BLPOP", &key, "0"]);
        wait_blocked(&mut ctl, 2);
        assert_eq!(raw(&mut ctl, &["RPUSH", &key, "l"]), ":1\r\n");
        assert_eq!(read_within(&mut w, STATE_TIMEOUT), pair(&key, "l"));
        assert_eq!(raw(&mut ctl, &["ZADD", &key, "2.5", "m"]), ":1\r\n");
        assert_eq!(
            read_within(&mut z, STATE_TIMEOUT),
            format!("*3\r\n${}\r\n{key}\r\n$1\r\nm\r\n$3\r\n2.5\r\n", key.len())
        );
        wait_blocked(&mut ctl, 0);
        // FLUSHALL keeps a waiter waiting; SWAPDB wakes one whose key now exists.
        w.send_cmd(&["BLPOP", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(raw(&mut ctl, &["FLUSHALL"]), "+OK\r\n");
        nothing_within(&w, Duration::from_millis(50));
        assert_eq!(raw(&mut ctl, &["SELECT", "1"]), "+OK\r\n");
        assert_eq!(raw(&mut ctl, &["RPUSH", &key, "in1"]), ":1\r\n");
        assert_eq!(raw(&mut ctl, &["SWAPDB", "0", "1"]), "+OK\r\n");
        assert_eq!(read_within(&mut w, STATE_TIMEOUT), pair(&key, "in1"));
        assert_eq!(raw(&mut ctl, &["SELECT", "0"]), "+OK\r\n");
        wait_blocked(&mut ctl, 0);
        assert_eq!(raw(&mut ctl, &["FLUSHALL"]), "+OK\r\n");
    }
}

#[test]
fn sorted_set_waiters_and_resp3_shapes() {
    let server = Server::percore_threads(2);
    let mut ctl = server.conn();
    for shard in 0..2 {
        let key = key_on(shard, 2, "zs");
        let mut w = server.conn();
        assert!(raw(&mut w, &["HELLO", "3"]).starts_with('%'));
        w.send_cmd(&["BZPOPMAX", "nokey", &key, "0"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(raw(&mut ctl, &["ZADD", &key, "1", "a", "2", "b"]), ":2\r\n");
        assert_eq!(
            read_within(&mut w, STATE_TIMEOUT),
            format!("*3\r\n${}\r\n{key}\r\n$1\r\nb\r\n,2\r\n", key.len())
        );
        w.send_cmd(&["BZMPOP", "0", "1", &key, "MIN", "COUNT", "5"]);
        assert_eq!(
            read_within(&mut w, STATE_TIMEOUT),
            format!(
                "*2\r\n${}\r\n{key}\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n",
                key.len()
            )
        );
        w.send_cmd(&["BZMPOP", "0", "2", "nokey", &key, "MAX", "COUNT", "2"]);
        wait_blocked(&mut ctl, 1);
        assert_eq!(
            raw(&mut ctl, &["ZADD", &key, "1", "a", "2", "b", "3", "c"]),
            ":3\r\n"
        );
        assert_eq!(
            read_within(&mut w, STATE_TIMEOUT),
            format!(
                "*2\r\n${}\r\n{key}\r\n*2\r\n*2\r\n$1\r\nc\r\n,3\r\n*2\r\n$1\r\nb\r\n,2\r\n",
                key.len()
            )
        );
        w.send_cmd(&["BLMPOP", "0", "1", &key, "LEFT"]);
        assert_eq!(
            read_within(&mut w, STATE_TIMEOUT),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(raw(&mut w, &["BZPOPMIN", "nokey", "0.01"]), "_\r\n");
        assert_eq!(raw(&mut ctl, &["DEL", &key]), ":1\r\n");
    }
}

/// Waiters racing the pushes (threads, each with its own connection).
const RACE_WAITERS: usize = 8;
/// Elements pushed during the race.
const RACE_PUSHES: usize = 300;

/// Waiters on keys of both shards with short timeouts race pushers: every element pushed
/// is either delivered to exactly one waiter or still in a list, never both, never lost.
#[test]
fn no_element_is_lost_or_served_twice_under_races() {
    let server = Server::percore_threads(2);
    let keys = [key_on(0, 2, "race"), key_on(1, 2, "race")];
    let port = server.port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..RACE_WAITERS {
        let keys = keys.clone();
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            let mut got = Vec::new();
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                // Alternate the key order and the timeouts (some expire mid-race).
                let (first, second) = if (i + round) % 2 == 0 {
                    (&keys[0], &keys[1])
                } else {
                    (&keys[1], &keys[0])
                };
                let timeout = if round % 3 == 0 { "0.001" } else { "0.02" };
                let cmd: Vec<&str> = if round % 4 == 0 {
                    vec!["BLMPOP", timeout, "2", first, second, "LEFT", "COUNT", "2"]
                } else {
                    vec!["BLPOP", first, second, timeout]
                };
                let reply = conn.cmd(&cmd);
                collect_items(&reply, &mut got);
            }
            got
        }));
    }
    let mut pusher = Conn::connect(port);
    for p in 0..RACE_PUSHES {
        let item = format!("i{p}");
        let key = &keys[p % 2];
        assert!(show(&pusher.cmd_raw(&["RPUSH", key, &item])).starts_with(':'));
        if p % 16 == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all: Vec<String> = Vec::new();
    for h in handles {
        all.extend(h.join().expect("waiter thread"));
    }
    for key in &keys {
        let r = pusher.cmd(&["LRANGE", key, "0", "-1"]);
        collect_items(&r, &mut all);
    }
    all.sort();
    let mut want: Vec<String> = (0..RACE_PUSHES).map(|p| format!("i{p}")).collect();
    want.sort();
    assert_eq!(all, want);
    wait_blocked(&mut pusher, 0);
    assert_eq!(
        info_field(&mut pusher, "clients", "total_blocking_keys"),
        "0"
    );
}

/// The bulk strings of a reply that look like pushed items (`i<n>`).
fn collect_items(f: &percore_net::resp::Frame, out: &mut Vec<String>) {
    use percore_net::resp::Frame;
    match f {
        Frame::Bulk(b) if b.first() == Some(&b'i') => {
            out.push(String::from_utf8_lossy(b).into_owned());
        }
        Frame::Array(items) => items.iter().for_each(|i| collect_items(i, out)),
        _ => {}
    }
}

/// The same scripts, step by step, against redis-server and percore (one and two shards):
/// replies byte for byte. A `Wait(n)` step waits for `n` blocked clients; a `Read(c)`
/// step reads one reply that connection `c` was owed.
#[test]
fn deterministic_cases_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let one = Server::percore_threads(1);
    let two = Server::percore_threads(2);
    let script = script();
    let want = run_script(&redis, &script);
    for (name, server) in [("1 shard", &one), ("2 shards", &two)] {
        let got = run_script(server, &script);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: step {i} {:?}", script[g.0]);
        }
        assert_eq!(got.len(), want.len());
    }
}

/// Rounds of [`waiters_on_two_keys_are_served_key_by_key`] (fresh connections each, so
/// the waiters land on both shards).
const KEY_BY_KEY_ROUNDS: usize = 12;

/// Four clients blocked on the same two keys (BLMPOP, BZMPOP), both made ready by one
/// transaction: Redis serves the first key to its waiters in order until it is empty,
/// then the second (the Tcl suite's "BLMPOP/BZMPOP with multiple blocked clients"). With
/// waiters on another shard than the keys, a waiter's claim for the first key must be
/// answered before the second key serves anyone.
#[test]
fn waiters_on_two_keys_are_served_key_by_key() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let two = Server::percore_threads(2);
    for script in [key_by_key_script(false), key_by_key_script(true)] {
        let want = run_script(&redis, &script);
        for round in 0..KEY_BY_KEY_ROUNDS {
            let got = run_script(&two, &script);
            assert_eq!(got, want, "round {round}");
        }
    }
}

fn key_by_key_script(zset: bool) -> Vec<Step> {
    use Step::{Cmd, Read, Send, Wait};
    let (cmd, a, b, fill_a, fill_b, refill): (_, _, _, Vec<_>, Vec<_>, Vec<_>) = if zset {
        (
            "BZMPOP",
            "z{t}",
            "z2{t}",
            vec![
                "ZADD", "z{t}", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
            ],
            vec![
                "ZADD", "z2{t}", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
            ],
            vec!["ZADD", "z2{t}", "1", "a", "2", "b", "3", "c"],
        )
    } else {
        (
            "BLMPOP",
            "l{t}",
            "l2{t}",
            vec!["LPUSH", "l{t}", "a", "b", "c", "d", "e"],
            vec!["LPUSH", "l2{t}", "1", "2", "3", "4", "5"],
            vec!["LPUSH", "l2{t}", "1", "2", "3"],
        )
    };
    let (first, last) = if zset {
        ("MIN", "MAX")
    } else {
        ("LEFT", "RIGHT")
    };
    let mut s = vec![Cmd(0, vec!["DEL", a, b])];
    for (i, (end, count)) in [(first, "1"), (last, "10"), (first, "10"), (last, "1")]
        .into_iter()
        .enumerate()
    {
        s.push(Send(i + 1, vec![cmd, "0", "2", a, b, end, "COUNT", count]));
        s.push(Wait(i + 1));
    }
    s.extend([
        Cmd(0, vec!["MULTI"]),
        Cmd(0, fill_a),
        Cmd(0, fill_b),
        Cmd(0, vec!["EXEC"]),
        Read(1),
        Read(2),
        Read(3),
        Cmd(0, refill),
        Read(4),
        Cmd(0, vec!["DEL", a, b]),
        Wait(0),
    ]);
    s
}

#[derive(Debug)]
enum Step {
    /// Connection, command: send and read the reply.
    Cmd(usize, Vec<&'static str>),
    /// Send without reading (a command that blocks).
    Send(usize, Vec<&'static str>),
    Wait(usize),
    Read(usize),
}

fn script() -> Vec<Step> {
    use Step::{Cmd, Read, Send, Wait};
    let mut s = vec![Cmd(0, vec!["FLUSHALL"])];
    // Argument errors, in Redis's order of checks.
    for args in [
        vec!["BLPOP", "k", "abc"],
        vec!["BLPOP", "k", "-1"],
        vec!["BLPOP", "k", "nan"],
        vec!["BLPOP", "k", "inf"],
        vec!["BLPOP", "k", "1e400"],
        vec!["BLPOP", "k", " 1"],
        vec!["BLPOP", "k", ""],
        vec!["BRPOP", "k", "-0.5"],
        vec!["BLMOVE", "a", "b", "UP", "LEFT", "x"],
        vec!["BLMOVE", "a", "b", "LEFT", "LEFT", "x"],
        vec!["BLMOVE", "a", "b", "LEFT", "RIGHT", "-1"],
        vec!["BRPOPLPUSH", "a", "b", "x"],
        vec!["BLMPOP", "x", "0", "a", "LEFT"],
        vec!["BLMPOP", "0", "0", "a", "LEFT"],
        vec!["BLMPOP", "0", "2", "a", "LEFT"],
        vec!["BLMPOP", "0", "1", "a", "UP"],
        vec!["BLMPOP", "0", "1", "a", "LEFT", "COUNT", "0"],
        vec!["BLMPOP", "0", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"],
        vec!["BLMPOP", "0", "1", "a", "LEFT", "extra"],
        vec!["BZPOPMIN", "z", "x"],
        vec!["BZMPOP", "0", "1", "z", "MID"],
        vec!["BZMPOP", "0", "-1", "z", "MIN"],
        vec!["BZMPOP", "1", "1", "z", "MIN", "COUNT", "-3"],
        vec!["BZMPOP", "x", "1", "z", "MIN"],
        vec!["BLPOP", "k"],
        vec!["BZMPOP", "0", "1", "z"],
        vec!["CLIENT", "UNBLOCK"],
        vec!["CLIENT", "UNBLOCK", "x"],
        vec!["CLIENT", "UNBLOCK", "1", "sometimes"],
        vec!["CLIENT", "UNBLOCK", "99999", "TIMEOUT"],
        vec!["CLIENT", "UNBLOCK", "1", "TIMEOUT", "extra"],
    ] {
        s.push(Cmd(0, args));
    }
    // Data present: answered at once, keys in order, wrong types.
    for args in [
        vec!["RPUSH", "l1", "a", "b", "c"],
        vec!["RPUSH", "l2", "x"],
        vec!["SET", "str", "v"],
        vec!["BLPOP", "nokey", "l2", "l1", "0"],
        vec!["BRPOP", "l1", "l2", "0"],
        vec!["BLPOP", "nokey", "str", "l1", "0"],
        vec!["BLPOP", "l1", "str", "0"],
        vec!["BLMOVE", "l1", "l3", "LEFT", "RIGHT", "0"],
        vec!["BLMOVE", "l3", "str", "LEFT", "RIGHT", "0"],
        vec!["BRPOPLPUSH", "l3", "l3", "0"],
        vec![
            "BLMPOP", "0", "3", "nokey", "l3", "l1", "RIGHT", "COUNT", "10",
        ],
        vec!["BLMPOP", "0", "2", "str", "l3", "LEFT"],
        vec!["ZADD", "z1", "1", "a", "2", "b", "3", "c"],
        vec!["BZPOPMIN", "nokey", "z1", "0"],
        vec!["BZPOPMAX", "z1", "0"],
        vec!["BZPOPMIN", "str", "0"],
        vec!["BZMPOP", "0", "2", "nokey", "z1", "MAX", "COUNT", "5"],
        vec!["ZADD", "z1", "9", "q"],
        vec!["BLPOP", "z1", "0"],
        vec!["BZPOPMAX", "z1", "0"],
        vec!["EXISTS", "l1", "l2", "l3", "z1"],
        vec!["BLPOP", "nokey", "0.01"],
        vec!["BLMOVE", "nokey", "l1", "LEFT", "LEFT", "0.01"],
        vec!["BZMPOP", "0.01", "1", "nokey", "MIN"],
    ] {
        s.push(Cmd(0, args));
    }
    // Two connections: blocking, serving, FIFO, type changes, BLMOVE chain, unblock.
    s.extend([
        Send(1, vec!["BLPOP", "q", "0"]),
        Wait(1),
        Send(2, vec!["BRPOP", "q", "r", "0"]),
        Wait(2),
        Cmd(0, vec!["RPUSH", "q", "one", "two", "three"]),
        Read(1),
        Read(2),
        Cmd(0, vec!["LRANGE", "q", "0", "-1"]),
        Wait(0),
        Send(1, vec!["BLMOVE", "s1", "s2", "RIGHT", "LEFT", "0"]),
        Wait(1),
        Send(2, vec!["BLMOVE", "s2", "s3", "LEFT", "LEFT", "0"]),
        Wait(2),
        Cmd(0, vec!["LPUSH", "s1", "m"]),
        Read(1),
        Read(2),
        Cmd(0, vec!["LRANGE", "s3", "0", "-1"]),
        Cmd(0, vec!["EXISTS", "s1", "s2"]),
        Send(1, vec!["BLPOP", "t", "0"]),
        Wait(1),
        Cmd(0, vec!["SET", "t", "string"]),
        Cmd(0, vec!["HSET", "t2", "f", "v"]),
        Cmd(0, vec!["RENAME", "t2", "t"]),
        Cmd(0, vec!["TYPE", "t"]),
        Cmd(0, vec!["DEL", "t"]),
        Cmd(0, vec!["RPUSH", "t", "finally"]),
        Read(1),
        Send(1, vec!["BZPOPMIN", "zz", "0"]),
        Wait(1),
        Cmd(0, vec!["ZADD", "zz", "5", "five", "4", "four"]),
        Read(1),
        Send(
            2,
            vec!["BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "3"],
        ),
        Wait(1),
        Cmd(0, vec!["RPUSH", "m2", "1", "2"]),
        Read(2),
        Cmd(1, vec!["HELLO", "3"]),
        Send(1, vec!["BZMPOP", "0", "1", "zm", "MAX", "COUNT", "2"]),
        Wait(1),
        Cmd(0, vec!["ZADD", "zm", "1.5", "x", "inf", "y", "-inf", "z"]),
        Read(1),
        Cmd(1, vec!["BLPOP", "nokey", "0.01"]),
        Cmd(1, vec!["BLMOVE", "nokey", "x", "LEFT", "LEFT", "0.01"]),
        Cmd(1, vec!["HELLO", "2"]),
        Send(2, vec!["BLMOVE", "w1", "wdst", "LEFT", "LEFT", "0"]),
        Wait(1),
        Cmd(0, vec!["SET", "wdst", "x"]),
        Cmd(0, vec!["RPUSH", "w1", "stays"]),
        Read(2),
        Cmd(0, vec!["LRANGE", "w1", "0", "-1"]),
        Wait(0),
    ]);
    s
}

/// Runs `script` on fresh connections to `server`: for each step, its index and the
/// reply bytes it produced (none for `Send`/`Wait`).
fn run_script(server: &Server, script: &[Step]) -> Vec<(usize, String)> {
    let used = script
        .iter()
        .map(|s| match s {
            Step::Cmd(c, _) | Step::Send(c, _) | Step::Read(c) => c + 1,
            Step::Wait(_) => 0,
        })
        .max()
        .unwrap_or(0);
    let mut conns: Vec<Conn> = (0..used.max(3)).map(|_| server.conn()).collect();
    let mut ctl = server.conn();
    let mut out = Vec::new();
    for (i, step) in script.iter().enumerate() {
        eprintln!("{:?} step {i}: {step:?}", server.kind());
        match step {
            // HELLO's reply names the server and the connection id: not compared.
            Step::Cmd(c, args) if args[0] == "HELLO" => {
                raw(&mut conns[*c], args);
            }
            Step::Cmd(c, args) => out.push((i, raw(&mut conns[*c], args))),
            Step::Send(c, args) => conns[*c].send_cmd(args),
            Step::Wait(n) => wait_blocked(&mut ctl, *n),
            Step::Read(c) => out.push((i, read_within(&mut conns[*c], STATE_TIMEOUT))),
        }
    }
    out
}

/// The stream a replica gets (after the RDB), as commands, for `actions` run by `act`
/// (a client in database 1) while a client blocked on `k` in database 9 waits; ends at
/// the `SET end 1` written last from database 0.
fn replicated_commands(server: &Server, act: &[Vec<String>]) -> Vec<String> {
    use std::io::{Read, Write};
    let mut admin = server.conn();
    admin.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]);
    admin.cmd(&["FLUSHALL"]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
    s.set_read_timeout(Some(STATE_TIMEOUT)).expect("timeout");
    s.write_all(b"SYNC\r\n").expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    // Keepalive newlines, `$len`, the RDB, then the stream.
    let (len, start) = loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed during SYNC");
        got.extend_from_slice(&chunk[..n]);
        let body = got.iter().position(|&b| b != b'\n').unwrap_or(got.len());
        if let Some(end) = got[body..].windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&got[body..body + end]).expect("utf-8");
            break (
                line[1..].parse::<usize>().expect("a length"),
                body + end + 2,
            );
        }
    };
    let mut waiter = server.conn();
    waiter.cmd(&["SELECT", "9"]);
    waiter.send_cmd(&["BRPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    let mut c = server.conn();
    c.cmd(&["SELECT", "1"]);
    for args in act {
        c.cmd(args);
    }
    let id = waiter_id(&mut admin);
    admin.cmd(&["CLIENT", "UNBLOCK", &id]);
    waiter.read_raw();
    admin.cmd(&["SET", "end", "1"]);
    while got.len() < start + len {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed during the RDB");
        got.extend_from_slice(&chunk[..n]);
    }
    let mut buf = got.split_off(start + len);
    let mut out = Vec::new();
    loop {
        while let Ok(Some((f, used))) = percore_net::resp::decode_frame(&buf) {
            buf.drain(..used);
            let percore_net::resp::Frame::Array(items) = f else {
                panic!("not a command: {f:?}");
            };
            let words: Vec<String> = items
                .iter()
                .map(|i| match i {
                    percore_net::resp::Frame::Bulk(b) => {
                        String::from_utf8_lossy(b).to_ascii_lowercase()
                    }
                    other => panic!("not a bulk: {other:?}"),
                })
                .collect();
            let line = words.join(" ");
            if line == "set end 1" {
                return out;
            }
            if line != "ping" {
                out.push(line);
            }
        }
        let n = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("{:?}: {e} after {out:?}", server.kind()));
        assert!(n > 0, "closed: {out:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The id of the blocked client (CLIENT LIST's `flags=b` line).
fn waiter_id(admin: &mut Conn) -> String {
    let percore_net::resp::Frame::Bulk(list) = admin.cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST");
    };
    let list = String::from_utf8_lossy(&list);
    let line = list
        .lines()
        .find(|l| l.contains("flags=b"))
        .unwrap_or_else(|| panic!("no blocked client: {list}"));
    line.split(' ')
        .find_map(|f| f.strip_prefix("id="))
        .expect("an id")
        .to_string()
}

/// FLUSHALL, FLUSHDB and SWAPDB go to replicas in the sender's database (a SELECT of it
/// first when the stream was elsewhere), as Redis's `propagate`; with two shards they
/// run at a barrier, which logged them in database 0 before. Blocking commands served at
/// once are replicated as their non-blocking forms on whichever shard their key lives
/// (a first attempt on another shard than the client's was not logged at all); XGROUP's
/// write subcommands replicate. SWAPDB that would wake a
/// client blocked on a key that expired meanwhile propagates its DEL (the Tcl suite's
/// "SWAPDB wants to wake blocked client, but the key already expired").
#[test]
fn whole_keyspace_commands_replicate_in_the_senders_database() {
    let Some(redis_dbg) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let two = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut act: Vec<Vec<String>> = [
        "DEBUG SET-ACTIVE-EXPIRE 0",
        "RPUSH k hello",
        "PEXPIRE k 100",
        "DEBUG SLEEP 0.15",
        "SWAPDB 1 9",
        "SELECT 2",
        "FLUSHDB",
        "SET x 1",
        "FLUSHALL",
        "SET y 1",
        "DEBUG SET-ACTIVE-EXPIRE 1",
    ]
    .iter()
    .map(|l| l.split(' ').map(str::to_string).collect())
    .collect();
    // Blocking commands that find something at once, on keys of both shards (the
    // client's and the other): their non-blocking forms, wherever the key lives.
    for k in ["a", "b", "c", "d"] {
        for l in [
            format!("RPUSH l{k} 1 2 3 4 5 6"),
            format!("BLPOP l{k} 0"),
            format!("BRPOP l{k} 0"),
            format!("BLMPOP 0 1 l{k} LEFT COUNT 2"),
            format!("BLMOVE l{k} m{k} LEFT RIGHT 0"),
            format!("BRPOPLPUSH l{k} m{k} 0"),
            format!("ZADD z{k} 1 a 2 b 3 c 4 d"),
            format!("BZPOPMIN z{k} 0"),
            format!("BZPOPMAX z{k} 0"),
            format!("BZMPOP 0 2 none z{k} MAX COUNT 5"),
            // XGROUP's container row has no WRITE flag; its write subcommands replicate.
            format!("XGROUP CREATE s{k} g $ MKSTREAM"),
            format!("XADD s{k} 1-1 f v"),
            format!("XGROUP CREATECONSUMER s{k} g c"),
            format!("XGROUP SETID s{k} g 0"),
            format!("XGROUP DELCONSUMER s{k} g c"),
            format!("XGROUP DESTROY s{k} g"),
        ] {
            act.push(l.split(' ').map(str::to_string).collect());
        }
    }
    let want = replicated_commands(&redis_dbg, &act);
    let got = replicated_commands(&two, &act);
    // PEXPIREAT's absolute time differs. A SELECT of the database already selected is
    // dropped: percore repeats it after a command logged at a barrier (a known
    // difference, harmless to a replica).
    let norm = |v: Vec<String>| -> Vec<String> {
        let mut selected = String::new();
        v.into_iter()
            .filter(|l| match l.strip_prefix("select ") {
                Some(db) if db == selected => false,
                Some(db) => {
                    selected = db.to_string();
                    true
                }
                None => true,
            })
            .map(|l| match l.strip_prefix("pexpireat k ") {
                Some(_) => "pexpireat k <time>".to_string(),
                None => l,
            })
            .collect()
    };
    // Between whole-keyspace commands (SELECT, FLUSH*, SWAPDB), each key's commands come
    // in Redis's order; commands on keys of two shards may interleave differently (the
    // stream is one serial order that keeps each key's order; a command served on another
    // shard, such as a blocked client's BRPOPLPUSH, is logged there).
    let per_key = |v: Vec<String>| -> Vec<(String, BTreeMap<String, Vec<String>>)> {
        let mut out: Vec<(String, BTreeMap<String, Vec<String>>)> =
            vec![(String::new(), BTreeMap::new())];
        for l in v {
            let mut words = l.split(' ');
            let name = words.next().unwrap_or_default();
            if ["select", "flushdb", "flushall", "swapdb"].contains(&name) {
                out.push((l.clone(), BTreeMap::new()));
                continue;
            }
            // XGROUP's key is its third word.
            let key = if name == "xgroup" {
                words.nth(1)
            } else {
                words.next()
            };
            let key = key.unwrap_or_default().to_string();
            let segment = &mut out.last_mut().expect("a segment").1;
            segment.entry(key).or_default().push(l);
        }
        out
    };
    assert_eq!(per_key(norm(got)), per_key(norm(want)));
}
