//! Scripts across shards: a running script's synchronous calls to the shards it holds.
//!
//! A Lua script runs on one shard and cannot yield (an mlua callback cannot, and Lua 5.1
//! cannot yield across `pcall`). When its `redis.call` names a key owned by another shard,
//! the script's thread asks that shard directly and blocks until it answers ([`call`]):
//! the request goes into the owner's [`Inbox`] (a mutex-guarded queue, one per shard, in
//! `scripting::Shared`), an wake-up socket wakes the owner's io_uring loop, which runs the
//! request on its keyspace (`serve_queued`, from `Service::on_readable`) and puts the
//! reply into the script shard's inbox, whose condition variable wakes the script.
//!
//! Such calls are only made to shards the script holds **whole** (every key there is
//! locked for it), so nothing else runs between its calls and the script stays atomic:
//! - a script whose declared keys live on several shards (or a script inside MULTI/EXEC
//!   with no declared key) runs as a transaction holding every shard whole
//!   (`Txn::new`, `Locks::script_ctx` = [`ScriptCtx::GlobalTxn`]), taken through the
//!   ordinary lock table in shard order, so it queues behind other transactions and never
//!   deadlocks;
//! - a script that runs on its own shard (its declared keys all live there, or it has
//!   none) and then names a key of another shard takes every shard whole *at that moment*
//!   ([`try_acquire`]): each shard grants it only when nothing is held there (no
//!   transaction is half applied), and the script's shard asks in ascending order without
//!   ever waiting for a lock; a shard that cannot grant answers no at once. A refusal
//!   releases what was granted and the call fails with the cluster error (the script was
//!   racing a cross-shard transaction or another such script; Redis outside cluster mode
//!   has no such error: documented in the README's known differences).
//!
//! While the script's thread waits for an answer it serves its own inbox (so two scripts
//! asking each other at once both get "no" instead of deadlocking). The requests a held
//! shard serves run exactly as a transaction's steps there: their effects (and the
//! expired keys they met) travel back with the reply into the script's unit of effects,
//! written keys touch their WATCHers, keyspace events fire on the owner.

use crate::commands::{Ctx, Handler, PartFn, Partial};
use crate::propagate::Effects;
use crate::propagate::merge::TxnId;
use crate::shard::ShardData;
use percore_net::resp::{Protocol, ReplyWriter};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The `Io::watch_readable` tag of a shard's inbox wake-up socket.
pub const WATCH_TAG_SCRIPT_CALLS: u32 = 2;
/// How long a waiting script sleeps before it looks at its inbox again even without a
/// wake-up (a safety net; replies and requests notify the condition variable).
pub const CALL_WAIT_POLL_MS: u64 = 50;
/// The most requests one shard's inbox holds; past it a request is refused (as a lock
/// refusal or an error reply). One script waits for one reply at a time, so an inbox
/// holds at most one request per other shard in practice.
pub const INBOX_MAX_ITEMS: usize = 4096;

/// How the script running now on this shard may reach other shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScriptCtx {
    /// Another shard's key is refused: a step of a transaction holding locks on some
    /// shards only (they do not cover it), or a hop step.
    #[default]
    Confined,
    /// Run by a connection's request in `dispatch`: it may take every shard at once when
    /// it first names another shard's key ([`try_acquire`]), or be run again holding them.
    Plain,
    /// A step of a transaction that holds every shard whole: any key may be called.
    GlobalTxn,
}

/// The shards a plain script took at its first call to another shard, released when it
/// ends ([`end_script`]).
pub struct Acquired {
    id: TxnId,
    commit: Option<u64>,
    /// Shards whose lock marker is in the stream of effects.
    marked: Vec<u16>,
}

