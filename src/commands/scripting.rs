//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, SCRIPT and FUNCTION.
//!
//! Where a script runs: on the client's shard when its declared keys live there (or it
//! has none), else as a one-command transaction on their shard; a script whose declared
//! keys span shards runs as a transaction holding every shard (`atomic::remote`). The
//! command is an [`Exec::Hop`](super::Exec::Hop): the first step, on the client's shard,
//! checks the arguments and runs the script. Inside a script, `redis.call` may name any
//! key, as Redis outside cluster mode: another shard's key is a synchronous call to its
//! owner, the script holding every shard (see `atomic::remote`). Cluster mode keeps
//! CROSSSLOT.

use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::scripting::{self, BUSY_EVAL, BUSY_FUNCTION, Engine, Library, flags as sflags};
use crate::shard::Argv;
use percore_net::resp::ReplyWriter;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The refusal of a command while a script is busy: `busy`, or for EXEC Redis's
/// `execCommandAbort` (the transaction is discarded, its watches dropped).
#[cold]
pub fn busy_refusal(
    data: &mut crate::shard::ShardData,
    client: &mut crate::client::Client,
    cmd: &super::Command,
    busy: &'static str,
    outbox: &mut percore_net::mailbox::Outbox<crate::shard::Msg>,
) -> std::borrow::Cow<'static, str> {
    if cmd.name != "exec" || client.multi.is_none() {
        return busy.into();
    }
    client.multi = None;
    crate::atomic::unwatch_all(data, client, |s, m| outbox.send(s, m));
    format!("EXECABORT Transaction discarded because of: {busy}").into()
}

/// Whether a command may run while a script is busy (`allow-busy`, per subcommand for
/// SCRIPT and FUNCTION).
pub fn allowed_when_busy(cmd: &super::Command, argv: &[&[u8]]) -> bool {
    if cmd.has(super::flags::ALLOW_BUSY) {
        return true;
    }
    let prefix = cmd.name.len() + 1;
    argv.len() >= 2
        && cmd.subcommands.iter().any(|(full, _, f)| {
            f & super::flags::ALLOW_BUSY != 0
                && full.len() > prefix
                && full.as_bytes()[prefix..].eq_ignore_ascii_case(argv[1])
        })
}

const RO_WRITE_FLAG: &str = "ERR Can not execute a script with write flag using *_ro command.";
const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
const NO_CLUSTER: &str = "ERR Can not run script on cluster, 'no-cluster' flag is set.";
const CROSS_SHARD: &str = "CROSSSLOT Keys in request don't hash to the same slot";

fn encoded(ctx: &Ctx, f: impl FnOnce(&mut ReplyWriter)) -> Partial {
    let mut out = Vec::new();
    f(&mut ReplyWriter::new(&mut out, ctx.proto));
    Partial::Encoded(out)
}

fn error(ctx: &Ctx, text: &str) -> Partial {
    encoded(ctx, |w| w.error(text))
}

/// Which script command `argv[0]` names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eval,
    EvalSha,
    Fcall,
}

fn kind_of(name: &[u8]) -> (Kind, bool) {
    let ro = name.len() > 3 && name[name.len() - 3..].eq_ignore_ascii_case(b"_ro");
    let base = if ro { &name[..name.len() - 3] } else { name };
    let kind = if base.eq_ignore_ascii_case(b"evalsha") {
        Kind::EvalSha
    } else if base.eq_ignore_ascii_case(b"eval") {
        Kind::Eval
    } else {
        Kind::Fcall
    };
    (kind, ro)
}

/// `numkeys` of a script command: the number, or Redis's error.
fn numkeys(argv: &[&[u8]]) -> Result<usize, &'static str> {
    let fcall = argv[0].len() >= 5 && argv[0][..5].eq_ignore_ascii_case(b"fcall");
    let n = parse_i64(argv[2]).ok_or(if fcall {
        "ERR Bad number of keys provided"
    } else {
        errors::NOT_INTEGER
    })?;
    if n < 0 {
        return Err("ERR Number of keys can't be negative");
    }
    if n as u64 > (argv.len() - 3) as u64 {
        return Err("ERR Number of keys can't be greater than number of args");
    }
    Ok(n as usize)
}

