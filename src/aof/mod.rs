//! The append-only file, in Redis 7's multi-part layout: `dir/appenddirname/` holds a
//! manifest (`appendonly.aof.manifest`), a base (`appendonly.aof.N.base.rdb`, or
//! `.base.aof` without `aof-use-rdb-preamble`) and incremental files
//! (`appendonly.aof.M.incr.aof`) of the commands applied since.
//!
//! The AOF is a sink of the stream of effects (`propagate`): the merger thread writes the
//! serial stream to the newest incremental file through io_uring (`writer`), fsyncing per
//! `appendfsync`. With `always`, shards wait for their effects to be written and fsynced
//! before they send the loop iteration's replies (group commit over one iteration). A
//! rewrite (BGREWRITEAOF, `auto-aof-rewrite-*`, CONFIG SET appendonly yes) is a background
//! save (forkless cut or fork child, `default-bgsave-method`) installed as the new base;
//! its barrier's cut in the stream opens the new incremental file, so base + incremental
//! files always hold every effect exactly once.

pub mod manifest;
pub mod replay;
pub mod writer;

use crate::propagate::{Sink, SinkId};
use crate::server::ServerShared;
use manifest::{AofFile as FileEntry, Kind, Manifest};
use percore_engine::keyspace::Keyspace;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Everysec,
    No,
}

impl Fsync {
    pub const ALL: [Fsync; 3] = [Fsync::Always, Fsync::Everysec, Fsync::No];
    pub const NAMES: [&'static str; 3] = ["always", "everysec", "no"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// With `everysec`, the longest unsynced stretch.
pub const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);

/// The AOF's state, shared by the shards (INFO, commands), the merger thread (the sink)
/// and the snapshot machinery (rewrites).
#[derive(Default)]
pub struct Shared {
    state: Mutex<State>,
    /// `appendfsync`, for the sink without the configuration lock.
    fsync: AtomicU8,
    /// Bytes of the incremental files and the base (INFO `aof_current_size`).
    incr_bytes: AtomicU64,
    base_bytes: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The sink writing the incremental file, while the AOF is on.
    sink: Option<SinkId>,
    dir: PathBuf,
    filename: String,
    manifest: Manifest,
    /// The rewrite in flight: the barrier it waits for, the base it installs.
    rewrite: Option<Rewrite>,
    /// A rewrite waits for a save in flight to end.
    scheduled: bool,
    /// `aof_current_size` after the last rewrite (auto-aof-rewrite's baseline).
    size_at_rewrite: u64,
    last_rewrite_ok: bool,
    last_rewrite_time_s: i64,
    rewrites: u64,
    consecutive_failures: u64,
    last_write_error: Option<String>,
    delayed_fsync: u64,
    /// Turned on while running: the sink writes nothing until a rewrite's cut (a failed
    /// rewrite is retried).
    waiting_start: bool,
}

struct Rewrite {
    started: Instant,
    cut: Option<u64>,
    base: FileEntry,
    /// The incremental file opened at the cut (`None` until the merger reached it).
    incr: Option<FileEntry>,
    /// The base is installed (the save finished); the manifest switches once the cut is
    /// reached too.
    base_done: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("aof state")
    }

    pub fn set_fsync(&self, f: Fsync) {
        self.fsync.store(f as u8, Ordering::Relaxed);
    }

    fn fsync_policy(&self) -> Fsync {
        Fsync::ALL[usize::from(self.fsync.load(Ordering::Relaxed)).min(2)]
    }
}

fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

