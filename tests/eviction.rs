//! `maxmemory`: eviction by every policy, the OOM refusals (compared byte for byte with
//! redis-server 7.0), evictions in the AOF and keyspace notifications, and a small
//! hit-rate comparison with redis-server under a skewed workload.
//!
//! Memory limits are set relative to what each server reports (`used_memory`), so the
//! tests hold whatever the per-key cost of either server.

mod common;

use common::{Conn, Rng, Server, info_field, show};
use percore_net::resp::Frame;
use std::time::{Duration, Instant};

/// Keys written before the limit is lowered.
const KEYS: usize = 20_000;
/// Bytes of each value.
const VALUE_BYTES: usize = 100;

fn used(c: &mut Conn) -> u64 {
    info_field(c, "memory", "used_memory").parse().unwrap()
}

fn evicted(c: &mut Conn) -> u64 {
    info_field(c, "stats", "evicted_keys").parse().unwrap()
}

fn dbsize(c: &mut Conn) -> u64 {
    match c.cmd(&["DBSIZE"]) {
        Frame::Int(n) => n as u64,
        other => panic!("DBSIZE: {other:?}"),
    }
}

/// Writes `KEYS` keys `k:N` (every `ttl_every`-th with a TTL growing with N) through a
/// pipeline.
fn fill(c: &mut Conn, prefix: &str, ttl_every: usize) {
    let value = "x".repeat(VALUE_BYTES);
    let mut batch = Vec::new();
    for i in 0..KEYS {
        let key = format!("{prefix}:{i}");
        if ttl_every > 0 && i % ttl_every == 0 {
            let ttl = (10_000 + i).to_string();
            batch.extend(common::encode_cmd(&["SET", &key, &value, "EX", &ttl]));
        } else {
            batch.extend(common::encode_cmd(&["SET", &key, &value]));
        }
        if i % 1000 == 999 {
            c.send(&batch);
            batch.clear();
            for _ in 0..1000 {
                c.read_frame();
            }
        }
    }
}

fn exists(c: &mut Conn, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == Frame::Int(1)
}

/// Lowers maxmemory to `fraction` of the current use and waits until eviction is done
/// (`strict`: memory must come under the limit).
fn squeeze(c: &mut Conn, fraction: f64, strict: bool) -> u64 {
    let limit = (used(c) as f64 * fraction) as u64;
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]),
        common::ok()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    // The test's own connection and INFO reply count too: a little over is their share.
    while used(c) > limit + 64 * 1024 {
        if !strict && Instant::now() > deadline {
            break;
        }
        assert!(Instant::now() < deadline, "memory stays over the limit");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the shards' ticks settle what is left.
    std::thread::sleep(Duration::from_millis(300));
    limit
}

#[test]
fn every_policy_evicts_what_it_should() {
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let server = Server::percore(&["--maxmemory-policy", policy]);
        let mut c = server.conn();
        let volatile = policy.starts_with("volatile");
        // Every key of the {hot} prefix is read often, before the squeeze and after a
        // pause (LRU: newer access; LFU: higher counter).
        fill(&mut c, "k", if volatile { 2 } else { 0 });
        let hot: Vec<String> = (0..50).map(|i| format!("k:{}", i * 2)).collect();
        for _ in 0..40 {
            for k in &hot {
                c.cmd(&["GET", k]);
            }
        }
        if policy.contains("lru") {
            // The LRU clock counts seconds.
            std::thread::sleep(Duration::from_millis(1100));
            for k in &hot {
                c.cmd(&["GET", k]);
            }
        }
        let before = dbsize(&mut c);
        // Half the keys qualify under a volatile policy: a smaller cut leaves some.
        let limit = squeeze(&mut c, if volatile { 0.85 } else { 0.7 }, true);
        let after = dbsize(&mut c);
        let gone = evicted(&mut c);
        assert!(gone > 0 && after < before, "{policy}: evicted {gone}");
        let diff = before - after;
        assert!(
            diff.abs_diff(gone) * 100 <= gone,
            "{policy}: {diff} gone, {gone} evicted"
        );
        c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        assert!(used(&mut c) <= limit + 64 * 1024);
        // Not far more than needed: at most half of the keys for a 30 % cut.
        assert!(after * 2 > before, "{policy}: {after} of {before} left");
        if volatile {
            for i in (1..KEYS).step_by(2) {
                assert!(
                    exists(&mut c, &format!("k:{i}")),
                    "{policy} evicted a key without TTL"
                );
            }
        }
        if policy.contains("lru") || policy.contains("lfu") {
            let kept = hot.iter().filter(|k| exists(&mut c, k)).count();
            assert!(kept >= 48, "{policy}: only {kept} of 50 hot keys kept");
        }
        if policy == "volatile-ttl" {
            // The nearest expiries went first: the early keys (shortest TTLs) are gone.
            let early = (0..1000)
                .step_by(2)
                .filter(|i| exists(&mut c, &format!("k:{i}")))
                .count();
            let late = (KEYS - 1000..KEYS)
                .step_by(2)
                .filter(|i| exists(&mut c, &format!("k:{i}")))
                .count();
            assert!(
                early < late / 2,
                "volatile-ttl kept {early} early, {late} late keys"
            );
        }
        // With the limit gone, writes go on.
        assert_eq!(c.cmd(&["SET", "new", "v"]), common::ok());
    }
}

