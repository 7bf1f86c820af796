//! The decoder on the real checkpoints against `golden/*/golden.json` (HF transformers, f32, from the same GGUF
//! files): for each of the 3 `forward` prompts, the argmax at every position (exact), the logits at the probe ids
//! of the last position and of every position (2e-3 absolute), the final-RMSNorm output at the last position
//! (first 16 values 1e-3 absolute, L2 norm 1e-3 relative) and the mean next-token NLL of the prompt (1e-3
//! absolute). `qwen2.5-coder-1.5b` runs only with `R3_SLOW=1`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use r3_backbone::{HiddenInput, LoadedBackbone};
use serde_json::Value;

use crate::common::{golden_dir, load, test_device};

/// Tolerances of `golden/README.md`.
const LOGITS_ABS: f32 = 2e-3;
const HIDDEN_ABS: f32 = 1e-3;
const L2_REL: f64 = 1e-3;
const NLL_ABS: f64 = 1e-3;

const HINT: &str = "if the reference changed, regenerate golden.json with the script of ../shared/golden; \
                    otherwise check the q/k un-permutation for llama files (import.rs) and the RoPE convention";

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The largest difference of each golden quantity over the prompts of one model.
#[derive(Default, Debug)]
struct Worst {
    argmax_mismatches: usize,
    last_logits_probe: f32,
    logits_probe_all_positions_first8: f32,
    last_hidden_post_norm_first16: f32,
    last_hidden_post_norm_l2_rel: f64,
    mean_nll_of_prompt: f64,
}

