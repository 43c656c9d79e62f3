//! The forkless snapshot's writer thread: shard threads hand over serialized chunks without
//! ever blocking, one thread writes them to a [`Target`] (a [`SnapshotFile`], or a
//! replication full sync's sockets) in arrival order and keeps the RDB checksum
//! (CRC-64/Jones) of everything written.
//!
//! Producers are event loops. [`ChunkSender::try_send`] never blocks: when the bounded queue
//! ([`CHUNK_QUEUE_CAPACITY`] chunks) is full it hands the chunk back and the shard retries on
//! a later tick, which is the back-pressure from a slow disk. Emptied chunk buffers come
//! back through [`ChunkSender::recycle`] (a pool of at most [`RECYCLE_POOL_CAPACITY`]), so
//! a warm snapshot allocates nothing per chunk.
//!
//! Besides byte chunks, a producer may queue a [`Piece::Stream`]: a closure the writer
//! runs in its turn, which hands it bytes as it produces them (a large value serialized
//! from a frozen copy, so that the shard that owns it never spends the time). Its bytes
//! land contiguously, between the pieces queued before and after it.
//!
//! The owner ends the snapshot with [`ChunkWriter::close`] (non-blocking; poll
//! [`ChunkWriter::is_done`] each tick) and then [`ChunkWriter::finish`], or throws it away
//! with [`ChunkWriter::cancel`] or the shared cancel flag.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;

use super::{FileStats, SnapshotFile};
use crate::crc64::Crc64;

/// Chunks queued between the producers and the writer thread. With 1 MiB chunks that is
/// 64 MiB in the queue at most.
pub const CHUNK_QUEUE_CAPACITY: usize = 64;
/// Emptied chunk buffers kept for producers to reuse.
pub const RECYCLE_POOL_CAPACITY: usize = 64;
/// A chunk buffer with more capacity than this is freed instead of pooled.
pub const RECYCLED_CHUNK_MAX_BYTES: usize = 4 << 20;
/// The idle writer sleeps at most this long between looks at the cancel flag, which anyone
/// may set without waking it.
const IDLE_PARK_TIMEOUT_MS: u64 = 10;

const FINISH_NONE: u8 = 0;
const FINISH_WITH_CHECKSUM: u8 = 1;
const FINISH_ZERO_CHECKSUM: u8 = 2;

/// Where the writer thread puts the bytes: a [`SnapshotFile`], or any other destination
/// with the same life cycle (a diskless full sync streams to replicas' sockets).
pub trait Target: Send + 'static {
    /// Appends `bytes`; may block (that is the back-pressure on the producers).
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Bytes accepted so far.
    fn bytes_written(&self) -> u64;
    /// The temp file's path; empty when there is no file.
    fn path(&self) -> &std::path::Path;
    /// Everything accepted reached its destination (for a file: durable).
    fn finish(self) -> io::Result<FileStats>;
    /// Throws the output away (for a file: unlinks it). Never panics.
    fn abort(self);
}

impl Target for SnapshotFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        SnapshotFile::write(self, bytes)
    }

    fn bytes_written(&self) -> u64 {
        SnapshotFile::bytes_written(self)
    }

    fn path(&self) -> &std::path::Path {
        SnapshotFile::path(self)
    }

    fn finish(self) -> io::Result<FileStats> {
        SnapshotFile::finish(self)
    }

    fn abort(self) {
        SnapshotFile::abort(self);
    }
}

/// Where a [`Piece::Stream`] sends its bytes: each call appends them to the file. An
/// error (I/O, or the snapshot was cancelled) must end the stream.
pub type StreamSink<'a> = dyn FnMut(&[u8]) -> io::Result<()> + 'a;

