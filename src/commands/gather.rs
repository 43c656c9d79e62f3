//! Collecting values of keys on any shards into one place: the one gathering chain of
//! every multi-key command whose keys may live on several shards (BITOP, PFCOUNT of many
//! keys, PFMERGE, LCS here; the set/sorted-set commands of `multikey.rs`; SORT's BY and GET
//! lookups in `sort.rs`).
//!
//! It is an [`Exec::Hop`](super::Exec::Hop) chain whose carried arguments end in one
//! **slot** per value wanted. A slot is pending ([`TAG_PENDING`] and whatever the command
//! needs to name its key) until the shard owning its key fills it ([`fill_here`]): each
//! step fills every pending slot its shard owns, then hops to the owner of the first slot
//! still pending, so a chain visits each shard at most once per gathering, whatever the
//! order of the keys. The values are read one shard after the other without a global
//! lock: see README "Known differences".
//!
//! The string gathering below (BITOP, PFCOUNT, PFMERGE, LCS) carries `[name, c,
//! args[1..=c]..., slots...]`, one slot per key of [`Spec::keys`], each filled with a tag
//! byte ([`TAG_ABSENT`], [`TAG_WRONGTYPE`], [`TAG_STR`] + bytes).

use super::keyspace::hop;
use super::{Ctx, PartFn, Partial};
use percore_engine::value::Value;
use std::borrow::Cow;

/// A slot not filled yet (what follows the tag, if anything, is the command's).
pub const TAG_PENDING: u8 = b'?';
const TAG_ABSENT: u8 = b'-';
const TAG_WRONGTYPE: u8 = b'!';
const TAG_STR: u8 = b'=';

/// Whether a slot is still pending.
#[inline]
pub fn is_pending(slot: &[u8]) -> bool {
    slot.first() == Some(&TAG_PENDING)
}

/// Fills the pending slots whose key this shard owns. `key_of(i, slot)` names slot `i`'s
/// key (called for pending slots only); `read(ctx, i, slot)` returns its filled form.
/// Returns every slot (filled ones borrowed) and the owner of the first slot still pending
/// (`None` when all are filled).
pub fn fill_here<'s>(
    ctx: &mut Ctx,
    slots: impl IntoIterator<Item = &'s [u8]>,
    key_of: impl Fn(usize, &'s [u8]) -> &'s [u8],
    mut read: impl FnMut(&mut Ctx, usize, &'s [u8]) -> Vec<u8>,
) -> (Vec<Cow<'s, [u8]>>, Option<usize>) {
    let me = ctx.shard.id;
    let mut next = None;
    let filled = slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            if !is_pending(s) {
                return Cow::Borrowed(s);
            }
            let owner = ctx.shard.owner(key_of(i, s));
            if owner == me {
                Cow::Owned(read(ctx, i, s))
            } else {
                next.get_or_insert(owner);
                Cow::Borrowed(s)
            }
        })
        .collect();
    (filled, next)
}

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

/// The first step: wraps `argv` in the gather layout (its slots are added by the first
/// [`step`], which knows the spec) and runs `step` here.
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
    let pending = [TAG_PENDING];
    let fresh = vec![&pending[..]; keys.len()];
    let slots = if argv.len() == 2 + c {
        &fresh[..]
    } else {
        &argv[2 + c..]
    };
    let now = ctx.shard.now_ms;
    let (filled, next) = fill_here(
        ctx,
        slots.iter().copied(),
        |i, _| orig[keys.start + i],
        |ctx, i, _| {
            let db = ctx.shard.keyspace.db_mut(ctx.db);
            let mut v = Vec::new();
            match db.get(orig[keys.start + i], now) {
                None => v.push(TAG_ABSENT),
                Some(Value::Str(s)) => {
                    v.push(TAG_STR);
                    s.write_bytes(&mut v);
                }
                Some(_) => v.push(TAG_WRONGTYPE),
            }
            v
        },
    );
    let me = ctx.shard.id;
    let target = next.or_else(|| {
        spec.finish_on
            .map(|p| ctx.shard.owner(orig[p]))
            .filter(|&s| s != me)
    });
    if let Some(shard) = target {
        return hop(
            shard,
            me_step,
            argv[..2 + c]
                .iter()
                .copied()
                .chain(filled.iter().map(|s| &**s)),
        );
    }
    let vals: Vec<Got> = filled
        .iter()
        .map(|v| match v.split_first() {
            Some((&TAG_STR, rest)) => Got::Str(rest),
            Some((&TAG_WRONGTYPE, _)) => Got::WrongType,
            _ => Got::Absent,
        })
        .collect();
    (spec.finish)(ctx, &orig, &vals)
}
