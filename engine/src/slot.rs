//! Key → cluster slot → shard, as Redis Cluster: CRC16-XMODEM of the key (or of its
//! `{hashtag}`) modulo [`SLOTS`], then `slot % shards`, so a slot never spans shards.

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

/// CRC16-XMODEM generator polynomial (x^16 + x^12 + x^5 + 1).
const CRC16_POLY: u16 = 0x1021;

/// Bytes [`crc16`] folds per step with its slicing tables.
const CRC16_SLICE: usize = 8;

/// Slicing tables for [`crc16`], built at compile time: `CRC16_TABLES[k][x]` is the
/// register after byte `x` followed by `k` zero bytes went through it (`x · x^(16 + 8k)
/// mod P`). Table 0 is the classic byte-at-a-time table. CRC-16 is linear, so a step of
/// 8 bytes is the XOR of 8 independent lookups (the register's two bytes folded into the
/// first two) instead of a chain of 8 dependent ones: routing a key costs a third of the
/// time (criterion `slot/crc16_16b`, README).
const CRC16_TABLES: [[u16; 256]; CRC16_SLICE] = build_crc16_tables();

const fn build_crc16_tables() -> [[u16; 256]; CRC16_SLICE] {
    let mut tables = [[0u16; 256]; CRC16_SLICE];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ CRC16_POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < CRC16_SLICE {
        let mut x = 0;
        while x < 256 {
            // One more zero byte through the register.
            let prev = tables[k - 1][x];
            tables[k][x] = (prev << 8) ^ tables[0][(prev >> 8) as usize];
            x += 1;
        }
        k += 1;
    }
    tables
}

/// CRC16-XMODEM (poly 0x1021, init 0, no reflection, no final xor), as Redis's `crc16()`.
#[must_use]
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_TABLES;
    let mut crc: u16 = 0;
    let mut blocks = data.chunks_exact(CRC16_SLICE);
    for b in &mut blocks {
        let hi = usize::from((crc >> 8) as u8 ^ b[0]);
        let lo = usize::from(crc as u8 ^ b[1]);
        crc = t[7][hi]
            ^ t[6][lo]
            ^ t[5][usize::from(b[2])]
            ^ t[4][usize::from(b[3])]
            ^ t[3][usize::from(b[4])]
            ^ t[2][usize::from(b[5])]
            ^ t[1][usize::from(b[6])]
            ^ t[0][usize::from(b[7])];
    }
    for &b in blocks.remainder() {
        crc = (crc << 8) ^ t[0][usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// The part of `key` that is hashed: the bytes between the first `{` and the first `}`
/// after it, when that span is not empty; otherwise the whole key (Redis `keyHashSlot`).
#[must_use]
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}

/// Cluster slot of `key`, honouring hashtags.
#[must_use]
pub fn key_hash_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

/// Shard that owns `slot` when the keyspace is split over `shards` shards.
#[must_use]
pub fn shard_of_slot(slot: u16, shards: usize) -> usize {
    assert!(shards > 0, "a keyspace has at least one shard");
    usize::from(slot) % shards
}

/// Shard that owns `key`.
#[must_use]
pub fn shard_of_key(key: &[u8], shards: usize) -> usize {
    shard_of_slot(key_hash_slot(key), shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn crc16_table_matches_bitwise() {
        fn bitwise(data: &[u8]) -> u16 {
            let mut crc: u16 = 0;
            for &b in data {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ CRC16_POLY
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        }
        let data: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        for start in 0..CRC16_SLICE {
            for len in 0..data.len() - start {
                let d = &data[start..start + len];
                assert_eq!(crc16(d), bitwise(d), "start {start} len {len}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn crc16_slicing_matches_bytewise(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut bytewise: u16 = 0;
            for &b in &data {
                bytewise = (bytewise << 8) ^ CRC16_TABLES[0][usize::from((bytewise >> 8) as u8 ^ b)];
            }
            proptest::prop_assert_eq!(crc16(&data), bytewise);
        }
    }

    #[test]
    fn known_redis_slots() {
        // Values from `CLUSTER KEYSLOT` on redis-server 7.
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"bar"), 5061);
        assert_eq!(key_hash_slot(b"hello"), 866);
        assert_eq!(key_hash_slot(b""), 0);
    }

    #[test]
    fn hashtags() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(
            key_hash_slot(b"{user1000}.following"),
            key_hash_slot(b"{user1000}.followers")
        );
        assert_eq!(
            key_hash_slot(b"{user1000}.following"),
            key_hash_slot(b"user1000")
        );
        // Empty tag: the whole key is hashed.
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        // First `{` up to the first `}` after it.
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"no-close{abc"), b"no-close{abc");
        assert_eq!(hash_tag(b"}{a}"), b"a");
    }

    #[test]
    fn shards() {
        assert_eq!(shard_of_slot(16383, 4), 3);
        assert_eq!(shard_of_slot(5, 1), 0);
        assert_eq!(shard_of_key(b"foo", 7), 12182 % 7);
        assert!(key_hash_slot(b"anything") < SLOTS);
    }
}
