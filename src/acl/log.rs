//! ACL LOG: the recent refusals (commands, keys, channels, failed AUTHs), newest first,
//! at most `acllog-max-len` of them; a refusal like a recent one (same reason, context,
//! object and user within a minute) counts into it, as Redis 7.0's `addACLLogEntry`.

use crate::client::Client;
use crate::shard::ShardData;
use percore_net::resp::ReplyWriter;
use std::collections::VecDeque;

/// Refusals this close in time to a like entry are counted in it.
pub const LOG_GROUPING_MAX_MS: i64 = 60_000;
/// How many of the newest entries are compared for grouping (Redis scans 10).
const LOG_GROUPING_SCAN_ENTRIES: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Command,
    Key,
    Channel,
    Auth,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

struct Entry {
    count: i64,
    reason: Reason,
    context: &'static str,
    object: String,
    username: String,
    ctime_ms: i64,
    client_info: String,
}

#[derive(Default)]
pub struct Log {
    entries: VecDeque<Entry>,
}

fn context_name(ctx: &str) -> &'static str {
    match ctx {
        "multi" => "multi",
        "lua" => "lua",
        "module" => "module",
        _ => "toplevel",
    }
}

/// Records a refusal of `c`'s request.
pub fn add(data: &ShardData, c: &Client, reason: Reason, ctx: &str, object: &str, username: &str) {
    let now = data.now_ms;
    let mut info = String::new();
    crate::commands::connection::client::client_line(c, None, now, &mut info);
    let max = data.cfg.acllog_max_len as usize;
    let mut log = data.shared.acl.log.lock().expect("acl log lock");
    let context = context_name(ctx);
    if let Some(e) = log
        .entries
        .iter_mut()
        .take(LOG_GROUPING_SCAN_ENTRIES)
        .find(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now - e.ctime_ms < LOG_GROUPING_MAX_MS
        })
    {
        e.count += 1;
        e.ctime_ms = now;
        e.client_info = info;
        return;
    }
    log.entries.push_front(Entry {
        count: 1,
        reason,
        context,
        object: object.to_string(),
        username: username.to_string(),
        ctime_ms: now,
        client_info: info,
    });
    log.entries.truncate(max);
}

impl Log {
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// ACL LOG [count]: the newest `count` entries.
    pub fn reply(&self, count: usize, now_ms: i64, w: &mut ReplyWriter) {
        let n = count.min(self.entries.len());
        w.array(n);
        for e in self.entries.iter().take(n) {
            w.map(7);
            w.bulk(b"count");
            w.int(e.count);
            w.bulk(b"reason");
            w.bulk(e.reason.name().as_bytes());
            w.bulk(b"context");
            w.bulk(e.context.as_bytes());
            w.bulk(b"object");
            w.bulk(e.object.as_bytes());
            w.bulk(b"username");
            w.bulk(e.username.as_bytes());
            w.bulk(b"age-seconds");
            w.double((now_ms - e.ctime_ms) as f64 / 1000.0);
            w.bulk(b"client-info");
            w.bulk(e.client_info.as_bytes());
        }
    }
}
