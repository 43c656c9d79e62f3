//! A listpack: small byte-string/integer entries stored back to back in one buffer, in
//! exactly Redis's listpack format (so an RDB listpack blob is this buffer as is).
//!
//! Layout: a 6-byte header (total bytes as `u32` LE, entry count as `u16` LE, or
//! [`COUNT_UNKNOWN`] when the count does not fit), the entries, then the end byte `0xFF`.
//! Each entry is an encoding byte (and length bytes), its data, then its "back length":
//! the size of encoding + data written as 7-bit groups read right to left, so the list
//! can be walked backwards.
//!
//! Encodings (Redis `listpack.c`): `0xxxxxxx` 7-bit unsigned int; `10xxxxxx` string of
//! up to 63 bytes; `110xxxxx xxxxxxxx` 13-bit signed int; `1110xxxx xxxxxxxx` string of up
//! to 4095 bytes; `0xF0` + `u32` string length; `0xF1`/`0xF2`/`0xF3`/`0xF4` 16/24/32/64-bit
//! signed ints. Strings that are canonical integers are stored as integers.
//!
//! Positions are byte offsets of an entry's first byte; [`Listpack::end`] is the offset of
//! the end byte (a valid insertion point meaning "append").

use crate::number::{I64_MAX_DECIMAL_BYTES, format_i64, parse_i64_strict};
use std::borrow::Cow;

/// Header bytes: total length (`u32`) and entry count (`u16`).
pub const HEADER_BYTES: usize = 6;
/// The end byte.
pub const EOF_BYTE: u8 = 0xFF;
/// Header count meaning "count the entries" (Redis `LP_HDR_NUMELE_UNKNOWN`).
pub const COUNT_UNKNOWN: u16 = u16::MAX;
/// An entry's encoding + length prefix is at most this long.
const MAX_ENC_HEADER_BYTES: usize = 9;
/// A back length is at most this long.
const MAX_BACKLEN_BYTES: usize = 5;
/// Strings longer than this are never tried as integers (Redis `LONG_STR_SIZE` - 1).
const INT_CANDIDATE_MAX_BYTES: usize = 20;
/// [`Listpack::push_back_amortized`] grows the buffer by at least its size divided by this.
const AMORTIZED_GROWTH_DIVISOR: usize = 16;
/// Largest listpack Redis accepts (`LISTPACK_MAX_SAFETY_SIZE`, 1 GiB).
pub const MAX_SAFE_BYTES: usize = 1 << 30;

/// One entry's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpValue<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> LpValue<'a> {
    /// The text, formatting an integer into `buf`.
    #[must_use]
    #[inline]
    pub fn as_bytes<'b>(&self, buf: &'b mut [u8; I64_MAX_DECIMAL_BYTES]) -> &'b [u8]
    where
        'a: 'b,
    {
        match *self {
            LpValue::Int(i) => format_i64(i, buf),
            LpValue::Str(s) => s,
        }
    }

    /// The text, borrowed unless an integer.
    #[must_use]
    pub fn to_bytes(&self) -> Cow<'a, [u8]> {
        match *self {
            LpValue::Int(i) => Cow::Owned(format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).to_vec()),
            LpValue::Str(s) => Cow::Borrowed(s),
        }
    }

    /// Appends the text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes(&mut [0; I64_MAX_DECIMAL_BYTES]));
    }

    /// Whether the entry's text equals `s` (Redis `lpCompare`).
    #[must_use]
    pub fn eq_bytes(&self, s: &[u8]) -> bool {
        match *self {
            LpValue::Str(t) => t == s,
            LpValue::Int(i) => format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]) == s,
        }
    }

    /// Length of the text in bytes.
    #[must_use]
    pub fn text_len(&self) -> usize {
        match *self {
            LpValue::Str(s) => s.len(),
            LpValue::Int(i) => format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]).len(),
        }
    }
}

/// A corrupt listpack found by [`Listpack::from_bytes`]: what is wrong and at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LpError {
    pub offset: usize,
    pub what: &'static str,
}

impl std::fmt::Display for LpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt listpack at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for LpError {}

/// A listpack (see the module documentation).
#[derive(Clone, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
}

impl Default for Listpack {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|v| v.to_bytes().escape_ascii().to_string()))
            .finish()
    }
}

