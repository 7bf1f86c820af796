//! Rewards selected by name from TOML: the built-ins, unknown names, params, custom registrations.

use r3_rewards::{Error, Params, Registry, Reward, RewardInput, RewardSpec, Sample, grpo_rewards, lr_grpo_rewards};
use serde::Deserialize;

use crate::{assert_close, ln};

/// The slice of an experiment file that selects rewards.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Experiment {
    rewards: Vec<RewardSpec>,
}

fn parse(text: &str) -> Experiment {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn builtins_are_registered() {
    assert_eq!(Registry::default().names(), ["exact_match", "log_likelihood", "neg_ppl", "rank"]);
    assert!(Registry::empty().names().is_empty());
    assert!(Registry::default().contains("neg_ppl"));
}

#[test]
fn config_selects_and_weighs_rewards() {
    let exp = parse(
        r#"rewards = [
            { name = "neg_ppl", weight = 2.0 },
            { name = "log_likelihood", weight = 0.5, params = { reduction = "sum" } },
            { name = "log_likelihood" },
        ]"#,
    );
    // The weight defaults to 1.0 and the params to an empty table.
    assert_eq!(exp.rewards[2], RewardSpec::new("log_likelihood", 1.0));
    let reward = Registry::default().build(&exp.rewards).unwrap();
    assert!(!reward.needs_decoding());
    // p = (1/2, 1/8): neg_ppl −4, sum ln(1/16), mean ln(1/4).
    // 2·(−4) + 0.5·ln(1/16) + 1·ln(1/4) = −8 − 1.3862944 − 1.3862944 = −10.7725887.
    let lp = [ln(0.5), ln(0.125)];
    let s = reward.evaluate(&RewardInput::new(&[Sample::new(&lp)])).unwrap();
    assert_close(&s, &[-8.0 + 0.5 * (1.0f64 / 16.0).ln() + 0.25f64.ln()], 1e-5);
}

#[test]
fn specs_round_trip_through_toml() {
    let exp = parse(r#"rewards = [{ name = "log_likelihood", weight = 0.5, params = { reduction = "mean" } }]"#);
    #[derive(serde::Serialize)]
    struct Out<'a> {
        rewards: &'a [RewardSpec],
    }
    let text = toml::to_string(&Out { rewards: &exp.rewards }).unwrap();
    assert_eq!(parse(&text).rewards, exp.rewards, "{text}");
    // Empty params are not written.
    let text = toml::to_string(&Out { rewards: &lr_grpo_rewards() }).unwrap();
    assert!(!text.contains("params"), "{text}");
}

#[test]
fn paper_defaults() {
    assert_eq!(lr_grpo_rewards(), [RewardSpec::new("neg_ppl", 1.0)]);
    assert_eq!(grpo_rewards(), [RewardSpec::new("exact_match", 1.0)]);
    assert!(!Registry::default().build(&lr_grpo_rewards()).unwrap().needs_decoding());
    assert!(Registry::default().build(&grpo_rewards()).unwrap().needs_decoding());
}

