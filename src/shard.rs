//! One shard: its keyspace, its clients, and the [`Service`] the reactor drives.
//!
//! A request parsed here runs here when its keys live here. A single-shard command whose
//! key lives elsewhere joins this iteration's [`Forward`] batch for the owning shard
//! ([`Msg::Forward`]), which comes back with the replies ([`Msg::Answered`]); a part or a
//! step of a multi-shard command travels alone as a [`Msg::Run`], answered by a
//! [`Msg::Done`]. Each client keeps a queue of reply slots, so pipelined replies leave in
//! request order.

use crate::client::{Client, MAX_PENDING_REPLIES_PER_CONN, Pending, ReplyMode};
use crate::commands::{self, Command, Ctx, Exec, Gather, Handler, PartFn, Partial, flags};
use crate::config::Config;
use crate::forward::{Forward, ForwardPool, Fwd};
use crate::prefetch::{WARM_KEYS, Warm};
use crate::server::{LogLevel, ServerShared};
use crate::stats::ShardStats;
use percore_engine::keyspace::Keyspace;
use percore_engine::slot::shard_of_key;
use percore_net::mailbox::Outbox;
use percore_net::reactor::{Conn, ConnId, Events, Io, OUTPUT_BACKPRESSURE_BYTES, Service};
use percore_net::resp::{ParseLimits, Parsed, Protocol, ReplyWriter, Request, parse_request};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Time budget of one active-expiry pass per tick, as a share of the tick (Redis: 25%).
pub const ACTIVE_EXPIRE_CYCLE_TIME_PERCENT: u64 = 25;

/// Buffers kept in a shard's pool for cross-shard argv and replies, and the largest kept.
pub const BUF_POOL_MAX_BUFFERS: usize = 4096;
pub const BUF_POOL_MAX_BYTES_EACH: usize = 16 * 1024;

/// Puts `buf` (emptied) into `pool`, unless the pool is full or the buffer is big.
#[inline]
pub fn pool_put(pool: &mut Vec<Vec<u8>>, mut buf: Vec<u8>) {
    if buf.capacity() > 0
        && buf.capacity() <= BUF_POOL_MAX_BYTES_EACH
        && pool.len() < BUF_POOL_MAX_BUFFERS
    {
        buf.clear();
        pool.push(buf);
    }
}

/// Arguments copied for a trip to another shard, in one allocation: the argument count's
/// end offsets (`u32`, native endian) first, then the argument bytes.
#[derive(Debug, Default)]
pub struct Argv {
    data: Vec<u8>,
    argc: usize,
}

impl Argv {
    pub fn from_slices(args: &[&[u8]]) -> Self {
        let argc = args.len();
        let bytes: usize = args.iter().map(|a| a.len()).sum();
        let mut data = Vec::with_capacity(argc * 4 + bytes);
        let mut end = 0u32;
        for a in args {
            end += a.len() as u32;
            data.extend_from_slice(&end.to_ne_bytes());
        }
        for a in args {
            data.extend_from_slice(a);
        }
        Self { data, argc }
    }

    /// The arguments' size in bytes (with their offsets).
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    pub fn fill<'a>(&'a self, out: &mut Vec<&'a [u8]>) {
        let (ends, bytes) = self.data.split_at(self.argc * 4);
        let mut start = 0usize;
        for e in ends.chunks_exact(4) {
            let end = u32::from_ne_bytes([e[0], e[1], e[2], e[3]]) as usize;
            out.push(&bytes[start..end]);
            start = end;
        }
    }
}

/// Messages between shards.
pub enum Msg {
    /// Single-shard commands of `from`'s clients whose keys live on the receiver, in
    /// request order; the receiver runs them and mails the batch back as `Answered`.
    Forward { from: usize, batch: Forward },
    /// A `Forward` batch back with its replies.
    Answered { batch: Forward },
    /// A part or a step of a multi-shard command.
    Run {
        from: usize,
        conn: ConnId,
        seq: u64,
        db: u16,
        proto: Protocol,
        step: PartFn,
        argv: Argv,
        /// A part of a multi-shard write counted in the write gate: the shard that
        /// applies it (the last step, for a hop command) leaves the gate.
        gated: bool,
    },
    Done {
        conn: ConnId,
        seq: u64,
        shard: usize,
        result: Partial,
    },
    /// Park at this snapshot barrier after this iteration's replies and mail left.
    Park(Arc<crate::snapshot::Session>),
    /// The blocking commands' protocol (registrations, claims), see `blocking`.
    Block(crate::blocking::BlockMsg),
    /// A transaction moving on: to take its locks here, or to run its commands here
    /// (`crate::atomic`).
    Txn(Box<crate::atomic::Txn>),
    /// A finished transaction releases its locks here.
    Unlock {
        keys: Vec<crate::atomic::LockKey>,
        whole: bool,
    },
    /// A client dropped its watches of these keys (UNWATCH, DISCARD, EXEC, a close).
    Unwatch {
        client: u64,
        keys: Vec<crate::atomic::LockKey>,
    },
    /// Keyspace notifications of another shard for this shard's subscribers
    /// (`crate::notify`).
    Notify(Arc<[u8]>),
    /// MONITOR lines of another shard for this shard's monitors (`crate::monitor`).
    Monitor(Arc<[u8]>),
    /// Invalidations wait in this shard's tracking inbox (`crate::tracking`).
    Tracking,
    /// A MIGRATE's reads and deletions on the shards owning its keys (`crate::migrate`).
    Migrate(Box<crate::migrate::Mail>),
}

/// Everything a shard owns besides its I/O.
pub struct ShardData {
    pub id: usize,
    pub shards: usize,
    pub keyspace: Keyspace,
    pub shared: Arc<ServerShared>,
    /// This shard's copy of the configuration (refreshed when the generation moves).
    pub cfg: Config,
    cfg_generation: u64,
    /// Clients of this shard's connections, indexed by connection index.
    /// Boxed: a client is taken out of its slot while its requests run, and moving a
    /// pointer costs less than moving the struct (~50 instructions per request at P1).
    pub clients: Vec<Option<Box<Client>>>,
    pub stats: ShardStats,
    pub now_ms: i64,
    pub rng: u64,
    /// Connections to close once the current batch is done (CLIENT KILL).
    pub to_close: Vec<ConnId>,
    /// Set by SHUTDOWN.
    pub shutdown_requested: bool,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the tick runs the active expiry cycle.
    pub active_expire: bool,
    pub limits: ParseLimits,
    /// When the current command started: the end of the previous one in the same loop
    /// iteration, or the iteration's start (`start_clock`), so timing costs one clock read
    /// per command.
    pub cmd_clock: u64,
    /// The command of the previous request, to skip the table lookup in pipelines.
    pub last_cmd: Option<&'static Command>,
    /// Recycled byte buffers for replies waiting behind earlier ones.
    pub buf_pool: Vec<Vec<u8>>,
    /// Emptied [`Forward`] batches for reuse.
    pub fwd_pool: ForwardPool,
    /// Snapshot requests, barriers and this shard's part of a running snapshot.
    pub snap: crate::snapshot::ShardSnap,
    /// Replication: the master client and its ACKs (shard 0's; see `crate::replication`).
    pub repl: crate::replication::Local,
    /// Cluster mode: this shard's copy of the slot map, for routing requests.
    pub cluster: Option<Box<crate::cluster::ShardView>>,
    /// Pub/sub subscriptions of this shard's connections, and messages to deliver.
    pub pubsub: crate::pubsub::Registry,
    /// Blocked clients of this shard and waiters on its keys.
    pub blocking: crate::blocking::Registry,
    /// Intent locks of transactions on this shard's keys, and what waits for them.
    pub locks: crate::atomic::Locks,
    /// Keys of this shard watched by clients of any shard (WATCH).
    pub watches: crate::atomic::watch::Registry,
    /// This shard's Lua interpreter, created at the first script (see `scripting`).
    pub lua: Option<Box<crate::scripting::Engine>>,
    /// Keyspace notifications: enabled classes, what goes to other shards.
    pub notify: crate::notify::State,
    /// The ACL generation this shard's clients were linked at.
    pub acl: crate::acl::ShardAcl,
    /// Effects of this shard's writes, for the stream (`propagate`).
    pub effects: crate::propagate::Log,
    /// This shard's monitors and the lines for them (`crate::monitor`).
    pub monitor: crate::monitor::Local,
    /// Connections held by CLIENT PAUSE (`crate::pause`).
    pub pause: crate::pause::Local,
    /// `maxmemory` eviction: this shard's pool (see `evict`).
    pub evict: crate::evict::State,
    /// Its clients' memory, client eviction (see `client_mem`).
    pub client_mem: crate::client_mem::Local,
    /// CLIENT TRACKING: this shard's connections by id, invalidations leaving.
    pub tracking: crate::tracking::Local,
    /// MIGRATEs in progress (`crate::migrate`).
    pub migrate: crate::migrate::Local,
    /// What serving requests while a script is busy keeps (`scripting::busy`).
    pub busy_serve: Option<Box<crate::scripting::busy::BusyState>>,
}

impl ShardData {
    pub fn new(id: usize, shards: usize, shared: Arc<ServerShared>) -> Self {
        let cfg = shared.config();
        let client_mem = crate::client_mem::Local::new(&cfg);
        let seed = crate::server::random_seed();
        let cluster = shared
            .cluster
            .is_some()
            .then(crate::cluster::ShardView::stale);
        let mut stats = ShardStats::new();
        stats.set_latency_threshold_ms(cfg.latency_monitor_threshold_ms);
        let mut keyspace =
            Keyspace::new(cfg.keyspace_databases(), seed).with_slot_index(cfg.cluster_enabled);
        keyspace.set_access_tracking(cfg.access_tracking());
        let mut notify = crate::notify::State::default();
        keyspace.set_event_log(notify.configure(cfg.notify_keyspace_events));
        Self {
            id,
            shards,
            keyspace,
            cfg_generation: shared.config_generation(),
            limits: limits_of(&cfg),
            cfg,
            shared,
            clients: Vec::new(),
            stats,
            now_ms: percore_net::reactor::unix_ms(),
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            to_close: Vec::new(),
            shutdown_requested: false,
            active_expire: true,
            cmd_clock: percore_net::sys::monotonic_ns(),
            last_cmd: None,
            buf_pool: Vec::new(),
            fwd_pool: ForwardPool::default(),
            snap: crate::snapshot::ShardSnap::default(),
            repl: crate::replication::Local::default(),
            cluster,
            pubsub: crate::pubsub::Registry::default(),
            blocking: crate::blocking::Registry::default(),
            locks: crate::atomic::Locks::default(),
            watches: crate::atomic::watch::Registry::default(),
            lua: None,
            notify,
            acl: crate::acl::ShardAcl::default(),
            effects: crate::propagate::Log::default(),
            monitor: crate::monitor::Local::default(),
            pause: crate::pause::Local::default(),
            evict: crate::evict::State::new(seed ^ 0x2545_f491_4f6c_dd1d),
            client_mem,
            tracking: crate::tracking::Local::default(),
            migrate: crate::migrate::Local::default(),
            busy_serve: None,
        }
    }

    /// Takes over a keyspace built elsewhere (loaded from a file, handed back by a
    /// snapshot barrier) with this shard's per-database settings.
    pub fn adopt_keyspace(&mut self, mut keyspace: Keyspace) {
        keyspace.set_access_tracking(self.cfg.access_tracking());
        keyspace.set_event_log(self.notify.configure(self.cfg.notify_keyspace_events));
        // Expired keys go to the stream of effects as DEL while it is on (and to tracking
        // invalidations while some client tracks).
        keyspace.log_expired(self.effects.on || self.tracking.armed);
        keyspace.set_expiry_paused(self.pause.active);
        self.keyspace = keyspace;
    }

    /// Picks up a configuration change made by any shard.
    #[inline]
    pub fn refresh_config(&mut self) {
        crate::acl::refresh(self);
        let g = self.shared.config_generation();
        if g != self.cfg_generation {
            self.reload_config(g);
        }
    }

    /// Takes the shared configuration of generation `g` (cold: after CONFIG SET).
    #[cold]
    fn reload_config(&mut self, g: u64) {
        self.cfg = self.shared.config();
        self.cfg_generation = g;
        self.limits = limits_of(&self.cfg);
        self.stats
            .set_latency_threshold_ms(self.cfg.latency_monitor_threshold_ms);
        // Every shard's commands stop (or start) feeding latencystats, not only the one
        // that ran CONFIG SET.
        self.stats.latency_tracking = self.cfg.latency_tracking;
        self.keyspace
            .set_access_tracking(self.cfg.access_tracking());
        self.keyspace
            .set_event_log(self.notify.configure(self.cfg.notify_keyspace_events));
        let armed = self.shared.tracking.clients.load(Ordering::Acquire) > 0;
        if armed != self.tracking.armed {
            // Expired keys are kept for their invalidations while some client tracks.
            self.tracking.armed = armed;
            self.keyspace.log_expired(self.effects.on || armed);
        }
        crate::client_mem::config_changed(self);
    }

