//! A percore primary's duties beyond the stream (tests/replication.rs): WAIT and
//! `min-replicas-to-write` with a redis-server 7.0 replica and a percore replica (WAIT
//! counts the replicas that acknowledged the client's writes, asks them for an ACK, times
//! out with the count when a replica is stopped with SIGSTOP, answers at once inside MULTI,
//! blocks its client and not the shard; NOREPLICAS once the good replicas are too few; the
//! errors compared byte for byte with redis-server's); writes acknowledged by WAIT 1
//! survive a kill -9 of the primary on its replica; SYNC (the old protocol); a replica too
//! slow for `client-output-buffer-limit replica` is dropped and comes back with a partial
//! resync.

mod common;

use common::{Conn, Server, err, info_field, ok, scratch_dir, wait_until};
use percore_net::resp::Frame;
use std::time::{Duration, Instant};

/// Longest a WAIT that should succeed may take here (replicas answer GETACK at once).
const WAIT_OK_MS: &str = "10000";

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// Waits until the primary lists `n` replicas, each online.
fn replicas_online(p: &mut Conn, n: usize) {
    wait_until(&format!("{n} replicas online"), || {
        info_field(p, "replication", "connected_slaves") == n.to_string()
            && (0..n).all(|i| {
                info_field(p, "replication", &format!("slave{i}")).contains("state=online")
            })
    });
}

/// WAIT's and NOREPLICAS's error replies, byte for byte against redis-server 7.0.
fn same_errors_as_redis(p: &mut Conn) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let mut r = redis.conn();
    for cmd in [
        &["WAIT", "1", "-1"][..],
        &["WAIT", "x", "1"],
        &["WAIT", "1", "x"],
        &["WAIT", "1.5", "1"],
        &["WAIT", "1"],
        &["WAIT", "1", "1", "1"],
    ] {
        assert_eq!(p.cmd_raw(cmd), r.cmd_raw(cmd), "{cmd:?}");
    }
    for c in [&mut *p, &mut r] {
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "5"]),
            ok()
        );
    }
    for cmd in [&["SET", "k", "v"][..], &["LPUSH", "l", "x"], &["GET", "k"]] {
        assert_eq!(p.cmd_raw(cmd), r.cmd_raw(cmd), "{cmd:?}");
    }
    for c in [&mut *p, &mut r] {
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "0"]),
            ok()
        );
    }
}