/// Encodes the integer form of `v` into `out`; returns its length.
fn encode_int(v: i64, out: &mut [u8; MAX_ENC_HEADER_BYTES]) -> usize {
    if (0..=127).contains(&v) {
        out[0] = v as u8;
        1
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1i64 << 13) + v } else { v } as u64;
        out[0] = ((u >> 8) as u8) | 0xC0;
        out[1] = u as u8;
        2
    } else if (-32768..=32767).contains(&v) {
        out[0] = 0xF1;
        out[1..3].copy_from_slice(&(v as i16).to_le_bytes());
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        out[0] = 0xF2;
        out[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
        4
    } else if i32::try_from(v).is_ok() {
        out[0] = 0xF3;
        out[1..5].copy_from_slice(&(v as i32).to_le_bytes());
        5
    } else {
        out[0] = 0xF4;
        out[1..9].copy_from_slice(&v.to_le_bytes());
        9
    }
}

/// Encodes a string header for `len` bytes into `out`; returns its length.
fn encode_str_header(len: usize, out: &mut [u8; MAX_ENC_HEADER_BYTES]) -> usize {
    if len < 64 {
        out[0] = 0x80 | len as u8;
        1
    } else if len < 4096 {
        out[0] = 0xE0 | (len >> 8) as u8;
        out[1] = len as u8;
        2
    } else {
        out[0] = 0xF0;
        out[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        5
    }
}

/// Bytes taken by the back length of an entry of `l` bytes.
fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2_097_151 {
        3
    } else if l < 268_435_455 {
        4
    } else {
        5
    }
}

/// Encodes the back length of an entry of `l` bytes (Redis `lpEncodeBacklen`).
fn encode_backlen(l: usize, out: &mut [u8; MAX_BACKLEN_BYTES]) -> usize {
    let n = backlen_size(l);
    // The leftmost byte holds the highest group without the continuation bit; each byte to
    // its right holds the next lower 7 bits with the bit set.
    for (i, b) in out[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        let group = ((l >> shift) & 127) as u8;
        *b = if i == 0 { group } else { group | 128 };
    }
    n
}

/// An entry to write: its header and data.
struct Encoded<'a> {
    head: [u8; MAX_ENC_HEADER_BYTES],
    head_len: usize,
    data: &'a [u8],
    back: [u8; MAX_BACKLEN_BYTES],
    back_len: usize,
}

impl<'a> Encoded<'a> {
    #[inline]
    fn new(s: &'a [u8]) -> Self {
        let mut head = [0; MAX_ENC_HEADER_BYTES];
        let (head_len, data) = match try_int(s) {
            Some(i) => (encode_int(i, &mut head), &[][..]),
            None => (encode_str_header(s.len(), &mut head), s),
        };
        Self::finish(head, head_len, data)
    }

    fn int(i: i64) -> Self {
        let mut head = [0; MAX_ENC_HEADER_BYTES];
        let head_len = encode_int(i, &mut head);
        Self::finish(head, head_len, &[])
    }

    #[inline]
    fn finish(head: [u8; MAX_ENC_HEADER_BYTES], head_len: usize, data: &'a [u8]) -> Self {
        let mut back = [0; MAX_BACKLEN_BYTES];
        let back_len = encode_backlen(head_len + data.len(), &mut back);
        Self {
            head,
            head_len,
            data,
            back,
            back_len,
        }
    }

    fn len(&self) -> usize {
        self.head_len + self.data.len() + self.back_len
    }

    fn write_into(&self, out: &mut [u8]) {
        let (h, rest) = out.split_at_mut(self.head_len);
        h.copy_from_slice(&self.head[..self.head_len]);
        let (d, b) = rest.split_at_mut(self.data.len());
        d.copy_from_slice(self.data);
        b.copy_from_slice(&self.back[..self.back_len]);
    }
}

/// `s` as an integer when Redis's listpack would store it as one (`lpStringToInt64`).
#[inline]
fn try_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > INT_CANDIDATE_MAX_BYTES {
        return None;
    }
    parse_i64_strict(s)
}

