//! Randomized differential test: seeded random sequences of string and keyspace commands
//! against a real `redis-server` and percore (`--threads 2`), replies compared byte for
//! byte.
//!
//! The generator draws from a small key space (eight keys, some sharing a `{tag}`) over
//! three databases, so commands keep hitting keys that exist, have a TTL, hold numbers or
//! were just renamed. The PRNG is a hand-written splitmix64 seeded by constants: a failure
//! names its seed and command index and reproduces exactly.
//!
//! Timing never matters: every relative TTL is a distinct multiple of 1000 seconds of at
//! least 100000 seconds and every absolute one lies after 2033, so comparisons between
//! expiry times (GT/LT) are decided by the values, never by when a command arrived. TTL,
//! PTTL, EXPIRETIME and PEXPIRETIME replies are compared only as -2, -1 or positive.
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Conn, Rng, Server, assert_same_reply};
use std::collections::HashSet;

/// Seeds run; each gets fresh servers' databases (FLUSHALL) and its own command stream.
const SEEDS: [u64; 6] = [
    0x5eed_0001,
    0x0dd_ba11,
    0xc0ff_ee42,
    0x0010_afd9_dc3f,
    0xdead_beef,
    0x1234_5678_9abc,
];
/// Commands per seed.
const COMMANDS: usize = 500;

const KEYS: [&str; 8] = ["a", "b", "n", "{t}x", "{t}y", "{t}z", "{u}1", "{u}2"];

const VALUES: [&str; 16] = [
    "",
    "v",
    "hello",
    "0",
    "1",
    "-1",
    "42",
    "01",
    " 7",
    "3.5",
    "-0.25",
    "1e3",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "abc def",
];

const INCRS: [&str; 14] = [
    "0",
    "1",
    "-1",
    "5",
    "-100",
    "1000000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775806",
    "-9223372036854775807",
    "1.5",
    "abc",
    "",
    "+3",
];

const FLOATS: [&str; 12] = [
    "1", "-1", "0.5", "1.5", "-0.25", "2.75", "10", "0", "-3.5", "100.125", "abc", "",
];

