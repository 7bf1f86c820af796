//! Advantages from rewards (docs/method.md §4 stage 2, step 3; arXiv 2505.19092 Eq. (7)).
//!
//! Rewards come in pool order: group `g`'s `K` samples are entries `g·K .. g·K + K`, sample 0 of each group is
//! the un-noised latent.

use serde::{Deserialize, Serialize};

/// How rewards become advantages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageMode {
    /// LR-GRPO's batch-level advantage `A_k = (s_k − s̄) / (‖s − s̄‖₂ + 1e-6)`: `s̄` is the mean of the un-noised
    /// rewards (sample 0) of the pool's groups and the norm runs over every sample of the pool.
    ///
    /// NOTE: \[CODE\] the pool is the set of groups gathered across the authors' 2 GPUs in one micro-step; here
    /// its size is `grpo.advantage_groups`.
    Batch,
    /// The original GRPO's group-normalised advantage `(s − mean_g) / (std_g + 1e-4)` with the unbiased standard
    /// deviation (torch's `std`, as TRL computes it); also the "w/o batch advantage" ablation.
    Group,
    /// The raw rewards.
    None,
}

/// The advantages of a pool of rewards (`rewards.len()` a multiple of `group_size`).
///
/// # Panics
/// When `rewards` is empty or not a whole number of groups.
pub fn advantages(rewards: &[f64], group_size: usize, mode: AdvantageMode) -> Vec<f64> {
    assert!(
        group_size > 0 && !rewards.is_empty() && rewards.len().is_multiple_of(group_size),
        "{} rewards are not whole groups of {group_size}",
        rewards.len()
    );
    match mode {
        AdvantageMode::None => rewards.to_vec(),
        AdvantageMode::Batch => {
            let firsts: Vec<f64> = rewards.iter().step_by(group_size).copied().collect();
            let baseline = firsts.iter().sum::<f64>() / firsts.len() as f64;
            let centred: Vec<f64> = rewards.iter().map(|s| s - baseline).collect();
            let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt();
            centred.iter().map(|x| x / (norm + 1e-6)).collect()
        }
        AdvantageMode::Group => rewards
            .chunks(group_size)
            .flat_map(|g| {
                let mean = g.iter().sum::<f64>() / g.len() as f64;
                let var = g.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (g.len() as f64 - 1.0).max(1.0);
                let std = var.sqrt();
                g.iter().map(move |s| (s - mean) / (std + 1e-4)).collect::<Vec<_>>()
            })
            .collect(),
    }
}

/// The fraction of groups whose rewards are all equal (they carry no signal under group normalisation).
pub fn equal_reward_fraction(rewards: &[f64], group_size: usize) -> f64 {
    let groups: Vec<&[f64]> = rewards.chunks(group_size).collect();
    let equal = groups.iter().filter(|g| g.iter().all(|&s| s == g[0])).count();
    equal as f64 / groups.len().max(1) as f64
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden pool of `latent_golden.json` (2 groups × K = 4).
    const REWARDS: [f64; 8] = [
        -39.563690185546875,
        -47.74674987792969,
        -41.08039855957031,
        -42.51997756958008,
        -83.07525634765625,
        -63.418277740478516,
        -153.44166564941406,
        -79.15821075439453,
    ];

    #[test]
    fn batch_advantages_are_centred_on_the_unnoised_baseline_with_unit_norm() {
        let a = advantages(&REWARDS, 4, AdvantageMode::Batch);
        // Centred on the mean un-noised reward: the two sample-0 advantages cancel.
        assert!((a[0] + a[4]).abs() < 1e-12, "{a:?}");
        let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6, "norm {norm}");
        // The sign follows the reward relative to the baseline (−61.32).
        let baseline = (REWARDS[0] + REWARDS[4]) / 2.0;
        for (s, a) in REWARDS.iter().zip(&a) {
            assert_eq!((s - baseline).signum(), a.signum());
        }
        // Hand-computed: s − s̄ = 21.7458 for sample 0 of group 0, ‖s − s̄‖₂ = 103.406.
        assert!((a[0] - 0.210_291_5).abs() < 1e-6, "{}", a[0]);
        // Invariant under a shift of all rewards and a positive scaling.
        let shifted: Vec<f64> = REWARDS.iter().map(|s| 3.0 * s + 10.0).collect();
        let b = advantages(&shifted, 4, AdvantageMode::Batch);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-7));
    }

    #[test]
    fn group_advantages_are_normalised_per_group() {
        let a = advantages(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], 4, AdvantageMode::Group);
        // Group 0: mean 0.5, unbiased std sqrt(1/3) = 0.57735.
        assert!((a[0] - 0.5 / (0.577_350_27 + 1e-4)).abs() < 1e-6, "{a:?}");
        assert!((a[0..4].iter().sum::<f64>()).abs() < 1e-12);
        // Group 1: all equal → all zero.
        assert!(a[4..].iter().all(|&x| x == 0.0));
        assert_eq!(equal_reward_fraction(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], 4), 0.5);
        assert_eq!(advantages(&[2.0, 3.0], 2, AdvantageMode::None), vec![2.0, 3.0]);
    }
}
