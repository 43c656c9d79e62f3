//! MIGRATE: DUMP payloads sent as RESTORE (RESTORE-ASKING in cluster mode) to another
//! server, over a connection cached per `host:port`, keys deleted once the target
//! acknowledged them (Redis 7.0's `migrateCommand`, `migrateGetSocket`,
//! `migrateCloseTimedoutSockets`).
//!
//! **Who waits where.** The shard loop never waits on the network. The network side runs
//! on one server-wide thread ([`Worker`], started at the first MIGRATE) with blocking
//! sockets and the command's timeout, as Redis's synchronous I/O: it owns the socket
//! cache (at most [`SOCKET_CACHE_ITEMS`], closed after [`SOCKET_CACHE_TTL`] unused), so
//! `migrate_cached_sockets` and the `SELECT` elision (`last_dbid`) are the server's, as in
//! Redis. One thread serializes all migrations of the server, as Redis's one thread does;
//! a helper thread was chosen over io_uring connect/send/recv on the shard's ring because
//! a migration is rare, its cost is the payloads (serialized on the shards either way),
//! and the shard loop stays free of a second kind of socket.
//!
//! **Steps of one MIGRATE** (client's shard `C`, keys on any shards):
//! 1. `C` checks the arguments (Redis's order and texts), reads its own keys (payload and
//!    expiry time) and mails [`Mail::Dump`] to each other shard owning some; they answer
//!    [`Mail::Dumped`]. No key anywhere: `+NOKEY`.
//! 2. The job goes to the worker; the client's reply slot waits (later requests wait
//!    behind it), the shard polls the worker's answers every [`POLL`] while any job is out.
//! 3. The keys the target acknowledged are deleted unless COPY: `C`'s own at once, the
//!    others by [`Mail::Delete`] / [`Mail::Deleted`]. Each deletion is logged as `DEL` in
//!    the stream of effects (Redis rewrites MIGRATE as DEL), signals watchers and fires
//!    `del`. Then the reply.
//!
//! **Atomicity.** Each shard reads its keys in one go, and deletes them in one go; the
//! reads of different shards and the deletion are not one atomic step (Redis blocks the
//! whole server instead). A key is deleted only if it still holds the value that was sent
//! (its payload is compared): a write that lands while the key travels is kept, as if it
//! came after the MIGRATE. README "Known differences".

use crate::client::{Client, Pending, ReplyMode};
use crate::shard::{Msg, ShardData};
use percore_net::reactor::{ConnId, Io};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Most cached target connections (`MIGRATE_SOCKET_CACHE_ITEMS`); one is dropped when a
/// new target would exceed it.
pub const SOCKET_CACHE_ITEMS: usize = 64;
/// A cached connection unused this long is closed (`MIGRATE_SOCKET_CACHE_TTL`, checked
/// once a second as Redis's cron does).
pub const SOCKET_CACHE_TTL: Duration = Duration::from_secs(10);
/// The command is written to the target in chunks of this size (Redis's 64 KiB).
const WRITE_CHUNK_BYTES: usize = 64 * 1024;
/// Longest reply line read from the target; a longer one is a protocol error (Redis
/// reads replies into 1 KiB buffers).
const REPLY_LINE_MAX_BYTES: usize = 64 * 1024;
/// Jobs waiting for the worker; beyond it MIGRATE answers an IOERR at once.
const JOB_QUEUE_MAX: usize = 4096;
/// How often a shard with a job at the worker looks for its answer.
pub const POLL: Duration = Duration::from_millis(1);

/// MIGRATE inside MULTI/EXEC or a script: its reply cannot wait for the network there.
pub const NOT_IN_TRANSACTION: &str = "ERR MIGRATE is not supported inside MULTI/EXEC or scripts";

const IOERR_CONNECT: &str = "-IOERR error or timeout connecting to the client\r\n";

// ---------------------------------------------------------------------------------------
// Arguments

/// MIGRATE's parsed arguments.
pub struct Args {
    pub host: String,
    pub port: Vec<u8>,
    pub db: i64,
    pub timeout_ms: i64,
    pub copy: bool,
    pub replace: bool,
    pub auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
    /// Argument positions of the keys.
    pub keys: std::ops::Range<usize>,
}

