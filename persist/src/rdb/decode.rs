//! RDB loader: walks a whole file held in memory and hands each record to a callback.
//!
//! [`load`] reads the signature, then records until EOF, then the checksum. The caller
//! memory-maps the file and passes the bytes; keys come out borrowed from them (or from
//! a buffer inside the loader when the key was LZF- or integer-encoded), values as
//! owned [`Value`]s ready for the keyspace.
//!
//! The loader never panics and never skips data silently: anything it cannot load (a
//! list, hash, set, sorted set, stream, module value, function library) stops the load
//! with an [`RdbError`] that names the byte offset. Every length is checked against the
//! bytes left before anything is allocated for it.
//!
//! A callback rather than an `Iterator`: keys borrow from decode buffers inside the
//! loader, which an iterator's items could not.
//!
//! Records are handed out while the file is read and the CRC-64 is checked only at the
//! end (as Redis does), so when [`load`] returns an error the caller must throw away
//! everything it received.

use super::collections::types::{
    SET, SET_INTSET, SET_LISTPACK, ZSET, ZSET_2, ZSET_LISTPACK, ZSET_ZIPLIST,
};
use super::error::{RdbError, RdbErrorKind};
use super::lists_hashes;
use super::{TYPE_STRING, enc, len_tag, opcode};
use crate::crc64::Crc64;
use crate::lzf;
use percore_engine::number::{I64_MAX_DECIMAL_BYTES, format_i64};
use percore_engine::sets::SetLimits;
use percore_engine::zsets::ZSetLimits;
use percore_engine::{StrValue, Value};

/// Highest `REDIS` version read: 11 (Redis 7.2, Valkey 7.2 to 8.1). Redis 7.0 writes 10.
pub const MAX_REDIS_VERSION: u32 = 11;
/// The `VALKEY` version read (Valkey 9.0 and 9.1 write `VALKEY080`).
pub const VALKEY_VERSION: u32 = 80;
/// First version with a CRC-64 after EOF.
const FIRST_CHECKSUM_VERSION: u32 = 5;
/// The CRC is brought up to date every this many bytes, while they are still in cache.
const CRC_CHUNK_BYTES: usize = 64 * 1024;
/// Smallest key record (type byte, empty key, empty value); bounds RESIZEDB hints.
const MIN_ENTRY_BYTES: u64 = 3;

/// How to load.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// SELECTDB must name a database below this (Redis's `databases`, default 16).
    pub databases: u32,
    /// Check the CRC-64 (Redis's `rdbchecksum`, default on).
    pub verify_checksum: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            databases: 16,
            verify_checksum: true,
        }
    }
}

impl LoadOptions {
    /// SELECTDB must name a database below `databases`.
    pub fn with_databases(mut self, databases: u32) -> Self {
        self.databases = databases;
        self
    }

    /// Whether to check the CRC-64.
    pub fn with_checksum(mut self, verify: bool) -> Self {
        self.verify_checksum = verify;
        self
    }
}

/// The signature family of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RdbFormat {
    /// `REDIS` + 4 digits: Redis, and Valkey before 9.0.
    Redis,
    /// `VALKEY` + 3 digits: Valkey 9.0 and later.
    Valkey,
}

/// What became of the checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumCheck {
    /// Stored and computed checksums agree.
    Verified(u64),
    /// The stored checksum is 0: the file was saved with `rdbchecksum no`.
    Disabled,
    /// [`LoadOptions::verify_checksum`] was off.
    Skipped,
    /// Versions before 5 have no checksum.
    Absent,
}

/// A finished load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSummary {
    pub format: RdbFormat,
    pub version: u32,
    /// Keys handed to the callback.
    pub keys: u64,
    /// Of those, keys with an expiry.
    pub keys_with_expiry: u64,
    /// AUX fields in file order (`redis-ver`, `redis-bits`, `ctime`, `used-mem`, ...),
    /// integer-encoded values as decimal text.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub checksum: ChecksumCheck,
    /// Bytes of RDB data, checksum included.
    pub bytes: u64,
    /// Bytes after the RDB data. Redis ignores them (an old AOF with an RDB preamble
    /// continues with commands there).
    pub trailing_bytes: u64,
}

