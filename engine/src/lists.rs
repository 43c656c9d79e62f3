//! Lists: a quicklist, i.e. a deque of [`Listpack`] nodes, each bounded by
//! `list-max-listpack-size` (a byte limit when negative, an entry count when positive),
//! as Redis 7.0 stores every list. A small list is one node.
//!
//! OBJECT ENCODING reports `quicklist` for every list, as redis-server 7.0 does (the
//! `listpack` encoding for small lists arrived in 7.2).
//!
//! Nodes are [`Shareable`]: a forkless snapshot freezes a large list by sharing its nodes
//! ([`List::freeze`]), and a write copies only the node it changes while the snapshot
//! still holds it.

use crate::frozen::{self, Part, Shareable};
use crate::listpack::{HEADER_BYTES, Listpack, LpValue};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default `list-max-listpack-size`: nodes of at most 8 KiB.
pub const DEFAULT_LIST_MAX_LISTPACK_SIZE: i64 = -2;
/// Node byte limits for `list-max-listpack-size` -1 ..= -5 (Redis `optimization_level`).
const NODE_BYTE_LIMITS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// With a positive (count) fill, a node still never grows past this many bytes (Redis
/// `SIZE_SAFETY_LIMIT`).
const NODE_SAFETY_LIMIT_BYTES: usize = 8192;
/// Bytes an entry adds beyond its text, estimated (Redis `SIZE_ESTIMATE_OVERHEAD`).
const ENTRY_OVERHEAD_ESTIMATE_BYTES: usize = 11;

/// A list.
#[derive(Clone, Debug, Default)]
pub struct List {
    nodes: VecDeque<Shareable<Listpack>>,
    len: usize,
    /// The encoding OBJECT ENCODING reports, as Valkey 8 (and Redis 7.2) keep it: a list
    /// starts as one `listpack` and becomes a `quicklist` once a write would take it past
    /// `list-max-listpack-size` ([`List::grow_check`]); a quicklist goes back to a listpack
    /// when it shrinks to one node within half the limit ([`List::shrink_check`]). The
    /// storage is the same (nodes of listpacks); only the reported state differs.
    quick: bool,
}

/// Lists compare by content (the reported encoding is not part of the value).
impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.nodes == other.nodes
    }
}

impl Eq for List {}

