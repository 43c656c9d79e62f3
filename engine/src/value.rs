//! Stored values and their Redis encodings.

use crate::number::{I64_MAX_DECIMAL_BYTES, format_i64, parse_i64_strict};
use std::borrow::Cow;

/// Strings up to this many bytes report `embstr` in OBJECT ENCODING (Redis's
/// `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const EMBSTR_MAX_BYTES: usize = 44;
/// Strings longer than this are never tried as integers (Redis `tryObjectEncoding`).
pub const INT_ENCODING_MAX_BYTES: usize = I64_MAX_DECIMAL_BYTES;

/// A stored value. More types (lists, hashes, sets, sorted sets, streams) come later,
/// so code outside this crate must keep a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    Str(StrValue),
}

impl Value {
    /// TYPE reply.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// OBJECT ENCODING reply.
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    /// A string value from bytes, integer-encoded when Redis would.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Value::Str(StrValue::from_bytes(bytes))
    }
}

/// A string value: an integer when the text is a canonical `i64`, else raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrValue {
    Int(i64),
    Raw(Vec<u8>),
}

impl StrValue {
    /// Stores `bytes` as [`StrValue::Int`] exactly when Redis would (≤ 20 bytes that are
    /// a canonical `string2ll` integer), else copies them.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match Self::try_int(bytes) {
            Some(i) => StrValue::Int(i),
            None => StrValue::Raw(bytes.to_vec()),
        }
    }

    /// As [`StrValue::from_bytes`], reusing `bytes`' allocation when it stays raw.
    #[must_use]
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        match Self::try_int(&bytes) {
            Some(i) => StrValue::Int(i),
            None => StrValue::Raw(bytes),
        }
    }

    fn try_int(bytes: &[u8]) -> Option<i64> {
        if bytes.len() <= INT_ENCODING_MAX_BYTES {
            parse_i64_strict(bytes)
        } else {
            None
        }
    }

    /// Length in bytes of the string's text (STRLEN).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(i) => format_i64(*i, &mut [0; I64_MAX_DECIMAL_BYTES]).len(),
            StrValue::Raw(v) => v.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        matches!(self, StrValue::Raw(v) if v.is_empty())
    }

    /// OBJECT ENCODING: `int`, `embstr` (≤ 44 bytes) or `raw`.
    ///
    /// Redis also reports `raw` for short strings produced by APPEND or SETRANGE; we derive
    /// the encoding from the length alone.
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Raw(v) if v.len() <= EMBSTR_MAX_BYTES => "embstr",
            StrValue::Raw(_) => "raw",
        }
    }

    /// The integer, when integer-encoded.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            StrValue::Int(i) => Some(*i),
            StrValue::Raw(_) => None,
        }
    }

    /// The text, formatting an integer into `buf` (no allocation).
    #[must_use]
    pub fn as_bytes<'a>(&'a self, buf: &'a mut [u8; I64_MAX_DECIMAL_BYTES]) -> &'a [u8] {
        match self {
            StrValue::Int(i) => format_i64(*i, buf),
            StrValue::Raw(v) => v,
        }
    }

    /// The text, borrowed when raw.
    #[must_use]
    pub fn to_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            StrValue::Int(i) => {
                Cow::Owned(format_i64(*i, &mut [0; I64_MAX_DECIMAL_BYTES]).to_vec())
            }
            StrValue::Raw(v) => Cow::Borrowed(v),
        }
    }

    /// Appends the text to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes(&mut [0; I64_MAX_DECIMAL_BYTES]));
    }

    /// Converts to raw in place (for APPEND, SETRANGE) and returns the bytes.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if let StrValue::Int(i) = *self {
            *self = StrValue::Raw(format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).to_vec());
        }
        match self {
            StrValue::Raw(v) => v,
            StrValue::Int(_) => unreachable!("converted to raw above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_encoding_exactly_when_redis_would() {
        for (text, int) in [
            ("0", true),
            ("12345", true),
            ("-12345", true),
            ("9223372036854775807", true),
            ("-9223372036854775808", true),
            ("9223372036854775808", false),
            ("-9223372036854775809", false),
            ("-0", false),
            ("007", false),
            ("+5", false),
            (" 5", false),
            ("5 ", false),
            ("1.0", false),
            ("", false),
        ] {
            let v = StrValue::from_bytes(text.as_bytes());
            assert_eq!(v.encoding() == "int", int, "{text:?}");
            // The text always round-trips.
            assert_eq!(&*v.to_bytes(), text.as_bytes());
            assert_eq!(v.len(), text.len());
            assert_eq!(StrValue::from_vec(text.as_bytes().to_vec()), v);
        }
    }

    #[test]
    fn embstr_and_raw() {
        assert_eq!(StrValue::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 45]).encoding(), "raw");
        assert_eq!(StrValue::from_bytes(b"").encoding(), "embstr");
        assert!(StrValue::from_bytes(b"").is_empty());
        let v = Value::from_bytes(b"hello");
        assert_eq!(v.type_name(), "string");
        assert_eq!(v.encoding(), "embstr");
    }

    #[test]
    fn bytes_helpers() {
        let v = StrValue::Int(-42);
        let mut buf = [0; I64_MAX_DECIMAL_BYTES];
        assert_eq!(v.as_bytes(&mut buf), b"-42");
        let mut out = b"x".to_vec();
        v.write_bytes(&mut out);
        assert_eq!(out, b"x-42");
        assert_eq!(v.as_int(), Some(-42));
        let mut v = v;
        v.make_raw().extend_from_slice(b"0");
        assert_eq!(v, StrValue::Raw(b"-420".to_vec()));
        assert_eq!(v.as_int(), None);
    }
}
