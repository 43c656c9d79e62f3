//! CONFIG SET port / bind at runtime (Redis 7.0's `changeListenPort`, `changeBindAddr`):
//! the new port serves, connections already open stay, a port in use or an address that
//! cannot be bound answers Redis's error and keeps the old listeners. Error texts are
//! compared with redis-server's.

mod common;

use common::{Conn, Server, free_port};
use percore_net::resp::Frame;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Connects to `port` and PINGs, retrying until `within` passed (shards take their new
/// listeners at their next tick).
fn serves(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut got = [0u8; 7];
            if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
                && s.read_exact(&mut got).is_ok()
                && &got == b"+PONG\r\n"
            {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing accepts on `port` any more (within `within`).
fn refused(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The same CONFIG SET refusals as redis-server, byte for byte.
fn refusals(c: &mut Conn, busy: u16) -> Vec<Vec<u8>> {
    let busy = busy.to_string();
    vec![
        c.cmd_raw(&["CONFIG", "SET", "port", &busy]),
        c.cmd_raw(&["CONFIG", "SET", "bind", "999.999.999.999"]),
        c.cmd_raw(&["CONFIG", "SET", "port", "65536"]),
        c.cmd_raw(&["CONFIG", "GET", "bind"]),
    ]
}

#[test]
fn config_set_port_moves_the_listeners_and_keeps_connections() {
    for threads in ["1", "3"] {
        let s = Server::percore(&["--threads", threads]);
        let old = s.port();
        let mut kept = s.conn();
        kept.cmd(&["SET", "k", "v"]);
        let new = free_port();
        assert_eq!(
            kept.cmd_raw(&["CONFIG", "SET", "port", &new.to_string()]),
            b"+OK\r\n"
        );
        assert!(serves(new, Duration::from_secs(3)), "new port {new}");
        // Several connections: with several shards each one's listener must have moved.
        for _ in 0..8 {
            assert!(serves(new, Duration::from_secs(3)));
        }
        assert!(
            refused(old, Duration::from_secs(3)),
            "old port {old} still accepts"
        );
        assert_eq!(kept.cmd(&["GET", "k"]), Frame::Bulk(b"v".to_vec()));
        assert_eq!(
            common::info_field(&mut kept, "server", "tcp_port"),
            new.to_string()
        );
        assert_eq!(
            kept.cmd(&["CONFIG", "GET", "port"]),
            Frame::Array(vec![common::bulk("port"), common::bulk(new.to_string())])
        );
        // A port another socket listens on: refused, the new port keeps serving.
        let other = TcpListener::bind("127.0.0.1:0").expect("bind");
        let busy = other.local_addr().expect("addr").port();
        let reply = kept.cmd_raw(&["CONFIG", "SET", "port", &busy.to_string()]);
        assert_eq!(
            common::show(&reply),
            "-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.\r\n"
        );
        assert!(serves(new, Duration::from_secs(1)));
        // Back to a bind list of one address, then an unbindable one.
        assert_eq!(
            kept.cmd_raw(&["CONFIG", "SET", "bind", "127.0.0.1"]),
            b"+OK\r\n"
        );
        assert!(serves(new, Duration::from_secs(3)));
        let reply = kept.cmd_raw(&["CONFIG", "SET", "bind", "10.255.255.1"]);
        assert_eq!(
            common::show(&reply),
            "-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses.\r\n"
        );
        assert!(serves(new, Duration::from_secs(1)));
        assert_eq!(kept.cmd(&["DBSIZE"]), Frame::Int(1));
    }
}

#[test]
fn config_set_port_refusals_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = other.local_addr().expect("addr").port();
    let mut r = redis.conn();
    let mut p = percore.conn();
    // Same bind list on both first (their defaults differ).
    for c in [&mut r, &mut p] {
        assert_eq!(
            c.cmd_raw(&["CONFIG", "SET", "bind", "127.0.0.1"]),
            b"+OK\r\n"
        );
    }
    let (rr, pr) = (refusals(&mut r, busy), refusals(&mut p, busy));
    for (a, b) in rr.iter().zip(&pr) {
        assert_eq!(common::show(a), common::show(b));
    }
    assert!(serves(percore.port(), Duration::from_secs(1)));
}
