//! The bank test (issue 16): accounts spread over every shard, many clients moving money
//! between random accounts with MULTI/EXEC, with WATCH-retry loops and with Lua scripts
//! (declared keys on several shards, and undeclared keys read first), readers summing
//! every account inside a transaction (and with one MGET), while an admin connection runs
//! forkless BGSAVEs, BGSAVE CANCELs and FLUSHDB of another database. The sum never
//! changes, every acknowledged transfer is applied exactly once (each account ends at its
//! opening balance plus the transfers the clients saw succeed), nothing deadlocks (every
//! reply arrives within the connection timeout), and every dump written mid-test holds the
//! opening total.

mod common;

use common::{Conn, Rng, Server, err, info_field, ok, scratch_dir, simple};
use percore_net::resp::frame::Frame;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Accounts, each opened with `OPENING` units.
const ACCOUNTS: usize = 48;
const OPENING: i64 = 1000;
/// How long the clients run per shard count (the whole test stays near 20 s).
const RUN_TIME: Duration = Duration::from_secs(4);
const MOVERS_MULTI: usize = 3;
const MOVERS_WATCH: usize = 3;
/// Lua movers per kind (declared keys, undeclared keys).
const MOVERS_LUA: usize = 2;
const READERS: usize = 2;

fn account(i: usize) -> String {
    format!("account:{i}")
}

fn int(f: &Frame) -> i64 {
    match f {
        Frame::Int(n) => *n,
        Frame::Bulk(b) => std::str::from_utf8(b)
            .expect("utf-8")
            .parse()
            .expect("an integer balance"),
        other => panic!("not an integer: {other:?}"),
    }
}

/// Balances per account as the clients saw them applied (the ledger).
struct Ledger {
    deltas: Vec<AtomicU64>,
}

impl Ledger {
    fn add(&self, i: usize, delta: i64) {
        self.deltas[i].fetch_add(delta as u64, Ordering::Relaxed);
    }

    fn expected(&self, i: usize) -> i64 {
        OPENING + self.deltas[i].load(Ordering::Relaxed) as i64
    }
}

/// MULTI, DECRBY from, INCRBY to, EXEC: both replies come back, applied once.
fn mover_multi(port: u16, seed: u64, stop: &AtomicBool, ledger: &Ledger) -> usize {
    let mut c = Conn::connect(port);
    let mut rng = Rng(seed);
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let (a, b) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
        let amount = rng.range(1, 50);
        let (ka, kb, n) = (account(a), account(b), amount.to_string());
        // Pipelined, as client libraries send a transaction.
        let mut req = common::encode_cmd(&["MULTI"]);
        req.extend(common::encode_cmd(&["DECRBY", ka.as_str(), n.as_str()]));
        req.extend(common::encode_cmd(&["INCRBY", kb.as_str(), n.as_str()]));
        req.extend(common::encode_cmd(&["EXEC"]));
        c.send(&req);
        assert_eq!(c.read_frame(), ok());
        assert_eq!(c.read_frame(), simple("QUEUED"));
        assert_eq!(c.read_frame(), simple("QUEUED"));
        let Frame::Array(replies) = c.read_frame() else {
            panic!("EXEC did not answer an array");
        };
        assert_eq!(replies.len(), 2);
        let (after_a, after_b) = (int(&replies[0]), int(&replies[1]));
        if a == b {
            assert_eq!(after_a + amount, after_b);
        }
        ledger.add(a, -amount);
        ledger.add(b, amount);
        done += 1;
    }
    done
}

