//! Replication, the primary side: the backlog and the replicas, fed by the stream of
//! write effects (`crate::propagate`, a [`Sink`]).
//!
//! - PSYNC takes the client's socket out of its shard (a duplicate descriptor; the
//!   shard closes its own) and gives it to a feeder thread of its own.
//! - A partial resync (the replica's id is ours, or our previous one up to
//!   `second_repl_offset`, and its offset is in the backlog) answers `+CONTINUE <id>` and
//!   the backlog from that offset, under the lock the sink writes under, so no byte is
//!   missed or doubled.
//! - A full sync waits for a background save (BGSAVE to `dbfilename`, as Redis's
//!   disk-based sync): the save's barrier is a cut of the stream; the replica is told
//!   `+FULLRESYNC <id> <offset at the cut>`, gets the stream from the cut on buffered,
//!   then the file as `$len` and the buffer, and is online.
//! - With `repl-diskless-sync yes` a replica that announced `capa eof` waits instead for
//!   a forkless cut streamed to its socket (`diskless.rs`), started once the first such
//!   replica waited `repl-diskless-sync-delay` seconds or
//!   `repl-diskless-sync-max-replicas` wait: every replica waiting then shares the cut.
//! - Replicas' `REPLCONF ACK` are read on a second thread per replica.
//! - A replica that came through the `tls-port` keeps its TLS session: the shard hands
//!   it over when it closed its side of the connection ([`tls_handover`]), and the
//!   threads then start; the feeder alone writes records, the ACK reader decrypts what
//!   comes back (a [`Wire`] each, sharing the session). Such a replica always gets a
//!   file (the diskless writer sends plain bytes through its own ring).
//!
//! Lock order (a thread holding one takes only those after it): the stream's sinks lock
//! (`propagate::Hub`, held by the merger while it calls [`Feed`]) → the replication state
//! (`replication::Shared::lock`; `Feed::cut` reads the replication id) → `persist` → this
//! primary state ([`Primary`]'s lock) → a TLS link's session. The hub's inbox lock, the
//! configuration and the log are taken with nothing after them. So the sink attaches and
//! detaches with none of these held: PSYNC and a promotion mark it `attaching` under the
//! primary lock and attach it after ([`attach_feed`]); a role change's barrier detaches
//! or attaches once it released the replication lock ([`apply`]).

use crate::config::{Config, OutputBufferLimit};
use crate::propagate::Sink;
use crate::server::ServerShared;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often a feeder with nothing to send looks again (and sends a newline while a
/// full sync's save runs, as Redis keeps the link alive).
const FEEDER_WAIT: Duration = Duration::from_secs(1);
/// Longest `REPLCONF ACK` line block a replica may send at once.
const ACK_READ_BYTES: usize = 4096;
/// Plaintext a TLS replica's feeder seals into records per step: bounds the ciphertext
/// it holds before writing it (the queue itself is bounded by
/// `client-output-buffer-limit replica`).
const TLS_FEED_CHUNK_BYTES: usize = 64 * 1024;
/// `REPLCONF GETACK *`, as Redis sends it when a client starts to WAIT.
const GETACK: &[u8] = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";

/// Where a replica is in its sync (INFO's `state=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for a save to start; then for its cut (`cut` set).
    WaitSave,
    /// The save's cut passed: the stream is buffered until the file is sent.
    Buffering,
    /// The file is being sent.
    SendBulk,
    /// A diskless transfer ended: the stream waits for the replica's first ACK.
    WaitAck,
    Online,
}

struct Replica {
    id: u64,
    ip: String,
    port: u16,
    stage: Stage,
    /// The save whose file this replica gets, and its cut in the stream.
    save: Option<(u64, u64)>,
    /// Bytes for the feeder to send, in order.
    queue: Vec<u8>,
    /// The stream after the cut, held while the file is sent.
    buffer: Vec<u8>,
    /// The finished save's file.
    file: Option<Arc<std::fs::File>>,
    save_failed: bool,
    ack_offset: i64,
    last_ack_ms: i64,
    closed: bool,
    /// Since when (Unix ms) its unsent bytes are over the soft limit of
    /// `client-output-buffer-limit replica`.
    soft_since_ms: Option<i64>,
    /// The link's socket, shut down to end a feeder blocked in a write (a replica too slow).
    sock: Option<TcpStream>,
    /// Came with SYNC (the old protocol): no `+FULLRESYNC` line before the RDB.
    pre_psync: bool,
    /// Announced `REPLCONF capa eof`: it can load a diskless (EOF-marker) transfer.
    capa_eof: bool,
    /// Its save is a diskless cut: the snapshot writer owns its socket until the
    /// transfer ends (the feeder sends nothing meanwhile).
    diskless: bool,
    /// When it asked for the full sync (Unix ms): `repl-diskless-sync-delay` counts from
    /// there.
    since_ms: i64,
    /// Came through the `tls-port`: its bytes go through its TLS session.
    tls: bool,
    /// A TLS link's socket until the shard hands its session over ([`tls_handover`]):
    /// its threads start then.
    pending: Option<TcpStream>,
    /// A TLS link's session, once handed over (the diskless writer seals with it too).
    session: Option<Session>,
}

/// A TLS replica link's session, shared by its feeder, its ACK reader and a diskless
/// transfer (never two writers of records at once: the feeder sends nothing while the
/// transfer runs).
pub type Session = Arc<Mutex<crate::tls::Session>>;

/// One thread's side of a replica link: the socket, and the TLS session of a link that
/// came through the `tls-port` (shared by the feeder, which alone writes records, so
/// they leave in the order sealed, and the ACK reader).
struct Wire {
    sock: TcpStream,
    tls: Option<Session>,
}

