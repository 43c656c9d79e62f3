//! `Table<V>`: a chained hash table keyed by byte strings, shaped like Redis's `dict`.
//!
//! Layout (no `unsafe`): entries live in a dense arena of fixed-size chunks, so pushing
//! never copies existing entries and a random entry is one uniform index away; buckets
//! are `u32` links into that arena (`0` = empty, `i + 1` = entry `i`), chained through
//! each entry's `next` link. Each entry caches the low 32 bits of its hash (every
//! bucket index fits in them: a table holds fewer than 2^32 entries), so rehashing never
//! re-reads keys; 32 bits rather than 64 make an entry 8 bytes smaller (a keyspace entry
//! 80 bytes instead of 88, a set member's 32 instead of 40).
//!
//! Resizing is incremental, as in Redis: a resize allocates the second bucket array and
//! every mutating operation moves [`REHASH_BUCKETS_PER_OP`] buckets (skipping at most
//! [`REHASH_EMPTY_VISITS_PER_BUCKET`] empty ones per bucket), so no single operation pays
//! for a full resize. Lookups during a rehash probe both arrays. The table grows at load
//! factor 1 and shrinks when fewer than one bucket in [`SHRINK_LOAD_DIVISOR`] is used.
//!
//! Keys of up to [`INLINE_KEY_MAX_BYTES`] bytes are stored in the entry itself (see
//! [`Key`]), so a lookup of a short key reads the bucket and one entry, and inserting one
//! does not allocate.
//!
//! Removal moves the last arena entry into the hole (swap-remove), so entry indices are
//! stable across inserts and lookups but change on any removal.

use crate::frozen::FrozenEntry;
use crate::hash::{hash_bytes, random_below};
use std::mem;

/// Chain lengths DEBUG HTSTATS counts apart; longer ones share the last count (Redis's
/// `DICT_STATS_VECTLEN`).
const STATS_CHAIN_LENGTHS: usize = 50;
/// Chain statistics of one bucket array (DEBUG HTSTATS); several add up (one database's
/// tables over the shards).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketStats {
    pub size: usize,
    pub used: usize,
    pub slots: usize,
    pub max_chain: usize,
    /// Buckets per chain length, the last counting every longer chain too.
    pub lengths: Vec<usize>,
}

impl BucketStats {
    /// Adds `other`'s buckets.
    pub fn add(&mut self, other: &BucketStats) {
        self.size += other.size;
        self.used += other.used;
        self.slots += other.slots;
        self.max_chain = self.max_chain.max(other.max_chain);
        if self.lengths.len() < other.lengths.len() {
            self.lengths.resize(other.lengths.len(), 0);
        }
        for (a, b) in self.lengths.iter_mut().zip(&other.lengths) {
            *a += b;
        }
    }

    /// Redis's `_dictGetStatsHt` text, for array `i` (0 main, 1 rehashing target).
    pub fn write_text(&self, i: usize, out: &mut String) {
        use std::fmt::Write as _;
        let name = if i == 0 {
            "main hash table"
        } else {
            "rehashing target"
        };
        if self.used == 0 {
            let _ = write!(
                out,
                "Hash table {i} stats ({name}):\nNo stats available for empty dictionaries\n"
            );
            return;
        }
        let (size, max_chain) = (self.size, self.max_chain);
        let avg = self.used as f32 / self.slots as f32;
        let _ = write!(
            out,
            "Hash table {i} stats ({name}):\n table size: {size}\n number of elements: {}\n different slots: {}\n max chain length: {max_chain}\n avg chain length (counted): {avg:.2}\n avg chain length (computed): {avg:.2}\n Chain length distribution:\n",
            self.used, self.slots
        );
        let counted = self.lengths.len().saturating_sub(1);
        for (len, &n) in self.lengths[..counted].iter().enumerate() {
            if n > 0 {
                let pct = n as f32 / size as f32 * 100.0;
                let _ = writeln!(out, "   {len}: {n} ({pct:.2}%)");
            }
        }
    }
}

/// Bucket count of a table's first bucket array.
pub const INITIAL_BUCKETS: usize = 4;
/// Non-empty buckets moved from the old to the new array by each mutating operation.
pub const REHASH_BUCKETS_PER_OP: usize = 1;
/// Empty buckets a rehash step may skip, per bucket it is allowed to move.
pub const REHASH_EMPTY_VISITS_PER_BUCKET: usize = 10;
/// Shrink when `len * SHRINK_LOAD_DIVISOR < buckets` (load factor below 1/8).
pub const SHRINK_LOAD_DIVISOR: usize = 8;
/// Largest number of entries one table holds (links are `u32`, `0` means none).
pub const MAX_ENTRIES: usize = u32::MAX as usize - 1;

/// Longest key stored inside its table entry; longer keys are boxed. 22 keeps [`Key`]
/// at 24 bytes, the size of a tag word plus a boxed slice.
pub const INLINE_KEY_MAX_BYTES: usize = 22;

/// log2 of the number of entries per arena chunk.
const CHUNK_SHIFT: u32 = 10;
/// Entries per arena chunk; a chunk is allocated once with this capacity and never grows.
const CHUNK_ENTRIES: usize = 1 << CHUNK_SHIFT;

/// log2 of [`SNAPSHOT_PAGE_ENTRIES`].
const PAGE_SHIFT: u32 = 4;
/// Entries per copy-on-write snapshot page: the unit a write copies when it lands on a
/// page the serializer has not reached yet. Small, so one write copies little.
pub const SNAPSHOT_PAGE_ENTRIES: usize = 1 << PAGE_SHIFT;

/// Link to an arena entry: `NIL`, or the entry's index plus one.
type Link = u32;
const NIL: Link = 0;

#[inline]
fn link_of(idx: usize) -> Link {
    debug_assert!(idx < MAX_ENTRIES);
    (idx + 1) as Link
}

/// A table's owned copy of a key: inline when at most [`INLINE_KEY_MAX_BYTES`] bytes,
/// else boxed. Dereferences to the key's bytes; equality is by bytes.
#[derive(Clone)]
pub struct Key(KeyRepr);

#[derive(Clone)]
enum KeyRepr {
    /// Invariant: `len <= INLINE_KEY_MAX_BYTES`.
    Inline {
        len: u8,
        buf: [u8; INLINE_KEY_MAX_BYTES],
    },
    Boxed(Box<[u8]>),
}

