//! The RESP codec: requests in, replies out.
//!
//! - [`parse`]: request parsing, in place and allocation-free once warm, with Redis's exact
//!   rules and error texts (multibulk and inline).
//! - [`encode`]: replies written straight into the output buffer, in RESP2 or RESP3.
//! - [`frame`]: an owned reply type and its decoder, for tests, clients and merging
//!   replies from other cores.
//!
//! The codec holds no unsafe code.

pub mod encode;
pub mod error;
pub mod frame;
pub mod parse;

pub use encode::{Bulks, Protocol, ReplyWriter, format_double_g17};
pub use error::ProtoError;
pub use frame::{Frame, decode_frame};
pub use parse::{NulByte, ParseLimits, Parsed, Request, parse_request, split_args};
