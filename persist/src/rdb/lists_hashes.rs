//! Lists and hashes in RDB files: every encoding Redis 2.x..7.x and Valkey 8/9 write
//! (list: linked list 1, ziplist 10, quicklist 14 and 18; hash: 4, zipmap 9, ziplist
//! 13, listpack 16), read into percore's [`List`] and [`Hash`]. A corrupt nested
//! encoding is an [`RdbErrorKind::CorruptValue`] at the offset of the blob holding it,
//! with the offset inside the blob in the text.

#![allow(
    clippy::many_single_char_names,
    clippy::comparison_chain,
    reason = "p (position), n (count), e (encoding byte), f (callback) as in ziplist.c; the length-prefix tests read as in ziplist.c"
)]

use super::error::{RdbError, RdbErrorKind};
use percore_engine::hashes::{Hash, HashLimits};
use percore_engine::listpack::Listpack;
use percore_engine::lists::{DEFAULT_LIST_MAX_LISTPACK_SIZE, End, List};
use percore_engine::number::{I64_MAX_DECIMAL_BYTES, format_i64};

// lists and hashes
pub const TYPE_LIST: u8 = 1;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Quicklist node containers (`QUICKLIST_NODE_CONTAINER_*`).
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
pub const QUICKLIST_NODE_PACKED: u64 = 2;
/// A ziplist's header (`zlbytes`, `zltail`, `zllen`) and end byte.
const ZIPLIST_HEADER_BYTES: usize = 10;
const ZIPLIST_END: u8 = 0xFF;
// end lists and hashes

/// Whether `t` is a type byte this module reads.
#[must_use]
pub fn handles(t: u8) -> bool {
    matches!(
        t,
        TYPE_LIST
            | TYPE_HASH
            | TYPE_HASH_ZIPMAP
            | TYPE_LIST_ZIPLIST
            | TYPE_HASH_ZIPLIST
            | TYPE_LIST_QUICKLIST
            | TYPE_HASH_LISTPACK
            | TYPE_LIST_QUICKLIST_2
    )
}

/// A corrupt nested value: `what` at byte `inner` of the blob that starts at `at`.
pub fn corrupt(at: usize, kind: &str, inner: usize, what: &str) -> RdbError {
    RdbError::new(
        RdbErrorKind::CorruptNested(format!(
            "corrupt {kind}: {what} at byte {inner} of the encoded value"
        )),
        at as u64,
    )
}

