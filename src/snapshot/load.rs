//! Loading an RDB file into the shards' keyspaces (at start-up and for DEBUG RELOAD).

use memmap2::Mmap;
use percore_engine::db::TakenKey;
use percore_engine::keyspace::Keyspace;
use percore_engine::slot::shard_of_key;
use percore_engine::value::Value;
use percore_engine::zsets::ZSetLimits;
use percore_persist::rdb::{self, LoadOptions, Record};
use std::path::Path;
use std::time::{Duration, Instant};

/// Files at least this big get progress lines in the log while they load.
pub const LOAD_PROGRESS_MIN_BYTES: u64 = 64 * 1024 * 1024;
/// How often a big load reports progress.
pub const LOAD_PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// What a load did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub keys_loaded: u64,
    /// Keys whose TTL had passed: skipped, as a Redis primary does.
    pub keys_expired: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Loads `path` into fresh keyspaces, one per shard (keys go to the shard that owns
/// them), with per-slot indexes when `slot_index` (cluster mode). Nothing is returned on error, so the caller's data stays as it was. `progress`
/// receives log lines for big files; `functions` receives the function libraries' code.
/// Sorted sets take the form `zsets` (the server's limits) gives them, as Redis's load.
#[expect(
    clippy::too_many_arguments,
    reason = "what one load needs, each used once"
)]
pub fn load_file(
    path: &Path,
    shards: usize,
    databases: usize,
    slot_index: bool,
    now_ms: i64,
    seed: u64,
    zsets: &ZSetLimits,
    functions: &mut Vec<Vec<u8>>,
    mut progress: impl FnMut(&str),
) -> Result<(Vec<Keyspace>, LoadStats), String> {
    let started = Instant::now();
    let file = std::fs::File::open(path)
        .map_err(|e| format!("Can't open the RDB file {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("Can't stat the RDB file {}: {e}", path.display()))?
        .len();
    let mut keyspaces: Vec<Keyspace> = (0..shards)
        .map(|s| {
            Keyspace::new(databases, seed ^ (s as u64).wrapping_mul(0x9e37_79b9))
                .with_slot_index(slot_index)
        })
        .collect();
    let mut stats = LoadStats {
        bytes: len,
        ..LoadStats::default()
    };
    if len == 0 {
        return Err(format!(
            "Short read or OOM loading DB. Unrecoverable error, aborting now. (RDB file {} is empty)",
            path.display()
        ));
    }
    let map = map_readonly(&file).map_err(|e| format!("Can't map {}: {e}", path.display()))?;
    let opts = LoadOptions::default().with_databases(databases as u32);
    let mut last_report = Instant::now();
    let big = len >= LOAD_PROGRESS_MIN_BYTES;
    let data: &[u8] = &map;
    let result = rdb::load(data, &opts, |rec| {
        if let Record::Function(code) = rec {
            functions.push(code.to_vec());
            return Ok(());
        }
        if let Record::Entry {
            db,
            key,
            mut value,
            expire_ms,
            offset,
        } = rec
        {
            if expire_ms.is_some_and(|at| now_ms > at) {
                stats.keys_expired += 1;
                return Ok(());
            }
            if let Value::ZSet(z) = &mut value {
                z.fit_limits(zsets);
            }
            let shard = if shards == 1 {
                0
            } else {
                shard_of_key(key, shards)
            };
            keyspaces[shard].db_mut(db as usize).put(
                TakenKey {
                    key: key.into(),
                    value,
                    expire_at_ms: expire_ms,
                },
                now_ms,
            );
            stats.keys_loaded += 1;
            if big
                && stats.keys_loaded.is_multiple_of(65_536)
                && last_report.elapsed() >= LOAD_PROGRESS_INTERVAL
            {
                last_report = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                progress(&format!(
                    "Loading RDB: {:.1}% ({} keys, {:.0} keys/s)",
                    offset as f64 * 100.0 / len as f64,
                    stats.keys_loaded,
                    stats.keys_loaded as f64 / secs
                ));
            }
        }
        Ok(())
    });
    match result {
        Ok(_) => {
            stats.elapsed = started.elapsed();
            Ok((keyspaces, stats))
        }
        Err(e) => Err(format!("{e} (file {})", path.display())),
    }
}

#[allow(unsafe_code)]
fn map_readonly(file: &std::fs::File) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this load; the file is percore's own
    // dump in `dir`, which nothing truncates while a load runs. A concurrent truncation by
    // another process would raise SIGBUS, as for redis-server reading the same file.
    unsafe { Mmap::map(file) }
}