#[test]
fn wait_counts_acks_times_out_on_a_stopped_replica_and_blocks_only_its_client() {
    let dir = scratch_dir("wait-primary");
    let primary = Server::percore(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    let port = primary.port().to_string();
    let mut p = primary.conn();
    same_errors_as_redis(&mut p);
    // No replica yet: WAIT 0 answers 0 at once; WAIT 1 waits its timeout.
    assert_eq!(p.cmd(&["WAIT", "0", "0"]), Frame::Int(0));
    let t = Instant::now();
    assert_eq!(p.cmd(&["WAIT", "1", "200"]), Frame::Int(0));
    assert!(t.elapsed() >= Duration::from_millis(190));

    let Some(redis) = Server::redis_with(&["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    let rdir = scratch_dir("wait-replica");
    let mine = Server::percore(&[
        "--threads",
        "2",
        "--dir",
        rdir.to_str().expect("utf-8"),
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    replicas_online(&mut p, 2);

    // Writes on both shards, then WAIT: both replicas acknowledge them.
    for i in 0..50 {
        assert_eq!(p.cmd(&["SET", &format!("key:{i}"), &i.to_string()]), ok());
    }
    assert_eq!(p.cmd(&["WAIT", "2", WAIT_OK_MS]), Frame::Int(2));
    let mut rr = redis.conn();
    let mut pr = mine.conn();
    for c in [&mut rr, &mut pr] {
        assert_eq!(c.cmd(&["GET", "key:49"]), Frame::Bulk(b"49".to_vec()));
    }
    // On a replica WAIT is refused.
    assert_eq!(
        pr.cmd(&["WAIT", "1", "1"]),
        err(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."
        )
    );
    // Inside MULTI WAIT cannot block: the count at once.
    assert_eq!(p.cmd(&["MULTI"]), ok());
    assert_eq!(p.cmd(&["INCR", "n"]), Frame::Simple(b"QUEUED".to_vec()));
    assert_eq!(
        p.cmd(&["WAIT", "5", "0"]),
        Frame::Simple(b"QUEUED".to_vec())
    );
    let t = Instant::now();
    match p.cmd(&["EXEC"]) {
        Frame::Array(items) => {
            assert_eq!(items[0], Frame::Int(1));
            assert!(matches!(items[1], Frame::Int(0..=2)), "{items:?}");
        }
        other => panic!("EXEC: {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(2));

    // The redis replica stops: WAIT 2 times out with 1, WAIT 1 still succeeds.
    signal(redis.pid(), "-STOP");
    assert_eq!(p.cmd(&["SET", "after-stop", "1"]), ok());
    let t = Instant::now();
    assert_eq!(p.cmd(&["WAIT", "2", "500"]), Frame::Int(1));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(490), "{took:?}");
    assert_eq!(p.cmd(&["WAIT", "1", WAIT_OK_MS]), Frame::Int(1));

    // A WAIT for ever blocks its client only: others go on, on both shards.
    let mut waiter = primary.conn();
    waiter.send_cmd(&["WAIT", "2", "0"]);
    waiter.send_cmd(&["PING"]);
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..20 {
        assert_eq!(p.cmd(&["SET", &format!("other:{i}"), "x"]), ok());
    }
    assert_eq!(p.cmd(&["GET", "other:19"]), Frame::Bulk(b"x".to_vec()));
    signal(redis.pid(), "-CONT");
    // Both replicas acknowledge: the WAIT answers 2, then the PING behind it.
    assert_eq!(waiter.read_frame(), Frame::Int(2));
    assert_eq!(waiter.read_frame(), Frame::Simple(b"PONG".to_vec()));
    assert_eq!(p.cmd(&["WAIT", "2", WAIT_OK_MS]), Frame::Int(2));

    // A client that leaves while it waits is forgotten.
    let mut gone = primary.conn();
    gone.send_cmd(&["WAIT", "3", "0"]);
    std::thread::sleep(Duration::from_millis(50));
    drop(gone);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(p.cmd(&["WAIT", "3", "100"]), Frame::Int(2));
    assert_eq!(p.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));

    drop(mine);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&rdir);
}

#[test]
fn min_replicas_to_write_refuses_writes_without_enough_good_replicas() {
    let primary = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let port = primary.port().to_string();
    let mut p = primary.conn();
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
        ok()
    );
    assert_eq!(p.cmd(&["CONFIG", "SET", "min-replicas-max-lag", "2"]), ok());
    let noreplicas = err("NOREPLICAS Not enough good replicas to write.");
    assert_eq!(p.cmd(&["SET", "a", "1"]), noreplicas);
    assert_eq!(p.cmd(&["GET", "a"]), Frame::Null);
    assert_eq!(
        info_field(&mut p, "replication", "min_slaves_good_slaves"),
        "0"
    );

    let replica = Server::percore(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    replicas_online(&mut p, 1);
    wait_until("a good replica", || {
        info_field(&mut p, "replication", "min_slaves_good_slaves") == "1"
    });
    assert_eq!(p.cmd(&["SET", "a", "1"]), ok());
    assert_eq!(p.cmd(&["MSET", "b", "2", "c", "3"]), ok());
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "min-replicas-to-write", "2"]),
        ok()
    );
    assert_eq!(p.cmd(&["SET", "a", "2"]), noreplicas);
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
        ok()
    );

    // The replica stops acknowledging: after max-lag it is no longer good.
    signal(replica.pid(), "-STOP");
    wait_until("the stopped replica to lag", || {
        p.cmd(&["SET", "a", "3"]) == noreplicas
    });
    assert_eq!(
        info_field(&mut p, "replication", "min_slaves_good_slaves"),
        "0"
    );
    // Reads go on; a transaction with a write is discarded as Redis does.
    assert_eq!(p.cmd(&["GET", "b"]), Frame::Bulk(b"2".to_vec()));
    assert_eq!(p.cmd(&["MULTI"]), ok());
    assert_eq!(p.cmd(&["SET", "a", "4"]), noreplicas);
    assert_eq!(
        p.cmd(&["EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    // max-lag 0 turns the check off, as in Redis.
    assert_eq!(p.cmd(&["CONFIG", "SET", "min-replicas-max-lag", "0"]), ok());
    assert_eq!(p.cmd(&["SET", "a", "5"]), ok());
    assert_eq!(p.cmd(&["CONFIG", "SET", "min-replicas-max-lag", "2"]), ok());

    signal(replica.pid(), "-CONT");
    wait_until("the replica to be good again", || {
        p.cmd(&["SET", "a", "6"]) == ok()
    });
    let mut r = replica.conn();
    wait_until("the replica to apply the last write", || {
        r.cmd(&["GET", "a"]) == Frame::Bulk(b"6".to_vec())
    });
}

/// Rounds of the kill test (each starts a primary and a replica).
const KILL_ROUNDS: usize = 3;
/// Writes between two WAITs in the kill test (pipelined, keys on both shards).
const KILL_BATCH: usize = 10;

#[test]
fn writes_acknowledged_by_wait_survive_a_kill_of_the_primary() {
    let mut seed = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos(),
    ) | 1;
    let mut checked = 0;
    for round in 0..KILL_ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(150 + seed % 600);
        let primary = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
        let port = primary.port().to_string();
        let replica = Server::percore(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
        let mut p = primary.conn();
        replicas_online(&mut p, 1);
        let mut w = Raw::connect(primary.port());
        let pid = primary.pid();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            signal(pid, "-KILL");
        });
        // Every write up to `acked` was acknowledged by WAIT 1.
        let mut acked: Option<usize> = None;
        let mut sent = 0usize;
        'writes: loop {
            let mut batch = Vec::new();
            for i in sent..sent + KILL_BATCH {
                batch.extend(common::encode_cmd(&[
                    "SET",
                    &format!("k:{i}"),
                    &i.to_string(),
                ]));
                batch.extend(common::encode_cmd(&["RPUSH", "log", &i.to_string()]));
            }
            batch.extend(common::encode_cmd(&["WAIT", "1", "2000"]));
            if w.send(&batch).is_err() {
                break;
            }
            for _ in 0..KILL_BATCH * 2 {
                if w.frame().is_none() {
                    break 'writes;
                }
            }
            match w.frame() {
                Some(Frame::Int(1)) => acked = Some(sent + KILL_BATCH - 1),
                Some(other) => panic!("round {round}: WAIT answered {other:?}"),
                None => break,
            }
            sent += KILL_BATCH;
        }
        killer.join().expect("killer");
        let Some(last) = acked else {
            continue;
        };
        // Every acknowledged write is on the replica, the list in order.
        let mut r = replica.conn();
        wait_until("the replica to hold every acknowledged write", || {
            r.cmd(&["GET", &format!("k:{last}")]) == Frame::Bulk(last.to_string().into_bytes())
        });
        for i in 0..=last {
            assert_eq!(
                r.cmd(&["GET", &format!("k:{i}")]),
                Frame::Bulk(i.to_string().into_bytes()),
                "round {round}: acknowledged write k:{i} (of 0..={last}) missing on the replica"
            );
        }
        let Frame::Array(log) = r.cmd(&["LRANGE", "log", "0", "-1"]) else {
            panic!("LRANGE");
        };
        assert!(
            log.len() > last,
            "round {round}: log {} <= {last}",
            log.len()
        );
        for (i, item) in log.iter().enumerate() {
            assert_eq!(
                *item,
                Frame::Bulk(i.to_string().into_bytes()),
                "round {round}"
            );
        }
        checked += last + 1;
    }
    assert!(checked > 0, "no write was acknowledged before the kills");
    println!("{checked} acknowledged writes checked after {KILL_ROUNDS} kills");
}

