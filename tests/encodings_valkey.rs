//! OBJECT ENCODING of lists and sets follows Valkey 8 (and Redis 7.2): a small list is a
//! `listpack` that becomes a `quicklist` past `list-max-listpack-size` and goes back when
//! it shrinks to half; a small set of strings is a `listpack`, sized by SADD's member
//! count as Valkey's `setTypeCreate`/`setTypeMaybeConvert`. Random operation sequences
//! run on `../shared/peers/valkey/valkey-server` and percore (two shards) with small
//! limits, and every reply (the encodings included) is compared byte for byte.

mod common;

use common::{Rng, Server, assert_same_reply, command_line, scratch_dir, start_valkey};

/// Operations per sequence.
const STEPS: usize = 1500;

fn value(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng.range(0, 20).to_string(),
        1 => format!("v{}", rng.below(12)),
        2 => "x".repeat(rng.range(20, 70) as usize),
        _ => "y".repeat(rng.range(200, 700) as usize),
    }
}

fn list_op(rng: &mut Rng, key: &str) -> Vec<String> {
    let mut cmd: Vec<String> = Vec::new();
    match rng.below(9) {
        0 | 1 => {
            cmd.push(rng.pick(&["LPUSH", "RPUSH"]).to_owned());
            cmd.push(key.to_owned());
            for _ in 0..=rng.below(4) {
                cmd.push(value(rng));
            }
        }
        2 => {
            cmd.extend([rng.pick(&["LPOP", "RPOP"]).to_owned(), key.to_owned()]);
            cmd.push(rng.range(1, 6).to_string());
        }
        3 => cmd.extend([
            "LREM".to_owned(),
            key.to_owned(),
            rng.range(-2, 2).to_string(),
            value(rng),
        ]),
        4 => cmd.extend([
            "LTRIM".to_owned(),
            key.to_owned(),
            rng.range(0, 3).to_string(),
            rng.range(-4, 8).to_string(),
        ]),
        5 => cmd.extend([
            "LSET".to_owned(),
            key.to_owned(),
            rng.range(-3, 3).to_string(),
            value(rng),
        ]),
        6 => cmd.extend([
            "LINSERT".to_owned(),
            key.to_owned(),
            rng.pick(&["BEFORE", "AFTER"]).to_owned(),
            value(rng),
            value(rng),
        ]),
        7 => cmd.extend(["OBJECT".to_owned(), "ENCODING".to_owned(), key.to_owned()]),
        _ => cmd.extend(["LLEN".to_owned(), key.to_owned()]),
    }
    cmd
}

fn set_op(rng: &mut Rng, key: &str) -> Vec<String> {
    let mut cmd: Vec<String> = Vec::new();
    match rng.below(5) {
        0 | 1 => {
            cmd.extend(["SADD".to_owned(), key.to_owned()]);
            let n = if rng.chance(10) {
                rng.range(5, 14)
            } else {
                rng.range(1, 3)
            };
            for _ in 0..n {
                cmd.push(if rng.chance(60) {
                    rng.range(-50, 50).to_string()
                } else {
                    value(rng)
                });
            }
        }
        2 => {
            cmd.extend(["SREM".to_owned(), key.to_owned()]);
            for _ in 0..=rng.below(3) {
                cmd.push(rng.range(-50, 50).to_string());
            }
        }
        3 => cmd.extend(["SCARD".to_owned(), key.to_owned()]),
        _ => cmd.extend(["OBJECT".to_owned(), "ENCODING".to_owned(), key.to_owned()]),
    }
    cmd
}

#[test]
fn list_and_set_encodings_follow_valkey() {
    let dir = scratch_dir("encodings-valkey");
    let Some((mut peer, mut v)) = start_valkey(&dir) else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let mut p = percore.conn();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    let mut history = String::new();
    for (fill, intset, listpack) in [("4", "4", "6"), ("-1", "512", "128"), ("-2", "3", "10")] {
        for (name, val) in [
            ("list-max-listpack-size", fill),
            ("set-max-intset-entries", intset),
            ("set-max-listpack-entries", listpack),
            ("set-max-listpack-value", "40"),
        ] {
            let cmd = ["CONFIG", "SET", name, val];
            assert_eq!(v.cmd_raw(&cmd), b"+OK\r\n");
            assert_eq!(p.cmd_raw(&cmd), b"+OK\r\n");
        }
        let mut rng = Rng(seed ^ fill.len() as u64);
        for _ in 0..STEPS {
            let key = rng.pick(&["l1", "l2", "s1", "s2"]);
            let cmd = if key.starts_with('l') {
                list_op(&mut rng, key)
            } else {
                set_op(&mut rng, key)
            };
            let line = command_line(&cmd);
            let want = v.cmd_raw(&cmd);
            let got = p.cmd_raw(&cmd);
            let what = format!("seed {seed} fill {fill}");
            assert_same_reply(&want, &got, &what, &line, &mut history);
        }
        for c in [&mut v, &mut p] {
            assert_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
        }
    }
    let _ = peer.kill();
    let _ = peer.wait();
}
