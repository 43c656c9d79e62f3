//! WATCH: which clients watch which keys of this shard, and whether a watched key was
//! touched since.
//!
//! The registry lives on the shard that owns the keys (a client watching a key of another
//! shard registers there), so every write that touches a watched key marks it where it
//! happens, with no message. EXEC checks the marks on each owner shard while it holds the
//! transaction's locks there (the watched keys are locked as well), so nothing can touch
//! a key between the check and the commit. The rules are Redis 7.0's `multi.c`:
//! `touchWatchedKey`, `touchAllWatchedKeysInDb`, `isWatchedKeyExpired`.

use crate::shard::ShardData;
use percore_engine::db::Db;
use std::collections::HashMap;

/// A watched key: database and name.
pub type WatchKey = (u16, Box<[u8]>);

/// The most keys one client may watch; WATCH past it answers an error. Redis has no
/// limit; this one bounds the registry by clients × keys.
pub const MAX_WATCHED_KEYS_PER_CLIENT: usize = 1 << 20;

/// One client's watch of one key.
#[derive(Clone, Copy, Debug)]
struct Watcher {
    client: u64,
    /// The key was already logically expired when it was watched (Redis's `wk->expired`).
    expired: bool,
    /// The key held a live value when it was watched: if it is gone at EXEC without a
    /// touch, expiry deleted it (active or lazy expiry touches no watch here; Redis's
    /// `deleteExpiredKeyAndPropagate` signals the key as modified).
    live: bool,
    /// The key was touched since (Redis's `CLIENT_DIRTY_CAS`, kept per key here).
    dirty: bool,
}

/// The watched keys of one shard.
#[derive(Default)]
pub struct Registry {
    keys: HashMap<WatchKey, Vec<Watcher>>,
}

/// Whether `key` holds a value whose TTL has passed (Redis's `keyIsExpired`).
fn logically_expired(db: &Db, key: &[u8], now_ms: i64) -> bool {
    db.table()
        .get(key)
        .and_then(percore_engine::db::Entry::expire_at_ms)
        .is_some_and(|at| at <= now_ms)
}

fn present(db: &Db, key: &[u8]) -> bool {
    db.table().get(key).is_some()
}

