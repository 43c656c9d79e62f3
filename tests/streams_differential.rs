//! Randomized differential test for streams: seeded random sequences of stream, consumer
//! group and keyspace commands against a real `redis-server` and percore (1 and 2
//! shards), in RESP2 and RESP3, replies compared byte for byte after masking what
//! depends on the clock.
//!
//! IDs are explicit (`ms-seq`) or `ms-*` with `ms` growing with the command number, so
//! both servers assign the same IDs; `*` (the clock) is left to `streams.rs`. Idle
//! thresholds are 0 or an hour, so which pending entries qualify does not depend on
//! timing. Masked: idle times and delivery times of XPENDING, XINFO CONSUMERS and XINFO
//! STREAM FULL (`seen-time`, PEL delivery times). Keys share `{x}` in pairs so XREAD,
//! RENAME and COPY run within one shard and across two.
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Rng, Server, show};
use percore_net::resp::{Frame, decode_frame};
use std::fmt::Write as _;

const SEEDS: [u64; 4] = [0x5157, 0xfeed_0042, 0x1234_9876, 0x0dd0_5eed];
/// Commands per seed and protocol.
const COMMANDS: usize = 800;

const KEYS: [&str; 6] = ["s", "t", "{x}a", "{x}b", "u", "str"];
const GROUPS: [&str; 3] = ["g1", "g2", "g3"];
const CONSUMERS: [&str; 3] = ["c1", "c2", "c3"];
const FIELDS: [&str; 5] = ["f", "g", "h", "name", "1"];
const VALUES: [&str; 7] = ["v", "1", "-5", "", "hello world", "12345678901", "x"];
const IDLES: [&str; 3] = ["0", "3600000", "-5"];

/// An ID near the IDs added so far (`ms` up to `i / 2`).
fn id(r: &mut Rng, i: usize) -> String {
    let top = (i / 2 + 2) as i64;
    match r.below(20) {
        0 => "0-0".into(),
        1 => "abc".into(),
        2 => format!("{}", r.range(0, top)),
        3 => "18446744073709551615-18446744073709551615".into(),
        _ => format!("{}-{}", r.range(0, top), r.range(0, 3)),
    }
}

fn bound(r: &mut Rng, i: usize) -> String {
    match r.below(12) {
        0 => "-".into(),
        1 => "+".into(),
        2 => format!("({}", id(r, i)),
        3 => "(".into(),
        _ => id(r, i),
    }
}

fn group_arg(r: &mut Rng) -> String {
    r.pick(&GROUPS).to_owned()
}