/// Redis's parsing: options from the sixth argument, `KEYS` takes the rest; then the
/// timeout and the db as integers (timeout <= 0 is 1000 ms). `Err` is the error reply.
pub fn parse(argv: &[&[u8]]) -> Result<Args, &'static str> {
    use crate::commands::{eq_ic, errors, parse_i64};
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let mut keys = 3..4;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = argv[j];
        if eq_ic(a, "copy") {
            copy = true;
        } else if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "auth") {
            if more == 0 {
                return Err(errors::SYNTAX);
            }
            auth = Some((None, argv[j + 1].to_vec()));
            j += 1;
        } else if eq_ic(a, "auth2") {
            if more < 2 {
                return Err(errors::SYNTAX);
            }
            auth = Some((Some(argv[j + 1].to_vec()), argv[j + 2].to_vec()));
            j += 2;
        } else if eq_ic(a, "keys") {
            if !argv[3].is_empty() {
                return Err(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                );
            }
            keys = j + 1..argv.len();
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    let Some(mut timeout_ms) = parse_i64(argv[5]) else {
        return Err(errors::NOT_INTEGER);
    };
    let Some(db) = parse_i64(argv[4]) else {
        return Err(errors::NOT_INTEGER);
    };
    if timeout_ms <= 0 {
        timeout_ms = 1000;
    }
    Ok(Args {
        host: String::from_utf8_lossy(argv[1]).into_owned(),
        port: argv[2].to_vec(),
        db,
        timeout_ms,
        copy,
        replace,
        auth,
        keys,
    })
}

// ---------------------------------------------------------------------------------------
// The shard side

/// A key read for migration: its payload and absolute expiry time (unix ms), if any.
#[derive(Debug, Clone)]
pub struct Dumped {
    pub payload: Vec<u8>,
    pub expire_at: Option<i64>,
}

/// Mail between shards about a migration (`Msg::Migrate`).
#[derive(Debug)]
pub enum Mail {
    /// Read these keys (with their index in the job) for shard `from`'s job `id`.
    Dump {
        from: usize,
        id: u64,
        db: usize,
        keys: Vec<(usize, Vec<u8>)>,
    },
    /// The keys read (`None`: absent).
    Dumped {
        id: u64,
        items: Vec<(usize, Option<Dumped>)>,
    },
    /// Delete these keys if they still hold these payloads.
    Delete {
        from: usize,
        id: u64,
        db: usize,
        keys: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Deleted {
        id: u64,
    },
}

/// One MIGRATE in progress on its client's shard.
struct Job {
    conn: ConnId,
    seq: u64,
    /// The client's database (where the keys are).
    db: usize,
    args: Args,
    /// The keys, in argument order, and what was read of each.
    keys: Vec<Vec<u8>>,
    items: Vec<Option<Dumped>>,
    /// Shards whose answer (dump or delete) is still awaited.
    waiting: usize,
    /// The reply, once the target answered (sent when the deletions are done).
    reply: Option<Vec<u8>>,
}

/// This shard's migrations.
pub struct Local {
    next_id: u64,
    jobs: HashMap<u64, Job>,
    /// Jobs at the worker.
    out: usize,
    done_tx: Sender<Outcome>,
    done_rx: Receiver<Outcome>,
    /// Mail to send at the end of the iteration.
    outgoing: Vec<(usize, Mail)>,
    /// Answers to send at the end of the iteration.
    ready: Vec<(ConnId, u64, Vec<u8>)>,
}

impl Default for Local {
    fn default() -> Self {
        let (done_tx, done_rx) = mpsc::channel();
        Self {
            next_id: 0,
            jobs: HashMap::new(),
            out: 0,
            done_tx,
            done_rx,
            outgoing: Vec::new(),
            ready: Vec::new(),
        }
    }
}

/// Reads `key` of `db` for migration.
fn dump_key(data: &mut ShardData, db: usize, key: &[u8]) -> Option<Dumped> {
    let now = data.now_ms;
    let compress = data.cfg.rdbcompression;
    let d = data.keyspace.db_mut(db);
    let payload = crate::commands::dump::dump_payload(d.get(key, now)?, compress)?;
    let expire_at = d.expire_at(key, now);
    Some(Dumped { payload, expire_at })
}

/// Deletes `key` of `db` if it still holds `payload`: Redis's `dbDelete`,
/// `signalModifiedKey`, the `del` event, and `DEL` in the stream of effects.
fn delete_key(data: &mut ShardData, db: usize, key: &[u8], payload: &[u8]) {
    if dump_key(data, db, key).is_none_or(|d| d.payload != payload) {
        return;
    }
    let del = crate::commands::lookup(b"del").expect("DEL is in the table");
    let argv: [&[u8]; 2] = [b"DEL", key];
    let before = data.keyspace.changes();
    let now = data.now_ms;
    data.keyspace.db_mut(db).remove(key, now);
    if !data.watches.is_empty() {
        crate::atomic::watch::after_write(data, del, &argv, db, before);
    }
    crate::notify::event(data, crate::notify::class::GENERIC, "del", key, db);
    if data.effects.on {
        data.effects.command(db, &argv);
    }
}

/// MIGRATE on the client's shard (arguments parsed): reads the local keys, mails the
/// others' owners, and makes the client wait. Answers at once (into `w`) when there is
/// nothing to migrate.
pub fn start(
    data: &mut ShardData,
    client: &mut Client,
    argv: &[&[u8]],
    args: Args,
    w: &mut percore_net::resp::ReplyWriter,
) {
    let db = client.db;
    let keys: Vec<Vec<u8>> = argv[args.keys.clone()].iter().map(|k| k.to_vec()).collect();
    let mut items = vec![None; keys.len()];
    let mut remote: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); data.shards];
    for (i, k) in keys.iter().enumerate() {
        let owner = data.owner(k);
        if owner == data.id {
            items[i] = dump_key(data, db, k);
        } else {
            remote[owner].push((i, k.clone()));
        }
    }
    let waiting = remote.iter().filter(|r| !r.is_empty()).count();
    if waiting == 0 && items.iter().all(Option::is_none) {
        w.raw(b"+NOKEY\r\n");
        return;
    }
    let discard = matches!(client.reply_mode, ReplyMode::Off | ReplyMode::Skipping);
    let seq = client.push_pending(Pending::Waiting { discard });
    client.hop_barrier = Some(seq);
    let id = data.migrate.next_id;
    data.migrate.next_id += 1;
    for (shard, keys) in remote.into_iter().enumerate() {
        if !keys.is_empty() {
            let mail = Mail::Dump {
                from: data.id,
                id,
                db,
                keys,
            };
            data.migrate.outgoing.push((shard, mail));
        }
    }
    let job = Job {
        conn: client.conn,
        seq,
        db,
        args,
        keys,
        items,
        waiting,
        reply: None,
    };
    data.migrate.jobs.insert(id, job);
    if waiting == 0 {
        send_to_worker(data, id);
    }
}