/// A producer of bytes run on the writer thread (see the module documentation).
pub type StreamFn = Box<dyn FnOnce(&mut StreamSink<'_>) -> io::Result<()> + Send>;

/// One item of the writer's queue.
pub enum Piece {
    /// Bytes, written as they are.
    Bytes(Vec<u8>),
    /// Bytes produced on the writer thread when their turn comes.
    Stream(StreamFn),
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// Why [`ChunkSender::try_send`] handed the chunk (or piece) back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T = Vec<u8>> {
    /// The queue is full: keep the chunk and retry later.
    Full(T),
    /// The writer takes no more chunks: closed, cancelled, or failed. Stop sending.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The chunk that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(chunk) | Self::Closed(chunk) => chunk,
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> TrySendError<U> {
        match self {
            Self::Full(t) => TrySendError::Full(f(t)),
            Self::Closed(t) => TrySendError::Closed(f(t)),
        }
    }
}

impl<T> std::fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(_) => f.write_str("snapshot chunk queue is full"),
            Self::Closed(_) => f.write_str("snapshot writer is closed"),
        }
    }
}

impl<T: std::fmt::Debug> std::error::Error for TrySendError<T> {}

struct Shared {
    queue: ArrayQueue<Piece>,
    pool: ArrayQueue<Vec<u8>>,
    cancel: Arc<AtomicBool>,
    /// No more chunks accepted. Set before `finish_mode`, and by the writer when it stops.
    closed: AtomicBool,
    finish_mode: AtomicU8,
    /// Producers between their look at `closed` and the end of their push. The writer
    /// finishes only when this is 0 after `closed`, so no accepted chunk is left behind.
    senders: AtomicUsize,
    writer_idle: AtomicBool,
    writer_thread: OnceLock<Thread>,
    done: AtomicBool,
    bytes_written: AtomicU64,
}

impl Shared {
    fn wake_writer(&self) {
        if self.writer_idle.load(Ordering::SeqCst)
            && let Some(thread) = self.writer_thread.get()
        {
            thread.unpark();
        }
    }
}

/// A producer's handle: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct ChunkSender {
    shared: Arc<Shared>,
}

impl ChunkSender {
    /// Queues `chunk` for writing after every chunk accepted before it. Never blocks.
    pub fn try_send(&self, chunk: Vec<u8>) -> Result<(), TrySendError> {
        self.try_send_piece(Piece::Bytes(chunk)).map_err(|e| {
            e.map(|p| match p {
                Piece::Bytes(b) => b,
                Piece::Stream(_) => unreachable!("sent bytes"),
            })
        })
    }

    /// Queues `piece` for writing after every piece accepted before it. Never blocks.
    pub fn try_send_piece(&self, chunk: Piece) -> Result<(), TrySendError<Piece>> {
        let s = &*self.shared;
        s.senders.fetch_add(1, Ordering::SeqCst);
        if s.closed.load(Ordering::SeqCst) || s.cancel.load(Ordering::SeqCst) {
            s.senders.fetch_sub(1, Ordering::SeqCst);
            return Err(TrySendError::Closed(chunk));
        }
        let pushed = s.queue.push(chunk);
        s.senders.fetch_sub(1, Ordering::SeqCst);
        match pushed {
            Ok(()) => {
                // Pairs with the fence after the writer marks itself idle: either it sees
                // the chunk, or we see it idle and unpark it.
                fence(Ordering::SeqCst);
                s.wake_writer();
                Ok(())
            }
            Err(chunk) => Err(TrySendError::Full(chunk)),
        }
    }

    /// An emptied chunk buffer (length 0, capacity kept), if the pool has one.
    pub fn recycle(&self) -> Option<Vec<u8>> {
        self.shared.pool.pop()
    }

    /// Whether the writer takes no more chunks.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst) || self.shared.cancel.load(Ordering::SeqCst)
    }
}

/// A [`Target`] (a [`SnapshotFile`] usually) written by a dedicated thread from chunks sent by several threads.
/// `Sync`: producers may share `&ChunkWriter`, or hold [`ChunkSender`]s. Dropping it
/// unfinished cancels it.
pub struct ChunkWriter {
    sender: ChunkSender,
    path: PathBuf,
    thread: Option<JoinHandle<io::Result<FileStats>>>,
}

