//! `redis.call` / `redis.pcall`: a command run from a script, on the script's shard.
//!
//! The checks and their texts are Redis 7.0's (`scriptCall`): unknown command, arity,
//! commands refused in scripts (`noscript`), writes from read-only scripts. A command
//! whose keys live on this shard runs through the command table as on a connection; one
//! that needs another shard runs there by a synchronous call, the script holding every
//! shard (`run_spread`, `atomic::remote`; when it cannot, Redis Cluster's "Script
//! attempted to access a non local key in a cluster node"). The reply is written in the
//! script's RESP version and converted to Lua.

use super::RunState;
use super::sandbox::{error_table, normalize_error};
use crate::commands::{self, Ctx, Exec, Gather, flags};
use crate::shard::ShardData;
use mlua::{Function, Lua, MultiValue, Value, ffi};
use percore_net::resp::{Protocol, ReplyWriter};
use std::ffi::{c_int, c_void};
use std::rc::Rc;

/// The arguments of one command called from a script, at most (Redis's multibulk limit
/// for a client is far larger; a script building more is refused before it runs).
pub const MAX_SCRIPT_CALL_ARGS: usize = 1024 * 1024;

pub const NON_LOCAL_KEY: &str = "Script attempted to access a non local key in a cluster node";

/// `redis.call` (`raises`: its error is raised) or `redis.pcall` (its error is returned),
/// as a Lua C closure, as Redis's: the arguments are read in place from the Lua stack, the
/// command runs through the command table, and its reply is pushed straight from its RESP
/// bytes. Upvalues: the script's [`RunState`] (light userdata), `raises`, and the pusher
/// (a C function run in protected mode).
pub fn api_function(lua: &Lua, run: &Rc<RunState>, raises: bool) -> mlua::Result<Function> {
    // The state keeps the run state alive as long as the closure can be called.
    lua.set_app_data(Rc::clone(run));
    let ptr = Rc::as_ptr(run).cast_mut().cast::<c_void>();
    #[expect(
        unsafe_code,
        reason = "making the C closure of redis.call / redis.pcall"
    )]
    // SAFETY: `exec_raw` runs the closure in protected mode on a frame with no arguments
    // and LUA_MINSTACK free slots; it pushes three upvalues and replaces them with the
    // closure, the one value it returns. `ptr` stays valid while the state lives (app
    // data above).
    unsafe {
        lua.exec_raw::<Function>((), |l| {
            ffi::lua_pushlightuserdata(l, ptr);
            ffi::lua_pushboolean(l, c_int::from(raises));
            ffi::lua_pushcclosure(l, push_protected, 0);
            ffi::lua_pushcclosure(l, redis_call, 3);
        })
    }
}

/// What [`call_and_push`] left on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pushed {
    /// The command's reply.
    Value,
    /// An error table: the call failed (raised by `redis.call`).
    Failure,
    /// A Lua error (out of memory) to raise again.
    Raised,
}

/// The body of `redis.call` / `redis.pcall` (see [`api_function`]).
#[expect(unsafe_code, reason = "a Lua C function")]
unsafe extern "C-unwind" fn redis_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as the C closure `api_function` made, so upvalue 1 is the
    // `RunState` the state keeps alive. This frame owns nothing that needs dropping when
    // `lua_error` long-jumps: `call_and_push` has returned (dropping what it owned) and
    // left exactly the value or error table on the stack.
    unsafe {
        let run = &*ffi::lua_touserdata(l, ffi::lua_upvalueindex(1))
            .cast::<RunState>()
            .cast_const();
        let raises = ffi::lua_toboolean(l, ffi::lua_upvalueindex(2)) != 0;
        match call_and_push(l, run) {
            Pushed::Value => 1,
            Pushed::Failure if !raises => 1,
            Pushed::Failure | Pushed::Raised => ffi::lua_error(l),
        }
    }
}

