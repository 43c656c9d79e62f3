//! Blocking commands across shards: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP (and any later command that waits for a key: the registry knows
//! nothing of types). See docs/architecture.md, "Blocking operations".
//!
//! Two sides, often the same shard:
//! - the **client's shard** owns the blocked state (`Client::blocked`): the reply slot,
//!   the deadline, which shards hold registrations, and who may serve it (the claim);
//! - each **owner shard** of a waited key keeps that key's FIFO of waiters (`Registry`),
//!   learns from its databases which waited keys were created or replaced
//!   (`Db::take_ready`), and serves the oldest waiter whose command can take from the key.
//!
//! A waiter whose client lives on another shard is served only after that shard granted
//! a claim (`Claim` → `Granted`), so a client is served at most once even when keys on
//! several shards become ready together, and never after its timeout, CLIENT UNBLOCK or
//! disconnection (those happen on the client's shard, which then refuses claims).
//!
//! Every function here takes the shard's data only; messages for other shards wait in
//! `Registry::mail` until [`pump`] moves them to the outbox, and messages for this shard
//! in `Registry::local`.

use crate::client::Client;
use crate::commands::{Ctx, PartFn, Partial, errors};
use crate::shard::{Argv, Msg, ShardData};
use percore_net::mailbox::Outbox;
use percore_net::reactor::ConnId;
use percore_net::resp::{Protocol, ReplyWriter};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Serving steps (a waiter served, a claim sent, a message handled) one [`pump`] runs
/// before it leaves the rest to the next loop iteration.
pub const SERVE_STEPS_PER_PUMP_MAX: usize = 4096;
/// A key's waiter queue is compacted (dead entries dropped) when it holds more than this
/// many entries beyond twice its live ones.
const QUEUE_SLACK_ENTRIES: usize = 16;

/// The reply of CLIENT UNBLOCK ... ERROR.
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// What a blocking command's `take` found at one key.
pub enum Take {
    /// Nothing to take (absent, or empty): try the next key, or keep waiting.
    Empty,
    /// The key holds another type: WRONGTYPE when the command first runs; a waiter
    /// keeps waiting (Redis 7.0).
    WrongType,
    /// Served: the reply ([`Partial::Encoded`]) or the next step on another shard
    /// ([`Partial::Hop`], e.g. BLMOVE's push to a destination elsewhere).
    Served(Partial),
}

/// How one blocking command waits and is served. One static per command; nothing here
/// depends on the value type, so streams (XREAD BLOCK) plug in the same way.
pub struct WaitOps {
    /// Lowercase command name (for diagnostics).
    pub name: &'static str,
    /// Positions of the waited keys in the command's argv.
    pub keys: fn(&[&[u8]]) -> Range<usize>,
    /// On the key's owner: whether `take` would serve now (checked before a claim).
    pub ready: fn(&mut Ctx, &[u8], &[&[u8]]) -> bool,
    /// On the key's owner: takes from `key` for the command `argv` (the non-blocking
    /// form's work on one key). Runs in the waiter's database and protocol.
    pub take: fn(&mut Ctx, &[u8], &[&[u8]]) -> Take,
    /// The reply on timeout (and CLIENT UNBLOCK ... TIMEOUT).
    pub timed_out: fn(&mut ReplyWriter),
    /// The reply where the command cannot block and nothing could be taken (inside
    /// MULTI or a script): [`answer_without_blocking`].
    #[allow(dead_code, reason = "read by answer_without_blocking")]
    pub answer_now: fn(&mut ReplyWriter),
    /// Serving may write on another shard (BLMOVE): it is counted in the write gate.
    pub moves: bool,
}

/// Every blocking command's [`WaitOps`]; a chain step names one by its index here.
fn ops_table() -> [&'static WaitOps; 10] {
    use crate::commands::{lists, streams, zsets};
    [
        &lists::BLPOP_OPS,
        &lists::BRPOP_OPS,
        &lists::BLMOVE_OPS,
        &lists::BRPOPLPUSH_OPS,
        &lists::BLMPOP_OPS,
        &zsets::BZPOPMIN_OPS,
        &zsets::BZPOPMAX_OPS,
        &zsets::BZMPOP_OPS,
        // streams
        &streams::XREAD_OPS,
        &streams::XREADGROUP_OPS,
    ]
}

fn ops_index(ops: &'static WaitOps) -> usize {
    ops_table()
        .iter()
        .position(|o| std::ptr::eq(*o, ops))
        .expect("every WaitOps is in ops_table")
}

/// A blocking command found nothing to take: what the client's shard needs to block it.
#[derive(Debug)]
pub struct BlockSpec {
    pub ops: &'static WaitOps,
    /// Unix ms; 0 waits forever.
    pub deadline_ms: i64,
    /// The command's arguments (name first).
    pub argv: Argv,
}

impl std::fmt::Debug for WaitOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// **The non-blocking form**, for callers that must answer at once (MULTI/EXEC, scripts):
/// a blocking command's step that returned [`Partial::Block`] is answered with this, as
/// Redis answers a blocking command that cannot block (a null, as if timed out).
#[must_use]
pub fn answer_without_blocking(spec: &BlockSpec, proto: Protocol) -> Partial {
    let mut out = Vec::new();
    (spec.ops.answer_now)(&mut ReplyWriter::new(&mut out, proto));
    Partial::Encoded(out)
}

// ---------------------------------------------------------------------------------------
// Timeouts

/// Largest decimal exponent a C `long double` (x87, 80-bit) holds: `strtold` overflows
/// past it (Redis: "not a float"), where `f64` already gives infinity.
const LONG_DOUBLE_MAX_EXP10: i64 = 4932;

