//! A reply decoder (RESP2 and RESP3) and an owned reply type.
//!
//! For tests, benchmark clients and the server's own merge steps (replies gathered from
//! other cores), not for the request hot path. It is strict where the request parser is
//! lenient (every line must end in CRLF) and bounded against hostile input: nesting deeper
//! than [`MAX_FRAME_DEPTH`] is an error, lengths are capped, and no more is allocated for an
//! aggregate than its bytes actually present can fill.

use super::encode::{Protocol, ReplyWriter};
use super::error::ProtoError;
use super::parse::string2ll;

/// Aggregates nested deeper than this are rejected, so input cannot exhaust the stack.
pub const MAX_FRAME_DEPTH: usize = 128;
/// The longest bulk, blob error or verbatim string accepted (Redis's default
/// `proto-max-bulk-len`).
pub const MAX_FRAME_BULK_LEN_BYTES: usize = 512 * 1024 * 1024;
/// The most elements an aggregate may declare (Redis's multibulk limit).
pub const MAX_FRAME_AGGREGATE_LEN: usize = i32::MAX as usize;
/// The longest line (simple string, error, number, header) accepted, so waiting for a line
/// end cannot buffer without bound.
pub const MAX_FRAME_LINE_LEN_BYTES: usize = 1024 * 1024;
/// The fewest bytes an element can take (`_\r\n`): bounds preallocation by input size.
const MIN_FRAME_LEN_BYTES: usize = 3;

/// One reply, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1` or RESP3 `_`.
    Null,
    Array(Vec<Frame>),
    /// `*-1`.
    NullArray,
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    Double(f64),
    Bool(bool),
    Verbatim {
        format: [u8; 3],
        text: Vec<u8>,
    },
    BigNumber(Vec<u8>),
}

impl Frame {
    /// Appends the frame in its own wire form (RESP3 for RESP3 types, `*-1` for
    /// [`Frame::NullArray`]), so that [`decode_frame`] gives back an equal frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.emit(&mut ReplyWriter::new(out, Protocol::Resp3), true);
    }

    /// Writes the frame as a reply in the writer's protocol, downgrading RESP3 types for a
    /// RESP2 client the way Redis does.
    pub fn write(&self, w: &mut ReplyWriter<'_>) {
        self.emit(w, false);
    }

    fn emit(&self, w: &mut ReplyWriter<'_>, keep_null_array: bool) {
        match self {
            Self::Simple(s) => w.simple_bytes(s),
            Self::Error(s) => w.error_bytes(s),
            Self::Int(v) => w.int(*v),
            Self::Bulk(b) => w.bulk(b),
            Self::Null => w.null(),
            Self::NullArray if keep_null_array => w.raw(b"*-1\r\n"),
            Self::NullArray => w.null_array(),
            Self::Array(items) | Self::Set(items) | Self::Push(items) => {
                match self {
                    Self::Set(_) => w.set(items.len()),
                    Self::Push(_) => w.push(items.len()),
                    _ => w.array(items.len()),
                }
                for item in items {
                    item.emit(w, keep_null_array);
                }
            }
            Self::Map(pairs) => {
                w.map(pairs.len());
                for (k, v) in pairs {
                    k.emit(w, keep_null_array);
                    v.emit(w, keep_null_array);
                }
            }
            Self::Double(v) => w.double(*v),
            Self::Bool(v) => w.bool(*v),
            Self::Verbatim { format, text } => w.verbatim_bytes(*format, text),
            Self::BigNumber(digits) => w.big_number_bytes(digits),
        }
    }
}

/// Decodes one frame from the start of `buf`: `Ok(None)` if it is not all there yet,
/// otherwise the frame and the bytes it took. RESP3 attributes (`|`) are read and dropped.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtoError> {
    decode_at(buf, 0, 0)
}