/// Runs the command the arguments on the stack name, clears the stack and pushes its
/// reply (or the failure's error table) through the protected pusher, so that a Lua error
/// there returns here (where the reply's bytes are owned) instead of jumping over this
/// frame.
#[expect(unsafe_code, reason = "reads the arguments from the Lua stack")]
unsafe fn call_and_push(l: *mut ffi::lua_State, run: &RunState) -> Pushed {
    // SAFETY: slots 1..=top are the call's arguments; every slice taken of them is used
    // before `lua_settop` drops them. The pushes happen in `push_protected` under
    // `lua_pcall`, with `params` alive on this frame until it returns.
    unsafe {
        let n = ffi::lua_gettop(l);
        let result = run_from_stack(l, n, run);
        ffi::lua_settop(l, 0);
        let text;
        let mut params = match &result {
            Ok(reply) => PushParams {
                bytes: reply.as_ptr(),
                len: reply.len(),
                error_text: false,
                resp: run.resp.get(),
                failed: false,
            },
            Err(e) => {
                text = normalize_error(e);
                PushParams {
                    bytes: text.as_ptr(),
                    len: text.len(),
                    error_text: true,
                    resp: run.resp.get(),
                    failed: true,
                }
            }
        };
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
        ffi::lua_pushlightuserdata(l, (&raw mut params).cast::<c_void>());
        if ffi::lua_pcall(l, 1, 1, 0) != 0 {
            return Pushed::Raised;
        }
        if params.failed {
            Pushed::Failure
        } else {
            Pushed::Value
        }
    }
}

/// The arguments of the call (stack slots `1..=n`) as a command's argv (Redis's
/// `luaArgsToRedisArgv`: strings as they are, numbers as `%.17g`), run; its reply bytes,
/// or the text of a failure before it ran.
#[expect(unsafe_code, reason = "reads the arguments from the Lua stack")]
unsafe fn run_from_stack(
    l: *mut ffi::lua_State,
    n: c_int,
    run: &RunState,
) -> Result<Vec<u8>, String> {
    if n <= 0 {
        return Err("Please specify at least one argument for this redis lib call".into());
    }
    let n = n as usize;
    if n > MAX_SCRIPT_CALL_ARGS {
        return Err("Too many arguments in a redis lib call".into());
    }
    // SAFETY: `lua_type`, `lua_tonumber` and `lua_tolstring` of a string raise no error
    // and push nothing; a string's bytes stay where they are while it is on the stack,
    // which it is until the caller clears it after this returns.
    unsafe {
        let mut numbers: Vec<String> = Vec::new();
        for i in 1..=n as c_int {
            match ffi::lua_type(l, i) {
                ffi::LUA_TSTRING => {}
                // Redis formats numbers with "%.17g" (Lua's own "%.14g" loses precision).
                ffi::LUA_TNUMBER => numbers.push(percore_engine::number::format_g(
                    ffi::lua_tonumber(l, i),
                    17,
                )),
                _ => {
                    return Err(
                        "Lua redis lib command arguments must be strings or integers".into(),
                    );
                }
            }
        }
        let mut formatted = numbers.iter();
        let mut argv: Vec<&[u8]> = Vec::with_capacity(n);
        for i in 1..=n as c_int {
            if ffi::lua_type(l, i) == ffi::LUA_TSTRING {
                let mut len = 0;
                let p = ffi::lua_tolstring(l, i, &raw mut len);
                argv.push(std::slice::from_raw_parts(p.cast::<u8>(), len));
            } else if let Some(f) = formatted.next() {
                argv.push(f.as_bytes());
            }
        }
        super::with_current_shard(|data| run_command(data, run, &argv))
            .unwrap_or_else(|| Err("ERR redis.call outside of a running script".to_string()))
    }
}

/// What [`push_protected`] pushes: a reply's RESP bytes, or an error text (normalized).
struct PushParams {
    bytes: *const u8,
    len: usize,
    error_text: bool,
    /// The script's RESP version (`redis.setresp`).
    resp: u8,
    /// Set when the pushed value is an error table.
    failed: bool,
}

