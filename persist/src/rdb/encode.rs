//! RDB writer: appends records to a `Vec<u8>` exactly as Redis 7.0's `rdbSaveRio` does.
//!
//! A save is, in order:
//!
//! 1. [`write_header`] with the AUX fields (`redis-ver`, `redis-bits`, `ctime`,
//!    `used-mem`, `aof-base`, as `rdbSaveInfoAuxFields`);
//! 2. for each non-empty database, [`write_select_db`] and [`write_resize_db`], then
//!    [`Encoder::write_string_entry`] per key;
//! 3. [`write_eof`], then [`write_checksum`] with the CRC-64 of every byte written so
//!    far, EOF included (or 0 when checksums are off, as `rdbchecksum no`).
//!
//! The stateless pieces are free functions. Strings go through an [`Encoder`], which
//! owns the LZF match finder and its output buffer, so that encoding millions of keys
//! allocates nothing beyond the growth of the output `Vec`. [`encode_dump`] does a
//! whole save in memory.

use super::lists_hashes;
use super::{TYPE_STRING, enc, len_tag, opcode};
use crate::crc64::crc64;
use crate::lzf;
use percore_engine::frozen::{FrozenEntry, FrozenValue};
use percore_engine::number::{I64_MAX_DECIMAL_BYTES, format_i64, parse_i64_strict};
use percore_engine::{StrValue, Value};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// One key for [`encode_dump`]: key, value, expiry in Unix milliseconds.
pub type DumpEntry = (Vec<u8>, Value, Option<i64>);
/// One database for [`encode_dump`]: its number and its keys.
pub type DumpDb = (u32, Vec<DumpEntry>);

/// The format version written (Redis 7.0's `RDB_VERSION`).
pub const RDB_VERSION: u32 = 10;
/// The 9-byte magic for [`RDB_VERSION`]: `"REDIS%04d"`.
const MAGIC: &[u8; 9] = b"REDIS0010";
/// `redis-ver` written by [`encode_dump`]: the Redis release percore answers as.
pub const DEFAULT_REDIS_VER: &str = "7.0.15";
/// Strings this long or shorter are tried as integers (`rdbSaveRawString`: 11 bytes
/// hold every `i32` in decimal).
const INT_ENCODING_MAX_BYTES: usize = 11;
/// Strings this long or shorter are never LZF-compressed (`rdbSaveRawString`).
const LZF_MIN_INPUT_BYTES: usize = 20;
/// Compression must save more than this many bytes (`rdbSaveLzfStringObject`).
const LZF_MIN_SAVING_BYTES: usize = 4;
/// After this many LZF attempts in a row that saved nothing, the encoder tries only one
/// string in [`LZF_SAMPLE_EVERY`] (see [`Encoder`]).
const LZF_FAILED_STREAK: u32 = 64;
/// While skipping, every this-many-th candidate string is still tried at first; each
/// sampled attempt that fails doubles the interval, up to [`LZF_SAMPLE_EVERY_MAX`]. One
/// success brings back trying every string.
const LZF_SAMPLE_EVERY: u32 = 16;
/// The longest interval between sampled LZF attempts.
const LZF_SAMPLE_EVERY_MAX: u32 = 256;
/// The LZF output buffer is dropped after a string longer than this, so one huge value
/// does not pin its size in memory for the rest of the save.
const LZF_SCRATCH_KEEP_MAX_BYTES: usize = 1 << 20;

/// [`Encoder::write_frozen_entry`] hands its output over whenever it holds this much.
pub const FROZEN_FLUSH_BYTES: usize = 256 * 1024;

/// An AUX field value. Integers are stored as their decimal text through the string
/// encoder, so small ones become integer encodings (`rdbSaveAuxFieldStrInt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuxValue<'a> {
    Int(i64),
    Str(&'a [u8]),
}

/// A value the writer has no RDB encoding for (a type added to the engine before its
/// RDB support).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    UnsupportedType(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::UnsupportedType(t) => {
                write!(f, "RDB writer: no encoding for values of type {t}")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// `rdbSaveLen`: a length in 1, 2, 5 or 9 bytes.
