//! The per-core event loop: one io_uring per shard thread, a plain loop over completions.
//!
//! Each iteration: handle every completion (accepts, receives, sends, wake-ups, signals),
//! drain the shard's inbox, run the periodic tick when due, then for every connection touched
//! arm its receive and its send, push the cross-shard batches (each wake-up an
//! `IORING_OP_MSG_RING` in the same submission), and make one `io_uring_enter` that submits
//! everything and waits. Under load that is at most one syscall per iteration, whatever the
//! number of connections.
//!
//! The reactor knows nothing of commands: a [`Service`] gets the bytes and writes replies.

use crate::bufring::{BUF_GROUP, BufRing};
use crate::mailbox::{MAILBOX_DRAIN_BATCHES, Mailboxes, Outbox};
use crate::sys;
use crate::transport::{Transport, TransportError, Wrapped};
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod epoll;
pub use epoll::{ACCEPTS_PER_ITERATION, EPOLL_EVENTS_PER_WAIT, EpollReactor};

/// Submission queue size of each shard's ring.
pub const RING_SQ_ENTRIES: u32 = 4096;
/// Completion queue size of each shard's ring (the kernel buffers overflow beyond it).
pub const RING_CQ_ENTRIES: u32 = 16384;
/// Minimum free space in a connection's input buffer when a receive is armed.
pub const RECV_MIN_SPARE_BYTES: usize = 16 * 1024;
/// Largest single receive; a request bigger than this arrives over several receives.
pub const RECV_MAX_BYTES: usize = 1024 * 1024;
/// Pending output above which the reactor stops reading from a connection until the client
/// drains it: a client that pipelines without reading cannot grow our memory without bound.
pub const OUTPUT_BACKPRESSURE_BYTES: usize = 64 * 1024 * 1024;
/// How long a graceful shutdown waits for connections to drain before closing them anyway.
pub const SHUTDOWN_DRAIN_TIMEOUT_MS: u64 = 5000;
/// Registered-file slots per shard: connections with an index below it use a fixed file
/// for their sends and receives (no file lookup and reference count per operation); the
/// rest use their plain descriptor.
pub const FIXED_FILE_SLOTS: u32 = 16384;
/// The most connections one shard holds (the connection index has 24 bits in `user_data`).
pub const MAX_CONNS_PER_SHARD: usize = 1 << 24;
/// After an accept fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM), the shard stops accepting for this long: the connection stays in the backlog,
/// and accepting again at once would fail again in a busy loop.
pub const ACCEPT_BACKOFF_MS: u64 = 100;
/// Accept failures are reported to the service at most once per this interval per shard
/// (with the count of those not reported), so a descriptor shortage cannot flood the log.
pub const ACCEPT_ERROR_REPORT_INTERVAL_MS: u64 = 10_000;

// user_data layout: op in bits 0..8, connection index in 8..32, generation in 32..64.
const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;
const OP_WAKE: u64 = 4;
const OP_SIGNAL: u64 = 5;
const OP_CANCEL: u64 = 6;
const OP_MSG_RING: u64 = 7;
const OP_TICK: u64 = 8;
const OP_WATCH: u64 = 9;

fn token(op: u64, index: u32, generation: u32) -> u64 {
    op | (u64::from(index) << 8) | (u64::from(generation) << 32)
}

/// Closes the socket an accept completion `res` delivered, if it delivered one.
fn close_accepted(res: i32) {
    if res >= 0 {
        sys::close(res);
    }
}

fn untoken(ud: u64) -> (u64, u32, u32) {
    (ud & 0xff, ((ud >> 8) & 0xff_ffff) as u32, (ud >> 32) as u32)
}

/// Identifies a connection within a shard; stale ids (of closed connections) never match a
/// new connection in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub index: u32,
    pub generation: u32,
}

/// A connection's input: bytes received and not yet consumed. The kernel writes into the
/// spare capacity while a receive is in flight, so consumers only advance `start`.
#[derive(Default)]
pub struct InBuf {
    buf: Vec<u8>,
    start: usize,
    want: usize,
    /// A receive may be writing into the spare capacity (from `prepare_recv` until its
    /// operation ended): the allocation must not move.
    lent: bool,
}

impl InBuf {
    /// The bytes received and not yet consumed.
    #[inline]
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks the first `n` bytes of [`Self::data`] as consumed.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.buf.len() - self.start, "consumed past the input");
        self.start += n;
    }

    /// Unconsumed bytes.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parser knows that `total` unconsumed bytes are needed before the next request can
    /// complete: grow the buffer once instead of many times.
    pub fn want_total(&mut self, total: usize) {
        self.want = total;
    }

    /// Bytes allocated for this buffer.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives back the allocation beyond `keep` bytes (never below the unconsumed input;
    /// `keep` 0 with nothing unconsumed frees it): Redis's query buffer resize. Returns
    /// false, changing nothing, while a receive may be writing into the buffer.
    pub fn shrink_to(&mut self, keep: usize) -> bool {
        if self.lent {
            return false;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        let target = keep.max(self.buf.len());
        if target == 0 {
            self.buf = Vec::new();
        } else if target < self.buf.capacity() {
            self.buf.shrink_to(target);
        }
        true
    }

    /// The receive that [`Self::prepare_recv`] lent the spare capacity to has ended.
    pub(crate) fn end_lend(&mut self) {
        self.lent = false;
    }

    /// Makes room for the next receive. Only called while no receive is in flight.
    pub(crate) fn prepare_recv(&mut self) -> (*mut u8, usize) {
        self.shrink_if_idle();
        if self.start > 0 && self.buf.capacity() - self.buf.len() < RECV_MIN_SPARE_BYTES {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        let needed = self
            .want
            .saturating_sub(self.len())
            .max(RECV_MIN_SPARE_BYTES);
        if self.buf.capacity() - self.buf.len() < needed {
            self.buf.reserve(needed);
        }
        let spare = (self.buf.capacity() - self.buf.len()).min(RECV_MAX_BYTES);
        let ptr = self.buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        self.lent = true;
        (ptr, spare)
    }

    /// Appends bytes received into a provided buffer (multishot receive mode, where the
    /// kernel never writes into this buffer, so it may move), or bytes a test or fuzzer
    /// feeds a [`Conn::detached`].
    pub fn append(&mut self, data: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(RECV_MIN_SPARE_BYTES.max(data.len()));
        }
        // A big request announced its size: grow once to it, not by doubling (an
        // allocation twice the request would stay with the connection until it is idle).
        let need = self.want.saturating_sub(self.len());
        if need > data.len() && self.buf.capacity() - self.buf.len() < need {
            self.buf.reserve_exact(need);
        }
        self.buf.extend_from_slice(data);
        self.settle_want();
    }

    /// The announced request is complete: forget its size.
    fn settle_want(&mut self) {
        if self.want <= self.len() {
            self.want = 0;
        }
    }

    /// Empties a fully consumed buffer, and gives the memory of one that grew for a big
    /// request back (an idle connection keeps no large buffer).
    fn shrink_if_idle(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > 4 * RECV_MAX_BYTES {
                self.buf = Vec::new();
            }
        }
    }

    /// The kernel wrote `n` bytes into the spare capacity.
    #[expect(
        unsafe_code,
        reason = "extends the Vec over bytes the kernel initialised"
    )]
    pub(crate) fn commit_recv(&mut self, n: usize) {
        assert!(n <= self.buf.capacity() - self.buf.len());
        // SAFETY: the receive wrote exactly n initialised bytes right after len, inside the
        // capacity (asserted), and the buffer was not touched while it was in flight.
        unsafe { self.buf.set_len(self.buf.len() + n) };
        self.settle_want();
    }
}

/// One client connection owned by a shard.
pub struct Conn<S> {
    pub fd: RawFd,
    pub peer: Option<SocketAddr>,
    pub input: InBuf,
    /// Replies written by the service; the reactor sends them at the end of the iteration.
    pub output: Vec<u8>,
    /// The service's per-connection state.
    pub state: S,
    /// Set by the service to stop receiving (e.g. too many replies outstanding).
    pub read_paused: bool,
    /// When (Unix ms, the loop's clock) a send last moved reply bytes to the kernel: a
    /// client reading a long reply is not idle (`timeout`). 0 before the first.
    pub last_send_ms: i64,
    /// Bytes the socket took from the output so far (wire bytes under TLS): CLIENT
    /// LIST's `tot-net-out`.
    pub sent_bytes: u64,
    sending: Vec<u8>,
    sent: usize,
    /// The registered-file slot of this connection's socket, if it has one.
    fixed: Option<u32>,
    /// The connection's TLS session: `sending` then holds records, `input` plaintext.
    transport: Option<Box<Wrapped>>,
    recv_inflight: bool,
    send_inflight: bool,
    cancel_sent: bool,
    /// Close once the output is flushed.
    closing: bool,
    /// The peer shut down its sending side (a receive returned 0): no more requests come,
    /// but the replies to those received are still wanted. Nothing is received any more.
    input_ended: bool,
    /// The peer is gone or the socket failed: drop output, close as soon as no op is in flight.
    broken: bool,
    dirty: bool,
    /// Epoll backend: the socket was reported readable and no read since came up short.
    ready_in: bool,
    /// Epoll backend: the peer's end of input (or an error) was reported: read until it
    /// shows, however short the reads.
    peer_hup: bool,
    /// Epoll backend: the socket takes writes (false after `EAGAIN` until `EPOLLOUT`).
    ready_out: bool,
    generation: u32,
    index: u32,
}

