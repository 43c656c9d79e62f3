//! Every byte reaches the right request: many clients at once send pipelined requests of
//! random sizes (up to a few hundred KB, values full of CRLF and whole RESP commands) as
//! one stream cut at random piece boundaries, and every reply is checked byte for byte.
//!
//! Run on every receive path — multishot receive into the provided-buffer ring (default),
//! one receive SQE per completion (`PERCORE_NO_MULTISHOT_RECV`), and a ring of 4 buffers
//! per shard (`PERCORE_BUF_RING_ENTRIES=4`) that concurrent clients run dry, so receives
//! end with ENOBUFS and are re-armed — each with one and with two shards.
//!
//! Deterministic: each client's stream comes from a fixed seed (`PERCORE_FUZZ_SEED`
//! overrides it), printed with any failure. Bounded: a fixed amount of work, cut short by
//! `TIME_BUDGET` per configuration.

mod common;

use common::{Rng, Server, encode_cmd, show};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const BATCHES_PER_CLIENT: usize = 80;
/// The largest value a SET carries.
const MAX_VALUE_BYTES: usize = 300 * 1024;
/// Per configuration; a client stops starting batches when it runs out.
const TIME_BUDGET: Duration = Duration::from_secs(12);
const DEFAULT_SEED: u64 = 0x00c0_ffee;

/// A value of `n` bytes: random, with RESP framing and whole commands sprinkled in, so a
/// misread shows up as a command run or a protocol error, not as silently wrong data.
fn value(rng: &mut Rng, n: usize) -> Vec<u8> {
    const TRAPS: &[&[u8]] = &[
        b"\r\n",
        b"*1\r\n$8\r\nFLUSHALL\r\n",
        b"*3\r\n$3\r\nSET\r\n$4\r\npwnd\r\n$1\r\n1\r\n",
        b"$-1\r\n",
        b"*2\r\n$3\r\nGET\r\n",
        b"PING\r\n",
    ];
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        if rng.below(64) == 0 {
            v.extend_from_slice(TRAPS[rng.below(TRAPS.len())]);
        } else {
            v.extend_from_slice(&rng.next().to_le_bytes());
        }
    }
    v.truncate(n);
    v
}

fn value_size(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 0,
        1..=4 => rng.below(100),
        5..=7 => rng.below(16 * 1024),
        _ => rng.below(MAX_VALUE_BYTES + 1),
    }
}

/// Piece sizes the stream is cut into: around the parser's and the buffers' edges.
fn piece_size(rng: &mut Rng, total: usize) -> usize {
    // Byte-by-byte sends of a big stream cost a syscall a byte: keep those to small ones.
    let small_ok = total <= 16 * 1024;
    loop {
        let n = match rng.below(9) {
            0 => 1,
            1 => 7,
            2 => 100,
            3 => 1000,
            4 => 4096,
            5 => 8192,
            6 => 65_536,
            7 => 8191 + rng.below(3),
            _ => 1 + rng.below(20_000),
        };
        if n >= 100 || small_ok {
            return n;
        }
    }
}

fn bulk_reply(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// One client's whole run; returns the bytes it sent, or a failure message.
fn client(port: u16, label: &str, seed: u64, t: usize, deadline: Instant) -> Result<usize, String> {
    let mut rng = Rng(seed ^ (t as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut sent = 0;
    let mut counter = 0i64;
    let counter_key = format!("ctr{t}");
    for batch in 0..BATCHES_PER_CLIENT {
        if Instant::now() > deadline {
            break;
        }
        let mut req = Vec::new();
        let mut want = Vec::new();
        for cmd in 0..=rng.below(4) {
            // Keys spread over both shards; each client has its own.
            let key = format!("c{t}:b{batch}:k{cmd}:{}", rng.below(1000));
            let n = value_size(&mut rng);
            let v = value(&mut rng, n);
            req.extend(encode_cmd(&[b"SET", key.as_bytes(), &v]));
            want.extend_from_slice(b"+OK\r\n");
            req.extend(encode_cmd(&[b"GET", key.as_bytes()]));
            want.extend(bulk_reply(&v));
            if rng.below(3) == 0 {
                req.extend(encode_cmd(&[b"ECHO".as_slice(), &v]));
                want.extend(bulk_reply(&v));
            }
            for _ in 0..rng.below(51) {
                counter += 1;
                req.extend(encode_cmd(&["INCR", counter_key.as_str()]));
                want.extend(format!(":{counter}\r\n").into_bytes());
            }
        }
        let mut at = 0;
        while at < req.len() {
            let n = piece_size(&mut rng, req.len()).min(req.len() - at);
            s.write_all(&req[at..at + n])
                .map_err(|e| format!("{label} client {t} batch {batch}: write: {e}"))?;
            at += n;
        }
        sent += req.len();
        let mut got = vec![0u8; want.len()];
        if let Err(e) = s.read_exact(&mut got) {
            return Err(format!(
                "{label} client {t} batch {batch}: reading {} reply bytes: {e}",
                want.len()
            ));
        }
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
            let from = at.saturating_sub(40);
            return Err(format!(
                "{label} client {t} batch {batch}: reply differs at byte {at} of {}:\n got {}\nwant {}",
                want.len(),
                show(&got[from..(at + 80).min(got.len())]),
                show(&want[from..(at + 80).min(want.len())])
            ));
        }
    }
    Ok(sent)
}

fn seed() -> u64 {
    std::env::var("PERCORE_FUZZ_SEED")
        .ok()
        .and_then(|s| {
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(DEFAULT_SEED)
}

fn stress(threads: &str, env: &[(&str, &str)]) {
    let label = format!("threads {threads} env {env:?}");
    let seed = seed();
    let s = Server::percore_env(&["--threads", threads], env);
    let port = s.port();
    let deadline = Instant::now() + TIME_BUDGET;
    let started = Instant::now();
    let results: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let label = &label;
                scope.spawn(move || client(port, label, seed, t, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        match r {
            Ok(n) => total += n,
            Err(why) => panic!("seed {seed:#x}: {why}\nserver log:\n{}", s.output()),
        }
    }
    let mut c = s.conn();
    assert_eq!(
        c.cmd(&["EXISTS", "pwnd"]),
        percore_net::resp::Frame::Int(0),
        "{label}"
    );
    eprintln!(
        "{label}: {total} bytes from {CLIENTS} clients in {:?}",
        started.elapsed()
    );
    assert!(total > 1024 * 1024, "{label}: only {total} bytes sent");
}

const NO_MULTISHOT: (&str, &str) = ("PERCORE_NO_MULTISHOT_RECV", "1");
const TINY_RING: (&str, &str) = ("PERCORE_BUF_RING_ENTRIES", "4");

#[test]
fn multishot_receive_one_shard() {
    stress("1", &[]);
}

#[test]
fn multishot_receive_two_shards() {
    stress("2", &[]);
}

#[test]
fn single_receives_one_shard() {
    stress("1", &[NO_MULTISHOT]);
}

#[test]
fn single_receives_two_shards() {
    stress("2", &[NO_MULTISHOT]);
}

#[test]
fn nearly_exhausted_buffer_ring_one_shard() {
    stress("1", &[TINY_RING]);
}

#[test]
fn nearly_exhausted_buffer_ring_two_shards() {
    stress("2", &[TINY_RING]);
}
