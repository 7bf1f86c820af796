//! A custom reward plugged into a GRPO run through the documented API (`docs/extending.md`: register it in a
//! `Registry`, name it in `grpo.rewards`, `GrpoTrainer::new_with`), and proof that the run used it: the
//! rewards logged in `metrics.jsonl` are exactly the ones it returned, and it was called for every micro-step.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use r3_grpo::{GrpoMetric, GrpoTrainer};
use r3_rewards::{Registry, Reward, RewardInput, RewardSpec};

use crate::common::test_device;
use crate::trainer::{config, data, model};

/// `sample_index`: sample `i` of a pool scores `i mod 4` (whatever the model does), and counts its calls.
#[derive(Debug)]
struct SampleIndex {
    calls: Arc<AtomicUsize>,
}

impl Reward for SampleIndex {
    fn name(&self) -> &str {
        "sample_index"
    }

    fn score(&self, input: &RewardInput<'_>) -> r3_rewards::Result<Vec<f64>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok((0..input.len()).map(|i| (i % 4) as f64).collect())
    }
}

#[test]
fn a_registered_custom_reward_drives_the_run() -> Result<()> {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::default();
    let counter = calls.clone();
    registry.register("sample_index", move |_| Ok(Box::new(SampleIndex { calls: counter.clone() })))?;

    let dir = tempfile::tempdir()?;
    let device = test_device();
    // 8 prompts per step in pools of 2 prompts × K = 4 samples: 4 micro-steps per optimizer step, 2 steps.
    let mut cfg = config(dir.path(), &["train.batch=8", "grpo.advantage_groups=2", "train.max_steps=2"]);
    cfg.grpo.rewards = vec![toml::from_str::<RewardSpec>("name = \"sample_index\"\nweight = 1.0")?];
    // Without the registry the name is unknown: the default registry cannot build this config.
    let unknown = GrpoTrainer::new(cfg.clone(), model(&device), data(), device.clone()).err().expect("unknown reward");
    assert!(unknown.to_string().contains("sample_index"), "{unknown}");

    let dir = tempfile::tempdir()?;
    cfg.run.output_dir = dir.path().display().to_string();
    let outcome = GrpoTrainer::new_with(cfg, model(&device), data(), device, &registry)?.run()?;
    assert_eq!(outcome.summary.steps, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2 * 4, "one call per micro-step (advantage pool)");
    let lines = std::fs::read_to_string(dir.path().join("metrics.jsonl"))?;
    let mut steps = 0;
    for line in lines.lines() {
        if let GrpoMetric::Step(s) = serde_json::from_str::<GrpoMetric>(line)? {
            // The scores 0, 1, 2, 3 of every group of 4: mean 1.5, population std √1.25.
            assert_eq!(s.reward_mean, 1.5, "{s:?}");
            assert!((s.reward_std - 1.25f64.sqrt()).abs() < 1e-12, "{s:?}");
            steps += 1;
        }
    }
    assert_eq!(steps, 2);
    Ok(())
}
