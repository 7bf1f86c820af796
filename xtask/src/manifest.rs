//! Experiment manifests: one TOML file per paper cell (`experiments/<table>/<dataset>-<method>.toml`) that lists
//! the runs producing the cell (SFT → GRPO → evaluation chains, evaluations of an untuned model, traditional
//! baselines), what is reported from them, and the paper's values.
//!
//! The run configurations themselves are the training commands' own files (`experiments/sft/*.toml` read into
//! `r3_train::SftConfig`, `experiments/grpo/*.toml` read into `r3_grpo::GrpoConfig`): a manifest names one per
//! scale (`config = "experiments/sft/cds-latentr3-{scale}.toml"`) and adds `--set` overrides, which go through the
//! commands' own key checks when the run starts. Unknown keys of a manifest are errors (`deny_unknown_fields`).
//!
//! ```toml
//! [paper]                              # the cell: table, row, column, source, the paper's values
//! table = "table1"
//! row = "BIGRec+LatentR3"
//! column = "CDs"
//! source = "docs/method.md §6, Table 1"
//! values = { "H@5" = 0.0934 }
//!
//! [experiment]
//! dataset = "CDs_and_Vinyl_5_2015-10-2018-11"   # a stem, or a category prefix ending in `*`
//!
//! [[run]]
//! id = "sft"
//! kind = "sft"
//! config = "experiments/sft/cds-latentr3-{scale}.toml"
//!
//! [[run]]
//! id = "grpo"
//! kind = "grpo"
//! from = "sft"
//! config = "experiments/grpo/cds-lrgrpo-{scale}.toml"
//!
//! [[run]]
//! id = "test"
//! kind = "eval"
//! from = "grpo"
//!
//! [report]
//! run = "test"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
pub use r3_runs::eval::Decoding;
use serde::{Deserialize, Serialize};

mod validate;

/// The folders of `experiments/` that hold the training commands' run configurations, not manifests.
pub const CONFIG_FOLDERS: [&str; 3] = ["sft", "grpo", "baselines"];

/// A reproduction scale: `smoke` checks the pipeline in minutes on a CPU, `quick` is a reduced setting that 2
/// cores finish in hours (a subset of the train rows, 500 test users: too few to separate the methods), `cpu` the
/// powered setting for 2 cores (every train row, an LR-GRPO learning-rate sweep, every test user: about a day),
/// `paper` has the paper's hyper-parameters (for a GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Minutes on 2 CPU cores.
    Smoke,
    /// Hours on 2 CPU cores (the `cpu` scale before the powered one existed).
    Quick,
    /// About a day on 2 CPU cores, with statistical power (docs/reproduce.md).
    Cpu,
    /// The paper's hyper-parameters.
    Paper,
}

impl Scale {
    /// Every scale, smallest first.
    pub const ALL: [Scale; 4] = [Scale::Smoke, Scale::Quick, Scale::Cpu, Scale::Paper];

    /// The scale's name as written in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Cpu => "cpu",
            Scale::Paper => "paper",
        }
    }

    /// Parses `smoke`, `quick`, `cpu` or `paper`.
    pub fn parse(s: &str) -> anyhow::Result<Scale> {
        Scale::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .with_context(|| format!("unknown scale `{s}`: expected smoke, quick, cpu or paper"))
    }

    /// Test users of an evaluation when the manifest does not say: 16 (smoke), 500 (quick), all (cpu, paper: 0).
    pub fn default_users(self) -> usize {
        match self {
            Scale::Smoke => 16,
            Scale::Quick => 500,
            Scale::Cpu | Scale::Paper => 0,
        }
    }

    /// Users per decoding batch when the manifest does not say: 8 (smoke, quick, cpu), 16 (paper, a GPU).
    pub fn default_batch(self) -> usize {
        match self {
            Scale::Smoke | Scale::Quick | Scale::Cpu => 8,
            Scale::Paper => 16,
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A whole manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The paper cell and the paper's values.
    pub paper: PaperCell,
    /// The dataset and the conditions of the experiment.
    pub experiment: ExperimentInfo,
    /// The runs, in an order where every `from` names an earlier run.
    #[serde(default, rename = "run")]
    pub runs: Vec<RunSpec>,
    /// What the result file reports.
    pub report: ReportSpec,
}

/// `[paper]`: the cell this experiment reproduces (the same block as the run configurations', docs/conventions.md §4), with
/// every value the paper gives for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperCell {
    /// (str) The table or figure: `table1`, `ablation`, `popularity`, `reasoning-length`, `grpo-vs-lrgrpo`,
    /// `inference-time`, `backbone-scale`.
    pub table: String,
    /// (str) The row (method or variant), e.g. `BIGRec+LatentR3`.
    pub row: String,
    /// (str) The column: the dataset's short name, e.g. `CDs`.
    pub column: String,
    /// (str) Where the paper's values come from.
    pub source: String,
    /// (str) What differs from the paper's setting.
    #[serde(default)]
    pub note: String,
    /// (table) The paper's values by metric name (`H@5`, `N@10`, ...); metrics the paper does not give are absent.
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
}

