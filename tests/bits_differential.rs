//! Differential tests of the bitmap, HyperLogLog and LCS commands against a real
//! `redis-server`: seeded random sequences (RESP2 and RESP3, percore with 1 and 2 shards)
//! compared byte for byte, and HyperLogLog strings carried both ways with GET/SET.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Rng, Server, show};

const SEEDS: [u64; 4] = [0xb175_0001, 0x0000_4411, 0x00c0_ffee, 0xface_b00c];
/// Commands per seed and protocol.
const COMMANDS: usize = 400;
/// Keys; `{t}` ones share a shard, the others spread over two shards.
const KEYS: [&str; 6] = ["a", "b", "{t}x", "{t}y", "h1", "h2"];

fn int(r: &mut Rng, lo: i64, hi: i64) -> String {
    (lo + (r.next() % (hi - lo + 1) as u64) as i64).to_string()
}

fn command(r: &mut Rng) -> Vec<String> {
    let key = |r: &mut Rng| r.pick(&KEYS).to_owned();
    let mut a: Vec<String>;
    let s = |x: &str| x.to_owned();
    match r.below(16) {
        0 | 1 => {
            a = vec![
                s("SETBIT"),
                key(r),
                int(r, -1, 200),
                r.pick(&["0", "1", "1", "2"]).into(),
            ];
        }
        2 => a = vec![s("GETBIT"), key(r), int(r, -1, 200)],
        3 => {
            a = vec![s("BITCOUNT"), key(r)];
            if r.below(3) > 0 {
                a.push(int(r, -30, 30));
                a.push(int(r, -30, 30));
                if r.below(2) == 0 {
                    a.push(r.pick(&["BIT", "byte", "bits"]).into());
                }
            }
        }
        4 => {
            a = vec![
                s("BITPOS"),
                key(r),
                r.pick(&["0", "1", "1", "0", "2"]).into(),
            ];
            for _ in 0..r.below(4) {
                a.push(int(r, -30, 30));
            }
            if a.len() == 6 {
                a[5] = r.pick(&["BIT", "BYTE", "x"]).into();
            }
        }
        5 => {
            let op = r.pick(&["AND", "or", "XOR", "NOT", "nope"]);
            a = vec![s("BITOP"), s(op), key(r)];
            let n = if op == "NOT" && r.below(4) > 0 {
                1
            } else {
                1 + r.below(3)
            };
            for _ in 0..n {
                a.push(key(r));
            }
        }
        6 | 7 => {
            a = vec![s(r.pick(&["BITFIELD", "BITFIELD", "BITFIELD_RO"])), key(r)];
            for _ in 0..r.below(4) {
                let ty = r.pick(&["i8", "u8", "i5", "u1", "i64", "u63", "u64", "i16", "x"]);
                let off = if r.below(4) == 0 {
                    format!("#{}", r.below(5))
                } else {
                    int(r, -1, 90)
                };
                match r.below(5) {
                    0 => a.extend([s("GET"), s(ty), off]),
                    1 => a.extend([s("SET"), s(ty), off, int(r, -300, 300)]),
                    2 => a.extend([s("INCRBY"), s(ty), off, int(r, -300, 300)]),
                    3 => a.extend([s("OVERFLOW"), s(r.pick(&["WRAP", "sat", "FAIL", "bad"]))]),
                    _ => a.extend([s("INCRBY"), s(ty), off, s("9223372036854775807")]),
                }
            }
        }
        8 | 9 => {
            a = vec![s("PFADD"), key(r)];
            for _ in 0..r.below(6) {
                a.push(int(r, 0, 3000));
            }
        }
        10 => {
            a = vec![s("PFADD"), key(r)];
            let base = r.below(1_000_000);
            for i in 0..r.below(400) {
                a.push((base + i).to_string());
            }
        }
        11 => {
            a = vec![s("PFCOUNT")];
            for _ in 0..=r.below(3) {
                a.push(key(r));
            }
        }
        12 => {
            a = vec![s("PFMERGE")];
            for _ in 0..=r.below(3) {
                a.push(key(r));
            }
        }
        13 => a = vec![s("GET"), key(r)],
        14 => {
            a = vec![s("LCS"), key(r), key(r)];
            for _ in 0..r.below(3) {
                match r.below(5) {
                    0 => a.push(s("LEN")),
                    1 => a.push(s("IDX")),
                    2 => a.push(s("WITHMATCHLEN")),
                    3 => a.extend([s("MINMATCHLEN"), int(r, -1, 3)]),
                    _ => a.push(s("bogus")),
                }
            }
        }
        _ => {
            let v = r.pick(&[
                "hello world",
                "ohmytext",
                "mynewtext",
                "12345",
                "",
                "\u{ff}\u{00}",
            ]);
            a = vec![s("SET"), key(r), s(v)];
        }
    }
    a
}

