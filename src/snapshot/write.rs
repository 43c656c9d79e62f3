//! Serializing keyspaces into an RDB file: the whole dataset from one thread (SAVE, the
//! fork child), and one shard's forkless cut in slices (BGSAVE without fork).

use percore_engine::db::Entry;
use percore_engine::frozen::FrozenEntry;
use percore_engine::keyspace::Keyspace;
use percore_engine::slot::SLOTS;
use percore_engine::table::CutEntry;
use percore_persist::crc64::Crc64;
use percore_persist::file::{FileStats, Piece, SnapshotFile, WriteOptions};
use percore_persist::rdb::{self, AuxValue, Encoder};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Serialized bytes collected before they are handed to the file writer.
pub const SERIALIZE_CHUNK_BYTES: usize = 256 * 1024;

/// Keys serialized between two looks at the clock in a forkless slice.
pub const CUT_STEP_KEYS: usize = 64;

/// Keys [`write_keyspaces`] serializes between two calls of its progress callback.
pub const PROGRESS_STEP_KEYS: u64 = 64;

/// What a save is told besides the data.
#[derive(Clone, Debug)]
pub struct SaveParams {
    pub compress: bool,
    pub checksum: bool,
    /// `rdb-key-save-delay`: microseconds to pause after each key (tests).
    pub key_delay_us: u64,
    pub write: WriteOptions,
    /// Function libraries' code, written after the AUX fields (`RDB_OPCODE_FUNCTION2`).
    pub functions: Vec<Vec<u8>>,
}