impl<S> Conn<S> {
    /// Moves what the service wrote into `sending` once the last send took all of it: the
    /// buffers swap places, or, through a [`Transport`], the plaintext is sealed into
    /// records (which replace it on the wire).
    #[inline]
    fn stage_output(&mut self) {
        if let Some(t) = self.transport.as_deref_mut() {
            if self.sent >= self.sending.len() {
                self.sending.clear();
                self.sent = 0;
                if t.failed.is_some() {
                    self.output.clear();
                }
                t.session.seal(&mut self.output, &mut self.sending);
            }
        } else if self.sending.is_empty() && !self.output.is_empty() {
            std::mem::swap(&mut self.sending, &mut self.output);
            self.sent = 0;
        }
    }

    /// A connection without a socket or a reactor, with id `index` (generation 0): input
    /// is fed with [`InBuf::append`] and output read from `output`. For driving a
    /// service's request handling in unit tests and fuzz targets; the reactor never sees it.
    #[must_use]
    pub fn detached(index: u32, state: S) -> Self {
        Self {
            fd: -1,
            peer: None,
            input: InBuf::default(),
            output: Vec::new(),
            state,
            read_paused: false,
            last_send_ms: 0,
            sent_bytes: 0,
            sending: Vec::new(),
            sent: 0,
            fixed: None,
            transport: None,
            recv_inflight: false,
            send_inflight: false,
            cancel_sent: false,
            closing: false,
            input_ended: false,
            broken: false,
            dirty: false,
            ready_in: false,
            peer_hup: false,
            ready_out: true,
            generation: 0,
            index,
        }
    }

    #[must_use]
    pub fn id(&self) -> ConnId {
        ConnId {
            index: self.index,
            generation: self.generation,
        }
    }

    /// Whether the connection speaks through a [`Transport`] (TLS).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.transport.is_some()
    }

    /// Takes the connection's session (one that did not fail) off it: for a closed
    /// connection ([`Service::on_close`]) whose socket lives on elsewhere (a duplicate
    /// descriptor). No receive is in flight then, so every record the peer sent so far
    /// went through the session.
    pub fn take_transport(&mut self) -> Option<Box<dyn Transport>> {
        let t = self.transport.take()?;
        t.failed.is_none().then_some(t.session)
    }

    /// Why the connection's session failed, if it did (the connection is closing).
    #[must_use]
    pub fn transport_error(&self) -> Option<&TransportError> {
        self.transport.as_ref().and_then(|t| t.failed.as_ref())
    }

    /// Reply bytes written but not yet acknowledged by the kernel.
    #[must_use]
    pub fn pending_output(&self) -> usize {
        self.output.len() + self.sending.len() - self.sent
    }

    /// Whether the connection is on its way out (QUIT, kill, peer gone, shutdown).
    #[must_use]
    pub fn is_closing(&self) -> bool {
        self.closing || self.broken
    }

    /// Whether the peer ended its input (half-close or close): the service runs what it
    /// received, sends every reply, then closes ([`Self::close_after_flush`]).
    #[must_use]
    pub fn input_ended(&self) -> bool {
        self.input_ended
    }

    /// Close after the pending output is sent.
    pub fn close_after_flush(&mut self) {
        self.closing = true;
    }

    /// Close now, dropping the output: the socket is shut down so that a send the peer
    /// never drains (a slow subscriber's) ends at once instead of holding the close.
    pub fn close_now(&mut self) {
        self.broken = true;
        self.output.clear();
        sys::shutdown_both(self.fd);
    }
}

/// A socket handed to a shard by [`Io::adopt`]: descriptor, bytes already read from it,
/// its session.
type Adopted = (RawFd, Vec<u8>, Option<Box<dyn Transport>>);

struct Slot<S> {
    generation: u32,
    conn: Option<Conn<S>>,
}

/// Counters of one shard's loop: plain integers bumped on the hot path (no atomics; the
/// shard's own thread is the only writer). The service reads them through
/// [`Io::loop_stats`] and publishes what it wants elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Loop iterations.
    pub iterations: u64,
    /// `io_uring_enter` calls (one per iteration, plus early submits and submits of a full
    /// submission queue).
    pub enters: u64,
    /// Completions reaped.
    pub completions: u64,
    /// Cross-shard messages and batches pushed into other shards' inboxes.
    pub messages_sent: u64,
    pub batches_sent: u64,
    /// Cross-shard messages and batches taken from this shard's inbox.
    pub messages_received: u64,
    pub batches_received: u64,
    /// Nanoseconds spent in the loop outside the waiting `io_uring_enter`.
    pub busy_ns: u64,
    /// Nanoseconds spent inside the waiting `io_uring_enter` (blocked, plus the kernel's
    /// inline submission work).
    pub idle_ns: u64,
    /// The busiest iteration's busy time since the service last took the peaks
    /// ([`Io::take_peaks`]).
    pub peak_iteration_ns: u64,
    /// The longest a stamped batch waited in this shard's inbox since the peaks were last
    /// taken (0 unless [`Io::stamp_mail`] is on in the sending shards).
    pub peak_mailbox_wait_ns: u64,
    /// Nanoseconds spent spinning for mail before a wait, and the spins that got mail
    /// ([`Io::spin_for_mail`]).
    pub spin_ns: u64,
    pub spin_hits: u64,
}

/// What every shard thread shares: the inboxes and the shutdown state.
pub struct Shared<M> {
    pub mailboxes: Mailboxes<M>,
    shutdown: AtomicBool,
    shards_draining: AtomicUsize,
}

impl<M> Shared<M> {
    #[must_use]
    pub fn new(shards: usize) -> Self {
        Self {
            mailboxes: Mailboxes::new(shards),
            shutdown: AtomicBool::new(false),
            shards_draining: AtomicUsize::new(shards),
        }
    }

    #[must_use]
    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// The most of a shard's time spent spinning for mail ([`Io::spin_for_mail`]), per cent,
/// measured over windows of [`SPIN_WINDOW_NS`].
pub const SPIN_MAX_SHARE_PCT: u64 = 10;
/// The window the spin share is counted over, in nanoseconds.
pub const SPIN_WINDOW_NS: u64 = 100_000_000;
/// `spin_loop` hints between two looks at the inbox while spinning.
const SPIN_CHECK_PAUSES: u32 = 16;

/// The service's view of its shard's I/O state: connections, outgoing messages, time.
pub struct Io<M, S> {
    pub shard: usize,
    pub shards: usize,
    /// Wall-clock time of this loop iteration, in Unix milliseconds (the monotonic clock
    /// plus an offset to the wall clock taken again at every tick).
    pub now_ms: i64,
    /// Monotonic time of this loop iteration.
    pub now: Instant,
    /// The same instant as `now`, as `CLOCK_MONOTONIC` nanoseconds
    /// ([`sys::monotonic_ns`]).
    pub now_ns: u64,
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    dirty: Vec<u32>,
    live: usize,
    outbox: Outbox<M>,
    shared: Arc<Shared<M>>,
    wake_all: bool,
    /// Descriptors to poll for readability, with the service's tag (see `watch_readable`).
    watches: Vec<(RawFd, u32)>,
    /// Connected sockets handed to this shard, with bytes already read from them and
    /// their session, if any (see `adopt`).
    adopted: Vec<Adopted>,
    /// The longest the next wait may block (see `wake_within`).
    max_wait: Option<Duration>,
    /// Submit queued operations before `after_flush` (see `submit_before_blocking`).
    submit_early: bool,
    stats: LoopStats,
    /// Stamp outgoing batches with the time they leave (see `stamp_mail`).
    stamp_mail: bool,
    /// Listeners to put in place of this shard's from an index on (see
    /// `replace_listeners`).
    listener_swap: Option<(usize, Vec<RawFd>)>,
    /// How long the coming wait may first spin on the inbox (see `spin_for_mail`).
    spin_ns: u64,
    /// Inside a nested poll ([`NestedPoll`]): the connection table must not grow.
    nested: bool,
}

impl<M, S> Io<M, S> {
    /// Pushes the outbox's batches into their shards' mailboxes (and, after `wake_all`,
    /// marks every other shard notified); returns the shards to wake, which each backend
    /// wakes its own way (MSG_RING, eventfd).
    fn push_outbox(&mut self) -> Vec<usize> {
        let shared = Arc::clone(&self.shared);
        let mut wakes: Vec<usize> = Vec::new();
        if std::mem::take(&mut self.wake_all) {
            for s in 0..self.shards {
                if s != self.shard && shared.mailboxes.mark_notified(s) {
                    wakes.push(s);
                }
            }
        }
        let sent_ns = if self.stamp_mail && !self.outbox.is_empty() {
            sys::monotonic_ns()
        } else {
            0
        };
        let pushed = self
            .outbox
            .flush_stamped(&shared.mailboxes, sent_ns, |s| wakes.push(s));
        self.stats.batches_sent += pushed.batches;
        self.stats.messages_sent += pushed.messages;
        wakes
    }

