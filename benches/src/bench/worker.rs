//! One load thread: its connections on one io_uring, requests written by schedule (open
//! loop) or on the last reply (closed loop), replies skipped and timed.
//!
//! Every connection has at most one receive and one send in the ring. The buffers those
//! point at belong to the connection, are not touched while the operation is in the
//! ring, and outlive it: connections are dropped only after every operation completed
//! (or are leaked if the kernel does not say so in time), which is what makes the two
//! `unsafe` submissions sound.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use io_uring::{IoUring, opcode, squeue, types};
use percore_net::sys::monotonic_ns;

use super::reply::skip_reply;
use super::stats::{ErrorCounts, new_histogram};
use super::template::{RequestGen, Workload};

/// Receive buffer per connection at first; it doubles when one reply does not fit.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;
/// The largest receive buffer (so the largest reply) per connection.
pub const MAX_READ_BUFFER_BYTES: usize = 512 * 1024 * 1024 + 64 * 1024;
/// A receive is posted only with at least this much room.
const MIN_RECV_ROOM_BYTES: usize = 4096;
/// The longest sleep without looking at the stop flag and the clock.
const POLL_NS: u64 = 20_000_000;
/// After the measured time, how long replies to requests already sent are waited for.
pub const DRAIN_NS: u64 = 2_000_000_000;
/// At the end, how long the kernel gets to finish the operations it holds.
const TEARDOWN_NS: u64 = 1_000_000_000;
/// How long a connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Timer slack of open-loop threads, so waking for a request's due time is not deferred.
const OPEN_LOOP_TIMER_SLACK_NS: u64 = 1000;
/// Ring entries per thread at most (two operations per connection).
const MAX_RING_ENTRIES: u32 = 4096;

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const NS_PER_S: u64 = 1_000_000_000;

fn token(conn: usize, op: u64) -> u64 {
    ((conn as u64) << 8) | op
}

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadMode {
    /// Each connection sends `batch` requests, waits for all their replies, and repeats
    /// (redis-benchmark's model). Latency counts from the actual send.
    Closed { batch: usize },
    /// Each connection sends one request every `interval_ns` whatever the replies do, with
    /// at most `depth` in flight; latency counts from when the request was due, so time a
    /// request spent waiting to be sent because the server was stuck is counted.
    Open { interval_ns: f64, depth: usize },
}

/// The times of one run phase, all on the `monotonic_ns` clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseClock {
    /// Load starts (warm-up).
    pub start_ns: u64,
    /// Measurement starts.
    pub measure_ns: u64,
    /// No request is sent at or after this.
    pub end_ns: Option<u64>,
}

/// What the main thread and the workers of one phase share.
#[derive(Debug)]
pub struct PhaseSync {
    /// Connections that came up.
    pub connected: AtomicUsize,
    /// The first connect failure, for the message when none came up.
    pub connect_error: Mutex<Option<String>>,
    /// Workers (and the main thread) meet here once connected...
    pub ready: Barrier,
    /// ...and here once the clock is set.
    pub go: Barrier,
    pub clock: OnceLock<PhaseClock>,
    /// Set by the main thread to end the phase early (nothing connected).
    pub abort: AtomicBool,
}

impl PhaseSync {
    /// For `workers` load threads and the main thread.
    pub fn new(workers: usize) -> Self {
        Self {
            connected: AtomicUsize::new(0),
            connect_error: Mutex::new(None),
            ready: Barrier::new(workers + 1),
            go: Barrier::new(workers + 1),
            clock: OnceLock::new(),
            abort: AtomicBool::new(false),
        }
    }
}

/// One thread's share of a phase.
#[derive(Clone, Debug)]
pub struct WorkerPlan<'a> {
    pub thread: usize,
    /// Global connection numbers (they pick the request streams and the schedule).
    pub conns: Range<usize>,
    pub total_conns: usize,
    pub addr: SocketAddr,
    pub workload: &'a Workload,
    pub seed: u64,
    pub mode: LoadMode,
    /// Measured requests for the whole phase, split over all connections.
    pub requests: Option<u64>,
    pub timeout_ns: u64,
    /// The last timeline second (replies after it count in it).
    pub last_second: Option<u64>,
}

