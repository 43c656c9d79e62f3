//! The `cjson` library (lua-cjson 2.1.0 as Redis bundles it): `encode`, `decode`,
//! `null`, and the settings functions. Numbers are written as Lua's `%.14g`; a table is
//! an array when its keys are exactly 1..n (or sparse within lua-cjson's default ratio),
//! else an object; an empty table is `{}`.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// lua-cjson's default nesting limits for encode and decode.
pub const MAX_JSON_DEPTH: usize = 1000;
/// lua-cjson's `encode_sparse_array` defaults: ratio 2, safe 10.
const SPARSE_RATIO: usize = 2;
const SPARSE_SAFE: usize = 10;
/// lua-cjson's default (and largest) `encode_number_precision`.
const NUMBER_PRECISION_MAX: i64 = 14;

/// The settings the `cjson.*` configuration functions change (lua-cjson's
/// `json_config_t`): they last for the Lua state, as in Redis, until changed back.
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: usize,
    sparse_safe: usize,
    encode_max_depth: usize,
    decode_max_depth: usize,
    /// 0 refuse, 1 encode (`nan`, `inf`), 2 as `null`.
    encode_invalid_numbers: usize,
    decode_invalid_numbers: bool,
    keep_buffer: bool,
    precision: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: SPARSE_RATIO,
            sparse_safe: SPARSE_SAFE,
            encode_max_depth: MAX_JSON_DEPTH,
            decode_max_depth: MAX_JSON_DEPTH,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: true,
            keep_buffer: true,
            precision: NUMBER_PRECISION_MAX as usize,
        }
    }
}

type Shared = Rc<RefCell<Config>>;

/// `json_arg_init`: at most `max` arguments.
fn check_args(a: &MultiValue, max: usize) -> mlua::Result<()> {
    if a.len() > max {
        return Err(err(format!(
            "bad argument #{} to '?' (found too many arguments)",
            max + 1
        )));
    }
    Ok(())
}

/// `json_integer_option`: sets `setting` from argument `i` when given (an integer in
/// `min..=max`), and returns the current value.
fn integer_option(
    a: &MultiValue,
    i: usize,
    setting: &mut usize,
    min: i64,
    max: i64,
) -> mlua::Result<Value> {
    match a.get(i) {
        None | Some(Value::Nil) => {}
        Some(v) => {
            let n = match v {
                Value::Integer(n) => *n,
                Value::Number(n) => *n as i64,
                Value::String(s) => s
                    .to_str()
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .map(|f| f as i64)
                    .ok_or_else(|| {
                        err(format!(
                            "bad argument #{} to '?' (number expected, got string)",
                            i + 1
                        ))
                    })?,
                other => {
                    return Err(err(format!(
                        "bad argument #{} to '?' (number expected, got {})",
                        i + 1,
                        other.type_name()
                    )));
                }
            };
            if n < min || n > max {
                return Err(err(format!(
                    "bad argument #1 to '?' (expected integer between {min} and {max})"
                )));
            }
            *setting = n as usize;
        }
    }
    Ok(Value::Integer(*setting as i64))
}

/// `json_enum_option`: a boolean, or one of `options` by name; returns the current value
/// (a boolean when it is 0 or 1, else the option's name).
fn enum_option(
    lua: &Lua,
    a: &MultiValue,
    i: usize,
    setting: &mut usize,
    options: &[&str],
) -> mlua::Result<Value> {
    match a.get(i) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = usize::from(*b),
        Some(Value::String(s)) => {
            let name = s.to_str().map(|t| t.to_owned()).unwrap_or_default();
            *setting = options.iter().position(|o| *o == name).ok_or_else(|| {
                err(format!(
                    "bad argument #{} to '?' (invalid option '{name}')",
                    i + 1
                ))
            })?;
        }
        Some(other) => {
            return Err(err(format!(
                "bad argument #{} to '?' (string expected, got {})",
                i + 1,
                other.type_name()
            )));
        }
    }
    Ok(if *setting <= 1 {
        Value::Boolean(*setting == 1)
    } else {
        Value::String(lua.create_string(options[*setting])?)
    })
}

const BOOL_OPTIONS: [&str; 2] = ["off", "on"];

