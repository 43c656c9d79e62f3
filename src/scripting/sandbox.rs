//! The Lua state a shard's scripts run in, set up as Redis 7.0 sets up its own.
//!
//! - Libraries: base (without `dofile`, `loadfile`, `print`), `coroutine`, `table`,
//!   `string`, `math`, and Redis's bundled `cjson` (with `cjson.new`), `cmsgpack`, `bit`,
//!   `struct` (written in Rust here). No `os`, `io`, `package`, `debug`.
//! - Globals are read-only: scripts see a proxy (`_G`) whose reads fall through to the real
//!   globals and whose writes fail with "Attempt to modify a readonly table"; reading a
//!   global that does not exist fails with "Script attempted to access nonexistent global
//!   variable". Redis gets this from a patch to its Lua (read-only tables); stock Lua 5.1
//!   gets it from proxies, and `rawset`/`setmetatable` refuse the proxies. The library
//!   tables (`redis`, `string`, `cjson`...) are proxies the same way.
//! - `redis` (and `server`, the same table under Valkey's name): `call`, `pcall`,
//!   `error_reply`, `status_reply`, `sha1hex`, `acl_check_cmd`, `log` and the `LOG_*` levels, `setresp`,
//!   `set_repl`/`replicate_commands`/`breakpoint`/`debug` (no-ops with Redis's return
//!   values), `REPL_*`, `REDIS_VERSION`, `REDIS_VERSION_NUM`. No `register_function`: that
//!   is the library-loading table's (a script calling it gets Lua's "attempt to call field
//!   'register_function' (a nil value)", as Redis 7.0 and Valkey).
//! - `pcall` turns an error table (from `redis.call`) into its message, as Redis 7.0's.

use super::{RunState, call, hook_check};
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use std::rc::Rc;

/// The chunk name of the set-up code: its frames are skipped when an error is located.
const INTERNAL_CHUNK: &str = "=percore";

const BOOTSTRAP: &str = r"
local G, api, load_api, handler, missing, killed = ...
local rawset_, setmetatable_, getmetatable_, type_, error_, xpcall_, pcall_, tostring_ =
  rawset, setmetatable, getmetatable, type, error, xpcall, pcall, tostring
local next_, pairs_, rawget_ = next, pairs, rawget
local readonly = setmetatable_({}, {__mode = 'k'})
-- A proxy's table: `pairs`, `next` and `rawget` see it, as Redis's read-only tables
-- are the tables themselves.
local real = setmetatable_({}, {__mode = 'k'})
local function refuse() error_('Attempt to modify a readonly table', 2) end
local function refuse_raw() error_('Attempt to modify a readonly table', 0) end
local function seal(t, index)
  local shown = {}
  setmetatable_(shown, {__newindex = refuse, __metatable = false})
  readonly[shown] = true
  local mt = {__index = index or t, __newindex = refuse, __metatable = shown}
  local proxy = setmetatable_({}, mt)
  readonly[proxy] = true
  real[proxy] = t
  return proxy, mt
end
next = function(t, k) return next_(real[t] or t, k) end
pairs = function(t)
  local r = real[t]
  if r then return next_, r, nil end
  return pairs_(t)
end
rawget = function(t, k) return rawget_(real[t] or t, k) end
rawset = function(t, k, v)
  if readonly[t] then refuse_raw() end
  return rawset_(t, k, v)
end
setmetatable = function(t, mt)
  if readonly[t] then refuse_raw() end
  return setmetatable_(t, mt)
end
local function unwrap(ok, ...)
  if ok then return ok, ... end
  local e = ...
  -- A killed script cannot catch its end (Redis raises it again on every line).
  if killed() then error_(e, 0) end
  if type_(e) == 'table' then
    local s = e.err
    if type_(s) == 'string' or type_(s) == 'number' then e = s end
  end
  return false, e
end
pcall = function(...) return unwrap(pcall_(...)) end
do
  -- Binary chunks are parsed as text, as Redis's Lua (no bytecode in the sandbox).
  local loadstring, byte = loadstring, string.byte
  G.loadstring = function(s, ...)
    if type_(s) == 'string' and byte(s, 1) == 27 then
      local name = ...
      return loadstring(' ' .. s, name or s)
    end
    return loadstring(s, ...)
  end
