//! Entry points for the fuzz targets (fuzz/) and their regression tests: the parts of the
//! server reachable without sockets or io_uring. Not a stable API.
//!
//! Each fuzz target (fuzz/fuzz_targets/) is one call of a `check_*` function here, so a
//! crashing input becomes a regression test in the normal suite by calling the same
//! function (tests/fuzz_regressions.rs, which also replays every committed corpus file).
//!
//! - [`check_resp_parse`]: the RESP request parser on a whole buffer and resumed on the
//!   same bytes arriving in pieces: the same requests, the same error.
//! - [`check_rdb_load`]: the RDB loader on arbitrary bytes; what it loads, saved again and
//!   reloaded, gives the same keys.
//! - [`check_restore`]: a DUMP payload's value bytes (sealed with a good version and
//!   checksum) through RESTORE's checks and the value loader; what loads, dumped again,
//!   loads to the same value.
//! - [`check_lzf`]: LZF decompression of arbitrary bytes, and compress/decompress round trip.
//! - [`nodes_conf`]: the nodes.conf parser, and that what it accepts renders and parses
//!   back to the same lines.
//! - [`Dispatcher`]: the command layer of one shard in process — per-connection resumable
//!   RESP parsing, the command table's arity, subcommand and key checks, routing, and
//!   every handler — fed arbitrary bytes on several connections. Each request must get at
//!   most one reply, well-formed RESP. What only the reactor could complete (snapshot
//!   barriers, replies of other shards) is out of its reach; commands that would sleep,
//!   save, stop the server or crash it on purpose are not run (see [`Dispatcher::feed`]).

use crate::client::{Client, ReplyMode};
use crate::config::{Config, LogLevel};
use crate::server::{Log, ServerShared};
use crate::shard::{Msg, ShardData, dispatch};
use percore_net::mailbox::Outbox;
use percore_net::reactor::ConnId;
use percore_net::resp::{ParseLimits, Parsed, Request, decode_frame, parse_request};
use percore_persist::lzf;
use percore_persist::rdb::{self, LoadOptions, Record};

/// What parsing a stream gave: every request's arguments, then how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Parse {
    requests: Vec<Vec<Vec<u8>>>,
    /// The protocol error's text, or `None` when the stream ended (maybe mid-request).
    error: Option<String>,
    /// Bytes left unconsumed at the end.
    left: usize,
}

/// Parses `data` fed in pieces of the given lengths (the last piece takes the rest), as a
/// connection does: consumed bytes leave the front, the parse state resumes across pieces.
fn parse_in_pieces(data: &[u8], cuts: &[usize], limits: &ParseLimits) -> Parse {
    let mut buf: Vec<u8> = Vec::new();
    let mut req = Request::new();
    let mut out = Parse {
        requests: Vec::new(),
        error: None,
        left: 0,
    };
    let mut at = 0;
    let mut cut = cuts.iter();
    while at < data.len() {
        let n = cut
            .next()
            .map_or(data.len() - at, |&n| n.clamp(1, data.len() - at));
        buf.extend_from_slice(&data[at..at + n]);
        at += n;
        loop {
            match parse_request(&buf, limits, &mut req) {
                Ok(Parsed::Complete { consumed }) => {
                    assert!(
                        consumed > 0 && consumed <= buf.len(),
                        "consumed {consumed} of {}",
                        buf.len()
                    );
                    out.requests
                        .push((0..req.len()).map(|i| req.arg(&buf, i).to_vec()).collect());
                    req.clear();
                    buf.drain(..consumed);
                }
                Ok(Parsed::Incomplete { need_bytes }) => {
                    if let Some(n) = need_bytes {
                        assert!(n > buf.len(), "need {n} bytes with {} buffered", buf.len());
                    }
                    break;
                }
                Err(e) => {
                    let mut text = Vec::new();
                    e.write_message(&mut text);
                    out.error = Some(String::from_utf8_lossy(&text).into_owned());
                    out.left = buf.len() + data.len() - at;
                    return out;
                }
            }
        }
    }
    out.left = buf.len();
    out
}

