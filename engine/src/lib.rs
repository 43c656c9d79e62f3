//! percore-engine: pure data structures, no I/O, no unsafe.
#![forbid(unsafe_code)]