    /// The state of shard `shard`'s loop at `now` (`now_ns` on the monotonic clock).
    fn new(shard: usize, shared: Arc<Shared<M>>, now: Instant, now_ns: u64) -> Self {
        let shards = shared.mailboxes.shards();
        Self {
            shard,
            shards,
            now_ms: unix_ms(),
            now,
            now_ns,
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            live: 0,
            outbox: Outbox::new(shards),
            shared,
            wake_all: false,
            watches: Vec::new(),
            adopted: Vec::new(),
            max_wait: None,
            submit_early: false,
            stats: LoopStats::default(),
            stamp_mail: false,
            listener_swap: None,
            spin_ns: 0,
            nested: false,
        }
    }

    /// Replaces this shard's listeners from index `from` on with `fds` (bound and
    /// listening), after the current tick (CONFIG SET port/bind): accepting stops on the
    /// old ones, which are closed; connections they accepted stay. The reactor owns `fds`
    /// from here.
    pub fn replace_listeners(&mut self, from: usize, fds: Vec<RawFd>) {
        if let Some((_, old)) = self.listener_swap.replace((from, fds)) {
            for fd in old {
                sys::close(fd);
            }
        }
    }

    /// The id the next connection inserted will get (the service learns it before the
    /// connection exists, in `on_accept`).
    fn next_conn_id(&self) -> ConnId {
        let index = self.free.last().copied().unwrap_or(self.slots.len() as u32);
        ConnId {
            index,
            generation: self
                .slots
                .get(index as usize)
                .map_or(1, |s| s.generation.wrapping_add(1)),
        }
    }

    /// Makes `fd` a live connection, marked for the end-of-iteration flush.
    fn insert_conn(
        &mut self,
        fd: RawFd,
        peer: Option<SocketAddr>,
        state: S,
        transport: Option<Box<dyn Transport>>,
    ) -> ConnId {
        let index = if let Some(i) = self.free.pop() {
            i
        } else {
            self.slots.push(Slot {
                generation: 0,
                conn: None,
            });
            if !self.nested && self.slots.capacity() - self.slots.len() < SPARE_CONN_SLOTS / 2 {
                // Room for the connections a nested poll may take (it cannot grow this).
                self.slots.reserve(SPARE_CONN_SLOTS);
            }
            (self.slots.len() - 1) as u32
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let mut conn = Conn::detached(index, state);
        conn.fd = fd;
        conn.peer = peer;
        conn.transport = transport.map(|t| Box::new(Wrapped::new(t)));
        conn.dirty = true;
        conn.generation = slot.generation;
        slot.conn = Some(conn);
        self.dirty.push(index);
        self.live += 1;
        ConnId {
            index,
            generation: slot.generation,
        }
    }

    /// One step of a graceful shutdown's drain, run every iteration once it started at
    /// `since`: drops connections that would not drain in [`SHUTDOWN_DRAIN_TIMEOUT_MS`],
    /// counts this shard out once it has none (`counted`; the caller then flushes its
    /// outbox, which wakes every shard), and returns whether the loop may end.
    fn drain_step(&mut self, since: Instant, counted: &mut bool) -> (bool, bool) {
        let timed_out =
            self.now.duration_since(since) > Duration::from_millis(SHUTDOWN_DRAIN_TIMEOUT_MS);
        if timed_out && self.live > 0 {
            // Connections that would not drain: drop them.
            self.for_each_conn(|c| {
                c.broken = true;
                c.output.clear();
            });
        }
        let mut flush = false;
        if self.live == 0 && !*counted {
            *counted = true;
            self.shared.shards_draining.fetch_sub(1, Ordering::AcqRel);
            self.wake_all = true;
            flush = true;
        }
        let done =
            *counted && (self.shared.shards_draining.load(Ordering::Acquire) == 0 || timed_out);
        (done, flush)
    }

    /// Whether a nested poll may take a new connection: a free slot, or room to add one
    /// without moving the others.
    fn room_nested(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < self.slots.capacity()
    }

    /// The live connection `id`, marked for the end-of-iteration flush.
    #[inline]
    pub fn conn(&mut self, id: ConnId) -> Option<&mut Conn<S>> {
        touch(&mut self.slots, &mut self.dirty, id)
    }

    /// A connection and the outbox at once, for services that forward while they parse.
    #[inline]
    pub fn conn_and_outbox(&mut self, id: ConnId) -> (Option<&mut Conn<S>>, &mut Outbox<M>) {
        (
            touch(&mut self.slots, &mut self.dirty, id),
            &mut self.outbox,
        )
    }

    /// The outbox: messages for other shards, which leave at the end of this iteration.
    #[inline]
    pub fn outbox(&mut self) -> &mut Outbox<M> {
        &mut self.outbox
    }

    /// Queues a message for another shard; it leaves at the end of this iteration.
    #[inline]
    pub fn send(&mut self, shard: usize, msg: M) {
        debug_assert_ne!(shard, self.shard, "a shard never mails itself");
        self.outbox.send(shard, msg);
    }

    /// Live connections on this shard.
    #[must_use]
    pub fn live_conns(&self) -> usize {
        self.live
    }

    /// Calls `f` for every live connection (CLIENT LIST, idle timeouts).
    pub fn for_each_conn(&mut self, mut f: impl FnMut(&mut Conn<S>)) {
        for slot in &mut self.slots {
            if let Some(conn) = slot.conn.as_mut() {
                f(conn);
                if !conn.dirty {
                    conn.dirty = true;
                    self.dirty.push(conn.index);
                }
            }
        }
    }

    /// Starts a graceful shutdown of every shard: stop accepting, finish in-flight replies,
    /// close connections, return from [`Reactor::run`].
    pub fn request_shutdown(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.wake_all = true;
    }

    /// Whether a shutdown is under way.
    #[must_use]
    pub fn shutting_down(&self) -> bool {
        self.shared.shutting_down()
    }

    /// Polls `fd` for readability once on the ring; [`Service::on_readable`] gets `tag`
    /// (24 bits)
    /// when it is (a pidfd becomes readable when its process exits). The descriptor must
    /// stay open until then.
    pub fn watch_readable(&mut self, fd: RawFd, tag: u32) {
        self.watches.push((fd, tag));
    }

    /// Takes a socket this process connected (a replica's link to its primary) as one of
    /// this shard's connections, as if accepted: [`Service::on_accept`] creates its state
    /// and [`Service::on_input`] sees `already_read` (bytes read from it before) first. It
    /// joins at the end of this iteration; the descriptor is the reactor's from now on.
    /// `transport` is the session the socket already speaks (a TLS link whose handshake
    /// the caller made): its records go through it from here on.
    pub fn adopt(
        &mut self,
        fd: RawFd,
        already_read: Vec<u8>,
        transport: Option<Box<dyn Transport>>,
    ) {
        self.adopted.push((fd, already_read, transport));
        self.max_wait = Some(Duration::ZERO);
    }

    /// Before the coming wait, spin up to `ns` on this shard's inbox (io_uring backend):
    /// mail arriving meanwhile (the answer to a request sent to another shard, the next
    /// request from it) is taken at once instead of after a sleep and a scheduler
    /// wake-up. Set each iteration by the service (0: no spin); the spin ends at the
    /// first mail or at `ns`, and a shard spins at most [`SPIN_MAX_SHARE_PCT`] % of its
    /// time (socket completions are not seen while spinning: they wait at most `ns`).
    pub fn spin_for_mail(&mut self, ns: u64) {
        self.spin_ns = ns;
    }

    /// The next wait blocks for at most `d` (zero: does not block), for background work
    /// done between iterations.
    pub fn wake_within(&mut self, d: Duration) {
        self.max_wait = Some(self.max_wait.map_or(d, |m| m.min(d)));
    }

    /// Submits this iteration's operations (sends, cross-shard wake-ups) to the kernel
    /// before [`Service::after_flush`], for a service about to block there: other shards
    /// must get their wake-ups first.
    pub fn submit_before_blocking(&mut self) {
        self.submit_early = true;
    }

    /// This shard's loop counters.
    #[must_use]
    pub fn loop_stats(&self) -> &LoopStats {
        &self.stats
    }

    /// The peaks of [`LoopStats`] since the last call, as (busiest iteration, longest
    /// mailbox wait) in nanoseconds; both restart from zero.
    pub fn take_peaks(&mut self) -> (u64, u64) {
        let peaks = (
            self.stats.peak_iteration_ns,
            self.stats.peak_mailbox_wait_ns,
        );
        self.stats.peak_iteration_ns = 0;
        self.stats.peak_mailbox_wait_ns = 0;
        peaks
    }

    /// Stamps this shard's outgoing batches with the time they leave, so receivers can
    /// measure how long mail waits (one clock read per iteration that sends; off by
    /// default).
    pub fn stamp_mail(&mut self, on: bool) {
        self.stamp_mail = on;
    }

    /// True while messages to other shards wait in the outbox (a full mailbox).
    #[must_use]
    pub fn outbox_pending(&self) -> bool {
        !self.outbox.is_empty()
    }
}

/// The live connection `id` of `slots`, marked in `dirty` for the end-of-iteration flush.
#[inline]
fn touch<'a, S>(
    slots: &'a mut [Slot<S>],
    dirty: &mut Vec<u32>,
    id: ConnId,
) -> Option<&'a mut Conn<S>> {
    let slot = slots.get_mut(id.index as usize)?;
    if slot.generation != id.generation {
        return None;
    }
    let conn = slot.conn.as_mut()?;
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(id.index);
    }
    Some(conn)
}

