//! The replica's link thread: connect to the primary, handshake (PING, AUTH, REPLCONF
//! listening-port / capa eof psync2, PSYNC), and on +FULLRESYNC receive the RDB into a
//! temp file and load it into fresh keyspaces. Shard 0 takes the result (see `super`).
//! Blocking sockets with `repl-timeout` on every read: this thread serves no clients, so
//! it may wait. With `tls-replication yes` the socket speaks TLS through a rustls client
//! session ([`Stream::Tls`]), which moves to the reactor with the socket when the stream
//! starts (`super::take_stream`).

use super::config::Primary;
use super::{FullSync, Link, Ready};
use crate::server::ServerShared;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Longest line the handshake accepts from the primary (a reply, or `$len`).
pub const HANDSHAKE_LINE_MAX_BYTES: usize = 4096;
/// Read size while receiving the RDB payload.
const TRANSFER_CHUNK_BYTES: usize = 64 * 1024;
/// The EOF mark of a diskless transfer (`$EOF:<mark>`).
const EOF_MARK_BYTES: usize = 40;

/// What one link attempt needs.
pub struct Params {
    pub generation: u64,
    pub primary: Primary,
    pub masterauth: String,
    pub masteruser: String,
    pub listening_port: u16,
    pub timeout_s: u32,
    pub dir: PathBuf,
    pub dbfilename: String,
    pub install_as_dump: bool,
    pub shards: usize,
    pub databases: usize,
    pub slot_index: bool,
    /// The replica's sorted-set encoding limits, for the loaded sets.
    pub zset_limits: percore_engine::zsets::ZSetLimits,
    /// `(replid, offset)` to offer, or none (`PSYNC ? -1`).
    pub psync: Option<(String, i64)>,
    /// `tls-replication yes`: the `tls-*` options the link's client session is built from.
    pub tls: Option<crate::tls::TlsConfig>,
}

/// The link's bytes: plain TCP, or TLS (`tls-replication yes`).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// For the reactor: the socket, its TLS session if any, and plaintext the session
    /// decrypted that was not read yet (it follows what the link thread read).
    pub fn into_parts(
        self,
    ) -> (
        TcpStream,
        Option<Box<dyn percore_net::transport::Transport>>,
        Vec<u8>,
    ) {
        match self {
            Self::Plain(s) => (s, None, Vec::new()),
            Self::Tls(t) => {
                let (s, session, plain) = crate::tls::into_reactor(*t);
                (s, Some(session), plain)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(t) => t.flush(),
        }
    }
}

/// Starts one link attempt on its own thread; false if no thread could be started. The
/// caller holds the replication lock (the thread takes it only later).
pub fn spawn(shared: Arc<ServerShared>, p: Params) -> bool {
    std::thread::Builder::new()
        .name("percore-repl".into())
        .spawn(move || {
            let generation = p.generation;
            let result = run(&shared, &p);
            let mut st = shared.repl.lock();
            if st.generation != generation {
                return;
            }
            st.thread_running = false;
            match result {
                Ok(ready) => st.ready = Some(ready),
                Err(e) => {
                    st.link = Link::Connect;
                    st.transfer = super::Transfer::default();
                    st.retry_at_ms = percore_net::reactor::unix_ms() + super::LINK_RETRY_MS;
                    drop(st);
                    if !e.is_empty() {
                        shared.warning(&e);
                    }
                }
            }
        })
        .is_ok()
}

fn set_link(shared: &ServerShared, generation: u64, link: Link) -> Result<(), String> {
    let mut st = shared.repl.lock();
    if st.generation != generation {
        // A role change made this attempt moot: end quietly.
        return Err(String::new());
    }
    st.link = link;
    Ok(())
}

/// A socket with a read buffer, for line replies and then raw payload bytes.
struct Conn {
    s: Stream,
    buf: Vec<u8>,
    /// One read's landing space.
    chunk: Vec<u8>,
}

impl Conn {
    fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.s
            .write_all(&out)
            .and_then(|()| self.s.flush())
            .map_err(|e| format!("Error writing to MASTER: {e}"))
    }

    fn fill(&mut self) -> Result<usize, String> {
        match self.s.read(&mut self.chunk) {
            Ok(0) => Err("Master closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&self.chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err("Timeout connecting to the MASTER...".into())
            }
            Err(e) => Err(format!("Failed to read response from the server: {e}")),
        }
    }

    /// One line, ended by `\n` with the `\r` before it dropped (Redis's
    /// `connSyncReadLine`): a primary's keep-alive newline is an empty line.
    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let end = if at > 0 && self.buf[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..=at);
                return Ok(line);
            }
            if self.buf.len() > HANDSHAKE_LINE_MAX_BYTES {
                return Err("Master sent a line too long during the handshake".into());
            }
            self.fill()?;
        }
    }

    fn command(&mut self, args: &[&[u8]]) -> Result<String, String> {
        self.send(args)?;
        self.line()
    }
}

