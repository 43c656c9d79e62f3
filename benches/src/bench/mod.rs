//! `percore-bench`: a load generator for any RESP server (percore, redis-server, Valkey),
//! built to measure latency honestly.
//!
//! - [`args`]: the flags, parsed by hand into a [`args::Config`].
//! - [`template`], [`keys`], [`rng`]: what each request is (command mix, key
//!   distribution, values), encoded straight into the output buffer.
//! - [`worker`]: one load thread, its connections on one io_uring, closed or open loop.
//! - [`reply`]: skips RESP2/RESP3 replies in place and names error kinds.
//! - [`run`]: rounds over targets, per-second collection, the [`run::Report`].
//! - [`event`]: `--during CMD --at T` on a side connection.
//! - [`stats`], [`hdr_text`], [`report`], [`svg`]: histograms and what is printed and
//!   written.
//! - [`signal`], [`cpu`]: Ctrl-C, and the generator's own CPU time.
//! - [`cli`]: the program.

pub mod args;
pub mod cli;
pub mod cpu;
pub mod event;
pub mod hdr_text;
pub mod keys;
pub mod reply;
pub mod report;
pub mod rng;
pub mod run;
pub mod signal;
pub mod stats;
pub mod svg;
pub mod template;
pub mod worker;
