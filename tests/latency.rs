//! The latency monitor (LATENCY LATEST/HISTORY/RESET/DOCTOR/GRAPH), INFO percore and the
//! Prometheus metrics endpoint, end to end; reply shapes compared with redis-server.

mod common;

use common::{Server, free_port};
use percore_net::resp::Frame;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn array(f: &Frame) -> &[Frame] {
    match f {
        Frame::Array(v) => v,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn int(f: &Frame) -> i64 {
    match f {
        Frame::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// LATENCY LATEST as (event, time, latest ms, max ms).
fn latest(c: &mut common::Conn) -> Vec<(String, i64, i64, i64)> {
    array(&c.cmd(&["LATENCY", "LATEST"]))
        .iter()
        .map(|e| {
            let e = array(e);
            assert_eq!(e.len(), 4, "{e:?}");
            (text(&e[0]), int(&e[1]), int(&e[2]), int(&e[3]))
        })
        .collect()
}

/// Runs DEBUG SLEEP, which Redis and percore both record as a `command` spike.
fn sleep_cmd(c: &mut common::Conn, secs: &str) {
    assert_eq!(c.cmd_raw(&["DEBUG", "SLEEP", secs]), b"+OK\r\n");
}

#[test]
fn debug_sleep_is_a_command_spike_in_every_subcommand() {
    let s = Server::percore(&["--threads", "2", "--latency-monitor-threshold", "1"]);
    let mut c = s.conn();
    let before = unix_s();
    sleep_cmd(&mut c, "0.05");
    sleep_cmd(&mut c, "0.02");
    let after = unix_s();

    let events = latest(&mut c);
    let cmd = events
        .iter()
        .find(|e| e.0 == "command")
        .unwrap_or_else(|| panic!("no command event in {events:?}"));
    assert!(
        (before..=after).contains(&cmd.1),
        "timestamp {} not in {before}..={after}",
        cmd.1
    );
    assert!(cmd.2 >= 20 && cmd.3 >= 50 && cmd.3 < 5000, "{cmd:?}");
    // Only known events, each with its latest below or at its maximum.
    for e in &events {
        assert!(
            [
                "command",
                "fast-command",
                "loop-iteration",
                "expire-cycle",
                "cross-shard-mailbox-wait"
            ]
            .contains(&e.0.as_str()),
            "{e:?}"
        );
        assert!(e.2 <= e.3, "{e:?}");
    }

    let history = c.cmd(&["LATENCY", "HISTORY", "command"]);
    let samples: Vec<(i64, i64)> = array(&history)
        .iter()
        .map(|p| {
            let p = array(p);
            assert_eq!(p.len(), 2);
            (int(&p[0]), int(&p[1]))
        })
        .collect();
    assert!(!samples.is_empty() && samples.len() <= 2, "{samples:?}");
    assert!(samples.windows(2).all(|w| w[0].0 < w[1].0), "oldest first");
    assert_eq!(samples.iter().map(|p| p.1).max(), Some(cmd.3));
    assert_eq!(
        c.cmd(&["LATENCY", "HISTORY", "nosuch"]),
        Frame::Array(vec![])
    );

    let graph = text(&c.cmd(&["LATENCY", "GRAPH", "command"]));
    assert!(graph.starts_with("command - high "), "{graph}");
    assert!(graph.contains(&"-".repeat(80)), "{graph}");
    assert_eq!(
        c.cmd(&["LATENCY", "GRAPH", "nosuch"]),
        Frame::Error(b"ERR No samples available for event 'nosuch'".to_vec())
    );

    let doctor = text(&c.cmd(&["LATENCY", "DOCTOR"]));
    assert!(
        doctor.starts_with("Dave, I have observed latency spikes"),
        "{doctor}"
    );
    assert!(doctor.contains(". command: "), "{doctor}");

    // RESET of one event, then of all: each counts the events it dropped. The other
    // events (a shard's iteration, mail, an expiry cycle or a fast command over 1 ms) are
    // recorded at the next tick and whenever the machine stalls a shard, so they may
    // appear between any two of these commands: only the `command` event is exact.
    assert_eq!(
        c.cmd(&["LATENCY", "RESET", "COMMAND", "command", "nosuch"]),
        Frame::Int(1)
    );
    let environmental = |e: &(String, i64, i64, i64)| e.0 != "command";
    let left = latest(&mut c);
    assert!(left.iter().all(environmental), "{left:?}");
    let dropped = int(&c.cmd(&["LATENCY", "RESET"]));
    assert!(
        (left.len() as i64..=4).contains(&dropped),
        "dropped {dropped}, had {left:?}"
    );
    let after = latest(&mut c);
    assert!(after.iter().all(environmental), "{after:?}");
    let dropped = int(&c.cmd(&["LATENCY", "RESET"]));
    assert!((after.len() as i64..=4).contains(&dropped), "{after:?}");
}

#[test]
fn threshold_zero_records_nothing_and_config_set_turns_it_on() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    sleep_cmd(&mut c, "0.03");
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Frame::Array(vec![]));
    let doctor = text(&c.cmd(&["LATENCY", "DOCTOR"]));
    assert!(
        doctor.starts_with("I'm sorry, Dave, I can't do that."),
        "{doctor}"
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "latency-monitor-threshold", "10"]),
        b"+OK\r\n"
    );
    sleep_cmd(&mut c, "0.005");
    assert!(
        !latest(&mut c).iter().any(|e| e.0 == "command"),
        "5 ms is below a 10 ms threshold"
    );
    sleep_cmd(&mut c, "0.03");
    assert!(latest(&mut c).iter().any(|e| e.0 == "command"));
}

