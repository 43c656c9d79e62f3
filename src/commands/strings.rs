//! String commands.

use super::{Ctx, Gather, Partial, eq_ic, errors, parse_i64};
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_engine::number::I64_MAX_DECIMAL_BYTES;
use percore_engine::strings::{self, StringError};
use percore_engine::value::{StrValue, Value};
use percore_net::resp::ReplyWriter;

/// Writes a string value as a bulk reply.
#[inline]
pub fn write_str(w: &mut ReplyWriter, v: &StrValue) {
    match v {
        StrValue::Int(i) => w.bulk_int(*i),
        StrValue::Inline(s) => w.bulk(s.as_bytes()),
        StrValue::Raw(b) => w.bulk(b),
    }
}

pub fn get(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => write_str(w, s),
        Ok(None) => w.null(),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// An expiry option of SET/GETEX, with its still unparsed number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpireOpt<'a> {
    None,
    KeepTtl,
    Persist,
    /// `EX`/`PX`/`EXAT`/`PXAT`: (milliseconds?, absolute?, number).
    Time(bool, bool, &'a [u8]),
}

/// Parsed options of SET (or GETEX when `getex`).
#[derive(Debug)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    /// Valkey 8.1's `IFEQ comparison-value`: set only over a string equal to it.
    ifeq: Option<&'a [u8]>,
    expire: ExpireOpt<'a>,
}

/// An expiry argument (`EX`/`PX`/`EXAT`/`PXAT` with its number) to absolute milliseconds,
/// with Redis's checks and texts (`getExpireMillisecondsOrReply`).
pub fn parse_expire(
    unit_ms: bool,
    absolute: bool,
    arg: &[u8],
    now_ms: i64,
    cmd: &str,
) -> Result<i64, String> {
    let Some(v) = parse_i64(arg) else {
        return Err(errors::NOT_INTEGER.to_string());
    };
    let invalid = || format!("ERR invalid expire time in '{cmd}' command");
    if v <= 0 {
        return Err(invalid());
    }
    let ms = if unit_ms {
        v
    } else {
        v.checked_mul(1000).ok_or_else(invalid)?
    };
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(now_ms).ok_or_else(invalid)
    }
}

/// The absolute expiry time (ms) a valid SET gives its key, if it gives one
/// (`EX`/`PX`/`EXAT`/`PXAT`), as the command computed it at `now_ms`.
pub fn set_expire_at(argv: &[&[u8]], now_ms: i64) -> Option<i64> {
    let o = parse_set_opts(argv, 3, false).ok()?;
    let ExpireOpt::Time(unit_ms, absolute, n) = o.expire else {
        return None;
    };
    parse_expire(unit_ms, absolute, n, now_ms, "set").ok()
}

/// Redis's `parseExtendedStringArgumentsOrReply`: the options from `argv[first..]`; the
/// expiry number is checked later, as Redis does.
fn parse_set_opts<'a>(argv: &[&'a [u8]], first: usize, getex: bool) -> Result<SetOpts<'a>, ()> {
    let mut o = SetOpts {
        nx: false,
        xx: false,
        get: false,
        ifeq: None,
        expire: ExpireOpt::None,
    };
    let mut i = first;
    while i < argv.len() {
        let a = argv[i];
        let next = argv.get(i + 1);
        if !getex && eq_ic(a, "NX") && !o.xx && o.ifeq.is_none() {
            o.nx = true;
        } else if !getex && eq_ic(a, "XX") && !o.nx && o.ifeq.is_none() {
            o.xx = true;
        } else if !getex
            && eq_ic(a, "IFEQ")
            && let Some(n) = next
            && !o.nx
            && !o.xx
            && o.ifeq.is_none()
        {
            o.ifeq = Some(n);
            i += 1;
        } else if !getex && eq_ic(a, "GET") {
            o.get = true;
        } else if !getex
            && eq_ic(a, "KEEPTTL")
            && matches!(o.expire, ExpireOpt::None | ExpireOpt::KeepTtl)
        {
            o.expire = ExpireOpt::KeepTtl;
        } else if getex
            && eq_ic(a, "PERSIST")
            && matches!(o.expire, ExpireOpt::None | ExpireOpt::Persist)
        {
            o.expire = ExpireOpt::Persist;
        } else if let Some((unit_ms, absolute)) = expire_word(a)
            && let Some(n) = next
            && (o.expire == ExpireOpt::None
                || matches!(o.expire, ExpireOpt::Time(u, ab, _) if u == unit_ms && ab == absolute))
        {
            // The same unit may repeat (the last wins); different ones conflict.
            o.expire = ExpireOpt::Time(unit_ms, absolute, n);
            i += 1;
        } else {
            return Err(());
        }
        i += 1;
    }
    Ok(o)
}

