//! The RDB snapshot format, as Redis 7.0 writes it (`RDB_VERSION` 10, magic `REDIS0010`)
//! and as Redis 7.x and Valkey 7.2 to 9.x write it for strings.
//!
//! - [`encode`] appends records to a `Vec<u8>`: the header with its AUX fields, per
//!   database SELECTDB and RESIZEDB, one record per key, EOF and the CRC-64. The output
//!   loads in redis-server 7.0 and passes redis-check-rdb.
//! - [`decode`] walks a whole file held in memory (the caller memory-maps it) and hands
//!   each record to a callback. It reads `REDIS0001`..`REDIS0011` and `VALKEY080`,
//!   checks the CRC-64, and stops with an [`RdbError`] that names the byte offset on
//!   anything it cannot load: a truncated or corrupt file, or a type percore does not
//!   have yet (modules, functions).
//!
//! # File layout
//!
//! ```text
//! "REDIS0010"                          9-byte magic: "REDIS" + 4-digit version
//! FA key value ...                     AUX fields (redis-ver, redis-bits, ctime, ...)
//! FE db                                SELECTDB, per non-empty database
//! FB db_size expires_size              RESIZEDB hint
//! [FC ms:i64le] 00 key value ...       per key: optional expiry, type 0 (string)
//! FF                                   EOF
//! crc:u64le                            CRC-64/Jones of every byte above (0 = disabled)
//! ```
//!
//! Lengths use the top two bits of their first byte: `00` 6-bit, `01` 14-bit
//! big-endian, `0x80` + 32-bit big-endian, `0x81` + 64-bit big-endian, and `11` marks a
//! specially encoded string: `0xC0`/`C1`/`C2` an 8/16/32-bit little-endian integer,
//! `0xC3` LZF (`clen len data`). See `src/rdb.h` and `src/rdb.c` in Redis.

pub mod lists_hashes;
// streams
pub mod streams;
// sets, sorted sets
pub mod collections;
pub mod decode;
pub mod encode;
pub mod error;

pub use decode::{
    ChecksumCheck, LoadOptions, LoadSummary, MAX_REDIS_VERSION, RdbFormat, Record, VALKEY_VERSION,
    load, load_value,
};
pub use encode::{
    AuxValue, DumpDb, DumpEntry, EncodeError, Encoder, FROZEN_FLUSH_BYTES, RDB_VERSION,
    encode_dump, encode_dump_with_aux, write_checksum, write_eof, write_header, write_len,
    write_resize_db, write_select_db,
};
pub use error::{RdbError, RdbErrorKind};

/// Opcodes: bytes in the type position that are not value types (`RDB_OPCODE_*`).
pub mod opcode {
    /// Valkey 9 atomic slot migration (replication streams only).
    pub const SLOT_IMPORT: u8 = 0xF3;
    /// Valkey 9 per-slot sizes (cluster mode): three lengths, safe to ignore.
    pub const SLOT_INFO: u8 = 0xF4;
    /// A function library.
    pub const FUNCTION2: u8 = 0xF5;
    /// A function library from 7.0 release candidates.
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 0xF7;
    /// LRU idle time of the next key: a length (seconds).
    pub const IDLE: u8 = 0xF8;
    /// LFU counter of the next key: one byte.
    pub const FREQ: u8 = 0xF9;
    /// An AUX field: two strings.
    pub const AUX: u8 = 0xFA;
    /// Hash table sizes of the current database: two lengths.
    pub const RESIZEDB: u8 = 0xFB;
    /// Expiry of the next key: a little-endian `i64` of Unix milliseconds.
    pub const EXPIRETIME_MS: u8 = 0xFC;
    /// Expiry of the next key: a little-endian `i32` of Unix seconds (old files).
    pub const EXPIRETIME: u8 = 0xFD;
    /// Switch database: a length.
    pub const SELECTDB: u8 = 0xFE;
    /// End of the data; the 8-byte checksum follows from version 5 on.
    pub const EOF: u8 = 0xFF;
}

/// Value type byte of a string key (`RDB_TYPE_STRING`), the only type percore stores.
pub const TYPE_STRING: u8 = 0;

/// First length byte forms (`RDB_6BITLEN` .. `RDB_64BITLEN`, `RDB_ENCVAL`).
pub(crate) mod len_tag {
    pub const BITS_14: u8 = 0x40;
    pub const BITS_32: u8 = 0x80;
    pub const BITS_64: u8 = 0x81;
    /// Top two bits set: a specially encoded string follows.
    pub const ENCODED: u8 = 0xC0;
}

/// Special string encodings: `len_tag::ENCODED | RDB_ENC_*`.
pub(crate) mod enc {
    pub const INT8: u8 = 0xC0;
    pub const INT16: u8 = 0xC1;
    pub const INT32: u8 = 0xC2;
    pub const LZF: u8 = 0xC3;
}

/// What a value type byte means, for error messages. `None` for bytes no Redis or Valkey
/// release writes.
pub fn type_name(type_byte: u8) -> Option<&'static str> {
    Some(match type_byte {
        0 => "string",
        1 => "list",
        2 => "set",
        3 => "sorted set",
        4 => "hash",
        5 => "sorted set with binary scores",
        6 => "module, pre-GA format",
        7 => "module",
        9 => "hash zipmap",
        10 => "list ziplist",
        11 => "set intset",
        12 => "sorted set ziplist",
        13 => "hash ziplist",
        14 => "list quicklist v1",
        15 => "stream listpacks",
        16 => "hash listpack",
        17 => "sorted set listpack",
        18 => "list quicklist",
        19 => "stream listpacks v2",
        20 => "set listpack",
        21 => "stream listpacks v3",
        22 => "hash with field expiry, Valkey 9",
        23..=25 => "hash with field expiry, Redis 7.4+",
        _ => return None,
    })
}

/// What an opcode byte means, for error messages.
pub fn opcode_name(byte: u8) -> Option<&'static str> {
    Some(match byte {
        opcode::SLOT_IMPORT => "Valkey slot import",
        opcode::SLOT_INFO => "Valkey slot info",
        opcode::FUNCTION2 => "function library",
        opcode::FUNCTION_PRE_GA => "function library, pre-GA format",
        opcode::MODULE_AUX => "module aux data",
        opcode::IDLE => "LRU idle time",
        opcode::FREQ => "LFU frequency",
        opcode::AUX => "aux field",
        opcode::RESIZEDB => "resize db",
        opcode::EXPIRETIME_MS => "expire time in ms",
        opcode::EXPIRETIME => "expire time in seconds",
        opcode::SELECTDB => "select db",
        opcode::EOF => "end of file",
        _ => return None,
    })
}
