//! Command-line flags of `percore-bench`, parsed by hand into a [`Config`].
//!
//! Every mistake is an [`ArgError`] naming the flag, what it expects and what it got
//! (`--pipeline: expected a positive integer, got 'x'`); the binary prints it and exits 2.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::keys::Distribution;
use super::template::{BUILTIN_COMMANDS, Template, builtin};

/// The most connections a run opens (per target).
pub const MAX_CONNECTIONS: usize = 10_000;
/// The most load threads.
pub const MAX_THREADS: usize = 256;
/// The deepest pipeline (requests in flight per connection).
pub const MAX_PIPELINE: usize = 1024;
/// The largest `__data__` value.
pub const MAX_VALUE_SIZE_BYTES: usize = 64 * 1024 * 1024;
/// The longest run phase (`--duration`, `--warmup`, `--at`).
pub const MAX_DURATION_S: u64 = 24 * 3600;
/// The most rounds.
pub const MAX_ROUNDS: u32 = 1000;
/// The most targets.
pub const MAX_TARGETS: usize = 16;
/// The most `--during` events.
pub const MAX_EVENTS: usize = 16;
/// The highest `--rate`, requests per second.
pub const MAX_RATE_PER_S: f64 = 1e9;
/// The largest keyspace.
pub const MAX_KEYSPACE: u64 = 1 << 48;
/// The largest `--requests`.
pub const MAX_REQUESTS: u64 = 1 << 48;

/// One server under load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The name in tables and files (`redis`), or the address as written.
    pub name: String,
    pub addr: SocketAddr,
}

/// A command sent on a side connection during the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub command: String,
    /// From the start of measurement (after warm-up).
    pub at: Duration,
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub targets: Vec<Target>,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    /// Templates with their weights, in the order given.
    pub mix: Vec<(Template, u64)>,
    /// How the mix was written, for reports.
    pub mix_text: String,
    pub keyspace: u64,
    pub distribution: Distribution,
    pub key_prefix: String,
    pub value_size: (usize, usize),
    /// Measured time per round (after warm-up); `None` with `--requests` alone.
    pub duration: Option<Duration>,
    /// Measured requests per round, split over the connections.
    pub requests: Option<u64>,
    pub warmup: Duration,
    /// Open loop at this many requests per second in total; closed loop when `None`.
    pub rate: Option<f64>,
    pub rounds: u32,
    pub events: Vec<EventSpec>,
    pub prefill: bool,
    pub seed: u64,
    /// A connection whose oldest request waits longer than this is dropped.
    pub timeout: Duration,
    pub hdr_out: Option<PathBuf>,
    pub timeline_out: Option<PathBuf>,
    pub json_out: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub quiet: bool,
}

/// What the command line asks for.
#[derive(Clone, Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
}

/// A usage mistake, worded for the person who typed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(msg.into()))
}

pub const USAGE: &str = "\
percore-bench: a load generator for Redis-protocol servers (percore, redis-server, Valkey)

USAGE: percore-bench [FLAGS]

Targets
  --target [NAME=]HOST:PORT  server to load; repeat to compare (run alternately, same load)
                             [default: 127.0.0.1:6379]
  --allow-remote             allow targets that are not loopback addresses
  --rounds K                 run the targets A, B, A, B, ... K times each [default: 1]

Load
  -c, --connections N        connections per target [default: 50]
  --threads M                load threads, connections spread over them [default: 1]
  -P, --pipeline N           closed loop: requests per batch; open loop: most requests in
                             flight per connection [default: 1]
  --rate R                   open loop at R requests/s in total (50000, 50k, 1.5M); latency is
                             measured from each request's intended send time. Without it:
                             closed loop, each connection sends its next batch on the last reply
  --mix NAME:W,...           built-in commands with weights [default: get:80,set:20]
                             names: BUILTINS
  --command \"[W:]TEMPLATE\"   any command, __key__ and __data__ filled in per request;
                             repeatable, weight W [default: 1], e.g. \"HSET __key__ f __data__\"
  --keyspace N               keys are PREFIX + 12 digits, 0..N [default: 100000]
  --distribution D           uniform | zipf | sequential [default: uniform]
  --zipf-skew S              zipf exponent (implies --distribution zipf) [default: 0.99]
  --key-prefix P             [default: key:]
  --value-size N | MIN-MAX   bytes of __data__, fixed or uniform in a range [default: 100]
  --prefill                  SET every key of the keyspace (value size as above) before the
                             first round against each target
  --seed N                   request stream seed; the same seed gives every target the same
                             keys and values [default: 1]

