//! Differential tests: the same command sequences against a real `redis-server` and
//! percore (`--threads 2`), replies compared byte for byte.
//!
//! Each case is a script, one command per line, arguments split on spaces; `"..."` quotes
//! an argument (`""` is the empty string) and `!sleep MS` pauses both servers' clients.
//! Replies that legitimately differ between servers (INFO, CLIENT ID, TIME, HELLO's
//! server fields, PTTL's exact milliseconds, SCAN cursors, KEYS order) are left out.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Server, show, split_args};
use std::fmt::Write as _;
use std::io::Read;
use std::time::Duration;

/// The two servers under comparison.
struct Pair {
    redis: Server,
    percore: Server,
}

impl Pair {
    /// Both servers, or `None` when redis-server is absent (and not required).
    fn start() -> Option<Self> {
        let redis = Server::redis()?;
        let percore = Server::percore_threads(2);
        Some(Pair { redis, percore })
    }

    /// Runs each case on a fresh connection pair after FLUSHALL; returns every mismatch.
    fn run(&self, cases: &[(&str, &str)], resp3: bool) -> Vec<String> {
        let mut diffs = Vec::new();
        for (name, script) in cases {
            let mut r = self.redis.conn();
            let mut p = self.percore.conn();
            for c in [&mut r, &mut p] {
                assert_eq!(
                    c.cmd_raw(&["FLUSHALL"]),
                    b"+OK\r\n",
                    "FLUSHALL before {name}"
                );
                if resp3 {
                    // HELLO's reply names the server: not compared.
                    let hello = c.cmd_raw(&["HELLO", "3"]);
                    assert!(hello.starts_with(b"%"), "HELLO 3: {}", show(&hello));
                }
            }
            for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if let Some(ms) = line.strip_prefix("!sleep ") {
                    std::thread::sleep(Duration::from_millis(ms.parse().expect("sleep ms")));
                    continue;
                }
                // Shown with the failure if a server stops answering.
                println!("[{name}] {line}");
                let args = split_args(line);
                let want = r.cmd_raw(&args);
                let got = p.cmd_raw(&args);
                if want != got {
                    diffs.push(format!(
                        "[{name}] {line}\n    redis:   {:?}\n    percore: {:?}",
                        show(&want),
                        show(&got)
                    ));
                }
            }
        }
        diffs
    }
}

/// Runs the cases (RESP2) and fails with every mismatch listed.
fn check(cases: &[(&str, &str)]) {
    check_proto(cases, false);
}

