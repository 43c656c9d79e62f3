//! The command-table fuzz test: every command and subcommand the server lists in `COMMAND`
//! (so a new command is covered the day it enters the table) is sent to a real server with
//! 0 to 6 arguments drawn from awkward values. After each request the connection must get
//! exactly one well-formed RESP reply and then answer `PING` with `+PONG`: no request may
//! abort a shard, hang it, or leave stray bytes on the connection.
//!
//! Deterministic: the seed is fixed (`PERCORE_FUZZ_SEED` overrides it) and printed with
//! every failure, with the request that failed. Bounded: a fixed number of rounds over the
//! table, cut short (and reported) if `TIME_BUDGET` runs out first.
//!
//! What would stop the test rather than test the server is sent tamed: SHUTDOWN and
//! DEBUG ASSERT (which abort on purpose, tested in tests/lifecycle.rs and tests/misread.rs)
//! are never sent; DEBUG SLEEP sleeps 0 s and DEBUG POPULATE makes at most 100 keys of at
//! most 1000 bytes; CONFIG SET leaves alone the options that would lock the test out or
//! slow every later request (port, requirepass, timeout, rdb-key-save-delay, ...). A
//! command that may change the connection (CLIENT, HELLO, RESET, SELECT, AUTH, QUIT, ...)
//! is followed by `CLIENT REPLY ON` and an `ECHO` marker on the same connection (so
//! CLIENT REPLY OFF/SKIP cannot leave the reader waiting), may close it (QUIT, CLIENT
//! KILL), and the next request goes out on a fresh connection. (P|S)SUBSCRIBE and
//! (P|S)UNSUBSCRIBE answer once per channel and may leave the connection subscribed: they
//! are followed by RESET, read up to `+RESET`, and a fresh connection.

mod common;

use common::{Rng, Server, encode_cmd, show};
use percore_net::resp::{Frame, decode_frame};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Rounds over the whole table: each command and subcommand gets this many requests.
const ROUNDS: usize = 400;
/// The most arguments drawn after the command (and subcommand) name.
const MAX_DRAWN_ARGS: usize = 6;
/// Per server configuration; the test stops early (and says so) when it runs out.
const TIME_BUDGET: Duration = Duration::from_secs(25);
/// Longest a reply may take before the server counts as hung.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default seed; `PERCORE_FUZZ_SEED` overrides it.
const DEFAULT_SEED: u64 = 0x5eed_0013;
/// The long argument: over the 64 KiB inline and count-line limits.
const LONG_ARG_BYTES: usize = 70 * 1024;

/// CONFIG SET options the test never changes: they would lock it out (port, bind,
/// requirepass, maxclients, timeout, the query and output limits), move the server's files,
/// or make every later save crawl (rdb-key-save-delay).
const CONFIG_KEEP: &[&str] = &[
    "port",
    "bind",
    "requirepass",
    "protected-mode",
    "maxclients",
    "timeout",
    "tcp-keepalive",
    "dir",
    "dbfilename",
    "logfile",
    "pidfile",
    "save",
    "rdb-key-save-delay",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "client-output-buffer-limit",
    "metrics-port",
    "maxmemory",
    "cluster-config-file",
];

/// Option words many commands take, added to each command's own (from its HELP text).
const COMMON_WORDS: &[&str] = &[
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "GET",
    "KEEPTTL",
    "PERSIST",
    "MATCH",
    "COUNT",
    "TYPE",
    "ASYNC",
    "SYNC",
    "REPLACE",
    "DB",
    "SCHEDULE",
    "CANCEL",
    "HARD",
    "SOFT",
    "NOSAVE",
    "SAVE",
    "ON",
    "OFF",
    "SKIP",
    "SKIPME",
    "YES",
    "NO",
    "ID",
    "ADDR",
    "LADDR",
    "USER",
    "AUTH",
    "SETNAME",
    "LIB-NAME",
    "LIB-VER",
    "IMPORTING",
    "MIGRATING",
    "STABLE",
    "NODE",
    "WITHSCORES",
    "LIMIT",
    "STORE",
    "ALL",
    "DEFAULT",
    "FULL",
];

