//! Snapshots end to end: SAVE/BGSAVE in both methods, loading at start, interop with
//! redis-server both ways, the point-in-time cut under load, crash safety (killed child,
//! killed server, failing disk), corrupt files, the final save at shutdown, DEBUG RELOAD
//! and save points.

mod common;

use common::{
    Conn, Server, bulk, children, err, info_field, ok, redis_server_available, scratch_dir, simple,
    start_slow_bgsave, temp_files,
};
use percore_net::resp::Frame;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a background save in these tests may take.
const SAVE_TIMEOUT: Duration = Duration::from_mins(1);

const METHODS: [&str; 2] = ["fork", "forkless"];

fn wait_bgsave_done(c: &mut Conn) {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bgsave(c: &mut Conn, method: &str) {
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
        ok()
    );
    assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
    wait_bgsave_done(c);
    assert_eq!(
        info_field(c, "persistence", "rdb_last_bgsave_status"),
        "ok",
        "{method} BGSAVE failed"
    );
}

fn dir_arg(d: &Path) -> &str {
    d.to_str().expect("utf-8 temp path")
}

/// Everything in databases 0..16: db → key → (value, has a TTL).
type Dataset = BTreeMap<(u8, Vec<u8>), (Vec<u8>, bool)>;

fn dump_dataset(c: &mut Conn) -> Dataset {
    let mut out = Dataset::new();
    for db in 0..16u8 {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]), ok());
        let Frame::Array(keys) = c.cmd(&["KEYS", "*"]) else {
            panic!("KEYS is not an array");
        };
        for k in keys {
            let Frame::Bulk(k) = k else {
                panic!("key not bulk")
            };
            let v = match c.cmd(&[b"GET".as_slice(), k.as_slice()]) {
                Frame::Bulk(v) => v,
                other => panic!("GET {k:?}: {other:?}"),
            };
            let ttl = match c.cmd(&[b"PTTL".as_slice(), k.as_slice()]) {
                Frame::Int(t) => t,
                other => panic!("PTTL: {other:?}"),
            };
            out.insert((db, k), (v, ttl >= 0));
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    out
}

/// A dataset with what a save must carry: several databases, integers, long and
/// compressible values, binary keys, TTLs.
fn fill(c: &mut Conn) {
    for db in [0u8, 1, 5, 15] {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]), ok());
        for i in 0..150 {
            let key = format!("key:{db}:{i}");
            let value = match i % 5 {
                0 => i.to_string(),
                1 => (-(i as i64) * 100_003).to_string(),
                2 => "x".repeat(200 + i),
                3 => format!("v{i}"),
                _ => String::new(),
            };
            if i % 3 == 0 {
                assert_eq!(c.cmd(&["SET", &key, &value, "EX", "100000"]), ok());
            } else {
                assert_eq!(c.cmd(&["SET", &key, &value]), ok());
            }
        }
        assert_eq!(
            c.cmd(&[b"SET".as_slice(), b"bin\x00\xff\r\nkey", b"\x00\x01\x02"]),
            ok()
        );
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
}

fn kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run kill");
    assert!(st.success(), "kill {sig} {pid} failed");
}

