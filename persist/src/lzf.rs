//! LZF compression, bit-compatible with liblzf 3.x as Redis builds it (`lzf_c.c`,
//! `lzf_d.c`, `lzfP.h`: `HLOG 16`, `VERY_FAST 1`, `CHECK_INPUT 1`).
//!
//! Redis stores an RDB string LZF-compressed (`RDB_ENC_LZF`) when `rdbcompression yes`,
//! the string is longer than 20 bytes, and the compressed form fits in `len - 4` bytes.
//! Any valid LZF stream decompresses the same everywhere, so only [`decompress`] must
//! match liblzf exactly; [`Compressor`] also follows liblzf's match finder step by step,
//! so a value compressed here is byte-identical to what a fresh redis-server writes.
//!
//! # Stream format
//!
//! ```text
//! 000LLLLL <L+1 literal bytes>          literal run of 1..=32 bytes
//! LLLooooo oooooooo                     back reference, length L+2 (L in 1..=6)
//! 111ooooo LLLLLLLL oooooooo            back reference, length L+9
//! ```
//!
//! The offset `o` (13 bits) counts back from the output position minus one, so a
//! reference reaches at most 8192 bytes back and copies 3..=264 bytes, possibly
//! overlapping its own output (a run).
//!
//! # Differences from the C code
//!
//! - liblzf leaves its 64 Ki-slot hash table uninitialised on the stack (`INIT_HTAB 0`)
//!   and relies on later checks to reject stale slots. [`Compressor`] keeps its table
//!   between calls and tags each slot with a per-call generation instead, which gives
//!   the deterministic result of a freshly cleared table without clearing 256 KiB per
//!   string.
//! - [`decompress`] returns an error where liblzf returns 0 with `errno` set, and
//!   checks every bound (liblzf's `CHECK_INPUT` covers only the input side plus the
//!   output end).

use std::fmt;

/// log2 of the match finder's hash table size (`HLOG` in Redis's `lzfP.h`).
const HASH_LOG: u32 = 16;
/// Slots in the match finder's hash table.
const HASH_SLOTS: usize = 1 << HASH_LOG;
/// Longest literal run one control byte describes (`MAX_LIT`).
const MAX_LITERAL_RUN_BYTES: usize = 1 << 5;
/// Farthest a back reference reaches, counted from the byte before the cursor (`MAX_OFF`).
const MAX_OFFSET_BYTES: usize = 1 << 13;
/// Longest back reference (`MAX_REF`).
const MAX_MATCH_BYTES: usize = (1 << 8) + (1 << 3);
/// Most output bytes one input byte can stand for: a 3-byte long back reference
/// copies 264 bytes. Bounds a decompressed size before anything is allocated for it.
pub const MAX_EXPANSION_RATIO: usize = MAX_MATCH_BYTES / 3;

/// Why [`decompress`] refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LzfError {
    /// The stream expands to more than the allowed output size (liblzf's `E2BIG`).
    OutputTooLarge,
    /// The stream stops inside a literal run or a back reference (`EINVAL`).
    Truncated,
    /// A back reference points before the start of the output (`EINVAL`).
    BadBackReference,
    /// The output buffer could not be allocated.
    OutOfMemory,
}

impl fmt::Display for LzfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LzfError::OutputTooLarge => "LZF data expands past its stated length",
            LzfError::Truncated => "LZF data ends inside a literal run or back reference",
            LzfError::BadBackReference => "LZF back reference points before the data",
            LzfError::OutOfMemory => "cannot allocate the LZF output buffer",
        })
    }
}

impl std::error::Error for LzfError {}

/// liblzf's match finder with a hash table kept between calls, so compressing many
/// strings allocates once (256 KiB).
pub struct Compressor {
    /// Per slot: `generation + position + 1` of the last 3-byte prefix hashed there, or
    /// a value `<= generation` when the slot was written by an earlier call (stale).
    table: Box<[u32]>,
    /// Slots above this value were written by the current call.
    generation: u32,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// liblzf `IDX` for `VERY_FAST`: the hash of the last three (in effect four) bytes.
#[inline]
fn slot_of(hval: u32) -> usize {
    ((hval >> (3 * 8 - HASH_LOG)).wrapping_sub(hval.wrapping_mul(5)) as usize) & (HASH_SLOTS - 1)
}

impl Compressor {
    pub fn new() -> Self {
        Self {
            table: vec![0; HASH_SLOTS].into_boxed_slice(),
            generation: 0,
        }
    }

