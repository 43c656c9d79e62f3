#![allow(
    dead_code,
    reason = "the locked-session API; its user, the Lua layer (branch lua), merges this branch"
)]

//! Locked sessions: run commands chosen one at a time (a Lua script's `redis.call`) under
//! a transaction's locks.
//!
//! A session declares its keys up front ([`begin`]); it takes their locks exactly as a
//! MULTI/EXEC transaction does (ascending shard order, per-key FIFO; see the module
//! above). Once every lock is held, its [`SessionBody`] runs **on the client's shard**
//! (where the Lua state of that shard lives) and calls commands through [`Session::call`]:
//! a command whose keys live on this shard runs at once and its reply is returned; one
//! whose keys live elsewhere answers [`Call::Remote`], the body returns (a Lua coroutine
//! yields), the transaction carries the command to its owner shard and back, and the body
//! is resumed with the reply. [`Session::finish`] ends the session: its locks are released
//! and the reply goes to the client. A command touching a key the session did not declare
//! is refused ([`Call::Undeclared`]): the locks protect only declared keys.

use super::{LockKey, Queued, Txn};
use crate::client::Client;
use crate::shard::{Argv, ShardData};

/// The code a session runs under its locks (a script). It lives on the client's shard
/// for the whole session, so it need not be `Send`.
pub trait SessionBody {
    /// Runs (`reply` is `None`) or resumes (`reply` is the reply of the call that went
    /// remote) the body. It returns after calling [`Session::finish`], or right after a
    /// [`Session::call`] answered [`Call::Remote`].
    fn resume(&mut self, s: &mut Session<'_>, reply: Option<Vec<u8>>);
}

/// A call's result.
#[derive(Debug, PartialEq, Eq)]
pub enum Call {
    /// The command ran here: its encoded reply (in the session's protocol).
    Reply(Vec<u8>),
    /// The command runs on another shard: return from `resume`; it is called again with
    /// the reply.
    Remote,
    /// A key of the command was not declared when the session began: nothing ran.
    Undeclared,
}

/// What a session body may do while it holds its locks.
pub struct Session<'a> {
    pub(super) data: &'a mut ShardData,
    pub(super) txn: &'a mut Txn,
    pub(super) client: Option<&'a mut Client>,
    pub(super) finished: Option<Vec<u8>>,
}

impl Session<'_> {
    /// The client's shard (its keyspace, configuration, Lua state...).
    pub fn shard(&mut self) -> &mut ShardData {
        self.data
    }

    /// Runs `argv` in database `db` under the session's locks.
    pub fn call(&mut self, db: usize, argv: &[&[u8]]) -> Call {
        let Some(cmd) = crate::commands::lookup(argv[0]) else {
            let mut out = Vec::new();
            crate::commands::unknown_command(
                argv,
                &mut percore_net::resp::ReplyWriter {
                    out: &mut out,
                    proto: self.txn.proto,
                },
            );
            return Call::Reply(out);
        };
        for p in super::key_positions(cmd, argv) {
            let key: LockKey = (db as u16, argv[p].into());
            if !self
                .txn
                .plan
                .iter()
                .any(|part| part.keys.binary_search(&key).is_ok())
            {
                return Call::Undeclared;
            }
        }
        self.txn.cmds.push(Queued {
            cmd,
            argv: Argv::from_slices(argv),
            db: db as u16,
            discard: false,
            refused: None,
        });
        let mark = self.txn.out.len();
        while self.txn.next < self.txn.cmds.len() || self.txn.inflight.is_some() {
            if super::run_next(self.data, self.txn, self.client.as_deref_mut()).is_some() {
                self.txn.pending_call = Some(mark);
                return Call::Remote;
            }
        }
        Call::Reply(self.txn.out.split_off(mark))
    }

    /// Ends the session with `reply` (encoded) for the client.
    pub fn finish(&mut self, reply: Vec<u8>) {
        self.finished = Some(reply);
    }
}

/// A session for `client`'s reply slot `seq` over the declared `keys`, running `body`
/// once it holds their locks. Start it as EXEC does (`shard::run_txn`, after
/// `Txn::enter_gate`).
pub fn begin(
    data: &mut ShardData,
    client: &Client,
    seq: u64,
    keys: &[LockKey],
    body: Box<dyn SessionBody>,
) -> Box<Txn> {
    let mut txn = Txn::new(data, client, seq, Vec::new(), &[], false);
    for k in keys {
        let shard = data.owner(&k.1);
        txn.lock_key(shard, k.clone());
    }
    let id = data.locks.next_session;
    data.locks.next_session += 1;
    data.locks.bodies.insert(id, body);
    txn.session = Some(id);
    txn
}