/// What a shard does with its connections' events: the part of [`Service`] a nested poll
/// ([`NestedPoll`]) also drives, with a restricted handler of its own.
pub trait Events {
    /// Messages between shards.
    type Msg: Send;
    /// Per-connection state.
    type Conn;

    /// An accept failed with `errno` (after [`ACCEPT_BACKOFF_MS`] it is retried for a
    /// shortage of descriptors or memory); `unreported` more failed since the last call,
    /// which was at least [`ACCEPT_ERROR_REPORT_INTERVAL_MS`] ago.
    fn on_accept_failed(
        &mut self,
        _io: &mut Io<Self::Msg, Self::Conn>,
        _errno: i32,
        _unreported: u64,
    ) {
    }

    /// A new connection, to be known as `id`; `Err(bytes)` refuses it, sending `bytes` first
    /// (e.g. max clients).
    fn on_accept(
        &mut self,
        io: &mut Io<Self::Msg, Self::Conn>,
        id: ConnId,
        fd: RawFd,
        peer: Option<SocketAddr>,
    ) -> Result<Self::Conn, Vec<u8>>;

    /// New bytes arrived in the connection's input (or output drained after backpressure,
    /// or the input ended: [`Conn::input_ended`], after which the service closes the
    /// connection once its replies are out).
    fn on_input(&mut self, io: &mut Io<Self::Msg, Self::Conn>, id: ConnId);

    /// The session a connection accepted on listener `listener` (its index in the list
    /// given to [`Reactor::new`]) speaks through, if any (TLS listeners).
    fn transport(
        &mut self,
        _io: &mut Io<Self::Msg, Self::Conn>,
        _listener: usize,
    ) -> Option<Box<dyn Transport>> {
        None
    }

    /// `tcp-keepalive` seconds for accepted connections (0 = off).
    fn keepalive_s(&self) -> u32;

    /// Whether a nested poll may touch connection `id` now: false for one whose state the
    /// code that started the poll is using (its events wait for the outer loop).
    fn free(&self, _id: ConnId) -> bool {
        true
    }
}

/// What a shard does with its connections and messages.
pub trait Service: Events + 'static {
    /// A message from another shard.
    fn on_message(&mut self, io: &mut Io<Self::Msg, Self::Conn>, msg: Self::Msg);

    /// The connection is closed and gone.
    fn on_close(&mut self, io: &mut Io<Self::Msg, Self::Conn>, conn: Conn<Self::Conn>);

    /// Runs every [`Self::tick_interval`].
    fn on_tick(&mut self, io: &mut Io<Self::Msg, Self::Conn>);

    /// SIGINT or SIGTERM arrived (only on shard 0).
    fn on_signal(&mut self, io: &mut Io<Self::Msg, Self::Conn>, signo: u32);

    /// The loop is about to wait; the service may flush batched work.
    fn before_wait(&mut self, _io: &mut Io<Self::Msg, Self::Conn>) {}

    /// Replies and messages of this iteration have been handed to the kernel and the
    /// mailboxes; the loop is about to wait. A service may block here (e.g. at a barrier
    /// with other shards) without holding back anything it produced.
    fn after_flush(&mut self, _io: &mut Io<Self::Msg, Self::Conn>) {}

    /// A descriptor given to [`Io::watch_readable`] with `tag` is readable (`res` is the
    /// poll result: the event mask, or a negative errno).
    fn on_readable(&mut self, _io: &mut Io<Self::Msg, Self::Conn>, _tag: u32, _res: i32) {}

    /// How often [`Self::on_tick`] runs.
    fn tick_interval(&self) -> Duration;

    /// The loop starts: `poll` is the reactor, for a nested poll from inside a long
    /// callback ([`NestedPoll`]). It stays valid, at the same address, until `run`
    /// returns; the service may only use it on this thread, from inside a callback.
    fn attach_nested(&mut self, _poll: *mut dyn NestedPoll<Self::Msg, Self::Conn>) {}
}

/// A restricted pass of a shard's loop run from inside one of its own callbacks (Redis's
/// `processEventsWhileBlocked`, for a busy script): takes what the kernel completed,
/// hands connection events to `events` for the connections [`Events::free`] allows (and
/// new connections), writes their output, and keeps everything else (the other
/// connections' events, mail, timers, signals, closing connections) in order for the
/// outer loop. It never touches the outbox nor a connection that is not free.
pub trait NestedPoll<M, C> {
    /// One pass; returns whether a shutdown is under way.
    fn poll_nested(&mut self, events: &mut dyn Events<Msg = M, Conn = C>) -> bool;
}

/// Spare connection slots kept allocated (see [`Io::insert_conn`]): a nested poll takes new
/// connections only into spare room, since growing the slot table would move connections
/// the interrupted callback holds.
pub const SPARE_CONN_SLOTS: usize = 64;

/// Why a reactor could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReactorError {
    /// io_uring cannot be used here; the text names the cause.
    IoUringUnavailable(String),
    Io(io::Error),
}

impl std::fmt::Display for ReactorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IoUringUnavailable(why) => write!(f, "io_uring is unavailable: {why}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReactorError {}

impl From<io::Error> for ReactorError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Features the kernel offered when the ring was built, for the start-up banner.
#[derive(Clone, Debug, Default)]
pub struct RingFeatures {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub msg_ring: bool,
    pub ext_arg: bool,
}

impl std::fmt::Display for RingFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names = vec!["multishot-accept"];
        if self.single_issuer {
            names.push("single-issuer");
        }
        if self.defer_taskrun {
            names.push("defer-taskrun");
        }
        if self.msg_ring {
            names.push("msg-ring");
        }
        if self.ext_arg {
            names.push("ext-arg");
        }
        write!(f, "{}", names.join(","))
    }
}

/// Builds a ring with the best setup flags this kernel accepts, with a message naming the
/// cause when io_uring cannot be used at all.
pub fn build_ring() -> Result<(IoUring, RingFeatures), ReactorError> {
    let attempt = |single: bool, defer: bool| {
        let mut b = IoUring::builder();
        b.setup_cqsize(RING_CQ_ENTRIES);
        if single {
            b.setup_single_issuer();
        }
        if defer {
            b.setup_defer_taskrun();
        } else {
            b.setup_coop_taskrun();
        }
        b.build(RING_SQ_ENTRIES)
    };
    let (ring, single, defer) = match attempt(true, true) {
        Ok(r) => (r, true, true),
        Err(first) => match attempt(false, false) {
            Ok(r) => (r, false, false),
            Err(_) => return Err(ReactorError::IoUringUnavailable(explain(&first))),
        },
    };
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| ReactorError::IoUringUnavailable(format!("probe failed: {e}")))?;
    let features = RingFeatures {
        single_issuer: single,
        defer_taskrun: defer,
        msg_ring: probe.is_supported(opcode::MsgRingData::CODE),
        ext_arg: ring.params().is_feature_ext_arg(),
    };
    if !features.msg_ring || !features.ext_arg {
        return Err(ReactorError::IoUringUnavailable(
            "this kernel lacks IORING_OP_MSG_RING or IORING_FEAT_EXT_ARG; percore needs Linux 5.19 or newer".into(),
        ));
    }
    Ok((ring, features))
}

