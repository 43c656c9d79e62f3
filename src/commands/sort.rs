//! SORT and SORT_RO, as Redis 7.0's `sortCommandGeneric`: BY (a `*` pattern, `key->field`
//! hash fields, or a constant for "no sort"), GET (`#` and patterns, several), LIMIT,
//! ASC/DESC, ALPHA, STORE.
//!
//! The keys that BY and GET patterns name, and the STORE destination, may live on any
//! shard, so SORT is an [`Exec::Hop`](super::Exec::Hop) chain whose carried state is
//! `[name, header, args[1..]..., elements..., slots...]`:
//! 1. **source**: on the sorted key's shard, the elements are read (a list or sorted set
//!    with nothing to sort reads only the LIMIT range, as Redis);
//! 2. **by**: one slot per element holds its BY lookup; the slots are filled by the shared
//!    gathering chain (`gather::fill_here`), then the elements are sorted and cut to the
//!    LIMIT range;
//! 3. **get**: one slot per (element in range, GET pattern), filled the same way;
//! 4. **write** (STORE): on the destination's shard the values become a list.
//!
//! A phase with nothing to look up elsewhere runs straight on. Not atomic across shards:
//! each looked-up key is read when its shard's step runs (README "Known differences").

use super::gather::{self, TAG_PENDING};
use super::keyspace::{hop, reply};
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_engine::lists::{End, List};
use percore_engine::value::Value;
use std::cmp::Ordering;

const SCORE_ERR: &str = "ERR One or more scores can't be converted into double";
const BY_CLUSTER_ERR: &str = "ERR BY option of SORT denied in Cluster mode.";
const GET_CLUSTER_ERR: &str = "ERR GET option of SORT denied in Cluster mode.";

/// A filled slot: the key (or hash field) was absent or of another type.
const TAG_NIL: u8 = b'N';
/// A filled slot: the value follows.
const TAG_VAL: u8 = b'V';

/// The options of one SORT, parsed as Redis's option loop.
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    limit: (i64, i64),
    store: Option<&'a [u8]>,
    by: Option<&'a [u8]>,
    /// BY names a constant (no `*`): nothing is sorted.
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

/// The bytes up to the first NUL: what C's string functions see of a Redis `sds`.
fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

