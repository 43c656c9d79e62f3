//! The snapshot file writer: RDB bytes are written to `dir/temp-<id>.rdb` through a small
//! private io_uring, made durable, then [`install`]ed under the final name.
//!
//! # Who calls it
//! - A fork child (one thread). It creates its own [`SnapshotFile`] — its own ring, its own
//!   buffers — and touches nothing of the parent's: no other ring, no logging, no lock
//!   beyond malloc's. Errors come back as `io::Error` values for the child to turn into an
//!   exit code.
//! - The forkless snapshot: [`ChunkWriter`] runs a [`SnapshotFile`] on a dedicated thread and
//!   takes `Vec<u8>` chunks from several shard threads through a bounded queue, never
//!   blocking them.
//!
//! # Write path
//! [`SnapshotFile::write`] copies bytes into page-aligned buffers (one anonymous map per
//! buffer, so the kernel reading one buffer never aliases the buffer being filled). A full
//! buffer goes out as one `IORING_OP_WRITE` at its own file offset. There are
//! `queue_depth + 1` buffers: up to `queue_depth` writes are in flight while the next buffer
//! fills; when all are in flight, `write` waits for a completion. A short write is
//! resubmitted for its remainder. The first error (EIO, ENOSPC, an injected failure) is
//! sticky: every later call returns it.
//!
//! Where the kernel refuses io_uring (a seccomp profile, `kernel.io_uring_disabled`; the
//! fork child of a server on the epoll backend inherits the filter) the same buffers go out
//! as plain `pwrite`s, one at a time, and the fsync is `fsync(2)`: same file, same errors.
//!
//! # O_DIRECT
//! With [`WriteOptions::direct`] the file is opened `O_DIRECT` so a multi-gigabyte snapshot
//! does not push the dataset's neighbours out of the page cache. Buffers, lengths and offsets
//! are multiples of [`DIRECT_IO_ALIGN_BYTES`]. When the filesystem refuses `O_DIRECT` at open
//! (EINVAL: ramfs, and tmpfs before Linux 6.6) the file is opened buffered instead and
//! [`SnapshotFile::is_direct`] says so. The tail: the last partial block is written padded
//! with zeros to 4096 bytes, then the file is `ftruncate`d to its real length before the fsync
//! (one extra metadata update instead of a second open of the file).
//!
//! # Allocating ahead
//! An O_DIRECT file is `fallocate`d [`ALLOCATE_AHEAD_BYTES`] at a time ahead of the writes,
//! so no write extends the file. ext4 runs an extending O_DIRECT write synchronously under
//! the inode lock, which io_uring can only do on an io-wq worker thread, one thread per
//! write in flight; such a thread cannot be killed in the middle of its write, so a fork
//! child cancelled with `queue_depth` MiB in flight lived until all of it reached the disk
//! (790–990 ms on a disk throttled to 10 MB/s). Writes inside the allocation are issued
//! asynchronously from the submitting thread: a killed child exits at once (2–3 ms reply on
//! that disk) and the ring finishes the writes after it. `finish` truncates the file to its
//! length. Throughput is unchanged (0.57–0.78 GB/s against 0.29–0.69 without, same disk).
//!
//! # Durability protocol
//! [`SnapshotFile::finish`]: write the tail, wait for every write, `ftruncate` (O_DIRECT only),
//! `IORING_OP_FSYNC`, close. Then [`install`]: `rename(temp, final)` and fsync the directory.
//! A crash at any point leaves the previous final file or the new one, whole, plus perhaps a
//! temp file that [`remove_stale_temp_files`] deletes at the next start.
//!
//! # Throughput measured here
//! ext4 on a shared virtio disk (`/dev/vda`, runs vary by ±25%), Linux 6.18, 2 vCPUs,
//! release build, 4 GiB per run including the final fsync, ranges over 2–4 runs:
//!
//! | what | GB/s |
//! |---|---|
//! | [`measure_direct_write_throughput`], 1 MiB buffers, queue depth 8 (the default) | 0.40–0.52 |
//! | same, queue depth 1 / 4 / 16 | 0.50–0.61 / 0.47–0.66 / 0.44–0.54 |
//! | same, 256 KiB / 4 MiB buffers at depth 8 | 0.39–0.54 / 0.46–0.56 |
//! | `dd bs=1M oflag=direct conv=fsync` to a new file (depth 1) | 0.41–0.59 |
//! | `dd` overwriting an allocated file; four such `dd`s in parallel | 0.61–0.71; 0.82 |
//! | buffered (`direct: false`), fsync included | 0.30–0.46 |
//! | [`ChunkWriter`], 2 producers of 1 MiB chunks, CRC on | 0.49–0.50 |
//! | [`ChunkWriter`] to tmpfs (no disk: the writer thread's own ceiling) | 0.6–1.0 |
//!
//! The writer runs at what `dd` gets from this disk; queue depth and buffer size make no
//! difference beyond the noise, and allocating ahead (`fallocate` in 64 or 256 MiB steps)
//! did not help either (0.46–0.49): it is done for cancelling (see "Allocating ahead"). On
//! tmpfs the [`ChunkWriter`] is CPU-bound on 2 vCPUs: CRC-64 ran at 2.4 GB/s with slicing
//! tables (12.7 GB/s since `crc-fast`) and each chunk is copied once into an aligned
//! buffer. Producers that spin on a full queue steal that CPU (0.29–0.32 to disk when they
//! `yield_now` in a loop); they should retry on their next tick.

