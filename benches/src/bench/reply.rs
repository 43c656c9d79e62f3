//! A reply skipper: finds where one RESP2/RESP3 reply ends without building it, and, for
//! an error reply, the first word of its text (`ERR`, `WRONGTYPE`, `MOVED`, ...), which is
//! how errors are counted by kind.
//!
//! The decoder in `percore_net::resp::frame` builds an owned tree (a `Vec` per aggregate,
//! a copy of every string); a load generator only needs the length, so this walks the
//! bytes with one counter of elements still to skip, no recursion and no allocation.

/// The longest line (a simple string, an error, a header) waited for.
pub const MAX_REPLY_LINE_BYTES: usize = 1024 * 1024;
/// The longest bulk string accepted.
pub const MAX_REPLY_BULK_BYTES: usize = 512 * 1024 * 1024;
/// The most bytes of an error's first word kept as its kind.
pub const MAX_ERROR_KIND_BYTES: usize = 32;

/// One whole reply at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Bytes the reply takes.
    pub len: usize,
    /// For an error reply (`-` or RESP3 `!`), where its first word lies in the buffer.
    pub error_kind: Option<(usize, usize)>,
}

/// Bytes that are not a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadReply(pub &'static str);

impl std::fmt::Display for BadReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Finds the `\r\n` ending the line that starts at `start`: the index of its `\r`.
#[inline]
fn line_end(buf: &[u8], start: usize) -> Result<Option<usize>, BadReply> {
    let rest = buf.get(start..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r') {
        Some(cr) if cr > MAX_REPLY_LINE_BYTES => Err(BadReply("reply line too long")),
        Some(cr) => match rest.get(cr + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some(start + cr)),
            Some(_) => Err(BadReply("reply line not ended by CRLF")),
        },
        None if rest.len() > MAX_REPLY_LINE_BYTES => Err(BadReply("reply line too long")),
        None => Ok(None),
    }
}

#[inline]
fn parse_len(line: &[u8], max: usize) -> Result<usize, BadReply> {
    if line.is_empty() || line.len() > 12 {
        return Err(BadReply("bad length in reply"));
    }
    let mut n = 0usize;
    for &b in line {
        if !b.is_ascii_digit() {
            return Err(BadReply("bad length in reply"));
        }
        n = n * 10 + usize::from(b - b'0');
    }
    if n > max {
        return Err(BadReply("length in reply too large"));
    }
    Ok(n)
}

/// The first word of an error text at `start..end`.
fn first_word(buf: &[u8], start: usize, end: usize) -> (usize, usize) {
    let text = &buf[start..end];
    let word = text
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(text.len())
        .min(MAX_ERROR_KIND_BYTES);
    (start, start + word)
}

/// Skips one reply at the start of `buf`: `Ok(None)` if it is not all there yet.
pub fn skip_reply(buf: &[u8]) -> Result<Option<Skipped>, BadReply> {
    let mut pos = 0;
    // Elements still to skip; aggregates add their children.
    let mut pending: usize = 1;
    let mut error_kind = None;
    let mut top = true;
    while pending > 0 {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(cr) = line_end(buf, pos + 1)? else {
            return Ok(None);
        };
        let line = &buf[pos + 1..cr];
        let next = cr + 2;
        pending -= 1;
        match kind {
            b'+' | b':' | b',' | b'#' | b'(' | b'_' => pos = next,
            b'-' => {
                if top {
                    error_kind = Some(first_word(buf, pos + 1, cr));
                }
                pos = next;
            }
            b'$' | b'!' | b'=' => {
                if line == b"-1" {
                    pos = next;
                } else {
                    let n = parse_len(line, MAX_REPLY_BULK_BYTES)?;
                    let end = next + n + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err(BadReply("bulk reply not ended by CRLF"));
                    }
                    if kind == b'!' && top {
                        error_kind = Some(first_word(buf, next, next + n));
                    }
                    pos = end;
                }
            }
            b'*' | b'~' | b'>' => {
                if line != b"-1" {
                    pending += parse_len(line, i32::MAX as usize)?;
                }
                pos = next;
            }
            b'%' => {
                pending += 2 * parse_len(line, i32::MAX as usize)?;
                pos = next;
            }
            b'|' => {
                // Attributes precede the reply they describe and are not counted as it.
                pending += 2 * parse_len(line, i32::MAX as usize)? + 1;
                pos = next;
                continue;
            }
            _ => return Err(BadReply("unknown reply type byte")),
        }
        top = false;
    }
    Ok(Some(Skipped {
        len: pos,
        error_kind,
    }))
}

#[cfg(test)]
mod tests {
    use percore_net::resp::decode_frame;

    use super::*;

    fn skip(b: &[u8]) -> Option<Skipped> {
        skip_reply(b).unwrap()
    }

    #[test]
    fn every_type_and_its_length() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b":-12\r\n",
            b"$5\r\nhello\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"_\r\n",
            b",3.5\r\n",
            b"#t\r\n",
            b"(123456789012345678901234567890\r\n",
            b"=15\r\ntxt:Some string\r\n",
            b"%2\r\n+a\r\n:1\r\n+b\r\n*2\r\n:1\r\n:2\r\n",
            b"~2\r\n+a\r\n+b\r\n",
            b">2\r\n+message\r\n+x\r\n",
            b"|1\r\n+ttl\r\n:3\r\n+OK\r\n",
        ];
        for &c in cases {
            let mut with_tail = c.to_vec();
            with_tail.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(
                skip(&with_tail),
                Some(Skipped {
                    len: c.len(),
                    error_kind: None
                }),
                "{}",
                String::from_utf8_lossy(c)
            );
            for cut in 0..c.len() {
                assert_eq!(skip(&c[..cut]), None, "prefix {cut} of {c:?}");
            }
            // The owned decoder agrees on the length.
            let (_, n) = decode_frame(c).unwrap().unwrap();
            assert_eq!(n, c.len());
        }
    }

    #[test]
    fn errors_by_first_word() {
        let b = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        let s = skip(b).unwrap();
        let (start, end) = s.error_kind.unwrap();
        assert_eq!(&b[start..end], b"WRONGTYPE");
        let b = b"-ERR\r\n";
        let (start, end) = skip(b).unwrap().error_kind.unwrap();
        assert_eq!(&b[start..end], b"ERR");
        let b = b"!21\r\nSYNTAX invalid syntax\r\n";
        let (start, end) = skip(b).unwrap().error_kind.unwrap();
        assert_eq!(&b[start..end], b"SYNTAX");
        // An error inside an array (EXEC) is not the reply's kind.
        assert_eq!(skip(b"*1\r\n-ERR x\r\n").unwrap().error_kind, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [
            &b"?\r\n"[..],
            b"$abc\r\n",
            b"$3\r\nabcde",
            b"+OK\rX",
            b"*99999999999999\r\n",
        ] {
            assert!(skip_reply(b).is_err(), "{b:?}");
        }
        // Arbitrary bytes never panic.
        let mut rng = super::super::rng::Rng::new(1, 1);
        for _ in 0..20_000 {
            let len = rng.below(24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| b"+-:$*_,#!=(%~>|\r\n0123-1ab"[rng.below(25) as usize])
                .collect();
            if let Ok(Some(s)) = skip_reply(&bytes) {
                assert!(s.len <= bytes.len());
                // Whatever the skipper takes as whole, the owned decoder reads too (it is
                // stricter about the contents of doubles, booleans and nulls).
                if let Ok(Some((_, n))) = decode_frame(&bytes) {
                    assert_eq!(n, s.len, "{bytes:?}");
                }
            }
        }
    }
}
