//! How an experiment file selects rewards: a list of [`RewardSpec`]s, each a registered name, a weight and the
//! reward's own params.
//!
//! ```toml
//! rewards = [
//!     { name = "neg_ppl", weight = 1.0 },
//!     { name = "log_likelihood", weight = 0.1, params = { reduction = "sum" } },
//! ]
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::builtin::{ExactMatch, NegPpl};
use crate::error::{Error, Result};

/// One entry of an experiment's `rewards` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSpec {
    /// (str) The registered name of the reward (`neg_ppl`, `exact_match`, `log_likelihood`, `rank`, or one a
    /// downstream crate registered).
    pub name: String,
    /// (float) The weight of the reward in the weighted sum ([`Combined`](crate::Combined)); default 1.0.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// (table) The reward's own settings, checked by its constructor (unknown keys are errors); default empty.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub params: toml::Table,
}

fn default_weight() -> f64 {
    1.0
}

impl RewardSpec {
    /// The reward `name` with `weight` and no params.
    pub fn new(name: impl Into<String>, weight: f64) -> Self {
        Self { name: name.into(), weight, params: toml::Table::new() }
    }

    /// The same spec with `params`.
    pub fn with_params(self, params: toml::Table) -> Self {
        Self { params, ..self }
    }
}

/// The rewards of LR-GRPO: `[{ name = "neg_ppl", weight = 1.0 }]` (\[PAPER\] LatentR³ §3.3; docs/method.md §4).
pub fn lr_grpo_rewards() -> Vec<RewardSpec> {
    vec![RewardSpec::new(NegPpl::NAME, 1.0)]
}

/// The rewards of vanilla GRPO: `[{ name = "exact_match", weight = 1.0 }]` (\[CODE\]; docs/method.md §4, step 5).
pub fn grpo_rewards() -> Vec<RewardSpec> {
    vec![RewardSpec::new(ExactMatch::NAME, 1.0)]
}

/// What a reward constructor receives: the `params` table of its [`RewardSpec`], with the config key and the
/// reward name for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// The config key of the table (`rewards[1].params`).
    pub key: &'a str,
    /// The reward being built.
    pub reward: &'a str,
    /// The table.
    pub table: &'a toml::Table,
}

impl<'a> Params<'a> {
    /// The params `table` of reward `reward`, found at config key `key`.
    pub fn new(key: &'a str, reward: &'a str, table: &'a toml::Table) -> Self {
        Self { key, reward, table }
    }

    /// Deserializes the table into the reward's params struct (give it `#[serde(deny_unknown_fields)]` so a
    /// misspelt key is an error); [`Error::Params`] names the key and the reward.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        self.table.clone().try_into::<T>().map_err(|e| {
            self.error(
                e.message().to_owned(),
                "fix or remove the key; the reward's documentation lists its params".to_owned(),
            )
        })
    }

    /// An [`Error::Params`] about this table, for checks `parse` cannot make (ranges, combinations).
    pub fn error(&self, message: String, hint: String) -> Error {
        Error::Params { key: self.key.to_owned(), reward: self.reward.to_owned(), message, hint }
    }
}
