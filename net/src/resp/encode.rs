//! Reply encoding straight into a connection's output buffer.
//!
//! Every method appends one complete RESP element (or an aggregate's header, whose elements
//! the caller writes next) in the client's protocol, downgrading RESP3 types to their RESP2
//! forms the way Redis does. Integers and lengths below [`SMALL_INT_COUNT`] come from a
//! precomputed table, like Redis's shared integers and bulk headers; larger ones are
//! formatted by hand two digits at a time. Nothing here allocates once the buffer has grown.

use std::fmt::Write as _;

/// The protocol a client speaks (`HELLO 2` / `HELLO 3`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    Resp2,
    Resp3,
}

/// Integers (and lengths) `0..SMALL_INT_COUNT` are written from a precomputed table.
pub const SMALL_INT_COUNT: usize = 1024;

/// Entry `n` is `n` in decimal followed by `\r\n`; the last byte holds that length.
static SMALL_INT_LINES: [[u8; 8]; SMALL_INT_COUNT] = small_int_lines();

const fn small_int_lines() -> [[u8; 8]; SMALL_INT_COUNT] {
    let mut table = [[0u8; 8]; SMALL_INT_COUNT];
    let mut n = 0;
    while n < SMALL_INT_COUNT {
        let digits = if n < 10 {
            1
        } else if n < 100 {
            2
        } else if n < 1000 {
            3
        } else {
            4
        };
        let mut v = n;
        let mut i = digits;
        while i > 0 {
            i -= 1;
            table[n][i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        table[n][digits] = b'\r';
        table[n][digits + 1] = b'\n';
        table[n][7] = (digits + 2) as u8;
        n += 1;
    }
    table
}

const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Longest `i64` in decimal: `-9223372036854775808`.
const MAX_INT_STR_LEN_BYTES: usize = 20;

/// Writes `v` in decimal at the end of `buf`, returning where it starts.
#[inline]
fn format_u64(mut v: u64, buf: &mut [u8; MAX_INT_STR_LEN_BYTES]) -> usize {
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    i
}

/// Writes `v` (sign included) in decimal at the end of `buf`, returning where it starts.
#[inline]
fn format_i64(v: i64, buf: &mut [u8; MAX_INT_STR_LEN_BYTES]) -> usize {
    let mut start = format_u64(v.unsigned_abs(), buf);
    if v < 0 {
        start -= 1;
        buf[start] = b'-';
    }
    start
}

/// Longest integer line: prefix, `-`, 19 digits, `\r\n`.
const MAX_INT_LINE_LEN_BYTES: usize = 1 + MAX_INT_STR_LEN_BYTES + 2;

/// Appends `prefix`, `v` in decimal, `\r\n`.
#[inline]
fn put_uint_line(out: &mut Vec<u8>, prefix: u8, v: u64) {
    if v < SMALL_INT_COUNT as u64 {
        // One 8-byte load: the entry's last byte (its length) shifts out and the prefix
        // comes in. A fixed 8-byte copy and a truncate beat a variable-length copy.
        let word = u64::from_le_bytes(SMALL_INT_LINES[v as usize]);
        let keep = out.len() + 1 + (word >> 56) as usize;
        out.extend_from_slice(&((word << 8) | u64::from(prefix)).to_le_bytes());
        out.truncate(keep);
    } else {
        put_int_line_slow(out, prefix, false, v);
    }
}

/// Appends `prefix`, `v` in decimal, `\r\n`.
#[inline]
fn put_int_line(out: &mut Vec<u8>, prefix: u8, v: i64) {
    if v >= 0 {
        put_uint_line(out, prefix, v as u64);
    } else {
        put_int_line_slow(out, prefix, true, v.unsigned_abs());
    }
}

fn put_int_line_slow(out: &mut Vec<u8>, prefix: u8, negative: bool, abs: u64) {
    let mut digits = [0u8; MAX_INT_STR_LEN_BYTES];
    let start = format_u64(abs, &mut digits);
    let mut line = [b'\n'; MAX_INT_LINE_LEN_BYTES];
    line[0] = prefix;
    let mut len = 1;
    if negative {
        line[1] = b'-';
        len = 2;
    }
    let digits = &digits[start..];
    line[len..len + digits.len()].copy_from_slice(digits);
    len += digits.len();
    line[len] = b'\r';
    // line[len + 1] is already `\n`.
    let keep = out.len() + len + 2;
    out.extend_from_slice(&line);
    out.truncate(keep);
}

/// Appends `bytes` with CR and LF turned into spaces, so a line reply stays one line.
fn put_line_text(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(bytes.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            _ => b,
        }));
    } else {
        out.extend_from_slice(bytes);
    }
}

