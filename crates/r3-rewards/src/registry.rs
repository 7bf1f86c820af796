//! [`Registry`]: reward names → constructors, so configs select rewards by name and downstream crates add their
//! own.

use std::collections::BTreeMap;
use std::fmt;

use crate::builtin::{ExactMatch, LogLikelihood, NegPpl, Rank};
use crate::combined::Combined;
use crate::config::{Params, RewardSpec};
use crate::error::{Error, Result};
use crate::reward::Reward;

/// A reward constructor: builds the reward from its spec's `params` (rejecting unknown keys).
pub type Constructor = Box<dyn Fn(&Params<'_>) -> Result<Box<dyn Reward>> + Send + Sync>;

/// The rewards a config may name. [`Registry::default`] knows the built-ins (`neg_ppl`, `exact_match`,
/// `log_likelihood`, `rank`); a downstream crate adds its own with [`Registry::register`] before the trainer
/// builds the config's `rewards` list with [`Registry::build`].
pub struct Registry {
    constructors: BTreeMap<String, Constructor>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("names", &self.names()).finish()
    }
}

impl Registry {
    /// A registry without any reward.
    pub fn empty() -> Self {
        Self { constructors: BTreeMap::new() }
    }

    /// A registry with the built-in rewards.
    pub fn with_builtins() -> Self {
        let builtins: [(&str, Constructor); 4] = [
            (NegPpl::NAME, Box::new(|p| Ok(Box::new(NegPpl::from_params(p)?)))),
            (ExactMatch::NAME, Box::new(|p| Ok(Box::new(ExactMatch::from_params(p)?)))),
            (LogLikelihood::NAME, Box::new(|p| Ok(Box::new(LogLikelihood::from_params(p)?)))),
            (Rank::NAME, Box::new(|p| Ok(Box::new(Rank::from_params(p)?)))),
        ];
        Self { constructors: builtins.into_iter().map(|(name, c)| (name.to_owned(), c)).collect() }
    }

    /// Registers `constructor` under `name` (lowercase ASCII letters, digits and `_`); [`Error::InvalidName`]
    /// or [`Error::DuplicateReward`] otherwise.
    pub fn register<F>(&mut self, name: &str, constructor: F) -> Result<()>
    where
        F: Fn(&Params<'_>) -> Result<Box<dyn Reward>> + Send + Sync + 'static,
    {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(Error::InvalidName { name: name.to_owned() });
        }
        if self.constructors.contains_key(name) {
            return Err(Error::DuplicateReward { name: name.to_owned() });
        }
        self.constructors.insert(name.to_owned(), Box::new(constructor));
        Ok(())
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.constructors.keys().map(String::as_str).collect()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.constructors.contains_key(name)
    }

    /// Builds one reward from `spec` (its weight is ignored here); errors use the key `key` (`rewards[1]`):
    /// [`Error::UnknownReward`] lists the known names, [`Error::Params`] names `{key}.params`.
    pub fn build_one(&self, spec: &RewardSpec, key: &str) -> Result<Box<dyn Reward>> {
        let constructor = self.constructors.get(&spec.name).ok_or_else(|| Error::UnknownReward {
            key: format!("{key}.name"),
            name: spec.name.clone(),
            known: self.names().join(", "),
        })?;
        let params_key = format!("{key}.params");
        constructor(&Params::new(&params_key, &spec.name, &spec.params))
    }

    /// Builds a config's `rewards` list into their weighted sum; errors name the key `rewards[j]` of the first
    /// bad entry ([`Error::NoRewards`] for an empty list).
    pub fn build(&self, specs: &[RewardSpec]) -> Result<Combined> {
        let parts = specs
            .iter()
            .enumerate()
            .map(|(j, spec)| Ok((spec.weight, self.build_one(spec, &format!("rewards[{j}]"))?)))
            .collect::<Result<Vec<_>>>()?;
        Combined::new(parts)
    }
}