    /// Whether a write must look for what observes its keys: WATCH, or client tracking.
    #[inline]
    pub fn observes_writes(&self) -> bool {
        !self.watches.is_empty() || self.tracking.armed
    }

    /// A buffer from the pool (empty, maybe with capacity).
    #[inline]
    pub fn take_buf(&mut self) -> Vec<u8> {
        self.buf_pool.pop().unwrap_or_default()
    }

    /// Work starts in a loop iteration that began at `iteration_ns`: a command's time runs
    /// from the end of the previous command of the same iteration, or else from the
    /// iteration's start (never across the wait before it). Costs no clock read.
    #[inline]
    pub fn start_clock(&mut self, iteration_ns: u64) {
        self.cmd_clock = self.cmd_clock.max(iteration_ns);
    }

    /// Time since the current command started; the next command starts now.
    #[inline]
    pub fn took(&mut self) -> Duration {
        let now = percore_net::sys::monotonic_ns();
        let d = now.saturating_sub(self.cmd_clock);
        self.cmd_clock = now;
        Duration::from_nanos(d)
    }

    /// The shard owning `key`.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        if self.shards == 1 {
            0
        } else {
            shard_of_key(key, self.shards)
        }
    }
}

fn limits_of(cfg: &Config) -> ParseLimits {
    ParseLimits {
        max_bulk_len_bytes: usize::try_from(cfg.proto_max_bulk_len_bytes).unwrap_or(usize::MAX),
        ..ParseLimits::default()
    }
}

/// The shard service.
pub struct Shard {
    pub data: ShardData,
    parser: Parser,
    /// Inside `resume_served` (which runs clients' input, which ends in `after_batch`).
    resuming: bool,
}

/// Input shorter than this holds one small request at most: nothing worth looking ahead to.
const WARM_MIN_INPUT_BYTES: usize = 64;

/// Argument slots a request's arrays keep between requests (the shard's argv, a
/// connection's parsed ranges); a bigger request's room is given back after it.
pub const ARGV_KEEP_ARGS: usize = 1024;
/// Inline-request scratch bytes a connection keeps between requests.
pub const INLINE_KEEP_BYTES: usize = 16 * 1024;

/// Reuses a vector's allocation for a different borrow lifetime (up to
/// [`ARGV_KEEP_ARGS`] slots: a bigger one is dropped).
fn recycle<'b>(mut v: Vec<&'_ [u8]>) -> Vec<&'b [u8]> {
    if v.capacity() > ARGV_KEEP_ARGS {
        return Vec::new();
    }
    v.clear();
    // An empty vector holds no references; collecting it in place keeps the allocation.
    v.into_iter()
        .map(|_| -> &'b [u8] { unreachable!() })
        .collect()
}

/// The request parser's scratch state: what `run_requests` parsed ahead and reuses. One
/// per shard, and one more for the requests served while a script is busy
/// (`scripting::busy`), which run while the shard's own is in use.
#[derive(Default)]
pub struct Parser {
    /// Requests parsed ahead in a connection's input (at most [`WARM_KEYS`]), so that their
    /// lookups are warmed together; each with the bytes it takes. `ahead_next` is the next
    /// to run, `ahead_len` how many are valid. Valid only within one `run_requests`.
    ahead: Vec<(Request, usize)>,
    ahead_next: usize,
    ahead_len: usize,
    warm: Warm,
    argv_store: Vec<&'static [u8]>,
    scratch: Vec<u8>,
}

impl Parser {
    /// Parses up to [`WARM_KEYS`] complete requests ahead in `input` and, when there is
    /// more than one, warms the lookups of those whose first argument is a key this shard
    /// owns (see [`crate::prefetch`]). `run_requests` then runs them without parsing again.
    fn parse_ahead(
        &mut self,
        data: &ShardData,
        input: &[u8],
        db: usize,
        limits: &ParseLimits,
        main: &mut Request,
    ) {
        self.ahead_next = 0;
        self.ahead_len = 0;
        if input.len() < WARM_MIN_INPUT_BYTES {
            return;
        }
        let mut at = 0;
        while self.ahead_len < WARM_KEYS && at < input.len() {
            if self.ahead.len() == self.ahead_len {
                self.ahead.push((Request::new(), 0));
            }
            let (req, len) = &mut self.ahead[self.ahead_len];
            req.clear();
            let Ok(Parsed::Complete { consumed }) = parse_request(&input[at..], limits, req) else {
                break;
            };
            *len = consumed;
            at += consumed;
            self.ahead_len += 1;
        }
        if self.ahead_len == 0 {
            return;
        }
        // The connection's parser may hold the state of a request it saw partly; the first
        // request parsed here is that one, whole.
        main.clear();
        if self.ahead_len < 2 || !Warm::worth(&data.keyspace, db) {
            return;
        }
        let mut at = 0;
        for (req, len) in &self.ahead[..self.ahead_len] {
            if req.len() >= 2 {
                let key = req.arg(&input[at..], 1);
                if data.owner(key) == data.id {
                    self.warm.add(&data.keyspace, db, key);
                }
            }
            at += len;
        }
        self.warm.finish(&data.keyspace);
    }

    pub(crate) fn run_requests(
        &mut self,
        data: &mut ShardData,
        client: &mut Client,
        conn: &mut Conn<()>,
        outbox: &mut Outbox<Msg>,
    ) {
        client.last_interaction_ms = data.now_ms;
        // The input beyond what was left unconsumed last time arrived since.
        client.net_in += conn.input.len().saturating_sub(client.qbuf) as u64;
        client.net_out = conn.sent_bytes;
        let qbuf_limit =
            usize::try_from(data.cfg.client_query_buffer_limit_bytes).unwrap_or(usize::MAX);
        self.ahead_len = 0;
        self.ahead_next = 0;
        // The resumable parse state is the connection's own: taken out for the batch (so
        // `dispatch` can borrow the client) and put back whatever happens.
        let mut main = std::mem::take(&mut client.req);
        // Whether every complete request received has run (the loop stopped for want of
        // input, not for backpressure or a reply owed by another shard).
        let mut exhausted = false;
        loop {
            if client.stalled {
                // See `Client::stalled`: nothing runs; what arrives is dropped.
                main.clear();
                conn.input.consume(conn.input.len());
                exhausted = true;
                break;
            }
            if client.blocked.is_some() {
                // A blocking command waits: nothing after it runs until it is answered,
                // but input is still read, so that a disconnection ends the wait.
                if conn.input_ended() || conn.input.len() > qbuf_limit {
                    conn.close_now();
                }
                break;
            }
            if client.close_after_reply {
                // QUIT or a protocol error: nothing after it runs; the connection closes
                // once every earlier reply, including those other shards owe, is out.
                if client.pending.is_empty() {
                    conn.close_after_flush();
                }
                break;
            }
            if client.hop_barrier.is_some() {
                // A multi-step command is still running elsewhere; wait for it.
                conn.read_paused = true;
                break;
            }
            if matches!(client.pending.front(), Some(Pending::Ready(_))) {
                // Replies queued behind a message the client published to itself: out
                // now, so that they never fill the queue (which only an answer from
                // another shard would drain).
                client.flush_ready(&mut conn.output, &mut data.buf_pool);
            }
            if client.pending.len() >= MAX_PENDING_REPLIES_PER_CONN {
                conn.read_paused = true;
                break;
            }
            if conn.pending_output() >= OUTPUT_BACKPRESSURE_BYTES {
                break;
            }
            if conn.input.is_empty() {
                exhausted = true;
                break;
            }
            let mut limits = data.limits;
            limits.unauthenticated = client.must_auth(data.acl.auth_required);
            if self.ahead_next == self.ahead_len {
                self.parse_ahead(data, conn.input.data(), client.db, &limits, &mut main);
            }
            let ahead = self.ahead_next < self.ahead_len;
            let input = conn.input.data();
            let (req, consumed) = if ahead {
                // Parsed ahead: run it from there.
                let (req, consumed) = &self.ahead[self.ahead_next];
                self.ahead_next += 1;
                (req, *consumed)
            } else {
                match parse_request(input, &limits, &mut main) {
                    Ok(Parsed::Complete { consumed }) => (&main, consumed),
                    Ok(Parsed::Incomplete { need_bytes }) => {
                        exhausted = true;
                        if input.len() > qbuf_limit {
                            data.shared.warning(&format!(
                                "Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})",
                                client.id,
                                client.peer,
                                String::from_utf8_lossy(&input[..input.len().min(64)])
                            ));
                            conn.output.clear();
                            conn.close_after_flush();
                        } else if let Some(n) = need_bytes {
                            conn.input.want_total(n.min(qbuf_limit.saturating_add(1)));
                        }
                        break;
                    }
                    Err(e) => {
                        self.scratch.clear();
                        e.write_message(&mut self.scratch);
                        let text = format!("ERR {}", String::from_utf8_lossy(&self.scratch));
                        data.stats.record_error(&text);
                        if client.replies_suppressed() {
                            // Redis drops the error and, having no reply to write, never
                            // closes the connection (see `Client::stalled`).
                            client.stalled = true;
                        } else if client.pending.is_empty() {
                            ReplyWriter {
                                out: &mut conn.output,
                                proto: client.proto,
                            }
                            .error(&text);
                        } else {
                            let mut buf = Vec::new();
                            ReplyWriter {
                                out: &mut buf,
                                proto: client.proto,
                            }
                            .error(&text);
                            client.push_pending(Pending::Ready(buf));
                        }
                        data.shared.log.log(
                            LogLevel::Verbose,
                            &format!(
                                "Protocol error ({text}) from client: id={} addr={}",
                                client.id, client.peer
                            ),
                        );
                        client.close_after_reply = !client.stalled;
                        main.clear();
                        conn.input.consume(conn.input.len());
                        continue;
                    }
                }
            };
            // Authentication changes the parse limits: what was parsed ahead under the old
            // ones is dropped.
            let must_auth = client.must_auth(data.acl.auth_required);
            // An empty request (a blank inline line, `*0`) runs nothing, but counts as the
            // request whose reply CLIENT REPLY SKIP drops, as in Redis (`resetClient`).
            if req.is_empty() {
                client.begin_request();
            } else {
                let mut argv = recycle(std::mem::take(&mut self.argv_store));
                req.fill_argv(input, &mut argv);
                let ran = crate::crash::guarded(&argv, || {
                    dispatch(data, client, &argv, &mut conn.output, outbox)
                });
                if data.tracking.armed && client.tracking.is_some() {
                    // Invalidations a command caused for its own client follow its reply.
                    crate::tracking::to_self(data, client, &mut conn.output);
                }
                self.argv_store = recycle(argv);
                if !ran {
                    // A multi-shard write held back by the closed write gate: it stays in
                    // the input, parsed again from its start when the gate opens.
                    main.clear();
                    self.ahead_len = self.ahead_next;
                    if client.hop_barrier.is_some() {
                        // It waits for the open transaction it could not join, which
                        // started: read again once that answered.
                        conn.read_paused = true;
                        break;
                    }
                    // Held back by a lock on its key, or by the closed write gate.
                    if std::mem::take(&mut data.pause.refused) {
                        crate::pause::hold(data, client.conn);
                        break;
                    }
                    let list = if std::mem::take(&mut data.locks.refused) {
                        &mut data.locks.held_back
                    } else {
                        &mut data.snap.gated
                    };
                    if !list.contains(&client.conn) {
                        list.push(client.conn);
                    }
                    break;
                }
            }
            if !ahead {
                main.clear();
            }
            conn.input.consume(consumed);
            if client.must_auth(data.acl.auth_required) != must_auth {
                self.ahead_len = self.ahead_next;
            }
        }
        // The pipeline's requests gathered into a transaction: it starts now.
        if client.open_txn.is_some() {
            start_open_txn(data, client, &mut conn.output, outbox);
        }
        main.shrink_to(ARGV_KEEP_ARGS, INLINE_KEEP_BYTES);
        client.req = main;
        for (r, _) in &mut self.ahead {
            r.shrink_to(ARGV_KEEP_ARGS, INLINE_KEEP_BYTES);
        }
        client.qbuf = conn.input.len();
        // A message the client published to itself waits in its reply queue with what
        // followed it; with nothing owed by another shard before them, they go out now.
        if matches!(client.pending.front(), Some(Pending::Ready(_))) {
            client.flush_ready(&mut conn.output, &mut data.buf_pool);
        }
        if client.pending.is_empty()
            && (client.close_after_reply || (conn.input_ended() && exhausted))
        {
            // QUIT, a protocol error, or the end of input with every request received
            // run (an incomplete one is dropped) and every reply written.
            conn.close_after_flush();
        }
    }
}