/// Mail from another shard.
pub fn receive(data: &mut ShardData, mail: Mail) {
    match mail {
        Mail::Dump { from, id, db, keys } => {
            let items = keys
                .into_iter()
                .map(|(i, k)| (i, dump_key(data, db, &k)))
                .collect();
            data.migrate
                .outgoing
                .push((from, Mail::Dumped { id, items }));
        }
        Mail::Dumped { id, items } => {
            let Some(job) = data.migrate.jobs.get_mut(&id) else {
                return;
            };
            for (i, d) in items {
                job.items[i] = d;
            }
            job.waiting -= 1;
            if job.waiting == 0 {
                if job.items.iter().all(Option::is_none) {
                    let job = data.migrate.jobs.remove(&id).expect("present");
                    data.migrate
                        .ready
                        .push((job.conn, job.seq, b"+NOKEY\r\n".to_vec()));
                } else {
                    send_to_worker(data, id);
                }
            }
        }
        Mail::Delete { from, id, db, keys } => {
            for (k, p) in keys {
                delete_key(data, db, &k, &p);
            }
            data.migrate.outgoing.push((from, Mail::Deleted { id }));
        }
        Mail::Deleted { id } => {
            let Some(job) = data.migrate.jobs.get_mut(&id) else {
                return;
            };
            job.waiting -= 1;
            if job.waiting == 0 {
                let job = data.migrate.jobs.remove(&id).expect("present");
                let reply = job.reply.unwrap_or_default();
                data.migrate.ready.push((job.conn, job.seq, reply));
            }
        }
    }
}