#[allow(
    clippy::many_single_char_names,
    reason = "b/p/s/u/v follow listpack.c's names"
)]
/// Decodes the entry whose encoding byte is at `p`: (value, encoding + data length).
/// `None` when the bytes are not a valid entry within `buf`.
#[inline]
fn decode_at(buf: &[u8], p: usize) -> Option<(LpValue<'_>, usize)> {
    let b = *buf.get(p)?;
    let byte = |i: usize| buf.get(p + i).copied();
    if b & 0x80 == 0 {
        return Some((LpValue::Int(i64::from(b)), 1));
    }
    if b & 0xC0 == 0x80 {
        let len = usize::from(b & 0x3F);
        let s = buf.get(p + 1..p + 1 + len)?;
        return Some((LpValue::Str(s), 1 + len));
    }
    if b & 0xE0 == 0xC0 {
        let u = (u16::from(b & 0x1F) << 8) | u16::from(byte(1)?);
        let v = if u >= 1 << 12 {
            i64::from(u) - (1 << 13)
        } else {
            i64::from(u)
        };
        return Some((LpValue::Int(v), 2));
    }
    if b & 0xF0 == 0xE0 {
        let len = (usize::from(b & 0x0F) << 8) | usize::from(byte(1)?);
        let s = buf.get(p + 2..p + 2 + len)?;
        return Some((LpValue::Str(s), 2 + len));
    }
    match b {
        0xF0 => {
            let len = u32::from_le_bytes(buf.get(p + 1..p + 5)?.try_into().ok()?) as usize;
            let s = buf.get(p + 5..(p + 5).checked_add(len)?)?;
            Some((LpValue::Str(s), 5 + len))
        }
        0xF1 => {
            let v = i16::from_le_bytes(buf.get(p + 1..p + 3)?.try_into().ok()?);
            Some((LpValue::Int(i64::from(v)), 3))
        }
        0xF2 => {
            let s = buf.get(p + 1..p + 4)?;
            let u = u32::from(s[0]) | (u32::from(s[1]) << 8) | (u32::from(s[2]) << 16);
            // Sign-extend 24 bits.
            let v = ((u << 8) as i32) >> 8;
            Some((LpValue::Int(i64::from(v)), 4))
        }
        0xF3 => {
            let v = i32::from_le_bytes(buf.get(p + 1..p + 5)?.try_into().ok()?);
            Some((LpValue::Int(i64::from(v)), 5))
        }
        0xF4 => {
            let v = i64::from_le_bytes(buf.get(p + 1..p + 9)?.try_into().ok()?);
            Some((LpValue::Int(v), 9))
        }
        _ => None,
    }
}

/// The entry at `p` and its whole size (encoding, data and back length), or size 0 at the
/// end byte. The common short forms (7-bit integers, strings under 64 bytes) are decoded
/// inline; `p` must be an entry or the end byte of a valid listpack.
#[inline]
fn decode_entry(buf: &[u8], p: usize) -> (LpValue<'_>, usize) {
    let b = buf[p];
    if b & 0x80 == 0 {
        return (LpValue::Int(i64::from(b)), 2);
    }
    if b & 0xC0 == 0x80 {
        // A string of at most 63 bytes: its back length (at most 64) is one byte.
        let len = usize::from(b & 0x3F);
        return (LpValue::Str(&buf[p + 1..p + 1 + len]), len + 2);
    }
    if b == EOF_BYTE {
        return (LpValue::Int(0), 0);
    }
    let (v, enc) = decode_at(buf, p).expect("listpack entry offsets stay valid");
    (v, enc + backlen_size(enc))
}

/// Reads a back length whose last byte is at `p` (Redis `lpDecodeBacklen`): the length
/// and the number of bytes it took.
#[inline]
fn decode_backlen(buf: &[u8], mut p: usize) -> Option<(usize, usize)> {
    let mut val = 0usize;
    let mut shift = 0;
    let mut n = 0;
    loop {
        let b = *buf.get(p)?;
        val |= usize::from(b & 127) << shift;
        n += 1;
        if b & 128 == 0 || n == MAX_BACKLEN_BYTES {
            break;
        }
        shift += 7;
        p = p.checked_sub(1)?;
    }
    Some((val, n))
}

impl Listpack {
    /// An empty listpack.
    #[must_use]
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(HEADER_BYTES + 1);
        buf.extend_from_slice(&((HEADER_BYTES + 1) as u32).to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.push(EOF_BYTE);
        Self { buf }
    }

