//! From a manifest at one scale to concrete runs: each run's resolved configuration, its key (a hash of that
//! configuration, of its upstream run's key and of the device), its folder `<runs>/reproduce/<kind>/<key>/` and the
//! `latentr3` arguments that produce it.
//!
//! The resolved configuration of an SFT or GRPO run is its configuration file (with `{scale}` replaced) as a TOML
//! tree, with the manifest's overrides, the scale's overrides and `data.stem` applied in that order, the way
//! `latentr3 train --set` applies them; `[paper]` (documentation), `[run]` (the folder, set by the driver) and a
//! GRPO run's `model.checkpoint` (replaced by the upstream run's key) are left out. Defaults of keys the file does
//! not set are not part of the key: a change of a default in the code does not re-run anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use r3_runs::{apply_overrides, toml_string};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, RunKind, RunSpec, Scale};

/// Hex digits of a run key.
pub const KEY_LEN: usize = 16;

/// Where a manifest's runs go and what they run on.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The repository root (config paths are relative to it).
    pub root: PathBuf,
    /// The data folder (`--data`).
    pub data_dir: PathBuf,
    /// The scale.
    pub scale: Scale,
    /// The `--device` value (`flex`, `cuda`, `wgpu:1`, ...).
    pub device: String,
    /// The folder of the run store (`--runs`): runs go to `<runs>/reproduce/<kind>/<key>/`.
    pub runs: PathBuf,
}

/// One run, ready to execute.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// The run's id in the manifest.
    pub id: String,
    /// Its kind.
    pub kind: RunKind,
    /// The hash of `resolved`.
    pub key: String,
    /// The run folder.
    pub dir: PathBuf,
    /// What the key hashes: kind, configuration, upstream key, device.
    pub resolved: Value,
    /// `latentr3` arguments of a fresh start.
    pub commands: Vec<Vec<String>>,
    /// `latentr3` arguments that continue a killed run (sft, grpo: `--resume DIR`).
    pub resume: Option<Vec<String>>,
    /// The run's `requires`.
    pub requires: Vec<String>,
    /// Evaluated users (eval runs; 0 = all).
    pub users: usize,
    /// A setting picked on validation from the runs of a sweep before this run starts.
    pub pick: Option<Pick>,
}

/// The value of `key` a run takes from its sweep: that of the sweep run with the best validation metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    /// The configuration key (`train.lr`).
    pub key: String,
    /// Each value with its sweep run's folder, in the order of the manifest.
    pub candidates: Vec<(String, PathBuf)>,
}

impl Pick {
    /// The `--set` argument standing for the pick in the commands until the sweep is done.
    pub fn placeholder(&self) -> String {
        placeholder(&self.key)
    }
}

/// `key=<best of the sweep on validation>`.
fn placeholder(key: &str) -> String {
    format!("{key}=<best of the sweep on validation>")
}

/// A JSON value written with sorted keys and no spaces: the canonical text the keys hash.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", Value::String((*k).clone()), canonical_json(&map[*k]))).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The first [`KEY_LEN`] hex digits of the SHA-256 of the canonical JSON of `resolved`.
pub fn run_key(resolved: &Value) -> String {
    let digest = Sha256::digest(canonical_json(resolved).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..KEY_LEN].to_string()
}

/// The dataset stem of `dataset` in `data_dir`: the stem itself when `info/<stem>.txt` exists, the one stem whose
/// name starts with the prefix of `Prefix_*`; `None` when the data folder lacks it.
pub fn resolve_dataset(data_dir: &Path, dataset: &str) -> anyhow::Result<Option<String>> {
    let info = data_dir.join("info");
    if let Some(prefix) = dataset.strip_suffix('*') {
        let Ok(entries) = std::fs::read_dir(&info) else { return Ok(None) };
        let mut stems: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".txt")).map(str::to_string))
            .filter(|s| s.starts_with(prefix))
            .collect();
        stems.sort();
        return match stems.len() {
            0 => Ok(None),
            1 => Ok(stems.pop()),
            _ => bail!("`{dataset}` matches several datasets in {}: {stems:?}; name the stem", info.display()),
        };
    }
    Ok(info.join(format!("{dataset}.txt")).is_file().then(|| dataset.to_string()))
}