/// Redis's `getTimeoutFromObjectOrReply` in seconds: the deadline in Unix ms (0 =
/// forever) or the error text. The value is read as a `long double`, times 1000, rounded
/// up; a product past `LLONG_MAX` wraps negative in C, hence "timeout is negative".
pub fn parse_timeout(arg: &[u8], now_ms: i64) -> Result<i64, &'static str> {
    const NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
    const NEGATIVE: &str = "ERR timeout is negative";
    let secs = match percore_engine::number::parse_f64(arg) {
        Some(v) => v,
        // A tiny value that `f64` cannot hold but `long double` can: 1 ms.
        None if tiny_long_double(arg) => {
            // Rounded up: 1 ms; a negative one rounds up to -0, which waits forever.
            return Ok(if arg.first() == Some(&b'-') {
                0
            } else {
                now_ms.saturating_add(1)
            });
        }
        None => return Err(NOT_FLOAT),
    };
    if secs.is_infinite() && secs > 0.0 && decimal_exponent(arg) > Some(LONG_DOUBLE_MAX_EXP10) {
        return Err(NOT_FLOAT);
    }
    let ms = (secs * 1000.0).ceil();
    // 2^63: C's conversion of anything at or past it (or infinite) gives LLONG_MIN.
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(NEGATIVE);
    }
    let ms = ms as i64;
    Ok(if ms == 0 {
        0
    } else {
        now_ms.saturating_add(ms)
    })
}

/// The decimal exponent of a plain decimal float text (`12.5e3` → 4), if it is one.
fn decimal_exponent(arg: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(arg).ok()?;
    let text = text.trim_start_matches(['+', '-']);
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    if !int.is_empty() {
        return Some(exp.saturating_add(int.len() as i64 - 1));
    }
    let zeros = frac.bytes().take_while(|&b| b == b'0').count();
    (zeros < frac.len()).then(|| exp.saturating_sub(zeros as i64 + 1))
}

/// A decimal of magnitude below `f64`'s smallest value that a `long double` still holds.
fn tiny_long_double(arg: &[u8]) -> bool {
    decimal_exponent(arg).is_some_and(|e| (-LONG_DOUBLE_MAX_EXP10..-300).contains(&e))
}

// ---------------------------------------------------------------------------------------
// First run: the keys in order, each on its owner, as the non-blocking form

/// Runs a blocking command's first attempt: its keys in order, each on its owner shard
/// (hopping between shards), taking from the first that has something; an error stops
/// the chain (WRONGTYPE). With nothing anywhere, the answer is [`Partial::Block`], which
/// the client's shard turns into a wait (or, inside MULTI/scripts, into
/// [`answer_without_blocking`]). `argv` is the command's, already validated.
pub fn start(ctx: &mut Ctx, argv: &[&[u8]], ops: &'static WaitOps, deadline_ms: i64) -> Partial {
    let index = ops_index(ops).to_string();
    let first = (ops.keys)(argv).start.to_string();
    let deadline = deadline_ms.to_string();
    let mut chain: Vec<&[u8]> = vec![index.as_bytes(), first.as_bytes(), deadline.as_bytes()];
    chain.extend_from_slice(argv);
    try_keys(ctx, &chain)
}

/// A step of [`start`]'s chain: `[ops index, next key position, deadline, argv...]`.
fn try_keys(ctx: &mut Ctx, chain: &[&[u8]]) -> Partial {
    let num = |a: &[u8]| {
        std::str::from_utf8(a)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let table = ops_table();
    let Some(ops) = usize::try_from(num(chain[0]))
        .ok()
        .and_then(|i| table.get(i))
    else {
        return super_reply(ctx, |w| w.error("ERR internal error: bad blocking step"));
    };
    let deadline_ms = num(chain[2]);
    let argv = &chain[3..];
    let keys = (ops.keys)(argv);
    let mut i = usize::try_from(num(chain[1])).unwrap_or(keys.start);
    while i < keys.end {
        let key = argv[i];
        let owner = ctx.shard.owner(key);
        if owner != ctx.shard.id {
            let next = i.to_string();
            let mut sub: Vec<&[u8]> = vec![chain[0], next.as_bytes(), chain[2]];
            sub.extend_from_slice(argv);
            return crate::commands::keyspace::hop(owner, try_keys as PartFn, sub);
        }
        let before = ctx.shard.keyspace.changes();
        match (ops.take)(ctx, key, argv) {
            Take::Empty => i += 1,
            Take::WrongType => return super_reply(ctx, |w| w.error(errors::WRONGTYPE)),
            Take::Served(p) => {
                log_first_attempt(ctx, ops, argv, before, &p);
                return p;
            }
        }
    }
    Partial::Block(Box::new(BlockSpec {
        ops,
        deadline_ms,
        argv: Argv::from_slices(argv),
    }))
}

/// Where a hop chain's step runs: who logs a blocking command's first attempt to the
/// stream of effects (replicas, the AOF).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChainSite {
    /// A transaction or script step: its runner logs the command when it completes.
    #[default]
    Other,
    /// `dispatch` on the client's shard: it logs a result answered there, not one that
    /// goes on to another shard.
    Dispatch,
    /// A step sent from another shard (`Msg::Run`): nobody else logs it.
    Remote,
}

/// The first attempt took from `key`'s owner, here: unless the runner does it (see
/// [`ChainSite`]), what [`took_here`] does for a served waiter.
fn log_first_attempt(ctx: &mut Ctx, ops: &WaitOps, argv: &[&[u8]], before: u64, p: &Partial) {
    let site = ctx.shard.blocking.site;
    let here = site == ChainSite::Remote
        || (site == ChainSite::Dispatch && matches!(p, Partial::Hop { .. }));
    if here {
        took_here(ctx.shard, ops, argv, ctx.db, before, p);
    }
}

/// A blocking command took from a key of this shard (its keyspace's change counter was
/// `before`): WATCH and CLIENT TRACKING see the write on this shard's keys, and the
/// stream of effects gets the command's non-blocking form (`propagate::rewrite`).
fn took_here(
    data: &mut ShardData,
    ops: &WaitOps,
    argv: &[&[u8]],
    db: usize,
    before: u64,
    result: &Partial,
) {
    if !data.effects.on && !data.observes_writes() {
        return;
    }
    let Some(cmd) = crate::commands::lookup(ops.name.as_bytes()) else {
        return;
    };
    if data.observes_writes() {
        crate::atomic::watch::after_write(data, cmd, argv, db, before);
    }
    if data.effects.on {
        let reply = match result {
            Partial::Encoded(b) => b.as_slice(),
            _ => &[],
        };
        crate::propagate::after_command(data, cmd, argv, db, before, reply);
    }
}

fn super_reply(ctx: &Ctx, f: impl FnOnce(&mut ReplyWriter)) -> Partial {
    crate::commands::keyspace::reply(ctx, f)
}

// ---------------------------------------------------------------------------------------
// State

