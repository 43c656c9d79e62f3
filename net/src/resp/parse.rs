//! Request parsing: what Redis does in `processMultibulkBuffer` and `processInlineBuffer`.
//!
//! A multibulk request (`*N\r\n$len\r\n...`) is parsed in place: its arguments are ranges
//! into the caller's read buffer. An inline request (a line of text split like Redis's
//! `sdssplitargs`) is copied into a scratch buffer owned by the [`Request`], because quotes
//! and escapes change its bytes. Both buffers are reused, so a warm connection parses
//! without allocating.
//!
//! The rules follow Redis 7.0 byte for byte where a client can tell the difference,
//! including its leniencies: the two bytes after a bulk's data and the byte after a count
//! line's `\r` are skipped without being checked (`*1\r\n$3\r\nGETxx` is `GET`, then the
//! inline request `x`). One deliberate difference: Redis finds line ends with `strchr`, so a
//! NUL byte in the buffer hides any later newline and the connection stalls; here a line
//! ends at its newline whatever it holds, and an inline line is split up to its first NUL
//! exactly as `sdssplitargs` would.

use super::error::ProtoError;

/// Redis's default `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK_LEN_BYTES: usize = 512 * 1024 * 1024;
/// Redis 7.0 rejects a multibulk count above `INT_MAX`.
pub const DEFAULT_MAX_MULTIBULK_LEN: usize = i32::MAX as usize;
/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request, and the longest `*`/`$`
/// count line, that may sit in the buffer without its line end.
pub const DEFAULT_MAX_INLINE_LEN_BYTES: usize = 64 * 1024;
/// The largest multibulk count accepted from a connection that must still authenticate.
pub const UNAUTH_MAX_MULTIBULK_LEN: usize = 10;
/// The largest bulk accepted from a connection that must still authenticate.
pub const UNAUTH_MAX_BULK_LEN_BYTES: usize = 16 * 1024;
/// Argument slots reserved when a multibulk count arrives. More are added only as arguments
/// actually arrive, so a hostile `*2147483647` costs nothing up front (Redis caps its
/// preallocation at 1024 too).
const MAX_ARGS_PREALLOC: usize = 1024;
/// Redis's `LONG_STR_SIZE`: `string2ll` rejects strings this long or longer.
const MAX_INT_STR_LEN_BYTES: usize = 21;

/// Limits applied while parsing requests. `Default` gives Redis's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`: a longer bulk is an invalid bulk length.
    pub max_bulk_len_bytes: usize,
    /// A larger multibulk count is an invalid multibulk length.
    pub max_multibulk_len: usize,
    /// See [`DEFAULT_MAX_INLINE_LEN_BYTES`].
    pub max_inline_len_bytes: usize,
    /// Set for a connection that must authenticate and has not yet: then, as in Redis, a
    /// multibulk count above [`UNAUTH_MAX_MULTIBULK_LEN`] or a bulk above
    /// [`UNAUTH_MAX_BULK_LEN_BYTES`] is rejected.
    pub unauthenticated: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bulk_len_bytes: DEFAULT_MAX_BULK_LEN_BYTES,
            max_multibulk_len: DEFAULT_MAX_MULTIBULK_LEN,
            max_inline_len_bytes: DEFAULT_MAX_INLINE_LEN_BYTES,
            unauthenticated: false,
        }
    }
}

/// The outcome of [`parse_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request was parsed from the first `consumed` bytes. It may have zero
    /// arguments (`*0`, `*-1`, an empty inline line): the caller skips it, as Redis does.
    Complete { consumed: usize },
    /// More bytes are needed. `need_bytes`, when known (inside a bulk), is the buffer length
    /// below which calling again is pointless.
    Incomplete { need_bytes: Option<usize> },
}

/// One parsed request, reused from request to request so its buffers stay warm.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Argument ranges: into the input buffer, or into `scratch` for an inline request.
    args: Vec<(usize, usize)>,
    /// Unescaped inline arguments.
    scratch: Vec<u8>,
    inline: bool,
    /// Where to go on with a multibulk request that was incomplete at the last call.
    resume: Option<Resume>,
}