Time
  --duration D               measured time per round: 30s, 500ms, 2m [default: 10s]
  -n, --requests N           measured requests per round (with --duration: whichever first)
  --warmup D                 unmeasured load before each round's measurement [default: 0s]
  --timeout D                drop a connection whose reply is this late [default: 10s]

Events
  --during \"CMD ARGS\" --at T send CMD on a side connection T after measurement starts, mark it
                             on the timeline and print its reply; repeatable. After BGSAVE or
                             BGREWRITEAOF, INFO is polled to mark when it finished

Output (a summary table always goes to stdout, per-second progress to stderr)
  --hdr-out FILE             full percentile spectrum, HdrHistogram text format (ms)
  --timeline-out FILE        per-second CSV: throughput, p50, p99, max, errors, events
  --json-out FILE            machine-readable summary
  --plot FILE                SVG: percentile spectrum and timeline
                             (with several targets, --hdr-out writes FILE.NAME per target)
  --quiet                    no per-second progress
  -h, --help                 this text

Ctrl-C stops the run and prints what was measured so far; a second Ctrl-C kills it.
";

/// The usage text with the built-in command names filled in.
pub fn usage() -> String {
    let names: Vec<&str> = BUILTIN_COMMANDS.iter().map(|&(n, _)| n).collect();
    USAGE.replace("BUILTINS", &names.join(" "))
}

