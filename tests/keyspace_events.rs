//! Keyspace notifications against a real `redis-server` 7.0: seeded random command
//! sequences run on both servers, each watched by a subscriber to `__key*__:*`, and the
//! notification streams are compared frame for frame (RESP2 and RESP3 subscribers).
//!
//! After every command the test publishes a marker on `__keyspace@0__:~mark` and reads the
//! subscriber up to it, so each command's notifications are compared on their own. Keys
//! carry one of two hashtags that live on different shards of percore (`--threads 2`), so
//! notifications reach the subscriber from either shard. A command with keys of both tags
//! publishes from both shards; its notifications are compared as a multiset (their
//! interleaving across shards is not ordered), every other command's in order.
//!
//! Expiry is lazy only on both servers (`DEBUG SET-ACTIVE-EXPIRE 0`); a 50 ms TTL is
//! followed by a 60 ms pause so that both servers see the key expired at the next touch.
//! (A 1 ms TTL raced in Redis itself: PEXPIRE adds 1 to one `mstime()` and compares with
//! a second, so a millisecond tick between them deleted the key at once, firing `del`.)
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Conn, Rng, Server, show};
use std::fmt::Write as _;
use std::time::Duration;

/// PEXPIRE's TTL, and the pause after it (longer, so the key has expired on both).
const TTL_MS: &str = "50";
const PAUSE_MS: u64 = 60;

/// Commands per seed.
const COMMANDS: usize = 400;
const SEEDS: [u64; 3] = [0x6b65_7973, 0x0e0e_17a1, 0x5eed_00aa];

const TAGS: [&str; 2] = ["{a}", "{b}"];
const VALUES: [&str; 8] = ["", "v", "1", "-3", "2.5", "hello", "x", "10"];
const MEMBERS: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

const MARK: &str = "__keyspace@0__:~mark";
/// Stands for the DUMP payload in generated RESTORE commands.
const PAYLOAD: &str = "<payload>";

struct Side {
    cmd: Conn,
    sub: Conn,
}

