//! Snapshots: SAVE, BGSAVE by fork or forkless copy-on-write cut, save points, the final
//! save at shutdown, DEBUG RELOAD, and loading at start-up.
//!
//! Every snapshot starts at a **barrier**: the shard that runs the request (the
//! coordinator) mails a [`Session`] to every other shard, and once its own mail has left,
//! every shard parks at the session's barrier after flushing its replies
//! ([`Service::after_flush`](percore_net::reactor::Service::after_flush)). With all shards
//! stopped between commands, the cut is one instant across shards:
//!
//! - **sync** (SAVE, SHUTDOWN's final save, DEBUG RELOAD): shards hand their keyspaces to
//!   the coordinator, which writes the file and hands them back; clients wait, as Redis's.
//! - **fork**: the coordinator forks while the others stay parked; the child writes the
//!   file ([`fork`]); the parent watches the child's pidfd on its ring and installs the
//!   file when the child exits with success.
//! - **forkless** (percore's default): every shard starts a copy-on-write cut of its own
//!   keyspace ([`Keyspace::begin_cut`]) and resumes at once; between loop iterations it
//!   serializes slices of the cut into chunks for a writer thread
//!   ([`ChunkWriter`]); the last shard to finish sends the EOF and a finisher thread
//!   fsyncs and installs the file.

pub mod fork;
pub mod gate;
pub mod load;
pub mod spin_barrier;
pub mod write;

use crate::server::ServerShared;
use crate::shard::{Msg, ShardData};
use percore_engine::keyspace::Keyspace;
use percore_net::reactor::{ConnId, Io};
use percore_persist::file::{
    ChunkWriter, Piece, SnapshotFile, TrySendError, WriteOptions, install, temp_file_name,
};
use percore_persist::rdb::{self, Encoder};
use spin_barrier::SpinBarrier;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use write::{SaveParams, cut_slice};

/// Redis's `CONFIG_BGSAVE_RETRY_DELAY`: after a failed background save, save points wait
/// this long before trying again.
pub const BGSAVE_RETRY_DELAY_S: i64 = 5;
/// Keys a shard serializes per loop iteration of a forkless snapshot, at most.
pub const COW_KEYS_PER_ITERATION: usize = 4096;
/// Time a shard spends serializing per loop iteration of a forkless snapshot, at most:
/// the longest a forkless save delays a shard's clients at a time.
pub const COW_SLICE_TIME: Duration = Duration::from_micros(250);
/// Pause between slices when nothing else wakes the loop, so the writer thread and
/// other processes get the CPU on a small machine.
pub const COW_SLICE_GAP: Duration = Duration::from_micros(50);
/// Chunks a shard keeps when the writer's queue is full, before it pauses its serializer.
pub const COW_PENDING_CHUNKS: usize = 2;
/// How soon a shard retries handing a chunk to a full writer.
pub const COW_WRITER_FULL_RETRY: Duration = Duration::from_millis(1);
/// Tag of the fork child's pidfd watch on the coordinator's ring.
pub const WATCH_TAG_CHILD: u32 = 1;
/// `forkless-max-copy-memory 0`: a forkless save may hold this percentage of
/// `used_memory` at the cut in entries that writes copied aside...
pub const FORKLESS_AUTO_COPY_PERCENT: u64 = 10;
/// ...but never less than this.
pub const FORKLESS_MIN_AUTO_COPY_MEMORY_BYTES: u64 = 4 << 20;
/// A shard's copy limit is never below this many entries (64 pages).
pub const COW_MIN_COPY_LIMIT_ENTRIES: usize = 1024;
/// Bytes per entry assumed when sizing the copy limit, at least (key, value, table slot).
const COW_MIN_ENTRY_BYTES: u64 = 64;
/// Longest a shard over its copy limit blocks its loop in one iteration to serialize the
/// copies, so that barriers and cross-shard mail still get through.
pub const COW_THROTTLE_MAX_BLOCK: Duration = Duration::from_millis(10);
/// How long a throttled shard sleeps while the writer's queue is full.
const COW_THROTTLE_POLL: Duration = Duration::from_micros(100);

/// `default-bgsave-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Fork,
    Forkless,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Fork => "fork",
            Method::Forkless => "forkless",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fork" => Some(Method::Fork),
            "forkless" | "cow" => Some(Method::Forkless),
            _ => None,
        }
    }
}

/// A background save in progress.
#[derive(Clone, Debug)]
pub struct Running {
    pub id: u64,
    pub method: Method,
    pub started: Instant,
    /// The fork child.
    pub pid: Option<i32>,
    /// Keys in the dataset at the cut.
    pub keys_total: u64,
    /// The forkless save's shared state (its cancel flag, writer and finisher).
    pub cow: Option<Arc<CowShared>>,
    /// The fork child's reports so far.
    pub child_progress: ChildProgress,
    /// An AOF rewrite: the base file it installs (relative to `dir`) instead of
    /// `dbfilename`.
    pub aof_target: Option<String>,
    /// A diskless full sync: the cut streams to replicas' sockets, no file
    /// (`crate::replication::diskless`); the RDB save status is left alone.
    pub diskless: bool,
}

/// What a fork child reported so far (see [`fork::Report`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildProgress {
    /// Keys serialized, as of the last report.
    pub keys: u64,
    /// The child's Private_Dirty in the last report.
    pub cow_bytes: u64,
    /// The largest Private_Dirty reported.
    pub cow_peak_bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds when `cow_bytes` was measured; 0 before any report.
    pub cow_measured_ns: u64,
}

impl ChildProgress {
    fn add(&mut self, r: &fork::Report) {
        self.keys = r.keys;
        self.cow_bytes = r.cow_bytes;
        self.cow_peak_bytes = self.cow_peak_bytes.max(r.cow_bytes);
        self.cow_measured_ns = r.cow_measured_ns;
    }
}

/// INFO's `current_*` figures of a background save in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveProgress {
    pub keys_processed: u64,
    pub keys_total: u64,
    /// Fork: the child's Private_Dirty as last reported. Forkless: `used_memory` above
    /// its level at the cut, now.
    pub cow_bytes: u64,
    pub cow_peak_bytes: u64,
    /// Seconds since `cow_bytes` was measured (forkless: always 0).
    pub cow_age_s: u64,
}

impl SaveProgress {
    /// `current_fork_perc`: keys processed as a percentage of the keys at the cut.
    pub fn percent(&self) -> f64 {
        if self.keys_total == 0 {
            0.0
        } else {
            self.keys_processed as f64 / self.keys_total as f64 * 100.0
        }
    }
}

impl Running {
    /// Progress as of now. Forkless: the shards' shared key count and the memory the cut
    /// holds now (which also raises the recorded peak). Fork: the child's last report,
    /// read from its pipe on its shard's ticks.
    pub fn progress(&self) -> SaveProgress {
        if let Some(cow) = &self.cow {
            // Acquire pairs with the shards' Release additions, each made after that
            // shard stored the total: a count read here never exceeds the total read next.
            let keys_processed = cow.keys_done.load(Ordering::Acquire);
            let keys_total = cow.keys_total.load(Ordering::Relaxed);
            let extra = (crate::alloc::used_memory() as u64).saturating_sub(cow.memory_at_start);
            let peak = cow
                .peak_extra
                .fetch_max(extra, Ordering::Relaxed)
                .max(extra);
            return SaveProgress {
                keys_processed,
                keys_total,
                cow_bytes: extra,
                cow_peak_bytes: peak,
                cow_age_s: 0,
            };
        }
        let p = &self.child_progress;
        SaveProgress {
            keys_processed: p.keys,
            keys_total: self.keys_total,
            cow_bytes: p.cow_bytes,
            cow_peak_bytes: p.cow_peak_bytes,
            cow_age_s: if p.cow_measured_ns == 0 {
                0
            } else {
                percore_net::sys::monotonic_ns().saturating_sub(p.cow_measured_ns) / 1_000_000_000
            },
        }
    }
}

/// Persistence state for INFO, LASTSAVE and the save logic (in [`ServerShared`]).
#[derive(Clone, Debug)]
pub struct Status {
    pub running: Option<Running>,
    pub last_bgsave_ok: bool,
    pub last_bgsave_time_s: i64,
    /// SAVE and BGSAVE attempts (`rdb_saves`).
    pub saves: u64,
    /// Unix seconds of the last background save attempt (for the retry delay).
    pub last_bgsave_try_s: i64,
    pub last_method: Option<Method>,
    pub last_bytes: u64,
    pub last_write_bytes_per_s: u64,
    pub last_peak_extra_bytes: u64,
    /// The last forkless save: most entries copied aside at one time (summed over
    /// shards), and the time shards spent throttled by `forkless-max-copy-memory`.
    pub last_forkless_copies_peak: u64,
    pub last_forkless_throttle_us: u64,
    /// The last forkless save: large values frozen rather than copied, and the most
    /// bytes their frozen copies alone held at one time (see `percore_engine::frozen`).
    pub last_forkless_frozen_values: u64,
    pub last_forkless_frozen_peak_bytes: u64,
    pub last_cow_size: u64,
    /// Longest time a shard stood at the barrier of the last snapshot.
    pub last_barrier_us: u64,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
    /// A barrier session is being set up or run (only one at a time).
    barrier_busy: bool,
    /// Shards whose barrier request found another session in the way, in the order they
    /// came: the first claims the barrier next (so a stream of FLUSHDBs or SWAPDBs from
    /// one shard cannot keep another's BGSAVE waiting).
    barrier_queue: VecDeque<usize>,
    next_id: u64,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            running: None,
            last_bgsave_ok: true,
            last_bgsave_time_s: -1,
            saves: 0,
            last_bgsave_try_s: 0,
            last_method: None,
            last_bytes: 0,
            last_write_bytes_per_s: 0,
            last_peak_extra_bytes: 0,
            last_forkless_copies_peak: 0,
            last_forkless_throttle_us: 0,
            last_forkless_frozen_values: 0,
            last_forkless_frozen_peak_bytes: 0,
            last_cow_size: 0,
            last_barrier_us: 0,
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
            barrier_busy: false,
            barrier_queue: VecDeque::new(),
            next_id: 1,
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Save,
    BgSave,
    /// BGREWRITEAOF: a background save installed as the AOF's new base (`crate::aof`).
    AofRewrite,
    /// A diskless full sync: a forkless cut streamed to the replicas waiting for one
    /// (`crate::replication::diskless`).
    ReplSync,
    /// SHUTDOWN's (or SIGTERM's) final save, then exit; `force` exits even if it fails.
    ShutdownSave {
        force: bool,
    },
    /// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save (unless NOSAVE), empty the dataset
    /// (unless NOFLUSH), load the RDB file back; without MERGE a key or library already
    /// there fails the load, as Redis's `rdbLoad` without `RDBFLAGS_ALLOW_DUP`.
    DebugReload {
        save: bool,
        flush: bool,
        merge: bool,
    },
    /// DEBUG LOADAOF: the AOF's pending effects written, the dataset replaced by what the
    /// AOF files on disk hold (`crate::aof::debug_load`).
    DebugLoadAof,
    /// FLUSHALL: with a save running or save points set, cancel, flush, empty save;
    /// otherwise flush every shard at the barrier (see [`intercept`]). `db`: the client's
    /// database, where the propagated FLUSHALL goes (as Redis's `propagate`).
    FlushAll {
        db: usize,
        /// The command as sent, for the stream.
        argv: crate::propagate::WholeArgv,
    },
    /// FLUSHDB of database `db`: with a save running, cancel, then flush; otherwise flush
    /// it on every shard at the barrier.
    FlushDb {
        db: usize,
        /// The command as sent, for the stream.
        argv: crate::propagate::WholeArgv,
    },
    /// SWAPDB of databases `a` and `b` on every shard at the barrier; a save in flight
    /// goes on (its cut keeps each database's number at the cut).
    /// `db`: the client's database, where the propagated SWAPDB goes.
    SwapDb {
        a: usize,
        b: usize,
        db: usize,
        /// The command as sent, for the stream.
        argv: crate::propagate::WholeArgv,
    },
    /// BGSAVE CANCEL with a save running.
    BgSaveCancel,
    /// CLUSTER RESET: cancel, then reset the cluster state (`hard`: new node id too).
    /// With a save running it first counts the keys at a non-cancelling barrier
    /// (`checked` false) and only cancels when there are none: as Valkey, a reset refused
    /// for keys leaves the save alone.
    ClusterReset {
        hard: bool,
        checked: bool,
    },
    /// Replication: a role change (REPLICAOF) or a full sync's new dataset, applied after
    /// every in-flight snapshot is cancelled (see `crate::replication::at_barrier`).
    Replication(crate::replication::BarrierOp),
}

