//! Why an RDB file could not be loaded, with the byte offset where it went wrong.

use super::{opcode_name, type_name};
use crate::lzf::LzfError;
use std::fmt;

/// A failed load: what went wrong ([`RdbErrorKind`]) and where (byte offset from the
/// start of the file). Displays as one line for an operator, e.g.
/// `RDB file: unsupported value type 18 (list quicklist) at offset 1234`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdbError {
    kind: RdbErrorKind,
    offset: u64,
}

/// What went wrong in an RDB file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RdbErrorKind {
    /// The file ends in the middle of something (offset = file length).
    UnexpectedEof,
    /// The first bytes are neither `REDIS` + 4 digits nor `VALKEY` + 3 digits.
    BadSignature([u8; 9]),
    /// A known signature with a version this build does not read.
    UnsupportedVersion { version: u32, signature: [u8; 9] },
    /// A value type percore cannot load (yet).
    UnsupportedType(u8),
    /// An opcode for data percore cannot load: module aux data, functions, slot import.
    UnsupportedOpcode(u8),
    /// A string with an unknown special encoding (`0xC4`..=`0xFF`).
    UnknownStringEncoding(u8),
    /// A length whose first byte is not one of the length forms.
    BadLength(u8),
    /// An LZF string that does not decompress to its stated length.
    BadLzf {
        compressed_len: u64,
        stated_len: u64,
        cause: Option<LzfError>,
    },
    /// SELECTDB names a database beyond the configured count.
    DbOutOfRange { db: u64, databases: u32 },
    /// The stored CRC-64 differs from the one computed over the file.
    ChecksumMismatch { expected: u64, computed: u64 },
    /// The record callback refused a record (offset = the record's start).
    Rejected(String),
    // sets, sorted sets
    /// A value whose nested encoding (intset, listpack, ziplist) or contents are corrupt
    /// (offset = the value's start).
    CorruptValue { type_byte: u8, reason: String },
    // lists and hashes
    /// A list or hash whose nested encoding (ziplist, listpack, zipmap) is corrupt.
    CorruptNested(String),
}

impl RdbError {
    pub fn new(kind: RdbErrorKind, offset: u64) -> Self {
        Self { kind, offset }
    }

    /// An error for the record callback to return (for example on a duplicate key).
    /// The loader sets its offset to the start of the record.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::new(RdbErrorKind::Rejected(reason.into()), 0)
    }

    pub fn kind(&self) -> &RdbErrorKind {
        &self.kind
    }

    /// Byte offset in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn at(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }
}

fn signature_text(sig: &[u8; 9]) -> String {
    sig.escape_ascii().to_string()
}

impl fmt::Display for RdbErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RdbErrorKind::UnexpectedEof => f.write_str("unexpected end of file"),
            RdbErrorKind::BadSignature(sig) => write!(
                f,
                "not an RDB file: signature \"{}\", expected \"REDIS\" + 4 digits or \"VALKEY\" + 3 digits",
                signature_text(sig)
            ),
            RdbErrorKind::UnsupportedVersion { version, signature } => write!(
                f,
                "unsupported format version {version} (signature \"{}\"); this build reads REDIS0001 to REDIS0011 and VALKEY080",
                signature_text(signature)
            ),
            RdbErrorKind::UnsupportedType(t) => match type_name(*t) {
                Some(name) => write!(f, "unsupported value type {t} ({name})"),
                None => write!(f, "unknown value type {t}"),
            },
            RdbErrorKind::UnsupportedOpcode(op) => write!(
                f,
                "unsupported opcode {op:#04x} ({})",
                opcode_name(*op).unwrap_or("unknown")
            ),
            RdbErrorKind::UnknownStringEncoding(b) => {
                write!(f, "unknown string encoding {b:#04x}")
            }
            RdbErrorKind::BadLength(b) => write!(f, "invalid length encoding {b:#04x}"),
            RdbErrorKind::BadLzf {
                compressed_len,
                stated_len,
                cause,
            } => {
                write!(
                    f,
                    "invalid LZF string ({compressed_len} compressed bytes, stated length {stated_len}"
                )?;
                match cause {
                    Some(cause) => write!(f, ": {cause})"),
                    None => f.write_str(")"),
                }
            }
            RdbErrorKind::DbOutOfRange { db, databases } => write!(
                f,
                "database {db} is out of range (this server has {databases} databases)"
            ),
            RdbErrorKind::ChecksumMismatch { expected, computed } => write!(
                f,
                "checksum mismatch (expected {expected:#018x}, computed {computed:#018x})"
            ),
            RdbErrorKind::Rejected(reason) => f.write_str(reason),
            RdbErrorKind::CorruptValue { type_byte, reason } => write!(
                f,
                "corrupt value of type {type_byte} ({}): {reason}",
                type_name(*type_byte).unwrap_or("unknown")
            ),
            RdbErrorKind::CorruptNested(what) => f.write_str(what),
        }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RDB file: {} at offset {}", self.kind, self.offset)
    }
}

impl std::error::Error for RdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            RdbErrorKind::BadLzf {
                cause: Some(cause), ..
            } => Some(cause),
            _ => None,
        }
    }
}
