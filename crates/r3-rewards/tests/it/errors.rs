//! Errors instead of panics: missing decoded candidates, non-finite rewards, empty targets, wrong score counts.

use r3_rewards::{Decoded, Error, ExactMatch, NegPpl, Rank, Registry, Reward, RewardInput, RewardSpec, Sample};

use crate::ln;

#[test]
fn missing_candidates_name_the_reward_and_sample() {
    let lp = [ln(0.5)];
    let beams = ["\"A\"\n".to_string()];
    let samples = [Sample::new(&lp).with_decoded(Decoded::from_titles(&beams, "A")), Sample::new(&lp)];
    let input = RewardInput::new(&samples);
    for (reward, name) in [(&Rank as &dyn Reward, "rank"), (&ExactMatch, "exact_match")] {
        // Through `evaluate` (checked before scoring) and through `score` directly: an error, never a panic.
        for err in [reward.evaluate(&input).unwrap_err(), reward.score(&input).unwrap_err()] {
            assert!(matches!(err, Error::MissingDecoding { ref reward, sample: 1 } if reward == name), "{err}");
            assert!(err.to_string().contains("needs_decoding"), "the message says how to fix it: {err}");
        }
    }
    // In a combination the part that needs the candidates is named.
    let combined = Registry::default().build(&[RewardSpec::new("neg_ppl", 1.0), RewardSpec::new("rank", 1.0)]).unwrap();
    let err = combined.evaluate(&input).unwrap_err();
    assert!(matches!(err, Error::MissingDecoding { ref reward, sample: 1 } if reward == "rank"), "{err}");
    // neg_ppl needs no candidates.
    assert!(NegPpl.evaluate(&input).is_ok());
}

#[test]
fn unmatchable_candidates_are_an_error() {
    let lp = [ln(0.5)];
    let beams = ["\"A\"\n".to_string(), "\"B\"\n".to_string()];
    let ids = [vec![1u32]];
    let target_ids = [1u32];
    // Titles without a target title, and no ids: nothing to compare.
    let no_target = Decoded { titles: Some(&beams), ..Decoded::default() };
    // Titles and ids of different lengths.
    let uneven = Decoded { ids: Some(&ids), target_ids: Some(&target_ids), ..Decoded::from_titles(&beams, "A") };
    for decoded in [no_target, uneven] {
        let samples = [Sample::new(&lp).with_decoded(decoded)];
        let err = Rank.evaluate(&RewardInput::new(&samples)).unwrap_err();
        assert!(matches!(err, Error::CannotMatch { sample: 0, .. }), "{err}");
        assert!(err.to_string().contains("Decoded::from_titles"), "{err}");
    }
}

#[test]
fn non_finite_rewards_name_the_reward_and_sample() {
    let good = [ln(0.5)];
    // A −inf log-prob (a target token the model gives probability 0): PPL = ∞, neg_ppl = −∞.
    let inf = [ln(0.5), f32::NEG_INFINITY];
    let nan = [f32::NAN];
    let samples = [Sample::new(&good), Sample::new(&inf), Sample::new(&nan)];
    let input = RewardInput::new(&samples);
    let err = NegPpl.evaluate(&input).unwrap_err();
    let Error::NonFinite { ref reward, sample, value, .. } = err else { panic!("{err}") };
    assert_eq!((reward.as_str(), sample, value), ("neg_ppl", 1, f64::NEG_INFINITY));
    let msg = err.to_string();
    assert!(msg.contains("neg_ppl") && msg.contains("sample 1"), "{msg}");
    // NaN is caught too.
    let samples = [Sample::new(&good), Sample::new(&nan)];
    let err = NegPpl.evaluate(&RewardInput::new(&samples)).unwrap_err();
    assert!(matches!(err, Error::NonFinite { sample: 1, value, .. } if value.is_nan()), "{err}");
    // Inside a combination, the failing part is named, not the sum.
    let combined =
        Registry::default().build(&[RewardSpec::new("log_likelihood", 1.0), RewardSpec::new("neg_ppl", 1.0)]).unwrap();
    let err = combined.evaluate(&input).unwrap_err();
    assert!(matches!(err, Error::NonFinite { ref reward, sample: 1, .. } if reward == "log_likelihood"), "{err}");
    // A finite mean that overflows exp: mean log-prob −800 → PPL = e^800 > f64::MAX → −∞.
    let huge = [-800.0f32];
    let err = NegPpl.evaluate(&RewardInput::new(&[Sample::new(&huge)])).unwrap_err();
    assert!(matches!(err, Error::NonFinite { sample: 0, .. }), "{err}");
}

#[test]
fn empty_target_is_an_error() {
    let good = [ln(0.5)];
    let samples = [Sample::new(&good), Sample::new(&[])];
    for name in ["neg_ppl", "log_likelihood"] {
        let reward = Registry::default().build(&[RewardSpec::new(name, 1.0)]).unwrap();
        let err = reward.evaluate(&RewardInput::new(&samples)).unwrap_err();
        assert!(matches!(err, Error::EmptyTarget { ref reward, sample: 1 } if reward == name), "{err}");
    }
}

/// A broken downstream reward: one score too few, or a non-finite score.
#[derive(Debug)]
struct Broken {
    short: bool,
}

impl Reward for Broken {
    fn name(&self) -> &str {
        "broken"
    }

    fn score(&self, input: &RewardInput<'_>) -> r3_rewards::Result<Vec<f64>> {
        if self.short { Ok(vec![0.0; input.len() - 1]) } else { Ok(vec![0.0, f64::INFINITY]) }
    }
}

#[test]
fn evaluate_checks_what_score_returns() {
    let lp = [ln(0.5)];
    let samples = [Sample::new(&lp), Sample::new(&lp)];
    let input = RewardInput::new(&samples);
    let err = Broken { short: true }.evaluate(&input).unwrap_err();
    assert!(matches!(err, Error::Count { expected: 2, got: 1, .. }), "{err}");
    let err = Broken { short: false }.evaluate(&input).unwrap_err();
    assert!(matches!(err, Error::NonFinite { ref reward, sample: 1, .. } if reward == "broken"), "{err}");
}
