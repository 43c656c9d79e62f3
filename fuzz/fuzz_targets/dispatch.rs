//! Fuzz target: one shard's command layer in process: parsing, table checks, routing, handlers. The check lives in
//! `percore::fuzzing::check_dispatch`, so a crash found here replays in tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| percore::fuzzing::check_dispatch(data));
