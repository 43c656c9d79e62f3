//! Sorted-set values: a small sorted vector of `(score, member)` while there are at most
//! `zset-max-listpack-entries` members of at most `zset-max-listpack-value` bytes
//! (OBJECT ENCODING `listpack`), else a member → score hash table plus an ordered,
//! rank-counted list of chunks (`skiplist`).
//!
//! The large form's order is a list of sorted chunks of at most [`CHUNK_MAX_ENTRIES`]
//! entries with a Fenwick tree over the chunk sizes: finding a position is a binary
//! search over the chunks' last entries then within one chunk, a rank is a Fenwick
//! prefix sum, and the entry at a rank a Fenwick descent, all O(log n). A chunk that
//! overflows splits in two; one that empties is dropped; a small one merges with its
//! neighbour; those rebuild the Fenwick tree (O(n / chunk), amortized over the chunk's
//! inserts).
//!
//! Order is Redis's: by score, then by member bytes (memcmp, a prefix first).
//!
//! The chunks are shared parts ([`crate::frozen`]): a forkless snapshot freezes a large
//! sorted set by sharing its chunks ([`ZSetValue::freeze`]), and a write copies only the
//! chunk it changes while the snapshot still holds it.

#![allow(
    clippy::float_cmp,
    reason = "scores compare exactly, as Redis compares them"
)]

use crate::frozen::{self, Part};
use crate::hash::random_below;
use crate::number::parse_f64;
use crate::sets::MEMBER_TABLE_SEED;
use crate::table::{Key, Table};
use std::cmp::Ordering;
use std::sync::Arc;

/// Redis's default `zset-max-listpack-entries`.
pub const DEFAULT_ZSET_MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis's default `zset-max-listpack-value`.
pub const DEFAULT_ZSET_MAX_LISTPACK_VALUE_BYTES: usize = 64;
/// Largest chunk of the large form's order; a chunk over it splits in two.
pub const CHUNK_MAX_ENTRIES: usize = 256;
/// A chunk under this many entries merges with its right neighbour when both fit one.
const CHUNK_MERGE_BELOW_ENTRIES: usize = CHUNK_MAX_ENTRIES / 4;

/// The thresholds that choose a sorted set's form (the server's config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZSetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for ZSetLimits {
    fn default() -> Self {
        Self {
            max_listpack_entries: DEFAULT_ZSET_MAX_LISTPACK_ENTRIES,
            max_listpack_value: DEFAULT_ZSET_MAX_LISTPACK_VALUE_BYTES,
        }
    }
}

/// Redis's `getDoubleFromObject` (`strtod`): a float over the whole text, no leading
/// space, not NaN, not out of range (`1e400`); `inf`/`-inf` accepted.
#[must_use]
pub fn parse_score(s: &[u8]) -> Option<f64> {
    let v = parse_f64(s)?;
    if v.is_infinite() && !s.iter().any(|b| b.eq_ignore_ascii_case(&b'i')) {
        return None;
    }
    Some(v)
}

/// `(score, member)` order.
#[inline]
fn cmp(a: f64, am: &[u8], b: f64, bm: &[u8]) -> Ordering {
    a.partial_cmp(&b)
        .unwrap_or(Ordering::Equal)
        .then_with(|| am.cmp(bm))
}

/// One end of a ZRANGEBYSCORE range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// One end of a ZRANGEBYLEX range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    MinusInf,
    PlusInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// Redis's `zslParseLexRangeItem`: `-`, `+`, `[member` or `(member`.
    #[must_use]
    pub fn parse(s: &'a [u8]) -> Option<Self> {
        match s.first()? {
            b'-' if s.len() == 1 => Some(LexBound::MinusInf),
            b'+' if s.len() == 1 => Some(LexBound::PlusInf),
            b'[' => Some(LexBound::Incl(&s[1..])),
            b'(' => Some(LexBound::Excl(&s[1..])),
            _ => None,
        }
    }

    /// Whether `m` lies below this bound taken as a minimum (not in range).
    fn below_min(self, m: &[u8]) -> bool {
        match self {
            LexBound::MinusInf => false,
            LexBound::PlusInf => true,
            LexBound::Incl(b) => m < b,
            LexBound::Excl(b) => m <= b,
        }
    }

    /// Whether `m` lies within this bound taken as a maximum.
    fn within_max(self, m: &[u8]) -> bool {
        match self {
            LexBound::MinusInf => false,
            LexBound::PlusInf => true,
            LexBound::Incl(b) => m <= b,
            LexBound::Excl(b) => m < b,
        }
    }
}

