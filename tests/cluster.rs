//! Cluster mode end to end (`--threads 2`): redirect and error texts, every CLUSTER
//! subcommand's reply shape (against a real `redis-server --cluster-enabled yes` where
//! both agree), nodes.conf across restarts and when corrupt, CLUSTER RESET SOFT/HARD,
//! MOVED/ASK/TRYAGAIN between two percore nodes, RDB `slot-info` fields, and
//! `redis-cli -c` / `redis-cli --cluster check` against percore.
//!
//! Tests that need `redis-server` or `redis-cli` print a notice and pass when they are
//! absent, and fail instead with `PERCORE_REQUIRE_REDIS=1`.

mod common;

use common::{Conn, Server, bulk, err, ok, scratch_dir, simple};
use percore_net::resp::Frame;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Redis Cluster's slot of `key` (CRC16-XMODEM of the key or its `{tag}`).
fn slot_of(key: &str) -> u16 {
    percore_engine::slot::key_hash_slot(key.as_bytes())
}

fn percore_cluster(extra: &[&str]) -> Server {
    let mut args = vec!["--threads", "2", "--cluster-enabled", "yes"];
    args.extend_from_slice(extra);
    Server::percore(&args)
}

fn redis_cluster() -> Option<Server> {
    Server::redis_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
    ])
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Error(b) => String::from_utf8_lossy(b).into(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into(),
        other => panic!("not a string reply: {other:?}"),
    }
}

