//! Per-connection state: selected database, protocol, auth, name, and the queue of replies
//! that keeps pipelined answers in request order whatever shard produced them.

use crate::commands::Gather;
use percore_net::reactor::ConnId;
use percore_net::resp::{Protocol, Request};
use std::collections::{HashSet, VecDeque};

/// The most replies one connection may have outstanding (waiting for other shards) before
/// the shard stops reading its requests until some come back.
pub const MAX_PENDING_REPLIES_PER_CONN: usize = 1024;

/// `CLIENT REPLY` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// The command being executed is the skipped one.
    Skipping,
}

/// A reply slot for a request whose answer is not yet written to the connection.
pub enum Pending {
    /// Another shard is computing it; `discard` drops it on arrival (CLIENT REPLY OFF/SKIP).
    Waiting { discard: bool },
    /// Computed, waiting for earlier replies.
    Ready(Vec<u8>),
    /// A multi-shard command collecting its parts.
    Gather(Box<Gather>),
}

impl Pending {
    /// A reply computed elsewhere arrives for this slot: a `Waiting` slot becomes `Ready`
    /// with `bytes(discard)`; any other slot is left as it is.
    pub fn answer(&mut self, bytes: impl FnOnce(bool) -> Vec<u8>) {
        if let Pending::Waiting { discard } = *self {
            *self = Pending::Ready(bytes(discard));
        }
    }
}

pub struct Client {
    pub conn: ConnId,
    pub id: u64,
    pub db: usize,
    pub proto: Protocol,
    pub name: Option<Vec<u8>>,
    pub authenticated: bool,
    /// The ACL user this connection runs as (`None` until the shard links it: the
    /// default user).
    pub acl_user: Option<std::sync::Arc<crate::acl::user::User>>,
    /// The user may run everything: dispatch skips the ACL check (one branch).
    pub acl_free: bool,
    pub created_ms: i64,
    pub last_interaction_ms: i64,
    pub last_cmd: &'static str,
    pub reply_mode: ReplyMode,
    pub peer: String,
    pub local: String,
    /// The socket's descriptor, for CLIENT LIST's `fd`.
    pub fd: i32,
    pub no_evict: bool,
    /// CLIENT NO-TOUCH: this client's commands (but TOUCH) leave the keys' access time.
    pub no_touch: bool,
    /// CLIENT CAPA REDIRECT: the client follows `-REDIRECT` (CLIENT LIST's `capa=r`).
    pub capa_redirect: bool,
    /// Commands run for this client (CLIENT LIST's `tot-cmds`).
    pub tot_cmds: u64,
    /// Query bytes received (`tot-net-in`), counted as each batch of input is run.
    pub net_in: u64,
    /// Reply bytes sent (`tot-net-out`), as of this connection's last batch of input.
    pub net_out: u64,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    /// QUIT, or a kill of this client: close once the reply is out.
    pub close_after_reply: bool,
    /// QUIT or a protocol error while replies were off (CLIENT REPLY OFF/SKIP): Redis 7.0
    /// never writes the reply that would close the connection, so it stays open, runs
    /// nothing more and closes when the client does (or at `timeout`). Input is dropped.
    pub stalled: bool,
    /// Unconsumed query bytes at the last read, for CLIENT LIST's `qbuf`.
    pub qbuf: usize,
    /// Its buffers' sizes at the last look and what it counts for (`client_mem`).
    pub mem: crate::client_mem::ClientMem,
    pub pending: VecDeque<Pending>,
    /// Sequence number of `pending[0]`.
    pub first_seq: u64,
    /// The reply slot of a multi-step command (`Exec::Hop`) still running on other
    /// shards; later requests wait for it so that they see its writes.
    pub hop_barrier: Option<u64>,
    /// Since when (Unix ms) the pending output has been above the soft limit of
    /// `client-output-buffer-limit normal`.
    pub obuf_soft_since_ms: Option<i64>,
    /// ASKING: the next command may use a slot this node is importing.
    pub asking: bool,
    /// READONLY (cluster mode): reads may be served by a replica (percore has none yet).
    pub readonly: bool,
    /// This connection's resumable request parser: where it stopped in a request that was
    /// incomplete at the last read. Per connection, never per shard: a shard serves many
    /// connections, and resuming one's parse at another's offsets runs bytes of a value as
    /// commands.
    pub req: Request,
    /// Pub/sub: channels, patterns and shard channels this connection is subscribed to
    /// (the shard's `pubsub::Registry` holds the reverse index).
    pub subs: HashSet<Box<[u8]>>,
    pub psubs: HashSet<Box<[u8]>>,
    pub ssubs: HashSet<Box<[u8]>>,
    /// A blocking command waiting for a key (see `blocking`): its later requests wait.
    pub blocked: Option<Box<crate::blocking::Blocked>>,
    /// MULTI: the queued commands, until EXEC or DISCARD.
    pub multi: Option<Box<crate::commands::multi::MultiState>>,
    /// WATCH: the keys watched (database, name); each owner shard's registry holds the
    /// watch itself (`atomic::watch`).
    pub watched: Vec<crate::atomic::LockKey>,
    /// A multi-key command across shards that gathers the requests pipelined behind it
    /// before it starts (`atomic::Txn::opens_group`); started at the end of the batch of
    /// requests, or when a request that cannot join it arrives.
    pub open_txn: Option<Box<crate::atomic::Txn>>,
    /// The master client: a replica's link to its primary (see `crate::replication`).
    pub master: bool,
    /// MONITOR: this connection receives every command (see `crate::monitor`).
    pub monitor: bool,
    /// The port a replica announced with `REPLCONF listening-port` (INFO's `slaveN`).
    pub replica_port: Option<u16>,
    /// CLIENT TRACKING: on when `Some` (see `crate::tracking`).
    pub tracking: Option<Box<crate::tracking::ClientTracking>>,
    /// The replica announced `REPLCONF capa eof` (it loads diskless transfers).
    pub replica_capa_eof: bool,
    /// The replica (`replication::primary`) this TLS connection became with PSYNC/SYNC:
    /// its session is handed to the replica's threads once the shard closed its side.
    pub tls_replica: Option<u64>,
}

