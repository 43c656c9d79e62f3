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
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
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

/// CLIENT KILL's filter, and CLIENT LIST's in Valkey 8.1's filter form.
#[derive(Default)]
struct KillFilter {
    old_style: bool,
    id: Option<u64>,
    /// CLIENT LIST's `ID id [id ...]` (Valkey 8.1's form).
    ids: Option<Vec<u64>>,
    /// CLIENT LIST's `MAXAGE s`: clients at least that old (Valkey's test of the age).
    max_age_s: Option<i64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    /// `TYPE replica|slave` matches nothing here (a replica's link leaves its shard).
    type_none: bool,
    /// `TYPE master`: a replica's link to its primary (the master client).
    type_master: bool,
    /// `TYPE normal` (false) or `TYPE pubsub` (true): a subscribed client is of the
    /// pubsub type.
    type_pubsub: Option<bool>,
    user_none: bool,
    user: Option<String>,
    skipme: bool,
}

impl KillFilter {
    fn parse(argv: &[&[u8]]) -> Result<Self, String> {
        let mut f = KillFilter {
            skipme: true,
            ..KillFilter::default()
        };
        if argv.len() == 3 {
            f.old_style = true;
            f.skipme = false;
            f.addr = Some(argv[2].to_vec());
            return Ok(f);
        }
        // Pairs are read in order, so a bad value is reported before a missing one.
        for pair in argv[2..].chunks(2) {
            let [k, v] = pair else {
                return Err(errors::SYNTAX.into());
            };
            let (k, v) = (*k, *v);
            if eq_ic(k, "ID") {
                match parse_i64(v) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                }
            } else if eq_ic(k, "MAXAGE") {
                // Redis 7.4's / Valkey 8's: clients at least this many seconds old.
                f.max_age_s = Some(parse_max_age(v)?);
            } else {
                f.pair(k, v)?;
            }
        }
        Ok(f)
    }

    /// CLIENT LIST's filters in Valkey 8.1's form (`parseClientFiltersOrReply`): `ID`
    /// takes the integers that follow it, the others one value each, in any order and
    /// combination. Only for what Redis 7.0's `TYPE t` / `ID id...` forms do not cover;
    /// an `ID` argument that is neither an integer nor a filter name still answers 7.0's
    /// `Invalid client ID`.
    fn parse_list(argv: &[&[u8]]) -> Result<Self, String> {
        const NAMES: [&str; 7] = ["ID", "MAXAGE", "TYPE", "ADDR", "LADDR", "USER", "SKIPME"];
        let mut filter = KillFilter::default();
        let mut i = 2;
        while i < argv.len() {
            let k = argv[i];
            if eq_ic(k, "ID") {
                let ids = filter.ids.get_or_insert_with(Vec::new);
                i += 1;
                while let Some(a) = argv.get(i) {
                    match parse_i64(a) {
                        Some(n) if n < 1 => {
                            return Err("ERR client-id should be greater than 0".into());
                        }
                        Some(n) => ids.push(n as u64),
                        None if NAMES.iter().any(|n| eq_ic(a, n)) => break,
                        None => return Err("ERR Invalid client ID".into()),
                    }
                    i += 1;
                }
                continue;
            }
            let Some(value) = argv.get(i + 1) else {
                return Err(errors::SYNTAX.into());
            };
            if eq_ic(k, "MAXAGE") {
                filter.max_age_s = Some(parse_max_age(value)?);
            } else {
                filter.pair(k, value)?;
            }
            i += 2;
        }
        Ok(filter)
    }

    /// One `TYPE`/`ADDR`/`LADDR`/`USER`/`SKIPME` option and its value.
    fn pair(&mut self, k: &[u8], v: &[u8]) -> Result<(), String> {
        if eq_ic(k, "TYPE") {
            if eq_ic(v, "normal") {
                self.type_pubsub = Some(false);
            } else if eq_ic(v, "pubsub") {
                self.type_pubsub = Some(true);
            } else if eq_ic(v, "master") {
                self.type_master = true;
            } else if ["replica", "slave"].iter().any(|t| eq_ic(v, t)) {
                self.type_none = true;
            } else {
                return Err(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(v)
                ));
            }
        } else if eq_ic(k, "ADDR") {
            self.addr = Some(v.to_vec());
        } else if eq_ic(k, "LADDR") {
            self.laddr = Some(v.to_vec());
        } else if eq_ic(k, "USER") {
            // Checked against the registry by the caller (`kill_user_known`).
            self.user = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(k, "SKIPME") {
            if eq_ic(v, "yes") {
                self.skipme = true;
            } else if eq_ic(v, "no") {
                self.skipme = false;
            } else {
                return Err(errors::SYNTAX.into());
            }
        } else {
            return Err(errors::SYNTAX.into());
        }
        Ok(())
    }

    /// [`KillFilter::matches`] plus CLIENT LIST's ids and age.
    fn list_matches(&self, c: &Client, now_ms: i64) -> bool {
        self.matches(c)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
            && self
                .max_age_s
                .is_none_or(|age| (now_ms - c.created_ms) / 1000 >= age)
    }

    fn matches(&self, c: &Client) -> bool {
        !self.type_none
            && (!self.type_master || c.master)
            && self
                .type_pubsub
                .is_none_or(|p| !c.master && p == c.subscribed())
            && !self.user_none
            && self
                .user
                .as_deref()
                .is_none_or(|u| u == crate::acl::user_name(c))
            && self.id.is_none_or(|id| id == c.id)
            && self.addr.as_deref().is_none_or(|a| a == c.peer.as_bytes())
            && self
                .laddr
                .as_deref()
                .is_none_or(|a| a == c.local.as_bytes())
    }
}

