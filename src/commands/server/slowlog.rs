//! SLOWLOG: each shard keeps its own log; GET merges them by entry id (ids are global).

use super::super::{Ctx, Gather, Partial, parse_i64};
use super::{help_reply, local_only};
use percore_net::resp::frame::{Frame, decode_frame};
use percore_net::resp::{Protocol, ReplyWriter};

const HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

/// SLOWLOG GET's default count.
const SLOWLOG_GET_DEFAULT_COUNT: i64 = 10;

pub fn slowlog_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(sub) = super::subcommand(argv, ctx.proto) else {
        return local_only(ctx, |w| {
            super::subcommand_error(argv, w);
        });
    };
    match sub {
        "slowlog|help" => local_only(ctx, |w| help_reply(w, "SLOWLOG", HELP)),
        "slowlog|len" => Partial::Int(ctx.shard.stats.slowlog.len() as i64),
        "slowlog|reset" => {
            ctx.shard.stats.slowlog.clear();
            Partial::Unit
        }
        "slowlog|get" => {
            let count = match argv.get(2) {
                None => SLOWLOG_GET_DEFAULT_COUNT,
                Some(a) => match parse_i64(a) {
                    Some(n) if n >= -1 => n,
                    _ => {
                        return local_only(ctx, |w| {
                            w.error("ERR count should be greater than or equal to -1");
                        });
                    }
                },
            };
            let take = usize::try_from(count).unwrap_or(usize::MAX);
            let entries = ctx
                .shard
                .stats
                .slowlog
                .iter()
                .take(take)
                .map(|e| {
                    let mut b = Vec::new();
                    let mut w = ReplyWriter::new(&mut b, Protocol::Resp2);
                    w.array(6);
                    w.int(e.id as i64);
                    w.int(e.time_s);
                    w.int(e.duration_us as i64);
                    w.array(e.argv.len());
                    for a in &e.argv {
                        w.bulk(a);
                    }
                    w.bulk(e.peer.as_bytes());
                    w.bulk(e.name.as_bytes());
                    b
                })
                .collect();
            Partial::Keys(entries)
        }
        _ => local_only(ctx, |w| super::subcommand_error(argv, w)),
    }
}

pub fn slowlog_merge(g: &mut Gather, w: &mut ReplyWriter) {
    if super::write_encoded(g, w) {
        return;
    }
    let sub = g.subcommand();
    match sub.as_slice() {
        b"len" => {
            let n: i64 = g
                .parts
                .iter()
                .flatten()
                .map(|p| if let Partial::Int(n) = p { *n } else { 0 })
                .sum();
            w.int(n);
        }
        b"reset" => w.ok(),
        _ => {
            let count = g
                .argv
                .get(2)
                .and_then(|a| parse_i64(a))
                .unwrap_or(SLOWLOG_GET_DEFAULT_COUNT);
            let mut entries: Vec<(i64, Frame)> = Vec::new();
            for p in g.parts.iter().flatten() {
                if let Partial::Keys(list) = p {
                    for e in list {
                        if let Ok(Some((f, _))) = decode_frame(e) {
                            let id = match &f {
                                Frame::Array(items) => match items.first() {
                                    Some(Frame::Int(id)) => *id,
                                    _ => 0,
                                },
                                _ => 0,
                            };
                            entries.push((id, f));
                        }
                    }
                }
            }
            entries.sort_by_key(|e| std::cmp::Reverse(e.0));
            entries.truncate(usize::try_from(count).unwrap_or(usize::MAX));
            w.array(entries.len());
            for (_, f) in &entries {
                f.write(w);
            }
        }
    }
}