fn run(shared: &Arc<ServerShared>, p: &Params) -> Result<Ready, String> {
    let addr = format!("{}:{}", p.primary.host, p.primary.port);
    shared.notice(&format!("Connecting to MASTER {addr}"));
    let timeout = Duration::from_secs(u64::from(p.timeout_s.max(1)));
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("Unable to connect to MASTER: {e}"))?
        .next()
        .ok_or_else(|| "Unable to connect to MASTER: no address".to_owned())?;
    shared.notice("MASTER <-> REPLICA sync started");
    let s = TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let s = match &p.tls {
        None => Stream::Plain(s),
        Some(tls) => {
            let config = crate::tls::build_client_config(tls)?;
            let link = crate::tls::client_link(Arc::new(config), &p.primary.host, s)?;
            Stream::Tls(Box::new(link))
        }
    };
    let mut c = Conn {
        s,
        buf: Vec::new(),
        chunk: vec![0; TRANSFER_CHUNK_BYTES],
    };
    set_link(shared, p.generation, Link::Handshake)?;

    // PING: an auth error is fine here (AUTH follows), anything else not.
    let pong = c.command(&[b"PING"])?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    shared.notice("Master replied to PING, replication can continue...");
    if !p.masterauth.is_empty() {
        let reply = if p.masteruser.is_empty() {
            c.command(&[b"AUTH", p.masterauth.as_bytes()])?
        } else {
            c.command(&[b"AUTH", p.masteruser.as_bytes(), p.masterauth.as_bytes()])?
        };
        if reply.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {reply}"));
        }
    }
    let port = p.listening_port.to_string();
    let reply = c.command(&[b"REPLCONF", b"listening-port", port.as_bytes()])?;
    if reply.starts_with('-') {
        shared.notice(&format!(
            "(Non critical) Master does not understand REPLCONF listening-port: {reply}"
        ));
    }
    let reply = c.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    if reply.starts_with('-') {
        shared.notice(&format!(
            "(Non critical) Master does not understand REPLCONF capa: {reply}"
        ));
    }
    let (id, off) = if let Some((id, off)) = &p.psync {
        shared.notice(&format!(
            "Trying a partial resynchronization (request {id}:{off})."
        ));
        (id.clone(), off.to_string())
    } else {
        shared.notice("Partial resynchronization not possible (no cached master)");
        ("?".to_owned(), "-1".to_owned())
    };
    c.send(&[b"PSYNC", id.as_bytes(), off.as_bytes()])?;
    let reply = loop {
        // A primary preparing a sync may send bare newlines to keep the link alive.
        let line = c.line()?;
        if !line.is_empty() {
            break line;
        }
    };
    if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let rest = rest.trim();
        let (replid, offset) = match &p.psync {
            Some((old, off)) => (
                if rest.len() == 40 {
                    rest.to_owned()
                } else {
                    old.clone()
                },
                off - 1,
            ),
            None => return Err("Master replied +CONTINUE to PSYNC ? -1".into()),
        };
        shared.notice("Successful partial resynchronization with master.");
        let leftover = std::mem::take(&mut c.buf);
        return Ok(Ready {
            generation: p.generation,
            stream: c.s,
            leftover,
            replid,
            offset,
            full: None,
        });
    }
    let Some(rest) = reply.strip_prefix("+FULLRESYNC ") else {
        if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
            return Err(format!(
                "Master is currently unable to PSYNC but should be in the future: {reply}"
            ));
        }
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    };
    let mut parts = rest.split(' ');
    let replid = parts.next().unwrap_or_default().to_owned();
    let offset: i64 = parts
        .next()
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| format!("Master replied with wrong +FULLRESYNC syntax: {reply}"))?;
    shared.notice(&format!("Full resync from master: {replid}:{offset}"));
    set_link(shared, p.generation, Link::Transfer)?;
    let full = receive_and_load(shared, p, &mut c)?;
    let leftover = std::mem::take(&mut c.buf);
    Ok(Ready {
        generation: p.generation,
        stream: c.s,
        leftover,
        replid,
        offset,
        full: Some(full),
    })
}