impl Op {
    /// Ops that may cancel a save in flight at the barrier before changing state (the
    /// flushes only when one is running, or FLUSHALL with save points: see `start`).
    fn cancels(self) -> bool {
        matches!(
            self,
            Op::ShutdownSave { .. }
                | Op::FlushAll { .. }
                | Op::FlushDb { .. }
                | Op::BgSaveCancel
                | Op::ClusterReset { .. }
                | Op::Replication(_)
        )
    }
}

/// A snapshot request waiting for its shard's next barrier opportunity.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub op: Op,
    /// The client's reply slot, if a client waits.
    pub reply: Option<(ConnId, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sync,
    /// As `Sync`, after every shard cancelled its part of any save in flight.
    Cancel,
    /// A whole-keyspace command (FLUSHDB, FLUSHALL, SWAPDB) applied by the coordinator to
    /// every lent keyspace; a save in flight goes on.
    Apply,
    Fork,
    Forkless,
}

/// One barrier across all shards.
pub struct Session {
    kind: Kind,
    coordinator: usize,
    arrive: SpinBarrier,
    release: SpinBarrier,
    keyspaces: Mutex<Vec<Option<Keyspace>>>,
    /// Each shard's change counter at the cut (the new saved baseline on success).
    changes_at_cut: Vec<AtomicU64>,
    keys_at_cut: AtomicU64,
    stall_max_ns: AtomicU64,
    cow: Option<Arc<CowShared>>,
    /// FLUSHALL, FLUSHDB or SWAPDB applied at this barrier: each shard touches its
    /// watched keys before it parks.
    whole: Option<crate::atomic::watch::Whole>,
    /// The database of the client that sent `whole`'s command (its propagated SELECT).
    whole_db: usize,
    /// `whole`'s command as sent (how it is propagated).
    whole_argv: crate::propagate::WholeArgv,
    /// The save a cancelling session stops.
    cancelled: Option<Running>,
    /// Temp files of killed fork children, already unlinked and held open: closed (which
    /// frees their blocks) on a thread once the session's work is done, so that freeing
    /// does not slow an fsync that work makes (CLUSTER RESET's nodes.conf: the reset
    /// answered in 27-37 ms with a 64 MiB temp file freed meanwhile, 5-20 ms after; ext4
    /// with `discard` discards freed blocks in the journal commit the fsync waits for).
    unlinked: Mutex<Vec<std::fs::File>>,
    /// The barrier's place in the stream of effects, and whether shards log after it
    /// (`propagate::at_barrier`).
    effects_cut: (u64, bool),
    /// A sink attached at this barrier (a promoted middle replica's backlog goes on with
    /// its own stream): every shard logs from here, whatever `effects_cut` read. Set by
    /// the coordinator before the release, read by each shard after it.
    logs_from_here: AtomicBool,
}

/// How soon a shard whose barrier request found another in the way asks again.
const BARRIER_RETRY: Duration = Duration::from_micros(100);

/// A forkless snapshot, shared by the shards serializing it.
pub struct CowShared {
    id: u64,
    /// A diskless full sync (no file: `temp_name` and `final_name` are empty).
    diskless: bool,
    writer: Mutex<Option<Arc<ChunkWriter>>>,
    parts_left: AtomicUsize,
    cancelled: Arc<AtomicBool>,
    key_delay_us: u64,
    compress: bool,
    checksum: bool,
    dir: std::path::PathBuf,
    temp_name: String,
    final_name: String,
    started: Instant,
    memory_at_start: u64,
    peak_extra: AtomicU64,
    changes_at_cut: Vec<AtomicU64>,
    /// Keys serialized by all shards: one addition per slice.
    keys_done: AtomicU64,
    /// Keys at the cut: stored by every shard (the same value) before it serializes.
    keys_total: AtomicU64,
    /// `forkless-max-copy-memory` for this save, resolved (0 became the automatic limit).
    copy_limit_bytes: u64,
    /// Time shards spent blocked serializing copies over the limit, summed.
    throttled_ns: AtomicU64,
    /// Sum over shards of each one's most entries copied aside at one time.
    copies_peak: AtomicU64,
    /// Large values frozen rather than copied, over all shards.
    frozen_values: AtomicU64,
    /// Most bytes the frozen copies alone held, as seen by the shards' checks.
    frozen_peak_bytes: AtomicU64,
}

impl std::fmt::Debug for CowShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CowShared")
            .field("id", &self.id)
            .field("temp_name", &self.temp_name)
            .finish_non_exhaustive()
    }
}

/// This shard's part of a forkless snapshot.
struct CowPart {
    shared: Arc<CowShared>,
    writer: Arc<ChunkWriter>,
    enc: Encoder,
    chunk: Vec<u8>,
    current_db: Option<usize>,
    /// Chunks, and large values' frozen copies, not yet taken by the writer.
    pending: VecDeque<Piece>,
    /// Frozen copies handed out by the last slice (a buffer kept between slices).
    frozen: Vec<Piece>,
    /// This shard's frozen copies not yet written by the writer. The part lasts until
    /// they are, so that the copy limit keeps applying to the parts they share with live
    /// values (see `percore_engine::frozen`).
    frozen_in_flight: Arc<AtomicUsize>,
    keys: u64,
    cut_done: bool,
    /// This shard finished last: the EOF is in `pending`, then the file gets finished.
    last: bool,
    /// Entries copied aside by writes above which this shard throttles (see
    /// [`throttle_copies`]).
    copy_limit_entries: usize,
}

/// A fork child being watched by its coordinator.
struct Child {
    pid: i32,
    pidfd: RawFd,
    report: fork::ReportPipe,
    /// The reports read so far.
    progress: ChildProgress,
    /// The final report, once read.
    done: Option<fork::Report>,
    id: u64,
    changes_at_cut: Vec<u64>,
    started: Instant,
    dir: std::path::PathBuf,
    final_name: String,
}

/// A shard's snapshot state.
#[derive(Default)]
pub struct ShardSnap {
    pub requests: VecDeque<Request>,
    /// A barrier another shard started.
    join: Option<Arc<Session>>,
    /// A barrier this shard coordinates, with the request it serves.
    lead: Option<Lead>,
    /// Connections whose next request is a multi-shard write held back by the closed
    /// write gate: they are read again once it opens.
    pub gated: Vec<ConnId>,
    cow: Option<CowPart>,
    child: Option<Child>,
}

impl ShardSnap {
    /// A barrier mailed by another shard.
    pub fn join(&mut self, s: Arc<Session>) {
        self.join = Some(s);
    }

    /// Whether this iteration may end at a barrier (the loop then submits its mail first).
    pub fn will_park(&self) -> bool {
        self.join.is_some() || self.lead.as_ref().is_some_and(|l| l.mailed)
    }
}

/// A barrier this shard coordinates.
struct Lead {
    session: Arc<Session>,
    req: Request,
    /// The other shards have been sent the session (once the write gate drained).
    mailed: bool,
}

/// A reply for a client slot, produced by the snapshot machinery.
pub type Reply = (ConnId, u64, Vec<u8>);

fn params_of(data: &ShardData) -> SaveParams {
    SaveParams {
        compress: data.cfg.rdbcompression,
        checksum: data.cfg.rdbchecksum,
        key_delay_us: data.cfg.rdb_key_save_delay_us,
        write: WriteOptions::default(),
        functions: data
            .shared
            .scripts
            .libraries()
            .values()
            .map(|l| l.code.clone())
            .collect(),
    }
}

fn simple(s: &str) -> Vec<u8> {
    format!("+{s}\r\n").into_bytes()
}

fn error(s: &str) -> Vec<u8> {
    format!("-{s}\r\n").into_bytes()
}

/// `rdb_changes_since_last_save`.
pub fn changes_since_save(shared: &ServerShared) -> u64 {
    shared
        .changes
        .iter()
        .zip(&shared.saved_changes)
        .map(|(c, s)| {
            c.load(Ordering::Relaxed)
                .saturating_sub(s.load(Ordering::Relaxed))
        })
        .sum()
}

fn set_saved_baseline(shared: &ServerShared, at_cut: impl Iterator<Item = u64>) {
    for (s, v) in shared.saved_changes.iter().zip(at_cut) {
        s.fetch_max(v, Ordering::Relaxed);
    }
}