fn check_model(id: &str, golden: &str) {
    let text = std::fs::read_to_string(golden_dir().join(golden).join("golden.json")).unwrap();
    let want: Value = serde_json::from_str(&text).unwrap();
    let start = std::time::Instant::now();
    let LoadedBackbone { config, model } = load(id);
    println!("{id}: loaded in {:.1} s: {config}", start.elapsed().as_secs_f64());
    assert_eq!(config.vocab_size as u64, want["vocab_size"].as_u64().unwrap(), "{id}: vocab size");
    assert_eq!(config.eos_token_id.map(u64::from), want["eos_token_id"].as_u64(), "{id}: eos");
    assert_eq!(config.bos_token_id.map(u64::from), want["bos_token_id"].as_u64(), "{id}: bos");
    let probe: Vec<i64> = want["probe_vocab_ids"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    let device = test_device();
    let probe_t = Tensor::<1, Int>::from_data(TensorData::new(probe.clone(), [probe.len()]), &device);
    let mut worst = Worst::default();
    let mut failures = Vec::new();

    for (p, f) in want["forward"].as_array().unwrap().iter().enumerate() {
        let ids: Vec<i64> = f["ids"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        let l = ids.len();
        let ids_t = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, l]), &device);
        let t = std::time::Instant::now();
        let hidden = model.hidden(HiddenInput::new(model.embed(ids_t))).hidden; // [1, L, d]
        let logits = model.logits(hidden.clone()); // [1, L, V]
        let elapsed = t.elapsed().as_secs_f64();

        // Argmax at every position, exact.
        let argmax: Vec<i64> = logits.clone().argmax(2).into_data().convert::<i64>().try_to_vec().unwrap();
        let want_argmax: Vec<i64> =
            f["argmax_per_position"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        let mismatches: Vec<usize> = (0..l).filter(|&i| argmax[i] != want_argmax[i]).collect();
        worst.argmax_mismatches += mismatches.len();
        if !mismatches.is_empty() {
            failures.push(format!("prompt {p}: argmax differs at positions {mismatches:?}"));
        }

        // Logits at the probe ids.
        let probed = logits.clone().select(2, probe_t.clone()); // [1, L, P]
        let last: Vec<f32> = probed.clone().narrow(1, l - 1, 1).into_data().try_to_vec().unwrap();
        let d = max_abs_diff(&last, &floats(&f["last_logits_probe"]));
        worst.last_logits_probe = worst.last_logits_probe.max(d);
        if d > LOGITS_ABS {
            failures.push(format!("prompt {p}: last_logits_probe maxdiff {d:.2e} > {LOGITS_ABS:.0e}"));
        }
        let all: Vec<f32> = probed.narrow(2, 0, 8).into_data().try_to_vec().unwrap();
        let want_all: Vec<f32> =
            f["logits_probe_all_positions_first8"].as_array().unwrap().iter().flat_map(floats).collect();
        let d = max_abs_diff(&all, &want_all);
        worst.logits_probe_all_positions_first8 = worst.logits_probe_all_positions_first8.max(d);
        if d > LOGITS_ABS {
            failures.push(format!("prompt {p}: logits_probe_all_positions_first8 maxdiff {d:.2e} > {LOGITS_ABS:.0e}"));
        }

        // Final-RMSNorm output at the last position.
        let h_last: Vec<f32> = hidden.narrow(1, l - 1, 1).into_data().try_to_vec().unwrap();
        let d = max_abs_diff(&h_last[..16], &floats(&f["last_hidden_post_norm_first16"]));
        worst.last_hidden_post_norm_first16 = worst.last_hidden_post_norm_first16.max(d);
        if d > HIDDEN_ABS {
            failures.push(format!("prompt {p}: last_hidden_post_norm_first16 maxdiff {d:.2e} > {HIDDEN_ABS:.0e}"));
        }
        let l2 = h_last.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        let want_l2 = f["last_hidden_post_norm_l2"].as_f64().unwrap();
        let rel = (l2 - want_l2).abs() / want_l2;
        worst.last_hidden_post_norm_l2_rel = worst.last_hidden_post_norm_l2_rel.max(rel);
        if rel > L2_REL {
            failures.push(format!("prompt {p}: last_hidden_post_norm_l2 {l2} vs {want_l2} (relative {rel:.2e})"));
        }

        // Mean next-token cross-entropy over the prompt.
        let targets = Tensor::<3, Int>::from_data(TensorData::new(ids[1..].to_vec(), [1, l - 1, 1]), &device);
        let logp = log_softmax(logits.narrow(1, 0, l - 1), 2).gather(2, targets); // [1, L-1, 1]
        let nll = -f64::from(logp.mean().into_scalar::<f32>());
        let d = (nll - f["mean_nll_of_prompt"].as_f64().unwrap()).abs();
        worst.mean_nll_of_prompt = worst.mean_nll_of_prompt.max(d);
        if d > NLL_ABS {
            failures.push(format!("prompt {p}: mean_nll_of_prompt {nll} maxdiff {d:.2e} > {NLL_ABS:.0e}"));
        }
        println!("{id}: prompt {p}: {l} tokens, forward + full logits {elapsed:.2} s, mean NLL {nll:.5}");
    }
    println!("{id}: largest differences over the 3 prompts: {worst:?}");
    assert!(failures.is_empty(), "{id}: {} failures:\n{}\nhint: {HINT}", failures.len(), failures.join("\n"));
}

#[test]
fn smollm2_135m_matches_transformers() {
    check_model("smollm2-135m", "smollm2");
}

#[test]
fn qwen2_5_coder_0_5b_matches_transformers() {
    check_model("qwen2.5-coder-0.5b", "qwen2_0_5b");
}

/// The paper-size backbone (1.1 GB file, about 7 GB in f32): only with `R3_SLOW=1`.
#[test]
fn qwen2_5_coder_1_5b_matches_transformers_slow() {
    if std::env::var("R3_SLOW").as_deref() != Ok("1") {
        println!("skipped: qwen2.5-coder-1.5b golden forward is slow (7 GB in f32); run with R3_SLOW=1");
        return;
    }
    check_model("qwen2.5-coder-1.5b", "qwen2_1_5b");
}
