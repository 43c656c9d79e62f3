//! Test harness shared by the end-to-end tests: start a real `percore-server` (or a real
//! `redis-server`) on a free 127.0.0.1 port, talk to it with raw RESP, and stop it on drop.
//!
//! Every wait here is bounded; a server that does not come up fails the test with its own
//! output in the panic message.

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

pub mod pki;

use percore_net::resp::{Frame, decode_frame};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any single read or write on a test connection may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ports to try before giving up on starting a server.
const START_ATTEMPTS: usize = 5;

/// Ports handed out in this process. A server refuses a port another one listens on (and
/// the start is retried on another port); never handing a port out twice within one test
/// binary avoids those retries.
static USED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static LOG_SEQ: AtomicU64 = AtomicU64::new(0);

/// A port that was free a moment ago and that this process has not used before.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        let mut used = USED_PORTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if used.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no fresh free port found in 100 tries");
}

/// Which server a [`Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Percore,
    Redis,
}

/// A running server process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    kind: Kind,
    /// A scratch `--dir` made for this server (removed on drop) when the test gave none.
    own_dir: Option<PathBuf>,
    /// The server's `--dir` (its own or the test's).
    dir: PathBuf,
}

/// The name of this test binary without cargo's hash (`conn_epoll` for
/// `conn_epoll-0123abcd`).
fn test_binary() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| {
                p.file_name()?
                    .to_str()?
                    .split('-')
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    })
}

/// The `--io-backend` percore servers of this test binary run on, when not the default:
/// `PERCORE_TEST_IO_BACKEND`, else `epoll` in the `*_epoll` binaries (which include a test
/// file of the same name without the suffix, so its tests run on both backends).
pub fn io_backend() -> Option<&'static str> {
    static BACKEND: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *BACKEND.get_or_init(|| {
        if let Ok(b) = std::env::var("PERCORE_TEST_IO_BACKEND") {
            return Some(b.leak());
        }
        test_binary().ends_with("_epoll").then_some("epoll")
    })
}

/// Whether this binary's percore servers start where io_uring is refused: the `*_seccomp`
/// binaries (a test file again, under [`refuse_io_uring`], with `io-backend auto`).
pub fn io_uring_refused() -> bool {
    test_binary().ends_with("_seccomp")
}