fn base_name(filename: &str, seq: u64, rdb: bool) -> String {
    format!("{filename}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

fn incr_name(filename: &str, seq: u64) -> String {
    format!("{filename}.{seq}.incr.aof")
}

/// Writes the manifest atomically (temp file, fsync, rename, directory fsync), as Redis's
/// `writeAofManifestFile`.
fn write_manifest(dir: &Path, filename: &str, m: &Manifest) -> std::io::Result<()> {
    use std::io::Write;
    let name = manifest_name(filename);
    let temp = dir.join(format!("temp-{name}"));
    let mut f = std::fs::File::create(&temp)?;
    f.write_all(m.format().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&temp, dir.join(&name))?;
    std::fs::File::open(dir)?.sync_all()
}

fn open_append(path: &Path) -> std::io::Result<(std::fs::File, u64)> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    let len = f.metadata()?.len();
    Ok((f, len))
}

// ---------------------------------------------------------------------------------------
// Start-up

/// With `appendonly yes`: loads the AOF (manifest, base, incremental files) into one
/// keyspace per shard, or starts an empty dataset with a new base and incremental file
/// when there is none (as Redis 7.0, which does not fall back to the RDB file then), and
/// attaches the AOF to the stream before the shards start. `None` without `appendonly`.
pub fn start(shared: &Arc<ServerShared>, shards: usize) -> Result<Option<Vec<Keyspace>>, String> {
    let cfg = shared.config();
    shared.aof.set_fsync(cfg.appendfsync);
    if !cfg.appendonly {
        return Ok(None);
    }
    crate::snapshot::remove_stale(shared, &cfg.dir);
    let dir = cfg.dir.join(&cfg.appenddirname);
    let filename = cfg.appendfilename.clone();
    let mpath = dir.join(manifest_name(&filename));
    let fresh = || -> Vec<Keyspace> {
        (0..shards)
            .map(|s| {
                Keyspace::new(
                    cfg.keyspace_databases(),
                    crate::server::random_seed() ^ s as u64,
                )
                .with_slot_index(cfg.cluster_enabled)
            })
            .collect()
    };
    let (keyspaces, manifest) = if mpath.exists() {
        let text = std::fs::read(&mpath)
            .map_err(|e| format!("Can't open the AOF manifest {}: {e}", mpath.display()))?;
        let m = Manifest::parse(&text)
            .map_err(|e| format!("Fatal error: {e} in the AOF manifest {}", mpath.display()))?;
        let started = Instant::now();
        let ks = load(shared, &cfg, &dir, &m, shards, fresh())?;
        shared.notice(&format!(
            "DB loaded from append only file: {:.3} seconds",
            started.elapsed().as_secs_f64()
        ));
        (ks, m)
    } else {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("Can't create the AOF directory {}: {e}", dir.display()))?;
        let ks = fresh();
        let base = FileEntry {
            name: base_name(&filename, 1, cfg.aof_use_rdb_preamble),
            seq: 1,
            kind: Kind::Base,
        };
        write_base_now(shared, &dir, &base.name, &ks, cfg.aof_use_rdb_preamble)
            .map_err(|e| format!("Can't create the AOF base file {}: {e}", base.name))?;
        shared.notice(&format!(
            "Creating AOF base file {} on server start",
            base.name
        ));
        let incr = FileEntry {
            name: incr_name(&filename, 1),
            seq: 1,
            kind: Kind::Incr,
        };
        open_append(&dir.join(&incr.name))
            .map_err(|e| format!("Can't create the AOF incr file {}: {e}", incr.name))?;
        shared.notice(&format!(
            "Creating AOF incr file {} on server start",
            incr.name
        ));
        let m = Manifest {
            base: Some(base),
            incrs: vec![incr],
            history: Vec::new(),
        };
        write_manifest(&dir, &filename, &m)
            .map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
        (ks, m)
    };
    for (i, ks) in keyspaces.iter().enumerate() {
        shared.changes[i].store(ks.changes(), Ordering::Relaxed);
        shared.saved_changes[i].store(ks.changes(), Ordering::Relaxed);
    }
    let mut manifest = manifest;
    if manifest.incrs.is_empty() {
        // A base alone (BGREWRITEAOF with `appendonly no` wrote it): appends go to a new
        // incremental file, as Redis's `openNewIncrAofForAppend`.
        let seq = manifest.base_seq().max(manifest.last_incr_seq()) + 1;
        let incr = FileEntry {
            name: incr_name(&filename, seq),
            seq,
            kind: Kind::Incr,
        };
        open_append(&dir.join(&incr.name))
            .map_err(|e| format!("Can't create the AOF incr file {}: {e}", incr.name))?;
        manifest.incrs.push(incr);
        write_manifest(&dir, &filename, &manifest)
            .map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
    }
    let last = manifest
        .incrs
        .last()
        .cloned()
        .ok_or_else(|| "The AOF manifest names no incremental file".to_owned())?;
    attach(shared, dir, filename, manifest, &last)?;
    Ok(Some(keyspaces))
}

/// Opens `incr` for appending and attaches the sink, writing at once.
fn attach(
    shared: &Arc<ServerShared>,
    dir: PathBuf,
    filename: String,
    manifest: Manifest,
    incr: &FileEntry,
) -> Result<(), String> {
    let (file, len) = open_append(&dir.join(&incr.name))
        .map_err(|e| format!("Can't open the append-only file {}: {e}", incr.name))?;
    let sizes = file_sizes(&dir, &manifest);
    shared.aof.incr_bytes.store(sizes.1, Ordering::Relaxed);
    shared.aof.base_bytes.store(sizes.0, Ordering::Relaxed);
    {
        let mut st = shared.aof.lock();
        st.size_at_rewrite = sizes.0 + sizes.1;
        st.last_rewrite_ok = true;
    }
    attach_sink(shared, dir, filename, manifest, file, len, false);
    Ok(())
}

