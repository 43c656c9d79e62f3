//! Scripts and functions whose keys live on several shards, against a real `redis-server`:
//! the same random sequence of EVAL/FCALL (declared keys on several shards, undeclared
//! keys, multi-key and every-shard commands inside scripts, scripts inside MULTI) from
//! several connections (so scripts start on every shard), replies compared byte for byte,
//! then the whole dataset (`DEBUG DIGEST`). Then the same scripts' effects replayed from
//! the AOF after a restart.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Rng, Server, scratch_dir, show};

/// Keys without hashtags: spread over every shard.
const KEYS: usize = 10;
/// Commands per run (bounded: the test stays within a few seconds).
const STEPS: usize = 400;
/// Connections per server (scripts start on the shard of the connection).
const CONNS: usize = 4;

const LIBRARY: &str = "#!lua name=xs
redis.register_function('mv', function(keys, args)
  local v = redis.call('get', args[1])
  if v then redis.call('set', args[2], v) redis.call('del', args[1]) end
  return v
end)
redis.register_function{function_name='sum', callback=function(keys, args)
  local n = 0
  for _, k in ipairs(keys) do n = n + (tonumber(redis.call('get', k)) or 0) end
  return n
end, flags={'no-writes'}}";

fn key(i: usize) -> String {
    format!("k{i}")
}

/// One random command of the sequence.
fn step(rng: &mut Rng) -> Vec<String> {
    let any_key = |rng: &mut Rng| key(rng.below(KEYS));
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let (a, b, c) = (any_key(rng), any_key(rng), any_key(rng));
    let num = rng.range(1, 100).to_string();
    match rng.below(14) {
        0 => s(&[
            "EVAL",
            "redis.call('incrby', KEYS[1], ARGV[1]) return redis.call('mget', KEYS[1], KEYS[2], ARGV[2])",
            "2",
            &a,
            &b,
            &num,
            &c,
        ]),
        1 => s(&[
            "EVAL",
            "return redis.call('del', ARGV[1], ARGV[2])",
            "0",
            &a,
            &b,
        ]),
        2 => s(&[
            "EVAL",
            "redis.call('rpush', ARGV[1], ARGV[2]) return redis.call('lrange', ARGV[1], 0, -1)",
            "0",
            &a,
            &num,
        ]),
        3 => s(&[
            "EVAL",
            "return redis.call('rename', KEYS[1], KEYS[2])",
            "2",
            &a,
            &b,
        ]),
        4 => s(&[
            "EVAL",
            "local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('exists', k) end return n",
            "3",
            &a,
            &b,
            &c,
        ]),
        5 => s(&[
            "EVAL",
            "local t = redis.call('keys', '*') table.sort(t) return {redis.call('dbsize'), t}",
            "0",
        ]),
        6 => s(&[
            "EVAL",
            "redis.call('set', ARGV[1], ARGV[2]) return redis.pcall('incr', ARGV[3])",
            "0",
            &a,
            &num,
            &b,
        ]),
        7 => s(&["FCALL", "mv", "0", &a, &b]),
        8 => s(&["FCALL_RO", "sum", "3", &a, &b, &c]),
        9 => s(&[
            "EVAL",
            "redis.call('sadd', ARGV[1], ARGV[3]) return redis.pcall('smove', ARGV[1], ARGV[2], ARGV[3])",
            "0",
            &a,
            &b,
            &num,
        ]),
        10 => s(&[
            "EVAL",
            "return {redis.call('mset', ARGV[1], '1', ARGV[2], ARGV[3]), redis.call('get', ARGV[2])}",
            "0",
            &a,
            &b,
            &num,
        ]),
        11 => s(&[
            "EVAL",
            "return redis.pcall('incrbyfloat', KEYS[2], '1.5')",
            "2",
            &a,
            &b,
        ]),
        12 => s(&[
            "EVAL_RO",
            "return redis.call('mget', ARGV[1], ARGV[2], ARGV[3])",
            "0",
            &a,
            &b,
            &c,
        ]),
        _ => s(&["SET", &a, &num]),
    }
}

/// Runs `cmds` on both servers from `CONNS` connections each (the same connection index
/// on both), comparing every reply.
fn compare(redis: &Server, percore: &Server, seed: u64) -> Vec<String> {
    let mut rcs: Vec<Conn> = (0..CONNS).map(|_| redis.conn()).collect();
    let mut pcs: Vec<Conn> = (0..CONNS).map(|_| percore.conn()).collect();
    for c in [&mut rcs[0], &mut pcs[0]] {
        c.cmd_raw(&["FLUSHALL"]);
        c.cmd_raw(&["FUNCTION", "FLUSH"]);
        assert_eq!(
            show(&c.cmd_raw(&["FUNCTION", "LOAD", LIBRARY])),
            "$2\r\nxs\r\n"
        );
    }
    let mut rng = Rng(seed);
    let mut mismatches = Vec::new();
    for _ in 0..STEPS {
        let at = rng.below(CONNS);
        let mut cmds = vec![step(&mut rng)];
        let multi = rng.below(8) == 0;
        if multi {
            cmds = vec![vec!["MULTI".to_owned()], step(&mut rng), step(&mut rng)];
            cmds.push(vec!["EXEC".to_owned()]);
        }
        for cmd in &cmds {
            let want = show(&rcs[at].cmd_raw(cmd));
            let got = show(&pcs[at].cmd_raw(cmd));
            if got != want {
                mismatches.push(format!("{cmd:?}\n  percore: {got}\n  redis:   {want}"));
            }
        }
    }
    let want = show(&rcs[0].cmd_raw(&["DEBUG", "DIGEST"]));
    let got = show(&pcs[0].cmd_raw(&["DEBUG", "DIGEST"]));
    if got != want {
        mismatches.push(format!("DEBUG DIGEST\n  percore: {got}\n  redis:   {want}"));
    }
    mismatches
}

fn run(threads: usize) {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let percore = Server::percore_threads(threads);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mismatches = compare(&redis, &percore, seed);
    assert!(
        mismatches.is_empty(),
        "threads {threads} seed {seed}: {} replies differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn cross_shard_scripts_match_redis_two_shards() {
    run(2);
}

#[test]
fn cross_shard_scripts_match_redis_three_shards() {
    run(3);
}

/// Cross-shard scripts written to the AOF replay to the same dataset after a restart.
#[test]
fn cross_shard_scripts_replay_from_the_aof() {
    let dir = scratch_dir("xscript-aof");
    let dir_s = dir.to_str().expect("utf-8 path").to_owned();
    let args = ["--threads", "3", "--dir", &dir_s, "--appendonly", "yes"];
    let digest = {
        let server = Server::percore(&args);
        let mut c = server.conn();
        assert_eq!(
            show(&c.cmd_raw(&["FUNCTION", "LOAD", LIBRARY])),
            "$2\r\nxs\r\n"
        );
        let mut rng = Rng(0x0a0f_5c41);
        let mut conns: Vec<Conn> = (0..CONNS).map(|_| server.conn()).collect();
        for _ in 0..STEPS {
            let at = rng.below(CONNS);
            conns[at].cmd_raw(&step(&mut rng));
        }
        let d = show(&c.cmd_raw(&["DEBUG", "DIGEST"]));
        assert_ne!(
            d, "+0000000000000000000000000000000000000000\r\n",
            "the run wrote"
        );
        d
    };
    let server = Server::percore(&args);
    let mut c = server.conn();
    assert_eq!(show(&c.cmd_raw(&["DEBUG", "DIGEST"])), digest);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