/// Parses a duration: `30s`, `500ms`, `2m`, `1h`, `1.5s`, `250us`; a bare number is seconds.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, ArgError> {
    let bad = || {
        ArgError(format!(
            "{flag}: expected a duration like 30s, 500ms or 2m, got '{text}'"
        ))
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    if secs > MAX_DURATION_S as f64 {
        return err(format!(
            "{flag}: {text} is longer than the limit of {}h",
            MAX_DURATION_S / 3600
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_positive(flag: &str, text: &str, max: u64) -> Result<u64, ArgError> {
    match text.trim().replace('_', "").parse::<u64>() {
        Ok(0) | Err(_) => err(format!("{flag}: expected a positive integer, got '{text}'")),
        Ok(n) if n > max => err(format!("{flag}: {n} is above the limit of {max}")),
        Ok(n) => Ok(n),
    }
}

/// A count with an optional `k`/`m` suffix (`50k`, `1.5M`).
fn parse_rate(flag: &str, text: &str) -> Result<f64, ArgError> {
    let t = text.trim();
    let (num, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale <= MAX_RATE_PER_S => Ok(v * scale),
        Ok(v) if v.is_finite() && v > 0.0 => err(format!(
            "{flag}: {text} is above the limit of {MAX_RATE_PER_S:e} requests/s"
        )),
        _ => err(format!(
            "{flag}: expected a positive number of requests per second like 50000 or 50k, got '{text}'"
        )),
    }
}

fn parse_value_size(text: &str) -> Result<(usize, usize), ArgError> {
    let bad = || {
        ArgError(format!(
            "--value-size: expected a size like 100 or a range like 64-512, got '{text}'"
        ))
    };
    let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    let (min, max) = if let Some((a, b)) = text.split_once('-') {
        (num(a)?, num(b)?)
    } else {
        let n = num(text)?;
        (n, n)
    };
    if min > max {
        return err(format!(
            "--value-size: the range {text} runs backwards (write {max}-{min})"
        ));
    }
    if max > MAX_VALUE_SIZE_BYTES {
        return err(format!(
            "--value-size: {max} bytes is above the limit of {MAX_VALUE_SIZE_BYTES}"
        ));
    }
    Ok((min, max))
}

/// `get:80,set:20` into templates and weights.
fn parse_mix(text: &str) -> Result<Vec<(Template, u64)>, ArgError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, weight) = item
            .split_once(':')
            .map_or((item, None), |(n, w)| (n, Some(w)));
        let Some(template) = builtin(name.trim()) else {
            let names: Vec<&str> = BUILTIN_COMMANDS.iter().map(|&(n, _)| n).collect();
            return err(format!(
                "--mix: unknown command '{name}' (known: {}; use --command for others)",
                names.join(", ")
            ));
        };
        let weight = match weight {
            None => 1,
            Some(w) => w.trim().parse::<u64>().map_err(|_| {
                ArgError(format!(
                    "--mix: expected NAME:WEIGHT pairs like get:80,set:20, got '{item}'"
                ))
            })?,
        };
        let t = Template::parse(&name.trim().to_ascii_lowercase(), template)
            .map_err(|e| ArgError(format!("--mix: {e}")))?;
        out.push((t, weight));
    }
    if out.is_empty() {
        return err(format!(
            "--mix: expected NAME:WEIGHT pairs like get:80,set:20, got '{text}'"
        ));
    }
    Ok(out)
}

/// `[W:]TEMPLATE`: a leading `digits:` is the weight (no command name starts with a digit).
fn parse_command(text: &str) -> Result<(Template, u64), ArgError> {
    let (weight, template) = match text.split_once(':') {
        Some((w, rest)) if !w.is_empty() && w.trim().bytes().all(|b| b.is_ascii_digit()) => {
            let w = w
                .trim()
                .parse::<u64>()
                .map_err(|_| ArgError(format!("--command: the weight in '{text}' is too large")))?;
            (w, rest)
        }
        _ => (1, text),
    };
    let t = Template::parse(template.trim(), template)
        .map_err(|e| ArgError(format!("--command: {e}")))?;
    Ok((t, weight))
}

/// `[NAME=]HOST:PORT`, resolved, checked for loopback unless allowed.
fn parse_target(text: &str) -> Result<(Option<String>, String, SocketAddr), ArgError> {
    let (name, addr_text) = match text.split_once('=') {
        Some((n, a)) => (Some(n.trim().to_string()), a.trim()),
        None => (None, text.trim()),
    };
    if let Some(n) = &name
        && (n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return err(format!(
            "--target: a name may hold letters, digits, '-', '_' and '.', got '{n}'"
        ));
    }
    let resolved: Vec<SocketAddr> = match addr_text.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return err(format!(
                "--target: expected [NAME=]HOST:PORT like redis=127.0.0.1:6379, got '{text}' ({e})"
            ));
        }
    };
    let Some(addr) = resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
    else {
        return err(format!("--target: '{addr_text}' resolves to no address"));
    };
    Ok((name, addr_text.to_string(), addr))
}

struct Args {
    items: Vec<String>,
    pos: usize,
}

