//! Replication, percore as a replica: of a redis-server 7.0 primary (and Valkey's when
//! `../shared/peers/valkey` is there) through a full sync (disk `$len` and diskless
//! EOF-marker transfers) with every data type, the command stream, and a partial resync
//! after the link is cut, the datasets compared key by key; READONLY, MASTERDOWN, ROLE,
//! INFO replication; and the reset barrier: REPLICAOF NO ONE, REPLICAOF another primary
//! and a full sync cancel every in-flight snapshot on every core before the reply (both
//! snapshot methods, two shards).

mod common;

use common::{
    Conn, Server, children, err, info_field, ok, scratch_dir, simple, start_slow_bgsave, temp_files,
};
use percore_net::resp::Frame;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a sync or a resync may take in these tests.
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);
/// A primary's diskless full syncs start at once.
const DISKLESS_NOW: &[&str] = &["--repl-diskless-sync-delay", "0"];
/// Databases the datasets use.
const DATABASES: [&str; 2] = ["0", "3"];

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn strings(f: Frame) -> Vec<String> {
    match f {
        Frame::Array(items) => items.iter().map(text).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Every key of the databases in [`DATABASES`] as `db/key -> type and contents` (sets and
/// hashes sorted), with whether it has a TTL.
fn dataset(c: &mut Conn) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for db in DATABASES {
        assert_eq!(c.cmd(&["SELECT", db]), ok());
        for key in strings(c.cmd(&["KEYS", "*"])) {
            let ty = text(&c.cmd(&["TYPE", &key]));
            let body = match ty.as_str() {
                "string" => text(&c.cmd(&["GET", &key])),
                "list" => strings(c.cmd(&["LRANGE", &key, "0", "-1"])).join(","),
                "hash" => {
                    let flat = strings(c.cmd(&["HGETALL", &key]));
                    let mut pairs: Vec<String> = flat
                        .chunks(2)
                        .map(|p| format!("{}={}", p[0], p[1]))
                        .collect();
                    pairs.sort();
                    pairs.join(",")
                }
                "set" => {
                    let mut m = strings(c.cmd(&["SMEMBERS", &key]));
                    m.sort();
                    m.join(",")
                }
                "zset" => strings(c.cmd(&["ZRANGE", &key, "0", "-1", "WITHSCORES"])).join(","),
                "stream" => format!("{:?}", c.cmd(&["XRANGE", &key, "-", "+"])),
                other => panic!("unexpected type {other}"),
            };
            let ttl = match c.cmd(&["PTTL", &key]) {
                Frame::Int(-1) => "persistent",
                Frame::Int(n) if n > 0 => "volatile",
                other => panic!("PTTL {key}: {other:?}"),
            };
            out.insert(format!("{db}/{key}"), format!("{ty} {ttl} {body}"));
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    out
}

/// Writes every data type, in both encodings where the size picks one, in two databases.
fn populate(c: &mut Conn, tag: &str) {
    for db in DATABASES {
        assert_eq!(c.cmd(&["SELECT", db]), ok());
        for i in 0..40 {
            c.cmd(&[
                "SET",
                &format!("{tag}:s{i}"),
                &format!("value-{i}-{}", "x".repeat(i)),
            ]);
        }
        c.cmd(&["SET", &format!("{tag}:int"), "12345"]);
        c.cmd(&["SET", &format!("{tag}:ttl"), "v", "EX", "1000"]);
        for i in 0..300 {
            let n = i.to_string();
            c.cmd(&["RPUSH", &format!("{tag}:biglist"), &n]);
            c.cmd(&["HSET", &format!("{tag}:bighash"), &format!("f{i}"), &n]);
            c.cmd(&["SADD", &format!("{tag}:intset"), &n]);
            c.cmd(&["SADD", &format!("{tag}:bigset"), &format!("m{i}")]);
            c.cmd(&["ZADD", &format!("{tag}:bigzset"), &n, &format!("m{i}")]);
        }
        c.cmd(&["RPUSH", &format!("{tag}:list"), "a", "b", "c"]);
        c.cmd(&["HSET", &format!("{tag}:hash"), "f", "1", "g", "2"]);
        c.cmd(&["SADD", &format!("{tag}:set"), "x", "y"]);
        c.cmd(&["ZADD", &format!("{tag}:zset"), "1.5", "a", "2", "b"]);
        c.cmd(&["XADD", &format!("{tag}:stream"), "1-1", "f", "v"]);
        c.cmd(&["XADD", &format!("{tag}:stream"), "2-1", "g", "w"]);
        c.cmd(&["XGROUP", "CREATE", &format!("{tag}:stream"), "grp", "0"]);
        c.cmd(&["PFADD", &format!("{tag}:hll"), "a", "b", "c"]);
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
}

/// The command stream: writes of every kind, a MULTI/EXEC block, deletions, expiries.
fn stream_writes(c: &mut Conn, round: usize) {
    let r = round.to_string();
    c.cmd(&["SET", &format!("w:{r}"), &r]);
    c.cmd(&["INCRBY", "w:counter", "7"]);
    c.cmd(&["INCRBYFLOAT", "w:float", "1.5"]);
    c.cmd(&["LPUSH", "w:list", &r]);
    c.cmd(&["HINCRBY", "w:hash", "n", "1"]);
    c.cmd(&["SADD", "w:set", &r]);
    c.cmd(&["SPOP", "w:set"]);
    c.cmd(&["ZINCRBY", "w:zset", "2", &r]);
    // An explicit ID: percore's stream of effects does not yet rewrite `XADD key *` to the
    // ID it made (Redis propagates the ID).
    c.cmd(&["XADD", "w:stream", &format!("{}-1", round + 1), "r", &r]);
    c.cmd(&["EXPIRE", &format!("w:{r}"), "500"]);
    c.cmd(&["DEL", "pri:s3"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["RENAME", "pri:list", &format!("pri:list{r}")]);
    c.cmd(&["SELECT", "0"]);
    assert_eq!(c.cmd(&["MULTI"]), ok());
    c.cmd(&["SET", "{t}a", &r]);
    c.cmd(&["SET", "{u}b", &r]);
    c.cmd(&["LPUSH", "w:list", "in-multi"]);
    assert!(matches!(c.cmd(&["EXEC"]), Frame::Array(_)));
}

/// Asserts two datasets are equal, naming the keys that differ.
fn same_data(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>, what: &str) {
    let mut diff = Vec::new();
    for k in got.keys().chain(want.keys()) {
        if got.get(k) != want.get(k) && !diff.contains(k) {
            diff.push(k.clone());
        }
    }
    let show = |m: &BTreeMap<String, String>, k: &String| {
        m.get(k).map(|v| v.chars().take(120).collect::<String>())
    };
    let lines: Vec<String> = diff
        .iter()
        .take(10)
        .map(|k| {
            format!(
                "{k}: replica {:?} primary {:?}",
                show(got, k),
                show(want, k)
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "{what}: {} keys differ:\n{}",
        diff.len(),
        lines.join("\n")
    );
}

fn offset(c: &mut Conn, field: &str) -> i64 {
    info_field(c, "replication", field)
        .parse()
        .expect("an offset")
}

/// Waits until the replica has applied everything the primary sent.
fn wait_caught_up(primary: &mut Conn, replica: &mut Conn) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let want = offset(primary, "master_repl_offset");
        if info_field(replica, "replication", "master_link_status") == "up"
            && offset(replica, "slave_repl_offset") == want
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica did not catch up: primary at {want}, replica:\n{:?}",
            replica.cmd(&["INFO", "replication"])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sync_partial_ok(primary: &mut Conn) -> i64 {
    info_field(primary, "stats", "sync_partial_ok")
        .parse()
        .expect("a count")
}

/// A two-shard percore replica of the primary on `port`, with `--dir dir` and `extra`.
fn percore_replica(dir: &std::path::Path, port: u16, extra: &[&str]) -> Server {
    let port = port.to_string();
    let mut args = vec![
        "--threads",
        "2",
        "--dir",
        dir.to_str().expect("utf-8"),
        "--replicaof",
        "127.0.0.1",
        &port,
    ];
    args.extend_from_slice(extra);
    Server::percore(&args)
}

/// One primary (redis-server or Valkey, on `port`), one percore replica with two shards:
/// full sync, stream, a cut link, partial resync; datasets equal at each step.
fn replicate_from(primary: &mut Conn, port: u16, replica_args: &[&str], what: &str) {
    populate(primary, "pri");
    let dir = scratch_dir("replica");
    let replica = percore_replica(&dir, port, replica_args);
    let mut r = replica.conn();
    wait_caught_up(primary, &mut r);
    assert_eq!(
        dataset(&mut r),
        dataset(primary),
        "{what}: after the full sync"
    );
    assert_eq!(
        info_field(&mut r, "replication", "master_replid"),
        info_field(primary, "replication", "master_replid"),
        "{what}"
    );
    for round in 0..5 {
        stream_writes(primary, round);
    }
    assert_eq!(
        primary.cmd(&["WAIT", "1", "10000"]),
        Frame::Int(1),
        "{what}: WAIT"
    );
    wait_caught_up(primary, &mut r);
    assert_eq!(
        dataset(&mut r),
        dataset(primary),
        "{what}: after the stream"
    );

    // Cut the link; the primary goes on; the replica resumes from its offset.
    let partial_before = sync_partial_ok(primary);
    assert!(matches!(
        primary.cmd(&["CLIENT", "KILL", "TYPE", "replica"]),
        Frame::Int(1)
    ));
    for round in 5..10 {
        stream_writes(primary, round);
    }
    wait_caught_up(primary, &mut r);
    assert_eq!(
        sync_partial_ok(primary),
        partial_before + 1,
        "{what}: the reconnection was not a partial resync"
    );
    assert_eq!(
        dataset(&mut r),
        dataset(primary),
        "{what}: after the partial resync"
    );
    assert!(
        replica
            .output()
            .contains("Successful partial resynchronization with master."),
        "{what}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn percore_replica_of_redis_full_sync_stream_and_partial_resync() {
    for diskless in ["yes", "no"] {
        let Some(redis) = Server::redis_with(&[
            "--repl-diskless-sync",
            diskless,
            "--repl-diskless-sync-delay",
            "0",
        ]) else {
            return;
        };
        let mut p = redis.conn();
        replicate_from(
            &mut p,
            redis.port(),
            &[],
            &format!("redis diskless-sync {diskless}"),
        );
    }
}

#[test]
fn percore_replica_of_valkey_full_sync_stream_and_partial_resync() {
    let dir = scratch_dir("valkey-primary");
    let Some((mut child, mut p)) = common::start_valkey(&dir) else {
        return;
    };
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]),
        ok()
    );
    let port = p.stream().peer_addr().expect("peer").port();
    replicate_from(&mut p, port, &["--repl-diskless-load", "swapdb"], "valkey");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replica_refuses_writes_serves_stale_data_per_config_and_reports_its_role() {
    let Some(redis) = Server::redis_with(&["--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    let mut p = redis.conn();
    assert_eq!(p.cmd(&["SET", "k", "v"]), ok());
    let replica = Server::percore(&["--threads", "2"]);
    let mut r = replica.conn();
    assert_eq!(
        strings(r.cmd(&["ROLE"])).first().map(String::as_str),
        Some("master")
    );
    assert_eq!(
        r.cmd(&["REPLICAOF", "127.0.0.1", "70000"]),
        err("ERR Invalid master port")
    );
    let port = redis.port().to_string();
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]), ok());
    assert_eq!(
        r.cmd(&["REPLICAOF", "127.0.0.1", &port]),
        simple("OK Already connected to specified master")
    );
    wait_caught_up(&mut p, &mut r);
    assert_eq!(r.cmd(&["GET", "k"]), common::bulk("v"));
    assert_eq!(
        r.cmd(&["SET", "k", "x"]),
        err("READONLY You can't write against a read only replica.")
    );
    // Inside MULTI the refusal fails the EXEC.
    assert_eq!(r.cmd(&["MULTI"]), ok());
    assert_eq!(
        r.cmd(&["INCR", "n"]),
        err("READONLY You can't write against a read only replica.")
    );
    assert_eq!(
        r.cmd(&["EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    let role = r.cmd(&["ROLE"]);
    let Frame::Array(items) = role else {
        panic!("ROLE: {role:?}");
    };
    assert_eq!(text(&items[0]), "slave");
    assert_eq!(text(&items[1]), "127.0.0.1");
    assert_eq!(items[2], Frame::Int(i64::from(redis.port())));
    assert_eq!(text(&items[3]), "connected");
    assert_eq!(info_field(&mut r, "replication", "role"), "slave");
    assert_eq!(info_field(&mut r, "replication", "slave_read_only"), "1");
    // Writable replica.
    assert_eq!(r.cmd(&["CONFIG", "SET", "replica-read-only", "no"]), ok());
    assert_eq!(r.cmd(&["SET", "local", "1"]), ok());
    assert_eq!(r.cmd(&["CONFIG", "SET", "replica-read-only", "yes"]), ok());

    // The primary goes away: stale data is served, or refused with MASTERDOWN.
    drop(p);
    drop(redis);
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while info_field(&mut r, "replication", "master_link_status") != "down" {
        assert!(Instant::now() < deadline, "the link stayed up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(r.cmd(&["GET", "k"]), common::bulk("v"));
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "no"]),
        ok()
    );
    assert_eq!(
        r.cmd(&["GET", "k"]),
        err("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    );
    // Commands flagged `stale` still run (PING is not one in 7.0).
    assert_eq!(r.cmd(&["ECHO", "e"]), common::bulk("e"));
    assert_eq!(
        r.cmd(&["PING"]),
        err("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    );
    assert!(matches!(r.cmd(&["INFO", "replication"]), Frame::Bulk(_)));
    let before = info_field(&mut r, "replication", "master_replid");
    assert_eq!(r.cmd(&["REPLICAOF", "NO", "ONE"]), ok());
    assert_eq!(r.cmd(&["GET", "k"]), common::bulk("v"));
    assert_eq!(info_field(&mut r, "replication", "role"), "master");
    assert_eq!(info_field(&mut r, "replication", "master_replid2"), before);
    assert_eq!(r.cmd(&["SET", "k", "mine"]), ok());
}

/// The reset barrier's guarantees right after the reply: no save in progress, no temp
/// file, no child, and the dump as it was.
fn check_cancelled(r: &mut Conn, replica: &Server, dir: &std::path::Path, dump: &[u8], what: &str) {
    assert_eq!(
        info_field(r, "persistence", "rdb_bgsave_in_progress"),
        "0",
        "{what}"
    );
    // A sync from the new primary may already be receiving its file
    // (`temp-<s>.<pid>.rdb`, Redis's name): only snapshots' temp files count.
    let saves: Vec<_> = temp_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().matches('.').count() < 2)
        })
        .collect();
    assert!(saves.is_empty(), "{what}: {saves:?}");
    assert!(children(replica.pid()).is_empty(), "{what}: child left");
    assert_eq!(
        std::fs::read(dir.join("dump.rdb")).ok().as_deref(),
        Some(dump),
        "{what}: dump changed"
    );
}

/// A replica with a slow BGSAVE in flight on both shards, and a good dump on disk.
fn replica_saving(primary_port: u16, method: &str) -> (Server, Conn, std::path::PathBuf, Vec<u8>) {
    let dir = scratch_dir("repl-reset");
    let replica = percore_replica(&dir, primary_port, &["--repl-diskless-load", "swapdb"]);
    let mut r = replica.conn();
    let dump = synced_then_saving(&mut r, &dir, method);
    (replica, r, dir, dump)
}

/// Once the link is up: a SAVE (its dump is returned), then a slow BGSAVE under way.
fn synced_then_saving(r: &mut Conn, dir: &std::path::Path, method: &str) -> Vec<u8> {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while info_field(r, "replication", "master_link_status") != "up" {
        assert!(Instant::now() < deadline, "no link");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(r.cmd(&["SAVE"]), ok());
    let dump = std::fs::read(dir.join("dump.rdb")).expect("dump");
    start_slow_bgsave(r, method, 1000);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!temp_files(dir).is_empty(), "{method}: save not under way");
    dump
}

#[test]
fn role_changes_and_full_syncs_cancel_in_flight_snapshots_on_every_core() {
    let args = [
        "--repl-diskless-sync-delay",
        "0",
        "--enable-debug-command",
        "yes",
    ];
    let Some(redis) = Server::redis_with(&args) else {
        return;
    };
    let Some(other) = Server::redis_with(&args) else {
        return;
    };
    let mut p = redis.conn();
    assert_eq!(p.cmd(&["DEBUG", "POPULATE", "3000"]), ok());
    let mut o = other.conn();
    assert_eq!(o.cmd(&["DEBUG", "POPULATE", "500", "other"]), ok());
    for method in ["fork", "forkless"] {
        // REPLICAOF NO ONE.
        let (replica, mut r, dir, dump) = replica_saving(redis.port(), method);
        assert_eq!(r.cmd(&["REPLICAOF", "NO", "ONE"]), ok());
        check_cancelled(&mut r, &replica, &dir, &dump, &format!("{method} NO ONE"));
        assert_eq!(r.cmd(&["DBSIZE"]), Frame::Int(3000));

        // REPLICAOF another primary: cancelled at the role change; the full sync from
        // the new primary then replaces the data.
        let port = redis.port().to_string();
        assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]), ok());
        let dump = synced_then_saving(&mut r, &dir, method);
        let other_port = other.port().to_string();
        assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &other_port]), ok());
        check_cancelled(
            &mut r,
            &replica,
            &dir,
            &dump,
            &format!("{method} other primary"),
        );
        wait_caught_up(&mut o, &mut r);
        assert_eq!(r.cmd(&["DBSIZE"]), o.cmd(&["DBSIZE"]));

        // A full sync (the primary's history changed: a restart under a new id) cancels
        // the save in flight before the new data lands.
        assert_eq!(r.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), ok());
        assert_eq!(r.cmd(&["SAVE"]), ok());
        start_slow_bgsave(&mut r, method, 1000);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(o.cmd(&["SET", "after", "1"]), ok());
        let syncs_before: i64 = info_field(&mut o, "stats", "sync_full").parse().expect("n");
        // A new replication id on the primary: a partial resync is impossible.
        assert_eq!(o.cmd(&["DEBUG", "CHANGE-REPL-ID"]), ok());
        assert!(matches!(
            o.cmd(&["CLIENT", "KILL", "TYPE", "replica"]),
            Frame::Int(_)
        ));
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let full: i64 = info_field(&mut o, "stats", "sync_full").parse().expect("n");
            if full > syncs_before
                && info_field(&mut r, "replication", "master_link_status") == "up"
            {
                break;
            }
            assert!(Instant::now() < deadline, "no full sync");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            info_field(&mut r, "persistence", "rdb_bgsave_in_progress"),
            "0",
            "{method}: the full sync left the save running"
        );
        assert!(children(replica.pid()).is_empty(), "{method}: child left");
        assert_eq!(r.cmd(&["GET", "after"]), common::bulk("1"));
        assert_eq!(r.cmd(&["REPLICAOF", "NO", "ONE"]), ok());
        drop(r);
        drop(replica);
        let _ = std::fs::remove_dir_all(&dir);
        // The other primary goes back to having no replicas for the next method.
        assert!(matches!(
            o.cmd(&["CLIENT", "KILL", "TYPE", "replica"]),
            Frame::Int(_)
        ));
    }
}

/// CLUSTER RESET on a cluster replica: every in-flight snapshot is cancelled on every
/// core, then the replica's data is flushed (Valkey's clusterReset empties a replica) and
/// it becomes a primary, all before the reply.
#[test]
fn cluster_reset_of_a_replica_cancels_snapshots_and_flushes() {
    for method in ["fork", "forkless"] {
        let dir = scratch_dir("cluster-replica-reset");
        let d = dir.to_str().expect("utf-8").to_owned();
        {
            let s = Server::percore(&["--threads", "2", "--dir", &d]);
            let mut c = s.conn();
            assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3000"]), ok());
            assert_eq!(c.cmd(&["SAVE"]), ok());
        }
        let port = common::free_port();
        let primary_id = "a".repeat(40);
        let my_id = "b".repeat(40);
        std::fs::write(
            dir.join("nodes.conf"),
            format!(
                "{primary_id} 127.0.0.1:7000@17000 master - 0 0 1 connected 0-16383\n\
                 {my_id} 127.0.0.1:{port}@{} myself,slave {primary_id} 0 0 1 connected\n\
                 vars currentEpoch 1 lastVoteEpoch 0\n",
                u32::from(port) + 10000
            ),
        )
        .expect("nodes.conf");
        let replica = Server::percore_at(
            &port.to_string(),
            &["--threads", "2", "--dir", &d, "--cluster-enabled", "yes"],
        );
        let mut r = replica.conn();
        assert_eq!(r.cmd(&["DBSIZE"]), Frame::Int(3000), "{method}");
        let dump = std::fs::read(dir.join("dump.rdb")).expect("dump");
        start_slow_bgsave(&mut r, method, 1000);
        std::thread::sleep(Duration::from_millis(100));
        assert!(!temp_files(&dir).is_empty(), "{method}: save not under way");
        assert_eq!(r.cmd(&["CLUSTER", "RESET"]), ok(), "{method}");
        check_cancelled(
            &mut r,
            &replica,
            &dir,
            &dump,
            &format!("{method} CLUSTER RESET"),
        );
        assert_eq!(r.cmd(&["DBSIZE"]), Frame::Int(0), "{method}");
        let nodes = text(&r.cmd(&["CLUSTER", "NODES"]));
        assert!(nodes.contains("myself,master"), "{method}: {nodes}");
        drop(r);
        drop(replica);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A replica (redis-server, Valkey or percore, started by `start` with the primary's
/// port) of a percore primary with two shards: full sync, stream, cut link, partial resync.
/// A two-shard percore primary (with `primary_args`) and the replica `start` makes: full
/// sync, stream, a cut link, partial resync; datasets equal at each step.
fn replicate_to(
    what: &str,
    primary_args: &[&str],
    start: impl FnOnce(u16) -> Option<(Conn, Box<dyn FnOnce()>)>,
) {
    let dir = scratch_dir("primary");
    let mut args = vec!["--threads", "2", "--dir", dir.to_str().expect("utf-8")];
    args.extend_from_slice(primary_args);
    let primary = Server::percore(&args);
    let mut p = primary.conn();
    populate(&mut p, "pri");
    let Some((mut r, stop)) = start(primary.port()) else {
        return;
    };
    wait_caught_up(&mut p, &mut r);
    assert_eq!(
        dataset(&mut r),
        dataset(&mut p),
        "{what}: after the full sync"
    );
    assert_eq!(info_field(&mut p, "replication", "connected_slaves"), "1");
    assert!(
        info_field(&mut p, "replication", "slave0").contains("state=online"),
        "{what}"
    );
    for round in 0..5 {
        stream_writes(&mut p, round);
    }
    wait_caught_up(&mut p, &mut r);
    same_data(
        &dataset(&mut r),
        &dataset(&mut p),
        &format!("{what}: after the stream"),
    );
    let partial_before = sync_partial_ok(&mut p);
    assert!(matches!(
        r.cmd(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Int(1)
    ));
    for round in 5..10 {
        stream_writes(&mut p, round);
    }
    wait_caught_up(&mut p, &mut r);
    assert_eq!(
        sync_partial_ok(&mut p),
        partial_before + 1,
        "{what}: the reconnection was not a partial resync"
    );
    assert_eq!(
        dataset(&mut r),
        dataset(&mut p),
        "{what}: after the partial resync"
    );
    stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Both full sync forms: a file (`repl-diskless-sync no`) sent as `$len`, and the
/// forkless cut streamed to the socket (EOF-marker form); the replica loads to disk
/// first (`repl-diskless-load disabled`) or from the socket (`swapdb`).
#[test]
fn redis_replica_of_percore_full_sync_stream_and_partial_resync() {
    for (primary_args, replica_load) in [
        (&["--repl-diskless-sync", "no"][..], "disabled"),
        (&["--repl-diskless-sync-delay", "0"][..], "disabled"),
        (&["--repl-diskless-sync-delay", "0"][..], "swapdb"),
    ] {
        let mut keep = None;
        let what = format!("redis replica ({primary_args:?}, load {replica_load})");
        replicate_to(&what, primary_args, |port| {
            let port = port.to_string();
            let redis = Server::redis_with(&[
                "--replicaof",
                "127.0.0.1",
                &port,
                "--repl-diskless-load",
                replica_load,
            ])?;
            let c = redis.conn();
            keep = Some(redis);
            Some((c, Box::new(|| ())))
        });
        drop(keep);
    }
}

/// A two-shard percore replica with `tls-replication yes` of a redis-server 7.0 primary
/// on its TLS port (`requirepass`, so `masterauth`; the replica presents
/// `tls-client-cert-file`, Redis requiring client certificates): full sync from a disk
/// file and diskless, the stream, WAIT (the replica's ACKs go back through its TLS
/// session), a cut link resumed with a partial resync; datasets equal at each step.
#[test]
fn percore_replica_of_a_tls_redis_primary() {
    let pki = common::pki::make_pki("repl-tls");
    let path = |n: &str| pki.path(n);
    let (cert, key, ca) = (path("server.crt"), path("server.key"), path("ca.crt"));
    let (client_cert, client_key) = (path("client.crt"), path("client.key"));
    let tls = [
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
    ];
    for diskless in ["no", "yes"] {
        let tls_port = common::free_port();
        let port = tls_port.to_string();
        let mut args = vec!["--tls-port", &port, "--requirepass", "sesame"];
        args.extend_from_slice(&tls);
        args.extend_from_slice(&[
            "--repl-diskless-sync",
            diskless,
            "--repl-diskless-sync-delay",
            "0",
        ]);
        let Some(redis) = Server::redis_with(&args) else {
            return;
        };
        let mut p = redis.conn();
        assert_eq!(p.cmd(&["AUTH", "sesame"]), ok());
        let mut replica_args = vec!["--tls-replication", "yes", "--masterauth", "sesame"];
        replica_args.extend_from_slice(&tls);
        replica_args.extend_from_slice(&[
            "--tls-client-cert-file",
            &client_cert,
            "--tls-client-key-file",
            &client_key,
        ]);
        let what = format!("TLS primary (repl-diskless-sync {diskless})");
        replicate_from(&mut p, tls_port, &replica_args, &what);
    }
}

/// A two-shard percore primary serving replicas on its TLS port (`tls-auth-clients yes`,
/// so each replica presents `tls-client-cert-file`): a redis-server 7.0 replica and a
/// percore replica, each with `tls-replication yes`, get a full sync (a file, or the
/// diskless EOF-marker transfer sealed by the link's session), the stream, and a partial
/// resync after the link is cut; datasets equal at each step. The stream and the ACKs go
/// through the session the replica's connection had on the primary's shard.
#[test]
fn replicas_of_a_tls_percore_primary() {
    let pki = common::pki::make_pki("primary-tls");
    let path = |n: &str| pki.path(n);
    let (cert, key, ca) = (path("server.crt"), path("server.key"), path("ca.crt"));
    let (client_cert, client_key) = (path("client.crt"), path("client.key"));
    let tls = [
        "--tls-cert-file",
        cert.as_str(),
        "--tls-key-file",
        key.as_str(),
        "--tls-ca-cert-file",
        ca.as_str(),
    ];
    let replica_tls: Vec<&str> = tls
        .iter()
        .copied()
        .chain([
            "--tls-replication",
            "yes",
            "--tls-client-cert-file",
            client_cert.as_str(),
            "--tls-client-key-file",
            client_key.as_str(),
        ])
        .collect();
    for (diskless, replica) in [("no", "redis"), ("yes", "redis"), ("yes", "percore")] {
        let tls_port = common::free_port().to_string();
        let mut primary_args = vec![
            "--tls-port",
            &tls_port,
            "--repl-diskless-sync",
            diskless,
            "--repl-diskless-sync-delay",
            "0",
        ];
        primary_args.extend_from_slice(&tls);
        let what = format!("{replica} replica of a TLS percore primary (diskless {diskless})");
        let replica_tls = &replica_tls;
        let tls_port = &tls_port;
        replicate_to(&what, &primary_args, |_plain_port| {
            let mut args = vec!["--replicaof", "127.0.0.1", tls_port.as_str()];
            args.extend_from_slice(replica_tls);
            let server = if replica == "redis" {
                Server::redis_with(&args)?
            } else {
                let mut percore_args = vec!["--threads", "2"];
                percore_args.extend_from_slice(&args);
                Server::percore(&percore_args)
            };
            let c = server.conn();
            Some((
                c,
                Box::new(move || {
                    // Both say so when the transfer is in the EOF-marker form.
                    let streamed = server
                        .output()
                        .contains("receiving streamed RDB from master with EOF");
                    assert_eq!(streamed, diskless == "yes", "{replica}: a diskless sync");
                }),
            ))
        });
    }
}

/// A redis-server replica of a 3-shard percore primary receiving pipelined cross-shard
/// writes from contending clients (grouped MSETs, waiting and eager transactions): the
/// replica ends with the primary's data, key by key.
#[test]
fn redis_replica_receives_pipelined_cross_shard_transactions() {
    let primary = Server::percore(&["--threads", "3"]);
    let mut p = primary.conn();
    let port = primary.port().to_string();
    let Some(redis) = Server::redis_with(&["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    let mut r = redis.conn();
    wait_caught_up(&mut p, &mut r);
    common::cross_shard_write_storm(primary.port(), 4, 25, "3");
    wait_caught_up(&mut p, &mut r);
    let want = dataset(&mut p);
    assert!(want.len() > 50, "the storm left data: {}", want.len());
    same_data(&dataset(&mut r), &want, "redis replica after the storm");
}

#[test]
fn valkey_and_percore_replicas_of_percore() {
    replicate_to("percore replica", DISKLESS_NOW, |port| {
        let port = port.to_string();
        let replica = Server::percore(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
        let c = replica.conn();
        Some((c, Box::new(move || drop(replica))))
    });
    let dir = scratch_dir("valkey-replica");
    replicate_to("valkey replica", DISKLESS_NOW, |port| {
        let (mut child, mut c) = common::start_valkey(&dir)?;
        assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port.to_string()]), ok());
        Some((
            c,
            Box::new(move || {
                let _ = child.kill();
                let _ = child.wait();
            }),
        ))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes to `port` from another connection until `stop` is set: keys on every shard,
/// so a sub-replica's full sync from a two-shard replica happens while the middle applies
/// (and forwards between its shards) the stream it relays.
fn background_writer(
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut c = Conn::connect(port);
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 20_000 {
            let k = format!("bg:{}", n % 64);
            c.cmd(&["INCR", &k]);
            c.cmd(&["RPUSH", &format!("bg:list{}", n % 8), &n.to_string()]);
            n += 1;
        }
        n
    })
}

/// Chaining: `top` → a two-shard percore replica (`middle_args` more) → the replica
/// `bottom` makes. The sub-replica gets the top primary's replication id and offsets,
/// the data key by key (its full sync from the middle taken while the top is written to),
/// the stream through the middle; a dropped middle link resumes partially (the
/// sub-replica stays), and so does a dropped bottom link (from the middle's backlog).
fn chain(
    what: &str,
    top: &Server,
    middle_args: &[&str],
    bottom: impl FnOnce(u16) -> Option<Server>,
) {
    let mut t = top.conn();
    populate(&mut t, "pri");
    let top_port = top.port().to_string();
    let mut args = vec![
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--replicaof",
        "127.0.0.1",
        &top_port,
    ];
    args.extend_from_slice(middle_args);
    let middle = Server::percore(&args);
    let mut m = middle.conn();
    wait_caught_up(&mut t, &mut m);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = background_writer(top.port(), std::sync::Arc::clone(&stop));
    let Some(bottom) = bottom(middle.port()) else {
        return;
    };
    let mut b = bottom.conn();
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while info_field(&mut b, "replication", "master_link_status") != "up" {
        assert!(
            Instant::now() < deadline,
            "{what}: the sub-replica never synced"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().expect("writer") > 0);
    wait_caught_up(&mut t, &mut m);
    wait_caught_up(&mut t, &mut b);
    same_data(
        &dataset(&mut b),
        &dataset(&mut t),
        &format!("{what}: full sync"),
    );
    assert_eq!(
        info_field(&mut b, "replication", "master_replid"),
        info_field(&mut t, "replication", "master_replid"),
        "{what}: the sub-replica has the top primary's id"
    );
    assert_eq!(info_field(&mut m, "replication", "connected_slaves"), "1");
    for round in 0..3 {
        stream_writes(&mut t, round);
    }
    wait_caught_up(&mut t, &mut b);
    same_data(
        &dataset(&mut b),
        &dataset(&mut t),
        &format!("{what}: stream"),
    );

    // The middle's link drops: it continues from the top; the bottom stays.
    cut_link(&format!("{what}: middle"), &mut t, &mut m, &mut b, 3..6);
    // The bottom's link drops: it continues from the middle's backlog.
    cut_link(&format!("{what}: bottom"), &mut t, &mut b, &mut m, 6..9);

    // The middle is promoted: the bottom reconnects with a partial resync (the top's id
    // is the middle's secondary one) and gets the middle's own writes.
    let (partial, full) = (sync_partial_ok(&mut m), sync_full(&mut m));
    assert_eq!(m.cmd(&["REPLICAOF", "NO", "ONE"]), ok());
    for round in 9..12 {
        stream_writes(&mut m, round);
    }
    let new_id = info_field(&mut m, "replication", "master_replid");
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while info_field(&mut b, "replication", "master_replid") != new_id {
        assert!(
            Instant::now() < deadline,
            "{what}: the sub-replica never took the promoted middle's id"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_caught_up(&mut m, &mut b);
    assert_eq!(
        sync_partial_ok(&mut m),
        partial + 1,
        "{what}: promoted middle"
    );
    assert_eq!(
        sync_full(&mut m),
        full,
        "{what}: promoted middle, no full sync"
    );
    same_data(
        &dataset(&mut b),
        &dataset(&mut m),
        &format!("{what}: after the promotion"),
    );
}

fn sync_full(primary: &mut Conn) -> i64 {
    info_field(primary, "stats", "sync_full")
        .parse()
        .expect("a count")
}

/// Kills `replica`'s link to its primary, writes `rounds` to `top`, and checks that the
/// replica came back with a partial resync and that it and `other` (the rest of the
/// chain) have the top's data.
fn cut_link(
    what: &str,
    top: &mut Conn,
    replica: &mut Conn,
    other: &mut Conn,
    rounds: std::ops::Range<usize>,
) {
    let primary_port: u16 = info_field(replica, "replication", "master_port")
        .parse()
        .expect("a port");
    let mut primary = Conn::connect(primary_port);
    let partial = sync_partial_ok(&mut primary);
    assert_eq!(
        replica.cmd(&["CLIENT", "KILL", "TYPE", "master"]),
        Frame::Int(1)
    );
    for round in rounds {
        stream_writes(top, round);
    }
    wait_caught_up(top, replica);
    wait_caught_up(top, other);
    assert_eq!(sync_partial_ok(&mut primary), partial + 1, "{what}");
    let want = dataset(top);
    same_data(&dataset(replica), &want, &format!("{what} resync"));
    same_data(&dataset(other), &want, &format!("{what} resync, the other"));
}

#[test]
fn chained_replicas_percore_percore_percore_and_redis() {
    let top = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let percore_bottom = |port: u16| {
        Some(Server::percore(&[
            "--threads",
            "2",
            "--replicaof",
            "127.0.0.1",
            &port.to_string(),
        ]))
    };
    // The middle sends the sub-replica a file (disk sync) here, a diskless stream below.
    let disk = ["--repl-diskless-sync", "no"];
    chain("percore → percore → percore", &top, &disk, percore_bottom);
    let top = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    chain("percore → percore → redis", &top, &[], |port| {
        Server::redis_with(&["--replicaof", "127.0.0.1", &port.to_string()])
    });
    let Some(top) = Server::redis_with(&["--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    chain("redis → percore → percore", &top, &[], percore_bottom);
}

/// Reads one RESP array of bulk strings (what a replica sends its primary).
fn read_command(r: &mut impl std::io::BufRead) -> Vec<String> {
    let mut line = String::new();
    let mut next_line = |r: &mut dyn std::io::BufRead| {
        line.clear();
        r.read_line(&mut line).expect("read");
        line.trim_end().to_owned()
    };
    let head = next_line(r);
    let n: usize = head
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an array: {head:?}"));
    (0..n)
        .map(|_| {
            let len: usize = next_line(r)[1..].parse().expect("a bulk length");
            let mut arg = vec![0; len + 2];
            r.read_exact(&mut arg).expect("read");
            String::from_utf8_lossy(&arg[..len]).into_owned()
        })
        .collect()
}

/// A hand-written primary: accepts the replica's link, answers its handshake, and
/// returns the socket, a reader and the PSYNC arguments.
fn accept_replica(
    l: &std::net::TcpListener,
) -> (
    std::net::TcpStream,
    std::io::BufReader<std::net::TcpStream>,
    Vec<String>,
) {
    use std::io::Write as _;
    let (mut s, _) = l.accept().expect("the replica connects");
    s.set_read_timeout(Some(SYNC_TIMEOUT)).expect("timeout");
    let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
    loop {
        let cmd = read_command(&mut r);
        match cmd[0].to_ascii_uppercase().as_str() {
            "PING" => s.write_all(b"+PONG\r\n").expect("write"),
            "PSYNC" => return (s, r, cmd),
            _ => s.write_all(b"+OK\r\n").expect("write"),
        }
    }
}

/// As Redis 7.0's master client, a percore replica's offset passes a MULTI block only
/// once its EXEC ran: the ACK while the EXEC has not arrived, and the PSYNC after the
/// link dropped there, name the offset before the MULTI, and the block sent again
/// whole then runs once.
#[test]
fn a_replica_offset_never_stops_inside_a_multi_block() {
    use std::io::Write as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port().to_string();
    let replica = Server::percore(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    let (mut s, mut r, psync) = accept_replica(&l);
    assert_eq!(psync[1..], ["?", "-1"]);
    let id = "a".repeat(40);
    // An empty RDB (version 10, checksum 0: not checked).
    let rdb = b"REDIS0010\xff\0\0\0\0\0\0\0\0";
    s.write_all(format!("+FULLRESYNC {id} 100\r\n${}\r\n", rdb.len()).as_bytes())
        .expect("write");
    s.write_all(rdb).expect("write");
    let set_a = common::encode_cmd(&["SET", "a", "1"]);
    let multi = [
        common::encode_cmd(&["MULTI"]),
        common::encode_cmd(&["SET", "{x}b", "2"]),
        common::encode_cmd(&["INCR", "{y}c"]),
    ]
    .concat();
    let exec = common::encode_cmd(&["EXEC"]);
    s.write_all(&set_a).expect("write");
    let mut c = replica.conn();
    let before = 100 + set_a.len() as i64;
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while offset(&mut c, "slave_repl_offset") != before {
        assert!(Instant::now() < deadline, "the replica never applied SET");
        std::thread::sleep(Duration::from_millis(10));
    }
    s.write_all(&multi).expect("write");
    // The replica acknowledges every second: an ACK after the MULTI arrived names the
    // offset before it.
    let sent = Instant::now();
    loop {
        let ack = read_command(&mut r);
        assert_eq!(ack[..2], ["REPLCONF", "ACK"]);
        if sent.elapsed() > Duration::from_millis(1100) {
            assert_eq!(ack[2], before.to_string(), "the ACK inside a MULTI block");
            break;
        }
    }
    assert_eq!(offset(&mut c, "slave_repl_offset"), before);
    assert_eq!(
        offset(&mut c, "slave_read_repl_offset"),
        before + multi.len() as i64
    );
    drop((s, r));
    let (mut s, _r, psync) = accept_replica(&l);
    assert_eq!(psync[1..], [id.clone(), (before + 1).to_string()]);
    s.write_all(format!("+CONTINUE {id}\r\n").as_bytes())
        .expect("write");
    s.write_all(&multi).expect("write");
    s.write_all(&exec).expect("write");
    let end = before + (multi.len() + exec.len()) as i64;
    while offset(&mut c, "slave_repl_offset") != end {
        assert!(Instant::now() < deadline, "the replica never ran the block");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.cmd(&["GET", "{x}b"]), common::bulk("2"));
    assert_eq!(c.cmd(&["GET", "{y}c"]), common::bulk("1"));
    assert_eq!(c.cmd(&["GET", "a"]), common::bulk("1"));
}

/// After a partial resync the stream goes on in the database it was in, without a SELECT
/// (Redis's primary keeps `slaveseldb`; its replica's cached master keeps its database):
/// a percore replica's new master client starts in the old one's database. It started
/// in database 0, so writes after the resync went there (Redis 7.0's
/// integration/replication-psync "Master - Replica inconsistency" with `reconnect: 1`).
/// Against redis-server 7.0 and a percore primary.
#[test]
fn a_partial_resync_goes_on_in_the_streams_database() {
    let redis = Server::redis_with(&["--repl-diskless-sync-delay", "0"]);
    let percore = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    for primary in redis.iter().chain([&percore]) {
        let what = format!("{:?} primary", primary.kind());
        let mut p = primary.conn();
        assert_eq!(p.cmd(&["SELECT", "9"]), ok(), "{what}");
        assert_eq!(p.cmd(&["SET", "before", "1"]), ok(), "{what}");
        let dir = scratch_dir("resync-db");
        let replica = percore_replica(&dir, primary.port(), &[]);
        let mut r = replica.conn();
        // The stream is in database 9 from here on (a full sync's stream selects first).
        assert_eq!(p.cmd(&["SET", "synced", "0"]), ok(), "{what}");
        wait_caught_up(&mut p, &mut r);
        let partial = sync_partial_ok(&mut p);
        assert_eq!(
            r.cmd(&["CLIENT", "KILL", "TYPE", "master"]),
            Frame::Int(1),
            "{what}"
        );
        // Writes in database 9 while the link is down and after it is back.
        assert_eq!(p.cmd(&["SET", "during", "2"]), ok(), "{what}");
        wait_caught_up(&mut p, &mut r);
        assert_eq!(p.cmd(&["SET", "after", "3"]), ok(), "{what}");
        wait_caught_up(&mut p, &mut r);
        assert_eq!(
            sync_partial_ok(&mut p),
            partial + 1,
            "{what}: a partial resync"
        );
        assert_eq!(r.cmd(&["SELECT", "9"]), ok());
        for (k, v) in [
            ("before", "1"),
            ("synced", "0"),
            ("during", "2"),
            ("after", "3"),
        ] {
            assert_eq!(r.cmd(&["GET", k]), common::bulk(v), "{what}: {k} in db 9");
        }
        assert_eq!(r.cmd(&["SELECT", "0"]), ok());
        assert_eq!(r.cmd(&["DBSIZE"]), Frame::Int(0), "{what}: db 0");
        drop(replica);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