impl LoadSummary {
    /// The first AUX value stored under `key`.
    pub fn aux(&self, key: &[u8]) -> Option<&[u8]> {
        self.aux
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// One record of the file, in file order. Byte slices live until the callback returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record<'a> {
    /// An AUX field.
    Aux { key: &'a [u8], value: &'a [u8] },
    /// The following keys belong to this database (below [`LoadOptions::databases`]).
    SelectDb(u32),
    /// Sizes of the current database, as hints for pre-sizing. They are clamped to what
    /// the rest of the file could hold, so reserving from them is safe.
    ResizeDb { db_size: u64, expires_size: u64 },
    /// A string key. `expire_ms` is Unix milliseconds and may lie in the past: the
    /// caller decides whether to drop such keys (a primary loading from disk does).
    Entry {
        db: u32,
        key: &'a [u8],
        value: Value,
        expire_ms: Option<i64>,
        /// Byte offset of the record in the file (for progress reports).
        offset: u64,
    },
    /// A function library's code (`RDB_OPCODE_FUNCTION2`, Redis 7.0's functions).
    Function(&'a [u8]),
}

/// Loads an RDB file from `data`, calling `on_record` for every record in file order.
///
/// Stops at the first error, including one returned by `on_record` (see
/// [`RdbError::rejected`]; its offset becomes the record's). Bytes after the checksum
/// are not read; [`LoadSummary::trailing_bytes`] counts them.
pub fn load(
    data: &[u8],
    opts: &LoadOptions,
    mut on_record: impl FnMut(Record<'_>) -> Result<(), RdbError>,
) -> Result<LoadSummary, RdbError> {
    let (format, version) = signature(data)?;
    let mut r = Reader { data, pos: 9 };
    let mut summary = LoadSummary {
        format,
        version,
        keys: 0,
        keys_with_expiry: 0,
        aux: Vec::new(),
        checksum: ChecksumCheck::Absent,
        bytes: 0,
        trailing_bytes: 0,
    };
    let checksummed = version >= FIRST_CHECKSUM_VERSION;
    let mut crc = (checksummed && opts.verify_checksum).then(Crc64::new);
    let mut crc_pos = 0;
    // Decoded keys and AUX strings (LZF or integer encoded) live here while borrowed.
    let mut key_buf = Vec::new();
    let mut value_buf = Vec::new();
    let mut db = 0u32;
    let mut expire_ms = None;
    // Where the current key record starts (its first prefix opcode).
    let mut record_start = None;
    loop {
        if let Some(crc) = crc.as_mut()
            && r.pos - crc_pos >= CRC_CHUNK_BYTES
        {
            crc.update(&data[crc_pos..r.pos]);
            crc_pos = r.pos;
        }
        let at = r.pos;
        let byte = r.u8()?;
        match byte {
            opcode::EXPIRETIME_MS => {
                record_start.get_or_insert(at);
                expire_ms = Some(i64::from_le_bytes(r.array()?));
            }
            opcode::EXPIRETIME => {
                record_start.get_or_insert(at);
                expire_ms = Some(i64::from(i32::from_le_bytes(r.array()?)) * 1000);
            }
            opcode::FREQ => {
                record_start.get_or_insert(at);
                r.u8()?;
            }
            opcode::IDLE => {
                record_start.get_or_insert(at);
                r.length()?;
            }
            opcode::EOF => break,
            opcode::SELECTDB => {
                let id = r.length()?;
                db = u32::try_from(id)
                    .ok()
                    .filter(|&d| d < opts.databases)
                    .ok_or_else(|| {
                        RdbError::new(
                            RdbErrorKind::DbOutOfRange {
                                db: id,
                                databases: opts.databases,
                            },
                            at as u64,
                        )
                    })?;
                deliver(&mut on_record, Record::SelectDb(db), at)?;
            }
            opcode::RESIZEDB => {
                let db_size = r.length()?;
                let expires_size = r.length()?;
                let most = (data.len() - r.pos) as u64 / MIN_ENTRY_BYTES;
                let record = Record::ResizeDb {
                    db_size: db_size.min(most),
                    expires_size: expires_size.min(most),
                };
                deliver(&mut on_record, record, at)?;
            }
            opcode::AUX => {
                let key = r.string()?.into_bytes(&mut key_buf)?;
                let value = r.string()?.into_bytes(&mut value_buf)?;
                summary.aux.push((key.to_vec(), value.to_vec()));
                deliver(&mut on_record, Record::Aux { key, value }, at)?;
            }
            opcode::SLOT_INFO => {
                // Valkey's per-slot sizes: slot id, keys, keys with expiry. A hint only.
                for _ in 0..3 {
                    r.length()?;
                }
            }
            // Every value type percore stores: the key, then the value in its type's form.
            t if is_value_type(t) => {
                let start = record_start.take().unwrap_or(at);
                let key = r.string()?.into_bytes(&mut key_buf)?;
                // An empty list or hash is skipped, as redis-server does.
                let value = read_value(&mut r, t, &mut value_buf)?;
                deliver_entry(
                    &mut on_record,
                    &mut summary,
                    (db, key),
                    value,
                    expire_ms.take(),
                    start,
                )?;
            }
            opcode::FUNCTION2 => {
                let code = r.string()?.into_bytes(&mut value_buf)?;
                deliver(&mut on_record, Record::Function(code), at)?;
            }
            opcode::SLOT_IMPORT | opcode::FUNCTION_PRE_GA | opcode::MODULE_AUX => {
                return Err(RdbError::new(
                    RdbErrorKind::UnsupportedOpcode(byte),
                    at as u64,
                ));
            }
            _ => {
                return Err(RdbError::new(
                    RdbErrorKind::UnsupportedType(byte),
                    at as u64,
                ));
            }
        }
    }
    let eof_end = r.pos;
    if checksummed {
        let stored = u64::from_le_bytes(r.array()?);
        summary.checksum = match crc.as_mut() {
            None => ChecksumCheck::Skipped,
            Some(_) if stored == 0 => ChecksumCheck::Disabled,
            Some(crc) => {
                crc.update(&data[crc_pos..eof_end]);
                let computed = crc.value();
                if computed != stored {
                    return Err(RdbError::new(
                        RdbErrorKind::ChecksumMismatch {
                            expected: stored,
                            computed,
                        },
                        eof_end as u64,
                    ));
                }
                ChecksumCheck::Verified(stored)
            }
        };
    }
    summary.bytes = r.pos as u64;
    summary.trailing_bytes = (data.len() - r.pos) as u64;
    Ok(summary)
}

/// Whether `t` is a value type byte percore loads.
fn is_value_type(t: u8) -> bool {
    matches!(
        t,
        TYPE_STRING
            | SET
            | SET_INTSET
            | SET_LISTPACK
            | ZSET
            | ZSET_2
            | ZSET_ZIPLIST
            | ZSET_LISTPACK
    ) || lists_hashes::handles(t)
        || super::streams::handles(t)
}

/// The value of type `t` at the reader (`rdbLoadObject`); `None` for an empty list or
/// hash.
fn read_value(r: &mut Reader<'_>, t: u8, buf: &mut Vec<u8>) -> Result<Option<Value>, RdbError> {
    match t {
        TYPE_STRING => Ok(Some(r.string()?.into_value()?)),
        t if lists_hashes::handles(t) => read_collection(r, t, buf),
        // streams
        t if super::streams::handles(t) => Ok(Some(super::streams::read_stream(r, t)?)),
        _ => Ok(Some(r.collection(t)?)),
    }
}

/// One value as DUMP carries it (`rdbLoadObjectType` + `rdbLoadObject` on a buffer): the
/// type byte, then the value. Returns the value (`None` for an empty collection, which
/// RESTORE refuses as Redis does) and the bytes read; offsets in errors are into `data`.
pub fn load_value(data: &[u8]) -> Result<(Option<Value>, usize), RdbError> {
    let mut r = Reader { data, pos: 0 };
    let t = r.u8()?;
    if !is_value_type(t) {
        return Err(RdbError::new(RdbErrorKind::UnsupportedType(t), 0));
    }
    let value = read_value(&mut r, t, &mut Vec::new())?;
    Ok((value, r.pos))
}

/// Hands `record` to the callback; a rejection gets the record's offset.
#[inline]
fn deliver<F>(on_record: &mut F, record: Record<'_>, start: usize) -> Result<(), RdbError>
where
    F: FnMut(Record<'_>) -> Result<(), RdbError>,
{
    on_record(record).map_err(|e| match e.kind() {
        RdbErrorKind::Rejected(_) => e.at(start as u64),
        _ => e,
    })
}

/// Counts a key in `summary` and hands it to the callback; `None` (an empty collection,
/// which redis-server skips too) is neither counted nor delivered.
fn deliver_entry<F>(
    on_record: &mut F,
    summary: &mut LoadSummary,
    (db, key): (u32, &[u8]),
    value: Option<Value>,
    expire_ms: Option<i64>,
    start: usize,
) -> Result<(), RdbError>
where
    F: FnMut(Record<'_>) -> Result<(), RdbError>,
{
    let Some(value) = value else {
        return Ok(());
    };
    summary.keys += 1;
    summary.keys_with_expiry += u64::from(expire_ms.is_some());
    let record = Record::Entry {
        db,
        key,
        value,
        expire_ms,
        offset: start as u64,
    };
    deliver(on_record, record, start)
}

/// The 9-byte signature: `REDIS` + 4 digits (versions 1 to 11) or `VALKEY` + 3 digits
/// (version 80).
fn signature(data: &[u8]) -> Result<(RdbFormat, u32), RdbError> {
    let Some(sig) = data.first_chunk::<9>() else {
        return Err(RdbError::new(
            RdbErrorKind::UnexpectedEof,
            data.len() as u64,
        ));
    };
    let (format, digits_at) = if sig.starts_with(b"REDIS") {
        (RdbFormat::Redis, 5)
    } else if sig.starts_with(b"VALKEY") {
        (RdbFormat::Valkey, 6)
    } else {
        return Err(RdbError::new(RdbErrorKind::BadSignature(*sig), 0));
    };
    let digits = &sig[digits_at..];
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(RdbError::new(RdbErrorKind::BadSignature(*sig), 0));
    }
    let version = digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0'));
    let supported = match format {
        RdbFormat::Redis => (1..=MAX_REDIS_VERSION).contains(&version),
        RdbFormat::Valkey => version == VALKEY_VERSION,
    };
    if !supported {
        return Err(RdbError::new(
            RdbErrorKind::UnsupportedVersion {
                version,
                signature: *sig,
            },
            digits_at as u64,
        ));
    }
    Ok((format, version))
}

// lists and hashes
/// A string of the file as owned bytes, with its offset.
fn blob(r: &mut Reader<'_>, buf: &mut Vec<u8>) -> Result<(Vec<u8>, usize), RdbError> {
    let at = r.pos;
    Ok((r.string()?.into_bytes(buf)?.to_vec(), at))
}

/// A list or hash value of type `t` (see [`lists_hashes`]); `None` when empty.
#[allow(
    clippy::many_single_char_names,
    reason = "r/t/n/h/l/b as in the loader above"
)]
fn read_collection(
    r: &mut Reader<'_>,
    t: u8,
    buf: &mut Vec<u8>,
) -> Result<Option<Value>, RdbError> {
    use lists_hashes as c;
    let mut kbuf = Vec::new();
    let value = match t {
        c::TYPE_LIST => {
            let n = r.length()?;
            let mut l = c::ListBuilder::new();
            for _ in 0..n {
                l.push(r.string()?.into_bytes(buf)?);
            }
            Value::List(Box::new(l.finish()))
        }
        c::TYPE_LIST_ZIPLIST | c::TYPE_LIST_QUICKLIST => {
            let nodes = if t == c::TYPE_LIST_ZIPLIST {
                1
            } else {
                r.length()?
            };
            let mut l = c::ListBuilder::new();
            for _ in 0..nodes {
                let (zl, at) = blob(r, buf)?;
                c::ziplist_entries(&zl, at, "list ziplist", |e| {
                    l.push(e);
                    Ok(())
                })?;
            }
            Value::List(Box::new(l.finish()))
        }
        c::TYPE_LIST_QUICKLIST_2 => {
            let n = r.length()?;
            let mut nodes = Vec::new();
            for _ in 0..n {
                let container_at = r.pos;
                let container = r.length()?;
                let (b, at) = blob(r, buf)?;
                match container {
                    c::QUICKLIST_NODE_PACKED => nodes.push(c::listpack(b, at, "quicklist node")?),
                    c::QUICKLIST_NODE_PLAIN => {
                        nodes.push(percore_engine::listpack::Listpack::from_items([&b[..]]));
                    }
                    _ => {
                        return Err(c::corrupt(
                            container_at,
                            "quicklist",
                            0,
                            "unknown node container",
                        ));
                    }
                }
            }
            Value::List(Box::new(percore_engine::lists::List::from_nodes(nodes)))
        }
        c::TYPE_HASH => {
            let at = r.pos;
            let n = r.length()?;
            let mut h = c::HashBuilder::new(usize::try_from(n).unwrap_or(usize::MAX));
            for _ in 0..n {
                let k = r.string()?.into_bytes(&mut kbuf)?.to_vec();
                let v = r.string()?.into_bytes(buf)?;
                if !h.add(&k, v) {
                    return Err(c::corrupt(at, "hash", 0, "duplicate field"));
                }
            }
            Value::Hash(h.finish())
        }
        c::TYPE_HASH_ZIPMAP | c::TYPE_HASH_ZIPLIST => {
            let (b, at) = blob(r, buf)?;
            let mut h = c::HashBuilder::new(0);
            let mut dup = false;
            if t == c::TYPE_HASH_ZIPMAP {
                c::zipmap_pairs(&b, at, |k, v| {
                    dup |= !h.add(k, v);
                    Ok(())
                })?;
            } else {
                let mut field: Option<Vec<u8>> = None;
                let n = c::ziplist_entries(&b, at, "hash ziplist", |e| {
                    match field.take() {
                        None => field = Some(e.to_vec()),
                        Some(k) => dup |= !h.add(&k, e),
                    }
                    Ok(())
                })?;
                if n % 2 != 0 {
                    return Err(c::corrupt(at, "hash ziplist", 0, "odd entry count"));
                }
            }
            if dup {
                return Err(c::corrupt(at, "hash", 0, "duplicate field"));
            }
            Value::Hash(h.finish())
        }
        c::TYPE_HASH_LISTPACK => {
            let (b, at) = blob(r, buf)?;
            let lp = c::listpack(b, at, "hash listpack")?;
            if lp.is_empty() {
                return Ok(None);
            }
            Value::Hash(c::hash_from_listpack(lp, at)?)
        }
        _ => unreachable!("lists_hashes::handles said so"),
    };
    let empty = match &value {
        Value::List(l) => l.is_empty(),
        Value::Hash(h) => h.is_empty(),
        _ => false,
    };
    Ok((!empty).then_some(value))
}
// end lists and hashes

/// Reads one RDB string (`rdbGenericLoadStringObject`: plain, integer or LZF encoded) from
/// the start of `bytes`: its decoded bytes and how many bytes it took. FUNCTION RESTORE
/// reads library codes with it.
pub fn read_string(bytes: &[u8]) -> Result<(Vec<u8>, usize), RdbError> {
    let mut r = Reader {
        data: bytes,
        pos: 0,
    };
    let raw = r.string()?;
    let mut buf = Vec::new();
    let decoded = raw.into_bytes(&mut buf)?.to_vec();
    Ok((decoded, r.pos))
}

// streams
impl super::streams::Source for Reader<'_> {
    fn offset(&self) -> usize {
        self.pos
    }

    fn len(&mut self) -> Result<u64, RdbError> {
        self.length()
    }

    fn bytes(&mut self) -> Result<Vec<u8>, RdbError> {
        let mut buf = Vec::new();
        Ok(self.string()?.into_bytes(&mut buf)?.to_vec())
    }

    fn raw<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        self.array()
    }
}

/// A cursor over the file. Every read checks the bytes left.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// A length, or the encoding byte of a specially encoded string.
enum Length {
    Plain(u64),
    Encoded(u8),
}

/// A string as stored, before decoding.
enum RawStr<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    Lzf {
        packed: &'a [u8],
        len: usize,
        at: usize,
    },
}

