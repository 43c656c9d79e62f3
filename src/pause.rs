//! CLIENT PAUSE / CLIENT UNPAUSE across every shard, as Redis 7.0's `pauseClients`.
//!
//! The pause is one server-wide state (`Pause`, in `ServerShared`): an end time and a
//! mode, WRITE or ALL. A later PAUSE keeps the later end and the stricter mode (7.0's
//! per-purpose pause). CLIENT PAUSE runs on every shard (CLIENT is `Exec::All`), so by
//! the time its `+OK` leaves, every shard has set the state and paused its expiry.
//!
//! While paused, `dispatch` holds a command back instead of running it (the `PAUSED`
//! bit of [`crate::monitor::Attention`], one relaxed load shared with MONITOR): the
//! request stays unparsed in the connection's input, the connection waits in this
//! shard's `Local::held`, and nothing after it runs, as Redis's postponed clients. Held
//! under ALL: every command; under WRITE: what may replicate (write commands, the
//! `may_replicate` ones such as PUBLISH and PFCOUNT, EVAL/EVALSHA/FCALL unless the
//! script's shebang or the function says `no-writes`, an EXEC whose queue holds any of
//! these, a write queued inside MULTI). The master client of a replica is never held.
//! When the pause ends (UNPAUSE, seen by every shard's part of it, or the end time,
//! seen at the next tick or request), each shard runs its held connections again in the
//! order they were held.
//!
//! Expiry: while paused an expired key reads as absent but is not deleted, and the
//! active cycle deletes nothing (`Keyspace::set_expiry_paused`), so the dataset stays
//! as it is, as in Redis.

use crate::commands::{Command, flags};
use crate::monitor::{Attention, PAUSED};
use crate::shard::ShardData;
use percore_net::reactor::ConnId;
use std::sync::Mutex;

/// CLIENT PAUSE's mode; ALL is the stricter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Write,
    All,
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    /// Unix ms at which the pause ends.
    end_ms: i64,
    mode: Option<Mode>,
}

/// The server-wide pause (`ServerShared::pause`).
#[derive(Default)]
pub struct Pause {
    state: Mutex<State>,
}

impl Pause {
    /// CLIENT PAUSE: the later end and the stricter mode of this and any pause running.
    pub fn pause(&self, attention: &Attention, end_ms: i64, mode: Mode) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match s.mode {
            None => {
                *s = State {
                    end_ms,
                    mode: Some(mode),
                }
            }
            Some(old) => {
                s.end_ms = s.end_ms.max(end_ms);
                s.mode = Some(old.max(mode));
            }
        }
        attention.raise(PAUSED);
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&self, attention: &Attention) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s = State::default();
        attention.lower(PAUSED);
    }

    /// The mode in force at `now_ms`; a pause past its end is over.
    pub fn current(&self, attention: &Attention, now_ms: i64) -> Option<Mode> {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.mode?;
        if now_ms > s.end_ms {
            *s = State::default();
            attention.lower(PAUSED);
            return None;
        }
        s.mode
    }
}

/// INFO clients' `paused_reason`, `paused_actions` and `paused_timeout_milliseconds`
/// lines (Valkey 8.1's; the only purpose percore pauses for is CLIENT PAUSE).
pub fn info_lines(pause: &Pause, attention: &Attention, now_ms: i64) -> [String; 3] {
    let end_ms = pause
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .end_ms;
    let (reason, actions, left_ms) = match pause.current(attention, now_ms) {
        None => ("none", "none", 0),
        Some(m) => (
            "client_pause",
            if m == Mode::All { "all" } else { "write" },
            (end_ms - now_ms).max(0),
        ),
    };
    [
        format!("paused_reason:{reason}"),
        format!("paused_actions:{actions}"),
        format!("paused_timeout_milliseconds:{left_ms}"),
    ]
}

/// A shard's side of the pause.
#[derive(Default)]
pub struct Local {
    /// Connections whose next request waits for the pause to end, in the order held.
    pub held: Vec<ConnId>,
    /// Set by `dispatch` when it held the request back (read by `run_requests`).
    pub refused: bool,
    /// This shard's keyspace has its expiry paused.
    pub active: bool,
}

/// CLIENT PAUSE's part on one shard: sets the shared state (idempotent: every shard's
/// part sets the same) and pauses this shard's expiry.
pub fn begin(data: &mut ShardData, end_ms: i64, mode: Mode) {
    let shared = &data.shared;
    shared.pause.pause(&shared.attention, end_ms, mode);
    data.pause.active = true;
    data.keyspace.set_expiry_paused(true);
}

/// CLIENT UNPAUSE's part on one shard.
pub fn end(data: &mut ShardData) {
    let shared = &data.shared;
    shared.pause.unpause(&shared.attention);
    // The held connections run at the end of this batch (`resumable`).
}

/// Held connections count in INFO's `blocked_clients`, as Redis's postponed clients.
pub fn count_held(shared: &crate::server::ServerShared, n: isize) {
    use std::sync::atomic::Ordering;
    if n >= 0 {
        shared
            .stats
            .blocked_clients
            .fetch_add(n.unsigned_abs(), Ordering::Relaxed);
    } else {
        shared
            .stats
            .blocked_clients
            .fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
    }
}