fn explain(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "io_uring_setup returned ENOSYS: the kernel was built without io_uring or a seccomp filter blocks it".into()
        }
        Some(libc::EPERM) if disabled == "2" => {
            "io_uring_setup returned EPERM: kernel.io_uring_disabled=2 (set it to 0 with sysctl)".into()
        }
        Some(libc::EPERM) if disabled == "1" => {
            "io_uring_setup returned EPERM: kernel.io_uring_disabled=1 and this user is not in kernel.io_uring_group".into()
        }
        Some(libc::EPERM) => {
            "io_uring_setup returned EPERM: a seccomp profile or container runtime blocks io_uring".into()
        }
        Some(libc::ENOMEM) => {
            "io_uring_setup returned ENOMEM: raise the memory cgroup limit or RLIMIT_MEMLOCK".into()
        }
        _ => format!("io_uring_setup failed: {e}"),
    }
}

/// One shard's event loop.
pub struct Reactor<S: Service> {
    ring: IoUring,
    /// Provided buffers for multishot receives; `None` when the kernel lacks them (then one
    /// receive SQE per connection is re-armed after each completion). Declared after `ring`
    /// so the ring is closed before the buffers are unmapped.
    bufring: Option<BufRing>,
    /// Size of the registered file table (0 when the kernel refused it).
    fixed_files: u32,
    io: Io<S::Msg, S::Conn>,
    listeners: Vec<RawFd>,
    accept_armed: Vec<bool>,
    /// Each listener's generation, in its accepts' tokens: completions of a replaced
    /// listener are told apart from its successor's at the same index.
    accept_gen: Vec<u32>,
    /// The generation the listeners of the next swap get.
    listener_gen: u32,
    /// Accepting stopped until then after a shortage of descriptors ([`ACCEPT_BACKOFF_MS`]).
    accept_paused_until: Option<Instant>,
    accept_failures: AcceptFailures,
    signal_fd: Option<RawFd>,
    signal_buf: Box<[u8; sys::SIGNALFD_SIGINFO_BYTES]>,
    /// The completions reaped this iteration, and the next to handle: a nested poll
    /// (`poll_nested`) goes on from there, so each connection's data stays in order.
    cqes: Vec<(u64, i32, u32)>,
    cqe_next: usize,
    /// Completions a nested poll left for the outer loop (handled first next time).
    deferred: Vec<(u64, i32, u32)>,
    closed: Vec<Conn<S::Conn>>,
    woken: bool,
    stopping: Option<Instant>,
    counted_drained: bool,
    next_tick: Instant,
    /// The interval of the armed multishot tick timeout, if one is armed. With it, waits
    /// need no timeout of their own (no timer armed and cancelled per `io_uring_enter`).
    tick_armed: Option<Duration>,
    /// Generation of the tick timeout, so the end of a replaced one is recognised.
    tick_gen: u32,
    /// Cleared when the kernel refuses multishot timeouts (before 6.4): waits then carry
    /// their own timeout.
    tick_multishot: bool,
    tick_ts: Box<types::Timespec>,
    /// `io.now` is derived from one monotonic clock read per iteration: this instant and
    /// the clock's value at it.
    epoch: Instant,
    epoch_ns: u64,
    /// Monotonic time of the last waiting `io_uring_enter` (0 before the first).
    entered_ns: u64,
    /// Wall clock minus monotonic clock, in ms: `io.now_ms` costs no clock read of its own
    /// per iteration. Taken again at every tick, so a wall-clock step shows within a tick
    /// (Redis, too, reads the wall clock once per event-loop pass).
    wall_offset_ms: i64,
    /// The spin budget's current window (start, ns spun in it): see `Io::spin_for_mail`.
    spin_window_start: u64,
    spin_window_spent: u64,
}

impl<S: Service> Reactor<S> {
    /// A reactor for `shard` on `ring`, accepting on `listeners` (already bound and
    /// listening, one set per shard thanks to `SO_REUSEPORT`).
    pub fn new(
        ring: IoUring,
        shard: usize,
        shared: Arc<Shared<S::Msg>>,
        listeners: Vec<RawFd>,
        signal_fd: Option<RawFd>,
    ) -> Self {
        shared.mailboxes.register_ring(shard, ring.as_raw_fd());
        let now = Instant::now();
        let epoch_ns = sys::monotonic_ns();
        let bufring = if std::env::var_os("PERCORE_NO_MULTISHOT_RECV").is_some() {
            None
        } else {
            BufRing::register(&ring).ok()
        };
        let fixed_files = if std::env::var_os("PERCORE_NO_FIXED_FILES").is_none()
            && ring
                .submitter()
                .register_files_sparse(FIXED_FILE_SLOTS)
                .is_ok()
        {
            FIXED_FILE_SLOTS
        } else {
            0
        };
        Self {
            bufring,
            fixed_files,
            accept_armed: vec![false; listeners.len()],
            accept_gen: vec![0; listeners.len()],
            listener_gen: 0,
            accept_paused_until: None,
            accept_failures: AcceptFailures::default(),
            listeners,
            ring,
            io: Io::new(shard, shared, now, epoch_ns),
            signal_fd,
            signal_buf: Box::new([0; sys::SIGNALFD_SIGINFO_BYTES]),
            cqes: Vec::with_capacity(1024),
            cqe_next: 0,
            deferred: Vec::new(),
            closed: Vec::new(),
            woken: false,
            stopping: None,
            counted_drained: false,
            next_tick: now,
            tick_armed: None,
            tick_gen: 0,
            spin_window_start: 0,
            spin_window_spent: 0,
            tick_multishot: true,
            tick_ts: Box::new(types::Timespec::new()),
            epoch: now,
            epoch_ns,
            entered_ns: 0,
            wall_offset_ms: wall_offset_ms(epoch_ns),
        }
    }