/// The resolved configuration of an SFT or GRPO run (see the module docs).
pub fn resolve_config(
    root: &Path,
    run: &RunSpec,
    scale: Scale,
    stem: &str,
) -> anyhow::Result<(PathBuf, Vec<String>, Value)> {
    let rel = run.config.as_deref().context("sft and grpo runs have a `config`")?.replace("{scale}", scale.name());
    let path = root.join(&rel);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("run `{}`: reading its configuration {} (scale {scale})", run.id, path.display()))?;
    let mut tree: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut overrides: Vec<String> = run.set.iter().chain(&run.at(scale).set).cloned().collect();
    overrides.push(format!("data.stem={}", toml_string(stem)));
    apply_overrides(&mut tree, &overrides).with_context(|| format!("run `{}`", run.id))?;
    tree.remove("paper");
    tree.remove("run");
    if let Some(toml::Value::Table(m)) = tree.get_mut("model")
        && run.kind() == RunKind::Grpo
    {
        m.remove("checkpoint");
    }
    Ok((path, overrides, serde_json::to_value(&tree)?))
}

/// What planning one run gives: the resolved configuration its key hashes, the commands of a fresh start, the
/// commands that continue it, the users of an evaluation.
struct Planned {
    resolved: Value,
    commands: Vec<Vec<String>>,
    resume: Option<Vec<String>>,
    users: usize,
}

/// The context of one run: the setting, the dataset, the runs planned before it.
struct Ctx<'a> {
    setting: &'a Setting,
    stem: &'a str,
    earlier: &'a [PlannedRun],
    /// The sweep that picks a setting of this run: its key and the keys of its runs.
    sweep: Option<(&'a str, Vec<String>)>,
}

impl Ctx<'_> {
    fn earlier(&self, id: &str) -> Option<&PlannedRun> {
        self.earlier.iter().find(|p| p.id == id)
    }

    /// The folder of the run with the resolved configuration `resolved`.
    fn dir(&self, kind: RunKind, resolved: &Value) -> PathBuf {
        self.setting.runs.join("reproduce").join(kind.name()).join(run_key(resolved))
    }
}

/// An SFT or GRPO run: `latentr3 train <kind> --config FILE --set ...`, continued with `--resume DIR`.
fn plan_training(run: &RunSpec, ctx: &Ctx<'_>) -> anyhow::Result<Planned> {
    let (kind, device) = (run.kind(), &ctx.setting.device);
    let upstream = run.from.as_deref().and_then(|id| ctx.earlier(id));
    let (path, overrides, config) = resolve_config(&ctx.setting.root, run, ctx.setting.scale, ctx.stem)?;
    let up = upstream.map(|u| u.key.clone());
    let mut resolved = json!({ "kind": kind.name(), "config": config, "from": up, "device": device });
    let mut overrides = overrides;
    if let Some((key, runs)) = &ctx.sweep {
        // The picked value is a function of the sweep's runs: their keys stand for it in this run's key.
        resolved["sweep"] = json!({ "key": key, "runs": runs });
        overrides.push(placeholder(key));
    }
    let dir = ctx.dir(kind, &resolved);
    let mut args: Vec<String> = vec!["train".into(), kind.name().into(), "--config".into(), path.display().to_string()];
    let mut sets = overrides;
    if let Some(u) = upstream {
        sets.push(format!("model.checkpoint={}", toml_string(&u.dir.join("model").display().to_string())));
    }
    sets.push(format!("run.output_dir={}", toml_string(&dir.display().to_string())));
    sets.push("run.timestamped=false".into());
    for s in sets {
        args.extend(["--set".into(), s]);
    }
    args.extend(["--device".into(), device.clone()]);
    let resume = ["train", kind.name(), "--resume", &dir.display().to_string(), "--device", device];
    let resume = resume.iter().map(|s| s.to_string()).collect();
    Ok(Planned { resolved, commands: vec![args], resume: Some(resume), users: 0 })
}

