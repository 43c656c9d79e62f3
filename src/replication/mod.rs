//! Replication, the replica side: percore as a replica of a Redis-protocol primary
//! (redis-server 7.0, Valkey, percore) with Redis's PSYNC2 handshake.
//!
//! - The link thread (`link.rs`) connects, runs the handshake, receives a full sync's
//!   RDB (`$len` or the EOF-marker form) into a temp file and loads it into fresh
//!   keyspaces, one per shard, while the shards go on serving the old data.
//! - Shard 0 is the replica's home: on its tick it takes what the link thread produced.
//!   A full sync swaps the new keyspaces in at a cancelling barrier (every in-flight
//!   snapshot on every core is stopped first, see `snapshot::Op::Replication`); then,
//!   as for a partial resync (+CONTINUE), the socket becomes one of shard 0's connections
//!   (`Io::adopt`): the *master client*, whose commands run as any client's (keyed
//!   commands forwarded to their shard in order, MULTI/EXEC blocks under the transaction
//!   locks) with replies suppressed, and whose consumed bytes move the replication offset.
//! - REPLICAOF / SLAVEOF changes the role at a cancelling barrier too, before the reply.

pub mod config;
pub mod diskless;
pub mod link;
pub mod lock_order;
pub mod primary;
pub mod wait;

use crate::server::ServerShared;
use crate::shard::{Msg, ShardData};
use config::Primary;
use percore_engine::keyspace::Keyspace;
use percore_net::reactor::{ConnId, Io};
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// A replica sends `REPLCONF ACK <offset>` this often (Redis: every replication cron).
pub const ACK_INTERVAL_MS: i64 = 1000;
/// A failed link is tried again after this long (Redis's replication cron period).
pub const LINK_RETRY_MS: i64 = 1000;

/// The state of a replica's link to its primary (Redis's `repl_state`, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not connected; the link thread starts (again) soon.
    Connect,
    Connecting,
    /// PING, AUTH, REPLCONF, PSYNC.
    Handshake,
    /// Receiving or loading a full sync.
    Transfer,
    Connected,
}

impl Link {
    /// The state word of ROLE.
    pub fn role_name(self) -> &'static str {
        match self {
            Link::Connect => "connect",
            Link::Connecting => "connecting",
            Link::Handshake => "handshake",
            Link::Transfer => "sync",
            Link::Connected => "connected",
        }
    }
}

/// A role change REPLICAOF asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// REPLICAOF NO ONE.
    Primary,
    ReplicaOf(Primary),
}

/// What a barrier does for replication (see `snapshot::Op::Replication`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarrierOp {
    /// REPLICAOF / SLAVEOF: apply `State::pending_primary`.
    ReplicaOf,
    /// Swap in the dataset of a full sync (`State::loaded`).
    Load,
}

/// A full sync's dataset, loaded by the link thread.
pub struct FullSync {
    pub keyspaces: Vec<Keyspace>,
    pub functions: Vec<Vec<u8>>,
    pub keys_loaded: u64,
    /// The received RDB file: installed as `dbfilename` (disk load, as Redis) or removed.
    pub temp_path: std::path::PathBuf,
    pub install_as_dump: bool,
}

/// What the link thread hands to shard 0 once the primary streams commands.
pub struct Ready {
    pub generation: u64,
    pub stream: link::Stream,
    /// Bytes of the command stream read past the handshake or the RDB payload.
    pub leftover: Vec<u8>,
    pub replid: String,
    /// The offset the stream starts after (FULLRESYNC's offset, or ours on +CONTINUE).
    pub offset: i64,
    pub full: Option<FullSync>,
}

/// Progress of a full sync's transfer (INFO `master_sync_*`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Transfer {
    /// Payload bytes announced (`$len`), or -1 for the EOF-marker form.
    pub size: i64,
    pub read: u64,
    pub last_io_ms: i64,
}

