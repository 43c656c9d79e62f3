//! One database of one shard: keys → values with optional expiry times, a separate
//! index of the keys that have a TTL (as Redis's `expires` dict) for sampling, lazy
//! expiry on every access and Redis's active expiry cycle.
//!
//! Pure: every operation where time matters takes `now_ms` (Unix milliseconds) from the
//! caller. A key is expired when `now_ms > expire_at_ms`, as Redis's `keyIsExpired`.

use crate::hash::splitmix64;
use crate::slot::key_hash_slot;
use crate::slot_index::{SlotCounts, SlotIndex};
use crate::table::{CutEntry, CutStats, Entry as Slot, Key, Table};
use crate::value::Value;
use std::collections::HashSet;
use std::mem;

/// Keys with a TTL sampled per round of the active expiry cycle (Redis's
/// `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP: usize = 20;
/// Another round runs while more than this percentage of a round's sample had expired
/// (Redis's `ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE`).
pub const ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE_PERCENT: u64 = 10;
/// Weight, out of this, that the previous estimate keeps in the running `avg_ttl`
/// (Redis: `avg_ttl = avg_ttl/50*49 + sample_avg/50`).
const AVG_TTL_SMOOTHING_WEIGHT: i64 = 50;
/// Milliseconds per LRU clock tick (the LRU clock counts seconds).
const LRU_CLOCK_RESOLUTION_MS: i64 = 1000;
/// Milliseconds per LFU decay-time tick (Redis's `LFUGetTimeInMinutes`).
const LFU_TIME_RESOLUTION_MS: i64 = 60_000;
/// The LFU counter of a new key (Redis's `LFU_INIT_VAL`), so it is not evicted at once.
pub const LFU_INIT_VAL: u8 = 5;

/// Stored in `expire_at_ms` when the key has no TTL.
const NO_EXPIRE: i64 = i64::MIN;

/// RANDOMKEY while expiry is paused: expired keys picked before one is returned anyway
/// (Redis's `maxtries`).
pub const RANDOM_KEY_PAUSED_TRIES: u32 = 100;

fn lru_clock(now_ms: i64) -> u32 {
    now_ms.div_euclid(LRU_CLOCK_RESOLUTION_MS) as u32
}

/// How a database tracks accesses to its keys in [`Entry`]'s access field (Redis's
/// 24-bit `lru`), by `maxmemory-policy`: the LRU clock for every policy but the LFU ones,
/// which keep a decaying logarithmic access counter instead. OBJECT IDLETIME/FREQ read
/// it, RESTORE IDLETIME/FREQ set it, and eviction will sample it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessTracking {
    /// The field is the LRU clock (seconds) of the last access.
    Lru,
    /// The field is `(minutes & 0xFFFF) << 8 | counter`: the time of the last decrement
    /// in minutes and an 8-bit logarithmic counter (Redis's `LFU` layout).
    Lfu {
        /// `lfu-log-factor`: how many hits it takes to grow the counter.
        log_factor: u32,
        /// `lfu-decay-time`: minutes per decrement of an idle counter (0 = never).
        decay_minutes: u32,
    },
}

fn lfu_minutes(now_ms: i64) -> u32 {
    (now_ms.div_euclid(LFU_TIME_RESOLUTION_MS) & 0xFFFF) as u32
}

/// `LFUDecrAndReturn`: the counter of `field` after the decay for the time elapsed.
fn lfu_decayed(field: u32, decay_minutes: u32, now_ms: i64) -> u8 {
    let ldt = (field >> 8) & 0xFFFF;
    let counter = (field & 0xFF) as u8;
    if decay_minutes == 0 {
        return counter;
    }
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        0xFFFF - ldt + now
    };
    let periods = elapsed / decay_minutes;
    counter.saturating_sub(u8::try_from(periods).unwrap_or(u8::MAX))
}

/// `LFULogIncr`: grows `counter` with probability `1 / ((counter - 5) * factor + 1)`.
fn lfu_log_incr(counter: u8, log_factor: u32, rng: &mut u64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let r = (splitmix64(rng) >> 11) as f64 / (1u64 << 53) as f64;
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(log_factor) + 1.0);
    if r < p { counter + 1 } else { counter }
}

/// What a database does to the access field: [`AccessTracking`]'s two ways, or neither
/// while a CLIENT NO-TOUCH client's command runs ([`Db::set_no_touch`]). Folding the
/// no-touch case in here keeps the LRU hot path (GET/SET) at one branch more than a
/// clock store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Lru,
    Lfu {
        log_factor: u32,
        decay_minutes: u32,
    },
    /// Accesses leave the field alone; new keys get a fresh LFU (`lfu`) or LRU one.
    Untouched {
        lfu: bool,
    },
}

impl Access {
    fn of(tracking: AccessTracking, no_touch: bool) -> Access {
        match (tracking, no_touch) {
            (AccessTracking::Lru, false) => Access::Lru,
            (
                AccessTracking::Lfu {
                    log_factor,
                    decay_minutes,
                },
                false,
            ) => Access::Lfu {
                log_factor,
                decay_minutes,
            },
            (t, true) => Access::Untouched {
                lfu: matches!(t, AccessTracking::Lfu { .. }),
            },
        }
    }

    /// The field of a key created now.
    #[inline]
    fn fresh(self, now_ms: i64) -> u32 {
        match self {
            Access::Lru | Access::Untouched { lfu: false } => lru_clock(now_ms),
            Access::Lfu { .. } | Access::Untouched { lfu: true } => lfu_fresh(now_ms),
        }
    }

    /// The field after an access (`updateLFU`, or the LRU clock). The LFU work is out of
    /// line so the LRU hot path (GET/SET) stays one branch more than a clock store.
    #[inline]
    fn touched(self, field: u32, rng: &mut u64, now_ms: i64) -> u32 {
        match self {
            Access::Lru => lru_clock(now_ms),
            Access::Lfu {
                log_factor,
                decay_minutes,
            } => lfu_touched(field, log_factor, decay_minutes, rng, now_ms),
            Access::Untouched { .. } => field,
        }
    }

    /// The field of an overwritten key: an access of the old one (the LFU counter carries
    /// over, as `dbSetValue` keeps `lru`), or a fresh one when the old one had expired.
    #[inline]
    fn overwritten(self, field: u32, expired: bool, rng: &mut u64, now_ms: i64) -> u32 {
        // Under NO-TOUCH the new value still gets a fresh LRU clock (Valkey's new object),
        // and the LFU data of the old one carries over without the access.
        match self {
            Access::Lru | Access::Untouched { lfu: false } => lru_clock(now_ms),
            _ if expired => self.fresh(now_ms),
            Access::Lfu {
                log_factor,
                decay_minutes,
            } => lfu_touched(field, log_factor, decay_minutes, rng, now_ms),
            Access::Untouched { lfu: true } => field,
        }
    }
}

#[cold]
#[inline(never)]
fn lfu_fresh(now_ms: i64) -> u32 {
    (lfu_minutes(now_ms) << 8) | u32::from(LFU_INIT_VAL)
}

#[cold]
#[inline(never)]
fn lfu_touched(field: u32, log_factor: u32, decay_minutes: u32, rng: &mut u64, now_ms: i64) -> u32 {
    let c = lfu_decayed(field, decay_minutes, now_ms);
    let c = lfu_log_incr(c, log_factor, rng);
    (lfu_minutes(now_ms) << 8) | u32::from(c)
}

/// A stored key's value and metadata. 48 bytes: the access field fits the padding after
/// the expiry time, as Redis's `lru` shares a word with the type and encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: Value,
    expire_at_ms: i64,
    /// LRU clock or LFU time and counter, per the database's [`AccessTracking`].
    access: u32,
}

impl Entry {
    /// Absolute expiry time in Unix milliseconds, if the key has a TTL.
    #[must_use]
    pub fn expire_at_ms(&self) -> Option<i64> {
        (self.expire_at_ms != NO_EXPIRE).then_some(self.expire_at_ms)
    }

    /// The raw access field (LRU clock or LFU time and counter).
    #[must_use]
    pub fn access(&self) -> u32 {
        self.access
    }

    /// Seconds since the last access (OBJECT IDLETIME), reading the field as an LRU clock.
    #[must_use]
    pub fn idle_time_s(&self, now_ms: i64) -> u64 {
        u64::from(lru_clock(now_ms).wrapping_sub(self.access))
    }

