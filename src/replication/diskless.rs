//! Diskless full sync (`repl-diskless-sync yes`): a forkless cut streamed straight to the
//! sockets of the replicas that wait for it, in Redis's EOF-marker form, with no file on
//! disk.
//!
//! The snapshot machinery runs the cut as for BGSAVE (`snapshot::Op::ReplSync`): shards
//! serialize slices of their cut into chunks, the snapshot writer thread
//! (`percore_persist::file::ChunkWriter`) takes them in order, and its target here,
//! [`SocketTarget`], sends them instead of writing a file:
//!
//! - First, once the stream of effects reached the cut (`primary::Feed::cut` queued each
//!   replica's `+FULLRESYNC <replid> <offset>`), each replica gets that line and
//!   `$EOF:<40 random hex chars>\r\n`; then the RDB bytes; then the same 40 characters.
//! - Bytes are gathered into one buffer of at most [`DISKLESS_SEND_BUFFER_BYTES`] and sent
//!   to every replica at once through the target's own io_uring (one `IORING_OP_SEND` per
//!   replica, each linked to a `repl-timeout` timeout); the next buffer is gathered only
//!   when every replica took the last one. A slow replica so slows the writer, whose
//!   bounded queue then refuses the shards' chunks, and the shards pause their
//!   serializers: memory stays bounded whatever the replica's speed.
//! - A replica whose send fails or times out is dropped (it reconnects); the others go
//!   on. With none left the target fails, which ends the cut on every shard.
//!
//! - A replica on the `tls-port` gets the same bytes sealed by its TLS session (the
//!   feeder sends nothing meanwhile): each round its head and the buffer become records
//!   in a buffer of its own (about [`DISKLESS_SEND_BUFFER_BYTES`]), sent as a plain
//!   replica's bytes are.
//!
//! After the transfer the replicas hold the stream buffered since the cut until their
//! first `REPLCONF ACK` (Redis's `repl_start_cmd_stream_on_ack`: a replica reading the
//! EOF-marker form may read past the mark, so nothing may follow it until it loaded).

use crate::server::ServerShared;
use io_uring::{IoUring, opcode, squeue, types};
use percore_persist::file::{FileStats, Target};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of the cut gathered before they go out to every replica in one round of sends:
/// what a diskless sync holds besides the snapshot writer's chunk queue.
pub const DISKLESS_SEND_BUFFER_BYTES: usize = 1 << 20;
/// Bytes gathered for less than this long still go out at the next write: a slow cut
/// (a shard's chunk is 256 KiB) keeps its replicas fed rather than silent.
pub const DISKLESS_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// How often the writer looks whether the stream of effects reached the cut.
const PRELUDE_POLL: Duration = Duration::from_millis(5);
/// `user_data` of the linked timeouts (sends carry the replica's index).
const TIMEOUT_TAG: u64 = u64::MAX;

/// One replica of the sync.
struct Link {
    id: u64,
    fd: OwnedFd,
    /// Its `+FULLRESYNC` line and `$EOF:<mark>\r\n`, sent before the first buffer.
    head: Vec<u8>,
    /// Bytes of `head` + the current buffer (or of `sealed`) sent so far.
    sent: usize,
    live: bool,
    /// A TLS link's session, and this round's records (its head and the buffer, sealed).
    tls: Option<super::primary::Session>,
    sealed: Vec<u8>,
}

impl Link {
    /// Bytes of this round.
    fn total(&self, buf: &[u8]) -> usize {
        if self.tls.is_some() {
            self.sealed.len()
        } else {
            self.head.len() + buf.len()
        }
    }

    /// This round's bytes from `sent` on.
    fn unsent<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        if self.tls.is_some() {
            &self.sealed[self.sent..]
        } else if self.sent < self.head.len() {
            &self.head[self.sent..]
        } else {
            &buf[self.sent - self.head.len()..]
        }
    }
}

/// The snapshot writer's target for a diskless full sync (see the module documentation).
pub struct SocketTarget {
    shared: Arc<ServerShared>,
    save_id: u64,
    ring: IoUring,
    links: Vec<Link>,
    buf: Vec<u8>,
    bytes: u64,
    mark: [u8; 40],
    prelude_done: bool,
    timeout: types::Timespec,
    timeout_dur: Duration,
    started: Instant,
    /// When the last round of sends ended (the first write sends at once).
    last_round: Option<Instant>,
    sends: u64,
}

impl SocketTarget {
    /// A target for the replicas `links` (their ids, a duplicate of each socket, a TLS
    /// link's session) of the save `save_id`, dropping a replica that takes no bytes for
    /// `timeout`.
    pub fn new(
        shared: Arc<ServerShared>,
        save_id: u64,
        links: Vec<(u64, OwnedFd, Option<super::primary::Session>)>,
        timeout: Duration,
    ) -> io::Result<Self> {
        if links.is_empty() {
            return Err(io::Error::other("no replica waits for the sync"));
        }
        // A send and its timeout per replica, all in flight at once.
        let entries = u32::try_from((links.len() * 2).next_power_of_two().max(8))
            .map_err(|_| io::Error::other("too many replicas"))?;
        let ring = IoUring::new(entries)?;
        let mut mark = [0u8; 40];
        mark.copy_from_slice(crate::server::random_hex40().as_bytes());
        Ok(Self {
            shared,
            save_id,
            ring,
            links: links
                .into_iter()
                .map(|(id, fd, tls)| Link {
                    id,
                    fd,
                    head: Vec::new(),
                    sent: 0,
                    live: true,
                    tls,
                    sealed: Vec::new(),
                })
                .collect(),
            buf: Vec::with_capacity(DISKLESS_SEND_BUFFER_BYTES),
            bytes: 0,
            mark,
            prelude_done: false,
            timeout: types::Timespec::new()
                .sec(timeout.as_secs())
                .nsec(timeout.subsec_nanos()),
            timeout_dur: timeout,
            started: Instant::now(),
            last_round: None,
            sends: 0,
        })
    }