/// A connection whose reads and writes may fail (the server is killed under it).
/// Each shard's `field` (e.g. `connections`, `keys`) from INFO percore's `shardN:` lines.
fn per_shard(c: &mut Conn, field: &str) -> Vec<i64> {
    let Frame::Bulk(info) = c.cmd(&["INFO", "percore"]) else {
        panic!("INFO percore");
    };
    String::from_utf8_lossy(&info)
        .lines()
        .filter(|l| l.starts_with("shard") && !l.starts_with("shards:"))
        .map(|l| {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{field} in {l}"))
        })
        .collect()
}

/// The shard whose counter `field` went up between two readings.
fn changed_shard(before: &[i64], after: &[i64]) -> usize {
    let moved: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert_eq!(moved.len(), 1, "one shard changed: {before:?} -> {after:?}");
    moved[0]
}

/// Connects to the server until a connection lands on `shard` (the others are closed).
fn conn_on_shard(server: &Server, watcher: &mut Conn, shard: usize) -> Conn {
    for _ in 0..64 {
        let before = per_shard(watcher, "connections");
        let c = server.conn();
        let after = per_shard(watcher, "connections");
        if changed_shard(&before, &after) == shard {
            return c;
        }
        drop(c);
        wait_until("the probe connection to close", || {
            per_shard(watcher, "connections") == before
        });
    }
    panic!("no connection landed on shard {shard} in 64 tries");
}

#[test]
fn wait_after_a_pipelined_write_on_another_shard_counts_that_write() {
    // The client's connection is on shard A, the key on shard B, and B is busy (DEBUG
    // SLEEP) when `SET key` + `WAIT 1` arrive in one packet: A must not take WAIT's
    // offset before the SET ran on B. The replica is stopped first, having acknowledged
    // everything so far: WAIT can only answer 1 if it counted an offset without the SET.
    let primary = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let port = primary.port().to_string();
    let replica = Server::percore(&["--threads", "1", "--replicaof", "127.0.0.1", &port]);
    let mut watcher = primary.conn();
    replicas_online(&mut watcher, 1);
    let home = 0;
    let mut c = conn_on_shard(&primary, &mut watcher, home);
    let other = 1 - home;
    let mut sleeper = conn_on_shard(&primary, &mut watcher, other);
    let key = (0..1000)
        .map(|i| format!("wait-key:{i}"))
        .find(|k| {
            let before = per_shard(&mut watcher, "keys");
            assert_eq!(c.cmd(&["SET", k, "probe"]), ok());
            let after = per_shard(&mut watcher, "keys");
            assert_eq!(c.cmd(&["DEL", k]), Frame::Int(1));
            changed_shard(&before, &after) == other
        })
        .expect("a key on the other shard");
    // Everything so far acknowledged, then the replica stops.
    assert_eq!(c.cmd(&["WAIT", "1", WAIT_OK_MS]), Frame::Int(1));
    signal(replica.pid(), "-STOP");
    sleeper.send_cmd(&["DEBUG", "SLEEP", "0.5"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut pipeline = common::encode_cmd(&["SET", &key, "v"]);
    pipeline.extend(common::encode_cmd(&["WAIT", "1", "300"]));
    c.send(&pipeline);
    assert_eq!(c.read_frame(), ok());
    let waited = c.read_frame();
    signal(replica.pid(), "-CONT");
    assert_eq!(
        waited,
        Frame::Int(0),
        "WAIT counted a stopped replica: it took its offset before the SET on the other shard ran"
    );
    assert_eq!(sleeper.read_frame(), ok());
    assert_eq!(c.cmd(&["WAIT", "1", WAIT_OK_MS]), Frame::Int(1));
    assert_eq!(
        replica.conn().cmd(&["GET", &key]),
        Frame::Bulk(b"v".to_vec())
    );
}

struct Raw {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(port: u16) -> Self {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)
    }

    /// The next reply, or `None` once the connection is gone.
    fn frame(&mut self) -> Option<Frame> {
        use std::io::Read;
        loop {
            if let Ok(Some((f, used))) = percore_net::resp::decode_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(f);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[test]
fn sync_gets_the_rdb_without_fullresync_then_the_stream() {
    let primary = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut p = primary.conn();
    // The stream was last in database 9 before the replica came: its first command must
    // still carry SELECT (Redis resets `slaveseldb` for a new replica), and no PING comes
    // first with a long ping period (Redis's test helper relies on both).
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]),
        ok()
    );
    assert_eq!(p.cmd(&["SELECT", "9"]), ok());
    assert_eq!(p.cmd(&["SET", "before", "1"]), ok());
    let (mut s, got) = attach_to_stream(primary.port());
    assert_eq!(p.cmd(&["SET", "after", "2"]), ok());
    let want: &[u8] =
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n9\r\n*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n2\r\n";
    assert_eq!(
        String::from_utf8_lossy(&stream_until(&mut s, got, want)),
        String::from_utf8_lossy(want),
        "the stream after the RDB"
    );
    assert_eq!(info_field(&mut p, "replication", "connected_slaves"), "1");
}

/// Attaches to `port`'s replication stream as Redis's test helper does (SYNC, the RDB
/// skipped): the socket and the stream bytes already read after the RDB.
fn attach_to_stream(port: u16) -> (std::net::TcpStream, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"SYNC\r\n").expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let (len, start) = loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
        let body = got.iter().position(|&b| b != b'\n').unwrap_or(got.len());
        if let Some(end) = got[body..].windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&got[body..body + end]).expect("utf-8");
            assert!(line.starts_with('$'), "SYNC answered {line:?}");
            break (
                line[1..].parse::<usize>().expect("a length"),
                body + end + 2,
            );
        }
    };
    while got.len() < start + len {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got[start..].starts_with(b"REDIS"), "not an RDB");
    (s, got.split_off(start + len))
}

