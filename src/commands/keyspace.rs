//! Keyspace commands: DEL, EXISTS, EXPIRE family, TTL, TYPE, RENAME, COPY, MOVE, SCAN,
//! KEYS, RANDOMKEY, OBJECT, ...

use super::{Ctx, Gather, PartFn, Partial, eq_ic, errors, parse_i64};
use crate::notify::class;
use crate::shard::Argv;
use percore_engine::db::{AccessTracking, Db, TakenKey};
use percore_engine::glob::string_match;
use percore_engine::value::{StrValue, Value};
use percore_net::resp::ReplyWriter;

/// The reply of an [`Exec::Hop`](super::Exec::Hop) step, encoded in the client's protocol.
pub fn reply(ctx: &Ctx, f: impl FnOnce(&mut ReplyWriter)) -> Partial {
    let mut out = Vec::new();
    f(&mut ReplyWriter {
        out: &mut out,
        proto: ctx.proto,
    });
    Partial::Encoded(out)
}

/// Continue with `step` on `shard` with `argv`.
pub fn hop<'a>(shard: usize, step: PartFn, argv: impl IntoIterator<Item = &'a [u8]>) -> Partial {
    Partial::Hop {
        shard,
        step,
        argv: Argv::from_slices(&argv.into_iter().collect::<Vec<_>>()),
    }
}

// ---------------------------------------------------------------------------------------
// DEL, UNLINK, EXISTS, TOUCH, TYPE

/// DEL and UNLINK. UNLINK (and DEL under `lazyfree-lazy-user-del yes`) frees a big value
/// on the lazy-free thread, as Redis's `dbAsyncDelete`.
pub fn del_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let lazy = eq_ic(argv[0], "unlink") || ctx.shard.cfg.lazyfree_lazy_user_del();
    let mut n = 0;
    for key in &argv[1..] {
        if let Some((value, _)) = ctx.shard.keyspace.db_mut(ctx.db).remove(key, now) {
            if lazy {
                crate::snapshot::free_value(value);
            }
            n += 1;
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    Partial::Int(n)
}

/// EXISTS: every occurrence of a key counts, as Redis.
pub fn exists_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    let mut n = 0;
    for k in &argv[1..] {
        if db.contains(k, now) {
            sh.stats.keyspace_hits += 1;
            n += 1;
        } else {
            sh.stats.keyspace_misses += 1;
        }
    }
    Partial::Int(n)
}

/// TOUCH: a read lookup (updates the access time, counts hits and misses).
pub fn touch_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    let mut n = 0;
    for k in &argv[1..] {
        if db.touch(k, now) {
            sh.stats.keyspace_hits += 1;
            n += 1;
        } else {
            sh.stats.keyspace_misses += 1;
        }
    }
    Partial::Int(n)
}

/// Sums the shards' integer parts (DEL, EXISTS, UNLINK, TOUCH).
pub fn sum_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let mut total = 0;
    for p in g.parts.iter().flatten() {
        if let Partial::Error(e) = p {
            w.error(e);
            return;
        }
        if let Partial::Int(n) = p {
            total += n;
        }
    }
    w.int(total);
}

/// Looks `key` up without touching it, counting a hit or miss (Redis's
/// `lookupKeyReadWithFlags(.., LOOKUP_NOTOUCH)`).
fn lookup_counted<'d>(
    sh: &'d mut crate::shard::ShardData,
    db: usize,
    key: &[u8],
) -> Option<&'d percore_engine::db::Entry> {
    let now = sh.now_ms;
    let e = sh.keyspace.db_mut(db).lookup_entry(key, now);
    if e.is_some() {
        sh.stats.keyspace_hits += 1;
    } else {
        sh.stats.keyspace_misses += 1;
    }
    e
}

pub fn type_cmd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    match lookup_counted(ctx.shard, ctx.db, argv[1]) {
        Some(e) => w.simple(e.value.type_name()),
        None => w.simple("none"),
    }
}

// ---------------------------------------------------------------------------------------
// EXPIRE family, TTL family, PERSIST

