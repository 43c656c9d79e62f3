//! Randomized differential test for sets and sorted sets: seeded random sequences of set,
//! sorted-set and keyspace commands against a real `redis-server` 7.0 and percore (one
//! and two shards), in RESP2 and RESP3, replies compared byte for byte.
//!
//! Replies whose order Redis leaves unspecified (SMEMBERS, SINTER, SUNION, SDIFF,
//! SSCAN of a hash-table set) are compared with their elements sorted. Random picks are
//! drawn only where the result is determined: SPOP and SRANDMEMBER/ZRANDMEMBER with a
//! count that covers the whole collection (compared sorted), otherwise only the reply's
//! length. ZMPOP's keys share a hash tag (percore answers CROSSSLOT for keys on
//! different shards, see the README).
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Rng, Server, assert_same_reply};

const SEEDS: [u64; 10] = [
    0x5e75_0001,
    0x2e75_beef,
    0x0dd_5e75,
    0xfeed_2e75,
    1,
    2,
    3,
    4,
    5,
    6,
];
const COMMANDS: usize = 1000;

const SET_KEYS: [&str; 5] = ["s1", "s2", "{t}s3", "{t}s4", "str"];
const ZSET_KEYS: [&str; 5] = ["z1", "z2", "{t}z3", "{t}z4", "str"];
const MEMBERS: [&str; 14] = [
    "1",
    "2",
    "3",
    "-5",
    "100",
    "70000",
    "a",
    "b",
    "c",
    "hello",
    "01",
    "",
    "x y",
    "3000000000",
];
const SCORES: [&str; 16] = [
    "0", "1", "2", "-1", "0.5", "1.5", "-2.25", "1e3", "inf", "-inf", "+inf", "-0", "0.1", "abc",
    "nan", "3",
];
const RANGE_ENDS: [&str; 12] = [
    "-inf", "+inf", "0", "(0", "1", "(1", "2.5", "(2", "-1", "x", "(inf", "1e3",
];
const LEX_ENDS: [&str; 9] = ["-", "+", "[a", "(a", "[b", "(c", "[hello", "x", "[1"];
const INDEXES: [&str; 10] = ["0", "1", "-1", "2", "-2", "10", "-10", "3", "x", "0"];

fn some(r: &mut Rng, items: &[&str], max: usize) -> Vec<String> {
    let n = 1 + r.below(max);
    (0..n).map(|_| r.pick(items).to_owned()).collect()
}

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Exact,
    /// Elements sorted (unordered collections).
    Sorted,
    /// Only the reply's header line (its length).
    Header,
}