/// Reads `s`'s stream until it ends with `last`.
fn stream_until(s: &mut std::net::TcpStream, mut got: Vec<u8>, last: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !got.ends_with(last) {
        assert!(
            Instant::now() < deadline,
            "the stream did not end with {:?}: {:?}",
            String::from_utf8_lossy(last),
            String::from_utf8_lossy(&got)
        );
        let n = s.read(&mut chunk).unwrap_or_else(|e| {
            panic!(
                "{e}; the stream so far: {:?}",
                String::from_utf8_lossy(&got)
            )
        });
        assert!(n > 0, "closed");
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

/// Runs `script` on `server` (after `setup`, each answered +OK, and with a long ping
/// period) while a SYNC reader follows the stream: the replies as shown, and the stream
/// read until it ends with `last`.
fn script_and_stream(
    server: &Server,
    setup: &[&[&str]],
    script: &[&[&str]],
    last: &[u8],
) -> (Vec<String>, String) {
    let mut c = server.conn();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]),
        ok()
    );
    for cmd in setup {
        assert_eq!(c.cmd(cmd), ok(), "{cmd:?}");
    }
    let (mut s, got) = attach_to_stream(server.port());
    let replies = script
        .iter()
        .map(|cmd| show_reply(c.cmd_raw(cmd)))
        .collect();
    let stream = String::from_utf8_lossy(&stream_until(&mut s, got, last)).into_owned();
    (replies, stream)
}

/// The replication stream a SYNC reader sees is redis-server 7.0's byte for byte across
/// FLUSHALL and FLUSHDB (barriers of every shard here): SELECT only where the database
/// changes, not again after a flush that left it as it was (Redis 7.0's
/// unit/type/list "... replication stream" tests assert `{select *} {flushall} {multi}`),
/// and still at the start of a new replica's stream.
#[test]
fn the_stream_selects_as_redis_across_flushes() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let script: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["FLUSHALL"],
        &["MULTI"],
        &["RPUSH", "k", "hello"],
        &["SET", "b", "2"],
        &["EXEC"],
        &["SET", "c", "3"],
        &["FLUSHDB"],
        &["SET", "d", "4"],
        &["SELECT", "3"],
        &["SET", "e", "5"],
        &["FLUSHALL"],
        &["SET", "f", "6"],
        &["SELECT", "9"],
        &["FLUSHALL"],
        &["LPUSH", "g", "7"],
        &["SET", "end", "1"],
    ];
    let last = common::encode_cmd(&["SET", "end", "1"]);
    let setup: &[&[&str]] = &[&["SELECT", "9"]];
    let (_, want) = script_and_stream(&redis, setup, script, &last);
    let (_, got) = script_and_stream(&percore, setup, script, &last);
    assert_eq!(got, want, "percore's stream, then redis-server's");
    // A second replica's stream starts with SELECT again.
    let mut c = percore.conn();
    assert_eq!(c.cmd(&["SELECT", "9"]), ok());
    let (mut s, got) = attach_to_stream(percore.port());
    assert_eq!(c.cmd(&["SET", "end", "1"]), ok());
    let want = [
        common::encode_cmd(&["SELECT", "9"]),
        common::encode_cmd(&["SET", "end", "1"]),
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&stream_until(&mut s, got, &last)),
        String::from_utf8_lossy(&want),
        "a new replica's stream"
    );
}