impl Args {
    /// The value of `flag`: the rest after `=`, or the next argument.
    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, ArgError> {
        if let Some(v) = inline {
            return Ok(v);
        }
        match self.items.get(self.pos) {
            Some(v) => {
                self.pos += 1;
                Ok(v.clone())
            }
            None => err(format!("{flag}: expected a value")),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Command, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut a = Args {
        items: args.into_iter().map(Into::into).collect(),
        pos: 0,
    };
    let mut targets_text: Vec<String> = Vec::new();
    let mut allow_remote = false;
    let mut connections = 50usize;
    let mut threads = 1usize;
    let mut pipeline = 1usize;
    let mut mix: Vec<(Template, u64)> = Vec::new();
    let mut mix_text: Vec<String> = Vec::new();
    let mut keyspace = 100_000u64;
    let mut distribution: Option<String> = None;
    let mut zipf_skew: Option<f64> = None;
    let mut key_prefix = "key:".to_string();
    let mut value_size = (100, 100);
    let mut duration = None;
    let mut requests = None;
    let mut warmup = Duration::ZERO;
    let mut rate = None;
    let mut rounds = 1u32;
    let mut events: Vec<EventSpec> = Vec::new();
    let mut pending_event: Option<String> = None;
    let mut prefill = false;
    let mut seed = 1u64;
    let mut timeout = Duration::from_secs(10);
    let (mut hdr_out, mut timeline_out, mut json_out, mut plot) = (None, None, None, None);
    let mut quiet = false;

    while let Some(raw) = a.items.get(a.pos).cloned() {
        a.pos += 1;
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (raw.clone(), None),
        };
        let flag = flag.as_str();
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--target" => targets_text.push(a.value(flag, inline)?),
            "--allow-remote" => allow_remote = true,
            "-c" | "--connections" => {
                connections =
                    parse_positive(flag, &a.value(flag, inline)?, MAX_CONNECTIONS as u64)? as usize;
            }
            "--threads" => {
                threads =
                    parse_positive(flag, &a.value(flag, inline)?, MAX_THREADS as u64)? as usize;
            }
            "-P" | "--pipeline" => {
                pipeline =
                    parse_positive(flag, &a.value(flag, inline)?, MAX_PIPELINE as u64)? as usize;
            }
            "--mix" => {
                let v = a.value(flag, inline)?;
                mix.extend(parse_mix(&v)?);
                mix_text.push(v);
            }
            "--command" => {
                let v = a.value(flag, inline)?;
                mix.push(parse_command(&v)?);
                mix_text.push(format!("\"{v}\""));
            }
            "--keyspace" => keyspace = parse_positive(flag, &a.value(flag, inline)?, MAX_KEYSPACE)?,
            "--distribution" => distribution = Some(a.value(flag, inline)?),
            "--zipf-skew" => {
                let v = a.value(flag, inline)?;
                match v.trim().parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 10.0 => zipf_skew = Some(s),
                    _ => {
                        return err(format!(
                            "--zipf-skew: expected a number above 0 and at most 10 (0.99 is YCSB's), got '{v}'"
                        ));
                    }
                }
            }
            "--key-prefix" => key_prefix = a.value(flag, inline)?,
            "--value-size" => value_size = parse_value_size(&a.value(flag, inline)?)?,
            "--duration" => {
                let d = parse_duration(flag, &a.value(flag, inline)?)?;
                if d.is_zero() {
                    return err("--duration: must be longer than zero");
                }
                duration = Some(d);
            }
            "-n" | "--requests" => {
                requests = Some(parse_positive(flag, &a.value(flag, inline)?, MAX_REQUESTS)?);
            }
            "--warmup" => warmup = parse_duration(flag, &a.value(flag, inline)?)?,
            "--rate" => rate = Some(parse_rate(flag, &a.value(flag, inline)?)?),
            "--rounds" => {
                rounds =
                    parse_positive(flag, &a.value(flag, inline)?, u64::from(MAX_ROUNDS))? as u32;
            }
            "--during" => {
                if let Some(prev) = pending_event {
                    return err(format!(
                        "--during \"{prev}\" needs an --at before the next --during"
                    ));
                }
                let v = a.value(flag, inline)?;
                if v.trim().is_empty() {
                    return err("--during: expected a command like BGSAVE");
                }
                pending_event = Some(v);
            }
            "--at" => {
                let at = parse_duration(flag, &a.value(flag, inline)?)?;
                let Some(command) = pending_event.take() else {
                    return err("--at: needs a --during \"COMMAND\" before it");
                };
                events.push(EventSpec { command, at });
            }
            "--prefill" => prefill = true,
            "--seed" => {
                let v = a.value(flag, inline)?;
                seed = v.trim().parse().map_err(|_| {
                    ArgError(format!(
                        "--seed: expected a non-negative integer, got '{v}'"
                    ))
                })?;
            }
            "--timeout" => {
                timeout = parse_duration(flag, &a.value(flag, inline)?)?;
                if timeout < Duration::from_millis(1) {
                    return err("--timeout: must be at least 1ms");
                }
            }
            "--hdr-out" => hdr_out = Some(PathBuf::from(a.value(flag, inline)?)),
            "--timeline-out" => timeline_out = Some(PathBuf::from(a.value(flag, inline)?)),
            "--json-out" => json_out = Some(PathBuf::from(a.value(flag, inline)?)),
            "--plot" => plot = Some(PathBuf::from(a.value(flag, inline)?)),
            "--quiet" => quiet = true,
            _ if flag.starts_with('-') => {
                return err(format!("unknown flag '{flag}' (see --help)"));
            }
            _ => {
                return err(format!(
                    "unexpected argument '{raw}' (flags take the form --name value; see --help)"
                ));
            }
        }
    }

    if let Some(prev) = pending_event {
        return err(format!(
            "--during \"{prev}\" needs --at TIME (for example --at 10s)"
        ));
    }
    if events.len() > MAX_EVENTS {
        return err(format!("--during: at most {MAX_EVENTS} events"));
    }
    if mix.is_empty() {
        mix = parse_mix("get:80,set:20")?;
        mix_text.push("get:80,set:20".into());
    }
    if !mix.iter().any(|&(_, w)| w > 0) {
        return err("--mix/--command: at least one command needs a positive weight");
    }

    let distribution = match (distribution.as_deref().map(str::trim), zipf_skew) {
        (None | Some("uniform"), None) => Distribution::Uniform,
        (None | Some("zipf" | "zipfian"), skew) => Distribution::Zipf {
            skew: skew.unwrap_or(0.99),
        },
        (Some("sequential"), None) => Distribution::Sequential,
        (Some(d @ ("uniform" | "sequential")), Some(_)) => {
            return err(format!(
                "--zipf-skew: applies to --distribution zipf, not '{d}'"
            ));
        }
        (Some(d), _) => {
            return err(format!(
                "--distribution: expected uniform, zipf or sequential, got '{d}'"
            ));
        }
    };

    if duration.is_none() && requests.is_none() {
        duration = Some(Duration::from_secs(10));
    }
    if let Some(d) = duration
        && let Some(e) = events.iter().find(|e| e.at >= d)
    {
        return err(format!(
            "--at: {:?} is not before the end of measurement (--duration {d:?}) for \"{}\"",
            e.at, e.command
        ));
    }

    if targets_text.is_empty() {
        targets_text.push("127.0.0.1:6379".into());
    }
    if targets_text.len() > MAX_TARGETS {
        return err(format!("--target: at most {MAX_TARGETS} targets"));
    }
    let mut targets: Vec<Target> = Vec::new();
    for t in &targets_text {
        let (name, addr_text, addr) = parse_target(t)?;
        if !allow_remote && !addr.ip().is_loopback() {
            return err(format!(
                "--target: {addr_text} ({}) is not a loopback address; pass --allow-remote to load a server on another machine",
                addr.ip()
            ));
        }
        let name = name.unwrap_or(addr_text);
        if targets.iter().any(|x| x.name == name) {
            return err(format!(
                "--target: the name '{name}' is used twice (write NAME=HOST:PORT)"
            ));
        }
        targets.push(Target { name, addr });
    }

    Ok(Command::Run(Box::new(Config {
        targets,
        connections,
        threads: threads.min(connections),
        pipeline,
        mix,
        mix_text: mix_text.join(" "),
        keyspace,
        distribution,
        key_prefix,
        value_size,
        duration,
        requests,
        warmup,
        rate,
        rounds,
        events,
        prefill,
        seed,
        timeout,
        hdr_out,
        timeline_out,
        json_out,
        plot,
        quiet,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse_args(args.iter().copied()) {
            Ok(Command::Run(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    fn fails(args: &[&str]) -> String {
        match parse_args(args.iter().copied()) {
            Err(e) => e.0,
            Ok(c) => panic!("accepted {args:?}: {c:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]);
        assert_eq!(c.targets[0].addr, "127.0.0.1:6379".parse().unwrap());
        assert_eq!(c.connections, 50);
        assert_eq!(c.threads, 1);
        assert_eq!(c.pipeline, 1);
        assert_eq!(c.duration, Some(Duration::from_secs(10)));
        assert_eq!(c.rate, None);
        assert_eq!(c.mix.len(), 2);
        assert_eq!(c.distribution, Distribution::Uniform);
    }

    #[test]
    fn the_issue_example() {
        let c = run(&[
            "--target",
            "redis=127.0.0.1:6379",
            "--target",
            "percore=127.0.0.1:6380",
            "--mix",
            "get:80,set:20",
            "--rate",
            "50k",
            "--duration",
            "20s",
            "--during",
            "BGSAVE",
            "--at",
            "10s",
            "--plot",
            "out.svg",
            "--value-size=64-512",
            "--zipf-skew",
            "1.1",
        ]);
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.targets[1].name, "percore");
        assert_eq!(c.rate, Some(50_000.0));
        assert_eq!(c.duration, Some(Duration::from_secs(20)));
        assert_eq!(
            c.events,
            vec![EventSpec {
                command: "BGSAVE".into(),
                at: Duration::from_secs(10)
            }]
        );
        assert_eq!(c.value_size, (64, 512));
        assert_eq!(c.distribution, Distribution::Zipf { skew: 1.1 });
    }

    #[test]
    fn durations() {
        for (t, ms) in [
            ("30s", 30_000),
            ("500ms", 500),
            ("2m", 120_000),
            ("1.5", 1500),
        ] {
            assert_eq!(parse_duration("--x", t).unwrap(), Duration::from_millis(ms));
        }
        assert_eq!(
            parse_duration("--duration", "3 weeks").unwrap_err().0,
            "--duration: expected a duration like 30s, 500ms or 2m, got '3 weeks'"
        );
    }

    #[test]
    fn clear_errors() {
        assert_eq!(
            fails(&["--pipeline", "x"]),
            "--pipeline: expected a positive integer, got 'x'"
        );
        assert_eq!(
            fails(&["-P", "0"]),
            "-P: expected a positive integer, got '0'"
        );
        assert_eq!(fails(&["--connections"]), "--connections: expected a value");
        assert_eq!(
            fails(&["--frobnicate"]),
            "unknown flag '--frobnicate' (see --help)"
        );
        assert!(fails(&["--mix", "get:80,fly:20"]).starts_with("--mix: unknown command 'fly'"));
        assert_eq!(
            fails(&["--mix", "get:eighty"]),
            "--mix: expected NAME:WEIGHT pairs like get:80,set:20, got 'get:eighty'"
        );
        assert_eq!(
            fails(&["--value-size", "512-64"]),
            "--value-size: the range 512-64 runs backwards (write 64-512)"
        );
        assert!(fails(&["--rate", "fast"]).starts_with("--rate: expected a positive number"));
        assert!(fails(&["--target", "10.1.2.3:6379"]).contains("is not a loopback address"));
        assert!(
            fails(&["--target", "nonsense"]).starts_with("--target: expected [NAME=]HOST:PORT")
        );
        assert!(
            fails(&["--target", "a=127.0.0.1:1", "--target", "a=127.0.0.1:2"])
                .contains("used twice")
        );
        assert_eq!(
            fails(&["--at", "10s"]),
            "--at: needs a --during \"COMMAND\" before it"
        );
        assert_eq!(
            fails(&["--during", "BGSAVE"]),
            "--during \"BGSAVE\" needs --at TIME (for example --at 10s)"
        );
        assert!(
            fails(&["--during", "BGSAVE", "--at", "30s", "--duration", "20s"])
                .contains("not before the end of measurement")
        );
        assert!(fails(&["--distribution", "pareto"]).starts_with("--distribution: expected"));
        assert!(
            fails(&["--distribution", "uniform", "--zipf-skew", "0.9"]).starts_with("--zipf-skew")
        );
        assert!(fails(&["--zipf-skew", "-1"]).starts_with("--zipf-skew: expected"));
        assert!(fails(&["--command", "SET \"open"]).starts_with("--command: unbalanced quotes"));
        assert!(fails(&["--mix", "get:0"]).contains("positive weight"));
        assert!(fails(&["stray"]).starts_with("unexpected argument 'stray'"));
    }

    #[test]
    fn remote_needs_permission_and_commands_take_weights() {
        let c = run(&["--target", "10.1.2.3:6379", "--allow-remote"]);
        assert_eq!(c.targets[0].name, "10.1.2.3:6379");
        let c = run(&[
            "--command",
            "30:HSET __key__ f __data__",
            "--command",
            "PING",
        ]);
        assert_eq!(c.mix.len(), 2);
        assert_eq!(c.mix[0].1, 30);
        assert_eq!(c.mix[0].0.label, "HSET __key__ f __data__");
        assert_eq!(c.mix[1].1, 1);
        let c = run(&["--requests", "1000"]);
        assert_eq!((c.duration, c.requests), (None, Some(1000)));
        let c = run(&["-c", "4", "--threads", "8"]);
        assert_eq!(c.threads, 4, "no more threads than connections");
        assert!(matches!(parse_args(["--help"]), Ok(Command::Help)));
    }
}