impl Shard {
    pub fn new(id: usize, shards: usize, shared: Arc<ServerShared>) -> Self {
        Self {
            data: ShardData::new(id, shards, shared),
            parser: Parser::default(),
            resuming: false,
        }
    }

    /// Parses and runs as many complete requests of connection `id` as possible.
    fn process_input(&mut self, io: &mut Io<Msg, ()>, id: ConnId) {
        let Some(mut client) = self
            .data
            .clients
            .get_mut(id.index as usize)
            .and_then(Option::take)
        else {
            return;
        };
        self.data.start_clock(io.now_ns);
        let (conn, outbox) = io.conn_and_outbox(id);
        if let Some(conn) = conn {
            let unread = conn.input.len();
            let mut relayed = None;
            if client.master {
                // A chained replica relays the stream it applies to its sub-replicas, and
                // holds it while a barrier is due (the cut's offset is then exact).
                use crate::replication::MasterInput;
                match crate::replication::master_input(&mut self.data, conn.input.data()) {
                    MasterInput::Run(copy) => relayed = copy,
                    MasterInput::Hold => {
                        self.data.clients[id.index as usize] = Some(client);
                        return;
                    }
                }
            }
            self.run_requests(&mut client, conn, outbox);
            if client.master {
                // The replication offset moves by the stream bytes applied.
                let (left, multi) = (conn.input.len(), client.multi.is_some());
                let out = &mut conn.output;
                let data = &mut self.data;
                crate::replication::applied(data, relayed, unread - left, left, multi, out);
                data.repl.master_db = client.db;
            }
            check_output_limits(&mut self.data, &mut client, conn);
        }
        self.data.clients[id.index as usize] = Some(client);
        self.after_batch(io);
    }

    /// Parses and runs the complete requests in `conn`'s input (see
    /// [`Parser::run_requests`]).
    pub(crate) fn run_requests(
        &mut self,
        client: &mut Client,
        conn: &mut Conn<()>,
        outbox: &mut Outbox<Msg>,
    ) {
        self.parser
            .run_requests(&mut self.data, client, conn, outbox);
    }
    /// Closes connections marked by CLIENT KILL and starts SHUTDOWN if requested.
    fn after_batch(&mut self, io: &mut Io<Msg, ()>) {
        crate::pubsub::deliver(&mut self.data, io);
        if self.data.tracking.armed {
            self.tracking_work(io);
        }
        if self.data.pause.active && crate::pause::resumable(&mut self.data) {
            // CLIENT PAUSE ended: the held connections run, in the order held.
            for id in crate::pause::take_held(&mut self.data) {
                self.process_input(io, id);
            }
        }
        self.blocking_work(io);
        if !self.data.locks.outgoing.is_empty() {
            for (shard, msg) in std::mem::take(&mut self.data.locks.outgoing) {
                io.send(shard, msg);
            }
        }
        if self.data.locks.released {
            self.pump_locks(io);
        }
        crate::client_mem::evict_if_due(&mut self.data);
        if !self.data.to_close.is_empty() {
            for id in std::mem::take(&mut self.data.to_close) {
                if let Some(conn) = io.conn(id) {
                    if crate::client_mem::evicted(&self.data, id) {
                        conn.close_now();
                    } else {
                        conn.close_after_flush();
                    }
                }
            }
        }
        if self.data.shutdown_requested {
            self.data.shutdown_requested = false;
            io.request_shutdown();
        }
    }

    /// Client tracking after a batch of work: expired keys invalidated (the stream of
    /// effects takes them itself while on), the remember table kept to its limit, and
    /// what waits for this shard's clients delivered.
    fn tracking_work(&mut self, io: &mut Io<Msg, ()>) {
        if !self.data.effects.on {
            crate::tracking::expired(&mut self.data);
        }
        crate::tracking::limit(&mut self.data);
        crate::tracking::deliver(&mut self.data, io);
    }

    /// Serves blocked clients whose keys became ready and runs the blocking protocol's
    /// messages (every client is in its slot here), then sends the replies that arrived
    /// for blocked clients and runs what they sent after the blocking command.
    #[inline]
    fn blocking_work(&mut self, io: &mut Io<Msg, ()>) {
        if self.data.blocking.busy() || (!self.resuming && !self.data.blocking.flush.is_empty()) {
            self.blocking_work_slow(io);
        }
    }

    #[cold]
    fn blocking_work_slow(&mut self, io: &mut Io<Msg, ()>) {
        if self.data.blocking.busy() {
            crate::blocking::pump(&mut self.data, io.outbox(), true);
        }
        if self.resuming || self.data.blocking.flush.is_empty() {
            return;
        }
        self.resuming = true;
        while let Some(id) = self.data.blocking.flush.pop() {
            let Some(client) = self
                .data
                .clients
                .get_mut(id.index as usize)
                .and_then(|c| c.take_if(|c| c.conn == id))
            else {
                continue;
            };
            self.settled(io, client);
            if io
                .conn(id)
                .is_some_and(|c| !c.input.is_empty() && !c.is_closing())
            {
                self.process_input(io, id);
            }
            if self.data.blocking.busy() {
                crate::blocking::pump(&mut self.data, io.outbox(), true);
            }
        }
        self.resuming = false;
    }

    fn on_done(
        &mut self,
        io: &mut Io<Msg, ()>,
        conn_id: ConnId,
        seq: u64,
        shard: usize,
        result: Partial,
    ) {
        let idx = conn_id.index as usize;
        let Some(mut client) = self
            .data
            .clients
            .get_mut(idx)
            .and_then(|c| c.take_if(|c| c.conn == conn_id))
        else {
            return; // The client left meanwhile.
        };
        if let Partial::Block(spec) = result {
            // A blocking command's first attempt found nothing: it waits now.
            if matches!(client.pending_mut(seq), Some(Pending::Waiting { .. })) {
                crate::blocking::block(&mut self.data, &mut client, seq, &spec);
            }
            if client.hop_barrier == Some(seq) {
                client.hop_barrier = None;
            }
            self.settled(io, client);
            return;
        }
        crate::blocking::served(&mut self.data, &mut client, seq, &result);
        // Only for an internal error's text, which both protocols encode alike; a merged
        // reply is encoded in the protocol its request was read under (`Gather::proto`).
        let proto = client.proto;
        let mut merged = None;
        match client.pending_mut(seq) {
            Some(slot @ Pending::Waiting { .. }) => slot.answer(|discard| match result {
                _ if discard => Vec::new(),
                Partial::Encoded(b) => b,
                other => internal_error(proto, &other),
            }),
            Some(Pending::Gather(g)) => {
                if g.parts[shard].is_none() {
                    g.remaining -= 1;
                }
                g.parts[shard] = Some(result);
                if g.remaining == 0 {
                    merged = Some(merge_gather(&mut self.data, g));
                }
            }
            _ => {}
        }
        if client.hop_barrier == Some(seq) {
            client.hop_barrier = None;
        }
        if let Some(bytes) = merged
            && let Some(slot) = client.pending_mut(seq)
        {
            *slot = Pending::Ready(bytes);
        }
        self.settled(io, client);
    }

    /// A forwarded batch is back: each reply goes to its slot, then each client that got
    /// one sends what is now in order.
    fn on_answered(&mut self, io: &mut Io<Msg, ()>, batch: Forward) {
        let round_trip_ns = io.now_ns.saturating_sub(batch.sent_ns);
        self.data
            .stats
            .record_hop(round_trip_ns, batch.commands(), io.now_ms);
        for (f, argv, took) in batch.slow() {
            // Logged here, with the client's address and name (Redis logs every call).
            let idx = f.conn.index as usize;
            let Some(client) = self
                .data
                .clients
                .get_mut(idx)
                .and_then(|c| c.take_if(|c| c.conn == f.conn))
            else {
                continue;
            };
            crate::stats::note_slow(&mut self.data, f.cmd, took, &client, &argv);
            self.data.clients[idx] = Some(client);
        }
        let mut current: Option<Box<Client>> = None;
        for (f, reply) in batch.answers() {
            if current.as_ref().is_some_and(|c| c.conn != f.conn) {
                let done = current.take().expect("checked");
                self.settled(io, done);
            }
            if current.is_none() {
                current = self
                    .data
                    .clients
                    .get_mut(f.conn.index as usize)
                    .and_then(|c| c.take_if(|c| c.conn == f.conn));
            }
            // `None`: the client left meanwhile.
            let Some(client) = current.as_mut() else {
                continue;
            };
            if let Some(slot) = client.pending_mut(f.seq) {
                slot.answer(|discard| {
                    let mut bytes = self.data.take_buf();
                    if !discard {
                        bytes.extend_from_slice(reply);
                    }
                    bytes
                });
            }
        }
        if let Some(done) = current {
            self.settled(io, done);
        }
        self.data.fwd_pool.give(batch);
    }

    /// After replies of `client` arrived: sends those now in order, applies the output
    /// limits, resumes reading if it was paused for them, and puts the client back.
    fn settled(&mut self, io: &mut Io<Msg, ()>, mut client: Box<Client>) {
        let conn_id = client.conn;
        let idx = conn_id.index as usize;
        let mut resume = false;
        if let Some(conn) = io.conn(conn_id) {
            client.flush_ready(&mut conn.output, &mut self.data.buf_pool);
            check_output_limits(&mut self.data, &mut client, conn);
            if client.close_after_reply && client.pending.is_empty() {
                conn.close_after_flush();
            }
            if conn.read_paused && client.pending.len() < MAX_PENDING_REPLIES_PER_CONN / 2 {
                conn.read_paused = false;
                resume = !conn.input.is_empty();
            }
            // After the end of input, the last reply owed by another shard lets the
            // connection close (once what is left of its input has run).
            resume |= conn.input_ended() && client.pending.is_empty() && !conn.is_closing();
        }
        self.data.clients[idx] = Some(client);
        if resume {
            self.process_input(io, conn_id);
        }
    }

    /// Runs another shard's forwarded commands in order and mails the batch back with
    /// their replies. A command whose key a transaction holds (or awaits) stops the batch:
    /// it waits in the lock FIFO with the rest (and later batches of the same sender),
    /// `resume_at` being its place there when it was let through and stops again.
    fn on_forward(
        &mut self,
        io: &mut Io<Msg, ()>,
        from: usize,
        mut batch: Forward,
        resume_at: Option<u64>,
    ) {
        if resume_at.is_none() && self.data.locks.sender_parked(from) {
            self.data.locks.park_forward(from, batch, Vec::new(), None);
            return;
        }
        let mut args = recycle(std::mem::take(&mut self.parser.argv_store));
        let mut blocked = None;
        let mut slow = Vec::new();
        let Shard { data, parser, .. } = self;
        let warm = &mut parser.warm;
        let finished = batch.run_each(&mut args, |f, argv, out, upcoming| {
            let locked = data.locks.busy()
                && if resume_at.is_some() {
                    data.locks.blocks_held(usize::from(f.db), f.cmd, argv)
                } else {
                    data.locks.blocks(usize::from(f.db), f.cmd, argv)
                };
            if locked {
                blocked = Some(crate::atomic::lock_keys(usize::from(f.db), f.cmd, argv));
                return false;
            }
            if let Some(next) = upcoming {
                for (db, key) in next.keys() {
                    warm.add(&data.keyspace, db, key);
                }
                warm.finish(&data.keyspace);
            }
            let Exec::Keyed(h) = f.cmd.exec else {
                unreachable!("only keyed commands are forwarded")
            };
            data.stats.hops_served += 1;
            let mut ctx = Ctx {
                shard: data,
                db: f.db as usize,
                proto: f.proto,
                client: None,
            };
            let mark = out.len();
            let watched = f.cmd.has(flags::WRITE) && ctx.shard.observes_writes();
            if ctx.shard.tracking.armed {
                ctx.shard.tracking.writer = f.client;
            }
            let logged = ctx.shard.effects.on;
            let before = if watched || logged {
                ctx.shard.keyspace.changes()
            } else {
                0
            };
            if f.no_touch {
                ctx.shard.keyspace.set_no_touch(true);
            }
            crate::crash::guarded(argv, || {
                run_handler(&mut ctx, h, argv, out);
            });
            if f.no_touch {
                data.keyspace.set_no_touch(false);
            }
            if watched {
                // A command that failed changed no key (a lookup for writing may count).
                data.tracking.failed = out.get(mark) == Some(&b'-');
                crate::atomic::watch::after_write(data, f.cmd, argv, usize::from(f.db), before);
            }
            if logged {
                let db = usize::from(f.db);
                crate::propagate::after_command(data, f.cmd, argv, db, before, &out[mark..]);
            }
            let took = data.took();
            let reply = &out[mark..];
            data.stats
                .record_call(f.cmd, argv, took, reply.first() == Some(&b'-'), reply);
            if crate::stats::is_slow(data, f.cmd, took) {
                slow.push((f.conn, f.seq, took));
            }
            true
        });
        self.parser.argv_store = recycle(args);
        for (conn, seq, took) in slow {
            batch.note_slow(conn, seq, took);
        }
        if !finished {
            let keys = blocked.unwrap_or_default();
            self.data.locks.park_forward(from, batch, keys, resume_at);
            return;
        }
        io.send(from, Msg::Answered { batch });
    }