/// `field:value` lines of CLUSTER INFO.
fn info_fields(c: &mut Conn) -> Vec<(String, String)> {
    text(&c.cmd(&["CLUSTER", "INFO"]))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn info_field(c: &mut Conn, name: &str) -> String {
    info_fields(c)
        .into_iter()
        .find(|(k, _)| k == name)
        .map_or_else(|| panic!("CLUSTER INFO lacks {name}"), |(_, v)| v)
}

/// Polls until `cluster_state` is `want` (redis-server waits 2 s after start before it
/// turns a primary's state to ok).
fn wait_state(c: &mut Conn, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(c, "cluster_state") != want {
        assert!(
            Instant::now() < deadline,
            "cluster_state never became {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a redis tool can run; prints a notice when not, fails under
/// `PERCORE_REQUIRE_REDIS=1`.
fn tool_available(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"),
            "{tool} not found, and PERCORE_REQUIRE_REDIS=1 requires it"
        );
        println!("skipping: {tool} not found");
    }
    ok
}

/// Replaces every 40-hex node id and every port number in a reply with placeholders, so
/// two servers' replies compare by shape.
fn shape(f: &Frame) -> Frame {
    match f {
        Frame::Bulk(b) if b.len() == 40 && b.iter().all(u8::is_ascii_hexdigit) => bulk("<id>"),
        Frame::Int(i) if *i > 16383 => Frame::Int(-1),
        Frame::Array(items) => Frame::Array(items.iter().map(shape).collect()),
        Frame::Map(items) => Frame::Map(items.iter().map(|(k, v)| (shape(k), shape(v))).collect()),
        other => other.clone(),
    }
}

/// Commands whose replies must be byte-identical on a fresh percore node and a fresh
/// redis-server node (no slots assigned yet).
const SAME_ON_FRESH_NODES: &[&[&str]] = &[
    &["CLUSTER", "KEYSLOT", "foo"],
    &["CLUSTER", "KEYSLOT", "{user1000}.following"],
    &["CLUSTER", "KEYSLOT", ""],
    &["CLUSTER", "COUNTKEYSINSLOT", "0"],
    &["CLUSTER", "COUNTKEYSINSLOT", "16384"],
    &["CLUSTER", "COUNTKEYSINSLOT", "-1"],
    &["CLUSTER", "COUNTKEYSINSLOT", "x"],
    &["CLUSTER", "GETKEYSINSLOT", "1", "10"],
    &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
    &["CLUSTER", "GETKEYSINSLOT", "16384", "1"],
    &["CLUSTER", "GETKEYSINSLOT", "x", "1"],
    &["CLUSTER", "GETKEYSINSLOT", "1", "x"],
    &["CLUSTER", "ADDSLOTS", "99999"],
    &["CLUSTER", "ADDSLOTS", "x"],
    &["CLUSTER", "ADDSLOTS", "1", "x"],
    &["CLUSTER", "ADDSLOTSRANGE", "5", "1"],
    &["CLUSTER", "ADDSLOTSRANGE", "1"],
    &["CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"],
    &["CLUSTER", "ADDSLOTSRANGE", "1", "x"],
    &["CLUSTER", "DELSLOTS", "1"],
    &["CLUSTER", "DELSLOTS", "x"],
    &["CLUSTER", "DELSLOTSRANGE", "1", "2"],
    &["CLUSTER", "SETSLOT", "1"],
    &["CLUSTER", "SETSLOT", "1", "foo"],
    &["CLUSTER", "SETSLOT", "x", "stable"],
    &["CLUSTER", "SETSLOT", "1", "node"],
    &["CLUSTER", "SETSLOT", "1", "node", "abc"],
    &["CLUSTER", "SETSLOT", "1", "migrating", "abc"],
    &["CLUSTER", "SETSLOT", "1", "importing", "abc"],
    &["CLUSTER", "SETSLOT", "1", "stable"],
    &["CLUSTER", "SET-CONFIG-EPOCH", "-1"],
    &["CLUSTER", "SET-CONFIG-EPOCH", "x"],
    &["CLUSTER", "COUNT-FAILURE-REPORTS", "abc"],
    &["CLUSTER", "FORGET", "abc"],
    &["CLUSTER", "REPLICAS", "abc"],
    &["CLUSTER", "RESET", "bogus"],
    &["CLUSTER", "RESET", "soft", "x"],
    &["CLUSTER", "NOSUCH"],
    &["CLUSTER"],
    &["CLUSTER", "MYID", "extra"],
    &["CLUSTER", "INFO", "extra"],
    &["CLUSTER", "LINKS"],
    &["CLUSTER", "SLOTS"],
    &["CLUSTER", "SAVECONFIG"],
    &["SET", "foo", "bar"],
    &["GET", "foo"],
    &["MGET", "{t}a", "{t}b"],
    &["ASKING"],
    &["READONLY"],
    &["READWRITE"],
    &["SELECT", "0"],
    &["PING"],
    &["CLUSTER", "BUMPEPOCH"],
    &["CLUSTER", "BUMPEPOCH"],
    &["CLUSTER", "SET-CONFIG-EPOCH", "5"],
];

/// Commands byte-identical after both nodes took every slot and hold a few keys.
const SAME_WITH_ALL_SLOTS: &[&[&str]] = &[
    &["SET", "foo", "bar"],
    &["GET", "foo"],
    &["MSET", "{a}1", "1", "{a}2", "2", "{a}3", "3"],
    &["MSET", "{a}1", "1", "{b}2", "2"],
    &["MGET", "{a}1", "{a}2", "nope"],
    &["CLUSTER", "COUNTKEYSINSLOT", "15495"],
    &["CLUSTER", "GETKEYSINSLOT", "15495", "0"],
    &["CLUSTER", "COUNTKEYSINSLOT", "12182"],
    &["CLUSTER", "GETKEYSINSLOT", "12182", "5"],
    &["CLUSTER", "ADDSLOTS", "1"],
    &["CLUSTER", "ADDSLOTSRANGE", "0", "5"],
    &["CLUSTER", "DELSLOTS", "7", "7"],
    &["CLUSTER", "SETSLOT", "1", "importing", "abc"],
    &["CLUSTER", "SETSLOT", "1", "migrating", "abc"],
    &["CLUSTER", "RESET"],
    &["CLUSTER", "RESET", "HARD"],
    &["CLUSTER", "FLUSHSLOTS"],
    &["CLUSTER", "COUNT-FAILURE-REPORTS", "abc"],
    &["RENAME", "{a}1", "{a}9"],
    &["EXISTS", "{a}9", "{a}1"],
    &["DEL", "{a}2", "{a}3", "{a}9"],
    &["DEL", "foo"],
];

#[test]
fn replies_match_redis_on_fresh_and_full_nodes() {
    let Some(redis) = redis_cluster() else {
        return;
    };
    let percore = percore_cluster(&[]);
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for cmd in SAME_ON_FRESH_NODES {
        assert_eq!(
            common::show(&p.cmd_raw(cmd)),
            common::show(&r.cmd_raw(cmd)),
            "{cmd:?}"
        );
    }
    // Keys across slots: CROSSSLOT before any slot check, as Valkey (Redis 7.0 answers
    // CLUSTERDOWN when the first key's slot is unassigned).
    for cmd in [
        &["MSET", "a", "1", "b", "2"][..],
        &["DEL", "a", "b"],
        &["RENAME", "a", "b"],
    ] {
        assert_eq!(
            p.cmd(cmd),
            err("CROSSSLOT Keys in request don't hash to the same slot")
        );
    }
    // Reply shapes that contain ids and ports.
    for cmd in [
        &["CLUSTER", "MYID"][..],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "COUNT-FAILURE-REPORTS"],
    ] {
        assert_eq!(shape(&p.cmd(cmd)), shape(&r.cmd(cmd)), "{cmd:?}");
    }
    let myid = text(&p.cmd(&["CLUSTER", "MYID"]));
    assert_eq!(
        p.cmd(&["CLUSTER", "COUNT-FAILURE-REPORTS", &myid]),
        Frame::Int(0)
    );
    assert_eq!(
        p.cmd(&["CLUSTER", "FORGET", &myid]),
        err("ERR I tried hard but I can't forget myself...")
    );
    assert_eq!(p.cmd(&["CLUSTER", "REPLICAS", &myid]), Frame::Array(vec![]));
    // A fresh node: CLUSTER NODES is one line, without an address yet.
    let nodes = text(&p.cmd(&["CLUSTER", "NODES"]));
    let port = percore.port();
    assert_eq!(
        nodes,
        format!(
            "{myid} :{port}{} myself,master - 0 0 1 connected\n",
            cport(port)
        )
    );
    // Both nodes take every slot.
    for c in [&mut r, &mut p] {
        assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
    }
    wait_state(&mut r, "ok");
    assert_eq!(info_field(&mut p, "cluster_state"), "ok");
    for cmd in SAME_WITH_ALL_SLOTS {
        let (pr, rr) = (p.cmd(cmd), r.cmd(cmd));
        if cmd[1] == "GETKEYSINSLOT" {
            let sorted = |f: Frame| match f {
                Frame::Array(mut v) => {
                    v.sort_by_key(text);
                    Frame::Array(v)
                }
                other => other,
            };
            assert_eq!(sorted(pr), sorted(rr), "{cmd:?}");
        } else {
            assert_eq!(pr, rr, "{cmd:?}");
        }
    }
    for cmd in [&["CLUSTER", "SLOTS"][..], &["CLUSTER", "SHARDS"]] {
        assert_eq!(shape(&p.cmd(cmd)), shape(&r.cmd(cmd)), "{cmd:?}");
    }
    // CLUSTER INFO: the fields Redis 7.0 has, with the same values (percore adds
    // Valkey 9's node failure counters).
    let pf = info_fields(&mut p);
    let rf = info_fields(&mut r);
    for (k, v) in &rf {
        let mine = pf.iter().find(|(pk, _)| pk == k);
        assert_eq!(mine.map(|(_, pv)| pv), Some(v), "CLUSTER INFO {k}");
    }
    let names: Vec<&str> = pf.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "cluster_nodes_pfail",
        "cluster_nodes_fail",
        "cluster_voting_nodes_pfail",
        "cluster_voting_nodes_fail",
    ] {
        assert!(names.contains(&k), "{k}");
    }
    // The keys are gone: both reset.
    for c in [&mut r, &mut p] {
        assert_eq!(c.cmd(&["CLUSTER", "RESET"]), ok());
        assert_eq!(c.cmd(&["CLUSTER", "SLOTS"]), Frame::Array(vec![]));
    }
    assert_eq!(info_field(&mut p, "cluster_state"), "fail");
    assert_eq!(info_field(&mut p, "cluster_known_nodes"), "1");
}