impl Part for Listpack {
    fn weight_bytes(&self) -> usize {
        self.capacity_bytes()
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// Redis's default `packed_threshold`: an element at least this long is stored in a node
/// of its own (Redis's "plain" node).
pub const DEFAULT_PACKED_THRESHOLD_BYTES: usize = 1 << 30;
/// The largest threshold DEBUG QUICKLIST-PACKED-THRESHOLD accepts (Redis: 4 GiB - 1 MiB).
pub const MAX_PACKED_THRESHOLD_BYTES: u64 = (1 << 32) - (1 << 20);

/// Process-wide, as Redis's `packed_threshold` (DEBUG QUICKLIST-PACKED-THRESHOLD).
static PACKED_THRESHOLD_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_PACKED_THRESHOLD_BYTES);

/// DEBUG QUICKLIST-PACKED-THRESHOLD: 0 restores the default; false (unchanged) above
/// [`MAX_PACKED_THRESHOLD_BYTES`].
pub fn set_packed_threshold(bytes: u64) -> bool {
    if bytes > MAX_PACKED_THRESHOLD_BYTES {
        return false;
    }
    let bytes = match bytes {
        0 => DEFAULT_PACKED_THRESHOLD_BYTES,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    PACKED_THRESHOLD_BYTES.store(bytes, Ordering::Relaxed);
    true
}

/// Whether an element of `sz` bytes goes to a node of its own (Redis's `isLargeElement`).
#[inline]
fn is_large(sz: usize) -> bool {
    sz >= PACKED_THRESHOLD_BYTES.load(Ordering::Relaxed)
}

/// Whether `node` is a large element's own node, which takes no other entry.
#[inline]
fn is_plain(node: &Listpack) -> bool {
    is_large(node.bytes_len())
        && node.len() == 1
        && node
            .first()
            .is_some_and(|p| is_large(node.get(p).text_len()))
}

/// Whether a node of `count` entries and `bytes` bytes is within `fill`.
fn node_fits(fill: i64, bytes: usize, count: usize) -> bool {
    if fill >= 0 {
        count <= fill.max(1) as usize && bytes <= NODE_SAFETY_LIMIT_BYTES
    } else {
        let i = (fill.unsigned_abs().min(5) - 1) as usize;
        bytes <= NODE_BYTE_LIMITS[i]
    }
}

fn allow_insert(node: &Listpack, fill: i64, sz: usize) -> bool {
    !is_large(sz)
        && !is_plain(node)
        && node_fits(
            fill,
            node.bytes_len() + sz + ENTRY_OVERHEAD_ESTIMATE_BYTES,
            node.len() + 1,
        )
}

impl List {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A list whose nodes are these listpacks (an RDB load); empty nodes are dropped.
    #[must_use]
    pub fn from_nodes(nodes: impl IntoIterator<Item = Listpack>) -> Self {
        let nodes: VecDeque<Shareable<Listpack>> = nodes
            .into_iter()
            .filter(|n| !n.is_empty())
            .map(Shareable::new)
            .collect();
        let len = nodes.iter().map(|n| n.len()).sum();
        let quick = nodes.len() > 1;
        Self { nodes, len, quick }
    }

    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// OBJECT ENCODING (Valkey 8's: `listpack` for a small list, see [`List::quick`]).
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        if self.quick || self.nodes.len() > 1 {
            "quicklist"
        } else {
            "listpack"
        }
    }

    /// Before `count` entries of `bytes` bytes in all are added (a push, LINSERT, LSET):
    /// a listpack that would pass the fill becomes a quicklist (Valkey's
    /// `listTypeTryConvertListpack`: the listpack's bytes plus the new strings' lengths,
    /// its entries plus `count`).
    pub fn grow_check(&mut self, fill: i64, bytes: usize, count: usize) {
        if self.quick {
            return;
        }
        let (have_bytes, have) = self
            .nodes
            .front()
            .map_or((0, 0), |n| (n.bytes_len(), n.len()));
        if self.nodes.len() > 1 || !node_fits(fill, have_bytes + bytes, have + count) {
            self.quick = true;
        }
    }

    /// After entries were removed or replaced: a quicklist of one node within half the
    /// fill is reported as a listpack again (Valkey's `listTypeTryConvertQuicklist` when
    /// shrinking).
    pub fn shrink_check(&mut self, fill: i64) {
        if !self.quick || self.nodes.len() > 1 {
            return;
        }
        let (bytes, count) = self
            .nodes
            .front()
            .map_or((0, 0), |n| (n.bytes_len(), n.len()));
        let fits_half = if fill >= 0 {
            count <= (fill.max(1) as usize) / 2
        } else {
            let i = (fill.unsigned_abs().min(5) - 1) as usize;
            bytes <= NODE_BYTE_LIMITS[i] / 2
        };
        if fits_half {
            self.quick = false;
        }
    }

    /// The nodes, head first (RDB writing).
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &Listpack> + '_ {
        self.nodes.iter().map(|n| &**n)
    }

    /// A frozen copy sharing the nodes (O(nodes), no entry copied); a node is copied
    /// when written while the copy still holds it.
    pub fn freeze(&mut self) -> FrozenList {
        FrozenList {
            nodes: self.nodes.iter_mut().map(Shareable::share).collect(),
            len: self.len,
        }
    }

