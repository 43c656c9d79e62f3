//! Shared helpers for the criterion benches live in each bench file; this crate only hosts them.
