//! The dependency rules of tidy, read from the manifests: which crate may reach burn, who may pick a backend,
//! who may depend on the tokenizer crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{crate_dirs, toml_file};

/// The crates that hold a model (and depend on burn).
pub const MODEL_CRATES: [&str; 8] =
    ["r3-backbone", "r3-latent", "r3-trainer", "r3-train", "r3-grpo", "r3-rewards", "r3-decode", "r3-baselines"];
/// The crates that must reach neither burn nor a model crate, directly or through other workspace crates.
pub const BURN_FREE: [&str; 4] = ["r3-data", "r3-metrics", "r3-runs", "xtask"];
/// burn's backend features; a dependency on `burn-<backend>` picks one as well.
pub const BACKEND_FEATURES: [&str; 4] = ["flex", "wgpu", "vulkan", "cuda"];
/// The only crate that picks backends.
pub const BACKEND_PICKER: &str = "r3-cli";
/// The only crate that depends on the `tokenizers` crate (it owns text: `r3_data::Tokenizer`).
pub const TEXT_CRATE: &str = "r3-data";

/// One dependency entry of a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Dep {
    /// The crate depended on (its `package` when renamed).
    pub name: String,
    /// The table it is in (`dependencies`, `target.'cfg(unix)'.dev-dependencies`, `workspace.dependencies`).
    pub table: String,
    /// Its `features = [...]`.
    pub features: Vec<String>,
}

/// A manifest of the workspace: its crate name, dependencies (every table) and `[features]`.
#[derive(Clone, Debug)]
pub struct Crate {
    /// The package name (`workspace` for the root manifest).
    pub name: String,
    /// Every dependency of every table.
    pub deps: Vec<Dep>,
    /// `[features]`: name → what it enables.
    pub features: BTreeMap<String, Vec<String>>,
}

fn strings(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(|v| v.as_array()).into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

/// The entries of one dependency table.
fn deps_of(table: &toml::Table, name: &str, out: &mut Vec<Dep>) {
    for (key, value) in table {
        let package = value.get("package").and_then(|p| p.as_str()).unwrap_or(key);
        out.push(Dep { name: package.to_string(), table: name.to_string(), features: strings(value.get("features")) });
    }
}

impl Crate {
    /// Reads the dependencies of every table and the features of a manifest.
    pub fn parse(name: &str, manifest: &toml::Table) -> Crate {
        let mut deps = Vec::new();
        let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
        for kind in kinds {
            if let Some(t) = manifest.get(kind).and_then(|t| t.as_table()) {
                deps_of(t, kind, &mut deps);
            }
        }
        for (cfg, tables) in manifest.get("target").and_then(|t| t.as_table()).into_iter().flatten() {
            for kind in kinds {
                if let Some(t) = tables.get(kind).and_then(|t| t.as_table()) {
                    deps_of(t, &format!("target.'{cfg}'.{kind}"), &mut deps);
                }
            }
        }
        if let Some(t) = manifest.get("workspace").and_then(|w| w.get("dependencies")).and_then(|t| t.as_table()) {
            deps_of(t, "workspace.dependencies", &mut deps);
        }
        let features = manifest
            .get("features")
            .and_then(|f| f.as_table())
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), strings(Some(v))))
            .collect();
        Crate { name: name.to_string(), deps, features }
    }

    /// The workspace crates and external crates this crate builds with (not dev-dependencies).
    pub fn build_deps(&self) -> impl Iterator<Item = &str> {
        self.deps.iter().filter(|d| !d.table.ends_with("dev-dependencies")).map(|d| d.name.as_str())
    }

    /// Where this manifest enables a burn backend: `(where, what)` pairs.
    pub fn backend_uses(&self) -> Vec<(String, String)> {
        let is_backend = |f: &str| BACKEND_FEATURES.contains(&f);
        let mut out = Vec::new();
        for (f, enables) in &self.features {
            for e in enables {
                if let Some((dep, feat)) = e.split_once('/')
                    && dep.trim_end_matches('?') == "burn"
                    && is_backend(feat)
                {
                    out.push((format!("feature `{f}`"), e.clone()));
                }
            }
        }
        for d in &self.deps {
            // Tests run on the CPU backend: a dev-dependency may enable `flex`, and nothing else.
            let test_backend = |f: &str| f == "flex" && d.table.ends_with("dev-dependencies");
            if d.name == "burn" {
                for f in d.features.iter().filter(|f| is_backend(f) && !test_backend(f)) {
                    out.push((format!("[{}] burn", d.table), format!("features = [\"{f}\"]")));
                }
            }
            if let Some(b) = d.name.strip_prefix("burn-")
                && is_backend(b)
            {
                out.push((format!("[{}]", d.table), d.name.clone()));
            }
        }
        out
    }
}

