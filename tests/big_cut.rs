//! A forkless BGSAVE while a client writes to large values (issue 14, "forkless cut with
//! big values"): a list, a sorted set, a hash and a set of tens of thousands of elements
//! each are written all through the save (in place, added, removed). Large lists and
//! sorted sets are frozen at the cut and serialized by the writer thread while the live
//! values go on changing (see `percore_engine::frozen`). The dump must hold exactly the
//! state at the cut: it is loaded with the RDB decoder and compared with a model of the
//! client's writes replayed up to the cut, which is found from the writes' traces in the
//! dump. `redis-check-rdb` accepts the last dump and redis-server loads it.

mod common;

use common::{Conn, Server, info_field, ok, scratch_dir, simple};
use percore_engine::value::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Elements in each large value: several times `FREEZE_MIN_ELEMENTS`.
const ELEMENTS: usize = 40_000;
/// Small keys that make the save last (with `rdb-key-save-delay`).
const FILLER_KEYS: usize = 3000;
const KEY_DELAY_US: &str = "100";
const SAVES: usize = 2;
const SAVE_TIMEOUT: Duration = Duration::from_mins(1);
/// Ops after the last one whose trace is in the dump that the cut may follow (a trace
/// can be erased by a later op, e.g. an HSET's value by an HDEL of the same field).
const CUT_SEARCH_OPS: usize = 40;

/// One client write. `i` is its index in the run, the trace it leaves where it can.
#[derive(Clone, Debug)]
enum Op {
    LSet(usize, usize),
    RPush(usize),
    LPop,
    ZScore(usize, usize),
    ZAddNew(usize),
    ZRem(usize),
    HSet(usize, usize),
    HDel(usize),
    SAdd(usize),
    SRem(usize),
}

impl Op {
    fn make(i: usize, rng: &mut common::Rng, list_len: usize) -> Self {
        let j = rng.below(ELEMENTS);
        match i % 10 {
            0 => Op::LSet(rng.below(list_len), i),
            1 => Op::RPush(i),
            2 => Op::LPop,
            3 => Op::ZScore(j, i),
            4 => Op::ZAddNew(i),
            5 => Op::ZRem(j),
            6 => Op::HSet(j, i),
            7 => Op::HDel(j),
            8 => Op::SAdd(i),
            _ => Op::SRem(j),
        }
    }

    fn command(&self) -> Vec<String> {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match *self {
            Op::LSet(at, i) => v(&["LSET", "L", &at.to_string(), &format!("w:{i}")]),
            Op::RPush(i) => v(&["RPUSH", "L", &format!("w:{i}")]),
            Op::LPop => v(&["LPOP", "L"]),
            Op::ZScore(j, i) => v(&["ZADD", "Z", &score_of(i).to_string(), &format!("m:{j}")]),
            Op::ZAddNew(i) => v(&["ZADD", "Z", &i.to_string(), &format!("w:{i}")]),
            Op::ZRem(j) => v(&["ZREM", "Z", &format!("m:{j}")]),
            Op::HSet(j, i) => v(&["HSET", "H", &format!("f:{j}"), &format!("w:{i}")]),
            Op::HDel(j) => v(&["HDEL", "H", &format!("f:{j}")]),
            Op::SAdd(i) => v(&["SADD", "S", &format!("w:{i}")]),
            Op::SRem(j) => v(&["SREM", "S", &format!("m:{j}")]),
        }
    }
}

/// The score a `ZScore` op of index `i` sets: recognizable as a trace.
fn score_of(i: usize) -> f64 {
    1e9 + i as f64
}

/// The four large values, as the test compares them.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    list: VecDeque<String>,
    zset: BTreeMap<String, f64>,
    hash: BTreeMap<String, String>,
    set: BTreeSet<String>,
}

