//! The append-only file end to end: percore restarts from its own AOF (every type,
//! rewrites in the middle, transactions and scripts across shards), redis-server 7.0 loads
//! percore's appendonlydir and percore loads redis-server's, redis-check-aof accepts
//! percore's files, a truncated last command is handled as Redis does, and `appendfsync
//! always` loses no acknowledged write to kill -9.
//!
//! The redis-server parts skip with a notice without `redis-server` (fail with
//! `PERCORE_REQUIRE_REDIS=1`).

mod common;

use common::{Conn, Server, info_field, path_str as d, scratch_dir, wait_until};
use percore_net::resp::Frame;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Databases the workload writes.
const DATABASES_USED: usize = 3;

fn strings(f: &Frame) -> Vec<String> {
    match f {
        Frame::Array(v) | Frame::Set(v) => v.iter().flat_map(strings).collect(),
        Frame::Bulk(b) | Frame::Simple(b) => vec![String::from_utf8_lossy(b).into_owned()],
        Frame::Int(n) => vec![n.to_string()],
        other => vec![format!("{other:?}")],
    }
}

/// Every key of the first databases with its type, contents (order-free types sorted)
/// and whether it has a TTL: independent of encodings and shard counts.
fn dataset(c: &mut Conn) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for db in 0..DATABASES_USED {
        c.cmd(&["SELECT", &db.to_string()]);
        let keys = strings(&c.cmd(&["KEYS", "*"]));
        for k in keys {
            let ty = strings(&c.cmd(&["TYPE", &k]))[0].clone();
            let mut v = match ty.as_str() {
                "string" => strings(&c.cmd(&["GET", &k])),
                "list" => strings(&c.cmd(&["LRANGE", &k, "0", "-1"])),
                "hash" => {
                    let mut p: Vec<String> = strings(&c.cmd(&["HGETALL", &k]))
                        .chunks(2)
                        .map(|x| x.join("="))
                        .collect();
                    p.sort();
                    p
                }
                "set" => {
                    let mut m = strings(&c.cmd(&["SMEMBERS", &k]));
                    m.sort();
                    m
                }
                "zset" => strings(&c.cmd(&["ZRANGE", &k, "0", "-1", "WITHSCORES"])),
                "stream" => strings(&c.cmd(&["XRANGE", &k, "-", "+"])),
                other => vec![other.to_owned()],
            };
            let ttl = strings(&c.cmd(&["PTTL", &k]))[0]
                .parse::<i64>()
                .unwrap_or(-3);
            v.push(format!("ttl:{}", ttl > 0));
            all.insert(format!("{db}/{k}"), format!("{ty} {v:?}"));
        }
    }
    c.cmd(&["SELECT", "0"]);
    all
}

