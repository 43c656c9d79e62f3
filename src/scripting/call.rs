//! `redis.call` / `redis.pcall`: a command run from a script, on the script's shard.
//!
//! The checks and their texts are Redis 7.0's (`scriptCall`): unknown command, arity,
//! commands refused in scripts (`noscript`), writes from read-only scripts. Then percore's
//! own rule: every key the command names must live on the script's shard, else
//! "Script attempted to access a non local key in a cluster node", the error Redis
//! Cluster gives a script for a key of another node. The command runs through the command
//! table as on a connection, its reply is written in the script's RESP version and
//! converted to Lua.

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
    let rest: Vec<Value> = args.into_iter().collect();
    if rest.is_empty() {
        return fail(
            lua,
            "Please specify at least one argument for this redis lib call",
        );
    }
    if rest.len() > MAX_SCRIPT_CALL_ARGS {
        return fail(lua, "Too many arguments in a redis lib call");
    }
    let mut argv_owned: Vec<mlua::LuaString> = Vec::with_capacity(rest.len());
    for v in rest {
        match v {
            Value::String(s) => argv_owned.push(s),
            Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v)? {
                Some(s) => argv_owned.push(s),
                None => {
                    return fail(
                        lua,
                        "Lua redis lib command arguments must be strings or integers",
                    );
                }
            },
            _ => {
                return fail(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                );
            }
        }
    }
    let borrowed: Vec<mlua::BorrowedBytes> =
        argv_owned.iter().map(mlua::LuaString::as_bytes).collect();
    let argv: Vec<&[u8]> = borrowed.iter().map(|b| &b[..]).collect();
    let reply = super::with_current_shard(|data| run_command(data, run, &argv))
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
        let prefix = cmd.name.len() + 1;
        let known = cmd.subcommands.iter().any(|(full, _, _)| {
            full.len() > prefix && full.as_bytes()[prefix..].eq_ignore_ascii_case(argv[1])
        });
        return Err(if known {
            "Wrong number of args calling Redis command from script"
        } else {
            "Unknown Redis command called from script"
        }
        .into());
    }
    crate::acl::check_script_call(data, cmd, argv)?;
    crate::evict::script_call_refusal(data, cmd, run.flags.get(), run.wrote.get())?;
    let writes = cmd.has(flags::WRITE);
    if writes && run.read_only.get() {
        return Err("Write commands are not allowed from read-only scripts.".into());
    }
    if data.shards > 1 {
        for p in cmd.key_positions(argv.len()) {
            if data.owner(argv[p]) != data.id {
                return Err(NON_LOCAL_KEY.into());
            }
        }
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
        let took = data.took();
        data.stats.record_call(cmd, argv, took, true, &out);
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
    let failed = out.first() == Some(&b'-');
    let took = data.took();
    data.stats.record_call(cmd, argv, took, failed, &out);
    Ok(out)
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