    /// `lzf_compress`: compresses `input` into `out` and returns the number of bytes
    /// written, or 0 when the result does not fit in `out` (also for empty `input` or
    /// `out`, and for inputs of 4 GiB or more, which liblzf's `unsigned int` lengths
    /// cannot describe). Callers pass an `out` shorter than `input` to keep only
    /// results that save space, as Redis does.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> usize {
        let in_len = input.len();
        let out_len = out.len();
        if in_len == 0 || out_len == 0 || in_len >= u32::MAX as usize {
            return 0;
        }
        // Slot values of this call are `base + pos + 1 <= base + in_len`; the next call
        // starts above all of them, so every slot written now is stale then.
        let step = in_len as u32 + 1;
        if self.generation.checked_add(step).is_none() {
            self.table.fill(0);
            self.generation = 0;
        }
        let base = self.generation;
        self.generation += step;
        let table = &mut self.table;
        let tag = |pos: usize| base + pos as u32 + 1;

        let mut ip = 0;
        let mut op = 1; // out[op - lit - 1] is the current literal run's control byte.
        let mut lit = 0;
        let mut hval = if in_len >= 2 {
            (u32::from(input[0]) << 8) | u32::from(input[1])
        } else {
            0
        };
        while ip + 2 < in_len {
            hval = (hval << 8) | u32::from(input[ip + 2]);
            let slot = slot_of(hval);
            let seen = table[slot];
            table[slot] = tag(ip);
            // liblzf: off < MAX_OFF, ip + 4 < in_end, ref > in_data, 3 bytes equal.
            let reference = (seen > base)
                .then(|| (seen - base - 1) as usize)
                .filter(|&r| {
                    r < ip
                        && ip - r - 1 < MAX_OFFSET_BYTES
                        && ip + 4 < in_len
                        && r > 0
                        && input[r..r + 3] == input[ip..ip + 3]
                });
            if let Some(r) = reference {
                let off = ip - r - 1;
                let maxlen = (in_len - ip - 2).min(MAX_MATCH_BYTES);
                // Close the literal run; drop its control byte when the run is empty.
                if lit > 0 {
                    out[op - lit - 1] = (lit - 1) as u8;
                } else {
                    op -= 1;
                }
                if op + 3 + 1 >= out_len {
                    return 0;
                }
                // liblzf compares 16 bytes unrolled before its bounded loop, so a match
                // may run to 19 bytes when `maxlen` is 17 or 18. Kept for identical output;
                // every index stays below `in_len` (maxlen > 16 means ip + 19 <= in_len).
                let mut len = 2;
                let mut mismatch = false;
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            mismatch = true;
                            break;
                        }
                    }
                }
                if !mismatch {
                    loop {
                        len += 1;
                        if !(len < maxlen && input[r + len] == input[ip + len]) {
                            break;
                        }
                    }
                }
                len -= 2; // Stored as length - 2.
                ip += 1;
                if len < 7 {
                    out[op] = ((off >> 8) + (len << 5)) as u8;
                    op += 1;
                } else {
                    out[op] = ((off >> 8) + (7 << 5)) as u8;
                    out[op + 1] = (len - 7) as u8;
                    op += 2;
                }
                out[op] = off as u8;
                op += 2; // The offset byte, then the next run's control byte.
                lit = 0;
                ip += len + 1;
                if ip + 2 >= in_len {
                    break;
                }
                // VERY_FAST: hash the last two positions of the match.
                ip -= 2;
                hval = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
                for _ in 0..2 {
                    hval = (hval << 8) | u32::from(input[ip + 2]);
                    table[slot_of(hval)] = tag(ip);
                    ip += 1;
                }
            } else {
                if op >= out_len {
                    return 0;
                }
                out[op] = input[ip];
                op += 1;
                ip += 1;
                lit += 1;
                if lit == MAX_LITERAL_RUN_BYTES {
                    out[op - lit - 1] = (lit - 1) as u8;
                    lit = 0;
                    op += 1;
                }
            }
        }
        // At most two input bytes remain, plus perhaps a new control byte.
        if op + 3 > out_len {
            return 0;
        }
        while ip < in_len {
            out[op] = input[ip];
            op += 1;
            ip += 1;
            lit += 1;
            if lit == MAX_LITERAL_RUN_BYTES {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
        if lit > 0 {
            out[op - lit - 1] = (lit - 1) as u8;
        } else {
            op -= 1;
        }
        op
    }
}