/// What workers tell the main thread.
#[derive(Debug)]
pub enum Msg {
    /// One second of one thread.
    Second {
        thread: usize,
        second: u64,
        hist: Histogram<u64>,
        replies: u64,
        errors: u64,
    },
    /// The thread is finished.
    Done(WorkerTotals),
}

/// A thread's totals for the phase.
#[derive(Clone, Debug, Default)]
pub struct WorkerTotals {
    pub thread: usize,
    /// Measured requests sent.
    pub sent: u64,
    /// Replies to measured requests.
    pub replies: u64,
    /// All replies, warm-up included.
    pub all_replies: u64,
    pub reply_errors: ErrorCounts,
    pub conn_errors: ErrorCounts,
    /// When the last measured reply arrived.
    pub last_reply_ns: u64,
}

struct Conn {
    stream: TcpStream,
    fd: RawFd,
    requests: RequestGen,
    rbuf: Vec<u8>,
    /// Unparsed bytes are `rbuf[rstart..rlen]`.
    rstart: usize,
    rlen: usize,
    recv_pending: bool,
    /// Owned by the kernel while `send_pending`.
    sending: Vec<u8>,
    sent: usize,
    send_pending: bool,
    /// Requests written while a send is in the ring.
    queued: Vec<u8>,
    /// When each request in flight started counting (intended or actual send time).
    inflight: VecDeque<u64>,
    /// When the oldest request in flight started waiting (set on send from idle and on
    /// each reply), for `--timeout`.
    waiting_since: u64,
    /// Open loop: requests scheduled so far and this connection's schedule offset.
    scheduled: u64,
    offset_ns: f64,
    /// Measured requests this connection may still send.
    quota: u64,
    alive: bool,
}

impl Conn {
    #[expect(unsafe_code, reason = "io_uring receive into the connection's buffer")]
    fn submit_recv(&mut self, ring: &mut IoUring, i: usize) -> io::Result<()> {
        debug_assert!(!self.recv_pending && self.rlen + MIN_RECV_ROOM_BYTES <= self.rbuf.len());
        let room = &mut self.rbuf[self.rlen..];
        let e = opcode::Recv::new(types::Fd(self.fd), room.as_mut_ptr(), room.len() as u32)
            .build()
            .user_data(token(i, OP_RECV));
        // SAFETY: `rbuf[rlen..]` stays allocated and untouched until this receive
        // completes: `rbuf` is resized only in `on_recv` (when nothing is pending) and the
        // connection is dropped only once `recv_pending` is false (module docs).
        unsafe { push(ring, &e) }?;
        self.recv_pending = true;
        Ok(())
    }