fn bool_option(lua: &Lua, a: &MultiValue, i: usize, setting: &mut bool) -> mlua::Result<Value> {
    let mut n = usize::from(*setting);
    let v = enum_option(lua, a, i, &mut n, &BOOL_OPTIONS)?;
    *setting = n == 1;
    Ok(v)
}

/// The configuration functions, each sharing `cfg`.
fn add_config_functions(lua: &Lua, t: &Table, cfg: &Shared) -> mlua::Result<()> {
    let c = Rc::clone(cfg);
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |lua, a: MultiValue| {
            check_args(&a, 3)?;
            let cfg = &mut *c.borrow_mut();
            let convert = bool_option(lua, &a, 0, &mut cfg.sparse_convert)?;
            let ratio = integer_option(&a, 1, &mut cfg.sparse_ratio, 0, i64::from(i32::MAX))?;
            let safe = integer_option(&a, 2, &mut cfg.sparse_safe, 0, i64::from(i32::MAX))?;
            Ok(MultiValue::from_vec(vec![convert, ratio, safe]))
        })?,
    )?;
    let c = Rc::clone(cfg);
    t.raw_set(
        "encode_max_depth",
        lua.create_function(move |_, a: MultiValue| {
            check_args(&a, 1)?;
            integer_option(
                &a,
                0,
                &mut c.borrow_mut().encode_max_depth,
                1,
                i64::from(i32::MAX),
            )
        })?,
    )?;
    let c = Rc::clone(cfg);
    t.raw_set(
        "decode_max_depth",
        lua.create_function(move |_, a: MultiValue| {
            check_args(&a, 1)?;
            integer_option(
                &a,
                0,
                &mut c.borrow_mut().decode_max_depth,
                1,
                i64::from(i32::MAX),
            )
        })?,
    )?;
    let c = Rc::clone(cfg);
    t.raw_set(
        "encode_number_precision",
        lua.create_function(move |_, a: MultiValue| {
            check_args(&a, 1)?;
            integer_option(
                &a,
                0,
                &mut c.borrow_mut().precision,
                1,
                NUMBER_PRECISION_MAX,
            )
        })?,
    )?;
    let c = Rc::clone(cfg);
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(move |lua, a: MultiValue| {
            check_args(&a, 1)?;
            bool_option(lua, &a, 0, &mut c.borrow_mut().keep_buffer)
        })?,
    )?;
    let c = Rc::clone(cfg);
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, a: MultiValue| {
            check_args(&a, 1)?;
            enum_option(
                lua,
                &a,
                0,
                &mut c.borrow_mut().encode_invalid_numbers,
                &["off", "on", "null"],
            )
        })?,
    )?;
    let c = Rc::clone(cfg);
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(move |lua, a: MultiValue| {
            check_args(&a, 1)?;
            bool_option(lua, &a, 0, &mut c.borrow_mut().decode_invalid_numbers)
        })?,
    )?;
    Ok(())
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