end
load_api.log = api.log
setmetatable_(load_api, {__index = missing})
local redis = seal(api)
G.redis = redis
G.server = redis
for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'cjson', 'cmsgpack', 'bit', 'struct'}) do
  G[name] = seal(G[name])
end
setmetatable_(G, {__index = missing})
local P = seal(G)
G._G = P
local load_redis = seal(load_api)
local loadenv = setmetatable_({redis = load_redis, server = load_redis}, {__index = missing})
local function library_env()
  local env, mt = seal({}, loadenv)
  return env, function() mt.__index = P end
end
local function run_load(f)
  return xpcall_(f, handler)
end
return P, library_env, run_load
";

/// A built state: the Lua state, its real globals, and the message handler scripts and
/// functions run with (`Engine::call` calls them with `lua_pcall` and this handler).
pub struct Built {
    pub lua: Lua,
    pub globals: Table,
    pub handler: Function,
}

/// Builds the state.
pub fn build(run: &Rc<RunState>) -> mlua::Result<Built> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    let g = lua.globals();
    for name in ["dofile", "loadfile", "print"] {
        g.raw_set(name, Value::Nil)?;
    }
    for (name, lib) in [
        ("cjson", open_cjson(&lua)?),
        ("cmsgpack", super::lib_cmsgpack::open(&lua)?),
        ("bit", super::lib_bit::open(&lua)?),
        ("struct", super::lib_struct::open(&lua)?),
    ] {
        raise_lua_errors(&lua, &lib)?;
        g.raw_set(name, lib)?;
    }
    let api = redis_api(&lua, run)?;
    let load_api = lua.create_table()?;
    for (k, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        load_api.raw_set(k, v)?;
    }
    load_api.raw_set("REDIS_VERSION", crate::server::REDIS_COMPAT_VERSION)?;
    load_api.raw_set("REDIS_VERSION_NUM", redis_version_num())?;
    let r = Rc::clone(run);
    let register = lua.create_function(move |lua, args: MultiValue| {
        Ok(match super::functions::register(lua, &r, args) {
            Ok(()) => (true, Value::Nil),
            Err(text) => (false, Value::Table(error_table(lua, &text)?)),
        })
    })?;
    load_api.raw_set("register_function", raising(&lua, register)?)?;
    let handler = lua.create_function(|lua, err: Value| error_handler(lua, err))?;
    let missing = lua.create_function(|lua, (_t, k): (Value, Value)| -> mlua::Result<()> {
        let name = lua
            .coerce_string(k.clone())?
            .map_or_else(|| format!("{k:?}"), |s| s.to_string_lossy());
        Err(mlua::Error::runtime(format!(
            "Script attempted to access nonexistent global variable '{name}'"
        )))
    })?;
    let missing = lua_error_raising(&lua, missing)?;
    let (p, library_env, run_load): (Table, Function, Function) =
        lua.load(BOOTSTRAP).set_name(INTERNAL_CHUNK).call((
            g.clone(),
            api,
            load_api,
            handler.clone(),
            missing,
            lua.create_function({
                let r = Rc::clone(run);
                move |_, ()| Ok(r.killed.get())
            })?,
        ))?;
    lua.set_named_registry_value("percore.library_env", library_env)?;
    lua.set_named_registry_value("percore.run_load", run_load)?;
    lua.set_globals(p)?;
    let r = Rc::clone(run);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(super::HOOK_INSTRUCTIONS),
        move |_lua, _debug| {
            // FUNCTION LOAD's time limit (no pcall at load time: the error ends the load).
            let deadline = r.load_deadline_ns.get();
            if deadline != u64::MAX && percore_net::sys::monotonic_ns() >= deadline {
                return Err(mlua::Error::runtime(super::LOAD_TIMEOUT_ERR));
            }
            if hook_check(&r).is_err() {
                return Err(mlua::Error::runtime(super::KILLED_ERR));
            }
            Ok(VmState::Continue)
        },
    )?;
    Ok(Built {
        lua,
        globals: g,
        handler,
    })
}

