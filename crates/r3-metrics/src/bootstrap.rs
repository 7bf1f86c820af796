//! Relative gain of one prediction set over a baseline on the same samples, with a paired-bootstrap interval.
//!
//! The gain of a metric is `mean(ours) / mean(baseline) − 1` (the paper's "relative improvement"). The interval
//! resamples sample indices with replacement, `B` times, using the *same* indices for both sets (the pairing keeps
//! the per-sample correlation between the two), recomputes the gain on each resample, and takes the 2.5th and
//! 97.5th percentiles (linear interpolation between order statistics, as `numpy.percentile`).
//!
//! A zero baseline mean has no relative gain: the point gain is `None`, and resamples whose baseline mean is zero
//! are left out of the interval ([`Gain::resamples_used`] says how many were kept), so the report never holds a NaN
//! or an infinity.

use r3_data::rng::SplitMix64;

use crate::error::{Error, Result};
use crate::eval::PerSample;

/// How to draw the bootstrap resamples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// The number of resamples B. Default 1000.
    pub resamples: usize,
    /// The seed of the resampling generator ([`r3_data::rng::SplitMix64`]). Default 0.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig { resamples: 1000, seed: 0 }
    }
}

/// The relative gain of one metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gain {
    /// The metric's name, `HR@K` or `NDCG@K`.
    pub metric: String,
    /// The cut-off K.
    pub k: usize,
    /// Our mean.
    pub ours: f64,
    /// The baseline's mean.
    pub baseline: f64,
    /// `ours / baseline − 1`; `None` when the baseline mean is 0.
    pub gain: Option<f64>,
    /// The 95% percentile interval `[2.5%, 97.5%]` of the resampled gains; `None` when no resample had a non-zero
    /// baseline mean.
    pub ci95: Option<[f64; 2]>,
    /// The number of resamples with a non-zero baseline mean (those that enter the interval).
    pub resamples_used: usize,
}

