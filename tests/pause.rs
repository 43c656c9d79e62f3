//! CLIENT PAUSE / UNPAUSE: replies and errors byte for byte against a real
//! `redis-server` 7.0; which commands wait under WRITE and ALL (the same assertions run
//! against both servers, percore with 2 and 3 shards); expiry paused. Held commands are
//! asserted by order (a read answered while the write waits, the write's key still
//! absent, the write answered after UNPAUSE), never by how long something took, except
//! that a pause never ends before its end time.

mod common;

use common::{Conn, Server, bulk, info_field, ok, show, wait_until};
use percore_net::resp::Frame;
use std::time::{Duration, Instant};

#[test]
fn pause_replies_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let cmds: &[&[&str]] = &[
        &["CLIENT", "PAUSE"],
        &["CLIENT", "PAUSE", "abc"],
        &["CLIENT", "PAUSE", "-1"],
        &["CLIENT", "PAUSE", "10", "foo"],
        &["CLIENT", "PAUSE", "abc", "foo"],
        &["CLIENT", "PAUSE", "abc", "write"],
        &["CLIENT", "PAUSE", "10", "write", "extra"],
        &["CLIENT", "PAUSE", "99999999999999999999"],
        &["CLIENT", "UNPAUSE", "x"],
        &["CLIENT", "PAUSE", "0"],
        &["CLIENT", "PAUSE", "0", "WRITE"],
        &["CLIENT", "UNPAUSE"],
        &["CLIENT", "unpause"],
    ];
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        let (mut r, mut p) = (Conn::connect(redis.port()), Conn::connect(percore.port()));
        for cmd in cmds {
            assert_eq!(
                show(&p.cmd_raw(cmd)),
                show(&r.cmd_raw(cmd)),
                "{cmd:?}, {threads} shards"
            );
        }
    }
}

/// Sends `cmd` on a new connection without reading the reply.
fn send_new(server: &Server, cmd: &[&str]) -> Conn {
    let mut c = Conn::connect(server.port());
    c.send_cmd(cmd);
    c
}

fn blocked(c: &mut Conn) -> u64 {
    info_field(c, "clients", "blocked_clients").parse().unwrap()
}

/// The WRITE pause on `server`: what waits and what does not.
fn write_pause(server: &Server) {
    let mut admin = Conn::connect(server.port());
    let mut reader = Conn::connect(server.port());
    assert_eq!(reader.cmd(&["PFADD", "hll", "a"]), Frame::Int(1));
    assert_eq!(
        reader.cmd(&["FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function{function_name='ro', callback=function() return 'ro' end, flags={'no-writes'}}\nredis.register_function('rw', function() return 'rw' end)"]),
        bulk("lib")
    );
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), ok());
    // Writers on several connections (so on several shards), and what may replicate.
    let held_cmds: &[&[&str]] = &[
        &["SET", "k0", "v"],
        &["SET", "k1", "v"],
        &["SET", "k2", "v"],
        &["INCR", "n"],
        &["PUBLISH", "ch", "m"],
        &["PFCOUNT", "hll"],
        &["EVAL", "return 1", "0"],
        &["EVAL", "#!lua\nreturn 2", "0"],
        &["FCALL", "rw", "0"],
    ];
    let mut held: Vec<Conn> = held_cmds.iter().map(|c| send_new(server, c)).collect();
    // A transaction whose queue writes waits at EXEC; a write queued while paused waits
    // at queue time.
    let mut tx = Conn::connect(server.port());
    assert_eq!(tx.cmd(&["MULTI"]), ok());
    assert_eq!(tx.cmd(&["GET", "k0"]), common::simple("QUEUED"));
    tx.send_cmd(&["SET", "k3", "v"]);
    // Reads, read-only scripts and functions are answered at once.
    assert_eq!(reader.cmd(&["GET", "k0"]), Frame::Null);
    assert_eq!(
        reader.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 3", "0"]),
        Frame::Int(3)
    );
    assert_eq!(reader.cmd(&["EVAL_RO", "return 4", "0"]), Frame::Int(4));
    assert_eq!(reader.cmd(&["FCALL", "ro", "0"]), bulk("ro"));
    let mut ro_tx = Conn::connect(server.port());
    assert_eq!(ro_tx.cmd(&["MULTI"]), ok());
    assert_eq!(ro_tx.cmd(&["PING"]), common::simple("QUEUED"));
    assert_eq!(
        ro_tx.cmd(&["EXEC"]),
        Frame::Array(vec![common::simple("PONG")])
    );
    // Syntax errors are answered at once.
    assert_eq!(
        show(&reader.cmd_raw(&["SET", "k0"])),
        "-ERR wrong number of arguments for 'set' command\r\n"
    );
    let want = held.len() as u64 + 1;
    wait_until("every write held", || blocked(&mut reader) == want);
    // Nothing held has run.
    assert_eq!(reader.cmd(&["GET", "k0"]), Frame::Null);
    assert_eq!(
        reader.cmd(&["EXISTS", "k1", "k2", "k3", "n"]),
        Frame::Int(0)
    );
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), ok());
    let answers: Vec<String> = held.iter_mut().map(|c| show(&c.read_raw())).collect();
    assert_eq!(
        answers,
        [
            "+OK\r\n",
            "+OK\r\n",
            "+OK\r\n",
            ":1\r\n",
            ":0\r\n",
            ":1\r\n",
            ":1\r\n",
            ":2\r\n",
            "$2\r\nrw\r\n"
        ]
    );
    assert_eq!(tx.read_frame(), common::simple("QUEUED"));
    assert_eq!(tx.cmd(&["EXEC"]), Frame::Array(vec![bulk("v"), ok()]));
    assert_eq!(
        reader.cmd(&["EXISTS", "k1", "k2", "k3", "n"]),
        Frame::Int(4)
    );
    assert_eq!(blocked(&mut reader), 0);
    assert_eq!(reader.cmd(&["FLUSHALL"]), ok());
    assert_eq!(reader.cmd(&["FUNCTION", "FLUSH"]), ok());
}