impl Registry {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Distinct keys watched (INFO's `total_watched_keys`).
    pub fn watched_keys(&self) -> usize {
        self.keys.len()
    }

    /// Registers `client`'s watch of `keys` in `db` (a key it already watches is skipped).
    pub fn watch(data: &mut ShardData, client: u64, db: usize, keys: &[&[u8]]) {
        let now = data.now_ms;
        for &k in keys {
            let expired = logically_expired(data.keyspace.db(db), k, now);
            let live = !expired && present(data.keyspace.db(db), k);
            let list = data.watches.keys.entry((db as u16, k.into())).or_default();
            if !list.iter().any(|w| w.client == client) {
                list.push(Watcher {
                    client,
                    expired,
                    live,
                    dirty: false,
                });
            }
        }
    }

    /// Drops `client`'s watches of `keys`.
    pub fn unwatch(&mut self, client: u64, keys: &[WatchKey]) {
        for k in keys {
            if let Some(list) = self.keys.get_mut(k) {
                list.retain(|w| w.client != client);
                if list.is_empty() {
                    self.keys.remove(k);
                }
            }
        }
    }

    /// EXEC's check on this shard: none of `client`'s watched `keys` was touched, and
    /// none that was alive when watched has expired since. The watches are dropped
    /// either way (EXEC unwatches everything).
    pub fn check_and_unwatch(data: &mut ShardData, client: u64, keys: &[WatchKey]) -> bool {
        let now = data.now_ms;
        let mut ok = true;
        for k in keys {
            let Some(w) = data
                .watches
                .keys
                .get(k)
                .and_then(|l| l.iter().find(|w| w.client == client))
                .copied()
            else {
                continue;
            };
            let db = data.keyspace.db(usize::from(k.0));
            if w.dirty
                || (!w.expired && logically_expired(db, &k.1, now))
                || (w.live && !present(db, &k.1))
            {
                ok = false;
            }
        }
        data.watches.unwatch(client, keys);
        ok
    }

    /// A write changed `key` in `db` (Redis's `touchWatchedKey`).
    pub fn touch(data: &mut ShardData, db: usize, key: &[u8]) {
        let Some(list) = data.watches.keys.get_mut(&(db as u16, Box::from(key))) else {
            return;
        };
        let exists = present(data.keyspace.db(db), key);
        for w in list {
            if w.expired && !exists {
                // A key that was expired when watched is now deleted: no logical change.
                // (Present again, it was made live by a write, which is a change.)
                w.expired = false;
                continue;
            }
            w.dirty = true;
        }
    }

    /// FLUSHDB/FLUSHALL empties `emptied`, or SWAPDB replaces it with `replaced_with`
    /// (Redis's `touchAllWatchedKeysInDb`): called before the change.
    pub fn touch_whole_db(data: &mut ShardData, emptied: usize, replaced_with: Option<usize>) {
        if data.watches.is_empty() {
            return;
        }
        let now = data.now_ms;
        let ShardData {
            watches, keyspace, ..
        } = data;
        for ((db, key), list) in &mut watches.keys {
            if usize::from(*db) != emptied {
                continue;
            }
            let in_emptied = present(keyspace.db(emptied), key);
            let in_replacement = replaced_with.is_some_and(|r| present(keyspace.db(r), key));
            if !(in_emptied || in_replacement) {
                continue;
            }
            let replacement_expired =
                replaced_with.is_some_and(|r| logically_expired(keyspace.db(r), key, now));
            for w in list.iter_mut() {
                if w.expired {
                    if !in_replacement {
                        w.expired = false;
                        continue;
                    } else if replacement_expired {
                        continue;
                    }
                } else if !in_emptied && replacement_expired {
                    w.expired = true;
                    continue;
                }
                w.dirty = true;
            }
        }
    }

    /// A whole-keyspace command about to run on this shard: FLUSHALL (`db` None),
    /// FLUSHDB of `db`, or SWAPDB of `a` and `b` (`swap`).
    pub fn touch_for(data: &mut ShardData, op: Whole) {
        if !matches!(op, Whole::Swap(..)) {
            // And the tracking clients hear of it (null invalidation).
            crate::tracking::flushed(data);
        }
        if data.watches.is_empty() {
            return;
        }
        match op {
            Whole::FlushAll => {
                for db in 0..data.keyspace.databases() {
                    Self::touch_whole_db(data, db, None);
                }
            }
            Whole::FlushDb(db) => Self::touch_whole_db(data, db, None),
            Whole::Swap(a, b) => {
                Self::touch_whole_db(data, a, Some(b));
                Self::touch_whole_db(data, b, Some(a));
            }
        }
    }
}

/// A whole-database change that touches watched keys.
#[derive(Clone, Copy, Debug)]
pub enum Whole {
    FlushAll,
    FlushDb(usize),
    Swap(usize, usize),
}

/// After a write command ran on this shard: when its change counter moved (it changed
/// something), each of its keys this shard owns is touched. Costs nothing unless some
/// client of any shard watches a key of this one.
pub fn after_write(
    data: &mut ShardData,
    cmd: &'static crate::commands::Command,
    argv: &[&[u8]],
    db: usize,
    changes_before: u64,
) {
    if data.keyspace.changes() == changes_before {
        return;
    }
    // SMOVE touches its keys itself, as Redis signals them: the destination only when
    // the member was added to it (`commands::sets::touch_watched`).
    if !data.watches.is_empty() && cmd.name != "smove" {
        for p in super::key_positions(cmd, argv) {
            if data.owner(argv[p]) == data.id {
                Registry::touch(data, db, argv[p]);
            }
        }
    }
    if data.tracking.armed && !std::mem::take(&mut data.tracking.failed) {
        crate::tracking::after_write(data, cmd, argv);
    }
}