/// The RESP request parser: `data[0]` picks the limits (an unauthenticated connection, a
/// small `proto-max-bulk-len`), `data[1]` seeds the piece lengths, the rest is the
/// stream. Parsed whole and in pieces, it must give the same requests and the same error.
pub fn check_resp_parse(data: &[u8]) {
    let [mode, seed, stream @ ..] = data else {
        return;
    };
    let limits = ParseLimits {
        unauthenticated: mode & 1 != 0,
        max_bulk_len_bytes: if mode & 2 != 0 { 64 } else { 1 << 20 },
        max_multibulk_len: if mode & 4 != 0 { 8 } else { 1 << 20 },
        ..ParseLimits::default()
    };
    let whole = parse_in_pieces(stream, &[], &limits);
    let mut x = u64::from(*seed) | 1;
    let sizes = [1usize, 2, 3, 7, 16, 100, 1000];
    let cuts: Vec<usize> = (0..stream.len())
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sizes[(x % sizes.len() as u64) as usize]
        })
        .collect();
    let pieces = parse_in_pieces(stream, &cuts, &limits);
    if whole.error.is_some() || pieces.error.is_some() {
        // Where an error stops the stream may depend on what was buffered (an inline line
        // or count line over the limit is refused once that much sits unterminated), but
        // every request before it is the same, and both end in an error.
        let n = whole.requests.len().min(pieces.requests.len());
        assert_eq!(
            whole.requests[..n],
            pieces.requests[..n],
            "requests before the error"
        );
        assert!(
            whole.error.is_some() && pieces.error.is_some(),
            "whole: {whole:?}\npieces: {pieces:?}"
        );
    } else {
        assert_eq!(whole, pieces, "the stream parsed whole and in pieces");
    }
}

/// The RDB loader: `data[0]` says whether to verify the checksum, the rest is the file.
/// Loading never panics; what it loads, written again with the encoder and reloaded, gives
/// the same records.
pub fn check_rdb_load(data: &[u8]) {
    let [mode, file @ ..] = data else {
        return;
    };
    let opts = LoadOptions::default().with_checksum(mode & 1 != 0);
    let mut first = Vec::new();
    let loaded = rdb::load(file, &opts, |r| {
        if let Record::Entry {
            db,
            key,
            value,
            expire_ms,
            ..
        } = r
        {
            first.push((db, key.to_vec(), value, expire_ms));
        }
        Ok(())
    });
    if loaded.is_err() {
        return;
    }
    let mut out = Vec::new();
    rdb::encode::write_header(&mut out, &[]);
    let mut enc = rdb::encode::Encoder::new(mode & 2 != 0);
    let mut db = None;
    for (d, key, value, expire_ms) in &first {
        if db != Some(*d) {
            rdb::encode::write_select_db(&mut out, *d);
            db = Some(*d);
        }
        enc.write_string_entry(&mut out, key, value, *expire_ms)
            .expect("a loaded value is writable");
    }
    rdb::encode::write_eof(&mut out);
    let crc = percore_persist::crc64::crc64(&out);
    rdb::encode::write_checksum(&mut out, crc);
    let mut second = Vec::new();
    rdb::load(&out, &LoadOptions::default(), |r| {
        if let Record::Entry {
            db,
            key,
            value,
            expire_ms,
            ..
        } = r
        {
            second.push((db, key.to_vec(), value, expire_ms));
        }
        Ok(())
    })
    .expect("a file the encoder wrote loads");
    assert_eq!(first, second, "keys loaded, saved and loaded again");
}