/// Finds the line starting at `start`: its bytes and where the next one begins.
fn read_line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ProtoError> {
    let rest = buf.get(start..).unwrap_or_default();
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        if rest.len() > MAX_FRAME_LINE_LEN_BYTES {
            return Err(ProtoError::InvalidFrame("line too long"));
        }
        return Ok(None);
    };
    if cr > MAX_FRAME_LINE_LEN_BYTES {
        return Err(ProtoError::InvalidFrame("line too long"));
    }
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((&rest[..cr], start + cr + 2))),
        Some(_) => Err(ProtoError::InvalidFrame("line not ended by CRLF")),
    }
}

fn parse_len(line: &[u8], max: usize) -> Result<usize, ProtoError> {
    match string2ll(line) {
        Some(n) if n >= 0 && n as u64 <= max as u64 => Ok(n as usize),
        _ => Err(ProtoError::InvalidFrame("bad length")),
    }
}

fn parse_double(line: &[u8]) -> Result<f64, ProtoError> {
    let bad = ProtoError::InvalidFrame("bad double");
    let text = std::str::from_utf8(line).map_err(|_| bad)?;
    match text {
        "inf" | "+inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" | "-nan" => Ok(f64::NAN),
        _ if text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') => {
            text.parse().map_err(|_| bad)
        }
        _ => Err(bad),
    }
}

/// Decodes `count` frames from `pos`, one level deeper.
fn decode_items(
    buf: &[u8],
    mut pos: usize,
    count: usize,
    depth: usize,
) -> Result<Option<(Vec<Frame>, usize)>, ProtoError> {
    let mut items = Vec::with_capacity(count.min((buf.len() - pos) / MIN_FRAME_LEN_BYTES));
    for _ in 0..count {
        let Some((item, next)) = decode_at(buf, pos, depth + 1)? else {
            return Ok(None);
        };
        items.push(item);
        pos = next;
    }
    Ok(Some((items, pos)))
}