/// Pushes what its light userdata argument ([`PushParams`]) describes; run by
/// `lua_pcall`, so a Lua error here returns to [`call_and_push`].
#[expect(unsafe_code, reason = "a Lua C function")]
unsafe extern "C-unwind" fn push_protected(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `call_and_push` with a pointer to its live `PushParams`, whose
    // bytes it owns until `lua_pcall` returns. The Rust frames below own nothing that
    // needs dropping, so an error (out of memory, a nil map key) may long-jump over them.
    unsafe {
        let params = &mut *ffi::lua_touserdata(l, 1).cast::<PushParams>();
        ffi::lua_settop(l, 0);
        let bytes = std::slice::from_raw_parts(params.bytes, params.len);
        if params.error_text {
            push_error_table(l, bytes);
            return 1;
        }
        match push_resp(l, bytes, 0, params.resp, 0) {
            Some(end) if end == bytes.len() => {
                params.failed = matches!(bytes.first(), Some(b'-' | b'!'));
            }
            _ => {
                ffi::lua_settop(l, 0);
                push_error_table(l, b"ERR internal error: unreadable reply");
                params.failed = true;
            }
        }
        1
    }
}

/// Pushes `{err = text}`.
#[expect(unsafe_code, reason = "Lua C API")]
unsafe fn push_error_table(l: *mut ffi::lua_State, text: &[u8]) {
    // SAFETY: the caller leaves room for two values (LUA_MINSTACK, or `lua_checkstack`).
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
        ffi::lua_setfield(l, -2, c"err".as_ptr());
    }
}

/// Pushes `{field = <the value on top>}` in place of that value.
#[expect(unsafe_code, reason = "Lua C API")]
unsafe fn wrap_top(l: *mut ffi::lua_State, field: &std::ffi::CStr) {
    // SAFETY: one value is on top and there is room for one more.
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_insert(l, -2);
        ffi::lua_setfield(l, -2, field.as_ptr());
    }
}

/// The line after a type byte at `pos`: its bytes and where the next line begins.
fn line_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let cr = rest.iter().position(|&b| b == b'\r')?;
    (rest.get(cr + 1) == Some(&b'\n')).then(|| (&rest[..cr], pos + cr + 2))
}

fn parse_count(line: &[u8]) -> Option<usize> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

fn parse_double(line: &[u8]) -> Option<f64> {
    match line {
        b"inf" | b"+inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => Some(f64::NAN),
        _ => std::str::from_utf8(line).ok()?.parse().ok(),
    }
}

