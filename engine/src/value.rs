//! Stored values and their Redis encodings.

use crate::hashes::Hash;
use crate::lists::List;
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
    // sets
    Set(Box<crate::sets::SetValue>),
    // sorted sets
    // (inline: a small sorted set is one allocation, its packed entries)
    ZSet(crate::zsets::ZSetValue),
    // lists (boxed) and hashes (inline, 24 bytes): `Value` stays 32 bytes
    List(Box<List>),
    Hash(Hash),
    // end lists and hashes
    // streams
    Stream(Box<crate::streams::Stream>),
}

impl Value {
    /// TYPE reply.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            // sets
            Value::Set(_) => "set",
            // sorted sets
            Value::ZSet(_) => "zset",
            // lists and hashes
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            // streams
            Value::Stream(_) => "stream",
        }
    }

    /// DEBUG HTSTATS-KEY: the stats of the hash table holding the value (a `hashtable`
    /// set or hash, a `skiplist` sorted set's member index); `None` for other encodings.
    #[must_use]
    pub fn hash_table_stats(&self) -> Option<String> {
        match self {
            Value::Set(s) => s.hash_table_stats(),
            Value::ZSet(crate::zsets::ZSetValue::Big(z)) => Some(z.scores_table().stats_text()),
            Value::Hash(Hash::Table(t)) => Some(t.stats_text()),
            _ => None,
        }
    }

    /// Redis's `lazyfreeGetFreeEffort`: the allocations freeing the value takes (1 for
    /// a string and the compact encodings; the nodes of a quicklist; the members of a
    /// hash table or skiplist; a stream's nodes, plus per group its PEL and itself).
    /// UNLINK hands a value above `LAZYFREE_THRESHOLD` (64) to the lazy-free thread.
    #[must_use]
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Set(s) if s.encoding() == "hashtable" => s.len(),
            Value::ZSet(z @ crate::zsets::ZSetValue::Big(_)) => z.len(),
            Value::List(l) if l.encoding() == "quicklist" => l.nodes().len(),
            Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
            Value::Stream(st) => {
                let groups: usize = st.groups().values().map(|g| 1 + g.pel.len()).sum();
                st.nodes().len() + groups
            }
            // Strings and the compact encodings: one allocation.
            _ => 1,
        }
    }

    /// OBJECT ENCODING reply.
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            // sets
            Value::Set(s) => s.encoding(),
            // sorted sets
            Value::ZSet(z) => z.encoding(),
            // lists and hashes
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            // streams
            Value::Stream(_) => "stream",
        }
    }

    #[must_use]
    pub fn as_str(&self) -> Option<&StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut StrValue> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    // sets
    #[must_use]
    pub fn as_set(&self) -> Option<&crate::sets::SetValue> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_set_mut(&mut self) -> Option<&mut crate::sets::SetValue> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    // sorted sets
    #[must_use]
    pub fn as_zset(&self) -> Option<&crate::zsets::ZSetValue> {
        match self {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    pub fn as_zset_mut(&mut self) -> Option<&mut crate::zsets::ZSetValue> {
        match self {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    // lists and hashes
    #[must_use]
    pub fn as_list(&self) -> Option<&List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_list_mut(&mut self) -> Option<&mut List> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_hash(&self) -> Option<&Hash> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }
    // end lists and hashes

    // streams
    #[must_use]
    pub fn as_stream(&self) -> Option<&crate::streams::Stream> {
        match self {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_stream_mut(&mut self) -> Option<&mut crate::streams::Stream> {
        match self {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// A string value from bytes, integer-encoded when Redis would.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Value::Str(StrValue::from_bytes(bytes))
    }
}

/// Longest text stored inline in a [`StrValue`] (no heap allocation). 30 keeps
/// `StrValue` at 32 bytes: a tag byte, a length byte and the buffer.
pub const INLINE_STR_MAX_BYTES: usize = 30;

/// Text of at most [`INLINE_STR_MAX_BYTES`] bytes stored in place.
#[derive(Clone, Copy)]
pub struct InlineStr {
    len: u8,
    buf: [u8; INLINE_STR_MAX_BYTES],
}

impl InlineStr {
    /// `bytes` stored inline, or `None` when longer than [`INLINE_STR_MAX_BYTES`].
    #[must_use]
    #[inline]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > INLINE_STR_MAX_BYTES {
            return None;
        }
        let mut buf = [0; INLINE_STR_MAX_BYTES];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Self {
            len: bytes.len() as u8,
            buf,
        })
    }

    #[must_use]
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_bytes().escape_ascii().to_string())
    }
}

