//! Stream values, laid out as Redis 7.0 lays them out (`t_stream.c`).
//!
//! Entries live in nodes: listpacks in exactly Redis's stream node format, kept in an
//! ordered map keyed by the node's master ID (Redis keeps a radix tree of 128-bit
//! big-endian IDs; a `BTreeMap` gives the same order). So an RDB stream is written and
//! loaded node by node with no conversion.
//!
//! A node starts with its master entry, then the entries:
//!
//! ```text
//! count deleted num-fields field_1 .. field_N 0          master entry
//! flags ms-diff seq-diff num-fields f_1 v_1 .. f_N v_N lp-count
//! flags ms-diff seq-diff v_1 .. v_N lp-count              (flags & SAMEFIELDS)
//! ```
//!
//! `count` is the live entries, `deleted` the ones flagged `DELETED` (XDEL and exact
//! trimming flag entries; a node goes only when its last live entry does). An entry's ID
//! is the master ID plus the two diffs; an entry whose field names are the master's
//! stores only its values. `lp-count` is the entry's element count (without itself), so
//! the node walks backwards. A node is full when it reaches `stream-node-max-bytes` or
//! `stream-node-max-entries` (live plus deleted), as `streamAppendItem` decides.
//!
//! Consumer groups keep a pending entries list (PEL) per group and per consumer, a last
//! delivered ID and the 7.0 `entries-read` counter from which the lag is computed.

use crate::listpack::{HEADER_BYTES, Listpack, LpValue};
use crate::number::parse_i64_strict;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// `stream-node-max-bytes` default.
pub const DEFAULT_STREAM_NODE_MAX_BYTES: usize = 4096;
/// `stream-node-max-entries` default.
pub const DEFAULT_STREAM_NODE_MAX_ENTRIES: usize = 100;
/// Largest node, and largest total of one entry's fields and values
/// (`STREAM_LISTPACK_MAX_SIZE`).
pub const STREAM_LISTPACK_MAX_BYTES: usize = 1 << 30;
/// `entries-read` when unknown (`SCG_INVALID_ENTRIES_READ`).
pub const ENTRIES_READ_INVALID: i64 = -1;
/// Longest ID argument Redis parses (its 128-byte buffer with the NUL).
const ID_ARG_MAX_BYTES: usize = 127;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// A stream entry ID: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: Self = Self { ms: 0, seq: 0 };
    pub const MAX: Self = Self {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    #[must_use]
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    #[must_use]
    pub fn is_zero(self) -> bool {
        self == Self::MIN
    }

    /// The next ID (`streamIncrID`); `None` after the last one.
    #[must_use]
    pub fn incr(self) -> Option<Self> {
        if self.seq == u64::MAX {
            (self.ms != u64::MAX).then(|| Self::new(self.ms + 1, 0))
        } else {
            Some(Self::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (`streamDecrID`); `None` before the first one.
    #[must_use]
    pub fn decr(self) -> Option<Self> {
        if self.seq == 0 {
            (self.ms != 0).then(|| Self::new(self.ms - 1, u64::MAX))
        } else {
            Some(Self::new(self.ms, self.seq - 1))
        }
    }

    /// The 16-byte big-endian form (radix tree keys, RDB).
    #[must_use]
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    #[must_use]
    pub fn from_be_bytes(b: [u8; 16]) -> Self {
        let (ms, seq) = b.split_at(8);
        Self::new(
            u64::from_be_bytes(ms.try_into().expect("8 bytes")),
            u64::from_be_bytes(seq.try_into().expect("8 bytes")),
        )
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// `strtoull(s, &end, 10)` accepting the whole of `s`: leading white space, a sign (a
/// minus negates modulo 2^64), at least one digit, no overflow.
fn strtoull_whole(s: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's `string2ull`: a canonical `i64` that is not negative, else `strtoull`.
fn parse_u64_redis(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if let Some(v) = parse_i64_strict(s) {
        return u64::try_from(v).ok();
    }
    strtoull_whole(s)
}

/// What an ID argument says (`streamGenericParseIDOrReply`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdArg {
    Id(StreamId),
    /// `<ms>-*`: the sequence is chosen by XADD.
    AutoSeq(u64),
}

fn parse_id_arg(arg: &[u8], missing_seq: u64, strict: bool, allow_auto_seq: bool) -> Option<IdArg> {
    if arg.len() > ID_ARG_MAX_BYTES {
        return None;
    }
    // Redis copies the argument into a C string: it ends at the first NUL.
    let s = arg.split(|&b| b == 0).next().unwrap_or_default();
    if s == b"-" || s == b"+" {
        if strict {
            return None;
        }
        return Some(IdArg::Id(if s == b"-" {
            StreamId::MIN
        } else {
            StreamId::MAX
        }));
    }
    let (ms, seq) = match s.iter().position(|&b| b == b'-') {
        Some(d) => (&s[..d], Some(&s[d + 1..])),
        None => (s, None),
    };
    let ms = parse_u64_redis(ms)?;
    match seq {
        None => Some(IdArg::Id(StreamId::new(ms, missing_seq))),
        Some(b"*") if allow_auto_seq => Some(IdArg::AutoSeq(ms)),
        Some(seq) => Some(IdArg::Id(StreamId::new(ms, parse_u64_redis(seq)?))),
    }
}

/// An ID argument where `-` and `+` stand for the smallest and largest IDs; a missing
/// sequence is `missing_seq`.
#[must_use]
pub fn parse_id(arg: &[u8], missing_seq: u64) -> Option<StreamId> {
    match parse_id_arg(arg, missing_seq, false, false)? {
        IdArg::Id(id) => Some(id),
        IdArg::AutoSeq(_) => None,
    }
}

/// An ID argument without `-` and `+` (`streamParseStrictIDOrReply`).
#[must_use]
pub fn parse_strict_id(arg: &[u8], missing_seq: u64) -> Option<StreamId> {
    match parse_id_arg(arg, missing_seq, true, false)? {
        IdArg::Id(id) => Some(id),
        IdArg::AutoSeq(_) => None,
    }
}

/// XADD's explicit ID: strict, and `<ms>-*` allowed.
#[must_use]
pub fn parse_add_id(arg: &[u8]) -> Option<IdArg> {
    parse_id_arg(arg, 0, true, true)
}

/// An interval bound of XRANGE/XPENDING/XAUTOCLAIM: `(` makes it exclusive (and strict).
/// Returns the ID and whether it was exclusive.
#[must_use]
pub fn parse_interval_id(arg: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    if arg.len() > 1 && arg[0] == b'(' {
        parse_strict_id(&arg[1..], missing_seq).map(|id| (id, true))
    } else {
        parse_id(arg, missing_seq).map(|id| (id, false))
    }
}

/// Node size limits (`stream-node-max-bytes`, `stream-node-max-entries`; 0 = no limit).
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    pub node_max_bytes: usize,
    pub node_max_entries: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            node_max_bytes: DEFAULT_STREAM_NODE_MAX_BYTES,
            node_max_entries: DEFAULT_STREAM_NODE_MAX_ENTRIES,
        }
    }
}

/// How XADD picks the new entry's ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddId {
    /// `*`: the clock, or the last ID's successor.
    Auto,
    /// `<ms>-*`.
    AutoSeq(u64),
    Exact(StreamId),
}

/// Why an append failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The ID is not greater than the stream's last ID.
    NotGreater,
    /// The fields and values are over [`STREAM_LISTPACK_MAX_BYTES`] together.
    TooLarge,
}

