//! COMMAND GETKEYS / GETKEYSANDFLAGS against a real `redis-server` 7.0: commands and
//! subcommands, Redis 7.0's key-spec flags (SET is `OW update`, OBJECT's `RO`, XGROUP
//! CREATE `RW insert`...), keyword and numkeys specs, the getkeys procedures, and the
//! errors, compared byte for byte.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Server, show, split_args};

const CASES: &[&str] = &[
    "SET k1 v1",
    "GET k1",
    "MSET a 1 b 2",
    "DEL a b c",
    "LMOVE a b LEFT RIGHT",
    "OBJECT ENCODING k",
    "OBJECT FREQ k",
    "MEMORY USAGE k",
    "MEMORY USAGE k SAMPLES 5",
    "MEMORY STATS",
    "XGROUP CREATE s g $",
    "XGROUP SETID s g $",
    "XGROUP DESTROY s g",
    "XINFO STREAM s",
    "XREAD COUNT 1 STREAMS s1 s2 0 0",
    "XREADGROUP GROUP g c STREAMS s 0",
    "GEORADIUS src 1 1 1 km STORE dst",
    "GEORADIUS src 1 1 1 km",
    "ZUNIONSTORE d 2 a b",
    "EVAL \"return 1\" 2 a b",
    "EVAL \"return 1\" 0",
    "EVALSHA_RO abc 0",
    "FCALL f 0",
    "FCALL_RO f 1 k",
    "SORT l STORE d",
    "MIGRATE h 1 k 0 5",
    "MIGRATE h 1 \"\" 0 5 KEYS a b",
    "MIGRATE h 1 \"\" 0 5 AUTH2 u p KEYS a b",
    "BITFIELD b GET u8 0",
    "BITFIELD_RO b GET u8 0",
    "LCS a b",
    "RENAME a b",
    "COPY a b",
    "SETRANGE k 0 x",
    "APPEND k x",
    "PFMERGE d a b",
    "EXPIRE k 10",
    "PING",
    "CONFIG GET x",
    "MEMORY",
    "MEMORY NOSUCH k",
    "NOSUCHCOMMAND k",
    "SET k",
    "ZUNIONSTORE d 5 a b",
];

fn replies(port: u16, with_flags: bool) -> Vec<String> {
    let mut c = common::Conn::connect(port);
    let sub = if with_flags {
        "GETKEYSANDFLAGS"
    } else {
        "GETKEYS"
    };
    CASES
        .iter()
        .map(|line| {
            let mut args = vec![b"COMMAND".to_vec(), sub.as_bytes().to_vec()];
            args.extend(split_args(line));
            show(&c.cmd_raw(&args))
        })
        .collect()
}

#[test]
fn getkeys_and_flags_match_redis() {
    let Some(redis) = Server::redis() else { return };
    let percore = Server::percore(&["--threads", "2"]);
    for with_flags in [false, true] {
        let want = replies(redis.port(), with_flags);
        let got = replies(percore.port(), with_flags);
        for ((line, w), g) in CASES.iter().zip(&want).zip(&got) {
            assert_eq!(
                g,
                w,
                "COMMAND GETKEYS{} {line}",
                if with_flags { "ANDFLAGS" } else { "" }
            );
        }
    }
}