/// `[experiment]`: the dataset and the conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentInfo {
    /// (str) The dataset: a file stem (`CDs_and_Vinyl_5_2015-10-2018-11`) or a category prefix ending in `*`
    /// (`Toys_and_Games_5_*`), matched against `info/*.txt` of the data folder. Every SFT and GRPO run gets
    /// `data.stem` set to it.
    pub dataset: String,
    /// (list) The scales this experiment is defined for; empty = all four.
    #[serde(default)]
    pub scales: Vec<Scale>,
    /// (float) The experiment's position on its figure's x axis (the number of latent tokens N, ...).
    #[serde(default)]
    pub x: Option<f64>,
}

/// The kind of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `latentr3 train sft --config FILE`.
    Sft,
    /// `latentr3 train grpo --config FILE` from the model folder of the `from` run.
    Grpo,
    /// `latentr3 eval`: of the `from` run's model folder, or of the untuned `model`.
    Eval,
    /// `latentr3 baseline train` (Caser, GRU4Rec, SASRec, AlphaRec): trains with early stopping and evaluates the
    /// test split into `test/`.
    Baseline,
}

impl RunKind {
    /// The kind's name (also the run store's sub-folder).
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Sft => "sft",
            RunKind::Grpo => "grpo",
            RunKind::Eval => "eval",
            RunKind::Baseline => "baseline",
        }
    }
}

/// `[[run]]`: one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// (str) The run's name inside the manifest (`from` and `report.run` refer to it).
    pub id: String,
    /// (str) `sft`, `grpo`, `eval` or `baseline`.
    pub kind: Option<RunKind>,
    /// (str) sft, grpo: the run configuration; baseline: the experiment file of `latentr3 baseline train
    /// --config` (optional). `{scale}` is replaced by the scale's name.
    #[serde(default)]
    pub config: Option<String>,
    /// (list) sft, grpo: `key=value` overrides of the configuration at every scale.
    #[serde(default)]
    pub set: Vec<String>,
    /// (str) grpo: the SFT run it starts from; eval: the run whose model folder is evaluated.
    #[serde(default)]
    pub from: Option<String>,
    /// (str) eval: an untuned model id (the "Base" row; exclusive with `from`); baseline: `sasrec`, `gru4rec`,
    /// `caser` or `alpharec`.
    #[serde(default)]
    pub model: Option<String>,
    /// (str) eval: `bigrec` (default) or `d3`.
    #[serde(default)]
    pub decoding: Decoding,
    /// (table) eval with `decoding = "d3"`: D3's assistant guidance, `{ assistant = "<run id>", scale = S }`.
    #[serde(default)]
    pub guidance: Option<GuidanceSpec>,
    /// (list) eval, baseline: extra command-line arguments at every scale.
    #[serde(default)]
    pub args: Vec<String>,
    /// (list) Commands or flags of `latentr3` this run needs (`baseline`, `eval --cot-tokens`): while the binary
    /// lacks one, the run and everything after it are reported "not runnable".
    #[serde(default)]
    pub requires: Vec<String>,
    /// `[run.smoke]`: settings of the smoke scale.
    #[serde(default)]
    pub smoke: ScaleSpec,
    /// `[run.quick]`: settings of the quick scale.
    #[serde(default)]
    pub quick: ScaleSpec,
    /// `[run.cpu]`: settings of the cpu scale.
    #[serde(default)]
    pub cpu: ScaleSpec,
    /// `[run.paper]`: settings of the paper scale.
    #[serde(default)]
    pub paper: ScaleSpec,
}

