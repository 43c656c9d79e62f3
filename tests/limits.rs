//! Every limit answers with Redis's text and closes only the offending connection.

mod common;

use common::{Server, encode_cmd};

#[test]
fn bulk_over_proto_max_bulk_len_is_refused() {
    let s = Server::percore(&["--proto-max-bulk-len", "1mb"]);
    let mut c = s.conn();
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n");
    assert_eq!(
        c.read_raw(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    c.expect_closed();
    let mut other = s.conn();
    assert_eq!(other.cmd_raw(&["SET", "k", "small"]), b"+OK\r\n");
}

#[test]
fn query_buffer_over_the_limit_closes_the_client() {
    let s = Server::percore(&["--client-query-buffer-limit", "1mb"]);
    let mut c = s.conn();
    // A declared 3 MB bulk (allowed by proto-max-bulk-len) that outgrows the query buffer.
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3145728\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    c.send(&req);
    c.expect_closed();
    assert!(
        s.output().contains("max query buffer length"),
        "{}",
        s.output()
    );
    let mut other = s.conn();
    assert_eq!(other.cmd_raw(&["GET", "k"]), b"$-1\r\n");
}

#[test]
fn inline_request_over_64k_is_refused() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    c.send(&vec![b'a'; 70 * 1024]);
    assert_eq!(
        c.read_raw(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    c.expect_closed();
    assert_eq!(s.conn().cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// Connects and pings, retrying while the server still counts a client that just left
/// (closes are asynchronous).
fn connect_when_room(s: &Server) -> common::Conn {
    for _ in 0..100 {
        let mut c = s.conn();
        c.send(&encode_cmd(&["PING"]));
        if c.read_raw() == b"+PONG\r\n" {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no connection accepted");
}

#[test]
fn maxclients_refuses_the_extra_connection() {
    let s = Server::percore(&["--maxclients", "2"]);
    let a = connect_when_room(&s);
    let mut b = connect_when_room(&s);
    let mut extra = s.conn();
    assert_eq!(extra.read_raw(), b"-ERR max number of clients reached\r\n");
    extra.expect_closed();
    drop(a);
    // A slot frees up once a client leaves.
    let mut c = connect_when_room(&s);
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(b.cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// A server whose password `secret` is set at run time (the harness's readiness PING
/// needs no password).
fn server_with_password() -> Server {
    let s = Server::percore(&[]);
    assert_eq!(
        s.conn()
            .cmd_raw(&["CONFIG", "SET", "requirepass", "secret"]),
        b"+OK\r\n"
    );
    s
}

#[test]
fn requirepass_gates_commands_with_redis_texts() {
    let s = server_with_password();
    let mut c = s.conn();
    assert_eq!(
        c.cmd_raw(&["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.cmd_raw(&["AUTH", "wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.cmd_raw(&["AUTH", "secret"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
    // HELLO with AUTH authenticates and switches protocol in one step.
    let mut h = s.conn();
    let reply = h.cmd_raw(&["HELLO", "3", "AUTH", "default", "secret"]);
    assert!(reply.starts_with(b"%7\r\n"), "{}", common::show(&reply));
    assert_eq!(h.cmd_raw(&["GET", "k"]), b"_\r\n");
    // Before authentication a client may not send big requests.
    let mut u = s.conn();
    u.send(b"*20\r\n");
    assert_eq!(
        u.read_raw(),
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    u.expect_closed();
}

/// Requests pipelined behind an AUTH are parsed with the limits of an authenticated
/// client, even when the shard parses a batch of them ahead (to warm their lookups)
/// before the AUTH has run; and the ones before it are refused with NOAUTH.
#[test]
fn requests_pipelined_after_auth_get_the_authenticated_limits() {
    let s = server_with_password();
    let mut c = s.conn();
    let mut req = Vec::new();
    req.extend(encode_cmd(&["SET", "before", "x"]));
    req.extend(encode_cmd(&["AUTH", "secret"]));
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..12 {
        mset.push(format!("k{i}"));
        mset.push(format!("v{i}"));
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    req.extend(encode_cmd(&mset));
    let big = "b".repeat(20_000);
    req.extend(encode_cmd(&["SET", "big", &big]));
    req.extend(encode_cmd(&["GET", "k11"]));
    req.extend(encode_cmd(&["STRLEN", "big"]));
    c.send(&req);
    assert_eq!(
        c.read_raw(),
        b"-NOAUTH Authentication required.\r\n".to_vec()
    );
    assert_eq!(c.read_raw(), b"+OK\r\n");
    assert_eq!(c.read_raw(), b"+OK\r\n", "MSET with 25 arguments");
    assert_eq!(c.read_raw(), b"+OK\r\n", "a 20000-byte bulk");
    assert_eq!(c.read_raw(), b"$3\r\nv11\r\n");
    assert_eq!(c.read_raw(), b":20000\r\n");
}
