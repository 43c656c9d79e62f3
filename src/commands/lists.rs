//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LINSERT
//! LREM LTRIM LPOS LMOVE RPOPLPUSH LMPOP, with Redis 7.0's replies and error texts.
//!
//! The blocking forms BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP are at the end: their first
//! run and the serving of a waiter both use the non-blocking form's work on one key
//! (`crate::blocking` does the waiting).
//!
//! LMOVE/RPOPLPUSH with source and destination on different shards, and LMPOP with keys
//! on several shards, run as [`Exec::Hop`](super::Exec::Hop) chains: correct results, not
//! atomic across the shards (see README, Known differences).

#![allow(
    clippy::many_single_char_names,
    reason = "w (the reply writer), h/l (the value), k/v follow the other handler files"
)]

use super::keyspace::{hop, reply};
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::notify::class;
use percore_engine::db::{Db, SetExpire};
use percore_engine::listpack::LpValue;
use percore_engine::lists::{End, List};
use percore_engine::value::Value;
use percore_net::resp::ReplyWriter;

const NO_SUCH_KEY: &str = "ERR no such key";
const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
const RANK_MIN: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
const COUNT_NEGATIVE: &str = "ERR COUNT can't be negative";
const MAXLEN_NEGATIVE: &str = "ERR MAXLEN can't be negative";
const NUMKEYS_POSITIVE: &str = "ERR numkeys should be greater than 0";
const COUNT_POSITIVE: &str = "ERR count should be greater than 0";

/// Writes a list entry as a bulk string.
#[inline]
pub fn write_entry(w: &mut ReplyWriter, v: LpValue<'_>) {
    match v {
        LpValue::Int(i) => w.bulk_int(i),
        LpValue::Str(s) => w.bulk(s),
    }
}

/// The list at `key`: `Ok(None)` when absent, `Err` when another type.
fn list_mut<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<Option<&'d mut List>, ()> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(()),
    }
}

fn list_ref<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<Option<&'d List>, ()> {
    list_mut(db, key, now).map(|o| o.map(|l| &*l))
}

fn fill(ctx: &Ctx) -> i64 {
    ctx.shard.cfg.list_max_listpack_size
}

/// After entries were removed from `key`'s list: deletes it when it became empty (true),
/// else lets it report `listpack` again if it shrank enough (`List::shrink_check`).
fn drop_if_empty(db: &mut Db, key: &[u8], now: i64, fill: i64) -> bool {
    match db.get_mut(key, now) {
        Some(Value::List(l)) if l.is_empty() => {
            db.remove(key, now);
            true
        }
        Some(Value::List(l)) => {
            l.shrink_check(fill);
            false
        }
        _ => false,
    }
}

