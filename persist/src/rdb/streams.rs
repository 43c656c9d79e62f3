//! Streams in RDB files: `RDB_TYPE_STREAM_LISTPACKS` (15, Redis 5/6),
//! `_LISTPACKS_2` (19, Redis 7.0, what percore writes) and `_LISTPACKS_3` (21, Redis
//! 7.2 / Valkey 8: consumers also carry their active time).
//!
//! ```text
//! nodes:len  (master-id:16-byte string  listpack:string)*   the nodes as they are
//! length:len last-id.ms:len last-id.seq:len
//! [19+] first-id.ms first-id.seq max-deleted.ms max-deleted.seq entries-added  (lens)
//! groups:len per group:
//!   name:string last-id.ms:len last-id.seq:len [19+] entries-read:len
//!   pel:len (id:16 raw bytes  delivery-time:i64le  delivery-count:len)*
//!   consumers:len per consumer:
//!     name:string seen-time:i64le [21] active-time:i64le
//!     pel:len (id:16 raw bytes)*          each must be in the group's PEL
//! ```
//!
//! Everything read is checked (node structure entry by entry, node order, counts, PEL
//! ownership); a failure is [`RdbErrorKind::CorruptValue`] at the value's offset.

use super::error::{RdbError, RdbErrorKind};
use percore_engine::listpack::Listpack;
use percore_engine::streams::{Consumer, Group, Nack, Stream, StreamId, StreamMeta};
use percore_engine::value::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// Whether `t` is a stream type this module reads.
pub fn handles(t: u8) -> bool {
    matches!(
        t,
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3
    )
}

/// What the stream reader needs from the loader's cursor.
pub(crate) trait Source {
    /// Offset of the next byte.
    fn offset(&self) -> usize;
    /// A length.
    fn len(&mut self) -> Result<u64, RdbError>;
    /// A string (any encoding), decoded.
    fn bytes(&mut self) -> Result<Vec<u8>, RdbError>;
    /// `N` raw bytes.
    fn raw<const N: usize>(&mut self) -> Result<[u8; N], RdbError>;
}

fn read_id(r: &mut impl Source) -> Result<StreamId, RdbError> {
    let ms = r.len()?;
    Ok(StreamId::new(ms, r.len()?))
}

/// Reads a stream value of type `t` (the key was read).
pub(crate) fn read_stream(r: &mut impl Source, t: u8) -> Result<Value, RdbError> {
    let at = r.offset() as u64;
    let corrupt = |reason: &str| {
        RdbError::new(
            RdbErrorKind::CorruptValue {
                type_byte: t,
                reason: reason.to_string(),
            },
            at,
        )
    };
    let mut s = Stream::new();
    let nodes = r.len()?;
    let mut live = 0u64;
    for _ in 0..nodes {
        let key = r.bytes()?;
        let key: [u8; 16] = key
            .try_into()
            .map_err(|_| corrupt("stream node key is not the size of a stream ID"))?;
        let blob = r.bytes()?;
        let lp = Listpack::from_bytes(blob).map_err(|e| {
            corrupt(&format!(
                "stream node listpack: {} at byte {}",
                e.what, e.offset
            ))
        })?;
        if lp.is_empty() {
            return Err(corrupt("empty listpack inside stream"));
        }
        live += s
            .push_node(StreamId::from_be_bytes(key), lp)
            .map_err(corrupt)?;
    }
    let length = r.len()?;
    let last_id = read_id(r)?;
    let mut meta = StreamMeta {
        length,
        last_id,
        ..StreamMeta::default()
    };
    if t >= TYPE_STREAM_LISTPACKS_2 {
        meta.first_id = read_id(r)?;
        meta.max_deleted_id = read_id(r)?;
        meta.entries_added = r.len()?;
    } else {
        meta.entries_added = length;
        meta.first_id = s.edge_id(false).unwrap_or(StreamId::MAX);
    }
    if live != length {
        return Err(corrupt("stream length differs from its nodes' entries"));
    }
    if s.edge_id(true).is_some_and(|l| l > last_id) {
        return Err(corrupt("stream last ID is below its last entry"));
    }
    *s.meta_mut() = meta;
    let groups = r.len()?;
    for _ in 0..groups {
        let name = r.bytes()?;
        let gid = read_id(r)?;
        let entries_read = if t >= TYPE_STREAM_LISTPACKS_2 {
            r.len()? as i64
        } else {
            s.estimate_distance(gid)
        };
        let mut g = Group::new(gid, entries_read);
        let none: Arc<[u8]> = Arc::from(&b""[..]);
        for _ in 0..r.len()? {
            let pid = StreamId::from_be_bytes(r.raw::<16>()?);
            let delivery_time = i64::from_le_bytes(r.raw::<8>()?);
            let delivery_count = r.len()?;
            let fresh = g
                .pel
                .insert(
                    pid,
                    Nack {
                        delivery_time,
                        delivery_count,
                        consumer: none.clone(),
                    },
                )
                .is_none();
            if !fresh {
                return Err(corrupt("duplicated global PEL entry in a consumer group"));
            }
        }
        for _ in 0..r.len()? {
            let cname: Arc<[u8]> = Arc::from(r.bytes()?);
            let seen_time = i64::from_le_bytes(r.raw::<8>()?);
            let active_time = if t >= TYPE_STREAM_LISTPACKS_3 {
                i64::from_le_bytes(r.raw::<8>()?)
            } else {
                seen_time
            };
            let mut pel = BTreeSet::new();
            for _ in 0..r.len()? {
                let pid = StreamId::from_be_bytes(r.raw::<16>()?);
                let nack = g
                    .pel
                    .get_mut(&pid)
                    .ok_or_else(|| corrupt("consumer entry not found in group global PEL"))?;
                if !Arc::ptr_eq(&nack.consumer, &none) || !pel.insert(pid) {
                    return Err(corrupt("duplicated consumer PEL entry"));
                }
                nack.consumer = cname.clone();
            }
            if g.consumers.contains_key(&cname) {
                return Err(corrupt("duplicate stream consumer"));
            }
            g.consumers.insert(
                cname,
                Consumer {
                    seen_time,
                    active_time,
                    pel,
                },
            );
        }
        if g.pel.values().any(|n| Arc::ptr_eq(&n.consumer, &none)) {
            return Err(corrupt("stream consumer group PEL entry without consumer"));
        }
        if !s.insert_group(&name, g) {
            return Err(corrupt("duplicated consumer group name"));
        }
    }
    Ok(Value::Stream(Box::new(s)))
}