fn parse<'a>(argv: &[&'a [u8]], cluster: bool) -> Result<Opts<'a>, &'static str> {
    let readonly = eq_ic(argv[0], "sort_ro");
    let mut opt = Opts {
        desc: false,
        alpha: false,
        limit: (0, -1),
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let word = argv[j];
        if eq_ic(word, "asc") {
            opt.desc = false;
        } else if eq_ic(word, "desc") {
            opt.desc = true;
        } else if eq_ic(word, "alpha") {
            opt.alpha = true;
        } else if eq_ic(word, "limit") && left >= 2 {
            let (Some(from), Some(count)) = (parse_i64(argv[j + 1]), parse_i64(argv[j + 2])) else {
                return Err(errors::NOT_INTEGER);
            };
            opt.limit = (from, count);
            j += 2;
        } else if !readonly && eq_ic(word, "store") && left >= 1 {
            opt.store = Some(argv[j + 1]);
            j += 1;
        } else if eq_ic(word, "by") && left >= 1 {
            let p = argv[j + 1];
            opt.by = Some(p);
            // A constant BY turns sorting off for good: a later `*` pattern does not
            // turn it back on (Redis only ever sets `dontsort`).
            if c_str(p).contains(&b'*') {
                if cluster {
                    return Err(BY_CLUSTER_ERR);
                }
            } else {
                opt.dontsort = true;
            }
            j += 1;
        } else if eq_ic(word, "get") && left >= 1 {
            if cluster {
                return Err(GET_CLUSTER_ERR);
            }
            opt.gets.push(argv[j + 1]);
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok(opt)
}

/// `SORT ... GET #`: the element itself (Redis compares the first two C characters).
fn is_hash_pattern(p: &[u8]) -> bool {
    p.first() == Some(&b'#') && p.get(1).is_none_or(|&c| c == 0)
}

/// The key, and hash field, a pattern names for `elem` (`lookupKeyByPattern`): the first
/// `*` is replaced by the element; `->field` after it (non-empty) reads a hash field.
/// `None` for a pattern without `*`.
fn pattern_key<'p>(pat: &'p [u8], elem: &[u8]) -> Option<(Vec<u8>, Option<&'p [u8]>)> {
    let cpat = c_str(pat);
    let star = cpat.iter().position(|&b| b == b'*')?;
    let arrow = cpat[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|f| star + 1 + f)
        .filter(|&f| f + 2 < cpat.len());
    let field = arrow.map(|f| &pat[f + 2..]);
    let post_end = arrow.unwrap_or(pat.len());
    let mut key = Vec::with_capacity(pat.len() + elem.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pat[star + 1..post_end]);
    Some((key, field))
}

/// A pending lookup slot: the tag, the key's length (4 bytes LE), the key, the field.
fn pending_slot(key: &[u8], field: Option<&[u8]>) -> Vec<u8> {
    let mut s = Vec::with_capacity(5 + key.len() + field.map_or(0, <[u8]>::len));
    s.push(TAG_PENDING);
    s.extend_from_slice(&(key.len() as u32).to_le_bytes());
    s.extend_from_slice(key);
    if let Some(f) = field {
        s.extend_from_slice(f);
    }
    s
}

/// The key and field of a pending slot.
fn slot_key(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    let n = u32::from_le_bytes(s[1..5].try_into().expect("4 bytes")) as usize;
    let field = &s[5 + n..];
    (&s[5..5 + n], (!field.is_empty()).then_some(field))
}

/// A filled slot's value.
fn slot_value(s: &[u8]) -> Option<&[u8]> {
    match s.split_first() {
        Some((&TAG_VAL, v)) => Some(v),
        _ => None,
    }
}

/// Reads a pending slot's key on this shard: a string's value, or a hash's field.
fn read_slot(ctx: &mut Ctx, slot: &[u8], count: bool) -> Vec<u8> {
    let (key, field) = slot_key(slot);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let v = db.get(key, now);
    let mut out = vec![TAG_VAL];
    let found = match (v, field) {
        (Some(Value::Str(s)), None) => {
            s.write_bytes(&mut out);
            true
        }
        (Some(Value::Hash(h)), Some(f)) => match h.get(f) {
            Some(x) => {
                out.extend_from_slice(x.as_bytes(&mut [0; 20]));
                true
            }
            None => false,
        },
        _ => false,
    };
    let hit = v.is_some();
    if count {
        // Redis reads pattern keys with lookupKeyRead unless it stores (lookupKeyWrite).
        if hit {
            ctx.shard.stats.keyspace_hits += 1;
        } else {
            ctx.shard.stats.keyspace_misses += 1;
        }
    }
    if found { out } else { vec![TAG_NIL] }
}

/// Redis's `strtod` check on a sort weight: the whole C string must convert (an empty
/// one is 0), not NaN, not out of range. Leading white space, `inf`, `infinity` and
/// hexadecimal floats are accepted, as glibc's `strtod`.
fn parse_weight(b: &[u8]) -> Option<f64> {
    let s = c_str(b);
    if s.is_empty() {
        return Some(0.0);
    }
    let t = &s[s.iter().take_while(|c| is_c_space(**c)).count()..];
    let (neg, body) = match t.split_first() {
        Some((b'-', r)) => (true, r),
        Some((b'+', r)) => (false, r),
        _ => (false, t),
    };
    if body.first().is_some_and(|c| matches!(c, b'+' | b'-')) {
        return None;
    }
    let v = if body.len() > 2 && body[0] == b'0' && body[1].eq_ignore_ascii_case(&b'x') {
        parse_hex_float(&body[2..])?
    } else {
        let text = std::str::from_utf8(body).ok()?;
        if !text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'+' || c == b'-')
        {
            return None;
        }
        let v: f64 = text.parse().ok()?;
        let named = body.first().is_some_and(u8::is_ascii_alphabetic);
        if v.is_infinite() && !named {
            return None; // overflow: ERANGE
        }
        if v == 0.0
            && text
                .bytes()
                .take_while(|c| !matches!(c, b'e' | b'E'))
                .any(|c| (b'1'..=b'9').contains(&c))
        {
            return None; // underflow: ERANGE
        }
        v
    };
    if v.is_nan() || (v != 0.0 && v.is_finite() && v.abs() < f64::MIN_POSITIVE) {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// C's `isspace` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The digits of a hexadecimal float after `0x`: `h[.h][p[+-]d]`, all of it.
fn parse_hex_float(b: &[u8]) -> Option<f64> {
    let (mut mant, mut exp, mut digits, mut seen_dot, mut i) = (0f64, 0i64, 0usize, false, 0);
    while i < b.len() {
        match b[i] {
            b'.' if !seen_dot => seen_dot = true,
            c if c.is_ascii_hexdigit() => {
                let d = f64::from((c as char).to_digit(16).expect("hex digit"));
                mant = mant * 16.0 + d;
                digits += 1;
                if seen_dot {
                    exp -= 4;
                }
            }
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() {
        if !b[i].eq_ignore_ascii_case(&b'p') {
            return None;
        }
        let e: i64 = std::str::from_utf8(&b[i + 1..]).ok()?.parse().ok()?;
        if !b[i + 1..]
            .iter()
            .all(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
        {
            return None;
        }
        exp = exp.saturating_add(e);
    }
    let v = mant * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    (v.is_finite() || mant == 0.0).then_some(v)
}

/// Which step of the chain the carried state is at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Source,
    By,
    Get,
    Write,
}

/// The carried state's second argument: counts, phase, the LIMIT range, and whether the
/// set rule forced ALPHA sorting (SORT of a set with BY nosort and STORE).
#[derive(Clone, Copy)]
struct Header {
    nargs: usize,
    nelems: usize,
    phase: Phase,
    start: i64,
    end: i64,
    forced: bool,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let p = match self.phase {
            Phase::Source => 's',
            Phase::By => 'b',
            Phase::Get => 'g',
            Phase::Write => 'w',
        };
        format!(
            "{} {} {p} {} {} {}",
            self.nargs,
            self.nelems,
            self.start,
            self.end,
            u8::from(self.forced)
        )
        .into_bytes()
    }

    fn decode(b: &[u8]) -> Self {
        let s = std::str::from_utf8(b).expect("written by encode");
        let f: Vec<&str> = s.split(' ').collect();
        let num = |i: usize| f[i].parse::<i64>().expect("written by encode");
        Header {
            nargs: num(0) as usize,
            nelems: num(1) as usize,
            phase: match f[2] {
                "s" => Phase::Source,
                "b" => Phase::By,
                "g" => Phase::Get,
                _ => Phase::Write,
            },
            start: num(3),
            end: num(4),
            forced: num(5) == 1,
        }
    }
}

/// SORT / SORT_RO: the first step, on the client's shard.
pub fn sort(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let cluster = ctx.shard.cluster.is_some();
    if let Err(e) = parse(argv, cluster) {
        return reply(ctx, |w| w.error(e));
    }
    let h = Header {
        nargs: argv.len(),
        nelems: 0,
        phase: Phase::Source,
        start: 0,
        end: 0,
        forced: false,
    };
    let owner = ctx.shard.owner(argv[1]);
    if owner != ctx.shard.id {
        return carry(owner, argv, h, &[], &[]);
    }
    load(ctx, argv, h)
}

/// Continues on `shard` with the carried state.
fn carry(shard: usize, argv: &[&[u8]], h: Header, elems: &[&[u8]], slots: &[&[u8]]) -> Partial {
    let head = h.encode();
    hop(
        shard,
        step,
        [argv[0], &head[..]]
            .into_iter()
            .chain(argv[1..].iter().copied())
            .chain(elems.iter().copied())
            .chain(slots.iter().copied()),
    )
}

/// A later step of the chain.
fn step(ctx: &mut Ctx, state: &[&[u8]]) -> Partial {
    let h = Header::decode(state[1]);
    let mut argv: Vec<&[u8]> = Vec::with_capacity(h.nargs);
    argv.push(state[0]);
    argv.extend_from_slice(&state[2..=h.nargs]);
    let elems = &state[h.nargs + 1..h.nargs + 1 + h.nelems];
    let slots = &state[h.nargs + 1 + h.nelems..];
    match h.phase {
        Phase::Source => load(ctx, &argv, h),
        Phase::By | Phase::Get => gather_then(ctx, &argv, h, elems, slots),
        Phase::Write => write(ctx, &argv, elems),
    }
}

/// The effective options: parsed from argv, with the set rule applied.
fn opts<'a>(ctx: &Ctx, argv: &[&'a [u8]], h: Header) -> Opts<'a> {
    let Ok(mut o) = parse(argv, ctx.shard.cluster.is_some()) else {
        unreachable!("checked by the first step");
    };
    if h.forced {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    o
}

/// Phase 1, on the sorted key's shard: reads the elements.
fn load(ctx: &mut Ctx, argv: &[&[u8]], mut h: Header) -> Partial {
    let now = ctx.shard.now_ms;
    let opt = opts(ctx, argv, h);
    let mut elems: Vec<Vec<u8>> = Vec::new();
    let (mut dontsort, desc, store) = (opt.dontsort, opt.desc, opt.store.is_some());
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let value = db.get_mut(argv[1], now);
    let hit = value.is_some();
    let vlen = match &value {
        None => 0,
        Some(Value::List(l)) => l.len(),
        Some(Value::Set(s)) => s.len(),
        Some(Value::ZSet(zset)) => zset.len(),
        Some(_) => {
            return reply(ctx, |w| w.error(errors::WRONGTYPE));
        }
    } as i64;
    if dontsort && matches!(value, Some(Value::Set(_))) && store {
        // Redis sorts a set's members when it stores them, so the result does not
        // depend on the set's internal order.
        dontsort = false;
        h.forced = true;
    }
    // LIMIT, clamped as Redis.
    let mut start = opt.limit.0.max(0).min(vlen);
    let count = opt.limit.1.max(-1).min(vlen);
    let mut end = if count < 0 {
        vlen - 1
    } else {
        start + count - 1
    };
    if start >= vlen {
        start = vlen - 1;
        end = vlen - 2;
    }
    if end >= vlen {
        end = vlen - 1;
    }
    let ranged = dontsort && (start != 0 || end != vlen - 1);
    let take = if ranged {
        (end - start + 1).max(0) as usize
    } else {
        vlen as usize
    };
    let mut buf = [0u8; 20];
    match value {
        None => {}
        Some(Value::List(l)) => {
            if dontsort {
                if end >= start {
                    if desc {
                        let first = (vlen - start - 1) as usize;
                        let mut all: Vec<_> = l.iter().take(first + 1).collect();
                        all.reverse();
                        elems.extend(all.iter().take(take).map(|v| v.as_bytes(&mut buf).to_vec()));
                    } else {
                        let from = (start as usize).min(l.len());
                        let n = take.min(l.len() - from);
                        l.for_each_in(from, n, |v| elems.push(v.as_bytes(&mut buf).to_vec()));
                    }
                    end -= start;
                    start = 0;
                }
            } else {
                elems.extend(l.iter().map(|v| v.as_bytes(&mut buf).to_vec()));
            }
        }
        Some(Value::Set(s)) => s.for_each(|m| elems.push(m.to_vec())),
        Some(Value::ZSet(zset)) => {
            // Redis converts a sorted set to its skiplist form for SORT.
            zset.grow_to_big();
            if dontsort {
                let len = vlen as usize;
                let (s, e) = if desc {
                    (
                        len - start.max(0) as usize - take,
                        len - start.max(0) as usize,
                    )
                } else {
                    (start.max(0) as usize, start.max(0) as usize + take)
                };
                if take > 0 {
                    zset.for_ranks(s, e, desc, |_, m| elems.push(m.to_vec()));
                }
                end -= start;
                start = 0;
            } else {
                zset.for_ranks(0, vlen as usize, false, |_, m| elems.push(m.to_vec()));
            }
        }
        Some(_) => unreachable!("checked above"),
    }
    if hit {
        ctx.shard.stats.keyspace_hits += 1;
    } else {
        ctx.shard.stats.keyspace_misses += 1;
    }
    h.start = start;
    h.end = end;
    let opt = opts(ctx, argv, h);
    if !opt.dontsort
        && let Some(by) = opt.by
    {
        // Phase 2: one BY lookup per element.
        let slots: Vec<Vec<u8>> = elems
            .iter()
            .map(|e| match pattern_key(by, e) {
                Some((k, f)) => pending_slot(&k, f),
                None => vec![TAG_NIL],
            })
            .collect();
        h.phase = Phase::By;
        h.nelems = elems.len();
        let elems: Vec<&[u8]> = elems.iter().map(Vec::as_slice).collect();
        let slots: Vec<&[u8]> = slots.iter().map(Vec::as_slice).collect();
        return gather_then(ctx, argv, h, &elems, &slots);
    }
    let elems: Vec<&[u8]> = elems.iter().map(Vec::as_slice).collect();
    sorted(ctx, argv, h, &elems, None)
}

/// Fills the slots this shard owns; hops on while any is pending, else goes on with the
/// phase's continuation.
fn gather_then(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    h: Header,
    elems: &[&[u8]],
    slots: &[&[u8]],
) -> Partial {
    let count = opts(ctx, argv, h).store.is_none();
    let (filled, next) = gather::fill_here(
        ctx,
        slots.iter().copied(),
        |_, s| slot_key(s).0,
        |ctx, _, s| read_slot(ctx, s, count),
    );
    if let Some(shard) = next {
        let filled: Vec<&[u8]> = filled.iter().map(|s| &**s).collect();
        return carry(shard, argv, h, elems, &filled);
    }
    let vals: Vec<Option<&[u8]>> = filled.iter().map(|s| slot_value(s)).collect();
    match h.phase {
        Phase::By => sorted(ctx, argv, h, elems, Some(&vals)),
        _ => output(ctx, argv, h, &vals),
    }
}

/// How two elements compare.
struct Key<'a> {
    elem: &'a [u8],
    score: f64,
    cmp: Option<&'a [u8]>,
}

