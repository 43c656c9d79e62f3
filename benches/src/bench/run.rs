//! A whole run: for each round, each target in turn gets the same load (same request
//! streams, same schedule); phases are collected second by second into a [`Report`].

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use hdrhistogram::Histogram;
use percore_net::sys::monotonic_ns;

use super::args::{Config, EventSpec, Target};
use super::cpu::{CpuTime, process_cpu};
use super::event::{EventRecord, run_events};
use super::keys::{Distribution, KeySpace};
use super::stats::{ErrorCounts, Latency, Second, new_histogram};
use super::template::{DataPool, Mix, Template, Workload};
use super::worker::{LoadMode, Msg, PhaseClock, PhaseSync, WorkerPlan, run_worker};

/// How often the main thread looks at the stop flag while collecting.
const COLLECT_POLL: Duration = Duration::from_millis(50);
/// Pipeline depth of `--prefill` (never below the run's own).
const PREFILL_PIPELINE: usize = 32;

/// Why a run could not go on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BenchError {
    /// No connection to a target came up.
    Connect {
        target: String,
        addr: SocketAddr,
        reason: String,
    },
    /// The workload could not be built.
    Workload(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect {
                target,
                addr,
                reason,
            } => write!(f, "cannot connect to {target} ({addr}): {reason}"),
            Self::Workload(e) => write!(f, "bad workload: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}

/// One target in one round.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    pub target: usize,
    pub round: u32,
    pub hist: Histogram<u64>,
    /// Measured requests sent and replies received.
    pub sent: u64,
    pub replies: u64,
    /// All replies, warm-up included (for the generator's CPU per request).
    pub all_replies: u64,
    /// Length of the measurement, seconds.
    pub measured_s: f64,
    pub reply_errors: ErrorCounts,
    pub conn_errors: ErrorCounts,
    pub timeline: Vec<Second>,
    pub events: Vec<EventRecord>,
    pub interrupted: bool,
    /// The generator's CPU time over the phase.
    pub cpu: CpuTime,
    pub connections: usize,
}

impl PhaseResult {
    pub fn throughput(&self) -> f64 {
        if self.measured_s > 0.0 {
            self.replies as f64 / self.measured_s
        } else {
            0.0
        }
    }
}

/// All rounds of one target, merged.
#[derive(Clone, Debug)]
pub struct TargetSummary {
    pub target: Target,
    pub hist: Histogram<u64>,
    pub replies: u64,
    pub sent: u64,
    pub measured_s: f64,
    pub reply_errors: ErrorCounts,
    pub conn_errors: ErrorCounts,
    pub cpu: CpuTime,
    pub all_replies: u64,
    pub rounds: usize,
    /// `--prefill`: keys written and seconds taken.
    pub prefill: Option<(u64, f64)>,
}

impl TargetSummary {
    pub fn throughput(&self) -> f64 {
        if self.measured_s > 0.0 {
            self.replies as f64 / self.measured_s
        } else {
            0.0
        }
    }

    pub fn latency(&self) -> Latency {
        Latency::of(&self.hist)
    }

    pub fn errors(&self) -> u64 {
        self.reply_errors.total() + self.conn_errors.total()
    }

    /// The generator's CPU time per reply, µs.
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.all_replies == 0 {
            0.0
        } else {
            self.cpu.total_s() * 1e6 / self.all_replies as f64
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// In the order run: round 1 target A, round 1 target B, ...
    pub phases: Vec<PhaseResult>,
    pub targets: Vec<TargetSummary>,
    /// Ctrl-C stopped it.
    pub interrupted: bool,
    /// A failure that ended the run early, after the phases above.
    pub failure: Option<BenchError>,
}

/// Builds the shared workload of a run.
pub fn workload(cfg: &Config) -> Result<Workload, BenchError> {
    Ok(Workload {
        mix: Mix::new(cfg.mix.clone()).map_err(BenchError::Workload)?,
        keys: KeySpace::new(cfg.keyspace, cfg.distribution, &cfg.key_prefix),
        data: DataPool::new(cfg.value_size.0, cfg.value_size.1, cfg.seed),
    })
}

/// The load of one phase.
struct PhaseLoad<'a> {
    workload: &'a Workload,
    connections: usize,
    threads: usize,
    mode: LoadMode,
    requests: Option<u64>,
    duration: Option<Duration>,
    warmup: Duration,
    events: &'a [EventSpec],
    seed: u64,
    timeout: Duration,
}

/// Runs every round against every target. `progress` gets a line per second (stderr in
/// the binary); `stop` ends the run early (Ctrl-C) with what was measured so far.
pub fn run(
    cfg: &Config,
    stop: &AtomicBool,
    progress: &mut dyn Write,
) -> Result<Report, BenchError> {
    let workload = workload(cfg)?;
    let mode = match cfg.rate {
        Some(rate) => LoadMode::Open {
            interval_ns: cfg.connections as f64 * 1e9 / rate,
            depth: cfg.pipeline,
        },
        None => LoadMode::Closed {
            batch: cfg.pipeline,
        },
    };
    let load = PhaseLoad {
        workload: &workload,
        connections: cfg.connections,
        threads: cfg.threads,
        mode,
        requests: cfg.requests,
        duration: cfg.duration,
        warmup: cfg.warmup,
        events: &cfg.events,
        seed: cfg.seed,
        timeout: cfg.timeout,
    };
    let mut report = Report {
        phases: Vec::new(),
        targets: Vec::new(),
        interrupted: false,
        failure: None,
    };
    let mut prefills: Vec<Option<(u64, f64)>> = vec![None; cfg.targets.len()];
    'rounds: for round in 1..=cfg.rounds {
        for (ti, target) in cfg.targets.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                report.interrupted = true;
                break 'rounds;
            }
            if cfg.prefill && round == 1 {
                match prefill(cfg, target, stop) {
                    Ok(p) => {
                        let _ = writeln!(
                            progress,
                            "{}: prefilled {} keys in {:.2}s",
                            target.name, p.replies, p.measured_s
                        );
                        prefills[ti] = Some((p.replies, p.measured_s));
                    }
                    Err(e) => {
                        report.failure = Some(e);
                        break 'rounds;
                    }
                }
            }
            let _ = writeln!(
                progress,
                "{} round {round}/{}{}",
                target.name,
                cfg.rounds,
                if cfg.warmup.is_zero() {
                    String::new()
                } else {
                    format!(": warming up {:?}", cfg.warmup)
                }
            );
            let label = format!("{} r{round}", target.name);
            match run_phase(&load, target, stop, progress, &label) {
                Ok(mut p) => {
                    p.target = ti;
                    p.round = round;
                    let interrupted = p.interrupted;
                    report.phases.push(p);
                    if interrupted {
                        report.interrupted = true;
                        break 'rounds;
                    }
                }
                Err(e) => {
                    report.failure = Some(e);
                    break 'rounds;
                }
            }
        }
    }
    report.targets = summarize(&cfg.targets, &report.phases, &prefills);
    Ok(report)
}