/// `REDIS_VERSION_NUM`: 0x00MMmmpp of the version percore answers as.
fn redis_version_num() -> i64 {
    let mut n = 0i64;
    for part in crate::server::REDIS_COMPAT_VERSION.split('.') {
        n = (n << 8) | part.parse::<i64>().unwrap_or(0);
    }
    n
}

/// A Lua error table `{err = text}` from an error text, as Redis's `luaPushErrorBuff`:
/// `-CODE msg` keeps its code, anything else gets `ERR `.
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", normalize_error(text))?;
    Ok(t)
}

/// Redis's error text normalization for error tables.
pub fn normalize_error(text: &str) -> String {
    let (code, msg) = match text.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code, msg),
            None => ("ERR", rest),
        },
        None => ("ERR", text),
    };
    format!("{code} {}", msg.trim_matches(|c| c == '\r' || c == '\n'))
}

/// The message handler of every script and function run: turns the error into Redis's
/// error table and records where in the user's code it happened.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let table = match &err {
        Value::Table(t) => t.clone(),
        other => {
            let text = match other {
                Value::Error(e) => lua_error_text(e),
                Value::String(s) => s.to_string_lossy(),
                Value::Number(_) | Value::Integer(_) => lua
                    .coerce_string(other.clone())?
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default(),
                Value::Nil => "nil".into(),
                Value::Boolean(b) => b.to_string(),
                v => format!("{}: {:p}", v.type_name(), v.to_pointer()),
            };
            let t = lua.create_table()?;
            t.raw_set("err", format!("ERR {text}"))?;
            t
        }
    };
    // Level 0 is this handler; the first Lua frame above it that is not percore's own
    // wrapper code is where the user's code failed (Redis looks at levels 2 and 3 of its
    // Lua handler, skipping the C function that raised).
    let mut level = 1;
    while let Some((what, source, line)) = lua.inspect_stack(level, |d| {
        let s = d.source();
        (
            s.what,
            s.source
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            d.current_line(),
        )
    }) {
        if what != "C" && source != INTERNAL_CHUNK {
            table.raw_set("source", source)?;
            if let Some(line) = line {
                table.raw_set("line", line)?;
            }
            break;
        }
        level += 1;
    }
    Ok(table)
}

/// The Lua message of an mlua error (a compile error, or an error raised from Rust).
pub fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message: m, .. }
        | mlua::Error::RuntimeError(m)
        | mlua::Error::MemoryError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// The reply text for a script's error value (the handler's table), as Redis 7.0:
