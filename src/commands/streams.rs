//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XREAD XREADGROUP XGROUP XACK
//! XPENDING XCLAIM XAUTOCLAIM XINFO XSETID, with Redis 7.0's replies and errors
//! (`t_stream.c`).
//!
//! XREAD and XREADGROUP name keys that may live on several shards: they run as a hop
//! chain (`Exec::Hop`) in two passes over the keys in order. The first pass checks each
//! key (type, group) and its ID argument, as Redis's argument loop does before anything
//! is served, and resolves `$` to the stream's last ID; the second serves each key on its
//! shard and carries the encoded `[key, entries]` pieces to the last step, which answers.
//! With every key on the client's shard both passes run in one call.

#![allow(
    clippy::many_single_char_names,
    reason = "w (the reply writer), s (the stream), g (a group), a (parsed options) as in the other handler files"
)]

use super::keyspace::{hop, reply};
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use crate::config::Config;
use crate::notify::class;
use percore_engine::db::{Db, SetExpire};
use percore_engine::listpack::LpValue;
use percore_engine::streams::{
    AddError, AddId, ClaimOpts, ENTRIES_READ_INVALID, EntryRef, IdArg, Stream, StreamId,
    StreamLimits, Trim, parse_add_id, parse_interval_id, parse_strict_id,
};
use percore_engine::value::Value;
use percore_net::resp::{Protocol, ReplyWriter};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const XADD_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
const XADD_SMALLER: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const XADD_EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
const TOO_LARGE: &str = "ERR Elements are too large to be stored";
const BAD_START: &str = "ERR invalid start ID for the interval";
const BAD_END: &str = "ERR invalid end ID for the interval";
const MAXLEN_MINID: &str =
    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
const NEGATIVE_MAXLEN: &str = "ERR The MAXLEN argument must be >= 0.";
const NEGATIVE_LIMIT: &str = "ERR The LIMIT argument must be >= 0.";
const LIMIT_NO_STRATEGY: &str =
    "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy";
const XTRIM_NO_STRATEGY: &str = "ERR syntax error, XTRIM must be called with a trimming strategy";
const LIMIT_NOT_APPROX: &str =
    "ERR syntax error, LIMIT cannot be used without the special ~ option";
const KEY_REQUIRED: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
const BUSYGROUP: &str = "BUSYGROUP Consumer Group name already exists";
const ENTRIESREAD_RANGE: &str = "ERR value for ENTRIESREAD must be positive or -1";

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// The node limits of the configuration.
pub fn stream_limits(cfg: &Config) -> StreamLimits {
    StreamLimits {
        node_max_bytes: cfg.stream_node_max_bytes,
        node_max_entries: cfg.stream_node_max_entries,
    }
}

fn stream_mut<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<Option<&'d mut Stream>, ()> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

fn stream_ref<'d>(db: &'d mut Db, key: &[u8], now: i64) -> Result<Option<&'d Stream>, ()> {
    stream_mut(db, key, now).map(|o| o.map(|s| &*s))
}

fn now_u64(ctx: &Ctx) -> u64 {
    u64::try_from(ctx.shard.now_ms).unwrap_or(0)
}

/// `ms-seq` into `buf`.
fn id_text(id: StreamId, buf: &mut [u8; 41]) -> &[u8] {
    fn put(buf: &mut [u8; 41], mut v: u64, n: &mut usize) {
        loop {
            *n -= 1;
            buf[*n] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
    }
    let mut n = 41;
    put(buf, id.seq, &mut n);
    n -= 1;
    buf[n] = b'-';
    put(buf, id.ms, &mut n);
    &buf[n..]
}

fn write_id(w: &mut ReplyWriter, id: StreamId) {
    w.bulk(id_text(id, &mut [0; 41]));
}

fn write_lp(w: &mut ReplyWriter, v: LpValue<'_>) {
    super::lists::write_entry(w, v);
}

/// `[id, [field, value, ...]]`.
fn write_entry(w: &mut ReplyWriter, id: StreamId, e: EntryRef<'_>) {
    w.array(2);
    write_id(w, id);
    w.array(e.len() * 2);
    for (f, v) in e.pairs() {
        write_lp(w, f);
        write_lp(w, v);
    }
}

/// Entries of a range as an array.
fn write_range(
    w: &mut ReplyWriter,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) {
    let mut body = Vec::new();
    let mut n = 0;
    {
        let mut bw = ReplyWriter::new(&mut body, w.proto);
        for (id, e) in s.range(start, end, rev) {
            if count > 0 && n >= count {
                break;
            }
            write_entry(&mut bw, id, e);
            n += 1;
        }
    }
    w.array(n);
    w.raw(&body);
}

/// An entry, or a null when absent.
fn write_entry_or_null(w: &mut ReplyWriter, s: &Stream, id: Option<StreamId>) {
    match id.and_then(|id| s.entry(id).map(|e| (id, e))) {
        Some((id, e)) => write_entry(w, id, e),
        None => w.null(),
    }
}

// ---------------------------------------------------------------------------------------
// XADD, XTRIM

/// Trimming options shared by XADD and XTRIM.
#[derive(Default)]
struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// XADD: the ID argument's position.
    id_pos: usize,
}

