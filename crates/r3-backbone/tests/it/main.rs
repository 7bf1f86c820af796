//! Integration tests of `r3-backbone` on the real checkpoints and the golden references of the shared folder.
//!
//! - `gguf_golden`: every tensor of the real GGUF files dequantised against `golden/*/gguf_tensors.json`.
//! - `gguf_corrupt`: truncated and corrupt files give errors, never panics (with a property test).

mod common;
mod gguf_corrupt;
mod gguf_golden;