#[test]
fn reply_shapes_and_errors_match_redis() {
    let Some(redis) = Server::redis_with(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let percore = Server::percore(&["--threads", "2"]);
    let mut r = redis.conn();
    let mut p = percore.conn();
    for args in [
        vec!["LATENCY", "LATEST"],
        vec!["LATENCY", "HISTORY", "command"],
        vec!["LATENCY", "HISTORY"],
        vec!["LATENCY", "NOSUCH"],
        vec!["LATENCY", "GRAPH", "command"],
        vec!["LATENCY", "GRAPH", "command", "extra"],
        vec!["LATENCY", "RESET"],
        vec!["LATENCY", "RESET", "command", "fork"],
        vec!["LATENCY", "DOCTOR"],
        vec!["LATENCY"],
    ] {
        assert_eq!(r.cmd(&args), p.cmd(&args), "{args:?}");
    }
    for c in [&mut r, &mut p] {
        assert_eq!(
            c.cmd_raw(&["CONFIG", "SET", "latency-monitor-threshold", "1"]),
            b"+OK\r\n"
        );
        sleep_cmd(c, "0.03");
    }
    // LATEST: [["command", time, latest, max]] on both.
    let (rl, pl) = (latest(&mut r), latest(&mut p));
    let rc = rl.iter().find(|e| e.0 == "command").expect("redis command");
    let pc = pl
        .iter()
        .find(|e| e.0 == "command")
        .expect("percore command");
    assert!(
        (rc.1 - pc.1).abs() <= 2 && rc.2 >= 30 && pc.2 >= 30,
        "{rc:?} {pc:?}"
    );
    // HISTORY: one [time, ms] pair.
    for c in [&mut r, &mut p] {
        let h = c.cmd(&["LATENCY", "HISTORY", "command"]);
        let h = array(&h);
        assert_eq!(h.len(), 1, "{h:?}");
        let pair = array(&h[0]);
        assert!(matches!(pair, [Frame::Int(_), Frame::Int(_)]), "{pair:?}");
    }
    // GRAPH: the same header, rule and graph rows (the age labels may differ by a second).
    let rg = text(&r.cmd(&["LATENCY", "GRAPH", "command"]));
    let pg = text(&p.cmd(&["LATENCY", "GRAPH", "command"]));
    let rows = |g: &str| {
        g.lines()
            .skip(2)
            .take(5)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(rg.lines().nth(1), pg.lines().nth(1));
    assert!(rg.starts_with("command - high ") && pg.starts_with("command - high "));
    assert_eq!(rows(&rg), rows(&pg));
    // RESP3: GRAPH and DOCTOR are verbatim strings on both.
    for c in [&mut r, &mut p] {
        c.cmd(&["HELLO", "3"]);
        for args in [
            vec!["LATENCY", "GRAPH", "command"],
            vec!["LATENCY", "DOCTOR"],
        ] {
            assert!(matches!(c.cmd(&args), Frame::Verbatim { .. }), "{args:?}");
        }
    }
    // RESET of the command event answers 1 on both.
    for c in [&mut r, &mut p] {
        assert_eq!(c.cmd(&["LATENCY", "RESET", "command"]), Frame::Int(1));
    }
}

/// The samples of LATENCY HISTORY `event`.
fn history(c: &mut common::Conn, event: &str) -> Vec<(i64, i64)> {
    array(&c.cmd(&["LATENCY", "HISTORY", event]))
        .iter()
        .map(|p| (int(&array(p)[0]), int(&array(p)[1])))
        .collect()
}

#[test]
fn snapshots_record_barrier_and_page_copy_spikes() {
    let s = Server::percore(&["--threads", "1", "--latency-monitor-threshold", "1"]);
    let mut c = s.conn();
    assert_eq!(c.cmd_raw(&["DEBUG", "POPULATE", "50000"]), b"+OK\r\n");
    // SAVE writes the file while the shard stands at the barrier: a long stall.
    assert_eq!(c.cmd_raw(&["SAVE"]), b"+OK\r\n");
    let barrier = history(&mut c, "snapshot-barrier");
    assert!(!barrier.is_empty() && barrier[0].1 >= 1, "{barrier:?}");
    // A slow forkless BGSAVE (10 000 keys a second): overwriting keys the writer has not
    // reached copies their pages, and the DEBUG SLEEP in the same batch makes that loop
    // iteration slow whatever the build.
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "rdb-key-save-delay", "100"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Frame::Simple(b"Background saving started".to_vec())
    );
    let mut req = Vec::new();
    for i in (40_000..50_000).step_by(16) {
        req.extend(common::encode_cmd(&["SET", &format!("key:{i}"), "new"]));
    }
    let sets = (40_000..50_000).step_by(16).count();
    req.extend(common::encode_cmd(&["DEBUG", "SLEEP", "0.005"]));
    c.send(&req);
    for _ in 0..=sets {
        assert_eq!(c.read_raw(), b"+OK\r\n");
    }
    let copies = history(&mut c, "snapshot-page-copy");
    assert!(
        copies.iter().any(|p| p.1 >= 5),
        "{copies:?} {:?}",
        latest(&mut c)
    );
    assert_eq!(
        c.cmd_raw(&["BGSAVE", "CANCEL"]),
        b"+Background saving cancelled\r\n"
    );
}

/// INFO percore's lines as (shard, field → value).
fn percore_section(
    c: &mut common::Conn,
) -> Vec<(usize, std::collections::HashMap<String, String>)> {
    let info = text(&c.cmd(&["INFO", "percore"]));
    assert!(info.starts_with("# Percore\r\n"), "{info}");
    info.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, fields) = l.split_once(':').expect("shardN:fields");
            let shard = name
                .strip_prefix("shard")
                .expect("shard prefix")
                .parse()
                .expect("shard number");
            let map = fields
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("k=v");
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            (shard, map)
        })
        .collect()
}