#[test]
fn save_bgsave_and_restart_in_both_methods_with_two_threads() {
    let dir = scratch_dir("snap-roundtrip");
    let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    fill(&mut c);
    let before = dump_dataset(&mut c);
    let saves0: u64 = info_field(&mut c, "persistence", "rdb_saves")
        .parse()
        .unwrap();
    assert_eq!(c.cmd(&["SAVE"]), ok());
    common::check_rdb(&dir.join("dump.rdb"));
    for method in METHODS {
        bgsave(&mut c, method);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_bgsave_method"),
            method
        );
        common::check_rdb(&dir.join("dump.rdb"));
        assert!(temp_files(&dir).is_empty(), "temp file left by {method}");
    }
    let saves: u64 = info_field(&mut c, "persistence", "rdb_saves")
        .parse()
        .unwrap();
    assert_eq!(saves, saves0 + 3);
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_changes_since_last_save"),
        "0"
    );
    let Frame::Int(lastsave) = c.cmd(&["LASTSAVE"]) else {
        panic!("LASTSAVE not an integer")
    };
    assert!(lastsave > 1_700_000_000);
    drop(c);
    drop(s);
    let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    assert_eq!(dump_dataset(&mut c), before, "restart lost or changed data");
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_load_keys_loaded"),
        before.len().to_string()
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_replies_and_errors() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["BGSAVE", "NOW"]), err("ERR syntax error"));
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "2000"]), ok());
    for method in METHODS {
        start_slow_bgsave(&mut c, method, 1000);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_bgsave_in_progress"),
            "1"
        );
        let busy = err("ERR Background save already in progress");
        assert_eq!(c.cmd(&["BGSAVE"]), busy);
        assert_eq!(c.cmd(&["BGSAVE", "SCHEDULE"]), busy);
        assert_eq!(c.cmd(&["SAVE"]), busy);
        // Clients keep being served while the save runs.
        assert_eq!(c.cmd(&["SET", "during", "save"]), ok());
        assert_eq!(c.cmd(&["GET", "during"]), bulk("save"));
        assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), ok());
        wait_bgsave_done(&mut c);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
            "ok"
        );
    }
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "default-bgsave-method", "spoon"]),
        err(
            "ERR CONFIG SET failed (possibly related to argument 'default-bgsave-method') - argument(s) must be one of the following: fork, forkless"
        )
    );
}