/// A blocked command, unique server-wide: its client's shard and that shard's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId {
    pub shard: u32,
    pub block: u64,
}

/// What an owner shard knows of a waiter.
#[derive(Clone)]
pub struct Waiter {
    pub id: WaiterId,
    pub conn: ConnId,
    /// The client's reply slot.
    pub seq: u64,
    pub proto: Protocol,
    pub ops: &'static WaitOps,
    pub argv: Arc<Argv>,
}

/// CLIENT UNBLOCK's two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    Timeout,
    Error,
}

/// The blocked state of a client, on its own shard (`Client::blocked`).
pub struct Blocked {
    pub block: u64,
    pub seq: u64,
    pub deadline_ms: i64,
    pub ops: &'static WaitOps,
    pub proto: Protocol,
    /// Shards holding a registration of this block.
    pub owners: Vec<usize>,
    /// The shard that was granted the right to serve, until it serves or releases.
    pub claimed_by: Option<usize>,
    /// Shards refused a claim while another held it: told to look again on a release.
    pub refused_busy: Vec<usize>,
    /// CLIENT UNBLOCK arrived while a claim was out: applied if the claim is released.
    pub unblock: Option<Unblock>,
}

/// Messages of the blocking protocol (inside [`Msg::Block`]).
pub enum BlockMsg {
    /// Client's shard → owner: wait on `keys` (all owned by the receiver) of `db`.
    /// `counted`: this registration counts the client in `blocked_clients`.
    Register {
        waiter: Waiter,
        db: u16,
        keys: Vec<Box<[u8]>>,
        counted: bool,
    },
    /// Client's shard → owner: the block is over (served elsewhere, timed out, unblocked,
    /// disconnected).
    Unregister { id: WaiterId },
    /// Owner → client's shard: may I serve this block now?
    Claim {
        id: WaiterId,
        conn: ConnId,
        owner: usize,
    },
    /// Client's shard → owner: yes; serve, or `Release`.
    Granted { id: WaiterId },
    /// Client's shard → owner: no. `gone`: the block is over (forget it); otherwise
    /// another shard holds the claim (skip it until `Recheck`).
    Denied { id: WaiterId, gone: bool },
    /// Owner → client's shard: granted, but nothing to take after all.
    Release {
        id: WaiterId,
        conn: ConnId,
        owner: usize,
    },
    /// Client's shard → owner: the claim that made you skip this waiter was released.
    Recheck { id: WaiterId },
}

struct Registered {
    waiter: Waiter,
    db: u16,
    keys: Vec<Box<[u8]>>,
    counted: bool,
    /// Skipped until `Recheck`: another shard holds the claim.
    busy: bool,
}

#[derive(Default)]
struct KeyQueue {
    /// Waiters in the order they registered; entries no longer in `Registry::waiters`
    /// are dead and dropped lazily.
    queue: VecDeque<WaiterId>,
    live: usize,
    /// A claim sent for this key and not yet answered: the key waits for the answer.
    claim: Option<WaiterId>,
}

/// A shard's blocking state: the waiters on its keys, and the machinery for its own
/// blocked clients.
#[derive(Default)]
pub struct Registry {
    waiters: HashMap<WaiterId, Registered>,
    /// Per database: waited key → its queue.
    keys: Vec<HashMap<Box<[u8]>, KeyQueue>>,
    keys_total: usize,
    /// Keys to look at (reported ready, or whose claim was answered).
    ready: VecDeque<(u16, Box<[u8]>)>,
    /// Ready keys whose next waiter has a claim out for an earlier key (or waits on one
    /// whose claim is out): looked at again, right after that key, once a claim is
    /// answered, so a waiter on several keys is served from the first ready one, as
    /// Redis serves its ready keys one after the other.
    stalled: Vec<(u16, Box<[u8]>)>,
    /// Keys of waiters that may write on another shard, held while the write gate is
    /// closed.
    held: Vec<(u16, Box<[u8]>)>,
    /// Claims out: waiter → the key it was claimed for.
    claims: HashMap<WaiterId, (u16, Box<[u8]>)>,
    next_block: u64,
    /// Client side: deadlines of blocked clients (deadline, block, conn index, generation).
    timeouts: BTreeSet<(i64, u64, u32, u32)>,
    /// Blocked clients of this shard.
    pub blocked_here: usize,
    local: VecDeque<BlockMsg>,
    mail: Vec<(usize, Msg)>,
    /// Clients whose reply arrived in their slot: flushed and resumed after the batch.
    pub flush: Vec<ConnId>,
    running: bool,
    /// False while a client may be out of its slot (inside a batch of its requests).
    safe: bool,
    /// Where the hop step running now was started (set by the shard around its steps).
    pub site: ChainSite,
}

impl Registry {
    /// Whether [`pump`] has anything to do. One branch on the hot path when no client
    /// is blocked anywhere near this shard.
    #[inline]
    pub fn busy(&self) -> bool {
        self.keys_total != 0
            || !self.local.is_empty()
            || !self.mail.is_empty()
            || !self.ready.is_empty()
    }

    /// INFO clients: this shard's blocked clients with a deadline, and its keys that a
    /// live XREADGROUP waits on (Valkey's `clients_in_timeout_table` and
    /// `total_blocking_keys_on_nokey`).
    pub fn info_counts(&self) -> (usize, usize) {
        let nokey = self
            .keys
            .iter()
            .flat_map(HashMap::values)
            .filter(|q| {
                q.queue.iter().any(|id| {
                    self.waiters.get(id).is_some_and(|r| {
                        std::ptr::eq(
                            r.waiter.ops,
                            &raw const crate::commands::streams::XREADGROUP_OPS,
                        )
                    })
                })
            })
            .count();
        (self.timeouts.len(), nokey)
    }

    /// Whether this shard has timers or held keys to look after between iterations.
    #[inline]
    pub fn has_timers(&self) -> bool {
        !self.timeouts.is_empty() || !self.held.is_empty()
    }

    fn queue(&mut self, db: u16, key: &[u8]) -> Option<&mut KeyQueue> {
        self.keys.get_mut(db as usize)?.get_mut(key)
    }
}

fn post(data: &mut ShardData, shard: usize, msg: BlockMsg) {
    if shard == data.id {
        data.blocking.local.push_back(msg);
    } else {
        data.blocking.mail.push((shard, Msg::Block(msg)));
    }
}

