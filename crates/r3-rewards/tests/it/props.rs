//! Property tests of `neg_ppl`: its range, and monotonicity in the mean log-prob.

use proptest::prelude::*;
use r3_rewards::{NegPpl, Reward, RewardInput, Sample, mean_log_prob, neg_ppl};

/// Target log-probs as a model gives them: 1 to 40 tokens, each in [−30, 0].
fn log_probs() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-30.0f32..=0.0, 1..40)
}

proptest! {
    /// neg_ppl ∈ [−∞, 0) (never NaN) for any finite log-probs up to 700 (beyond, exp(−mean) underflows to 0);
    /// for log-probs ≤ 0, the real ones, it is ≤ −1 (PPL ≥ 1).
    #[test]
    fn neg_ppl_range(lp in log_probs(), any in prop::collection::vec(-1e30f32..700.0, 1..20)) {
        let s = neg_ppl(&lp).unwrap();
        prop_assert!(s <= -1.0, "s = {s} for {lp:?}");
        let t = neg_ppl(&any).unwrap();
        prop_assert!(!t.is_nan() && t < 0.0, "s = {t} for {any:?}");
    }

    /// A higher mean log-prob never gives a lower reward, and it equals −exp(−mean) (hence −ln(−s) = mean).
    #[test]
    fn neg_ppl_monotone_in_mean_log_prob(a in log_probs(), b in log_probs()) {
        let (ma, mb) = (mean_log_prob(&a).unwrap(), mean_log_prob(&b).unwrap());
        let (sa, sb) = (neg_ppl(&a).unwrap(), neg_ppl(&b).unwrap());
        if ma <= mb {
            prop_assert!(sa <= sb, "mean {ma} ≤ {mb} but s {sa} > {sb}");
        } else {
            prop_assert!(sa >= sb, "mean {ma} > {mb} but s {sa} < {sb}");
        }
        prop_assert!((-(-sa).ln() - ma).abs() <= 1e-9 * ma.abs().max(1.0));
    }

    /// The reward is the plain function, sample by sample, and does not depend on the other samples.
    #[test]
    fn reward_is_per_sample(a in log_probs(), b in log_probs()) {
        let samples = [Sample::new(&a), Sample::new(&b)];
        let s = NegPpl.evaluate(&RewardInput::new(&samples)).unwrap();
        prop_assert_eq!(s, vec![neg_ppl(&a).unwrap(), neg_ppl(&b).unwrap()]);
        // Raising one token's log-prob of sample 0 can only raise its reward.
        let mut up = a.clone();
        up[0] = (up[0] + 1.0).min(0.0);
        prop_assert!(neg_ppl(&up).unwrap() >= neg_ppl(&a).unwrap());
    }
}