impl<'a> Reader<'a> {
    fn eof(&self) -> RdbError {
        RdbError::new(RdbErrorKind::UnexpectedEof, self.data.len() as u64)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], RdbError> {
        let left = self.data.len() - self.pos;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| self.eof())?;
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, RdbError> {
        let byte = *self.data.get(self.pos).ok_or_else(|| self.eof())?;
        self.pos += 1;
        Ok(byte)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let bytes = self
            .data
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>)
            .ok_or_else(|| self.eof())?;
        self.pos += N;
        Ok(*bytes)
    }

    /// `rdbLoadLenByRef`.
    fn length_or_encoding(&mut self) -> Result<Length, RdbError> {
        let at = self.pos;
        let first = self.u8()?;
        Ok(match first {
            0..len_tag::BITS_14 => Length::Plain(u64::from(first)),
            len_tag::BITS_14..len_tag::BITS_32 => {
                let low = self.u8()?;
                Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(low))
            }
            len_tag::BITS_32 => Length::Plain(u64::from(u32::from_be_bytes(self.array()?))),
            len_tag::BITS_64 => Length::Plain(u64::from_be_bytes(self.array()?)),
            len_tag::ENCODED.. => Length::Encoded(first),
            _ => {
                return Err(RdbError::new(RdbErrorKind::BadLength(first), at as u64));
            }
        })
    }

    /// A length where no string can stand (Redis would read an encoded form as a 6-bit
    /// length; no writer produces one, so it is treated as corruption).
    fn length(&mut self) -> Result<u64, RdbError> {
        let at = self.pos;
        match self.length_or_encoding()? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(b) => Err(RdbError::new(RdbErrorKind::BadLength(b), at as u64)),
        }
    }

    // sets, sorted sets
    /// A set or sorted set of RDB type `t` (see [`super::collections`]). Built with the
    /// default encoding thresholds.
    fn collection(&mut self, t: u8) -> Result<Value, RdbError> {
        use super::collections::{self as c, types};
        let at = self.pos as u64;
        let corrupt = |reason: String| {
            RdbError::new(
                RdbErrorKind::CorruptValue {
                    type_byte: t,
                    reason,
                },
                at,
            )
        };
        let (sl, zl) = (SetLimits::default(), ZSetLimits::default());
        let mut buf = Vec::new();
        Ok(match t {
            types::SET => {
                let n = self.length()?;
                let mut members = Vec::new();
                for _ in 0..n {
                    members.push(self.string()?.into_bytes(&mut buf)?.to_vec());
                }
                Value::Set(Box::new(
                    c::set_from_members(&members, &sl).map_err(corrupt)?,
                ))
            }
            types::SET_INTSET
            | types::SET_LISTPACK
            | types::ZSET_ZIPLIST
            | types::ZSET_LISTPACK => {
                let blob = self.string()?.into_bytes(&mut buf)?;
                match t {
                    types::SET_INTSET => {
                        Value::Set(Box::new(c::set_from_intset(blob, &sl).map_err(corrupt)?))
                    }
                    types::SET_LISTPACK => {
                        Value::Set(Box::new(c::set_from_listpack(blob, &sl).map_err(corrupt)?))
                    }
                    types::ZSET_ZIPLIST => {
                        let entries = c::read_ziplist(blob).map_err(corrupt)?;
                        Value::ZSet(c::zset_from_blob_entries(&entries, &zl).map_err(corrupt)?)
                    }
                    _ => {
                        let entries = c::read_listpack(blob).map_err(corrupt)?;
                        Value::ZSet(c::zset_from_blob_entries(&entries, &zl).map_err(corrupt)?)
                    }
                }
            }
            types::ZSET | types::ZSET_2 => {
                let n = self.length()?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    let m = self.string()?.into_bytes(&mut buf)?.to_vec();
                    let score = if t == types::ZSET_2 {
                        f64::from_le_bytes(self.array()?)
                    } else {
                        self.text_double().map_err(corrupt)?
                    };
                    pairs.push((m, score));
                }
                Value::ZSet(c::zset_from_pairs(pairs, &zl).map_err(corrupt)?)
            }
            _ => return Err(RdbError::new(RdbErrorKind::UnsupportedType(t), at)),
        })
    }

    /// `rdbLoadDoubleValue`: a length byte (253 NaN, 254 +inf, 255 -inf) and the text.
    fn text_double(&mut self) -> Result<f64, String> {
        let len = self.u8().map_err(|e| e.to_string())?;
        match len {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(u64::from(n)).map_err(|e| e.to_string())?;
                percore_engine::zsets::parse_score(text)
                    .ok_or_else(|| "sorted set score is not a number".to_string())
            }
        }
    }

    /// `rdbGenericLoadStringObject`, without decoding.
    fn string(&mut self) -> Result<RawStr<'a>, RdbError> {
        let at = self.pos;
        Ok(match self.length_or_encoding()? {
            Length::Plain(n) => RawStr::Bytes(self.take(n)?),
            Length::Encoded(enc::INT8) => RawStr::Int(i64::from(i8::from_le_bytes(self.array()?))),
            Length::Encoded(enc::INT16) => {
                RawStr::Int(i64::from(i16::from_le_bytes(self.array()?)))
            }
            Length::Encoded(enc::INT32) => {
                RawStr::Int(i64::from(i32::from_le_bytes(self.array()?)))
            }
            Length::Encoded(enc::LZF) => {
                let packed_len = self.length()?;
                let len = self.length()?;
                let packed = self.take(packed_len)?;
                let bad = || {
                    RdbError::new(
                        RdbErrorKind::BadLzf {
                            compressed_len: packed_len,
                            stated_len: len,
                            cause: None,
                        },
                        at as u64,
                    )
                };
                // No LZF stream expands more than MAX_EXPANSION_RATIO times: this bounds
                // the allocation for a corrupt length by the file's own size.
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&n| n <= packed.len().saturating_mul(lzf::MAX_EXPANSION_RATIO))
                    .ok_or_else(bad)?;
                RawStr::Lzf { packed, len, at }
            }
            Length::Encoded(other) => {
                return Err(RdbError::new(
                    RdbErrorKind::UnknownStringEncoding(other),
                    at as u64,
                ));
            }
        })
    }
}