/// Sorts (unless BY names a constant), cuts to the LIMIT range, then looks up the GETs.
fn sorted(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    mut h: Header,
    elems: &[&[u8]],
    by: Option<&[Option<&[u8]>]>,
) -> Partial {
    let o = opts(ctx, argv, h);
    let mut order: Vec<Key> = elems
        .iter()
        .map(|e| Key {
            elem: e,
            score: 0.0,
            cmp: None,
        })
        .collect();
    if !o.dontsort {
        let mut bad = false;
        for (j, k) in order.iter_mut().enumerate() {
            let byval = match by {
                Some(v) => match v[j] {
                    Some(x) => x,
                    None => continue,
                },
                None => k.elem,
            };
            if o.alpha {
                if by.is_some() {
                    k.cmp = Some(byval);
                }
            } else {
                match parse_weight(byval) {
                    Some(s) => k.score = s,
                    None => bad = true,
                }
            }
        }
        if bad {
            return reply(ctx, |w| w.error(SCORE_ERR));
        }
        let store = o.store.is_some();
        // C's strcoll in the C locale stops at a NUL; STORE compares binary.
        let text = |a: &[u8], b: &[u8]| {
            if store {
                a.cmp(b)
            } else {
                c_str(a).cmp(c_str(b))
            }
        };
        let alpha = o.alpha;
        let has_by = by.is_some();
        order.sort_by(|a, b| {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.elem.cmp(b.elem))
            } else if has_by {
                match (a.cmp, b.cmp) {
                    (Some(x), Some(y)) => text(x, y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                }
            } else {
                text(a.elem, b.elem)
            };
            if o.desc { c.reverse() } else { c }
        });
    }
    let range: Vec<&[u8]> = if h.end >= h.start && h.start >= 0 {
        order[h.start as usize..=h.end as usize]
            .iter()
            .map(|k| k.elem)
            .collect()
    } else {
        Vec::new()
    };
    if o.gets.is_empty() {
        let vals: Vec<Option<&[u8]>> = range.into_iter().map(Some).collect();
        return output(ctx, argv, h, &vals);
    }
    let mut slots: Vec<Vec<u8>> = Vec::with_capacity(range.len() * o.gets.len());
    for e in &range {
        for g in &o.gets {
            slots.push(if is_hash_pattern(g) {
                let mut s = vec![TAG_VAL];
                s.extend_from_slice(e);
                s
            } else {
                match pattern_key(g, e) {
                    Some((k, f)) => pending_slot(&k, f),
                    None => vec![TAG_NIL],
                }
            });
        }
    }
    h.phase = Phase::Get;
    h.nelems = 0;
    let slots: Vec<&[u8]> = slots.iter().map(Vec::as_slice).collect();
    gather_then(ctx, argv, h, &[], &slots)
}

