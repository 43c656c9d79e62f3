//! Connection commands: PING, ECHO, SELECT, QUIT, HELLO, AUTH, RESET, CLIENT.

pub mod client;
pub mod clients_info;

pub use client::{client_merge, client_part};

use super::{Ctx, eq_ic, errors, parse_i64, wrong_arity};
use crate::server::REDIS_COMPAT_VERSION;
use percore_net::resp::{Protocol, ReplyWriter};

pub fn ping(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    // RESP2 subscribed mode: Redis answers `["pong", argument or ""]`.
    if w.proto == Protocol::Resp2
        && argv.len() <= 2
        && ctx
            .client
            .as_deref()
            .is_some_and(crate::client::Client::subscribed)
    {
        w.array(2);
        w.bulk(b"pong");
        w.bulk(argv.get(1).copied().unwrap_or_default());
        return;
    }
    match argv.len() {
        1 => w.simple("PONG"),
        2 => w.bulk(argv[1]),
        _ => wrong_arity("ping", w),
    }
}

pub fn echo(_ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    w.bulk(argv[1]);
}

pub fn select(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(db) = parse_i64(argv[1]) else {
        w.error(errors::NOT_INTEGER);
        return;
    };
    if db < 0 || db >= ctx.shard.keyspace.databases() as i64 {
        w.error(errors::DB_INDEX);
        return;
    }
    if let Some(c) = ctx.client.as_deref_mut() {
        c.db = db as usize;
    }
    w.ok();
}

pub fn quit(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    if let Some(c) = ctx.client.as_deref_mut() {
        c.close_after_reply = true;
    }
    w.ok();
}

/// Authenticates the client as `user` (Redis's `ACLAuthenticateUser`).
fn try_auth(ctx: &mut Ctx, by: &[u8], user: &[u8], pass: &[u8]) -> bool {
    let Some(c) = ctx.client.as_deref_mut() else {
        return false;
    };
    crate::acl::authenticate(ctx.shard, c, by, user, pass)
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

pub fn auth(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (user, pass): (&[u8], &[u8]) = match argv.len() {
        2 => (b"default", argv[1]),
        3 => (argv[1], argv[2]),
        _ => {
            w.error(errors::SYNTAX);
            return;
        }
    };
    if argv.len() == 2 && ctx.shard.shared.acl.default_user().nopass {
        w.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        return;
    }
    if try_auth(ctx, argv[0], user, pass) {
        w.ok();
    } else {
        w.error(WRONGPASS);
    }
}

pub fn hello(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let mut proto = None;
    let mut i = 1;
    if argv.len() >= 2 {
        match parse_i64(argv[1]) {
            Some(v) if v == 2 || v == 3 => proto = Some(v),
            Some(_) => {
                w.error("NOPROTO unsupported protocol version");
                return;
            }
            None => {
                w.error("ERR Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
    }
    let mut setname = None;
    let mut auth_pair = None;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if eq_ic(argv[i], "AUTH") && more >= 2 {
            auth_pair = Some((argv[i + 1], argv[i + 2]));
            i += 3;
        } else if eq_ic(argv[i], "SETNAME") && more >= 1 {
            setname = Some(argv[i + 1]);
            i += 2;
        } else {
            w.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(argv[i])
            ));
            return;
        }
    }
    if let Some((user, pass)) = auth_pair
        && !try_auth(ctx, argv[0], user, pass)
    {
        w.error(WRONGPASS);
        return;
    }
    // Redis 7.0 asks for the client's own authentication here, not `authRequired`: a
    // connection that never authenticated gets this even with `requirepass` cleared.
    let authenticated = ctx.client.as_deref().is_some_and(|c| c.authenticated);
    if !authenticated {
        // Redis 7.0's text (7.2 writes `HELLO <proto> AUTH`).
        w.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(name) = setname {
        if let Err(e) = super::server::validate_client_name(name) {
            w.error(e);
            return;
        }
        if let Some(c) = ctx.client.as_deref_mut() {
            c.name = (!name.is_empty()).then(|| name.to_vec());
        }
    }
    let Some(client) = ctx.client.as_deref_mut() else {
        return;
    };
    if let Some(p) = proto {
        client.proto = if p == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
    }
    w.proto = client.proto;
    let id = client.id as i64;
    // Valkey 8.1: `availability_zone` follows when the option is set.
    let zone = ctx
        .shard
        .cfg
        .kept
        .get("availability-zone")
        .filter(|z| !z.is_empty());
    w.map(7 + usize::from(zone.is_some()));
    w.bulk(b"server");
    w.bulk(b"redis");
    w.bulk(b"version");
    w.bulk(REDIS_COMPAT_VERSION.as_bytes());
    w.bulk(b"proto");
    w.int(if w.proto == Protocol::Resp3 { 3 } else { 2 });
    w.bulk(b"id");
    w.int(id);
    w.bulk(b"mode");
    w.bulk(if ctx.shard.cfg.cluster_enabled {
        b"cluster"
    } else {
        b"standalone"
    });
    w.bulk(b"role");
    w.bulk(b"master");
    w.bulk(b"modules");
    w.array(0);
    if let Some(z) = zone {
        w.bulk(b"availability_zone");
        w.bulk(z.as_bytes());
    }
}

/// RESET: back to a fresh connection's state (RESP2, db 0, replies on, no name), and
/// unauthenticated when a password is required.
pub fn reset(ctx: &mut Ctx, _argv: &[&[u8]], w: &mut ReplyWriter) {
    let default = ctx.shard.shared.acl.default_user();
    let authenticated = default.nopass && default.enabled;
    if let Some(c) = ctx.client.as_deref_mut() {
        c.acl_free = default.unrestricted();
        c.acl_user = Some(default);
        crate::pubsub::forget(ctx.shard, c);
        crate::monitor::forget(ctx.shard, c);
        // RESET discards the transaction and drops the watches, as Redis's `clearClientConnectionState`.
        c.multi = None;
        let data = &mut *ctx.shard;
        let mut mail = std::mem::take(&mut data.locks.outgoing);
        crate::atomic::unwatch_all(data, c, |s, m| mail.push((s, m)));
        data.locks.outgoing = mail;
        c.db = 0;
        c.proto = Protocol::Resp2;
        c.name = None;
        c.reply_mode = crate::client::ReplyMode::On;
        c.no_evict = false;
        c.no_touch = false;
        c.authenticated = authenticated;
        c.asking = false;
        c.readonly = false;
    }
    w.proto = Protocol::Resp2;
    w.simple("RESET");
}