/// First step, on the client's shard: checks, then runs here or hops to the keys' shard.
pub fn script_start(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let (kind, ro) = kind_of(argv[0]);
    let shared = Arc::clone(&ctx.shard.shared);
    match kind {
        Kind::Fcall => {
            let name = String::from_utf8_lossy(argv[1]).into_owned();
            let found = Engine::with_shard(ctx.shard, |e| e.function(&shared.scripts, &name));
            let Some((_, fl, _)) = found else {
                return error(ctx, "ERR Function not found");
            };
            if ro && fl & (sflags::NO_WRITES | sflags::EVAL_COMPAT) == 0 {
                return error(ctx, RO_WRITE_FLAG);
            }
        }
        Kind::EvalSha => {
            let exists = scripting::sha_arg(argv[1]).is_some_and(|s| {
                // Compiled here (the common case) means cached: no lock taken.
                ctx.shard
                    .lua
                    .as_deref()
                    .is_some_and(|e| e.knows(&shared.scripts, &s))
                    || shared.scripts.script_exists(&s)
            });
            if !exists {
                return error(ctx, NOSCRIPT);
            }
        }
        Kind::Eval => {}
    }
    let nkeys = match numkeys(argv) {
        Ok(n) => n,
        Err(text) => return error(ctx, text),
    };
    let keys = &argv[3..3 + nkeys];
    let mut owner = ctx.shard.id;
    if ctx.shard.locks.script_ctx == crate::atomic::remote::ScriptCtx::GlobalTxn {
        // It holds every shard: it runs here and calls the others (`atomic::remote`).
    } else if let Some(first) = keys.first() {
        owner = ctx.shard.owner(first);
        if keys.iter().any(|k| ctx.shard.owner(k) != owner) {
            return error(ctx, CROSS_SHARD);
        }
    }
    // A restricted user's script runs with its ACL checks on the owner shard: the user's
    // name travels in front of the arguments.
    let user = ctx.shard.acl.caller.clone();
    if owner == ctx.shard.id {
        let plain = ctx.shard.locks.script_ctx == crate::atomic::remote::ScriptCtx::Plain;
        if plain && (ctx.shard.locks.busy() || crate::atomic::remote::hinted(ctx.shard, argv)) {
            // A transaction holds or awaits keys here (the script's undeclared keys may be
            // among them), or the script is known to reach other shards: dispatch runs it
            // holding every shard.
            ctx.shard.locks.rerun_global = true;
            return Partial::Encoded(Vec::new());
        }
        let r = crate::acl::run_script_as(ctx, user, argv, script_run);
        if plain {
            crate::atomic::remote::learn(ctx.shard, argv);
        }
        return r;
    }
    match user {
        None => Partial::Hop {
            shard: owner,
            step: script_run,
            argv: Argv::from_slices(argv),
        },
        Some(u) => {
            let mut with_user: Vec<&[u8]> = vec![u.name.as_bytes()];
            with_user.extend_from_slice(argv);
            Partial::Hop {
                shard: owner,
                step: script_run_as_user,
                argv: Argv::from_slices(&with_user),
            }
        }
    }
}

/// Runs a restricted user's script on the shard that owns its keys: `argv[0]` is the
/// user's name.
fn script_run_as_user(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(user) = ctx.shard.shared.acl.user(&String::from_utf8_lossy(argv[0])) else {
        // Deleted on the way: its client is being disconnected; run nothing.
        return error(ctx, "NOPERM this user has no permissions to run the script");
    };
    crate::acl::run_script_as(ctx, Some(user), &argv[1..], script_run)
}