/// FLUSHALL and FLUSHDB go into the stream as the client sent them (`ASYNC|SYNC`, the
/// name's case), as redis-server 7.0 propagates them (`forceCommandPropagation` of the
/// argv), as does SWAPDB: byte for byte, with two shards (the barrier's path, which used
/// to drop the argument) and with one and no save points (the command's own path). All
/// keys on one shard (a hash tag): writes of different shards have no order between
/// them in the stream.
#[test]
fn flushes_go_into_the_stream_with_their_arguments_as_redis() {
    let Some(redis) = Server::redis_with(&["--save", ""]) else {
        return;
    };
    let script: &[&[&str]] = &[
        &["SET", "{s}a", "1"],
        &["FLUSHALL", "ASYNC"],
        &["SET", "{s}b", "2"],
        &["flushall", "sync"],
        &["SET", "{s}c", "3"],
        &["FLUSHDB", "ASYNC"],
        &["SET", "{s}d", "4"],
        &["FlushDb", "Sync"],
        &["SELECT", "3"],
        &["SET", "{s}e", "5"],
        &["flushall"],
        &["SET", "{s}f", "6"],
        &["FLUSHDB", "SYNC"],
        &["swapdb", "3", "9"],
        &["FLUSHALL", "BOGUS"],
        &["FLUSHDB", "ASYNC", "SYNC"],
        &["SET", "{s}end", "1"],
    ];
    let last = common::encode_cmd(&["SET", "{s}end", "1"]);
    let stream_of = |server: &Server| script_and_stream(server, &[&["SELECT", "9"]], script, &last);
    let want = stream_of(&redis);
    assert!(want.1.contains("$5\r\nASYNC\r\n"), "{:?}", want.1);
    for args in [&["--threads", "2"][..], &["--threads", "1", "--save", ""]] {
        let percore = Server::percore(args);
        let got = stream_of(&percore);
        assert_eq!(
            got.0, want.0,
            "{args:?}: replies, percore's then redis-server's"
        );
        assert_eq!(
            got.1, want.1,
            "{args:?}: stream, percore's then redis-server's"
        );
    }
}

/// SET with an EXAT/PXAT already past goes into the stream as Redis 7.0's
/// `setGenericCommand` sends it, `SET key value PXAT ms`, and the expired key's DEL when it
/// is next touched (percore sent the SET as the client wrote it and a DEL at once: the
/// rewrite read the key's expiry and so expired it). Byte for byte with redis-server.
#[test]
fn set_with_a_past_time_streams_as_redis() {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let percore = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let past_s = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 100)
        .to_string();
    let past_ms = format!("{past_s}000");
    let script: &[&[&str]] = &[
        &["SET", "foo", "bar"],
        &["SET", "foo", "bar", "EXAT", &past_s],
        &["GET", "foo"],
        &["SET", "k2", "v", "PXAT", &past_ms, "GET"],
        &["EXISTS", "k2"],
        &["SET", "end", "1"],
    ];
    let last = common::encode_cmd(&["SET", "end", "1"]);
    let setup: &[&[&str]] = &[&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]];
    let (_, want) = script_and_stream(&redis, setup, script, &last);
    let (_, got) = script_and_stream(&percore, setup, script, &last);
    assert_eq!(got, want, "percore's stream, then redis-server's");
}

/// CONFIG SET of `min-replicas-max-lag` counts the good replicas again at once, as
/// Redis's `updateGoodSlaves` (Valkey's integration/replication-2 sets the options and
/// writes at once): a replica that never acknowledges (a SYNC reader, online since its
/// RDB) is good while max-lag covers the time since it came online, and is not from the
/// moment a CONFIG SET lowers it below. Replies compared with redis-server 7.0's.
#[test]
fn config_set_of_min_replicas_recounts_the_good_replicas_at_once() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut conns = Vec::new();
    let mut readers = Vec::new();
    for server in [&redis, &percore] {
        let mut c = server.conn();
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]),
            ok()
        );
        readers.push(attach_to_stream(server.port()));
        replicas_online(&mut c, 1);
        conns.push(c);
    }
    // Both replicas came online (their lag counts from then) more than 2 s ago.
    std::thread::sleep(Duration::from_millis(2500));
    let steps: &[&[&str]] = &[
        &[
            "CONFIG",
            "SET",
            "min-replicas-to-write",
            "1",
            "min-replicas-max-lag",
            "10",
        ],
        &["SET", "a", "1"],
        &["CONFIG", "SET", "min-replicas-max-lag", "1"],
        &["SET", "a", "2"],
        &["CONFIG", "SET", "min-replicas-max-lag", "10"],
        &["SET", "a", "3"],
        &["CONFIG", "SET", "min-slaves-max-lag", "1"],
        &["SET", "a", "4"],
        &["CONFIG", "SET", "min-slaves-max-lag", "10"],
        &["SET", "a", "5"],
    ];
    for step in steps {
        let want = conns[0].cmd_raw(step);
        let got = conns[1].cmd_raw(step);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{step:?}"
        );
    }
    assert_eq!(conns[1].cmd(&["GET", "a"]), Frame::Bulk(b"5".to_vec()));
    drop(readers);
}

/// Bytes written while the replica is stopped in the output-buffer test.
const SLOW_REPLICA_WRITE_BYTES: usize = 40 << 20;