/// `guidance = { assistant, scale }` of a D3 evaluation (`latentr3 eval --assistant RUN/model --guidance-scale S`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceSpec {
    /// (str) The id of an earlier baseline run (SASRec in D3) whose model guides the beam search.
    pub assistant: String,
    /// (float) D3's guidance scale: 1 = the LLM alone, 0 = the assistant alone.
    pub scale: f32,
}

/// `[run.<scale>]`: what changes at one scale.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSpec {
    /// (list) More `key=value` overrides (after the run's `set`).
    #[serde(default)]
    pub set: Vec<String>,
    /// (list) More command-line arguments (after the run's `args`).
    #[serde(default)]
    pub args: Vec<String>,
    /// (str) Replaces the run's `model` (the Base backbone of the scale).
    #[serde(default)]
    pub model: Option<String>,
    /// (int) eval: the seeded subset of test users (`--limit`); 0 = all. Default [`Scale::default_users`].
    #[serde(default)]
    pub users: Option<usize>,
    /// (int) eval: users per decoding batch. Default [`Scale::default_batch`].
    #[serde(default)]
    pub batch: Option<usize>,
    /// (table) sft, grpo: a sweep of one setting picked on validation before the run (the official learning-rate
    /// sweep of LR-GRPO): `{ key = "train.lr", values = ["1e-5", "5e-5"], set = ["data.sample=512"] }`.
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
}

/// `sweep = { key, values, set }`: one run per value (with `set` besides: fewer prompts, fewer validation users),
/// each a run of its own (key, folder) named `<id>@<key>=<value>`; the run itself then gets the value whose run
/// had the best validation metric (`summary.json`'s `best_metric`; a tie goes to the value listed first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// (str) The configuration key swept (`train.lr`).
    pub key: String,
    /// (list) Its values, as TOML literals (`"1e-5"`).
    pub values: Vec<String>,
    /// (list) More `key=value` overrides of the sweep's runs only.
    #[serde(default)]
    pub set: Vec<String>,
}

impl RunSpec {
    /// The kind (checked present by [`Manifest::validate`]).
    pub fn kind(&self) -> RunKind {
        self.kind.unwrap_or(RunKind::Eval)
    }

    /// The settings of `scale`.
    pub fn at(&self, scale: Scale) -> &ScaleSpec {
        match scale {
            Scale::Smoke => &self.smoke,
            Scale::Quick => &self.quick,
            Scale::Cpu => &self.cpu,
            Scale::Paper => &self.paper,
        }
    }
}

/// What the result file reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// HR@K / NDCG@K of the `run` evaluation, with bootstrap intervals over users.
    #[default]
    Metrics,
    /// The relative gain of `run` over `baseline` on popular and unpopular target items (paired bootstrap).
    PopularityGain,
    /// The per-user inference time of `run` (mean with a bootstrap interval, median), and its metrics.
    Latency,
    /// The metrics of `run` and the training cost and curves (reward, validation NDCG against wall time) of
    /// the `train` GRPO run.
    Training,
}

/// `[report]`: what goes into `results/<experiment>/<scale>.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// (str) `metrics` (default), `popularity_gain`, `latency` or `training`.
    #[serde(default)]
    pub kind: ReportKind,
    /// (str) The evaluation run whose numbers are reported.
    pub run: String,
    /// (str) popularity_gain: the evaluation run the gain is measured against.
    #[serde(default)]
    pub baseline: Option<String>,
    /// (str) training: the GRPO run whose cost and curves are reported.
    #[serde(default)]
    pub train: Option<String>,
    /// (list) The metrics: `H@K` and `N@K`. Default H@5, N@5, H@10, N@10 (popularity_gain: H@10, N@10).
    #[serde(default)]
    pub metrics: Vec<String>,
    /// (list) The reference rows: experiments on the same dataset (`table1/cds-bigrec`) whose report evaluation
    /// this one is compared with, user by user (the paired difference and relative gain of every metric, on all
    /// users and per popularity bucket, with paired-bootstrap intervals; `docs/results.md`'s "Δ vs" column).
    #[serde(default)]
    pub compare: Vec<String>,
}

