//! percore-bench against an in-process fake RESP server: the open loop reports an injected
//! stall that the closed loop hides, the mix and key distributions produce what they say,
//! the output files parse, and usage mistakes are clear.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use percore_benches::bench::args::{self, Config};
use percore_benches::bench::hdr_text::parse_percentile_text;
use percore_benches::bench::report::summary_text;
use percore_benches::bench::run::{BenchError, Report, run};
use percore_net::resp::{ParseLimits, Parsed, Request, parse_request};

/// What the fake server saw and how it misbehaves.
#[derive(Default)]
struct State {
    /// When the first request arrived: the stall is timed from it.
    first: OnceLock<Instant>,
    /// Stop answering at this offset from the first request, for this long.
    stall: Option<(Duration, Duration)>,
    /// Never answer.
    mute: bool,
    commands: Mutex<HashMap<String, u64>>,
    keys: Mutex<HashMap<Vec<u8>, u64>>,
}

/// A thread-per-connection RESP server answering GET with a bulk, SET with +OK, BGSAVE
/// and INFO as Redis would, and anything else with an unknown-command error.
struct FakeServer {
    addr: SocketAddr,
    state: Arc<State>,
}

impl FakeServer {
    fn start(state: State) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(state);
        let s = Arc::clone(&state);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = Arc::clone(&s);
                thread::spawn(move || serve(conn, &s));
            }
        });
        Self { addr, state }
    }

    fn target(&self, name: &str) -> String {
        format!("{name}={}", self.addr)
    }

    fn count(&self, command: &str) -> u64 {
        self.state
            .commands
            .lock()
            .unwrap()
            .get(command)
            .copied()
            .unwrap_or(0)
    }
}

