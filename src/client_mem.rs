//! Per-client memory and client eviction (`maxmemory-clients`, Redis 7.0's
//! `getClientMemoryUsage` and `evictClients`).
//!
//! **What a client counts.** Its fixed part ([`CLIENT_BASE_BYTES`]), its input buffer's
//! allocation (CLIENT LIST `qbuf` + `qbuf-free`), a reply buffer of
//! [`REPLY_BUF_BYTES`] (Redis's static `buf`: replies that fit in it do not change the
//! figure), the reply bytes beyond it not yet taken by the socket and the replies queued
//! behind a reply another shard owes (`omem`), the queued MULTI commands (`multi-mem`), a
//! fixed overhead per subscription, watched key and tracking prefix, and while a command
//! runs its arguments (`argv-mem`, shown by CLIENT LIST for the client running it).
//!
//! **Where it is counted.** In the connection: each time a shard is done with a
//! connection's input or output (`shard::check_output_limits`, which every path that
//! writes to a connection calls), it looks at the buffers and, if the client's figure
//! changed, moves its shard's total by the difference. Nothing is shared per request: the
//! shard's total and the power-of-two size buckets that hold clients are published in the
//! shard's own [`ShardMem`] slot with relaxed stores (the owner is the only writer).
//!
//! **Eviction across shards.** The limit is server-wide: the sum of every shard's total.
//! A shard that sees the sum over the limit (after its own client grew, on its tick, after
//! a configuration change) takes the eviction lock and, while the sum is over, evicts its
//! biggest client if that client is in the highest non-empty bucket of all shards (Redis's
//! buckets: the biggest clients go first, within a factor of two); otherwise the shard
//! holding the bigger ones evicts them when it looks (at once when it is busy, at its
//! tick when idle). Under the lock each eviction lowers the evicting shard's published
//! total before the next look, so two shards never evict for the same excess. Replicas'
//! links, the master client and CLIENT NO-EVICT clients are never evicted (they still
//! count in the total, as in Redis).

use crate::client::{Client, Pending};
use crate::shard::ShardData;
use percore_net::reactor::Conn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Redis's per-client static reply buffer (`PROTO_REPLY_CHUNK_BYTES`): counted for every
/// client whatever it holds; only unsent reply bytes beyond it show as `omem`.
pub const REPLY_BUF_BYTES: usize = 16 * 1024;
/// The fixed part of a client: its state and its connection's.
pub const CLIENT_BASE_BYTES: usize =
    std::mem::size_of::<Client>() + std::mem::size_of::<Conn<()>>();
/// Per channel, pattern or shard channel subscribed (the client's set entry and the
/// registry's; the name is shared, as in Redis).
pub const SUB_ENTRY_BYTES: usize = 64;
/// Per watched key (the client's entry and the owner shard's registry entry).
pub const WATCH_ENTRY_BYTES: usize = 64;
/// Per BCAST tracking prefix.
pub const PREFIX_ENTRY_BYTES: usize = 64;
// `extras` sums the entries before weighing them.
const _: () =
    assert!(SUB_ENTRY_BYTES == WATCH_ENTRY_BYTES && SUB_ENTRY_BYTES == PREFIX_ENTRY_BYTES);
/// Per queued MULTI command beyond its argument bytes (Redis's `sizeof(multiCmd)`).
pub const MULTI_ENTRY_BYTES: usize = 48;
/// Size buckets: bucket `i` holds clients of `[2^(i+15), 2^(i+16))` bytes, the first
/// everything below 64 KiB (Redis's `CLIENT_MEM_USAGE_BUCKET_MIN_LOG` = 15).
pub const BUCKET_MIN_LOG: u32 = 15;
/// Buckets up to 2^47 bytes (the last holds everything bigger).
pub const BUCKETS: usize = 32;
/// Seconds over which INFO's `client_recent_max_input_buffer` / `..._output_buffer`
/// keep a peak (Redis's `CLIENTS_PEAK_MEM_USAGE_SLOTS`).
pub const PEAK_SLOTS: usize = 8;