/// Pushes the reply at `pos` of `buf` as Redis converts a reply for a script
/// (`redisProtocolToLuaType`, see `convert`): integer → number, bulk → string, null →
/// `false` (RESP2) or `nil` (RESP3 null), status → `{ok=...}`, error → `{err=...}`,
/// array → table; RESP3: map → `{map={...}}`, set → `{set={member=true}}`, double →
/// `{double=n}`, boolean, big number → `{big_number=s}`, verbatim →
/// `{verbatim_string={format=, string=}}`. The position after it, or `None` when the
/// bytes are not a whole reply.
#[expect(unsafe_code, reason = "Lua C API")]
unsafe fn push_resp(
    l: *mut ffi::lua_State,
    buf: &[u8],
    pos: usize,
    resp: u8,
    depth: usize,
) -> Option<usize> {
    // SAFETY: `lua_checkstack` makes room for the (at most four) values pushed at this
    // level before going deeper; errors long-jump to `push_protected`'s `lua_pcall`, over
    // frames that own nothing.
    unsafe {
        if depth > percore_net::resp::frame::MAX_FRAME_DEPTH || ffi::lua_checkstack(l, 4) == 0 {
            return None;
        }
        let kind = *buf.get(pos)?;
        let (line, next) = line_at(buf, pos + 1)?;
        let push_str = |s: &[u8]| {
            ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
        };
        let null = || {
            if resp == 3 {
                ffi::lua_pushnil(l);
            } else {
                ffi::lua_pushboolean(l, 0);
            }
        };
        Some(match kind {
            b':' => {
                let v: i64 = std::str::from_utf8(line).ok()?.parse().ok()?;
                ffi::lua_pushnumber(l, v as f64);
                next
            }
            b'+' => {
                ffi::lua_createtable(l, 0, 1);
                push_str(line);
                ffi::lua_setfield(l, -2, c"ok".as_ptr());
                next
            }
            b'-' => {
                push_error_reply_text(l, line);
                next
            }
            b'_' => {
                null();
                next
            }
            b'#' => {
                ffi::lua_pushboolean(l, c_int::from(line == b"t"));
                next
            }
            b',' => {
                ffi::lua_pushnumber(l, parse_double(line)?);
                wrap_top(l, c"double");
                next
            }
            b'(' => {
                push_str(line);
                wrap_top(l, c"big_number");
                next
            }
            b'$' | b'!' | b'=' if line == b"-1" => {
                null();
                next
            }
            b'$' | b'!' | b'=' => {
                let len = parse_count(line)?;
                let data = buf.get(next..next.checked_add(len)?)?;
                match kind {
                    b'$' => push_str(data),
                    b'!' => push_error_reply_text(l, data),
                    _ => {
                        let (format, text) = (data.get(..3)?, data.get(4..)?);
                        ffi::lua_createtable(l, 0, 2);
                        push_str(format);
                        ffi::lua_setfield(l, -2, c"format".as_ptr());
                        push_str(text);
                        ffi::lua_setfield(l, -2, c"string".as_ptr());
                        wrap_top(l, c"verbatim_string");
                    }
                }
                next + len + 2
            }
            b'*' | b'>' if line == b"-1" => {
                ffi::lua_pushboolean(l, 0);
                next
            }
            b'*' | b'>' => {
                let count = parse_count(line)?;
                ffi::lua_createtable(l, count.try_into().unwrap_or(0), 0);
                let mut at = next;
                for i in 1..=count {
                    at = push_resp(l, buf, at, resp, depth + 1)?;
                    ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
                }
                at
            }
            b'~' => {
                let count = parse_count(line)?;
                ffi::lua_createtable(l, 0, count.try_into().unwrap_or(0));
                let mut at = next;
                for _ in 0..count {
                    at = push_resp(l, buf, at, resp, depth + 1)?;
                    ffi::lua_pushboolean(l, 1);
                    ffi::lua_rawset(l, -3);
                }
                wrap_top(l, c"set");
                at
            }
            b'%' => {
                let count = parse_count(line)?;
                ffi::lua_createtable(l, 0, count.try_into().unwrap_or(0));
                let mut at = next;
                for _ in 0..count {
                    at = push_resp(l, buf, at, resp, depth + 1)?;
                    at = push_resp(l, buf, at, resp, depth + 1)?;
                    ffi::lua_rawset(l, -3);
                }
                wrap_top(l, c"map");
                at
            }
            b'|' => {
                // An attribute annotates the reply that follows; dropped.
                let count = parse_count(line)?;
                let mut at = next;
                for _ in 0..2 * count {
                    at = push_resp(l, buf, at, resp, depth + 1)?;
                    ffi::lua_settop(l, -2);
                }
                push_resp(l, buf, at, resp, depth + 1)?
            }
            _ => return None,
        })
    }
}

/// Pushes the error table of an error reply's text (`line`, without its `-`), as
/// [`normalize_error`] makes it: `CODE msg` keeps its code, a text without a space gets
/// `ERR `, surrounding CR/LF go.
#[expect(unsafe_code, reason = "Lua C API")]
unsafe fn push_error_reply_text(l: *mut ffi::lua_State, line: &[u8]) {
    let (code, msg): (&[u8], &[u8]) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (b"ERR", line),
    };
    let trim = |b: &u8| *b != b'\r' && *b != b'\n';
    let start = msg.iter().position(trim).unwrap_or(msg.len());
    let end = msg.iter().rposition(trim).map_or(start, |e| e + 1);
    let msg = &msg[start..end];
    // SAFETY: room for four values (the caller's `lua_checkstack`).
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushlstring(l, code.as_ptr().cast(), code.len());
        ffi::lua_pushlstring(l, c" ".as_ptr(), 1);
        ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
        ffi::lua_concat(l, 3);
        ffi::lua_setfield(l, -2, c"err".as_ptr());
    }
}

/// The arguments of a redis lib call as strings (Redis's `luaArgsToRedisArgv`), or the
/// error text of the call.
fn lua_argv(
    lua: &Lua,
    args: MultiValue,
) -> mlua::Result<Result<Vec<mlua::LuaString>, &'static str>> {
    if args.is_empty() {
        return Ok(Err(
            "Please specify at least one argument for this redis lib call",
        ));
    }
    if args.len() > MAX_SCRIPT_CALL_ARGS {
        return Ok(Err("Too many arguments in a redis lib call"));
    }
    let mut argv_owned: Vec<mlua::LuaString> = Vec::with_capacity(args.len());
    for v in args {
        match v {
            Value::String(s) => argv_owned.push(s),
            // Redis formats numbers with "%.17g" (Lua's own "%.14g" loses precision).
            // mlua hands integral Lua 5.1 numbers over as integers: they are doubles too.
            Value::Number(n) => argv_owned
                .push(lua.create_string(percore_engine::number::format_g(n, 17).as_bytes())?),
            Value::Integer(i) => argv_owned.push(
                lua.create_string(percore_engine::number::format_g(i as f64, 17).as_bytes())?,
            ),
            _ => {
                return Ok(Err(
                    "Lua redis lib command arguments must be strings or integers",
                ));
            }
        }
    }
    Ok(Ok(argv_owned))
}