/// What one shard asks another.
pub enum Request {
    /// Hold your whole shard for my script, if nothing is held there now.
    Lock { id: TxnId },
    /// My script ended: release the whole-shard lock you granted.
    Release,
    /// Run a keyed command's handler (its keys are all yours).
    Keyed {
        h: Handler,
        db: usize,
        proto: Protocol,
        argv: Vec<Vec<u8>>,
    },
    /// Run a step or a part of a multi-shard command; `orig`: the command's arguments
    /// (for WATCH), empty for a part (its own arguments name its keys).
    Step {
        f: PartFn,
        db: usize,
        proto: Protocol,
        argv: Vec<Vec<u8>>,
        cmd: &'static crate::commands::Command,
        orig: Vec<Vec<u8>>,
    },
}

/// An answer.
pub enum Reply {
    Lock(bool),
    /// A keyed command's reply and its effects (expired keys met, the command's own).
    Keyed {
        reply: Vec<u8>,
        fx: Effects,
    },
    /// A step's result, the effects it logged (expired keys met) and whether it changed
    /// the shard.
    Step {
        result: Partial,
        fx: Effects,
        changed: bool,
    },
}

enum Item {
    Request { from: usize, req: Request },
    Reply(Reply),
}

/// One shard's inbox of requests and replies.
struct Inbox {
    items: Mutex<VecDeque<Item>>,
    cv: Condvar,
    /// Wakes the owner's io_uring loop: a byte sent on `wake` makes `watched` readable
    /// there (a socket pair: safe code, no wake-up socket).
    wake: Option<(UnixDatagram, UnixDatagram)>,
}

/// Every shard's inbox.
pub struct Calls {
    inboxes: Vec<Inbox>,
}

impl Calls {
    pub fn new(shards: usize) -> Self {
        let inboxes = (0..shards)
            .map(|_| Inbox {
                items: Mutex::new(VecDeque::new()),
                cv: Condvar::new(),
                wake: UnixDatagram::pair().ok().filter(|(a, b)| {
                    a.set_nonblocking(true).is_ok() && b.set_nonblocking(true).is_ok()
                }),
            })
            .collect();
        Self { inboxes }
    }

    /// The descriptor that becomes readable when `shard` has mail (negative when the
    /// socket pair could not be made: the tick serves the inbox then).
    pub fn efd(&self, shard: usize) -> RawFd {
        self.inboxes[shard]
            .wake
            .as_ref()
            .map_or(-1, |(r, _)| r.as_raw_fd())
    }

    /// Puts `item` in `to`'s inbox and wakes it; false when the inbox is full.
    fn post(&self, to: usize, item: Item) -> bool {
        let inbox = &self.inboxes[to];
        let Ok(mut q) = inbox.items.lock() else {
            return false;
        };
        if q.len() >= INBOX_MAX_ITEMS {
            return false;
        }
        q.push_back(item);
        drop(q);
        inbox.cv.notify_all();
        if let Some((_, w)) = &inbox.wake {
            // A full socket buffer (WouldBlock) still leaves it readable.
            let _ = w.send(&[1]);
        }
        true
    }

    fn take(&self, me: usize) -> Option<Item> {
        self.inboxes[me].items.lock().ok()?.pop_front()
    }
}

fn calls(data: &ShardData) -> &Calls {
    &data.shared.scripts.calls
}

/// The shard's loop: its inbox's wake-up socket was readable (or it arms the watch the first
/// time). Serves every request queued; returns whether to watch the wake-up socket again.
pub fn serve_queued(data: &mut ShardData) {
    if let Some((r, _)) = &calls(data).inboxes[data.id].wake {
        let mut buf = [0u8; 64];
        while r.recv(&mut buf).is_ok_and(|n| n > 0) {}
    }
    let shared = std::sync::Arc::clone(&data.shared);
    while let Some(item) = shared.scripts.calls.take(data.id) {
        if let Item::Request { from, req } = item {
            let reply = serve(data, req);
            if let Some(r) = reply {
                shared.scripts.calls.post(from, Item::Reply(r));
            }
        }
        // A reply with nobody waiting: its script ended (it cannot happen; dropped).
    }
}