/// Replication state shared by the shards and the link thread.
pub struct State {
    /// The primary this node replicates (REPLICAOF host port), or none (a primary).
    pub primary: Option<Primary>,
    /// Moves at every role change: a link thread or a master client of an older
    /// generation is abandoned.
    pub generation: u64,
    pub link: Link,
    pub thread_running: bool,
    pub retry_at_ms: i64,
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
    /// Whether PSYNC can offer our history (`replid offset+1`) rather than `? -1`.
    pub have_history: bool,
    pub ready: Option<Ready>,
    /// A full sync waiting for its barrier.
    pub loaded: Option<Ready>,
    /// A REPLICAOF waiting for its barrier.
    pub pending_primary: Option<RoleChange>,
    /// When the link went down (Unix ms), 0 if it never was up.
    pub down_since_ms: i64,
    pub transfer: Transfer,
}

/// Replication state in [`ServerShared`].
pub struct Shared {
    /// This node is a replica: dispatch checks READONLY and MASTERDOWN (one relaxed load).
    pub is_replica: AtomicBool,
    /// The master client is connected and streaming.
    pub link_up: AtomicBool,
    /// `master_repl_offset`: the stream applied so far.
    pub offset: AtomicI64,
    /// `slave_read_repl_offset`: the stream read so far.
    pub read_offset: AtomicI64,
    /// Unix ms of the last bytes from the primary.
    pub last_io_ms: AtomicI64,
    pub state: Mutex<State>,
    /// The primary side: backlog and replicas.
    pub primary: primary::Primary,
    /// INFO stats `sync_full`, `sync_partial_ok`, `sync_partial_err`.
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
}

impl Shared {
    pub fn new(replid: String, primary: Option<Primary>) -> Self {
        Self {
            is_replica: AtomicBool::new(primary.is_some()),
            link_up: AtomicBool::new(false),
            offset: AtomicI64::new(0),
            read_offset: AtomicI64::new(0),
            last_io_ms: AtomicI64::new(0),
            state: Mutex::new(State {
                primary,
                generation: 1,
                link: Link::Connect,
                thread_running: false,
                retry_at_ms: 0,
                replid,
                replid2: NO_REPLID.to_owned(),
                second_offset: -1,
                have_history: false,
                ready: None,
                loaded: None,
                pending_primary: None,
                down_since_ms: 0,
                transfer: Transfer::default(),
            }),
            primary: primary::Primary::default(),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
        }
    }

    pub fn lock(&self) -> lock_order::Ranked<'_, State> {
        lock_order::Ranked::lock(&self.state, lock_order::Rank::Replication, "replication")
    }
}

/// A replication id of zeros: none.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Replication state of one shard (only shard 0's is used: the master client lives there).
#[derive(Default)]
pub struct Local {
    /// The master client's connection, and the generation it serves.
    pub master: Option<(ConnId, u64)>,
    /// A socket handed to the reactor that becomes the master client when it joins.
    pub adopting: Option<(RawFd, u64)>,
    pub last_ack_ms: i64,
    /// A `REPLCONF GETACK` asked for an ACK now.
    pub ack_due: bool,
    /// Clients of this shard waiting in WAIT.
    pub waits: Vec<wait::Waiter>,
    /// Stream bytes of a MULTI block the master client has not yet run (its EXEC is still
    /// to come), not counted in the offset yet, and their copy to relay (if relaying).
    pub in_multi: (usize, Option<Vec<u8>>),
    /// The master client's database after its last batch: a partial resync's master
    /// client starts there, as Redis's cached master keeps its database (the primary
    /// goes on without a SELECT).
    pub master_db: usize,
}

