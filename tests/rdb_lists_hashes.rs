//! Lists and hashes through RDB files both ways: redis-server 7.0 writes (quicklist 2,
//! hash listpack, hash table), percore loads; percore writes with SAVE and both BGSAVE
//! methods, `redis-check-rdb` accepts, redis-server loads; every key compared (type,
//! encoding, contents, TTL present). Also a corrupt nested listpack stops start-up with
//! the offset named.
//!
//! Skips with a notice without `redis-server` (fails with `PERCORE_REQUIRE_REDIS=1`).

mod common;

use common::{Conn, Server, info_field, ok, scratch_dir, simple};
use percore_net::resp::Frame;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const SAVE_TIMEOUT: Duration = Duration::from_mins(1);

fn populate(c: &mut Conn) {
    let cmds: Vec<Vec<String>> = vec![
        vec![
            "RPUSH".into(),
            "small".into(),
            "a".into(),
            "1".into(),
            "-5".into(),
            String::new(),
        ],
        vec![
            "HSET".into(),
            "hsmall".into(),
            "f".into(),
            "v".into(),
            "n".into(),
            "12".into(),
        ],
        vec!["HSET".into(), "hlong".into(), "f".into(), "x".repeat(100)],
        vec!["SET".into(), "str".into(), "plain".into()],
        vec!["RPUSH".into(), "ttl-list".into(), "x".into()],
        vec!["PEXPIRE".into(), "ttl-list".into(), "100000000".into()],
    ];
    for a in cmds {
        c.cmd(&a);
    }
    // A list of many nodes, mixed integers and strings, some long.
    for chunk in 0..20 {
        let mut a = vec!["RPUSH".to_owned(), "big".to_owned()];
        for i in 0..500 {
            let n = chunk * 500 + i;
            a.push(if n % 3 == 0 {
                n.to_string()
            } else {
                format!("item-{n}-{}", "z".repeat(n % 70))
            });
        }
        c.cmd(&a);
    }
    // A hash table of 1000 fields.
    for chunk in 0..10 {
        let mut a = vec!["HSET".to_owned(), "hbig".to_owned()];
        for i in 0..100 {
            let n = chunk * 100 + i;
            a.push(format!("field{n}"));
            a.push(n.to_string());
        }
        c.cmd(&a);
    }
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["LPUSH", "db3list", "q", "w", "e"]);
    c.cmd(&["SELECT", "0"]);
}

/// Every key of db 0 and 3: (db, key) → (type, encoding, canonical contents, has TTL).
type Dataset = BTreeMap<(u8, Vec<u8>), (String, String, String, bool)>;

fn text(f: &Frame) -> String {
    format!("{f:?}")
}

fn dataset(c: &mut Conn) -> Dataset {
    let mut out = Dataset::new();
    for db in [0u8, 3] {
        c.cmd(&["SELECT", &db.to_string()]);
        let Frame::Array(keys) = c.cmd(&["KEYS", "*"]) else {
            panic!("KEYS");
        };
        for k in keys {
            let Frame::Bulk(k) = k else { panic!("key") };
            let ty = text(&c.cmd(&[b"TYPE".as_slice(), &k]));
            let enc = common::encoding_as_7_0(
                &common::show(&c.cmd_raw(&[b"TYPE".as_slice(), &k])),
                common::show(&c.cmd_raw(&[b"OBJECT".as_slice(), b"ENCODING", &k])),
            );
            let contents = if ty.contains("list") {
                text(&c.cmd(&[b"LRANGE".as_slice(), &k, b"0", b"-1"]))
            } else if ty.contains("hash") {
                let Frame::Array(items) = c.cmd(&[b"HGETALL".as_slice(), &k]) else {
                    panic!("HGETALL");
                };
                let mut pairs: Vec<String> = items
                    .chunks(2)
                    .map(|p| format!("{:?}={:?}", p[0], p[1]))
                    .collect();
                pairs.sort();
                pairs.join(",")
            } else {
                text(&c.cmd(&[b"GET".as_slice(), &k]))
            };
            let ttl = !matches!(c.cmd(&[b"PTTL".as_slice(), &k]), Frame::Int(-1));
            out.insert((db, k), (ty, enc, contents, ttl));
        }
    }
    c.cmd(&["SELECT", "0"]);
    out
}

fn wait_bgsave(c: &mut Conn) {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(info_field(c, "persistence", "rdb_last_bgsave_status"), "ok");
}

