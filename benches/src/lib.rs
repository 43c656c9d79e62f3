//! Shared helpers for the criterion benches live in each bench file; this crate hosts them
//! and `percore-bench`, the load generator (the [`bench`] module).

pub mod bench;