/// WATCH from to, GET both, MULTI, SET both, EXEC; a null EXEC (a concurrent write) is
/// retried. Returns (transfers, retries).
fn mover_watch(port: u16, seed: u64, stop: &AtomicBool, ledger: &Ledger) -> (usize, usize) {
    let mut c = Conn::connect(port);
    let mut rng = Rng(seed);
    let (mut done, mut retries) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let (a, b) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
        if a == b {
            continue;
        }
        let amount = rng.range(1, 50);
        let (ka, kb) = (account(a), account(b));
        loop {
            assert_eq!(c.cmd(&["WATCH", ka.as_str(), kb.as_str()]), ok());
            let va = int(&c.cmd(&["GET", ka.as_str()]));
            let vb = int(&c.cmd(&["GET", kb.as_str()]));
            let (na, nb) = ((va - amount).to_string(), (vb + amount).to_string());
            let mut req = common::encode_cmd(&["MULTI"]);
            req.extend(common::encode_cmd(&["SET", ka.as_str(), na.as_str()]));
            req.extend(common::encode_cmd(&["SET", kb.as_str(), nb.as_str()]));
            req.extend(common::encode_cmd(&["EXEC"]));
            c.send(&req);
            assert_eq!(c.read_frame(), ok());
            assert_eq!(c.read_frame(), simple("QUEUED"));
            assert_eq!(c.read_frame(), simple("QUEUED"));
            match c.read_frame() {
                Frame::NullArray => {
                    retries += 1;
                    if stop.load(Ordering::Relaxed) {
                        return (done, retries);
                    }
                }
                Frame::Array(r) => {
                    assert_eq!(r, vec![ok(), ok()]);
                    ledger.add(a, -amount);
                    ledger.add(b, amount);
                    done += 1;
                    break;
                }
                other => panic!("EXEC answered {other:?}"),
            }
        }
    }
    (done, retries)
}

/// A transfer with its accounts declared (they may live on different shards).
const LUA_DECLARED: &str = "local n = tonumber(ARGV[1]) \
    return {redis.call('decrby', KEYS[1], n), redis.call('incrby', KEYS[2], n)}";
/// A transfer naming its accounts in ARGV only (undeclared keys, read before any write).
const LUA_UNDECLARED: &str = "local n = tonumber(ARGV[3]) \
    local a = tonumber(redis.call('get', ARGV[1])) \
    local b = tonumber(redis.call('get', ARGV[2])) \
    redis.call('set', ARGV[1], a - n) redis.call('set', ARGV[2], b + n) \
    return {a - n, b + n}";

/// EVALSHA of a transfer script, with declared or undeclared keys: both new balances come
/// back, applied once.
fn mover_lua(port: u16, seed: u64, stop: &AtomicBool, ledger: &Ledger, declared: bool) -> usize {
    let mut c = Conn::connect(port);
    let mut rng = Rng(seed);
    let body = if declared {
        LUA_DECLARED
    } else {
        LUA_UNDECLARED
    };
    let Frame::Bulk(sha) = c.cmd(&["SCRIPT", "LOAD", body]) else {
        panic!("SCRIPT LOAD failed");
    };
    let sha = String::from_utf8(sha).expect("a hex SHA1");
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let (a, b) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
        if a == b {
            continue;
        }
        let amount = rng.range(1, 50);
        let (ka, kb, n) = (account(a), account(b), amount.to_string());
        let args: Vec<&str> = if declared {
            vec!["EVALSHA", &sha, "2", &ka, &kb, &n]
        } else {
            vec!["EVALSHA", &sha, "0", &ka, &kb, &n]
        };
        match c.cmd(&args) {
            Frame::Array(balances) => assert_eq!(balances.len(), 2),
            other => panic!("the transfer script answered {other:?}"),
        }
        ledger.add(a, -amount);
        ledger.add(b, amount);
        done += 1;
    }
    done
}