/// percore's dumps load into redis-server 7.0 with the same keys, values and TTLs.
#[test]
fn redis_server_loads_percore_dumps_from_both_methods() {
    if !redis_server_available() {
        assert!(
            std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"),
            "redis-server needed"
        );
        println!("skipping: redis-server not found");
        return;
    }
    for method in METHODS {
        let dir = scratch_dir("snap-to-redis");
        let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        fill(&mut c);
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", "5000", "pop", "100"]), ok());
        let expected = dump_dataset(&mut c);
        bgsave(&mut c, method);
        drop(c);
        drop(s);
        let r = Server::redis_with(&["--dir", dir_arg(&dir), "--dbfilename", "dump.rdb"])
            .expect("redis-server available");
        let mut rc = r.conn();
        assert_eq!(
            dump_dataset(&mut rc),
            expected,
            "{method} dump differs in redis-server"
        );
        drop(r);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// redis-server's dumps (DEBUG POPULATE, hand-made keys with TTLs in several databases)
/// load into percore.
#[test]
fn percore_loads_redis_server_dumps() {
    let dir = scratch_dir("snap-from-redis");
    let Some(r) = Server::redis_with(&[
        "--dir",
        dir_arg(&dir),
        "--dbfilename",
        "dump.rdb",
        "--enable-debug-command",
        "yes",
    ]) else {
        return;
    };
    let mut rc = r.conn();
    fill(&mut rc);
    assert_eq!(rc.cmd(&["DEBUG", "POPULATE", "20000"]), ok());
    let expected = dump_dataset(&mut rc);
    assert_eq!(rc.cmd(&["SAVE"]), ok());
    drop(rc);
    drop(r);
    for threads in ["1", "2"] {
        let s = Server::percore(&["--threads", threads, "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        assert_eq!(dump_dataset(&mut c), expected, "threads {threads}");
        drop(s);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A writer bumps a round number across keys on both shards while BGSAVE runs; the
/// snapshot must be one cut: keys written earlier in a round never show an older round
/// than keys written later.
#[test]
fn bgsave_is_a_point_in_time_cut_under_load() {
    const KEYS: usize = 16;
    for method in METHODS {
        let dir = scratch_dir("snap-cut");
        let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        // Filler keys so the slowed-down save spans many rounds.
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3000"]), ok());
        for i in 0..KEYS {
            assert_eq!(c.cmd(&["SET", &format!("seq:{i}"), "0"]), ok());
        }
        assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100"]), ok());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = std::sync::Arc::clone(&stop);
            let mut w = s.conn();
            std::thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && round < 1_000_000 {
                    round += 1;
                    for i in 0..KEYS {
                        let set = ["SET".to_owned(), format!("seq:{i}"), round.to_string()];
                        assert_eq!(w.cmd(&set), ok());
                    }
                }
                round
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
            ok()
        );
        assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
        wait_bgsave_done(&mut c);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rounds = writer.join().expect("writer");
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
            "ok"
        );
        drop(c);
        drop(s);
        let s = Server::percore(&["--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        let seen: Vec<u64> = (0..KEYS)
            .map(|i| match c.cmd(&["GET", &format!("seq:{i}")]) {
                Frame::Bulk(v) => String::from_utf8(v).unwrap().parse().unwrap(),
                other => panic!("seq:{i}: {other:?}"),
            })
            .collect();
        assert!(
            rounds > 2,
            "the writer made too few rounds ({rounds}) to test anything"
        );
        for w in seen.windows(2) {
            assert!(
                w[0] >= w[1] && w[0] - w[1] <= 1,
                "{method}: not one cut: {seen:?}"
            );
        }
        assert!(
            seen[0] > 0,
            "{method}: the snapshot predates the writer: {seen:?}"
        );
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// kill -9 of the fork child: status err, the previous dump stays, no temp file, no zombie.
#[test]
fn killed_fork_child_keeps_the_previous_dump() {
    let dir = scratch_dir("snap-kill-child");
    let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "old", "1"]), ok());
    assert_eq!(c.cmd(&["SAVE"]), ok());
    let good = std::fs::read(dir.join("dump.rdb")).expect("dump");
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3000"]), ok());
    start_slow_bgsave(&mut c, "fork", 1000);
    let kids = children(s.pid());
    assert_eq!(kids.len(), 1, "one save child expected: {kids:?}");
    std::thread::sleep(Duration::from_millis(100));
    kill(kids[0], "-KILL");
    wait_bgsave_done(&mut c);
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
        "err"
    );
    assert_eq!(std::fs::read(dir.join("dump.rdb")).expect("dump"), good);
    assert!(
        temp_files(&dir).is_empty(),
        "temp file left: {:?}",
        temp_files(&dir)
    );
    assert!(children(s.pid()).is_empty(), "child not reaped");
    drop(c);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 of the server during a save, in both methods: the previous dump loads, and
/// the temp file is removed at the next start.
#[test]
fn killed_server_mid_save_keeps_the_previous_dump() {
    for method in METHODS {
        let dir = scratch_dir("snap-kill-server");
        let mut s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", "100", "old"]), ok());
        assert_eq!(c.cmd(&["SAVE"]), ok());
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3000", "new"]), ok());
        start_slow_bgsave(&mut c, method, 1000);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !temp_files(&dir).is_empty(),
            "{method}: no temp file while saving"
        );
        kill(s.pid(), "-KILL");
        assert!(s.wait_exit(Duration::from_secs(5)).is_some());
        drop(c);
        drop(s);
        // A fork child dies with its parent (PR_SET_PDEATHSIG); give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        let s = Server::percore(&["--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(100), "{method}");
        assert!(
            temp_files(&dir).is_empty(),
            "{method}: stale temp file kept"
        );
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A disk that refuses writes: a tiny tmpfs (needs root to mount; skipped otherwise).
#[test]
fn full_disk_fails_the_save_and_keeps_the_old_file() {
    let dir = scratch_dir("snap-enospc");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir_arg(&dir)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("skipping: cannot mount a tmpfs here (needs root)");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "small", "dataset"]), ok());
    assert_eq!(c.cmd(&["SAVE"]), ok());
    let good = std::fs::read(dir.join("dump.rdb")).expect("dump");
    // ~6 MB of incompressible-ish values: more than the 2 MB tmpfs holds.
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdbcompression", "no"]), ok());
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "6000", "big", "1000"]), ok());
    for method in METHODS {
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
            ok()
        );
        assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
        wait_bgsave_done(&mut c);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
            "err",
            "{method}"
        );
        assert_eq!(std::fs::read(dir.join("dump.rdb")).expect("dump"), good);
        assert!(temp_files(&dir).is_empty(), "{method}: temp file left");
    }
    assert_eq!(c.cmd(&["SAVE"]), err("ERR"));
    assert_eq!(std::fs::read(dir.join("dump.rdb")).expect("dump"), good);
    drop(c);
    drop(s);
    let _ = Command::new("umount").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_or_truncated_dump_stops_startup_and_is_left_untouched() {
    let dir = scratch_dir("snap-corrupt");
    let s = Server::percore(&["--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    fill(&mut c);
    assert_eq!(c.cmd(&["SAVE"]), ok());
    drop(c);
    drop(s);
    let file = dir.join("dump.rdb");
    let good = std::fs::read(&file).expect("dump");
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("bad checksum", {
            let mut b = good.clone();
            let n = b.len();
            b[n - 3] ^= 0x55;
            b
        }),
        ("bad opcode", {
            let mut b = good.clone();
            // The first record after the 9-byte magic is an AUX (0xFA); 0xF0 is no opcode.
            b[9] = 0xF0;
            b
        }),
    ] {
        std::fs::write(&file, &bytes).expect("write corrupt dump");
        let out = common::start_fails(&dir);
        assert!(
            out.contains("dump.rdb") && out.contains("offset"),
            "{what}: message must name the file and offset: {out}"
        );
        assert_eq!(
            std::fs::read(&file).expect("dump"),
            bytes,
            "{what}: file changed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_and_sigterm_save_when_asked() {
    // SIGTERM with save points: a final save.
    let dir = scratch_dir("snap-shutdown");
    let mut s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir), "--save", "3600 1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["SET", "k", "sigterm"]), ok());
    kill(s.pid(), "-TERM");
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert!(st.success(), "{st}");
    drop(c);
    drop(s);
    let s = Server::percore(&["--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "k"]), bulk("sigterm"));
    // SHUTDOWN SAVE without save points saves too.
    assert_eq!(c.cmd(&["SET", "k", "shutdown-save"]), ok());
    c.send_cmd(&["SHUTDOWN", "SAVE"]);
    c.expect_closed();
    drop(s);
    let s = Server::percore(&["--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "k"]), bulk("shutdown-save"));
    // NOSAVE does not.
    assert_eq!(c.cmd(&["SET", "k", "lost"]), ok());
    c.send_cmd(&["SHUTDOWN", "NOSAVE"]);
    c.expect_closed();
    drop(s);
    let s = Server::percore(&["--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["GET", "k"]), bulk("shutdown-save"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_reload_keeps_the_data() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    fill(&mut c);
    let before = dump_dataset(&mut c);
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), ok());
    assert_eq!(dump_dataset(&mut c), before);
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_changes_since_last_save"),
        "0"
    );
}

#[test]
fn save_points_trigger_a_background_save() {
    let dir = scratch_dir("snap-savepoints");
    let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir), "--save", "1 3"]);
    let mut c = s.conn();
    for i in 0..3 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), ok());
    }
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_changes_since_last_save"),
        "3"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.join("dump.rdb").exists()
        || info_field(&mut c, "persistence", "rdb_changes_since_last_save") != "0"
    {
        assert!(Instant::now() < deadline, "save point did not fire");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// INFO persistence's `current_*` fields, read from one INFO reply so they agree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct SaveProgress {
    in_progress: bool,
    processed: u64,
    total: u64,
    perc: f64,
    cow_size: u64,
    cow_peak: u64,
    cow_age: u64,
}