/// Records the AOF's files and attaches its sink to the stream: writing into `file` at
/// `len` at once, or (`waiting`, turned on while shards run) nothing until its rewrite's
/// cut opens the next incremental file.
fn attach_sink(
    shared: &Arc<ServerShared>,
    dir: PathBuf,
    filename: String,
    manifest: Manifest,
    file: std::fs::File,
    len: u64,
    waiting: bool,
) {
    {
        let mut st = shared.aof.lock();
        st.dir = dir;
        st.filename = filename;
        st.manifest = manifest;
        st.scheduled |= waiting;
        st.waiting_start = waiting;
    }
    let sink = AofSink {
        shared: Arc::clone(shared),
        file: writer::AofFile::new(file, len),
        buf: Vec::new(),
        unsynced: false,
        last_sync: Instant::now(),
        waiting,
    };
    let always = shared.aof.fsync_policy() == Fsync::Always;
    let id = shared.effects.attach(Box::new(sink));
    shared.effects.sync_acks.store(always, Ordering::Relaxed);
    shared.aof.lock().sink = Some(id);
}

/// Sizes of the base and of the incremental files named in `m`.
fn file_sizes(dir: &Path, m: &Manifest) -> (u64, u64) {
    let size = |f: &FileEntry| std::fs::metadata(dir.join(&f.name)).map_or(0, |m| m.len());
    (
        m.base.as_ref().map_or(0, size),
        m.incrs.iter().map(size).sum(),
    )
}

/// Writes a base file of `keyspaces` (RDB, or an empty command file without the RDB
/// preamble: only at start with an empty dataset).
fn write_base_now(
    shared: &ServerShared,
    dir: &Path,
    name: &str,
    keyspaces: &[Keyspace],
    rdb: bool,
) -> std::io::Result<()> {
    let cfg = shared.config();
    if !rdb {
        let f = std::fs::File::create(dir.join(name))?;
        return f.sync_all();
    }
    let params = crate::snapshot::write::SaveParams {
        compress: cfg.rdbcompression,
        checksum: cfg.rdbchecksum,
        key_delay_us: 0,
        write: percore_persist::file::WriteOptions::default(),
        functions: shared
            .scripts
            .libraries()
            .values()
            .map(|l| l.code.clone())
            .collect(),
    };
    let temp = format!("temp-{name}");
    let refs: Vec<&Keyspace> = keyspaces.iter().collect();
    crate::snapshot::write::write_keyspaces(
        &refs,
        dir,
        &temp,
        &params,
        percore_net::reactor::unix_ms(),
        &mut |_| {},
    )?;
    percore_persist::file::install(dir, &temp, name)
}

