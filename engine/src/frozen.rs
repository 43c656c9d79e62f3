//! Frozen copies of large values, for a forkless snapshot's cut.
//!
//! A large sorted set keeps its order's chunks, and a list its quicklist nodes, behind
//! `Arc`s ("parts"). A snapshot freezes such a value by cloning those `Arc`s: O(parts),
//! no element copied (a 10M-member sorted set has about 50k chunks). The live value goes
//! on changing and copies only the part a write lands on while a frozen copy still holds
//! it ([`make_mut`]); the frozen copy releases each part once it has been serialized
//! ([`release`]), so a later write to that part copies nothing.
//!
//! [`copied_bytes`] is the memory held only by frozen copies: parts the live values
//! replaced or dropped while shared and that no frozen copy has released yet. The
//! forkless save's copy limit (`forkless-max-copy-memory`) counts it. It is one
//! process-wide counter because a frozen copy is released on the snapshot writer's thread
//! while the shard that owns the live value goes on writing.

use crate::db::Entry;
use crate::lists::FrozenList;
use crate::value::Value;
use crate::zsets::FrozenZSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Values with at least this many elements are frozen rather than copied when a write
/// lands on them during a cut, and serialized off the shard (an element is a member or
/// list item). Below it a copy and an inline serialization cost well under a millisecond.
pub const FREEZE_MIN_ELEMENTS: usize = 4096;

/// Bytes held only by frozen copies (see the module documentation).
static COPIED_BYTES: AtomicI64 = AtomicI64::new(0);

/// Memory held only by frozen copies, in bytes: what the frozen copies of the snapshots
/// in progress cost beyond the live data.
#[must_use]
pub fn copied_bytes() -> u64 {
    u64::try_from(COPIED_BYTES.load(Ordering::Relaxed)).unwrap_or(0)
}

fn add(bytes: usize) {
    COPIED_BYTES.fetch_add(bytes as i64, Ordering::Relaxed);
}

fn sub(bytes: usize) {
    // Every subtraction follows the addition for the same part (`discard` adds before it
    // lets go; `release` subtracts only as the last holder, after that).
    COPIED_BYTES.fetch_sub(bytes as i64, Ordering::Relaxed);
}

/// A shareable piece of a large value.
pub trait Part: Clone {
    /// Heap bytes this part holds (the same figure for the same unchanged part).
    fn weight_bytes(&self) -> usize;
}

/// The part behind `a`, unique: when a frozen copy shares it, the live value takes a copy
/// (counted in [`copied_bytes`] until the frozen copy releases the original).
pub fn make_mut<T: Part>(a: &mut Arc<T>) -> &mut T {
    if Arc::get_mut(a).is_none() {
        let copy = T::clone(a);
        let old = std::mem::replace(a, Arc::new(copy));
        discard(old);
    }
    Arc::get_mut(a).expect("the part was just made unique")
}

/// The part itself, taken out of its `Arc` (copied when shared, as [`make_mut`]).
pub fn take<T: Part>(mut a: Arc<T>) -> T {
    make_mut(&mut a);
    Arc::into_inner(a).expect("unique after make_mut")
}

/// Drops the live value's reference to a part. When a frozen copy still holds it, its
/// bytes now belong to that copy alone and count in [`copied_bytes`].
pub fn discard<T: Part>(a: Arc<T>) {
    if Arc::strong_count(&a) == 1 {
        return;
    }
    let w = a.weight_bytes();
    add(w);
    // The frozen copy may have released it meanwhile: then nothing is held for it.
    if Arc::into_inner(a).is_some() {
        sub(w);
    }
}

/// Drops a frozen copy's reference to a part, after serializing it.
pub fn release<T: Part>(a: Arc<T>) {
    if let Some(part) = Arc::into_inner(a) {
        // The last holder: the live value had replaced or dropped it (`discard`).
        sub(part.weight_bytes());
    }
}

/// A part held outright, or shared with frozen copies since the last freeze: for
/// structures whose parts are usually few (a list's nodes), so that only frozen values
/// pay for an `Arc`. Reads go through `Deref`; a write through [`Shareable::get_mut`]
/// takes the part back (a copy while a frozen copy still holds it).
#[derive(Debug)]
pub struct Shareable<T: Part>(Held<T>);

#[derive(Debug)]
enum Held<T> {
    Own(T),
    Shared(Arc<T>),
    /// Only inside `get_mut`, between taking the `Arc` out and putting the part back.
    Moving,
}

