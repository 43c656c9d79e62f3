//! Collecting the string values of several keys on any shards into one place, for the
//! multi-key commands on strings (BITOP, PFCOUNT of many keys, PFMERGE, LCS).
//!
//! It is an [`Exec::Hop`](super::Exec::Hop) chain: each step reads the keys its shard owns,
//! in key order, appends them to the argument vector, and hops to the owner of the next
//! key; the last step (on the shard a command names, e.g. BITOP's destination) runs the
//! command's `finish` on the gathered values. Hop argv: `[name, c, args[1..=c]...,
//! gathered...]`, each gathered value a tag byte ([`TAG_ABSENT`], [`TAG_WRONGTYPE`],
//! [`TAG_STR`] + bytes). The values are read one shard after the other without a global
//! lock: see README "Known differences".

use super::keyspace::hop;
use super::{Ctx, PartFn, Partial};
use percore_engine::value::Value;

const TAG_ABSENT: u8 = b'-';
const TAG_WRONGTYPE: u8 = b'!';
const TAG_STR: u8 = b'=';

/// A gathered key.
#[derive(Clone, Copy, Debug)]
pub enum Got<'a> {
    Absent,
    WrongType,
    Str(&'a [u8]),
}

/// How a command gathers.
pub struct Spec {
    /// Positions (in argv, name at 0) of the keys to gather, in order.
    pub keys: fn(argc: usize) -> std::ops::Range<usize>,
    /// Position of the key whose shard must run `finish` (`None`: any shard).
    pub finish_on: Option<usize>,
    /// Builds the reply from argv (name at 0) and the gathered values, in key order.
    pub finish: fn(&mut Ctx, &[&[u8]], &[Got]) -> Partial,
}

/// The first step: wraps `argv` in the gather layout and runs `step` here.
pub fn start(ctx: &Ctx, argv: &[&[u8]], step: PartFn) -> Partial {
    let count = (argv.len() - 1).to_string();
    let mut args: Vec<&[u8]> = Vec::with_capacity(argv.len() + 1);
    args.push(argv[0]);
    args.push(count.as_bytes());
    args.extend_from_slice(&argv[1..]);
    hop(ctx.shard.id, step, args)
}

/// One step of the chain (each command's step function calls this with its spec).
pub fn step(ctx: &mut Ctx, argv: &[&[u8]], spec: &Spec, me_step: PartFn) -> Partial {
    let c: usize = std::str::from_utf8(argv[1])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut orig: Vec<&[u8]> = Vec::with_capacity(c + 1);
    orig.push(argv[0]);
    orig.extend_from_slice(&argv[2..2 + c]);
    let keys = (spec.keys)(orig.len());
    let have = argv.len() - 2 - c;
    let me = ctx.shard.id;
    let now = ctx.shard.now_ms;
    let mut fresh: Vec<Vec<u8>> = Vec::new();
    let mut next = keys.start + have;
    while next < keys.end && ctx.shard.owner(orig[next]) == me {
        let db = ctx.shard.keyspace.db_mut(ctx.db);
        let mut v = Vec::new();
        match db.get(orig[next], now) {
            None => v.push(TAG_ABSENT),
            Some(Value::Str(s)) => {
                v.push(TAG_STR);
                s.write_bytes(&mut v);
            }
            #[allow(unreachable_patterns, reason = "more value types arrive later")]
            Some(_) => v.push(TAG_WRONGTYPE),
        }
        fresh.push(v);
        next += 1;
    }
    let target = if next < keys.end {
        Some(ctx.shard.owner(orig[next]))
    } else {
        spec.finish_on
            .map(|p| ctx.shard.owner(orig[p]))
            .filter(|&s| s != me)
    };
    if let Some(shard) = target {
        return hop(
            shard,
            me_step,
            argv.iter().copied().chain(fresh.iter().map(Vec::as_slice)),
        );
    }
    let vals: Vec<Got> = argv[2 + c..]
        .iter()
        .copied()
        .chain(fresh.iter().map(Vec::as_slice))
        .map(|v| match v.split_first() {
            Some((&TAG_STR, rest)) => Got::Str(rest),
            Some((&TAG_WRONGTYPE, _)) => Got::WrongType,
            _ => Got::Absent,
        })
        .collect();
    (spec.finish)(ctx, &orig, &vals)
}