/// Loads the base and every incremental file of `m` into `keyspaces` (fresh ones).
fn load(
    shared: &Arc<ServerShared>,
    cfg: &crate::config::Config,
    dir: &Path,
    m: &Manifest,
    shards: usize,
    mut keyspaces: Vec<Keyspace>,
) -> Result<Vec<Keyspace>, String> {
    let mut files: Vec<&FileEntry> = Vec::new();
    if let Some(b) = &m.base {
        files.push(b);
    }
    files.extend(m.incrs.iter());
    let mut replayer: Option<replay::Replayer> = None;
    let count = files.len();
    for (i, f) in files.into_iter().enumerate() {
        let path = dir.join(&f.name);
        let last = i + 1 == count;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && f.kind == Kind::Incr && last => {
                // Redis allows the last incremental file to be missing (it was never written).
                Vec::new()
            }
            Err(e) => {
                return Err(format!(
                    "Fatal error: can't open the append log file {} for reading: {e}",
                    f.name
                ));
            }
        };
        if bytes.starts_with(b"REDIS") {
            // An RDB base (or an RDB preamble): load it as a snapshot.
            if replayer.is_some() {
                return Err(format!(
                    "Bad file format reading the append only file {}: an RDB in an incremental file",
                    f.name
                ));
            }
            let mut functions = Vec::new();
            let (ks, stats) = crate::snapshot::load::load_file(
                &path,
                shards,
                cfg.keyspace_databases(),
                cfg.cluster_enabled,
                percore_net::reactor::unix_ms(),
                crate::server::random_seed(),
                &crate::commands::zsets::zset_limits(cfg),
                &mut functions,
                |l| shared.notice(l),
            )
            .map_err(|e| format!("Fatal error loading the AOF base {}: {e}", f.name))?;
            crate::scripting::install_loaded(shared, &functions)?;
            shared.notice(&format!(
                "DB loaded from base file {}: {} keys",
                f.name, stats.keys_loaded
            ));
            keyspaces = if ks.is_empty() { keyspaces } else { ks };
            continue;
        }
        let r = replayer
            .get_or_insert_with(|| replay::Replayer::new(shared, std::mem::take(&mut keyspaces)));
        let valid = replay_file(r, &f.name, &bytes, last, cfg.aof_load_truncated, shared)?;
        if valid < bytes.len() {
            // The last file ends inside a command, loaded anyway (aof-load-truncated): cut
            // it there so that new appends follow a whole command.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_len(valid as u64).and_then(|()| file.sync_all()));
            if let Err(e) = file {
                return Err(format!("Error truncating the AOF file {}: {e}", f.name));
            }
            shared.warning(&format!(
                "!!! Truncating the AOF {} at offset {valid} !!!",
                f.name
            ));
            shared.warning(&format!(
                "AOF {} loaded anyway because aof-load-truncated is enabled",
                f.name
            ));
        }
        shared.notice(&format!(
            "DB loaded from {} file {}",
            if f.kind == Kind::Base { "base" } else { "incr" },
            f.name
        ));
    }
    Ok(match replayer {
        Some(r) => r.into_keyspaces(),
        None => keyspaces,
    })
}

/// Longest DEBUG LOADAOF waits for the stream's effects to reach the AOF file.
pub const LOADAOF_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// DEBUG LOADAOF, at a barrier with every shard's keyspace lent (`lent`): writes what the
/// stream holds to the AOF file (with the AOF on), then replaces the dataset and the
/// function libraries with what the AOF on disk (manifest, base, incremental files)
/// holds, as a restart would load them. With the AOF off, Redis 7.0 loads an AOF found on
/// disk too (and exits when there is none: here an error, the dataset left as it was).
/// On failure nothing changes.
pub fn debug_load(
    shared: &Arc<ServerShared>,
    cfg: &crate::config::Config,
    lent: &mut Vec<Keyspace>,
) -> Result<(), String> {
    if enabled(shared) {
        let hub = &shared.effects;
        if !hub.wait_written(&hub.published(), LOADAOF_FLUSH_TIMEOUT) {
            return Err("the AOF writer did not catch up".into());
        }
    }
    let dir = cfg.dir.join(&cfg.appenddirname);
    let mpath = dir.join(manifest_name(&cfg.appendfilename));
    let text = std::fs::read(&mpath)
        .map_err(|e| format!("Can't open the AOF manifest {}: {e}", mpath.display()))?;
    let m = Manifest::parse(&text)
        .map_err(|e| format!("{e} in the AOF manifest {}", mpath.display()))?;
    let (databases, slots) = (lent[0].databases(), lent[0].has_slot_index());
    let fresh = (0..lent.len())
        .map(|s| {
            Keyspace::new(databases, crate::server::random_seed() ^ s as u64).with_slot_index(slots)
        })
        .collect();
    // The libraries come from the files too (an RDB base's, FUNCTION LOADs replayed).
    let before: Vec<Vec<u8>> = shared
        .scripts
        .libraries()
        .values()
        .map(|l| l.code.clone())
        .collect();
    crate::scripting::install_loaded(shared, &[])?;
    match load(shared, cfg, &dir, &m, lent.len(), fresh) {
        Ok(ks) => {
            *lent = ks;
            shared.warning("Append Only File loaded by DEBUG LOADAOF");
            Ok(())
        }
        Err(e) => {
            crate::scripting::install_loaded(shared, &before)?;
            Err(e)
        }
    }
}

