//! Set values: an [`IntSet`] while every member is a canonical integer and there are at
//! most `set-max-intset-entries` of them, a [`Packed`] run of members (one allocation,
//! insertion order) while there are at most `set-max-listpack-entries` members of at most
//! `set-max-listpack-value` bytes, else a hash table of members.
//!
//! OBJECT ENCODING reports what redis-server 7.0 reports: `intset`, or `hashtable` for
//! both other forms (7.0 has no listpack sets; the packed run is percore's compact form
//! of what 7.0 keeps in a hash table, as Valkey 8 keeps a listpack).

use crate::hash::random_below;
use crate::intset::IntSet;
use crate::number::{I64_MAX_DECIMAL_BYTES, format_i64, parse_i64_strict};
use crate::table::Table;

/// Redis's default `set-max-intset-entries`.
pub const DEFAULT_SET_MAX_INTSET_ENTRIES: usize = 512;
/// Valkey's default `set-max-listpack-entries` (the small form's member limit).
pub const DEFAULT_SET_MAX_LISTPACK_ENTRIES: usize = 128;
/// Valkey's default `set-max-listpack-value` (the small form's member size limit).
pub const DEFAULT_SET_MAX_LISTPACK_VALUE_BYTES: usize = 64;
/// Seed of the member tables of large sets and sorted sets.
pub const MEMBER_TABLE_SEED: u64 = 0x5e75_a11c_e5ee_d001;

/// The thresholds that choose a set's form (the server's config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    pub max_intset_entries: usize,
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        Self {
            max_intset_entries: DEFAULT_SET_MAX_INTSET_ENTRIES,
            max_listpack_entries: DEFAULT_SET_MAX_LISTPACK_ENTRIES,
            max_listpack_value: DEFAULT_SET_MAX_LISTPACK_VALUE_BYTES,
        }
    }
}

/// One member, as stored: an integer of an intset, or bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// The member's text.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Member::Int(i) => format_i64(*i, &mut [0; I64_MAX_DECIMAL_BYTES]).to_vec(),
            Member::Bytes(b) => b.to_vec(),
        }
    }
}

/// A set value.
#[derive(Clone, Debug)]
pub enum SetValue {
    /// Every member an integer; at most `set-max-intset-entries`.
    Ints(IntSet),
    /// Few short members, in insertion order.
    Small(Packed),
    /// Everything else.
    Hash(Table<()>),
}

impl std::fmt::Debug for Table<()> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|(k, ())| k.escape_ascii().to_string()))
            .finish()
    }
}

impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && {
            let mut all = true;
            self.for_each(|m| all &= other.contains(&m.to_vec()));
            all
        }
    }
}

impl Eq for SetValue {}

impl SetValue {
    /// An empty set of the form Valkey's `setTypeCreate` picks for its first member and
    /// the number of members about to be added (`size_hint`: SADD's member count).
    #[must_use]
    pub fn new_for(first: &[u8], size_hint: usize, limits: &SetLimits) -> Self {
        if limits.max_intset_entries > 0
            && size_hint <= limits.max_intset_entries
            && parse_i64_strict(first).is_some()
        {
            SetValue::Ints(IntSet::new())
        } else if size_hint <= limits.max_listpack_entries
            && limits.max_listpack_entries > 0
            && first.len() <= limits.max_listpack_value
        {
            SetValue::Small(Packed::default())
        } else {
            SetValue::Hash(Table::new(MEMBER_TABLE_SEED))
        }
    }

    /// Before `size_hint` members are added to an existing set (SADD): a compact form
    /// they could not fit goes to the hash form at once (Valkey's `setTypeMaybeConvert`).
    pub fn maybe_convert(&mut self, size_hint: usize, limits: &SetLimits) {
        let too_many = match self {
            SetValue::Ints(_) => size_hint > limits.max_intset_entries,
            SetValue::Small(_) => size_hint > limits.max_listpack_entries,
            SetValue::Hash(_) => false,
        };
        if too_many {
            self.grow_to_hash();
        }
    }