fn decode_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Frame, usize)>, ProtoError> {
    if depth > MAX_FRAME_DEPTH {
        return Err(ProtoError::FrameTooDeep);
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    if !b"+-:$*_,#!=(%~>|".contains(&kind) {
        return Err(ProtoError::UnknownFrameType(kind));
    }
    let Some((line, next)) = read_line(buf, pos + 1)? else {
        return Ok(None);
    };
    let frame = match kind {
        b'+' => Frame::Simple(line.to_vec()),
        b'-' => Frame::Error(line.to_vec()),
        b':' => Frame::Int(string2ll(line).ok_or(ProtoError::InvalidFrame("bad integer"))?),
        b'_' if line.is_empty() => Frame::Null,
        b'_' => return Err(ProtoError::InvalidFrame("bad null")),
        b',' => Frame::Double(parse_double(line)?),
        b'#' => match line {
            b"t" => Frame::Bool(true),
            b"f" => Frame::Bool(false),
            _ => return Err(ProtoError::InvalidFrame("bad boolean")),
        },
        b'(' if !line.is_empty() => Frame::BigNumber(line.to_vec()),
        b'(' => return Err(ProtoError::InvalidFrame("empty big number")),
        b'$' if line == b"-1" => Frame::Null,
        b'*' if line == b"-1" => Frame::NullArray,
        b'$' | b'!' | b'=' => {
            if line == b"?" {
                return Err(ProtoError::InvalidFrame(
                    "streamed strings are not supported",
                ));
            }
            let len = parse_len(line, MAX_FRAME_BULK_LEN_BYTES)?;
            let end = next + len;
            let Some(tail) = buf.get(end..end + 2) else {
                return Ok(None);
            };
            if tail != b"\r\n" {
                return Err(ProtoError::InvalidFrame("bulk not ended by CRLF"));
            }
            let data = &buf[next..end];
            let frame = match kind {
                b'$' => Frame::Bulk(data.to_vec()),
                b'!' => Frame::Error(data.to_vec()),
                _ => match data {
                    [a, b, c, b':', text @ ..] => Frame::Verbatim {
                        format: [*a, *b, *c],
                        text: text.to_vec(),
                    },
                    _ => return Err(ProtoError::InvalidFrame("bad verbatim string")),
                },
            };
            return Ok(Some((frame, end + 2)));
        }
        b'*' | b'~' | b'>' => {
            let count = parse_len(line, MAX_FRAME_AGGREGATE_LEN)?;
            let Some((items, end)) = decode_items(buf, next, count, depth)? else {
                return Ok(None);
            };
            let frame = match kind {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                _ => Frame::Push(items),
            };
            return Ok(Some((frame, end)));
        }
        _ => {
            // `%` map or `|` attribute: `count` pairs.
            let count = parse_len(line, MAX_FRAME_AGGREGATE_LEN / 2)?;
            let Some((items, end)) = decode_items(buf, next, 2 * count, depth)? else {
                return Ok(None);
            };
            if kind == b'|' {
                // An attribute annotates the frame that follows; drop it.
                return decode_at(buf, end, depth + 1);
            }
            let mut pairs = Vec::with_capacity(count);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            return Ok(Some((Frame::Map(pairs), end)));
        }
    };
    Ok(Some((frame, next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(buf: &[u8]) -> Frame {
        let (frame, used) = decode_frame(buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        frame
    }

    #[test]
    fn decodes_resp2_and_resp3() {
        assert_eq!(decode_all(b"+OK\r\n"), Frame::Simple(b"OK".to_vec()));
        assert_eq!(decode_all(b"-ERR x\r\n"), Frame::Error(b"ERR x".to_vec()));
        assert_eq!(
            decode_all(b"!5\r\nERR x\r\n"),
            Frame::Error(b"ERR x".to_vec())
        );
        assert_eq!(decode_all(b":-42\r\n"), Frame::Int(-42));
        assert_eq!(decode_all(b"$3\r\na\rb\r\n"), Frame::Bulk(b"a\rb".to_vec()));
        assert_eq!(decode_all(b"$-1\r\n"), Frame::Null);
        assert_eq!(decode_all(b"_\r\n"), Frame::Null);
        assert_eq!(decode_all(b"*-1\r\n"), Frame::NullArray);
        assert_eq!(
            decode_all(b"*2\r\n:1\r\n*0\r\n"),
            Frame::Array(vec![Frame::Int(1), Frame::Array(vec![])])
        );
        assert_eq!(
            decode_all(b"%1\r\n+a\r\n#t\r\n"),
            Frame::Map(vec![(Frame::Simple(b"a".to_vec()), Frame::Bool(true))])
        );
        assert_eq!(
            decode_all(b"~1\r\n#f\r\n"),
            Frame::Set(vec![Frame::Bool(false)])
        );
        assert_eq!(
            decode_all(b">1\r\n:1\r\n"),
            Frame::Push(vec![Frame::Int(1)])
        );
        assert_eq!(decode_all(b",1.5\r\n"), Frame::Double(1.5));
        assert_eq!(decode_all(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert_eq!(
            decode_all(b"(12345678901234567890\r\n"),
            Frame::BigNumber(b"12345678901234567890".to_vec())
        );
        assert_eq!(
            decode_all(b"=6\r\ntxt:hi\r\n"),
            Frame::Verbatim {
                format: *b"txt",
                text: b"hi".to_vec()
            }
        );
        assert_eq!(decode_all(b"|1\r\n+k\r\n+v\r\n:7\r\n"), Frame::Int(7));
    }

    #[test]
    fn incomplete_and_invalid() {
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$3\r\nab",
            b"*2\r\n:1\r\n",
            b"|1\r\n+k\r\n+v\r\n",
        ] {
            assert_eq!(decode_frame(partial), Ok(None), "{partial:?}");
        }
        assert_eq!(
            decode_frame(b"?\r\n"),
            Err(ProtoError::UnknownFrameType(b'?'))
        );
        assert!(decode_frame(b"+OK\rx").is_err());
        assert!(decode_frame(b"$2\r\nabc\r\n").is_err());
        assert!(decode_frame(b"$-2\r\n").is_err());
        assert!(decode_frame(b":x\r\n").is_err());
        assert!(decode_frame(b"#x\r\n").is_err());
        assert!(decode_frame(b"=2\r\nab\r\n").is_err());
        assert!(decode_frame(b"$?\r\n").is_err());
        let deep = b"*1\r\n".repeat(MAX_FRAME_DEPTH + 1);
        assert_eq!(decode_frame(&deep), Err(ProtoError::FrameTooDeep));
        // A huge declared count allocates nothing up front.
        assert_eq!(decode_frame(b"*2147483647\r\n:1\r\n"), Ok(None));
        assert!(decode_frame(b"*2147483648\r\n").is_err());
    }

    #[test]
    fn write_downgrades_for_resp2() {
        let frame = Frame::Map(vec![(
            Frame::Simple(b"k".to_vec()),
            Frame::Set(vec![
                Frame::Double(0.5),
                Frame::Bool(true),
                Frame::Null,
                Frame::NullArray,
            ]),
        )]);
        let mut out = Vec::new();
        frame.write(&mut ReplyWriter::new(&mut out, Protocol::Resp2));
        assert_eq!(out, b"*2\r\n+k\r\n*4\r\n$3\r\n0.5\r\n:1\r\n$-1\r\n*-1\r\n");
        out.clear();
        frame.write(&mut ReplyWriter::new(&mut out, Protocol::Resp3));
        assert_eq!(out, b"%1\r\n+k\r\n~4\r\n,0.5\r\n#t\r\n_\r\n_\r\n");
    }

    fn line_text() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
            0..16,
        )
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..24)
    }

    fn resp2_frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            line_text().prop_map(Frame::Simple),
            line_text().prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Int),
            bytes().prop_map(Frame::Bulk),
            Just(Frame::Null),
            Just(Frame::NullArray),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop::collection::vec(inner, 0..6).prop_map(Frame::Array)
        })
    }

    fn resp3_frame() -> impl Strategy<Value = Frame> {
        let leaf = prop_oneof![
            line_text().prop_map(Frame::Simple),
            line_text().prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Int),
            bytes().prop_map(Frame::Bulk),
            Just(Frame::Null),
            Just(Frame::NullArray),
            any::<f64>()
                .prop_filter("NaN != NaN", |v| !v.is_nan())
                .prop_map(Frame::Double),
            any::<bool>().prop_map(Frame::Bool),
            (any::<[u8; 3]>(), bytes()).prop_map(|(format, text)| Frame::Verbatim { format, text }),
            "-?[1-9][0-9]{0,40}".prop_map(|s| Frame::BigNumber(s.into_bytes())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
                prop::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn resp2_round_trip(frame in resp2_frame()) {
            let mut out = Vec::new();
            frame.write(&mut ReplyWriter::new(&mut out, Protocol::Resp2));
            prop_assert_eq!(decode_frame(&out), Ok(Some((frame, out.len()))));
            for end in 0..out.len() {
                prop_assert_eq!(decode_frame(&out[..end]), Ok(None));
            }
        }

        #[test]
        fn resp3_round_trip(frame in resp3_frame()) {
            let mut out = Vec::new();
            frame.encode(&mut out);
            prop_assert_eq!(decode_frame(&out), Ok(Some((frame, out.len()))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            buf in prop::collection::vec(any::<u8>(), 0..256),
            resp_like in prop::collection::vec(prop::sample::select(&b"+-:$*_,#!=(%~>|\r\n0123456789-tf?"[..]), 0..128),
        ) {
            for input in [&buf[..], &resp_like[..]] {
                if let Ok(Some((_, used))) = decode_frame(input) {
                    prop_assert!(used <= input.len());
                }
            }
        }
    }
}
