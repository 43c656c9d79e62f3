//! DEBUG subcommands Redis's own test units use, against a real `redis-server` 7.0 where
//! the reply is Redis's: LOADAOF (with the AOF on, and off after a BGREWRITEAOF, which
//! Redis 7.0 runs with `appendonly no` too), QUICKLIST-PACKED-THRESHOLD (large elements in
//! nodes of their own, the list commands' replies unchanged), HTSTATS / HTSTATS-KEY
//! (Redis's text), ERROR, and the string encodings OBJECT ENCODING reports after
//! SETRANGE/APPEND/INCRBYFLOAT; also SET ... PXAT reaching the AOF as Redis writes it.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Server, info_field, show, wait_until};
use percore_net::resp::Frame;

fn both(extra: &[&str]) -> Option<(Server, Server)> {
    let mut redis_args = vec!["--enable-debug-command", "yes"];
    redis_args.extend_from_slice(extra);
    let redis = Server::redis_with(&redis_args)?;
    let mut percore_args = vec!["--threads", "3"];
    percore_args.extend_from_slice(extra);
    Some((redis, Server::percore(&percore_args)))
}

/// Runs `argv` on both servers and asserts the replies are the same bytes.
fn same(r: &mut Conn, p: &mut Conn, argv: &[&str]) -> String {
    let want = show(&r.cmd_raw(argv));
    let got = show(&p.cmd_raw(argv));
    assert_eq!(got, want, "{argv:?}");
    got
}

fn rewrite_and_wait(c: &mut Conn) {
    let r = c.cmd(&["BGREWRITEAOF"]);
    assert_eq!(
        r,
        Frame::Simple(b"Background append only file rewriting started".to_vec())
    );
    wait_until("the rewrite", || {
        info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(c, "persistence", "aof_rewrite_scheduled") == "0"
    });
}

/// Writes that reach the AOF, then keys that do not (DEBUG POPULATE is not propagated):
/// DEBUG LOADAOF must come back to the first set alone, on both servers alike.
fn loadaof_round(r: &mut Conn, p: &mut Conn, offline: bool) {
    for c in [&mut *r, &mut *p] {
        c.cmd(&["FLUSHALL"]);
    }
    for j in 0..40 {
        let k = format!("k{j}");
        same(r, p, &["SET", &k, &format!("v{j}")]);
        same(r, p, &["RPUSH", &format!("l{}", j % 5), &k]);
        same(r, p, &["SADD", &format!("s{}", j % 3), &k]);
        same(r, p, &["ZADD", "z", &j.to_string(), &k]);
        same(r, p, &["HSET", "h", &k, "1"]);
    }
    same(r, p, &["EXPIRE", "k1", "1000"]);
    same(r, p, &["SELECT", "3"]);
    same(r, p, &["SET", "in3", "x"]);
    same(r, p, &["SELECT", "0"]);
    if offline {
        rewrite_and_wait(r);
        rewrite_and_wait(p);
    }
    let digest = same(r, p, &["DEBUG", "DIGEST"]);
    same(r, p, &["DEBUG", "POPULATE", "100"]);
    same(r, p, &["DBSIZE"]);
    assert_ne!(same(r, p, &["DEBUG", "DIGEST"]), digest);
    same(r, p, &["DEBUG", "LOADAOF"]);
    same(r, p, &["DBSIZE"]);
    assert_eq!(same(r, p, &["DEBUG", "DIGEST"]), digest);
    same(r, p, &["TTL", "k1"]);
    same(r, p, &["LRANGE", "l3", "0", "-1"]);
}