    /// An empty set in the intset form (the start of SINTERSTORE-like results).
    #[must_use]
    pub fn new_ints() -> Self {
        SetValue::Ints(IntSet::new())
    }

    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            SetValue::Ints(s) => s.len(),
            SetValue::Small(v) => v.len(),
            SetValue::Hash(t) => t.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING, as Valkey 8 (and Redis 7.2) report it: the small form is a
    /// `listpack` (Redis 7.0 kept such sets in a hash table).
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Ints(_) => "intset",
            SetValue::Small(_) => "listpack",
            SetValue::Hash(_) => "hashtable",
        }
    }

    /// DEBUG HTSTATS-KEY: the member table's stats (the compact forms have none).
    #[must_use]
    pub fn hash_table_stats(&self) -> Option<String> {
        match self {
            SetValue::Ints(_) | SetValue::Small(_) => None,
            SetValue::Hash(t) => Some(t.stats_text()),
        }
    }

    /// One step of the member table's incremental rehash, as Redis's random-member reads
    /// take one (`dictGetRandomKey`, `dictGetSomeKeys`): a set left rehashing by removals
    /// finishes under SRANDMEMBER too. Changes no member and no member's arena position.
    pub fn rehash_step(&mut self) {
        if let SetValue::Hash(t) = self {
            t.rehash_step();
        }
    }

    #[must_use]
    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(s) => parse_i64_strict(m).is_some_and(|i| s.contains(i)),
            SetValue::Small(v) => v.find(m).is_some(),
            SetValue::Hash(t) => t.contains_key(m),
        }
    }

    /// Adds `m`; false when already a member. Converts to a larger form when `m` or the
    /// new size no longer fits the current one.
    pub fn add(&mut self, m: &[u8], limits: &SetLimits) -> bool {
        match self {
            SetValue::Ints(s) => {
                if let Some(i) = parse_i64_strict(m) {
                    if !s.insert(i) {
                        return false;
                    }
                    if s.len() > limits.max_intset_entries {
                        // Valkey's maybeConvertIntset: straight to the hash form.
                        self.grow_to_hash();
                    }
                    return true;
                }
                // A non-integer member: convert first (as Redis, sized for one more).
                self.convert(limits, 1, m.len());
                self.add(m, limits)
            }
            SetValue::Small(v) => {
                if v.find(m).is_some() {
                    return false;
                }
                if v.len() < limits.max_listpack_entries && m.len() <= limits.max_listpack_value {
                    v.push(m);
                    return true;
                }
                self.grow_to_hash();
                self.add(m, limits)
            }
            SetValue::Hash(t) => {
                let ((), inserted) = t.get_or_insert_with(m, || ());
                inserted
            }
        }
    }

    /// Converts an intset to the small form when `extra` more members (the longest
    /// `extra_len` bytes) fit it, else to the hash form.
    fn convert(&mut self, limits: &SetLimits, extra: usize, extra_len: usize) {
        let SetValue::Ints(s) = self else {
            return;
        };
        let longest = s
            .iter()
            .map(|i| format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).len())
            .max()
            .unwrap_or(0)
            .max(extra_len);
        if s.len() + extra <= limits.max_listpack_entries && longest <= limits.max_listpack_value {
            let mut text = Vec::with_capacity(s.len() * I64_MAX_DECIMAL_BYTES);
            for i in s.iter() {
                Packed::encode(&mut text, format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]));
            }
            *self = SetValue::Small(Packed::from_encoded(text, s.len()));
        } else {
            let mut t = Table::new(MEMBER_TABLE_SEED);
            for i in s.iter() {
                t.insert(format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).into(), ());
            }
            *self = SetValue::Hash(t);
        }
    }

    fn grow_to_hash(&mut self) {
        let mut t = Table::new(MEMBER_TABLE_SEED);
        match self {
            SetValue::Ints(s) => {
                for i in s.iter() {
                    t.insert(format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).into(), ());
                }
            }
            SetValue::Small(v) => {
                for m in v.iter() {
                    t.insert(m.into(), ());
                }
            }
            SetValue::Hash(_) => return,
        }
        *self = SetValue::Hash(t);
    }

    /// Removes `m`; false when it was not a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            SetValue::Ints(s) => parse_i64_strict(m).is_some_and(|i| s.remove(i)),
            SetValue::Small(v) => match v.find(m) {
                Some(at) => {
                    v.remove_at_offset(at);
                    true
                }
                None => false,
            },
            SetValue::Hash(t) => t.remove(m).is_some(),
        }
    }

    /// Calls `f` on every member (intsets ascending, other forms in storage order).
    pub fn for_each(&self, mut f: impl FnMut(Member<'_>)) {
        match self {
            SetValue::Ints(s) => s.iter().for_each(|i| f(Member::Int(i))),
            SetValue::Small(v) => v.iter().for_each(|m| f(Member::Bytes(m))),
            SetValue::Hash(t) => t.iter().for_each(|(m, ())| f(Member::Bytes(m))),
        }
    }

    /// Every member's text.
    #[must_use]
    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// The member at storage position `i` (`i < len`).
    #[must_use]
    pub fn member_at(&self, i: usize) -> Member<'_> {
        match self {
            SetValue::Ints(s) => Member::Int(s.get(i)),
            SetValue::Small(v) => Member::Bytes(v.get(i)),
            SetValue::Hash(t) => Member::Bytes(t.entry_at(i).0),
        }
    }

    /// A uniformly random member, or `None` when empty.
    #[must_use]
    pub fn random(&self, rng: &mut u64) -> Option<Member<'_>> {
        let n = self.len();
        (n > 0).then(|| self.member_at(random_below(rng, n)))
    }

    /// Removes and returns a uniformly random member.
    pub fn pop_random(&mut self, rng: &mut u64) -> Option<Vec<u8>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = random_below(rng, n);
        Some(match self {
            SetValue::Ints(s) => {
                format_i64(s.remove_at(i), &mut [0; I64_MAX_DECIMAL_BYTES]).to_vec()
            }
            SetValue::Small(v) => v.remove(i),
            SetValue::Hash(t) => t.remove_at(i).0.into_boxed_slice().into_vec(),
        })
    }

    /// SSCAN: calls `f` on the members at `cursor` and returns the next cursor. The
    /// compact forms return everything at once with cursor 0, as Redis.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Member<'_>)) -> u64 {
        match self {
            SetValue::Hash(t) => t.scan(cursor, |m, ()| f(Member::Bytes(m))),
            SetValue::Ints(_) | SetValue::Small(_) => {
                self.for_each(f);
                0
            }
        }
    }

    /// The intset, when in that form (RDB type 11).
    #[must_use]
    pub fn as_intset(&self) -> Option<&IntSet> {
        match self {
            SetValue::Ints(s) => Some(s),
            SetValue::Small(_) | SetValue::Hash(_) => None,
        }
    }

    /// A set of `members` (from a file or a computation), in the form adding them one by
    /// one would give, starting from an intset.
    pub fn from_members<'a>(
        members: impl IntoIterator<Item = &'a [u8]>,
        limits: &SetLimits,
    ) -> Self {
        let mut s = SetValue::Ints(IntSet::new());
        if limits.max_intset_entries == 0 {
            s = SetValue::Small(Packed::default());
        }
        for m in members {
            s.add(m, limits);
        }
        s
    }

    /// A set holding `intset` (RDB type 11), converted when over the limits.
    #[must_use]
    pub fn from_intset(intset: IntSet, limits: &SetLimits) -> Self {
        let mut s = SetValue::Ints(intset);
        if s.len() > limits.max_intset_entries {
            s.convert(limits, 0, 0);
        }
        s
    }

    /// Approximate heap bytes (MEMORY USAGE-like accounting, DEBUG OBJECT).
    #[must_use]
    pub fn serialized_len_hint(&self) -> usize {
        match self {
            SetValue::Ints(s) => s.contents().len(),
            SetValue::Small(_) | SetValue::Hash(_) => {
                let mut n = 0;
                self.for_each(|m| {
                    n += match m {
                        Member::Int(_) => I64_MAX_DECIMAL_BYTES,
                        Member::Bytes(b) => b.len() + 1,
                    }
                });
                n
            }
        }
    }
}