/// What one client holds, as CLIENT LIST shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub qbuf: usize,
    pub qbuf_free: usize,
    pub argv_mem: usize,
    pub multi_mem: usize,
    pub omem: usize,
    pub tot_mem: usize,
}

/// A client's memory as last looked at, kept in the client.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientMem {
    /// The input buffer's allocation.
    pub qbuf_cap: usize,
    /// [`extras`] at the last full look.
    pub extras: usize,
    /// The most unconsumed input seen since the last resize look (Redis's
    /// `querybuf_peak`).
    pub qbuf_peak: usize,
    /// The complete arguments of a request still incomplete (shown as `argv-mem`; they
    /// are in the input buffer, counted there).
    pub partial_argv: usize,
    /// Reply bytes written to the connection and not yet taken by the socket.
    pub obuf: usize,
    /// What this client adds to its shard's total (0 once it is evicted).
    pub counted: u64,
    /// Its bucket in the shard's counts, when counted.
    pub bucket: Option<u8>,
    /// Evicted: closing, no longer listed nor counted.
    pub evicted: bool,
}

/// One shard's published figures (written by that shard only).
#[derive(Default)]
#[repr(align(128))]
pub struct ShardMem {
    /// The memory of its clients (all kinds but replicas' links).
    pub total: AtomicU64,
    /// Bit `i`: bucket `i` holds an evictable client.
    pub buckets: AtomicU64,
    /// Clients it evicted.
    pub evicted: AtomicU64,
    /// The biggest input / output buffer of its clients in the last [`PEAK_SLOTS`] s.
    pub peak_in: AtomicU64,
    pub peak_out: AtomicU64,
}

/// What the shards share.
pub struct Shared {
    pub shards: Box<[ShardMem]>,
    /// Held by a shard while it evicts.
    evict_lock: Mutex<()>,
}

impl Shared {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| ShardMem::default()).collect(),
            evict_lock: Mutex::new(()),
        }
    }

    /// The memory of every client (INFO `mem_clients_normal`).
    pub fn total(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.total.load(Ordering::Relaxed))
            .sum()
    }

    /// INFO's `client_recent_max_input_buffer` and `client_recent_max_output_buffer`.
    pub fn recent_peaks(&self) -> (u64, u64) {
        let max = |f: fn(&ShardMem) -> &AtomicU64| {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .max()
                .unwrap_or(0)
        };
        (max(|s| &s.peak_in), max(|s| &s.peak_out))
    }

    fn all_buckets(&self) -> u64 {
        self.shards
            .iter()
            .fold(0, |m, s| m | s.buckets.load(Ordering::Relaxed))
    }
}

/// `maxmemory-clients` in bytes (a percentage is of `maxmemory`); 0: no limit.
pub fn limit_of(cfg: &crate::config::Config) -> u64 {
    let text = crate::config::kept::get(
        &cfg.kept,
        "maxmemory-clients",
        crate::config::kept::Kind::MemoryOrPercent {
            max_percent: 100,
            max: i64::MAX,
        },
    );
    let limit = match text.strip_suffix('%') {
        Some(p) => {
            cfg.maxmemory_bytes / 100 * p.parse::<u64>().unwrap_or(0)
                + cfg.maxmemory_bytes % 100 * p.parse::<u64>().unwrap_or(0) / 100
        }
        None => text.parse().unwrap_or(0),
    };
    if limit == 0 {
        0
    } else {
        limit.max(MIN_LIMIT_BYTES)
    }
}

/// The smallest client memory limit applied (Redis's `getClientEvictionLimit`): a tiny
/// `maxmemory-clients` must not cut every connection, the one setting it included.
pub const MIN_LIMIT_BYTES: u64 = 128 * 1024;