#[derive(Clone, Copy, Debug)]
struct Resume {
    /// Offset of the next `$` line.
    pos: usize,
    /// Bulks still to read.
    remaining: usize,
    /// Buffer length at the last call; a shorter buffer cannot be the same one grown.
    seen_len: usize,
}

impl Request {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives back the room a huge request left beyond `args` argument slots and
    /// `inline_bytes` of inline scratch (what it holds stays): Redis frees a client's argv
    /// after every command, so a one-off command of 100,000 arguments does not keep its
    /// arrays for the connection's life.
    /// A complete request (no partial parse to resume) is forgotten first, since the next
    /// call parses from scratch anyway; a partial one keeps its ranges.
    pub fn shrink_to(&mut self, args: usize, inline_bytes: usize) {
        if self.args.capacity() <= args && self.scratch.capacity() <= inline_bytes {
            return;
        }
        if self.resume.is_none() {
            self.clear();
        }
        self.args.shrink_to(args);
        self.scratch.shrink_to(inline_bytes);
    }

    /// Number of arguments of the last complete request.
    #[must_use]
    pub fn len(&self) -> usize {
        self.args.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Whether the last request was an inline one (its arguments live in the `Request`).
    #[must_use]
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// Argument `i` of the last complete request. `buf` must be the buffer it was parsed
    /// from (it panics if `i >= len()` or `buf` is too short for the parsed ranges).
    #[inline]
    #[must_use]
    pub fn arg<'a>(&'a self, buf: &'a [u8], i: usize) -> &'a [u8] {
        let (start, end) = self.args[i];
        if self.inline {
            &self.scratch[start..end]
        } else {
            &buf[start..end]
        }
    }

    /// Replaces the contents of `out` with all arguments, in order.
    pub fn fill_argv<'a>(&'a self, buf: &'a [u8], out: &mut Vec<&'a [u8]>) {
        out.clear();
        let src = if self.inline { &self.scratch[..] } else { buf };
        out.extend(self.args.iter().map(|&(start, end)| &src[start..end]));
    }

    /// A multibulk request incomplete at the last call, as Redis would hold it: how many
    /// leading bytes of `buf` it would have taken out of the query buffer already (the
    /// `*` line, the complete arguments and the `$` line of the argument being received)
    /// and the bytes of those complete arguments (CLIENT LIST's `qbuf` and `argv-mem`).
    /// `(0, 0)` when no request is partly parsed.
    #[must_use]
    pub fn partial_progress(&self, buf: &[u8]) -> (usize, usize) {
        let Some(r) = self.resume else {
            return (0, 0);
        };
        let argv = self.args.iter().map(|&(start, end)| end - start).sum();
        let rest = buf.get(r.pos..).unwrap_or_default();
        let taken = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) if rest.first() == Some(&b'$') => r.pos + nl + 1,
            _ => r.pos,
        };
        (taken.min(buf.len()), argv)
    }

    /// Forgets any partially parsed request. Needed only before parsing a buffer that is not
    /// the previous one grown (for example after a connection is reset).
    pub fn clear(&mut self) {
        self.args.clear();
        self.scratch.clear();
        self.inline = false;
        self.resume = None;
    }
}

/// Parses one request from the start of `buf`.
///
/// After `Incomplete`, call again with the same bytes and more appended; the work already
/// done is not repeated, so a large request arriving in many reads costs linear time. To
/// parse an unrelated buffer after an `Incomplete`, call [`Request::clear`] first. On
/// `Complete { consumed }` the caller handles the request and drops `consumed` bytes. On an
/// error the server sends `-ERR {error}` and closes the connection, as Redis does.
pub fn parse_request(
    buf: &[u8],
    limits: &ParseLimits,
    req: &mut Request,
) -> Result<Parsed, ProtoError> {
    if let Some(resume) = req.resume.take()
        && buf.len() >= resume.seen_len
    {
        return parse_bulks(buf, limits, req, resume.pos, resume.remaining);
    }
    req.args.clear();
    req.inline = false;
    match buf.first() {
        None => Ok(Parsed::Incomplete { need_bytes: None }),
        Some(b'*') => parse_multibulk(buf, limits, req),
        Some(_) => parse_inline(buf, limits, req),
    }
}