#[test]
fn unknown_name_lists_the_known_ones() {
    let exp = parse(r#"rewards = [{ name = "neg_ppl" }, { name = "neg_perplexity", weight = 1.0 }]"#);
    let err = Registry::default().build(&exp.rewards).unwrap_err();
    let msg = err.to_string();
    let Error::UnknownReward { ref key, ref name, .. } = err else { panic!("{msg}") };
    assert_eq!((key.as_str(), name.as_str()), ("rewards[1].name", "neg_perplexity"));
    assert!(msg.contains("known rewards: exact_match, log_likelihood, neg_ppl, rank"), "{msg}");
    assert!(msg.contains("Registry::register"), "the message says how to fix it: {msg}");
}

#[test]
fn unknown_keys_and_bad_params_are_errors() {
    // A misspelt key of the spec itself: serde's deny_unknown_fields.
    let err = toml::from_str::<Experiment>(r#"rewards = [{ name = "neg_ppl", wieght = 1.0 }]"#).unwrap_err();
    assert!(err.to_string().contains("wieght"), "{err}");
    // A param the reward does not take, a bad value, params for a reward without params.
    for (text, key, needle) in [
        (r#"rewards = [{ name = "log_likelihood", params = { reduce = "sum" } }]"#, "rewards[0].params", "reduce"),
        (
            r#"rewards = [{ name = "rank" }, { name = "log_likelihood", params = { reduction = "max" } }]"#,
            "rewards[1].params",
            "max",
        ),
        (r#"rewards = [{ name = "neg_ppl", params = { temperature = 2.0 } }]"#, "rewards[0].params", "temperature"),
    ] {
        let err = Registry::default().build(&parse(text).rewards).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Params { key: ref k, .. } if k == key), "{text}: {msg}");
        assert!(msg.contains(needle), "{text}: {msg}");
    }
    // No rewards at all.
    assert!(matches!(Registry::default().build(&[]).unwrap_err(), Error::NoRewards));
    // A non-finite weight names its key.
    let spec = RewardSpec::new("neg_ppl", f64::NAN);
    let err = Registry::default().build(&[RewardSpec::new("rank", 1.0), spec]).unwrap_err();
    assert!(err.to_string().contains("rewards[1].weight"), "{err}");
}

/// A downstream reward: the length |y| of the target, to check registration and params end to end.
#[derive(Debug)]
struct TargetLength {
    scale: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetLengthParams {
    scale: f64,
}

impl Reward for TargetLength {
    fn name(&self) -> &str {
        "target_length"
    }

    fn score(&self, input: &RewardInput<'_>) -> r3_rewards::Result<Vec<f64>> {
        Ok(input.samples.iter().map(|s| self.scale * s.target_log_probs.len() as f64).collect())
    }
}

fn target_length(p: &Params<'_>) -> r3_rewards::Result<Box<dyn Reward>> {
    let params: TargetLengthParams = p.parse()?;
    Ok(Box::new(TargetLength { scale: params.scale }))
}

#[test]
fn custom_reward_is_registered_and_found() {
    let mut registry = Registry::default();
    registry.register("target_length", target_length).unwrap();
    assert_eq!(registry.names(), ["exact_match", "log_likelihood", "neg_ppl", "rank", "target_length"]);
    let exp = parse(r#"rewards = [{ name = "target_length", weight = 2.0, params = { scale = 0.25 } }]"#);
    let reward = registry.build(&exp.rewards).unwrap();
    // |y| = 3 and 5: 2·0.25·3 = 1.5, 2·0.25·5 = 2.5.
    let (a, b) = ([0.0f32; 3], [0.0f32; 5]);
    let s = reward.evaluate(&RewardInput::new(&[Sample::new(&a), Sample::new(&b)])).unwrap();
    assert_eq!(s, [1.5, 2.5]);
    // Its params are checked by its own deny_unknown_fields struct.
    let err = registry.build(&parse(r#"rewards = [{ name = "target_length" }]"#).rewards).unwrap_err();
    assert!(err.to_string().contains("scale"), "{err}");
    // Now the unknown-name error lists it too.
    let err = registry.build(&[RewardSpec::new("nope", 1.0)]).unwrap_err();
    assert!(err.to_string().contains("rank, target_length"), "{err}");
}

#[test]
fn registration_rejects_duplicates_and_bad_names() {
    let mut registry = Registry::default();
    let err = registry.register("neg_ppl", target_length).unwrap_err();
    assert!(matches!(err, Error::DuplicateReward { ref name } if name == "neg_ppl"));
    for bad in ["", "Neg PPL", "neg-ppl"] {
        assert!(matches!(registry.register(bad, target_length), Err(Error::InvalidName { .. })), "{bad:?}");
    }
    assert_eq!(registry.names().len(), 4);
}
