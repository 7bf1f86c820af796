//! The result files `results/<experiment>/<scale>.json` that `cargo xtask reproduce` writes and `cargo xtask
//! tables` renders (docs/conventions.md §9: our metric, the paper's value, the delta, a data note).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::manifest::Scale;

/// The data note of every result trained on the shared data (`docs/data.md`).
pub const RECOVERED_NOTE: &str = "recovered train subset";

/// One result file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultFile {
    /// The experiment's name (`table1/cds-latentr3`).
    pub experiment: String,
    /// The paper's table or figure.
    pub table: String,
    /// The paper's row.
    pub row: String,
    /// The paper's column (dataset).
    pub column: String,
    /// The scale of the runs.
    pub scale: Scale,
    /// The `--device` of the runs.
    pub device: String,
    /// The machine: CPU model and cores, GPU name when there is one.
    pub hardware: String,
    /// "recovered train subset" for the shared data.
    pub data_note: String,
    /// The dataset stem.
    pub dataset: String,
    /// Evaluated users.
    pub users: usize,
    /// The git commit of the code (with `-dirty` when the tree had changes).
    pub commit: String,
    /// The command that produced this file.
    pub command: String,
    /// When it was written (UTC, RFC 3339).
    pub written: String,
    /// The runs behind it.
    pub runs: Vec<RunRecord>,
    /// The reported numbers.
    pub metrics: Vec<MetricEntry>,
    /// Training curves (GRPO vs LR-GRPO).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curves: Vec<Curve>,
    /// Paired comparisons with the reference rows the manifest declares (`[report] compare`); absent in files
    /// written before they existed and for references whose evaluation was not at hand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
    /// Where the paper's setting differs.
    #[serde(default)]
    pub note: String,
}

/// One run behind a result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// The run's id in the manifest.
    pub id: String,
    /// `sft`, `grpo`, `eval`, `baseline`.
    pub kind: String,
    /// The hash of the run's resolved configuration (its folder name).
    pub key: String,
    /// The run folder, relative to the repository root.
    pub dir: String,
    /// Wall seconds of the command(s) that finished it, in the session that finished it (a continued run: the last
    /// session only).
    pub wall_s: f64,
    /// The code that produced the run ([`r3_runs::Provenance::label`]: a commit, `-dirty` when the tree had
    /// changes, `unknown` when the run recorded none); absent in result files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// One reported number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEntry {
    /// `H@5`, `N@10`, `popular H@10` (a relative gain), `latency mean s`, `train s`, ...
    pub name: String,
    /// Our value.
    pub ours: Option<f64>,
    /// The 95% bootstrap interval over users, when the value is a mean over users.
    pub ci95: Option<[f64; 2]>,
    /// The paper's value, when it gives one.
    pub paper: Option<f64>,
    /// `ours − paper`.
    pub delta: Option<f64>,
    /// The number of users (or samples) behind the value.
    pub n: usize,
}

impl MetricEntry {
    /// An entry with the delta filled in.
    pub fn new(name: &str, ours: Option<f64>, ci95: Option<[f64; 2]>, paper: Option<f64>, n: usize) -> Self {
        let delta = ours.zip(paper).map(|(a, b)| a - b);
        MetricEntry { name: name.into(), ours, ci95, paper, delta, n }
    }
}

/// The paired comparison of a result with one reference row on the same test users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// The reference experiment (`table1/cds-bigrec`).
    pub reference: String,
    /// Its paper row (`BIGRec`).
    pub row: String,
    /// The users both evaluations share (the same users in the same order).
    pub users: usize,
    /// One entry per metric and bucket.
    pub entries: Vec<PairedEntry>,
}

/// One paired difference: ours − the reference's on the same users, and the relative gain, each with a
/// paired-bootstrap interval (the same resampled users for both).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedEntry {
    /// `H@5` (all users), `popular H@10`, `unpopular N@10`, ...
    pub name: String,
    /// Our mean.
    pub ours: f64,
    /// The reference's mean.
    pub reference: f64,
    /// `ours − reference`.
    pub diff: f64,
    /// The 95% paired-bootstrap interval of the difference.
    pub diff_ci95: Option<[f64; 2]>,
    /// `ours / reference − 1`; `None` for a zero reference mean.
    pub gain: Option<f64>,
    /// The 95% paired-bootstrap interval of the gain.
    pub gain_ci95: Option<[f64; 2]>,
    /// The users behind the entry.
    pub n: usize,
}

impl Comparison {
    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&PairedEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// A training curve: one point per optimizer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// The run's id.
    pub run: String,
    /// `lr_grpo` or `grpo`.
    pub label: String,
    /// The points.
    pub points: Vec<CurvePoint>,
}

/// One point of a training curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurvePoint {
    /// The optimizer step.
    pub step: u64,
    /// Training seconds so far.
    pub elapsed_s: f64,
    /// The mean reward of the step.
    pub reward: f64,
    /// The validation NDCG@10 after this step, when the run validated there.
    pub val_ndcg: Option<f64>,
}

impl ResultFile {
    /// The path of the result of `experiment` at `scale`.
    pub fn path(root: &Path, experiment: &str, scale: Scale) -> PathBuf {
        root.join("results").join(experiment).join(format!("{scale}.json"))
    }

    /// Reads a result file, `None` when it does not exist.
    pub fn read(path: &Path) -> anyhow::Result<Option<ResultFile>> {
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let r = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a result file of `cargo xtask reproduce`", path.display()))?;
        Ok(Some(r))
    }

    /// Writes the file (pretty JSON), creating its folder; through a temporary file renamed into place.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().context("a result path has a folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
        Ok(())
    }

    /// The entry named `name`.
    pub fn metric(&self, name: &str) -> Option<&MetricEntry> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The code of the runs behind the result: their distinct commits in run order, `unknown` for a run that
    /// recorded none (every run of a file written before runs recorded it).
    pub fn run_commits(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.runs {
            let c = r.commit.clone().unwrap_or_else(|| "unknown".into());
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Whether runs of different known code are combined (unknown runs do not count).
    pub fn mixes_code(&self) -> bool {
        mixed_commits(self.runs.iter().filter_map(|r| r.commit.as_deref()))
    }
}

/// Whether the known commits among `commits` differ (`unknown` is not a commit).
pub fn mixed_commits<'a>(commits: impl Iterator<Item = &'a str>) -> bool {
    let mut known = commits.filter(|c| *c != "unknown");
    let Some(first) = known.next() else { return false };
    known.any(|c| c != first)
}
