//! The `cmsgpack` library (lua-cmsgpack 0.4.0 as Redis bundles it): `pack(...)` writes
//! each argument as MessagePack, `unpack(s)` returns every object in `s`, and
//! `unpack_one`/`unpack_limit` return the offset to resume at first.

use mlua::{Lua, MultiValue, Table, Value};

/// lua-cmsgpack's nesting limit: deeper tables are packed as nil.
pub const MAX_MSGPACK_NESTING: usize = 16;
/// Nesting accepted when unpacking (bounds the recursion on hostile input).
pub const MAX_UNPACK_DEPTH: usize = 1000;

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, a: MultiValue| {
            if a.is_empty() {
                return Err(mlua::Error::runtime("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in &a {
                pack(v, &mut out, 0)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::LuaString| {
            let bytes = s.as_bytes().to_vec();
            let mut at = 0;
            let mut values = Vec::new();
            while at < bytes.len() {
                values.push(unpack(lua, &bytes, &mut at, 0)?);
            }
            Ok(MultiValue::from_vec(values))
        })?,
    )?;
    for (name, limited) in [("unpack_one", false), ("unpack_limit", true)] {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let Some(Value::String(s)) = a.front() else {
                    return Err(mlua::Error::runtime("bad argument #1 (string expected)"));
                };
                let num = |i: usize| -> i64 {
                    match a.get(i) {
                        Some(Value::Integer(n)) => *n,
                        Some(Value::Number(n)) => *n as i64,
                        _ => 0,
                    }
                };
                let (limit, offset) = if limited {
                    (num(1), num(2))
                } else {
                    (1, num(1))
                };
                let bytes = s.as_bytes().to_vec();
                let mut at = usize::try_from(offset.max(0)).unwrap_or(0);
                let mut values = Vec::new();
                while at < bytes.len() && (limit <= 0 || (values.len() as i64) < limit) {
                    values.push(unpack(lua, &bytes, &mut at, 0)?);
                }
                let next = if at >= bytes.len() { -1 } else { at as i64 };
                let mut out = vec![Value::Number(next as f64)];
                out.extend(values);
                Ok(MultiValue::from_vec(out))
            })?,
        )?;
    }
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        if u <= 127 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_len(len: usize, small: u8, small_max: usize, codes: [u8; 3], out: &mut Vec<u8>) {
    if len <= small_max {
        out.push(small | len as u8);
    } else if codes[0] != 0 && len <= 0xff {
        out.extend_from_slice(&[codes[0], len as u8]);
    } else if len <= 0xffff {
        out.push(codes[1]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(codes[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_int(*i, out),
        Value::Number(n) => {
            let n = *n;
            if n.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n)
            {
                pack_int(n as i64, out);
            } else if f64::from(n as f32).to_bits() == n.to_bits() || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            pack_len(b.len(), 0xa0, 31, [0xd9, 0xda, 0xdb], out);
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MAX_MSGPACK_NESTING => {
            let (mut count, mut max, mut array) = (0usize, 0usize, true);
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                count += 1;
                let n = match k {
                    Value::Integer(i) => i as f64,
                    Value::Number(n) => n,
                    _ => {
                        array = false;
                        continue;
                    }
                };
                if n >= 1.0 && n.fract() == 0.0 {
                    max = max.max(n as usize);
                } else {
                    array = false;
                }
            }
            if array && max == count {
                pack_len(count, 0x90, 15, [0, 0xdc, 0xdd], out);
                for i in 1..=count {
                    pack(&t.raw_get::<Value>(i)?, out, depth + 1)?;
                }
            } else {
                pack_len(count, 0x80, 15, [0, 0xde, 0xdf], out);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    pack(&k, out, depth + 1)?;
                    pack(&v, out, depth + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn missing() -> mlua::Error {
    mlua::Error::runtime("Missing bytes in input.")
}

fn take<'a>(s: &'a [u8], at: &mut usize, n: usize) -> mlua::Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= s.len())
        .ok_or_else(missing)?;
    let b = &s[*at..end];
    *at = end;
    Ok(b)
}

fn be(s: &[u8], at: &mut usize, n: usize) -> mlua::Result<u64> {
    Ok(take(s, at, n)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn unpack(lua: &Lua, s: &[u8], at: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_UNPACK_DEPTH {
        return Err(mlua::Error::runtime("Bad data format in input."));
    }
    let c = take(s, at, 1)?[0];
    let num = |n: f64| Ok(Value::Number(n));
    match c {
        0x00..=0x7f => num(f64::from(c)),
        0xe0..=0xff => num(f64::from(c as i8)),
        0x80..=0x8f => unpack_map(lua, s, at, depth, usize::from(c & 0x0f)),
        0x90..=0x9f => unpack_array(lua, s, at, depth, usize::from(c & 0x0f)),
        0xa0..=0xbf => string(lua, s, at, usize::from(c & 0x1f)),
        0xc0 => Ok(Value::Nil),
        0xc2 => Ok(Value::Boolean(false)),
        0xc3 => Ok(Value::Boolean(true)),
        0xc4 | 0xd9 => {
            let n = be(s, at, 1)? as usize;
            string(lua, s, at, n)
        }
        0xc5 | 0xda => {
            let n = be(s, at, 2)? as usize;
            string(lua, s, at, n)
        }
        0xc6 | 0xdb => {
            let n = be(s, at, 4)? as usize;
            string(lua, s, at, n)
        }
        0xca => num(f64::from(f32::from_bits(be(s, at, 4)? as u32))),
        0xcb => num(f64::from_bits(be(s, at, 8)?)),
        0xcc => num(be(s, at, 1)? as f64),
        0xcd => num(be(s, at, 2)? as f64),
        0xce => num(be(s, at, 4)? as f64),
        0xcf => num(be(s, at, 8)? as f64),
        0xd0 => num(f64::from(be(s, at, 1)? as u8 as i8)),
        0xd1 => num(f64::from(be(s, at, 2)? as u16 as i16)),
        0xd2 => num(f64::from(be(s, at, 4)? as u32 as i32)),
        0xd3 => num(be(s, at, 8)? as i64 as f64),
        0xdc => {
            let n = be(s, at, 2)? as usize;
            unpack_array(lua, s, at, depth, n)
        }
        0xdd => {
            let n = be(s, at, 4)? as usize;
            unpack_array(lua, s, at, depth, n)
        }
        0xde => {
            let n = be(s, at, 2)? as usize;
            unpack_map(lua, s, at, depth, n)
        }
        0xdf => {
            let n = be(s, at, 4)? as usize;
            unpack_map(lua, s, at, depth, n)
        }
        _ => Err(mlua::Error::runtime("Bad data format in input.")),
    }
}

fn string(lua: &Lua, s: &[u8], at: &mut usize, n: usize) -> mlua::Result<Value> {
    Ok(Value::String(lua.create_string(take(s, at, n)?)?))
}

fn unpack_array(
    lua: &Lua,
    s: &[u8],
    at: &mut usize,
    depth: usize,
    n: usize,
) -> mlua::Result<Value> {
    // Each element takes a byte at least: a count beyond the input is truncated input.
    if n > s.len() - *at {
        return Err(missing());
    }
    let t = lua.create_table_with_capacity(n, 0)?;
    for i in 1..=n {
        t.raw_set(i, unpack(lua, s, at, depth + 1)?)?;
    }
    Ok(Value::Table(t))
}

#[expect(
    clippy::many_single_char_names,
    reason = "a decoder's cursor, input and count"
)]
fn unpack_map(lua: &Lua, s: &[u8], at: &mut usize, depth: usize, n: usize) -> mlua::Result<Value> {
    if n > s.len() - *at {
        return Err(missing());
    }
    let t = lua.create_table_with_capacity(0, n)?;
    for _ in 0..n {
        let k = unpack(lua, s, at, depth + 1)?;
        let v = unpack(lua, s, at, depth + 1)?;
        if !k.is_nil() {
            t.raw_set(k, v)?;
        }
    }
    Ok(Value::Table(t))
}
