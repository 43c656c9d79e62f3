//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE. The strings are Redis's (see
//! `percore_engine::hyperloglog`), so HyperLogLogs move between percore and redis-server
//! through RDB files, DUMP/RESTORE and GET/SET unchanged.

use super::gather::{self, Got, Spec};
use super::keyspace::{hop, reply};
use super::{Ctx, Partial, eq_ic, errors};
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_engine::hyperloglog::{self as hll, HLL_REGISTERS, HllError};
use percore_engine::value::{StrValue, Value};
use percore_net::resp::ReplyWriter;

fn sparse_max(ctx: &Ctx) -> usize {
    usize::try_from(ctx.shard.cfg.hll_sparse_max_bytes).unwrap_or(usize::MAX)
}

/// The bytes of a string that passes `isHLLObjectOrReply` (an integer-encoded string
/// never does).
fn hll_text(s: &StrValue) -> Result<(), HllError> {
    s.text().map_or(Err(HllError::NotHll), hll::validate)
}

pub fn pfadd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let max = sparse_max(ctx);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match db.get_mut(argv[1], now) {
        Some(Value::Str(s)) => {
            if let Err(e) = hll_text(s) {
                return w.error(e.reply_text());
            }
            let v = s.make_raw();
            let mut updated = false;
            for ele in &argv[2..] {
                match hll::add(v, ele, max) {
                    Ok(changed) => updated |= changed,
                    Err(_) => return w.error(hll::CORRUPT_HLL_ERR),
                }
            }
            if updated {
                hll::invalidate_cache(v);
            }
            w.int(i64::from(updated));
            if updated {
                ctx.notify(class::STRING, "pfadd", argv[1]);
            }
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => w.error(errors::WRONGTYPE),
        None => {
            let mut v = hll::new_sparse();
            for ele in &argv[2..] {
                if hll::add(&mut v, ele, max).is_err() {
                    return w.error(hll::CORRUPT_HLL_ERR);
                }
            }
            hll::invalidate_cache(&mut v);
            db.set(argv[1], Value::Str(StrValue::Raw(v)), SetExpire::Clear, now);
            w.int(1);
            ctx.notify(class::STRING, "pfadd", argv[1]);
        }
    }
}

/// PFCOUNT: one key runs on its shard (and caches the cardinality in the string); several
/// keys are gathered and their union counted.
pub fn pfcount(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if argv.len() == 2 {
        let owner = ctx.shard.owner(argv[1]);
        if owner != ctx.shard.id {
            return hop(owner, pfcount_one, argv.iter().copied());
        }
        return pfcount_one(ctx, argv);
    }
    gather::start(ctx, argv, pfcount_step)
}

fn pfcount_one(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let r: Result<u64, &str> = match db.get_mut(argv[1], now) {
        None => Ok(0),
        Some(Value::Str(s)) => match hll_text(s) {
            Err(e) => Err(e.reply_text()),
            Ok(()) => hll::cached_count(s.make_raw())
                .map(|(c, _)| c)
                .map_err(|_| hll::CORRUPT_HLL_ERR),
        },
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => Err(errors::WRONGTYPE),
    };
    reply(ctx, |w| match r {
        Ok(c) => w.int(c as i64),
        Err(e) => w.error(e),
    })
}

const PFCOUNT_GATHER: Spec = Spec {
    keys: |argc| 1..argc,
    finish_on: None,
    finish: pfcount_finish,
};

fn pfcount_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    gather::step(ctx, argv, &PFCOUNT_GATHER, pfcount_step)
}

/// The registers' maximum over `vals` (`hllMerge` of each), and whether any was dense.
fn union(vals: &[Got]) -> Result<(Box<[u8; HLL_REGISTERS]>, bool), &'static str> {
    let mut max: Box<[u8; HLL_REGISTERS]> = vec![0u8; HLL_REGISTERS]
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("sized above"));
    let mut dense = false;
    for v in vals {
        match v {
            Got::Absent => {}
            Got::WrongType => return Err(errors::WRONGTYPE),
            Got::Str(b) => {
                hll::validate(b).map_err(HllError::reply_text)?;
                dense |= hll::is_dense(b);
                hll::merge_into(&mut max, b).map_err(|_| hll::CORRUPT_HLL_ERR)?;
            }
        }
    }
    Ok((max, dense))
}

