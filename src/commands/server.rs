//! Server commands: DBSIZE, FLUSHALL, FLUSHDB, SWAPDB, TIME, LASTSAVE, SAVE, BGSAVE, INFO,
//! CONFIG, DEBUG, SLOWLOG, LATENCY, COMMAND, SHUTDOWN, and the helpers container commands
//! share (subcommand lookup from the table, HELP replies, local-only parts).

mod command;
pub mod debug;
mod digest;
pub(crate) mod info;
mod latency;
mod slowlog;

pub use command::command;
pub use debug::{debug_merge, debug_part};
pub use info::{info_merge, info_part};
pub use latency::{latency_merge, latency_part};
pub use slowlog::{slowlog_merge, slowlog_part};

use super::{Ctx, Gather, Partial, eq_ic, errors, lookup, parse_i64};
use percore_net::resp::{Protocol, ReplyWriter};
use std::sync::atomic::Ordering;

/// The full name (`client|list`) of the subcommand `argv[1]` of container `argv[0]`, if it
/// exists and its arity accepts `argv`.
pub fn subcommand(argv: &[&[u8]], _proto: Protocol) -> Option<&'static str> {
    let cmd = lookup(argv[0])?;
    let name = argv.get(1)?;
    let (full, arity, _) = cmd.subcommands.iter().find(|(full, _, _)| {
        full.split_once('|')
            .is_some_and(|(_, s)| s.as_bytes().eq_ignore_ascii_case(name))
    })?;
    let n = argv.len() as i32;
    let ok = if *arity >= 0 {
        n == *arity
    } else {
        n >= -*arity
    };
    ok.then_some(*full)
}

/// Redis's error for an unknown subcommand or a subcommand with a wrong argument count.
pub fn subcommand_error(argv: &[&[u8]], w: &mut ReplyWriter) {
    let container = lookup(argv[0]).map_or("", |c| c.name);
    let sub = argv.get(1).copied().unwrap_or_default();
    let known = lookup(argv[0]).and_then(|c| {
        c.subcommands.iter().find(|(full, _, _)| {
            full.split_once('|')
                .is_some_and(|(_, s)| s.as_bytes().eq_ignore_ascii_case(sub))
        })
    });
    match known {
        Some((full, _, _)) => super::wrong_arity(full, w),
        None => w.error(&format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            super::trunc_lossy(sub, 128),
            container.to_ascii_uppercase()
        )),
    }
}

/// Redis's `addReplyHelp`: a header, the lines, and the HELP entry.
pub fn help_reply(w: &mut ReplyWriter, container: &str, lines: &[&str]) {
    w.array(lines.len() + 3);
    w.simple(&format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        w.simple(l);
    }
    w.simple("HELP");
    w.simple("    Prints this help.");
}

/// A part whose reply only the client's own shard writes (the others do nothing).
pub fn local_only(ctx: &mut Ctx, f: impl FnOnce(&mut ReplyWriter)) -> Partial {
    if ctx.client.is_none() {
        return Partial::Unit;
    }
    let mut out = Vec::new();
    f(&mut ReplyWriter::new(&mut out, ctx.proto));
    Partial::Encoded(out)
}

/// `+OK`, as a function to hand to [`local_only`].
pub fn reply_ok(w: &mut ReplyWriter<'_>) {
    w.ok();
}

/// Writes the part that carries a complete reply, if one does.
pub fn write_encoded(g: &Gather, w: &mut ReplyWriter) -> bool {
    for p in g.parts.iter().flatten() {
        if let Partial::Encoded(b) = p {
            w.raw(b);
            return true;
        }
    }
    false
}

pub fn dbsize_part(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    Partial::Int(ctx.shard.keyspace.db(ctx.db).len() as i64)
}

pub fn sum_merge(g: &mut Gather, w: &mut ReplyWriter) {
    super::keyspace::sum_merge(g, w);
}

