//! A server with two shards: keys on both, replies in request order, multi-key commands
//! across shards, many concurrent clients.

mod common;

use common::{Server, encode_cmd};
use percore_net::resp::Frame;
use std::sync::Arc;

/// `$len\r\nvalue\r\n`.
fn bulk_bytes(v: &str) -> Vec<u8> {
    format!("${}\r\n{v}\r\n", v.len()).into_bytes()
}

#[test]
fn thousand_keys_spread_over_two_shards() {
    let s = Server::percore_threads(2);
    let mut c = s.conn();
    let mut req = Vec::new();
    for i in 0..1000 {
        req.extend(encode_cmd(&[
            "SET",
            &format!("key:{i}"),
            &format!("value:{i}"),
        ]));
    }
    c.send(&req);
    for i in 0..1000 {
        assert_eq!(c.read_raw(), b"+OK\r\n", "SET #{i}");
    }
    assert_eq!(c.cmd_raw(&["DBSIZE"]), b":1000\r\n");
    // Every key reads back, from a fresh connection (which may sit on the other shard).
    for _ in 0..3 {
        let mut r = s.conn();
        for i in (0..1000).step_by(7) {
            assert_eq!(
                r.cmd_raw(&["GET", &format!("key:{i}")]),
                bulk_bytes(&format!("value:{i}"))
            );
        }
    }
}

#[test]
fn pipelined_replies_keep_request_order_across_shards() {
    let s = Server::percore_threads(2);
    let mut c = s.conn();
    // A model of what each reply must be.
    let mut model: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut req = Vec::new();
    let mut want: Vec<Vec<u8>> = Vec::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..1000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = format!("o{}", rng % 64);
        match i % 4 {
            0 => {
                let v = format!("s{i}");
                req.extend(encode_cmd(&["SET", &key, &v]));
                want.push(b"+OK\r\n".to_vec());
                model.insert(key, v);
            }
            1 | 3 => {
                req.extend(encode_cmd(&["GET", &key]));
                want.push(
                    model
                        .get(&key)
                        .map_or(b"$-1\r\n".to_vec(), |v| bulk_bytes(v)),
                );
            }
            _ => {
                req.extend(encode_cmd(&["INCR", &key]));
                match model.get(&key).map(|v| v.parse::<i64>()) {
                    None => {
                        want.push(b":1\r\n".to_vec());
                        model.insert(key, "1".to_owned());
                    }
                    Some(Ok(n)) => {
                        want.push(format!(":{}\r\n", n + 1).into_bytes());
                        model.insert(key, (n + 1).to_string());
                    }
                    Some(Err(_)) => {
                        want.push(b"-ERR value is not an integer or out of range\r\n".to_vec());
                    }
                }
            }
        }
    }
    c.send(&req);
    for (i, w) in want.iter().enumerate() {
        let got = c.read_raw();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(w),
            "reply #{i}"
        );
    }
}

