//! Scripts on a server with several shards: where a script runs (its declared keys'
//! shard, or holding every shard for keys on several and undeclared keys elsewhere), the
//! script cache and functions seen from every shard, `-BUSY` with SCRIPT KILL and
//! FUNCTION KILL from other connections, and a bank of accounts moved by a Lua transfer
//! script while readers check the total.

mod common;

use common::{Conn, Server, show};
use percore_engine::slot::shard_of_key;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Two keys owned by shard 0 and one by shard 1 (of two).
fn keys() -> (String, String, String) {
    let mut on = [Vec::new(), Vec::new()];
    for i in 0.. {
        let k = format!("key:{i}");
        on[shard_of_key(k.as_bytes(), 2)].push(k);
        if on[0].len() >= 2 && !on[1].is_empty() {
            break;
        }
    }
    (on[0][0].clone(), on[0][1].clone(), on[1][0].clone())
}

#[test]
fn scripts_run_on_the_shard_of_their_keys() {
    let server = Server::percore_threads(2);
    let (a0, a1, b) = keys();
    let mut conns: Vec<Conn> = (0..4).map(|_| server.conn()).collect();
    for c in &mut conns {
        // From any connection (either shard), a script runs where its keys live.
        for k in [&a0, &b] {
            let set = c.cmd_raw(&[
                "EVAL",
                "return redis.call('set', KEYS[1], ARGV[1])",
                "1",
                k,
                "v",
            ]);
            assert_eq!(show(&set), "+OK\r\n");
            assert_eq!(show(&c.cmd_raw(&["GET", k])), "$1\r\nv\r\n");
        }
        // Keys on two shards: the script holds every shard and calls the other one.
        let both = c.cmd_raw(&[
            "EVAL",
            "return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}",
            "2",
            &a0,
            &b,
        ]);
        assert_eq!(show(&both), "*2\r\n$1\r\nv\r\n$1\r\nv\r\n");
        // Undeclared keys, on the script's shard or another: as Redis outside cluster mode.
        c.cmd_raw(&["SET", &a1, "x"]);
        let same = c.cmd_raw(&["EVAL", "return redis.call('get', ARGV[1])", "1", &a0, &a1]);
        assert_eq!(show(&same), "$1\r\nx\r\n");
        let other = c.cmd_raw(&["EVAL", "return redis.call('get', ARGV[1])", "1", &a0, &b]);
        assert_eq!(show(&other), "$1\r\nv\r\n");
        // Commands that need every shard, or keys on several, run across them.
        let all = c.cmd_raw(&["EVAL", "return redis.call('dbsize')", "1", &a0]);
        assert_eq!(show(&all), ":3\r\n");
        let mget = c.cmd_raw(&[
            "EVAL",
            "return redis.call('mget', ARGV[1], ARGV[2], ARGV[3])",
            "0",
            &a0,
            &a1,
            &b,
        ]);
        assert_eq!(show(&mget), "*3\r\n$1\r\nv\r\n$1\r\nx\r\n$1\r\nv\r\n");
    }
    // The script cache and the functions are shared by every shard.
    let sha = conns[0].cmd(&["SCRIPT", "LOAD", "return redis.call('get', KEYS[1])"]);
    let percore_net::resp::Frame::Bulk(sha) = sha else {
        panic!("SCRIPT LOAD: {sha:?}");
    };
    let sha = String::from_utf8(sha).unwrap();
    let lib = "#!lua name=lib\nredis.register_function('getit', function(keys) return redis.call('get', keys[1]) end)";
    assert_eq!(
        show(&conns[1].cmd_raw(&["FUNCTION", "LOAD", lib])),
        "$3\r\nlib\r\n"
    );
    for c in &mut conns {
        for k in [&a0, &b] {
            assert_eq!(show(&c.cmd_raw(&["EVALSHA", &sha, "1", k])), "$1\r\nv\r\n");
            assert_eq!(show(&c.cmd_raw(&["FCALL", "getit", "1", k])), "$1\r\nv\r\n");
        }
    }
    conns[2].cmd_raw(&["SCRIPT", "FLUSH"]);
    conns[3].cmd_raw(&["FUNCTION", "FLUSH"]);
    for c in &mut conns {
        for k in [&a0, &b] {
            assert_eq!(
                show(&c.cmd_raw(&["EVALSHA", &sha, "1", k])),
                "-NOSCRIPT No matching script. Please use EVAL.\r\n"
            );
            assert_eq!(
                show(&c.cmd_raw(&["FCALL", "getit", "1", k])),
                "-ERR Function not found\r\n"
            );
        }
    }
}