impl ReportSpec {
    /// The metrics reported, with the defaults applied.
    pub fn metric_names(&self) -> Vec<String> {
        if !self.metrics.is_empty() {
            return self.metrics.clone();
        }
        let names: &[&str] = match self.kind {
            ReportKind::PopularityGain => &["H@10", "N@10"],
            _ => &["H@5", "N@5", "H@10", "N@10"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }
}

/// A metric name `H@K` (hit ratio) or `N@K` (NDCG): `(is_ndcg, K)`.
pub fn parse_metric(name: &str) -> anyhow::Result<(bool, usize)> {
    let (kind, k) = name.split_once('@').with_context(|| format!("metric `{name}`: expected H@K or N@K"))?;
    let ndcg = match kind {
        "H" | "HR" => false,
        "N" | "NDCG" => true,
        _ => bail!("metric `{name}`: expected H@K or N@K"),
    };
    let k: usize = k.parse().ok().filter(|&k| k > 0).with_context(|| format!("metric `{name}`: K must be ≥ 1"))?;
    Ok((ndcg, k))
}

impl Manifest {
    /// Parses manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Manifest> {
        let m: Manifest = toml::from_str(text).with_context(|| format!("{origin}: not a valid experiment manifest"))?;
        m.validate().with_context(|| format!("{origin}: invalid experiment manifest"))?;
        Ok(m)
    }

    /// Reads and parses a manifest file.
    pub fn read(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// The scales the experiment is defined for.
    pub fn scales(&self) -> Vec<Scale> {
        if self.experiment.scales.is_empty() { Scale::ALL.to_vec() } else { self.experiment.scales.clone() }
    }

    /// The run named `id`.
    pub fn run(&self, id: &str) -> Option<&RunSpec> {
        self.runs.iter().find(|r| r.id == id)
    }
}

impl Manifest {
    /// The configuration files of the SFT and GRPO runs at every scale of the experiment that do not exist under
    /// `root` (as `run <id>: <path> (scale)` lines).
    pub fn missing_configs(&self, root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for scale in self.scales() {
            for r in &self.runs {
                if let Some(c) = &r.config {
                    let rel = c.replace("{scale}", scale.name());
                    if !root.join(&rel).is_file() {
                        out.push(format!("run `{}`: {rel} ({scale} scale) does not exist", r.id));
                    }
                }
            }
        }
        out
    }
}

/// A manifest found under `experiments/`, with its name (`table1/cds-latentr3`: the path without the extension).
#[derive(Clone, Debug)]
pub struct Experiment {
    /// The name used on the command line and in `results/<name>/`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
}

/// Whether a file under `experiments/` (`rel`, relative to it) is a manifest rather than a run configuration.
pub fn is_manifest_path(rel: &Path) -> bool {
    let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned());
    rel.extension().is_some_and(|e| e == "toml")
        && rel.components().count() > 1
        && !first.is_some_and(|f| CONFIG_FOLDERS.contains(&f.as_str()))
}

/// Every manifest under `root/experiments`, sorted by name.
pub fn discover(root: &Path) -> anyhow::Result<Vec<Experiment>> {
    let base = root.join("experiments");
    let mut out = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&base).unwrap_or(&path).to_path_buf();
            if !is_manifest_path(&rel) {
                continue;
            }
            let name = rel.with_extension("").to_string_lossy().replace('\\', "/");
            out.push(Experiment { name, manifest: Manifest::read(&path)?, path });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    check_references(&out)?;
    Ok(out)
}

/// Every `[report] compare` names another experiment on the same dataset.
pub fn check_references(all: &[Experiment]) -> anyhow::Result<()> {
    for e in all {
        for c in &e.manifest.report.compare {
            let Some(r) = all.iter().find(|x| &x.name == c) else {
                bail!("{}: [report] compare names `{c}`, which is no experiment under experiments/", e.path.display())
            };
            if r.name == e.name || r.manifest.experiment.dataset != e.manifest.experiment.dataset {
                bail!(
                    "{}: [report] compare names `{c}`: a reference is another experiment on the same dataset ({})",
                    e.path.display(),
                    e.manifest.experiment.dataset
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