#[test]
fn a_replica_too_slow_for_its_output_buffer_limit_is_dropped_then_resyncs_partially() {
    let primary = Server::percore(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "128mb",
    ]);
    let port = primary.port().to_string();
    let replica = Server::percore(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    let mut p = primary.conn();
    replicas_online(&mut p, 1);
    assert_eq!(
        p.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0"
        ]),
        ok()
    );
    let partial_before: i64 = info_field(&mut p, "stats", "sync_partial_ok")
        .parse()
        .expect("a count");
    signal(replica.pid(), "-STOP");
    let value = "v".repeat(100_000);
    let n = SLOW_REPLICA_WRITE_BYTES / value.len();
    for i in 0..n {
        assert_eq!(p.cmd(&["SET", &format!("big:{i}"), &value]), ok());
    }
    wait_until("the slow replica to be dropped", || {
        info_field(&mut p, "replication", "connected_slaves") == "0"
    });
    assert_eq!(p.cmd(&["SET", "last", "1"]), ok());
    signal(replica.pid(), "-CONT");
    replicas_online(&mut p, 1);
    let mut r = replica.conn();
    wait_until("the replica to catch up", || {
        r.cmd(&["GET", "last"]) == Frame::Bulk(b"1".to_vec())
    });
    assert_eq!(
        r.cmd(&["GET", &format!("big:{}", n - 1)]),
        Frame::Bulk(value.into_bytes())
    );
    let partial_after: i64 = info_field(&mut p, "stats", "sync_partial_ok")
        .parse()
        .expect("a count");
    assert_eq!(partial_after, partial_before + 1, "not a partial resync");
}

