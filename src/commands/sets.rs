//! Set commands (Redis 7.0 replies and error texts).

#![allow(
    clippy::many_single_char_names,
    clippy::single_match_else,
    reason = "handlers follow Redis's C (w = reply, z/s = value, r = range); scores compare exactly as Redis"
)]

use super::keyspace::{hop, reply};
use super::multikey::{self, Keys, Limits, MultiKey, Outcome, Src, encoded};
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::config::Config;
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_engine::glob::string_match;
use percore_engine::hash::random_below;
use percore_engine::number::{I64_MAX_DECIMAL_BYTES, format_i64};
use percore_engine::sets::{Member, SetLimits, SetValue};
use percore_engine::value::Value;
use percore_net::resp::{Protocol, ReplyWriter};

/// The set encoding limits of the server's configuration.
pub fn set_limits(cfg: &Config) -> SetLimits {
    SetLimits {
        max_intset_entries: cfg.set_max_intset_entries,
        max_listpack_entries: cfg.set_max_listpack_entries,
        max_listpack_value: cfg.set_max_listpack_value,
    }
}

/// Writes a member as a bulk string.
#[inline]
pub fn write_member(w: &mut ReplyWriter, m: Member<'_>) {
    match m {
        Member::Int(i) => w.bulk_int(i),
        Member::Bytes(b) => w.bulk(b),
    }
}

/// A set key for reading, counting the hit or miss. `Err` = wrong type. As Redis's dict
/// lookups and random picks do, the read takes one step of the set's incremental rehash
/// (the only change it makes: the members stay where they are).
fn read_set<'d>(ctx: &'d mut Ctx, key: &[u8]) -> Result<Option<&'d SetValue>, ()> {
    let now = ctx.shard.now_ms;
    let sh = &mut *ctx.shard;
    match sh.keyspace.db_mut(ctx.db).get_for_layout(key, now) {
        Some(v) => {
            sh.stats.keyspace_hits += 1;
            let s = v.as_set_mut().ok_or(())?;
            s.rehash_step();
            Ok(Some(s))
        }
        None => {
            sh.stats.keyspace_misses += 1;
            Ok(None)
        }
    }
}

/// Whether `key` holds something other than a set.
fn wrong_type(ctx: &mut Ctx, key: &[u8]) -> bool {
    let now = ctx.shard.now_ms;
    ctx.shard
        .keyspace
        .db_mut(ctx.db)
        .lookup_entry(key, now)
        .is_some_and(|e| e.value.as_set().is_none())
}

/// Deletes `key` when its set became empty, with its "del" event.
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if db
        .get(key, now)
        .and_then(Value::as_set)
        .is_some_and(SetValue::is_empty)
    {
        db.remove(key, now);
        ctx.notify(class::GENERIC, "del", key);
    }
}

pub fn sadd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let limits = set_limits(&ctx.shard.cfg);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if let Some(v) = db.get_mut(argv[1], now) {
        let Value::Set(set) = v else {
            return w.error(errors::WRONGTYPE);
        };
        set.maybe_convert(argv.len() - 2, &limits);
        let added = argv[2..].iter().filter(|m| set.add(m, &limits)).count();
        w.int(added as i64);
        if added > 0 {
            ctx.notify(class::SET, "sadd", argv[1]);
        }
        return;
    }
    let mut set = SetValue::new_for(argv[2], argv.len() - 2, &limits);
    let added = argv[2..].iter().filter(|m| set.add(m, &limits)).count();
    db.set(argv[1], Value::Set(Box::new(set)), SetExpire::Clear, now);
    w.int(added as i64);
    ctx.notify(class::SET, "sadd", argv[1]);
}

pub fn srem(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let removed = match db.get_mut(argv[1], now) {
        Some(Value::Set(s)) => argv[2..].iter().filter(|m| s.remove(m)).count(),
        Some(_) => return w.error(errors::WRONGTYPE),
        None => 0,
    };
    if removed > 0 {
        ctx.notify(class::SET, "srem", argv[1]);
    }
    drop_if_empty(ctx, argv[1]);
    w.int(removed as i64);
}