impl Key {
    #[must_use]
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            KeyRepr::Inline { len, buf } => &buf[..usize::from(*len)],
            KeyRepr::Boxed(b) => b,
        }
    }

    /// The key as a boxed slice (allocates when it was inline).
    #[must_use]
    pub fn into_boxed_slice(self) -> Box<[u8]> {
        match self.0 {
            KeyRepr::Inline { .. } => self.as_bytes().into(),
            KeyRepr::Boxed(b) => b,
        }
    }

    #[inline]
    fn inline(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > INLINE_KEY_MAX_BYTES {
            return None;
        }
        let mut buf = [0; INLINE_KEY_MAX_BYTES];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Key(KeyRepr::Inline {
            len: bytes.len() as u8,
            buf,
        }))
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for Key {
    #[inline]
    fn from(bytes: &[u8]) -> Self {
        Key::inline(bytes).unwrap_or_else(|| Key(KeyRepr::Boxed(bytes.into())))
    }
}

/// Keeps the allocation of a long key; a short one is copied inline and the box freed.
impl From<Box<[u8]>> for Key {
    fn from(bytes: Box<[u8]>) -> Self {
        Key::inline(&bytes).unwrap_or(Key(KeyRepr::Boxed(bytes)))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_bytes().escape_ascii().to_string())
    }
}

struct Node<V> {
    /// The low 32 bits of the key's hash (see the module documentation).
    hash: u32,
    next: Link,
    key: Key,
    value: V,
}

#[inline]
fn node<V>(chunks: &[Vec<Node<V>>], idx: usize) -> &Node<V> {
    &chunks[idx >> CHUNK_SHIFT][idx & (CHUNK_ENTRIES - 1)]
}

#[inline]
fn node_mut<V>(chunks: &mut [Vec<Node<V>>], idx: usize) -> &mut Node<V> {
    &mut chunks[idx >> CHUNK_SHIFT][idx & (CHUNK_ENTRIES - 1)]
}

/// A hash table from byte-string keys to `V`, with incremental rehashing and
/// Redis-compatible `SCAN` cursors.
pub struct Table<V> {
    seed: u64,
    chunks: Vec<Vec<Node<V>>>,
    len: usize,
    /// `ht[0]` is the live array; `ht[1]` is non-empty only while rehashing into it.
    ht: [Vec<Link>; 2],
    /// While rehashing: buckets of `ht[0]` below this index have been moved.
    rehash_idx: usize,
    /// The copy-on-write snapshot cut in progress, if any (see [`Table::begin_cut`]).
    cut: Option<Box<Cut<V>>>,
}

