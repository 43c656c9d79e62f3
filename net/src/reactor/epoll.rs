//! The readiness backend: the same loop as the io_uring [`Reactor`](super::Reactor), for
//! hosts where io_uring is refused (Docker's default seccomp profile, hardened kernels,
//! `kernel.io_uring_disabled`). Chosen at start (`io-backend`), never mixed with io_uring in
//! one process.
//!
//! One `epoll` instance per shard, every socket registered edge-triggered for input and
//! output. Each iteration: read from the connections the kernel reported readable (one
//! `recv` each; one that filled the buffer is read again next iteration, so a flood on one
//! connection cannot starve the others), drain the inbox, run the tick, then write each
//! touched connection's output at once (`send` until done or `EAGAIN`; the rest waits for
//! `EPOLLOUT`), wake other shards by writing their eventfd, and wait in one `epoll_wait`.
//! The service sees exactly the io_uring reactor's calls in the same order: a receive is a
//! `recv` done at once, a send completion the end of a write that drained the output.

use super::{
    ACCEPT_BACKOFF_MS, AcceptFailures, Conn, ConnId, Events, Io, NestedPoll,
    OUTPUT_BACKPRESSURE_BYTES, Service, Shared, drain_inbox, take_conn, unix_ms, wall_offset_ms,
};
use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events one `epoll_wait` returns at most; more stay ready for the next iteration.
pub const EPOLL_EVENTS_PER_WAIT: usize = 1024;
/// Connections one listener accepts per iteration at most, so a connection storm does not
/// hold the loop (the rest wait in the backlog; the listener stays readable).
pub const ACCEPTS_PER_ITERATION: usize = 256;

// Event tokens: kind in bits 0..8, index (connection slot, listener, watch tag) in 8..32,
// generation in 32..64.
const EV_CONN: u64 = 1;
const EV_ACCEPT: u64 = 2;
const EV_WAKE: u64 = 3;
const EV_SIGNAL: u64 = 4;
const EV_WATCH: u64 = 5;

/// What a connection's socket is registered for: edge-triggered input, output and hang-up.
const CONN_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
/// Events that mean a read will not block (data, end of input, or an error to collect).
const READ_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Events after which the socket's input ends (an end of input or an error to collect).
const HUP_EVENTS: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Events that mean a write will not block (room, or an error to collect).
const WRITE_EVENTS: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// `recv`/`send` results of a socket that would block, and of an interrupted call.
const NEG_EAGAIN: isize = -(libc::EAGAIN as isize);
const NEG_EINTR: isize = -(libc::EINTR as isize);

fn token(kind: u64, index: u32, generation: u32) -> u64 {
    kind | (u64::from(index) << 8) | (u64::from(generation) << 32)
}

fn untoken(t: u64) -> (u64, u32, u32) {
    (t & 0xff, ((t >> 8) & 0xff_ffff) as u32, (t >> 32) as u32)
}

/// One shard's event loop on epoll.
pub struct EpollReactor<S: Service> {
    epoll: OwnedFd,
    /// Written by other shards to wake this one (its mailbox's eventfd).
    wake: OwnedFd,
    io: Io<S::Msg, S::Conn>,
    listeners: Vec<RawFd>,
    /// Whether each listener is registered (not while accepting is paused).
    listening: Vec<bool>,
    accept_paused_until: Option<Instant>,
    accept_failures: AcceptFailures,
    signal_fd: Option<RawFd>,
    events: Vec<libc::epoll_event>,
    /// This iteration's list while the loop handles it: what a nested poll left last time
    /// (`handling`), then `events[..ready]`; `next` is the position of the next to handle.
    /// A nested poll goes on from there (edge-triggered events are reported once: one the
    /// outer wait took is not reported again to the nested wait).
    handling: Vec<libc::epoll_event>,
    ready: usize,
    next: usize,
    /// A nested poll's own events (the outer loop may be iterating `events`), and those it
    /// left for the outer loop, one per token (handled first next time).
    nested_events: Vec<libc::epoll_event>,
    deferred: Vec<libc::epoll_event>,
    /// Connections with input left in the socket that may read: read next iteration.
    unread: Vec<ConnId>,
    /// Connections whose output a write drained (the io_uring reactor's send completion):
    /// the service sees their waiting input next iteration.
    drained: Vec<ConnId>,
    closed: Vec<Conn<S::Conn>>,
    woken: bool,
    stopping: Option<Instant>,
    counted_drained: bool,
    next_tick: Instant,
    epoch: Instant,
    epoch_ns: u64,
    /// Monotonic time of the last waiting `epoll_wait` (0 before the first).
    entered_ns: u64,
    /// Wall clock minus monotonic clock, in ms (see the io_uring reactor's).
    wall_offset_ms: i64,
}

