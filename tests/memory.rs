//! MEMORY (USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP) and PFSELFTEST against a
//! real `redis-server` 7.0: help text, errors and reply shapes byte for byte, STATS
//! field names in Redis's order, and MEMORY USAGE of the same data within a stated ratio
//! of redis-server's (percore counts its own allocations, Redis its jemalloc size classes
//! and object headers, so the numbers differ by design).
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Server, show};
use percore_net::resp::Frame;

fn int(f: Frame) -> i64 {
    match f {
        Frame::Int(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[test]
fn replies_and_errors_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    for c in [&mut rc, &mut pc] {
        c.cmd_raw(&["SET", "k", "v"]);
    }
    let cases: &[&[&str]] = &[
        &["MEMORY", "HELP"],
        &["MEMORY", "help"],
        &["MEMORY", "USAGE", "nokey"],
        &["MEMORY", "USAGE", "k", "SAMPLES", "-1"],
        &["MEMORY", "USAGE", "k", "SAMPLES", "x"],
        &["MEMORY", "USAGE", "k", "SAMPLES"],
        &["MEMORY", "USAGE", "k", "bogus", "1"],
        &["MEMORY", "USAGE"],
        &["MEMORY", "STATS", "extra"],
        &["MEMORY", "nope"],
        &["MEMORY", "PURGE"],
        &["MEMORY", "DOCTOR"],
        &["PFSELFTEST"],
    ];
    for cmd in cases {
        assert_eq!(show(&pc.cmd_raw(cmd)), show(&rc.cmd_raw(cmd)), "{cmd:?}");
    }
    for c in [&mut rc, &mut pc] {
        assert!(matches!(c.cmd(&["MEMORY", "MALLOC-STATS"]), Frame::Bulk(_)));
        assert!(int(c.cmd(&["MEMORY", "USAGE", "k", "SAMPLES", "0"])) > 0);
    }
}

#[test]
fn stats_fields_are_redis_names_in_redis_order() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    let names = |f: Frame| -> Vec<String> {
        let Frame::Array(items) = f else {
            panic!("MEMORY STATS: {f:?}")
        };
        items
            .chunks(2)
            .map(|p| match &p[0] {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("field name {other:?}"),
            })
            .collect()
    };
    for c in [&mut rc, &mut pc] {
        for i in 0..100 {
            c.cmd_raw(&["SET", &format!("key:{i}"), "value"]);
        }
        c.cmd_raw(&["SELECT", "3"]);
        c.cmd_raw(&["SET", "x", "y"]);
        c.cmd_raw(&["EXPIRE", "x", "100"]);
        c.cmd_raw(&["SELECT", "0"]);
    }
    let want = names(rc.cmd(&["MEMORY", "STATS"]));
    let got_frame = pc.cmd(&["MEMORY", "STATS"]);
    let Frame::Array(items) = got_frame.clone() else {
        panic!("MEMORY STATS: {got_frame:?}")
    };
    assert_eq!(names(got_frame), want);
    let field = |name: &str| -> &Frame {
        let i = items
            .chunks(2)
            .position(|p| p[0] == Frame::Bulk(name.as_bytes().to_vec()))
            .unwrap_or_else(|| panic!("no {name}"));
        &items[2 * i + 1]
    };
    assert_eq!(field("keys.count"), &Frame::Int(101));
    let Frame::Array(db3) = field("db.3") else {
        panic!("db.3")
    };
    assert_eq!(db3.len(), 6);
    assert!(
        matches!(db3[3], Frame::Int(n) if n > 0),
        "expires overhead {db3:?}"
    );
}

/// Measured MEMORY USAGE, percore / redis-server 7.0 (same data, this test's keys, one
/// shard): a 5-byte string 92 / 64 bytes = 1.44x (percore's table entry is 88 bytes plus
/// its bucket link and holds the value inline; Redis 64 = dictEntry + robj + embstr in
/// jemalloc classes), a 1000-byte string 1092 / 1072 = 1.02x, a 500-element list
/// 6553 / 7296 = 0.90x, a 100-field hash (listpack in both) 2079 / 2096 = 0.99x, a
/// 1000-member set 45252 / 48296 = 0.94x, a 300-member sorted set 44412 / 34856 = 1.27x
/// (members are held twice, in the table and in the ordered chunks).
#[test]
fn usage_is_comparable_with_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(1);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    let big = "x".repeat(1000);
    let mut list = vec!["RPUSH".to_owned(), "list".to_owned()];
    let mut hash = vec!["HSET".to_owned(), "hash".to_owned()];
    let mut set = vec!["SADD".to_owned(), "set".to_owned()];
    let mut zset = vec!["ZADD".to_owned(), "zset".to_owned()];
    for i in 0..1000 {
        if i < 500 {
            list.push(format!("element-{i}"));
        }
        if i < 100 {
            hash.extend([format!("field-{i}"), format!("value-{i}")]);
        }
        if i < 300 {
            zset.extend([format!("{i}"), format!("member-{i}")]);
        }
        set.push(format!("member-{i}"));
    }
    for c in [&mut rc, &mut pc] {
        c.cmd_raw(&["SET", "short", "hello"]);
        c.cmd_raw(&["SET", "big", &big]);
        for cmd in [&list, &hash, &set, &zset] {
            c.cmd_raw(cmd);
        }
    }
    for (key, lo, hi) in [
        ("short", 1.0, 2.0),
        ("big", 0.8, 1.3),
        ("list", 0.6, 1.3),
        ("hash", 0.6, 1.4),
        ("set", 0.6, 1.3),
        ("zset", 0.8, 1.6),
    ] {
        let r = int(rc.cmd(&["MEMORY", "USAGE", key, "SAMPLES", "0"]));
        let p = int(pc.cmd(&["MEMORY", "USAGE", key, "SAMPLES", "0"]));
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        let ratio = p as f64 / r as f64;
        println!("{key}: percore {p} redis {r} ratio {ratio:.2}");
        assert!((lo..=hi).contains(&ratio), "{key}: percore {p} redis {r}");
    }
}

