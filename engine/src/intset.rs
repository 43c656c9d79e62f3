//! Redis's intset: a sorted array of distinct integers stored at the narrowest width
//! (16, 32 or 64 bits) that fits every member, upgraded in place when a wider one
//! arrives, never downgraded (as Redis). The contents are kept little-endian exactly as
//! Redis lays them out after its 8-byte header, so an RDB intset blob is the header plus
//! [`IntSet::contents`].

/// Bytes of an intset blob's header: encoding (`u32` LE, the width in bytes) and length
/// (`u32` LE).
pub const INTSET_HEADER_BYTES: usize = 8;

/// A sorted set of distinct `i64`, Redis's `intset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntSet {
    /// Width of each member in bytes: 2, 4 or 8.
    width: u8,
    /// `len * width` bytes, members ascending, little-endian.
    data: Vec<u8>,
}

impl Default for IntSet {
    fn default() -> Self {
        Self::new()
    }
}

/// The narrowest width (bytes) that holds `v`.
#[inline]
fn width_of(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// Why an intset blob from a file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntSetError {
    /// Shorter than its header, or its length disagrees with the blob's size.
    BadLength,
    /// The encoding is not 2, 4 or 8.
    BadWidth,
    /// Members not strictly ascending, or a member fits a narrower width than declared
    /// only counts as wrong in Redis's deep check; we accept that.
    NotSorted,
}

impl std::fmt::Display for IntSetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IntSetError::BadLength => "intset length does not match its size",
            IntSetError::BadWidth => "intset encoding is not 16, 32 or 64 bits",
            IntSetError::NotSorted => "intset members are not sorted and distinct",
        })
    }
}

impl std::error::Error for IntSetError {}

impl IntSet {
    #[must_use]
    pub fn new() -> Self {
        Self {
            width: 2,
            data: Vec::new(),
        }
    }

    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len() / usize::from(self.width)
    }

    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Width of each member in bytes (2, 4 or 8).
    #[must_use]
    pub fn width(&self) -> u8 {
        self.width
    }

    /// The member at `i` (ascending order). Panics when out of range.
    #[must_use]
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        let w = usize::from(self.width);
        let b = &self.data[i * w..i * w + w];
        match self.width {
            2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            _ => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    fn put(&mut self, i: usize, v: i64) {
        let w = usize::from(self.width);
        let dst = &mut self.data[i * w..i * w + w];
        match self.width {
            2 => dst.copy_from_slice(&(v as i16).to_le_bytes()),
            4 => dst.copy_from_slice(&(v as i32).to_le_bytes()),
            _ => dst.copy_from_slice(&v.to_le_bytes()),
        }
    }

    /// `Ok(index)` of `v`, or `Err(insertion point)`.
    fn search(&self, v: i64) -> Result<usize, usize> {
        if width_of(v) > self.width {
            return Err(if v < 0 { 0 } else { self.len() });
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    #[must_use]
    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; false when it was already there.
    pub fn insert(&mut self, v: i64) -> bool {
        let Err(at) = self.search(v) else {
            return false;
        };
        let need = width_of(v);
        if need > self.width {
            let old: Vec<i64> = self.iter().collect();
            self.width = need;
            self.data = vec![0; (old.len() + 1) * usize::from(need)];
            let mut j = 0;
            for (i, x) in old.into_iter().enumerate() {
                if i == at {
                    j += 1;
                }
                self.put(j, x);
                j += 1;
            }
            self.put(at, v);
            return true;
        }
        let w = usize::from(self.width);
        let pos = at * w;
        self.data.splice(pos..pos, std::iter::repeat_n(0, w));
        self.put(at, v);
        true
    }

    /// Removes `v`; false when absent.
    pub fn remove(&mut self, v: i64) -> bool {
        let Ok(at) = self.search(v) else {
            return false;
        };
        self.remove_at(at);
        true
    }

    /// Removes and returns the member at `i`.
    pub fn remove_at(&mut self, i: usize) -> i64 {
        let v = self.get(i);
        let w = usize::from(self.width);
        self.data.drain(i * w..i * w + w);
        v
    }

    /// Members ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The largest member, if any.
    #[must_use]
    pub fn max(&self) -> Option<i64> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    /// The member bytes after the header, as Redis stores them.
    #[must_use]
    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    /// The whole blob as Redis writes it into an RDB file (type 11).
    #[must_use]
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INTSET_HEADER_BYTES + self.data.len());
        out.extend_from_slice(&u32::from(self.width).to_le_bytes());
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// Parses an RDB intset blob, checking its header against its size and its order.
    pub fn from_blob(blob: &[u8]) -> Result<Self, IntSetError> {
        if blob.len() < INTSET_HEADER_BYTES {
            return Err(IntSetError::BadLength);
        }
        let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]);
        let len = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        let width = match width {
            2 | 4 | 8 => width as u8,
            _ => return Err(IntSetError::BadWidth),
        };
        let body = &blob[INTSET_HEADER_BYTES..];
        if len.checked_mul(usize::from(width)) != Some(body.len()) {
            return Err(IntSetError::BadLength);
        }
        let set = Self {
            width,
            data: body.to_vec(),
        };
        if set.iter().zip(set.iter().skip(1)).any(|(a, b)| a >= b) {
            return Err(IntSetError::NotSorted);
        }
        Ok(set)
    }

    /// Bytes this set holds on the heap.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn upgrades_width_and_keeps_order() {
        let mut s = IntSet::new();
        assert!(s.insert(5));
        assert!(s.insert(-3));
        assert!(!s.insert(5));
        assert_eq!(s.width(), 2);
        assert!(s.insert(100_000));
        assert_eq!(s.width(), 4);
        assert!(s.insert(i64::MIN));
        assert_eq!(s.width(), 8);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![i64::MIN, -3, 5, 100_000]);
        assert!(s.remove(100_000));
        assert_eq!(s.width(), 8, "never downgraded");
        let blob = s.to_blob();
        assert_eq!(IntSet::from_blob(&blob), Ok(s));
    }

    #[test]
    fn bad_blobs_are_refused() {
        assert_eq!(IntSet::from_blob(&[2, 0]), Err(IntSetError::BadLength));
        assert_eq!(
            IntSet::from_blob(&[3, 0, 0, 0, 0, 0, 0, 0]),
            Err(IntSetError::BadWidth)
        );
        assert_eq!(
            IntSet::from_blob(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0]),
            Err(IntSetError::BadLength)
        );
        assert_eq!(
            IntSet::from_blob(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 0]),
            Err(IntSetError::NotSorted)
        );
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((any::<bool>(), prop_oneof![
            -300i64..300, any::<i16>().prop_map(i64::from), any::<i32>().prop_map(i64::from), any::<i64>()
        ]), 0..200)) {
            let mut s = IntSet::new();
            let mut m = BTreeSet::new();
            for (add, v) in ops {
                if add {
                    prop_assert_eq!(s.insert(v), m.insert(v));
                } else {
                    prop_assert_eq!(s.remove(v), m.remove(&v));
                }
                prop_assert_eq!(s.len(), m.len());
            }
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), m.iter().copied().collect::<Vec<_>>());
            for v in &m {
                prop_assert!(s.contains(*v));
            }
            prop_assert_eq!(IntSet::from_blob(&s.to_blob()), Ok(s));
        }

        #[test]
        fn arbitrary_blobs_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = IntSet::from_blob(&blob);
        }
    }
}