impl ChunkWriter {
    /// Starts the writer thread (named `snapshot-writer`), which owns `file` from now on.
    pub fn spawn(file: SnapshotFile) -> io::Result<ChunkWriter> {
        Self::spawn_with(file, || {})
    }

    /// [`ChunkWriter::spawn`], with `setup` run first on the writer thread (e.g. to move
    /// it off the spawning thread's CPU pin).
    pub fn spawn_with(
        file: impl Target,
        setup: impl FnOnce() + Send + 'static,
    ) -> io::Result<ChunkWriter> {
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(CHUNK_QUEUE_CAPACITY),
            pool: ArrayQueue::new(RECYCLE_POOL_CAPACITY),
            cancel: Arc::new(AtomicBool::new(false)),
            closed: AtomicBool::new(false),
            finish_mode: AtomicU8::new(FINISH_NONE),
            senders: AtomicUsize::new(0),
            writer_idle: AtomicBool::new(false),
            writer_thread: OnceLock::new(),
            done: AtomicBool::new(false),
            bytes_written: AtomicU64::new(0),
        });
        let path = file.path().to_path_buf();
        let for_thread = Arc::clone(&shared);
        // If spawning fails the closure, and the file in it, is dropped: the file aborts.
        let thread = thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || {
                setup();
                let _done = DoneOnDrop(&for_thread.done);
                run_writer(&for_thread, file)
            })?;
        shared
            .writer_thread
            .set(thread.thread().clone())
            .expect("set once, here");
        Ok(ChunkWriter {
            sender: ChunkSender { shared },
            path,
            thread: Some(thread),
        })
    }

    /// A handle for a producer thread.
    pub fn sender(&self) -> ChunkSender {
        self.sender.clone()
    }

    /// [`ChunkSender::try_send`] through the writer itself.
    pub fn try_send(&self, chunk: Vec<u8>) -> Result<(), TrySendError> {
        self.sender.try_send(chunk)
    }

    /// [`ChunkSender::try_send_piece`] through the writer itself.
    pub fn try_send_piece(&self, piece: Piece) -> Result<(), TrySendError<Piece>> {
        self.sender.try_send_piece(piece)
    }

    /// [`ChunkSender::recycle`] through the writer itself.
    pub fn recycle(&self) -> Option<Vec<u8>> {
        self.sender.recycle()
    }

    /// The flag that cancels the snapshot when set (from any thread, e.g. a signal-driven
    /// shutdown path); the writer notices within 10 ms (`IDLE_PARK_TIMEOUT_MS`) or at its next
    /// chunk, aborts the file and unlinks it.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.sender.shared.cancel)
    }

    /// Bytes the writer has handed to the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.sender.shared.bytes_written.load(Ordering::Relaxed)
    }

    /// The temp file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Ends the input without blocking: chunks accepted before this call are written, then
    /// the 8-byte trailer — the little-endian CRC-64 of everything written when
    /// `write_checksum`, else 8 zero bytes (Redis's `rdbchecksum no`) — then the file is
    /// finished (fsync, close). Later `try_send`s get `Closed`. Poll [`is_done`](Self::is_done),
    /// then collect the result with [`finish`](Self::finish). Only the first close counts.
    pub fn close(&self, write_checksum: bool) {
        let s = &*self.sender.shared;
        s.closed.store(true, Ordering::SeqCst);
        let mode = if write_checksum {
            FINISH_WITH_CHECKSUM
        } else {
            FINISH_ZERO_CHECKSUM
        };
        let _ =
            s.finish_mode
                .compare_exchange(FINISH_NONE, mode, Ordering::SeqCst, Ordering::SeqCst);
        s.writer_thread.get().expect("set by spawn").unpark();
    }

    /// Whether the writer thread has stopped (finished, failed or cancelled), so that
    /// [`finish`](Self::finish) will not block.
    pub fn is_done(&self) -> bool {
        self.sender.shared.done.load(Ordering::Acquire)
    }

    /// [`close`](Self::close)s (if not yet), waits for the writer and returns the file's
    /// stats, or the first error (the temp file is then removed). Blocks until the data is
    /// durable: from an event loop call it once `is_done()`.
    pub fn finish(mut self, write_checksum: bool) -> io::Result<FileStats> {
        self.close(write_checksum);
        self.join()
    }

    /// Cancels: the writer drops queued chunks, waits for in-flight writes, unlinks the temp
    /// file. Blocks for at most `queue_depth` writes. If the writer had already finished
    /// the file, the finished temp file is removed too.
    pub fn cancel(mut self) {
        self.cancel_and_join();
    }

    fn cancel_and_join(&mut self) {
        let s = &*self.sender.shared;
        s.cancel.store(true, Ordering::SeqCst);
        s.closed.store(true, Ordering::SeqCst);
        s.writer_thread.get().expect("set by spawn").unpark();
        if let Ok(_finished) = self.join()
            && !self.path.as_os_str().is_empty()
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn join(&mut self) -> io::Result<FileStats> {
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("snapshot writer thread panicked")))
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.cancel_and_join();
        }
    }
}