/// RESTORE: `data` is the value part of a DUMP payload (type byte, value); sealed with a
/// version and checksum it passes the payload checks, loading it never panics, and a
/// value that loads dumps to a payload that loads to the same value.
pub fn check_restore(data: &[u8]) {
    use crate::commands::dump;
    let mut payload = data.to_vec();
    payload.extend_from_slice(&u16::try_from(rdb::RDB_VERSION).unwrap_or(10).to_le_bytes());
    let crc = percore_persist::crc64::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let body = dump::verify(&payload, false).expect("a sealed payload passes the checks");
    let Ok((Some(value), _)) = rdb::load_value(body) else {
        return;
    };
    for compress in [false, true] {
        let again = dump::dump_payload(&value, compress).expect("a loaded value dumps");
        let body = dump::verify(&again, false).expect("a dumped payload passes the checks");
        let (reloaded, used) = rdb::load_value(body).expect("a dumped payload loads");
        assert_eq!(used, body.len(), "the value fills the payload");
        assert_eq!(reloaded.as_ref(), Some(&value), "dumped and restored");
    }
}

/// LZF: decompressing any bytes with any limit never panics nor exceeds the limit, and
/// compressing then decompressing gives the input back.
pub fn check_lzf(data: &[u8]) {
    let [limit, input @ ..] = data else {
        return;
    };
    let max_len = usize::from(*limit) * 64;
    let mut out = vec![7u8; 3];
    match lzf::decompress(input, &mut out, max_len) {
        Ok(n) => assert!(
            n <= max_len && out.len() == 3 + n,
            "{n} bytes of at most {max_len}"
        ),
        Err(_) => assert!(out.len() <= 3 + max_len),
    }
    assert_eq!(out[..3], [7, 7, 7], "bytes before the output kept");
    let mut c = lzf::Compressor::new();
    let mut packed = vec![0u8; input.len() + input.len() / 16 + 64];
    let n = c.compress(input, &mut packed);
    if input.is_empty() {
        assert_eq!(n, 0);
        return;
    }
    assert!(
        n > 0 && n <= packed.len(),
        "compressed {} bytes into {n}",
        input.len()
    );
    let mut back = Vec::new();
    let got = lzf::decompress(&packed[..n], &mut back, input.len()).expect("own output");
    assert_eq!(got, input.len());
    assert!(back == input, "round trip");
    // An output buffer too short for the result: 0, never a partial write past it.
    let mut short = vec![0u8; n - 1];
    assert!(c.compress(input, &mut short) <= short.len());
}

/// nodes.conf: the text (lossy UTF-8) through [`nodes_conf`].
pub fn check_nodes_conf(data: &[u8]) {
    let _ = nodes_conf(&String::from_utf8_lossy(data));
}

/// The dispatcher: `data` is a sequence of pieces, each a connection byte (0-2), a length
/// byte and that many bytes, fed to [`Dispatcher`]; every reply is checked.
pub fn check_dispatch(data: &[u8]) {
    let mut d = Dispatcher::new(3);
    let mut at = 0;
    while at + 2 <= data.len() {
        let conn = usize::from(data[at]);
        let len = usize::from(data[at + 1]).min(data.len() - at - 2);
        let piece = &data[at + 2..at + 2 + len];
        at += 2 + len;
        if let Err(e) = d.feed(conn, piece) {
            panic!("{e}");
        }
    }
}

