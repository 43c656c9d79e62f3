//! ACL command categories (`@read`, `@write`, ...) as bits, in Redis 7.0's order (the
//! order of `ACL CAT` and of COMMAND INFO's category lists).

use crate::commands::flags;

pub const KEYSPACE: u32 = 1 << 0;
pub const READ: u32 = 1 << 1;
pub const WRITE: u32 = 1 << 2;
pub const SET: u32 = 1 << 3;
pub const SORTEDSET: u32 = 1 << 4;
pub const LIST: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const STRING: u32 = 1 << 7;
pub const BITMAP: u32 = 1 << 8;
pub const HYPERLOGLOG: u32 = 1 << 9;
pub const GEO: u32 = 1 << 10;
pub const STREAM: u32 = 1 << 11;
pub const PUBSUB: u32 = 1 << 12;
pub const ADMIN: u32 = 1 << 13;
pub const FAST: u32 = 1 << 14;
pub const SLOW: u32 = 1 << 15;
pub const BLOCKING: u32 = 1 << 16;
pub const DANGEROUS: u32 = 1 << 17;
pub const CONNECTION: u32 = 1 << 18;
pub const TRANSACTION: u32 = 1 << 19;
pub const SCRIPTING: u32 = 1 << 20;

/// Category names, bit `i` is `NAMES[i]`.
pub const NAMES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category name (case-insensitive), if it is one.
pub fn by_name(name: &[u8]) -> Option<u32> {
    NAMES
        .iter()
        .position(|n| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// A command's categories: the ones Redis's command file lists for it (`catalog`), plus
/// those its flags imply (Redis's `setImplicitACLCategories`).
pub fn of(full_name: &str, command_flags: u32) -> u32 {
    let explicit = super::catalog::EXPLICIT_CATEGORIES
        .binary_search_by(|(n, _)| (*n).cmp(full_name))
        .map_or(0, |i| super::catalog::EXPLICIT_CATEGORIES[i].1);
    let mut c = explicit;
    if command_flags & flags::WRITE != 0 {
        c |= WRITE;
    }
    if command_flags & flags::READONLY != 0 && c & SCRIPTING == 0 {
        c |= READ;
    }
    if command_flags & flags::ADMIN != 0 {
        c |= ADMIN | DANGEROUS;
    }
    if command_flags & flags::PUBSUB != 0 {
        c |= PUBSUB;
    }
    if command_flags & flags::FAST != 0 {
        c |= FAST;
    }
    if command_flags & flags::BLOCKING != 0 {
        c |= BLOCKING;
    }
    if c & FAST == 0 {
        c |= SLOW;
    }
    c
}

/// `@name` of every category in `bits`, in Redis's order.
pub fn names(bits: u32) -> impl Iterator<Item = &'static str> {
    (0..NAMES.len())
        .filter(move |i| bits & (1 << i) != 0)
        .map(|i| NAMES[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_redis() {
        // GET: @read @string @fast.
        assert_eq!(
            of("get", flags::READONLY | flags::FAST),
            READ | STRING | FAST
        );
        // FLUSHALL: @keyspace @write @slow @dangerous.
        assert_eq!(
            of("flushall", flags::WRITE),
            KEYSPACE | WRITE | SLOW | DANGEROUS
        );
        // EVAL_RO is readonly but @scripting, so not @read.
        assert_eq!(of("eval_ro", flags::READONLY) & READ, 0);
        assert_eq!(by_name(b"SortedSet"), Some(SORTEDSET));
        assert_eq!(by_name(b"all"), None);
        assert!(
            super::super::catalog::EXPLICIT_CATEGORIES
                .windows(2)
                .all(|w| w[0].0 < w[1].0)
        );
        assert!(
            super::super::catalog::KEY_SPECS
                .windows(2)
                .all(|w| w[0].0 < w[1].0)
        );
    }
}