    #[expect(unsafe_code, reason = "io_uring send from the connection's buffer")]
    fn submit_send(&mut self, ring: &mut IoUring, i: usize) -> io::Result<()> {
        debug_assert!(!self.send_pending && self.sent < self.sending.len());
        let rest = &self.sending[self.sent..];
        let e = opcode::Send::new(types::Fd(self.fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(token(i, OP_SEND));
        // SAFETY: `sending` is neither written nor resized while `send_pending`, and the
        // connection is dropped only once it is false (module docs).
        unsafe { push(ring, &e) }?;
        self.send_pending = true;
        Ok(())
    }

    /// When open-loop request number `scheduled` is due.
    #[inline]
    fn due(&self, clock: PhaseClock, interval_ns: f64) -> u64 {
        clock.start_ns + (self.offset_ns + self.scheduled as f64 * interval_ns) as u64
    }

    /// Whether the connection has requests left to send in this phase.
    #[inline]
    fn has_more(&self, mode: LoadMode, clock: PhaseClock, closed_sending: bool) -> bool {
        self.quota > 0
            && match mode {
                LoadMode::Closed { .. } => closed_sending,
                LoadMode::Open { interval_ns, .. } => clock
                    .end_ns
                    .is_none_or(|e| self.due(clock, interval_ns) < e),
            }
    }

    /// Moves queued requests into the ring if no send is in it.
    fn flush(&mut self, ring: &mut IoUring, i: usize) -> io::Result<()> {
        if self.alive && !self.send_pending && !self.queued.is_empty() {
            std::mem::swap(&mut self.sending, &mut self.queued);
            self.queued.clear();
            self.sent = 0;
            self.submit_send(ring, i)?;
        }
        Ok(())
    }

    /// Gives up on the connection: counted once, its socket shut so what the ring holds
    /// for it completes.
    fn fail(&mut self, kind: &str, stats: &mut ThreadStats) {
        if self.alive {
            self.alive = false;
            stats.totals.conn_errors.add(kind.as_bytes(), 1);
            stats.sec_errors += 1;
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

/// Queues one submission entry, flushing the queue to the kernel if it is full.
///
/// # Safety
///
/// The memory the entry points at must stay valid, and not be accessed by anyone else,
/// until its completion has been reaped.
#[expect(unsafe_code, reason = "io_uring SQE submission")]
unsafe fn push(ring: &mut IoUring, e: &squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: the caller keeps the entry's memory valid until completion (# Safety).
        if unsafe { ring.submission().push(e) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

/// Per-thread counters and the histogram of the current second.
struct ThreadStats {
    thread: usize,
    measure_ns: u64,
    last_second: Option<u64>,
    second: u64,
    hist: Histogram<u64>,
    sec_replies: u64,
    sec_errors: u64,
    totals: WorkerTotals,
}

impl ThreadStats {
    /// Sends finished seconds up to the one `now` falls in.
    fn roll(&mut self, now: u64, tx: &Sender<Msg>) {
        if now < self.measure_ns {
            return;
        }
        let mut s = (now - self.measure_ns) / NS_PER_S;
        if let Some(last) = self.last_second {
            s = s.min(last);
        }
        while self.second < s {
            self.flush(tx);
            self.second += 1;
        }
    }

    fn flush(&mut self, tx: &Sender<Msg>) {
        let msg = Msg::Second {
            thread: self.thread,
            second: self.second,
            hist: std::mem::replace(&mut self.hist, new_histogram()),
            replies: std::mem::take(&mut self.sec_replies),
            errors: std::mem::take(&mut self.sec_errors),
        };
        // The main thread outlives the workers; a send can fail only if it panicked.
        let _ = tx.send(msg);
    }
}

fn errno_kind(res: i32) -> String {
    let e = io::Error::from_raw_os_error(-res);
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        _ => format!("socket error: {e}"),
    }
}

/// The connect failure in a few words.
pub fn connect_error_kind(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "connect timed out".into(),
        _ => format!("connect failed: {e}"),
    }
}

/// Connects with a timeout and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn build_ring(conns: usize) -> io::Result<IoUring> {
    // Every connection has at most two operations in the ring, so a completion queue of
    // twice the connections never overflows.
    let cq_entries = ((2 * conns + 8) as u32).next_power_of_two();
    let entries = cq_entries.min(MAX_RING_ENTRIES);
    let mut b = IoUring::builder();
    b.setup_cqsize(cq_entries.max(entries))
        .setup_single_issuer()
        .setup_defer_taskrun();
    let ring = match b.build(entries) {
        Ok(r) => r,
        Err(_) => IoUring::builder()
            .setup_cqsize(cq_entries.max(entries))
            .build(entries)?,
    };
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::other(
            "io_uring lacks IORING_FEAT_EXT_ARG (Linux 5.11 or newer is needed)",
        ));
    }
    Ok(ring)
}

/// Runs one thread's part of a phase; always ends with `Msg::Done`.
pub fn run_worker(plan: &WorkerPlan<'_>, sync: &PhaseSync, stop: &AtomicBool, tx: &Sender<Msg>) {
    let mut totals = WorkerTotals {
        thread: plan.thread,
        ..WorkerTotals::default()
    };
    let mut conns = Vec::with_capacity(plan.conns.len());
    for c in plan.conns.clone() {
        match connect(plan.addr) {
            Ok(stream) => {
                sync.connected.fetch_add(1, Ordering::SeqCst);
                conns.push(new_conn(plan, c, stream));
            }
            Err(e) => {
                let kind = connect_error_kind(&e);
                totals.conn_errors.add(kind.as_bytes(), 1);
                let mut first = sync
                    .connect_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                first.get_or_insert(kind);
            }
        }
    }
    let ring = match build_ring(conns.len().max(1)) {
        Ok(r) => Some(r),
        Err(e) => {
            let mut first = sync
                .connect_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            first.get_or_insert(format!("io_uring: {e}"));
            sync.connected.fetch_sub(conns.len(), Ordering::SeqCst);
            conns.clear();
            None
        }
    };
    if matches!(plan.mode, LoadMode::Open { .. }) {
        set_timer_slack_ns(OPEN_LOOP_TIMER_SLACK_NS);
    }
    sync.ready.wait();
    sync.go.wait();
    let clock = sync.clock.get().copied();
    let mut stats = ThreadStats {
        thread: plan.thread,
        measure_ns: clock.map_or(0, |c| c.measure_ns),
        last_second: plan.last_second,
        second: 0,
        hist: new_histogram(),
        sec_replies: 0,
        sec_errors: 0,
        totals,
    };
    if let (Some(clock), Some(mut ring)) = (clock, ring)
        && !sync.abort.load(Ordering::SeqCst)
    {
        for (i, c) in conns.iter_mut().enumerate() {
            if let Err(e) = c.submit_recv(&mut ring, i) {
                c.fail(&format!("io_uring: {e}"), &mut stats);
            }
        }
        if let Err(e) = drive(plan, clock, &mut ring, &mut conns, &mut stats, stop, tx) {
            stats
                .totals
                .conn_errors
                .add(format!("io_uring: {e}").as_bytes(), 1);
        }
        teardown(&mut ring, &mut conns);
    }
    stats.flush(tx);
    let _ = tx.send(Msg::Done(stats.totals));
}

fn new_conn(plan: &WorkerPlan<'_>, c: usize, stream: TcpStream) -> Conn {
    let total = plan.total_conns as u64;
    let quota = plan
        .requests
        .map_or(u64::MAX, |r| r / total + u64::from((c as u64) < r % total));
    let offset_ns = match plan.mode {
        LoadMode::Open { interval_ns, .. } => interval_ns * c as f64 / total as f64,
        LoadMode::Closed { .. } => 0.0,
    };
    Conn {
        fd: stream.as_raw_fd(),
        stream,
        requests: RequestGen::new(plan.workload, plan.seed, c as u64, total),
        rbuf: vec![0; READ_BUFFER_BYTES],
        rstart: 0,
        rlen: 0,
        recv_pending: false,
        sending: Vec::new(),
        sent: 0,
        send_pending: false,
        queued: Vec::new(),
        inflight: VecDeque::new(),
        waiting_since: 0,
        scheduled: 0,
        offset_ns,
        quota,
        alive: true,
    }
}

/// The event loop of one thread.
fn drive(
    plan: &WorkerPlan<'_>,
    clock: PhaseClock,
    ring: &mut IoUring,
    conns: &mut [Conn],
    stats: &mut ThreadStats,
    stop: &AtomicBool,
    tx: &Sender<Msg>,
) -> io::Result<()> {
    let mut cqes: Vec<(u64, i32)> = Vec::with_capacity(2 * conns.len());
    let mut drain_deadline: Option<u64> = None;
    loop {
        let now = monotonic_ns();
        stats.roll(now, tx);
        cqes.clear();
        cqes.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for &(data, res) in &cqes {
            let i = (data >> 8) as usize;
            let Some(conn) = conns.get_mut(i) else {
                continue;
            };
            match data & 0xff {
                OP_RECV => on_recv(conn, ring, i, res, now, stats)?,
                OP_SEND => on_send(conn, ring, i, res, stats)?,
                _ => {}
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }

        // Closed loop sends until the end; open loop sends every request due before the
        // end, even one sent late because this thread woke late.
        let closed_sending = clock.end_ns.is_none_or(|e| now < e);
        let mut wake = now + POLL_NS;
        let mut busy = false;
        let mut any_sending = false;
        for (i, conn) in conns.iter_mut().enumerate() {
            if !conn.alive {
                continue;
            }
            if !conn.inflight.is_empty() && now.saturating_sub(conn.waiting_since) > plan.timeout_ns
            {
                conn.fail("timeout", stats);
                continue;
            }
            if conn.has_more(plan.mode, clock, closed_sending) {
                issue(plan, conn, clock, now, stats, &mut wake);
            }
            conn.flush(ring, i)?;
            let more = conn.has_more(plan.mode, clock, closed_sending);
            any_sending |= more;
            busy |= more || !conn.inflight.is_empty();
        }
        if !busy {
            return Ok(());
        }
        if any_sending {
            if let (LoadMode::Closed { .. }, Some(end)) = (plan.mode, clock.end_ns) {
                wake = wake.min(end);
            }
        } else {
            let deadline = *drain_deadline.get_or_insert(now + DRAIN_NS);
            if now >= deadline {
                for conn in conns.iter_mut().filter(|c| c.alive) {
                    let left = conn.inflight.len() as u64;
                    if left > 0 {
                        stats.totals.conn_errors.add(b"unanswered at end", left);
                        stats.sec_errors += left;
                    }
                }
                return Ok(());
            }
            wake = wake.min(deadline);
        }
        if now < stats.measure_ns {
            wake = wake.min(stats.measure_ns);
        } else if stats.last_second.is_none_or(|l| stats.second < l) {
            wake = wake.min(stats.measure_ns + (stats.second + 1) * NS_PER_S);
        }
        if wake <= now {
            ring.submit()?;
            continue;
        }
        let ts = types::Timespec::from(Duration::from_nanos(wake - now));
        let args = types::SubmitArgs::new().timespec(&ts);
        match ring.submitter().submit_with_args(1, &args) {
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

/// Writes the requests a connection should send now into its queue.
#[inline]
fn issue(
    plan: &WorkerPlan<'_>,
    conn: &mut Conn,
    clock: PhaseClock,
    now: u64,
    stats: &mut ThreadStats,
    wake: &mut u64,
) {
    let was_idle = conn.inflight.is_empty();
    match plan.mode {
        LoadMode::Closed { batch } => {
            if !was_idle {
                return;
            }
            for _ in 0..batch {
                if conn.quota == 0 {
                    break;
                }
                conn.requests.write_next(plan.workload, &mut conn.queued);
                conn.inflight.push_back(now);
                if now >= clock.measure_ns {
                    conn.quota -= 1;
                    stats.totals.sent += 1;
                }
            }
        }
        LoadMode::Open { interval_ns, depth } => loop {
            let due = conn.due(clock, interval_ns);
            if clock.end_ns.is_some_and(|e| due >= e) {
                break;
            }
            if due > now {
                *wake = (*wake).min(due);
                break;
            }
            if conn.inflight.len() >= depth || conn.quota == 0 {
                break;
            }
            conn.requests.write_next(plan.workload, &mut conn.queued);
            conn.inflight.push_back(due);
            conn.scheduled += 1;
            if due >= clock.measure_ns {
                conn.quota -= 1;
                stats.totals.sent += 1;
            }
        },
    }
    if was_idle && !conn.inflight.is_empty() {
        conn.waiting_since = now;
    }
}

fn on_send(
    conn: &mut Conn,
    ring: &mut IoUring,
    i: usize,
    res: i32,
    stats: &mut ThreadStats,
) -> io::Result<()> {
    conn.send_pending = false;
    if res < 0 {
        conn.fail(&errno_kind(res), stats);
        return Ok(());
    }
    if !conn.alive {
        return Ok(());
    }
    conn.sent += res as usize;
    if conn.sent < conn.sending.len() {
        conn.submit_send(ring, i)
    } else {
        conn.flush(ring, i)
    }
}

fn on_recv(
    conn: &mut Conn,
    ring: &mut IoUring,
    i: usize,
    res: i32,
    now: u64,
    stats: &mut ThreadStats,
) -> io::Result<()> {
    conn.recv_pending = false;
    if !conn.alive {
        return Ok(());
    }
    if res < 0 {
        conn.fail(&errno_kind(res), stats);
        return Ok(());
    }
    if res == 0 {
        conn.fail("closed by server", stats);
        return Ok(());
    }
    conn.rlen += res as usize;
    while conn.rstart < conn.rlen {
        let skipped = match skip_reply(&conn.rbuf[conn.rstart..conn.rlen]) {
            Ok(Some(s)) => s,
            Ok(None) => break,
            Err(e) => {
                conn.fail(&format!("protocol error: {e}"), stats);
                return Ok(());
            }
        };
        let Some(started) = conn.inflight.pop_front() else {
            conn.fail("protocol error: reply without a request", stats);
            return Ok(());
        };
        conn.waiting_since = now;
        stats.totals.all_replies += 1;
        if started >= stats.measure_ns {
            let latency_us = (now.saturating_sub(started) + 500) / 1000;
            stats.hist.saturating_record(latency_us.max(1));
            stats.sec_replies += 1;
            stats.totals.replies += 1;
            stats.totals.last_reply_ns = now;
            if let Some((a, b)) = skipped.error_kind {
                let from = conn.rstart;
                stats
                    .totals
                    .reply_errors
                    .add(&conn.rbuf[from + a..from + b], 1);
                stats.sec_errors += 1;
            }
        }
        conn.rstart += skipped.len;
    }
    if conn.rstart == conn.rlen {
        conn.rstart = 0;
        conn.rlen = 0;
    } else if conn.rbuf.len() - conn.rlen < MIN_RECV_ROOM_BYTES {
        conn.rbuf.copy_within(conn.rstart..conn.rlen, 0);
        conn.rlen -= conn.rstart;
        conn.rstart = 0;
        if conn.rbuf.len() - conn.rlen < MIN_RECV_ROOM_BYTES {
            if conn.rbuf.len() >= MAX_READ_BUFFER_BYTES {
                conn.fail("protocol error: reply larger than the read buffer", stats);
                return Ok(());
            }
            let grown = (conn.rbuf.len() * 2).min(MAX_READ_BUFFER_BYTES);
            conn.rbuf.resize(grown, 0);
        }
    }
    conn.submit_recv(ring, i)
}

/// Shuts every socket so the operations in the ring complete, and waits for them; if the
/// kernel does not finish in time, the connections (and their buffers) are leaked rather
/// than freed under it.
fn teardown(ring: &mut IoUring, conns: &mut Vec<Conn>) {
    for c in conns.iter() {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    let deadline = monotonic_ns() + TEARDOWN_NS;
    loop {
        for cqe in ring.completion() {
            if let Some(c) = conns.get_mut((cqe.user_data() >> 8) as usize) {
                match cqe.user_data() & 0xff {
                    OP_RECV => c.recv_pending = false,
                    OP_SEND => c.send_pending = false,
                    _ => {}
                }
            }
        }
        if conns.iter().all(|c| !c.recv_pending && !c.send_pending) {
            return;
        }
        let now = monotonic_ns();
        if now >= deadline {
            std::mem::forget(std::mem::take(conns));
            return;
        }
        let ts = types::Timespec::from(Duration::from_millis(10));
        let args = types::SubmitArgs::new().timespec(&ts);
        let _ = ring.submitter().submit_with_args(1, &args);
    }
}

/// Lets the kernel fire this thread's timers up to `ns` late (Linux's default is 50 µs:
/// in open loop that lateness would be counted as server latency).
#[expect(unsafe_code, reason = "prctl(PR_SET_TIMERSLACK)")]
fn set_timer_slack_ns(ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes an integer, applies to the calling thread only and
    // touches no memory; failure leaves the default slack, which is only less precise.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong) };
}
