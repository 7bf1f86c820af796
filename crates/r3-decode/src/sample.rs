//! Sampling: constrained sampling over the item trie (the rollouts of the "original GRPO" comparison,
//! docs/method.md §4.5) and free generation, greedy or sampled (the chain-of-thought baseline).
//!
//! Sampling follows HF `generate(do_sample=True, temperature=T)` with `prefix_allowed_tokens_fn`: disallowed
//! tokens get −inf, the logits are divided by `T`, and the next token is drawn from the softmax. The random
//! numbers come from our own seeded generator (not torch's), one stream per (seed, row of the start state,
//! sample), so that a row's samples do not depend on the other rows of the batch (give each user a fixed row, or
//! its own seed, to make its draws independent of how users are batched).

use burn::config::Config;
use burn::tensor::activation::softmax;
use r3_backbone::Backbone;
use r3_data::rng::SplitMix64;

use crate::error::Error;
use crate::start::{DecodeStart, advance, host_f32, host_i64, log_probs_at};
use crate::trie::{NodeId, Trie};

/// The random stream of `(seed, user, sample)`: a [`SplitMix64`] whose state mixes the three, so that each sample
/// of each row draws its own numbers.
fn stream(seed: u64, user: usize, sample: usize) -> SplitMix64 {
    let a =
        SplitMix64::new(seed ^ 0x5851_F42D_4C95_7F2D).next_u64() ^ (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    SplitMix64::new(SplitMix64::new(a).next_u64() ^ (sample as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// Configuration of constrained sampling ([`SampleConfig::sample`]).
#[derive(Config, Debug)]
pub struct SampleConfig {
    /// The end-of-sequence token.
    pub eos_id: u32,
    /// The softmax temperature `T > 0`.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Samples per user (GRPO's group size K). `[CODE]` 8.
    #[config(default = 8)]
    pub num_samples: usize,
    /// The most tokens per sample, EOS included. `[CODE]` 128.
    #[config(default = 128)]
    pub max_new_tokens: usize,
    /// The seed of the random streams.
    #[config(default = 0)]
    pub seed: u64,
}

/// One constrained sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The generated tokens, EOS included (a trie path, unless cut at `max_new_tokens`).
    pub tokens: Vec<u32>,
    /// The sum of the full-vocabulary log-probs of the tokens at temperature 1 (unconstrained model).
    pub log_prob: f32,
    /// The trie item the tokens complete, `None` when cut at `max_new_tokens`.
    pub item: Option<usize>,
}

fn check_temperature(t: f64) -> crate::Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::Config { key: "temperature", value: t.to_string(), hint: "use a finite temperature > 0" })
    }
}

/// A row being sampled.
struct Row {
    user: usize,
    sample: usize,
    tokens: Vec<u32>,
    node: NodeId,
    log_prob: f32,
    rng: SplitMix64,
    /// The row in the current cache and logits.
    row: usize,
}

impl SampleConfig {
    /// Draws `num_samples` trie paths per user.
    ///
    /// # Errors
    /// [`Error::Config`] for a temperature that is not a finite positive number, zero samples or zero new
    /// tokens.
    ///
    /// # Panics
    /// When the start state does not fit the model.
    pub fn sample(&self, model: &Backbone, start: DecodeStart, trie: &Trie) -> crate::Result<Vec<Vec<Sample>>> {
        check_temperature(self.temperature)?;
        if self.num_samples == 0 || self.max_new_tokens == 0 {
            return Err(Error::Config {
                key: if self.num_samples == 0 { "num_samples" } else { "max_new_tokens" },
                value: "0".into(),
                hint: "use at least one sample and one new token",
            });
        }
        start.check(model);
        let b = start.batch_size();
        let k = self.num_samples;
        let DecodeStart { cache, logits } = start;
        let mut rows: Vec<Row> = (0..b)
            .flat_map(|u| (0..k).map(move |s| (u, s)))
            .map(|(user, sample)| Row {
                user,
                sample,
                tokens: Vec::new(),
                node: Trie::ROOT,
                log_prob: 0.0,
                rng: stream(self.seed, user, sample),
                row: user, // the first step reads the start logits: one row per user
            })
            .collect();
        let mut out: Vec<Vec<Option<Sample>>> = vec![vec![None; k]; b];
        let eos = [self.eos_id];
        let (mut cache, mut logits) = (Some(cache), logits);
        for step in 0..self.max_new_tokens {
            let allowed = |r: &Row| -> Vec<u32> {
                let a = trie.allowed_at(r.node);
                if a.is_empty() { eos.to_vec() } else { a.to_vec() }
            };
            let lists: Vec<Vec<u32>> = rows.iter().map(allowed).collect();
            let pairs: Vec<(usize, u32)> =
                rows.iter().zip(&lists).flat_map(|(r, a)| a.iter().map(move |&t| (r.row, t))).collect();
            let lps = log_probs_at(logits, &pairs);
            let mut cursor = 0;
            let mut parents = Vec::new();
            let mut tokens = Vec::new();
            let mut kept = Vec::new();
            for (mut r, a) in rows.into_iter().zip(lists) {
                let lp = &lps[cursor..cursor + a.len()];
                cursor += a.len();
                let max = lp.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let w: Vec<f64> = lp.iter().map(|&l| (f64::from(l - max) / self.temperature).exp()).collect();
                let j = r.rng.pick_weighted(&w);
                let t = a[j];
                r.tokens.push(t);
                r.log_prob += lp[j];
                r.node = trie.child(r.node, t).unwrap_or(r.node);
                if t == self.eos_id || step + 1 == self.max_new_tokens {
                    let item = trie.items_at(r.node).first().map(|&i| i as usize);
                    out[r.user][r.sample] = Some(Sample { tokens: r.tokens, log_prob: r.log_prob, item });
                } else {
                    parents.push(r.row);
                    tokens.push(t);
                    r.row = parents.len() - 1;
                    kept.push(r);
                }
            }
            rows = kept;
            if rows.is_empty() {
                break;
            }
            let (c, l) = advance(model, cache.take().expect("the cache is present while rows run"), &parents, &tokens);
            cache = Some(c);
            logits = l;
        }
        Ok(out.into_iter().map(|s| s.into_iter().map(|x| x.expect("every sample finishes")).collect()).collect())
    }
}

