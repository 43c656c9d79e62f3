//! A provided-buffer ring for multishot receives: the kernel picks a buffer per receive
//! completion, the reactor copies the bytes into the connection's input and hands the
//! buffer back. One multishot receive per connection stays armed, so a request costs no
//! receive SQE and no poll re-arm.
//!
//! Where the kernel has it (6.12+), the ring is registered for incremental consumption
//! (`IOU_PBUF_RING_INC`): successive receives, of any connection, fill the buffer at the
//! head one after another and a buffer goes back to the kernel only once it is full. A
//! small request then lands right behind the last one, in lines the CPU just wrote, instead
//! of at the start of the next of many buffers (each receive a cold line on another page).

use io_uring::types::BufRingEntry;
use io_uring::{IoUring, cqueue};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Buffers in each shard's ring (a power of two, at most 32768). Buffers are recycled every
/// loop iteration, so this bounds what one iteration can receive before the kernel answers
/// ENOBUFS (the receive is then re-armed on the next iteration): this many completions
/// without incremental consumption, this many buffers' worth of bytes with it.
pub const BUF_RING_ENTRIES: u16 = 512;
/// Size of each provided buffer. With `BUF_RING_ENTRIES` this is 4 MiB of address space per
/// shard; pages are touched only as buffers are used.
pub const BUF_RING_BUF_BYTES: usize = 8 * 1024;
/// The buffer group id percore uses.
pub const BUF_GROUP: u16 = 0;
/// `IOU_PBUF_RING_INC`: the kernel consumes each buffer incrementally.
const PBUF_RING_INC: u16 = 2;

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
    /// Whether the kernel consumes buffers incrementally (`IOU_PBUF_RING_INC`).
    incremental: bool,
    /// With incremental consumption: how much of each buffer the kernel has filled so far
    /// (the next completion's bytes start there).
    filled: Box<[u32]>,
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
            incremental: false,
            filled: vec![0; usize::from(entries)].into_boxed_slice(),
        };
        for bid in 0..entries {
            me.recycle(bid);
        }
        me.publish();
        let register = |flags: u16| {
            // SAFETY: the ring memory is page aligned (mmap), holds `entries` entries and
            // lives until `me` is dropped, which unregisters it before unmapping.
            unsafe {
                ring.submitter().register_buf_ring_with_flags(
                    me.ring.ptr as u64,
                    entries,
                    BUF_GROUP,
                    flags,
                )
            }
        };
        let want_inc = std::env::var_os("PERCORE_NO_INCREMENTAL_BUFFERS").is_none();
        me.incremental = want_inc && register(PBUF_RING_INC).is_ok();
        if !me.incremental {
            // Kernels before 6.12 refuse the flag (EINVAL).
            register(0)?;
        }
        Ok(me)
    }

    /// Whether the kernel fills buffers incrementally.
    pub fn incremental(&self) -> bool {
        self.incremental
    }

    /// Takes the `len` bytes a completion with `flags` received into buffer `bid`, hands
    /// them to `f`, and gives the buffer back to the kernel unless it will take more
    /// (incremental consumption, `IORING_CQE_F_BUF_MORE`).
    pub fn consume<R>(
        &mut self,
        bid: u16,
        len: usize,
        flags: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let at = if self.incremental {
            self.filled[usize::from(bid)] as usize
        } else {
            0
        };
        let out = f(self.data(bid, at, len));
        if self.incremental && cqueue::buffer_more(flags) {
            self.filled[usize::from(bid)] = (at + len) as u32;
        } else {
            self.filled[usize::from(bid)] = 0;
            self.recycle(bid);
        }
        out
    }

    /// The `len` bytes at offset `at` of buffer `bid` that a completion filled.
    #[expect(unsafe_code, reason = "reads a kernel-filled provided buffer")]
    fn data(&self, bid: u16, at: usize, len: usize) -> &[u8] {
        assert!(bid <= self.mask && at + len <= BUF_RING_BUF_BYTES);
        // SAFETY: bytes at..at+len of buffer `bid` lie inside the mapping; the kernel wrote
        // them and does not touch them again (it fills only beyond them, or nothing until
        // we recycle the buffer).
        unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .ptr
                    .add(usize::from(bid) * BUF_RING_BUF_BYTES + at),
                len,
            )
        }
    }

    /// Gives buffer `bid` back to the kernel (visible after the next [`BufRing::publish`]).
    #[expect(unsafe_code, reason = "writes a ring entry")]
    fn recycle(&mut self, bid: u16) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::{opcode, types};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// Arms a multishot receive on `fd`, writes each of `pieces` in turn and collects
    /// what every completion delivered, with its buffer id and offset.
    fn receive(br: &mut BufRing, ring: &mut IoUring, pieces: &[&[u8]]) -> Vec<(u16, Vec<u8>)> {
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
        let mut got = Vec::new();
        for piece in pieces {
            tx.write_all(piece).unwrap();
            ring.submit_and_wait(1).unwrap();
            let cqes: Vec<_> = ring.completion().collect();
            for cqe in cqes {
                let bid = BufRing::buffer_of(cqe.flags()).expect("a provided buffer");
                let len = usize::try_from(cqe.result()).unwrap();
                let bytes = br.consume(bid, len, cqe.flags(), <[u8]>::to_vec);
                got.push((bid, bytes));
            }
            br.publish();
        }
        got
    }

    #[test]
    fn incremental_buffers_take_receives_one_behind_the_other() {
        let mut ring = IoUring::new(8).unwrap();
        let Ok(mut br) = BufRing::register(&ring) else {
            eprintln!("NOTICE: this kernel has no provided-buffer rings; skipping");
            return;
        };
        let got = receive(&mut br, &mut ring, &[b"hello", b"world!", b"x"]);
        let bytes: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bytes, [&b"hello"[..], b"world!", b"x"]);
        if br.incremental() {
            // One buffer, filled at offsets 0, 5, 11: the kernel keeps it at the head.
            assert!(got.iter().all(|(bid, _)| *bid == got[0].0), "{got:?}");
            assert_eq!(br.filled[usize::from(got[0].0)], 12);
        } else {
            assert!(got[0].0 != got[1].0, "whole buffers: one per receive");
        }
    }

    #[test]
    fn a_full_incremental_buffer_goes_back_and_the_next_one_follows() {
        let mut ring = IoUring::new(8).unwrap();
        let Ok(mut br) = BufRing::register(&ring) else {
            eprintln!("NOTICE: this kernel has no provided-buffer rings; skipping");
            return;
        };
        if !br.incremental() {
            eprintln!("NOTICE: this kernel has no incremental buffers (< 6.12); skipping");
            return;
        }
        // A piece that leaves 10 bytes of the first buffer, then one that overflows it.
        let first = vec![b'a'; BUF_RING_BUF_BYTES - 10];
        let second = vec![b'b'; 30];
        let got = receive(&mut br, &mut ring, &[&first, &second]);
        let all: Vec<u8> = got.iter().flat_map(|(_, b)| b.clone()).collect();
        let mut want = first.clone();
        want.extend(&second);
        assert_eq!(all, want);
        let first_bid = got[0].0;
        assert!(
            got.iter().any(|(bid, _)| *bid != first_bid),
            "moved on to the next buffer"
        );
        // The full buffer was recycled: its fill offset is back to 0 and the ring tail
        // moved past the initial entries.
        assert_eq!(br.filled[usize::from(first_bid)], 0);
        assert_eq!(br.tail, BUF_RING_ENTRIES.wrapping_add(1));
    }
}
