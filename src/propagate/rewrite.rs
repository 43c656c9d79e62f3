//! How a command that changed the dataset is propagated: as it came, or rewritten as
//! Redis 7.0 rewrites it (`rewriteClientCommandVector`/`alsoPropagate` in its commands),
//! so that replaying the stream gives the same data whatever the time or the random
//! choices: relative expiry times become absolute milliseconds, random pops the members
//! they took, float increments their result, blocking pops their non-blocking form.
//!
//! The rewrite reads what the command left (the key's expiry time, its existence) and its
//! reply (the members SPOP took, INCRBYFLOAT's result); handlers know nothing of it.

use crate::commands::{Command, eq_ic};
use crate::shard::ShardData;
use percore_net::resp::{Frame, decode_frame};

/// Members per SREM when a SPOP with a count is propagated (Redis's `SPOP_MOVE_STRATEGY`
/// batches of 1024).
pub const SPOP_PROPAGATE_BATCH_MEMBERS: usize = 1024;

/// Commands propagated by their effects only (each write a script makes is logged as it
/// runs): never themselves.
pub fn by_effects(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Writes Redis propagates even when they changed nothing (`server.dirty++` regardless).
pub fn always_propagated(cmd: &Command) -> bool {
    matches!(cmd.name, "flushall" | "flushdb" | "swapdb")
}

fn ms_bytes(ms: i64) -> Vec<u8> {
    ms.to_string().into_bytes()
}

/// The key's absolute expiry time after the command, if the key is alive with one.
fn expire_of(data: &mut ShardData, db: usize, key: &[u8]) -> Option<i64> {
    let now = data.now_ms;
    data.keyspace.db_mut(db).expire_at(key, now)
}

fn alive(data: &mut ShardData, db: usize, key: &[u8]) -> bool {
    let now = data.now_ms;
    data.keyspace.db_mut(db).contains(key, now)
}

/// The bulk strings of a reply, flattened (arrays and sets of bulks, a single bulk).
fn bulks(reply: &[u8]) -> Vec<Vec<u8>> {
    fn walk(f: Frame, out: &mut Vec<Vec<u8>>) {
        match f {
            Frame::Bulk(b) | Frame::Simple(b) => out.push(b),
            Frame::Array(v) | Frame::Set(v) => v.into_iter().for_each(|f| walk(f, out)),
            Frame::Int(n) => out.push(n.to_string().into_bytes()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(Some((f, _))) = decode_frame(reply) {
        walk(f, &mut out);
    }
    out
}

/// A reply's top-level frame.
fn frame(reply: &[u8]) -> Option<Frame> {
    decode_frame(reply).ok().flatten().map(|(f, _)| f)
}

/// Logs `cmd`'s effect (it changed the dataset, or is always propagated).
pub fn log(data: &mut ShardData, cmd: &'static Command, argv: &[&[u8]], db: usize, reply: &[u8]) {
    if reply.first() == Some(&b'-') {
        // A failed command: Redis propagates nothing for it.
        return;
    }
    let own = |v: &[&[u8]]| -> Vec<Vec<u8>> { v.iter().map(|a| a.to_vec()).collect() };
    let rewritten: Option<Vec<Vec<u8>>> = match cmd.name {
        "set" => set(data, argv),
        "setex" | "psetex" if argv.len() == 4 => Some(match expire_of(data, db, argv[1]) {
            Some(at) => own(&[b"SET", argv[1], argv[3], b"PXAT", &ms_bytes(at)]),
            None => own(&[b"DEL", argv[1]]),
        }),
        "getex" => getex(data, argv, db),
        "getdel" => Some(own(&[b"DEL", argv[1]])),
        "expire" | "pexpire" | "expireat" | "pexpireat" if argv.len() >= 3 => {
            Some(match expire_of(data, db, argv[1]) {
                Some(at) => {
                    let mut v = own(&[b"PEXPIREAT", argv[1], &ms_bytes(at)]);
                    v.extend(argv[3..].iter().map(|a| a.to_vec()));
                    v
                }
                // A time in the past deleted the key.
                None => own(&[b"DEL", argv[1]]),
            })
        }
        "incrbyfloat" => match bulks(reply).pop() {
            Some(v) => Some(own(&[b"SET", argv[1], &v, b"KEEPTTL"])),
            None => return,
        },
        "hincrbyfloat" if argv.len() == 4 => match bulks(reply).pop() {
            Some(v) => Some(own(&[b"HSET", argv[1], argv[2], &v])),
            None => return,
        },
        "spop" => {
            spop(data, argv, db, reply);
            return;
        }
        "restore" => restore(data, argv, db),
        "blpop" | "brpop" => {
            let b = bulks(reply);
            let Some(key) = b.first() else { return };
            let name: &[u8] = if cmd.name == "blpop" {
                b"LPOP"
            } else {
                b"RPOP"
            };
            Some(own(&[name, key]))
        }
        "blmove" if argv.len() == 6 => Some(own(&[b"LMOVE", argv[1], argv[2], argv[3], argv[4]])),
        "brpoplpush" if argv.len() == 4 => Some(own(&[b"RPOPLPUSH", argv[1], argv[2]])),
        "bzpopmin" | "bzpopmax" => {
            let b = bulks(reply);
            let Some(key) = b.first() else { return };
            let name: &[u8] = if cmd.name == "bzpopmin" {
                b"ZPOPMIN"
            } else {
                b"ZPOPMAX"
            };
            Some(own(&[name, key]))
        }
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => mpop(cmd, argv, reply),
        "xreadgroup" => Some(without_block(argv)),
        "xadd" | "xtrim" => xadd(data, cmd, argv, db, reply),
        _ => None,
    };
    match rewritten {
        Some(v) => data.effects.command_owned(db, &v),
        None => data.effects.command(db, argv),
    }
}

/// SET with EX/PX/EXAT/PXAT: `SET key value PXAT ms` (7.0's `setGenericCommand`
/// rewrites every form with an expiry, PXAT too, dropping NX/XX/GET). The time comes
/// from the arguments, not the key: a time already past leaves an expired key, which
/// Redis 7.0 propagates as this SET (a DEL follows when the key is next touched; reading
/// the key here expired it at once and logged the SET as sent, then DEL).
fn set(data: &ShardData, argv: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
    let at = crate::commands::strings::set_expire_at(argv, data.now_ms)?;
    Some(vec![
        b"SET".to_vec(),
        argv[1].to_vec(),
        argv[2].to_vec(),
        b"PXAT".to_vec(),
        ms_bytes(at),
    ])
}

/// GETEX with an expiry: PEXPIREAT (or DEL when it was in the past); PERSIST as is.
fn getex(data: &mut ShardData, argv: &[&[u8]], db: usize) -> Option<Vec<Vec<u8>>> {
    let key = argv.get(1)?;
    if argv.iter().skip(2).any(|a| eq_ic(a, "PERSIST")) {
        return Some(vec![b"PERSIST".to_vec(), key.to_vec()]);
    }
    Some(match expire_of(data, db, key) {
        Some(at) => vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms_bytes(at)],
        None => vec![b"DEL".to_vec(), key.to_vec()],
    })
}

/// SPOP: the members it took as SREM (in batches), or DEL (UNLINK with
/// `lazyfree-lazy-server-del yes`) when its count emptied the set.
fn spop(data: &mut ShardData, argv: &[&[u8]], db: usize, reply: &[u8]) {
    let key = argv[1];
    let members = bulks(reply);
    if members.is_empty() {
        return;
    }
    if argv.len() > 2 && !alive(data, db, key) {
        // As Valkey (and Redis 7.2): UNLINK under `lazyfree-lazy-server-del yes`.
        let del: &[u8] = if data.cfg.lazyfree_lazy_server_del() {
            b"UNLINK"
        } else {
            b"DEL"
        };
        data.effects.command(db, &[del, key]);
        return;
    }
    for chunk in members.chunks(SPOP_PROPAGATE_BATCH_MEMBERS) {
        let mut v: Vec<&[u8]> = vec![b"SREM", key];
        v.extend(chunk.iter().map(Vec::as_slice));
        data.effects.command(db, &v);
    }
}

/// RESTORE with a relative TTL: the absolute time and ABSTTL (7.0's `restoreCommand`).
fn restore(data: &mut ShardData, argv: &[&[u8]], db: usize) -> Option<Vec<Vec<u8>>> {
    if argv.len() < 4 || argv[2] == b"0" || argv.iter().skip(4).any(|a| eq_ic(a, "ABSTTL")) {
        return None;
    }
    let at = expire_of(data, db, argv[1])?;
    let mut v: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    v[2] = ms_bytes(at);
    v.push(b"ABSTTL".to_vec());
    Some(v)
}

/// LMPOP/BLMPOP as LPOP/RPOP key count, ZMPOP/BZMPOP as ZPOPMIN/ZPOPMAX key count
/// (7.0's `listPopRangeAndReplyWithKey`, `genericZpopCommand`).
fn mpop(cmd: &Command, argv: &[&[u8]], reply: &[u8]) -> Option<Vec<Vec<u8>>> {
    let Some(Frame::Array(top)) = frame(reply) else {
        return None;
    };
    let (Some(Frame::Bulk(key)), Some(Frame::Array(items))) = (top.first(), top.get(1)) else {
        return None;
    };
    let list = cmd.name.ends_with("lmpop");
    let name: &[u8] = if list {
        if argv.iter().any(|a| eq_ic(a, "LEFT")) {
            b"LPOP"
        } else {
            b"RPOP"
        }
    } else if argv.iter().any(|a| eq_ic(a, "MIN")) {
        b"ZPOPMIN"
    } else {
        b"ZPOPMAX"
    };
    Some(vec![
        name.to_vec(),
        key.clone(),
        items.len().to_string().into_bytes(),
    ])
}

/// XREADGROUP without its BLOCK option (a replica or a loading server never blocks).
fn without_block(argv: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut v = Vec::with_capacity(argv.len());
    let mut i = 0;
    while i < argv.len() {
        if eq_ic(argv[i], "BLOCK") && i + 1 < argv.len() {
            i += 2;
            continue;
        }
        if eq_ic(argv[i], "STREAMS") {
            v.extend(argv[i..].iter().map(|a| a.to_vec()));
            break;
        }
        v.push(argv[i].to_vec());
        i += 1;
    }
    v
}

/// XADD with a generated ID: the ID it got; XADD/XTRIM with approximate trimming (`~`):
/// exact trimming to what the stream holds now (7.0's `streamRewriteApproxSpecifier` and
/// `streamRewriteTrimArgument`), so a replay trims the same entries whatever its nodes.
fn xadd(
    data: &mut ShardData,
    cmd: &Command,
    argv: &[&[u8]],
    db: usize,
    reply: &[u8],
) -> Option<Vec<Vec<u8>>> {
    let mut v: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let mut i = 2;
    let mut trim: Option<(bool, usize)> = None;
    while i < v.len() {
        if eq_ic(&v[i], "NOMKSTREAM") {
            i += 1;
        } else if eq_ic(&v[i], "MAXLEN") || eq_ic(&v[i], "MINID") {
            let maxlen = eq_ic(&v[i], "MAXLEN");
            i += 1;
            if v.get(i).is_some_and(|a| a == b"~") {
                v[i] = b"=".to_vec();
                trim = Some((maxlen, i + 1));
                i += 1;
            } else if v.get(i).is_some_and(|a| a == b"=") {
                i += 1;
            }
            i += 1;
        } else if eq_ic(&v[i], "LIMIT") {
            i += 2;
        } else {
            break;
        }
    }
    if cmd.name == "xadd" && i < v.len() && v[i].ends_with(b"*") {
        v[i] = bulks(reply).pop()?;
    }
    if let Some((maxlen, at)) = trim {
        let now = data.now_ms;
        let Some(percore_engine::value::Value::Stream(s)) =
            data.keyspace.db_mut(db).get(argv[1], now)
        else {
            return Some(v);
        };
        let exact = if maxlen {
            s.len().to_string()
        } else {
            s.meta().first_id.to_string()
        };
        if at < v.len() {
            v[at] = exact.into_bytes();
        }
        // LIMIT applies to approximate trimming only.
        if let Some(p) = v.iter().position(|a| eq_ic(a, "LIMIT")) {
            v.drain(p..p + 2);
        }
    }
    Some(v)
}
