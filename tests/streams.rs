//! Streams end to end: RDB both ways with redis-server 7.0 (type 19) and from Valkey
//! (type 21), a consumer group whose consumers sit on different shards and crash (their
//! entries picked up with XAUTOCLAIM) with a BGSAVE + restart in the middle that keeps
//! the PEL, and blocking reads (XREAD/XREADGROUP BLOCK) woken from another shard in FIFO
//! order, with timeouts.
//!
//! The redis-server parts skip with a notice without `redis-server` (fail with
//! `PERCORE_REQUIRE_REDIS=1`).

mod common;

use common::{Conn, Server, bulk, info_field, ok, path_str as d, scratch_dir, simple, wait_until};
use percore_engine::slot::shard_of_key;
use percore_net::resp::Frame;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Streams with several nodes, deletions, trimming, groups, PELs and consumers.
fn populate(c: &mut Conn) {
    c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "7"]);
    for i in 1..=60 {
        let ms = i.to_string();
        let id = format!("{ms}-1");
        if i % 5 == 0 {
            c.cmd(&["XADD", "big", &id, "other", &ms, "x", "y"]);
        } else {
            c.cmd(&["XADD", "big", &id, "f", &ms, "g", "value"]);
        }
    }
    c.cmd(&["XDEL", "big", "3-1", "10-1", "59-1"]);
    c.cmd(&["XTRIM", "big", "MINID", "5"]);
    c.cmd(&["XGROUP", "CREATE", "big", "g1", "0"]);
    c.cmd(&["XGROUP", "CREATE", "big", "g2", "$"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "alice",
        "COUNT",
        "4",
        "STREAMS",
        "big",
        ">",
    ]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "bob",
        "COUNT",
        "3",
        "STREAMS",
        "big",
        ">",
    ]);
    c.cmd(&["XACK", "big", "g1", "6-1"]);
    c.cmd(&["XGROUP", "CREATECONSUMER", "big", "g2", "carol"]);
    c.cmd(&["XADD", "small", "1-1", "a", "1"]);
    c.cmd(&["XADD", "empty", "5-5", "a", "1"]);
    c.cmd(&["XDEL", "empty", "5-5"]);
    c.cmd(&["XGROUP", "CREATE", "empty", "eg", "$", "ENTRIESREAD", "1"]);
    c.cmd(&["XADD", "ttl", "1-1", "a", "1"]);
    c.cmd(&["PEXPIRE", "ttl", "100000000"]);
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["XADD", "db2", "7-7", "k", "v"]);
    c.cmd(&["SELECT", "0"]);
}

/// (db, key) → everything XINFO STREAM FULL says, with the TTL's presence.
fn dataset(c: &mut Conn) -> BTreeMap<(u8, Vec<u8>), String> {
    let mut out = BTreeMap::new();
    for db in [0u8, 2] {
        c.cmd(&["SELECT", &db.to_string()]);
        let Frame::Array(keys) = c.cmd(&["KEYS", "*"]) else {
            panic!("KEYS");
        };
        for k in keys {
            let Frame::Bulk(k) = k else { panic!("key") };
            let info = c.cmd(&[b"XINFO".as_slice(), b"STREAM", &k, b"FULL", b"COUNT", b"0"]);
            let ttl = !matches!(c.cmd(&[b"PTTL".as_slice(), &k]), Frame::Int(-1));
            let enc = c.cmd(&[b"OBJECT".as_slice(), b"ENCODING", &k]);
            out.insert((db, k), format!("{info:?} ttl {ttl} {enc:?}"));
        }
    }
    c.cmd(&["SELECT", "0"]);
    out
}

fn wait_bgsave(c: &mut Conn) {
    wait_until("BGSAVE", || {
        info_field(c, "persistence", "rdb_bgsave_in_progress") == "0"
    });
    assert_eq!(info_field(c, "persistence", "rdb_last_bgsave_status"), "ok");
}

#[test]
fn streams_round_trip_with_redis() {
    let redis_dir = scratch_dir("xs-redis");
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

    // percore loads redis-server's type-19 streams: the same PELs, times and counters.
    for threads in ["1", "2"] {
        let p = Server::percore(&["--dir", d(&redis_dir), "--threads", threads]);
        let mut c = p.conn();
        assert_eq!(dataset(&mut c), want, "percore --threads {threads}");
    }

    // percore writes (SAVE, fork and forkless BGSAVE); redis-server loads each.
    for how in ["save", "fork", "forkless"] {
        let dir = scratch_dir(&format!("xs-percore-{how}"));
        let p = Server::percore(&["--dir", d(&dir), "--threads", "2"]);
        let mut c = p.conn();
        populate(&mut c);
        let mine = dataset(&mut c);
        if how == "save" {
            assert_eq!(c.cmd(&["SAVE"]), ok());
        } else {
            c.cmd(&["CONFIG", "SET", "default-bgsave-method", how]);
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
            mine,
            "redis-server loading percore's {how} dump"
        );
    }
}

