//! The file rules of tidy: dataset checksums, experiment files and manifests, result files, file sizes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::toml_file;
use crate::manifest::{Manifest, is_manifest_path};
use crate::results::ResultFile;

/// Runs the file rules, appending their lines to `report`.
pub fn check(root: &Path, report: &mut String, failures: &mut Vec<String>) -> anyhow::Result<()> {
    check_datasets(root, report, failures)?;
    check_experiments(root, report, failures)?;
    check_results(root, report, failures)?;
    check_sizes(root, report, failures);
    Ok(())
}

/// The files a dataset descriptor lists, relative to the data folder, with their sha256.
fn descriptor_files(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let t = toml_file(path)?;
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
    Ok(files)
}

/// Dataset descriptors parse; the data files match their checksums.
fn check_datasets(root: &Path, report: &mut String, failures: &mut Vec<String>) -> anyhow::Result<()> {
    let data_dir = crate::reproduce::default_data_dir(root);
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("datasets"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let files = descriptor_files(&path)?;
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
    let _ = writeln!(report, "tidy: {checked} data files match their sha256");
    Ok(())
}

/// Every file under `dir` (recursively) whose extension is `ext`.
fn files_under(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Experiments: every file parses and names the paper cell it reproduces; manifests (every folder but the run
/// configurations' sft/, grpo/ and baselines/) parse with `deny_unknown_fields` and name configuration files that
/// exist.
fn check_experiments(root: &Path, report: &mut String, failures: &mut Vec<String>) -> anyhow::Result<()> {
    let base = root.join("experiments");
    let (mut experiments, mut manifests) = (0, 0);
    for path in files_under(&base, "toml")? {
        let t = toml_file(&path)?;
        if !t.contains_key("paper") {
            failures.push(format!("{}: experiment files carry a [paper] block", path.display()));
        }
        if is_manifest_path(path.strip_prefix(&base).unwrap_or(&path)) {
            match Manifest::read(&path) {
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
    let _ =
        writeln!(report, "tidy: {experiments} experiment files parse ({manifests} manifests of cargo xtask reproduce)");
    Ok(())
}

/// Results: every file is a result of `cargo xtask reproduce` for an existing manifest at its own path.
fn check_results(root: &Path, report: &mut String, failures: &mut Vec<String>) -> anyhow::Result<()> {
    let mut results = 0;
    for path in files_under(&root.join("results"), "json")? {
        match ResultFile::read(&path) {
            Ok(Some(r)) => {
                let want = ResultFile::path(root, &r.experiment, r.scale);
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
    let _ = writeln!(report, "tidy: {results} result files parse and belong to their manifests");
    Ok(())
}

/// No large tracked files.
fn check_sizes(root: &Path, report: &mut String, failures: &mut Vec<String>) {
    let out = std::process::Command::new("git").args(["ls-files", "-z"]).current_dir(root).output();
    let Ok(out) = out.map_err(|_| ()).and_then(|o| if o.status.success() { Ok(o) } else { Err(()) }) else {
        let _ = writeln!(report, "tidy: skipped the file-size check: not a git checkout");
        return;
    };
    let mut n = 0;
    for f in out.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let p = root.join(String::from_utf8_lossy(f).as_ref());
        if let Ok(m) = std::fs::metadata(&p)
            && m.len() > 1 << 20
        {
            failures.push(format!("{}: {} bytes; data and weights stay outside the repository", p.display(), m.len()));
        }
        n += 1;
    }
    let _ = writeln!(report, "tidy: {n} tracked files, none over 1 MiB");
}
