//! A snapshot's cut never falls inside a multi-shard command (issue 21): FLUSHDB,
//! FLUSHALL (SYNC and ASYNC), SWAPDB, and writes whose keys live on different shards
//! (cross-shard RENAME, MSET) are either wholly in a dump or wholly out of it. Each test
//! races BGSAVE against those commands in both snapshot methods with two and three shards
//! and loads every dump it produced with the RDB decoder.

mod common;

use common::{Conn, Server, encode_cmd, info_field, ok, scratch_dir, simple};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const METHODS: [&str; 2] = ["fork", "forkless"];
const SHARDS: [usize; 2] = [2, 3];
/// How long one save may take.
const SAVE_TIMEOUT: Duration = Duration::from_mins(1);

/// A loaded dump: (database, key) → value.
type Dump = BTreeMap<(u32, Vec<u8>), Vec<u8>>;

/// Loads `path` with the RDB decoder; `None` when there is no file.
fn load_dump(path: &Path) -> Option<Dump> {
    use percore_persist::rdb::{LoadOptions, Record, load};
    let data = std::fs::read(path).ok()?;
    let mut out = Dump::new();
    load(&data, &LoadOptions::default(), |rec| {
        if let Record::Entry { db, key, value, .. } = rec {
            let percore_engine::value::Value::Str(s) = value else {
                panic!("only strings are written");
            };
            out.insert((db, key.to_vec()), s.to_bytes().into_owned());
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: not a valid dump: {e}", path.display()));
    Some(out)
}

fn wait_idle(c: &mut Conn) {
    let deadline = Instant::now() + SAVE_TIMEOUT;
    while info_field(c, "persistence", "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "the save did not finish in time");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A server with `shards` shards saving by `method` into a scratch directory.
struct Node {
    server: Server,
    dir: PathBuf,
    shards: usize,
    /// "<method>, <n> shards", for messages.
    what: String,
}

impl Node {
    fn start(shards: usize, method: &str, extra: &[&str]) -> Self {
        let dir = scratch_dir("cut");
        let n = shards.to_string();
        let mut args = vec![
            "--threads",
            &n,
            "--dir",
            dir.to_str().expect("utf-8 path"),
            "--default-bgsave-method",
            method,
        ];
        args.extend_from_slice(extra);
        let server = Server::percore(&args);
        let what = format!("{method}, {shards} shards");
        Self {
            server,
            dir,
            shards,
            what,
        }
    }

    fn dump_path(&self) -> PathBuf {
        self.dir.join("dump.rdb")
    }

    /// Removes the dump, runs one BGSAVE through `c` and waits for it to end: the new
    /// dump, or `None` when a concurrent command cancelled the save. A new connection for
    /// every save lands on any shard (the races need the saver on another shard than the
    /// writer).
    fn bgsave(&self, c: &mut Conn) -> Option<Dump> {
        let _ = std::fs::remove_file(self.dump_path());
        assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
        wait_idle(c);
        load_dump(&self.dump_path())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// xorshift64*: the tests' source of delays, seeded from the clock.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Self(t | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn spin_for(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Keys of generation `n` written after each flush.
const FLUSH_KEYS: usize = 200;
/// Flush trials per method and shard count, at most...
const FLUSH_TRIALS: usize = 250;
/// ...and the time they may take.
const FLUSH_TIME: Duration = Duration::from_secs(12);

/// The FLUSHDB probe: X pipelines a flush (FLUSHDB, FLUSHDB ASYNC, FLUSHALL,
/// FLUSHALL ASYNC in turn) and 200 SETs of generation n in db 3, Y sends BGSAVE 0-300 µs
/// later. A dump may hold generation n-1 whole, or keys of generation n only (the SETs
/// are separate commands: any of them may be missing), never keys of both or part of
/// n-1 (a flush applied on some shards only).
#[test]
fn a_flush_is_never_half_in_a_dump() {
    let failures = on_every_node(|node| {
        let mut failures = Vec::new();
        flush_race(node, 3, FLUSH_TRIALS, &mut failures);
        failures
    });
    assert!(
        failures.is_empty(),
        "dumps holding a flush applied on some shards only:\n{}",
        failures.join("\n")
    );
}

/// The same in cluster mode (database 0 only), where a dump also carries each shard's
/// per-slot key counts (`slot-info`): those must match the keys of the dump.
#[test]
fn a_flush_is_never_half_in_a_cluster_mode_dump() {
    let mut failures = Vec::new();
    for method in METHODS {
        let node = Node::start(2, method, &["--cluster-enabled", "yes"]);
        let mut c = node.server.conn();
        assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
        flush_race(&node, 0, FLUSH_TRIALS / 2, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "dumps holding a flush applied on some shards only:\n{}",
        failures.join("\n")
    );
}

/// One configuration of the flush probe in database `db`; failures are added to
/// `failures`.
fn flush_race(node: &Node, db: u32, max_trials: usize, failures: &mut Vec<String>) {
    let flushes: [&[&str]; 4] = [
        &["FLUSHDB"],
        &["FLUSHDB", "ASYNC"],
        &["FLUSHALL"],
        &["FLUSHALL", "ASYNC"],
    ];
    let mut rng = Rng::new();
    let what = &node.what;
    let mut x = node.server.conn();
    assert_eq!(x.cmd(&["SELECT", &db.to_string()]), ok());
    let generation = |n: usize, flush: &[&str]| {
        let mut bytes = encode_cmd(flush);
        for j in 0..FLUSH_KEYS {
            bytes.extend(encode_cmd(&["SET", &format!("g{n}:{j}"), "v"]));
        }
        bytes
    };
    x.send(&generation(0, &["FLUSHDB"]));
    for _ in 0..=FLUSH_KEYS {
        assert_eq!(x.read_frame(), ok());
    }
    let started = Instant::now();
    let (mut trials, mut checked, mut bad) = (0, 0, 0);
    for n in 1..=max_trials {
        if started.elapsed() > FLUSH_TIME {
            break;
        }
        trials += 1;
        let flush = flushes[n % flushes.len()];
        let _ = std::fs::remove_file(node.dump_path());
        // A new connection each time: the race needs Y on another shard than X.
        let mut y = node.server.conn();
        x.send(&generation(n, flush));
        spin_for(Duration::from_micros(rng.below(300)));
        let dump = node.bgsave(&mut y);
        for j in 0..=FLUSH_KEYS {
            assert_eq!(x.read_frame(), ok(), "trial {n}, reply {j}");
        }
        let Some(dump) = dump else {
            continue; // The flush cancelled the save.
        };
        checked += 1;
        let mut per_gen = BTreeMap::<usize, usize>::new();
        for (key_db, key) in dump.keys() {
            assert_eq!(*key_db, db, "trial {n}: a key outside db {db}: {key:?}");
            let key = String::from_utf8_lossy(key);
            let g = key[1..key.find(':').expect("g<n>:<j>")]
                .parse()
                .expect("a generation");
            *per_gen.entry(g).or_default() += 1;
        }
        let cut_inside = match per_gen.len() {
            0 => false,
            1 => per_gen.get(&(n - 1)).is_some_and(|&k| k != FLUSH_KEYS),
            _ => true,
        };
        if cut_inside {
            bad += 1;
            failures.push(format!(
                "{what}, trial {n} ({}): keys per generation {per_gen:?}",
                flush.join(" ")
            ));
        }
        if let Some(slots) = load_slot_info(&node.dump_path()) {
            let mut want = BTreeMap::<u16, u64>::new();
            for (_, key) in dump.keys() {
                *want
                    .entry(percore_engine::slot::key_hash_slot(key))
                    .or_default() += 1;
            }
            if slots != want {
                failures.push(format!(
                    "{what}, trial {n}: slot-info disagrees with the keys of the dump"
                ));
            }
        }
    }
    println!("{what}: {bad} of {checked} dumps cut inside a flush ({trials} trials)");
    assert!(
        checked * 10 >= trials,
        "{what}: only {checked} of {trials} saves completed"
    );
}

/// Cluster mode: the `slot-info` aux fields of a dump as slot → keys (summed over the
/// shards' fields); `None` when it has none.
fn load_slot_info(path: &Path) -> Option<BTreeMap<u16, u64>> {
    use percore_persist::rdb::{LoadOptions, Record, load};
    let data = std::fs::read(path).ok()?;
    let mut slots = BTreeMap::new();
    let mut any = false;
    load(&data, &LoadOptions::default(), |rec| {
        if let Record::Aux { key, value } = rec
            && key == b"slot-info"
        {
            any = true;
            let v = String::from_utf8_lossy(value);
            let f: Vec<u64> = v.split(',').map(|x| x.parse().expect("a number")).collect();
            *slots.entry(f[0] as u16).or_default() += f[1];
        }
        Ok(())
    })
    .expect("a valid dump");
    slots.retain(|_, k| *k > 0);
    any.then_some(slots)
}

/// Keys per database in the SWAPDB test.
const SWAP_KEYS: usize = 2000;
/// Saves per method and shard count in the SWAPDB test, at most...
const SWAP_SAVES: usize = 60;
/// ...and the time they may take.
const SWAP_TIME: Duration = Duration::from_secs(10);

/// The SWAPDB probe: db0 holds `A:` keys and db1 `B:` keys; three clients send
/// `SWAPDB 0 1` back to back (one at a time: a pipeline of an even number of swaps
/// would leave each shard as it was within one loop iteration) while another saves.
/// Every dump holds one whole database in each.
#[test]
fn a_swapdb_is_never_half_in_a_dump() {
    let mut failures = Vec::new();
    for shards in SHARDS {
        for method in METHODS {
            let node = Node::start(shards, method, &[]);
            let mut c = node.server.conn();
            let n = SWAP_KEYS.to_string();
            assert_eq!(c.cmd(&["DEBUG", "POPULATE", &n, "A"]), ok());
            assert_eq!(c.cmd(&["SELECT", "1"]), ok());
            assert_eq!(c.cmd(&["DEBUG", "POPULATE", &n, "B"]), ok());
            assert_eq!(c.cmd(&["SELECT", "0"]), ok());
            let stop = Arc::new(AtomicBool::new(false));
            let swappers: Vec<_> = (0..3)
                .map(|_| {
                    let stop = Arc::clone(&stop);
                    let mut w = node.server.conn();
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            assert_eq!(w.cmd(&["SWAPDB", "0", "1"]), ok());
                        }
                    })
                })
                .collect();
            let started = Instant::now();
            let (mut saves, mut bad) = (0, 0);
            while saves < SWAP_SAVES && started.elapsed() < SWAP_TIME {
                let dump = node
                    .bgsave(&mut node.server.conn())
                    .expect("SWAPDB never cancels a save");
                saves += 1;
                let mut prefixes = BTreeMap::<(u32, u8), usize>::new();
                for (db, key) in dump.keys() {
                    *prefixes.entry((*db, key[0])).or_default() += 1;
                }
                let whole = prefixes.len() == 2
                    && prefixes.values().all(|&k| k == SWAP_KEYS)
                    && prefixes.keys().map(|(db, _)| *db).collect::<Vec<_>>() == [0, 1]
                    && prefixes.keys().map(|(_, p)| *p).collect::<Vec<_>>() != [b'A', b'A']
                    && prefixes.keys().map(|(_, p)| *p).collect::<Vec<_>>() != [b'B', b'B'];
                if !whole {
                    bad += 1;
                    failures.push(format!(
                        "{method}, {shards} shards, save {saves}: keys per (db, prefix) \
                         {prefixes:?}"
                    ));
                }
            }
            stop.store(true, Ordering::Relaxed);
            for s in swappers {
                s.join().expect("swapper");
            }
            println!("{method}, {shards} shards: {bad} of {saves} dumps cut inside a SWAPDB");
            assert!(saves >= 5, "{method}, {shards} shards: only {saves} saves");
        }
    }
    assert!(
        failures.is_empty(),
        "dumps holding a SWAPDB applied on some shards only:\n{}",
        failures.join("\n")
    );
}

/// A key name owned by `shard` of `shards`, starting with `prefix`.
fn key_on(prefix: &str, shard: usize, shards: usize) -> String {
    (0..100_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| percore_engine::slot::shard_of_key(k.as_bytes(), shards) == shard)
        .expect("some key lands on every shard")
}

/// Saves per method and shard count in the multi-key tests, at most...
const MULTI_SAVES: usize = 40;
/// ...and the time they may take.
const MULTI_TIME: Duration = Duration::from_secs(8);

/// Runs `writer` (given a connection) in a loop on a thread while a client saves up to
/// [`MULTI_SAVES`] times; `check` judges each dump. The saves made, and the errors.
fn race_saves(
    node: &Node,
    mut writer: impl FnMut(&mut Conn) + Send + 'static,
    check: impl Fn(&Dump) -> Result<(), String>,
) -> Vec<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        let mut w = node.server.conn();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                writer(&mut w);
            }
        })
    };
    let started = Instant::now();
    let mut saves = 0;
    let mut failures = Vec::new();
    while saves < MULTI_SAVES && started.elapsed() < MULTI_TIME {
        let dump = node
            .bgsave(&mut node.server.conn())
            .expect("nothing here cancels a save");
        saves += 1;
        if let Err(e) = check(&dump) {
            failures.push(format!("save {saves}: {e}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().expect("writer");
    println!(
        "{}: {} of {saves} dumps cut inside",
        node.what,
        failures.len()
    );
    failures
}

/// Runs `trial` on a fresh node of every shard count and method; its failures, each
/// prefixed with the node's method and shard count.
fn on_every_node(mut trial: impl FnMut(&Node) -> Vec<String>) -> Vec<String> {
    let mut failures = Vec::new();
    for shards in SHARDS {
        for method in METHODS {
            let node = Node::start(shards, method, &[]);
            failures.extend(
                trial(&node)
                    .into_iter()
                    .map(|e| format!("{}, {e}", node.what)),
            );
        }
    }
    failures
}

/// The RENAME probe: `RENAME a b` / `RENAME b a` between two shards while saving.
/// A dump holds the value under exactly one of the two names.
#[test]
fn a_cross_shard_rename_is_never_half_in_a_dump() {
    let failures = on_every_node(|node| {
        let shards = node.shards;
        let mut c = node.server.conn();
        let src = key_on("a", 0, shards);
        let dst = key_on("b", shards - 1, shards);
        assert_eq!(c.cmd(&["SET", &src, "payload"]), ok());
        let batch: Vec<u8> = (0..10)
            .flat_map(|_| {
                let mut v = encode_cmd(&["RENAME", &src, &dst]);
                v.extend(encode_cmd(&["RENAME", &dst, &src]));
                v
            })
            .collect();
        race_saves(
            node,
            move |w| {
                w.send(&batch);
                for _ in 0..20 {
                    assert_eq!(w.read_frame(), ok());
                }
            },
            |dump| {
                let has = |k: &str| dump.get(&(0, k.as_bytes().to_vec()));
                match (has(&src), has(&dst)) {
                    (Some(v), None) | (None, Some(v)) if v == b"payload" => Ok(()),
                    (in_a, in_b) => Err(format!("{src}: {in_a:?}, {dst}: {in_b:?}")),
                }
            },
        )
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// MSET over keys on every shard, each round with a new value: a dump holds one round's
/// value in every key.
#[test]
fn a_cross_shard_mset_is_never_half_in_a_dump() {
    let failures = on_every_node(|node| {
        let shards = node.shards;
        let keys: Vec<String> = (0..shards)
            .flat_map(|s| [key_on("m", s, shards), key_on("n", s, shards)])
            .collect();
        let mset = move |round: u64| {
            let mut args = vec!["MSET".to_owned()];
            for k in &keys {
                args.push(k.clone());
                args.push(round.to_string());
            }
            encode_cmd(&args)
        };
        let mut c = node.server.conn();
        c.send(&mset(0));
        assert_eq!(c.read_frame(), ok());
        let keys: Vec<String> = (0..shards)
            .flat_map(|s| [key_on("m", s, shards), key_on("n", s, shards)])
            .collect();
        let mut round = 0;
        race_saves(
            node,
            move |w| {
                let batch: Vec<u8> = (0..10)
                    .flat_map(|_| {
                        round += 1;
                        mset(round)
                    })
                    .collect();
                w.send(&batch);
                for _ in 0..10 {
                    assert_eq!(w.read_frame(), ok());
                }
            },
            |dump| {
                let values: Vec<_> = keys
                    .iter()
                    .map(|k| dump.get(&(0, k.as_bytes().to_vec())).cloned())
                    .collect();
                if values.windows(2).all(|w| w[0] == w[1]) && values[0].is_some() {
                    Ok(())
                } else {
                    Err(format!("values {values:?}"))
                }
            },
        )
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Trials per shard count of the SHUTDOWN test (each starts a server).
const SHUTDOWN_TRIALS: usize = 15;

/// Sends `cmds` in turn, one at a time, each answered `+OK`, until the server goes away.
fn until_closed(port: u16, cmds: Vec<Vec<u8>>) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    for cmd in cmds.iter().cycle() {
        if s.write_all(cmd).is_err() {
            return;
        }
        let mut reply = [0u8; 5];
        if s.read_exact(&mut reply).is_err() {
            return;
        }
        assert_eq!(&reply, b"+OK\r\n");
    }
}

/// SHUTDOWN's final save runs at the cancel barrier: while one client swaps databases 0
/// and 1 and another renames a key back and forth between two shards in database 2, the
/// dump holds each database whole and the key under exactly one name.
#[test]
fn the_final_save_at_shutdown_is_never_inside_a_multi_shard_command() {
    let mut rng = Rng::new();
    let mut failures = Vec::new();
    for shards in SHARDS {
        for trial in 0..SHUTDOWN_TRIALS {
            let mut node = Node::start(shards, "forkless", &[]);
            let port = node.server.port();
            let mut c = node.server.conn();
            let n = (SWAP_KEYS / 4).to_string();
            assert_eq!(c.cmd(&["DEBUG", "POPULATE", &n, "A"]), ok());
            assert_eq!(c.cmd(&["SELECT", "1"]), ok());
            assert_eq!(c.cmd(&["DEBUG", "POPULATE", &n, "B"]), ok());
            let src = key_on("a", 0, shards);
            let dst = key_on("b", shards - 1, shards);
            assert_eq!(c.cmd(&["SELECT", "2"]), ok());
            assert_eq!(c.cmd(&["SET", &src, "payload"]), ok());
            let swapper = std::thread::spawn(move || {
                until_closed(port, vec![encode_cmd(&["SWAPDB", "0", "1"])]);
            });
            let renames = vec![
                encode_cmd(&["SELECT", "2"]),
                encode_cmd(&["RENAME", &src, &dst]),
                encode_cmd(&["RENAME", &dst, &src]),
                encode_cmd(&["RENAME", &src, &dst]),
                encode_cmd(&["RENAME", &dst, &src]),
            ];
            let renamer = std::thread::spawn(move || until_closed(port, renames));
            std::thread::sleep(Duration::from_micros(2000 + rng.below(3000)));
            c.send(&encode_cmd(&["SHUTDOWN", "SAVE"]));
            assert!(
                node.server.wait_exit(Duration::from_secs(20)).is_some(),
                "the server did not exit"
            );
            swapper.join().expect("swapper");
            renamer.join().expect("renamer");
            let dump = load_dump(&node.dump_path()).expect("SHUTDOWN SAVE wrote a dump");
            let mut prefixes = BTreeMap::<(u32, u8), usize>::new();
            for (db, key) in dump.keys().filter(|(db, _)| *db < 2) {
                *prefixes.entry((*db, key[0])).or_default() += 1;
            }
            let keys = SWAP_KEYS / 4;
            if prefixes.len() != 2 || prefixes.values().any(|&k| k != keys) {
                failures.push(format!(
                    "{shards} shards, trial {trial}: keys per (db, prefix) {prefixes:?}"
                ));
            }
            let has = |k: &str| dump.contains_key(&(2, k.as_bytes().to_vec()));
            let (in_src, in_dst) = (
                has(&key_on("a", 0, shards)),
                has(&key_on("b", shards - 1, shards)),
            );
            if in_src == in_dst {
                failures.push(format!(
                    "{shards} shards, trial {trial}: renamed key under source {in_src}, \
                     destination {in_dst}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
