//! Fuzz target: RESTORE's payload checks and value loader, and DUMP of what loads. The
//! check lives in `percore::fuzzing::check_restore`, so a crash found here replays in
//! tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| percore::fuzzing::check_restore(data));
