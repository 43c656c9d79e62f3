//! CLIENT: runs on every shard so LIST and KILL see every connection; the subcommands
//! about the calling connection answer from its own shard only.

use super::super::server::{help_reply, local_only, subcommand, subcommand_error, write_encoded};
use super::super::{Ctx, Gather, Partial, eq_ic, errors, parse_i64};
use crate::client::{Client, ReplyMode};
use percore_net::resp::{Protocol, ReplyWriter};
use std::fmt::Write as _;

const HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "CAPA <option> [options...]",
    "    The client claims its some capability options. Options are:",
    "    * REDIRECT",
    "      The client can handle redirection during primary and replica failover in standalone mode.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id> [<client-id>...]",
    "      Kill connections by client ids.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * USER <username>",
    "      Return clients authenticated by <username>.",
    "    * ADDR <ip:port>",
    "      Return clients connected from the specified address.",
    "    * LADDR <ip:port>",
    "      Return clients connected to the specified local address.",
    "    * ID <client-id> [<client-id>...]",
    "      Return clients with the specified IDs.",
    "    * SKIPME (YES|NO)",
    "      Exclude the current client from the list (default: no).",
    "    * MAXAGE <maxage>",
    "      List connections older than the specified age.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
];

/// One CLIENT LIST / CLIENT INFO line (without the trailing newline), as Valkey 8 (Redis
/// 7.0's fields and Valkey's additions). `running`: `c` is the client running this
/// command (`argv`), which `tot-cmds` does not count yet (Valkey counts a command once it
/// ran) and whose arguments show as `argv-mem`.
pub fn client_line(c: &Client, running: Option<&[&[u8]]>, now_ms: i64, out: &mut String) {
    let argv_mem = running.map_or(0, |a| a.iter().map(|x| x.len()).sum());
    let mem = crate::client_mem::usage(c, argv_mem);
    // In Redis 7.0's order (`getClientInfoString`).
    let mut flags = String::new();
    if c.monitor {
        flags.push('O');
    }
    if c.subscribed() {
        flags.push('P');
    }
    if c.multi.is_some() {
        flags.push('x');
    }
    if c.blocked.is_some() {
        flags.push('b');
    }
    if c.close_after_reply {
        flags.push('c');
    }
    if c.readonly {
        flags.push('r');
    }
    if c.no_evict {
        flags.push('e');
    }
    if c.no_touch {
        flags.push('T');
    }
    if let Some(t) = &c.tracking {
        flags.push('t');
        if t.broken_redirect {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let name = c
        .name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    // Valkey 8's fields: `watch` after `multi`, the library and traffic ones at the end.
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name={name} age={} idle={} flags={flags} db={} \
         sub={} psub={} ssub={} multi={} watch={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} \
         rbs={} rbp=0 obl=0 oll={} omem={} tot-mem={} events=r cmd={} user={} redir={} resp={} \
         lib-name={} lib-ver={} tot-net-in={} tot-net-out={} tot-cmds={}",
        c.id,
        c.peer,
        c.local,
        c.fd,
        (now_ms - c.created_ms).max(0) / 1000,
        (now_ms - c.last_interaction_ms).max(0) / 1000,
        c.db,
        c.subs.len(),
        c.psubs.len(),
        c.ssubs.len(),
        c.multi.as_ref().map_or(-1, |m| m.cmds.len() as i64),
        c.watched.len(),
        mem.qbuf,
        mem.qbuf_free,
        mem.argv_mem,
        mem.multi_mem,
        crate::client_mem::REPLY_BUF_BYTES,
        c.pending.len(),
        mem.omem,
        mem.tot_mem,
        c.last_cmd,
        crate::acl::user_name(c),
        crate::tracking::redirect_of(c),
        if c.proto == Protocol::Resp3 { 3 } else { 2 },
        c.lib_name.as_deref().unwrap_or_default(),
        c.lib_ver.as_deref().unwrap_or_default(),
        c.net_in,
        c.net_out,
        c.tot_cmds.saturating_sub(u64::from(running.is_some())),
    );
}

/// CLIENT KILL's and CLIENT LIST's filter: Redis 7.0's options, and Valkey 8.1's
/// additions (several IDs after `ID`, `MAXAGE`, and for LIST all of KILL's options).
#[derive(Default)]
struct ClientFilter {
    ids: Option<Vec<u64>>,
    /// `MAXAGE s`: only clients connected for at least `s` seconds.
    max_age: Option<i64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    /// `TYPE replica|slave` matches nothing here (a replica's link leaves its shard).
    type_none: bool,
    /// `TYPE master`: a replica's link to its primary (the master client).
    type_master: bool,
    /// `TYPE normal` (false) or `TYPE pubsub` (true): a subscribed client is of the
    /// pubsub type.
    type_pubsub: Option<bool>,
    user: Option<String>,
    skipme: bool,
}

impl ClientFilter {
    /// CLIENT KILL's arguments: `KILL addr` (which may kill the caller) or option pairs
    /// (`SKIPME yes` by default).
    fn parse_kill(argv: &[&[u8]]) -> Result<Self, String> {
        if argv.len() == 3 {
            return Ok(ClientFilter {
                addr: Some(argv[2].to_vec()),
                ..ClientFilter::default()
            });
        }
        Self::parse_options(&argv[2..], true)
    }

    /// CLIENT LIST's arguments (none: every client). `ID id...` answers as Redis 7.0
    /// (any integer, ids below 1 match nothing; a non-integer is `Invalid client ID`
    /// unless the rest reads as Valkey's options, as `ID 3 4 TYPE normal`).
    fn parse_list(argv: &[&[u8]]) -> Result<Self, String> {
        let args = &argv[2..];
        if args.len() > 1 && eq_ic(args[0], "ID") {
            if args[1..].iter().all(|a| parse_i64(a).is_some()) {
                let ids = args[1..].iter().filter_map(|a| parse_i64(a));
                return Ok(ClientFilter {
                    ids: Some(ids.map(|n| u64::try_from(n).unwrap_or(0)).collect()),
                    ..ClientFilter::default()
                });
            }
            return Self::parse_options(args, false).map_err(|_| "ERR Invalid client ID".into());
        }
        Self::parse_options(args, false)
    }

    /// Option pairs in Valkey's `parseClientFiltersOrReply` order, so a bad value is
    /// reported before a missing one; `ID` takes every integer that follows it.
    fn parse_options(args: &[&[u8]], skipme: bool) -> Result<Self, String> {
        const ID_ERROR: &str = "ERR client-id should be greater than 0";
        let mut f = ClientFilter {
            skipme,
            ..ClientFilter::default()
        };
        let mut at = 0;
        while at < args.len() {
            let k = args[at];
            let Some(&v) = args.get(at + 1) else {
                return Err(errors::SYNTAX.into());
            };
            at += 2;
            if eq_ic(k, "ID") {
                let ids = f.ids.get_or_insert_with(Vec::new);
                // The first value is Redis 7.0's (an integer above 0); Valkey's further
                // ones run to the first argument that is not an integer.
                match parse_i64(v) {
                    Some(n) if n > 0 => ids.push(n as u64),
                    _ => return Err(ID_ERROR.into()),
                }
                while let Some(n) = args.get(at).and_then(|a| parse_i64(a)) {
                    if n < 1 {
                        return Err(ID_ERROR.into());
                    }
                    ids.push(n as u64);
                    at += 1;
                }
            } else if eq_ic(k, "MAXAGE") {
                match parse_i64(v) {
                    Some(n) if n > 0 => f.max_age = Some(n),
                    Some(_) => return Err("ERR maxage should be greater than 0".into()),
                    None => return Err("ERR maxage is not an integer or out of range".into()),
                }
            } else if eq_ic(k, "TYPE") {
                if eq_ic(v, "normal") {
                    f.type_pubsub = Some(false);
                } else if eq_ic(v, "pubsub") {
                    f.type_pubsub = Some(true);
                } else if eq_ic(v, "master") {
                    f.type_master = true;
                } else if ["replica", "slave"].iter().any(|t| eq_ic(v, t)) {
                    f.type_none = true;
                } else {
                    return Err(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(v)
                    ));
                }
            } else if eq_ic(k, "ADDR") {
                f.addr = Some(v.to_vec());
            } else if eq_ic(k, "LADDR") {
                f.laddr = Some(v.to_vec());
            } else if eq_ic(k, "USER") {
                // Checked against the registry by the caller (`unknown_user`).
                f.user = Some(String::from_utf8_lossy(v).into_owned());
            } else if eq_ic(k, "SKIPME") {
                if eq_ic(v, "yes") {
                    f.skipme = true;
                } else if eq_ic(v, "no") {
                    f.skipme = false;
                } else {
                    return Err(errors::SYNTAX.into());
                }
            } else {
                return Err(errors::SYNTAX.into());
            }
        }
        Ok(f)
    }

    /// `No such user` when the filter names a user the registry does not have.
    fn unknown_user(&self, ctx: &Ctx) -> Option<String> {
        let u = self.user.as_deref()?;
        ctx.shard
            .shared
            .acl
            .user(u)
            .is_none()
            .then(|| format!("ERR No such user '{u}'"))
    }

    fn matches(&self, c: &Client, now_ms: i64) -> bool {
        !self.type_none
            && (!self.type_master || c.master)
            && self
                .type_pubsub
                .is_none_or(|p| !c.master && p == c.subscribed())
            && self
                .user
                .as_deref()
                .is_none_or(|u| u == crate::acl::user_name(c))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
            && self.addr.as_deref().is_none_or(|a| a == c.peer.as_bytes())
            && self
                .laddr
                .as_deref()
                .is_none_or(|a| a == c.local.as_bytes())
            && self
                .max_age
                .is_none_or(|age| (now_ms - c.created_ms).max(0) / 1000 >= age)
    }
}

