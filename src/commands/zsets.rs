//! Sorted-set commands (Redis 7.0 replies and error texts).

#![allow(
    clippy::many_single_char_names,
    clippy::single_match_else,
    clippy::float_cmp,
    reason = "handlers follow Redis's C (w = reply, z/s = value, r = range); scores compare exactly as Redis"
)]

use super::keyspace::reply;
use super::multikey::{self, Keys, Limits, MultiKey, Outcome, Src, encoded};
use super::sets::{MUST_BE_POSITIVE, scan_pages, scan_start};
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::config::Config;
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_engine::glob::string_match;
use percore_engine::hash::random_below;
use percore_engine::value::Value;
use percore_engine::zsets::{LexBound, ScoreBound, ZSetLimits, ZSetValue, parse_score};
use percore_net::resp::{Protocol, ReplyWriter, encode::format_double_g17};

/// The sorted-set encoding limits of the server's configuration.
pub fn zset_limits(cfg: &Config) -> ZSetLimits {
    ZSetLimits {
        max_listpack_entries: cfg.zset_max_listpack_entries,
        max_listpack_value: cfg.zset_max_listpack_value,
    }
}

const NOT_FLOAT: &str = "ERR value is not a valid float";
const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";
const MINMAX_NOT_FLOAT: &str = "ERR min or max is not a float";
const MINMAX_NOT_LEX: &str = "ERR min or max not valid string range item";
const OUT_OF_RANGE: &str = "ERR value is out of range";
const RANGE_LONG: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

/// A sorted-set key for reading, counting the hit or miss. `Err` = wrong type.
pub(crate) fn read_zset<'d>(ctx: &'d mut Ctx, key: &[u8]) -> Result<Option<&'d ZSetValue>, ()> {
    let now = ctx.shard.now_ms;
    let sh = &mut *ctx.shard;
    match sh.keyspace.db_mut(ctx.db).get(key, now) {
        Some(v) => {
            sh.stats.keyspace_hits += 1;
            v.as_zset().map(Some).ok_or(())
        }
        None => {
            sh.stats.keyspace_misses += 1;
            Ok(None)
        }
    }
}

