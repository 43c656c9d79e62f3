//! DEBUG DIGEST and DEBUG DIGEST-VALUE against a real `redis-server` 7.0: the same random
//! data of every type (strings, integers, lists, sets of both encodings, sorted sets,
//! hashes, streams, TTLs, several databases) gives the same digests byte for byte, with
//! percore on one and on three shards. Redis's own tests compare digests across reloads,
//! so the algorithm must be Redis's, not only stable.
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Conn, Rng, Server, show};

const SEEDS: [u64; 3] = [0xd16e_0001, 7, 0x5eed];
const COMMANDS: usize = 400;
const KEYS: [&str; 8] = ["a", "b", "c", "{t}d", "{t}e", "f:1", "f:2", "long-key-name"];
const ITEMS: [&str; 10] = [
    "1",
    "2",
    "-7",
    "x",
    "yy",
    "",
    "3000000000",
    "1.5",
    "a b",
    "01",
];

/// One random command; `step` gives XADD an increasing id (`step-*`), the same on both.
fn random_command(rng: &mut Rng, step: usize) -> Vec<String> {
    let key = rng.pick(&KEYS).to_owned();
    let pick = |rng: &mut Rng| rng.pick(&ITEMS).to_owned();
    match rng.below(14) {
        0 => vec!["SET".into(), key, pick(rng)],
        1 => vec!["RPUSH".into(), key, pick(rng), pick(rng)],
        2 => vec!["LPUSH".into(), key, pick(rng)],
        3 => vec!["SADD".into(), key, pick(rng), pick(rng)],
        4 => vec![
            "ZADD".into(),
            key,
            pick(rng).replace(['x', 'y', 'a', ' '], "2"),
            pick(rng),
        ],
        5 => vec!["HSET".into(), key, pick(rng), pick(rng)],
        6 => vec![
            "XADD".into(),
            key,
            format!("{step}-*"),
            pick(rng),
            pick(rng),
        ],
        7 => vec!["EXPIRE".into(), key, "1000".into()],
        8 => vec!["PERSIST".into(), key],
        9 => vec!["DEL".into(), key],
        10 => vec!["SELECT".into(), rng.pick(&["0", "1", "5"]).into()],
        11 => vec!["INCRBY".into(), key, rng.range(-5, 5).to_string()],
        12 => vec!["ZINCRBY".into(), key, "0.25".into(), pick(rng)],
        _ => vec!["SREM".into(), key, pick(rng)],
    }
}

fn digests(c: &mut Conn) -> Vec<String> {
    let mut out = vec![show(&c.cmd_raw(&["DEBUG", "DIGEST"]))];
    for db in ["0", "1", "5"] {
        c.cmd_raw(&["SELECT", db]);
        let mut argv = vec!["DEBUG", "DIGEST-VALUE"];
        argv.extend(KEYS);
        argv.push("missing");
        out.push(format!("db{db} {}", show(&c.cmd_raw(&argv))));
    }
    out
}

#[test]
fn digests_equal_redis_servers() {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    for threads in ["1", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        let (mut r, mut p) = (redis.conn(), percore.conn());
        for seed in SEEDS {
            let mut rng = Rng(seed);
            assert_eq!(show(&r.cmd_raw(&["FLUSHALL"])), "+OK\r\n");
            assert_eq!(show(&p.cmd_raw(&["FLUSHALL"])), "+OK\r\n");
            let empty = digests(&mut p);
            assert_eq!(empty[0], format!("+{}\r\n", "0".repeat(40)));
            for c in [&mut r, &mut p] {
                c.cmd_raw(&["SELECT", "0"]);
            }
            for step in 0..COMMANDS {
                let cmd = random_command(&mut rng, step);
                let (a, b) = (r.cmd_raw(&cmd), p.cmd_raw(&cmd));
                assert_eq!(show(&a), show(&b), "{cmd:?} (seed {seed})");
            }
            let (dr, dp) = (digests(&mut r), digests(&mut p));
            assert_ne!(dr[0], empty[0], "seed {seed}: the data set is not empty");
            assert_eq!(dr, dp, "seed {seed}, {threads} threads");
        }
    }
}

