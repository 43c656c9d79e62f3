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
use super::sandbox::error_table;
use crate::commands::{self, Ctx, Exec, Gather, flags};
use crate::shard::ShardData;
use mlua::{Lua, MultiValue, Value};
use percore_net::resp::{Protocol, ReplyWriter, decode_frame};

/// The arguments of one command called from a script, at most (Redis's multibulk limit
/// for a client is far larger; a script building more is refused before it runs).
pub const MAX_SCRIPT_CALL_ARGS: usize = 1024 * 1024;

pub const NON_LOCAL_KEY: &str = "Script attempted to access a non local key in a cluster node";

/// Runs `redis.call(...)` or `redis.pcall(...)`: `(true, value)` or `(false, error
/// table)`; `call` raises the table (see `sandbox::raising`), `pcall` returns it.
pub fn exec(lua: &Lua, run: &RunState, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let argv_owned = match lua_argv(lua, args)? {
        Ok(a) => a,
        Err(text) => return fail(lua, text),
    };
    let borrowed: Vec<mlua::BorrowedBytes> =
        argv_owned.iter().map(mlua::LuaString::as_bytes).collect();
    let argv: Vec<&[u8]> = borrowed.iter().map(|b| &b[..]).collect();
    exec_argv(lua, run, &argv)
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

/// [`exec`] of many arguments, packed in a table (`redis.call(..., unpack(t))`): each is
/// copied out at once, as mlua holds every live Lua value in an auxiliary stack of
/// Lua 5.1's 8000 C slots (7999 arguments, as Redis's test sends, overflowed it).
pub fn exec_packed(lua: &Lua, run: &RunState, t: &mlua::Table) -> mlua::Result<(bool, Value)> {
    let n = t.raw_len();
    if n == 0 {
        return fail(
            lua,
            "Please specify at least one argument for this redis lib call",
        );
    }
    if n > MAX_SCRIPT_CALL_ARGS {
        return fail(lua, "Too many arguments in a redis lib call");
    }
    let mut owned: Vec<Vec<u8>> = Vec::with_capacity(n);
    for i in 1..=n {
        let bytes = match t.raw_get::<Value>(i)? {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Number(f) => percore_engine::number::format_g(f, 17).into_bytes(),
            Value::Integer(v) => percore_engine::number::format_g(v as f64, 17).into_bytes(),
            _ => {
                return fail(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                );
            }
        };
        owned.push(bytes);
    }
    let argv: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    exec_argv(lua, run, &argv)
}

/// Runs one command of a script and converts its reply.
fn exec_argv(lua: &Lua, run: &RunState, argv: &[&[u8]]) -> mlua::Result<(bool, Value)> {
    let reply = super::with_current_shard(|data| run_command(data, run, argv))
        .unwrap_or_else(|| Err("ERR redis.call outside of a running script".to_string()));
    match reply {
        Ok(bytes) => reply_to_lua(lua, run, &bytes),
        Err(text) => fail(lua, &text),
    }
}

fn fail(lua: &Lua, text: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::Table(error_table(lua, text)?)))
}

/// Converts a command's encoded reply to `(ok, value)`.
fn reply_to_lua(lua: &Lua, run: &RunState, bytes: &[u8]) -> mlua::Result<(bool, Value)> {
    match decode_frame(bytes) {
        Ok(Some((frame, _))) => {
            if let percore_net::resp::Frame::Error(e) = &frame {
                let text = format!("-{}", String::from_utf8_lossy(e));
                return Ok((false, Value::Table(error_table(lua, &text)?)));
            }
            Ok((
                true,
                super::convert::frame_to_lua(lua, &frame, run.resp.get())?,
            ))
        }
        _ => fail(lua, "internal error: unreadable reply"),
    }
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