#[allow(
    clippy::many_single_char_names,
    reason = "t is the module table, c each closure's share of the settings"
)]
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let cfg: Shared = Rc::default();
    let c = Rc::clone(&cfg);
    t.raw_set(
        "encode",
        lua.create_function(move |lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            let cfg = *c.borrow();
            encode(lua, &cfg, &a[0], &mut out, 0)?;
            lua.create_string(out)
        })?,
    )?;
    let c = Rc::clone(&cfg);
    t.raw_set(
        "decode",
        lua.create_function(move |lua, a: MultiValue| {
            let Some(Value::String(s)) = a.front().filter(|_| a.len() == 1) else {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'decode' (expected 1 argument)",
                ));
            };
            let bytes = s.as_bytes().to_vec();
            let mut p = Parser {
                s: &bytes,
                at: 0,
                cfg: *c.borrow(),
            };
            let v = p.value(lua, 0)?;
            p.ws();
            if p.at < bytes.len() {
                return Err(p.expected("the end", "invalid token"));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    add_config_functions(lua, &t, &cfg)?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn err(msg: String) -> mlua::Error {
    mlua::Error::runtime(msg)
}

fn encode(lua: &Lua, cfg: &Config, v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(_) | Value::Number(_) => {
            let n = match v {
                Value::Integer(i) => *i as f64,
                Value::Number(n) => *n,
                _ => unreachable!(),
            };
            if !n.is_finite() {
                match cfg.encode_invalid_numbers {
                    0 => {
                        return Err(err("Cannot serialise number: must not be NaN or Inf".into()));
                    }
                    1 if n.is_nan() => {
                        out.extend_from_slice(b"nan");
                        return Ok(());
                    }
                    1 => {}
                    _ => {
                        out.extend_from_slice(b"null");
                        return Ok(());
                    }
                }
            }
            let text = percore_engine::number::format_g(n, cfg.precision);
            out.extend_from_slice(text.as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > cfg.encode_max_depth {
                return Err(err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            encode_table(lua, cfg, t, out, depth + 1)?;
        }
        other => {
            return Err(err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )));
        }
    }
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => {
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
            }
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// The array length of `t` if it encodes as an array (lua-cjson's `lua_array_length`).
fn array_length(cfg: &Config, t: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if cfg.sparse_ratio > 0 && max > items * cfg.sparse_ratio && max > cfg.sparse_safe {
        if cfg.sparse_convert {
            return Ok(None);
        }
        return Err(err(
            "Cannot serialise table: excessively sparse array".into()
        ));
    }
    Ok(Some(max))
}

fn encode_table(
    lua: &Lua,
    cfg: &Config,
    t: &Table,
    out: &mut Vec<u8>,
    depth: usize,
) -> mlua::Result<()> {
    match array_length(cfg, t)? {
        Some(n) if n > 0 => {
            out.push(b'[');
            for i in 1..=n {
                if i > 1 {
                    out.push(b',');
                }
                encode(lua, cfg, &t.raw_get::<Value>(i)?, out, depth)?;
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let mut first = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::String(s) => encode_string(&s.as_bytes(), out),
                    Value::Integer(_) | Value::Number(_) => {
                        out.push(b'"');
                        encode(lua, cfg, &k, out, depth)?;
                        out.push(b'"');
                    }
                    _ => {
                        return Err(err(
                            "Cannot serialise table: table key must be a number or string".into(),
                        ));
                    }
                }
                out.push(b':');
                encode(lua, cfg, &v, out, depth)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    cfg: Config,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn expected(&self, what: &str, found: &str) -> mlua::Error {
        err(format!(
            "Expected {what} but found {found} at character {}",
            self.at + 1
        ))
    }

    fn found(&self) -> &'static str {
        match self.s.get(self.at) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b',') => "T_COMMA",
            Some(b':') => "T_COLON",
            Some(b'"') => "T_STRING",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            Some(_)
                if self.s[self.at..].starts_with(b"true")
                    || self.s[self.at..].starts_with(b"false") =>
            {
                "T_BOOLEAN"
            }
            Some(_) if self.s[self.at..].starts_with(b"null") => "T_NULL",
            _ => "invalid token",
        }
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        self.ws();
        let Some(&c) = self.s.get(self.at) else {
            return Err(self.expected("value", "T_END"));
        };
        match c {
            b'{' | b'[' => {
                if depth + 1 > self.cfg.decode_max_depth {
                    return Err(err(format!(
                        "Found too many nested data structures ({}) at character {}",
                        depth + 1,
                        self.at + 1
                    )));
                }
                self.at += 1;
                if c == b'{' {
                    self.object(lua, depth + 1)
                } else {
                    self.array(lua, depth + 1)
                }
            }
            b'"' => Ok(Value::String(lua.create_string(self.string()?)?)),
            b't' if self.s[self.at..].starts_with(b"true") => {
                self.at += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.s[self.at..].starts_with(b"false") => {
                self.at += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.s[self.at..].starts_with(b"null") => {
                self.at += 4;
                Ok(null())
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ if self.cfg.decode_invalid_numbers && self.is_invalid_number() => self.number(),
            _ => Err(self.expected("value", self.found())),
        }
    }

    /// lua-cjson's `json_is_invalid_number`: a number strict JSON refuses (a leading
    /// `+`, hex, leading zeros, inf/nan) that `strtod` would still read.
    fn is_invalid_number(&self) -> bool {
        let mut p = &self.s[self.at..];
        match p.first() {
            Some(b'+') => return true,
            Some(b'-') => p = &p[1..],
            _ => {}
        }
        match p.first() {
            Some(b'0') => matches!(p.get(1), Some(b'x' | b'X' | b'0'..=b'9')),
            Some(c) if *c <= b'9' => false,
            _ => {
                let head = p.get(..3).unwrap_or(p);
                head.eq_ignore_ascii_case(b"inf") || head.eq_ignore_ascii_case(b"nan")
            }
        }
    }

    /// A number as `strtod` reads it: decimal, hex, `inf`/`infinity`/`nan`, signed.
    fn number(&mut self) -> mlua::Result<Value> {
        if !self.cfg.decode_invalid_numbers && self.is_invalid_number() {
            return Err(self.expected("value", "invalid number"));
        }
        let start = self.at;
        let rest = &self.s[start..];
        let mut i = 0;
        let negative = rest.first() == Some(&b'-');
        if matches!(rest.first(), Some(b'+' | b'-')) {
            i = 1;
        }
        let word = |w: &[u8]| {
            rest.get(i..i + w.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(w))
        };
        let value = if word(b"infinity") || word(b"inf") {
            self.at += i + if word(b"infinity") { 8 } else { 3 };
            Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        } else if word(b"nan") {
            self.at += i + 3;
            Some(f64::NAN)
        } else if word(b"0x") && rest.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
            let digits = rest[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let v = rest[i + 2..i + 2 + digits].iter().fold(0.0f64, |acc, &d| {
                acc * 16.0 + f64::from((d as char).to_digit(16).unwrap_or(0))
            });
            self.at += i + 2 + digits;
            Some(if negative { -v } else { v })
        } else {
            let mut j = i;
            let digits = |j: &mut usize| {
                let from = *j;
                while rest.get(*j).is_some_and(u8::is_ascii_digit) {
                    *j += 1;
                }
                *j > from
            };
            let mut any = digits(&mut j);
            if rest.get(j) == Some(&b'.') {
                j += 1;
                any |= digits(&mut j);
            }
            if any && matches!(rest.get(j), Some(b'e' | b'E')) {
                let mut k = j + 1;
                if matches!(rest.get(k), Some(b'+' | b'-')) {
                    k += 1;
                }
                if digits(&mut k) {
                    j = k;
                }
            }
            let text = std::str::from_utf8(&rest[..j]).unwrap_or("");
            match (any, text.parse::<f64>()) {
                (true, Ok(n)) => {
                    self.at += j;
                    Some(n)
                }
                _ => None,
            }
        };
        if let Some(n) = value {
            Ok(Value::Number(n))
        } else {
            self.at = start;
            Err(self.expected("value", "invalid number"))
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.at..self.at + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.at += 4;
        Some(v)
    }

    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.at) else {
                self.at = start;
                return Err(self.expected("value", "unexpected end of string"));
            };
            self.at += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        self.at = start;
                        return Err(self.expected("value", "invalid escape code"));
                    };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(mut cp) = self.hex4() else {
                                self.at = start;
                                return Err(self.expected("value", "invalid unicode escape code"));
                            };
                            if (0xd800..0xdc00).contains(&cp)
                                && self.s.get(self.at..self.at + 2) == Some(b"\\u")
                            {
                                self.at += 2;
                                if let Some(lo) = self.hex4()
                                    && (0xdc00..0xe000).contains(&lo)
                                {
                                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            self.at = start;
                            return Err(self.expected("value", "invalid escape code"));
                        }
                    }
                }
                b => out.push(b),
            }
        }
    }

    fn array(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        self.ws();
        if self.s.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value(lua, depth)?;
            t.raw_set(i, v)?;
            i += 1;
            self.ws();
            match self.s.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or array end", self.found())),
            }
        }
    }

    fn object(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        self.ws();
        if self.s.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.ws();
            if self.s.get(self.at) != Some(&b'"') {
                return Err(self.expected("object key string", self.found()));
            }
            let k = self.string()?;
            self.ws();
            if self.s.get(self.at) != Some(&b':') {
                return Err(self.expected("colon", self.found()));
            }
            self.at += 1;
            let v = self.value(lua, depth)?;
            t.raw_set(lua.create_string(k)?, v)?;
            self.ws();
            match self.s.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or object end", self.found())),
            }
        }
    }
}