fn client_mut(data: &mut ShardData, conn: ConnId) -> Option<&mut Client> {
    data.clients
        .get_mut(conn.index as usize)?
        .as_deref_mut()
        .filter(|c| c.conn == conn)
}

/// Whether the client `conn` may be out of its slot right now (running its requests).
fn maybe_out(data: &ShardData, conn: ConnId) -> bool {
    !data.blocking.safe
        && data
            .clients
            .get(conn.index as usize)
            .is_some_and(Option::is_none)
}

// ---------------------------------------------------------------------------------------
// Client side

/// The client's command found nothing to take: block it on reply slot `seq` (already
/// pushed, `Waiting`), registering on every owner of its keys.
pub fn block(data: &mut ShardData, client: &mut Client, seq: u64, spec: &BlockSpec) {
    if client.blocked.is_some() {
        // Cannot happen through the shard (a blocked client runs nothing); a harness
        // that dispatches regardless gets the old block ended first.
        end_block(data, client, None);
    }
    // CLIENT LIST `tot-cmds` counts a blocking command when it ends (Valkey's
    // `commands_processed`), not when it starts to wait.
    client.tot_cmds = client.tot_cmds.saturating_sub(1);
    let mut args = Vec::new();
    spec.argv.fill(&mut args);
    let keys = (spec.ops.keys)(&args);
    data.blocking.next_block += 1;
    let id = WaiterId {
        shard: data.id as u32,
        block: data.blocking.next_block,
    };
    let argv = Arc::new(Argv::from_slices(&args));
    let waiter = Waiter {
        id,
        conn: client.conn,
        seq,
        proto: client.proto,
        ops: spec.ops,
        argv,
    };
    // Keys grouped by owner, in key order; the first key's owner counts the client.
    let mut per_owner: Vec<(usize, Vec<Box<[u8]>>)> = Vec::new();
    for &k in &args[keys] {
        let owner = data.owner(k);
        match per_owner.iter_mut().find(|(s, _)| *s == owner) {
            Some((_, ks)) => {
                if !ks.iter().any(|x| &**x == k) {
                    ks.push(k.into());
                }
            }
            None => per_owner.push((owner, vec![k.into()])),
        }
    }
    let owners: Vec<usize> = per_owner.iter().map(|(s, _)| *s).collect();
    for (i, (owner, keys)) in per_owner.into_iter().enumerate() {
        post(
            data,
            owner,
            BlockMsg::Register {
                waiter: waiter.clone(),
                db: client.db as u16,
                keys,
                counted: i == 0,
            },
        );
    }
    if spec.deadline_ms != 0 {
        data.blocking.timeouts.insert((
            spec.deadline_ms,
            id.block,
            client.conn.index,
            client.conn.generation,
        ));
    }
    data.blocking.blocked_here += 1;
    client.blocked = Some(Box::new(Blocked {
        block: id.block,
        seq,
        deadline_ms: spec.deadline_ms,
        ops: spec.ops,
        proto: client.proto,
        owners,
        claimed_by: None,
        refused_busy: Vec::new(),
        unblock: None,
    }));
}

/// The block of `client` is over: forget its deadline, and tell every owner but
/// `served_by` (which already dropped its registration).
fn end_block(data: &mut ShardData, client: &mut Client, served_by: Option<usize>) {
    let Some(b) = client.blocked.take() else {
        return;
    };
    data.blocking.blocked_here -= 1;
    if b.deadline_ms != 0 {
        data.blocking.timeouts.remove(&(
            b.deadline_ms,
            b.block,
            client.conn.index,
            client.conn.generation,
        ));
    }
    let id = WaiterId {
        shard: data.id as u32,
        block: b.block,
    };
    for s in b.owners {
        if Some(s) != served_by {
            post(data, s, BlockMsg::Unregister { id });
        }
    }
}

/// A reply for the blocked slot `seq` of `client` arrived (from the owner that held the
/// claim, or this shard): the block is over. Called by the shard before it answers the
/// slot; false when `seq` is not the client's blocked slot. An error reply (NOGROUP after
/// XGROUP DESTROY, WRONGTYPE) counts as the blocked command's failure, as Redis's stats.
pub fn served(data: &mut ShardData, client: &mut Client, seq: u64, result: &Partial) -> bool {
    let Some(b) = client.blocked.as_ref().filter(|b| b.seq == seq) else {
        return false;
    };
    let by = b.claimed_by.or(Some(data.id));
    client.tot_cmds += 1;
    if let Partial::Encoded(reply) = result
        && reply.first() == Some(&b'-')
        && let Some(cmd) = crate::commands::lookup(client.last_cmd.as_bytes())
    {
        data.stats.record_failed(cmd, None, reply);
    }
    end_block(data, client, by);
    data.blocking.flush.push(client.conn);
    true
}

/// Ends a block without serving it: the timeout reply (or CLIENT UNBLOCK's error) goes in
/// its slot.
fn answer_unserved(data: &mut ShardData, client: &mut Client, how: Unblock) {
    let Some(b) = client.blocked.as_ref() else {
        return;
    };
    let (seq, ops, proto) = (b.seq, b.ops, b.proto);
    end_block(data, client, None);
    client.tot_cmds += 1;
    if matches!(how, Unblock::Error)
        && let Some(cmd) = crate::commands::lookup(client.last_cmd.as_bytes())
    {
        // As Redis: the blocked command failed (errorstats `UNBLOCKED`).
        data.stats
            .record_failed(cmd, None, UNBLOCKED_ERROR.as_bytes());
    }
    if let Some(slot) = client.pending_mut(seq) {
        slot.answer(|discard| {
            let mut out = Vec::new();
            if !discard {
                let mut w = ReplyWriter::new(&mut out, proto);
                match how {
                    Unblock::Timeout => (ops.timed_out)(&mut w),
                    Unblock::Error => w.error(UNBLOCKED_ERROR),
                }
            }
            out
        });
    }
    data.blocking.flush.push(client.conn);
}

/// A connection closes: its block (if any) is dropped everywhere. A claim out stays
/// answered by its owner, whose reply finds no one (as a reply Redis writes to a socket
/// whose peer already left).
pub fn forget(data: &mut ShardData, client: &mut Client) {
    let by = client.blocked.as_ref().and_then(|b| b.claimed_by);
    end_block(data, client, by);
}