fn save_progress(c: &mut Conn) -> SaveProgress {
    let Frame::Bulk(text) = c.cmd(&["INFO", "persistence"]) else {
        panic!("INFO is not a bulk string");
    };
    let text = String::from_utf8(text).expect("utf-8 INFO");
    let field = |name: &str| -> &str {
        let prefix = format!("{name}:");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("INFO persistence lacks {name}:\n{text}"))
    };
    let int = |name: &str| -> u64 {
        field(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not an integer:\n{text}"))
    };
    let p = SaveProgress {
        in_progress: field("rdb_bgsave_in_progress") == "1",
        processed: int("current_save_keys_processed"),
        total: int("current_save_keys_total"),
        perc: field("current_fork_perc")
            .parse()
            .expect("current_fork_perc"),
        cow_size: int("current_cow_size"),
        cow_peak: int("current_cow_peak"),
        cow_age: int("current_cow_size_age"),
    };
    let decimals = field("current_fork_perc")
        .split_once('.')
        .map(|(_, d)| d.len());
    assert_eq!(
        decimals,
        Some(2),
        "current_fork_perc with 2 decimals:\n{text}"
    );
    p
}

/// What holds of every sample taken while a save of `keys` keys runs.
fn check_running_progress(method: &str, p: &SaveProgress, keys: u64) {
    assert_eq!(p.total, keys, "{method}: keys at the cut: {p:?}");
    assert!(p.processed <= p.total, "{method}: {p:?}");
    assert!((0.0..=100.0).contains(&p.perc), "{method}: {p:?}");
    let expected = p.processed as f64 / p.total as f64 * 100.0;
    assert!(
        (p.perc - expected).abs() <= 0.006,
        "{method}: current_fork_perc is not processed/total: {p:?}"
    );
    assert!(p.cow_peak >= p.cow_size, "{method}: peak below size: {p:?}");
    if method == "forkless" {
        assert_eq!(p.cow_age, 0, "{method}: the cut's memory is measured now");
    }
}