/// `streamParseAddOrTrimArgsOrReply`: options from `argv[2]`; for XADD up to the ID.
fn parse_add_trim(argv: &[&[u8]], xadd: bool, max_entries: usize) -> Result<TrimArgs, String> {
    let mut a = TrimArgs::default();
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv[i];
        if xadd && opt == b"*" {
            break;
        } else if eq_ic(opt, "maxlen") && more > 0 {
            if a.how.is_some() {
                return Err(MAXLEN_MINID.into());
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && (next == b"~" || next == b"=") {
                a.approx = next == b"~";
                i += 1;
            }
            let n = parse_i64(argv[i + 1]).ok_or(errors::NOT_INTEGER)?;
            if n < 0 {
                return Err(NEGATIVE_MAXLEN.into());
            }
            i += 1;
            a.how = Some(Trim::MaxLen(n as u64));
        } else if eq_ic(opt, "minid") && more > 0 {
            if a.how.is_some() {
                return Err(MAXLEN_MINID.into());
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && (next == b"~" || next == b"=") {
                a.approx = next == b"~";
                i += 1;
            }
            let id = parse_strict_id(argv[i + 1], 0).ok_or(INVALID_ID)?;
            i += 1;
            a.how = Some(Trim::MinId(id));
        } else if eq_ic(opt, "limit") && more > 0 {
            let n = parse_i64(argv[i + 1]).ok_or(errors::NOT_INTEGER)?;
            if n < 0 {
                return Err(NEGATIVE_LIMIT.into());
            }
            limit = Some(n);
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            // The ID (checked by the caller).
            break;
        } else {
            return Err(errors::SYNTAX.into());
        }
        i += 1;
    }
    a.id_pos = i;
    if limit.is_some_and(|l| l > 0) && a.how.is_none() {
        return Err(LIMIT_NO_STRATEGY.into());
    }
    if !xadd && a.how.is_none() {
        return Err(XTRIM_NO_STRATEGY.into());
    }
    match limit {
        Some(_) if !a.approx => return Err(LIMIT_NOT_APPROX.into()),
        Some(l) => a.limit = l as u64,
        None if a.approx => {
            a.limit = (100 * max_entries as u64).min(1 << 30);
        }
        None => a.limit = 0,
    }
    Ok(a)
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub fn xadd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let lim = stream_limits(&ctx.shard.cfg);
    let a = match parse_add_trim(argv, true, lim.node_max_entries) {
        Ok(a) => a,
        Err(e) => return w.error(&e),
    };
    let Some(&id_arg) = argv.get(a.id_pos) else {
        return super::wrong_arity("xadd", w);
    };
    let id = if id_arg == b"*" {
        AddId::Auto
    } else {
        match parse_add_id(id_arg) {
            Some(IdArg::Id(id)) => AddId::Exact(id),
            Some(IdArg::AutoSeq(ms)) => AddId::AutoSeq(ms),
            None => return w.error(INVALID_ID),
        }
    };
    let fields = &argv[a.id_pos + 1..];
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return super::wrong_arity("xadd", w);
    }
    if id == AddId::Exact(StreamId::MIN) {
        return w.error(XADD_ZERO);
    }
    let now = ctx.shard.now_ms;
    let clock = now_u64(ctx);
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    match stream_ref(db, argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) if a.nomkstream => return w.null(),
        Ok(None) => {
            db.set(argv[1], Value::Stream(Box::default()), SetExpire::Keep, now);
        }
        Ok(Some(_)) => {}
    }
    let Ok(Some(s)) = stream_mut(db, argv[1], now) else {
        unreachable!("a stream is there")
    };
    if s.meta().last_id == StreamId::MAX {
        return w.error(XADD_EXHAUSTED);
    }
    match s.append(id, fields, clock, lim) {
        Ok(new) => {
            let trimmed = a.how.map_or(0, |how| s.trim(how, a.approx, a.limit));
            write_id(w, new);
            crate::blocking::signal_key(ctx.shard, ctx.db, argv[1]);
            ctx.notify(class::STREAM, "xadd", argv[1]);
            if trimmed > 0 {
                ctx.notify(class::STREAM, "xtrim", argv[1]);
            }
        }
        Err(AddError::NotGreater) => w.error(XADD_SMALLER),
        Err(AddError::TooLarge) => w.error(TOO_LARGE),
    }
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let lim = stream_limits(&ctx.shard.cfg);
    let a = match parse_add_trim(argv, false, lim.node_max_entries) {
        Ok(a) => a,
        Err(e) => return w.error(&e),
    };
    let now = ctx.shard.now_ms;
    match stream_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(None) => w.int(0),
        Ok(Some(s)) => {
            let how = a.how.expect("XTRIM has a strategy");
            let trimmed = s.trim(how, a.approx, a.limit);
            w.int(trimmed as i64);
            if trimmed > 0 {
                ctx.notify(class::STREAM, "xtrim", argv[1]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// XLEN, XRANGE, XREVRANGE, XDEL

pub fn xlen(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match stream_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(s) => w.int(s.map_or(0, Stream::len) as i64),
    }
}

/// An interval's start (exclusive moves it up) and end (exclusive moves it down).
fn parse_bounds(start: &[u8], end: &[u8]) -> Result<(StreamId, StreamId), &'static str> {
    let (mut s, sx) = parse_interval_id(start, 0).ok_or(INVALID_ID)?;
    if sx {
        s = s.incr().ok_or(BAD_START)?;
    }
    let (mut e, ex) = parse_interval_id(end, u64::MAX).ok_or(INVALID_ID)?;
    if ex {
        e = e.decr().ok_or(BAD_END)?;
    }
    Ok((s, e))
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n].
pub fn xrange(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let rev = argv[0].len() == 9;
    let (sa, ea) = if rev {
        (argv[3], argv[2])
    } else {
        (argv[2], argv[3])
    };
    let (start, end) = match parse_bounds(sa, ea) {
        Ok(b) => b,
        Err(e) => return w.error(e),
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if eq_ic(argv[j], "count") && j + 1 < argv.len() {
            let Some(n) = parse_i64(argv[j + 1]) else {
                return w.error(errors::NOT_INTEGER);
            };
            count = n.max(0);
            j += 2;
        } else {
            return w.error(errors::SYNTAX);
        }
    }
    let now = ctx.shard.now_ms;
    match stream_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(None) => w.array(0),
        Ok(Some(_)) if count == 0 => w.null_array(),
        Ok(Some(s)) => write_range(w, s, start, end, rev, count.max(0) as usize),
    }
}

pub fn xdel(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let s = match stream_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.int(0),
        Ok(Some(s)) => s,
    };
    let mut ids = Vec::with_capacity(argv.len() - 2);
    for a in &argv[2..] {
        match parse_strict_id(a, 0) {
            Some(id) => ids.push(id),
            None => return w.error(INVALID_ID),
        }
    }
    let deleted = s.xdel(&ids);
    w.int(deleted as i64);
    if deleted > 0 {
        ctx.notify(class::STREAM, "xdel", argv[1]);
    }
}

// ---------------------------------------------------------------------------------------
// XSETID