#[test]
fn loadaof_reloads_the_aof_as_redis_does() {
    let Some((redis, percore)) = both(&["--appendonly", "yes"]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    loadaof_round(&mut r, &mut p, false);
    // Writes after a load are appended and load again.
    same(&mut r, &mut p, &["SET", "after", "1"]);
    same(&mut r, &mut p, &["DEBUG", "LOADAOF"]);
    same(&mut r, &mut p, &["GET", "after"]);
    same(&mut r, &mut p, &["DEBUG", "LOADAOF", "extra"]);
}

#[test]
fn bgrewriteaof_with_appendonly_no_writes_a_base_that_loadaof_loads() {
    let Some((redis, percore)) = both(&[]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    loadaof_round(&mut r, &mut p, true);
    // The base is the whole AOF: a restart with appendonly yes loads it.
    let dir = percore.dir().join("appendonlydir");
    let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).unwrap();
    assert!(manifest.contains("type b"), "{manifest}");
    assert!(!manifest.contains("type i"), "{manifest}");
}

#[test]
fn plain_list_nodes_answer_as_redis() {
    let Some((redis, percore)) = both(&[]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for bad in ["5gb", "abc", "-1", "4294967296"] {
        same(
            &mut r,
            &mut p,
            &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", bad],
        );
    }
    let long = "x".repeat(50_001);
    for threshold in ["1b", "5b", "10b", "100b"] {
        same(
            &mut r,
            &mut p,
            &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", threshold],
        );
        same(&mut r, &mut p, &["DEL", "lst"]);
        for v in ["aa", "bb", "xxxxxxxxxx", "9", &long, "cc", "dd", "ee"] {
            same(&mut r, &mut p, &["RPUSH", "lst", v]);
            same(&mut r, &mut p, &["LPUSH", "lst", v]);
        }
        same(&mut r, &mut p, &["LSET", "lst", "0", &long]);
        same(&mut r, &mut p, &["LSET", "lst", "-2", "xxxxxxxxxxx"]);
        same(&mut r, &mut p, &["LSET", "lst", "3", "z"]);
        same(&mut r, &mut p, &["LINSERT", "lst", "BEFORE", "9", "8"]);
        same(&mut r, &mut p, &["LINSERT", "lst", "AFTER", "9", &long]);
        same(&mut r, &mut p, &["LREM", "lst", "1", "aa"]);
        same(&mut r, &mut p, &["LPOS", "lst", &long, "RANK", "2"]);
        same(&mut r, &mut p, &["LTRIM", "lst", "1", "-2"]);
        same(&mut r, &mut p, &["LMOVE", "lst", "lst2", "LEFT", "RIGHT"]);
        same(&mut r, &mut p, &["LRANGE", "lst", "0", "-1"]);
        same(&mut r, &mut p, &["LINDEX", "lst", "4"]);
        same(&mut r, &mut p, &["DEBUG", "RELOAD"]);
        same(&mut r, &mut p, &["LRANGE", "lst", "0", "-1"]);
        same(&mut r, &mut p, &["RPOP", "lst"]);
        same(&mut r, &mut p, &["OBJECT", "ENCODING", "lst"]);
    }
    same(
        &mut r,
        &mut p,
        &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"],
    );
}

/// The values of `name: N` in an HTSTATS text (one per table: main, rehashing target).
fn stat(text: &str, name: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn htstats_have_redis_shape() {
    let Some((redis, percore)) = both(&[]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for j in 0..200 {
        same(&mut r, &mut p, &["SADD", "set", &format!("m:{j}")]);
        same(
            &mut r,
            &mut p,
            &["ZADD", "zset", &j.to_string(), &"m".repeat(j + 1)],
        );
    }
    same(&mut r, &mut p, &["HSET", "small", "a", "1"]);
    for key in ["set", "zset"] {
        let argv = ["DEBUG", "HTSTATS-KEY", key];
        let text = |c: &mut Conn| String::from_utf8_lossy(&c.cmd_raw(&argv)).into_owned();
        let (want, got) = (text(&mut r), text(&mut p));
        assert!(
            got.contains("Hash table 0 stats (main hash table):"),
            "{got}"
        );
        // Redis may be half-way through a rehash (two tables): the largest table and
        // the elements of both agree.
        let size = |t: &str| stat(t, "table size").into_iter().max();
        let elements = |t: &str| stat(t, "number of elements").into_iter().sum::<usize>();
        assert_eq!(size(&got), size(&want), "{key}:\n{got}\n{want}");
        assert_eq!(elements(&got), elements(&want), "{key}:\n{got}\n{want}");
        for field in ["different slots", "max chain length"] {
            assert!(!stat(&got, field).is_empty(), "{key} {field}:\n{got}");
        }
    }
    for argv in [
        &["DEBUG", "HTSTATS-KEY", "small"][..],
        &["DEBUG", "HTSTATS-KEY", "missing"],
        &["DEBUG", "HTSTATS", "99"],
        &["DEBUG", "HTSTATS", "x"],
        &["DEBUG", "ERROR", "MYERR some\r\ntext"],
        &["DEBUG", "LISTPACK", "missing"],
        &["DEBUG", "LISTPACK", "set"],
        &["DEBUG", "QUICKLIST", "set"],
        &["DEBUG", "NOSUCHSUB"],
    ] {
        same(&mut r, &mut p, argv);
    }
    same(&mut r, &mut p, &["FLUSHALL"]);
    same(&mut r, &mut p, &["DEBUG", "HTSTATS", "0"]);
    let text = show(&p.cmd_raw(&["DEBUG", "HTSTATS", "9"]));
    assert!(
        text.contains("[Dictionary HT]") && text.contains("[Expires HT]"),
        "{text}"
    );
}

/// Redis's type/set "SRANDMEMBER with a dict containing long chain" loops on SRANDMEMBER
/// until DEBUG HTSTATS-KEY stops showing a rehashing target: a set left rehashing by
/// SREM must finish its rehash under reads alone, as Redis's does (its random picks
/// step the rehash), with the members unchanged.
#[test]
fn a_set_left_rehashing_by_srem_finishes_under_srandmember() {
    let Some((redis, percore)) = both(&[]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    let members: Vec<String> = (0..4000).map(|j| format!("m:{j}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    same(&mut r, &mut p, &sadd);
    let mut srem = vec!["SREM", "s"];
    srem.extend(members[..3950].iter().map(String::as_str));
    same(&mut r, &mut p, &srem);
    let rehashing = |c: &mut Conn| {
        // The whole reply: `show` cuts at 300 bytes, and table 0's chain-length lines
        // (one more when a chain of 2 exists, which depends on the hash seed) pushed
        // "rehashing target" past the cut in one run of seven.
        String::from_utf8_lossy(&c.cmd_raw(&["DEBUG", "HTSTATS-KEY", "s"]))
            .contains("rehashing target")
    };
    for (name, c) in [("redis", &mut r), ("percore", &mut p)] {
        assert!(rehashing(c), "{name}: SREM to 50 of 4000 starts a shrink");
        let mut reads = 0;
        while rehashing(c) {
            assert!(reads < 1000, "{name}: still rehashing after {reads} reads");
            c.cmd_raw(&["SRANDMEMBER", "s", "1"]);
            reads += 1;
        }
    }
    same(&mut r, &mut p, &["SCARD", "s"]);
    same(&mut r, &mut p, &["SORT", "s", "ALPHA"]);
}

/// DEBUG RELOAD gives sorted sets the encoding the server's limits say, as Redis's load
/// does: a skiplist stays one under `zset-max-listpack-entries 0` (Redis's zset unit,
/// "ZSCORE after a DEBUG RELOAD - skiplist"), a listpack past the default 128 entries
/// stays one under a limit of 256.
#[test]
fn zset_encodings_after_debug_reload_follow_the_limits() {
    let Some((redis, percore)) = both(&[]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    let members: Vec<String> = (0..200).map(|j| format!("{j}")).collect();
    let mut zadd = vec!["ZADD", "big"];
    for m in &members {
        zadd.extend([m.as_str(), m.as_str()]);
    }
    for argv in [
        &["CONFIG", "SET", "zset-max-ziplist-entries", "0"][..],
        &["CONFIG", "SET", "zset-max-ziplist-value", "0"],
        &["ZADD", "sk", "1", "a", "2", "b"],
        &["OBJECT", "ENCODING", "sk"],
        &["CONFIG", "SET", "zset-max-ziplist-entries", "256"],
        &["CONFIG", "SET", "zset-max-ziplist-value", "64"],
        &zadd,
        &["OBJECT", "ENCODING", "big"],
        &["ZADD", "small", "1", "x"],
        &["CONFIG", "SET", "zset-max-ziplist-entries", "0"],
        &["CONFIG", "SET", "zset-max-ziplist-value", "0"],
        &["DEBUG", "RELOAD"],
        &["OBJECT", "ENCODING", "sk"],
        &["OBJECT", "ENCODING", "small"],
        &["ZSCORE", "sk", "b"],
        &["CONFIG", "SET", "zset-max-ziplist-entries", "256"],
        &["CONFIG", "SET", "zset-max-ziplist-value", "64"],
        &["DEBUG", "RELOAD"],
        &["OBJECT", "ENCODING", "big"],
        &["OBJECT", "ENCODING", "sk"],
        &["OBJECT", "ENCODING", "small"],
        &["ZRANGE", "big", "0", "-1", "WITHSCORES"],
    ] {
        same(&mut r, &mut p, argv);
    }
}

#[test]
fn string_encodings_after_in_place_writes_match_redis() {
    let Some((redis, percore)) = both(&[]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for argv in [
        &["SET", "k", "1234"][..],
        &["OBJECT", "ENCODING", "k"],
        &["SETRANGE", "k", "0", "2"],
        &["OBJECT", "ENCODING", "k"],
        &["SET", "k", "1234"],
        &["SETRANGE", "k", "0", ""],
        &["OBJECT", "ENCODING", "k"],
        &["SET", "a", "x"],
        &["APPEND", "a", "y"],
        &["OBJECT", "ENCODING", "a"],
        &["SETRANGE", "new", "3", "ab"],
        &["OBJECT", "ENCODING", "new"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["OBJECT", "ENCODING", "f"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["OBJECT", "ENCODING", "f"],
        &["SET", "mid", "0123456789012345678901234567890123456789"],
        &["OBJECT", "ENCODING", "mid"],
    ] {
        same(&mut r, &mut p, argv);
    }
}

/// The text of `s`'s newest incremental AOF file from the first `from` on; none until
/// percore's AOF writer wrote it (it writes after the reply).
fn aof_tail(s: &Server, from: &str) -> Option<String> {
    let dir = s.dir().join("appendonlydir");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.to_string_lossy().ends_with(".incr.aof"))
        .collect();
    files.sort();
    let text = std::fs::read_to_string(files.last()?).ok()?;
    Some(text[text.find(from)?..].to_owned())
}

/// SPOP whose count empties its set reaches the AOF as DEL, as redis-server 7.0 writes it,
/// and as UNLINK under `lazyfree-lazy-server-del yes` (as Valkey: its type/set "SPOP new
/// implementation: code path #1 propagate as DEL or UNLINK"; Redis 7.0 wrote DEL).
#[test]
fn spop_emptying_its_set_reaches_the_aof_as_del_or_unlink() {
    let Some((redis, percore)) = both(&["--appendonly", "yes"]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    same(&mut r, &mut p, &["SADD", "s1", "1", "2", "3"]);
    // (The reply's order is random in percore, not the set's order: not compared.)
    for c in [&mut r, &mut p] {
        c.cmd_raw(&["SPOP", "s1", "3"]);
    }
    same(&mut r, &mut p, &["SET", "end", "1"]);
    let tail = |s: &Server| aof_tail(s, "SADD");
    // Redis too may write its AOF after the reply (a write postponed while it fsyncs).
    wait_until("the AOFs written", || {
        [&percore, &redis]
            .iter()
            .all(|s| tail(s).is_some_and(|t| t.contains("end")))
    });
    assert_eq!(tail(&percore), tail(&redis));
    p.cmd_raw(&["CONFIG", "SET", "lazyfree-lazy-server-del", "yes"]);
    p.cmd_raw(&["SADD", "s2", "a", "b"]);
    p.cmd_raw(&["SPOP", "s2", "5"]);
    p.cmd_raw(&["SET", "end2", "1"]);
    wait_until("the AOF written", || {
        tail(&percore).is_some_and(|t| t.contains("end2"))
    });
    let text = tail(&percore).unwrap();
    assert!(text.contains("UNLINK\r\n$2\r\ns2\r\n"), "{text}");
}

#[test]
fn set_with_pxat_reaches_the_aof_as_redis_writes_it() {
    let Some((redis, percore)) = both(&["--appendonly", "yes"]) else {
        return;
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    let at = "4102444800000";
    for argv in [
        &["SET", "a", "1", "pxat", at][..],
        &["SET", "b", "1", "PXAT", at, "NX"],
        &["SET", "c", "1", "exat", "4102444800", "GET"],
    ] {
        same(&mut r, &mut p, argv);
    }
    // From the first SET on (Redis starts with its SELECT, as percore).
    let tail = |s: &Server| aof_tail(s, "SET");
    wait_until("the AOFs written", || {
        [&percore, &redis]
            .iter()
            .all(|s| tail(s).is_some_and(|t| t.matches("SET").count() == 3))
    });
    assert_eq!(tail(&percore), tail(&redis));
}

/// DEBUG OBJECT's `lru:` is the key's 24-bit LRU clock (Unix seconds) at its last access,
/// as Redis's `o->lru`: within the TIME read before and after the access, unchanged by a
/// read in CLIENT NO-TOUCH mode, and moved by a read after it (Valkey's "Operations in
/// no-touch mode do not alter the last access time of a key"; it was always 0).
#[test]
fn debug_object_lru_is_the_last_access_clock() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let clock = |c: &mut Conn| -> u64 {
        let Frame::Array(t) = c.cmd(&["TIME"]) else {
            panic!("TIME")
        };
        let Frame::Bulk(secs) = &t[0] else {
            panic!("TIME seconds")
        };
        String::from_utf8_lossy(secs).parse::<u64>().unwrap() & 0x00FF_FFFF
    };
    let lru = |c: &mut Conn| -> u64 {
        let Frame::Simple(text) = c.cmd(&["DEBUG", "OBJECT", "foo"]) else {
            panic!("DEBUG OBJECT")
        };
        let text = String::from_utf8(text).unwrap();
        text.split(' ')
            .find_map(|f| f.strip_prefix("lru:"))
            .expect("an lru field")
            .parse()
            .unwrap()
    };
    let before = clock(&mut c);
    c.cmd(&["SET", "foo", "bar"]);
    let after = clock(&mut c);
    let first = lru(&mut c);
    assert!(
        (before..=after).contains(&first),
        "{before} <= {first} <= {after}"
    );
    c.cmd(&["CLIENT", "NO-TOUCH", "ON"]);
    // Until the clock has moved past the first access.
    wait_until("the LRU clock moves", || clock(&mut c) > first);
    c.cmd(&["GET", "foo"]);
    assert_eq!(lru(&mut c), first, "a no-touch read leaves the access time");
    c.cmd(&["CLIENT", "NO-TOUCH", "OFF"]);
    let before = clock(&mut c);
    c.cmd(&["GET", "foo"]);
    let after = clock(&mut c);
    let second = lru(&mut c);
    assert!(
        (before..=after).contains(&second),
        "{before} <= {second} <= {after}"
    );
    assert!(second > first);
}