mod chunk_writer;

pub use chunk_writer::{
    CHUNK_QUEUE_CAPACITY, ChunkSender, ChunkWriter, Piece, RECYCLE_POOL_CAPACITY,
    RECYCLED_CHUNK_MAX_BYTES, StreamFn, StreamSink, Target, TrySendError,
};

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};
use memmap2::MmapMut;

/// Alignment of buffer addresses, lengths and file offsets for O_DIRECT. ext4 here needs
/// 512 (its logical block size); 4096 is safe on every device.
pub const DIRECT_IO_ALIGN_BYTES: usize = 4096;
/// Default size of one write buffer, and so of one write operation.
pub const DEFAULT_BUFFER_BYTES: usize = 1 << 20;
/// Step of [`SnapshotFile`]'s `fallocate` ahead of its O_DIRECT writes (see the module docs).
pub const ALLOCATE_AHEAD_BYTES: u64 = 64 << 20;
/// Default number of writes in flight.
pub const DEFAULT_QUEUE_DEPTH: usize = 8;
/// Largest accepted buffer: one SQE's length is a `u32`, and more buys nothing.
pub const MAX_BUFFER_BYTES: usize = 64 << 20;
/// Largest accepted queue depth.
pub const MAX_QUEUE_DEPTH: usize = 128;
/// Temp files are named `temp-<id>.rdb`, as Redis names them.
pub const TEMP_FILE_PREFIX: &str = "temp-";
/// See [`TEMP_FILE_PREFIX`].
pub const TEMP_FILE_SUFFIX: &str = ".rdb";
/// How many times a submission refused with EAGAIN/EBUSY (kernel short of memory, CQ
/// overflow) is retried before the error is treated as fatal.
const MAX_SUBMIT_RETRIES: u32 = 10_000;
/// `user_data` of the fsync; writes carry their buffer's index.
const FSYNC_USER_DATA: u64 = u64::MAX;

/// How a [`SnapshotFile`] writes. Build with `..WriteOptions::default()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Try O_DIRECT (falls back to buffered where the filesystem refuses it).
    pub direct: bool,
    /// Bytes per buffer and per write operation: a multiple of [`DIRECT_IO_ALIGN_BYTES`],
    /// at most [`MAX_BUFFER_BYTES`]. Default 1 MiB.
    pub buffer_bytes: usize,
    /// Writes in flight, 1 to [`MAX_QUEUE_DEPTH`]. Default 8. Memory used is
    /// `(queue_depth + 1) * buffer_bytes`.
    pub queue_depth: usize,
    /// Test injection, a disk that fills up: a write reaching past this file offset is cut
    /// short there (to a multiple of 4096 under O_DIRECT) and its remainder fails with
    /// ENOSPC.
    pub fail_after_bytes: Option<u64>,
    /// Test injection: each write operation covers at most this many bytes (rounded down to
    /// 4096 under O_DIRECT, at least 4096), so every buffer completes as a series of short
    /// writes and goes through the resubmission path.
    pub max_write_op_bytes: Option<usize>,
    /// Write with plain `pwrite`s and `fsync` instead of the ring, as the writer does by
    /// itself where the kernel refuses io_uring. For tests of that path.
    pub plain_writes: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            direct: true,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            fail_after_bytes: None,
            max_write_op_bytes: None,
            plain_writes: false,
        }
    }
}