pub fn xsetid(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(id) = parse_strict_id(argv[2], 0) else {
        return w.error(INVALID_ID);
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if eq_ic(argv[i], "entriesadded") && more > 0 {
            let Some(n) = parse_i64(argv[i + 1]) else {
                return w.error(errors::NOT_INTEGER);
            };
            if n < 0 {
                return w.error("ERR entries_added must be positive");
            }
            entries_added = n;
            i += 2;
        } else if eq_ic(argv[i], "maxdeletedid") && more > 0 {
            let Some(m) = parse_strict_id(argv[i + 1], 0) else {
                return w.error(INVALID_ID);
            };
            if id < m {
                return w.error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                );
            }
            max_xdel = m;
            i += 2;
        } else {
            return w.error(errors::SYNTAX);
        }
    }
    let now = ctx.shard.now_ms;
    let s = match stream_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.error(errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return w.error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return w.error(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    if id < s.meta().max_deleted_id {
        return w
            .error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    }
    let m = s.meta_mut();
    m.last_id = id;
    if entries_added != -1 {
        m.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        m.max_deleted_id = max_xdel;
    }
    w.ok();
    ctx.notify(class::STREAM, "xsetid", argv[1]);
}

// ---------------------------------------------------------------------------------------
// XGROUP

fn nogroup_for_key(group: &[u8], key: &[u8]) -> String {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    )
}

fn nogroup(key: &[u8], group: &[u8]) -> String {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    )
}

fn subcommand_syntax(argv: &[&[u8]]) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        super::trunc_lossy(argv[1], 128),
        String::from_utf8_lossy(argv[0]).to_ascii_uppercase()
    )
}

fn write_help(w: &mut ReplyWriter, lines: &[&str]) {
    w.array(lines.len());
    for l in lines {
        w.simple(l);
    }
}

/// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP (the subcommand's arity
/// is checked by dispatch).
pub fn xgroup(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = argv[1];
    if eq_ic(sub, "help") {
        return write_help(w, XGROUP_HELP);
    }
    let (create, setid) = (eq_ic(sub, "create"), eq_ic(sub, "setid"));
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_INVALID;
    if create || setid {
        let mut i = 5;
        while i < argv.len() {
            if create && eq_ic(argv[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if eq_ic(argv[i], "entriesread") && i + 1 < argv.len() {
                let Some(n) = parse_i64(argv[i + 1]) else {
                    return w.error(errors::NOT_INTEGER);
                };
                if n < 0 && n != ENTRIES_READ_INVALID {
                    return w.error(ENTRIESREAD_RANGE);
                }
                entries_read = n;
                i += 2;
            } else {
                return w.error(&subcommand_syntax(argv));
            }
        }
    }
    let (key, group) = (argv[2], argv[3]);
    let now = ctx.shard.now_ms;
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let exists = match stream_ref(db, key, now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(s) => s.map(|s| s.group(group).is_some()),
    };
    let needs_group = setid || eq_ic(sub, "createconsumer") || eq_ic(sub, "delconsumer");
    if exists.is_none() && !(create && mkstream) {
        return w.error(KEY_REQUIRED);
    }
    if needs_group && exists != Some(true) {
        return w.error(&nogroup_for_key(group, key));
    }
    if create {
        // CREATE reads a strict id; SETID (below) accepts `-` and `+` too (Redis 7.0's
        // streamParseStrictIDOrReply vs streamParseIDOrReply).
        let id = if argv[4] == b"$" {
            None
        } else {
            match parse_strict_id(argv[4], 0) {
                Some(id) => Some(id),
                None => return w.error(INVALID_ID),
            }
        };
        if exists.is_none() {
            db.set(key, Value::Stream(Box::default()), SetExpire::Keep, now);
        }
        let Ok(Some(s)) = stream_mut(db, key, now) else {
            unreachable!("a stream is there")
        };
        let id = id.unwrap_or(s.meta().last_id);
        if s.create_group(group, id, entries_read) {
            w.ok();
            ctx.notify(class::STREAM, "xgroup-create", key);
        } else {
            w.error(BUSYGROUP);
        }
        return;
    }
    let Ok(Some(s)) = stream_mut(db, key, now) else {
        unreachable!("checked above")
    };
    if setid {
        let id = if argv[4] == b"$" {
            s.meta().last_id
        } else {
            match percore_engine::streams::parse_id(argv[4], 0) {
                Some(id) => id,
                None => return w.error(INVALID_ID),
            }
        };
        let g = s.group_mut(group).expect("checked");
        g.last_id = id;
        g.entries_read = entries_read;
        w.ok();
        ctx.notify(class::STREAM, "xgroup-setid", key);
    } else if eq_ic(sub, "destroy") {
        let destroyed = s.destroy_group(group);
        w.int(i64::from(destroyed));
        if destroyed {
            ctx.notify(class::STREAM, "xgroup-destroy", key);
            // Its blocked readers are answered NOGROUP now, as Redis's.
            crate::blocking::signal_key(ctx.shard, ctx.db, key);
        }
    } else if eq_ic(sub, "createconsumer") {
        let g = s.group_mut(group).expect("checked");
        let created = g.create_consumer(argv[4], now);
        w.int(i64::from(created));
        if created {
            ctx.notify(class::STREAM, "xgroup-createconsumer", key);
        }
    } else if eq_ic(sub, "delconsumer") {
        let g = s.group_mut(group).expect("checked");
        let deleted = g.delete_consumer(argv[4]);
        w.int(deleted.map_or(0, |n| n as i64));
        if deleted.is_some() {
            ctx.notify(class::STREAM, "xgroup-delconsumer", key);
        }
    } else {
        w.error(&subcommand_syntax(argv));
    }
}

// ---------------------------------------------------------------------------------------
// XACK, XPENDING, XCLAIM, XAUTOCLAIM

pub fn xack(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let s = match stream_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.group_mut(argv[2])) else {
        return w.int(0);
    };
    let mut ids = Vec::with_capacity(argv.len() - 3);
    for a in &argv[3..] {
        match parse_strict_id(a, 0) {
            Some(id) => ids.push(id),
            None => return w.error(INVALID_ID),
        }
    }
    let acked = ids.into_iter().filter(|&id| g.ack(id)).count();
    w.int(acked as i64);
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let summary = argv.len() == 3;
    if argv.len() != 3 && !(6..=9).contains(&argv.len()) {
        return w.error(errors::SYNTAX);
    }
    let mut min_idle = 0i64;
    let (mut start, mut end, mut count) = (StreamId::MIN, StreamId::MAX, 0i64);
    let mut consumer: Option<&[u8]> = None;
    if argv.len() >= 6 {
        let mut at = 3;
        if eq_ic(argv[3], "idle") {
            let Some(n) = parse_i64(argv[4]) else {
                return w.error(errors::NOT_INTEGER);
            };
            min_idle = n;
            if argv.len() < 8 {
                return w.error(errors::SYNTAX);
            }
            at += 2;
        }
        let Some(n) = argv.get(at + 2).and_then(|a| parse_i64(a)) else {
            return w.error(errors::NOT_INTEGER);
        };
        count = n.max(0);
        match parse_bounds(argv[at], argv[at + 1]) {
            Ok((s, e)) => (start, end) = (s, e),
            Err(e) => return w.error(e),
        }
        if at + 3 < argv.len() {
            consumer = Some(argv[at + 3]);
        }
    }
    let now = ctx.shard.now_ms;
    let s = match stream_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.group(argv[2])) else {
        return w.error(&nogroup(argv[1], argv[2]));
    };
    if summary {
        w.array(4);
        w.int(g.pel.len() as i64);
        if let (Some((a, _)), Some((b, _))) = (g.pel.first_key_value(), g.pel.last_key_value()) {
            write_id(w, *a);
            write_id(w, *b);
            let owners: Vec<_> = g
                .consumers
                .iter()
                .filter(|(_, c)| !c.pel.is_empty())
                .collect();
            w.array(owners.len());
            for (name, c) in owners {
                w.array(2);
                w.bulk(name);
                w.bulk_int(c.pel.len() as i64);
            }
        } else {
            w.null();
            w.null();
            w.null_array();
        }
        return;
    }
    let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
        Some(c) => match g.consumers.get(c) {
            None => return w.array(0),
            Some(c) => Box::new(c.pel.range(start..).copied()),
        },
        None => Box::new(g.pel.range(start..).map(|(k, _)| *k)),
    };
    let mut body = Vec::new();
    let mut n = 0;
    {
        let mut bw = ReplyWriter::new(&mut body, w.proto);
        for id in ids {
            if count == 0 || id > end {
                break;
            }
            let nack = &g.pel[&id];
            if min_idle != 0 && now - nack.delivery_time < min_idle {
                continue;
            }
            n += 1;
            count -= 1;
            bw.array(4);
            write_id(&mut bw, id);
            bw.bulk(&nack.consumer);
            bw.int((now - nack.delivery_time).max(0));
            bw.int(nack.delivery_count as i64);
        }
    }
    w.array(n);
    w.raw(&body);
}