/// `lzf_decompress`: appends the expansion of `input` to `out`, refusing to append more
/// than `max_len` bytes. Returns the number of bytes appended. Garbage input gives an
/// error, never a panic or an out-of-bounds read; memory grows with the bytes actually
/// produced (at most [`MAX_EXPANSION_RATIO`] per input byte), not with `max_len`.
///
/// An empty `input` appends nothing (liblzf would read one byte past it).
pub fn decompress(input: &[u8], out: &mut Vec<u8>, max_len: usize) -> Result<usize, LzfError> {
    let start = out.len();
    let reserve = max_len.min(input.len().saturating_mul(MAX_EXPANSION_RATIO));
    out.try_reserve_exact(reserve)
        .map_err(|_| LzfError::OutOfMemory)?;
    let end = start.saturating_add(max_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < MAX_LITERAL_RUN_BYTES {
            let run = ctrl + 1;
            if out.len() + run > end {
                return Err(LzfError::OutputTooLarge);
            }
            let literal = input.get(ip..ip + run).ok_or(LzfError::Truncated)?;
            out.extend_from_slice(literal);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(LzfError::Truncated)?);
                ip += 1;
            }
            let low = usize::from(*input.get(ip).ok_or(LzfError::Truncated)?);
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            if out.len() + len > end {
                return Err(LzfError::OutputTooLarge);
            }
            if back > out.len() - start {
                return Err(LzfError::BadBackReference);
            }
            // An overlapping reference (back < len) repeats the last `back` bytes. Everything
            // from `from` on is periodic with period `back`, so whole copies of what is
            // already there continue the pattern: copy in chunks that double each time.
            let from = out.len() - back;
            let mut left = len;
            while left > 0 {
                let chunk = left.min(out.len() - from);
                out.extend_from_within(from..from + chunk);
                left -= chunk;
            }
        }
    }
    Ok(out.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &[u8]) -> Option<Vec<u8>> {
        let mut c = Compressor::new();
        let mut buf = vec![0; input.len() + input.len() / 16 + 64];
        let n = c.compress(input, &mut buf);
        if n == 0 {
            return None;
        }
        let mut out = Vec::new();
        decompress(&buf[..n], &mut out, input.len()).unwrap();
        assert_eq!(out, input);
        Some(buf[..n].to_vec())
    }

    #[test]
    fn compresses_runs() {
        let input = vec![b'a'; 1000];
        let packed = round_trip(&input).unwrap();
        assert!(packed.len() < 20, "{}", packed.len());
    }

    #[test]
    fn short_and_incompressible_inputs() {
        for len in 1..40 {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            round_trip(&input);
        }
        assert_eq!(Compressor::new().compress(b"", &mut [0; 8]), 0);
        assert_eq!(Compressor::new().compress(b"abc", &mut []), 0);
    }

    #[test]
    fn refuses_output_that_does_not_fit() {
        let mut c = Compressor::new();
        let input: Vec<u8> = (0..=255).collect();
        // Incompressible: needs more than the input's length.
        assert_eq!(c.compress(&input, &mut vec![0; input.len() - 4]), 0);
        for out_len in 1..input.len() + 16 {
            let mut out = vec![0; out_len];
            let n = c.compress(&input, &mut out);
            if n > 0 {
                let mut back = Vec::new();
                decompress(&out[..n], &mut back, input.len()).unwrap();
                assert_eq!(back, input);
            }
        }
    }

    #[test]
    fn stale_slots_do_not_leak_between_calls() {
        let mut used = Compressor::new();
        let mut fresh = Compressor::new();
        let first = b"hello hello hello hello hello hello".repeat(3);
        let second = b"world hello world hello world hello".repeat(3);
        let mut out1 = vec![0; 200];
        let mut out2 = vec![0; 200];
        used.compress(&first, &mut out1);
        let len1 = used.compress(&second, &mut out1);
        let len2 = fresh.compress(&second, &mut out2);
        assert_eq!(out1[..len1], out2[..len2]);
    }

    #[test]
    fn generation_wraps() {
        let mut c = Compressor::new();
        c.generation = u32::MAX - 10;
        let input = b"abcabcabcabcabcabcabcabcabc";
        let mut out = vec![0; 64];
        let n = c.compress(input, &mut out);
        assert!(n > 0);
        assert_eq!(c.generation, input.len() as u32 + 1);
        let mut back = Vec::new();
        decompress(&out[..n], &mut back, input.len()).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn decompress_errors() {
        let mut out = Vec::new();
        assert_eq!(
            decompress(&[5, b'a'], &mut out, 100),
            Err(LzfError::Truncated)
        );
        assert_eq!(decompress(&[0x20], &mut out, 100), Err(LzfError::Truncated));
        assert_eq!(
            decompress(&[0xe0, 1], &mut out, 100),
            Err(LzfError::Truncated)
        );
        // Back reference with nothing before it.
        assert_eq!(
            decompress(&[0x20, 0], &mut out, 100),
            Err(LzfError::BadBackReference)
        );
        assert_eq!(
            decompress(&[2, b'a', b'b', b'c'], &mut out, 2),
            Err(LzfError::OutputTooLarge)
        );
        assert_eq!(decompress(&[], &mut out, 0), Ok(0));
    }

    #[test]
    fn back_reference_is_relative_to_this_call() {
        let mut out = b"prefix".to_vec();
        assert_eq!(
            decompress(&[0x20, 0], &mut out, 100),
            Err(LzfError::BadBackReference)
        );
        let mut out = b"prefix".to_vec();
        // 'a', then copy 3 bytes from 1 back: "aaaa".
        assert_eq!(decompress(&[0, b'a', 0x20, 0], &mut out, 100), Ok(4));
        assert_eq!(out, b"prefixaaaa");
    }
}
