//! Per-client memory (CLIENT LIST `qbuf`/`qbuf-free`/`omem`/`tot-mem`, INFO's client
//! memory fields) and client eviction (`maxmemory-clients`, CLIENT NO-EVICT), with Redis
//! 7.0's rules: the biggest clients go first, only until the total is under the limit.

mod common;

use common::{Conn, Server, info_field, ok};
use percore_net::resp::Frame;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// How long a condition may take to show (a shard's tick is 100 ms at the default hz).
const WAIT: Duration = Duration::from_secs(10);

/// CLIENT LIST's lines.
fn client_list(c: &mut Conn) -> Vec<String> {
    match c.cmd(&["CLIENT", "LIST"]) {
        Frame::Bulk(b) | Frame::Verbatim { text: b, .. } => String::from_utf8(b)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect(),
        other => panic!("CLIENT LIST answered {other:?}"),
    }
}

/// A field of the client named `name`, if it is listed.
fn field(c: &mut Conn, name: &str, f: &str) -> Option<u64> {
    let needle = format!(" name={name} ");
    let line = client_list(c).into_iter().find(|l| l.contains(&needle))?;
    let key = format!(" {f}=");
    let at = line.find(&key)? + key.len();
    line[at..].split(' ').next()?.parse().ok()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A connection named `name`.
fn named(s: &Server, name: &str) -> Conn {
    let mut c = s.conn();
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", name]), ok());
    c
}

/// Sends the start of a request whose only argument has `len` bytes, all of them but the
/// final CRLF: the request stays in the query buffer. A write error (the server evicted
/// the client while it was sending) is left for the caller's checks.
fn fill_query_buffer(c: &mut Conn, len: usize) {
    let mut req = format!("*1\r\n${len}\r\n").into_bytes();
    req.resize(req.len() + len, b'v');
    let _ = c.stream().write_all(&req);
}

#[test]
fn qbuf_and_tot_mem_follow_a_partial_request() {
    let s = Server::percore(&["--threads", "2"]);
    let mut control = named(&s, "control");
    let mut c = named(&s, "filler");
    let idle_total = field(&mut control, "filler", "tot-mem").expect("listed");
    assert_eq!(field(&mut control, "filler", "qbuf"), Some(0));
    fill_query_buffer(&mut c, 1 << 20);
    wait_until("the partial request in qbuf", || {
        field(&mut control, "filler", "qbuf") == Some(1 << 20)
    });
    let free = field(&mut control, "filler", "qbuf-free").unwrap();
    let total = field(&mut control, "filler", "tot-mem").unwrap();
    assert!(
        total >= (1 << 20) + free && total < idle_total + (1 << 20) + free,
        "tot-mem {total} (idle {idle_total}, qbuf-free {free})"
    );
    let normal: u64 = info_field(&mut control, "memory", "mem_clients_normal")
        .parse()
        .unwrap();
    assert!(normal >= total, "mem_clients_normal {normal} < {total}");
    let peak: u64 = info_field(&mut control, "clients", "client_recent_max_input_buffer")
        .parse()
        .unwrap();
    assert!(peak > 1 << 20, "client_recent_max_input_buffer {peak}");
    // The request completes: the buffer empties.
    c.send(b"\r\n");
    assert!(matches!(c.read_frame(), Frame::Error(_)));
    wait_until("qbuf back to 0", || {
        field(&mut control, "filler", "qbuf") == Some(0)
    });
}

/// Without a limit the totals are counted when asked for; a limit set afterwards counts
/// every client first, so one that grew meanwhile is evicted at once.
#[test]
fn a_limit_set_after_a_client_grew_evicts_it() {
    let s = Server::percore(&["--threads", "2"]);
    let mut control = named(&s, "control");
    assert_eq!(control.cmd(&["CLIENT", "NO-EVICT", "on"]), ok());
    let idle: u64 = info_field(&mut control, "memory", "mem_clients_normal")
        .parse()
        .unwrap();
    let mut big = named(&s, "big");
    fill_query_buffer(&mut big, 4 << 20);
    wait_until("big's query buffer full", || {
        field(&mut control, "big", "qbuf") == Some(4 << 20)
    });
    // INFO counts it right away (each shard counts its clients for INFO).
    let grown: u64 = info_field(&mut control, "memory", "mem_clients_normal")
        .parse()
        .unwrap();
    assert!(
        grown >= idle + (4 << 20),
        "mem_clients_normal {grown}, idle {idle}"
    );
    let peak: u64 = info_field(&mut control, "clients", "client_recent_max_input_buffer")
        .parse()
        .unwrap();
    assert!(peak >= 4 << 20, "client_recent_max_input_buffer {peak}");
    assert_eq!(
        control.cmd(&["CONFIG", "SET", "maxmemory-clients", "3mb"]),
        ok()
    );
    big.expect_closed();
    assert_eq!(field(&mut control, "big", "tot-mem"), None);
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "1");
}

