//! Sets and sorted sets in RDB files: the nested blobs Redis and Valkey write (intset,
//! listpack, ziplist) and the plain forms.
//!
//! Written as redis-server 7.0 writes them: a set as type 11 (intset blob) when it is
//! an intset, else type 2 (a length and one string per member; 7.0 has no set
//! listpack); a sorted set as type 17 (listpack blob: member, score, ...) when small,
//! else type 5 (a length, then per member its string and its score as a little-endian
//! `f64`, greatest first as Redis writes them).
//!
//! Read: set types 2, 11, 20 (listpack, Redis 7.2 / Valkey 8); sorted-set types 3
//! (scores as text), 5, 12 (ziplist) and 17. A malformed blob (lengths that disagree
//! with its size, an unknown entry encoding, a missing terminator, a bad intset width,
//! duplicate members, a score that is not a number) is an error naming the blob's
//! offset, never a panic.

#![allow(
    clippy::many_single_char_names,
    reason = "blob readers follow Redis's C: p = position, b = encoding byte, d = data"
)]

use percore_engine::intset::IntSet;
use percore_engine::number::{I64_MAX_DECIMAL_BYTES, format_i64, parse_i64_strict};
use percore_engine::sets::{Member, SetLimits, SetValue};
use percore_engine::zsets::{ZSetLimits, ZSetValue, parse_score};

/// RDB value types of sets and sorted sets (`RDB_TYPE_*`).
pub mod types {
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const ZSET_2: u8 = 5;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const SET_LISTPACK: u8 = 20;
}

/// Bytes of a listpack header: total bytes (`u32` LE) and element count (`u16` LE).
const LISTPACK_HEADER_BYTES: usize = 6;
/// A listpack's element count when it does not fit the header's `u16`.
const LISTPACK_COUNT_UNKNOWN: u16 = u16::MAX;
/// The listpack and ziplist terminator.
const BLOB_END: u8 = 0xFF;
/// Bytes of a ziplist header: total bytes, tail offset (`u32` LE each), count (`u16`).
const ZIPLIST_HEADER_BYTES: usize = 10;

/// One entry of a listpack or ziplist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobEntry<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl BlobEntry<'_> {
    fn to_vec(self) -> Vec<u8> {
        match self {
            BlobEntry::Int(i) => format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).to_vec(),
            BlobEntry::Str(s) => s.to_vec(),
        }
    }
}

/// Reads every entry of a listpack, checking each against the blob's bounds.
pub fn read_listpack(blob: &[u8]) -> Result<Vec<BlobEntry<'_>>, String> {
    if blob.len() < LISTPACK_HEADER_BYTES + 1 {
        return Err("listpack shorter than its header".into());
    }
    let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if total != blob.len() {
        return Err(format!(
            "listpack states {total} bytes but holds {}",
            blob.len()
        ));
    }
    let count = u16::from_le_bytes([blob[4], blob[5]]);
    let mut out = Vec::new();
    let mut p = LISTPACK_HEADER_BYTES;
    let bad = |p: usize| format!("listpack entry at byte {p} runs past the end");
    loop {
        let Some(&b) = blob.get(p) else {
            return Err("listpack has no terminator".into());
        };
        if b == BLOB_END {
            if p + 1 != blob.len() {
                return Err("listpack terminator before its end".into());
            }
            break;
        }
        let start = p;
        let take = |from: usize, n: usize| blob.get(from..from + n).ok_or_else(|| bad(start));
        let (entry, len) = if b & 0x80 == 0 {
            (BlobEntry::Int(i64::from(b & 0x7f)), 1)
        } else if b & 0xC0 == 0x80 {
            let n = usize::from(b & 0x3f);
            (BlobEntry::Str(take(p + 1, n)?), 1 + n)
        } else if b & 0xE0 == 0xC0 {
            let raw =
                (u16::from(b & 0x1f) << 8) | u16::from(*take(p + 1, 1)?.first().unwrap_or(&0));
            // 13-bit two's complement.
            let v = if raw >= 1 << 12 {
                i64::from(raw) - (1 << 13)
            } else {
                i64::from(raw)
            };
            (BlobEntry::Int(v), 2)
        } else if b & 0xF0 == 0xE0 {
            let n = (usize::from(b & 0x0f) << 8) | usize::from(take(p + 1, 1)?[0]);
            (BlobEntry::Str(take(p + 2, n)?), 2 + n)
        } else {
            match b {
                0xF0 => {
                    let l = take(p + 1, 4)?;
                    let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
                    (BlobEntry::Str(take(p + 5, n)?), 5 + n)
                }
                0xF1 => {
                    let d = take(p + 1, 2)?;
                    (
                        BlobEntry::Int(i64::from(i16::from_le_bytes([d[0], d[1]]))),
                        3,
                    )
                }
                0xF2 => {
                    let d = take(p + 1, 3)?;
                    let v = i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8;
                    (BlobEntry::Int(i64::from(v)), 4)
                }
                0xF3 => {
                    let d = take(p + 1, 4)?;
                    (
                        BlobEntry::Int(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]]))),
                        5,
                    )
                }
                0xF4 => {
                    let d = take(p + 1, 8)?;
                    let mut a = [0; 8];
                    a.copy_from_slice(d);
                    (BlobEntry::Int(i64::from_le_bytes(a)), 9)
                }
                _ => {
                    return Err(format!(
                        "listpack entry at byte {p} has unknown encoding {b:#04x}"
                    ));
                }
            }
        };
        let back = backlen_size(len);
        take(p + len, back)?;
        p += len + back;
        out.push(entry);
    }
    if count != LISTPACK_COUNT_UNKNOWN && usize::from(count) != out.len() {
        return Err(format!(
            "listpack states {count} entries but holds {}",
            out.len()
        ));
    }
    Ok(out)
}

