//! Fuzz target: the RDB loader, and save/reload of what it loads. The check lives in
//! `percore::fuzzing::check_rdb_load`, so a crash found here replays in tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| percore::fuzzing::check_rdb_load(data));