/// Redis's `zslLexValue*` pre-check (`sdscmplex`): a range that is always empty.
fn lex_range_empty(min: LexBound, max: LexBound) -> bool {
    use LexBound::{Excl, Incl, MinusInf, PlusInf};
    let order = match (min, max) {
        (MinusInf, MinusInf) | (PlusInf, PlusInf) => Ordering::Equal,
        (MinusInf, _) | (_, PlusInf) => Ordering::Less,
        (PlusInf, _) | (_, MinusInf) => Ordering::Greater,
        (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
    };
    order == Ordering::Greater
        || (order == Ordering::Equal && (matches!(min, Excl(_)) || matches!(max, Excl(_))))
}

/// Fenwick tree over chunk sizes.
#[derive(Clone, Debug, Default)]
struct Fenwick {
    tree: Vec<usize>,
}

impl Fenwick {
    fn build(sizes: impl Iterator<Item = usize>) -> Self {
        let mut tree: Vec<usize> = sizes.collect();
        let n = tree.len();
        for i in 0..n {
            let j = i | (i + 1);
            if j < n {
                tree[j] += tree[i];
            }
        }
        Self { tree }
    }

    fn add(&mut self, mut i: usize, delta: isize) {
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add_signed(delta);
            i |= i + 1;
        }
    }

    /// Sum of the sizes of chunks `0..i`.
    fn prefix(&self, i: usize) -> usize {
        let mut sum = 0;
        let mut i = i;
        while i > 0 {
            sum += self.tree[i - 1];
            i &= i - 1;
        }
        sum
    }

    /// The chunk holding rank `r` and the rank's offset in it (`r` < total).
    fn find(&self, mut r: usize) -> (usize, usize) {
        let n = self.tree.len();
        let mut pos = 0;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next - 1] <= r {
                pos = next;
                r -= self.tree[next - 1];
            }
            step >>= 1;
        }
        (pos, r)
    }
}

/// A sorted run of the large form's order.
type Chunk = Vec<(f64, Key)>;

impl Part for Chunk {
    fn weight_bytes(&self) -> usize {
        self.capacity() * std::mem::size_of::<(f64, Key)>()
            + self
                .iter()
                .map(|(_, m)| {
                    if m.len() > crate::table::INLINE_KEY_MAX_BYTES {
                        m.len()
                    } else {
                        0
                    }
                })
                .sum::<usize>()
    }
}

/// The ordered, rank-counted list of the large form.
#[derive(Debug, Default)]
struct Ordered {
    chunks: Vec<Arc<Chunk>>,
    sizes: Fenwick,
}

/// A clone copies the chunks: only frozen copies share them (see [`crate::frozen`]).
impl Clone for Ordered {
    fn clone(&self) -> Self {
        Self {
            chunks: self
                .chunks
                .iter()
                .map(|c| Arc::new(Chunk::clone(c)))
                .collect(),
            sizes: self.sizes.clone(),
        }
    }
}

impl Drop for Ordered {
    fn drop(&mut self) {
        self.chunks.drain(..).for_each(frozen::discard);
    }
}

impl Ordered {
    fn rebuild(&mut self) {
        self.sizes = Fenwick::build(self.chunks.iter().map(|c| c.len()));
    }

    /// Index of the first chunk whose last entry is not below `(s, m)`.
    fn chunk_for(&self, s: f64, m: &[u8]) -> usize {
        self.chunks.partition_point(|c| {
            let (ls, lm) = c.last().expect("chunks are never empty");
            cmp(*ls, lm, s, m) == Ordering::Less
        })
    }

    fn insert(&mut self, s: f64, m: &[u8]) {
        if self.chunks.is_empty() {
            let mut first = Vec::with_capacity(CHUNK_MAX_ENTRIES);
            first.push((s, Key::from(m)));
            self.chunks.push(Arc::new(first));
            self.rebuild();
            return;
        }
        let last = self.chunks.len() - 1;
        let ci = self.chunk_for(s, m).min(last);
        let pos = self.chunks[ci].partition_point(|(es, em)| cmp(*es, em, s, m) == Ordering::Less);
        let len = self.chunks[ci].len();
        // A full chunk. Appending past the end (ascending inserts) starts a new chunk and
        // leaves this one full (and unchanged); otherwise it splits in two halves.
        if len >= CHUNK_MAX_ENTRIES && ci == last && pos == len {
            let mut fresh = Vec::with_capacity(CHUNK_MAX_ENTRIES);
            fresh.push((s, Key::from(m)));
            self.chunks.push(Arc::new(fresh));
            self.rebuild();
            return;
        }
        let c = frozen::make_mut(&mut self.chunks[ci]);
        if len < CHUNK_MAX_ENTRIES {
            c.insert(pos, (s, Key::from(m)));
            self.sizes.add(ci, 1);
            return;
        }
        let mut tail = Vec::with_capacity(CHUNK_MAX_ENTRIES);
        tail.extend(c.drain(CHUNK_MAX_ENTRIES / 2..));
        if pos <= c.len() {
            c.insert(pos, (s, Key::from(m)));
        } else {
            tail.insert(pos - CHUNK_MAX_ENTRIES / 2, (s, Key::from(m)));
        }
        self.chunks.insert(ci + 1, Arc::new(tail));
        self.rebuild();
    }

    /// `(chunk, offset)` of exactly `(s, m)`.
    fn locate(&self, s: f64, m: &[u8]) -> Option<(usize, usize)> {
        let ci = self.chunk_for(s, m);
        let c = self.chunks.get(ci)?;
        let pos = c.partition_point(|(es, em)| cmp(*es, em, s, m) == Ordering::Less);
        let (es, em) = c.get(pos)?;
        (cmp(*es, em, s, m) == Ordering::Equal).then_some((ci, pos))
    }

