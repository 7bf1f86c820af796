//! The files of a LatentR³ run folder as typed serde structs, shared by the command line that writes them and
//! `cargo xtask` that reads them, so that a renamed field fails to compile instead of silently reading zeros.
//!
//! - [`eval`]: `latentr3 eval` (`eval.json`, `predictions.jsonl`/`.json`, `metrics.json`);
//! - [`train`]: `latentr3 train sft|grpo` (`env.json`, `metrics.jsonl` records, `summary.json`, the algorithm of
//!   `config.resolved.toml`);
//! - [`baseline`]: `latentr3 baseline train` (`config.json`, `metrics.jsonl`, `summary.json`, `test/`);
//! - [`reproduce`]: the marker of a run finished by `cargo xtask reproduce`;
//! - [`Override`]: the `--set key.sub=value` overrides of run configurations;
//! - [`Provenance`]: the commit and dirty state of the code behind a run.
//!
//! Files we define carry `#[serde(deny_unknown_fields)]`; a field that older run folders lack is an `Option`
//! or has the default the writer itself gives it, and says so. [`read_json`] and [`read_jsonl`] name the file
//! (and line) of a record that does not parse. The crate depends on `r3-data` and `r3-metrics` only: no burn.
//!
//! ```
//! use r3_runs::{Override, train::SftRecord};
//! let mut tree: toml::Table = "[train]\nlr = 3e-4\n".parse()?;
//! Override::parse("train.lr=1e-4")?.apply(&mut tree)?;
//! assert_eq!(tree["train"]["lr"].as_float(), Some(1e-4));
//! let line = r#"{"kind":"eval","step":8,"epoch":0,"val_loss":1.5}"#;
//! let rec: SftRecord = serde_json::from_str(line)?;
//! assert_eq!(rec, SftRecord::Eval { step: 8, epoch: 0, val_loss: 1.5 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod baseline;
mod error;
pub mod eval;
mod io;
mod overrides;
mod provenance;
pub mod reproduce;
pub mod train;

pub use error::{Error, Result};
pub use io::{RunFile, parse_jsonl, read_json, read_json_array, read_jsonl, write_json};
pub use overrides::{Override, apply_overrides, toml_string};
pub use provenance::{Provenance, SHORT_COMMIT};