/// `redis.acl_check_cmd(cmd, args...)` (Redis's `luaRedisAclCheckCmdPermissionsCommand`):
/// whether the script's user may run the command with those arguments; an unknown
/// command (or subcommand) is an error. The text names `redis.` as Redis 7.0 does
/// (Valkey 8 says `server.acl_check_cmd()`).
pub fn acl_check_cmd(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let argv_owned = match lua_argv(lua, args)? {
        Ok(a) => a,
        Err(text) => return fail(lua, text),
    };
    let borrowed: Vec<mlua::BorrowedBytes> =
        argv_owned.iter().map(mlua::LuaString::as_bytes).collect();
    let argv: Vec<&[u8]> = borrowed.iter().map(|b| &b[..]).collect();
    let Some(cmd) = commands::lookup(argv[0]).filter(|cmd| {
        // Redis's `lookupCommand`: a container's second argument must name one of its
        // subcommands.
        argv.len() < 2 || cmd.subcommands.is_empty() || known_subcommand(cmd, argv[1])
    }) else {
        return fail(lua, "Invalid command passed to redis.acl_check_cmd()");
    };
    let allowed = super::with_current_shard(|data| {
        data.acl.script_user.as_ref().is_none_or(|user| {
            let id = crate::acl::table::table().id_of(cmd, &argv);
            user.check(cmd, id, &argv).is_ok()
        })
    })
    .unwrap_or(true);
    Ok((true, Value::Boolean(allowed)))
}

/// Whether `sub` names one of the subcommands of container `cmd`.
fn known_subcommand(cmd: &commands::Command, sub: &[u8]) -> bool {
    let prefix = cmd.name.len() + 1;
    cmd.subcommands.iter().any(|(full, _, _)| {
        full.len() > prefix && full.as_bytes()[prefix..].eq_ignore_ascii_case(sub)
    })
}

fn fail(lua: &Lua, text: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::Table(error_table(lua, text)?)))
}

