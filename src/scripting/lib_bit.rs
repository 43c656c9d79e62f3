//! The `bit` library (LuaBitOp 1.0.2, which Redis bundles): 32-bit operations on Lua
//! numbers. Arguments are normalized as LuaBitOp's `barg` does (the number plus 2^52 +
//! 2^51, low 32 bits: rounding to nearest and wrapping modulo 2^32); results are signed
//! 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

fn barg(lua: &Lua, v: &Value, pos: usize, fname: &str) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        other => match lua.coerce_number(other.clone())? {
            Some(n) => n,
            None => {
                return Err(mlua::Error::runtime(format!(
                    "bad argument #{pos} to '{fname}' (number expected, got {})",
                    if other.is_nil() {
                        "no value"
                    } else {
                        other.type_name()
                    }
                )));
            }
        },
    };
    Ok((n + 6_755_399_441_055_744.0).to_bits() as u32 as i32)
}

fn arg(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<i32> {
    barg(lua, args.get(i).unwrap_or(&Value::Nil), i + 1, fname)
}

type Binary = fn(i32, i32) -> i32;

pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|lua, a: MultiValue| Ok(f64::from(arg(lua, &a, 0, "tobit")?)))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|lua, a: MultiValue| Ok(f64::from(!arg(lua, &a, 0, "bnot")?)))?,
    )?;
    t.raw_set(
        "bswap",
        lua.create_function(|lua, a: MultiValue| {
            Ok(f64::from(arg(lua, &a, 0, "bswap")?.swap_bytes()))
        })?,
    )?;
    let folds: [(&str, Binary); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let mut acc = arg(lua, &a, 0, name)?;
                for i in 1..a.len() {
                    acc = op(acc, arg(lua, &a, i, name)?);
                }
                Ok(f64::from(acc))
            })?,
        )?;
    }
    let shifts: [(&str, Binary); 5] = [
        ("lshift", |a, n| ((a as u32) << (n & 31)) as i32),
        ("rshift", |a, n| ((a as u32) >> (n & 31)) as i32),
        ("arshift", |a, n| a >> (n & 31)),
        ("rol", |a, n| (a as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |a, n| {
            (a as u32).rotate_right((n & 31) as u32) as i32
        }),
    ];
    for (name, op) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let x = arg(lua, &a, 0, name)?;
                let n = arg(lua, &a, 1, name)?;
                Ok(f64::from(op(x, n)))
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|lua, a: MultiValue| {
            let x = arg(lua, &a, 0, "tohex")? as u32;
            let mut n = match a.get(1) {
                None | Some(Value::Nil) => 8,
                Some(_) => arg(lua, &a, 1, "tohex")?,
            };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.clamp(0, 8) as usize;
            let digits = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(digits[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}