impl<S: Service> EpollReactor<S> {
    /// A reactor for `shard` accepting on `listeners` (bound and listening, non-blocking;
    /// one set per shard with `SO_REUSEPORT`, or shared: they are registered with
    /// `EPOLLEXCLUSIVE` so one shard wakes per connection).
    pub fn new(
        shard: usize,
        shared: Arc<Shared<S::Msg>>,
        listeners: Vec<RawFd>,
        signal_fd: Option<RawFd>,
    ) -> io::Result<Self> {
        let epoll = epoll_create()?;
        let wake = eventfd()?;
        let now = Instant::now();
        let epoch_ns = sys::monotonic_ns();
        let ep = epoll.as_raw_fd();
        ctl(
            ep,
            libc::EPOLL_CTL_ADD,
            wake.as_raw_fd(),
            libc::EPOLLIN as u32,
            token(EV_WAKE, 0, 0),
        )?;
        if let Some(fd) = signal_fd {
            ctl(
                ep,
                libc::EPOLL_CTL_ADD,
                fd,
                libc::EPOLLIN as u32,
                token(EV_SIGNAL, 0, 0),
            )?;
        }
        shared.mailboxes.register_eventfd(shard, wake.as_raw_fd());
        let mut io = Io::new(shard, shared, now, epoch_ns);
        io.now_ms = unix_ms();
        Ok(Self {
            epoll,
            wake,
            io,
            listening: vec![false; listeners.len()],
            listeners,
            accept_paused_until: None,
            accept_failures: AcceptFailures::default(),
            signal_fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EPOLL_EVENTS_PER_WAIT],
            handling: Vec::new(),
            ready: 0,
            next: 0,
            nested_events: Vec::new(),
            deferred: Vec::new(),
            unread: Vec::new(),
            drained: Vec::new(),
            closed: Vec::new(),
            woken: false,
            stopping: None,
            counted_drained: false,
            next_tick: now,
            epoch: now,
            epoch_ns,
            entered_ns: 0,
            wall_offset_ms: wall_offset_ms(epoch_ns),
        })
    }

    /// Runs until a shutdown completes.
    pub fn run(&mut self, service: &mut S) -> io::Result<()> {
        service.attach_nested(std::ptr::from_mut::<Self>(self) as *mut dyn NestedPoll<S::Msg, S::Conn>);
        self.listen_all();
        let mut ready = 0;
        loop {
            let start_ns = sys::monotonic_ns();
            self.io.now = self.epoch + Duration::from_nanos(start_ns.saturating_sub(self.epoch_ns));
            self.io.now_ns = start_ns;
            if self.io.now >= self.next_tick {
                self.wall_offset_ms = wall_offset_ms(start_ns);
            }
            self.io.now_ms = (start_ns / 1_000_000) as i64 + self.wall_offset_ms;
            if self.entered_ns != 0 {
                self.io.stats.idle_ns += start_ns.saturating_sub(self.entered_ns);
            }
            self.io.stats.iterations += 1;

            self.handle_events(service, ready);
            let more_mail = drain_inbox(&mut self.io, service, &mut self.woken);

            if self.io.now >= self.next_tick {
                service.on_tick(&mut self.io);
                self.next_tick = self.io.now + service.tick_interval();
                if let Some((from, fds)) = self.io.listener_swap.take() {
                    self.swap_listeners(from, fds);
                }
            }
            if self.accept_paused_until.is_some_and(|t| self.io.now >= t) {
                self.accept_paused_until = None;
                if self.stopping.is_none() && !self.io.shared.shutting_down() {
                    self.listen_all();
                }
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
            // Sends and wake-ups above went out at once: nothing waits for a submit.
            self.io.submit_early = false;
            service.after_flush(&mut self.io);
            for (fd, already_read, transport) in std::mem::take(&mut self.io.adopted) {
                self.take_conn(service, fd, None, &already_read, transport);
            }
            for (fd, tag) in std::mem::take(&mut self.io.watches) {
                self.watch(service, fd, tag);
            }

            if let Some(since) = self.stopping {
                let (done, flush) = self.io.drain_step(since, &mut self.counted_drained);
                if flush {
                    self.flush_outbox();
                }
                if done {
                    return Ok(());
                }
            }

            let max_wait = self.io.max_wait.take();
            let busy_anyway = more_mail
                || self.io.outbox_pending()
                || !self.deferred.is_empty()
                || !self.unread.is_empty()
                || !self.drained.is_empty()
                || !self.io.dirty.is_empty();
            let timeout_ms = if busy_anyway {
                0
            } else {
                let until_tick = self.next_tick.saturating_duration_since(Instant::now());
                let wait = max_wait.map_or(until_tick, |m| m.min(until_tick));
                // Round up: a wait cut short would spin until the deadline.
                i32::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
            };
            let end_ns = sys::monotonic_ns();
            let busy = end_ns.saturating_sub(start_ns);
            self.io.stats.busy_ns += busy;
            self.io.stats.peak_iteration_ns = self.io.stats.peak_iteration_ns.max(busy);
            self.io.stats.enters += 1;
            self.entered_ns = end_ns;
            ready = match wait(self.epoll.as_raw_fd(), &mut self.events, timeout_ms) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => 0,
                Err(e) => return Err(e),
            };
        }
    }

    /// Handles the `ready` events of the last wait, then reads again the connections whose
    /// last read filled the buffer, then tells the service of drained outputs.
    fn handle_events(&mut self, service: &mut S, ready: usize) {
        self.io.stats.completions += ready as u64;
        // What a nested poll left came before these. The list is read through `self` at
        // each step: a nested poll run by one of these events goes on with the rest.
        debug_assert!(self.handling.is_empty());
        std::mem::swap(&mut self.handling, &mut self.deferred);
        self.ready = ready;
        self.next = 0;
        while let Some(ev) = self.event_at(self.next) {
            self.next += 1;
            let (kind, index, generation) = untoken(ev.u64);
            match kind {
                EV_CONN => self.on_conn_event(service, ConnId { index, generation }, ev.events),
                EV_ACCEPT => self.accept(service, index as usize),
                EV_WAKE => {
                    let mut buf = [0u8; 8];
                    read_fd(self.wake.as_raw_fd(), &mut buf);
                    self.woken = true;
                }
                EV_SIGNAL => self.read_signal(service),
                EV_WATCH => {
                    // One-shot: the descriptor may be closed by the service from here on.
                    let _ = ctl(
                        self.epoll.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        generation as RawFd,
                        0,
                        0,
                    );
                    service.on_readable(&mut self.io, index, ev.events as i32);
                }
                _ => {}
            }
        }
        self.handling.clear();
        self.ready = 0;
        self.next = 0;
        // Those whose last read filled the buffer (and those a nested poll left).
        for id in std::mem::take(&mut self.unread) {
            if self.io.conn(id).is_some_and(|c| c.ready_in) {
                self.read_conn(service, id);
            }
        }
        for id in std::mem::take(&mut self.drained) {
            let Some(conn) = self.io.conn(id) else {
                continue;
            };
            if !conn.input.is_empty()
                && !conn.is_closing()
                && conn.pending_output() < OUTPUT_BACKPRESSURE_BYTES
            {
                service.on_input(&mut self.io, id);
            }
        }
    }

    /// The event at position `i` of the list being handled (see `handling`).
    fn event_at(&self, i: usize) -> Option<libc::epoll_event> {
        if let Some(ev) = self.handling.get(i) {
            return Some(*ev);
        }
        let j = i - self.handling.len();
        (j < self.ready).then(|| self.events[j])
    }

    fn on_conn_event<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        id: ConnId,
        events: u32,
    ) {
        let Some(conn) = self.io.conn(id) else {
            return;
        };
        if events & WRITE_EVENTS != 0 {
            conn.ready_out = true;
        }
        if events & READ_EVENTS != 0 {
            conn.ready_in = true;
            // The peer's end of input (or an error) is reported once: read until it shows.
            conn.peer_hup |= events & HUP_EVENTS != 0;
            self.read_conn(service, id);
        }
    }

    /// One `recv` into the connection's input (or its session's ciphertext buffer) if it
    /// may read now; what the io_uring reactor does with a single-shot receive's result.
    fn read_conn<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        id: ConnId,
    ) {
        let Some(conn) = self.io.conn(id) else {
            return;
        };
        if !may_read(conn) {
            return; // `ready_in` stays: the flush reads once reading may resume.
        }
        let target = match conn.transport.as_deref_mut() {
            Some(t) => &mut t.wire_in,
            None => &mut conn.input,
        };
        let (ptr, len) = target.prepare_recv();
        let res = recv(conn.fd, ptr, len);
        conn.input.end_lend();
        if res < 0 {
            if res == NEG_EAGAIN || res == NEG_EINTR {
                conn.ready_in = res == NEG_EINTR;
            } else {
                conn.broken = true;
                conn.output.clear();
            }
            return;
        }
        // A buffer that filled leaves `ready_in` set: more may be waiting and no new edge
        // reports it, so the flush reads again. A short read emptied the socket; the next
        // arrival raises a new edge, but an end of input already reported raises none.
        if (res as usize) < len && !conn.peer_hup {
            conn.ready_in = false;
        }
        if res == 0 {
            conn.ready_in = false;
            conn.input_ended = true;
            if !conn.is_closing() {
                service.on_input(&mut self.io, id);
            }
            return;
        }
        if let Some(t) = conn.transport.as_deref_mut() {
            let before = conn.input.len();
            if !t.receive_buffered(res as usize, &mut conn.input) {
                conn.closing = true;
                conn.output.clear();
            } else if conn.input.len() != before && !conn.is_closing() {
                service.on_input(&mut self.io, id);
            }
            return;
        }
        conn.input.commit_recv(res as usize);
        if !conn.is_closing() {
            service.on_input(&mut self.io, id);
        }
    }

    fn read_signal(&mut self, service: &mut S) {
        let Some(fd) = self.signal_fd else {
            return;
        };
        let mut buf = [0u8; sys::SIGNALFD_SIGINFO_BYTES];
        if read_fd(fd, &mut buf) == sys::SIGNALFD_SIGINFO_BYTES as isize {
            let signo = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
            service.on_signal(&mut self.io, signo);
        }
        if self.io.shared.shutting_down() {
            let _ = ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, 0, 0);
        }
    }

    fn watch(&mut self, service: &mut S, fd: RawFd, tag: u32) {
        let events = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
        let t = token(EV_WATCH, tag, fd as u32);
        let ep = self.epoll.as_raw_fd();
        let added = match ctl(ep, libc::EPOLL_CTL_ADD, fd, events, t) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                ctl(ep, libc::EPOLL_CTL_MOD, fd, events, t)
            }
            other => other,
        };
        if let Err(e) = added {
            // Not pollable (a regular file is always readable) or gone: say so at once,
            // as a failed poll completion would.
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            let res = if errno == libc::EPERM {
                i32::from(libc::POLLIN)
            } else {
                -errno
            };
            service.on_readable(&mut self.io, tag, res);
        }
    }

    fn listen_all(&mut self) {
        for i in 0..self.listeners.len() {
            let fd = self.listeners[i];
            if fd >= 0 && !self.listening[i] {
                let events = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;
                if ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    fd,
                    events,
                    token(EV_ACCEPT, i as u32, 0),
                )
                .is_ok()
                {
                    self.listening[i] = true;
                }
            }
        }
    }

    fn unlisten(&mut self, i: usize) {
        if self.listening[i] {
            let _ = ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.listeners[i],
                0,
                0,
            );
            self.listening[i] = false;
        }
    }

    /// Puts `fds` in place of the listeners from index `from` on (the old ones leave the
    /// epoll set and are closed).
    fn swap_listeners(&mut self, from: usize, fds: Vec<RawFd>) {
        let from = from.min(self.listeners.len());
        for i in from..self.listeners.len() {
            self.unlisten(i);
            if self.listeners[i] >= 0 {
                sys::close(self.listeners[i]);
            }
        }
        self.listeners.truncate(from);
        self.listeners.extend(fds);
        self.listening.truncate(from);
        self.listening.resize(self.listeners.len(), false);
        let stopping = self.stopping.is_some() || self.io.shared.shutting_down();
        if !stopping && self.accept_paused_until.is_none() {
            self.listen_all();
        }
    }

    fn begin_stop(&mut self) {
        self.stopping = Some(self.io.now);
        for i in 0..self.listeners.len() {
            self.unlisten(i);
            if self.listeners[i] >= 0 {
                sys::close(self.listeners[i]);
                self.listeners[i] = -1;
            }
        }
        self.io.for_each_conn(Conn::close_after_flush);
    }

    /// Accepts what listener `i` holds, up to [`ACCEPTS_PER_ITERATION`].
    fn accept<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        i: usize,
    ) {
        for _ in 0..ACCEPTS_PER_ITERATION {
            if self.stopping.is_some() || !self.listening[i] {
                return;
            }
            let fd = accept(self.listeners[i]);
            if fd < 0 {
                let errno = -fd;
                match errno {
                    libc::EAGAIN | libc::EINTR => return,
                    libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                        // Stop accepting for a while: the connection stays in the backlog.
                        self.accept_paused_until =
                            Some(self.io.now + Duration::from_millis(ACCEPT_BACKOFF_MS));
                        for l in 0..self.listeners.len() {
                            self.unlisten(l);
                        }
                    }
                    // The peer left before we took it: go on with the next.
                    libc::ECONNABORTED => continue,
                    _ => {}
                }
                self.accept_failures.report(&mut self.io, service, errno);
                return;
            }
            self.take_conn(service, fd, Some(i), &[], None);
        }
    }

    /// Makes `fd` a connection of this shard if the service accepts it, registered with
    /// the shard's epoll instance (see the io_uring reactor's `take_conn`).
    fn take_conn<E: Events<Msg = S::Msg, Conn = S::Conn> + ?Sized>(
        &mut self,
        service: &mut E,
        fd: RawFd,
        listener: Option<usize>,
        already_read: &[u8],
        transport: Option<Box<dyn crate::transport::Transport>>,
    ) {
        let epoll = self.epoll.as_raw_fd();
        take_conn(
            &mut self.io,
            service,
            fd,
            listener,
            already_read,
            transport,
            |io, got| {
                let t = token(EV_CONN, got.index, got.generation);
                if let Err(e) = ctl(epoll, libc::EPOLL_CTL_ADD, fd, CONN_EVENTS, t)
                    && let Some(conn) = io.conn(got)
                {
                    // Cannot be watched (out of memory): dropped like a failed socket.
                    eprintln!("percore: epoll_ctl on a new connection failed: {e}");
                    conn.broken = true;
                }
            },
        );
    }

    fn flush_conns(&mut self) {
        let mut dirty = std::mem::take(&mut self.io.dirty);
        for &index in &dirty {
            self.flush_conn(index);
        }
        dirty.clear();
        if self.io.dirty.is_empty() {
            self.io.dirty = dirty;
        }
    }

    /// Writes one connection's output (as far as the socket takes it), schedules its read
    /// if reading may resume, or closes it.
    fn flush_conn(&mut self, index: u32) {
        let now_ms = self.io.now_ms;
        let Some(conn) = self.io.slots[index as usize].conn.as_mut() else {
            return;
        };
        conn.dirty = false;
        if conn.broken {
            conn.output.clear();
        }
        let mut drained = false;
        while !conn.broken && conn.ready_out {
            conn.stage_output();
            if conn.sent >= conn.sending.len() {
                break;
            }
            let rest = &conn.sending[conn.sent..];
            let res = send(conn.fd, rest);
            if res > 0 {
                conn.last_send_ms = now_ms;
                conn.sent += res as usize;
                if conn.sent >= conn.sending.len() {
                    conn.sending.clear();
                    conn.sent = 0;
                    drained = true;
                }
            } else if res == NEG_EAGAIN {
                // The socket is full: the rest goes on `EPOLLOUT`.
                conn.ready_out = false;
            } else if res != NEG_EINTR {
                conn.broken = true;
                conn.output.clear();
            }
        }
        let id = conn.id();
        if drained && !conn.input.is_empty() {
            self.drained.push(id);
        }
        let done_sending = conn.sent >= conn.sending.len() && conn.output.is_empty();
        if conn.broken || (conn.closing && done_sending) {
            self.free_conn(index);
            return;
        }
        if conn.ready_in && may_read(conn) {
            self.unread.push(id);
        }
    }

    fn free_conn(&mut self, index: u32) {
        let slot = &mut self.io.slots[index as usize];
        let mut conn = slot.conn.take().expect("freeing a live connection");
        slot.generation = slot.generation.wrapping_add(1);
        self.io.free.push(index);
        self.io.live -= 1;
        let _ = ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, conn.fd, 0, 0);
        sys::close(conn.fd);
        conn.fd = -1;
        self.closed.push(conn);
    }

    /// Pushes the outbox's batches and wakes their shards through their eventfds.
    fn flush_outbox(&mut self) {
        for s in self.io.push_outbox() {
            if let Some(fd) = self.io.shared.mailboxes.event_fd(s) {
                // Cannot fail short of a counter at u64::MAX - 1 (EAGAIN: already woken).
                write_fd(fd, &1u64.to_ne_bytes());
            }
        }
    }
}