    fn remove(&mut self, s: f64, m: &[u8]) -> bool {
        let Some((ci, pos)) = self.locate(s, m) else {
            return false;
        };
        self.remove_at(ci, pos);
        true
    }

    fn remove_at(&mut self, ci: usize, pos: usize) {
        if self.chunks[ci].len() == 1 {
            frozen::discard(self.chunks.remove(ci));
            self.rebuild();
            return;
        }
        frozen::make_mut(&mut self.chunks[ci]).remove(pos);
        let len = self.chunks[ci].len();
        if len < CHUNK_MERGE_BELOW_ENTRIES
            && ci + 1 < self.chunks.len()
            && len + self.chunks[ci + 1].len() <= CHUNK_MAX_ENTRIES / 2
        {
            let next = frozen::take(self.chunks.remove(ci + 1));
            frozen::make_mut(&mut self.chunks[ci]).extend(next);
            self.rebuild();
        } else {
            self.sizes.add(ci, -1);
        }
    }

    fn rank(&self, s: f64, m: &[u8]) -> Option<usize> {
        let (ci, pos) = self.locate(s, m)?;
        Some(self.sizes.prefix(ci) + pos)
    }

    fn at(&self, r: usize) -> (f64, &[u8]) {
        let (ci, off) = self.sizes.find(r);
        let (s, m) = &self.chunks[ci][off];
        (*s, m)
    }

    /// Number of entries for which `below` holds (`below` true for a prefix).
    fn count_below(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        let ci = self
            .chunks
            .partition_point(|c| below_last(c.last(), &below));
        match self.chunks.get(ci) {
            None => self.sizes.prefix(ci),
            Some(c) => self.sizes.prefix(ci) + c.partition_point(|(s, m)| below(*s, m)),
        }
    }

    /// Calls `f` on ranks `start..end`, forward or backward.
    fn walk<'a>(&'a self, start: usize, end: usize, rev: bool, f: &mut impl FnMut(f64, &'a [u8])) {
        if start >= end {
            return;
        }
        if rev {
            let (mut ci, mut off) = self.sizes.find(end - 1);
            for _ in start..end {
                let (s, m) = &self.chunks[ci][off];
                f(*s, m);
                if off == 0 {
                    if ci == 0 {
                        break;
                    }
                    ci -= 1;
                    off = self.chunks[ci].len() - 1;
                } else {
                    off -= 1;
                }
            }
        } else {
            let (mut ci, mut off) = self.sizes.find(start);
            for _ in start..end {
                let (s, m) = &self.chunks[ci][off];
                f(*s, m);
                off += 1;
                if off == self.chunks[ci].len() {
                    ci += 1;
                    off = 0;
                }
            }
        }
    }
}

fn below_last(last: Option<&(f64, Key)>, below: &impl Fn(f64, &[u8]) -> bool) -> bool {
    last.is_some_and(|(s, m)| below(*s, m))
}

/// Score kinds of a packed entry (the top two bits of its header byte): a full `f64`, or
/// an integral score as `i8` or `i32`.
const SCORE_F64: u8 = 0;
const SCORE_I8: u8 = 1;
const SCORE_I32: u8 = 2;
/// The low six bits of a packed entry's header byte: the member's length, or this value
/// followed by the length as a `u32` LE.
const PACKED_LONG_LEN: u8 = 0x3f;

/// The small form's storage: entries back to back in one exact-size buffer, each a
/// header byte (the score's kind in the top two bits, the member's length in the low
/// six, or 63 and a `u32` LE after the score), the score (`i8`, `i32` or `f64`,
/// little-endian) and the member, in `(score, member)` order. Five short members with
/// small integer scores take 20 bytes, one 32-byte malloc chunk. Like
/// Redis's listpack: one allocation per sorted set, integral scores in one to four
/// bytes, and a linear walk per operation (at most `zset-max-listpack-entries`).
#[derive(Clone, Debug, Default)]
pub struct Packed {
    buf: Box<[u8]>,
    len: u32,
}

impl Packed {
    fn len(&self) -> usize {
        self.len as usize
    }

    /// The entry at byte `off` and the offset of the next one.
    fn entry_at(&self, off: usize) -> (f64, &[u8], usize) {
        let b = &self.buf;
        let mut p = off + 1;
        let score = match b[off] >> 6 {
            SCORE_I8 => {
                p += 1;
                f64::from(b[off + 1] as i8)
            }
            SCORE_I32 => {
                p += 4;
                f64::from(i32::from_le_bytes([
                    b[off + 1],
                    b[off + 2],
                    b[off + 3],
                    b[off + 4],
                ]))
            }
            _ => {
                let mut a = [0; 8];
                a.copy_from_slice(&b[off + 1..off + 9]);
                p += 8;
                f64::from_le_bytes(a)
            }
        };
        let mut n = usize::from(b[off] & PACKED_LONG_LEN);
        if n == usize::from(PACKED_LONG_LEN) {
            n = u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize;
            p += 4;
        }
        (score, &b[p..p + n], p + n)
    }

