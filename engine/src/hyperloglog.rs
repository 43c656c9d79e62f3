//! HyperLogLog strings byte-compatible with Redis's `hyperloglog.c`: the 16-byte `HYLL`
//! header (magic, encoding, 3 unused bytes, the cached cardinality in little-endian with
//! bit 7 of its last byte meaning "stale"), the dense layout (16384 six-bit registers,
//! least significant bits first) and the sparse opcodes (ZERO `00xxxxxx`, XZERO
//! `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`), MurmurHash64A with Redis's seed, and Redis 5+'s
//! estimator (Ertl's improved raw estimator with the tau/sigma corrections). Every edit
//! follows Redis's code step by step so the bytes stay identical.

/// Register index bits.
pub const HLL_P: u32 = 14;
/// Hash bits left for the run of zeros.
pub const HLL_Q: u32 = 64 - HLL_P;
/// Number of registers.
pub const HLL_REGISTERS: usize = 1 << HLL_P;
/// Bits per dense register.
pub const HLL_BITS: usize = 6;
/// Largest value of a dense register.
pub const HLL_REGISTER_MAX: u8 = (1 << HLL_BITS) - 1;
/// Header size in bytes.
pub const HLL_HDR_BYTES: usize = 16;
/// Size of a dense HyperLogLog string in bytes.
pub const HLL_DENSE_BYTES: usize = HLL_HDR_BYTES + (HLL_REGISTERS * HLL_BITS).div_ceil(8);
/// Default `hll-sparse-max-bytes`.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;
/// Largest register value a sparse VAL opcode holds.
const SPARSE_VAL_MAX_VALUE: u8 = 32;
/// Longest run of a VAL opcode.
const SPARSE_VAL_MAX_LEN: usize = 4;
/// Longest run of a ZERO opcode.
const SPARSE_ZERO_MAX_LEN: usize = 64;
/// Longest run of an XZERO opcode.
const SPARSE_XZERO_MAX_LEN: usize = 16384;
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
/// MurmurHash64A seed Redis hashes elements with.
const HASH_SEED: u64 = 0xadc8_3b19;
/// 1 / (2 ln 2).
const HLL_ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Reply to a string that is not a HyperLogLog.
pub const NOT_HLL_ERR: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Reply to a HyperLogLog whose registers do not decode.
pub const CORRUPT_HLL_ERR: &str = "INVALIDOBJ Corrupted HLL object detected";

/// A HyperLogLog string that does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HllError {
    /// Not a HyperLogLog (bad header or size).
    NotHll,
    /// The header is fine but the registers are corrupt.
    Corrupt,
}

impl HllError {
    #[must_use]
    pub fn reply_text(self) -> &'static str {
        match self {
            HllError::NotHll => NOT_HLL_ERR,
            HllError::Corrupt => CORRUPT_HLL_ERR,
        }
    }
}

impl std::fmt::Display for HllError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reply_text())
    }
}

impl std::error::Error for HllError {}

/// A new empty HyperLogLog (sparse: one XZERO covering every register; cache valid, 0).
#[must_use]
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HLL_HDR_BYTES];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = ENCODING_SPARSE;
    let mut left = HLL_REGISTERS;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        push_xzero(&mut v, n);
        left -= n;
    }
    v
}

/// Redis's `isHLLObjectOrReply` checks on the bytes of a string.
pub fn validate(bytes: &[u8]) -> Result<(), HllError> {
    if bytes.len() < HLL_HDR_BYTES
        || &bytes[..4] != b"HYLL"
        || bytes[4] > ENCODING_SPARSE
        || (bytes[4] == ENCODING_DENSE && bytes.len() != HLL_DENSE_BYTES)
    {
        return Err(HllError::NotHll);
    }
    Ok(())
}

/// Marks the cached cardinality stale.
pub fn invalidate_cache(hll: &mut [u8]) {
    hll[15] |= 0x80;
}

/// Whether the HyperLogLog is dense.
#[must_use]
pub fn is_dense(hll: &[u8]) -> bool {
    hll[4] == ENCODING_DENSE
}

