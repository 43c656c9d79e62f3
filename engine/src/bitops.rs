//! Bitmap and bit-field semantics on string bytes (Redis's `bitops.c`): bit offsets,
//! BITCOUNT/BITPOS ranges, BITOP, BITFIELD types, reads, writes and overflow rules.
//! Bits are numbered from the most significant bit of byte 0, as in Redis.

use crate::number::parse_i64_strict;

/// `ERR bit offset is not an integer or out of range`.
pub const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
/// `ERR bit is not an integer or out of range` (SETBIT's value).
pub const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";
/// BITFIELD type error.
pub const BITFIELD_TYPE_ERR: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
/// Widest signed bit field (`i64`).
pub const MAX_SIGNED_FIELD_BITS: u32 = 64;
/// Widest unsigned bit field (`u63`: replies are signed 64-bit integers).
pub const MAX_UNSIGNED_FIELD_BITS: u32 = 63;

/// A bit offset argument (`getBitOffsetFromArgument`): `#n` means `n * bits` when
/// `hash_bits` is given (BITFIELD). Out of range when negative or when its byte is at or
/// past `max_bytes` (`proto-max-bulk-len`).
pub fn parse_bit_offset(arg: &[u8], hash_bits: Option<u32>, max_bytes: u64) -> Option<u64> {
    let (digits, mul) = match hash_bits {
        Some(bits) if arg.len() > 1 && arg[0] == b'#' => (&arg[1..], Some(bits)),
        _ => (arg, None),
    };
    let mut off = parse_i64_strict(digits)?;
    if let Some(bits) = mul {
        // C multiplies a `long long` unchecked; wrapping gives the same result.
        off = off.wrapping_mul(i64::from(bits));
    }
    if off < 0 || (off as u64 >> 3) >= max_bytes {
        return None;
    }
    Some(off as u64)
}

/// The bit at `offset` (0 beyond the end).
#[must_use]
pub fn get_bit(bytes: &[u8], offset: u64) -> bool {
    usize::try_from(offset >> 3)
        .ok()
        .and_then(|i| bytes.get(i))
        .is_some_and(|b| b & (0x80 >> (offset & 7)) != 0)
}

/// Sets the bit at `offset` (which must be inside `bytes`); returns the old bit.
pub fn set_bit(bytes: &mut [u8], offset: u64, on: bool) -> bool {
    let i = (offset >> 3) as usize;
    let mask = 0x80 >> (offset & 7);
    let old = bytes[i] & mask != 0;
    if on {
        bytes[i] |= mask;
    } else {
        bytes[i] &= !mask;
    }
    old
}

/// Number of set bits in `bytes`, eight bytes at a time.
#[must_use]
pub fn popcount(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut n = 0u64;
    for c in &mut chunks {
        let w = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        n += u64::from(w.count_ones());
    }
    for b in chunks.remainder() {
        n += u64::from(b.count_ones());
    }
    n
}