/// Commands that must run at a barrier instead of their usual path: DEBUG RELOAD always;
/// BGSAVE CANCEL; and the whole-keyspace commands FLUSHALL, FLUSHDB and SWAPDB whenever
/// there is more than one shard (applied by the coordinator to every keyspace while all
/// shards are parked, so no snapshot cut, which needs a barrier of its own, can fall
/// between two shards' parts), and with one shard when they must cancel a save: FLUSHALL
/// when a save is in flight or save points are set (it cancels the save and writes an
/// empty dump, as Redis's flushAllDataAndResetRDB), FLUSHDB when a save is in flight.
/// Invalid forms are left to the command's own path, which answers the error. `db` is the
/// client's database.
pub fn intercept(
    data: &ShardData,
    cmd: &crate::commands::Command,
    argv: &[&[u8]],
    db: usize,
) -> Option<Op> {
    use crate::commands::{eq_ic, parse_i64};
    let sub_ok =
        argv.len() == 1 || (argv.len() == 2 && (eq_ic(argv[1], "ASYNC") || eq_ic(argv[1], "SYNC")));
    let sharded = data.shards > 1;
    // Built only for the commands that keep it (this runs for every command).
    let sent = || crate::propagate::WholeArgv::new(argv);
    let running = || {
        data.shared
            .persist
            .lock()
            .expect("persist lock")
            .running
            .is_some()
    };
    let db_index = |a: &[u8]| {
        parse_i64(a)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < data.keyspace.databases())
    };
    match cmd.name {
        "debug" if argv.len() >= 2 && eq_ic(argv[1], "RELOAD") => {
            let (mut save, mut flush, mut merge) = (true, true, false);
            for opt in &argv[2..] {
                if eq_ic(opt, "MERGE") {
                    merge = true;
                } else if eq_ic(opt, "NOFLUSH") {
                    flush = false;
                } else if eq_ic(opt, "NOSAVE") {
                    save = false;
                } else {
                    // DEBUG's own handler answers the error.
                    return None;
                }
            }
            Some(Op::DebugReload { save, flush, merge })
        }
        // As Redis, extra arguments are ignored.
        "debug" if argv.len() >= 2 && eq_ic(argv[1], "LOADAOF") => Some(Op::DebugLoadAof),
        "bgsave" if argv.len() == 2 && eq_ic(argv[1], "CANCEL") => Some(Op::BgSaveCancel),
        "flushall" if sub_ok && (sharded || !data.cfg.save.is_empty() || running()) => {
            Some(Op::FlushAll { db, argv: sent() })
        }
        "flushdb" if sub_ok && (sharded || running()) => Some(Op::FlushDb { db, argv: sent() }),
        "swapdb" if sharded && argv.len() == 3 => Some(Op::SwapDb {
            a: db_index(argv[1])?,
            b: db_index(argv[2])?,
            db,
            argv: sent(),
        }),
        _ => None,
    }
}

/// Runs at the end of every loop iteration of every shard (after replies and mail left):
/// joins barriers, starts requested snapshots, and advances this shard's forkless part.
/// Returns replies for waiting clients.
pub fn after_flush(data: &mut ShardData, io: &mut Io<Msg, ()>) -> Vec<Reply> {
    let mut replies = Vec::new();
    data.shared.changes[data.id].store(data.keyspace.changes(), Ordering::Relaxed);
    if let Some(session) = data.snap.join.take() {
        participate(data, io, &session, None, &mut replies);
    }
    if io.shutting_down() {
        abandon_requests(data);
    }
    if let Some(lead) = &mut data.snap.lead {
        if !lead.mailed {
            // The write gate is closed: once the multi-shard writes in flight are all
            // applied, mail the barrier; until then this shard serves as usual.
            if data.shared.write_gate.drained() {
                for s in (0..data.shards).filter(|&s| s != data.id) {
                    io.send(s, Msg::Park(Arc::clone(&lead.session)));
                }
                lead.mailed = true;
                // Park as soon as the mail has left (next iteration).
                io.wake_within(Duration::ZERO);
            } else {
                io.wake_within(gate::GATE_POLL);
            }
        } else if io.outbox_pending() {
            io.wake_within(Duration::ZERO);
        } else {
            let Lead { session, req, .. } = data.snap.lead.take().expect("lead present");
            participate(data, io, &session, Some(req), &mut replies);
        }
    } else if let Some(req) = data.snap.requests.pop_front() {
        start(data, io, req, &mut replies);
    }
    if data.snap.cow.is_some() {
        cow_step(data, io);
    }
    replies
}

/// Once a shutdown is under way no new barrier starts: shards leave their loops when
/// every shard has drained its connections, so a session mailed now could wait for a
/// shard that is gone. A session already mailed still runs (a shard parked at it has not
/// drained, so the others keep looping until they joined). Requests still queued, and a
/// session set up but not mailed, are dropped; their clients' connections are closing.
fn abandon_requests(data: &mut ShardData) {
    data.snap.requests.clear();
    let unmailed = data.snap.lead.as_ref().is_some_and(|l| !l.mailed);
    let mut st = data.shared.persist.lock().expect("persist lock");
    st.barrier_queue.retain(|&s| s != data.id);
    if unmailed {
        data.snap.lead = None;
        data.shared.write_gate.open();
        st.barrier_busy = false;
    }
}

/// Validates a request and mails its barrier, or answers it at once.
fn start(data: &mut ShardData, io: &mut Io<Msg, ()>, req: Request, replies: &mut Vec<Reply>) {
    let mut reply = |bytes: Vec<u8>| {
        if let Some((c, s)) = req.reply {
            replies.push((c, s, bytes));
        }
    };
    let mut cancelled = None;
    // A cancel waits for an install in progress (see `complete`), so that after its reply
    // no cancelled save can land.
    let shared = Arc::clone(&data.shared);
    let _install = req
        .op
        .cancels()
        .then(|| shared.install_lock.lock().expect("install lock"));
    let kind = {
        let mut st = data.shared.persist.lock().expect("persist lock");
        if st.barrier_busy || st.barrier_queue.front().is_some_and(|&s| s != data.id) {
            // Another shard runs a barrier, or asked before this one: try again shortly.
            if !st.barrier_queue.contains(&data.id) {
                st.barrier_queue.push_back(data.id);
            }
            drop(st);
            data.snap.requests.push_front(req);
            io.wake_within(BARRIER_RETRY);
            return;
        }
        if st.barrier_queue.front() == Some(&data.id) {
            st.barrier_queue.pop_front();
        }
        let busy = st.running.is_some();
        // The flushes cancel only a save in flight (FLUSHALL also with save points, for
        // its empty dump); otherwise they, and SWAPDB, are applied at a plain barrier.
        let cancel = match req.op {
            Op::FlushAll { .. } => busy || !data.cfg.save.is_empty(),
            Op::FlushDb { .. } => busy,
            op => op.cancels(),
        };
        let kind = match req.op {
            Op::FlushAll { .. } | Op::FlushDb { .. } | Op::SwapDb { .. } if !cancel => Kind::Apply,
            Op::AofRewrite if busy => {
                // Started by the tick once the save in flight ends (`aof::on_tick`).
                drop(st);
                crate::aof::request_rewrite(&data.shared, true).ok();
                reply(simple("Background append only file rewriting scheduled"));
                return;
            }
            // Started by the tick once the save in flight ends.
            Op::ReplSync if busy => return,
            Op::DebugLoadAof if busy || crate::aof::busy(&data.shared, data.cfg.appendonly) => {
                // Loads once the save in flight (an AOF rewrite, say) has ended.
                drop(st);
                data.snap.requests.push_front(req);
                io.wake_within(BARRIER_RETRY);
                return;
            }
            Op::Save | Op::DebugReload { .. } | Op::BgSave if busy => {
                drop(st);
                reply(error("ERR Background save already in progress"));
                return;
            }
            Op::Save | Op::DebugReload { .. } | Op::DebugLoadAof => Kind::Sync,
            // Count the keys first; `coordinate` queues the cancelling reset if none.
            Op::ClusterReset { checked: false, .. } if busy => Kind::Sync,
            Op::BgSaveCancel if !busy => {
                drop(st);
                reply(error(
                    "ERR Background saving is currently not in progress or scheduled",
                ));
                return;
            }
            op if cancel => {
                // From here on the save in flight can neither install its file nor touch
                // LASTSAVE: it is no longer `running` (checked under this lock), and its
                // child / forkless parts are stopped at the barrier before the reply.
                if let Some(r) = st.running.take() {
                    if matches!(op, Op::ShutdownSave { .. }) {
                        data.shared
                            .warning("There is a child saving an .rdb. Killing it!");
                    }
                    stop_running(&r);
                    if r.diskless {
                        crate::replication::primary::diskless_done(&data.shared, r.id, false);
                    }
                    if r.aof_target.is_some() {
                        crate::aof::rewrite_done(&data.shared, Err("cancelled".into()));
                    } else {
                        st.last_bgsave_time_s = r.started.elapsed().as_secs() as i64;
                    }
                    cancelled = Some(r);
                }
                Kind::Cancel
            }
            Op::FlushAll { .. }
            | Op::FlushDb { .. }
            | Op::SwapDb { .. }
            | Op::BgSaveCancel
            | Op::ClusterReset { .. }
            | Op::Replication(_)
            | Op::ShutdownSave { .. } => unreachable!("cancelling ops are matched above"),
            Op::BgSave | Op::AofRewrite | Op::ReplSync => {
                let aof_target = if req.op == Op::AofRewrite {
                    let Some(t) =
                        crate::aof::rewrite_target(&data.shared, data.cfg.aof_use_rdb_preamble)
                    else {
                        drop(st);
                        reply(error("ERR The AOF is not enabled"));
                        return;
                    };
                    Some(t)
                } else if req.op == Op::BgSave {
                    st.saves += 1;
                    st.last_bgsave_try_s = data.now_ms / 1000;
                    None
                } else {
                    None
                };
                let diskless = req.op == Op::ReplSync;
                // A diskless sync always streams a forkless cut.
                let method = if diskless {
                    Method::Forkless
                } else {
                    data.cfg.default_bgsave_method
                };
                let id = st.next_id;
                st.next_id += 1;
                st.running = Some(Running {
                    id,
                    method,
                    started: Instant::now(),
                    pid: None,
                    keys_total: 0,
                    cow: None,
                    child_progress: ChildProgress::default(),
                    aof_target,
                    diskless,
                });
                match method {
                    Method::Fork => Kind::Fork,
                    Method::Forkless => Kind::Forkless,
                }
            }
        };
        // Claimed under the same lock as the check above: two shards that both found it
        // free would mail two sessions, and shards would park at different barriers.
        st.barrier_busy = true;
        kind
    };
    let shards = data.shards;
    let cow = if kind == Kind::Forkless {
        match open_cow(data) {
            Ok(c) => {
                let mut st = data.shared.persist.lock().expect("persist lock");
                if let Some(r) = st.running.as_mut() {
                    r.cow = Some(Arc::clone(&c));
                }
                Some(c)
            }
            Err(e) => {
                data.shared
                    .warning(&format!("Can't save in background: {e}"));
                let mut st = data.shared.persist.lock().expect("persist lock");
                if let Some(r) = st.running.take()
                    && r.diskless
                {
                    crate::replication::primary::diskless_done(&data.shared, r.id, false);
                } else {
                    st.last_bgsave_ok = false;
                    crate::misconf::note_bgsave(&data.shared, false);
                }
                st.barrier_busy = false;
                drop(st);
                crate::aof::rewrite_done(&data.shared, Err(e.to_string()));
                reply(error("ERR"));
                return;
            }
        }
    } else {
        None
    };
    let session = Arc::new(Session {
        kind,
        coordinator: data.id,
        arrive: SpinBarrier::new(shards),
        release: SpinBarrier::new(shards),
        keyspaces: Mutex::new((0..shards).map(|_| None).collect()),
        changes_at_cut: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        keys_at_cut: AtomicU64::new(0),
        stall_max_ns: AtomicU64::new(0),
        cow,
        whole_db: match req.op {
            Op::FlushAll { db, .. } | Op::FlushDb { db, .. } | Op::SwapDb { db, .. } => db,
            _ => 0,
        },
        whole_argv: match req.op {
            Op::FlushAll { argv, .. } | Op::FlushDb { argv, .. } | Op::SwapDb { argv, .. } => argv,
            _ => crate::propagate::WholeArgv::default(),
        },
        whole: match req.op {
            Op::FlushAll { .. } => Some(crate::atomic::watch::Whole::FlushAll),
            Op::FlushDb { db, .. } => Some(crate::atomic::watch::Whole::FlushDb(db)),
            Op::SwapDb { a, b, .. } => Some(crate::atomic::watch::Whole::Swap(a, b)),
            // A full sync replaces every database: watched keys are touched as by FLUSHALL.
            Op::Replication(crate::replication::BarrierOp::Load) => {
                Some(crate::atomic::watch::Whole::FlushAll)
            }
            _ => None,
        },
        cancelled,
        unlinked: Mutex::new(Vec::new()),
        effects_cut: data.shared.effects.barrier(),
        logs_from_here: AtomicBool::new(false),
    });
    if req.op == Op::AofRewrite {
        crate::aof::rewrite_cut(&data.shared, session.effects_cut.0);
    }
    if matches!(req.op, Op::BgSave | Op::ReplSync) {
        // Replicas waiting for a full sync get this save and its cut of the stream.
        let (cut, logging) = session.effects_cut;
        crate::replication::primary::save_started(
            &data.shared,
            cut,
            logging,
            data.cfg.repl.diskless_sync,
            req.op == Op::ReplSync,
        );
    }
    // No multi-shard write may start from now on; the session is mailed once those in
    // flight are applied (`after_flush`), so the barrier never parks a shard between two
    // parts of one.
    data.shared.write_gate.close();
    data.snap.lead = Some(Lead {
        session,
        req,
        mailed: false,
    });
    io.wake_within(Duration::ZERO);
}

