//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS
//! HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, with Redis 7.0's replies and errors.

#![allow(
    clippy::many_single_char_names,
    reason = "w (the reply writer), h/l (the value), k/v follow the other handler files"
)]

use super::lists::write_entry;
use super::{Ctx, eq_ic, errors, parse_i64};
use crate::notify::class;
use percore_engine::db::Db;
use percore_engine::glob::string_match;
use percore_engine::hashes::{Hash, HashLimits};
use percore_engine::number::{format_incrbyfloat, parse_f64};
use percore_engine::value::Value;
use percore_net::resp::ReplyWriter;

const NOT_INTEGER_HASH: &str = "ERR hash value is not an integer";
const NOT_FLOAT_HASH: &str = "ERR hash value is not a float";
const OVERFLOW: &str = "ERR increment or decrement would overflow";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const NAN_OR_INF: &str = "ERR value is NaN or Infinity";
const PRODUCES_NAN: &str = "ERR increment would produce NaN or Infinity";
const LONG_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// HRANDFIELD with a negative count picks with repeats; Redis refuses counts whose reply
/// would not fit (`-LONG_MAX/2` with WITHVALUES).
const HRANDFIELD_WITHVALUES_MIN: i64 = -(i64::MAX / 2);

fn limits(ctx: &Ctx) -> HashLimits {
    HashLimits {
        max_listpack_entries: usize::try_from(ctx.shard.cfg.hash_max_listpack_entries)
            .unwrap_or(usize::MAX),
        max_listpack_value: usize::try_from(ctx.shard.cfg.hash_max_listpack_value)
            .unwrap_or(usize::MAX),
    }
}

fn hash_mut<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<Option<&'d mut Hash>, ()> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(()),
    }
}

fn hash_ref<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<Option<&'d Hash>, ()> {
    hash_mut(db, key, now).map(|o| o.map(|h| &*h))
}

/// The hash at `key`, created empty when absent; `Err` on a wrong type.
fn hash_or_create<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<&'d mut Hash, ()> {
    match db.get_mut_or_insert_with(key, now, || Value::Hash(Hash::default())) {
        (Value::Hash(h), _) => Ok(h),
        _ => Err(()),
    }
}

fn drop_if_empty(db: &mut Db, key: &[u8], now: i64) -> bool {
    if matches!(db.get(key, now), Some(Value::Hash(h)) if h.is_empty()) {
        db.remove(key, now);
        return true;
    }
    false
}

/// HSET key field value [field value ...] (HMSET replies OK).
pub fn hset(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let hmset = argv[0].len() == 5;
    if argv.len() % 2 == 1 {
        return super::wrong_arity(if hmset { "hmset" } else { "hset" }, w);
    }
    let lim = limits(ctx);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Ok(h) = hash_or_create(db, argv[1], now) else {
        return w.error(errors::WRONGTYPE);
    };
    let mut created = 0;
    for pair in argv[2..].chunks_exact(2) {
        created += i64::from(h.set(pair[0], pair[1], lim));
    }
    if hmset {
        w.ok();
    } else {
        w.int(created);
    }
    ctx.notify(class::HASH, "hset", argv[1]);
}

pub fn hsetnx(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let lim = limits(ctx);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Ok(h) = hash_or_create(db, argv[1], now) else {
        return w.error(errors::WRONGTYPE);
    };
    if h.contains(argv[2]) {
        w.int(0);
    } else {
        h.set(argv[2], argv[3], lim);
        w.int(1);
        ctx.notify(class::HASH, "hset", argv[1]);
    }
}

pub fn hget(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(h) => match h.and_then(|h| h.get(argv[2])) {
            Some(v) => write_entry(w, v),
            None => w.null(),
        },
    }
}

pub fn hmget(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(h) => {
            w.array(argv.len() - 2);
            for f in &argv[2..] {
                match h.and_then(|h| h.get(f)) {
                    Some(v) => write_entry(w, v),
                    None => w.null(),
                }
            }
        }
    }
}

pub fn hdel(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match hash_mut(db, argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(None) => w.int(0),
        Ok(Some(h)) => {
            let mut n = 0;
            for f in &argv[2..] {
                if h.remove(f) {
                    n += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            w.int(n);
            let emptied = drop_if_empty(db, argv[1], now);
            if n > 0 {
                ctx.notify(class::HASH, "hdel", argv[1]);
            }
            if emptied {
                ctx.notify(class::GENERIC, "del", argv[1]);
            }
        }
    }
}

pub fn hexists(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(h) => w.int(i64::from(h.is_some_and(|h| h.contains(argv[2])))),
    }
}

pub fn hlen(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(h) => w.int(h.map_or(0, Hash::len) as i64),
    }
}

pub fn hstrlen(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(h) => w.int(h.and_then(|h| h.get(argv[2])).map_or(0, |v| v.text_len()) as i64),
    }
}

/// HKEYS, HVALS, HGETALL.
fn getall(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, keys: bool, vals: bool) {
    let now = ctx.shard.now_ms;
    let h = match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => {
            return if keys && vals { w.map(0) } else { w.array(0) };
        }
        Ok(Some(h)) => h,
    };
    if keys && vals {
        w.map(h.len());
    } else {
        w.array(h.len());
    }
    for (k, v) in h {
        if keys {
            write_entry(w, k);
        }
        if vals {
            write_entry(w, v);
        }
    }
}

pub fn hkeys(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    getall(ctx, argv, w, true, false);
}