/// Claimed entries: IDs, or whole entries.
fn write_claimed(w: &mut ReplyWriter, s: &Stream, ids: &[StreamId], justid: bool) {
    w.array(ids.len());
    for &id in ids {
        if justid {
            write_id(w, id);
        } else {
            write_entry_or_null(w, s, Some(id));
        }
    }
}

/// XCLAIM key group consumer min-idle-time id ... [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    match stream_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(s) if s.and_then(|s| s.group(argv[2])).is_none() => {
            return w.error(&nogroup(argv[1], argv[2]));
        }
        Ok(_) => {}
    }
    let Some(min_idle) = parse_i64(argv[4]) else {
        return w.error("ERR Invalid min-idle-time argument for XCLAIM");
    };
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argv.len() {
        match parse_strict_id(argv[j], 0) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let mut o = ClaimOpts {
        min_idle_ms: min_idle.max(0),
        ..ClaimOpts::default()
    };
    let mut last_id = StreamId::MIN;
    let mut delivery: Option<i64> = None;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j];
        let num = |a: &[u8], what: &str| {
            parse_i64(a).ok_or_else(|| format!("ERR Invalid {what} option argument for XCLAIM"))
        };
        if eq_ic(opt, "force") {
            o.force = true;
        } else if eq_ic(opt, "justid") {
            o.justid = true;
        } else if eq_ic(opt, "idle") && more > 0 {
            j += 1;
            match num(argv[j], "IDLE") {
                Ok(v) => delivery = Some(now - v),
                Err(e) => return w.error(&e),
            }
        } else if eq_ic(opt, "time") && more > 0 {
            j += 1;
            match num(argv[j], "TIME") {
                Ok(v) => delivery = Some(v),
                Err(e) => return w.error(&e),
            }
        } else if eq_ic(opt, "retrycount") && more > 0 {
            j += 1;
            match num(argv[j], "RETRYCOUNT") {
                Ok(v) => o.retry_count = (v >= 0).then_some(v as u64),
                Err(e) => return w.error(&e),
            }
        } else if eq_ic(opt, "lastid") && more > 0 {
            j += 1;
            match parse_strict_id(argv[j], 0) {
                Some(id) => last_id = id,
                None => return w.error(INVALID_ID),
            }
        } else {
            return w.error(&format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            ));
        }
        j += 1;
    }
    o.delivery_time = Some(match delivery {
        Some(t) if (0..=now).contains(&t) => t,
        _ => now,
    });
    let Ok(Some(s)) = stream_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) else {
        unreachable!("checked above")
    };
    let g = s.group_mut(argv[2]).expect("checked above");
    if last_id > g.last_id {
        g.last_id = last_id;
    }
    let new_consumer = !g.consumers.contains_key(argv[3]);
    let claimed = s.claim(argv[2], argv[3], &ids, o, now);
    write_claimed(w, s, &claimed, o.justid);
    notify_created_consumer(ctx, new_consumer, argv);
}