/// Replies of both servers to the same session, compared byte for byte.
fn oom_session(port: u16, other: u16) -> Vec<String> {
    let mut c = Conn::connect(port);
    let mut admin = Conn::connect(other);
    let mut out = Vec::new();
    let mut run = |c: &mut Conn, args: &[&str]| out.push(show(&c.cmd_raw(args)));
    run(&mut c, &["SET", "a", "1"]);
    run(&mut c, &["RPUSH", "l", "x"]);
    run(&mut admin, &["CONFIG", "SET", "maxmemory", "1"]);
    // Writes that may grow memory are refused, reads and deletions go on.
    for args in [
        &["SET", "b", "2"][..],
        &["INCR", "a"],
        &["GET", "a"],
        &["LPUSH", "l", "y"],
        &["LRANGE", "l", "0", "-1"],
        &["APPEND", "a", "x"],
        &["EXPIRE", "a", "100"],
        &["DEL", "l"],
        &["EXISTS", "l"],
        &["PING"],
        // A container's subcommand flagged DENYOOM (Redis checks the subcommand's flags).
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=oom\nredis.register_function('f', function() return 1 end)",
        ],
        &["FUNCTION", "RESTORE", "junk"],
        &["FUNCTION", "LIST"],
        &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
        &["EXISTS", "s"],
        // Scripts: without flags the first write is refused; flags without allow-oom
        // refuse the script; allow-oom and no-writes run.
        &["EVAL", "return redis.call('set','c','3')", "0"],
        &["EVAL", "return redis.pcall('set','c','3')", "0"],
        &["EVAL", "return redis.call('get','a')", "0"],
        &["EVAL", "#!lua\nreturn redis.call('get','a')", "0"],
        // The same with a declared key (a keyed command, refused by its flags).
        &["EVAL", "#!lua\nreturn redis.call('get',KEYS[1])", "1", "a"],
        &["EVAL", "return redis.call('set',KEYS[1],'3')", "1", "c"],
        &[
            "EVAL",
            "#!lua flags=allow-oom\nreturn redis.call('set','c','3')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','a')",
            "0",
        ],
        &["GET", "c"],
        // MULTI: every queued command is refused, EXEC aborts.
        &["MULTI"],
        &["GET", "a"],
        &["SET", "d", "1"],
        &["EXEC"],
        &["MULTI"],
        &["DISCARD"],
    ] {
        run(&mut c, args);
    }
    // An EXEC with a DENYOOM command, queued before memory ran out.
    run(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["SET", "e", "1"]);
    run(&mut admin, &["CONFIG", "SET", "maxmemory", "1"]);
    run(&mut c, &["EXEC"]);
    run(&mut c, &["EXEC"]);
    // A transaction of reads only runs.
    run(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["GET", "a"]);
    run(&mut admin, &["CONFIG", "SET", "maxmemory", "1"]);
    run(&mut c, &["EXEC"]);
    run(&mut admin, &["CONFIG", "SET", "maxmemory", "0"]);
    run(&mut c, &["SET", "f", "1"]);
    out
}

