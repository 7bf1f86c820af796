//! `cargo xtask tidy`: repository rules that code review would otherwise have to remember. Also a `#[test]`, so
//! `cargo test --workspace` enforces them.
//!
//! - Every crate under `crates/` is named `r3-*`; its root file opens with a `//!` overview, and library crates
//!   `#![deny(missing_docs)]`.
//! - The architecture invariants of `docs/architecture.md`: `r3-data` and `r3-metrics` depend on no model crate
//!   and not on burn; nothing depends on `r3-cli`; `xtask` has no burn dependency; only `r3-cli` enables backend
//!   features.
//! - `datasets/*.toml` parse, and the shared data files match their sha256 sums (when the shared folder exists).
//! - `experiments/**/*.toml` parse and carry a `[paper]` block; the manifests of `cargo xtask reproduce` parse
//!   strictly and name run configurations that exist at every scale; `results/**/*.json` are result files of
//!   existing manifests.
//! - No tracked file is larger than 1 MiB (data and weights stay outside the repository).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

const MODEL_CRATES: [&str; 7] =
    ["r3-backbone", "r3-latent", "r3-train", "r3-grpo", "r3-rewards", "r3-decode", "r3-baselines"];
const BACKEND_FEATURES: [&str; 4] = ["flex", "wgpu", "vulkan", "cuda"];

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn toml_file(path: &Path) -> anyhow::Result<toml::Table> {
    read(path)?.parse::<toml::Table>().with_context(|| format!("{} is not valid TOML", path.display()))
}

fn dep_names(manifest: &toml::Table) -> Vec<String> {
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|k| manifest.get(*k).and_then(|v| v.as_table()))
        .flat_map(|t| t.keys().cloned())
        .collect()
}