/// Installs (in a child between fork and exec) a seccomp filter that makes
/// `io_uring_setup` fail with EPERM and allows every other call, as Docker's default
/// profile does. It holds for the process and everything it forks.
#[expect(
    unsafe_code,
    reason = "prctl with a BPF program, run in a pre_exec hook"
)]
pub fn refuse_io_uring() -> std::io::Result<()> {
    // `struct seccomp_data`: the call's number at offset 0, its audit architecture at 4.
    const NR_OFFSET: u32 = 0;
    const ARCH_OFFSET: u32 = 4;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    // Classic BPF opcodes: load a word at an absolute offset, jump if equal, return.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let program = [
        op(LD_W_ABS, 0, 0, ARCH_OFFSET),
        // Another ABI (x32, compat): not ours to judge, allow.
        op(JEQ_K, 0, 3, AUDIT_ARCH),
        op(LD_W_ABS, 0, 0, NR_OFFSET),
        op(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments, then with a pointer to a program that outlives
    // the call (the kernel copies it).
    unsafe {
        // Variadic: every argument is passed as the `unsigned long` the kernel reads.
        let zero: libc::c_ulong = 0;
        if libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            zero,
            zero,
            zero,
        ) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::c_ulong::from(libc::SECCOMP_MODE_FILTER),
                &raw const prog,
                zero,
                zero,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In [`Server::percore_env`]'s environment: start the server under [`refuse_io_uring`]
/// (the variable itself is harmless to the server).
pub const REFUSE_IO_URING: (&str, &str) = ("PERCORE_TEST_REFUSE_IO_URING", "1");

/// A fresh empty directory under the system temp dir (the caller removes it).
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "percore-test-{tag}-{}-{}",
        std::process::id(),
        LOG_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

impl Server {
    /// Starts `percore-server --port P --bind 127.0.0.1 --save ''` plus `extra`.
    pub fn percore(extra: &[&str]) -> Self {
        Self::start(Kind::Percore, extra, &[])
    }

    /// [`Server::percore`] with extra environment variables (e.g. the reactor's
    /// `PERCORE_NO_*` switches).
    pub fn percore_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start(Kind::Percore, extra, env)
    }

    /// Starts `percore-server --threads N`.
    pub fn percore_threads(threads: usize) -> Self {
        let n = threads.to_string();
        Self::start(Kind::Percore, &["--threads", &n], &[])
    }

    /// Starts a real `redis-server` for differential tests, or returns `None` (after a
    /// printed notice) when it is not installed. With `PERCORE_REQUIRE_REDIS=1` a missing
    /// `redis-server` is a failure instead.
    pub fn redis() -> Option<Self> {
        Self::redis_with(&[])
    }

    /// [`Server::redis`] with extra arguments (e.g. `--dir`, `--dbfilename`).
    pub fn redis_with(extra: &[&str]) -> Option<Self> {
        Self::redis_env(extra, &[])
    }

    /// [`Server::redis_with`] with extra environment variables (e.g. `LC_ALL=C`, so that
    /// SORT ALPHA's `strcoll` compares bytes as percore does).
    pub fn redis_env(extra: &[&str], env: &[(&str, &str)]) -> Option<Self> {
        if !redis_server_available() {
            assert!(
                std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server not found, and PERCORE_REQUIRE_REDIS=1 requires it"
            );
            println!("skipping: redis-server not found");
            return None;
        }
        Some(Self::start(Kind::Redis, extra, env))
    }

    /// Starts `percore-server` on `port` (one attempt: the test chose the port, e.g. to
    /// restart a server or to name it in another server's configuration).
    pub fn percore_at(port: &str, extra: &[&str]) -> Self {
        let port = port.parse().expect("a port number");
        match Self::try_start(Kind::Percore, port, extra, &[]) {
            Ok(server) => server,
            Err(why) => panic!("percore server did not start on port {port}: {why}"),
        }
    }

    /// The server's `--dir`.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn start(kind: Kind, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(kind, free_port(), extra, env) {
                Ok(server) => return server,
                Err(why) => {
                    use std::fmt::Write as _;
                    let _ = write!(failures, "\n--- attempt {attempt}: {why}");
                }
            }
        }
        panic!("{kind:?} server did not start after {START_ATTEMPTS} attempts:{failures}");
    }

    /// Starts a server on `port`; on failure the reason with the server's output.
    fn try_start(
        kind: Kind,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let log = std::env::temp_dir().join(format!(
            "percore-test-{}-{}-{port}.log",
            std::process::id(),
            LOG_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let out = File::create(&log).expect("create server log file");
        let err = out.try_clone().expect("clone log file handle");
        let mut cmd = match kind {
            Kind::Percore => Command::new(env!("CARGO_BIN_EXE_percore-server")),
            Kind::Redis => Command::new("redis-server"),
        };
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        if kind == Kind::Redis {
            cmd.args(["--appendonly", "no", "--daemonize", "no"]);
        } else {
            // DEBUG and CONFIG SET dir/dbfilename, which the tests use, are off by
            // default as in Redis; a test server allows them (Redis's own suite does too).
            // A test of the defaults passes `--enable-debug-command no`.
            cmd.args([
                "--enable-debug-command",
                "yes",
                "--enable-protected-configs",
                "yes",
            ]);
        }
        if kind == Kind::Percore
            && !extra.contains(&"--io-backend")
            && let Some(backend) = io_backend()
        {
            cmd.args(["--io-backend", backend]);
        }
        // Every percore server gets its own `dir`, so no test loads or overwrites a
        // dump of another (or one left in the working directory).
        let own_dir = (!extra.contains(&"--dir")).then(|| scratch_dir("dir"));
        if let Some(d) = &own_dir {
            cmd.args(["--dir", d.to_str().expect("utf-8 temp path")]);
        }
        let dir = own_dir.clone().unwrap_or_else(|| {
            let at = extra
                .iter()
                .position(|a| *a == "--dir")
                .expect("--dir given");
            PathBuf::from(extra[at + 1])
        });
        // A tag in the environment finds every process that shares the server's memory
        // image (`processes_sharing_env`): its fork children and their helpers.
        cmd.env(SERVER_TAG_VAR, log.file_name().expect("log file name"));
        cmd.envs(env.iter().copied());
        if kind == Kind::Percore && (io_uring_refused() || env.contains(&REFUSE_IO_URING)) {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: the hook only makes two prctl calls (async-signal-safe).
            #[expect(unsafe_code, reason = "pre_exec hook")]
            unsafe {
                cmd.pre_exec(refuse_io_uring);
            }
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {kind:?} server: {e}"));
        let mut server = Server {
            child,
            port,
            log,
            kind,
            own_dir,
            dir,
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            // Drop stops the process and removes the log.
            Err(why) => Err(format!("on port {port}: {why}\n{}", server.output())),
        }
    }

    /// Polls with PING until the server answers `+PONG` (or `-NOAUTH`), it exits, or time
    /// runs out.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("server exited early with {status}"));
            }
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 64];
                // A server with `requirepass` answers NOAUTH: it is up as well.
                if c.write_all(b"PING\r\n").is_ok()
                    && let Ok(n) = c.read(&mut buf)
                    && (buf[..n].starts_with(b"+PONG\r\n") || buf[..n].starts_with(b"-NOAUTH"))
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no PONG within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `redis://127.0.0.1:P/` for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new raw RESP connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// A new `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("redis client");
        let con = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .expect("redis connection");
        con.set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        con.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        con
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {:?} server on port {} output:\n{}",
                self.kind,
                self.port,
                self.output()
            );
        }
        if self.child.try_wait().ok().flatten().is_none() {
            // `kill` the command, not libc: the workspace denies unsafe code.
            let termed = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            // Without a SIGTERM sent there is nothing to wait for: SIGKILL at once.
            let deadline = Instant::now() + if termed { STOP_TIMEOUT } else { Duration::ZERO };
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if self.child.try_wait().ok().flatten().is_none() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
        if let Some(d) = &self.own_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Whether `redis-server` can be run.
pub fn redis_server_available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Splits a line into arguments; `"..."` quotes one (`""` is empty).
pub fn split_args(line: &str) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return args;
        };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                arg.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg.into_bytes());
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn encode_cmd<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw RESP connection: send any bytes, read exactly one reply frame at a time.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Sends one command as a multibulk request.
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send(&encode_cmd(args));
    }

    /// Reads exactly one reply frame and returns its raw bytes.
    pub fn read_raw(&mut self) -> Vec<u8> {
        loop {
            match decode_frame(&self.buf) {
                Ok(Some((_, used))) => return self.buf.drain(..used).collect(),
                Ok(None) => {}
                Err(e) => panic!(
                    "server sent an undecodable reply ({e}): {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("reading a reply: {e}; have {:?}", show(&self.buf)));
            assert!(
                n > 0,
                "connection closed while waiting for a reply; have {:?}",
                show(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads exactly one reply frame.
    pub fn read_frame(&mut self) -> Frame {
        let raw = self.read_raw();
        decode_frame(&raw).expect("decodes").expect("complete").0
    }

    /// Sends one command and returns its raw reply.
    pub fn cmd_raw<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send_cmd(args);
        self.read_raw()
    }

    /// Sends one command and returns its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        self.send_cmd(args);
        self.read_frame()
    }

    /// Asserts that the server closes the connection (after any bytes still buffered).
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unread reply bytes before close: {:?}",
            show(&self.buf)
        );
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected the server to close the connection, got {:?}",
                show(&chunk[..n])
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the server to close the connection, got error {e}"),
        }
    }

    /// Closes the write side, keeping the read side open.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// Bytes as text for messages (lossy, truncated to 300 characters).
pub fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], bytes.len())
    } else {
        s.into_owned()
    }
}