impl State {
    fn initial() -> Self {
        let mut s = State::default();
        for j in 0..ELEMENTS {
            s.list.push_back(format!("m:{j}"));
            s.zset.insert(format!("m:{j}"), j as f64);
            s.hash.insert(format!("f:{j}"), format!("v:{j}"));
            s.set.insert(format!("m:{j}"));
        }
        s
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::LSet(at, i) => self.list[at] = format!("w:{i}"),
            Op::RPush(i) => self.list.push_back(format!("w:{i}")),
            Op::LPop => {
                self.list.pop_front();
            }
            Op::ZScore(j, i) => {
                self.zset.insert(format!("m:{j}"), score_of(i));
            }
            Op::ZAddNew(i) => {
                self.zset.insert(format!("w:{i}"), i as f64);
            }
            Op::ZRem(j) => {
                self.zset.remove(&format!("m:{j}"));
            }
            Op::HSet(j, i) => {
                self.hash.insert(format!("f:{j}"), format!("w:{i}"));
            }
            Op::HDel(j) => {
                self.hash.remove(&format!("f:{j}"));
            }
            Op::SAdd(i) => {
                self.set.insert(format!("w:{i}"));
            }
            Op::SRem(j) => {
                self.set.remove(&format!("m:{j}"));
            }
        }
    }

    /// The highest op index whose trace this state holds.
    fn last_trace(&self) -> Option<usize> {
        let w = |s: &str| s.strip_prefix("w:").and_then(|n| n.parse::<usize>().ok());
        let list = self.list.iter().filter_map(|s| w(s));
        let zset = self.zset.iter().filter_map(|(m, &s)| {
            w(m).or_else(|| (s >= score_of(0)).then(|| (s - score_of(0)) as usize))
        });
        let hash = self.hash.values().filter_map(|v| w(v));
        let set = self.set.iter().filter_map(|m| w(m));
        list.chain(zset).chain(hash).chain(set).max()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("utf-8 element")
}

