//! Per-slot bookkeeping of one database in cluster mode: how many keys (and keys with a
//! TTL) each of the [`SLOTS`] hash slots holds, and the keys of each slot as an intrusive
//! doubly linked list through the database's entry arena, so CLUSTER COUNTKEYSINSLOT is
//! one read and GETKEYSINSLOT walks only the slot's own keys (as Valkey's per-slot
//! `kvstore`), never the keyspace.
//!
//! The lists are keyed by the arena index of [`Table`](crate::table::Table): an insert
//! appends at index `len`, a removal moves the last entry into the hole (swap-remove).
//! The owning [`Db`](crate::db::Db) reports both, so an index costs 8 bytes per key plus
//! 192 KiB of per-slot heads and counters, and nothing at all when cluster mode is off
//! (the database then has no index).

use crate::slot::SLOTS;

/// `0` ends a list; `i + 1` links arena entry `i`.
type Link = u32;
const NIL: Link = 0;

fn link_of(idx: usize) -> Link {
    Link::try_from(idx + 1).expect("arena index fits a link")
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Links {
    prev: Link,
    next: Link,
}

/// Keys per slot, keys with a TTL per slot, and each slot's keys.
#[derive(Clone, Debug)]
pub struct SlotIndex {
    keys: Box<[u32]>,
    expires: Box<[u32]>,
    heads: Box<[Link]>,
    /// Per arena entry: its neighbours in its slot's list.
    links: Vec<Links>,
}

/// One slot's counts, as the `slot-info` RDB aux field reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotCounts {
    pub slot: u16,
    pub keys: u32,
    pub expires: u32,
}

impl Default for SlotIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotIndex {
    #[must_use]
    pub fn new() -> Self {
        let n = usize::from(SLOTS);
        Self {
            keys: vec![0; n].into_boxed_slice(),
            expires: vec![0; n].into_boxed_slice(),
            heads: vec![NIL; n].into_boxed_slice(),
            links: Vec::new(),
        }
    }

    /// Entries indexed (the arena length of the owning table).
    #[must_use]
    pub fn len(&self) -> usize {
        self.links.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Keys in `slot`.
    #[must_use]
    #[inline]
    pub fn keys_in(&self, slot: u16) -> usize {
        self.keys[usize::from(slot)] as usize
    }

    /// Keys with a TTL in `slot`.
    #[must_use]
    #[inline]
    pub fn expires_in(&self, slot: u16) -> usize {
        self.expires[usize::from(slot)] as usize
    }

    /// The non-empty slots in order, with their counts.
    pub fn non_empty(&self) -> impl Iterator<Item = SlotCounts> + '_ {
        (0..SLOTS)
            .filter(|&s| self.keys[usize::from(s)] > 0)
            .map(|s| SlotCounts {
                slot: s,
                keys: self.keys[usize::from(s)],
                expires: self.expires[usize::from(s)],
            })
    }

