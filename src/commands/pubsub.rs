//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.
//!
//! (Un)subscribing runs on the connection's own shard (its registry knows its own
//! connections); PUBLISH, SPUBLISH and PUBSUB run on every shard and merge (see
//! `crate::pubsub`).

use super::server::{help_reply, local_only, write_encoded};
use super::{Command, Ctx, Gather, Partial, eq_ic};
use crate::pubsub::{self, Kind};
use percore_engine::glob::string_match;
use percore_net::resp::ReplyWriter;
use std::collections::HashSet;

/// The commands whose answers are all pushes (subscription confirmations; RESP3 push
/// frames, RESP2 arrays), which CLIENT REPLY OFF/SKIP does not silence.
pub fn answers_with_pushes(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ssubscribe" | "sunsubscribe"
    )
}

/// The commands a RESP2 client may run while subscribed.
pub fn allowed_when_subscribed(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Redis's refusal of another command in RESP2 subscribed mode; a container command is
/// named with its subcommand (`client|list`).
pub fn subscribed_mode_error(cmd: &Command, argv: &[&[u8]]) -> String {
    let prefix = cmd.name.len() + 1;
    let full = argv
        .get(1)
        .and_then(|sub| {
            cmd.subcommands.iter().find(|(full, _, _)| {
                full.len() > prefix && full.as_bytes()[prefix..].eq_ignore_ascii_case(sub)
            })
        })
        .map_or(cmd.name, |(full, _, _)| *full);
    format!(
        "ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )
}

fn count_of(client: &crate::client::Client, kind: Kind) -> usize {
    if kind == Kind::Shard {
        client.ssubs.len()
    } else {
        client.sub_count()
    }
}

/// One (un)subscribe confirmation: `[verb, name or null, count]`, a push in RESP3.
fn confirm(w: &mut ReplyWriter, verb: &[u8], name: Option<&[u8]>, count: usize) {
    w.push(3);
    w.bulk(verb);
    match name {
        Some(n) => w.bulk(n),
        None => w.null(),
    }
    w.int(count as i64);
}

fn subscribe_kind(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, kind: Kind) {
    let Some(client) = ctx.client.as_deref_mut() else {
        return;
    };
    for name in &argv[1..] {
        pubsub::subscribe(ctx.shard, client, kind, name);
        confirm(w, kind.verb(true), Some(name), count_of(client, kind));
    }
}

fn unsubscribe_kind(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, kind: Kind) {
    let Some(client) = ctx.client.as_deref_mut() else {
        return;
    };
    let verb = kind.verb(false);
    if argv.len() > 1 {
        for name in &argv[1..] {
            pubsub::unsubscribe(ctx.shard, client, kind, name);
            confirm(w, verb, Some(name), count_of(client, kind));
        }
        return;
    }
    let all: Vec<Box<[u8]>> = client.subs_mut(kind).iter().cloned().collect();
    if all.is_empty() {
        confirm(w, verb, None, count_of(client, kind));
        return;
    }
    for name in all {
        pubsub::unsubscribe(ctx.shard, client, kind, &name);
        confirm(w, verb, Some(&name), count_of(client, kind));
    }
}

pub fn subscribe(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    subscribe_kind(ctx, argv, w, Kind::Channel);
}

pub fn psubscribe(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    subscribe_kind(ctx, argv, w, Kind::Pattern);
}

pub fn ssubscribe(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    subscribe_kind(ctx, argv, w, Kind::Shard);
}

pub fn unsubscribe(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    unsubscribe_kind(ctx, argv, w, Kind::Channel);
}

pub fn punsubscribe(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    unsubscribe_kind(ctx, argv, w, Kind::Pattern);
}

pub fn sunsubscribe(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    unsubscribe_kind(ctx, argv, w, Kind::Shard);
}

/// PUBLISH channel message: this shard's receivers (channel and pattern subscribers).
pub fn publish_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let client = ctx.client.as_deref_mut();
    Partial::Int(pubsub::publish(
        ctx.shard,
        client,
        Kind::Channel,
        argv[1],
        argv[2],
    ))
}

/// SPUBLISH shardchannel message: this shard's receivers of the shard channel.
pub fn spublish_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let client = ctx.client.as_deref_mut();
    Partial::Int(pubsub::publish(
        ctx.shard,
        client,
        Kind::Shard,
        argv[1],
        argv[2],
    ))
}

const PUBSUB_HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

/// PUBSUB's part: this shard's channel names (CHANNELS, SHARDCHANNELS, and the patterns
/// for NUMPAT, which counts distinct patterns) or subscriber counts (NUMSUB,
/// SHARDNUMSUB, one per channel asked, as 8 native-endian bytes).
pub fn pubsub_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sub = argv[1];
    if eq_ic(sub, "help") {
        return local_only(ctx, |w| help_reply(w, "PUBSUB", PUBSUB_HELP));
    }
    if (eq_ic(sub, "channels") || eq_ic(sub, "shardchannels")) && argv.len() > 3 {
        let text = format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            super::trunc_lossy(sub, 128)
        );
        return local_only(ctx, |w| w.error(&text));
    }
    let reg = &ctx.shard.pubsub;
    let names = |map: &std::collections::HashMap<Box<[u8]>, Vec<_>>| {
        let pattern = argv.get(2).copied();
        Partial::Keys(
            map.keys()
                .filter(|k| pattern.is_none_or(|p| string_match(p, k, false)))
                .map(|k| k.to_vec())
                .collect(),
        )
    };
    let counts = |map: &std::collections::HashMap<Box<[u8]>, Vec<_>>| {
        Partial::Values(
            argv[2..]
                .iter()
                .map(|ch| {
                    let n = map.get(*ch).map_or(0, Vec::len) as u64;
                    Some(n.to_ne_bytes().to_vec())
                })
                .collect(),
        )
    };
    if eq_ic(sub, "channels") {
        names(&reg.channels)
    } else if eq_ic(sub, "shardchannels") {
        names(&reg.shard_channels)
    } else if eq_ic(sub, "numpat") {
        Partial::Keys(reg.patterns.keys().map(|k| k.to_vec()).collect())
    } else if eq_ic(sub, "numsub") {
        counts(&reg.channels)
    } else {
        counts(&reg.shard_channels)
    }
}

pub fn pubsub_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let sub = g.argv.get(1).map_or(&[][..], Vec::as_slice);
    if write_encoded(g, w) {
        return;
    }
    if eq_ic(sub, "numsub") || eq_ic(sub, "shardnumsub") {
        let asked = &g.argv[2..];
        let mut totals = vec![0u64; asked.len()];
        for p in g.parts.iter().flatten() {
            if let Partial::Values(vs) = p {
                for (t, v) in totals.iter_mut().zip(vs) {
                    if let Some(b) = v.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                        *t += u64::from_ne_bytes(b);
                    }
                }
            }
        }
        w.array(asked.len() * 2);
        for (ch, n) in asked.iter().zip(totals) {
            w.bulk(ch);
            w.int(n as i64);
        }
        return;
    }
    // A name subscribed on several shards is listed (or counted) once.
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut names = Vec::new();
    for p in g.parts.iter().flatten() {
        if let Partial::Keys(ks) = p {
            for k in ks {
                if seen.insert(k) {
                    names.push(k.as_slice());
                }
            }
        }
    }
    if eq_ic(sub, "numpat") {
        w.int(names.len() as i64);
        return;
    }
    w.array(names.len());
    for n in names {
        w.bulk(n);
    }
}