pub fn client_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let Some(sub) = subcommand(argv, ctx.proto) else {
        return local_only(ctx, |w| subcommand_error(argv, w));
    };
    if let Some(c) = ctx.client.as_deref_mut() {
        c.last_cmd = sub;
    }
    let now = ctx.shard.now_ms;
    match sub {
        "client|list" => {
            let f = match ClientFilter::parse_list(argv) {
                Ok(f) => f,
                Err(e) => return local_only(ctx, |w| w.error(&e)),
            };
            if let Some(e) = f.unknown_user(ctx) {
                return local_only(ctx, |w| w.error(&e));
            }
            let mut lines: Vec<(u64, String)> = Vec::new();
            // The caller, unless `SKIPME yes`.
            let me = ctx.client.as_deref().filter(|_| !f.skipme);
            let others = ctx.shard.clients.iter().flatten();
            let others = others.filter(|c| !c.mem.evicted).map(|c| (&**c, None));
            for (c, running) in others.chain(me.map(|c| (c, Some(argv)))) {
                if f.matches(c, now) {
                    let mut l = String::new();
                    client_line(c, running, now, &mut l);
                    lines.push((c.id, l));
                }
            }
            Partial::Keys(
                lines
                    .into_iter()
                    .map(|(id, l)| format!("{id:020} {l}").into_bytes())
                    .collect(),
            )
        }
        "client|kill" => {
            let f = match ClientFilter::parse_kill(argv) {
                Ok(f) => f,
                Err(e) => return local_only(ctx, |w| w.error(&e)),
            };
            if let Some(e) = f.unknown_user(ctx) {
                return local_only(ctx, |w| w.error(&e));
            }
            let mut killed = 0;
            for c in ctx.shard.clients.iter().flatten() {
                if f.matches(c, now) && !c.mem.evicted {
                    ctx.shard.to_close.push(c.conn);
                    killed += 1;
                }
            }
            if let Some(c) = ctx.client.as_deref_mut()
                && !f.skipme
                && f.matches(c, now)
            {
                c.close_after_reply = true;
                killed += 1;
            }
            Partial::Int(killed)
        }
        "client|unblock" => {
            if argv.len() > 4 {
                let text = subcommand_syntax(argv);
                return local_only(ctx, |w| w.error(&text));
            }
            let how = match argv.get(3) {
                None => crate::blocking::Unblock::Timeout,
                Some(r) if eq_ic(r, "TIMEOUT") => crate::blocking::Unblock::Timeout,
                Some(r) if eq_ic(r, "ERROR") => crate::blocking::Unblock::Error,
                Some(_) => {
                    return local_only(ctx, |w| {
                        w.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
                    });
                }
            };
            let Some(id) = parse_i64(argv[2]) else {
                return local_only(ctx, |w| w.error(errors::NOT_INTEGER));
            };
            let id = u64::try_from(id).unwrap_or(0);
            Partial::Int(i64::from(crate::blocking::unblock_client(
                ctx.shard, id, how,
            )))
        }
        // Every shard answers alike (inside EXEC no part has the client): errors as an
        // encoded reply, success as `Unit`, which the merge answers with +OK.
        "client|pause" => {
            if argv.len() > 4 {
                return Partial::Encoded(encoded_error(ctx, &subcommand_syntax(argv)));
            }
            match pause_args(argv, now) {
                Ok((end_ms, mode)) => {
                    crate::pause::begin(ctx.shard, end_ms, mode);
                    Partial::Unit
                }
                Err(e) => Partial::Encoded(encoded_error(ctx, e)),
            }
        }
        "client|unpause" => {
            crate::pause::end(ctx.shard);
            Partial::Unit
        }
        _ => local_only_client(ctx, sub, argv),
    }
}