impl Wire {
    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            sock: self.sock.try_clone()?,
            tls: self.tls.clone(),
        })
    }

    /// Sends `bytes` (sealed into records under TLS, [`TLS_FEED_CHUNK_BYTES`] at a time),
    /// and any record the session has waiting (a key update's answer); blocks until the
    /// socket took them.
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use percore_net::transport::Transport as _;
        let Some(tls) = &self.tls else {
            return self.sock.write_all(bytes);
        };
        let mut plain = Vec::with_capacity(bytes.len().min(TLS_FEED_CHUNK_BYTES));
        let mut wire = Vec::new();
        let mut chunks = bytes.chunks(TLS_FEED_CHUNK_BYTES);
        loop {
            let chunk = chunks.next();
            if let Some(c) = chunk {
                plain.extend_from_slice(c);
            }
            tls.lock().expect("tls session").seal(&mut plain, &mut wire);
            if !plain.is_empty() {
                // An established session takes every byte; one that does not is broken.
                return Err(std::io::Error::other("the TLS session took no more"));
            }
            if !wire.is_empty() {
                self.sock.write_all(&wire)?;
                wire.clear();
            }
            if chunk.is_none() {
                return Ok(());
            }
        }
    }

    /// Whether the session has records to send without new plaintext.
    fn wants_write(&self) -> bool {
        use percore_net::transport::Transport as _;
        self.tls
            .as_ref()
            .is_some_and(|t| t.lock().expect("tls session").wants_write())
    }

    /// Reads what the replica sent and appends its plaintext to `out`; 0 at the end of
    /// input. The session's decryption failing ends the link too.
    fn read(&mut self, chunk: &mut [u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
        use percore_net::transport::Transport as _;
        let n = self.sock.read(chunk)?;
        let Some(tls) = &self.tls else {
            out.extend_from_slice(&chunk[..n]);
            return Ok(n);
        };
        if n == 0 {
            return Ok(0);
        }
        let mut plain = percore_net::reactor::InBuf::default();
        tls.lock()
            .expect("tls session")
            .receive(&chunk[..n], &mut plain)
            .map_err(|e| std::io::Error::other(e.0))?;
        out.extend_from_slice(plain.data());
        Ok(n)
    }
}

/// The cut of a save given to replicas before its barrier set it (a diskless sync's).
const CUT_PENDING: u64 = u64::MAX;

struct State {
    /// The stream's last `repl-backlog-size` bytes; `backlog_end` is the offset of its
    /// last byte (`master_repl_offset`).
    backlog: VecDeque<u8>,
    backlog_size: usize,
    backlog_end: i64,
    active: bool,
    replicas: Vec<Replica>,
    next_id: u64,
    sink: Option<crate::propagate::SinkId>,
    /// A PSYNC or a promotion attaches the sink once it released this lock
    /// ([`attach_feed`]); [`stop`] cancels that.
    attaching: bool,
    last_ping_ms: i64,
    /// `backlog_end` after the last bytes of the stream of effects (PINGs and GETACKs the
    /// primary adds itself excluded): what a WAIT issued now waits for.
    data_end: i64,
    /// A WAIT asked for `REPLCONF GETACK *`: sent at the end of the next merge round.
    getack_due: bool,
    /// `client-output-buffer-limit replica` (refreshed on the merger's tick): a replica
    /// whose unsent stream (queue, or the buffer during a full sync) reaches the hard
    /// limit, or stays over the soft one longer than its seconds, is dropped.
    obuf: OutputBufferLimit,
    /// A diskless sync whose last replica went away: shard 0 cancels it at a barrier.
    orphaned: Option<u64>,
    /// This node is a replica serving sub-replicas (chaining): the backlog holds its
    /// primary's stream as the master client applied it ([`relay`]), not our effects.
    relay: bool,
}

/// The primary side's state in `ServerShared::repl`.
pub struct Primary {
    state: Mutex<State>,
    wake: Condvar,
    /// Replicas online whose last ACK is at most `min-replicas-max-lag` seconds old
    /// (Redis's `repl_good_slaves_count`, refreshed by shard 0's tick and when a replica
    /// comes or goes).
    pub good: AtomicI64,
}

impl Default for Primary {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                backlog: VecDeque::new(),
                backlog_size: 1024 * 1024,
                backlog_end: 0,
                active: false,
                replicas: Vec::new(),
                next_id: 1,
                sink: None,
                attaching: false,
                last_ping_ms: 0,
                data_end: 0,
                getack_due: false,
                obuf: Config::default().client_output_buffer_limit.replica,
                orphaned: None,
                relay: false,
            }),
            wake: Condvar::new(),
            good: AtomicI64::new(0),
        }
    }
}

impl Primary {
    fn lock(&self) -> super::lock_order::Ranked<'_, State> {
        super::lock_order::Ranked::lock(&self.state, super::lock_order::Rank::Primary, "primary")
    }
}

/// The sink the stream of effects writes into: the backlog and every replica.
struct Feed {
    shared: Arc<ServerShared>,
}

impl Sink for Feed {
    fn write(&mut self, bytes: &[u8]) {
        let p = &self.shared.repl.primary;
        let mut st = p.lock();
        append(&mut st, bytes);
        st.data_end = st.backlog_end;
        drop(st);
        p.wake.notify_all();
    }

    fn flush(&mut self) {
        // Between merge rounds, so never inside a MULTI/EXEC block of the stream.
        let p = &self.shared.repl.primary;
        let mut st = p.lock();
        if st.getack_due {
            st.getack_due = false;
            if !st.replicas.is_empty() {
                append(&mut st, GETACK);
                drop(st);
                p.wake.notify_all();
            }
        }
    }

