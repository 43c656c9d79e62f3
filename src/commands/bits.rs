//! Bitmap and bit-field commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO (Redis's `bitops.c`). The bit arithmetic is in
//! `percore_engine::bitops`.

use super::gather::{self, Got, Spec};
use super::keyspace::reply;
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::notify::class;
use percore_engine::Db;
use percore_engine::bitops::{self, BIT_OFFSET_ERR, BIT_VALUE_ERR, BitOp, FieldType, Overflow};
use percore_engine::db::SetExpire;
use percore_engine::number::I64_MAX_DECIMAL_BYTES;
use percore_engine::value::{StrValue, Value};
use percore_net::resp::ReplyWriter;

const BIT_ARG_ERR: &str = "ERR The bit argument must be 1 or 0.";
const BITOP_NOT_ERR: &str = "ERR BITOP NOT must be called with a single source key.";
const OVERFLOW_TYPE_ERR: &str = "ERR Invalid OVERFLOW type specified";
const BITFIELD_RO_ERR: &str = "ERR BITFIELD_RO only supports the GET subcommand";

/// Reads a string key, counting the hit or miss. `Err` = wrong type.
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

/// Redis's `lookupStringForBitCommand`: runs `f` on the bytes of `key` grown with zeros to
/// at least `min_len` bytes (the key is created when absent). `f` is told whether the key
/// was created or grown (Redis's `dirty` there) and returns its result with the number of
/// changes it made, which the database counts (`server.dirty`). `Err` = wrong type.
fn with_bits<R>(
    db: &mut Db,
    key: &[u8],
    min_len: usize,
    now: i64,
    f: impl FnOnce(&mut Vec<u8>, bool) -> (R, u64),
) -> Result<(R, u64), ()> {
    match db.get_mut_uncounted(key, now) {
        Some(Value::Str(s)) => {
            let v = s.make_raw();
            let grown = v.len() < min_len;
            if grown {
                v.resize(min_len, 0);
            }
            let (r, changes) = f(v, grown);
            db.count_changes(changes);
            return Ok((r, changes));
        }
        #[allow(unreachable_patterns, reason = "more value types arrive later")]
        Some(_) => return Err(()),
        None => {}
    }
    let mut v = vec![0u8; min_len];
    let (r, changes) = f(&mut v, true);
    // Storing the new key counts one change.
    db.set(key, Value::Str(StrValue::Raw(v)), SetExpire::Clear, now);
    db.count_changes(changes.saturating_sub(1));
    Ok((r, changes))
}

