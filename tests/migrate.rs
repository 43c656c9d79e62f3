//! MIGRATE against real `redis-server` 7.0: the same sequence run on a redis-server
//! source and on a percore source (3 shards, so keys live on several), each migrating to
//! its own redis-server target; replies compared byte for byte, and what the targets
//! hold compared (DEBUG DIGEST of each database). Also percore → percore, redis-server →
//! percore (RESTORE of payloads of every type written by redis), a target that never
//! answers (IOERR on timeout, while the shard keeps serving others), and the connection
//! cache (`migrate_cached_sockets`, closed after 10 s unused).
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Server, info_field, show};
use percore_net::resp::Frame;
use std::time::Duration;

/// Redis with DEBUG allowed (the digests), as a source or a target.
fn redis() -> Option<Server> {
    Server::redis_with(&["--enable-debug-command", "yes"])
}

/// Commands building keys of every type (some with a TTL) in the current database.
fn fill(c: &mut Conn, prefix: &str) {
    let k = |s: &str| format!("{prefix}{s}");
    let mut run = |args: Vec<String>| {
        let r = c.cmd_raw(&args);
        assert!(!r.starts_with(b"-"), "{args:?}: {}", show(&r));
    };
    run(vec!["SET".into(), k("str"), "hello".into()]);
    run(vec!["SET".into(), k("int"), "12345".into()]);
    run(vec!["SET".into(), k("big"), "x".repeat(200_000)]);
    run(vec![
        "SET".into(),
        k("ttl"),
        "t".into(),
        "EX".into(),
        "1000".into(),
    ]);
    let mut list = vec!["RPUSH".into(), k("list")];
    list.extend((0..300).map(|i| format!("item-{i}")));
    run(list);
    let mut hash = vec!["HSET".into(), k("hash")];
    hash.extend((0..200).flat_map(|i| [format!("f{i}"), format!("v{i}")]));
    run(hash);
    run(vec![
        "SADD".into(),
        k("set"),
        "1".into(),
        "2".into(),
        "3".into(),
    ]);
    let mut zset = vec!["ZADD".into(), k("zset")];
    zset.extend((0..150).flat_map(|i| [format!("{i}.5"), format!("m{i}")]));
    run(zset);
    run(vec!["PFADD".into(), k("hll"), "a".into(), "b".into()]);
    run(vec![
        "XADD".into(),
        k("stream"),
        "1-1".into(),
        "f".into(),
        "v".into(),
    ]);
}

/// The digest of every database (each mixed with its number).
fn digest(c: &mut Conn) -> Vec<u8> {
    c.cmd_raw(&["DEBUG", "DIGEST"])
}

/// The sequence both sources run; `{T}` is the source's target port, `{X}` a port where
/// nothing listens.
const STEPS: &[&str] = &[
    "MIGRATE 127.0.0.1 {T} nokey 0 1000",
    "MIGRATE 127.0.0.1 {T} str 0 1000",
    "EXISTS str",
    "MIGRATE 127.0.0.1 {T} int 0 1000 COPY",
    "EXISTS int",
    "MIGRATE 127.0.0.1 {T} int 0 1000",
    "MIGRATE 127.0.0.1 {T} int 0 1000 REPLACE",
    "EXISTS int",
    "MIGRATE 127.0.0.1 {T} ttl 9 1000",
    "MIGRATE 127.0.0.1 {T} \"\" 9 5000 KEYS list nokey-1 hash set nokey-2 zset hll stream big",
    "DBSIZE",
    "MIGRATE 127.0.0.1 {T} \"\" 9 5000 KEYS a b",
    "MIGRATE 127.0.0.1 {T} x 9 5000 KEYS a b",
    "MIGRATE 127.0.0.1 {T} x 9 5000 BADOPT",
    "MIGRATE 127.0.0.1 {T} x 9 5000 AUTH",
    "MIGRATE 127.0.0.1 {T} x 9 5000 AUTH2 u",
    "MIGRATE 127.0.0.1 {T} x notanumber 5000",
    "MIGRATE 127.0.0.1 {T} x 9 soon",
    "MIGRATE 127.0.0.1 {T} x 9",
    "SET a 1",
    "SET b 2",
    "MIGRATE 127.0.0.1 {T} a 9 5000 AUTH secret",
    "MIGRATE 127.0.0.1 {T} \"\" 9 5000 AUTH2 user secret KEYS a b",
    "EXISTS a b",
    "MIGRATE 127.0.0.1 {X} a 9 500",
    "EXISTS a",
    "SET c 3",
    "MIGRATE 127.0.0.1 {T} \"\" 9 5000 KEYS a b c",
    "EXISTS a b c",
];

fn run_steps(c: &mut Conn, target: u16, nowhere: u16) -> Vec<(String, Vec<u8>)> {
    STEPS
        .iter()
        .map(|s| {
            let line = s
                .replace("{T}", &target.to_string())
                .replace("{X}", &nowhere.to_string());
            let r = c.cmd_raw(&common::split_args(&line));
            (line, r)
        })
        .collect()
}