/// Runs the script on the shard that owns its keys.
pub fn script_run(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let (kind, ro) = kind_of(argv[0]);
    let nkeys = match numkeys(argv) {
        Ok(n) => n,
        Err(text) => return error(ctx, text),
    };
    let keys = &argv[3..3 + nkeys];
    let args = &argv[3 + nkeys..];
    let shared = Arc::clone(&ctx.shard.shared);
    let threshold = ctx.shard.cfg.busy_reply_threshold_ms;
    let cluster = ctx.shard.cluster.is_some();
    let (db, proto) = (ctx.db, ctx.proto);
    let mut out = Vec::new();
    // The script's writes are one unit of effects (MULTI/EXEC when several).
    let capture = ctx
        .shard
        .effects
        .on
        .then(|| ctx.shard.effects.begin_capture());
    let oom = crate::evict::oom_at_command(ctx.shard);
    let noreplicas = crate::replication::wait::script_refused(ctx.shard);
    Engine::with_shard(ctx.shard, |engine| {
        let mut w = ReplyWriter::new(&mut out, proto);
        let (func, fl, name, busy_kind) = match kind {
            Kind::Fcall => {
                let name = String::from_utf8_lossy(argv[1]).into_owned();
                let Some((f, fl, registered)) = engine.function(&shared.scripts, &name) else {
                    w.error("ERR Function not found");
                    return;
                };
                (f, fl, Name::Function(registered), BUSY_FUNCTION)
            }
            Kind::EvalSha | Kind::Eval => {
                let sha = if kind == Kind::Eval {
                    scripting::sha1_hex(argv[1])
                } else {
                    let Some(s) = scripting::sha_arg(argv[1]) else {
                        w.error(NOSCRIPT);
                        return;
                    };
                    s
                };
                let compiled = match engine.script(&shared.scripts, &sha) {
                    Ok(x) => Ok(x),
                    Err(None) if kind == Kind::Eval => {
                        compile_and_cache(engine, &shared, argv[1], sha)
                    }
                    Err(None) => Err(NOSCRIPT.to_string()),
                    Err(Some(text)) => Err(text),
                };
                let (f, fl) = match compiled {
                    Ok(x) => x,
                    Err(text) => {
                        w.error(&text);
                        return;
                    }
                };
                (f, fl, Name::Sha(sha), BUSY_EVAL)
            }
        };
        if ro && fl & (sflags::NO_WRITES | sflags::EVAL_COMPAT) == 0 {
            w.error(RO_WRITE_FLAG);
            return;
        }
        if cluster && fl & sflags::NO_CLUSTER != 0 {
            w.error(NO_CLUSTER);
            return;
        }
        if let Some(text) = crate::evict::script_start_refusal(oom, fl) {
            w.error(text);
            return;
        }
        if noreplicas && fl & (sflags::NO_WRITES | sflags::EVAL_COMPAT) == 0 {
            w.error(crate::replication::wait::NOREPLICAS);
            return;
        }
        let name = match &name {
            Name::Sha(sha) => std::str::from_utf8(sha).unwrap_or_default(),
            Name::Function(name) => name,
        };
        engine.invoke(
            &shared, &func, name, busy_kind, fl, ro, db, keys, args, argv, threshold, proto,
            &mut out,
        );
    });
    let fx = match capture {
        Some(outer) => ctx.shard.effects.end_capture(outer),
        None => crate::propagate::Effects::default(),
    };
    // Released here if it took every shard on the way.
    crate::atomic::remote::end_script(ctx.shard, fx);
    Partial::Encoded(out)
}

/// A running script's name: its SHA1 (hex, ASCII) or the function's name as registered.
enum Name {
    Sha([u8; 40]),
    Function(std::rc::Rc<str>),
}

/// Compiles an EVAL body and adds it to the shared cache and this shard's compiled set.
fn compile_and_cache(
    engine: &mut Engine,
    shared: &crate::server::ServerShared,
    body: &[u8],
    sha: [u8; 40],
) -> Result<(mlua::Function, u32), String> {
    let (fl, start) = scripting::functions::eval_shebang(body)?;
    let f = engine.compile_script(body, start)?;
    if !shared.scripts.add_script(sha, body) {
        return Err("ERR the script cache is full (SCRIPT FLUSH empties it)".into());
    }
    engine.remember(&shared.scripts, sha, f.clone(), fl);
    Ok((f, fl))
}