/// A raw connection with a read timeout, to tell a busy shard's silence from a reply.
struct Raw(TcpStream);

impl Raw {
    fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        Raw(s)
    }

    fn send(&mut self, args: &[&str]) {
        self.0.write_all(&common::encode_cmd(args)).unwrap();
    }

    /// What arrived within the timeout (empty: nothing yet).
    fn read(&mut self) -> String {
        let mut buf = vec![0u8; 4096];
        match self.0.read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(_) => String::new(),
        }
    }

    /// Waits up to `limit` for a reply.
    fn wait(&mut self, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let got = self.read();
            if !got.is_empty() || start.elapsed() > limit {
                return got;
            }
        }
    }
}

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";

/// Starts `cmd` on `runner`, then finds a connection on another shard: one that answers
/// PING with `busy` while the script runs. Connections on the busy shard answer later.
fn busy_peer(port: u16, runner: &mut Raw, cmd: &[&str], busy: &str) -> (Raw, Vec<Raw>) {
    runner.send(cmd);
    std::thread::sleep(Duration::from_millis(400));
    let mut waiting = Vec::new();
    // A slow (debug, loaded) build may not have passed the busy threshold yet: a PONG
    // from the other shard means "not busy yet", so try again a little later.
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..256 {
        let mut c = Raw::connect(port);
        c.send(&["PING"]);
        let got = c.read();
        if got.is_empty() {
            waiting.push(c);
            continue;
        }
        if got == "+PONG\r\n" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(got, busy);
        return (c, waiting);
    }
    panic!("no connection landed on the other shard");
}