impl<S: Service> NestedPoll<S::Msg, S::Conn> for EpollReactor<S> {
    fn poll_nested(&mut self, events: &mut dyn Events<Msg = S::Msg, Conn = S::Conn>) -> bool {
        if std::mem::replace(&mut self.io.nested, true) {
            return false;
        }
        let now_ns = sys::monotonic_ns();
        self.io.now = self.epoch + Duration::from_nanos(now_ns.saturating_sub(self.epoch_ns));
        self.io.now_ns = now_ns;
        self.io.now_ms = (now_ns / 1_000_000) as i64 + self.wall_offset_ms;
        // First the rest of the list the outer loop is handling (what it took from the
        // kernel is not reported again), then what is ready now.
        while let Some(ev) = self.event_at(self.next) {
            self.next += 1;
            self.nested_event(events, ev);
        }
        let mut evs = std::mem::take(&mut self.nested_events);
        evs.resize(
            EPOLL_EVENTS_PER_WAIT,
            libc::epoll_event { events: 0, u64: 0 },
        );
        let ready = wait(self.epoll.as_raw_fd(), &mut evs, 0).unwrap_or(0);
        self.io.stats.completions += ready as u64;
        for ev in &evs[..ready] {
            self.nested_event(events, *ev);
        }
        self.nested_events = evs;
        // Connections that filled their buffer read again while they are free.
        let unread = std::mem::take(&mut self.unread);
        for id in unread {
            if events.free(id) && self.io.conn(id).is_some_and(|c| c.ready_in) {
                self.read_conn(events, id);
            } else {
                self.unread.push(id);
            }
        }
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
        // Outputs a write drained: the service sees their waiting input.
        let drained = std::mem::take(&mut self.drained);
        for id in drained {
            let Some(conn) = self.io.conn(id) else {
                continue;
            };
            if !events.free(id) {
                self.drained.push(id);
            } else if !conn.input.is_empty()
                && !conn.is_closing()
                && conn.pending_output() < OUTPUT_BACKPRESSURE_BYTES
            {
                events.on_input(&mut self.io, id);
            }
        }
        self.io.nested = false;
        self.io.shutting_down()
    }
}

