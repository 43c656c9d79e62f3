//! The `struct` library (Roberto Ierusalimschy's struct 0.2 as Redis bundles it):
//! `pack(fmt, ...)`, `unpack(fmt, s [, pos])`, `size(fmt)`. Formats: `<` `>` `=`
//! endianness, `!n` alignment, `x` padding, `b/B h/H l/L T i/I[n]` integers, `f` `d`
//! floats, `c[n]` fixed strings, `s` zero-terminated strings.

use mlua::{Lua, MultiValue, Table, Value};

thread_local! {
    /// The struct function running, for `luaL_argerror`-style messages.
    static FNAME: std::cell::Cell<&'static str> = const { std::cell::Cell::new("?") };
}

/// The widest integer `i[n]`/`I[n]` accepts (struct's `MAXINTSIZE`).
const MAX_INT_SIZE: usize = 32;

#[derive(Clone, Copy)]
struct State {
    little: bool,
    align: usize,
}

enum Item {
    Int { size: usize, signed: bool },
    Float,
    Double,
    Chars(usize),
    Zstr,
    Pad,
}

fn err(text: &str) -> mlua::Error {
    mlua::Error::runtime(text.to_string())
}

fn number_after(f: &[u8], i: &mut usize) -> Option<usize> {
    let start = *i;
    while *i < f.len() && f[*i].is_ascii_digit() {
        *i += 1;
    }
    if *i == start {
        return None;
    }
    std::str::from_utf8(&f[start..*i]).ok()?.parse().ok()
}

