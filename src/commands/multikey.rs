//! Multi-key set and sorted-set commands whose keys may live on several shards
//! (SINTER/SUNION/SDIFF and their STORE forms, SINTERCARD, ZUNION/ZINTER/ZDIFF and their
//! STORE forms, ZINTERCARD, ZRANGESTORE).
//!
//! When every key lives on the running shard the command computes straight from the
//! database (no copies). Otherwise it runs as [`Exec::Hop`](super::Exec::Hop) steps: the
//! state carried between shards is the original arguments followed by one slot per
//! source key, filled by `gather::fill_here` (the shared gathering chain) with the
//! value's wire form (or "missing" / "wrong type"); once
//! all are filled, the command continues on the destination key's shard (or where it
//! is) and computes. Not atomic across shards: each source is read when its shard's step
//! runs (see the README's known differences).

use super::gather;
use super::keyspace::{hop, reply};
use super::{Ctx, Partial};
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_engine::sets::{SetLimits, SetValue};
use percore_engine::value::Value;
use percore_engine::zsets::{ZSetLimits, ZSetValue};
use percore_net::resp::{Protocol, ReplyWriter};

/// A source key's value as a multi-key command sees it.
#[derive(Clone, Copy)]
pub enum Src<'a> {
    Missing,
    WrongType,
    Set(&'a SetValue),
    ZSet(&'a ZSetValue),
}

/// Slot tags in the carried state.
const TAG_MISSING: u8 = b'0';
const TAG_WRONGTYPE: u8 = b'W';
const TAG_SET: u8 = b'S';
const TAG_ZSET: u8 = b'Z';

/// Where a command's keys are.
pub struct Keys {
    /// argv positions of the source keys.
    pub sources: Vec<usize>,
    /// argv position of the destination key, for STORE forms.
    pub dest: Option<usize>,
}

/// The encoding limits a computed value is built with.
#[derive(Clone, Copy)]
pub struct Limits {
    pub set: SetLimits,
    pub zset: ZSetLimits,
}

/// What a multi-key command computed.
pub enum Outcome {
    /// Just a reply (encoded).
    Reply(Vec<u8>),
    /// Store `value` under the destination key (delete it when `None`), then reply.
    Store {
        value: Option<Value>,
        reply: Vec<u8>,
    },
}

/// One multi-key command: where its keys are, and what it computes from the sources.
pub trait MultiKey {
    /// The key positions, or an error reply for arguments that make them unknowable
    /// (a bad `numkeys`).
    fn keys(argv: &[&[u8]]) -> Result<Keys, String>;
    /// The result, from the sources in `Keys::sources` order.
    fn compute(proto: Protocol, argv: &[&[u8]], srcs: &[Src<'_>], limits: &Limits) -> Outcome;
}

/// An encoded reply.
pub fn encoded(proto: Protocol, f: impl FnOnce(&mut ReplyWriter)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut ReplyWriter {
        out: &mut out,
        proto,
    });
    out
}

/// The value under `key` as a source.
fn lookup_src<'a>(db: &'a percore_engine::Db, key: &[u8]) -> Src<'a> {
    match db.table().get(key).map(|e| &e.value) {
        None => Src::Missing,
        Some(Value::Set(s)) => Src::Set(s),
        Some(Value::ZSet(z)) => Src::ZSet(z),
        Some(_) => Src::WrongType,
    }
}

/// Expires and counts the lookups of `keys` (Redis's `lookupKeyRead`).
fn touch_sources(ctx: &mut Ctx, keys: &[&[u8]]) {
    let now = ctx.shard.now_ms;
    for k in keys {
        let hit = ctx.shard.keyspace.db_mut(ctx.db).get(k, now).is_some();
        if hit {
            ctx.shard.stats.keyspace_hits += 1;
        } else {
            ctx.shard.stats.keyspace_misses += 1;
        }
    }
}

fn limits(ctx: &Ctx) -> Limits {
    Limits {
        set: super::sets::set_limits(&ctx.shard.cfg),
        zset: super::zsets::zset_limits(&ctx.shard.cfg),
    }
}

/// Stores the outcome at the destination `argv[dest]` and returns the reply.
fn apply(ctx: &mut Ctx, argv: &[&[u8]], dest: Option<usize>, out: Outcome) -> Partial {
    match out {
        Outcome::Reply(r) => Partial::Encoded(r),
        Outcome::Store { value, reply } => {
            let now = ctx.shard.now_ms;
            let key = argv[dest.expect("a STORE form names its destination")];
            let db = ctx.shard.keyspace.db_mut(ctx.db);
            match value {
                Some(v) => {
                    db.set(key, v, SetExpire::Clear, now);
                    let (class, event) = store_event(argv[0]);
                    ctx.notify(class, event, key);
                }
                None => {
                    if db.remove(key, now).is_some() {
                        ctx.notify(class::GENERIC, "del", key);
                    }
                }
            }
            Partial::Encoded(reply)
        }
    }
}