/// Deletes `key` when its sorted set became empty.
/// After `removed` members went from `key` with `event`: deletes the key when its set
/// became empty, and publishes the events (the command's, then "del").
fn removed_from(ctx: &mut Ctx, key: &[u8], removed: usize, event: &str) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let emptied = db
        .get(key, now)
        .and_then(Value::as_zset)
        .is_some_and(ZSetValue::is_empty);
    if emptied {
        db.remove(key, now);
    }
    if removed > 0 {
        ctx.notify(class::ZSET, event, key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
}

/// A score as a bulk string (`%.17g`), whatever the protocol (ZSCAN, RESP2 WITHSCORES).
fn bulk_score(w: &mut ReplyWriter, s: f64) {
    let mut buf = Vec::with_capacity(24);
    format_double_g17(s, &mut buf);
    w.bulk(&buf);
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY

#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

pub fn zadd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if eq_ic(a, "nx") {
            f.nx = true;
        } else if eq_ic(a, "xx") {
            f.xx = true;
        } else if eq_ic(a, "gt") {
            f.gt = true;
        } else if eq_ic(a, "lt") {
            f.lt = true;
        } else if eq_ic(a, "ch") {
            f.ch = true;
        } else if eq_ic(a, "incr") {
            f.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = &argv[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return w.error(errors::SYNTAX);
    }
    if f.nx && f.xx {
        return w.error("ERR XX and NX options at the same time are not compatible");
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return w.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && pairs.len() > 2 {
        return w.error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks_exact(2) {
        match parse_score(p[0]) {
            Some(s) => scores.push(s),
            None => return w.error(NOT_FLOAT),
        }
    }
    zadd_generic(ctx, argv[1], pairs, &scores, &f, w);
}

fn zadd_generic(
    ctx: &mut Ctx,
    key: &[u8],
    pairs: &[&[u8]],
    scores: &[f64],
    f: &AddFlags,
    w: &mut ReplyWriter,
) {
    let limits = zset_limits(&ctx.shard.cfg);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    // One lookup for an existing key; a new one is built aside and stored once.
    let result = if let Some(v) = db.get_mut(key, now) {
        let Value::ZSet(z) = v else {
            return w.error(errors::WRONGTYPE);
        };
        zadd_apply(z, pairs, scores, f, &limits)
    } else {
        if f.xx {
            return if f.incr { w.null() } else { w.int(0) };
        }
        let longest = pairs.chunks_exact(2).map(|p| p[1].len()).max().unwrap_or(0);
        let mut z = if pairs.len() / 2 <= limits.max_listpack_entries
            && longest <= limits.max_listpack_value
        {
            ZSetValue::new_for(0, &limits)
        } else {
            ZSetValue::new_for(usize::MAX, &limits)
        };
        let result = zadd_apply(&mut z, pairs, scores, f, &limits);
        if !z.is_empty() {
            db.set(key, Value::ZSet(z), SetExpire::Clear, now);
        }
        result
    };
    if let Ok((added, updated, _)) = result
        && added + updated > 0
    {
        ctx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    match result {
        Err(()) => w.error(NAN_SCORE),
        Ok((_, _, incr_result)) if f.incr => match incr_result {
            Some(s) => w.double(s),
            None => w.null(),
        },
        Ok((added, updated, _)) => w.int(if f.ch { added + updated } else { added }),
    }
}

/// ZADD's per-pair rules on `z`: `(added, updated, the last new score)`, or `Err` when
/// INCR makes a NaN (Redis stops there).
fn zadd_apply(
    z: &mut ZSetValue,
    pairs: &[&[u8]],
    scores: &[f64],
    f: &AddFlags,
    limits: &ZSetLimits,
) -> Result<(i64, i64, Option<f64>), ()> {
    let (mut added, mut updated) = (0, 0);
    let mut incr_result = None;
    for (p, &score) in pairs.chunks_exact(2).zip(scores) {
        let m = p[1];
        let mut new = score;
        match z.score(m) {
            Some(c) => {
                if f.nx {
                    continue;
                }
                if f.incr {
                    new = c + score;
                    if new.is_nan() {
                        return Err(());
                    }
                }
                if (f.lt && new >= c) || (f.gt && new <= c) {
                    continue;
                }
                incr_result = Some(new);
                if new != c {
                    z.insert(m, new, limits);
                    updated += 1;
                }
            }
            None => {
                if f.xx {
                    continue;
                }
                z.insert(m, new, limits);
                added += 1;
                incr_result = Some(new);
            }
        }
    }
    Ok((added, updated, incr_result))
}

pub fn zincrby(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(score) = parse_score(argv[2]) else {
        return w.error(NOT_FLOAT);
    };
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(ctx, argv[1], &[argv[2], argv[3]], &[score], &f, w);
}

// ---------------------------------------------------------------------------------------
// ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT

pub fn zrem(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let n = match db.get_mut(argv[1], now) {
        Some(Value::ZSet(z)) => argv[2..].iter().filter(|m| z.remove(m)).count(),
        Some(_) => return w.error(errors::WRONGTYPE),
        None => 0,
    };
    removed_from(ctx, argv[1], n, "zrem");
    w.int(n as i64);
}

pub fn zcard(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_zset(ctx, argv[1]) {
        Ok(z) => w.int(z.map_or(0, ZSetValue::len) as i64),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn zscore(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_zset(ctx, argv[1]) {
        Ok(z) => match z.and_then(|z| z.score(argv[2])) {
            Some(s) => w.double(s),
            None => w.null(),
        },
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn zmscore(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match read_zset(ctx, argv[1]) {
        Ok(z) => {
            w.array(argv.len() - 2);
            for m in &argv[2..] {
                match z.and_then(|z| z.score(m)) {
                    Some(s) => w.double(s),
                    None => w.null(),
                }
            }
        }
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// ZRANK/ZREVRANK key member [WITHSCORE]: WITHSCORE is Redis 7.2's (and Valkey's)
/// option, an addition a 7.0 client never sends; with it a missing member is a null array.
fn rank_generic(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, rev: bool) {
    if argv.len() > 4 {
        return super::wrong_arity(if rev { "zrevrank" } else { "zrank" }, w);
    }
    let with_score = argv.len() == 4;
    if with_score && !argv[3].eq_ignore_ascii_case(b"withscore") {
        return w.error(errors::SYNTAX);
    }
    match read_zset(ctx, argv[1]) {
        Ok(z) => match z.and_then(|z| {
            let r = z.rank(argv[2])?;
            Some((r, z.len(), with_score.then(|| z.score(argv[2])).flatten()))
        }) {
            Some((r, n, score)) => {
                let rank = if rev { n - 1 - r } else { r } as i64;
                if let Some(score) = score {
                    w.array(2);
                    w.int(rank);
                    w.double(score);
                } else {
                    w.int(rank);
                }
            }
            None if with_score => w.null_array(),
            None => w.null(),
        },
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn zrank(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    rank_generic(ctx, argv, w, false);
}

pub fn zrevrank(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    rank_generic(ctx, argv, w, true);
}

/// Redis's `zslParseRange` item: `(` for exclusive, then a `strtod` float.
fn parse_score_bound(a: &[u8]) -> Option<ScoreBound> {
    let (exclusive, text) = match a.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, a),
    };
    let value = parse_score(text).filter(|v| !v.is_nan())?;
    Some(ScoreBound { value, exclusive })
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Option<(ScoreBound, ScoreBound)> {
    Some((parse_score_bound(min)?, parse_score_bound(max)?))
}

pub fn zcount(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some((min, max)) = parse_score_range(argv[2], argv[3]) else {
        return w.error(MINMAX_NOT_FLOAT);
    };
    match read_zset(ctx, argv[1]) {
        Ok(z) => {
            let n = z.map_or(0, |z| {
                let (a, b) = z.score_range(min, max);
                b - a
            });
            w.int(n as i64);
        }
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn zlexcount(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (Some(min), Some(max)) = (LexBound::parse(argv[2]), LexBound::parse(argv[3])) else {
        return w.error(MINMAX_NOT_LEX);
    };
    match read_zset(ctx, argv[1]) {
        Ok(z) => {
            let n = z.map_or(0, |z| {
                let (a, b) = z.lex_range(min, max, false);
                b - a
            });
            w.int(n as i64);
        }
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

// ---------------------------------------------------------------------------------------
// ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Rank,
    Score,
    Lex,
}

/// A parsed ZRANGE-family request.
struct RangeReq<'a> {
    kind: RangeType,
    rev: bool,
    withscores: bool,
    /// `(offset, count)`; count < 0 = all.
    limit: Option<(i64, i64)>,
    min: &'a [u8],
    max: &'a [u8],
}

/// Redis's `zrangeGenericCommand` option parsing. `args` = `[key, min, max, opts...]`.
fn parse_range<'a>(
    args: &[&'a [u8]],
    kind: Option<RangeType>,
    rev: bool,
    store: bool,
) -> Result<RangeReq<'a>, &'static str> {
    let mut r = RangeReq {
        kind: kind.unwrap_or(RangeType::Rank),
        rev,
        withscores: false,
        limit: None,
        min: args[1],
        max: args[2],
    };
    let flags_ok = kind.is_none();
    let mut j = 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = args[j];
        if !store && eq_ic(a, "withscores") {
            r.withscores = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            let (Some(o), Some(c)) = (parse_i64(args[j + 1]), parse_i64(args[j + 2])) else {
                return Err(errors::NOT_INTEGER);
            };
            r.limit = Some((o, c));
            j += 2;
        } else if flags_ok && eq_ic(a, "rev") {
            r.rev = true;
        } else if flags_ok && eq_ic(a, "bylex") {
            r.kind = RangeType::Lex;
        } else if flags_ok && eq_ic(a, "byscore") {
            r.kind = RangeType::Score;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    // Redis tests `opt_limit != -1`: `LIMIT x -1` passes with a rank range.
    if r.limit.is_some_and(|(_, c)| c != -1) && r.kind == RangeType::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if r.withscores && r.kind == RangeType::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    if r.rev && r.kind != RangeType::Rank {
        std::mem::swap(&mut r.min, &mut r.max);
    }
    Ok(r)
}

/// Selected ranks of a range request: `(start, end, rev)` over ascending ranks, where
/// a reverse range walks `end-1` down to `start`. `Err` = a parse error reply.
fn select(z: Option<&ZSetValue>, r: &RangeReq) -> Result<(usize, usize), &'static str> {
    match r.kind {
        RangeType::Rank => {
            let (Some(mut start), Some(mut end)) = (parse_i64(r.min), parse_i64(r.max)) else {
                return Err(errors::NOT_INTEGER);
            };
            let Some(z) = z else { return Ok((0, 0)) };
            let len = z.len() as i64;
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            start = start.max(0);
            if start > end || start >= len {
                return Ok((0, 0));
            }
            end = end.min(len - 1);
            // Ranks counted from the requested direction's start.
            let (s, e) = (start as usize, end as usize + 1);
            Ok(if r.rev {
                (len as usize - e, len as usize - s)
            } else {
                (s, e)
            })
        }
        RangeType::Score => {
            let Some((min, max)) = parse_score_range(r.min, r.max) else {
                return Err(MINMAX_NOT_FLOAT);
            };
            Ok(z.map_or((0, 0), |z| apply_limit(z.score_range(min, max), r)))
        }
        RangeType::Lex => {
            let (Some(min), Some(max)) = (LexBound::parse(r.min), LexBound::parse(r.max)) else {
                return Err(MINMAX_NOT_LEX);
            };
            Ok(z.map_or((0, 0), |z| apply_limit(z.lex_range(min, max, r.rev), r)))
        }
    }
}

/// Applies LIMIT offset count to ranks `a..b` in the request's direction.
fn apply_limit((a, b): (usize, usize), r: &RangeReq) -> (usize, usize) {
    let Some((offset, count)) = r.limit else {
        return (a, b);
    };
    if offset < 0 {
        return (a, a);
    }
    let n = b - a;
    let offset = (offset as u64).min(n as u64) as usize;
    let take = if count < 0 {
        n - offset
    } else {
        (count as u64).min((n - offset) as u64) as usize
    };
    if r.rev {
        (b - offset - take, b - offset)
    } else {
        (a + offset, a + offset + take)
    }
}

/// Writes entries as ZRANGE does: members, or member/score pairs (RESP3: nested).
fn write_entries(w: &mut ReplyWriter, entries: &[(f64, &[u8])], withscores: bool) {
    let resp3 = w.proto == Protocol::Resp3;
    if withscores && !resp3 {
        w.array(entries.len() * 2);
    } else {
        w.array(entries.len());
    }
    for (s, m) in entries {
        if withscores && resp3 {
            w.array(2);
            w.bulk(m);
            w.double(*s);
        } else {
            w.bulk(m);
            if withscores {
                bulk_score(w, *s);
            }
        }
    }
}

fn range_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    w: &mut ReplyWriter,
    kind: Option<RangeType>,
    rev: bool,
) {
    let r = match parse_range(&argv[1..], kind, rev, false) {
        Ok(r) => r,
        Err(e) => return w.error(e),
    };
    // The range is parsed before the key is looked up.
    if let Err(e) = select(None, &r) {
        return w.error(e);
    }
    let Ok(z) = read_zset(ctx, argv[1]) else {
        return w.error(errors::WRONGTYPE);
    };
    let Some(z) = z else {
        return w.array(0);
    };
    let Ok((a, b)) = select(Some(z), &r) else {
        unreachable!("parsed above");
    };
    let mut entries = Vec::with_capacity(b - a);
    z.for_ranks(a, b, r.rev, |s, m| entries.push((s, m)));
    write_entries(w, &entries, r.withscores);
}

pub fn zrange(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    range_generic(ctx, argv, w, None, false);
}
pub fn zrevrange(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    range_generic(ctx, argv, w, Some(RangeType::Rank), true);
}
pub fn zrangebyscore(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    range_generic(ctx, argv, w, Some(RangeType::Score), false);
}
pub fn zrevrangebyscore(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    range_generic(ctx, argv, w, Some(RangeType::Score), true);
}
pub fn zrangebylex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    range_generic(ctx, argv, w, Some(RangeType::Lex), false);
}
pub fn zrevrangebylex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    range_generic(ctx, argv, w, Some(RangeType::Lex), true);
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
pub struct ZRangeStore;
impl MultiKey for ZRangeStore {
    fn keys(argv: &[&[u8]]) -> Result<Keys, String> {
        let r = parse_range(&argv[2..], None, false, true).map_err(str::to_string)?;
        select(None, &r).map_err(str::to_string)?;
        Ok(Keys {
            sources: vec![2],
            dest: Some(1),
        })
    }

    fn compute(proto: Protocol, argv: &[&[u8]], srcs: &[Src<'_>], limits: &Limits) -> Outcome {
        let z = match srcs[0] {
            Src::ZSet(z) => Some(z),
            Src::Missing => None,
            Src::Set(_) | Src::WrongType => {
                return Outcome::Reply(encoded(proto, |w| w.error(errors::WRONGTYPE)));
            }
        };
        let Ok(r) = parse_range(&argv[2..], None, false, true) else {
            unreachable!("checked by keys");
        };
        let Ok((a, b)) = select(z, &r) else {
            unreachable!("checked by keys");
        };
        let mut entries = Vec::with_capacity(b - a);
        if let Some(z) = z {
            z.for_ranks(a, b, false, |s, m| entries.push((s, m.to_vec())));
        }
        let n = entries.len() as i64;
        let value = (!entries.is_empty())
            .then(|| Value::ZSet(ZSetValue::from_entries(entries, &limits.zset)));
        Outcome::Store {
            value,
            reply: encoded(proto, |w| w.int(n)),
        }
    }
}

pub fn zrangestore(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<ZRangeStore>(ctx, argv)
}

// ---------------------------------------------------------------------------------------
// ZREMRANGEBY*

fn remrange_generic(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, kind: RangeType) {
    let r = RangeReq {
        kind,
        rev: false,
        withscores: false,
        limit: None,
        min: argv[2],
        max: argv[3],
    };
    if let Err(e) = select(None, &r) {
        return w.error(e);
    }
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let n = match db.get_mut(argv[1], now) {
        Some(Value::ZSet(z)) => {
            let Ok((a, b)) = select(Some(z), &r) else {
                unreachable!("parsed above");
            };
            z.remove_ranks(a, b)
        }
        Some(_) => return w.error(errors::WRONGTYPE),
        None => 0,
    };
    let event = match kind {
        RangeType::Rank => "zremrangebyrank",
        RangeType::Score => "zremrangebyscore",
        RangeType::Lex => "zremrangebylex",
    };
    removed_from(ctx, argv[1], n, event);
    w.int(n as i64);
}

pub fn zremrangebyrank(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    remrange_generic(ctx, argv, w, RangeType::Rank);
}
pub fn zremrangebyscore(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    remrange_generic(ctx, argv, w, RangeType::Score);
}
pub fn zremrangebylex(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    remrange_generic(ctx, argv, w, RangeType::Lex);
}

// ---------------------------------------------------------------------------------------
// ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER

/// Pops up to `count` entries of `key` (deleting it when emptied).
fn pop_entries(ctx: &mut Ctx, key: &[u8], max: bool, count: usize) -> Vec<(f64, Vec<u8>)> {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let mut out = Vec::new();
    let mut emptied = false;
    if let Some(Value::ZSet(z)) = db.get_mut(key, now) {
        for _ in 0..count {
            match z.pop(max) {
                Some(e) => out.push(e),
                None => break,
            }
        }
        emptied = z.is_empty();
    }
    if emptied {
        db.remove(key, now);
    }
    if !out.is_empty() {
        ctx.notify(class::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
        if emptied {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    out
}

fn write_pairs(w: &mut ReplyWriter, entries: &[(f64, Vec<u8>)], nested: bool) {
    if nested {
        w.array(entries.len());
        for (s, m) in entries {
            w.array(2);
            w.bulk(m);
            w.double(*s);
        }
    } else {
        w.array(entries.len() * 2);
        for (s, m) in entries {
            w.bulk(m);
            w.double(*s);
        }
    }
}

fn pop_generic(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, max: bool) {
    if argv.len() > 3 {
        return w.error(errors::SYNTAX);
    }
    let count = if argv.len() == 3 {
        match parse_i64(argv[2]) {
            Some(c) if c >= 0 => Some(c as usize),
            _ => return w.error(MUST_BE_POSITIVE),
        }
    } else {
        None
    };
    let now = ctx.shard.now_ms;
    match ctx.shard.keyspace.db_mut(ctx.db).get_mut(argv[1], now) {
        Some(Value::ZSet(_)) => {}
        Some(_) => return w.error(errors::WRONGTYPE),
        None => return w.array(0),
    }
    let entries = pop_entries(ctx, argv[1], max, count.unwrap_or(1));
    let nested = count.is_some() && w.proto == Protocol::Resp3;
    write_pairs(w, &entries, nested);
}

pub fn zpopmin(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    pop_generic(ctx, argv, w, false);
}
pub fn zpopmax(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    pop_generic(ctx, argv, w, true);
}

/// ZMPOP numkeys key... MIN|MAX [COUNT count]: `(keys, max, count)`.
fn parse_mpop<'a>(
    argv: &[&'a [u8]],
    at: usize,
) -> Result<(Vec<&'a [u8]>, bool, usize), &'static str> {
    let n = match parse_i64(argv[at]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err("ERR numkeys should be greater than 0"),
    };
    if n > argv.len() - at - 1 {
        return Err(errors::SYNTAX);
    }
    let keys = argv[at + 1..at + 1 + n].to_vec();
    let mut j = at + 1 + n;
    let Some(&dir) = argv.get(j) else {
        return Err(errors::SYNTAX);
    };
    let max = if eq_ic(dir, "max") {
        true
    } else if eq_ic(dir, "min") {
        false
    } else {
        return Err(errors::SYNTAX);
    };
    j += 1;
    let mut count = None;
    while j < argv.len() {
        if count.is_none() && eq_ic(argv[j], "count") && j + 1 < argv.len() {
            match parse_i64(argv[j + 1]) {
                Some(c) if c > 0 => count = Some(c as usize),
                _ => return Err("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok((keys, max, count.unwrap_or(1)))
}

/// ZMPOP: every key must live on one shard (a CROSSSLOT-like error otherwise, as in
/// cluster mode); keys are tried in order.
pub fn zmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let (keys, max, count) = match parse_mpop(argv, 1) {
        Ok(x) => x,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    let owner = ctx.shard.owner(keys[0]);
    if keys.iter().any(|k| ctx.shard.owner(k) != owner) {
        return reply(ctx, |w| {
            w.error("CROSSSLOT Keys in request don't hash to the same slot");
        });
    }
    if owner != ctx.shard.id {
        return super::keyspace::hop(owner, zmpop, argv.iter().copied());
    }
    for k in keys {
        match read_zset(ctx, k) {
            Ok(Some(_)) => {
                let entries = pop_entries(ctx, k, max, count);
                return reply(ctx, |w| {
                    w.array(2);
                    w.bulk(k);
                    write_pairs(w, &entries, true);
                });
            }
            Ok(None) => {}
            Err(()) => return reply(ctx, |w| w.error(errors::WRONGTYPE)),
        }
    }
    #[allow(
        clippy::redundant_closure_for_method_calls,
        reason = "the method's lifetime is too narrow for `reply`"
    )]
    reply(ctx, |w| w.null_array())
}

pub fn zrandmember(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() > 4 || (argv.len() == 4 && !eq_ic(argv[3], "withscores")) {
        return w.error(errors::SYNTAX);
    }
    let withscores = argv.len() == 4;
    let count = if argv.len() >= 3 {
        match parse_i64(argv[2]) {
            Some(c) if c != i64::MIN => {
                if withscores && c < -(i64::MAX / 2) {
                    return w.error(OUT_OF_RANGE);
                }
                Some(c)
            }
            Some(_) => return w.error(RANGE_LONG),
            None => return w.error(errors::NOT_INTEGER),
        }
    } else {
        None
    };
    let mut rng = ctx.shard.rng;
    let Ok(z) = read_zset(ctx, argv[1]) else {
        return w.error(errors::WRONGTYPE);
    };
    let mut picked: Vec<(f64, &[u8])> = Vec::new();
    match (count, z) {
        (None, None) => return w.null(),
        (None, Some(z)) => {
            if let Some((_, m)) = z.random(&mut rng) {
                w.bulk(m);
            } else {
                w.null();
            }
            ctx.shard.rng = rng;
            return;
        }
        (Some(_), None) | (Some(0), _) => return w.array(0),
        (Some(c), Some(z)) if c < 0 => {
            for _ in 0..c.unsigned_abs() {
                if let Some(e) = z.random(&mut rng) {
                    picked.push(e);
                }
            }
        }
        (Some(c), Some(z)) => {
            let n = (c as usize).min(z.len());
            let mut idx: Vec<usize> = (0..z.len()).collect();
            for i in 0..n {
                let j = i + random_below(&mut rng, z.len() - i);
                idx.swap(i, j);
            }
            picked.extend(idx[..n].iter().map(|&i| z.at(i)));
        }
    }
    write_entries(w, &picked, withscores);
    ctx.shard.rng = rng;
}

// ---------------------------------------------------------------------------------------
// ZSCAN

pub fn zscan(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some((cursor, o, z)) = scan_start(ctx, argv, w, Value::as_zset, Some("NOSCORES")) else {
        return;
    };
    let mut found: Vec<(f64, Vec<u8>)> = Vec::new();
    let next = scan_pages(cursor, o.count, |c, seen| {
        z.scan(c, |s, m| {
            *seen += 1;
            if o.pattern.is_none_or(|p| string_match(p, m, false)) {
                found.push((s, m.to_vec()));
            }
        })
    });
    w.array(2);
    w.bulk(next.to_string().as_bytes());
    w.array(found.len() * if o.only_keys { 1 } else { 2 });
    for (s, m) in &found {
        w.bulk(m);
        if !o.only_keys {
            bulk_score(w, *s);
        }
    }
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum ZOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(a: Aggregate, target: &mut f64, v: f64) {
    match a {
        Aggregate::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *target {
                *target = v;
            }
        }
        Aggregate::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

/// Parsed ZUNION/ZINTER/ZDIFF/ZINTERCARD options.
struct ZOpts {
    weights: Vec<f64>,
    agg: Aggregate,
    withscores: bool,
    limit: usize,
}

/// The command's shape: `(op, store, cardinality only)` by name.
fn zop_of(name: &[u8]) -> (ZOp, bool, bool) {
    let lower = name.to_ascii_lowercase();
    match &lower[..] {
        b"zunion" => (ZOp::Union, false, false),
        b"zinter" => (ZOp::Inter, false, false),
        b"zdiff" => (ZOp::Diff, false, false),
        b"zunionstore" => (ZOp::Union, true, false),
        b"zinterstore" => (ZOp::Inter, true, false),
        b"zdiffstore" => (ZOp::Diff, true, false),
        _ => (ZOp::Inter, false, true),
    }
}

/// numkeys (after the destination for STORE forms).
fn zop_numkeys(argv: &[&[u8]], at: usize) -> Result<usize, String> {
    let n = parse_i64(argv[at]).ok_or_else(|| errors::NOT_INTEGER.to_string())?;
    if n < 1 {
        return Err(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(argv[0]).to_ascii_lowercase()
        ));
    }
    if n as u64 > (argv.len() - at - 1) as u64 {
        return Err(errors::SYNTAX.to_string());
    }
    Ok(n as usize)
}

fn parse_zopts(
    argv: &[&[u8]],
    mut j: usize,
    n: usize,
    op: ZOp,
    store: bool,
    card: bool,
) -> Result<ZOpts, &'static str> {
    let mut o = ZOpts {
        weights: vec![1.0; n],
        agg: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    while j < argv.len() {
        let remaining = argv.len() - j;
        let a = argv[j];
        if op != ZOp::Diff && !card && remaining > n && eq_ic(a, "weights") {
            for i in 0..n {
                o.weights[i] =
                    parse_score(argv[j + 1 + i]).ok_or("ERR weight value is not a float")?;
            }
            j += 1 + n;
        } else if op != ZOp::Diff && !card && remaining >= 2 && eq_ic(a, "aggregate") {
            let v = argv[j + 1];
            o.agg = if eq_ic(v, "sum") {
                Aggregate::Sum
            } else if eq_ic(v, "min") {
                Aggregate::Min
            } else if eq_ic(v, "max") {
                Aggregate::Max
            } else {
                return Err(errors::SYNTAX);
            };
            j += 2;
        } else if !store && !card && eq_ic(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && eq_ic(a, "limit") {
            match parse_i64(argv[j + 1]) {
                Some(l) if l >= 0 => o.limit = l as usize,
                _ => return Err("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok(o)
}

/// A source's entries with scores (a set's members score 1).
fn src_entries(src: &Src<'_>) -> Vec<(f64, Vec<u8>)> {
    match src {
        Src::ZSet(z) => z.entries(),
        Src::Set(s) => {
            let mut v = Vec::with_capacity(s.len());
            s.for_each(|m| v.push((1.0, m.to_vec())));
            v
        }
        Src::Missing | Src::WrongType => Vec::new(),
    }
}

fn src_len(src: &Src<'_>) -> usize {
    match src {
        Src::ZSet(z) => z.len(),
        Src::Set(s) => s.len(),
        Src::Missing | Src::WrongType => 0,
    }
}

fn src_score(src: &Src<'_>, m: &[u8]) -> Option<f64> {
    match src {
        Src::ZSet(z) => z.score(m),
        Src::Set(s) => s.contains(m).then_some(1.0),
        Src::Missing | Src::WrongType => None,
    }
}

fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() { 0.0 } else { v }
}

/// The result entries of a ZUNION/ZINTER/ZDIFF (unsorted).
fn zop_compute(op: ZOp, srcs: &[Src<'_>], o: &ZOpts) -> Vec<(f64, Vec<u8>)> {
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    if op != ZOp::Diff {
        order.sort_by_key(|&i| src_len(&srcs[i]));
    }
    let mut out = Vec::new();
    match op {
        ZOp::Inter => {
            if order.iter().any(|&i| src_len(&srcs[i]) == 0) {
                return out;
            }
            let first = order[0];
            for (s, m) in src_entries(&srcs[first]) {
                let mut score = weighted(s, o.weights[first]);
                let mut all = true;
                for &i in &order[1..] {
                    // As Redis: only the first source's weighted score has NaN made 0;
                    // SUM turns a NaN total into 0.
                    match src_score(&srcs[i], &m) {
                        Some(v) => aggregate(o.agg, &mut score, v * o.weights[i]),
                        None => {
                            all = false;
                            break;
                        }
                    }
                }
                if all {
                    out.push((score, m));
                    if o.limit != 0 && out.len() >= o.limit {
                        break;
                    }
                }
            }
        }
        ZOp::Union => {
            let mut at: std::collections::HashMap<Vec<u8>, usize> =
                std::collections::HashMap::new();
            for &i in &order {
                for (s, m) in src_entries(&srcs[i]) {
                    let v = weighted(s, o.weights[i]);
                    match at.get(&m) {
                        Some(&k) => aggregate(o.agg, &mut out[k].0, v),
                        None => {
                            at.insert(m.clone(), out.len());
                            out.push((v, m));
                        }
                    }
                }
            }
        }
        ZOp::Diff => {
            for (s, m) in src_entries(&srcs[0]) {
                if !srcs[1..].iter().any(|x| src_score(x, &m).is_some()) {
                    out.push((s, m));
                }
            }
        }
    }
    out
}

/// ZUNION/ZINTER/ZDIFF[STORE] and ZINTERCARD.
pub struct ZSetOp;
impl MultiKey for ZSetOp {
    fn keys(argv: &[&[u8]]) -> Result<Keys, String> {
        let (_, store, _) = zop_of(argv[0]);
        let at = if store { 2 } else { 1 };
        let n = zop_numkeys(argv, at)?;
        Ok(Keys {
            sources: (at + 1..at + 1 + n).collect(),
            dest: store.then_some(1),
        })
    }

    fn compute(proto: Protocol, argv: &[&[u8]], srcs: &[Src<'_>], limits: &Limits) -> Outcome {
        let err = |e: &str| Outcome::Reply(encoded(proto, |w| w.error(e)));
        if srcs.iter().any(|s| matches!(s, Src::WrongType)) {
            return err(errors::WRONGTYPE);
        }
        let (op, store, card) = zop_of(argv[0]);
        let at = if store { 2 } else { 1 };
        let o = match parse_zopts(argv, at + 1 + srcs.len(), srcs.len(), op, store, card) {
            Ok(o) => o,
            Err(e) => return err(e),
        };
        let mut entries = zop_compute(op, srcs, &o);
        if card {
            let n = entries.len() as i64;
            return Outcome::Reply(encoded(proto, |w| w.int(n)));
        }
        if store {
            let n = entries.len() as i64;
            let value = (!entries.is_empty())
                .then(|| Value::ZSet(ZSetValue::from_entries(entries, &limits.zset)));
            return Outcome::Store {
                value,
                reply: encoded(proto, |w| w.int(n)),
            };
        }
        entries.sort_by(|(a, am), (b, bm)| {
            a.partial_cmp(b)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| am.cmp(bm))
        });
        let refs: Vec<(f64, &[u8])> = entries.iter().map(|(s, m)| (*s, &m[..])).collect();
        Outcome::Reply(encoded(proto, |w| write_entries(w, &refs, o.withscores)))
    }
}

pub fn zsetop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    multikey::start::<ZSetOp>(ctx, argv)
}

// ---------------------------------------------------------------------------------------
// BZPOPMIN, BZPOPMAX, BZMPOP (the waiting is `crate::blocking`'s)

use crate::blocking::{self, Take, WaitOps};

fn zset_ready(ctx: &mut Ctx, key: &[u8], _argv: &[&[u8]]) -> bool {
    let now = ctx.shard.now_ms;
    matches!(
        ctx.shard.keyspace.db_mut(ctx.db).get(key, now),
        Some(Value::ZSet(_))
    )
}

/// Whether the zset at `key` exists (`Ok(true)`), is absent, or is another type.
fn zset_state(ctx: &mut Ctx, key: &[u8]) -> Result<bool, ()> {
    let now = ctx.shard.now_ms;
    match ctx.shard.keyspace.db_mut(ctx.db).get(key, now) {
        None => Ok(false),
        Some(Value::ZSet(_)) => Ok(true),
        Some(_) => Err(()),
    }
}

fn null_array(w: &mut ReplyWriter) {
    w.null_array();
}

fn bzpop_keys(argv: &[&[u8]]) -> std::ops::Range<usize> {
    1..argv.len() - 1
}

/// BZPOPMIN/BZPOPMAX at one key: `[key, member, score]`.
fn bzpop_take(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> Take {
    match zset_state(ctx, key) {
        Err(()) => return Take::WrongType,
        Ok(false) => return Take::Empty,
        Ok(true) => {}
    }
    let max = eq_ic(argv[0], "bzpopmax");
    let entries = pop_entries(ctx, key, max, 1);
    Take::Served(reply(ctx, |w| {
        w.array(1 + entries.len() * 2);
        w.bulk(key);
        for (s, m) in &entries {
            w.bulk(m);
            w.double(*s);
        }
    }))
}

pub static BZPOPMIN_OPS: WaitOps = WaitOps {
    name: "bzpopmin",
    keys: bzpop_keys,
    ready: zset_ready,
    take: bzpop_take,
    timed_out: null_array,
    answer_now: null_array,
    moves: false,
};

pub static BZPOPMAX_OPS: WaitOps = WaitOps {
    name: "bzpopmax",
    ..BZPOPMIN_OPS
};

/// BZPOPMIN key [key ...] timeout, BZPOPMAX key [key ...] timeout.
pub fn bzpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let deadline = match blocking::parse_timeout(argv[argv.len() - 1], ctx.shard.now_ms) {
        Ok(d) => d,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    let ops = if eq_ic(argv[0], "bzpopmax") {
        &BZPOPMAX_OPS
    } else {
        &BZPOPMIN_OPS
    };
    blocking::start(ctx, argv, ops, deadline)
}

fn bzmpop_keys(argv: &[&[u8]]) -> std::ops::Range<usize> {
    parse_mpop(argv, 2).map_or(0..0, |(keys, _, _)| 3..3 + keys.len())
}

/// BZMPOP at one key: `[key, [[member, score], ...]]`.
fn bzmpop_take(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> Take {
    let Ok((_, max, count)) = parse_mpop(argv, 2) else {
        return Take::Empty;
    };
    match zset_state(ctx, key) {
        Err(()) => return Take::WrongType,
        Ok(false) => return Take::Empty,
        Ok(true) => {}
    }
    let entries = pop_entries(ctx, key, max, count);
    Take::Served(reply(ctx, |w| {
        w.array(2);
        w.bulk(key);
        write_pairs(w, &entries, true);
    }))
}

pub static BZMPOP_OPS: WaitOps = WaitOps {
    name: "bzmpop",
    keys: bzmpop_keys,
    ready: zset_ready,
    take: bzmpop_take,
    timed_out: null_array,
    answer_now: null_array,
    moves: false,
};

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: the keys in order, each on
/// its own shard.
pub fn bzmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    // Redis reads numkeys, the keys' end and COUNT before the timeout.
    if let Err(e) = parse_mpop(argv, 2) {
        return reply(ctx, |w| w.error(e));
    }
    let deadline = match blocking::parse_timeout(argv[1], ctx.shard.now_ms) {
        Ok(d) => d,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    blocking::start(ctx, argv, &BZMPOP_OPS, deadline)
}