pub fn setbit(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let max = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let Some(off) = bitops::parse_bit_offset(argv[2], None, max) else {
        w.error(BIT_OFFSET_ERR);
        return;
    };
    let on = match parse_i64(argv[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => {
            w.error(BIT_VALUE_ERR);
            return;
        }
    };
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let min_len = (off >> 3) as usize + 1;
    let set = |v: &mut Vec<u8>, grown: bool| {
        let old = bitops::set_bit(v, off, on);
        (old, u64::from(grown || old != on))
    };
    match with_bits(db, argv[1], min_len, now, set) {
        Ok((old, changes)) => {
            w.int(i64::from(old));
            // As Redis 7.0: an event only when the string changed.
            if changes > 0 {
                ctx.notify(class::STRING, "setbit", argv[1]);
            }
        }
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn getbit(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let max = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let Some(off) = bitops::parse_bit_offset(argv[2], None, max) else {
        w.error(BIT_OFFSET_ERR);
        return;
    };
    match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => {
            let mut buf = [0u8; I64_MAX_DECIMAL_BYTES];
            w.int(i64::from(bitops::get_bit(s.as_bytes(&mut buf), off)));
        }
        Ok(None) => w.int(0),
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

/// `BYTE` / `BIT` → whether the range is in bits.
fn parse_unit(a: &[u8]) -> Option<bool> {
    if eq_ic(a, "bit") {
        Some(true)
    } else if eq_ic(a, "byte") {
        Some(false)
    } else {
        None
    }
}

pub fn bitcount(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let s = match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return w.int(0),
        Err(()) => return w.error(errors::WRONGTYPE),
    };
    let mut buf = [0u8; I64_MAX_DECIMAL_BYTES];
    let bytes = s.as_bytes(&mut buf);
    let range = match argv.len() {
        2 => bitops::resolve_range(bytes.len(), 0, -1, false),
        // Start alone (Redis 7.2+ and Valkey; 7.0 answers a syntax error): to the end.
        3 => {
            let Some(start) = parse_i64(argv[2]) else {
                return w.error(errors::NOT_INTEGER);
            };
            bitops::resolve_range(bytes.len(), start, -1, false)
        }
        4 | 5 => {
            let Some(start) = parse_i64(argv[2]) else {
                return w.error(errors::NOT_INTEGER);
            };
            let Some(end) = parse_i64(argv[3]) else {
                return w.error(errors::NOT_INTEGER);
            };
            if start < 0 && end < 0 && start > end {
                return w.int(0);
            }
            let bit = if argv.len() == 5 {
                match parse_unit(argv[4]) {
                    Some(b) => b,
                    None => return w.error(errors::SYNTAX),
                }
            } else {
                false
            };
            bitops::resolve_range(bytes.len(), start, end, bit)
        }
        _ => return w.error(errors::SYNTAX),
    };
    match range {
        Some((lo, hi)) => w.int(bitops::count_range(bytes, lo, hi) as i64),
        None => w.int(0),
    }
}

pub fn bitpos(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let bit = match parse_i64(argv[2]) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return w.error(BIT_ARG_ERR),
        None => return w.error(errors::NOT_INTEGER),
    };
    let s = match read_str(ctx.shard, ctx.db, argv[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return w.int(if bit { -1 } else { 0 }),
        Err(()) => return w.error(errors::WRONGTYPE),
    };
    let mut buf = [0u8; I64_MAX_DECIMAL_BYTES];
    let bytes = s.as_bytes(&mut buf);
    let mut end_given = false;
    let range = match argv.len() {
        3 => bitops::resolve_range(bytes.len(), 0, -1, false),
        4..=6 => {
            let Some(start) = parse_i64(argv[3]) else {
                return w.error(errors::NOT_INTEGER);
            };
            let mut in_bits = false;
            if argv.len() == 6 {
                match parse_unit(argv[5]) {
                    Some(b) => in_bits = b,
                    None => return w.error(errors::SYNTAX),
                }
            }
            let end = if argv.len() >= 5 {
                end_given = true;
                match parse_i64(argv[4]) {
                    Some(e) => e,
                    None => return w.error(errors::NOT_INTEGER),
                }
            } else {
                -1
            };
            bitops::resolve_range(bytes.len(), start, end, in_bits)
        }
        _ => return w.error(errors::SYNTAX),
    };
    let Some((lo, hi)) = range else {
        return w.int(-1);
    };
    match bitops::find_bit(bytes, lo, hi, bit) {
        Some(p) => w.int(p as i64),
        // Looking for a clear bit without an explicit end: the string is padded with
        // zeros on the right, so the answer is the first bit past it.
        None if !bit && !end_given => w.int((hi + 1) as i64),
        None => w.int(-1),
    }
}

// ---------------------------------------------------------------------------------------
// BITOP

const BITOP_GATHER: Spec = Spec {
    keys: |argc| 3..argc,
    finish_on: Some(2),
    finish: bitop_finish,
};

/// BITOP op dest src...: the sources are gathered from their shards, the result is stored
/// on the destination's shard.
pub fn bitop(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(op) = BitOp::parse(argv[1]) else {
        return reply(ctx, |w| w.error(errors::SYNTAX));
    };
    if op == BitOp::Not && argv.len() != 4 {
        return reply(ctx, |w| w.error(BITOP_NOT_ERR));
    }
    gather::start(ctx, argv, bitop_step)
}

fn bitop_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    gather::step(ctx, argv, &BITOP_GATHER, bitop_step)
}

fn bitop_finish(ctx: &mut Ctx, argv: &[&[u8]], vals: &[Got]) -> Partial {
    let mut srcs: Vec<&[u8]> = Vec::with_capacity(vals.len());
    for v in vals {
        match v {
            Got::Absent => srcs.push(b""),
            Got::Str(s) => srcs.push(s),
            Got::WrongType => return reply(ctx, |w| w.error(errors::WRONGTYPE)),
        }
    }
    let op = BitOp::parse(argv[1]).unwrap_or(BitOp::Or);
    let out = bitops::bitop(op, &srcs);
    let len = out.len();
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if len > 0 {
        db.set(
            argv[2],
            Value::Str(StrValue::Raw(out)),
            SetExpire::Clear,
            now,
        );
        ctx.notify(class::STRING, "set", argv[2]);
    } else if db.remove(argv[2], now).is_some() {
        ctx.notify(class::GENERIC, "del", argv[2]);
    }
    reply(ctx, |w| w.int(len as i64))
}

// ---------------------------------------------------------------------------------------
// BITFIELD

#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

struct Op {
    kind: FieldOp,
    ty: FieldType,
    offset: u64,
    overflow: Overflow,
}

/// Parses BITFIELD's subcommands (`bitfieldGeneric`); `Err` is the error reply.
fn parse_ops(argv: &[&[u8]], max_bytes: u64) -> Result<Vec<Op>, &'static str> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let rem = argv.len() - j - 1;
        let sub = argv[j];
        let kind = if eq_ic(sub, "get") && rem >= 2 {
            0
        } else if eq_ic(sub, "set") && rem >= 3 {
            1
        } else if eq_ic(sub, "incrby") && rem >= 3 {
            2
        } else if eq_ic(sub, "overflow") && rem >= 1 {
            overflow = Overflow::parse(argv[j + 1]).ok_or(OVERFLOW_TYPE_ERR)?;
            j += 2;
            continue;
        } else {
            return Err(errors::SYNTAX);
        };
        let ty = FieldType::parse(argv[j + 1]).ok_or(bitops::BITFIELD_TYPE_ERR)?;
        let offset = bitops::parse_bit_offset(argv[j + 2], Some(ty.bits), max_bytes)
            .ok_or(BIT_OFFSET_ERR)?;
        let op = if kind == 0 {
            FieldOp::Get
        } else {
            let v = parse_i64(argv[j + 3]).ok_or(errors::NOT_INTEGER)?;
            if kind == 1 {
                FieldOp::Set(v)
            } else {
                FieldOp::IncrBy(v)
            }
        };
        ops.push(Op {
            kind: op,
            ty,
            offset,
            overflow,
        });
        j += if kind == 0 { 3 } else { 4 };
    }
    Ok(ops)
}