/// Redis's `addReplySubcommandSyntaxError`, naming the subcommand as sent.
fn subcommand_syntax(argv: &[&[u8]]) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
        super::super::trunc_lossy(argv[1], 128)
    )
}

fn encoded_error(ctx: &Ctx, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    ReplyWriter::new(&mut out, ctx.proto).error(text);
    out
}

/// CLIENT PAUSE's end time (Unix ms) and mode, with Redis 7.0's errors in its order
/// (the mode is checked before the timeout). A timeout of 0 ends at once.
fn pause_args(argv: &[&[u8]], now_ms: i64) -> Result<(i64, crate::pause::Mode), &'static str> {
    let mode = match argv.get(3) {
        None => crate::pause::Mode::All,
        Some(m) if eq_ic(m, "WRITE") => crate::pause::Mode::Write,
        Some(m) if eq_ic(m, "ALL") => crate::pause::Mode::All,
        Some(_) => return Err("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let Some(ms) = parse_i64(argv[2]) else {
        return Err("ERR timeout is not an integer or out of range");
    };
    if ms < 0 {
        return Err("ERR timeout is negative");
    }
    let end = if ms > 0 { ms.saturating_add(now_ms) } else { 0 };
    Ok((end, mode))
}

/// `ON` / `OFF`, any case.
fn on_off(arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "ON") {
        Some(true)
    } else if eq_ic(arg, "OFF") {
        Some(false)
    } else {
        None
    }
}