fn run(threads: usize, resp3: bool) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(threads);
    for seed in SEEDS {
        let mut rc = redis.conn();
        let mut pc = percore.conn();
        for c in [&mut rc, &mut pc] {
            c.cmd_raw(&["FLUSHALL"]);
            if resp3 {
                c.cmd_raw(&["HELLO", "3"]);
            }
        }
        let mut r = Rng(seed);
        for i in 0..COMMANDS {
            let cmd = command(&mut r);
            let want = rc.cmd_raw(&cmd);
            let got = pc.cmd_raw(&cmd);
            assert_eq!(
                show(&got),
                show(&want),
                "threads {threads} resp3 {resp3} seed {seed:#x} command {i}: {cmd:?}"
            );
        }
    }
}

#[test]
fn random_sequences_match_redis_one_shard_resp2() {
    run(1, false);
}

#[test]
fn random_sequences_match_redis_two_shards_resp2() {
    run(2, false);
}

#[test]
fn random_sequences_match_redis_two_shards_resp3() {
    run(2, true);
}

/// Copies `key` from one server to the other with GET/SET.
fn carry(from: &mut Conn, to: &mut Conn, key: &str) {
    let v = from.cmd(&["GET", key]);
    let percore_net::resp::Frame::Bulk(bytes) = v else {
        panic!("GET {key}: {v:?}");
    };
    let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes()];
    args.push(&bytes);
    to.cmd_raw(&args);
}

#[test]
fn hyperloglogs_cross_both_ways_and_continue_identically() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    // Sizes: sparse, near the sparse limit, dense.
    for (n, key) in [(50u32, "s"), (700, "m"), (5000, "d")] {
        for redis_first in [true, false] {
            let (src, dst) = if redis_first {
                (&mut rc, &mut pc)
            } else {
                (&mut pc, &mut rc)
            };
            src.cmd_raw(&["DEL", key]);
            let elems: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
            let mut args = vec!["PFADD".to_owned(), key.to_owned()];
            args.extend(elems);
            src.cmd_raw(&args);
            carry(src, dst, key);
            assert_eq!(
                src.cmd_raw(&["PFCOUNT", key]),
                dst.cmd_raw(&["PFCOUNT", key])
            );
            assert_eq!(src.cmd_raw(&["GET", key]), dst.cmd_raw(&["GET", key]));
            for step in 0..5u32 {
                let more: Vec<String> = (0..n / 2 + 3).map(|i| format!("f{step}-{i}")).collect();
                let mut args = vec!["PFADD".to_owned(), key.to_owned()];
                args.extend(more);
                assert_eq!(src.cmd_raw(&args), dst.cmd_raw(&args));
                assert_eq!(
                    src.cmd_raw(&["GET", key]),
                    dst.cmd_raw(&["GET", key]),
                    "{key} {step}"
                );
                assert_eq!(
                    src.cmd_raw(&["PFCOUNT", key]),
                    dst.cmd_raw(&["PFCOUNT", key])
                );
                let merge = ["PFMERGE", "{m}dst", key];
                assert_eq!(src.cmd_raw(&merge), dst.cmd_raw(&merge));
                assert_eq!(
                    src.cmd_raw(&["GET", "{m}dst"]),
                    dst.cmd_raw(&["GET", "{m}dst"])
                );
            }
        }
    }
    // A corrupt sparse HyperLogLog is an error, never a crash.
    let mut bad = b"HYLL\x01\0\0\0\0\0\0\x80\0\0\0\0".to_vec();
    bad.extend_from_slice(b"\x7f\xff\x80");
    for c in [&mut rc, &mut pc] {
        c.cmd_raw(&[&b"SET"[..], b"bad", &bad]);
    }
    for cmd in [
        vec!["PFCOUNT", "bad"],
        vec!["PFADD", "bad", "x", "y"],
        vec!["PFCOUNT", "bad", "d"],
        vec!["PFMERGE", "bad2", "bad"],
    ] {
        assert_eq!(show(&pc.cmd_raw(&cmd)), show(&rc.cmd_raw(&cmd)), "{cmd:?}");
    }
}

