//! A counting wrapper around the system allocator, so INFO memory reports real
//! `used_memory` figures. Counts are kept in per-thread-slot padded counters to keep the
//! shard threads from sharing one contended cache line.
//!
//! What is counted is what glibc's malloc holds for each allocation ([`held_bytes`]): the
//! request plus its 8-byte size header, rounded up to 16 bytes, at least 32; a request
//! served by `mmap` is rounded up to pages. Counting the requested sizes instead made
//! every small allocation look up to 31 bytes cheaper than it is, which flattered
//! percore against redis-server, whose `used_memory` counts jemalloc's size classes.
//! The figure is computed from the size, with no call into the allocator, so it costs a
//! few instructions per allocation.

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

/// glibc's `MINSIZE`: the smallest chunk.
const MALLOC_MIN_CHUNK_BYTES: usize = 32;
/// glibc's chunk header (`SIZE_SZ`) and alignment on 64-bit.
const MALLOC_HEADER_BYTES: usize = 8;
const MALLOC_ALIGN_BYTES: usize = 16;
/// glibc's initial `M_MMAP_THRESHOLD`: larger requests get pages of their own (glibc may
/// raise the threshold later; then such a block is counted up to one page high).
const MALLOC_MMAP_THRESHOLD_BYTES: usize = 128 * 1024;
const PAGE_BYTES: usize = 4096;

/// Bytes glibc's malloc holds for a request of `size` bytes (see the module
/// documentation).
#[inline]
#[must_use]
pub const fn held_bytes(size: usize) -> usize {
    if size >= MALLOC_MMAP_THRESHOLD_BYTES {
        (size + 2 * MALLOC_HEADER_BYTES).next_multiple_of(PAGE_BYTES)
    } else {
        let chunk = (size + MALLOC_HEADER_BYTES).next_multiple_of(MALLOC_ALIGN_BYTES);
        if chunk < MALLOC_MIN_CHUNK_BYTES {
            MALLOC_MIN_CHUNK_BYTES
        } else {
            chunk
        }
    }
}

#[inline]
fn add(delta: isize) {
    COUNTERS[slot()].0.fetch_add(delta, Ordering::Relaxed);
}

/// Bytes currently allocated through the global allocator: the sum of the counters
/// handed out so far (each thread publishes its own; eviction reads the sum per command
/// when `maxmemory` is set).
#[inline]
pub fn used_memory() -> usize {
    let slots = NEXT_SLOT.load(Ordering::Relaxed).min(COUNTER_SLOTS);
    let total: isize = COUNTERS[..slots.max(1)]
        .iter()
        .map(|c| c.0.load(Ordering::Relaxed))
        .sum();
    total.max(0) as usize
}

/// This thread's counter: what it allocated minus what it freed (whoever allocated it).
/// Eviction measures what a deletion freed by its change.
#[inline]
pub fn thread_allocated() -> i64 {
    COUNTERS[slot()].0.load(Ordering::Relaxed) as i64
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
            add(held_bytes(layout.size()) as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was returned by `alloc` with this layout (the caller's contract).
        unsafe { System.dealloc(ptr, layout) };
        add(-(held_bytes(layout.size()) as isize));
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's valid layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(held_bytes(layout.size()) as isize);
        }
        p
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees ptr/layout came from this allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(held_bytes(new_size) as isize - held_bytes(layout.size()) as isize);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::held_bytes;

    #[test]
    fn held_bytes_follow_glibc_chunks() {
        // (request, chunk): the 8-byte header, 16-byte steps, a 32-byte minimum.
        for (size, chunk) in [
            (1, 32),
            (24, 32),
            (25, 48),
            (40, 48),
            (41, 64),
            (1000, 1008),
            (128 * 1024, 128 * 1024 + 4096),
        ] {
            assert_eq!(held_bytes(size), chunk, "request of {size} bytes");
        }
    }
}