/// A trimming strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// One pending entry of a group (`streamNACK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// Unix milliseconds of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// The consumer that owns it (a key of the group's consumers).
    pub consumer: Arc<[u8]>,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Last time the consumer was seen (any read or claim attempt), Unix ms.
    pub seen_time: i64,
    /// Last successful read or claim (Redis 7.2's `active-time`; -1 never), Unix ms.
    pub active_time: i64,
    /// The IDs this consumer owns in the group's PEL.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Logical read counter ([`ENTRIES_READ_INVALID`] when unknown).
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Arc<[u8]>, Consumer>,
}

impl Group {
    #[must_use]
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        Self {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer's key, created (seen now) when absent; returns whether it was created.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            Arc::from(name),
            Consumer {
                seen_time: now_ms,
                active_time: -1,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// The consumer's shared name, created when absent, its seen time set to now
    /// (`streamLookupConsumer` + `streamCreateConsumer`).
    pub fn touch_consumer(&mut self, name: &[u8], now_ms: i64) -> Arc<[u8]> {
        self.create_consumer(name, now_ms);
        let (k, _) = self.consumers.get_key_value(name).expect("created above");
        let k = k.clone();
        if let Some(c) = self.consumers.get_mut(name) {
            c.seen_time = now_ms;
        }
        k
    }

    /// Deletes a consumer and its pending entries; `None` when absent, else how many
    /// entries it had pending.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges `id`; whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Drops `id` from the PEL (its entry no longer exists).
    fn drop_pending(&mut self, id: StreamId) {
        self.ack(id);
    }

    /// Gives the pending entry `id` to `consumer` (moving it from its owner's PEL).
    fn assign(&mut self, id: StreamId, consumer: &Arc<[u8]>) {
        let Some(n) = self.pel.get_mut(&id) else {
            return;
        };
        if n.consumer != *consumer {
            if let Some(old) = self.consumers.get_mut(&n.consumer) {
                old.pel.remove(&id);
            }
            n.consumer = consumer.clone();
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

/// Options of XCLAIM.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClaimOpts {
    pub min_idle_ms: i64,
    /// The delivery time to set (IDLE/TIME, already checked), else now.
    pub delivery_time: Option<i64>,
    pub retry_count: Option<u64>,
    pub force: bool,
    pub justid: bool,
}

/// The scalars of a stream (what XINFO and the RDB call its metadata).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamMeta {
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
}

/// A stream value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Listpack>,
    meta: StreamMeta,
    groups: BTreeMap<Box<[u8]>, Group>,
}

// ---------------------------------------------------------------------------------------
// Node walking. Nodes built here or checked by `check_node` are well formed, so the
// walks below never meet a missing element.

#[inline]
fn int_at(lp: &Listpack, p: usize) -> i64 {
    match lp.get(p) {
        LpValue::Int(i) => i,
        LpValue::Str(s) => parse_i64_strict(s).unwrap_or(0),
    }
}

#[inline]
fn nx(lp: &Listpack, p: usize) -> usize {
    lp.next(p).unwrap_or_else(|| lp.end())
}

/// The master entry of a node.
#[derive(Clone, Copy, Debug)]
struct Head {
    count: i64,
    deleted: i64,
    nfields: usize,
    /// Position of the first master field.
    fields_at: usize,
    /// Position of the first entry's flags.
    first_entry: Option<usize>,
}

fn head(lp: &Listpack) -> Head {
    let p0 = HEADER_BYTES;
    let count = int_at(lp, p0);
    let p1 = nx(lp, p0);
    let deleted = int_at(lp, p1);
    let p2 = nx(lp, p1);
    let nfields = int_at(lp, p2) as usize;
    let fields_at = nx(lp, p2);
    let mut p = fields_at;
    for _ in 0..nfields {
        p = nx(lp, p);
    }
    Head {
        count,
        deleted,
        nfields,
        fields_at,
        first_entry: lp.next(p),
    }
}

/// One entry as stored.
#[derive(Clone, Copy, Debug)]
struct Raw {
    flags: i64,
    id: StreamId,
    nfields: usize,
    same: bool,
    /// First field (or value, when `same`).
    body: usize,
    /// Position of the entry's lp-count.
    lp_count_at: usize,
}

fn raw(lp: &Listpack, h: &Head, master: StreamId, p: usize) -> Raw {
    let flags = int_at(lp, p);
    let q = nx(lp, p);
    let ms = master.ms.wrapping_add(int_at(lp, q) as u64);
    let q = nx(lp, q);
    let seq = master.seq.wrapping_add(int_at(lp, q) as u64);
    let mut q = nx(lp, q);
    let same = flags & FLAG_SAMEFIELDS != 0;
    let nfields = if same {
        h.nfields
    } else {
        let n = int_at(lp, q) as usize;
        q = nx(lp, q);
        n
    };
    let body = q;
    for _ in 0..(if same { nfields } else { nfields * 2 }) {
        q = nx(lp, q);
    }
    Raw {
        flags,
        id: StreamId::new(ms, seq),
        nfields,
        same,
        body,
        lp_count_at: q,
    }
}

/// The flags position of the entry whose lp-count is at `q`.
fn entry_start(lp: &Listpack, q: usize) -> usize {
    let n = int_at(lp, q);
    let mut p = q;
    for _ in 0..n {
        p = lp.prev(p).unwrap_or(HEADER_BYTES);
    }
    p
}

/// A live entry's fields and values.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    lp: &'a Listpack,
    fields_at: usize,
    body: usize,
    nfields: usize,
    same: bool,
}

impl<'a> EntryRef<'a> {
    /// Number of field/value pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nfields
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nfields == 0
    }

    /// Field/value pairs in order.
    #[must_use]
    pub fn pairs(&self) -> Pairs<'a> {
        Pairs {
            lp: self.lp,
            f: self.fields_at,
            v: self.body,
            left: self.nfields,
            same: self.same,
        }
    }

    fn new(lp: &'a Listpack, h: &Head, r: &Raw) -> Self {
        Self {
            lp,
            fields_at: h.fields_at,
            body: r.body,
            nfields: r.nfields,
            same: r.same,
        }
    }
}