    /// Runs until a shutdown completes.
    pub fn run(&mut self, service: &mut S) -> io::Result<()> {
        service.attach_nested(std::ptr::from_mut::<Self>(self) as *mut dyn NestedPoll<S::Msg, S::Conn>);
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        if self.signal_fd.is_some() {
            self.arm_signal();
        }
        loop {
            // One clock read gives the iteration's time and ends the last wait.
            let start_ns = sys::monotonic_ns();
            self.io.now = self.epoch + Duration::from_nanos(start_ns.saturating_sub(self.epoch_ns));
            self.io.now_ns = start_ns;
            if self.io.now >= self.next_tick {
                // The tick below runs in this iteration: take the wall clock again first.
                self.wall_offset_ms = wall_offset_ms(start_ns);
            }
            self.io.now_ms = (start_ns / 1_000_000) as i64 + self.wall_offset_ms;
            if self.entered_ns != 0 {
                self.io.stats.idle_ns += start_ns.saturating_sub(self.entered_ns);
            }
            self.io.stats.iterations += 1;

            self.reap_completions(service);
            let more_mail = drain_inbox(&mut self.io, service, &mut self.woken);

            if self.io.now >= self.next_tick {
                service.on_tick(&mut self.io);
                self.next_tick = self.io.now + service.tick_interval();
                if let Some((from, fds)) = self.io.listener_swap.take() {
                    self.swap_listeners(from, fds);
                }
            }
            if self.accept_paused_until.is_some_and(|t| self.io.now >= t) {
                self.resume_accepting();
            }
            if self.io.shared.shutting_down() && self.stopping.is_none() {
                self.begin_stop();
            }
            service.before_wait(&mut self.io);
            self.flush_conns();
            for conn in std::mem::take(&mut self.closed) {
                service.on_close(&mut self.io, conn);
            }
            self.flush_outbox();
            if let Some(br) = self.bufring.as_mut() {
                br.publish();
            }
            if std::mem::take(&mut self.io.submit_early) {
                self.io.stats.enters += 1;
                let _ = self.ring.submit();
            }
            service.after_flush(&mut self.io);
            for (fd, already_read, transport) in std::mem::take(&mut self.io.adopted) {
                self.take_conn(service, fd, None, &already_read, transport);
            }
            for (fd, tag) in std::mem::take(&mut self.io.watches) {
                let e = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                    .build()
                    .user_data(token(OP_WATCH, tag, 0));
                self.push(&e);
            }

            if let Some(since) = self.stopping
                && self.stop_done(since)
            {
                return Ok(());
            }

            let max_wait = self.io.max_wait.take();
            let want = usize::from(
                !more_mail
                    && !self.io.outbox_pending()
                    && self.deferred.is_empty()
                    && max_wait != Some(Duration::ZERO),
            );
            let spin_ns = std::mem::take(&mut self.io.spin_ns);
            if want > 0 && spin_ns > 0 && self.stopping.is_none() && self.spin_for_mail(spin_ns) {
                continue;
            }
            let interval = service.tick_interval();
            if self.tick_multishot && self.tick_armed != Some(interval) {
                self.arm_tick(interval);
            }
            let end_ns = sys::monotonic_ns();
            let busy = end_ns.saturating_sub(start_ns);
            self.io.stats.busy_ns += busy;
            self.io.stats.peak_iteration_ns = self.io.stats.peak_iteration_ns.max(busy);
            self.io.stats.enters += 1;
            self.entered_ns = end_ns;
            let entered = if let Some(d) = max_wait
                && want > 0
            {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            } else if self.tick_armed.is_some() {
                self.ring.submitter().submit_and_wait(want)
            } else {
                let wait = self
                    .next_tick
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_micros(100));
                let ts = types::Timespec::from(wait);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            };
            match entered {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Submits what is queued and runs the kernel's deferred work (a single-issuer ring
    /// with deferred task work completes receives and accepts only in an enter asking for
    /// completions), without waiting.
    fn enter_nested(&mut self) {
        self.io.stats.enters += 1;
        let ts = types::Timespec::new();
        let args = types::SubmitArgs::new().timespec(&ts);
        let _ = self.ring.submitter().submit_with_args(1, &args);
    }

    /// Submits what is queued and spins up to `ns` (within the spin budget) for mail in
    /// this shard's inbox; true when mail came (the loop goes round without waiting).
    fn spin_for_mail(&mut self, ns: u64) -> bool {
        let start = sys::monotonic_ns();
        if start.saturating_sub(self.spin_window_start) >= SPIN_WINDOW_NS {
            self.spin_window_start = start;
            self.spin_window_spent = 0;
        }
        let budget = SPIN_WINDOW_NS * SPIN_MAX_SHARE_PCT / 100;
        let ns = ns.min(budget.saturating_sub(self.spin_window_spent));
        if ns == 0 {
            return false;
        }
        self.io.stats.enters += 1;
        let _ = self.ring.submit();
        let boxes = &self.io.shared.mailboxes;
        let mut now = start;
        let mut got = false;
        while now.saturating_sub(start) < ns {
            if boxes.has_messages(self.io.shard) {
                got = true;
                break;
            }
            for _ in 0..SPIN_CHECK_PAUSES {
                std::hint::spin_loop();
            }
            now = sys::monotonic_ns();
        }
        let spent = now.saturating_sub(start);
        self.spin_window_spent += spent;
        self.io.stats.spin_ns += spent;
        if got {
            self.io.stats.spin_hits += 1;
        }
        got
    }

    /// Arms (or re-arms with a new interval) the multishot timeout that wakes the loop for
    /// its periodic tick.
    fn arm_tick(&mut self, interval: Duration) {
        if self.tick_armed.is_some() {
            let e = opcode::TimeoutRemove::new(token(OP_TICK, 0, self.tick_gen))
                .build()
                .user_data(token(OP_CANCEL, 0, 0));
            self.push(&e);
        }
        self.tick_gen = self.tick_gen.wrapping_add(1);
        *self.tick_ts = types::Timespec::from(interval);
        let e = opcode::Timeout::new(&raw const *self.tick_ts)
            .count(0)
            .flags(types::TimeoutFlags::MULTISHOT)
            .build()
            .user_data(token(OP_TICK, 0, self.tick_gen));
        self.push(&e);
        self.tick_armed = Some(interval);
    }

    fn begin_stop(&mut self) {
        self.stopping = Some(self.io.now);
        // Stop accepting: closing a listener does not end a multishot accept, cancel it.
        for i in 0..self.listeners.len() {
            if self.accept_armed[i] {
                let e = opcode::AsyncCancel::new(token(OP_ACCEPT, i as u32, self.accept_gen[i]))
                    .build()
                    .user_data(token(OP_CANCEL, 0, 0));
                self.push(&e);
            }
        }
        self.io.for_each_conn(Conn::close_after_flush);
    }

    fn stop_done(&mut self, since: Instant) -> bool {
        let (done, flush) = self.io.drain_step(since, &mut self.counted_drained);
        if flush {
            self.flush_outbox();
        }
        done
    }

    fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: every entry pushed here points at memory that stays valid until its
            // completion: connection buffers are neither moved nor freed while an op on them is
            // in flight (see `flush_conn`), the signal buffer is boxed and lives as long as
            // the reactor, and the tick timespec is copied by the kernel at submission (and
            // boxed for the reactor's lifetime anyway).
            #[expect(unsafe_code, reason = "io_uring SQE submission")]
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return;
            }
            // Queue full: hand what we have to the kernel and retry.
            self.io.stats.enters += 1;
            if let Err(e) = self.ring.submit()
                && e.raw_os_error() != Some(libc::EBUSY)
            {
                eprintln!("percore: io_uring submit failed: {e}");
            }
        }
    }

    fn arm_accept(&mut self, i: usize) {
        let e = opcode::AcceptMulti::new(types::Fd(self.listeners[i]))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(token(OP_ACCEPT, i as u32, self.accept_gen[i]));
        self.push(&e);
        self.accept_armed[i] = true;
    }

    /// Puts `fds` in place of the listeners from index `from` on: their multishot accepts
    /// are cancelled (completions of their generation are dropped, a socket they still
    /// accepted closed) and the old sockets closed; the new ones are armed.
    fn swap_listeners(&mut self, from: usize, fds: Vec<RawFd>) {
        let from = from.min(self.listeners.len());
        for i in from..self.listeners.len() {
            if self.accept_armed[i] {
                let e = opcode::AsyncCancel::new(token(OP_ACCEPT, i as u32, self.accept_gen[i]))
                    .build()
                    .user_data(token(OP_CANCEL, 0, 0));
                self.push(&e);
            }
            if self.listeners[i] >= 0 {
                // The ring keeps its own reference until the cancel completes.
                sys::close(self.listeners[i]);
            }
        }
        self.listener_gen = self.listener_gen.wrapping_add(1);
        self.listeners.truncate(from);
        self.listeners.extend(fds);
        self.accept_armed.truncate(from);
        self.accept_armed.resize(self.listeners.len(), false);
        self.accept_gen.truncate(from);
        self.accept_gen
            .resize(self.listeners.len(), self.listener_gen);
        let stopping = self.stopping.is_some() || self.io.shared.shutting_down();
        if !stopping && self.accept_paused_until.is_none() {
            for i in from..self.listeners.len() {
                self.arm_accept(i);
            }
        }
    }

    fn arm_signal(&mut self) {
        let Some(fd) = self.signal_fd else {
            return;
        };
        let e = opcode::Read::new(
            types::Fd(fd),
            self.signal_buf.as_mut_ptr(),
            sys::SIGNALFD_SIGINFO_BYTES as u32,
        )
        .build()
        .user_data(token(OP_SIGNAL, 0, 0));
        self.push(&e);
    }

    fn reap_completions(&mut self, service: &mut S) {
        // What a nested poll left came before what completed since.
        self.cqes.clear();
        self.cqes.append(&mut self.deferred);
        for cqe in self.ring.completion() {
            self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        self.io.stats.completions += self.cqes.len() as u64;
        self.cqe_next = 0;
        while let Some(&(ud, res, flags)) = self.cqes.get(self.cqe_next) {
            self.cqe_next += 1;
            self.on_completion(service, ud, res, flags);
        }
    }

    fn on_completion(&mut self, service: &mut S, ud: u64, res: i32, flags: u32) {
        let (op, index, generation) = untoken(ud);
        match op {
            OP_RECV => self.on_recv(service, index, generation, res, flags),
            OP_SEND => self.on_send(service, index, generation, res),
            // A listener replaced by `swap_listeners`: what it still accepted is
            // closed, as Redis's closed listening socket would have.
            OP_ACCEPT if self.accept_gen.get(index as usize) != Some(&generation) => {
                close_accepted(res);
            }
            OP_ACCEPT => self.on_accept(service, index as usize, res, flags),
            OP_WAKE => self.woken = true,
            OP_WATCH => service.on_readable(&mut self.io, index, res),
            OP_SIGNAL => {
                if res as usize == sys::SIGNALFD_SIGINFO_BYTES {
                    let signo = u32::from_ne_bytes([
                        self.signal_buf[0],
                        self.signal_buf[1],
                        self.signal_buf[2],
                        self.signal_buf[3],
                    ]);
                    service.on_signal(&mut self.io, signo);
                }
                if !self.io.shared.shutting_down() {
                    self.arm_signal();
                }
            }
            OP_TICK if generation == self.tick_gen && !cqueue::more(flags) => {
                // The tick timeout ended: refused by this kernel (no multishot timeouts),
                // or removed. Waits carry their own timeout from now on if refused.
                if res == -libc::EINVAL {
                    self.tick_multishot = false;
                }
                self.tick_armed = None;
            }
            OP_MSG_RING if res < 0 => {
                eprintln!(
                    "percore: cross-shard wake-up failed: {}",
                    io::Error::from_raw_os_error(-res)
                );
            }
            _ => {}
        }
    }

    /// Accepting again after [`ACCEPT_BACKOFF_MS`].
    fn resume_accepting(&mut self) {
        self.accept_paused_until = None;
        if self.stopping.is_some() || self.io.shared.shutting_down() {
            return;
        }
        for i in 0..self.listeners.len() {
            if !self.accept_armed[i] && self.listeners[i] >= 0 {
                self.arm_accept(i);
            }
        }
    }

    fn on_accept<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        i: usize,
        res: i32,
        flags: u32,
    ) {
        let shortage = matches!(
            -res,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
        );
        if shortage && self.accept_paused_until.is_none() {
            self.accept_paused_until = Some(self.io.now + Duration::from_millis(ACCEPT_BACKOFF_MS));
        }
        if !cqueue::more(flags) {
            self.accept_armed[i] = false;
            if self.stopping.is_some() || self.io.shared.shutting_down() {
                if self.listeners[i] >= 0 {
                    sys::close(self.listeners[i]);
                    self.listeners[i] = -1;
                }
            } else if self.accept_paused_until.is_none() {
                self.arm_accept(i);
            }
        } else if shortage {
            // Still armed: stop it; `resume_accepting` arms it again.
            let e = opcode::AsyncCancel::new(token(OP_ACCEPT, i as u32, self.accept_gen[i]))
                .build()
                .user_data(token(OP_CANCEL, 0, 0));
            self.push(&e);
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                self.accept_failures.report(&mut self.io, service, -res);
            }
            return;
        }
        let fd = res;
        if self.stopping.is_some() {
            sys::close(fd);
            return;
        }
        self.take_conn(service, fd, Some(i), &[], None);
    }

    /// Makes `fd` (accepted on listener `listener`, or adopted with `already_read`) a
    /// connection of this shard if the service accepts it, in the registered file table
    /// when it has room.
    fn take_conn<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        fd: RawFd,
        listener: Option<usize>,
        already_read: &[u8],
        transport: Option<Box<dyn Transport>>,
    ) {
        let (ring, fixed_files) = (&self.ring, self.fixed_files);
        take_conn(
            &mut self.io,
            service,
            fd,
            listener,
            already_read,
            transport,
            |io, got| {
                if got.index < fixed_files
                    && ring
                        .submitter()
                        .register_files_update(got.index, &[fd])
                        .is_ok()
                    && let Some(conn) = io.slots[got.index as usize].conn.as_mut()
                {
                    conn.fixed = Some(got.index);
                }
            },
        );
    }

    fn on_recv<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        index: u32,
        generation: u32,
        res: i32,
        flags: u32,
    ) {
        let id = ConnId { index, generation };
        let multishot = self.bufring.is_some();
        let bid = BufRing::buffer_of(flags);
        let Some(conn) = self.io.conn(id) else {
            if let (Some(br), Some(bid)) = (self.bufring.as_mut(), bid) {
                br.consume(bid, 0, |_| ());
            }
            return;
        };
        if !multishot || !cqueue::more(flags) {
            // Single-shot receives end with every completion; a multishot one ends when the
            // kernel drops the MORE flag (cancel, error, no buffers).
            conn.recv_inflight = false;
            conn.cancel_sent = false;
            conn.input.end_lend();
        }
        if res > 0 {
            if let Some(t) = conn.transport.as_deref_mut() {
                // Ciphertext: the session appends the plaintext it completes.
                let before = conn.input.len();
                let ok = match (self.bufring.as_mut(), bid) {
                    (Some(br), Some(bid)) => {
                        let mut ok = true;
                        br.consume(bid, res as usize, |data| {
                            ok = t.receive(data, &mut conn.input);
                        });
                        ok
                    }
                    _ => t.receive_buffered(res as usize, &mut conn.input),
                };
                if !ok {
                    // Send the session's alert, then close; nothing more is parsed.
                    conn.closing = true;
                    conn.output.clear();
                } else if conn.input.len() != before && !conn.is_closing() {
                    service.on_input(&mut self.io, id);
                }
                return;
            }
            match (self.bufring.as_mut(), bid) {
                (Some(br), Some(bid)) => {
                    br.consume(bid, res as usize, |data| conn.input.append(data));
                }
                _ => conn.input.commit_recv(res as usize),
            }
            if !conn.is_closing() {
                service.on_input(&mut self.io, id);
            }
        } else if res == -libc::EINVAL && multishot && conn.input.is_empty() && !conn.is_closing() {
            // This kernel refuses multishot receive with provided buffers: fall back to one
            // receive SQE per completion for every connection of this shard.
            self.bufring = None;
        } else if res == 0 {
            // End of input: the requests already received still run and their replies
            // still leave (the peer may have only shut down its sending side); the service
            // closes once they are out.
            conn.input_ended = true;
            if !conn.is_closing() {
                service.on_input(&mut self.io, id);
            }
        } else if !matches!(
            -res,
            libc::EAGAIN | libc::EINTR | libc::ECANCELED | libc::ENOBUFS
        ) {
            // Peer closed or the socket failed: nobody will read our replies.
            conn.broken = true;
            conn.output.clear();
        }
    }

    fn on_send<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        index: u32,
        generation: u32,
        res: i32,
    ) {
        let id = ConnId { index, generation };
        let now_ms = self.io.now_ms;
        let Some(conn) = self.io.conn(id) else {
            return;
        };
        conn.send_inflight = false;
        if res >= 0 {
            if res > 0 {
                conn.last_send_ms = now_ms;
            }
            conn.sent += res as usize;
            conn.sent_bytes += res as u64;
            if conn.sent >= conn.sending.len() {
                conn.sending.clear();
                conn.sent = 0;
                // Output drained below the backpressure mark: let the service parse what it
                // left waiting.
                if !conn.input.is_empty()
                    && !conn.is_closing()
                    && conn.pending_output() < OUTPUT_BACKPRESSURE_BYTES
                {
                    service.on_input(&mut self.io, id);
                }
            }
        } else if !matches!(-res, libc::EAGAIN | libc::EINTR) {
            conn.broken = true;
            conn.output.clear();
        }
    }

    fn flush_conns(&mut self) {
        let mut dirty = std::mem::take(&mut self.io.dirty);
        for &index in &dirty {
            self.flush_conn(index);
        }
        dirty.clear();
        // Connections touched while flushing (none today) keep their marks for next time.
        if self.io.dirty.is_empty() {
            self.io.dirty = dirty;
        }
    }

    /// Arms the receive and the send of one connection, or closes it.
    fn flush_conn(&mut self, index: u32) {
        let Some(conn) = self.io.slots[index as usize].conn.as_mut() else {
            return;
        };
        conn.dirty = false;
        let mut entries: [Option<squeue::Entry>; 2] = [None, None];

        if conn.broken {
            conn.output.clear();
        }
        // Send what the service wrote.
        if !conn.send_inflight && !conn.broken {
            conn.stage_output();
            if conn.sent < conn.sending.len() {
                let rest = &conn.sending[conn.sent..];
                let (ptr, len) = (rest.as_ptr(), rest.len() as u32);
                let send = match conn.fixed {
                    Some(slot) => opcode::Send::new(types::Fixed(slot), ptr, len)
                        .flags(libc::MSG_NOSIGNAL)
                        .build(),
                    None => opcode::Send::new(types::Fd(conn.fd), ptr, len)
                        .flags(libc::MSG_NOSIGNAL)
                        .build(),
                };
                entries[0] = Some(send.user_data(token(OP_SEND, index, conn.generation)));
                conn.send_inflight = true;
            }
        }
        let done_sending = !conn.send_inflight && conn.output.is_empty();
        let closing = conn.broken || (conn.closing && done_sending);
        if closing {
            if conn.recv_inflight {
                if !conn.cancel_sent {
                    conn.cancel_sent = true;
                    entries[1] = Some(
                        opcode::AsyncCancel::new(token(OP_RECV, index, conn.generation))
                            .build()
                            .user_data(token(OP_CANCEL, index, conn.generation)),
                    );
                }
            } else if !conn.send_inflight {
                self.free_conn(index);
                return;
            }
        } else {
            let may_read = !conn.read_paused
                && !conn.closing
                && !conn.input_ended
                && conn.pending_output() < OUTPUT_BACKPRESSURE_BYTES;
            if may_read && !conn.recv_inflight {
                let entry = if self.bufring.is_some() {
                    conn.input.shrink_if_idle();
                    match conn.fixed {
                        Some(slot) => opcode::RecvMulti::new(types::Fixed(slot), BUF_GROUP).build(),
                        None => opcode::RecvMulti::new(types::Fd(conn.fd), BUF_GROUP).build(),
                    }
                } else {
                    let target = match conn.transport.as_deref_mut() {
                        Some(t) => &mut t.wire_in,
                        None => &mut conn.input,
                    };
                    let (ptr, len) = target.prepare_recv();
                    match conn.fixed {
                        Some(slot) => {
                            opcode::Recv::new(types::Fixed(slot), ptr, len as u32).build()
                        }
                        None => opcode::Recv::new(types::Fd(conn.fd), ptr, len as u32).build(),
                    }
                };
                entries[1] = Some(entry.user_data(token(OP_RECV, index, conn.generation)));
                conn.recv_inflight = true;
            } else if !may_read && conn.recv_inflight && self.bufring.is_some() && !conn.cancel_sent
            {
                // Stop a multishot receive while the client must not be read (backpressure,
                // replies outstanding); it is re-armed once reading may resume.
                conn.cancel_sent = true;
                entries[1] = Some(
                    opcode::AsyncCancel::new(token(OP_RECV, index, conn.generation))
                        .build()
                        .user_data(token(OP_CANCEL, index, conn.generation)),
                );
            }
        }
        for e in entries.into_iter().flatten() {
            self.push(&e);
        }
    }

    fn free_conn(&mut self, index: u32) {
        let slot = &mut self.io.slots[index as usize];
        let conn = slot.conn.take().expect("freeing a live connection");
        slot.generation = slot.generation.wrapping_add(1);
        self.io.free.push(index);
        self.io.live -= 1;
        if let Some(slot) = conn.fixed {
            // No operation is in flight (the caller checked), so the slot can be cleared.
            let _ = self.ring.submitter().register_files_update(slot, &[-1]);
        }
        sys::close(conn.fd);
        // The service sees the connection after its fd is gone; ids of it no longer resolve.
        let mut service_conn = conn;
        service_conn.fd = -1;
        self.closed.push(service_conn);
    }

    fn flush_outbox(&mut self) {
        for s in self.io.push_outbox() {
            if let Some(fd) = self.io.shared.mailboxes.ring_fd(s) {
                let e = opcode::MsgRingData::new(types::Fd(fd), 0, token(OP_WAKE, 0, 0), None)
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(token(OP_MSG_RING, 0, 0));
                self.push(&e);
            }
        }
    }
}