/// Runs one command for a script; the reply bytes in the script's protocol, or an error
/// text raised before the command ran.
fn run_command(data: &mut ShardData, run: &RunState, argv: &[&[u8]]) -> Result<Vec<u8>, String> {
    if crate::atomic::remote::stopped(data) {
        return Err(crate::atomic::remote::RERUN.into());
    }
    let Some(cmd) = commands::lookup(argv[0]) else {
        return Err("Unknown Redis command called from script".into());
    };
    if !cmd.arity_ok(argv.len()) {
        return Err("Wrong number of args calling Redis command from script".into());
    }
    if cmd.has(flags::NOSCRIPT) || subcommand_noscript(cmd, argv) {
        return Err("This Redis command is not allowed from script".into());
    }
    if crate::shard::check_subcommand(cmd, argv).is_some() {
        // A container's unknown subcommand is an unknown command to a script, and a
        // subcommand's arity a wrong argument count.
        return Err(if known_subcommand(cmd, argv[1]) {
            "Wrong number of args calling Redis command from script"
        } else {
            "Unknown Redis command called from script"
        }
        .into());
    }
    crate::acl::check_script_call(data, cmd, argv)?;
    crate::evict::script_call_refusal(data, cmd, run.flags.get(), run.wrote.get())?;
    let writes = cmd.has(flags::WRITE);
    if run.read_only.get() && (writes || cmd.has(flags::MAY_REPLICATE)) {
        return Err("Write commands are not allowed from read-only scripts.".into());
    }
    if writes && crate::replication::wait::script_refused(data) {
        return Err(format!("-{}", crate::replication::wait::NOREPLICAS));
    }
    let spread = data.shards > 1 && reaches_other_shards(data, cmd, argv);
    if spread {
        crate::atomic::remote::may_call_out(data, run.wrote.get())?;
    }
    if data.tracking.script_caller != 0 && cmd.has(flags::READONLY) {
        // The script reads: its tracking caller caches its declared keys.
        crate::tracking::script_read(data);
    }
    if writes {
        run.wrote.set(true);
        if run.busy.get()
            && let Some(shared) = run.shared.borrow().as_ref()
        {
            shared.scripts.busy[run.shard.get()]
                .wrote
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }
    let proto = if run.resp.get() == 3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    let mut out = Vec::new();
    let db = run.db.get();
    if data.shared.attention.raised() {
        crate::monitor::feed_script_call(data, db, argv);
    }
    if let Some(text) = stream_block_refusal(cmd, argv) {
        ReplyWriter::new(&mut out, proto).error(&text);
        record_call(data, cmd, argv, &out);
        return Ok(out);
    }
    if spread {
        let out = run_spread(data, cmd, argv, db, proto)?;
        record_call(data, cmd, argv, &out);
        return Ok(out);
    }
    let before = data.keyspace.changes();
    match cmd.exec {
        Exec::Keyed(h) => {
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: None,
            };
            h(&mut ctx, argv, &mut ReplyWriter::new(&mut out, proto));
        }
        Exec::Client(h) => {
            // The script's own client: SELECT changes the database for the rest of the
            // script only, as in Redis 7.0.
            let mut slot = run.client.borrow_mut();
            let c = slot.get_or_insert_with(super::script_client);
            c.db = db;
            c.proto = proto;
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: Some(c),
            };
            h(&mut ctx, argv, &mut ReplyWriter::new(&mut out, proto));
            run.db.set(c.db);
        }
        Exec::Split { part, merge } => {
            let step = cmd.step.max(1) as usize;
            if !(argv.len().saturating_sub(cmd.first_key as usize)).is_multiple_of(step) {
                return Err("Wrong number of args calling Redis command from script".into());
            }
            let positions: Vec<usize> = cmd.key_positions(argv.len()).collect();
            let mut sub: Vec<&[u8]> = vec![argv[0]];
            for &p in &positions {
                sub.extend_from_slice(&argv[p..(p + step).min(argv.len())]);
            }
            let (shards, me) = (data.shards, data.id);
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: None,
            };
            let mut gather = Gather {
                cmd,
                parts: (0..shards).map(|_| None).collect(),
                key_map: vec![Vec::new(); shards],
                nkeys: positions.len(),
                remaining: 0,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                discard: false,
                proto,
            };
            gather.key_map[me] = (0..positions.len() as u32).collect();
            gather.parts[me] = Some(part(&mut ctx, &sub));
            merge(&mut gather, &mut ReplyWriter::new(&mut out, proto));
        }
        Exec::All { part, merge } => {
            if data.shards > 1 {
                return Err(format!(
                    "This command ({}) needs every shard and cannot run inside a script with more than one shard",
                    cmd.name
                ));
            }
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: None,
            };
            let mut gather = Gather {
                cmd,
                parts: vec![Some(part(&mut ctx, argv))],
                key_map: Vec::new(),
                nkeys: 0,
                remaining: 0,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                discard: false,
                proto,
            };
            merge(&mut gather, &mut ReplyWriter::new(&mut out, proto));
        }
        // MULTI/EXEC/DISCARD/WATCH are `noscript`: refused before this.
        Exec::Multi(_) => return Err("This Redis command is not allowed from script".into()),
        Exec::Hop(first) => {
            let me = data.id;
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: None,
            };
            let mut result = first(&mut ctx, argv);
            loop {
                match result {
                    commands::Partial::Hop { shard, step, argv } if shard == me => {
                        let mut args = Vec::new();
                        argv.fill(&mut args);
                        result = step(&mut ctx, &args);
                    }
                    commands::Partial::Encoded(b) => {
                        out = b;
                        break;
                    }
                    // A blocking command with nothing to take answers at once in a script.
                    commands::Partial::Block(spec) => {
                        result = crate::blocking::answer_without_blocking(&spec, proto);
                    }
                    commands::Partial::Hop { .. } => return Err(NON_LOCAL_KEY.into()),
                    _ => {
                        return Err(format!(
                            "This command ({}) cannot run inside a script",
                            cmd.name
                        ));
                    }
                }
            }
        }
    }
    if cmd.has(flags::WRITE) && data.observes_writes() {
        // A script's write touches WATCHed keys (and CLIENT TRACKING) as a client's does.
        crate::atomic::watch::after_write(data, cmd, argv, db, before);
    }
    if data.effects.on {
        crate::propagate::after_command(data, cmd, argv, db, before, &out);
    }
    record_call(data, cmd, argv, &out);
    Ok(out)
}