/// A dump written by Valkey 8 (stream type 21: consumers with an active time) loads.
#[test]
fn valkey_dump_with_streams_loads() {
    let dir = scratch_dir("xs-valkey");
    let Some((mut child, mut v)) = common::start_valkey(&dir) else {
        return;
    };
    populate(&mut v);
    // Valkey's XINFO has 7.2+ fields; compare what 7.0 and Valkey share.
    let views = |c: &mut Conn| {
        let mut out = Vec::new();
        for k in ["big", "small", "empty", "ttl"] {
            out.push(c.cmd(&["XRANGE", k, "-", "+"]));
            out.push(c.cmd(&["XINFO", "GROUPS", k]));
            out.push(c.cmd(&["XLEN", k]));
        }
        for g in ["g1", "g2"] {
            out.push(c.cmd(&["XPENDING", "big", g]));
            let Frame::Array(items) = c.cmd(&["XPENDING", "big", g, "-", "+", "100"]) else {
                panic!("XPENDING");
            };
            // Idle times differ; IDs, owners and delivery counts do not.
            for it in items {
                let Frame::Array(mut x) = it else {
                    panic!("entry")
                };
                x[2] = Frame::Int(0);
                out.push(Frame::Array(x));
            }
        }
        format!("{out:?}")
    };
    let want = views(&mut v);
    assert_eq!(v.cmd(&["SAVE"]), ok());
    let _ = child.kill();
    let _ = child.wait();
    let p = Server::percore(&["--dir", d(&dir), "--threads", "2"]);
    let mut c = p.conn();
    assert_eq!(views(&mut c), want, "percore loading valkey's dump");
}

/// Two stream keys owned by different shards (of 2).
fn keys_on_two_shards() -> (String, String) {
    let a = "jobs-a".to_owned();
    let b = (0..1000)
        .map(|i| format!("jobs-b{i}"))
        .find(|k| shard_of_key(k.as_bytes(), 2) != shard_of_key(a.as_bytes(), 2))
        .expect("a key on the other shard");
    (a, b)
}

/// Reads `[[key, [[id, fields]...]]...]` into (key, id) pairs.
fn delivered(reply: &Frame) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Frame::Array(streams) = reply else {
        return out;
    };
    for s in streams {
        let Frame::Array(kv) = s else {
            panic!("stream pair")
        };
        let (Frame::Bulk(k), Frame::Array(entries)) = (&kv[0], &kv[1]) else {
            panic!("key and entries");
        };
        for e in entries {
            let Frame::Array(e) = e else { panic!("entry") };
            let Frame::Bulk(id) = &e[0] else { panic!("id") };
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(id).into_owned(),
            ));
        }
    }
    out
}