/// Merges each target's phases.
fn summarize(
    targets: &[Target],
    phases: &[PhaseResult],
    prefills: &[Option<(u64, f64)>],
) -> Vec<TargetSummary> {
    targets
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            let mut s = TargetSummary {
                target: t.clone(),
                hist: new_histogram(),
                replies: 0,
                sent: 0,
                measured_s: 0.0,
                reply_errors: ErrorCounts::default(),
                conn_errors: ErrorCounts::default(),
                cpu: CpuTime::default(),
                all_replies: 0,
                rounds: 0,
                prefill: prefills.get(ti).copied().flatten(),
            };
            for p in phases.iter().filter(|p| p.target == ti) {
                s.hist.add(&p.hist).expect("same histogram bounds");
                s.replies += p.replies;
                s.sent += p.sent;
                s.measured_s += p.measured_s;
                s.reply_errors.merge(&p.reply_errors);
                s.conn_errors.merge(&p.conn_errors);
                s.cpu += p.cpu;
                s.all_replies += p.all_replies;
                s.rounds += 1;
            }
            s
        })
        .collect()
}

/// `--prefill`: SET every key once, sequentially, pipelined.
fn prefill(cfg: &Config, target: &Target, stop: &AtomicBool) -> Result<PhaseResult, BenchError> {
    let set = Template::parse("set", "SET __key__ __data__").map_err(BenchError::Workload)?;
    let workload = Workload {
        mix: Mix::new(vec![(set, 1)]).map_err(BenchError::Workload)?,
        keys: KeySpace::new(cfg.keyspace, Distribution::Sequential, &cfg.key_prefix),
        data: DataPool::new(cfg.value_size.0, cfg.value_size.1, cfg.seed ^ 0x5EED),
    };
    let load = PhaseLoad {
        workload: &workload,
        connections: cfg.connections.min(cfg.keyspace as usize),
        threads: cfg.threads,
        mode: LoadMode::Closed {
            batch: cfg.pipeline.max(PREFILL_PIPELINE),
        },
        requests: Some(cfg.keyspace),
        duration: None,
        warmup: Duration::ZERO,
        events: &[],
        seed: cfg.seed,
        timeout: cfg.timeout,
    };
    run_phase(&load, target, stop, &mut std::io::sink(), "prefill")
}

