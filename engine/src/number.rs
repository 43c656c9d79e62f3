//! Redis's number parsing and formatting rules (`string2ll`, `string2ld`, `%.17g`,
//! `ll2string`), shared by values, string commands and replies.

use std::fmt::Write as _;

/// Longest decimal `i64` text: `-9223372036854775808`.
pub const I64_MAX_DECIMAL_BYTES: usize = 20;
/// Redis refuses float texts this long or longer (`MAX_LONG_DOUBLE_CHARS`).
pub const FLOAT_MAX_TEXT_BYTES: usize = 5 * 1024;
/// `%.17g`: significant digits Redis prints for a double.
const DOUBLE_SIGNIFICANT_DIGITS: usize = 17;
/// `%.17Lf`: fractional digits Redis keeps for INCRBYFLOAT results.
pub const INCRBYFLOAT_FRACTION_DIGITS: usize = 17;
/// 2^53: every integer below it is exact in `f64`.
const F64_EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Redis `string2ll`: an optional `-`, then `0` alone or a non-zero digit followed by
/// digits, in range, and nothing else (no `+`, spaces, leading zeros or `-0`).
#[must_use]
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > I64_MAX_DECIMAL_BYTES {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > i64::MIN.unsigned_abs() {
            return None;
        }
        Some(0i64.wrapping_sub_unsigned(v))
    } else {
        i64::try_from(v).ok()
    }
}

/// Writes `v` in decimal into `buf` and returns the used tail of it (`ll2string`).
#[must_use]
pub fn format_i64(v: i64, buf: &mut [u8; I64_MAX_DECIMAL_BYTES]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// Redis `string2ld` (used by INCRBYFLOAT and friends), computed in `f64`: what `strtold`
/// accepts, entirely, with no leading space and not NaN. Infinity is accepted.
///
/// Differences from Redis's `long double`: hexadecimal floats (`0x1p3`) are refused, and
/// magnitudes outside `f64` range (beyond ~1.8e308, or tiny non-zero values below
/// ~4.9e-324) overflow to infinity or underflow to zero where `long double` would not.
#[must_use]
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= FLOAT_MAX_TEXT_BYTES || s[0].is_ascii_whitespace() {
        return None;
    }
    if let Some(v) = small_int_as_f64(s) {
        return Some(v);
    }
    let text = std::str::from_utf8(s).ok()?;
    // Rust accepts "infinity"/"inf"/"nan" (any case), signs, "1e3", ".5", "5." like strtold.
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    if v == 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) && !is_zero_mantissa(text) {
        // Underflow to zero: strtold reports ERANGE and Redis refuses it.
        return None;
    }
    Some(v)
}

/// `[+-]?[0-9]{1,15}` as its exact value (every such integer is below 2^53), the common
/// form of scores and increments, without the general parser. `-0` is `-0.0`, as strtod
/// gives.
#[inline]
fn small_int_as_f64(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > EXACT_F64_MAX_DIGITS {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    let f = v as f64;
    Some(if negative { -f } else { f })
}

/// Decimal digits that always fit a double's 53-bit mantissa exactly.
const EXACT_F64_MAX_DIGITS: usize = 15;

/// True when the mantissa digits of a decimal float text are all zero ("0e5", "-0.000").
fn is_zero_mantissa(text: &str) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    mantissa.bytes().all(|b| !(b'1'..=b'9').contains(&b))
}