/// The values are known: reply, or carry them to the destination's shard.
fn output(ctx: &mut Ctx, argv: &[&[u8]], mut h: Header, vals: &[Option<&[u8]>]) -> Partial {
    let o = opts(ctx, argv, h);
    let Some(dest) = o.store else {
        return reply(ctx, |w| {
            w.array(vals.len());
            for v in vals {
                match v {
                    Some(b) => w.bulk(b),
                    None => w.null(),
                }
            }
        });
    };
    // STORE writes an absent GET as an empty string.
    let items: Vec<&[u8]> = vals.iter().map(|v| v.unwrap_or(b"")).collect();
    let owner = ctx.shard.owner(dest);
    if owner != ctx.shard.id {
        h.phase = Phase::Write;
        h.nelems = items.len();
        return carry(owner, argv, h, &items, &[]);
    }
    write(ctx, argv, &items)
}

/// STORE on the destination's shard: a list of `items`, or no key when there are none.
fn write(ctx: &mut Ctx, argv: &[&[u8]], items: &[&[u8]]) -> Partial {
    let dest = opts_store(argv).expect("a STORE names its destination");
    let now = ctx.shard.now_ms;
    let fill = ctx.shard.cfg.list_max_listpack_size;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    if items.is_empty() {
        if db.remove(dest, now).is_some() {
            ctx.notify(class::GENERIC, "del", dest);
        }
    } else {
        let mut l = List::new();
        for it in items {
            l.push(End::Tail, it, fill);
        }
        db.set(dest, Value::List(Box::new(l)), SetExpire::Clear, now);
        crate::blocking::signal_key(ctx.shard, ctx.db, dest);
        ctx.notify(class::LIST, "sortstore", dest);
    }
    reply(ctx, |w| w.int(items.len() as i64))
}