/// Configuration of free (unconstrained) generation ([`GenerateConfig::generate`]).
#[derive(Config, Debug)]
pub struct GenerateConfig {
    /// The end-of-sequence token (default `None`: generate exactly `max_new_tokens` tokens).
    pub eos_id: Option<u32>,
    /// The most tokens per user, EOS included.
    #[config(default = 128)]
    pub max_new_tokens: usize,
    /// `None`: greedy (the first argmax); `Some(T)`: sampling from `softmax(logits / T)`.
    #[config(default = "None")]
    pub temperature: Option<f64>,
    /// The seed of the random streams (sampling only).
    #[config(default = 0)]
    pub seed: u64,
}

impl GenerateConfig {
    /// Generates freely for every user; finished users are dropped from the batch.
    ///
    /// # Errors
    /// [`Error::Config`] for a temperature that is not a finite positive number.
    ///
    /// # Panics
    /// When the start state does not fit the model.
    pub fn generate(&self, model: &Backbone, start: DecodeStart) -> crate::Result<Vec<Vec<u32>>> {
        if let Some(t) = self.temperature {
            check_temperature(t)?;
        }
        start.check(model);
        let b = start.batch_size();
        let DecodeStart { cache, logits } = start;
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); b];
        let mut live: Vec<(usize, SplitMix64)> = (0..b).map(|u| (u, stream(self.seed, u, 0))).collect();
        let (mut cache, mut logits) = (Some(cache), logits);
        for step in 0..self.max_new_tokens {
            let [r, v] = logits.dims();
            let picked: Vec<u32> = match self.temperature {
                None => host_i64(logits.argmax(1)).into_iter().map(|t| t as u32).collect(),
                Some(t) => {
                    let probs = host_f32(softmax(logits.cast(burn::tensor::DType::F32) / t, 1)); // [R, V]
                    live.iter_mut()
                        .enumerate()
                        .map(|(i, (_, rng))| {
                            let w: Vec<f64> = probs[i * v..(i + 1) * v].iter().map(|&p| f64::from(p)).collect();
                            rng.pick_weighted(&w) as u32
                        })
                        .collect()
                }
            };
            debug_assert_eq!(picked.len(), r);
            let mut parents = Vec::new();
            let mut tokens = Vec::new();
            let mut kept = Vec::new();
            for (i, ((user, rng), t)) in live.into_iter().zip(picked).enumerate() {
                out[user].push(t);
                if Some(t) != self.eos_id && step + 1 < self.max_new_tokens {
                    parents.push(i);
                    tokens.push(t);
                    kept.push((user, rng));
                }
            }
            live = kept;
            if live.is_empty() {
                break;
            }
            let (c, l) = advance(model, cache.take().expect("the cache is present while rows run"), &parents, &tokens);
            cache = Some(c);
            logits = l;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| stream(7, 1, 2).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(stream(7, 1, 2).next_u64(), stream(7, 2, 1).next_u64());
        assert_ne!(stream(7, 1, 2).next_u64(), stream(8, 1, 2).next_u64());
        // The draws are part of the results (sampled rollouts): pinned to the values of a Python transcription of
        // the derivation above.
        let mut r = stream(7, 1, 2);
        assert_eq!((r.next_u64(), r.next_u64()), (0x3BD0_C083_FE9A_639B, 0xA71B_2DEF_68A1_AAF8));
        assert_eq!(stream(0, 0, 0).next_u64(), 0xDC29_ED94_4871_2D73);
    }
}