    fn iter(&self) -> impl Iterator<Item = (f64, &[u8])> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            (off < self.buf.len()).then(|| {
                let (s, m, next) = self.entry_at(off);
                off = next;
                (s, m)
            })
        })
    }

    /// Byte offset of entry `i` (`i <= len`).
    fn offset(&self, i: usize) -> usize {
        let mut off = 0;
        for _ in 0..i {
            off = self.entry_at(off).2;
        }
        off
    }

    fn get(&self, i: usize) -> (f64, &[u8]) {
        let (s, m, _) = self.entry_at(self.offset(i));
        (s, m)
    }

    fn position(&self, m: &[u8]) -> Option<usize> {
        self.iter().position(|(_, x)| x == m)
    }

    fn partition_point(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.iter().take_while(|(s, m)| pred(*s, m)).count()
    }

    fn encode(s: f64, m: &[u8], out: &mut Vec<u8>) {
        let integral = s.fract() == 0.0 && !(s == 0.0 && s.is_sign_negative());
        let long = m.len() >= usize::from(PACKED_LONG_LEN);
        let len_bits = if long { PACKED_LONG_LEN } else { m.len() as u8 };
        if integral && (-128.0..=127.0).contains(&s) {
            out.push(SCORE_I8 << 6 | len_bits);
            out.push(s as i8 as u8);
        } else if integral && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&s) {
            out.push(SCORE_I32 << 6 | len_bits);
            out.extend_from_slice(&(s as i32).to_le_bytes());
        } else {
            out.push(SCORE_F64 << 6 | len_bits);
            out.extend_from_slice(&s.to_le_bytes());
        }
        if long {
            out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(m);
    }

    /// Replaces bytes `range` of the buffer with `with`, keeping it exact-size.
    fn splice(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        let mut v = Vec::with_capacity(self.buf.len() - range.len() + with.len());
        v.extend_from_slice(&self.buf[..range.start]);
        v.extend_from_slice(with);
        v.extend_from_slice(&self.buf[range.end..]);
        self.buf = v.into_boxed_slice();
    }

    fn insert(&mut self, i: usize, s: f64, m: &[u8]) {
        let off = self.offset(i);
        let mut e = Vec::with_capacity(14 + m.len());
        Self::encode(s, m, &mut e);
        self.splice(off..off, &e);
        self.len += 1;
    }

    fn remove(&mut self, i: usize) -> (f64, Vec<u8>) {
        let off = self.offset(i);
        let (s, m, next) = self.entry_at(off);
        let m = m.to_vec();
        self.splice(off..next, &[]);
        self.len -= 1;
        (s, m)
    }

    fn drain(&mut self, start: usize, end: usize) {
        let (a, b) = (self.offset(start), self.offset(end));
        self.splice(a..b, &[]);
        self.len -= (end - start) as u32;
    }

    fn from_sorted<'a>(entries: impl IntoIterator<Item = (f64, &'a [u8])>) -> Self {
        let mut buf = Vec::new();
        let mut len = 0;
        for (s, m) in entries {
            Self::encode(s, m, &mut buf);
            len += 1;
        }
        Packed {
            buf: buf.into_boxed_slice(),
            len,
        }
    }
}

/// The large form: member → score, and the order.
#[derive(Clone, Debug)]
pub struct BigZSet {
    scores: Table<f64>,
    order: Ordered,
}

impl BigZSet {
    /// The member → score table (DEBUG HTSTATS-KEY).
    #[must_use]
    pub fn scores_table(&self) -> &Table<f64> {
        &self.scores
    }
}

impl std::fmt::Debug for Table<f64> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k.escape_ascii().to_string(), v)))
            .finish()
    }
}

/// A sorted-set value.
#[derive(Clone, Debug)]
pub enum ZSetValue {
    /// `(score, member)` ascending (OBJECT ENCODING `listpack`).
    Small(Packed),
    /// OBJECT ENCODING `skiplist`.
    Big(Box<BigZSet>),
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|r| {
                let (a, am) = self.at(r);
                let (b, bm) = other.at(r);
                am == bm && (a == b || (a.is_nan() && b.is_nan()))
            })
    }
}

impl Eq for ZSetValue {}

/// What [`ZSetValue::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    Added,
    Updated,
    Unchanged,
}

impl ZSetValue {
    /// An empty sorted set in the form Redis's `zsetTypeCreate` picks for a first member
    /// of `first_len` bytes.
    #[must_use]
    pub fn new_for(first_len: usize, limits: &ZSetLimits) -> Self {
        if limits.max_listpack_entries == 0 || first_len > limits.max_listpack_value {
            Self::new_big()
        } else {
            ZSetValue::Small(Packed::default())
        }
    }

    fn new_big() -> Self {
        ZSetValue::Big(Box::new(BigZSet {
            scores: Table::new(MEMBER_TABLE_SEED),
            order: Ordered::default(),
        }))
    }