    /// Scripts of other shards call this one (`atomic::remote`): serves them, watches
    /// the inbox again, and lets waiters through if a script released its locks.
    fn serve_script_calls(&mut self, io: &mut Io<Msg, ()>) {
        crate::atomic::remote::serve_queued(&mut self.data);
        let efd = self.data.shared.scripts.calls.efd(self.data.id);
        if efd >= 0 {
            io.watch_readable(efd, crate::atomic::remote::WATCH_TAG_SCRIPT_CALLS);
            self.data.locks.calls_armed = true;
        }
        if self.data.locks.released {
            self.pump_locks(io);
        }
    }

    /// Locks were released on this shard: lets waiters through in FIFO order
    /// (transactions take their locks and go on; parked forwarded commands run), then
    /// runs again the connections whose request waited for a lock here.
    fn pump_locks(&mut self, io: &mut Io<Msg, ()>) {
        while std::mem::take(&mut self.data.locks.released) {
            while let Some(ready) = self.data.locks.next_ready() {
                match ready {
                    crate::atomic::Ready::Txn(txn) => {
                        if let Some(done) =
                            crate::atomic::advance(&mut self.data, io.outbox(), txn, None)
                        {
                            let me = self.data.id;
                            self.on_done(io, done.conn, done.seq, me, Partial::Encoded(done.bytes));
                        }
                    }
                    crate::atomic::Ready::Forward { from, batch, at } => {
                        self.on_forward(io, from, batch, Some(at));
                    }
                }
            }
            for id in std::mem::take(&mut self.data.locks.held_back) {
                self.process_input(io, id);
            }
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of Msg::Run, destructured"
    )]
    fn on_run(
        &mut self,
        io: &mut Io<Msg, ()>,
        from: usize,
        conn: ConnId,
        seq: u64,
        db: u16,
        proto: Protocol,
        step: PartFn,
        argv: Argv,
        gated: bool,
    ) {
        let mut args = recycle(std::mem::take(&mut self.parser.argv_store));
        argv.fill(&mut args);
        let mut ctx = Ctx {
            shard: &mut self.data,
            db: db as usize,
            proto,
            client: None,
        };
        ctx.shard.blocking.site = crate::blocking::ChainSite::Remote;
        let result = crate::crash::guarded(&args, || {
            let first = step(&mut ctx, &args);
            run_hops(&mut ctx, first)
        });
        self.data.blocking.site = crate::blocking::ChainSite::Other;
        self.parser.argv_store = recycle(args);
        if let Partial::Hop { shard, step, argv } = result {
            // The command continues on another shard; that one answers the client's shard.
            let msg = Msg::Run {
                from,
                conn,
                seq,
                db,
                proto,
                step,
                argv,
                gated,
            };
            io.send(shard, msg);
            self.after_batch(io);
            return;
        }
        if gated {
            self.data.shared.write_gate.leave(1);
        }
        if from == self.data.id {
            // A multi-step command came back to the client's own shard for its last step.
            let shard = self.data.id;
            self.on_done(io, conn, seq, shard, result);
        } else {
            io.send(
                from,
                Msg::Done {
                    conn,
                    seq,
                    shard: self.data.id,
                    result,
                },
            );
        }
        self.after_batch(io);
    }
}

/// `client-output-buffer-limit normal|pubsub <hard> <soft> <seconds>`: a client whose unsent
/// replies pass the hard limit, or stay above the soft limit for the given seconds, is
/// closed at once and its replies dropped, as Redis does (0 disables a limit).
#[inline]
pub fn check_output_limits(data: &mut ShardData, client: &mut Client, conn: &mut Conn<()>) {
    apply_output_limits(data, client, conn);
    crate::client_mem::observe(data, client, conn);
}

#[inline]
fn apply_output_limits(data: &ShardData, client: &mut Client, conn: &mut Conn<()>) {
    // A subscribed client is of Redis's pubsub class.
    let limit = if client.subscribed() {
        data.cfg.client_output_buffer_limit.pubsub
    } else {
        data.cfg.client_output_buffer_limit.normal
    };
    if limit.hard_limit_bytes == 0 && limit.soft_limit_bytes == 0 {
        return;
    }
    enforce_output_limit(data, client, conn, limit);
}

/// `check_output_limits` once a limit is set for the client's class.
#[cold]
fn enforce_output_limit(
    data: &ShardData,
    client: &mut Client,
    conn: &mut Conn<()>,
    limit: crate::config::OutputBufferLimit,
) {
    let used = conn.pending_output() as u64
        + client
            .pending
            .iter()
            .map(|p| match p {
                Pending::Ready(b) => b.len() as u64,
                _ => 0,
            })
            .sum::<u64>();
    let hard = limit.hard_limit_bytes > 0 && used >= limit.hard_limit_bytes;
    let soft = limit.soft_limit_bytes > 0 && used >= limit.soft_limit_bytes;
    let soft_expired = if soft {
        let since = *client.obuf_soft_since_ms.get_or_insert(data.now_ms);
        data.now_ms - since
            > i64::try_from(limit.soft_limit_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    } else {
        client.obuf_soft_since_ms = None;
        false
    };
    if hard || soft_expired {
        data.shared.warning(&format!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            client.id, client.peer
        ));
        // Redis frees such a client asynchronously without writing anything more.
        conn.close_now();
        client.close_after_reply = true;
    }
}

/// Runs a handler and counts it.
#[inline]
fn run_handler(ctx: &mut Ctx, h: Handler, argv: &[&[u8]], out: &mut Vec<u8>) {
    crate::snapshot::throttle_before_command(ctx.shard);
    crate::evict::before_command(ctx.shard);
    let proto = ctx.proto;
    let mut w = ReplyWriter { out, proto };
    h(ctx, argv, &mut w);
}

/// Where a reply goes: straight to the socket buffer when nothing is waiting before it.
fn reply_target<'a>(
    client: &mut Client,
    out: &'a mut Vec<u8>,
    scratch: &'a mut Vec<u8>,
) -> &'a mut Vec<u8> {
    if client.pending.is_empty() {
        out
    } else {
        scratch
    }
}

/// Runs one request of `client`. False when it did not run: a multi-shard write found
/// the write gate closed (a barrier is being set up), and must be tried again, unchanged,
/// once it opens (`snapshot::gate`).
#[inline]
pub fn dispatch(
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
    out: &mut Vec<u8>,
    outbox: &mut Outbox<Msg>,
) -> bool {
    if client.no_touch {
        // CLIENT NO-TOUCH (cold): the keys this shard reads keep their access time.
        data.keyspace.set_no_touch(true);
        let done = dispatch_command(data, client, argv, out, outbox);
        data.keyspace.set_no_touch(false);
        return done;
    }
    dispatch_command(data, client, argv, out, outbox)
}