impl Side {
    fn new(server: &Server, flags: &str, resp3: bool) -> Self {
        let mut cmd = server.conn();
        cmd.cmd_raw(&["FLUSHALL"]);
        let debug = cmd.cmd_raw(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        assert_eq!(debug, b"+OK\r\n", "DEBUG SET-ACTIVE-EXPIRE 0");
        let set = cmd.cmd_raw(&["CONFIG", "SET", "notify-keyspace-events", flags]);
        assert_eq!(set, b"+OK\r\n", "CONFIG SET notify-keyspace-events");
        let mut sub = server.conn();
        if resp3 {
            sub.cmd_raw(&["HELLO", "3"]);
        }
        sub.cmd_raw(&["PSUBSCRIBE", "__key*__:*"]);
        Side { cmd, sub }
    }

    /// Runs `args` and returns the notifications it caused, up to the marker `n`.
    fn run<A: AsRef<[u8]>>(&mut self, args: &[A], n: usize) -> Vec<Vec<u8>> {
        self.cmd.cmd_raw(args);
        self.cmd.cmd_raw(&["PUBLISH", MARK, &n.to_string()]);
        let mut got = Vec::new();
        loop {
            let frame = self.sub.read_raw();
            if frame.windows(MARK.len()).any(|w| w == MARK.as_bytes()) {
                assert!(
                    frame.ends_with(format!("{n}\r\n").as_bytes()),
                    "marker out of order: {}",
                    show(&frame)
                );
                return got;
            }
            got.push(frame);
        }
    }
}

/// One random command: its arguments and whether its keys span both tags.
fn command(rng: &mut Rng, families: &[&str]) -> (Vec<String>, bool) {
    let tag = TAGS[rng.below(2)];
    let mixed = rng.chance(15);
    let key = |rng: &mut Rng| {
        let t = if mixed { TAGS[rng.below(2)] } else { tag };
        format!("{t}{}", rng.below(3))
    };
    let k = key(rng);
    let k2 = key(rng);
    let val = |rng: &mut Rng| VALUES[rng.below(VALUES.len())].to_owned();
    let mem = |rng: &mut Rng| MEMBERS[rng.below(MEMBERS.len())].to_owned();
    let s = |x: &str| x.to_owned();
    let family = families[rng.below(families.len())];
    let args: Vec<String> = match (family, rng.below(12)) {
        ("strings", 0) => vec![s("SET"), k, val(rng)],
        ("strings", 1) => {
            let opt = ["NX", "XX", "GET", "KEEPTTL", "EX", "PX"][rng.below(6)];
            let mut a = vec![s("SET"), k, val(rng), s(opt)];
            if opt == "EX" || opt == "PX" {
                a.push(s("100000"));
            }
            a
        }
        ("strings", 2) => vec![s("SETNX"), k, val(rng)],
        ("strings", 3) => vec![s("SETEX"), k, s("1000"), val(rng)],
        ("strings", 4) => vec![s("GETSET"), k, val(rng)],
        ("strings", 5) => vec![s("GETDEL"), k],
        ("strings", 6) => {
            let opt = [&["EX", "1000"][..], &["PERSIST"], &["EXAT", "1"], &[]][rng.below(4)];
            let mut a = vec![s("GETEX"), k];
            a.extend(opt.iter().map(|o| s(o)));
            a
        }
        ("strings", 7) => vec![s(["INCR", "DECR"][rng.below(2)]), k],
        ("strings", 8) => vec![s("INCRBYFLOAT"), k, s("1.5")],
        ("strings", 9) => vec![s("APPEND"), k, val(rng)],
        ("strings", 10) => vec![s("SETRANGE"), k, s("2"), val(rng)],
        ("strings", _) => {
            if rng.chance(50) {
                vec![s("MSET"), k, val(rng), k2, val(rng)]
            } else {
                vec![s("MSETNX"), k, val(rng), k2, val(rng)]
            }
        }
        ("generic", 0 | 1) => vec![s("DEL"), k, k2],
        ("generic", 2) => {
            let opt = ["", "NX", "XX", "GT", "LT"][rng.below(5)];
            let mut a = vec![s("EXPIRE"), k, s(["1000", "2000", "-1"][rng.below(3)])];
            if !opt.is_empty() {
                a.push(s(opt));
            }
            a
        }
        ("generic", 3) => vec![s("PEXPIRE"), k, s(TTL_MS)],
        ("generic", 4) => vec![s("PERSIST"), k],
        ("generic", 5) => vec![s(["RENAME", "RENAMENX"][rng.below(2)]), k, k2],
        ("generic", 6) => {
            let mut a = vec![s("COPY"), k, k2];
            if rng.chance(50) {
                a.push(s("REPLACE"));
            }
            if rng.chance(30) {
                a.extend([s("DB"), s("1")]);
            }
            a
        }
        ("generic", 7) => vec![s("MOVE"), k, s("1")],
        ("generic", 8) => vec![s("UNLINK"), k],
        ("generic", 9) => vec![s("EXISTS"), k],
        ("generic", 10) => vec![s("TYPE"), k],
        ("generic", _) => vec![s("PEXPIREAT"), k, s("1")],
        ("lists", 0 | 1) => vec![s(["LPUSH", "RPUSH"][rng.below(2)]), k, val(rng), val(rng)],
        ("lists", 2) => vec![s(["LPUSHX", "RPUSHX"][rng.below(2)]), k, val(rng)],
        ("lists", 3) => {
            let mut a = vec![s(["LPOP", "RPOP"][rng.below(2)]), k];
            if rng.chance(50) {
                a.push(rng.below(3).to_string());
            }
            a
        }
        ("lists", 4) => vec![s("LINSERT"), k, s("BEFORE"), val(rng), val(rng)],
        ("lists", 5) => vec![s("LSET"), k, s("0"), val(rng)],
        ("lists", 6) => vec![s("LTRIM"), k, s("1"), s("-1")],
        ("lists", 7) => vec![s("LREM"), k, s("0"), val(rng)],
        ("lists", 8) => vec![s("RPOPLPUSH"), k, k2],
        ("lists", 9) => {
            let ends = ["LEFT", "RIGHT"];
            vec![
                s("LMOVE"),
                k,
                k2,
                s(ends[rng.below(2)]),
                s(ends[rng.below(2)]),
            ]
        }
        ("lists", 10) => vec![s("LMPOP"), s("2"), k, k2, s("LEFT"), s("COUNT"), s("2")],
        ("lists", _) => vec![s("BLPOP"), k, s("0.01")],
        ("hashes", 0..=2) => vec![s("HSET"), k, mem(rng), val(rng), mem(rng), val(rng)],
        ("hashes", 3) => vec![s("HSETNX"), k, mem(rng), val(rng)],
        ("hashes", 4 | 5) => vec![s("HDEL"), k, mem(rng), mem(rng)],
        ("hashes", 6) => vec![s("HINCRBY"), k, mem(rng), s("2")],
        ("hashes", 7) => vec![s("HINCRBYFLOAT"), k, mem(rng), s("0.5")],
        ("hashes", 8) => vec![s("HMSET"), k, mem(rng), val(rng)],
        ("hashes", _) => vec![s("HGET"), k, mem(rng)],
        ("sets", 0..=2) => vec![s("SADD"), k, mem(rng), mem(rng)],
        ("sets", 3 | 4) => vec![s("SREM"), k, mem(rng), mem(rng)],
        ("sets", 5) => {
            let mut a = vec![s("SPOP"), k];
            if rng.chance(50) {
                a.push(rng.below(3).to_string());
            }
            a
        }
        ("sets", 6) => vec![s("SMOVE"), k, k2, mem(rng)],
        ("sets", 7) => vec![s("SINTERSTORE"), k, k2, key(rng)],
        ("sets", 8) => vec![s("SUNIONSTORE"), k, k2, key(rng)],
        ("sets", 9) => vec![s("SDIFFSTORE"), k, k2, key(rng)],
        ("sets", _) => vec![s("SISMEMBER"), k, mem(rng)],
        ("zsets", 0 | 1) => {
            let mut a = vec![s("ZADD"), k];
            if rng.chance(40) {
                a.push(s(["NX", "XX", "GT", "LT", "CH", "INCR"][rng.below(6)]));
            }
            a.extend([rng.below(5).to_string(), mem(rng)]);
            a
        }
        ("zsets", 2) => vec![s("ZINCRBY"), k, s("1"), mem(rng)],
        ("zsets", 3) => vec![s("ZREM"), k, mem(rng), mem(rng)],
        ("zsets", 4) => {
            let (cmd, min, max) = [
                ("ZREMRANGEBYSCORE", "1", "2"),
                ("ZREMRANGEBYRANK", "0", "0"),
                ("ZREMRANGEBYLEX", "[m1", "[m2"),
            ][rng.below(3)];
            vec![s(cmd), k, s(min), s(max)]
        }
        ("zsets", 5) => {
            let mut a = vec![s(["ZPOPMIN", "ZPOPMAX"][rng.below(2)]), k];
            if rng.chance(50) {
                a.push(rng.below(3).to_string());
            }
            a
        }
        // percore's ZMPOP wants its keys on one shard (CROSSSLOT otherwise).
        ("zsets", 6) => {
            let same = format!("{tag}{}", rng.below(3));
            vec![
                s("ZMPOP"),
                s("2"),
                format!("{tag}{}", rng.below(3)),
                same,
                s("MIN"),
                s("COUNT"),
                s("2"),
            ]
        }
        ("zsets", 7) => {
            let cmd = ["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"][rng.below(3)];
            vec![s(cmd), k, s("2"), k2, key(rng)]
        }
        ("zsets", 8) => vec![s("ZRANGESTORE"), k, k2, s("0"), s("1")],
        ("zsets", 9) => vec![s("BZPOPMIN"), k, s("0.01")],
        ("zsets", _) => vec![s("ZSCORE"), k, mem(rng)],
        ("streams", 0..=2) => {
            let id = format!("{}-1", rng.below(1000) + 1);
            let mut a = vec![s("XADD"), k];
            if rng.chance(30) {
                a.extend([s("MAXLEN"), s("2")]);
            }
            a.extend([id, mem(rng), val(rng)]);
            a
        }
        ("streams", 3) => vec![s("XTRIM"), k, s("MAXLEN"), s("1")],
        ("streams", 4) => vec![s("XDEL"), k, format!("{}-1", rng.below(1000) + 1)],
        ("streams", 5) => {
            let mut a = vec![s("XGROUP"), s("CREATE"), k, s("g"), s("0")];
            if rng.chance(50) {
                a.push(s("MKSTREAM"));
            }
            a
        }
        ("streams", 6) => vec![s("XGROUP"), s("SETID"), k, s("g"), s("0")],
        ("streams", 7) => vec![s("XGROUP"), s("DESTROY"), k, s("g")],
        ("streams", 8) => vec![s("XGROUP"), s("CREATECONSUMER"), k, s("g"), mem(rng)],
        ("streams", 9) => vec![s("XGROUP"), s("DELCONSUMER"), k, s("g"), mem(rng)],
        ("streams", 10) => {
            vec![
                s("XREADGROUP"),
                s("GROUP"),
                s("g"),
                mem(rng),
                s("COUNT"),
                s("1"),
                s("STREAMS"),
                k,
                s(">"),
            ]
        }
        ("streams", _) => match rng.below(3) {
            0 => vec![s("XSETID"), k, s("2000-1")],
            // claims create their consumer (xgroup-createconsumer) when they claim
            1 => vec![
                s("XCLAIM"),
                k,
                s("g"),
                mem(rng),
                s("0"),
                s("1-1"),
                s("FORCE"),
            ],
            _ => vec![s("XAUTOCLAIM"), k, s("g"), mem(rng), s("0"), s("0")],
        },
        ("other", 0) => vec![s("SETBIT"), k, rng.below(20).to_string(), s("1")],
        ("other", 1) => {
            let op = ["SET", "INCRBY"][rng.below(2)];
            vec![s("BITFIELD"), k, s(op), s("u8"), s("0"), s("200")]
        }
        ("other", 2) => vec![s("BITOP"), s(["AND", "OR"][rng.below(2)]), k, k2, key(rng)],
        ("other", 3) => vec![s("PFADD"), k, mem(rng), mem(rng)],
        ("other", 4) => vec![s("PFMERGE"), k, k2],
        ("other", 5) => vec![s("SORT"), k, s("ALPHA"), s("STORE"), k2],
        ("other", 6) => vec![s("GEOADD"), k, s("13.36"), s("38.11"), mem(rng)],
        ("other", 7) => {
            let c = [s("13.36"), s("38.11")];
            let mut a = vec![s("GEOSEARCHSTORE"), k, k2, s("FROMLONLAT")];
            a.extend(c);
            a.extend([s("BYRADIUS"), s("100"), s("km")]);
            a
        }
        ("other", 8) => {
            let mut a = vec![s("RESTORE"), k, s("0"), s(PAYLOAD)];
            if rng.chance(70) {
                a.push(s("REPLACE"));
            }
            a
        }
        ("other", 9) => vec![
            s("RESTORE"),
            k,
            s("1"),
            s(PAYLOAD),
            s("ABSTTL"),
            s("REPLACE"),
        ],
        ("other", _) => vec![s("GET"), k],
        _ => unreachable!("family {family}"),
    };
    (args, mixed)
}

fn run_seed(redis: &Server, percore: &Server, seed: u64, families: &[&str], resp3: bool) -> usize {
    let payload = {
        let mut c = redis.conn();
        c.cmd_raw(&["SET", "payload-source", "hello"]);
        let dumped = c.cmd_raw(&["DUMP", "payload-source"]);
        let start = dumped
            .iter()
            .position(|&b| b == b'\n')
            .expect("bulk header")
            + 1;
        dumped[start..dumped.len() - 2].to_vec()
    };
    let flags = "KEAn";
    let mut want_side = Side::new(redis, flags, resp3);
    let mut got_side = Side::new(percore, flags, resp3);
    let mut rng = Rng(seed);
    let mut history = String::new();
    let mut total = 0;
    for i in 0..COMMANDS {
        let (args, mixed) = command(&mut rng, families);
        // RESTORE's payload is the bytes redis-server's DUMP gave at the start.
        let bytes: Vec<Vec<u8>> = args
            .iter()
            .map(|a| {
                if a == PAYLOAD {
                    payload.clone()
                } else {
                    a.as_bytes().to_vec()
                }
            })
            .collect();
        let mut want = want_side.run(&bytes, i);
        if ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"].contains(&args[0].as_str()) {
            want = want.iter().map(|f| del_as_expired(f)).collect();
        }
        let mut got = got_side.run(&bytes, i);
        if mixed {
            want.sort();
            got.sort();
        }
        let line = args.join(" ");
        assert!(
            want == got,
            "seed {seed:#x} command {i}: {line}\n    redis:   {:?}\n    percore: {:?}\nhistory:\n{history}",
            want.iter().map(|f| show(f)).collect::<Vec<_>>(),
            got.iter().map(|f| show(f)).collect::<Vec<_>>(),
        );
        total += want.len();
        let _ = writeln!(history, "  {i} {line} -> {} notifications", want.len());
        if args[0] == "PEXPIRE" {
            std::thread::sleep(Duration::from_millis(PAUSE_MS));
        }
    }
    total
}