impl<S: Service> NestedPoll<S::Msg, S::Conn> for Reactor<S> {
    fn poll_nested(&mut self, events: &mut dyn Events<Msg = S::Msg, Conn = S::Conn>) -> bool {
        if std::mem::replace(&mut self.io.nested, true) {
            return false;
        }
        let now_ns = sys::monotonic_ns();
        self.io.now = self.epoch + Duration::from_nanos(now_ns.saturating_sub(self.epoch_ns));
        self.io.now_ns = now_ns;
        self.io.now_ms = (now_ns / 1_000_000) as i64 + self.wall_offset_ms;
        // Hand the kernel the sends and receives queued so far, then go on with this
        // iteration's completions from where the outer loop is, and those since.
        self.enter_nested();
        for cqe in self.ring.completion() {
            self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            self.io.stats.completions += 1;
        }
        while let Some(&(ud, res, flags)) = self.cqes.get(self.cqe_next) {
            self.cqe_next += 1;
            let (op, index, generation) = untoken(ud);
            let id = ConnId { index, generation };
            // A connection the interrupted callback uses keeps its completions (and so its
            // order) for the outer loop, as does everything but connection events.
            let serve = match op {
                OP_RECV | OP_SEND => events.free(id),
                OP_ACCEPT => {
                    self.accept_gen.get(index as usize) == Some(&generation)
                        && self.io.room_nested()
                }
                // What the outer loop does with these is only this (a wake-up) or nothing
                // (another tick of the multishot timeout, a cancel's completion): nothing
                // piles up however long the callback runs.
                OP_WAKE => {
                    self.woken = true;
                    continue;
                }
                OP_TICK if cqueue::more(flags) => continue,
                OP_CANCEL => continue,
                _ => false,
            };
            if !serve {
                self.deferred.push((ud, res, flags));
                continue;
            }
            match op {
                OP_RECV => self.on_recv(events, index, generation, res, flags),
                OP_SEND => self.on_send(events, index, generation, res),
                _ => self.on_accept(events, index as usize, res, flags),
            }
        }
        if let Some(br) = self.bufring.as_mut() {
            br.publish();
        }
        // Output of the connections served: written now. Connections not free, and those
        // closing (their close ends in the service's `on_close`), wait for the outer loop.
        let dirty = std::mem::take(&mut self.io.dirty);
        let mut kept = Vec::new();
        for index in dirty {
            let Some(conn) = self.io.slots[index as usize].conn.as_ref() else {
                continue;
            };
            if conn.broken || conn.closing || conn.input_ended || !events.free(conn.id()) {
                kept.push(index);
                continue;
            }
            self.flush_conn(index);
        }
        kept.append(&mut self.io.dirty);
        self.io.dirty = kept;
        self.enter_nested();
        self.io.nested = false;
        self.io.shutting_down()
    }
}

