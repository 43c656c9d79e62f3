//! What a key costs in memory as percore holds it (MEMORY USAGE): the table entry, a
//! boxed key, and every allocation of the value, by its form. Sizes are of the
//! allocations as requested (capacities, not the allocator's size classes).
//!
//! Compared with redis-server 7.0 (jemalloc size classes, `robj` + `sds` headers, dict
//! entries), percore reports less for small values: a short string lives inside the
//! 48-byte entry with no allocation of its own.

use crate::db::Entry;
use crate::hashes::Hash;
use crate::sets::SetValue;
use crate::table::{INLINE_KEY_MAX_BYTES, Table};
use crate::value::{StrValue, Value};
use std::mem::size_of;

/// Bytes allocated for `value` outside the entry that holds it.
#[must_use]
pub fn value_heap_bytes(value: &Value) -> usize {
    match value {
        Value::Str(StrValue::Raw(v)) => v.capacity(),
        Value::Str(_) => 0,
        Value::Set(s) => {
            size_of::<SetValue>()
                + match &**s {
                    SetValue::Ints(i) => i.to_blob().len().saturating_sub(8),
                    SetValue::Small(v) => v.capacity_bytes(),
                    SetValue::Hash(t) => t.heap_bytes(|()| 0),
                }
        }
        Value::ZSet(z) => size_of::<crate::zsets::ZSetValue>() + z.heap_bytes(),
        Value::List(l) => {
            size_of::<crate::lists::List>()
                + l.nodes()
                    .map(|n| size_of::<crate::listpack::Listpack>() + n.bytes_len())
                    .sum::<usize>()
        }
        // streams: the node buffers and the tree's per-node slots; consumer groups,
        // PELs and consumers are not counted yet.
        Value::Stream(st) => {
            size_of::<crate::streams::Stream>()
                + st.node_bytes()
                + st.nodes().len()
                    * (size_of::<crate::streams::StreamId>()
                        + size_of::<crate::listpack::Listpack>())
        }
        Value::Hash(Hash::Pack(lp)) => lp.bytes_len(),
        Value::Hash(Hash::Table(t)) => size_of::<Table<Box<[u8]>>>() + t.heap_bytes(|v| v.len()),
    }
}

/// MEMORY USAGE of a key: its entry in the keyspace table, its key if boxed, its value.
#[must_use]
pub fn key_bytes(key: &[u8], entry: &Entry) -> usize {
    let boxed_key = if key.len() > INLINE_KEY_MAX_BYTES {
        key.len()
    } else {
        0
    };
    Table::<Entry>::entry_bytes() + boxed_key + value_heap_bytes(&entry.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, SetExpire};

    #[test]
    fn sizes_follow_the_forms() {
        let mut db = Db::new(1);
        let now = 0;
        db.set(b"small", Value::from_bytes(b"hi"), SetExpire::Clear, now);
        db.set(
            b"big",
            Value::from_bytes(&[7u8; 1000]),
            SetExpire::Clear,
            now,
        );
        let e = |db: &mut Db, k: &[u8]| key_bytes(k, db.lookup_entry(k, now).unwrap());
        let small = e(&mut db, b"small");
        let big = e(&mut db, b"big");
        // An inline string costs just its entry; a 1000-byte one adds its buffer.
        assert_eq!(small, Table::<Entry>::entry_bytes());
        assert!(big >= small + 1000 && big < small + 1100, "{big}");
        // A long key is boxed.
        let long = [b'k'; 40];
        db.set(&long, Value::from_bytes(b"hi"), SetExpire::Clear, now);
        assert_eq!(e(&mut db, &long), small + 40);
    }
}