/// CLIENT UNBLOCK on this shard's client `id`: true when it was blocked (and is now, or
/// will be once a claim out is released, unblocked).
pub fn unblock_client(data: &mut ShardData, id: u64, how: Unblock) -> bool {
    let Some(conn) = data
        .clients
        .iter()
        .flatten()
        .find(|c| c.id == id && c.blocked.is_some())
        .map(|c| c.conn)
    else {
        return crate::replication::wait::unblock(data, id, how);
    };
    let mut client = data.clients[conn.index as usize]
        .take()
        .expect("found above");
    let claimed = client
        .blocked
        .as_ref()
        .is_some_and(|b| b.claimed_by.is_some());
    if claimed {
        if let Some(b) = client.blocked.as_mut() {
            b.unblock = Some(how);
        }
    } else {
        answer_unserved(data, &mut client, how);
    }
    data.clients[conn.index as usize] = Some(client);
    true
}

/// Times out the blocked clients whose deadline passed; the time of the next deadline.
pub fn expire(data: &mut ShardData, now_ms: i64) -> Option<i64> {
    while let Some(&(deadline, block, index, generation)) = data.blocking.timeouts.first() {
        // Redis's check: past the deadline (`timeout < now`).
        if deadline >= now_ms {
            return Some(deadline + 1);
        }
        data.blocking.timeouts.pop_first();
        let conn = ConnId { index, generation };
        let Some(mut client) = data
            .clients
            .get_mut(index as usize)
            .and_then(|c| c.take_if(|c| c.conn == conn))
        else {
            continue;
        };
        let live = client
            .blocked
            .as_ref()
            .is_some_and(|b| b.block == block && b.claimed_by.is_none());
        if live {
            // `end_block` removes the entry again: put it back for it to find.
            data.blocking
                .timeouts
                .insert((deadline, block, index, generation));
            answer_unserved(data, &mut client, Unblock::Timeout);
        }
        // A client with a claim out times out when the claim is released.
        data.clients[index as usize] = Some(client);
    }
    None
}

// ---------------------------------------------------------------------------------------
// Owner side

fn register(data: &mut ShardData, waiter: Waiter, db: u16, keys: Vec<Box<[u8]>>, counted: bool) {
    let reg = &mut data.blocking;
    let dbs = data.keyspace.databases();
    if (db as usize) >= dbs {
        return;
    }
    if reg.keys.len() < dbs {
        reg.keys.resize_with(dbs, HashMap::new);
    }
    let id = waiter.id;
    for k in &keys {
        if !reg.keys[db as usize].contains_key(&**k) {
            data.keyspace.db_mut(db as usize).wait_on(k);
            reg.keys_total += 1;
            data.shared
                .stats
                .blocking_keys
                .fetch_add(1, Ordering::Relaxed);
        }
        let q = reg.keys[db as usize].entry(k.clone()).or_default();
        q.queue.push_back(id);
        q.live += 1;
        // Already something to take (pushed between the first attempt and now)?
        reg.ready.push_back((db, k.clone()));
    }
    if counted {
        data.shared
            .stats
            .blocked_clients
            .fetch_add(1, Ordering::Relaxed);
    }
    reg.waiters.insert(
        id,
        Registered {
            waiter,
            db,
            keys,
            counted,
            busy: false,
        },
    );
}

/// Drops this shard's registration of `id` (every key of it).
fn unregister(data: &mut ShardData, id: WaiterId) {
    let reg = &mut data.blocking;
    let Some(r) = reg.waiters.remove(&id) else {
        return;
    };
    if r.counted {
        data.shared
            .stats
            .blocked_clients
            .fetch_sub(1, Ordering::Relaxed);
    }
    if let Some((cdb, ckey)) = reg.claims.remove(&id) {
        if let Some(q) = reg.queue(cdb, &ckey) {
            q.claim = None;
        }
        resume_after_claim(reg, cdb, ckey);
    }
    for k in r.keys {
        let Some(q) = reg.keys.get_mut(r.db as usize).and_then(|m| m.get_mut(&*k)) else {
            continue;
        };
        q.live -= 1;
        if q.live == 0 {
            reg.keys[r.db as usize].remove(&*k);
            reg.keys_total -= 1;
            data.shared
                .stats
                .blocking_keys
                .fetch_sub(1, Ordering::Relaxed);
            data.keyspace.db_mut(r.db as usize).stop_waiting(&k);
        } else if q.queue.len() > 2 * q.live + QUEUE_SLACK_ENTRIES {
            let waiters = &reg.waiters;
            q.queue.retain(|w| waiters.contains_key(w));
        }
    }
}

/// Looks at one ready key: serves its oldest waiter that can take from it, then the
/// next, until none can or a claim is out. Returns the steps spent.
fn serve_key(data: &mut ShardData, db: u16, key: &[u8]) -> usize {
    let mut steps = 0;
    let mut i = 0;
    loop {
        steps += 1;
        let reg = &mut data.blocking;
        let Some(q) = reg.keys.get_mut(db as usize).and_then(|m| m.get_mut(key)) else {
            return steps;
        };
        if q.claim.is_some() {
            return steps;
        }
        while q
            .queue
            .front()
            .is_some_and(|w| !reg.waiters.contains_key(w))
        {
            q.queue.pop_front();
        }
        let Some(&id) = q.queue.get(i) else {
            return steps;
        };
        i += 1;
        let Some(r) = reg.waiters.get(&id) else {
            continue;
        };
        // Skipped: another shard holds its claim.
        if r.busy {
            continue;
        }
        let stall = !reg.claims.is_empty() && waits_on_a_claim(reg, id, r, key);
        let waiter = r.waiter.clone();
        let mut args = Vec::new();
        waiter.argv.fill(&mut args);
        let mut ctx = Ctx {
            shard: data,
            db: db as usize,
            proto: waiter.proto,
            client: None,
        };
        if !(waiter.ops.ready)(&mut ctx, key, &args) {
            continue;
        }
        if stall {
            // It may yet be served from the key its claim is for: this key waits.
            data.blocking.stalled.push((db, key.into()));
            return steps;
        }
        if waiter.ops.moves && data.shared.write_gate.is_closed() {
            data.blocking.held.push((db, key.into()));
            return steps;
        }
        if id.shard as usize != data.id {
            // A client on another shard: ask first; the key waits for the answer.
            if let Some(q) = data.blocking.queue(db, key) {
                q.claim = Some(id);
            }
            data.blocking.claims.insert(id, (db, key.into()));
            post(
                data,
                id.shard as usize,
                BlockMsg::Claim {
                    id,
                    conn: waiter.conn,
                    owner: data.id,
                },
            );
            return steps;
        }
        if maybe_out(data, waiter.conn) {
            // Its client is running requests: look again after the batch.
            data.blocking.held.push((db, key.into()));
            return steps;
        }
        // This shard's own client: the claim is taken in place.
        let me = data.id;
        let Some(b) = client_mut(data, waiter.conn)
            .and_then(|c| c.blocked.as_mut())
            .filter(|b| b.block == id.block && b.claimed_by.is_none() && b.unblock.is_none())
        else {
            unregister(data, id);
            i = 0;
            continue;
        };
        b.claimed_by = Some(me);
        if serve(data, db, key, &waiter) {
            i = 0;
        } else if let Some(b) = client_mut(data, waiter.conn).and_then(|c| c.blocked.as_mut()) {
            b.claimed_by = None;
        }
    }
}