/// The `p`-th percentile (0–100) of sorted values, interpolating linearly between order statistics.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The relative gains of `ours` over `baseline` for HR@K and then NDCG@K at each cut-off, with paired-bootstrap
/// 95% intervals. Both must hold the same samples in the same order and use the same cut-offs.
pub fn relative_gains(ours: &PerSample, baseline: &PerSample, config: &BootstrapConfig) -> Result<Vec<Gain>> {
    if ours.len() != baseline.len() {
        return Err(Error::Mismatch {
            what: "number of baseline samples",
            expected: ours.len(),
            got: baseline.len(),
            hint: "a relative gain compares two prediction sets on the same samples: evaluate both on one split",
        });
    }
    if ours.cutoffs() != baseline.cutoffs() {
        return Err(Error::Setting {
            key: "k",
            message: format!(
                "ours uses cut-offs {:?} and the baseline {:?}: evaluate both with one list",
                ours.cutoffs().as_slice(),
                baseline.cutoffs().as_slice()
            ),
        });
    }
    if config.resamples == 0 {
        return Err(Error::Setting { key: "bootstrap", message: "0 resamples: use at least 1 (default 1000)".into() });
    }
    let n = ours.len();
    if n == 0 {
        return Err(Error::Mismatch {
            what: "number of samples",
            expected: 1,
            got: 0,
            hint: "there is nothing to compare",
        });
    }
    let ks = ours.cutoffs().as_slice();
    // Column m: HR at cut-off m for m < |K|, then NDCG at cut-off m − |K|.
    let cols = |s: &PerSample| -> Vec<Vec<f64>> {
        (0..ks.len()).map(|c| s.hr(c).to_vec()).chain((0..ks.len()).map(|c| s.ndcg(c).to_vec())).collect()
    };
    let (a, b) = (cols(ours), cols(baseline));
    let m = a.len();
    // Row-major copy, one row per sample holding our m values then the baseline's m values, so that each draw
    // reads one contiguous row.
    let width = 2 * m;
    let mut rows = vec![0.0; n * width];
    for (i, row) in rows.chunks_exact_mut(width).enumerate() {
        for c in 0..m {
            row[c] = a[c][i];
            row[m + c] = b[c][i];
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(config.resamples); m];
    let mut rng = SplitMix64::new(config.seed);
    let mut sums = vec![0.0; width];
    for _ in 0..config.resamples {
        sums.fill(0.0);
        for _ in 0..n {
            let i = rng.below(n);
            for (s, x) in sums.iter_mut().zip(&rows[i * width..(i + 1) * width]) {
                *s += x;
            }
        }
        // Both sums are over the same n resampled samples, so the ratio of sums is the ratio of means.
        for c in 0..m {
            if sums[m + c] > 0.0 {
                samples[c].push(sums[c] / sums[m + c] - 1.0);
            }
        }
    }
    let (ma, mb) = (ours.mean(), baseline.mean());
    let mut out = Vec::with_capacity(m);
    for (c, mut g) in samples.into_iter().enumerate() {
        let (name, k, x, y) = if c < ks.len() {
            ("HR", ks[c], ma.hr[c], mb.hr[c])
        } else {
            ("NDCG", ks[c - ks.len()], ma.ndcg[c - ks.len()], mb.ndcg[c - ks.len()])
        };
        g.sort_by(f64::total_cmp);
        out.push(Gain {
            metric: format!("{name}@{k}"),
            k,
            ours: x,
            baseline: y,
            gain: (y > 0.0).then(|| x / y - 1.0),
            ci95: (!g.is_empty()).then(|| [percentile(&g, 2.5), percentile(&g, 97.5)]),
            resamples_used: g.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Cutoffs;

    fn per_sample(ranks: &[Option<usize>]) -> PerSample {
        PerSample::from_ranks(ranks, &Cutoffs::default())
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 25) = 1 + 0.75 · (2 − 1) = 1.75 (position 0.25 · 3 = 0.75).
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 25.0), 1.75);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
        assert_eq!(percentile(&[5.0], 2.5), 5.0);
    }

    #[test]
    fn identical_sets_gain_zero_with_a_zero_interval() {
        // Every resample has the same sums on both sides, so every resampled gain is exactly 0.
        let ranks: Vec<_> = (0..50).map(|i| (i % 3 == 0).then_some(i % 7)).collect();
        let s = per_sample(&ranks);
        let gains = relative_gains(&s, &s, &BootstrapConfig::default()).unwrap();
        assert_eq!(gains.len(), 10);
        for g in &gains {
            assert_eq!(g.gain, Some(0.0), "{g:?}");
            assert_eq!(g.ci95, Some([0.0, 0.0]), "{g:?}");
            // HR@1 has only 3 hits in 50 samples (i = 0, 21, 42), so a few resamples draw none of them and are
            // left out; every other metric keeps all 1000.
            assert!(g.resamples_used > 900, "{g:?}");
        }
        assert_eq!(gains[0].metric, "HR@1");
        assert_eq!(gains[5].metric, "NDCG@1");
    }

    #[test]
    fn twice_as_many_hits_gain_one_inside_the_interval() {
        // 40 samples. Baseline: samples 0..10 hit at rank 0 → HR@1 = 10/40 = 0.25. Ours: samples 0..20 hit at
        // rank 0 → HR@1 = 20/40 = 0.5. Gain = 0.5 / 0.25 − 1 = 1.0 (NDCG@1 alike: 1/log2(2) = 1 per hit).
        let base: Vec<_> = (0..40).map(|i| (i < 10).then_some(0)).collect();
        let ours: Vec<_> = (0..40).map(|i| (i < 20).then_some(0)).collect();
        let gains = relative_gains(&per_sample(&ours), &per_sample(&base), &BootstrapConfig::default()).unwrap();
        for g in &gains {
            assert_eq!(g.gain, Some(1.0), "{g:?}");
            let [lo, hi] = g.ci95.unwrap();
            assert!(lo < 1.0 && 1.0 < hi, "{g:?}");
            // Ours hits on a superset of the baseline's samples, so no resample can have a gain below 0.
            assert!(lo >= 0.0, "{g:?}");
        }
    }

    #[test]
    fn the_seed_fixes_the_interval() {
        let base: Vec<_> = (0..60).map(|i| (i % 4 == 0).then_some(i % 5)).collect();
        let ours: Vec<_> = (0..60).map(|i| (i % 3 == 0).then_some(i % 4)).collect();
        let (o, b) = (per_sample(&ours), per_sample(&base));
        let run = |seed| relative_gains(&o, &b, &BootstrapConfig { resamples: 200, seed }).unwrap();
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_zero_baseline_gives_no_gain() {
        // The baseline never hits: its means are 0, so no gain and no interval, and nothing is NaN.
        let base = vec![None; 10];
        let ours: Vec<_> = (0..10).map(|i| (i < 5).then_some(0)).collect();
        let gains = relative_gains(&per_sample(&ours), &per_sample(&base), &BootstrapConfig::default()).unwrap();
        for g in &gains {
            assert_eq!((g.gain, g.ci95, g.resamples_used), (None, None, 0), "{g:?}");
        }
        let json = serde_json::to_string(&gains).unwrap();
        assert!(!json.contains("NaN") && json.contains("\"gain\":null"), "{json}");
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        let a = per_sample(&[Some(0), None]);
        let b = per_sample(&[Some(0)]);
        assert!(matches!(relative_gains(&a, &b, &BootstrapConfig::default()), Err(Error::Mismatch { .. })));
        let zero = BootstrapConfig { resamples: 0, seed: 0 };
        assert!(matches!(relative_gains(&a, &a, &zero), Err(Error::Setting { key: "bootstrap", .. })));
    }
}
