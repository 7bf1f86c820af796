//! Weighted sums of rewards.

use r3_rewards::{Combined, Decoded, Error, LogLikelihood, NegPpl, Rank, Reduction, Reward, RewardInput, Sample};

use crate::{assert_close, ln};

#[test]
fn weighted_sum_hand_computed() {
    let beams: Vec<String> = ["A", "B"].iter().map(|t| format!("\"{t}\"\n")).collect();
    // Sample 0: p = (1/2, 1/8) → neg_ppl −4, sum log-prob ln(1/16) = −2.7725887; target "B" at rank 1 → 1/2.
    // Sample 1: p = (1/2, 1/2) → neg_ppl −2, sum log-prob ln(1/4) = −1.3862944; target "C" absent → 0.
    let lp0 = [ln(0.5), ln(0.125)];
    let lp1 = [ln(0.5), ln(0.5)];
    let samples = [
        Sample::new(&lp0).with_decoded(Decoded::from_titles(&beams, "B")),
        Sample::new(&lp1).with_decoded(Decoded::from_titles(&beams, "C")),
    ];
    let combined = Combined::new(vec![
        (1.0, Box::new(NegPpl)),
        (0.5, Box::new(Rank)),
        (-0.1, Box::new(LogLikelihood { reduction: Reduction::Sum })),
    ])
    .unwrap();
    // Sample 0: 1·(−4) + 0.5·(1/2) − 0.1·(−2.7725887) = −4 + 0.25 + 0.27725887 = −3.47274113.
    // Sample 1: 1·(−2) + 0.5·0 − 0.1·(−1.3862944) = −2 + 0 + 0.13862944 = −1.86137056.
    let want = [-4.0 + 0.25 - 0.1 * (1.0f64 / 16.0).ln(), -2.0 - 0.1 * 0.25f64.ln()];
    let input = RewardInput::new(&samples);
    assert_close(&combined.evaluate(&input).unwrap(), &want, 1e-6);
    assert_eq!(combined.name(), "1*neg_ppl + 0.5*rank + -0.1*log_likelihood");
    assert!(combined.needs_decoding(), "rank needs the beams");
    assert_eq!(combined.parts().len(), 3);

    // The per-part scores (unweighted) for logging.
    let parts = combined.score_parts(&input).unwrap();
    assert_close(&parts.total, &want, 1e-6);
    assert_eq!(parts.parts[1].0, "rank");
    assert_eq!(parts.parts[1].1, 0.5);
    assert_close(&parts.parts[1].2, &[0.5, 0.0], 0.0);
    assert_close(&parts.parts[0].2, &[-4.0, -2.0], 1e-5);
}

#[test]
fn one_part_with_weight_one_is_the_part_itself() {
    let lp = [ln(0.3), ln(0.9), ln(0.01)];
    let samples = [Sample::new(&lp)];
    let input = RewardInput::new(&samples);
    let combined = Combined::new(vec![(1.0, Box::new(NegPpl))]).unwrap();
    assert_eq!(combined.evaluate(&input).unwrap(), NegPpl.evaluate(&input).unwrap());
    assert!(!combined.needs_decoding());
}

#[test]
fn weights_must_be_finite_and_parts_present() {
    let err = Combined::new(vec![(1.0, Box::new(NegPpl)), (f64::NAN, Box::new(Rank))]).unwrap_err();
    let Error::InvalidWeight { ref key, ref reward, .. } = err else { panic!("{err}") };
    assert_eq!((key.as_str(), reward.as_str()), ("rewards[1].weight", "rank"));
    let err = Combined::new(vec![(f64::INFINITY, Box::new(NegPpl))]).unwrap_err();
    assert!(err.to_string().contains("rewards[0].weight"), "{err}");
    let err = Combined::new(Vec::new()).unwrap_err();
    assert!(matches!(err, Error::NoRewards));
    assert!(err.to_string().contains("name = \"neg_ppl\""), "the hint shows a config line: {err}");
}