/// `<err> script: <name>, on <source>:<line>.`
pub fn error_reply_text(value: &Value, name: &str) -> String {
    let Value::Table(t) = value else {
        return format!("ERR Error running script {name}, execution failure");
    };
    let msg: String = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        Ok(Value::Integer(i)) => i.to_string(),
        Ok(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let source: Option<String> = t.raw_get("source").ok();
    let line: Option<i64> = t.raw_get("line").ok();
    match (source, line) {
        (Some(source), Some(line)) => format!("{msg} script: {name}, on {source}:{line}."),
        _ => msg,
    }
}

/// The `redis` table's Rust functions (the bootstrap wraps them).
fn redis_api(lua: &Lua, run: &Rc<RunState>) -> mlua::Result<Table> {
    let api = lua.create_table()?;
    // `call` raises its error, `pcall` returns it (C functions, see `call::api_function`).
    for (name, raises) in [("call", true), ("pcall", false)] {
        api.raw_set(name, call::api_function(lua, run, raises)?)?;
    }
    api.raw_set("acl_check_cmd", lua.create_function(call::acl_check_cmd)?)?;
    api.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "wrong number of arguments");
            }
            let s = lua
                .coerce_string(args[0].clone())?
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default();
            let hex = super::sha1_hex(&s);
            Ok((true, Value::String(lua.create_string(hex)?)))
        })?,
    )?;
    for (name, field) in [("error_reply", "err"), ("status_reply", "ok")] {
        api.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let Some(Value::String(s)) = args.front().filter(|_| args.len() == 1) else {
                    return fail(lua, "wrong number or type of arguments");
                };
                let t = lua.create_table()?;
                if field == "err" {
                    let text = s.to_string_lossy();
                    let text = if text.starts_with('-') {
                        text
                    } else {
                        format!("-{text}")
                    };
                    t.raw_set("err", normalize_error(&text))?;
                } else {
                    t.raw_set("ok", s.clone())?;
                }
                Ok((true, Value::Table(t)))
            })?,
        )?;
    }
    let r = Rc::clone(run);
    api.raw_set(
        "log",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() < 2 {
                return fail(lua, "redis.log() requires two arguments or more.");
            }
            let Some(level) = lua.coerce_number(args[0].clone())? else {
                return fail(lua, "First argument must be a number (log level).");
            };
            if !(0.0..=3.0).contains(&level) {
                return fail(lua, "Invalid debug level.");
            }
            let mut text = Vec::new();
            for (i, a) in args.iter().skip(1).enumerate() {
                if let Some(s) = lua.coerce_string(a.clone())? {
                    if i > 0 {
                        text.push(b' ');
                    }
                    text.extend_from_slice(&s.as_bytes());
                }
            }
            let level = match level as i64 {
                0 => crate::server::LogLevel::Debug,
                1 => crate::server::LogLevel::Verbose,
                2 => crate::server::LogLevel::Notice,
                _ => crate::server::LogLevel::Warning,
            };
            if let Some(shared) = r.shared.borrow().as_ref() {
                shared.log.log(level, &String::from_utf8_lossy(&text));
            }
            Ok((true, Value::Nil))
        })?,
    )?;
    let r = Rc::clone(run);
    api.raw_set(
        "setresp",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "redis.setresp() requires one argument.");
            }
            match lua.coerce_number(args[0].clone())? {
                Some(v) if matches!(v.to_bits(), b if b == 2f64.to_bits() || b == 3f64.to_bits()) =>
                {
                    r.resp.set(v as u8);
                    Ok((true, Value::Nil))
                }
                _ => fail(lua, "RESP version must be 2 or 3."),
            }
        })?,
    )?;
    api.raw_set(
        "set_repl",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return fail(lua, "redis.set_repl() requires one argument.");
            }
            match lua.coerce_number(args[0].clone())? {
                Some(v) if (0.0..=3.0).contains(&v) && v.fract() == 0.0 => Ok((true, Value::Nil)),
                _ => fail(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ),
            }
        })?,
    )?;
    api.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    api.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    api.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (k, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        api.raw_set(k, v)?;
    }
    api.raw_set("REDIS_VERSION", crate::server::REDIS_COMPAT_VERSION)?;
    api.raw_set("REDIS_VERSION_NUM", redis_version_num())?;
    // Those that fail raise their error table from a C frame (see `raising`).
    for name in [
        "acl_check_cmd",
        "sha1hex",
        "error_reply",
        "status_reply",
        "log",
        "setresp",
        "set_repl",
    ] {
        let f: Function = api.raw_get(name)?;
        api.raw_set(name, raising(lua, f)?)?;
    }
    Ok(api)
}

/// Calls the function in its upvalue with the arguments; that function answers
/// `(true, results...)` or `(false, error)`, and the error is raised with `lua_error`.
///
/// Why a C function: an error raised by a Rust callback reaches Lua as mlua's userdata,
/// while Redis's scripts see error tables (from `redis.call`) and plain strings (from the
/// libraries); and a Lua wrapper would be a frame of its own, which `return
/// redis.call(...)` turns into a tail call that hides the user's line from the error
/// handler (Redis's `redis.call` is a C function, so Redis's handler sees that line).
#[expect(
    unsafe_code,
    reason = "a C function that raises a Lua value as the error, as Redis's C API functions do"
)]
unsafe extern "C-unwind" fn trampoline(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as a C function with its own stack frame; every call below
    // stays within the stack Lua guarantees a C function (LUA_MINSTACK slots, and the
    // arguments already there). This frame owns nothing that needs dropping, so the long
    // jump of `lua_error` (or of an error from `lua_call`) leaves nothing behind.
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, ffi::LUA_MULTRET);
        if ffi::lua_toboolean(l, 1) == 0 {
            ffi::lua_settop(l, 2);
            ffi::lua_error(l);
        }
        ffi::lua_gettop(l) - 1
    }
}