#[test]
fn write_pause_holds_what_may_replicate() {
    let Some(redis) = Server::redis() else {
        return;
    };
    write_pause(&redis);
    for threads in ["2", "3"] {
        write_pause(&Server::percore(&["--threads", threads]));
    }
}

/// A pause ALL holds every command until its end, and a later, shorter WRITE pause does
/// not shorten or relax it.
fn all_pause(server: &Server) {
    const PAUSE_MS: u64 = 400;
    let mut admin = Conn::connect(server.port());
    let start = Instant::now();
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", &PAUSE_MS.to_string(), "ALL"]),
        ok()
    );
    let mut readers: Vec<Conn> = (0..4).map(|_| send_new(server, &["GET", "k"])).collect();
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "10", "WRITE"]), ok());
    for r in &mut readers {
        assert_eq!(r.read_frame(), Frame::Null);
    }
    // Wall clock (server) against monotonic (test) may differ by a millisecond.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(PAUSE_MS - 5),
        "a read was answered {elapsed:?} into a {PAUSE_MS} ms pause ALL"
    );
}

#[test]
fn all_pause_holds_everything_until_its_end() {
    let Some(redis) = Server::redis() else {
        return;
    };
    all_pause(&redis);
    for threads in ["2", "3"] {
        all_pause(&Server::percore(&["--threads", threads]));
    }
}

/// Keys that expire during a pause read as absent but are not deleted (active or lazy)
/// until it ends. `randomkey`: RANDOMKEY answers (with a logically expired key, as
/// later Redis versions do; redis-server 7.0 loops for ever on a database of only
/// expired keys while paused, so it is not asked).
fn expiry_pause(server: &Server, randomkey: bool) {
    let mut c = Conn::connect(server.port());
    let keys = ["e0", "e1", "e2", "e3", "e4", "e5"];
    assert_eq!(c.cmd(&["MULTI"]), ok());
    for k in keys {
        assert_eq!(
            c.cmd(&["SET", k, "v", "PX", "30"]),
            common::simple("QUEUED")
        );
    }
    assert_eq!(
        c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]),
        common::simple("QUEUED")
    );
    let Frame::Array(replies) = c.cmd(&["EXEC"]) else {
        panic!("EXEC");
    };
    assert_eq!(replies.len(), keys.len() + 1);
    let expired = || -> u64 {
        let mut c = Conn::connect(server.port());
        info_field(&mut c, "stats", "expired_keys").parse().unwrap()
    };
    wait_until("the keys read as expired", || {
        keys.iter().all(|k| c.cmd(&["GET", k]) == Frame::Null)
    });
    // Past several active expiry cycles (10 per second).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(expired(), 0, "nothing is deleted while paused");
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(keys.len() as i64));
    if randomkey {
        assert_ne!(c.cmd(&["RANDOMKEY"]), Frame::Null);
    }
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), ok());
    for k in keys {
        assert_eq!(c.cmd(&["GET", k]), Frame::Null);
    }
    assert_eq!(expired(), keys.len() as u64);
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(0));
}

#[test]
fn expiry_waits_for_the_pause() {
    let Some(redis) = Server::redis() else {
        return;
    };
    expiry_pause(&redis, false);
    for threads in ["2", "3"] {
        expiry_pause(&Server::percore(&["--threads", threads]), true);
    }
}

/// Eviction waits out a pause, as in Redis 7.0 (`performEvictions` returns while clients
/// are paused, and CONFIG SET maxmemory only starts the eviction timer): a transaction
/// that lowers `maxmemory` and then pauses writes leaves the key in place until UNPAUSE.
/// The same steps against redis-server 7.0 and percore (2 shards); the pause's absence of
/// evictions is read after a DEBUG SLEEP that spans several ticks of both servers.
fn eviction_waits_for_unpause(server: &Server) {
    let mut c = server.conn();
    c.cmd(&["FLUSHALL"]);
    let evicted = |c: &mut Conn| -> u64 { info_field(c, "stats", "evicted_keys").parse().unwrap() };
    let before = evicted(&mut c);
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "foo{t}", "bar"]);
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    c.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    c.cmd(&["CLIENT", "PAUSE", "50000", "WRITE"]);
    let exec = c.cmd_raw(&["EXEC"]);
    assert_eq!(show(&exec), show(b"*4\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n"));
    // DEBUG SLEEP is not held by a WRITE pause; both servers tick while it runs.
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.3"]), ok());
    assert_eq!(evicted(&mut c), before);
    assert_eq!(c.cmd(&["EXISTS", "foo{t}"]), Frame::Int(1));
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), ok());
    wait_until("the eviction after UNPAUSE", || {
        evicted(&mut c) == before + 1
    });
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        ok()
    );
}

#[test]
fn eviction_waits_for_unpause_as_redis() {
    if let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) {
        eviction_waits_for_unpause(&redis);
    }
    eviction_waits_for_unpause(&Server::percore_threads(2));
}