fn serve(mut conn: TcpStream, state: &State) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut req = Request::new();
    let mut out = Vec::new();
    loop {
        let n = match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let first = *state.first.get_or_init(Instant::now);
        let mut pos = 0;
        out.clear();
        while pos < buf.len() {
            match parse_request(&buf[pos..], &ParseLimits::default(), &mut req) {
                Ok(Parsed::Complete { consumed }) => {
                    answer(&req, &buf[pos..pos + consumed], state, &mut out);
                    pos += consumed;
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(_) => return,
            }
        }
        buf.drain(..pos);
        if state.mute {
            continue;
        }
        if let Some((at, len)) = state.stall {
            let now = Instant::now();
            if now >= first + at && now < first + at + len {
                thread::sleep(first + at + len - now);
            }
        }
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

fn answer(req: &Request, raw: &[u8], state: &State, out: &mut Vec<u8>) {
    if req.is_empty() {
        return;
    }
    let name = String::from_utf8_lossy(req.arg(raw, 0)).to_ascii_uppercase();
    *state
        .commands
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_default() += 1;
    if req.len() > 1 {
        *state
            .keys
            .lock()
            .unwrap()
            .entry(req.arg(raw, 1).to_vec())
            .or_default() += 1;
    }
    match name.as_str() {
        "GET" => out.extend_from_slice(b"$5\r\nvalue\r\n"),
        "SET" => out.extend_from_slice(b"+OK\r\n"),
        "PING" => out.extend_from_slice(b"+PONG\r\n"),
        "BGSAVE" => out.extend_from_slice(b"+Background saving started\r\n"),
        "INFO" => {
            let text = "# Persistence\r\nrdb_bgsave_in_progress:0\r\n";
            out.extend_from_slice(format!("${}\r\n{text}\r\n", text.len()).as_bytes());
        }
        _ => out.extend_from_slice(
            format!("-ERR unknown command '{name}', with args beginning with: \r\n").as_bytes(),
        ),
    }
}

fn config(args: &[&str]) -> Config {
    match args::parse_args(args.iter().copied()) {
        Ok(args::Command::Run(c)) => *c,
        other => panic!("{other:?}"),
    }
}

fn run_quiet(cfg: &Config) -> Report {
    run(cfg, &AtomicBool::new(false), &mut io::sink()).unwrap()
}

/// A stall of 200 ms, 500 ms into the run, against 4 connections.
fn stalled_run(extra: &[&str]) -> Report {
    let server = FakeServer::start(State {
        stall: Some((Duration::from_millis(500), Duration::from_millis(200))),
        ..State::default()
    });
    let target = server.target("fake");
    let mut a = vec![
        "--target",
        &target,
        "-c",
        "4",
        "--duration",
        "1500ms",
        "--quiet",
    ];
    a.extend_from_slice(extra);
    run_quiet(&config(&a))
}

#[test]
fn open_loop_reports_the_stall() {
    let report = stalled_run(&["--rate", "2000"]);
    let t = &report.targets[0];
    let l = t.latency();
    eprintln!("open loop: {l:?}, {} replies", t.replies);
    assert_eq!(t.errors(), 0);
    // Every request due during the 200 ms stall waited for it: ~13% of the requests, with
    // latencies spread from 200 ms down to 0.
    assert!(l.max >= 150_000, "max {} us", l.max);
    assert!(l.p99 >= 100_000, "p99 {} us", l.p99);
    assert!(l.p90 >= 10_000, "p90 {} us", l.p90);
    // The schedule was kept: every request due in 1.5 s at 2000/s was sent and answered.
    assert_eq!((t.sent, t.replies), (3000, 3000));
}

#[test]
fn closed_loop_under_reports_the_stall() {
    let report = stalled_run(&[]);
    let t = &report.targets[0];
    let l = t.latency();
    eprintln!("closed loop: {l:?}, {} replies", t.replies);
    assert_eq!(t.errors(), 0);
    // It sees the stall once per connection (4 samples) ...
    assert!(l.max >= 150_000, "max {} us", l.max);
    // ... and nothing of it in the percentiles: while stalled, it sent nothing.
    assert!(t.replies > 2_000, "{} replies", t.replies);
    assert!(l.p99 < 20_000, "p99 {} us", l.p99);
}

#[test]
fn mix_and_key_distributions() {
    // 80/20 mix, exact request count.
    let server = FakeServer::start(State::default());
    let target = server.target("fake");
    let r = run_quiet(&config(&[
        "--target",
        &target,
        "--mix",
        "get:80,set:20",
        "-n",
        "4000",
        "-c",
        "3",
        "--quiet",
    ]));
    assert_eq!(r.targets[0].replies, 4000);
    let (gets, sets) = (server.count("GET"), server.count("SET"));
    assert_eq!(gets + sets, 4000);
    assert!((3_050..3_350).contains(&gets), "{gets} GETs of 4000");

    // Sequential: every key exactly once.
    let server = FakeServer::start(State::default());
    let target = server.target("fake");
    run_quiet(&config(&[
        "--target",
        &target,
        "--command",
        "SET __key__ __data__",
        "--distribution",
        "sequential",
        "--keyspace",
        "500",
        "-n",
        "500",
        "-c",
        "3",
        "-P",
        "8",
        "--quiet",
    ]));
    let keys = server.state.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 500);
    assert!(keys.values().all(|&n| n == 1));
    assert!(keys.contains_key(&b"key:000000000000"[..]));
    assert!(keys.contains_key(&b"key:000000000499"[..]));

    // Zipf puts most hits on few keys; uniform does not.
    let top10 = |extra: &[&str]| {
        let server = FakeServer::start(State::default());
        let target = server.target("fake");
        let mut a = vec![
            "--target",
            &target,
            "--command",
            "GET __key__",
            "--keyspace",
            "1000",
            "-n",
            "5000",
            "-c",
            "2",
            "-P",
            "16",
            "--quiet",
        ];
        a.extend_from_slice(extra);
        run_quiet(&config(&a));
        let mut hits: Vec<u64> = server
            .state
            .keys
            .lock()
            .unwrap()
            .values()
            .copied()
            .collect();
        hits.sort_unstable_by(|a, b| b.cmp(a));
        hits.iter().take(10).sum::<u64>() as f64 / 5000.0
    };
    let zipf = top10(&["--zipf-skew", "0.99"]);
    let uniform = top10(&[]);
    // Analytically ~39% for zipf 0.99 over 1000 keys, 1% for uniform.
    assert!(zipf > 0.30, "zipf top-10 share {zipf}");
    assert!(uniform < 0.05, "uniform top-10 share {uniform}");
}

#[test]
fn errors_are_counted_by_kind_and_runs_stay_bounded() {
    let server = FakeServer::start(State::default());
    let target = server.target("fake");
    let r = run_quiet(&config(&[
        "--target",
        &target,
        "--command",
        "3:NOPE __key__",
        "--command",
        "PING",
        "-n",
        "1000",
        "-c",
        "2",
        "--quiet",
    ]));
    let t = &r.targets[0];
    assert_eq!(t.replies, 1000);
    let errs = t.reply_errors.sorted();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "ERR");
    assert!((650..850).contains(&errs[0].1), "{errs:?}");

    // A server that never answers: --requests alone would wait forever; --timeout ends it.
    let mute = FakeServer::start(State {
        mute: true,
        ..State::default()
    });
    let target = mute.target("mute");
    let started = Instant::now();
    let r = run_quiet(&config(&[
        "--target",
        &target,
        "-n",
        "10",
        "-c",
        "2",
        "--timeout",
        "300ms",
        "--quiet",
    ]));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        r.targets[0].conn_errors.sorted(),
        vec![("timeout".to_string(), 2)]
    );

    // Nothing listening: a clear failure.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let spec = format!("gone={addr}");
    let r = run_quiet(&config(&["--target", &spec, "-n", "10", "--quiet"]));
    assert!(
        matches!(&r.failure, Some(BenchError::Connect { reason, .. }) if reason == "connection refused"),
        "{:?}",
        r.failure
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("percore-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks that tags open and close in order (enough to catch a broken hand-written SVG).
fn assert_balanced_tags(xml: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(!xml.contains("& "), "unescaped ampersand");
}

/// A strict JSON syntax check (RFC 8259 grammar): the position after the value that
/// starts at `i`, or where it goes wrong.
fn json_value(b: &[u8], i: usize) -> Result<usize, String> {
    let ws = |mut i: usize| {
        while i < b.len() && b" \t\r\n".contains(&b[i]) {
            i += 1;
        }
        i
    };
    let at = |i: usize| b.get(i).copied().ok_or(format!("unexpected end at {i}"));
    let mut i = ws(i);
    match at(i)? {
        open @ (b'{' | b'[') => {
            let close = if open == b'{' { b'}' } else { b']' };
            i = ws(i + 1);
            if at(i)? == close {
                return Ok(i + 1);
            }
            loop {
                if close == b'}' {
                    if at(i)? != b'"' {
                        return Err(format!("object key expected at {i}"));
                    }
                    i = ws(json_value(b, i)?);
                    if at(i)? != b':' {
                        return Err(format!("colon expected at {i}"));
                    }
                    i += 1;
                }
                i = ws(json_value(b, i)?);
                match at(i)? {
                    b',' => i = ws(i + 1),
                    c if c == close => return Ok(i + 1),
                    c => return Err(format!("unexpected {:?} at {i}", c as char)),
                }
            }
        }
        b'"' => {
            i += 1;
            loop {
                match at(i)? {
                    b'"' => return Ok(i + 1),
                    b'\\' => i += 2,
                    c if c < 0x20 => return Err(format!("control byte in string at {i}")),
                    _ => i += 1,
                }
            }
        }
        _ => {
            let start = i;
            while i < b.len() && !b",]} \t\r\n".contains(&b[i]) {
                i += 1;
            }
            let word = &b[start..i];
            let number = word
                .first()
                .is_some_and(|c| c.is_ascii_digit() || *c == b'-')
                && word.iter().all(|c| b"0123456789+-.eE".contains(c))
                && std::str::from_utf8(word).is_ok_and(|w| w.parse::<f64>().is_ok());
            if number || matches!(word, b"true" | b"false" | b"null") {
                Ok(i)
            } else {
                Err(format!(
                    "bad literal {:?} at {start}",
                    String::from_utf8_lossy(word)
                ))
            }
        }
    }
}

#[test]
fn the_json_check_rejects_bad_json() {
    let good = br#"{"a": [1, -2.5e3, true, null, "x\"y"], "b": {}}"#;
    assert_eq!(json_value(good, 0), Ok(good.len()));
    for bad in [
        &br#"{"a": 1,}"#[..],
        br#"{"a" 1}"#,
        b"[nan]",
        b"{\"a\": \"\n\"}",
        b"[1",
    ] {
        assert!(
            json_value(bad, 0).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn two_targets_rounds_events_and_every_output_file() {
    let a = FakeServer::start(State::default());
    let b = FakeServer::start(State::default());
    let dir = temp_dir("outputs");
    let (hdr, csv, json, svg) = (
        dir.join("lat.hdr"),
        dir.join("timeline.csv"),
        dir.join("run.json"),
        dir.join("plots/run.svg"),
    );
    let (ta, tb) = (a.target("redis"), b.target("percore"));
    let cfg = config(&[
        "--target",
        &ta,
        "--target",
        &tb,
        "--rounds",
        "2",
        "--rate",
        "1000",
        "-c",
        "2",
        "--duration",
        "1200ms",
        "--during",
        "BGSAVE",
        "--at",
        "300ms",
        "--hdr-out",
        hdr.to_str().unwrap(),
        "--timeline-out",
        csv.to_str().unwrap(),
        "--json-out",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--quiet",
    ]);
    let report = run_quiet(&cfg);
    assert_eq!(report.phases.len(), 4);
    let order: Vec<(usize, u32)> = report.phases.iter().map(|p| (p.target, p.round)).collect();
    assert_eq!(order, vec![(0, 1), (1, 1), (0, 2), (1, 2)], "A, B, A, B");
    assert_eq!(a.count("BGSAVE"), 2);
    for p in &report.phases {
        let e = &p.events[0];
        let sent = e.sent_s.unwrap();
        assert!((0.29..0.4).contains(&sent), "{e:?}");
        assert_eq!(e.reply, "Background saving started");
        assert!(e.finished_s.unwrap() >= sent, "{e:?}");
        assert_eq!(p.timeline.len(), 2);
        assert!(
            p.timeline[0]
                .events
                .iter()
                .any(|m| m.starts_with("BGSAVE @"))
        );
    }
    let text = summary_text(&cfg, &report);
    assert!(text.contains("percore/redis"), "{text}");
    assert!(text.contains("BGSAVE at 0.3"), "{text}");

    percore_benches::bench::cli::write_outputs(&cfg, &report).unwrap();
    for name in ["redis", "percore"] {
        let p = dir.join(format!("lat.{name}.hdr"));
        let lines = parse_percentile_text(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert!(lines.len() > 10);
        assert!(lines.windows(2).all(|w| w[0].percentile <= w[1].percentile));
        assert!((lines.last().unwrap().percentile - 1.0).abs() < 1e-12);
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("target,round,second,requests_per_s,p50_ms,p99_ms,max_ms,errors,events")
    );
    assert_eq!(rows.clone().count(), 8, "{csv}");
    assert!(rows.all(|r| r.split(',').count() >= 9));
    let json = std::fs::read_to_string(&json).unwrap();
    assert!(json.starts_with('{'));
    let end = json_value(json.as_bytes(), 0).unwrap();
    assert!(
        json[end..].trim().is_empty(),
        "trailing bytes after the JSON value"
    );
    assert!(json.contains("\"vs_first\": {\"throughput\": "));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_balanced_tags(&svg);
    assert!(svg.contains("BGSAVE"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_percore-bench"))
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() {
    for (args, msg) in [
        (
            &["--pipeline", "x"][..],
            "--pipeline: expected a positive integer, got 'x'",
        ),
        (
            &["--duration", "soon"],
            "--duration: expected a duration like 30s, 500ms or 2m, got 'soon'",
        ),
        (
            &["--target", "192.0.2.1:6379"],
            "is not a loopback address; pass --allow-remote",
        ),
        (&["--bogus"], "unknown flag '--bogus'"),
    ] {
        let out = bench_bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    let out = bench_bin().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--during"));
}

#[test]
fn ctrl_c_prints_what_was_measured() {
    let server = FakeServer::start(State::default());
    let mut child = bench_bin()
        .args([
            "--target",
            &server.target("fake"),
            "--rate",
            "500",
            "-c",
            "2",
            "--duration",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first second has been measured (so the handler is installed and
    // there is something to print), however slowly this machine starts processes.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in io::BufRead::lines(io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first_second = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.starts_with("fake r1") => break Some(line),
            Ok(_) => {}
            Err(_) => break None,
        }
    };
    if first_second.is_none() {
        child.kill().unwrap();
        panic!("percore-bench printed no progress within 10 s");
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("percore-bench did not stop on SIGINT");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("fake "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let rate: f64 = row
        .split_whitespace()
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!((400.0..600.0).contains(&rate), "{row}");
}
