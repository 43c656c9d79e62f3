//! Key → cluster slot → shard, as Redis Cluster: CRC16-XMODEM of the key (or of its
//! `{hashtag}`) modulo [`SLOTS`], then `slot % shards`, so a slot never spans shards.

/// Number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16384;

/// CRC16-XMODEM generator polynomial (x^16 + x^12 + x^5 + 1).
const CRC16_POLY: u16 = 0x1021;

/// Byte-at-a-time lookup table for [`crc16`], built at compile time.
const CRC16_TABLE: [u16; 256] = build_crc16_table();

const fn build_crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
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
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// CRC16-XMODEM (poly 0x1021, init 0, no reflection, no final xor), as Redis's `crc16()`.
#[must_use]
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc = (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)];
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
        for len in 0..data.len() {
            assert_eq!(crc16(&data[..len]), bitwise(&data[..len]));
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