/// NX / XX / GT / LT of the EXPIRE family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis's `parseExtendedExpireArgumentsOrReply`.
fn parse_expire_flags(args: &[&[u8]]) -> Result<ExpireFlags, String> {
    let mut f = ExpireFlags::default();
    for a in args {
        if eq_ic(a, "NX") {
            f.nx = true;
        } else if eq_ic(a, "XX") {
            f.xx = true;
        } else if eq_ic(a, "GT") {
            f.gt = true;
        } else if eq_ic(a, "LT") {
            f.lt = true;
        } else {
            return Err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            ));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if f.gt && f.lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(f)
}

/// The absolute expiry time in ms for `when` (seconds unless `unit_ms`, relative to
/// `base_ms`), refusing overflow as Redis does.
fn expire_when(when: i64, unit_ms: bool, base_ms: i64) -> Option<i64> {
    let ms = if unit_ms {
        when
    } else {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return None;
        }
        when * 1000
    };
    if ms > i64::MAX - base_ms {
        return None;
    }
    Some(ms + base_ms)
}

/// Whether the flags allow replacing `current` (None = no TTL) with `when`.
fn expire_allowed(f: ExpireFlags, current: Option<i64>, when: i64) -> bool {
    if f.nx && current.is_some() {
        return false;
    }
    if f.xx && current.is_none() {
        return false;
    }
    if f.gt && current.is_none_or(|c| when <= c) {
        return false;
    }
    if f.lt && current.is_some_and(|c| when >= c) {
        return false;
    }
    true
}

fn expire_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    w: &mut ReplyWriter,
    unit_ms: bool,
    absolute: bool,
) {
    let flags = match parse_expire_flags(&argv[3..]) {
        Ok(f) => f,
        Err(e) => {
            w.error(&e);
            return;
        }
    };
    let Some(when) = parse_i64(argv[2]) else {
        w.error(errors::NOT_INTEGER);
        return;
    };
    let now = ctx.shard.now_ms;
    let Some(at) = expire_when(when, unit_ms, if absolute { 0 } else { now }) else {
        let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
        w.error(&format!("ERR invalid expire time in '{name}' command"));
        return;
    };
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let Some(entry) = db.lookup_entry(argv[1], now) else {
        w.int(0);
        return;
    };
    if !expire_allowed(flags, entry.expire_at_ms(), at) {
        w.int(0);
        return;
    }
    if at <= now {
        // Already in the past: the key goes now (Redis's checkAlreadyExpired), as an
        // expiry (Valkey: an `expired` event and `expired_keys`; Redis 7.0 fired
        // `del`, which Valkey's pubsub unit waits on forever).
        db.remove_expired(argv[1], now);
        w.int(1);
    } else {
        db.set_expire_at(argv[1], at, now);
        w.int(1);
        ctx.notify(class::GENERIC, "expire", argv[1]);
    }
}

pub fn expire(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    expire_generic(ctx, argv, w, false, false);
}

pub fn pexpire(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    expire_generic(ctx, argv, w, true, false);
}

pub fn expireat(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    expire_generic(ctx, argv, w, false, true);
}

pub fn pexpireat(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    expire_generic(ctx, argv, w, true, true);
}

/// TTL family reply for a live key: -1 without a TTL, else the remaining (or absolute)
/// time, in ms or rounded to seconds.
fn ttl_value(expire_at: Option<i64>, now_ms: i64, ms: bool, absolute: bool) -> i64 {
    match expire_at {
        None => -1,
        Some(at) => {
            let t = if absolute { at } else { at - now_ms }.max(0);
            // Rounded without overflow for an expiry time within 500 ms of i64::MAX
            // (`PEXPIREAT k 9223372036854775807`): Redis replies with the exact quotient.
            if ms {
                t
            } else {
                ((i128::from(t) + 500) / 1000) as i64
            }
        }
    }
}

fn ttl_generic(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, ms: bool, absolute: bool) {
    let now = ctx.shard.now_ms;
    match lookup_counted(ctx.shard, ctx.db, argv[1]) {
        Some(e) => w.int(ttl_value(e.expire_at_ms(), now, ms, absolute)),
        None => w.int(-2),
    }
}

pub fn ttl(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    ttl_generic(ctx, argv, w, false, false);
}

pub fn pttl(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    ttl_generic(ctx, argv, w, true, false);
}