impl<S: Service> EpollReactor<S> {
    /// One event in a nested poll: served if it is a free connection's, an accept with
    /// room or a wake-up; else left for the outer loop.
    fn nested_event(
        &mut self,
        events: &mut dyn Events<Msg = S::Msg, Conn = S::Conn>,
        ev: libc::epoll_event,
    ) {
        let (kind, index, generation) = untoken(ev.u64);
        let id = ConnId { index, generation };
        match kind {
            EV_CONN if events.free(id) => self.on_conn_event(events, id, ev.events),
            EV_ACCEPT if self.io.room_nested() => self.accept_nested(events, index as usize),
            EV_WAKE => {
                let mut buf = [0u8; 8];
                read_fd(self.wake.as_raw_fd(), &mut buf);
                self.woken = true;
            }
            _ => {
                // For the outer loop, once per token (edge-triggered connections report an
                // edge once; the others stay ready and come back until handled).
                match self.deferred.iter_mut().find(|d| d.u64 == ev.u64) {
                    Some(d) => d.events |= ev.events,
                    None => self.deferred.push(ev),
                }
            }
        }
    }

    /// A nested poll's accepts: as many as the connection table has room for.
    fn accept_nested(&mut self, events: &mut dyn Events<Msg = S::Msg, Conn = S::Conn>, i: usize) {
        if self.stopping.is_some() || !self.listening[i] {
            return;
        }
        while self.io.room_nested() {
            let fd = accept(self.listeners[i]);
            if fd < 0 {
                // Failures are the outer loop's (the listener stays readable).
                return;
            }
            self.take_conn(events, fd, Some(i), &[], None);
        }
    }
}

