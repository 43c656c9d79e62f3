//! Pub/sub: each shard's registry of its own connections' subscriptions, and the
//! delivery of published messages to them.
//!
//! A connection's subscriptions live in its [`Client`] (what it is subscribed to) and in
//! its shard's [`Registry`] (who on this shard listens to a channel or pattern). PUBLISH
//! runs as an `Exec::All` command: every shard runs its part (delivers to its own
//! subscribers, counts them) and the client's shard sums the counts, so the reply is
//! exact, as Redis's. A part encodes each message once per receiving connection into one
//! per-shard buffer ([`Registry::out`]); the buffer is copied into the connections'
//! outputs after the batch that published it ([`deliver`]), behind any reply the
//! subscriber still waits for from another shard.

use crate::client::{Client, Pending};
use crate::shard::ShardData;
use percore_engine::glob::string_match;
use percore_net::reactor::{ConnId, Io};
use percore_net::resp::{Protocol, ReplyWriter};
use std::collections::HashMap;

/// Above this, the delivery buffer's allocation is given back after a flush rather than
/// kept for the next batch.
pub const DELIVERY_BUF_KEEP_BYTES: usize = 1024 * 1024;

/// The three namespaces of subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The name of the (un)subscribe reply.
    pub fn verb(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Kind::Channel, true) => b"subscribe",
            (Kind::Channel, false) => b"unsubscribe",
            (Kind::Pattern, true) => b"psubscribe",
            (Kind::Pattern, false) => b"punsubscribe",
            (Kind::Shard, true) => b"ssubscribe",
            (Kind::Shard, false) => b"sunsubscribe",
        }
    }
}

/// Who on this shard listens to what.
#[derive(Default)]
pub struct Registry {
    pub channels: HashMap<Box<[u8]>, Vec<ConnId>>,
    pub patterns: HashMap<Box<[u8]>, Vec<ConnId>>,
    pub shard_channels: HashMap<Box<[u8]>, Vec<ConnId>>,
    /// Messages encoded for this shard's subscribers since the last [`deliver`].
    out: Vec<u8>,
    /// `(connection, start, end, as_resp2)` in `out`, in publish order. `as_resp2`: the
    /// subscriber was out of its slot, running a command (a script's PUBLISH to its own
    /// channel, a notification of its own write), so the message was encoded as RESP2's
    /// array and becomes a push at delivery if the client speaks RESP3.
    deliveries: Vec<(ConnId, usize, usize, bool)>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Box<[u8]>, Vec<ConnId>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn add(&mut self, kind: Kind, name: &[u8], conn: ConnId) {
        self.map(kind).entry(name.into()).or_default().push(conn);
    }

    fn remove(&mut self, kind: Kind, name: &[u8], conn: ConnId) {
        let map = self.map(kind);
        if let Some(list) = map.get_mut(name) {
            list.retain(|c| *c != conn);
            if list.is_empty() {
                map.remove(name);
            }
        }
    }
}

/// Subscribes `client` to `name`; false when it already was.
pub fn subscribe(data: &mut ShardData, client: &mut Client, kind: Kind, name: &[u8]) -> bool {
    if !client.subs_mut(kind).insert(name.into()) {
        return false;
    }
    data.pubsub.add(kind, name, client.conn);
    true
}

/// Unsubscribes `client` from `name`; false when it was not subscribed.
pub fn unsubscribe(data: &mut ShardData, client: &mut Client, kind: Kind, name: &[u8]) -> bool {
    if !client.subs_mut(kind).remove(name) {
        return false;
    }
    data.pubsub.remove(kind, name, client.conn);
    true
}

/// Drops every subscription of `client` (RESET, connection close), without replies.
pub fn forget(data: &mut ShardData, client: &mut Client) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(client.subs_mut(kind)) {
            data.pubsub.remove(kind, &name, client.conn);
        }
    }
}

