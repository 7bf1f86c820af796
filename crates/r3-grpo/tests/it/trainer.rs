//! The GRPO loop on a tiny random model: only LatentRATT moves (the backbone stays bit-identical), a killed and
//! resumed run ends with the weights of an uninterrupted one, a NaN stops the run with the last good checkpoint
//! kept, and the run folder holds the per-step diagnostics.

use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Distribution, Tensor};
use r3_backbone::{Arch, BackboneConfig};
use r3_data::{EncodedSample, SftBatch};
use r3_grpo::{Error, GrpoConfig, GrpoData, GrpoMetric, GrpoTrainer};
use r3_latent::{LatentModel, LatentModelConfig, LatentRattConfig};

use crate::common::test_device;

const VOCAB: usize = 61;
const D: usize = 32;

/// The same tiny model every call (seeded), on `device`.
pub(crate) fn model(device: &Device) -> LatentModel {
    device.seed(31);
    let backbone =
        BackboneConfig::new(Arch::Qwen2, VOCAB, D, 2, 4, 2, 8, 40, 10_000.0, 1e-6, true, true, 128).init(device);
    let mut m =
        LatentModelConfig::new().with_ratt(Some(LatentRattConfig::new(D).with_init_std(0.3))).init(backbone, device);
    if let Some(r) = m.ratt.as_mut() {
        r.k.bias = Some(Param::from_tensor(Tensor::random([D], Distribution::Normal(0.0, 0.5), device)));
    }
    m
}

/// 16 prompts of varied lengths with 2–4 target tokens.
pub(crate) fn data() -> GrpoData {
    let train = (0..16u32)
        .map(|i| EncodedSample {
            prompt_ids: (0..3 + i % 5).map(|j| 1 + (i * 7 + j * 3) % 50).collect(),
            n_thought: 1,
            target_ids: (0..2 + i % 3).map(|j| 1 + (i * 11 + j * 5) % 50).collect(),
        })
        .collect();
    GrpoData { train, collate: Box::new(|s| SftBatch::new(s, 1, VOCAB as u32, 0)), items: None, eos_id: 0, valid: None }
}

pub(crate) fn config(dir: &std::path::Path, extra: &[&str]) -> GrpoConfig {
    let mut set: Vec<String> = vec![
        "model.checkpoint=\"unused\"".into(),
        format!("run.output_dir=\"{}\"", dir.display()),
        "run.timestamped=false".into(),
        "grpo.group_size=4".into(),
        "train.batch=4".into(),
        "train.warmup=2".into(),
        "train.lr=1e-2".into(),
        "train.checkpoint_every=100".into(),
    ];
    set.extend(extra.iter().map(|s| s.to_string()));
    GrpoConfig::from_toml_str("", "<test>", &set).expect("valid test config")
}