/// Iterator over an entry's field/value pairs.
pub struct Pairs<'a> {
    lp: &'a Listpack,
    f: usize,
    v: usize,
    left: usize,
    same: bool,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (LpValue<'a>, LpValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let lp = self.lp;
        if self.same {
            let (f, v) = (lp.get(self.f), lp.get(self.v));
            self.f = nx(lp, self.f);
            self.v = nx(lp, self.v);
            Some((f, v))
        } else {
            let f = lp.get(self.v);
            self.v = nx(lp, self.v);
            let v = lp.get(self.v);
            self.v = nx(lp, self.v);
            Some((f, v))
        }
    }
}

struct Cursor<'a> {
    master: StreamId,
    lp: &'a Listpack,
    head: Head,
    /// Forward: the next entry's flags. Backward: the next entry's lp-count.
    pos: Option<usize>,
}

/// Live entries of a range, in either direction.
pub struct Entries<'a> {
    nodes: std::collections::btree_map::Range<'a, StreamId, Listpack>,
    start: StreamId,
    end: StreamId,
    rev: bool,
    cur: Option<Cursor<'a>>,
    done: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (StreamId, EntryRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.cur.is_none() {
                let next = if self.rev {
                    self.nodes.next_back()
                } else {
                    self.nodes.next()
                };
                let Some((&master, lp)) = next else {
                    self.done = true;
                    return None;
                };
                let head = head(lp);
                let pos = if self.rev {
                    head.first_entry.and_then(|_| lp.last())
                } else {
                    head.first_entry
                };
                self.cur = Some(Cursor {
                    master,
                    lp,
                    head,
                    pos,
                });
            }
            let c = self.cur.as_mut().expect("set above");
            let Some(p) = c.pos else {
                self.cur = None;
                continue;
            };
            let lp = c.lp;
            if self.rev {
                let f = entry_start(lp, p);
                let r = raw(lp, &c.head, c.master, f);
                c.pos = if Some(f) == c.head.first_entry {
                    None
                } else {
                    lp.prev(f)
                };
                if r.id < self.start {
                    self.done = true;
                    return None;
                }
                if r.id > self.end || r.flags & FLAG_DELETED != 0 {
                    continue;
                }
                return Some((r.id, EntryRef::new(lp, &c.head, &r)));
            }
            let r = raw(lp, &c.head, c.master, p);
            c.pos = lp.next(r.lp_count_at);
            if r.id > self.end {
                self.done = true;
                return None;
            }
            if r.id < self.start || r.flags & FLAG_DELETED != 0 {
                continue;
            }
            return Some((r.id, EntryRef::new(lp, &c.head, &r)));
        }
        None
    }
}

/// Why a node or stream from outside (an RDB file, another shard) was refused.
pub type Corrupt = &'static str;

/// Checks a node from outside: the master entry, every entry's elements, flags,
/// lp-count and ID (ascending, above `after`), and the counts. Returns the live
/// entries and the last ID.
pub fn check_node(
    master: StreamId,
    lp: &Listpack,
    after: Option<StreamId>,
) -> Result<(u64, StreamId), Corrupt> {
    let int = |p: Option<usize>| -> Result<(i64, usize), Corrupt> {
        let p = p.ok_or("stream node ends early")?;
        match lp.get(p) {
            LpValue::Int(i) => Ok((i, p)),
            LpValue::Str(s) => parse_i64_strict(s)
                .map(|i| (i, p))
                .ok_or("stream node integer expected"),
        }
    };
    let (count, p) = int(lp.first())?;
    let (deleted, p) = int(lp.next(p))?;
    let (nfields, mut p) = int(lp.next(p))?;
    if count < 0 || deleted < 0 || nfields < 0 {
        return Err("negative count in stream node master entry");
    }
    for _ in 0..nfields {
        p = lp.next(p).ok_or("stream node master fields missing")?;
    }
    let (zero, p) = int(lp.next(p))?;
    if zero != 0 {
        return Err("stream node master entry not terminated by 0");
    }
    let (mut live, mut dead) = (0i64, 0i64);
    let mut prev = after;
    let mut last = None;
    let mut cur = lp.next(p);
    while let Some(start) = cur {
        let (flags, q) = int(Some(start))?;
        if !(0..=3).contains(&flags) {
            return Err("bad stream entry flags");
        }
        let (msd, q) = int(lp.next(q))?;
        let (seqd, mut q) = int(lp.next(q))?;
        let same = flags & FLAG_SAMEFIELDS != 0;
        let n = if same {
            nfields
        } else {
            let (n, nq) = int(lp.next(q))?;
            if n < 0 {
                return Err("negative stream entry field count");
            }
            q = nq;
            n
        };
        let elems = if same { n } else { n * 2 };
        for _ in 0..elems {
            q = lp.next(q).ok_or("stream entry fields missing")?;
        }
        let (lp_count, q) = int(lp.next(q))?;
        let want = 3 + if same { n } else { n * 2 + 1 };
        if lp_count != want {
            return Err("bad stream entry lp-count");
        }
        let id = StreamId::new(
            master.ms.wrapping_add(msd as u64),
            master.seq.wrapping_add(seqd as u64),
        );
        if id < master || prev.is_some_and(|p| id <= p) {
            return Err("stream entry IDs out of order");
        }
        prev = Some(id);
        last = Some(id);
        if flags & FLAG_DELETED != 0 {
            dead += 1;
        } else {
            live += 1;
        }
        cur = lp.next(q);
    }
    if live != count || dead != deleted {
        return Err("stream node counts differ from its entries");
    }
    if live == 0 {
        return Err("stream node without live entries");
    }
    Ok((live as u64, last.expect("live > 0")))
}

fn estimate_distance(m: &StreamMeta, id: StreamId) -> i64 {
    if m.entries_added == 0 {
        return 0;
    }
    if m.length == 0 && id <= m.last_id {
        return m.entries_added as i64;
    }
    if id == m.last_id {
        return m.entries_added as i64;
    }
    if id > m.last_id {
        return ENTRIES_READ_INVALID;
    }
    if m.max_deleted_id.is_zero() || m.max_deleted_id < m.first_id {
        if id < m.first_id {
            return (m.entries_added - m.length) as i64;
        }
        if id == m.first_id {
            return (m.entries_added - m.length + 1) as i64;
        }
    }
    ENTRIES_READ_INVALID
}

fn range_has_tombstones(m: &StreamMeta, start: StreamId) -> bool {
    if m.length == 0 || m.max_deleted_id.is_zero() {
        return false;
    }
    if m.first_id > m.max_deleted_id {
        return false;
    }
    start <= m.max_deleted_id
}

