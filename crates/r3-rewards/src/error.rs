//! The error type of `r3-rewards`.
//!
//! Configuration errors name the config key (`rewards[1].name`, `rewards[0].params`); the trainer that reads the
//! experiment file adds the file path. Scoring errors name the reward and the 0-based sample of the batch. Every
//! variant says how to fix the problem.

/// Everything that can go wrong while building rewards from a config or scoring a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config names a reward the registry does not know.
    #[error(
        "`{key}`: unknown reward `{name}`; known rewards: {known}; fix the name, or register the reward with \
         `Registry::register` before building the config"
    )]
    UnknownReward {
        /// The config key (`rewards[1].name`).
        key: String,
        /// The unknown name.
        name: String,
        /// The registered names, sorted and comma-separated.
        known: String,
    },
    /// A reward is registered twice under one name.
    #[error("reward `{name}` is already registered; pick another name for the new reward")]
    DuplicateReward {
        /// The name.
        name: String,
    },
    /// A registration with an empty name or a name with characters other than `[a-z0-9_]`.
    #[error("`{name}` is not a valid reward name; use lowercase ASCII letters, digits and `_` (for example `neg_ppl`)")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// A reward's `params` table does not fit the reward (an unknown key, a wrong type, a bad value).
    #[error("`{key}` of reward `{reward}`: {message}; {hint}")]
    Params {
        /// The config key (`rewards[0].params`; just `params` when the reward was built outside a config list).
        key: String,
        /// The reward.
        reward: String,
        /// What is wrong (the deserializer's message).
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A weight that is NaN or infinite.
    #[error("`{key}`: the weight {weight} of reward `{reward}` is not finite; give a finite number such as 1.0")]
    InvalidWeight {
        /// The config key (`rewards[2].weight`).
        key: String,
        /// The reward.
        reward: String,
        /// The weight.
        weight: f64,
    },
    /// A config with an empty `rewards` list.
    #[error("no reward configured; add one, for example `rewards = [{{ name = \"neg_ppl\", weight = 1.0 }}]`")]
    NoRewards,
    /// A sample with no target log-prob (|y| = 0), for which a perplexity is undefined.
    #[error(
        "reward `{reward}`, sample {sample}: no target log-prob (|y| = 0); every sample needs the log-prob of every \
         target token including EOS (a trainer bug: check the target mask)"
    )]
    EmptyTarget {
        /// The reward.
        reward: String,
        /// The 0-based sample.
        sample: usize,
    },
    /// A reward that needs decoded candidates got a sample without them.
    #[error(
        "reward `{reward}`, sample {sample}: needs the decoded candidates, but the sample has none; the trainer must \
         decode when `Reward::needs_decoding` is true (or remove `{reward}` from the config's `rewards`)"
    )]
    MissingDecoding {
        /// The reward.
        reward: String,
        /// The 0-based sample.
        sample: usize,
    },
    /// Decoded candidates that cannot be compared with the target (no titles + target title, no ids + target ids),
    /// or whose title and id lists disagree in length.
    #[error("reward `{reward}`, sample {sample}: cannot match the candidates with the target: {message}; {hint}")]
    CannotMatch {
        /// The reward.
        reward: String,
        /// The 0-based sample.
        sample: usize,
        /// What is missing or inconsistent.
        message: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// A reward value that is NaN or infinite; the trainer stops the run on it.
    #[error("reward `{reward}`, sample {sample}: non-finite reward {value}; {hint}")]
    NonFinite {
        /// The reward.
        reward: String,
        /// The 0-based sample.
        sample: usize,
        /// The value.
        value: f64,
        /// How to fix it.
        hint: &'static str,
    },
    /// A reward returned a different number of scores than the batch has samples.
    #[error(
        "reward `{reward}`: returned {got} scores for {expected} samples; `Reward::score` must return exactly one \
         scalar per sample, in sample order"
    )]
    Count {
        /// The reward.
        reward: String,
        /// The number of samples.
        expected: usize,
        /// The number of scores.
        got: usize,
    },
    /// An error raised by a reward defined outside this crate.
    #[error("reward `{reward}`{}: {message}", fmt_sample(*.sample))]
    Custom {
        /// The reward.
        reward: String,
        /// The 0-based sample, when the error concerns one.
        sample: Option<usize>,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn fmt_sample(sample: Option<usize>) -> String {
    sample.map_or_else(String::new, |s| format!(", sample {s}"))
}

/// The result type of `r3-rewards`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