/// Delivers `msg` published to `channel` (a shard channel when `kind` is `Shard`) to this
/// shard's subscribers; returns how many received it. `publisher` is the publishing
/// client when it runs on this shard: a message to itself goes into its reply queue now,
/// before the PUBLISH reply, as in Redis.
pub fn publish(
    data: &mut ShardData,
    mut publisher: Option<&mut Client>,
    kind: Kind,
    channel: &[u8],
    msg: &[u8],
) -> i64 {
    let ShardData {
        pubsub,
        clients,
        buf_pool,
        ..
    } = data;
    let Registry {
        channels,
        patterns,
        shard_channels,
        out,
        deliveries,
    } = pubsub;
    let mut receivers = 0i64;
    let mut send = |conn: ConnId, pattern: Option<&[u8]>| {
        let (kind_name, len) = match (kind, pattern) {
            (Kind::Shard, _) => (&b"smessage"[..], 3),
            (_, Some(_)) => (&b"pmessage"[..], 4),
            (_, None) => (&b"message"[..], 3),
        };
        let encode = |out: &mut Vec<u8>, proto: Protocol| {
            let mut w = ReplyWriter { out, proto };
            w.push(len);
            w.bulk(kind_name);
            if let Some(p) = pattern {
                w.bulk(p);
            }
            w.bulk(channel);
            w.bulk(msg);
        };
        receivers += 1;
        if let Some(me) = publisher.as_deref_mut()
            && me.conn == conn
        {
            let mut b = buf_pool.pop().unwrap_or_default();
            encode(&mut b, me.proto);
            me.push_pending(Pending::Ready(b));
            return;
        }
        let start = out.len();
        match clients.get(conn.index as usize) {
            Some(Some(client)) if client.conn == conn => {
                encode(out, client.proto);
                deliveries.push((conn, start, out.len(), false));
            }
            // Taken out to run a command: delivered after it, once back in its slot
            // (`deliver` checks the generation then).
            Some(None) => {
                encode(out, Protocol::Resp2);
                deliveries.push((conn, start, out.len(), true));
            }
            _ => {}
        }
    };
    let direct = if kind == Kind::Shard {
        shard_channels.get(channel)
    } else {
        channels.get(channel)
    };
    for &conn in direct.into_iter().flatten() {
        send(conn, None);
    }
    if kind == Kind::Channel {
        for (pattern, conns) in patterns.iter() {
            if string_match(pattern, channel, false) {
                for &conn in conns {
                    send(conn, Some(pattern));
                }
            }
        }
    }
    receivers
}

/// Copies the messages encoded since the last call into their connections' outputs (or,
/// behind a reply still owed by another shard, into the reply queue) and applies the
/// `pubsub` output buffer limit. Runs after every batch of work of the shard, when every
/// client is in its slot.
#[inline]
pub fn deliver(data: &mut ShardData, io: &mut Io<crate::shard::Msg, ()>) {
    if !data.pubsub.deliveries.is_empty() {
        deliver_all(data, io);
    }
}

#[cold]
fn deliver_all(data: &mut ShardData, io: &mut Io<crate::shard::Msg, ()>) {
    let mut deliveries = std::mem::take(&mut data.pubsub.deliveries);
    let mut out = std::mem::take(&mut data.pubsub.out);
    for &(id, start, end, as_resp2) in &deliveries {
        let Some(mut client) = data
            .clients
            .get_mut(id.index as usize)
            .and_then(|c| c.take_if(|c| c.conn == id))
        else {
            continue;
        };
        if as_resp2 && client.proto == Protocol::Resp3 {
            // RESP2's `*n` header and RESP3's `>n` differ in this byte only.
            debug_assert_eq!(out[start], b'*');
            out[start] = b'>';
        }
        let bytes = &out[start..end];
        if let Some(conn) = io.conn(id)
            && !conn.is_closing()
            && !client.close_after_reply
        {
            client.push_unsolicited(&mut conn.output, bytes, &mut data.buf_pool);
            crate::shard::check_output_limits(data, &mut client, conn);
            if client.close_after_reply {
                // Over the limit: it receives nothing more, and later PUBLISHes no longer
                // count it.
                forget(data, &mut client);
            }
        }
        data.clients[id.index as usize] = Some(client);
    }
    deliveries.clear();
    data.pubsub.deliveries = deliveries;
    if out.capacity() <= DELIVERY_BUF_KEEP_BYTES {
        out.clear();
        data.pubsub.out = out;
    }
}