/// Serves `waiter` (its client's shard agreed, or is this one) from `key`: true when
/// served (its registration here is dropped and the reply is on its way).
fn serve(data: &mut ShardData, db: u16, key: &[u8], waiter: &Waiter) -> bool {
    let gated = waiter.ops.moves && data.shards > 1;
    if gated && !data.shared.write_gate.enter(1) {
        data.blocking.held.push((db, key.into()));
        return false;
    }
    let mut args = Vec::new();
    waiter.argv.fill(&mut args);
    let before = data.keyspace.changes();
    let mut ctx = Ctx {
        shard: data,
        db: db as usize,
        proto: waiter.proto,
        client: None,
    };
    let result = match (waiter.ops.take)(&mut ctx, key, &args) {
        Take::Served(p) => crate::shard::run_hops(&mut ctx, p),
        Take::Empty | Take::WrongType => {
            if gated {
                data.shared.write_gate.leave(1);
            }
            return false;
        }
    };
    // No client of this shard is running a command: nobody is the writer (NOLOOP).
    data.tracking.writer = 0;
    took_here(data, waiter.ops, &args, db as usize, before, &result);
    unregister(data, waiter.id);
    let client_shard = waiter.id.shard as usize;
    match result {
        Partial::Hop { shard, step, argv } => {
            let msg = Msg::Run {
                from: client_shard,
                conn: waiter.conn,
                seq: waiter.seq,
                db,
                proto: waiter.proto,
                step,
                argv,
                gated,
            };
            if shard == data.id {
                unreachable!("run_hops ran this shard's steps");
            }
            data.blocking.mail.push((shard, msg));
        }
        result => {
            if gated {
                data.shared.write_gate.leave(1);
            }
            if client_shard == data.id {
                deliver_local(data, waiter.conn, waiter.seq, result);
            } else {
                data.blocking.mail.push((
                    client_shard,
                    Msg::Done {
                        conn: waiter.conn,
                        seq: waiter.seq,
                        shard: data.id,
                        result,
                    },
                ));
            }
        }
    }
    true
}

/// A served reply for a client of this shard, which is in its slot.
fn deliver_local(data: &mut ShardData, conn: ConnId, seq: u64, result: Partial) {
    let Some(mut client) = data
        .clients
        .get_mut(conn.index as usize)
        .and_then(|c| c.take_if(|c| c.conn == conn))
    else {
        return;
    };
    served(data, &mut client, seq, &result);
    if let Some(slot) = client.pending_mut(seq) {
        slot.answer(|discard| match result {
            Partial::Encoded(b) if !discard => b,
            _ => Vec::new(),
        });
    }
    data.clients[conn.index as usize] = Some(client);
}

fn handle(data: &mut ShardData, msg: BlockMsg) -> Result<(), BlockMsg> {
    match msg {
        BlockMsg::Register {
            waiter,
            db,
            keys,
            counted,
        } => register(data, waiter, db, keys, counted),
        BlockMsg::Unregister { id } => unregister(data, id),
        BlockMsg::Recheck { id } => {
            if let Some(r) = data.blocking.waiters.get_mut(&id) {
                r.busy = false;
                requeue_keys(data, id);
            }
        }
        BlockMsg::Claim { id, conn, owner } => {
            if maybe_out(data, conn) {
                return Err(BlockMsg::Claim { id, conn, owner });
            }
            let answer = match client_mut(data, conn).and_then(|c| c.blocked.as_mut()) {
                Some(b) if b.block == id.block => {
                    if b.claimed_by.is_none() && b.unblock.is_none() {
                        b.claimed_by = Some(owner);
                        BlockMsg::Granted { id }
                    } else {
                        if !b.refused_busy.contains(&owner) {
                            b.refused_busy.push(owner);
                        }
                        BlockMsg::Denied { id, gone: false }
                    }
                }
                _ => BlockMsg::Denied { id, gone: true },
            };
            post(data, owner, answer);
        }
        BlockMsg::Granted { id } => {
            let Some((db, key)) = data.blocking.claims.remove(&id) else {
                // Not ours any more (cannot happen: the client drops nothing it granted).
                if let Some(r) = data.blocking.waiters.get(&id) {
                    let (conn, owner) = (r.waiter.conn, data.id);
                    post(
                        data,
                        id.shard as usize,
                        BlockMsg::Release { id, conn, owner },
                    );
                }
                return Ok(());
            };
            if let Some(q) = data.blocking.queue(db, &key) {
                q.claim = None;
            }
            let waiter = data.blocking.waiters.get(&id).map(|r| r.waiter.clone());
            let served = waiter.as_ref().is_some_and(|w| serve(data, db, &key, w));
            if !served && let Some(w) = waiter {
                let owner = data.id;
                post(
                    data,
                    id.shard as usize,
                    BlockMsg::Release {
                        id,
                        conn: w.conn,
                        owner,
                    },
                );
                if w.ops.moves && data.shared.write_gate.is_closed() {
                    let reg = &mut data.blocking;
                    reg.held.push((db, key));
                    reg.held.append(&mut reg.stalled);
                    return Ok(());
                }
                requeue_keys(data, id);
            }
            resume_after_claim(&mut data.blocking, db, key);
        }
        BlockMsg::Denied { id, gone } => {
            if let Some((db, key)) = data.blocking.claims.remove(&id) {
                if let Some(q) = data.blocking.queue(db, &key) {
                    q.claim = None;
                }
                resume_after_claim(&mut data.blocking, db, key);
            }
            if gone {
                unregister(data, id);
            } else if let Some(r) = data.blocking.waiters.get_mut(&id) {
                r.busy = true;
                requeue_keys(data, id);
            }
        }
        BlockMsg::Release { id, conn, owner } => {
            if maybe_out(data, conn) {
                return Err(BlockMsg::Release { id, conn, owner });
            }
            let now = data.now_ms;
            let Some(mut client) = data
                .clients
                .get_mut(conn.index as usize)
                .and_then(|c| c.take_if(|c| c.conn == conn))
            else {
                // Gone while the claim was out: its last registration goes too.
                post(data, owner, BlockMsg::Unregister { id });
                return Ok(());
            };
            let mut recheck = Vec::new();
            let mut then = None;
            if let Some(b) = client.blocked.as_mut()
                && b.block == id.block
                && b.claimed_by == Some(owner)
            {
                b.claimed_by = None;
                recheck = std::mem::take(&mut b.refused_busy);
                then = b
                    .unblock
                    .take()
                    .or((b.deadline_ms != 0 && b.deadline_ms <= now).then_some(Unblock::Timeout));
            }
            if let Some(how) = then {
                answer_unserved(data, &mut client, how);
            } else {
                for s in recheck {
                    post(data, s, BlockMsg::Recheck { id });
                }
            }
            data.clients[conn.index as usize] = Some(client);
        }
    }
    Ok(())
}

