//! A value's form for a trip between shards (cross-shard RENAME, COPY, MOVE, LMOVE):
//! a type tag byte, then the type's own bytes. Never stored, never leaves the process.

use crate::hashes::Hash;
use crate::listpack::Listpack;
use crate::lists::List;
use crate::value::{StrValue, Value};

const TAG_STR: u8 = b's';
// lists and hashes
const TAG_LIST: u8 = b'l';
const TAG_HASH_PACK: u8 = b'h';
const TAG_HASH_TABLE: u8 = b'H';
// end lists and hashes
// streams
const TAG_STREAM: u8 = b'x';

fn put_chunk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

fn take_chunk<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = b.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (c, rest) = rest.split_at(len);
    *b = rest;
    Some(c)
}

/// `v` in wire form. `None` for a type without one.
#[must_use]
pub fn encode(v: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match v {
        Value::Str(s) => {
            out.push(TAG_STR);
            s.write_bytes(&mut out);
        }
        // lists and hashes
        Value::List(l) => {
            out.push(TAG_LIST);
            for n in l.nodes() {
                put_chunk(&mut out, n.as_bytes());
            }
        }
        Value::Hash(h) => {
            if let Some(lp) = h.as_listpack() {
                out.push(TAG_HASH_PACK);
                out.extend_from_slice(lp.as_bytes());
            } else {
                out.push(TAG_HASH_TABLE);
                for (k, v) in h {
                    put_chunk(&mut out, &k.to_bytes());
                    put_chunk(&mut out, &v.to_bytes());
                }
            }
        } // end lists and hashes
        // streams
        Value::Stream(st) => {
            out.push(TAG_STREAM);
            st.write_wire(&mut out);
        }
        // Sets and sorted sets travel in their own form (`SetValue::to_wire`, tagged by
        // the caller), which rebuilds them under the receiving shard's limits.
        Value::Set(_) | Value::ZSet(_) => return None,
    }
    Some(out)
}

/// A value from [`encode`]'s bytes; `None` when they are not a wire form.
#[must_use]
pub fn decode(b: &[u8]) -> Option<Value> {
    let (&tag, mut rest) = b.split_first()?;
    match tag {
        TAG_STR => Some(Value::Str(StrValue::from_bytes(rest))),
        // lists and hashes
        TAG_LIST => {
            let mut nodes = Vec::new();
            while !rest.is_empty() {
                nodes.push(Listpack::from_bytes(take_chunk(&mut rest)?.to_vec()).ok()?);
            }
            Some(Value::List(Box::new(List::from_nodes(nodes))))
        }
        TAG_HASH_PACK => Some(Value::Hash(Hash::from_listpack(
            Listpack::from_bytes(rest.to_vec()).ok()?,
        )?)),
        TAG_HASH_TABLE => {
            let mut h = Hash::with_table(0);
            let limits = crate::hashes::HashLimits {
                max_listpack_entries: 0,
                max_listpack_value: 0,
            };
            while !rest.is_empty() {
                let k = take_chunk(&mut rest)?;
                let v = take_chunk(&mut rest)?;
                h.push_new(k, v, limits);
            }
            Some(Value::Hash(h))
        }
        // end lists and hashes
        // streams
        TAG_STREAM => Some(Value::Stream(Box::new(crate::streams::Stream::read_wire(
            rest,
        )?))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashes::HashLimits;
    use crate::lists::End;

    #[test]
    fn every_type_round_trips() {
        let mut l = List::new();
        for i in 0..3000 {
            l.push(End::Tail, format!("item-{i}").as_bytes(), -2);
        }
        let mut small = Hash::new();
        small.set(b"a", b"1", HashLimits::default());
        let mut big = Hash::new();
        for i in 0..300 {
            big.set(format!("f{i}").as_bytes(), b"v", HashLimits::default());
        }
        for v in [
            Value::from_bytes(b"hello"),
            Value::from_bytes(b"-12"),
            Value::List(Box::new(l)),
            Value::Hash(small),
            Value::Hash(big),
        ] {
            let w = encode(&v).unwrap();
            let back = decode(&w).unwrap();
            assert_eq!(back, v);
            assert_eq!(back.encoding(), v.encoding());
        }
        assert!(decode(b"").is_none());
        assert!(decode(b"l\x05").is_none());
    }
}
