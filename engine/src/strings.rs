//! String-command semantics (INCR*, DECR*, INCRBYFLOAT, GETRANGE, SETRANGE, APPEND),
//! pure so the handlers stay thin. Errors carry Redis's exact reply texts.

use crate::number::{format_incrbyfloat, parse_f64, parse_i64_strict};
use crate::value::StrValue;
use std::fmt;

/// Redis's default `proto-max-bulk-len` (512 MiB); the server passes its configured one.
pub const DEFAULT_PROTO_MAX_BULK_LEN_BYTES: u64 = 512 * 1024 * 1024;

/// A client mistake in a string command, rendered with Redis's exact error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StringError {
    /// The value or argument is not a canonical `i64`.
    NotInteger,
    /// The value or argument is not a valid float.
    NotFloat,
    /// INCRBY/DECRBY result out of `i64` range.
    Overflow,
    /// DECRBY with `i64::MIN`, whose negation overflows.
    DecrementOverflow,
    /// INCRBYFLOAT result is NaN or infinite.
    NanOrInfinity,
    /// The resulting string would exceed `proto-max-bulk-len`.
    MaxSize,
    /// SETRANGE with a negative offset.
    OffsetOutOfRange,
}

impl StringError {
    /// The error reply text, as Redis sends it (without the leading `-`).
    #[must_use]
    pub fn reply_text(self) -> &'static str {
        match self {
            StringError::NotInteger => "ERR value is not an integer or out of range",
            StringError::NotFloat => "ERR value is not a valid float",
            StringError::Overflow => "ERR increment or decrement would overflow",
            StringError::DecrementOverflow => "ERR decrement would overflow",
            StringError::NanOrInfinity => "ERR increment would produce NaN or Infinity",
            StringError::MaxSize => "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            StringError::OffsetOutOfRange => "ERR offset is out of range",
        }
    }
}

impl fmt::Display for StringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reply_text())
    }
}

impl std::error::Error for StringError {}

/// The integer a string value holds, by Redis's `getLongLongFromObject` rules.
pub fn value_as_i64(current: &StrValue) -> Result<i64, StringError> {
    match current {
        StrValue::Int(i) => Ok(*i),
        StrValue::Inline(_) | StrValue::Raw(_) => current
            .text()
            .and_then(parse_i64_strict)
            .ok_or(StringError::NotInteger),
    }
}

/// INCR / INCRBY / DECR: the new value of a key holding `current` (absent = 0).
pub fn incr_by(current: Option<&StrValue>, delta: i64) -> Result<i64, StringError> {
    let old = current.map_or(Ok(0), value_as_i64)?;
    old.checked_add(delta).ok_or(StringError::Overflow)
}

/// DECRBY: as Redis, a `delta` of `i64::MIN` is refused before looking at the value.
pub fn decr_by(current: Option<&StrValue>, delta: i64) -> Result<i64, StringError> {
    let negated = delta.checked_neg().ok_or(StringError::DecrementOverflow)?;
    incr_by(current, negated)
}

/// INCRBYFLOAT: the new text of a key holding `current` (absent = 0) after adding the
/// float text `delta`. See [`format_incrbyfloat`] for how closely this matches Redis's
/// `long double` output.
pub fn incr_by_float(current: Option<&StrValue>, delta: &[u8]) -> Result<Vec<u8>, StringError> {
    let old = match current {
        None => 0.0,
        Some(StrValue::Int(i)) => *i as f64,
        Some(s @ (StrValue::Inline(_) | StrValue::Raw(_))) => {
            s.text().and_then(parse_f64).ok_or(StringError::NotFloat)?
        }
    };
    let delta = parse_f64(delta).ok_or(StringError::NotFloat)?;
    format_incrbyfloat(old, delta)
        .map(String::into_bytes)
        .ok_or(StringError::NanOrInfinity)
}

/// GETRANGE with Redis's index rules: negative indexes count from the end, both ends
/// inclusive, clamped; an empty result when the range is empty.
#[must_use]
pub fn getrange(bytes: &[u8], start: i64, end: i64) -> &[u8] {
    let len = bytes.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    }
    .max(0);
    let end = end.min(len - 1);
    if len == 0 || start > end {
        return &[];
    }
    &bytes[start as usize..=end as usize]
}

/// SETRANGE on `current` (empty for an absent key): overwrites from `offset`, padding
/// with zero bytes, and returns the new length. An empty `value` changes nothing (and
/// the caller must not create an absent key). `max_len_bytes` is `proto-max-bulk-len`.
pub fn setrange(
    current: &mut Vec<u8>,
    offset: i64,
    value: &[u8],
    max_len_bytes: u64,
) -> Result<usize, StringError> {
    if offset < 0 {
        return Err(StringError::OffsetOutOfRange);
    }
    if value.is_empty() {
        return Ok(current.len());
    }
    let offset = offset as u64;
    let new_end = offset
        .checked_add(value.len() as u64)
        .ok_or(StringError::MaxSize)?;
    // The second bound keeps a caller-supplied huge limit from reaching the allocator.
    if new_end > max_len_bytes || new_end > isize::MAX as u64 {
        return Err(StringError::MaxSize);
    }
    let offset = usize::try_from(offset).map_err(|_| StringError::MaxSize)?;
    let new_end = offset + value.len();
    if current.len() < new_end {
        current.resize(new_end, 0);
    }
    current[offset..new_end].copy_from_slice(value);
    Ok(current.len())
}

