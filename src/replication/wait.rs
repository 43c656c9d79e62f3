//! WAIT numreplicas timeout, and `min-replicas-to-write`.
//!
//! Redis answers WAIT once `numreplicas` replicas acknowledged the offset right after the
//! client's last write (`c->woff`). Here the stream's offsets are assigned by the merger
//! thread (`crate::propagate`), after the shards published their effects, so a WAIT takes
//! the publications of every shard once the client's earlier commands have all answered
//! (a pipeline's writes forwarded to other shards may still be running when WAIT is read:
//! it then waits for their replies first; a shard publishes before its replies and mail
//! leave) and, once the merger wrote them all, waits for the stream's end at that moment
//! (`primary::data_end`). The offset is at or after Redis's `woff`: it may include other
//! clients' writes of the same moment, never fewer than the client's own. A WAIT that
//! times out before that offset is known answers 0.
//!
//! A waiting client blocks its connection, not the shard: its reply slot stays `Waiting`
//! (later requests wait behind it) and the shard looks at its waiters after each loop
//! iteration, waking every [`WAIT_POLL`] while any wait. The replicas' ACKs arrive on
//! their reader threads; WAIT asks for them with `REPLCONF GETACK *` in the stream, as
//! Redis does.

use crate::blocking::Unblock;
use crate::client::{Client, Pending, ReplyMode};
use crate::shard::{Msg, ShardData};
use percore_net::reactor::{ConnId, Io};
use percore_net::resp::ReplyWriter;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a shard with waiting WAIT clients looks at the replicas' acknowledgements.
pub const WAIT_POLL: Duration = Duration::from_millis(1);

/// How long a timed-out WAIT still waits for the stream offset of its client's writes
/// (they ran on another shard or are being written) before it answers 0.
const WAIT_TARGET_GRACE_MS: i64 = 1000;

/// A client waiting in WAIT.
pub struct Waiter {
    conn: ConnId,
    seq: u64,
    numreplicas: i64,
    /// Unix ms; 0 waits for ever.
    deadline_ms: i64,
    /// Every shard's publications when WAIT ran (or, when the client's earlier commands
    /// were still running on other shards, once their replies arrived: `None` until
    /// then): the offset is known once all are written.
    tickets: Option<Vec<u64>>,
    /// The stream offset the replicas must acknowledge.
    target: Option<i64>,
    /// CLIENT UNBLOCK ended the wait: answered at the next look.
    unblocked: Option<Unblock>,
}

/// WAIT (arguments checked by its handler, `commands::replication::wait`) on a primary:
/// answers at once when enough replicas acknowledged what was written so far, or inside
/// a transaction; else the client waits.
pub fn start(
    data: &mut ShardData,
    client: Option<&mut Client>,
    numreplicas: i64,
    timeout_ms: i64,
    w: &mut ReplyWriter,
) {
    // The client's earlier commands still running on other shards (a pipeline of writes
    // then WAIT): their effects are not published yet, so the offset is taken once their
    // replies arrived (each shard publishes before it replies), else WAIT could count
    // replicas that lack them.
    if let Some(c) = client.as_deref()
        && c.last_cmd == "wait"
        && c.pending.iter().any(|p| !matches!(p, Pending::Ready(_)))
    {
        let client = client.expect("checked above");
        block(data, client, numreplicas, timeout_ms, None, None);
        return;
    }
    let shared = &data.shared;
    let tickets = shared.effects.published();
    let target = shared
        .effects
        .written(&tickets)
        .then(|| crate::replication::primary::data_end(shared));
    let now = target.map(|t| crate::replication::primary::acked(shared, t));
    let Some(client) = client else {
        w.int(now.unwrap_or(0));
        return;
    };
    // Dispatch names the command it runs in `last_cmd`: inside EXEC it is "exec", and a
    // transaction cannot block (Redis's CLIENT_DENY_BLOCKING): the count now.
    let in_exec = client.last_cmd != "wait";
    if in_exec || now.is_some_and(|n| n >= numreplicas) {
        let n = now.unwrap_or_else(|| {
            let end = crate::replication::primary::data_end(shared);
            crate::replication::primary::acked(shared, end)
        });
        w.int(n);
        return;
    }
    block(data, client, numreplicas, timeout_ms, Some(tickets), target);
}

fn block(
    data: &mut ShardData,
    client: &mut Client,
    numreplicas: i64,
    timeout_ms: i64,
    tickets: Option<Vec<u64>>,
    target: Option<i64>,
) {
    let discard = matches!(client.reply_mode, ReplyMode::Off | ReplyMode::Skipping);
    let seq = client.push_pending(Pending::Waiting { discard });
    client.hop_barrier = Some(seq);
    let deadline_ms = if timeout_ms == 0 {
        0
    } else {
        data.now_ms.saturating_add(timeout_ms)
    };
    if target.is_some() {
        crate::replication::primary::request_getack(&data.shared);
    }
    data.repl.waits.push(Waiter {
        conn: client.conn,
        seq,
        numreplicas,
        deadline_ms,
        tickets,
        target,
        unblocked: None,
    });
}

