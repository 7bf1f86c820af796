//! LatentR³'s latent reasoning (docs/method.md §3; "Reinforced Latent Reasoning for LLM-based Recommendation",
//! arXiv 2505.19092, §3.2): the LatentRATT layer and the two-pass latent model over an `r3-backbone` decoder.
//!
//! - [`LatentRatt`] ([`LatentRattConfig`]) is the reasoning attention: from the final hidden states `H` of the
//!   prompt it computes the latent `r` (one head over the full width, RoPE base 1000, 3·(d² + d) parameters).
//!   [`LatentRatt::load_safetensors`] / [`LatentRatt::save_safetensors`] read and write it in PyTorch naming.
//! - [`append_thought_rows`] adds the `<|Thought|>` row(s) to a backbone's vocabulary (mean initialisation).
//! - [`LatentModel`] ([`LatentModelConfig`]) is the backbone plus LatentRATT: [`LatentModel::prefix`] runs pass 1
//!   once and returns a [`Prefix`] (the prompt's KV cache, hidden states and latents `[B, N, d]`, expandable for
//!   K noisy samples); [`LatentModel::target_logp`] runs pass 2 over the cache and returns per-token target
//!   log-probabilities; [`LatentModel::sft_loss`] gives the SFT cross-entropy ([`SftLoss`]: mean, sum, token
//!   count); [`LatentModel::decode_start`] runs the latents over the cache for decoding;
//!   [`LatentModel::naive_forward`] is the official code's uncached two full passes, for tests. N = 0 is
//!   BIGRec; a model without LatentRATT is the "w/o LatentRATT" ablation.
//!
//! Batches are [`r3_data::SftBatch`] values: prompts left-padded to `P`, `N` thought columns, targets
//! right-padded to `T`.
//!
//! ```
//! use burn::tensor::Device;
//! use r3_backbone::{Arch, BackboneConfig};
//! use r3_data::SftBatch;
//! use r3_latent::{LatentModelConfig, LatentRattConfig};
//! # fn run(device: &Device) {
//! let backbone = BackboneConfig::new(Arch::Qwen2, 40, 16, 1, 2, 1, 8, 32, 1e4, 1e-6, true, true, 64).init(device);
//! let model = LatentModelConfig::new().with_ratt(Some(LatentRattConfig::new(16))).init(backbone, device);
//! assert_eq!(model.thought_id, 40); // the old vocabulary size
//! // Two rows: prompts [5, 6, 7] and [pad, 8, 9], one thought token, targets [3, 4] and [2, pad].
//! let batch = SftBatch {
//!     rows: 2, prompt_len: 3, prompt_ids: vec![5, 6, 7, 0, 8, 9],
//!     prompt_real: vec![true, true, true, false, true, true],
//!     n_thought: 1, thought_id: 40,
//!     target_len: 2, target_ids: vec![3, 4, 2, 0], target_real: vec![true, true, true, false],
//!     pad_id: 0,
//! };
//! let prefix = model.prefix(&batch);
//! assert_eq!(prefix.latents.as_ref().unwrap().dims(), [2, 1, 16]);
//! let logp = model.target_logp(&prefix, &model.targets(&batch)); // [2, 2], 0 at the padding
//! assert_eq!(logp.dims(), [2, 2]);
//! let loss = model.sft_loss(&batch);
//! assert_eq!(loss.n_tokens, 3);
//! # }
//! # run(&Device::flex());
//! ```
#![deny(missing_docs)]

mod error;
pub mod model;
pub mod ratt;
pub mod store;
pub mod thought;

pub use error::{Error, Result};
pub use model::{DecodeStart, LatentModel, LatentModelConfig, NaiveOutput, Prefix, SftLoss, Targets};
pub use ratt::{LatentRatt, LatentRattConfig};
pub use thought::append_thought_rows;

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