/// Creates the temp file and writer thread of a forkless snapshot and queues the header.
fn open_cow(data: &ShardData) -> std::io::Result<Arc<CowShared>> {
    let params = params_of(data);
    let (id, final_name, diskless) = data
        .shared
        .persist
        .lock()
        .expect("persist lock")
        .running
        .as_ref()
        .map_or((0, None, false), |r| {
            (r.id, r.aof_target.clone(), r.diskless)
        });
    let final_name = final_name.unwrap_or_else(|| data.cfg.dbfilename.clone());
    let memory_at_start = crate::alloc::used_memory() as u64;
    let (writer, temp_name, final_name) = if diskless {
        let links = crate::replication::primary::claim_diskless(&data.shared, id);
        let timeout = Duration::from_secs(u64::from(data.cfg.repl.timeout_s.max(1)));
        let target = crate::replication::diskless::SocketTarget::new(
            Arc::clone(&data.shared),
            id,
            links,
            timeout,
        )?;
        let writer = ChunkWriter::spawn_with(target, fork::leave_shard_pin)?;
        (writer, String::new(), String::new())
    } else {
        // Unique per save (pid and save id), so a cancelled writer winding down in the
        // background can never unlink a later save's file.
        let temp_name = temp_file_name((u64::from(std::process::id()) << 32) | (id & 0xffff_ffff));
        let file = SnapshotFile::create(&data.cfg.dir, &temp_name, &params.write)?;
        let writer = ChunkWriter::spawn_with(file, fork::leave_shard_pin)?;
        (writer, temp_name, final_name)
    };
    let writer = Arc::new(writer);
    let mut header = Vec::with_capacity(256);
    write::write_header(&mut header, data.now_ms, &params.functions, params.compress);
    writer
        .try_send(header)
        .map_err(|_| std::io::Error::other("snapshot writer refused the header"))?;
    Ok(Arc::new(CowShared {
        id,
        diskless,
        writer: Mutex::new(Some(writer)),
        parts_left: AtomicUsize::new(data.shards),
        cancelled: Arc::new(AtomicBool::new(false)),
        key_delay_us: params.key_delay_us,
        compress: params.compress,
        checksum: params.checksum,
        dir: data.cfg.dir.clone(),
        temp_name,
        final_name,
        started: Instant::now(),
        memory_at_start,
        peak_extra: AtomicU64::new(0),
        changes_at_cut: (0..data.shards).map(|_| AtomicU64::new(0)).collect(),
        keys_done: AtomicU64::new(0),
        keys_total: AtomicU64::new(0),
        copy_limit_bytes: match data.cfg.forkless_max_copy_memory_bytes {
            0 => (memory_at_start / 100 * FORKLESS_AUTO_COPY_PERCENT)
                .max(FORKLESS_MIN_AUTO_COPY_MEMORY_BYTES),
            n => n,
        },
        throttled_ns: AtomicU64::new(0),
        copies_peak: AtomicU64::new(0),
        frozen_values: AtomicU64::new(0),
        frozen_peak_bytes: AtomicU64::new(0),
    }))
}