/// `EX`/`PX`/`EXAT`/`PXAT` → (milliseconds?, absolute?).
fn expire_word(a: &[u8]) -> Option<(bool, bool)> {
    if eq_ic(a, "EX") {
        Some((false, false))
    } else if eq_ic(a, "PX") {
        Some((true, false))
    } else if eq_ic(a, "EXAT") {
        Some((false, true))
    } else if eq_ic(a, "PXAT") {
        Some((true, true))
    } else {
        None
    }
}

/// Reads a string key for a read command, counting the hit or miss. `Err` = wrong type.
fn read_str<'d>(
    sh: &'d mut crate::shard::ShardData,
    db: usize,
    key: &[u8],
) -> Result<Option<&'d StrValue>, ()> {
    let now = sh.now_ms;
    if let Some(v) = sh.keyspace.db_mut(db).get(key, now) {
        sh.stats.keyspace_hits += 1;
        v.as_str().map(Some).ok_or(())
    } else {
        sh.stats.keyspace_misses += 1;
        Ok(None)
    }
}

pub fn set(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    if argv.len() == 3 {
        // The common case: no options.
        let db = ctx.shard.keyspace.db_mut(ctx.db);
        db.set(argv[1], Value::from_bytes(argv[2]), SetExpire::Clear, now);
        w.ok();
        ctx.notify(class::STRING, "set", argv[1]);
        return;
    }
    let Ok(o) = parse_set_opts(argv, 3, false) else {
        w.error(errors::SYNTAX);
        return;
    };
    let expire = match o.expire {
        ExpireOpt::Time(unit_ms, absolute, n) => {
            match parse_expire(unit_ms, absolute, n, now, "set") {
                Ok(at) => SetExpire::At(at),
                Err(e) => {
                    w.error(&e);
                    return;
                }
            }
        }
        ExpireOpt::KeepTtl => SetExpire::Keep,
        ExpireOpt::None | ExpireOpt::Persist => SetExpire::Clear,
    };
    let mut old: Option<Vec<u8>> = None;
    if o.get {
        let Ok(v) = read_str(ctx.shard, ctx.db, argv[1]) else {
            w.error(errors::WRONGTYPE);
            return;
        };
        old = v.map(|s| s.to_bytes().into_owned());
    }
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let exists = db.contains(argv[1], now);
    let mut blocked = (o.nx && exists) || (o.xx && !exists);
    if let Some(want) = o.ifeq {
        // Valkey's setGenericCommand: no key, or a string of another value, sets nothing;
        // another type is WRONGTYPE (with GET, the read above answered that already).
        blocked = match db.get(argv[1], now) {
            None => true,
            Some(Value::Str(cur)) => {
                let mut buf = [0u8; I64_MAX_DECIMAL_BYTES];
                cur.as_bytes(&mut buf) != want
            }
            Some(_) => {
                w.error(errors::WRONGTYPE);
                return;
            }
        };
    }
    if !blocked {
        db.set(argv[1], Value::from_bytes(argv[2]), expire, now);
        ctx.notify(class::STRING, "set", argv[1]);
        if matches!(expire, SetExpire::At(_)) {
            ctx.notify(class::GENERIC, "expire", argv[1]);
        }
    }
    if o.get {
        match old {
            Some(v) => w.bulk(&v),
            None => w.null(),
        }
    } else if blocked {
        w.null();
    } else {
        w.ok();
    }
}