#[test]
fn digest_value_errors_and_help() {
    let percore = Server::percore(&[]);
    let mut c = percore.conn();
    assert_eq!(
        show(&c.cmd_raw(&["DEBUG", "DIGEST-VALUE"])),
        "*0\r\n",
        "no keys: an empty array, as Redis"
    );
    assert!(show(&c.cmd_raw(&["DEBUG", "DIGEST", "x"])).starts_with("-ERR unknown subcommand"));
}

/// DEBUG RELOAD's options (MERGE, NOFLUSH, NOSAVE) against redis-server 7.0, with a
/// function library in the file (Redis's functions test uses them). NOFLUSH without
/// MERGE over a dataset holding the file's library fails the load with an error on both
/// (redis-server would abort on a duplicate *key*; percore answers the same error).
#[test]
fn reload_options_as_redis() {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let lib = "#!lua name=lib\nredis.register_function('f', function() return 'hello' end)";
    let lib2 = "#!lua name=lib2\nredis.register_function('f2', function() return 'two' end)";
    let script: &[&[&str]] = &[
        &["FLUSHALL"],
        &["FUNCTION", "FLUSH"],
        &["SET", "x", "1"],
        &["FUNCTION", "LOAD", lib],
        &["DEBUG", "RELOAD"],
        &["GET", "x"],
        &["FCALL", "f", "0"],
        &["DEBUG", "RELOAD", "NOFLUSH"],
        &["DEBUG", "RELOAD", "NOFLUSH", "MERGE"],
        &["FUNCTION", "LIST"],
        &["SET", "y", "2"],
        &["DEBUG", "RELOAD", "NOSAVE"],
        &["GET", "y"],
        &["GET", "x"],
        &["SET", "z", "3"],
        &["FUNCTION", "LOAD", lib2],
        &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"],
        &["MGET", "x", "y", "z"],
        &["FCALL", "f2", "0"],
        &["FCALL", "f", "0"],
        &["DBSIZE"],
        &["DEBUG", "RELOAD", "SOMETIMES"],
    ];
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for cmd in script {
        assert_eq!(show(&p.cmd_raw(cmd)), show(&r.cmd_raw(cmd)), "{cmd:?}");
    }
}

/// DEBUG PROTOCOL's sample replies of every RESP type, byte for byte with redis-server,
/// in RESP2 and RESP3 (Redis's protocol tests read them).
#[test]
fn protocol_samples_as_redis() {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let percore = Server::percore(&[]);
    let types = [
        "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push",
        "verbatim", "true", "false", "nosuch",
    ];
    for resp3 in [false, true] {
        let (mut r, mut p) = (redis.conn(), percore.conn());
        if resp3 {
            r.cmd_raw(&["HELLO", "3"]);
            p.cmd_raw(&["HELLO", "3"]);
        }
        for t in types {
            let cmd = ["DEBUG", "PROTOCOL", t];
            // attrib and push come with a second, normal reply: read up to a PING's PONG.
            let (want, got) = (until_pong(&mut r, &cmd), until_pong(&mut p, &cmd));
            assert_eq!(show(&got), show(&want), "DEBUG PROTOCOL {t}, RESP3 {resp3}");
        }
    }
}

/// Sends `cmd` then PING and returns every byte before the PONG.
fn until_pong(c: &mut Conn, cmd: &[&str]) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = common::encode_cmd(cmd);
    bytes.extend(common::encode_cmd(&["PING"]));
    c.send(&bytes);
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.ends_with(b"+PONG\r\n") {
        let n = c.stream().read(&mut chunk).expect("read");
        assert!(n > 0, "closed");
        got.extend_from_slice(&chunk[..n]);
    }
    got.truncate(got.len() - b"+PONG\r\n".len());
    got
}
