//! Server commands: DBSIZE, FLUSHALL, FLUSHDB, INFO, CONFIG, SHUTDOWN, ...

use super::{Ctx, Gather, Partial, eq_ic, errors};
use percore_net::resp::ReplyWriter;

pub fn dbsize_part(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    Partial::Int(ctx.shard.keyspace.db(ctx.db).len() as i64)
}

pub fn sum_merge(g: &mut Gather, w: &mut ReplyWriter) {
    super::keyspace::sum_merge(g, w);
}

pub fn flushall_part(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    ctx.shard.keyspace.flush_all();
    Partial::Unit
}

pub fn ok_merge(g: &mut Gather, w: &mut ReplyWriter) {
    for p in g.parts.iter().flatten() {
        if let Partial::Error(e) = p {
            w.error(e);
            return;
        }
    }
    w.ok();
}

pub fn info_part(ctx: &mut Ctx, _argv: &[&[u8]]) -> Partial {
    let mut s = String::new();
    for i in 0..ctx.shard.keyspace.databases() {
        let db = ctx.shard.keyspace.db(i);
        if !db.is_empty() {
            s.push_str(&format!("db{i}:{}:{}\n", db.len(), db.expires_len()));
        }
    }
    Partial::Text(s)
}

pub fn info_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let mut keys = std::collections::BTreeMap::<usize, (u64, u64)>::new();
    for p in g.parts.iter().flatten() {
        if let Partial::Text(t) = p {
            for line in t.lines() {
                let mut it = line.split(':');
                let (Some(db), Some(k), Some(e)) = (it.next(), it.next(), it.next()) else {
                    continue;
                };
                let db: usize = db.trim_start_matches("db").parse().unwrap_or(0);
                let e0 = keys.entry(db).or_default();
                e0.0 += k.parse::<u64>().unwrap_or(0);
                e0.1 += e.parse::<u64>().unwrap_or(0);
            }
        }
    }
    let mut text = format!(
        "# Server\r\nredis_version:{}\r\npercore_version:{}\r\n\r\n# Keyspace\r\n",
        crate::server::REDIS_COMPAT_VERSION,
        crate::server::VERSION
    );
    for (db, (k, e)) in keys {
        text.push_str(&format!("db{db}:keys={k},expires={e},avg_ttl=0\r\n"));
    }
    w.verbatim("txt", text.as_bytes());
}

pub fn config(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = argv[1];
    if eq_ic(sub, "GET") && argv.len() >= 3 {
        let cfg = ctx.shard.shared.config();
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pat in &argv[2..] {
            for (k, v) in cfg.get_matching(pat) {
                if !pairs.iter().any(|(n, _)| *n == k) {
                    pairs.push((k, v));
                }
            }
        }
        w.map(pairs.len());
        for (k, v) in pairs {
            w.bulk(k.as_bytes());
            w.bulk(v.as_bytes());
        }
    } else if eq_ic(sub, "SET") && argv.len() >= 4 && argv.len() % 2 == 0 {
        let pairs: Vec<(&[u8], &[u8])> = argv[2..].chunks_exact(2).map(|p| (p[0], p[1])).collect();
        match ctx.shard.shared.update_config(|c| c.set_many(&pairs)) {
            Ok(()) => {
                ctx.shard.refresh_config();
                w.ok();
            }
            Err(e) => w.error(&e),
        }
    } else if eq_ic(sub, "RESETSTAT") && argv.len() == 2 {
        ctx.shard.stats.reset();
        w.ok();
    } else if eq_ic(sub, "REWRITE") && argv.len() == 2 {
        let Some(path) = ctx.shard.shared.config_file.clone() else {
            w.error("ERR The server is running without a config file");
            return;
        };
        match ctx.shard.shared.config().rewrite(&path) {
            Ok(()) => w.ok(),
            Err(e) => w.error(&format!("ERR Rewriting config file: {e}")),
        }
    } else {
        w.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
}

pub fn shutdown(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let mut save = None;
    for a in &argv[1..] {
        if eq_ic(a, "NOSAVE") {
            save = Some(false);
        } else if eq_ic(a, "SAVE") {
            save = Some(true);
        } else if eq_ic(a, "NOW") || eq_ic(a, "FORCE") || eq_ic(a, "ABORT") {
        } else {
            w.error(errors::SYNTAX);
            return;
        }
    }
    if save == Some(true) {
        ctx.shard
            .shared
            .warning("Error trying to save the DB: snapshots are not implemented yet, can't exit.");
        w.error("ERR Errors trying to SHUTDOWN. Check logs.");
        return;
    }
    ctx.shard.shared.warning("User requested shutdown...");
    ctx.shard.shutdown_requested = true;
    // Redis closes the connection without a reply; the client sees the socket close.
    if let Some(c) = ctx.client.as_deref_mut() {
        c.close_after_reply = true;
    }
}

/// Redis's rule for client names: no spaces, newlines or other special characters.
pub fn validate_client_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        Err("ERR Client names cannot contain spaces, newlines or special characters.")
    } else {
        Ok(())
    }
}
