//! Redis's argument quoting: `sdssplitargs` (how redis.conf lines and `--name value`
//! options are split) and `sdscatrepr` (how CONFIG REWRITE quotes strings), so a value
//! written by one is read back byte for byte by the other.

use std::fmt::Write as _;

/// Splits a configuration line the way Redis's `sdssplitargs` does: blanks separate
/// arguments, `"double quotes"` understand `\n \r \t \b \a \xHH` and `\<any>` escapes,
/// `'single quotes'` only `\'`. A closing quote must be followed by a blank or the end of
/// the line. Returns `None` for unbalanced quotes (Redis's "Unbalanced quotes in
/// configuration line").
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut p = 0;
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(p);
            if in_double {
                if c == b'\\' && at(p + 1) == b'x' && is_hex(at(p + 2)) && is_hex(at(p + 3)) {
                    current.push(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 && p >= line.len() {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 && p >= line.len() {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    0 if p >= line.len() => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => current.push(other),
                }
            }
            p += 1;
        }
        args.push(current);
    }
}

/// Quotes a string the way Redis's `sdscatrepr` does, so [`split_args`] reads it back.
pub fn repr(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::{repr, split_args};

    fn split(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes()).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        })
    }

    #[test]
    fn splits_like_sdssplitargs() {
        assert_eq!(split("  save 60   1 ").unwrap(), ["save", "60", "1"]);
        assert_eq!(
            split(r#"requirepass "a b\"c""#).unwrap(),
            ["requirepass", "a b\"c"]
        );
        assert_eq!(
            split(r#"x "\x41\n" 'it\'s'"#).unwrap(),
            ["x", "A\n", "it's"]
        );
        assert_eq!(split(r#"save """#).unwrap(), ["save", ""]);
        assert_eq!(
            split(r#"a"b c"d"#),
            None,
            "closing quote must end the argument"
        );
        assert_eq!(split(r#"save "60 1"#), None);
        assert_eq!(split("'open"), None);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn repr_round_trips() {
        for s in [
            "",
            "plain",
            "a b",
            "q\"uo\\te",
            "tab\tnl\n",
            "caf\u{e9}",
            "\u{1}",
        ] {
            let line = format!("k {}", repr(s));
            assert_eq!(split(&line).unwrap(), ["k", s], "{line}");
        }
    }
}