#[test]
fn a_percore_replica_waits_through_the_keepalive_newlines_of_a_slow_save() {
    // 600 keys at 10 ms each, 300 per shard: the save takes 3 s, so the primary sends the
    // replica newlines (one a second) before the RDB; the replica must skip them (it once took
    // "\n$len" for a bad header and started over, for ever on a big dataset).
    let primary = Server::percore(&["--threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut p = primary.conn();
    for i in 0..600 {
        assert_eq!(p.cmd(&["SET", &format!("k:{i}"), "v"]), ok());
    }
    assert_eq!(
        p.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000"]),
        ok()
    );
    let port = primary.port().to_string();
    let replica = Server::percore(&["--threads", "2", "--replicaof", "127.0.0.1", &port]);
    replicas_online(&mut p, 1);
    let mut r = replica.conn();
    wait_until("the replica to load the sync", || {
        r.cmd(&["DBSIZE"]) == Frame::Int(600)
    });
    assert_eq!(info_field(&mut p, "stats", "sync_full"), "1");
    assert!(
        !replica.output().contains("Bad protocol"),
        "{}",
        replica.output()
    );
}

/// CLIENT UNBLOCK ends a WAIT as Redis 7.0's does: TIMEOUT answers the count of replicas
/// that acknowledged so far, ERROR the UNBLOCKED error; the connection then serves again.
/// Replies byte for byte against redis-server (no replica: WAIT 1 0 waits for ever).
#[test]
fn client_unblock_ends_a_wait_as_redis() {
    let percore = Server::percore(&["--threads", "2"]);
    let redis = Server::redis();
    let mut servers = vec![&percore];
    servers.extend(redis.as_ref());
    let mut transcripts = Vec::new();
    for server in servers {
        let mut a = server.conn();
        let mut b = server.conn();
        let id = match a.cmd(&["CLIENT", "ID"]) {
            Frame::Int(id) => id.to_string(),
            other => panic!("CLIENT ID: {other:?}"),
        };
        let mut got = vec![a.cmd_raw(&["SET", "k", "v"])];
        for how in ["TIMEOUT", "ERROR"] {
            a.send_cmd(&["WAIT", "1", "0"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            let unblock = loop {
                let r = b.cmd_raw(&["CLIENT", "UNBLOCK", &id, how]);
                if r != b":0\r\n" || Instant::now() > deadline {
                    break r;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            got.push(unblock);
            got.push(a.read_raw());
            got.push(b.cmd_raw(&["CLIENT", "UNBLOCK", &id, how]));
            got.push(a.cmd_raw(&["PING"]));
        }
        transcripts.push(got);
    }
    assert_eq!(transcripts[0][1], b":1\r\n", "CLIENT UNBLOCK of the WAIT");
    assert_eq!(transcripts[0][2], b":0\r\n", "WAIT's count after TIMEOUT");
    assert_eq!(
        transcripts[0][6],
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec()
    );
    if let [p, r] = &transcripts[..] {
        assert_eq!(p, r, "percore vs redis-server");
    }
}

/// An EXEC whose writes were queued while `min-replicas-to-write` was met, run when it no
/// longer is, is aborted with NOREPLICAS and its transaction and WATCHes dropped (Redis
/// 7.0's processCommand: EXEC counts as a write when its queue writes); a read-only
/// transaction still runs. Byte for byte against redis-server (no replica at all: the
/// option is raised between the queuing and the EXEC).
#[test]
fn exec_queued_before_replicas_went_missing_aborts_as_redis() {
    let percore = Server::percore(&["--threads", "2"]);
    let redis = Server::redis();
    let mut servers = vec![&percore];
    servers.extend(redis.as_ref());
    let mut transcripts = Vec::new();
    for server in servers {
        let mut a = server.conn();
        let mut b = server.conn();
        let mut got = Vec::new();
        for cmd in [
            &["SET", "{x}w", "0"][..],
            &["WATCH", "{x}w"],
            &["MULTI"],
            &["SET", "{x}k", "v"],
            &["INCR", "{y}n"],
            &["GET", "{x}w"],
        ] {
            got.push(a.cmd_raw(cmd));
        }
        assert_eq!(
            b.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
            ok()
        );
        for cmd in [
            &["EXEC"][..],
            &["EXEC"],
            &["GET", "{x}k"],
            &["MULTI"],
            &["GET", "{x}w"],
            &["EXEC"],
        ] {
            got.push(a.cmd_raw(cmd));
        }
        assert_eq!(
            b.cmd(&["CONFIG", "SET", "min-replicas-to-write", "0"]),
            ok()
        );
        // The WATCH went with the aborted transaction: another client's write does not
        // fail the next EXEC.
        got.push(a.cmd_raw(&["MULTI"]));
        got.push(a.cmd_raw(&["SET", "{x}k", "2"]));
        assert_eq!(b.cmd(&["SET", "{x}w", "1"]), ok());
        got.push(a.cmd_raw(&["EXEC"]));
        transcripts.push(got);
    }
    assert_eq!(
        transcripts[0][6],
        b"-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.\r\n".to_vec()
    );
    if let [p, r] = &transcripts[..] {
        assert_eq!(p, r, "percore vs redis-server");
    }
}

/// INFO's `master_repl_offset` and ROLE's offset count every write acknowledged before
/// them, from every shard and in a cross-shard MULTI, as Redis's do: a client comparing a
/// replica's offset with it (Redis's `wait_for_ofs_sync`, tests/replication.rs's
/// `wait_caught_up`) sees the replica caught up only once it has them. The merger used to
/// assign the offsets after the replies had left, so about one read in four missed the
/// last writes and a replica "caught up" without them (a flaky "1 keys differ").
#[test]
fn info_and_role_offsets_count_the_writes_acknowledged_before_them() {
    let primary = Server::percore(&[
        "--threads",
        "2",
        "--repl-diskless-sync-delay",
        "0",
        "--repl-ping-replica-period",
        "60",
    ]);
    let mut p = primary.conn();
    let port = primary.port().to_string();
    let replica = Server::percore(&["--replicaof", "127.0.0.1", &port]);
    replicas_online(&mut p, 1);
    let offset = |c: &mut Conn| -> i64 {
        info_field(c, "replication", "master_repl_offset")
            .parse()
            .expect("an offset")
    };
    for round in 0..50 {
        let r = round.to_string();
        p.cmd(&["SET", &format!("w:{r}"), &r]);
        p.cmd(&["INCRBY", "w:counter", "7"]);
        p.cmd(&["EXPIRE", &format!("w:{r}"), "500"]);
        assert_eq!(p.cmd(&["MULTI"]), ok());
        p.cmd(&["SET", "{t}a", &r]);
        p.cmd(&["SET", "{u}b", &r]);
        p.cmd(&["LPUSH", "w:list", &r]);
        assert!(matches!(p.cmd(&["EXEC"]), Frame::Array(_)));
        let info = offset(&mut p);
        let role = match p.cmd(&["ROLE"]) {
            Frame::Array(a) => match a.get(1) {
                Some(Frame::Int(n)) => *n,
                other => panic!("ROLE offset: {other:?}"),
            },
            other => panic!("ROLE: {other:?}"),
        };
        std::thread::sleep(Duration::from_millis(20));
        let later = offset(&mut p);
        assert_eq!(info, later, "round {round}: INFO's offset missed writes");
        assert_eq!(role, later, "round {round}: ROLE's offset missed writes");
    }
    drop(replica);
}

/// Scripts against `min-replicas-to-write` as redis-server 7.0 (replies byte for byte): a
/// script declaring flags without `no-writes` is refused before it runs, one without flags
/// runs its reads and gets NOREPLICAS at its first write (redis.call raises it,
/// redis.pcall returns it), `no-writes` scripts and read-only EVAL_RO run, and FCALL of a
/// writing function is refused.
#[test]
fn scripts_meet_min_replicas_to_write_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let primary = Server::percore(&["--threads", "2"]);
    let mut conns = [primary.conn(), redis.conn()];
    let library = "#!lua name=lib\n\
        redis.register_function('w', function(keys) return redis.call('set', keys[1], 'f') end)\n\
        redis.register_function{function_name='r', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";
    for c in &mut conns {
        assert_eq!(c.cmd(&["SET", "x", "some value"]), ok());
        assert!(matches!(
            c.cmd(&["FUNCTION", "LOAD", library]),
            Frame::Bulk(_)
        ));
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
            ok()
        );
    }
    for cmd in [
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "x"][..],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
            "1",
            "x",
        ],
        &["EVAL", "#!lua\nreturn redis.call('get', KEYS[1])", "1", "x"],
        &["EVAL", "return redis.call('set', KEYS[1], '1')", "1", "x"],
        &[
            "EVAL",
            "redis.call('get', KEYS[1]); return redis.pcall('set', KEYS[1], '1')",
            "1",
            "x",
        ],
        &[
            "EVAL",
            "return redis.call('set', KEYS[1], '1')",
            "1",
            "{x}y",
        ],
        &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "x"],
        &["FCALL", "w", "1", "x"],
        &["FCALL", "r", "1", "x"],
        &["FCALL_RO", "r", "1", "x"],
        &["GET", "x"],
    ] {
        let [p, r] = &mut conns;
        assert_eq!(
            show_reply(p.cmd_raw(cmd)),
            show_reply(r.cmd_raw(cmd)),
            "{cmd:?}"
        );
    }
}

fn show_reply(bytes: Vec<u8>) -> String {
    common::show(&bytes)
}

/// Rounds of [`concurrent_psyncs_while_writes_stream_never_hang`]: each attaches replicas
/// in parallel, then turns the primary into a replica and back (the stream's sink
/// detached, attached again by the next round's PSYNCs).
const PSYNC_ROUNDS: usize = 12;
/// Replicas attaching at once per round (half full syncs, half partial).
const PSYNCS_PER_ROUND: usize = 4;
/// Longest the whole test may take; a deadlock shows as a read timeout or this.
const PSYNC_TEST_DEADLINE: Duration = Duration::from_mins(2);

/// Sends `PSYNC replid offset` on a fresh connection and reads until its answer line
/// (`+FULLRESYNC` or `+CONTINUE`), past the keep-alive newlines; then drops the link
/// (the primary forgets the replica). Panics on a read timeout: a hung primary.
fn psync_answer(port: u16, replid: &str, offset: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    s.write_all(&common::encode_cmd(&["PSYNC", replid, offset]))
        .expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let body = got.iter().position(|&b| b != b'\n').unwrap_or(got.len());
        if let Some(end) = got[body..].windows(2).position(|w| w == b"\r\n") {
            return String::from_utf8_lossy(&got[body..body + end]).into_owned();
        }
        let n = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("PSYNC {replid} {offset}: no answer ({e})"));
        assert!(n > 0, "PSYNC {replid} {offset}: closed");
        got.extend_from_slice(&chunk[..n]);
    }
}