fn send_to_worker(data: &mut ShardData, id: u64) {
    let job = data.migrate.jobs.get_mut(&id).expect("present");
    let sends: Vec<Send> = job
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.as_ref().map(|d| Send {
                index: i,
                key: job.keys[i].clone(),
                payload: d.payload.clone(),
                expire_at: d.expire_at,
            })
        })
        .collect();
    let request = Request {
        id,
        host: job.args.host.clone(),
        port: job.args.port.clone(),
        db: job.args.db,
        timeout: Duration::from_millis(job.args.timeout_ms as u64),
        copy: job.args.copy,
        replace: job.args.replace,
        asking: data.cfg.cluster_enabled,
        auth: job.args.auth.clone(),
        sends,
        answer: data.migrate.done_tx.clone(),
    };
    if data.shared.migrate.submit(request) {
        data.migrate.out += 1;
    } else {
        let job = data.migrate.jobs.remove(&id).expect("present");
        let reply = b"-IOERR error or timeout writing to target instance\r\n".to_vec();
        data.migrate.ready.push((job.conn, job.seq, reply));
    }
}

/// The worker finished job `o.id`: delete what was acknowledged, then answer.
fn finished(data: &mut ShardData, o: Outcome) {
    let Some(job) = data.migrate.jobs.get(&o.id) else {
        return;
    };
    let (me, shards) = (data.id, data.shards);
    let mut remote: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![Vec::new(); shards];
    let mut local = Vec::new();
    if !job.args.copy {
        for &i in &o.acked {
            let (Some(d), k) = (&job.items[i], &job.keys[i]) else {
                continue;
            };
            let owner = data.owner(k);
            if owner == me {
                local.push((k.clone(), d.payload.clone()));
            } else {
                remote[owner].push((k.clone(), d.payload.clone()));
            }
        }
    }
    let db = job.db;
    for (k, p) in local {
        delete_key(data, db, &k, &p);
    }
    let job = data.migrate.jobs.get_mut(&o.id).expect("present");
    job.reply = Some(o.reply);
    job.waiting = 0;
    for (shard, keys) in remote.into_iter().enumerate() {
        if !keys.is_empty() {
            job.waiting += 1;
            let mail = Mail::Delete {
                from: data.id,
                id: o.id,
                db,
                keys,
            };
            data.migrate.outgoing.push((shard, mail));
        }
    }
    if job.waiting == 0 {
        let job = data.migrate.jobs.remove(&o.id).expect("present");
        let reply = job.reply.unwrap_or_default();
        data.migrate.ready.push((job.conn, job.seq, reply));
    }
}

/// Whether this shard has migrations in progress, mail to send or replies to give.
#[inline]
pub fn any(data: &ShardData) -> bool {
    !data.migrate.jobs.is_empty()
        || !data.migrate.outgoing.is_empty()
        || !data.migrate.ready.is_empty()
}

/// After a loop iteration: sends the mail, takes the worker's answers, and returns the
/// replies ready as `(connection, reply slot, reply)`; asks to be woken while a job is
/// at the worker.
pub fn answers(data: &mut ShardData, io: &mut Io<Msg, ()>) -> Vec<(ConnId, u64, Vec<u8>)> {
    while data.migrate.out > 0 {
        let Ok(o) = data.migrate.done_rx.try_recv() else {
            break;
        };
        data.migrate.out -= 1;
        finished(data, o);
    }
    for (shard, mail) in data.migrate.outgoing.drain(..) {
        io.send(shard, Msg::Migrate(Box::new(mail)));
    }
    if data.migrate.out > 0 {
        io.wake_within(POLL);
    }
    std::mem::take(&mut data.migrate.ready)
}

// ---------------------------------------------------------------------------------------
// The worker thread

/// One key to send.
struct Send {
    index: usize,
    key: Vec<u8>,
    payload: Vec<u8>,
    expire_at: Option<i64>,
}

/// One MIGRATE for the worker.
struct Request {
    id: u64,
    host: String,
    port: Vec<u8>,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    asking: bool,
    auth: Option<(Option<Vec<u8>>, Vec<u8>)>,
    sends: Vec<Send>,
    answer: Sender<Outcome>,
}

/// The worker's answer: the reply, and the indexes (in the job) of the keys the target
/// acknowledged (deleted unless COPY, whatever the reply).
struct Outcome {
    id: u64,
    reply: Vec<u8>,
    acked: Vec<usize>,
}

/// The server's migration thread (`ServerShared::migrate`).
#[derive(Default)]
pub struct Worker {
    queue: OnceLock<SyncSender<Request>>,
    /// Connections in the cache (INFO `migrate_cached_sockets`).
    cached: Arc<AtomicUsize>,
}

impl Worker {
    /// INFO's `migrate_cached_sockets`.
    pub fn cached_sockets(&self) -> usize {
        self.cached.load(Ordering::Relaxed)
    }