/// The workspace's manifests: the root's and each member's.
pub struct Workspace {
    /// The root manifest (its `[workspace.dependencies]`).
    pub root: Crate,
    /// The members by name: the crates under `crates/` and `xtask`.
    pub members: BTreeMap<String, Crate>,
}

impl Workspace {
    /// Reads the manifests under `root`.
    pub fn read(root: &Path) -> anyhow::Result<Workspace> {
        let mut members = BTreeMap::new();
        for dir in crate_dirs(root)?.into_iter().chain([root.join("xtask")]) {
            let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            members.insert(name.clone(), Crate::parse(&name, &toml_file(&dir.join("Cargo.toml"))?));
        }
        Ok(Workspace { root: Crate::parse("workspace", &toml_file(&root.join("Cargo.toml"))?), members })
    }

    /// Every crate `name` builds with, directly or through workspace crates (not dev-dependencies), with the
    /// path that reaches it.
    pub fn reach(&self, name: &str) -> BTreeMap<String, String> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut stack = vec![(name.to_string(), name.to_string())];
        while let Some((c, path)) = stack.pop() {
            let Some(krate) = self.members.get(&c) else { continue };
            for d in krate.build_deps() {
                if !seen.contains_key(d) {
                    let p = format!("{path} → {d}");
                    seen.insert(d.to_string(), p.clone());
                    stack.push((d.to_string(), p));
                }
            }
        }
        seen
    }
}

/// The dependency table of `docs/architecture.md` (the rows `| `crate` | `dep`, `dep` | burn |` under
/// `## Dependency graph`): crate → (workspace dependencies, depends on burn).
pub fn doc_table(text: &str) -> BTreeMap<String, (BTreeSet<String>, bool)> {
    let section = text.split("\n## Dependency graph").nth(1).unwrap_or("");
    let section = section.split("\n## ").next().unwrap_or("");
    let ticked = |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(name), Some(deps), Some(burn)) = (ticked(cells[1]).pop(), cells.get(2), cells.get(3)) else {
            continue;
        };
        out.insert(name, (ticked(deps).into_iter().collect(), burn.starts_with("yes")));
    }
    out
}

/// Checks the dependency table of `docs/architecture.md` against the manifests.
pub fn check_doc(ws: &Workspace, doc: &str, failures: &mut Vec<String>) {
    let table = doc_table(doc);
    for (name, c) in &ws.members {
        let deps: BTreeSet<String> =
            c.build_deps().filter(|d| ws.members.contains_key(*d)).map(str::to_string).collect();
        let burn = c.build_deps().any(|d| d == "burn");
        match table.get(name) {
            None => failures.push(format!("docs/architecture.md: the dependency table has no row for `{name}`")),
            Some(row) if *row != (deps.clone(), burn) => failures.push(format!(
                "docs/architecture.md: the row of `{name}` says {:?} (burn: {}), its manifest {deps:?} (burn: {burn})",
                row.0, row.1
            )),
            Some(_) => {}
        }
    }
    for name in table.keys().filter(|n| !ws.members.contains_key(*n)) {
        failures.push(format!("docs/architecture.md: the dependency table lists `{name}`, which is no crate"));
    }
}