fn check_proto(cases: &[(&str, &str)], resp3: bool) {
    let Some(pair) = Pair::start() else {
        return;
    };
    let diffs = pair.run(cases, resp3);
    assert!(
        diffs.is_empty(),
        "{} replies differ from redis-server:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn strings_basic() {
    check(&[
        (
            "set-get",
            r#"
            SET k v
            GET k
            GET missing
            SET k ""
            GET k
            STRLEN k
            SET k "with space"
            GET k
            get k
            gEt k
            SET k 12345
            GET k
            DEL k
            GET k
            "#,
        ),
        (
            "mset-mget",
            "
            MSET a 1 b 2 c 3
            MGET a b c d
            MGET d
            MGET a a a
            MSET a x a y
            GET a
            DBSIZE
            DEL a b d a
            DBSIZE
            MSET a
            MSET a 1 b
            MGET
            ",
        ),
        (
            "append-strlen",
            r#"
            APPEND ap hello
            APPEND ap " world"
            GET ap
            STRLEN ap
            STRLEN missing
            APPEND ap ""
            SET n 10
            APPEND n 5
            INCR n
            "#,
        ),
        (
            "getset-getdel",
            "
            GETSET gs a
            GETSET gs b
            GET gs
            GETDEL gs
            GETDEL gs
            EXISTS gs
            SETNX nx 1
            SETNX nx 2
            GET nx
            ",
        ),
        (
            "getrange",
            r#"
            SET s "Hello World"
            GETRANGE s 0 4
            GETRANGE s -5 -1
            GETRANGE s -100 -50
            GETRANGE s -100 100
            GETRANGE s 5 3
            GETRANGE s 0 -100
            GETRANGE s -1 -5
            GETRANGE s 100 200
            GETRANGE s 0 -1
            GETRANGE s -1 -1
            GETRANGE s 10 10
            GETRANGE s 11 11
            GETRANGE s 0 9223372036854775807
            GETRANGE s -9223372036854775808 -1
            GETRANGE missing 0 -1
            GETRANGE s a 1
            GETRANGE s 0 b
            GETRANGE s 0
            SUBSTR s 1 3
            SET e ""
            GETRANGE e 0 -1
            GETRANGE e -1 0
            "#,
        ),
        (
            "setrange",
            r#"
            SET s "Hello World"
            SETRANGE s 6 Redis
            GET s
            SETRANGE s 20 !
            GET s
            SETRANGE pad 3 x
            GET pad
            SETRANGE s -1 x
            SETRANGE s abc x
            SETRANGE empty 0 ""
            EXISTS empty
            SETRANGE empty 10 ""
            EXISTS empty
            SETRANGE s 0 ""
            GET s
            SETRANGE s 536870912 x
            SETRANGE s 536870911 ""
            "#,
        ),
    ]);
}

#[test]
fn set_options() {
    check(&[
        (
            "nx-xx-get",
            "
            SET k v NX
            SET k w NX
            GET k
            SET k w XX
            GET k
            SET nk w XX
            EXISTS nk
            SET k v NX XX
            SET k v XX NX
            SET k v2 GET
            SET k2 v GET
            SET k v3 NX GET
            SET k v4 XX GET
            SET k4 v XX GET
            SET k v nx
            SET k v FOO
            SET k v GET GET
            SET k v NX NX
            ",
        ),
        (
            "expiry-options",
            "
            SET k v EX 100
            TTL k
            SET k v PX 100000
            TTL k
            SET k v ex 100
            SET k v EX 0
            SET k v EX -1
            SET k v PX 0
            SET k v PX -5
            SET k v EX abc
            SET k v EX 1.5
            SET k v EX
            SET k v PX
            SET k v EX 100 PX 100
            SET k v EX 10 KEEPTTL
            SET k v KEEPTTL EX 10
            SET k v EX 9223372036854775807
            SET k v PX 9223372036854775807
            SET k v EX 9223372036854775
            SET k v EXAT 0
            SET k v PXAT -1
            SET k v EX 100
            SET k w KEEPTTL
            TTL k
            GET k
            SET k w
            TTL k
            SET k v EXAT 4000000000
            EXPIRETIME k
            PEXPIRETIME k
            SET k v PXAT 4000000000123
            PEXPIRETIME k
            EXPIRETIME k
            SET k v EXAT 1
            GET k
            EXISTS k
            SET k v PXAT 1 GET
            GET k
            ",
        ),
        (
            "expires-for-real",
            "
            SET short v PX 60
            GET short
            !sleep 150
            GET short
            EXISTS short
            TTL short
            SET k v PX 60
            SET k v KEEPTTL
            !sleep 150
            GET k
            ",
        ),
        (
            "setex-psetex",
            "
            SETEX k 100 v
            GET k
            TTL k
            SETEX k 0 v
            SETEX k -5 v
            SETEX k abc v
            SETEX k 100
            PSETEX k 100000 v
            TTL k
            PSETEX k 0 v
            PSETEX k -1 v
            SETEX k 9223372036854775807 v
            PSETEX k 9223372036854775807 v
            ",
        ),
        (
            "getex",
            "
            SET k v
            GETEX k
            TTL k
            GETEX k EX 100
            TTL k
            GETEX k PERSIST
            TTL k
            GETEX k PX 100000
            TTL k
            GETEX k EXAT 4000000000
            EXPIRETIME k
            GETEX k EX 0
            GETEX k EX -1
            GETEX k EX abc
            GETEX k FOO
            GETEX k EX 10 PX 10
            GETEX k PERSIST EX 10
            GETEX missing EX 10
            GETEX missing
            GETEX k PXAT 1
            GET k
            ",
        ),
    ]);
}

#[test]
fn integers() {
    check(&[
        (
            "incr-decr",
            r#"
            INCR n
            INCR n
            DECR n
            DECR n
            DECR n
            INCRBY n 10
            INCRBY n -20
            DECRBY n 5
            DECRBY n -5
            GET n
            INCRBY n abc
            INCRBY n 1.5
            INCRBY n ""
            DECRBY n x
            INCRBY fresh 7
            DECRBY fresh2 7
            "#,
        ),
        (
            "overflow",
            "
            SET n 9223372036854775806
            INCR n
            INCR n
            GET n
            SET n -9223372036854775807
            DECR n
            DECR n
            GET n
            SET n 1
            INCRBY n 9223372036854775807
            DECRBY n -9223372036854775808
            SET n -1
            INCRBY n -9223372036854775808
            INCRBY n -1
            DECRBY n 9223372036854775808
            SET n 0
            DECRBY n -9223372036854775808
            INCRBY n 9223372036854775808
            ",
        ),
        (
            "not-integers",
            r#"
            SET n abc
            INCR n
            SET n " 1"
            INCR n
            SET n "1 "
            INCR n
            SET n 1.5
            INCR n
            SET n 007
            INCR n
            SET n +1
            INCR n
            SET n -0
            INCR n
            SET n ""
            INCR n
            SET n 12345678901234567890
            INCR n
            SET n 0
            INCR n
            SET n -9223372036854775808
            INCR n
            SET n 9223372036854775808
            INCR n
            "#,
        ),
        (
            "incrbyfloat",
            "
            INCRBYFLOAT f 3
            INCRBYFLOAT f 1.5
            INCRBYFLOAT f -4.5
            SET f 10.5
            INCRBYFLOAT f 0.25
            INCRBYFLOAT f 5.0e3
            INCRBYFLOAT f -5010.75
            GET f
            INCRBYFLOAT f abc
            INCRBYFLOAT f inf
            INCRBYFLOAT f -inf
            INCRBYFLOAT f nan
            INCRBYFLOAT f \"\"
            SET f abc
            INCRBYFLOAT f 1
            SET f 1e3
            INCRBYFLOAT f 1
            SET f 7
            INCRBYFLOAT f 0
            GET f
            ",
        ),
    ]);
}

#[test]
fn keyspace() {
    check(&[
        (
            "del-exists-type",
            "
            MSET a 1 b 2 c 3
            EXISTS a
            EXISTS a a b missing
            TOUCH a b missing
            TYPE a
            TYPE missing
            DEL a a
            UNLINK b missing
            DBSIZE
            EXISTS a b c
            DEL missing
            ",
        ),
        (
            "expire-ttl",
            "
            SET k v
            TTL k
            PTTL k
            TTL missing
            PTTL missing
            EXPIRE k 100
            TTL k
            EXPIRE k 100 NX
            EXPIRE k 200 XX
            TTL k
            EXPIRE k 50 GT
            EXPIRE k 300 GT
            TTL k
            EXPIRE k 400 LT
            EXPIRE k 100 LT
            TTL k
            PERSIST k
            PERSIST k
            TTL k
            EXPIRE k 100 GT
            EXPIRE k 100 LT
            TTL k
            PERSIST k
            EXPIRE k 100 XX
            TTL k
            EXPIRE k 100 NX XX
            EXPIRE k 100 GT LT
            EXPIRE k 100 NX GT
            EXPIRE k 100 FOO
            EXPIRE k abc
            EXPIRE k 1.5
            EXPIRE k
            EXPIRE missing 100
            EXPIRE k 9223372036854775807
            PEXPIRE k 9223372036854775807
            EXPIRE k 9223372036854775
            EXPIREAT k 4000000000
            EXPIRETIME k
            PEXPIREAT k 4000000000000
            PEXPIRETIME k
            EXPIRETIME missing
            SET p v
            EXPIRETIME p
            PEXPIRETIME p
            PEXPIRE k 100000
            TTL k
            EXPIRE k 0
            EXISTS k
            SET k v
            EXPIRE k -1
            GET k
            SET k v
            EXPIREAT k 1
            GET k
            SET k v
            PEXPIREAT k 0
            GET k
            ",
        ),
        (
            "flush-swap",
            "
            SET a 1
            SELECT 1
            SET b 2
            SWAPDB 0 1
            GET b
            SELECT 0
            GET b
            GET a
            SWAPDB 0 16
            SWAPDB abc 1
            SWAPDB 1 abc
            SWAPDB 0 0
            FLUSHDB
            DBSIZE
            SELECT 1
            DBSIZE
            FLUSHDB ASYNC
            FLUSHDB SYNC
            FLUSHDB FOO
            FLUSHALL FOO
            FLUSHALL ASYNC
            FLUSHALL SYNC
            DBSIZE
            ",
        ),
        (
            "keys-scan-randomkey",
            "
            KEYS *
            RANDOMKEY
            SET only-key 1
            KEYS *
            KEYS only*
            KEYS nope*
            KEYS o?ly-key
            KEYS [a-p]nly-key
            RANDOMKEY
            ",
        ),
    ]);
}

/// SCAN deletes the expired keys it meets that pass MATCH (with TYPE too: its type check
/// is a lookup), as Redis 7.0's scanGenericCommand; active expiry is off so only SCAN can
/// have deleted them (redis needs `enable-debug-command` for that).
#[test]
fn scan_deletes_expired_keys() {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let pair = Pair {
        redis,
        percore: Server::percore_threads(2),
    };
    let diffs = pair.run(
        &[(
            "scan-deletes-expired",
            "
            DEBUG SET-ACTIVE-EXPIRE 0
            SET live 1
            SET k1 1
            SET k2 1
            SET x1 1
            PEXPIRE k1 1
            PEXPIRE k2 1
            PEXPIRE x1 1
            !sleep 20
            DBSIZE
            SCAN 0 MATCH k* COUNT 1000
            DBSIZE
            SCAN 0 MATCH live COUNT 1000 TYPE string
            DBSIZE
            SCAN 0 TYPE hash COUNT 1000
            DBSIZE
            ",
        )],
        false,
    );
    assert!(
        diffs.is_empty(),
        "replies differ from redis-server:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn connection_and_databases() {
    check(&[
        (
            "ping-echo",
            "
            PING
            PING hello
            PING a b
            ECHO hi
            ECHO
            ECHO a b
            ",
        ),
        (
            "select",
            "
            SELECT 1
            SET k in-db1
            SELECT 0
            GET k
            SELECT 15
            DBSIZE
            SELECT 1
            GET k
            SELECT 16
            SELECT -1
            SELECT abc
            SELECT 1 2
            SELECT
            GET k
            ",
        ),
        (
            "client-name",
            "
            CLIENT GETNAME
            CLIENT SETNAME conn-a
            CLIENT GETNAME
            CLIENT SETNAME \"a b\"
            CLIENT SETNAME \"\"
            CLIENT GETNAME
            CLIENT FOO
            ",
        ),
        (
            "auth-hello-reset",
            "
            AUTH foo
            AUTH a b c
            AUTH default anything
            AUTH someone else
            HELLO 4
            HELLO abc
            SELECT 3
            SET k v
            RESET
            GET k
            ",
        ),
    ]);
}

#[test]
fn server_commands() {
    check(&[
        (
            "config",
            "
            CONFIG GET databases
            CONFIG GET maxmemory
            CONFIG GET nosuchparam
            CONFIG SET nosuchparam 1
            CONFIG SET maxmemory abc
            CONFIG SET maxmemory 10mb
            CONFIG GET maxmemory
            CONFIG SET maxmemory 0
            CONFIG
            CONFIG FOO
            CONFIG GET
            ",
        ),
        (
            "slowlog-latency",
            "
            SLOWLOG RESET
            SLOWLOG LEN
            SLOWLOG GET
            SLOWLOG FOO
            SLOWLOG GET abc
            LATENCY FOO
            LATENCY RESET
            TIME x
            LASTSAVE x
            ",
        ),
        (
            "client-command",
            "
            CLIENT NOSUCH
            CLIENT SETNAME
            CLIENT NO-EVICT on
            CLIENT REPLY ON
            CLIENT GETNAME
            COMMAND INFO nosuch
            COMMAND GETKEYS get a
            COMMAND GETKEYS mset a 1 b 2
            COMMAND GETKEYS ping
            COMMAND GETKEYS nosuch a
            ",
        ),
    ]);
}

#[test]
fn errors() {
    check(&[
        (
            "unknown-commands",
            r#"
            NOSUCHCOMMAND
            NOSUCHCOMMAND a b c
            nosuch "with space" x
            ""
            "#,
        ),
        (
            "arity",
            "
            GET
            GET a b
            SET a
            MGET
            MSET
            INCR
            INCR a b
            DEL
            DBSIZE x
            ECHO
            APPEND a
            STRLEN
            GETRANGE a 1
            SETRANGE a 1
            INCRBY a
            DECRBY a
            INCRBYFLOAT a
            GETSET a
            GETDEL
            SETNX a
            SETEX a 1
            PSETEX a 1
            MSETNX
            EXISTS
            TYPE
            RENAME a
            RENAMENX a
            COPY a
            MOVE a
            EXPIRE a
            PEXPIRE a
            EXPIREAT a
            PEXPIREAT a
            TTL
            PTTL
            PERSIST
            EXPIRETIME
            KEYS
            RANDOMKEY x
            SWAPDB 0
            UNLINK
            TOUCH
            ",
        ),
    ]);
}

#[test]
fn resp3_replies() {
    check_proto(
        &[(
            "resp3",
            "
            RANDOMKEY
            GET missing
            MGET missing a
            SET a 1
            MGET missing a
            SET a 2 NX
            SET a 2 XX GET
            INCRBYFLOAT f 1.5
            GETDEL missing
            GETEX missing
            CLIENT GETNAME
            PING
            ECHO x
            GETRANGE missing 0 1
            INCR a
            NOSUCH a
            ",
        )],
        true,
    );
}

/// Reads everything the server sends until it closes the connection or `sentinel` ends
/// the bytes read so far (bounded by the connection's read timeout).
fn read_until_close_or(conn: &Conn, sentinel: &[u8], input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = conn.stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => {
                out.extend_from_slice(b"<closed>");
                return out;
            }
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                if out.ends_with(sentinel) {
                    return out;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                out.extend_from_slice(b"<reset>");
                return out;
            }
            Err(e) => panic!(
                "reading raw replies to {:?}: {e}; have {:?}",
                show(input),
                show(&out)
            ),
        }
    }
}