/// Draws commands; remembers which TTL values it handed out so that none repeats.
struct Gen {
    rng: Rng,
    used_ttls: HashSet<u64>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            rng: Rng(seed),
            used_ttls: HashSet::new(),
        }
    }

    fn key(&mut self) -> String {
        self.rng.pick(&KEYS).to_owned()
    }

    fn keys(&mut self, max: usize) -> Vec<String> {
        let n = 1 + self.rng.below(max);
        (0..n).map(|_| self.key()).collect()
    }

    fn value(&mut self) -> String {
        self.rng.pick(&VALUES).to_owned()
    }

    /// A fresh unit count: relative TTLs are `100000 + 1000 * unit` seconds, absolute ones
    /// `2000000000 + 1000 * unit` seconds since the epoch.
    fn unit(&mut self) -> u64 {
        loop {
            let u = self.rng.next() % 10_000;
            if self.used_ttls.insert(u) {
                return u;
            }
        }
    }

    fn secs(&mut self) -> String {
        (100_000 + 1000 * self.unit()).to_string()
    }

    fn millis(&mut self) -> String {
        ((100_000 + 1000 * self.unit()) * 1000).to_string()
    }

    fn at_secs(&mut self) -> String {
        (2_000_000_000 + 1000 * self.unit()).to_string()
    }

    fn at_millis(&mut self) -> String {
        ((2_000_000_000 + 1000 * self.unit()) * 1000).to_string()
    }

    /// A TTL argument for SET/GETEX/SETEX: mostly valid, sometimes an error.
    fn ttl_arg(&mut self, millis: bool, absolute: bool) -> String {
        match self.rng.below(30) {
            0 => "0".to_owned(),
            1 => "-5".to_owned(),
            2 => "x".to_owned(),
            3 => "9223372036854775807".to_owned(),
            _ => match (millis, absolute) {
                (false, false) => self.secs(),
                (true, false) => self.millis(),
                (false, true) => self.at_secs(),
                (true, true) => self.at_millis(),
            },
        }
    }

    fn expire_option(&mut self, opt: &str) -> Vec<String> {
        let millis = opt.starts_with('P');
        let absolute = opt.ends_with("AT");
        vec![opt.to_owned(), self.ttl_arg(millis, absolute)]
    }

    fn set(&mut self) -> Vec<String> {
        let mut args = vec!["SET".to_owned(), self.key(), self.value()];
        let mut opts: Vec<Vec<String>> = Vec::new();
        if self.rng.chance(25) {
            opts.push(vec![self.rng.pick(&["NX", "XX"]).to_owned()]);
        }
        if self.rng.chance(25) {
            opts.push(vec!["GET".to_owned()]);
        }
        if self.rng.chance(40) {
            let opt = self.rng.pick(&["EX", "PX", "EXAT", "PXAT", "KEEPTTL"]);
            if opt == "KEEPTTL" {
                opts.push(vec![opt.to_owned()]);
            } else {
                opts.push(self.expire_option(opt));
            }
        }
        if self.rng.chance(4) {
            // A conflicting or unknown option: a syntax error.
            let bad = self.rng.pick(&["NX", "XX", "KEEPTTL", "BOGUS"]);
            opts.push(vec![bad.to_owned()]);
            if bad != "BOGUS" && self.rng.chance(50) {
                opts.push(self.expire_option("EX"));
            }
        }
        // Options in any order.
        while !opts.is_empty() {
            let i = self.rng.below(opts.len());
            args.extend(opts.swap_remove(i));
        }
        if self.rng.chance(10) {
            for a in &mut args[3..] {
                if a.chars().all(|c| c.is_ascii_alphabetic()) {
                    *a = a.to_lowercase();
                }
            }
        }
        args
    }

    fn expire(&mut self) -> Vec<String> {
        let name = self
            .rng
            .pick(&["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]);
        let millis = name.starts_with('P');
        let absolute = name.ends_with("AT");
        let ttl = match self.rng.below(20) {
            0 => "0".to_owned(),
            1 => "-1".to_owned(),
            2 => "abc".to_owned(),
            3 => "9223372036854775807".to_owned(),
            4 => "-9223372036854775808".to_owned(),
            _ => match (millis, absolute) {
                (false, false) => self.secs(),
                (true, false) => self.millis(),
                (false, true) => self.at_secs(),
                (true, true) => self.at_millis(),
            },
        };
        let mut args = vec![name.to_owned(), self.key(), ttl];
        let nflags = match self.rng.below(10) {
            0..=4 => 0,
            5..=8 => 1,
            _ => 2,
        };
        for _ in 0..nflags {
            args.push(self.rng.pick(&["NX", "XX", "GT", "LT"]).to_owned());
        }
        args
    }

    fn getex(&mut self) -> Vec<String> {
        let mut args = vec!["GETEX".to_owned(), self.key()];
        match self.rng.below(7) {
            0 | 1 => {}
            2 => args.push("PERSIST".to_owned()),
            _ => {
                let opt = self.rng.pick(&["EX", "PX", "EXAT", "PXAT"]);
                args.extend(self.expire_option(opt));
            }
        }
        args
    }

    fn db(&mut self) -> String {
        match self.rng.below(25) {
            0 => "16".to_owned(),
            1 => "-1".to_owned(),
            2 => "x".to_owned(),
            _ => self.rng.below(3).to_string(),
        }
    }

    fn command(&mut self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|&a| a.to_owned()).collect::<Vec<_>>();
        let roll = self.rng.below(1000);
        let mut args = match roll {
            0..=79 => self.set(),
            80..=139 | 900.. => vec!["GET".to_owned(), self.key()],
            140..=159 => vec!["GETSET".to_owned(), self.key(), self.value()],
            160..=179 => vec!["GETDEL".to_owned(), self.key()],
            180..=219 => self.getex(),
            220..=239 => vec!["SETNX".to_owned(), self.key(), self.value()],
            240..=259 => {
                let ttl = self.ttl_arg(false, false);
                vec!["SETEX".to_owned(), self.key(), ttl, self.value()]
            }
            260..=279 => vec!["APPEND".to_owned(), self.key(), self.value()],
            280..=294 => vec!["STRLEN".to_owned(), self.key()],
            295..=319 => vec![self.rng.pick(&["INCR", "DECR"]).to_owned(), self.key()],
            320..=349 => vec![
                self.rng.pick(&["INCRBY", "DECRBY"]).to_owned(),
                self.key(),
                self.rng.pick(&INCRS).to_owned(),
            ],
            350..=369 => vec![
                "INCRBYFLOAT".to_owned(),
                self.key(),
                self.rng.pick(&FLOATS).to_owned(),
            ],
            370..=389 => vec![
                self.rng.pick(&["GETRANGE", "SUBSTR"]).to_owned(),
                self.key(),
                self.rng.range(-8, 8).to_string(),
                self.rng.range(-8, 8).to_string(),
            ],
            390..=409 => {
                let offset = if self.rng.chance(5) {
                    "-1".to_owned()
                } else {
                    self.rng.range(0, 12).to_string()
                };
                vec!["SETRANGE".to_owned(), self.key(), offset, self.value()]
            }
            410..=439 => {
                let mut a = vec!["MGET".to_owned()];
                a.extend(self.keys(4));
                a
            }
            440..=469 => {
                let name = self.rng.pick(&["MSET", "MSETNX"]).to_owned();
                let mut a = vec![name];
                for k in self.keys(3) {
                    a.push(k);
                    a.push(self.value());
                }
                if self.rng.chance(3) {
                    a.push(self.key()); // odd argument count: an error
                }
                a
            }
            470..=509 => {
                let mut a = vec![self.rng.pick(&["DEL", "UNLINK"]).to_owned()];
                a.extend(self.keys(3));
                a
            }
            510..=539 => {
                let mut a = vec![self.rng.pick(&["EXISTS", "TOUCH"]).to_owned()];
                a.extend(self.keys(4));
                a
            }
            540..=559 => vec!["TYPE".to_owned(), self.key()],
            560..=589 => vec![
                self.rng.pick(&["RENAME", "RENAMENX"]).to_owned(),
                self.key(),
                self.key(),
            ],
            590..=619 => {
                let mut a = vec!["COPY".to_owned(), self.key(), self.key()];
                if self.rng.chance(40) {
                    a.push("DB".to_owned());
                    a.push(self.db());
                }
                if self.rng.chance(40) {
                    a.push("REPLACE".to_owned());
                }
                if self.rng.chance(3) {
                    a.push("BOGUS".to_owned());
                }
                a
            }
            620..=639 => vec!["MOVE".to_owned(), self.key(), self.db()],
            640..=709 => self.expire(),
            710..=729 => vec!["PERSIST".to_owned(), self.key()],
            730..=779 => vec![
                self.rng
                    .pick(&["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"])
                    .to_owned(),
                self.key(),
            ],
            780..=799 => s(&["DBSIZE"]),
            800..=805 => s(&["FLUSHDB"]),
            806..=899 => vec!["SELECT".to_owned(), self.db()],
        };
        if self.rng.chance(5) {
            args[0] = args[0].to_lowercase();
        }
        args
    }
}