impl<'a> RawStr<'a> {
    /// The string's bytes: borrowed from the file, or decoded into `buf`.
    fn into_bytes<'s>(self, buf: &'s mut Vec<u8>) -> Result<&'s [u8], RdbError>
    where
        'a: 's,
    {
        match self {
            RawStr::Bytes(b) => Ok(b),
            RawStr::Int(i) => {
                buf.clear();
                buf.extend_from_slice(format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]));
                Ok(buf)
            }
            RawStr::Lzf { packed, len, at } => {
                buf.clear();
                inflate(packed, len, at, buf)?;
                Ok(buf)
            }
        }
    }

    /// The string as a stored value, integer-encoded when Redis would.
    fn into_value(self) -> Result<Value, RdbError> {
        Ok(match self {
            RawStr::Bytes(b) => Value::from_bytes(b),
            RawStr::Int(i) => Value::Str(StrValue::Int(i)),
            RawStr::Lzf { packed, len, at } => {
                let mut bytes = Vec::new();
                inflate(packed, len, at, &mut bytes)?;
                Value::Str(StrValue::from_vec(bytes))
            }
        })
    }
}

/// Decompresses an LZF string that must expand to exactly `len` bytes.
fn inflate(packed: &[u8], len: usize, at: usize, out: &mut Vec<u8>) -> Result<(), RdbError> {
    let bad = |cause| {
        RdbError::new(
            RdbErrorKind::BadLzf {
                compressed_len: packed.len() as u64,
                stated_len: len as u64,
                cause,
            },
            at as u64,
        )
    };
    match lzf::decompress(packed, out, len) {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(bad(None)),
        Err(e) => Err(bad(Some(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc64::crc64;

    fn finish(mut body: Vec<u8>) -> Vec<u8> {
        body.push(opcode::EOF);
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    fn load_all(data: &[u8]) -> Result<(LoadSummary, Vec<String>), RdbError> {
        let mut seen = Vec::new();
        let summary = load(data, &LoadOptions::default(), |r| {
            seen.push(format!("{r:?}"));
            Ok(())
        })?;
        Ok((summary, seen))
    }

    fn err(data: &[u8]) -> String {
        load_all(data).unwrap_err().to_string()
    }

    // sets, sorted sets
    #[test]
    fn corrupt_nested_encodings_name_the_value_offset() {
        let with = |t: u8, blob: &[u8]| {
            let mut f = b"REDIS0010".to_vec();
            f.push(t);
            f.extend_from_slice(&[1, b'k']);
            f.push(blob.len() as u8);
            f.extend_from_slice(blob);
            err(&finish(f))
        };
        // An intset of width 3.
        let e = with(11, &[3, 0, 0, 0, 0, 0, 0, 0]);
        assert!(
            e.contains("corrupt value of type 11") && e.ends_with("at offset 12"),
            "{e}"
        );
        // A listpack whose stated size disagrees with the blob.
        let e = with(17, &[99, 0, 0, 0, 0, 0, 0xFF]);
        assert!(e.contains("listpack states 99 bytes"), "{e}");
        // A ziplist entry running past the end.
        let e = with(12, &[12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x05, 0xFF]);
        assert!(e.contains("corrupt value of type 12"), "{e}");
        // A set listpack with a duplicate member.
        let e = with(20, &[11, 0, 0, 0, 2, 0, 1, 1, 1, 1, 0xFF]);
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn signatures() {
        for v in ["REDIS0001", "REDIS0009", "REDIS0010", "REDIS0011"] {
            let mut f = v.as_bytes().to_vec();
            f.push(opcode::EOF);
            if v != "REDIS0001" && v != "REDIS0009" {
                f.extend_from_slice(&[0; 8]);
            } else if v == "REDIS0009" {
                f = finish(v.as_bytes().to_vec());
            }
            assert!(load_all(&f).is_ok(), "{v}");
        }
        let (s, _) = load_all(&finish(b"VALKEY080".to_vec())).unwrap();
        assert_eq!((s.format, s.version), (RdbFormat::Valkey, 80));
        assert_eq!(
            err(b"REDIS0012\xff"),
            "RDB file: unsupported format version 12 (signature \"REDIS0012\"); this build reads REDIS0001 to REDIS0011 and VALKEY080 at offset 5"
        );
        assert!(err(b"VALKEY081\xff").contains("unsupported format version 81"));
        assert!(err(b"REDIS0000\xff").contains("unsupported format version 0"));
        assert_eq!(
            err(b"GARBAGE!!\xff"),
            "RDB file: not an RDB file: signature \"GARBAGE!!\", expected \"REDIS\" + 4 digits or \"VALKEY\" + 3 digits at offset 0"
        );
        assert!(err(b"REDIS00x1\xff").contains("not an RDB file"));
        assert_eq!(
            err(b"REDIS"),
            "RDB file: unexpected end of file at offset 5"
        );
    }

    #[test]
    fn old_version_has_no_checksum() {
        let (s, _) = load_all(b"REDIS0004\xfe\x00\x00\x01k\x01v\xff").unwrap();
        assert_eq!(s.checksum, ChecksumCheck::Absent);
        assert_eq!(s.keys, 1);
        assert_eq!(s.bytes, 17);
    }

    #[test]
    fn unsupported_types_and_opcodes() {
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(b"\xfe\x00\x07\x01k");
        assert_eq!(
            err(&f),
            "RDB file: unsupported value type 7 (module) at offset 11"
        );
        let f = b"REDIS0010\x08".to_vec();
        assert_eq!(err(&f), "RDB file: unknown value type 8 at offset 9");
        let f = b"REDIS0010\xf7".to_vec();
        assert_eq!(
            err(&f),
            "RDB file: unsupported opcode 0xf7 (module aux data) at offset 9"
        );
        // FUNCTION2 is read (a library's code follows); only the pre-GA form is refused.
        assert!(!err(b"REDIS0010\xf5").contains("unsupported"));
        assert!(err(b"REDIS0010\xf6").contains("function library, pre-GA"));
        assert!(err(b"REDIS0010\xf6").contains("opcode 0xf6"));
    }

    #[test]
    fn skips_idle_freq_and_slot_info() {
        let mut f = b"VALKEY080".to_vec();
        f.extend_from_slice(b"\xf4\x05\x01\x00\xf8\x40\x80\xf9\x07\x00\x01k\x01v");
        let (s, seen) = load_all(&finish(f)).unwrap();
        assert_eq!(s.keys, 1);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn expiretime_in_seconds() {
        let mut f = b"REDIS0006".to_vec();
        f.extend_from_slice(b"\xfd");
        f.extend_from_slice(&1_700_000_000i32.to_le_bytes());
        f.extend_from_slice(b"\x00\x01k\xc0\x05");
        let mut got = None;
        load(&finish(f), &LoadOptions::default(), |r| {
            if let Record::Entry {
                expire_ms, value, ..
            } = r
            {
                got = Some((expire_ms, value));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            Some((Some(1_700_000_000_000), Value::Str(StrValue::Int(5))))
        );
    }

    #[test]
    fn checksum_mismatch_and_disabled() {
        let mut f = finish(b"REDIS0010\x00\x01k\x01v".to_vec());
        let n = f.len();
        f[n - 1] ^= 1;
        let e = load_all(&f).unwrap_err();
        assert!(matches!(e.kind(), RdbErrorKind::ChecksumMismatch { .. }));
        assert_eq!(e.offset(), 15);
        assert!(e.to_string().contains("checksum mismatch (expected 0x"));
        f[n - 8..].fill(0);
        assert_eq!(load_all(&f).unwrap().0.checksum, ChecksumCheck::Disabled);
        f[n - 1] = 1;
        let opts = LoadOptions::default().with_checksum(false);
        assert_eq!(
            load(&f, &opts, |_| Ok(())).unwrap().checksum,
            ChecksumCheck::Skipped
        );
    }

    #[test]
    fn bad_lengths_and_encodings() {
        assert!(err(b"REDIS0010\xfe\x82").contains("invalid length encoding 0x82 at offset 10"));
        assert!(err(b"REDIS0010\xfe\xc0").contains("invalid length encoding 0xc0"));
        assert!(err(b"REDIS0010\x00\xc4").contains("unknown string encoding 0xc4 at offset 10"));
        // A huge plain length is a truncation, not an allocation.
        assert_eq!(
            err(b"REDIS0010\x00\x81\x7f\xff\xff\xff\xff\xff\xff\xff"),
            "RDB file: unexpected end of file at offset 19"
        );
        // LZF claiming more than 88 bytes per compressed byte.
        assert!(
            err(b"REDIS0010\x00\xc3\x01\x81\x00\x00\x00\x01\x00\x00\x00\x00\x00").contains(
                "invalid LZF string (1 compressed bytes, stated length 4294967296) at offset 10"
            )
        );
        assert!(
            err(b"REDIS0010\x00\xc3\x02\x05\x00a")
                .contains("invalid LZF string (2 compressed bytes, stated length 5) at offset 10")
        );
        // LZF that is cut short.
        assert!(
            err(b"REDIS0010\x00\xc3\x02\x05\x01a")
                .contains("invalid LZF string (2 compressed bytes, stated length 5: LZF data ends")
        );
    }

    #[test]
    fn db_out_of_range() {
        assert_eq!(
            err(b"REDIS0010\xfe\x10"),
            "RDB file: database 16 is out of range (this server has 16 databases) at offset 9"
        );
    }

    #[test]
    fn callback_rejection_gets_the_record_offset() {
        let f = finish(b"REDIS0010\xfc\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01k\x01v".to_vec());
        let e = load(&f, &LoadOptions::default(), |r| match r {
            Record::Entry { .. } => Err(RdbError::rejected("duplicate key 'k'")),
            _ => Ok(()),
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "RDB file: duplicate key 'k' at offset 9");
    }

    #[test]
    fn resize_hints_are_clamped() {
        let f = finish(b"REDIS0010\xfb\x81\xff\xff\xff\xff\xff\xff\xff\xff\x05".to_vec());
        let (_, seen) = load_all(&f).unwrap();
        assert_eq!(seen, ["ResizeDb { db_size: 3, expires_size: 3 }"]);
    }

    #[test]
    fn trailing_bytes_are_counted() {
        let mut f = finish(b"REDIS0010".to_vec());
        f.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let (s, _) = load_all(&f).unwrap();
        assert_eq!((s.bytes, s.trailing_bytes), (18, 14));
    }
}
