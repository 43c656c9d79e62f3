//! LATENCY DOCTOR: a plain-text report on the recorded events, with Redis's per-event
//! statistics and advice (`createLatencyReport`), plus advice for percore's own events.

use super::{Event, Monitor, Series};
use std::fmt::Write as _;

/// What the report needs besides the events.
#[derive(Clone, Copy, Debug, Default)]
pub struct Env {
    pub threshold_ms: u64,
    pub slowlog_log_slower_than_us: i64,
    pub hz: u32,
    pub used_memory_bytes: u64,
    /// `AnonHugePages` of the process (transparent huge pages in use).
    pub anon_huge_pages_bytes: u64,
    pub now_s: i64,
}

/// Redis's `latencyStats` of one series.
struct Stats {
    samples: u64,
    avg: u64,
    mad: u64,
    /// Seconds from the oldest sample to now (at least 1).
    period: i64,
}

fn analyze(s: &Series, now_s: i64) -> Stats {
    let (mut n, mut sum, mut oldest) = (0u64, 0u64, 0i64);
    for x in s.samples() {
        n += 1;
        sum += x.ms;
        if oldest == 0 || x.time_s < oldest {
            oldest = x.time_s;
        }
    }
    if n == 0 {
        return Stats {
            samples: 0,
            avg: 0,
            mad: 0,
            period: 0,
        };
    }
    let avg = sum / n;
    let dev: u64 = s.samples().map(|x| x.ms.abs_diff(avg)).sum();
    Stats {
        samples: n,
        avg,
        mad: dev / n,
        period: (now_s - oldest).max(1),
    }
}

/// Redis's fork quality, from the fork rate in GB/s.
fn fork_quality(gb_per_s: f64) -> &'static str {
    if gb_per_s < 10.0 {
        "terrible"
    } else if gb_per_s < 25.0 {
        "poor"
    } else if gb_per_s < 100.0 {
        "good"
    } else {
        "excellent"
    }
}

/// Advice, in the order the report prints it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Advice {
    BetterVm,
    SlowlogEnabled,
    SlowlogTuning,
    SlowlogInspect,
    Scheduler,
    Hz,
    LargeObjects,
    DisableThp,
    LoopIteration,
    MailboxWait,
    SnapshotBarrier,
    SnapshotPageCopy,
}