/// The keyspace events of a pop from `key` ("lpop"/"rpop", then "del" when `emptied`).
fn notify_pop(ctx: &mut Ctx, key: &[u8], end: End, emptied: bool) {
    ctx.notify(class::LIST, pop_event(end), key);
    if emptied {
        ctx.notify(class::GENERIC, "del", key);
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

fn end_of(name: &[u8]) -> End {
    if name[0].eq_ignore_ascii_case(&b'l')
        || name[0].eq_ignore_ascii_case(&b'b') && name[1].eq_ignore_ascii_case(&b'l')
    {
        End::Head
    } else {
        End::Tail
    }
}

/// Pushes `items` to `key` (creating it unless `only_existing`): the new length, 0 when
/// absent and `only_existing`, `Err` on a wrong type.
fn push_items(
    ctx: &mut Ctx,
    key: &[u8],
    end: End,
    items: &[&[u8]],
    only_existing: bool,
) -> Result<usize, ()> {
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let l = match list_mut(db, key, now)? {
        Some(l) => l,
        None if only_existing => return Ok(0),
        None => {
            db.set(key, Value::List(Box::default()), SetExpire::Keep, now);
            match db.get_mut(key, now) {
                Some(Value::List(l)) => l,
                _ => unreachable!("just stored"),
            }
        }
    };
    l.grow_check(f, items.iter().map(|it| it.len()).sum(), items.len());
    for it in items {
        l.push(end, it, f);
    }
    // A list created here is reported to blocked clients by the database (`Db::wait_on`).
    Ok(l.len())
}

fn push_generic(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, end: End, only_existing: bool) {
    match push_items(ctx, argv[1], end, &argv[2..], only_existing) {
        Ok(n) => {
            w.int(n as i64);
            if n > 0 {
                ctx.notify(class::LIST, push_event(end), argv[1]);
            }
        }
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn lpush(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    push_generic(ctx, argv, w, End::Head, false);
}

pub fn rpush(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    push_generic(ctx, argv, w, End::Tail, false);
}

pub fn lpushx(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    push_generic(ctx, argv, w, End::Head, true);
}

pub fn rpushx(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    push_generic(ctx, argv, w, End::Tail, true);
}

/// LPOP/RPOP key [count].
pub fn pop(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() > 3 {
        super::wrong_arity(
            if end_of(argv[0]) == End::Head {
                "lpop"
            } else {
                "rpop"
            },
            w,
        );
        return;
    }
    let end = end_of(argv[0]);
    let count = if argv.len() == 3 {
        match parse_i64(argv[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => {
                w.error(MUST_BE_POSITIVE);
                return;
            }
        }
    } else {
        None
    };
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let l = match list_mut(db, argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => {
            if count.is_some() {
                w.null_array();
            } else {
                w.null();
            }
            return;
        }
        Ok(Some(l)) => l,
    };
    match count {
        None => {
            l.pop_with(end, |v| write_entry(w, v));
        }
        // Redis answers LPOP key 0 at once, changing and reporting nothing.
        Some(0) => {
            w.array(0);
            return;
        }
        Some(n) => {
            let n = n.min(l.len());
            w.array(n);
            for _ in 0..n {
                l.pop_with(end, |v| write_entry(w, v));
            }
        }
    }
    let emptied = l.is_empty();
    if emptied {
        db.remove(argv[1], now);
    } else {
        l.shrink_check(f);
    }
    notify_pop(ctx, argv[1], end, emptied);
}

pub fn llen(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match list_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Ok(l) => w.int(l.map_or(0, List::len) as i64),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// The inclusive range `start..=stop` of a list of `len` with Redis's index rules, or
/// `None` when empty.
pub fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 {
        start.saturating_add(len)
    } else {
        start
    };
    let mut stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop
    };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

pub fn lrange(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (Some(start), Some(stop)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
        return w.error(errors::NOT_INTEGER);
    };
    let now = ctx.shard.now_ms;
    let l = match list_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.array(0),
        Ok(Some(l)) => l,
    };
    match clamp_range(start, stop, l.len()) {
        None => w.array(0),
        Some((s, e)) => {
            w.array(e - s + 1);
            let mut b = w.bulks();
            l.for_each_in(s, e - s + 1, |v| match v {
                LpValue::Int(i) => b.int(i),
                LpValue::Str(s) => b.bulk(s),
            });
        }
    }
}

pub fn lindex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let l = match list_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.null(),
        Ok(Some(l)) => l,
    };
    let Some(i) = parse_i64(argv[2]) else {
        return w.error(errors::NOT_INTEGER);
    };
    match l.get(i) {
        Some(v) => write_entry(w, v),
        None => w.null(),
    }
}

pub fn lset(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let l = match list_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.error(NO_SUCH_KEY),
        Ok(Some(l)) => l,
    };
    let Some(i) = parse_i64(argv[2]) else {
        return w.error(errors::NOT_INTEGER);
    };
    l.grow_check(f, argv[3].len(), 1);
    if l.set(i, argv[3], f) {
        l.shrink_check(f);
        w.ok();
        ctx.notify(class::LIST, "lset", argv[1]);
    } else {
        w.error(INDEX_OUT_OF_RANGE);
    }
}

pub fn linsert(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let after = if eq_ic(argv[2], "after") {
        true
    } else if eq_ic(argv[2], "before") {
        false
    } else {
        return w.error(errors::SYNTAX);
    };
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let l = match list_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.int(0),
        Ok(Some(l)) => l,
    };
    l.grow_check(f, argv[4].len(), 1);
    match l.insert_at_pivot(argv[3], argv[4], after, f) {
        Some(n) => {
            w.int(n as i64);
            ctx.notify(class::LIST, "linsert", argv[1]);
        }
        None => w.int(-1),
    }
}