/// Whether the connection may take more input now (as the io_uring reactor arms a receive).
fn may_read<S>(conn: &Conn<S>) -> bool {
    !conn.read_paused
        && !conn.closing
        && !conn.broken
        && !conn.input_ended
        && conn.pending_output() < OUTPUT_BACKPRESSURE_BYTES
}

fn cvt(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The negated errno of a failed call, or its result.
fn result(r: isize) -> isize {
    if r < 0 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize)
    } else {
        r
    }
}

#[expect(unsafe_code, reason = "epoll_create1 syscall")]
fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the new descriptor is owned by the returned value.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[expect(unsafe_code, reason = "eventfd syscall")]
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the new descriptor is owned by the returned value.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[expect(unsafe_code, reason = "epoll_ctl syscall")]
fn ctl(epoll: RawFd, op: i32, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: ev is a valid epoll_event for the duration of the call.
    cvt(unsafe { libc::epoll_ctl(epoll, op, fd, &raw mut ev) }).map(|_| ())
}

#[expect(unsafe_code, reason = "epoll_wait syscall")]
fn wait(epoll: RawFd, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
    let max = i32::try_from(events.len()).unwrap_or(i32::MAX);
    // SAFETY: the kernel writes at most `max` events into the slice.
    let n = cvt(unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), max, timeout_ms) })?;
    Ok(n as usize)
}