/// Parses `text` as nodes.conf. When it is accepted, renders it, parses the rendering and
/// checks that it renders the same lines: what the server loads, it writes back unchanged
/// (up to the order of the node lines).
/// Returns the rendering (`None` for an empty file) or the parser's error.
pub fn nodes_conf(text: &str) -> Result<Option<String>, String> {
    let Some(state) = crate::cluster::nodes_conf::parse(text)? else {
        return Ok(None);
    };
    let rendered = crate::cluster::nodes_conf::render(&state);
    let again = match crate::cluster::nodes_conf::parse(&rendered) {
        Ok(Some(st)) => crate::cluster::nodes_conf::render(&st),
        Ok(None) => panic!("an accepted nodes.conf rendered as empty: {rendered:?}"),
        Err(e) => panic!("an accepted nodes.conf rendered as a refused one ({e}): {rendered:?}"),
    };
    // The order of the node lines may change: a node is created where it is first named,
    // which may be another node's migrating/importing bracket, and brackets render sorted
    // by slot (Valkey writes nodes in its dictionary's order, which means nothing either).
    // Each line, and the `vars` line last, must come back the same.
    let lines = |t: &str| {
        let mut v: Vec<String> = t.lines().map(str::to_owned).collect();
        let vars = v.pop();
        v.sort();
        (v, vars)
    };
    assert_eq!(
        lines(&rendered),
        lines(&again),
        "nodes.conf does not render back the same"
    );
    Ok(Some(rendered))
}

/// The longest bulk the dispatcher accepts: `proto-max-bulk-len`, kept small so that
/// SETRANGE and APPEND cannot grow a value past the fuzzer's memory limit.
pub const DISPATCHER_MAX_BULK_BYTES: u64 = 1024 * 1024;

/// One shard's command layer with a few connections, in process. See the module docs.
pub struct Dispatcher {
    data: ShardData,
    conns: Vec<Connection>,
    outbox: Outbox<Msg>,
}

struct Connection {
    client: Box<Client>,
    input: Vec<u8>,
    req: Request,
}

impl Dispatcher {
    /// A one-shard server (no save points, `proto-max-bulk-len` of
    /// [`DISPATCHER_MAX_BULK_BYTES`]) with `conns` connections.
    pub fn new(conns: usize) -> Self {
        let config = Config {
            save: Vec::new(),
            proto_max_bulk_len_bytes: DISPATCHER_MAX_BULK_BYTES,
            ..Config::default()
        };
        let log = Log::new(Box::new(std::io::sink()), LogLevel::Nothing);
        let shared = ServerShared::new(config, None, log, 1, 0, String::new());
        let data = ShardData::new(0, 1, shared);
        let now = data.now_ms;
        let conns = (0..conns)
            .map(|i| Connection {
                client: Box::new(Client::new(
                    ConnId {
                        index: i as u32,
                        generation: 0,
                    },
                    i as u64 + 1,
                    now,
                    true,
                )),
                input: Vec::new(),
                req: Request::new(),
            })
            .collect();
        Self {
            data,
            conns,
            outbox: Outbox::new(1),
        }
    }

    /// Appends `bytes` to connection `conn`'s input and runs every request now complete
    /// there. A protocol error drops the connection's input, as the server closes it.
    /// Returns an error naming the request when one got more than one reply or a reply
    /// that is not well-formed RESP.
    pub fn feed(&mut self, conn: usize, bytes: &[u8]) -> Result<(), String> {
        let n = self.conns.len();
        let c = &mut self.conns[conn % n];
        c.input.extend_from_slice(bytes);
        let limits = ParseLimits {
            max_bulk_len_bytes: DISPATCHER_MAX_BULK_BYTES as usize,
            unauthenticated: !c.client.authenticated,
            ..ParseLimits::default()
        };
        loop {
            match parse_request(&c.input, &limits, &mut c.req) {
                Ok(Parsed::Complete { consumed }) => {
                    let owned: Vec<Vec<u8>> = (0..c.req.len())
                        .map(|i| c.req.arg(&c.input, i).to_vec())
                        .collect();
                    c.req.clear();
                    c.input.drain(..consumed);
                    if owned.is_empty() || !runnable(&owned) {
                        continue;
                    }
                    let argv: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                    let replies_on = c.client.reply_mode == ReplyMode::On;
                    let waiting_before = !c.client.pending.is_empty();
                    let mut out = Vec::new();
                    dispatch(
                        &mut self.data,
                        &mut c.client,
                        &argv,
                        &mut out,
                        &mut self.outbox,
                    );
                    self.data.to_close.clear();
                    // A reply owed by a barrier or another shard waits in `pending`.
                    let deferred = !c.client.pending.is_empty();
                    check_reply(&argv, &out, replies_on && !waiting_before && !deferred)?;
                }
                Ok(Parsed::Incomplete { .. }) => return Ok(()),
                Err(_) => {
                    c.input.clear();
                    c.req.clear();
                    return Ok(());
                }
            }
        }
    }
}