/// Runs one request on this shard.
fn serve(data: &mut ShardData, req: Request) -> Option<Reply> {
    match req {
        Request::Lock { id } => {
            let free = data.locks.held_keys == 0 && !data.locks.whole_held;
            if free {
                data.locks.hold(&[], true);
                crate::propagate::locked(data, id);
            }
            Some(Reply::Lock(free))
        }
        Request::Release => {
            data.locks.release(&[], true);
            None
        }
        Request::Keyed { h, db, proto, argv } => {
            let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            let outer = data.effects.begin_capture();
            let before = data.keyspace.changes();
            let mut reply = Vec::new();
            let cmd = crate::commands::lookup(args[0]);
            let mut ctx = Ctx {
                shard: data,
                db,
                proto,
                client: None,
            };
            crate::crash::guarded(&args, || {
                h(&mut ctx, &args, &mut ReplyWriter::new(&mut reply, proto));
            });
            if let Some(cmd) = cmd {
                super::touched(data, cmd, &args, db, before);
                if data.effects.on {
                    crate::propagate::after_command(data, cmd, &args, db, before, &reply);
                }
            }
            let fx = data.effects.end_capture(outer);
            Some(Reply::Keyed { reply, fx })
        }
        Request::Step {
            f,
            db,
            proto,
            argv,
            cmd,
            orig,
        } => {
            let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            let outer = data.effects.begin_capture();
            let (result, before) = super::run_here(data, db, proto, &args, f);
            let changed = crate::propagate::step_ran(data, before);
            if changed && !data.watches.is_empty() {
                let o: Vec<&[u8]> = if orig.is_empty() {
                    args.clone()
                } else {
                    orig.iter().map(Vec::as_slice).collect()
                };
                super::watch::after_write(data, cmd, &o, db, u64::MAX);
            }
            let fx = data.effects.end_capture(outer);
            Some(Reply::Step {
                result,
                fx,
                changed,
            })
        }
    }
}

/// Sends `req` to `to` and waits for its answer, serving this shard's own inbox
/// meanwhile. `None`: `to`'s inbox is full.
pub fn call(data: &mut ShardData, to: usize, req: Request) -> Option<Reply> {
    let me = data.id;
    let shared = std::sync::Arc::clone(&data.shared);
    let c = &shared.scripts.calls;
    if !c.post(to, Item::Request { from: me, req }) {
        return None;
    }
    let inbox = &c.inboxes[me];
    loop {
        let item = {
            let Ok(mut q) = inbox.items.lock() else {
                return None;
            };
            loop {
                if let Some(item) = q.pop_front() {
                    break item;
                }
                q = match inbox
                    .cv
                    .wait_timeout(q, Duration::from_millis(CALL_WAIT_POLL_MS))
                {
                    Ok((q, _)) => q,
                    Err(_) => return None,
                };
            }
        };
        match item {
            Item::Reply(r) => return Some(r),
            Item::Request { from, req } => {
                if let Some(r) = serve(data, req) {
                    c.post(from, Item::Reply(r));
                }
            }
        }
    }
}

/// A plain script on this shard names another shard's key: takes every shard whole for
/// it, now or never (see the module). On success the script's context becomes global
/// until [`end_script`].
pub fn try_acquire(data: &mut ShardData) -> bool {
    if data.locks.acquired.is_some() {
        return true;
    }
    if data.locks.held_keys != 0 || data.locks.whole_held {
        return false;
    }
    if !data.shared.write_gate.enter(1) {
        return false;
    }
    data.locks.next_script_txn += 1;
    let id = (u64::MAX - data.id as u64, data.locks.next_script_txn);
    data.locks.hold(&[], true);
    let mut marked = Vec::new();
    if crate::propagate::locked(data, id) {
        marked.push(data.id as u16);
    }
    let mut granted = Vec::new();
    let mut ok = true;
    let me = data.id;
    for s in (0..data.shards).filter(|&s| s != me) {
        if let Some(Reply::Lock(true)) = call(data, s, Request::Lock { id }) {
            granted.push(s);
        } else {
            ok = false;
            break;
        }
    }
    if !ok {
        // The markers logged belong to a unit that does nothing: it ends at once.
        for &s in &granted {
            if data.effects.on {
                marked.push(s as u16);
            }
            calls(data).post(
                s,
                Item::Request {
                    from: data.id,
                    req: Request::Release,
                },
            );
        }
        let commit = crate::propagate::lock_point(data, !marked.is_empty());
        crate::propagate::finished(data, id, commit, marked, Effects::default());
        data.locks.release(&[], true);
        data.shared.write_gate.leave(1);
        return false;
    }
    if data.effects.on {
        marked.extend(granted.iter().map(|&s| s as u16));
    }
    let commit = crate::propagate::lock_point(data, !marked.is_empty());
    data.locks.acquired = Some(Acquired { id, commit, marked });
    true
}

