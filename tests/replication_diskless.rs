//! Diskless full sync (`repl-diskless-sync yes`) from a percore primary: replicas that
//! announce `capa eof` get the forkless cut streamed in the EOF-marker form; replicas
//! joining within `repl-diskless-sync-delay` share one cut; a replica gone mid-sync drops
//! its part (the cut goes on for the others, and is cancelled when it was the only one);
//! FLUSHALL and BGSAVE CANCEL cancel a cut in flight. (Redis and percore replicas of a
//! diskless percore primary, every data type compared key by key: tests/replication.rs.)

mod common;

use common::{Conn, Server, info_field, ok, simple, wait_until};
use percore_net::resp::Frame;
use std::io::Read;
use std::time::{Duration, Instant};

/// Keys the primaries hold (`DEBUG POPULATE` with values of `VALUE_BYTES`, 2.2 MB): with
/// `rdb-key-save-delay` a cut of them lasts seconds and sends several chunks.
const KEYS: &str = "20000";
const VALUE_BYTES: &str = "100";
/// Per key, µs: 20000 keys take about 2 s to cut on two shards.
const SLOW_KEY_DELAY_US: &str = "200";
/// Longest wait for a sync or a cancel here.
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

fn primary(extra: &[&str]) -> Server {
    let mut args = vec!["--threads", "2"];
    args.extend_from_slice(extra);
    let s = Server::percore(&args);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["DEBUG", "POPULATE", KEYS, "key", VALUE_BYTES]),
        ok()
    );
    s
}

/// A hand-made replica: the handshake with `capa eof`, then PSYNC; returns its
/// connection, the stream's first bytes unread.
fn fake_replica(port: u16) -> Conn {
    let mut c = Conn::connect(port);
    assert_eq!(c.cmd(&["REPLCONF", "listening-port", "1"]), ok());
    assert_eq!(c.cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"]), ok());
    c.send_cmd(&["PSYNC", "?", "-1"]);
    c
}

/// Reads from `c` until `bytes` ends with `want` (or the link closes: false).
fn read_until(c: &mut Conn, bytes: &mut Vec<u8>, want: impl Fn(&[u8]) -> bool) -> bool {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    let mut chunk = vec![0u8; 64 * 1024];
    while !want(bytes) {
        assert!(
            Instant::now() < deadline,
            "no progress: {} bytes",
            bytes.len()
        );
        match (&mut c.stream()).read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return false,
        }
    }
    true
}

/// The `+FULLRESYNC` line and the `$EOF:<mark>` announcement (keep-alive newlines
/// skipped); returns the mark and the payload bytes read past it.
fn transfer_start(c: &mut Conn) -> (Vec<u8>, Vec<u8>) {
    let mut bytes = Vec::new();
    let eof_line = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        s.find("$EOF:").is_some_and(|i| s.len() >= i + 5 + 40 + 2)
    };
    assert!(read_until(c, &mut bytes, eof_line), "the link closed");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let start = text.trim_start_matches('\n');
    assert!(start.starts_with("+FULLRESYNC "), "{start:?}");
    let at = bytes
        .windows(5)
        .position(|w| w == b"$EOF:")
        .expect("EOF line");
    let mark = bytes[at + 5..at + 45].to_vec();
    assert_eq!(&bytes[at + 45..at + 47], b"\r\n");
    (mark, bytes[at + 47..].to_vec())
}

fn saving(c: &mut Conn) -> bool {
    info_field(c, "persistence", "rdb_bgsave_in_progress") == "1"
}

fn replicas(c: &mut Conn) -> String {
    info_field(c, "replication", "connected_slaves")
}