/// Writes a stream as redis-server 7.0 does (type 19) and returns the type byte.
/// `write_string` writes one RDB string (with the encoder's compression rules).
pub fn encode_stream(
    s: &Stream,
    out: &mut Vec<u8>,
    mut write_string: impl FnMut(&mut Vec<u8>, &[u8]),
) -> u8 {
    use super::write_len;
    write_len(out, s.nodes().len() as u64);
    for (master, lp) in s.nodes() {
        write_string(out, &master.to_be_bytes());
        write_string(out, lp.as_bytes());
    }
    let m = s.meta();
    write_len(out, m.length);
    for id in [m.last_id, m.first_id, m.max_deleted_id] {
        write_len(out, id.ms);
        write_len(out, id.seq);
    }
    write_len(out, m.entries_added);
    write_len(out, s.groups().len() as u64);
    for (name, g) in s.groups() {
        write_string(out, name);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            write_len(out, n.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_string(out, cname);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
    TYPE_STREAM_LISTPACKS_2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{LoadOptions, Record, encode_dump, load};
    use percore_engine::streams::{AddId, StreamLimits};

    fn sample() -> Stream {
        let mut s = Stream::new();
        let lim = StreamLimits {
            node_max_bytes: 4096,
            node_max_entries: 3,
        };
        for i in 1..=10u64 {
            let v = i.to_string();
            let fields: [&[u8]; 4] = if i % 3 == 0 {
                [b"x", v.as_bytes(), b"y", b"z"]
            } else {
                [b"f", v.as_bytes(), b"g", b"value"]
            };
            s.append(AddId::Exact(StreamId::new(i, 1)), &fields, 0, lim)
                .unwrap();
        }
        s.xdel(&[StreamId::new(2, 1)]);
        assert!(s.create_group(b"g", StreamId::MIN, 0));
        s.read_group_new(b"g", b"alice", 4, false, 1000, |_, _| {});
        s.read_group_new(b"g", b"bob", 2, false, 2000, |_, _| {});
        s
    }

    fn load_one(bytes: &[u8]) -> Result<Option<Value>, crate::rdb::RdbError> {
        let mut got = None;
        load(bytes, &LoadOptions::default(), |r| {
            if let Record::Entry { value, .. } = r {
                got = Some(value);
            }
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn a_stream_round_trips_and_every_corruption_is_refused_without_panic() {
        let s = sample();
        let dump = encode_dump(
            &[(
                0,
                vec![(b"k".to_vec(), Value::Stream(Box::new(s.clone())), None)],
            )],
            false,
            false,
        )
        .unwrap();
        assert_eq!(load_one(&dump).unwrap(), Some(Value::Stream(Box::new(s))));
        // Flip every byte of the file (checksum off): an error or a value, never a panic;
        // a corrupt value names an offset inside the file.
        for i in 9..dump.len() - 9 {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut bad = dump.clone();
                bad[i] ^= x;
                if let Err(e) = load_one(&bad) {
                    assert!(e.offset() <= bad.len() as u64, "{e}");
                }
            }
        }
        // Truncations too.
        for n in 9..dump.len() {
            let _ = load_one(&dump[..n]);
        }
    }
}