/// A set or sorted-set key.
fn any_key(r: &mut Rng) -> String {
    if r.chance(50) {
        r.pick(&SET_KEYS).to_owned()
    } else {
        r.pick(&ZSET_KEYS).to_owned()
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

fn command(r: &mut Rng) -> (Vec<String>, Cmp) {
    let sk = |r: &mut Rng| r.pick(&SET_KEYS).to_owned();
    let zk = |r: &mut Rng| r.pick(&ZSET_KEYS).to_owned();
    let mut cmp = Cmp::Exact;
    let args: Vec<String> = match r.below(100) {
        0..=9 => {
            let mut a = vec!["SADD".to_owned(), sk(r)];
            a.extend(some(r, &MEMBERS, 5));
            a
        }
        10..=13 => {
            let mut a = vec!["SREM".to_owned(), sk(r)];
            a.extend(some(r, &MEMBERS, 3));
            a
        }
        14..=15 => vec!["SISMEMBER".to_owned(), sk(r), r.pick(&MEMBERS).to_owned()],
        16 => {
            let mut a = vec!["SMISMEMBER".to_owned(), sk(r)];
            a.extend(some(r, &MEMBERS, 3));
            a
        }
        17 => vec!["SCARD".to_owned(), sk(r)],
        20 => {
            cmp = Cmp::Sorted;
            vec!["SPOP".to_owned(), sk(r), "100".to_owned()]
        }
        21 => {
            let c = r.pick(&["100", "2", "-3", "0", "x"]);
            cmp = if c == "100" || c == "0" || c == "x" {
                Cmp::Sorted
            } else {
                Cmp::Header
            };
            vec!["SRANDMEMBER".to_owned(), sk(r), c.to_owned()]
        }
        22..=23 => vec![
            "SMOVE".to_owned(),
            sk(r),
            sk(r),
            r.pick(&MEMBERS).to_owned(),
        ],
        24..=27 => {
            let name = r.pick(&["SINTER", "SUNION", "SDIFF"]);
            cmp = Cmp::Sorted;
            let mut a = vec![name.to_owned()];
            a.extend((0..=r.below(3)).map(|_| sk(r)));
            a
        }
        28..=30 => {
            let name = r.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
            let mut a = vec![name.to_owned(), sk(r)];
            a.extend((0..=r.below(3)).map(|_| sk(r)));
            a
        }
        31 => {
            let mut a = vec![
                "SINTERCARD".to_owned(),
                r.pick(&["1", "2", "0", "3"]).to_owned(),
            ];
            a.extend((0..2).map(|_| sk(r)));
            if r.chance(40) {
                a.push("LIMIT".to_owned());
                a.push(r.pick(&["0", "1", "-1"]).to_owned());
            }
            a
        }
        32 => {
            cmp = Cmp::Sorted;
            vec![
                "SSCAN".to_owned(),
                sk(r),
                "0".to_owned(),
                "COUNT".to_owned(),
                "1000".to_owned(),
            ]
        }
        33..=44 => {
            let mut a = vec!["ZADD".to_owned(), zk(r)];
            for opt in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                if r.chance(8) {
                    a.push(opt.to_owned());
                }
            }
            for _ in 0..=r.below(4) {
                a.push(r.pick(&SCORES).to_owned());
                a.push(r.pick(&MEMBERS).to_owned());
            }
            a
        }
        45..=46 => vec![
            "ZINCRBY".to_owned(),
            zk(r),
            r.pick(&SCORES).to_owned(),
            r.pick(&MEMBERS).to_owned(),
        ],
        47..=48 => {
            let mut a = vec!["ZREM".to_owned(), zk(r)];
            a.extend(some(r, &MEMBERS, 3));
            a
        }
        49 => vec!["ZCARD".to_owned(), zk(r)],
        50..=51 => vec!["ZSCORE".to_owned(), zk(r), r.pick(&MEMBERS).to_owned()],
        52 => {
            let mut a = vec!["ZMSCORE".to_owned(), zk(r)];
            a.extend(some(r, &MEMBERS, 3));
            a
        }
        53..=54 => vec![
            r.pick(&["ZRANK", "ZREVRANK"]).to_owned(),
            zk(r),
            r.pick(&MEMBERS).to_owned(),
        ],
        55 => vec![
            "ZCOUNT".to_owned(),
            zk(r),
            r.pick(&RANGE_ENDS).to_owned(),
            r.pick(&RANGE_ENDS).to_owned(),
        ],
        56 => vec![
            "ZLEXCOUNT".to_owned(),
            zk(r),
            r.pick(&LEX_ENDS).to_owned(),
            r.pick(&LEX_ENDS).to_owned(),
        ],
        57..=64 => {
            let by = r.below(3);
            let name = match by {
                0 => r.pick(&["ZRANGE", "ZREVRANGE"]),
                1 => r.pick(&["ZRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]),
                _ => r.pick(&["ZRANGE", "ZRANGEBYLEX", "ZREVRANGEBYLEX"]),
            };
            let ends: &[&str] = match by {
                0 => &INDEXES,
                1 => &RANGE_ENDS,
                _ => &LEX_ENDS,
            };
            let mut a = vec![
                name.to_owned(),
                zk(r),
                r.pick(ends).to_owned(),
                r.pick(ends).to_owned(),
            ];
            if name == "ZRANGE" {
                if by == 1 {
                    a.push("BYSCORE".to_owned());
                }
                if by == 2 {
                    a.push("BYLEX".to_owned());
                }
                if r.chance(30) {
                    a.push("REV".to_owned());
                }
            }
            if r.chance(30) {
                a.push("LIMIT".to_owned());
                a.push(r.pick(&["0", "1", "-1", "2"]).to_owned());
                a.push(r.pick(&["1", "2", "-1", "0", "10"]).to_owned());
            }
            if r.chance(40) {
                a.push("WITHSCORES".to_owned());
            }
            a
        }
        65..=66 => vec![
            "ZRANGESTORE".to_owned(),
            zk(r),
            zk(r),
            r.pick(&INDEXES).to_owned(),
            r.pick(&INDEXES).to_owned(),
        ],
        67..=68 => {
            let kind = r.below(3);
            let (name, ends): (&str, &[&str]) = match kind {
                0 => ("ZREMRANGEBYRANK", &INDEXES),
                1 => ("ZREMRANGEBYSCORE", &RANGE_ENDS),
                _ => ("ZREMRANGEBYLEX", &LEX_ENDS),
            };
            vec![
                name.to_owned(),
                zk(r),
                r.pick(ends).to_owned(),
                r.pick(ends).to_owned(),
            ]
        }
        69..=71 => {
            let mut a = vec![r.pick(&["ZPOPMIN", "ZPOPMAX"]).to_owned(), zk(r)];
            if r.chance(50) {
                a.push(r.pick(&["0", "1", "2", "10", "-1"]).to_owned());
            }
            a
        }
        72 => {
            let mut a = vec![
                "ZMPOP".to_owned(),
                "2".to_owned(),
                "{t}z3".to_owned(),
                "{t}z4".to_owned(),
            ];
            a.push(r.pick(&["MIN", "MAX"]).to_owned());
            if r.chance(50) {
                a.push("COUNT".to_owned());
                a.push(r.pick(&["1", "3", "0"]).to_owned());
            }
            a
        }
        73 => {
            let c = r.pick(&["100", "2", "-3", "0"]);
            cmp = if c == "100" || c == "0" {
                Cmp::Sorted
            } else {
                Cmp::Header
            };
            let mut a = vec!["ZRANDMEMBER".to_owned(), zk(r), c.to_owned()];
            if c != "100" && r.chance(50) {
                a.push("WITHSCORES".to_owned());
            }
            a
        }
        74..=79 => {
            let name = r.pick(&[
                "ZUNION",
                "ZINTER",
                "ZDIFF",
                "ZUNIONSTORE",
                "ZINTERSTORE",
                "ZDIFFSTORE",
                "ZINTERCARD",
            ]);
            let mut a = vec![name.to_owned()];
            if name.ends_with("STORE") {
                a.push(zk(r));
            }
            let n = 1 + r.below(3);
            a.push(n.to_string());
            for _ in 0..n {
                a.push(if r.chance(20) { sk(r) } else { zk(r) });
            }
            if !name.starts_with("ZDIFF") && name != "ZINTERCARD" {
                if r.chance(30) {
                    a.push("WEIGHTS".to_owned());
                    for _ in 0..n {
                        a.push(r.pick(&["1", "2", "-1", "0.5", "0"]).to_owned());
                    }
                }
                if r.chance(30) {
                    a.push("AGGREGATE".to_owned());
                    a.push(r.pick(&["SUM", "MIN", "MAX", "AVG"]).to_owned());
                }
            }
            if !name.ends_with("STORE") && name != "ZINTERCARD" && r.chance(50) {
                a.push("WITHSCORES".to_owned());
            }
            a
        }
        80 => vec![
            "ZSCAN".to_owned(),
            zk(r),
            "0".to_owned(),
            "COUNT".to_owned(),
            "1000".to_owned(),
        ],
        81..=84 => vec!["OBJECT".to_owned(), "ENCODING".to_owned(), any_key(r)],
        85..=86 => vec!["TYPE".to_owned(), any_key(r)],
        87..=88 => vec![
            r.pick(&["RENAME", "COPY"]).to_owned(),
            any_key(r),
            any_key(r),
        ],
        89 => vec!["DEL".to_owned(), any_key(r)],
        90 => s(&["SET", "str", "v"]),
        18..=19 | 91..=92 => {
            cmp = Cmp::Sorted;
            vec!["SMEMBERS".to_owned(), sk(r)]
        }
        _ => {
            let mut a = vec!["ZRANGE".to_owned(), zk(r), "0".to_owned(), "-1".to_owned()];
            a.push("WITHSCORES".to_owned());
            a
        }
    };
    (args, cmp)
}

/// Splits a reply into its header line and its element lines (one per bulk or scalar).
fn sorted_reply(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let mut lines: Vec<&str> = text.split("\r\n").collect();
    if lines.len() < 2 || !(lines[0].starts_with('*') || lines[0].starts_with('~')) {
        return reply.to_vec();
    }
    // SSCAN: "*2", "$1", cursor, "*n", items...: keep the cursor, sort the items.
    let head_len = if lines.len() > 4 && lines[3].starts_with('*') && lines[0] == "*2" {
        4
    } else {
        1
    };
    let head: Vec<&str> = lines.drain(..head_len).collect();
    let mut items: Vec<String> = lines
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| format!("{}\r\n{}", c[0], c[1]))
        .collect();
    items.sort();
    let mut out = head.join("\r\n");
    out.push_str("\r\n");
    for i in items {
        out.push_str(&i);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn header(reply: &[u8]) -> Vec<u8> {
    reply
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .to_vec()
}

fn run_seed(redis: &Server, percore: &Server, seed: u64, resp3: bool) {
    let mut r = redis.conn();
    let mut p = percore.conn();
    for c in [&mut r, &mut p] {
        assert_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
        if resp3 {
            c.cmd_raw(&["HELLO", "3"]);
        }
    }
    let mut rng = Rng(seed);
    let mut history = String::new();
    for i in 0..COMMANDS {
        let (args, cmp) = command(&mut rng);
        let line = common::command_line(&args);
        let (mut want, mut got) = (r.cmd_raw(&args), p.cmd_raw(&args));
        match cmp {
            Cmp::Exact => {}
            Cmp::Sorted => {
                want = sorted_reply(&want);
                got = sorted_reply(&got);
            }
            Cmp::Header => {
                want = header(&want);
                got = header(&got);
            }
        }
        let what = format!("seed {seed:#x} resp3 {resp3}, command #{i}");
        assert_same_reply(&want, &got, &what, &line, &mut history);
    }
}

fn run_all(threads: usize) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(threads);
    for (k, seed) in SEEDS.into_iter().enumerate() {
        run_seed(&redis, &percore, seed, k % 2 == 1);
    }
}

#[test]
fn random_sets_and_sorted_sets_one_shard() {
    run_all(1);
}

#[test]
fn random_sets_and_sorted_sets_two_shards() {
    run_all(2);
}
