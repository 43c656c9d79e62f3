//! Per-command and per-subcommand statistics as Redis 7.0 keeps them: INFO commandstats
//! (`cmdstat_config|resetstat`), errorstats (incl. CLIENT UNBLOCK's `UNBLOCKED`),
//! latencystats and LATENCY HISTOGRAM's names, compared with redis-server after the same
//! commands (times and latencies differ; names and counts must not).

mod common;

use common::{Conn, Server};
use percore_net::resp::Frame;
use std::collections::BTreeMap;

/// `INFO <section>` as `name → value` for the lines starting with `prefix`, with the
/// fields named in `drop` removed from each value (times).
fn section(c: &mut Conn, name: &str, prefix: &str, drop: &[&str]) -> BTreeMap<String, String> {
    let text = match c.cmd(&["INFO", name]) {
        Frame::Bulk(t) => String::from_utf8(t).expect("utf-8 INFO"),
        other => panic!("INFO is not a bulk string: {other:?}"),
    };
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            let kept: Vec<&str> = v
                .split(',')
                .filter(|f| !drop.iter().any(|d| f.starts_with(&format!("{d}="))))
                .collect();
            (k.to_string(), kept.join(","))
        })
        .collect()
}

/// The names LATENCY HISTOGRAM `args` answers with, sorted (Redis lists subcommands in
/// its dictionary's order), with their call counts.
fn histogram_names(c: &mut Conn, args: &[&str]) -> Vec<(String, i64)> {
    let mut argv = vec!["LATENCY", "HISTOGRAM"];
    argv.extend_from_slice(args);
    let Frame::Array(items) = c.cmd(&argv) else {
        panic!("LATENCY HISTOGRAM is not an array");
    };
    let mut out: Vec<(String, i64)> = items
        .chunks(2)
        .map(|pair| {
            let Frame::Bulk(name) = &pair[0] else {
                panic!("a name: {pair:?}");
            };
            let Frame::Array(fields) = &pair[1] else {
                panic!("a map: {pair:?}");
            };
            let Frame::Int(calls) = fields[1] else {
                panic!("calls: {fields:?}");
            };
            (String::from_utf8_lossy(name).into_owned(), calls)
        })
        .collect();
    out.sort();
    out
}

/// The same commands on both servers; replies must agree too.
fn run(r: &mut Conn, p: &mut Conn, script: &[&[&str]]) {
    for args in script {
        assert_eq!(
            common::show(&r.cmd_raw(args)),
            common::show(&p.cmd_raw(args)),
            "{args:?}"
        );
    }
}

#[test]
fn subcommand_stats_and_errors_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let (mut r, mut p) = (redis.conn(), percore.conn());
    run(
        &mut r,
        &mut p,
        &[
            &["CONFIG", "RESETSTAT"],
            &["CONFIG", "GET", "maxmemory"],
            &["CONFIG", "GET", "hz"],
            &["CONFIG", "SET", "a"],
            &["CONFIG", "NOSUCH"],
            &["CONFIG"],
            &["CLIENT", "SETNAME", "stats"],
            &["CLIENT", "GETNAME"],
            &["OBJECT", "ENCODING", "missing"],
            &["SET", "k1", "v"],
            &["SET", "k2", "v"],
            &["OBJECT", "ENCODING", "k1"],
            &["OBJECT", "FREQ", "k2"],
            &["XADD", "s1", "1-1", "f", "v"],
            &["XADD", "s2", "1-1", "f", "v"],
            // Keyed subcommands failing on both shards (NOGROUP).
            &["XGROUP", "CREATECONSUMER", "s1", "g", "c"],
            &["XGROUP", "CREATECONSUMER", "s2", "g", "c"],
            &["XGROUP", "CREATE", "s1", "g", "$"],
            &["XINFO", "STREAM", "s2"],
            &["GET", "k1", "extra"],
            &["NOSUCHCOMMAND"],
            &["INCR", "k1"],
            &["MEMORY", "USAGE", "missing"],
        ],
    );
    let drop = ["usec", "usec_per_call"];
    assert_eq!(
        section(&mut r, "commandstats", "cmdstat_", &drop),
        section(&mut p, "commandstats", "cmdstat_", &drop)
    );
    assert_eq!(
        section(&mut r, "errorstats", "errorstat_", &[]),
        section(&mut p, "errorstats", "errorstat_", &[])
    );
    let names = |c: &mut Conn| -> Vec<String> {
        section(c, "latencystats", "latency_percentiles_usec_", &[])
            .into_keys()
            .collect()
    };
    assert_eq!(names(&mut r), names(&mut p));
    for args in [
        &[][..],
        &["config"],
        &["CONFIG|GET", "client", "nosuch", "set"],
        &["config|get", "config|get"],
        &["xgroup|createconsumer", "object|freq"],
    ] {
        assert_eq!(
            histogram_names(&mut r, args),
            histogram_names(&mut p, args),
            "LATENCY HISTOGRAM {args:?}"
        );
    }
    // RESETSTAT clears every subcommand's numbers and counts itself.
    run(&mut r, &mut p, &[&["CONFIG", "RESETSTAT"]]);
    assert_eq!(
        histogram_names(&mut r, &[]),
        histogram_names(&mut p, &[]),
        "after RESETSTAT"
    );
    assert_eq!(
        section(&mut r, "commandstats", "cmdstat_", &drop),
        section(&mut p, "commandstats", "cmdstat_", &drop)
    );
}

