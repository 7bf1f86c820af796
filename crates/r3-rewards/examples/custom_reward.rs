//! A custom reward, as a downstream crate writes it (`docs/extending.md` shows this file step by step):
//! `hit_at_k`, 1 when the target is among the first `k` decoded candidates, else 0.
//!
//! Run it with `cargo run -p r3-rewards --example custom_reward`. The integration tests compile this file as a
//! module (`tests/it/example.rs`) and check its reward, so the guide cannot drift from code that builds.

use r3_rewards::{Decoded, Params, Registry, Reward, RewardInput, RewardSpec, Sample};
use serde::Deserialize;

/// The params of [`HitAtK`]: `params = { k = 5 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitAtKParams {
    /// (int) How many candidates count; at least 1.
    pub k: usize,
}

/// `hit_at_k`: 1 when the target is among the first `k` decoded candidates, else 0 (HR@k of one sample).
#[derive(Debug)]
pub struct HitAtK {
    k: usize,
}

impl HitAtK {
    /// The config name.
    pub const NAME: &str = "hit_at_k";

    /// Builds the reward from its params; `k = 0` is an error naming the config key.
    pub fn from_params(params: &Params<'_>) -> r3_rewards::Result<Self> {
        let p: HitAtKParams = params.parse()?;
        if p.k == 0 {
            return Err(params.error("k = 0 counts no candidate".into(), "set k to 1 or more".into()));
        }
        Ok(Self { k: p.k })
    }
}

impl Reward for HitAtK {
    fn name(&self) -> &str {
        Self::NAME
    }

    // It reads the beams, so the trainer must decode.
    fn needs_decoding(&self) -> bool {
        true
    }

    fn score(&self, input: &RewardInput<'_>) -> r3_rewards::Result<Vec<f64>> {
        let mut scores = Vec::with_capacity(input.len());
        for (i, sample) in input.samples.iter().enumerate() {
            // An error (not a panic) when the trainer did not decode this sample.
            let rank = sample.decoded_for(Self::NAME, i)?.rank(Self::NAME, i)?;
            scores.push(if rank.is_some_and(|r| r < self.k) { 1.0 } else { 0.0 });
        }
        Ok(scores)
    }
}

/// Adds the crate's rewards to `registry`: the one call a binary makes before building a config.
pub fn register(registry: &mut Registry) -> r3_rewards::Result<()> {
    registry.register(HitAtK::NAME, |p| Ok(Box::new(HitAtK::from_params(p)?)))
}

/// The keys of an experiment file that select rewards (the GRPO trainer's config holds this list).
pub const EXPERIMENT: &str = r#"
rewards = [
    { name = "neg_ppl", weight = 1.0 },
    { name = "hit_at_k", weight = 0.5, params = { k = 1 } },
]
"#;

/// The part of an experiment file this example reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The rewards and their weights.
    pub rewards: Vec<RewardSpec>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::default();
    register(&mut registry)?;
    let experiment: Experiment = toml::from_str(EXPERIMENT)?;
    let reward = registry.build(&experiment.rewards)?;

    // One sample whose target (PPL 2) is the best beam: 1·(−2) + 0.5·1 = −1.5.
    let beams = ["\"Help!\"\n".to_string(), "\"Revolver\"\n".to_string()];
    let log_probs = [0.5f32.ln(); 3];
    let samples = [Sample::new(&log_probs).with_decoded(Decoded::from_titles(&beams, "Help!"))];
    let scores = reward.evaluate(&RewardInput::new(&samples))?;
    println!("{}: {scores:?} (decoding needed: {})", reward.name(), reward.needs_decoding());
    Ok(())
}