/// Stands at the barrier with every other shard and does this shard's share.
fn participate(
    data: &mut ShardData,
    io: &mut Io<Msg, ()>,
    session: &Arc<Session>,
    req: Option<Request>,
    replies: &mut Vec<Reply>,
) {
    let t0 = Instant::now();
    let id = data.id;
    let changes = data.keyspace.changes();
    session.changes_at_cut[id].store(changes, Ordering::Relaxed);
    session
        .keys_at_cut
        .fetch_add(data.keyspace.total_keys() as u64, Ordering::Relaxed);
    if session.kind == Kind::Cancel {
        cancel_own_parts(data, session);
    }
    if let Some(whole) = session.whole {
        // The coordinator is about to flush or swap every shard's databases: this shard's
        // watched keys are touched now, while it can still see which exist.
        crate::atomic::watch::Registry::touch_for(data, whole);
    }
    let lend = matches!(
        session.kind,
        Kind::Sync | Kind::Cancel | Kind::Apply | Kind::Fork
    );
    if lend {
        let databases = data.keyspace.databases();
        let mine = std::mem::replace(&mut data.keyspace, Keyspace::new(databases, 0));
        session.keyspaces.lock().expect("session lock")[id] = Some(mine);
    }
    session.arrive.wait();
    if data.id == 0 && matches!(session.kind, Kind::Forkless | Kind::Fork) {
        // A chained replica's cut is at the stream offset shard 0 applied so far.
        crate::replication::primary::at_cut(&data.shared, session.coordinator == 0);
    }
    match session.kind {
        Kind::Forkless => {
            let cow = session.cow.as_ref().expect("forkless session has a writer");
            cow.changes_at_cut[id].store(changes, Ordering::Relaxed);
            // Every shard added its count before the barrier opened.
            cow.keys_total.store(
                session.keys_at_cut.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            // The coordinator leaves the barrier first and frees it: a cancel may already
            // have stopped this save (and taken its writer) before this shard got here.
            // Then there is nothing to serialize.
            let writer = cow.writer.lock().expect("writer lock").clone();
            if let Some(writer) = writer {
                data.keyspace.begin_cut();
                // This shard's share of the copy limit, in entries of the dataset's mean
                // size.
                let keys = session.keys_at_cut.load(Ordering::Relaxed).max(1);
                let entry_bytes = (cow.memory_at_start / keys).max(COW_MIN_ENTRY_BYTES);
                let copy_limit_entries =
                    usize::try_from(cow.copy_limit_bytes / data.shards.max(1) as u64 / entry_bytes)
                        .unwrap_or(usize::MAX)
                        .max(COW_MIN_COPY_LIMIT_ENTRIES);
                data.snap.cow = Some(CowPart {
                    shared: Arc::clone(cow),
                    writer,
                    enc: Encoder::new(cow.compress),
                    chunk: Vec::with_capacity(write::SERIALIZE_CHUNK_BYTES + 4096),
                    current_db: None,
                    pending: VecDeque::new(),
                    frozen: Vec::new(),
                    frozen_in_flight: Arc::default(),
                    keys: 0,
                    cut_done: false,
                    last: false,
                    copy_limit_entries,
                });
            }
            if id == session.coordinator {
                let mut st = data.shared.persist.lock().expect("persist lock");
                let mut diskless = false;
                if let Some(r) = st.running.as_mut() {
                    r.keys_total = session.keys_at_cut.load(Ordering::Relaxed);
                    diskless = r.diskless;
                }
                drop(st);
                data.shared.notice(if diskless {
                    "Background RDB transfer started (forkless)"
                } else {
                    "Background saving started (forkless)"
                });
            }
        }
        Kind::Sync | Kind::Cancel | Kind::Apply | Kind::Fork => {
            if id == session.coordinator {
                let lent: Vec<Keyspace> = session
                    .keyspaces
                    .lock()
                    .expect("session lock")
                    .iter_mut()
                    .map(|k| k.take().expect("every shard lent its keyspace"))
                    .collect();
                let lent = coordinate(data, io, session, req, lent, replies);
                let unlinked = std::mem::take(&mut *session.unlinked.lock().expect("unlinked"));
                if !unlinked.is_empty() {
                    // Without a thread the closes, and the freeing, happen here.
                    let _ = std::thread::Builder::new()
                        .name("percore-unlink".into())
                        .spawn(move || drop(unlinked));
                }
                let mut slots = session.keyspaces.lock().expect("session lock");
                for (slot, ks) in slots.iter_mut().zip(lent) {
                    *slot = Some(ks);
                }
            }
            session.release.wait();
            let keyspace = session.keyspaces.lock().expect("session lock")[id]
                .take()
                .expect("keyspace handed back");
            data.adopt_keyspace(keyspace);
            // A role change at this barrier ends the old primary's stream before anything
            // more runs here.
            crate::replication::after_barrier(data, io);
        }
    }
    let (cut, on) = session.effects_cut;
    let on = on || session.logs_from_here.load(Ordering::Acquire);
    let fx = if id == session.coordinator {
        crate::propagate::whole_effects(session.whole, session.whole_db, &session.whole_argv)
    } else {
        crate::propagate::Effects::default()
    };
    crate::propagate::at_barrier(data, cut, on, fx);
    let stall = t0.elapsed().as_nanos() as u64;
    session.stall_max_ns.fetch_max(stall, Ordering::Relaxed);
    crate::latency::snapshot_stall(data, session.kind == Kind::Fork, stall);
    if id == session.coordinator {
        // The others may still be leaving the barrier; this is a lower bound for them.
        let us = session.stall_max_ns.load(Ordering::Relaxed) / 1000;
        let mut st = data.shared.persist.lock().expect("persist lock");
        if session.kind != Kind::Apply {
            // INFO's `rdb_last_barrier_usec` is about snapshots.
            st.last_barrier_us = us;
        }
        data.shared.write_gate.open();
        st.barrier_busy = false;
    }
    if let Some(req) = req
        && session.kind == Kind::Forkless
        && let Some((c, s)) = req.reply
    {
        let text = if req.op == Op::AofRewrite {
            "Background append only file rewriting started"
        } else {
            "Background saving started"
        };
        replies.push((c, s, simple(text)));
    }
}

/// The coordinator's work while every shard is parked with its keyspace lent.
fn coordinate(
    data: &mut ShardData,
    io: &mut Io<Msg, ()>,
    session: &Session,
    req: Option<Request>,
    mut lent: Vec<Keyspace>,
    replies: &mut Vec<Reply>,
) -> Vec<Keyspace> {
    let params = params_of(data);
    let op = req.map_or(Op::BgSave, |r| r.op);
    let mut reply = |bytes: Vec<u8>| {
        if let Some((c, s)) = req.and_then(|r| r.reply) {
            replies.push((c, s, bytes));
        }
    };
    let at_cut: Vec<u64> = session
        .changes_at_cut
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .collect();
    if session.kind == Kind::Cancel
        && let Some(cow) = session.cancelled.as_ref().and_then(|r| r.cow.as_ref())
    {
        // Every shard has dropped its part. The temp file's name goes now; the writer may
        // still be waiting for O_DIRECT writes in flight (up to its queue depth of
        // buffers), so it winds down on a thread of its own, writing into the unlinked
        // file. A finisher that took the writer already finds the save no longer
        // running (checked under the status lock) and installs nothing.
        if !cow.diskless {
            let _ = std::fs::remove_file(cow.dir.join(&cow.temp_name));
        }
        if let Some(w) = cow.writer.lock().expect("writer lock").take() {
            std::thread::spawn(move || wait_unique(w).cancel());
        }
    }
    match session.kind {
        Kind::Fork => {
            let refs: Vec<&Keyspace> = lent.iter().collect();
            let oom = crate::config::kept::child_oom_score_adj(&data.cfg);
            match fork::spawn_child(&refs, &data.cfg.dir, &params, data.now_ms, oom) {
                Ok((pid, report)) => {
                    let pidfd = match fork::pidfd_open(pid) {
                        Ok(fd) => fd,
                        Err(e) => {
                            data.shared.warning(&format!(
                                "pidfd_open failed: {e}; watching the child on ticks"
                            ));
                            -1
                        }
                    };
                    if pidfd >= 0 {
                        io.watch_readable(pidfd, WATCH_TAG_CHILD);
                    }
                    let mut st = data.shared.persist.lock().expect("persist lock");
                    let id = st.running.as_ref().map_or(0, |r| r.id);
                    let final_name = st
                        .running
                        .as_ref()
                        .and_then(|r| r.aof_target.clone())
                        .unwrap_or_else(|| data.cfg.dbfilename.clone());
                    if let Some(r) = st.running.as_mut() {
                        r.pid = Some(pid);
                        r.keys_total = session.keys_at_cut.load(Ordering::Relaxed);
                    }
                    drop(st);
                    data.snap.child = Some(Child {
                        pid,
                        pidfd,
                        report,
                        progress: ChildProgress::default(),
                        done: None,
                        id,
                        changes_at_cut: at_cut,
                        started: Instant::now(),
                        dir: data.cfg.dir.clone(),
                        final_name,
                    });
                    if op == Op::AofRewrite {
                        data.shared.notice(&format!(
                            "Background append only file rewriting started by pid {pid}"
                        ));
                        reply(simple("Background append only file rewriting started"));
                    } else {
                        data.shared
                            .notice(&format!("Background saving started by pid {pid}"));
                        reply(simple("Background saving started"));
                    }
                }
                Err(e) => {
                    data.shared
                        .warning(&format!("Can't save in background: fork: {e}"));
                    let mut st = data.shared.persist.lock().expect("persist lock");
                    st.running = None;
                    st.last_bgsave_ok = false;
                    crate::misconf::note_bgsave(&data.shared, false);
                    drop(st);
                    crate::aof::rewrite_done(&data.shared, Err(e.to_string()));
                    reply(error(&format!("ERR Can't save in background: fork: {e}")));
                }
            }
        }
        Kind::Cancel => {
            match op {
                // Only a running save gets here (`start` answers the error otherwise);
                // percore never schedules a BGSAVE (see BGSAVE SCHEDULE in the README).
                Op::BgSaveCancel => {
                    data.shared.notice("Background saving cancelled");
                    reply(simple("Background saving cancelled"));
                }
                Op::FlushDb { .. } => {
                    apply_whole(op, &mut lent);
                    reply(simple("OK"));
                }
                Op::FlushAll { .. } => {
                    apply_whole(op, &mut lent);
                    // As Redis's flushAllDataAndResetRDB: with save points, an empty dump.
                    if !data.cfg.save.is_empty() {
                        let refs: Vec<&Keyspace> = lent.iter().collect();
                        if sync_save(data, &refs, &params).is_ok() {
                            let now: Vec<u64> = lent.iter().map(Keyspace::changes).collect();
                            set_saved_baseline(&data.shared, now.into_iter());
                        }
                        // Redis counts the sync save in neither rdb_saves nor status.
                        let mut st = data.shared.persist.lock().expect("persist lock");
                        st.saves = st.saves.saturating_sub(1);
                    }
                    reply(simple("OK"));
                }
                Op::ClusterReset { hard, .. } => {
                    if crate::cluster::is_replica(data) {
                        // A replica's data is its primary's: flushed (Valkey's
                        // clusterReset calls emptyData), while every shard is parked and
                        // every save in flight already cancelled.
                        apply_whole(
                            Op::FlushAll {
                                db: 0,
                                argv: crate::propagate::WholeArgv::default(),
                            },
                            &mut lent,
                        );
                    }
                    let keys: usize = lent.iter().map(Keyspace::total_keys).sum();
                    reply(match crate::cluster::reset_at_barrier(data, keys, hard) {
                        Ok(()) => simple("OK"),
                        Err(e) => error(&e),
                    });
                }
                Op::Replication(r) => {
                    let (back, bytes, logs) = crate::replication::at_barrier(data, io, r, lent);
                    lent = back;
                    if logs {
                        session.logs_from_here.store(true, Ordering::Release);
                    }
                    if !bytes.is_empty() {
                        reply(bytes);
                    }
                }
                Op::ShutdownSave { force } => {
                    let refs: Vec<&Keyspace> = lent.iter().collect();
                    match sync_save(data, &refs, &params) {
                        Ok(()) => data.shutdown_requested = true,
                        Err(()) if force => data.shutdown_requested = true,
                        Err(()) => {
                            data.shared
                                .warning("Error trying to save the DB, can't exit.");
                            reply(error("ERR Errors trying to SHUTDOWN. Check logs."));
                        }
                    }
                }
                Op::Save
                | Op::BgSave
                | Op::AofRewrite
                | Op::ReplSync
                | Op::DebugReload { .. }
                | Op::DebugLoadAof
                | Op::SwapDb { .. } => {
                    unreachable!("not a cancelling op")
                }
            }
        }
        Kind::Apply => {
            apply_whole(op, &mut lent);
            reply(simple("OK"));
        }
        Kind::Sync if matches!(op, Op::ClusterReset { .. }) => {
            let Op::ClusterReset { hard, .. } = op else {
                unreachable!("matched above")
            };
            if lent.iter().any(|ks| ks.total_keys() > 0) && !crate::cluster::is_replica(data) {
                reply(error(crate::cluster::RESET_WITH_KEYS));
            } else {
                // No keys now: the reset proper, which cancels the save, at the next
                // barrier (it counts again there, with the save already stopped).
                data.snap.requests.push_front(Request {
                    op: Op::ClusterReset {
                        hard,
                        checked: true,
                    },
                    reply: req.and_then(|r| r.reply),
                });
                io.wake_within(Duration::ZERO);
            }
        }
        Kind::Sync => {
            let refs: Vec<&Keyspace> = lent.iter().collect();
            let result = match op {
                Op::DebugReload { save: false, .. } => Ok(()),
                Op::DebugLoadAof => {
                    match crate::aof::debug_load(&data.shared, &data.cfg, &mut lent) {
                        Ok(()) => {
                            for (i, ks) in lent.iter().enumerate() {
                                data.shared.changes[i].store(ks.changes(), Ordering::Relaxed);
                                data.shared.saved_changes[i].store(ks.changes(), Ordering::Relaxed);
                            }
                            reply(simple("OK"));
                        }
                        Err(e) => {
                            data.shared.warning(&format!("DEBUG LOADAOF: {e}"));
                            reply(error("ERR Error trying to load the AOF files"));
                        }
                    }
                    return lent;
                }
                _ => sync_save(data, &refs, &params),
            };
            match (op, result) {
                (Op::Save, Ok(())) => {
                    set_saved_baseline(&data.shared, at_cut.iter().copied());
                    reply(simple("OK"));
                }
                (Op::Save, Err(())) => reply(error("ERR")),
                (Op::DebugReload { flush, merge, .. }, Ok(())) => {
                    let path = data.cfg.rdb_path();
                    let shared = Arc::clone(&data.shared);
                    let mut functions = Vec::new();
                    match load::load_file(
                        &path,
                        lent.len(),
                        data.keyspace.databases().max(lent[0].databases()),
                        lent[0].has_slot_index(),
                        data.now_ms,
                        crate::server::random_seed(),
                        &crate::commands::zsets::zset_limits(&data.cfg),
                        &mut functions,
                        |l| shared.notice(l),
                    ) {
                        Ok((fresh, stats)) => {
                            let merged = if flush {
                                if let Err(e) =
                                    crate::scripting::install_loaded(&shared, &functions)
                                {
                                    shared.warning(&format!("DEBUG RELOAD: {e}"));
                                }
                                lent = fresh;
                                Ok(())
                            } else {
                                merge_loaded(&mut lent, fresh, merge, data.now_ms).and_then(|()| {
                                    crate::scripting::add_loaded(&shared, &functions, merge)
                                })
                            };
                            for (i, ks) in lent.iter().enumerate() {
                                data.shared.changes[i].store(ks.changes(), Ordering::Relaxed);
                                data.shared.saved_changes[i].store(ks.changes(), Ordering::Relaxed);
                            }
                            match merged {
                                Ok(()) => {
                                    data.shared.notice(&format!(
                                        "DB reloaded by DEBUG RELOAD: {} keys",
                                        stats.keys_loaded
                                    ));
                                    reply(simple("OK"));
                                }
                                Err(e) => {
                                    data.shared.warning(&format!("DEBUG RELOAD: {e}"));
                                    reply(error("ERR Error trying to load the RDB dump"));
                                }
                            }
                        }
                        Err(e) => {
                            data.shared.warning(&e);
                            reply(error("ERR Error trying to load the RDB dump"));
                        }
                    }
                }
                (Op::DebugReload { .. }, Err(())) => {
                    reply(error("ERR Error trying to save the DB"));
                }
                _ => unreachable!("only SAVE and DEBUG RELOAD run as a plain sync save"),
            }
        }
        Kind::Forkless => unreachable!("forkless sessions lend no keyspace"),
    }
    lent
}

/// DEBUG RELOAD NOFLUSH: moves every key of `fresh` (the file's data, per shard) into the
/// data in memory. A key already there is replaced with MERGE, else the load fails at
/// that key (what was moved stays, as Redis's `rdbLoad` stops at a duplicate).
fn merge_loaded(
    lent: &mut [Keyspace],
    mut fresh: Vec<Keyspace>,
    merge: bool,
    now_ms: i64,
) -> Result<(), String> {
    for (into, from) in lent.iter_mut().zip(fresh.iter_mut()) {
        for j in 0..from.databases().min(into.databases()) {
            let keys: Vec<Vec<u8>> = from.db(j).iter().map(|(k, _)| k.to_vec()).collect();
            for key in keys {
                if !merge && into.db_mut(j).contains(&key, now_ms) {
                    return Err(format!(
                        "duplicate key '{}' found in the RDB file",
                        String::from_utf8_lossy(&key)
                    ));
                }
                if let Some(taken) = from.db_mut(j).take(&key, now_ms) {
                    into.db_mut(j).put(taken, now_ms);
                }
            }
        }
    }
    Ok(())
}

/// Applies a whole-keyspace command to every shard's lent keyspace, at a barrier. The
/// shards stand still meanwhile: flushed keys are freed on another thread (SYNC or
/// ASYNC alike; big databases only, see [`free_later`]).
fn apply_whole(op: Op, lent: &mut [Keyspace]) {
    match op {
        Op::FlushDb { db, .. } => free_later(
            lent.iter_mut()
                .filter_map(|ks| ks.db_mut(db).detach_contents())
                .collect(),
        ),
        Op::FlushAll { .. } => free_later(
            lent.iter_mut()
                .flat_map(Keyspace::flush_all_detached)
                .collect(),
        ),
        Op::SwapDb { a, b, .. } => lent.iter_mut().for_each(|ks| ks.swap_dbs(a, b)),
        _ => unreachable!("not a whole-keyspace command: {op:?}"),
    }
}

/// SAVE: writes the lent keyspaces through a temp file, installs it, updates the status.
fn sync_save(data: &ShardData, keyspaces: &[&Keyspace], params: &SaveParams) -> Result<(), ()> {
    let temp = temp_file_name(u64::from(std::process::id()));
    let started = Instant::now();
    // SAVE blocks every client: nobody can watch its progress.
    let result = write::write_keyspaces(
        keyspaces,
        &data.cfg.dir,
        &temp,
        params,
        data.now_ms,
        &mut |_| {},
    )
    .and_then(|stats| {
        install_snapshot(&data.cfg.dir, &temp, &data.cfg.dbfilename)?;
        Ok(stats)
    });
    let mut st = data.shared.persist.lock().expect("persist lock");
    st.saves += 1;
    match result {
        Ok(stats) => {
            st.last_bytes = stats.bytes;
            st.last_write_bytes_per_s = stats.bytes_per_sec() as u64;
            drop(st);
            data.shared
                .lastsave_s
                .store(data.now_ms / 1000, Ordering::Relaxed);
            data.shared.notice(&format!(
                "DB saved on disk ({} bytes in {:.3} s)",
                stats.bytes,
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Err(e) => {
            drop(st);
            let _ = std::fs::remove_file(data.cfg.dir.join(&temp));
            data.shared.warning(&format!("Failed saving the DB: {e}"));
            Err(())
        }
    }
}

/// One slice of this shard's forkless part: serialize, hand chunks to the writer, and
/// when the part is done, report; the last part sends the EOF and finishes the file.
fn cow_step(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    if !hand_over_chunks(data) {
        return;
    }
    let part = data.snap.cow.as_mut().expect("part present");
    if !part.cut_done && part.pending.len() < COW_PENDING_CHUNKS {
        if !serialize_slice(data) {
            return;
        }
        let cow = &data.snap.cow.as_ref().expect("part").shared;
        let extra = (crate::alloc::used_memory() as u64).saturating_sub(cow.memory_at_start);
        cow.peak_extra.fetch_max(extra, Ordering::Relaxed);
    }
    if !throttle_copies(data) {
        return;
    }
    let part = data.snap.cow.as_mut().expect("part present");
    let all_handed = part.cut_done && part.pending.is_empty() && part.chunk.is_empty();
    let in_flight = part.frozen_in_flight.load(Ordering::Acquire);
    if all_handed && in_flight > 0 && part.writer.is_done() {
        // The writer stopped with this shard's frozen copies still queued.
        fail_cow(data, "the snapshot writer stopped");
        return;
    }
    if all_handed && in_flight == 0 {
        if part.last {
            // The EOF has been handed over: finish the file off the loop.
            let part = data.snap.cow.take().expect("part present");
            end_cut(data, &part);
            finish_cow(Arc::clone(&data.shared), part);
            return;
        }
        if part.shared.parts_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut eof = Vec::with_capacity(1);
            rdb::write_eof(&mut eof);
            part.pending.push_back(Piece::Bytes(eof));
            part.last = true;
        } else {
            let part = data.snap.cow.take().expect("part present");
            end_cut(data, &part);
            return;
        }
    }
    let part = data.snap.cow.as_ref().expect("part present");
    if part.pending.is_empty() && !part.cut_done && part.shared.key_delay_us == 0 {
        io.wake_within(COW_SLICE_GAP);
    } else if part.shared.key_delay_us > 0 {
        io.wake_within(Duration::from_micros(part.shared.key_delay_us.max(100)));
    } else {
        io.wake_within(COW_WRITER_FULL_RETRY);
    }
}

/// Ends this shard's cut and adds its copy peak to the save's figure.
fn end_cut(data: &mut ShardData, part: &CowPart) {
    let stats = data.keyspace.end_cut();
    part.shared
        .copies_peak
        .fetch_add(stats.pending_peak, Ordering::Relaxed);
    part.shared
        .frozen_values
        .fetch_add(stats.values_frozen, Ordering::Relaxed);
}

/// Hands the chunks waiting in this shard's forkless part to the writer, as many as its
/// queue takes. False when the part is gone: cancelled, or failed because the writer
/// stopped (I/O error, full disk).
fn hand_over_chunks(data: &mut ShardData) -> bool {
    let Some(part) = data.snap.cow.as_mut() else {
        return false;
    };
    if part.shared.cancelled.load(Ordering::Acquire) {
        abandon_cow(data);
        return false;
    }
    while let Some(chunk) = part.pending.pop_front() {
        match part.writer.try_send_piece(chunk) {
            Ok(()) => {}
            Err(TrySendError::Full(back)) => {
                part.pending.push_front(back);
                break;
            }
            Err(TrySendError::Closed(_)) => {
                fail_cow(data, "the snapshot writer stopped");
                return false;
            }
        }
    }
    true
}

/// This shard's forkless part failed (`why`: the writer stopped, an encoding error): the
/// whole save fails, its part is dropped and the status says so.
fn fail_cow(data: &mut ShardData, why: &str) {
    data.shared.warning(&format!("Forkless save failed: {why}"));
    let Some(part) = data.snap.cow.as_ref() else {
        return;
    };
    part.shared.cancelled.store(true, Ordering::Release);
    let id = part.shared.id;
    abandon_cow(data);
    fail_bgsave(&data.shared, id);
}

/// Serializes one slice of this shard's cut (at most [`COW_SLICE_TIME`],
/// [`COW_KEYS_PER_ITERATION`] keys, and the pace `rdb-key-save-delay` allows) and queues
/// the chunk when full. False when the save failed (the part is dropped then).
fn serialize_slice(data: &mut ShardData) -> bool {
    let part = data.snap.cow.as_mut().expect("part present");
    let mut budget = COW_KEYS_PER_ITERATION;
    if let Some(allowed) =
        (part.shared.started.elapsed().as_micros() as u64).checked_div(part.shared.key_delay_us)
    {
        budget = budget.min(allowed.saturating_sub(part.keys) as usize);
    }
    if budget == 0 {
        return true;
    }
    if part.chunk.is_empty() {
        // Chunks of different shards interleave in the file: each names its db.
        part.current_db = None;
        if let Some(b) = part.writer.recycle() {
            part.chunk = b;
            part.chunk.clear();
        }
    }
    let keys_before = part.keys;
    let sliced = cut_slice(
        &mut data.keyspace,
        &mut part.enc,
        &mut part.chunk,
        &mut part.frozen,
        &part.frozen_in_flight,
        &mut part.current_db,
        budget,
        &mut part.keys,
        percore_net::sys::monotonic_ns() + COW_SLICE_TIME.as_nanos() as u64,
    );
    if part.keys > keys_before {
        // Release: after this shard stored `keys_total` (see `Running::progress`).
        part.shared
            .keys_done
            .fetch_add(part.keys - keys_before, Ordering::Release);
    }
    // Frozen copies go to the writer in any order with the chunks: each piece names its
    // database and holds whole keys.
    part.pending.extend(part.frozen.drain(..));
    match sliced {
        Ok(done) => part.cut_done = done,
        Err(e) => {
            fail_cow(data, &e.to_string());
            return false;
        }
    }
    if (part.cut_done && !part.chunk.is_empty()) || part.chunk.len() >= write::SERIALIZE_CHUNK_BYTES
    {
        let chunk = std::mem::take(&mut part.chunk);
        part.pending.push_back(Piece::Bytes(chunk));
        // Hand it over now rather than at the next iteration.
        if let Some(chunk) = part.pending.pop_front()
            && let Err(e) = part.writer.try_send_piece(chunk)
        {
            // Full (retried next time) or closed (seen at the next try).
            part.pending.push_front(e.into_inner());
        }
    }
    true
}

/// Before a keyed command runs on this shard during a forkless save: throttles when the
/// copies are over the limit (see [`throttle_copies`]), so the memory they hold stays
/// within the limit plus one command's pages.
#[inline]
pub fn throttle_before_command(data: &mut ShardData) {
    if data.snap.cow.is_some() {
        throttle_copies(data);
    }
}

/// How much of the copy limit this shard's forkless part uses, as a fraction: its
/// entries copied aside against its share, plus the bytes the frozen copies of large
/// values alone hold (process-wide, see `percore_engine::frozen`) against the whole
/// limit. Over 1.0 the shard throttles.
fn copy_usage(data: &ShardData) -> f64 {
    let part = data.snap.cow.as_ref().expect("part present");
    let entries = data.keyspace.cut_pending_copies() as f64 / part.copy_limit_entries as f64;
    let frozen_bytes = percore_engine::frozen::copied_bytes();
    let peak = &part.shared.frozen_peak_bytes;
    if frozen_bytes > peak.load(Ordering::Relaxed) {
        peak.fetch_max(frozen_bytes, Ordering::Relaxed);
    }
    entries + frozen_bytes as f64 / part.shared.copy_limit_bytes as f64
}

/// Keeps the memory of a forkless save bounded when writes copy entries aside (or
/// parts of frozen large values) faster than the disk takes the serialized cut: over
/// the limit (see [`copy_usage`]), the shard stops serving and serializes (copies
/// first), or waits for the writer when its queue is full or only the frozen copies are
/// over (the writer releases their parts as it writes them), until half the limit is
/// left or [`COW_THROTTLE_MAX_BLOCK`] has passed (then its loop runs once, for barriers
/// and mail, and the next iteration goes on). False when the part is gone (cancelled or
/// failed).
fn throttle_copies(data: &mut ShardData) -> bool {
    if copy_usage(data) <= 1.0 {
        return true;
    }
    let started = Instant::now();
    loop {
        if !hand_over_chunks(data) {
            return false;
        }
        if copy_usage(data) <= 0.5 || started.elapsed() >= COW_THROTTLE_MAX_BLOCK {
            break;
        }
        let part = data.snap.cow.as_ref().expect("part present");
        if part.pending.len() >= COW_PENDING_CHUNKS
            || part.cut_done
            || data.keyspace.cut_pending_copies() == 0
        {
            // The disk is behind, or only the writer can lower the usage now: wait for
            // it, not for clients.
            std::thread::sleep(COW_THROTTLE_POLL);
            continue;
        }
        let keys_before = part.keys;
        let delay_us = part.shared.key_delay_us;
        if !serialize_slice(data) {
            return false;
        }
        let part = data.snap.cow.as_ref().expect("part present");
        if part.keys == keys_before && !part.cut_done {
            // Paced by `rdb-key-save-delay`: wait for the next key's turn.
            std::thread::sleep(Duration::from_micros(delay_us.clamp(1, 1000)));
        }
    }
    let part = data.snap.cow.as_ref().expect("part present");
    part.shared
        .throttled_ns
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    true
}

/// Databases with at least this many keys in all are freed on a thread of their own (as
/// Redis's `LAZYFREE_THRESHOLD` objects): freeing a big dataset takes long.
pub const LAZYFREE_MIN_KEYS: usize = 64;

/// Keys handed to a lazy-free thread and not yet freed (INFO `lazyfree_pending_objects`).
pub static LAZYFREE_PENDING_OBJECTS: AtomicU64 = AtomicU64::new(0);
/// Keys freed by lazy-free threads since the start (INFO `lazyfreed_objects`).
pub static LAZYFREED_OBJECTS: AtomicU64 = AtomicU64::new(0);

/// Frees detached databases: on a short-lived thread when big, here when small.
pub fn free_later(dbs: Vec<percore_engine::db::Db>) {
    let keys: usize = dbs.iter().map(percore_engine::db::Db::len).sum();
    if keys < LAZYFREE_MIN_KEYS {
        return;
    }
    let keys = keys as u64;
    LAZYFREE_PENDING_OBJECTS.fetch_add(keys, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("percore-lazyfree".into())
        .spawn(move || {
            drop(dbs);
            LAZYFREE_PENDING_OBJECTS.fetch_sub(keys, Ordering::Relaxed);
            LAZYFREED_OBJECTS.fetch_add(keys, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        // The closure (and the databases) were dropped with the error.
        LAZYFREE_PENDING_OBJECTS.fetch_sub(keys, Ordering::Relaxed);
        // No thread (resource limits): the memory is freed when `spawn` drops the closure.
        eprintln!("percore: lazy free thread: {e}");
    }
}

/// Redis's `LAZYFREE_THRESHOLD`: a value whose [`Value::free_effort`] is above this is
/// freed on the lazy-free thread by UNLINK (and DEL under `lazyfree-lazy-user-del yes`).
///
/// [`Value::free_effort`]: percore_engine::value::Value::free_effort
pub const LAZYFREE_THRESHOLD: usize = 64;
/// Values queued for the lazy-free thread at most; past it a value is freed inline.
pub const LAZYFREE_QUEUE_MAX: usize = 1024;

/// The lazy-free thread's queue (started at the first big UNLINK).
static LAZYFREE_QUEUE: std::sync::OnceLock<
    Option<crossbeam::channel::Sender<percore_engine::value::Value>>,
> = std::sync::OnceLock::new();

/// Frees `value` on the lazy-free thread when it is big (Redis's `dbAsyncDelete`), else
/// here; counted in INFO's `lazyfree_pending_objects` / `lazyfreed_objects` as Redis's.
pub fn free_value(value: percore_engine::value::Value) {
    if value.free_effort() <= LAZYFREE_THRESHOLD {
        return;
    }
    let queue = LAZYFREE_QUEUE.get_or_init(|| {
        let (tx, rx) =
            crossbeam::channel::bounded::<percore_engine::value::Value>(LAZYFREE_QUEUE_MAX);
        std::thread::Builder::new()
            .name("percore-lazyfree".into())
            .spawn(move || {
                for v in rx {
                    drop(v);
                    LAZYFREE_PENDING_OBJECTS.fetch_sub(1, Ordering::Relaxed);
                    LAZYFREED_OBJECTS.fetch_add(1, Ordering::Relaxed);
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(tx) = queue else {
        return;
    };
    LAZYFREE_PENDING_OBJECTS.fetch_add(1, Ordering::Relaxed);
    if tx.try_send(value).is_err() {
        // Full (or gone): freed here, as the value drops with the error.
        LAZYFREE_PENDING_OBJECTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// At a cancelling barrier: drops this shard's forkless part and kills and reaps its fork
/// child, removing the child's temp file (its name; the session frees its blocks later).
fn cancel_own_parts(data: &mut ShardData, session: &Session) {
    if let Some(part) = data.snap.cow.take() {
        data.keyspace.end_cut();
        part.shared.cancelled.store(true, Ordering::Release);
    }
    if let Some(child) = data.snap.child.take() {
        fork::kill(child.pid, libc::SIGUSR1);
        // Quick whatever the dataset: the child's teardown helper frees its memory (see
        // fork.rs), and its writes were issued asynchronously (see persist's file.rs).
        let _ = fork::reap_blocking(child.pid);
        let temp = child.dir.join(temp_file_name(child.pid as u64));
        if let Some(file) = unlink_keeping_inode(&temp) {
            session.unlinked.lock().expect("unlinked").push(file);
        }
        if child.pidfd >= 0 {
            fork::close(child.pidfd);
        }
        child.report.close();
        data.shared
            .notice(&format!("Killed running RDB child: {}", child.pid));
    }
}

/// Drops this shard's forkless part (cancelled or failed); the last one cancels the
/// writer, which removes the temp file.
fn abandon_cow(data: &mut ShardData) {
    let Some(part) = data.snap.cow.take() else {
        return;
    };
    data.keyspace.end_cut();
    part.shared.cancelled.store(true, Ordering::Release);
    let shared = Arc::clone(&part.shared);
    drop(part);
    if let Some(w) = shared.writer.lock().expect("writer lock").take() {
        std::thread::spawn(move || wait_unique(w).cancel());
    }
}

fn wait_unique<T>(mut a: Arc<T>) -> T {
    loop {
        match Arc::try_unwrap(a) {
            Ok(t) => return t,
            Err(back) => {
                a = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Stops a running background save: signals the fork child (its coordinator reaps it and
/// removes its temp file) or flags a forkless one (each shard drops its part; the writer
/// removes the temp file).
pub fn stop_running(r: &Running) {
    if let Some(pid) = r.pid {
        fork::kill(pid, libc::SIGUSR1);
    }
    if let Some(c) = &r.cow {
        c.cancelled.store(true, Ordering::Release);
    }
}

fn fail_bgsave(shared: &ServerShared, id: u64) {
    let mut st = shared.persist.lock().expect("persist lock");
    if st.running.as_ref().is_some_and(|r| r.id == id)
        && let Some(r) = st.running.take()
    {
        if r.diskless {
            drop(st);
            crate::replication::primary::diskless_done(shared, id, false);
            return;
        }
        if r.aof_target.is_some() {
            drop(st);
            crate::aof::rewrite_done(shared, Err("the save failed".into()));
            return;
        }
        st.last_bgsave_ok = false;
        crate::misconf::note_bgsave(shared, false);
        st.last_bgsave_time_s = r.started.elapsed().as_secs() as i64;
        st.last_method = Some(r.method);
    }
}

/// Finishes a forkless snapshot on a short-lived thread: CRC trailer, fsync, rename,
/// directory fsync, then the status.
fn finish_cow(shared: Arc<ServerShared>, part: CowPart) {
    let cow = Arc::clone(&part.shared);
    drop(part);
    let Some(writer) = cow.writer.lock().expect("writer lock").take() else {
        return;
    };
    std::thread::Builder::new()
        .name("percore-rdb-finish".into())
        .spawn(move || finish_and_install(&shared, &cow, writer))
        .expect("spawning the snapshot finisher");
}

/// The finisher thread's work: trailer and fsync, then [`complete`].
fn finish_and_install(shared: &ServerShared, cow: &CowShared, writer: Arc<ChunkWriter>) {
    let writer = wait_unique(writer);
    let result = writer
        .finish(cow.checksum)
        .map(|stats| (stats.bytes, stats.bytes_per_sec() as u64));
    complete(
        shared,
        Outcome {
            id: cow.id,
            diskless: cow.diskless,
            method: Method::Forkless,
            dir: cow.dir.clone(),
            temp: cow.temp_name.clone(),
            final_name: cow.final_name.clone(),
            result,
            cancelled: cow.cancelled.load(Ordering::Acquire),
            cow_size: None,
            peak_extra: cow.peak_extra.load(Ordering::Relaxed),
            forkless: Some(ForklessOutcome {
                copies_peak: cow.copies_peak.load(Ordering::Relaxed),
                throttle_us: cow.throttled_ns.load(Ordering::Relaxed) / 1000,
                frozen_values: cow.frozen_values.load(Ordering::Relaxed),
                frozen_peak_bytes: cow.frozen_peak_bytes.load(Ordering::Relaxed),
            }),
            changes_at_cut: cow
                .changes_at_cut
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
        },
    );
}

/// A background save that ended, on its way to being installed (or not).
struct Outcome {
    id: u64,
    /// A diskless full sync: nothing to install.
    diskless: bool,
    method: Method,
    dir: std::path::PathBuf,
    temp: String,
    final_name: String,
    /// Bytes written and write throughput, or why the save failed.
    result: std::io::Result<(u64, u64)>,
    /// Stopped by percore (SIGUSR1 to the child, or the forkless flag): not an error.
    cancelled: bool,
    cow_size: Option<u64>,
    peak_extra: u64,
    forkless: Option<ForklessOutcome>,
    changes_at_cut: Vec<u64>,
}

/// A forkless save's copy figures (see the `last_forkless_*` fields of [`Status`]).
struct ForklessOutcome {
    copies_peak: u64,
    throttle_us: u64,
    frozen_values: u64,
    frozen_peak_bytes: u64,
}

/// Installs a finished save and records the outcome, off the shard threads. The
/// `install_lock` is held throughout, and a cancel takes it before it takes the save
/// out of `running`: so either the cancel comes first and this installs nothing, or the
/// install completes before the cancel's reply. The status lock itself is held only
/// for moments, so shards reading it (INFO, ticks) never wait for a rename or fsync.
fn complete(shared: &ServerShared, o: Outcome) {
    let _install = shared.install_lock.lock().expect("install lock");
    let current = shared
        .persist
        .lock()
        .expect("persist lock")
        .running
        .as_ref()
        .is_some_and(|r| r.id == o.id);
    if o.diskless {
        diskless_complete(shared, &o, current);
        return;
    }
    let aof = crate::aof::is_rewrite_target(shared, &o.final_name);
    if !current || o.cancelled {
        crate::replication::primary::save_done(shared, o.id, None);
        let _ = std::fs::remove_file(o.dir.join(&o.temp));
        if aof {
            crate::aof::rewrite_done(shared, Err("cancelled".into()));
        }
        if current {
            let mut st = shared.persist.lock().expect("persist lock");
            if let Some(r) = st.running.take() {
                st.last_bgsave_time_s = r.started.elapsed().as_secs() as i64;
            }
        }
        return;
    }
    let result = o
        .result
        .and_then(|r| install_snapshot(&o.dir, &o.temp, &o.final_name).map(|()| r));
    let mut st = shared.persist.lock().expect("persist lock");
    let Some(r) = st.running.take() else {
        return;
    };
    if aof {
        // An AOF rewrite: RDB saves' status, LASTSAVE and the dirty count stay.
        drop(st);
        match result {
            Ok(_) => crate::aof::rewrite_done(shared, Ok(())),
            Err(e) => {
                let _ = std::fs::remove_file(o.dir.join(&o.temp));
                crate::aof::rewrite_done(shared, Err(e.to_string()));
            }
        }
        return;
    }
    st.last_bgsave_time_s = r.started.elapsed().as_secs() as i64;
    st.last_method = Some(o.method);
    match result {
        Ok((bytes, bps)) => {
            st.last_bgsave_ok = true;
            crate::misconf::note_bgsave(shared, true);
            st.last_bytes = bytes;
            st.last_write_bytes_per_s = bps;
            st.last_peak_extra_bytes = o.peak_extra;
            if let Some(f) = o.forkless {
                st.last_forkless_copies_peak = f.copies_peak;
                st.last_forkless_throttle_us = f.throttle_us;
                st.last_forkless_frozen_values = f.frozen_values;
                st.last_forkless_frozen_peak_bytes = f.frozen_peak_bytes;
            }
            if let Some(c) = o.cow_size {
                st.last_cow_size = c;
            }
            drop(st);
            set_saved_baseline(shared, o.changes_at_cut.into_iter());
            shared
                .lastsave_s
                .store(percore_net::reactor::unix_ms() / 1000, Ordering::Relaxed);
            shared.notice("Background saving terminated with success");
            crate::replication::primary::save_done(shared, o.id, Some(&o.dir.join(&o.final_name)));
        }
        Err(e) => {
            st.last_bgsave_ok = false;
            crate::misconf::note_bgsave(shared, false);
            drop(st);
            crate::replication::primary::save_done(shared, o.id, None);
            let _ = std::fs::remove_file(o.dir.join(&o.temp));
            shared.warning(&format!("Background saving error: {e}"));
        }
    }
}

/// [`complete`] for a diskless full sync: its replicas wait for their first ACK, or are
/// dropped; the RDB save status (LASTSAVE, `rdb_last_bgsave_status`) stays, as Redis's
/// socket target leaves it.
fn diskless_complete(shared: &ServerShared, o: &Outcome, current: bool) {
    let ok = current && !o.cancelled && o.result.is_ok();
    if current {
        shared.persist.lock().expect("persist lock").running = None;
    }
    match &o.result {
        Ok(_) if ok => shared.notice("Background RDB transfer terminated with success"),
        Err(e) => shared.warning(&format!("Background transfer error: {e}")),
        Ok(_) => shared.notice("Background transfer terminated by signal"),
    }
    crate::replication::primary::diskless_done(shared, o.id, ok);
}

/// Removes `path`'s name and returns a descriptor that keeps its inode alive: `unlink`
/// then only drops the directory entry, and the caller's last close frees the blocks.
/// A cancelled save's temp file can hold gigabytes; freeing a few hundred MB inside
/// `unlink` took 40–90 ms here (ext4 mounted with `discard` discards synchronously).
fn unlink_keeping_inode(path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_PATH: no permission or I/O needed, and it pins the inode all the same.
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path);
    let _ = std::fs::remove_file(path);
    held.ok()
}

/// Renames `temp` over `final_name` and fsyncs the directory, without freeing the old
/// dump's blocks on the way: the old file is first hard-linked under a temp name (so the
/// rename only drops a directory entry) and unlinked on a thread of its own. Freeing a
/// big file's extents can take hundreds of ms (ext4 with `discard`); a crash in between
/// leaves a `temp-*.rdb` that the next start removes.
pub fn install_snapshot(
    dir: &std::path::Path,
    temp: &str,
    final_name: &str,
) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let keep = format!(
        "temp-old-{}-{}.rdb",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let kept = std::fs::hard_link(dir.join(final_name), dir.join(&keep)).is_ok();
    let result = install(dir, temp, final_name);
    if kept {
        let old = dir.join(keep);
        let spawned = std::thread::Builder::new()
            .name("percore-unlink".into())
            .spawn(move || {
                let _ = std::fs::remove_file(old);
            });
        if let Err(e) = spawned {
            eprintln!("percore: unlink thread: {e}");
        }
    }
    result
}

/// The fork child's pidfd became readable (or a tick checks on it): reap it here, then
/// install its file on a thread of its own (see [`complete`]).
pub fn child_event(data: &mut ShardData) {
    let Some(child) = data.snap.child.as_ref() else {
        return;
    };
    let exit = match fork::try_reap(child.pid) {
        Ok(fork::ChildExit::Running) => return,
        Ok(e) => e,
        Err(_) => fork::ChildExit::Code(-1),
    };
    // The child has exited: everything it wrote is in the pipe.
    read_child_reports(data);
    let child = data.snap.child.take().expect("child present");
    if child.pidfd >= 0 {
        fork::close(child.pidfd);
    }
    let report = child.done;
    let cow_peak = child.progress.cow_peak_bytes;
    child.report.close();
    // The pid is reaped: a cancel must not signal it (it may be reused).
    if let Some(r) = data
        .shared
        .persist
        .lock()
        .expect("persist lock")
        .running
        .as_mut()
        && r.id == child.id
    {
        r.pid = None;
    }
    let secs = child.started.elapsed().as_secs_f64().max(1e-9);
    let result = match (exit, report) {
        (fork::ChildExit::Code(0), Some(fork::Report { bytes, .. })) => {
            Ok((bytes, (bytes as f64 / secs) as u64))
        }
        (fork::ChildExit::Code(0), None) => Ok((0, 0)),
        _ => {
            data.shared.warning(&format!(
                "Background saving error (child {} ended: {exit:?})",
                child.pid
            ));
            Err(std::io::Error::other(format!("child ended: {exit:?}")))
        }
    };
    let outcome = Outcome {
        diskless: false,
        id: child.id,
        method: Method::Fork,
        dir: child.dir.clone(),
        temp: temp_file_name(child.pid as u64),
        final_name: child.final_name.clone(),
        result,
        // SIGUSR1 is how percore (and Redis) cancels: it leaves the status alone.
        cancelled: exit == fork::ChildExit::Signal(libc::SIGUSR1),
        // As Redis's `rdb_last_cow_size`: the peak over the child's reports.
        cow_size: report.map(|_| cow_peak),
        peak_extra: cow_peak,
        forkless: None,
        changes_at_cut: child.changes_at_cut.clone(),
    };
    let shared = Arc::clone(&data.shared);
    std::thread::Builder::new()
        .name("percore-rdb-finish".into())
        .spawn(move || complete(&shared, outcome))
        .expect("spawning the snapshot finisher");
}

/// Reads the fork child's reports waiting in its pipe (never blocks) and publishes the
/// latest for INFO.
fn read_child_reports(data: &mut ShardData) {
    let Some(child) = data.snap.child.as_mut() else {
        return;
    };
    let mut fresh = false;
    let Child {
        report,
        progress,
        done,
        ..
    } = child;
    report.drain(|r| {
        progress.add(&r);
        if r.done {
            *done = Some(r);
        }
        fresh = true;
    });
    if !fresh {
        return;
    }
    let (id, progress) = (child.id, child.progress);
    let mut st = data.shared.persist.lock().expect("persist lock");
    if let Some(r) = st.running.as_mut()
        && r.id == id
    {
        r.child_progress = progress;
    }
}

/// Once per tick (any shard): reads a fork child's reports and checks on a child without
/// a pidfd; on shard 0, runs save points.
pub fn on_tick(data: &mut ShardData) {
    read_child_reports(data);
    if data.snap.child.as_ref().is_some_and(|c| c.pidfd < 0) {
        child_event(data);
    }
    if data.id != 0 || !data.snap.requests.is_empty() || data.snap.lead.is_some() {
        return;
    }
    let st = data.shared.persist.lock().expect("persist lock");
    let busy = st.running.is_some();
    drop(st);
    if crate::aof::on_tick(&data.shared, &data.cfg, busy) {
        data.snap.requests.push_back(Request {
            op: Op::AofRewrite,
            reply: None,
        });
        return;
    }
    let st = data.shared.persist.lock().expect("persist lock");
    if st.running.is_some() {
        return;
    }
    let now_s = data.now_ms / 1000;
    let dirty = changes_since_save(&data.shared);
    let since = now_s - data.shared.lastsave_s.load(Ordering::Relaxed);
    let retry_ok = st.last_bgsave_ok || now_s - st.last_bgsave_try_s > BGSAVE_RETRY_DELAY_S;
    drop(st);
    let due = retry_ok
        && data
            .cfg
            .save
            .iter()
            .any(|p| dirty >= p.changes && since >= p.seconds as i64);
    if due {
        data.shared
            .notice(&format!("{dirty} changes in {since} seconds. Saving..."));
        data.snap.requests.push_back(Request {
            op: Op::BgSave,
            reply: None,
        });
    }
}

/// At start-up: removes temp files a crash left in `dir`.
pub fn remove_stale(shared: &ServerShared, dir: &std::path::Path) {
    match percore_persist::file::remove_stale_temp_files(dir) {
        Ok(removed) => {
            for p in removed {
                shared.notice(&format!("Removed stale temp file {}", p.display()));
            }
        }
        Err(e) => shared.warning(&format!("Can't scan {} for temp files: {e}", dir.display())),
    }
}