#[test]
fn busy_scripts_answer_busy_elsewhere_and_script_kill_stops_them() {
    let server = Server::percore(&["--threads", "2", "--busy-reply-threshold", "100"]);
    let port = server.port();
    let mut runner = Raw::connect(port);
    let (mut peer, mut waiting) = busy_peer(
        port,
        &mut runner,
        &["EVAL", "while true do end", "0"],
        BUSY_EVAL,
    );
    // Only allow-busy commands run meanwhile; FUNCTION KILL does not kill a script.
    peer.send(&["FUNCTION", "KILL"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), BUSY_EVAL);
    peer.send(&["FUNCTION", "STATS"]);
    let stats = peer.wait(Duration::from_secs(5));
    assert!(stats.contains("running_script"), "{stats}");
    peer.send(&["SCRIPT", "KILL"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "+OK\r\n");
    let killed = runner.wait(Duration::from_secs(10));
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{killed}"
    );
    // The busy shard's own clients were served once it ended.
    for c in &mut waiting {
        assert_eq!(c.wait(Duration::from_secs(5)), "+PONG\r\n");
    }
    peer.send(&["PING"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "+PONG\r\n");
    peer.send(&["SCRIPT", "KILL"]);
    assert_eq!(
        peer.wait(Duration::from_secs(5)),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );

    // A script that wrote cannot be killed: it runs to its end. It spins 4 s measured in
    // microseconds (whole seconds gave 1-2 s, and `busy_peer`'s probes of the busy shard
    // cost 300 ms each: a short window could close before a probe reached the other
    // shard, failing in a loaded CI run).
    let writer = "redis.call('set', KEYS[1], '1') \
                  local function now() local t = redis.call('time') \
                  return tonumber(t[1]) * 1000000 + tonumber(t[2]) end \
                  local stop = now() + 4000000 while now() < stop do end return 'done'";
    let (mut peer, mut waiting) =
        busy_peer(port, &mut runner, &["EVAL", writer, "1", "w"], BUSY_EVAL);
    peer.send(&["SCRIPT", "KILL"]);
    let unkillable = peer.wait(Duration::from_secs(5));
    assert!(
        unkillable.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
        "{unkillable}"
    );
    assert_eq!(runner.wait(Duration::from_secs(10)), "$4\r\ndone\r\n");
    for c in &mut waiting {
        assert_eq!(c.wait(Duration::from_secs(5)), "+PONG\r\n");
    }

    // A busy function: SCRIPT KILL points to FUNCTION KILL, which stops it.
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    peer.send(&["FUNCTION", "LOAD", lib]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "$4\r\nspin\r\n");
    let (mut peer, mut waiting) =
        busy_peer(port, &mut runner, &["FCALL", "spin", "0"], BUSY_FUNCTION);
    peer.send(&["SCRIPT", "KILL"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), BUSY_FUNCTION);
    // FUNCTION STATS names the running function and its whole command as sent, as Redis
    // (the command ran on another shard than its client's).
    peer.send(&["FUNCTION", "STATS"]);
    let stats = peer.wait(Duration::from_secs(5));
    assert!(
        stats.contains("*3\r\n$5\r\nFCALL\r\n$4\r\nspin\r\n$1\r\n0\r\n"),
        "{stats}"
    );
    peer.send(&["FUNCTION", "KILL"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "+OK\r\n");
    let killed = runner.wait(Duration::from_secs(10));
    assert!(killed.starts_with("-ERR Script killed by user"), "{killed}");
    for c in &mut waiting {
        assert_eq!(c.wait(Duration::from_secs(5)), "+PONG\r\n");
    }
}

/// A killed script cannot catch its end with `pcall` (Redis's `Timedout read-only scripts
/// can be killed by SCRIPT KILL even when use pcall`): it ends with the kill error.
#[test]
fn script_kill_ends_a_script_that_catches_errors_with_pcall() {
    let server = Server::percore(&["--threads", "2", "--busy-reply-threshold", "100"]);
    let port = server.port();
    let mut runner = Raw::connect(port);
    let script = "local f = function() while 1 do redis.call('ping') end end \
                  while 1 do pcall(f) end";
    let (mut peer, mut waiting) = busy_peer(port, &mut runner, &["EVAL", script, "0"], BUSY_EVAL);
    peer.send(&["SCRIPT", "KILL"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "+OK\r\n");
    let killed = runner.wait(Duration::from_secs(10));
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{killed}"
    );
    for c in &mut waiting {
        assert_eq!(c.wait(Duration::from_secs(5)), "+PONG\r\n");
    }
    // pcall still catches errors in the next script.
    let caught = "local ok = pcall(error, 'x') if ok then return 'no' end return 'caught'";
    runner.send(&["EVAL", caught, "0"]);
    assert_eq!(runner.wait(Duration::from_secs(5)), "$6\r\ncaught\r\n");
}

/// EXEC while a script is busy aborts the transaction as Redis's `execCommandAbort`
/// (multi unit, `EXEC and script timeout`): nothing of it runs and the client leaves
/// MULTI; a command queued meanwhile was refused, so a later EXEC answers EXECABORT.
#[test]
fn exec_during_a_busy_script_discards_the_transaction() {
    let server = Server::percore(&["--threads", "2", "--busy-reply-threshold", "100"]);
    let port = server.port();
    let mut runner = Raw::connect(port);
    let (mut peer, _waiting) = busy_peer(
        port,
        &mut runner,
        &["EVAL", "while true do end", "0"],
        BUSY_EVAL,
    );
    peer.send(&["MULTI"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "+OK\r\n");
    peer.send(&["INCR", "xx"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), BUSY_EVAL);
    peer.send(&["EXEC"]);
    assert_eq!(
        peer.wait(Duration::from_secs(5)),
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY_EVAL[1..]
        )
    );
    peer.send(&["SCRIPT", "KILL"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "+OK\r\n");
    assert!(
        runner
            .wait(Duration::from_secs(10))
            .starts_with("-ERR Script killed")
    );
    peer.send(&["PING", "asdf"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "$4\r\nasdf\r\n");
    peer.send(&["GET", "xx"]);
    assert_eq!(peer.wait(Duration::from_secs(5)), "$-1\r\n");
}

/// Accounts in the bank (all under one hashtag: a script's keys live on one shard).
const ACCOUNTS: usize = 10;
const START_BALANCE: i64 = 1000;
const WRITERS: usize = 4;
const TRANSFERS_PER_WRITER: usize = 300;
const READERS: usize = 2;

const TRANSFER: &str = "
local from, to, amount = KEYS[1], KEYS[2], tonumber(ARGV[1])
local balance = tonumber(redis.call('get', from))
if balance < amount then return 0 end
redis.call('decrby', from, amount)
redis.call('incrby', to, amount)
redis.call('incr', KEYS[3])
return 1";

const SUM: &str = "
local total = 0
for i = 1, #KEYS do total = total + tonumber(redis.call('get', KEYS[i])) end
return total";

/// Writers move money between random accounts with a Lua script from connections on
/// both shards while readers sum every account in a script: the total never changes,
/// and the transfers the script counted are exactly those that answered 1.
#[test]
fn lua_bank_transfers_keep_the_total() {
    let server = Server::percore_threads(2);
    let port = server.port();
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("{{bank}}acct:{i}")).collect();
    let mut c = server.conn();
    for a in &accounts {
        c.cmd_raw(&["SET", a, &START_BALANCE.to_string()]);
    }
    let sha = match c.cmd(&["SCRIPT", "LOAD", TRANSFER]) {
        percore_net::resp::Frame::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    let total = START_BALANCE * ACCOUNTS as i64;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let accounts = accounts.clone();
        let stop = std::sync::Arc::clone(&stop);
        readers.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut args = vec!["EVAL".to_owned(), SUM.to_owned(), ACCOUNTS.to_string()];
            args.extend(accounts);
            let mut sums = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(show(&c.cmd_raw(&args)), format!(":{total}\r\n"));
                sums += 1;
            }
            sums
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let accounts = accounts.clone();
        let sha = sha.clone();
        writers.push(std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut rng = common::Rng(0x5eed_0000 + w as u64);
            let mut applied = 0;
            for _ in 0..TRANSFERS_PER_WRITER {
                let from = &accounts[rng.below(ACCOUNTS)];
                let to = &accounts[rng.below(ACCOUNTS)];
                let amount = (1 + rng.below(300)).to_string();
                let reply = c.cmd_raw(&["EVALSHA", &sha, "3", from, to, "{bank}applied", &amount]);
                match show(&reply).as_str() {
                    ":1\r\n" => applied += 1,
                    ":0\r\n" => {}
                    other => panic!("transfer: {other}"),
                }
            }
            applied
        }));
    }
    let applied: i64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sums: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(sums > 0);
    let mut args = vec!["EVAL".to_owned(), SUM.to_owned(), ACCOUNTS.to_string()];
    args.extend(accounts);
    assert_eq!(show(&c.cmd_raw(&args)), format!(":{total}\r\n"));
    assert_eq!(
        show(&c.cmd_raw(&["GET", "{bank}applied"])),
        format!("${}\r\n{applied}\r\n", applied.to_string().len())
    );
}