/// A string value: an integer when the text is a canonical `i64`, else its bytes, in
/// place when short ([`StrValue::Inline`]) or on the heap ([`StrValue::Raw`]).
///
/// `Inline` and `Raw` are two storage forms of the same text: they compare equal when
/// the bytes are equal, and neither is visible in OBJECT ENCODING (which reports
/// `embstr` or `raw` by length, as before).
#[derive(Clone, Debug)]
pub enum StrValue {
    Int(i64),
    Inline(InlineStr),
    Raw(Vec<u8>),
}

impl PartialEq for StrValue {
    fn eq(&self, other: &Self) -> bool {
        match (self.as_int(), other.as_int()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.text() == other.text(),
            _ => false,
        }
    }
}

impl Eq for StrValue {}

impl StrValue {
    /// Stores `bytes` as [`StrValue::Int`] exactly when Redis would (≤ 20 bytes that are
    /// a canonical `string2ll` integer), else copies them (inline when short).
    #[must_use]
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match Self::try_int(bytes) {
            Some(i) => StrValue::Int(i),
            None => Self::from_text(bytes),
        }
    }

    /// As [`StrValue::from_bytes`], reusing `bytes`' allocation when it stays on the heap.
    #[must_use]
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        match Self::try_int(&bytes) {
            Some(i) => StrValue::Int(i),
            None => match InlineStr::new(&bytes) {
                Some(s) => StrValue::Inline(s),
                None => StrValue::Raw(bytes),
            },
        }
    }

    /// `bytes` as text, never integer-encoded, reusing the allocation when it stays on the
    /// heap (INCRBYFLOAT's result: Redis stores a string object, `embstr` when short).
    #[must_use]
    pub fn text_from_vec(bytes: Vec<u8>) -> Self {
        match InlineStr::new(&bytes) {
            Some(s) => StrValue::Inline(s),
            None => StrValue::Raw(bytes),
        }
    }

    /// `bytes` as text, never integer-encoded.
    #[inline]
    fn from_text(bytes: &[u8]) -> Self {
        match InlineStr::new(bytes) {
            Some(s) => StrValue::Inline(s),
            None => StrValue::Raw(bytes.to_vec()),
        }
    }

    #[inline]
    fn try_int(bytes: &[u8]) -> Option<i64> {
        if bytes.len() <= INT_ENCODING_MAX_BYTES {
            parse_i64_strict(bytes)
        } else {
            None
        }
    }

    /// The bytes of a string that is not integer-encoded.
    #[must_use]
    #[inline]
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            StrValue::Int(_) => None,
            StrValue::Inline(s) => Some(s.as_bytes()),
            StrValue::Raw(v) => Some(v),
        }
    }

    /// Length in bytes of the string's text (STRLEN).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(i) => format_i64(*i, &mut [0; I64_MAX_DECIMAL_BYTES]).len(),
            StrValue::Inline(s) => usize::from(s.len),
            StrValue::Raw(v) => v.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text().is_some_and(<[u8]>::is_empty)
    }

    /// OBJECT ENCODING: `int`, `embstr` (≤ 44 bytes) or `raw`.
    ///
    /// Redis reports `raw` for short strings that APPEND, SETRANGE, SETBIT, BITOP or PFADD
    /// wrote in place: here a heap string short enough to be inline, which only those
    /// make ([`StrValue::make_raw`] or their own `Raw`). One of 31..=44 bytes they wrote
    /// still says `embstr` (its form does not tell it from a SET's).
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Raw(v) if v.len() <= INLINE_STR_MAX_BYTES => "raw",
            StrValue::Inline(_) => "embstr",
            StrValue::Raw(v) if v.len() <= EMBSTR_MAX_BYTES => "embstr",
            StrValue::Raw(_) => "raw",
        }
    }

    /// The integer, when integer-encoded.
    #[must_use]
    #[inline]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            StrValue::Int(i) => Some(*i),
            StrValue::Inline(_) | StrValue::Raw(_) => None,
        }
    }

    /// The text, formatting an integer into `buf` (no allocation).
    #[must_use]
    #[inline]
    pub fn as_bytes<'a>(&'a self, buf: &'a mut [u8; I64_MAX_DECIMAL_BYTES]) -> &'a [u8] {
        match self {
            StrValue::Int(i) => format_i64(*i, buf),
            StrValue::Inline(s) => s.as_bytes(),
            StrValue::Raw(v) => v,
        }
    }

    /// The text, borrowed unless integer-encoded.
    #[must_use]
    pub fn to_bytes(&self) -> Cow<'_, [u8]> {
        match self.text() {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(self.as_bytes(&mut [0; I64_MAX_DECIMAL_BYTES]).to_vec()),
        }
    }

    /// Appends the text to `out`.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes(&mut [0; I64_MAX_DECIMAL_BYTES]));
    }

    /// Converts to heap bytes in place (for APPEND, SETRANGE) and returns them.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            *self = StrValue::Raw(self.as_bytes(&mut [0; I64_MAX_DECIMAL_BYTES]).to_vec());
        }
        match self {
            StrValue::Raw(v) => v,
            StrValue::Int(_) | StrValue::Inline(_) => unreachable!("converted to raw above"),
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
        // Written in place (APPEND, SETRANGE): `raw` however short, as Redis.
        let mut v = StrValue::from_bytes(b"1234");
        v.make_raw()[0] = b'2';
        assert_eq!(v.encoding(), "raw");
        assert_eq!(StrValue::text_from_vec(b"3".to_vec()).encoding(), "embstr");
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
        let mut v = StrValue::from_bytes(b"ab");
        assert!(matches!(v, StrValue::Inline(_)));
        v.make_raw().push(b'c');
        assert_eq!(v, StrValue::from_bytes(b"abc"));
        // Written in place, as Redis's APPEND: `raw`.
        assert_eq!(v.encoding(), "raw");
    }

    #[test]
    fn inline_up_to_the_limit_and_stays_small() {
        assert_eq!(std::mem::size_of::<StrValue>(), 32);
        assert_eq!(std::mem::size_of::<Value>(), 32);
        let short = [b'a'; INLINE_STR_MAX_BYTES];
        let v = StrValue::from_bytes(&short);
        assert!(matches!(v, StrValue::Inline(_)));
        assert_eq!(v.len(), INLINE_STR_MAX_BYTES);
        assert_eq!(&*v.to_bytes(), &short[..]);
        assert_eq!(StrValue::from_vec(short.to_vec()), v);
        assert!(matches!(
            StrValue::from_vec(short.to_vec()),
            StrValue::Inline(_)
        ));
        let long = [b'a'; INLINE_STR_MAX_BYTES + 1];
        assert!(matches!(StrValue::from_bytes(&long), StrValue::Raw(_)));
        assert!(matches!(
            StrValue::from_vec(long.to_vec()),
            StrValue::Raw(_)
        ));
        assert_ne!(StrValue::Int(5), StrValue::Raw(b"5".to_vec()));
        assert_eq!(StrValue::Raw(b"x".to_vec()), StrValue::from_bytes(b"x"));
    }
}