/// Takes up to [`MAILBOX_DRAIN_BATCHES`] batches from the shard's inbox (when `woken` or
/// mail is there) and hands every message to the service; returns whether mail is left.
fn drain_inbox<S: Service>(
    io: &mut Io<S::Msg, S::Conn>,
    service: &mut S,
    woken: &mut bool,
) -> bool {
    let shard = io.shard;
    let boxes = &io.shared.mailboxes;
    if !*woken && !boxes.has_messages(shard) {
        return false;
    }
    *woken = false;
    boxes.clear_notified(shard);
    let shared = Arc::clone(&io.shared);
    let mut now_ns = 0;
    for _ in 0..MAILBOX_DRAIN_BATCHES {
        let Some((batch, sent_ns)) = shared.mailboxes.pop_stamped(shard) else {
            return false;
        };
        if sent_ns != 0 {
            if now_ns == 0 {
                now_ns = sys::monotonic_ns();
            }
            let waited = now_ns.saturating_sub(sent_ns);
            let peak = &mut io.stats.peak_mailbox_wait_ns;
            *peak = (*peak).max(waited);
        }
        io.stats.batches_received += 1;
        io.stats.messages_received += batch.len() as u64;
        for msg in batch {
            service.on_message(io, msg);
        }
    }
    shared.mailboxes.has_messages(shard)
}

/// Makes `fd` a connection of the shard if the service accepts it (else sends the refusal
/// and closes it): a socket accepted on listener `listener` (keepalive set, its session
/// from [`Service::transport`], refused when the shard is full), or one the service
/// adopted (`None`, with its own `transport` if any), whose `already_read` bytes go to
/// the service at once. `register` hands the new connection to the backend first.
fn take_conn<E: Events + ?Sized>(
    io: &mut Io<E::Msg, E::Conn>,
    service: &mut E,
    fd: RawFd,
    listener: Option<usize>,
    already_read: &[u8],
    mut transport: Option<Box<dyn Transport>>,
    register: impl FnOnce(&mut Io<E::Msg, E::Conn>, ConnId),
) {
    let peer = sys::peer_addr(fd).ok();
    if let Some(i) = listener {
        let _ = sys::tune_accepted(fd, service.keepalive_s());
        if io.live >= MAX_CONNS_PER_SHARD {
            sys::write_best_effort(fd, b"-ERR max number of clients reached\r\n");
            sys::close(fd);
            return;
        }
        transport = service.transport(io, i);
    }
    let id = io.next_conn_id();
    let state = match service.on_accept(io, id, fd, peer) {
        Ok(state) => state,
        Err(refusal) => {
            sys::write_best_effort(fd, &refusal);
            sys::close(fd);
            return;
        }
    };
    let got = io.insert_conn(fd, peer, state, transport);
    debug_assert_eq!(got, id);
    register(io, got);
    if !already_read.is_empty()
        && let Some(conn) = io.conn(got)
    {
        conn.input.append(already_read);
        service.on_input(io, got);
    }
}

/// Accept failures reported to the service at most once per
/// [`ACCEPT_ERROR_REPORT_INTERVAL_MS`], with the count of those not reported.
#[derive(Default)]
struct AcceptFailures {
    /// When one was last reported.
    reported: Option<Instant>,
    /// Failures since then.
    unreported: u64,
}

impl AcceptFailures {
    /// Tells the service about a failed accept (`errno`), or counts it for the next report.
    fn report<E: Events + ?Sized>(
        &mut self,
        io: &mut Io<E::Msg, E::Conn>,
        service: &mut E,
        errno: i32,
    ) {
        let now = io.now;
        let due = self.reported.is_none_or(|t| {
            now.duration_since(t) >= Duration::from_millis(ACCEPT_ERROR_REPORT_INTERVAL_MS)
        });
        if due {
            self.reported = Some(now);
            let unreported = std::mem::take(&mut self.unreported);
            service.on_accept_failed(io, errno, unreported);
        } else {
            self.unreported += 1;
        }
    }
}

/// The wall clock minus the monotonic clock (read as `mono_ns` a moment ago), in ms.
fn wall_offset_ms(mono_ns: u64) -> i64 {
    unix_ms() - (mono_ns / 1_000_000) as i64
}

/// Wall-clock milliseconds since the Unix epoch.
#[must_use]
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