    /// A listpack of `items`, in order.
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut lp = Self::new();
        for it in items {
            lp.push_back(it);
        }
        lp
    }

    /// Takes a listpack blob (an RDB payload) after checking every entry: the header's
    /// length and count, each entry's encoding, lengths and back length, and the end
    /// byte. A corrupt blob gives the offset of the first bad byte.
    pub fn from_bytes(buf: Vec<u8>) -> Result<Self, LpError> {
        let err = |offset, what| Err(LpError { offset, what });
        if buf.len() < HEADER_BYTES + 1 {
            return err(0, "shorter than its header");
        }
        if buf.len() > MAX_SAFE_BYTES {
            return err(0, "larger than 1 GiB");
        }
        let total = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if total != buf.len() {
            return err(0, "header length differs from the blob's");
        }
        let count = u16::from_le_bytes([buf[4], buf[5]]);
        let mut p = HEADER_BYTES;
        let mut n = 0usize;
        loop {
            let Some(&b) = buf.get(p) else {
                return err(p, "no end byte");
            };
            if b == EOF_BYTE {
                if p + 1 != buf.len() {
                    return err(p, "bytes after the end byte");
                }
                break;
            }
            let Some((_, enc)) = decode_at(&buf, p) else {
                return err(p, "bad entry encoding or length");
            };
            let bl = backlen_size(enc);
            let end = p + enc + bl;
            if end > buf.len() - 1 {
                return err(p, "entry runs past the end");
            }
            match decode_backlen(&buf, end - 1) {
                Some((l, used)) if l == enc && used == bl => {}
                _ => return err(p + enc, "bad back length"),
            }
            n += 1;
            p = end;
        }
        if count != COUNT_UNKNOWN && usize::from(count) != n {
            return err(4, "header count differs from the entries");
        }
        let mut lp = Self { buf };
        lp.set_count(n);
        Ok(lp)
    }

    /// The listpack's bytes, in Redis's format.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes in use (header, entries, end byte).
    #[must_use]
    pub fn bytes_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated.
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Number of entries.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        let c = u16::from_le_bytes([self.buf[4], self.buf[5]]);
        if c == COUNT_UNKNOWN {
            self.count_entries()
        } else {
            usize::from(c)
        }
    }

    #[cold]
    fn count_entries(&self) -> usize {
        self.iter().count()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf[HEADER_BYTES] == EOF_BYTE
    }

    fn set_count(&mut self, n: usize) {
        let c = if n >= usize::from(COUNT_UNKNOWN) {
            COUNT_UNKNOWN
        } else {
            n as u16
        };
        self.buf[4..6].copy_from_slice(&c.to_le_bytes());
    }

    #[inline]
    fn add_count(&mut self, delta: isize) {
        let c = u16::from_le_bytes([self.buf[4], self.buf[5]]);
        if c == COUNT_UNKNOWN {
            self.add_count_counted();
        } else {
            self.set_count((c as isize + delta) as usize);
        }
    }

    /// [`Listpack::add_count`] for a listpack past 65534 entries: counts them.
    #[cold]
    fn add_count_counted(&mut self) {
        let n = self.count_entries();
        self.set_count(n);
    }

    fn set_total(&mut self) {
        let t = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&t.to_le_bytes());
    }

    /// Offset of the end byte (the append position).
    #[must_use]
    #[inline]
    pub fn end(&self) -> usize {
        self.buf.len() - 1
    }

    /// Offset of the first entry, if any.
    #[must_use]
    #[inline]
    pub fn first(&self) -> Option<usize> {
        (self.buf[HEADER_BYTES] != EOF_BYTE).then_some(HEADER_BYTES)
    }

    /// Offset of the last entry, if any.
    #[must_use]
    #[inline]
    pub fn last(&self) -> Option<usize> {
        self.prev(self.end())
    }

    /// Size of the entry at `p` including its back length.
    #[inline]
    fn entry_size(&self, p: usize) -> usize {
        let (_, enc) = decode_at(&self.buf, p).expect("listpack entry offsets stay valid");
        enc + backlen_size(enc)
    }

    /// Offset of the entry after the one at `p`, if any.
    #[must_use]
    #[inline]
    pub fn next(&self, p: usize) -> Option<usize> {
        let n = p + self.entry_size(p);
        (self.buf[n] != EOF_BYTE).then_some(n)
    }

    /// Offset of the entry before position `p` (an entry or [`Listpack::end`]), if any.
    #[must_use]
    #[inline]
    pub fn prev(&self, p: usize) -> Option<usize> {
        if p <= HEADER_BYTES {
            return None;
        }
        let (l, used) = decode_backlen(&self.buf, p - 1).expect("listpack back lengths stay valid");
        Some(p - used - l)
    }

    /// The value of the entry at `p`.
    #[must_use]
    #[inline]
    pub fn get(&self, p: usize) -> LpValue<'_> {
        decode_at(&self.buf, p)
            .expect("listpack entry offsets stay valid")
            .0
    }

    /// Offset of the entry at `index` (negative counts from the end), if in range.
    #[must_use]
    pub fn seek(&self, index: i64) -> Option<usize> {
        if index >= 0 {
            let mut p = self.first()?;
            for _ in 0..index {
                p = self.next(p)?;
            }
            Some(p)
        } else {
            let mut p = self.last()?;
            for _ in 0..(-(index + 1)) {
                p = self.prev(p)?;
            }
            Some(p)
        }
    }

    /// Calls `f` with up to `count` entries from position `p` (an entry or
    /// [`Listpack::end`]) on, front to back; returns how many it visited. A plain loop
    /// over the bytes, for the readers of many entries (LRANGE): no iterator state to
    /// carry between entries.
    #[inline]
    pub fn for_each_from(
        &self,
        mut p: usize,
        count: usize,
        mut f: impl FnMut(LpValue<'_>),
    ) -> usize {
        let buf = &self.buf[..];
        let mut n = 0;
        while n < count {
            let (v, size) = decode_entry(buf, p);
            if size == 0 {
                break;
            }
            f(v);
            p += size;
            n += 1;
        }
        n
    }

    /// Entries front to back.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            lp: self,
            pos: self.first(),
        }
    }

    /// Entries back to front.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            lp: self,
            pos: self.last(),
        }
    }

    /// Inserts `s` before position `p` (an entry or [`Listpack::end`]).
    pub fn insert(&mut self, p: usize, s: &[u8]) {
        self.insert_encoded(p, &Encoded::new(s));
    }

    /// Inserts the integer `i` before position `p`.
    pub fn insert_int(&mut self, p: usize, i: i64) {
        self.insert_encoded(p, &Encoded::int(i));
    }

    fn insert_encoded(&mut self, p: usize, e: &Encoded<'_>) {
        debug_assert!(p >= HEADER_BYTES && p <= self.end());
        let n = e.len();
        let old = self.buf.len();
        // Exact growth unless the caller reserved room (a no-op then).
        self.buf.reserve_exact(n);
        self.buf.resize(old + n, 0);
        self.buf.copy_within(p..old, p + n);
        e.write_into(&mut self.buf[p..p + n]);
        self.set_total();
        self.add_count(1);
    }

    /// Appends `s`.
    pub fn push_back(&mut self, s: &[u8]) {
        let e = self.end();
        self.insert(e, s);
    }

    /// Appends `s`, growing the buffer by at least a sixteenth of its size (a list's end
    /// node, filled one push at a time: a reallocation every few pushes instead of every
    /// one). [`Listpack::shrink_to_fit`] gives the slack back.
    pub fn push_back_amortized(&mut self, s: &[u8]) {
        let e = Encoded::new(s);
        // The header and back length are written as whole fixed-size arrays, then cut.
        self.reserve_amortized(e.len() + MAX_ENC_HEADER_BYTES + MAX_BACKLEN_BYTES);
        self.append_encoded(&e);
    }

    /// Prepends `s`, growing the buffer as [`Listpack::push_back_amortized`] does.
    pub fn push_front_amortized(&mut self, s: &[u8]) {
        let e = Encoded::new(s);
        self.reserve_amortized(e.len());
        self.insert_encoded(HEADER_BYTES, &e);
    }

    /// Makes room for `additional` more bytes: at least a sixteenth of the size more, and
    /// a capacity that fills a malloc chunk (16-byte granules less the 8-byte header).
    #[inline]
    fn reserve_amortized(&mut self, additional: usize) {
        if self.buf.capacity() - self.buf.len() < additional {
            self.grow_amortized(additional);
        }
    }

    #[cold]
    fn grow_amortized(&mut self, additional: usize) {
        let len = self.buf.len();
        let want = (len + additional).max(len + len / AMORTIZED_GROWTH_DIVISOR);
        let want = (want + 8).next_multiple_of(16) - 8;
        self.buf.reserve_exact(want - len);
    }

    /// Writes `e` in place of the end byte. The caller reserved `e.len()` bytes and the
    /// two fixed arrays' slack: the header and back length go in as whole arrays (fixed
    /// copies) and are cut to length.
    #[inline]
    fn append_encoded(&mut self, e: &Encoded<'_>) {
        let at = self.end();
        self.buf.truncate(at);
        self.buf.extend_from_slice(&e.head);
        self.buf.truncate(at + e.head_len);
        self.buf.extend_from_slice(e.data);
        let at = self.buf.len();
        self.buf.extend_from_slice(&e.back);
        self.buf.truncate(at + e.back_len);
        self.buf.push(EOF_BYTE);
        self.set_total();
        self.add_count(1);
    }

    /// Prepends `s`.
    pub fn push_front(&mut self, s: &[u8]) {
        self.insert(HEADER_BYTES, s);
    }

    /// Removes the entry at `p`; returns the position now at `p` (the next entry or the
    /// end).
    pub fn delete(&mut self, p: usize) -> usize {
        self.delete_range(p, 1);
        p
    }

    /// Removes up to `count` entries starting at `p`; returns how many were removed.
    pub fn delete_range(&mut self, p: usize, count: usize) -> usize {
        let mut q = p;
        let mut n = 0;
        while n < count && self.buf[q] != EOF_BYTE {
            q += self.entry_size(q);
            n += 1;
        }
        self.buf.drain(p..q);
        self.set_total();
        self.add_count(-(n as isize));
        n
    }

    /// Replaces the entry at `p` with `s`.
    pub fn replace(&mut self, p: usize, s: &[u8]) {
        let old = self.entry_size(p);
        let e = Encoded::new(s);
        let new = e.len();
        if new > old {
            let extra = new - old;
            let len = self.buf.len();
            self.buf.reserve_exact(extra);
            self.buf.resize(len + extra, 0);
            self.buf.copy_within(p + old..len, p + new);
        } else if new < old {
            self.buf.drain(p + new..p + old);
        }
        e.write_into(&mut self.buf[p..p + new]);
        self.set_total();
    }

    /// Position of the first entry at or after `p` equal to `s`, looking at every
    /// `skip + 1`-th entry (Redis `lpFind`: `skip` 1 finds hash fields among field/value
    /// pairs).
    #[must_use]
    pub fn find(&self, p: Option<usize>, s: &[u8], skip: usize) -> Option<usize> {
        let want_int = try_int(s);
        let mut cur = p;
        while let Some(q) = cur {
            // A string entry is compared as a string even when `s` reads as an integer:
            // a listpack written elsewhere may keep "-5" as a string (Redis's lpFind
            // compares string entries with memcmp).
            let hit = match self.get(q) {
                LpValue::Int(i) => want_int == Some(i),
                LpValue::Str(t) => t == s,
            };
            if hit {
                return Some(q);
            }
            cur = self.next(q);
            for _ in 0..skip {
                match cur {
                    Some(x) => cur = self.next(x),
                    None => break,
                }
            }
        }
        None
    }

    /// Splits at position `p` (an entry or [`Listpack::end`]): entries from `p` on move
    /// to the returned listpack.
    #[must_use]
    pub fn split_off(&mut self, p: usize) -> Listpack {
        let end = self.end();
        let mut buf = Vec::with_capacity(HEADER_BYTES + (end - p) + 1);
        buf.extend_from_slice(&[0; HEADER_BYTES]);
        buf.extend_from_slice(&self.buf[p..end]);
        buf.push(EOF_BYTE);
        let mut tail = Listpack { buf };
        tail.set_total();
        let n = tail.iter().count();
        tail.set_count(n);
        self.buf.truncate(p);
        self.buf.push(EOF_BYTE);
        self.buf.shrink_to_fit();
        self.set_total();
        let m = self.iter().count();
        self.set_count(m);
        tail
    }

    /// Appends every entry of `other`.
    pub fn append(&mut self, other: &Listpack) {
        let n = self.len() + other.len();
        self.buf.pop();
        self.buf.reserve_exact(other.buf.len() - HEADER_BYTES);
        self.buf
            .extend_from_slice(&other.buf[HEADER_BYTES..other.buf.len()]);
        self.set_total();
        self.set_count(n);
    }

    /// Releases spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    // streams
    /// Appends the integer `i`.
    pub fn push_back_int(&mut self, i: i64) {
        let e = self.end();
        self.insert_int(e, i);
    }

    /// Replaces the entry at `p` with the integer `i`.
    pub fn replace_int(&mut self, p: usize, i: i64) {
        self.replace(p, format_i64(i, &mut [0; I64_MAX_DECIMAL_BYTES]));
    }

    /// Reserves room for `additional` more bytes with the `Vec`'s amortized growth (a
    /// stream node that is appended to many times; [`Listpack::shrink_to_fit`] ends it).
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }
    // end streams
}