fn command(r: &mut Rng, i: usize) -> Vec<String> {
    let key = r.pick(&KEYS).to_owned();
    let mut a: Vec<String> = match r.below(300) {
        0..=89 => {
            let mut a = vec!["XADD".into(), key];
            if r.chance(5) {
                a.push("NOMKSTREAM".into());
            }
            if r.chance(20) {
                let minid = r.chance(30);
                a.push(if minid { "MINID" } else { "MAXLEN" }.into());
                match r.below(3) {
                    0 => a.push("~".into()),
                    1 => a.push("=".into()),
                    _ => {}
                }
                a.push(if minid {
                    id(r, i)
                } else {
                    r.pick(&["0", "1", "3", "10", "-1", "x"]).into()
                });
                if r.chance(20) {
                    a.extend(["LIMIT".into(), r.pick(&["0", "1", "5", "-1"]).into()]);
                }
            }
            let ms = i / 2 + r.below(3);
            a.push(match r.below(10) {
                0..=5 => format!("{ms}-*"),
                6..=8 => format!("{ms}-{}", r.below(3)),
                _ => id(r, i),
            });
            for _ in 0..=r.below(3) {
                a.push(r.pick(&FIELDS).into());
                a.push(r.pick(&VALUES).into());
            }
            if r.chance(3) {
                a.pop();
            }
            a
        }
        90..=94 => vec!["XLEN".into(), key],
        95..=119 => {
            let rev = r.chance(40);
            let mut a = vec![
                if rev { "XREVRANGE" } else { "XRANGE" }.into(),
                key,
                bound(r, i),
                bound(r, i),
            ];
            if rev && r.chance(70) {
                a[2] = "+".into();
                a[3] = "-".into();
            }
            if r.chance(40) {
                a.extend([
                    "COUNT".into(),
                    r.pick(&["0", "1", "2", "5", "-1", "x"]).into(),
                ]);
            }
            a
        }
        120..=129 => {
            let mut a = vec!["XDEL".into(), key];
            for _ in 0..=r.below(3) {
                a.push(id(r, i));
            }
            a
        }
        130..=137 => {
            let minid = r.chance(40);
            let mut a = vec![
                "XTRIM".into(),
                key,
                if minid { "MINID" } else { "MAXLEN" }.into(),
            ];
            if r.chance(50) {
                a.push(r.pick(&["~", "="]).into());
            }
            a.push(if minid {
                id(r, i)
            } else {
                r.pick(&["0", "1", "2", "5", "20", "-1"]).into()
            });
            if r.chance(20) {
                a.extend(["LIMIT".into(), r.pick(&["0", "1", "100"]).into()]);
            }
            a
        }
        138..=152 => {
            let sub = r.below(6);
            let g = group_arg(r);
            match sub {
                0 | 1 => {
                    let mut a = vec![
                        "XGROUP".into(),
                        "CREATE".into(),
                        key,
                        g,
                        r.pick(&["0", "$", "0", "3-0", "-", "+"]).into(),
                    ];
                    if r.chance(40) {
                        a.push("MKSTREAM".into());
                    }
                    if r.chance(20) {
                        a.extend(["ENTRIESREAD".into(), r.pick(&["0", "2", "-1", "-3"]).into()]);
                    }
                    a
                }
                2 => {
                    let mut a = vec![
                        "XGROUP".into(),
                        "SETID".into(),
                        key,
                        g,
                        r.pick(&["0", "$", "5-0", "-", "+"]).into(),
                    ];
                    if r.chance(30) {
                        a.extend(["ENTRIESREAD".into(), r.pick(&["0", "3", "-1"]).into()]);
                    }
                    a
                }
                3 => vec!["XGROUP".into(), "DESTROY".into(), key, g],
                4 => vec![
                    "XGROUP".into(),
                    "CREATECONSUMER".into(),
                    key,
                    g,
                    r.pick(&CONSUMERS).into(),
                ],
                _ => vec![
                    "XGROUP".into(),
                    "DELCONSUMER".into(),
                    key,
                    g,
                    r.pick(&CONSUMERS).into(),
                ],
            }
        }
        153..=184 => {
            let mut a = vec![
                "XREADGROUP".into(),
                "GROUP".into(),
                group_arg(r),
                r.pick(&CONSUMERS).into(),
            ];
            if r.chance(50) {
                a.extend(["COUNT".into(), r.pick(&["1", "2", "10", "0"]).into()]);
            }
            if r.chance(15) {
                a.push("NOACK".into());
            }
            a.push("STREAMS".into());
            let n = 1 + r.below(2);
            let keys: Vec<String> = (0..n).map(|_| r.pick(&KEYS).to_owned()).collect();
            a.extend(keys);
            for _ in 0..n {
                a.push(match r.below(5) {
                    0..=2 => ">".into(),
                    3 => "0".into(),
                    _ => id(r, i),
                });
            }
            a
        }
        185..=199 => {
            let mut a = vec!["XREAD".into()];
            if r.chance(50) {
                a.extend(["COUNT".into(), r.pick(&["1", "2", "0"]).into()]);
            }
            a.push("STREAMS".into());
            let n = 1 + r.below(3);
            let keys: Vec<String> = (0..n).map(|_| r.pick(&KEYS).to_owned()).collect();
            a.extend(keys);
            for _ in 0..n {
                a.push(match r.below(5) {
                    0 => "$".into(),
                    1 => "0".into(),
                    _ => id(r, i),
                });
            }
            a
        }
        200..=214 => {
            let mut a = vec!["XACK".into(), key, group_arg(r)];
            for _ in 0..=r.below(3) {
                a.push(id(r, i));
            }
            a
        }
        215..=229 => {
            let mut a = vec!["XPENDING".into(), key, group_arg(r)];
            if r.chance(70) {
                if r.chance(30) {
                    a.extend(["IDLE".into(), r.pick(&IDLES).into()]);
                }
                a.push(bound(r, i));
                a.push(bound(r, i));
                a.push(r.pick(&["10", "1", "0", "-1"]).into());
                if r.chance(40) {
                    a.push(r.pick(&CONSUMERS).into());
                }
            }
            a
        }
        230..=241 => {
            let mut a = vec![
                "XCLAIM".into(),
                key,
                group_arg(r),
                r.pick(&CONSUMERS).into(),
                r.pick(&IDLES).into(),
            ];
            for _ in 0..=r.below(3) {
                a.push(id(r, i));
            }
            for _ in 0..r.below(3) {
                match r.below(7) {
                    0 => a.extend(["IDLE".into(), r.pick(&["0", "7200000"]).into()]),
                    1 => a.extend(["TIME".into(), "1".into()]),
                    2 => a.extend(["RETRYCOUNT".into(), r.pick(&["3", "0", "-1"]).into()]),
                    3 => a.push("FORCE".into()),
                    4 => a.push("JUSTID".into()),
                    5 => a.extend(["LASTID".into(), id(r, i)]),
                    _ => a.push("BOGUS".into()),
                }
            }
            a
        }
        242..=251 => {
            let mut a = vec![
                "XAUTOCLAIM".into(),
                key,
                group_arg(r),
                r.pick(&CONSUMERS).into(),
                r.pick(&IDLES).into(),
                bound(r, i),
            ];
            if r.chance(50) {
                a.extend(["COUNT".into(), r.pick(&["1", "2", "10", "0"]).into()]);
            }
            if r.chance(30) {
                a.push("JUSTID".into());
            }
            a
        }
        252..=263 => match r.below(5) {
            0 => vec!["XINFO".into(), "GROUPS".into(), key],
            1 => vec!["XINFO".into(), "CONSUMERS".into(), key, group_arg(r)],
            2 => vec!["XINFO".into(), "STREAM".into(), key],
            3 => vec!["XINFO".into(), "STREAM".into(), key, "FULL".into()],
            _ => vec![
                "XINFO".into(),
                "STREAM".into(),
                key,
                "FULL".into(),
                "COUNT".into(),
                r.pick(&["0", "1", "2"]).into(),
            ],
        },
        264..=269 => {
            let mut a = vec!["XSETID".into(), key, id(r, i + 20)];
            if r.chance(40) {
                a.extend([
                    "ENTRIESADDED".into(),
                    r.pick(&["0", "5", "100", "-1"]).into(),
                ]);
            }
            if r.chance(30) {
                a.extend(["MAXDELETEDID".into(), id(r, i)]);
            }
            a
        }
        270..=273 => vec!["TYPE".into(), key],
        274..=276 => vec!["OBJECT".into(), "ENCODING".into(), key],
        277..=279 => vec!["DEL".into(), key],
        280..=284 => vec![
            r.pick(&["RENAME", "RENAMENX"]).into(),
            key,
            r.pick(&KEYS).into(),
        ],
        285..=288 => {
            let mut a = vec!["COPY".into(), key, r.pick(&KEYS).into()];
            if r.chance(50) {
                a.push("REPLACE".into());
            }
            a
        }
        289..=290 => vec!["SET".into(), "str".into(), "x".into()],
        291..=293 => vec!["EXISTS".into(), key],
        _ => vec!["DBSIZE".into()],
    };
    if r.chance(5) {
        a[0] = a[0].to_lowercase();
    }
    a
}