/// `accept4`, non-blocking and close-on-exec: the descriptor, or a negated errno.
#[expect(unsafe_code, reason = "accept4 syscall")]
fn accept(listener: RawFd) -> RawFd {
    // SAFETY: no address is asked for; the new descriptor belongs to the caller.
    let fd = unsafe {
        libc::accept4(
            listener,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    result(fd as isize) as RawFd
}

/// One non-blocking receive into `len` bytes at `ptr` (whatever the socket's own mode: a
/// descriptor shared with a blocking reader stays non-blocking here): the bytes read, 0 at
/// the end of input, or a negated errno.
#[expect(unsafe_code, reason = "recv syscall into a buffer's spare capacity")]
fn recv(fd: RawFd, ptr: *mut u8, len: usize) -> isize {
    // SAFETY: `ptr..ptr+len` is spare capacity of an `InBuf` (`prepare_recv`), writable and
    // untouched until `commit_recv`.
    result(unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) })
}

/// One non-blocking send: the bytes taken, or a negated errno.
#[expect(unsafe_code, reason = "send syscall")]
fn send(fd: RawFd, bytes: &[u8]) -> isize {
    // SAFETY: the slice is valid for reads for the duration of the call.
    result(unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// One `write` (an eventfd's counter): the bytes written, or a negated errno.
#[expect(unsafe_code, reason = "write syscall")]
fn write_fd(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: the slice is valid for reads for the duration of the call.
    result(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// One `read` of a descriptor reported readable: the bytes read, or a negated errno.
#[expect(unsafe_code, reason = "read syscall")]
fn read_fd(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: the slice is valid for writes for the duration of the call.
    result(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}