pub fn setnx(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if db.contains(argv[1], now) {
        w.int(0);
    } else {
        db.set(argv[1], Value::from_bytes(argv[2]), SetExpire::Clear, now);
        w.int(1);
        ctx.notify(class::STRING, "set", argv[1]);
    }
}

/// SETEX / PSETEX: `key time value`.
fn set_with_expire(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, unit_ms: bool, cmd: &str) {
    let now = ctx.shard.now_ms;
    match parse_expire(unit_ms, false, argv[2], now, cmd) {
        Ok(at) => {
            let db = ctx.shard.keyspace.db_mut(ctx.db);
            db.set(argv[1], Value::from_bytes(argv[3]), SetExpire::At(at), now);
            w.ok();
            ctx.notify(class::STRING, "set", argv[1]);
            ctx.notify(class::GENERIC, "expire", argv[1]);
        }
        Err(e) => w.error(&e),
    }
}

pub fn setex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    set_with_expire(ctx, argv, w, false, "setex");
}

pub fn psetex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    set_with_expire(ctx, argv, w, true, "psetex");
}

pub fn getset(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Ok(old) = read_str(ctx.shard, ctx.db, argv[1]) else {
        w.error(errors::WRONGTYPE);
        return;
    };
    let old = old.map(|s| s.to_bytes().into_owned());
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    db.set(argv[1], Value::from_bytes(argv[2]), SetExpire::Clear, now);
    ctx.notify(class::STRING, "set", argv[1]);
    match old {
        Some(v) => w.bulk(&v),
        None => w.null(),
    }
}

pub fn getdel(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => write_str(w, s),
        Ok(None) => {
            w.null();
            return;
        }
        Err(()) => {
            w.error(errors::WRONGTYPE);
            return;
        }
    }
    let now = ctx.shard.now_ms;
    ctx.shard.keyspace.db_mut(ctx.db).remove(argv[1], now);
    ctx.notify(class::GENERIC, "del", argv[1]);
}

pub fn getex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Ok(o) = parse_set_opts(argv, 2, true) else {
        w.error(errors::SYNTAX);
        return;
    };
    let now = ctx.shard.now_ms;
    match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(_)) => {}
        Ok(None) => {
            w.null();
            return;
        }
        Err(()) => {
            w.error(errors::WRONGTYPE);
            return;
        }
    }
    // As Redis: the expiry is validated only once the key is known to be a string.
    let mut at = None;
    if let ExpireOpt::Time(unit_ms, absolute, n) = o.expire {
        match parse_expire(unit_ms, absolute, n, now, "getex") {
            Ok(ms) => at = Some((ms, absolute)),
            Err(e) => {
                w.error(&e);
                return;
            }
        }
    }
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if let Some(Value::Str(s)) = db.get(argv[1], now) {
        write_str(w, s);
    }
    match at {
        // EXAT/PXAT in the past deletes the key (Redis's checkAlreadyExpired).
        Some((ms, true)) if ms <= now => {
            db.remove(argv[1], now);
            ctx.notify(class::GENERIC, "del", argv[1]);
        }
        Some((ms, _)) => {
            db.set_expire_at(argv[1], ms, now);
            ctx.notify(class::GENERIC, "expire", argv[1]);
        }
        None if o.expire == ExpireOpt::Persist && db.persist(argv[1], now) => {
            ctx.notify(class::GENERIC, "persist", argv[1]);
        }
        None => {}
    }
}

pub fn incr(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    incr_by_delta(ctx, argv[1], 1, w);
}

pub fn decr(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    incr_by_delta(ctx, argv[1], -1, w);
}

pub fn incrby(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match parse_i64(argv[2]) {
        Some(d) => incr_by_delta(ctx, argv[1], d, w),
        None => w.error(errors::NOT_INTEGER),
    }
}