/// One shard's counts.
#[derive(Default)]
pub struct Local {
    /// `maxmemory-clients` in bytes, as of the shard's configuration ([`limit_of`]).
    pub limit: u64,
    /// Its clients' memory (mirrored in its [`ShardMem::total`]).
    total: u64,
    /// Evictable clients per bucket.
    per_bucket: [u32; BUCKETS],
    /// Peaks per second slot, `(second, input, output)`.
    peaks: [(i64, u64, u64); PEAK_SLOTS],
    /// The sum was seen over the limit: evict at the end of the batch.
    pub due: bool,
    /// The second (Unix) of the last [`recount_all`].
    counted_s: i64,
}

impl Local {
    pub fn new(cfg: &crate::config::Config) -> Self {
        Self {
            limit: limit_of(cfg),
            ..Self::default()
        }
    }
}

/// The bucket of a client using `mem` bytes.
fn bucket_of(mem: u64) -> u8 {
    let log = mem.max(1).ilog2();
    log.saturating_sub(BUCKET_MIN_LOG).min(BUCKETS as u32 - 1) as u8
}

/// Whether `c` may be evicted (Redis's `clientEvictionAllowed`).
fn evictable(c: &Client) -> bool {
    !c.no_evict && !c.master && !c.mem.evicted
}

/// Bytes of reply queued behind a reply another shard owes.
fn queued_reply_bytes(c: &Client) -> usize {
    c.pending
        .iter()
        .map(|p| match p {
            Pending::Ready(b) => b.len(),
            _ => 0,
        })
        .sum()
}

/// CLIENT LIST's figures for `c`; `argv_mem` is the running command's argument bytes (0
/// for the other clients).
pub fn usage(c: &Client, argv_mem: usize) -> Usage {
    let multi_mem = multi_mem(c);
    let out = c.mem.obuf + queued_reply_bytes(c);
    let omem = out.saturating_sub(REPLY_BUF_BYTES);
    let extras = extras(c) - multi_mem;
    Usage {
        qbuf: c.qbuf,
        // What Redis would have free once it moved the parsed part out (its alloc is
        // `qbuf` + `qbuf-free`).
        qbuf_free: c.mem.qbuf_cap.saturating_sub(c.qbuf),
        argv_mem: argv_mem + c.mem.partial_argv,
        multi_mem,
        omem,
        tot_mem: CLIENT_BASE_BYTES
            + c.mem.qbuf_cap.max(c.qbuf)
            + argv_mem
            + multi_mem
            + REPLY_BUF_BYTES
            + omem
            + extras,
    }
}

/// The queued MULTI commands' memory.
fn multi_mem(c: &Client) -> usize {
    c.multi.as_ref().map_or(0, |m| {
        m.bytes + m.cmds.len() * (MULTI_ENTRY_BYTES + std::mem::size_of::<&[u8]>())
    })
}

/// What a client holds besides its buffers: subscriptions, watched keys, tracking
/// prefixes, its name and its queued MULTI commands. The per-entry overheads are equal,
/// so the figure moves whenever the memory does.
#[inline]
fn extras(c: &Client) -> usize {
    let entries = c.subs.len()
        + c.psubs.len()
        + c.ssubs.len()
        + c.watched.len()
        + c.tracking.as_ref().map_or(0, |t| t.prefixes.len());
    entries * SUB_ENTRY_BYTES + c.name.as_ref().map_or(0, Vec::len) + multi_mem(c)
}

/// The shard is done with `client`'s input or output for now: takes its buffers' sizes
/// (CLIENT LIST shows them) and, when `maxmemory-clients` is set, moves the shard's total
/// by the change and notes whether clients must be evicted. Without a limit the totals
/// are counted when asked for ([`refresh`]: INFO, MEMORY STATS, the tick), as Redis 7.0
/// counts them in its cron then. The common case (input consumed, the same allocation;
/// with a limit also replies within the reply buffer and nothing else changed) costs a
/// few loads and compares.
#[inline]
pub fn observe(data: &mut ShardData, client: &mut Client, conn: &Conn<()>) {
    let obuf = conn.pending_output();
    if conn.input.is_empty()
        && client.mem.partial_argv == 0
        && conn.input.capacity() == client.mem.qbuf_cap
        && (data.client_mem.limit == 0
            || (obuf.max(client.mem.obuf) <= REPLY_BUF_BYTES
                && client.pending.is_empty()
                && !client.close_after_reply
                && extras(client) == client.mem.extras))
    {
        client.qbuf = 0;
        client.mem.obuf = obuf;
        return;
    }
    observe_all(data, client, conn);
}