fn dispatch_command(
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
    out: &mut Vec<u8>,
    outbox: &mut Outbox<Msg>,
) -> bool {
    if client.open_txn.is_some() {
        return join_open_txn(data, client, argv, out, outbox);
    }
    let reply_mode = client.reply_mode;
    // A reply behind one still owed by another shard waits in its own buffer: a pooled one.
    let mut scratch = if client.pending.is_empty() {
        Vec::new()
    } else {
        data.take_buf()
    };
    let discard = client.begin_request();
    let mut discard_buf = Vec::new();
    let target = if discard {
        &mut discard_buf
    } else {
        reply_target(client, out, &mut scratch)
    };
    let mark = target.len();
    // Pipelines repeat one command: compare with the last one before hashing the name.
    let cached = data.last_cmd.filter(|c| {
        c.name.len() == argv[0].len() && c.name.as_bytes().eq_ignore_ascii_case(argv[0])
    });
    let Some(cmd) = cached.or_else(|| commands::lookup(argv[0])) else {
        data.stats.record_error("ERR unknown command");
        refuse(client, discard, out, scratch, |w| {
            commands::unknown_command(argv, w);
        });
        return true;
    };
    if !cmd.arity_ok(argv.len()) {
        data.stats
            .record_rejected(cmd, argv, "ERR wrong number of arguments");
        refuse(client, discard, out, scratch, |w| {
            commands::wrong_arity(cmd.name, w);
        });
        return true;
    }
    if let Some(refusal) = check_subcommand(cmd, argv) {
        data.stats.record_rejected(cmd, argv, &refusal);
        refuse(client, discard, out, scratch, |w| w.error(&refusal));
        return true;
    }
    if cmd.has(flags::PROTECTED) && !data.cfg.debug_allowed(client.is_local()) {
        let text = crate::config::protected_command_refusal(cmd.name);
        data.stats.record_rejected(cmd, argv, &text);
        refuse(client, discard, out, scratch, |w| w.error(&text));
        return true;
    }
    if client.must_auth(data.acl.auth_required) && !cmd.has(flags::NO_AUTH) {
        data.stats.record_rejected(cmd, argv, "NOAUTH");
        refuse(client, discard, out, scratch, |w| {
            w.error(commands::errors::NOAUTH);
        });
        return true;
    }
    if !client.acl_free
        && let Err(text) = crate::acl::check_request(data, client, cmd, argv)
    {
        data.stats.record_rejected(cmd, argv, &text);
        refuse(client, discard, out, scratch, |w| w.error(&text));
        return true;
    }
    if let Some(busy) = data.shared.scripts.busy_error()
        && !commands::scripting::allowed_when_busy(cmd, argv)
    {
        // A script on some shard runs past busy-reply-threshold: as Redis, everything
        // but SCRIPT KILL, FUNCTION KILL/STATS, SHUTDOWN NOSAVE and the like is refused.
        let text = commands::scripting::busy_refusal(data, client, cmd, busy, outbox);
        data.stats.record_rejected(cmd, argv, &text);
        refuse(client, discard, out, scratch, |w| w.error(&text));
        return true;
    }
    if (data.shared.repl.is_replica.load(Ordering::Relaxed)
        || data.cfg.repl.min_replicas_to_write != 0)
        && !client.master
        && let Some(text) = crate::replication::refusal(data, client, cmd, outbox)
    {
        data.stats.record_rejected(cmd, argv, text);
        refuse(client, discard, out, scratch, |w| w.error(text));
        return true;
    }
    client.last_cmd = cmd.name;
    client.tot_cmds += 1;
    data.last_cmd = Some(cmd);
    let mut exec = cmd.exec;
    let mut routed_step = false;
    if data.cluster.is_some() {
        // Cluster mode: MOVED, ASK, CROSSSLOT, CLUSTERDOWN, or an open slot's own path.
        match crate::cluster::route(data, client, cmd, argv) {
            crate::cluster::Route::Serve => {}
            crate::cluster::Route::Refuse(text) => {
                data.stats.record_rejected(cmd, argv, &text);
                refuse(client, discard, out, scratch, |w| w.error(&text));
                return true;
            }
            crate::cluster::Route::Step(step) => {
                exec = Exec::Hop(step);
                routed_step = true;
            }
        }
    }
    if data.cfg.maxmemory_bytes != 0
        && let Some(text) = crate::evict::refusal(data, client, cmd, argv, outbox)
    {
        data.stats.record_rejected(cmd, argv, text);
        refuse(client, discard, out, scratch, |w| w.error(text));
        return true;
    }
    if client.proto == Protocol::Resp2
        && client.subscribed()
        && !crate::commands::pubsub::allowed_when_subscribed(cmd)
    {
        let text = crate::commands::pubsub::subscribed_mode_error(cmd, argv);
        data.stats.record_rejected(cmd, argv, &text);
        refuse(client, discard, out, scratch, |w| w.error(&text));
        return true;
    }
    if data.shared.attention.raised() {
        // MONITOR or CLIENT PAUSE (`crate::monitor`): cold.
        match crate::monitor::attend(data, client, cmd, argv) {
            crate::monitor::Attend::Run => {}
            crate::monitor::Attend::Hold => {
                client.reply_mode = reply_mode;
                pool_put(&mut data.buf_pool, scratch);
                return false;
            }
            crate::monitor::Attend::Refuse(text) => {
                data.stats.record_rejected(cmd, argv, text);
                refuse(client, discard, out, scratch, |w| w.error(text));
                return true;
            }
        }
    }
    if data.tracking.armed {
        // Client tracking (cold): who writes (NOLOOP), what a tracking client reads.
        data.tracking.writer = client.id;
        if data.tracking.script_caller != 0 && crate::tracking::is_script(cmd) {
            // Not the script a refused request left watched.
            crate::tracking::script_ends(data);
        }
        if client.tracking.is_some() {
            crate::tracking::before_command(data, client, cmd, argv);
        }
    }
    if let Exec::Multi(op) = exec {
        return run_multi(
            data, client, cmd, op, argv, discard, reply_mode, out, scratch, outbox,
        );
    }
    if client.multi.is_some() && !matches!(cmd.name, "quit" | "reset") {
        return queue_in_multi(data, client, cmd, argv, discard, out, scratch);
    }
    if let Some(op) = crate::snapshot::intercept(data, cmd, argv, client.db) {
        // DEBUG RELOAD, BGSAVE CANCEL, and FLUSHALL/FLUSHDB/SWAPDB with several shards (or
        // a save to cancel) run at a barrier of all shards.
        defer_to_snapshot(data, client, discard, op);
        let took = data.took();
        data.stats.record_call(cmd, argv, took, false, &[]);
        return true;
    }
    match exec {
        Exec::Multi(_) => unreachable!("run above"),
        Exec::Client(h) => {
            let replies_were_off = discard && client.reply_mode == ReplyMode::Off;
            let db = client.db;
            let proto = client.proto;
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: Some(client),
            };
            let mut w = ReplyWriter { out: target, proto };
            h(&mut ctx, argv, &mut w);
            let failed = target_is_error(target, mark);
            if data.effects.on && !failed {
                crate::propagate::client_command(data, cmd, argv, db);
            }
            let took = data.took();
            data.stats
                .record_call(cmd, argv, took, failed, target.get(mark..).unwrap_or(&[]));
            crate::stats::note_slow(data, cmd, took, client, argv);
            let mut discard = discard;
            let pushed = discard && !failed && crate::commands::pubsub::answers_with_pushes(cmd);
            if (replies_were_off && client.reply_mode != ReplyMode::Off) || pushed {
                // RESET turns replies back on before it answers: Redis sends that answer.
                // (Un)subscribe confirmations are pushes (in RESP2 too), which CLIENT
                // REPLY OFF/SKIP does not silence (Redis's CLIENT_PUSHING).
                discard = false;
                reply_target(client, out, &mut scratch).extend_from_slice(&discard_buf);
            }
            if discard && client.close_after_reply {
                // QUIT whose +OK is not sent: Redis 7.0 closes a connection only once its
                // last reply is written, so this one stays open and runs nothing more.
                client.close_after_reply = false;
                client.stalled = true;
            }
            finish_local(client, discard, scratch);
        }
        Exec::Keyed(h) => {
            let (owner, same) = if data.shards == 1 {
                (0, true)
            } else if cmd.first_key > 0
                && cmd.first_key == cmd.last_key
                && (cmd.first_key as usize) < argv.len()
            {
                (data.owner(argv[cmd.first_key as usize]), true)
            } else {
                let mut keys = cmd.key_positions(argv.len());
                let owner = keys.next().map_or(data.id, |p| data.owner(argv[p]));
                (owner, keys.all(|p| data.owner(argv[p]) == owner))
            };
            if !same {
                data.stats.record_rejected(cmd, argv, "CROSSSLOT");
                refuse(client, discard, out, scratch, |w| {
                    w.error("CROSSSLOT Keys in request don't hash to the same slot");
                });
                return true;
            }
            if owner == data.id {
                if data.locks.busy() && data.locks.blocks(client.db, cmd, argv) {
                    // A transaction holds or awaits the key: run this again once released.
                    client.reply_mode = reply_mode;
                    data.locks.refused = true;
                    pool_put(&mut data.buf_pool, scratch);
                    return false;
                }
                let watched = cmd.has(flags::WRITE) && data.observes_writes();
                let logged = data.effects.on;
                let before = if watched || logged {
                    data.keyspace.changes()
                } else {
                    0
                };
                let mut ctx = Ctx {
                    shard: data,
                    db: client.db,
                    proto: client.proto,
                    client: None,
                };
                run_handler(&mut ctx, h, argv, target);
                if watched {
                    // A command that failed changed no key (a lookup for writing may count).
                    data.tracking.failed = target_is_error(target, mark);
                    crate::atomic::watch::after_write(data, cmd, argv, client.db, before);
                }
                if logged {
                    let reply = target.get(mark..).unwrap_or(&[]);
                    crate::propagate::after_command(data, cmd, argv, client.db, before, reply);
                }
                let failed = target_is_error(target, mark);
                let took = data.took();
                data.stats
                    .record_call(cmd, argv, took, failed, target.get(mark..).unwrap_or(&[]));
                crate::stats::note_slow(data, cmd, took, client, argv);
                finish_local(client, discard, scratch);
            } else {
                data.stats.record_forward(cmd);
                let seq = client.push_pending(Pending::Waiting { discard });
                let fwd = Fwd {
                    conn: client.conn,
                    client: client.id,
                    seq,
                    cmd,
                    db: client.db as u16,
                    proto: client.proto,
                    no_touch: client.no_touch,
                };
                forward(data, outbox, owner, fwd, argv);
                pool_put(&mut data.buf_pool, scratch);
            }
        }
        // Blocking commands keep their own hop chain (`blocking`): under the transaction
        // locks they could not wait.
        Exec::Hop(_)
            if !routed_step
                && !cmd.has(flags::BLOCKING)
                && needs_txn(data, client.db, cmd, argv) =>
        {
            let db = client.db as u16;
            return start_single_txn(
                data, client, cmd, argv, db, discard, reply_mode, out, scratch, outbox,
            );
        }
        Exec::Hop(step) => {
            // A write whose steps may change several shards is one part in the gate
            // until its last step ran.
            let gated = data.shards > 1 && cmd.has(flags::WRITE);
            if gated && !data.shared.write_gate.enter(1) {
                client.reply_mode = reply_mode;
                pool_put(&mut data.buf_pool, scratch);
                return false;
            }
            let (db, proto) = (client.db, client.proto);
            let watched = cmd.has(flags::WRITE) && data.observes_writes();
            let logged = data.effects.on;
            let before = if watched || logged {
                data.keyspace.changes()
            } else {
                0
            };
            if !client.acl_free {
                // A restricted user's script checks its calls as that user.
                data.acl.caller.clone_from(&client.acl_user);
            }
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: None,
            };
            if cmd.has(flags::BLOCKING) {
                ctx.shard.blocking.site = crate::blocking::ChainSite::Dispatch;
            }
            ctx.shard.locks.script_ctx = crate::atomic::remote::ScriptCtx::Plain;
            let first = step(&mut ctx, argv);
            ctx.shard.locks.script_ctx = crate::atomic::remote::ScriptCtx::Confined;
            let (mut failed, mut reply) = (false, Vec::new());
            let result = run_hops(&mut ctx, first);
            data.blocking.site = crate::blocking::ChainSite::Other;
            data.acl.caller = None;
            if data.locks.rerun_global {
                // A script named another shard's key before writing and could not take
                // every shard at once: it runs again holding them (`atomic::remote`).
                if gated {
                    data.shared.write_gate.leave(1);
                }
                let db = db as u16;
                return start_single_txn(
                    data, client, cmd, argv, db, discard, reply_mode, out, scratch, outbox,
                );
            }
            if data.tracking.script_caller != 0 {
                // A tracking client's script ran here without reading: no later script
                // (another client's transaction step) inherits the watch.
                crate::tracking::script_ends(data);
            }
            if watched && !matches!(result, Partial::Hop { .. }) {
                crate::atomic::watch::after_write(data, cmd, argv, db, before);
            }
            if gated && !matches!(result, Partial::Hop { .. }) {
                data.shared.write_gate.leave(1);
            }
            match result {
                Partial::Defer(op) => defer_to_snapshot(data, client, discard, op),
                Partial::Block(spec) => {
                    // Nothing to take: the client waits (`blocking`); its later requests
                    // wait with it.
                    let seq = client.push_pending(Pending::Waiting { discard });
                    crate::blocking::block(data, client, seq, &spec);
                    pool_put(&mut data.buf_pool, scratch);
                }
                Partial::Hop { shard, step, argv } => {
                    let seq = client.push_pending(Pending::Waiting { discard });
                    client.hop_barrier = Some(seq);
                    let (from, conn, db) = (data.id, client.conn, db as u16);
                    outbox.send(
                        shard,
                        Msg::Run {
                            from,
                            conn,
                            seq,
                            db,
                            proto,
                            step,
                            argv,
                            gated,
                        },
                    );
                }
                done => {
                    reply = match done {
                        Partial::Encoded(b) => b,
                        other => internal_error(proto, &other),
                    };
                    failed = reply.first() == Some(&b'-');
                    target.extend_from_slice(&reply);
                    finish_local(client, discard, scratch);
                    if logged {
                        crate::propagate::after_command(data, cmd, argv, db, before, &reply);
                    }
                }
            }
            let took = data.took();
            data.stats.record_call(cmd, argv, took, failed, &reply);
        }
        Exec::Split { part, .. } => {
            let step = cmd.step.max(1) as usize;
            if !(argv.len().saturating_sub(cmd.first_key as usize)).is_multiple_of(step) {
                data.stats
                    .record_rejected(cmd, argv, "ERR wrong number of arguments");
                refuse(client, discard, out, scratch, |w| {
                    commands::wrong_arity(cmd.name, w);
                });
                return true;
            }
            let (jobs, key_map, nkeys) = crate::atomic::split_jobs(data, cmd, argv);
            if jobs.len() > 1
                || jobs.first().is_some_and(|j| j.0 != data.id)
                || (data.locks.busy() && data.locks.blocks(client.db, cmd, argv))
            {
                // Keys elsewhere or held: atomic under the transaction locks.
                let db = client.db as u16;
                return start_single_txn(
                    data, client, cmd, argv, db, discard, reply_mode, out, scratch, outbox,
                );
            }
            // A write with keys on several shards: each part is counted in the gate
            // until its shard applied it.
            let gated = jobs.len() > 1 && cmd.has(flags::WRITE);
            if gated && !data.shared.write_gate.enter(jobs.len()) {
                client.reply_mode = reply_mode;
                pool_put(&mut data.buf_pool, scratch);
                return false;
            }
            let gather = Gather {
                cmd,
                parts: (0..data.shards).map(|_| None).collect(),
                key_map,
                nkeys,
                remaining: 0,
                argv: Vec::new(),
                discard,
                proto: client.proto,
            };
            let jobs = jobs.into_iter().map(|(s, a)| (s, part, a)).collect();
            start_gather(data, client, gather, jobs, gated, argv, out, outbox);
        }
        Exec::All { part, .. } => {
            let jobs = (0..data.shards)
                .map(|s| (s, part, Argv::from_slices(argv)))
                .collect();
            let gather = Gather {
                cmd,
                parts: (0..data.shards).map(|_| None).collect(),
                key_map: Vec::new(),
                nkeys: 0,
                remaining: 0,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                discard,
                proto: client.proto,
            };
            // FLUSHDB, FLUSHALL and SWAPDB, the writes among these, run at a barrier with
            // several shards (`snapshot::intercept`): nothing here is gated.
            start_gather(data, client, gather, jobs, false, argv, out, outbox);
        }
    }
    true
}

/// Inside MULTI: the command is queued, or refused as Redis refuses it (which fails the
/// EXEC).
#[cold]
#[inline(never)]
fn queue_in_multi(
    data: &mut ShardData,
    client: &mut Client,
    cmd: &'static Command,
    argv: &[&[u8]],
    discard: bool,
    out: &mut Vec<u8>,
    scratch: Vec<u8>,
) -> bool {
    if cmd.has(flags::NO_MULTI) {
        let text = "ERR Command not allowed inside a transaction";
        data.stats.record_rejected(cmd, argv, text);
        refuse(client, discard, out, scratch, |w| w.error(text));
        return true;
    }
    let proto = client.proto;
    let mut buf = Vec::new();
    crate::commands::multi::queue(
        data,
        client,
        cmd,
        argv,
        &mut ReplyWriter {
            out: &mut buf,
            proto,
        },
    );
    answer(client, discard, out, scratch, |w| {
        w.out.extend_from_slice(&buf);
    });
    true
}