fn parse_multibulk(
    buf: &[u8],
    limits: &ParseLimits,
    req: &mut Request,
) -> Result<Parsed, ProtoError> {
    match count_line(buf, 0) {
        Line::Int { value, next } => {
            if value > 0 && value as u64 > limits.max_multibulk_len as u64 {
                return Err(ProtoError::InvalidMultibulkLength);
            }
            if limits.unauthenticated && value > UNAUTH_MAX_MULTIBULK_LEN as i64 {
                return Err(ProtoError::UnauthenticatedMultibulkLength);
            }
            if value <= 0 {
                return Ok(Parsed::Complete { consumed: next });
            }
            let count = value as usize;
            req.args.reserve(count.min(MAX_ARGS_PREALLOC));
            parse_bulks(buf, limits, req, next, count)
        }
        Line::NotInt => Err(ProtoError::InvalidMultibulkLength),
        Line::NoCr if buf.len() > limits.max_inline_len_bytes => Err(ProtoError::TooBigMbulkCount),
        Line::NoCr | Line::CrAtEnd => Ok(Parsed::Incomplete { need_bytes: None }),
    }
}

/// Reads `remaining` bulks starting at `pos`, appending their ranges to `req.args`.
fn parse_bulks(
    buf: &[u8],
    limits: &ParseLimits,
    req: &mut Request,
    mut pos: usize,
    mut remaining: usize,
) -> Result<Parsed, ProtoError> {
    while remaining > 0 {
        let need_bytes = if pos < buf.len() {
            match count_line(buf, pos) {
                Line::Int { value, next } => {
                    if buf[pos] != b'$' {
                        return Err(ProtoError::ExpectedDollar(buf[pos]));
                    }
                    if value < 0 || value as u64 > limits.max_bulk_len_bytes as u64 {
                        return Err(ProtoError::InvalidBulkLength);
                    }
                    if limits.unauthenticated && value > UNAUTH_MAX_BULK_LEN_BYTES as i64 {
                        return Err(ProtoError::UnauthenticatedBulkLength);
                    }
                    let end = next.saturating_add(value as usize);
                    // Redis skips the two bytes after the data without checking them.
                    let after = end.saturating_add(2);
                    if after <= buf.len() {
                        req.args.push((next, end));
                        pos = after;
                        remaining -= 1;
                        continue;
                    }
                    Some(after)
                }
                Line::NotInt => {
                    return Err(if buf[pos] == b'$' {
                        ProtoError::InvalidBulkLength
                    } else {
                        ProtoError::ExpectedDollar(buf[pos])
                    });
                }
                Line::NoCr if buf.len() - pos > limits.max_inline_len_bytes => {
                    return Err(ProtoError::TooBigBulkCount);
                }
                Line::NoCr | Line::CrAtEnd => None,
            }
        } else {
            None
        };
        req.resume = Some(Resume {
            pos,
            remaining,
            seen_len: buf.len(),
        });
        return Ok(Parsed::Incomplete { need_bytes });
    }
    Ok(Parsed::Complete { consumed: pos })
}

/// A `*N` or `$N` line starting at `start` (the type byte), as Redis reads it: up to the
/// first `\r`, which must be followed by one more byte.
enum Line {
    /// The line holds an integer; the next line starts at `next`.
    Int { value: i64, next: usize },
    /// The line is complete but not an integer `string2ll` accepts.
    NotInt,
    /// No `\r` anywhere in the rest of the buffer.
    NoCr,
    /// The `\r` is the last byte of the buffer.
    CrAtEnd,
}

/// Reads the count line at `start < buf.len()`. The fast path takes the common shape (1 to
/// 18 digits, no sign, no leading zero, `\r`) in one tight loop; everything else goes
/// through [`count_line_slow`], which follows Redis exactly. Both agree on every input: a
/// digit is never `\r`, so the fast path's `\r` is the first one.
#[inline]
fn count_line(buf: &[u8], start: usize) -> Line {
    let mut i = start + 1;
    if let Some(&first) = buf.get(i)
        && first.wrapping_sub(b'1') < 9
    {
        let mut value = u64::from(first - b'0');
        i += 1;
        let digits_end = buf.len().min(start + 19);
        while i < digits_end {
            let digit = buf[i].wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            value = value * 10 + u64::from(digit);
            i += 1;
        }
        if i + 1 < buf.len() && buf[i] == b'\r' {
            // At most 18 digits: below 10^18, so the cast is exact.
            return Line::Int {
                value: value as i64,
                next: i + 2,
            };
        }
    }
    count_line_slow(buf, start)
}