/// An EXPIRE-family time already in the past removes the key as an expiry, as Valkey does
/// (`expired`, and `expired_keys` counts it; Valkey's pubsub unit waits for that event):
/// Redis 7.0's `del` for it, in a notification frame, rewritten to `expired`.
fn del_as_expired(frame: &[u8]) -> Vec<u8> {
    let swap = |f: Vec<u8>, from: &[u8], to: &[u8]| -> Vec<u8> {
        match f.windows(from.len()).position(|w| w == from) {
            Some(at) => [&f[..at], to, &f[at + from.len()..]].concat(),
            None => f,
        }
    };
    let f = swap(frame.to_vec(), b"$3\r\ndel\r\n", b"$7\r\nexpired\r\n");
    swap(
        f,
        b"$18\r\n__keyevent@0__:del\r\n",
        b"$22\r\n__keyevent@0__:expired\r\n",
    )
}

fn servers() -> Option<(Server, Server)> {
    let redis = Server::redis_with(&["--enable-debug-command", "yes"])?;
    Some((redis, Server::percore(&["--threads", "2"])))
}

const FAMILIES: [&str; 8] = [
    "strings", "generic", "lists", "hashes", "sets", "zsets", "streams", "other",
];

#[test]
fn random_commands_notify_as_redis_resp2() {
    let Some((redis, percore)) = servers() else {
        return;
    };
    for seed in SEEDS {
        let total = run_seed(&redis, &percore, seed, &FAMILIES, false);
        assert!(
            total > COMMANDS / 2,
            "seed {seed:#x}: only {total} notifications"
        );
    }
}