impl<T: Part> Shareable<T> {
    #[must_use]
    pub fn new(part: T) -> Self {
        Self(Held::Own(part))
    }

    /// The part, for writing (see the type's documentation).
    pub fn get_mut(&mut self) -> &mut T {
        if let Held::Shared(_) = self.0 {
            let Held::Shared(a) = std::mem::replace(&mut self.0, Held::Moving) else {
                unreachable!("matched above")
            };
            self.0 = Held::Own(take(a));
        }
        match &mut self.0 {
            Held::Own(t) => t,
            Held::Shared(_) | Held::Moving => unreachable!("made owned above"),
        }
    }

    /// The part for writing if no frozen copy holds it (never copies).
    pub fn owned_mut(&mut self) -> Option<&mut T> {
        match &mut self.0 {
            Held::Own(t) => Some(t),
            Held::Shared(_) | Held::Moving => None,
        }
    }

    /// The part itself (copied while a frozen copy holds it).
    #[must_use]
    pub fn into_inner(mut self) -> T {
        match std::mem::replace(&mut self.0, Held::Moving) {
            Held::Own(t) => t,
            Held::Shared(a) => take(a),
            Held::Moving => unreachable!("never left moving"),
        }
    }

    /// A reference for a frozen copy; the part stays shared until written.
    pub fn share(&mut self) -> Arc<T> {
        if let Held::Own(_) = self.0 {
            let Held::Own(t) = std::mem::replace(&mut self.0, Held::Moving) else {
                unreachable!("matched above")
            };
            self.0 = Held::Shared(Arc::new(t));
        }
        match &self.0 {
            Held::Shared(a) => Arc::clone(a),
            Held::Own(_) | Held::Moving => unreachable!("made shared above"),
        }
    }
}

impl<T: Part> std::ops::Deref for Shareable<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match &self.0 {
            Held::Own(t) => t,
            Held::Shared(a) => a,
            Held::Moving => unreachable!("never left moving"),
        }
    }
}

/// A clone is a copy of its own: only frozen copies share parts.
impl<T: Part> Clone for Shareable<T> {
    fn clone(&self) -> Self {
        Self::new(T::clone(self))
    }
}

impl<T: Part + PartialEq> PartialEq for Shareable<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Part + Eq> Eq for Shareable<T> {}

impl<T: Part> Drop for Shareable<T> {
    fn drop(&mut self) {
        if let Held::Shared(a) = std::mem::replace(&mut self.0, Held::Moving) {
            discard(a);
        }
    }
}

/// A large value's frozen copy.
#[derive(Debug)]
pub enum FrozenValue {
    ZSet(FrozenZSet),
    List(FrozenList),
}

/// A key's frozen copy: its value and its expiry at the cut.
#[derive(Debug)]
pub struct FrozenEntry {
    pub value: FrozenValue,
    pub expire_at_ms: Option<i64>,
}