fn wait_no_cut(p: &mut Conn, what: &str) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while saving(p) || replicas(p) != "0" {
        assert!(
            Instant::now() < deadline,
            "{what}: the cut is still running"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_replica_gone_mid_sync_cancels_its_part_and_the_cut_when_it_was_the_only_one() {
    let server = primary(&[
        "--repl-diskless-sync-delay",
        "60",
        "--repl-diskless-sync-max-replicas",
        "2",
        "--rdb-key-save-delay",
        SLOW_KEY_DELAY_US,
    ]);
    let mut p = server.conn();
    // Two replicas share one cut; the first leaves mid-transfer, the second gets it all.
    let mut gone = fake_replica(server.port());
    let mut stays = fake_replica(server.port());
    let (_, _) = transfer_start(&mut gone);
    let (mark, mut got) = transfer_start(&mut stays);
    assert!(saving(&mut p), "{}", server.output());
    drop(gone);
    wait_until("the gone replica dropped", || replicas(&mut p) == "1");
    assert!(saving(&mut p), "the cut went on for the other replica");
    assert!(
        read_until(&mut stays, &mut got, |g| g.ends_with(&mark)),
        "the transfer ended early"
    );
    assert!(got.starts_with(b"REDIS0010"), "an RDB");
    wait_until("the cut ended", || !saving(&mut p));
    assert!(
        server
            .output()
            .contains("Starting BGSAVE for SYNC with target: replicas sockets (2 replicas)")
    );
    drop(stays);
    wait_until("no replica", || replicas(&mut p) == "0");

    // The only replica leaves: the whole cut is cancelled; the primary serves meanwhile.
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]),
        ok()
    );
    let mut c = fake_replica(server.port());
    transfer_start(&mut c);
    assert!(saving(&mut p));
    drop(c);
    wait_no_cut(&mut p, "the only replica left");
    assert_eq!(p.cmd(&["SET", "after", "1"]), ok());
    assert_eq!(p.cmd(&["DBSIZE"]), Frame::Int(20001));
    assert!(
        server
            .output()
            .contains("every replica is gone, cancelling the cut")
    );

    // Nothing leaked: a real replica syncs afterwards.
    assert_eq!(p.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), ok());
    let port = server.port().to_string();
    let Some(redis) = Server::redis_with(&["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    let mut r = redis.conn();
    wait_until("the redis replica synced", || {
        info_field(&mut r, "replication", "master_link_status") == "up"
    });
    assert_eq!(r.cmd(&["DBSIZE"]), Frame::Int(20001));
}

#[test]
fn flushall_and_bgsave_cancel_cancel_a_diskless_sync() {
    let server = primary(&[
        "--repl-diskless-sync-delay",
        "0",
        "--rdb-key-save-delay",
        SLOW_KEY_DELAY_US,
    ]);
    let mut p = server.conn();
    for cancel in [&["BGSAVE", "CANCEL"][..], &["FLUSHALL"]] {
        let mut c = fake_replica(server.port());
        transfer_start(&mut c);
        assert!(saving(&mut p), "{cancel:?}");
        let want = if cancel[0] == "FLUSHALL" {
            ok()
        } else {
            simple("Background saving cancelled")
        };
        assert_eq!(p.cmd(cancel), want);
        // Stopped before the reply; the replica's link is closed (it reconnects).
        assert!(!saving(&mut p), "{cancel:?}");
        let mut rest = Vec::new();
        assert!(
            !read_until(&mut c, &mut rest, |_| false),
            "{cancel:?}: the link stays open"
        );
        wait_no_cut(&mut p, cancel[0]);
    }
    assert_eq!(p.cmd(&["DBSIZE"]), Frame::Int(0));
}

/// Two redis-server replicas started within the delay share one cut (the log says so
/// once); `repl-diskless-sync-max-replicas` starts it before the delay; both end with
/// the primary's data.
#[test]
fn replicas_within_the_delay_share_one_cut() {
    let server = primary(&[
        "--repl-diskless-sync-delay",
        "60",
        "--repl-diskless-sync-max-replicas",
        "2",
    ]);
    let mut p = server.conn();
    assert_eq!(p.cmd(&["RPUSH", "l", "a", "b"]), Frame::Int(2));
    assert_eq!(p.cmd(&["HSET", "h", "f", "v"]), Frame::Int(1));
    let port = server.port().to_string();
    let args = [
        "--replicaof",
        "127.0.0.1",
        &port,
        "--enable-debug-command",
        "yes",
    ];
    let Some(r1) = Server::redis_with(&args) else {
        return;
    };
    let Some(r2) = Server::redis_with(&args) else {
        return;
    };
    let digest = p.cmd(&["DEBUG", "DIGEST"]);
    for r in [&r1, &r2] {
        let mut c = r.conn();
        wait_until("a replica synced", || {
            info_field(&mut c, "replication", "master_link_status") == "up"
        });
        assert_eq!(c.cmd(&["DEBUG", "DIGEST"]), digest);
    }
    let out = server.output();
    assert_eq!(
        out.matches("Starting BGSAVE for SYNC with target: replicas sockets")
            .count(),
        1,
        "{out}"
    );
    assert!(out.contains("(2 replicas)"), "{out}");
    assert_eq!(info_field(&mut p, "stats", "sync_full"), "2");
}