/// A deterministic mix of writes of every type, with expiries, random pops, float
/// increments, transactions, scripts and multi-key commands (keys on every shard).
fn workload(c: &mut Conn, seed: u64, n: usize, scripts: bool) {
    let mut state = seed | 1;
    let mut rnd = |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m
    };
    for i in 0..n {
        let key = format!("k{}", rnd(40));
        let key2 = format!("k{}", rnd(40));
        let val = format!("v{i}");
        let db = rnd(DATABASES_USED as u64).to_string();
        c.cmd(&["SELECT", &db]);
        let args: Vec<String> = match rnd(24) {
            0 => vec!["SET".into(), key, val, "EX".into(), "1000".into()],
            1 => vec!["SET".into(), key, val],
            2 => vec!["INCRBYFLOAT".into(), format!("f{}", rnd(5)), "1.25".into()],
            3 => vec![
                "SADD".into(),
                format!("s{}", rnd(5)),
                val,
                format!("m{}", rnd(9)),
            ],
            4 => vec!["SPOP".into(), format!("s{}", rnd(5))],
            5 => vec!["SPOP".into(), format!("s{}", rnd(5)), "2".into()],
            6 => vec!["LPUSH".into(), format!("l{}", rnd(5)), val],
            7 => vec!["RPOP".into(), format!("l{}", rnd(5))],
            8 => vec!["HSET".into(), format!("h{}", rnd(5)), key, val],
            9 => vec![
                "HINCRBYFLOAT".into(),
                format!("h{}", rnd(5)),
                "fl".into(),
                "0.5".into(),
            ],
            10 => vec![
                "ZADD".into(),
                format!("z{}", rnd(5)),
                rnd(100).to_string(),
                val,
            ],
            11 => vec!["ZPOPMIN".into(), format!("z{}", rnd(5))],
            12 => vec![
                "XADD".into(),
                format!("x{}", rnd(3)),
                "*".into(),
                "f".into(),
                val,
            ],
            13 => vec!["EXPIRE".into(), key, "500".into()],
            14 => vec!["MSET".into(), key, val.clone(), key2, val],
            15 => vec!["DEL".into(), key, key2],
            16 => vec!["RENAME".into(), key, key2],
            17 => vec![
                "LMOVE".into(),
                format!("l{}", rnd(5)),
                format!("l{}", rnd(5)),
                "LEFT".into(),
                "RIGHT".into(),
            ],
            18 => vec!["SETEX".into(), key, "700".into(), val],
            19 => vec!["INCR".into(), format!("n{}", rnd(5))],
            20 if scripts => vec![
                "EVAL".into(),
                "redis.call('incr', KEYS[1]); redis.call('set', KEYS[2], ARGV[1]); return 1".into(),
                "2".into(),
                format!("{{t{}}}a", rnd(3)),
                format!("{{t{}}}b", rnd(3)),
                val,
            ],
            21 => {
                c.cmd(&["MULTI"]);
                c.cmd(&["INCR", &format!("n{}", rnd(5))]);
                c.cmd(&["SET", &key, &val]);
                c.cmd(&["SADD", &format!("s{}", rnd(5)), &key2]);
                vec!["EXEC".into()]
            }
            22 => vec!["GETEX".into(), key, "PX".into(), "900000".into()],
            _ => vec!["PEXPIRE".into(), key, "1".into()],
        };
        c.cmd(&args);
    }
    c.cmd(&["SELECT", "0"]);
}

