//! Serving a busy script's own shard (Redis's `processEventsWhileBlocked` from the Lua
//! hook).
//!
//! Past `busy-reply-threshold`, every run of the instruction hook makes one restricted pass
//! of the shard's loop ([`NestedPoll`]): new connections are accepted, the input of this
//! shard's other clients is parsed and run through `dispatch` as usual, which answers
//! `-BUSY` to everything but the allow-busy commands (SCRIPT KILL, FUNCTION KILL/STATS,
//! SHUTDOWN NOSAVE, MULTI/DISCARD/WATCH, AUTH, HELLO...), and the replies are written.
//!
//! What the script's own execution owns is not touched: the client that runs it (out of
//! its slot, so [`Events::free`] says no and its connection's events wait in the reactor),
//! the outbox of the interrupted iteration (messages made here wait in [`BusyState`] and
//! join it in `before_wait`), cross-shard mail (not drained: it runs after the script, in
//! order), timers and closes. The keyspace is only reached through `dispatch`, which lets
//! no command touching it run while the script is busy.

use crate::shard::{Msg, Parser, ShardData};
use percore_net::mailbox::Outbox;
use percore_net::reactor::{ConnId, Events, Io, NestedPoll};
use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// The reactor of this thread's shard, for nested polls (set when its loop starts).
type Poller = *mut dyn NestedPoll<Msg, ()>;

thread_local! {
    static POLLER: Cell<Option<Poller>> = const { Cell::new(None) };
}

/// Called by the shard when its loop starts (`Service::attach_nested`).
pub fn attach(poll: Poller) {
    POLLER.with(|p| p.set(Some(poll)));
}

/// What the requests served while a script is busy keep between hook runs.
pub struct BusyState {
    parser: Parser,
    /// Messages of the requests served here, for the next `before_wait`.
    pub outbox: Outbox<Msg>,
}

impl BusyState {
    fn new(shards: usize) -> Self {
        Self {
            parser: Parser::default(),
            outbox: Outbox::new(shards),
        }
    }
}

/// The nested poll's view of the shard: its data (lent by the script, see
/// `Engine::with_shard`), its own parser and outbox.
struct Serve<'a> {
    data: &'a mut ShardData,
    parser: &'a mut Parser,
    outbox: &'a mut Outbox<Msg>,
}

impl Events for Serve<'_> {
    type Msg = Msg;
    type Conn = ();

    fn on_accept(
        &mut self,
        io: &mut Io<Msg, ()>,
        id: ConnId,
        fd: RawFd,
        peer: Option<SocketAddr>,
    ) -> Result<(), Vec<u8>> {
        crate::shard::accept_client(self.data, io.now_ms, id, fd, peer)
    }

    fn transport(
        &mut self,
        _io: &mut Io<Msg, ()>,
        listener: usize,
    ) -> Option<Box<dyn percore_net::transport::Transport>> {
        self.data.shared.tls.accept(listener)
    }

    fn keepalive_s(&self) -> u32 {
        self.data.cfg.tcp_keepalive_secs
    }

    /// A connection is free when its client is in its slot: the one running the script
    /// (and any other whose state a caller holds) is out of it.
    fn free(&self, id: ConnId) -> bool {
        self.data
            .clients
            .get(id.index as usize)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.conn == id && !c.master)
    }

    fn on_input(&mut self, io: &mut Io<Msg, ()>, id: ConnId) {
        let data = &mut *self.data;
        let Some(mut client) = data
            .clients
            .get_mut(id.index as usize)
            .and_then(|c| c.take_if(|c| c.conn == id && !c.master))
        else {
            return;
        };
        data.now_ms = io.now_ms;
        data.start_clock(io.now_ns);
        if let Some(conn) = io.conn(id) {
            self.parser
                .run_requests(data, &mut client, conn, self.outbox);
            crate::shard::check_output_limits(data, &mut client, conn);
        }
        data.clients[id.index as usize] = Some(client);
        if data.shutdown_requested {
            // SHUTDOWN NOSAVE: the loop stops once the script ends, which the hook now
            // makes it do.
            data.shutdown_requested = false;
            io.request_shutdown();
        }
    }
}

/// One nested pass of the shard's loop from the Lua hook; true when the server is shutting
/// down (the script is then stopped).
pub(crate) fn serve() -> bool {
    let Some(poller) = POLLER.with(Cell::get) else {
        return false;
    };
    super::with_current_shard(|data| {
        let mut state = data
            .busy_serve
            .take()
            .unwrap_or_else(|| Box::new(BusyState::new(data.shards)));
        let down = {
            let mut serve = Serve {
                data,
                parser: &mut state.parser,
                outbox: &mut state.outbox,
            };
            poll(poller, &mut serve)
        };
        data.busy_serve = Some(state);
        down
    })
    .unwrap_or(false)
}

#[expect(
    unsafe_code,
    reason = "the Lua hook re-enters the reactor that is running the script's command"
)]
fn poll(poller: Poller, serve: &mut Serve) -> bool {
    // SAFETY: NOT SOUND under Rust's aliasing rules; see docs/architecture.md ("Busy
    // scripts") for why and for the sound shape. What holds: `poller` is the reactor of
    // this thread's shard, set by its `run` before the loop started; the reactor stays at
    // that address until `run` returns, and `run` is on this thread's stack below us (the
    // script runs inside one of its callbacks), so it is alive. The frames between `run`
    // and this hook are suspended inside the Lua call; the memory they use, the nested
    // poll leaves alone: the connection whose request runs the script (its client is out
    // of its slot, so `Serve::free` refuses it: its completions are deferred and its
    // buffers untouched), the outbox (never used here), the completion being handled
    // (copied out; the list is read by index), and the connection table's allocation (a
    // nested poll never grows it). Nested polls do not nest (EVAL/FCALL are refused while
    // busy, and the poll checks a flag). What does not hold: those frames' `&mut Reactor`
    // and `&mut Io` arguments are protected while they run, and this pointer is derived
    // from neither, so the writes below are foreign writes to protected memory.
    let poll = unsafe { &mut *poller };
    poll.poll_nested(serve)
}