/// Whether waiter `id` (`r`), found ready on `key`, must wait for a claim out first: its
/// own claim for another key, or another waiter's on one of its other keys here (that key
/// came ready first; Redis would serve from it before looking at `key`).
fn waits_on_a_claim(reg: &Registry, id: WaiterId, r: &Registered, key: &[u8]) -> bool {
    reg.claims.contains_key(&id)
        || r.keys.iter().any(|k| {
            **k != *key
                && reg
                    .keys
                    .get(r.db as usize)
                    .and_then(|m| m.get(k))
                    .is_some_and(|q| q.claim.is_some())
        })
}

/// A claim for `key` was answered (or dropped): the key is looked at next, then the keys
/// stalled behind claims, in their order.
fn resume_after_claim(reg: &mut Registry, db: u16, key: Box<[u8]>) {
    for k in reg.stalled.drain(..).rev() {
        reg.ready.push_front(k);
    }
    reg.ready.push_front((db, key));
}

/// Every key of waiter `id` here is looked at again.
fn requeue_keys(data: &mut ShardData, id: WaiterId) {
    if let Some(r) = data.blocking.waiters.get(&id) {
        let db = r.db;
        for k in &r.keys {
            data.blocking.ready.push_back((db, k.clone()));
        }
    }
}

/// A blocking-protocol message from another shard (run by the next [`pump`]).
pub fn on_message(data: &mut ShardData, msg: BlockMsg) {
    data.blocking.local.push_back(msg);
}

/// Runs what is due: messages for this shard, ready keys (reported by the databases or
/// re-queued), and moves mail for other shards to `outbox`. `safe`: every client of the
/// shard is in its slot (not inside a batch of its requests).
pub fn pump(data: &mut ShardData, outbox: &mut Outbox<Msg>, safe: bool) {
    if data.blocking.running || !data.blocking.busy() {
        return;
    }
    data.blocking.running = true;
    data.blocking.safe = safe;
    // Keys are looked at with the time now, not the loop's (Redis's
    // handleClientsBlockedOnKeys updates its cached time): a key that expired during the
    // batch (a transaction's DEBUG SLEEP) serves nobody.
    data.now_ms = data.now_ms.max(percore_net::reactor::unix_ms());
    let mut steps = 0;
    let mut deferred: Vec<BlockMsg> = Vec::new();
    while steps < SERVE_STEPS_PER_PUMP_MAX {
        if let Some(msg) = data.blocking.local.pop_front() {
            if let Err(msg) = handle(data, msg) {
                deferred.push(msg);
            }
            steps += 1;
            continue;
        }
        if data.blocking.keys_total != 0 {
            for db in 0..data.keyspace.databases() {
                if data.keyspace.db(db).has_ready() {
                    for k in data.keyspace.db_mut(db).take_ready() {
                        data.blocking.ready.push_back((db as u16, k));
                    }
                }
            }
        }
        let Some((db, key)) = data.blocking.ready.pop_front() else {
            break;
        };
        // The same key queued several times is served once.
        data.blocking
            .ready
            .retain(|(d, k)| !(*d == db && **k == *key));
        steps += serve_key(data, db, &key);
    }
    data.blocking.local.extend(deferred);
    for (shard, msg) in data.blocking.mail.drain(..) {
        outbox.send(shard, msg);
    }
    data.blocking.safe = false;
    data.blocking.running = false;
}

/// Between loop iterations: timeouts, keys held for the write gate or for a client that
/// was running, and the waited keys of a keyspace replaced at a barrier (DEBUG RELOAD).
/// Returns how long the loop may sleep before this needs looking at again.
pub fn tick(data: &mut ShardData, now_ms: i64) -> Option<std::time::Duration> {
    let mut wake = None;
    if !data.blocking.held.is_empty() {
        if data.shared.write_gate.is_closed() {
            wake = Some(crate::snapshot::gate::GATE_POLL);
        } else {
            let held = std::mem::take(&mut data.blocking.held);
            data.blocking.ready.extend(held);
            wake = Some(std::time::Duration::ZERO);
        }
    }
    if data.blocking.keys_total != 0 && data.keyspace.waited_total() != data.blocking.keys_total {
        resync(data);
    }
    if let Some(next) = expire(data, now_ms) {
        let d = std::time::Duration::from_millis(u64::try_from(next - now_ms).unwrap_or(0));
        wake = Some(wake.map_or(d, |w: std::time::Duration| w.min(d)));
    }
    wake
}