/// The STORE destination as the option parser finds it.
fn opts_store<'a>(argv: &[&'a [u8]]) -> Option<&'a [u8]> {
    parse(argv, false).ok().and_then(|o| o.store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_substitute_the_first_star_and_split_hash_fields() {
        assert_eq!(pattern_key(b"w_*", b"3"), Some((b"w_3".to_vec(), None)));
        assert_eq!(
            pattern_key(b"h_*->f", b"x"),
            Some((b"h_x".to_vec(), Some(&b"f"[..])))
        );
        // An arrow with no field, or before the star, is part of the key.
        assert_eq!(pattern_key(b"h_*->", b"x"), Some((b"h_x->".to_vec(), None)));
        assert_eq!(pattern_key(b"a->*", b"x"), Some((b"a->x".to_vec(), None)));
        assert_eq!(pattern_key(b"a*b*", b"x"), Some((b"axb*".to_vec(), None)));
        assert_eq!(pattern_key(b"nostar", b"x"), None);
        assert!(is_hash_pattern(b"#"));
        assert!(!is_hash_pattern(b"#a"));
    }

    #[test]
    fn weights_convert_as_strtod() {
        assert_eq!(parse_weight(b""), Some(0.0));
        assert_eq!(parse_weight(b" 1.5"), Some(1.5));
        assert_eq!(parse_weight(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_weight(b"0x10"), Some(16.0));
        assert_eq!(parse_weight(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_weight(b"12\0junk"), Some(12.0));
        assert_eq!(parse_weight(b"1e400"), None);
        assert_eq!(parse_weight(b"nan"), None);
        assert_eq!(parse_weight(b"1.5 "), None);
        assert_eq!(parse_weight(b" "), None);
        assert_eq!(parse_weight(b"abc"), None);
        assert_eq!(parse_weight(b"--1"), None);
    }
}