fn pfcount_finish(ctx: &mut Ctx, _argv: &[&[u8]], vals: &[Got]) -> Partial {
    let r = union(vals).map(|(max, _)| hll::count_registers(&max));
    reply(ctx, |w| match r {
        Ok(c) => w.int(c as i64),
        Err(e) => w.error(e),
    })
}

const PFMERGE_GATHER: Spec = Spec {
    keys: |argc| 1..argc,
    finish_on: Some(1),
    finish: pfmerge_finish,
};

/// PFMERGE dest src...: the sources (dest included, as Redis) are gathered, the union is
/// written on the destination's shard.
pub fn pfmerge(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    gather::start(ctx, argv, pfmerge_step)
}

fn pfmerge_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    gather::step(ctx, argv, &PFMERGE_GATHER, pfmerge_step)
}

fn pfmerge_finish(ctx: &mut Ctx, argv: &[&[u8]], vals: &[Got]) -> Partial {
    let (max, dense) = match union(vals) {
        Ok(u) => u,
        Err(e) => return reply(ctx, |w| w.error(e)),
    };
    let sparse_max = sparse_max(ctx);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let r = match db.get_mut(argv[1], now) {
        Some(Value::Str(s)) => match hll_text(s) {
            Err(e) => Err(e.reply_text()),
            Ok(()) => hll::merge_registers(s.make_raw(), &max, dense, sparse_max)
                .map_err(|_| hll::CORRUPT_HLL_ERR),
        },
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => Err(errors::WRONGTYPE),
        None => {
            let mut v = hll::new_sparse();
            let r = hll::merge_registers(&mut v, &max, dense, sparse_max);
            db.set(argv[1], Value::Str(StrValue::Raw(v)), SetExpire::Clear, now);
            r.map_err(|_| hll::CORRUPT_HLL_ERR)
        }
    };
    if r.is_ok() {
        ctx.notify(class::STRING, "pfadd", argv[1]);
    }
    reply(ctx, |w| match r {
        Ok(()) => w.ok(),
        Err(e) => w.error(e),
    })
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key (Redis's `pfdebugCommand`; the Redis test
/// suite reads registers and encodings with it).
pub fn pfdebug(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if eq_ic(argv[1], "simd") {
        // Valkey 8.1's switch for its AVX2 register merge: percore has the scalar code
        // only, so the answer is always `disabled` (Valkey's on a CPU without AVX2).
        // (PFDEBUG's arity is 3: the table answered any other count.)
        if !eq_ic(argv[2], "on") && !eq_ic(argv[2], "off") {
            return w.error("ERR Argument must be ON or OFF");
        }
        return w.simple("disabled");
    }
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let v = match db.get_mut(argv[2], now) {
        None => return w.error("ERR The specified key does not exist"),
        Some(Value::Str(s)) => {
            if let Err(e) = hll_text(s) {
                return w.error(e.reply_text());
            }
            s.make_raw()
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => return w.error(errors::WRONGTYPE),
    };
    let sub = String::from_utf8_lossy(argv[1]).into_owned();
    let known = ["getreg", "decode", "encoding", "todense"]
        .iter()
        .any(|n| sub.eq_ignore_ascii_case(n));
    if !known {
        return w.error(&format!("ERR Unknown PFDEBUG subcommand '{sub}'"));
    }
    if argv.len() != 3 {
        return w.error(&format!(
            "ERR Wrong number of arguments for the '{sub}' subcommand"
        ));
    }
    if sub.eq_ignore_ascii_case("getreg") {
        if hll::sparse_to_dense(v).is_err() {
            return w.error(hll::CORRUPT_HLL_ERR);
        }
        let regs = hll::dense_registers(v);
        w.array(regs.len());
        for r in regs {
            w.int(i64::from(r));
        }
    } else if sub.eq_ignore_ascii_case("decode") {
        match hll::decode_sparse(v) {
            Some(text) => w.bulk(text.as_bytes()),
            None => w.error("ERR HLL encoding is not sparse"),
        }
    } else if sub.eq_ignore_ascii_case("encoding") {
        w.simple(if hll::is_dense(v) { "dense" } else { "sparse" });
    } else {
        let sparse = !hll::is_dense(v);
        if sparse && hll::sparse_to_dense(v).is_err() {
            return w.error(hll::CORRUPT_HLL_ERR);
        }
        w.int(i64::from(sparse));
    }
}