#[cold]
fn count_line_slow(buf: &[u8], start: usize) -> Line {
    // Like Redis's strchr from the type byte itself.
    let Some(cr) = buf[start..].iter().position(|&b| b == b'\r') else {
        return Line::NoCr;
    };
    let cr = start + cr;
    if cr + 1 >= buf.len() {
        return Line::CrAtEnd;
    }
    if cr == start {
        // The type byte is `\r`: not `$`, which the caller reports first.
        return Line::NotInt;
    }
    match string2ll(&buf[start + 1..cr]) {
        Some(value) => Line::Int {
            value,
            next: cr + 2,
        },
        None => Line::NotInt,
    }
}

/// Redis's `string2ll`: an optional `-`, then digits with no leading zero (except `0`
/// itself, and not `-0`), fitting an `i64`, in fewer than 21 bytes.
pub(crate) fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= MAX_INT_STR_LEN_BYTES {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

fn parse_inline(buf: &[u8], limits: &ParseLimits, req: &mut Request) -> Result<Parsed, ProtoError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_inline_len_bytes {
            Err(ProtoError::TooBigInlineRequest)
        } else {
            Ok(Parsed::Incomplete { need_bytes: None })
        };
    };
    let line = &buf[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    req.inline = true;
    req.scratch.clear();
    split_args(line, NulByte::EndsLine, &mut req.scratch, &mut req.args)?;
    Ok(Parsed::Complete {
        consumed: newline + 1,
    })
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What an embedded NUL byte means to [`split_args`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NulByte {
    /// The line is a C string: its first NUL ends it, as for an inline request in Redis.
    EndsLine,
    /// A NUL is an ordinary byte, kept in the argument; only the slice's end ends the line
    /// (configuration lines).
    IsData,
}

/// Redis's `sdssplitargs`, transcribed: blanks separate arguments, `"double quotes"`
/// understand `\n \r \t \b \a \xHH` and `\<any>` escapes, `'single quotes'` only `\'`, and
/// a closing quote must be followed by a blank or the end of the line. `nul` says whether an
/// embedded NUL ends the line. Arguments are appended to `scratch`, their ranges to `args`.
///
/// # Errors
///
/// [`ProtoError::UnbalancedQuotes`] for a quote that is not closed, or not followed by a
/// blank or the end of the line.
pub fn split_args(
    line: &[u8],
    nul: NulByte,
    scratch: &mut Vec<u8>,
    args: &mut Vec<(usize, usize)>,
) -> Result<(), ProtoError> {
    // Past the end reads as the C terminator. The escape and closing-quote checks below
    // compare with it as C does, so there an embedded NUL acts as the end in either mode.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let ends_at = |i: usize| i >= line.len() || (nul == NulByte::EndsLine && line[i] == 0);
    let mut p = 0;
    loop {
        while at(p) != 0 && is_c_space(at(p)) {
            p += 1;
        }
        if ends_at(p) {
            return Ok(());
        }
        let start = scratch.len();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = at(p);
            if in_double {
                if let (b'\\', b'x', Some(hi), Some(lo)) =
                    (c, at(p + 1), hex_value(at(p + 2)), hex_value(at(p + 3)))
                {
                    scratch.push(hi * 16 + lo);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    scratch.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or nothing at all.
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtoError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if ends_at(p) {
                    return Err(ProtoError::UnbalancedQuotes);
                } else {
                    scratch.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    scratch.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtoError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if ends_at(p) {
                    return Err(ProtoError::UnbalancedQuotes);
                } else {
                    scratch.push(c);
                }
            } else if ends_at(p) {
                break;
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        p += 1;
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => scratch.push(c),
                }
            }
            p += 1;
        }
        args.push((start, scratch.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(buf: &[u8], limits: &ParseLimits) -> Result<(Vec<Vec<u8>>, usize), ProtoError> {
        let mut req = Request::new();
        match parse_request(buf, limits, &mut req)? {
            Parsed::Complete { consumed } => {
                let args = (0..req.len()).map(|i| req.arg(buf, i).to_vec()).collect();
                Ok((args, consumed))
            }
            Parsed::Incomplete { .. } => panic!("incomplete: {buf:?}"),
        }
    }

    fn args(buf: &[u8]) -> Vec<Vec<u8>> {
        parse_all(buf, &ParseLimits::default()).unwrap().0
    }

    fn err(buf: &[u8]) -> String {
        err_with(buf, &ParseLimits::default())
    }

    fn err_with(buf: &[u8], limits: &ParseLimits) -> String {
        let mut req = Request::new();
        parse_request(buf, limits, &mut req)
            .unwrap_err()
            .to_string()
    }

    fn incomplete(buf: &[u8]) -> Option<usize> {
        let mut req = Request::new();
        match parse_request(buf, &ParseLimits::default(), &mut req).unwrap() {
            Parsed::Incomplete { need_bytes } => need_bytes,
            Parsed::Complete { .. } => panic!("complete: {buf:?}"),
        }
    }

    fn encode(argv: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", argv.len()).into_bytes();
        for a in argv {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn multibulk() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n";
        let (argv, consumed) = parse_all(buf, &ParseLimits::default()).unwrap();
        assert_eq!(argv, [&b"SET"[..], b"k", b""]);
        assert_eq!(consumed, 26);
        assert_eq!(args(&buf[consumed..]), [b"PING"]);
        let mut req = Request::new();
        parse_request(buf, &ParseLimits::default(), &mut req).unwrap();
        assert!(!req.is_inline());
        let mut argv = Vec::new();
        req.fill_argv(buf, &mut argv);
        assert_eq!(argv, [&b"SET"[..], b"k", b""]);
    }

    #[test]
    fn empty_multibulk_is_a_request_with_no_args() {
        for buf in [&b"*0\r\n"[..], b"*-1\r\n", b"*-5\r\n"] {
            let (argv, consumed) = parse_all(buf, &ParseLimits::default()).unwrap();
            assert!(argv.is_empty());
            assert_eq!(consumed, buf.len());
        }
    }

    #[test]
    fn redis_leniencies() {
        // The two bytes after a bulk and the byte after a count line's `\r` go unchecked.
        let (argv, consumed) =
            parse_all(b"*1\r\n$3\r\nPINGxx\r\n", &ParseLimits::default()).unwrap();
        assert_eq!((argv, consumed), (vec![b"PIN".to_vec()], 13));
        assert_eq!(args(b"*1\rX$4\r\nPING\r\n"), [b"PING"]);
        // A large count with leading digits takes the slow path but means the same.
        // Shapes off the fast path mean the same as in Redis.
        assert_eq!(args(b"*1\r\n$0\r\n\r\n"), [b""]);
        assert_eq!(
            err(b"*1\r\n$0000\r\n"),
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn incomplete_requests() {
        assert_eq!(incomplete(b""), None);
        assert_eq!(incomplete(b"*"), None);
        assert_eq!(incomplete(b"*2\r"), None);
        assert_eq!(incomplete(b"*2\r\n"), None);
        assert_eq!(incomplete(b"*2\r\n$3\r\nGE"), Some(13));
        assert_eq!(incomplete(b"*2\r\n$3\r\nGET\r\n$10\r\n"), Some(30));
        assert_eq!(incomplete(b"PING"), None);
        assert_eq!(incomplete(b"PING\r"), None);
    }

    #[test]
    fn resumes_where_it_stopped() {
        let argv: Vec<Vec<u8>> = (0..100).map(|i| format!("arg{i}").into_bytes()).collect();
        let buf = encode(&argv);
        let mut req = Request::new();
        let limits = ParseLimits::default();
        for end in 0..buf.len() {
            assert!(matches!(
                parse_request(&buf[..end], &limits, &mut req),
                Ok(Parsed::Incomplete { .. })
            ));
        }
        assert_eq!(
            parse_request(&buf, &limits, &mut req),
            Ok(Parsed::Complete {
                consumed: buf.len()
            })
        );
        let mut got = Vec::new();
        req.fill_argv(&buf, &mut got);
        assert_eq!(got, argv);
        // A shorter buffer after an Incomplete cannot be the same one grown: start over.
        assert!(matches!(
            parse_request(b"*2\r\n$1\r\na\r\n", &limits, &mut req),
            Ok(Parsed::Incomplete { .. })
        ));
        assert_eq!(
            parse_request(b"*1\r\n$0\r\n\r\n", &limits, &mut req),
            Ok(Parsed::Complete { consumed: 10 })
        );
        // Anything else unrelated needs `clear`.
        assert!(matches!(
            parse_request(b"*2\r\n$1\r\na\r\n", &limits, &mut req),
            Ok(Parsed::Incomplete { .. })
        ));
        req.clear();
        assert_eq!(
            parse_request(b"*1\r\n$1\r\nb\r\n", &limits, &mut req),
            Ok(Parsed::Complete { consumed: 11 })
        );
        assert_eq!(req.arg(b"*1\r\n$1\r\nb\r\n", 0), b"b");
    }

    #[test]
    fn inline() {
        assert_eq!(args(b"SET a b\r\n"), [&b"SET"[..], b"a", b"b"]);
        assert_eq!(args(b"  PING  \n"), [b"PING"]);
        assert!(args(b"\r\n").is_empty());
        assert!(args(b"\n").is_empty());
        assert!(args(b"   \t \r\n").is_empty());
        assert_eq!(args(b"ECHO \"\\x41\\n\"\r\n"), [&b"ECHO"[..], b"A\n"]);
        assert_eq!(args(b"ECHO 'a\\'b'\r\n"), [&b"ECHO"[..], b"a'b"]);
        assert_eq!(
            args(b"x \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n"),
            [&b"x"[..], b"\n\r\t\x08\x07\\\"q"]
        );
        assert_eq!(args(b"x \"\\x4g\"\n"), [&b"x"[..], b"x4g"]);
        assert_eq!(args(b"x 'a\\nb'\n"), [&b"x"[..], b"a\\nb"]);
        assert_eq!(args(b"foo\"bar baz\" q\n"), [&b"foobar baz"[..], b"q"]);
        assert_eq!(args(b"\"\" ''\n"), [&b""[..], b""]);
        // Vertical tab separates only as leading space, as in sdssplitargs.
        assert_eq!(args(b"ECHO a\x0bb\r\n"), [&b"ECHO"[..], b"a\x0bb"]);
        assert_eq!(args(b"\x0bECHO\n"), [b"ECHO"]);
        // A NUL ends the line for sdssplitargs.
        assert_eq!(args(b"ECHO a\x00b c\n"), [&b"ECHO"[..], b"a"]);
        let mut req = Request::new();
        let buf = b"SET a b\r\nGET a\r\n";
        assert_eq!(
            parse_request(buf, &ParseLimits::default(), &mut req),
            Ok(Parsed::Complete { consumed: 9 })
        );
        assert!(req.is_inline());
        assert_eq!(req.len(), 3);
    }

    #[test]
    fn unbalanced_quotes() {
        for buf in [
            &b"ECHO \"a\r\n"[..],
            b"ECHO 'a\n",
            b"SET a \"b\"c\r\n",
            b"SET a 'b'c\r\n",
            b"ECHO \"a\\\"\n",
        ] {
            assert_eq!(err(buf), "Protocol error: unbalanced quotes in request");
        }
        assert_eq!(args(b"ECHO \"a\"\tb\n"), [&b"ECHO"[..], b"a", b"b"]);
    }

    #[test]
    fn error_texts() {
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*-0\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*01\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*2147483648\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(incomplete(b"*2147483647\r\n"), None);
        assert_eq!(err(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(err(b"*1\r\n$x\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*1\r\n$536870913\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            incomplete(b"*1\r\n$536870912\r\n"),
            Some(536_870_912 + 16 + 2)
        );
        assert_eq!(
            err(b"*1\r\n!3\r\n"),
            "Protocol error: expected '$', got '!'"
        );
        assert_eq!(err(b"*1\r\n\r\n"), "Protocol error: expected '$', got ' '");
        assert_eq!(
            err(b"*1\r\n\n\r\n"),
            "Protocol error: expected '$', got ' '"
        );
        assert_eq!(
            err(b"*1\r\n:1\r\n"),
            "Protocol error: expected '$', got ':'"
        );
        let mut req = Request::new();
        let e = parse_request(b"*1\r\n\xff\r\n", &ParseLimits::default(), &mut req).unwrap_err();
        let mut bytes = Vec::new();
        e.write_message(&mut bytes);
        assert_eq!(bytes, b"Protocol error: expected '$', got '\xff'");
        assert_eq!(incomplete(&vec![b'a'; 65536]), None);
        assert_eq!(
            err(&vec![b'a'; 65537]),
            "Protocol error: too big inline request"
        );
        let mut big = b"*".to_vec();
        big.resize(65536, b'1');
        assert_eq!(incomplete(&big), None);
        big.push(b'1');
        assert_eq!(err(&big), "Protocol error: too big mbulk count string");
        let mut big = b"*1\r\n".to_vec();
        big.resize(65536 + 4, b'x');
        assert_eq!(incomplete(&big), None);
        big.push(b'x');
        assert_eq!(err(&big), "Protocol error: too big bulk count string");
        let unauth = ParseLimits {
            unauthenticated: true,
            ..ParseLimits::default()
        };
        assert_eq!(
            err_with(b"*11\r\n", &unauth),
            "Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            err_with(b"*1\r\n$16385\r\n", &unauth),
            "Protocol error: unauthenticated bulk length"
        );
        assert!(parse_request(b"*10\r\n$16384\r\n", &unauth, &mut Request::new()).is_ok());
    }

    #[test]
    fn configured_limits() {
        let limits = ParseLimits {
            max_bulk_len_bytes: 4,
            max_multibulk_len: 2,
            max_inline_len_bytes: 8,
            unauthenticated: false,
        };
        assert!(parse_all(b"*2\r\n$4\r\nabcd\r\n$0\r\n\r\n", &limits).is_ok());
        assert_eq!(
            err_with(b"*1\r\n$5\r\nabcde\r\n", &limits),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            err_with(b"*3\r\n", &limits),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err_with(b"PING PONG", &limits),
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn string2ll_matches_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn multibulk_round_trips_at_every_split(
            argv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
            tail in prop::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut buf = encode(&argv);
            let len = buf.len();
            let limits = ParseLimits::default();
            let mut req = Request::new();
            for end in 0..len {
                let parsed = parse_request(&buf[..end], &limits, &mut req);
                prop_assert!(matches!(parsed, Ok(Parsed::Incomplete { .. })), "{parsed:?}");
            }
            buf.extend_from_slice(&tail);
            prop_assert_eq!(parse_request(&buf, &limits, &mut req), Ok(Parsed::Complete { consumed: len }));
            let mut got = Vec::new();
            req.fill_argv(&buf, &mut got);
            prop_assert_eq!(got, argv.iter().map(Vec::as_slice).collect::<Vec<_>>());
            // The same without the resume state.
            let mut fresh = Request::new();
            prop_assert_eq!(parse_request(&buf, &limits, &mut fresh), Ok(Parsed::Complete { consumed: len }));
            prop_assert_eq!(fresh.len(), argv.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            buf in prop::collection::vec(any::<u8>(), 0..256),
            resp_like in prop::collection::vec(prop::sample::select(&b"*$\r\n0123456789-\"' \\xaz"[..]), 0..64),
        ) {
            let limits = ParseLimits { max_inline_len_bytes: 16, ..ParseLimits::default() };
            let mut req = Request::new();
            for input in [&buf[..], &resp_like[..]] {
                for end in 0..=input.len() {
                    if let Ok(Parsed::Complete { consumed }) = parse_request(&input[..end], &limits, &mut req) {
                        prop_assert!(consumed <= end);
                        let mut argv = Vec::new();
                        req.fill_argv(&input[..end], &mut argv);
                    }
                }
            }
        }
    }
}
