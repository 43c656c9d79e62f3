//! Fuzz target: the nodes.conf parser, and render/parse of what it accepts. The check lives in
//! `percore::fuzzing::check_nodes_conf`, so a crash found here replays in tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| percore::fuzzing::check_nodes_conf(data));