/// A run of members, each a length byte (or [`PACKED_LONG`] and a `u32` LE length for
/// one of [`PACKED_LONG`] bytes or more) followed by its bytes, in one exact allocation.
/// Five 8-byte members take 45 bytes, one 48-byte malloc chunk, where a vector of boxed
/// members took six allocations. Every operation is a walk of at most
/// `set-max-listpack-entries` members, comparing a length byte first.
#[derive(Clone, Debug, Default)]
pub struct Packed {
    buf: Box<[u8]>,
    len: u32,
}

/// Length byte meaning "a `u32` length follows".
const PACKED_LONG: u8 = u8::MAX;

impl Packed {
    /// Appends `m`'s encoding to `out`.
    fn encode(out: &mut Vec<u8>, m: &[u8]) {
        match u8::try_from(m.len()) {
            Ok(n) if n < PACKED_LONG => out.push(n),
            _ => {
                out.push(PACKED_LONG);
                out.extend_from_slice(&(m.len() as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(m);
    }

    fn from_encoded(mut buf: Vec<u8>, len: usize) -> Self {
        buf.shrink_to_fit();
        Self {
            buf: buf.into_boxed_slice(),
            len: len as u32,
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated.
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The member at byte `off` and the offset of the next one.
    #[inline]
    fn entry_at(&self, off: usize) -> (&[u8], usize) {
        let b = &self.buf;
        let (n, p) = if b[off] == PACKED_LONG {
            let n = u32::from_le_bytes([b[off + 1], b[off + 2], b[off + 3], b[off + 4]]);
            (n as usize, off + 5)
        } else {
            (usize::from(b[off]), off + 1)
        };
        (&b[p..p + n], p + n)
    }

    /// The members in storage order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            (off < self.buf.len()).then(|| {
                let (m, next) = self.entry_at(off);
                off = next;
                m
            })
        })
    }

    /// Byte offset of member `m`.
    #[must_use]
    #[inline]
    pub fn find(&self, m: &[u8]) -> Option<usize> {
        let b = &*self.buf;
        let mut off = 0;
        while let Some(&n) = b.get(off) {
            if n == PACKED_LONG {
                let (x, next) = self.entry_at(off);
                if x == m {
                    return Some(off);
                }
                off = next;
                continue;
            }
            let n = usize::from(n);
            // The length byte first: most members differ there.
            if n == m.len() && b.get(off + 1..off + 1 + n) == Some(m) {
                return Some(off);
            }
            off += 1 + n;
        }
        None
    }

    /// The `i`-th member (`i < len`).
    #[must_use]
    pub fn get(&self, i: usize) -> &[u8] {
        self.iter().nth(i).expect("index below the length")
    }

    /// Appends `m` (not a member yet).
    pub fn push(&mut self, m: &[u8]) {
        let mut v = std::mem::take(&mut self.buf).into_vec();
        let head = if m.len() < usize::from(PACKED_LONG) {
            1
        } else {
            5
        };
        v.reserve_exact(head + m.len());
        Self::encode(&mut v, m);
        self.len += 1;
        *self = Self::from_encoded(v, self.len as usize);
    }

    /// Removes the member at byte offset `off`.
    fn remove_at_offset(&mut self, off: usize) {
        let (_, next) = self.entry_at(off);
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.drain(off..next);
        *self = Self::from_encoded(v, self.len as usize - 1);
    }

    /// Removes and returns the `i`-th member (`i < len`).
    pub fn remove(&mut self, i: usize) -> Vec<u8> {
        let mut off = 0;
        for _ in 0..i {
            off = self.entry_at(off).1;
        }
        let m = self.entry_at(off).0.to_vec();
        self.remove_at_offset(off);
        m
    }
}

/// Appends `m` length-prefixed (`u32` LE) to `out`: the wire form of a member.
pub fn put_wire_member(out: &mut Vec<u8>, m: &[u8]) {
    out.extend_from_slice(&(m.len() as u32).to_le_bytes());
    out.extend_from_slice(m);
}

/// Splits the next length-prefixed member off `buf`.
pub fn take_wire_member<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let m = buf.get(4..4 + len)?;
    *buf = &buf[4 + len..];
    Some(m)
}