/// The frame with clock-dependent numbers zeroed.
fn mask(name: &str, args: &[String], f: Frame) -> Frame {
    let sub = args
        .get(1)
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    match (name, f) {
        ("XPENDING", Frame::Array(items)) if args.len() > 3 => Frame::Array(
            items
                .into_iter()
                .map(|e| match e {
                    Frame::Array(mut x) if x.len() == 4 => {
                        x[2] = Frame::Int(0);
                        Frame::Array(x)
                    }
                    other => other,
                })
                .collect(),
        ),
        ("XINFO", f) if sub == "CONSUMERS" || sub == "STREAM" => mask_pairs(f),
        (_, f) => f,
    }
}

/// Zeroes `idle` and `seen-time` values and the delivery times in `pending` lists, in
/// maps and in RESP2's flat key/value arrays, at any depth.
fn mask_pairs(f: Frame) -> Frame {
    fn value(key: &Frame, v: Frame) -> Frame {
        let k = match key {
            Frame::Bulk(k) => k.as_slice(),
            _ => b"",
        };
        match (k, v) {
            (b"idle" | b"seen-time", Frame::Int(_)) => Frame::Int(0),
            (b"pending", Frame::Array(items)) => Frame::Array(
                items
                    .into_iter()
                    .map(|e| match e {
                        Frame::Array(mut x) if x.len() == 4 => {
                            x[2] = Frame::Int(0);
                            Frame::Array(x)
                        }
                        Frame::Array(mut x) if x.len() == 3 => {
                            x[1] = Frame::Int(0);
                            Frame::Array(x)
                        }
                        other => other,
                    })
                    .collect(),
            ),
            (_, v) => mask_pairs(v),
        }
    }
    match f {
        Frame::Map(pairs) => Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = value(&k, v);
                    (k, v)
                })
                .collect(),
        ),
        Frame::Array(items) => {
            let pairs = items.len() % 2 == 0
                && items
                    .iter()
                    .step_by(2)
                    .all(|k| matches!(k, Frame::Bulk(b) if b.first().is_some_and(u8::is_ascii_lowercase)));
            if pairs && !items.is_empty() {
                let mut out = Vec::with_capacity(items.len());
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    let v = value(&k, v);
                    out.push(k);
                    out.push(v);
                }
                Frame::Array(out)
            } else {
                Frame::Array(items.into_iter().map(mask_pairs).collect())
            }
        }
        other => other,
    }
}

