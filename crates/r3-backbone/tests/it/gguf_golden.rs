//! Every tensor of the real GGUF files, dequantised, against the reference sums of `golden/*/gguf_tensors.json`
//! (made with the `gguf` Python package): the first 8 values exactly, the sum and the sum of squares within
//! 1e-9 relative (both are accumulated in f64 here and in the reference, in different orders).

use r3_backbone::gguf::{Gguf, Value};

use crate::common::{golden_dir, model_path};

fn check_model(id: &str, golden: &str) {
    let path = model_path(id);
    let g = Gguf::open(&path).unwrap();
    let text = std::fs::read_to_string(golden_dir().join(golden).join("gguf_tensors.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensors = want["tensors"].as_array().unwrap();
    assert_eq!(g.tensors.len(), tensors.len(), "tensor count");
    let mut file = g.open_data().unwrap();
    let mut worst = (0f64, String::new());
    for w in tensors {
        let name = w["name"].as_str().unwrap();
        let t = g.tensor(name).unwrap_or_else(|| panic!("{id}: tensor {name} missing"));
        assert_eq!(t.ggml_type.name(), w["type"].as_str().unwrap(), "{name}: type");
        let dims: Vec<u64> = w["shape_ggml"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        assert_eq!(t.dims, dims, "{name}: dims");
        let y = g.read_f32(&mut file, t).unwrap();
        let first8: Vec<f32> = w["first8"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(&y[..first8.len()], &first8[..], "{id}: {name}: first values");
        let sum: f64 = y.iter().map(|&v| f64::from(v)).sum();
        let sumsq: f64 = y.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        for (what, got, want) in
            [("sum", sum, w["sum"].as_f64().unwrap()), ("sumsq", sumsq, w["sumsq"].as_f64().unwrap())]
        {
            let rel = (got - want).abs() / want.abs().max(1.0);
            if rel > worst.0 {
                worst = (rel, format!("{name} {what}"));
            }
            assert!(rel < 1e-9, "{id}: {name}: {what} {got} vs {want} (relative difference {rel:.2e})");
        }
    }
    println!("{id}: {} tensors match; largest relative difference {:.2e} ({})", tensors.len(), worst.0, worst.1);

    // Scalar metadata as the reference read it.
    for (k, v) in want["metadata"].as_object().unwrap() {
        if k.starts_with("GGUF.") {
            continue;
        }
        let got = g.metadata.get(k).unwrap_or_else(|| panic!("{id}: metadata {k} missing"));
        match (v, got) {
            (serde_json::Value::String(s), Value::Array(a)) if s.starts_with("<array of ") => {
                assert_eq!(s, &format!("<array of {}>", a.len()), "{k}");
            }
            (serde_json::Value::String(s), got) => assert_eq!(got.as_str(), Some(s.as_str()), "{k}"),
            (serde_json::Value::Bool(b), got) => assert_eq!(got, &Value::Bool(*b), "{k}"),
            (serde_json::Value::Number(n), got) => {
                assert_eq!(got.as_f64().map(|x| x as f32), n.as_f64().map(|x| x as f32), "{k}");
            }
            (serde_json::Value::Array(a), Value::Array(b)) => assert_eq!(a.len(), b.len(), "{k}"),
            (want, got) => panic!("{id}: metadata {k}: {want:?} vs {got:?}"),
        }
    }
}

#[test]
fn smollm2_tensors_match_the_reference() {
    check_model("smollm2-135m", "smollm2");
}

#[test]
fn qwen_0_5b_tensors_match_the_reference() {
    check_model("qwen2.5-coder-0.5b", "qwen2_0_5b");
}

/// The block types the real checkpoints do not use (F16, BF16, Q4_0, Q5_1, Q5_K) — and the others again — against
/// the `gguf` Python package on seeded random blocks (`tests/fixtures/make_dequant_ref.py`): bit-exact.
#[test]
fn every_block_type_matches_the_python_reference() {
    use r3_backbone::dequant::{GgmlType, dequantize};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dequant_ref.json");
    let refs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let types = [
        ("F16", GgmlType::F16),
        ("BF16", GgmlType::BF16),
        ("Q4_0", GgmlType::Q4_0),
        ("Q4_1", GgmlType::Q4_1),
        ("Q5_0", GgmlType::Q5_0),
        ("Q5_1", GgmlType::Q5_1),
        ("Q8_0", GgmlType::Q8_0),
        ("Q4_K", GgmlType::Q4_K),
        ("Q5_K", GgmlType::Q5_K),
        ("Q6_K", GgmlType::Q6_K),
    ];
    for (name, ty) in types {
        let r = &refs[name];
        let hex = r["raw_hex"].as_str().unwrap();
        let raw: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let n = r["n"].as_u64().unwrap() as usize;
        let want: Vec<f32> = r["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = dequantize(ty, &raw, n).unwrap();
        let bad = got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()));
        assert!(
            bad.is_none(),
            "{name}: element {} is {} but the reference has {}",
            bad.unwrap(),
            got[bad.unwrap()],
            want[bad.unwrap()]
        );
    }
}
