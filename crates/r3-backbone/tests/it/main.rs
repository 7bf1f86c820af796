//! Integration tests of `r3-backbone` on the real checkpoints and the golden references of the shared folder.
//!
//! - `encode_golden`: `r3_data::encode` prompts and targets with the real tokenizers against the LatentR³ golden.
//! - `gguf_golden`: every tensor of the real GGUF files dequantised against `golden/*/gguf_tensors.json`.
//! - `gguf_corrupt`: truncated and corrupt files give errors, never panics (with a property test).
//! - `forward_golden`: the decoder on the real checkpoints against HF transformers (`golden/*/golden.json`).
//! - `hf`: Hugging Face folders: GGUF → export → reload is exact; errors name the file and the key.
//! - `cache`: cached decoding, left padding, cache expansion and greedy decoding against the full forward.

mod cache;
mod common;
mod encode_golden;
mod forward_golden;
mod gguf_corrupt;
mod gguf_golden;
mod hf;
mod tokenizer_golden;