/// A bulk string frame.
pub fn bulk(s: impl AsRef<[u8]>) -> Frame {
    Frame::Bulk(s.as_ref().to_vec())
}

/// A simple string frame.
pub fn simple(s: &str) -> Frame {
    Frame::Simple(s.as_bytes().to_vec())
}

/// An error frame.
pub fn err(s: &str) -> Frame {
    Frame::Error(s.as_bytes().to_vec())
}

/// `+OK`.
pub fn ok() -> Frame {
    simple("OK")
}

/// One field of `INFO <section>` (panics when absent).
pub fn info_field(c: &mut Conn, section: &str, field: &str) -> String {
    let Frame::Bulk(text) = c.cmd(&["INFO", section]) else {
        panic!("INFO is not a bulk string");
    };
    let text = String::from_utf8(text).expect("utf-8 INFO");
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("INFO {section} lacks {field}:\n{text}"))
}

/// Snapshot temp files (`temp-*.rdb`) in `dir`.
pub fn temp_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("temp-")
                    && std::path::Path::new(n)
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("rdb"))
            })
        })
        .collect()
}

/// Child processes of `pid` (from /proc).
/// Environment variable holding each test server's unique tag.
const SERVER_TAG_VAR: &str = "PERCORE_TEST_SERVER_TAG";