/// Splits `v` (finite, non-zero) into decimal digits and the exponent of the first
/// digit, rounded to `digits` significant digits.
fn decimal_digits(v: f64, digits: usize) -> (Vec<u8>, i32) {
    let s = format!("{:.*e}", digits - 1, v.abs());
    let (mantissa, exp) = s.split_once('e').expect("`{:e}` output has an exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exp.parse().expect("`{:e}` exponent is an integer"))
}

/// C's `printf("%.17g", v)`, which Redis uses for doubles in RESP2 replies.
#[must_use]
pub fn format_double(v: f64) -> String {
    format_g(v, DOUBLE_SIGNIFICANT_DIGITS)
}

/// C's `printf("%.<precision>g", v)` (glibc's texts for NaN and infinities); `precision`
/// 0 counts as 1, as in C.
#[must_use]
pub fn format_g(v: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let (mut digits, exp) = decimal_digits(v, precision);
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let mut out = String::new();
    if v < 0.0 {
        out.push('-');
    }
    if exp < -4 || exp >= precision as i32 {
        out.push(char::from(digits[0]));
        if digits.len() > 1 {
            out.push('.');
            out.extend(digits[1..].iter().map(|&d| char::from(d)));
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else {
        push_fixed(&mut out, &digits, exp);
    }
    out
}

/// Appends `0.ddd` / `ddd.ddd` / `ddd000` for digits `d1 d2 ...` × 10^(exp - len + 1).
fn push_fixed(out: &mut String, digits: &[u8], exp: i32) {
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.extend(digits.iter().map(|&d| char::from(d)));
        return;
    }
    let int_len = exp as usize + 1;
    for i in 0..int_len {
        out.push(char::from(*digits.get(i).unwrap_or(&b'0')));
    }
    if digits.len() > int_len {
        out.push('.');
        out.extend(digits[int_len..].iter().map(|&d| char::from(d)));
    }
}

/// INCRBYFLOAT's reply text for `old + delta`, emulating Redis's `%.17Lf` on a
/// `long double` followed by trimming trailing zeros.
///
/// Redis adds in 80-bit `long double`, where decimal inputs like `0.1 + 0.2` land close
/// enough to `0.3` that 17 fractional digits print `0.3`. In `f64` the sum is one ulp away,
/// so this prints the shortest decimal within the `f64` computation's error bound of the
/// result, in fixed
/// notation, rounded to 17 fractional digits. That matches Redis for sums of short
/// decimals (`10.5+0.1` → `10.6`, `0.1+0.2` → `0.3`, `5.0e3+2.0e2` → `5200`). Residual
/// differences: where `long double` itself shows rounding noise Redis prints it
/// (`1000+0.3` → `1000.29999999999999999`, we print `1000.3`); integers above 2^53 lose
/// precision (`1e17+1`); huge magnitudes print as the shortest decimal padded with zeros,
/// not the exact binary expansion.
///
/// Returns `None` when the sum is NaN or infinite.
#[must_use]
pub fn format_incrbyfloat(old: f64, delta: f64) -> Option<String> {
    let v = old + delta;
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some("0".to_owned());
    }
    // How far the f64 sum may be from the exact decimal sum: half an ulp for parsing each
    // operand, half for the addition, plus half for the candidate's own rounding.
    // Integers below 2^53 parse exactly and contribute nothing.
    let ulp = |x: f64| x.abs().next_up() - x.abs();
    let parse_error = |x: f64| {
        if x.fract() == 0.0 && x.abs() < F64_EXACT_INT_LIMIT {
            0.0
        } else {
            ulp(x) / 2.0
        }
    };
    let tolerance = parse_error(old) + parse_error(delta) + ulp(v) / 2.0;
    let mut chosen = decimal_digits(v, DOUBLE_SIGNIFICANT_DIGITS);
    for precision in 1..=DOUBLE_SIGNIFICANT_DIGITS {
        let candidate = decimal_digits(v, precision);
        if decimal_distance(&candidate, v) <= tolerance {
            chosen = candidate;
            break;
        }
    }
    let (mut digits, mut exp) = chosen;
    // Round to INCRBYFLOAT_FRACTION_DIGITS fractional digits, half up on the decimal text.
    let keep = exp + 1 + INCRBYFLOAT_FRACTION_DIGITS as i32;
    if keep <= 0 {
        let rounds_up = keep == 0 && digits[0] >= b'5';
        if !rounds_up {
            return Some("0".to_owned());
        }
        digits = vec![b'1'];
        exp = -(INCRBYFLOAT_FRACTION_DIGITS as i32);
    } else if (keep as usize) < digits.len() {
        let round_up = digits[keep as usize] >= b'5';
        digits.truncate(keep as usize);
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, b'1');
                    exp += 1;
                    break;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let mut out = String::new();
    if v < 0.0 {
        out.push('-');
    }
    push_fixed(&mut out, &digits, exp);
    Some(out)
}

/// Significant digits of `v` used to measure distances exactly enough.
const DISTANCE_DIGITS: usize = 34;

/// `| decimal - |v| |` for a decimal (digits, exponent of the first digit) near `|v|`,
/// computed on exact decimal digits rather than on a rounded `f64`.
fn decimal_distance(decimal: &(Vec<u8>, i32), v: f64) -> f64 {
    let (digits, exp) = decimal;
    let (v_digits, v_exp) = decimal_digits(v, DISTANCE_DIGITS);
    let low = (exp - digits.len() as i32 + 1).min(v_exp - DISTANCE_DIGITS as i32 + 1);
    let scaled = |ds: &[u8], e: i32| -> Option<i128> {
        let mut acc: i128 = 0;
        for &d in ds {
            acc = acc.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        }
        let shift = e - ds.len() as i32 + 1 - low;
        (0..shift).try_fold(acc, |a, _| a.checked_mul(10))
    };
    match (scaled(digits, *exp), scaled(&v_digits, v_exp)) {
        (Some(a), Some(b)) => (a - b).unsigned_abs() as f64 * 10f64.powi(low),
        _ => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        for (text, want) in [
            ("0", Some(0)),
            ("1", Some(1)),
            ("-1", Some(-1)),
            ("123", Some(123)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("99999999999999999999", None),
            ("-0", None),
            ("007", None),
            ("00", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("-", None),
            ("1a", None),
            ("1.0", None),
            ("123456789012345678901", None),
        ] {
            assert_eq!(parse_i64_strict(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn formats_integers() {
        let mut buf = [0; I64_MAX_DECIMAL_BYTES];
        for v in [0, 1, -1, 42, i64::MAX, i64::MIN, -10, 1_000_000] {
            assert_eq!(format_i64(v, &mut buf), v.to_string().as_bytes());
        }
    }

    #[test]
    fn integer_texts_parse_as_the_general_parser_does() {
        for text in [
            "0",
            "-0",
            "+0",
            "7",
            "-7",
            "+7",
            "000000093451",
            "-000",
            "999999999999999",
            "-999999999999999",
            "1000000000000000",
            "12345678901234567",
            "",
            "-",
            "+",
            "1a",
            "1.0",
            " 1",
            "0x10",
            "1e3",
        ] {
            let general = text
                .parse::<f64>()
                .ok()
                .filter(|_| !text.is_empty() && !text.starts_with(' '));
            let got = parse_f64(text.as_bytes());
            assert_eq!(got.map(f64::to_bits), general.map(f64::to_bits), "{text:?}");
        }
    }

    #[test]
    fn parses_floats_like_string2ld() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"3.0e3"), Some(3000.0));
        assert_eq!(parse_f64(b"+2"), Some(2.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"5."), Some(5.0));
        assert_eq!(parse_f64(b"-0"), Some(0.0));
        assert_eq!(parse_f64(b"0e10"), Some(0.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [
            &b"nan"[..],
            b" 1",
            b"1 ",
            b"",
            b"abc",
            b"1e",
            b"1.5.1",
            b"1e-400",
            b"\t1",
        ] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn percent_g_with_precision() {
        for (v, p, want) in [
            (0.1, 14, "0.1"),
            (1.0 / 3.0, 14, "0.33333333333333"),
            (123_456.0, 3, "1.23e+05"),
            (1e15, 14, "1e+15"),
            (99_999_999_999_999.9, 14, "1e+14"),
            (0.000_012_5, 2, "1.3e-05"),
            (2.5, 1, "2"),
            (f64::NAN, 14, "nan"),
        ] {
            assert_eq!(format_g(v, p), want, "{v:e} %.{p}g");
        }
    }

    #[test]
    fn percent_17g() {
        for (v, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.10000000000000001"),
            (1.0 / 3.0, "0.33333333333333331"),
            (100.0, "100"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123_456_789.0, "123456789"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1.5e300, "1.5000000000000001e+300"),
            (1e300, "1.0000000000000001e+300"),
            (-2.5e-10, "-2.5000000000000002e-10"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(format_double(v), want, "{v:e}");
        }
    }

    #[test]
    fn incrbyfloat_formatting_matches_redis_for_common_sums() {
        // Outputs observed from redis-server 7 INCRBYFLOAT.
        for (old, delta, want) in [
            (10.5, 0.1, "10.6"),
            (0.1, 0.2, "0.3"),
            (3.0e3, 0.0, "3000"),
            (5.0e3, 2.0e2, "5200"),
            (1.0, -1.1, "-0.1"),
            (17_179_869_184.0, 1.5, "17179869185.5"),
            (1e-20, 0.0, "0"),
            (0.0, -1e-20, "0"),
            (1.1, 2.2, "3.3"),
            (1.0, 0.333_333_333_333_333_3, "1.3333333333333333"),
            (2.5, -2.5, "0"),
            (-1.0, 0.5, "-0.5"),
            (1e-17, 1e-17, "0.00000000000000002"),
            (0.1, 0.0, "0.1"),
            (1e17, 0.0, "100000000000000000"),
        ] {
            assert_eq!(
                format_incrbyfloat(old, delta).as_deref(),
                Some(want),
                "{old} + {delta}"
            );
        }
        // Known residuals, beyond f64 precision (redis-server 7 prints the second value).
        assert_eq!(format_incrbyfloat(3.7, 1e-17).as_deref(), Some("3.7")); // "3.70000000000000001"
        assert_eq!(format_incrbyfloat(1000.0, 0.3).as_deref(), Some("1000.3")); // "1000.29999999999999999"
        assert_eq!(
            format_incrbyfloat(1e17, 1.0).as_deref(),
            Some("100000000000000000")
        ); // "...001"
        // Rounding to 17 fractional digits.
        assert_eq!(
            format_incrbyfloat(6e-18, 0.0).as_deref(),
            Some("0.00000000000000001")
        );
        assert_eq!(
            format_incrbyfloat(1.234_567_890_123_456_7e-10, 0.0).as_deref(),
            Some("0.00000000012345679")
        );
        assert_eq!(format_incrbyfloat(f64::MAX, f64::MAX), None);
        assert_eq!(format_incrbyfloat(f64::INFINITY, f64::NEG_INFINITY), None);
    }
}