    /// Queues `r`; false when the queue is full.
    fn submit(&self, r: Request) -> bool {
        let q = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(JOB_QUEUE_MAX);
            let cached = Arc::clone(&self.cached);
            std::thread::Builder::new()
                .name("migrate".into())
                .spawn(move || run(&rx, &cached))
                .expect("spawn the migrate thread");
            tx
        });
        !matches!(
            q.try_send(r),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
        )
    }
}

/// A cached connection to a target.
struct Cached {
    stream: TcpStream,
    /// Bytes read past the last reply line.
    buf: Vec<u8>,
    /// The database selected on the target (-1: unknown).
    last_dbid: i64,
    last_use: Instant,
}

fn run(rx: &Receiver<Request>, cached: &AtomicUsize) {
    let mut cache: HashMap<String, Cached> = HashMap::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(r) => {
                let answer = r.answer.clone();
                let o = migrate(&mut cache, r);
                let _ = answer.send(o);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        cache.retain(|_, c| c.last_use.elapsed() <= SOCKET_CACHE_TTL);
        cached.store(cache.len(), Ordering::Relaxed);
    }
}

/// A failed socket operation: whether it timed out (no retry then).
struct SockErr {
    timed_out: bool,
}

fn sock_err(e: &std::io::Error) -> SockErr {
    SockErr {
        timed_out: matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// Why no connection was made.
enum NoConnection {
    /// Timed out, or the name did not resolve: Redis's "connecting" error.
    Failed,
    /// Refused: Redis's blocking connect does not look at the socket's error, so its
    /// first write fails ("writing", after one retry).
    Refused,
}

/// `migrateGetSocket`: the cached connection to `name`, or a new one.
fn get_socket<'c>(
    cache: &'c mut HashMap<String, Cached>,
    name: &str,
    host: &str,
    port: &[u8],
    timeout: Duration,
) -> Result<&'c mut Cached, NoConnection> {
    if !cache.contains_key(name) {
        if cache.len() >= SOCKET_CACHE_ITEMS
            && let Some(k) = cache.keys().next().cloned()
        {
            cache.remove(&k);
        }
        // Redis reads the port with atoi: digits up to the first other byte.
        let digits = port.iter().take_while(|b| b.is_ascii_digit()).count();
        let port = std::str::from_utf8(&port[..digits])
            .ok()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        let mut refused = false;
        let stream = (host, port)
            .to_socket_addrs()
            .map_err(|_| NoConnection::Failed)?
            .find_map(|a| {
                TcpStream::connect_timeout(&a, timeout)
                    .inspect_err(|e| refused |= e.kind() == ErrorKind::ConnectionRefused)
                    .ok()
            })
            .ok_or(if refused {
                NoConnection::Refused
            } else {
                NoConnection::Failed
            })?;
        let _ = stream.set_nodelay(true);
        cache.insert(
            name.to_string(),
            Cached {
                stream,
                buf: Vec::new(),
                last_dbid: -1,
                last_use: Instant::now(),
            },
        );
    }
    let c = cache.get_mut(name).ok_or(NoConnection::Failed)?;
    c.last_use = Instant::now();
    Ok(c)
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

impl Cached {
    fn write_all(&mut self, buf: &[u8], timeout: Duration) -> Result<(), SockErr> {
        self.stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| sock_err(&e))?;
        for chunk in buf.chunks(WRITE_CHUNK_BYTES) {
            self.stream.write_all(chunk).map_err(|e| sock_err(&e))?;
        }
        Ok(())
    }

    /// One reply line, without its `\r\n`.
    fn read_line(&mut self, timeout: Duration) -> Result<Vec<u8>, SockErr> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| sock_err(&e))?;
        loop {
            if let Some(n) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=n).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > REPLY_LINE_MAX_BYTES {
                return Err(SockErr { timed_out: false });
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(SockErr { timed_out: false }),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(sock_err(&e)),
            }
        }
    }
}