#[test]
fn noeviction_refuses_writes_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    // One shard: the scripts' keys live together.
    let percore = Server::percore(&["--threads", "1"]);
    let want = oom_session(redis.port(), redis.port());
    let got = oom_session(percore.port(), percore.port());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "reply {i}");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn volatile_policy_without_volatile_keys_refuses_writes() {
    let server = Server::percore(&["--maxmemory-policy", "volatile-lru"]);
    let mut c = server.conn();
    fill(&mut c, "k", 0);
    c.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(
        show(&c.cmd_raw(&["SET", "x", "1"])),
        show(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")
    );
    assert_eq!(
        dbsize(&mut c),
        KEYS as u64,
        "nothing qualified for eviction"
    );
    assert_eq!(
        c.cmd(&["GET", "k:1"]),
        Frame::Bulk("x".repeat(VALUE_BYTES).into())
    );
}

#[test]
fn evictions_reach_the_aof_and_notifications() {
    let server = Server::percore(&[
        "--maxmemory-policy",
        "allkeys-random",
        "--appendonly",
        "yes",
        "--notify-keyspace-events",
        "Ee",
    ]);
    let mut sub = Conn::connect(server.port());
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:evicted"]);
    let mut c = server.conn();
    fill(&mut c, "k", 0);
    squeeze(&mut c, 0.6, false);
    c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    let gone = evicted(&mut c);
    let left = dbsize(&mut c);
    assert!(gone > 0);
    // One `evicted` event per evicted key, from either shard.
    let mut events = 0;
    while events < gone {
        let Frame::Array(parts) = sub.read_frame() else {
            panic!("not a message");
        };
        assert_eq!(parts[1], Frame::Bulk(b"__keyevent@0__:evicted".to_vec()));
        events += 1;
    }
    let _ = left;
}

/// A skewed read-mostly cache workload over a keyspace larger than memory: GET, and SET
/// after a miss. The hit rate under allkeys-lru/lfu must be close to redis-server's.
fn hit_rate(port: u16, policy: &str, budget: Duration) -> f64 {
    let mut c = Conn::connect(port);
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]);
    c.cmd(&["SET", "probe", "1"]);
    let base = used(&mut c);
    c.cmd(&[
        "CONFIG",
        "SET",
        "maxmemory",
        &(base + 2_000_000).to_string(),
    ]);
    let keys = 60_000u64;
    let value = "v".repeat(200);
    let mut rng = Rng(7);
    // Zipf-like: an exponent over a uniform draw (a few thousand hot keys, a long tail).
    let mut pick = move || {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((keys as f64).powf(u) as u64).min(keys - 1)
    };
    let (mut hits, mut total) = (0u64, 0u64);
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < budget && round < 400 {
        round += 1;
        let ks: Vec<String> = (0..200).map(|_| format!("key:{}", pick())).collect();
        let mut batch = Vec::new();
        for k in &ks {
            batch.extend(common::encode_cmd(&["GET", k]));
        }
        c.send(&batch);
        let (mut sets, mut n) = (Vec::new(), 0);
        for k in &ks {
            if let Frame::Null = c.read_frame() {
                sets.extend(common::encode_cmd(&["SET", k, &value]));
                n += 1;
            } else if round > 100 {
                hits += 1;
            }
            if round > 100 {
                total += 1;
            }
        }
        c.send(&sets);
        for _ in 0..n {
            c.read_frame();
        }
    }
    hits as f64 * 100.0 / total.max(1) as f64
}

#[test]
fn hit_rate_is_close_to_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    for policy in ["allkeys-lru", "allkeys-lfu"] {
        let percore = Server::percore(&[]);
        let ours = hit_rate(percore.port(), policy, Duration::from_secs(8));
        let theirs = hit_rate(redis.port(), policy, Duration::from_secs(8));
        redis.conn().cmd(&["FLUSHALL"]);
        redis.conn().cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        println!("{policy}: percore {ours:.1} %, redis {theirs:.1} %");
        assert!(
            ours > 10.0,
            "{policy}: the cache hardly works ({ours:.1} %)"
        );
        assert!(
            ours + 5.0 >= theirs,
            "{policy}: percore {ours:.1} % vs redis {theirs:.1} %"
        );
    }
}
