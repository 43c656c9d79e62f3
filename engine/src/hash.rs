//! A fast keyed hash for byte-string keys (wyhash-style multiply-fold), and the small
//! `SplitMix64` generator the tables use for random sampling.
//!
//! The seed comes from the caller (one per table), so the engine stays pure and
//! deterministic under test while the server can seed from the OS at start-up.

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// Keys longer than this are consumed in three parallel 16-byte lanes.
const WIDE_LANES_MIN_BYTES: usize = 48;

/// 64x64 → 128-bit multiply, folded to 64 bits by xor of the halves.
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn read8(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8-byte window"))
}

#[inline]
fn read4(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        b[at..at + 4].try_into().expect("4-byte window"),
    ))
}

/// Hash `bytes` with `seed`. Different seeds give independent-looking hash functions.
#[must_use]
#[inline]
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let mut s = seed ^ P0;
    let (a, b) = if len <= 16 {
        if len >= 4 {
            let q = (len >> 3) << 2;
            (
                (read4(bytes, 0) << 32) | read4(bytes, q),
                (read4(bytes, len - 4) << 32) | read4(bytes, len - 4 - q),
            )
        } else if len > 0 {
            (
                (u64::from(bytes[0]) << 16)
                    | (u64::from(bytes[len >> 1]) << 8)
                    | u64::from(bytes[len - 1]),
                0,
            )
        } else {
            (0, 0)
        }
    } else {
        let mut p = 0;
        let mut rest = len;
        if rest > WIDE_LANES_MIN_BYTES {
            let mut s1 = s;
            let mut s2 = s;
            while rest > WIDE_LANES_MIN_BYTES {
                s = mum(read8(bytes, p) ^ P1, read8(bytes, p + 8) ^ s);
                s1 = mum(read8(bytes, p + 16) ^ P2, read8(bytes, p + 24) ^ s1);
                s2 = mum(read8(bytes, p + 32) ^ P3, read8(bytes, p + 40) ^ s2);
                p += 48;
                rest -= 48;
            }
            s ^= s1 ^ s2;
        }
        while rest > 16 {
            s = mum(read8(bytes, p) ^ P1, read8(bytes, p + 8) ^ s);
            p += 16;
            rest -= 16;
        }
        (read8(bytes, len - 16), read8(bytes, len - 8))
    };
    mum(P1 ^ len as u64, mum(a ^ P1, b ^ s))
}

/// `SplitMix64` step: advances `state` and returns the next pseudo-random value.
/// Callers own the state, so sampling is reproducible under test.
#[must_use]
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform-enough value in `0..bound` (multiply-shift; bias is below 2^-32 for the
/// table sizes we use). `bound` must be non-zero.
#[must_use]
#[inline]
pub fn random_below(state: &mut u64, bound: usize) -> usize {
    debug_assert!(bound > 0);
    ((u128::from(splitmix64(state)) * bound as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seeded() {
        assert_eq!(hash_bytes(1, b"hello"), hash_bytes(1, b"hello"));
        assert_ne!(hash_bytes(1, b"hello"), hash_bytes(2, b"hello"));
        assert_ne!(hash_bytes(1, b"hello"), hash_bytes(1, b"hellp"));
        assert_ne!(hash_bytes(1, b""), hash_bytes(1, b"\0"));
        assert_ne!(hash_bytes(1, b"\0"), hash_bytes(1, b"\0\0"));
    }

    #[test]
    fn every_length_reads_in_bounds_and_differs() {
        let data: Vec<u8> = (0..200u8).collect();
        let mut seen = std::collections::HashSet::new();
        for len in 0..data.len() {
            assert!(
                seen.insert(hash_bytes(7, &data[..len])),
                "collision at len {len}"
            );
        }
    }

    #[test]
    fn low_bits_spread_evenly() {
        // Sequential keys, as `key:000123`, into 1024 buckets: each bucket should get
        // close to the mean (chi-square well under the 1% critical value ~1148).
        const BUCKETS: usize = 1024;
        const KEYS: usize = 100_000;
        let mut counts = vec![0u32; BUCKETS];
        for i in 0..KEYS {
            let key = format!("key:{i:06}");
            counts[(hash_bytes(42, key.as_bytes()) as usize) & (BUCKETS - 1)] += 1;
        }
        let mean = KEYS as f64 / BUCKETS as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - mean).powi(2) / mean)
            .sum();
        assert!(chi2 < 1148.0, "chi-square {chi2}");
    }

    #[test]
    fn avalanche_single_bit_flips() {
        // Flipping one input bit should flip about half the output bits.
        let key = *b"0123456789abcdefghij";
        let base = hash_bytes(3, &key);
        let mut total = 0u32;
        for bit in 0..key.len() * 8 {
            let mut k = key;
            k[bit / 8] ^= 1 << (bit % 8);
            total += (hash_bytes(3, &k) ^ base).count_ones();
        }
        let avg = f64::from(total) / (key.len() * 8) as f64;
        assert!((28.0..36.0).contains(&avg), "average flipped bits {avg}");
    }

    #[test]
    fn random_below_stays_in_range() {
        let mut s = 1;
        let mut hits = [0u32; 10];
        for _ in 0..10_000 {
            hits[random_below(&mut s, 10)] += 1;
        }
        assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
    }
}