/// Calls `f` on each entry of a ziplist blob (`ziplistValidateIntegrity` deep), as text.
pub fn ziplist_entries(
    zl: &[u8],
    at: usize,
    kind: &str,
    mut f: impl FnMut(&[u8]) -> Result<(), RdbError>,
) -> Result<usize, RdbError> {
    let bad = |inner, what| Err(corrupt(at, kind, inner, what));
    if zl.len() < ZIPLIST_HEADER_BYTES + 1 {
        return bad(0, "ziplist shorter than its header");
    }
    let total = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    if total != zl.len() {
        return bad(0, "ziplist length differs from its blob's");
    }
    if zl[zl.len() - 1] != ZIPLIST_END {
        return bad(zl.len() - 1, "ziplist without its end byte");
    }
    let count = u16::from_le_bytes([zl[8], zl[9]]);
    let mut p = ZIPLIST_HEADER_BYTES;
    let mut n = 0usize;
    let mut prev_len = 0usize;
    let mut num = [0u8; I64_MAX_DECIMAL_BYTES];
    while zl[p] != ZIPLIST_END {
        let start = p;
        let get = |i: usize| zl.get(i).copied();
        // prevlen
        let Some(b) = get(p) else {
            return bad(p, "entry past the end");
        };
        let stated_prev = if b < 254 {
            p += 1;
            usize::from(b)
        } else if b == 254 {
            let Some(s) = zl.get(p + 1..p + 5) else {
                return bad(p, "entry past the end");
            };
            p += 5;
            u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize
        } else {
            return bad(p, "bad previous-entry length");
        };
        if stated_prev != prev_len {
            return bad(
                start,
                "previous-entry length differs from the previous entry",
            );
        }
        let Some(e) = get(p) else {
            return bad(p, "entry past the end");
        };
        let (hdr, len): (usize, usize) = match e >> 6 {
            0 => (1, usize::from(e & 0x3F)),
            1 => {
                let Some(lo) = get(p + 1) else {
                    return bad(p, "entry past the end");
                };
                (2, (usize::from(e & 0x3F) << 8) | usize::from(lo))
            }
            2 if e == 0x80 => {
                let Some(s) = zl.get(p + 1..p + 5) else {
                    return bad(p, "entry past the end");
                };
                (5, u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
            }
            2 => return bad(p, "bad entry encoding"),
            _ => {
                let (v, used): (i64, usize) = match e {
                    0xC0 => (
                        zl.get(p + 1..p + 3)
                            .map(|s| i64::from(i16::from_le_bytes([s[0], s[1]])))
                            .ok_or_else(|| corrupt(at, kind, p, "entry past the end"))?,
                        3,
                    ),
                    0xD0 => (
                        zl.get(p + 1..p + 5)
                            .map(|s| i64::from(i32::from_le_bytes([s[0], s[1], s[2], s[3]])))
                            .ok_or_else(|| corrupt(at, kind, p, "entry past the end"))?,
                        5,
                    ),
                    0xE0 => (
                        zl.get(p + 1..p + 9)
                            .and_then(|s| s.try_into().ok())
                            .map(i64::from_le_bytes)
                            .ok_or_else(|| corrupt(at, kind, p, "entry past the end"))?,
                        9,
                    ),
                    0xF0 => (
                        zl.get(p + 1..p + 4)
                            .map(|s| i64::from((i32::from_le_bytes([0, s[0], s[1], s[2]])) >> 8))
                            .ok_or_else(|| corrupt(at, kind, p, "entry past the end"))?,
                        4,
                    ),
                    0xFE => (
                        get(p + 1)
                            .map(|b| i64::from(b as i8))
                            .ok_or_else(|| corrupt(at, kind, p, "entry past the end"))?,
                        2,
                    ),
                    0xF1..=0xFD => (i64::from(e & 0x0F) - 1, 1),
                    _ => return bad(p, "bad entry encoding"),
                };
                let t = format_i64(v, &mut num);
                f(t)?;
                p += used;
                prev_len = p - start;
                n += 1;
                if p >= zl.len() {
                    return bad(start, "entry runs past the end");
                }
                continue;
            }
        };
        let Some(text) = zl
            .get(p + hdr..)
            .and_then(|rest| rest.get(..len))
            .filter(|_| p + hdr + len < zl.len())
        else {
            return bad(start, "entry runs past the end");
        };
        f(text)?;
        p += hdr + len;
        prev_len = p - start;
        n += 1;
    }
    if p != zl.len() - 1 {
        return bad(p, "bytes after the end byte");
    }
    if count != u16::MAX && usize::from(count) != n {
        return bad(8, "entry count differs from the entries");
    }
    Ok(n)
}

/// Calls `f` on each field/value of a zipmap blob (RDB type 9, Redis < 2.6).
pub fn zipmap_pairs(
    zm: &[u8],
    at: usize,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), RdbError>,
) -> Result<(), RdbError> {
    let kind = "zipmap";
    let bad = |inner, what| Err(corrupt(at, kind, inner, what));
    let mut p = 1;
    let len_at = |p: &mut usize| -> Option<usize> {
        let b = *zm.get(*p)?;
        if b < 254 {
            *p += 1;
            Some(usize::from(b))
        } else if b == 254 {
            let s = zm.get(*p + 1..*p + 5)?;
            *p += 5;
            Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        } else {
            None
        }
    };
    loop {
        match zm.get(p) {
            None => return bad(p, "no end byte"),
            Some(255) => break,
            Some(_) => {}
        }
        let Some(klen) = len_at(&mut p) else {
            return bad(p, "bad length");
        };
        let Some(k) = zm.get(p..p + klen) else {
            return bad(p, "field past the end");
        };
        p += klen;
        let Some(vlen) = len_at(&mut p) else {
            return bad(p, "bad length");
        };
        let Some(&free) = zm.get(p) else {
            return bad(p, "value past the end");
        };
        p += 1;
        let Some(v) = zm.get(p..p + vlen) else {
            return bad(p, "value past the end");
        };
        p += vlen + usize::from(free);
        f(k, v)?;
    }
    if p + 1 != zm.len() {
        return bad(p, "bytes after the end byte");
    }
    Ok(())
}

