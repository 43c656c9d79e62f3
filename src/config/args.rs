//! Redis's argument quoting: `sdssplitargs` (how redis.conf lines and `--name value`
//! options are split) and `sdscatrepr` (how CONFIG REWRITE quotes strings), so a value
//! written by one is read back byte for byte by the other.

use std::fmt::Write as _;

use percore_net::resp::{self, NulByte};

/// Splits a configuration line the way Redis's `sdssplitargs` does (see
/// [`percore_net::resp::split_args`]); a NUL byte is data here, not the end of the line.
/// Returns `None` for unbalanced quotes (Redis's "Unbalanced quotes in configuration
/// line").
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut scratch = Vec::with_capacity(line.len());
    let mut ranges = Vec::new();
    resp::split_args(line, NulByte::IsData, &mut scratch, &mut ranges).ok()?;
    Some(
        ranges
            .into_iter()
            .map(|(start, end)| scratch[start..end].to_vec())
            .collect(),
    )
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
    fn embedded_nul_is_data_in_a_config_line() {
        assert_eq!(split("a\0b c").unwrap(), ["a\0b", "c"]);
        assert_eq!(split("\0").unwrap(), ["\0"]);
        assert_eq!(split("'a\0' \"b\0\"").unwrap(), ["a\0", "b\0"]);
        assert_eq!(split("\"a\\\0\"").unwrap(), ["a\\\0"]);
        assert_eq!(split("\"ab\"\0c").unwrap(), ["ab", "\0c"]);
        assert_eq!(split("'ab'\0c").unwrap(), ["ab", "\0c"]);
        assert_eq!(split("\"a\0"), None);
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