#[test]
fn info_percore_has_a_sane_line_per_shard() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    for i in 0..200 {
        assert_eq!(c.cmd_raw(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    std::thread::sleep(Duration::from_millis(300));
    let first = percore_section(&mut c);
    assert_eq!(first.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1]);
    let num = |m: &std::collections::HashMap<String, String>, k: &str| -> f64 {
        m.get(k)
            .unwrap_or_else(|| panic!("no {k} in {m:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("{k} not a number in {m:?}"))
    };
    for (_, m) in &first {
        for k in [
            "iterations",
            "iterations_per_sec",
            "enters",
            "completions",
            "cqes_per_enter",
            "busy_usec",
            "idle_usec",
            "busy_pct",
            "messages_sent",
            "batches_sent",
            "messages_received",
            "batches_received",
            "connections",
            "keys",
            "spin_usec",
            "spin_hits",
            "hops",
            "hops_served",
            "hop_p50_usec",
            "hop_p90_usec",
            "hop_p99_usec",
            "hop_p999_usec",
            "hop_max_usec",
        ] {
            assert!(num(m, k) >= 0.0, "{k}");
        }
        let hop_pcts = [
            "hop_p50_usec",
            "hop_p90_usec",
            "hop_p99_usec",
            "hop_p999_usec",
        ];
        for pair in hop_pcts.windows(2) {
            assert!(num(m, pair[0]) <= num(m, pair[1]), "{pair:?} in {m:?}");
        }
        // The maximum is exact, the percentiles the top of their histogram bucket.
        assert!(
            num(m, "hop_max_usec") * 1.01 >= num(m, "hop_p999_usec"),
            "{m:?}"
        );
        assert!(num(m, "iterations") > 0.0);
        assert!(num(m, "batches_sent") <= num(m, "messages_sent"));
        assert!(num(m, "busy_pct") <= 100.0);
    }
    let count = |k: &str| -> u64 { first.iter().map(|(_, m)| num(m, k) as u64).sum() };
    assert_eq!(count("keys"), 200);
    assert_eq!(count("connections"), 1, "this connection, on one shard");
    // The keys of the other shard hopped there and back: every hop sent was served, and
    // the sender timed them (a round trip takes some microseconds at least).
    let hops = count("hops");
    assert!(hops > 0 && hops < 200, "{first:?}");
    assert_eq!(count("hops_served"), hops, "{first:?}");
    for (_, m) in &first {
        let (sent, served) = (num(m, "hops"), num(m, "hops_served"));
        assert!(
            sent == 0.0 || served == 0.0,
            "one client, one sending shard: {m:?}"
        );
        if sent > 0.0 {
            assert!(num(m, "hop_p50_usec") > 0.0, "{m:?}");
        } else {
            assert!(num(m, "hop_max_usec") < 0.001, "{m:?}");
        }
    }
    // With two shards, about half the keys went to the other one: mail flowed both ways.
    assert!(first.iter().all(|(_, m)| num(m, "messages_received") > 0.0));
    std::thread::sleep(Duration::from_millis(1200));
    let second = percore_section(&mut c);
    for ((_, a), (_, b)) in first.iter().zip(&second) {
        assert!(num(b, "iterations") > num(a, "iterations"));
        assert!(num(b, "iterations_per_sec") > 0.0, "{b:?}");
    }
    // Part of INFO, INFO all and INFO everything; not of INFO server.
    for args in [
        vec!["INFO"],
        vec!["INFO", "all"],
        vec!["INFO", "everything"],
    ] {
        assert!(
            text(&c.cmd(&args)).contains("\r\n# Percore\r\nshard0:"),
            "{args:?}"
        );
    }
    assert!(!text(&c.cmd(&["INFO", "server"])).contains("# Percore"));
}

/// One HTTP exchange with the metrics endpoint: (status line, headers, body).
fn http(port: u16, request: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("send the request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the response");
    let out = String::from_utf8(out).expect("utf-8 response");
    let (head, body) = out.split_once("\r\n\r\n").expect("head and body");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let mport = free_port();
    let s = Server::percore(&["--threads", "2", "--metrics-port", &mport.to_string()]);
    let mut c = s.conn();
    for i in 0..50 {
        assert_eq!(c.cmd_raw(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    c.cmd(&["GET", "k1"]);
    c.cmd(&["GET", "missing"]);
    // Shards publish once per tick: wait until the counts show up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, headers, body) = http(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            headers.contains("Content-Type: text/plain; version=0.0.4"),
            "{headers}"
        );
        if body.contains("percore_commands_total{cmd=\"set\"} 50\n") {
            break body;
        }
        assert!(Instant::now() < deadline, "counts never published:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut typed = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("name and type");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        // name{label="value",...} value
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        if !labels.is_empty() {
            let labels = labels.strip_suffix('}').expect("closing brace");
            for l in labels.split(',') {
                let (k, v) = l.split_once('=').expect("label=value");
                assert!(
                    k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "{line}"
                );
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
    }
    for want in [
        "percore_connected_clients 1\n",
        "percore_keyspace_hits_total 1\n",
        "percore_keyspace_misses_total 1\n",
        "percore_db_keys{db=\"0\"} 50\n",
        "percore_rdb_last_bgsave_status 1\n",
        "percore_shards 2\n",
    ] {
        assert!(body.contains(want), "no {want:?} in\n{body}");
    }
    for name in [
        "percore_used_memory_bytes",
        "percore_loop_iterations_total{shard=\"0\"}",
        "percore_loop_iterations_total{shard=\"1\"}",
        "percore_loop_busy_seconds_total{shard=\"1\"}",
        "percore_mailbox_messages_received_total{shard=\"0\"}",
        "percore_shard_keys{shard=\"1\"}",
    ] {
        assert!(body.contains(&format!("{name} ")), "no {name} in\n{body}");
    }
    let (status, _, _) = http(mport, "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = http(mport, "GET /metrics/x HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = http(mport, "POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _, body) = http(mport, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
    // A request head past the limit is refused, and the endpoint still answers after.
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let mut sock = TcpStream::connect(("127.0.0.1", mport)).expect("connect");
    let _ = sock.write_all(big.as_bytes());
    let mut resp = String::new();
    let _ = sock.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    // A client that never finishes its request does not hold the endpoint for long.
    let _idle = TcpStream::connect(("127.0.0.1", mport)).expect("connect");
    let t = Instant::now();
    let (status, _, _) = http(mport, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn metrics_port_is_immutable_and_off_by_default() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "metrics-port"]),
        Frame::Array(vec![
            Frame::Bulk(b"metrics-port".to_vec()),
            Frame::Bulk(b"0".to_vec())
        ])
    );
    let err = c.cmd(&["CONFIG", "SET", "metrics-port", "9100"]);
    assert!(
        matches!(&err, Frame::Error(e) if e.starts_with(b"ERR CONFIG SET failed (possibly related to argument 'metrics-port') - can't set immutable config")),
        "{err:?}"
    );
}

/// `hop-spin-us` (issue 19): with the spin on, two shards still answer every request
/// right (a spin that takes mail goes round the loop at once; one that does not waits
/// as before) and the shards count their spins; off again, the counters stop moving.
#[test]
fn hop_spin_answers_right_and_is_counted() {
    let s = Server::percore(&["--threads", "2"]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "hop-spin-us"]),
        b"*2\r\n$11\r\nhop-spin-us\r\n$1\r\n0\r\n"
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "hop-spin-us", "1001"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'hop-spin-us') - argument must be between 0 and 1000 inclusive\r\n"
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "hop-spin-us", "200"]),
        b"+OK\r\n"
    );
    for i in 0..300 {
        let k = format!("k{i}");
        assert_eq!(c.cmd_raw(&["SET", &k, &format!("v{i}")]), b"+OK\r\n");
        let want = format!("${}\r\nv{i}\r\n", format!("v{i}").len());
        assert_eq!(c.cmd_raw(&["GET", &k]), want.as_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    let sum = |c: &mut common::Conn, k: &str| -> u64 {
        percore_section(c)
            .iter()
            .map(|(_, m)| m[k].parse::<u64>().unwrap_or_else(|_| panic!("{k}: {m:?}")))
            .sum()
    };
    let spins = sum(&mut c, "spin_hits");
    assert!(
        sum(&mut c, "spin_usec") > 0,
        "the shards spun while hops were out"
    );
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "hop-spin-us", "0"]),
        b"+OK\r\n"
    );
    for i in 0..100 {
        assert_eq!(c.cmd_raw(&["GET", &format!("k{i}")]).first(), Some(&b'$'));
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = sum(&mut c, "spin_usec");
    for i in 0..100 {
        assert_eq!(c.cmd_raw(&["GET", &format!("k{i}")]).first(), Some(&b'$'));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sum(&mut c, "spin_usec"), before, "no spin while off");
    assert!(sum(&mut c, "spin_hits") >= spins);
}
