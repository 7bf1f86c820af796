//! The custom reward of `examples/custom_reward.rs`, the code `docs/extending.md` walks through, compiled here as
//! a module so that its behaviour is tested, not only its compilation.

#[allow(dead_code)] // Its `main` is for `cargo run --example`.
#[path = "../../examples/custom_reward.rs"]
mod custom_reward;

use custom_reward::{EXPERIMENT, Experiment, HitAtK, register};
use r3_rewards::{Decoded, Error, Registry, Reward, RewardInput, RewardSpec, Sample};

use crate::{assert_close, ln};

#[test]
fn the_guide_reward_registers_builds_and_scores() {
    let mut registry = Registry::default();
    register(&mut registry).unwrap();
    assert!(registry.contains(HitAtK::NAME));
    let experiment: Experiment = toml::from_str(EXPERIMENT).unwrap();
    let reward = registry.build(&experiment.rewards).unwrap();
    assert!(reward.needs_decoding());
    // Sample 0: p = (1/2, 1/2, 1/2) → neg_ppl −2; target "Help!" is beam 0 < k = 1 → hit 1: −2 + 0.5 = −1.5.
    // Sample 1: same log-probs; target "Revolver" is beam 1, not < k = 1 → 0: −2.
    let beams = ["\"Help!\"\n".to_string(), "\"Revolver\"\n".to_string()];
    let lp = [ln(0.5); 3];
    let samples = [
        Sample::new(&lp).with_decoded(Decoded::from_titles(&beams, "Help!")),
        Sample::new(&lp).with_decoded(Decoded::from_titles(&beams, "Revolver")),
    ];
    assert_close(&reward.evaluate(&RewardInput::new(&samples)).unwrap(), &[-1.5, -2.0], 1e-6);
    // Without candidates: an error naming the custom reward, not a panic.
    let err = reward.evaluate(&RewardInput::new(&[Sample::new(&lp)])).unwrap_err();
    assert!(matches!(err, Error::MissingDecoding { ref reward, sample: 0 } if reward == "hit_at_k"), "{err}");
}

#[test]
fn the_guide_reward_checks_its_params() {
    let mut registry = Registry::default();
    register(&mut registry).unwrap();
    let zero: toml::Table = toml::from_str("k = 0").unwrap();
    let err = registry.build(&[RewardSpec::new("hit_at_k", 1.0).with_params(zero)]).unwrap_err();
    assert!(matches!(err, Error::Params { ref key, .. } if key == "rewards[0].params"), "{err}");
    assert!(err.to_string().contains("set k to 1 or more"), "{err}");
    let err = registry.build(&[RewardSpec::new("hit_at_k", 1.0)]).unwrap_err();
    assert!(err.to_string().contains("missing field `k`"), "{err}");
}