/// A job queue on two shards: consumers on several connections (so on both shards)
/// read with XREADGROUP, some crash without acknowledging, a BGSAVE and a restart happen
/// in the middle, the survivors take the crashed consumers' entries with XAUTOCLAIM, and
/// in the end every entry was acknowledged exactly once.
#[test]
fn consumer_group_across_shards_survives_crashes_and_restart() {
    const JOBS: usize = 200;
    let dir = scratch_dir("xs-jobs");
    let port = common::free_port().to_string();
    let args = ["--dir", d(&dir), "--threads", "2"];
    let server = Server::percore_at(&port, &args);
    let (ka, kb) = keys_on_two_shards();
    let mut admin = server.conn();
    for k in [&ka, &kb] {
        assert_eq!(
            admin.cmd(&["XGROUP", "CREATE", k, "workers", "$", "MKSTREAM"]),
            ok()
        );
    }
    let mut all = BTreeSet::new();
    for i in 0..JOBS {
        let k = if i % 2 == 0 { &ka } else { &kb };
        let Frame::Bulk(id) = admin.cmd(&["XADD", k, "*", "job", &i.to_string()]) else {
            panic!("XADD");
        };
        all.insert((k.clone(), String::from_utf8_lossy(&id).into_owned()));
    }
    let read = |c: &mut Conn, name: &str| {
        delivered(&c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            name,
            "COUNT",
            "7",
            "STREAMS",
            &ka,
            &kb,
            ">",
            ">",
        ]))
    };
    let mut acked: Vec<(String, String)> = Vec::new();
    let ack = |c: &mut Conn, got: &[(String, String)], acked: &mut Vec<(String, String)>| {
        for (k, id) in got {
            assert_eq!(c.cmd(&["XACK", k, "workers", id]), Frame::Int(1));
            acked.push((k.clone(), id.clone()));
        }
    };
    // Four consumers; "crash1" and "crash2" read and vanish without acknowledging.
    let mut workers: Vec<(String, Conn)> =
        (0..4).map(|i| (format!("w{i}"), server.conn())).collect();
    let mut lost = Vec::new();
    for round in 0..3 {
        for (name, c) in &mut workers {
            let got = read(c, name);
            if name == "w3" && round == 0 {
                // w3 crashes holding its entries.
                lost.extend(got);
                continue;
            }
            ack(c, &got, &mut acked);
        }
    }
    workers.retain(|(n, _)| n != "w3");
    assert!(!lost.is_empty());
    // A crashed consumer's entries are pending under its name.
    let Frame::Array(pa) = admin.cmd(&["XPENDING", &ka, "workers", "-", "+", "1000", "w3"]) else {
        panic!("XPENDING");
    };
    let Frame::Array(pb) = admin.cmd(&["XPENDING", &kb, "workers", "-", "+", "1000", "w3"]) else {
        panic!("XPENDING");
    };
    assert_eq!(pa.len() + pb.len(), lost.len());

    // BGSAVE, then the server restarts from it.
    assert_eq!(admin.cmd(&["BGSAVE"]), simple("Background saving started"));
    wait_bgsave(&mut admin);
    drop(workers);
    drop(admin);
    drop(server);
    let server = Server::percore_at(&port, &args);
    let mut admin = server.conn();
    let Frame::Array(summary) = admin.cmd(&["XPENDING", &ka, "workers"]) else {
        panic!("XPENDING");
    };
    let Frame::Int(pending_a) = summary[0] else {
        panic!("count")
    };
    let Frame::Array(summary) = admin.cmd(&["XPENDING", &kb, "workers"]) else {
        panic!("XPENDING");
    };
    let Frame::Int(pending_b) = summary[0] else {
        panic!("count")
    };
    assert_eq!(
        pending_a + pending_b,
        lost.len() as i64,
        "the PEL survived the restart"
    );

    // Survivors (new connections, so again on either shard) pick up the crashed
    // consumer's entries, then finish the queue.
    let mut survivors: Vec<(String, Conn)> =
        (0..3).map(|i| (format!("w{i}"), server.conn())).collect();
    for k in [&ka, &kb] {
        let (name, c) = &mut survivors[0];
        let Frame::Array(claim) =
            c.cmd(&["XAUTOCLAIM", k, "workers", name, "0", "0", "COUNT", "1000"])
        else {
            panic!("XAUTOCLAIM");
        };
        assert_eq!(claim[0], bulk("0-0"));
        let Frame::Array(entries) = &claim[1] else {
            panic!("entries")
        };
        for e in entries {
            let Frame::Array(e) = e else { panic!("entry") };
            let Frame::Bulk(id) = &e[0] else { panic!("id") };
            let got = vec![(k.clone(), String::from_utf8_lossy(id).into_owned())];
            ack(c, &got, &mut acked);
        }
    }
    loop {
        let mut any = false;
        for (name, c) in &mut survivors {
            let got = read(c, name);
            any |= !got.is_empty();
            ack(c, &got, &mut acked);
        }
        if !any {
            break;
        }
    }
    let acked_set: BTreeSet<_> = acked.iter().cloned().collect();
    assert_eq!(
        acked_set.len(),
        acked.len(),
        "an entry was acknowledged twice"
    );
    assert_eq!(acked_set, all, "every job acknowledged");
    for k in [&ka, &kb] {
        let Frame::Array(s) = admin.cmd(&["XPENDING", k, "workers"]) else {
            panic!()
        };
        assert_eq!(s[0], Frame::Int(0));
    }
}

fn blocked_clients(c: &mut Conn) -> String {
    info_field(c, "clients", "blocked_clients")
}