/// Parses the next option; `None` at the end.
fn next(f: &[u8], i: &mut usize, st: &mut State) -> mlua::Result<Option<(Item, usize)>> {
    while *i < f.len() {
        let c = f[*i];
        *i += 1;
        let item = match c {
            b' ' => continue,
            b'<' => {
                st.little = true;
                continue;
            }
            b'>' => {
                st.little = false;
                continue;
            }
            b'=' => {
                st.little = cfg!(target_endian = "little");
                continue;
            }
            b'!' => {
                let a = number_after(f, i).unwrap_or(8);
                if !a.is_power_of_two() {
                    return Err(err("alignment must be power of 2"));
                }
                st.align = a;
                continue;
            }
            b'x' => (Item::Pad, 1),
            b'b' => (
                Item::Int {
                    size: 1,
                    signed: true,
                },
                1,
            ),
            b'B' => (
                Item::Int {
                    size: 1,
                    signed: false,
                },
                1,
            ),
            b'h' => (
                Item::Int {
                    size: 2,
                    signed: true,
                },
                2,
            ),
            b'H' => (
                Item::Int {
                    size: 2,
                    signed: false,
                },
                2,
            ),
            b'l' => (
                Item::Int {
                    size: 8,
                    signed: true,
                },
                8,
            ),
            b'L' | b'T' => (
                Item::Int {
                    size: 8,
                    signed: false,
                },
                8,
            ),
            b'i' | b'I' => {
                let size = number_after(f, i).unwrap_or(4);
                if size == 0 || size > MAX_INT_SIZE {
                    return Err(err(&format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                (
                    Item::Int {
                        size,
                        signed: c == b'i',
                    },
                    size,
                )
            }
            b'f' => (Item::Float, 4),
            b'd' => (Item::Double, 8),
            b'c' => {
                let n = number_after(f, i).unwrap_or(1);
                (Item::Chars(n), n)
            }
            b's' => (Item::Zstr, 0),
            other => {
                return Err(err(&format!(
                    "bad argument #1 to '{}' (invalid format option '{}')",
                    FNAME.with(std::cell::Cell::get),
                    other as char
                )));
            }
        };
        return Ok(Some(item));
    }
    Ok(None)
}

fn gap(total: usize, size: usize, st: &State) -> usize {
    let align = size.min(st.align);
    if align <= 1 || !align.is_power_of_two() {
        return 0;
    }
    (align - (total & (align - 1))) & (align - 1)
}

fn initial() -> State {
    State {
        little: cfg!(target_endian = "little"),
        align: 1,
    }
}

fn to_f64(lua: &Lua, v: Option<&Value>, pos: usize) -> mlua::Result<f64> {
    match v.cloned().map(|v| lua.coerce_number(v)) {
        Some(Ok(Some(n))) => Ok(n),
        _ => Err(err(&format!(
            "bad argument #{pos} to 'pack' (number expected)"
        ))),
    }
}

#[expect(
    clippy::many_single_char_names,
    reason = "format cursor, data and value names of the struct library"
)]
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, a: MultiValue| {
            FNAME.with(|f| f.set("pack"));
            let Some(Value::String(fmt)) = a.front() else {
                return Err(err("bad argument #1 to 'pack' (string expected)"));
            };
            let f = fmt.as_bytes().to_vec();
            let (mut st, mut i, mut arg, mut out) = (initial(), 0, 1, Vec::new());
            while let Some((item, size)) = next(&f, &mut i, &mut st)? {
                out.resize(out.len() + gap(out.len(), size, &st), 0);
                match item {
                    Item::Pad => out.push(0),
                    Item::Int { size, .. } => {
                        let n = to_f64(lua, a.get(arg), arg + 1)?;
                        arg += 1;
                        let v = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                        let mut bytes = vec![if n < 0.0 { 0xffu8 } else { 0 }; size];
                        for (k, b) in bytes.iter_mut().enumerate().take(8) {
                            *b = (v >> (8 * k)) as u8;
                        }
                        if !st.little {
                            bytes.reverse();
                        }
                        out.extend_from_slice(&bytes);
                    }
                    Item::Float => {
                        let n = to_f64(lua, a.get(arg), arg + 1)? as f32;
                        arg += 1;
                        out.extend_from_slice(&if st.little {
                            n.to_le_bytes()
                        } else {
                            n.to_be_bytes()
                        });
                    }
                    Item::Double => {
                        let n = to_f64(lua, a.get(arg), arg + 1)?;
                        arg += 1;
                        out.extend_from_slice(&if st.little {
                            n.to_le_bytes()
                        } else {
                            n.to_be_bytes()
                        });
                    }
                    Item::Chars(n) => {
                        let s = lua
                            .coerce_string(a.get(arg).cloned().unwrap_or(Value::Nil))?
                            .ok_or_else(|| err("bad argument to 'pack' (string expected)"))?;
                        arg += 1;
                        let b = s.as_bytes();
                        let n = if n == 0 { b.len() } else { n };
                        if b.len() < n {
                            return Err(err("bad argument to 'pack' (string too short)"));
                        }
                        out.extend_from_slice(&b[..n]);
                    }
                    Item::Zstr => {
                        let s = lua
                            .coerce_string(a.get(arg).cloned().unwrap_or(Value::Nil))?
                            .ok_or_else(|| err("bad argument to 'pack' (string expected)"))?;
                        arg += 1;
                        let b = s.as_bytes();
                        if b.contains(&0) {
                            return Err(err("bad argument to 'pack' (string contains zeros)"));
                        }
                        out.extend_from_slice(&b);
                        out.push(0);
                    }
                }
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, a: MultiValue| {
            FNAME.with(|f| f.set("unpack"));
            let (Some(Value::String(fmt)), Some(Value::String(data))) = (a.front(), a.get(1))
            else {
                return Err(err("bad argument to 'unpack' (string expected)"));
            };
            let f = fmt.as_bytes().to_vec();
            let d = data.as_bytes().to_vec();
            let mut pos = match a.get(2) {
                Some(v) => lua.coerce_number(v.clone())?.unwrap_or(1.0) as usize,
                None => 1,
            }
            .saturating_sub(1);
            let (mut st, mut i, mut values) = (initial(), 0, Vec::new());
            let short = || err("bad argument #2 to 'unpack' (data string too short)");
            while let Some((item, size)) = next(&f, &mut i, &mut st)? {
                pos += gap(pos, size, &st);
                if pos + size > d.len() {
                    return Err(short());
                }
                match item {
                    Item::Pad => pos += 1,
                    Item::Int { size, signed } => {
                        let mut bytes = d[pos..pos + size].to_vec();
                        pos += size;
                        if !st.little {
                            bytes.reverse();
                        }
                        let mut v = 0u64;
                        for (k, b) in bytes.iter().enumerate().take(8) {
                            v |= u64::from(*b) << (8 * k);
                        }
                        let n = if signed && size < 8 {
                            let shift = 64 - 8 * size;
                            (((v << shift) as i64) >> shift) as f64
                        } else if signed {
                            v as i64 as f64
                        } else {
                            v as f64
                        };
                        values.push(Value::Number(n));
                    }
                    Item::Float => {
                        let b: [u8; 4] = d[pos..pos + 4].try_into().expect("4 bytes");
                        pos += 4;
                        let n = if st.little {
                            f32::from_le_bytes(b)
                        } else {
                            f32::from_be_bytes(b)
                        };
                        values.push(Value::Number(f64::from(n)));
                    }
                    Item::Double => {
                        let b: [u8; 8] = d[pos..pos + 8].try_into().expect("8 bytes");
                        pos += 8;
                        let n = if st.little {
                            f64::from_le_bytes(b)
                        } else {
                            f64::from_be_bytes(b)
                        };
                        values.push(Value::Number(n));
                    }
                    Item::Chars(mut n) => {
                        if n == 0 {
                            // `c0`: the length is the previous value.
                            n = match values.pop() {
                                Some(Value::Number(x)) => x as usize,
                                _ => return Err(err("format 'c0' needs a previous size")),
                            };
                            if pos + n > d.len() {
                                return Err(short());
                            }
                        }
                        values.push(Value::String(lua.create_string(&d[pos..pos + n])?));
                        pos += n;
                    }
                    Item::Zstr => {
                        let end = d[pos..]
                            .iter()
                            .position(|&b| b == 0)
                            .ok_or_else(|| err("unfinished string in data"))?;
                        values.push(Value::String(lua.create_string(&d[pos..pos + end])?));
                        pos += end + 1;
                    }
                }
            }
            values.push(Value::Number((pos + 1) as f64));
            Ok(MultiValue::from_vec(values))
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|_, fmt: mlua::LuaString| {
            FNAME.with(|f| f.set("size"));
            let f = fmt.as_bytes().to_vec();
            let (mut st, mut i, mut total) = (initial(), 0, 0usize);
            while let Some((item, size)) = next(&f, &mut i, &mut st)? {
                if matches!(item, Item::Zstr) {
                    return Err(err("options 's' has no fixed size"));
                }
                if let Item::Chars(0) = item {
                    return Err(err("options 'c0' has no fixed size"));
                }
                total += gap(total, size, &st) + size;
            }
            Ok(total as f64)
        })?,
    )?;
    Ok(t)
}