/// A `start end` range of BITCOUNT/BITPOS resolved to inclusive bit positions, with
/// Redis's negative-index and clamping rules; `None` when empty.
#[must_use]
pub fn resolve_range(
    len_bytes: usize,
    start: i64,
    end: i64,
    bit_units: bool,
) -> Option<(u64, u64)> {
    let mut total = len_bytes as i64;
    if bit_units {
        total <<= 3;
    }
    let mut start = if start < 0 {
        total.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        total.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    if bit_units {
        Some((start as u64, end as u64))
    } else {
        Some(((start as u64) << 3, ((end as u64) << 3) | 7))
    }
}

/// Set bits in the inclusive bit range `[lo, hi]` (inside `bytes`).
#[must_use]
pub fn count_range(bytes: &[u8], lo: u64, hi: u64) -> u64 {
    let (a, b) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let mut n = popcount(&bytes[a..=b]);
    let head = bytes[a] & !(0xffu8 >> (lo & 7));
    let tail = bytes[b] & (0x7fu8 >> (hi & 7));
    n -= u64::from(head.count_ones()) + u64::from(tail.count_ones());
    n
}

/// First bit equal to `bit` in the inclusive bit range `[lo, hi]` (inside `bytes`).
#[must_use]
pub fn find_bit(bytes: &[u8], lo: u64, hi: u64, bit: bool) -> Option<u64> {
    let skip = if bit { 0u8 } else { 0xff };
    let mut pos = lo;
    // Bit by bit up to a byte boundary.
    while pos <= hi && pos & 7 != 0 {
        if get_bit(bytes, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    // Whole bytes inside the range, skipping eight at a time while they cannot match.
    let end_byte = (hi + 1) >> 3;
    let mut byte = pos >> 3;
    let skip_word = u64::from_ne_bytes([skip; 8]);
    while byte + 8 <= end_byte {
        let i = byte as usize;
        let c = &bytes[i..i + 8];
        if u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) != skip_word {
            break;
        }
        byte += 8;
    }
    while byte < end_byte {
        let b = bytes[byte as usize];
        if b != skip {
            let lead = if bit {
                b.leading_zeros()
            } else {
                b.leading_ones()
            };
            return Some((byte << 3) + u64::from(lead));
        }
        byte += 1;
    }
    pos = pos.max(byte << 3);
    while pos <= hi {
        if get_bit(bytes, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// BITOP's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

impl BitOp {
    /// The operation named by BITOP's first argument (any case).
    #[must_use]
    pub fn parse(name: &[u8]) -> Option<Self> {
        [
            ("and", BitOp::And),
            ("or", BitOp::Or),
            ("xor", BitOp::Xor),
            ("not", BitOp::Not),
        ]
        .into_iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
        .map(|(_, op)| op)
    }
}

/// BITOP over `srcs` (absent keys are empty): shorter inputs are zero-padded to the
/// longest. Empty when every input is.
#[must_use]
pub fn bitop(op: BitOp, srcs: &[&[u8]]) -> Vec<u8> {
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![0u8; maxlen];
    let Some((first, rest)) = srcs.split_first() else {
        return out;
    };
    out[..first.len()].copy_from_slice(first);
    match op {
        BitOp::Not => out.iter_mut().for_each(|b| *b = !*b),
        BitOp::And => {
            for s in rest {
                for (o, b) in out.iter_mut().zip(s.iter()) {
                    *o &= b;
                }
                out[s.len()..].iter_mut().for_each(|b| *b = 0);
            }
        }
        BitOp::Or | BitOp::Xor => {
            for s in rest {
                for (o, b) in out.iter_mut().zip(s.iter()) {
                    if op == BitOp::Or {
                        *o |= b;
                    } else {
                        *o ^= b;
                    }
                }
            }
        }
    }
    out
}

/// A BITFIELD type: `i1`..`i64` or `u1`..`u63`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldType {
    pub signed: bool,
    pub bits: u32,
}

impl FieldType {
    /// Parses a type argument as Redis (`i`/`u` are case-sensitive; the number stops at a
    /// NUL byte as C's `strlen` does).
    #[must_use]
    pub fn parse(arg: &[u8]) -> Option<Self> {
        let signed = match arg.first()? {
            b'i' => true,
            b'u' => false,
            _ => return None,
        };
        let rest = &arg[1..];
        let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
        let bits = parse_i64_strict(rest)?;
        let max = if signed {
            MAX_SIGNED_FIELD_BITS
        } else {
            MAX_UNSIGNED_FIELD_BITS
        };
        if bits < 1 || bits > i64::from(max) {
            return None;
        }
        Some(Self {
            signed,
            bits: bits as u32,
        })
    }
}

/// BITFIELD overflow behaviours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

impl Overflow {
    #[must_use]
    pub fn parse(arg: &[u8]) -> Option<Self> {
        if arg.eq_ignore_ascii_case(b"wrap") {
            Some(Overflow::Wrap)
        } else if arg.eq_ignore_ascii_case(b"sat") {
            Some(Overflow::Sat)
        } else if arg.eq_ignore_ascii_case(b"fail") {
            Some(Overflow::Fail)
        } else {
            None
        }
    }
}

/// The unsigned field of `bits` bits at bit `offset` (zero beyond the end).
#[must_use]
pub fn get_unsigned(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..u64::from(bits) {
        v = (v << 1) | u64::from(get_bit(bytes, offset + j));
    }
    v
}

/// The signed (two's complement) field of `bits` bits at bit `offset`.
#[must_use]
pub fn get_signed(bytes: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(bytes, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

/// Writes the low `bits` bits of `value` at bit `offset` (inside `bytes`).
pub fn set_field(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let bit = (value >> (bits - 1 - j)) & 1 == 1;
        set_bit(bytes, offset + u64::from(j), bit);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: `Some(limit)` when `value + incr` overflows
/// `bits` (the wrapped or saturated value; for FAIL, any value).
#[must_use]
pub fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > maxincr) {
        Some(if ow == Overflow::Wrap { wrap() } else { max })
    } else if incr < 0 && incr < minincr {
        Some(if ow == Overflow::Wrap { wrap() } else { 0 })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`.
#[must_use]
pub fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(if ow == Overflow::Wrap { wrap() } else { max })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(if ow == Overflow::Wrap { wrap() } else { min })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model_count(bytes: &[u8], lo: u64, hi: u64) -> u64 {
        (lo..=hi).filter(|&p| get_bit(bytes, p)).count() as u64
    }

    fn model_find(bytes: &[u8], lo: u64, hi: u64, bit: bool) -> Option<u64> {
        (lo..=hi).find(|&p| get_bit(bytes, p) == bit)
    }

    proptest! {
        #[test]
        fn count_and_find_match_a_bit_by_bit_model(
            bytes in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 1..80),
            a in 0u64..640, b in 0u64..640, bit in any::<bool>(),
        ) {
            let n = bytes.len() as u64 * 8;
            let (lo, hi) = (a.min(b) % n, a.max(b) % n);
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            prop_assert_eq!(count_range(&bytes, lo, hi), model_count(&bytes, lo, hi));
            prop_assert_eq!(find_bit(&bytes, lo, hi, bit), model_find(&bytes, lo, hi, bit));
        }

        #[test]
        fn fields_round_trip(bytes in proptest::collection::vec(any::<u8>(), 9..20), off in 0u64..8, bits in 1u32..=64, v in any::<u64>()) {
            let mut b = bytes.clone();
            set_field(&mut b, off, bits, v);
            let masked = if bits == 64 { v } else { v & ((1 << bits) - 1) };
            prop_assert_eq!(get_unsigned(&b, off, bits), masked);
        }
    }

    #[test]
    fn offsets_and_types() {
        assert_eq!(parse_bit_offset(b"7", None, 512), Some(7));
        assert_eq!(parse_bit_offset(b"#2", Some(8), 512), Some(16));
        assert_eq!(parse_bit_offset(b"#2", None, 512), None);
        assert_eq!(parse_bit_offset(b"-1", None, 512), None);
        assert_eq!(parse_bit_offset(b"4096", None, 512), None);
        assert_eq!(parse_bit_offset(b"4095", None, 512), Some(4095));
        assert_eq!(
            FieldType::parse(b"i64"),
            Some(FieldType {
                signed: true,
                bits: 64
            })
        );
        assert_eq!(FieldType::parse(b"u64"), None);
        assert_eq!(FieldType::parse(b"I8"), None);
        assert_eq!(FieldType::parse(b"u0"), None);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Sat), None);
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), Some(-128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), Some(-128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(signed_overflow(300, 0, 8, Overflow::Wrap), Some(44));
    }

    #[test]
    fn bitop_pads_with_zeros() {
        assert_eq!(bitop(BitOp::And, &[b"\xff\xff", b"\x0f"]), b"\x0f\x00");
        assert_eq!(bitop(BitOp::Or, &[b"\x01", b"\x10\x01"]), b"\x11\x01");
        assert_eq!(bitop(BitOp::Xor, &[b"\xff", b"\x0f", b""]), b"\xf0");
        assert_eq!(bitop(BitOp::Not, &[b"\x0f"]), b"\xf0");
        assert!(bitop(BitOp::Or, &[b"", b""]).is_empty());
    }
}
