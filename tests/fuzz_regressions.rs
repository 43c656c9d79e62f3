//! The fuzz targets' checks (`percore::fuzzing`) in the normal test suite: every file of
//! the committed corpora (fuzz/corpus/<target>/, seeded from the tests) and every input a
//! fuzzer found a bug with (fuzz/regressions/<target>/, named for the bug) is run through
//! the same check the target runs. A crash the fuzzers find is fixed, its input is added to
//! fuzz/regressions/, and this test keeps it fixed on stable, without cargo-fuzz.

use percore::fuzzing;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("read corpus file");
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(
                result.is_ok(),
                "{target}: {} fails its check",
                path.display()
            );
            files += 1;
        }
    }
    assert!(files > 0, "no corpus for {target}");
}

#[test]
fn resp_parse_corpus() {
    replay("resp_parse", fuzzing::check_resp_parse);
}

#[test]
fn restore_corpus() {
    replay("restore", fuzzing::check_restore);
}

#[test]
fn rdb_load_corpus() {
    replay("rdb_load", fuzzing::check_rdb_load);
}

#[test]
fn lzf_corpus() {
    replay("lzf", fuzzing::check_lzf);
}

#[test]
fn nodes_conf_corpus() {
    replay("nodes_conf", fuzzing::check_nodes_conf);
}

#[test]
fn dispatch_corpus() {
    replay("dispatch", fuzzing::check_dispatch);
}