/// Receives the RDB payload into `dir/temp-<ms>.<pid>.rdb` and loads it.
fn receive_and_load(
    shared: &Arc<ServerShared>,
    p: &Params,
    c: &mut Conn,
) -> Result<FullSync, String> {
    let header = loop {
        let line = c.line()?;
        if !line.is_empty() {
            break line;
        }
    };
    let Some(len) = header.strip_prefix('$') else {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), are you sure the host and port are right?"
        ));
    };
    let eof_mark = len
        .strip_prefix("EOF:")
        .map(|m| m.as_bytes().to_vec())
        .filter(|m| m.len() == EOF_MARK_BYTES);
    let size: i64 = if eof_mark.is_some() {
        -1
    } else {
        len.parse()
            .ok()
            .filter(|&n: &i64| n >= 0)
            .ok_or_else(|| format!("Bad protocol from MASTER: {header}"))?
    };
    if eof_mark.is_some() {
        shared
            .notice("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk");
    } else {
        shared.notice(&format!(
            "MASTER <-> REPLICA sync: receiving {size} bytes from master to disk"
        ));
    }
    let now = percore_net::reactor::unix_ms();
    let temp_path = p
        .dir
        .join(format!("temp-{}.{}.rdb", now / 1000, std::process::id()));
    let mut file = std::fs::File::create(&temp_path).map_err(|e| {
        format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?;
    let result = transfer(shared, p, c, &mut file, size, eof_mark.as_deref());
    drop(file);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp_path);
        return Err(e);
    }
    set_link(shared, p.generation, Link::Transfer)?;
    let mut functions = Vec::new();
    let loaded = crate::snapshot::load::load_file(
        &temp_path,
        p.shards,
        p.databases,
        p.slot_index,
        percore_net::reactor::unix_ms(),
        crate::server::random_seed(),
        &p.zset_limits,
        &mut functions,
        |l| shared.notice(l),
    );
    match loaded {
        Ok((keyspaces, stats)) => Ok(FullSync {
            keyspaces,
            functions,
            keys_loaded: stats.keys_loaded,
            temp_path,
            install_as_dump: p.install_as_dump && !p.dbfilename.is_empty(),
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&temp_path);
            Err(format!(
                "Failed trying to load the MASTER synchronization DB from disk: {e}"
            ))
        }
    }
}

/// Copies the payload (`size` bytes, or up to the EOF mark) from the socket to `file`.
fn transfer(
    shared: &ServerShared,
    p: &Params,
    c: &mut Conn,
    file: &mut std::fs::File,
    size: i64,
    eof_mark: Option<&[u8]>,
) -> Result<(), String> {
    let write_err = |e: std::io::Error| {
        format!(
            "Write error or short write writing to the DB dump file needed for MASTER <-> REPLICA synchronization: {e}"
        )
    };
    let mut written: u64 = 0;
    // With an EOF mark, the last 40 bytes seen are held back until more arrive.
    loop {
        let progress = |read: u64| {
            let mut st = shared.repl.lock();
            if st.generation == p.generation {
                st.transfer = super::Transfer {
                    size,
                    read,
                    last_io_ms: percore_net::reactor::unix_ms(),
                };
            }
        };
        if let Some(mark) = eof_mark {
            if c.buf.len() >= mark.len() && c.buf.ends_with(mark) {
                let body = c.buf.len() - mark.len();
                file.write_all(&c.buf[..body]).map_err(write_err)?;
                c.buf.clear();
                file.sync_all().map_err(write_err)?;
                return Ok(());
            }
            let keep = mark.len().min(c.buf.len());
            let body = c.buf.len() - keep;
            if body > 0 {
                file.write_all(&c.buf[..body]).map_err(write_err)?;
                written += body as u64;
                c.buf.drain(..body);
                progress(written);
            }
        } else {
            let want = (size as u64 - written) as usize;
            let take = want.min(c.buf.len());
            if take > 0 {
                file.write_all(&c.buf[..take]).map_err(write_err)?;
                written += take as u64;
                c.buf.drain(..take);
                progress(written);
            }
            if written == size as u64 {
                file.sync_all().map_err(write_err)?;
                return Ok(());
            }
        }
        if shared.repl.lock().generation != p.generation {
            return Err(String::new());
        }
        c.fill()
            .map_err(|e| format!("I/O error trying to sync with MASTER: {e}"))?;
    }
}