    /// Arena indices of the keys in `slot`, most recently inserted first.
    pub fn entries(&self, slot: u16) -> impl Iterator<Item = usize> + '_ {
        let mut link = self.heads[usize::from(slot)];
        std::iter::from_fn(move || {
            if link == NIL {
                return None;
            }
            let idx = link as usize - 1;
            link = self.links[idx].next;
            Some(idx)
        })
    }

    /// A key was appended to the arena at `idx` (which must be the arena's new last
    /// entry) in `slot`, with a TTL or not.
    #[inline]
    pub fn inserted(&mut self, idx: usize, slot: u16, has_ttl: bool) {
        assert_eq!(
            idx,
            self.links.len(),
            "slot index out of step with the arena"
        );
        let s = usize::from(slot);
        let head = self.heads[s];
        self.links.push(Links {
            prev: NIL,
            next: head,
        });
        if head != NIL {
            self.links[head as usize - 1].prev = link_of(idx);
        }
        self.heads[s] = link_of(idx);
        self.keys[s] += 1;
        self.expires[s] += u32::from(has_ttl);
    }

    /// The key at `idx` in `slot` was removed by swap-remove: the arena's last entry (at
    /// `last` before the removal) now sits at `idx` unless `idx == last`. `moved_slot`
    /// gives that entry's slot; it is called only when the moved entry heads its list.
    #[inline]
    pub fn removed(
        &mut self,
        idx: usize,
        slot: u16,
        had_ttl: bool,
        moved_slot: impl FnOnce() -> u16,
    ) {
        let last = self.links.len() - 1;
        assert!(idx <= last, "slot index out of step with the arena");
        let s = usize::from(slot);
        self.unlink(idx, s);
        self.keys[s] -= 1;
        self.expires[s] -= u32::from(had_ttl);
        if idx != last {
            let moved = self.links[last];
            self.links[idx] = moved;
            if moved.prev == NIL {
                let ms = usize::from(moved_slot());
                debug_assert_eq!(self.heads[ms], link_of(last));
                self.heads[ms] = link_of(idx);
            } else {
                self.links[moved.prev as usize - 1].next = link_of(idx);
            }
            if moved.next != NIL {
                self.links[moved.next as usize - 1].prev = link_of(idx);
            }
        }
        self.links.pop();
    }

    fn unlink(&mut self, idx: usize, s: usize) {
        let Links { prev, next } = self.links[idx];
        if prev == NIL {
            debug_assert_eq!(self.heads[s], link_of(idx));
            self.heads[s] = next;
        } else {
            self.links[prev as usize - 1].next = next;
        }
        if next != NIL {
            self.links[next as usize - 1].prev = prev;
        }
    }

    /// A key of `slot` gained (`true`) or lost (`false`) its TTL.
    #[inline]
    pub fn ttl_changed(&mut self, slot: u16, has_ttl: bool) {
        let s = usize::from(slot);
        if has_ttl {
            self.expires[s] += 1;
        } else {
            self.expires[s] -= 1;
        }
    }

    /// Every key is gone (FLUSHDB).
    pub fn clear(&mut self) {
        self.keys.fill(0);
        self.expires.fill(0);
        self.heads.fill(NIL);
        self.links = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A model arena: entry `i` is in slot `slots[i]`.
    fn check(ix: &SlotIndex, slots: &[u16], ttl: &[bool]) {
        assert_eq!(ix.len(), slots.len());
        for s in 0..SLOTS {
            let mut want: Vec<usize> = (0..slots.len()).filter(|&i| slots[i] == s).collect();
            let mut got: Vec<usize> = ix.entries(s).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "slot {s}");
            assert_eq!(ix.keys_in(s), want.len());
            assert_eq!(ix.expires_in(s), want.iter().filter(|&&i| ttl[i]).count());
        }
    }

    fn remove(ix: &mut SlotIndex, slots: &mut Vec<u16>, ttl: &mut Vec<bool>, idx: usize) {
        let slot = slots[idx];
        let had = ttl[idx];
        slots.swap_remove(idx);
        ttl.swap_remove(idx);
        let moved = slots.get(idx).copied();
        ix.removed(idx, slot, had, || moved.expect("moved entry exists"));
    }

    #[test]
    fn insert_remove_and_walk() {
        let mut ix = SlotIndex::new();
        let mut slots = vec![];
        let mut ttl = vec![];
        for (i, s) in [5u16, 7, 5, 5, 16383, 7].into_iter().enumerate() {
            ix.inserted(i, s, i % 2 == 0);
            slots.push(s);
            ttl.push(i % 2 == 0);
        }
        check(&ix, &slots, &ttl);
        assert_eq!(
            ix.non_empty().collect::<Vec<_>>(),
            vec![
                SlotCounts {
                    slot: 5,
                    keys: 3,
                    expires: 2
                },
                SlotCounts {
                    slot: 7,
                    keys: 2,
                    expires: 0
                },
                SlotCounts {
                    slot: 16383,
                    keys: 1,
                    expires: 1
                },
            ]
        );
        // Head of a list moved into the hole; last entry removed; middle of a list.
        remove(&mut ix, &mut slots, &mut ttl, 0);
        check(&ix, &slots, &ttl);
        let last = slots.len() - 1;
        remove(&mut ix, &mut slots, &mut ttl, last);
        check(&ix, &slots, &ttl);
        remove(&mut ix, &mut slots, &mut ttl, 1);
        check(&ix, &slots, &ttl);
        ix.ttl_changed(5, true);
        let i = slots.iter().position(|&s| s == 5).unwrap();
        let j = (0..slots.len())
            .find(|&j| slots[j] == 5 && !ttl[j])
            .unwrap_or(i);
        ttl[j] = true;
        check(&ix, &slots, &ttl);
        ix.clear();
        check(&ix, &[], &[]);
    }

    proptest! {
        /// Random inserts and swap-removes over a few slots keep every list and count
        /// equal to the model's.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((any::<bool>(), 0u16..6, any::<bool>(), any::<u16>()), 1..300)) {
            let mut ix = SlotIndex::new();
            let mut slots = vec![];
            let mut ttl = vec![];
            for (insert, slot, t, pick) in ops {
                if insert || slots.is_empty() {
                    ix.inserted(slots.len(), slot * 3000, t);
                    slots.push(slot * 3000);
                    ttl.push(t);
                } else {
                    let idx = usize::from(pick) % slots.len();
                    remove(&mut ix, &mut slots, &mut ttl, idx);
                }
            }
            check(&ix, &slots, &ttl);
        }
    }
}