fn crate_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Runs every check; returns a one-line-per-check report, or the list of failures.
pub fn check(root: &Path) -> anyhow::Result<String> {
    let mut failures = Vec::new();
    let mut report = String::new();

    // Crates: names, docs, dependency rules.
    let crates = crate_dirs(root)?;
    for dir in &crates {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let manifest = toml_file(&dir.join("Cargo.toml"))?;
        let pkg = manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()).unwrap_or("");
        if pkg != name || !name.starts_with("r3-") {
            failures
                .push(format!("crates/{name}: the folder and package must share one `r3-*` name (package `{pkg}`)"));
        }
        let deps = dep_names(&manifest);
        let is_bin = name == "r3-cli";
        let root_file = dir.join("src").join(if is_bin { "main.rs" } else { "lib.rs" });
        let text = read(&root_file)?;
        if !text.starts_with("//!") {
            failures.push(format!("{}: must open with a `//!` overview", root_file.display()));
        }
        if !is_bin && !text.contains("#![deny(missing_docs)]") {
            failures.push(format!("{}: library crates set `#![deny(missing_docs)]`", root_file.display()));
        }
        if deps.iter().any(|d| d == "r3-cli") {
            failures.push(format!("crates/{name}: nothing may depend on r3-cli"));
        }
        if matches!(name.as_str(), "r3-data" | "r3-metrics") {
            for d in deps.iter().filter(|d| MODEL_CRATES.contains(&d.as_str()) || *d == "burn") {
                failures.push(format!("crates/{name}: must not depend on `{d}` (data and metrics stay model-free)"));
            }
        }
        if !is_bin && let Some(features) = manifest.get("features").and_then(|f| f.as_table()) {
            for (f, v) in features {
                let enables = v.as_array().into_iter().flatten().filter_map(|x| x.as_str());
                for e in enables {
                    if BACKEND_FEATURES.iter().any(|b| e == format!("burn/{b}")) {
                        failures
                            .push(format!("crates/{name}: feature `{f}` enables `{e}`; only r3-cli picks backends"));
                    }
                }
            }
        }
    }
    let xtask = toml_file(&root.join("xtask").join("Cargo.toml"))?;
    if dep_names(&xtask).iter().any(|d| d.starts_with("burn") || d.starts_with("r3-")) {
        failures.push("xtask: must not depend on burn or on the workspace crates".into());
    }
    let _ = writeln!(report, "tidy: {} crates checked (names, docs, dependency rules)", crates.len());

    // Datasets: descriptors parse; checksums of the shared files.
    let data_dir = std::env::var_os("LATENTR3_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("..").join("shared").join("datasets").join("amazon18"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("datasets"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let t = toml_file(&path)?;
        let mut files: Vec<(String, String)> = Vec::new();
        for ds in t.get("dataset").and_then(|d| d.as_array()).into_iter().flatten() {
            let stem = ds.get("stem").and_then(|s| s.as_str()).context("dataset without `stem`")?;
            let sums = ds.get("sha256").and_then(|s| s.as_table()).context("dataset without `sha256`")?;
            for (kind, sum) in sums {
                let rel = if kind == "info" { format!("info/{stem}.txt") } else { format!("{kind}/{stem}.csv") };
                files.push((rel, sum.as_str().unwrap_or("").to_string()));
            }
        }
        for raw in t.get("raw").and_then(|d| d.as_array()).into_iter().flatten() {
            let p = raw.get("path").and_then(|s| s.as_str()).context("raw file without `path`")?;
            files.push((p.to_string(), raw.get("sha256").and_then(|s| s.as_str()).unwrap_or("").to_string()));
        }
        if !data_dir.is_dir() {
            let _ = writeln!(
                report,
                "tidy: skipped the checksums of {}: no data folder at {}",
                path.display(),
                data_dir.display()
            );
            continue;
        }
        for (rel, want) in files {
            let bytes =
                std::fs::read(data_dir.join(&rel)).with_context(|| format!("reading {rel} of the data folder"))?;
            let got = format!("{:x}", Sha256::digest(&bytes));
            if got != want {
                failures.push(format!("{rel}: sha256 {got}, expected {want} ({})", path.display()));
            }
            checked += 1;
        }
    }
    let _ = writeln!(report, "tidy: {checked} shared data files match their sha256");

    // Experiments: every file parses and names the paper cell it reproduces; manifests (every folder but the run
    // configurations' sft/ and grpo/) parse with `deny_unknown_fields` and name configuration files that exist.
    let mut experiments = 0;
    let mut manifests = 0;
    let base = root.join("experiments");
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let t = toml_file(&path)?;
                if !t.contains_key("paper") {
                    failures.push(format!("{}: experiment files carry a [paper] block", path.display()));
                }
                if crate::manifest::is_manifest_path(path.strip_prefix(&base).unwrap_or(&path)) {
                    match crate::manifest::Manifest::read(&path) {
                        Ok(m) => {
                            for missing in m.missing_configs(root) {
                                failures.push(format!("{}: {missing}", path.display()));
                            }
                        }
                        Err(e) => failures.push(format!("{e:#}")),
                    }
                    manifests += 1;
                }
                experiments += 1;
            }
        }
    }
    let _ =
        writeln!(report, "tidy: {experiments} experiment files parse ({manifests} manifests of cargo xtask reproduce)");

    // Results: every file is a result of `cargo xtask reproduce` for an existing manifest at its own path.
    let mut results = 0;
    let mut stack = vec![root.join("results")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                match crate::results::ResultFile::read(&path) {
                    Ok(Some(r)) => {
                        let want = crate::results::ResultFile::path(root, &r.experiment, r.scale);
                        if want != path {
                            failures.push(format!("{}: holds `{}` at {}", path.display(), r.experiment, r.scale));
                        } else if !root.join("experiments").join(format!("{}.toml", r.experiment)).is_file() {
                            failures.push(format!("{}: no manifest experiments/{}.toml", path.display(), r.experiment));
                        }
                        results += 1;
                    }
                    Ok(None) => {}
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
        }
    }
    let _ = writeln!(report, "tidy: {results} result files parse and belong to their manifests");

    // No large tracked files.
    if let Ok(out) = std::process::Command::new("git").args(["ls-files", "-z"]).current_dir(root).output()
        && out.status.success()
    {
        let mut n = 0;
        for f in out.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
            let p = root.join(String::from_utf8_lossy(f).as_ref());
            if let Ok(m) = std::fs::metadata(&p)
                && m.len() > 1 << 20
            {
                failures.push(format!(
                    "{}: {} bytes; data and weights stay outside the repository",
                    p.display(),
                    m.len()
                ));
            }
            n += 1;
        }
        let _ = write!(report, "tidy: {n} tracked files, none over 1 MiB");
    } else {
        let _ = write!(report, "tidy: skipped the file-size check: not a git checkout");
    }

    if failures.is_empty() {
        Ok(report)
    } else {
        bail!("tidy found {} problem(s):\n  {}", failures.len(), failures.join("\n  "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy() {
        let report = super::check(&crate::project_root()).unwrap_or_else(|e| panic!("{e:#}"));
        println!("{report}");
    }
}