impl Stream {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Live entries.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.meta.length
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.meta.length == 0
    }

    #[must_use]
    pub fn meta(&self) -> &StreamMeta {
        &self.meta
    }

    pub fn meta_mut(&mut self) -> &mut StreamMeta {
        &mut self.meta
    }

    /// Nodes in ID order: master ID and listpack.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = (StreamId, &Listpack)> {
        self.nodes.iter().map(|(k, v)| (*k, v))
    }

    /// Bytes held by the nodes' buffers.
    #[must_use]
    pub fn node_bytes(&self) -> usize {
        self.nodes.values().map(Listpack::capacity_bytes).sum()
    }

    /// Groups by name.
    #[must_use]
    pub fn groups(&self) -> &BTreeMap<Box<[u8]>, Group> {
        &self.groups
    }

    #[must_use]
    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        self.groups.get_mut(name)
    }

    /// Creates a group; false when the name is taken.
    pub fn create_group(&mut self, name: &[u8], last_id: StreamId, entries_read: i64) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups
            .insert(Box::from(name), Group::new(last_id, entries_read));
        true
    }

    /// Adds a group built elsewhere (RDB); false when the name is taken.
    pub fn insert_group(&mut self, name: &[u8], g: Group) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups.insert(Box::from(name), g);
        true
    }

    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// Live entries from `start` to `end` inclusive; backwards when `rev`.
    #[must_use]
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Entries<'_> {
        let empty = start > end;
        let nodes = if empty {
            self.nodes.range(StreamId::MAX..StreamId::MAX)
        } else if rev {
            self.nodes.range(..=end)
        } else {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(start, |(k, _)| *k);
            self.nodes.range(from..=end)
        };
        Entries {
            nodes,
            start,
            end,
            rev,
            cur: None,
            done: empty,
        }
    }

    /// The live entry `id`.
    #[must_use]
    pub fn entry(&self, id: StreamId) -> Option<EntryRef<'_>> {
        self.range(id, id, false).next().map(|(_, e)| e)
    }

    #[must_use]
    pub fn contains(&self, id: StreamId) -> bool {
        self.entry(id).is_some()
    }

    /// First (or last) live entry's ID (`streamGetEdgeID` skipping tombstones).
    #[must_use]
    pub fn edge_id(&self, last: bool) -> Option<StreamId> {
        self.range(StreamId::MIN, StreamId::MAX, last)
            .next()
            .map(|(id, _)| id)
    }

    /// `streamLastValidID`: the last live entry's ID, else the last ID.
    #[must_use]
    pub fn last_valid_id(&self) -> StreamId {
        self.edge_id(true).unwrap_or(self.meta.last_id)
    }

    /// The ID `id` would get (the checks of `streamAppendItem`).
    fn next_id(&self, id: AddId, now_ms: u64) -> Result<StreamId, AddError> {
        let last = self.meta.last_id;
        let new = match id {
            AddId::Exact(i) => i,
            AddId::AutoSeq(ms) => {
                if last.ms == ms {
                    if last.seq == u64::MAX {
                        return Err(AddError::NotGreater);
                    }
                    StreamId::new(ms, last.seq + 1)
                } else {
                    StreamId::new(ms, 0)
                }
            }
            AddId::Auto => {
                if now_ms > last.ms {
                    StreamId::new(now_ms, 0)
                } else {
                    last.incr().unwrap_or(StreamId::MIN)
                }
            }
        };
        if new <= last {
            return Err(AddError::NotGreater);
        }
        Ok(new)
    }

    /// XADD: appends an entry of `fields` (field, value, ...: an even count of at least
    /// two) and returns its ID.
    pub fn append(
        &mut self,
        id: AddId,
        fields: &[&[u8]],
        now_ms: u64,
        lim: StreamLimits,
    ) -> Result<StreamId, AddError> {
        debug_assert!(fields.len() >= 2 && fields.len().is_multiple_of(2));
        let new_id = self.next_id(id, now_ms)?;
        let total: usize = fields.iter().map(|f| f.len()).sum();
        if total > STREAM_LISTPACK_MAX_BYTES {
            return Err(AddError::TooLarge);
        }
        let nfields = fields.len() / 2;
        let max_bytes = if lim.node_max_bytes == 0 || lim.node_max_bytes > STREAM_LISTPACK_MAX_BYTES
        {
            STREAM_LISTPACK_MAX_BYTES
        } else {
            lim.node_max_bytes
        };
        let mut full = true;
        if let Some((_, lp)) = self.nodes.last_key_value() {
            let h = head(lp);
            full = lp.bytes_len() + total >= max_bytes
                || (lim.node_max_entries > 0
                    && (h.count + h.deleted) as usize >= lim.node_max_entries);
            if full && let Some(lp) = self.nodes.values_mut().next_back() {
                lp.shrink_to_fit();
            }
        }
        // Room for the entry: its elements are at most 5 + len + 5 bytes each.
        let need = total + fields.len() * 10 + 64;
        let (master, lp, same) = if full {
            let mut lp = Listpack::new();
            lp.reserve(need + nfields * 10 + total);
            lp.push_back_int(1);
            lp.push_back_int(0);
            lp.push_back_int(nfields as i64);
            for f in fields.iter().step_by(2) {
                lp.push_back(f);
            }
            lp.push_back_int(0);
            self.nodes.insert(new_id, lp);
            let lp = self.nodes.get_mut(&new_id).expect("inserted");
            (new_id, lp, true)
        } else {
            let (&master, lp) = self.nodes.iter_mut().next_back().expect("checked");
            let h = head(lp);
            let mut same = h.nfields == nfields;
            if same {
                let mut p = h.fields_at;
                for f in fields.iter().step_by(2) {
                    if !lp.get(p).eq_bytes(f) {
                        same = false;
                        break;
                    }
                    p = nx(lp, p);
                }
            }
            lp.reserve(need);
            lp.replace_int(HEADER_BYTES, h.count + 1);
            (master, lp, same)
        };
        lp.push_back_int(if same { FLAG_SAMEFIELDS } else { 0 });
        lp.push_back_int(new_id.ms.wrapping_sub(master.ms) as i64);
        lp.push_back_int(new_id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                lp.push_back(v);
            }
        } else {
            lp.push_back_int(nfields as i64);
            for f in fields {
                lp.push_back(f);
            }
        }
        let lp_count = 3 + if same { nfields } else { nfields * 2 + 1 };
        lp.push_back_int(lp_count as i64);
        let m = &mut self.meta;
        m.length += 1;
        m.entries_added += 1;
        m.last_id = new_id;
        if m.length == 1 {
            m.first_id = new_id;
        }
        Ok(new_id)
    }

    /// Flags the entry at `flags_at` of the node `master` deleted and updates the
    /// master counts; drops the node when it was its last live entry.
    fn flag_deleted(&mut self, master: StreamId, flags_at: usize, flags: i64) {
        let lp = self.nodes.get_mut(&master).expect("node exists");
        let h = head(lp);
        if h.count == 1 {
            self.nodes.remove(&master);
        } else {
            lp.replace_int(flags_at, flags | FLAG_DELETED);
            lp.replace_int(HEADER_BYTES, h.count - 1);
            let p1 = nx(lp, HEADER_BYTES);
            lp.replace_int(p1, h.deleted + 1);
        }
        self.meta.length -= 1;
    }

    /// Flags the entry `id` deleted (`streamDeleteItem`); whether it was live. XDEL's
    /// bookkeeping (first ID, max deleted ID) is [`Stream::xdel`]'s.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, lp)) = self.nodes.range(..=id).next_back() else {
            return false;
        };
        let h = head(lp);
        let mut cur = h.first_entry;
        while let Some(p) = cur {
            let r = raw(lp, &h, master, p);
            if r.id > id {
                return false;
            }
            if r.id == id {
                if r.flags & FLAG_DELETED != 0 {
                    return false;
                }
                self.flag_deleted(master, p, r.flags);
                return true;
            }
            cur = lp.next(r.lp_count_at);
        }
        false
    }

    /// XDEL: deletes each ID, keeps the first and the largest deleted ID; returns how
    /// many were live.
    pub fn xdel(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first = false;
        for &id in ids {
            if self.delete(id) {
                if id == self.meta.first_id {
                    first = true;
                }
                if id > self.meta.max_deleted_id {
                    self.meta.max_deleted_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            if self.meta.length == 0 {
                self.meta.first_id = StreamId::MIN;
            } else if first {
                self.meta.first_id = self.edge_id(false).unwrap_or(StreamId::MAX);
            }
        }
        deleted
    }

    /// XTRIM / XADD's trimming (`streamTrim`): whole nodes first; with `approx` only
    /// whole nodes; `limit` (0 = none) caps the entries removed. Returns how many.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how
                && self.meta.length <= max
            {
                break;
            }
            let Some((&master, lp)) = self.nodes.first_key_value() else {
                break;
            };
            let h = head(lp);
            let entries = h.count as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(max) => self.meta.length - entries >= max,
                Trim::MinId(min) => {
                    let lc = lp.last().expect("a node has entries");
                    let last = raw(lp, &h, master, entry_start(lp, lc)).id;
                    last < min
                }
            };
            if remove {
                self.nodes.remove(&master);
                self.meta.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            // Flag entries inside this node.
            let mut from_lp = 0i64;
            let lp = self.nodes.get_mut(&master).expect("exists");
            let mut cur = h.first_entry;
            while let Some(p) = cur {
                let r = raw(lp, &h, master, p);
                let stop = match how {
                    Trim::MaxLen(max) => self.meta.length <= max,
                    Trim::MinId(min) => r.id >= min,
                };
                if stop {
                    break;
                }
                if r.flags & FLAG_DELETED == 0 {
                    // Same encoded size: positions after it do not move.
                    lp.replace_int(p, r.flags | FLAG_DELETED);
                    from_lp += 1;
                    self.meta.length -= 1;
                }
                cur = lp.next(r.lp_count_at);
            }
            deleted += from_lp as u64;
            if h.count - from_lp == 0 {
                self.nodes.remove(&master);
            } else {
                lp.replace_int(HEADER_BYTES, h.count - from_lp);
                let p1 = nx(lp, HEADER_BYTES);
                lp.replace_int(p1, h.deleted + from_lp);
            }
            break;
        }
        if deleted > 0 {
            self.meta.first_id = if self.meta.length == 0 {
                StreamId::MIN
            } else {
                self.edge_id(false).unwrap_or(StreamId::MAX)
            };
        }
        deleted
    }

    /// The group's lag (`streamReplyWithCGLag`); `None` when it cannot be known.
    #[must_use]
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        let m = &self.meta;
        if m.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != ENTRIES_READ_INVALID && !range_has_tombstones(m, g.last_id) {
            return Some(m.entries_added as i64 - g.entries_read);
        }
        let read = estimate_distance(m, g.last_id);
        (read != ENTRIES_READ_INVALID).then(|| m.entries_added as i64 - read)
    }

    /// `streamEstimateDistanceFromFirstEverEntry`.
    #[must_use]
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        estimate_distance(&self.meta, id)
    }

    /// XREADGROUP `>`: delivers up to `count` (0 = all) entries after the group's last
    /// ID to `consumer`, calling `emit` for each; without `noack` each enters the PELs.
    /// Returns how many. The group must exist.
    pub fn read_group_new(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        count: usize,
        noack: bool,
        now_ms: i64,
        mut emit: impl FnMut(StreamId, EntryRef<'_>),
    ) -> usize {
        let Self {
            nodes,
            meta,
            groups,
        } = self;
        let meta = &*meta;
        let g = groups
            .get_mut(group)
            .expect("the caller looked the group up");
        let cname = g.touch_consumer(consumer, now_ms);
        let Some(start) = g.last_id.incr() else {
            return 0;
        };
        let mut n = 0;
        let from = nodes.range(..=start).next_back().map_or(start, |(k, _)| *k);
        let entries = Entries {
            nodes: nodes.range(from..),
            start,
            end: StreamId::MAX,
            rev: false,
            cur: None,
            done: false,
        };
        for (id, e) in entries {
            if count > 0 && n >= count {
                break;
            }
            if id > g.last_id {
                if g.entries_read != ENTRIES_READ_INVALID && !range_has_tombstones(meta, id) {
                    g.entries_read += 1;
                } else if meta.entries_added > 0 {
                    g.entries_read = estimate_distance(meta, id);
                }
                g.last_id = id;
            }
            if !noack {
                match g.pel.get_mut(&id) {
                    None => {
                        g.pel.insert(
                            id,
                            Nack {
                                delivery_time: now_ms,
                                delivery_count: 1,
                                consumer: cname.clone(),
                            },
                        );
                    }
                    Some(nack) => {
                        let old = std::mem::replace(&mut nack.consumer, cname.clone());
                        nack.delivery_time = now_ms;
                        nack.delivery_count = 1;
                        if let Some(c) = g.consumers.get_mut(&old) {
                            c.pel.remove(&id);
                        }
                    }
                }
                if let Some(c) = g.consumers.get_mut(&cname) {
                    c.pel.insert(id);
                }
            }
            if let Some(c) = g.consumers.get_mut(&cname) {
                c.active_time = now_ms;
            }
            emit(id, e);
            n += 1;
        }
        n
    }

    /// XREADGROUP with an ID: the consumer's pending entries from `start`, up to `count`
    /// (0 = all). `emit` gets `None` for an entry deleted since; a live one counts as
    /// delivered again. Returns how many. The group must exist.
    pub fn read_group_history(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        start: StreamId,
        count: usize,
        now_ms: i64,
        mut emit: impl FnMut(StreamId, Option<EntryRef<'_>>),
    ) -> usize {
        let g = self
            .groups
            .get_mut(group)
            .expect("the caller looked the group up");
        let cname = g.touch_consumer(consumer, now_ms);
        let ids: Vec<StreamId> = g.consumers[&cname]
            .pel
            .range(start..)
            .take(if count == 0 { usize::MAX } else { count })
            .copied()
            .collect();
        let nodes = &self.nodes;
        for &id in &ids {
            let found = Self::entry_in(nodes, id);
            if found.is_some()
                && let Some(n) = g.pel.get_mut(&id)
            {
                n.delivery_time = now_ms;
                n.delivery_count += 1;
            }
            emit(id, found);
        }
        ids.len()
    }

    fn entry_in(nodes: &BTreeMap<StreamId, Listpack>, id: StreamId) -> Option<EntryRef<'_>> {
        let from = nodes.range(..=id).next_back().map_or(id, |(k, _)| *k);
        Entries {
            nodes: nodes.range(from..=id),
            start: id,
            end: id,
            rev: false,
            cur: None,
            done: false,
        }
        .next()
        .map(|(_, e)| e)
    }

    /// XCLAIM: gives each pending ID of `ids` idle for at least `min_idle_ms` to
    /// `consumer`; returns the claimed IDs in order. Pending IDs whose entry is gone
    /// leave the PEL. The group must exist.
    pub fn claim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        ids: &[StreamId],
        o: ClaimOpts,
        now_ms: i64,
    ) -> Vec<StreamId> {
        let nodes = &self.nodes;
        let g = self.groups.get_mut(group).expect("the caller looked it up");
        let mut claimed = Vec::new();
        let mut owner: Option<Arc<[u8]>> = None;
        let delivery_time = o.delivery_time.unwrap_or(now_ms);
        for &id in ids {
            if Self::entry_in(nodes, id).is_none() {
                g.drop_pending(id);
                continue;
            }
            let mut forced = false;
            if o.force && !g.pel.contains_key(&id) {
                // A NACK without an owner (`streamCreateNACK(NULL)`).
                g.pel.insert(
                    id,
                    Nack {
                        delivery_time: now_ms,
                        delivery_count: 1,
                        consumer: Arc::from(&b""[..]),
                    },
                );
                forced = true;
            }
            let Some(n) = g.pel.get(&id) else {
                continue;
            };
            if !forced && o.min_idle_ms > 0 && now_ms - n.delivery_time < o.min_idle_ms {
                continue;
            }
            let cname = owner
                .get_or_insert_with(|| g.touch_consumer(consumer, now_ms))
                .clone();
            if forced {
                // No previous owner: nothing to remove from.
                if let Some(n) = g.pel.get_mut(&id) {
                    n.consumer = cname.clone();
                }
            }
            g.assign(id, &cname);
            let n = g.pel.get_mut(&id).expect("present");
            n.delivery_time = delivery_time;
            if let Some(rc) = o.retry_count {
                n.delivery_count = rc;
            } else if !o.justid {
                n.delivery_count += 1;
            }
            if let Some(c) = g.consumers.get_mut(&cname) {
                c.active_time = now_ms;
            }
            claimed.push(id);
        }
        claimed
    }

    /// XAUTOCLAIM: scans the group's PEL from `start`, at most `count` claims (or
    /// deleted IDs) and `count * 10` looks (`o`: its min idle time and JUSTID). Returns the claimed IDs, the cursor for the
    /// next call (0-0 at the end) and the pending IDs whose entry was gone (dropped).
    pub fn autoclaim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        start: StreamId,
        mut count: u64,
        o: ClaimOpts,
        now_ms: i64,
    ) -> (Vec<StreamId>, StreamId, Vec<StreamId>) {
        let nodes = &self.nodes;
        let g = self.groups.get_mut(group).expect("the caller looked it up");
        let mut attempts = count.saturating_mul(10);
        let (mut claimed, mut gone) = (Vec::new(), Vec::new());
        let mut owner: Option<Arc<[u8]>> = None;
        let mut cur = start;
        let mut next_key = None;
        loop {
            if attempts == 0 || count == 0 {
                next_key = g.pel.range(cur..).next().map(|(k, _)| *k);
                break;
            }
            attempts -= 1;
            let Some((&id, n)) = g.pel.range(cur..).next() else {
                break;
            };
            let after = id.incr();
            if Self::entry_in(nodes, id).is_none() {
                g.drop_pending(id);
                gone.push(id);
                count -= 1;
            } else if o.min_idle_ms > 0 && now_ms - n.delivery_time < o.min_idle_ms {
                // Not idle long enough.
            } else {
                let cname = owner
                    .get_or_insert_with(|| g.touch_consumer(consumer, now_ms))
                    .clone();
                g.assign(id, &cname);
                let n = g.pel.get_mut(&id).expect("present");
                n.delivery_time = now_ms;
                if !o.justid {
                    n.delivery_count += 1;
                }
                if let Some(c) = g.consumers.get_mut(&cname) {
                    c.active_time = now_ms;
                }
                claimed.push(id);
                count -= 1;
            }
            match after {
                Some(a) => cur = a,
                None => break,
            }
        }
        (claimed, next_key.unwrap_or(StreamId::MIN), gone)
    }

    /// Builds a stream from checked parts (RDB, wire): nodes must come in ID order.
    pub fn push_node(&mut self, master: StreamId, lp: Listpack) -> Result<u64, Corrupt> {
        let after = self.nodes.last_key_value().map(|(m, lp)| {
            let h = head(lp);
            let lc = lp.last().expect("checked node");
            raw(lp, &h, *m, entry_start(lp, lc)).id
        });
        if after.is_some_and(|a| master <= a) {
            return Err("stream nodes out of order");
        }
        let (live, _) = check_node(master, &lp, after)?;
        self.nodes.insert(master, lp);
        Ok(live)
    }

    /// The number of radix tree nodes Redis would use for the node keys (XINFO's
    /// `radix-tree-nodes`): a compressed trie of the 16-byte keys.
    #[must_use]
    pub fn radix_tree_nodes(&self) -> u64 {
        fn count(keys: &[[u8; 16]], depth: usize) -> u64 {
            if depth == 16 || keys.is_empty() {
                return 1;
            }
            let first = keys[0][depth];
            let last = keys[keys.len() - 1][depth];
            if first == last {
                // A compressed node over the common prefix, then what follows it.
                let mut d = depth;
                while d < 16 && keys[0][d] == keys[keys.len() - 1][d] {
                    d += 1;
                }
                return 1 + count(keys, d);
            }
            let mut total = 1;
            let mut i = 0;
            while i < keys.len() {
                let b = keys[i][depth];
                let j = i + keys[i..].partition_point(|k| k[depth] == b);
                total += count(&keys[i..j], depth + 1);
                i = j;
            }
            total
        }
        if self.nodes.is_empty() {
            return 1;
        }
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        count(&keys, 0)
    }

    // -----------------------------------------------------------------------------------
    // The wire form (cross-shard RENAME/COPY/MOVE): everything, length-prefixed.

    /// Appends the wire form of the stream.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        fn put(out: &mut Vec<u8>, v: u64) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        fn put_id(out: &mut Vec<u8>, id: StreamId) {
            out.extend_from_slice(&id.to_be_bytes());
        }
        fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
            put(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        let m = &self.meta;
        put(out, m.length);
        put_id(out, m.last_id);
        put_id(out, m.first_id);
        put_id(out, m.max_deleted_id);
        put(out, m.entries_added);
        put(out, self.nodes.len() as u64);
        for (k, lp) in &self.nodes {
            put_id(out, *k);
            put_bytes(out, lp.as_bytes());
        }
        put(out, self.groups.len() as u64);
        for (name, g) in &self.groups {
            put_bytes(out, name);
            put_id(out, g.last_id);
            put(out, g.entries_read as u64);
            put(out, g.pel.len() as u64);
            for (id, n) in &g.pel {
                put_id(out, *id);
                put(out, n.delivery_time as u64);
                put(out, n.delivery_count);
            }
            put(out, g.consumers.len() as u64);
            for (cname, c) in &g.consumers {
                put_bytes(out, cname);
                put(out, c.seen_time as u64);
                put(out, c.active_time as u64);
                put(out, c.pel.len() as u64);
                for id in &c.pel {
                    put_id(out, *id);
                }
            }
        }
    }

    /// A stream from [`Stream::write_wire`]'s bytes; `None` when they are not one.
    #[must_use]
    pub fn read_wire(mut b: &[u8]) -> Option<Stream> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if b.len() < n {
                return None;
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Some(h)
        }
        fn get(b: &mut &[u8]) -> Option<u64> {
            Some(u64::from_le_bytes(take(b, 8)?.try_into().ok()?))
        }
        fn get_id(b: &mut &[u8]) -> Option<StreamId> {
            Some(StreamId::from_be_bytes(take(b, 16)?.try_into().ok()?))
        }
        fn get_bytes<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
            let n = usize::try_from(get(b)?).ok()?;
            take(b, n)
        }
        let mut s = Stream::new();
        let meta = StreamMeta {
            length: get(&mut b)?,
            last_id: get_id(&mut b)?,
            first_id: get_id(&mut b)?,
            max_deleted_id: get_id(&mut b)?,
            entries_added: get(&mut b)?,
        };
        let mut live = 0;
        for _ in 0..get(&mut b)? {
            let master = get_id(&mut b)?;
            let lp = Listpack::from_bytes(get_bytes(&mut b)?.to_vec()).ok()?;
            live += s.push_node(master, lp).ok()?;
        }
        if live != meta.length {
            return None;
        }
        s.meta = meta;
        for _ in 0..get(&mut b)? {
            let name = get_bytes(&mut b)?.to_vec();
            let mut g = Group::new(get_id(&mut b)?, get(&mut b)? as i64);
            let mut owners: Vec<StreamId> = Vec::new();
            for _ in 0..get(&mut b)? {
                let id = get_id(&mut b)?;
                let n = Nack {
                    delivery_time: get(&mut b)? as i64,
                    delivery_count: get(&mut b)?,
                    consumer: Arc::from(&b""[..]),
                };
                g.pel.insert(id, n);
                owners.push(id);
            }
            for _ in 0..get(&mut b)? {
                let cname: Arc<[u8]> = Arc::from(get_bytes(&mut b)?);
                let mut c = Consumer {
                    seen_time: get(&mut b)? as i64,
                    active_time: get(&mut b)? as i64,
                    pel: BTreeSet::new(),
                };
                for _ in 0..get(&mut b)? {
                    let id = get_id(&mut b)?;
                    g.pel.get_mut(&id)?.consumer = cname.clone();
                    c.pel.insert(id);
                }
                g.consumers.insert(cname, c);
            }
            if g.pel
                .values()
                .any(|n| n.consumer.is_empty() && !g.consumers.contains_key(&n.consumer))
            {
                return None;
            }
            if !s.insert_group(&name, g) {
                return None;
            }
        }
        b.is_empty().then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lim(bytes: usize, entries: usize) -> StreamLimits {
        StreamLimits {
            node_max_bytes: bytes,
            node_max_entries: entries,
        }
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
    type Model = BTreeMap<StreamId, Pairs>;

    fn collect(s: &Stream, a: StreamId, b: StreamId, rev: bool) -> Vec<(StreamId, Pairs)> {
        s.range(a, b, rev)
            .map(|(id, e)| {
                (
                    id,
                    e.pairs()
                        .map(|(f, v)| (f.to_bytes().into_owned(), v.to_bytes().into_owned()))
                        .collect(),
                )
            })
            .collect()
    }

    fn check(s: &Stream, m: &Model) {
        let all: Vec<_> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(collect(s, StreamId::MIN, StreamId::MAX, false), all);
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(collect(s, StreamId::MIN, StreamId::MAX, true), rev);
        assert_eq!(s.len(), m.len() as u64);
        let mut live = 0;
        let mut after = None;
        for (k, lp) in s.nodes() {
            let (n, last) = check_node(k, lp, after).expect("well formed");
            live += n;
            after = Some(last);
        }
        assert_eq!(live, s.len());
        if let Some((k, _)) = m.first_key_value() {
            assert_eq!(s.meta().first_id, *k);
        }
        let back = Stream::read_wire(&{
            let mut w = Vec::new();
            s.write_wire(&mut w);
            w
        })
        .expect("wire form reads back");
        assert_eq!(&back, s);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u8, u8, u8),
        Del(u16),
        TrimLen(u8, bool),
        TrimMin(u16, bool),
        Range(u16, u16, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1u8..4, 0u8..3, 0u8..4).prop_map(|(a, b, c)| Op::Add(a, b, c)),
            2 => any::<u16>().prop_map(Op::Del),
            1 => (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::TrimLen(a, b)),
            1 => (any::<u16>(), any::<bool>()).prop_map(|(a, b)| Op::TrimMin(a, b)),
            2 => (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(a, b, c)| Op::Range(a, b, c)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn nodes_match_a_map_model(ops in prop::collection::vec(op(), 1..200), bytes in 0usize..300, entries in 0usize..6) {
            let l = lim(bytes, entries);
            let mut s = Stream::new();
            let mut m = Model::new();
            let mut clock = 0u64;
            let ids = |m: &Model, x: u16| -> StreamId {
                if m.is_empty() { return StreamId::new(u64::from(x), 0); }
                let keys: Vec<_> = m.keys().copied().collect();
                keys[x as usize % keys.len()]
            };
            for o in ops {
                match o {
                    Op::Add(nf, shape, step) => {
                        clock += u64::from(step);
                        let fields: Vec<Vec<u8>> = (0..nf).flat_map(|i| {
                            let f = if shape == 0 { format!("f{i}") } else { format!("g{shape}{i}") };
                            [f.into_bytes(), format!("{}", clock * 7 + u64::from(i)).into_bytes()]
                        }).collect();
                        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
                        let id = s.append(AddId::Auto, &refs, clock, l).unwrap();
                        prop_assert!(m.last_key_value().is_none_or(|(k, _)| *k < id));
                        m.insert(id, fields.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect());
                    }
                    Op::Del(x) => {
                        let id = ids(&m, x);
                        let was = m.remove(&id).is_some();
                        prop_assert_eq!(s.xdel(&[id]), u64::from(was));
                    }
                    Op::TrimLen(n, approx) => {
                        let n = u64::from(n % 40);
                        let before = s.len();
                        let d = s.trim(Trim::MaxLen(n), approx, 0);
                        prop_assert_eq!(before - d, s.len());
                        if !approx { prop_assert_eq!(s.len(), before.min(n)); }
                        while m.len() as u64 > s.len() { m.pop_first(); }
                    }
                    Op::TrimMin(x, approx) => {
                        let id = ids(&m, x);
                        s.trim(Trim::MinId(id), approx, 0);
                        if !approx { prop_assert!(s.edge_id(false).is_none_or(|f| f >= id)); }
                        while m.len() as u64 > s.len() { m.pop_first(); }
                    }
                    Op::Range(a, b, rev) => {
                        let (a, b) = (ids(&m, a), ids(&m, b));
                        let want: Vec<_> = m.iter().filter(|(k, _)| **k >= a && **k <= b).map(|(k, v)| (*k, v.clone())).collect();
                        let mut got = collect(&s, a, b, rev);
                        if rev { got.reverse(); }
                        prop_assert_eq!(got, want);
                    }
                }
                check(&s, &m);
            }
        }
    }

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(parse_id(b"-", 0), Some(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0), Some(StreamId::MAX));
        assert_eq!(parse_strict_id(b"+", 0), None);
        assert_eq!(parse_id(b"5", 7), Some(StreamId::new(5, 7)));
        assert_eq!(parse_id(b"5-3", 7), Some(StreamId::new(5, 3)));
        assert_eq!(parse_id(b"5-", 7), None);
        assert_eq!(parse_id(b"-5", 7), None);
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615", 0),
            Some(StreamId::MAX)
        );
        assert_eq!(parse_id(b"18446744073709551616", 0), None);
        assert_eq!(parse_add_id(b"5-*"), Some(IdArg::AutoSeq(5)));
        assert_eq!(parse_id(b"5-*", 0), None);
        assert_eq!(
            parse_interval_id(b"(5-3", 0),
            Some((StreamId::new(5, 3), true))
        );
        assert_eq!(parse_interval_id(b"(-", 0), None);
        assert_eq!(parse_interval_id(b"(", 0), None);
    }

    #[test]
    fn auto_ids_and_errors() {
        let mut s = Stream::new();
        let l = StreamLimits::default();
        assert_eq!(
            s.append(AddId::Auto, &[b"a", b"1"], 10, l),
            Ok(StreamId::new(10, 0))
        );
        assert_eq!(
            s.append(AddId::Auto, &[b"a", b"1"], 5, l),
            Ok(StreamId::new(10, 1))
        );
        assert_eq!(
            s.append(AddId::AutoSeq(10), &[b"a", b"1"], 5, l),
            Ok(StreamId::new(10, 2))
        );
        assert_eq!(
            s.append(AddId::AutoSeq(9), &[b"a", b"1"], 5, l),
            Err(AddError::NotGreater)
        );
        assert_eq!(
            s.append(AddId::Exact(StreamId::new(10, 2)), &[b"a", b"1"], 5, l),
            Err(AddError::NotGreater)
        );
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn groups_deliver_ack_and_claim() {
        let mut s = Stream::new();
        let l = StreamLimits::default();
        for i in 1..=5 {
            s.append(AddId::Exact(StreamId::new(i, 0)), &[b"f", b"v"], 0, l)
                .unwrap();
        }
        assert!(s.create_group(b"g", StreamId::MIN, ENTRIES_READ_INVALID));
        let mut got = Vec::new();
        assert_eq!(
            s.read_group_new(b"g", b"alice", 2, false, 100, |id, _| got.push(id)),
            2
        );
        assert_eq!(got, [StreamId::new(1, 0), StreamId::new(2, 0)]);
        let g = s.group(b"g").unwrap();
        assert_eq!(g.pel.len(), 2);
        assert_eq!(g.entries_read, 2);
        assert_eq!(s.group_lag(g), Some(3));
        // bob claims entry 1 after it idled 50 ms.
        let c = s.claim(
            b"g",
            b"bob",
            &[StreamId::new(1, 0)],
            ClaimOpts {
                min_idle_ms: 50,
                ..ClaimOpts::default()
            },
            200,
        );
        assert_eq!(c, [StreamId::new(1, 0)]);
        let g = s.group(b"g").unwrap();
        assert_eq!(&*g.pel[&StreamId::new(1, 0)].consumer, b"bob");
        assert_eq!(g.pel[&StreamId::new(1, 0)].delivery_count, 2);
        assert!(g.consumers[&b"alice"[..]].pel.len() == 1);
        // Entry 2 deleted: autoclaim reports it gone.
        s.xdel(&[StreamId::new(2, 0)]);
        let (claimed, next, gone) =
            s.autoclaim(b"g", b"carol", StreamId::MIN, 10, ClaimOpts::default(), 300);
        assert_eq!(claimed, [StreamId::new(1, 0)]);
        assert_eq!(next, StreamId::MIN);
        assert_eq!(gone, [StreamId::new(2, 0)]);
        assert!(s.group_mut(b"g").unwrap().ack(StreamId::new(1, 0)));
        assert!(s.group(b"g").unwrap().pel.is_empty());
    }

    #[test]
    fn corrupt_nodes_are_refused() {
        let mut s = Stream::new();
        s.append(
            AddId::Exact(StreamId::new(1, 0)),
            &[b"f", b"v"],
            0,
            StreamLimits::default(),
        )
        .unwrap();
        let (_, lp) = s.nodes().next().unwrap();
        let items: Vec<Vec<u8>> = lp.iter().map(|v| v.to_bytes().into_owned()).collect();
        for cut in 0..items.len() {
            let lp2 = Listpack::from_items(items[..cut].iter().map(Vec::as_slice));
            assert!(
                check_node(StreamId::new(1, 0), &lp2, None).is_err(),
                "cut {cut}"
            );
        }
        let mut bad = items.clone();
        let last = bad.len() - 1;
        bad[last] = b"9".to_vec();
        let lp3 = Listpack::from_items(bad.iter().map(Vec::as_slice));
        assert!(check_node(StreamId::new(1, 0), &lp3, None).is_err());
    }
}
