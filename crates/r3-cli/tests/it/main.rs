//! Integration tests of the `latentr3` binary: each module runs the real binary on the real shared data.
//!
//! - `data`: `latentr3 data stats` on both datasets, and its errors.
//! - `metrics`: `latentr3 metrics` on prediction files built from the CDs test split.
//! - `model`: `bench`, `generate`, `model export` and `--model DIR` with the fetched SmolLM2; unknown model ids.

mod data;
mod metrics;
mod model;
