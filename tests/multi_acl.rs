//! ACL checks of transactions whatever shards their keys live on, byte for byte against
//! redis-server 7.0: EXEC checks every queued command again (the user's rules may have
//! changed since it was queued), and scripts inside MULTI (or run as a transaction
//! because their keys are on another shard) check their `redis.call`s as the user.
//! Without `redis-server` the tests print a notice and pass; `PERCORE_REQUIRE_REDIS=1`
//! fails them.

mod common;

use common::{Conn, Server, show};

/// Sends `line` (split on spaces) and returns its reply, shown.
fn run(c: &mut Conn, line: &[&str]) -> String {
    show(&c.cmd_raw(line))
}

/// The user `u` may touch keys `k*` with every command; its connection, in `proto`.
fn restricted(server: &Server, proto: &str) -> (Conn, Conn) {
    let mut admin = server.conn();
    admin.cmd_raw(&["FLUSHALL"]);
    admin.cmd_raw(&["ACL", "DELUSER", "u"]);
    admin.cmd_raw(&["ACL", "SETUSER", "u", "on", "nopass", "~k*", "+@all"]);
    let mut c = server.conn();
    c.cmd_raw(&["HELLO", proto, "AUTH", "u", "any"]);
    (admin, c)
}

const SET_SCRIPT: &str = "return redis.call('set', KEYS[1], ARGV[1])";
const GET_OTHER: &str = "return redis.call('get', 'other')";

/// One transaction per server: queued while the rules allow it, rules narrowed, EXEC.
fn narrowed_between_queue_and_exec(server: &Server, proto: &str) -> Vec<String> {
    let (mut admin, mut c) = restricted(server, proto);
    let mut replies = vec![run(&mut c, &["MULTI"])];
    for line in [
        &["SET", "k1", "a"][..],
        &["MSET", "k2", "b", "k3", "c", "k4", "d"],
        &["GET", "k4"],
        &["MGET", "k1", "k2"],
        &["EVAL", SET_SCRIPT, "1", "k5", "e"],
        &["EVAL", SET_SCRIPT, "1", "k6", "f"],
        &["EVAL", GET_OTHER, "0"],
        &["INCR", "k1"],
    ] {
        replies.push(run(&mut c, line));
    }
    replies.push(run(
        &mut admin,
        &["ACL", "SETUSER", "u", "resetkeys", "~k1", "~k5"],
    ));
    replies.push(run(&mut c, &["EXEC"]));
    replies.push(run(
        &mut admin,
        &["MGET", "k1", "k2", "k3", "k4", "k5", "k6"],
    ));
    replies
}

#[test]
fn exec_checks_every_command_again_on_every_shard() {
    let Some(redis) = Server::redis() else {
        return;
    };
    for threads in [2, 3] {
        let percore = Server::percore_threads(threads);
        for proto in ["2", "3"] {
            assert_eq!(
                narrowed_between_queue_and_exec(&redis, proto),
                narrowed_between_queue_and_exec(&percore, proto),
                "{threads} shards, RESP{proto}: redis, then percore"
            );
        }
    }
}

/// Scripts run by a restricted user whose declared keys live on another shard (so they
/// run as a transaction) and inside MULTI: their calls are checked as the user.
fn scripts_as_the_user(server: &Server) -> Vec<String> {
    let (mut admin, mut c) = restricted(server, "2");
    let mut replies = Vec::new();
    for key in ["k1", "k2", "k3", "k4", "k5", "k6"] {
        replies.push(run(&mut c, &["EVAL", SET_SCRIPT, "1", key, "v"]));
        replies.push(run(&mut c, &["EVAL", GET_OTHER, "1", key]));
        replies.push(run(&mut c, &["EVAL", SET_SCRIPT, "1", "other", "v"]));
    }
    replies.push(run(&mut c, &["MULTI"]));
    replies.push(run(&mut c, &["EVAL", GET_OTHER, "1", "k3"]));
    replies.push(run(&mut c, &["EVAL", SET_SCRIPT, "1", "k4", "w"]));
    replies.push(run(&mut c, &["EXEC"]));
    replies.push(run(
        &mut admin,
        &["MGET", "k1", "k2", "k3", "k4", "k5", "k6", "other"],
    ));
    replies
}

#[test]
fn scripts_check_their_calls_as_the_user_wherever_their_keys_live() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(3);
    assert_eq!(
        scripts_as_the_user(&redis),
        scripts_as_the_user(&percore),
        "redis, then percore"
    );
}