impl<V> Table<V> {
    /// An empty table hashing with `seed`. Allocates nothing until the first insert.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            chunks: Vec::new(),
            len: 0,
            ht: [Vec::new(), Vec::new()],
            rehash_idx: 0,
            cut: None,
        }
    }

    /// Bytes the table's own structure holds (entry arena chunks and bucket arrays), not
    /// counting boxed keys or what values point to (MEMORY STATS' hash table overhead).
    #[must_use]
    pub fn structure_bytes(&self) -> usize {
        let arena: usize = self.chunks.iter().map(Vec::capacity).sum();
        arena * mem::size_of::<Node<V>>()
            + (self.ht[0].capacity() + self.ht[1].capacity()) * mem::size_of::<Link>()
    }

    /// Bytes allocated for the table: its structure, boxed keys, and `value_heap` of each
    /// value (what the value points to outside the entry), for MEMORY USAGE.
    pub fn heap_bytes(&self, value_heap: impl Fn(&V) -> usize) -> usize {
        self.structure_bytes()
            + self
                .iter()
                .map(|(k, v)| {
                    let boxed = if k.len() > INLINE_KEY_MAX_BYTES {
                        k.len()
                    } else {
                        0
                    };
                    boxed + value_heap(v)
                })
                .sum::<usize>()
    }

    /// Bytes of one entry in the arena (MEMORY USAGE's per-key overhead).
    #[must_use]
    pub fn entry_bytes() -> usize {
        mem::size_of::<Node<V>>() + mem::size_of::<Link>()
    }

    /// Number of entries.
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

    /// True while entries are being moved from the old bucket array to the new one.
    #[must_use]
    #[inline]
    pub fn is_rehashing(&self) -> bool {
        !self.ht[1].is_empty()
    }

    /// Bucket counts of the live array and of the rehash target (0 when not rehashing).
    #[must_use]
    pub fn bucket_counts(&self) -> (usize, usize) {
        (self.ht[0].len(), self.ht[1].len())
    }

    /// DEBUG HTSTATS text of this table, as Redis's `dictGetStats`: the live bucket array,
    /// then the rehash target while rehashing.
    #[must_use]
    pub fn stats_text(&self) -> String {
        let mut out = String::new();
        for (i, a) in self.bucket_stats().iter().enumerate() {
            a.write_text(i, &mut out);
        }
        out
    }

    /// The chain statistics of the live bucket array, and of the rehash target while
    /// rehashing (Redis's `_dictGetStatsHt` counts).
    #[must_use]
    pub fn bucket_stats(&self) -> Vec<BucketStats> {
        let arrays = if self.is_rehashing() { 2 } else { 1 };
        self.ht[..arrays]
            .iter()
            .map(|heads| {
                let mut st = BucketStats {
                    size: heads.len(),
                    lengths: vec![0; STATS_CHAIN_LENGTHS],
                    ..BucketStats::default()
                };
                for &head in heads {
                    let mut chain = 0;
                    let mut link = head;
                    while link != NIL {
                        chain += 1;
                        link = node(&self.chunks, link as usize - 1).next;
                    }
                    st.lengths[chain.min(STATS_CHAIN_LENGTHS - 1)] += 1;
                    if chain > 0 {
                        st.slots += 1;
                        st.max_chain = st.max_chain.max(chain);
                        st.used += chain;
                    }
                }
                st
            })
            .collect()
    }

    /// The table's hash of `key`.
    #[must_use]
    #[inline]
    pub fn hash_key(&self, key: &[u8]) -> u64 {
        hash_bytes(self.seed, key)
    }

    /// Where a lookup of `hash` reads first: its bucket in the live array. For warming a
    /// batch of lookups: a caller that asks the CPU to load these lines for every key of a
    /// batch before looking any up waits for memory once per batch instead of twice per
    /// key (a table bigger than the cache misses on the bucket, then on the entry). `None`
    /// when the table is empty.
    #[must_use]
    #[inline]
    pub fn bucket_addr(&self, hash: u64) -> Option<*const u8> {
        let t0 = &self.ht[0];
        (!t0.is_empty()).then(|| (&raw const t0[hash as usize & (t0.len() - 1)]).cast())
    }

    /// Where a lookup of `hash` reads next, once its bucket is in the cache: the address
    /// and size of the bucket's first entry (which may straddle two cache lines). Reads
    /// the bucket. `None` when the bucket is empty.
    #[must_use]
    #[inline]
    pub fn first_entry_span(&self, hash: u64) -> Option<(*const u8, usize)> {
        let t0 = &self.ht[0];
        if t0.is_empty() {
            return None;
        }
        let link = t0[hash as usize & (t0.len() - 1)];
        (link != NIL).then(|| {
            let n = node(&self.chunks, link as usize - 1);
            ((&raw const *n).cast(), mem::size_of::<Node<V>>())
        })
    }

    #[inline]
    fn walk(&self, mut link: Link, key: &[u8], hash: u64) -> Option<usize> {
        while link != NIL {
            let idx = link as usize - 1;
            let n = node(&self.chunks, idx);
            if n.hash == hash as u32 && n.key.as_bytes() == key {
                return Some(idx);
            }
            link = n.next;
        }
        None
    }

    #[inline]
    fn find_hashed(&self, key: &[u8], hash: u64) -> Option<usize> {
        let t0 = &self.ht[0];
        if t0.is_empty() {
            return None;
        }
        let b0 = hash as usize & (t0.len() - 1);
        let rehashing = self.is_rehashing();
        if !(rehashing && b0 < self.rehash_idx)
            && let Some(idx) = self.walk(t0[b0], key, hash)
        {
            return Some(idx);
        }
        if rehashing {
            let t1 = &self.ht[1];
            return self.walk(t1[hash as usize & (t1.len() - 1)], key, hash);
        }
        None
    }

    /// Arena index of `key`, valid until the next removal. Does no rehash work.
    #[must_use]
    #[inline]
    pub fn index_of(&self, key: &[u8]) -> Option<usize> {
        self.find_hashed(key, self.hash_key(key))
    }

    /// As [`Table::index_of`], after doing one bounded rehash step (Redis's `dictFind`).
    #[inline]
    pub fn lookup_index(&mut self, key: &[u8]) -> Option<usize> {
        self.rehash_step();
        self.index_of(key)
    }

    #[must_use]
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.index_of(key).map(|idx| &node(&self.chunks, idx).value)
    }

    #[must_use]
    #[inline]
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        self.index_of(key).map(|idx| self.entry_at(idx))
    }

    #[must_use]
    #[inline]
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.index_of(key).is_some()
    }

    #[inline]
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let idx = self.lookup_index(key)?;
        self.touch(idx);
        Some(&mut node_mut(&mut self.chunks, idx).value)
    }

    /// Key and value of the entry at arena index `idx` (from `index_of`, `random_index`...).
    #[must_use]
    #[inline]
    pub fn entry_at(&self, idx: usize) -> (&[u8], &V) {
        assert!(
            idx < self.len,
            "entry index {idx} out of bounds ({})",
            self.len
        );
        let n = node(&self.chunks, idx);
        (n.key.as_bytes(), &n.value)
    }

    /// Mutable value of the entry at arena index `idx`.
    #[inline]
    pub fn value_at_mut(&mut self, idx: usize) -> &mut V {
        assert!(
            idx < self.len,
            "entry index {idx} out of bounds ({})",
            self.len
        );
        self.touch(idx);
        &mut node_mut(&mut self.chunks, idx).value
    }

    /// Mutable value of the entry at `idx` for changes a snapshot does not record (an
    /// access clock): does not count as a write to the entry's snapshot page, so reads
    /// stay free of page copies while a cut is in progress.
    #[inline]
    pub fn value_at_mut_unrecorded(&mut self, idx: usize) -> &mut V {
        assert!(
            idx < self.len,
            "entry index {idx} out of bounds ({})",
            self.len
        );
        &mut node_mut(&mut self.chunks, idx).value
    }

    /// One lookup that either finds `key` or says where it would go.
    pub fn entry<'a>(&'a mut self, key: &'a [u8]) -> Entry<'a, V> {
        self.rehash_step();
        let hash = self.hash_key(key);
        match self.find_hashed(key, hash) {
            Some(idx) => Entry::Occupied(OccupiedEntry { table: self, idx }),
            None => Entry::Vacant(VacantEntry {
                table: self,
                key,
                hash,
            }),
        }
    }

    /// Inserts or replaces. On replace, the existing key is kept (the new `key` is
    /// dropped) and the old value is returned. A short key is stored inline (see [`Key`]).
    pub fn insert(&mut self, key: Box<[u8]>, value: V) -> Option<V> {
        self.rehash_step();
        let hash = self.hash_key(&key);
        if let Some(idx) = self.find_hashed(&key, hash) {
            self.touch(idx);
            return Some(mem::replace(
                &mut node_mut(&mut self.chunks, idx).value,
                value,
            ));
        }
        self.push_new(key.into(), hash, value);
        None
    }

    /// The value for `key`, inserting `make()` first if absent. The bool is true when
    /// the value was inserted. The key is copied only on insert.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.rehash_step();
        let hash = self.hash_key(key);
        let (idx, inserted) = match self.find_hashed(key, hash) {
            Some(idx) => {
                self.touch(idx);
                (idx, false)
            }
            None => (self.push_new(key.into(), hash, make()), true),
        };
        (&mut node_mut(&mut self.chunks, idx).value, inserted)
    }

    /// Removes `key`, returning its owned key and value.
    pub fn remove(&mut self, key: &[u8]) -> Option<(Key, V)> {
        let idx = self.lookup_index(key)?;
        Some(self.remove_at(idx))
    }

    /// Removes the entry at arena index `idx`. The last entry moves into `idx`.
    pub fn remove_at(&mut self, idx: usize) -> (Key, V) {
        assert!(
            idx < self.len,
            "entry index {idx} out of bounds ({})",
            self.len
        );
        let last = self.len - 1;
        // Swap-remove changes two snapshot pages: the hole's and the last entry's.
        self.touch(idx);
        self.touch(last);
        let next = node(&self.chunks, idx).next;
        self.replace_link(idx, link_of(idx), next);
        if idx != last {
            self.replace_link(last, link_of(last), link_of(idx));
        }
        let last_node = self.chunks[last >> CHUNK_SHIFT]
            .pop()
            .expect("arena holds `len` entries");
        let removed = if idx == last {
            last_node
        } else {
            mem::replace(node_mut(&mut self.chunks, idx), last_node)
        };
        self.len -= 1;
        // Keep at most one empty chunk at the end, so insert/remove at a chunk boundary
        // does not allocate and free a chunk each time.
        while self.chunks.len() >= 2
            && self.chunks[self.chunks.len() - 1].is_empty()
            && self.chunks[self.chunks.len() - 2].is_empty()
        {
            self.chunks.pop();
        }
        self.shrink_if_needed();
        (removed.key, removed.value)
    }

    /// In the chain that holds entry `idx`, replace the link `target` (the link to `idx`
    /// itself, or to its successor... whatever currently points where `idx` is reached
    /// from) with `replacement`.
    fn replace_link(&mut self, idx: usize, target: Link, replacement: Link) {
        let hash = node(&self.chunks, idx).hash;
        let hash = u64::from(hash);
        let rehashing = self.is_rehashing();
        for t in 0..2 {
            if t == 1 && !rehashing {
                break;
            }
            let mask = self.ht[t].len() - 1;
            let b = hash as usize & mask;
            if t == 0 && rehashing && b < self.rehash_idx {
                continue;
            }
            if self.ht[t][b] == target {
                self.ht[t][b] = replacement;
                return;
            }
            let mut link = self.ht[t][b];
            while link != NIL {
                let n = node_mut(&mut self.chunks, link as usize - 1);
                if n.next == target {
                    n.next = replacement;
                    return;
                }
                link = n.next;
            }
        }
        panic!("table corrupted: entry {idx} is not reachable from its bucket");
    }

    fn push_new(&mut self, key: Key, hash: u64, value: V) -> usize {
        assert!(self.len < MAX_ENTRIES, "table full ({MAX_ENTRIES} entries)");
        self.expand_if_needed();
        let idx = self.len;
        self.touch(idx);
        let chunk = idx >> CHUNK_SHIFT;
        if chunk == self.chunks.len() {
            // The first chunk grows as it fills (a table nested in a value, such as a
            // set's members, is often small); later chunks are allocated whole.
            self.chunks.push(if chunk == 0 {
                Vec::new()
            } else {
                Vec::with_capacity(CHUNK_ENTRIES)
            });
        }
        let t = usize::from(self.is_rehashing());
        let table = &mut self.ht[t];
        let b = hash as usize & (table.len() - 1);
        let next = mem::replace(&mut table[b], link_of(idx));
        let c = &mut self.chunks[chunk];
        debug_assert!(c.len() == idx & (CHUNK_ENTRIES - 1) && c.len() < CHUNK_ENTRIES);
        c.push(Node {
            hash: hash as u32,
            next,
            key,
            value,
        });
        self.len += 1;
        idx
    }

    fn expand_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        if self.ht[0].is_empty() {
            self.ht[0] = vec![NIL; INITIAL_BUCKETS];
        } else if self.len >= self.ht[0].len() {
            self.start_resize((self.len + 1).next_power_of_two());
        }
    }

    fn shrink_if_needed(&mut self) {
        let buckets = self.ht[0].len();
        if !self.is_rehashing()
            && buckets > INITIAL_BUCKETS
            && self.len * SHRINK_LOAD_DIVISOR < buckets
        {
            self.start_resize(self.len.next_power_of_two().max(INITIAL_BUCKETS));
        }
    }

    fn start_resize(&mut self, buckets: usize) {
        debug_assert!(buckets.is_power_of_two() && !self.is_rehashing());
        // `vec![0; n]` is a zeroed allocation: the OS hands out zero pages lazily.
        self.ht[1] = vec![NIL; buckets];
        self.rehash_idx = 0;
    }

    /// One bounded unit of incremental rehash work (no-op when not rehashing).
    #[inline]
    pub fn rehash_step(&mut self) {
        if self.is_rehashing() {
            self.rehash(REHASH_BUCKETS_PER_OP);
        }
    }

    /// Moves up to `buckets` non-empty buckets to the new array; finishes the rehash
    /// when the old array is drained.
    pub fn rehash(&mut self, buckets: usize) {
        if !self.is_rehashing() {
            return;
        }
        let mut left = buckets;
        let mut empty_visits = buckets * REHASH_EMPTY_VISITS_PER_BUCKET;
        let [t0, t1] = &mut self.ht;
        let mask1 = t1.len() - 1;
        while left > 0 && self.rehash_idx < t0.len() {
            let mut link = mem::replace(&mut t0[self.rehash_idx], NIL);
            self.rehash_idx += 1;
            if link == NIL {
                empty_visits -= 1;
                if empty_visits == 0 {
                    break;
                }
                continue;
            }
            while link != NIL {
                let n = node_mut(&mut self.chunks, link as usize - 1);
                let next = n.next;
                let b = n.hash as usize & mask1;
                n.next = t1[b];
                t1[b] = link;
                link = next;
            }
            left -= 1;
        }
        if self.rehash_idx >= t0.len() {
            debug_assert!(t0.iter().all(|&l| l == NIL));
            self.ht[0] = mem::take(&mut self.ht[1]);
            self.rehash_idx = 0;
        }
    }

    /// Drops every entry and both bucket arrays. During a cut, the entries not yet
    /// serialized are kept (frozen) for the serializer instead of being copied.
    pub fn clear(&mut self) {
        if let Some(cut) = self.cut.as_mut()
            && !cut.live_is_new
        {
            cut.frozen = mem::take(&mut self.chunks);
            cut.frozen_len = self.len;
            cut.live_is_new = true;
        }
        self.chunks = Vec::new();
        self.ht = [Vec::new(), Vec::new()];
        self.len = 0;
        self.rehash_idx = 0;
    }

    /// All entries, in arena order (unspecified but stable until the next removal).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> + '_ {
        self.chunks
            .iter()
            .flatten()
            .map(|n| (n.key.as_bytes(), &n.value))
    }

    fn emit(&self, mut link: Link, f: &mut impl FnMut(&[u8], &V)) {
        while link != NIL {
            let n = node(&self.chunks, link as usize - 1);
            f(n.key.as_bytes(), &n.value);
            link = n.next;
        }
    }

    /// Redis `dictScan`: calls `f` for the entries of the bucket(s) at `cursor` and
    /// returns the next cursor; `0` starts and ends a full scan.
    ///
    /// Guarantee (as Redis): every entry present for the whole scan is returned at least
    /// once, whatever grows, shrinks and rehashes happen between calls; entries may be
    /// returned more than once. The cursor is incremented in reversed-bit order over the
    /// bucket mask, so buckets already visited stay visited across resizes.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let mut v = cursor;
        if self.is_rehashing() {
            let (small, large) = if self.ht[0].len() <= self.ht[1].len() {
                (&self.ht[0], &self.ht[1])
            } else {
                (&self.ht[1], &self.ht[0])
            };
            let m0 = (small.len() - 1) as u64;
            let m1 = (large.len() - 1) as u64;
            self.emit(small[(v & m0) as usize], &mut f);
            // Visit every bucket of the larger array that expands the small one's bucket.
            loop {
                self.emit(large[(v & m1) as usize], &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        } else {
            let t0 = &self.ht[0];
            let m0 = (t0.len() - 1) as u64;
            self.emit(t0[(v & m0) as usize], &mut f);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        }
        v
    }

    /// A uniformly random arena index, or `None` when empty.
    #[must_use]
    #[inline]
    pub fn random_index(&self, rng: &mut u64) -> Option<usize> {
        (self.len > 0).then(|| random_below(rng, self.len))
    }

    /// A uniformly random entry (RANDOMKEY).
    #[must_use]
    pub fn random_entry(&self, rng: &mut u64) -> Option<(&[u8], &V)> {
        self.random_index(rng).map(|idx| self.entry_at(idx))
    }

    /// Calls `f` on up to `n` random entries: all of them when `len <= n`, otherwise `n`
    /// independent uniform picks (repeats possible, as Redis's `dictGetSomeKeys`).
    /// Returns the number of calls made.
    pub fn sample(&self, rng: &mut u64, n: usize, mut f: impl FnMut(&[u8], &V)) -> usize {
        if self.len <= n {
            for (k, v) in self.iter() {
                f(k, v);
            }
            return self.len;
        }
        for _ in 0..n {
            let (k, v) = self.entry_at(random_below(rng, self.len));
            f(k, v);
        }
        n
    }

    /// Checks every structural invariant; for tests (O(n)).
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut seen = vec![false; self.len];
        for (t, table) in self.ht.iter().enumerate() {
            for (b, &head) in table.iter().enumerate() {
                let mut link = head;
                while link != NIL {
                    let idx = link as usize - 1;
                    assert!(idx < self.len);
                    assert!(!seen[idx], "entry {idx} linked twice");
                    seen[idx] = true;
                    let n = node(&self.chunks, idx);
                    assert_eq!(n.hash as usize & (table.len() - 1), b);
                    assert_eq!(n.hash, self.hash_key(&n.key) as u32);
                    if t == 0 && self.is_rehashing() {
                        assert!(b >= self.rehash_idx);
                    }
                    link = n.next;
                }
            }
        }
        assert!(seen.iter().all(|&s| s), "unreachable entry");
        assert_eq!(self.chunks.iter().map(Vec::len).sum::<usize>(), self.len);
    }
}

