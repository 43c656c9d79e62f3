//! LZF property tests: compress → decompress returns the input, whatever the output
//! limit; garbage never panics and never expands past its limit.

use percore_persist::lzf::{self, Compressor, MAX_EXPANSION_RATIO};
use proptest::prelude::*;

/// Inputs with repeats, which exercise back references of every length and distance.
fn compressible() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..40),
            (proptest::collection::vec(any::<u8>(), 1..4), 1..300usize)
                .prop_map(|(unit, n)| unit.repeat(n)),
        ],
        1..20,
    )
    .prop_map(|parts| {
        // Repeat earlier parts too, at distances up to a few KiB.
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            out.extend_from_slice(part);
            if i % 3 == 2 {
                out.extend_from_slice(&parts[i / 2]);
            }
        }
        out
    })
}

fn check_round_trip(compressor: &mut Compressor, input: &[u8], out_len: usize) {
    let mut packed = vec![0; out_len];
    let n = compressor.compress(input, &mut packed);
    assert!(n <= out_len);
    if n > 0 {
        let mut back = Vec::new();
        assert_eq!(
            lzf::decompress(&packed[..n], &mut back, input.len()),
            Ok(input.len())
        );
        assert_eq!(back, input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trips(input in prop_oneof![compressible(), proptest::collection::vec(any::<u8>(), 0..2000)]) {
        let mut compressor = Compressor::new();
        // Roomy output: always fits (liblzf needs at most len + len/32 + 1).
        check_round_trip(&mut compressor, &input, input.len() + input.len() / 32 + 16);
        // Redis's limit: len - 4, refused when it does not fit.
        check_round_trip(&mut compressor, &input, input.len().saturating_sub(4));
    }

    #[test]
    fn any_output_limit_is_respected(input in compressible(), limit in 0usize..400) {
        let mut compressor = Compressor::new();
        check_round_trip(&mut compressor, &input, limit);
    }

    #[test]
    fn reused_compressor_matches_fresh(inputs in proptest::collection::vec(compressible(), 1..6)) {
        let mut reused = Compressor::new();
        for input in &inputs {
            let mut a = vec![0; input.len() + 64];
            let mut b = vec![0; input.len() + 64];
            let n = reused.compress(input, &mut a);
            let m = Compressor::new().compress(input, &mut b);
            prop_assert_eq!(&a[..n], &b[..m]);
        }
    }

    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300), max_len in 0usize..5000) {
        let mut out = b"prefix".to_vec();
        if let Ok(n) = lzf::decompress(&input, &mut out, max_len) {
            prop_assert!(n <= max_len);
            prop_assert!(n <= input.len() * MAX_EXPANSION_RATIO);
            prop_assert_eq!(out.len(), 6 + n);
        }
        prop_assert_eq!(&out[..6], b"prefix");
    }
}

#[test]
fn expansion_ratio_is_reachable_and_bounded() {
    // One literal, then long back references of 264 bytes each.
    let mut stream = vec![0, b'x'];
    for _ in 0..100 {
        stream.extend_from_slice(&[0xe0, 255, 0]);
    }
    let mut out = Vec::new();
    let n = lzf::decompress(&stream, &mut out, usize::MAX).unwrap();
    assert_eq!(n, 1 + 100 * 264);
    assert!(n <= stream.len() * MAX_EXPANSION_RATIO);
    assert!(out.iter().all(|&b| b == b'x'));
}