fn d(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn lists_and_hashes_round_trip_with_redis() {
    let redis_dir = scratch_dir("lh-redis");
    let Some(redis) = Server::redis_with(&["--dir", d(&redis_dir)]) else {
        return;
    };
    let mut r = redis.conn();
    populate(&mut r);
    let want = dataset(&mut r);
    assert_eq!(r.cmd(&["SAVE"]), ok());
    drop(r);
    drop(redis);
    common::check_rdb(&redis_dir.join("dump.rdb"));

    // percore loads redis-server's file.
    for threads in ["1", "2"] {
        let p = Server::percore(&["--dir", d(&redis_dir), "--threads", threads]);
        let mut c = p.conn();
        assert_eq!(
            dataset(&mut c),
            want,
            "percore --threads {threads} loading redis's dump"
        );
    }

    // percore writes with SAVE and both BGSAVE methods; redis-server loads each.
    for how in ["save", "fork", "forkless"] {
        let dir = scratch_dir(&format!("lh-percore-{how}"));
        let p = Server::percore(&["--dir", d(&dir), "--threads", "2"]);
        let mut c = p.conn();
        populate(&mut c);
        assert_eq!(dataset(&mut c), want, "percore's own dataset");
        if how == "save" {
            assert_eq!(c.cmd(&["SAVE"]), ok());
        } else {
            assert_eq!(
                c.cmd(&["CONFIG", "SET", "default-bgsave-method", how]),
                ok()
            );
            assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
            wait_bgsave(&mut c);
        }
        drop(c);
        drop(p);
        common::check_rdb(&dir.join("dump.rdb"));
        let redis = Server::redis_with(&["--dir", d(&dir)]).expect("redis-server present");
        let mut r = redis.conn();
        assert_eq!(
            dataset(&mut r),
            want,
            "redis-server loading percore's {how} dump"
        );
    }
}

#[test]
fn corrupt_nested_listpack_names_the_offset() {
    let dir = scratch_dir("lh-corrupt");
    let Some(redis) = Server::redis_with(&["--dir", d(&dir), "--rdbcompression", "no"]) else {
        return;
    };
    let mut r = redis.conn();
    r.cmd(&["HSET", "h", "field", "value"]);
    r.cmd(&["RPUSH", "l", "element"]);
    assert_eq!(r.cmd(&["SAVE"]), ok());
    drop(r);
    drop(redis);
    let path = dir.join("dump.rdb");
    let good = std::fs::read(&path).expect("dump");
    for (needle, what) in [
        (&b"\x85field"[..], "corrupt hash listpack"),
        (b"\x87element", "corrupt quicklist node"),
    ] {
        let mut bytes = good.clone();
        // The listpack's entry count (header bytes 4..6) sits just before its first entry.
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("listpack entry in the dump");
        bytes[at - 2] = 9;
        // Keep the file checksum valid: zero means "not checked".
        let n = bytes.len();
        bytes[n - 8..].fill(0);
        std::fs::write(&path, &bytes).expect("write");
        let log = common::start_fails(&dir);
        assert!(
            log.contains(what) && log.contains("offset"),
            "start-up error names the encoding and offset: {log}"
        );
    }
}

/// A dump written by Valkey (8/9, `../shared/peers/valkey/valkey-server`) with lists
/// (listpack and quicklist) and hashes (listpack and table) loads with the same contents.
#[test]
fn valkey_dump_with_lists_and_hashes_loads() {
    let dir = scratch_dir("lh-valkey");
    let Some((mut child, mut v)) = common::start_valkey(&dir) else {
        return;
    };
    populate(&mut v);
    // Encodings differ (Valkey reports `listpack` for small lists): compare the rest.
    let strip = |d: Dataset| -> BTreeMap<(u8, Vec<u8>), (String, String, bool)> {
        d.into_iter()
            .map(|(k, (t, _, c, ttl))| (k, (t, c, ttl)))
            .collect()
    };
    let want = strip(dataset(&mut v));
    assert_eq!(v.cmd(&["SAVE"]), ok());
    let _ = child.kill();
    let _ = child.wait();
    let p = Server::percore(&["--dir", d(&dir), "--threads", "2"]);
    let mut c = p.conn();
    assert_eq!(
        strip(dataset(&mut c)),
        want,
        "percore loading valkey's dump"
    );
}
