//! Truncated and corrupt GGUF files are errors that name the byte offset, never panics or huge allocations.

use proptest::prelude::*;
use r3_backbone::dequant::GgmlType;
use r3_backbone::gguf::{Gguf, Value, write_gguf};

fn sample() -> Vec<u8> {
    let q8: Vec<u8> = (0..2)
        .flat_map(|_| {
            let mut b = half::f16::from_f32(0.25).to_le_bytes().to_vec();
            b.extend((0..32).map(|i| i as u8));
            b
        })
        .collect();
    let f32s: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
    write_gguf(
        &[
            ("general.architecture", Value::String("llama".into())),
            ("llama.block_count", Value::U32(2)),
            ("llama.rope.freq_base", Value::F32(1e5)),
            ("tokenizer.ggml.tokens", Value::Array(vec![Value::String("a".into()), Value::String("b".into())])),
            ("general.flag", Value::Bool(true)),
            ("x.i64", Value::I64(-3)),
            ("x.f64", Value::F64(0.5)),
        ],
        &[("t.q8", &[32, 2], GgmlType::Q8_0, &q8), ("t.f32", &[8], GgmlType::F32, &f32s)],
        32,
    )
}

#[test]
fn a_well_formed_file_reads_back() {
    let bytes = sample();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.get_u64("llama.block_count").unwrap(), 2);
    assert_eq!(g.get_strings("tokenizer.ggml.tokens").unwrap(), ["a", "b"]);
    assert_eq!(g.metadata["x.i64"], Value::I64(-3));
    assert_eq!(g.tensor("t.q8").unwrap().shape(), vec![2, 32]);
    assert!(g.get_str("missing.key").unwrap_err().to_string().contains("missing.key"));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample();
    for cut in 0..bytes.len() {
        // Cutting inside the padding after the last tensor still leaves every tensor whole.
        if let Err(e) = Gguf::parse(&bytes[..cut]) {
            let msg = e.to_string();
            assert!(msg.contains("corrupt GGUF at byte"), "cut {cut}: {msg}");
        } else {
            let g = Gguf::parse(&bytes[..cut]).unwrap();
            let last = g.tensors.iter().map(|t| g.data_offset + t.offset + t.n_bytes()).max().unwrap();
            assert!(last <= cut as u64, "cut {cut} accepted although a tensor ends at {last}");
        }
    }
}

#[test]
fn lying_lengths_are_refused_before_allocation() {
    let mut bytes = sample();
    // The first key's length (bytes 24..32) set to 2^62: must fail on the length check, not allocate.
    bytes[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let e = Gguf::parse(&bytes).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    // A tensor count of 2^40.
    let mut bytes = sample();
    bytes[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(Gguf::parse(&bytes).is_err());
    let mut bytes = sample();
    bytes[..4].copy_from_slice(b"GGML");
    assert!(Gguf::parse(&bytes).unwrap_err().to_string().contains("not a GGUF file"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Random byte flips and truncations of a valid file: the parser returns (Ok or Err) without panicking, and
    /// an accepted file's tensors lie inside it.
    #[test]
    fn mutated_headers_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8), cut in 0usize..500) {
        let mut bytes = sample();
        for (i, b) in flips {
            if i < bytes.len() {
                bytes[i] = b;
            }
        }
        bytes.truncate(cut.min(bytes.len()));
        if let Ok(g) = Gguf::parse(&bytes) {
            for t in &g.tensors {
                prop_assert!(g.data_offset + t.offset + t.n_bytes() <= bytes.len() as u64);
            }
        }
    }

    /// Arbitrary bytes behind a valid magic and version.
    #[test]
    fn random_headers_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(tail);
        let _ = Gguf::parse(&bytes);
    }
}