impl<'a> IntoIterator for &'a Listpack {
    type Item = LpValue<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Front-to-back iterator.
pub struct Iter<'a> {
    lp: &'a Listpack,
    pos: Option<usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = LpValue<'a>;

    #[inline]
    fn next(&mut self) -> Option<LpValue<'a>> {
        let p = self.pos?;
        let (v, size) = decode_entry(&self.lp.buf, p);
        let n = p + size;
        self.pos = (self.lp.buf[n] != EOF_BYTE).then_some(n);
        Some(v)
    }
}

/// Back-to-front iterator.
pub struct RevIter<'a> {
    lp: &'a Listpack,
    pos: Option<usize>,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = LpValue<'a>;

    #[inline]
    fn next(&mut self) -> Option<LpValue<'a>> {
        let p = self.pos?;
        self.pos = self.lp.prev(p);
        Some(self.lp.get(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(lp: &Listpack) -> Vec<Vec<u8>> {
        lp.iter().map(|v| v.to_bytes().into_owned()).collect()
    }

    #[test]
    fn redis_bytes_for_known_entries() {
        // Bytes as redis-server 7.0 writes them (DUMP of a hash listpack).
        let mut lp = Listpack::new();
        lp.push_back(b"a");
        lp.push_back(b"1");
        assert_eq!(
            lp.as_bytes(),
            &[12, 0, 0, 0, 2, 0, 0x81, b'a', 2, 0x01, 1, 0xFF]
        );
        let mut lp = Listpack::new();
        for v in [
            "-1", "4095", "-4096", "32767", "-32768", "8388607", "-8388608",
        ] {
            lp.push_back(v.as_bytes());
        }
        lp.push_back(b"2147483647");
        lp.push_back(b"-9223372036854775808");
        let got: Vec<_> = lp.iter().collect();
        assert_eq!(got[0], LpValue::Int(-1));
        assert_eq!(got[1], LpValue::Int(4095));
        assert_eq!(got[2], LpValue::Int(-4096));
        assert_eq!(got[6], LpValue::Int(-8_388_608));
        assert_eq!(got[8], LpValue::Int(i64::MIN));
        assert_eq!(lp.as_bytes()[HEADER_BYTES], 0xDF); // -1 as 13-bit: 0x1FFF
        assert_eq!(Listpack::from_bytes(lp.as_bytes().to_vec()).unwrap(), lp);
    }

    #[test]
    fn backlen_round_trips() {
        for l in [
            0,
            1,
            127,
            128,
            16382,
            16383,
            2_097_150,
            2_097_151,
            268_435_454,
            268_435_455,
            1 << 30,
        ] {
            let mut b = [0; MAX_BACKLEN_BYTES];
            let n = encode_backlen(l, &mut b);
            assert_eq!(n, backlen_size(l));
            assert_eq!(decode_backlen(&b[..n], n - 1), Some((l, n)), "{l}");
        }
    }

    #[test]
    fn integer_like_strings_kept_as_strings_are_found() {
        // "-5" as a 2-byte string entry (Redis writes it as an integer; a file may not).
        let buf = vec![11, 0, 0, 0, 1, 0, 0x82, b'-', b'5', 3, EOF_BYTE];
        let lp = Listpack::from_bytes(buf).expect("valid");
        assert_eq!(lp.get(lp.first().unwrap()), LpValue::Str(b"-5"));
        assert_eq!(lp.find(lp.first(), b"-5", 0), lp.first());
        assert_eq!(lp.find(lp.first(), b"5", 0), None);
        let mut ints = Listpack::new();
        ints.push_back(b"-5");
        assert_eq!(ints.find(ints.first(), b"-5", 0), ints.first());
    }

    #[test]
    fn long_strings_and_corruption() {
        let mut lp = Listpack::new();
        lp.push_back(&[b'x'; 100]);
        lp.push_back(&[b'y'; 5000]);
        lp.push_front(b"");
        assert_eq!(lp.len(), 3);
        assert_eq!(lp.get(lp.last().unwrap()), LpValue::Str(&[b'y'; 5000]));
        let ok = lp.as_bytes().to_vec();
        assert!(Listpack::from_bytes(ok.clone()).is_ok());
        for i in 0..ok.len() {
            let mut bad = ok.clone();
            bad[i] ^= 0x5A;
            // Never panics; most flips are caught.
            let _ = Listpack::from_bytes(bad);
            let _ = Listpack::from_bytes(ok[..i].to_vec());
        }
        let mut bad = ok.clone();
        bad[4] = 7;
        assert_eq!(Listpack::from_bytes(bad).unwrap_err().offset, 4);
    }

    #[derive(Clone, Debug)]
    enum Op {
        PushBack(Vec<u8>),
        PushFront(Vec<u8>),
        Insert(usize, Vec<u8>),
        Delete(usize),
        DeleteRange(usize, usize),
        Replace(usize, Vec<u8>),
    }

    fn entry() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string().into_bytes()),
            (-5000i64..5000).prop_map(|i| i.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..80),
            proptest::collection::vec(any::<u8>(), 4000..4200),
            Just(b"007".to_vec()),
            Just(b"-0".to_vec()),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            entry().prop_map(Op::PushBack),
            entry().prop_map(Op::PushFront),
            (any::<usize>(), entry()).prop_map(|(i, e)| Op::Insert(i, e)),
            any::<usize>().prop_map(Op::Delete),
            (any::<usize>(), 0usize..4).prop_map(|(i, n)| Op::DeleteRange(i, n)),
            (any::<usize>(), entry()).prop_map(|(i, e)| Op::Replace(i, e)),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_vec_model(ops in proptest::collection::vec(op(), 0..60)) {
            let mut lp = Listpack::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::PushBack(e) => { lp.push_back(&e); model.push(e); }
                    Op::PushFront(e) => { lp.push_front(&e); model.insert(0, e); }
                    Op::Insert(i, e) => {
                        let i = i % (model.len() + 1);
                        let p = if i == model.len() { lp.end() } else { lp.seek(i as i64).unwrap() };
                        lp.insert(p, &e);
                        model.insert(i, e);
                    }
                    Op::Delete(i) => if !model.is_empty() {
                        let i = i % model.len();
                        let p = lp.seek(i as i64).unwrap();
                        lp.delete(p);
                        model.remove(i);
                    },
                    Op::DeleteRange(i, n) => if !model.is_empty() {
                        let i = i % model.len();
                        let p = lp.seek(i as i64).unwrap();
                        let removed = lp.delete_range(p, n);
                        let m = n.min(model.len() - i);
                        prop_assert_eq!(removed, m);
                        model.drain(i..i + m);
                    },
                    Op::Replace(i, e) => if !model.is_empty() {
                        let i = i % model.len();
                        let p = lp.seek(-(model.len() as i64) + i as i64).unwrap();
                        lp.replace(p, &e);
                        model[i] = e;
                    },
                }
                prop_assert_eq!(lp.len(), model.len());
                prop_assert_eq!(&texts(&lp), &model);
            }
            let mut rev: Vec<Vec<u8>> = lp.iter_rev().map(|v| v.to_bytes().into_owned()).collect();
            rev.reverse();
            prop_assert_eq!(&rev, &model);
            for (i, m) in model.iter().enumerate() {
                let found = lp.find(lp.first(), m, 0).map(|p| texts_before(&lp, p));
                let want = model.iter().position(|x| x == m);
                prop_assert_eq!(found, want, "find {}", i);
            }
            let again = Listpack::from_bytes(lp.as_bytes().to_vec()).unwrap();
            prop_assert_eq!(again, lp);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(lp) = Listpack::from_bytes(bytes) {
                let n = lp.iter().count();
                prop_assert_eq!(n, lp.len());
                prop_assert_eq!(lp.iter_rev().count(), n);
            }
        }
    }

    fn texts_before(lp: &Listpack, p: usize) -> usize {
        let mut n = 0;
        let mut q = lp.first();
        while let Some(x) = q {
            if x == p {
                return n;
            }
            n += 1;
            q = lp.next(x);
        }
        n
    }
}