/// Sums every account in one transaction (MULTI + GETs), in one MULTI + MGET, and with a
/// lone MGET; each sum must be the opening total.
fn reader(port: u16, stop: &AtomicBool) -> usize {
    let mut c = Conn::connect(port);
    let total = OPENING * ACCOUNTS as i64;
    let keys: Vec<String> = (0..ACCOUNTS).map(account).collect();
    let mut sums = 0;
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let values: Vec<Frame> = match round % 3 {
            0 => {
                let mut req = common::encode_cmd(&["MULTI"]);
                for k in &keys {
                    req.extend(common::encode_cmd(&["GET", k.as_str()]));
                }
                req.extend(common::encode_cmd(&["EXEC"]));
                c.send(&req);
                assert_eq!(c.read_frame(), ok());
                for _ in &keys {
                    assert_eq!(c.read_frame(), simple("QUEUED"));
                }
                let Frame::Array(v) = c.read_frame() else {
                    panic!("EXEC did not answer an array");
                };
                v
            }
            1 => {
                let mut mget = vec!["MGET"];
                mget.extend(keys.iter().map(String::as_str));
                let mut req = common::encode_cmd(&["MULTI"]);
                req.extend(common::encode_cmd(&mget));
                req.extend(common::encode_cmd(&["EXEC"]));
                c.send(&req);
                assert_eq!(c.read_frame(), ok());
                assert_eq!(c.read_frame(), simple("QUEUED"));
                let Frame::Array(mut v) = c.read_frame() else {
                    panic!("EXEC did not answer an array");
                };
                let Frame::Array(values) = v.remove(0) else {
                    panic!("MGET did not answer an array");
                };
                values
            }
            _ => {
                let mut mget = vec!["MGET"];
                mget.extend(keys.iter().map(String::as_str));
                let Frame::Array(v) = c.cmd(&mget) else {
                    panic!("MGET did not answer an array");
                };
                v
            }
        };
        assert_eq!(values.len(), ACCOUNTS);
        let sum: i64 = values.iter().map(int).sum();
        assert_eq!(
            sum, total,
            "a reader saw part of a transfer (round {round})"
        );
        sums += 1;
    }
    sums
}