pub fn expiretime(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    ttl_generic(ctx, argv, w, false, true);
}

pub fn pexpiretime(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    ttl_generic(ctx, argv, w, true, true);
}

pub fn persist(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let removed = db.persist(argv[1], now);
    w.int(i64::from(removed));
    if removed {
        ctx.notify(class::GENERIC, "persist", argv[1]);
    }
}

// ---------------------------------------------------------------------------------------
// RENAME, RENAMENX, COPY, MOVE

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
/// Values that cannot travel between shards yet (only strings can).
const CROSS_SHARD_TYPE: &str =
    "ERR this value type cannot be moved between shards yet (keys on different threads)";

/// A value as bytes for a trip to another shard, with its type tag (empty for a string;
/// see [`from_wire`]); `None` for types without a wire form.
fn to_wire(v: &Value) -> Option<(&'static [u8], Vec<u8>)> {
    match v {
        Value::Str(s) => Some((b"", s.to_bytes().into_owned())),
        // sets, sorted sets
        Value::Set(s) => Some((b"set", s.to_wire())),
        Value::ZSet(z) => Some((b"zset", z.to_wire())),
        // lists and hashes: the engine's self-tagged wire form
        // (and streams, in the same self-tagged form)
        Value::List(_) | Value::Hash(_) | Value::Stream(_) => {
            Some((b"wire", percore_engine::wire::encode(v)?))
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        _ => None,
    }
}

/// The value [`to_wire`] sent as `bytes` with `tag`.
fn from_wire(ctx: &Ctx, tag: &[u8], bytes: &[u8]) -> Value {
    match tag {
        // sets, sorted sets
        b"set" => Value::Set(Box::new(
            percore_engine::sets::SetValue::from_wire(
                bytes,
                &super::sets::set_limits(&ctx.shard.cfg),
            )
            .unwrap_or_else(percore_engine::sets::SetValue::new_ints),
        )),
        b"zset" => Value::ZSet(
            percore_engine::zsets::ZSetValue::from_wire(
                bytes,
                &super::zsets::zset_limits(&ctx.shard.cfg),
            )
            .unwrap_or_else(|| {
                percore_engine::zsets::ZSetValue::from_entries(
                    Vec::new(),
                    &percore_engine::zsets::ZSetLimits::default(),
                )
            }),
        ),
        b"wire" => percore_engine::wire::decode(bytes)
            .expect("wire bytes come from wire::encode on another shard"),
        _ => Value::from_bytes(bytes),
    }
}

/// An expiry time as an argument: empty for none.
fn expire_arg(at: Option<i64>) -> Vec<u8> {
    at.map(|ms| ms.to_string().into_bytes()).unwrap_or_default()
}

fn parse_expire_arg(a: &[u8]) -> Option<i64> {
    if a.is_empty() { None } else { parse_i64(a) }
}

/// Stores under `key` a value that came from another shard, as [`to_wire`] and
/// [`expire_arg`] wrote it.
fn put_wire(db: &mut Db, key: &[u8], value: Value, expire: &[u8], now_ms: i64) {
    db.put(
        TakenKey {
            key: key.into(),
            value,
            expire_at_ms: parse_expire_arg(expire),
        },
        now_ms,
    );
}

/// RENAME / RENAMENX. Runs on the source key's shard; when the destination lives on
/// another shard the value travels there as bytes with its expiry time. That path is not
/// atomic: between the two steps neither key exists.
pub fn rename(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let me = ctx.shard.id;
    let src_owner = ctx.shard.owner(argv[1]);
    if src_owner != me {
        return hop(src_owner, rename, argv.iter().copied());
    }
    let nx = eq_ic(argv[0], "renamenx");
    let now = ctx.shard.now_ms;
    let dst_owner = ctx.shard.owner(argv[2]);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if !db.contains(argv[1], now) {
        return reply(ctx, |w| w.error(errors::NO_SUCH_KEY));
    }
    if argv[1] == argv[2] {
        return reply(ctx, |w| if nx { w.int(0) } else { w.ok() });
    }
    if dst_owner == me {
        if nx && db.contains(argv[2], now) {
            return reply(ctx, |w| w.int(0));
        }
        db.rename(argv[1], argv[2], now);
        ctx.notify(class::GENERIC, "rename_from", argv[1]);
        ctx.notify(class::GENERIC, "rename_to", argv[2]);
        return reply(ctx, |w| if nx { w.int(1) } else { w.ok() });
    }
    if db
        .lookup_entry(argv[1], now)
        .is_some_and(|e| to_wire(&e.value).is_none())
    {
        return reply(ctx, |w| w.error(CROSS_SHARD_TYPE));
    }
    let Some(taken) = db.take(argv[1], now) else {
        unreachable!("checked above");
    };
    let (tag, bytes) = to_wire(&taken.value).unwrap_or_default();
    let exp = expire_arg(taken.expire_at_ms);
    hop(
        dst_owner,
        rename_put,
        [argv[0], argv[2], &bytes[..], &exp[..], argv[1], tag],
    )
}

/// Second step of a cross-shard RENAME(NX), on the destination's shard:
/// `[name, dst, value, expire, src, type tag]`.
fn rename_put(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let nx = eq_ic(argv[0], "renamenx");
    let now = ctx.shard.now_ms;
    if nx && ctx.shard.keyspace.db_mut(ctx.db).contains(argv[1], now) {
        // Give the value back to the source key.
        let src_owner = ctx.shard.owner(argv[4]);
        return hop(
            src_owner,
            rename_restore,
            [argv[0], argv[4], argv[2], argv[3], argv[5]],
        );
    }
    let value = from_wire(ctx, argv[5], argv[2]);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    put_wire(db, argv[1], value, argv[3], now);
    // Both events leave from here, in Redis's order, once the rename happened.
    ctx.notify(class::GENERIC, "rename_from", argv[4]);
    ctx.notify(class::GENERIC, "rename_to", argv[1]);
    reply(ctx, |w| if nx { w.int(1) } else { w.ok() })
}

/// Third step of a refused cross-shard RENAMENX: the source key gets its value back
/// (unless it was written meanwhile). `[name, src, value, expire, type tag]`.
fn rename_restore(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let value = from_wire(ctx, argv[4], argv[2]);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if !db.contains(argv[1], now) {
        db.put_back(
            TakenKey {
                key: argv[1].into(),
                value,
                expire_at_ms: parse_expire_arg(argv[3]),
            },
            now,
        );
    }
    reply(ctx, |w| w.int(0))
}

/// A database index argument of COPY/MOVE, as Redis's `getIntFromObjectOrReply` then
/// `selectDb`, with their error texts.
fn parse_db(a: &[u8], databases: usize) -> Result<usize, &'static str> {
    let id = parse_i64(a).ok_or(errors::NOT_INTEGER)?;
    let id = i32::try_from(id).map_err(|_| INT_RANGE)?;
    usize::try_from(id)
        .ok()
        .filter(|&d| d < databases)
        .ok_or(errors::DB_INDEX)
}