    /// Waits until every replica's `+FULLRESYNC` line is known (the stream of effects
    /// reached the cut) and puts it, and the EOF mark's announcement, before its bytes.
    fn prelude(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout_dur;
        let heads = loop {
            if let Some(h) = super::primary::diskless_heads(&self.shared, self.save_id) {
                break h;
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("the stream never reached the sync's cut"));
            }
            std::thread::sleep(PRELUDE_POLL);
        };
        let mut eof = b"$EOF:".to_vec();
        eof.extend_from_slice(&self.mark);
        eof.extend_from_slice(b"\r\n");
        for l in &mut self.links {
            match heads.iter().find(|(id, _)| *id == l.id) {
                Some((_, line)) => {
                    l.head.clone_from(line);
                    l.head.extend_from_slice(&eof);
                }
                None => l.live = false,
            }
        }
        self.prelude_done = true;
        self.drop_dead()
    }

    /// Sends each live replica its head and the buffer, all at once; returns when every
    /// one took all of it or was dropped.
    #[expect(
        unsafe_code,
        reason = "io_uring submission: the kernel reads our buffers"
    )]
    fn send_round(&mut self) -> io::Result<()> {
        if !self.prelude_done {
            self.prelude()?;
        }
        for l in &mut self.links {
            l.sent = 0;
            if let Some(tls) = &l.tls {
                use percore_net::transport::Transport as _;
                let mut plain = std::mem::take(&mut l.head);
                plain.extend_from_slice(&self.buf);
                l.sealed.clear();
                tls.lock()
                    .expect("tls session")
                    .seal(&mut plain, &mut l.sealed);
                if !plain.is_empty() {
                    // An established session takes every byte; one that does not is broken.
                    l.live = false;
                }
            }
        }
        loop {
            let mut in_flight = 0;
            for (i, l) in self.links.iter().enumerate() {
                if !l.live || l.sent >= l.total(&self.buf) {
                    continue;
                }
                let bytes = l.unsent(&self.buf);
                let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                let send = opcode::Send::new(types::Fd(l.fd.as_raw_fd()), bytes.as_ptr(), len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data(i as u64);
                let timeout = opcode::LinkTimeout::new(&raw const self.timeout)
                    .build()
                    .user_data(TIMEOUT_TAG);
                // SAFETY: the buffers (`head`, `buf`) and the timespec live in `self`,
                // unchanged until every completion of this round was reaped below.
                unsafe {
                    let mut sq = self.ring.submission();
                    sq.push(&send).map_err(|_| io::Error::other("ring full"))?;
                    sq.push(&timeout)
                        .map_err(|_| io::Error::other("ring full"))?;
                }
                in_flight += 2;
            }
            if in_flight == 0 {
                break;
            }
            self.sends += (in_flight / 2) as u64;
            let mut reaped = 0;
            while reaped < in_flight {
                match self.ring.submit_and_wait(1) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) => return Err(e),
                }
                for cqe in self.ring.completion() {
                    reaped += 1;
                    if cqe.user_data() == TIMEOUT_TAG {
                        continue;
                    }
                    let l = &mut self.links[cqe.user_data() as usize];
                    match cqe.result() {
                        n if n > 0 => l.sent += n as usize,
                        n if n == -libc::EINTR || n == -libc::EAGAIN => {}
                        n => {
                            let why = if n == -libc::ECANCELED {
                                "timeout".to_owned()
                            } else {
                                io::Error::from_raw_os_error(-n).to_string()
                            };
                            self.shared.warning(&format!(
                                "Diskless rdb transfer to replica {} failed: {why}",
                                l.id
                            ));
                            l.live = false;
                        }
                    }
                }
            }
        }
        self.drop_dead()?;
        for l in &mut self.links {
            l.head.clear();
            l.sealed.clear();
        }
        self.buf.clear();
        self.last_round = Some(Instant::now());
        Ok(())
    }

    /// Forgets the replicas that failed; an error when none is left.
    fn drop_dead(&mut self) -> io::Result<()> {
        for l in self.links.iter().filter(|l| !l.live) {
            super::primary::drop_replica(&self.shared, l.id);
        }
        self.links.retain(|l| l.live);
        if self.links.is_empty() {
            return Err(io::Error::other("every replica of the sync is gone"));
        }
        Ok(())
    }
}

impl Target for SocketTarget {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = (DISKLESS_SEND_BUFFER_BYTES - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            self.bytes += n as u64;
            bytes = &bytes[n..];
            let stale = self
                .last_round
                .is_none_or(|t| t.elapsed() >= DISKLESS_FLUSH_INTERVAL);
            if self.buf.len() == DISKLESS_SEND_BUFFER_BYTES || stale {
                self.send_round()?;
            }
        }
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }

    fn path(&self) -> &std::path::Path {
        std::path::Path::new("")
    }

    fn finish(mut self) -> io::Result<FileStats> {
        let mark = self.mark;
        self.buf.extend_from_slice(&mark);
        self.send_round()?;
        self.shared.notice(&format!(
            "Diskless rdb transfer, done sending, {} replicas still up.",
            self.links.len()
        ));
        Ok(FileStats {
            bytes: self.bytes,
            direct: false,
            elapsed: self.started.elapsed(),
            write_ops: self.sends,
        })
    }

    fn abort(self) {
        // The replicas' links are closed by whoever cancelled the sync.
    }
}
