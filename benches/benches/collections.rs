//! The collection structures' hot operations, small (compact form) and large: a set of 5
//! short members (listpack) and of 1000 (table): SISMEMBER hit and miss, SADD+SREM of a
//! new member; a 10-field hash (listpack) and a 1000-field one: HGET hit, HSET overwrite;
//! a 5-member sorted set (packed) and a 1000-member one: ZSCORE, ZADD of a new score; a
//! list: LPUSH+RPOP at steady length. Each iteration is one operation on a warm value, the
//! part of a request the engine does (parsing and replies are in the `resp` bench).

use criterion::{Criterion, criterion_group, criterion_main};
use percore_engine::hashes::HashLimits;
use percore_engine::lists::End;
use percore_engine::sets::{SetLimits, SetValue};
use percore_engine::zsets::{ZSetLimits, ZSetValue};
use percore_engine::{Hash, List};
use std::hint::black_box;

/// Members of the small forms (within every default compact-form limit).
const SMALL: usize = 5;
/// Members of the large forms (over every default compact-form limit).
const LARGE: usize = 1000;
/// `list-max-listpack-size` default (-2: 8 KiB nodes).
const LIST_FILL: i64 = -2;
/// Length the list bench keeps.
const LIST_LEN: usize = 100;

fn member(i: usize) -> Vec<u8> {
    format!("member:{i}").into_bytes()
}

fn set_of(n: usize) -> SetValue {
    let l = SetLimits::default();
    let mut s = SetValue::new_for(&member(0), n, &l);
    for i in 0..n {
        s.add(&member(i), &l);
    }
    s
}

fn hash_of(n: usize) -> Hash {
    let mut h = Hash::new();
    for i in 0..n {
        h.set(&member(i), b"value-value", HashLimits::default());
    }
    h
}

fn zset_of(n: usize) -> ZSetValue {
    let l = ZSetLimits::default();
    let mut z = ZSetValue::new_for(member(0).len(), &l);
    for i in 0..n {
        z.insert(&member(i), i as f64, &l);
    }
    z
}

fn sets(c: &mut Criterion) {
    let l = SetLimits::default();
    for (name, n) in [("small", SMALL), ("large", LARGE)] {
        let mut s = set_of(n);
        let hit = member(n / 2);
        let miss = b"member:absent".to_vec();
        c.bench_function(&format!("set/{name}/sismember_hit"), |b| {
            b.iter(|| black_box(s.contains(black_box(&hit))));
        });
        c.bench_function(&format!("set/{name}/sismember_miss"), |b| {
            b.iter(|| black_box(s.contains(black_box(&miss))));
        });
        c.bench_function(&format!("set/{name}/sadd_srem"), |b| {
            b.iter(|| {
                s.add(black_box(b"member:new"), &l);
                s.remove(black_box(b"member:new"))
            });
        });
    }
}

fn hashes(c: &mut Criterion) {
    let l = HashLimits::default();
    for (name, n) in [("small", 10), ("large", LARGE)] {
        let mut h = hash_of(n);
        let field = member(n / 2);
        c.bench_function(&format!("hash/{name}/hget"), |b| {
            b.iter(|| black_box(h.get(black_box(&field)).is_some()));
        });
        c.bench_function(&format!("hash/{name}/hset_overwrite"), |b| {
            b.iter(|| h.set(black_box(&field), black_box(b"other-value"), l));
        });
    }
}

fn zsets(c: &mut Criterion) {
    let l = ZSetLimits::default();
    for (name, n) in [("small", SMALL), ("large", LARGE)] {
        let mut z = zset_of(n);
        let m = member(n / 2);
        c.bench_function(&format!("zset/{name}/zscore"), |b| {
            b.iter(|| black_box(z.score(black_box(&m))));
        });
        let mut score = 0.5;
        c.bench_function(&format!("zset/{name}/zadd_rescore"), |b| {
            b.iter(|| {
                score = -score;
                z.insert(black_box(&m), score, &l)
            });
        });
    }
}

fn lists(c: &mut Criterion) {
    let mut list = List::new();
    for i in 0..LIST_LEN {
        list.push(End::Tail, &member(i), LIST_FILL);
    }
    c.bench_function("list/lpush_rpop", |b| {
        b.iter(|| {
            list.push(End::Head, black_box(b"member:new"), LIST_FILL);
            list.pop(End::Tail)
        });
    });
}

criterion_group!(benches, sets, hashes, zsets, lists);
criterion_main!(benches);