/// FLUSHALL/FLUSHDB's optional `ASYNC|SYNC`: ASYNC frees big databases on another thread.
fn flush_mode_ok(argv: &[&[u8]]) -> bool {
    match argv.len() {
        1 => true,
        2 => eq_ic(argv[1], "ASYNC") || eq_ic(argv[1], "SYNC"),
        _ => false,
    }
}

pub fn flushall_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if !flush_mode_ok(argv) {
        return local_only(ctx, |w| w.error(errors::SYNTAX));
    }
    crate::atomic::watch::Registry::touch_for(ctx.shard, crate::atomic::watch::Whole::FlushAll);
    if argv.len() == 2 && eq_ic(argv[1], "ASYNC") {
        crate::snapshot::free_later(ctx.shard.keyspace.flush_all_detached());
    } else {
        ctx.shard.keyspace.flush_all();
    }
    Partial::Unit
}

pub fn flushdb_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if !flush_mode_ok(argv) {
        return local_only(ctx, |w| w.error(errors::SYNTAX));
    }
    crate::atomic::watch::Registry::touch_for(
        ctx.shard,
        crate::atomic::watch::Whole::FlushDb(ctx.db),
    );
    if argv.len() == 2 && eq_ic(argv[1], "ASYNC") {
        let old = ctx.shard.keyspace.db_mut(ctx.db).detach_contents();
        crate::snapshot::free_later(old.into_iter().collect());
    } else {
        ctx.shard.keyspace.db_mut(ctx.db).clear();
    }
    Partial::Unit
}

/// OK unless a part carries an error or its own reply.
pub fn ok_merge(g: &mut Gather, w: &mut ReplyWriter) {
    if write_encoded(g, w) {
        return;
    }
    for p in g.parts.iter().flatten() {
        if let Partial::Error(e) = p {
            w.error(e);
            return;
        }
    }
    w.ok();
}

pub fn swapdb_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let dbs = ctx.shard.keyspace.databases() as i64;
    let (Some(a), Some(b)) = (parse_i64(argv[1]), parse_i64(argv[2])) else {
        let text = if parse_i64(argv[1]).is_none() {
            "ERR invalid first DB index"
        } else {
            "ERR invalid second DB index"
        };
        return local_only(ctx, |w| w.error(text));
    };
    if !(0..dbs).contains(&a) || !(0..dbs).contains(&b) {
        return local_only(ctx, |w| w.error(errors::DB_INDEX));
    }
    crate::atomic::watch::Registry::touch_for(
        ctx.shard,
        crate::atomic::watch::Whole::Swap(a as usize, b as usize),
    );
    ctx.shard.keyspace.swap_dbs(a as usize, b as usize);
    Partial::Unit
}

pub fn time(_ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    w.array(2);
    w.bulk_int(now.as_secs() as i64);
    w.bulk_int(i64::from(now.subsec_micros()));
}

pub fn lastsave(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    w.int(ctx.shard.shared.lastsave_s.load(Ordering::Relaxed));
}

fn save_busy(ctx: &Ctx) -> bool {
    ctx.shard
        .shared
        .persist
        .lock()
        .expect("persist lock")
        .running
        .is_some()
}

fn encoded_error(ctx: &Ctx, text: &str) -> Partial {
    let mut out = Vec::new();
    ReplyWriter {
        out: &mut out,
        proto: ctx.proto,
    }
    .error(text);
    Partial::Encoded(out)
}

/// SAVE: a synchronous save at a barrier of all shards; the reply waits for the file.
pub fn save_step(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    if save_busy(ctx) {
        return encoded_error(ctx, "ERR Background save already in progress");
    }
    Partial::Defer(crate::snapshot::Op::Save)
}

/// BGSAVE [SCHEDULE]: starts a fork or forkless snapshot (`default-bgsave-method`).
pub fn bgsave_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if argv.len() > 2 || (argv.len() == 2 && !eq_ic(argv[1], "SCHEDULE")) {
        return encoded_error(ctx, errors::SYNTAX);
    }
    if save_busy(ctx) {
        // As Redis: SCHEDULE only waits for non-RDB children, which percore has none of.
        return encoded_error(ctx, "ERR Background save already in progress");
    }
    Partial::Defer(crate::snapshot::Op::BgSave)
}