/// Bytes of the back-length that follows an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..16383 => 2,
        16383..2_097_151 => 3,
        2_097_151..268_435_455 => 4,
        _ => 5,
    }
}

/// Appends one entry to a listpack body (integers in their integer encodings, as
/// Redis's `lpAppend` stores strings that are canonical integers).
fn push_listpack_entry(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len();
    if let Some(v) = parse_i64_strict(s) {
        if (0..=127).contains(&v) {
            out.push(v as u8);
        } else if (-4096..4096).contains(&v) {
            let u = (v as u16) & 0x1fff;
            out.push(0xC0 | (u >> 8) as u8);
            out.push(u as u8);
        } else if i16::try_from(v).is_ok() {
            out.push(0xF1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            out.push(0xF2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            out.push(0xF3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            out.push(0xF4);
            out.extend_from_slice(&v.to_le_bytes());
        }
    } else if s.len() < 64 {
        out.push(0x80 | s.len() as u8);
        out.extend_from_slice(s);
    } else if s.len() < 4096 {
        out.push(0xE0 | (s.len() >> 8) as u8);
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    } else {
        out.push(0xF0);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    }
    let l = out.len() - start;
    // `lpEncodeBacklen`: big-endian 7-bit groups, every byte but the first flagged.
    match backlen_size(l) {
        1 => out.push(l as u8),
        2 => out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]),
        3 => out.extend_from_slice(&[
            (l >> 14) as u8,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        4 => out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        _ => out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
    }
}

/// A listpack of `entries`.
pub fn build_listpack<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0; LISTPACK_HEADER_BYTES];
    let mut n = 0usize;
    for e in entries {
        push_listpack_entry(&mut out, e);
        n += 1;
    }
    out.push(BLOB_END);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    let count = u16::try_from(n)
        .ok()
        .filter(|&c| c != LISTPACK_COUNT_UNKNOWN)
        .unwrap_or(LISTPACK_COUNT_UNKNOWN);
    out[4..6].copy_from_slice(&count.to_le_bytes());
    out
}

/// Reads every entry of a ziplist (RDB 9 and older).
pub fn read_ziplist(blob: &[u8]) -> Result<Vec<BlobEntry<'_>>, String> {
    if blob.len() < ZIPLIST_HEADER_BYTES + 1 {
        return Err("ziplist shorter than its header".into());
    }
    let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if total != blob.len() {
        return Err(format!(
            "ziplist states {total} bytes but holds {}",
            blob.len()
        ));
    }
    let count = u16::from_le_bytes([blob[8], blob[9]]);
    let mut p = ZIPLIST_HEADER_BYTES;
    let mut out = Vec::new();
    loop {
        let Some(&first) = blob.get(p) else {
            return Err("ziplist has no terminator".into());
        };
        if first == BLOB_END {
            break;
        }
        let start = p;
        let take = |from: usize, n: usize| {
            blob.get(from..from + n)
                .ok_or_else(|| format!("ziplist entry at byte {start} runs past the end"))
        };
        // prevlen
        p += if first < 254 { 1 } else { 5 };
        let b = *take(p, 1)?.first().unwrap_or(&0);
        let entry = match b >> 6 {
            0 => {
                let n = usize::from(b & 0x3f);
                p += 1;
                let s = take(p, n)?;
                p += n;
                BlobEntry::Str(s)
            }
            1 => {
                let n = (usize::from(b & 0x3f) << 8) | usize::from(take(p + 1, 1)?[0]);
                p += 2;
                let s = take(p, n)?;
                p += n;
                BlobEntry::Str(s)
            }
            2 => {
                let l = take(p + 1, 4)?;
                let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                p += 5;
                let s = take(p, n)?;
                p += n;
                BlobEntry::Str(s)
            }
            _ => {
                p += 1;
                let (v, n) = match b {
                    0xC0 => {
                        let d = take(p, 2)?;
                        (i64::from(i16::from_le_bytes([d[0], d[1]])), 2)
                    }
                    0xD0 => {
                        let d = take(p, 4)?;
                        (i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])), 4)
                    }
                    0xE0 => {
                        let d = take(p, 8)?;
                        let mut a = [0; 8];
                        a.copy_from_slice(d);
                        (i64::from_le_bytes(a), 8)
                    }
                    0xF0 => {
                        let d = take(p, 3)?;
                        (i64::from(i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8), 3)
                    }
                    0xFE => (i64::from(take(p, 1)?[0] as i8), 1),
                    0xF1..=0xFD => (i64::from(b & 0x0f) - 1, 0),
                    _ => {
                        return Err(format!(
                            "ziplist entry at byte {start} has unknown encoding {b:#04x}"
                        ));
                    }
                };
                p += n;
                BlobEntry::Int(v)
            }
        };
        out.push(entry);
    }
    if p + 1 != blob.len() {
        return Err("ziplist terminator before its end".into());
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(format!(
            "ziplist states {count} entries but holds {}",
            out.len()
        ));
    }
    Ok(out)
}

