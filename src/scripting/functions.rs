//! Shebangs and function libraries: `#!lua flags=...` on EVAL scripts, `#!lua name=...`
//! libraries of FUNCTION LOAD with `redis.register_function`, and the FUNCTION DUMP
//! payload.

use super::{Engine, RunState, flags};
use mlua::{Function, Lua, MultiValue, Table, Value};

/// A library as every shard shares it: its code and what FUNCTION LIST shows.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    pub code: Vec<u8>,
    pub functions: Vec<FunctionInfo>,
}

#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<Vec<u8>>,
    pub flags: u32,
}

/// A function `redis.register_function` registered while a library loaded.
pub struct Registered {
    pub name: String,
    pub callback: Function,
    pub flags: u32,
    pub description: Option<Vec<u8>>,
}

/// Flags of an EVAL script and where its code starts (after the shebang line), as
/// Redis 7.0's `evalExtractShebangFlags`. A script without a shebang runs in
/// compatibility mode.
pub fn eval_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut f = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for name in list.split(',').filter(|n| !n.is_empty()) {
            match flags::parse(name) {
                Some(bit) => f |= bit,
                None => return Err(format!("ERR Unexpected flag in script shebang: {name}")),
            }
        }
    }
    Ok((f, end))
}

/// The library name of a FUNCTION LOAD payload's shebang (`#!lua name=<name>`).
pub fn library_name(code: &[u8]) -> Result<String, String> {
    // Redis 7.0's functionExtractLibMetaData, then the name and engine checks in
    // functionsCreateWithLibraryCtx's order.
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let invalid = || "ERR Invalid library metadata".to_string();
    let end = code.iter().position(|&b| b == b'\n').ok_or_else(invalid)?;
    let parts = crate::config::split_args_public(&code[..end])
        .filter(|p| !p.is_empty())
        .ok_or_else(invalid)?;
    let engine = String::from_utf8_lossy(parts[0].get(2..).unwrap_or_default()).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(format!(
            "ERR Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_string())?;
    if !valid_name(&name) {
        return Err(NAME_ERR.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    Ok(name)
}

const NAME_ERR: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Runs a library's code in `engine`'s state and collects the functions it registers.
/// `timeout_ms`: how long the code may run (FUNCTION LOAD from a client); `None`: no limit.
pub fn load_library(
    engine: &Engine,
    code: &[u8],
    timeout_ms: Option<u64>,
) -> Result<(String, Vec<Registered>), String> {
    let name = library_name(code)?;
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let mut body = Vec::with_capacity(code.len());
    body.push(b'\n');
    body.extend_from_slice(code.get(end + 1..).unwrap_or_default());
    let lua = &engine.lua;
    let chunk = lua
        .load(body)
        .set_name("@user_function")
        .into_function()
        .map_err(|e| {
            format!(
                "ERR Error compiling function: {}",
                super::sandbox::lua_error_text(&e)
            )
        })?;
    let library_env: Function = lua
        .named_registry_value("percore.library_env")
        .map_err(|e| e.to_string())?;
    let run_load: Function = lua
        .named_registry_value("percore.run_load")
        .map_err(|e| e.to_string())?;
    let (env, to_runtime): (Table, Function) = library_env.call(()).map_err(|e| e.to_string())?;
    chunk.set_environment(env).map_err(|e| e.to_string())?;
    engine.run.loading.replace(Some(Vec::new()));
    if let Some(ms) = timeout_ms {
        let now = percore_net::sys::monotonic_ns();
        engine
            .run
            .load_deadline_ns
            .set(now.saturating_add(ms.saturating_mul(1_000_000)));
    }
    let result: mlua::Result<MultiValue> = run_load.call(chunk);
    engine.run.load_deadline_ns.set(u64::MAX);
    let registered = engine.run.loading.replace(None).unwrap_or_default();
    let mut values = result.map_err(|e| e.to_string())?.into_iter();
    if !matches!(values.next(), Some(Value::Boolean(true))) {
        let err = values.next().unwrap_or(Value::Nil);
        let msg = match &err {
            Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
            other => format!("{other:?}"),
        };
        return Err(format!("ERR Error registering functions: {msg}"));
    }
    to_runtime.call::<()>(()).map_err(|e| e.to_string())?;
    if registered.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok((name, registered))
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=,
/// callback=, flags=, description=}` while a library loads.
pub fn register(lua: &Lua, run: &RunState, args: MultiValue) -> Result<(), String> {
    if run.loading.borrow().is_none() {
        return Err("redis.register_function can only be called on FUNCTION LOAD command".into());
    }
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            };
            let (mut name, mut callback, mut fl, mut desc) = (None, None, 0, None);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let Value::String(k) = k else {
                    return Err(
                        "named argument key given to redis.register_function is not a string"
                            .into(),
                    );
                };
                match &*k.to_string_lossy() {
                    "function_name" => match v {
                        Value::String(s) => name = Some(s.to_string_lossy()),
                        _ => return Err("function_name argument given to redis.register_function must be a string".into()),
                    },
                    "description" => match v {
                        Value::String(s) => desc = Some(s.as_bytes().to_vec()),
                        _ => return Err("description argument given to redis.register_function must be a string".into()),
                    },
                    "callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => return Err("callback argument given to redis.register_function must be a function".into()),
                    },
                    "flags" => match v {
                        Value::Table(ft) => {
                            for f in ft.sequence_values::<Value>() {
                                let Ok(Value::String(s)) = f else {
                                    return Err("unknown flag given".into());
                                };
                                match flags::parse(&s.to_string_lossy()) {
                                    Some(bit) => fl |= bit,
                                    None => return Err("unknown flag given".into()),
                                }
                            }
                        }
                        _ => return Err("flags argument to redis.register_function must be a table representing function flags".into()),
                    },
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
            }
            let Some(name) = name else {
                return Err("redis.register_function must get a function name argument".into());
            };
            let Some(callback) = callback else {
                return Err("redis.register_function must get a callback argument".into());
            };
            (name, callback, fl, desc)
        }
        2 => {
            let Value::String(name) = &args[0] else {
                return Err("first argument to redis.register_function must be a string".into());
            };
            let Value::Function(callback) = &args[1] else {
                return Err("second argument to redis.register_function must be a function".into());
            };
            (name.to_string_lossy(), callback.clone(), 0, None)
        }
        _ => return Err("wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err(NAME_ERR.trim_start_matches("ERR ").into());
    }
    let _ = lua;
    let mut loading = run.loading.borrow_mut();
    let list = loading.as_mut().expect("checked above");
    if list.iter().any(|r| r.name == name) {
        return Err("Function already exists in the library".into());
    }
    list.push(Registered {
        name,
        callback,
        flags,
        description,
    });
    Ok(())
}

/// The FUNCTION DUMP payload: each library as RDB's function record (opcode 0xF5 and the
/// code as an RDB string), then the RDB version (2 bytes, little endian) and the CRC64 of
/// everything before it, as redis-server 7.0's `DUMP` format.
pub fn dump(libs: &[&Library]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = percore_persist::rdb::Encoder::new(true);
    for lib in libs {
        out.push(percore_persist::rdb::opcode::FUNCTION2);
        enc.write_string(&mut out, &lib.code);
    }
    out.extend_from_slice(&DUMP_RDB_VERSION.to_le_bytes());
    let crc = percore_persist::crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The RDB version written in a FUNCTION DUMP payload (redis-server 7.0 writes 10).
pub const DUMP_RDB_VERSION: u16 = 10;

/// The library codes in a FUNCTION DUMP payload, or Redis's error text.
pub fn undump(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const BAD: &str = "ERR DUMP payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD.into());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if u32::from(version) > percore_persist::rdb::RDB_VERSION + 1 {
        return Err(BAD.into());
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    if crc != 0 && crc != percore_persist::crc64::crc64(&payload[..payload.len() - 8]) {
        return Err(BAD.into());
    }
    let mut codes = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if body[at] != percore_persist::rdb::opcode::FUNCTION2 {
            return Err("ERR given type is not a function".into());
        }
        at += 1;
        let (code, used) =
            percore_persist::rdb::decode::read_string(&body[at..]).map_err(|_| BAD.to_string())?;
        codes.push(code);
        at += used;
    }
    Ok(codes)
}
