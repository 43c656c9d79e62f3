//! The cancel barrier: BGSAVE CANCEL, FLUSHALL, FLUSHDB and SHUTDOWN with a save in flight,
//! in both snapshot methods with two shards. Once the reply is sent: (1) the cancelled
//! save never renames into place or moves LASTSAVE; (2) dbfilename holds the previous
//! complete dump (or FLUSHALL's empty one); (3) INFO shows no save in progress and an
//! unchanged last status; (4) no temp file and no child remain; (5) every shard answers
//! with the new data; (6) a BGSAVE right after works.

mod common;

use common::{
    Conn, Server, children, err, ok, processes_sharing_env, scratch_dir, simple, start_slow_bgsave,
    temp_files,
};
use percore_net::resp::Frame;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const METHODS: [&str; 2] = ["fork", "forkless"];
/// How long a save may take to finish in these tests.
const SAVE_TIMEOUT: Duration = Duration::from_mins(1);
/// How long a cancelled save gets to (wrongly) land before the checks look again.
const AFTERMATH: Duration = Duration::from_millis(300);

fn info_field(c: &mut Conn, field: &str) -> String {
    common::info_field(c, "persistence", field)
}

fn wait_idle(c: &mut Conn) {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    while info_field(c, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "save did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lastsave(c: &mut Conn) -> i64 {
    match c.cmd(&["LASTSAVE"]) {
        Frame::Int(t) => t,
        other => panic!("LASTSAVE: {other:?}"),
    }
}

fn dbsize(c: &mut Conn) -> i64 {
    match c.cmd(&["DBSIZE"]) {
        Frame::Int(n) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

struct Node {
    server: Server,
    dir: PathBuf,
    c: Conn,
}

fn node(extra: &[&str]) -> Node {
    let dir = scratch_dir("cancel");
    let mut args = vec!["--threads", "2", "--dir", dir.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let server = Server::percore(&args);
    let c = server.conn();
    Node { server, dir, c }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// BGSAVE CANCEL in a stress round: true if it stopped a save, false if none was running.
fn bgsave_cancel(c: &mut Conn, round: usize) -> bool {
    match c.cmd(&["BGSAVE", "CANCEL"]) {
        Frame::Simple(s) if s == b"Background saving cancelled" => true,
        Frame::Error(e)
            if e == b"ERR Background saving is currently not in progress or scheduled" =>
        {
            false
        }
        other => panic!("round {round}: BGSAVE CANCEL: {other:?}"),
    }
}

/// xorshift64: the stress tests' reproducible choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A delay before the cancel: none, short, mid-save, or after a small save ended.
    fn delay(&mut self) -> Duration {
        Duration::from_micros(match self.next() % 4 {
            0 => 0,
            1 => self.next() % 500,
            2 => self.next() % 5000,
            _ => 20_000,
        })
    }
}

impl Node {
    /// Guarantees (1), (3), (4) after one stress round's cancelling reply.
    fn check_round(&mut self, round: usize) {
        let dump = self.dump();
        let last = lastsave(&mut self.c);
        assert_eq!(
            info_field(&mut self.c, "rdb_bgsave_in_progress"),
            "0",
            "round {round}"
        );
        assert_eq!(
            info_field(&mut self.c, "rdb_last_bgsave_status"),
            "ok",
            "round {round}"
        );
        // A save that finished before the cancel arrived leaves the old dump's hard link
        // (`temp-old-*`) to its unlink thread, which may run a moment after the reply; any
        // other temp file is a save that was not cancelled.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let left = temp_files(&self.dir);
            let only_old = left.iter().all(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("temp-old-"))
            });
            assert!(only_old, "round {round}: temp file {left:?}");
            if left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: old dump link not freed: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            children(self.server.pid()).is_empty(),
            "round {round}: child left"
        );
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(self.dump(), dump, "round {round}: a cancelled save landed");
        assert_eq!(lastsave(&mut self.c), last, "round {round}: LASTSAVE moved");
    }

    fn dump(&self) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join("dump.rdb")).ok()
    }

    /// A slow BGSAVE in `method` over a dataset on both shards, after a good SAVE.
    fn slow_bgsave(&mut self, method: &str) -> Vec<u8> {
        let c = &mut self.c;
        assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3000"]), ok());
        assert_eq!(c.cmd(&["SAVE"]), ok());
        let good = self.dump().expect("dump after SAVE");
        let c = &mut self.c;
        start_slow_bgsave(c, method, 1000);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !temp_files(&self.dir).is_empty(),
            "{method}: save not under way"
        );
        good
    }

    /// Guarantees (1)-(4) right after a cancelling reply, and again a little later.
    fn check_cancelled(&mut self, method: &str, expect_dump: &[u8], lastsave_before: i64) {
        let status_before = "ok";
        for pass in 0..2 {
            assert_eq!(
                info_field(&mut self.c, "rdb_bgsave_in_progress"),
                "0",
                "{method} pass {pass}"
            );
            assert_eq!(
                info_field(&mut self.c, "rdb_last_bgsave_status"),
                status_before
            );
            assert!(
                temp_files(&self.dir).is_empty(),
                "{method}: temp file {:?}",
                temp_files(&self.dir)
            );
            assert!(
                children(self.server.pid()).is_empty(),
                "{method}: child left"
            );
            assert_eq!(
                self.dump().as_deref(),
                Some(expect_dump),
                "{method}: dump changed"
            );
            assert_eq!(
                lastsave(&mut self.c),
                lastsave_before,
                "{method}: LASTSAVE moved"
            );
            std::thread::sleep(AFTERMATH);
        }
    }

    /// Guarantee (6): a BGSAVE right after works, and the file loads.
    fn check_bgsave_after(&mut self, method: &str) {
        let c = &mut self.c;
        assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), ok());
        assert_eq!(c.cmd(&["SET", "after", "cancel"]), ok());
        assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
        wait_idle(c);
        assert_eq!(info_field(c, "rdb_last_bgsave_status"), "ok", "{method}");
        let keys = dbsize(c);
        let check = Server::percore(&["--dir", self.dir.to_str().expect("utf-8")]);
        assert_eq!(
            dbsize(&mut check.conn()),
            keys,
            "{method}: the new dump does not load"
        );
    }
}

