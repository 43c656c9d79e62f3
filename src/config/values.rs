//! Redis's value syntax for configuration options: strict integers (`string2ll`),
//! memory sizes (`memtoull`: `100k` = 100000, `1kb` = 1024, ... case-insensitive),
//! `yes`/`no`, and the error texts Redis 7 sends when one does not parse.

pub const ERR_NOT_INTEGER: &str = "argument couldn't be parsed into an integer";
pub const ERR_NOT_MEMORY: &str = "argument must be a memory value";
pub const ERR_NOT_BOOL: &str = "argument must be 'yes' or 'no'";

const KB: u64 = 1024;
const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * 1024 * 1024;

/// Parses an integer as Redis's `string2ll` does: optional `-`, digits, no `+`, no
/// blanks, no leading zeros.
pub fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || leading_zero || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s == "-0" {
        return None;
    }
    s.parse().ok()
}

/// Parses an integer option within `[min, max]`, with Redis's error texts.
pub fn parse_bounded(s: &str, min: i64, max: i64) -> Result<i64, String> {
    let value = parse_int(s).ok_or(ERR_NOT_INTEGER)?;
    if value < min || value > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(value)
}

/// Parses a memory size as Redis's `memtoull`: digits then an optional unit among
/// `b`, `k` (1000), `kb` (1024), `m`, `mb`, `g`, `gb`, case-insensitive.
/// An empty digit string is 0, as in Redis (`""`, `mb`).
pub fn parse_memory(s: &str) -> Option<u64> {
    let split = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => KB,
        "m" => 1000 * 1000,
        "mb" => MB,
        "g" => 1000 * 1000 * 1000,
        "gb" => GB,
        _ => return None,
    };
    if digits.is_empty() {
        // `memtoull` reads no digits as 0 (`CONFIG SET maxmemory ""` sets 0).
        return Some(0);
    }
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// Parses a memory option within `[min, max]` bytes, with Redis's error texts.
pub fn parse_memory_bounded(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let value = parse_memory(s).ok_or(ERR_NOT_MEMORY)?;
    if value < min || value > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(value)
}

/// Renders a byte count for CONFIG REWRITE as Redis's `rewriteConfigFormatMemory`:
/// the largest binary unit that divides it exactly (`1gb`, `512mb`, `64kb`), else bytes.
pub fn format_memory(bytes: u64) -> String {
    match bytes {
        0 => "0".to_owned(),
        b if b % GB == 0 => format!("{}gb", b / GB),
        b if b % MB == 0 => format!("{}mb", b / MB),
        b if b % KB == 0 => format!("{}kb", b / KB),
        b => b.to_string(),
    }
}

pub fn parse_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(ERR_NOT_BOOL.to_owned())
    }
}

pub fn render_bool(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// Picks `s` (case-insensitively) among `names`; the error lists them as Redis does.
pub fn parse_enum(s: &str, names: &[&str]) -> Result<usize, String> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            format!(
                "argument(s) must be one of the following: {}",
                names.join(", ")
            )
        })
}

/// [`parse_enum`] whose error lists `shown` (Redis 7.0's names in its table order)
/// rather than `names`.
pub fn parse_enum_shown(s: &str, names: &[&str], shown: &[&str]) -> Result<usize, String> {
    parse_enum(s, names).map_err(|_| {
        format!(
            "argument(s) must be one of the following: {}",
            shown.join(", ")
        )
    })
}

/// Case-insensitive Redis glob match of a CONFIG GET pattern against an option name
/// (Redis's `stringmatch(pattern, name, 1)`).
pub fn name_matches(pattern: &[u8], name: &str) -> bool {
    percore_engine::glob::string_match(pattern, name.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::{format_memory, name_matches, parse_bounded, parse_int, parse_memory};

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_int("0"), Some(0));
        assert_eq!(parse_int("-1"), Some(-1));
        for bad in [
            "",
            "-",
            "+5",
            " 5",
            "05",
            "1e3",
            "1k",
            "-0",
            "99999999999999999999",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_bounded("-1", 0, 10).unwrap_err(),
            "argument must be between 0 and 10 inclusive"
        );
    }

    #[test]
    fn memory_sizes_parse_like_memtoull() {
        let cases = [
            ("0", 0),
            ("1b", 1),
            ("100k", 100_000),
            ("100K", 100_000),
            ("1kb", 1024),
            ("1M", 1_000_000),
            ("512mb", 512 << 20),
            ("1GB", 1 << 30),
            ("10g", 10_000_000_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_memory(text), Some(bytes), "{text}");
        }
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("mb"), Some(0));
        for bad in ["-5", "1.5mb", "12zz", " 1", "1 mb", "99999999999gb"] {
            assert_eq!(parse_memory(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_sizes_render_with_the_largest_exact_unit() {
        assert_eq!(format_memory(0), "0");
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(512 << 20), "512mb");
        assert_eq!(format_memory(64 << 10), "64kb");
        assert_eq!(format_memory(1_000_000_000), "1000000000");
    }

    #[test]
    fn globs_match_case_insensitively() {
        assert!(name_matches(b"*max*", "maxmemory-policy"));
        assert!(name_matches(b"*MAX*", "slowlog-max-len"));
        assert!(name_matches(b"port", "port"));
        assert!(name_matches(b"PORT", "port"));
        assert!(!name_matches(b"port", "ports"));
        assert!(name_matches(b"[pb]o*", "port"));
        assert!(!name_matches(b"[^p]o*", "port"));
        assert!(name_matches(b"h?", "hz"));
        assert!(name_matches(b"*", "save"));
        assert!(!name_matches(b"max", "maxmemory"));
    }
}
