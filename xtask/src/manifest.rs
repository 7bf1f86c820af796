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
//! source = "PAPER.md §6, Table 1"
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

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The folders of `experiments/` that hold the training commands' run configurations, not manifests.
pub const CONFIG_FOLDERS: [&str; 3] = ["sft", "grpo", "baselines"];

/// A reproduction scale (issue 7): `smoke` checks the pipeline in minutes on a CPU, `cpu` is a documented reduced
/// setting that 2 cores finish in hours, `paper` has the paper's hyper-parameters (for a GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Minutes on 2 CPU cores.
    Smoke,
    /// Hours on 2 CPU cores.
    Cpu,
    /// The paper's hyper-parameters.
    Paper,
}

impl Scale {
    /// Every scale, smallest first.
    pub const ALL: [Scale; 3] = [Scale::Smoke, Scale::Cpu, Scale::Paper];

    /// The scale's name as written in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Cpu => "cpu",
            Scale::Paper => "paper",
        }
    }

    /// Parses `smoke`, `cpu` or `paper`.
    pub fn parse(s: &str) -> anyhow::Result<Scale> {
        Scale::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .with_context(|| format!("unknown scale `{s}`: expected smoke, cpu or paper"))
    }

    /// Test users of an evaluation when the manifest does not say: 16 (smoke), 500 (cpu), all (paper, 0).
    pub fn default_users(self) -> usize {
        match self {
            Scale::Smoke => 16,
            Scale::Cpu => 500,
            Scale::Paper => 0,
        }
    }

    /// Users per decoding batch when the manifest does not say: 8 (smoke, cpu), 16 (paper, a GPU).
    pub fn default_batch(self) -> usize {
        match self {
            Scale::Smoke | Scale::Cpu => 8,
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

/// `[paper]`: the cell this experiment reproduces (the same block as the run configurations', STYLE.md §4), with
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
    /// (list) The scales this experiment is defined for; empty = all three.
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

/// The decoding of an evaluation (`latentr3 eval --decoding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// BIGRec: length penalty 1.
    #[default]
    Bigrec,
    /// D3: length penalty 0.
    D3,
}

impl Decoding {
    /// The CLI value.
    pub fn name(self) -> &'static str {
        match self {
            Decoding::Bigrec => "bigrec",
            Decoding::D3 => "d3",
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

    /// Checks the references and the per-kind keys, naming the run and the fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.paper.table.is_empty() || self.paper.row.is_empty() || self.paper.column.is_empty() {
            bail!("[paper]: `table`, `row` and `column` must be set");
        }
        if self.experiment.dataset.is_empty() {
            bail!("[experiment]: `dataset` must name a stem or a category prefix ending in `*`");
        }
        for name in self.paper.values.keys() {
            parse_metric(name).with_context(|| "[paper] values")?;
        }
        let mut seen = HashSet::new();
        for r in &self.runs {
            let what = format!("[[run]] `{}`", r.id);
            if r.id.is_empty() {
                bail!("a [[run]] has no `id`");
            }
            let Some(kind) = r.kind else { bail!("{what}: `kind` must be sft, grpo, eval or baseline") };
            let from = match &r.from {
                Some(f) if !seen.contains(f.as_str()) => {
                    bail!("{what}: `from = \"{f}\"` names no earlier run (list the runs in the order they run)")
                }
                Some(f) => self.run(f).map(RunSpec::kind),
                None => None,
            };
            match kind {
                RunKind::Sft | RunKind::Grpo => {
                    if r.config.is_none() {
                        bail!("{what}: a {} run needs `config` (a run configuration file)", kind.name());
                    }
                    if r.model.is_some()
                        || r.args.iter().chain(Scale::ALL.iter().flat_map(|s| &r.at(*s).args)).count() > 0
                    {
                        bail!("{what}: `model` and `args` are for eval and baseline runs; use `set` overrides");
                    }
                }
                RunKind::Eval => {
                    if r.config.is_some() || !r.set.is_empty() {
                        bail!("{what}: `config` and `set` are for sft, grpo (and baseline: `config`) runs");
                    }
                }
                RunKind::Baseline => {
                    if !r.set.is_empty() || Scale::ALL.iter().any(|s| !r.at(*s).set.is_empty()) {
                        bail!("{what}: `latentr3 baseline train` has no --set; use `args`");
                    }
                }
            }
            match kind {
                RunKind::Sft if r.from.is_some() => bail!("{what}: an sft run starts from `model.id`, not `from`"),
                RunKind::Grpo if from != Some(RunKind::Sft) => {
                    bail!("{what}: a grpo run needs `from` = the id of an sft run")
                }
                RunKind::Eval => {
                    let untuned = r.model.is_some() || Scale::ALL.iter().any(|s| r.at(*s).model.is_some());
                    match (from, untuned) {
                        (Some(RunKind::Sft | RunKind::Grpo), false) | (None, true) => {}
                        _ => bail!(
                            "{what}: an eval run needs either `from` (an sft or grpo run) or `model` (an untuned model)"
                        ),
                    }
                }
                RunKind::Baseline if r.model.is_none() && r.config.is_none() => {
                    bail!("{what}: a baseline run needs `model` (sasrec, gru4rec, caser, alpharec) or `config`")
                }
                _ => {}
            }
            if let Some(GuidanceSpec { assistant: a, scale }) = &r.guidance {
                if kind != RunKind::Eval || r.decoding != Decoding::D3 {
                    bail!("{what}: `guidance` steers D3's decoding: only an eval run with `decoding = \"d3\"` has one")
                }
                if !seen.contains(a.as_str()) || self.run(a).map(RunSpec::kind) != Some(RunKind::Baseline) {
                    bail!(
                        "{what}: `assistant = \"{a}\"` names no earlier baseline run (list the assistant's run first)"
                    )
                }
                if !scale.is_finite() {
                    bail!("{what}: the guidance `scale` must be a finite number");
                }
            }
            if !seen.insert(r.id.as_str()) {
                bail!("{what}: two runs share this id");
            }
        }
        let rep = &self.report;
        let is_eval = |id: &str| self.run(id).is_some_and(|r| matches!(r.kind(), RunKind::Eval | RunKind::Baseline));
        if !is_eval(&rep.run) {
            bail!("[report]: `run = \"{}\"` must name an eval or baseline run", rep.run);
        }
        match rep.kind {
            ReportKind::PopularityGain => match &rep.baseline {
                Some(b) if is_eval(b) => {}
                _ => bail!("[report]: a popularity_gain report needs `baseline` = the id of another eval run"),
            },
            ReportKind::Training => match &rep.train {
                Some(t) if self.run(t).is_some_and(|r| r.kind() == RunKind::Grpo) => {}
                _ => bail!("[report]: a training report needs `train` = the id of a grpo run"),
            },
            _ => {}
        }
        for m in rep.metric_names() {
            parse_metric(&m).with_context(|| "[report] metrics")?;
        }
        Ok(())
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: &str = r#"
[paper]
table = "table1"
row = "BIGRec+LatentR3"
column = "CDs"
source = "PAPER.md §6"
values = { "H@5" = 0.0934 }

[experiment]
dataset = "CDs_and_Vinyl_5_2015-10-2018-11"

[[run]]
id = "sft"
kind = "sft"
config = "experiments/sft/cds-latentr3-{scale}.toml"

[[run]]
id = "grpo"
kind = "grpo"
from = "sft"
config = "experiments/grpo/cds-lrgrpo-{scale}.toml"
cpu = { set = ["train.lr=5e-5"] }

[[run]]
id = "test"
kind = "eval"
from = "grpo"
decoding = "d3"
smoke = { users = 4, batch = 2 }

[report]
run = "test"
"#;

    #[test]
    fn a_chain_parses_with_its_scales_and_defaults() {
        let m = Manifest::parse(CHAIN, "chain").unwrap();
        assert_eq!(m.runs.len(), 3);
        assert_eq!(m.paper.values.get("H@5"), Some(&0.0934));
        assert_eq!(m.scales(), Scale::ALL.to_vec());
        let grpo = m.run("grpo").unwrap();
        assert_eq!((grpo.kind(), grpo.from.as_deref()), (RunKind::Grpo, Some("sft")));
        assert_eq!(grpo.at(Scale::Cpu).set, vec!["train.lr=5e-5".to_string()]);
        assert!(grpo.at(Scale::Smoke).set.is_empty());
        let test = m.run("test").unwrap();
        assert_eq!(
            (test.decoding, test.at(Scale::Smoke).users, test.at(Scale::Paper).users),
            (Decoding::D3, Some(4), None)
        );
        assert_eq!(m.report.kind, ReportKind::Metrics);
        assert_eq!(m.report.metric_names(), ["H@5", "N@5", "H@10", "N@10"]);
    }

    fn err(text: &str) -> String {
        format!("{:#}", Manifest::parse(text, "m.toml").unwrap_err())
    }

    #[test]
    fn unknown_keys_and_broken_references_are_errors_that_name_them() {
        let e = err(&CHAIN.replace("decoding = \"d3\"", "decodng = \"d3\""));
        assert!(e.contains("m.toml") && e.contains("decodng"), "{e}");
        let e = err(&CHAIN.replace("[experiment]", "[experiment]\nseed = 3"));
        assert!(e.contains("seed"), "{e}");
        let e = err(&CHAIN.replace("cpu = { set", "cpu = { sets"));
        assert!(e.contains("sets"), "{e}");
        // `from` must name an earlier run.
        let e = err(&CHAIN.replace("from = \"sft\"", "from = \"warmup\""));
        assert!(e.contains("`from = \"warmup\"` names no earlier run"), "{e}");
        // A grpo run starts from an sft run.
        let e = err(&CHAIN.replace("from = \"sft\"\n", ""));
        assert!(e.contains("a grpo run needs `from`"), "{e}");
        // An eval needs a model.
        let e = err(&CHAIN.replace("from = \"grpo\"\n", ""));
        assert!(e.contains("`from` (an sft or grpo run) or `model`"), "{e}");
        // The report names an evaluation.
        let e = err(&CHAIN.replace("run = \"test\"", "run = \"grpo\""));
        assert!(e.contains("must name an eval or baseline run"), "{e}");
        // Metrics are H@K or N@K.
        let e = err(&CHAIN.replace("\"H@5\" = 0.0934", "\"MRR\" = 0.1"));
        assert!(e.contains("MRR"), "{e}");
        let e = err(&CHAIN.replace("[report]\nrun = \"test\"", "[report]\nrun = \"test\"\nkind = \"popularity_gain\""));
        assert!(e.contains("needs `baseline`"), "{e}");
        let e = err(&CHAIN.replace("kind = \"sft\"\n", "kind = \"sft\"\nmodel = \"x\"\n"));
        assert!(e.contains("`model` and `args` are for eval and baseline runs"), "{e}");
    }

    #[test]
    fn d3_guidance_names_an_earlier_baseline_run_and_a_scale() {
        let assistant =
            "[[run]]\nid = \"assistant\"\nkind = \"baseline\"\nmodel = \"sasrec\"\n\n[[run]]\nid = \"test\"";
        let guided = CHAIN.replace("[[run]]\nid = \"test\"", assistant).replace(
            "decoding = \"d3\"\n",
            "decoding = \"d3\"\nguidance = { assistant = \"assistant\", scale = 0.5 }\n",
        );
        let m = Manifest::parse(&guided, "m.toml").unwrap();
        let spec = GuidanceSpec { assistant: "assistant".into(), scale: 0.5 };
        assert_eq!(m.run("test").unwrap().guidance.as_ref(), Some(&spec));
        // Both keys are required, the scale is finite.
        let e = err(&guided.replace(", scale = 0.5", ""));
        assert!(e.contains("scale"), "{e}");
        let e = err(&guided.replace("assistant = \"assistant\", ", ""));
        assert!(e.contains("assistant"), "{e}");
        let e = err(&guided.replace("scale = 0.5", "scale = nan"));
        assert!(e.contains("finite"), "{e}");
        // Only D3's decoding is guided.
        let e = err(&guided.replace("decoding = \"d3\"", "decoding = \"bigrec\""));
        assert!(e.contains("only an eval run with `decoding = \"d3\"`"), "{e}");
        // The assistant is an earlier baseline run.
        let e = err(&guided.replace("assistant = \"assistant\",", "assistant = \"grpo\","));
        assert!(e.contains("`assistant = \"grpo\"` names no earlier baseline run"), "{e}");
        let e = err(&guided.replace("assistant = \"assistant\",", "assistant = \"sasrec\","));
        assert!(e.contains("`assistant = \"sasrec\"` names no earlier baseline run"), "{e}");
    }

    #[test]
    fn metric_names_parse() {
        assert_eq!(parse_metric("H@10").unwrap(), (false, 10));
        assert_eq!(parse_metric("N@5").unwrap(), (true, 5));
        assert_eq!(parse_metric("NDCG@20").unwrap(), (true, 20));
        assert!(parse_metric("H@0").is_err());
        assert!(parse_metric("H5").is_err());
    }

    #[test]
    fn manifests_and_run_configurations_are_told_apart() {
        assert!(is_manifest_path(Path::new("table1/cds-bigrec.toml")));
        assert!(!is_manifest_path(Path::new("sft/cds-bigrec-cpu.toml")));
        assert!(!is_manifest_path(Path::new("grpo/cds-lrgrpo-smoke.toml")));
        assert!(!is_manifest_path(Path::new("baselines/cds-sasrec.toml")));
        assert!(!is_manifest_path(Path::new("README.md")));
        assert!(!is_manifest_path(Path::new("top.toml")));
    }

    /// Every table and figure of the issue has its experiment files, and every manifest of the repository parses
    /// and names configuration files that exist.
    #[test]
    fn the_repository_covers_every_table_and_figure() {
        let root = crate::project_root();
        let all = discover(&root).unwrap();
        let cells = |table: &str, column: &str| -> Vec<String> {
            let mut v: Vec<String> = all
                .iter()
                .filter(|e| e.manifest.paper.table == table && e.manifest.paper.column == column)
                .map(|e| e.manifest.paper.row.clone())
                .collect();
            v.sort();
            v
        };
        let table1 =
            ["AlphaRec", "BIGRec", "BIGRec+LatentR3", "Base", "Caser", "CoT", "D3", "D3+LatentR3", "GRU4Rec", "SASRec"];
        for column in ["CDs", "Industrial", "Toys", "Games", "Instruments"] {
            assert_eq!(cells("table1", column), table1, "{column}");
        }
        let ablation = ["full", "w/o LatentRATT", "w/o RL", "w/o batch advantage", "w/o reasoning"];
        for column in ["CDs", "Toys"] {
            assert_eq!(cells("ablation", column), ablation, "{column}");
        }
        assert_eq!(cells("popularity", "CDs").len(), 1);
        assert_eq!(cells("reasoning-length", "CDs"), ["N=1", "N=2", "N=3", "N=4"]);
        assert_eq!(cells("grpo-vs-lrgrpo", "CDs"), ["LR-GRPO", "original GRPO"]);
        assert_eq!(
            cells("inference-time", "CDs"),
            ["BIGRec", "BIGRec+LatentR3", "CoT 128 tokens", "CoT 256 tokens", "CoT 64 tokens"]
        );
        assert_eq!(cells("backbone-scale", "CDs"), ["Qwen2.5-Coder-0.5B", "Qwen2.5-Coder-1.5B", "SmolLM2-135M"]);
        for e in &all {
            assert!(
                e.manifest.missing_configs(&root).is_empty(),
                "{}: {:?}",
                e.name,
                e.manifest.missing_configs(&root)
            );
        }
        // The paper's Table 1 values are carried: CDs H@5 of BIGRec+LatentR³.
        let cds = all.iter().find(|e| e.name == "table1/cds-bigrec-latentr3").unwrap();
        assert_eq!(cds.manifest.paper.values.get("H@5"), Some(&0.0934));
    }
}
