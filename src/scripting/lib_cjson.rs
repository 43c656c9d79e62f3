//! The `cjson` library (lua-cjson 2.1.0 as Redis bundles it): `encode`, `decode`,
//! `null`, and the settings functions. Numbers are written as Lua's `%.14g`; a table is
//! an array when its keys are exactly 1..n (or sparse within lua-cjson's default ratio),
//! else an object; an empty table is `{}`.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// lua-cjson's default nesting limits for encode and decode.
pub const MAX_JSON_DEPTH: usize = 1000;
/// lua-cjson's `encode_sparse_array` defaults: ratio 2, safe 10.
const SPARSE_RATIO: usize = 2;
const SPARSE_SAFE: usize = 10;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(lua, &a[0], &mut out, 0)?;
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, a: MultiValue| {
            let Some(Value::String(s)) = a.front().filter(|_| a.len() == 1) else {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'decode' (expected 1 argument)",
                ));
            };
            let bytes = s.as_bytes().to_vec();
            let mut p = Parser { s: &bytes, at: 0 };
            let v = p.value(lua, 0)?;
            p.ws();
            if p.at < bytes.len() {
                return Err(p.expected("the end", "invalid token"));
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    for name in [
        "encode_keep_buffer",
        "encode_max_depth",
        "decode_max_depth",
        "encode_number_precision",
        "encode_invalid_numbers",
        "decode_invalid_numbers",
        "encode_sparse_array",
    ] {
        t.raw_set(name, lua.create_function(|_, a: MultiValue| Ok(a))?)?;
    }
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn err(msg: String) -> mlua::Error {
    mlua::Error::runtime(msg)
}

fn encode(lua: &Lua, v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
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
                return Err(err("Cannot serialise number: must not be NaN or Inf".into()));
            }
            let s = lua.coerce_string(Value::Number(n))?.expect("a number");
            out.extend_from_slice(&s.as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > MAX_JSON_DEPTH {
                return Err(err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            encode_table(lua, t, out, depth + 1)?;
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
fn array_length(t: &Table) -> mlua::Result<Option<usize>> {
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
    if max > items * SPARSE_RATIO && max > SPARSE_SAFE {
        return Err(err(
            "Cannot serialise table: excessively sparse array".into()
        ));
    }
    Ok(Some(max))
}

fn encode_table(lua: &Lua, t: &Table, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match array_length(t)? {
        Some(n) if n > 0 => {
            out.push(b'[');
            for i in 1..=n {
                if i > 1 {
                    out.push(b',');
                }
                encode(lua, &t.raw_get::<Value>(i)?, out, depth)?;
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
                        let s = lua.coerce_string(k.clone())?.expect("a number");
                        encode_string(&s.as_bytes(), out);
                    }
                    _ => {
                        return Err(err(
                            "Cannot serialise table: table key must be a number or string".into(),
                        ));
                    }
                }
                out.push(b':');
                encode(lua, &v, out, depth)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
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
                if depth + 1 > MAX_JSON_DEPTH {
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
            _ => Err(self.expected("value", self.found())),
        }
    }

    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
        if let Ok(n) = text.parse::<f64>() {
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