#[test]
fn a_client_with_a_huge_query_buffer_is_evicted_and_a_no_evict_one_is_not() {
    let s = Server::percore(&["--threads", "2", "--maxmemory-clients", "3mb"]);
    let mut control = named(&s, "control");
    assert_eq!(control.cmd(&["CLIENT", "NO-EVICT", "on"]), ok());
    // Over the limit: the client goes, with its connection.
    let mut big = named(&s, "big");
    fill_query_buffer(&mut big, 4 << 20);
    big.expect_closed();
    assert_eq!(field(&mut control, "big", "tot-mem"), None);
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "1");

    // A NO-EVICT client may pass the limit.
    let mut kept = named(&s, "kept");
    assert_eq!(kept.cmd(&["CLIENT", "NO-EVICT", "on"]), ok());
    fill_query_buffer(&mut kept, 4 << 20);
    wait_until("kept's query buffer full", || {
        field(&mut control, "kept", "qbuf") == Some(4 << 20)
    });
    assert!(field(&mut control, "kept", "tot-mem").unwrap() > 4 << 20);
    // Then any client that may be evicted goes while the total is over the limit.
    let mut small = s.conn();
    small.send_cmd(&["PING"]);
    small.expect_closed();
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "2");
    assert!(field(&mut control, "kept", "qbuf").is_some());
    assert_eq!(control.cmd(&["PING"]), Frame::Simple(b"PONG".to_vec()));
}

#[test]
fn clients_are_evicted_biggest_first_and_only_until_under_the_limit() {
    let s = Server::percore(&["--threads", "2"]);
    let mut control = named(&s, "control");
    assert_eq!(control.cmd(&["CLIENT", "NO-EVICT", "on"]), ok());
    // Six clients of about 256 KiB and three of about 2 MiB, spread over both shards.
    let mut conns = Vec::new();
    for (i, size) in [(0, 200 << 10), (1, 1800 << 10)] {
        for j in 0..if i == 0 { 6 } else { 3 } {
            let name = format!("c{i}-{j}");
            let mut c = named(&s, &name);
            fill_query_buffer(&mut c, size);
            wait_until("the query buffer full", || {
                field(&mut control, &name, "qbuf").is_some_and(|q| q >= size as u64)
            });
            conns.push(c);
        }
    }
    let list = client_list(&mut control);
    let mem_of = |prefix: &str| -> Vec<u64> {
        list.iter()
            .filter(|l| l.contains(&format!(" name={prefix}")))
            .map(|l| {
                let at = l.find(" tot-mem=").unwrap() + 9;
                l[at..].split(' ').next().unwrap().parse().unwrap()
            })
            .collect()
    };
    let (small, large) = (mem_of("c0-"), mem_of("c1-"));
    assert_eq!((small.len(), large.len()), (6, 3));
    let total: u64 = small.iter().chain(&large).sum::<u64>() + mem_of("control")[0];
    // Room for everything but one of the large clients: exactly one large one goes.
    let limit = total - large.iter().min().unwrap();
    let limit_arg = limit.to_string();
    assert_eq!(
        control.cmd(&["CONFIG", "SET", "maxmemory-clients", &limit_arg]),
        ok()
    );
    wait_until("one large client evicted", || {
        info_field(&mut control, "stats", "evicted_clients") == "1"
    });
    std::thread::sleep(Duration::from_millis(300));
    let list = client_list(&mut control);
    let count = |p: &str| {
        list.iter()
            .filter(|l| l.contains(&format!(" name={p}")))
            .count()
    };
    assert_eq!((count("c0-"), count("c1-")), (6, 2), "{list:#?}");
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "1");
    // A limit below every client but the exempt one: all of them go.
    assert_eq!(
        control.cmd(&["CONFIG", "SET", "maxmemory-clients", "1"]),
        ok()
    );
    wait_until("every client evicted", || {
        let list = client_list(&mut control);
        list.iter()
            .all(|l| !l.contains(" name=c0-") && !l.contains(" name=c1-"))
    });
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "9");
    for mut c in conns {
        c.expect_closed();
    }
}