/// Longest `%.17g` output: `-1.2345678901234567e-308`.
const MAX_DOUBLE_STR_LEN_BYTES: usize = 32;

/// A fixed buffer to format into without allocating.
struct StackBuf {
    bytes: [u8; MAX_DOUBLE_STR_LEN_BYTES],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        Self {
            bytes: [0; MAX_DOUBLE_STR_LEN_BYTES],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.extend(s.as_bytes());
        Ok(())
    }
}

/// Formats `v` as C's `printf("%.17g")` does (glibc), except that infinities are `inf` and
/// `-inf` and every NaN is `nan`, as Redis writes them.
fn format_g17(v: f64) -> StackBuf {
    const PRECISION: i32 = 17;
    let mut out = StackBuf::new();
    if v.is_nan() {
        out.extend(b"nan");
        return out;
    }
    if v.is_sign_negative() {
        out.push(b'-');
    }
    if v.is_infinite() {
        out.extend(b"inf");
        return out;
    }
    // Rust rounds `{:e}` exactly, half to even, like glibc: 17 significant digits.
    let mut sci = StackBuf::new();
    write!(sci, "{:.16e}", v.abs()).expect("a finite f64 fits in 32 bytes");
    let sci = sci.as_slice();
    let e_at = sci
        .iter()
        .position(|&b| b == b'e')
        .expect("{:e} writes an exponent");
    let mut digits = [0u8; PRECISION as usize];
    digits[0] = sci[0];
    digits[1..].copy_from_slice(&sci[2..e_at]);
    let exp: i32 = std::str::from_utf8(&sci[e_at + 1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("{:e} writes a decimal exponent");
    // %g drops trailing zeros (no `#` flag).
    let significant = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
    if (-4..PRECISION).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            out.extend(&digits[..int_len]);
            if significant > int_len {
                out.push(b'.');
                out.extend(&digits[int_len..significant]);
            }
        } else {
            out.extend(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.extend(&digits[..significant]);
        }
    } else {
        out.push(digits[0]);
        if significant > 1 {
            out.push(b'.');
            out.extend(&digits[1..significant]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        let mut buf = [0u8; MAX_INT_STR_LEN_BYTES];
        let start = format_u64(u64::from(abs), &mut buf);
        out.extend(&buf[start..]);
    }
    out
}

/// Appends `v` formatted as Redis 7.0 formats doubles in replies: `%.17g`, with `inf`,
/// `-inf` and `nan`.
pub fn format_double_g17(v: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(format_g17(v).as_slice());
}

/// Writes many bulk strings in a row (the elements of LRANGE's reply) with the short
/// case inlined into the caller's loop: a bulk of under [`SMALL_INT_COUNT`] bytes is its
/// header as one 8-byte word from the table, the data, and CRLF, whatever the protocol.
pub struct Bulks<'w> {
    out: &'w mut Vec<u8>,
}

impl Bulks<'_> {
    /// A bulk string.
    #[expect(
        clippy::inline_always,
        reason = "inlined into the caller's loop: LRANGE of 100 entries measured 22.6k -> 12.8k instructions with the loop and this inlined"
    )]
    #[inline(always)]
    pub fn bulk(&mut self, data: &[u8]) {
        let len = data.len();
        if len >= SMALL_INT_COUNT {
            return self.long_bulk(data);
        }
        let word = u64::from_le_bytes(SMALL_INT_LINES[len]);
        // The table entry's last byte (its length) shifts out; `$` comes in.
        let line = (word << 8) | u64::from(b'$');
        let header = 1 + (word >> 56) as usize;
        let out = &mut *self.out;
        out.reserve(8 + len + 2);
        let at = out.len();
        out.extend_from_slice(&line.to_le_bytes());
        out.truncate(at + header);
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }

    #[inline(never)]
    fn long_bulk(&mut self, data: &[u8]) {
        ReplyWriter::new(self.out, Protocol::Resp2).bulk(data);
    }

    /// An integer as a bulk string.
    #[inline]
    pub fn int(&mut self, v: i64) {
        let mut digits = [0u8; MAX_INT_STR_LEN_BYTES];
        let start = format_i64(v, &mut digits);
        self.bulk(&digits[start..]);
    }
}