const INT_RANGE: &str = "ERR value is out of range, value must between -2147483648 and 2147483647";

/// COPY src dst [DB n] [REPLACE]. Runs on the source's shard; a destination on another
/// shard receives the value as bytes with its expiry time.
pub fn copy(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let me = ctx.shard.id;
    let databases = ctx.shard.keyspace.databases();
    let mut replace = false;
    let mut dst_db = ctx.db;
    let mut i = 3;
    while i < argv.len() {
        if eq_ic(argv[i], "REPLACE") {
            replace = true;
        } else if eq_ic(argv[i], "DB") && i + 1 < argv.len() {
            match parse_db(argv[i + 1], databases) {
                Ok(d) => dst_db = d,
                Err(e) => return reply(ctx, |w| w.error(e)),
            }
            i += 1;
        } else {
            return reply(ctx, |w| w.error(errors::SYNTAX));
        }
        i += 1;
    }
    if dst_db == ctx.db && argv[1] == argv[2] {
        return reply(ctx, |w| w.error(SAME_OBJECT));
    }
    let src_owner = ctx.shard.owner(argv[1]);
    if src_owner != me {
        return hop(src_owner, copy, argv.iter().copied());
    }
    let now = ctx.shard.now_ms;
    let dst_owner = ctx.shard.owner(argv[2]);
    let Some(entry) = lookup_counted(ctx.shard, ctx.db, argv[1]) else {
        return reply(ctx, |w| w.int(0));
    };
    let value = entry.value.clone();
    let expire_at_ms = entry.expire_at_ms();
    if dst_owner == me {
        let dst = ctx.shard.keyspace.db_mut(dst_db);
        if !replace && dst.contains(argv[2], now) {
            return reply(ctx, |w| w.int(0));
        }
        dst.put(
            TakenKey {
                key: argv[2].into(),
                value,
                expire_at_ms,
            },
            now,
        );
        crate::notify::event(ctx.shard, class::GENERIC, "copy_to", argv[2], dst_db);
        return reply(ctx, |w| w.int(1));
    }
    let Some((tag, bytes)) = to_wire(&value) else {
        return reply(ctx, |w| w.error(CROSS_SHARD_TYPE));
    };
    let exp = expire_arg(expire_at_ms);
    let db_arg = dst_db.to_string();
    let flag: &[u8] = if replace { b"1" } else { b"0" };
    hop(
        dst_owner,
        copy_put,
        [
            argv[0],
            argv[2],
            db_arg.as_bytes(),
            flag,
            &bytes[..],
            &exp[..],
            tag,
        ],
    )
}