/// Per-second collection on the main thread.
struct Collector {
    rows: Vec<(Histogram<u64>, u64, u64)>,
    total: Histogram<u64>,
    /// Per thread: seconds reported so far, and whether it is finished.
    reported: Vec<(u64, bool)>,
    printed: u64,
}

impl Collector {
    fn add(
        &mut self,
        thread: usize,
        second: u64,
        hist: &Histogram<u64>,
        replies: u64,
        errors: u64,
    ) {
        let s = second as usize;
        while self.rows.len() <= s {
            self.rows.push((new_histogram(), 0, 0));
        }
        let row = &mut self.rows[s];
        row.0.add(hist).expect("same histogram bounds");
        row.1 += replies;
        row.2 += errors;
        self.total.add(hist).expect("same histogram bounds");
        self.reported[thread].0 = second + 1;
    }

    /// Prints the seconds every running thread has reported; at the end, `measured_s`
    /// scales a last, shorter second to a rate.
    fn print_ready(&mut self, label: &str, progress: &mut dyn Write, measured_s: Option<f64>) {
        let ready = self
            .reported
            .iter()
            .filter(|(_, done)| !done)
            .map(|&(n, _)| n)
            .min()
            .unwrap_or(self.rows.len() as u64);
        while self.printed < ready.min(self.rows.len() as u64) {
            let (h, replies, errors) = &self.rows[self.printed as usize];
            let l = Latency::of(h);
            let len = measured_s.map_or(1.0, |m| (m - self.printed as f64).clamp(1e-3, 1.0));
            let _ = writeln!(
                progress,
                "{label} {:>4}s {:>12} req/s  p50 {:>9} ms  p99 {:>9} ms  max {:>9} ms  errors {errors}",
                self.printed,
                group_thousands(*replies as f64 / len),
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
            );
            self.printed += 1;
        }
    }
}

