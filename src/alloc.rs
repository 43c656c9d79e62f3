//! A counting wrapper around the system allocator, so INFO memory reports real
//! `used_memory` figures. Counts are kept in per-thread-slot padded counters to keep the
//! shard threads from sharing one contended cache line.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Counter slots; threads beyond this share slots (still correct, just contended).
const COUNTER_SLOTS: usize = 64;

#[repr(align(128))]
struct Padded(AtomicIsize);

static COUNTERS: [Padded; COUNTER_SLOTS] = [const { Padded(AtomicIsize::new(0)) }; COUNTER_SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn slot() -> usize {
    SLOT.try_with(|s| {
        let v = s.get();
        if v == usize::MAX {
            let n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % COUNTER_SLOTS;
            s.set(n);
            n
        } else {
            v
        }
    })
    .unwrap_or(0)
}

#[inline]
fn add(delta: isize) {
    COUNTERS[slot()].0.fetch_add(delta, Ordering::Relaxed);
}

/// Bytes currently allocated through the global allocator.
pub fn used_memory() -> usize {
    let total: isize = COUNTERS.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    total.max(0) as usize
}

pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds bookkeeping on the side, so System's guarantees carry over.
#[expect(unsafe_code, reason = "GlobalAlloc is an unsafe trait")]
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's valid layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was returned by `alloc` with this layout (the caller's contract).
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's valid layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees ptr/layout came from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}
