//! INFO clients' per-shard lines that Valkey 8 (and Redis 7.2) added: each shard counts
//! its own clients and keys, INFO's merge sums them and places them in Valkey's order.

use crate::client::Client;
use crate::shard::ShardData;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// This shard's counts, summed over shards by INFO's merge: clients subscribed to
/// anything, clients watching keys, blocked clients with a timeout (Valkey's timeout
/// table), the distinct watched keys this shard owns, and its keys XREADGROUP waits on
/// (which unblock when deleted: Valkey's `total_blocking_keys_on_nokey`).
/// `me`: the client running INFO, which is out of the shard's table while it runs (only
/// its own shard has it).
pub fn counters(sh: &ShardData, me: Option<&Client>) -> [(&'static str, u64); 6] {
    let (mut pubsub, mut watching) = (0u64, 0u64);
    for c in sh.clients.iter().flatten().map(|c| &**c).chain(me) {
        pubsub += u64::from(c.subscribed());
        watching += u64::from(!c.watched.is_empty());
    }
    let (timeouts, nokey) = sh.blocking.info_counts();
    [
        ("pubsub_clients", pubsub),
        ("watching_clients", watching),
        ("clients_in_timeout_table", timeouts as u64),
        ("total_watched_keys", sh.watches.watched_keys() as u64),
        ("total_blocking_keys_on_nokey", nokey as u64),
        // INFO stats: clients this shard evicted for `maxmemory-clients`.
        (
            "evicted_clients",
            sh.shared.client_mem.shards[sh.id]
                .evicted
                .load(Ordering::Relaxed),
        ),
    ]
}

/// Places the summed counts among the clients section's lines (`body`, CRLF-ended), in
/// Valkey's order: the first four after `tracking_clients`, the last after
/// `total_blocking_keys`.
pub fn render(body: &mut String, count: impl Fn(&str) -> u64) {
    let mut out = String::with_capacity(body.len() + 200);
    for line in body.split_inclusive("\r\n") {
        out.push_str(line);
        if line.starts_with("tracking_clients:") {
            for k in [
                "pubsub_clients",
                "watching_clients",
                "clients_in_timeout_table",
                "total_watched_keys",
            ] {
                let _ = write!(out, "{k}:{}\r\n", count(k));
            }
        } else if line.starts_with("total_blocking_keys:") {
            let k = "total_blocking_keys_on_nokey";
            let _ = write!(out, "{k}:{}\r\n", count(k));
        }
    }
    *body = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_places_lines_in_valkey_order() {
        let mut body = "connected_clients:1\r\nblocked_clients:0\r\ntracking_clients:0\r\n\
                        total_blocking_keys:2\r\npaused_reason:none\r\n"
            .to_string();
        render(&mut body, |k| k.len() as u64);
        assert_eq!(
            body,
            "connected_clients:1\r\nblocked_clients:0\r\ntracking_clients:0\r\n\
             pubsub_clients:14\r\nwatching_clients:16\r\nclients_in_timeout_table:24\r\n\
             total_watched_keys:18\r\ntotal_blocking_keys:2\r\n\
             total_blocking_keys_on_nokey:28\r\npaused_reason:none\r\n"
        );
    }
}