    /// A sorted set of `entries` (distinct members, any order), in the form Redis's
    /// `zsetConvertToListpackIfNeeded` picks for a result of that size.
    #[must_use]
    pub fn from_entries(mut entries: Vec<(f64, Vec<u8>)>, limits: &ZSetLimits) -> Self {
        let longest = entries.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        if entries.len() <= limits.max_listpack_entries && longest <= limits.max_listpack_value {
            for e in &mut entries {
                if e.0 == 0.0 {
                    e.0 = 0.0;
                }
            }
            entries.sort_by(|(a, am), (b, bm)| cmp(*a, am, *b, bm));
            ZSetValue::Small(Packed::from_sorted(
                entries.iter().map(|(s, m)| (*s, m.as_slice())),
            ))
        } else {
            let mut z = Self::new_big();
            for (s, m) in entries {
                z.insert(&m, s, limits);
            }
            z
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Small(v) => v.len(),
            ZSetValue::Big(b) => b.scores.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated for the sorted set outside its `Box` (MEMORY USAGE): the packed
    /// buffer, or the member table plus the ordered chunks and their boxed members.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        match self {
            ZSetValue::Small(p) => p.buf.len(),
            ZSetValue::Big(b) => {
                let chunks: usize = b
                    .order
                    .chunks
                    .iter()
                    .map(|c| {
                        c.capacity() * std::mem::size_of::<(f64, Key)>()
                            + c.iter()
                                .map(|(_, k)| {
                                    if k.len() > crate::table::INLINE_KEY_MAX_BYTES {
                                        k.len()
                                    } else {
                                        0
                                    }
                                })
                                .sum::<usize>()
                    })
                    .sum();
                std::mem::size_of::<BigZSet>()
                    + b.scores.heap_bytes(|_| 0)
                    + chunks
                    + b.order.chunks.capacity() * std::mem::size_of::<Vec<(f64, Key)>>()
                    + b.order.sizes.tree.capacity() * std::mem::size_of::<usize>()
            }
        }
    }

