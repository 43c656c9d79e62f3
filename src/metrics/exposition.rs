//! Prometheus text exposition (format 0.0.4) of the INFO counters and the shards' loop
//! statistics, from the shards' published reports and the server-wide atomics.

use super::ShardReport;
use crate::server::ServerShared;
use std::fmt::{Display, Write as _};
use std::sync::atomic::Ordering;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything the exposition shows, gathered without waiting on a shard.
pub struct Inputs {
    pub uptime_s: u64,
    pub connected_clients: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub used_memory_bytes: u64,
    pub changes_since_save: u64,
    pub last_save_s: i64,
    pub reports: Vec<ShardReport>,
}

impl Inputs {
    pub fn gather(shared: &ServerShared) -> Self {
        let st = &shared.stats;
        Self {
            uptime_s: shared.started.elapsed().as_secs(),
            connected_clients: st.connected_clients.load(Ordering::Relaxed) as u64,
            connections_received: st.total_connections_received.load(Ordering::Relaxed),
            rejected_connections: st.rejected_connections.load(Ordering::Relaxed),
            used_memory_bytes: crate::alloc::used_memory() as u64,
            changes_since_save: crate::snapshot::changes_since_save(shared),
            last_save_s: shared.lastsave_s.load(Ordering::Relaxed),
            reports: shared.metrics.reports(),
        }
    }
}