impl WriteOptions {
    fn validate(&self) -> io::Result<()> {
        let buffer_ok = self.buffer_bytes > 0
            && self.buffer_bytes <= MAX_BUFFER_BYTES
            && self.buffer_bytes.is_multiple_of(DIRECT_IO_ALIGN_BYTES);
        if !buffer_ok {
            return Err(invalid_input(
                "buffer_bytes must be a multiple of 4096 between 4096 and 64 MiB",
            ));
        }
        if self.queue_depth == 0 || self.queue_depth > MAX_QUEUE_DEPTH {
            return Err(invalid_input("queue_depth must be between 1 and 128"));
        }
        if self.max_write_op_bytes == Some(0) {
            return Err(invalid_input("max_write_op_bytes must not be 0"));
        }
        Ok(())
    }
}

/// What [`SnapshotFile::finish`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStats {
    /// Length of the file: the logical bytes written (no O_DIRECT padding).
    pub bytes: u64,
    /// Whether the file was written with O_DIRECT.
    pub direct: bool,
    /// From `create` to the end of the fsync.
    pub elapsed: Duration,
    /// Write operations submitted, resubmissions of short writes included.
    pub write_ops: u64,
}

impl FileStats {
    /// Bytes per second over `elapsed`.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `temp-<id>.rdb`, the name a snapshot is written under before [`install`].
pub fn temp_file_name(id: u64) -> String {
    format!("{TEMP_FILE_PREFIX}{id}{TEMP_FILE_SUFFIX}")
}

/// Whether `name` has the `temp-*.rdb` shape [`remove_stale_temp_files`] removes.
pub fn is_temp_file_name(name: &str) -> bool {
    name.len() > TEMP_FILE_PREFIX.len() + TEMP_FILE_SUFFIX.len()
        && name.starts_with(TEMP_FILE_PREFIX)
        && name.ends_with(TEMP_FILE_SUFFIX)
}

/// The first error, returned again by every later call. `io::Error` is not `Clone`, so it
/// is kept in a form that can be turned back into one.
#[derive(Clone, Copy, Debug)]
enum StickyError {
    Os(i32),
    Kind(io::ErrorKind, &'static str),
}

impl StickyError {
    fn from_io(err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(errno) => Self::Os(errno),
            None => Self::Kind(err.kind(), "snapshot write failed"),
        }
    }

    fn to_io(self) -> io::Error {
        match self {
            Self::Os(errno) => io::Error::from_raw_os_error(errno),
            Self::Kind(kind, msg) => io::Error::new(kind, msg),
        }
    }
}

/// One buffer's write: `len` bytes at file offset `offset`, `done` of them written so far.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    offset: u64,
    len: usize,
    done: usize,
}

