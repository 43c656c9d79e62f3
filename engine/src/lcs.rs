//! LCS (longest common subsequence) as Redis 7's `lcsCommand`: the dynamic-programming
//! table, then a walk back from its corner that yields the string and the matched ranges
//! in the order Redis emits them.

/// One matched range: (start, end) in `a`, (start, end) in `b`, inclusive, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub a: (u32, u32),
    pub b: (u32, u32),
    pub len: u32,
}

/// The result of an LCS computation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lcs {
    /// LCS length.
    pub len: u32,
    /// The common subsequence (empty unless asked for).
    pub text: Vec<u8>,
    /// Ranges of at least the minimum length, from the end of the strings backwards.
    pub matches: Vec<Match>,
}

/// Why LCS refused to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LcsError {
    /// A string is too long for 32-bit indexes.
    TooLong,
    /// The table would exceed `proto-max-bulk-len`.
    TooBig,
}

impl LcsError {
    #[must_use]
    pub fn reply_text(self) -> &'static str {
        match self {
            LcsError::TooLong => "ERR String too long for LCS",
            LcsError::TooBig => {
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
            }
        }
    }
}

/// Computes the LCS of `a` and `b`. `walk`: compute the string and ranges (IDX or the
/// plain form); `min_match_len`: ranges shorter are not reported. `max_table_bytes`:
/// `proto-max-bulk-len`, the bound on the table.
#[expect(
    clippy::many_single_char_names,
    reason = "the names of Redis's lcsCommand (a, b, i, j)"
)]
pub fn lcs(
    a: &[u8],
    b: &[u8],
    walk: bool,
    min_match_len: u64,
    max_table_bytes: u64,
) -> Result<Lcs, LcsError> {
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(LcsError::TooLong);
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > max_table_bytes {
        return Err(LcsError::TooBig);
    }
    let w = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    let mut out = Lcs {
        len: total,
        text: Vec::new(),
        matches: Vec::new(),
    };
    if !walk {
        return Ok(out);
    }
    let mut text = vec![0u8; total as usize];
    let mut idx = total as usize;
    let unset = alen as u32;
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (unset, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            text[idx - 1] = a[i - 1];
            if a_start == unset {
                a_start = (i - 1) as u32;
                a_end = a_start;
                b_start = (j - 1) as u32;
                b_end = b_start;
            } else if a_start == i as u32 && b_start == j as u32 {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != unset {
                emit = true;
            }
        }
        if emit {
            let len = a_end.wrapping_sub(a_start).wrapping_add(1);
            if min_match_len == 0 || u64::from(len) >= min_match_len {
                out.matches.push(Match {
                    a: (a_start, a_end),
                    b: (b_start, b_end),
                    len,
                });
            }
            a_start = unset;
        }
    }
    out.text = text;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redis_doc_example() {
        let r = lcs(b"ohmytext", b"mynewtext", true, 0, 1 << 29).unwrap();
        assert_eq!(r.text, b"mytext");
        assert_eq!(r.len, 6);
        assert_eq!(
            r.matches,
            vec![
                Match {
                    a: (4, 7),
                    b: (5, 8),
                    len: 4
                },
                Match {
                    a: (2, 3),
                    b: (0, 1),
                    len: 2
                }
            ]
        );
        let r = lcs(b"ohmytext", b"mynewtext", true, 4, 1 << 29).unwrap();
        assert_eq!(r.matches.len(), 1);
        assert_eq!(lcs(b"ab", b"cd", false, 0, 11), Err(LcsError::TooBig));
    }

    fn is_subsequence(s: &[u8], of: &[u8]) -> bool {
        let mut it = of.iter();
        s.iter().all(|c| it.any(|d| d == c))
    }

    proptest! {
        #[test]
        fn text_is_a_common_subsequence(a in proptest::collection::vec(0u8..4, 0..30), b in proptest::collection::vec(0u8..4, 0..30)) {
            let r = lcs(&a, &b, true, 0, 1 << 29).unwrap();
            prop_assert_eq!(r.text.len(), r.len as usize);
            prop_assert!(is_subsequence(&r.text, &a) && is_subsequence(&r.text, &b));
            let total: u32 = r.matches.iter().map(|m| m.len).sum();
            prop_assert_eq!(total, r.len);
        }
    }
}