pub fn decrby(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match parse_i64(argv[2]) {
        // As Redis, the negation overflow is refused before the key is looked at.
        Some(i64::MIN) => w.error(StringError::DecrementOverflow.reply_text()),
        Some(d) => incr_by_delta(ctx, argv[1], -d, w),
        None => w.error(errors::NOT_INTEGER),
    }
}

pub fn incrbyfloat(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match db.get_mut(argv[1], now) {
        Some(Value::Str(s)) => match strings::incr_by_float(Some(s), argv[2]) {
            Ok(text) => {
                w.bulk(&text);
                // Redis stores the result as a string object (never int-encoded); the
                // key keeps its TTL.
                *s = StrValue::text_from_vec(text);
                ctx.notify(class::STRING, "incrbyfloat", argv[1]);
            }
            Err(e) => w.error(e.reply_text()),
        },
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => match strings::incr_by_float(None, argv[2]) {
            Ok(text) => {
                w.bulk(&text);
                db.set(
                    argv[1],
                    Value::Str(StrValue::text_from_vec(text)),
                    SetExpire::Clear,
                    now,
                );
                ctx.notify(class::STRING, "incrbyfloat", argv[1]);
            }
            Err(e) => w.error(e.reply_text()),
        },
    }
}

pub fn append(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let max = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match db.get_mut(argv[1], now) {
        Some(Value::Str(s)) => {
            if s.len() as u64 + argv[2].len() as u64 > max {
                w.error(StringError::MaxSize.reply_text());
                return;
            }
            match strings::append(s.make_raw(), argv[2], max) {
                Ok(n) => {
                    w.int(n as i64);
                    ctx.notify(class::STRING, "append", argv[1]);
                }
                Err(e) => w.error(e.reply_text()),
            }
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => {
            db.set(argv[1], Value::from_bytes(argv[2]), SetExpire::Clear, now);
            w.int(argv[2].len() as i64);
            ctx.notify(class::STRING, "append", argv[1]);
        }
    }
}

pub fn strlen(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => w.int(s.len() as i64),
        Ok(None) => w.int(0),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// GETRANGE and its alias SUBSTR.
pub fn getrange(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (Some(start), Some(end)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
        w.error(errors::NOT_INTEGER);
        return;
    };
    match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => {
            let mut buf = [0u8; I64_MAX_DECIMAL_BYTES];
            w.bulk(strings::getrange(s.as_bytes(&mut buf), start, end));
        }
        Ok(None) => w.bulk(b""),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn setrange(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(offset) = parse_i64(argv[2]) else {
        w.error(errors::NOT_INTEGER);
        return;
    };
    if offset < 0 {
        w.error(StringError::OffsetOutOfRange.reply_text());
        return;
    }
    let now = ctx.shard.now_ms;
    let max = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match db.get_mut(argv[1], now) {
        Some(Value::Str(s)) => {
            if argv[3].is_empty() {
                w.int(s.len() as i64);
                return;
            }
            match strings::setrange(s.make_raw(), offset, argv[3], max) {
                Ok(n) => {
                    w.int(n as i64);
                    ctx.notify(class::STRING, "setrange", argv[1]);
                }
                Err(e) => w.error(e.reply_text()),
            }
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => {
            // Setting nothing on an absent key creates nothing.
            if argv[3].is_empty() {
                w.int(0);
                return;
            }
            let mut bytes = Vec::new();
            match strings::setrange(&mut bytes, offset, argv[3], max) {
                Ok(n) => {
                    db.set(
                        argv[1],
                        Value::Str(StrValue::Raw(bytes)),
                        SetExpire::Clear,
                        now,
                    );
                    w.int(n as i64);
                    ctx.notify(class::STRING, "setrange", argv[1]);
                }
                Err(e) => w.error(e.reply_text()),
            }
        }
    }
}

/// INCR/DECR/INCRBY/DECRBY: add `delta` to the integer at `key`, keeping its TTL.
pub fn incr_by_delta(ctx: &mut Ctx, key: &[u8], delta: i64, w: &mut ReplyWriter) {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    match db.get_mut(key, now) {
        Some(Value::Str(s)) => match percore_engine::strings::incr_by(Some(s), delta) {
            Ok(n) => {
                *s = StrValue::Int(n);
                w.int(n);
                ctx.notify(class::STRING, "incrby", key);
            }
            Err(e) => w.error(e.reply_text()),
        },
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => match percore_engine::strings::incr_by(None, delta) {
            Ok(n) => {
                db.set(key, Value::Str(StrValue::Int(n)), SetExpire::Clear, now);
                w.int(n);
                ctx.notify(class::STRING, "incrby", key);
            }
            Err(e) => w.error(e.reply_text()),
        },
    }
}

pub fn mget_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    let mut vals = Vec::with_capacity(argv.len() - 1);
    for k in &argv[1..] {
        match db.get(k, now) {
            Some(Value::Str(s)) => {
                sh.stats.keyspace_hits += 1;
                vals.push(Some(s.to_bytes().into_owned()));
            }
            #[allow(unreachable_patterns, reason = "more value types arrive later")]
            Some(_) => vals.push(None),
            None => {
                sh.stats.keyspace_misses += 1;
                vals.push(None);
            }
        }
    }
    Partial::Values(vals)
}

pub fn mget_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let mut out: Vec<Option<Vec<u8>>> = vec![None; g.nkeys];
    for (s, part) in g.parts.iter_mut().enumerate() {
        if let Some(Partial::Values(vals)) = part.take() {
            for (j, v) in vals.into_iter().enumerate() {
                out[g.key_map[s][j] as usize] = v;
            }
        }
    }
    w.array(out.len());
    for v in &out {
        match v {
            Some(b) => w.bulk(b),
            None => w.null(),
        }
    }
}

pub fn mset_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    for pair in argv[1..].chunks_exact(2) {
        let db = ctx.shard.keyspace.db_mut(ctx.db);
        db.set(pair[0], Value::from_bytes(pair[1]), SetExpire::Clear, now);
        ctx.notify(class::STRING, "set", pair[0]);
    }
    Partial::Unit
}

pub fn mset_merge(_g: &mut Gather, w: &mut ReplyWriter) {
    w.ok();
}

/// MSETNX: the keys' shards are visited in order, first to check that no key exists, then
/// to set them ([`Exec::Hop`](super::Exec::Hop) steps). With every key on one shard this is
/// atomic. Across shards it is check-then-set: without a concurrent writer the answer is
/// Redis's, but a write between the two passes can slip in. Cross-shard atomicity waits
/// for the transactions work.
pub fn msetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if !(argv.len() - 1).is_multiple_of(2) {
        return super::keyspace::reply(ctx, |w| super::wrong_arity("msetnx", w));
    }
    let owners = msetnx_owners(ctx, argv);
    super::keyspace::hop(owners[0], msetnx_check, argv.iter().copied())
}