/// A snapshot being written to `dir/<temp_name>`: owns the file, its own small io_uring and
/// `queue_depth + 1` page-aligned buffers. Consume it with [`finish`](Self::finish) or
/// [`abort`](Self::abort); dropping it unfinished aborts (waits for in-flight writes, closes,
/// unlinks the temp file).
pub struct SnapshotFile {
    path: PathBuf,
    file: Option<File>,
    direct: bool,
    /// `None` where io_uring is refused (seccomp, `kernel.io_uring_disabled`): each write is
    /// then a plain `pwrite` done at once, and the fsync an `fsync(2)`.
    ring: Option<IoUring>,
    /// One anonymous map per slot. A slot's map is written by us only while the slot is
    /// `current`, and read by the kernel only while its write is in flight.
    buffers: Vec<MmapMut>,
    buffer_bytes: usize,
    slots: Vec<Slot>,
    /// Slots neither in flight nor current.
    free: Vec<usize>,
    /// The slot being filled, `fill` bytes so far.
    current: usize,
    fill: usize,
    /// File offset of the current slot's first byte.
    next_offset: u64,
    /// Logical bytes accepted.
    bytes: u64,
    /// Operations submitted (or pushed to the SQ) whose completion has not been reaped.
    in_flight: usize,
    fsync_result: Option<i32>,
    error: Option<StickyError>,
    /// Set once `abort` starts: completions are reaped but short writes not resubmitted.
    aborting: bool,
    /// Set after `finish` succeeds: Drop leaves the file alone.
    finished: bool,
    fail_after_bytes: Option<u64>,
    max_write_op_bytes: Option<usize>,
    write_ops: u64,
    started: Instant,
    /// End of the space allocated ahead (see "Allocating ahead" in the module docs).
    allocated: u64,
    /// O_DIRECT, and no `fallocate` has failed yet.
    allocate_ahead: bool,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFile")
            .field("path", &self.path)
            .field("direct", &self.direct)
            .field("bytes", &self.bytes)
            .field("in_flight", &self.in_flight)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl SnapshotFile {
    /// Creates (or truncates) `dir/temp_name` with mode 0644, `O_WRONLY|O_CREAT|O_TRUNC|
    /// O_CLOEXEC` (std always adds O_CLOEXEC), plus `O_DIRECT` when `opts.direct` and the
    /// filesystem accepts it. Creates the ring and allocates the buffers up front.
    pub fn create(dir: &Path, temp_name: &str, opts: &WriteOptions) -> io::Result<SnapshotFile> {
        opts.validate()?;
        if temp_name.is_empty() || temp_name.contains('/') {
            return Err(invalid_input("temp_name must be a plain file name"));
        }
        let started = Instant::now();
        let slot_count = opts.queue_depth + 1;
        // At most queue_depth writes (or one fsync) are pending, so this SQ never fills.
        let entries = u32::try_from(slot_count.next_power_of_two()).expect("bounded by MAX");
        // The ring and the buffers first: if the buffers fail, no file is left behind. A
        // ring the kernel refuses means plain writes (the fork child of a server on the
        // epoll backend inherits the seccomp filter that refused the server's rings).
        let ring = if opts.plain_writes {
            None
        } else {
            IoUring::new(entries).ok()
        };
        let buffers = (0..slot_count)
            .map(|_| MmapMut::map_anon(opts.buffer_bytes))
            .collect::<io::Result<Vec<_>>>()?;
        let path = dir.join(temp_name);
        let (file, direct) = open_for_snapshot(&path, opts.direct)?;
        let free = (1..slot_count).rev().collect();
        Ok(SnapshotFile {
            path,
            file: Some(file),
            direct,
            ring,
            buffers,
            buffer_bytes: opts.buffer_bytes,
            slots: vec![Slot::default(); slot_count],
            free,
            current: 0,
            fill: 0,
            next_offset: 0,
            bytes: 0,
            in_flight: 0,
            fsync_result: None,
            error: None,
            aborting: false,
            finished: false,
            fail_after_bytes: opts.fail_after_bytes,
            max_write_op_bytes: opts.max_write_op_bytes,
            write_ops: 0,
            started,
            allocated: 0,
            allocate_ahead: direct,
        })
    }

    /// Appends `bytes`. Copies into the current buffer; each full buffer is submitted as one
    /// write; waits for a completion when `queue_depth` writes are in flight. Returns the
    /// first error any write met (sticky).
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.check()?;
        while !bytes.is_empty() {
            let n = (self.buffer_bytes - self.fill).min(bytes.len());
            let (head, rest) = bytes.split_at(n);
            self.buffers[self.current][self.fill..self.fill + n].copy_from_slice(head);
            self.fill += n;
            self.bytes += n as u64;
            bytes = rest;
            if self.fill == self.buffer_bytes {
                self.issue_current(self.fill)?;
                self.current = self.take_free_slot()?;
            }
        }
        Ok(())
    }

    /// Logical bytes accepted by [`write`](Self::write) so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Whether the file is open with O_DIRECT (false after a fallback).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The temp file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the tail, waits for every write, truncates the O_DIRECT padding away, fsyncs
    /// (`IORING_OP_FSYNC`) and closes. On error the temp file is removed, as by
    /// [`abort`](Self::abort).
    pub fn finish(mut self) -> io::Result<FileStats> {
        let stats = self.finish_inner()?;
        self.finished = true;
        Ok(stats)
        // On error, Drop aborts: drains, closes, unlinks.
    }

    /// Waits for in-flight writes (a write to a file cannot be cancelled once issued; there
    /// are at most `queue_depth`), closes and unlinks the temp file. Never panics.
    pub fn abort(self) {
        drop(self);
    }