#[test]
fn random_commands_notify_as_redis_resp3() {
    let Some((redis, percore)) = servers() else {
        return;
    };
    let total = run_seed(&redis, &percore, SEEDS[0] ^ 3, &FAMILIES, true);
    assert!(total > COMMANDS / 2, "only {total} notifications");
}

#[test]
fn notify_keyspace_events_config_echo_as_redis() {
    let Some((redis, percore)) = servers() else {
        return;
    };
    let mut r = redis.conn();
    let mut p = percore.conn();
    for flags in [
        "KEA",
        "Kx",
        "Eg$lshzxetd",
        "",
        "KEAmn",
        "Kn",
        "tdx",
        "AKE",
        "z",
        "Q",
        "A m",
    ] {
        let set = ["CONFIG", "SET", "notify-keyspace-events", flags];
        assert_eq!(
            show(&p.cmd_raw(&set)),
            show(&r.cmd_raw(&set)),
            "set {flags:?}"
        );
        let get = ["CONFIG", "GET", "notify-keyspace-events"];
        assert_eq!(
            show(&p.cmd_raw(&get)),
            show(&r.cmd_raw(&get)),
            "get after {flags:?}"
        );
    }
}

/// Only the enabled classes and channel kinds are published.
#[test]
fn classes_and_channel_kinds_filter_as_redis() {
    let Some((redis, percore)) = servers() else {
        return;
    };
    let script: [&[&str]; 6] = [
        &["SET", "{a}1", "v"],
        &["LPUSH", "{b}1", "x"],
        &["EXPIRE", "{a}1", "100"],
        &["DEL", "{a}1", "{b}1"],
        &["SET", "{a}2", "v"],
        &["INCR", "{b}2"],
    ];
    for flags in ["K$", "El", "Eg", "KA", "n", "Kn", "E$n", "AKE"] {
        let mut w = Side::new(&redis, flags, false);
        let mut g = Side::new(&percore, flags, false);
        for (i, cmd) in script.iter().enumerate() {
            let args: Vec<String> = cmd.iter().map(|a| (*a).to_owned()).collect();
            let mixed = cmd[0] == "DEL";
            let (mut want, mut got) = (w.run(&args, i), g.run(&args, i));
            if mixed {
                want.sort();
                got.sort();
            }
            assert_eq!(
                got.iter().map(|f| show(f)).collect::<Vec<_>>(),
                want.iter().map(|f| show(f)).collect::<Vec<_>>(),
                "flags {flags:?}, {cmd:?}"
            );
        }
    }
}