/// The AUX fields redis-server 7.0 writes at the top of its dumps, then the function
/// libraries (opcode 0xF5 and the code, as 7.0's `rdbSaveFunctions`).
pub fn write_header(out: &mut Vec<u8>, now_ms: i64, functions: &[Vec<u8>], compress: bool) {
    let used = crate::alloc::used_memory() as i64;
    let aux: [(&[u8], AuxValue<'_>); 5] = [
        (
            b"redis-ver",
            AuxValue::Str(crate::server::REDIS_COMPAT_VERSION.as_bytes()),
        ),
        (b"redis-bits", AuxValue::Int(64)),
        (b"ctime", AuxValue::Int(now_ms / 1000)),
        (b"used-mem", AuxValue::Int(used)),
        (b"aof-base", AuxValue::Int(0)),
    ];
    rdb::write_header(out, &aux);
    let mut enc = Encoder::new(compress);
    for code in functions {
        out.push(rdb::opcode::FUNCTION2);
        enc.write_string(out, code);
    }
}

/// Writes every key of `keyspaces` (one per shard) into `dir/temp_name` as one RDB file:
/// per database a SELECTDB and RESIZEDB with the totals over all shards, then the keys.
/// Calls `progress` with the keys serialized so far after the first key and then every
/// [`PROGRESS_STEP_KEYS`] keys. On error the temp file is removed.
pub fn write_keyspaces(
    keyspaces: &[&Keyspace],
    dir: &Path,
    temp_name: &str,
    params: &SaveParams,
    now_ms: i64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<FileStats> {
    let mut file = SnapshotFile::create(dir, temp_name, &params.write)?;
    match fill(&mut file, keyspaces, params, now_ms, progress) {
        Ok(()) => file.finish(),
        Err(e) => {
            file.abort();
            Err(e)
        }
    }
}

fn fill(
    file: &mut SnapshotFile,
    keyspaces: &[&Keyspace],
    params: &SaveParams,
    now_ms: i64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let mut crc = Crc64::new();
    let mut written = 0u64;
    let mut out = Vec::with_capacity(SERIALIZE_CHUNK_BYTES + 4096);
    let mut enc = Encoder::new(params.compress);
    write_header(&mut out, now_ms, &params.functions, params.compress);
    let databases = keyspaces.first().map_or(0, |k| k.databases());
    for db in 0..databases {
        let keys: usize = keyspaces.iter().map(|k| k.db(db).len()).sum();
        if keys == 0 {
            continue;
        }
        let expires: usize = keyspaces.iter().map(|k| k.db(db).expires_len()).sum();
        rdb::write_select_db(&mut out, db as u32);
        rdb::write_resize_db(&mut out, keys as u64, expires as u64);
        let mut emit = |enc: &mut Encoder, out: &mut Vec<u8>, key: &[u8], entry: &Entry| {
            write_entry(enc, out, key, entry)?;
            written += 1;
            if written % PROGRESS_STEP_KEYS == 1 {
                progress(written);
            }
            if params.key_delay_us > 0 {
                std::thread::sleep(Duration::from_micros(params.key_delay_us));
            }
            if out.len() >= SERIALIZE_CHUNK_BYTES {
                crc.update(out);
                file.write(out)?;
                out.clear();
            }
            io::Result::Ok(())
        };
        if keyspaces.iter().any(|k| k.db(db).has_slot_index()) {
            // Cluster mode: keys grouped by slot, each slot led by its `slot-info`, as
            // Valkey writes them (a slot lives on one shard).
            for slot in 0..SLOTS {
                for ks in keyspaces {
                    let d = ks.db(db);
                    let n = d.keys_in_slot(slot);
                    if n > 0 {
                        write_slot_info(&mut enc, &mut out, slot, n, d.expires_in_slot(slot));
                        for (key, entry) in d.slot_entries(slot) {
                            emit(&mut enc, &mut out, key, entry)?;
                        }
                    }
                }
            }
        } else {
            for ks in keyspaces {
                for (key, entry) in ks.db(db).iter() {
                    emit(&mut enc, &mut out, key, entry)?;
                }
            }
        }
    }
    rdb::write_eof(&mut out);
    crc.update(&out);
    rdb::write_checksum(&mut out, if params.checksum { crc.value() } else { 0 });
    file.write(&out)
}

/// Valkey's `slot-info` aux field (cluster mode): `slot,keys,expires`, a sizing hint
/// before the keys of a slot.
pub fn write_slot_info(
    enc: &mut Encoder,
    out: &mut Vec<u8>,
    slot: u16,
    keys: usize,
    expires: usize,
) {
    let info = format!("{slot},{keys},{expires}");
    enc.write_aux(out, b"slot-info", AuxValue::Str(info.as_bytes()));
}

/// One key as an RDB record.
pub fn write_entry(
    enc: &mut Encoder,
    out: &mut Vec<u8>,
    key: &[u8],
    entry: &Entry,
) -> io::Result<()> {
    enc.write_string_entry(out, key, &entry.value, entry.expire_at_ms())
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Counts a shard's frozen pieces not yet written (or dropped): one per live guard.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A large value's frozen copy as a writer piece: the writer thread serializes it (its own
/// SELECTDB, then the key) when its turn comes, so the shard never spends that time.
/// `in_flight` counts it until it is written or dropped.
pub fn frozen_piece(
    db: usize,
    key: &[u8],
    entry: FrozenEntry,
    compress: bool,
    in_flight: &Arc<AtomicUsize>,
) -> Piece {
    let key = key.to_vec();
    let guard = InFlight::new(in_flight);
    Piece::Stream(Box::new(move |sink| {
        let _guard = guard;
        let mut enc = Encoder::new(compress);
        let mut out = Vec::with_capacity(rdb::FROZEN_FLUSH_BYTES + 4096);
        rdb::write_select_db(&mut out, db as u32);
        enc.write_frozen_entry(&mut out, &key, entry, &mut |o: &mut Vec<u8>| {
            sink(o)?;
            o.clear();
            io::Result::Ok(())
        })?;
        sink(&out)
    }))
}

/// Serializes the next slice of this shard's forkless cut into `out`, starting with a
/// SELECTDB whenever the database changes (`current_db` tracks it across slices and
/// chunks); large values come frozen and go to `frozen` as writer pieces instead. Stops
/// when `out` reaches [`SERIALIZE_CHUNK_BYTES`], after `max_keys`, once the monotonic
/// clock passes `deadline_ns` (checked every [`CUT_STEP_KEYS`] keys), or when the cut is
/// complete (returns true then).
#[allow(
    clippy::too_many_arguments,
    reason = "one slice's whole state, all distinct"
)]
pub fn cut_slice(
    keyspace: &mut Keyspace,
    enc: &mut Encoder,
    out: &mut Vec<u8>,
    frozen: &mut Vec<Piece>,
    frozen_in_flight: &Arc<AtomicUsize>,
    current_db: &mut Option<usize>,
    max_keys: usize,
    keys: &mut u64,
    deadline_ns: u64,
) -> io::Result<bool> {
    let compress = enc.compress();
    let mut failed = None;
    let mut emitted = 0usize;
    // Cluster mode: each database's `slot-info` fields (counts at the cut), once, before
    // this shard's keys of that database.
    for (db, counts) in keyspace.take_cut_slot_counts() {
        rdb::write_select_db(out, db as u32);
        *current_db = Some(db);
        for c in counts {
            write_slot_info(enc, out, c.slot, c.keys as usize, c.expires as usize);
        }
    }
    while out.len() < SERIALIZE_CHUNK_BYTES
        && emitted < max_keys
        && percore_net::sys::monotonic_ns() < deadline_ns
    {
        let step = (max_keys - emitted).min(CUT_STEP_KEYS);
        let before = *keys;
        let done = keyspace.cut_step(step, |db, key, entry| {
            *keys += 1;
            let entry = match entry {
                CutEntry::Value(entry) => entry,
                CutEntry::Frozen(fz) => {
                    frozen.push(frozen_piece(db, key, fz, compress, frozen_in_flight));
                    return;
                }
            };
            if *current_db != Some(db) {
                rdb::write_select_db(out, db as u32);
                *current_db = Some(db);
            }
            if let Err(e) = write_entry(enc, out, key, entry) {
                failed.get_or_insert(e);
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        emitted += (*keys - before) as usize + 1;
        if done {
            return Ok(true);
        }
    }
    Ok(false)
}
