//! The slow log against a real `redis-server` 7.0: with `slowlog-log-slower-than 0`,
//! every command is logged with its original arguments (trimmed and redacted as Redis
//! does), whichever shard ran it (a command forwarded to its key's owner is logged with
//! its client's address and name). The logged argument lists are compared with redis's.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Server, show};
use percore_net::resp::Frame;

/// Commands run between `SLOWLOG RESET` and `SLOWLOG GET`: keys on every shard.
fn script() -> Vec<Vec<String>> {
    let s = |l: &str| l.split(' ').map(String::from).collect::<Vec<_>>();
    let mut cmds = vec![
        s("SADD set a b c d e"),
        s("SPOP set 10"),
        s("GEOADD cool-cities -122.33207 47.60621 Seattle"),
        s("SET A 5"),
        s("GETSET a 5"),
        s("INCRBYFLOAT A 1.0"),
        s("MIGRATE 127.0.0.1 1 nokey 9 5000 AUTH2 user password"),
    ];
    let mut many = s("SADD set2");
    many.extend((3..=33).map(|i| i.to_string()));
    cmds.push(many);
    cmds.push(vec![
        "SADD".into(),
        "set3".into(),
        "foo".into(),
        "A".repeat(129),
    ]);
    for i in 0..20 {
        cmds.push(vec!["SET".into(), format!("key:{i}"), i.to_string()]);
        cmds.push(vec!["GET".into(), format!("key:{i}")]);
    }
    // Keys on several shards: WATCH runs as a gather of parts on every shard (a slow one
    // once panicked its shard: the slow log read an argument list kept empty for keyed
    // parts).
    cmds.push(s("WATCH key:4 key:5 key:6 key:7 key:8 key:9"));
    cmds.push(s("UNWATCH"));
    cmds.push(s("MULTI"));
    cmds.push(s("DISCARD"));
    cmds
}

/// The argument lists of the log, oldest first (SLOWLOG RESET itself included).
fn logged(c: &mut Conn, script: &[Vec<String>]) -> Vec<String> {
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "slowcheck"]), common::ok());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        common::ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-max-len", "1000"]),
        common::ok()
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), common::ok());
    for cmd in script {
        c.cmd_raw(cmd);
    }
    let Frame::Array(entries) = c.cmd(&["SLOWLOG", "GET", "-1"]) else {
        panic!("SLOWLOG GET is an array")
    };
    entries
        .iter()
        .rev()
        .map(|e| {
            let Frame::Array(fields) = e else {
                panic!("an entry is an array")
            };
            // A script's calls are logged as its Lua client's: `?:0`, no name.
            let name = if fields[4] == common::bulk("?:0") {
                ""
            } else {
                "slowcheck"
            };
            assert_eq!(fields[5], common::bulk(name), "client name of {e:?}");
            format!("{:?}", fields[3])
        })
        .collect()
}

#[test]
fn slowlog_logs_every_command_as_redis_on_any_shard() {
    let Some(redis) = Server::redis() else { return };
    let percore = Server::percore(&["--threads", "3"]);
    same_log(&redis, &percore, &script());
}

fn same_log(redis: &Server, percore: &Server, script: &[Vec<String>]) {
    let want = logged(&mut redis.conn(), script);
    let got = logged(&mut percore.conn(), script);
    assert_eq!(got.len(), want.len(), "{}", show(got.join("\n").as_bytes()));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
}

/// A transaction (on one shard): MULTI and the commands EXEC ran are logged, EXEC is not
/// (Redis's `SLOWLOG - EXEC is not logged, just executed commands`).
#[test]
fn a_transaction_logs_its_commands_not_exec() {
    let Some(redis) = Server::redis() else { return };
    let percore = Server::percore(&["--threads", "1"]);
    let script: Vec<Vec<String>> = ["MULTI", "SET k x", "GET k", "INCR n", "EXEC"]
        .iter()
        .map(|l| l.split(' ').map(String::from).collect())
        .collect();
    same_log(&redis, &percore, &script);
}

/// Commands run under the transaction locks are logged as Redis logs them, with their
/// client's name: MSET/MGET/DEL over shards, a MULTI/EXEC with keys on several shards
/// (its commands, not EXEC), a script declaring keys on several shards (its calls too, as
/// Redis logs its Lua client's).
#[test]
fn commands_under_transaction_locks_are_logged() {
    let Some(redis) = Server::redis() else { return };
    let percore = Server::percore(&["--threads", "3"]);
    let mut script: Vec<Vec<String>> = [
        "MSET k1 1 k2 2 k3 3 k4 4 k5 5",
        "MGET k1 k2 k3 k4 k5",
        "DEL k1 k2 k3",
        "MULTI",
        "SET k6 1",
        "GET k7",
        "CONFIG GET maxmemory",
        "INCR k8",
        "EXEC",
    ]
    .iter()
    .map(|l| l.split(' ').map(String::from).collect())
    .collect();
    script.push(
        [
            "EVAL",
            "return redis.call('mget', KEYS[1], KEYS[2], KEYS[3])",
            "3",
            "k4",
            "k5",
            "k6",
        ]
        .map(String::from)
        .to_vec(),
    );
    same_log(&redis, &percore, &script);
}
