//! CRC-64/Jones as Redis computes it for RDB files (`crc64.c`: reflected, polynomial
//! 0xad93d23594c935a9, initial value 0, no final xor). Redis stores the checksum
//! little-endian in the file's last 8 bytes. Computed with the `crc` crate's 16-byte
//! slicing tables.

use crc::{CRC_64_REDIS, Crc, Digest, Table};

static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_REDIS);

/// Running CRC-64/Jones over bytes fed in order.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest<'static, u64, Table<16>>,
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    #[must_use]
    pub fn new() -> Self {
        Self {
            digest: CRC64.digest(),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The checksum of everything fed so far (the digest stays usable).
    #[must_use]
    pub fn value(&self) -> u64 {
        self.digest.clone().finalize()
    }
}

/// CRC-64/Jones of `bytes` in one call.
#[must_use]
pub fn crc64(bytes: &[u8]) -> u64 {
    CRC64.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_test_vector() {
        // Redis crc64.c: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let mut c = Crc64::new();
        c.update(b"12345");
        c.update(b"6789");
        assert_eq!(c.value(), 0xe9c6_d914_c4b8_d9ca);
    }
}