/// XREAD and XREADGROUP BLOCK: a writer on any shard wakes the reader; waiters on a group
/// are served one entry each in the order they blocked; timeouts answer a null.
#[test]
fn blocking_reads_wake_across_shards_in_order() {
    let server = Server::percore(&["--threads", "2"]);
    let (ka, kb) = keys_on_two_shards();
    let mut admin = server.conn();

    // XREAD BLOCK on two keys of different shards; an XADD to the second serves it with
    // that key alone.
    let mut r1 = server.conn();
    r1.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", &ka, &kb, "$", "$"]);
    wait_until("the reader blocks", || blocked_clients(&mut admin) == "1");
    admin.cmd(&["XADD", &kb, "5-1", "f", "v"]);
    let want = Frame::Array(vec![Frame::Array(vec![
        bulk(&kb),
        Frame::Array(vec![Frame::Array(vec![
            bulk("5-1"),
            Frame::Array(vec![bulk("f"), bulk("v")]),
        ])]),
    ])]);
    assert_eq!(r1.read_frame(), want);

    // Three group consumers blocked in turn: two XADDs serve the first two, in order.
    admin.cmd(&["XGROUP", "CREATE", &ka, "g", "$", "MKSTREAM"]);
    let mut waiters: Vec<Conn> = (0..3).map(|_| server.conn()).collect();
    let Frame::Int(third_id) = waiters[2].cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID");
    };
    for (i, w) in waiters.iter_mut().enumerate() {
        let name = format!("c{i}");
        w.send_cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            &name,
            "BLOCK",
            "0",
            "STREAMS",
            &ka,
            ">",
        ]);
        wait_until("the consumer blocks", || {
            blocked_clients(&mut admin) == (i + 1).to_string()
        });
    }
    // Each XADD after the previous waiter was served (a waiter on another shard than
    // its key is claimed first: a second XADD racing the claim would be served with it).
    admin.cmd(&["XADD", &ka, "10-1", "n", "1"]);
    wait_until("one served", || blocked_clients(&mut admin) == "2");
    admin.cmd(&["XADD", &ka, "11-1", "n", "2"]);
    assert_eq!(
        delivered(&waiters[0].read_frame()),
        [(ka.clone(), "10-1".to_owned())]
    );
    assert_eq!(
        delivered(&waiters[1].read_frame()),
        [(ka.clone(), "11-1".to_owned())]
    );
    wait_until("two served", || blocked_clients(&mut admin) == "1");
    let Frame::Array(p) = admin.cmd(&["XPENDING", &ka, "g", "-", "+", "10"]) else {
        panic!("XPENDING");
    };
    assert_eq!(p.len(), 2);
    // The third is still blocked; CLIENT UNBLOCK answers it as a timeout.
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &third_id.to_string()]),
        Frame::Int(1)
    );
    assert_eq!(waiters[2].read_frame(), Frame::NullArray);
}

#[test]
fn blocking_read_times_out_with_a_null() {
    let server = Server::percore(&["--threads", "2"]);
    let mut c = server.conn();
    let t = Instant::now();
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "150", "STREAMS", "nothing", "$"]),
        Frame::NullArray
    );
    // It waited (the deadline is taken from the loop's clock of that iteration, so a
    // little less than 150 ms of the client's clock can pass; not a timing test).
    assert!(t.elapsed() >= Duration::from_millis(100));
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(
        c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "100",
            "NOACK",
            "STREAMS",
            "s",
            ">"
        ]),
        Frame::NullArray
    );
    // NOACK: served entries do not enter the PEL.
    let mut w = server.conn();
    w.send_cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_until("the reader blocks", || blocked_clients(&mut c) == "1");
    c.cmd(&["XADD", "s", "1-1", "a", "b"]);
    assert_eq!(
        delivered(&w.read_frame()),
        [("s".to_owned(), "1-1".to_owned())]
    );
    let Frame::Array(p) = c.cmd(&["XPENDING", "s", "g"]) else {
        panic!()
    };
    assert_eq!(p[0], Frame::Int(0));
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "x", "STREAMS", "s", "$"]),
        Frame::Error(b"ERR timeout is not an integer or out of range".to_vec())
    );
    // Entries after the id all deleted: the reader blocks and times out with a null,
    // never an empty array (Redis's "Blocking XREAD will not reply with an empty array"
    // and "stream that ran dry" tests).
    c.cmd(&["XADD", "d", "666", "f", "v"]);
    c.cmd(&["XADD", "d", "667", "f", "v"]);
    c.cmd(&["XDEL", "d", "667"]);
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "d", "666"]),
        Frame::NullArray
    );
    c.cmd(&["XDEL", "d", "666"]);
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "d", "665"]),
        Frame::NullArray
    );
}