/// Runs one SET/INCRBY on `bytes` (already grown); `None` when FAIL refused it.
fn write_field(bytes: &mut [u8], o: &Op) -> Option<i64> {
    let (bits, off) = (o.ty.bits, o.offset);
    if o.ty.signed {
        let old = bitops::get_signed(bytes, off, bits);
        let (ovf, new, ret) = match o.kind {
            FieldOp::IncrBy(d) => {
                let ovf = bitops::signed_overflow(old, d, bits, o.overflow);
                let new = ovf.unwrap_or(old.wrapping_add(d));
                (ovf.is_some(), new, new)
            }
            FieldOp::Set(v) => {
                let ovf = bitops::signed_overflow(v, 0, bits, o.overflow);
                (ovf.is_some(), ovf.unwrap_or(v), old)
            }
            FieldOp::Get => (false, old, old),
        };
        if ovf && o.overflow == Overflow::Fail {
            return None;
        }
        bitops::set_field(bytes, off, bits, new as u64);
        Some(ret)
    } else {
        let old = bitops::get_unsigned(bytes, off, bits);
        let (ovf, new, ret) = match o.kind {
            FieldOp::IncrBy(d) => {
                let ovf = bitops::unsigned_overflow(old, d, bits, o.overflow);
                let new = ovf.unwrap_or(old.wrapping_add(d as u64));
                (ovf.is_some(), new, new)
            }
            FieldOp::Set(v) => {
                let ovf = bitops::unsigned_overflow(v as u64, 0, bits, o.overflow);
                (ovf.is_some(), ovf.unwrap_or(v as u64), old)
            }
            FieldOp::Get => (false, old, old),
        };
        if ovf && o.overflow == Overflow::Fail {
            return None;
        }
        bitops::set_field(bytes, off, bits, new);
        Some(ret as i64)
    }
}

fn read_field(bytes: &[u8], o: &Op) -> i64 {
    if o.ty.signed {
        bitops::get_signed(bytes, o.offset, o.ty.bits)
    } else {
        bitops::get_unsigned(bytes, o.offset, o.ty.bits) as i64
    }
}

fn bitfield_generic(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, read_only_cmd: bool) {
    let max = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let ops = match parse_ops(argv, max) {
        Ok(ops) => ops,
        Err(e) => return w.error(e),
    };
    let highest = ops
        .iter()
        .filter(|o| !matches!(o.kind, FieldOp::Get))
        .map(|o| o.offset + u64::from(o.ty.bits) - 1)
        .max();
    let Some(highest) = highest else {
        // Only GETs: a read.
        let Ok(s) = read_str(ctx.shard, ctx.db, argv[1]) else {
            return w.error(errors::WRONGTYPE);
        };
        let mut buf = [0u8; I64_MAX_DECIMAL_BYTES];
        let bytes = s.map_or(&[][..], |s| s.as_bytes(&mut buf));
        w.array(ops.len());
        for o in &ops {
            w.int(read_field(bytes, o));
        }
        return;
    };
    if read_only_cmd {
        return w.error(BITFIELD_RO_ERR);
    }
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let min_len = (highest >> 3) as usize + 1;
    let res = with_bits(db, argv[1], min_len, now, |bytes, grown| {
        w.array(ops.len());
        // As Redis 7.0: each write that changed the field, or any on a grown string.
        let mut changes = 0;
        for o in &ops {
            if matches!(o.kind, FieldOp::Get) {
                w.int(read_field(bytes, o));
            } else {
                let before = read_field(bytes, o);
                match write_field(bytes, o) {
                    Some(v) => {
                        w.int(v);
                        changes += u64::from(grown || read_field(bytes, o) != before);
                    }
                    None => w.null(),
                }
            }
        }
        ((), changes)
    });
    match res {
        // As Redis 7.0: an event only when the string changed.
        Ok(((), changes)) if changes > 0 => {
            ctx.notify(class::STRING, "setbit", argv[1]);
        }
        Ok(_) => {}
        Err(()) => w.error(errors::WRONGTYPE),
    }
}

pub fn bitfield(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    bitfield_generic(ctx, argv, w, false);
}

pub fn bitfield_ro(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    bitfield_generic(ctx, argv, w, true);
}