    /// The LFU counter after decay (OBJECT FREQ), reading the field as LFU data.
    #[must_use]
    pub fn lfu_freq(&self, decay_minutes: u32, now_ms: i64) -> u8 {
        lfu_decayed(self.access, decay_minutes, now_ms)
    }

    #[inline]
    fn is_expired(&self, now_ms: i64) -> bool {
        self.expire_at_ms != NO_EXPIRE && now_ms > self.expire_at_ms
    }
}

/// What SET does to the key's TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExpire {
    /// Keep the existing TTL (`SET ... KEEPTTL`); a new key gets none.
    Keep,
    /// Remove any TTL (plain `SET`).
    Clear,
    /// Expire at this Unix time in milliseconds (`EX`/`PX`/`EXAT`/`PXAT`, already absolute).
    At(i64),
}

/// A key moved out of a database with everything needed to put it back elsewhere
/// (MOVE, RENAME, and moves between shards done by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenKey {
    pub key: Box<[u8]>,
    pub value: Value,
    pub expire_at_ms: Option<i64>,
}

/// Cumulative counters of one database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Keys deleted because their TTL passed (lazily or by the active cycle): INFO
    /// `expired_keys`.
    pub expired_keys: u64,
}

/// INFO keyspace line for one database: `keys=..,expires=..,avg_ttl=..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyspaceInfo {
    pub keys: usize,
    pub expires: usize,
    /// Running estimate of the TTL of keys with one, from the active expiry samples
    /// (0 until the first sample), as Redis.
    pub avg_ttl_ms: i64,
}

/// Work allowance for [`Db::active_expire_cycle`], in keys sampled. The caller derives
/// it from its time budget (e.g. measured cost per sample) and checks the clock between
/// calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpireBudget {
    samples_left: u64,
}

impl ExpireBudget {
    #[must_use]
    pub fn new(samples: u64) -> Self {
        Self {
            samples_left: samples,
        }
    }

    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.samples_left
    }

    #[must_use]
    pub fn is_exhausted(&self) -> bool {
        self.samples_left == 0
    }
}

/// What one call of [`Db::active_expire_cycle`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireCycleStats {
    pub sampled: u64,
    pub expired: u64,
    /// The cycle stopped because the budget ran out while the stale ratio was still
    /// above [`ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE_PERCENT`] (Redis's `timelimit_exit`).
    pub budget_exhausted: bool,
}

/// One database of one shard.
pub struct Db {
    main: Table<Entry>,
    /// Keys with a TTL → expiry time; always in sync with `main`'s `expire_at_ms`.
    expires: Table<i64>,
    stats: DbStats,
    avg_ttl_ms: i64,
    /// State of the generator used by the active expiry cycle.
    rng: u64,
    /// Database number of the snapshot cut in progress (see [`Db::begin_cut`]).
    cut_index: usize,
    /// Changes made (Redis's `dirty`): one per write to a key, the key count on clear.
    changes: u64,
    /// Cluster mode only: keys per hash slot and each slot's keys.
    slots: Option<Box<SlotIndex>>,
    /// Cluster mode only: the per-slot counts at the start of the cut in progress, for
    /// the snapshot's `slot-info` fields (taken once by [`Db::take_cut_slot_counts`]).
    cut_slot_counts: Option<Vec<SlotCounts>>,
    /// Keys that blocked clients wait on (the server's blocking registry keeps this set),
    /// and those of them created or replaced since the registry last looked (Redis's
    /// `signalKeyAsReady` from `dbAdd`). Empty unless a client is blocked on this
    /// database, so a key creation pays one length check.
    waited: HashSet<Box<[u8]>>,
    ready: Vec<Box<[u8]>>,
    /// What the entries' access field holds.
    tracking: AccessTracking,
    /// What an access does to it (`tracking`, or nothing under CLIENT NO-TOUCH).
    access: Access,
    /// Keys deleted because they expired (lazily or by the active cycle), kept while
    /// something consumes them (the stream of effects propagates them as DEL); `None`:
    /// nothing is kept, and an expiry costs one branch.
    expired_log: Option<Vec<Key>>,
    /// Keyspace events this database sees itself (a key expired, a key created), in
    /// order, for the server's keyspace notifications; recorded only while
    /// [`Db::set_event_log`] turned them on, so a write pays one flag test on its
    /// creation or expiry path.
    events: Vec<(KeyEvent, Box<[u8]>)>,
    log_events: bool,
    /// CLIENT PAUSE: the dataset stays as it is. An expired key reads as absent but is
    /// not deleted, and the active cycle deletes nothing (Redis's
    /// `checkClientPauseTimeoutAndReturnIfPaused` in `expireIfNeeded`).
    expiry_paused: bool,
}

/// A keyspace event seen inside the database rather than by a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEvent {
    /// An expired key was deleted (lazily on access, or by the active cycle).
    Expired,
    /// A key was added (Redis's `dbAdd`: a new key, or one stored anew over a deleted one).
    New,
}

impl Db {
    /// An empty database whose tables hash with `hash_seed`.
    #[must_use]
    pub fn new(hash_seed: u64) -> Self {
        let mut seeds = hash_seed;
        let main_seed = splitmix64(&mut seeds);
        let expires_seed = splitmix64(&mut seeds);
        let rng = splitmix64(&mut seeds);
        Self {
            main: Table::new(main_seed),
            expires: Table::new(expires_seed),
            stats: DbStats::default(),
            avg_ttl_ms: 0,
            rng,
            cut_index: 0,
            changes: 0,
            slots: None,
            cut_slot_counts: None,
            waited: HashSet::new(),
            ready: Vec::new(),
            tracking: AccessTracking::Lru,
            access: Access::Lru,
            events: Vec::new(),
            log_events: false,
            expired_log: None,
            expiry_paused: false,
        }
    }

    /// CLIENT PAUSE begins (`true`) or ends: see `expiry_paused`.
    pub fn set_expiry_paused(&mut self, on: bool) {
        self.expiry_paused = on;
    }

    /// Keeps the keys deleted by expiry from now on (`on`), for [`Db::take_expired`]; off
    /// drops any kept.
    pub fn log_expired(&mut self, on: bool) {
        self.expired_log = on.then(Vec::new);
    }

    /// Whether keys deleted by expiry are kept ([`Db::log_expired`]).
    #[must_use]
    pub fn logs_expired(&self) -> bool {
        self.expired_log.is_some()
    }

    /// Whether expired keys were kept since the last [`Db::take_expired`].
    #[must_use]
    #[inline]
    pub fn has_expired_logged(&self) -> bool {
        self.expired_log.as_ref().is_some_and(|v| !v.is_empty())
    }