/// The shards owning MSETNX's keys, ascending and without repeats.
fn msetnx_owners(ctx: &Ctx, argv: &[&[u8]]) -> Vec<usize> {
    let mut owners: Vec<usize> = argv[1..]
        .chunks_exact(2)
        .map(|p| ctx.shard.owner(p[0]))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    owners
}

fn msetnx_check(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let me = ctx.shard.id;
    let now = ctx.shard.now_ms;
    let owners = msetnx_owners(ctx, argv);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let taken = argv[1..]
        .chunks_exact(2)
        .filter(|p| {
            ctx.shard.shards == 1
                || percore_engine::slot::shard_of_key(p[0], ctx.shard.shards) == me
        })
        .any(|p| db.contains(p[0], now));
    if taken {
        return super::keyspace::reply(ctx, |w| w.int(0));
    }
    match owners.iter().find(|&&s| s > me) {
        Some(&next) => super::keyspace::hop(next, msetnx_check, argv.iter().copied()),
        None if owners[0] == me => msetnx_set(ctx, argv),
        None => super::keyspace::hop(owners[0], msetnx_set, argv.iter().copied()),
    }
}

fn msetnx_set(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let me = ctx.shard.id;
    let now = ctx.shard.now_ms;
    let owners = msetnx_owners(ctx, argv);
    let shards = ctx.shard.shards;
    let mine = |p: &&[&[u8]]| shards == 1 || percore_engine::slot::shard_of_key(p[0], shards) == me;
    for p in argv[1..].chunks_exact(2).filter(mine) {
        let db = ctx.shard.keyspace.db_mut(ctx.db);
        db.set(p[0], Value::from_bytes(p[1]), SetExpire::Clear, now);
        ctx.notify(class::STRING, "set", p[0]);
    }
    match owners.iter().find(|&&s| s > me) {
        Some(&next) => super::keyspace::hop(next, msetnx_set, argv.iter().copied()),
        None => super::keyspace::reply(ctx, |w| w.int(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts<'a>(args: &[&'a [u8]], getex: bool) -> Result<SetOpts<'a>, ()> {
        let mut argv: Vec<&[u8]> = vec![b"set", b"k"];
        if !getex {
            argv.push(b"v");
        }
        argv.extend_from_slice(args);
        parse_set_opts(&argv, if getex { 2 } else { 3 }, getex)
    }

    #[test]
    fn set_options_follow_redis() {
        let o = opts(&[b"nx", b"GET", b"px", b"100"], false).unwrap();
        assert!(o.nx && o.get && !o.xx);
        assert_eq!(o.expire, ExpireOpt::Time(true, false, b"100"));
        // The same option may repeat; the last number wins.
        let o = opts(&[b"EX", b"1", b"ex", b"2", b"NX", b"NX"], false).unwrap();
        assert_eq!(o.expire, ExpireOpt::Time(false, false, b"2"));
        assert_eq!(
            opts(&[b"KEEPTTL", b"KEEPTTL"], false).unwrap().expire,
            ExpireOpt::KeepTtl
        );
        for bad in [
            &[&b"NX"[..], b"XX"][..],
            &[b"EX", b"1", b"PX", b"1"],
            &[b"EX", b"1", b"KEEPTTL"],
            &[b"KEEPTTL", b"EXAT", b"1"],
            &[b"EX"],
            &[b"PERSIST"],
            &[b"FOO"],
        ] {
            assert!(opts(bad, false).is_err(), "{bad:?}");
        }
        // The number is not looked at while parsing: a later syntax error wins.
        assert!(opts(&[b"EX", b"abc", b"FOO"], false).is_err());
        assert!(opts(&[b"EX", b"abc"], false).is_ok());
    }

    #[test]
    fn getex_options_follow_redis() {
        assert_eq!(
            opts(&[b"persist"], true).unwrap().expire,
            ExpireOpt::Persist
        );
        assert_eq!(
            opts(&[b"PXAT", b"5"], true).unwrap().expire,
            ExpireOpt::Time(true, true, b"5")
        );
        for bad in [
            &[&b"NX"[..]][..],
            &[b"GET"],
            &[b"KEEPTTL"],
            &[b"PERSIST", b"EX", b"1"],
            &[b"EX", b"1", b"PERSIST"],
        ] {
            assert!(opts(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expire_numbers_follow_redis() {
        assert_eq!(parse_expire(false, false, b"10", 1000, "set"), Ok(11_000));
        assert_eq!(parse_expire(true, true, b"5", 1000, "set"), Ok(5));
        assert_eq!(
            parse_expire(false, false, b"0", 0, "setex"),
            Err("ERR invalid expire time in 'setex' command".to_string())
        );
        assert_eq!(
            parse_expire(false, false, b"x", 0, "set"),
            Err(errors::NOT_INTEGER.to_string())
        );
        assert!(parse_expire(false, false, b"9223372036854775807", 0, "set").is_err());
        assert!(parse_expire(true, false, b"9223372036854775807", 1, "set").is_err());
    }
}