/// The subcommands about the calling connection.
fn local_only_client(ctx: &mut Ctx, sub: &str, argv: &[&[u8]]) -> Partial {
    let now = ctx.shard.now_ms;
    let proto = ctx.proto;
    let Some(c) = ctx.client.as_deref_mut() else {
        return Partial::Unit;
    };
    let mut out = Vec::new();
    let mut w = ReplyWriter::new(&mut out, proto);
    match sub {
        "client|id" => w.int(c.id as i64),
        "client|getname" => match &c.name {
            Some(n) => w.bulk(n),
            None => w.null(),
        },
        "client|setname" => match super::super::server::validate_client_name(argv[2]) {
            Ok(()) => {
                c.name = (!argv[2].is_empty()).then(|| argv[2].to_vec());
                w.ok();
            }
            Err(e) => w.error(e),
        },
        "client|info" => {
            let mut l = String::new();
            client_line(c, Some(argv), now, &mut l);
            l.push('\n');
            w.verbatim("txt", l.as_bytes());
        }
        "client|reply" => {
            if eq_ic(argv[2], "ON") {
                c.reply_mode = ReplyMode::On;
                w.ok();
            } else if eq_ic(argv[2], "OFF") {
                c.reply_mode = ReplyMode::Off;
            } else if eq_ic(argv[2], "SKIP") {
                if c.reply_mode != ReplyMode::Off {
                    c.reply_mode = ReplyMode::SkipNext;
                }
            } else {
                w.error(errors::SYNTAX);
            }
        }
        "client|tracking" => match crate::tracking::client_tracking(ctx.shard, c, argv) {
            Ok(()) => w.ok(),
            Err(e) => w.error(&e),
        },
        "client|caching" => match crate::tracking::client_caching(c, argv[2]) {
            Ok(()) => w.ok(),
            Err(e) => w.error(e),
        },
        "client|getredir" => w.int(crate::tracking::redirect_of(c)),
        "client|trackinginfo" => {
            let flags = crate::tracking::info_flags(c);
            w.map(3);
            w.bulk(b"flags");
            w.set(flags.len());
            for f in flags {
                w.bulk(f.as_bytes());
            }
            w.bulk(b"redirect");
            w.int(crate::tracking::redirect_of(c));
            w.bulk(b"prefixes");
            let prefixes = c.tracking.as_ref().map_or(&[][..], |t| &t.prefixes[..]);
            w.array(prefixes.len());
            for p in prefixes {
                w.bulk(p);
            }
        }
        "client|no-evict" => match on_off(argv[2]) {
            Some(on) => {
                c.no_evict = on;
                w.ok();
            }
            None => w.error(errors::SYNTAX),
        },
        "client|no-touch" => match on_off(argv[2]) {
            Some(on) => {
                c.no_touch = on;
                w.ok();
            }
            None => w.error(errors::SYNTAX),
        },
        "client|capa" => {
            // Unknown capabilities are ignored, as Valkey does.
            if argv[2..].iter().any(|a| eq_ic(a, "redirect")) {
                c.capa_redirect = true;
            }
            w.ok();
        }
        "client|setinfo" => {
            let v = argv[3];
            let valid = v.iter().all(|&b| (b'!'..=b'~').contains(&b));
            if eq_ic(argv[2], "LIB-NAME") || eq_ic(argv[2], "LIB-VER") {
                if valid {
                    let s = (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned());
                    if eq_ic(argv[2], "LIB-NAME") {
                        c.lib_name = s;
                    } else {
                        c.lib_ver = s;
                    }
                    w.ok();
                } else {
                    w.error(&format!(
                        "ERR {} cannot contain spaces, newlines or special characters.",
                        String::from_utf8_lossy(argv[2]).to_ascii_uppercase()
                    ));
                }
            } else {
                w.error(&format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(argv[2])
                ));
            }
        }
        _ => help_reply(&mut w, "CLIENT", HELP),
    }
    Partial::Encoded(out)
}

