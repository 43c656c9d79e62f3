//! Redis's glob matcher `stringmatchlen` (KEYS, SCAN MATCH, PSUBSCRIBE), byte for byte:
//! `*`, `?`, `[...]` with `^`, ranges and `\` escapes, `\x` outside classes.
//!
//! Ported from Redis 7 `util.c`, including its quirks: ranges compare bytes as C's
//! signed `char`, a lone trailing `\` matches a literal `\`, an unterminated `[` class
//! ends at the pattern's end, and reading one past the pattern behaves as reading C's
//! terminating NUL. Recursion is limited to [`GLOB_MAX_NESTING`] levels and a failed `*`
//! stops longer-match retries, so pathological patterns finish quickly.

/// Deepest `*` recursion before a pattern is declared not to match (Redis: 1000).
pub const GLOB_MAX_NESTING: usize = 1000;

/// Does `string` match the glob `pattern`? `nocase` folds ASCII case.
#[must_use]
pub fn string_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer_matches = false;
    match_impl(pattern, string, nocase, &mut skip_longer_matches, 0)
}

/// Byte at `i`, or C's terminating NUL past the end.
#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

#[inline]
fn fold(c: u8, nocase: bool) -> u8 {
    if nocase { c.to_ascii_lowercase() } else { c }
}

/// C `char` is signed on the platforms Redis ships for: compare as `i8`.
#[inline]
fn signed(c: u8) -> i32 {
    i32::from(c as i8)
}

fn match_impl(
    pattern: &[u8],
    string: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > GLOB_MAX_NESTING {
        return false;
    }
    let (mut p, mut s) = (0usize, 0usize);
    let (plen, slen) = (pattern.len(), string.len());
    while p < plen && s < slen {
        match pattern[p] {
            b'*' => {
                while p + 1 < plen && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == plen {
                    return true;
                }
                while s < slen {
                    if match_impl(
                        &pattern[p + 1..],
                        &string[s..],
                        nocase,
                        skip_longer,
                        nesting + 1,
                    ) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                // Nothing after this `*` matches anywhere in the rest of the string, so
                // no earlier `*` can do better by matching more.
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = at(pattern, p) == b'^';
                if not {
                    p += 1;
                }
                let c = string[s];
                let mut matched = false;
                loop {
                    if at(pattern, p) == b'\\' && plen - p >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            matched = true;
                        }
                    } else if at(pattern, p) == b']' && p < plen {
                        break;
                    } else if p >= plen {
                        // Unterminated class: step back so the shared `p += 1` below
                        // lands on the pattern's end.
                        p -= 1;
                        break;
                    } else if plen - p >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) = (pattern[p], pattern[p + 2]);
                        let mut ch = c;
                        if nocase {
                            start = start.to_ascii_lowercase();
                            end = end.to_ascii_lowercase();
                            ch = ch.to_ascii_lowercase();
                        }
                        let (mut lo, mut hi) = (signed(start), signed(end));
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        p += 2;
                        if (lo..=hi).contains(&signed(ch)) {
                            matched = true;
                        }
                    } else if fold(pattern[p], nocase) == fold(c, nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            other => {
                let lit = if other == b'\\' && plen - p >= 2 {
                    p += 1;
                    pattern[p]
                } else {
                    other
                };
                if fold(lit, nocase) != fold(string[s], nocase) {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == slen {
            while at(pattern, p) == b'*' && p < plen {
                p += 1;
            }
            break;
        }
    }
    p >= plen && s == slen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        string_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basics() {
        // A lone `*` does not match the empty string here (KEYS short-circuits `*`).
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hello"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range");
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("[\\]]", "]"));
        assert!(m("[a\\-z]", "-"));
        assert!(!m("[a\\-z]", "b"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(m("*a*", "bab"));
        assert!(!m("*a*", "bbb"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("user:*:name", "user:1000:age"));
        assert!(m("\\", "\\"), "lone trailing backslash is literal");
        assert!(m("[abc", "a"), "unterminated class");
        assert!(!m("[abc", "ab"));
        assert!(!m("[]", "]"), "`]` right after `[` closes an empty class");
        assert!(!m("[", "x"));
        assert!(string_match(b"?", &[0xe9], false));
        // Ranges compare as signed C chars: 0xe9 is negative, below 'a'.
        assert!(!string_match(b"[a-z]", &[0xe9], false));
        assert!(
            string_match(b"[\x80-a]", &[0xe9], false) || !string_match(b"[\x80-a]", &[0xe9], false)
        );
    }

    #[test]
    fn nocase() {
        assert!(string_match(b"HELLO", b"hello", true));
        assert!(string_match(b"h[A-C]llo", b"hbllo", true));
        assert!(!string_match(b"HELLO", b"hello", false));
    }

    #[test]
    fn redis_keyspace_tests() {
        // From Redis tests/unit/keyspace.tcl "KEYS with pattern" and util.c's tests.
        let keys = ["key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c"];
        let foo: Vec<_> = keys.iter().filter(|k| m("foo*", k)).collect();
        assert_eq!(foo, [&"foo_a", &"foo_b", &"foo_c"]);
        assert!(m("a*[b-z]", "ab"));
        assert!(
            !m("*[", "a["),
            "`[` alone never matches a byte past the end"
        );
        assert!(m("*\\", "a\\"));
    }

    #[test]
    fn pathological_patterns_finish() {
        // Redis issue: "a*a*a*...*b" against "aaaa...": exponential without the
        // skip-longer-matches rule.
        let pattern = "a*".repeat(50) + "b";
        let string = "a".repeat(100);
        let started = std::time::Instant::now();
        assert!(!m(&pattern, &string));
        assert!(started.elapsed().as_secs() < 2);
        // Nesting beyond the limit is a non-match, not a stack overflow.
        let deep = "*?".repeat(3 * GLOB_MAX_NESTING);
        let long = "x".repeat(3 * GLOB_MAX_NESTING);
        assert!(!m(&deep, &long));
        assert!(m(&"*?".repeat(100), &"x".repeat(100)));
    }
}
