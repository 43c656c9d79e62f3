//! Keyspace notifications (`notify-keyspace-events`): `__keyspace@<db>__:<key>` and
//! `__keyevent@<db>__:<event>` messages published through pub/sub, as Redis's
//! `notifyKeyspaceEvent`.
//!
//! Where events come from, in one consistent way:
//! - a handler names its event next to the change it makes, with [`event`] (Redis's
//!   `notifyKeyspaceEvent(class, "name", key, db)` calls, in the same places and order);
//! - the database itself records what it sees without a command asking for it: a key
//!   expired (lazily on access, or by the active cycle) and a key added (`n`, Redis's
//!   `dbAdd`), as `percore_engine::db::KeyEvent`s in its event log, which is on only while
//!   those classes are enabled. The log is drained in order before each handler event
//!   and after each batch of work, so "expired" and "new" come before the command's own
//!   event, as in Redis.
//!
//! Cost when off: [`event`] tests one cached flag word ([`State::active`]), and the
//! database pays one flag test on its creation and expiry paths.
//!
//! Delivery: a notification goes to this shard's subscribers at once (the pub/sub
//! registry's delivery buffer) and, with several shards, into one packed buffer that
//! [`flush`] mails to every other shard after the batch (one message per shard per
//! batch), where [`receive`] publishes it to that shard's subscribers. Messages keep
//! their order from one shard, as every mail does.

use crate::pubsub::{self, Kind};
use crate::shard::{Msg, ShardData};
use percore_engine::db::KeyEvent;
use percore_net::reactor::Io;
use std::sync::Arc;

/// Event classes, with Redis's bit values (`NOTIFY_*` in `server.h`).
pub mod class {
    /// `K`: publish on `__keyspace@<db>__:<key>`.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: publish on `__keyevent@<db>__:<event>`.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: string commands.
    pub const STRING: u32 = 1 << 3;
    /// `l`: list commands.
    pub const LIST: u32 = 1 << 4;
    /// `s`: set commands.
    pub const SET: u32 = 1 << 5;
    /// `h`: hash commands.
    pub const HASH: u32 = 1 << 6;
    /// `z`: sorted set commands.
    pub const ZSET: u32 = 1 << 7;
    /// `x`: a key expired.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: a key was evicted (percore does not evict yet).
    pub const EVICTED: u32 = 1 << 9;
    /// `t`: stream commands.
    pub const STREAM: u32 = 1 << 10;
    /// `m`: a read missed a key.
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: module key types (percore has no modules).
    pub const MODULE: u32 = 1 << 13;
    /// `n`: a key was added.
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class but `m` and `n`.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Longest packed buffer of notifications for other shards before it is mailed without
/// waiting for the end of the batch.
pub const OUTGOING_MAX_BYTES: usize = 1024 * 1024;

/// Parses a `notify-keyspace-events` value (Redis's `keyspaceEventsStringToFlags`).
pub fn parse_classes(text: &str) -> Result<u32, String> {
    let mut flags = 0;
    for c in text.chars() {
        flags |= match c {
            'A' => class::ALL,
            'g' => class::GENERIC,
            '$' => class::STRING,
            'l' => class::LIST,
            's' => class::SET,
            'h' => class::HASH,
            'z' => class::ZSET,
            'x' => class::EXPIRED,
            'e' => class::EVICTED,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            't' => class::STREAM,
            'm' => class::KEY_MISS,
            'd' => class::MODULE,
            'n' => class::NEW,
            _ => {
                return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_owned());
            }
        };
    }
    Ok(flags)
}

/// The canonical text of `flags` (Redis 7.0's `keyspaceEventsFlagsToString`, which also
/// leaves `n` out after `A`).
pub fn classes_text(flags: u32) -> String {
    let mut text = String::new();
    if flags & class::ALL == class::ALL {
        text.push('A');
    } else {
        for (bit, c) in [
            (class::GENERIC, 'g'),
            (class::STRING, '$'),
            (class::LIST, 'l'),
            (class::SET, 's'),
            (class::HASH, 'h'),
            (class::ZSET, 'z'),
            (class::EXPIRED, 'x'),
            (class::EVICTED, 'e'),
            (class::STREAM, 't'),
            (class::MODULE, 'd'),
            (class::NEW, 'n'),
        ] {
            if flags & bit != 0 {
                text.push(c);
            }
        }
    }
    for (bit, c) in [
        (class::KEYSPACE, 'K'),
        (class::KEYEVENT, 'E'),
        (class::KEY_MISS, 'm'),
    ] {
        if flags & bit != 0 {
            text.push(c);
        }
    }
    text
}

/// A shard's notification state.
#[derive(Default)]
pub struct State {
    /// The configured classes when `K` or `E` is among them, else 0: nothing is published
    /// without a channel kind, so the one test in [`event`] covers both.
    pub active: u32,
    /// Notifications for the other shards' subscribers since the last [`flush`]: channel
    /// and message, each a `u32` length then the bytes.
    outgoing: Vec<u8>,
    /// The channel name being built.
    channel: Vec<u8>,
}