#[cold]
fn observe_all(data: &mut ShardData, client: &mut Client, conn: &Conn<()>) {
    let input = conn.input.data();
    let (taken, argv) = client.req.partial_progress(input);
    client.qbuf = input.len() - taken;
    client.mem.partial_argv = argv;
    client.mem.qbuf_peak = client.mem.qbuf_peak.max(input.len());
    client.mem.qbuf_cap = conn.input.capacity();
    client.mem.obuf = conn.pending_output();
    if data.client_mem.limit == 0 {
        // Counted when asked for (`refresh`).
        return;
    }
    client.mem.extras = extras(client);
    let closing = conn.is_closing() && client.close_after_reply;
    recount(data, client, closing);
}

/// Without `maxmemory-clients`, brings the shard's total, buckets and recent peaks up to
/// date from its clients' last looked-at sizes (INFO and MEMORY STATS call it before they
/// read them, the tick once a second as Redis's `clientsCron`). With a limit they are
/// always up to date.
pub fn refresh(data: &mut ShardData) {
    if data.client_mem.limit == 0 {
        recount_all(data);
    }
}

/// Recounts every client of the shard and samples its buffers for the recent peaks.
fn recount_all(data: &mut ShardData) {
    let now_s = data.now_ms / 1000;
    for i in 0..data.clients.len() {
        let Some(mut c) = data.clients[i].take() else {
            continue;
        };
        if !c.mem.evicted {
            c.mem.extras = extras(&c);
            recount(data, &mut c, false);
            let slot = &data.shared.client_mem.shards[data.id];
            note_peaks(&mut data.client_mem, slot, now_s, &c);
        }
        data.clients[i] = Some(c);
    }
    data.client_mem.counted_s = now_s;
}

/// Moves the shard's total and buckets from `client`'s counted figure to its current one
/// (0 when `gone`).
fn recount(data: &mut ShardData, client: &mut Client, gone: bool) {
    let now = if gone || client.mem.evicted {
        0
    } else {
        usage(client, 0).tot_mem as u64
    };
    let bucket = (!gone && evictable(client)).then(|| bucket_of(now));
    let l = &mut data.client_mem;
    let slot = &data.shared.client_mem.shards[data.id];
    if now != client.mem.counted {
        l.total = l.total - client.mem.counted + now;
        client.mem.counted = now;
        slot.total.store(l.total, Ordering::Relaxed);
        if l.limit != 0 && !gone && data.shared.client_mem.total() > l.limit {
            l.due = true;
        }
        note_peaks(l, slot, data.now_ms / 1000, client);
    }
    if bucket != client.mem.bucket {
        if let Some(b) = client.mem.bucket {
            l.per_bucket[b as usize] -= 1;
        }
        if let Some(b) = bucket {
            l.per_bucket[b as usize] += 1;
        }
        client.mem.bucket = bucket;
        slot.buckets
            .store(mask_of(&l.per_bucket), Ordering::Relaxed);
    }
}

fn mask_of(per_bucket: &[u32; BUCKETS]) -> u64 {
    per_bucket
        .iter()
        .enumerate()
        .fold(0, |m, (i, &n)| if n > 0 { m | 1 << i } else { m })
}

fn note_peaks(l: &mut Local, slot: &ShardMem, now_s: i64, c: &Client) {
    let p = &mut l.peaks[now_s.rem_euclid(PEAK_SLOTS as i64) as usize];
    if p.0 != now_s {
        *p = (now_s, 0, 0);
    }
    let input = c.mem.qbuf_cap as u64;
    let output = (c.mem.obuf + queued_reply_bytes(c)) as u64;
    p.1 = p.1.max(input);
    p.2 = p.2.max(output);
    if input > slot.peak_in.load(Ordering::Relaxed) {
        slot.peak_in.store(input, Ordering::Relaxed);
    }
    if output > slot.peak_out.load(Ordering::Relaxed) {
        slot.peak_out.store(output, Ordering::Relaxed);
    }
}