/// The bus port shown for a client port (0 when port + 10000 does not fit).
fn cport(port: u16) -> String {
    format!("@{}", port.checked_add(10000).unwrap_or(0))
}

#[test]
fn cluster_mode_off_refuses_cluster_commands() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    let disabled = err("ERR This instance has cluster support disabled");
    assert_eq!(c.cmd(&["CLUSTER", "INFO"]), disabled);
    assert_eq!(c.cmd(&["CLUSTER", "RESET"]), disabled);
    assert_eq!(c.cmd(&["ASKING"]), disabled);
    assert_eq!(
        c.cmd(&["CLUSTER", "NOSUCH"]),
        err("ERR unknown subcommand 'NOSUCH'. Try CLUSTER HELP.")
    );
    assert_eq!(c.cmd(&["READONLY"]), ok());
    assert_eq!(c.cmd(&["READWRITE"]), ok());
    let info = text(&c.cmd(&["INFO", "cluster"]));
    assert!(info.contains("cluster_enabled:0"), "{info}");
    // Keys still spread over the shards without slot checks.
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]), ok());
}

#[test]
fn node_reports_cluster_mode() {
    let s = percore_cluster(&[]);
    let mut c = s.conn();
    let info = text(&c.cmd(&["INFO"]));
    assert!(info.contains("cluster_enabled:1"), "{info}");
    assert!(info.contains("redis_mode:cluster"), "{info}");
    let hello = c.cmd(&["HELLO", "2"]);
    let Frame::Array(items) = hello else {
        panic!("HELLO reply")
    };
    let mode = items
        .chunks(2)
        .find(|kv| kv[0] == bulk("mode"))
        .map(|kv| kv[1].clone());
    assert_eq!(mode, Some(bulk("cluster")));
    let help = c.cmd(&["CLUSTER", "HELP"]);
    let Frame::Array(lines) = help else {
        panic!("HELP reply")
    };
    assert!(lines.contains(&simple("RESET [HARD|SOFT]")));
    assert_eq!(lines.last(), Some(&simple("    Prints this help.")));
    let myshard = text(&c.cmd(&["CLUSTER", "MYSHARDID"]));
    assert_eq!(myshard.len(), 40);
}

#[test]
fn redirections_and_down_states() {
    let s = percore_cluster(&[]);
    let mut c = s.conn();
    // No slot served: every keyed command is refused, keyless ones run.
    assert_eq!(
        c.cmd(&["GET", "foo"]),
        err("CLUSTERDOWN Hash slot not served")
    );
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(0));
    assert_eq!(
        c.cmd(&["MSET", "a", "1", "b", "2"]),
        err("CROSSSLOT Keys in request don't hash to the same slot")
    );
    // Slots 0-8191 only: served slots answer CLUSTERDOWN while the cluster is down.
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]), ok());
    assert_eq!(info_field(&mut c, "cluster_state"), "fail");
    let (served, unserved) = ("bar", "foo");
    assert!(slot_of(served) < 8192 && slot_of(unserved) >= 8192);
    assert_eq!(
        c.cmd(&["GET", served]),
        err("CLUSTERDOWN The cluster is down")
    );
    assert_eq!(
        c.cmd(&["GET", unserved]),
        err("CLUSTERDOWN Hash slot not served")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "cluster-allow-reads-when-down", "yes"]),
        ok()
    );
    assert_eq!(c.cmd(&["GET", served]), Frame::Null);
    assert_eq!(
        c.cmd(&["SET", served, "1"]),
        err("CLUSTERDOWN The cluster is down and only accepts read commands")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]),
        ok()
    );
    assert_eq!(info_field(&mut c, "cluster_state"), "ok");
    // Every connection (spread over both shards) sees the change at once.
    for _ in 0..8 {
        let mut other = s.conn();
        assert_eq!(other.cmd(&["SET", served, "1"]), ok());
        assert_eq!(
            other.cmd(&["SET", unserved, "1"]),
            err("CLUSTERDOWN Hash slot not served")
        );
    }
}