/// `run_requests` held this connection's next request.
pub fn hold(data: &mut ShardData, conn: ConnId) {
    if !data.pause.held.contains(&conn) {
        data.pause.held.push(conn);
        count_held(&data.shared, 1);
    }
}

/// A held connection closed.
pub fn forget(data: &mut ShardData, conn: ConnId) {
    let before = data.pause.held.len();
    data.pause.held.retain(|&c| c != conn);
    count_held(
        &data.shared,
        data.pause.held.len() as isize - before as isize,
    );
}

/// The held connections, to run again now that the pause is over.
pub fn take_held(data: &mut ShardData) -> Vec<ConnId> {
    let held = std::mem::take(&mut data.pause.held);
    count_held(&data.shared, -(held.len() as isize));
    held
}

/// Whether `dispatch` must hold this request back (the PAUSED bit is up). Marks the
/// refusal for `run_requests`.
#[cold]
#[inline(never)]
pub fn holds(
    data: &mut ShardData,
    master: bool,
    queued: Option<&[crate::atomic::Queued]>,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> bool {
    if master {
        return false;
    }
    let shared = &data.shared;
    let Some(mode) = shared.pause.current(&shared.attention, data.now_ms) else {
        return false;
    };
    let hold = match mode {
        Mode::All => true,
        Mode::Write => {
            if cmd.name == "exec" {
                queued.is_some_and(|q| {
                    q.iter().any(|c| {
                        let mut v = Vec::new();
                        c.argv.fill(&mut v);
                        may_replicate(data, c.cmd, &v)
                    })
                })
            } else {
                may_replicate(data, cmd, argv)
            }
        }
    };
    data.pause.refused |= hold;
    hold
}

/// Whether the pause is over for this shard's held connections and paused expiry; the
/// caller then runs `held` again. Checked after each batch and at each tick while
/// `Local::active`.
pub fn resumable(data: &mut ShardData) -> bool {
    let shared = &data.shared;
    if shared
        .pause
        .current(&shared.attention, data.now_ms)
        .is_some()
    {
        return false;
    }
    data.pause.active = false;
    data.keyspace.set_expiry_paused(false);
    true
}

/// Redis 7.0's `is_may_replicate_command` for one command: its flags (a subcommand's
/// own), with a script's flags in place of EVAL/EVALSHA/FCALL's (`scriptFlagsToCmdFlags`:
/// a script that declares flags writes unless it says `no-writes`).
fn may_replicate(data: &ShardData, cmd: &'static Command, argv: &[&[u8]]) -> bool {
    let script_flags = match cmd.name {
        "eval" => Some(
            argv.get(1)
                .map(|b| crate::scripting::functions::eval_shebang(b)),
        ),
        "evalsha" => Some(
            argv.get(1)
                .and_then(|s| crate::scripting::sha_arg(s))
                .and_then(|sha| data.shared.scripts.script(&sha))
                .map(|body| crate::scripting::functions::eval_shebang(&body)),
        ),
        "fcall" => Some(argv.get(1).and_then(|name| {
            let name = String::from_utf8_lossy(name);
            data.shared.scripts.libraries().values().find_map(|lib| {
                lib.functions
                    .iter()
                    .find(|f| f.name == name)
                    .map(|f| Ok((f.flags, 0)))
            })
        })),
        _ => None,
    };
    if let Some(found) = script_flags {
        return match found {
            // No shebang (compatibility mode), or a script the command will refuse
            // anyway: the command's own `may_replicate`.
            Some(Ok((f, _))) if f & crate::scripting::flags::EVAL_COMPAT == 0 => {
                f & crate::scripting::flags::NO_WRITES == 0
            }
            _ => true,
        };
    }
    flags_of(cmd, argv) & (flags::WRITE | flags::MAY_REPLICATE) != 0
}

/// The flags of what `argv` runs: a container's subcommand has its own (CONFIG SET is
/// ADMIN, CLIENT ID is not).
pub fn flags_of(cmd: &Command, argv: &[&[u8]]) -> u32 {
    if let Some(sub) = argv.get(1)
        && let Some((_, _, sf)) = cmd.subcommands.iter().find(|(full, _, _)| {
            full.split_once('|')
                .is_some_and(|(_, s)| s.as_bytes().eq_ignore_ascii_case(sub))
        })
    {
        return *sf;
    }
    cmd.flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_pause_keeps_the_later_end_and_the_stricter_mode() {
        let a = Attention::default();
        let p = Pause::default();
        p.pause(&a, 1_000, Mode::All);
        p.pause(&a, 500, Mode::Write);
        assert_eq!(p.current(&a, 900), Some(Mode::All));
        p.pause(&a, 2_000, Mode::Write);
        assert_eq!(p.current(&a, 1_500), Some(Mode::All));
        assert!(a.raised());
        assert_eq!(p.current(&a, 2_001), None);
        assert!(!a.raised(), "an ended pause lowers its bit");
        p.pause(&a, 3_000, Mode::Write);
        assert_eq!(p.current(&a, 2_500), Some(Mode::Write));
        p.unpause(&a);
        assert_eq!(p.current(&a, 2_500), None);
        assert!(!a.raised());
    }
}