impl Client {
    pub fn new(conn: ConnId, id: u64, now_ms: i64, authenticated: bool) -> Self {
        Self {
            conn,
            id,
            db: 0,
            proto: Protocol::Resp2,
            name: None,
            authenticated,
            acl_user: None,
            acl_free: true,
            created_ms: now_ms,
            last_interaction_ms: now_ms,
            last_cmd: "NULL",
            reply_mode: ReplyMode::On,
            peer: String::new(),
            local: String::new(),
            fd: -1,
            no_evict: false,
            no_touch: false,
            capa_redirect: false,
            tot_cmds: 0,
            net_in: 0,
            net_out: 0,
            lib_name: None,
            lib_ver: None,
            close_after_reply: false,
            stalled: false,
            qbuf: 0,
            mem: crate::client_mem::ClientMem::default(),
            pending: VecDeque::new(),
            first_seq: 0,
            obuf_soft_since_ms: None,
            asking: false,
            readonly: false,
            hop_barrier: None,
            req: Request::new(),
            subs: HashSet::new(),
            psubs: HashSet::new(),
            ssubs: HashSet::new(),
            blocked: None,
            multi: None,
            watched: Vec::new(),
            open_txn: None,
            master: false,
            monitor: false,
            replica_port: None,
            tracking: None,
            replica_capa_eof: false,
            tls_replica: None,
        }
    }

    /// Pub/sub: the set of one kind of subscription.
    pub fn subs_mut(&mut self, kind: crate::pubsub::Kind) -> &mut HashSet<Box<[u8]>> {
        match kind {
            crate::pubsub::Kind::Channel => &mut self.subs,
            crate::pubsub::Kind::Pattern => &mut self.psubs,
            crate::pubsub::Kind::Shard => &mut self.ssubs,
        }
    }

    /// Channels and patterns subscribed (the count (P)(UN)SUBSCRIBE replies carry; shard
    /// channels are counted apart, as in Redis 7.0).
    pub fn sub_count(&self) -> usize {
        self.subs.len() + self.psubs.len()
    }

    /// Redis's `CLIENT_PUBSUB` flag: any subscription, shard channels included. In RESP2
    /// such a client may only run (P|S)(UN)SUBSCRIBE, PING, QUIT and RESET.
    pub fn subscribed(&self) -> bool {
        !(self.subs.is_empty() && self.psubs.is_empty() && self.ssubs.is_empty())
    }

    /// Whether this client must still authenticate: it has not, and the default user has a
    /// password or is off (`auth_required`, the shard's copy of Redis's `authRequired`).
    /// Checked per request, so that `CONFIG SET requirepass ""` lets every connection in
    /// at once.
    #[inline]
    pub fn must_auth(&self, auth_required: bool) -> bool {
        !self.authenticated && auth_required
    }