/// APPEND onto an existing value; returns the new length. (APPEND to an absent key just
/// stores `value`, without the size check, as Redis.)
pub fn append(
    current: &mut Vec<u8>,
    value: &[u8],
    max_len_bytes: u64,
) -> Result<usize, StringError> {
    let total = current.len() as u64 + value.len() as u64;
    if total > max_len_bytes {
        return Err(StringError::MaxSize);
    }
    current.extend_from_slice(value);
    Ok(current.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> StrValue {
        StrValue::from_bytes(text.as_bytes())
    }

    #[test]
    fn incr() {
        assert_eq!(incr_by(None, 1), Ok(1));
        assert_eq!(incr_by(Some(&s("10")), -11), Ok(-1));
        assert_eq!(incr_by(Some(&s("9223372036854775806")), 1), Ok(i64::MAX));
        assert_eq!(
            incr_by(Some(&s("9223372036854775807")), 1),
            Err(StringError::Overflow)
        );
        assert_eq!(
            incr_by(Some(&s("-9223372036854775808")), -1),
            Err(StringError::Overflow)
        );
        assert_eq!(
            incr_by(Some(&s("9223372036854775808")), 1),
            Err(StringError::NotInteger)
        );
        assert_eq!(incr_by(Some(&s("-0")), 1), Err(StringError::NotInteger));
        assert_eq!(incr_by(Some(&s("007")), 1), Err(StringError::NotInteger));
        assert_eq!(incr_by(Some(&s(" 1")), 1), Err(StringError::NotInteger));
        assert_eq!(incr_by(Some(&s("1.5")), 1), Err(StringError::NotInteger));
        assert_eq!(decr_by(Some(&s("5")), 7), Ok(-2));
        assert_eq!(
            decr_by(Some(&s("5")), i64::MIN),
            Err(StringError::DecrementOverflow)
        );
        assert_eq!(decr_by(None, i64::MAX), Ok(-i64::MAX));
        assert_eq!(
            StringError::Overflow.to_string(),
            "ERR increment or decrement would overflow"
        );
        assert_eq!(
            StringError::NotInteger.reply_text(),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn incr_float() {
        let f = |cur: Option<&str>, d: &str| {
            incr_by_float(cur.map(s).as_ref(), d.as_bytes()).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(f(Some("10.50"), "0.1").as_deref(), Ok("10.6"));
        assert_eq!(f(Some("3.0e3"), "0").as_deref(), Ok("3000"));
        assert_eq!(f(Some("5.0e3"), "2.0e2").as_deref(), Ok("5200"));
        assert_eq!(f(None, "1").as_deref(), Ok("1"));
        assert_eq!(f(Some("1"), "0.25").as_deref(), Ok("1.25"));
        assert_eq!(
            f(Some("17179869184"), "17179869184").as_deref(),
            Ok("34359738368")
        );
        assert_eq!(f(Some("1"), "-1.1").as_deref(), Ok("-0.1"));
        assert_eq!(f(Some("abc"), "1"), Err(StringError::NotFloat));
        assert_eq!(f(Some("1"), "x"), Err(StringError::NotFloat));
        assert_eq!(f(Some("1"), " 1"), Err(StringError::NotFloat));
        assert_eq!(f(Some("1"), "nan"), Err(StringError::NotFloat));
        assert_eq!(f(Some("1"), "inf"), Err(StringError::NanOrInfinity));
        assert_eq!(
            f(Some("1.7e308"), "1.7e308"),
            Err(StringError::NanOrInfinity)
        );
    }

    #[test]
    fn getrange_indexes() {
        let v = b"This is a string";
        assert_eq!(getrange(v, 0, 3), b"This");
        assert_eq!(getrange(v, -3, -1), b"ing");
        assert_eq!(getrange(v, 0, -1), v);
        assert_eq!(getrange(v, 10, 100), b"string");
        assert_eq!(getrange(v, 5, 3), b"");
        assert_eq!(getrange(v, -1, -5), b"");
        assert_eq!(getrange(v, -100, 2), b"Thi");
        assert_eq!(getrange(v, -100, -99), b"T");
        assert_eq!(getrange(v, i64::MIN, i64::MAX), v);
        assert_eq!(getrange(b"", 0, -1), b"");
        assert_eq!(getrange(v, 100, 200), b"");
    }

    #[test]
    fn setrange_and_append() {
        let mut v = b"Hello World".to_vec();
        assert_eq!(setrange(&mut v, 6, b"Redis", 1 << 20), Ok(11));
        assert_eq!(v, b"Hello Redis");
        let mut v = Vec::new();
        assert_eq!(setrange(&mut v, 3, b"ab", 1 << 20), Ok(5));
        assert_eq!(v, b"\0\0\0ab");
        assert_eq!(setrange(&mut v, 1, b"", 1 << 20), Ok(5));
        assert_eq!(
            setrange(&mut v, -1, b"x", 1 << 20),
            Err(StringError::OffsetOutOfRange)
        );
        assert_eq!(setrange(&mut v, 100, b"x", 100), Err(StringError::MaxSize));
        assert_eq!(setrange(&mut v, 99, b"x", 100), Ok(100));
        assert_eq!(
            setrange(&mut v, i64::MAX, b"x", u64::MAX),
            Err(StringError::MaxSize)
        );
        // Empty value: no check on the offset's size, as Redis.
        assert_eq!(setrange(&mut Vec::new(), i64::MAX, b"", 10), Ok(0));
        let mut v = b"ab".to_vec();
        assert_eq!(append(&mut v, b"cd", 4), Ok(4));
        assert_eq!(append(&mut v, b"e", 4), Err(StringError::MaxSize));
        assert_eq!(v, b"abcd");
        assert_eq!(
            StringError::MaxSize.to_string(),
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        );
    }
}