/// SORT in cluster mode, as redis-server 7.0 answers (texts checked against it): BY with a
/// `*` pattern and every GET are refused; a constant BY sorts nothing; STORE's destination
/// counts as a key of the request (CROSSSLOT across slots, as ZUNIONSTORE's sources).
#[test]
fn sort_and_numkeys_commands_in_cluster_mode() {
    let s = percore_cluster(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
    assert_eq!(c.cmd(&["RPUSH", "{l}", "3", "1", "2"]), Frame::Int(3));
    let by = err("ERR BY option of SORT denied in Cluster mode.");
    let get = err("ERR GET option of SORT denied in Cluster mode.");
    assert_eq!(c.cmd(&["SORT", "{l}", "BY", "w_*"]), by);
    assert_eq!(c.cmd(&["SORT", "{l}", "BY", "w_*", "GET", "#"]), by);
    assert_eq!(c.cmd(&["SORT", "{l}", "GET", "#"]), get);
    assert_eq!(c.cmd(&["SORT_RO", "{l}", "GET", "w_*"]), get);
    assert_eq!(
        c.cmd(&["SORT", "{l}", "LIMIT", "x", "1", "BY", "w_*"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["SORT", "{l}", "BY", "nosort"]),
        Frame::Array(vec![bulk("3"), bulk("1"), bulk("2")])
    );
    assert_eq!(
        c.cmd(&["SORT", "{l}", "STORE", "other"]),
        err("CROSSSLOT Keys in request don't hash to the same slot")
    );
    assert_eq!(
        c.cmd(&["SORT", "{l}", "DESC", "STORE", "{l}d"]),
        Frame::Int(3)
    );
    assert_eq!(
        c.cmd(&["LRANGE", "{l}d", "0", "-1"]),
        Frame::Array(vec![bulk("3"), bulk("2"), bulk("1")])
    );
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "{l}z", "2", "{l}a", "b"]),
        err("CROSSSLOT Keys in request don't hash to the same slot")
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "{l}a", "b"]),
        err("CROSSSLOT Keys in request don't hash to the same slot")
    );
    assert_eq!(c.cmd(&["SINTERCARD", "2", "{l}a", "{l}b"]), Frame::Int(0));
}

/// A nodes.conf line for a node that serves `ranges`.
fn conf_line(id: &str, port: u16, me: bool, epoch: u64, ranges: &str) -> String {
    format!(
        "{id} 127.0.0.1:{port}{},,tls-port=0,shard-id={} {} - 0 0 {epoch} connected {ranges}\n",
        cport(port),
        id.chars().rev().collect::<String>(),
        if me { "myself,master" } else { "master" }
    )
}

const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";

/// Two percore nodes that know each other from hand-written nodes.conf files: A serves
/// slots 0-8191, B 8192-16383.
fn two_nodes() -> (Server, Server, std::path::PathBuf, std::path::PathBuf) {
    let (da, db) = (scratch_dir("cluster-a"), scratch_dir("cluster-b"));
    let (pa, pb) = (common::free_port(), common::free_port());
    let conf = |me_a: bool| {
        format!(
            "{}{}vars currentEpoch 2 lastVoteEpoch 0\n",
            conf_line(ID_A, pa, me_a, 1, "0-8191"),
            conf_line(ID_B, pb, !me_a, 2, "8192-16383")
        )
    };
    std::fs::write(da.join("nodes.conf"), conf(true)).unwrap();
    std::fs::write(db.join("nodes.conf"), conf(false)).unwrap();
    let start = |dir: &Path, port: u16| {
        let port = port.to_string();
        let dir = dir.to_str().unwrap().to_owned();
        Server::percore_at(
            &port,
            &["--threads", "2", "--cluster-enabled", "yes", "--dir", &dir],
        )
    };
    let a = start(&da, pa);
    let b = start(&db, pb);
    (a, b, da, db)
}