    fn cut(&mut self, id: u64) -> bool {
        reached_cut(
            &self.shared,
            |r| r.save.is_some_and(|(_, cut)| cut == id),
            true,
        )
    }

    fn tick(&mut self) {
        // PING every repl-ping-replica-period, in the stream (it moves the offsets).
        let cfg = self.shared.config();
        let period_ms = i64::from(cfg.repl.ping_period_s) * 1000;
        let now = percore_net::reactor::unix_ms();
        let p = &self.shared.repl.primary;
        let mut st = p.lock();
        st.obuf = cfg.client_output_buffer_limit.replica;
        if st.replicas.is_empty() || st.last_ping_ms == 0 {
            // The period counts from the first replica (this sink may start with it), not
            // from the last PING before it came: Redis's test helper sets 3600 s and
            // expects no PING at once.
            st.last_ping_ms = now;
        } else if now - st.last_ping_ms >= period_ms {
            st.last_ping_ms = now;
            append(&mut st, b"*1\r\n$4\r\nPING\r\n");
            drop(st);
            p.wake.notify_all();
        }
    }
}

fn append(st: &mut State, bytes: &[u8]) {
    st.backlog_end += bytes.len() as i64;
    st.backlog.extend(bytes);
    let over = st.backlog.len().saturating_sub(st.backlog_size);
    st.backlog.drain(..over);
    let limit = st.obuf;
    let mut now_ms = None;
    for r in &mut st.replicas {
        let target = match r.stage {
            Stage::Online => &mut r.queue,
            Stage::Buffering | Stage::SendBulk | Stage::WaitAck => &mut r.buffer,
            Stage::WaitSave => continue,
        };
        target.extend_from_slice(bytes);
        let used = target.len() as u64;
        let now = *now_ms.get_or_insert_with(percore_net::reactor::unix_ms);
        if over_limit(&limit, used, &mut r.soft_since_ms, now) {
            r.closed = true;
            if let Some(s) = r.sock.take() {
                // Ends a feeder blocked in a write to this replica.
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
    retain_open(st);
}

/// Drops the closed replicas; a diskless sync left without one is `orphaned`.
fn retain_open(st: &mut State) {
    for r in st.replicas.iter().filter(|r| r.closed && r.diskless) {
        let Some((save, _)) = r.save else { continue };
        let others = st
            .replicas
            .iter()
            .any(|o| !o.closed && o.diskless && o.save.is_some_and(|(s, _)| s == save));
        if !others
            && matches!(
                r.stage,
                Stage::WaitSave | Stage::Buffering | Stage::SendBulk
            )
        {
            st.orphaned = Some(save);
        }
    }
    st.replicas.retain(|r| !r.closed);
}

/// Redis's `checkClientOutputBufferLimits` for a replica with `used` unsent bytes: the
/// hard limit at once, the soft one once exceeded for longer than its seconds (0: off).
fn over_limit(
    limit: &OutputBufferLimit,
    used: u64,
    soft_since_ms: &mut Option<i64>,
    now_ms: i64,
) -> bool {
    if limit.hard_limit_bytes > 0 && used >= limit.hard_limit_bytes {
        return true;
    }
    if limit.soft_limit_bytes > 0 && used >= limit.soft_limit_bytes {
        let since = *soft_since_ms.get_or_insert(now_ms);
        let secs = i64::try_from(limit.soft_limit_secs).unwrap_or(i64::MAX);
        return now_ms - since > secs.saturating_mul(1000);
    }
    *soft_since_ms = None;
    false
}

/// What a replica told with REPLCONF before PSYNC.
#[derive(Clone, Copy, Debug, Default)]
pub struct Announced {
    /// `listening-port` (INFO's `slaveN:port`).
    pub listening_port: Option<u16>,
    /// `capa eof`: it loads a diskless transfer.
    pub capa_eof: bool,
    /// The link came through the `tls-port`: its bytes go through its TLS session, handed
    /// over once the shard closed its side ([`tls_handover`]).
    pub tls: bool,
}

/// PSYNC replid offset (and SYNC, `pre_psync`: a full sync without `+FULLRESYNC`) from
/// client `fd`: answers through the
/// socket itself, on a thread of its own (a TLS link's threads start once its session
/// is handed over, [`tls_handover`]). Returns the replica's id, or the error reply.
pub fn psync(
    shared: &Arc<ServerShared>,
    fd: i32,
    peer: &str,
    announced: Announced,
    replid: &[u8],
    offset: i64,
    pre_psync: bool,
) -> Result<u64, &'static str> {
    let tls = announced.tls;
    let chained = shared.repl.is_replica.load(Ordering::Relaxed);
    if chained && !shared.repl.link_up.load(Ordering::Relaxed) {
        return Err("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    // A second descriptor of the client's socket: its shard closes its own.
    let dup = percore_net::sys::dup(fd).map_err(|_| "ERR can't duplicate the socket")?;
    let stream = TcpStream::from(dup);
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let p = &shared.repl.primary;
    let (own, own2, second) = {
        let r = shared.repl.lock();
        (r.replid.clone(), r.replid2.clone(), r.second_offset)
    };
    let cfg = shared.config();
    let mut st = p.lock();
    st.backlog_size = usize::try_from(cfg.repl.backlog_size_bytes).unwrap_or(usize::MAX);
    let mut attach = false;
    if chained && !st.relay {
        // Chaining: the backlog is our primary's stream, relayed byte for byte as the
        // master client applies it (`relay`), from our offset on.
        st.relay = true;
        st.active = true;
        st.backlog.clear();
        st.backlog_end = shared.repl.offset.load(Ordering::Relaxed);
    } else if !chained && st.sink.is_none() && !st.attaching {
        // From the next barrier on, every shard logs its writes into the stream: the sink
        // attaches once this lock is released (the lock order, see the module doc); a
        // PSYNC meanwhile finds it `attaching` and adds its replica only.
        attach = true;
        st.attaching = true;
        st.active = true;
        st.backlog.clear();
        // The offsets go on from this node's history (a promoted replica's).
        st.backlog_end = shared.repl.offset.load(Ordering::Relaxed);
    }
    let id = st.next_id;
    st.next_id += 1;
    let ip = peer.rsplit_once(':').map_or(peer, |(ip, _)| ip).to_owned();
    let mut replica = Replica {
        id,
        ip,
        port: announced.listening_port.unwrap_or(0),
        stage: Stage::WaitSave,
        save: None,
        queue: Vec::new(),
        buffer: Vec::new(),
        file: None,
        save_failed: false,
        ack_offset: 0,
        last_ack_ms: percore_net::reactor::unix_ms(),
        closed: false,
        soft_since_ms: None,
        sock: stream.try_clone().ok(),
        pre_psync,
        capa_eof: announced.capa_eof,
        diskless: false,
        since_ms: percore_net::reactor::unix_ms(),
        tls,
        pending: None,
        session: None,
    };
    let first = st.backlog_end - st.backlog.len() as i64 + 1;
    let history =
        !pre_psync && (replid == own.as_bytes() || (replid == own2.as_bytes() && offset <= second));
    if history && offset >= first && offset <= st.backlog_end + 1 && st.backlog_end > 0 {
        replica
            .queue
            .extend_from_slice(format!("+CONTINUE {own}\r\n").as_bytes());
        let skip = usize::try_from(offset - first).unwrap_or(0);
        replica.queue.extend(st.backlog.iter().skip(skip));
        replica.stage = Stage::Online;
        replica.ack_offset = offset - 1;
        shared.notice(&format!(
            "Partial resynchronization request from {peer} accepted. Sending {} bytes of backlog starting from offset {offset}.",
            st.backlog_end + 1 - offset
        ));
        shared.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
    } else {
        if replid != b"?" {
            shared.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
        shared.notice(&format!("Full resync requested by replica {peer}"));
        shared.repl.sync_full.fetch_add(1, Ordering::Relaxed);
    }
    if tls {
        // The session is still the reactor's: the threads start with it.
        replica.pending = Some(stream);
        st.replicas.push(replica);
        drop(st);
        if attach {
            attach_feed(shared);
        }
        refresh_good_now(shared);
        return Ok(id);
    }
    st.replicas.push(replica);
    drop(st);
    if attach {
        attach_feed(shared);
    }
    refresh_good_now(shared);
    start_threads(
        shared,
        id,
        Wire {
            sock: stream,
            tls: None,
        },
    )?;
    Ok(id)
}

/// Attaches the stream's sink for the backlog and the replicas, which a PSYNC or a
/// promotion asked for (`State::attaching`), with no lock held (the sinks lock comes
/// first, see the module doc). A [`stop`] meanwhile cancelled it: the sink goes again.
fn attach_feed(shared: &Arc<ServerShared>) {
    let id = shared.effects.attach(Box::new(Feed {
        shared: Arc::clone(shared),
    }));
    let mut st = shared.repl.primary.lock();
    let wanted = std::mem::take(&mut st.attaching) && st.sink.is_none();
    if wanted {
        st.sink = Some(id);
    }
    drop(st);
    if !wanted {
        drop(shared.effects.detach(id));
    }
}

/// Starts replica `id`'s feeder and ACK reader on `wire`.
fn start_threads(shared: &Arc<ServerShared>, id: u64, wire: Wire) -> Result<(), &'static str> {
    let Ok(reader) = wire.try_clone() else {
        forget(shared, id);
        return Err("ERR can't clone the socket");
    };
    let s1 = Arc::clone(shared);
    let s2 = Arc::clone(shared);
    let feeder = std::thread::Builder::new()
        .name("percore-feed".into())
        .spawn(move || feed(&s1, id, wire));
    let acks = std::thread::Builder::new()
        .name("percore-acks".into())
        .spawn(move || read_acks(&s2, id, reader));
    if feeder.is_err() || acks.is_err() {
        forget(shared, id);
        return Err("ERR can't start the replica's threads");
    }
    Ok(())
}

/// A TLS replica link's connection closed on its shard (no receive in flight any more,
/// so every record the replica sent went through the session): its `session` goes to the
/// replica's threads, which start now. Without a session (it failed) the replica is
/// dropped.
pub fn tls_handover(
    shared: &Arc<ServerShared>,
    id: u64,
    session: Option<Box<dyn percore_net::transport::Transport>>,
) {
    let Some(session) = session
        .and_then(|s| s.into_any().downcast::<crate::tls::Session>().ok())
        .map(|s| Arc::new(Mutex::new(*s)))
    else {
        forget(shared, id);
        return;
    };
    let sock = {
        let mut st = shared.repl.primary.lock();
        st.replicas.iter_mut().find(|r| r.id == id).and_then(|r| {
            r.session = Some(Arc::clone(&session));
            r.pending.take()
        })
    };
    match sock {
        Some(sock) => {
            let wire = Wire {
                sock,
                tls: Some(session),
            };
            // A failure dropped the replica (it reconnects).
            let _ = start_threads(shared, id, wire);
        }
        None => forget(shared, id),
    }
}

fn forget(shared: &ServerShared, id: u64) {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    if let Some(r) = st.replicas.iter_mut().find(|r| r.id == id) {
        r.closed = true;
        if let Some(s) = r.sock.take() {
            // Ends a transfer blocked sending to it (a diskless sync's writer).
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
    retain_open(&mut st);
    drop(st);
    p.wake.notify_all();
    refresh_good_now(shared);
}

/// [`refresh_good`] at once, when a replica comes online or goes, or CONFIG SET changed
/// `min-replicas-*`.
pub fn refresh_good_now(shared: &ServerShared) {
    let lag = shared.config().repl.min_replicas_max_lag_s;
    refresh_good(shared, lag, percore_net::reactor::unix_ms());
}

/// The feeder: sends what the replica is owed, in order, until the link ends.
fn feed(shared: &Arc<ServerShared>, id: u64, mut s: Wire) {
    let p = &shared.repl.primary;
    let ended = loop {
        let mut st = p.lock();
        let Some(r) = st.replicas.iter_mut().find(|r| r.id == id) else {
            break "gone";
        };
        if r.closed {
            break "closed";
        }
        if r.save_failed {
            break "the save failed";
        }
        if r.diskless && r.stage != Stage::Online {
            // The snapshot writer sends the `+FULLRESYNC` line and the transfer; the
            // buffered stream waits for the first ACK.
            drop(st.wait_timeout(&p.wake, FEEDER_WAIT));
            continue;
        }
        if r.capa_eof && r.stage == Stage::WaitSave && r.save.is_none() {
            // Waiting for a diskless cut: the keep-alive newline is sent under the lock
            // (never blocking), so it cannot interleave with a transfer starting.
            let (guard, timeout) = st.wait_timeout(&p.wake, FEEDER_WAIT);
            let mut st = guard;
            if timeout.timed_out()
                && let Some(r) = st.replicas.iter_mut().find(|r| r.id == id)
                && r.stage == Stage::WaitSave
                && r.save.is_none()
                && r.queue.is_empty()
            {
                if s.tls.is_some() {
                    // One small record on a link that sent nothing else: it does not
                    // block, and under the lock no transfer starts meanwhile.
                    if s.send(b"\n").is_err() {
                        break "write error";
                    }
                } else {
                    keepalive(&s.sock);
                }
            }
            drop(st);
            continue;
        }
        let out = std::mem::take(&mut r.queue);
        let file = (r.stage == Stage::Buffering)
            .then(|| r.file.clone())
            .flatten();
        if file.is_some() {
            r.stage = Stage::SendBulk;
        }
        let idle = out.is_empty() && file.is_none();
        let waiting = matches!(r.stage, Stage::WaitSave | Stage::Buffering);
        if idle && s.wants_write() {
            // The ACK reader's session has records to answer with (a key update).
            drop(st);
            if s.send(&[]).is_err() {
                break "write error";
            }
            continue;
        }
        if idle {
            let (guard, timeout) = st.wait_timeout(&p.wake, FEEDER_WAIT);
            drop(guard);
            if timeout.timed_out() && waiting && s.send(b"\n").is_err() {
                break "write error";
            }
            continue;
        }
        drop(st);
        if !out.is_empty() && s.send(&out).is_err() {
            break "write error";
        }
        if let Some(f) = file {
            if send_file(&mut s, &f).is_err() {
                break "write error";
            }
            let mut st = p.lock();
            if let Some(r) = st.replicas.iter_mut().find(|r| r.id == id) {
                r.queue = std::mem::take(&mut r.buffer);
                r.stage = Stage::Online;
                r.file = None;
            }
            drop(st);
            refresh_good_now(shared);
            shared.notice("Synchronization with replica succeeded");
        }
    };
    let _ = s.sock.shutdown(std::net::Shutdown::Both);
    shared.notice(&format!("Connection with replica {id} lost ({ended})."));
    forget(shared, id);
}

/// A newline to a replica waiting for its sync, as Redis keeps the link alive; never
/// blocks (a full socket buffer needs no keep-alive).
fn keepalive(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    percore_net::sys::write_best_effort(s.as_raw_fd(), b"\n");
}

fn send_file(s: &mut Wire, f: &std::fs::File) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    s.send(format!("${len}\r\n").as_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    while at < len {
        let n = f.read_at(&mut buf, at)?;
        if n == 0 {
            return Err(std::io::Error::other("short file"));
        }
        s.send(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Reads `REPLCONF ACK <offset>` from a replica; the end of input ends the replica.
fn read_acks(shared: &ServerShared, id: u64, mut s: Wire) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; ACK_READ_BYTES];
    loop {
        match s.read(&mut chunk, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if s.wants_write() {
            shared.repl.primary.wake.notify_all();
        }
        let mut last = None;
        // `*3 $8 REPLCONF $3 ACK $n <offset>`: the offset is the line after `ACK`'s
        // length line; scan lines.
        let text = String::from_utf8_lossy(&buf).into_owned();
        let lines: Vec<&str> = text.split("\r\n").collect();
        let complete = lines.len() - 1;
        let mut i = 0;
        while i + 2 < complete {
            if lines[i].eq_ignore_ascii_case("ack") {
                last = lines[i + 2].parse::<i64>().ok().or(last);
                i += 3;
            } else {
                i += 1;
            }
        }
        if buf.len() > ACK_READ_BYTES * 4 || last.is_some() {
            buf.clear();
        }
        if let Some(off) = last {
            let p = &shared.repl.primary;
            let mut st = p.lock();
            let mut online = false;
            if let Some(r) = st.replicas.iter_mut().find(|r| r.id == id) {
                r.ack_offset = r.ack_offset.max(off);
                r.last_ack_ms = percore_net::reactor::unix_ms();
                if r.stage == Stage::WaitAck {
                    // Loaded: the stream since the cut follows.
                    r.queue = std::mem::take(&mut r.buffer);
                    r.stage = Stage::Online;
                    online = true;
                }
            }
            drop(st);
            if online {
                p.wake.notify_all();
                refresh_good_now(shared);
                shared.notice("Synchronization with replica succeeded");
            }
        }
    }
    forget(shared, id);
}

/// Whether the replica waits for a diskless cut rather than a save to a file.
fn wants_diskless(r: &Replica, diskless_sync: bool) -> bool {
    diskless_sync && r.capa_eof && !r.pre_psync
}

/// Whether replicas wait for a save (to a file) that has not started: shard 0's tick then
/// asks for one.
pub fn wants_save(shared: &ServerShared, diskless_sync: bool) -> bool {
    shared.repl.primary.lock().replicas.iter().any(|r| {
        r.stage == Stage::WaitSave && r.save.is_none() && !wants_diskless(r, diskless_sync)
    })
}

/// Whether a diskless cut should start now (Redis's `replicationStartPendingFork`): a
/// replica waits for one since `delay_s` seconds, or `max_replicas` (if not 0) wait.
pub fn diskless_due(shared: &ServerShared, delay_s: u32, max_replicas: u32, now_ms: i64) -> bool {
    let st = shared.repl.primary.lock();
    let waiting = st
        .replicas
        .iter()
        .filter(|r| r.stage == Stage::WaitSave && r.save.is_none() && wants_diskless(r, true))
        // A TLS link whose session is not handed over yet cannot be claimed.
        .filter(|r| !(r.tls && r.session.is_none()));
    let (mut count, mut oldest) = (0u32, now_ms);
    for r in waiting {
        count += 1;
        oldest = oldest.min(r.since_ms);
    }
    count > 0
        && (now_ms - oldest >= i64::from(delay_s) * 1000
            || (max_replicas > 0 && count >= max_replicas))
}

/// A diskless cut `save_id` starts: every replica waiting for one gets it. Returns their
/// ids, a duplicate of each socket and a TLS link's session, for the snapshot writer.
pub fn claim_diskless(
    shared: &ServerShared,
    save_id: u64,
) -> Vec<(u64, std::os::fd::OwnedFd, Option<Session>)> {
    let mut st = shared.repl.primary.lock();
    let mut links = Vec::new();
    for r in &mut st.replicas {
        if r.stage != Stage::WaitSave || r.save.is_some() || !wants_diskless(r, true) {
            continue;
        }
        if r.tls && r.session.is_none() {
            // Its session is not handed over yet: the next cut.
            continue;
        }
        let Some(fd) = r.sock.as_ref().and_then(|s| s.try_clone().ok()) else {
            continue;
        };
        r.save = Some((save_id, CUT_PENDING));
        r.diskless = true;
        links.push((r.id, std::os::fd::OwnedFd::from(fd), r.session.clone()));
    }
    if !links.is_empty() {
        shared.notice(&format!(
            "Starting BGSAVE for SYNC with target: replicas sockets ({} replicas)",
            links.len()
        ));
    }
    links
}

/// The `+FULLRESYNC` lines of a diskless cut's replicas (taken from their queues), once
/// the stream of effects reached the cut; none while it has not.
pub fn diskless_heads(shared: &ServerShared, save_id: u64) -> Option<Vec<(u64, Vec<u8>)>> {
    let mut st = shared.repl.primary.lock();
    let mine = |r: &Replica| r.diskless && r.save.is_some_and(|(s, _)| s == save_id);
    if st
        .replicas
        .iter()
        .any(|r| mine(r) && r.stage == Stage::WaitSave)
    {
        return None;
    }
    let mut heads = Vec::new();
    for r in st.replicas.iter_mut().filter(|r| mine(r)) {
        r.stage = Stage::SendBulk;
        heads.push((r.id, std::mem::take(&mut r.queue)));
    }
    Some(heads)
}

/// A replica the diskless writer could not reach any more: dropped (it reconnects).
pub fn drop_replica(shared: &ServerShared, id: u64) {
    forget(shared, id);
}

/// A diskless sync whose replicas all went away, to be cancelled (once).
pub fn take_orphaned(shared: &ServerShared) -> Option<u64> {
    shared.repl.primary.lock().orphaned.take()
}

/// A diskless cut ended: sent whole (`ok`; its replicas wait for their first ACK), or
/// failed or cancelled (its replicas are dropped and reconnect).
pub fn diskless_done(shared: &ServerShared, save_id: u64, ok: bool) {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    for r in &mut st.replicas {
        if !(r.diskless && r.save.is_some_and(|(s, _)| s == save_id)) {
            continue;
        }
        if ok && r.stage == Stage::SendBulk {
            r.stage = Stage::WaitAck;
            shared.notice(&format!(
                "Streamed RDB transfer with replica {}:{} succeeded (socket). Waiting for REPLCONF ACK from replica to enable streaming",
                r.ip, r.port
            ));
        } else if r.stage != Stage::Online && r.stage != Stage::WaitAck {
            r.save_failed = true;
            if let Some(s) = r.sock.take() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
    if st.orphaned == Some(save_id) {
        st.orphaned = None;
    }
    drop(st);
    p.wake.notify_all();
}

/// The running background save's barrier was set up, at stream cut `cut`: replicas
/// waiting for a save to a file get this one (`diskless`: the replicas that claimed this
/// diskless cut get its place in the stream).
pub fn save_started(
    shared: &ServerShared,
    cut: u64,
    logging: bool,
    diskless_sync: bool,
    diskless: bool,
) {
    // A chained replica places the cut itself (`at_cut`).
    if !logging && !relaying(shared) {
        return;
    }
    let Some(save_id) = running_save(shared) else {
        return;
    };
    let mut st = shared.repl.primary.lock();
    for r in &mut st.replicas {
        if diskless {
            if r.save == Some((save_id, CUT_PENDING)) {
                r.save = Some((save_id, cut));
            }
        } else if r.stage == Stage::WaitSave
            && r.save.is_none()
            && !wants_diskless(r, diskless_sync)
        {
            r.save = Some((save_id, cut));
        }
    }
}

/// The id of the background save running now, if any.
fn running_save(shared: &ServerShared) -> Option<u64> {
    let persist = shared.persist.lock().expect("persist lock");
    persist.running.as_ref().map(|r| r.id)
}

/// A background save ended: its replicas get the file, or are dropped.
pub fn save_done(shared: &ServerShared, save_id: u64, file: Option<&std::path::Path>) {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    if !st
        .replicas
        .iter()
        .any(|r| r.save.is_some_and(|(s, _)| s == save_id))
    {
        return;
    }
    let opened = file.and_then(|f| std::fs::File::open(f).ok()).map(Arc::new);
    for r in &mut st.replicas {
        if r.save.is_some_and(|(s, _)| s == save_id) {
            match &opened {
                Some(f) => r.file = Some(Arc::clone(f)),
                None => r.save_failed = true,
            }
        }
    }
    drop(st);
    p.wake.notify_all();
}

/// Longest INFO replication or ROLE waits for the merger to write what the shards
/// published before it ran ([`settle`]); past it the offset shown may miss them.
pub const OFFSET_SETTLE_TIMEOUT: Duration = Duration::from_millis(200);

/// Before INFO replication or ROLE shows the offset: hands this shard's logged effects to
/// the merger and waits (at most [`OFFSET_SETTLE_TIMEOUT`]) until every shard's
/// publications so far are in the stream. Redis's offset moves with each write, so a
/// client reading `master_repl_offset` after a write (Redis's own tests' `wait_for_ofs_sync`,
/// a replica compared against it) expects its write counted; here offsets are assigned by
/// the merger thread after the reply may have left. Entries held behind a transaction
/// still running are not waited for (that transaction may need this shard).
pub fn settle(data: &mut crate::shard::ShardData) {
    if !data.shared.effects.on.load(Ordering::Acquire) {
        return;
    }
    crate::propagate::publish(data);
    let tickets = data.shared.effects.published();
    data.shared
        .effects
        .wait_emitted(&tickets, OFFSET_SETTLE_TIMEOUT);
}

/// INFO's replication lines of a primary: `connected_slaves`, `slaveN`, and the offset
/// and backlog fields.
pub fn info(shared: &ServerShared, now_ms: i64) -> (Vec<String>, i64, [i64; 3]) {
    let st = shared.repl.primary.lock();
    let mut lines = vec![format!("connected_slaves:{}", st.replicas.len())];
    let cfg = shared.config();
    if cfg.repl.min_replicas_to_write > 0 && cfg.repl.min_replicas_max_lag_s > 0 {
        lines.push(format!(
            "min_slaves_good_slaves:{}",
            shared.repl.primary.good.load(Ordering::Relaxed)
        ));
    }
    for (i, r) in st.replicas.iter().enumerate() {
        let state = match r.stage {
            Stage::WaitSave | Stage::Buffering => "wait_bgsave",
            Stage::SendBulk => "send_bulk",
            Stage::WaitAck | Stage::Online => "online",
        };
        lines.push(format!(
            "slave{i}:ip={},port={},state={state},offset={},lag={}",
            r.ip,
            r.port,
            r.ack_offset,
            (now_ms - r.last_ack_ms) / 1000
        ));
    }
    let first = if st.active {
        st.backlog_end - st.backlog.len() as i64 + 1
    } else {
        0
    };
    (
        lines,
        st.backlog_end,
        [i64::from(st.active), first, st.backlog.len() as i64],
    )
}

/// ROLE's replica list of a primary: `[ip, port, offset]` each.
pub fn role_replicas(shared: &ServerShared) -> (i64, Vec<(String, u16, i64)>) {
    let st = shared.repl.primary.lock();
    (
        st.backlog_end,
        st.replicas
            .iter()
            .filter(|r| r.stage == Stage::Online)
            .map(|r| (r.ip.clone(), r.port, r.ack_offset))
            .collect(),
    )
}

/// A change of the stream's sinks that a role change asked for at its barrier, made by
/// [`apply`] once the replication state's lock is released (the sinks lock comes before
/// it, see the module doc).
#[must_use]
pub enum SinkChange {
    /// Attach the sink for the backlog and the replicas (a promotion).
    Attach,
    /// Detach it (the node became a replica).
    Detach(crate::propagate::SinkId),
}

/// Makes `change`; the caller holds none of the locks this module orders.
pub fn apply(shared: &Arc<ServerShared>, change: SinkChange) {
    match change {
        SinkChange::Attach => {
            attach_feed(shared);
            refresh_good_now(shared);
        }
        SinkChange::Detach(id) => drop(shared.effects.detach(id)),
    }
}

/// The node becomes a replica: the stream is no longer fed to the backlog, every replica
/// is dropped. Returns the primary's offset, if it had a backlog, and the sink to detach.
pub fn stop(shared: &ServerShared) -> (Option<i64>, Option<SinkChange>) {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    let sink = st.sink.take();
    // A sink still attaching is detached by its `attach_feed`.
    st.attaching = false;
    for r in &mut st.replicas {
        r.closed = true;
        if let Some(s) = r.sock.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
    st.replicas.clear();
    let end = (st.active && !st.relay).then_some(st.backlog_end);
    st.active = false;
    st.relay = false;
    st.backlog.clear();
    drop(st);
    p.wake.notify_all();
    (end, sink.map(SinkChange::Detach))
}

/// A replica serving sub-replicas is promoted (REPLICAOF NO ONE, at its barrier, every
/// shard parked): the relayed backlog stays and goes on with this node's own stream of
/// effects (a sink attached now; the barrier's participants start logging at it, see
/// `snapshot::Session::logs_from_here`). The sub-replicas are disconnected, as Redis's
/// `replicationUnsetMaster` does to tell them of the new replication id; they come back
/// with a partial resync (the old id is the secondary one up to the promotion's offset).
/// Returns the sink to attach ([`apply`]; none: not relaying).
pub fn promote(shared: &ServerShared) -> Option<SinkChange> {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    if !st.relay {
        return None;
    }
    st.relay = false;
    st.attaching = true;
    for r in &mut st.replicas {
        r.closed = true;
        if let Some(s) = r.sock.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
    st.replicas.clear();
    st.data_end = st.backlog_end;
    drop(st);
    p.wake.notify_all();
    Some(SinkChange::Attach)
}

/// Chaining: the master client applied `bytes` of its primary's stream, which now ends
/// at `end` (the replication offset): they go on to the backlog and the sub-replicas.
/// Bytes already counted (a sub-replica's PSYNC started the backlog at an offset read
/// while this batch was being applied) are skipped. `bytes` is `None` when relaying
/// started during the batch: the backlog cannot be filled, so it starts again.
pub fn relay(shared: &ServerShared, bytes: Option<&[u8]>, end: i64) {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    if !st.relay || end <= st.backlog_end {
        return;
    }
    let Some(bytes) = bytes else {
        drop(st);
        restart_relay(shared, end, false);
        return;
    };
    let new = usize::try_from(end - st.backlog_end)
        .unwrap_or(0)
        .min(bytes.len());
    append(&mut st, &bytes[bytes.len() - new..]);
    st.data_end = st.backlog_end;
    drop(st);
    p.wake.notify_all();
}

/// Whether sub-replicas are served from the relayed stream.
pub fn relaying(shared: &ServerShared) -> bool {
    shared.repl.primary.lock().relay
}

/// Chaining: a save's barrier, run on shard 0 (the master client's) while it is parked
/// there: every shard applied the stream up to the replication offset, which is the
/// place of the cut. Replicas waiting for this save get `+FULLRESYNC` with it and buffer
/// the stream relayed from now on. Only a barrier shard 0 led (`led_here`) has that
/// property: shard 0 holds the stream from its mail on ([`super::master_input`]), while
/// on joining another shard's barrier it may have forwarded commands the parked leader
/// has not run; that save's replicas wait for the next one (shard 0's tick starts it).
pub fn at_cut(shared: &ServerShared, led_here: bool) {
    if !relaying(shared) {
        return;
    }
    let Some(save_id) = running_save(shared) else {
        return;
    };
    reached_cut(
        shared,
        |r| r.save.is_some_and(|(s, _)| s == save_id),
        led_here,
    );
}

/// The stream reached the place of a cut: the replicas waiting for it (`mine`) get
/// `+FULLRESYNC` with the offset there and buffer the stream from now on; unless not
/// `usable`: they then wait for the next save. Returns whether a replica starts reading
/// the stream here.
fn reached_cut(shared: &ServerShared, mine: impl Fn(&Replica) -> bool, usable: bool) -> bool {
    let replid = shared.repl.lock().replid.clone();
    let p = &shared.repl.primary;
    let mut st = p.lock();
    let offset = st.backlog_end;
    let mut started = false;
    for r in &mut st.replicas {
        if r.stage != Stage::WaitSave || !mine(r) {
            continue;
        }
        if !usable {
            r.save = None;
            continue;
        }
        r.stage = Stage::Buffering;
        started = true;
        if !r.pre_psync {
            r.queue
                .extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
        }
    }
    drop(st);
    p.wake.notify_all();
    started
}

/// Chaining: this replica's own history changed (a full sync from its primary, or a new
/// replication id): its sub-replicas are dropped (they reconnect and resync) and the
/// backlog starts again at `offset` (unless `keep_backlog`: the same stream goes on under
/// a new replication id).
pub fn restart_relay(shared: &ServerShared, offset: i64, keep_backlog: bool) {
    let p = &shared.repl.primary;
    let mut st = p.lock();
    if !st.relay {
        return;
    }
    for r in &mut st.replicas {
        r.closed = true;
        if let Some(s) = r.sock.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
    st.replicas.clear();
    if !keep_backlog {
        st.backlog.clear();
        st.backlog_end = offset;
        st.data_end = offset;
    }
    drop(st);
    p.wake.notify_all();
}

/// The offset a WAIT issued now waits for: the end of the stream of effects written so far.
pub fn data_end(shared: &ServerShared) -> i64 {
    shared.repl.primary.lock().data_end
}

/// Replicas online that acknowledged `offset` (Redis's `replicationCountAcksByOffset`).
pub fn acked(shared: &ServerShared, offset: i64) -> i64 {
    let st = shared.repl.primary.lock();
    st.replicas
        .iter()
        .filter(|r| r.stage == Stage::Online && r.ack_offset >= offset)
        .count() as i64
}

/// Asks every replica for an ACK (`REPLCONF GETACK *` in the stream, after the merge round
/// that runs next).
pub fn request_getack(shared: &ServerShared) {
    let mut st = shared.repl.primary.lock();
    if st.replicas.is_empty() || st.getack_due {
        return;
    }
    st.getack_due = true;
    drop(st);
    shared.effects.nudge();
}

/// Counts the good replicas for `min-replicas-to-write` (Redis's `refreshGoodSlavesCount`).
pub fn refresh_good(shared: &ServerShared, max_lag_s: u32, now_ms: i64) {
    let st = shared.repl.primary.lock();
    let good = st
        .replicas
        .iter()
        .filter(|r| {
            r.stage == Stage::Online && (now_ms - r.last_ack_ms) / 1000 <= i64::from(max_lag_s)
        })
        .count() as i64;
    drop(st);
    shared.repl.primary.good.store(good, Ordering::Relaxed);
}
