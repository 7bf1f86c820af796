//! Unit tests of `import.rs`.

use super::*;
use crate::HiddenInput;
use crate::dequant::GgmlType;
use crate::gguf::{Value, write_gguf};
use crate::test_device;
use burn::tensor::{Distribution, Int};

/// A random tiny model whose GGUF file has one value of `blk.1.ffn_down.weight` set to NaN, or whose
/// metadata declares one layer fewer than its tensors hold: both must be errors naming a tensor.
#[test]
fn damaged_values_and_unused_layers_are_errors() {
    let device = test_device();
    let config = BackboneConfig::new(Arch::Llama, 61, 32, 2, 4, 2, 8, 40, 1e4, 1e-5, false, true, 64);
    let mut model = config.init(&device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");

    let mut fewer = config.clone();
    fewer.n_layers = 1;
    std::fs::write(&path, to_gguf(&fewer, &model, None)).unwrap();
    let e = load_gguf(&path, &device).unwrap_err().to_string();
    assert!(e.contains("blk.1.") && e.contains("not used") && e.contains("`llama.block_count` = 1"), "{e}");

    let down = &mut model.layers[1].mlp.down_proj.weight;
    let mut values: Vec<f32> = down.val().into_data().try_to_vec().unwrap();
    values[17] = f32::NAN;
    *down = Param::from_tensor(Tensor::from_data(TensorData::new(values, [40, 32]), &device));
    std::fs::write(&path, to_gguf(&config, &model, None)).unwrap();
    let e = load_gguf(&path, &device).unwrap_err().to_string();
    assert!(e.contains("`blk.1.ffn_down.weight`") && e.contains("1 of 1280 values are NaN"), "{e}");
}

/// llama.cpp's `permute` of q/k rows (the inverse of [`unpermute_rows`]).
fn permute_rows(w: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let mut out = vec![0f32; w.len()];
    for hf_row in 0..rows {
        let file_row = (0..rows).find(|&r| unpermuted_row(r, rows / n_head) == hf_row).unwrap();
        out[file_row * cols..(file_row + 1) * cols].copy_from_slice(&w[hf_row * cols..(hf_row + 1) * cols]);
    }
    out
}

/// Writes `model` as a GGUF file the way llama.cpp's converter does (F32 tensors, `[out, in]` data, llama
/// q/k rows permuted), so that loading it back must give the same model.
fn to_gguf(config: &BackboneConfig, model: &Backbone, skip: Option<&str>) -> Vec<u8> {
    let mut tensors: Vec<(String, Vec<u64>, Vec<u8>)> = Vec::new();
    let bytes = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut push = |name: String, t: Tensor<2>, heads: Option<usize>| {
        let [rows, cols] = t.dims();
        let mut v: Vec<f32> = t.into_data().try_to_vec().unwrap();
        if let Some(n) = heads {
            v = permute_rows(&v, n, cols);
        }
        tensors.push((name, vec![cols as u64, rows as u64], bytes(v)));
    };
    let llama = config.arch == Arch::Llama;
    push("token_embd.weight".into(), model.embed_tokens.weight.val(), None);
    let linear = |l: &Linear| l.weight.val().transpose(); // [out, in]
    for (n, layer) in model.layers.iter().enumerate() {
        let a = &layer.self_attn;
        push(format!("blk.{n}.attn_q.weight"), linear(&a.q_proj), llama.then_some(config.n_heads));
        push(format!("blk.{n}.attn_k.weight"), linear(&a.k_proj), llama.then_some(config.n_kv_heads));
        push(format!("blk.{n}.attn_v.weight"), linear(&a.v_proj), None);
        push(format!("blk.{n}.attn_output.weight"), linear(&a.o_proj), None);
        push(format!("blk.{n}.ffn_gate.weight"), linear(&layer.mlp.gate_proj), None);
        push(format!("blk.{n}.ffn_up.weight"), linear(&layer.mlp.up_proj), None);
        push(format!("blk.{n}.ffn_down.weight"), linear(&layer.mlp.down_proj), None);
        for (t, norm) in [("attn_norm", &layer.input_layernorm), ("ffn_norm", &layer.post_attention_layernorm)] {
            push(format!("blk.{n}.{t}.weight"), norm.gamma.val().reshape([1, config.hidden_size]), None);
        }
        for (t, l) in [("attn_q", &a.q_proj), ("attn_k", &a.k_proj), ("attn_v", &a.v_proj)] {
            if let Some(b) = &l.bias {
                push(format!("blk.{n}.{t}.bias"), b.val().reshape([1, b.dims()[0]]), None);
            }
        }
    }
    push("output_norm.weight".into(), model.norm.gamma.val().reshape([1, config.hidden_size]), None);
    if let Some(head) = &model.lm_head {
        push("output.weight".into(), linear(head), None);
    }
    // 1-D tensors were pushed as [1, n]: list them with a single dimension.
    for (name, dims, _) in &mut tensors {
        if name.contains("norm") || name.ends_with(".bias") {
            dims.truncate(1);
        }
    }
    let arch = config.arch.name();
    let k = |key: &str| format!("{arch}.{key}");
    let u = |v: usize| Value::U32(v as u32);
    let metadata = [
        ("general.architecture".to_string(), Value::String(arch.into())),
        (k("block_count"), u(config.n_layers)),
        (k("embedding_length"), u(config.hidden_size)),
        (k("attention.head_count"), u(config.n_heads)),
        (k("attention.head_count_kv"), u(config.n_kv_heads)),
        (k("feed_forward_length"), u(config.intermediate_size)),
        (k("rope.freq_base"), Value::F32(config.rope_theta as f32)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(config.rms_norm_eps as f32)),
        (k("context_length"), u(config.max_position_embeddings)),
    ];
    let metadata: Vec<(&str, Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let tensors: Vec<(&str, &[u64], GgmlType, &[u8])> = tensors
        .iter()
        .filter(|(n, _, _)| Some(n.as_str()) != skip)
        .map(|(n, d, b)| (n.as_str(), d.as_slice(), GgmlType::F32, b.as_slice()))
        .collect();
    write_gguf(&metadata, &tensors, 32)
}

/// A random model written as GGUF (q/k permuted for llama, separate or tied head) loads back to the same
/// configuration and the same hidden states; loading it as bf16 gives close, finite hidden states.
#[test]
fn gguf_round_trip_of_a_random_model() {
    // GGUF stores ε as f32: use one that f32 represents exactly, so that the configs compare equal.
    const EPS: f64 = 1.0 / 1_048_576.0;
    let device = test_device();
    device.seed(3);
    for (arch, tied) in [(Arch::Llama, true), (Arch::Qwen2, false)] {
        let config = BackboneConfig::new(arch, 61, 32, 2, 4, 2, 8, 40, 1e4, EPS, arch == Arch::Qwen2, tied, 64);
        let mut model = config.init(&device);
        for layer in &mut model.layers {
            layer.input_layernorm.gamma =
                Param::from_tensor(Tensor::random([32], Distribution::Uniform(0.5, 1.5), &device));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        std::fs::write(&path, to_gguf(&config, &model, None)).unwrap();
        let loaded = load_gguf(&path, &device).unwrap();
        assert_eq!(loaded.config.to_string(), config.to_string(), "{arch:?}");

        let ids = Tensor::<2, Int>::from_data([[1, 5, 9, 60, 2, 33]], &device);
        let hidden = |m: &Backbone| m.hidden(HiddenInput::new(m.embed(ids.clone()))).hidden;
        let want = hidden(&model);
        let d = (hidden(&loaded.model) - want.clone()).abs().max().into_scalar::<f32>();
        assert!(d < 1e-5, "{arch:?}: maxdiff {d}");

        let half = load_gguf_with(&path, &device, &LoadOptions { dtype: Some(DType::BF16) }).unwrap();
        assert_eq!(half.model.embed_tokens.weight.val().dtype(), DType::BF16);
        let h = hidden(&half.model);
        assert_eq!(h.dtype(), DType::BF16);
        let d = (h.cast(DType::F32) - want).abs().max().into_scalar::<f32>();
        assert!(d.is_finite() && d < 0.1, "{arch:?} bf16: maxdiff {d}");
        println!("{arch:?}: bf16 hidden maxdiff {d:.3}");

        // A missing tensor is an error that names it.
        std::fs::write(&path, to_gguf(&config, &model, Some("blk.1.ffn_up.weight"))).unwrap();
        let e = load_gguf(&path, &device).unwrap_err().to_string();
        assert!(e.contains("blk.1.ffn_up.weight") && e.contains("missing"), "{e}");
    }
}

/// The llama.cpp permutation (`reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)`) followed by
/// [`unpermute_rows`] is the identity.
#[test]
fn unpermute_inverts_the_llama_cpp_permutation() {
    let (n_head, head_dim, cols) = (3, 8, 2);
    let rows = n_head * head_dim;
    let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
    let mut gguf = vec![0f32; hf.len()];
    // permute: gguf[h][i][t] = hf[h][t][i] (llama.cpp's converter).
    for h in 0..n_head {
        for t in 0..2 {
            for i in 0..head_dim / 2 {
                let src = h * head_dim + t * head_dim / 2 + i;
                let dst = h * head_dim + 2 * i + t;
                gguf[dst * cols..(dst + 1) * cols].copy_from_slice(&hf[src * cols..(src + 1) * cols]);
            }
        }
    }
    assert_ne!(gguf, hf);
    assert_eq!(unpermute_rows(&gguf, n_head, cols), hf);
}