pub fn sismember(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_set(ctx, argv[1]) {
        Ok(s) => w.int(i64::from(s.is_some_and(|s| s.contains(argv[2])))),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn smismember(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_set(ctx, argv[1]) {
        Ok(s) => {
            w.array(argv.len() - 2);
            for m in &argv[2..] {
                w.int(i64::from(s.is_some_and(|s| s.contains(m))));
            }
        }
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn scard(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_set(ctx, argv[1]) {
        Ok(s) => w.int(s.map_or(0, SetValue::len) as i64),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// Writes a whole set as a RESP3 set (RESP2 array).
fn write_set(w: &mut ReplyWriter, s: &SetValue) {
    w.set(s.len());
    s.for_each(|m| write_member(w, m));
}

pub fn smembers(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_set(ctx, argv[1]) {
        Ok(Some(s)) => write_set(w, s),
        Ok(None) => w.set(0),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// SRANDMEMBER with a negative count may repeat members; with a positive one it
/// returns distinct members, all of them when the count reaches the size.
pub fn srandmember(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() > 3 {
        return w.error(errors::SYNTAX);
    }
    let count = if argv.len() == 3 {
        match parse_i64(argv[2]) {
            Some(c) if c != i64::MIN => Some(c),
            Some(_) => {
                return w.error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                );
            }
            None => return w.error(errors::NOT_INTEGER),
        }
    } else {
        None
    };
    let mut rng = ctx.shard.rng;
    let Ok(s) = read_set(ctx, argv[1]) else {
        return w.error(errors::WRONGTYPE);
    };
    match (count, s) {
        (None, None) => w.null(),
        (None, Some(s)) => match s.random(&mut rng) {
            Some(m) => write_member(w, m),
            None => w.null(),
        },
        (Some(_), None) | (Some(0), _) => w.array(0),
        (Some(c), Some(s)) if c < 0 => {
            let n = c.unsigned_abs() as usize;
            w.array(n);
            for _ in 0..n {
                if let Some(m) = s.random(&mut rng) {
                    write_member(w, m);
                }
            }
        }
        (Some(c), Some(s)) => {
            let n = (c as usize).min(s.len());
            w.array(n);
            for i in distinct_indices(&mut rng, s.len(), n) {
                write_member(w, s.member_at(i));
            }
        }
    }
    ctx.shard.rng = rng;
}

/// `n` distinct random positions below `len`, in random order (a partial shuffle when
/// `n` is a large share of `len`, else rejection sampling).
fn distinct_indices(rng: &mut u64, len: usize, n: usize) -> Vec<usize> {
    if n * 3 >= len {
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + random_below(rng, len - i);
            all.swap(i, j);
        }
        all.truncate(n);
        return all;
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let i = random_below(rng, len);
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

pub fn spop(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() > 3 {
        return w.error(errors::SYNTAX);
    }
    let count = if argv.len() == 3 {
        match parse_i64(argv[2]) {
            Some(c) if c >= 0 => Some(c as u64),
            _ => return w.error(MUST_BE_POSITIVE),
        }
    } else {
        None
    };
    let now = ctx.shard.now_ms;
    let mut rng = ctx.shard.rng;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let set = match db.get_mut(argv[1], now) {
        Some(Value::Set(s)) => s,
        Some(_) => return w.error(errors::WRONGTYPE),
        None => {
            return if count.is_some() { w.set(0) } else { w.null() };
        }
    };
    match count {
        None => match set.pop_random(&mut rng) {
            Some(m) => w.bulk(&m),
            None => w.null(),
        },
        // Redis answers SPOP key 0 at once, changing and reporting nothing.
        Some(0) => {
            w.set(0);
            return;
        }
        Some(c) => {
            let n = (c.min(set.len() as u64)) as usize;
            w.set(n);
            for _ in 0..n {
                if let Some(m) = set.pop_random(&mut rng) {
                    w.bulk(&m);
                }
            }
        }
    }
    let emptied = set.is_empty();
    if emptied {
        db.remove(argv[1], now);
    }
    ctx.shard.rng = rng;
    ctx.notify(class::SET, "spop", argv[1]);
    if emptied {
        ctx.notify(class::GENERIC, "del", argv[1]);
    }
}

/// `getPositiveLongFromObjectOrReply`'s text, for a negative or non-integer count.
pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";

/// SSCAN, ZSCAN and HSCAN up to their scan loop, as Redis: the cursor (`ERR invalid cursor`
/// before the key is looked up), the value `pick` reads (WRONGTYPE, or the empty scan when
/// the key is missing; these two replies are written here), then MATCH and COUNT.
pub fn scan_start<'c, T: ?Sized>(
    ctx: &'c mut Ctx,
    argv: &[&'c [u8]],
    w: &mut ReplyWriter,
    pick: fn(&Value) -> Option<&T>,
    only_keys_word: Option<&str>,
) -> Option<(u64, super::keyspace::ScanOpts<'c>, &'c T)> {
    let Some(cursor) = super::keyspace::parse_cursor(argv[2]) else {
        w.error("ERR invalid cursor");
        return None;
    };
    let now = ctx.shard.now_ms;
    let sh = &mut *ctx.shard;
    let value = sh.keyspace.db_mut(ctx.db).get(argv[1], now);
    if value.is_some() {
        sh.stats.keyspace_hits += 1;
    } else {
        sh.stats.keyspace_misses += 1;
    }
    let Some(value) = value else {
        write_empty_scan(w);
        return None;
    };
    let Some(value) = pick(value) else {
        w.error(errors::WRONGTYPE);
        return None;
    };
    match super::keyspace::parse_scan_opts(&argv[3..], only_keys_word) {
        Ok(o) if o.type_name.is_none() => Some((cursor, o, value)),
        Ok(_) => {
            w.error(errors::SYNTAX);
            None
        }
        Err(e) => {
            w.error(e);
            None
        }
    }
}

/// The scan loop of SSCAN, ZSCAN and HSCAN: `step(cursor, &mut seen)` runs one step of the
/// value's scan (counting what it visits in `seen`) until the cursor ends or COUNT members
/// were seen (Redis visits COUNT buckets, at most 10 × COUNT; we stop at COUNT members).
pub fn scan_pages(
    mut cursor: u64,
    count: usize,
    mut step: impl FnMut(u64, &mut usize) -> u64,
) -> u64 {
    let mut seen = 0;
    loop {
        cursor = step(cursor, &mut seen);
        if cursor == 0 || seen >= count {
            return cursor;
        }
    }
}

pub fn sscan(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some((cursor, o, s)) = scan_start(ctx, argv, w, Value::as_set, None) else {
        return;
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = scan_pages(cursor, o.count, |c, seen| {
        s.scan(c, |m| {
            *seen += 1;
            let mut buf = [0; I64_MAX_DECIMAL_BYTES];
            let bytes = match m {
                Member::Int(i) => format_i64(i, &mut buf),
                Member::Bytes(b) => b,
            };
            if o.pattern.is_none_or(|p| string_match(p, bytes, false)) {
                found.push(bytes.to_vec());
            }
        })
    });
    w.array(2);
    w.bulk(next.to_string().as_bytes());
    w.array(found.len());
    for m in &found {
        w.bulk(m);
    }
}

/// The reply of a SCAN-family command on a missing key.
pub fn write_empty_scan(w: &mut ReplyWriter) {
    w.array(2);
    w.bulk(b"0");
    w.array(0);
}

// ---------------------------------------------------------------------------------------
// SMOVE

/// SMOVE src dst member. Runs on the destination's shard first (to check its type),
/// then on the source's, then adds at the destination: not atomic across shards.
pub fn smove(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let me = ctx.shard.id;
    let (src_owner, dst_owner) = (ctx.shard.owner(argv[1]), ctx.shard.owner(argv[2]));
    if src_owner == me && dst_owner == me {
        return smove_local(ctx, argv);
    }
    if dst_owner != me {
        return hop(dst_owner, smove, argv.iter().copied());
    }
    let dst_wrong: &[u8] = if wrong_type(ctx, argv[2]) { b"1" } else { b"0" };
    hop(
        src_owner,
        smove_take,
        [argv[0], argv[1], argv[2], argv[3], dst_wrong],
    )
}

fn smove_local(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let limits = set_limits(&ctx.shard.cfg);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let src_kind = db.get(argv[1], now).map(|v| v.as_set().is_some());
    let dst_kind = db.get(argv[2], now).map(|v| v.as_set().is_some());
    match (src_kind, dst_kind) {
        (None, _) => return reply(ctx, |w| w.int(0)),
        (Some(false), _) | (_, Some(false)) => return reply(ctx, |w| w.error(errors::WRONGTYPE)),
        _ => {}
    }
    if argv[1] == argv[2] {
        let is = db
            .get(argv[1], now)
            .and_then(Value::as_set)
            .is_some_and(|s| s.contains(argv[3]));
        return reply(ctx, |w| w.int(i64::from(is)));
    }
    let removed = db
        .get_mut(argv[1], now)
        .and_then(Value::as_set_mut)
        .is_some_and(|s| s.remove(argv[3]));
    if !removed {
        return reply(ctx, |w| w.int(0));
    }
    ctx.notify(class::SET, "srem", argv[1]);
    touch_watched(ctx, argv[1]);
    drop_if_empty(ctx, argv[1]);
    add_member(ctx, argv[2], argv[3], &limits);
    reply(ctx, |w| w.int(1))
}

/// Redis's `signalModifiedKey` for SMOVE, which touches its watched keys itself (see
/// `atomic::watch::after_write`): the source when the member left it, the destination
/// only when the member was added to it.
fn touch_watched(ctx: &mut Ctx, key: &[u8]) {
    if !ctx.shard.watches.is_empty() {
        crate::atomic::watch::Registry::touch(ctx.shard, ctx.db, key);
    }
}

/// Adds `m` to the set at `key`, creating it (the caller checked the type), with the
/// "sadd" event when it was not there.
fn add_member(ctx: &mut Ctx, key: &[u8], m: &[u8], limits: &SetLimits) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let added = match db.get_mut(key, now) {
        Some(Value::Set(s)) => s.add(m, limits),
        Some(_) => false,
        None => {
            let mut s = SetValue::new_for(m, 1, limits);
            s.add(m, limits);
            db.set(key, Value::Set(Box::new(s)), SetExpire::Clear, now);
            true
        }
    };
    if added {
        ctx.notify(class::SET, "sadd", key);
        touch_watched(ctx, key);
    }
}

/// SMOVE on the source's shard: `[name, src, dst, member, dst_wrong]`.
fn smove_take(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match db.get(argv[1], now).map(|v| v.as_set().is_some()) {
        None => return reply(ctx, |w| w.int(0)),
        Some(false) => return reply(ctx, |w| w.error(errors::WRONGTYPE)),
        Some(true) => {}
    }
    if argv[4] == b"1" {
        return reply(ctx, |w| w.error(errors::WRONGTYPE));
    }
    let removed = db
        .get_mut(argv[1], now)
        .and_then(Value::as_set_mut)
        .is_some_and(|s| s.remove(argv[3]));
    if !removed {
        return reply(ctx, |w| w.int(0));
    }
    ctx.notify(class::SET, "srem", argv[1]);
    touch_watched(ctx, argv[1]);
    drop_if_empty(ctx, argv[1]);
    let dst_owner = ctx.shard.owner(argv[2]);
    hop(dst_owner, smove_put, [argv[0], argv[2], argv[3]])
}

/// SMOVE on the destination's shard: `[name, dst, member]`.
fn smove_put(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let limits = set_limits(&ctx.shard.cfg);
    add_member(ctx, argv[1], argv[2], &limits);
    reply(ctx, |w| w.int(1))
}

// ---------------------------------------------------------------------------------------
// SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

/// The sources as sets; `Err` when one holds another type.
fn as_sets<'a>(srcs: &[Src<'a>]) -> Result<Vec<Option<&'a SetValue>>, ()> {
    srcs.iter()
        .map(|s| match s {
            Src::Missing => Ok(None),
            Src::Set(v) => Ok(Some(*v)),
            Src::WrongType | Src::ZSet(_) => Err(()),
        })
        .collect()
}

/// Computes the result's members (with `limit` for SINTERCARD: stop after that many,
/// 0 = no limit).
fn set_op(op: SetOp, sets: &[Option<&SetValue>], limit: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match op {
        SetOp::Inter => {
            if sets.iter().any(|s| s.is_none_or(SetValue::is_empty)) {
                return out;
            }
            let mut sorted: Vec<&SetValue> = sets.iter().flatten().copied().collect();
            sorted.sort_by_key(|s| s.len());
            let (first, rest) = sorted.split_first().expect("at least one key");
            let mut buf = [0; I64_MAX_DECIMAL_BYTES];
            first.for_each(|m| {
                if limit != 0 && out.len() >= limit {
                    return;
                }
                let bytes = match m {
                    Member::Int(i) => format_i64(i, &mut buf),
                    Member::Bytes(b) => b,
                };
                if rest.iter().all(|s| s.contains(bytes)) {
                    out.push(bytes.to_vec());
                }
            });
        }
        SetOp::Union => {
            let mut seen = std::collections::HashSet::new();
            for s in sets.iter().flatten() {
                s.for_each(|m| {
                    let v = m.to_vec();
                    if seen.insert(v.clone()) {
                        out.push(v);
                    }
                });
            }
        }
        SetOp::Diff => {
            let Some(Some(first)) = sets.first() else {
                return out;
            };
            let mut buf = [0; I64_MAX_DECIMAL_BYTES];
            first.for_each(|m| {
                let bytes = match m {
                    Member::Int(i) => format_i64(i, &mut buf),
                    Member::Bytes(b) => b,
                };
                if !sets[1..].iter().flatten().any(|s| s.contains(bytes)) {
                    out.push(bytes.to_vec());
                }
            });
        }
    }
    out
}

fn set_op_compute(
    op: SetOp,
    store: bool,
    proto: Protocol,
    srcs: &[Src<'_>],
    limits: &Limits,
) -> Outcome {
    let Ok(sets) = as_sets(srcs) else {
        return Outcome::Reply(encoded(proto, |w| w.error(errors::WRONGTYPE)));
    };
    let members = set_op(op, &sets, 0);
    if store {
        let n = members.len() as i64;
        let value = (!members.is_empty()).then(|| {
            Value::Set(Box::new(SetValue::from_members(
                members.iter().map(Vec::as_slice),
                &limits.set,
            )))
        });
        return Outcome::Store {
            value,
            reply: encoded(proto, |w| w.int(n)),
        };
    }
    Outcome::Reply(encoded(proto, |w| {
        w.set(members.len());
        for m in &members {
            w.bulk(m);
        }
    }))
}

macro_rules! set_op_command {
    ($ty:ident, $op:expr, $store:expr) => {
        pub struct $ty;
        impl MultiKey for $ty {
            fn keys(argv: &[&[u8]]) -> Result<Keys, String> {
                let first = if $store { 2 } else { 1 };
                Ok(Keys {
                    sources: (first..argv.len()).collect(),
                    dest: $store.then_some(1),
                })
            }
            fn compute(
                proto: Protocol,
                _argv: &[&[u8]],
                srcs: &[Src<'_>],
                limits: &Limits,
            ) -> Outcome {
                set_op_compute($op, $store, proto, srcs, limits)
            }
        }
    };
}

set_op_command!(SInter, SetOp::Inter, false);
set_op_command!(SUnion, SetOp::Union, false);
set_op_command!(SDiff, SetOp::Diff, false);
set_op_command!(SInterStore, SetOp::Inter, true);
set_op_command!(SUnionStore, SetOp::Union, true);
set_op_command!(SDiffStore, SetOp::Diff, true);

pub fn sinter(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SInter>(ctx, argv)
}
pub fn sunion(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SUnion>(ctx, argv)
}
pub fn sdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SDiff>(ctx, argv)
}
pub fn sinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SInterStore>(ctx, argv)
}
pub fn sunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SUnionStore>(ctx, argv)
}
pub fn sdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SDiffStore>(ctx, argv)
}

/// `numkeys` of SINTERCARD/ZINTERCARD/ZUNION...: the key count and the positions after
/// it, with Redis's error texts.
pub fn parse_numkeys(argv: &[&[u8]], at: usize) -> Result<usize, String> {
    let n = parse_i64(argv[at]).unwrap_or(0);
    if n <= 0 {
        return Err("ERR numkeys should be greater than 0".to_string());
    }
    let n = n as usize;
    if n > argv.len() - at - 1 {
        return Err("ERR Number of keys can't be greater than number of args".to_string());
    }
    Ok(n)
}

/// SINTERCARD numkeys key... [LIMIT limit].
pub struct SInterCard;
impl MultiKey for SInterCard {
    fn keys(argv: &[&[u8]]) -> Result<Keys, String> {
        let n = parse_numkeys(argv, 1)?;
        let mut i = 2 + n;
        while i < argv.len() {
            if eq_ic(argv[i], "LIMIT") && i + 1 < argv.len() {
                if parse_i64(argv[i + 1]).is_none_or(|l| l < 0) {
                    return Err("ERR LIMIT can't be negative".to_string());
                }
                i += 2;
            } else {
                return Err(errors::SYNTAX.to_string());
            }
        }
        Ok(Keys {
            sources: (2..2 + n).collect(),
            dest: None,
        })
    }

    fn compute(proto: Protocol, argv: &[&[u8]], srcs: &[Src<'_>], _: &Limits) -> Outcome {
        let Ok(sets) = as_sets(srcs) else {
            return Outcome::Reply(encoded(proto, |w| w.error(errors::WRONGTYPE)));
        };
        let mut limit = 0;
        let mut i = 2 + srcs.len();
        while i + 1 < argv.len() {
            limit = parse_i64(argv[i + 1]).map_or(0, |l| l.max(0) as usize);
            i += 2;
        }
        let n = set_op(SetOp::Inter, &sets, limit).len();
        Outcome::Reply(encoded(proto, |w| w.int(n as i64)))
    }
}

pub fn sintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<SInterCard>(ctx, argv)
}