/// An evaluation: `latentr3 eval` of the upstream run's model or of an untuned model, guided by D3's assistant
/// when it has one.
fn plan_eval(run: &RunSpec, ctx: &Ctx<'_>) -> anyhow::Result<Planned> {
    let (scale, device) = (ctx.setting.scale, &ctx.setting.device);
    let upstream = run.from.as_deref().and_then(|id| ctx.earlier(id));
    let at = run.at(scale);
    let users = at.users.unwrap_or(scale.default_users());
    let batch = at.batch.unwrap_or(scale.default_batch());
    let model = at.model.clone().or_else(|| run.model.clone());
    let extra: Vec<String> = run.args.iter().chain(&at.args).cloned().collect();
    // D3's guidance: the assistant's planned run and the scale.
    let guidance = match &run.guidance {
        Some(g) => Some((
            ctx.earlier(&g.assistant)
                .with_context(|| format!("run `{}`: its assistant `{}` is not an earlier run", run.id, g.assistant))?,
            g.scale,
        )),
        None => None,
    };
    let mut resolved = json!({
        "kind": "eval",
        "from": upstream.map(|u| u.key.clone()),
        "model": model,
        "stem": ctx.stem,
        "split": "test",
        "users": users,
        "seed": 0,
        "decoding": run.decoding.name(),
        "batch": batch,
        "args": extra,
        "device": device,
    });
    // Only guided evaluations carry the guidance, so that the keys of the others stay as they were.
    if let Some((a, scale)) = &guidance {
        resolved["assistant"] = json!(a.key);
        resolved["guidance_scale"] = json!(scale);
    }
    let dir = ctx.dir(RunKind::Eval, &resolved);
    let mut args: Vec<String> = vec!["eval".into()];
    match (upstream, &model) {
        (Some(u), _) => args.extend(["--checkpoint".into(), u.dir.join("model").display().to_string()]),
        (None, Some(m)) => args.extend(["--model".into(), m.clone()]),
        (None, None) => bail!("run `{}`: an eval needs `from` or `model`", run.id),
    }
    args.extend(["--data".into(), ctx.setting.data_dir.display().to_string()]);
    args.extend(["--stem".into(), ctx.stem.into(), "--split".into(), "test".into()]);
    if users > 0 {
        args.extend(["--limit".into(), users.to_string()]);
    }
    args.extend(["--seed".into(), "0".into(), "--decoding".into(), run.decoding.name().into()]);
    args.extend(["--batch".into(), batch.to_string(), "--out".into(), dir.display().to_string()]);
    args.extend(["--device".into(), device.clone()]);
    if let Some((a, scale)) = &guidance {
        args.extend(["--assistant".into(), a.dir.join("model").display().to_string()]);
        args.extend(["--guidance-scale".into(), scale.to_string()]);
    }
    args.extend(extra);
    Ok(Planned { resolved, commands: vec![args], resume: None, users })
}

/// A traditional baseline: `latentr3 baseline train` with its experiment file or model.
fn plan_baseline(run: &RunSpec, ctx: &Ctx<'_>) -> anyhow::Result<Planned> {
    let (scale, device) = (ctx.setting.scale, &ctx.setting.device);
    let at = run.at(scale);
    let model = at.model.clone().or_else(|| run.model.clone());
    let extra: Vec<String> = run.args.iter().chain(&at.args).cloned().collect();
    let config = match &run.config {
        Some(c) => {
            let path = ctx.setting.root.join(c.replace("{scale}", scale.name()));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("run `{}`: reading its experiment file {}", run.id, path.display()))?;
            let mut tree: toml::Table =
                text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
            tree.remove("paper");
            Some((path, serde_json::to_value(&tree)?))
        }
        None => None,
    };
    let resolved = json!({
        "kind": "baseline",
        "model": model,
        "config": config.as_ref().map(|c| c.1.clone()),
        "stem": ctx.stem,
        "args": extra,
        "device": device,
    });
    let dir = ctx.dir(RunKind::Baseline, &resolved);
    let mut a: Vec<String> = vec!["baseline".into(), "train".into()];
    if let Some((path, _)) = &config {
        a.extend(["--config".into(), path.display().to_string()]);
    }
    if let Some(m) = &model {
        a.extend(["--model".into(), m.clone()]);
    }
    a.extend(["--data".into(), ctx.setting.data_dir.display().to_string(), "--stem".into(), ctx.stem.into()]);
    a.extend(["--out".into(), dir.display().to_string(), "--device".into(), device.clone()]);
    a.extend(extra);
    Ok(Planned { resolved, commands: vec![a], resume: None, users: 0 })
}

/// One run planned after `earlier`, picking the setting of `sweep` when it has one.
fn planned_run(
    run: &RunSpec,
    setting: &Setting,
    stem: &str,
    earlier: &[PlannedRun],
    sweep: Option<(&str, Vec<String>)>,
) -> anyhow::Result<PlannedRun> {
    let kind = run.kind();
    let ctx = Ctx { setting, stem, earlier, sweep };
    let p = match kind {
        RunKind::Sft | RunKind::Grpo => plan_training(run, &ctx)?,
        RunKind::Eval => plan_eval(run, &ctx)?,
        RunKind::Baseline => plan_baseline(run, &ctx)?,
    };
    let dir = ctx.dir(kind, &p.resolved);
    Ok(PlannedRun {
        id: run.id.clone(),
        kind,
        key: run_key(&p.resolved),
        dir,
        resolved: p.resolved,
        commands: p.commands,
        resume: p.resume,
        requires: run.requires.clone(),
        users: p.users,
        pick: None,
    })
}