// Values holding a table (sets, sorted sets) are cloned by COPY and by a snapshot
// cut's page copies: a clone is a fresh table with the same entries (no cut).
impl<V: Clone> Clone for Table<V> {
    fn clone(&self) -> Self {
        let mut t = Table::new(self.seed);
        for n in self.chunks.iter().flatten() {
            t.push_new(n.key.clone(), u64::from(n.hash), n.value.clone());
        }
        t
    }
}

/// A view into one key's slot, from [`Table::entry`].
pub enum Entry<'a, V> {
    Occupied(OccupiedEntry<'a, V>),
    Vacant(VacantEntry<'a, V>),
}

/// Counters of one table's cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutStats {
    /// Pages copied because a write reached them before the serializer did.
    pub pages_copied: u64,
    /// Entries in those pages.
    pub entries_copied: u64,
    /// Entries handed to the serializer so far.
    pub entries_emitted: u64,
    /// Most copied entries waiting for the serializer at one time.
    pub pending_peak: u64,
    /// Large values handed out frozen (see [`crate::frozen`]), by writes or by the walk.
    pub values_frozen: u64,
}

impl std::ops::AddAssign for CutStats {
    fn add_assign(&mut self, o: Self) {
        self.pages_copied += o.pages_copied;
        self.entries_copied += o.entries_copied;
        self.entries_emitted += o.entries_emitted;
        self.pending_peak += o.pending_peak;
        self.values_frozen += o.values_frozen;
    }
}