    /// Bytes held by the nodes (for memory reports).
    #[must_use]
    pub fn allocated_bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.capacity_bytes()).sum::<usize>()
            + self.nodes.capacity() * std::mem::size_of::<Shareable<Listpack>>()
    }

    /// Pushes `v` at `end`. The end node grows with some slack (pushes come one at a
    /// time); a node that stops being an end node gives its slack back.
    pub fn push(&mut self, end: End, v: &[u8], fill: i64) {
        match end {
            End::Head => match self.nodes.front_mut() {
                Some(n) if allow_insert(n, fill, v.len()) => n.get_mut().push_front_amortized(v),
                old => {
                    // A node shared with a frozen copy keeps its slack until written.
                    if let Some(old) = old.and_then(Shareable::owned_mut) {
                        old.shrink_to_fit();
                    }
                    let mut n = Listpack::new();
                    n.push_back_amortized(v);
                    self.nodes.push_front(Shareable::new(n));
                }
            },
            End::Tail => match self.nodes.back_mut() {
                Some(n) if allow_insert(n, fill, v.len()) => n.get_mut().push_back_amortized(v),
                old => {
                    if let Some(old) = old.and_then(Shareable::owned_mut) {
                        old.shrink_to_fit();
                    }
                    let mut n = Listpack::new();
                    n.push_back_amortized(v);
                    self.nodes.push_back(Shareable::new(n));
                }
            },
        }
        self.len += 1;
        if self.nodes.len() > 1 {
            self.quick = true;
        }
    }

    /// The entry at `end`.
    #[must_use]
    pub fn peek(&self, end: End) -> Option<LpValue<'_>> {
        match end {
            End::Head => self.nodes.front().map(|n| n.get(HEADER_BYTES)),
            End::Tail => self.nodes.back().and_then(|n| n.last().map(|p| n.get(p))),
        }
    }

    /// Removes the entry at `end`, calling `f` with it first.
    pub fn pop_with<R>(&mut self, end: End, f: impl FnOnce(LpValue<'_>) -> R) -> Option<R> {
        let r;
        match end {
            End::Head => {
                let n = self.nodes.front_mut()?.get_mut();
                let p = n.first()?;
                r = f(n.get(p));
                n.delete(p);
                if n.is_empty() {
                    self.nodes.pop_front();
                }
            }
            End::Tail => {
                let n = self.nodes.back_mut()?.get_mut();
                let p = n.last()?;
                r = f(n.get(p));
                n.delete(p);
                if n.is_empty() {
                    self.nodes.pop_back();
                }
            }
        }
        self.len -= 1;
        Some(r)
    }

    /// Removes and returns the entry at `end` as bytes.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        self.pop_with(end, |v| v.to_bytes().into_owned())
    }

    /// Normalizes a Redis index (negative from the end) to `0..len`.
    #[must_use]
    pub fn normalize(&self, index: i64) -> Option<usize> {
        let len = self.len as i64;
        let i = if index < 0 { index + len } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// (node index, byte position) of entry `i` (`i < len`).
    fn locate(&self, i: usize) -> (usize, usize) {
        debug_assert!(i < self.len);
        if i < self.len / 2 {
            let mut acc = 0;
            for (ni, n) in self.nodes.iter().enumerate() {
                let l = n.len();
                if i < acc + l {
                    let p = n.seek((i - acc) as i64).expect("index within node");
                    return (ni, p);
                }
                acc += l;
            }
        } else {
            let mut acc = self.len;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                let l = n.len();
                acc -= l;
                if i >= acc {
                    let p = n.seek((i - acc) as i64).expect("index within node");
                    return (ni, p);
                }
            }
        }
        unreachable!("index below len")
    }

    /// The entry at `index` (negative from the end).
    #[must_use]
    pub fn get(&self, index: i64) -> Option<LpValue<'_>> {
        let i = self.normalize(index)?;
        let (ni, p) = self.locate(i);
        Some(self.nodes[ni].get(p))
    }

    /// Replaces the entry at `index`; false when out of range.
    pub fn set(&mut self, index: i64, v: &[u8], fill: i64) -> bool {
        let Some(i) = self.normalize(index) else {
            return false;
        };
        let (ni, p) = self.locate(i);
        self.nodes[ni].get_mut().replace(p, v);
        if self.nodes[ni].len() > 1
            && (is_large(v.len())
                || !node_fits(fill, self.nodes[ni].bytes_len(), self.nodes[ni].len()))
        {
            self.split_node(ni, p, fill);
        }
        true
    }

    /// Splits node `ni` so that no part exceeds `fill` where avoidable: the node is cut
    /// at `p` and both halves are re-cut if still too big.
    fn split_node(&mut self, ni: usize, p: usize, fill: i64) {
        let node = self.nodes.remove(ni).expect("node index in range");
        let mut parts = Vec::new();
        let mut cur = Listpack::new();
        let _ = p;
        for v in &*node {
            let b = v.to_bytes();
            if !cur.is_empty() && !allow_insert(&cur, fill, b.len()) {
                parts.push(std::mem::take(&mut cur));
            }
            cur.push_back(&b);
        }
        if !cur.is_empty() {
            parts.push(cur);
        }
        for (k, part) in parts.into_iter().enumerate() {
            self.nodes.insert(ni + k, Shareable::new(part));
        }
    }

    /// Inserts `v` before (`after` false) or after the first entry equal to `pivot`.
    /// Returns the new length, or `None` when the pivot is absent (LINSERT's -1).
    pub fn insert_at_pivot(
        &mut self,
        pivot: &[u8],
        v: &[u8],
        after: bool,
        fill: i64,
    ) -> Option<usize> {
        let (ni, p) = self
            .nodes
            .iter()
            .enumerate()
            .find_map(|(ni, n)| n.find(n.first(), pivot, 0).map(|p| (ni, p)))?;
        let node = self.nodes[ni].get_mut();
        let pos = if after {
            node.next(p).unwrap_or_else(|| node.end())
        } else {
            p
        };
        if allow_insert(node, fill, v.len()) {
            node.insert(pos, v);
        } else {
            // Redis tries the neighbour node when inserting at a node's edge, else splits.
            let at_end = pos == node.end();
            let at_start = node.first() == Some(pos);
            let _ = node;
            if at_end
                && self
                    .nodes
                    .get(ni + 1)
                    .is_some_and(|n| allow_insert(n, fill, v.len()))
            {
                self.nodes[ni + 1].get_mut().push_front(v);
            } else if at_start && ni > 0 && allow_insert(&self.nodes[ni - 1], fill, v.len()) {
                self.nodes[ni - 1].get_mut().push_back(v);
            } else if at_end {
                let mut n = Listpack::new();
                n.push_back(v);
                self.nodes.insert(ni + 1, Shareable::new(n));
            } else if at_start {
                let mut n = Listpack::new();
                n.push_back(v);
                self.nodes.insert(ni, Shareable::new(n));
            } else {
                let tail = self.nodes[ni].get_mut().split_off(pos);
                let mut n = Listpack::new();
                n.push_back(v);
                self.nodes.insert(ni + 1, Shareable::new(n));
                self.nodes.insert(ni + 2, Shareable::new(tail));
            }
        }
        self.len += 1;
        Some(self.len)
    }

    /// Removes entries equal to `v`: `count` > 0 the first `count` from the head, < 0
    /// from the tail, 0 all (LREM). Returns how many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let mut removed = 0;
        if count >= 0 {
            let mut ni = 0;
            while ni < self.nodes.len() && removed < limit {
                if !self.nodes[ni].iter().any(|x| x.eq_bytes(v)) {
                    // Untouched: a node shared with a snapshot stays shared.
                    ni += 1;
                    continue;
                }
                let node = self.nodes[ni].get_mut();
                let mut cur = node.first();
                while let Some(p) = cur {
                    if removed >= limit {
                        break;
                    }
                    if node.get(p).eq_bytes(v) {
                        node.delete(p);
                        removed += 1;
                        cur = (p < node.end()).then_some(p);
                    } else {
                        cur = node.next(p);
                    }
                }
                if node.is_empty() {
                    self.nodes.remove(ni);
                } else {
                    ni += 1;
                }
            }
        } else {
            let mut ni = self.nodes.len();
            while ni > 0 && removed < limit {
                ni -= 1;
                if !self.nodes[ni].iter().any(|x| x.eq_bytes(v)) {
                    continue;
                }
                let node = self.nodes[ni].get_mut();
                let mut cur = node.last();
                while let Some(p) = cur {
                    if removed >= limit {
                        break;
                    }
                    let prev = node.prev(p);
                    if node.get(p).eq_bytes(v) {
                        node.delete(p);
                        removed += 1;
                    }
                    cur = prev;
                }
                if node.is_empty() {
                    self.nodes.remove(ni);
                }
            }
        }
        self.len -= removed;
        removed
    }

    /// Removes `n` entries from `end`.
    pub fn remove_from(&mut self, end: End, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let l = match end {
                End::Head => self.nodes.front(),
                End::Tail => self.nodes.back(),
            }
            .expect("entries remain")
            .len();
            if l <= n {
                n -= l;
                match end {
                    End::Head => self.nodes.pop_front(),
                    End::Tail => self.nodes.pop_back(),
                };
            } else {
                let node = match end {
                    End::Head => self.nodes.front_mut(),
                    End::Tail => self.nodes.back_mut(),
                }
                .expect("entries remain")
                .get_mut();
                let p = match end {
                    End::Head => node.first().expect("non-empty node"),
                    End::Tail => node.seek(-(n as i64)).expect("n below node length"),
                };
                node.delete_range(p, n);
                n = 0;
            }
        }
    }

    /// Keeps only entries `start..=stop` (normalized Redis LTRIM indices).
    pub fn trim(&mut self, start: i64, stop: i64) {
        let len = self.len as i64;
        let mut start = if start < 0 { start + len } else { start };
        let mut stop = if stop < 0 { stop + len } else { stop };
        if start < 0 {
            start = 0;
        }
        if start > stop || start >= len {
            self.nodes.clear();
            self.len = 0;
            return;
        }
        if stop >= len {
            stop = len - 1;
        }
        let rtrim = (len - stop - 1) as usize;
        self.remove_from(End::Head, start as usize);
        self.remove_from(End::Tail, rtrim);
    }

    /// Calls `f` with `count` entries from index `start` on, front to back (`start` in
    /// range, `start + count` at most the length): LRANGE's walk, node by node.
    #[inline]
    pub fn for_each_in(&self, start: usize, count: usize, mut f: impl FnMut(LpValue<'_>)) {
        if count == 0 {
            return;
        }
        let (ni, p) = self.locate(start);
        let mut left = count - self.nodes[ni].for_each_from(p, count, &mut f);
        for n in self.nodes.range(ni + 1..) {
            if left == 0 {
                break;
            }
            left -= n.for_each_from(HEADER_BYTES, left, &mut f);
        }
        debug_assert_eq!(left, 0, "range within the list");
    }

    /// Entries front to back.
    pub fn iter(&self) -> impl Iterator<Item = LpValue<'_>> + '_ {
        self.nodes.iter().flat_map(|n| n.iter())
    }

    /// Entries back to front.
    pub fn iter_rev(&self) -> impl Iterator<Item = LpValue<'_>> + '_ {
        self.nodes.iter().rev().flat_map(|n| n.iter_rev())
    }
}