/// Sets `done` when the writer thread ends, normally or by panic.
struct DoneOnDrop<'a>(&'a AtomicBool);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "snapshot cancelled")
}

/// The writer thread: chunks in arrival order, the trailer, finish. Any error or a cancel
/// closes the queue and aborts the file.
fn run_writer(s: &Shared, mut file: impl Target) -> io::Result<FileStats> {
    let result = write_chunks(s, &mut file);
    s.closed.store(true, Ordering::SeqCst);
    match result {
        Ok(trailer) => {
            file.write(&trailer)?;
            s.bytes_written
                .store(file.bytes_written(), Ordering::Relaxed);
            file.finish()
        }
        Err(err) => {
            file.abort();
            Err(err)
        }
    }
}

/// Writes chunks until the input is closed and drained; returns the 8-byte trailer.
fn write_chunks(s: &Shared, file: &mut impl Target) -> io::Result<[u8; 8]> {
    let mut crc = Crc64::new();
    loop {
        if s.cancel.load(Ordering::SeqCst) {
            return Err(cancelled());
        }
        match s.queue.pop() {
            Some(Piece::Bytes(mut chunk)) => {
                crc.update(&chunk);
                file.write(&chunk)?;
                s.bytes_written
                    .store(file.bytes_written(), Ordering::Relaxed);
                chunk.clear();
                if chunk.capacity() <= RECYCLED_CHUNK_MAX_BYTES {
                    let _ = s.pool.push(chunk);
                }
                continue;
            }
            Some(Piece::Stream(produce)) => {
                produce(&mut |bytes: &[u8]| {
                    if s.cancel.load(Ordering::Relaxed) {
                        return Err(cancelled());
                    }
                    crc.update(bytes);
                    file.write(bytes)?;
                    s.bytes_written
                        .store(file.bytes_written(), Ordering::Relaxed);
                    Ok(())
                })?;
                continue;
            }
            None => {}
        }
        let mode = s.finish_mode.load(Ordering::SeqCst);
        if mode != FINISH_NONE && s.senders.load(Ordering::SeqCst) == 0 {
            // `closed` was set before `finish_mode`; every producer that got past it has
            // completed its push (senders is 0), so one last look at the queue settles it.
            if !s.queue.is_empty() {
                continue;
            }
            return Ok(if mode == FINISH_WITH_CHECKSUM {
                crc.value().to_le_bytes()
            } else {
                [0; 8]
            });
        }
        if mode != FINISH_NONE {
            // A producer is mid-push; it will be done in a moment.
            thread::yield_now();
            continue;
        }
        s.writer_idle.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let idle = s.queue.is_empty()
            && s.finish_mode.load(Ordering::SeqCst) == FINISH_NONE
            && !s.cancel.load(Ordering::SeqCst);
        if idle {
            thread::park_timeout(Duration::from_millis(IDLE_PARK_TIMEOUT_MS));
        }
        s.writer_idle.store(false, Ordering::SeqCst);
    }
}