/// MAXAGE's value (`parseClientFiltersOrReply`): seconds, above 0.
fn parse_max_age(v: &[u8]) -> Result<i64, String> {
    match parse_i64(v) {
        Some(n) if n > 0 => Ok(n),
        Some(_) => Err("ERR maxage should be greater than 0".into()),
        None => Err("ERR maxage is not an integer or out of range".into()),
    }
}

/// Whether CLIENT LIST's arguments are Redis 7.0's: none, `TYPE t`, `ID id...` with
/// integers only, or a lone word (a syntax error); others are Valkey 8.1's filters.
fn list_form_7_0(argv: &[&[u8]]) -> bool {
    argv.len() <= 3
        || (argv.len() == 4 && eq_ic(argv[2], "TYPE"))
        || (eq_ic(argv[2], "ID") && argv[3..].iter().all(|a| parse_i64(a).is_some()))
}

/// CLIENT LIST TYPE normal (false) or pubsub (true).
fn list_type(argv: &[&[u8]]) -> Option<bool> {
    if argv.len() == 4 && eq_ic(argv[2], "TYPE") {
        if eq_ic(argv[3], "normal") {
            return Some(false);
        }
        if eq_ic(argv[3], "pubsub") {
            return Some(true);
        }
    }
    None
}

/// Which clients CLIENT LIST shows: `TYPE t` or `ID id...`; `TYPE normal` and `TYPE
/// pubsub` answer through [`list_type`].
fn list_filter(argv: &[&[u8]]) -> Result<Option<Vec<u64>>, String> {
    if argv.len() == 2 {
        return Ok(None);
    }
    if argv.len() == 4 && eq_ic(argv[2], "TYPE") {
        return if eq_ic(argv[3], "normal") || eq_ic(argv[3], "pubsub") {
            Ok(None)
        } else if ["master", "replica", "slave"]
            .iter()
            .any(|t| eq_ic(argv[3], t))
        {
            Ok(Some(Vec::new()))
        } else {
            Err(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(argv[3])
            ))
        };
    }
    if argv.len() >= 4 && eq_ic(argv[2], "ID") {
        let mut ids = Vec::new();
        for a in &argv[3..] {
            match parse_i64(a) {
                // Redis accepts any integer; ids below 1 match no client.
                Some(n) => ids.push(u64::try_from(n).unwrap_or(0)),
                None => return Err("ERR Invalid client ID".into()),
            }
        }
        return Ok(Some(ids));
    }
    Err(errors::SYNTAX.into())
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
        "client|list" if !list_form_7_0(argv) => {
            let f = match KillFilter::parse_list(argv) {
                Ok(f) => f,
                Err(e) => return local_only(ctx, |w| w.error(&e)),
            };
            if let Some(u) = &f.user
                && ctx.shard.shared.acl.user(u).is_none()
            {
                let e = format!("ERR No such user '{u}'");
                return local_only(ctx, |w| w.error(&e));
            }
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let me = ctx.client.as_deref().filter(|_| !f.skipme);
            let others = ctx.shard.clients.iter().flatten();
            let others = others.filter(|c| !c.mem.evicted).map(|c| (&**c, None));
            for (c, running) in others.chain(me.map(|c| (c, Some(argv)))) {
                if f.list_matches(c, now) {
                    let mut l = format!("{:020} ", c.id);
                    client_line(c, running, now, &mut l);
                    lines.push(l.into_bytes());
                }
            }
            Partial::Keys(lines)
        }
        "client|list" => {
            let only = match list_filter(argv) {
                Ok(f) => f,
                Err(e) => return local_only(ctx, |w| w.error(&e)),
            };
            let mut lines: Vec<(u64, String)> = Vec::new();
            let me = ctx.client.as_deref();
            let kind = list_type(argv);
            let others = ctx.shard.clients.iter().flatten();
            let others = others.filter(|c| !c.mem.evicted).map(|c| (&**c, None));
            for (c, running) in others.chain(me.map(|c| (c, Some(argv)))) {
                if only.as_ref().is_none_or(|ids| ids.contains(&c.id))
                    && kind.is_none_or(|p| p == c.subscribed())
                {
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
            let f = match KillFilter::parse(argv) {
                Ok(f) => f,
                Err(e) => return local_only(ctx, |w| w.error(&e)),
            };
            if let Some(u) = &f.user
                && ctx.shard.shared.acl.user(u).is_none()
            {
                let e = format!("ERR No such user '{u}'");
                return local_only(ctx, |w| w.error(&e));
            }
            let mut killed = 0;
            for c in ctx.shard.clients.iter().flatten() {
                if f.list_matches(c, now) && !c.mem.evicted {
                    ctx.shard.to_close.push(c.conn);
                    killed += 1;
                }
            }
            if let Some(c) = ctx.client.as_deref_mut()
                && !f.skipme
                && f.list_matches(c, now)
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
        let f = KillFilter::parse(&[b"client", b"kill", b"1.2.3.4:5"]).unwrap();
        assert!(f.old_style && !f.skipme);
        let f = KillFilter::parse(&[b"client", b"kill", b"id", b"3", b"skipme", b"no"]).unwrap();
        assert_eq!(f.id, Some(3));
        assert!(!f.skipme);
        assert!(KillFilter::parse(&[b"client", b"kill", b"id", b"0"]).is_err());
        assert!(KillFilter::parse(&[b"client", b"kill", b"foo", b"bar"]).is_err());
    }
}