const SCRIPT_HELP: &[&str] = &[
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
];

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / DEBUG / HELP (on the client's shard; the cache
/// is shared).
pub fn script(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = argv[1];
    let shared = Arc::clone(&ctx.shard.shared);
    if eq_ic(sub, "load") {
        let body = argv[2];
        let sha = scripting::sha1_hex(body);
        let r = Engine::with_shard(ctx.shard, |e| {
            if shared.scripts.script_exists(&sha) {
                return Ok(());
            }
            compile_and_cache(e, &shared, body, sha).map(|_| ())
        });
        match r {
            Ok(()) => w.bulk(&sha),
            Err(text) => w.error(&text),
        }
    } else if eq_ic(sub, "exists") {
        w.array(argv.len() - 2);
        for a in &argv[2..] {
            let found = scripting::sha_arg(a).is_some_and(|s| shared.scripts.script_exists(&s));
            w.int(i64::from(found));
        }
    } else if eq_ic(sub, "flush") {
        if argv.len() > 3
            || (argv.len() == 3 && !eq_ic(argv[2], "sync") && !eq_ic(argv[2], "async"))
        {
            w.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            return;
        }
        shared.scripts.flush_scripts();
        w.ok();
    } else if eq_ic(sub, "kill") {
        match shared.scripts.kill(false) {
            None => w.ok(),
            Some(text) => w.error(text),
        }
    } else if eq_ic(sub, "debug") {
        if eq_ic(argv[2], "no") {
            w.ok();
        } else if eq_ic(argv[2], "yes") || eq_ic(argv[2], "sync") {
            w.error("ERR percore has no Lua debugger (SCRIPT DEBUG YES|SYNC)");
        } else {
            w.error("ERR Use SCRIPT DEBUG YES/SYNC/NO");
        }
    } else {
        super::server::help_reply(w, "SCRIPT", SCRIPT_HELP);
    }
}

const FUNCTION_HELP: &[&str] = &[
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
];

/// Loads a library's code on this shard to validate it (within `timeout_ms` if given);
/// its shared form.
fn compile_library(ctx: &mut Ctx, code: &[u8], timeout_ms: Option<u64>) -> Result<Library, String> {
    Engine::with_shard(ctx.shard, |e| {
        let (name, regs) = scripting::functions::load_library(e, code, timeout_ms)?;
        Ok(Library {
            name,
            code: code.to_vec(),
            functions: regs
                .into_iter()
                .map(|r| scripting::functions::FunctionInfo {
                    name: r.name,
                    description: r.description,
                    flags: r.flags,
                })
                .collect(),
        })
    })
}

/// Adds `lib` to `libs`: its name must be free unless `replace`, and its functions must
/// not belong to another library.
fn add_library(
    libs: &mut BTreeMap<String, Arc<Library>>,
    lib: Library,
    replace: bool,
) -> Result<String, String> {
    if libs.contains_key(&lib.name) && !replace {
        return Err(format!("ERR Library '{}' already exists", lib.name));
    }
    for f in &lib.functions {
        let clash = libs.values().filter(|l| l.name != lib.name).any(|l| {
            l.functions
                .iter()
                .any(|g| g.name.eq_ignore_ascii_case(&f.name))
        });
        if clash {
            return Err(format!("ERR Function {} already exists", f.name));
        }
    }
    let name = lib.name.clone();
    libs.insert(name.clone(), Arc::new(lib));
    Ok(name)
}

/// FUNCTION LOAD / DELETE / FLUSH / LIST / DUMP / RESTORE / STATS / KILL / HELP.
pub fn function(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = argv[1];
    let shared = Arc::clone(&ctx.shard.shared);
    if eq_ic(sub, "load") {
        let mut replace = false;
        for opt in &argv[2..argv.len() - 1] {
            if eq_ic(opt, "replace") {
                replace = true;
            } else {
                w.error(&format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(opt)
                ));
                return;
            }
        }
        let code = argv[argv.len() - 1];
        // Redis's LOAD_TIMEOUT_MS, except for the primary's stream (`mustObeyClient`).
        let obey = ctx.client.as_ref().is_some_and(|c| c.master);
        let timeout = (!obey).then_some(scripting::LOAD_TIMEOUT_MS);
        let result = compile_library(ctx, code, timeout).and_then(|lib| {
            shared
                .scripts
                .edit_libraries(|libs| add_library(libs, lib, replace))
        });
        match result {
            Ok(name) => w.bulk(name.as_bytes()),
            Err(text) => w.error(&text),
        }
    } else if eq_ic(sub, "delete") {
        let name = String::from_utf8_lossy(argv[2]).into_owned();
        match shared.scripts.edit_libraries(|libs| {
            libs.remove(&name)
                .map(|_| ())
                .ok_or_else(|| "ERR Library not found".to_string())
        }) {
            Ok(()) => w.ok(),
            Err(text) => w.error(&text),
        }
    } else if eq_ic(sub, "flush") {
        if argv.len() > 3 {
            // Redis 7.0's addReplySubcommandSyntaxError.
            w.error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(argv[1])
            ));
            return;
        }
        if argv.len() == 3 && !eq_ic(argv[2], "sync") && !eq_ic(argv[2], "async") {
            w.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            return;
        }
        shared.scripts.set_libraries(BTreeMap::new());
        w.ok();
    } else if eq_ic(sub, "list") {
        function_list(&shared, argv, w);
    } else if eq_ic(sub, "dump") {
        let libs = shared.scripts.libraries();
        let list: Vec<&Library> = libs.values().map(AsRef::as_ref).collect();
        w.bulk(&scripting::functions::dump(&list));
    } else if eq_ic(sub, "restore") {
        function_restore(ctx, &shared, argv, w);
    } else if eq_ic(sub, "stats") {
        function_stats(&shared, w);
    } else if eq_ic(sub, "kill") {
        match shared.scripts.kill(true) {
            None => w.ok(),
            Some(text) => w.error(text),
        }
    } else {
        super::server::help_reply(w, "FUNCTION", FUNCTION_HELP);
    }
}