    fn finish_inner(&mut self) -> io::Result<FileStats> {
        self.check()?;
        if self.fill > 0 {
            let len = if self.direct {
                self.fill.next_multiple_of(DIRECT_IO_ALIGN_BYTES)
            } else {
                self.fill
            };
            self.buffers[self.current][self.fill..len].fill(0);
            self.issue_current(len)?;
        }
        while self.in_flight > 0 {
            self.wait_for_completion()?;
        }
        self.check()?;
        let file = self.file.as_ref().expect("open until finish or abort");
        if self.next_offset != self.bytes || self.allocated > self.bytes {
            // O_DIRECT padding of the last block, and the space allocated ahead.
            file.set_len(self.bytes)?;
        }
        if self.ring.is_some() {
            let fsync = opcode::Fsync::new(types::Fd(file.as_raw_fd()))
                .build()
                .user_data(FSYNC_USER_DATA);
            self.push(&fsync);
        } else {
            let res = match file.sync_all() {
                Ok(()) => 0,
                Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
            };
            self.fsync_result = Some(res);
        }
        while self.in_flight > 0 {
            self.wait_for_completion()?;
        }
        match self.fsync_result.take() {
            Some(res) if res < 0 => return Err(io::Error::from_raw_os_error(-res)),
            Some(_) => {}
            None => unreachable!("fsync completion reaped"),
        }
        drop(self.file.take());
        Ok(FileStats {
            bytes: self.bytes,
            direct: self.direct,
            elapsed: self.started.elapsed(),
            write_ops: self.write_ops,
        })
    }

    fn check(&self) -> io::Result<()> {
        match self.error {
            Some(err) => Err(err.to_io()),
            None => Ok(()),
        }
    }

    fn set_error(&mut self, err: StickyError) {
        self.error.get_or_insert(err);
    }

    /// Submits the current slot's first `len` bytes at the next file offset.
    fn issue_current(&mut self, len: usize) -> io::Result<()> {
        let slot = self.current;
        let end = self.next_offset + len as u64;
        if self.allocate_ahead && end > self.allocated {
            let file = self.file.as_ref().expect("open while writing");
            let want = end.next_multiple_of(ALLOCATE_AHEAD_BYTES);
            match allocate(file, self.allocated, want - self.allocated) {
                Ok(()) => self.allocated = want,
                // Not supported, or no room for a whole step: write extending instead
                // (the write itself reports a full disk).
                Err(_) => self.allocate_ahead = false,
            }
        }
        self.slots[slot] = Slot {
            offset: self.next_offset,
            len,
            done: 0,
        };
        self.next_offset += len as u64;
        self.fill = 0;
        self.submit_slot(slot);
        self.submit_pending();
        self.check()
    }

    /// A slot to fill next: reaps what has completed, waits while every slot is in flight.
    fn take_free_slot(&mut self) -> io::Result<usize> {
        self.reap();
        loop {
            self.check()?;
            if let Some(slot) = self.free.pop() {
                return Ok(slot);
            }
            self.wait_for_completion()?;
        }
    }

    /// Pushes a write SQE for the unwritten rest of `slot`, applying the test injections.
    /// An injected ENOSPC frees the slot instead.
    fn submit_slot(&mut self, slot: usize) {
        let Slot { offset, len, done } = self.slots[slot];
        let offset = offset + done as u64;
        let mut op_len = len - done;
        if let Some(max) = self.max_write_op_bytes {
            op_len = op_len.min(self.align_down(max).max(self.min_op_bytes()));
        }
        if let Some(limit) = self.fail_after_bytes
            && offset + op_len as u64 > limit
        {
            op_len = self.align_down(limit.saturating_sub(offset) as usize);
            if op_len == 0 {
                self.set_error(StickyError::Os(libc::ENOSPC));
                self.free.push(slot);
                return;
            }
        }
        let fd = self.file.as_ref().expect("open while writing").as_raw_fd();
        if self.ring.is_none() {
            self.write_ops += 1;
            self.in_flight += 1;
            let res = pwrite(fd, &self.buffers[slot][done..done + op_len], offset);
            // A short write's rest is written by `complete`'s call back here.
            self.complete(slot as u64, res);
            return;
        }
        let buf = self.buffers[slot].as_ptr().wrapping_add(done);
        let entry = opcode::Write::new(types::Fd(fd), buf, op_len as u32)
            .offset(offset)
            .build()
            .user_data(slot as u64);
        self.push(&entry);
        self.write_ops += 1;
    }

    fn align_down(&self, n: usize) -> usize {
        if self.direct {
            n - n % DIRECT_IO_ALIGN_BYTES
        } else {
            n
        }
    }