/// Declares every waited key to the databases again and looks at all of them (after a
/// barrier replaced the keyspace).
fn resync(data: &mut ShardData) {
    for db in 0..data.keyspace.databases() {
        data.keyspace.db_mut(db).clear_waited();
    }
    let reg = &mut data.blocking;
    for (db, m) in reg.keys.iter().enumerate() {
        for k in m.keys() {
            if db < data.keyspace.databases() {
                data.keyspace.db_mut(db).wait_on(k);
                reg.ready.push_back((db as u16, k.clone()));
            }
        }
    }
}

/// A write made `key` of database `db` (on this shard) ready for waiters that the
/// databases do not report on their own: a key created or replaced is reported by the
/// database; a command that adds to an existing value others may wait on (XADD for
/// streams) calls this. Costs one branch when nobody waits on this shard.
#[inline]
pub fn signal_key(shard: &mut ShardData, db: usize, key: &[u8]) {
    if shard.blocking.keys_total == 0 {
        return;
    }
    if shard
        .blocking
        .keys
        .get(db)
        .is_some_and(|m| m.contains_key(key))
    {
        shard.blocking.ready.push_back((db as u16, key.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis_7_0() {
        let now = 1_000_000;
        assert_eq!(parse_timeout(b"0", now), Ok(0));
        assert_eq!(parse_timeout(b"1", now), Ok(now + 1000));
        assert_eq!(parse_timeout(b"0.001", now), Ok(now + 1));
        assert_eq!(parse_timeout(b"0.0001", now), Ok(now + 1));
        assert_eq!(parse_timeout(b".5", now), Ok(now + 500));
        assert_eq!(parse_timeout(b"5.", now), Ok(now + 5000));
        assert_eq!(parse_timeout(b"+1", now), Ok(now + 1000));
        assert_eq!(parse_timeout(b"-0", now), Ok(0));
        assert_eq!(parse_timeout(b"1e-400", now), Ok(now + 1));
        let not_float = Err("ERR timeout is not a float or out of range");
        let negative = Err("ERR timeout is negative");
        assert_eq!(parse_timeout(b"abc", now), not_float);
        assert_eq!(parse_timeout(b"", now), not_float);
        assert_eq!(parse_timeout(b" 1", now), not_float);
        assert_eq!(parse_timeout(b"nan", now), not_float);
        assert_eq!(parse_timeout(b"1e5000", now), not_float);
        assert_eq!(parse_timeout(b"1e-5000", now), not_float);
        assert_eq!(parse_timeout(b"-1", now), negative);
        assert_eq!(parse_timeout(b"-0.001", now), negative);
        assert_eq!(parse_timeout(b"inf", now), negative);
        assert_eq!(parse_timeout(b"-inf", now), negative);
        assert_eq!(parse_timeout(b"1e400", now), negative);
        assert_eq!(parse_timeout(b"1e308", now), negative);
        assert_eq!(parse_timeout(b"9223372036854776", now), negative);
        assert!(parse_timeout(b"9223372036854", now).is_ok_and(|d| d > now));
    }
}

/// The non-blocking form, as MULTI/EXEC and scripts call it: a blocking command's step
/// on an empty key answers [`Partial::Block`], turned into Redis's immediate reply.
#[cfg(test)]
mod nonblocking_tests {
    use super::*;
    use crate::commands::{Exec, lookup};
    use crate::config::{Config, LogLevel};
    use crate::server::{Log, ServerShared};

    fn run(data: &mut ShardData, proto: Protocol, args: &[&str]) -> Partial {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let Exec::Hop(step) = lookup(argv[0]).expect("known").exec else {
            panic!("{} is a hop command", args[0]);
        };
        let mut ctx = Ctx {
            shard: data,
            db: 0,
            proto,
            client: None,
        };
        step(&mut ctx, &argv)
    }

    #[test]
    fn a_blocking_command_that_cannot_wait_answers_at_once() {
        let shared = ServerShared::new(
            Config {
                save: Vec::new(),
                ..Config::default()
            },
            None,
            Log::new(Box::new(std::io::sink()), LogLevel::Nothing),
            1,
            0,
            String::new(),
        );
        let mut shard = crate::shard::Shard::new(0, 1, shared);
        let data = &mut shard.data;
        let cases: [(&[&str], &[u8], &[u8]); 8] = [
            (&["blpop", "a", "b", "0"], b"*-1\r\n", b"_\r\n"),
            (&["brpop", "a", "1.5"], b"*-1\r\n", b"_\r\n"),
            (
                &["blmove", "a", "b", "left", "right", "0"],
                b"$-1\r\n",
                b"_\r\n",
            ),
            (&["brpoplpush", "a", "b", "0"], b"$-1\r\n", b"_\r\n"),
            (
                &["blmpop", "0", "2", "a", "b", "left"],
                b"*-1\r\n",
                b"_\r\n",
            ),
            (&["bzpopmin", "z", "0"], b"*-1\r\n", b"_\r\n"),
            (&["bzpopmax", "z", "y", "0"], b"*-1\r\n", b"_\r\n"),
            (
                &["bzmpop", "0", "1", "z", "max", "count", "3"],
                b"*-1\r\n",
                b"_\r\n",
            ),
        ];
        for (args, resp2, resp3) in cases {
            for (proto, want) in [(Protocol::Resp2, resp2), (Protocol::Resp3, resp3)] {
                let Partial::Block(spec) = run(data, proto, args) else {
                    panic!("{args:?} should block");
                };
                match answer_without_blocking(&spec, proto) {
                    Partial::Encoded(b) => assert_eq!(b, want, "{args:?}"),
                    other => panic!("{other:?}"),
                }
            }
        }
        // With something to take, the step answers itself (never blocks).
        let Exec::Keyed(rpush) = lookup(b"rpush").expect("known").exec else {
            panic!("rpush is keyed");
        };
        let mut out = Vec::new();
        let mut ctx = Ctx {
            shard: data,
            db: 0,
            proto: Protocol::Resp2,
            client: None,
        };
        rpush(
            &mut ctx,
            &[b"rpush", b"b", b"x"],
            &mut ReplyWriter::new(&mut out, Protocol::Resp2),
        );
        match run(data, Protocol::Resp2, &["blpop", "a", "b", "0"]) {
            Partial::Encoded(b) => assert_eq!(b, b"*2\r\n$1\r\nb\r\n$1\r\nx\r\n"),
            other => panic!("{other:?}"),
        }
    }
}
