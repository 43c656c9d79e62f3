//! Corrupt and truncated RDB files: the loader returns an error, never panics, and a
//! single changed byte anywhere is caught (by the parser or by the CRC-64).

use percore_engine::{StrValue, Value};
use percore_persist::rdb::{self, DumpDb, LoadOptions, RdbErrorKind, encode_dump};
use proptest::prelude::*;

fn load(data: &[u8]) -> Result<u64, rdb::RdbError> {
    let mut keys = 0;
    rdb::load(data, &LoadOptions::default(), |_| {
        keys += 1;
        Ok(())
    })
    .map(|_| keys)
}

/// A keyspace with every encoding. Expiries are never 0: an EXPIRETIME_MS opcode turned
/// into EOF would then be followed by eight zero bytes, which read as "checksum
/// disabled" (Redis accepts such a file too).
fn keyspace() -> impl Strategy<Value = Vec<DumpDb>> {
    let value = prop_oneof![
        any::<i64>().prop_map(|i| Value::Str(StrValue::Int(i))),
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(|b| Value::from_bytes(&b)),
        (proptest::collection::vec(any::<u8>(), 1..4), 8..100usize)
            .prop_map(|(unit, n)| Value::from_bytes(&unit.repeat(n))),
    ];
    let key = prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..16),
        any::<i32>().prop_map(|i| i.to_string().into_bytes()),
        (proptest::collection::vec(any::<u8>(), 1..3), 12..40usize)
            .prop_map(|(unit, n)| unit.repeat(n)),
    ];
    proptest::collection::btree_map(
        0u32..16,
        proptest::collection::btree_map(key, (value, proptest::option::of(1i64..)), 1..8),
        1..3,
    )
    .prop_map(|dbs| {
        dbs.into_iter()
            .map(|(db, keys)| (db, keys.into_iter().map(|(k, (v, e))| (k, v, e)).collect()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = load(&data);
    }

    #[test]
    fn arbitrary_records_never_panic(
        magic in prop_oneof![Just(&b"REDIS0010"[..]), Just(&b"REDIS0003"[..]), Just(&b"VALKEY080"[..])],
        body in proptest::collection::vec(
            prop_oneof![
                any::<u8>(),
                prop_oneof![Just(0xc3u8), Just(0xfc), Just(0xfe), Just(0xfa), Just(0x81), Just(0x80), Just(0)],
            ],
            0..400,
        ),
    ) {
        let mut data = magic.to_vec();
        data.extend_from_slice(&body);
        let _ = load(&data);
    }

    #[test]
    fn any_changed_byte_is_an_error(
        dbs in keyspace(),
        compress in any::<bool>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let mut file = encode_dump(&dbs, compress, true).unwrap();
        prop_assert!(load(&file).is_ok());
        let i = at.index(file.len());
        file[i] ^= xor;
        prop_assert!(load(&file).is_err(), "byte {} ^ {:#x} went unnoticed", i, xor);
    }

    #[test]
    fn every_truncation_is_unexpected_eof(dbs in keyspace(), compress in any::<bool>()) {
        let file = encode_dump(&dbs, compress, true).unwrap();
        for len in 0..file.len() {
            let e = load(&file[..len]).unwrap_err();
            prop_assert_eq!(e.kind(), &RdbErrorKind::UnexpectedEof);
            prop_assert_eq!(e.offset(), len as u64);
            prop_assert!(e.to_string().starts_with("RDB file: unexpected end of file at offset "));
        }
    }
}
