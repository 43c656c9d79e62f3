//! The codec's error type.
//!
//! Request-parsing errors display as the exact texts Redis 7.0 sends (the server replies
//! `-ERR <text>` and closes the connection), so clients and test suites that match on them
//! keep working.

use std::fmt;

/// A protocol violation in a request or a reply frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// `*N` whose count is not an integer or exceeds the multibulk limit.
    InvalidMultibulkLength,
    /// `$N` whose length is not an integer, negative, or exceeds the bulk limit.
    InvalidBulkLength,
    /// An element of a multibulk request that does not start with `$`; holds the byte found.
    ExpectedDollar(u8),
    /// An inline request longer than the inline limit without a newline.
    TooBigInlineRequest,
    /// A `*` count line longer than the inline limit without a `\r`.
    TooBigMbulkCount,
    /// A `$` length line longer than the inline limit without a `\r`.
    TooBigBulkCount,
    /// An inline request with unbalanced quotes, or a closing quote not followed by a space.
    UnbalancedQuotes,
    /// A multibulk count over the unauthenticated limit from a connection not yet
    /// authenticated.
    UnauthenticatedMultibulkLength,
    /// A bulk length over the unauthenticated limit from a connection not yet authenticated.
    UnauthenticatedBulkLength,
    /// A reply frame with an unknown type byte (reply decoding only).
    UnknownFrameType(u8),
    /// A malformed reply frame (reply decoding only); the text says what was wrong.
    InvalidFrame(&'static str),
    /// A reply frame nested deeper than the decoder accepts (reply decoding only).
    FrameTooDeep,
}

impl ProtoError {
    /// Appends the error text byte for byte as Redis would send it after `-ERR `.
    ///
    /// This differs from `Display` only for [`ProtoError::ExpectedDollar`] with a byte that
    /// is not ASCII: Redis sends the raw byte, which a Rust `String` cannot hold. Like
    /// Redis, CR and LF become spaces and a NUL byte cuts the text short.
    pub fn write_message(&self, out: &mut Vec<u8>) {
        if let Self::ExpectedDollar(b) = *self {
            out.extend_from_slice(b"Protocol error: expected '$', got '");
            match b {
                // Redis formats with printf's %c into a C string: NUL ends it there.
                0 => return,
                b'\r' | b'\n' => out.push(b' '),
                _ => out.push(b),
            }
            out.push(b'\'');
        } else {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidMultibulkLength => f.write_str("Protocol error: invalid multibulk length"),
            Self::InvalidBulkLength => f.write_str("Protocol error: invalid bulk length"),
            Self::ExpectedDollar(b) => {
                let shown = match b {
                    b'\r' | b'\n' => ' ',
                    _ => char::from(b),
                };
                write!(f, "Protocol error: expected '$', got '{shown}'")
            }
            Self::TooBigInlineRequest => f.write_str("Protocol error: too big inline request"),
            Self::TooBigMbulkCount => f.write_str("Protocol error: too big mbulk count string"),
            Self::TooBigBulkCount => f.write_str("Protocol error: too big bulk count string"),
            Self::UnbalancedQuotes => f.write_str("Protocol error: unbalanced quotes in request"),
            Self::UnauthenticatedMultibulkLength => {
                f.write_str("Protocol error: unauthenticated multibulk length")
            }
            Self::UnauthenticatedBulkLength => {
                f.write_str("Protocol error: unauthenticated bulk length")
            }
            Self::UnknownFrameType(b) => {
                write!(f, "Protocol error: unknown frame type byte 0x{b:02x}")
            }
            Self::InvalidFrame(what) => write!(f, "Protocol error: invalid frame: {what}"),
            Self::FrameTooDeep => f.write_str("Protocol error: frame nested too deep"),
        }
    }
}

impl std::error::Error for ProtoError {}
