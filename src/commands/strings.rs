//! String commands.

use super::{Ctx, Gather, Partial, eq_ic, errors, parse_i64};
use percore_engine::db::SetExpire;
use percore_engine::number::I64_MAX_DECIMAL_BYTES;
use percore_engine::value::{StrValue, Value};
use percore_net::resp::ReplyWriter;

/// Writes a string value as a bulk reply.
#[inline]
pub fn write_str(w: &mut ReplyWriter, v: &StrValue) {
    match v {
        StrValue::Int(i) => w.bulk_int(*i),
        StrValue::Raw(b) => w.bulk(b),
    }
}

pub fn get(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sh = &mut *ctx.shard;
    match sh.keyspace.db_mut(ctx.db).get(argv[1], sh.now_ms) {
        Some(Value::Str(s)) => {
            sh.stats.keyspace_hits += 1;
            write_str(w, s);
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => {
            sh.stats.keyspace_misses += 1;
            w.null();
        }
    }
}

/// Parsed options of SET.
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    expire: SetExpire,
}

/// An expiry argument (`EX`/`PX`/`EXAT`/`PXAT` with its number) to absolute milliseconds,
/// with Redis's checks and texts.
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

fn parse_set_opts(argv: &[&[u8]], now_ms: i64) -> Result<SetOpts, String> {
    let mut o = SetOpts {
        nx: false,
        xx: false,
        get: false,
        expire: SetExpire::Clear,
    };
    let mut have_expire = false;
    let mut i = 3;
    while i < argv.len() {
        let a = argv[i];
        let next = argv.get(i + 1);
        if eq_ic(a, "NX") && !o.xx {
            o.nx = true;
        } else if eq_ic(a, "XX") && !o.nx {
            o.xx = true;
        } else if eq_ic(a, "GET") {
            o.get = true;
        } else if eq_ic(a, "KEEPTTL") && !have_expire {
            have_expire = true;
            o.expire = SetExpire::Keep;
        } else if let Some((unit_ms, absolute)) = expire_word(a)
            && !have_expire
            && let Some(n) = next
        {
            have_expire = true;
            o.expire = SetExpire::At(parse_expire(unit_ms, absolute, n, now_ms, "set")?);
            i += 1;
        } else {
            return Err(errors::SYNTAX.to_string());
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

pub fn set(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    if argv.len() == 3 {
        // The common case: no options.
        db.set(argv[1], Value::from_bytes(argv[2]), SetExpire::Clear, now);
        w.ok();
        return;
    }
    let o = match parse_set_opts(argv, now) {
        Ok(o) => o,
        Err(e) => {
            w.error(&e);
            return;
        }
    };
    let mut old_buf = [0u8; I64_MAX_DECIMAL_BYTES];
    let mut old: Option<Vec<u8>> = None;
    let exists = match db.get(argv[1], now) {
        Some(Value::Str(s)) => {
            if o.get {
                old = Some(s.as_bytes(&mut old_buf).to_vec());
            }
            true
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => {
            if o.get {
                w.error(errors::WRONGTYPE);
                return;
            }
            true
        }
        None => false,
    };
    let blocked = (o.nx && exists) || (o.xx && !exists);
    if !blocked {
        db.set(argv[1], Value::from_bytes(argv[2]), o.expire, now);
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

pub fn incr(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    incr_by_delta(ctx, argv[1], 1, w);
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
            }
            Err(e) => w.error(e.reply_text()),
        },
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => match percore_engine::strings::incr_by(None, delta) {
            Ok(n) => {
                db.set(key, Value::Str(StrValue::Int(n)), SetExpire::Clear, now);
                w.int(n);
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
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    for pair in argv[1..].chunks_exact(2) {
        db.set(pair[0], Value::from_bytes(pair[1]), SetExpire::Clear, now);
    }
    Partial::Unit
}

pub fn mset_merge(_g: &mut Gather, w: &mut ReplyWriter) {
    w.ok();
}