pub fn client_merge(g: &mut Gather, w: &mut ReplyWriter) {
    if write_encoded(g, w) {
        return;
    }
    let sub = g.subcommand();
    if sub == b"list" {
        let mut lines: Vec<&[u8]> = Vec::new();
        for p in g.parts.iter().flatten() {
            if let Partial::Keys(ls) = p {
                lines.extend(ls.iter().map(Vec::as_slice));
            }
        }
        lines.sort_unstable();
        let mut text = Vec::new();
        for l in lines {
            // Each line carries its zero-padded id as a sort key: drop it.
            text.extend_from_slice(l.get(21..).unwrap_or_default());
            text.push(b'\n');
        }
        w.verbatim("txt", &text);
        return;
    }
    if sub.eq_ignore_ascii_case(b"pause") || sub.eq_ignore_ascii_case(b"unpause") {
        w.ok();
        return;
    }
    if sub == b"unblock" {
        let n: i64 = g
            .parts
            .iter()
            .flatten()
            .map(|p| if let Partial::Int(n) = p { *n } else { 0 })
            .sum();
        w.int(n.min(1));
        return;
    }
    let killed: i64 = g
        .parts
        .iter()
        .flatten()
        .map(|p| if let Partial::Int(n) = p { *n } else { 0 })
        .sum();
    if g.argv.len() == 3 {
        if killed == 0 {
            w.error("ERR No such client");
        } else {
            w.ok();
        }
    } else {
        w.int(killed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percore_net::reactor::ConnId;

    #[test]
    fn client_line_matches_redis_layout() {
        let mut c = Client::new(
            ConnId {
                index: 0,
                generation: 1,
            },
            7,
            1_000,
            true,
        );
        c.peer = "127.0.0.1:5000".into();
        c.local = "127.0.0.1:6379".into();
        c.fd = 9;
        c.last_cmd = "client|list";
        let mut l = String::new();
        client_line(&c, None, 3_500, &mut l);
        let tot = crate::client_mem::CLIENT_BASE_BYTES + crate::client_mem::REPLY_BUF_BYTES;
        assert_eq!(
            l,
            format!(
                "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=9 name= age=2 idle=2 flags=N \
                 db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 \
                 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem={tot} events=r \
                 cmd=client|list user=default redir=-1 resp=2 lib-name= lib-ver= \
                 tot-net-in=0 tot-net-out=0 tot-cmds=0"
            )
        );
    }

    #[test]
    fn kill_filter_parses_both_forms() {
        let f = ClientFilter::parse_kill(&[b"client", b"kill", b"1.2.3.4:5"]).unwrap();
        assert!(f.addr.is_some() && !f.skipme);
        let f =
            ClientFilter::parse_kill(&[b"client", b"kill", b"id", b"3", b"skipme", b"no"]).unwrap();
        assert_eq!(f.ids, Some(vec![3]));
        assert!(!f.skipme);
        let err = |argv: &[&[u8]]| ClientFilter::parse_kill(argv).err().unwrap();
        let id_error = "ERR client-id should be greater than 0";
        assert_eq!(err(&[b"client", b"kill", b"id", b"0"]), id_error);
        // Redis 7.0's error for a non-integer first ID (Valkey 8.1: syntax error).
        assert_eq!(err(&[b"client", b"kill", b"id", b"str"]), id_error);
        assert_eq!(err(&[b"client", b"kill", b"id", b"3", b"-1"]), id_error);
        assert_eq!(err(&[b"client", b"kill", b"foo", b"bar"]), errors::SYNTAX);
        assert_eq!(
            err(&[b"client", b"kill", b"id", b"10", b"x"]),
            errors::SYNTAX
        );
        // Valkey 8.1: several IDs, MAXAGE.
        let f = ClientFilter::parse_kill(&[b"client", b"kill", b"id", b"3", b"4", b"maxage", b"9"])
            .unwrap();
        assert_eq!(
            (f.ids, f.max_age, f.skipme),
            (Some(vec![3, 4]), Some(9), true)
        );
        assert_eq!(
            err(&[b"client", b"kill", b"maxage", b"str"]),
            "ERR maxage is not an integer or out of range"
        );
        assert_eq!(
            err(&[b"client", b"kill", b"maxage", b"0"]),
            "ERR maxage should be greater than 0"
        );
    }

    #[test]
    fn list_filter_keeps_7_0_ids_and_takes_valkey_options() {
        let list = |args: &[&[u8]]| {
            let mut argv: Vec<&[u8]> = vec![b"client", b"list"];
            argv.extend_from_slice(args);
            ClientFilter::parse_list(&argv)
        };
        // Redis 7.0: any integer (below 1 matches nothing), else `Invalid client ID`.
        assert_eq!(list(&[b"id", b"0", b"5"]).unwrap().ids, Some(vec![0, 5]));
        assert_eq!(
            list(&[b"id", b"str"]).err().unwrap(),
            "ERR Invalid client ID"
        );
        assert_eq!(
            list(&[b"id", b"1", b"x"]).err().unwrap(),
            "ERR Invalid client ID"
        );
        assert_eq!(list(&[b"id"]).err().unwrap(), errors::SYNTAX);
        // Valkey 8.1's options.
        let f = list(&[b"id", b"3", b"4", b"type", b"normal", b"skipme", b"yes"]).unwrap();
        assert_eq!(
            (f.ids, f.type_pubsub, f.skipme),
            (Some(vec![3, 4]), Some(false), true)
        );
        let f = list(&[
            b"addr",
            b"1.2.3.4:5",
            b"laddr",
            b"6.7.8.9:10",
            b"user",
            b"u",
        ])
        .unwrap();
        assert_eq!(f.addr.as_deref(), Some(&b"1.2.3.4:5"[..]));
        assert_eq!(f.laddr.as_deref(), Some(&b"6.7.8.9:10"[..]));
        assert_eq!(f.user.as_deref(), Some("u"));
        assert!(!f.skipme);
        assert_eq!(list(&[b"skipme", b"maybe"]).err().unwrap(), errors::SYNTAX);
        assert_eq!(
            list(&[b"type", b"x"]).err().unwrap(),
            "ERR Unknown client type 'x'"
        );
    }
}