fn function_list(shared: &crate::server::ServerShared, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < argv.len() {
        if eq_ic(argv[i], "withcode") && !with_code {
            with_code = true;
        } else if eq_ic(argv[i], "libraryname") && pattern.is_none() {
            if i + 1 >= argv.len() {
                w.error("ERR library name argument was not given");
                return;
            }
            pattern = Some(argv[i + 1]);
            i += 1;
        } else {
            w.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(argv[i])
            ));
            return;
        }
        i += 1;
    }
    let libs = shared.scripts.libraries();
    let shown: Vec<&Arc<Library>> = libs
        .values()
        .filter(|l| {
            pattern.is_none_or(|p| percore_engine::glob::string_match(p, l.name.as_bytes(), false))
        })
        .collect();
    w.array(shown.len());
    for lib in shown {
        w.map(if with_code { 4 } else { 3 });
        w.bulk(b"library_name");
        w.bulk(lib.name.as_bytes());
        w.bulk(b"engine");
        w.bulk(b"LUA");
        w.bulk(b"functions");
        w.array(lib.functions.len());
        for f in &lib.functions {
            w.map(3);
            w.bulk(b"name");
            w.bulk(f.name.as_bytes());
            w.bulk(b"description");
            match &f.description {
                Some(d) => w.bulk(d),
                None => w.null(),
            }
            w.bulk(b"flags");
            let names: Vec<&str> = sflags::NAMES
                .iter()
                .filter(|(bit, _)| f.flags & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            w.set(names.len());
            for n in names {
                w.simple(n);
            }
        }
        if with_code {
            w.bulk(b"library_code");
            w.bulk(&lib.code);
        }
    }
}

fn function_restore(
    ctx: &mut Ctx,
    shared: &crate::server::ServerShared,
    argv: &[&[u8]],
    w: &mut ReplyWriter,
) {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    if argv.len() > 4 {
        w.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(argv[1])
        ));
        return;
    }
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if eq_ic(p, "flush") => Policy::Flush,
        Some(p) if eq_ic(p, "append") => Policy::Append,
        Some(p) if eq_ic(p, "replace") => Policy::Replace,
        Some(_) => {
            w.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
            return;
        }
    };
    let codes = match scripting::functions::undump(argv[2]) {
        Ok(c) => c,
        Err(text) => {
            w.error(&text);
            return;
        }
    };
    let mut restored = Vec::new();
    for code in codes {
        match compile_library(ctx, &code, None) {
            Ok(lib) => restored.push(lib),
            Err(text) => {
                w.error(&text);
                return;
            }
        }
    }
    let result = shared.scripts.edit_libraries(|libs| {
        if policy == Policy::Flush {
            libs.clear();
        }
        for lib in restored {
            if policy == Policy::Append && libs.contains_key(&lib.name) {
                return Err(format!("ERR Library {} already exists", lib.name));
            }
            add_library(libs, lib, policy != Policy::Append)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => w.ok(),
        Err(text) => w.error(&text),
    }
}

fn function_stats(shared: &crate::server::ServerShared, w: &mut ReplyWriter) {
    w.map(2);
    w.bulk(b"running_script");
    let running = shared
        .scripts
        .busy
        .iter()
        .find_map(|b| b.running.lock().ok().and_then(|r| r.clone()));
    match running {
        None => w.null(),
        Some((name, command, start_ms)) => {
            w.map(3);
            w.bulk(b"name");
            w.bulk(name.as_bytes());
            w.bulk(b"command");
            w.array(command.len());
            for a in &command {
                w.bulk(a);
            }
            w.bulk(b"duration_ms");
            w.int(percore_net::reactor::unix_ms() - start_ms);
        }
    }
    let libs = shared.scripts.libraries();
    w.bulk(b"engines");
    w.map(1);
    w.bulk(b"LUA");
    w.map(2);
    w.bulk(b"libraries_count");
    w.int(libs.len() as i64);
    w.bulk(b"functions_count");
    w.int(libs.values().map(|l| l.functions.len() as i64).sum());
}