/// A copy-on-write snapshot cut of one table (see [`Table::begin_cut`]).
struct Cut<V> {
    /// Pages that held entries when the cut began; pages past them started empty.
    pages: usize,
    /// One bit per page below `pages`: already serialized or copied.
    done: Vec<u64>,
    /// Next page the serializer walks.
    cursor: usize,
    /// Entries of pages copied on their first write, waiting for the serializer.
    copied: Vec<(Key, Copied<V>)>,
    /// `V::clone`, captured where `V: Clone` is known.
    copy: fn(&V) -> V,
    /// A frozen copy of a large value (see [`crate::frozen`]) instead of a clone, and for
    /// the serializer instead of the live value; `None` for any other value.
    freeze: fn(&mut V) -> Option<FrozenEntry>,
    /// After a `clear` during the cut: the old arena, whose unserialized pages the
    /// serializer still walks; the live arena then holds only post-cut entries.
    frozen: Vec<Vec<Node<V>>>,
    frozen_len: usize,
    live_is_new: bool,
    stats: CutStats,
}

impl<V> Cut<V> {
    #[inline]
    fn is_done(&self, page: usize) -> bool {
        self.done[page >> 6] & (1 << (page & 63)) != 0
    }

    #[inline]
    fn set_done(&mut self, page: usize) {
        self.done[page >> 6] |= 1 << (page & 63);
    }
}

/// A copied entry waiting for the serializer.
enum Copied<V> {
    Whole(V),
    Frozen(FrozenEntry),
}

/// An entry of a cut as the serializer gets it: the value at the cut, or a large value's
/// frozen copy (see [`crate::frozen`]).
#[derive(Debug)]
pub enum CutEntry<'a, V> {
    Value(&'a V),
    Frozen(FrozenEntry),
}

fn never_freeze<V>(_: &mut V) -> Option<FrozenEntry> {
    None
}