/// The sum of the accounts in a dump (database 0), if the dump exists.
fn dump_total(path: &std::path::Path) -> Option<i64> {
    use percore_persist::rdb::{LoadOptions, Record, load};
    let data = std::fs::read(path).ok()?;
    let mut total = 0i64;
    let mut accounts = 0;
    load(&data, &LoadOptions::default(), |rec| {
        if let Record::Entry {
            db: 0, key, value, ..
        } = rec
            && key.starts_with(b"account:")
        {
            let percore_engine::value::Value::Str(s) = value else {
                panic!("accounts are strings");
            };
            total += std::str::from_utf8(&s.to_bytes())
                .expect("utf-8")
                .parse::<i64>()
                .expect("a balance");
            accounts += 1;
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: not a valid dump: {e}", path.display()));
    assert_eq!(accounts, ACCOUNTS, "a dump lost accounts");
    Some(total)
}

/// BGSAVE (checking the dump), BGSAVE + BGSAVE CANCEL, and FLUSHDB of database 5 after
/// filling it, in turn, until told to stop. Returns the dumps checked.
fn admin(port: u16, dir: &std::path::Path, stop: &AtomicBool) -> usize {
    let mut c = Conn::connect(port);
    let dump = dir.join("dump.rdb");
    let mut checked = 0;
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        match round % 3 {
            0 => {
                let _ = std::fs::remove_file(&dump);
                assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
                let deadline = Instant::now() + Duration::from_secs(30);
                while info_field(&mut c, "persistence", "rdb_bgsave_in_progress") != "0" {
                    assert!(Instant::now() < deadline, "the save did not finish");
                    std::thread::sleep(Duration::from_millis(2));
                }
                if let Some(total) = dump_total(&dump) {
                    assert_eq!(
                        total,
                        OPENING * ACCOUNTS as i64,
                        "a dump holds part of a transfer"
                    );
                    checked += 1;
                }
            }
            1 => {
                assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
                // A small dataset's save may end before the CANCEL arrives.
                let r = c.cmd(&["BGSAVE", "CANCEL"]);
                assert!(
                    matches!(r, Frame::Simple(_))
                        || r == err(
                            "ERR Background saving is currently not in progress or scheduled"
                        ),
                    "BGSAVE CANCEL answered {r:?}"
                );
                let deadline = Instant::now() + Duration::from_secs(30);
                while info_field(&mut c, "persistence", "rdb_bgsave_in_progress") != "0" {
                    assert!(Instant::now() < deadline, "the save did not end");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            _ => {
                assert_eq!(c.cmd(&["SELECT", "5"]), ok());
                for i in 0..50 {
                    let k = format!("other:{i}");
                    assert_eq!(c.cmd(&["SET", k.as_str(), "x"]), ok());
                }
                assert_eq!(c.cmd(&["FLUSHDB"]), ok());
                assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(0));
                assert_eq!(c.cmd(&["SELECT", "0"]), ok());
            }
        }
    }
    checked
}

fn run_bank(shards: usize) {
    let dir = scratch_dir("bank");
    let n = shards.to_string();
    let server = Server::percore(&[
        "--threads",
        &n,
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--default-bgsave-method",
        "forkless",
    ]);
    let port = server.port();
    let mut c = Conn::connect(port);
    let mut mset = vec!["MSET".to_string()];
    for i in 0..ACCOUNTS {
        mset.push(account(i));
        mset.push(OPENING.to_string());
    }
    assert_eq!(c.cmd(&mset), ok());
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Ledger {
        deltas: (0..ACCOUNTS).map(|_| AtomicU64::new(0)).collect(),
    });
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    println!("bank test, {shards} shards, seed {seed}");
    let mut multi = Vec::new();
    for t in 0..MOVERS_MULTI {
        let (stop, ledger) = (Arc::clone(&stop), Arc::clone(&ledger));
        multi.push(std::thread::spawn(move || {
            mover_multi(port, seed ^ (t as u64 + 1), &stop, &ledger)
        }));
    }
    let mut watch = Vec::new();
    for t in 0..MOVERS_WATCH {
        let (stop, ledger) = (Arc::clone(&stop), Arc::clone(&ledger));
        watch.push(std::thread::spawn(move || {
            mover_watch(port, seed ^ (t as u64 + 101), &stop, &ledger)
        }));
    }
    let mut lua = Vec::new();
    for t in 0..2 * MOVERS_LUA {
        let (stop, ledger) = (Arc::clone(&stop), Arc::clone(&ledger));
        let declared = t % 2 == 0;
        lua.push(std::thread::spawn(move || {
            mover_lua(port, seed ^ (t as u64 + 201), &stop, &ledger, declared)
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let stop = Arc::clone(&stop);
        readers.push(std::thread::spawn(move || reader(port, &stop)));
    }
    let admin_thread = {
        let (stop, dir) = (Arc::clone(&stop), dir.clone());
        std::thread::spawn(move || admin(port, &dir, &stop))
    };
    std::thread::sleep(RUN_TIME);
    stop.store(true, Ordering::Relaxed);
    let moved: usize = multi.into_iter().map(|h| h.join().expect("mover")).sum();
    let (watched, retries) = watch
        .into_iter()
        .map(|h| h.join().expect("watch mover"))
        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
    let scripted: usize = lua.into_iter().map(|h| h.join().expect("lua mover")).sum();
    let sums: usize = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    let dumps = admin_thread.join().expect("admin");
    println!(
        "{shards} shards: {moved} MULTI transfers, {watched} WATCH transfers ({retries} retries), {scripted} Lua transfers, {sums} sums, {dumps} dumps checked"
    );
    assert!(
        moved > 0 && watched > 0 && scripted > 0 && sums > 0,
        "every kind of client made progress"
    );
    for i in 0..ACCOUNTS {
        let k = account(i);
        assert_eq!(
            int(&c.cmd(&["GET", k.as_str()])),
            ledger.expected(i),
            "{k}: a transfer was lost or applied twice"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bank_two_shards() {
    run_bank(2);
}

#[test]
fn bank_three_shards() {
    run_bank(3);
}