/// One command or subcommand of the table.
struct Target {
    /// `GET`, or `OBJECT` + `ENCODING` for a subcommand.
    name: Vec<Vec<u8>>,
    /// Words of its own HELP text and the common option words.
    words: Vec<Vec<u8>>,
    /// Words of its HELP text only: the first argument of a command that takes
    /// subcommands without table rows for them (DEBUG).
    help: Vec<Vec<u8>>,
}

/// How a reply ended, when it did not arrive whole.
#[derive(Debug)]
enum ReadEnd {
    Closed,
    Timeout,
    Malformed(#[allow(dead_code, reason = "read through Debug in failure messages")] String),
}

/// A raw connection that reports closes and timeouts instead of panicking.
struct Link {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Link {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("timeout");
        stream
            .set_write_timeout(Some(REPLY_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Link {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// One whole reply frame: its decoded form and its raw bytes.
    fn read(&mut self) -> Result<(Frame, Vec<u8>), ReadEnd> {
        loop {
            match decode_frame(&self.buf) {
                Ok(Some((frame, used))) => return Ok((frame, self.buf.drain(..used).collect())),
                Ok(None) => {}
                Err(e) => return Err(ReadEnd::Malformed(format!("{e}: {}", show(&self.buf)))),
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadEnd::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadEnd::Timeout);
                }
                Err(_) => return Err(ReadEnd::Closed),
            }
        }
    }
}

fn eq_ic(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn text(f: &Frame) -> Option<&[u8]> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        Frame::Verbatim { text, .. } => Some(text),
        _ => None,
    }
}

/// Upper-case words of a HELP reply (`GETNAME`, `SKIPME`, `LIB-NAME`...).
fn help_words(help: &Frame) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    if let Frame::Array(lines) = help {
        for line in lines.iter().filter_map(text) {
            for w in line.split(|b| !(b.is_ascii_alphanumeric() || *b == b'-')) {
                if w.len() >= 2
                    && w.iter().any(u8::is_ascii_uppercase)
                    && !w.iter().any(u8::is_ascii_lowercase)
                    && !words.iter().any(|x: &Vec<u8>| x == w)
                {
                    words.push(w.to_vec());
                }
            }
        }
    }
    words
}

/// Every command and subcommand of `COMMAND`, with its option words.
fn discover(link: &mut Link) -> Vec<Target> {
    assert!(link.send(&encode_cmd(&["COMMAND"])));
    let (Frame::Array(entries), _) = link.read().expect("COMMAND reply") else {
        panic!("COMMAND is not an array");
    };
    let mut names: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for entry in &entries {
        let Frame::Array(fields) = entry else {
            panic!("COMMAND entry {entry:?}")
        };
        let name = text(&fields[0]).expect("command name").to_ascii_uppercase();
        let mut subs = Vec::new();
        if let Some(Frame::Array(rows)) = fields.get(9) {
            for row in rows {
                let Frame::Array(sub) = row else { continue };
                let full = text(&sub[0]).expect("subcommand name");
                let pos = full.iter().position(|&b| b == b'|').expect("container|sub");
                subs.push(full[pos + 1..].to_ascii_uppercase());
            }
        }
        names.push((name, subs));
    }
    names.sort();
    let mut targets = Vec::new();
    for (name, subs) in names {
        let mut help = Vec::new();
        if !eq_ic(&name, "SHUTDOWN") && !eq_ic(&name, "QUIT") && !eq_ic(&name, "RESET") {
            assert!(link.send(&encode_cmd(&[&name[..], b"HELP"])));
            let (reply, _) = link.read().expect("HELP reply");
            help = help_words(&reply);
        }
        let mut words = help.clone();
        if eq_ic(&name, "CONFIG") {
            assert!(link.send(&encode_cmd(&["CONFIG", "GET", "*"])));
            if let Ok((Frame::Array(kv), _)) = link.read() {
                words.extend(kv.iter().step_by(2).filter_map(text).map(<[u8]>::to_vec));
            }
        }
        words.extend(COMMON_WORDS.iter().map(|w| w.as_bytes().to_vec()));
        for sub in &subs {
            targets.push(Target {
                name: vec![name.clone(), sub.clone()],
                words: words.clone(),
                help: Vec::new(),
            });
        }
        targets.push(Target {
            name: vec![name],
            words,
            help: if subs.is_empty() { help } else { Vec::new() },
        });
    }
    targets
}

/// An awkward argument: edge numbers, empty, non-UTF-8, glob patterns, the long string,
/// keys of every shard and hashtags, or an option word of the command.
fn draw_arg(rng: &mut Rng, words: &[Vec<u8>], long: &[u8]) -> Vec<u8> {
    const NUMBERS: &[&[u8]] = &[
        b"0",
        b"1",
        b"-1",
        b"3",
        b"100",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"9223372036854775808",
        b"1099511627776",
        b"4294967296",
        b"inf",
        b"nan",
        b"1e308",
    ];
    const FIXED: &[&[u8]] = &[
        b"",
        b"HELP",
        b"help",
        b"0",
        b"1",
        b"-1",
        b"2",
        b"10",
        b"16383",
        b"16384",
        b"-16384",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"18446744073709551616",
        b"99999999999999999999999999999",
        b"4294967296",
        b"2147483648",
        b"inf",
        b"-inf",
        b"+inf",
        b"nan",
        b"-nan",
        b"1e308",
        b"1e309",
        b"-0",
        b"0.5",
        b"3.14",
        b" 1",
        b"1 ",
        b"0x10",
        b"\xff\xfe\x80",
        b"\x00",
        b"a\x00b",
        b"\r\n",
        b"*",
        b"?",
        b"[",
        b"[a-",
        b"\\",
        b"*\\",
        b"127.0.0.1:1",
        b"0123456789abcdef0123456789abcdef01234567",
        b"k",
        b"k1",
        b"k2",
        b"k3",
        b"{t}a",
        b"{t}b",
        b"{}",
        b"{",
        b"}{",
        b"s",
    ];
    match rng.below(12) {
        0..=2 if !words.is_empty() => words[rng.below(words.len())].clone(),
        3 => long.to_vec(),
        4 => format!("key:{}", rng.below(20)).into_bytes(),
        6 | 7 => NUMBERS[rng.below(NUMBERS.len())].to_vec(),
        5 => {
            let n = rng.below(9);
            (0..n).map(|_| rng.next() as u8).collect()
        }
        _ => FIXED[rng.below(FIXED.len())].to_vec(),
    }
}

/// Makes a request safe to send without stopping the test, or `None` to skip it.
fn tame(mut argv: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let name = argv[0].clone();
    if eq_ic(&name, "SHUTDOWN") {
        return None;
    }
    // PSYNC/SYNC turn the connection into a replica's link (an RDB transfer, then the
    // stream: no longer request/reply); REPLICAOF with a host makes the server a replica
    // that may reach some local server: not sent (tests/replication.rs covers them).
    if ["PSYNC", "SYNC"].iter().any(|n| eq_ic(&name, n)) {
        return None;
    }
    if ["REPLICAOF", "SLAVEOF"].iter().any(|n| eq_ic(&name, n))
        && argv.len() == 3
        && !(eq_ic(&argv[1], "NO") && eq_ic(&argv[2], "ONE"))
    {
        return None;
    }
    if eq_ic(&name, "DEBUG") && argv.len() >= 2 {
        let sub = argv[1].clone();
        if eq_ic(&sub, "ASSERT") {
            return None;
        }
        if eq_ic(&sub, "SLEEP") && argv.len() >= 3 {
            argv[2] = b"0".to_vec();
        }
        if eq_ic(&sub, "POPULATE") {
            let num = |a: &[u8]| std::str::from_utf8(a).ok()?.parse::<i128>().ok();
            if let Some(n) = argv.get(2).and_then(|a| num(a))
                && n > 100
            {
                argv[2] = b"100".to_vec();
            }
            // Sizes past proto-max-bulk-len stay: they must be refused.
            if let Some(n) = argv.get(4).and_then(|a| num(a))
                && (1000..=512 * 1024 * 1024).contains(&n)
            {
                argv[4] = b"1000".to_vec();
            }
        }
    }
    // Blocking commands: a timeout that would wait (0 is forever) becomes 10 ms.
    let timeout_at = if ["BLMPOP", "BZMPOP"].iter().any(|n| eq_ic(&name, n)) {
        Some(1)
    } else if [
        "BLPOP",
        "BRPOP",
        "BLMOVE",
        "BRPOPLPUSH",
        "BZPOPMIN",
        "BZPOPMAX",
    ]
    .iter()
    .any(|n| eq_ic(&name, n))
    {
        Some(argv.len() - 1)
    } else {
        None
    };
    if let Some(i) = timeout_at.filter(|&i| i > 0 && i < argv.len())
        && std::str::from_utf8(&argv[i])
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .is_some_and(|t| t >= 0.0)
    {
        argv[i] = b"0.01".to_vec();
    }
    if eq_ic(&name, "CONFIG") && argv.len() >= 3 && eq_ic(&argv[1], "SET") {
        for i in (2..argv.len()).step_by(2) {
            if CONFIG_KEEP.iter().any(|k| eq_ic(&argv[i], k)) {
                argv[i] = b"slowlog-max-len".to_vec();
            }
        }
    }
    Some(argv)
}

/// Whether a request may change its connection (protocol, database, reply mode, name,
/// authentication) or close it: it is fenced with `CLIENT REPLY ON` + `ECHO`, and the next
/// request uses a fresh connection.
fn changes_connection(argv: &[Vec<u8>]) -> bool {
    [
        "CLIENT",
        "HELLO",
        "RESET",
        "SELECT",
        "AUTH",
        "QUIT",
        "READONLY",
        "READWRITE",
        "ASKING",
    ]
    .iter()
    .any(|c| eq_ic(&argv[0], c))
}

/// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE: one reply per channel argument, and the
/// connection may stay in subscribed mode.
fn subscribes(argv: &[Vec<u8>]) -> bool {
    [
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "PSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SSUBSCRIBE",
        "SUNSUBSCRIBE",
    ]
    .iter()
    .any(|c| eq_ic(&argv[0], c))
}

fn describe(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| {
            if a.len() > 40 {
                format!("<{} bytes>", a.len())
            } else {
                format!("{:?}", String::from_utf8_lossy(a))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the fuzz rounds against one server; returns how many requests were sent.
fn fuzz_server(server: &mut Server, label: &str, seed: u64) -> usize {
    let port = server.port();
    let mut link = Link::connect(port);
    let targets = discover(&mut link);
    let names: Vec<String> = targets.iter().map(|t| describe(&t.name)).collect();
    for must in ["\"OBJECT\" \"HELP\"", "\"GET\"", "\"CLIENT\" \"KILL\""] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} not discovered: {names:?}"
        );
    }
    let long: Vec<u8> = (0..LONG_ARG_BYTES).map(|i| b'a' + (i % 26) as u8).collect();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut sent = 0;
    let marker = b"fuzz-fence".to_vec();
    'rounds: for round in 0..ROUNDS {
        for (ti, target) in targets.iter().enumerate() {
            if started.elapsed() > TIME_BUDGET {
                eprintln!(
                    "{label}: time budget of {TIME_BUDGET:?} used up in round {round} after {sent} requests"
                );
                break 'rounds;
            }
            let mut argv = target.name.clone();
            let n = rng.below(MAX_DRAWN_ARGS + 1);
            for i in 0..n {
                if i == 0 && !target.help.is_empty() && rng.below(2) == 0 {
                    argv.push(target.help[rng.below(target.help.len())].clone());
                } else {
                    argv.push(draw_arg(&mut rng, &target.words, &long));
                }
            }
            let Some(argv) = tame(argv) else { continue };
            sent += 1;
            let fail = |why: String, server: &Server| -> ! {
                panic!(
                    "{label} seed {seed:#x} round {round} target {ti} request #{sent}: {}\n{why}\n\
                     server log:\n{}",
                    describe(&argv),
                    server.output()
                )
            };
            let fenced = changes_connection(&argv);
            let mut req = encode_cmd(&argv);
            if subscribes(&argv) {
                // One reply per channel (or one error), then RESET, the one command a RESP2
                // subscriber may run that leaves subscribed mode: read up to `+RESET`.
                req.extend(encode_cmd(&["RESET"]));
                if !link.send(&req) {
                    fail("the server closed the connection".into(), server);
                }
                let most = argv.len().max(2);
                let mut replies = 0;
                loop {
                    match link.read() {
                        Ok((_, raw)) if raw == b"+RESET\r\n" => break,
                        Ok((_, raw)) => {
                            replies += 1;
                            if replies > most {
                                fail(
                                    format!("more replies than channels: {}", show(&raw)),
                                    server,
                                );
                            }
                        }
                        Err(e) => fail(format!("pub/sub request: {e:?}"), server),
                    }
                }
                link = Link::connect(port);
                continue;
            }
            if eq_ic(&argv[0], "MULTI") {
                // MULTI queues what follows: DISCARD ends it (or answers an error when
                // MULTI was refused); two replies, then the PING below.
                req.extend(encode_cmd(&["DISCARD"]));
                if !link.send(&req) {
                    fail("the server closed the connection".into(), server);
                }
                for _ in 0..2 {
                    if let Err(e) = link.read() {
                        fail(format!("MULTI + DISCARD: {e:?}"), server);
                    }
                }
            } else if fenced {
                req.extend(encode_cmd(&["CLIENT", "REPLY", "ON"]));
                req.extend(encode_cmd(&[b"ECHO".as_slice(), &marker]));
            }
            if eq_ic(&argv[0], "MULTI") {
                // Sent and read above.
            } else if !link.send(&req) {
                fail(
                    "the server closed the connection before the request went out".into(),
                    server,
                );
            } else if fenced {
                // Up to three replies (CLIENT REPLY OFF/SKIP silence some), the last the
                // marker; or a close, by QUIT or CLIENT KILL only.
                let may_close = eq_ic(&argv[0], "QUIT") || eq_ic(&argv[0], "CLIENT");
                let mut replies = 0;
                loop {
                    match link.read() {
                        Ok((frame, raw)) => {
                            replies += 1;
                            if text(&frame) == Some(&marker[..]) {
                                break;
                            }
                            if replies >= 3 {
                                fail(
                                    format!("a fourth reply before the fence: {}", show(&raw)),
                                    server,
                                );
                            }
                        }
                        Err(ReadEnd::Closed) if may_close => break,
                        Err(e) => fail(format!("fenced request: {e:?}"), server),
                    }
                }
                link = Link::connect(port);
            } else {
                match link.read() {
                    Ok(_) => {}
                    Err(e) => fail(format!("no reply: {e:?}"), server),
                }
            }
            // Exactly one reply came: the next thing on the connection is PONG.
            if !link.send(&encode_cmd(&["PING"])) {
                fail("PING could not be sent".into(), server);
            }
            match link.read() {
                Ok((_, raw)) if raw == b"+PONG\r\n" => {}
                Ok((_, raw)) => fail(format!("PING got {}", show(&raw)), server),
                Err(e) => fail(format!("PING: {e:?}"), server),
            }
        }
    }
    assert!(server.is_running(), "{label}: the server exited");
    eprintln!(
        "{label}: {sent} requests over {} commands and subcommands in {:?}",
        targets.len(),
        started.elapsed()
    );
    sent
}