/// Every float parameter of a module, flattened, in visiting order.
fn params<M: Module>(m: &M) -> Vec<(ParamId, Vec<f32>)> {
    struct Collect(Vec<(ParamId, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const N: usize>(&mut self, p: &Param<Tensor<N>>) {
            self.0.push((p.id, p.val().into_data().convert::<f32>().try_to_vec().expect("f32")));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

pub(crate) fn values<M: Module>(m: &M) -> Vec<Vec<f32>> {
    params(m).into_iter().map(|(_, v)| v).collect()
}

#[test]
fn only_latentratt_moves_and_the_backbone_is_bit_identical() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = test_device();
    let start = model(&device);
    let backbone_before = values(&start.backbone);
    let ratt_before = values(start.ratt.as_ref().expect("ratt"));
    let cfg = config(dir.path(), &["train.max_steps=2"]);
    let outcome = GrpoTrainer::new(cfg, start, data(), device)?.run()?;
    assert_eq!(outcome.summary.steps, 2);
    assert!(values(&outcome.model.backbone) == backbone_before, "the backbone changed");
    let ratt_after = values(outcome.model.ratt.as_ref().expect("ratt"));
    let moved: f32 = ratt_before.iter().flatten().zip(ratt_after.iter().flatten()).map(|(a, b)| (a - b).abs()).sum();
    assert!(moved > 1e-4, "LatentRATT did not move ({moved})");

    // The run folder: resolved config, env.json, one diagnostics line per step.
    let run = dir.path();
    assert!(run.join("config.resolved.toml").is_file() && run.join("env.json").is_file());
    let lines = std::fs::read_to_string(run.join("metrics.jsonl"))?;
    let records: Vec<GrpoMetric> = lines.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(records.len(), 2);
    for r in &records {
        let GrpoMetric::Step(s) = r else { panic!("unexpected record {r:?}") };
        assert!(s.reward_mean < 0.0 && s.reward_std > 0.0, "{s:?}");
        assert!((s.advantage_norm - 1.0).abs() < 1e-5, "batch advantages have unit norm per pool: {s:?}");
        assert!(s.grad_norm > 0.0 && s.samples_per_s > 0.0 && (0.0..=1.0).contains(&s.equal_reward_groups));
        assert_eq!(s.clip_ratio, 0.0, "ρ ≡ 1 with one iteration");
        assert!(s.kl.is_none());
    }
    let GrpoMetric::Step(first) = &records[0] else { unreachable!() };
    assert_eq!(first.lr, 0.0, "warm-up starts at 0");
    Ok(())
}

#[test]
fn kill_and_resume_gives_the_weights_of_an_uninterrupted_run() -> Result<()> {
    let device = test_device();
    // One model, cloned for each run: the seeded global generator is shared with tests running in parallel.
    let start = model(&device);
    let full_dir = tempfile::tempdir()?;
    let full = GrpoTrainer::new(config(full_dir.path(), &[]), start.clone(), data(), device.clone())?.run()?;
    assert_eq!(full.summary.steps, 4);
    assert!(full.summary.finished);

    let dir = tempfile::tempdir()?;
    let killed =
        GrpoTrainer::new(config(dir.path(), &[]), start.clone(), data(), device.clone())?.stop_after_steps(2).run()?;
    assert_eq!(killed.summary.steps, 2);
    assert!(!killed.summary.finished);
    let resumed = GrpoTrainer::resume(dir.path(), start, data(), device.clone())?;
    assert_eq!(resumed.state().step, 2);
    let resumed = resumed.run()?;
    assert_eq!(resumed.summary.steps, 4);
    assert!(resumed.summary.finished);
    let a = values(full.model.ratt.as_ref().expect("ratt"));
    let b = values(resumed.model.ratt.as_ref().expect("ratt"));
    assert!(a == b, "resumed LatentRATT differs from the uninterrupted run");
    // The metrics of the resumed run continue the killed one's: steps 1..4 once each.
    let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl"))?;
    assert_eq!(lines.lines().count(), 4);
    Ok(())
}

#[test]
fn a_nan_stops_the_run_and_keeps_the_last_good_checkpoint() -> Result<()> {
    let device = test_device();
    let dir = tempfile::tempdir()?;
    // A huge learning rate blows LatentRATT up after the first update: step 2's rewards are not finite.
    let cfg = config(dir.path(), &["train.lr=1e30", "train.warmup=0", "train.checkpoint_every=1"]);
    let err = GrpoTrainer::new(cfg, model(&device), data(), device)?.run().expect_err("the run must stop");
    let text = err.to_string();
    eprintln!("{text}");
    match err {
        Error::NonFinite { step, checkpoint, .. } => {
            assert_eq!(step, 2, "{text}");
            assert!(checkpoint.ends_with("step-00000001"), "{text}");
        }
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(dir.path().join("checkpoints/step-00000001/model.bpk").is_file());
    Ok(())
}

/// `num_iterations = 2` reuses each generation for a second optimizer step (ρ ≠ 1 there), and β > 0 reports the
/// KL against the frozen starting LatentRATT (0 before the first update).
#[test]
fn iterations_reuse_the_generation_and_beta_reports_kl() -> Result<()> {
    let device = test_device();
    let dir = tempfile::tempdir()?;
    let cfg = config(
        dir.path(),
        &["grpo.num_iterations=2", "grpo.beta=0.04", "train.max_steps=4", "train.lr=1e-2", "train.warmup=0"],
    );
    let outcome = GrpoTrainer::new(cfg, model(&device), data(), device)?.run()?;
    assert_eq!(outcome.summary.steps, 4);
    let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl"))?;
    let steps: Vec<r3_grpo::GrpoStepInfo> = lines
        .lines()
        .map(serde_json::from_str::<GrpoMetric>)
        .filter_map(|r| match r {
            Ok(GrpoMetric::Step(s)) => Some(Ok(s)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(steps.len(), 4);
    // Steps 1 and 2 share one generation: the same rewards; step 3 draws a new one.
    assert_eq!(steps[0].reward_mean, steps[1].reward_mean);
    assert_ne!(steps[1].reward_mean, steps[2].reward_mean);
    let kl: Vec<f64> = steps.iter().map(|s| s.kl.expect("β > 0 reports the KL")).collect();
    assert!(kl[0].abs() < 1e-6, "KL before any update: {kl:?}");
    assert!(kl[1] > 0.0, "KL after an update: {kl:?}");
    Ok(())
}

/// Resuming an SFT run folder as a GRPO run names what the folder is (it said "unknown key data.category").
#[test]
fn resuming_an_sft_run_as_grpo_says_so() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("config.resolved.toml"), r3_train::SftConfig::default().to_toml()?)?;
    let device = test_device();
    let err = GrpoTrainer::resume(dir.path(), model(&device), data(), device).err().expect("an SFT run is refused");
    assert!(err.to_string().contains("is an SFT run"), "{err}");
    Ok(())
}