/// Replies whose exact value depends on the clock are reduced to -2, -1 or "positive".
fn normalize(args: &[String], reply: Vec<u8>) -> Vec<u8> {
    let timed = ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"];
    if !timed.iter().any(|t| args[0].eq_ignore_ascii_case(t)) {
        return reply;
    }
    let text = String::from_utf8_lossy(&reply);
    match text
        .strip_prefix(':')
        .and_then(|t| t.strip_suffix("\r\n"))
        .and_then(|n| n.parse::<i64>().ok())
    {
        Some(n) if n > 0 => b":<positive>\r\n".to_vec(),
        _ => reply,
    }
}

/// Whether INCRBYFLOAT on `key` stays within what f64 holds exactly: the key is absent or
/// does not hold a number of magnitude 1e15 or more or with more than 15 digits. Asked of redis-server only (a GET
/// changes nothing either server would show).
fn float_safe(redis: &mut Conn, key: &str) -> bool {
    let reply = redis.cmd_raw(&["GET", key]);
    let Some(body) = reply.strip_prefix(b"$") else {
        return true;
    };
    let text = String::from_utf8_lossy(body);
    let value = text.split("\r\n").nth(1).unwrap_or("");
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    value
        .parse::<f64>()
        .map_or(true, |v| v.abs() < 1e15 && digits <= 15)
}

fn run_seed(redis: &Server, percore: &Server, seed: u64) {
    let mut r = redis.conn();
    let mut p = percore.conn();
    for c in [&mut r, &mut p] {
        assert_eq!(
            c.cmd_raw(&["FLUSHALL"]),
            b"+OK\r\n",
            "FLUSHALL, seed {seed:#x}"
        );
    }
    let mut gen_ = Gen::new(seed);
    let mut history = String::new();
    for i in 0..COMMANDS {
        let mut args = gen_.command();
        if args[0].eq_ignore_ascii_case("INCRBYFLOAT") && !float_safe(&mut r, &args[1]) {
            // percore adds in f64 where Redis uses long double: values past 2^53 differ
            // (a documented limitation), so such keys are only read.
            args.truncate(2);
            "GET".clone_into(&mut args[0]);
        }
        let line = common::command_line(&args);
        let want = normalize(&args, r.cmd_raw(&args));
        let got = normalize(&args, p.cmd_raw(&args));
        let what = format!("seed {seed:#x}, command #{i}");
        assert_same_reply(&want, &got, &what, &line, &mut history);
    }
}

#[test]
fn random_strings_and_keyspace() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    for seed in SEEDS {
        run_seed(&redis, &percore, seed);
    }
}
