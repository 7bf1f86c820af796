//! Summaries over users for the result files: means and percentile-bootstrap intervals of per-user values, and
//! relative gains with paired-bootstrap intervals.
//!
//! The per-user values and the paired bootstrap are `r3-metrics`' (the official matching, [`PerSample`],
//! [`relative_gains`]); the interval of a plain mean, which `r3-metrics` does not report, resamples users with
//! `r3-data`'s [`SplitMix64`] the same way.

use r3_data::SplitMix64;
use r3_metrics::{BootstrapConfig, Cutoffs, PerSample, relative_gains};

/// The arithmetic mean (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The `p`-th percentile (0–100) of sorted values, interpolating linearly between order statistics (NumPy's
/// default, as `r3-metrics`' bootstrap).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median (the mean of the two middle values for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    percentile(&s, 50.0)
}

/// The 95% percentile interval `[2.5%, 97.5%]` of the mean of `values` over users resampled with replacement;
/// `None` for no users or no resamples.
pub fn mean_ci(boot: &BootstrapConfig, values: &[f64]) -> Option<[f64; 2]> {
    let n = values.len();
    if n == 0 || boot.resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(boot.seed);
    let mut means: Vec<f64> =
        (0..boot.resamples).map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    Some([percentile(&means, 2.5), percentile(&means, 97.5)])
}

/// The 95% paired-bootstrap interval of `mean(ours) − mean(base)`: users resampled with replacement, the same
/// users for both (the draws of [`relative_gains`], so the difference and the gain share their resamples); `None`
/// for no users or no resamples. Both slices hold the same users in the same order.
pub fn diff_ci(boot: &BootstrapConfig, ours: &[f64], base: &[f64]) -> Option<[f64; 2]> {
    let n = ours.len();
    if n == 0 || n != base.len() || boot.resamples == 0 {
        return None;
    }
    let per_user: Vec<f64> = ours.iter().zip(base).map(|(a, b)| a - b).collect();
    mean_ci(boot, &per_user)
}

/// Per-user values of `H@K` (`ndcg = false`) or `N@K` from the targets' ranks.
pub fn user_values(ranks: &[Option<usize>], ndcg: bool, k: usize) -> anyhow::Result<Vec<f64>> {
    let per = PerSample::from_ranks(ranks, &Cutoffs::new(vec![k])?);
    Ok(if ndcg { per.ndcg(0) } else { per.hr(0) }.to_vec())
}

/// The relative gain `mean(ours) / mean(base) − 1` of `H@K` or `N@K` and its paired-bootstrap 95% interval over
/// the same users ([`relative_gains`]); `None`s for a zero baseline mean or no users.
pub fn gain_ci(
    boot: &BootstrapConfig,
    ours: &[Option<usize>],
    base: &[Option<usize>],
    ndcg: bool,
    k: usize,
) -> anyhow::Result<(Option<f64>, Option<[f64; 2]>)> {
    if ours.is_empty() {
        return Ok((None, None));
    }
    let cutoffs = Cutoffs::new(vec![k])?;
    let gains = relative_gains(&PerSample::from_ranks(ours, &cutoffs), &PerSample::from_ranks(base, &cutoffs), boot)?;
    // HR@K, then NDCG@K.
    let g = &gains[usize::from(ndcg)];
    Ok((g.gain, g.ci95))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_shrinks_with_users() {
        let b = BootstrapConfig::default();
        // 20% hits among 50 users, then among 5,000 users.
        let small: Vec<f64> = (0..50).map(|i| f64::from(u8::from(i % 5 == 0))).collect();
        let large: Vec<f64> = (0..5000).map(|i| f64::from(u8::from(i % 5 == 0))).collect();
        let [lo, hi] = mean_ci(&b, &small).unwrap();
        assert!(lo < 0.2 && 0.2 < hi, "[{lo}, {hi}]");
        // The binomial standard error is 0.057 for n = 50: the 95% interval is about ±0.11.
        assert!((hi - lo) > 0.15 && (hi - lo) < 0.30, "width {}", hi - lo);
        let [lo2, hi2] = mean_ci(&b, &large).unwrap();
        assert!(lo2 < 0.2 && 0.2 < hi2 && (hi2 - lo2) < 0.03, "[{lo2}, {hi2}]");
        // Seeded: the same interval twice.
        assert_eq!(mean_ci(&b, &small), Some([lo, hi]));
        // All equal values: a zero-width interval.
        assert_eq!(mean_ci(&b, &[1.0; 10]), Some([1.0, 1.0]));
        assert_eq!(mean_ci(&b, &[]), None);
    }

    #[test]
    fn paired_gain_is_the_ratio_of_means_with_the_same_resamples_as_a_plain_loop() {
        let b = BootstrapConfig::default();
        // Base hits at rank 0 for every 4th user; ours also for every 8th other user: 100 + 50 hits of 400.
        let base: Vec<Option<usize>> = (0..400).map(|i| (i % 4 == 0).then_some(0)).collect();
        let ours: Vec<Option<usize>> = (0..400).map(|i| (i % 4 == 0 || i % 8 == 1).then_some(0)).collect();
        let (gain, ci) = gain_ci(&b, &ours, &base, false, 10).unwrap();
        assert!((gain.unwrap() - 0.5).abs() < 1e-12);
        let [lo, hi] = ci.unwrap();
        assert!(lo > 0.0 && lo < 0.5 && 0.5 < hi, "[{lo}, {hi}]");
        // The interval equals a hand-written paired bootstrap over the same SplitMix64 draws.
        let (a, c) = (user_values(&ours, false, 10).unwrap(), user_values(&base, false, 10).unwrap());
        let mut rng = SplitMix64::new(b.seed);
        let mut gains: Vec<f64> = (0..b.resamples)
            .map(|_| {
                let (mut sa, mut sb) = (0.0, 0.0);
                for _ in 0..400 {
                    let i = rng.below(400);
                    sa += a[i];
                    sb += c[i];
                }
                sa / sb - 1.0
            })
            .collect();
        gains.sort_by(f64::total_cmp);
        assert_eq!([percentile(&gains, 2.5), percentile(&gains, 97.5)], [lo, hi]);
        assert_eq!(gain_ci(&b, &ours, &vec![None; 400], true, 10).unwrap().0, None);
        assert!(gain_ci(&b, &ours, &base[..10], false, 10).is_err());
    }

    #[test]
    fn percentile_interpolates() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 100.0), 4.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(user_values(&[Some(0), Some(2), None], true, 5).unwrap()[1], 0.5);
    }
}