    /// Redis's `islocalClient`: a Unix socket client (no peer address) or a loopback one.
    pub fn is_local(&self) -> bool {
        self.peer.is_empty()
            || self
                .peer
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
    }

    /// A request starts (an empty one too): moves CLIENT REPLY SKIP's state on, and says
    /// whether this request's reply is dropped.
    #[inline]
    pub fn begin_request(&mut self) -> bool {
        match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                self.reply_mode = ReplyMode::Skipping;
                true
            }
            ReplyMode::Skipping => {
                self.reply_mode = ReplyMode::On;
                false
            }
        }
    }

    /// Whether a reply written outside any command (a protocol error) is dropped: replies
    /// are off, or CLIENT REPLY SKIP was the last command.
    pub fn replies_suppressed(&self) -> bool {
        matches!(self.reply_mode, ReplyMode::Off | ReplyMode::SkipNext)
    }

    /// Output the client did not ask for (a pub/sub message, a MONITOR line): straight to
    /// `output` when no reply is owed, else queued as a ready slot behind the replies
    /// still owed (in a buffer from `pool`), so it never passes them.
    pub fn push_unsolicited(
        &mut self,
        output: &mut Vec<u8>,
        bytes: &[u8],
        pool: &mut Vec<Vec<u8>>,
    ) {
        if self.pending.is_empty() {
            output.extend_from_slice(bytes);
        } else {
            let mut b = pool.pop().unwrap_or_default();
            b.extend_from_slice(bytes);
            self.push_pending(Pending::Ready(b));
        }
    }

    /// Reserves the next reply slot and returns its sequence number.
    pub fn push_pending(&mut self, p: Pending) -> u64 {
        self.pending.push_back(p);
        self.first_seq + self.pending.len() as u64 - 1
    }

    /// The slot for `seq`, if it is still outstanding.
    pub fn pending_mut(&mut self, seq: u64) -> Option<&mut Pending> {
        let i = seq.checked_sub(self.first_seq)?;
        self.pending.get_mut(usize::try_from(i).ok()?)
    }

    /// Moves every ready reply at the front of the queue into `out`, in order; their
    /// emptied buffers go to `pool` (up to the pool's limits) for reuse.
    pub fn flush_ready(&mut self, out: &mut Vec<u8>, pool: &mut Vec<Vec<u8>>) {
        while let Some(Pending::Ready(_)) = self.pending.front() {
            if let Some(Pending::Ready(bytes)) = self.pending.pop_front() {
                out.extend_from_slice(&bytes);
                crate::shard::pool_put(pool, bytes);
            }
            self.first_seq += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_leave_in_request_order() {
        let mut c = Client::new(
            ConnId {
                index: 0,
                generation: 1,
            },
            1,
            0,
            true,
        );
        let a = c.push_pending(Pending::Waiting { discard: false });
        let b = c.push_pending(Pending::Ready(b"+b\r\n".to_vec()));
        let d = c.push_pending(Pending::Waiting { discard: false });
        let mut out = Vec::new();
        c.flush_ready(&mut out, &mut Vec::new());
        assert!(out.is_empty(), "nothing may pass the first waiting reply");
        *c.pending_mut(d).unwrap() = Pending::Ready(b"+d\r\n".to_vec());
        c.flush_ready(&mut out, &mut Vec::new());
        assert!(out.is_empty());
        *c.pending_mut(a).unwrap() = Pending::Ready(b"+a\r\n".to_vec());
        c.flush_ready(&mut out, &mut Vec::new());
        assert_eq!(out, b"+a\r\n+b\r\n+d\r\n");
        assert!(c.pending.is_empty());
        assert!(c.pending_mut(b).is_none());
        assert_eq!(c.first_seq, 3);
    }

    #[test]
    fn an_answer_fills_only_a_waiting_slot_and_sees_its_discard_flag() {
        let reply = |discard: bool| {
            if discard {
                Vec::new()
            } else {
                b"+x\r\n".to_vec()
            }
        };
        let mut w = Pending::Waiting { discard: true };
        w.answer(reply);
        assert!(matches!(&w, Pending::Ready(b) if b.is_empty()));
        let mut kept = Pending::Waiting { discard: false };
        kept.answer(reply);
        assert!(matches!(&kept, Pending::Ready(b) if b == b"+x\r\n"));
        // A slot already answered keeps its reply.
        kept.answer(|_| b"+late\r\n".to_vec());
        assert!(matches!(&kept, Pending::Ready(b) if b == b"+x\r\n"));
    }
}
