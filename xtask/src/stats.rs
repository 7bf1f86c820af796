//! Per-user metrics from the prediction records of `latentr3 eval`, and percentile-bootstrap intervals over users.
//!
//! The matching copies the official evaluation (PAPER.md §5) as `r3-metrics` implements it (xtask may not depend
//! on the workspace crates): a prediction is stripped with `p.strip(" \n").strip("\"").strip(" ")`, a text target
//! with `output.strip(" \n\"")`, and the rank is the index of the *last* matching prediction. The reproduce driver
//! checks that these means equal the `metrics.json` of the run, so a drift between the two copies fails loudly.

/// SplitMix64, the generator of `r3_data::rng` (the same stream for the same seed).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 uniform random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`), by the multiply-shift map `(x · n) >> 64`.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

fn py_strip<'a>(s: &'a str, chars: &[char]) -> &'a str {
    s.trim_matches(|c| chars.contains(&c))
}

/// A generated title stripped as the official evaluation strips it.
pub fn strip_prediction(p: &str) -> &str {
    py_strip(py_strip(py_strip(p, &[' ', '\n']), &['"']), &[' '])
}

/// A target stripped as the official evaluation strips it: a string with `strip(" \n\"")`, the first element of a
/// list with `strip("\"").strip(" ")`.
pub fn strip_target(output: &serde_json::Value) -> Option<&str> {
    match output {
        serde_json::Value::String(s) => Some(py_strip(s, &[' ', '\n', '"'])),
        serde_json::Value::Array(v) => v.first()?.as_str().map(|s| py_strip(py_strip(s, &['"']), &[' '])),
        _ => None,
    }
}

/// The 0-based rank of the target among the predictions: the last index whose stripped text equals it.
pub fn title_rank<S: AsRef<str>>(predict: &[S], target: &str) -> Option<usize> {
    predict.iter().rposition(|p| strip_prediction(p.as_ref()) == target)
}

/// One user's value of `H@K` (`ndcg = false`: 1 if rank < K) or `N@K` (`1 / log2(rank + 2)` if rank < K).
pub fn user_value(rank: Option<usize>, ndcg: bool, k: usize) -> f64 {
    match rank {
        Some(r) if r < k => {
            if ndcg {
                1.0 / ((r + 2) as f64).log2()
            } else {
                1.0
            }
        }
        _ => 0.0,
    }
}

/// The arithmetic mean (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The `p`-th percentile (0–100) of sorted values, interpolating linearly between order statistics (NumPy's
/// default, and `r3-metrics`').
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

/// How many resamples the intervals use, and the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    /// Resamples B.
    pub resamples: usize,
    /// The seed of [`SplitMix64`].
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 1000, seed: 0 }
    }
}

impl Bootstrap {
    /// The 95% percentile interval `[2.5%, 97.5%]` of the mean of `values` over users resampled with replacement;
    /// `None` for no users.
    pub fn mean_ci(&self, values: &[f64]) -> Option<[f64; 2]> {
        let n = values.len();
        if n == 0 || self.resamples == 0 {
            return None;
        }
        let mut rng = SplitMix64::new(self.seed);
        let mut means: Vec<f64> =
            (0..self.resamples).map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64).collect();
        means.sort_by(f64::total_cmp);
        Some([percentile(&means, 2.5), percentile(&means, 97.5)])
    }

    /// The relative gain `mean(ours) / mean(base) − 1` and its paired-bootstrap 95% interval (the same resampled
    /// users for both; resamples whose baseline mean is 0 are left out). The gain is `None` when the baseline
    /// mean is 0, the interval when no resample is usable or the lengths differ.
    pub fn gain_ci(&self, ours: &[f64], base: &[f64]) -> (Option<f64>, Option<[f64; 2]>) {
        let n = ours.len();
        if n == 0 || n != base.len() {
            return (None, None);
        }
        let (a, b) = (mean(ours), mean(base));
        let gain = (b > 0.0).then(|| a / b - 1.0);
        let mut rng = SplitMix64::new(self.seed);
        let mut gains = Vec::with_capacity(self.resamples);
        for _ in 0..self.resamples {
            let (mut sa, mut sb) = (0.0, 0.0);
            for _ in 0..n {
                let i = rng.below(n);
                sa += ours[i];
                sb += base[i];
            }
            if sb > 0.0 {
                gains.push(sa / sb - 1.0);
            }
        }
        gains.sort_by(f64::total_cmp);
        let ci = (!gains.is_empty()).then(|| [percentile(&gains, 2.5), percentile(&gains, 97.5)]);
        (gain, ci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_stream() {
        // The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn matching_strips_like_the_official_evaluation() {
        let preds = ["\"A\"\n", "\"B\"\n", " \"A\" \n"];
        assert_eq!(title_rank(&preds, "A"), Some(2), "the last match wins");
        assert_eq!(title_rank(&preds, "C"), None);
        assert_eq!(strip_target(&serde_json::json!("\"Help!\"\n")), Some("Help!"));
        assert_eq!(strip_target(&serde_json::json!(["\"Help!\" "])), Some("Help!\""));
        assert_eq!(user_value(Some(0), true, 5), 1.0);
        assert!((user_value(Some(2), true, 5) - 0.5).abs() < 1e-15);
        assert_eq!(user_value(Some(5), false, 5), 0.0);
        assert_eq!(user_value(Some(4), false, 5), 1.0);
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_shrinks_with_users() {
        let b = Bootstrap::default();
        // 20% hits among 50 users, then among 5,000 users.
        let small: Vec<f64> = (0..50).map(|i| f64::from(u8::from(i % 5 == 0))).collect();
        let large: Vec<f64> = (0..5000).map(|i| f64::from(u8::from(i % 5 == 0))).collect();
        let [lo, hi] = b.mean_ci(&small).unwrap();
        assert!(lo < 0.2 && 0.2 < hi, "[{lo}, {hi}]");
        // The binomial standard error is 0.057 for n = 50: the 95% interval is about ±0.11.
        assert!((hi - lo) > 0.15 && (hi - lo) < 0.30, "width {}", hi - lo);
        let [lo2, hi2] = b.mean_ci(&large).unwrap();
        assert!(lo2 < 0.2 && 0.2 < hi2 && (hi2 - lo2) < 0.03, "[{lo2}, {hi2}]");
        // Seeded: the same interval twice.
        assert_eq!(b.mean_ci(&small), Some([lo, hi]));
        // All equal values: a zero-width interval.
        assert_eq!(b.mean_ci(&[1.0; 10]), Some([1.0, 1.0]));
        assert_eq!(b.mean_ci(&[]), None);
    }

    #[test]
    fn paired_gain_is_the_ratio_of_means() {
        let b = Bootstrap::default();
        let base: Vec<f64> = (0..400).map(|i| f64::from(u8::from(i % 4 == 0))).collect();
        // Ours hits every base hit plus every 8th other user: 100 + 38 hits.
        let ours: Vec<f64> = (0..400).map(|i| f64::from(u8::from(i % 4 == 0 || i % 8 == 1))).collect();
        let (gain, ci) = b.gain_ci(&ours, &base);
        let want = mean(&ours) / mean(&base) - 1.0;
        assert!((gain.unwrap() - want).abs() < 1e-12);
        let [lo, hi] = ci.unwrap();
        assert!(lo > 0.0 && lo < want && want < hi, "[{lo}, {hi}] around {want}");
        assert_eq!(b.gain_ci(&ours, &[0.0; 400]).0, None);
        assert_eq!(b.gain_ci(&ours, &base[..10]), (None, None));
    }

    #[test]
    fn percentile_interpolates() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 100.0), 4.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