/// At most one reply (one per channel for the pub/sub (un)subscribe commands), whole and
/// well-formed (at least one when replies are on and nothing waits before it, unless the
/// command itself changes the reply mode or waits).
fn check_reply(argv: &[&[u8]], out: &[u8], expect_one: bool) -> Result<(), String> {
    let mut at = 0;
    let mut frames = 0;
    while at < out.len() {
        match decode_frame(&out[at..]) {
            Ok(Some((_, used))) => {
                at += used;
                frames += 1;
            }
            Ok(None) => {
                return Err(format!(
                    "{}: truncated reply {:?}",
                    show(argv),
                    show_bytes(out)
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{}: malformed reply ({e}) {:?}",
                    show(argv),
                    show_bytes(out)
                ));
            }
        }
    }
    let changes_reply_mode = argv[0].eq_ignore_ascii_case(b"CLIENT");
    // (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE answer once per channel; without channels an
    // unsubscribe answers once per subscription the connection had.
    let subscribes = [
        &b"subscribe"[..],
        b"unsubscribe",
        b"psubscribe",
        b"punsubscribe",
        b"ssubscribe",
        b"sunsubscribe",
    ]
    .iter()
    .any(|c| argv[0].eq_ignore_ascii_case(c));
    let most = match (subscribes, argv.len()) {
        (false, _) => 1,
        (true, 1) => usize::MAX,
        (true, n) => n - 1,
    };
    if frames > most || (expect_one && frames == 0 && !changes_reply_mode) {
        return Err(format!(
            "{}: {frames} replies {:?}",
            show(argv),
            show_bytes(out)
        ));
    }
    Ok(())
}

/// Whether the dispatcher runs `argv`: not what sleeps, saves, stops or crashes the server
/// on purpose or links it to other servers, nor CONFIG SET of the limits that keep values
/// small or of the files it writes.
fn runnable(argv: &[Vec<u8>]) -> bool {
    let is = |i: usize, s: &str| {
        argv.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(s.as_bytes()))
    };
    if is(0, "SHUTDOWN") || is(0, "SAVE") || is(0, "BGSAVE") || is(0, "BGREWRITEAOF") {
        return false;
    }
    // A replica link (PSYNC/SYNC hand the connection's socket to the replication
    // threads) or a link to another server (REPLICAOF host port).
    if is(0, "PSYNC") || is(0, "SYNC") || is(0, "REPLICAOF") || is(0, "SLAVEOF") {
        return false;
    }
    // MONITOR's lines and CLIENT PAUSE's held requests need the reactor's loop (flush,
    // resume), which the in-process dispatcher does not run.
    if is(0, "MONITOR") || (is(0, "CLIENT") && is(1, "PAUSE")) {
        return false;
    }
    if is(0, "DEBUG") {
        return is(1, "HELP") || is(1, "OBJECT") || is(1, "SET-ACTIVE-EXPIRE");
    }
    if is(0, "CONFIG") && is(1, "SET") {
        const KEEP: [&str; 9] = [
            "proto-max-bulk-len",
            "save",
            "dir",
            "dbfilename",
            "rdb-key-save-delay",
            "logfile",
            "appendonly",
            "appenddirname",
            "appendfilename",
        ];
        return !argv
            .iter()
            .skip(2)
            .any(|a| KEEP.iter().any(|k| a.eq_ignore_ascii_case(k.as_bytes())));
    }
    true
}

fn show(argv: &[&[u8]]) -> String {
    argv.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(&a[..a.len().min(64)])))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}