/// Redis's `migrateCommand` from the connection on: one retry on a socket error that is
/// not a timeout, when nothing was acknowledged yet.
fn migrate(cache: &mut HashMap<String, Cached>, r: Request) -> Outcome {
    let name = format!("{}:{}", r.host, String::from_utf8_lossy(&r.port));
    let mut may_retry = true;
    let mut acked = Vec::new();
    loop {
        let cs = match get_socket(cache, &name, &r.host, &r.port, r.timeout) {
            Ok(cs) => cs,
            Err(NoConnection::Failed) => {
                return Outcome {
                    id: r.id,
                    reply: IOERR_CONNECT.as_bytes().to_vec(),
                    acked,
                };
            }
            Err(NoConnection::Refused) if may_retry => {
                may_retry = false;
                continue;
            }
            Err(NoConnection::Refused) => {
                return Outcome {
                    id: r.id,
                    reply: b"-IOERR error or timeout writing to target instance\r\n".to_vec(),
                    acked,
                };
            }
        };
        let mut cmd = Vec::new();
        if let Some((user, pass)) = &r.auth {
            cmd.extend_from_slice(if user.is_some() { b"*3\r\n" } else { b"*2\r\n" });
            bulk(&mut cmd, b"AUTH");
            if let Some(u) = user {
                bulk(&mut cmd, u);
            }
            bulk(&mut cmd, pass);
        }
        let select = cs.last_dbid != r.db;
        if select {
            cmd.extend_from_slice(b"*2\r\n");
            bulk(&mut cmd, b"SELECT");
            bulk(&mut cmd, r.db.to_string().as_bytes());
        }
        let now = percore_net::reactor::unix_ms();
        let mut sent = Vec::new();
        for s in &r.sends {
            let ttl = match s.expire_at {
                None => 0,
                Some(at) if at - now < 0 => continue,
                Some(at) => (at - now).max(1),
            };
            sent.push(s.index);
            cmd.extend_from_slice(if r.replace { b"*5\r\n" } else { b"*4\r\n" });
            bulk(
                &mut cmd,
                if r.asking {
                    b"RESTORE-ASKING"
                } else {
                    b"RESTORE"
                },
            );
            bulk(&mut cmd, &s.key);
            bulk(&mut cmd, ttl.to_string().as_bytes());
            bulk(&mut cmd, &s.payload);
            if r.replace {
                bulk(&mut cmd, b"REPLACE");
            }
        }
        // The exchange: `Ok((reply, close the socket))`; `Err((writing, error))` goes to
        // Redis's `socket_err`.
        let exchange = (|| -> Result<(Vec<u8>, bool), (bool, SockErr)> {
            cs.write_all(&cmd, r.timeout).map_err(|e| (true, e))?;
            let auth_line = match r.auth {
                Some(_) => Some(cs.read_line(r.timeout).map_err(|e| (false, e))?),
                None => None,
            };
            let select_line = if select {
                Some(cs.read_line(r.timeout).map_err(|e| (false, e))?)
            } else {
                None
            };
            let mut error: Option<Vec<u8>> = None;
            let mut socket_error = None;
            for (j, &index) in sent.iter().enumerate() {
                let line = match cs.read_line(r.timeout) {
                    Ok(l) => l,
                    Err(e) => {
                        socket_error = Some((j, e));
                        break;
                    }
                };
                let failed = [auth_line.as_deref(), select_line.as_deref(), Some(&line)]
                    .into_iter()
                    .flatten()
                    .find(|l| l.first() == Some(&b'-'));
                if let Some(e) = failed {
                    if error.is_none() {
                        cs.last_dbid = -1;
                        let mut reply = b"-ERR Target instance replied with error: ".to_vec();
                        reply.extend_from_slice(&e[1..]);
                        reply.extend_from_slice(b"\r\n");
                        error = Some(reply);
                    }
                } else if !r.copy {
                    acked.push(index);
                }
            }
            if let Some((j, e)) = socket_error {
                if error.is_none() && j == 0 && may_retry && !e.timed_out {
                    return Err((false, e));
                }
                if error.is_none() {
                    may_retry = false;
                    return Err((false, e));
                }
                return Ok((error.expect("checked"), true));
            }
            if let Some(e) = error {
                return Ok((e, false));
            }
            cs.last_dbid = r.db;
            Ok((b"+OK\r\n".to_vec(), false))
        })();
        match exchange {
            Ok((reply, close)) => {
                if close {
                    cache.remove(&name);
                }
                return Outcome {
                    id: r.id,
                    reply,
                    acked,
                };
            }
            Err((writing, e)) => {
                cache.remove(&name);
                if !e.timed_out && may_retry {
                    may_retry = false;
                    continue;
                }
                let reply = format!(
                    "-IOERR error or timeout {} to target instance\r\n",
                    if writing { "writing" } else { "reading" }
                );
                return Outcome {
                    id: r.id,
                    reply: reply.into_bytes(),
                    acked,
                };
            }
        }
    }
}