    fn min_op_bytes(&self) -> usize {
        if self.direct {
            DIRECT_IO_ALIGN_BYTES
        } else {
            1
        }
    }

    #[expect(
        unsafe_code,
        reason = "the kernel reads the SQE's buffer after push returns"
    )]
    fn push(&mut self, entry: &squeue::Entry) {
        // SAFETY: a write entry points into `self.buffers[slot]` (an fsync carries no
        // buffer). That slot is off the free list and not `current` until its completion is
        // reaped in `complete`, so nothing writes to the buffer meanwhile; and the buffers
        // are unmapped only after every in-flight operation completed (Drop drains, and
        // leaks the buffers if the ring fails so that it cannot tell).
        let ring = self.ring.as_mut().expect("only ring writes are pushed");
        let pushed = unsafe { ring.submission().push(entry) };
        assert!(
            pushed.is_ok(),
            "SQ holds queue_depth + 1 entries, at most queue_depth are ever pending"
        );
        self.in_flight += 1;
    }

    /// Tells the kernel about pushed SQEs. EAGAIN/EBUSY leave them queued for the next wait.
    fn submit_pending(&mut self) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        loop {
            match ring.submit() {
                Ok(_) => return,
                Err(err) => match err.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN | libc::EBUSY) => return,
                    _ => {
                        self.set_error(StickyError::from_io(&err));
                        return;
                    }
                },
            }
        }
    }

    /// Submits anything pending, waits for at least one completion and reaps.
    fn wait_for_completion(&mut self) -> io::Result<()> {
        debug_assert!(self.in_flight > 0);
        let mut retries = 0;
        loop {
            let Some(ring) = self.ring.as_mut() else {
                // Plain writes complete before they return: nothing is ever in flight.
                return Ok(());
            };
            match ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(err) => match err.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN | libc::EBUSY) if retries < MAX_SUBMIT_RETRIES => {
                        retries += 1;
                        let before = self.in_flight;
                        self.reap();
                        if self.in_flight < before {
                            return Ok(());
                        }
                        std::thread::yield_now();
                    }
                    _ => {
                        self.set_error(StickyError::from_io(&err));
                        return Err(err);
                    }
                },
            }
        }
        self.reap();
        Ok(())
    }

    /// Handles every completion already in the CQ, without waiting.
    fn reap(&mut self) {
        let mut resubmitted = false;
        // The CQ view is dropped (and the head published) before `complete` runs.
        while let Some(cqe) = self.ring.as_mut().and_then(|r| r.completion().next()) {
            resubmitted |= self.complete(cqe.user_data(), cqe.result());
        }
        if resubmitted {
            self.submit_pending();
        }
    }

    /// Accounts one completion; returns whether a short write was resubmitted.
    fn complete(&mut self, user_data: u64, result: i32) -> bool {
        debug_assert!(self.in_flight > 0);
        self.in_flight -= 1;
        if user_data == FSYNC_USER_DATA {
            self.fsync_result = Some(result);
            return false;
        }
        let slot = user_data as usize;
        match result.cmp(&0) {
            std::cmp::Ordering::Less => self.set_error(StickyError::Os(-result)),
            std::cmp::Ordering::Equal => self.set_error(StickyError::Kind(
                io::ErrorKind::WriteZero,
                "snapshot write wrote 0 bytes",
            )),
            std::cmp::Ordering::Greater => {
                let s = &mut self.slots[slot];
                s.done += result as usize;
                assert!(s.done <= s.len, "kernel wrote more than asked");
                if s.done < s.len && self.error.is_none() && !self.aborting {
                    self.submit_slot(slot);
                    return true;
                }
            }
        }
        self.free.push(slot);
        false
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.aborting = true;
        while self.in_flight > 0 {
            if self.wait_for_completion().is_err() {
                // The ring cannot say when the kernel is done with the buffers: leak them
                // rather than unmap memory a write may still read.
                std::mem::forget(std::mem::take(&mut self.buffers));
                break;
            }
        }
        drop(self.file.take());
        let _ = fs::remove_file(&self.path);
    }
}

fn open_for_snapshot(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    let open = |flags: i32| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(flags)
            .open(path)
    };
    if direct {
        match open(libc::O_DIRECT) {
            Ok(file) => return Ok((file, true)),
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {}
            Err(err) => return Err(err),
        }
    }
    Ok((open(0)?, false))
}