    /// OBJECT ENCODING.
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSetValue::Small(_) => "listpack",
            ZSetValue::Big(_) => "skiplist",
        }
    }

    #[must_use]
    pub fn is_listpack(&self) -> bool {
        matches!(self, ZSetValue::Small(_))
    }

    #[must_use]
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Small(v) => v.iter().find(|(_, x)| *x == m).map(|(s, _)| s),
            ZSetValue::Big(b) => b.scores.get(m).copied(),
        }
    }

    /// Sets `m`'s score, adding it when absent; converts to the large form when the
    /// small one would exceed the limits.
    pub fn insert(&mut self, m: &[u8], score: f64, limits: &ZSetLimits) -> Inserted {
        match self {
            ZSetValue::Small(v) => {
                // A listpack stores a score as text and "-0" parses back as integer 0.
                let score = if score == 0.0 { 0.0 } else { score };
                if let Some(i) = v.position(m) {
                    if v.get(i).0 == score {
                        return Inserted::Unchanged;
                    }
                    v.remove(i);
                    let pos = v.partition_point(|s, x| cmp(s, x, score, m) == Ordering::Less);
                    v.insert(pos, score, m);
                    return Inserted::Updated;
                }
                if v.len() < limits.max_listpack_entries && m.len() <= limits.max_listpack_value {
                    let pos = v.partition_point(|s, x| cmp(s, x, score, m) == Ordering::Less);
                    v.insert(pos, score, m);
                    return Inserted::Added;
                }
                self.grow_to_big();
                self.insert(m, score, limits)
            }
            ZSetValue::Big(b) => {
                let (slot, added) = b.scores.get_or_insert_with(m, || score);
                if added {
                    b.order.insert(score, m);
                    return Inserted::Added;
                }
                let old = *slot;
                if old == score {
                    return Inserted::Unchanged;
                }
                *slot = score;
                b.order.remove(old, m);
                b.order.insert(score, m);
                Inserted::Updated
            }
        }
    }

    /// The form a sorted set takes when loaded under `limits` (Redis's `rdbLoadObject`
    /// converts to the listpack when the set fits the limits, else to the skiplist).
    /// Whatever form it was written in, so CONFIG SET limits hold across DEBUG RELOAD.
    pub fn fit_limits(&mut self, limits: &ZSetLimits) {
        if self.len() > limits.max_listpack_entries {
            self.grow_to_big();
        } else if let ZSetValue::Big(b) = self {
            let fits = b
                .scores
                .iter()
                .all(|(m, _)| m.len() <= limits.max_listpack_value);
            if fits {
                *self = Self::from_entries(self.entries(), limits);
            }
        }
    }

    /// Converts to the large (`skiplist`) form; SORT does, as Redis's `zsetConvert`.
    pub fn grow_to_big(&mut self) {
        let ZSetValue::Small(v) = self else {
            return;
        };
        let mut scores = Table::new(MEMBER_TABLE_SEED);
        let mut chunks = Vec::new();
        let v = std::mem::take(v);
        let all: Vec<(f64, &[u8])> = v.iter().collect();
        for part in all.chunks(CHUNK_MAX_ENTRIES / 2) {
            chunks.push(Arc::new(
                part.iter()
                    .map(|(s, m)| (*s, Key::from(*m)))
                    .collect::<Vec<_>>(),
            ));
        }
        for (s, m) in all {
            scores.insert(m.into(), s);
        }
        let mut order = Ordered {
            chunks,
            sizes: Fenwick::default(),
        };
        order.rebuild();
        *self = ZSetValue::Big(Box::new(BigZSet { scores, order }));
    }

    /// Removes `m`; false when absent.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            ZSetValue::Small(v) => match v.position(m) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            ZSetValue::Big(b) => match b.scores.remove(m) {
                Some((_, s)) => b.order.remove(s, m),
                None => false,
            },
        }
    }

    /// 0-based rank of `m` in ascending order.
    #[must_use]
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        match self {
            ZSetValue::Small(v) => v.position(m),
            ZSetValue::Big(b) => {
                let s = *b.scores.get(m)?;
                b.order.rank(s, m)
            }
        }
    }

    /// The entry at rank `r` (ascending; `r < len`).
    #[must_use]
    pub fn at(&self, r: usize) -> (f64, &[u8]) {
        match self {
            ZSetValue::Small(v) => v.get(r),
            ZSetValue::Big(b) => b.order.at(r),
        }
    }

    fn count_below(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            ZSetValue::Small(v) => v.partition_point(below),
            ZSetValue::Big(b) => b.order.count_below(below),
        }
    }

    /// Ranks `start..end` of the entries with scores within `min..max`.
    #[must_use]
    pub fn score_range(&self, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
        let start = self.count_below(|s, _| {
            if min.exclusive {
                s <= min.value
            } else {
                s < min.value
            }
        });
        let end = self.count_below(|s, _| {
            if max.exclusive {
                s < max.value
            } else {
                s <= max.value
            }
        });
        (start, end.max(start))
    }

    /// Ranks `start..end` of the entries with members within `min..max`, walked from the
    /// start (`rev` false) or from the end, as Redis walks a listpack: find the first
    /// entry past the near bound, then take entries while they are within the far one.
    /// Meaningful when all scores are equal; with mixed scores the small form gives
    /// Redis's listpack answer and the large form assumes members ascend.
    #[must_use]
    pub fn lex_range(&self, min: LexBound, max: LexBound, rev: bool) -> (usize, usize) {
        if lex_range_empty(min, max) {
            return (0, 0);
        }
        let gte_min = |m: &[u8]| !min.below_min(m);
        let lte_max = |m: &[u8]| max.within_max(m);
        // `zzlIsInLexRange`: the last entry must reach the minimum and the first the
        // maximum.
        let n = self.len();
        if n == 0 || !gte_min(self.at(n - 1).1) || !lte_max(self.at(0).1) {
            return (0, 0);
        }
        match self {
            ZSetValue::Small(p) => {
                let v: Vec<(f64, &[u8])> = p.iter().collect();
                if rev {
                    let Some(j) = v.iter().rposition(|(_, m)| lte_max(m)) else {
                        return (0, 0);
                    };
                    let start = v[..=j]
                        .iter()
                        .rposition(|(_, m)| !gte_min(m))
                        .map_or(0, |k| k + 1);
                    (start, j + 1)
                } else {
                    let Some(i) = v.iter().position(|(_, m)| gte_min(m)) else {
                        return (0, 0);
                    };
                    let end = v[i..]
                        .iter()
                        .position(|(_, m)| !lte_max(m))
                        .map_or(v.len(), |k| i + k);
                    (i, end)
                }
            }
            ZSetValue::Big(_) => {
                let start = self.count_below(|_, m| min.below_min(m));
                let end = self.count_below(|_, m| max.within_max(m));
                (start, end.max(start))
            }
        }
    }

    /// Calls `f` on the entries at ranks `start..end`, ascending or (`rev`) descending.
    pub fn for_ranks<'a>(
        &'a self,
        start: usize,
        end: usize,
        rev: bool,
        mut f: impl FnMut(f64, &'a [u8]),
    ) {
        let end = end.min(self.len());
        if start >= end {
            return;
        }
        match self {
            ZSetValue::Small(v) => {
                let part = v.iter().skip(start).take(end - start);
                if rev {
                    let all: Vec<(f64, &'a [u8])> = part.collect();
                    for (s, m) in all.into_iter().rev() {
                        f(s, m);
                    }
                } else {
                    for (s, m) in part {
                        f(s, m);
                    }
                }
            }
            ZSetValue::Big(b) => b.order.walk(start, end, rev, &mut f),
        }
    }

    /// Every entry ascending.
    #[must_use]
    pub fn entries(&self) -> Vec<(f64, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.len());
        self.for_ranks(0, self.len(), false, |s, m| out.push((s, m.to_vec())));
        out
    }

    /// Removes and returns the lowest (or, `max`, highest) entry.
    pub fn pop(&mut self, max: bool) -> Option<(f64, Vec<u8>)> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let rank = if max { len - 1 } else { 0 };
        match self {
            ZSetValue::Small(v) => Some(v.remove(rank)),
            ZSetValue::Big(b) => {
                let (ci, off) = b.order.sizes.find(rank);
                let (s, m) = b.order.chunks[ci][off].clone();
                b.order.remove_at(ci, off);
                b.scores.remove(&m);
                Some((s, m.to_vec()))
            }
        }
    }

    /// Removes the entries at ranks `start..end`; returns how many.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        if let ZSetValue::Small(v) = self {
            v.drain(start, end);
            return end - start;
        }
        let mut doomed = Vec::with_capacity(end - start);
        self.for_ranks(start, end, false, |_, m| doomed.push(m.to_vec()));
        for m in &doomed {
            self.remove(m);
        }
        doomed.len()
    }

    /// A uniformly random entry.
    #[must_use]
    pub fn random(&self, rng: &mut u64) -> Option<(f64, &[u8])> {
        let n = self.len();
        (n > 0).then(|| self.at(random_below(rng, n)))
    }

    /// ZSCAN: calls `f` on the entries at `cursor`, returns the next cursor. The small
    /// form returns everything at once with cursor 0, as Redis's listpack.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(f64, &[u8])) -> u64 {
        match self {
            ZSetValue::Small(v) => {
                for (s, m) in v.iter() {
                    f(s, m);
                }
                0
            }
            ZSetValue::Big(b) => b.scores.scan(cursor, |m, s| f(*s, m)),
        }
    }

    /// Checks the large form's invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        if let ZSetValue::Big(b) = self {
            let total: usize = b.order.chunks.iter().map(|c| c.len()).sum();
            assert_eq!(total, b.scores.len());
            assert!(b.order.chunks.iter().all(|c| !c.is_empty()));
            for (i, _) in b.order.chunks.iter().enumerate() {
                assert_eq!(
                    b.order.sizes.prefix(i),
                    b.order.chunks[..i].iter().map(|c| c.len()).sum::<usize>()
                );
            }
            let mut prev: Option<(f64, Vec<u8>)> = None;
            for c in &b.order.chunks {
                for (s, m) in c.iter() {
                    assert_eq!(b.scores.get(m), Some(s));
                    if let Some((ps, pm)) = &prev {
                        assert_eq!(cmp(*ps, pm, *s, m), Ordering::Less);
                    }
                    prev = Some((*s, m.to_vec()));
                }
            }
        }
    }
}