fn seed() -> u64 {
    std::env::var("PERCORE_FUZZ_SEED")
        .ok()
        .and_then(|s| {
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(DEFAULT_SEED)
}

#[test]
fn every_command_survives_awkward_arguments_with_two_shards() {
    let mut s = Server::percore(&["--threads", "2"]);
    let sent = fuzz_server(&mut s, "threads 2", seed());
    assert!(sent >= 500, "only {sent} requests ran");
}

#[test]
fn every_command_survives_awkward_arguments_with_one_shard() {
    let mut s = Server::percore(&["--threads", "1"]);
    let sent = fuzz_server(&mut s, "threads 1", seed() ^ 1);
    assert!(sent >= 500, "only {sent} requests ran");
}

#[test]
fn every_command_survives_awkward_arguments_in_cluster_mode() {
    let mut s = Server::percore(&["--threads", "2", "--cluster-enabled", "yes"]);
    let sent = fuzz_server(&mut s, "cluster", seed() ^ 2);
    assert!(sent >= 500, "only {sent} requests ran");
}

/// Found by the fuzz test: DEBUG POPULATE allocated whatever value size it was given, and a
/// failed terabyte allocation aborted the server.
#[test]
fn debug_populate_refuses_value_sizes_it_cannot_hold() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    for size in ["1099511627776", "9223372036854775807", "536870913"] {
        assert_eq!(
            c.cmd(&["DEBUG", "POPULATE", "100", "x", size]),
            common::err("ERR value size is larger than proto-max-bulk-len"),
            "size {size}"
        );
    }
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "3", "x", "10"]), common::ok());
    assert_eq!(c.cmd(&["GET", "x:1"]), common::bulk(b"value:1\0\0\0"));
    assert_eq!(c.cmd(&["PING"]), common::simple("PONG"));
}