/// Counts a script's call in the command stats and logs it in the slow log when slow, as
/// Redis logs its Lua client's calls (address `?:0`, no name).
fn record_call(data: &mut ShardData, cmd: &'static commands::Command, argv: &[&[u8]], out: &[u8]) {
    let took = data.took();
    data.stats
        .record_call(cmd, argv, took, out.first() == Some(&b'-'), out);
    crate::stats::note_slow_as(data, cmd, took, argv, "?:0", None);
}

/// XREAD/XREADGROUP with a BLOCK option (before STREAMS) from a script: Redis refuses it
/// with this error (naming the command as the script wrote it) rather than answering as
/// if it timed out, as other blocking commands do.
fn stream_block_refusal(cmd: &commands::Command, argv: &[&[u8]]) -> Option<String> {
    if !matches!(cmd.name, "xread" | "xreadgroup") {
        return None;
    }
    let mut i = 1;
    while i < argv.len() {
        let (a, more) = (argv[i], argv.len() - i - 1);
        if more > 0 && commands::eq_ic(a, "STREAMS") {
            return None;
        }
        if more > 0 && commands::eq_ic(a, "BLOCK") {
            return Some(format!(
                "ERR {} command is not allowed with BLOCK option from scripts",
                String::from_utf8_lossy(argv[0])
            ));
        }
        if more >= 2 && commands::eq_ic(a, "GROUP") {
            i += 2;
        }
        i += 1;
    }
    None
}

/// Subcommands Redis marks `noscript` (SCRIPT KILL, FUNCTION LOAD, CLIENT ...): the
/// container rows carry the flag per subcommand.
fn subcommand_noscript(cmd: &commands::Command, argv: &[&[u8]]) -> bool {
    if cmd.subcommands.is_empty() || argv.len() < 2 {
        return false;
    }
    let prefix = cmd.name.len() + 1;
    cmd.subcommands.iter().any(|(full, _, f)| {
        f & flags::NOSCRIPT != 0
            && full.len() > prefix
            && full.as_bytes()[prefix..].eq_ignore_ascii_case(argv[1])
    })
}

/// Whether a script's call needs another shard: a key of it lives there, or it reads
/// every shard (DBSIZE, KEYS, SCAN, RANDOMKEY...).
fn reaches_other_shards(data: &ShardData, cmd: &commands::Command, argv: &[&[u8]]) -> bool {
    match cmd.exec {
        Exec::All { .. } => true,
        Exec::Client(_) | Exec::Multi(_) => false,
        _ => cmd.keys_of(argv).any(|p| data.owner(argv[p]) != data.id),
    }
}

/// A step run here or, through `atomic::remote`, on the shard that owns it: its result,
/// and whether it changed that shard (its effects are in the script's unit already).
#[expect(
    clippy::too_many_arguments,
    reason = "one step's whole context, handed on"
)]
fn step_on(
    data: &mut ShardData,
    shard: usize,
    cmd: &'static commands::Command,
    f: commands::PartFn,
    db: usize,
    proto: Protocol,
    args: &[&[u8]],
    orig: &[&[u8]],
) -> Result<(commands::Partial, bool), String> {
    use crate::atomic::remote::{Reply, Request, call};
    if shard == data.id {
        let before = data.keyspace.changes();
        let mut ctx = Ctx {
            shard: data,
            db,
            proto,
            client: None,
        };
        let result = crate::crash::guarded(args, || f(&mut ctx, args));
        let changed = crate::propagate::step_ran(data, before);
        if changed && cmd.has(flags::WRITE) && !data.watches.is_empty() {
            crate::atomic::watch::after_write(data, cmd, orig, db, u64::MAX);
        }
        return Ok((result, changed));
    }
    let owned = |a: &[&[u8]]| a.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
    let req = Request::Step {
        f,
        db,
        proto,
        argv: owned(args),
        cmd,
        orig: owned(orig),
    };
    match call(data, shard, req) {
        Some(Reply::Step {
            result,
            fx,
            changed,
        }) => {
            if data.effects.on {
                data.effects.atomic(fx);
            }
            Ok((result, changed))
        }
        _ => Err(format!("{NON_LOCAL_KEY} (shard {shard} did not answer)")),
    }
}