#[inline]
pub fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[len_tag::BITS_14 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(len_tag::BITS_32);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(len_tag::BITS_64);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbEncodeInteger`: `value` as INT8/16/32 when it fits, else `false`.
#[inline]
fn write_int_encoded(out: &mut Vec<u8>, value: i64) -> bool {
    if let Ok(v) = i8::try_from(value) {
        out.extend_from_slice(&[enc::INT8, v as u8]);
    } else if let Ok(v) = i16::try_from(value) {
        let [a, b] = v.to_le_bytes();
        out.extend_from_slice(&[enc::INT16, a, b]);
    } else if let Ok(v) = i32::try_from(value) {
        let [a, b, c, d] = v.to_le_bytes();
        out.extend_from_slice(&[enc::INT32, a, b, c, d]);
    } else {
        return false;
    }
    true
}

/// A plain length-prefixed string, no special encoding.
#[inline]
fn write_plain(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `rdbSaveLongLongAsStringObject`: an integer-encoded string value.
#[inline]
fn write_int_string(out: &mut Vec<u8>, value: i64) {
    if !write_int_encoded(out, value) {
        write_plain(out, format_i64(value, &mut [0; I64_MAX_DECIMAL_BYTES]));
    }
}

/// An AUX record without LZF (see [`write_header`]).
fn write_aux_plain(out: &mut Vec<u8>, key: &[u8], value: AuxValue<'_>) {
    out.push(opcode::AUX);
    write_raw_string_uncompressed(out, key);
    match value {
        AuxValue::Int(i) => {
            write_raw_string_uncompressed(out, format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]));
        }
        AuxValue::Str(s) => write_raw_string_uncompressed(out, s),
    }
}

/// `rdbSaveRawString` with compression off.
#[inline]
fn write_raw_string_uncompressed(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() <= INT_ENCODING_MAX_BYTES
        && let Some(i) = parse_i64_strict(bytes)
        && write_int_encoded(out, i)
    {
        return;
    }
    write_plain(out, bytes);
}

/// The magic (`REDIS0010`) and the AUX fields, in the given order.
///
/// AUX strings are never LZF-compressed here. Redis compresses an AUX value longer than
/// 20 bytes when that saves 5 or more; none of the fields it writes (`redis-ver`,
/// `redis-bits`, `ctime`, `used-mem`, `repl-*`, `aof-base`) can, so the output is the
/// same. [`Encoder::write_aux`] applies compression for other fields.
pub fn write_header(out: &mut Vec<u8>, aux: &[(&[u8], AuxValue<'_>)]) {
    out.extend_from_slice(MAGIC);
    for &(key, value) in aux {
        write_aux_plain(out, key, value);
    }
}

/// SELECTDB: the following keys belong to database `db`.
pub fn write_select_db(out: &mut Vec<u8>, db: u32) {
    out.push(opcode::SELECTDB);
    write_len(out, u64::from(db));
}

/// RESIZEDB: the current database's key count and count of keys with an expiry.
pub fn write_resize_db(out: &mut Vec<u8>, db_size: u64, expires_size: u64) {
    out.push(opcode::RESIZEDB);
    write_len(out, db_size);
    write_len(out, expires_size);
}

/// The EOF opcode. The checksum that follows covers it.
pub fn write_eof(out: &mut Vec<u8>) {
    out.push(opcode::EOF);
}

/// The 8-byte little-endian CRC-64 after EOF; 0 means "not computed".
pub fn write_checksum(out: &mut Vec<u8>, crc: u64) {
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The string writer: Redis's `rdbSaveRawString` with `rdbcompression` on or off.
///
/// Keep one per save (or per thread) and pass it every key: it owns the LZF hash table
/// (256 KiB, allocated on the first compressed string) and a reusable output buffer, so
/// the per-key path allocates nothing but the output `Vec`'s growth.
///
/// One departure from Redis: an LZF attempt that fails costs as much as one that
/// succeeds (the match finder runs over the whole string), and on incompressible data
/// (random bytes, hex, already-compressed blobs) it was two thirds of a save's CPU time.
/// So after [`LZF_FAILED_STREAK`] failed attempts in a row the encoder tries only every
/// [`LZF_SAMPLE_EVERY`]-th candidate (then every 32nd, ... up to every
/// [`LZF_SAMPLE_EVERY_MAX`]-th while the samples keep failing) and writes the others
/// plain, until one sampled attempt compresses; then it tries every string again. The
/// file stays a valid RDB file that Redis loads the same way; on mixed data some
/// compressible strings right after a long incompressible run (at most
/// `LZF_SAMPLE_EVERY_MAX - 1` in a row) may be stored uncompressed.
#[derive(Debug, Default)]
pub struct Encoder {
    compress: bool,
    lzf: Option<lzf::Compressor>,
    scratch: Vec<u8>,
    /// LZF attempts in a row that did not save space.
    lzf_failures: u32,
    /// Candidates passed over since the last sampled attempt (while skipping).
    lzf_passed: u32,
    /// The current interval between sampled attempts (while skipping).
    lzf_sample_every: u32,
}

impl Encoder {
    /// `compress`: LZF-compress strings longer than 20 bytes when it saves space, as
    /// `rdbcompression yes` (Redis's default).
    pub fn new(compress: bool) -> Self {
        Self {
            compress,
            lzf_sample_every: LZF_SAMPLE_EVERY,
            ..Self::default()
        }
    }

    pub fn compress(&self) -> bool {
        self.compress
    }

    /// `rdbSaveRawString`: an integer encoding for short canonical integers, else LZF
    /// when enabled and it saves more than 4 bytes, else a plain length-prefixed string.
    #[inline]
    pub fn write_string(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if bytes.len() <= INT_ENCODING_MAX_BYTES
            && let Some(i) = parse_i64_strict(bytes)
            && write_int_encoded(out, i)
        {
            return;
        }
        if self.compress
            && bytes.len() > LZF_MIN_INPUT_BYTES
            && self.lzf_worth_trying()
            && self.write_lzf(out, bytes)
        {
            return;
        }
        write_plain(out, bytes);
    }

    /// Whether to run the LZF match finder on the next candidate string (see the type's
    /// documentation).
    #[inline]
    fn lzf_worth_trying(&mut self) -> bool {
        if self.lzf_failures < LZF_FAILED_STREAK {
            return true;
        }
        self.lzf_passed += 1;
        if self.lzf_passed < self.lzf_sample_every {
            return false;
        }
        self.lzf_passed = 0;
        true
    }

    /// `rdbSaveLzfStringObject`: the LZF form if it fits in `len - 4` bytes.
    fn write_lzf(&mut self, out: &mut Vec<u8>, bytes: &[u8]) -> bool {
        let limit = bytes.len() - LZF_MIN_SAVING_BYTES;
        if self.scratch.len() < limit {
            self.scratch.resize(limit, 0);
        }
        let compressor = self.lzf.get_or_insert_with(lzf::Compressor::new);
        let packed = compressor.compress(bytes, &mut self.scratch[..limit]);
        if packed > 0 {
            out.push(enc::LZF);
            write_len(out, packed as u64);
            write_len(out, bytes.len() as u64);
            out.extend_from_slice(&self.scratch[..packed]);
        }
        if self.scratch.len() > LZF_SCRATCH_KEEP_MAX_BYTES {
            self.scratch = Vec::new();
        }
        if packed > 0 {
            self.lzf_failures = 0;
            self.lzf_sample_every = LZF_SAMPLE_EVERY;
        } else {
            self.lzf_failures = self.lzf_failures.saturating_add(1);
            if self.lzf_failures > LZF_FAILED_STREAK {
                // A sampled attempt failed too: sample less often.
                self.lzf_sample_every = (self.lzf_sample_every * 2).min(LZF_SAMPLE_EVERY_MAX);
            }
        }
        packed > 0
    }

    /// A string value as `rdbSaveStringObject` writes it: an integer value in an integer
    /// encoding (or as its decimal text when outside `i32`), text as [`Self::write_string`].
    #[inline]
    pub fn write_str_value(&mut self, out: &mut Vec<u8>, value: &StrValue) {
        match value {
            StrValue::Int(i) => write_int_string(out, *i),
            StrValue::Inline(s) => self.write_string(out, s.as_bytes()),
            StrValue::Raw(v) => self.write_string(out, v),
        }
    }

    /// One key (`rdbSaveKeyValuePair`): `[EXPIRETIME_MS ms]`, the type byte, the key, the
    /// value. Writes nothing and returns an error for a type the format has no writer
    /// for yet.
    #[inline]
    pub fn write_string_entry(
        &mut self,
        out: &mut Vec<u8>,
        key: &[u8],
        value: &Value,
        expire_ms: Option<i64>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        if let Some(ms) = expire_ms {
            out.push(opcode::EXPIRETIME_MS);
            out.extend_from_slice(&ms.to_le_bytes());
        }
        let type_at = out.len();
        out.push(0);
        self.write_string(out, key);
        match self.write_value_body(out, value) {
            Ok(t) => {
                out[type_at] = t;
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// One value as DUMP carries it (`rdbSaveObjectType` + `rdbSaveObject`): the type
    /// byte, then the value, exactly as [`Self::write_string_entry`] writes them. Writes
    /// nothing and returns an error for a type the format has no writer for yet.
    pub fn write_value(&mut self, out: &mut Vec<u8>, value: &Value) -> Result<(), EncodeError> {
        let type_at = out.len();
        out.push(0);
        match self.write_value_body(out, value) {
            Ok(t) => {
                out[type_at] = t;
                Ok(())
            }
            Err(e) => {
                out.truncate(type_at);
                Err(e)
            }
        }
    }

    /// Writes `value` in its type's form and returns the type byte that goes before it
    /// (sets and sorted sets pick their form while writing).
    #[inline]
    fn write_value_body(&mut self, out: &mut Vec<u8>, value: &Value) -> Result<u8, EncodeError> {
        // sets, sorted sets
        if let Value::Set(_) | Value::ZSet(_) | Value::Stream(_) = value {
            let mut write = |o: &mut Vec<u8>, b: &[u8]| self.write_string(o, b);
            return Ok(match value {
                Value::Set(s) => super::collections::encode_set(s, out, &mut write),
                Value::ZSet(z) => super::collections::encode_zset(z, out, &mut write),
                // streams
                Value::Stream(st) => super::streams::encode_stream(st, out, &mut write),
                _ => unreachable!("matched above"),
            });
        }
        let type_byte = match value {
            Value::Str(_) => TYPE_STRING,
            // lists and hashes
            Value::List(_) => lists_hashes::TYPE_LIST_QUICKLIST_2,
            Value::Hash(h) if h.as_listpack().is_some() => lists_hashes::TYPE_HASH_LISTPACK,
            Value::Hash(_) => lists_hashes::TYPE_HASH,
            // end lists and hashes
            #[allow(unreachable_patterns, reason = "more value types arrive later")]
            _ => return Err(EncodeError::UnsupportedType(value.type_name())),
        };
        match value {
            Value::Str(s) => self.write_str_value(out, s),
            // lists and hashes
            Value::List(l) => {
                write_len(out, l.nodes().len() as u64);
                for node in l.nodes() {
                    write_len(out, lists_hashes::QUICKLIST_NODE_PACKED);
                    self.write_string(out, node.as_bytes());
                }
            }
            Value::Hash(h) => {
                if let Some(lp) = h.as_listpack() {
                    self.write_string(out, lp.as_bytes());
                } else {
                    write_len(out, h.len() as u64);
                    let mut kb = [0; I64_MAX_DECIMAL_BYTES];
                    let mut vb = [0; I64_MAX_DECIMAL_BYTES];
                    for (k, v) in h {
                        self.write_string(out, k.as_bytes(&mut kb));
                        self.write_string(out, v.as_bytes(&mut vb));
                    }
                }
            }
            // end lists and hashes
            #[allow(unreachable_patterns, reason = "more value types arrive later")]
            _ => {}
        }
        Ok(type_byte)
    }

    /// One key from a large value's frozen copy (see `percore_engine::frozen`), in the
    /// bytes [`Self::write_string_entry`] writes for the same value, handing `out` to
    /// `flush` each time it holds [`FROZEN_FLUSH_BYTES`] (`flush` empties it; what is left
    /// at the end stays in `out`). The frozen parts are released as they are written.
    pub fn write_frozen_entry<E>(
        &mut self,
        out: &mut Vec<u8>,
        key: &[u8],
        entry: FrozenEntry,
        flush: &mut impl FnMut(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(ms) = entry.expire_at_ms {
            out.push(opcode::EXPIRETIME_MS);
            out.extend_from_slice(&ms.to_le_bytes());
        }
        match entry.value {
            FrozenValue::ZSet(z) => {
                out.push(super::collections::types::ZSET_2);
                self.write_string(out, key);
                write_len(out, z.len() as u64);
                z.drain_rev(|score, member| {
                    self.write_string(out, member);
                    out.extend_from_slice(&score.to_le_bytes());
                    if out.len() >= FROZEN_FLUSH_BYTES {
                        flush(out)?;
                    }
                    Ok(())
                })
            }
            FrozenValue::List(l) => {
                out.push(lists_hashes::TYPE_LIST_QUICKLIST_2);
                self.write_string(out, key);
                write_len(out, l.node_count() as u64);
                l.drain(|node| {
                    write_len(out, lists_hashes::QUICKLIST_NODE_PACKED);
                    self.write_string(out, node.as_bytes());
                    if out.len() >= FROZEN_FLUSH_BYTES {
                        flush(out)?;
                    }
                    Ok(())
                })
            }
        }
    }

    /// An AUX field with this encoder's compression setting (`rdbSaveAuxField`).
    pub fn write_aux(&mut self, out: &mut Vec<u8>, key: &[u8], value: AuxValue<'_>) {
        out.push(opcode::AUX);
        self.write_string(out, key);
        match value {
            AuxValue::Int(i) => {
                self.write_string(out, format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]));
            }
            AuxValue::Str(s) => self.write_string(out, s),
        }
    }
}

/// A whole RDB file in memory with the AUX fields Redis 7.0 writes: `redis-ver`
/// ([`DEFAULT_REDIS_VER`]), `redis-bits` 64, `ctime` (now), `used-mem` 0, `aof-base` 0.
/// See [`encode_dump_with_aux`].
pub fn encode_dump(dbs: &[DumpDb], compress: bool, checksum: bool) -> Result<Vec<u8>, EncodeError> {
    let ctime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let aux: [(&[u8], AuxValue<'_>); 5] = [
        (b"redis-ver", AuxValue::Str(DEFAULT_REDIS_VER.as_bytes())),
        (b"redis-bits", AuxValue::Int(64)),
        (b"ctime", AuxValue::Int(ctime)),
        (b"used-mem", AuxValue::Int(0)),
        (b"aof-base", AuxValue::Int(0)),
    ];
    encode_dump_with_aux(dbs, &aux, compress, checksum)
}

/// A whole RDB file in memory: header with `aux`, each database with at least one key
/// (empty ones are skipped, as Redis does) in the given order, EOF and the checksum
/// (zero when `checksum` is false).
pub fn encode_dump_with_aux(
    dbs: &[DumpDb],
    aux: &[(&[u8], AuxValue<'_>)],
    compress: bool,
    checksum: bool,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(compress);
    write_header(&mut out, aux);
    for (db, entries) in dbs {
        if entries.is_empty() {
            continue;
        }
        write_select_db(&mut out, *db);
        let expires = entries.iter().filter(|e| e.2.is_some()).count();
        write_resize_db(&mut out, entries.len() as u64, expires as u64);
        for (key, value, expire_ms) in entries {
            encoder.write_string_entry(&mut out, key, value, *expire_ms)?;
        }
    }
    write_eof(&mut out);
    let crc = if checksum { crc64(&out) } else { 0 };
    write_checksum(&mut out, crc);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_bytes(len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_len(&mut out, len);
        out
    }

    fn string_bytes(s: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(compress).write_string(&mut out, s);
        out
    }

    #[test]
    fn length_forms() {
        assert_eq!(len_bytes(0), [0x00]);
        assert_eq!(len_bytes(63), [0x3f]);
        assert_eq!(len_bytes(64), [0x40, 0x40]);
        assert_eq!(len_bytes(16383), [0x7f, 0xff]);
        assert_eq!(len_bytes(16384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(
            len_bytes(u64::from(u32::MAX)),
            [0x80, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(len_bytes(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn integer_encodings() {
        assert_eq!(string_bytes(b"0", false), [0xc0, 0]);
        assert_eq!(string_bytes(b"-128", false), [0xc0, 0x80]);
        assert_eq!(string_bytes(b"127", false), [0xc0, 0x7f]);
        assert_eq!(string_bytes(b"128", false), [0xc1, 0x80, 0]);
        assert_eq!(string_bytes(b"-32768", false), [0xc1, 0, 0x80]);
        assert_eq!(string_bytes(b"32768", false), [0xc2, 0, 0x80, 0, 0]);
        assert_eq!(string_bytes(b"-2147483648", false), [0xc2, 0, 0, 0, 0x80]);
        // Outside i32 or not canonical: plain text.
        assert_eq!(string_bytes(b"2147483648", false), b"\x0a2147483648");
        assert_eq!(string_bytes(b"007", false), b"\x03007");
        assert_eq!(string_bytes(b"-0", false), b"\x02-0");
        assert_eq!(string_bytes(b"+1", false), b"\x02+1");
        assert_eq!(string_bytes(b"", false), [0]);
    }

    #[test]
    fn int_values_outside_i32_are_decimal_text() {
        let mut out = Vec::new();
        let mut e = Encoder::new(true);
        e.write_str_value(&mut out, &StrValue::Int(i64::MIN));
        assert_eq!(out, b"\x14-9223372036854775808");
        out.clear();
        e.write_str_value(&mut out, &StrValue::Int(-5));
        assert_eq!(out, [0xc0, 0xfb]);
    }

    #[test]
    fn lzf_only_when_long_and_smaller() {
        let twenty = [b'a'; 20];
        assert_eq!(string_bytes(&twenty, true)[0], 20);
        let long = [b'a'; 21];
        let packed = string_bytes(&long, true);
        assert_eq!(packed[0], 0xc3);
        assert_eq!(packed[2], 21);
        assert_eq!(string_bytes(&long, false)[0], 21);
        let noise: Vec<u8> = (0..100u32).map(|i| (i * 151 % 251) as u8).collect();
        assert_eq!(string_bytes(&noise, true)[..2], [0x40, 100]);
    }

    /// Incompressible strings (each distinct: `i * 151 % 251` walks the bytes), and
    /// compressible ones.
    fn noise(seed: u32) -> Vec<u8> {
        (0..100u32)
            .map(|i| ((i + seed) * 151 % 251) as u8 ^ seed as u8)
            .collect()
    }

    fn is_lzf(encoded: &[u8]) -> bool {
        encoded[0] == 0xc3
    }

    #[test]
    fn lzf_attempts_thin_out_after_a_failed_streak_and_come_back() {
        let mut enc = Encoder::new(true);
        let mut encode = |bytes: &[u8]| {
            let mut out = Vec::new();
            enc.write_string(&mut out, bytes);
            out
        };
        // The streak: every attempt fails, nothing is compressed.
        for i in 0..LZF_FAILED_STREAK {
            assert!(!is_lzf(&encode(&noise(i))));
        }
        // Now only every LZF_SAMPLE_EVERY-th candidate is tried, and each failed sample
        // doubles the interval up to LZF_SAMPLE_EVERY_MAX.
        let mut every = LZF_SAMPLE_EVERY;
        for round in 0..6 {
            let noise_run = (0..every).map(|i| encode(&noise(1000 + 300 * round + i)));
            assert!(noise_run.into_iter().all(|e| !is_lzf(&e)));
            every = (every * 2).min(LZF_SAMPLE_EVERY_MAX);
        }
        assert_eq!(every, LZF_SAMPLE_EVERY_MAX);
        // Compressible strings in between samples are written plain (and still decode
        // to themselves); the sampled one compresses...
        let compressible = [b'z'; 100];
        for _ in 0..LZF_SAMPLE_EVERY_MAX - 1 {
            assert_eq!(
                encode(&compressible),
                [[0x40, 100].as_slice(), &compressible].concat()
            );
        }
        assert!(is_lzf(&encode(&compressible)));
        // ...and from then on every string is tried again.
        for _ in 0..2 * LZF_SAMPLE_EVERY {
            assert!(is_lzf(&encode(&compressible)));
        }
    }

    #[test]
    fn lzf_streak_needs_consecutive_failures() {
        let mut enc = Encoder::new(true);
        let compressible = [b'q'; 60];
        for round in 0..10 * LZF_FAILED_STREAK {
            let mut out = Vec::new();
            enc.write_string(&mut out, &noise(round));
            out.clear();
            if round % (LZF_FAILED_STREAK / 2) == 0 {
                enc.write_string(&mut out, &compressible);
                assert!(
                    is_lzf(&out),
                    "round {round}: a compressible string went plain"
                );
            }
        }
    }

    #[test]
    fn entry_with_expiry() {
        let mut out = Vec::new();
        Encoder::new(false)
            .write_string_entry(&mut out, b"k", &Value::from_bytes(b"v"), Some(0x0102))
            .unwrap();
        assert_eq!(out, [0xfc, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1, b'k', 1, b'v']);
    }

    /// A large value's frozen copy is written as the value itself, across flushes.
    #[test]
    fn frozen_entries_write_the_same_bytes() {
        use percore_engine::frozen::FREEZE_MIN_ELEMENTS;
        use percore_engine::lists::End;
        use percore_engine::zsets::{ZSetLimits, ZSetValue};
        // Enough to need several flushes.
        let n = FREEZE_MIN_ELEMENTS * 12;
        let mut z = ZSetValue::new_for(1, &ZSetLimits::default());
        let mut l = percore_engine::List::new();
        for i in 0..n {
            z.insert(
                format!("member:{i}").as_bytes(),
                (i % 977) as f64 * 0.5,
                &ZSetLimits::default(),
            );
            l.push(End::Tail, format!("item:{i}").as_bytes(), -2);
        }
        for (value, expire) in [
            (Value::ZSet(z), Some(1_700_000_000_123)),
            (Value::List(Box::new(l)), None),
        ] {
            let mut value = value;
            let mut want = Vec::new();
            Encoder::new(true)
                .write_string_entry(&mut want, b"big", &value, expire)
                .unwrap();
            let frozen = value.freeze_if_large().expect("large enough to freeze");
            let entry = FrozenEntry {
                value: frozen,
                expire_at_ms: expire,
            };
            let mut got = Vec::new();
            let mut out = Vec::new();
            let mut flushes = 0;
            Encoder::new(true)
                .write_frozen_entry(&mut out, b"big", entry, &mut |o: &mut Vec<u8>| {
                    flushes += 1;
                    got.append(o);
                    Ok::<(), ()>(())
                })
                .unwrap();
            got.append(&mut out);
            assert_eq!(got, want);
            // The unchanged live value is still encoded the same way.
            let mut again = Vec::new();
            Encoder::new(true)
                .write_string_entry(&mut again, b"big", &value, expire)
                .unwrap();
            assert_eq!(again, want);
            if want.len() > 2 * FROZEN_FLUSH_BYTES {
                assert!(flushes > 0, "{} bytes in one piece", want.len());
            }
        }
    }

    #[test]
    fn header_aux_fields() {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &[
                (b"redis-ver", AuxValue::Str(b"7.0.15")),
                (b"ctime", AuxValue::Int(1_700_000_000)),
                (b"used-mem", AuxValue::Int(123_456_789_012)),
            ],
        );
        let mut want = b"REDIS0010".to_vec();
        want.extend_from_slice(b"\xfa\x09redis-ver\x067.0.15");
        want.extend_from_slice(b"\xfa\x05ctime\xc2");
        want.extend_from_slice(&1_700_000_000i32.to_le_bytes());
        want.extend_from_slice(b"\xfa\x08used-mem\x0c123456789012");
        assert_eq!(out, want);
    }
}