/// Calls `f` for the entries of arena page `page` (clipped to `len` entries), large ones
/// frozen by `freeze`.
fn emit_page<V>(
    chunks: &mut [Vec<Node<V>>],
    len: usize,
    page: usize,
    freeze: fn(&mut V) -> Option<FrozenEntry>,
    f: &mut impl FnMut(&[u8], CutEntry<'_, V>),
) -> usize {
    let start = page << PAGE_SHIFT;
    let end = (start + SNAPSHOT_PAGE_ENTRIES).min(len);
    for i in start..end {
        let n = node_mut(chunks, i);
        match freeze(&mut n.value) {
            Some(fz) => f(n.key.as_bytes(), CutEntry::Frozen(fz)),
            None => f(n.key.as_bytes(), CutEntry::Value(&n.value)),
        }
    }
    end.saturating_sub(start)
}

/// Copy-on-write snapshot cuts.
///
/// [`Table::begin_cut`] fixes the table's content at that instant without copying it.
/// The arena is split into pages of [`SNAPSHOT_PAGE_ENTRIES`] entries, each with a
/// "done" bit. [`Table::cut_step`] walks the pages in order and hands their entries to
/// the serializer; any change to a page that is not done yet (a value written in
/// place, an insert into it, or either side of a swap-remove) first copies the page's
/// entries aside and marks it done, so the serializer sees every page as it was at the
/// cut. Rehashing and resizing move only bucket links, never entries, so they touch no
/// page; `clear` freezes the old arena for the serializer instead of copying it. Each
/// entry present at the cut is emitted exactly once; entries added later never are.
impl<V> Table<V> {
    /// Starts a cut of the current content. Replaces any cut in progress.
    pub fn begin_cut(&mut self)
    where
        V: Clone,
    {
        self.begin_cut_freezing(never_freeze);
    }

    /// As [`Table::begin_cut`], with large values frozen by `freeze` (see
    /// [`crate::frozen`]) rather than cloned when written, and handed to the serializer
    /// frozen.
    pub fn begin_cut_freezing(&mut self, freeze: fn(&mut V) -> Option<FrozenEntry>)
    where
        V: Clone,
    {
        let pages = self.len.div_ceil(SNAPSHOT_PAGE_ENTRIES);
        self.cut = Some(Box::new(Cut {
            pages,
            done: vec![0; pages.div_ceil(64)],
            cursor: 0,
            copied: Vec::new(),
            copy: V::clone,
            freeze,
            frozen: Vec::new(),
            frozen_len: 0,
            live_is_new: false,
            stats: CutStats::default(),
        }));
    }

    /// True while a cut is in progress.
    #[must_use]
    #[inline]
    pub fn has_cut(&self) -> bool {
        self.cut.is_some()
    }

    /// Counters of the cut in progress.
    #[must_use]
    pub fn cut_stats(&self) -> Option<CutStats> {
        self.cut.as_ref().map(|c| c.stats)
    }

    /// Ends (or abandons) the cut, releasing its copies and frozen entries.
    pub fn end_cut(&mut self) -> Option<CutStats> {
        self.cut.take().map(|c| c.stats)
    }

    /// Hands up to about `budget` entries of the cut to `f`: copied pages first, then
    /// the next pages in arena order. Returns true when every entry of the cut has been
    /// handed out (or no cut is in progress). Skipped pages count one unit of budget.
    pub fn cut_step(&mut self, budget: usize, mut f: impl FnMut(&[u8], CutEntry<'_, V>)) -> bool {
        let mut spent = self.cut_step_copies(budget, &mut f);
        let Some(cut) = self.cut.as_deref_mut() else {
            return true;
        };
        while spent < budget && cut.cursor < cut.pages {
            let page = cut.cursor;
            cut.cursor += 1;
            spent += 1;
            if cut.is_done(page) {
                continue;
            }
            cut.set_done(page);
            let frozen = &mut cut.stats.values_frozen;
            let mut f = |k: &[u8], e: CutEntry<'_, V>| {
                if let CutEntry::Frozen(_) = e {
                    *frozen += 1;
                }
                f(k, e);
            };
            let n = if cut.live_is_new {
                emit_page(&mut cut.frozen, cut.frozen_len, page, cut.freeze, &mut f)
            } else {
                emit_page(&mut self.chunks, self.len, page, cut.freeze, &mut f)
            };
            spent += n;
            cut.stats.entries_emitted += n as u64;
        }
        if cut.cursor >= cut.pages && !cut.frozen.is_empty() {
            cut.frozen = Vec::new();
        }
        cut.copied.is_empty() && cut.cursor >= cut.pages
    }

    /// Hands up to `budget` of the entries copied aside by writes to `f` (the first part
    /// of [`Table::cut_step`]); returns how many.
    pub fn cut_step_copies(
        &mut self,
        budget: usize,
        mut f: impl FnMut(&[u8], CutEntry<'_, V>),
    ) -> usize {
        let Some(cut) = self.cut.as_deref_mut() else {
            return 0;
        };
        let mut spent = 0;
        while spent < budget {
            let Some((k, v)) = cut.copied.pop() else {
                break;
            };
            match v {
                Copied::Whole(v) => f(&k, CutEntry::Value(&v)),
                Copied::Frozen(fz) => f(&k, CutEntry::Frozen(fz)),
            }
            spent += 1;
            cut.stats.entries_emitted += 1;
        }
        if cut.copied.is_empty() && cut.copied.capacity() > SNAPSHOT_PAGE_ENTRIES * 64 {
            cut.copied = Vec::new();
        }
        spent
    }

    /// Entries copied by writes and not yet handed to the serializer.
    #[must_use]
    pub fn cut_pending_copies(&self) -> usize {
        self.cut.as_ref().map_or(0, |c| c.copied.len())
    }

    /// Called before any change to the entry at arena index `idx` (or to the slot `idx`
    /// an insert fills): copies its page aside if the cut still needs it (large values
    /// frozen rather than cloned).
    #[inline]
    fn touch(&mut self, idx: usize) {
        let Some(cut) = self.cut.as_deref_mut() else {
            return;
        };
        let page = idx >> PAGE_SHIFT;
        if cut.live_is_new || page >= cut.pages || cut.is_done(page) {
            return;
        }
        cut.set_done(page);
        let copy = cut.copy;
        let copied = &mut cut.copied;
        let frozen = &mut cut.stats.values_frozen;
        let n = emit_page(&mut self.chunks, self.len, page, cut.freeze, &mut |k, v| {
            let v = match v {
                CutEntry::Value(v) => Copied::Whole(copy(v)),
                CutEntry::Frozen(fz) => {
                    *frozen += 1;
                    Copied::Frozen(fz)
                }
            };
            copied.push((Key::from(k), v));
        });
        cut.stats.pages_copied += 1;
        cut.stats.entries_copied += n as u64;
        cut.stats.pending_peak = cut.stats.pending_peak.max(cut.copied.len() as u64);
    }
}

/// The key is present.
pub struct OccupiedEntry<'a, V> {
    table: &'a mut Table<V>,
    idx: usize,
}

impl<'a, V> OccupiedEntry<'a, V> {
    /// Arena index of the entry (valid until the next removal).
    #[must_use]
    pub fn index(&self) -> usize {
        self.idx
    }
    #[must_use]
    pub fn key(&self) -> &[u8] {
        node(&self.table.chunks, self.idx).key.as_bytes()
    }
    #[must_use]
    pub fn get(&self) -> &V {
        &node(&self.table.chunks, self.idx).value
    }
    pub fn get_mut(&mut self) -> &mut V {
        self.table.touch(self.idx);
        &mut node_mut(&mut self.table.chunks, self.idx).value
    }
    #[must_use]
    pub fn into_mut(self) -> &'a mut V {
        self.table.touch(self.idx);
        &mut node_mut(&mut self.table.chunks, self.idx).value
    }
    /// Replaces the value, keeping the key, and returns the old value.
    pub fn insert(&mut self, value: V) -> V {
        mem::replace(self.get_mut(), value)
    }
    pub fn remove(self) -> (Key, V) {
        self.table.remove_at(self.idx)
    }
}

/// The key is absent.
pub struct VacantEntry<'a, V> {
    table: &'a mut Table<V>,
    key: &'a [u8],
    hash: u64,
}