/// The refusal of a command by replication, if any: on a primary NOREPLICAS (writes while
/// `min-replicas-to-write` good replicas are missing); on a replica READONLY (writes with
/// `replica-read-only yes`), then MASTERDOWN (`replica-serve-stale-data no` while the link
/// is down, for commands without the `stale` flag), in Redis's order.
/// An EXEC whose queued commands write, refused so, discards its transaction (Redis's
/// `execCommandAbort`).
pub fn refusal(
    data: &mut ShardData,
    client: &mut crate::client::Client,
    cmd: &crate::commands::Command,
    outbox: &mut percore_net::mailbox::Outbox<Msg>,
) -> Option<&'static str> {
    use crate::commands::flags;
    if !data.shared.repl.is_replica.load(Ordering::Relaxed) {
        // A primary with `min-replicas-to-write`.
        if !wait::too_few_replicas(data) {
            return None;
        }
        if cmd.has(flags::WRITE) {
            return Some(wait::NOREPLICAS);
        }
        let queued_write = cmd.name == "exec"
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.cmds.iter().any(|q| q.cmd.has(flags::WRITE)));
        if queued_write {
            client.multi = None;
            crate::atomic::unwatch_all(data, client, |s, m| outbox.send(s, m));
            return Some(wait::EXEC_NOREPLICAS);
        }
        return None;
    }
    if data.cfg.repl.read_only && cmd.has(flags::WRITE) {
        return Some("READONLY You can't write against a read only replica.");
    }
    if !data.cfg.repl.serve_stale_data
        && !cmd.has(flags::STALE)
        && !data.shared.repl.link_up.load(Ordering::Relaxed)
    {
        return Some(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        );
    }
    None
}

/// Starts the link thread when the node is a replica without a link (shard 0's tick, and
/// at once after REPLICAOF).
fn ensure_link(shared: &std::sync::Arc<ServerShared>, st: &mut State, now_ms: i64) {
    let Some(primary) = st.primary.clone() else {
        return;
    };
    if st.link != Link::Connect || st.thread_running || now_ms < st.retry_at_ms {
        return;
    }
    let cfg = shared.config();
    let psync = st.have_history.then(|| {
        (
            st.replid.clone(),
            shared.repl.offset.load(Ordering::Relaxed) + 1,
        )
    });
    st.thread_running = true;
    st.link = Link::Connecting;
    let spawned = link::spawn(
        std::sync::Arc::clone(shared),
        link::Params {
            generation: st.generation,
            primary,
            masterauth: cfg.repl.masterauth.clone(),
            masteruser: cfg.repl.masteruser.clone(),
            // Redis announces its TLS port when the links speak TLS.
            listening_port: if cfg.tls.replication && cfg.tls.port != 0 {
                cfg.tls.port
            } else {
                shared.tcp_port()
            },
            timeout_s: cfg.repl.timeout_s,
            dir: cfg.dir.clone(),
            dbfilename: cfg.dbfilename.clone(),
            install_as_dump: cfg.repl.diskless_load == config::DisklessLoad::Disabled,
            shards: shared.shards,
            databases: cfg.keyspace_databases(),
            slot_index: cfg.cluster_enabled,
            zset_limits: crate::commands::zsets::zset_limits(&cfg),
            psync,
            tls: cfg.tls.replication.then(|| cfg.tls.clone()),
        },
    );
    if !spawned {
        st.thread_running = false;
        st.link = Link::Connect;
        st.retry_at_ms = now_ms + LINK_RETRY_MS;
    }
}