/// Live processes other than `server` whose environment block is the server's (it carries
/// the server's unique tag): fork children and processes cloned from them, whether or not
/// they are still the server's children. A zombie has no environment and is not listed.
pub fn processes_sharing_env(server: u32) -> Vec<u32> {
    let Ok(own) = std::fs::read(format!("/proc/{server}/environ")) else {
        return Vec::new();
    };
    let tag = own
        .split(|&b| b == 0)
        .find(|v| v.starts_with(SERVER_TAG_VAR.as_bytes()))
        .expect("test servers carry a tag")
        .to_vec();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != server)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == tag.as_slice()))
        })
        .collect()
}

pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Starts a BGSAVE in `method` (`fork` or `forkless`) slowed by `rdb-key-save-delay`
/// `key_delay_us`, asserting Redis's reply.
pub fn start_slow_bgsave(c: &mut Conn, method: &str, key_delay_us: u32) {
    let delay = key_delay_us.to_string();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", &delay]),
        ok()
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "default-bgsave-method", method]),
        ok()
    );
    assert_eq!(c.cmd(&["BGSAVE"]), simple("Background saving started"));
}

/// A differential test's command as a failure message prints it: arguments quoted when
/// empty or holding a space.
pub fn command_line<A: AsRef<str>>(args: &[A]) -> String {
    args.iter()
        .map(|a| {
            let a = a.as_ref();
            if a.is_empty() || a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts that percore's reply equals redis-server's, else fails with `what` (seed,
/// command) and the run so far; then adds the command to `history`.
pub fn assert_same_reply(want: &[u8], got: &[u8], what: &str, line: &str, history: &mut String) {
    use std::fmt::Write as _;
    let encoding = line.len() > 15 && line[..15].eq_ignore_ascii_case("OBJECT ENCODING");
    assert!(
        want == got || (encoding && small_form_as_7_0(got, want)),
        "{what}: {line}\n    redis:   {:?}\n    percore: {:?}\nhistory (command -> redis reply):\n{history}",
        show(want),
        show(got)
    );
    let _ = writeln!(history, "  {what} {line} -> {:?}", show(want));
}

/// Whether percore's OBJECT ENCODING reply `percore` is the Valkey 8 name of the form
/// redis-server 7.0 reports as `redis`: a small list or set of strings is a `listpack`
/// in Valkey (and percore: tests/encodings_valkey.rs compares those with the Valkey
/// peer), a `quicklist` / `hashtable` in Redis 7.0.
pub fn small_form_as_7_0(percore: &[u8], redis: &[u8]) -> bool {
    percore == b"$8\r\nlistpack\r\n"
        && (redis == b"$9\r\nquicklist\r\n" || redis == b"$9\r\nhashtable\r\n")
}

/// An OBJECT ENCODING reply as [`show`] prints it, with Valkey's `listpack` of a list or
/// set (`type_reply`: TYPE's reply, shown) renamed as redis-server 7.0 names that form,
/// for tests that compare with 7.0.
pub fn encoding_as_7_0(type_reply: &str, encoding: String) -> String {
    let listpack = show(b"$8\r\nlistpack\r\n");
    if encoding != listpack {
        encoding
    } else if type_reply == show(b"+list\r\n") {
        show(b"$9\r\nquicklist\r\n")
    } else if type_reply == show(b"+set\r\n") {
        show(b"$9\r\nhashtable\r\n")
    } else {
        encoding
    }
}

/// splitmix64: small, fast and reproducible from its seed. Shared by the random and
/// differential tests, so each keeps its sequence for a given seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// `redis-check-rdb` accepts `file` (skipped with a notice when it is not installed,
/// unless PERCORE_REQUIRE_REDIS=1).
pub fn check_rdb(file: &std::path::Path) {
    if !redis_server_available() {
        assert!(
            std::env::var("PERCORE_REQUIRE_REDIS").as_deref() != Ok("1"),
            "redis-check-rdb needed"
        );
        println!("skipping redis-check-rdb: redis tools not installed");
        return;
    }
    let out = Command::new("redis-check-rdb")
        .arg(file)
        .output()
        .expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RDB looks OK"),
        "redis-check-rdb refused {}: {text}",
        file.display()
    );
}

/// Runs percore on `dir` expecting it to refuse to start (a corrupt dump, say); returns
/// what it printed.
pub fn start_fails(dir: &std::path::Path) -> String {
    let port = free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
        ])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run percore-server");
    assert!(!out.status.success(), "percore started on a corrupt dump");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `../shared/peers/valkey/valkey-server` on a free port with `--dir dir` (no
/// save points) and connects; `None` (after a notice) when that build is absent.
#[allow(
    clippy::zombie_processes,
    reason = "the child is returned: the caller kills and waits for it"
)]
pub fn start_valkey(dir: &std::path::Path) -> Option<(std::process::Child, Conn)> {
    let valkey = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/peers/valkey/valkey-server");
    if !valkey.exists() {
        println!("skipping: {} not found", valkey.display());
        return None;
    }
    let port = free_port();
    let mut child = Command::new(&valkey)
        .args(["--port", &port.to_string(), "--save", ""])
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start valkey-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, Conn::connect(port)));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("valkey-server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long [`wait_until`] waits before failing the test.
pub const WAIT_UNTIL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `f` every 5 ms until it holds; fails the test after [`WAIT_UNTIL_TIMEOUT`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT_UNTIL_TIMEOUT;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A path as a command-line argument.
pub fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8")
}

/// `clients` connections at once, each sending `pipelines` pipelines of 40 writes whose
/// keys span every shard and overlap between clients (so their transactions wait for each
/// other's locks): MSET, MSETNX, DEL, RENAME, single-key writes and MULTI/EXEC blocks,
/// half of the pipelines in database `other_db`. Every reply is read; none may be an
/// error other than RENAME's missing source. For the stream of effects (AOF,
/// replication): the result must replay to the same data.
pub fn cross_shard_write_storm(port: u16, clients: usize, pipelines: usize, other_db: &str) {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let other_db = other_db.to_owned();
            std::thread::spawn(move || {
                let mut rng = Rng(0x5eed + c as u64);
                let mut conn = Conn::connect(port);
                for p in 0..pipelines {
                    let mut batch: Vec<Vec<String>> = Vec::new();
                    let db = if rng.chance(50) {
                        other_db.as_str()
                    } else {
                        "0"
                    };
                    batch.push(vec!["SELECT".into(), db.into()]);
                    while batch.len() < 40 {
                        storm_command(&mut rng, &format!("c{c}p{p}n{}", batch.len()), &mut batch);
                    }
                    let mut bytes = Vec::new();
                    for cmd in &batch {
                        bytes.extend_from_slice(&encode_cmd(cmd));
                    }
                    conn.send(&bytes);
                    for cmd in &batch {
                        let reply = conn.read_raw();
                        assert!(
                            !reply.starts_with(b"-") || cmd[0] == "RENAME",
                            "{cmd:?}: {}",
                            show(&reply)
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a storm client");
    }
}

/// Appends one write of [`cross_shard_write_storm`] (a MULTI block is several requests).
fn storm_command(rng: &mut Rng, val: &str, batch: &mut Vec<Vec<String>>) {
    let s = |rng: &mut Rng| format!("s:{}", rng.below(30));
    let owned = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    match rng.below(10) {
        0..=2 => {
            let mut v = vec!["MSET".to_owned()];
            for _ in 0..2 + rng.below(3) {
                v.push(s(rng));
                v.push(val.to_owned());
            }
            batch.push(v);
        }
        3 => batch.push(vec!["DEL".into(), s(rng), s(rng)]),
        4 => batch.push(vec![
            "MSETNX".into(),
            format!("nx:{}", rng.below(60)),
            val.into(),
            format!("nx:{}", rng.below(60)),
            val.into(),
        ]),
        5 => batch.push(vec!["RENAME".into(), s(rng), s(rng)]),
        6 => batch.push(vec!["INCR".into(), format!("n:{}", rng.below(8))]),
        7 => batch.push(vec![
            "RPUSH".into(),
            format!("l:{}", rng.below(8)),
            val.into(),
        ]),
        _ => {
            batch.push(owned(&["MULTI"]));
            batch.push(vec!["INCR".into(), format!("n:{}", rng.below(8))]);
            batch.push(vec!["SET".into(), s(rng), val.into()]);
            batch.push(vec!["MSET".into(), s(rng), val.into(), s(rng), val.into()]);
            batch.push(vec![
                "SADD".into(),
                format!("set:{}", rng.below(8)),
                val.into(),
            ]);
            batch.push(owned(&["EXEC"]));
        }
    }
}
