//! A provided-buffer ring for multishot receives: the kernel picks a buffer per receive
//! completion, the reactor copies the bytes into the connection's input and hands the
//! buffer back. One multishot receive per connection stays armed, so a request costs no
//! receive SQE and no poll re-arm.
//!
//! The buffers' 4 MiB are advised onto transparent huge pages (`MADV_HUGEPAGE`, ignored
//! where THP is off): consecutive receives use consecutive 8 KiB buffers, so with 4 KiB
//! pages each small receive touched another page and the kernel's copy into it
//! (`_copy_to_iter`) cost 4× redis-server's `read` at pipeline 1.

use io_uring::types::BufRingEntry;
use io_uring::{IoUring, cqueue};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Buffers in each shard's ring (a power of two, at most 32768). Buffers are recycled every
/// loop iteration, so this bounds the receive completions one iteration can take before the
/// kernel answers ENOBUFS (the receive is then re-armed on the next iteration).
pub const BUF_RING_ENTRIES: u16 = 512;
/// Environment variable that replaces [`BUF_RING_ENTRIES`] (a power of two, 1 to 32768;
/// anything else is ignored). A test switch: with a handful of buffers, concurrent
/// connections run the ring dry and every receive path after ENOBUFS gets exercised
/// (tests/receive_stress.rs). Not a tuning knob.
pub const BUF_RING_ENTRIES_ENV: &str = "PERCORE_BUF_RING_ENTRIES";
/// Size of each provided buffer. With `BUF_RING_ENTRIES` this is 4 MiB of address space per
/// shard; pages are touched only as buffers are used.
pub const BUF_RING_BUF_BYTES: usize = 8 * 1024;
/// Size of a transparent huge page on x86-64 and arm64 (4 KiB base pages).
const HUGE_PAGE_BYTES: usize = 2 * 1024 * 1024;
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
        if len >= HUGE_PAGE_BYTES && std::env::var_os("PERCORE_NO_HUGE_BUFFERS").is_none() {
            // SAFETY: as above; only a hint.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
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
        let entries = std::env::var(BUF_RING_ENTRIES_ENV)
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|n| n.is_power_of_two() && *n <= 32768)
            .unwrap_or(BUF_RING_ENTRIES);
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
        // until `me` is dropped; `Reactor` declares its ring first, so the ring (and with it
        // the registration) is gone before the memory is unmapped.
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

    /// Hands the `len` bytes a completion received into buffer `bid` to `f`, then gives the
    /// buffer back to the kernel (visible after the next [`BufRing::publish`]).
    pub fn consume<R>(&mut self, bid: u16, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let out = f(self.data(bid, len));
        self.recycle(bid);
        out
    }

    /// Start of buffer `bid` (inside the mapping: `bid <= mask`).
    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        self.bufs
            .ptr
            .wrapping_add(usize::from(bid) * BUF_RING_BUF_BYTES)
    }

    /// The `len` bytes a completion filled in buffer `bid`.
    #[expect(unsafe_code, reason = "reads a kernel-filled provided buffer")]
    fn data(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid <= self.mask && len <= BUF_RING_BUF_BYTES);
        // SAFETY: the first `len` bytes of buffer `bid` lie inside the mapping; the kernel
        // wrote them and does not touch the buffer again until we recycle it.
        unsafe { std::slice::from_raw_parts(self.buf_ptr(bid), len) }
    }

    /// Gives buffer `bid` back to the kernel (visible after the next [`BufRing::publish`]).
    #[expect(unsafe_code, reason = "writes a ring entry")]
    fn recycle(&mut self, bid: u16) {
        let slot = usize::from(self.tail & self.mask);
        // SAFETY: slot < entries, inside the ring mapping; the kernel reads entries only up to
        // the published tail, and this one is beyond it until `publish`.
        unsafe {
            let entry = &mut *self.entries().add(slot);
            entry.set_addr(self.buf_ptr(bid) as u64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::{opcode, types};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn each_receive_takes_a_whole_buffer_and_gives_it_back() {
        let mut ring = IoUring::new(8).unwrap();
        let Ok(mut br) = BufRing::register(&ring) else {
            eprintln!("NOTICE: this kernel has no provided-buffer rings; skipping");
            return;
        };
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let recv = opcode::RecvMulti::new(types::Fd(rx.as_raw_fd()), BUF_GROUP)
            .build()
            .user_data(7);
        // SAFETY: the receive names only a descriptor and the registered buffer group,
        // which outlive it (closing `rx` on return ends it).
        #[expect(unsafe_code, reason = "pushes an SQE")]
        unsafe {
            ring.submission().push(&recv).unwrap();
        }
        let pieces: [&[u8]; 3] = [b"hello", b"world!", &[b'x'; BUF_RING_BUF_BYTES]];
        let mut got = Vec::new();
        for piece in pieces {
            tx.write_all(piece).unwrap();
            ring.submit_and_wait(1).unwrap();
            let cqes: Vec<_> = ring.completion().collect();
            for cqe in cqes {
                assert!(cqueue::more(cqe.flags()), "the receive stays armed");
                let bid = BufRing::buffer_of(cqe.flags()).expect("a provided buffer");
                let len = usize::try_from(cqe.result()).unwrap();
                got.push((bid, br.consume(bid, len, <[u8]>::to_vec)));
            }
            br.publish();
        }
        let bytes: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bytes, pieces);
        let bids: Vec<u16> = got.iter().map(|(bid, _)| *bid).collect();
        assert_eq!(bids, [0, 1, 2], "one buffer per receive, in ring order");
        assert_eq!(
            br.tail,
            BUF_RING_ENTRIES.wrapping_add(3),
            "all three went back"
        );
        drop(ring);
    }
}