/// A large list's frozen copy (see [`List::freeze`]): its nodes, shared with the live
/// list until written there.
#[derive(Debug)]
pub struct FrozenList {
    nodes: Vec<Arc<Listpack>>,
    len: usize,
}

impl FrozenList {
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Calls `f` on every node, head first, releasing each once done with it; stops at
    /// `f`'s first error.
    pub fn drain<E>(mut self, mut f: impl FnMut(&Listpack) -> Result<(), E>) -> Result<(), E> {
        let nodes = std::mem::take(&mut self.nodes);
        let mut nodes = nodes.into_iter();
        for n in nodes.by_ref() {
            let done = f(&n);
            frozen::release(n);
            if done.is_err() {
                nodes.for_each(frozen::release);
                return done;
            }
        }
        Ok(())
    }
}

impl Drop for FrozenList {
    fn drop(&mut self) {
        self.nodes.drain(..).for_each(frozen::release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|v| v.to_bytes().into_owned()).collect()
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Set(i64, Vec<u8>),
        Insert(usize, bool, Vec<u8>),
        Rem(Vec<u8>, i64),
        Trim(i64, i64),
    }

    fn item() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u8..6).prop_map(|i| vec![b'a' + i]),
            (-3i64..300).prop_map(|i| i.to_string().into_bytes()),
            (0usize..300).prop_map(|n| vec![b'z'; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), item()).prop_map(|(h, v)| Op::Push(h, v)),
            1 => any::<bool>().prop_map(Op::Pop),
            1 => (-40i64..40, item()).prop_map(|(i, v)| Op::Set(i, v)),
            1 => (0usize..50, any::<bool>(), item()).prop_map(|(i, a, v)| Op::Insert(i, a, v)),
            1 => (item(), -3i64..3).prop_map(|(v, c)| Op::Rem(v, c)),
            1 => (-50i64..50, -50i64..50).prop_map(|(a, b)| Op::Trim(a, b)),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_vecdeque_model(
            ops in proptest::collection::vec(op(), 0..200),
            fill in prop_oneof![Just(-2i64), Just(-1), Just(1), Just(3), Just(128)],
        ) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(h, v) => {
                        l.push(if h { End::Head } else { End::Tail }, &v, fill);
                        if h { m.push_front(v) } else { m.push_back(v) }
                    }
                    Op::Pop(h) => {
                        let got = l.pop(if h { End::Head } else { End::Tail });
                        let want = if h { m.pop_front() } else { m.pop_back() };
                        prop_assert_eq!(got, want);
                    }
                    Op::Set(i, v) => {
                        let ok = l.set(i, &v, fill);
                        let len = m.len() as i64;
                        let j = if i < 0 { i + len } else { i };
                        prop_assert_eq!(ok, (0..len).contains(&j));
                        if ok { m[j as usize] = v; }
                    }
                    Op::Insert(i, after, v) => {
                        let pivot = m.get(i).cloned().unwrap_or_else(|| b"nope".to_vec());
                        let got = l.insert_at_pivot(&pivot, &v, after, fill);
                        if let Some(j) = m.iter().position(|x| *x == pivot) {
                            m.insert(if after { j + 1 } else { j }, v);
                            prop_assert_eq!(got, Some(m.len()));
                        } else {
                            prop_assert_eq!(got, None);
                        }
                    }
                    Op::Rem(v, c) => {
                        let got = l.remove_matching(&v, c);
                        let mut want = 0;
                        let limit = if c == 0 { usize::MAX } else { c.unsigned_abs() as usize };
                        if c >= 0 {
                            let mut j = 0;
                            while j < m.len() {
                                if want < limit && m[j] == v { m.remove(j); want += 1; } else { j += 1; }
                            }
                        } else {
                            let mut j = m.len();
                            while j > 0 {
                                j -= 1;
                                if want < limit && m[j] == v { m.remove(j); want += 1; }
                            }
                        }
                        prop_assert_eq!(got, want);
                    }
                    Op::Trim(a, b) => {
                        l.trim(a, b);
                        let len = m.len() as i64;
                        let mut s = if a < 0 { a + len } else { a };
                        let mut e = if b < 0 { b + len } else { b };
                        if s < 0 { s = 0; }
                        if s > e || s >= len { m.clear(); } else {
                            if e >= len { e = len - 1; }
                            m = m.iter().skip(s as usize).take((e - s + 1) as usize).cloned().collect();
                        }
                    }
                }
                prop_assert_eq!(l.len(), m.len());
                prop_assert!(l.nodes.iter().all(|n| !n.is_empty()));
            }
            prop_assert_eq!(texts(&l), m.iter().cloned().collect::<Vec<_>>());
            let mut rev: Vec<Vec<u8>> = l.iter_rev().map(|v| v.to_bytes().into_owned()).collect();
            rev.reverse();
            prop_assert_eq!(&rev, &texts(&l));
            for s in 0..m.len() {
                prop_assert_eq!(l.get(s as i64).map(|v| v.to_bytes().into_owned()), Some(m[s].clone()));
                for count in [0, 1, 2, m.len() - s].map(|c| c.min(m.len() - s)) {
                    let mut got = Vec::new();
                    l.for_each_in(s, count, |v| got.push(v.to_bytes().into_owned()));
                    prop_assert_eq!(got, m.iter().skip(s).take(count).cloned().collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn nodes_respect_the_fill() {
        let mut l = List::new();
        for i in 0..1000 {
            l.push(End::Tail, format!("value-{i}").as_bytes(), -2);
        }
        assert!(l.nodes.len() > 1);
        assert!(l.nodes.iter().all(|n| n.bytes_len() <= 8192));
        let mut l = List::new();
        for i in 0..10 {
            l.push(End::Head, &[i], 3);
        }
        assert_eq!(l.nodes.len(), 4);
    }
}