#[test]
fn moved_ask_and_tryagain_between_two_nodes() {
    let (a, b, da, db) = two_nodes();
    let (mut ca, mut cb) = (a.conn(), b.conn());
    let addr_a = format!("127.0.0.1:{}", a.port());
    let addr_b = format!("127.0.0.1:{}", b.port());
    assert_eq!(info_field(&mut ca, "cluster_state"), "ok");
    assert_eq!(info_field(&mut ca, "cluster_known_nodes"), "2");
    assert_eq!(info_field(&mut ca, "cluster_size"), "2");
    assert_eq!(info_field(&mut ca, "cluster_current_epoch"), "2");
    let foo = slot_of("foo");
    assert!(foo >= 8192);
    assert_eq!(
        ca.cmd(&["GET", "foo"]),
        err(&format!("MOVED {foo} {addr_b}"))
    );
    assert_eq!(cb.cmd(&["SET", "foo", "1"]), ok());
    let slots = ca.cmd(&["CLUSTER", "SLOTS"]);
    let Frame::Array(ranges) = &slots else {
        panic!("{slots:?}")
    };
    assert_eq!(ranges.len(), 2);
    // Migrate the slot of {b} from A to B.
    let s = slot_of("{b}").to_string();
    assert!(slot_of("{b}") < 8192);
    assert_eq!(ca.cmd(&["SET", "{b}here", "1"]), ok());
    assert_eq!(ca.cmd(&["CLUSTER", "SETSLOT", &s, "MIGRATING", ID_B]), ok());
    assert_eq!(cb.cmd(&["CLUSTER", "SETSLOT", &s, "IMPORTING", ID_A]), ok());
    let nodes_a = text(&ca.cmd(&["CLUSTER", "NODES"]));
    assert!(nodes_a.contains(&format!("[{s}->-{ID_B}]")), "{nodes_a}");
    let nodes_b = text(&cb.cmd(&["CLUSTER", "NODES"]));
    assert!(nodes_b.contains(&format!("[{s}-<-{ID_A}]")), "{nodes_b}");
    // On A: present keys are served, missing ones redirected with ASK, mixed: TRYAGAIN.
    assert_eq!(ca.cmd(&["GET", "{b}here"]), bulk("1"));
    assert_eq!(
        ca.cmd(&["GET", "{b}gone"]),
        err(&format!("ASK {s} {addr_b}"))
    );
    assert_eq!(
        ca.cmd(&["MGET", "{b}here", "{b}gone"]),
        err("TRYAGAIN Multiple keys request during rehashing of slot")
    );
    // From connections on either shard (the slot lives on one of them).
    for _ in 0..8 {
        let mut other = a.conn();
        assert_eq!(other.cmd(&["GET", "{b}here"]), bulk("1"));
        assert_eq!(
            other.cmd(&["GET", "{b}gone"]),
            err(&format!("ASK {s} {addr_b}"))
        );
        let mut other_b = b.conn();
        assert_eq!(other_b.cmd(&["ASKING"]), ok());
        assert_eq!(other_b.cmd(&["EXISTS", "{b}gone"]), Frame::Int(0));
    }
    // On B: MOVED back to A unless ASKING (which lasts one command).
    assert_eq!(
        cb.cmd(&["GET", "{b}gone"]),
        err(&format!("MOVED {s} {addr_a}"))
    );
    assert_eq!(cb.cmd(&["ASKING"]), ok());
    assert_eq!(cb.cmd(&["SET", "{b}gone", "2"]), ok());
    assert_eq!(
        cb.cmd(&["GET", "{b}gone"]),
        err(&format!("MOVED {s} {addr_a}"))
    );
    assert_eq!(cb.cmd(&["ASKING"]), ok());
    assert_eq!(
        cb.cmd(&["MGET", "{b}gone", "{b}other"]),
        err("TRYAGAIN Multiple keys request during rehashing of slot")
    );
    assert_eq!(cb.cmd(&["ASKING"]), ok());
    assert_eq!(cb.cmd(&["GET", "{b}gone"]), bulk("2"));
    // RESTORE-ASKING (what MIGRATE sends) needs no ASKING before it, and leaves none.
    let Frame::Bulk(payload) = ca.cmd(&["DUMP", "{b}here"]) else {
        panic!("DUMP")
    };
    let mut restore: Vec<&[u8]> = vec![b"RESTORE-ASKING", b"{b}moved", b"0"];
    restore.push(&payload);
    assert_eq!(cb.cmd(&restore), ok());
    assert_eq!(
        cb.cmd(&["GET", "{b}moved"]),
        err(&format!("MOVED {s} {addr_a}"))
    );
    assert_eq!(cb.cmd(&["ASKING"]), ok());
    assert_eq!(cb.cmd(&["GET", "{b}moved"]), bulk("1"));
    // Finish: B owns the slot; A may give it away once it holds no key of it.
    assert_eq!(cb.cmd(&["CLUSTER", "SETSLOT", &s, "NODE", ID_B]), ok());
    assert_eq!(cb.cmd(&["GET", "{b}gone"]), bulk("2"));
    // B already had the largest epoch, so closing the import does not bump it (Valkey).
    assert_eq!(info_field(&mut cb, "cluster_my_epoch"), "2");
    assert_eq!(
        ca.cmd(&["CLUSTER", "SETSLOT", &s, "NODE", ID_B]),
        err(&format!(
            "ERR Can't assign hashslot {s} to a different node while I still hold keys for this hash slot."
        ))
    );
    assert_eq!(ca.cmd(&["DEL", "{b}here"]), Frame::Int(1));
    assert_eq!(ca.cmd(&["CLUSTER", "SETSLOT", &s, "NODE", ID_B]), ok());
    assert_eq!(
        ca.cmd(&["GET", "{b}here"]),
        err(&format!("MOVED {s} {addr_b}"))
    );
    let nodes_a = text(&ca.cmd(&["CLUSTER", "NODES"]));
    assert!(!nodes_a.contains("->-"), "migration closed: {nodes_a}");
    // redis-cli follows the redirections, and --cluster check sees one agreeing cluster.
    if tool_available("redis-cli") {
        let cli = |args: &[&str]| {
            let out = Command::new("redis-cli")
                .args(["-c", "-p", &a.port().to_string()])
                .args(args)
                .output()
                .expect("redis-cli runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(cli(&["SET", "foo", "via-a"]), "OK");
        assert_eq!(cli(&["GET", "foo"]), "via-a");
        assert_eq!(cb.cmd(&["GET", "foo"]), bulk("via-a"));
        let out = Command::new("redis-cli")
            .args(["--cluster", "check", &addr_a])
            .output()
            .expect("redis-cli runs");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{report}");
        assert!(
            report.contains("All nodes agree about slots configuration"),
            "{report}"
        );
        assert!(report.contains("All 16384 slots covered"), "{report}");
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(da);
    let _ = std::fs::remove_dir_all(db);
}

#[test]
fn nodes_conf_survives_a_restart() {
    let dir = scratch_dir("cluster-restart");
    let d = dir.to_str().unwrap().to_owned();
    let port = common::free_port().to_string();
    let args = ["--threads", "2", "--cluster-enabled", "yes", "--dir", &d];
    let (id, shard, nodes) = {
        let s = Server::percore_at(&port, &args);
        let mut c = s.conn();
        assert_eq!(
            c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "99", "200", "300"]),
            ok()
        );
        assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTS", "5000"]), ok());
        assert_eq!(c.cmd(&["CLUSTER", "BUMPEPOCH"]), simple("BUMPED 1"));
        let id = text(&c.cmd(&["CLUSTER", "MYID"]));
        let shard = text(&c.cmd(&["CLUSTER", "MYSHARDID"]));
        let nodes = text(&c.cmd(&["CLUSTER", "NODES"]));
        // The file is on disk before the reply, in Valkey's format.
        let conf = std::fs::read_to_string(dir.join("nodes.conf")).unwrap();
        assert_eq!(
            conf,
            format!(
                "{id} :{port}{},,tls-port=0,shard-id={shard} myself,master - 0 0 1 connected 0-99 200-300 5000\nvars currentEpoch 1 lastVoteEpoch 0\n",
                cport(port.parse().unwrap())
            )
        );
        (id, shard, nodes)
    };
    let s = Server::percore_at(&port, &args);
    let mut c = s.conn();
    assert_eq!(text(&c.cmd(&["CLUSTER", "MYID"])), id);
    assert_eq!(text(&c.cmd(&["CLUSTER", "MYSHARDID"])), shard);
    assert_eq!(text(&c.cmd(&["CLUSTER", "NODES"])), nodes);
    assert_eq!(info_field(&mut c, "cluster_current_epoch"), "1");
    assert_eq!(info_field(&mut c, "cluster_my_epoch"), "1");
    assert_eq!(info_field(&mut c, "cluster_slots_assigned"), "202");
    assert!(
        s.output()
            .contains(&format!("Node configuration loaded, I'm {id}")),
        "{}",
        s.output()
    );
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn corrupt_nodes_conf_stops_start_up() {
    let dir = scratch_dir("cluster-corrupt");
    let conf = dir.join("nodes.conf");
    for (content, want) in [
        (
            "this is not a nodes.conf\n",
            "line 1: a node line has at least 8 fields",
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 :7000@17000 master - 0 0 0 connected\n",
            "no 'myself' flag",
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 :7000@17000 myself,master - 0 0 0 connected 0-99999\n",
            "slot '99999'",
        ),
    ] {
        std::fs::write(&conf, content).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_percore-server"))
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
            .args(["--cluster-enabled", "yes", "--dir", dir.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .expect("percore-server runs");
        assert!(!out.status.success(), "started with {content:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("corrupted cluster config file")
                && stderr.contains(conf.to_str().unwrap())
                && stderr.contains(want),
            "{stderr}"
        );
        // The file is left as it was.
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), content);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cluster_reset_soft_and_hard() {
    let s = percore_cluster(&[]);
    let dir_conf = |c: &mut Conn| {
        let _ = c;
        std::fs::read_to_string(s.dir().join("nodes.conf")).unwrap()
    };
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
    assert_eq!(c.cmd(&["CLUSTER", "BUMPEPOCH"]), simple("BUMPED 1"));
    let id = text(&c.cmd(&["CLUSTER", "MYID"]));
    let shard = text(&c.cmd(&["CLUSTER", "MYSHARDID"]));
    // Keys on either shard refuse the reset, in any database... (only db 0 here).
    for key in ["a", "b", "c", "d"] {
        assert_eq!(c.cmd(&["SET", key, "1"]), ok());
        assert_eq!(
            c.cmd(&["CLUSTER", "RESET"]),
            err("ERR CLUSTER RESET can't be called with master nodes containing keys")
        );
        assert_eq!(
            c.cmd(&["CLUSTER", "RESET", "HARD"]),
            err("ERR CLUSTER RESET can't be called with master nodes containing keys")
        );
        assert_eq!(c.cmd(&["DEL", key]), Frame::Int(1));
    }
    assert_eq!(text(&c.cmd(&["CLUSTER", "MYID"])), id);
    // SOFT: same id and epochs, a new shard id, no slots; on disk before the reply.
    assert_eq!(c.cmd(&["CLUSTER", "RESET", "soft"]), ok());
    let conf = dir_conf(&mut c);
    let new_shard = text(&c.cmd(&["CLUSTER", "MYSHARDID"]));
    assert_ne!(new_shard, shard);
    assert_eq!(text(&c.cmd(&["CLUSTER", "MYID"])), id);
    assert!(conf.starts_with(&format!("{id} ")), "{conf}");
    assert!(conf.contains(&format!("shard-id={new_shard} ")), "{conf}");
    assert!(
        conf.contains(" myself,master - 0 0 1 connected\n"),
        "{conf}"
    );
    assert!(
        conf.ends_with("vars currentEpoch 1 lastVoteEpoch 0\n"),
        "{conf}"
    );
    assert_eq!(info_field(&mut c, "cluster_state"), "fail");
    assert_eq!(info_field(&mut c, "cluster_slots_assigned"), "0");
    assert_eq!(info_field(&mut c, "cluster_known_nodes"), "1");
    assert_eq!(info_field(&mut c, "cluster_my_epoch"), "1");
    // Every shard sees the released slots at once.
    for _ in 0..8 {
        assert_eq!(
            s.conn().cmd(&["SET", "k", "v"]),
            err("CLUSTERDOWN Hash slot not served")
        );
    }
    // HARD: a new id too, epochs 0.
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTS", "7"]), ok());
    assert_eq!(c.cmd(&["CLUSTER", "RESET", "HARD"]), ok());
    let conf = dir_conf(&mut c);
    let new_id = text(&c.cmd(&["CLUSTER", "MYID"]));
    assert_ne!(new_id, id);
    assert_ne!(text(&c.cmd(&["CLUSTER", "MYSHARDID"])), new_shard);
    assert!(conf.starts_with(&format!("{new_id} ")), "{conf}");
    assert!(
        conf.ends_with("vars currentEpoch 0 lastVoteEpoch 0\n"),
        "{conf}"
    );
    assert_eq!(info_field(&mut c, "cluster_current_epoch"), "0");
    assert_eq!(info_field(&mut c, "cluster_my_epoch"), "0");
    assert_eq!(info_field(&mut c, "cluster_slots_assigned"), "0");
    assert!(
        s.output()
            .contains(&format!("Node hard reset, now I'm {new_id}")),
        "{}",
        s.output()
    );
}

#[test]
fn counts_and_keys_per_slot_follow_every_write() {
    let s = percore_cluster(&["--cluster-databases", "2"]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
    let slot = slot_of("{x}").to_string();
    let other = slot_of("{y}").to_string();
    for i in 0..50 {
        assert_eq!(c.cmd(&["SET", &format!("{{x}}{i}"), "v"]), ok());
        assert_eq!(
            c.cmd(&["SET", &format!("{{y}}{i}"), "v", "PX", "100000"]),
            ok()
        );
    }
    assert_eq!(
        c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        Frame::Int(50)
    );
    assert_eq!(c.cmd(&["DEL", "{x}1", "{x}2", "{x}nope"]), Frame::Int(2));
    assert_eq!(c.cmd(&["RENAME", "{x}3", "{x}renamed"]), ok());
    assert_eq!(
        c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        Frame::Int(48)
    );
    let Frame::Array(keys) = c.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "100"]) else {
        panic!("GETKEYSINSLOT")
    };
    assert_eq!(keys.len(), 48);
    assert!(keys.contains(&bulk("{x}renamed")) && !keys.contains(&bulk("{x}3")));
    let Frame::Array(few) = c.cmd(&["CLUSTER", "GETKEYSINSLOT", &other, "3"]) else {
        panic!("GETKEYSINSLOT")
    };
    assert_eq!(few.len(), 3);
    // Expired keys go away from the counts once deleted.
    assert_eq!(c.cmd(&["PEXPIRE", "{x}4", "1"]), Frame::Int(1));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd(&["GET", "{x}4"]), Frame::Null);
    assert_eq!(
        c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        Frame::Int(47)
    );
    // cluster-databases 2: database 1 has counts of its own; database 2 does not exist.
    assert_eq!(c.cmd(&["SELECT", "1"]), ok());
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), Frame::Int(0));
    assert_eq!(c.cmd(&["SET", "{x}db1", "v"]), ok());
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), Frame::Int(1));
    assert_eq!(c.cmd(&["SELECT", "2"]), err("ERR DB index is out of range"));
    assert_eq!(c.cmd(&["FLUSHDB"]), ok());
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), Frame::Int(0));
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    assert_eq!(
        c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        Frame::Int(47)
    );
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), Frame::Int(0));
    assert_eq!(
        c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &other]),
        Frame::Int(0)
    );
    // Only database 0 by default.
    let plain = percore_cluster(&[]);
    assert_eq!(
        plain.conn().cmd(&["SELECT", "1"]),
        err("ERR DB index is out of range")
    );
}