#[test]
fn raw_protocol() {
    let Some(pair) = Pair::start() else {
        return;
    };
    // Each input is followed by `ECHO __end__`: either the server answers it, or the
    // input broke the protocol and the connection is closed first.
    let inputs: &[&[u8]] = &[
        b"*abc\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\nfoo\r\n",
        b"*2\r\n$3\r\nGET\r\n:12\r\n",
        b"*9999999999\r\n",
        b"*-1\r\n*0\r\n*-99\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"*1\r\n$4\r\nPINGxx",
        b"*1\r\n$536870913\r\n",
        b"SET \"unterminated\r\n",
        b"SET 'single\r\n",
        b"SET \"a\"b c\r\n",
        b"ECHO \"\\x41\\x4a\\t\\\\\"\r\n",
        b"ECHO 'it\\'s'\r\n",
        b"ECHO \"\"\r\n",
        b"   \r\n\n\r\n",
        b"PING\n",
        b"ping\r\nPING x\r\n",
        b"$3\r\nfoo\r\n",
        b":1\r\n",
        b"+PING\r\n",
        b"-ERR\r\n",
    ];
    let sentinel = b"$7\r\n__end__\r\n";
    let mut diffs = Vec::new();
    for input in inputs {
        let mut results = Vec::new();
        for server in [&pair.redis, &pair.percore] {
            let mut c = server.conn();
            let mut req = input.to_vec();
            req.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$7\r\n__end__\r\n");
            c.send(&req);
            results.push(read_until_close_or(&c, sentinel, input));
        }
        if results[0] != results[1] {
            let mut d = String::new();
            let _ = write!(
                d,
                "input {:?}\n    redis:   {:?}\n    percore: {:?}",
                show(input),
                show(&results[0]),
                show(&results[1])
            );
            diffs.push(d);
        }
    }
    assert!(
        diffs.is_empty(),
        "{} raw inputs answered differently:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Commands that percore runs as steps hopping between shards (`Exec::Hop`).
#[test]
fn cross_shard_hops() {
    check(&[
        (
            "rename",
            "
            SET a 1
            RENAME a b
            GET a
            GET b
            RENAME missing x
            RENAME b b
            GET b
            SET c 3
            RENAMENX b c
            RENAMENX b d
            MGET b c d
            RENAMENX missing e
            SET t v EX 100
            RENAME t t2
            TTL t2
            ",
        ),
        (
            "copy-move",
            "
            SET a 1
            COPY a b
            COPY a b
            SET a 2
            COPY a b REPLACE
            GET b
            COPY a a
            COPY missing z
            COPY a x DB 1
            COPY a x DB 16
            COPY a x DB abc
            COPY a x FOO
            MOVE a 1
            MOVE a 1
            EXISTS a
            SET a new
            MOVE a 1
            MOVE a 0
            MOVE a 16
            MOVE a abc
            SELECT 1
            MGET a x
            DBSIZE
            SELECT 0
            DBSIZE
            ",
        ),
        (
            "msetnx",
            "
            MSETNX m1 1 m2 2
            MSETNX m2 x m3 3
            MGET m1 m2 m3
            MSETNX m1
            MSETNX m4 4 m4 5
            GET m4
            ",
        ),
        (
            "scan",
            "
            SCAN 0
            SET only-key 1
            SCAN 0
            SCAN 0 MATCH only*
            SCAN 0 MATCH nope* COUNT 1000
            SCAN 0 TYPE string
            SCAN abc
            SCAN 0 COUNT 0
            SCAN 0 MATCH
            SCAN 0 FOO bar
            ",
        ),
    ]);
}