/// A set from RDB members; an error on duplicates.
pub fn set_from_members(members: &[Vec<u8>], limits: &SetLimits) -> Result<SetValue, String> {
    let s = SetValue::from_members(members.iter().map(Vec::as_slice), limits);
    if s.len() != members.len() {
        return Err("duplicate set members".into());
    }
    if s.is_empty() {
        return Err("empty set".into());
    }
    Ok(s)
}

/// A set from an intset blob (type 11).
pub fn set_from_intset(blob: &[u8], limits: &SetLimits) -> Result<SetValue, String> {
    let is = IntSet::from_blob(blob).map_err(|e| e.to_string())?;
    if is.is_empty() {
        return Err("empty intset".into());
    }
    Ok(SetValue::from_intset(is, limits))
}

/// A set from a listpack blob (type 20).
pub fn set_from_listpack(blob: &[u8], limits: &SetLimits) -> Result<SetValue, String> {
    let members: Vec<Vec<u8>> = read_listpack(blob)?
        .into_iter()
        .map(BlobEntry::to_vec)
        .collect();
    set_from_members(&members, limits)
}

/// A sorted set from `(member, score)` pairs; an error on duplicates or NaN.
pub fn zset_from_pairs(
    pairs: Vec<(Vec<u8>, f64)>,
    limits: &ZSetLimits,
) -> Result<ZSetValue, String> {
    if pairs.is_empty() {
        return Err("empty sorted set".into());
    }
    if pairs.iter().any(|(_, s)| s.is_nan()) {
        return Err("sorted set score is NaN".into());
    }
    let n = pairs.len();
    let mut seen = std::collections::HashSet::with_capacity(n);
    if !pairs.iter().all(|(m, _)| seen.insert(m.as_slice())) {
        return Err("duplicate sorted set members".into());
    }
    let entries = pairs.into_iter().map(|(m, s)| (s, m)).collect();
    Ok(ZSetValue::from_entries(entries, limits))
}