/// BGREWRITEAOF: rewrites the AOF's base in the background (`crate::aof`), or schedules
/// it after the save in flight, as Redis 7.0's `bgrewriteaofCommand`.
pub fn bgrewriteaof_step(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    let busy = save_busy(ctx);
    match crate::aof::request_rewrite(&ctx.shard.shared, busy) {
        Err(text) => encoded_error(ctx, text),
        Ok(false) => crate::commands::keyspace::reply(ctx, |w| {
            w.simple("Background append only file rewriting scheduled");
        }),
        Ok(true) => {
            // With `appendonly no` Redis 7.0 rewrites too: a base alone on disk.
            let sh = &mut *ctx.shard;
            if let Err(e) = crate::aof::prepare_offline_rewrite(&sh.shared, &sh.cfg) {
                sh.shared.warning(&format!("BGREWRITEAOF: {e}"));
                return encoded_error(
                    ctx,
                    "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
                );
            }
            Partial::Defer(crate::snapshot::Op::AofRewrite)
        }
    }
}

const CONFIG_HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

fn has_glob(p: &[u8]) -> bool {
    p.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// CONFIG runs on every shard so RESETSTAT reaches all of them; the rest answers from the
/// client's shard only.
pub fn config_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(sub) = subcommand(argv, ctx.proto) else {
        return local_only(ctx, |w| subcommand_error(argv, w));
    };
    if sub == "config|resetstat" {
        ctx.shard.stats.reset();
        ctx.shard.keyspace.reset_expired_keys();
        return local_only(ctx, reply_ok);
    }
    if ctx.client.is_none() {
        return Partial::Unit;
    }
    let mut out = Vec::new();
    let mut w = ReplyWriter::new(&mut out, ctx.proto);
    match sub {
        "config|get" => config_get(ctx, argv, &mut w),
        "config|set" => config_set(ctx, argv, &mut w),
        "config|rewrite" => {
            if let Some(path) = ctx.shard.shared.config_file.clone() {
                match ctx.shard.shared.config().rewrite(&path) {
                    Ok(()) => {
                        ctx.shard
                            .shared
                            .notice("CONFIG REWRITE executed with success.");
                        w.ok();
                    }
                    Err(e) => w.error(&format!("ERR Rewriting config file: {e}")),
                }
            } else {
                w.error("ERR The server is running without a config file");
            }
        }
        _ => help_reply(&mut w, "CONFIG", CONFIG_HELP),
    }
    Partial::Encoded(out)
}