impl FrozenValue {
    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            FrozenValue::ZSet(z) => z.len(),
            FrozenValue::List(l) => l.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Value {
    /// A frozen copy of this value when it is large enough to be worth one (at least
    /// [`FREEZE_MIN_ELEMENTS`] elements, in a form made of shared parts). Takes `&mut`
    /// because a list's nodes become shared (its content does not change).
    pub fn freeze_if_large(&mut self) -> Option<FrozenValue> {
        match self {
            Value::ZSet(z) if z.len() >= FREEZE_MIN_ELEMENTS => z.freeze().map(FrozenValue::ZSet),
            Value::List(l) if l.len() >= FREEZE_MIN_ELEMENTS => Some(FrozenValue::List(l.freeze())),
            _ => None,
        }
    }
}

impl Entry {
    /// [`Value::freeze_if_large`] with the entry's expiry.
    pub fn freeze_if_large(&mut self) -> Option<FrozenEntry> {
        let expire_at_ms = self.expire_at_ms();
        self.value.freeze_if_large().map(|value| FrozenEntry {
            value,
            expire_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{End, List};
    use crate::zsets::{ZSetLimits, ZSetValue};
    use std::collections::VecDeque;

    fn next(rng: &mut u64) -> usize {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        (*rng >> 16) as usize
    }

    fn zset_entries(z: &ZSetValue) -> Vec<(f64, Vec<u8>)> {
        let mut v = Vec::new();
        z.for_ranks(0, z.len(), true, |s, m| v.push((s, m.to_vec())));
        v
    }

    fn list_items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|v| v.to_bytes().into_owned()).collect()
    }

    /// One test for both types: the counter is process-wide, and no other test of this
    /// binary freezes anything.
    #[test]
    fn frozen_copies_keep_the_cut_and_count_what_they_alone_hold() {
        let limits = ZSetLimits::default();
        let n = FREEZE_MIN_ELEMENTS * 4;
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let base = copied_bytes();

        // A sorted set written all over while frozen.
        let mut z = Value::ZSet(ZSetValue::new_for(1, &limits));
        let Value::ZSet(zv) = &mut z else {
            unreachable!()
        };
        for i in 0..n {
            zv.insert(format!("m{i}").as_bytes(), (i % 1000) as f64, &limits);
        }
        let at_cut = zset_entries(zv);
        let Some(FrozenValue::ZSet(fz)) = z.freeze_if_large() else {
            panic!("a large sorted set freezes");
        };
        assert_eq!(copied_bytes(), base, "freezing copies nothing");
        let Value::ZSet(zv) = &mut z else {
            unreachable!()
        };
        for round in 0..n / 4 {
            let m = format!("m{}", next(&mut rng) % n);
            match round % 3 {
                0 => {
                    zv.insert(m.as_bytes(), next(&mut rng) as f64, &limits);
                }
                1 => {
                    zv.remove(m.as_bytes());
                }
                _ => {
                    zv.insert(format!("new{round}").as_bytes(), round as f64, &limits);
                }
            }
        }
        assert!(
            copied_bytes() > base,
            "written chunks are held by the copy alone"
        );
        let mut got = Vec::new();
        fz.drain_rev(|s, m| {
            got.push((s, m.to_vec()));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(got, at_cut, "the frozen copy is the value at the cut");
        assert_eq!(copied_bytes(), base, "every part released");
        let live = zset_entries(zv);
        assert_eq!(live.len(), zv.len());
        assert!(
            live.windows(2)
                .all(|w| (w[0].0, &w[0].1) > (w[1].0, &w[1].1))
        );

        // A list written at both ends and in the middle while frozen.
        let mut l = Value::List(Box::default());
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let Value::List(lv) = &mut l else {
            unreachable!()
        };
        for i in 0..n {
            let item = format!("item{i}").into_bytes();
            lv.push(End::Tail, &item, -2);
            model.push_back(item);
        }
        let at_cut = list_items(lv);
        let Some(FrozenValue::List(fl)) = l.freeze_if_large() else {
            panic!("a large list freezes");
        };
        let Value::List(lv) = &mut l else {
            unreachable!()
        };
        assert_eq!(list_items(lv), at_cut, "freezing changes no content");
        for round in 0..2000 {
            let item = format!("w{round}").into_bytes();
            match round % 5 {
                0 => {
                    lv.push(End::Head, &item, -2);
                    model.push_front(item);
                }
                1 => {
                    assert_eq!(lv.pop(End::Tail), model.pop_back());
                }
                2 => {
                    let at = next(&mut rng) % model.len();
                    assert!(lv.set(at as i64, &item, -2));
                    model[at] = item;
                }
                3 => {
                    let at = next(&mut rng) % model.len();
                    let pivot = model[at].clone();
                    lv.insert_at_pivot(&pivot, &item, true, -2);
                    let first = model.iter().position(|x| *x == pivot).expect("present");
                    model.insert(first + 1, item);
                }
                _ => {
                    let victim = format!("item{}", next(&mut rng) % n).into_bytes();
                    let removed = lv.remove_matching(&victim, 0);
                    let before = model.len();
                    model.retain(|x| *x != victim);
                    assert_eq!(removed, before - model.len());
                }
            }
        }
        assert!(copied_bytes() > base);
        let mut got = Vec::new();
        fl.drain(|node| {
            got.extend(node.iter().map(|v| v.to_bytes().into_owned()));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(got, at_cut, "the frozen copy is the list at the cut");
        assert_eq!(copied_bytes(), base);
        assert_eq!(list_items(lv), Vec::from(model));

        // A value deleted while frozen: its parts are the copy's alone until released.
        let Some(fz) = z.freeze_if_large() else {
            panic!("still large");
        };
        drop(z);
        assert!(copied_bytes() > base);
        drop(fz);
        assert_eq!(copied_bytes(), base);
    }
}