/// Runs a script's call that needs other shards, the script holding every shard whole
/// (`atomic::remote`): a keyed command on its owner, a split or every-shard command part
/// by part, a multi-step command step by step, each where it belongs. Its effect is logged
/// once, as itself, after what its parts met (as a transaction's command).
fn run_spread(
    data: &mut ShardData,
    cmd: &'static commands::Command,
    argv: &[&[u8]],
    db: usize,
    proto: Protocol,
) -> Result<Vec<u8>, String> {
    use crate::atomic::remote::{Reply, Request, call};
    let mut out = Vec::new();
    let mut changed = false;
    match cmd.exec {
        Exec::Keyed(h) => {
            let owner = cmd
                .keys_of(argv)
                .next()
                .map_or(data.id, |p| data.owner(argv[p]));
            let req = Request::Keyed {
                h,
                db,
                proto,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
            };
            return match call(data, owner, req) {
                Some(Reply::Keyed { reply, fx }) => {
                    if data.effects.on {
                        data.effects.atomic(fx);
                    }
                    Ok(reply)
                }
                _ => Err(format!("{NON_LOCAL_KEY} (shard {owner} did not answer)")),
            };
        }
        Exec::Split { part, merge } => {
            let step = cmd.step.max(1) as usize;
            if !(argv.len().saturating_sub(cmd.first_key as usize)).is_multiple_of(step) {
                return Err("Wrong number of args calling Redis command from script".into());
            }
            let (jobs, key_map, nkeys) = crate::atomic::split_jobs(data, cmd, argv);
            let mut gather = Gather {
                cmd,
                parts: (0..data.shards).map(|_| None).collect(),
                key_map,
                nkeys,
                remaining: 0,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                discard: false,
                proto,
            };
            for (s, sub) in jobs {
                let mut args = Vec::new();
                sub.fill(&mut args);
                let (result, c) = step_on(data, s, cmd, part, db, proto, &args, &args)?;
                changed |= c;
                gather.parts[s] = Some(result);
            }
            merge(&mut gather, &mut ReplyWriter::new(&mut out, proto));
        }
        Exec::All { part, merge } => {
            let mut gather = Gather {
                cmd,
                parts: (0..data.shards).map(|_| None).collect(),
                key_map: Vec::new(),
                nkeys: 0,
                remaining: 0,
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                discard: false,
                proto,
            };
            for s in 0..data.shards {
                let (result, c) = step_on(data, s, cmd, part, db, proto, argv, argv)?;
                changed |= c;
                gather.parts[s] = Some(result);
            }
            merge(&mut gather, &mut ReplyWriter::new(&mut out, proto));
        }
        Exec::Hop(first) => {
            let me = data.id;
            let (mut result, c) = step_on(data, me, cmd, first, db, proto, argv, argv)?;
            changed |= c;
            loop {
                match result {
                    commands::Partial::Hop {
                        shard,
                        step,
                        argv: next,
                    } => {
                        let mut args = Vec::new();
                        next.fill(&mut args);
                        let (r, c) = step_on(data, shard, cmd, step, db, proto, &args, argv)?;
                        changed |= c;
                        result = r;
                    }
                    commands::Partial::Encoded(b) => {
                        out = b;
                        break;
                    }
                    commands::Partial::Block(spec) => {
                        result = crate::blocking::answer_without_blocking(&spec, proto);
                    }
                    _ => {
                        return Err(format!(
                            "This command ({}) cannot run inside a script",
                            cmd.name
                        ));
                    }
                }
            }
        }
        Exec::Client(_) | Exec::Multi(_) => unreachable!("runs on the script's shard"),
    }
    if data.effects.on {
        crate::propagate::command_done(data, cmd, argv, db, changed, &out);
    }
    Ok(out)
}
