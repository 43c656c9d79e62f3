//! Interoperability with a real redis-server 7.0: files we write pass redis-check-rdb
//! and load into redis-server with every key, value and expiry intact; files
//! redis-server writes load here, and our writer reproduces them byte for byte.
//!
//! Skips with a notice when redis-server is not installed, and fails instead when
//! `PERCORE_REQUIRE_REDIS=1` (CI sets it).

use percore_engine::Value;
use percore_persist::rdb::{self, AuxValue, DumpDb, LoadOptions, LoadSummary, Record, encode_dump};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long redis-server may take to load a file and answer PING.
const STARTUP_TIMEOUT_MS: u64 = 20_000;

/// Whether `tool` runs; panics when it does not and `PERCORE_REQUIRE_REDIS=1`.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"),
            "{tool} is not installed and PERCORE_REQUIRE_REDIS=1"
        );
        eprintln!("NOTICE: {tool} not found, skipping this test (install redis-server)");
    }
    found
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "percore-rdb-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A redis-server child listening only on a Unix socket in the test's own directory
/// (no TCP port, so tests running in parallel cannot reach each other's server),
/// killed on drop.
struct RedisServer {
    child: Child,
    socket: PathBuf,
}

impl RedisServer {
    /// Starts redis-server on `dir`/`file` (loading it when it exists) with saving
    /// points off.
    fn start(dir: &Path, file: &str) -> Self {
        let socket = dir.join("redis.sock");
        let log = dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", "0"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .args(["--dbfilename", file, "--save", "", "--appendonly", "no"])
            .arg("--logfile")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = Self { child, socket };
        let deadline = Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("redis-server exited ({status}) while starting:\n{log}");
            }
            if server.answers_ping() {
                return server;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server takes a connection and answers PING with +PONG (any I/O
    /// error, e.g. a socket not yet listening, counts as not ready).
    fn answers_ping(&self) -> bool {
        let Ok(conn) = self.connect() else {
            return false;
        };
        let mut stream = conn.0.into_inner();
        let mut buf = [0u8; 64];
        stream.write_all(b"PING\r\n").is_ok()
            && stream
                .read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG\r\n"))
    }

    fn connect(&self) -> std::io::Result<Conn> {
        let stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn(BufReader::new(stream)))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Just enough RESP2 to drive redis-server.
struct Conn(BufReader<UnixStream>);

impl Conn {
    fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            req.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            req.extend_from_slice(arg);
            req.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&req).unwrap();
        self.reply()
    }

    fn ok(&mut self, args: &[&[u8]]) {
        let reply = self.cmd(args);
        assert_eq!(reply, Reply::Simple("OK".into()), "{args:?}");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        line.trim_end_matches("\r\n").to_owned()
    }

    fn reply(&mut self) -> Reply {
        let line = self.line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let Ok(len) = usize::try_from(rest.parse::<i64>().unwrap()) else {
                    return Reply::Bulk(None);
                };
                let mut buf = vec![0; len + 2];
                self.0.read_exact(&mut buf).unwrap();
                buf.truncate(len);
                Reply::Bulk(Some(buf))
            }
            "*" => {
                let n: usize = rest.parse().unwrap();
                Reply::Array((0..n).map(|_| self.reply()).collect())
            }
            _ => panic!("unexpected reply line {line:?}"),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Keys and values covering every encoding; expiries an hour or more ahead so that
/// redis-server keeps them on load.
fn sample_keyspace() -> Vec<DumpDb> {
    let later = now_ms() + 3_600_000;
    let noise: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
    let text = |s: &[u8]| Value::from_bytes(s);
    let db0 = vec![
        (b"int8".to_vec(), text(b"-7"), None),
        (b"int16".to_vec(), text(b"30000"), None),
        (b"int32".to_vec(), text(b"-2000000000"), Some(later)),
        (b"i64".to_vec(), text(b"9223372036854775807"), None),
        (b"leading zero".to_vec(), text(b"0042"), None),
        (b"minus zero".to_vec(), text(b"-0"), None),
        (b"float".to_vec(), text(b"3.14"), None),
        (b"empty".to_vec(), text(b""), None),
        (b"12345".to_vec(), text(b"integer key"), None),
        (b"-1".to_vec(), text(b"negative key"), Some(later + 1)),
        (
            b"\x00\xff bin\r\nkey".to_vec(),
            text(b"\x00\x01\x02\xff"),
            None,
        ),
        (b"len 63".to_vec(), text(&[b'x'; 63]), None),
        (b"noise 64".to_vec(), text(&noise[..64]), None),
        (b"noise 300".to_vec(), text(&noise), Some(later + 2)),
        (b"32-bit".to_vec(), text(&[7u8; 20_000]), None),
        (b"lzf".to_vec(), text(&b"0123456789abcdef".repeat(40)), None),
        (
            b"mixed".to_vec(),
            text(&[&noise[..50], &b"abcabcabcabc"[..], &noise[..50]].concat()),
            None,
        ),
        (b"key compressible ".repeat(4), text(b"lzf key"), None),
    ];
    vec![
        (0, db0),
        (5, vec![(b"k".to_vec(), text(b"db5"), Some(later + 3))]),
        (15, vec![(b"k".to_vec(), text(b"db15"), None)]),
    ]
}

fn value_text(value: &Value) -> Vec<u8> {
    value.as_str().unwrap().to_bytes().into_owned()
}

/// Every key of `dbs` is in the server with its value and expiry, and nothing else.
fn assert_server_holds(conn: &mut Conn, dbs: &[DumpDb]) {
    for (db, entries) in dbs {
        conn.ok(&[b"SELECT", db.to_string().as_bytes()]);
        assert_eq!(
            conn.cmd(&[b"DBSIZE"]),
            Reply::Int(entries.len() as i64),
            "db {db}"
        );
        for (key, value, expire) in entries {
            assert_eq!(
                conn.cmd(&[b"GET", key]),
                Reply::Bulk(Some(value_text(value))),
                "db {db} key {:?}",
                key.escape_ascii().to_string()
            );
            assert_eq!(
                conn.cmd(&[b"PEXPIRETIME", key]),
                Reply::Int(expire.unwrap_or(-1)),
            );
        }
    }
}

#[test]
fn our_files_pass_redis_check_rdb_and_load_in_redis_server() {
    if !have("redis-server") || !have("redis-check-rdb") {
        return;
    }
    let dbs = sample_keyspace();
    for compress in [true, false] {
        let dir = TempDir::new("ours");
        let file = encode_dump(&dbs, compress, true).unwrap();
        std::fs::write(dir.0.join("dump.rdb"), &file).unwrap();

        let check = Command::new("redis-check-rdb")
            .arg(dir.0.join("dump.rdb"))
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success() && report.contains("RDB looks OK"),
            "redis-check-rdb (compress {compress}):\n{report}{}",
            String::from_utf8_lossy(&check.stderr)
        );

        let server = RedisServer::start(&dir.0, "dump.rdb");
        let mut conn = server.connect().unwrap();
        assert_server_holds(&mut conn, &dbs);
        conn.ok(&[b"SELECT", b"0"]);
        assert_eq!(
            conn.cmd(&[b"OBJECT", b"ENCODING", b"int16"]),
            Reply::Bulk(Some(b"int".to_vec()))
        );
    }
}

/// The keyspace loaded from `file`, grouped by database in file order, ready to be
/// written again, and the load summary (AUX fields).
fn reload(file: &[u8]) -> (Vec<DumpDb>, LoadSummary) {
    let mut dbs: Vec<DumpDb> = Vec::new();
    let summary = rdb::load(file, &LoadOptions::default(), |record| {
        match record {
            Record::SelectDb(db) => dbs.push((db, Vec::new())),
            Record::Entry {
                db,
                key,
                value,
                expire_ms,
                ..
            } => {
                let current = dbs.last_mut().expect("SELECTDB before keys");
                assert_eq!(current.0, db);
                current.1.push((key.to_vec(), value, expire_ms));
            }
            _ => {}
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (dbs, summary)
}

#[test]
fn redis_server_files_load_and_are_reproduced_byte_for_byte() {
    if !have("redis-server") {
        return;
    }
    let dbs = sample_keyspace();
    let dir = TempDir::new("theirs");
    let server = RedisServer::start(&dir.0, "dump.rdb");
    let mut conn = server.connect().unwrap();
    for (db, entries) in &dbs {
        conn.ok(&[b"SELECT", db.to_string().as_bytes()]);
        for (key, value, expire) in entries {
            conn.ok(&[b"SET", key, &value_text(value)]);
            if let Some(ms) = expire {
                assert_eq!(
                    conn.cmd(&[b"PEXPIREAT", key, ms.to_string().as_bytes()]),
                    Reply::Int(1)
                );
            }
        }
    }
    for compress in [true, false] {
        let setting: &[u8] = if compress { b"yes" } else { b"no" };
        conn.ok(&[b"CONFIG", b"SET", b"rdbcompression", setting]);
        conn.ok(&[b"SAVE"]);
        let theirs = std::fs::read(dir.0.join("dump.rdb")).unwrap();

        let (loaded, summary) = reload(&theirs);
        let aux = summary.aux;
        let aux_keys: Vec<&[u8]> = aux.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(
            aux_keys,
            [
                &b"redis-ver"[..],
                b"redis-bits",
                b"ctime",
                b"used-mem",
                b"aof-base"
            ]
        );
        assert_eq!(aux[0].1, b"7.0.15");
        // Same keyspace, in redis-server's hash order.
        let sorted = |dbs: &[DumpDb]| {
            let mut all: Vec<_> = dbs
                .iter()
                .flat_map(|(db, e)| {
                    e.iter()
                        .map(move |(k, v, x)| (*db, k.clone(), value_text(v), *x))
                })
                .collect();
            all.sort();
            all
        };
        assert_eq!(sorted(&loaded), sorted(&dbs));

        let aux: Vec<(&[u8], AuxValue<'_>)> = aux
            .iter()
            .map(|(k, v)| (k.as_slice(), AuxValue::Str(v)))
            .collect();
        let ours = rdb::encode_dump_with_aux(&loaded, &aux, compress, true).unwrap();
        // With compression on, redis-server stored the compressible strings (the long
        // key, "lzf", "32-bit", "len 63") as LZF, so the comparison covers liblzf output.
        let mut lzf_value = Vec::new();
        rdb::Encoder::new(true).write_string(&mut lzf_value, &b"0123456789abcdef".repeat(40));
        assert_eq!(lzf_value[0], 0xc3);
        assert_eq!(
            theirs.windows(lzf_value.len()).any(|w| w == lzf_value),
            compress
        );
        assert!(
            ours == theirs,
            "compress {compress}: our file differs from redis-server's at byte {:?}",
            ours.iter().zip(&theirs).position(|(a, b)| a != b)
        );
    }
}