/// The replication locks never wait for each other in a cycle: replicas attach in
/// parallel (full and partial resyncs, the first ones racing to attach the stream's sink)
/// while writers on both shards stream writes, MULTI blocks and FLUSHALLs (barriers whose
/// cuts the merger passes to the replication sink under its sinks lock), and REPLICAOF
/// turns the primary into a replica and back (its barrier detaching the sink). PSYNC used
/// to attach the sink under the primary lock (the merger takes the sinks lock, then the
/// primary lock), and REPLICAOF's barrier detached it under the replication lock (the
/// merger takes the sinks lock, then the replication lock at a cut). Bounded: every read
/// has a timeout, the whole run a deadline; the server answers and streams at the end.
#[test]
fn concurrent_psyncs_while_writes_stream_never_hang() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let start = Instant::now();
    let primary = Server::percore(&[
        "--threads",
        "2",
        "--repl-ping-replica-period",
        "1",
        "--save",
        "",
    ]);
    let port = primary.port();
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, writes) = (Arc::clone(&stop), Arc::clone(&writes));
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("w{w}:{n}");
                    // Replies vary (READONLY while the node is a replica); each must come.
                    c.cmd_raw(&["SET", &key, "v"]);
                    if n.is_multiple_of(7) {
                        c.cmd_raw(&["MULTI"]);
                        c.cmd_raw(&["INCR", &format!("{{a}}{w}")]);
                        c.cmd_raw(&["INCR", &format!("{{b}}{w}")]);
                        c.cmd_raw(&["EXEC"]);
                    }
                    if n.is_multiple_of(50) {
                        c.cmd_raw(&["FLUSHALL", if w == 0 { "ASYNC" } else { "SYNC" }]);
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut c = Conn::connect(port);
    let nowhere = common::free_port().to_string();
    for round in 0..PSYNC_ROUNDS {
        assert!(
            start.elapsed() < PSYNC_TEST_DEADLINE,
            "round {round}: too slow"
        );
        let replid = info_field(&mut c, "replication", "master_replid");
        let offset: i64 = info_field(&mut c, "replication", "master_repl_offset")
            .parse()
            .expect("an offset");
        let go = Arc::new(std::sync::Barrier::new(PSYNCS_PER_ROUND));
        let attaching: Vec<_> = (0..PSYNCS_PER_ROUND)
            .map(|i| {
                let go = Arc::clone(&go);
                let (id, at) = if i % 2 == 0 {
                    ("?".to_owned(), "-1".to_owned())
                } else {
                    (replid.clone(), (offset + 1).to_string())
                };
                std::thread::spawn(move || {
                    go.wait();
                    psync_answer(port, &id, &at)
                })
            })
            .collect();
        for (i, t) in attaching.into_iter().enumerate() {
            let answer = t.join().expect("a PSYNC thread");
            assert!(
                answer.starts_with("+FULLRESYNC ") || answer.starts_with("+CONTINUE"),
                "round {round}, replica {i}: {answer:?}"
            );
        }
        assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &nowhere]), ok());
        assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]), ok());
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join()
            .expect("a writer (a reply timed out: a hung server)");
    }
    assert!(writes.load(Ordering::Relaxed) > 0);
    // Still streaming: a new replica gets the next write (and no PING after it).
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "repl-ping-replica-period", "3600"]),
        ok()
    );
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    let (mut s, got) = attach_to_stream(port);
    assert_eq!(c.cmd(&["SET", "end", "1"]), ok());
    let last = common::encode_cmd(&["SET", "end", "1"]);
    stream_until(&mut s, got, &last);
    assert!(start.elapsed() < PSYNC_TEST_DEADLINE, "too slow");
}