/// Whether a keyed multi-step command must run as a transaction: some key lives on
/// another shard, or a transaction holds or awaits one of them here.
fn needs_txn(data: &ShardData, db: usize, cmd: &Command, argv: &[&[u8]]) -> bool {
    if data.shards == 1 && !data.locks.busy() {
        return false;
    }
    let keys = crate::atomic::key_positions(cmd, argv);
    !keys.is_empty()
        && (keys.iter().any(|&p| data.owner(argv[p]) != data.id)
            || data.locks.blocks(db, cmd, argv))
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH (`commands::multi`).
#[cold]
#[inline(never)]
#[expect(clippy::too_many_arguments, reason = "dispatch's state, handed on")]
fn run_multi(
    data: &mut ShardData,
    client: &mut Client,
    cmd: &'static Command,
    op: crate::commands::multi::Op,
    argv: &[&[u8]],
    discard: bool,
    reply_mode: ReplyMode,
    out: &mut Vec<u8>,
    scratch: Vec<u8>,
    outbox: &mut Outbox<Msg>,
) -> bool {
    use crate::commands::multi::Outcome;
    let seq = client.first_seq + client.pending.len() as u64;
    let proto = client.proto;
    let mut buf = Vec::new();
    let outcome = crate::commands::multi::run(
        op,
        data,
        client,
        argv,
        seq,
        &mut ReplyWriter {
            out: &mut buf,
            proto,
        },
        outbox,
    );
    match outcome {
        Outcome::Replied => {
            let took = data.took();
            data.stats
                .record_call(cmd, argv, took, buf.first() == Some(&b'-'), &buf);
            crate::stats::note_slow(data, cmd, took, client, argv);
            answer(client, discard, out, scratch, |w| {
                w.out.extend_from_slice(&buf);
            });
        }
        Outcome::HeldBack => {
            client.reply_mode = reply_mode;
            pool_put(&mut data.buf_pool, scratch);
            return false;
        }
        Outcome::Gather(mut gather, jobs) => {
            gather.discard = discard;
            pool_put(&mut data.buf_pool, scratch);
            start_gather(data, client, gather, jobs, false, argv, out, outbox);
        }
        Outcome::Run(txn) => {
            let took = data.took();
            data.stats.record_call(cmd, argv, took, false, &[]);
            run_txn(data, client, txn, seq, discard, out, scratch, outbox);
        }
    }
    true
}

/// A multi-key command whose keys live on other shards (or are locked here), run
/// atomically as a one-command transaction.
#[cold]
#[inline(never)]
#[expect(clippy::too_many_arguments, reason = "dispatch's state, handed on")]
fn start_single_txn(
    data: &mut ShardData,
    client: &mut Client,
    cmd: &'static Command,
    argv: &[&[u8]],
    db: u16,
    discard: bool,
    reply_mode: ReplyMode,
    out: &mut Vec<u8>,
    scratch: Vec<u8>,
    outbox: &mut Outbox<Msg>,
) -> bool {
    let seq = client.first_seq + client.pending.len() as u64;
    let queued = crate::atomic::Queued {
        cmd,
        argv: Argv::from_slices(argv),
        db,
        discard,
        refused: None,
    };
    let mut txn = crate::atomic::Txn::new(data, client, seq, vec![queued], &[], false);
    if data.tracking.script_caller != 0 && crate::tracking::take_script(data, client.id) {
        // A tracking client's script: watched for reads where the transaction runs it.
        txn.track_scripts();
    }
    if std::mem::take(&mut data.locks.rerun_global) {
        txn.make_global(data.shards);
    }
    if !txn.enter_gate(data) {
        client.reply_mode = reply_mode;
        pool_put(&mut data.buf_pool, scratch);
        return false;
    }
    if txn.opens_group() {
        // The requests pipelined behind it join it (`join_open_txn`) until the batch ends.
        client.open_txn = Some(txn);
        pool_put(&mut data.buf_pool, scratch);
        return true;
    }
    run_txn(data, client, txn, seq, false, out, scratch, outbox);
    true
}

/// A request read while `client`'s open transaction gathers the pipeline: it joins the
/// transaction when it is a command with keys that runs wholly under the transaction's
/// locks (keyed, split or multi-step; not blocking) and valid as it stands; otherwise the
/// transaction starts now and this request waits for it in the input (false, with
/// `hop_barrier` set), to be read again once it answered.
#[cold]
#[inline(never)]
fn join_open_txn(
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
    out: &mut Vec<u8>,
    outbox: &mut Outbox<Msg>,
) -> bool {
    if let Some(cmd) = joins_open_txn(data, client, argv) {
        let discard = client.begin_request();
        let queued = crate::atomic::Queued {
            cmd,
            argv: Argv::from_slices(argv),
            db: client.db as u16,
            discard,
            refused: None,
        };
        client
            .open_txn
            .as_mut()
            .expect("checked by the caller")
            .push(data, queued);
        client.last_cmd = cmd.name;
        data.last_cmd = Some(cmd);
        return true;
    }
    start_open_txn(data, client, out, outbox);
    if client.hop_barrier.is_none() {
        // It answered at once (it cannot, having locks on another shard; but if it did,
        // nothing is left to wait for).
        return dispatch(data, client, argv, out, outbox);
    }
    false
}

/// The command of `argv` when it may join `client`'s open transaction.
fn joins_open_txn(data: &ShardData, client: &Client, argv: &[&[u8]]) -> Option<&'static Command> {
    let txn = client.open_txn.as_deref()?;
    let cmd = commands::lookup(argv[0])?;
    let plain = data.cluster.is_none()
        && cmd.arity_ok(argv.len())
        && cmd.subcommands.is_empty()
        && !cmd.has(flags::BLOCKING)
        && !client.must_auth(data.acl.auth_required)
        // A restricted user's request and a replica's write take dispatch's checks (ACL,
        // READONLY) there.
        && client.acl_free
        && !data.shared.repl.is_replica.load(Ordering::Relaxed)
        && data.shared.scripts.busy_error().is_none()
        && !(client.proto == Protocol::Resp2 && client.subscribed())
        // A tracking client's reads are remembered in dispatch (`tracking::before_command`),
        // which a joined request skips: its invalidations were lost.
        && client.tracking.is_none()
        && txn.has_room(argv);
    if !plain {
        return None;
    }
    let keys = crate::atomic::key_positions(cmd, argv);
    let first = data.owner(argv[*keys.first()?]);
    let fits = match cmd.exec {
        // A keyed command runs on one shard: its keys must live there together.
        Exec::Keyed(_) => keys.iter().all(|&p| data.owner(argv[p]) == first),
        Exec::Split { .. } | Exec::Hop(_) => true,
        Exec::Client(_) | Exec::All { .. } | Exec::Multi(_) => false,
    };
    fits.then_some(cmd)
}

/// Starts `client`'s open transaction, if any: its reply slot now, its answer later; the
/// client's next requests wait for it (`hop_barrier`).
pub(crate) fn start_open_txn(
    data: &mut ShardData,
    client: &mut Client,
    out: &mut Vec<u8>,
    outbox: &mut Outbox<Msg>,
) {
    let Some(mut txn) = client.open_txn.take() else {
        return;
    };
    let seq = client.first_seq + client.pending.len() as u64;
    txn.set_seq(seq);
    let scratch = if client.pending.is_empty() {
        Vec::new()
    } else {
        data.take_buf()
    };
    run_txn(data, client, txn, seq, false, out, scratch, outbox);
}

/// Starts a transaction from its client's shard: its reply now, or a reply slot that the
/// transaction fills when it finishes (later requests of the client wait for it).
#[cold]
#[inline(never)]
#[expect(clippy::too_many_arguments, reason = "dispatch's state, handed on")]
fn run_txn(
    data: &mut ShardData,
    client: &mut Client,
    txn: Box<crate::atomic::Txn>,
    seq: u64,
    discard: bool,
    out: &mut Vec<u8>,
    mut scratch: Vec<u8>,
    outbox: &mut Outbox<Msg>,
) {
    let barrier = txn.orders_later_requests();
    let then = txn.replicaof_after();
    if let Some(done) = crate::atomic::advance(data, outbox, txn, Some(client)) {
        if !discard {
            reply_target(client, out, &mut scratch).extend_from_slice(&done.bytes);
        }
        finish_local(client, discard, scratch);
    } else {
        let pushed = client.push_pending(Pending::Waiting { discard });
        debug_assert_eq!(pushed, seq);
        if barrier {
            client.hop_barrier = Some(pushed);
        }
        pool_put(&mut data.buf_pool, scratch);
    }
    if let Some(op) = then {
        // Its reply is EXEC's (`Txn::replicaof_after`).
        defer_to_snapshot(data, client, true, op);
    }
}

/// A container command (OBJECT, CONFIG, CLIENT...) checked against its subcommand's row
/// of the table, before anything indexes `argv` by the container's key positions: an
/// unknown subcommand or a wrong argument count for it gets Redis's error text.
#[inline]
pub(crate) fn check_subcommand(cmd: &Command, argv: &[&[u8]]) -> Option<String> {
    if cmd.subcommands.is_empty() || argv.len() < 2 {
        return None;
    }
    check_subcommand_row(cmd, argv)
}

#[cold]
fn check_subcommand_row(cmd: &Command, argv: &[&[u8]]) -> Option<String> {
    let sub = argv[1];
    let prefix = cmd.name.len() + 1;
    let row = cmd.subcommands.iter().find(|(full, _, _)| {
        full.len() > prefix && full.as_bytes()[prefix..].eq_ignore_ascii_case(sub)
    });
    match row {
        None => Some(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            commands::trunc_lossy(sub, 128),
            String::from_utf8_lossy(argv[0]).to_ascii_uppercase()
        )),
        Some((full, arity, _)) => {
            let argc = argv.len() as i32;
            let ok = if *arity >= 0 {
                argc == *arity
            } else {
                argc >= -arity
            };
            (!ok).then(|| format!("ERR wrong number of arguments for '{full}' command"))
        }
    }
}

/// Adds a keyed command for shard `owner` to the batch at the end of the outbox for it, or
/// starts a batch there: everything mailed to one shard keeps the order it was sent in.
fn forward(data: &mut ShardData, outbox: &mut Outbox<Msg>, owner: usize, fwd: Fwd, argv: &[&[u8]]) {
    if let Some(Msg::Forward { batch, .. }) = outbox.last_mut(owner)
        && batch.has_room()
    {
        batch.push(fwd, argv);
        return;
    }
    let mut batch = data.fwd_pool.take();
    batch.sent_ns = data.cmd_clock;
    batch.push(fwd, argv);
    outbox.send(
        owner,
        Msg::Forward {
            from: data.id,
            batch,
        },
    );
}

/// Queues `op` for the snapshot machinery (SAVE, BGSAVE, the cancel barrier...), which
/// answers in a reply slot reserved now; later requests of this client wait for it.
fn defer_to_snapshot(
    data: &mut ShardData,
    client: &mut Client,
    discard: bool,
    op: crate::snapshot::Op,
) {
    let seq = client.push_pending(Pending::Waiting { discard });
    client.hop_barrier = Some(seq);
    data.snap.requests.push_back(crate::snapshot::Request {
        op,
        reply: Some((client.conn, seq)),
    });
}

/// Runs the steps of an [`Exec::Hop`] command that stay on this shard; returns the reply
/// or the next step, which runs on another shard.
pub(crate) fn run_hops(ctx: &mut Ctx, mut result: Partial) -> Partial {
    loop {
        match result {
            Partial::Hop { shard, step, argv } if shard == ctx.shard.id => {
                let mut args = Vec::new();
                argv.fill(&mut args);
                result = step(ctx, &args);
            }
            other => return other,
        }
    }
}

fn target_is_error(target: &[u8], mark: usize) -> bool {
    target.get(mark) == Some(&b'-')
}