/// The four large values in a dump, loaded with the RDB decoder; also counts the keys.
fn load_dump(path: &Path) -> (State, usize) {
    use percore_persist::rdb::{LoadOptions, Record, load};
    let data = std::fs::read(path).expect("the dump exists");
    let mut s = State::default();
    let mut keys = 0;
    load(&data, &LoadOptions::default(), |rec| {
        if let Record::Entry { key, value, .. } = rec {
            keys += 1;
            match (key, value) {
                (b"L", Value::List(l)) => {
                    s.list = l.iter().map(|v| text(&v.to_bytes())).collect();
                }
                (b"Z", Value::ZSet(z)) => z.for_ranks(0, z.len(), false, |score, m| {
                    s.zset.insert(text(m), score);
                }),
                (b"H", Value::Hash(h)) => {
                    for (f, v) in &h {
                        s.hash.insert(text(&f.to_bytes()), text(&v.to_bytes()));
                    }
                }
                (b"S", Value::Set(set)) => {
                    s.set = set.members().iter().map(|m| text(m)).collect();
                }
                (k, v) if k.starts_with(b"filler:") => assert!(matches!(v, Value::Str(_))),
                (k, v) => panic!("unexpected key {:?}: {v:?}", text(k)),
            }
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: not a valid dump: {e}", path.display()));
    (s, keys)
}

fn populate(c: &mut Conn) {
    const BATCH: usize = 1000;
    for from in (0..ELEMENTS).step_by(BATCH) {
        let range = from..(from + BATCH).min(ELEMENTS);
        let mut list = vec!["RPUSH".to_owned(), "L".to_owned()];
        let mut zset = vec!["ZADD".to_owned(), "Z".to_owned()];
        let mut hash = vec!["HSET".to_owned(), "H".to_owned()];
        let mut set = vec!["SADD".to_owned(), "S".to_owned()];
        for j in range {
            list.push(format!("m:{j}"));
            zset.extend([j.to_string(), format!("m:{j}")]);
            hash.extend([format!("f:{j}"), format!("v:{j}")]);
            set.push(format!("m:{j}"));
        }
        for cmd in [list, zset, hash, set] {
            assert!(!matches!(c.cmd(&cmd), percore_net::resp::Frame::Error(_)));
        }
    }
    for k in 0..FILLER_KEYS {
        assert_eq!(c.cmd(&["SET", &format!("filler:{k}"), "x"]), ok());
    }
}

#[test]
fn writes_to_large_values_during_a_forkless_save_keep_the_cut() {
    let dir = scratch_dir("big-cut");
    let d = dir.to_str().expect("utf-8 path").to_owned();
    let server = Server::percore(&[
        "--threads",
        "2",
        "--dir",
        &d,
        "--default-bgsave-method",
        "forkless",
    ]);
    let mut c = server.conn();
    populate(&mut c);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", KEY_DELAY_US]),
        ok()
    );

    // The writer: a sequential client (each write answered before the next), so the
    // state at any cut is the state after a prefix of its ops.
    let ops: Arc<Mutex<Vec<Op>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (ops, stop, written) = (Arc::clone(&ops), Arc::clone(&stop), Arc::clone(&written));
        let mut w = server.conn();
        std::thread::spawn(move || {
            let mut rng = common::Rng(0x00b1_9c07);
            let mut list_len = ELEMENTS;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let op = Op::make(i, &mut rng, list_len);
                match op {
                    Op::RPush(_) => list_len += 1,
                    Op::LPop => list_len -= 1,
                    _ => {}
                }
                ops.lock().expect("ops").push(op.clone());
                let reply = w.cmd(&op.command());
                assert!(
                    !matches!(reply, percore_net::resp::Frame::Error(_)),
                    "{op:?}: {reply:?}"
                );
                written.store(i + 1, Ordering::Relaxed);
                i += 1;
            }
        })
    };

    let dump = dir.join("dump.rdb");
    for save in 0..SAVES {
        // Let some writes land between saves.
        let before = written.load(Ordering::Relaxed);
        while written.load(Ordering::Relaxed) < before + 200 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = std::fs::remove_file(&dump);
        let mut s = server.conn();
        assert_eq!(s.cmd(&["BGSAVE"]), simple("Background saving started"));
        let deadline = Instant::now() + SAVE_TIMEOUT;
        while info_field(&mut s, "persistence", "rdb_bgsave_in_progress") != "0" {
            assert!(Instant::now() < deadline, "the save did not finish in time");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            info_field(&mut s, "persistence", "rdb_last_bgsave_status"),
            "ok"
        );
        let during = written.load(Ordering::Relaxed) - before;
        // The list and the sorted set were frozen (by a write or by the walk), not copied.
        let frozen: u64 = info_field(&mut s, "persistence", "rdb_last_forkless_frozen_values")
            .parse()
            .expect("a count");
        assert_eq!(frozen, 2, "save {save}: large values frozen");

        let (got, keys) = load_dump(&dump);
        assert_eq!(keys, 4 + FILLER_KEYS, "save {save}: keys in the dump");
        let ops = ops.lock().expect("ops").clone();
        let from = got.last_trace().map_or(0, |i| i + 1);
        let mut model = State::initial();
        for op in &ops[..from.min(ops.len())] {
            model.apply(op);
        }
        let mut cut = None;
        for k in from..=(from + CUT_SEARCH_OPS).min(ops.len()) {
            if model == got {
                cut = Some(k);
                break;
            }
            if k < ops.len() {
                model.apply(&ops[k]);
            }
        }
        assert!(
            cut.is_some(),
            "save {save}: the dump is not the state after any prefix of the writes \
             (last trace {from}, {} ops written, {during} during the save)",
            ops.len()
        );
        assert!(
            during > 0,
            "save {save}: no write landed during the save; the test proved nothing"
        );
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");

    if common::redis_server_available() {
        common::check_rdb(&dump);
        let (want, _) = load_dump(&dump);
        let redis = Server::redis_with(&["--dir", &d]).expect("redis-server present");
        let mut r = redis.conn();
        let n = |f: percore_net::resp::Frame| match f {
            percore_net::resp::Frame::Int(n) => n as usize,
            other => panic!("not a count: {other:?}"),
        };
        assert_eq!(n(r.cmd(&["LLEN", "L"])), want.list.len());
        assert_eq!(n(r.cmd(&["ZCARD", "Z"])), want.zset.len());
        assert_eq!(n(r.cmd(&["HLEN", "H"])), want.hash.len());
        assert_eq!(n(r.cmd(&["SCARD", "S"])), want.set.len());
        assert_eq!(n(r.cmd(&["DBSIZE"])), 4 + FILLER_KEYS);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