/// Checks the dependency rules; returns the report line.
pub fn check(ws: &Workspace, failures: &mut Vec<String>) -> String {
    for name in BURN_FREE {
        for (d, path) in ws.reach(name) {
            if d == "burn" || d.starts_with("burn-") || MODEL_CRATES.contains(&d.as_str()) {
                failures.push(format!("{name}: reaches `{d}` ({path}); it must stay free of burn and the models"));
            }
        }
    }
    for c in ws.members.values() {
        if c.deps.iter().any(|d| d.name == BACKEND_PICKER) {
            failures.push(format!("{}: nothing may depend on {BACKEND_PICKER}", c.name));
        }
        if c.name != TEXT_CRATE && c.deps.iter().any(|d| d.name == "tokenizers") {
            failures.push(format!("{}: only {TEXT_CRATE} depends on `tokenizers` (use r3_data::Tokenizer)", c.name));
        }
    }
    for c in ws.members.values().filter(|c| c.name != BACKEND_PICKER).chain([&ws.root]) {
        for (place, what) in c.backend_uses() {
            failures.push(format!("{}: {place} enables `{what}`; only {BACKEND_PICKER} picks backends", c.name));
        }
    }
    let reached: BTreeSet<&str> = BURN_FREE.into_iter().collect();
    format!(
        "tidy: {} manifests checked ({} stay burn-free through their dependencies, backends only in {BACKEND_PICKER}, \
         tokenizers only in {TEXT_CRATE})",
        ws.members.len() + 1,
        reached.into_iter().collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str, text: &str) -> Crate {
        Crate::parse(name, &text.parse().unwrap())
    }

    #[test]
    fn backend_features_are_found_wherever_a_manifest_enables_them() {
        let c = krate(
            "r3-x",
            r#"
[features]
gpu = ["burn/wgpu"]
maybe = ["burn?/cuda"]
fine = ["burn/std"]

[dependencies]
burn = { workspace = true, features = ["vulkan"] }

[dev-dependencies]
b = { package = "burn", version = "0.22", features = ["flex", "wgpu", "autodiff"] }

[target.'cfg(unix)'.dependencies]
burn-cuda = "0.22"
"#,
        );
        let found: Vec<String> = c.backend_uses().into_iter().map(|(p, w)| format!("{p}: {w}")).collect();
        assert_eq!(
            found,
            [
                "feature `gpu`: burn/wgpu",
                "feature `maybe`: burn?/cuda",
                "[dependencies] burn: features = [\"vulkan\"]",
                "[dev-dependencies] burn: features = [\"wgpu\"]",
                "[target.'cfg(unix)'.dependencies]: burn-cuda",
            ]
        );
        let root =
            krate("workspace", "[workspace.dependencies]\nburn = { version = \"=0.22.1\", features = [\"x86-v4\"] }");
        assert!(root.backend_uses().is_empty());
        let root =
            krate("workspace", "[workspace.dependencies]\nburn = { version = \"=0.22.1\", features = [\"cuda\"] }");
        assert_eq!(root.backend_uses().len(), 1);
    }

    #[test]
    fn burn_is_found_through_workspace_crates() {
        let mut members = BTreeMap::new();
        members
            .insert("r3-runs".into(), krate("r3-runs", "[dependencies]\nr3-data = {}\n[dev-dependencies]\nburn = {}"));
        members.insert("r3-data".into(), krate("r3-data", "[dependencies]\nr3-backbone = {}\nserde = {}"));
        members.insert("r3-backbone".into(), krate("r3-backbone", "[dependencies]\nburn = {}"));
        let ws = Workspace { root: krate("workspace", ""), members };
        let reach = ws.reach("r3-runs");
        assert_eq!(reach.get("burn").map(String::as_str), Some("r3-runs → r3-data → r3-backbone → burn"));
        let mut failures = Vec::new();
        check(&ws, &mut failures);
        assert!(failures.iter().any(|f| f.starts_with("r3-runs: reaches `burn`")), "{failures:?}");
        assert!(failures.iter().any(|f| f.starts_with("r3-data: reaches `r3-backbone`")), "{failures:?}");
    }

    #[test]
    fn the_repository_keeps_the_rules() {
        let ws = Workspace::read(&crate::project_root()).unwrap();
        let mut failures = Vec::new();
        check(&ws, &mut failures);
        assert!(failures.is_empty(), "{failures:#?}");
        // xtask builds with the burn-free crates and nothing that holds a model.
        let doc = std::fs::read_to_string(crate::project_root().join("docs/architecture.md")).unwrap();
        check_doc(&ws, &doc, &mut failures);
        assert!(failures.is_empty(), "{failures:#?}");
        // A row that disagrees with its manifest is found.
        let wrong = doc.replace("| `r3-runs` | `r3-data`, `r3-metrics` | no |", "| `r3-runs` | `r3-data` | no |");
        check_doc(&ws, &wrong, &mut failures);
        assert_eq!(failures.len(), 1, "{failures:#?}");
        let reach = ws.reach("xtask");
        for c in ["r3-data", "r3-metrics", "r3-runs"] {
            assert!(reach.contains_key(c), "{reach:?}");
        }
        // r3-cli picks the backends: its features are found.
        assert!(!ws.members["r3-cli"].backend_uses().is_empty());
    }
}