/// After a loop iteration: the WAITs that are answered (enough ACKs, or timed out), as
/// `(connection, reply slot, reply)`; asks to be woken again while any wait.
pub fn answers(data: &mut ShardData, io: &mut Io<Msg, ()>) -> Vec<(ConnId, u64, Vec<u8>)> {
    if data.repl.waits.is_empty() {
        return Vec::new();
    }
    let now_ms = io.now_ms;
    let shared = std::sync::Arc::clone(&data.shared);
    let mut out = Vec::new();
    let clients = &data.clients;
    data.repl.waits.retain_mut(|wt| {
        if wt.tickets.is_none() && earlier_replies_arrived(clients, wt) {
            wt.tickets = Some(shared.effects.published());
        }
        if wt.target.is_none()
            && let Some(tickets) = &wt.tickets
            && shared.effects.written(tickets)
        {
            wt.target = Some(crate::replication::primary::data_end(&shared));
            crate::replication::primary::request_getack(&shared);
        }
        if wt.unblocked == Some(Unblock::Error) {
            let reply = format!("-{}\r\n", crate::blocking::UNBLOCKED_ERROR);
            out.push((wt.conn, wt.seq, reply.into_bytes()));
            return false;
        }
        // CLIENT UNBLOCK (TIMEOUT) answers as the timeout would (Redis's
        // replyToBlockedClientTimedOut: the replicas that acknowledged so far).
        let timed_out = wt.unblocked.is_some() || (wt.deadline_ms != 0 && now_ms >= wt.deadline_ms);
        let target = match wt.target {
            Some(t) => t,
            // CLIENT UNBLOCK: what was written so far.
            None if wt.unblocked.is_some() => crate::replication::primary::data_end(&shared),
            // Timed out before the offset of the client's writes is known (they still run
            // on another shard, or the stream has not written them yet): no replica can
            // have acknowledged them before they were written, so the offset is awaited a
            // little longer; past that, none is counted (never a replica that lacks them).
            None if timed_out && now_ms >= wt.deadline_ms.saturating_add(WAIT_TARGET_GRACE_MS) => {
                out.push((wt.conn, wt.seq, b":0\r\n".to_vec()));
                return false;
            }
            None => return true,
        };
        let n = crate::replication::primary::acked(&shared, target);
        if n >= wt.numreplicas || timed_out {
            out.push((wt.conn, wt.seq, format!(":{n}\r\n").into_bytes()));
            return false;
        }
        true
    });
    if !data.repl.waits.is_empty() {
        io.wake_within(WAIT_POLL);
    }
    out
}

/// Whether every reply slot of `wt`'s client before its WAIT has arrived (a client that
/// is gone counts as arrived: the waiter is forgotten with it).
fn earlier_replies_arrived(clients: &[Option<Box<Client>>], wt: &Waiter) -> bool {
    let Some(c) = clients
        .get(wt.conn.index as usize)
        .and_then(Option::as_ref)
        .filter(|c| c.conn == wt.conn)
    else {
        return true;
    };
    let before = usize::try_from(wt.seq.saturating_sub(c.first_seq)).unwrap_or(usize::MAX);
    c.pending
        .iter()
        .take(before)
        .all(|p| matches!(p, Pending::Ready(_)))
}

/// Whether any client of this shard waits (the loop then wakes every [`WAIT_POLL`]).
pub fn any(data: &ShardData) -> bool {
    !data.repl.waits.is_empty()
}

/// CLIENT UNBLOCK of this shard's client `id`: true when it waits in WAIT (it is answered
/// after this loop iteration, `how` as for a blocking command).
pub fn unblock(data: &mut ShardData, id: u64, how: Unblock) -> bool {
    let clients = &data.clients;
    let is_it = |w: &Waiter| {
        clients
            .get(w.conn.index as usize)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.conn == w.conn && c.id == id)
    };
    let Some(wt) = data.repl.waits.iter_mut().find(|w| is_it(w)) else {
        return false;
    };
    if wt.unblocked.is_some() {
        return false;
    }
    wt.unblocked = Some(how);
    true
}

/// A connection closed: its WAIT, if any, is forgotten.
pub fn forget(data: &mut ShardData, conn: ConnId) {
    data.repl.waits.retain(|w| w.conn != conn);
}

/// `min-replicas-to-write`: the refusal of a write on a primary without enough good
/// replicas (Redis's `checkGoodReplicasStatus`).
pub fn too_few_replicas(data: &ShardData) -> bool {
    let cfg = &data.cfg.repl;
    cfg.min_replicas_to_write > 0
        && cfg.min_replicas_max_lag_s > 0
        && data.shared.repl.primary.good.load(Ordering::Relaxed)
            < i64::from(cfg.min_replicas_to_write)
}

/// `min-replicas-to-write` for scripts (Redis 7.0's `checkGoodReplicasStatus`): a
/// primary with too few good replicas refuses a script declaring it may write before it
/// runs, and a write a script calls (one without flags).
pub fn script_refused(data: &ShardData) -> bool {
    too_few_replicas(data) && !data.shared.repl.is_replica.load(Ordering::Relaxed)
}

/// The `min-replicas-to-write` refusal text.
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
/// An EXEC whose queued writes meet too few good replicas (its queue was accepted while
/// there were enough).
pub const EXEC_NOREPLICAS: &str =
    "EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.";
