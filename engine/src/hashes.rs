//! Hashes: a [`Listpack`] of field/value pairs while small (at most
//! `hash-max-listpack-entries` fields, every field and value at most
//! `hash-max-listpack-value` bytes), else a hash table ([`Table`]). Conversion is one way,
//! as in Redis: a hash that became a table stays one.

use crate::listpack::{Listpack, LpValue};
use crate::table::{Entry, Key, Table};

/// Default `hash-max-listpack-entries`.
pub const DEFAULT_HASH_MAX_LISTPACK_ENTRIES: usize = 512;
/// Default `hash-max-listpack-value`.
pub const DEFAULT_HASH_MAX_LISTPACK_VALUE_BYTES: usize = 64;
/// Seed of the tables of large hashes. Fixed: the engine has no randomness source, and a
/// hash's table never leaves its shard.
const HASH_TABLE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// The thresholds between the two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            max_listpack_entries: DEFAULT_HASH_MAX_LISTPACK_ENTRIES,
            max_listpack_value: DEFAULT_HASH_MAX_LISTPACK_VALUE_BYTES,
        }
    }
}

/// A hash.
pub enum Hash {
    /// Field, value, field, value, ...
    Pack(Listpack),
    /// Boxed: the table's header is large and a listpack hash must stay small.
    /// Values are [`Key`]s: up to 22 bytes inside the entry, no allocation of their own.
    Table(Box<Table<Key>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Pack(Listpack::new())
    }
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        match self {
            Hash::Pack(lp) => Hash::Pack(lp.clone()),
            Hash::Table(t) => {
                let mut n = Table::new(HASH_TABLE_SEED);
                for (k, v) in t.iter() {
                    n.insert(k.into(), v.clone());
                }
                Hash::Table(Box::new(n))
            }
        }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| {
                (
                    k.to_bytes().escape_ascii().to_string(),
                    v.to_bytes().escape_ascii().to_string(),
                )
            }))
            .finish()
    }
}

/// Equal when the same fields hold the same values, whatever the form.
impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().all(|(k, v)| {
                other
                    .get(&k.to_bytes())
                    .is_some_and(|w| w.to_bytes() == v.to_bytes())
            })
    }
}

impl Eq for Hash {}

impl Hash {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A hash from a listpack of field/value pairs (an RDB load). `None` when the count
    /// is odd or a field repeats.
    #[must_use]
    pub fn from_listpack(lp: Listpack) -> Option<Self> {
        if !lp.len().is_multiple_of(2) {
            return None;
        }
        let mut seen = Table::new(HASH_TABLE_SEED);
        let mut it = lp.iter();
        while let Some(f) = it.next() {
            it.next();
            if seen.insert(f.to_bytes().into_owned().into(), ()).is_some() {
                return None;
            }
        }
        Some(Hash::Pack(lp))
    }

    /// An empty hash in table form, sized for `n` fields (an RDB load).
    #[must_use]
    pub fn with_table(n: usize) -> Self {
        let mut t = Table::new(HASH_TABLE_SEED);
        if n > 0 {
            t.rehash(n);
        }
        Hash::Table(Box::new(t))
    }

    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Hash::Pack(lp) => lp.len() / 2,
            Hash::Table(t) => t.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING.
    #[must_use]
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Pack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// The listpack, when in compact form (RDB writing).
    #[must_use]
    pub fn as_listpack(&self) -> Option<&Listpack> {
        match self {
            Hash::Pack(lp) => Some(lp),
            Hash::Table(_) => None,
        }
    }

    fn find_pack(lp: &Listpack, field: &[u8]) -> Option<usize> {
        lp.find(lp.first(), field, 1)
    }

