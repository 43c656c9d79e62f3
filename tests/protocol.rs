//! Raw RESP end-to-end tests: exact bytes on the wire against a real `percore-server`.

mod common;

use common::{Conn, Server, encode_cmd, show};
use std::time::Duration;

#[test]
fn ping_and_echo_exact_bytes() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.cmd_raw(&["ping", "hi"]), b"$2\r\nhi\r\n");
    assert_eq!(c.cmd_raw(&["ECHO", ""]), b"$0\r\n\r\n");
    assert_eq!(c.cmd_raw(&["echo", "a\r\nb"]), b"$4\r\na\r\nb\r\n");
}

#[test]
fn pipeline_of_many_requests_in_one_write() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let n = 500;
    let mut req = Vec::new();
    for i in 0..n {
        req.extend(encode_cmd(&["SET", &format!("pk{i}"), &format!("v{i}")]));
        req.extend(encode_cmd(&["GET", &format!("pk{i}")]));
        req.extend(encode_cmd(&["INCR", "pcounter"]));
        req.extend(b"PING\r\n");
    }
    c.send(&req);
    for i in 0..n {
        assert_eq!(c.read_raw(), b"+OK\r\n", "SET #{i}");
        let v = format!("v{i}");
        assert_eq!(
            c.read_raw(),
            format!("${}\r\n{v}\r\n", v.len()).into_bytes(),
            "GET #{i}"
        );
        assert_eq!(
            c.read_raw(),
            format!(":{}\r\n", i + 1).into_bytes(),
            "INCR #{i}"
        );
        assert_eq!(c.read_raw(), b"+PONG\r\n", "PING #{i}");
    }
}

#[test]
fn frames_split_byte_by_byte() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let mut req = encode_cmd(&["SET", "split-key", "some value\r\nwith crlf"]);
    req.extend(encode_cmd(&["GET", "split-key"]));
    req.extend(b"ECHO inline-split\r\n");
    for (i, b) in req.iter().enumerate() {
        c.send(&[*b]);
        // Let some bytes arrive alone so the server really sees partial frames.
        if i % 4 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(c.read_raw(), b"+OK\r\n");
    assert_eq!(c.read_raw(), b"$21\r\nsome value\r\nwith crlf\r\n");
    assert_eq!(c.read_raw(), b"$12\r\ninline-split\r\n");
}

#[test]
fn frame_split_at_every_position() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let req = encode_cmd(&["SET", "k", "value-123"]);
    for cut in 1..req.len() {
        c.send(&req[..cut]);
        std::thread::sleep(Duration::from_millis(2));
        c.send(&req[cut..]);
        assert_eq!(c.read_raw(), b"+OK\r\n", "split at {cut}");
    }
    assert_eq!(c.cmd_raw(&["GET", "k"]), b"$9\r\nvalue-123\r\n");
}

#[test]
fn inline_commands() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    c.send(b"SET inline-key hello\r\n");
    assert_eq!(c.read_raw(), b"+OK\r\n");
    c.send(b"GET inline-key\r\n");
    assert_eq!(c.read_raw(), b"$5\r\nhello\r\n");
    // Bare LF ends an inline command too, extra spaces are separators.
    c.send(b"  GET   inline-key  \n");
    assert_eq!(c.read_raw(), b"$5\r\nhello\r\n");
    // Quotes and escapes as in redis-cli.
    c.send(b"SET q \"a b\\x41\\n\"\r\n");
    assert_eq!(c.read_raw(), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["GET", "q"]), b"$5\r\na bA\n\r\n");
    c.send(b"SET q2 'it''s'\r\n");
    // 'it''s' is not valid: a closing quote must be followed by a space.
    assert_eq!(
        c.read_raw(),
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    c.expect_closed();
    // Empty lines are skipped; inline and multibulk mix on one connection.
    let mut c = s.conn();
    let mut req = b"\r\n\r\nPING\r\n".to_vec();
    req.extend(encode_cmd(&["GET", "inline-key"]));
    req.extend(b"get inline-key\r\n");
    c.send(&req);
    assert_eq!(c.read_raw(), b"+PONG\r\n");
    assert_eq!(c.read_raw(), b"$5\r\nhello\r\n");
    assert_eq!(c.read_raw(), b"$5\r\nhello\r\n");
}

