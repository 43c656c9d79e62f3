//! Fuzz target: the RESP request parser, whole and resumed in pieces. The check lives in
//! `percore::fuzzing::check_resp_parse`, so a crash found here replays in tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| percore::fuzzing::check_resp_parse(data));