impl<'a, V> VacantEntry<'a, V> {
    #[must_use]
    pub fn key(&self) -> &[u8] {
        self.key
    }
    /// Inserts with a copy of the looked-up key.
    pub fn insert(self, value: V) -> &'a mut V {
        let idx = self.table.push_new(self.key.into(), self.hash, value);
        &mut node_mut(&mut self.table.chunks, idx).value
    }
    /// Inserts with an already owned key, which must equal the looked-up key (a long
    /// key's allocation is kept).
    pub fn insert_with_key(self, key: Box<[u8]>, value: V) -> &'a mut V {
        assert!(
            *key == *self.key,
            "vacant entry filled with a different key"
        );
        let idx = self.table.push_new(key.into(), self.hash, value);
        &mut node_mut(&mut self.table.chunks, idx).value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    /// Mostly short (inline) keys, every third one too long to inline.
    fn key(i: u32) -> Box<[u8]> {
        if i.is_multiple_of(3) {
            format!("key:{i}:{}", "x".repeat(INLINE_KEY_MAX_BYTES))
        } else {
            format!("key:{i}")
        }
        .into_bytes()
        .into_boxed_slice()
    }

    #[test]
    fn short_keys_inline_long_keys_boxed() {
        assert_eq!(mem::size_of::<Key>(), 24);
        // A set member's entry: the 32-bit hash, the link, the key.
        assert_eq!(mem::size_of::<Node<()>>(), 32);
        let mut t = Table::new(2);
        for len in [0, 1, INLINE_KEY_MAX_BYTES, INLINE_KEY_MAX_BYTES + 1, 100] {
            let k = vec![b'k'; len];
            assert_eq!(t.insert(k.clone().into_boxed_slice(), len), None);
            let inline = matches!(Key::from(&k[..]).0, KeyRepr::Inline { .. });
            assert_eq!(inline, len <= INLINE_KEY_MAX_BYTES);
            assert_eq!(Key::from(k.clone().into_boxed_slice()), Key::from(&k[..]));
        }
        for len in [0, 1, INLINE_KEY_MAX_BYTES, INLINE_KEY_MAX_BYTES + 1, 100] {
            let k = vec![b'k'; len];
            assert_eq!(t.get_key_value(&k), Some((&k[..], &len)));
            let (owned, v) = t.remove(&k).unwrap();
            assert_eq!((&*owned, v), (&k[..], len));
            assert_eq!(&*owned.into_boxed_slice(), &k[..]);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut t = Table::new(1);
        assert_eq!(t.get(b"a"), None);
        assert_eq!(t.insert(b"a"[..].into(), 1), None);
        assert_eq!(t.insert(b"b"[..].into(), 2), None);
        assert_eq!(t.insert(b"a"[..].into(), 3), Some(1));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(b"a"), Some(&3));
        assert_eq!(t.get_key_value(b"b"), Some((&b"b"[..], &2)));
        *t.get_mut(b"b").unwrap() += 10;
        assert_eq!(t.get(b"b"), Some(&12));
        assert_eq!(t.remove(b"a"), Some((b"a"[..].into(), 3)));
        assert_eq!(t.remove(b"a"), None);
        assert_eq!(t.len(), 1);
        t.check_invariants();
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.get(b"b"), None);
        assert_eq!(t.insert(b""[..].into(), 9), None);
        assert_eq!(t.get(b""), Some(&9));
    }

    #[test]
    fn replace_keeps_existing_key_allocation() {
        let mut t = Table::new(1);
        for i in [1, 3] {
            t.insert(key(i), 1);
            let before = t.get_key_value(&key(i)).unwrap().0.as_ptr();
            t.insert(key(i), 2);
            assert_eq!(t.get_key_value(&key(i)).unwrap().0.as_ptr(), before);
        }
    }

    #[test]
    fn entry_and_get_or_insert_with() {
        let mut t: Table<u32> = Table::new(5);
        let (v, inserted) = t.get_or_insert_with(b"x", || 7);
        assert!(inserted);
        *v += 1;
        let (v, inserted) = t.get_or_insert_with(b"x", || unreachable!());
        assert!(!inserted);
        assert_eq!(*v, 8);
        match t.entry(b"x") {
            Entry::Occupied(mut o) => {
                assert_eq!(o.key(), b"x");
                assert_eq!(o.insert(1), 8);
            }
            Entry::Vacant(_) => panic!("x is present"),
        }
        match t.entry(b"y") {
            Entry::Vacant(v) => {
                v.insert_with_key(b"y"[..].into(), 2);
            }
            Entry::Occupied(_) => panic!("y is absent"),
        }
        match t.entry(b"x") {
            Entry::Occupied(o) => assert_eq!(o.remove(), (b"x"[..].into(), 1)),
            Entry::Vacant(_) => panic!("x is present"),
        }
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(b"y"), Some(&2));
    }

    #[test]
    fn grows_and_shrinks_incrementally() {
        let mut t = Table::new(9);
        let mut saw_rehash = false;
        for i in 0..10_000 {
            t.insert(key(i), i);
            saw_rehash |= t.is_rehashing();
            if i % 997 == 0 {
                t.check_invariants();
            }
            // Load never runs far past 1 (the live array plus the rehash target).
            let (b0, b1) = t.bucket_counts();
            assert!(t.len() <= 2 * b0.max(b1));
        }
        assert!(saw_rehash);
        for i in 0..10_000 {
            assert_eq!(t.get(&key(i)), Some(&i), "key {i}");
        }
        let (b0, b1) = t.bucket_counts();
        assert!(b0.max(b1) >= 8192);
        for i in 0..9_990 {
            assert_eq!(t.remove(&key(i)).map(|(_, v)| v), Some(i));
            if i % 997 == 0 {
                t.check_invariants();
            }
        }
        // Shrinks, like grows, start only from a mutation after the previous rehash ended.
        for round in 0..2 {
            while t.is_rehashing() {
                t.rehash_step();
            }
            let (k, v) = t.remove(&key(9_990 + round)).unwrap();
            t.insert(k.into_boxed_slice(), v);
        }
        while t.is_rehashing() {
            t.rehash_step();
        }
        t.check_invariants();
        let (b0, b1) = t.bucket_counts();
        assert!(b0 <= 64 && b1 == 0, "shrunk to {b0}/{b1}");
        for i in 9_990..10_000 {
            assert_eq!(t.get(&key(i)), Some(&i));
        }
    }

    #[test]
    fn rehash_step_is_bounded() {
        let mut t = Table::new(3);
        for i in 0..4096 {
            t.insert(key(i), i);
        }
        // Force a fresh resize and watch how much each step moves.
        while t.is_rehashing() {
            t.rehash_step();
        }
        t.insert(key(5000), 0);
        assert!(t.is_rehashing());
        let mut steps = 0;
        while t.is_rehashing() {
            let before = t.rehash_idx;
            t.rehash_step();
            if t.is_rehashing() {
                assert!(
                    t.rehash_idx - before
                        <= REHASH_BUCKETS_PER_OP * (REHASH_EMPTY_VISITS_PER_BUCKET + 1)
                );
            }
            steps += 1;
        }
        assert!(steps >= 4096 / (REHASH_EMPTY_VISITS_PER_BUCKET + 1));
        t.check_invariants();
    }

    #[test]
    fn iter_scan_and_sampling_cover_everything() {
        let mut t = Table::new(11);
        for i in 0..1000 {
            t.insert(key(i), i);
        }
        let all: HashSet<u32> = t.iter().map(|(_, &v)| v).collect();
        assert_eq!(all.len(), 1000);
        let mut scanned = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = t.scan(cursor, |_, &v| {
                scanned.insert(v);
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(scanned, all);
        let mut rng = 1;
        let mut sampled = HashSet::new();
        for _ in 0..50 {
            assert_eq!(
                t.sample(&mut rng, 20, |_, &v| {
                    sampled.insert(v);
                }),
                20
            );
        }
        assert!(
            sampled.len() > 600,
            "1000 picks should hit most of 1000 keys: {}",
            sampled.len()
        );
        let small: Table<u8> = {
            let mut s = Table::new(1);
            s.insert(b"only"[..].into(), 1);
            s
        };
        assert_eq!(small.random_entry(&mut rng), Some((&b"only"[..], &1)));
        let mut n = 0;
        assert_eq!(small.sample(&mut rng, 20, |_, _| n += 1), 1);
        assert_eq!(n, 1);
        assert_eq!(Table::<u8>::new(1).random_entry(&mut rng), None);
        assert_eq!(Table::<u8>::new(1).scan(0, |_, _| {}), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
        Scan,
    }

    #[derive(Clone, Debug)]
    enum CutOp {
        Insert(u32, u32),
        Remove(u32),
        Bump(u32),
    }

    fn cut_op() -> impl Strategy<Value = CutOp> {
        prop_oneof![
            4 => (0u32..300, any::<u32>()).prop_map(|(k, v)| CutOp::Insert(k, v)),
            3 => (0u32..300).prop_map(CutOp::Remove),
            2 => (0u32..300).prop_map(CutOp::Bump),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u16>().prop_map(|k| Op::Insert(k % 2048)),
            4 => any::<u16>().prop_map(|k| Op::Remove(k % 2048)),
            1 => Just(Op::Scan),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Redis's SCAN guarantee under arbitrary growth and shrinkage between calls.
        #[test]
        fn scan_returns_every_key_present_throughout(
            initial in 0u16..1500,
            ops in proptest::collection::vec(op(), 0..3000),
            seed in any::<u64>(),
        ) {
            let mut t = Table::new(seed);
            let mut model = HashSet::new();
            for i in 0..initial {
                let k = key(u32::from(i));
                t.insert(k.clone(), ());
                model.insert(k);
            }
            // Keys present at the start and never removed must all be seen.
            let mut stable: HashSet<Box<[u8]>> = model.clone();
            let mut seen = HashSet::new();
            let mut cursor = t.scan(0, |k, ()| { seen.insert(Box::<[u8]>::from(k)); });
            let mut ops = ops.into_iter();
            while cursor != 0 {
                // A few mutations between scan calls.
                for op in ops.by_ref().take(7) {
                    match op {
                        Op::Insert(k) => {
                            let k = key(u32::from(k));
                            t.insert(k.clone(), ());
                            model.insert(k);
                        }
                        Op::Remove(k) => {
                            let k = key(u32::from(k));
                            prop_assert_eq!(t.remove(&k).is_some(), model.remove(&k));
                            stable.remove(&k);
                        }
                        Op::Scan => {}
                    }
                }
                cursor = t.scan(cursor, |k, ()| { seen.insert(Box::<[u8]>::from(k)); });
            }
            for k in &stable {
                prop_assert!(seen.contains(k), "missed {:?}", String::from_utf8_lossy(k));
            }
            for k in &seen {
                prop_assert!(model.contains(k) || !stable.contains(k));
            }
            prop_assert_eq!(t.len(), model.len());
            t.check_invariants();
        }

        #[test]
        fn cut_emits_exactly_the_content_at_the_cut(
            before in proptest::collection::vec(cut_op(), 0..600),
            during in proptest::collection::vec((cut_op(), 0usize..40), 0..1500),
            clear_at in proptest::option::of(0usize..1500),
            seed in any::<u64>(),
        ) {
            use std::collections::HashMap;
            let mut t = Table::new(seed);
            let apply = |t: &mut Table<u32>, op: &CutOp| match *op {
                CutOp::Insert(k, v) => {
                    t.insert(key(k), v);
                }
                CutOp::Remove(k) => {
                    t.remove(&key(k));
                }
                CutOp::Bump(k) => {
                    if let Some(v) = t.get_mut(&key(k)) {
                        *v = v.wrapping_add(1);
                    }
                }
            };
            for op in &before {
                apply(&mut t, op);
            }
            let expected: HashMap<Vec<u8>, u32> =
                t.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
            t.begin_cut();
            let mut got: HashMap<Vec<u8>, u32> = HashMap::new();
            let mut collect = |k: &[u8], v: CutEntry<'_, u32>| {
                let CutEntry::Value(v) = v else {
                    panic!("nothing is frozen in a table of numbers");
                };
                let dup = got.insert(k.to_vec(), *v);
                assert!(dup.is_none(), "entry emitted twice");
            };
            for (i, (op, step)) in during.iter().enumerate() {
                apply(&mut t, op);
                if clear_at == Some(i) {
                    t.clear();
                }
                t.cut_step(*step, &mut collect);
            }
            while !t.cut_step(7, &mut collect) {}
            prop_assert!(t.end_cut().is_some());
            prop_assert_eq!(got, expected);
            t.check_invariants();
        }

        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 0..2000), seed in any::<u64>()) {
            let mut t = Table::new(seed);
            let mut model = BTreeMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(k) => prop_assert_eq!(t.insert(key(u32::from(k)), n), model.insert(key(u32::from(k)), n)),
                    Op::Remove(k) => prop_assert_eq!(
                        t.remove(&key(u32::from(k))).map(|(_, v)| v),
                        model.remove(&key(u32::from(k)))
                    ),
                    Op::Scan => t.check_invariants(),
                }
            }
            prop_assert_eq!(t.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(t.get(k), Some(v));
            }
            t.check_invariants();
        }
    }
}
