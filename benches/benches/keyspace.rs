//! Db hot paths on a warm 100k-key database: GET hit, GET miss, SET overwrite, SET of a
//! new key (with the DEL that keeps the size steady), raw Table lookups, and routing a
//! key to its slot and shard. Then batches of 16 GETs in a 1M-key database (far bigger
//! than the cache) as they come and warmed first (prefetch of every bucket, then of every
//! bucket's first entry), the way a shard runs a pipeline.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use percore_engine::{Db, SetExpire, Table, Value};
use std::hint::black_box;

/// Keys in the warm database.
const KEYS: usize = 100_000;
/// Bytes per key (`key:` + 12 digits).
const KEY_BYTES: usize = 16;
/// Bytes per value.
const VALUE_BYTES: usize = 16;
/// A fixed clock: expiry is not under test here.
const NOW_MS: i64 = 1_700_000_000_000;

fn key(i: usize) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    let text = format!("key:{i:012}");
    k.copy_from_slice(text.as_bytes());
    k
}

fn keys() -> Vec<[u8; KEY_BYTES]> {
    // A fixed permutation so accesses are not in insertion order.
    let mut ks: Vec<_> = (0..KEYS).map(key).collect();
    let mut s: u64 = 0x9e37_79b9;
    for i in (1..ks.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ks.swap(i, (s % (i as u64 + 1)) as usize);
    }
    ks
}

fn warm_db() -> Db {
    let mut db = Db::new(0x5eed);
    let value = [b'v'; VALUE_BYTES];
    for i in 0..KEYS {
        db.set(&key(i), Value::from_bytes(&value), SetExpire::Clear, NOW_MS);
    }
    db
}

fn bench_db(c: &mut Criterion) {
    let ks = keys();
    let misses: Vec<[u8; KEY_BYTES]> = (KEYS..2 * KEYS).map(key).collect();
    let mut db = warm_db();
    let mut group = c.benchmark_group("db_100k");

    let mut i = 0;
    group.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(db.get(black_box(&ks[i]), NOW_MS).is_some())
        });
    });
    let mut i = 0;
    group.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(db.get(black_box(&misses[i]), NOW_MS).is_some())
        });
    });
    let value = [b'w'; VALUE_BYTES];
    let mut i = 0;
    group.bench_function("set_overwrite", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(db.set(
                black_box(&ks[i]),
                Value::from_bytes(&value),
                SetExpire::Clear,
                NOW_MS,
            ))
        });
    });
    let mut i = 0;
    group.bench_function("set_new_then_del", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            db.set(
                black_box(&misses[i]),
                Value::from_bytes(&value),
                SetExpire::Clear,
                NOW_MS,
            );
            black_box(db.remove(&misses[i], NOW_MS))
        });
    });
    group.bench_function("build_100k", |b| {
        b.iter_batched(
            || (),
            |()| black_box(warm_db()).len(),
            BatchSize::PerIteration,
        );
    });
    group.finish();

    // Built in key order and probed in the shuffled order, as the Db above.
    let mut table: Table<u64> = Table::new(7);
    for n in 0..KEYS {
        table.insert(key(n)[..].into(), n as u64);
    }
    let mut i = 0;
    c.bench_function("table_100k/get_hit", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(table.get(black_box(&ks[i])).copied())
        });
    });
}

/// Routing a key: CRC16 of a 16-byte key (redis-benchmark's `key:%012d` names) and the
/// shard it maps to.
fn bench_slot(c: &mut Criterion) {
    let ks = keys();
    let mut group = c.benchmark_group("slot");
    let mut i = 0;
    group.bench_function("crc16_16b", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(percore_engine::slot::crc16(black_box(&ks[i])))
        });
    });
    let mut i = 0;
    group.bench_function("shard_of_key_16b", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(percore_engine::slot::shard_of_key(black_box(&ks[i]), 2))
        });
    });
    group.finish();
}

/// Keys in the database of the warming benchmark: ~100 MB of entries, far past the cache.
const BIG_KEYS: usize = 1_000_000;
/// Lookups per batch (a shard warms 16 at a time).
const BATCH: usize = 16;

fn bench_warming(c: &mut Criterion) {
    let mut db = Db::new(0x5eed);
    let value = [b'v'; VALUE_BYTES];
    for i in 0..BIG_KEYS {
        db.set(&key(i), Value::from_bytes(&value), SetExpire::Clear, NOW_MS);
    }
    // Random keys, so consecutive batches share no cache lines.
    let mut s: u64 = 0x2545_f491;
    let order: Vec<[u8; KEY_BYTES]> = (0..BIG_KEYS)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            key((s % BIG_KEYS as u64) as usize)
        })
        .collect();
    let mut group = c.benchmark_group("db_1m");
    let mut at = 0;
    group.bench_function("get_batch16_as_they_come", |b| {
        b.iter(|| {
            at = (at + BATCH) % (BIG_KEYS - BATCH);
            for k in &order[at..at + BATCH] {
                black_box(db.get(black_box(k), NOW_MS).is_some());
            }
        });
    });
    let mut at = 0;
    let mut hashes = [0u64; BATCH];
    group.bench_function("get_batch16_warmed", |b| {
        b.iter(|| {
            at = (at + BATCH) % (BIG_KEYS - BATCH);
            let batch = &order[at..at + BATCH];
            let table = db.table();
            for (h, k) in hashes.iter_mut().zip(batch) {
                *h = table.hash_key(k);
                if let Some(p) = table.bucket_addr(*h) {
                    percore_net::sys::prefetch(p);
                }
            }
            for &h in &hashes {
                if let Some((p, size)) = table.first_entry_span(h) {
                    percore_net::sys::prefetch(p);
                    percore_net::sys::prefetch(p.wrapping_add(size - 1));
                }
            }
            for k in batch {
                black_box(db.get(black_box(k), NOW_MS).is_some());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_db, bench_slot, bench_warming);
criterion_main!(benches);