impl State {
    /// Takes `configured` (`notify-keyspace-events`); true when the database event log
    /// must record expiries and additions.
    pub fn configure(&mut self, configured: u32) -> bool {
        self.active = if configured & (class::KEYSPACE | class::KEYEVENT) != 0 {
            configured
        } else {
            0
        };
        self.active & (class::EXPIRED | class::NEW) != 0
    }
}

/// A handler's event `name` of `class` on `key` of database `db` (Redis's
/// `notifyKeyspaceEvent`). One flag test when the class is off.
#[inline]
pub fn event(data: &mut ShardData, class: u32, name: &str, key: &[u8], db: usize) {
    if data.notify.active & class != 0 {
        publish_event(data, class, name, key, db);
    }
}

#[cold]
fn publish_event(data: &mut ShardData, class: u32, name: &str, key: &[u8], db: usize) {
    drain_database_events(data);
    if data.notify.active & class != 0 {
        publish_both(data, name.as_bytes(), key, db);
    }
}

/// Publishes the database logs' events (expired, new), oldest first.
fn drain_database_events(data: &mut ShardData) {
    if data.notify.active & (class::EXPIRED | class::NEW) == 0 {
        return;
    }
    for db in 0..data.keyspace.databases() {
        if !data.keyspace.db(db).has_events() {
            continue;
        }
        let log = data.keyspace.db_mut(db).take_events();
        for (kind, key) in &log {
            let (class, name) = match kind {
                KeyEvent::Expired => (class::EXPIRED, &b"expired"[..]),
                KeyEvent::New => (class::NEW, &b"new"[..]),
            };
            if data.notify.active & class != 0 {
                publish_both(data, name, key, db);
            }
        }
        data.keyspace.db_mut(db).return_events(log);
    }
}

/// Publishes the keyspace and/or keyevent message of one event.
fn publish_both(data: &mut ShardData, name: &[u8], key: &[u8], db: usize) {
    let mut channel = std::mem::take(&mut data.notify.channel);
    for (bit, prefix, suffix, msg) in [
        (class::KEYSPACE, &b"__keyspace@"[..], key, name),
        (class::KEYEVENT, &b"__keyevent@"[..], name, key),
    ] {
        if data.notify.active & bit == 0 {
            continue;
        }
        channel.clear();
        channel.extend_from_slice(prefix);
        channel.extend_from_slice(db.to_string().as_bytes());
        channel.extend_from_slice(b"__:");
        channel.extend_from_slice(suffix);
        pubsub::publish(data, None, Kind::Channel, &channel, msg);
        if data.shards > 1 {
            let out = &mut data.notify.outgoing;
            for part in [&channel[..], msg] {
                out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
    }
    data.notify.channel = channel;
}

/// Once per loop iteration: publishes what the databases logged and mails the
/// iteration's notifications to the other shards. True when notifications are on (the
/// caller then delivers what was published here, by this shard or by mail).
#[inline]
pub fn flush(data: &mut ShardData, io: &mut Io<Msg, ()>) -> bool {
    if data.notify.active == 0 {
        return false;
    }
    flush_enabled(data, io);
    true
}

#[cold]
fn flush_enabled(data: &mut ShardData, io: &mut Io<Msg, ()>) {
    drain_database_events(data);
    if data.notify.outgoing.is_empty() {
        return;
    }
    let packed: Arc<[u8]> = Arc::from(&data.notify.outgoing[..]);
    data.notify.outgoing.clear();
    if data.notify.outgoing.capacity() > OUTGOING_MAX_BYTES {
        data.notify.outgoing = Vec::new();
    }
    for shard in (0..data.shards).filter(|&s| s != data.id) {
        io.send(shard, Msg::Notify(Arc::clone(&packed)));
    }
}

/// Publishes another shard's notifications to this shard's subscribers.
pub fn receive(data: &mut ShardData, packed: &[u8]) {
    fn next<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let (part, tail) = tail.split_at_checked(u32::from_le_bytes(*len) as usize)?;
        *rest = tail;
        Some(part)
    }
    let mut rest = packed;
    while let (Some(channel), Some(msg)) = (next(&mut rest), next(&mut rest)) {
        pubsub::publish(data, None, Kind::Channel, channel, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_echo_as_redis_7_0() {
        let echo = |t: &str| classes_text(parse_classes(t).unwrap());
        assert_eq!(echo("KEA"), "AKE");
        assert_eq!(echo("Kx"), "xK");
        assert_eq!(echo("Eg$lshzxetd"), "AE");
        assert_eq!(echo(""), "");
        assert_eq!(echo("KEAmn"), "AKEm");
        assert_eq!(echo("Kn"), "nK");
        assert_eq!(echo("tdx"), "xtd");
        assert_eq!(
            parse_classes("A m").unwrap_err(),
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        );
    }

    #[test]
    fn nothing_is_active_without_a_channel_kind() {
        let mut s = State::default();
        assert!(!s.configure(class::ALL));
        assert_eq!(s.active, 0);
        assert!(s.configure(class::ALL | class::KEYEVENT));
        assert!(!s.configure(class::GENERIC | class::KEYSPACE));
        assert_eq!(s.active, class::GENERIC | class::KEYSPACE);
    }
}