/// Austin Appleby's MurmurHash64A, as in Redis (little-endian reads).
#[must_use]
pub fn murmurhash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// `hllPatLen`: the register of `ele` and the length of its run of zeros plus one.
#[must_use]
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(ele, HASH_SEED);
    let index = (hash & (HLL_REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> HLL_P) | (1u64 << HLL_Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * HLL_BITS / 8;
    let fb = (i * HLL_BITS) & 7;
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(HLL_REGISTER_MAX)) as u8
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * HLL_BITS / 8;
    let fb = (i * HLL_BITS) & 7;
    let v = u16::from(v);
    let max = u16::from(HLL_REGISTER_MAX);
    regs[byte] &= !((max << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((max >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// `hllDenseSet`: raises register `i` to `count`; whether it changed.
fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push(((l >> 8) as u8) | 0x40);
    v.push((l & 0xff) as u8);
}

fn push_zero_run(v: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push((len - 1) as u8);
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len - 1) as u8 | 0x80
}

/// One sparse opcode at `p`: (registers covered, opcode bytes, value (0 for zeros)). A
/// second XZERO byte past the end reads as 0, as Redis reads the string's terminator.
fn sparse_op(b: &[u8], p: usize) -> (usize, usize, u8) {
    let op = b[p];
    if op & 0xc0 == 0 {
        (usize::from(op & 0x3f) + 1, 1, 0)
    } else if op & 0x80 != 0 {
        (usize::from(op & 3) + 1, 1, ((op >> 2) & 0x1f) + 1)
    } else {
        let lo = usize::from(b.get(p + 1).copied().unwrap_or(0));
        (((usize::from(op & 0x3f) << 8) | lo) + 1, 2, 0)
    }
}

/// `hllSparseToDense`: converts in place (the header, cached cardinality included, is
/// kept).
pub fn sparse_to_dense(hll: &mut Vec<u8>) -> Result<(), HllError> {
    if is_dense(hll) {
        return Ok(());
    }
    let mut dense = vec![0u8; HLL_DENSE_BYTES];
    dense[..HLL_HDR_BYTES].copy_from_slice(&hll[..HLL_HDR_BYTES]);
    dense[4] = ENCODING_DENSE;
    let mut idx = 0usize;
    let mut p = HLL_HDR_BYTES;
    while p < hll.len() {
        let (run, oplen, val) = sparse_op(hll, p);
        if val == 0 {
            idx += run;
        } else {
            if run + idx > HLL_REGISTERS {
                return Err(HllError::Corrupt);
            }
            for _ in 0..run {
                dense_put(&mut dense[HLL_HDR_BYTES..], idx, val);
                idx += 1;
            }
        }
        p += oplen;
    }
    if idx != HLL_REGISTERS {
        return Err(HllError::Corrupt);
    }
    *hll = dense;
    Ok(())
}

/// `hllSparseSet`: raises register `index` to `count`, promoting to dense when the value
/// does not fit a VAL opcode or the string would outgrow `sparse_max_bytes`.
fn sparse_set(
    hll: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max_bytes: usize,
) -> Result<bool, HllError> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(hll, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let end = hll.len();
    let mut p = HLL_HDR_BYTES;
    let mut first = 0usize;
    let mut prev = None;
    let mut span = 0usize;
    let mut oplen = 1;
    while p < end {
        let op = sparse_op(hll, p);
        span = op.0;
        oplen = op.1;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end || p + oplen > end {
        return Err(HllError::Corrupt);
    }
    let (runlen, _, curval) = sparse_op(hll, p);
    let is_xzero = oplen == 2;
    let is_val = curval != 0;
    // Step 2: the cheap cases, then the split.
    let mut done = false;
    if is_val {
        if curval >= count {
            return Ok(false);
        }
        if runlen == 1 {
            hll[p] = val_op(count, 1);
            done = true;
        }
    }
    if !done && !is_val && !is_xzero && runlen == 1 {
        hll[p] = val_op(count, 1);
        done = true;
    }
    if !done {
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        if is_val {
            if index != first {
                seq.push(val_op(curval, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(curval, last - index));
            }
        } else {
            if index != first {
                push_zero_run(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero_run(&mut seq, last - index);
            }
        }
        // Step 3: substitute the sequence.
        if seq.len() > oplen && hll.len() + seq.len() - oplen > sparse_max_bytes {
            return promote(hll, index, count);
        }
        hll.splice(p..p + oplen, seq);
    }
    // Step 4: merge adjacent VALs of equal value, from the opcode before the change.
    let mut p = prev.unwrap_or(HLL_HDR_BYTES);
    let mut scan = 5;
    while p < hll.len() && scan > 0 {
        scan -= 1;
        let op = hll[p];
        if op & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if op & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < hll.len() && hll[p + 1] & 0x80 != 0 {
            let (l1, _, v1) = sparse_op(hll, p);
            let (l2, _, v2) = sparse_op(hll, p + 1);
            if v1 == v2 && l1 + l2 <= SPARSE_VAL_MAX_LEN {
                hll[p + 1] = val_op(v1, l1 + l2);
                hll.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate_cache(hll);
    Ok(true)
}

fn promote(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    sparse_to_dense(hll)?;
    let changed = dense_set(&mut hll[HLL_HDR_BYTES..], index, count);
    assert!(changed, "a promoted register must change");
    Ok(true)
}

/// `hllAdd`: adds `ele` to a validated HyperLogLog; whether a register changed.
pub fn add(hll: &mut Vec<u8>, ele: &[u8], sparse_max_bytes: usize) -> Result<bool, HllError> {
    let (index, count) = pat_len(ele);
    if is_dense(hll) {
        Ok(dense_set(&mut hll[HLL_HDR_BYTES..], index, count))
    } else {
        sparse_set(hll, index, count, sparse_max_bytes)
    }
}

/// `hllMerge`: `max[i] = max(max[i], register i)` for a validated HyperLogLog.
pub fn merge_into(max: &mut [u8; HLL_REGISTERS], hll: &[u8]) -> Result<(), HllError> {
    if is_dense(hll) {
        let regs = &hll[HLL_HDR_BYTES..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HLL_HDR_BYTES;
    while p < hll.len() {
        let (run, oplen, val) = sparse_op(hll, p);
        if val != 0 {
            // Redis 7.0.15 refuses a VAL run past the last register outright.
            if run + i > HLL_REGISTERS {
                return Err(HllError::Corrupt);
            }
            for m in &mut max[i..i + run] {
                *m = (*m).max(val);
            }
        }
        i += run;
        p += oplen;
    }
    if i != HLL_REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

/// The registers of a dense HyperLogLog (PFDEBUG GETREG).
#[must_use]
pub fn dense_registers(hll: &[u8]) -> Vec<u8> {
    let regs = &hll[HLL_HDR_BYTES..];
    (0..HLL_REGISTERS).map(|i| dense_get(regs, i)).collect()
}

/// PFDEBUG DECODE's text of a sparse HyperLogLog (`z:len`, `Z:len`, `v:value,len`), or
/// `None` when it is dense.
#[must_use]
pub fn decode_sparse(hll: &[u8]) -> Option<String> {
    if is_dense(hll) {
        return None;
    }
    let mut out = Vec::new();
    let mut p = HLL_HDR_BYTES;
    while p < hll.len() {
        let (run, oplen, val) = sparse_op(hll, p);
        out.push(match (val, oplen) {
            (0, 1) => format!("z:{run}"),
            (0, _) => format!("Z:{run}"),
            _ => format!("v:{val},{run}"),
        });
        p += oplen;
    }
    Some(out.join(" "))
}

/// Register histogram size (Redis's `reghisto[64]`).
const HISTO_LEN: usize = 64;

fn estimate(histo: &[u32; HISTO_LEN]) -> u64 {
    let m = HLL_REGISTERS as f64;
    let q = HLL_Q as usize;
    let mut z = m * tau((m - f64::from(histo[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (HLL_ALPHA_INF * m * m / z).round() as u64
}

#[expect(
    clippy::float_cmp,
    reason = "Redis's series stops when a term no longer changes the sum, exactly"
)]
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

#[expect(
    clippy::float_cmp,
    reason = "Redis's series stops when a term no longer changes the sum, exactly"
)]
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// The estimate of a validated HyperLogLog (`hllCount`), ignoring its cache.
pub fn count(hll: &[u8]) -> Result<u64, HllError> {
    let mut histo = [0u32; HISTO_LEN];
    if is_dense(hll) {
        let regs = &hll[HLL_HDR_BYTES..];
        for i in 0..HLL_REGISTERS {
            histo[usize::from(dense_get(regs, i))] += 1;
        }
    } else {
        let mut idx = 0usize;
        let mut p = HLL_HDR_BYTES;
        while p < hll.len() {
            let (run, oplen, val) = sparse_op(hll, p);
            idx += run;
            histo[usize::from(val)] = histo[usize::from(val)].wrapping_add(run as u32);
            p += oplen;
        }
        if idx != HLL_REGISTERS {
            return Err(HllError::Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The estimate of raw registers (the union PFCOUNT builds).
#[must_use]
pub fn count_registers(regs: &[u8; HLL_REGISTERS]) -> u64 {
    let mut histo = [0u32; HISTO_LEN];
    for &r in regs {
        histo[usize::from(r) & (HISTO_LEN - 1)] += 1;
    }
    estimate(&histo)
}

/// PFCOUNT of one validated key: the cached cardinality when valid, else the estimate,
/// which is then cached. Returns (cardinality, whether the cache was written).
pub fn cached_count(hll: &mut [u8]) -> Result<(u64, bool), HllError> {
    if hll[15] & 0x80 == 0 {
        let mut c = [0u8; 8];
        c.copy_from_slice(&hll[8..16]);
        return Ok((u64::from_le_bytes(c), false));
    }
    let card = count(hll)?;
    hll[8..16].copy_from_slice(&card.to_le_bytes());
    Ok((card, true))
}

/// PFMERGE's write: raises the registers of `dest` (a validated HyperLogLog, or a new one)
/// to `max`, dense first when any input was dense, and marks the cache stale.
pub fn merge_registers(
    dest: &mut Vec<u8>,
    max: &[u8; HLL_REGISTERS],
    use_dense: bool,
    sparse_max_bytes: usize,
) -> Result<(), HllError> {
    if use_dense {
        sparse_to_dense(dest)?;
    }
    for (j, &m) in max.iter().enumerate() {
        if m == 0 {
            continue;
        }
        if is_dense(dest) {
            dense_set(&mut dest[HLL_HDR_BYTES..], j, m);
        } else {
            // Redis ignores this result: the destination was validated by its merge.
            let _ = sparse_set(dest, j, m, sparse_max_bytes);
        }
    }
    invalidate_cache(dest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_is_redis_bytes() {
        assert_eq!(
            new_sparse(),
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        );
        assert_eq!(count(&new_sparse()), Ok(0));
        assert_eq!(HLL_DENSE_BYTES, 12304);
    }

    #[test]
    fn murmur_known_values() {
        // Redis: PFADD h a; GET h → register 9522 (hash bits), checked via pat_len shape.
        assert_eq!(murmurhash64a(b"", 0), 0);
        let (i, c) = pat_len(b"a");
        assert!(i < HLL_REGISTERS && (1..=51).contains(&c));
    }

    #[test]
    fn counts_are_close_and_dense_matches_sparse() {
        let mut s = new_sparse();
        let mut d = new_sparse();
        sparse_to_dense(&mut d).unwrap();
        for i in 0..20_000u32 {
            add(&mut s, i.to_string().as_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
            add(&mut d, i.to_string().as_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
        }
        assert!(is_dense(&s));
        let (c, wrote) = cached_count(&mut s).unwrap();
        assert!(wrote);
        assert!((19_000..21_000).contains(&c), "{c}");
        let mut d2 = d.clone();
        d2[8..16].copy_from_slice(&s[8..16]);
        assert_eq!(s, d2);
    }

    proptest! {
        #[test]
        fn sparse_and_dense_agree(elems in proptest::collection::vec(any::<u32>(), 0..300)) {
            let mut s = new_sparse();
            let mut d = new_sparse();
            sparse_to_dense(&mut d).unwrap();
            for e in &elems {
                let a = add(&mut s, &e.to_le_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
                let b = add(&mut d, &e.to_le_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
                prop_assert_eq!(a, b);
            }
            prop_assert_eq!(count(&s).unwrap(), count(&d).unwrap());
            let mut m1 = [0u8; HLL_REGISTERS];
            let mut m2 = [0u8; HLL_REGISTERS];
            merge_into(&mut m1, &s).unwrap();
            merge_into(&mut m2, &d).unwrap();
            prop_assert!(m1 == m2);
            let mut s2 = s.clone();
            sparse_to_dense(&mut s2).unwrap();
            prop_assert_eq!(&s2[HLL_HDR_BYTES..], &d[HLL_HDR_BYTES..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64), e in any::<u32>()) {
            let mut h = new_sparse();
            h.truncate(HLL_HDR_BYTES);
            h.extend_from_slice(&body);
            if validate(&h).is_ok() {
                let _ = count(&h);
                let mut m = [0u8; HLL_REGISTERS];
                let _ = merge_into(&mut m, &h);
                let mut h2 = h.clone();
                let _ = add(&mut h2, &e.to_le_bytes(), DEFAULT_SPARSE_MAX_BYTES);
                let _ = cached_count(&mut h2);
                let mut h3 = h.clone();
                let _ = merge_registers(&mut h3, &m, true, DEFAULT_SPARSE_MAX_BYTES);
            }
        }
    }
}
