//! A small seeded random generator shared by the crates that draw: bootstrap resampling (`r3-metrics`) and token
//! sampling (`r3-decode`).
//!
//! [`SplitMix64`] is the splitmix64 generator of Steele, Lea and Flood ("Fast splittable pseudorandom number
//! generators", OOPSLA 2014), in the form of Vigna's reference C implementation: a Weyl sequence of step
//! `0x9E3779B97F4A7C15` passed through a 64-bit finaliser. It is small, fast, free of dependencies and well mixed
//! for these uses (not for cryptography). Its outputs are part of our results (bootstrap intervals, sampled
//! rollouts), so they must not change.
//!
//! ```
//! use r3_data::rng::SplitMix64;
//! let mut r = SplitMix64::new(0);
//! assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
//! assert!((0.0..1.0).contains(&r.next_f64()));
//! assert!(r.below(10) < 10);
//! ```

/// The splitmix64 generator: the state is a `u64` advanced by a fixed odd step before each output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The generator seeded with `seed` (the state itself: the first output mixes `seed + 0x9E3779B97F4A7C15`).
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

    /// A uniform number in `[0, 1)`: the top 53 bits of [`SplitMix64::next_u64`] divided by 2^53.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform index in `0..n` (`n > 0`) by the multiply-shift map `(x · n) >> 64` of one output (bias below
    /// n / 2^64, negligible here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// An index drawn with probability proportional to `weights` (non-negative, not all zero), from one
    /// [`SplitMix64::next_f64`]: the first `i` with `u < w_0 + … + w_i` for `u` uniform in `[0, Σ w)`. When rounding
    /// leaves `u` past the end, the last index with a non-zero weight.
    ///
    /// # Panics
    /// When `weights` is empty.
    pub fn pick_weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut u = self.next_f64() * total;
        for (i, &w) in weights.iter().enumerate() {
            if u < w {
                return i;
            }
            u -= w;
        }
        weights.iter().rposition(|&w| w > 0.0).unwrap_or(weights.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_outputs() {
        // The first outputs of Vigna's reference splitmix64.c seeded with 0.
        let mut r = SplitMix64::new(0);
        let want = [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC];
        for w in want {
            assert_eq!(r.next_u64(), w);
        }
    }

    #[test]
    fn next_f64_is_the_top_53_bits() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_f64(), (0xE220_A839_7B1D_CDAFu64 >> 11) as f64 / 9_007_199_254_740_992.0);
        let mut r = SplitMix64::new(42);
        assert!((0..10_000).map(|_| r.next_f64()).all(|x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn below_covers_a_small_range() {
        let mut r = SplitMix64::new(0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            seen[r.below(7)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        // The multiply-shift map of the first output: 0xE220… · 10 >> 64 = 8 (0xE2 / 0x100 · 10 ≈ 8.8).
        assert_eq!(SplitMix64::new(0).below(10), 8);
    }

    #[test]
    fn pick_weighted_follows_the_weights() {
        let mut r = SplitMix64::new(3);
        let mut counts = [0usize; 3];
        for _ in 0..40_000 {
            counts[r.pick_weighted(&[0.0, 1.0, 3.0])] += 1;
        }
        assert_eq!(counts[0], 0);
        let ratio = counts[2] as f64 / counts[1] as f64;
        assert!((ratio - 3.0).abs() < 0.15, "{counts:?}");
        // A single non-zero weight is always drawn.
        assert!((0..100).all(|_| r.pick_weighted(&[0.0, 0.0, 2.5, 0.0]) == 2));
    }
}