/// Stream consumer events as Redis's own test has them: XCLAIM and XAUTOCLAIM create
/// their consumer (`xgroup-createconsumer`) when they claim an entry, XGROUP DELCONSUMER
/// of an unknown consumer publishes nothing.
#[test]
fn claims_create_consumers_as_redis() {
    let Some((redis, percore)) = servers() else {
        return;
    };
    let script: [&[&str]; 7] = [
        &["XGROUP", "CREATE", "{a}s", "g", "$", "MKSTREAM"],
        &["XGROUP", "CREATECONSUMER", "{a}s", "g", "Bob"],
        &["XADD", "{a}s", "1-1", "f", "A"],
        &["XREADGROUP", "GROUP", "g", "Alice", "STREAMS", "{a}s", ">"],
        &["XCLAIM", "{a}s", "g", "Mike", "0", "1-1", "FORCE"],
        &["XGROUP", "DELCONSUMER", "{a}s", "g", "Lee"],
        &["XAUTOCLAIM", "{a}s", "g", "Zed", "0", "1-1"],
    ];
    for flags in ["Kt", "KEA"] {
        let mut w = Side::new(&redis, flags, false);
        let mut g = Side::new(&percore, flags, false);
        for (i, cmd) in script.iter().enumerate() {
            assert_eq!(
                g.run(cmd, i).iter().map(|f| show(f)).collect::<Vec<_>>(),
                w.run(cmd, i).iter().map(|f| show(f)).collect::<Vec<_>>(),
                "flags {flags:?}, {cmd:?}"
            );
        }
    }
}
