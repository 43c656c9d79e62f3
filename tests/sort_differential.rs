//! Randomized differential test for SORT and SORT_RO: seeded random lists, sets, sorted
//! sets, weight strings and hashes, changed as the run goes, and random SORT option
//! combinations (BY with `*`, `key->field` or a constant, several GETs with `#`, LIMIT,
//! ASC/DESC, ALPHA, STORE) against a real `redis-server` 7.0 and percore (one and two
//! shards, so BY/GET keys and the STORE destination often live on another shard), in RESP2
//! and RESP3, replies compared byte for byte.
//!
//! Where Redis's order is not determined the reply is compared with its lines sorted (or
//! by length): SORT of a hash-table set with nothing to sort returns the set's internal
//! order. ALPHA with BY sorts by `u_*`, one distinct weight per element, because Redis's
//! quicksort leaves equal weights in no defined order. redis-server runs with `LC_ALL=C`
//! (ALPHA uses `strcoll`; percore compares bytes). No weight is out of double range:
//! Redis checks `errno == ERANGE` after `strtod` without clearing it first, so once a
//! connection's SORT met `1e400`, its later numeric SORTs of texts fail too until some
//! other call resets `errno` (percore refuses only the out-of-range weight itself).
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Rng, Server, assert_same_reply, command_line};

const SEEDS: [u64; 8] = [0x50_47, 0xbeef_5047, 7, 8, 9, 10, 11, 12];
const COMMANDS: usize = 1500;

/// Every element any collection holds.
const ELEMS: [&str; 14] = [
    "1", "2", "3", "10", "-5", "2.5", "a", "b", "c", "abc", "", "x y", "7", "100",
];
const INTS: [&str; 8] = ["1", "2", "3", "10", "-5", "7", "100", "42"];
/// Values of the `w_*` weight strings and `h_*` hash fields.
const WEIGHTS: [&str; 16] = [
    "1", "2", "-3", "2.5", "1e2", "abc", "", " 5", "0x10", "inf", "-inf", "nan", "1e300", "7", "2",
    "0",
];
const SOURCES: [&str; 9] = ["l1", "l2", "s1", "s2", "z1", "z2", "str", "h_a", "none"];
const BYS: [&str; 9] = [
    "w_*", "h_*->f", "nosort", "u_*", "x_*", "w_*->", "h_*->g", "k", "w_*",
];
const GETS: [&str; 8] = ["#", "o_*", "h_*->g", "w_*", "nostar", "h_*->", "#", "u_*"];
const DESTS: [&str; 3] = ["dst", "{l1}dst", "l2"];
const LIMITS: [&str; 9] = ["0", "1", "2", "-1", "-3", "5", "100", "0", "x"];

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Exact,
    Sorted,
    Header,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// A write that changes what SORT sees.
fn mutation(r: &mut Rng) -> Vec<String> {
    let e = r.pick(&ELEMS).to_owned();
    match r.below(12) {
        0 => s(&["RPUSH", r.pick(&["l1", "l2"]), &e]),
        1 => s(&["LPUSH", r.pick(&["l1", "l2"]), r.pick(&INTS)]),
        2 => s(&["SADD", "s1", r.pick(&INTS)]),
        3 => s(&["SADD", "s2", &e, "a"]),
        4 => {
            let score = r.range(-3, 5).to_string();
            s(&["ZADD", r.pick(&["z1", "z2"]), &score, &e])
        }
        5 => s(&["SET", &format!("w_{e}"), r.pick(&WEIGHTS)]),
        6 => s(&[
            "HSET",
            &format!("h_{e}"),
            r.pick(&["f", "g"]),
            r.pick(&WEIGHTS),
        ]),
        7 => s(&["SET", &format!("o_{e}"), &format!("obj-{e}")]),
        8 => s(&["DEL", r.pick(&["l1", "l2", "s1", "s2", "z1", "z2", "dst"])]),
        9 => s(&["LRANGE", r.pick(&DESTS), "0", "-1"]),
        10 => s(&["OBJECT", "ENCODING", r.pick(&["z1", "z2", "dst", "l2"])]),
        _ => s(&["DEL", &format!("w_{e}")]),
    }
}