    /// The keys deleted by expiry since the last call, in deletion order.
    pub fn take_expired(&mut self) -> Vec<Key> {
        self.expired_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    #[cold]
    fn keep_expired(&mut self, key: Key) {
        if let Some(log) = self.expired_log.as_mut() {
            log.push(key);
        }
    }

    /// Sets how accesses are tracked from now on (`maxmemory-policy`). Existing fields
    /// are not converted: as in Redis, they read oddly until keys are touched again.
    pub fn set_access_tracking(&mut self, access: AccessTracking) {
        let no_touch = matches!(self.access, Access::Untouched { .. });
        self.tracking = access;
        self.access = Access::of(access, no_touch);
    }

    /// How accesses are tracked.
    #[must_use]
    pub fn access_tracking(&self) -> AccessTracking {
        self.tracking
    }

    /// CLIENT NO-TOUCH: while on, reads and writes leave the keys' access fields as they
    /// are (new keys still get a fresh one); [`Db::touch`] still updates them.
    pub fn set_no_touch(&mut self, on: bool) {
        self.access = Access::of(self.tracking, on);
    }

    /// TOUCH: true when `key` exists, updating its access field even under NO-TOUCH.
    pub fn touch(&mut self, key: &[u8], now_ms: i64) -> bool {
        let Some(idx) = self.live_index(key, now_ms) else {
            return false;
        };
        let entry = self.main.value_at_mut_unrecorded(idx);
        entry.access =
            Access::of(self.tracking, false).touched(entry.access, &mut self.rng, now_ms);
        true
    }

    /// RESTORE's IDLETIME (LRU tracking) or FREQ (LFU tracking) for `key`
    /// (`objectSetLRUOrLFU`); the one that does not match the tracking is ignored.
    pub fn set_access(&mut self, key: &[u8], idle_s: Option<i64>, freq: Option<i64>, now_ms: i64) {
        let field = match (self.tracking, idle_s, freq) {
            (AccessTracking::Lfu { .. }, _, Some(f)) => {
                (lfu_minutes(now_ms) << 8) | (f.clamp(0, 255) as u32)
            }
            (AccessTracking::Lru, Some(idle), _) => {
                lru_clock(now_ms).wrapping_sub(u32::try_from(idle).unwrap_or(u32::MAX))
            }
            _ => return,
        };
        if let Some(idx) = self.main.lookup_index(key) {
            // Not part of a snapshot, like the access on a read.
            self.main.value_at_mut_unrecorded(idx).access = field;
        }
    }

    /// Starts (or stops) recording [`KeyEvent`]s for [`Db::take_events`].
    pub fn set_event_log(&mut self, on: bool) {
        self.log_events = on;
        if !on {
            self.events = Vec::new();
        }
    }

    /// Whether events wait in the log.
    #[must_use]
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The events recorded since the last call, in order.
    pub fn take_events(&mut self) -> Vec<(KeyEvent, Box<[u8]>)> {
        mem::take(&mut self.events)
    }

    /// Gives back an emptied log's allocation.
    pub fn return_events(&mut self, mut log: Vec<(KeyEvent, Box<[u8]>)>) {
        if self.events.is_empty() {
            log.clear();
            self.events = log;
        }
    }

    #[cold]
    fn log_event(&mut self, event: KeyEvent, key: &[u8]) {
        self.events.push((event, key.into()));
    }

    /// An expired key was deleted: counted, and logged when events are on.
    #[inline]
    fn note_expired(&mut self, key: &[u8]) {
        self.stats.expired_keys += 1;
        if self.log_events {
            self.log_event(KeyEvent::Expired, key);
        }
    }

    /// A key was added.
    #[inline]
    fn note_new(&mut self, key: &[u8]) {
        if self.log_events {
            self.log_event(KeyEvent::New, key);
        }
    }

    /// A blocked client waits on `key`: its creation or replacement is reported by
    /// [`Db::take_ready`].
    pub fn wait_on(&mut self, key: &[u8]) {
        if !self.waited.contains(key) {
            self.waited.insert(key.into());
        }
    }

    /// No blocked client waits on `key` any more.
    pub fn stop_waiting(&mut self, key: &[u8]) {
        self.waited.remove(key);
    }

    /// Keys waited on.
    #[must_use]
    pub fn waited_len(&self) -> usize {
        self.waited.len()
    }

    /// Forgets every waited key (the registry re-declares them).
    pub fn clear_waited(&mut self) {
        self.waited.clear();
        self.ready.clear();
    }

    /// Waited keys created or replaced since the last call (in order, maybe repeated).
    pub fn take_ready(&mut self) -> Vec<Box<[u8]>> {
        mem::take(&mut self.ready)
    }

    /// Whether a waited key was created or replaced since [`Db::take_ready`].
    #[must_use]
    #[inline]
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Reports every waited key as ready, to be checked (SWAPDB).
    pub fn ready_all_waited(&mut self) {
        self.ready.extend(self.waited.iter().cloned());
    }

    /// Exchanges the waited keys with `other`'s (SWAPDB keeps them with the number).
    pub fn swap_waits(&mut self, other: &mut Db) {
        mem::swap(&mut self.waited, &mut other.waited);
        mem::swap(&mut self.ready, &mut other.ready);
    }

    /// A key was created, replaced or deleted: report it when waited on.
    #[inline]
    fn note_stored(&mut self, key: &[u8]) {
        if !self.waited.is_empty() && self.waited.contains(key) {
            self.ready.push(key.into());
        }
    }

    /// Starts keeping per-slot counts and key lists (cluster mode), indexing the keys
    /// already present.
    pub fn enable_slot_index(&mut self) {
        if self.slots.is_some() {
            return;
        }
        let mut ix = SlotIndex::new();
        for (i, (key, entry)) in self.main.iter().enumerate() {
            ix.inserted(i, key_hash_slot(key), entry.expire_at_ms != NO_EXPIRE);
        }
        self.slots = Some(Box::new(ix));
    }

    /// Whether this database keeps per-slot counts (cluster mode).
    #[must_use]
    pub fn has_slot_index(&self) -> bool {
        self.slots.is_some()
    }

    /// Keys in hash `slot` (expired ones not yet deleted included, as Valkey's
    /// COUNTKEYSINSLOT); 0 without a slot index.
    #[must_use]
    pub fn keys_in_slot(&self, slot: u16) -> usize {
        self.slots.as_ref().map_or(0, |ix| ix.keys_in(slot))
    }

    /// Keys with a TTL in hash `slot`; 0 without a slot index.
    #[must_use]
    pub fn expires_in_slot(&self, slot: u16) -> usize {
        self.slots.as_ref().map_or(0, |ix| ix.expires_in(slot))
    }

    /// The keys and entries of hash `slot` (expired ones included); none without a slot
    /// index.
    pub fn slot_entries(&self, slot: u16) -> impl Iterator<Item = (&[u8], &Entry)> + '_ {
        self.slots
            .as_deref()
            .into_iter()
            .flat_map(move |ix| ix.entries(slot))
            .map(|idx| self.main.entry_at(idx))
    }