/// A sorted set from a listpack or ziplist's entries: member, score, member, score...
pub fn zset_from_blob_entries(
    entries: &[BlobEntry<'_>],
    limits: &ZSetLimits,
) -> Result<ZSetValue, String> {
    if !entries.len().is_multiple_of(2) {
        return Err("sorted set blob has an odd number of entries".into());
    }
    let mut pairs = Vec::with_capacity(entries.len() / 2);
    for p in entries.chunks_exact(2) {
        let score = match p[1] {
            BlobEntry::Int(i) => i as f64,
            BlobEntry::Str(s) => parse_score(s).ok_or("sorted set score is not a number")?,
        };
        pairs.push((p[0].to_vec(), score));
    }
    zset_from_pairs(pairs, limits)
}

/// The text of a score as Redis's `d2string` writes it into a listpack.
fn score_text(s: f64, buf: &mut Vec<u8>) -> &[u8] {
    // `%.17g` with `inf`/`-inf`: for the integral scores `d2string` prints with
    // `ll2string`, `%.17g` prints the same digits.
    buf.clear();
    buf.extend_from_slice(percore_engine::number::format_double(s).as_bytes());
    buf
}

/// The RDB type and body of a set, as redis-server 7.0 writes it. `write_string` writes
/// one RDB string (with the encoder's compression and integer rules).
pub fn encode_set(
    s: &SetValue,
    out: &mut Vec<u8>,
    mut write_string: impl FnMut(&mut Vec<u8>, &[u8]),
) -> u8 {
    if let Some(is) = s.as_intset() {
        write_string(out, &is.to_blob());
        return types::SET_INTSET;
    }
    crate::rdb::write_len(out, s.len() as u64);
    let mut buf = [0; I64_MAX_DECIMAL_BYTES];
    s.for_each(|m| match m {
        Member::Int(i) => write_string(out, format_i64(i, &mut buf)),
        Member::Bytes(b) => write_string(out, b),
    });
    types::SET
}

/// The RDB type and body of a sorted set, as redis-server 7.0 writes it.
pub fn encode_zset(
    z: &ZSetValue,
    out: &mut Vec<u8>,
    mut write_string: impl FnMut(&mut Vec<u8>, &[u8]),
) -> u8 {
    if z.is_listpack() {
        let mut texts: Vec<Vec<u8>> = Vec::with_capacity(z.len() * 2);
        let mut buf = Vec::new();
        z.for_ranks(0, z.len(), false, |s, m| {
            texts.push(m.to_vec());
            texts.push(score_text(s, &mut buf).to_vec());
        });
        let blob = build_listpack(texts.iter().map(Vec::as_slice));
        write_string(out, &blob);
        return types::ZSET_LISTPACK;
    }
    crate::rdb::write_len(out, z.len() as u64);
    z.for_ranks(0, z.len(), true, |s, m| {
        write_string(out, m);
        out.extend_from_slice(&s.to_le_bytes());
    });
    types::ZSET_2
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn listpack_round_trips_every_encoding() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"30000",
            b"-30000",
            b"8000000",
            b"-8000000",
            b"2000000000",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"",
            b"abc",
            b"01",
            &mid,
            &long,
        ];
        let blob = build_listpack(items.iter().copied());
        let back = read_listpack(&blob).unwrap();
        let texts: Vec<Vec<u8>> = back.into_iter().map(BlobEntry::to_vec).collect();
        assert_eq!(texts, items.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn ziplist_entries() {
        // zlbytes, zltail, zllen=3; entries: "ab" (00 02), int8 -3 (FE), imm 5 (F6); end.
        let mut z = vec![0, 0, 0, 0, 0, 0, 0, 0, 3, 0];
        z.extend_from_slice(&[0, 0x02, b'a', b'b', 4, 0xFE, 0xFD, 3, 0xF6, 0xFF]);
        let n = z.len() as u32;
        z[..4].copy_from_slice(&n.to_le_bytes());
        let e = read_ziplist(&z).unwrap();
        assert_eq!(
            e,
            vec![BlobEntry::Str(b"ab"), BlobEntry::Int(-3), BlobEntry::Int(5)]
        );
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        assert!(read_listpack(&[7, 0, 0, 0, 1, 0, 0xFF]).is_err());
        assert!(read_listpack(&[8, 0, 0, 0, 1, 0, 0x85, 0xFF]).is_err());
        assert!(read_listpack(&[9, 0, 0, 0, 2, 0, 0x05, 1, 0xFF]).is_err());
        assert!(read_ziplist(&[11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF]).is_ok());
        assert!(read_ziplist(&[12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xFF]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_blobs_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = read_listpack(&blob);
            let _ = read_ziplist(&blob);
        }

        #[test]
        fn listpacks_round_trip(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..40)) {
            let blob = build_listpack(items.iter().map(Vec::as_slice));
            let back: Vec<Vec<u8>> = read_listpack(&blob).unwrap().into_iter().map(BlobEntry::to_vec).collect();
            prop_assert_eq!(back, items);
        }
    }
}