/// Redis's `PROTO_RESIZE_THRESHOLD`: a query buffer above it that is more than twice the
/// recent peak gives back the excess.
pub const QBUF_RESIZE_THRESHOLD_BYTES: usize = 32 * 1024;
/// Free space below which a query buffer is left as it is.
pub const QBUF_RESIZE_MIN_FREE_BYTES: usize = 4 * 1024;
/// An input buffer idle for longer than this (seconds) gives back all its free space.
pub const QBUF_IDLE_SECS: i64 = 2;

/// The shard's tick, Redis's `clientsCronResizeQueryBuffer`: an idle client's input
/// buffer gives back its free space, a busy one what is beyond twice its recent peak.
pub fn resize_query_buffers(
    data: &mut ShardData,
    io: &mut percore_net::reactor::Io<crate::shard::Msg, ()>,
) {
    if crate::commands::server::debug::cron_paused() {
        return;
    }
    let now_s = data.now_ms / 1000;
    for i in 0..data.clients.len() {
        let Some(mut c) = data.clients[i].take() else {
            continue;
        };
        if let Some(conn) = io.conn(c.conn)
            && !conn.is_closing()
        {
            let (cap, len) = (conn.input.capacity(), conn.input.len());
            let idle = now_s - c.last_interaction_ms / 1000 > QBUF_IDLE_SECS;
            let peak = c.mem.qbuf_peak;
            let keep = if idle {
                Some(0)
            } else if cap > QBUF_RESIZE_THRESHOLD_BYTES && cap / 2 > peak {
                // Room for the next reads of a busy client, as Redis keeps its peak.
                Some(peak.max(percore_net::reactor::RECV_MIN_SPARE_BYTES))
            } else {
                None
            };
            if cap - len > QBUF_RESIZE_MIN_FREE_BYTES
                && let Some(keep) = keep
                && conn.input.shrink_to(keep)
            {
                observe(data, &mut c, conn);
            }
            c.mem.qbuf_peak = len;
        }
        data.clients[i] = Some(c);
    }
}

/// A client leaves its shard (closed): its memory leaves the total.
pub fn forget(data: &mut ShardData, client: &mut Client) {
    recount(data, client, true);
}

/// The shard's tick: old peaks expire, and an idle shard evicts when the sum is over.
pub fn on_tick(data: &mut ShardData) {
    if crate::commands::server::debug::cron_paused() {
        return;
    }
    let now_s = data.now_ms / 1000;
    if data.client_mem.limit == 0 && data.client_mem.counted_s != now_s {
        recount_all(data);
    }
    let l = &mut data.client_mem;
    let (mut pin, mut pout) = (0, 0);
    for p in &l.peaks {
        if now_s - p.0 < PEAK_SLOTS as i64 {
            pin = u64::max(pin, p.1);
            pout = u64::max(pout, p.2);
        }
    }
    let slot = &data.shared.client_mem.shards[data.id];
    slot.peak_in.store(pin, Ordering::Relaxed);
    slot.peak_out.store(pout, Ordering::Relaxed);
    l.due |= l.limit != 0 && data.shared.client_mem.total() > l.limit;
    evict_if_due(data);
}

/// After a batch (or a configuration change): evicts if a look found the sum over.
#[inline]
pub fn evict_if_due(data: &mut ShardData) {
    if std::mem::take(&mut data.client_mem.due) {
        evict(data);
    }
}

/// The configuration changed (`maxmemory-clients`, `maxmemory`): look again.
pub fn config_changed(data: &mut ShardData) {
    data.client_mem.limit = limit_of(&data.cfg);
    // Without a limit until now the totals were counted only when asked for.
    recount_all(data);
    data.client_mem.due = data.client_mem.limit != 0;
    evict_if_due(data);
}