/// A listpack blob checked entry by entry.
pub fn listpack(blob: Vec<u8>, at: usize, kind: &str) -> Result<Listpack, RdbError> {
    Listpack::from_bytes(blob).map_err(|e| corrupt(at, kind, e.offset, e.what))
}

/// Builds a list pushing entries at the tail.
pub struct ListBuilder {
    list: List,
}

impl Default for ListBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ListBuilder {
    #[must_use]
    pub fn new() -> Self {
        Self { list: List::new() }
    }
    pub fn push(&mut self, v: &[u8]) {
        self.list.push(End::Tail, v, DEFAULT_LIST_MAX_LISTPACK_SIZE);
    }
    #[must_use]
    pub fn finish(self) -> List {
        self.list
    }
}

/// Builds a hash from pairs, refusing duplicate fields as Redis does.
pub struct HashBuilder {
    hash: Hash,
}

impl HashBuilder {
    #[must_use]
    pub fn new(fields: usize) -> Self {
        let limits = HashLimits::default();
        Self {
            hash: if fields > limits.max_listpack_entries {
                Hash::with_table(fields)
            } else {
                Hash::new()
            },
        }
    }

    /// Adds a pair; `false` when the field was already there.
    pub fn add(&mut self, k: &[u8], v: &[u8]) -> bool {
        if self.hash.contains(k) {
            return false;
        }
        self.hash.push_new(k, v, HashLimits::default());
        true
    }

    #[must_use]
    pub fn finish(self) -> Hash {
        self.hash
    }
}

/// A hash from a listpack of pairs (type 16), converted to a table when past the default
/// limits as Redis converts on load.
pub fn hash_from_listpack(lp: Listpack, at: usize) -> Result<Hash, RdbError> {
    let limits = HashLimits::default();
    let n = lp.len();
    let Some(mut h) = Hash::from_listpack(lp) else {
        return Err(corrupt(
            at,
            "hash listpack",
            0,
            "odd entry count or duplicate field",
        ));
    };
    if n == 0 {
        return Err(corrupt(at, "hash listpack", 0, "empty hash"));
    }
    let too_long = h.iter().any(|(k, v)| {
        k.text_len() > limits.max_listpack_value || v.text_len() > limits.max_listpack_value
    });
    if n / 2 > limits.max_listpack_entries || too_long {
        h.convert_to_table();
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziplist_of_redis_3_2() {
        // A ziplist as redis 3.2 wrote it for RPUSH l a 1 -1 300 70000: entries "a", 1,
        // -1, 300, 70000.
        let mut zl = vec![0u8; 10];
        let mut prev = 0u8;
        let mut push = |zl: &mut Vec<u8>, entry: &[u8]| {
            zl.push(prev);
            zl.extend_from_slice(entry);
            prev = (entry.len() + 1) as u8;
        };
        push(&mut zl, b"\x01a");
        push(&mut zl, b"\xF2");
        push(&mut zl, b"\xFE\xFF");
        push(&mut zl, b"\xC0\x2C\x01");
        push(&mut zl, b"\xF0\x70\x11\x01");
        zl.push(0xFF);
        let len = zl.len() as u32;
        zl[0..4].copy_from_slice(&len.to_le_bytes());
        zl[8..10].copy_from_slice(&5u16.to_le_bytes());
        let mut got = Vec::new();
        ziplist_entries(&zl, 0, "ziplist", |t| {
            got.push(String::from_utf8_lossy(t).into_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["a", "1", "-1", "300", "70000"]);
        for i in 0..zl.len() {
            let mut bad = zl.clone();
            bad[i] ^= 0x41;
            let _ = ziplist_entries(&bad, 0, "ziplist", |_| Ok(()));
            let _ = ziplist_entries(&zl[..i], 0, "ziplist", |_| Ok(()));
        }
    }

    #[test]
    fn zipmap_pairs_read() {
        let zm = b"\x02\x01a\x01\x00b\x02cd\x03\x02xyz..\xFF";
        let mut got = Vec::new();
        zipmap_pairs(zm, 0, |k, v| {
            got.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), b"b".to_vec()),
                (b"cd".to_vec(), b"xyz".to_vec())
            ]
        );
        for i in 0..zm.len() {
            let _ = zipmap_pairs(&zm[..i], 0, |_, _| Ok(()));
        }
    }
}
