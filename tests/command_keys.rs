//! COMMAND GETKEYS / GETKEYSANDFLAGS and COMMAND INFO's `movablekeys` flag and key specs
//! for the commands whose keys are not at fixed positions (numkeys forms, SORT's STORE),
//! compared byte for byte with a real `redis-server` 7.0.
//!
//! Without `redis-server` on the PATH the test prints a notice and passes; with
//! `PERCORE_REQUIRE_REDIS=1` it fails instead.

mod common;

use common::{Server, show};
use percore_net::resp::Frame;

const GETKEYS: &[&[&str]] = &[
    &["zunionstore", "d", "2", "a", "b"],
    &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
    &["zinterstore", "d", "1", "a"],
    &["zdiffstore", "d", "2", "a", "b"],
    &["zunionstore", "d", "0", "a"],
    &["zunionstore", "d", "3", "a", "b"],
    &["zunionstore", "d", "x", "a", "b"],
    &["zunionstore", "d", "+2", "a", "b"],
    &["zunionstore", "d", "-1", "a", "b"],
    &["zunion", "2", "a", "b", "WITHSCORES"],
    &["zinter", "1", "a"],
    &["zdiff", "3", "a", "b"],
    &["zintercard", "2", "a", "b", "LIMIT", "1"],
    &["sintercard", "2", "a", "b"],
    &["sintercard", "02", "a", "b"],
    &["lmpop", "2", "a", "b", "LEFT"],
    &["lmpop", "0", "a", "LEFT"],
    &["zmpop", "1", "a", "MIN", "COUNT", "2"],
    &["sort", "k"],
    &["sort", "k", "BY", "w_*", "STORE", "d", "GET", "#"],
    &["sort", "k", "LIMIT", "0", "1", "STORE", "d", "store", "e"],
    &["sort", "k", "STORE"],
    &["sort", "k", "GET", "store", "BY", "store"],
    &["sort", "k", "LIMIT", "store", "x", "STORE", "d"],
    &["sort_ro", "k", "BY", "w_*", "GET", "#"],
    &["sort_ro", "k", "STORE", "d"],
    &["get", "a"],
    &["mget", "a", "b"],
    &["time", "x"],
    &["nosuchcommand", "a"],
];

const MOVABLE: &[&str] = &[
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zunion",
    "zinter",
    "zdiff",
    "zintercard",
    "sintercard",
    "lmpop",
    "zmpop",
    "sort",
    "sort_ro",
];

/// COMMAND INFO's name, arity, flags, first/last/step and key specs (ACL categories and
/// tips left out: percore derives its categories from the command's group).
fn info_parts(c: &mut common::Conn, name: &str) -> Vec<Frame> {
    let Frame::Array(mut outer) = c.cmd(&["COMMAND", "INFO", name]) else {
        panic!("COMMAND INFO {name}")
    };
    let Frame::Array(entry) = outer.remove(0) else {
        panic!("COMMAND INFO {name}: no entry")
    };
    let mut keep: Vec<Frame> = entry[..6].to_vec();
    keep.push(entry[8].clone());
    keep
}

#[test]
fn getkeys_and_key_specs_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let (mut r, mut p) = (redis.conn(), percore.conn());
    for resp3 in [false, true] {
        if resp3 {
            r.cmd(&["HELLO", "3"]);
            p.cmd(&["HELLO", "3"]);
        }
        for args in GETKEYS {
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                let mut cmd = vec!["COMMAND", sub];
                cmd.extend_from_slice(args);
                assert_eq!(
                    show(&p.cmd_raw(&cmd)),
                    show(&r.cmd_raw(&cmd)),
                    "{cmd:?} resp3 {resp3}"
                );
            }
        }
        for name in MOVABLE {
            assert_eq!(
                info_parts(&mut p, name),
                info_parts(&mut r, name),
                "COMMAND INFO {name} resp3 {resp3}"
            );
        }
    }
    // Every command percore knows carries `movablekeys` exactly when redis-server does.
    let Frame::Array(names) = p.cmd(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST")
    };
    for n in names {
        let Frame::Bulk(n) = n else { continue };
        let name = String::from_utf8(n).expect("ASCII names");
        if name.contains('|') {
            continue;
        }
        let flags = |c: &mut common::Conn| {
            let Frame::Array(mut outer) = c.cmd(&["COMMAND", "INFO", &name]) else {
                panic!("COMMAND INFO {name}")
            };
            match outer.remove(0) {
                Frame::Array(e) => Some(e[2].clone()),
                _ => None,
            }
        };
        let (mine, theirs) = (flags(&mut p), flags(&mut r));
        let movable = |f: &Option<Frame>| {
            matches!(f, Some(Frame::Set(v) | Frame::Array(v))
                if v.contains(&Frame::Simple(b"movablekeys".to_vec())))
        };
        if theirs.is_some() {
            assert_eq!(movable(&mine), movable(&theirs), "movablekeys of {name}");
        }
    }
}

/// COMMAND INFO's flags of every command both servers know, as sets (Redis lists them in
/// its table's order): `no_mandatory_keys` on EVAL/FCALL and their variants, and no
/// `may_replicate` (Redis hides it).
#[test]
fn command_info_flags_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&[]);
    let (mut r, mut p) = (redis.conn(), percore.conn());
    let Frame::Array(names) = p.cmd(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST")
    };
    let flags = |c: &mut common::Conn, name: &str| -> Option<Vec<Frame>> {
        let Frame::Array(mut outer) = c.cmd(&["COMMAND", "INFO", name]) else {
            panic!("COMMAND INFO {name}")
        };
        match outer.remove(0) {
            Frame::Array(e) => match &e[2] {
                Frame::Set(v) | Frame::Array(v) => {
                    let mut v = v.clone();
                    v.sort_by_key(|f| format!("{f:?}"));
                    Some(v)
                }
                other => panic!("flags of {name}: {other:?}"),
            },
            _ => None,
        }
    };
    let mut diffs = Vec::new();
    for n in names {
        let Frame::Bulk(n) = n else { continue };
        let name = String::from_utf8(n).expect("ASCII names");
        if name.contains('|') {
            continue;
        }
        let theirs = flags(&mut r, &name);
        if theirs.is_some() && flags(&mut p, &name) != theirs {
            diffs.push(format!(
                "{name}: percore {:?}, redis {theirs:?}",
                flags(&mut p, &name)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