/// Waits until INFO says one client is blocked.
fn wait_blocked(c: &mut Conn) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while common::info_field(c, "clients", "blocked_clients") != "1" {
        assert!(std::time::Instant::now() < deadline, "never blocked");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The stats after two calls of `cmd` that failed with `code`: errorstats, commandstats
/// and total_error_replies.
fn two_failed_calls(c: &mut Conn, code: &str, cmd: &str, server: &str) {
    let errors = section(c, "errorstats", "errorstat_", &[]);
    assert_eq!(
        errors.get(code).map(String::as_str),
        Some("count=2"),
        "{server}"
    );
    let cmds = section(c, "commandstats", "cmdstat_", &["usec", "usec_per_call"]);
    assert_eq!(
        cmds.get(cmd).map(String::as_str),
        Some("calls=2,rejected_calls=0,failed_calls=2"),
        "{server}"
    );
    assert_eq!(common::info_field(c, "stats", "total_error_replies"), "2");
}

#[test]
fn client_unblock_error_counts_as_a_failed_call() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    for s in [&redis, &percore] {
        let mut c = s.conn();
        c.cmd(&["CONFIG", "RESETSTAT"]);
        let mut blocked = s.conn();
        let Frame::Int(id) = blocked.cmd(&["CLIENT", "ID"]) else {
            panic!("CLIENT ID");
        };
        // Both shards' keys, so the block is registered on either.
        for key in ["list1{t}", "list2"] {
            blocked.send_cmd(&["BLPOP", key, "0"]);
            wait_blocked(&mut c);
            let id = id.to_string();
            assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), Frame::Int(1));
            let reply = blocked.read_raw();
            assert!(
                reply.starts_with(b"-UNBLOCKED "),
                "{}",
                common::show(&reply)
            );
        }
        two_failed_calls(&mut c, "UNBLOCKED", "blpop", &format!("{:?}", s.kind()));
    }
}

/// A blocked XREADGROUP that XGROUP DESTROY answers with NOGROUP is a failed call, in
/// errorstats and total_error_replies too (Redis's stream-cgroups "XGROUP DESTROY should
/// unblock XREADGROUP with -NOGROUP"); the stream on either shard.
#[test]
fn a_blocked_command_answered_with_an_error_counts_as_failed() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    for s in [&redis, &percore] {
        let mut c = s.conn();
        c.cmd(&["CONFIG", "RESETSTAT"]);
        let mut blocked = s.conn();
        for key in ["s1{t}", "s2"] {
            c.cmd(&["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]);
            blocked.send_cmd(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "BLOCK",
                "0",
                "STREAMS",
                key,
                ">",
            ]);
            wait_blocked(&mut c);
            assert_eq!(c.cmd(&["XGROUP", "DESTROY", key, "g"]), Frame::Int(1));
            let reply = blocked.read_raw();
            assert!(reply.starts_with(b"-NOGROUP "), "{}", common::show(&reply));
        }
        two_failed_calls(&mut c, "NOGROUP", "xreadgroup", &format!("{:?}", s.kind()));
    }
}