/// `slot-info` aux fields of an RDB file, as `(slot, keys, expires)`, in file order.
fn slot_infos(path: &Path) -> (Vec<(u16, u64, u64)>, u64) {
    use percore_persist::rdb::{LoadOptions, Record, load};
    let data = std::fs::read(path).unwrap();
    let mut infos = Vec::new();
    let mut keys = 0;
    load(&data, &LoadOptions::default(), |rec| {
        match rec {
            Record::Aux { key, value } if key == b"slot-info" => {
                let v = String::from_utf8(value.to_vec()).unwrap();
                let f: Vec<u64> = v.split(',').map(|x| x.parse().unwrap()).collect();
                assert_eq!(f.len(), 3, "{v}");
                infos.push((f[0] as u16, f[1], f[2]));
            }
            Record::Entry { .. } => keys += 1,
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    (infos, keys)
}

#[test]
fn rdb_files_carry_slot_info() {
    let s = percore_cluster(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
    let mut want = std::collections::BTreeMap::<u16, (u64, u64)>::new();
    for i in 0..300 {
        let key = format!("{{t{}}}k{i}", i % 23);
        let ttl = i % 4 == 0;
        if ttl {
            assert_eq!(c.cmd(&["SET", &key, "v", "EX", "1000"]), ok());
        } else {
            assert_eq!(c.cmd(&["SET", &key, "v"]), ok());
        }
        let e = want.entry(slot_of(&key)).or_default();
        e.0 += 1;
        e.1 += u64::from(ttl);
    }
    let dump = s.dir().join("dump.rdb");
    for (method, cmd) in [
        ("sync", &["SAVE"][..]),
        ("forkless", &["BGSAVE"]),
        ("fork", &["BGSAVE"]),
    ] {
        if method == "fork" {
            assert_eq!(
                c.cmd(&["CONFIG", "SET", "default-bgsave-method", "fork"]),
                ok()
            );
        }
        let _ = std::fs::remove_file(&dump);
        let deadline = Instant::now() + Duration::from_secs(20);
        // The previous background save may still be finishing: retry until this one runs.
        while let Frame::Error(e) = c.cmd(cmd) {
            assert!(
                Instant::now() < deadline,
                "{method}: {}",
                String::from_utf8_lossy(&e)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let in_progress = |c: &mut Conn| {
            text(&c.cmd(&["INFO", "persistence"])).contains("rdb_bgsave_in_progress:1")
        };
        while !dump.exists() || in_progress(&mut c) {
            assert!(Instant::now() < deadline, "{method} save did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (infos, keys) = slot_infos(&dump);
        assert_eq!(keys, 300, "{method}");
        let got: std::collections::BTreeMap<u16, (u64, u64)> =
            infos.iter().map(|&(s, k, e)| (s, (k, e))).collect();
        assert_eq!(got.len(), infos.len(), "{method}: a slot listed twice");
        assert_eq!(got, want, "{method}");
    }
    // The file loads back, into percore and into redis-server in cluster mode (which
    // takes the slots it finds keys for).
    let dir = s.dir().to_path_buf();
    let copy = scratch_dir("cluster-rdb");
    std::fs::copy(&dump, copy.join("dump.rdb")).unwrap();
    drop(c);
    drop(s);
    let d = copy.to_str().unwrap().to_owned();
    let again = percore_cluster(&["--dir", &d]);
    let mut c = again.conn();
    assert_eq!(c.cmd(&["DBSIZE"]), Frame::Int(300));
    let (&slot, &(n, _)) = want.iter().next().unwrap();
    assert_eq!(
        c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        Frame::Int(n as i64)
    );
    // Start-up took responsibility for the slots it holds keys for.
    assert_eq!(
        info_field(&mut c, "cluster_slots_assigned"),
        want.len().to_string()
    );
    drop(c);
    drop(again);
    std::fs::remove_file(copy.join("nodes.conf")).unwrap();
    if let Some(r) = Server::redis_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--dir",
        &d,
    ]) {
        let mut rc = r.conn();
        assert_eq!(rc.cmd(&["DBSIZE"]), Frame::Int(300));
        assert_eq!(
            rc.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
            Frame::Int(n as i64)
        );
    }
    let _ = std::fs::remove_dir_all(copy);
    let _ = dir;
}

#[test]
fn redis_cli_works_against_a_node_with_all_slots() {
    if !tool_available("redis-cli") {
        return;
    }
    let s = percore_cluster(&[]);
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), ok());
    let port = s.port().to_string();
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .expect("redis-cli runs")
    };
    for (k, v) in [("foo", "1"), ("bar", "2"), ("{user}a", "3")] {
        let out = cli(&["-c", "SET", k, v]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
        let out = cli(&["-c", "GET", k]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), v);
    }
    let out = cli(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("3 keys | 16384 slots | 0 slaves"),
        "{report}"
    );
    assert!(
        report.contains("[OK] All nodes agree about slots configuration."),
        "{report}"
    );
    assert!(report.contains("[OK] All 16384 slots covered."), "{report}");
}