/// A blocked XREADGROUP is answered when its stream or group goes (DEL, expiry, a type
/// change, XGROUP DESTROY, a delete-and-recreate in one script, FLUSHALL, FLUSHDB,
/// SWAPDB) while a blocked XREAD waits on: Redis 7.0's replies, byte for byte, with the waiter's key on either shard.
#[test]
fn blocked_group_readers_learn_that_their_stream_or_group_went() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let (ka, kb) = keys_on_two_shards();
    let recreate = "redis.call('del',KEYS[1]); redis.call('xadd',KEYS[1],'1-1','a','1')";
    let scenarios: [(&str, &[&str]); 10] = [
        ("XREADGROUP", &["DEL", "{k}"]),
        ("XREADGROUP", &["XGROUP", "DESTROY", "{k}", "g"]),
        ("XREADGROUP", &["SET", "{k}", "x"]),
        ("XREADGROUP", &["PEXPIRE", "{k}", "1"]),
        ("XREADGROUP", &["EVAL", recreate, "1", "{k}"]),
        ("XREAD", &["DEL", "{k}"]),
        // 7.0's scanDatabaseForDeletedStreams: emptied or swapped-away databases.
        ("XREADGROUP", &["FLUSHALL"]),
        ("XREADGROUP", &["FLUSHDB"]),
        ("XREADGROUP", &["SWAPDB", "0", "1"]),
        ("XREAD", &["FLUSHALL"]),
    ];
    let mut seen: Vec<Vec<Vec<u8>>> = Vec::new();
    for server in [&redis, &percore] {
        let mut admin = server.conn();
        let mut replies = Vec::new();
        for key in [&ka, &kb] {
            for (reader, write) in &scenarios {
                admin.cmd(&["DEL", key]);
                admin.cmd(&["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]);
                let mut r = server.conn();
                if *reader == "XREADGROUP" {
                    r.send_cmd(&[
                        "XREADGROUP",
                        "GROUP",
                        "g",
                        "c",
                        "BLOCK",
                        "0",
                        "STREAMS",
                        key,
                        ">",
                    ]);
                } else {
                    r.send_cmd(&["XREAD", "BLOCK", "300", "STREAMS", key, "$"]);
                }
                wait_until("the reader blocks", || blocked_clients(&mut admin) == "1");
                let write: Vec<String> = write.iter().map(|a| a.replace("{k}", key)).collect();
                admin.cmd(&write);
                // An XREAD on a deleted key waits for its timeout (a null).
                replies.push(r.read_raw());
                wait_until("nobody blocked", || blocked_clients(&mut admin) == "0");
            }
        }
        seen.push(replies);
    }
    for (i, (want, got)) in seen[0].iter().zip(&seen[1]).enumerate() {
        assert_eq!(
            common::show(got),
            common::show(want),
            "scenario {} (key {})",
            i % scenarios.len(),
            i / scenarios.len()
        );
    }
    assert!(
        common::show(&seen[0][0]).contains("UNBLOCKED the stream key no longer exists"),
        "{}",
        common::show(&seen[0][0])
    );
}

/// XREADGROUP `>` with BLOCK, when the entries added after the group's last delivered one
/// were all deleted: it blocks and times out (Redis 7.0.15's `streamLastValidID` check),
/// never answering `[key, []]`; the consumer is not created. Both shards, vs redis.
#[test]
fn a_group_reader_whose_new_entries_were_deleted_blocks() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let (ka, kb) = keys_on_two_shards();
    let mut seen = Vec::new();
    for server in [&redis, &percore] {
        let mut admin = server.conn();
        let mut replies = Vec::new();
        for key in [&ka, &kb] {
            let read = |c: &str, block: &str| -> Vec<String> {
                let mut v: Vec<String> = ["XREADGROUP", "GROUP", "g", c, "BLOCK", block]
                    .iter()
                    .map(|s| (*s).to_string())
                    .collect();
                v.extend(["STREAMS".to_string(), key.clone(), ">".to_string()]);
                v
            };
            for cmd in [
                vec!["DEL", key],
                vec!["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"],
                vec!["XADD", key, "666", "f", "v"],
            ] {
                replies.push(admin.cmd_raw(&cmd));
            }
            replies.push(admin.cmd_raw(&read("alice", "10")));
            for cmd in [
                vec!["XADD", key, "667", "f2", "v2"],
                vec!["XDEL", key, "667"],
            ] {
                replies.push(admin.cmd_raw(&cmd));
            }
            let mut r = server.conn();
            r.send_cmd(&read("alice", "50"));
            replies.push(r.read_raw());
            r.send_cmd(&read("bob", "50"));
            replies.push(r.read_raw());
            replies.push(admin.cmd_raw(&["XINFO", "GROUPS", key]));
            // A new entry still serves a blocked reader.
            r.send_cmd(&read("alice", "0"));
            wait_until("the reader blocks", || blocked_clients(&mut admin) == "1");
            replies.push(admin.cmd_raw(&["XADD", key, "668", "f3", "v3"]));
            replies.push(r.read_raw());
        }
        seen.push(replies);
    }
    for (i, (want, got)) in seen[0].iter().zip(&seen[1]).enumerate() {
        assert_eq!(common::show(got), common::show(want), "reply {i}");
    }
    assert_eq!(seen[0].len(), seen[1].len());
}

