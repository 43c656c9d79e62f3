//! percore-engine: percore's pure data structures. No I/O, no clock (callers pass
//! `now_ms`), no randomness source (callers pass seeds and RNG state), no `unsafe`.
//!
//! - [`slot`]: CRC16 key → cluster slot → shard.
//! - [`slot_index`]: per-slot key counts and key lists of a database (cluster mode).
//! - [`hash`]: the keyed hash the tables use.
//! - [`table`]: `Table<V>`, a Redis-`dict`-like incremental-rehash hash table with SCAN.
//! - [`value`]: stored values and their encodings.
//! - [`db`]: one database of one shard: values, TTLs, lazy and active expiry.
//! - [`evict`]: choosing keys to evict over `maxmemory` (the eviction pool).
//! - [`keyspace`]: the numbered databases of one shard.
//! - [`frozen`]: frozen copies of large values for a forkless snapshot's cut.
//! - [`strings`]: string-command semantics (INCR, INCRBYFLOAT, GETRANGE, SETRANGE...).
//! - [`number`]: Redis's number parsing and formatting.
//! - [`intset`], [`sets`]: set values (intset, small vector, hash table).
//! - [`zsets`]: sorted-set values (small sorted vector, hash table + rank-counted chunks).
//! - [`streams`]: stream values (listpack nodes by master ID, consumer groups).
//! - [`listpack`]: Redis's listpack, the compact form of small collections.
//! - [`lists`]: lists (a quicklist of listpack nodes).
//! - [`hashes`]: hashes (a listpack of field/value pairs, or a hash table).
//! - [`geo`]: geo points as sorted-set scores, Redis's geohash cells and search.
//! - [`memory`]: what a key costs as percore holds it (MEMORY USAGE).
//! - [`glob`]: Redis's `stringmatchlen` glob matcher (KEYS, SCAN MATCH).
//! - [`bitops`]: bitmaps and bit fields on string bytes (SETBIT, BITCOUNT, BITFIELD...).
//! - [`hyperloglog`]: Redis-compatible HyperLogLog strings (PFADD, PFCOUNT, PFMERGE).
//! - [`lcs`]: longest common subsequence (LCS).
#![forbid(unsafe_code)]

pub mod bitops;
pub mod db;
pub mod evict;
pub mod frozen;
pub mod geo;
pub mod glob;
pub mod hash;
pub mod hashes;
pub mod hyperloglog;
pub mod intset;
pub mod keyspace;
pub mod lcs;
pub mod listpack;
pub mod lists;
pub mod memory;
pub mod number;
pub mod sets;
pub mod slot;
pub mod slot_index;
pub mod streams;
pub mod strings;
pub mod table;
pub mod value;
pub mod wire;
pub mod zsets;

pub use db::{
    AccessTracking, Db, DbStats, Entry, ExpireBudget, ExpireCycleStats, KeyspaceInfo, SetExpire,
    TakenKey,
};
pub use hashes::Hash;
pub use keyspace::Keyspace;
pub use listpack::Listpack;
pub use lists::List;
pub use strings::StringError;
pub use table::Table;
pub use value::{StrValue, Value};