#[test]
fn limits_and_sparse_max_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    let mut script: Vec<Vec<String>> = Vec::new();
    let s = |x: &str| x.to_owned();
    for cmd in [
        "CONFIG SET proto-max-bulk-len 1mb",
        "SETBIT big 8388608 1",
        "SETBIT big 8388607 1",
        "STRLEN big",
        "BITFIELD big SET u8 8388600 255",
        "BITFIELD big SET u8 8388608 255",
        "BITFIELD big GET u8 #1048575 GET u8 #1048576",
        "BITCOUNT big",
        "BITPOS big 1",
        "BITPOS big 0 -1",
        "BITCOUNT big -1 -1 BIT",
        "GETBIT big 8388608",
        "SETRANGE lcsbig 600 x",
        "LCS lcsbig lcsbig",
        "CONFIG SET proto-max-bulk-len 512mb",
        "CONFIG SET hll-sparse-max-bytes 60",
    ] {
        script.push(cmd.split(' ').map(s).collect());
    }
    for i in 0..40 {
        script.push(vec![s("PFADD"), s("sm"), format!("x{i}"), format!("y{i}")]);
        script.push(vec![s("GET"), s("sm")]);
    }
    script.push(vec![s("PFCOUNT"), s("sm")]);
    for sub in [
        "ENCODING", "DECODE", "GETREG", "ENCODING", "DECODE", "TODENSE", "FOO",
    ] {
        script.push(vec![s("PFDEBUG"), s(sub), s("sm3")]);
        script.push(vec![s("PFADD"), s("sm3"), s(sub)]);
    }
    script.push(vec![s("PFDEBUG"), s("ENCODING"), s("big")]);
    script.push(vec![s("PFMERGE"), s("sm2"), s("sm")]);
    script.push(vec![s("GET"), s("sm2")]);
    script.push(vec![
        s("CONFIG"),
        s("SET"),
        s("hll-sparse-max-bytes"),
        s("3000"),
    ]);
    for (i, cmd) in script.iter().enumerate() {
        assert_eq!(
            show(&pc.cmd_raw(cmd)),
            show(&rc.cmd_raw(cmd)),
            "command {i}: {cmd:?}"
        );
    }
}

/// `rdb_changes_since_last_save` after each SETBIT/BITFIELD moves as Redis 7.0's `dirty`:
/// one per write that changed the bits (or created or grew the string), none for a write
/// of what was already there (Redis's bitops unit, "SETBIT/BITFIELD only increase dirty
/// when the value changed"). One shard: INFO then reads the count the command left.
#[test]
fn setbit_and_bitfield_count_changes_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(1);
    let (mut rc, mut pc) = (redis.conn(), percore.conn());
    let changes = |c: &mut Conn| -> i64 {
        common::info_field(c, "persistence", "rdb_changes_since_last_save")
            .parse()
            .unwrap()
    };
    let script: &[&[&str]] = &[
        &["SETBIT", "a", "0", "0"],
        &["BITFIELD", "b", "SET", "i5", "0", "0"],
        &["SETBIT", "a", "0", "0"],
        &["BITFIELD", "b", "SET", "i5", "0", "0"],
        &["SETBIT", "a", "0", "1"],
        &["SETBIT", "a", "0", "1"],
        &[
            "BITFIELD", "b", "SET", "i5", "0", "1", "SET", "i5", "0", "1",
        ],
        &["BITFIELD", "b", "SET", "i5", "0", "1"],
        &[
            "BITFIELD", "c", "INCRBY", "i5", "0", "1", "INCRBY", "u4", "8", "3",
        ],
        &["BITFIELD", "c", "INCRBY", "i5", "0", "0"],
        &[
            "BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9",
        ],
        &["SETBIT", "a", "90", "0"],
        &[
            "BITFIELD", "b", "SET", "i5", "90", "0", "SET", "u3", "0", "0",
        ],
        &[
            "BITFIELD", "d", "SET", "u8", "0", "0", "SET", "u8", "8", "0",
        ],
        &["BITFIELD", "b", "GET", "u8", "0"],
    ];
    let (mut r0, mut p0) = (changes(&mut rc), changes(&mut pc));
    for argv in script {
        let (want, got) = (rc.cmd_raw(argv), pc.cmd_raw(argv));
        assert_eq!(show(&got), show(&want), "{argv:?}");
        let (r1, p1) = (changes(&mut rc), changes(&mut pc));
        assert_eq!(p1 - p0, r1 - r0, "changes counted by {argv:?}");
        (r0, p0) = (r1, p1);
    }
}