pub fn lrem(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(count) = parse_i64(argv[2]) else {
        return w.error(errors::NOT_INTEGER);
    };
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let l = match list_mut(db, argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.int(0),
        Ok(Some(l)) => l,
    };
    let n = l.remove_matching(argv[3], count);
    w.int(n as i64);
    let emptied = drop_if_empty(db, argv[1], now, f);
    if n > 0 {
        ctx.notify(class::LIST, "lrem", argv[1]);
    }
    if emptied {
        ctx.notify(class::GENERIC, "del", argv[1]);
    }
}

pub fn ltrim(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (Some(start), Some(stop)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
        return w.error(errors::NOT_INTEGER);
    };
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match list_mut(db, argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.ok(),
        Ok(Some(l)) => l.trim(start, stop),
    }
    w.ok();
    let emptied = drop_if_empty(db, argv[1], now, f);
    ctx.notify(class::LIST, "ltrim", argv[1]);
    if emptied {
        ctx.notify(class::GENERIC, "del", argv[1]);
    }
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
pub fn lpos(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if eq_ic(argv[j], "RANK") && more {
            j += 1;
            match parse_i64(argv[j]) {
                None => return w.error(errors::NOT_INTEGER),
                Some(0) => return w.error(RANK_ZERO),
                Some(r) => rank = r,
            }
        } else if eq_ic(argv[j], "COUNT") && more {
            j += 1;
            match parse_i64(argv[j]) {
                Some(n) if n >= 0 => count = Some(n as usize),
                _ => return w.error(COUNT_NEGATIVE),
            }
        } else if eq_ic(argv[j], "MAXLEN") && more {
            j += 1;
            match parse_i64(argv[j]) {
                Some(n) if n >= 0 => maxlen = n as usize,
                _ => return w.error(MAXLEN_NEGATIVE),
            }
        } else {
            return w.error(errors::SYNTAX);
        }
        j += 1;
    }
    let now = ctx.shard.now_ms;
    let l = match list_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => {
            if count.is_some() {
                w.array(0);
            } else {
                w.null();
            }
            return;
        }
        // The lowest rank on a list: Redis 7.0 negates it (undefined behaviour in C) and
        // answers by chance; Valkey 8 (and Redis 7.2) refuse it, which Valkey's list unit
        // asserts. A missing key or another type answers as 7.0 (nil, WRONGTYPE).
        Ok(Some(_)) if rank == i64::MIN => return w.error(RANK_MIN),
        Ok(Some(l)) => l,
    };
    let want = count.map_or(1, |c| if c == 0 { usize::MAX } else { c });
    let mut skip = rank.unsigned_abs() - 1;
    let mut found: Vec<usize> = Vec::new();
    let len = l.len();
    let limit = if maxlen == 0 { usize::MAX } else { maxlen };
    let mut scan = |i: usize, v: LpValue<'_>| -> bool {
        if v.eq_bytes(argv[2]) {
            if skip == 0 {
                found.push(i);
                return found.len() < want;
            }
            skip -= 1;
        }
        true
    };
    if rank > 0 {
        for (i, v) in l.iter().enumerate().take(limit) {
            if !scan(i, v) {
                break;
            }
        }
    } else {
        for (k, v) in l.iter_rev().enumerate().take(limit) {
            if !scan(len - 1 - k, v) {
                break;
            }
        }
    }
    if count.is_some() {
        w.array(found.len());
        for i in found {
            w.int(i as i64);
        }
    } else {
        match found.first() {
            Some(&i) => w.int(i as i64),
            None => w.null(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// LMOVE, RPOPLPUSH

fn parse_end(a: &[u8]) -> Option<End> {
    if eq_ic(a, "left") {
        Some(End::Head)
    } else if eq_ic(a, "right") {
        Some(End::Tail)
    } else {
        None
    }
}

/// `(from, to)` ends of LMOVE/RPOPLPUSH (and their blocking forms); `None` on a syntax
/// error.
fn move_ends(argv: &[&[u8]]) -> Option<(End, End)> {
    if argv[0].len() >= 5 && (eq_ic(argv[0], "lmove") || eq_ic(argv[0], "blmove")) {
        Some((parse_end(argv[3])?, parse_end(argv[4])?))
    } else {
        Some((End::Tail, End::Head))
    }
}

fn end_arg(e: End) -> &'static [u8] {
    match e {
        End::Head => b"left",
        End::Tail => b"right",
    }
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT, RPOPLPUSH source destination.
/// Runs on the source's shard; a destination on another shard receives the element in a
/// second step (which gives it back to the source if the destination holds another type).
pub fn lmove(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some((from, to)) = move_ends(argv) else {
        return reply(ctx, |w| w.error(errors::SYNTAX));
    };
    let me = ctx.shard.id;
    let src_owner = ctx.shard.owner(argv[1]);
    if src_owner != me {
        return hop(src_owner, lmove, argv.iter().copied());
    }
    let dst_owner = ctx.shard.owner(argv[2]);
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match list_ref(db, argv[1], now) {
        Err(()) => return reply(ctx, |w| w.error(errors::WRONGTYPE)),
        Ok(None) => return reply(ctx, |w: &mut ReplyWriter<'_>| w.null()),
        Ok(Some(_)) => {}
    }
    if dst_owner == me {
        if list_ref(db, argv[2], now).is_err() {
            return reply(ctx, |w| w.error(errors::WRONGTYPE));
        }
        let v = move_local(ctx, argv[1], argv[2], from, to);
        return reply(ctx, |w| w.bulk(&v));
    }
    let Some(v) = list_mut(db, argv[1], now)
        .ok()
        .flatten()
        .and_then(|l| l.pop(from))
    else {
        unreachable!("checked non-empty above");
    };
    let emptied: &[u8] = if drop_if_empty(db, argv[1], now, f) {
        b"1"
    } else {
        b"0"
    };
    hop(
        dst_owner,
        lmove_put,
        [
            argv[0],
            argv[2],
            &v[..],
            end_arg(to),
            argv[1],
            end_arg(from),
            emptied,
        ],
    )
}

/// Pops from `src` and pushes to `dst`, both on this shard and both checked to be lists
/// (the source non-empty). Returns the element.
fn move_local(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Vec<u8> {
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Some(v) = list_mut(db, src, now)
        .ok()
        .flatten()
        .and_then(|l| l.pop(from))
    else {
        unreachable!("checked non-empty by the caller");
    };
    // Pushed before the source is dropped when empty: rotating a one-element list keeps
    // the key, as Redis's.
    let _ = push_items(ctx, dst, to, &[&v], false);
    let emptied = drop_if_empty(ctx.shard.keyspace.db_mut(ctx.db), src, now, f);
    ctx.notify(class::LIST, push_event(to), dst);
    notify_pop(ctx, src, from, emptied);
    v
}

/// Second step of a cross-shard LMOVE on the destination's shard:
/// `[name, dst, element, to, src, from, source emptied]`. It publishes the source's
/// events too, in Redis's order (push, pop, del).
fn lmove_put(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let to = parse_end(argv[3]).unwrap_or(End::Head);
    if push_items(ctx, argv[1], to, &[argv[2]], false).is_ok() {
        let from = parse_end(argv[5]).unwrap_or(End::Head);
        ctx.notify(class::LIST, push_event(to), argv[1]);
        notify_pop(ctx, argv[4], from, argv[6] == b"1");
    } else {
        let src_owner = ctx.shard.owner(argv[4]);
        return hop(
            src_owner,
            lmove_restore,
            [argv[0], argv[4], argv[2], argv[5]],
        );
    }
    let v = argv[2].to_vec();
    reply(ctx, |w| w.bulk(&v))
}

/// Third step of a refused cross-shard LMOVE: the element goes back where it came from.
/// `[name, src, element, from]`.
fn lmove_restore(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let from = parse_end(argv[3]).unwrap_or(End::Head);
    let _ = push_items(ctx, argv[1], from, &[argv[2]], false);
    reply(ctx, |w| w.error(errors::WRONGTYPE))
}

// ---------------------------------------------------------------------------------------
// LMPOP

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]` starting at `argv[at]`:
/// (keys range, end, count).
pub fn parse_mpop(
    argv: &[&[u8]],
    at: usize,
) -> Result<(std::ops::Range<usize>, End, usize), &'static str> {
    let numkeys = match parse_i64(argv[at]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(NUMKEYS_POSITIVE),
    };
    let where_idx = (at + 1)
        .checked_add(numkeys)
        .filter(|&i| i < argv.len())
        .ok_or(errors::SYNTAX)?;
    let end = parse_end(argv[where_idx]).ok_or(errors::SYNTAX)?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < argv.len() {
        if count.is_none() && eq_ic(argv[j], "COUNT") && j + 1 < argv.len() {
            j += 1;
            match parse_i64(argv[j]) {
                Some(n) if n > 0 => count = Some(n as usize),
                _ => return Err(COUNT_POSITIVE),
            }
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok((at + 1..where_idx, end, count.unwrap_or(1)))
}

/// Pops up to `count` from the list at `key` on this shard: `Ok(None)` when absent.
pub fn mpop_key(ctx: &mut Ctx, key: &[u8], end: End, count: usize) -> Result<Option<Vec<u8>>, ()> {
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let proto = ctx.proto;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Some(l) = list_mut(db, key, now)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let mut w = ReplyWriter {
        out: &mut out,
        proto,
    };
    let n = count.min(l.len());
    w.array(2);
    w.bulk(key);
    w.array(n);
    for _ in 0..n {
        l.pop_with(end, |v| write_entry(&mut w, v));
    }
    let emptied = drop_if_empty(db, key, now, f);
    notify_pop(ctx, key, end, emptied);
    Ok(Some(out))
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: the keys are tried in order,
/// each on its own shard (argv of the continuation: `[name, next key index, ...]`).
pub fn lmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if let Err(e) = parse_mpop(argv, 1) {
        return reply(ctx, |w| w.error(e));
    }
    let mut sub: Vec<&[u8]> = vec![argv[0], b"3"];
    sub.extend_from_slice(&argv[1..]);
    lmpop_from(ctx, &sub)
}

/// `[name, position in this argv of the next key to try, original argv after the name]`.
fn lmpop_from(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Ok((keys, end, count)) = parse_mpop(argv, 2) else {
        unreachable!("checked by the first step");
    };
    let mut i = parse_i64(argv[1]).map_or(keys.start, |v| (v as usize).max(keys.start));
    while i < keys.end {
        let key = argv[i];
        let owner = ctx.shard.owner(key);
        if owner != ctx.shard.id {
            let next = i.to_string();
            let mut sub: Vec<&[u8]> = vec![argv[0], next.as_bytes()];
            sub.extend_from_slice(&argv[2..]);
            return hop(owner, lmpop_from, sub);
        }
        match mpop_key(ctx, key, end, count) {
            Err(()) => return reply(ctx, |w| w.error(errors::WRONGTYPE)),
            Ok(Some(r)) => return Partial::Encoded(r),
            Ok(None) => i += 1,
        }
    }
    reply(ctx, |w: &mut ReplyWriter<'_>| w.null_array())
}

// ---------------------------------------------------------------------------------------
// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP

use crate::blocking::{self, Take, WaitOps};

fn list_ready(ctx: &mut Ctx, key: &[u8], _argv: &[&[u8]]) -> bool {
    let now = ctx.shard.now_ms;
    matches!(
        list_ref(ctx.shard.keyspace.db_mut(ctx.db), key, now),
        Ok(Some(_))
    )
}

fn null_array(w: &mut ReplyWriter) {
    w.null_array();
}

fn null(w: &mut ReplyWriter) {
    w.null();
}

/// BLPOP/BRPOP key... timeout.
fn bpop_keys(argv: &[&[u8]]) -> std::ops::Range<usize> {
    1..argv.len() - 1
}

/// BLPOP/BRPOP at one key: `[key, element]`.
fn bpop_take(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> Take {
    let end = end_of(argv[0]);
    let now = ctx.shard.now_ms;
    let f = fill(ctx);
    let proto = ctx.proto;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let l = match list_mut(db, key, now) {
        Err(()) => return Take::WrongType,
        Ok(None) => return Take::Empty,
        Ok(Some(l)) => l,
    };
    let mut out = Vec::new();
    let mut w = ReplyWriter::new(&mut out, proto);
    w.array(2);
    w.bulk(key);
    l.pop_with(end, |v| write_entry(&mut w, v));
    let emptied = drop_if_empty(db, key, now, f);
    notify_pop(ctx, key, end, emptied);
    Take::Served(Partial::Encoded(out))
}

pub static BLPOP_OPS: WaitOps = WaitOps {
    name: "blpop",
    keys: bpop_keys,
    ready: list_ready,
    take: bpop_take,
    timed_out: null_array,
    answer_now: null_array,
    moves: false,
};

pub static BRPOP_OPS: WaitOps = WaitOps {
    name: "brpop",
    ..BLPOP_OPS
};

/// BLPOP key [key ...] timeout, BRPOP key [key ...] timeout.
pub fn bpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let deadline = match blocking::parse_timeout(argv[argv.len() - 1], ctx.shard.now_ms) {
        Ok(d) => d,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    let ops = if end_of(argv[0]) == End::Head {
        &BLPOP_OPS
    } else {
        &BRPOP_OPS
    };
    blocking::start(ctx, argv, ops, deadline)
}

fn bmove_keys(_argv: &[&[u8]]) -> std::ops::Range<usize> {
    1..2
}

/// BLMOVE/BRPOPLPUSH from its source: LMOVE's work (which carries the element to a
/// destination on another shard, and answers WRONGTYPE, the element back in place, when
/// the destination holds another type).
fn bmove_take(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> Take {
    let now = ctx.shard.now_ms;
    match list_ref(ctx.shard.keyspace.db_mut(ctx.db), key, now) {
        Err(()) => Take::WrongType,
        Ok(None) => Take::Empty,
        Ok(Some(_)) => Take::Served(lmove(ctx, argv)),
    }
}

pub static BLMOVE_OPS: WaitOps = WaitOps {
    name: "blmove",
    keys: bmove_keys,
    ready: list_ready,
    take: bmove_take,
    // Redis 7.0 answers a timed-out BLMOVE with a null array, one that cannot block with
    // a null bulk.
    timed_out: null_array,
    answer_now: null,
    moves: true,
};

pub static BRPOPLPUSH_OPS: WaitOps = WaitOps {
    name: "brpoplpush",
    ..BLMOVE_OPS
};

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout, BRPOPLPUSH source
/// destination timeout.
pub fn bmove(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if move_ends(argv).is_none() {
        return reply(ctx, |w| w.error(errors::SYNTAX));
    }
    let deadline = match blocking::parse_timeout(argv[argv.len() - 1], ctx.shard.now_ms) {
        Ok(d) => d,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    let ops = if argv.len() == 6 {
        &BLMOVE_OPS
    } else {
        &BRPOPLPUSH_OPS
    };
    blocking::start(ctx, argv, ops, deadline)
}

fn blmpop_keys(argv: &[&[u8]]) -> std::ops::Range<usize> {
    parse_mpop(argv, 2).map_or(0..0, |(keys, _, _)| keys)
}

fn blmpop_take(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> Take {
    let Ok((_, end, count)) = parse_mpop(argv, 2) else {
        return Take::Empty;
    };
    match mpop_key(ctx, key, end, count) {
        Err(()) => Take::WrongType,
        Ok(None) => Take::Empty,
        Ok(Some(r)) => Take::Served(Partial::Encoded(r)),
    }
}

pub static BLMPOP_OPS: WaitOps = WaitOps {
    name: "blmpop",
    keys: blmpop_keys,
    ready: list_ready,
    take: blmpop_take,
    timed_out: null_array,
    answer_now: null_array,
    moves: false,
};

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
pub fn blmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    // Redis reads numkeys, the keys' end and COUNT before the timeout.
    if let Err(e) = parse_mpop(argv, 2) {
        return reply(ctx, |w| w.error(e));
    }
    let deadline = match blocking::parse_timeout(argv[1], ctx.shard.now_ms) {
        Ok(d) => d,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    blocking::start(ctx, argv, &BLMPOP_OPS, deadline)
}