#[test]
fn migrate_replies_and_results_match_redis() {
    let Some(src_r) = redis() else { return };
    let dst_r = redis().expect("redis");
    let dst_p = redis().expect("redis");
    let src_p = Server::percore(&["--threads", "3"]);
    let nowhere = common::free_port();
    let (mut sr, mut sp) = (src_r.conn(), src_p.conn());
    fill(&mut sr, "");
    fill(&mut sp, "");
    let a = run_steps(&mut sr, dst_r.port(), nowhere);
    let b = run_steps(&mut sp, dst_p.port(), nowhere);
    for ((line, r), (_, p)) in a.iter().zip(&b) {
        assert_eq!(show(p), show(r), "{line}");
    }
    let (mut tr, mut tp) = (dst_r.conn(), dst_p.conn());
    assert_eq!(show(&digest(&mut tp)), show(&digest(&mut tr)), "targets");
    // The TTL travelled.
    assert_eq!(tp.cmd(&["SELECT", "9"]), common::ok());
    let Frame::Int(ttl) = tp.cmd(&["TTL", "ttl"]) else {
        panic!("TTL")
    };
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        info_field(&mut sp, "stats", "migrate_cached_sockets"),
        info_field(&mut sr, "stats", "migrate_cached_sockets")
    );
}

/// Every type from percore to percore and from redis-server to percore: the target holds
/// what the source held (same digest), the source no longer does.
#[test]
fn migrate_percore_to_percore_and_redis_to_percore() {
    let Some(src_r) = redis() else { return };
    let src_p = Server::percore(&["--threads", "3"]);
    let dst = Server::percore(&["--threads", "2"]);
    let keys = [
        "str", "int", "big", "ttl", "list", "hash", "set", "zset", "hll", "stream",
    ];
    for (src, prefix) in [(&src_p, "p-"), (&src_r, "r-")] {
        let mut d = dst.conn();
        assert_eq!(d.cmd(&["FLUSHALL"]), common::ok());
        let mut s = src.conn();
        fill(&mut s, prefix);
        assert_eq!(s.cmd(&["PERSIST", &format!("{prefix}ttl")]), Frame::Int(1));
        let before = digest(&mut s);
        let mut args: Vec<String> = ["MIGRATE", "127.0.0.1"].map(String::from).to_vec();
        args.extend([
            dst.port().to_string(),
            String::new(),
            "0".into(),
            "5000".into(),
        ]);
        args.push("KEYS".into());
        args.extend(keys.iter().map(|k| format!("{prefix}{k}")));
        assert_eq!(s.cmd(&args), common::ok(), "from {prefix}");
        assert_eq!(s.cmd(&["DBSIZE"]), Frame::Int(0));
        assert_eq!(show(&digest(&mut d)), show(&before), "from {prefix}");
    }
}

/// A target that accepts and never answers: IOERR after the timeout, as redis-server's;
/// meanwhile the source's shards keep serving other clients.
#[test]
fn migrate_timeout_gives_ioerr_and_blocks_only_its_client() {
    let Some(src_r) = redis() else { return };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port().to_string();
    let src_p = Server::percore(&["--threads", "1"]);
    let mut replies = Vec::new();
    for src in [&src_r, &src_p] {
        let mut c = src.conn();
        assert_eq!(c.cmd(&["SET", "k", "v"]), common::ok());
        c.send_cmd(&["MIGRATE", "127.0.0.1", &port, "k", "0", "700"]);
        if src.kind() == common::Kind::Percore {
            // One shard: the client waits, the shard answers another client meanwhile.
            let mut other = src.conn();
            assert_eq!(other.cmd(&["PING"]), simple("PONG"));
            assert_eq!(other.cmd(&["GET", "k"]), common::bulk("v"));
        }
        replies.push(c.read_raw());
        assert_eq!(c.cmd(&["GET", "k"]), common::bulk("v"));
    }
    assert_eq!(show(&replies[1]), show(&replies[0]));
    drop(silent);
}

fn simple(s: &str) -> Frame {
    common::simple(s)
}

/// The connection cache: one socket after a MIGRATE, closed after 10 s unused, as
/// Redis's cron (dump.tcl "MIGRATE cached connections are released after some time").
#[test]
fn migrate_cached_connection_is_released_after_ten_seconds() {
    let Some(dst) = redis() else { return };
    let src = Server::percore(&["--threads", "2"]);
    let mut c = src.conn();
    assert_eq!(info_field(&mut c, "stats", "migrate_cached_sockets"), "0");
    assert_eq!(c.cmd(&["SET", "key", "v"]), common::ok());
    let port = dst.port().to_string();
    assert_eq!(
        c.cmd(&["MIGRATE", "127.0.0.1", &port, "key", "9", "1000"]),
        common::ok()
    );
    assert_eq!(info_field(&mut c, "stats", "migrate_cached_sockets"), "1");
    let mut released = false;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        if info_field(&mut c, "stats", "migrate_cached_sockets") == "0" {
            released = true;
            break;
        }
    }
    assert!(released, "the cached socket was not closed within 15 s");
}