#[test]
fn invalid_multibulk_length_closes_only_that_connection() {
    let s = Server::percore(&[]);
    let mut other = s.conn();
    assert_eq!(other.cmd_raw(&["SET", "survivor", "yes"]), b"+OK\r\n");

    let mut bad = s.conn();
    bad.send(b"*abc\r\n");
    assert_eq!(
        bad.read_raw(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    bad.expect_closed();

    assert_eq!(other.cmd_raw(&["GET", "survivor"]), b"$3\r\nyes\r\n");
    let mut fresh = s.conn();
    assert_eq!(fresh.cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn other_protocol_errors() {
    let s = Server::percore(&[]);
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*1\r\n$abc\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n:12\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*9999999999\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"SET \"unterminated\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (req, want) in cases {
        let mut c = s.conn();
        c.send(req);
        assert_eq!(show(&c.read_raw()), show(want), "request {:?}", show(req));
        c.expect_closed();
    }
    assert_eq!(s.conn().cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn empty_multibulk_is_ignored() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    // Any negative count is an empty request, as in Redis.
    c.send(b"*0\r\n*-1\r\n*-1000000000000000\r\nPING\r\n");
    assert_eq!(c.read_raw(), b"+PONG\r\n");
}

#[test]
fn unknown_command_text() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    assert_eq!(
        show(&c.cmd_raw(&["NOSUCHCMD", "a", "b"])),
        "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        show(&c.cmd_raw(&["nosuchcmd"])),
        "-ERR unknown command 'nosuchcmd', with args beginning with: \r\n"
    );
    // The connection stays usable.
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn wrong_arity_text() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let cases: &[(&[&str], &str)] = &[
        (
            &["GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["get", "a", "b"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["SET", "a"],
            "-ERR wrong number of arguments for 'set' command\r\n",
        ),
        (
            &["MSET", "a", "1", "b"],
            "-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (
            &["INCR"],
            "-ERR wrong number of arguments for 'incr' command\r\n",
        ),
        (
            &["DEL"],
            "-ERR wrong number of arguments for 'del' command\r\n",
        ),
        (
            &["ECHO"],
            "-ERR wrong number of arguments for 'echo' command\r\n",
        ),
        (
            &["DBSIZE", "x"],
            "-ERR wrong number of arguments for 'dbsize' command\r\n",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(show(&c.cmd_raw(args)), *want, "{args:?}");
    }
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn one_megabyte_values() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let cmd: [&[u8]; 3] = [b"SET", b"big", &value];
    assert_eq!(c.cmd_raw(&cmd), b"+OK\r\n");
    let mut want = format!("${}\r\n", value.len()).into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    for _ in 0..3 {
        assert!(c.cmd_raw(&["GET", "big"]) == want, "1 MB GET differs");
    }
    // Several big values pipelined, read back pipelined.
    let mut req = Vec::new();
    for i in 0..4 {
        let mut v = value.clone();
        v[0] = i;
        let k = format!("big{i}");
        let cmd: [&[u8]; 3] = [b"SET", k.as_bytes(), &v];
        req.extend(encode_cmd(&cmd));
        req.extend(encode_cmd(&["GET", &k]));
    }
    c.send(&req);
    for i in 0..4u8 {
        assert_eq!(c.read_raw(), b"+OK\r\n");
        let got = c.read_raw();
        let mut w = want.clone();
        w[format!("${}\r\n", value.len()).len()] = i;
        assert!(got == w, "pipelined 1 MB GET #{i} differs");
    }
}

#[test]
fn resp3_via_hello() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    c.send_cmd(&["HELLO", "3"]);
    let hello = c.read_raw();
    assert!(
        hello.starts_with(b"%"),
        "HELLO 3 reply is a map: {}",
        show(&hello)
    );
    let text = show(&hello);
    for field in [
        "server", "version", "proto", "id", "mode", "role", "modules",
    ] {
        assert!(
            text.contains(&format!("${}\r\n{field}\r\n", field.len())),
            "{field} in {text}"
        );
    }
    assert!(text.contains("$5\r\nproto\r\n:3\r\n"), "{text}");
    assert_eq!(c.cmd_raw(&["GET", "missing"]), b"_\r\n");
    assert_eq!(
        c.cmd_raw(&["MGET", "missing", "missing2"]),
        b"*2\r\n_\r\n_\r\n"
    );
    assert_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["SET", "k", "w", "NX"]), b"_\r\n");
    assert_eq!(c.cmd_raw(&["INCR", "n"]), b":1\r\n");
    // Back to RESP2.
    let hello2 = c.cmd_raw(&["HELLO", "2"]);
    assert!(
        hello2.starts_with(b"*14\r\n"),
        "HELLO 2 reply: {}",
        show(&hello2)
    );
    assert_eq!(c.cmd_raw(&["GET", "missing"]), b"$-1\r\n");
    // Unsupported protocol versions.
    assert_eq!(
        show(&c.cmd_raw(&["HELLO", "4"])),
        "-NOPROTO unsupported protocol version\r\n"
    );
    // RESP3 is per connection.
    let mut c3 = s.conn();
    c3.send_cmd(&["HELLO", "3"]);
    c3.read_raw();
    let mut c2 = s.conn();
    assert_eq!(c2.cmd_raw(&["GET", "missing"]), b"$-1\r\n");
    assert_eq!(c3.cmd_raw(&["GET", "missing"]), b"_\r\n");
}

#[test]
fn quit_replies_ok_and_closes() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    c.send(b"QUIT\r\nPING\r\n");
    assert_eq!(c.read_raw(), b"+OK\r\n");
    c.expect_closed();
    let mut c = Conn::connect(s.port());
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn client_disconnecting_mid_pipeline_does_not_hurt_the_server() {
    let mut s = Server::percore(&["--threads", "2"]);
    for round in 0..5 {
        let mut c = s.conn();
        let mut req = Vec::new();
        for i in 0..2000 {
            req.extend(encode_cmd(&["SET", &format!("gone{round}:{i}"), "x"]));
            req.extend(encode_cmd(&[
                "MGET",
                &format!("gone{round}:{i}"),
                "a",
                "b",
                "c",
            ]));
        }
        // End in the middle of a frame, then vanish without reading any reply.
        req.extend(b"*3\r\n$3\r\nSET\r\n$2\r\nab");
        c.send(&req);
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.is_running(), "server died:\n{}", s.output());
    let mut c = s.conn();
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.cmd_raw(&["SET", "still", "here"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["GET", "still"]), b"$4\r\nhere\r\n");
}

#[test]
fn replies_before_a_protocol_error_are_sent() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    let mut req = encode_cmd(&["SET", "before", "1"]);
    req.extend(encode_cmd(&["GET", "before"]));
    req.extend(b"*abc\r\n");
    req.extend(encode_cmd(&["SET", "after", "1"]));
    c.send(&req);
    assert_eq!(c.read_raw(), b"+OK\r\n");
    assert_eq!(c.read_raw(), b"$1\r\n1\r\n");
    assert_eq!(
        c.read_raw(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    c.expect_closed();
    // Nothing after the error ran.
    let mut c = s.conn();
    assert_eq!(c.cmd_raw(&["GET", "after"]), b"$-1\r\n");
}

#[test]
fn output_buffer_hard_limit_closes_only_that_client() {
    let s = Server::percore(&["--client-output-buffer-limit", "normal 1mb 0 0"]);
    let mut setup = s.conn();
    let big = "x".repeat(2 * 1024 * 1024);
    assert_eq!(setup.cmd_raw(&["SET", "big", &big]), b"+OK\r\n");
    assert_eq!(setup.cmd_raw(&["STRLEN", "big"]), b":2097152\r\n");
    let mut greedy = s.conn();
    greedy.send(&encode_cmd(&["GET", "big"]));
    greedy.expect_closed();
    // Small replies stay under the limit, and other clients are unaffected.
    assert_eq!(setup.cmd_raw(&["GET", "missing"]), b"$-1\r\n");
    assert_eq!(setup.cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// Both receive paths of the reactor deliver the same bytes: multishot receives into
/// provided buffers (the default) and one receive SQE per completion
/// (`PERCORE_NO_MULTISHOT_RECV`). Four clients at once write values from 0 B to 200 KB
/// (beyond one provided buffer, so they span several and end mid-buffer) in odd-sized
/// pieces, then pipelines of small requests, and read every byte back.
#[test]
fn every_receive_path_delivers_values_of_any_size_from_concurrent_clients() {
    let modes: [&[(&str, &str)]; 2] = [&[], &[("PERCORE_NO_MULTISHOT_RECV", "1")]];
    for env in modes {
        let s = Server::percore_env(&[], env);
        let port = s.port();
        std::thread::scope(|scope| {
            for t in 0..4usize {
                scope.spawn(move || {
                    let mut c = Conn::connect(port);
                    let sizes = [0, 1, 17, 4095, 8191, 8192, 8193, 65_537, 200_000];
                    for (i, &n) in sizes.iter().enumerate() {
                        let value: Vec<u8> = (0..n).map(|j| (j * 31 + t * 7 + i) as u8).collect();
                        let key = format!("rx{t}:{i}");
                        let mut req = encode_cmd(&[b"SET".as_slice(), key.as_bytes(), &value]);
                        req.extend(encode_cmd(&["GET", &key]));
                        for piece in req.chunks(1000 + 37 * t) {
                            c.send(piece);
                        }
                        assert_eq!(c.read_raw(), b"+OK\r\n", "{env:?} client {t} SET #{i}");
                        let mut want = format!("${n}\r\n").into_bytes();
                        want.extend(&value);
                        want.extend(b"\r\n");
                        assert!(c.read_raw() == want, "{env:?} client {t} GET #{i} ({n} B)");
                    }
                    let mut req = Vec::new();
                    for i in 0..300 {
                        req.extend(encode_cmd(&["SET", &format!("sx{t}:{i}"), &i.to_string()]));
                        req.extend(encode_cmd(&["GET", &format!("sx{t}:{i}")]));
                    }
                    for piece in req.chunks(333 + t) {
                        c.send(piece);
                    }
                    for i in 0..300 {
                        assert_eq!(c.read_raw(), b"+OK\r\n", "{env:?} client {t} small #{i}");
                        let v = i.to_string();
                        let want = format!("${}\r\n{v}\r\n", v.len()).into_bytes();
                        assert_eq!(c.read_raw(), want, "{env:?} client {t} small #{i}");
                    }
                });
            }
        });
    }
}