#[test]
fn multi_key_commands_across_shards() {
    let s = Server::percore_threads(2);
    let mut c = s.conn();
    let keys: Vec<String> = (0..100).map(|i| format!("mk{i}")).collect();
    let mut mset = vec!["MSET".to_owned()];
    for (i, k) in keys.iter().enumerate() {
        mset.push(k.clone());
        mset.push(i.to_string());
    }
    assert_eq!(c.cmd_raw(&mset), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["DBSIZE"]), b":100\r\n");

    // MGET in key order, with gaps, from another connection.
    let mut other = s.conn();
    let mut mget = vec!["MGET".to_owned()];
    let mut want = Vec::new();
    for i in 0..120 {
        mget.push(format!("mk{i}"));
        want.extend(if i < 100 {
            bulk_bytes(&i.to_string())
        } else {
            b"$-1\r\n".to_vec()
        });
    }
    let mut full = b"*120\r\n".to_vec();
    full.extend(want);
    assert_eq!(
        String::from_utf8_lossy(&other.cmd_raw(&mget)),
        String::from_utf8_lossy(&full)
    );

    // DEL counts keys on both shards, once each.
    let mut del = vec!["DEL".to_owned()];
    del.extend(keys[..50].iter().cloned());
    del.extend(keys[..10].iter().cloned());
    del.push("absent".to_owned());
    assert_eq!(c.cmd_raw(&del), b":50\r\n");
    assert_eq!(c.cmd_raw(&["DBSIZE"]), b":50\r\n");
    assert_eq!(c.cmd_raw(&["GET", "mk10"]), b"$-1\r\n");
    assert_eq!(c.cmd_raw(&["GET", "mk60"]), bulk_bytes("60"));

    // DBSIZE per database.
    assert_eq!(c.cmd_raw(&["SELECT", "5"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
    assert_eq!(
        c.cmd_raw(&["MSET", "a", "1", "b", "2", "c", "3"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_raw(&["DBSIZE"]), b":3\r\n");
    assert_eq!(other.cmd_raw(&["DBSIZE"]), b":50\r\n");

    assert_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["DBSIZE"]), b":0\r\n");
    assert_eq!(other.cmd_raw(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn pipelined_multi_key_commands_stay_in_order() {
    let s = Server::percore_threads(2);
    let mut c = s.conn();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..200 {
        let (ka, kb) = (format!("pa{i}"), format!("pb{i}"));
        req.extend(encode_cmd(&["MSET", &ka, &i.to_string(), &kb, "x"]));
        want.push(b"+OK\r\n".to_vec());
        req.extend(encode_cmd(&["GET", &ka]));
        want.push(bulk_bytes(&i.to_string()));
        req.extend(encode_cmd(&["MGET", &kb, &ka, "nope"]));
        let mut mget = b"*3\r\n".to_vec();
        mget.extend(bulk_bytes("x"));
        mget.extend(bulk_bytes(&i.to_string()));
        mget.extend(b"$-1\r\n");
        want.push(mget);
        req.extend(encode_cmd(&["DBSIZE"]));
        want.push(format!(":{}\r\n", i + 2).into_bytes());
        req.extend(encode_cmd(&["DEL", &kb, "nope"]));
        want.push(b":1\r\n".to_vec());
    }
    send_and_expect(&mut c, &req, &want, "");
}

/// Sends the pipeline `req` at once and checks each reply against `want`, in order.
fn send_and_expect(c: &mut common::Conn, req: &[u8], want: &[Vec<u8>], label: &str) {
    c.send(req);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&c.read_raw()),
            String::from_utf8_lossy(w),
            "{label}reply #{i}"
        );
    }
}

/// Runs `f(worker, connection)` on `n` threads at once, each with its own connection.
fn on_connections(s: &Arc<Server>, n: usize, f: fn(usize, common::Conn)) {
    let workers: Vec<_> = (0..n)
        .map(|w| {
            let s = Arc::clone(s);
            std::thread::spawn(move || f(w, s.conn()))
        })
        .collect();
    for t in workers {
        t.join().expect("worker");
    }
}

/// Forwarded single-key commands travel in batches; a multi-shard command's part sent
/// between two of them must still run between them on the owning shard.
#[test]
fn forwarded_batches_and_multi_key_parts_keep_their_order() {
    let s = Arc::new(Server::percore_threads(2));
    on_connections(&s, 4, |worker, mut c| {
        let mut req = Vec::new();
        let mut want = Vec::new();
        for i in 0..300 {
            let (ka, kb) = (
                format!("w{worker}a{}", i % 17),
                format!("w{worker}b{}", i % 5),
            );
            req.extend(encode_cmd(&["SET", &ka, &format!("one{i}")]));
            want.push(b"+OK\r\n".to_vec());
            req.extend(encode_cmd(&["MSET", &ka, &format!("two{i}"), &kb, "x"]));
            want.push(b"+OK\r\n".to_vec());
            req.extend(encode_cmd(&["APPEND", &ka, "!"]));
            want.push(format!(":{}\r\n", format!("two{i}!").len()).into_bytes());
            req.extend(encode_cmd(&["DEL", &kb, &ka]));
            want.push(b":2\r\n".to_vec());
            req.extend(encode_cmd(&["GET", &ka]));
            want.push(b"$-1\r\n".to_vec());
        }
        send_and_expect(&mut c, &req, &want, &format!("worker {worker} "));
    });
}

/// More forwarded commands in one loop iteration than one batch carries (all keys share
/// a hashtag, so every connection on the other shard forwards everything).
#[test]
fn forwarded_commands_beyond_one_batch_stay_exact() {
    const CLIENTS: usize = 6;
    const INCRS: usize = 3000;
    let s = Arc::new(Server::percore_threads(2));
    on_connections(&s, CLIENTS, |w, mut c| {
        let key = format!("{{tag}}counter{w}");
        let mut req = Vec::new();
        for _ in 0..INCRS {
            req.extend(encode_cmd(&["INCR", &key]));
        }
        c.send(&req);
        for n in 1..=INCRS {
            assert_eq!(c.read_raw(), format!(":{n}\r\n").into_bytes(), "{key}");
        }
    });
    let mut c = s.conn();
    assert_eq!(
        c.cmd_raw(&["DBSIZE"]),
        format!(":{CLIENTS}\r\n").into_bytes()
    );
}

#[test]
fn many_concurrent_connections() {
    const CLIENTS: usize = 20;
    const OPS: usize = 200;
    let s = Arc::new(Server::percore_threads(2));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut c = s.conn();
                let mut last = 0;
                for i in 0..OPS {
                    let key = format!("t{t}:{i}");
                    assert_eq!(c.cmd_raw(&["SET", &key, &key]), b"+OK\r\n");
                    assert_eq!(c.cmd_raw(&["GET", &key]), bulk_bytes(&key));
                    // Other clients increment too: each value seen is larger than the last.
                    let Frame::Int(n) = c.cmd(&["INCR", "shared-counter"]) else {
                        panic!("INCR did not reply with an integer");
                    };
                    assert!(n > last && n <= (CLIENTS * OPS) as i64, "{n} after {last}");
                    last = n;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client thread");
    }
    let mut c = s.conn();
    assert_eq!(
        c.cmd_raw(&["GET", "shared-counter"]),
        bulk_bytes(&(CLIENTS * OPS).to_string())
    );
    assert_eq!(
        c.cmd_raw(&["DBSIZE"]),
        format!(":{}\r\n", CLIENTS * OPS + 1).into_bytes()
    );
}

#[test]
fn cross_shard_hop_commands_from_many_connections() {
    // Connections land on either shard; keys sit on either shard. RENAME, RENAMENX, COPY,
    // MSETNX and SCAN step from shard to shard, including back to the one they started on.
    let s = Server::percore_threads(2);
    for conn_no in 0..8 {
        let mut c = s.conn();
        let p = format!("h{conn_no}:");
        let k = |name: &str| format!("{p}{name}");
        for i in 0..8 {
            let (src, dst) = (k(&format!("src{i}")), k(&format!("dst{i}")));
            assert_eq!(c.cmd_raw(&["SET", &src, "v"]), b"+OK\r\n");
            assert_eq!(
                c.cmd_raw(&["COPY", &src, &dst]),
                b":1\r\n",
                "COPY {src} {dst}"
            );
            assert_eq!(c.cmd_raw(&["COPY", &src, &dst]), b":0\r\n");
            let moved = k(&format!("moved{i}"));
            assert_eq!(c.cmd_raw(&["RENAME", &dst, &moved]), b"+OK\r\n", "RENAME");
            assert_eq!(
                c.cmd_raw(&["RENAMENX", &moved, &src]),
                b":0\r\n",
                "RENAMENX"
            );
            assert_eq!(c.cmd_raw(&["GET", &moved]), bulk_bytes("v"));
            assert_eq!(c.cmd_raw(&["EXISTS", &dst]), b":0\r\n");
            let (m1, m2) = (k(&format!("m{i}a")), k(&format!("m{i}b")));
            assert_eq!(
                c.cmd_raw(&["MSETNX", &m1, "1", &m2, "2"]),
                b":1\r\n",
                "MSETNX"
            );
            assert_eq!(
                c.cmd_raw(&["MSETNX", &m2, "x", &k("fresh"), "y"]),
                b":0\r\n"
            );
        }
        assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    }
    // A full SCAN sees every key exactly once.
    let mut c = s.conn();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = b"0".to_vec();
    for _ in 0..10_000 {
        let Frame::Array(parts) = c.cmd(&[b"SCAN".as_slice(), &cursor, b"COUNT", b"50"]) else {
            panic!("SCAN reply is not an array");
        };
        let [Frame::Bulk(next), Frame::Array(keys)] = parts.as_slice() else {
            panic!("SCAN reply shape: {parts:?}");
        };
        for key in keys {
            let Frame::Bulk(key) = key else {
                panic!("SCAN key is not a bulk string");
            };
            seen.insert(key.clone());
        }
        cursor.clone_from(next);
        if cursor == b"0" {
            break;
        }
    }
    assert_eq!(cursor, b"0", "SCAN did not finish");
    let Frame::Int(dbsize) = c.cmd(&["DBSIZE"]) else {
        panic!("DBSIZE is not an integer");
    };
    assert_eq!(seen.len() as i64, dbsize);
    assert_eq!(dbsize, 8 * 8 * 4);
}

/// More connections sending at once than the shard has provided receive buffers: receives
/// that find the ring empty are re-armed, and no request is lost.
#[test]
fn more_simultaneous_senders_than_receive_buffers() {
    let s = Server::percore(&["--threads", "1"]);
    let mut conns: Vec<_> = (0..600).map(|_| s.conn()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&common::encode_cmd(&[
            "SET",
            &format!("burst{i}"),
            &i.to_string(),
        ]));
    }
    for c in &mut conns {
        assert_eq!(c.read_raw(), b"+OK\r\n");
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&common::encode_cmd(&["GET", &format!("burst{i}")]));
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let v = i.to_string();
        assert_eq!(
            c.read_raw(),
            format!("${}\r\n{v}\r\n", v.len()).into_bytes()
        );
    }
}
