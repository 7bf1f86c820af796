//! Integration tests of r3-latent on the real checkpoints and the golden references (one module per topic).
//!
//! - `common`: the device, the shared golden folder, a small safetensors reader for the reference tensors.
//! - `latent_golden`: the two-pass SmolLM2 model with the golden LatentRATT against PyTorch
//!   (`golden/smollm2/latent_golden.{json,safetensors}`): thought row, latents, target log-probs, SFT loss and
//!   gradients.

mod common;
mod latent_golden;