/// The runs of `manifest` at `setting`'s scale, in order; `stem` is the resolved dataset. A run with a sweep at
/// the scale comes after its sweep's runs (`<id>@<key>=<value>`, each a run of its own).
pub fn plan(manifest: &Manifest, setting: &Setting, stem: &str) -> anyhow::Result<Vec<PlannedRun>> {
    let mut out: Vec<PlannedRun> = Vec::new();
    for run in &manifest.runs {
        let Some(sw) = &run.at(setting.scale).sweep else {
            let p = planned_run(run, setting, stem, &out, None)?;
            out.push(p);
            continue;
        };
        let (mut candidates, mut keys) = (Vec::new(), Vec::new());
        for v in &sw.values {
            let mut r = run.clone();
            r.id = format!("{}@{}={v}", run.id, sw.key);
            r.set.extend(sw.set.iter().cloned());
            r.set.push(format!("{}={v}", sw.key));
            let p = planned_run(&r, setting, stem, &out, None)?;
            candidates.push((v.clone(), p.dir.clone()));
            keys.push(p.key.clone());
            out.push(p);
        }
        let mut p = planned_run(run, setting, stem, &out, Some((&sw.key, keys)))?;
        p.pick = Some(Pick { key: sw.key.clone(), candidates });
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod scale_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Experiment, discover};

    fn setting(scale: Scale, device: &str) -> Setting {
        let root = crate::project_root();
        Setting { data_dir: root.join("data"), runs: root.join("runs"), root, scale, device: device.into() }
    }

    fn experiment(name: &str) -> Experiment {
        discover(&crate::project_root()).unwrap().into_iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#);
        assert_eq!(run_key(&a), run_key(&b));
        assert_eq!(run_key(&a).len(), KEY_LEN);
        assert_ne!(run_key(&a), run_key(&json!({"b": 2, "a": {"x": "s", "y": [1, {"c": 3, "d": 2}]}})));
    }

    #[test]
    fn run_keys_follow_the_resolved_configuration() {
        let s = setting(Scale::Smoke, "flex");
        let stem = "CDs_and_Vinyl_5_2015-10-2018-11";
        let bigrec = plan(&experiment("table1/cds-bigrec").manifest, &s, stem).unwrap();
        let d3 = plan(&experiment("table1/cds-d3").manifest, &s, stem).unwrap();
        let latent = plan(&experiment("table1/cds-bigrec-latentr3").manifest, &s, stem).unwrap();
        // BIGRec and D3 share the SFT run; their evaluations differ by the decoding.
        assert_eq!(bigrec[0].key, d3[0].key);
        assert_eq!(bigrec[0].dir, d3[0].dir);
        assert_ne!(bigrec[1].key, d3[1].key);
        assert_ne!(bigrec[0].key, latent[0].key);
        // Planning twice gives the same keys; another scale, device or dataset gives others.
        assert_eq!(plan(&experiment("table1/cds-bigrec").manifest, &s, stem).unwrap(), bigrec);
        let cpu = plan(&experiment("table1/cds-bigrec").manifest, &setting(Scale::Cpu, "flex"), stem).unwrap();
        assert_ne!(cpu[0].key, bigrec[0].key);
        let cuda = plan(&experiment("table1/cds-bigrec").manifest, &setting(Scale::Smoke, "cuda"), stem).unwrap();
        assert_ne!(cuda[0].key, bigrec[0].key);
        let ind =
            plan(&experiment("table1/industrial-bigrec").manifest, &s, "Industrial_and_Scientific_5_1996-10-2018-11")
                .unwrap();
        assert_ne!(ind[0].key, bigrec[0].key);
        // The GRPO key depends on its SFT run; the evaluation's on its GRPO run.
        assert_eq!(latent[1].resolved["from"], json!(latent[0].key));
        assert_eq!(latent[2].resolved["from"], json!(latent[1].key));
        // An ablation override changes the key of the run it touches only.
        let wo_adv = plan(&experiment("ablation/cds-wo-batch-adv").manifest, &s, stem).unwrap();
        assert_eq!(wo_adv[0].key, latent[0].key);
        assert_ne!(wo_adv[1].key, latent[1].key);
        assert_eq!(wo_adv[1].resolved["config"]["grpo"]["advantage"], json!("group"));
    }

    #[test]
    fn commands_carry_the_run_folder_the_stem_and_the_device() {
        let s = setting(Scale::Smoke, "cuda:1");
        let stem = "CDs_and_Vinyl_5_2015-10-2018-11";
        let runs = plan(&experiment("table1/cds-bigrec-latentr3").manifest, &s, stem).unwrap();
        let sft = runs[0].commands[0].join(" ");
        assert!(sft.starts_with("train sft --config "), "{sft}");
        assert!(sft.contains("cds-latentr3-smoke.toml"), "{sft}");
        assert!(sft.contains(&format!("--set run.output_dir=\"{}\"", runs[0].dir.display())), "{sft}");
        assert!(sft.contains("--set run.timestamped=false") && sft.ends_with("--device cuda:1"), "{sft}");
        let grpo = runs[1].commands[0].join(" ");
        assert!(
            grpo.contains(&format!("--set model.checkpoint=\"{}\"", runs[0].dir.join("model").display())),
            "{grpo}"
        );
        assert_eq!(runs[1].resume.as_ref().unwrap()[2], "--resume");
        let eval = runs[2].commands[0].join(" ");
        assert!(eval.contains(&format!("--checkpoint {}", runs[1].dir.join("model").display())), "{eval}");
        assert!(eval.contains("--limit 16 --seed 0 --decoding bigrec --batch 8"), "{eval}");
        assert!(runs[2].dir.starts_with(s.root.join("runs/reproduce/eval")));
        // The paper scale evaluates every user: no --limit.
        let paper = plan(&experiment("table1/cds-base").manifest, &setting(Scale::Paper, "cuda"), stem).unwrap();
        let eval = paper[0].commands[0].join(" ");
        assert!(!eval.contains("--limit") && eval.contains("--model qwen2.5-coder-1.5b"), "{eval}");
    }

    #[test]
    fn d3_evaluations_are_guided_by_the_sasrec_run_of_the_sasrec_row() {
        let s = setting(Scale::Cpu, "flex");
        let stem = "CDs_and_Vinyl_5_2015-10-2018-11";
        let sasrec = plan(&experiment("table1/cds-sasrec").manifest, &s, stem).unwrap();
        let d3 = plan(&experiment("table1/cds-d3").manifest, &s, stem).unwrap();
        let bigrec = plan(&experiment("table1/cds-bigrec").manifest, &s, stem).unwrap();
        let (assistant, test) = (&d3[1], &d3[2]);
        // The assistant is the SASRec row's own run: trained once, shared.
        assert_eq!((assistant.kind, &assistant.key), (RunKind::Baseline, &sasrec[0].key));
        let eval = test.commands[0].join(" ");
        let model = assistant.dir.join("model");
        assert!(eval.contains(&format!("--assistant {} --guidance-scale 0.5", model.display())), "{eval}");
        assert!(eval.contains("--decoding d3"), "{eval}");
        assert_eq!(test.resolved["assistant"], json!(assistant.key));
        assert_eq!(test.resolved["guidance_scale"], json!(0.5));
        // An unguided evaluation's resolved configuration has no guidance keys (its key is unchanged by them).
        assert!(bigrec[1].resolved.get("assistant").is_none() && bigrec[1].resolved.get("guidance_scale").is_none());
        assert!(!bigrec[1].commands[0].iter().any(|a| a == "--assistant"));
    }

    #[test]
    fn datasets_resolve_by_stem_or_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("info")).unwrap();
        for f in ["CDs_and_Vinyl_5_2015-10-2018-11.txt", "Toys_and_Games_5_2016-10-2018-11.txt"] {
            std::fs::write(dir.path().join("info").join(f), "x\t0\n").unwrap();
        }
        let r = |d: &str| resolve_dataset(dir.path(), d).unwrap();
        assert_eq!(r("CDs_and_Vinyl_5_2015-10-2018-11").as_deref(), Some("CDs_and_Vinyl_5_2015-10-2018-11"));
        assert_eq!(r("Toys_and_Games_5_*").as_deref(), Some("Toys_and_Games_5_2016-10-2018-11"));
        assert_eq!(r("Video_Games_5_*"), None);
        assert_eq!(r("Nope"), None);
        std::fs::write(dir.path().join("info").join("Toys_and_Games_5_1996-10-2018-11.txt"), "").unwrap();
        assert!(resolve_dataset(dir.path(), "Toys_and_Games_5_*").is_err());
    }
}