/// Answers a request refused before it ran (unknown command, arity, NOAUTH, CROSSSLOT):
/// `write` puts the error in the reply, then it is settled as any local reply. Nothing has
/// been queued for the client since `dispatch` chose its reply target, so `reply_target`
/// picks the same buffer again; a discarded reply is not written at all.
fn refuse(
    client: &mut Client,
    discard: bool,
    out: &mut Vec<u8>,
    scratch: Vec<u8>,
    write: impl FnOnce(&mut ReplyWriter<'_>),
) {
    if let Some(m) = client.multi.as_deref_mut() {
        // Redis's `flagTransaction`: a command refused inside MULTI fails the EXEC.
        m.failed = true;
    }
    answer(client, discard, out, scratch, write);
}

/// Answers a request locally with what `write` writes (settled as any local reply).
fn answer(
    client: &mut Client,
    discard: bool,
    out: &mut Vec<u8>,
    mut scratch: Vec<u8>,
    write: impl FnOnce(&mut ReplyWriter<'_>),
) {
    if !discard {
        let proto = client.proto;
        write(&mut ReplyWriter {
            out: reply_target(client, out, &mut scratch),
            proto,
        });
    }
    finish_local(client, discard, scratch);
}

/// After a locally answered request: move a reply written to scratch into the queue.
fn finish_local(client: &mut Client, discard: bool, scratch: Vec<u8>) {
    if discard {
        return;
    }
    if !scratch.is_empty() || !client.pending.is_empty() {
        client.push_pending(Pending::Ready(scratch));
    }
}

/// Sends a multi-shard command's parts, runs the local one, and answers at once when no
/// other shard is involved. `gated`: each part was counted in the write gate and leaves
/// it once applied. `request`: the client's arguments (for the slow log when `gather`
/// keeps none).
#[expect(
    clippy::too_many_arguments,
    reason = "the request and where its reply goes"
)]
pub(crate) fn start_gather(
    data: &mut ShardData,
    client: &mut Client,
    mut gather: Gather,
    jobs: Vec<(usize, PartFn, Argv)>,
    gated: bool,
    request: &[&[u8]],
    out: &mut Vec<u8>,
    outbox: &mut Outbox<Msg>,
) {
    let cmd = gather.cmd;
    gather.remaining = jobs.len();
    let mut jobs = jobs;
    // The local part runs first: it may queue replies of its own before the gathered one
    // (a message PUBLISH delivers to its own publisher), so the gather's slot number is
    // taken after it.
    if let Some(i) = jobs.iter().position(|j| j.0 == data.id) {
        let (_, part, argv) = jobs.swap_remove(i);
        let mut args = Vec::new();
        argv.fill(&mut args);
        let watched = cmd.has(flags::WRITE) && data.observes_writes();
        let logged = data.effects.on;
        let before = if watched || logged {
            data.keyspace.changes()
        } else {
            0
        };
        let db = client.db;
        let mut ctx = Ctx {
            shard: data,
            db,
            proto: client.proto,
            client: Some(client),
        };
        gather.parts[data.id] = Some(part(&mut ctx, &args));
        gather.remaining -= 1;
        if watched {
            crate::atomic::watch::after_write(data, cmd, &args, db, before);
        }
        if logged {
            // A part that failed here (FLUSHALL with a bad argument) answers the error and
            // logs nothing: Redis propagates no failed command.
            let failed: &[u8] = match &gather.parts[data.id] {
                Some(Partial::Encoded(b)) if b.first() == Some(&b'-') => b,
                _ => b"",
            };
            crate::propagate::after_command(data, cmd, &args, db, before, failed);
        }
        if gated {
            data.shared.write_gate.leave(1);
        }
        // CLIENT REPLY ON answers even when replies were off.
        if client.reply_mode == ReplyMode::On {
            gather.discard = false;
        }
    }
    let seq = client.first_seq + client.pending.len() as u64;
    for (s, part, argv) in jobs {
        outbox.send(
            s,
            Msg::Run {
                from: data.id,
                conn: client.conn,
                seq,
                db: client.db as u16,
                proto: client.proto,
                step: part,
                argv,
                gated,
            },
        );
    }
    let took = data.took();
    data.stats.record_call(cmd, request, took, false, &[]);
    // The command as the client sent it (`gather.argv` is kept only where the merge
    // needs it: empty for split commands such as MGET and DEL).
    crate::stats::note_slow(data, cmd, took, client, request);
    if gather.remaining > 0 {
        let pushed = client.push_pending(Pending::Gather(Box::new(gather)));
        debug_assert_eq!(pushed, seq);
        return;
    }
    let bytes = merge_gather(data, &mut gather);
    if client.pending.is_empty() {
        out.extend_from_slice(&bytes);
    } else {
        client.push_pending(Pending::Ready(bytes));
    }
}

/// All parts are in: the encoded reply (empty when discarded), in the protocol the command
/// was read under.
fn merge_gather(data: &mut ShardData, g: &mut Gather) -> Vec<u8> {
    let proto = g.proto;
    let merge = match g.cmd.exec {
        Exec::Split { merge, .. } | Exec::All { merge, .. } => merge,
        // WATCH of keys on other shards: OK once every owner registered them.
        Exec::Multi(_) => crate::commands::multi::ok_merge,
        _ => unreachable!("gather of a single-shard command"),
    };
    let mut buf = Vec::new();
    merge(
        g,
        &mut ReplyWriter {
            out: &mut buf,
            proto,
        },
    );
    if buf.first() == Some(&b'-') {
        data.stats
            .record_failed(g.cmd, g.argv.get(1).map(Vec::as_slice), &buf);
    }
    if g.discard {
        buf.clear();
    }
    buf
}

fn internal_error(proto: Protocol, what: &Partial) -> Vec<u8> {
    let mut b = Vec::new();
    ReplyWriter { out: &mut b, proto }.error(&format!(
        "ERR internal error: unexpected shard answer {what:?}"
    ));
    b
}

impl Events for Shard {
    type Msg = Msg;
    type Conn = ();
    fn on_accept(
        &mut self,
        io: &mut Io<Msg, ()>,
        id: ConnId,
        fd: RawFd,
        peer: Option<SocketAddr>,
    ) -> Result<(), Vec<u8>> {
        accept_client(&mut self.data, io.now_ms, id, fd, peer)
    }

    fn transport(
        &mut self,
        _io: &mut Io<Msg, ()>,
        listener: usize,
    ) -> Option<Box<dyn percore_net::transport::Transport>> {
        self.data.shared.tls.accept(listener)
    }
    fn on_accept_failed(&mut self, _io: &mut Io<Msg, ()>, errno: i32, unreported: u64) {
        // Redis's line; the count of failures the rate limit kept out of the log follows.
        let mut line = format!(
            "Accepting client connection: accept: {}",
            percore_net::sys::strerror(&std::io::Error::from_raw_os_error(errno))
        );
        if unreported > 0 {
            let _ = write!(line, " ({unreported} more not logged)");
        }
        self.data.shared.warning(&line);
    }
    fn on_input(&mut self, io: &mut Io<Msg, ()>, id: ConnId) {
        self.data.now_ms = io.now_ms;
        self.data.refresh_config();
        if self.data.tracking.armed && crate::tracking::pending(&self.data) {
            // Invalidations of writes whose replies left before this input arrived.
            crate::tracking::deliver(&mut self.data, io);
        }
        self.process_input(io, id);
    }
    fn keepalive_s(&self) -> u32 {
        self.data.cfg.tcp_keepalive_secs
    }
}

impl Service for Shard {
    fn on_message(&mut self, io: &mut Io<Msg, ()>, msg: Msg) {
        self.data.now_ms = io.now_ms;
        // A command forwarded right after a CONFIG SET on its sender's shard must see it
        // (proto-max-bulk-len for SETBIT/SETRANGE, hll-sparse-max-bytes): one atomic load.
        self.data.refresh_config();
        self.data.start_clock(io.now_ns);
        match msg {
            Msg::Forward { from, batch } => self.on_forward(io, from, batch, None),
            Msg::Answered { batch } => self.on_answered(io, batch),
            Msg::Run {
                from,
                conn,
                seq,
                db,
                proto,
                step,
                argv,
                gated,
            } => {
                self.on_run(io, from, conn, seq, db, proto, step, argv, gated);
            }
            Msg::Done {
                conn,
                seq,
                shard,
                result,
            } => self.on_done(io, conn, seq, shard, result),
            Msg::Park(session) => self.data.snap.join(session),
            Msg::Block(m) => crate::blocking::on_message(&mut self.data, m),
            Msg::Txn(txn) => {
                if let Some(done) = crate::atomic::advance(&mut self.data, io.outbox(), txn, None) {
                    let me = self.data.id;
                    self.on_done(io, done.conn, done.seq, me, Partial::Encoded(done.bytes));
                }
            }
            Msg::Unlock { keys, whole } => self.data.locks.release_keys(&keys, whole),
            Msg::Unwatch { client, keys } => self.data.watches.unwatch(client, &keys),
            Msg::Notify(packed) => crate::notify::receive(&mut self.data, &packed),
            Msg::Monitor(lines) => crate::monitor::receive(&mut self.data, lines),
            Msg::Tracking => crate::tracking::deliver(&mut self.data, io),
            Msg::Migrate(mail) => crate::migrate::receive(&mut self.data, *mail),
        }
        if self.data.blocking.busy() || !self.data.blocking.flush.is_empty() {
            self.blocking_work(io);
        }
        if self.data.locks.released {
            self.pump_locks(io);
        }
    }
    fn before_wait(&mut self, io: &mut Io<Msg, ()>) {
        if let Some(busy) = self.data.busy_serve.as_mut()
            && !busy.outbox.is_empty()
        {
            // Mail of requests served while a script was busy, after the mail of the
            // command that ran the script.
            io.outbox().append(&mut busy.outbox);
        }
        if self.data.blocking.has_timers() || self.data.blocking.busy() {
            // Timeouts of blocked clients at millisecond resolution: the loop wakes for
            // the next deadline.
            self.data.now_ms = io.now_ms;
            if let Some(d) = crate::blocking::tick(&mut self.data, io.now_ms) {
                io.wake_within(d);
            }
            self.blocking_work(io);
        }
        // Keyspace notifications of this iteration's work (requests, mail, blocked
        // clients served, expiry): published here and mailed to the other shards before
        // the outbox leaves.
        if crate::notify::flush(&mut self.data, io) {
            crate::pubsub::deliver(&mut self.data, io);
        }
        crate::monitor::flush(&mut self.data, io);
        if self.data.tracking.armed {
            self.tracking_work(io);
            crate::tracking::flush(&mut self.data, io);
        }
        if self.data.snap.will_park() {
            io.submit_before_blocking();
        }
        if self.data.evict.running && crate::evict::resume(&mut self.data) {
            io.wake_within(Duration::ZERO);
        }
        crate::propagate::publish(&mut self.data);
        crate::stats::hop_spin(&mut self.data, io);
    }
    fn after_flush(&mut self, io: &mut Io<Msg, ()>) {
        crate::latency::after_flush(&mut self.data, io);
        let mut replies = crate::snapshot::after_flush(&mut self.data, io);
        if crate::replication::wait::any(&self.data) {
            replies.extend(crate::replication::wait::answers(&mut self.data, io));
        }
        if crate::migrate::any(&self.data) {
            replies.extend(crate::migrate::answers(&mut self.data, io));
        }
        let me = self.data.id;
        for (conn, seq, bytes) in replies {
            self.on_done(io, conn, seq, me, Partial::Encoded(bytes));
        }
        if !self.data.snap.gated.is_empty() {
            if self.data.shared.write_gate.is_closed() {
                io.wake_within(crate::snapshot::gate::GATE_POLL);
            } else {
                // The barrier is over: run the held-back writes and what follows them.
                for id in std::mem::take(&mut self.data.snap.gated) {
                    self.process_input(io, id);
                }
                io.wake_within(Duration::ZERO);
            }
        }
        if self.data.shutdown_requested && !io.shutting_down() {
            io.request_shutdown();
        }
    }
    fn on_readable(&mut self, io: &mut Io<Msg, ()>, tag: u32, _res: i32) {
        if tag == crate::snapshot::WATCH_TAG_CHILD {
            crate::snapshot::child_event(&mut self.data);
        }
        if tag == crate::atomic::remote::WATCH_TAG_SCRIPT_CALLS {
            self.serve_script_calls(io);
        }
    }