/// A random SORT and how to compare its reply.
fn sort_command(r: &mut Rng) -> (Vec<String>, Cmp) {
    let ro = r.chance(20);
    let src = r.pick(&SOURCES);
    let mut args = vec![
        if ro { "SORT_RO" } else { "sort" }.to_owned(),
        src.to_owned(),
    ];
    let (mut by, mut limit, mut store, mut alpha) = (None, false, false, false);
    let mut constant = false;
    let nopts = r.below(6);
    for _ in 0..nopts {
        match r.below(7) {
            0 => {
                let b = r.pick(&BYS);
                by = Some(b);
                constant |= !b.contains('*');
                args.extend(s(&["BY", b]));
            }
            1 => {
                limit = true;
                args.extend(s(&["LIMIT", r.pick(&LIMITS), r.pick(&LIMITS)]));
            }
            2 => args.push(r.pick(&["ASC", "desc"]).to_owned()),
            3 => {
                alpha = true;
                args.push("ALPHA".to_owned());
            }
            4 if !ro || r.chance(20) => {
                store = true;
                args.extend(s(&["STORE", r.pick(&DESTS)]));
            }
            _ => args.extend(s(&["GET", r.pick(&GETS)])),
        }
    }
    // The last BY pattern counts (but any constant BY turns sorting off); ALPHA with a
    // BY other than `u_*` could tie.
    if alpha && by.is_some_and(|b| b.contains('*') && b != "u_*") {
        args.extend(s(&["BY", "u_*"]));
    }
    let cmp = if src == "s2" && constant && !store {
        if limit { Cmp::Header } else { Cmp::Sorted }
    } else {
        Cmp::Exact
    };
    (args, cmp)
}

/// The reply's lines after the header, sorted.
fn sorted_reply(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let mut lines: Vec<&str> = text.split("\r\n").collect();
    if lines.len() < 2 || !lines[0].starts_with('*') {
        return reply.to_vec();
    }
    let head = lines.remove(0).to_owned();
    lines.sort_unstable();
    format!("{head}\r\n{}", lines.join("\r\n")).into_bytes()
}

fn header(reply: &[u8]) -> Vec<u8> {
    reply
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .to_vec()
}

fn setup(rng: &mut Rng) -> Vec<Vec<String>> {
    let mut cmds = vec![s(&["FLUSHALL"])];
    for e in ELEMS {
        // One distinct weight per element for ALPHA BY.
        cmds.push(s(&[
            "SET",
            &format!("u_{e}"),
            &format!("u{:03}", rng.below(1000)),
        ]));
        if rng.chance(70) {
            cmds.push(s(&["SET", &format!("w_{e}"), rng.pick(&WEIGHTS)]));
        }
        if rng.chance(60) {
            cmds.push(s(&[
                "HSET",
                &format!("h_{e}"),
                "f",
                rng.pick(&WEIGHTS),
                "g",
                &format!("g-{e}"),
            ]));
        }
        if rng.chance(60) {
            cmds.push(s(&["SET", &format!("o_{e}"), &format!("obj-{e}")]));
        }
    }
    cmds.push(s(&["SET", "str", "x"]));
    for _ in 0..rng.below(8) {
        cmds.push(s(&["RPUSH", "l1", rng.pick(&INTS)]));
        cmds.push(s(&["RPUSH", "l2", rng.pick(&ELEMS)]));
        cmds.push(s(&["SADD", "s1", rng.pick(&INTS)]));
        cmds.push(s(&["SADD", "s2", rng.pick(&ELEMS), "a"]));
        let score = rng.range(-3, 5).to_string();
        cmds.push(s(&["ZADD", "z1", &score, rng.pick(&INTS)]));
        cmds.push(s(&["ZADD", "z2", &score, rng.pick(&ELEMS)]));
    }
    cmds
}

fn run_seed(redis: &Server, percore: &Server, seed: u64, resp3: bool) {
    let mut r = redis.conn();
    let mut p = percore.conn();
    let mut rng = Rng(seed);
    let mut history = String::new();
    for c in [&mut r, &mut p] {
        if resp3 {
            c.cmd_raw(&["HELLO", "3"]);
        }
    }
    let mut cmds: Vec<(Vec<String>, Cmp)> = setup(&mut rng)
        .into_iter()
        .map(|c| (c, Cmp::Exact))
        .collect();
    for _ in 0..COMMANDS {
        cmds.push(if rng.chance(35) {
            (mutation(&mut rng), Cmp::Exact)
        } else {
            sort_command(&mut rng)
        });
    }
    for (i, (args, cmp)) in cmds.iter().enumerate() {
        let (mut want, mut got) = (r.cmd_raw(args), p.cmd_raw(args));
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
        assert_same_reply(&want, &got, &what, &command_line(args), &mut history);
    }
}

fn run_all(threads: usize) {
    let Some(redis) = Server::redis_env(&[], &[("LC_ALL", "C")]) else {
        return;
    };
    let percore = Server::percore_threads(threads);
    for (k, seed) in SEEDS.into_iter().enumerate() {
        run_seed(&redis, &percore, seed, k % 2 == 1);
    }
}

#[test]
fn random_sorts_one_shard() {
    run_all(1);
}

#[test]
fn random_sorts_two_shards() {
    run_all(2);
}
