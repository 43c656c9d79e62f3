//! `stop-writes-on-bgsave-error`: after a failed background save, with save points set,
//! write commands (and PING) are refused with Redis's `-MISCONF` error until a save
//! succeeds. The state is one bit of [`crate::monitor::Attention`], so `dispatch` pays
//! nothing while saves succeed.

use crate::client::Client;
use crate::commands::{Command, flags};
use crate::monitor::DISK_ERROR;
use crate::server::ServerShared;
use crate::shard::ShardData;

/// Redis's `shared.bgsaveerr`, without the `-`.
pub const BGSAVE_ERROR: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Records the outcome of a background save (called where `last_bgsave_ok` is set).
pub fn note_bgsave(shared: &ServerShared, ok: bool) {
    if ok {
        shared.attention.lower(DISK_ERROR);
    } else {
        shared.attention.raise(DISK_ERROR);
    }
}

/// Redis's `writeCommandsDeniedByDiskError` and the check in `processCommand`: the error
/// for `cmd` while the last save failed, if it is refused. The primary's stream is
/// applied anyway (Redis's `replica-ignore-disk-write-errors` decides between that and a
/// crash; percore always applies).
pub fn refusal(data: &ShardData, client: &Client, cmd: &'static Command) -> Option<&'static str> {
    if client.master || !data.shared.attention.has(DISK_ERROR) {
        return None;
    }
    let cfg = &data.cfg;
    if !cfg.stop_writes_on_bgsave_error() || cfg.save.is_empty() {
        return None;
    }
    if data
        .shared
        .persist
        .lock()
        .expect("persist lock")
        .last_bgsave_ok
    {
        return None;
    }
    let queued_write = cmd.name == "exec"
        && client
            .multi
            .as_deref()
            .is_some_and(|m| m.cmds.iter().any(|q| q.cmd.has(flags::WRITE)));
    (cmd.has(flags::WRITE) || cmd.name == "ping" || queued_write).then_some(BGSAVE_ERROR)
}