    fn on_close(&mut self, io: &mut Io<Msg, ()>, mut conn: Conn<()>) {
        let id = conn.id();
        crate::replication::on_close(&mut self.data, id);
        if let Some(mut client) = self
            .data
            .clients
            .get_mut(id.index as usize)
            .and_then(|c| c.take_if(|c| c.conn == id))
        {
            if let Some(replica) = client.tls_replica {
                let session = conn.take_transport();
                crate::replication::primary::tls_handover(&self.data.shared, replica, session);
            }
            if client.subscribed() {
                crate::pubsub::forget(&mut self.data, &mut client);
            }
            crate::monitor::forget(&mut self.data, &mut client);
            crate::pause::forget(&mut self.data, id);
            if client.blocked.is_some() {
                crate::blocking::forget(&mut self.data, &mut client);
                crate::blocking::pump(&mut self.data, io.outbox(), true);
            }
            crate::atomic::unwatch_all(&mut self.data, &mut client, |s, m| io.send(s, m));
            crate::tracking::disconnected(&mut self.data, &mut client);
            crate::client_mem::forget(&mut self.data, &mut client);
        }
        self.data
            .shared
            .stats
            .connected_clients
            .fetch_sub(1, Ordering::AcqRel);
    }
    fn on_tick(&mut self, io: &mut Io<Msg, ()>) {
        if !self.data.locks.calls_armed {
            self.serve_script_calls(io);
        }
        self.data.now_ms = io.now_ms;
        self.data.refresh_config();
        crate::listen::on_tick(&self.data.shared, self.data.id, io);
        let budget = Duration::from_micros(
            1_000_000 / u64::from(self.data.cfg.hz.max(1)) * ACTIVE_EXPIRE_CYCLE_TIME_PERCENT / 100,
        );
        if self.data.active_expire {
            crate::expire::active_expire_cycle(&mut self.data, budget);
        }
        crate::client_mem::on_tick(&mut self.data);
        crate::client_mem::resize_query_buffers(&mut self.data, io);
        if crate::evict::on_tick(&mut self.data) {
            io.wake_within(Duration::ZERO);
        }
        let now_ms = self.data.now_ms;
        self.data.stats.sample_ops(now_ms);
        crate::snapshot::on_tick(&mut self.data);
        crate::replication::on_tick(&mut self.data, io);
        crate::metrics::on_tick(&mut self.data, io);
        // Idle clients (`timeout`): no request read and no reply bytes written for that
        // long (Redis's `lastinteraction` moves on both), no reply owed by another shard,
        // and no subscription.
        // Compared in whole seconds, as Redis's `server.unixtime - c->lastinteraction >
        // maxidletime`: a reply still draining from the socket buffers to a slow reader
        // has up to a second more before its last write counts as idle.
        let timeout_s = i64::from(self.data.cfg.timeout_secs);
        if timeout_s > 0 {
            let now_s = self.data.now_ms / 1000;
            let idle = |at_ms: i64| now_s - at_ms / 1000 > timeout_s;
            for c in self.data.clients.iter().flatten() {
                // Subscribed clients are exempt, as in Redis (they may only listen).
                if idle(c.last_interaction_ms)
                    && c.pending.is_empty()
                    && !c.subscribed()
                    && !c.master
                    && io.conn(c.conn).is_some_and(|conn| idle(conn.last_send_ms))
                {
                    self.data.to_close.push(c.conn);
                }
            }
        }
        self.after_batch(io);
    }
    fn on_signal(&mut self, io: &mut Io<Msg, ()>, signo: u32) {
        use crate::config::kept::{SHUTDOWN_FORCE, SHUTDOWN_NOSAVE, SHUTDOWN_SAVE};
        let name = if signo == libc::SIGINT as u32 {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        self.data
            .shared
            .warning(&format!("Received {name} scheduling shutdown..."));
        // `shutdown-on-sigint` / `shutdown-on-sigterm`: `default` saves when save points
        // are set; `save` / `nosave` decide instead; `force` exits even if the save fails.
        self.data.refresh_config();
        let how = self
            .data
            .cfg
            .shutdown_on_signal(signo == libc::SIGINT as u32);
        let save = how & SHUTDOWN_SAVE != 0
            || (how & SHUTDOWN_NOSAVE == 0 && !self.data.cfg.save.is_empty());
        if save {
            // The final save runs at a barrier; the shutdown follows it.
            self.data
                .shared
                .notice("Saving the final RDB snapshot before exiting.");
            self.data.snap.requests.push_back(crate::snapshot::Request {
                op: crate::snapshot::Op::ShutdownSave {
                    force: how & SHUTDOWN_FORCE != 0,
                },
                reply: None,
            });
        } else {
            io.request_shutdown();
        }
    }
    fn attach_nested(&mut self, poll: *mut dyn percore_net::reactor::NestedPoll<Msg, ()>) {
        crate::scripting::busy::attach(poll);
    }

    fn tick_interval(&self) -> Duration {
        Duration::from_millis(1000 / u64::from(self.data.cfg.hz.clamp(1, 500)))
    }
}

/// A new connection `id` of this shard (`Events::on_accept`): its client, or the refusal.
pub(crate) fn accept_client(
    data: &mut ShardData,
    now_ms: i64,
    id: ConnId,
    fd: RawFd,
    peer: Option<SocketAddr>,
) -> Result<(), Vec<u8>> {
    // A CONFIG SET on another shard (maxclients, requirepass) applies to this client.
    data.refresh_config();
    if crate::replication::adopting(&*data, fd) {
        // The primary's stream of a replica: the master client.
        data.shared
            .stats
            .connected_clients
            .fetch_add(1, Ordering::AcqRel);
        data.now_ms = now_ms;
        add_client(data, id, fd, peer);
        if let Some(mut client) = data.clients[id.index as usize].take() {
            crate::replication::make_master_client(data, &mut client);
            data.clients[id.index as usize] = Some(client);
        }
        return Ok(());
    }
    crate::acl::refresh(data);
    let stats = &data.shared.stats;
    let max = data.cfg.maxclients as usize;
    let connected = stats.connected_clients.fetch_add(1, Ordering::AcqRel) + 1;
    if connected > max {
        stats.connected_clients.fetch_sub(1, Ordering::AcqRel);
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        return Err(b"-ERR max number of clients reached\r\n".to_vec());
    }
    // Protected mode (Redis 7): while the default user has no password, only loopback
    // and Unix-socket clients, whatever `bind` says.
    if protected_refuses(
        data.cfg.protected_mode,
        data.acl.default_nopass,
        peer.map(|p| p.ip()),
    ) {
        stats.connected_clients.fetch_sub(1, Ordering::AcqRel);
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        return Err(PROTECTED_MODE_TEXT.as_bytes().to_vec());
    }
    stats
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
    data.now_ms = now_ms;
    add_client(data, id, fd, peer);
    Ok(())
}

/// Creates the client of a new connection.
fn add_client(data: &mut ShardData, id: ConnId, fd: RawFd, peer: Option<SocketAddr>) {
    let idx = id.index as usize;
    if data.clients.len() <= idx {
        data.clients.resize_with(idx + 1, || None);
    }
    let cid = data
        .shared
        .stats
        .next_client_id
        .fetch_add(1, Ordering::Relaxed);
    let mut client = Client::new(id, cid, data.now_ms, false);
    crate::acl::link_new(data, &mut client);
    if let Some(p) = peer {
        client.peer = p.to_string();
    }
    if let Ok(l) = percore_net::sys::local_addr(fd) {
        client.local = l.to_string();
    }
    client.fd = fd;
    crate::tracking::connected(data, cid, id);
    data.clients[idx] = Some(Box::new(client));
}

/// Redis's protected-mode refusal.
/// Whether protected mode refuses a new client from `peer` (`None`: a Unix socket):
/// Redis's `islocalClient` (loopback, IPv4-mapped loopback included).
fn protected_refuses(
    protected: bool,
    default_nopass: bool,
    peer: Option<std::net::IpAddr>,
) -> bool {
    protected && default_nopass && peer.is_some_and(|ip| !ip.to_canonical().is_loopback())
}

pub const PROTECTED_MODE_TEXT: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

#[cfg(test)]
mod protected_mode_tests {
    use super::protected_refuses;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn only_non_loopback_peers_are_refused_and_only_without_a_password() {
        for local in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
            assert!(!protected_refuses(true, true, Some(ip(local))), "{local}");
        }
        assert!(
            !protected_refuses(true, true, None),
            "a Unix socket is local"
        );
        for remote in ["192.0.2.2", "10.1.2.3", "fd00::2", "::ffff:192.0.2.2"] {
            assert!(protected_refuses(true, true, Some(ip(remote))), "{remote}");
            assert!(
                !protected_refuses(false, true, Some(ip(remote))),
                "protected-mode no"
            );
            assert!(
                !protected_refuses(true, false, Some(ip(remote))),
                "a password is set"
            );
        }
    }
}

#[cfg(test)]
mod argv_tests {
    use super::Argv;

    #[test]
    fn argv_round_trips_in_one_buffer() {
        let args: Vec<&[u8]> = vec![b"SET", b"", b"key", &[0, 255, 13, 10]];
        let a = Argv::from_slices(&args);
        let mut out = Vec::new();
        a.fill(&mut out);
        assert_eq!(out, args);
        let empty = Argv::from_slices(&[]);
        let mut out = Vec::new();
        empty.fill(&mut out);
        assert!(out.is_empty());
    }
}

/// The request loop without a kernel: two connections of one shard, fed by hand.
#[cfg(test)]
mod request_loop_tests {
    use super::Shard;
    use crate::client::Client;
    use crate::config::{Config, LogLevel};
    use crate::server::{Log, ServerShared};
    use percore_net::mailbox::Outbox;
    use percore_net::reactor::{Conn, ConnId};

    fn resp(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn bulk(v: &[u8]) -> Vec<u8> {
        let mut out = format!("${}\r\n", v.len()).into_bytes();
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Each connection's stream (a SET and a GET of its own key, B's value holding whole
    /// commands) is cut in two at every pair of positions, and the four pieces arrive
    /// interleaved: A's first, B's first, A's rest, B's rest. Each connection gets exactly
    /// its own replies, and nothing inside B's value runs. Before the parse state moved into
    /// the connection, B's first piece resumed A's half-parsed request at A's offsets.
    #[test]
    fn two_connections_partial_requests_interleaved_at_every_cut() {
        let shared = ServerShared::new(
            Config {
                save: Vec::new(),
                ..Config::default()
            },
            None,
            Log::new(Box::new(std::io::sink()), LogLevel::Nothing),
            1,
            0,
            String::new(),
        );
        let mut shard = Shard::new(0, 1, shared);
        let now = shard.data.now_ms;
        let mut outbox = Outbox::new(1);
        let mut conns: Vec<(Client, Conn<()>)> = (0..2u32)
            .map(|i| {
                let id = ConnId {
                    index: i,
                    generation: 0,
                };
                (
                    Client::new(id, u64::from(i) + 1, now, true),
                    Conn::detached(i, ()),
                )
            })
            .collect();
        let va = b"value-of-a".repeat(3);
        let vb = b"*1\r\n$8\r\nFLUSHALL\r\n*3\r\n$3\r\nSET\r\n$4\r\npwnd\r\n$1\r\n1\r\n".to_vec();
        let mut stream_a = resp(&[b"SET", b"key-a", &va]);
        stream_a.extend(resp(&[b"GET", b"key-a"]));
        let mut stream_b = resp(&[b"SET", b"the-key-of-b", &vb]);
        stream_b.extend(resp(&[b"GET", b"the-key-of-b"]));
        let mut want_a = b"+OK\r\n".to_vec();
        want_a.extend(bulk(&va));
        let mut want_b = b"+OK\r\n".to_vec();
        want_b.extend(bulk(&vb));
        let mut runs = 0;
        for cut_a in 1..stream_a.len() {
            for cut_b in (1..stream_b.len()).step_by(3) {
                let pieces: [(usize, &[u8]); 4] = [
                    (0, &stream_a[..cut_a]),
                    (1, &stream_b[..cut_b]),
                    (0, &stream_a[cut_a..]),
                    (1, &stream_b[cut_b..]),
                ];
                for (which, piece) in pieces {
                    let (client, conn) = &mut conns[which];
                    conn.input.append(piece);
                    shard.run_requests(client, conn, &mut outbox);
                }
                for (which, want) in [(0, &want_a), (1, &want_b)] {
                    let (client, conn) = &mut conns[which];
                    assert_eq!(
                        String::from_utf8_lossy(&conn.output),
                        String::from_utf8_lossy(want),
                        "connection {which}, cuts {cut_a}/{cut_b}"
                    );
                    assert!(conn.input.is_empty() && client.pending.is_empty());
                    assert!(
                        !conn.is_closing(),
                        "connection {which}, cuts {cut_a}/{cut_b}"
                    );
                    conn.output.clear();
                }
                assert!(!shard.data.keyspace.db_mut(0).contains(b"pwnd", now));
                runs += 1;
            }
        }
        assert!(runs > 1000);
    }
}