/// The keys whose entries differ (a short message instead of two whole datasets).
fn assert_same(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>, what: &str) {
    let diff: Vec<String> = want
        .keys()
        .chain(got.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .take(10)
        .map(|k| format!("{k}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect();
    assert!(
        diff.is_empty(),
        "{what}: {} keys, differences:\n{}",
        want.len(),
        diff.join("\n")
    );
}

fn rewrite_and_wait(c: &mut Conn) {
    let r = c.cmd(&["BGREWRITEAOF"]);
    assert!(
        matches!(&r, Frame::Simple(s) if s.starts_with(b"Background append only file rewriting")),
        "{r:?}"
    );
    wait_until("the rewrite", || {
        info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(c, "persistence", "aof_rewrite_scheduled") == "0"
    });
}

/// Runs percore with `args` and `extra`, which must refuse to start: its output.
fn start_fails(args: &[&str], extra: &[&str]) -> String {
    let port = common::free_port().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
        .args(extra)
        .args(args)
        .output()
        .expect("percore runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "percore started: {text}");
    text
}

/// SHUTDOWN (which writes and syncs the AOF) and wait for the exit.
fn shutdown(s: &mut Server, c: &mut Conn) {
    c.send_cmd(&["SHUTDOWN"]);
    assert!(s.wait_exit(WAIT_TIMEOUT).is_some(), "the server exits");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn check_aof(manifest: &Path) {
    if !common::redis_server_available() {
        return;
    }
    let out = std::process::Command::new("redis-check-aof")
        .arg(manifest)
        .output()
        .expect("redis-check-aof runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("All AOF files and manifest are valid"),
        "redis-check-aof refused {}:\n{text}",
        manifest.display()
    );
}

#[test]
fn percore_restarts_from_its_aof_and_redis_server_loads_it() {
    let dir = scratch_dir("aof-own");
    let args = ["--dir", d(&dir), "--appendonly", "yes", "--threads", "2"];
    let before = {
        let mut s = Server::percore(&args);
        let mut c = s.conn();
        // A function library, and a key set through it (FUNCTION LOAD goes to the AOF).
        c.cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=aoflib\nredis.register_function('aofset', function(keys, args) return redis.call('set', keys[1], args[1]) end)",
        ]);
        c.cmd(&["FCALL", "aofset", "1", "fk", "fv"]);
        workload(&mut c, 7, 1500, true);
        rewrite_and_wait(&mut c);
        workload(&mut c, 11, 1500, true);
        // A FLUSHDB and a SWAPDB at the barrier of both shards.
        c.cmd(&["SELECT", "2"]);
        c.cmd(&["FLUSHDB"]);
        c.cmd(&["SWAPDB", "1", "2"]);
        workload(&mut c, 13, 600, true);
        let data = dataset(&mut c);
        assert!(data.len() > 50, "the workload left data: {}", data.len());
        assert_eq!(info_field(&mut c, "persistence", "aof_enabled"), "1");
        assert_eq!(info_field(&mut c, "persistence", "aof_rewrites"), "1");
        shutdown(&mut s, &mut c);
        data
    };
    let aofdir = dir.join("appendonlydir");
    check_aof(&aofdir.join("appendonly.aof.manifest"));
    {
        let s = Server::percore(&args);
        let mut c = s.conn();
        assert_same(&dataset(&mut c), &before, "percore from its own AOF");
        assert!(strings(&c.cmd(&["FUNCTION", "LIST"])).contains(&"aoflib".to_owned()));
        drop(s);
        let s1 = Server::percore(&["--dir", d(&dir), "--appendonly", "yes", "--threads", "1"]);
        assert_same(&dataset(&mut s1.conn()), &before, "with one shard");
    }
    let rdir = scratch_dir("aof-to-redis");
    copy_dir(&aofdir, &rdir.join("appendonlydir"));
    if let Some(r) = Server::redis_with(&["--dir", d(&rdir), "--appendonly", "yes"]) {
        assert_same(
            &dataset(&mut r.conn()),
            &before,
            "redis-server from percore's AOF",
        );
    }
    let _ = std::fs::remove_dir_all(&rdir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pipelined cross-shard writes from clients that contend for the same keys (grouped
/// MSETs, transactions that wait in the lock table, eager MULTI/EXEC blocks) reach the AOF
/// in a valid serial order: percore with 3 shards, with 1 shard and redis-server restart
/// to the same data.
#[test]
fn pipelined_cross_shard_transactions_replay_from_the_aof() {
    let dir = scratch_dir("aof-storm");
    let args = ["--dir", d(&dir), "--appendonly", "yes", "--threads", "3"];
    let before = {
        let mut s = Server::percore(&args);
        let mut c = s.conn();
        common::cross_shard_write_storm(s.port(), 4, 25, "1");
        let data = dataset(&mut c);
        assert!(data.len() > 50, "the storm left data: {}", data.len());
        shutdown(&mut s, &mut c);
        data
    };
    let aofdir = dir.join("appendonlydir");
    check_aof(&aofdir.join("appendonly.aof.manifest"));
    {
        let s = Server::percore(&args);
        assert_same(&dataset(&mut s.conn()), &before, "percore from its own AOF");
        drop(s);
        let s1 = Server::percore(&["--dir", d(&dir), "--appendonly", "yes", "--threads", "1"]);
        assert_same(&dataset(&mut s1.conn()), &before, "with one shard");
    }
    let rdir = scratch_dir("aof-storm-redis");
    copy_dir(&aofdir, &rdir.join("appendonlydir"));
    if let Some(r) = Server::redis_with(&["--dir", d(&rdir), "--appendonly", "yes"]) {
        assert_same(
            &dataset(&mut r.conn()),
            &before,
            "redis-server from the AOF",
        );
    }
    let _ = std::fs::remove_dir_all(&rdir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn percore_loads_an_appendonlydir_written_by_redis_server() {
    let dir = scratch_dir("aof-from-redis");
    let Some(mut r) = Server::redis_with(&[
        "--dir",
        d(&dir),
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "yes",
    ]) else {
        return;
    };
    let mut c = r.conn();
    workload(&mut c, 5, 1200, true);
    rewrite_and_wait(&mut c);
    workload(&mut c, 9, 1200, true);
    let before = dataset(&mut c);
    shutdown(&mut r, &mut c);
    drop(r);
    let s = Server::percore(&["--dir", d(&dir), "--appendonly", "yes", "--threads", "2"]);
    assert_same(
        &dataset(&mut s.conn()),
        &before,
        "percore from redis-server's AOF",
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_truncated_last_command_loads_as_redis_says() {
    let dir = scratch_dir("aof-trunc");
    let args = ["--dir", d(&dir), "--appendonly", "yes"];
    {
        let mut s = Server::percore(&args);
        let mut c = s.conn();
        c.cmd(&["SET", "a", "1"]);
        c.cmd(&["SET", "b", "2"]);
        shutdown(&mut s, &mut c);
    }
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let whole = std::fs::read(&incr).unwrap();
    let mut cut = whole.clone();
    cut.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1");
    std::fs::write(&incr, &cut).unwrap();
    let text = start_fails(&args, &["--aof-load-truncated", "no"]);
    assert!(
        text.contains(
            "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"
        ),
        "{text}"
    );
    {
        let mut s = Server::percore(&args);
        let mut c = s.conn();
        assert_eq!(dataset(&mut c).len(), 2);
        assert!(s.output().contains(
            "AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled"
        ));
        c.cmd(&["SET", "c", "3"]);
        shutdown(&mut s, &mut c);
    }
    assert!(std::fs::read(&incr).unwrap().starts_with(&whole));
    check_aof(&dir.join("appendonlydir/appendonly.aof.manifest"));
    // Garbage in the middle is corruption, not truncation.
    let mut bad = whole.clone();
    bad.extend_from_slice(b"+OK\r\n");
    bad.extend_from_slice(&whole);
    std::fs::write(&incr, &bad).unwrap();
    let text = start_fails(&args, &[]);
    assert!(
        text.contains("Bad file format reading the append only file"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writers per crash run, each on its own connection.
const CRASH_WRITERS: usize = 4;
/// How long the crash test runs (as many kill -9 runs as fit).
const CRASH_BUDGET: Duration = Duration::from_secs(20);

/// One run: writers SET fresh keys until kill -9 lands at a random moment; after a
/// restart, counts the acknowledged keys that are missing.
fn crash_run(dir: &Path, fsync: &str, run: usize, delay_ms: u64) -> (u64, u64) {
    let args = [
        "--dir",
        d(dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        fsync,
        "--threads",
        "2",
    ];
    let s = Server::percore(&args);
    let port = s.port();
    let writers: Vec<_> = (0..CRASH_WRITERS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let _ = c.stream().set_read_timeout(Some(Duration::from_secs(5)));
                let mut acked = 0u64;
                loop {
                    let key = format!("w{run}:{t}:{acked}");
                    c.send(&common::encode_cmd(&["SET", key.as_str(), "1"]));
                    let mut buf = [0u8; 5];
                    match std::io::Read::read_exact(&mut c.stream(), &mut buf) {
                        Ok(()) if &buf == b"+OK\r\n" => acked += 1,
                        _ => return acked,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(delay_ms));
    let killed = std::process::Command::new("kill")
        .args(["-9", &s.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    drop(s);
    let s = Server::percore(&args);
    let mut c = s.conn();
    let mut lost = 0;
    for (t, &n) in acked.iter().enumerate() {
        let mut i = 0;
        while i < n {
            let keys: Vec<String> = (i..n.min(i + 500))
                .map(|j| format!("w{run}:{t}:{j}"))
                .collect();
            let mut cmd = vec!["EXISTS".to_string()];
            cmd.extend(keys.iter().cloned());
            let Frame::Int(found) = c.cmd(&cmd) else {
                panic!("EXISTS answers an integer")
            };
            lost += keys.len() as u64 - found as u64;
            i += 500;
        }
    }
    (acked.iter().sum(), lost)
}

#[test]
fn appendfsync_always_loses_no_acknowledged_write_to_kill_9() {
    let dir = scratch_dir("aof-crash");
    // PERCORE_AOF_CRASH_RUNS=100 runs that many instead of filling the time budget;
    // PERCORE_AOF_CRASH_FSYNC=everysec measures that policy's loss (printed, not asserted).
    let runs: Option<usize> = std::env::var("PERCORE_AOF_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    let fsync = std::env::var("PERCORE_AOF_CRASH_FSYNC").unwrap_or_else(|_| "always".into());
    let started = Instant::now();
    let (mut total_acked, mut total_lost, mut run) = (0, 0, 0);
    let mut seed = 0x9e37_79b9_u64;
    while runs.map_or(started.elapsed() < CRASH_BUDGET, |r| run < r) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = 30 + seed % 400;
        let (acked, lost) = crash_run(&dir, &fsync, run, delay);
        total_acked += acked;
        total_lost += lost;
        run += 1;
        if fsync == "always" {
            assert_eq!(
                lost, 0,
                "run {run}: {lost} of {acked} acknowledged writes lost"
            );
        }
    }
    println!(
        "appendfsync {fsync}: {run} kill -9 runs, {total_acked} acknowledged writes, {total_lost} lost"
    );
    assert!(run >= 3 && total_acked > 0);
    let _ = std::fs::remove_dir_all(&dir);
}