/// XREADGROUP served at once on a shard other than its client's (and a read of keys on
/// both shards) reaches the AOF: after DEBUG LOADAOF the groups, their consumers and
/// pending entries are as in redis-server after its own reload. Before, a group read whose
/// key lived on another shard was never logged (its consumer and NOACK delivery were
/// lost on a reload or a replica).
#[test]
fn group_reads_on_another_shard_reach_the_aof() {
    let Some(redis) = Server::redis_with(&["--appendonly", "yes", "--enable-debug-command", "yes"])
    else {
        return;
    };
    let percore = Server::percore(&[
        "--threads",
        "2",
        "--appendonly",
        "yes",
        "--enable-debug-command",
        "yes",
    ]);
    let (ka, kb) = keys_on_two_shards();
    let (ka, kb) = (ka.as_str(), kb.as_str());
    let state = |c: &mut Conn| -> Vec<String> {
        [ka, kb]
            .iter()
            .flat_map(|k| {
                // Name, consumers, pending, last-delivered-id (not entries-read and lag,
                // which Redis's own reload does not keep).
                let groups = match c.cmd(&["XINFO", "GROUPS", k]) {
                    Frame::Array(g) => match g.first() {
                        Some(Frame::Array(fields)) => fields.iter().take(8).cloned().collect(),
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                [
                    show_frame(&Frame::Array(groups)),
                    show_frame(&c.cmd(&["XPENDING", k, "g"])),
                ]
            })
            .collect()
    };
    let mut seen = Vec::new();
    for server in [&redis, &percore] {
        // Several connections: some land on the shard that owns a key, some do not.
        let mut conns: Vec<Conn> = (0..6).map(|_| server.conn()).collect();
        for k in [ka, kb] {
            conns[0].cmd(&["XGROUP", "CREATE", k, "g", "$", "MKSTREAM"]);
            conns[0].cmd(&["XADD", k, "1-1", "f", "v"]);
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let (name, k) = (format!("c{i}"), if i % 2 == 0 { ka } else { kb });
            let noack: &[&str] = if i % 3 == 0 { &["NOACK"] } else { &[] };
            let mut argv = vec!["XREADGROUP", "GROUP", "g", &name];
            argv.extend_from_slice(noack);
            argv.extend(["STREAMS", k, ">"]);
            c.cmd(&argv);
            c.cmd(&["XADD", k, &format!("{}-1", i + 2), "f", "v"]);
        }
        for (i, c) in conns.iter_mut().enumerate() {
            let name = format!("both{i}");
            c.cmd(&[
                "XREADGROUP",
                "GROUP",
                "g",
                &name,
                "COUNT",
                "1",
                "STREAMS",
                ka,
                kb,
                ">",
                ">",
            ]);
        }
        let before = state(&mut conns[0]);
        let reload = conns[0].cmd(&["DEBUG", "LOADAOF"]);
        assert_eq!(reload, Frame::Simple(b"OK".to_vec()));
        seen.push((before, state(&mut conns[0])));
    }
    assert_eq!(seen[1].0, seen[0].0, "percore vs redis-server");
    assert_eq!(
        seen[1].1, seen[0].1,
        "percore vs redis-server after DEBUG LOADAOF"
    );
}

fn show_frame(f: &Frame) -> String {
    format!("{f:?}")
}
