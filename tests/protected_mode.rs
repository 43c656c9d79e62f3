//! Protected mode and the default `bind * -::*` (Redis 7): while the default user has no
//! password, a client from a non-loopback address gets Redis's `-DENIED` text and is
//! closed, whatever `bind` says; loopback clients are served; `protected-mode no` or a
//! password lets the remote client in. Each step runs against a real redis-server 7.0 and
//! percore (two shards), from the machine's own non-loopback address, and the bytes are
//! compared.

mod common;

use common::{Server, encode_cmd, show};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// How long one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The address this host uses towards the outside (a UDP `connect` sends nothing), if it
/// has one: connecting to it from here gives the server a non-loopback peer.
fn outside_address() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Connects from/to `ip`, sends `request` (if any: a refused client sends nothing, so
/// that the server's close finds no unread bytes and sends FIN, not RST), half-closes and
/// returns everything the server sends until it closes.
fn exchange(ip: IpAddr, port: u16, request: &[u8]) -> Vec<u8> {
    let mut s =
        TcpStream::connect((ip, port)).unwrap_or_else(|e| panic!("connect {ip}:{port}: {e}"));
    s.set_read_timeout(Some(EXCHANGE_TIMEOUT)).expect("timeout");
    if !request.is_empty() {
        s.write_all(request).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
    }
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{ip}:{port} did not close ({e}); got {}", show(&out)),
    }
    out
}

#[test]
fn non_loopback_clients_are_refused_without_a_password_as_redis() {
    let Some(outside) = outside_address() else {
        println!("skipping: this host has no non-loopback address to connect from");
        return;
    };
    let args = ["--bind", "* -::*", "--protected-mode", "yes"];
    let Some(redis) = Server::redis_with(&args) else {
        return;
    };
    let mut percore_args = args.to_vec();
    percore_args.extend(["--threads", "2"]);
    let percore = Server::percore(&percore_args);
    let ping = encode_cmd(&["PING"]);
    let loopback: IpAddr = "127.0.0.1".parse().expect("loopback");

    let steps: [(&str, IpAddr, Vec<u8>); 2] = [
        ("remote, no password", outside, Vec::new()),
        ("loopback, no password", loopback, ping.clone()),
    ];
    let setup: &[(&str, &[&str])] = &[
        (
            "remote, protected-mode no",
            &["CONFIG", "SET", "protected-mode", "no"],
        ),
        (
            "remote, a password set",
            &["CONFIG", "SET", "requirepass", "pw"],
        ),
    ];
    let mut transcripts = Vec::new();
    for server in [&redis, &percore] {
        let port = server.port();
        let mut got = Vec::new();
        for (what, ip, request) in &steps {
            got.push((*what, exchange(*ip, port, request)));
        }
        let mut c = server.conn();
        for (what, cmd) in setup {
            assert_eq!(c.cmd_raw(cmd), b"+OK\r\n", "{what}");
            if *what == "remote, a password set" {
                assert_eq!(
                    c.cmd_raw(&["CONFIG", "SET", "protected-mode", "yes"]),
                    b"+OK\r\n"
                );
            }
            let mut request = ping.clone();
            request.extend(encode_cmd(&["AUTH", "pw"]));
            request.extend(encode_cmd(&["PING"]));
            got.push((*what, exchange(outside, port, &request)));
        }
        transcripts.push(got);
    }
    let (want, have) = (&transcripts[0], &transcripts[1]);
    for ((what, w), (_, h)) in want.iter().zip(have) {
        assert_eq!(show(h), show(w), "{what}: percore vs redis");
    }
    assert!(
        want[0]
            .1
            .starts_with(b"-DENIED Redis is running in protected mode"),
        "redis refused the remote client: {}",
        show(&want[0].1)
    );
    assert_eq!(want[1].1, b"+PONG\r\n");
}