/// Replays one command file; returns the length of its whole commands (all of it unless
/// the last file was cut short and `load_truncated`). A transaction cut short is dropped
/// whole (Redis's "Revert incomplete MULTI/EXEC transaction").
fn replay_file(
    r: &mut replay::Replayer,
    name: &str,
    bytes: &[u8],
    last: bool,
    load_truncated: bool,
    shared: &ServerShared,
) -> Result<usize, String> {
    let fmterr = || {
        format!(
            "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
        )
    };
    let mut at = 0;
    let mut valid = 0;
    // Commands of a MULTI not yet closed by EXEC: run when EXEC comes.
    let mut multi: Option<Vec<Vec<Vec<u8>>>> = None;
    while at < bytes.len() {
        if bytes[at] == b'#' {
            // An annotation (aof-timestamp-enabled): skipped, as Redis.
            match bytes[at..].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    at += nl + 1;
                    if multi.is_none() {
                        valid = at;
                    }
                    continue;
                }
                None => break,
            }
        }
        match replay::parse_at(bytes, at) {
            replay::Parsed::Command(argv, next) => {
                at = next;
                if argv[0].eq_ignore_ascii_case(b"MULTI") {
                    multi = Some(Vec::new());
                } else if argv[0].eq_ignore_ascii_case(b"EXEC") {
                    for cmd in multi.take().unwrap_or_default() {
                        let refs: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                        r.exec(&refs).map_err(|e| format!("{e} {name}"))?;
                    }
                } else if let Some(q) = multi.as_mut() {
                    q.push(argv.iter().map(|a| a.to_vec()).collect());
                } else {
                    r.exec(&argv).map_err(|e| format!("{e} {name}"))?;
                }
                if multi.is_none() {
                    valid = at;
                }
            }
            replay::Parsed::Bad(_) => return Err(fmterr()),
            replay::Parsed::Truncated => break,
        }
    }
    if at >= bytes.len() && multi.is_none() {
        return Ok(bytes.len());
    }
    // Cut short: inside a command, or inside a transaction.
    if !last || !load_truncated {
        return Err(format!(
            "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
        ));
    }
    shared.warning(&format!(
        "!!! Warning: short read while loading the AOF file {name}!!!"
    ));
    if multi.is_some() {
        shared.warning("Revert incomplete MULTI/EXEC transaction in AOF file");
    }
    Ok(valid)
}

// ---------------------------------------------------------------------------------------
// The sink

struct AofSink {
    shared: Arc<ServerShared>,
    file: writer::AofFile,
    buf: Vec<u8>,
    unsynced: bool,
    last_sync: Instant,
    /// Attached while shards run: nothing is written until the rewrite's cut.
    waiting: bool,
}

impl AofSink {
    fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let sync = self.shared.aof.fsync_policy() == Fsync::Always;
        let before = self.file.len;
        match self.file.append(&self.buf, sync) {
            Ok(()) => {
                self.shared
                    .aof
                    .incr_bytes
                    .fetch_add(self.file.len - before, Ordering::Relaxed);
                if sync {
                    self.last_sync = Instant::now();
                } else {
                    self.unsynced = true;
                }
                let mut st = self.shared.aof.lock();
                if st.last_write_error.take().is_some() {
                    drop(st);
                    self.shared
                        .notice("AOF write error looks solved, Redis can write again.");
                }
            }
            Err(e) => {
                let text = format!("Error writing to the AOF file: {e}");
                self.shared.warning(&text);
                if sync {
                    // As Redis: an acknowledged write must be durable; nothing else to do.
                    self.shared.warning(
                        "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...",
                    );
                    std::process::exit(1);
                }
                self.shared.aof.lock().last_write_error = Some(text);
            }
        }
        self.buf.clear();
    }

    fn sync(&mut self) {
        if !self.unsynced {
            return;
        }
        match self.file.sync() {
            Ok(()) => {
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Err(e) => {
                self.shared
                    .warning(&format!("Error syncing the AOF file: {e}"));
                self.shared.aof.lock().delayed_fsync += 1;
            }
        }
    }

    /// The rewrite's barrier: the incremental file that follows the new base.
    fn switch_file(&mut self) -> Result<(), String> {
        self.write_out();
        self.sync();
        let mut st = self.shared.aof.lock();
        let seq = st.manifest.last_incr_seq() + 1;
        let incr = FileEntry {
            name: incr_name(&st.filename, seq),
            seq,
            kind: Kind::Incr,
        };
        let (file, len) = open_append(&st.dir.join(&incr.name))
            .map_err(|e| format!("Can't open the append-only file {}: {e}", incr.name))?;
        let mut m = st.manifest.clone();
        m.incrs.push(incr.clone());
        write_manifest(&st.dir, &st.filename, &m)
            .map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
        st.manifest = m;
        st.waiting_start = false;
        self.file = writer::AofFile::new(file, len);
        self.unsynced = false;
        let finish = if let Some(rw) = st.rewrite.as_mut() {
            rw.incr = Some(incr);
            rw.base_done
        } else {
            false
        };
        if finish {
            install_rewrite(&self.shared, &mut st);
        }
        Ok(())
    }
}