fn config_get(ctx: &Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let cfg = &ctx.shard.cfg;
    let mut pairs: Vec<(String, &'static str, String)> = Vec::new();
    for pat in &argv[2..] {
        for (k, v) in cfg.get_matching(pat) {
            if !pairs.iter().any(|(_, n, _)| *n == k) {
                // Redis echoes a glob-free name as the caller typed it.
                let shown = if has_glob(pat) {
                    k.to_string()
                } else {
                    String::from_utf8_lossy(pat).into_owned()
                };
                pairs.push((shown, k, v));
            }
        }
    }
    w.map(pairs.len());
    for (shown, _, v) in pairs {
        w.bulk(shown.as_bytes());
        w.bulk(v.as_bytes());
    }
}

/// The options whose CONFIG SET counts the good replicas again (Redis's `updateGoodSlaves`).
const GOOD_REPLICAS: [&str; 4] = [
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "min-slaves-to-write",
    "min-slaves-max-lag",
];

fn config_set(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if !argv.len().is_multiple_of(2) {
        w.error(errors::SYNTAX);
        return;
    }
    let pairs: Vec<(&[u8], &[u8])> = argv[2..].chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let local = ctx
        .client
        .as_deref()
        .is_some_and(crate::client::Client::is_local);
    if let Some(e) = ctx.shard.cfg.refuse_protected_remote(&pairs, local) {
        w.error(&e);
        return;
    }
    let shared = &ctx.shard.shared;
    match shared.update_config(|c| {
        let before = c.clone();
        crate::tls::config_set(shared, c, &pairs)?;
        crate::listen::apply(shared, &before, c).inspect_err(|_| *c = before.clone())?;
        let replica = shared
            .repl
            .is_replica
            .load(std::sync::atomic::Ordering::Relaxed);
        crate::config::kept::oom_config_set(&before, c, &pairs, replica, |m| shared.warning(m))
    }) {
        Ok(()) => {
            if pairs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(b"requirepass"))
            {
                // Redis's `updateRequirePass`: the default user's password follows.
                let pass = ctx.shard.shared.config().requirepass;
                ctx.shard.shared.acl.set_default_password(&pass);
            }
            // A lower `maxmemory` evicts from the shards' next tick on (Redis 7.0's
            // `updateMaxmemory` starts its eviction time event), so a CLIENT PAUSE later
            // in the same transaction holds it back.
            ctx.shard.refresh_config();
            if pairs
                .iter()
                .any(|(k, _)| GOOD_REPLICAS.iter().any(|g| eq_ic(k, g)))
            {
                // Redis's `updateGoodSlaves`: the good replicas are counted again at once.
                crate::replication::primary::refresh_good_now(&ctx.shard.shared);
            }
            ctx.shard.shared.log.set_level(ctx.shard.cfg.loglevel);
            ctx.shard.stats.latency_tracking = ctx.shard.cfg.latency_tracking;
            w.ok();
        }
        Err(e) => w.error(&e),
    }
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: with save points (or SAVE), the final
/// save runs at a barrier first; the server exits once it succeeded (or with FORCE).
pub fn shutdown_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let (mut nosave, mut save, mut force, mut abort) = (false, false, false, false);
    for a in &argv[1..] {
        if eq_ic(a, "NOSAVE") {
            nosave = true;
        } else if eq_ic(a, "SAVE") {
            save = true;
        } else if eq_ic(a, "NOW") {
        } else if eq_ic(a, "FORCE") {
            force = true;
        } else if eq_ic(a, "ABORT") {
            abort = true;
        } else {
            return encoded_error(ctx, errors::SYNTAX);
        }
    }
    if (abort && argv.len() > 2) || (nosave && save) {
        return encoded_error(ctx, errors::SYNTAX);
    }
    if abort {
        // Shutdown is immediate here, so none is ever in progress.
        return encoded_error(ctx, "ERR No shutdown in progress.");
    }
    if !nosave && let Some(busy) = ctx.shard.shared.scripts.busy_error() {
        // A busy script: only SHUTDOWN NOSAVE goes on (Redis's `shutdownCommand`).
        return encoded_error(ctx, busy);
    }
    ctx.shard.shared.warning("User requested shutdown...");
    if save || (!nosave && !ctx.shard.cfg.save.is_empty()) {
        ctx.shard
            .shared
            .notice("Saving the final RDB snapshot before exiting.");
        return Partial::Defer(crate::snapshot::Op::ShutdownSave { force });
    }
    if let Some(r) = ctx
        .shard
        .shared
        .persist
        .lock()
        .expect("persist lock")
        .running
        .take()
    {
        ctx.shard
            .shared
            .warning("There is a child saving an .rdb. Killing it!");
        crate::snapshot::stop_running(&r);
    }
    ctx.shard.shutdown_requested = true;
    // Redis closes the connection without a reply; the client sees the socket close.
    Partial::Encoded(Vec::new())
}

/// Redis's rule for client names: no spaces, newlines or other special characters.
pub fn validate_client_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        Err("ERR Client names cannot contain spaces, newlines or special characters.")
    } else {
        Ok(())
    }
}
