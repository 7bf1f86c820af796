//! Data parallelism of LR-GRPO (`GrpoTrainer::with_parallel`): several peers give the LatentRATT of one device
//! with the same global batch, and the same diagnostics (rewards gathered over the peers).
//!
//! Peers are threads on the one test device (flex), each with its own replica and optimizer, meeting at the host
//! all-reduce: burn 0.22.1's collective `all_reduce` runs on CUDA only and flex declares no collective support
//! (`burn-flex-0.22.1/src/ops/transaction.rs:10-11`; see `r3_train::parallel`). The advantage pool
//! (`grpo.advantage_groups` = 2 prompts × K = 4 samples) is the same in every run: peers receive whole pools.

use anyhow::Result;
use r3_grpo::{GrpoMetric, GrpoStepInfo, GrpoTrainer};
use r3_latent::LatentModel;
use r3_train::parallel::ParallelConfig;

use crate::common::test_device;
use crate::trainer::{config, data, model, values};

/// LatentRATT's and the backbone's parameters after a run, and its steps.
type Steps = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<GrpoStepInfo>);

/// Trains `start` with `settings` on `peers` flex peers (`None`: one device); returns LatentRATT, the backbone and
/// the steps.
fn run(dir: &std::path::Path, start: &LatentModel, settings: &[&str], peers: Option<usize>) -> Result<Steps> {
    let device = test_device();
    let trainer = GrpoTrainer::new(config(dir, settings), start.clone(), data(), device)?;
    let trainer = match peers {
        None => trainer,
        // Every peer on the test device (flex in CI), as threads.
        Some(n) => trainer.with_parallel(&ParallelConfig::local(vec![test_device().inner(); n]))?,
    };
    let out = trainer.run()?;
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
    let steps = lines
        .lines()
        .filter_map(|l| match serde_json::from_str::<GrpoMetric>(l) {
            Ok(GrpoMetric::Step(s)) => Some(Ok(s)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((values(out.model.ratt.as_ref().expect("ratt")), values(&out.model.backbone), steps))
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn compare(name: &str, settings: &[&str], peers: usize) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    // One model, cloned for each run: `model` seeds a generator that tests running in parallel share.
    let start = model(&test_device());
    let (ratt1, backbone1, steps1) = run(&tmp.path().join("one"), &start, settings, None)?;
    let (ratt_n, backbone_n, steps_n) = run(&tmp.path().join("many"), &start, settings, Some(peers))?;
    let moved = max_diff(&values(start.ratt.as_ref().expect("ratt")), &ratt1);
    let diff = max_diff(&ratt1, &ratt_n);
    println!("{name}: LatentRATT max |Δw| = {moved:e}; one device vs {peers} peers max diff = {diff:e}");
    assert!(moved > 1e-4, "{name}: LatentRATT did not move ({moved:e})");
    assert!(diff < 1e-5, "{name}: data-parallel LatentRATT differs from one device by {diff:e}");
    assert!(backbone1 == backbone_n, "{name}: the frozen backbone changed");
    assert_eq!(steps1.len(), steps_n.len());
    for (a, b) in steps1.iter().zip(&steps_n) {
        println!(
            "  step {}: loss {} vs {}, reward {} vs {}, |g| {} vs {}",
            a.step, a.loss, b.loss, a.reward_mean, b.reward_mean, a.grad_norm, b.grad_norm
        );
        // Step 1 starts from the same weights with the same pools and noise: the gathered rewards and diagnostics
        // are the one-device ones exactly (the loss and norm up to summation order). Later steps start from weights
        // that differ by float rounding (≤ 1e-7 here), which the tiny model's huge neg_ppl rewards (≈ −1e12)
        // amplify: a relative tolerance, absolute below 1 (the loss and the KL may be near 0).
        let tol = if a.step == 1 { 1e-12 } else { 1e-5 };
        let close = |x: f64, y: f64, tol: f64| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0);
        assert!(close(a.reward_mean, b.reward_mean, tol), "{name}: {a:?} vs {b:?}");
        assert!(close(a.reward_std, b.reward_std, tol), "{name}: {a:?} vs {b:?}");
        assert!(close(a.advantage_norm, b.advantage_norm, tol), "{name}: {a:?} vs {b:?}");
        assert!(close(a.loss, b.loss, 1e-5), "{name}: {a:?} vs {b:?}");
        assert!(close(a.grad_norm, b.grad_norm, 1e-5), "{name}: {a:?} vs {b:?}");
        assert_eq!(a.kl.is_some(), b.kl.is_some());
        if let (Some(x), Some(y)) = (a.kl, b.kl) {
            assert!(close(x, y, 1e-5), "{name}: kl {x} vs {y}");
        }
    }
    Ok(())
}

/// Two steps of 8 prompts = 4 advantage pools of 2 groups, on 2 peers (2 pools each).
#[test]
fn two_peers_give_the_one_device_update() -> Result<()> {
    compare("lr-grpo 2 peers", &["train.batch=8", "grpo.advantage_groups=2", "train.max_steps=2", "train.warmup=0"], 2)
}

/// 4 pools over 3 peers (an uneven split), two iterations per generation (each peer keeps its own pools'
/// generations) and β > 0 (the frozen reference LatentRATT on every peer).
#[test]
fn three_peers_with_iterations_and_kl_give_the_one_device_update() -> Result<()> {
    compare(
        "lr-grpo 3 peers, 2 iterations, β",
        &[
            "train.batch=8",
            "grpo.advantage_groups=2",
            "train.max_steps=4",
            "train.warmup=0",
            "grpo.num_iterations=2",
            "grpo.beta=0.04",
        ],
        3,
    )
}