#[test]
fn bgsave_cancel_in_both_methods() {
    for method in METHODS {
        let mut n = node(&[]);
        let good = n.slow_bgsave(method);
        let before = lastsave(&mut n.c);
        assert_eq!(
            n.c.cmd(&["BGSAVE", "CANCEL"]),
            simple("Background saving cancelled")
        );
        n.check_cancelled(method, &good, before);
        // (5) the data is untouched by a cancel.
        assert_eq!(dbsize(&mut n.c), 3000);
        assert_eq!(
            n.c.cmd(&["BGSAVE", "CANCEL"]),
            err("ERR Background saving is currently not in progress or scheduled")
        );
        n.check_bgsave_after(method);
    }
}

/// Polls `what` every 10 ms for up to `within`; true once it holds.
fn eventually(within: Duration, mut what: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    loop {
        if what() {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Guarantee (4) for the fork child's teardown helper (src/snapshot/fork.rs): during a
/// fork save the child and its helper run; right after a cancel the child is reaped, and
/// the helper, no longer the server's child, is gone as soon as it has freed the memory.
/// Likewise after a save that completes.
#[test]
fn fork_child_and_its_teardown_helper_end_with_the_save() {
    let mut n = node(&[]);
    let pid = n.server.pid();
    let good = n.slow_bgsave("fork");
    assert!(
        eventually(Duration::from_secs(5), || processes_sharing_env(pid).len()
            == 2),
        "a fork save runs as the child and its teardown helper: {:?}",
        processes_sharing_env(pid)
    );
    let before = lastsave(&mut n.c);
    assert_eq!(
        n.c.cmd(&["BGSAVE", "CANCEL"]),
        simple("Background saving cancelled")
    );
    n.check_cancelled("fork", &good, before);
    assert!(
        eventually(Duration::from_secs(10), || processes_sharing_env(pid)
            .is_empty()),
        "the helper outlived the cancelled child: {:?}",
        processes_sharing_env(pid)
    );
    // A save that completes: the child exits, and its helper with it.
    assert_eq!(n.c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), ok());
    assert_eq!(n.c.cmd(&["BGSAVE"]), simple("Background saving started"));
    wait_idle(&mut n.c);
    assert_eq!(info_field(&mut n.c, "rdb_last_bgsave_status"), "ok");
    assert!(
        eventually(Duration::from_secs(10), || processes_sharing_env(pid)
            .is_empty()),
        "the helper outlived the completed child: {:?}",
        processes_sharing_env(pid)
    );
}

#[test]
fn flushall_cancels_the_save_and_every_shard_sees_the_flush() {
    for method in METHODS {
        let mut n = node(&[]);
        let good = n.slow_bgsave(method);
        let before = lastsave(&mut n.c);
        assert_eq!(n.c.cmd(&["FLUSHALL"]), ok());
        // (5) keys of both shards are gone for every client, at once.
        let mut other = n.server.conn();
        assert_eq!(dbsize(&mut other), 0);
        for i in 0..50 {
            assert_eq!(other.cmd(&["GET", &format!("key:{i}")]), Frame::Null);
        }
        n.check_cancelled(method, &good, before);
        n.check_bgsave_after(method);
    }
}

#[test]
fn flushall_with_save_points_writes_an_empty_dump() {
    for method in METHODS {
        let mut n = node(&["--save", "3600 100000"]);
        n.slow_bgsave(method);
        assert_eq!(n.c.cmd(&["FLUSHALL"]), ok());
        assert_eq!(info_field(&mut n.c, "rdb_bgsave_in_progress"), "0");
        assert_eq!(info_field(&mut n.c, "rdb_changes_since_last_save"), "0");
        assert!(temp_files(&n.dir).is_empty());
        assert!(children(n.server.pid()).is_empty());
        let empty = n.dump().expect("FLUSHALL's dump");
        std::thread::sleep(AFTERMATH);
        assert_eq!(
            n.dump().as_deref(),
            Some(empty.as_slice()),
            "{method}: cancelled save landed"
        );
        let check = Server::percore(&["--dir", n.dir.to_str().expect("utf-8")]);
        assert_eq!(
            dbsize(&mut check.conn()),
            0,
            "{method}: FLUSHALL's dump is not empty"
        );
    }
}

#[test]
fn flushdb_cancels_the_save() {
    for method in METHODS {
        let mut n = node(&[]);
        assert_eq!(n.c.cmd(&["SELECT", "2"]), ok());
        assert_eq!(n.c.cmd(&["SET", "other-db", "kept"]), ok());
        assert_eq!(n.c.cmd(&["SELECT", "0"]), ok());
        let good = n.slow_bgsave(method);
        let before = lastsave(&mut n.c);
        assert_eq!(n.c.cmd(&["FLUSHDB"]), ok());
        assert_eq!(dbsize(&mut n.c), 0);
        assert_eq!(n.c.cmd(&["SELECT", "2"]), ok());
        assert_eq!(dbsize(&mut n.c), 1, "FLUSHDB flushed another database");
        assert_eq!(n.c.cmd(&["SELECT", "0"]), ok());
        n.check_cancelled(method, &good, before);
        n.check_bgsave_after(method);
    }
}

#[test]
fn shutdown_with_a_save_in_flight_leaves_no_temp_file_or_child() {
    for (method, save) in [
        ("fork", false),
        ("forkless", false),
        ("fork", true),
        ("forkless", true),
    ] {
        let mut n = if save {
            node(&["--save", "3600 100000"])
        } else {
            node(&[])
        };
        n.slow_bgsave(method);
        let pid = n.server.pid();
        n.c.send_cmd(&["SHUTDOWN"]);
        n.c.expect_closed();
        let st = n.server.wait_exit(Duration::from_secs(20)).expect("exit");
        assert!(st.success(), "{method}: {st}");
        assert!(temp_files(&n.dir).is_empty(), "{method}: temp file left");
        assert!(children(pid).is_empty());
        // With save points the final save holds everything; either way the dump loads.
        let check = Server::percore(&["--dir", n.dir.to_str().expect("utf-8")]);
        assert_eq!(dbsize(&mut check.conn()), 3000, "{method} save={save}");
    }
}

/// Many rounds of BGSAVE then a cancel (BGSAVE CANCEL or FLUSHALL) after a random delay
/// (0, mid-save, after the save finished) while a client writes; every guarantee each round.
#[test]
fn stress_bgsave_then_cancel_rounds() {
    const ROUNDS: usize = 1000;
    let mut n = node(&[]);
    assert_eq!(n.c.cmd(&["DEBUG", "POPULATE", "2000"]), ok());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        let mut w = n.server.conn();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let set = ["SET".to_owned(), format!("w:{}", i % 500), i.to_string()];
                assert_eq!(w.cmd(&set), ok());
                i += 1;
            }
            i
        })
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cancelled = 0;
    for round in 0..ROUNDS {
        let method = METHODS[(rng.next() % 2) as usize];
        assert_eq!(
            n.c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
            ok()
        );
        assert_eq!(n.c.cmd(&["BGSAVE"]), simple("Background saving started"));
        std::thread::sleep(rng.delay());
        let flush = rng.next().is_multiple_of(4);
        let reply = if flush {
            n.c.cmd(&["FLUSHALL"])
        } else {
            n.c.cmd(&["BGSAVE", "CANCEL"])
        };
        match reply {
            Frame::Simple(s) if s == b"Background saving cancelled" => cancelled += 1,
            Frame::Simple(s) if s == b"OK" && flush => {}
            // The save had already finished: nothing to cancel.
            Frame::Error(e)
                if e == b"ERR Background saving is currently not in progress or scheduled" => {}
            other => panic!("round {round}: unexpected reply {other:?}"),
        }
        n.check_round(round);
        if flush {
            // The writer adds its keys again at once; DEBUG POPULATE's are gone everywhere.
            for i in 0..20 {
                let key = format!("key:{i}");
                assert_eq!(n.c.cmd(&["GET", &key]), Frame::Null, "round {round}: {key}");
            }
            assert_eq!(n.c.cmd(&["DEBUG", "POPULATE", "2000"]), ok());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().expect("writer");
    assert!(writes > 0);
    assert!(cancelled > 0, "no round cancelled a save in flight");
    n.check_bgsave_after("after stress");
}

/// The scenario: keys in one slot, a slow save, every key deleted with DEL (a
/// primary must hold no keys to be reset), then CLUSTER RESET cancels the save.
#[test]
fn cluster_reset_cancels_the_save() {
    for method in METHODS {
        let mut n = node(&["--cluster-enabled", "yes"]);
        assert_eq!(n.c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
        assert_eq!(n.c.cmd(&["DEBUG", "POPULATE", "2000", "{t}key"]), ok());
        assert_eq!(n.c.cmd(&["SAVE"]), ok());
        let good = n.dump().expect("dump after SAVE");
        start_slow_bgsave(&mut n.c, method, 1000);
        std::thread::sleep(Duration::from_millis(100));
        let before = lastsave(&mut n.c);
        // Refused while keys remain, and then the save goes on, as in Valkey (which checks
        // for keys before it kills a child).
        assert_eq!(
            n.c.cmd(&["CLUSTER", "RESET"]),
            err("ERR CLUSTER RESET can't be called with master nodes containing keys")
        );
        assert_eq!(
            info_field(&mut n.c, "rdb_bgsave_in_progress"),
            "1",
            "{method}: a refused reset stopped the save"
        );
        assert!(
            !temp_files(&n.dir).is_empty(),
            "{method}: a refused reset removed the save's temp file"
        );
        if method == "fork" {
            assert!(
                !children(n.server.pid()).is_empty(),
                "{method}: a refused reset killed the child"
            );
        }
        for i in 0..2000 {
            assert_eq!(n.c.cmd(&["DEL", &format!("{{t}}key:{i}")]), Frame::Int(1));
        }
        assert_eq!(info_field(&mut n.c, "rdb_bgsave_in_progress"), "1");
        assert_eq!(n.c.cmd(&["CLUSTER", "RESET"]), ok());
        // (5) The new cluster state on every shard: no slot is served any more.
        for key in ["a", "b", "c", "{t}x", "foo", "bar"] {
            match n.server.conn().cmd(&["GET", key]) {
                Frame::Error(e) => assert!(
                    e.starts_with(b"CLUSTERDOWN"),
                    "{method}: {key}: {}",
                    String::from_utf8_lossy(&e)
                ),
                other => panic!("{method}: {key}: {other:?}"),
            }
        }
        n.check_cancelled(method, &good, before);
        assert_eq!(n.c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
        n.check_bgsave_after(method);
    }
}

/// Rounds of BGSAVE then a cancel chosen at random among CLUSTER RESET (after deleting
/// the keys), FLUSHALL and BGSAVE CANCEL, at random delays, in cluster mode, while a
/// client writes (and deletes what it wrote); every guarantee each round.
#[test]
fn stress_cluster_reset_flushall_or_cancel_rounds() {
    const ROUNDS: usize = 1000;
    const KEYS: usize = 200;
    let mut n = node(&["--cluster-enabled", "yes"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        let mut w = n.server.conn();
        std::thread::spawn(move || {
            let mut ok_writes = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Either written (slots served) or refused (after a reset): never lost.
                match w.cmd(&["SET", "{w}k", "v"]) {
                    Frame::Simple(_) => ok_writes += 1,
                    Frame::Error(e) => assert!(e.starts_with(b"CLUSTERDOWN"), "{e:?}"),
                    other => panic!("SET: {other:?}"),
                }
                let _ = w.cmd(&["DEL", "{w}k"]);
            }
            ok_writes
        })
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut resets, mut cancels) = (0, 0);
    for round in 0..ROUNDS {
        let _ = n.c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
        assert_eq!(
            n.c.cmd(&["DEBUG", "POPULATE", &KEYS.to_string(), "{t}key"]),
            ok()
        );
        let method = METHODS[(rng.next() % 2) as usize];
        assert_eq!(
            n.c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
            ok()
        );
        assert_eq!(n.c.cmd(&["BGSAVE"]), simple("Background saving started"));
        std::thread::sleep(rng.delay());
        match rng.next() % 3 {
            0 => {
                for i in 0..KEYS {
                    assert_eq!(n.c.cmd(&["DEL", &format!("{{t}}key:{i}")]), Frame::Int(1));
                }
                match n.c.cmd(&["CLUSTER", "RESET"]) {
                    Frame::Simple(s) if s == b"OK" => resets += 1,
                    // The writer's key existed at that instant: the reset is refused and,
                    // as in Valkey, leaves a save in flight alone; stop it here so the
                    // round's checks apply.
                    Frame::Error(e)
                        if e == b"ERR CLUSTER RESET can't be called with master nodes containing keys" =>
                    {
                        bgsave_cancel(&mut n.c, round);
                    }
                    other => panic!("round {round}: CLUSTER RESET: {other:?}"),
                }
            }
            1 => assert_eq!(n.c.cmd(&["FLUSHALL"]), ok(), "round {round}"),
            _ => {
                if bgsave_cancel(&mut n.c, round) {
                    cancels += 1;
                }
            }
        }
        n.check_round(round);
        let _ = n.c.cmd(&["FLUSHALL"]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(
        resets > 0 && cancels > 0,
        "resets {resets}, cancels {cancels}"
    );
    let _ = n.c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    n.check_bgsave_after("after cluster stress");
}