/// Whether the connection `id` belongs to an evicted client (closed at once, its output
/// dropped, as Redis frees it).
pub fn evicted(data: &ShardData, id: percore_net::reactor::ConnId) -> bool {
    data.clients
        .get(id.index as usize)
        .and_then(Option::as_deref)
        .is_some_and(|c| c.conn == id && c.mem.evicted)
}

/// Evicts this shard's biggest clients while the server-wide sum is over the limit and
/// they are among the biggest of all shards.
fn evict(data: &mut ShardData) {
    let limit = data.client_mem.limit;
    if limit == 0 {
        return;
    }
    let shared = std::sync::Arc::clone(&data.shared);
    let _held = shared
        .client_mem
        .evict_lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while shared.client_mem.total() > limit {
        let Some(top) = shared.client_mem.all_buckets().checked_ilog2() else {
            // Nothing may be evicted.
            return;
        };
        let Some(i) = data
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_deref().map(|c| (i, c)))
            .filter(|(_, c)| c.mem.bucket.is_some_and(|b| u32::from(b) == top))
            .max_by_key(|(_, c)| c.mem.counted)
            .map(|(i, _)| i)
        else {
            // The biggest clients are on another shard (or none may be evicted).
            return;
        };
        let Some(mut c) = data.clients[i].take() else {
            return;
        };
        data.shared.notice(&format!(
            "Evicting client: id={} addr={} laddr={} name={} tot-mem={}",
            c.id,
            c.peer,
            c.local,
            c.name
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default(),
            c.mem.counted
        ));
        recount(data, &mut c, true);
        c.mem.evicted = true;
        c.close_after_reply = true;
        data.to_close.push(c.conn);
        let slot = &shared.client_mem.shards[data.id];
        slot.evicted
            .store(slot.evicted.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        data.clients[i] = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_double() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(65_535), 0);
        assert_eq!(bucket_of(65_536), 1);
        assert_eq!(bucket_of(1 << 20), 5);
        assert_eq!(bucket_of((1 << 21) - 1), 5);
        assert_eq!(bucket_of(u64::MAX), BUCKETS as u8 - 1);
    }

    #[test]
    fn a_tiny_limit_is_raised_to_redis_minimum() {
        let mut cfg = crate::config::Config::default();
        assert_eq!(limit_of(&cfg), 0);
        for (value, limit) in [("1", MIN_LIMIT_BYTES), ("0", 0), ("1mb", 1 << 20)] {
            cfg.set_many(&[(b"maxmemory-clients", value.as_bytes())])
                .unwrap();
            assert_eq!(limit_of(&cfg), limit, "maxmemory-clients {value}");
        }
        cfg.set_many(&[(b"maxmemory-clients", b"10%")]).unwrap();
        assert_eq!(
            limit_of(&cfg),
            0,
            "a percentage of no maxmemory is no limit"
        );
        cfg.set_many(&[(b"maxmemory", b"100mb")]).unwrap();
        assert_eq!(limit_of(&cfg), 10 << 20);
        cfg.set_many(&[(b"maxmemory", b"1mb")]).unwrap();
        assert_eq!(limit_of(&cfg), MIN_LIMIT_BYTES);
    }

    #[test]
    fn usage_counts_buffers_beyond_the_reply_buffer() {
        let mut c = Client::new(
            percore_net::reactor::ConnId {
                index: 0,
                generation: 1,
            },
            1,
            0,
            true,
        );
        c.qbuf = 10;
        c.mem.qbuf_cap = 16_384;
        c.mem.obuf = 100;
        let u = usage(&c, 7);
        assert_eq!(
            (u.qbuf, u.qbuf_free, u.argv_mem, u.omem),
            (10, 16_374, 7, 0)
        );
        assert_eq!(u.tot_mem, CLIENT_BASE_BYTES + 16_384 + 7 + REPLY_BUF_BYTES);
        c.mem.obuf = REPLY_BUF_BYTES + 5;
        c.pending.push_back(Pending::Ready(vec![0; 20]));
        assert_eq!(usage(&c, 0).omem, 25);
    }
}