fn masked(name: &str, args: &[String], raw: &[u8]) -> Vec<u8> {
    match decode_frame(raw) {
        Ok(Some((f, _))) => {
            let mut out = Vec::new();
            mask(name, args, f).encode(&mut out);
            out
        }
        _ => raw.to_vec(),
    }
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
        let args = command(&mut rng, i);
        let name = args[0].to_ascii_uppercase();
        let line = common::command_line(&args);
        let want_raw = r.cmd_raw(&args);
        let got_raw = p.cmd_raw(&args);
        let want = masked(&name, &args, &want_raw);
        let got = masked(&name, &args, &got_raw);
        assert!(
            want == got,
            "seed {seed:#x} resp3 {resp3}, command #{i}: {line}\n    redis:   {}\n    percore: {}\n\
             history (command -> redis reply):\n{history}",
            String::from_utf8_lossy(&want).replace("\r\n", " "),
            String::from_utf8_lossy(&got).replace("\r\n", " ")
        );
        let _ = writeln!(history, "  #{i} {line} -> {:?}", show(&want_raw));
    }
}

fn run(threads: usize, node_entries: &str) {
    let Some(redis) = Server::redis_with(&["--stream-node-max-entries", node_entries]) else {
        return;
    };
    let percore = Server::percore(&[
        "--threads",
        &threads.to_string(),
        "--stream-node-max-entries",
        node_entries,
    ]);
    for seed in SEEDS {
        run_seed(&redis, &percore, seed, false);
        run_seed(&redis, &percore, seed ^ 0x3333, true);
    }
}

#[test]
fn random_streams_one_shard() {
    run(1, "100");
}

/// Small nodes (4 entries) so trimming, deletion and ranges cross node boundaries.
#[test]
fn random_streams_two_shards_small_nodes() {
    run(2, "4");
}