/// `f` (answering `(ok, ...)`) behind a C function that raises its error.
fn raising(lua: &Lua, f: Function) -> mlua::Result<Function> {
    let upvalues = MultiValue::from_vec(vec![Value::Function(f)]);
    let n = upvalues.len() as std::ffi::c_int;
    #[expect(unsafe_code, reason = "making a C closure of the trampoline over `f`")]
    // SAFETY: `exec_raw` pushes the `n` upvalues and runs the closure in protected mode;
    // pushing a C closure over the `n` values on top leaves exactly the closure, which it
    // returns. `trampoline` follows the Lua C API contract (see its comment).
    unsafe {
        lua.exec_raw::<Function>(upvalues, |state| {
            mlua::ffi::lua_pushcclosure(state, trampoline, n);
        })
    }
}

/// A library function (which fails with an mlua error) behind a C function that raises
/// the error as a Lua string, located at the calling Lua line as `luaL_error` does.
/// Makes every function of library table `lib` raise its errors as Lua strings.
fn raise_lua_errors(lua: &Lua, lib: &Table) -> mlua::Result<()> {
    let funcs: Vec<(Value, Function)> = lib
        .pairs::<Value, Value>()
        .filter_map(Result::ok)
        .filter_map(|(k, v)| match v {
            Value::Function(f) => Some((k, f)),
            _ => None,
        })
        .collect();
    for (k, f) in funcs {
        lib.raw_set(k, lua_error_raising(lua, f)?)?;
    }
    Ok(())
}

/// The `cjson` library with lua-cjson's `new`: a fresh instance with its own settings
/// (not read-only, as the table Redis's `cjson.new()` gives).
fn open_cjson(lua: &Lua) -> mlua::Result<Table> {
    let lib = super::lib_cjson::open(lua)?;
    lib.raw_set(
        "new",
        lua.create_function(|lua, _: MultiValue| {
            let fresh = open_cjson(lua)?;
            raise_lua_errors(lua, &fresh)?;
            Ok(fresh)
        })?,
    )?;
    Ok(lib)
}

fn lua_error_raising(lua: &Lua, f: Function) -> mlua::Result<Function> {
    let inner =
        lua.create_function(
            move |lua, args: MultiValue| match f.call::<MultiValue>(args) {
                Ok(values) => {
                    let mut out = Vec::with_capacity(values.len() + 1);
                    out.push(Value::Boolean(true));
                    out.extend(values);
                    Ok(MultiValue::from_vec(out))
                }
                Err(e) => {
                    let msg = located(lua, &lua_error_text(&e));
                    Ok(MultiValue::from_vec(vec![
                        Value::Boolean(false),
                        Value::String(lua.create_string(msg)?),
                    ]))
                }
            },
        )?;
    raising(lua, inner)
}

/// `msg` prefixed with the caller's `source:line: ` when a Lua function called the
/// library function (level 2: above this callback and the trampoline), as `luaL_where(L,
/// 1)`; and, as `luaL_argerror`, a function called from C (pcall) is named `?`.
fn located(lua: &Lua, msg: &str) -> String {
    let caller = lua.inspect_stack(2, |d| {
        let s = d.source();
        (
            s.what,
            s.short_src
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            d.current_line(),
        )
    });
    match caller {
        Some((what, src, Some(line))) if what != "C" => format!("{src}:{line}: {msg}"),
        _ => match (msg.find(" to '"), msg.starts_with("bad argument #")) {
            (Some(at), true) => {
                let rest = &msg[at + 5..];
                match rest.find('\'') {
                    Some(end) => format!("{} to '?'{}", &msg[..at], &rest[end + 1..]),
                    None => msg.to_string(),
                }
            }
            _ => msg.to_string(),
        },
    }
}

/// `(false, {err = "ERR <text>"})`: an API function's failure, raised by its wrapper.
pub fn fail(lua: &Lua, text: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::Table(error_table(lua, text)?)))
}
