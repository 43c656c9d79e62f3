//! Replication commands: REPLICAOF / SLAVEOF, ROLE, REPLCONF, PSYNC, SYNC, WAIT.

use super::{Ctx, Partial, eq_ic, errors};
use crate::replication::config::Primary;
use percore_net::resp::ReplyWriter;

fn encoded(ctx: &Ctx, f: impl FnOnce(&mut ReplyWriter)) -> Partial {
    Partial::Encoded(super::multikey::encoded(ctx.proto, f))
}

/// REPLICAOF host port | NO ONE: the role changes at a cancelling barrier (every in-flight
/// snapshot stopped on every shard) before the reply.
pub fn replicaof_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    if ctx.shard.cluster.is_some() {
        return encoded(ctx, |w| {
            w.error("ERR REPLICAOF not allowed in cluster mode.");
        });
    }
    let target = if eq_ic(argv[1], "no") && eq_ic(argv[2], "one") {
        None
    } else {
        let port = std::str::from_utf8(argv[2])
            .ok()
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|p| (0..=65535).contains(p));
        let Some(port) = port else {
            return encoded(ctx, |w| w.error("ERR Invalid master port"));
        };
        Some(Primary {
            host: String::from_utf8_lossy(argv[1]).into_owned(),
            port: port as u16,
        })
    };
    match crate::replication::request_replicaof(&ctx.shard.shared, target) {
        Some(reply) => Partial::Encoded(reply.as_bytes().to_vec()),
        None => Partial::Defer(crate::snapshot::Op::Replication(
            crate::replication::BarrierOp::ReplicaOf,
        )),
    }
}

/// ROLE.
pub fn role(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    crate::replication::primary::settle(ctx.shard);
    crate::replication::write_role(&ctx.shard.shared, w);
}

/// REPLCONF option value ...: the handshake options a replica sends answer +OK; GETACK
/// (from our primary) asks for an ACK and ACK (from a replica) gets no reply.
pub fn replconf(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len().is_multiple_of(2) {
        w.error(errors::SYNTAX);
        return;
    }
    let master = ctx.client.as_deref().is_some_and(|c| c.master);
    for pair in argv[1..].chunks(2) {
        let opt = pair[0];
        if eq_ic(opt, "getack") {
            if master {
                ctx.shard.repl.ack_due = true;
            }
            return;
        }
        if eq_ic(opt, "ack") {
            return;
        }
        if eq_ic(opt, "listening-port") {
            let port = std::str::from_utf8(pair[1])
                .ok()
                .and_then(|p| p.parse::<u16>().ok());
            if let (Some(c), Some(port)) = (ctx.client.as_deref_mut(), port) {
                c.replica_port = Some(port);
            }
        }
        if eq_ic(opt, "capa")
            && eq_ic(pair[1], "eof")
            && let Some(c) = ctx.client.as_deref_mut()
        {
            c.replica_capa_eof = true;
        }
        let known = [
            "listening-port",
            "ip-address",
            "capa",
            "rdb-only",
            "rdb-filter-only",
        ]
        .iter()
        .any(|k| eq_ic(opt, k));
        if !known {
            w.error(&format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            ));
            return;
        }
    }
    w.ok();
}

/// PSYNC replid offset: the connection becomes a replica's link, served by its own
/// threads (`replication::primary`); the shard closes its side without a reply.
pub fn psync(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    replica_link(ctx, argv[1], argv[2], false, w);
}

/// SYNC: the old protocol's full sync (the RDB, then the stream; no `+FULLRESYNC`).
pub fn sync(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    replica_link(ctx, b"?", b"-1", true, w);
}

fn replica_link(ctx: &mut Ctx, replid: &[u8], offset: &[u8], pre_psync: bool, w: &mut ReplyWriter) {
    let Some(client) = ctx.client.as_deref_mut() else {
        return;
    };
    if client.multi.is_some() {
        w.error("ERR Command not allowed inside a transaction");
        return;
    }
    let tls = crate::tls::is_tls_link(&ctx.shard.shared, client.fd);
    let offset = std::str::from_utf8(offset)
        .ok()
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(-1);
    match crate::replication::primary::psync(
        &ctx.shard.shared,
        client.fd,
        &client.peer,
        crate::replication::primary::Announced {
            listening_port: client.replica_port,
            capa_eof: client.replica_capa_eof,
            tls,
        },
        replid,
        offset,
        pre_psync,
    ) {
        Ok(id) => {
            if tls {
                client.tls_replica = Some(id);
            }
            client.reply_mode = crate::client::ReplyMode::Off;
            ctx.shard.to_close.push(client.conn);
        }
        Err(e) => w.error(e),
    }
}

/// Longest WAIT timeout, ms: beyond it the deadline would overflow (Valkey's check; 7.0
/// has none and overflows).
const WAIT_TIMEOUT_MAX_MS: i64 = i64::MAX / 2;

/// WAIT numreplicas timeout: the number of replicas that acknowledged this client's writes
/// (`replication::wait`); blocks the client, not the shard, up to `timeout` ms (0: for
/// ever).
pub fn wait(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if ctx
        .shard
        .shared
        .repl
        .is_replica
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        w.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
        return;
    }
    let Some(numreplicas) = super::parse_i64(argv[1]) else {
        w.error(errors::NOT_INTEGER);
        return;
    };
    let Some(timeout_ms) = super::parse_i64(argv[2]) else {
        w.error("ERR timeout is not an integer or out of range");
        return;
    };
    if timeout_ms < 0 {
        w.error("ERR timeout is negative");
        return;
    }
    if timeout_ms > WAIT_TIMEOUT_MAX_MS {
        w.error("ERR timeout is out of range");
        return;
    }
    crate::replication::wait::start(
        ctx.shard,
        ctx.client.as_deref_mut(),
        numreplicas,
        timeout_ms,
        w,
    );
}
