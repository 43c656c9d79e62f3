//! A fixed GET/SET workload on a warm 100k-key `Db`, for instruction counts under
//! `valgrind --tool=callgrind` (wall-clock benches live in `benches/`):
//!
//! ```text
//! cargo build --release -p percore-engine --example hotpath
//! valgrind --tool=callgrind target/release/examples/hotpath
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep hotpath::
//! ```
//!
//! Keys and values are 16 bytes, shaped like redis-benchmark's `key:000000012345`.

use percore_engine::{Db, SetExpire, Value};
use std::hint::black_box;

/// Keys in the warm database.
const KEYS: usize = 100_000;
/// Operations per phase.
const OPS: usize = 200_000;
/// Bytes per value.
const VALUE_BYTES: usize = 16;
/// A fixed clock: expiry is not under test here.
const NOW_MS: i64 = 1_700_000_000_000;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

#[inline(never)]
fn build(keys: &[Vec<u8>]) -> Db {
    let mut db = Db::new(0x5eed);
    for k in keys {
        db.set(
            k,
            Value::from_bytes(&[b'v'; VALUE_BYTES]),
            SetExpire::Clear,
            NOW_MS,
        );
    }
    db
}

#[inline(never)]
fn set_overwrite(db: &mut Db, keys: &[Vec<u8>]) {
    for i in 0..OPS {
        let k = &keys[i.wrapping_mul(7919) % KEYS];
        black_box(db.set(
            k,
            Value::from_bytes(&[b'w'; VALUE_BYTES]),
            SetExpire::Clear,
            NOW_MS,
        ));
    }
}

#[inline(never)]
fn get_hit(db: &mut Db, keys: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for i in 0..OPS {
        let k = &keys[i.wrapping_mul(7919) % KEYS];
        if let Some(Value::Str(s)) = db.get(k, NOW_MS) {
            n += s.len();
        }
    }
    n
}

#[inline(never)]
fn set_new_then_del(db: &mut Db, misses: &[Vec<u8>]) {
    for i in 0..OPS {
        let k = &misses[i % KEYS];
        db.set(
            k,
            Value::from_bytes(&[b'x'; VALUE_BYTES]),
            SetExpire::Clear,
            NOW_MS,
        );
        black_box(db.remove(k, NOW_MS));
    }
}

fn main() {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let mut db = build(&keys);
    set_overwrite(&mut db, &keys);
    println!("{}", get_hit(&mut db, &keys));
    let misses: Vec<Vec<u8>> = (KEYS..2 * KEYS).map(key).collect();
    set_new_then_del(&mut db, &misses);
    println!("{}", db.len());
}