/// INFO's `current_save_keys_processed`/`_total`, `current_fork_perc` and `current_cow_*`
/// during a slowed save, for both methods: progress rises and stays within the total; in
/// fork mode the child's Private_Dirty grows once the parent overwrites keys it shares
/// with the child; everything is back to 0 after the save.
#[test]
fn info_reports_the_progress_of_a_running_save() {
    const KEYS: u64 = 5000;
    for method in METHODS {
        let dir = scratch_dir("snap-progress");
        let s = Server::percore(&["--threads", "2", "--dir", dir_arg(&dir)]);
        let mut c = s.conn();
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", &KEYS.to_string()]), ok());
        assert_eq!(save_progress(&mut c), SaveProgress::default());
        // 1 ms per key: the fork child needs 5 s at least, each forkless shard 2.5 s.
        start_slow_bgsave(&mut c, method, 1000);
        let deadline = Instant::now() + SAVE_TIMEOUT;
        let first = save_progress(&mut c);
        assert!(first.in_progress, "{method}: {first:?}");
        check_running_progress(method, &first, KEYS);
        // The fork child reports about once a second; the forkless count is live.
        let mut last = first;
        while last.processed <= first.processed || last.processed == 0 {
            assert!(Instant::now() < deadline, "{method}: no progress: {last:?}");
            std::thread::sleep(Duration::from_millis(50));
            last = save_progress(&mut c);
            assert!(
                last.in_progress,
                "{method}: the save ended before its progress rose: {first:?} then {last:?}"
            );
            check_running_progress(method, &last, KEYS);
            assert!(last.processed >= first.processed, "{method}: went back");
        }
        if method == "fork" {
            assert!(last.cow_size > 0, "{method}: {last:?}");
            // Overwrite every key: each page the parent writes is copied, and the child
            // keeps the original as private memory.
            let before = last.cow_size;
            let value = "v".repeat(256);
            let mut pipeline = Vec::new();
            for i in 0..KEYS {
                pipeline.extend(common::encode_cmd(&["SET", &format!("key:{i}"), &value]));
            }
            c.send(&pipeline);
            for _ in 0..KEYS {
                assert_eq!(c.read_frame(), ok());
            }
            while last.cow_size <= before {
                assert!(
                    Instant::now() < deadline,
                    "{method}: copy-on-write never grew: {last:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
                last = save_progress(&mut c);
                assert!(
                    last.in_progress,
                    "{method}: the save ended before the child reported its copies: {last:?}"
                );
                check_running_progress(method, &last, KEYS);
            }
            assert!(last.cow_peak >= last.cow_size, "{method}: {last:?}");
        }
        wait_bgsave_done(&mut c);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_last_bgsave_status"),
            "ok"
        );
        assert_eq!(save_progress(&mut c), SaveProgress::default(), "{method}");
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `forkless-max-copy-memory`: when writes copy entries aside faster than the save takes
/// them, the shards throttle, so the copies stay within the limit (plus one page), and
/// the file is still the dataset as of the cut. The same run without a limit copies far
/// more, which shows the limit is what bounds it.
#[test]
fn forkless_copies_stay_within_the_copy_limit() {
    const KEYS: usize = 20_000;
    const SHARDS: usize = 2;
    // The smallest limit: each shard's floor of 1024 entries, plus the page of 16 that
    // the last write copied.
    const MAX_PEAK: u64 = (SHARDS * (1024 + 16)) as u64;
    let dir = scratch_dir("snap-copy-limit");
    let s = Server::percore(&["--threads", "2", "--save", "", "--dir", dir_arg(&dir)]);
    let mut c = s.conn();
    let overwrite_all = |c: &mut Conn, tag: &str| {
        for batch in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
            for &i in batch {
                c.send_cmd(&["SET".to_owned(), format!("key:{i}"), format!("{tag}:{i}")]);
            }
            for _ in batch {
                assert_eq!(c.read_frame(), ok());
            }
        }
    };
    let run = |c: &mut Conn, limit: &str, tag: &str, key_delay_us: u32| -> (u64, u64) {
        assert_eq!(c.cmd(&["FLUSHALL"]), ok());
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", &KEYS.to_string()]), ok());
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "forkless-max-copy-memory", limit]),
            ok()
        );
        start_slow_bgsave(c, "forkless", key_delay_us);
        overwrite_all(c, tag);
        wait_bgsave_done(c);
        assert_eq!(info_field(c, "persistence", "rdb_last_bgsave_status"), "ok");
        let field = |c: &mut Conn, f: &str| -> u64 {
            info_field(c, "persistence", f).parse().expect("a number")
        };
        (
            field(c, "rdb_last_forkless_copies_peak"),
            field(c, "rdb_last_forkless_throttle_usec"),
        )
    };
    // 0.4 ms a key as below: at 0.1 ms a loaded machine's client once wrote so slowly
    // that the save kept ahead and the shards never had to throttle.
    let (peak, throttled_us) = run(&mut c, "1", "limited", 400);
    assert!(
        peak <= MAX_PEAK,
        "copies peaked at {peak} entries over a limit of {MAX_PEAK}"
    );
    assert!(throttled_us > 0, "the shards never throttled");
    // The file is the cut: every key still has its value from before the overwrites.
    let check = Server::percore(&["--dir", dir_arg(&dir)]);
    let mut cc = check.conn();
    for i in (0..KEYS).step_by(97) {
        assert_eq!(
            cc.cmd(&["GET", &format!("key:{i}")]),
            bulk(format!("value:{i}")),
            "key:{i}"
        );
    }
    assert_eq!(cc.cmd(&["DBSIZE"]), Frame::Int(KEYS as i64));
    drop(cc);
    drop(check);
    // No limit to speak of (the automatic one is at least 4 MiB): no throttling, and the
    // same overwrites copy many more entries. The save is slower here (0.4 ms a key, ~2 s
    // a shard) so that the overwrites outrun it even on a loaded machine: at 0.1 ms a key
    // the save once passed most keys before they were overwritten, and the peak stayed
    // under the limited run's bound.
    let (peak, throttled_us) = run(&mut c, "0", "free", 400);
    assert_eq!(throttled_us, 0);
    assert!(
        peak > MAX_PEAK,
        "without a limit the copies peaked at only {peak}: the test proves nothing"
    );
    drop(c);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
