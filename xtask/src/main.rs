//! Project automation, after rust-analyzer's xtask: `cargo xtask ci` (what CI runs, cheapest checks first),
//! `cargo xtask tidy` (repository rules, also run as a test), `cargo xtask reproduce` (the paper's experiments
//! through the `latentr3` binary, into `results/`) and `cargo xtask tables` (`docs/results.md` and the figures).
//! It depends on the burn-free crates only (`r3-data`, `r3-metrics`, `r3-runs`; `cargo xtask tidy` checks it):
//! the run files it reads are `r3-runs`' typed structs, the metrics and the popularity split the library's.

mod ci;
mod compare;
mod execute;
mod figures;
mod manifest;
mod outcome;
mod plan;
mod report;
mod reproduce;
mod results;
mod stats;
mod status;
mod summary;
mod tables;
mod tidy;

use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match cmd.as_str() {
        "ci" => ci::run(&rest),
        "tidy" => {
            let report = tidy::check(&project_root())?;
            println!("{report}");
            Ok(())
        }
        "reproduce" => reproduce::run(&project_root(), &rest),
        "tables" => tables::run(&project_root()),
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => anyhow::bail!("unknown xtask command `{other}`\n\n{USAGE}"),
    }
}

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci     what .ci/run runs: format check, tidy, model fetch, build of the benchmarks, the whole test suite, one
         smoke-scale reproduction, then the golden tests on wgpu over software Vulkan (--no-fmt skips the format check, --no-gpu-path the wgpu part)
  tidy   repository rules: crate docs, dataset checksums, experiment files parse, no large files
  reproduce <experiment|table|all> --scale smoke|quick|cpu|paper --device flex|wgpu|vulkan|cuda
         run what is missing of the experiments (~/.cache/latentr3/runs/reproduce/), write results/<experiment>/<scale>.json
         (--dry-run prints the plan; see `cargo xtask reproduce --help` and docs/reproduce.md)
  tables render docs/results.md from results/ and the figures into docs/figures/ (SVG and PNG)";

/// The repository root (the parent of this crate's folder).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repository root").to_path_buf()
}