pub fn hvals(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    getall(ctx, argv, w, false, true);
}

pub fn hgetall(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    getall(ctx, argv, w, true, true);
}

pub fn hincrby(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(incr) = parse_i64(argv[3]) else {
        return w.error(errors::NOT_INTEGER);
    };
    let lim = limits(ctx);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Ok(h) = hash_or_create(db, argv[1], now) else {
        return w.error(errors::WRONGTYPE);
    };
    let old = match h.get(argv[2]) {
        None => 0,
        Some(v) => match v {
            percore_engine::listpack::LpValue::Int(i) => i,
            percore_engine::listpack::LpValue::Str(s) => match parse_i64(s) {
                Some(i) => i,
                None => return w.error(NOT_INTEGER_HASH),
            },
        },
    };
    let Some(new) = old.checked_add(incr) else {
        return w.error(OVERFLOW);
    };
    let mut buf = [0; percore_engine::number::I64_MAX_DECIMAL_BYTES];
    let text = percore_engine::number::format_i64(new, &mut buf);
    h.set(argv[2], text, lim);
    w.int(new);
    ctx.notify(class::HASH, "hincrby", argv[1]);
}

pub fn hincrbyfloat(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(incr) = parse_f64(argv[3]) else {
        return w.error(NOT_FLOAT);
    };
    if !incr.is_finite() {
        return w.error(NAN_OR_INF);
    }
    let lim = limits(ctx);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Ok(h) = hash_or_create(db, argv[1], now) else {
        return w.error(errors::WRONGTYPE);
    };
    let old = match h.get(argv[2]) {
        None => 0.0,
        Some(percore_engine::listpack::LpValue::Int(i)) => i as f64,
        Some(percore_engine::listpack::LpValue::Str(s)) => match parse_f64(s) {
            Some(f) => f,
            None => return w.error(NOT_FLOAT_HASH),
        },
    };
    let Some(text) = format_incrbyfloat(old, incr) else {
        return w.error(PRODUCES_NAN);
    };
    h.set(argv[2], text.as_bytes(), lim);
    w.bulk(text.as_bytes());
    ctx.notify(class::HASH, "hincrbyfloat", argv[1]);
}

/// HRANDFIELD key [count [WITHVALUES]].
pub fn hrandfield(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let mut rng = ctx.shard.rng;
    hrandfield_with(ctx, argv, w, &mut rng);
    ctx.shard.rng = rng;
}

fn hrandfield_with(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, rng: &mut u64) {
    let proto3 = w.is_resp3();
    let now = ctx.shard.now_ms;
    if argv.len() == 2 {
        return match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
            Err(()) => w.error(errors::WRONGTYPE),
            Ok(None) => w.null(),
            Ok(Some(h)) => match h.random_pair(rng) {
                Some((k, _)) => write_entry(w, k),
                None => w.null(),
            },
        };
    }
    let count = match parse_i64(argv[2]) {
        None => return w.error(errors::NOT_INTEGER),
        Some(i64::MIN) => return w.error(LONG_RANGE),
        Some(n) => n,
    };
    let withvalues = match argv.len() {
        3 => false,
        4 if eq_ic(argv[3], "withvalues") => true,
        _ => return w.error(errors::SYNTAX),
    };
    if withvalues && !(HRANDFIELD_WITHVALUES_MIN..=-HRANDFIELD_WITHVALUES_MIN).contains(&count) {
        return w.error("ERR value is out of range");
    }
    let h = match hash_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.array(0),
        Ok(Some(h)) => h,
    };
    let pairs_header = |w: &mut ReplyWriter, n: usize| {
        if withvalues && !proto3 {
            w.array(2 * n);
        } else {
            w.array(n);
        }
    };
    let write_pair = |w: &mut ReplyWriter, k, v| {
        if withvalues && proto3 {
            w.array(2);
        }
        write_entry(w, k);
        if withvalues {
            write_entry(w, v);
        }
    };
    if count == 0 {
        return w.array(0);
    }
    let size = h.len();
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        pairs_header(w, n);
        for _ in 0..n {
            let (k, v) = h.random_pair(rng).expect("non-empty hash");
            write_pair(w, k, v);
        }
        return;
    }
    let n = count as usize;
    if n >= size {
        pairs_header(w, size);
        for (k, v) in h {
            write_pair(w, k, v);
        }
        return;
    }
    // Distinct picks: a partial Fisher-Yates over positions.
    let mut idx: Vec<usize> = (0..size).collect();
    pairs_header(w, n);
    for i in 0..n {
        let j = i + percore_engine::hash::random_below(rng, size - i);
        idx.swap(i, j);
        let (k, v) = h.pair_at(idx[i]).expect("position below len");
        write_pair(w, k, v);
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES].
pub fn hscan(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some((cursor, o, h)) =
        super::sets::scan_start(ctx, argv, w, Value::as_hash, Some("NOVALUES"))
    else {
        return;
    };
    let mut items: Vec<Vec<u8>> = Vec::new();
    let c = super::sets::scan_pages(cursor, o.count, |c, visited| {
        h.scan(c, |k, v| {
            *visited += 1;
            let kb = k.to_bytes();
            if o.pattern.is_none_or(|p| string_match(p, &kb, false)) {
                items.push(kb.into_owned());
                if !o.only_keys {
                    items.push(v.to_bytes().into_owned());
                }
            }
        })
    });
    w.array(2);
    w.bulk(c.to_string().as_bytes());
    w.array(items.len());
    for i in &items {
        w.bulk(i);
    }
}