/// A script ended on this shard with `fx` (its captured effects): when it took every
/// shard, they are released and its effects logged as that unit; otherwise they are
/// logged as one atomic unit of this shard.
pub fn end_script(data: &mut ShardData, fx: Effects) {
    let Some(a) = data.locks.acquired.take() else {
        data.effects.atomic(fx);
        return;
    };
    crate::propagate::finished(data, a.id, a.commit, a.marked, fx);
    let me = data.id;
    for s in (0..data.shards).filter(|&s| s != me) {
        calls(data).post(
            s,
            Item::Request {
                from: data.id,
                req: Request::Release,
            },
        );
    }
    data.locks.release(&[], true);
    data.shared.write_gate.leave(1);
}

/// Whether a call to another shard may run now (global context, or every shard taken
/// now). A plain script that could not take them and has written nothing yet is stopped
/// instead: every call of it fails from now on and dispatch runs it again holding every
/// shard (`Locks::rerun_global`); `wrote`: it has written.
pub fn may_call_out(data: &mut ShardData, wrote: bool) -> Result<(), &'static str> {
    let ctx = data.locks.script_ctx;
    match ctx {
        ScriptCtx::GlobalTxn => Ok(()),
        ScriptCtx::Confined => Err(crate::scripting::NON_LOCAL_KEY),
        ScriptCtx::Plain if try_acquire(data) => Ok(()),
        ScriptCtx::Plain => {
            data.locks.learn = true;
            if wrote {
                return Err(crate::scripting::NON_LOCAL_KEY);
            }
            data.locks.rerun_global = true;
            Err(RERUN)
        }
    }
}

/// The most scripts a shard remembers as starting global (`Locks::global_scripts`);
/// past it the set starts afresh.
pub const GLOBAL_SCRIPTS_MAX: usize = 10_000;

/// A script's identity for `Locks::global_scripts`: the SHA1 (EVAL's computed) or the
/// function's name.
fn identity(argv: &[&[u8]]) -> Box<[u8]> {
    let name = argv[0].to_ascii_lowercase();
    if name.starts_with(b"fcall") {
        let mut k = b"fn:".to_vec();
        k.extend(argv[1].to_ascii_lowercase());
        k.into()
    } else if name.starts_with(b"evalsha") {
        argv[1].to_ascii_lowercase().into()
    } else {
        crate::scripting::sha1_hex(argv[1]).to_vec().into()
    }
}

/// Whether the script `argv` runs is known to name other shards' keys: dispatch starts it
/// holding every shard (one branch while no script is known).
#[inline]
pub fn hinted(data: &ShardData, argv: &[&[u8]]) -> bool {
    !data.locks.global_scripts.is_empty()
        && argv.len() > 1
        && data.locks.global_scripts.contains(&identity(argv))
}

/// After a plain script ran: if it could not take every shard, remember it.
pub fn learn(data: &mut ShardData, argv: &[&[u8]]) {
    if !std::mem::take(&mut data.locks.learn) {
        return;
    }
    if data.locks.global_scripts.len() >= GLOBAL_SCRIPTS_MAX {
        data.locks.global_scripts.clear();
    }
    data.locks.global_scripts.insert(identity(argv));
}

/// The error of every call of a script stopped to run again holding every shard (its
/// reply is never seen).
pub const RERUN: &str = "Script stopped: it runs again holding every shard";

/// Whether the plain script running now was stopped to run again.
#[inline]
pub fn stopped(data: &ShardData) -> bool {
    data.locks.rerun_global
}