/// A large sorted set's frozen copy (see [`ZSetValue::freeze`]): its chunks, shared with
/// the live value until written there.
#[derive(Debug)]
pub struct FrozenZSet {
    chunks: Vec<Arc<Chunk>>,
    len: usize,
}

impl FrozenZSet {
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` on every entry, greatest first (RDB order), releasing each chunk once
    /// done with it; stops at `f`'s first error.
    pub fn drain_rev<E>(mut self, mut f: impl FnMut(f64, &[u8]) -> Result<(), E>) -> Result<(), E> {
        while let Some(c) = self.chunks.pop() {
            let done = c.iter().rev().try_for_each(|(s, m)| f(*s, m));
            frozen::release(c);
            done?;
        }
        Ok(())
    }
}

impl Drop for FrozenZSet {
    fn drop(&mut self) {
        self.chunks.drain(..).for_each(frozen::release);
    }
}

impl ZSetValue {
    /// A frozen copy sharing the large form's chunks (O(chunks), no entry copied); `None`
    /// for the small form.
    #[must_use]
    pub fn freeze(&self) -> Option<FrozenZSet> {
        match self {
            ZSetValue::Small(_) => None,
            ZSetValue::Big(b) => Some(FrozenZSet {
                chunks: b.order.chunks.clone(),
                len: b.scores.len(),
            }),
        }
    }

    /// The entries as one buffer (score bits, then the length-prefixed member), for a
    /// trip to another shard.
    #[must_use]
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.for_ranks(0, self.len(), false, |s, m| {
            out.extend_from_slice(&s.to_bits().to_le_bytes());
            crate::sets::put_wire_member(&mut out, m);
        });
        out
    }

    /// A sorted set from [`ZSetValue::to_wire`]'s buffer; `None` when malformed.
    #[must_use]
    pub fn from_wire(mut buf: &[u8], limits: &ZSetLimits) -> Option<Self> {
        let mut entries = Vec::new();
        while !buf.is_empty() {
            let bits = u64::from_le_bytes(buf.get(..8)?.try_into().ok()?);
            buf = &buf[8..];
            let m = crate::sets::take_wire_member(&mut buf)?;
            entries.push((f64::from_bits(bits), m.to_vec()));
        }
        Some(Self::from_entries(entries, limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The model: member → score, ordered by sorting.
    fn model_order(m: &BTreeMap<Vec<u8>, f64>) -> Vec<(f64, Vec<u8>)> {
        let mut v: Vec<(f64, Vec<u8>)> = m.iter().map(|(k, s)| (*s, k.clone())).collect();
        v.sort_by(|(a, am), (b, bm)| cmp(*a, am, *b, bm));
        v
    }

    #[test]
    fn score_parsing_is_strtod() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b""), None);
    }

    #[test]
    fn converts_to_skiplist_past_the_limits() {
        let l = ZSetLimits::default();
        let mut z = ZSetValue::new_for(1, &l);
        for i in 0..128 {
            z.insert(format!("m{i}").as_bytes(), f64::from(i), &l);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"x", 0.5, &l);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"x"), Some(1));
        let mut z = ZSetValue::new_for(1, &l);
        z.insert(&[b'a'; 65], 1.0, &l);
        assert_eq!(z.encoding(), "skiplist");
    }

    #[test]
    fn fit_limits_converts_as_a_load_does() {
        let l = ZSetLimits::default();
        let mut z = ZSetValue::new_big();
        for i in 0..3 {
            z.insert(format!("m{i}").as_bytes(), f64::from(i), &l);
        }
        let none = ZSetLimits {
            max_listpack_entries: 0,
            max_listpack_value: 0,
        };
        z.fit_limits(&none);
        assert_eq!(z.encoding(), "skiplist");
        z.fit_limits(&l);
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(
            z.entries(),
            vec![
                (0.0, b"m0".to_vec()),
                (1.0, b"m1".to_vec()),
                (2.0, b"m2".to_vec())
            ]
        );
        z.fit_limits(&none);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"m2"), Some(2));
        let short = ZSetLimits {
            max_listpack_entries: 128,
            max_listpack_value: 1,
        };
        z.fit_limits(&short);
        assert_eq!(
            z.encoding(),
            "skiplist",
            "members longer than the value limit"
        );
    }

    #[test]
    fn large_set_ranks_and_ranges() {
        let l = ZSetLimits::default();
        let mut z = ZSetValue::new_big();
        for i in (0..5000).rev() {
            z.insert(format!("{i:05}").as_bytes(), f64::from(i / 2), &l);
        }
        z.check();
        assert_eq!(z.len(), 5000);
        assert_eq!(z.rank(b"01234"), Some(1234));
        assert_eq!(z.at(4999), (2499.0, &b"04999"[..]));
        let (a, b) = z.score_range(
            ScoreBound {
                value: 10.0,
                exclusive: true,
            },
            ScoreBound {
                value: 20.0,
                exclusive: false,
            },
        );
        assert_eq!((a, b), (22, 42));
        for _ in 0..4990 {
            z.pop(false);
        }
        z.check();
        assert_eq!(z.at(0).1, b"04990");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
        Pop(bool),
        RemoveRanks(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), -5i8..5).prop_map(|(m, s)| Op::Insert(m, s)),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => any::<bool>().prop_map(Op::Pop),
            1 => (any::<u8>(), 0u8..8).prop_map(|(a, n)| Op::RemoveRanks(a, n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn behaves_like_a_sorted_model(ops in proptest::collection::vec(op(), 0..1500), small in any::<bool>()) {
            let l = if small { ZSetLimits { max_listpack_entries: 16, max_listpack_value: 64 } } else { ZSetLimits::default() };
            let mut z = ZSetValue::new_for(1, &l);
            let mut m: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Insert(k, s) => {
                        let k = vec![b'a' + k % 26, k];
                        let s = f64::from(s);
                        let want = match m.insert(k.clone(), s) {
                            None => Inserted::Added,
                            Some(old) if old == s => Inserted::Unchanged,
                            Some(_) => Inserted::Updated,
                        };
                        prop_assert_eq!(z.insert(&k, s, &l), want);
                    }
                    Op::Remove(k) => {
                        let k = vec![b'a' + k % 26, k];
                        prop_assert_eq!(z.remove(&k), m.remove(&k).is_some());
                    }
                    Op::Pop(max) => {
                        let order = model_order(&m);
                        let want = if max { order.last().cloned() } else { order.first().cloned() };
                        if let Some((_, k)) = &want { m.remove(k); }
                        prop_assert_eq!(z.pop(max), want);
                    }
                    Op::RemoveRanks(a, n) => {
                        let order = model_order(&m);
                        let start = usize::from(a) % (order.len() + 1);
                        let end = (start + usize::from(n)).min(order.len());
                        for (_, k) in &order[start..end] { m.remove(k); }
                        prop_assert_eq!(z.remove_ranks(start, end), end - start);
                    }
                }
                z.check();
            }
            let order = model_order(&m);
            prop_assert_eq!(z.entries(), order.clone());
            for (r, (s, k)) in order.iter().enumerate() {
                prop_assert_eq!(z.rank(k), Some(r));
                prop_assert_eq!(z.score(k), Some(*s));
            }
            let mut rev = Vec::new();
            z.for_ranks(0, z.len(), true, |s, k| rev.push((s, k.to_vec())));
            rev.reverse();
            prop_assert_eq!(rev, order.clone());
            for lo in -6i8..6 {
                let min = ScoreBound { value: f64::from(lo), exclusive: lo % 2 == 0 };
                let max = ScoreBound { value: f64::from(lo) + 2.0, exclusive: false };
                let (a, b) = z.score_range(min, max);
                let want = order.iter().filter(|(s, _)| (if min.exclusive { *s > min.value } else { *s >= min.value }) && *s <= max.value).count();
                prop_assert_eq!(b - a, want);
            }
        }
    }
}
