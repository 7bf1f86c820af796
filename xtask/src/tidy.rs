//! `cargo xtask tidy`: repository rules that code review would otherwise have to remember. Also a `#[test]`, so
//! `cargo test --workspace` enforces them. The architecture invariants it checks are marked "(tidy)" in
//! `docs/architecture.md`.
//!
//! - Every crate under `crates/` is named `r3-*`; its root file opens with a `//!` overview, and library crates
//!   `#![deny(missing_docs)]`.
//! - Dependencies ([`deps`]): the burn-free crates (`r3-data`, `r3-metrics`, `r3-runs`) and `xtask` reach neither
//!   burn nor a model crate, directly or through other workspace crates; nothing depends on `r3-cli`; only
//!   `r3-cli` enables a backend feature, wherever a manifest can enable one (tests may run on the CPU backend: a
//!   dev-dependency may enable `flex`) (`[features]`, the `features` of a
//!   dependency in any dependency table, target-specific tables, the workspace's dependencies); only `r3-data`
//!   depends on the `tokenizers` crate; the dependency table of `docs/architecture.md` matches the manifests.
//! - Text ([`text`]): only `r3-data` turns text into token ids and back (calls of `encode`/`decode` on a
//!   tokenizer), apart from an explicit allow-list.
//! - Files ([`files`]): `datasets/*.toml` parse and the data files match their sha256 sums (when the data folder
//!   exists); `experiments/**/*.toml` parse and carry a `[paper]` block; the manifests of `cargo xtask reproduce`
//!   parse strictly and name run configurations that exist at every scale; `results/**/*.json` are result files
//!   of existing manifests; no tracked file is larger than 1 MiB.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

mod deps;
mod files;
mod text;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn toml_file(path: &Path) -> anyhow::Result<toml::Table> {
    read(path)?.parse::<toml::Table>().with_context(|| format!("{} is not valid TOML", path.display()))
}

/// The crate folders under `crates/`, sorted.
fn crate_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Names and crate docs.
fn check_crate_docs(dirs: &[PathBuf], failures: &mut Vec<String>) -> anyhow::Result<()> {
    for dir in dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let manifest = toml_file(&dir.join("Cargo.toml"))?;
        let pkg = manifest.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()).unwrap_or("");
        if pkg != name || !name.starts_with("r3-") {
            failures
                .push(format!("crates/{name}: the folder and package must share one `r3-*` name (package `{pkg}`)"));
        }
        let is_bin = name == "r3-cli";
        let root_file = dir.join("src").join(if is_bin { "main.rs" } else { "lib.rs" });
        let text = read(&root_file)?;
        if !text.starts_with("//!") {
            failures.push(format!("{}: must open with a `//!` overview", root_file.display()));
        }
        if !is_bin && !text.contains("#![deny(missing_docs)]") {
            failures.push(format!("{}: library crates set `#![deny(missing_docs)]`", root_file.display()));
        }
    }
    Ok(())
}

/// Runs every check; returns a one-line-per-check report, or the list of failures.
pub fn check(root: &Path) -> anyhow::Result<String> {
    let mut failures = Vec::new();
    let mut report = String::new();
    let dirs = crate_dirs(root)?;
    check_crate_docs(&dirs, &mut failures)?;
    let _ = writeln!(report, "tidy: {} crates checked (names, docs)", dirs.len());
    let workspace = deps::Workspace::read(root)?;
    let _ = writeln!(report, "{}", deps::check(&workspace, &mut failures));
    deps::check_doc(&workspace, &read(&root.join("docs").join("architecture.md"))?, &mut failures);
    let _ = writeln!(report, "tidy: the dependency table of docs/architecture.md matches the manifests");
    let _ = writeln!(report, "{}", text::check(root, &dirs, &mut failures)?);
    files::check(root, &mut report, &mut failures)?;
    if failures.is_empty() {
        Ok(report.trim_end().to_string())
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