/// A one-off command of 100,000 arguments leaves nothing behind once its key is gone
/// (Valkey's unit/lazyfree "UNLINK can reclaim memory in background": `used_memory`
/// back under twice the start). The shard's argv and the connection's parsed ranges kept
/// the command's size (about 1.7 MB here) for as long as the shard and the connection
/// lived. The connection stays open. One shard: a command forwarded to another shard
/// still leaves several MB behind (the next step, see the issue notes).
#[test]
fn a_huge_command_leaves_no_memory_behind() {
    let percore = Server::percore_threads(1);
    let mut c = percore.conn();
    let used = |c: &mut common::Conn| -> u64 {
        common::info_field(c, "memory", "used_memory")
            .parse()
            .expect("used_memory")
    };
    let start = used(&mut c);
    let members: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    for key in ["myset", "myset2"] {
        let mut sadd = vec!["SADD", key];
        sadd.extend(members.iter().map(String::as_str));
        assert_eq!(c.cmd_raw(&sadd), b":100000\r\n");
        let peak = used(&mut c);
        assert!(peak > start + 1_000_000, "peak {peak}, start {start}");
        assert_eq!(c.cmd_raw(&["UNLINK", key]), b":1\r\n");
        // As the Tcl test: within 5 s (an idle connection's input buffer is trimmed by
        // the shard's cron, as Redis's `clientsCronResizeQueryBuffer`).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut after = used(&mut c);
        while !(after < peak && after < start * 2) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            after = used(&mut c);
        }
        assert!(
            after < peak && after < start * 2,
            "{key}: used_memory {after} 5 s after UNLINK (start {start}, peak {peak})"
        );
    }
}

/// UNLINK frees a big value on the lazy-free thread (INFO `lazyfreed_objects` counts it),
/// a small one inline; DEL inline unless `lazyfree-lazy-user-del yes`; a stream's effort
/// is its nodes (Valkey's unit/lazyfree "lazy free a stream with all types of
/// metadata"). The counters compared with redis-server's after each step.
#[test]
fn unlink_frees_big_values_lazily_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let mut big = vec!["SADD", "big"];
    big.extend(members.iter().map(String::as_str));
    let mut small = vec!["SADD", "small"];
    small.extend(members[..10].iter().map(String::as_str));
    let steps: Vec<Vec<&str>> = vec![
        big.clone(),
        vec!["UNLINK", "big"],
        small.clone(),
        vec!["UNLINK", "small"],
        big.clone(),
        vec!["DEL", "big"],
        vec!["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"],
        big.clone(),
        vec!["DEL", "big"],
        vec!["CONFIG", "SET", "lazyfree-lazy-user-del", "no"],
        vec!["CONFIG", "SET", "stream-node-max-entries", "5"],
    ];
    let counters = |c: &mut common::Conn| -> (String, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while common::info_field(c, "memory", "lazyfree_pending_objects") != "0"
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        (
            common::info_field(c, "memory", "lazyfree_pending_objects"),
            common::info_field(c, "memory", "lazyfreed_objects"),
        )
    };
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for step in &steps {
        assert_eq!(
            show(&r.cmd_raw(step)),
            show(&p.cmd_raw(step)),
            "{:?}",
            &step[..2]
        );
        assert_eq!(counters(&mut p), counters(&mut r), "after {:?}", &step[..2]);
    }
    // A stream of 200 nodes with a group and a PEL.
    for c in [&mut r, &mut p] {
        for j in 0..1000 {
            c.cmd_raw(&["XADD", "stream", "*", "foo", &j.to_string()]);
        }
        c.cmd_raw(&["XGROUP", "CREATE", "stream", "g", "0"]);
        c.cmd_raw(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "stream",
            ">",
        ]);
        assert_eq!(c.cmd_raw(&["UNLINK", "stream"]), b":1\r\n");
    }
    assert_eq!(counters(&mut p), counters(&mut r), "after UNLINK stream");
}