    /// The value of `field`.
    #[must_use]
    pub fn get(&self, field: &[u8]) -> Option<LpValue<'_>> {
        match self {
            Hash::Pack(lp) => {
                let p = Self::find_pack(lp, field)?;
                let v = lp.next(p).expect("a field is followed by its value");
                Some(lp.get(v))
            }
            Hash::Table(t) => t.get(field).map(|v| LpValue::Str(v)),
        }
    }

    #[must_use]
    pub fn contains(&self, field: &[u8]) -> bool {
        match self {
            Hash::Pack(lp) => Self::find_pack(lp, field).is_some(),
            Hash::Table(t) => t.contains_key(field),
        }
    }

    /// Converts to the table form.
    pub fn convert_to_table(&mut self) {
        if let Hash::Pack(lp) = self {
            let mut t = Table::new(HASH_TABLE_SEED);
            let mut it = lp.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                t.insert(
                    f.to_bytes().into_owned().into_boxed_slice(),
                    Key::from(&*v.to_bytes()),
                );
            }
            *self = Hash::Table(Box::new(t));
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to a table when
    /// the limits say so.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if let Hash::Pack(lp) = self {
            if field.len() > limits.max_listpack_value || value.len() > limits.max_listpack_value {
                self.convert_to_table();
            } else if let Some(p) = Self::find_pack(lp, field) {
                let v = lp.next(p).expect("a field is followed by its value");
                lp.replace(v, value);
                return false;
            } else {
                let end = lp.end();
                lp.insert(end, field);
                let end = lp.end();
                lp.insert(end, value);
                if lp.len() / 2 > limits.max_listpack_entries {
                    self.convert_to_table();
                }
                return true;
            }
        }
        match self {
            // One lookup; the field is copied only when new; values are inline when short.
            Hash::Table(t) => match t.entry(field) {
                Entry::Occupied(mut o) => {
                    *o.get_mut() = Key::from(value);
                    false
                }
                Entry::Vacant(slot) => {
                    slot.insert(value.into());
                    true
                }
            },
            Hash::Pack(_) => unreachable!("converted above"),
        }
    }

    /// Appends a pair known to be new, without the lookup (an RDB load). Converts as
    /// [`Hash::set`] does.
    pub fn push_new(&mut self, field: &[u8], value: &[u8], limits: HashLimits) {
        if let Hash::Pack(lp) = self {
            if field.len() > limits.max_listpack_value
                || value.len() > limits.max_listpack_value
                || lp.len() / 2 >= limits.max_listpack_entries
            {
                self.convert_to_table();
            } else {
                let end = lp.end();
                lp.insert(end, field);
                let end = lp.end();
                lp.insert(end, value);
                return;
            }
        }
        if let Hash::Table(t) = self {
            t.insert(field.into(), value.into());
        }
    }

    /// Removes `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Pack(lp) => match Self::find_pack(lp, field) {
                Some(p) => {
                    lp.delete_range(p, 2);
                    true
                }
                None => false,
            },
            Hash::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Field/value pairs in storage order.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            Hash::Pack(lp) => HashIter::Pack(lp.iter()),
            Hash::Table(t) => HashIter::Table(Box::new(t.iter())),
        }
    }

    /// HSCAN step: calls `f` on pairs and returns the next cursor. A listpack hash is
    /// returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(LpValue<'_>, LpValue<'_>)) -> u64 {
        match self {
            Hash::Pack(_) => {
                for (k, v) in self {
                    f(k, v);
                }
                0
            }
            Hash::Table(t) => t.scan(cursor, |k, v| f(LpValue::Str(k), LpValue::Str(v))),
        }
    }

    /// The pair at position `i` (`i < len`), in storage order for a listpack and arena
    /// order for a table (random picks).
    #[must_use]
    pub fn pair_at(&self, i: usize) -> Option<(LpValue<'_>, LpValue<'_>)> {
        match self {
            Hash::Pack(lp) => {
                let p = lp.seek(2 * i as i64)?;
                let v = lp.next(p)?;
                Some((lp.get(p), lp.get(v)))
            }
            Hash::Table(t) => {
                if i >= t.len() {
                    return None;
                }
                let (k, v) = t.entry_at(i);
                Some((LpValue::Str(k), LpValue::Str(v)))
            }
        }
    }

    /// A uniformly random pair (`rng` is a splitmix64 state).
    #[must_use]
    pub fn random_pair(&self, rng: &mut u64) -> Option<(LpValue<'_>, LpValue<'_>)> {
        match self {
            Hash::Pack(_) => {
                let n = self.len();
                if n == 0 {
                    return None;
                }
                let i = crate::hash::random_below(rng, n);
                self.pair_at(i)
            }
            Hash::Table(t) => t
                .random_entry(rng)
                .map(|(k, v)| (LpValue::Str(k), LpValue::Str(v))),
        }
    }
}

impl<'a> IntoIterator for &'a Hash {
    type Item = (LpValue<'a>, LpValue<'a>);
    type IntoIter = HashIter<'a>;
    fn into_iter(self) -> HashIter<'a> {
        self.iter()
    }
}

type TableIter<'a> = dyn Iterator<Item = (&'a [u8], &'a Key)> + 'a;

/// Field/value pairs of a [`Hash`].
pub enum HashIter<'a> {
    Pack(crate::listpack::Iter<'a>),
    Table(Box<TableIter<'a>>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (LpValue<'a>, LpValue<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Pack(it) => Some((it.next()?, it.next()?)),
            HashIter::Table(it) => it.next().map(|(k, v)| (LpValue::Str(k), LpValue::Str(v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Set(Vec<u8>, Vec<u8>),
        Del(Vec<u8>),
    }

    fn field() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u8..40).prop_map(|i| format!("f{i}").into_bytes()),
            (0i64..40).prop_map(|i| i.to_string().into_bytes()),
            (60usize..70).prop_map(|n| vec![b'x'; n]),
        ]
    }

    #[test]
    fn a_hash_is_small() {
        assert!(std::mem::size_of::<Hash>() <= 32);
    }

    proptest! {
        #[test]
        fn matches_a_map_model(
            ops in proptest::collection::vec(prop_oneof![
                3 => (field(), field()).prop_map(|(f, v)| Op::Set(f, v)),
                1 => field().prop_map(Op::Del),
            ], 0..200),
            max_entries in 1usize..20,
        ) {
            let limits = HashLimits { max_listpack_entries: max_entries, max_listpack_value: 64 };
            let mut h = Hash::new();
            let mut m = BTreeMap::new();
            let mut was_table = false;
            for op in ops {
                match op {
                    Op::Set(f, v) => {
                        let new = h.set(&f, &v, limits);
                        prop_assert_eq!(new, m.insert(f, v).is_none());
                    }
                    Op::Del(f) => prop_assert_eq!(h.remove(&f), m.remove(&f).is_some()),
                }
                prop_assert_eq!(h.len(), m.len());
                if was_table { prop_assert_eq!(h.encoding(), "hashtable"); }
                was_table = h.encoding() == "hashtable";
                if h.encoding() == "listpack" {
                    prop_assert!(h.len() <= max_entries);
                }
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> = h.iter().map(|(k, v)| (k.to_bytes().into_owned(), v.to_bytes().into_owned())).collect();
            prop_assert_eq!(&got, &m);
            for (k, v) in &m {
                prop_assert_eq!(h.get(k).map(|x| x.to_bytes().into_owned()), Some(v.clone()));
            }
            let mut scanned = BTreeMap::new();
            let mut c = 0;
            loop {
                c = h.scan(c, |k, v| { scanned.insert(k.to_bytes().into_owned(), v.to_bytes().into_owned()); });
                if c == 0 { break; }
            }
            prop_assert_eq!(&scanned, &m);
        }
    }
}