impl Sink for AofSink {
    fn write(&mut self, bytes: &[u8]) {
        if !self.waiting {
            self.buf.extend_from_slice(bytes);
        }
    }

    fn cut(&mut self, id: u64) -> bool {
        let ours = self
            .shared
            .aof
            .lock()
            .rewrite
            .as_ref()
            .is_some_and(|r| r.cut == Some(id));
        if !ours {
            return false;
        }
        match self.switch_file() {
            Ok(()) => self.waiting = false,
            Err(e) => {
                self.shared.warning(&e);
                self.shared.aof.lock().last_write_error = Some(e);
            }
        }
        // A new incremental file starts here: its first command selects.
        true
    }

    fn flush(&mut self) {
        self.write_out();
        if self.unsynced
            && self.shared.aof.fsync_policy() == Fsync::Everysec
            && self.last_sync.elapsed() >= EVERYSEC_INTERVAL
        {
            self.sync();
        }
    }

    fn tick(&mut self) {
        self.flush();
    }
}

impl Drop for AofSink {
    fn drop(&mut self) {
        self.write_out();
        if self.shared.aof.fsync_policy() != Fsync::No {
            self.sync();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rewrites

/// BGREWRITEAOF's first step: the error, the scheduled reply, or the save to start.
pub fn request_rewrite(shared: &ServerShared, save_busy: bool) -> Result<bool, &'static str> {
    let mut st = shared.aof.lock();
    if st.rewrite.is_some() {
        return Err("ERR Background append only file rewriting already in progress");
    }
    if save_busy {
        st.scheduled = true;
        return Ok(false);
    }
    Ok(true)
}

/// BGREWRITEAOF with `appendonly no`: Redis 7.0 rewrites anyway, into a base that replaces
/// every file of the AOF on disk (`markRewrittenIncrAofAsHistory` with no file open). Points
/// the AOF's state at `dir/appenddirname` and the manifest found there, if any, so that
/// [`rewrite_target`] names the new base; [`rewrite_done`] installs it alone.
pub fn prepare_offline_rewrite(
    shared: &ServerShared,
    cfg: &crate::config::Config,
) -> Result<(), String> {
    let mut st = shared.aof.lock();
    if st.sink.is_some() {
        return Ok(());
    }
    let dir = cfg.dir.join(&cfg.appenddirname);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", dir.display()))?;
    let mpath = dir.join(manifest_name(&cfg.appendfilename));
    let manifest = match std::fs::read(&mpath) {
        Ok(text) => Manifest::parse(&text)
            .map_err(|e| format!("{e} in the AOF manifest {}", mpath.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => {
            return Err(format!(
                "Can't read the AOF manifest {}: {e}",
                mpath.display()
            ));
        }
    };
    st.dir = dir;
    st.filename.clone_from(&cfg.appendfilename);
    st.manifest = manifest;
    Ok(())
}

/// The snapshot machinery starts a rewrite's save: the base's name (relative to `dir`),
/// where the save installs its file.
pub fn rewrite_target(shared: &ServerShared, rdb: bool) -> Option<String> {
    let mut st = shared.aof.lock();
    st.scheduled = false;
    if st.dir.as_os_str().is_empty() {
        return None;
    }
    let seq = st.manifest.base_seq().max(st.manifest.last_incr_seq()) + 1;
    let base = FileEntry {
        name: base_name(&st.filename, seq, rdb),
        seq,
        kind: Kind::Base,
    };
    let dirname = st
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = format!("{dirname}/{}", base.name);
    st.rewrite = Some(Rewrite {
        started: Instant::now(),
        cut: None,
        base,
        incr: None,
        base_done: false,
    });
    Some(target)
}

/// The rewrite's barrier took its place in the stream.
pub fn rewrite_cut(shared: &ServerShared, cut: u64) {
    if let Some(r) = shared.aof.lock().rewrite.as_mut() {
        r.cut = Some(cut);
    }
}

/// Whether `final_name` is the base of the rewrite in flight.
pub fn is_rewrite_target(shared: &ServerShared, final_name: &str) -> bool {
    shared
        .aof
        .lock()
        .rewrite
        .as_ref()
        .is_some_and(|r| final_name.ends_with(&format!("/{}", r.base.name)))
}

/// The rewrite's save ended: installed as the base (`Ok`), or failed/cancelled.
pub fn rewrite_done(shared: &ServerShared, result: Result<(), String>) {
    let mut st = shared.aof.lock();
    let offline = st.sink.is_none();
    let Some(rw) = st.rewrite.as_mut() else {
        return;
    };
    match result {
        Ok(()) => {
            rw.base_done = true;
            if offline {
                // `appendonly no`: no incremental file follows the base.
                rw.incr = Some(FileEntry {
                    name: String::new(),
                    seq: 0,
                    kind: Kind::Incr,
                });
            }
            if rw.incr.is_some() {
                install_rewrite(shared, &mut st);
            }
        }
        Err(e) => {
            let rw = st.rewrite.take().expect("checked above");
            st.last_rewrite_ok = false;
            st.consecutive_failures += 1;
            st.last_rewrite_time_s = rw.started.elapsed().as_secs() as i64;
            st.scheduled |= st.waiting_start;
            let _ = std::fs::remove_file(st.dir.join(&rw.base.name));
            drop(st);
            shared.warning(&format!("Background AOF rewrite failed: {e}"));
        }
    }
}

/// Base installed and cut reached: the manifest names the new base and the incremental
/// file opened at the cut; the older files go.
fn install_rewrite(shared: &ServerShared, st: &mut State) {
    let Some(rw) = st.rewrite.take() else {
        return;
    };
    let Some(incr) = rw.incr else {
        return;
    };
    let old = st.manifest.clone();
    // Offline (`appendonly no`, see `rewrite_done`): the base alone.
    let incrs = if incr.name.is_empty() {
        Vec::new()
    } else {
        vec![incr.clone()]
    };
    let m = Manifest {
        base: Some(rw.base.clone()),
        incrs,
        history: Vec::new(),
    };
    st.last_rewrite_time_s = rw.started.elapsed().as_secs() as i64;
    if let Err(e) = write_manifest(&st.dir, &st.filename, &m) {
        st.last_rewrite_ok = false;
        st.consecutive_failures += 1;
        shared.warning(&format!("Background AOF rewrite failed: manifest: {e}"));
        return;
    }
    st.manifest = m;
    st.last_rewrite_ok = true;
    st.consecutive_failures = 0;
    st.rewrites += 1;
    for f in old
        .base
        .iter()
        .chain(old.incrs.iter())
        .chain(old.history.iter())
    {
        if f.name != rw.base.name && f.name != incr.name {
            let _ = std::fs::remove_file(st.dir.join(&f.name));
        }
    }
    let sizes = file_sizes(&st.dir, &st.manifest);
    shared.aof.base_bytes.store(sizes.0, Ordering::Relaxed);
    shared.aof.incr_bytes.store(sizes.1, Ordering::Relaxed);
    st.size_at_rewrite = sizes.0 + sizes.1;
    shared.notice("Background AOF rewrite terminated with success");
    shared.notice("Background AOF rewrite finished successfully");
}

/// Shard 0's tick: applies CONFIG SET appendonly/appendfsync, and asks for a rewrite when
/// one is scheduled or `auto-aof-rewrite-*` says so. `Some(())`: start a rewrite now.
pub fn on_tick(shared: &Arc<ServerShared>, cfg: &crate::config::Config, save_busy: bool) -> bool {
    shared.aof.set_fsync(cfg.appendfsync);
    let mut st = shared.aof.lock();
    if let Some(id) = st.sink {
        shared
            .effects
            .sync_acks
            .store(cfg.appendfsync == Fsync::Always, Ordering::Relaxed);
        if !cfg.appendonly {
            // CONFIG SET appendonly no: as Redis's stopAppendOnly.
            st.sink = None;
            st.rewrite = None;
            st.scheduled = false;
            drop(st);
            drop(shared.effects.detach(id));
            shared.notice("Background append only file rewriting stopped");
            return false;
        }
        if st.rewrite.is_some() || save_busy {
            return false;
        }
        if st.scheduled {
            return true;
        }
        let size = shared.aof.base_bytes.load(Ordering::Relaxed)
            + shared.aof.incr_bytes.load(Ordering::Relaxed);
        let base = st.size_at_rewrite.max(1);
        let pct = cfg.auto_aof_rewrite_percentage;
        if pct > 0 && size >= cfg.auto_aof_rewrite_min_size_bytes {
            let growth = (size.saturating_sub(base)) * 100 / base;
            if growth >= u64::from(pct) {
                drop(st);
                shared.notice(&format!(
                    "Starting automatic rewriting of AOF on {growth}% growth"
                ));
                return true;
            }
        }
        return false;
    }
    if !cfg.appendonly || st.rewrite.is_some() || save_busy {
        return false;
    }
    // CONFIG SET appendonly yes: attach now (writing nothing until the rewrite's cut),
    // then rewrite, as Redis's startAppendOnly.
    let dir = cfg.dir.join(&cfg.appenddirname);
    let filename = cfg.appendfilename.clone();
    drop(st);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        shared.warning(&format!("Can't create the AOF directory: {e}"));
        return false;
    }
    let mpath = dir.join(manifest_name(&filename));
    let manifest = std::fs::read(&mpath)
        .ok()
        .and_then(|t| Manifest::parse(&t).ok())
        .unwrap_or_default();
    let (file, len) = match tempfile_sink(&dir) {
        Ok(f) => f,
        Err(e) => {
            shared.warning(&format!("Can't open the AOF: {e}"));
            return false;
        }
    };
    attach_sink(shared, dir, filename, manifest, file, len, true);
    true
}

/// A file for a sink that writes nothing before its cut: /dev/null.
fn tempfile_sink(_dir: &Path) -> std::io::Result<(std::fs::File, u64)> {
    let f = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    Ok((f, 0))
}

/// INFO persistence's aof_* lines, as Redis 7.0 prints them.
pub fn info_lines(shared: &ServerShared, out: &mut Vec<String>) {
    let configured = shared.config().appendonly;
    let st = shared.aof.lock();
    // As Redis's AOF_WAIT_REWRITE: from CONFIG SET appendonly yes on, the AOF counts as
    // enabled and its first rewrite as in progress (the tick starts it).
    let starting = configured && (st.sink.is_none() || st.waiting_start);
    let on = st.sink.is_some() || configured;
    let rewriting = st.rewrite.is_some() || starting;
    out.push(format!("aof_enabled:{}", u8::from(on)));
    out.push(format!("aof_rewrite_in_progress:{}", u8::from(rewriting)));
    out.push(format!("aof_rewrite_scheduled:{}", u8::from(st.scheduled)));
    out.push(format!(
        "aof_last_rewrite_time_sec:{}",
        if st.rewrites > 0 || st.consecutive_failures > 0 {
            st.last_rewrite_time_s
        } else {
            -1
        }
    ));
    out.push(format!(
        "aof_current_rewrite_time_sec:{}",
        st.rewrite
            .as_ref()
            .map_or(-1, |r| r.started.elapsed().as_secs() as i64)
    ));
    out.push(format!(
        "aof_last_bgrewrite_status:{}",
        if st.last_rewrite_ok || st.consecutive_failures == 0 {
            "ok"
        } else {
            "err"
        }
    ));
    out.push(format!("aof_rewrites:{}", st.rewrites));
    out.push(format!(
        "aof_rewrites_consecutive_failures:{}",
        st.consecutive_failures
    ));
    out.push(format!(
        "aof_last_write_status:{}",
        if st.last_write_error.is_some() {
            "err"
        } else {
            "ok"
        }
    ));
    out.push("aof_last_cow_size:0".into());
    out.push("module_fork_in_progress:0".into());
    out.push("module_fork_last_cow_size:0".into());
    if on {
        let base = shared.aof.base_bytes.load(Ordering::Relaxed);
        let incr = shared.aof.incr_bytes.load(Ordering::Relaxed);
        out.push(format!("aof_current_size:{}", base + incr));
        out.push(format!("aof_base_size:{}", st.size_at_rewrite));
        out.push(format!("aof_pending_rewrite:{}", u8::from(st.scheduled)));
        out.push("aof_buffer_length:0".into());
        out.push("aof_pending_bio_fsync:0".into());
        out.push(format!("aof_delayed_fsync:{}", st.delayed_fsync));
    }
}

/// The AOF is being turned on (CONFIG SET appendonly yes) and its first rewrite has not
/// installed its files yet, or a rewrite is in flight: DEBUG LOADAOF waits for it.
pub fn busy(shared: &ServerShared, configured: bool) -> bool {
    let st = shared.aof.lock();
    st.rewrite.is_some() || configured && (st.sink.is_none() || st.waiting_start)
}

/// Whether the AOF is on (INFO, CONFIG).
pub fn enabled(shared: &ServerShared) -> bool {
    shared.aof.lock().sink.is_some()
}

/// Shutdown: the merger's last round writes and syncs what is left (the sink's drop).
pub fn shutdown(shared: &ServerShared) {
    let id = shared.aof.lock().sink.take();
    if let Some(id) = id {
        shared.effects.stop();
        drop(shared.effects.detach(id));
    }
}