/// Writes replies for one client into its output buffer.
#[derive(Debug)]
pub struct ReplyWriter<'a> {
    pub out: &'a mut Vec<u8>,
    pub proto: Protocol,
}

impl<'a> ReplyWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>, proto: Protocol) -> Self {
        Self { out, proto }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Protocol::Resp3
    }

    /// `+OK`.
    #[inline]
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string; CR and LF in it become spaces.
    #[inline]
    pub fn simple(&mut self, text: &str) {
        self.simple_bytes(text.as_bytes());
    }

    pub(crate) fn simple_bytes(&mut self, text: &[u8]) {
        self.out.reserve(text.len() + 3);
        self.out.push(b'+');
        put_line_text(self.out, text);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error reply. `text` starts with its code (`ERR unknown command ...`,
    /// `WRONGTYPE ...`). As in Redis's `addReplyErrorFormat`, CR and LF at either end are
    /// trimmed and those inside become spaces.
    #[inline]
    pub fn error(&mut self, text: &str) {
        self.error_bytes(text.as_bytes());
    }

    pub(crate) fn error_bytes(&mut self, text: &[u8]) {
        let is_newline = |b: &u8| *b == b'\r' || *b == b'\n';
        let start = text
            .iter()
            .position(|b| !is_newline(b))
            .unwrap_or(text.len());
        let end = text
            .iter()
            .rposition(|b| !is_newline(b))
            .map_or(start, |i| i + 1);
        let text = &text[start..end];
        self.out.reserve(text.len() + 3);
        self.out.push(b'-');
        put_line_text(self.out, text);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `:v`.
    #[inline]
    pub fn int(&mut self, v: i64) {
        put_int_line(self.out, b':', v);
    }

    /// A bulk string.
    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.out.reserve(data.len() + 16);
        put_uint_line(self.out, b'$', data.len() as u64);
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer as a bulk string (`GET` of an integer-encoded value, `INCRBYFLOAT`-like
    /// replies).
    #[inline]
    pub fn bulk_int(&mut self, v: i64) {
        let mut digits = [0u8; MAX_INT_STR_LEN_BYTES];
        let start = format_i64(v, &mut digits);
        self.bulk(&digits[start..]);
    }

    /// A writer of many bulk strings in a row (see [`Bulks`]).
    #[inline]
    pub fn bulks(&mut self) -> Bulks<'_> {
        Bulks { out: self.out }
    }

    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null(&mut self) {
        self.out.extend_from_slice(if self.is_resp3() {
            b"_\r\n"
        } else {
            b"$-1\r\n"
        });
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null_array(&mut self) {
        self.out.extend_from_slice(if self.is_resp3() {
            b"_\r\n"
        } else {
            b"*-1\r\n"
        });
    }

    /// The header of an array of `len` elements.
    #[inline]
    pub fn array(&mut self, len: usize) {
        put_uint_line(self.out, b'*', len as u64);
    }

    /// The header of a map of `len` key/value pairs (RESP2: an array of `2 * len`).
    #[inline]
    pub fn map(&mut self, len: usize) {
        if self.is_resp3() {
            put_uint_line(self.out, b'%', len as u64);
        } else {
            put_uint_line(self.out, b'*', 2 * len as u64);
        }
    }

    /// The header of a set of `len` elements (RESP2: an array).
    #[inline]
    pub fn set(&mut self, len: usize) {
        let prefix = if self.is_resp3() { b'~' } else { b'*' };
        put_uint_line(self.out, prefix, len as u64);
    }

    /// The header of a push message of `len` elements (RESP2: an array, as Redis sends
    /// pub/sub messages).
    #[inline]
    pub fn push(&mut self, len: usize) {
        let prefix = if self.is_resp3() { b'>' } else { b'*' };
        put_uint_line(self.out, prefix, len as u64);
    }

    /// A double: RESP3 `,`, RESP2 a bulk string, both formatted like `%.17g`.
    pub fn double(&mut self, v: f64) {
        let text = format_g17(v);
        if self.is_resp3() {
            self.out.reserve(text.len + 3);
            self.out.push(b',');
            self.out.extend_from_slice(text.as_slice());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_slice());
        }
    }

    /// RESP3 `#t`/`#f`; RESP2 `:1`/`:0`.
    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.out.extend_from_slice(match (self.is_resp3(), v) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        });
    }

    /// A verbatim string with a three-byte format such as `txt` or `mkd` (RESP2: a bulk
    /// string of `text`). Panics if `format` is not three bytes long.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        let format: [u8; 3] = format
            .as_bytes()
            .try_into()
            .expect("a verbatim string format is three bytes");
        self.verbatim_bytes(format, text);
    }

    pub(crate) fn verbatim_bytes(&mut self, format: [u8; 3], text: &[u8]) {
        if self.is_resp3() {
            self.out.reserve(text.len() + 24);
            put_uint_line(self.out, b'=', text.len() as u64 + 4);
            self.out.extend_from_slice(&format);
            self.out.push(b':');
            self.out.extend_from_slice(text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A big number given as its decimal digits (RESP2: a bulk string).
    #[inline]
    pub fn big_number(&mut self, digits: &str) {
        self.big_number_bytes(digits.as_bytes());
    }

    pub(crate) fn big_number_bytes(&mut self, digits: &[u8]) {
        if self.is_resp3() {
            self.out.reserve(digits.len() + 3);
            self.out.push(b'(');
            put_line_text(self.out, digits);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits);
        }
    }

    /// Bytes that are already RESP, such as a cached reply.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(proto: Protocol, f: impl FnOnce(&mut ReplyWriter<'_>)) -> String {
        let mut out = Vec::new();
        f(&mut ReplyWriter::new(&mut out, proto));
        String::from_utf8(out).unwrap()
    }

    fn both(f: impl Fn(&mut ReplyWriter<'_>)) -> (String, String) {
        (with(Protocol::Resp2, &f), with(Protocol::Resp3, &f))
    }

    fn g17(v: f64) -> String {
        let mut out = Vec::new();
        format_double_g17(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn bulks_write_what_bulk_writes() {
        let lens = [0usize, 1, 9, 10, 99, 100, 1023, 1024, 4095, 4096, 9000];
        let ints = [0i64, 7, -1, 1023, 1024, i64::MIN, i64::MAX];
        let mut want = b"+before\r\n".to_vec();
        let mut w = ReplyWriter::new(&mut want, Protocol::Resp2);
        for round in 0..3 {
            for &n in &lens {
                w.bulk(&vec![b'a' + (n % 26) as u8 + round; n]);
            }
            for &i in &ints {
                w.bulk_int(i);
            }
        }
        let mut got = b"+before\r\n".to_vec();
        let mut w = ReplyWriter::new(&mut got, Protocol::Resp2);
        let mut b = w.bulks();
        for round in 0..3 {
            for &n in &lens {
                b.bulk(&vec![b'a' + (n % 26) as u8 + round; n]);
            }
            for &i in &ints {
                b.int(i);
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn ints() {
        for v in [
            0,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            1023,
            1024,
            12345,
            -1,
            -1024,
            i64::MAX,
            i64::MIN,
            1_000_000_007,
        ] {
            assert_eq!(with(Protocol::Resp2, |w| w.int(v)), format!(":{v}\r\n"));
            let s = v.to_string();
            assert_eq!(
                with(Protocol::Resp3, |w| w.bulk_int(v)),
                format!("${}\r\n{s}\r\n", s.len())
            );
        }
        for n in [0, 5, 1023, 1024, 1 << 40] {
            assert_eq!(with(Protocol::Resp2, |w| w.array(n)), format!("*{n}\r\n"));
        }
    }

    #[test]
    #[expect(
        clippy::redundant_closure_for_method_calls,
        reason = "a method path is not general over the writer's lifetime"
    )]
    fn simple_and_errors() {
        assert_eq!(with(Protocol::Resp2, |w| w.ok()), "+OK\r\n");
        assert_eq!(with(Protocol::Resp2, |w| w.simple("PONG")), "+PONG\r\n");
        assert_eq!(with(Protocol::Resp2, |w| w.simple("a\r\nb")), "+a  b\r\n");
        assert_eq!(
            with(Protocol::Resp3, |w| w.error("ERR unknown command 'x'")),
            "-ERR unknown command 'x'\r\n"
        );
        assert_eq!(
            with(Protocol::Resp2, |w| w.error("\r\nERR a\nb\r\n")),
            "-ERR a b\r\n"
        );
        assert_eq!(with(Protocol::Resp2, |w| w.error("\r\n")), "-\r\n");
    }

    #[test]
    #[expect(
        clippy::redundant_closure_for_method_calls,
        reason = "a method path is not general over the writer's lifetime"
    )]
    fn protocol_dependent_types() {
        assert_eq!(both(|w| w.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|w| w.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|w| w.map(3)), ("*6\r\n".into(), "%3\r\n".into()));
        assert_eq!(both(|w| w.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(both(|w| w.push(3)), ("*3\r\n".into(), ">3\r\n".into()));
        assert_eq!(both(|w| w.bool(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(|w| w.bool(false)), (":0\r\n".into(), "#f\r\n".into()));
        assert_eq!(
            both(|w| w.verbatim("txt", b"hi")),
            ("$2\r\nhi\r\n".into(), "=6\r\ntxt:hi\r\n".into())
        );
        assert_eq!(
            both(|w| w.big_number("-123456789012345678901234567890")),
            (
                "$31\r\n-123456789012345678901234567890\r\n".into(),
                "(-123456789012345678901234567890\r\n".into()
            )
        );
        assert_eq!(
            both(|w| w.bulk(b"")),
            ("$0\r\n\r\n".into(), "$0\r\n\r\n".into())
        );
        assert_eq!(
            both(|w| w.raw(b"+x\r\n")),
            ("+x\r\n".into(), "+x\r\n".into())
        );
    }

    #[test]
    fn doubles_match_redis() {
        // Replies seen from redis-server 7.0.15 (ZSCORE in RESP2 and RESP3).
        assert_eq!(
            both(|w| w.double(0.1)),
            (
                "$19\r\n0.10000000000000001\r\n".into(),
                ",0.10000000000000001\r\n".into()
            )
        );
        assert_eq!(
            both(|w| w.double(1e300)),
            (
                "$23\r\n1.0000000000000001e+300\r\n".into(),
                ",1.0000000000000001e+300\r\n".into()
            )
        );
        assert_eq!(
            both(|w| w.double(f64::INFINITY)),
            ("$3\r\ninf\r\n".into(), ",inf\r\n".into())
        );
        assert_eq!(
            both(|w| w.double(f64::NEG_INFINITY)),
            ("$4\r\n-inf\r\n".into(), ",-inf\r\n".into())
        );
        // glibc printf("%.17g") on the same values.
        for (v, s) in [
            (1.5, "1.5"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (100.0, "100"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (0.000_123, "0.00012300000000000001"),
            (3.3, "3.2999999999999998"),
            (1.0 / 3.0, "0.33333333333333331"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "4.9406564584124654e-324"),
            (-1e-300, "-1e-300"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (f64::NAN, "nan"),
        ] {
            assert_eq!(g17(v), s, "{v:e}");
        }
    }
}