#[test]
fn subscriptions_and_unread_replies_count_towards_eviction() {
    let s = Server::percore(&["--threads", "2", "--maxmemory-clients", "200000"]);
    let mut control = named(&s, "control");
    assert_eq!(control.cmd(&["CLIENT", "NO-EVICT", "on"]), ok());

    // Many subscriptions: evicted after a few thousand.
    let mut sub = named(&s, "subscriber");
    let mut evicted_at = None;
    for i in 0..20_000 {
        sub.send_cmd(&["SUBSCRIBE", &format!("channel-{i}")]);
        let mut chunk = [0u8; 4096];
        match sub.stream().try_clone().unwrap().read(&mut chunk) {
            Ok(0) | Err(_) => {
                evicted_at = Some(i);
                break;
            }
            Ok(_) => {}
        }
    }
    let n = evicted_at.expect("the subscriber was never evicted");
    assert!(n > 100, "evicted after only {n} subscriptions");
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "1");

    // Replies it does not read: evicted once they pass the limit.
    let value = "x".repeat(100_000);
    assert_eq!(control.cmd(&["SET", "big", &value]), ok());
    let reader = named(&s, "reader");
    reader
        .stream()
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let end = Instant::now() + WAIT;
    while field(&mut control, "reader", "tot-mem").is_some() {
        assert!(Instant::now() < end, "the reader was never evicted");
        for _ in 0..10 {
            if reader
                .stream()
                .write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
                .is_err()
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(info_field(&mut control, "stats", "evicted_clients"), "2");
}

/// `qbuf` + `qbuf-free`: the input buffer's allocation, as Redis's querybuf tests read it.
fn query_buffer(c: &mut Conn, name: &str) -> u64 {
    field(c, name, "qbuf").unwrap() + field(c, name, "qbuf-free").unwrap()
}

#[test]
fn an_idle_query_buffer_is_given_back_unless_the_cron_is_paused() {
    let s = Server::percore(&["--threads", "2"]);
    let mut control = named(&s, "control");
    let mut c = named(&s, "idle");
    let start = query_buffer(&mut control, "idle");
    assert!((16_384..32_768).contains(&start), "{start}");
    // A big request leaves a big buffer, kept while the cron is paused.
    assert_eq!(control.cmd(&["DEBUG", "PAUSE-CRON", "1"]), ok());
    let value = "A".repeat(400_000);
    assert_eq!(c.cmd(&["SET", "x", &value]), ok());
    let big = query_buffer(&mut control, "idle");
    assert!(big > 400_000, "{big}");
    std::thread::sleep(Duration::from_millis(3_500));
    assert_eq!(query_buffer(&mut control, "idle"), big);
    // Then, idle for over 2 s, it is given back whole.
    assert_eq!(control.cmd(&["DEBUG", "PAUSE-CRON", "0"]), ok());
    wait_until("the idle buffer freed", || {
        query_buffer(&mut control, "idle") == 0
    });
    // The next request allocates again.
    assert_eq!(c.cmd(&["GET", "nothing"]), Frame::Null);
    assert!(query_buffer(&mut control, "idle") >= 16_384);
}

#[test]
fn debug_config_rewrite_force_all_needs_a_config_file() {
    let s = Server::percore(&[]);
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["DEBUG", "CONFIG-REWRITE-FORCE-ALL"]),
        Frame::Error(
            b"ERR CONFIG-REWRITE-FORCE-ALL failed: The server is running without a config file"
                .to_vec()
        )
    );
}