/// Writes metric families: a `# HELP` and a `# TYPE` line, then the samples.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family with one sample per shard, labelled `shard`.
    fn per_shard(
        &mut self,
        reports: &[ShardReport],
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&ShardReport) -> String,
    ) {
        self.family(name, kind, help);
        for (i, r) in reports.iter().enumerate() {
            self.sample(name, &[("shard", &i.to_string())], value(r));
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn secs(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

/// The exposition text.
#[must_use]
pub fn render(inp: &Inputs) -> String {
    let mut o = Out {
        text: String::new(),
    };
    let reports = &inp.reports;
    let sum = |f: fn(&ShardReport) -> u64| reports.iter().map(f).sum::<u64>();
    o.single(
        "percore_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        inp.uptime_s,
    );
    o.single("percore_shards", "gauge", "Shard threads.", reports.len());
    o.single(
        "percore_connected_clients",
        "gauge",
        "Client connections open (INFO connected_clients).",
        inp.connected_clients,
    );
    o.single(
        "percore_connections_received_total",
        "counter",
        "Connections accepted (INFO total_connections_received).",
        inp.connections_received,
    );
    o.single(
        "percore_rejected_connections_total",
        "counter",
        "Connections refused by maxclients or protected mode.",
        inp.rejected_connections,
    );
    o.single(
        "percore_used_memory_bytes",
        "gauge",
        "Bytes allocated (INFO used_memory).",
        inp.used_memory_bytes,
    );
    o.single(
        "percore_commands_processed_total",
        "counter",
        "Commands run (INFO total_commands_processed).",
        sum(|r| r.commands_processed),
    );
    o.single(
        "percore_keyspace_hits_total",
        "counter",
        "Key lookups that found the key.",
        sum(|r| r.keyspace_hits),
    );
    o.single(
        "percore_keyspace_misses_total",
        "counter",
        "Key lookups that did not find the key.",
        sum(|r| r.keyspace_misses),
    );
    o.single(
        "percore_expired_keys_total",
        "counter",
        "Keys removed because their time to live ran out.",
        sum(|r| r.expired_keys),
    );
    o.single(
        "percore_error_replies_total",
        "counter",
        "Error replies sent (INFO total_error_replies).",
        sum(|r| r.error_replies),
    );
    let dbs = reports.iter().map(|r| r.dbs.len()).max().unwrap_or(0);
    let db_sum = |i: usize, keys: bool| -> u64 {
        reports
            .iter()
            .filter_map(|r| r.dbs.get(i))
            .map(|&(k, e)| if keys { k } else { e })
            .sum()
    };
    o.family("percore_db_keys", "gauge", "Keys per database.");
    for i in 0..dbs {
        let n = db_sum(i, true);
        if n > 0 {
            o.sample("percore_db_keys", &[("db", &i.to_string())], n);
        }
    }
    o.family(
        "percore_db_expires",
        "gauge",
        "Keys with a time to live per database.",
    );
    for i in 0..dbs {
        if db_sum(i, true) > 0 {
            o.sample(
                "percore_db_expires",
                &[("db", &i.to_string())],
                db_sum(i, false),
            );
        }
    }
    let cmds = crate::commands::COMMANDS;
    let cmd_sum = |i: usize| -> (u64, u64) {
        reports
            .iter()
            .filter_map(|r| r.cmds.get(i))
            .fold((0, 0), |(c, u), &(c2, u2)| (c + c2, u + u2))
    };
    o.family(
        "percore_commands_total",
        "counter",
        "Calls per command (INFO commandstats calls).",
    );
    for (i, c) in cmds.iter().enumerate() {
        let (calls, _) = cmd_sum(i);
        if calls > 0 {
            o.sample("percore_commands_total", &[("cmd", c.name)], calls);
        }
    }
    o.family(
        "percore_commands_duration_seconds_total",
        "counter",
        "Time spent per command (INFO commandstats usec).",
    );
    for (i, c) in cmds.iter().enumerate() {
        let (calls, usec) = cmd_sum(i);
        if calls > 0 {
            o.sample(
                "percore_commands_duration_seconds_total",
                &[("cmd", c.name)],
                secs(usec * 1000),
            );
        }
    }
    o.single(
        "percore_rdb_changes_since_last_save",
        "gauge",
        "Changes since the last successful save.",
        inp.changes_since_save,
    );
    o.single(
        "percore_rdb_last_save_timestamp_seconds",
        "gauge",
        "Unix time of the last successful save.",
        inp.last_save_s,
    );
    let p = reports
        .first()
        .and_then(|r| r.persist.clone())
        .unwrap_or_default();
    o.single(
        "percore_rdb_bgsave_in_progress",
        "gauge",
        "1 while a background save runs.",
        u8::from(p.bgsave_in_progress),
    );
    o.single(
        "percore_rdb_last_bgsave_status",
        "gauge",
        "1 when the last background save succeeded, 0 when it failed.",
        u8::from(p.last_bgsave_ok),
    );
    o.single(
        "percore_rdb_last_bgsave_duration_seconds",
        "gauge",
        "Duration of the last background save (-1: none yet).",
        p.last_bgsave_time_s,
    );
    o.single(
        "percore_rdb_saves_total",
        "counter",
        "SAVE and BGSAVE attempts.",
        p.saves,
    );
    o.single(
        "percore_rdb_last_cow_size_bytes",
        "gauge",
        "Copy-on-write memory of the last background save.",
        p.last_cow_size,
    );
    o.single(
        "percore_rdb_last_bgsave_size_bytes",
        "gauge",
        "Size of the last snapshot file written.",
        p.last_bytes,
    );
    o.single(
        "percore_rdb_last_barrier_seconds",
        "gauge",
        "Longest stall of a shard at the last snapshot's barrier.",
        secs(p.last_barrier_us * 1000),
    );
    o.per_shard(
        reports,
        "percore_loop_iterations_total",
        "counter",
        "Event loop iterations.",
        |r| r.loops.iterations.to_string(),
    );
    o.per_shard(
        reports,
        "percore_loop_enters_total",
        "counter",
        "io_uring_enter calls.",
        |r| r.loops.enters.to_string(),
    );
    o.per_shard(
        reports,
        "percore_loop_completions_total",
        "counter",
        "io_uring completions reaped.",
        |r| r.loops.completions.to_string(),
    );
    o.per_shard(
        reports,
        "percore_loop_busy_seconds_total",
        "counter",
        "Time spent in the loop outside the waiting io_uring_enter.",
        |r| secs(r.loops.busy_ns),
    );
    o.per_shard(
        reports,
        "percore_loop_idle_seconds_total",
        "counter",
        "Time spent inside the waiting io_uring_enter.",
        |r| secs(r.loops.idle_ns),
    );
    o.per_shard(
        reports,
        "percore_mailbox_messages_sent_total",
        "counter",
        "Cross-shard messages sent.",
        |r| r.loops.messages_sent.to_string(),
    );
    o.per_shard(
        reports,
        "percore_mailbox_batches_sent_total",
        "counter",
        "Cross-shard message batches sent.",
        |r| r.loops.batches_sent.to_string(),
    );
    o.per_shard(
        reports,
        "percore_mailbox_messages_received_total",
        "counter",
        "Cross-shard messages received.",
        |r| r.loops.messages_received.to_string(),
    );
    o.per_shard(
        reports,
        "percore_mailbox_batches_received_total",
        "counter",
        "Cross-shard message batches received.",
        |r| r.loops.batches_received.to_string(),
    );
    o.per_shard(
        reports,
        "percore_shard_connections",
        "gauge",
        "Client connections owned by the shard.",
        |r| r.connections.to_string(),
    );
    o.per_shard(
        reports,
        "percore_shard_keys",
        "gauge",
        "Keys stored on the shard, all databases.",
        |r| r.dbs.iter().map(|d| d.0).sum::<u64>().to_string(),
    );
    o.per_shard(
        reports,
        "percore_shard_commands_processed_total",
        "counter",
        "Commands run on the shard.",
        |r| r.commands_processed.to_string(),
    );
    o.text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_comment_or_a_sample() {
        let mut a = ShardReport {
            commands_processed: 5,
            dbs: vec![(3, 1), (0, 0)],
            ..ShardReport::default()
        };
        a.cmds = vec![(0, 0); crate::commands::COMMANDS.len()];
        let get = crate::commands::lookup(b"get").unwrap().index();
        a.cmds[get] = (4, 20);
        a.loops.iterations = 100;
        let b = ShardReport {
            commands_processed: 2,
            dbs: vec![(1, 0)],
            ..ShardReport::default()
        };
        let text = render(&Inputs {
            uptime_s: 3,
            connected_clients: 1,
            connections_received: 2,
            rejected_connections: 0,
            used_memory_bytes: 1000,
            changes_since_save: 0,
            last_save_s: 1,
            reports: vec![a, b],
        });
        assert!(text.contains("percore_commands_processed_total 7\n"));
        assert!(text.contains("percore_db_keys{db=\"0\"} 4\n"));
        assert!(text.contains("percore_commands_total{cmd=\"get\"} 4\n"));
        assert!(text.contains("percore_commands_duration_seconds_total{cmd=\"get\"} 0.000020\n"));
        assert!(text.contains("percore_loop_iterations_total{shard=\"0\"} 100\n"));
        assert!(text.contains("percore_shard_keys{shard=\"1\"} 1\n"));
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                assert!(
                    rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap();
            assert!(
                name.starts_with("percore_")
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
