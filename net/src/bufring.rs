//! A provided-buffer ring for multishot receives: the kernel picks a buffer per receive
//! completion, the reactor copies the bytes into the connection's input and hands the
//! buffer back. One multishot receive per connection stays armed, so a request costs no
//! receive SQE and no poll re-arm.

use io_uring::types::BufRingEntry;
use io_uring::{IoUring, cqueue};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Buffers in each shard's ring (a power of two, at most 32768). Buffers are recycled every
/// loop iteration, so this bounds the receive completions one iteration can take before the
/// kernel answers ENOBUFS (the receive is then re-armed on the next iteration).
pub const BUF_RING_ENTRIES: u16 = 512;
/// Size of each provided buffer. With `BUF_RING_ENTRIES` this is 4 MiB of address space per
/// shard; pages are touched only as buffers are used.
pub const BUF_RING_BUF_BYTES: usize = 8 * 1024;
/// The buffer group id percore uses.
pub const BUF_GROUP: u16 = 0;

/// Anonymous memory mapping, released on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    #[expect(unsafe_code, reason = "mmap/madvise syscalls")]
    fn new(len: usize, populate: bool) -> io::Result<Self> {
        let populate = if populate { libc::MAP_POPULATE } else { 0 };
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | populate,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // A fork child (fork snapshots) must not inherit the kernel-shared ring memory.
        // SAFETY: ptr/len describe the mapping just created.
        unsafe { libc::madvise(ptr, len, libc::MADV_DONTFORK) };
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    #[expect(unsafe_code, reason = "munmap syscall")]
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping this value owns; nothing uses it afterwards
        // (the ring is unregistered first, see BufRing's Drop).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One shard's provided-buffer ring.
pub struct BufRing {
    ring: Mapping,
    bufs: Mapping,
    mask: u16,
    /// Our copy of the tail; published to the kernel by [`BufRing::publish`].
    tail: u16,
    published: u16,
}

impl BufRing {
    /// The ring's first entry.
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "mmap returns page-aligned memory, aligned for any entry type"
    )]
    fn entries(&self) -> *mut BufRingEntry {
        self.ring.ptr.cast::<BufRingEntry>()
    }

    /// Allocates and registers the ring with `ring`'s submitter.
    #[expect(unsafe_code, reason = "registers kernel-shared memory")]
    pub fn register(ring: &IoUring) -> io::Result<Self> {
        let entries = BUF_RING_ENTRIES;
        assert!(entries.is_power_of_two() && entries <= 32768);
        let ring_bytes = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
        let ring_mem = Mapping::new(ring_bytes.max(4096), true)?;
        let bufs = Mapping::new(usize::from(entries) * BUF_RING_BUF_BYTES, false)?;
        let mut me = Self {
            ring: ring_mem,
            bufs,
            mask: entries - 1,
            tail: 0,
            published: 0,
        };
        for bid in 0..entries {
            me.recycle(bid);
        }
        me.publish();
        // SAFETY: the ring memory is page aligned (mmap), holds `entries` entries and lives
        // until `self` is dropped, which unregisters it before unmapping.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                me.ring.ptr as u64,
                entries,
                BUF_GROUP,
                0,
            )?;
        }
        Ok(me)
    }

    /// The bytes of buffer `bid` that a completion of `len` bytes filled.
    #[expect(unsafe_code, reason = "reads a kernel-filled provided buffer")]
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid <= self.mask && len <= BUF_RING_BUF_BYTES);
        // SAFETY: buffer `bid` lies inside the mapping; the kernel wrote `len` bytes into it
        // and does not touch it again until we recycle it.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.ptr.add(usize::from(bid) * BUF_RING_BUF_BYTES),
                len,
            )
        }
    }

    /// Gives buffer `bid` back to the kernel (visible after the next [`BufRing::publish`]).
    #[expect(unsafe_code, reason = "writes a ring entry")]
    pub fn recycle(&mut self, bid: u16) {
        let slot = usize::from(self.tail & self.mask);
        // SAFETY: slot < entries, inside the ring mapping; the kernel reads entries only up to
        // the published tail, and this one is beyond it until `publish`.
        unsafe {
            let entry = &mut *self.entries().add(slot);
            entry.set_addr(self.bufs.ptr.add(usize::from(bid) * BUF_RING_BUF_BYTES) as u64);
            entry.set_len(BUF_RING_BUF_BYTES as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes recycled buffers to the kernel.
    #[expect(unsafe_code, reason = "stores the ring tail shared with the kernel")]
    pub fn publish(&mut self) {
        if self.published == self.tail {
            return;
        }
        // SAFETY: the tail field overlays the first entry's reserved field (io_uring ABI) and
        // is only written by us; the release store orders our entry writes before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }

    /// The buffer id a completion used, if any.
    pub fn buffer_of(flags: u32) -> Option<u16> {
        cqueue::buffer_select(flags)
    }
}