/// Shard 0's replication duties on its tick: start the link, take a finished handshake or
/// full sync, send ACKs, and drop a silent primary after `repl-timeout`.
pub fn on_tick(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    if data.id != 0 {
        return;
    }
    let shared = std::sync::Arc::clone(&data.shared);
    primary::refresh_good(&shared, data.cfg.repl.min_replicas_max_lag_s, data.now_ms);
    start_full_syncs(data);
    let mut st = shared.repl.lock();
    if st.primary.is_none() && data.repl.master.is_none() && st.ready.is_none() {
        return;
    }
    if let Some(ready) = st.ready.take() {
        if ready.generation != st.generation {
            drop(ready);
        } else if ready.full.is_some() {
            st.loaded = Some(ready);
            data.snap.requests.push_back(crate::snapshot::Request {
                op: crate::snapshot::Op::Replication(BarrierOp::Load),
                reply: None,
            });
        } else {
            shared.notice("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
            take_stream(data, io, &mut st, ready, false);
        }
    }
    ensure_link(&shared, &mut st, data.now_ms);
    drop(st);
    let Some((conn, _)) = data.repl.master else {
        return;
    };
    let timeout_ms = i64::from(data.cfg.repl.timeout_s) * 1000;
    let last_io = shared.repl.last_io_ms.load(Ordering::Relaxed);
    let Some(c) = io.conn(conn) else {
        return;
    };
    if data.now_ms - last_io > timeout_ms {
        shared.warning("MASTER timeout: no data nor PING received...");
        c.close_now();
        return;
    }
    if data.now_ms - data.repl.last_ack_ms >= ACK_INTERVAL_MS {
        data.repl.last_ack_ms = data.now_ms;
        write_ack(&mut c.output, shared.repl.offset.load(Ordering::Relaxed));
    }
}

/// Shard 0's tick on a primary: starts the save a waiting replica needs (a background
/// save to a file, as Redis's disk-based sync, or a diskless cut once its delay passed),
/// and cancels, at a barrier, a diskless cut whose replicas all went away.
fn start_full_syncs(data: &mut ShardData) {
    use crate::snapshot::{Op, Request};
    let shared = std::sync::Arc::clone(&data.shared);
    let running = shared
        .persist
        .lock()
        .expect("persist lock")
        .running
        .as_ref()
        .map(|r| r.id);
    if let Some(orphan) = primary::take_orphaned(&shared)
        && running == Some(orphan)
    {
        shared.notice("Diskless rdb transfer: every replica is gone, cancelling the cut");
        data.snap.requests.push_back(Request {
            op: Op::BgSaveCancel,
            reply: None,
        });
        return;
    }
    let queued = data
        .snap
        .requests
        .iter()
        .any(|r| matches!(r.op, Op::BgSave | Op::ReplSync));
    if running.is_some() || queued {
        return;
    }
    let cfg = &data.cfg.repl;
    let op = if primary::wants_save(&shared, cfg.diskless_sync) {
        Op::BgSave
    } else if cfg.diskless_sync
        && primary::diskless_due(
            &shared,
            cfg.diskless_sync_delay_s,
            cfg.diskless_sync_max_replicas,
            data.now_ms,
        )
    {
        Op::ReplSync
    } else {
        return;
    };
    data.snap.requests.push_back(Request { op, reply: None });
}

/// `REPLCONF ACK <offset>` as the primary reads it.
fn write_ack(out: &mut Vec<u8>, offset: i64) {
    let n = offset.to_string();
    out.extend_from_slice(b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n");
    out.extend_from_slice(format!("${}\r\n{n}\r\n", n.len()).as_bytes());
}

/// Makes the primary's stream a connection of this shard (shard 0): it becomes the master
/// client when the reactor takes it (`adopted`).
fn take_stream(
    data: &mut ShardData,
    io: &mut Io<Msg, ()>,
    st: &mut State,
    mut ready: Ready,
    full: bool,
) {
    debug_assert_eq!(data.id, 0, "the master client lives on shard 0");
    if full || ready.replid != st.replid {
        // Sub-replicas follow a history this node changed: they reconnect (a new
        // replication id keeps the backlog, so they continue with the old one as PSYNC2).
        primary::restart_relay(&data.shared, ready.offset, !full);
    }
    if full {
        // A full sync starts a new history: the primary's (its stream selects first).
        data.repl.master_db = 0;
        st.replid.clone_from(&ready.replid);
        NO_REPLID.clone_into(&mut st.replid2);
        st.second_offset = -1;
    } else if ready.replid != st.replid {
        {
            // +CONTINUE with a new id: the old one stays valid up to here (PSYNC2).
            st.replid2 = std::mem::replace(&mut st.replid, ready.replid.clone());
            st.second_offset = ready.offset + 1;
        }
    }
    let repl = &data.shared.repl;
    repl.offset.store(ready.offset, Ordering::Relaxed);
    repl.read_offset.store(
        ready.offset + ready.leftover.len() as i64,
        Ordering::Relaxed,
    );
    repl.last_io_ms.store(data.now_ms, Ordering::Relaxed);
    if full {
        // As Redis: the first ACK at once, which puts this replica online on a primary
        // that waits for it after a diskless transfer.
        let mut ack = Vec::new();
        write_ack(&mut ack, ready.offset);
        let _ = std::io::Write::write_all(&mut ready.stream, &ack)
            .and_then(|()| std::io::Write::flush(&mut ready.stream));
    }
    let (socket, transport, plain) = ready.stream.into_parts();
    let mut leftover = ready.leftover;
    leftover.extend_from_slice(&plain);
    repl.read_offset
        .fetch_add(plain.len() as i64, Ordering::Relaxed);
    let _ = socket.set_nonblocking(true);
    let _ = socket.set_read_timeout(None);
    let fd = socket.into_raw_fd();
    data.repl.adopting = Some((fd, st.generation));
    data.repl.last_ack_ms = 0;
    st.link = Link::Connected;
    st.have_history = true;
    st.transfer = Transfer::default();
    repl.link_up.store(true, Ordering::Relaxed);
    io.adopt(fd, leftover, transport);
}

/// Whether the connection the reactor is taking is the primary's stream: then its client
/// is the master client (see [`make_master_client`]).
pub fn adopting(data: &ShardData, fd: RawFd) -> bool {
    data.repl.adopting.is_some_and(|(f, _)| f == fd)
}

/// Turns a new client into the master client: replies suppressed, no authentication.
pub fn make_master_client(data: &mut ShardData, client: &mut crate::client::Client) {
    let Some((_, generation)) = data.repl.adopting.take() else {
        return;
    };
    client.master = true;
    client.db = data.repl.master_db;
    client.authenticated = true;
    client.reply_mode = crate::client::ReplyMode::Off;
    data.repl.master = Some((client.conn, generation));
    data.repl.in_multi = (0, None);
}

/// What the master client does with its input now ([`master_input`]).
pub enum MasterInput {
    /// Wait: this chained replica is about to park at a barrier. The sub-replicas' cut is
    /// the offset when every shard parked, so no stream byte may be dispatched between
    /// the barrier's mail and the parking; the input runs again with the writes the
    /// closed write gate held back.
    Hold,
    /// Run it, with a copy of it to relay when sub-replicas are served.
    Run(Option<Vec<u8>>),
}

/// Before a batch of the master client's input (`input`) runs.
pub fn master_input(data: &mut ShardData, input: &[u8]) -> MasterInput {
    if !primary::relaying(&data.shared) {
        return MasterInput::Run(None);
    }
    if data.snap.will_park()
        && let Some((conn, _)) = data.repl.master
    {
        data.snap.gated.push(conn);
        return MasterInput::Hold;
    }
    MasterInput::Run(Some(input.to_vec()))
}

/// After a batch of the master client's input ran: `consumed` bytes of the stream were
/// applied (and go on to sub-replicas, from `relayed`, the input before the batch);
/// answers a GETACK. A batch that ends inside a MULTI block (`multi`) moves nothing: as
/// Redis 7.0's master client, the offset passes a transaction only once its EXEC ran, so
/// a resync or a sub-replica's cut never starts between its MULTI and its EXEC.
pub fn applied(
    data: &mut ShardData,
    relayed: Option<Vec<u8>>,
    consumed: usize,
    unread: usize,
    multi: bool,
    out: &mut Vec<u8>,
) {
    let repl = &data.shared.repl;
    let (held, held_copy) = std::mem::take(&mut data.repl.in_multi);
    let copy = match (held, held_copy, relayed) {
        (0, _, r) => r.map(|mut r| {
            r.truncate(consumed);
            r
        }),
        (_, Some(mut h), Some(r)) => {
            h.extend_from_slice(&r[..consumed]);
            Some(h)
        }
        _ => None,
    };
    let consumed = held + consumed;
    let mut offset = repl.offset.load(Ordering::Relaxed);
    if multi {
        data.repl.in_multi = (consumed, copy);
    } else if consumed > 0 {
        offset = repl.offset.fetch_add(consumed as i64, Ordering::Relaxed) + consumed as i64;
        primary::relay(&data.shared, copy.as_deref(), offset);
    }
    repl.read_offset.store(
        offset + (unread + data.repl.in_multi.0) as i64,
        Ordering::Relaxed,
    );
    repl.last_io_ms.store(data.now_ms, Ordering::Relaxed);
    if std::mem::take(&mut data.repl.ack_due) {
        data.repl.last_ack_ms = data.now_ms;
        write_ack(out, offset);
    }
}

/// A connection closed: if it was the master client, the link is down and shard 0's
/// tick starts a new one (a partial resync from our offset).
pub fn on_close(data: &mut ShardData, id: ConnId) {
    if wait::any(data) {
        wait::forget(data, id);
    }
    let Some((conn, generation)) = data.repl.master else {
        return;
    };
    if conn != id {
        return;
    }
    data.repl.master = None;
    // A MULTI block cut short is sent again from the offset before it.
    data.repl.in_multi = (0, None);
    let repl = &data.shared.repl;
    let mut st = repl.lock();
    if st.generation == generation {
        repl.link_up.store(false, Ordering::Relaxed);
        st.link = Link::Connect;
        st.down_since_ms = data.now_ms;
        st.retry_at_ms = data.now_ms;
        drop(st);
        data.shared.warning("Connection with master lost.");
        data.shared.notice("Caching the disconnected master state.");
    }
}

/// Every shard, after it leaves a barrier: shard 0 closes a master client whose
/// generation a role change at that barrier ended (before it runs anything more).
pub fn after_barrier(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    let Some((conn, generation)) = data.repl.master else {
        return;
    };
    if data.shared.repl.lock().generation != generation {
        data.repl.master = None;
        if let Some(c) = io.conn(conn) {
            c.close_now();
        }
    }
}

/// The coordinator's work at a replication barrier (every shard parked, every in-flight
/// snapshot already cancelled, every keyspace lent): returns the keyspaces to hand back,
/// the reply, and whether the shards log their writes from this barrier on (a promoted
/// middle replica's stream goes on in its backlog).
pub fn at_barrier(
    data: &mut ShardData,
    io: &mut Io<Msg, ()>,
    op: BarrierOp,
    lent: Vec<Keyspace>,
) -> (Vec<Keyspace>, Vec<u8>, bool) {
    let shared = std::sync::Arc::clone(&data.shared);
    let mut st = shared.repl.lock();
    // Made once `st` is released: the sinks lock comes before it (`primary`'s lock order).
    let mut sinks = None;
    match op {
        BarrierOp::ReplicaOf => {
            match st.pending_primary.take() {
                Some(RoleChange::Primary) if st.primary.is_some() => {
                    // Sub-replicas reconnect and continue from the relayed backlog, which
                    // goes on with this node's own stream from this barrier on.
                    sinks = primary::promote(&shared);
                    st.primary = None;
                    st.generation += 1;
                    shift_replid(&mut st, shared.repl.offset.load(Ordering::Relaxed));
                    shared.repl.is_replica.store(false, Ordering::Relaxed);
                    shared.log.set_replica(false);
                    shared.repl.link_up.store(false, Ordering::Relaxed);
                    st.link = Link::Connect;
                    st.loaded = None;
                    st.ready = None;
                    shared.notice("MASTER MODE enabled (user request)");
                }
                Some(RoleChange::ReplicaOf(p)) => {
                    let was_primary = st.primary.is_none();
                    if was_primary {
                        // Its replicas are dropped (they resync with it later); its
                        // offset is the history it offers the new primary.
                        let (end, detach) = primary::stop(&shared);
                        if let Some(end) = end {
                            shared.repl.offset.store(end, Ordering::Relaxed);
                        }
                        sinks = detach;
                    }
                    shared.notice(&format!(
                        "REPLICAOF {}:{} enabled (user request)",
                        p.host, p.port
                    ));
                    st.primary = Some(p);
                    st.generation += 1;
                    // As Redis's replicationCacheMasterUsingMyself: a primary turned
                    // replica offers its own history to the new primary.
                    st.have_history |= was_primary;
                    st.link = Link::Connect;
                    st.retry_at_ms = 0;
                    st.loaded = None;
                    st.ready = None;
                    st.down_since_ms = 0;
                    shared.repl.is_replica.store(true, Ordering::Relaxed);
                    shared.log.set_replica(true);
                    shared.repl.link_up.store(false, Ordering::Relaxed);
                    // A link thread of the old generation winds down on its own.
                    st.thread_running = false;
                    ensure_link(&shared, &mut st, data.now_ms);
                }
                Some(RoleChange::Primary) | None => {}
            }
            // Redis's `setOOMScoreAdj(-1)` on a role change: the new role's class.
            let class = if st.primary.is_some() {
                crate::config::kept::OOM_REPLICA
            } else {
                crate::config::kept::OOM_PRIMARY
            };
            drop(st);
            // A promotion's sink attaches here: the barrier's participants start logging
            // at it (`snapshot::Session::logs_from_here`).
            let logs_from_here = matches!(sinks, Some(primary::SinkChange::Attach));
            if let Some(change) = sinks {
                primary::apply(&shared, change);
            }
            if let Err(e) = crate::config::kept::apply_oom_score_adj(&shared.config(), class) {
                shared.warning(&e);
            }
            (lent, b"+OK\r\n".to_vec(), logs_from_here)
        }
        BarrierOp::Load => {
            let Some(mut ready) = st.loaded.take() else {
                return (lent, Vec::new(), false);
            };
            let full = ready.full.take().expect("a full sync carries its dataset");
            if ready.generation != st.generation || lent.len() != full.keyspaces.len() {
                let _ = std::fs::remove_file(&full.temp_path);
                return (lent, Vec::new(), false);
            }
            shared.notice("MASTER <-> REPLICA sync: Flushing old data");
            let mut old = lent;
            crate::snapshot::free_later(
                old.iter_mut()
                    .flat_map(Keyspace::flush_all_detached)
                    .collect(),
            );
            shared.notice("MASTER <-> REPLICA sync: Loading DB in memory");
            if let Err(e) = crate::scripting::install_loaded(&shared, &full.functions) {
                shared.warning(&format!("MASTER <-> REPLICA sync: functions: {e}"));
            }
            for (i, ks) in full.keyspaces.iter().enumerate() {
                shared.changes[i].store(ks.changes(), Ordering::Relaxed);
                shared.saved_changes[i].store(ks.changes(), Ordering::Relaxed);
            }
            if full.install_as_dump {
                // As Redis with disk loading: the received file becomes the dump.
                let to = data.cfg.rdb_path();
                if let Err(e) = std::fs::rename(&full.temp_path, &to) {
                    shared.warning(&format!(
                        "Failed trying to rename the temp DB into {} in MASTER <-> REPLICA synchronization: {e}",
                        to.display()
                    ));
                    let _ = std::fs::remove_file(&full.temp_path);
                }
            } else {
                let _ = std::fs::remove_file(&full.temp_path);
            }
            {
                let mut p = shared.persist.lock().expect("persist lock");
                p.last_load_keys_loaded = full.keys_loaded;
            }
            take_stream(data, io, &mut st, ready, true);
            shared.notice("MASTER <-> REPLICA sync: Finished with success");
            if crate::aof::enabled(&shared) {
                // As Redis's restartAOFAfterSYNC: the append-only file starts again from
                // the new dataset (the stream logged this barrier as a FLUSHALL).
                data.snap.requests.push_back(crate::snapshot::Request {
                    op: crate::snapshot::Op::AofRewrite,
                    reply: None,
                });
            }
            (full.keyspaces, Vec::new(), false)
        }
    }
}

/// Redis's `shiftReplicationId`: a new id; the old one stays valid up to our offset.
fn shift_replid(st: &mut State, offset: i64) {
    st.replid2 = std::mem::replace(&mut st.replid, crate::server::random_hex40());
    st.second_offset = offset + 1;
}

/// INFO's replication section, with Redis 7.0's fields.
pub fn info_lines(shared: &ServerShared, cfg: &crate::config::Config, now_ms: i64) -> Vec<String> {
    let repl = &shared.repl;
    let st = repl.lock();
    let offset = repl.offset.load(Ordering::Relaxed);
    let mut lines = Vec::new();
    if let Some(p) = &st.primary {
        let up = st.link == Link::Connected;
        lines.push("role:slave".to_owned());
        lines.push(format!("master_host:{}", p.host));
        lines.push(format!("master_port:{}", p.port));
        lines.push(format!(
            "master_link_status:{}",
            if up { "up" } else { "down" }
        ));
        let last_io = repl.last_io_ms.load(Ordering::Relaxed);
        lines.push(format!(
            "master_last_io_seconds_ago:{}",
            if up { (now_ms - last_io) / 1000 } else { -1 }
        ));
        let syncing = st.link == Link::Transfer;
        lines.push(format!("master_sync_in_progress:{}", u8::from(syncing)));
        let read = if up {
            repl.read_offset.load(Ordering::Relaxed)
        } else {
            offset
        };
        lines.push(format!("slave_read_repl_offset:{read}"));
        lines.push(format!("slave_repl_offset:{offset}"));
        if syncing {
            let t = st.transfer;
            let size = t.size.max(0);
            lines.push(format!("master_sync_total_bytes:{}", t.size));
            lines.push(format!("master_sync_read_bytes:{}", t.read));
            lines.push(format!("master_sync_left_bytes:{}", size - t.read as i64));
            let perc = if size > 0 {
                t.read as f64 * 100.0 / size as f64
            } else {
                0.0
            };
            lines.push(format!("master_sync_perc:{perc:.2}"));
            lines.push(format!(
                "master_sync_last_io_seconds_ago:{}",
                (now_ms - t.last_io_ms) / 1000
            ));
        }
        if !up {
            lines.push(format!(
                "master_link_down_since_seconds:{}",
                if st.down_since_ms > 0 {
                    (now_ms - st.down_since_ms) / 1000
                } else {
                    -1
                }
            ));
        }
        lines.push(format!("slave_priority:{}", cfg.repl.priority));
        lines.push(format!("slave_read_only:{}", u8::from(cfg.repl.read_only)));
        lines.push(format!(
            "replica_announced:{}",
            u8::from(cfg.repl.announced)
        ));
    } else {
        lines.push("role:master".to_owned());
    }
    let (replicas, primary_offset, backlog) = primary::info(shared, now_ms);
    let offset = if st.primary.is_none() && backlog[0] == 1 {
        primary_offset
    } else {
        offset
    };
    // A replica lists its sub-replicas too (chaining).
    lines.extend(replicas);
    lines.push("master_failover_state:no-failover".to_owned());
    lines.push(format!("master_replid:{}", st.replid));
    lines.push(format!("master_replid2:{}", st.replid2));
    lines.push(format!("master_repl_offset:{offset}"));
    lines.push(format!("second_repl_offset:{}", st.second_offset));
    lines.push(format!("repl_backlog_active:{}", backlog[0]));
    lines.push(format!("repl_backlog_size:{}", cfg.repl.backlog_size_bytes));
    lines.push(format!("repl_backlog_first_byte_offset:{}", backlog[1]));
    lines.push(format!("repl_backlog_histlen:{}", backlog[2]));
    lines
}

/// ROLE's reply: `master offset [replicas]` or `slave host port state offset`.
pub fn write_role(shared: &ServerShared, w: &mut percore_net::resp::ReplyWriter) {
    let repl = &shared.repl;
    let st = repl.lock();
    let offset = repl.offset.load(Ordering::Relaxed);
    if let Some(p) = &st.primary {
        w.array(5);
        w.bulk(b"slave");
        w.bulk(p.host.as_bytes());
        w.int(i64::from(p.port));
        w.bulk(st.link.role_name().as_bytes());
        w.int(if st.link == Link::Connected {
            offset
        } else {
            -1
        });
    } else {
        let (primary_offset, replicas) = primary::role_replicas(shared);
        w.array(3);
        w.bulk(b"master");
        w.int(primary_offset.max(offset));
        w.array(replicas.len());
        for (ip, port, acked) in replicas {
            w.array(3);
            w.bulk(ip.as_bytes());
            w.bulk(port.to_string().as_bytes());
            w.bulk(acked.to_string().as_bytes());
        }
    }
}

/// REPLICAOF's checks before its barrier: `None` queues the role change, else the reply.
pub fn request_replicaof(shared: &ServerShared, target: Option<Primary>) -> Option<&'static str> {
    let mut st = shared.repl.lock();
    match &target {
        None if st.primary.is_none() => {
            return Some("+OK\r\n");
        }
        Some(p) if st.primary.as_ref() == Some(p) => {
            shared.notice("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            return Some("+OK Already connected to specified master\r\n");
        }
        _ => {}
    }
    st.pending_primary = Some(target.map_or(RoleChange::Primary, RoleChange::ReplicaOf));
    None
}
