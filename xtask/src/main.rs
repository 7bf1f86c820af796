//! Project automation, after rust-analyzer's xtask: `cargo xtask ci` (what CI runs, cheapest checks first) and
//! `cargo xtask tidy` (repository rules, also run as a test). No burn dependency.

mod ci;
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
  ci     what .ci/run runs: format check, tidy, model fetch, build of the benchmarks, then the whole test suite
         (--no-fmt skips the format check)
  tidy   repository rules: crate docs, dataset checksums, experiment files parse, no large files";

/// The repository root (the parent of this crate's folder).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repository root").to_path_buf()
}