/// Second step of a cross-shard COPY, on the destination's shard:
/// `[name, dst, db, replace, value, expire, type tag]`.
fn copy_put(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let Ok(db) = parse_db(argv[2], ctx.shard.keyspace.databases()) else {
        unreachable!("checked by the first step");
    };
    let value = from_wire(ctx, argv[6], argv[4]);
    let dst = ctx.shard.keyspace.db_mut(db);
    if argv[3] != b"1" && dst.contains(argv[1], now) {
        return reply(ctx, |w| w.int(0));
    }
    put_wire(dst, argv[1], value, argv[5], now);
    crate::notify::event(ctx.shard, class::GENERIC, "copy_to", argv[1], db);
    reply(ctx, |w| w.int(1))
}

pub fn move_cmd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let dst = match parse_db(argv[2], ctx.shard.keyspace.databases()) {
        Ok(d) => d,
        Err(e) => {
            w.error(e);
            return;
        }
    };
    if dst == ctx.db {
        w.error(SAME_OBJECT);
        return;
    }
    let now = ctx.shard.now_ms;
    let moved = ctx.shard.keyspace.move_key(ctx.db, dst, argv[1], now);
    w.int(i64::from(moved));
    if moved {
        ctx.notify(class::GENERIC, "move_from", argv[1]);
        crate::notify::event(ctx.shard, class::GENERIC, "move_to", argv[1], dst);
    }
}

// ---------------------------------------------------------------------------------------
// KEYS, SCAN, RANDOMKEY

pub fn keys_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let pattern = argv[1];
    let all = pattern == b"*";
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = db.scan(cursor, now, |k, _| {
            if all || string_match(pattern, k, false) {
                keys.push(k.to_vec());
            }
        });
        if cursor == 0 {
            break;
        }
    }
    Partial::Keys(keys)
}

pub fn keys_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let mut all = Vec::new();
    for p in &mut g.parts {
        if let Some(Partial::Keys(k)) = p.take() {
            all.extend(k);
        }
    }
    w.array(all.len());
    for k in &all {
        w.bulk(k);
    }
}

pub fn randomkey_part(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    let key = db.random_key(now, &mut sh.rng).map(<[u8]>::to_vec);
    Partial::Keys(key.into_iter().collect())
}

/// One of the shards' random keys, each non-empty shard equally likely (keys spread
/// evenly over shards by hash, so this stays close to uniform over all keys).
pub fn randomkey_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let mut found: Vec<Vec<u8>> = Vec::new();
    for p in &mut g.parts {
        if let Some(Partial::Keys(mut k)) = p.take()
            && let Some(key) = k.pop()
        {
            found.push(key);
        }
    }
    if found.is_empty() {
        w.null();
        return;
    }
    let r = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        found.len(),
    );
    w.bulk(&found[(r % found.len() as u64) as usize]);
}

/// Bits of a SCAN cursor that name the shard.
fn shard_bits(shards: usize) -> u32 {
    if shards <= 1 {
        0
    } else {
        (shards - 1).ilog2() + 1
    }
}