/// XCLAIM/XAUTOCLAIM create their consumer at the first entry they claim, and Redis's
/// `streamCreateConsumer` publishes `xgroup-createconsumer` then.
fn notify_created_consumer(ctx: &mut Ctx, was_new: bool, argv: &[&[u8]]) {
    if was_new && has_consumer(ctx, argv[1], argv[2], argv[3]) {
        ctx.notify(class::STREAM, "xgroup-createconsumer", argv[1]);
    }
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(min_idle) = parse_i64(argv[4]) else {
        return w.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let Some((mut start, sx)) = parse_interval_id(argv[5], 0) else {
        return w.error(INVALID_ID);
    };
    if sx {
        match start.incr() {
            Some(s) => start = s,
            None => return w.error(BAD_START),
        }
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    // LONG_MAX / max(sizeof(streamID), attempts factor 10).
    let max_count = i64::MAX / 16;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if eq_ic(argv[j], "count") && more > 0 {
            match parse_i64(argv[j + 1]) {
                Some(n) if (1..=max_count).contains(&n) => count = n,
                _ => return w.error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if eq_ic(argv[j], "justid") {
            justid = true;
        } else {
            return w.error(errors::SYNTAX);
        }
        j += 1;
    }
    let now = ctx.shard.now_ms;
    let s = match stream_mut(ctx.shard.keyspace.db_mut(ctx.db), argv[1], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(s) => s,
    };
    let Some(s) = s.filter(|s| s.group(argv[2]).is_some()) else {
        return w.error(&nogroup(argv[1], argv[2]));
    };
    let o = ClaimOpts {
        min_idle_ms: min_idle.max(0),
        justid,
        ..ClaimOpts::default()
    };
    let new_consumer = s
        .group(argv[2])
        .is_some_and(|g| !g.consumers.contains_key(argv[3]));
    let (claimed, next, gone) = s.autoclaim(argv[2], argv[3], start, count as u64, o, now);
    w.array(3);
    write_id(w, next);
    write_claimed(w, s, &claimed, justid);
    w.array(gone.len());
    for id in gone {
        write_id(w, id);
    }
    notify_created_consumer(ctx, new_consumer, argv);
}

// ---------------------------------------------------------------------------------------
// XINFO

pub fn xinfo(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = argv[1];
    if eq_ic(sub, "help") {
        return write_help(w, XINFO_HELP);
    }
    let now = ctx.shard.now_ms;
    let s = match stream_ref(ctx.shard.keyspace.db_mut(ctx.db), argv[2], now) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(None) => return w.error(errors::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if eq_ic(sub, "consumers") && argv.len() == 4 {
        let Some(g) = s.group(argv[3]) else {
            return w.error(&nogroup_for_key(argv[3], argv[2]));
        };
        w.array(g.consumers.len());
        for (name, c) in &g.consumers {
            w.map(3);
            w.bulk(b"name");
            w.bulk(name);
            w.bulk(b"pending");
            w.int(c.pel.len() as i64);
            w.bulk(b"idle");
            w.int((now - c.seen_time).max(0));
        }
    } else if eq_ic(sub, "groups") && argv.len() == 3 {
        w.array(s.groups().len());
        for (name, g) in s.groups() {
            w.map(6);
            w.bulk(b"name");
            w.bulk(name);
            w.bulk(b"consumers");
            w.int(g.consumers.len() as i64);
            w.bulk(b"pending");
            w.int(g.pel.len() as i64);
            w.bulk(b"last-delivered-id");
            write_id(w, g.last_id);
            write_group_counters(w, s, g);
        }
    } else if eq_ic(sub, "stream") {
        xinfo_stream(s, argv, w);
    } else {
        w.error(&subcommand_syntax(argv));
    }
}

/// `entries-read` and `lag`.
fn write_group_counters(w: &mut ReplyWriter, s: &Stream, g: &percore_engine::streams::Group) {
    w.bulk(b"entries-read");
    if g.entries_read == ENTRIES_READ_INVALID {
        w.null();
    } else {
        w.int(g.entries_read);
    }
    w.bulk(b"lag");
    match s.group_lag(g) {
        Some(l) => w.int(l),
        None => w.null(),
    }
}

fn xinfo_stream(s: &Stream, argv: &[&[u8]], w: &mut ReplyWriter) {
    let opts = &argv[3..];
    let mut count: i64 = 10;
    let full = !opts.is_empty();
    if full {
        if !eq_ic(opts[0], "full") || (opts.len() != 1 && opts.len() != 3) {
            return w.error(&subcommand_syntax(argv));
        }
        if opts.len() == 3 {
            if !eq_ic(opts[1], "count") {
                return w.error(errors::SYNTAX);
            }
            let Some(n) = parse_i64(opts[2]) else {
                return w.error(errors::NOT_INTEGER);
            };
            count = n.max(0);
        }
    }
    let m = s.meta();
    w.map(if full { 9 } else { 10 });
    w.bulk(b"length");
    w.int(m.length as i64);
    w.bulk(b"radix-tree-keys");
    w.int(s.nodes().len() as i64);
    w.bulk(b"radix-tree-nodes");
    w.int(s.radix_tree_nodes() as i64);
    w.bulk(b"last-generated-id");
    write_id(w, m.last_id);
    w.bulk(b"max-deleted-entry-id");
    write_id(w, m.max_deleted_id);
    w.bulk(b"entries-added");
    w.int(m.entries_added as i64);
    w.bulk(b"recorded-first-entry-id");
    write_id(w, m.first_id);
    if !full {
        w.bulk(b"groups");
        w.int(s.groups().len() as i64);
        w.bulk(b"first-entry");
        write_entry_or_null(w, s, s.edge_id(false));
        w.bulk(b"last-entry");
        write_entry_or_null(w, s, s.edge_id(true));
        return;
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    w.bulk(b"entries");
    write_range(w, s, StreamId::MIN, StreamId::MAX, false, limit);
    w.bulk(b"groups");
    w.array(s.groups().len());
    for (name, g) in s.groups() {
        w.map(7);
        w.bulk(b"name");
        w.bulk(name);
        w.bulk(b"last-delivered-id");
        write_id(w, g.last_id);
        write_group_counters(w, s, g);
        w.bulk(b"pel-count");
        w.int(g.pel.len() as i64);
        w.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        w.array(pel.len());
        for (id, n) in pel {
            w.array(4);
            write_id(w, *id);
            w.bulk(&n.consumer);
            w.int(n.delivery_time);
            w.int(n.delivery_count as i64);
        }
        w.bulk(b"consumers");
        w.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            w.map(4);
            w.bulk(b"name");
            w.bulk(cname);
            w.bulk(b"seen-time");
            w.int(c.seen_time);
            w.bulk(b"pel-count");
            w.int(c.pel.len() as i64);
            w.bulk(b"pending");
            let ids: Vec<_> = c.pel.iter().take(limit).collect();
            w.array(ids.len());
            for id in ids {
                let n = &g.pel[id];
                w.array(3);
                write_id(w, *id);
                w.int(n.delivery_time);
                w.int(n.delivery_count as i64);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// XREAD, XREADGROUP

/// The parsed options of XREAD/XREADGROUP.
struct ReadArgs<'a> {
    group: Option<(&'a [u8], &'a [u8])>,
    count: usize,
    noack: bool,
    /// BLOCK's timeout in ms (0 = forever).
    block_ms: Option<i64>,
    /// Position of the first key.
    keys_at: usize,
    nkeys: usize,
}

fn parse_read<'a>(argv: &[&'a [u8]]) -> Result<ReadArgs<'a>, String> {
    let xreadgroup = argv[0].len() == 10;
    let mut a = ReadArgs {
        group: None,
        count: 0,
        noack: false,
        block_ms: None,
        keys_at: 0,
        nkeys: 0,
    };
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let o = argv[i];
        if eq_ic(o, "block") && more > 0 {
            i += 1;
            let t = parse_i64(argv[i])
                .ok_or_else(|| "ERR timeout is not an integer or out of range".to_string())?;
            if t < 0 {
                return Err("ERR timeout is negative".into());
            }
            a.block_ms = Some(t);
        } else if eq_ic(o, "count") && more > 0 {
            i += 1;
            let n = parse_i64(argv[i]).ok_or(errors::NOT_INTEGER)?;
            a.count = n.max(0) as usize;
        } else if eq_ic(o, "streams") && more > 0 {
            a.keys_at = i + 1;
            let n = argv.len() - a.keys_at;
            if !n.is_multiple_of(2) {
                // Redis 7.0 words it for XREAD whichever command was called.
                return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            a.nkeys = n / 2;
            break;
        } else if eq_ic(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            a.group = Some((argv[i + 1], argv[i + 2]));
            i += 2;
        } else if eq_ic(o, "noack") {
            if !xreadgroup {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            a.noack = true;
        } else {
            return Err(errors::SYNTAX.into());
        }
        i += 1;
    }
    if a.keys_at == 0 {
        return Err(errors::SYNTAX.into());
    }
    if xreadgroup && a.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    Ok(a)
}

/// What one key's ID argument resolved to.
#[derive(Clone, Copy)]
enum ReadFrom {
    /// Entries after this ID.
    After(StreamId),
    /// XREADGROUP `>`.
    New,
}

/// The first pass on one key: its type, its group, its ID argument. `Ok(None)` when the
/// key is missing (XREAD; `$` then means 0-0).
fn check_key(ctx: &mut Ctx, a: &ReadArgs, key: &[u8], id_arg: &[u8]) -> Result<ReadFrom, String> {
    let now = ctx.shard.now_ms;
    let s = stream_ref(ctx.shard.keyspace.db_mut(ctx.db), key, now)
        .map_err(|()| errors::WRONGTYPE.to_string())?;
    if let Some((g, _)) = a.group
        && s.and_then(|s| s.group(g)).is_none()
    {
        return Err(format!(
            "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(g)
        ));
    }
    if id_arg == b"$" {
        if a.group.is_some() {
            return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
        }
        return Ok(ReadFrom::After(
            s.map_or(StreamId::MIN, |s| s.meta().last_id),
        ));
    }
    if id_arg == b"+" {
        // Redis 7.4's (and Valkey's) `+`: the stream's last entry, an addition a 7.0
        // client never sends (7.0 answers it with the invalid-ID error).
        if a.group.is_some() {
            return Err("ERR The + ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The + ID would just return an empty result set.".into());
        }
        return match s.map(|s| s.meta().last_id) {
            None => Ok(ReadFrom::After(StreamId::MIN)),
            Some(last) => last
                .decr()
                .map(ReadFrom::After)
                .ok_or_else(|| "ERR the stream last element ID is 0-0".to_string()),
        };
    }
    if id_arg == b">" {
        if a.group.is_none() {
            return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
        }
        return Ok(ReadFrom::New);
    }
    match parse_strict_id(id_arg, 0) {
        // Redis marks `>` with the largest ID: that ID reads as `>` in a group.
        Some(StreamId::MAX) if a.group.is_some() => Ok(ReadFrom::New),
        Some(id) => Ok(ReadFrom::After(id)),
        None => Err(INVALID_ID.to_string()),
    }
}

/// The ID a reader must be below to be served: a waiter is served when the last ID moved
/// past its own (Redis compares `last_id`), the first attempt when a live entry is past
/// it (`None`: the stream is empty).
fn top_id(s: &Stream, woken: bool) -> Option<StreamId> {
    if woken {
        Some(s.meta().last_id)
    } else {
        (!s.is_empty()).then(|| s.last_valid_id())
    }
}

/// The second pass on one key: appends `[key, entries]` (without the pair header in
/// RESP3, where the reply is a map) when there is something to serve; returns whether.
fn serve_key(
    ctx: &mut Ctx,
    a: &ReadArgs,
    key: &[u8],
    from: ReadFrom,
    woken: bool,
    out: &mut Vec<u8>,
) -> bool {
    let now = ctx.shard.now_ms;
    let proto = ctx.proto;
    let Ok(Some(s)) = stream_mut(ctx.shard.keyspace.db_mut(ctx.db), key, now) else {
        return false;
    };
    let new_consumer = a
        .group
        .is_some_and(|(g, c)| s.group(g).is_some_and(|g| !g.consumers.contains_key(c)));
    let served = serve_stream(s, a, key, from, woken, now, proto, out);
    if new_consumer
        && let Some((g, c)) = a.group
        && has_consumer(ctx, key, g, c)
    {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
    served
}

/// Whether the group of the stream at `key` now has consumer `c`.
fn has_consumer(ctx: &mut Ctx, key: &[u8], g: &[u8], c: &[u8]) -> bool {
    let now = ctx.shard.now_ms;
    stream_ref(ctx.shard.keyspace.db_mut(ctx.db), key, now)
        .ok()
        .flatten()
        .and_then(|s| s.group(g))
        .is_some_and(|g| g.consumers.contains_key(c))
}

#[expect(
    clippy::too_many_arguments,
    reason = "serve_key's state, passed through"
)]
fn serve_stream(
    s: &mut Stream,
    a: &ReadArgs,
    key: &[u8],
    from: ReadFrom,
    woken: bool,
    now: i64,
    proto: Protocol,
    out: &mut Vec<u8>,
) -> bool {
    let mut w = ReplyWriter::new(out, proto);
    let pair = |w: &mut ReplyWriter| {
        if proto == Protocol::Resp2 {
            w.array(2);
        }
        w.bulk(key);
    };
    match (a.group, from) {
        (None, ReadFrom::After(gt)) => {
            if top_id(s, woken).is_none_or(|top| top <= gt) {
                return false;
            }
            let Some(start) = gt.incr() else {
                return false;
            };
            // Entries after `gt` were all deleted: nothing to serve, the reader waits on
            // (Redis never answers a blocked XREAD with an empty array).
            if s.range(start, StreamId::MAX, false).next().is_none() {
                return false;
            }
            pair(&mut w);
            write_range(&mut w, s, start, StreamId::MAX, false, a.count);
            true
        }
        (Some((g, c)), ReadFrom::After(gt)) => {
            let start = gt.incr().unwrap_or(StreamId::MAX);
            pair(&mut w);
            let mut body = Vec::new();
            let n = {
                let mut bw = ReplyWriter::new(&mut body, proto);
                s.read_group_history(g, c, start, a.count, now, |id, e| {
                    if let Some(e) = e {
                        write_entry(&mut bw, id, e);
                    } else {
                        bw.array(2);
                        write_id(&mut bw, id);
                        bw.null_array();
                    }
                })
            };
            w.array(n);
            w.raw(&body);
            true
        }
        (Some((g, c)), ReadFrom::New) => {
            let last = s.group(g).map_or(StreamId::MAX, |g| g.last_id);
            // The last entry still there, woken or not: a reader is never answered with
            // an empty array when the new entries were deleted.
            if top_id(s, false).is_none_or(|top| top <= last) {
                // Nothing new: Redis 7.0 does not create (or touch) the consumer.
                return false;
            }
            pair(&mut w);
            let mut body = Vec::new();
            let n = {
                let mut bw = ReplyWriter::new(&mut body, proto);
                s.read_group_new(g, c, a.count, a.noack, now, |id, e| {
                    write_entry(&mut bw, id, e);
                })
            };
            w.array(n);
            w.raw(&body);
            true
        }
        (None, ReadFrom::New) => false,
    }
}

/// Carried state of the hop chain: `[name, pass, key index, served count, argc,
/// original argv..., resolved IDs..., served pieces...]`.
const READ_STATE_ARGS: usize = 5;

fn from_text(f: ReadFrom) -> Vec<u8> {
    match f {
        ReadFrom::New => b">".to_vec(),
        ReadFrom::After(id) => id_text(id, &mut [0; 41]).to_vec(),
    }
}

fn from_parse(t: &[u8]) -> ReadFrom {
    if t == b">" {
        ReadFrom::New
    } else {
        ReadFrom::After(parse_strict_id(t, 0).unwrap_or(StreamId::MAX))
    }
}

/// XREAD / XREADGROUP: the first step, on the client's shard.
pub fn xread(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let a = match parse_read(argv) {
        Ok(a) => a,
        Err(e) => return reply(ctx, |w| w.error(&e)),
    };
    let keys = &argv[a.keys_at..a.keys_at + a.nkeys];
    let me = ctx.shard.id;
    if keys.iter().all(|k| ctx.shard.owner(k) == me) {
        // Every key here: both passes at once.
        let mut froms = Vec::with_capacity(a.nkeys);
        for (i, k) in keys.iter().enumerate() {
            match check_key(ctx, &a, k, argv[a.keys_at + a.nkeys + i]) {
                Ok(f) => froms.push(f),
                Err(e) => return reply(ctx, |w| w.error(&e)),
            }
        }
        let mut body = Vec::new();
        let mut n = 0;
        for (k, &f) in keys.iter().zip(&froms) {
            n += usize::from(serve_key(ctx, &a, k, f, false, &mut body));
        }
        if n == 0 && a.block_ms.is_some() {
            let ids: Vec<Vec<u8>> = froms.into_iter().map(from_text).collect();
            return block_read(ctx, argv, &a, &ids);
        }
        return finish_read(ctx, n, &body);
    }
    let argc = argv.len().to_string();
    let mut st: Vec<Vec<u8>> = vec![
        argv[0].to_vec(),
        b"1".to_vec(),
        b"0".to_vec(),
        b"0".to_vec(),
        argc.into_bytes(),
    ];
    st.extend(argv.iter().map(|a| a.to_vec()));
    st.extend(argv[a.keys_at + a.nkeys..].iter().map(|a| a.to_vec()));
    read_step_owned(ctx, st)
}

fn finish_read(ctx: &Ctx, n: usize, body: &[u8]) -> Partial {
    reply(ctx, |w| {
        if n == 0 {
            w.null_array();
        } else {
            if w.is_resp3() {
                w.map(n);
            } else {
                w.array(n);
            }
            w.raw(body);
        }
    })
}

fn read_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    read_step_owned(ctx, argv.iter().map(|a| a.to_vec()).collect())
}

/// Runs the chain from its carried state as far as this shard's keys go.
fn read_step_owned(ctx: &mut Ctx, mut st: Vec<Vec<u8>>) -> Partial {
    let num = |b: &[u8]| parse_i64(b).unwrap_or(0) as usize;
    let argc = num(&st[4]);
    let orig: Vec<Vec<u8>> = st[READ_STATE_ARGS..READ_STATE_ARGS + argc].to_vec();
    let orig_refs: Vec<&[u8]> = orig.iter().map(Vec::as_slice).collect();
    let a = parse_read(&orig_refs).expect("checked by the first step");
    let ids_at = READ_STATE_ARGS + argc;
    let me = ctx.shard.id;
    loop {
        let pass = st[1][0];
        let i = num(&st[2]);
        if i == a.nkeys {
            if pass == b'1' {
                st[1] = b"2".to_vec();
                st[2] = b"0".to_vec();
                continue;
            }
            let n = num(&st[3]);
            if n == 0 && a.block_ms.is_some() {
                return block_read(ctx, &orig_refs, &a, &st[ids_at..ids_at + a.nkeys]);
            }
            let body: Vec<u8> = st[ids_at + a.nkeys..].concat();
            return finish_read(ctx, n, &body);
        }
        let key = orig[a.keys_at + i].clone();
        let owner = ctx.shard.owner(&key);
        if owner != me {
            let refs: Vec<&[u8]> = st.iter().map(Vec::as_slice).collect();
            return hop(owner, read_step, refs);
        }
        if pass == b'1' {
            match check_key(ctx, &a, &key, &orig[a.keys_at + a.nkeys + i]) {
                Ok(f) => st[ids_at + i] = from_text(f),
                Err(e) => return reply(ctx, |w| w.error(&e)),
            }
        } else {
            let from = from_parse(&st[ids_at + i]);
            let mut piece = Vec::new();
            let before = ctx.shard.keyspace.changes();
            if serve_key(ctx, &a, &key, from, false, &mut piece) {
                st[3] = (num(&st[3]) + 1).to_string().into_bytes();
                st.push(piece);
            }
            if a.group.is_some() {
                log_key_read(ctx, &orig_refs, &a, i, before);
            }
        }
        st[2] = (i + 1).to_string().into_bytes();
    }
}

/// A group read served at once in a chain (an XREADGROUP whose keys are not all on the
/// client's shard, which then logs nothing): this key's owner logs the key's part,
/// `XREADGROUP ... STREAMS key id` (Redis too propagates a group read's effects key by
/// key), and WATCH and tracking see the write here.
fn log_key_read(ctx: &mut Ctx, orig: &[&[u8]], a: &ReadArgs, i: usize, before: u64) {
    let data = &mut *ctx.shard;
    if data.keyspace.changes() == before || !(data.effects.on || data.observes_writes()) {
        return;
    }
    let Some(cmd) = crate::commands::lookup(b"xreadgroup") else {
        return;
    };
    let mut one: Vec<&[u8]> = orig[..a.keys_at].to_vec();
    one.extend([orig[a.keys_at + i], orig[a.keys_at + a.nkeys + i]]);
    if data.observes_writes() {
        crate::atomic::watch::after_write(data, cmd, &one, ctx.db, before);
    }
    if data.effects.on {
        crate::propagate::after_command(data, cmd, &one, ctx.db, before, b"");
    }
}

// ---------------------------------------------------------------------------------------
// XREAD/XREADGROUP BLOCK on the waiter registry (`src/blocking.rs`)

/// Nothing to serve anywhere: the client waits. The waiter's arguments are the command's
/// with every `$` resolved to the stream's last ID at this moment (Redis resolves it when
/// the client blocks).
fn block_read(ctx: &Ctx, argv: &[&[u8]], a: &ReadArgs, ids: &[Vec<u8>]) -> Partial {
    let ms = a.block_ms.expect("checked by the caller");
    let deadline_ms = if ms == 0 {
        0
    } else {
        ctx.shard.now_ms.saturating_add(ms)
    };
    let ids_at = a.keys_at + a.nkeys;
    let mut args: Vec<&[u8]> = argv[..ids_at].to_vec();
    args.extend(ids.iter().map(Vec::as_slice));
    let ops = if a.group.is_some() {
        &XREADGROUP_OPS
    } else {
        &XREAD_OPS
    };
    Partial::Block(Box::new(crate::blocking::BlockSpec {
        ops,
        deadline_ms,
        argv: crate::shard::Argv::from_slices(&args),
    }))
}

fn read_keys(argv: &[&[u8]]) -> std::ops::Range<usize> {
    parse_read(argv).map_or(0..0, |a| a.keys_at..a.keys_at + a.nkeys)
}

/// The waiter's position of `key` among its keys, and its parsed options.
fn waiter_key<'a>(argv: &[&'a [u8]], key: &[u8]) -> Option<(ReadArgs<'a>, usize)> {
    let a = parse_read(argv).ok()?;
    let i = argv[a.keys_at..a.keys_at + a.nkeys]
        .iter()
        .position(|k| *k == key)?;
    Some((a, i))
}

fn read_ready(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> bool {
    let Some((a, i)) = waiter_key(argv, key) else {
        return false;
    };
    let now = ctx.shard.now_ms;
    let Ok(Some(s)) = stream_ref(ctx.shard.keyspace.db_mut(ctx.db), key, now) else {
        // The stream deleted or replaced by another type: a group reader is answered
        // with an error (Redis 7.0's signalDeletedKeyAsReady); a plain reader waits on.
        return a.group.is_some();
    };
    // A group gone: the waiter is answered with an error. Otherwise only an entry past
    // the group's last delivered one that is still there serves it (Redis 7.0.15 checks
    // `streamLastValidID`: entries added then deleted leave the reader blocked).
    if let Some((g, _)) = a.group {
        return s
            .group(g)
            .is_none_or(|g| top_id(s, false).is_some_and(|top| top > g.last_id));
    }
    let gt = from_parse(argv[a.keys_at + a.nkeys + i]);
    matches!(gt, ReadFrom::After(gt) if s.meta().last_id > gt)
}

fn read_take(ctx: &mut Ctx, key: &[u8], argv: &[&[u8]]) -> crate::blocking::Take {
    use crate::blocking::Take;
    let Some((a, i)) = waiter_key(argv, key) else {
        return Take::Empty;
    };
    let now = ctx.shard.now_ms;
    match stream_ref(ctx.shard.keyspace.db_mut(ctx.db), key, now) {
        Err(()) | Ok(None) if a.group.is_some() => {
            return Take::Served(reply(ctx, |w| w.error(XREADGROUP_KEY_GONE)));
        }
        Err(()) => return Take::WrongType,
        Ok(None) => return Take::Empty,
        Ok(Some(s)) => {
            if let Some((g, _)) = a.group
                && s.group(g).is_none()
            {
                return Take::Served(reply(ctx, |w| {
                    w.error(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    );
                }));
            }
        }
    }
    let from = from_parse(argv[a.keys_at + a.nkeys + i]);
    let mut body = Vec::new();
    if !serve_key(ctx, &a, key, from, true, &mut body) {
        return Take::Empty;
    }
    Take::Served(finish_read(ctx, 1, &body))
}

/// What a blocked XREADGROUP gets when its stream is deleted or replaced (Redis 7.0).
const XREADGROUP_KEY_GONE: &str = "UNBLOCKED the stream key no longer exists";

fn null_array(w: &mut ReplyWriter) {
    w.null_array();
}

pub static XREAD_OPS: crate::blocking::WaitOps = crate::blocking::WaitOps {
    name: "xread",
    keys: read_keys,
    ready: read_ready,
    take: read_take,
    timed_out: null_array,
    answer_now: null_array,
    moves: false,
};

pub static XREADGROUP_OPS: crate::blocking::WaitOps = crate::blocking::WaitOps {
    name: "xreadgroup",
    ..XREAD_OPS
};
