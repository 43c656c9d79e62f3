//! Fuzz target: LZF decompression, and the compress/decompress round trip. The check lives in
//! `percore::fuzzing::check_lzf`, so a crash found here replays in tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| percore::fuzzing::check_lzf(data));