/// A SCAN cursor: the shard's own cursor above the shard index. Shard 0 with cursor 0 is
/// 0, so the first call starts at shard 0 and 0 means done, as in Redis.
fn encode_cursor(engine: u64, shard: usize, shards: usize) -> u64 {
    (engine << shard_bits(shards)) | shard as u64
}

fn decode_cursor(cursor: u64, shards: usize) -> (u64, usize) {
    let bits = shard_bits(shards);
    let shard = (cursor & ((1u64 << bits) - 1)) as usize;
    (cursor >> bits, shard)
}

/// Redis's `parseScanCursorOrReply` (strtoull: optional sign, decimal digits).
pub(crate) fn parse_cursor(a: &[u8]) -> Option<u64> {
    let (neg, digits) = match a.first() {
        Some(b'-') => (true, &a[1..]),
        Some(b'+') => (false, &a[1..]),
        _ => (false, a),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

pub(crate) struct ScanOpts<'a> {
    pub(crate) pattern: Option<&'a [u8]>,
    pub(crate) count: usize,
    pub(crate) type_name: Option<&'a [u8]>,
    /// HSCAN's NOVALUES / ZSCAN's NOSCORES (Redis 7.4, Valkey 8): members only.
    pub(crate) only_keys: bool,
}

/// SCAN's options. `only_keys_word`: the members-only option this command takes
/// (`NOVALUES` for HSCAN, `NOSCORES` for ZSCAN); the other one is refused with Valkey's
/// text.
pub(crate) fn parse_scan_opts<'a>(
    args: &[&'a [u8]],
    only_keys_word: Option<&str>,
) -> Result<ScanOpts<'a>, &'static str> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        type_name: None,
        only_keys: false,
    };
    let mut i = 0;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if eq_ic(args[i], "NOVALUES") || eq_ic(args[i], "NOSCORES") {
            let word = if eq_ic(args[i], "NOVALUES") {
                "NOVALUES"
            } else {
                "NOSCORES"
            };
            if only_keys_word != Some(word) {
                return Err(if word == "NOVALUES" {
                    "ERR NOVALUES option can only be used in HSCAN"
                } else {
                    "ERR NOSCORES option can only be used in ZSCAN"
                });
            }
            o.only_keys = true;
            i += 1;
            continue;
        }
        if eq_ic(args[i], "COUNT") && has_value {
            let n = parse_i64(args[i + 1]).ok_or(errors::NOT_INTEGER)?;
            if n < 1 {
                return Err(errors::SYNTAX);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if eq_ic(args[i], "MATCH") && has_value {
            o.pattern = Some(args[i + 1]).filter(|p| *p != b"*");
        } else if eq_ic(args[i], "TYPE") && has_value {
            o.type_name = Some(args[i + 1]);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// SCAN cursor [MATCH p] [COUNT n] [TYPE t]: one shard per call, the shard named by the
/// cursor; when its table is done the cursor moves on to the next shard.
pub fn scan(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(cursor) = parse_cursor(argv[1]) else {
        return reply(ctx, |w| w.error("ERR invalid cursor"));
    };
    let o = match parse_scan_opts(&argv[2..], None) {
        Ok(o) => o,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    let shards = ctx.shard.shards;
    let (engine, shard) = decode_cursor(cursor, shards);
    if shard >= shards {
        // Not a cursor we handed out: nothing more to return.
        return reply(ctx, |w| {
            w.array(2);
            w.bulk(b"0");
            w.array(0);
        });
    }
    if shard != ctx.shard.id {
        return hop(shard, scan, argv.iter().copied());
    }
    scan_shard(ctx, argv, &o, engine, Vec::new())
}

/// SCAN's continuation on the next shard when a shard ran out before the page was full:
/// `[n, the n-1 original arguments after the name (cursor first), keys so far...]`.
fn scan_more(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let n = parse_i64(argv[0]).and_then(|n| usize::try_from(n).ok());
    let Some(n) = n.filter(|&n| n >= 2 && n <= argv.len()) else {
        unreachable!("scan continuation built by scan_shard");
    };
    let Ok(o) = parse_scan_opts(&argv[2..n], None) else {
        unreachable!("options checked by the first step");
    };
    let keys = argv[n..].iter().map(|k| k.to_vec()).collect();
    scan_shard(ctx, &argv[..n], &o, 0, keys)
}

/// Scans this shard from `engine` into `keys`; `argv[1..]` are SCAN's arguments.
fn scan_shard(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    o: &ScanOpts,
    mut engine: u64,
    mut keys: Vec<Vec<u8>>,
) -> Partial {
    let (shard, shards) = (ctx.shard.id, ctx.shard.shards);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let mut budget = o.count.saturating_mul(10);
    let mut expired = Vec::new();
    loop {
        engine = db.scan_noting_expired(
            engine,
            now,
            |k, e| {
                let pattern_ok = o.pattern.is_none_or(|p| string_match(p, k, false));
                let type_ok = o
                    .type_name
                    .is_none_or(|t| t.eq_ignore_ascii_case(e.value.type_name().as_bytes()));
                if pattern_ok && type_ok {
                    keys.push(k.to_vec());
                }
            },
            |k| {
                // Redis 7.0 expires the keys that pass the MATCH filter (with TYPE too:
                // its type check is a lookup, which expires them).
                if o.pattern.is_none_or(|p| string_match(p, k, false)) {
                    expired.push(k.to_vec());
                }
            },
        );
        if engine == 0 || budget == 0 || keys.len() >= o.count {
            break;
        }
        budget -= 1;
    }
    // A lookup deletes an expired key the way a read would (notification, effects,
    // left alone while expiry is paused).
    for k in &expired {
        db.contains(k, now);
    }
    let next = if engine != 0 {
        encode_cursor(engine, shard, shards)
    } else if shard + 1 < shards {
        if keys.len() < o.count {
            // This shard is done and the page has room: go on with the next shard.
            let n = argv.len().to_string();
            let args = std::iter::once(n.as_bytes())
                .chain(argv[1..].iter().copied())
                .chain(keys.iter().map(Vec::as_slice));
            return hop(shard + 1, scan_more, args);
        }
        encode_cursor(0, shard + 1, shards)
    } else {
        0
    };
    reply(ctx, |w| {
        w.array(2);
        w.bulk(next.to_string().as_bytes());
        w.array(keys.len());
        for k in &keys {
            w.bulk(k);
        }
    })
}

// ---------------------------------------------------------------------------------------
// OBJECT

/// Values Redis shares as one object (`OBJ_SHARED_INTEGERS`), reported with
/// `OBJ_SHARED_REFCOUNT`.
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

pub fn object(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = argv[1];
    let known = ["encoding", "freq", "idletime", "refcount"]
        .into_iter()
        .find(|s| eq_ic(sub, s));
    if eq_ic(sub, "help") && argv.len() == 2 {
        w.array(OBJECT_HELP.len());
        for line in OBJECT_HELP {
            w.simple(line);
        }
        return;
    }
    let Some(name) = known.filter(|_| argv.len() == 3) else {
        if known.is_some() || eq_ic(sub, "help") {
            let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
            w.error(&format!(
                "ERR wrong number of arguments for 'object|{lower}' command"
            ));
        } else {
            w.error(&format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                super::trunc_lossy(sub, 128)
            ));
        }
        return;
    };
    let now = ctx.shard.now_ms;
    let tracking = ctx.shard.cfg.access_tracking();
    let Some(e) = lookup_counted(ctx.shard, ctx.db, argv[2]) else {
        w.null();
        return;
    };
    match name {
        "encoding" => w.bulk(e.value.encoding().as_bytes()),
        "refcount" => {
            let shared = matches!(&e.value, Value::Str(StrValue::Int(i)) if (0..SHARED_INTEGERS).contains(i));
            w.int(if shared { SHARED_REFCOUNT } else { 1 });
        }
        "idletime" => match tracking {
            AccessTracking::Lru => w.int(i64::try_from(e.idle_time_s(now)).unwrap_or(i64::MAX)),
            AccessTracking::Lfu { .. } => w.error(LFU_SELECTED),
        },
        _ => match tracking {
            AccessTracking::Lfu { decay_minutes, .. } => {
                w.int(i64::from(e.lfu_freq(decay_minutes, now)));
            }
            AccessTracking::Lru => w.error(LFU_NOT_SELECTED),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_of_the_largest_expiry_time_does_not_overflow() {
        // PEXPIREAT k 9223372036854775807, then EXPIRETIME / TTL (as redis-server 7.0).
        assert_eq!(
            ttl_value(Some(i64::MAX), 0, false, true),
            9_223_372_036_854_776
        );
        assert_eq!(ttl_value(Some(i64::MAX), 0, true, true), i64::MAX);
        assert_eq!(
            ttl_value(Some(i64::MAX), 1_000, false, false),
            9_223_372_036_854_775
        );
        assert_eq!(ttl_value(Some(1_500), 1_000, false, false), 1);
        assert_eq!(ttl_value(Some(1_499), 1_000, false, false), 0);
        assert_eq!(ttl_value(None, 1_000, false, false), -1);
    }

    #[test]
    fn scan_cursor_round_trips_and_zero_is_start() {
        for shards in [1usize, 2, 3, 4, 7, 8] {
            assert_eq!(encode_cursor(0, 0, shards), 0);
            for shard in 0..shards {
                for engine in [0u64, 1, 5, 1 << 40] {
                    let c = encode_cursor(engine, shard, shards);
                    assert_eq!(decode_cursor(c, shards), (engine, shard));
                }
            }
        }
        assert_eq!(shard_bits(1), 0);
        assert_eq!(shard_bits(2), 1);
        assert_eq!(shard_bits(3), 2);
        assert_eq!(shard_bits(4), 2);
        assert_eq!(shard_bits(5), 3);
    }

    #[test]
    fn cursor_parsing_is_strtoull() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"+12"), Some(12));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b""), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
    }

    #[test]
    fn expire_flags_follow_redis() {
        let p = |a: &[&[u8]]| parse_expire_flags(a);
        assert_eq!(p(&[]), Ok(ExpireFlags::default()));
        assert!(p(&[b"nx", b"xx"]).unwrap_err().starts_with("ERR NX and XX"));
        assert!(p(&[b"NX", b"GT"]).unwrap_err().starts_with("ERR NX and XX"));
        assert_eq!(
            p(&[b"gt", b"lt"]).unwrap_err(),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(p(&[b"foo"]).unwrap_err(), "ERR Unsupported option foo");
        let gt = ExpireFlags {
            gt: true,
            ..ExpireFlags::default()
        };
        let lt = ExpireFlags {
            lt: true,
            ..ExpireFlags::default()
        };
        let nx = ExpireFlags {
            nx: true,
            ..ExpireFlags::default()
        };
        let xx = ExpireFlags {
            xx: true,
            ..ExpireFlags::default()
        };
        assert!(!expire_allowed(gt, None, 5), "no TTL is infinite for GT");
        assert!(expire_allowed(lt, None, 5), "no TTL is infinite for LT");
        assert!(expire_allowed(gt, Some(4), 5));
        assert!(!expire_allowed(gt, Some(5), 5));
        assert!(!expire_allowed(lt, Some(5), 5));
        assert!(expire_allowed(lt, Some(6), 5));
        assert!(!expire_allowed(nx, Some(1), 5));
        assert!(expire_allowed(nx, None, 5));
        assert!(!expire_allowed(xx, None, 5));
    }

    #[test]
    fn expire_math_refuses_overflow() {
        assert_eq!(expire_when(10, false, 1000), Some(11_000));
        assert_eq!(expire_when(-10, false, 1000), Some(-9000));
        assert_eq!(expire_when(i64::MAX / 1000 + 1, false, 0), None);
        assert_eq!(expire_when(i64::MAX, true, 1), None);
        assert_eq!(expire_when(i64::MAX, true, 0), Some(i64::MAX));
        assert_eq!(ttl_value(None, 0, true, false), -1);
        assert_eq!(ttl_value(Some(1499), 0, false, false), 1);
        assert_eq!(ttl_value(Some(1500), 0, false, false), 2);
        assert_eq!(ttl_value(Some(10), 20, true, false), 0);
        assert_eq!(ttl_value(Some(12_345), 0, true, true), 12_345);
    }
}