/// The report, as LATENCY DOCTOR answers it.
#[must_use]
pub fn report(m: &Monitor, env: &Env) -> String {
    if m.is_empty() && env.threshold_ms == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    let mut out = String::new();
    let mut advice: Vec<Advice> = Vec::new();
    let mut events = 0;
    for (event, series) in m.events() {
        events += 1;
        if events == 1 {
            out.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let st = analyze(series, env.now_s);
        let _ = write!(
            out,
            "{events}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            event.name(),
            st.samples,
            st.avg,
            st.mad,
            st.period as f64 / st.samples.max(1) as f64,
            series.max_ms
        );
        match event {
            Event::Fork => {
                // GB copied per second of stall, as Redis's `stat_fork_rate`.
                let secs = series.latest().ms.max(1) as f64 / 1000.0;
                let rate = env.used_memory_bytes as f64 / secs / (1024.0 * 1024.0 * 1024.0);
                let quality = fork_quality(rate);
                if rate < 25.0 {
                    advice.push(Advice::BetterVm);
                }
                let _ = write!(out, " Fork rate is {rate:.2} GB/sec ({quality}).");
                advice.push(Advice::SnapshotBarrier);
            }
            Event::Command => {
                if env.slowlog_log_slower_than_us < 0 {
                    advice.push(Advice::SlowlogEnabled);
                } else if env.slowlog_log_slower_than_us / 1000 > env.threshold_ms as i64 {
                    advice.push(Advice::SlowlogTuning);
                }
                advice.extend([Advice::SlowlogInspect, Advice::LargeObjects]);
            }
            Event::FastCommand => advice.push(Advice::Scheduler),
            Event::ExpireCycle => advice.extend([Advice::Hz, Advice::LargeObjects]),
            Event::LoopIteration => advice.push(Advice::LoopIteration),
            Event::MailboxWait | Event::CrossShardHop => advice.push(Advice::MailboxWait),
            Event::SnapshotBarrier => advice.push(Advice::SnapshotBarrier),
            Event::SnapshotPageCopy => advice.push(Advice::SnapshotPageCopy),
        }
        out.push('\n');
    }
    if env.anon_huge_pages_bytes > 0 {
        advice.push(Advice::DisableThp);
    }
    advice.sort_unstable();
    advice.dedup();
    if events == 0 && advice.is_empty() {
        out.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return out;
    }
    out.push_str("\nI have a few advices for you:\n\n");
    for a in advice {
        write_advice(&mut out, a, env);
    }
    out
}

fn write_advice(out: &mut String, a: Advice, env: &Env) {
    let text = match a {
        Advice::BetterVm => "- If you are using a virtual machine, consider upgrading it with a faster one using a hypervisior that provides less latency during fork() calls. Xen is known to have poor fork() performance. Even in the context of the same VM provider, certain kinds of instances can execute fork faster than others.\n".to_string(),
        Advice::SlowlogEnabled => format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", env.threshold_ms * 1000),
        Advice::SlowlogTuning => format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", env.threshold_ms * 1000),
        Advice::SlowlogInspect => "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n".into(),
        Advice::Scheduler => "- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n".into(),
        Advice::Hz if env.hz < 100 => "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n".into(),
        Advice::Hz => String::new(),
        Advice::LargeObjects => "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n".into(),
        Advice::DisableThp => "- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n".into(),
        Advice::LoopIteration => "- A shard's event loop spent longer than the threshold between two waits for I/O: every client of that shard waited meanwhile. The cause is usually one of the other events listed (a slow command, an expiry cycle, a snapshot barrier); if none is, the shard's thread was descheduled: give percore dedicated cores (--threads at most the number of idle cores) and lower the system load.\n".into(),
        Advice::MailboxWait => "- Messages between shards waited in a mailbox longer than the threshold, because the receiving shard was busy (see loop-iteration) or descheduled. Commands whose keys live on several shards (MGET, MSET, DEL, ...) pay that wait: a hashtag ({user1}:a, {user1}:b) keeps keys used together on one shard.\n".into(),
        Advice::SnapshotBarrier => "- Snapshots stop every shard at a barrier for the cut. A fork snapshot stalls for the fork as well, which grows with the dataset: the forkless method ('CONFIG SET default-bgsave-method forkless') stalls only for the cut. A busy or descheduled shard delays the barrier for all the others.\n".into(),
        Advice::SnapshotPageCopy => "- Writes during a forkless snapshot copied table pages aside before the serializer reached them, slowing the loop iterations that made them. Write bursts during BGSAVE, or large values rewritten while a save runs, cause this; it stops when the save ends.\n".into(),
    };
    out.push_str(&text);
}

/// `AnonHugePages` of this process in bytes (0 when unknown), as Redis's
/// `THPGetAnonHugePagesSize`.
#[must_use]
pub fn anon_huge_pages_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env {
            threshold_ms: 1,
            slowlog_log_slower_than_us: 10_000,
            hz: 10,
            used_memory_bytes: 1 << 30,
            anon_huge_pages_bytes: 0,
            now_s: 1001,
        }
    }

    #[test]
    fn disabled_and_quiet_reports_are_redis_texts() {
        let off = Env {
            threshold_ms: 0,
            ..env()
        };
        assert!(report(&Monitor::default(), &off).starts_with("I'm sorry, Dave"));
        assert!(report(&Monitor::default(), &env()).starts_with("Dave, no latency spike"));
    }

    #[test]
    fn command_report_matches_redis() {
        // redis-server 7.0 after one DEBUG SLEEP of 121 ms, threshold 1 ms.
        let mut m = Monitor::default();
        m.record(Event::Command, 1000, 121);
        let r = report(&m, &env());
        assert_eq!(
            r,
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n\
             1. command: 1 latency spikes (average 121ms, mean deviation 0ms, period 1.00 sec). Worst all time event 121ms.\n\
             \nI have a few advices for you:\n\n\
             - Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than 1000'.\n\
             - Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n\
             - Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n"
        );
    }

    #[test]
    fn statistics_and_percore_events() {
        let mut m = Monitor::default();
        m.record(Event::LoopIteration, 990, 10);
        m.record(Event::LoopIteration, 1000, 30);
        m.record(Event::Fork, 1000, 100);
        let r = report(&m, &env());
        assert!(
            r.contains("1. fork: 1 latency spikes (average 100ms, mean deviation 0ms, period 1.00 sec). Worst all time event 100ms. Fork rate is 10.00 GB/sec (poor).\n"),
            "{r}"
        );
        assert!(
            r.contains("2. loop-iteration: 2 latency spikes (average 20ms, mean deviation 10ms, period 5.50 sec). Worst all time event 30ms.\n"),
            "{r}"
        );
        assert!(r.contains("- If you are using a virtual machine"));
        assert!(r.contains("- A shard's event loop"));
        assert!(r.contains("- Snapshots stop every shard"));
    }
}