impl SetValue {
    /// The members as one buffer, for a trip to another shard.
    #[must_use]
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0; I64_MAX_DECIMAL_BYTES];
        self.for_each(|m| match m {
            Member::Int(i) => put_wire_member(&mut out, format_i64(i, &mut buf)),
            Member::Bytes(b) => put_wire_member(&mut out, b),
        });
        out
    }

    /// A set from [`SetValue::to_wire`]'s buffer; `None` when malformed.
    #[must_use]
    pub fn from_wire(mut buf: &[u8], limits: &SetLimits) -> Option<Self> {
        let mut members = Vec::new();
        while !buf.is_empty() {
            members.push(take_wire_member(&mut buf)?);
        }
        Some(Self::from_members(members, limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn small() -> SetLimits {
        SetLimits {
            max_intset_entries: 4,
            max_listpack_entries: 3,
            max_listpack_value: 4,
        }
    }

    #[test]
    fn forms_follow_the_limits() {
        let l = SetLimits::default();
        let mut s = SetValue::new_for(b"1", 1, &l);
        assert!(s.add(b"1", &l));
        assert_eq!(s.encoding(), "intset");
        assert!(!s.add(b"1", &l));
        assert!(s.add(b"a", &l));
        assert!(matches!(s, SetValue::Small(_)));
        assert_eq!(s.encoding(), "listpack");
        assert!(s.contains(b"1") && s.contains(b"a") && !s.contains(b"01"));
        let mut s = SetValue::new_ints();
        for i in 0..=512 {
            s.add(i.to_string().as_bytes(), &l);
        }
        assert!(matches!(s, SetValue::Hash(_)));
        assert_eq!(s.len(), 513);
        // "01" is not an integer member.
        let mut s = SetValue::new_ints();
        s.add(b"01", &l);
        assert!(matches!(s, SetValue::Small(_)));
        let mut s = SetValue::new_ints();
        s.add(&[b'x'; 65], &l);
        assert!(matches!(s, SetValue::Hash(_)));
    }

    #[test]
    fn packed_members_of_any_length() {
        // Members around the one-byte length limit (254 / 255) and far over it.
        let l = SetLimits {
            max_intset_entries: 4,
            max_listpack_entries: 8,
            max_listpack_value: 1000,
        };
        let ms: Vec<Vec<u8>> = [0usize, 1, 254, 255, 256, 999]
            .iter()
            .map(|&n| vec![b'a' + (n % 26) as u8; n])
            .collect();
        let mut s = SetValue::new_for(&ms[0], ms.len(), &l);
        for m in &ms {
            assert!(s.add(m, &l));
            assert!(!s.add(m, &l));
        }
        assert!(matches!(s, SetValue::Small(_)));
        assert_eq!(s.len(), ms.len());
        assert_eq!(s.members(), ms);
        assert!(!s.contains(&[b'a'; 2]) && !s.contains(&[b'x'; 300]));
        assert!(s.remove(&ms[3]) && !s.contains(&ms[3]) && s.contains(&ms[4]));
        assert_eq!(s.pop_random(&mut 1).map(|m| ms.contains(&m)), Some(true));
        assert_eq!(s.len(), ms.len() - 2);
    }

    #[test]
    fn pop_and_random_cover_every_member() {
        let l = small();
        let mut rng = 7;
        let cases: [[&[u8]; 3]; 3] = [
            [b"1", b"2", b"3"],
            [b"a", b"b", b"c"],
            [b"aaaaaa", b"b", b"c"],
        ];
        for members in cases {
            let mut s = SetValue::from_members(members.iter().copied(), &l);
            let mut seen = BTreeSet::new();
            for _ in 0..100 {
                seen.insert(s.random(&mut rng).unwrap().to_vec());
            }
            assert_eq!(seen.len(), 3);
            let mut popped = BTreeSet::new();
            while let Some(m) = s.pop_random(&mut rng) {
                popped.insert(m);
            }
            assert_eq!(popped, members.iter().map(|m| m.to_vec()).collect());
            assert!(s.is_empty());
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((0u8..3, prop_oneof![
            (0i64..8).prop_map(|i| i.to_string().into_bytes()),
            "[a-c]{1,6}".prop_map(String::into_bytes),
        ]), 0..100)) {
            let l = small();
            let mut s = SetValue::new_ints();
            let mut m = BTreeSet::new();
            let mut rng = 1;
            for (op, v) in ops {
                match op {
                    0 => prop_assert_eq!(s.add(&v, &l), m.insert(v.clone())),
                    1 => prop_assert_eq!(s.remove(&v), m.remove(&v)),
                    _ => {
                        if let Some(p) = s.pop_random(&mut rng) {
                            prop_assert!(m.remove(&p));
                        }
                    }
                }
                prop_assert_eq!(s.len(), m.len());
                let got: BTreeSet<Vec<u8>> = s.members().into_iter().collect();
                prop_assert_eq!(&got, &m);
                let mut cursor = 0;
                let mut scanned = BTreeSet::new();
                loop {
                    cursor = s.scan(cursor, |x| { scanned.insert(x.to_vec()); });
                    if cursor == 0 { break; }
                }
                prop_assert_eq!(&scanned, &m);
            }
        }
    }
}
