//! Redis's conversions between replies and Lua values, both ways (`script_lua.c`).
//!
//! Reply → Lua (what `redis.call` returns, pushed by `call::push_resp`), in the script's RESP version: integer →
//! number, bulk → string, null bulk / null array → `false` (RESP2) or `nil` (RESP3 null),
//! array → table, status → `{ok=...}`, error → `{err=...}`; RESP3 only: map →
//! `{map={...}}`, set → `{set={member=true}}`, double → `{double=n}`, boolean → boolean,
//! big number → `{big_number=s}`, verbatim → `{verbatim_string={format=, string=}}`.
//!
//! Lua → reply (what a script returns): string → bulk, number → integer (truncated),
//! boolean → `:1`/null in RESP2 scripts, `#t`/`#f` after `setresp(3)`, table with `err` →
//! error, `ok` → status, `double` → double, `big_number`, `map`, `set`,
//! `verbatim_string`, otherwise an array of the elements 1, 2, ... up to the first nil;
//! nil → null.

use mlua::{Table, Value};
use percore_net::resp::{Protocol, ReplyWriter};

/// Writes a script's return value as a reply. `resp` is the script's RESP version
/// (`redis.setresp`), which decides how booleans are sent; `proto` the caller's.
pub fn lua_to_reply(
    v: &Value,
    w: &mut ReplyWriter,
    resp: u8,
    proto: Protocol,
    depth: usize,
) -> Result<(), String> {
    if depth > super::MAX_REPLY_DEPTH {
        return Err("ERR reached lua stack limit".into());
    }
    match v {
        Value::String(s) => w.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp == 2 {
                if *b {
                    w.int(1);
                } else {
                    w.null();
                }
            } else {
                w.bool(*b);
            }
        }
        Value::Integer(i) => w.int(*i),
        Value::Number(n) => w.int(truncate(*n)),
        Value::Table(t) => table_to_reply(t, w, resp, proto, depth)?,
        _ => w.null(),
    }
    Ok(())
}

/// Lua number → integer reply, as C's `(long long)` cast on x86-64: out of range and NaN
/// give the "integer indefinite" value, `i64::MIN`, as redis-server does there.
fn truncate(n: f64) -> i64 {
    if n.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get::<Value>(name).unwrap_or(Value::Nil)
}

fn table_to_reply(
    t: &Table,
    w: &mut ReplyWriter,
    resp: u8,
    proto: Protocol,
    depth: usize,
) -> Result<(), String> {
    if let Value::String(s) = field(t, "err") {
        // `{err=...}` as the script's reply: sent as it is (Redis adds no `ERR`).
        let text = s.to_string_lossy();
        w.error(text.strip_prefix('-').unwrap_or(&text));
        return Ok(());
    }
    if let Value::String(s) = field(t, "ok") {
        w.simple(&s.to_string_lossy());
        return Ok(());
    }
    match field(t, "double") {
        Value::Number(d) => {
            w.double(d);
            return Ok(());
        }
        Value::Integer(i) => {
            w.double(i as f64);
            return Ok(());
        }
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        w.big_number(&s.to_string_lossy());
        return Ok(());
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        w.map(pairs.len());
        for (k, v) in &pairs {
            lua_to_reply(k, w, resp, proto, depth + 1)?;
            lua_to_reply(v, w, resp, proto, depth + 1)?;
        }
        return Ok(());
    }
    if let Value::Table(s) = field(t, "set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        w.set(keys.len());
        for k in &keys {
            lua_to_reply(k, w, resp, proto, depth + 1)?;
        }
        return Ok(());
    }
    if let Value::Table(v) = field(t, "verbatim_string")
        && let (Value::String(format), Value::String(text)) =
            (field(&v, "format"), field(&v, "string"))
    {
        let format = format.as_bytes();
        if format.len() == 3 {
            w.verbatim(&String::from_utf8_lossy(&format), &text.as_bytes());
        } else {
            w.bulk(&text.as_bytes());
        }
        return Ok(());
    }
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        items.push(v);
        i += 1;
    }
    w.array(items.len());
    for v in &items {
        lua_to_reply(v, w, resp, proto, depth + 1)?;
    }
    Ok(())
}