/// `pwrite(fd, bytes, offset)`, retried on EINTR: the bytes written, or a negated errno
/// (an io_uring completion's result).
#[expect(unsafe_code, reason = "pwrite is a libc call")]
fn pwrite(fd: i32, bytes: &[u8], offset: u64) -> i32 {
    loop {
        // SAFETY: the slice is valid for reads for the duration of the call.
        let r = unsafe { libc::pwrite(fd, bytes.as_ptr().cast(), bytes.len(), offset as i64) };
        if r >= 0 {
            return i32::try_from(r).unwrap_or(i32::MAX);
        }
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if errno != libc::EINTR {
            return -errno;
        }
    }
}

/// `fallocate(file, 0, offset, len)`: allocates (and extends the file over) the range.
#[expect(unsafe_code, reason = "fallocate is a libc call")]
fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate takes a descriptor we own and plain integers.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset as i64, len as i64) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn invalid_input(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Installs a finished snapshot: `rename(dir/temp_name, dir/final_name)` — atomic, so
/// readers see the old file or the new one, and the old one is replaced only if the rename
/// succeeds — then fsyncs `dir` so the rename itself survives a crash.
pub fn install(dir: &Path, temp_name: &str, final_name: &str) -> io::Result<()> {
    fs::rename(dir.join(temp_name), dir.join(final_name))?;
    sync_dir(dir)
}

/// Start-up cleanup: removes the regular files named `temp-*.rdb` in `dir` (snapshots a crash
/// left half-written) and fsyncs `dir` if it removed any. Returns their paths. Run it before
/// any snapshot starts, and only in a directory no other server writes to.
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_temp = entry.file_name().to_str().is_some_and(is_temp_file_name);
        if !is_temp || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// The disk's write limit along the snapshot's own path: writes `bytes` to a scratch file
/// `dir/temp-direct-probe-<pid>.rdb` with O_DIRECT (forced on; falls back to buffered where
/// refused, then it measures the page cache) and `opts`' buffer size and queue depth,
/// fsyncs, unlinks, and returns bytes per second from create to the end of the fsync. The
/// scratch name matches `temp-*.rdb`, so a crash mid-measure is cleaned up at start-up.
/// Numbers measured with it are in the [module docs](self).
pub fn measure_direct_write_throughput(
    dir: &Path,
    bytes: u64,
    opts: &WriteOptions,
) -> io::Result<f64> {
    let opts = WriteOptions {
        direct: true,
        fail_after_bytes: None,
        max_write_op_bytes: None,
        ..opts.clone()
    };
    let name = format!(
        "{TEMP_FILE_PREFIX}direct-probe-{}{TEMP_FILE_SUFFIX}",
        std::process::id()
    );
    // Not zeros: no filesystem or device may shortcut the data.
    let pattern: Vec<u8> = (0..opts.buffer_bytes)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    let mut file = SnapshotFile::create(dir, &name, &opts)?;
    let mut left = bytes;
    while left > 0 {
        let n = pattern
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        file.write(&pattern[..n])?;
        left -= n as u64;
    }
    let stats = file.finish()?;
    fs::remove_file(dir.join(&name))?;
    Ok(stats.bytes_per_sec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert_eq!(temp_file_name(42), "temp-42.rdb");
        assert!(is_temp_file_name("temp-42.rdb"));
        assert!(is_temp_file_name("temp-direct-probe-7.rdb"));
        assert!(!is_temp_file_name("temp-.rdb"));
        assert!(!is_temp_file_name("dump.rdb"));
        assert!(!is_temp_file_name("temp-1.rdb.bak"));
        assert!(!is_temp_file_name("xtemp-1.rdb"));
    }

    #[test]
    fn options_are_validated() {
        let dir = std::env::temp_dir();
        for bad in [
            WriteOptions {
                buffer_bytes: 1000,
                ..WriteOptions::default()
            },
            WriteOptions {
                buffer_bytes: 0,
                ..WriteOptions::default()
            },
            WriteOptions {
                queue_depth: 0,
                ..WriteOptions::default()
            },
            WriteOptions {
                max_write_op_bytes: Some(0),
                ..WriteOptions::default()
            },
        ] {
            let err = SnapshotFile::create(&dir, "temp-never.rdb", &bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        let err = SnapshotFile::create(&dir, "a/b.rdb", &WriteOptions::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
