//! DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis's SHA-1 digests of the dataset and of single
//! values (`debug.c`: `xorDigest`, `mixDigest`, `xorObjectDigest`, `computeDatasetDigest`),
//! byte for byte, so a digest taken from percore equals redis-server's for the same data.
//! Tests (Redis's own among them) compare digests before and after a reload or a restart.
//!
//! The dataset digest XORs one digest per key into its database's running value, and mixes
//! each non-empty database's index in first: XOR commutes, so every shard XORs its own keys
//! per database and the merge mixes the databases in order.

use percore_engine::db::Entry;
use percore_engine::listpack::LpValue;
use percore_engine::number::{I64_MAX_DECIMAL_BYTES, format_double};
use percore_engine::sets::Member;
use percore_engine::value::Value;
use sha1_smol::Sha1;

pub type Digest = [u8; 20];

fn sha1(bytes: &[u8]) -> Digest {
    Sha1::from(bytes).digest().bytes()
}

/// `digest ^= SHA1(bytes)`: order does not matter.
pub fn xor(digest: &mut Digest, bytes: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(bytes)) {
        *d ^= h;
    }
}

/// `digest = SHA1(digest ^ SHA1(bytes))`: order matters.
pub fn mix(digest: &mut Digest, bytes: &[u8]) {
    xor(digest, bytes);
    *digest = sha1(&digest[..]);
}

fn mix_lp(digest: &mut Digest, v: LpValue<'_>) {
    let mut buf = [0; I64_MAX_DECIMAL_BYTES];
    mix(digest, v.as_bytes(&mut buf));
}

/// Redis's object type numbers (`OBJ_STRING` ...), mixed in first.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
        // `Value` is non-exhaustive; a new type gets its Redis number here.
        _ => 7,
    }
}

/// `xorObjectDigest`: mixes the value of `entry` (and the fact it has a TTL) into `digest`.
pub fn mix_entry(digest: &mut Digest, entry: &Entry) {
    let value = &entry.value;
    mix(digest, &type_code(value).to_be_bytes());
    let mut buf = [0; I64_MAX_DECIMAL_BYTES];
    match value {
        Value::Str(s) => mix(digest, s.as_bytes(&mut buf)),
        Value::List(l) => {
            for v in l.iter() {
                mix_lp(digest, v);
            }
        }
        Value::Set(s) => s.for_each(|m| match m {
            Member::Int(i) => xor(digest, percore_engine::number::format_i64(i, &mut buf)),
            Member::Bytes(b) => xor(digest, b),
        }),
        Value::ZSet(z) => z.for_ranks(0, z.len(), false, |score, member| {
            let mut ele = [0; 20];
            mix(&mut ele, member);
            mix(&mut ele, format_double(score).as_bytes());
            xor(digest, &ele);
        }),
        Value::Hash(h) => {
            let mut vb = [0; I64_MAX_DECIMAL_BYTES];
            for (k, v) in h {
                let mut ele = [0; 20];
                mix(&mut ele, k.as_bytes(&mut buf));
                mix(&mut ele, v.as_bytes(&mut vb));
                xor(digest, &ele);
            }
        }
        Value::Stream(st) => {
            use percore_engine::streams::StreamId;
            for (id, e) in st.range(StreamId::MIN, StreamId::MAX, false) {
                mix(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for (f, v) in e.pairs() {
                    mix_lp(digest, f);
                    mix_lp(digest, v);
                }
            }
        }
        _ => {}
    }
    if entry.expire_at_ms().is_some() {
        xor(digest, b"!!expire!!");
    }
}

/// The digest of one key and its value, as `computeDatasetDigest` XORs it in.
pub fn key_digest(key: &[u8], entry: &Entry) -> Digest {
    let mut d = [0; 20];
    mix(&mut d, key);
    mix_entry(&mut d, entry);
    d
}

/// Lower-case hex, as Redis prints digests.
pub fn hex(d: &Digest) -> String {
    use std::fmt::Write as _;
    d.iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `computeDatasetDigest` from per-database XORs of `SHA1(key digest)` (`None`: the database is
/// empty on every shard), in database order.
pub fn dataset(dbs: &[Option<Digest>]) -> Digest {
    let mut out = [0; 20];
    for (j, d) in dbs.iter().enumerate() {
        if let Some(d) = d {
            mix(&mut out, &(j as u32).to_be_bytes());
            for (o, x) in out.iter_mut().zip(d) {
                *o ^= x;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dataset_is_zeros() {
        assert_eq!(hex(&dataset(&[None, None])), "0".repeat(40));
    }

    #[test]
    fn mix_depends_on_order_and_xor_does_not() {
        let (mut a, mut b) = ([0; 20], [0; 20]);
        mix(&mut a, b"x");
        mix(&mut a, b"y");
        mix(&mut b, b"y");
        mix(&mut b, b"x");
        assert_ne!(a, b);
        let (mut c, mut d) = ([0; 20], [0; 20]);
        xor(&mut c, b"x");
        xor(&mut c, b"y");
        xor(&mut d, b"y");
        xor(&mut d, b"x");
        assert_eq!(c, d);
    }
}
