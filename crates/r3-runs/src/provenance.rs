//! Which code produced a run: the git commit of the working tree and whether it had uncommitted changes.
//!
//! A training run records it in `env.json` ([`crate::train::RunEnv`]: `git_commit`, `git_dirty`); a result file of
//! `cargo xtask reproduce` lists it per run. A run that recorded nothing has an unknown provenance, and says so:
//! no commit is ever guessed.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The commit and dirty state of the code behind a run; `None` fields are unknown (no git, no repository, or a
/// run written before it was recorded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The full commit hash (`git rev-parse HEAD`).
    pub commit: Option<String>,
    /// Whether tracked files had uncommitted changes (`git status --porcelain --untracked-files=no` non-empty).
    pub dirty: Option<bool>,
}

/// How many hex digits of a commit [`Provenance::label`] shows.
pub const SHORT_COMMIT: usize = 12;

impl Provenance {
    /// The provenance of the git working tree that holds `dir`, by running `git` there; unknown fields when git
    /// or the repository is missing.
    pub fn of_working_tree(dir: &Path) -> Provenance {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(dir)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
        let dirty = commit
            .as_ref()
            .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
            .map(|s| !s.is_empty());
        Provenance { commit, dirty }
    }

    /// Whether the commit is known.
    pub fn is_known(&self) -> bool {
        self.commit.is_some()
    }

    /// A short label: the first [`SHORT_COMMIT`] hex digits of the commit, `-dirty` when the tree had changes,
    /// `unknown` when no commit was recorded.
    pub fn label(&self) -> String {
        match &self.commit {
            None => "unknown".into(),
            Some(c) => {
                let short = c.get(..SHORT_COMMIT).unwrap_or(c);
                if self.dirty == Some(true) { format!("{short}-dirty") } else { short.to_string() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_never_invent_a_commit() {
        assert_eq!(Provenance::default().label(), "unknown");
        let clean = Provenance { commit: Some("0123456789abcdef0123".into()), dirty: Some(false) };
        assert_eq!(clean.label(), "0123456789ab");
        let dirty = Provenance { dirty: Some(true), ..clean.clone() };
        assert_eq!(dirty.label(), "0123456789ab-dirty");
        // Unknown dirty state: the commit alone.
        assert_eq!(Provenance { dirty: None, ..clean }.label(), "0123456789ab");
    }

    #[test]
    fn a_folder_outside_git_has_an_unknown_provenance() {
        let dir = tempfile::tempdir().unwrap();
        // A temporary folder is outside any repository unless the system's temp folder is inside one.
        let inside = Command::new("git")
            .args(["rev-parse", "--is-inside-work-tree"])
            .current_dir(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        let p = Provenance::of_working_tree(dir.path());
        assert_eq!(p.is_known(), inside);
        if !inside {
            assert_eq!(p, Provenance::default());
        }
    }

    #[test]
    fn this_repository_has_a_commit() {
        let p = Provenance::of_working_tree(Path::new(env!("CARGO_MANIFEST_DIR")));
        // The crate is built from a git checkout in development and CI; a source tarball has no commit.
        if Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git").exists() {
            let c = p.commit.expect("a commit in a git checkout");
            assert!(c.len() >= 40 && c.chars().all(|x| x.is_ascii_hexdigit()), "{c}");
            assert!(p.dirty.is_some());
        }
    }
}