/// The keyspace event of a STORE form that stored a value: the command's name (Redis's
/// GEORADIUS and GEORADIUSBYMEMBER report "georadiusstore").
fn store_event(name: &[u8]) -> (u32, &'static str) {
    const EVENTS: [(&str, u32); 9] = [
        ("sinterstore", class::SET),
        ("sunionstore", class::SET),
        ("sdiffstore", class::SET),
        ("zinterstore", class::ZSET),
        ("zunionstore", class::ZSET),
        ("zdiffstore", class::ZSET),
        ("zrangestore", class::ZSET),
        ("geosearchstore", class::ZSET),
        ("georadiusstore", class::ZSET),
    ];
    let name = if name.len() >= 9 && name[..9].eq_ignore_ascii_case(b"georadius") {
        &b"georadiusstore"[..]
    } else {
        name
    };
    EVENTS
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map_or((class::GENERIC, "store"), |&(n, c)| (c, n))
}

/// The first step of a multi-key command, on the client's shard.
pub fn start<C: MultiKey>(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let keys = match C::keys(argv) {
        Ok(k) => k,
        Err(e) => return reply(ctx, |w| w.error(&e)),
    };
    let me = ctx.shard.id;
    let all_here = keys
        .sources
        .iter()
        .chain(keys.dest.iter())
        .all(|&p| ctx.shard.owner(argv[p]) == me);
    if all_here {
        let names: Vec<&[u8]> = keys.sources.iter().map(|&p| argv[p]).collect();
        touch_sources(ctx, &names);
        let lim = limits(ctx);
        let out = {
            let db = ctx.shard.keyspace.db(ctx.db);
            let srcs: Vec<Src> = names.iter().map(|k| lookup_src(db, k)).collect();
            C::compute(ctx.proto, argv, &srcs, &lim)
        };
        return apply(ctx, argv, keys.dest, out);
    }
    // State: [name, argc, args[1..], one pending slot per source].
    let argc = argv.len().to_string();
    let pending = [gather::TAG_PENDING];
    let state: Vec<&[u8]> = std::iter::once(argv[0])
        .chain(std::iter::once(argc.as_bytes()))
        .chain(argv[1..].iter().copied())
        .chain(keys.sources.iter().map(|_| &pending[..]))
        .collect();
    step::<C>(ctx, &state)
}

/// A source copied out of the carried state.
enum Owned {
    Missing,
    WrongType,
    Set(SetValue),
    ZSet(ZSetValue),
}

impl Owned {
    fn as_src(&self) -> Src<'_> {
        match self {
            Owned::Missing => Src::Missing,
            Owned::WrongType => Src::WrongType,
            Owned::Set(s) => Src::Set(s),
            Owned::ZSet(z) => Src::ZSet(z),
        }
    }
}

/// A step on some shard: fill the slots this shard owns, then hop or compute.
fn step<C: MultiKey>(ctx: &mut Ctx, state: &[&[u8]]) -> Partial {
    let argc: usize = std::str::from_utf8(state[1])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("the first step wrote argc");
    let mut argv: Vec<&[u8]> = Vec::with_capacity(argc);
    argv.push(state[0]);
    argv.extend_from_slice(&state[2..=argc]);
    let slots = &state[argc + 1..];
    let Ok(keys) = C::keys(&argv) else {
        unreachable!("checked by the first step");
    };
    let me = ctx.shard.id;
    let mine: Vec<&[u8]> = keys
        .sources
        .iter()
        .zip(slots)
        .filter(|&(&p, s)| gather::is_pending(s) && ctx.shard.owner(argv[p]) == me)
        .map(|(&p, _)| argv[p])
        .collect();
    touch_sources(ctx, &mine);
    let (filled, next) = gather::fill_here(
        ctx,
        slots.iter().copied(),
        |i, _| argv[keys.sources[i]],
        |ctx, i, _| {
            let db = ctx.shard.keyspace.db(ctx.db);
            match lookup_src(db, argv[keys.sources[i]]) {
                Src::Missing => vec![TAG_MISSING],
                Src::WrongType => vec![TAG_WRONGTYPE],
                Src::Set(v) => {
                    let mut b = vec![TAG_SET];
                    b.extend_from_slice(&v.to_wire());
                    b
                }
                Src::ZSet(v) => {
                    let mut b = vec![TAG_ZSET];
                    b.extend_from_slice(&v.to_wire());
                    b
                }
            }
        },
    );
    let next = next.or_else(|| {
        keys.dest
            .map(|d| ctx.shard.owner(argv[d]))
            .filter(|&o| o != me)
    });
    if let Some(shard) = next {
        let head = &state[..=argc];
        return hop(
            shard,
            step::<C>,
            head.iter().copied().chain(filled.iter().map(|s| &**s)),
        );
    }
    let lim = limits(ctx);
    let owned: Vec<Owned> = filled
        .iter()
        .map(|s| match s.split_first() {
            Some((&TAG_SET, w)) => {
                SetValue::from_wire(w, &lim.set).map_or(Owned::Missing, Owned::Set)
            }
            Some((&TAG_ZSET, w)) => {
                ZSetValue::from_wire(w, &lim.zset).map_or(Owned::Missing, Owned::ZSet)
            }
            Some((&TAG_WRONGTYPE, _)) => Owned::WrongType,
            _ => Owned::Missing,
        })
        .collect();
    let srcs: Vec<Src> = owned.iter().map(Owned::as_src).collect();
    let out = C::compute(ctx.proto, &argv, &srcs, &lim);
    apply(ctx, &argv, keys.dest, out)
}