    /// The non-empty slots with their counts, in slot order; none without a slot index.
    pub fn slot_counts(&self) -> impl Iterator<Item = SlotCounts> + '_ {
        self.slots
            .as_deref()
            .into_iter()
            .flat_map(SlotIndex::non_empty)
    }

    /// The per-slot counts taken when the cut in progress began (cluster mode), once.
    pub fn take_cut_slot_counts(&mut self) -> Option<Vec<SlotCounts>> {
        self.cut_slot_counts.take()
    }

    /// Removes the entry at `idx` of `main`, keeping the slot index in step.
    fn remove_main_at(&mut self, idx: usize) -> (Key, Entry) {
        let (key, entry) = self.main.remove_at(idx);
        if let Some(ix) = self.slots.as_deref_mut() {
            let main = &self.main;
            ix.removed(
                idx,
                key_hash_slot(&key),
                entry.expire_at_ms != NO_EXPIRE,
                || key_hash_slot(main.entry_at(idx).0),
            );
        }
        (key, entry)
    }

    /// After a key was appended to `main`: index it.
    #[inline]
    fn index_new_key(&mut self, key: &[u8], expire_at_ms: i64) {
        if let Some(ix) = self.slots.as_deref_mut() {
            ix.inserted(
                self.main.len() - 1,
                key_hash_slot(key),
                expire_at_ms != NO_EXPIRE,
            );
        }
    }

    /// After a key's TTL changed from `old` to `new` (either may be `NO_EXPIRE`).
    #[inline]
    fn index_ttl_change(&mut self, key: &[u8], old: i64, new: i64) {
        if let Some(ix) = self.slots.as_deref_mut()
            && (old == NO_EXPIRE) != (new == NO_EXPIRE)
        {
            ix.ttl_changed(key_hash_slot(key), new != NO_EXPIRE);
        }
    }

    /// Number of keys, including expired keys not yet deleted (as Redis's DBSIZE).
    #[must_use]
    pub fn len(&self) -> usize {
        self.main.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.main.is_empty()
    }

    /// Number of keys with a TTL.
    #[must_use]
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    #[must_use]
    pub fn stats(&self) -> DbStats {
        self.stats
    }

    /// CONFIG RESETSTAT: `expired_keys` starts again from 0.
    pub fn reset_expired_keys(&mut self) {
        self.stats.expired_keys = 0;
    }

    #[must_use]
    pub fn keyspace_info(&self) -> KeyspaceInfo {
        KeyspaceInfo {
            keys: self.main.len(),
            expires: self.expires.len(),
            avg_ttl_ms: self.avg_ttl_ms,
        }
    }

    /// Changes made to this database so far (never decreases; the save logic keeps its
    /// own baseline), as Redis's `dirty` counter counts them.
    #[must_use]
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// As [`Db::clear`], but hands the old keys back in a database of their own, so the
    /// caller can free them on another thread (lazy free). During a snapshot cut it clears
    /// in place (the cut keeps what it needs) and returns `None`.
    pub fn detach_contents(&mut self) -> Option<Db> {
        if self.main.has_cut() {
            self.clear();
            return None;
        }
        self.ready_all_waited();
        self.changes += self.main.len() as u64;
        let mut old = Db::new(splitmix64(&mut self.rng));
        mem::swap(&mut self.main, &mut old.main);
        mem::swap(&mut self.expires, &mut old.expires);
        self.avg_ttl_ms = 0;
        if let Some(ix) = self.slots.as_deref_mut() {
            ix.clear();
        }
        Some(old)
    }

    /// Drops every key (FLUSHDB). Counters are kept. Every waited key is reported, as
    /// deleted (Redis 7.0's `scanDatabaseForDeletedStreams`: a blocked XREADGROUP is
    /// answered).
    pub fn clear(&mut self) {
        self.ready_all_waited();
        self.changes += self.main.len() as u64;
        self.main.clear();
        self.expires.clear();
        self.avg_ttl_ms = 0;
        if let Some(ix) = self.slots.as_deref_mut() {
            ix.clear();
        }
    }

    /// Deletes the entry at `idx` of `main` and its expires index entry.
    fn delete_at(&mut self, idx: usize) -> (Key, Entry) {
        let (key, entry) = self.remove_main_at(idx);
        // Deletion (DEL, expiry, RENAME's source) is reported too: a blocked XREADGROUP
        // is answered when its stream goes (Redis's signalDeletedKeyAsReady).
        self.note_stored(&key);
        if entry.expire_at_ms != NO_EXPIRE {
            let indexed = self.expires.remove(&key);
            assert!(indexed.is_some(), "expires index lost a key with a TTL");
        }
        (key, entry)
    }

    /// Bytes of the expires index's own structure (MEMORY STATS).
    #[must_use]
    pub fn expires_structure_bytes(&self) -> usize {
        self.expires.structure_bytes()
    }

    /// DEBUG HTSTATS: the bucket statistics of the main table and of the expires index.
    #[must_use]
    pub fn hash_table_stats(&self) -> [Vec<crate::table::BucketStats>; 2] {
        [self.main.bucket_stats(), self.expires.bucket_stats()]
    }

    /// The main table, read-only (for warming lookups: `Table::bucket_addr`).
    #[must_use]
    #[inline]
    pub fn table(&self) -> &Table<Entry> {
        &self.main
    }

    /// Index of `key` in `main` if present and not expired; an expired key is deleted.
    #[inline]
    fn live_index(&mut self, key: &[u8], now_ms: i64) -> Option<usize> {
        let idx = self.main.lookup_index(key)?;
        if self.main.entry_at(idx).1.is_expired(now_ms) {
            if self.expiry_paused {
                return None;
            }
            let (expired, _) = self.delete_at(idx);
            self.note_expired(key);
            if self.expired_log.is_some() {
                self.keep_expired(expired);
            }
            return None;
        }
        Some(idx)
    }

    /// The value of `key`, updating its access time (GET and friends).
    #[inline]
    pub fn get(&mut self, key: &[u8], now_ms: i64) -> Option<&Value> {
        let idx = self.live_index(key, now_ms)?;
        // The access field is not part of a snapshot: a read copies no snapshot page.
        let entry = self.main.value_at_mut_unrecorded(idx);
        entry.access = self.access.touched(entry.access, &mut self.rng, now_ms);
        Some(&entry.value)
    }

    /// The value of `key` for a read that may also advance the value's own incremental
    /// rehash, as Redis's dict lookups and random picks step a rehash in progress. Like
    /// [`Db::get`] it updates the access time, counts no change and copies no snapshot
    /// page, so the caller may change only the value's layout, never its content (a
    /// snapshot serializes a set's members in arena order, which a rehash keeps).
    #[inline]
    pub fn get_for_layout(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Value> {
        let idx = self.live_index(key, now_ms)?;
        let entry = self.main.value_at_mut_unrecorded(idx);
        entry.access = self.access.touched(entry.access, &mut self.rng, now_ms);
        Some(&mut entry.value)
    }

    /// [`Db::get_mut`] that counts no change: for commands that count what they really
    /// changed with [`Db::count_changes`] (SETBIT and BITFIELD SET, as Redis's `dirty`,
    /// count nothing when the bits were already so).
    pub fn get_mut_uncounted(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Value> {
        let idx = self.live_index(key, now_ms)?;
        let entry = self.main.value_at_mut(idx);
        entry.access = self.access.touched(entry.access, &mut self.rng, now_ms);
        Some(&mut entry.value)
    }

    /// Counts `n` changes (Redis's `server.dirty += n`), after [`Db::get_mut_uncounted`].
    pub fn count_changes(&mut self, n: u64) {
        self.changes += n;
    }

    /// The value of `key` for in-place modification, updating its access time.
    #[inline]
    pub fn get_mut(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Value> {
        let idx = self.live_index(key, now_ms)?;
        self.changes += 1;
        let entry = self.main.value_at_mut(idx);
        entry.access = self.access.touched(entry.access, &mut self.rng, now_ms);
        Some(&mut entry.value)
    }

    /// The value of `key` for in-place modification as [`Db::get_mut`] does, storing
    /// `make()` first (no expiry) when the key is absent: one lookup when it exists (a
    /// push, HSET, ZADD on an existing key). The bool is true when it was created.
    #[inline]
    pub fn get_mut_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: i64,
        make: impl FnOnce() -> Value,
    ) -> (&mut Value, bool) {
        let (idx, created) = if let Some(idx) = self.live_index(key, now_ms) {
            self.changes += 1;
            (idx, false)
        } else {
            self.set(key, make(), SetExpire::Clear, now_ms);
            (self.main.index_of(key).expect("just stored"), true)
        };
        let entry = self.main.value_at_mut(idx);
        entry.access = self.access.touched(entry.access, &mut self.rng, now_ms);
        (&mut entry.value, created)
    }

    /// The entry of `key` without touching its access time (TTL, OBJECT, TYPE).
    pub fn lookup_entry(&mut self, key: &[u8], now_ms: i64) -> Option<&Entry> {
        let idx = self.live_index(key, now_ms)?;
        Some(self.main.entry_at(idx).1)
    }

    /// True when `key` exists (EXISTS); does not touch its access time.
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.live_index(key, now_ms).is_some()
    }

    /// Stores `value` under `key` with one table lookup, returning the previous value of
    /// a live key (for `SET ... GET`).
    pub fn set(
        &mut self,
        key: &[u8],
        value: Value,
        expire: SetExpire,
        now_ms: i64,
    ) -> Option<Value> {
        self.changes += 1;
        match self.main.entry(key) {
            Slot::Occupied(mut slot) => {
                let entry = slot.get_mut();
                let expired = entry.is_expired(now_ms);
                let old_expire = entry.expire_at_ms;
                let new_expire = match expire {
                    SetExpire::Keep if !expired => old_expire,
                    SetExpire::Keep | SetExpire::Clear => NO_EXPIRE,
                    SetExpire::At(ms) => ms.max(NO_EXPIRE + 1),
                };
                let old = mem::replace(&mut entry.value, value);
                entry.expire_at_ms = new_expire;
                entry.access =
                    self.access
                        .overwritten(entry.access, expired, &mut self.rng, now_ms);
                sync_expires(&mut self.expires, key, old_expire, new_expire);
                self.index_ttl_change(key, old_expire, new_expire);
                self.note_stored(key);
                if expired {
                    self.note_expired(key);
                    self.note_new(key);
                    None
                } else {
                    Some(old)
                }
            }
            Slot::Vacant(slot) => {
                let expire_at_ms = match expire {
                    SetExpire::At(ms) => ms.max(NO_EXPIRE + 1),
                    SetExpire::Keep | SetExpire::Clear => NO_EXPIRE,
                };
                slot.insert(Entry {
                    value,
                    expire_at_ms,
                    access: self.access.fresh(now_ms),
                });
                if expire_at_ms != NO_EXPIRE {
                    sync_expires(&mut self.expires, key, NO_EXPIRE, expire_at_ms);
                }
                self.index_new_key(key, expire_at_ms);
                self.note_new(key);
                self.note_stored(key);
                None
            }
        }
    }

    /// Deletes `key` (DEL/UNLINK), returning its value and expiry time if it was live.
    pub fn remove(&mut self, key: &[u8], now_ms: i64) -> Option<(Value, Option<i64>)> {
        let idx = self.live_index(key, now_ms)?;
        self.changes += 1;
        let (_, entry) = self.delete_at(idx);
        let expire = entry.expire_at_ms();
        Some((entry.value, expire))
    }

    /// Removes a live key because the expiry time a command gave it is already past
    /// (Valkey's `deleteExpiredKeyFromOverwriteAndPropagate`): counted in
    /// `expired_keys` and logged as an expiry, like a key the clock removed.
    pub fn remove_expired(&mut self, key: &[u8], now_ms: i64) -> Option<Value> {
        let (value, _) = self.remove(key, now_ms)?;
        self.note_expired(key);
        Some(value)
    }

    /// Expiry time of a live key; `None` when the key is absent or has no TTL (use
    /// [`Db::lookup_entry`] to tell those apart).
    pub fn expire_at(&mut self, key: &[u8], now_ms: i64) -> Option<i64> {
        self.lookup_entry(key, now_ms)?.expire_at_ms()
    }

    /// Sets the expiry time of a live key (EXPIRE family, already converted to absolute
    /// ms). Returns false when the key is absent. A time in the past is stored as is; the
    /// command layer deletes the key instead when Redis would.
    pub fn set_expire_at(&mut self, key: &[u8], at_ms: i64, now_ms: i64) -> bool {
        let Some(idx) = self.live_index(key, now_ms) else {
            return false;
        };
        let at_ms = at_ms.max(NO_EXPIRE + 1);
        self.changes += 1;
        let entry = self.main.value_at_mut(idx);
        let old = mem::replace(&mut entry.expire_at_ms, at_ms);
        sync_expires(&mut self.expires, key, old, at_ms);
        self.index_ttl_change(key, old, at_ms);
        true
    }

    /// Removes the TTL of a live key (PERSIST); true when it had one.
    pub fn persist(&mut self, key: &[u8], now_ms: i64) -> bool {
        let Some(idx) = self.live_index(key, now_ms) else {
            return false;
        };
        let entry = self.main.value_at_mut(idx);
        let old = mem::replace(&mut entry.expire_at_ms, NO_EXPIRE);
        self.changes += u64::from(old != NO_EXPIRE);
        sync_expires(&mut self.expires, key, old, NO_EXPIRE);
        self.index_ttl_change(key, old, NO_EXPIRE);
        old != NO_EXPIRE
    }

    /// Seconds since `key` was last accessed (OBJECT IDLETIME), without touching it.
    pub fn idle_time_s(&mut self, key: &[u8], now_ms: i64) -> Option<u64> {
        Some(self.lookup_entry(key, now_ms)?.idle_time_s(now_ms))
    }

    /// Removes a live key and hands it over whole (MOVE, RENAME, cross-shard moves).
    pub fn take(&mut self, key: &[u8], now_ms: i64) -> Option<TakenKey> {
        let idx = self.live_index(key, now_ms)?;
        self.changes += 1;
        let (key, entry) = self.delete_at(idx);
        let expire_at_ms = entry.expire_at_ms();
        Some(TakenKey {
            key: key.into_boxed_slice(),
            value: entry.value,
            expire_at_ms,
        })
    }

    /// Stores a taken key, replacing any existing value (returned if it was live). The
    /// key is stored inline when short; a long key's box moves to the expires index.
    pub fn put(&mut self, taken: TakenKey, now_ms: i64) -> Option<Value> {
        let TakenKey {
            key,
            value,
            expire_at_ms,
        } = taken;
        let new_expire = expire_at_ms.map_or(NO_EXPIRE, |ms| ms.max(NO_EXPIRE + 1));
        let access = self.access.fresh(now_ms);
        self.changes += 1;
        match self.main.entry(&key) {
            Slot::Occupied(mut slot) => {
                let entry = slot.get_mut();
                let expired = entry.is_expired(now_ms);
                let old_expire = mem::replace(&mut entry.expire_at_ms, new_expire);
                let old = mem::replace(&mut entry.value, value);
                entry.access = access;
                sync_expires(&mut self.expires, &key, old_expire, new_expire);
                self.index_ttl_change(&key, old_expire, new_expire);
                if expired {
                    self.note_expired(&key);
                }
                // Every caller adds the key anew (RENAME, MOVE, COPY, RESTORE: Redis's
                // dbDelete + dbAdd), so it is "new" even over a live key.
                self.note_new(&key);
                self.note_stored(&key);
                if expired { None } else { Some(old) }
            }
            Slot::Vacant(slot) => {
                // Copies the key (inline when short); the expires index, if needed,
                // takes over the box.
                slot.insert(Entry {
                    value,
                    expire_at_ms: new_expire,
                    access,
                });
                self.index_new_key(&key, new_expire);
                self.note_new(&key);
                self.note_stored(&key);
                if new_expire != NO_EXPIRE {
                    self.expires.insert(key, new_expire);
                }
                None
            }
        }
    }

    /// Gives a key taken by [`Db::take`] back (a cross-shard move that was refused):
    /// as [`Db::put`], but not logged as a new key, since for Redis it never left.
    pub fn put_back(&mut self, taken: TakenKey, now_ms: i64) -> Option<Value> {
        let log = mem::replace(&mut self.log_events, false);
        let old = self.put(taken, now_ms);
        self.log_events = log;
        old
    }

    /// RENAME within this database: moves `from` (with its TTL) over `to`. False when
    /// `from` does not exist. Renaming a key to itself succeeds without change.
    pub fn rename(&mut self, from: &[u8], to: &[u8], now_ms: i64) -> bool {
        if from == to {
            return self.contains(from, now_ms);
        }
        let Some(mut taken) = self.take(from, now_ms) else {
            return false;
        };
        taken.key = to.into();
        self.put(taken, now_ms);
        true
    }

    /// A random key and its entry for eviction's samples: from every key, or
    /// (`volatile`) from those with a TTL. Expired keys are included (eviction may take
    /// them, as Redis's samples of `db->dict` do).
    pub fn eviction_sample(&mut self, volatile: bool, rng: &mut u64) -> Option<(&[u8], &Entry)> {
        let idx = if volatile {
            let at = self.expires.random_index(rng)?;
            let key = self.expires.entry_at(at).0;
            self.main.lookup_index(key)?
        } else {
            self.main.random_index(rng)?
        };
        Some(self.main.entry_at(idx))
    }

    /// Deletes `key` because memory is over `maxmemory`: as DEL, but not counted as a
    /// change of the dataset by a command (WATCH and the stream of effects learn of it
    /// from the evicting code). Returns what the key held ([`crate::memory::key_bytes`]);
    /// `None` when the key is absent, or has no TTL and `only_with_ttl` (a volatile
    /// policy's candidate that was persisted since).
    pub fn evict(&mut self, key: &[u8], only_with_ttl: bool) -> Option<usize> {
        let idx = self.main.lookup_index(key)?;
        let (k, entry) = self.main.entry_at(idx);
        if only_with_ttl && entry.expire_at_ms == NO_EXPIRE {
            return None;
        }
        let bytes = crate::memory::key_bytes(k, entry);
        self.delete_at(idx);
        Some(bytes)
    }

    /// A random live key (RANDOMKEY); expired keys met on the way are deleted. While
    /// expiry is paused they stay, and after [`RANDOM_KEY_PAUSED_TRIES`] expired picks
    /// the last one is returned, as Redis 7.0 does for a dataset it may not change
    /// (otherwise a database of only expired keys would loop for ever).
    pub fn random_key(&mut self, now_ms: i64, rng: &mut u64) -> Option<&[u8]> {
        let mut tries = 0;
        let idx = loop {
            let idx = self.main.random_index(rng)?;
            if !self.main.entry_at(idx).1.is_expired(now_ms) {
                break idx;
            }
            if self.expiry_paused {
                tries += 1;
                if tries >= RANDOM_KEY_PAUSED_TRIES {
                    break idx;
                }
                continue;
            }
            let (key, _) = self.delete_at(idx);
            self.note_expired(&key);
            if self.expired_log.is_some() {
                self.keep_expired(key);
            }
        };
        Some(self.main.entry_at(idx).0)
    }

    /// SCAN step over live keys (see [`Table::scan`] for the guarantees). Expired keys
    /// are skipped, not deleted.
    pub fn scan(&self, cursor: u64, now_ms: i64, f: impl FnMut(&[u8], &Entry)) -> u64 {
        self.scan_noting_expired(cursor, now_ms, f, |_| {})
    }

    /// [`Db::scan`] that also hands the names of the expired keys it steps over to
    /// `expired` (SCAN deletes those afterwards, as Redis 7.0's `scanGenericCommand`
    /// does with `expireIfNeeded`; deleting needs `&mut self`, so the caller does it).
    pub fn scan_noting_expired(
        &self,
        cursor: u64,
        now_ms: i64,
        mut f: impl FnMut(&[u8], &Entry),
        mut expired: impl FnMut(&[u8]),
    ) -> u64 {
        self.main.scan(cursor, |k, e| {
            if e.is_expired(now_ms) {
                expired(k);
            } else {
                f(k, e);
            }
        })
    }

    /// Every key and entry, expired ones included (for snapshots and DEBUG).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> + '_ {
        self.main.iter()
    }

    /// Starts a copy-on-write snapshot cut of this database's keys (see
    /// [`Table::begin_cut`]); `index` is the database number the snapshot records for
    /// it, kept even if SWAPDB moves this database elsewhere during the cut.
    pub fn begin_cut(&mut self, index: usize) {
        self.main.begin_cut_freezing(Entry::freeze_if_large);
        self.cut_index = index;
        self.cut_slot_counts = self.slots.as_deref().map(|ix| ix.non_empty().collect());
    }

    /// Database number recorded by [`Db::begin_cut`], while a cut is in progress.
    #[must_use]
    pub fn cut_index(&self) -> Option<usize> {
        self.main.has_cut().then_some(self.cut_index)
    }

    /// Hands up to about `budget` entries of the cut to `f` (expired keys included, as
    /// Redis saves them); true when the cut is complete.
    pub fn cut_step(&mut self, budget: usize, f: impl FnMut(&[u8], CutEntry<'_, Entry>)) -> bool {
        self.main.cut_step(budget, f)
    }

    /// Hands up to `budget` entries that writes copied aside to `f`; returns how many.
    pub fn cut_step_copies(
        &mut self,
        budget: usize,
        f: impl FnMut(&[u8], CutEntry<'_, Entry>),
    ) -> usize {
        self.main.cut_step_copies(budget, f)
    }

    /// Ends or abandons the cut, releasing what it held.
    pub fn end_cut(&mut self) -> Option<CutStats> {
        self.cut_slot_counts = None;
        self.main.end_cut()
    }

    /// Counters of the cut in progress.
    #[must_use]
    pub fn cut_stats(&self) -> Option<CutStats> {
        self.main.cut_stats()
    }

    /// Entries of the cut copied aside by writes and not yet serialized.
    #[must_use]
    pub fn cut_pending_copies(&self) -> usize {
        self.main.cut_pending_copies()
    }

    /// Redis's active expiry cycle for this database: rounds of up to
    /// [`ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`] random keys with a TTL, deleting the expired
    /// ones, repeated while more than [`ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE_PERCENT`] % of
    /// a round had expired and the budget lasts.
    pub fn active_expire_cycle(
        &mut self,
        now_ms: i64,
        budget: &mut ExpireBudget,
    ) -> ExpireCycleStats {
        let mut cycle = ExpireCycleStats::default();
        if self.expiry_paused {
            return cycle;
        }
        loop {
            if self.expires.is_empty() {
                break;
            }
            if budget.samples_left == 0 {
                cycle.budget_exhausted = true;
                break;
            }
            let round = ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP
                .min(self.expires.len())
                .min(usize::try_from(budget.samples_left).unwrap_or(usize::MAX));
            let (mut sampled, mut expired) = (0u64, 0u64);
            let (mut ttl_sum, mut ttl_count) = (0i64, 0i64);
            for _ in 0..round {
                let Some(idx) = self.expires.random_index(&mut self.rng) else {
                    break;
                };
                sampled += 1;
                let when = *self.expires.entry_at(idx).1;
                if now_ms > when {
                    let (key, _) = self.expires.remove_at(idx);
                    let at = self
                        .main
                        .lookup_index(&key)
                        .expect("expires index holds a key missing from the database");
                    self.remove_main_at(at);
                    self.note_stored(&key);
                    if self.log_events {
                        self.log_event(KeyEvent::Expired, &key);
                    }
                    expired += 1;
                    if self.expired_log.is_some() {
                        self.keep_expired(key);
                    }
                } else {
                    ttl_sum = ttl_sum.saturating_add(when - now_ms);
                    ttl_count += 1;
                }
            }
            budget.samples_left -= sampled;
            cycle.sampled += sampled;
            cycle.expired += expired;
            self.stats.expired_keys += expired;
            if ttl_count > 0 {
                let sample_avg = ttl_sum / ttl_count;
                self.avg_ttl_ms = if self.avg_ttl_ms == 0 {
                    sample_avg
                } else {
                    self.avg_ttl_ms / AVG_TTL_SMOOTHING_WEIGHT * (AVG_TTL_SMOOTHING_WEIGHT - 1)
                        + sample_avg / AVG_TTL_SMOOTHING_WEIGHT
                };
            }
            if sampled == 0
                || expired * 100 / sampled <= ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE_PERCENT
            {
                break;
            }
        }
        cycle
    }
}

/// Brings the expires index in line after a key's expiry changed from `old` to `new`.
fn sync_expires(expires: &mut Table<i64>, key: &[u8], old: i64, new: i64) {
    if new != NO_EXPIRE {
        match expires.entry(key) {
            Slot::Occupied(mut slot) => *slot.get_mut() = new,
            Slot::Vacant(slot) => {
                slot.insert(new);
            }
        }
    } else if old != NO_EXPIRE {
        let indexed = expires.remove(key);
        assert!(indexed.is_some(), "expires index lost a key with a TTL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StrValue;

    fn v(text: &str) -> Value {
        Value::from_bytes(text.as_bytes())
    }

    /// Checks that the expires index matches the TTLs stored with the values.
    fn check_sync(db: &Db) {
        let with_ttl: Vec<_> = db
            .iter()
            .filter(|(_, e)| e.expire_at_ms().is_some())
            .collect();
        assert_eq!(with_ttl.len(), db.expires_len());
        for (k, e) in with_ttl {
            assert_eq!(db.expires.get(k).copied(), e.expire_at_ms());
        }
    }

    #[test]
    fn set_get_remove() {
        let mut db = Db::new(1);
        assert_eq!(db.set(b"k", v("1"), SetExpire::Clear, 0), None);
        assert_eq!(db.get(b"k", 0), Some(&Value::Str(StrValue::Int(1))));
        assert_eq!(db.set(b"k", v("x"), SetExpire::Clear, 0), Some(v("1")));
        assert!(db.contains(b"k", 0));
        assert_eq!(db.remove(b"k", 0), Some((v("x"), None)));
        assert_eq!(db.remove(b"k", 0), None);
        assert!(db.is_empty());
        if let Some(Value::Str(s)) = db.get_mut(b"nope", 0) {
            panic!("absent key returned {s:?}");
        }
    }

    #[test]
    fn lazy_expiry() {
        let mut db = Db::new(2);
        db.set(b"k", v("a"), SetExpire::At(1000), 0);
        assert_eq!(db.expire_at(b"k", 0), Some(1000));
        // Expires strictly after the deadline.
        assert!(db.get(b"k", 1000).is_some());
        assert_eq!(db.len(), 1);
        assert_eq!(db.get(b"k", 1001), None);
        assert_eq!(db.len(), 0);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.stats().expired_keys, 1);
        // Every accessor expires lazily.
        for access in 0..6 {
            db.set(b"k", v("a"), SetExpire::At(10), 0);
            let found = match access {
                0 => db.contains(b"k", 11),
                1 => db.lookup_entry(b"k", 11).is_some(),
                2 => db.remove(b"k", 11).is_some(),
                3 => db.set_expire_at(b"k", 100, 11),
                4 => db.persist(b"k", 11),
                _ => db.take(b"k", 11).is_some(),
            };
            assert!(!found, "accessor {access}");
            assert!(db.is_empty(), "accessor {access}");
            check_sync(&db);
        }
        assert_eq!(db.stats().expired_keys, 7);
        // SET over an expired key: no old value, the stale TTL does not survive KEEPTTL.
        db.set(b"k", v("a"), SetExpire::At(10), 0);
        assert_eq!(db.set(b"k", v("b"), SetExpire::Keep, 11), None);
        assert_eq!(db.expire_at(b"k", 11), None);
        assert_eq!(db.stats().expired_keys, 8);
        check_sync(&db);
    }

    #[test]
    fn ttl_changes_keep_index_in_sync() {
        let mut db = Db::new(3);
        db.set(b"k", v("a"), SetExpire::At(500), 0);
        db.set(b"k", v("b"), SetExpire::Keep, 0);
        assert_eq!(db.expire_at(b"k", 0), Some(500));
        db.set(b"k", v("c"), SetExpire::At(700), 0);
        assert_eq!(db.expire_at(b"k", 0), Some(700));
        assert_eq!(db.expires_len(), 1);
        db.set(b"k", v("d"), SetExpire::Clear, 0);
        assert_eq!(db.expire_at(b"k", 0), None);
        assert_eq!(db.expires_len(), 0);
        assert!(db.set_expire_at(b"k", 900, 0));
        assert!(!db.set_expire_at(b"missing", 900, 0));
        assert_eq!(db.expires_len(), 1);
        assert!(db.persist(b"k", 0));
        assert!(!db.persist(b"k", 0));
        assert_eq!(db.expires_len(), 0);
        db.set(b"n", v("e"), SetExpire::Keep, 0);
        assert_eq!(db.expire_at(b"n", 0), None);
        assert_eq!(db.lookup_entry(b"n", 0).unwrap().expire_at_ms(), None);
        check_sync(&db);
    }

    #[test]
    fn lru_and_idle_time() {
        let mut db = Db::new(4);
        db.set(b"k", v("a"), SetExpire::Clear, 5_000);
        assert_eq!(db.idle_time_s(b"k", 65_000), Some(60));
        // lookup_entry and idle_time do not touch; get does.
        assert_eq!(
            db.lookup_entry(b"k", 70_000).unwrap().idle_time_s(70_000),
            65
        );
        db.get(b"k", 70_000);
        assert_eq!(db.idle_time_s(b"k", 72_000), Some(2));
        assert_eq!(db.idle_time_s(b"missing", 0), None);
    }

    #[test]
    fn no_touch_leaves_access_fields_but_touch_updates() {
        let mut db = Db::new(7);
        db.set_access_tracking(AccessTracking::Lfu {
            log_factor: 0,
            decay_minutes: 0,
        });
        let freq = |db: &mut Db| db.lookup_entry(b"k", 0).unwrap().lfu_freq(0, 0);
        db.set(b"k", v("a"), SetExpire::Clear, 0);
        db.set_no_touch(true);
        db.get(b"k", 0);
        db.get_mut(b"k", 0);
        assert_eq!(freq(&mut db), LFU_INIT_VAL);
        // A key created under NO-TOUCH still starts with a fresh field.
        db.set(b"n", v("b"), SetExpire::Clear, 0);
        assert_eq!(
            db.lookup_entry(b"n", 0).unwrap().lfu_freq(0, 0),
            LFU_INIT_VAL
        );
        assert!(db.touch(b"k", 0));
        assert!(!db.touch(b"missing", 0));
        assert_eq!(freq(&mut db), LFU_INIT_VAL + 1);
        // The policy changes under NO-TOUCH, which stays on until turned off.
        db.set_access_tracking(AccessTracking::Lru);
        db.set_access_tracking(AccessTracking::Lfu {
            log_factor: 0,
            decay_minutes: 0,
        });
        db.get(b"k", 0);
        assert_eq!(freq(&mut db), LFU_INIT_VAL + 1);
        db.set_no_touch(false);
        db.get(b"k", 0);
        assert_eq!(freq(&mut db), LFU_INIT_VAL + 2);
    }

    #[test]
    fn lfu_counts_decays_and_restores() {
        let mut db = Db::new(4);
        // Factor 0: every access counts (p = 1).
        db.set_access_tracking(AccessTracking::Lfu {
            log_factor: 0,
            decay_minutes: 1,
        });
        let freq = |db: &mut Db, now| db.lookup_entry(b"k", now).unwrap().lfu_freq(1, now);
        db.set(b"k", v("a"), SetExpire::Clear, 0);
        assert_eq!(freq(&mut db, 0), LFU_INIT_VAL);
        for _ in 0..10 {
            db.get(b"k", 1_000);
        }
        assert_eq!(freq(&mut db, 1_000), 15);
        // An overwrite keeps the counter and counts as an access.
        db.set(b"k", v("b"), SetExpire::Clear, 2_000);
        assert_eq!(freq(&mut db, 2_000), 16);
        // One decrement per idle minute; reading does not touch.
        assert_eq!(freq(&mut db, 3 * 60_000 + 2_000), 13);
        assert_eq!(freq(&mut db, 30 * 60_000), 0);
        // The counter saturates at 255.
        for _ in 0..300 {
            db.get(b"k", 0);
        }
        assert_eq!(freq(&mut db, 0), 255);
        db.set_access(b"k", None, Some(100), 0);
        assert_eq!(freq(&mut db, 0), 100);
        // IDLETIME is ignored under LFU; FREQ under LRU.
        db.set_access(b"k", Some(50), None, 0);
        assert_eq!(freq(&mut db, 0), 100);
        db.set_access_tracking(AccessTracking::Lru);
        db.set(b"k", v("c"), SetExpire::Clear, 10_000);
        db.set_access(b"k", None, Some(7), 10_000);
        assert_eq!(db.idle_time_s(b"k", 10_000), Some(0));
        db.set_access(b"k", Some(1000), None, 10_000);
        assert_eq!(db.idle_time_s(b"k", 12_000), Some(1002));
    }

    #[test]
    fn the_access_field_costs_no_memory() {
        // Value (32) + expiry (8) + access (4) + padding: the LRU/LFU field lives in what
        // was padding, so an entry is 48 bytes with or without it.
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }

    #[test]
    fn lfu_log_factor_slows_growth() {
        // With Redis's default factor 10, a thousand hits take the counter to about 18
        // (Redis's documented table: 100 hits → 10, 1000 → 18 for factor 10, from 0);
        // starting at LFU_INIT_VAL it stays well below 40.
        let mut db = Db::new(9);
        db.set_access_tracking(AccessTracking::Lfu {
            log_factor: 10,
            decay_minutes: 1,
        });
        db.set(b"k", v("a"), SetExpire::Clear, 0);
        for _ in 0..1000 {
            db.get(b"k", 0);
        }
        let f = db.lookup_entry(b"k", 0).unwrap().lfu_freq(1, 0);
        assert!((12..40).contains(&f), "counter {f}");
    }

    #[test]
    fn rename_take_put() {
        let mut db = Db::new(5);
        db.set(b"a", v("1"), SetExpire::At(1000), 0);
        db.set(b"b", v("2"), SetExpire::Clear, 0);
        assert!(db.rename(b"a", b"b", 0));
        assert_eq!(db.len(), 1);
        assert_eq!(db.get(b"b", 0), Some(&v("1")));
        assert_eq!(db.expire_at(b"b", 0), Some(1000));
        assert!(!db.rename(b"a", b"c", 0));
        assert!(db.rename(b"b", b"b", 0));
        assert!(!db.rename(b"zz", b"zz", 0));
        check_sync(&db);

        let mut other = Db::new(6);
        let taken = db.take(b"b", 0).unwrap();
        assert_eq!(
            taken,
            TakenKey {
                key: b"b"[..].into(),
                value: v("1"),
                expire_at_ms: Some(1000)
            }
        );
        assert_eq!(other.put(taken, 0), None);
        assert!(db.is_empty() && db.expires_len() == 0);
        assert_eq!(other.expire_at(b"b", 0), Some(1000));
        let replaced = other.put(
            TakenKey {
                key: b"b"[..].into(),
                value: v("x"),
                expire_at_ms: None,
            },
            0,
        );
        assert_eq!(replaced, Some(v("1")));
        assert_eq!(other.expires_len(), 0);
        check_sync(&db);
        check_sync(&other);
    }

    /// Recounts every slot of `db` from its keys and compares with its slot index.
    fn check_slots(db: &Db) {
        let mut keys = std::collections::BTreeMap::<u16, (usize, usize, Vec<Vec<u8>>)>::new();
        for (k, e) in db.iter() {
            let c = keys.entry(key_hash_slot(k)).or_default();
            c.0 += 1;
            c.1 += usize::from(e.expire_at_ms().is_some());
            c.2.push(k.to_vec());
        }
        let counted: Vec<SlotCounts> = db.slot_counts().collect();
        assert_eq!(counted.len(), keys.len());
        for (slot, (n, ttl, mut names)) in keys {
            assert_eq!(db.keys_in_slot(slot), n, "slot {slot}");
            assert_eq!(db.expires_in_slot(slot), ttl, "slot {slot}");
            let mut listed: Vec<Vec<u8>> = db.slot_entries(slot).map(|(k, _)| k.to_vec()).collect();
            listed.sort();
            names.sort();
            assert_eq!(listed, names, "slot {slot}");
        }
    }

    #[test]
    fn slot_index_follows_every_change() {
        let mut db = Db::new(10);
        db.set(b"before", v("x"), SetExpire::At(50), 0);
        db.enable_slot_index();
        assert!(db.has_slot_index());
        check_slots(&db);
        for i in 0..300 {
            let key = format!("{{t{}}}k{i}", i % 7);
            let exp = if i % 3 == 0 {
                SetExpire::At(100 + i)
            } else {
                SetExpire::Clear
            };
            db.set(key.as_bytes(), v("x"), exp, 0);
        }
        check_slots(&db);
        assert_eq!(db.keys_in_slot(key_hash_slot(b"t1")), 43);
        for i in (0..300).step_by(5) {
            db.remove(format!("{{t{}}}k{i}", i % 7).as_bytes(), 0);
        }
        check_slots(&db);
        db.persist(b"{t0}k3", 0);
        db.set_expire_at(b"{t1}k1", 500, 0);
        db.set(b"{t2}k2", v("y"), SetExpire::At(900), 0);
        db.set(b"{t2}k9", v("y"), SetExpire::Keep, 0);
        check_slots(&db);
        assert!(db.rename(b"{t1}k1", b"{t5}moved", 0));
        let taken = db.take(b"{t4}k4", 0).unwrap();
        db.put(taken, 0);
        db.put(
            TakenKey {
                key: b"{t6}new"[..].into(),
                value: v("z"),
                expire_at_ms: Some(70),
            },
            0,
        );
        check_slots(&db);
        // Lazy and active expiry delete through the index too.
        assert_eq!(db.get(b"before", 60), None);
        db.active_expire_cycle(200, &mut ExpireBudget::new(10_000));
        check_slots(&db);
        let mut rng = 3;
        while db.random_key(1_000, &mut rng).is_some() && db.expires_len() > 0 {
            db.active_expire_cycle(1_000, &mut ExpireBudget::new(10_000));
        }
        check_slots(&db);
        db.clear();
        check_slots(&db);
        assert_eq!(db.slot_counts().count(), 0);
    }

    #[test]
    fn cut_records_slot_counts_once() {
        let mut db = Db::new(11);
        db.enable_slot_index();
        db.set(b"{a}1", v("x"), SetExpire::At(10), 0);
        db.set(b"{a}2", v("x"), SetExpire::Clear, 0);
        db.begin_cut(0);
        db.set(b"{a}3", v("x"), SetExpire::Clear, 0);
        let counts = db.take_cut_slot_counts().unwrap();
        assert_eq!(
            counts,
            vec![SlotCounts {
                slot: key_hash_slot(b"a"),
                keys: 2,
                expires: 1
            }]
        );
        assert!(db.take_cut_slot_counts().is_none());
        db.end_cut();
        let mut plain = Db::new(12);
        plain.begin_cut(0);
        assert!(plain.take_cut_slot_counts().is_none());
        assert_eq!(plain.keys_in_slot(0), 0);
        plain.end_cut();
    }

    #[test]
    fn random_key_skips_and_deletes_expired() {
        let mut db = Db::new(7);
        let mut rng = 9;
        assert_eq!(db.random_key(0, &mut rng), None);
        for i in 0..50 {
            db.set(format!("dead{i}").as_bytes(), v("x"), SetExpire::At(10), 0);
        }
        db.set(b"alive", v("x"), SetExpire::Clear, 0);
        for _ in 0..20 {
            assert_eq!(db.random_key(100, &mut rng), Some(&b"alive"[..]));
        }
        assert!(db.len() < 51);
        check_sync(&db);
    }

    #[test]
    fn scan_skips_expired() {
        let mut db = Db::new(8);
        db.set(b"live", v("x"), SetExpire::Clear, 0);
        db.set(b"dead", v("x"), SetExpire::At(10), 0);
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = db.scan(cursor, 100, |k, _| seen.push(k.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, vec![b"live".to_vec()]);
    }

    #[test]
    fn detach_contents_hands_the_keys_over_and_counts_them() {
        let mut db = Db::new(7);
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), v("x"), SetExpire::At(1_000), 0);
        }
        let before = db.changes();
        let old = db.detach_contents().expect("no cut in progress");
        assert_eq!((db.len(), db.expires_len()), (0, 0));
        assert_eq!((old.len(), old.expires_len()), (100, 100));
        assert_eq!(db.changes(), before + 100);
        check_sync(&db);
        check_sync(&old);
        // During a cut the database clears in place and the cut still sees the keys.
        let mut db = old;
        db.begin_cut(0);
        assert!(db.detach_contents().is_none());
        assert!(db.is_empty());
        let mut seen = 0;
        while !db.cut_step(16, |_, _| seen += 1) {}
        assert_eq!(seen, 100);
    }

    #[test]
    fn active_expiry_removes_expired_keys_within_budget() {
        let mut db = Db::new(9);
        for i in 0..10_000 {
            let at = if i % 2 == 0 { 100 } else { 1_000_000 };
            db.set(format!("k{i}").as_bytes(), v("x"), SetExpire::At(at), 0);
        }
        for i in 0..1000 {
            db.set(format!("p{i}").as_bytes(), v("x"), SetExpire::Clear, 0);
        }
        // Nothing is expired yet: one round, then stop.
        let mut budget = ExpireBudget::new(1_000_000);
        let cycle = db.active_expire_cycle(50, &mut budget);
        assert_eq!(
            cycle,
            ExpireCycleStats {
                sampled: 20,
                expired: 0,
                budget_exhausted: false
            }
        );
        assert!(db.keyspace_info().avg_ttl_ms > 0);
        // A small budget stops the cycle early and says so.
        let mut budget = ExpireBudget::new(100);
        let cycle = db.active_expire_cycle(200, &mut budget);
        assert!(cycle.budget_exhausted && budget.is_exhausted());
        assert_eq!(cycle.sampled, 100);
        assert!(cycle.expired > 20);
        // Each cycle runs until a round finds at most 10% stale; called repeatedly, as
        // the server's cron does, the stale share of keys with a TTL settles near that.
        for _ in 0..50 {
            let cycle = db.active_expire_cycle(200, &mut ExpireBudget::new(1_000_000));
            assert!(!cycle.budget_exhausted);
        }
        let stale = db.iter().filter(|(_, e)| e.is_expired(200)).count();
        assert!(
            stale * 100 / (5000 + stale) < 20,
            "{stale} expired keys left"
        );
        assert_eq!(db.len(), 11_000 - 5000 + stale);
        assert_eq!(db.stats().expired_keys, (5000 - stale) as u64);
        check_sync(&db);
        let info = db.keyspace_info();
        assert_eq!((info.keys, info.expires), (db.len(), 5000 + stale));
        // Persistent keys are never sampled or touched.
        for i in 0..1000 {
            assert!(db.contains(format!("p{i}").as_bytes(), 200));
        }
        db.clear();
        assert_eq!((db.len(), db.expires_len()), (0, 0));
        assert_eq!(
            db.active_expire_cycle(200, &mut ExpireBudget::new(10)),
            ExpireCycleStats::default()
        );
    }
}
