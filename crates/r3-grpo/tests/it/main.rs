//! Integration tests of r3-grpo (one module per topic):
//! - `experiments`: the committed experiment files parse;
//! - `golden`: one LR-GRPO micro-step on SmolLM2-135M against the PyTorch reference (`latent_golden.*`);
//! - `trainer`: the loop on a tiny random model: frozen backbone, kill-and-resume, NaN stops, run folder;
//! - `parallel`: data parallelism over several peers gives the one-device update;
//! - `rewards`: a custom reward registered through `GrpoTrainer::with_registry` drives a run.

// The helpers of r3-latent's golden tests (device, golden folder, models, safetensors reader), shared as is.
#[path = "../../../r3-latent/tests/it/common.rs"]
mod common;
mod experiments;
mod golden;
mod parallel;
mod rewards;
mod trainer;