/// µs as milliseconds with 3 decimals.
pub fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// `1234567.8` as `1,234,568`.
pub fn group_thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs one target once.
fn run_phase(
    load: &PhaseLoad<'_>,
    target: &Target,
    stop: &AtomicBool,
    progress: &mut dyn Write,
    label: &str,
) -> Result<PhaseResult, BenchError> {
    let conns = load.connections;
    let threads = load.threads.clamp(1, conns.max(1));
    let sync = PhaseSync::new(threads);
    let finished = AtomicBool::new(false);
    let last_second = load
        .duration
        .map(|d| (d.as_nanos().div_ceil(1_000_000_000) as u64).max(1) - 1);
    let plans: Vec<WorkerPlan<'_>> = (0..threads)
        .map(|t| WorkerPlan {
            thread: t,
            conns: (t * conns / threads)..((t + 1) * conns / threads),
            total_conns: conns,
            addr: target.addr,
            workload: load.workload,
            seed: load.seed,
            mode: load.mode,
            requests: load.requests,
            timeout_ns: load.timeout.as_nanos() as u64,
            last_second,
        })
        .collect();
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut collector = Collector {
        rows: Vec::new(),
        total: new_histogram(),
        reported: vec![(0, false); threads],
        printed: 0,
    };
    let mut totals = Vec::new();
    let mut interrupted = false;
    let mut stopped_at = None;
    let (clock, cpu, events) = std::thread::scope(|s| {
        for plan in &plans {
            let tx = tx.clone();
            let sync = &sync;
            s.spawn(move || run_worker(plan, sync, stop, &tx));
        }
        drop(tx);
        let event_thread = (!load.events.is_empty()).then(|| {
            let (sync, finished) = (&sync, &finished);
            s.spawn(move || run_events(target.addr, load.events, sync, finished, stop))
        });
        sync.ready.wait();
        if sync.connected.load(Ordering::SeqCst) == 0 {
            sync.abort.store(true, Ordering::SeqCst);
        }
        let cpu_before = process_cpu();
        let start_ns = monotonic_ns();
        let measure_ns = start_ns + load.warmup.as_nanos() as u64;
        let clock = PhaseClock {
            start_ns,
            measure_ns,
            end_ns: load.duration.map(|d| measure_ns + d.as_nanos() as u64),
        };
        sync.clock.set(clock).expect("the clock is set once");
        sync.go.wait();
        let mut done = 0;
        while done < threads {
            match rx.recv_timeout(COLLECT_POLL) {
                Ok(Msg::Second {
                    thread,
                    second,
                    hist,
                    replies,
                    errors,
                }) => {
                    collector.add(thread, second, &hist, replies, errors);
                    collector.print_ready(label, progress, None);
                }
                Ok(Msg::Done(t)) => {
                    collector.reported[t.thread].1 = true;
                    totals.push(t);
                    done += 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if stop.load(Ordering::SeqCst) && !interrupted {
                interrupted = true;
                stopped_at = Some(monotonic_ns());
            }
        }
        finished.store(true, Ordering::SeqCst);
        let cpu = process_cpu() - cpu_before;
        let events = event_thread
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (clock, cpu, events)
    });
    if sync.abort.load(Ordering::SeqCst) {
        let reason = sync
            .connect_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "no connection came up".into());
        return Err(BenchError::Connect {
            target: target.name.clone(),
            addr: target.addr,
            reason,
        });
    }

    let mut reply_errors = ErrorCounts::default();
    let mut conn_errors = ErrorCounts::default();
    let (mut sent, mut replies, mut all_replies, mut last_reply) = (0, 0, 0, clock.measure_ns);
    for t in &totals {
        all_replies += t.all_replies;
        reply_errors.merge(&t.reply_errors);
        conn_errors.merge(&t.conn_errors);
        sent += t.sent;
        replies += t.replies;
        last_reply = last_reply.max(t.last_reply_ns);
    }
    let measured_s = match (stopped_at, load.duration) {
        (Some(at), _) => at.saturating_sub(clock.measure_ns) as f64 / 1e9,
        (None, Some(d)) => d.as_secs_f64(),
        (None, None) => last_reply.saturating_sub(clock.measure_ns) as f64 / 1e9,
    };
    collector.print_ready(label, progress, Some(measured_s));
    let timeline = timeline(&collector, measured_s, &events);
    Ok(PhaseResult {
        target: 0,
        round: 0,
        hist: collector.total,
        sent,
        replies,
        all_replies,
        measured_s,
        reply_errors,
        conn_errors,
        timeline,
        events,
        interrupted,
        cpu,
        connections: sync.connected.load(Ordering::SeqCst),
    })
}

fn timeline(c: &Collector, measured_s: f64, events: &[EventRecord]) -> Vec<Second> {
    let mut rows: Vec<Second> = c
        .rows
        .iter()
        .enumerate()
        .map(|(i, (h, replies, errors))| {
            let len = (measured_s - i as f64).clamp(1e-3, 1.0);
            let l = Latency::of(h);
            Second {
                second: i as u64,
                replies: *replies,
                rate: *replies as f64 / len,
                p50_us: l.p50,
                p99_us: l.p99,
                max_us: l.max,
                errors: *errors,
                events: Vec::new(),
            }
        })
        .collect();
    for e in events {
        for (t, label) in e.marks() {
            let s = (t.max(0.0) as usize).min(rows.len().saturating_sub(1));
            if let Some(row) = rows.get_mut(s) {
                row.events.push(format!("{label} @{t:.3}s"));
            }
        }
    }
    rows
}