/// A split command (MGET, DEL) of one key goes into the slow log with its arguments, as
/// in Redis, whichever shard runs it: its gather keeps no copy of them, and the shard
/// once panicked there (maxmemory unit, a slow `MGET 1`).
#[test]
fn slow_split_commands_are_logged_with_their_arguments() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let entries = |c: &mut Conn| -> Vec<Frame> {
        let Frame::Array(list) = c.cmd(&["SLOWLOG", "GET", "-1"]) else {
            panic!("SLOWLOG GET");
        };
        // Each entry's arguments (id, time, duration, client address and name differ).
        list.iter()
            .map(|e| match e {
                Frame::Array(fields) => fields[3].clone(),
                other => panic!("entry {other:?}"),
            })
            .collect()
    };
    let mut got = Vec::new();
    for s in [&redis, &percore] {
        let mut c = s.conn();
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        for args in [
            &["MGET", "1"][..],
            &["MGET", "2"],
            &["MGET", "3"],
            &["DEL", "4"],
            &["DEL", "5"],
        ] {
            c.cmd(args);
        }
        got.push(entries(&mut c));
        assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    }
    assert_eq!(got[0].len(), 6, "{:?}", got[0]);
    assert_eq!(got[0], got[1], "redis (left) vs percore (right)");
}

/// Commands run under the transaction locks (MSET/MGET/DEL over shards, a MULTI/EXEC with
/// keys on several shards, a script declaring keys on several shards) count under their
/// subcommand's row (`cmdstat_config|get` inside EXEC) as Redis.
#[test]
fn commands_under_transaction_locks_count_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&["--threads", "3"]);
    let (mut r, mut p) = (redis.conn(), percore.conn());
    run(
        &mut r,
        &mut p,
        &[
            &["CONFIG", "RESETSTAT"],
            &[
                "MSET", "k1", "1", "k2", "2", "k3", "3", "k4", "4", "k5", "5",
            ],
            &["MGET", "k1", "k2", "k3", "k4", "k5"],
            &["DEL", "k1", "k2", "k3"],
            &["MULTI"],
            &["SET", "k6", "1"],
            &["CONFIG", "GET", "maxmemory"],
            &["OBJECT", "ENCODING", "k7"],
            &["INCR", "k8"],
            &["XGROUP", "CREATECONSUMER", "k9", "g", "c"],
            &["EXEC"],
            &[
                "EVAL",
                "return redis.call('mget', KEYS[1], KEYS[2], KEYS[3])",
                "3",
                "k4",
                "k5",
                "k6",
            ],
        ],
    );
    let drop = ["usec", "usec_per_call"];
    assert_eq!(
        section(&mut r, "commandstats", "cmdstat_", &drop),
        section(&mut p, "commandstats", "cmdstat_", &drop)
    );
}

/// `CONFIG SET latency-tracking no` stops latencystats on every shard, not only on the
/// one that ran it (Valkey's "latencystats: disable/enable"): SETs of keys on both of
/// percore's shards record nothing, as on redis-server; `yes` records again.
#[test]
fn latency_tracking_turns_off_on_every_shard() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let (mut r, mut p) = (redis.conn(), percore.conn());
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for c in [&mut r, &mut p] {
        c.cmd(&["CONFIG", "RESETSTAT"]);
        c.cmd(&["CONFIG", "SET", "latency-tracking", "no"]);
        for k in keys {
            c.cmd(&["SET", k, "v"]);
        }
    }
    // Whether SET has latency percentiles (CONFIG's own entries are left out).
    let names = |c: &mut Conn| -> Vec<String> {
        section(c, "latencystats", "latency_percentiles_usec_", &[])
            .into_keys()
            .filter(|k| k == "set")
            .collect()
    };
    assert_eq!(names(&mut p), names(&mut r));
    assert!(names(&mut p).is_empty());
    for c in [&mut r, &mut p] {
        c.cmd(&["CONFIG", "SET", "latency-tracking", "yes"]);
        for k in keys {
            c.cmd(&["SET", k, "v"]);
        }
    }
    assert_eq!(names(&mut p), names(&mut r));
    assert_eq!(names(&mut p), ["set"]);
}
