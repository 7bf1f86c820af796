//! Integration tests of the `latentr3` binary: each module runs the real binary on the real shared data.
//!
//! - `baseline`: `baseline train|eval --model alpharec` from a cached text-embeddings file on Industrial.
//! - `data`: `latentr3 data stats` on both datasets, and its errors.
//! - `faults`: the fault suite, a table of bad inputs (damaged datasets, raw files, prediction files, GGUF and
//!   Hugging Face models, caches, configs, flags, environment variables) over every command, each with its exit
//!   code and a phrase of its message; a panic anywhere fails it.
//! - `eval`: `eval` (run folder, resume, a LatentR³ model folder with D3 decoding), `recommend`, `bench eval`, and
//!   their errors, with the fetched SmolLM2 on CDs test users.
//! - `metrics`: `latentr3 metrics` on prediction files built from the CDs test split.
//! - `model`: `bench`, `generate`, `model export` and `--model DIR` with the fetched SmolLM2; unknown model ids.
//! - `train`: `train sft` (config errors, a two-step LatentR³ run and its folders) and `bench sft`.

mod baseline;
mod data;
mod eval;
mod faults;
mod metrics;
mod model;
mod train;
