//! The committed GRPO experiment files (`experiments/grpo/*.toml`) parse, validate and carry a `[paper]` block.

use anyhow::{Context, Result, ensure};
use r3_grpo::{AdvantageMode, Algorithm, GrpoConfig};

#[test]
fn experiment_files_parse() -> Result<()> {
    let dir = r3_data::repo_root().context("repository root")?.join("experiments/grpo");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let c = GrpoConfig::from_file(&path, &[]).with_context(|| format!("{}", path.display()))?;
        ensure!(c.paper.is_some(), "{}: no [paper] block", path.display());
        let want = match c.grpo.algorithm {
            Algorithm::LrGrpo => AdvantageMode::Batch,
            Algorithm::Grpo => AdvantageMode::Group,
        };
        ensure!(c.grpo.advantage_mode() == want, "{}: advantage {:?}", path.display(), c.grpo.advantage_mode());
        n += 1;
    }
    ensure!(n >= 3, "expected the smoke and CPU experiment files, found {n}");
    Ok(())
}
