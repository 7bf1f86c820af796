//! `cargo xtask reproduce <experiment|table|all> --scale smoke|cpu|paper --device flex|wgpu|vulkan|cuda`: runs
//! what is missing of the experiments' runs by invoking the `latentr3` binary (built by cargo with the backend
//! feature of `--device`), then writes `results/<experiment>/<scale>.json`.
//!
//! Runs live in `runs/reproduce/<kind>/<key>/`, `key` being the hash of the run's resolved configuration
//! ([`crate::plan`]): experiments that share a run (BIGRec's SFT for BIGRec and D3) share its folder, and a run
//! whose `xtask-run.json` exists is not run again. A killed training run is continued with `--resume`, a killed
//! evaluation by rerunning it into the same folder (it skips the users it has). Nothing is deleted except the
//! folder of a training run that died before its first checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::manifest::{Experiment, ReportKind, RunKind, Scale, discover, parse_metric};
use crate::plan::{PlannedRun, Setting, plan, resolve_dataset};
use crate::results::{Curve, CurvePoint, MetricEntry, RECOVERED_NOTE, ResultFile, RunRecord};
use crate::stats::{Bootstrap, mean, median, strip_target, title_rank, user_value};

/// The marker a finished run gets (written by the driver after the command succeeded).
pub const DONE_FILE: &str = "xtask-run.json";

/// The usage text of `cargo xtask reproduce`.
pub const USAGE: &str = "\
usage: cargo xtask reproduce <experiment|table|all> --scale smoke|cpu|paper --device flex|wgpu|vulkan|cuda[:N]
                             [--release|--dev] [--bin PATH] [--data DIR] [--dry-run]

  <experiment>  a manifest under experiments/ without .toml (table1/cds-latentr3), a folder of them (table1),
                or `all`
  --scale       smoke (minutes on a CPU), cpu (hours on 2 cores), paper (the paper's hyper-parameters)
  --device      the latentr3 --device; a GPU backend builds latentr3 with that cargo feature
  --release     build latentr3 with the release profile (default for cpu and paper); --dev: the dev profile
                (default for smoke)
  --bin PATH    use this latentr3 binary instead of building one
  --data DIR    the data folder (default $LATENTR3_DATA, else ../shared/datasets/amazon18)
  --dry-run     print the runs, their keys, folders, state and commands; run nothing";

/// The parsed arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// The experiment, folder or `all`.
    pub target: String,
    /// The scale.
    pub scale: Scale,
    /// The device.
    pub device: String,
    /// Build with the release profile.
    pub release: bool,
    /// A prebuilt binary.
    pub bin: Option<PathBuf>,
    /// The data folder.
    pub data: Option<PathBuf>,
    /// Print only.
    pub dry_run: bool,
}

impl Args {
    /// Parses the arguments after `reproduce`.
    pub fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut target = None;
        let (mut scale, mut device, mut release, mut bin, mut data, mut dry_run) =
            (None, None, None, None, None, false);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value\n\n{USAGE}"));
            match a.as_str() {
                "--scale" => scale = Some(Scale::parse(&value("--scale")?)?),
                "--device" => device = Some(value("--device")?),
                "--release" => release = Some(true),
                "--dev" => release = Some(false),
                "--bin" => bin = Some(PathBuf::from(value("--bin")?)),
                "--data" => data = Some(PathBuf::from(value("--data")?)),
                "--dry-run" => dry_run = true,
                s if s.starts_with('-') => bail!("unknown flag `{s}`\n\n{USAGE}"),
                s if target.is_none() => target = Some(s.to_string()),
                s => bail!("unexpected argument `{s}`\n\n{USAGE}"),
            }
        }
        let scale = scale.with_context(|| format!("--scale is required\n\n{USAGE}"))?;
        let device = device.unwrap_or_else(|| "flex".into());
        let backend = device.split(':').next().unwrap_or("");
        if !["flex", "wgpu", "vulkan", "cuda"].contains(&backend) {
            bail!("--device {device}: expected flex, wgpu, vulkan or cuda (with :N for a GPU index)");
        }
        Ok(Args {
            target: target.with_context(|| format!("name an experiment, a table folder or `all`\n\n{USAGE}"))?,
            scale,
            release: release.unwrap_or(scale != Scale::Smoke),
            device,
            bin,
            data,
            dry_run,
        })
    }

    /// The device's backend (the cargo feature of r3-cli).
    pub fn backend(&self) -> &str {
        self.device.split(':').next().unwrap_or("flex")
    }
}

/// The experiments `target` names: one manifest, every manifest under a folder, or all.
pub fn select<'a>(all: &'a [Experiment], target: &str) -> anyhow::Result<Vec<&'a Experiment>> {
    let target = target.trim_end_matches('/').trim_end_matches(".toml");
    let target = target.strip_prefix("experiments/").unwrap_or(target);
    let chosen: Vec<&Experiment> = all
        .iter()
        .filter(|e| target == "all" || e.name == target || e.name.starts_with(&format!("{target}/")))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        bail!("no experiment `{target}`; the experiments are:\n  {}", names.join("\n  "));
    }
    Ok(chosen)
}

/// The default data folder: `$LATENTR3_DATA`, else `../shared/datasets/amazon18` beside the repository.
pub fn default_data_dir(root: &Path) -> PathBuf {
    std::env::var_os("LATENTR3_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("..").join("shared").join("datasets").join("amazon18"))
}

/// Builds `latentr3` with cargo (the backend feature of `--device`), returning the binary's path.
fn build_binary(root: &Path, args: &Args) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "r3-cli", "--bin", "latentr3"]).current_dir(root);
    if args.release {
        cmd.arg("--release");
    }
    if args.backend() != "flex" {
        cmd.args(["--features", &format!("r3-cli/{}", args.backend())]);
    }
    eprintln!("$ {cmd:?}");
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("building latentr3 failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join(if args.release { "release" } else { "debug" }).join("latentr3"))
}

/// Which `latentr3` commands and flags exist (from their `--help`), cached.
struct Capabilities {
    bin: PathBuf,
    help: HashMap<String, Option<String>>,
}

impl Capabilities {
    /// `None` when the requirement holds, else why not. A requirement is subcommands, then flags and values that
    /// the subcommand's help must mention: `baseline train`, `eval --cot-tokens`, `baseline train --model alpharec`.
    fn missing(&mut self, requirement: &str) -> Option<String> {
        let words: Vec<&str> = requirement.split_whitespace().collect();
        let n_subs = words.iter().position(|w| w.starts_with('-')).unwrap_or(words.len());
        let subs: Vec<&str> = words[..n_subs].to_vec();
        let key = subs.join(" ");
        let bin = self.bin.clone();
        let help = self.help.entry(key.clone()).or_insert_with(|| {
            let out = Command::new(&bin).args(&subs).arg("--help").output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        });
        let Some(help) = help else {
            return Some(format!("`latentr3 {key}` does not exist in this binary"));
        };
        let word = words[n_subs..].iter().find(|w| !help.contains(*w))?;
        Some(format!("`latentr3 {key} --help` does not mention `{word}`"))
    }
}

/// The machine, for the result files: CPU model and logical cores, and the GPU for a GPU device.
pub fn hardware(device: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s = format!("{cpu}, {cores} logical cores");
    if !device.starts_with("flex") {
        let gpu = Command::new("nvidia-smi")
            .args(["--query-gpu=name", "--format=csv,noheader"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string());
        s.push_str(&format!("; GPU: {}", gpu.unwrap_or_else(|| "unknown".into())));
    }
    s
}

/// The commit of the tree, `-dirty` when it has uncommitted changes; `unknown` outside git.
pub fn commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{c}-dirty") } else { c }
        }
        None => "unknown".into(),
    }
}

/// The current UTC time as RFC 3339 (`2026-11-26T02:15:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The state of a run folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// The driver's marker exists.
    Done,
    /// A training run with a checkpoint, or an evaluation with some users: continue it.
    Partial,
    /// Nothing usable.
    Missing,
}

/// The state of `run`'s folder.
pub fn run_state(run: &PlannedRun) -> RunState {
    if run.dir.join(DONE_FILE).is_file() {
        return RunState::Done;
    }
    let partial = match run.kind {
        RunKind::Sft | RunKind::Grpo => run.dir.join("checkpoints").join("latest.json").is_file(),
        RunKind::Eval => run.dir.join("predictions.jsonl").is_file(),
        RunKind::Baseline => false,
    };
    if partial { RunState::Partial } else { RunState::Missing }
}

/// The folder holding an evaluation's `predictions.json` and `metrics.json`: the run folder of `latentr3 eval`,
/// the `test/` folder of a `latentr3 baseline train` run.
pub fn eval_dir(run: &PlannedRun) -> PathBuf {
    match run.kind {
        RunKind::Baseline => run.dir.join("test"),
        _ => run.dir.clone(),
    }
}

/// Runs `latentr3 args` in the repository root; returns the wall seconds.
fn latentr3(bin: &Path, root: &Path, data: &Path, args: &[String]) -> anyhow::Result<f64> {
    eprintln!("$ latentr3 {}", args.join(" "));
    let t = Instant::now();
    let status = Command::new(bin)
        .args(args)
        .current_dir(root)
        .env("LATENTR3_DATA", data)
        .status()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !status.success() {
        bail!("`latentr3 {}` failed ({status})", args.join(" "));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Executes one run unless it is done; returns its wall seconds (those recorded in its marker when it was done
/// already).
fn execute(run: &PlannedRun, bin: &Path, root: &Path, data: &Path, experiment: &str, hw: &str) -> anyhow::Result<f64> {
    let state = run_state(run);
    if state == RunState::Done {
        eprintln!("reproduce: run `{}` ({} {}) is done: {}", run.id, run.kind.name(), run.key, run.dir.display());
        // The wall time of the session that finished it.
        let marker = std::fs::read_to_string(run.dir.join(DONE_FILE)).ok();
        let wall = marker.and_then(|t| serde_json::from_str::<Value>(&t).ok()).and_then(|v| v["wall_s"].as_f64());
        return Ok(wall.unwrap_or(0.0));
    }
    let mut wall = 0.0;
    match (run.kind, state, &run.resume) {
        (RunKind::Sft | RunKind::Grpo, RunState::Partial, Some(resume)) => {
            eprintln!("reproduce: continuing run `{}` from its last checkpoint", run.id);
            wall += latentr3(bin, root, data, resume)?;
        }
        (RunKind::Sft | RunKind::Grpo, _, _) => {
            if run.dir.exists() {
                // Died before its first checkpoint: nothing to keep, and the trainer refuses a used folder.
                eprintln!("reproduce: removing {} (no checkpoint to continue from)", run.dir.display());
                std::fs::remove_dir_all(&run.dir).with_context(|| format!("removing {}", run.dir.display()))?;
            }
            wall += latentr3(bin, root, data, &run.commands[0])?;
        }
        _ => {
            for c in &run.commands {
                wall += latentr3(bin, root, data, c)?;
            }
        }
    }
    let expect = match run.kind {
        RunKind::Sft | RunKind::Grpo => run.dir.join("model").join("latent.json"),
        RunKind::Eval | RunKind::Baseline => eval_dir(run).join("metrics.json"),
    };
    if !expect.is_file() {
        bail!("run `{}` finished without {}: the command did not complete its run", run.id, expect.display());
    }
    let marker = json!({
        "experiment": experiment,
        "id": run.id,
        "kind": run.kind.name(),
        "key": run.key,
        "resolved": run.resolved,
        "commands": run.commands,
        "wall_s": wall,
        "finished": utc_now(),
        "hardware": hw,
    });
    std::fs::write(run.dir.join(DONE_FILE), serde_json::to_string_pretty(&marker)? + "\n")
        .with_context(|| format!("writing the marker of {}", run.dir.display()))?;
    // A finished training run is used only through its model folder; its checkpoints (weights and optimizer
    // state, about 12 bytes per parameter each) would fill the disk.
    let checkpoints = run.dir.join("checkpoints");
    if matches!(run.kind, RunKind::Sft | RunKind::Grpo) && checkpoints.is_dir() {
        std::fs::remove_dir_all(&checkpoints).with_context(|| format!("removing {}", checkpoints.display()))?;
        eprintln!("reproduce: removed the checkpoints of the finished run `{}` (its model/ folder stays)", run.id);
    }
    Ok(wall)
}

/// Runs `cargo xtask reproduce`.
pub fn run(root: &Path, argv: &[String]) -> anyhow::Result<()> {
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = Args::parse(argv)?;
    let all = discover(root)?;
    let chosen = select(&all, &args.target)?;
    let data = args.data.clone().unwrap_or_else(|| default_data_dir(root));
    let setting =
        Setting { root: root.to_path_buf(), data_dir: data.clone(), scale: args.scale, device: args.device.clone() };

    // Plan everything first, so that a configuration error stops the command before hours of training.
    let mut plans = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for e in chosen {
        if !e.manifest.scales().contains(&args.scale) {
            skipped.push((e.name.clone(), format!("not defined at the {} scale", args.scale)));
            continue;
        }
        match resolve_dataset(&data, &e.manifest.experiment.dataset)? {
            None => {
                skipped.push((e.name.clone(), format!("no `{}` in {}", e.manifest.experiment.dataset, data.display())))
            }
            Some(stem) => plans.push((e, stem.clone(), plan(&e.manifest, &setting, &stem)?)),
        }
    }
    if args.dry_run {
        for (e, stem, runs) in &plans {
            println!("{} ({stem}, {} scale; {}):", e.name, args.scale, e.path.display());
            for r in runs {
                println!("  {:<10} {:<8} {} {:?}  {}", r.id, r.kind.name(), r.key, run_state(r), r.dir.display());
                for c in &r.commands {
                    println!("      latentr3 {}", c.join(" "));
                }
                for q in &r.requires {
                    println!("      requires `latentr3 {q}`");
                }
            }
        }
        for (name, why) in &skipped {
            println!("{name}: skipped: {why}");
        }
        return Ok(());
    }
    if plans.is_empty() {
        bail!("nothing to run: {}", skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect::<Vec<_>>().join("; "));
    }

    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => build_binary(root, &args)?,
    };
    let mut caps = Capabilities { bin: bin.clone(), help: HashMap::new() };
    let hw = hardware(&args.device);
    let mut failures = Vec::new();
    let mut written = Vec::new();
    for (e, stem, runs) in &plans {
        let not_runnable: Vec<String> =
            runs.iter().flat_map(|r| r.requires.iter()).filter_map(|q| caps.missing(q)).collect();
        if !not_runnable.is_empty() {
            skipped.push((e.name.clone(), format!("not runnable: {}", not_runnable.join("; "))));
            continue;
        }
        eprintln!("reproduce: {} ({stem}, {} scale, --device {})", e.name, args.scale, args.device);
        let t = Instant::now();
        let mut records = Vec::new();
        let mut failed = None;
        for r in runs {
            match execute(r, &bin, root, &data, &e.name, &hw) {
                Ok(wall) => records.push(RunRecord {
                    id: r.id.clone(),
                    kind: r.kind.name().into(),
                    key: r.key.clone(),
                    dir: r.dir.strip_prefix(root).unwrap_or(&r.dir).display().to_string(),
                    wall_s: wall,
                }),
                Err(err) => {
                    failed = Some(format!("run `{}`: {err:#}", r.id));
                    break;
                }
            }
        }
        if let Some(f) = failed {
            eprintln!("reproduce: {} failed: {f}", e.name);
            failures.push(format!("{}: {f}", e.name));
            continue;
        }
        let command = format!("cargo xtask reproduce {} --scale {} --device {}", e.name, args.scale, args.device);
        let ctx = ReportContext { root, data: &data, stem, hw: &hw, device: &args.device, command: &command };
        match report(e, args.scale, runs, records, &ctx) {
            Ok(result) => {
                let path = ResultFile::path(root, &e.name, args.scale);
                result.write(&path)?;
                eprintln!("reproduce: {} in {:.0} s → {}", e.name, t.elapsed().as_secs_f64(), path.display());
                for m in &result.metrics {
                    eprintln!("    {:<18} {}", m.name, fmt_entry(m));
                }
                written.push(path);
            }
            Err(err) => failures.push(format!("{}: {err:#}", e.name)),
        }
    }
    for (name, why) in &skipped {
        eprintln!("reproduce: {name}: skipped: {why}");
    }
    eprintln!("reproduce: {} result file(s) written; `cargo xtask tables` renders docs/results.md", written.len());
    if !failures.is_empty() {
        bail!("{} experiment(s) failed:\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok(())
}

/// A metric entry on one line: `ours [lo, hi] (paper p, Δ d)`.
pub fn fmt_entry(m: &MetricEntry) -> String {
    let mut s = m.ours.map_or("-".into(), |v| format!("{v:.4}"));
    if let Some([lo, hi]) = m.ci95 {
        s.push_str(&format!(" [{lo:.4}, {hi:.4}]"));
    }
    if let Some(p) = m.paper {
        s.push_str(&format!(" (paper {p:.4}, Δ {:+.4})", m.delta.unwrap_or(f64::NAN)));
    }
    s
}

/// What a report needs besides the runs.
pub struct ReportContext<'a> {
    /// The repository root.
    pub root: &'a Path,
    /// The data folder.
    pub data: &'a Path,
    /// The dataset stem.
    pub stem: &'a str,
    /// The hardware line.
    pub hw: &'a str,
    /// The device.
    pub device: &'a str,
    /// The command that reproduces the result.
    pub command: &'a str,
}

/// The per-user outcome of an evaluation run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalOutcome {
    /// The target's rank per user.
    pub ranks: Vec<Option<usize>>,
    /// The target item id per user (when recorded).
    pub item_ids: Vec<Option<u64>>,
    /// The per-user latency in seconds (when recorded).
    pub latency_s: Vec<f64>,
    /// The run's `metrics.json`.
    pub metrics: Value,
}

impl EvalOutcome {
    /// Reads `predictions.json` (or `predictions.jsonl`) and `metrics.json` of an evaluation folder, and checks
    /// that the means of the per-user values equal the run's own `report.by_title` numbers.
    pub fn read(dir: &Path) -> anyhow::Result<EvalOutcome> {
        let records: Vec<Value> = {
            let json = dir.join("predictions.json");
            if json.is_file() {
                let text = std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
                serde_json::from_str(&text).with_context(|| format!("{}: not a JSON array", json.display()))?
            } else {
                let jsonl = dir.join("predictions.jsonl");
                let text = std::fs::read_to_string(&jsonl).with_context(|| format!("reading {}", jsonl.display()))?;
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .enumerate()
                    .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", jsonl.display(), i + 1)))
                    .collect::<anyhow::Result<_>>()?
            }
        };
        let mut out = EvalOutcome::default();
        for (i, r) in records.iter().enumerate() {
            let target =
                strip_target(&r["output"]).with_context(|| format!("{}: record {i} has no `output`", dir.display()))?;
            let predict: Vec<&str> = r["predict"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            out.ranks.push(title_rank(&predict, target));
            out.item_ids.push(r["item_id"].as_u64());
            if let Some(l) = r["latency_s"].as_f64() {
                out.latency_s.push(l);
            }
        }
        let mpath = dir.join("metrics.json");
        let text = std::fs::read_to_string(&mpath).with_context(|| format!("reading {}", mpath.display()))?;
        out.metrics = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", mpath.display()))?;
        let by_title = &out.metrics["report"]["by_title"];
        let ks: Vec<usize> =
            by_title["k"].as_array().into_iter().flatten().filter_map(|k| k.as_u64()).map(|k| k as usize).collect();
        for (c, &k) in ks.iter().enumerate() {
            for (ndcg, field) in [(false, "hr"), (true, "ndcg")] {
                let theirs = by_title[field][c].as_f64().unwrap_or(f64::NAN);
                let ours = mean(&out.values(ndcg, k));
                if (ours - theirs).abs() > 1e-9 {
                    bail!(
                        "{}: {field}@{k} from the predictions is {ours}, the run's metrics.json says {theirs}: the \
                         matching of xtask (stats.rs) and of latentr3 eval disagree",
                        dir.display()
                    );
                }
            }
        }
        Ok(out)
    }

    /// Per-user values of `H@K` or `N@K`.
    pub fn values(&self, ndcg: bool, k: usize) -> Vec<f64> {
        self.ranks.iter().map(|&r| user_value(r, ndcg, k)).collect()
    }
}

/// The popular items of the train split (the `r3_data::Popularity` rule: the most frequent train targets, ties by
/// id, until they cover `coverage` of the train interactions), for `n_items` items.
pub fn popular_items(train_item_ids: &[u64], n_items: usize, coverage: f64) -> Vec<bool> {
    let mut counts = vec![0u64; n_items];
    for &i in train_item_ids {
        if let Some(c) = counts.get_mut(i as usize) {
            *c += 1;
        }
    }
    let total: u64 = counts.iter().sum();
    let mut order: Vec<usize> = (0..n_items).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let mut popular = vec![false; n_items];
    let target = coverage * total as f64;
    let mut covered = 0u64;
    for i in order {
        if covered as f64 >= target || counts[i] == 0 {
            break;
        }
        popular[i] = true;
        covered += counts[i];
    }
    popular
}

/// The popular items of a dataset (the train split's `item_id` column, the catalogue's line count).
fn dataset_popularity(data: &Path, stem: &str, coverage: f64) -> anyhow::Result<Vec<bool>> {
    let info = data.join("info").join(format!("{stem}.txt"));
    let n_items =
        std::fs::read_to_string(&info).with_context(|| format!("reading {}", info.display()))?.lines().count();
    let csv_path = data.join("train").join(format!("{stem}.csv"));
    let mut reader = csv::Reader::from_path(&csv_path).with_context(|| format!("reading {}", csv_path.display()))?;
    let col = reader
        .headers()?
        .iter()
        .position(|h| h == "item_id")
        .with_context(|| format!("{}: no `item_id` column", csv_path.display()))?;
    let mut ids = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", csv_path.display(), i + 2))?;
        let id: u64 = rec
            .get(col)
            .and_then(|s| s.trim().parse().ok())
            .with_context(|| format!("{}: row {}: `item_id` is not an integer", csv_path.display(), i + 2))?;
        ids.push(id);
    }
    Ok(popular_items(&ids, n_items, coverage))
}

/// One GRPO run's training curve and wall time, from its `metrics.jsonl`.
pub fn training_curve(dir: &Path, id: &str, label: &str) -> anyhow::Result<Curve> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut points: Vec<CurvePoint> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        match v["kind"].as_str() {
            Some("step") => points.push(CurvePoint {
                step: v["step"].as_u64().unwrap_or(0),
                elapsed_s: v["elapsed_s"].as_f64().unwrap_or(f64::NAN),
                reward: v["reward_mean"].as_f64().unwrap_or(f64::NAN),
                val_ndcg: None,
            }),
            Some("eval") => {
                let step = v["step"].as_u64().unwrap_or(0);
                // NDCG at the largest cut-off validated (the trainer's `eval.k`, 10 by default).
                let ndcg = v["ndcg"].as_array().and_then(|a| a.last()).and_then(Value::as_f64);
                if let Some(p) = points.iter_mut().rev().find(|p| p.step == step) {
                    p.val_ndcg = ndcg;
                }
            }
            _ => {}
        }
    }
    Ok(Curve { run: id.into(), label: label.into(), points })
}

/// Builds the result file of an experiment whose runs are done.
pub fn report(
    e: &Experiment,
    scale: Scale,
    runs: &[PlannedRun],
    records: Vec<RunRecord>,
    ctx: &ReportContext<'_>,
) -> anyhow::Result<ResultFile> {
    let m = &e.manifest;
    let dir_of = |id: &str| runs.iter().find(|r| r.id == id).map(eval_dir).context("report run not planned");
    let main = EvalOutcome::read(&dir_of(&m.report.run)?)?;
    let boot = Bootstrap::default();
    let n = main.ranks.len();
    let paper = |name: &str| m.paper.values.get(name).copied();
    let mut metrics = Vec::new();
    let mut curves = Vec::new();
    let metric_entries = |out: &mut Vec<MetricEntry>| -> anyhow::Result<()> {
        for name in m.report.metric_names() {
            let (ndcg, k) = parse_metric(&name)?;
            let v = main.values(ndcg, k);
            out.push(MetricEntry::new(&name, Some(mean(&v)), boot.mean_ci(&v), paper(&name), n));
        }
        Ok(())
    };
    match m.report.kind {
        ReportKind::Metrics => metric_entries(&mut metrics)?,
        ReportKind::PopularityGain => {
            let base_id = m.report.baseline.as_deref().context("popularity_gain has a baseline")?;
            let base = EvalOutcome::read(&dir_of(base_id)?)?;
            if base.item_ids != main.item_ids {
                bail!("the evaluations `{}` and `{base_id}` are not of the same users in the same order", m.report.run);
            }
            let coverage = main.metrics["popularity"]["coverage"].as_f64().unwrap_or(0.8);
            let popular = dataset_popularity(ctx.data, ctx.stem, coverage)?;
            let label = |id: Option<u64>| -> anyhow::Result<bool> {
                let id = id.context("a prediction record without `item_id`")? as usize;
                popular.get(id).copied().with_context(|| format!("item id {id} is outside the catalogue"))
            };
            let labels: Vec<bool> = main.item_ids.iter().map(|&i| label(i)).collect::<anyhow::Result<_>>()?;
            for (bucket, want) in [("popular", true), ("unpopular", false)] {
                let idx: Vec<usize> = (0..n).filter(|&i| labels[i] == want).collect();
                for name in m.report.metric_names() {
                    let (ndcg, k) = parse_metric(&name)?;
                    let (a, b) = (main.values(ndcg, k), base.values(ndcg, k));
                    let (a, b): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (a[i], b[i])).unzip();
                    check_bucket(&main.metrics, bucket, ndcg, k, &a)?;
                    let full = format!("{bucket} {name}");
                    let (gain, ci) = boot.gain_ci(&a, &b);
                    metrics.push(MetricEntry::new(&full, gain, ci, paper(&full), idx.len()));
                }
            }
        }
        ReportKind::Latency => {
            if main.latency_s.len() != n {
                bail!("{}: not every prediction record has `latency_s`", dir_of(&m.report.run)?.display());
            }
            let l = &main.latency_s;
            metrics.push(MetricEntry::new(
                "latency mean s",
                Some(mean(l)),
                boot.mean_ci(l),
                paper("latency mean s"),
                n,
            ));
            metrics.push(MetricEntry::new("latency median s", Some(median(l)), None, paper("latency median s"), n));
            metric_entries(&mut metrics)?;
        }
        ReportKind::Training => {
            metric_entries(&mut metrics)?;
            let train_id = m.report.train.as_deref().context("training has a train run")?;
            let tdir = dir_of(train_id)?;
            let resolved = runs.iter().find(|r| r.id == train_id).map(|r| r.resolved.clone()).unwrap_or_default();
            let label = resolved["config"]["grpo"]["algorithm"].as_str().unwrap_or("lr_grpo").to_string();
            let curve = training_curve(&tdir, train_id, &label)?;
            let last = curve.points.last().map(|p| p.elapsed_s);
            metrics.push(MetricEntry::new("train s", last, None, paper("train s"), curve.points.len()));
            curves.push(curve);
        }
    }
    Ok(ResultFile {
        experiment: e.name.clone(),
        table: m.paper.table.clone(),
        row: m.paper.row.clone(),
        column: m.paper.column.clone(),
        scale,
        device: ctx.device.into(),
        hardware: ctx.hw.into(),
        data_note: data_note(ctx.stem).into(),
        dataset: ctx.stem.into(),
        users: n,
        commit: commit(ctx.root),
        command: ctx.command.into(),
        written: utc_now(),
        runs: records,
        metrics,
        curves,
        note: m.paper.note.clone(),
    })
}

/// The data note of a dataset: the shared CDs and Industrial train splits are recovered subsets.
pub fn data_note(stem: &str) -> &'static str {
    if stem.starts_with("CDs_and_Vinyl") || stem.starts_with("Industrial_and_Scientific") {
        RECOVERED_NOTE
    } else {
        "train split as prepared by `latentr3 data prepare`"
    }
}

/// Checks a bucket's per-user values against the `report.buckets` of the run's `metrics.json`.
fn check_bucket(metrics: &Value, bucket: &str, ndcg: bool, k: usize, values: &[f64]) -> anyhow::Result<()> {
    let Some(b) = metrics["report"]["buckets"].as_array().into_iter().flatten().find(|b| b["bucket"] == bucket) else {
        return Ok(());
    };
    let ks: Vec<u64> = b["k"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
    let Some(c) = ks.iter().position(|&x| x as usize == k) else { return Ok(()) };
    let theirs = b[if ndcg { "ndcg" } else { "hr" }][c].as_f64().unwrap_or(f64::NAN);
    let ours = if values.is_empty() { 0.0 } else { mean(values) };
    if b["n"].as_u64() != Some(values.len() as u64) || (ours - theirs).abs() > 1e-9 {
        bail!(
            "the {bucket} bucket: xtask finds {} users and {ours}, latentr3 eval {} and {theirs}: the popularity rule \
             of xtask (reproduce.rs `popular_items`) and r3_data::Popularity disagree",
            values.len(),
            b["n"]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments_parse_with_scale_dependent_profiles() {
        let a = Args::parse(&s(&["table1/cds-bigrec", "--scale", "smoke", "--device", "flex"])).unwrap();
        assert_eq!(
            (a.target.as_str(), a.scale, a.device.as_str(), a.release),
            ("table1/cds-bigrec", Scale::Smoke, "flex", false)
        );
        let a = Args::parse(&s(&["all", "--scale", "paper", "--device", "cuda:1"])).unwrap();
        assert_eq!((a.release, a.backend()), (true, "cuda"));
        let a = Args::parse(&s(&["all", "--scale", "cpu", "--dev", "--dry-run"])).unwrap();
        assert_eq!((a.release, a.dry_run, a.device.as_str()), (false, true, "flex"));
        assert!(Args::parse(&s(&["all"])).unwrap_err().to_string().contains("--scale is required"));
        assert!(Args::parse(&s(&["all", "--scale", "big"])).unwrap_err().to_string().contains("unknown scale"));
        assert!(Args::parse(&s(&["all", "--scale", "cpu", "--device", "tpu"])).is_err());
        assert!(Args::parse(&s(&["--scale", "cpu"])).is_err());
    }

    #[test]
    fn selection_by_name_folder_or_all() {
        let all = discover(&crate::project_root()).unwrap();
        assert_eq!(select(&all, "table1/cds-bigrec").unwrap().len(), 1);
        assert_eq!(select(&all, "experiments/table1/cds-bigrec.toml").unwrap().len(), 1);
        assert_eq!(select(&all, "reasoning-length").unwrap().len(), 4);
        assert_eq!(select(&all, "all").unwrap().len(), all.len());
        assert!(select(&all, "table9").unwrap_err().to_string().contains("table1/cds-bigrec"));
    }

    /// Writes an evaluation folder in the layout of `latentr3 eval`: 4 users, targets at ranks 0, 2, none, 7.
    fn eval_fixture(dir: &Path, hr5: f64) {
        let rec = |target: &str, predict: &[&str], item: u64, lat: f64| json!({"input": "x", "output": format!("\"{target}\"\n"), "predict": predict, "item_id": item, "latency_s": lat});
        let p = |t: &str| format!("\"{t}\"\n");
        let many = |hit: usize, t: &str| {
            (0..10).map(|i| if i == hit { p(t) } else { p(&format!("other {i}")) }).collect::<Vec<_>>()
        };
        let r0 = many(0, "A");
        let r1 = many(2, "B");
        let r2 = many(99, "C");
        let r3 = many(7, "D");
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let records = json!([
            rec("A", &refs(&r0), 0, 1.0),
            rec("B", &refs(&r1), 1, 2.0),
            rec("C", &refs(&r2), 2, 3.0),
            rec("D", &refs(&r3), 0, 4.0),
        ]);
        std::fs::write(dir.join("predictions.json"), records.to_string()).unwrap();
        let n5 = (1.0 + 1.0 / 4f64.log2()) / 4.0;
        let n10 = (1.0 + 0.5 + 1.0 / 9f64.log2()) / 4.0;
        let metrics = json!({
            "popularity": {"coverage": 0.8},
            "report": {
                "by_title": {"n": 4, "k": [5, 10], "hr": [hr5, 0.75], "ndcg": [n5, n10]},
                "buckets": [],
            }
        });
        std::fs::write(dir.join("metrics.json"), metrics.to_string()).unwrap();
    }

    #[test]
    fn evaluation_outcomes_are_read_and_checked_against_the_run() {
        let dir = tempfile::tempdir().unwrap();
        eval_fixture(dir.path(), 0.5);
        let e = EvalOutcome::read(dir.path()).unwrap();
        assert_eq!(e.ranks, vec![Some(0), Some(2), None, Some(7)]);
        assert_eq!(e.values(false, 5), vec![1.0, 1.0, 0.0, 0.0]);
        assert_eq!(e.latency_s, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(e.item_ids, vec![Some(0), Some(1), Some(2), Some(0)]);
        // A metrics.json that disagrees with the predictions is an error naming both numbers.
        eval_fixture(dir.path(), 0.25);
        let err = format!("{:#}", EvalOutcome::read(dir.path()).unwrap_err());
        assert!(err.contains("hr@5") && err.contains("0.5") && err.contains("0.25"), "{err}");
    }

    #[test]
    fn popularity_follows_the_r3_data_rule() {
        // Counts: item 0 ×5, item 1 ×3, item 2 ×1, item 3 ×1, item 4 ×0; 10 interactions.
        let ids = [0, 0, 0, 0, 0, 1, 1, 1, 2, 3];
        // 80% = 8 interactions: items 0 and 1 cover exactly 8.
        assert_eq!(popular_items(&ids, 5, 0.8), vec![true, true, false, false, false]);
        // 85%: one more item, the lower id among the ties.
        assert_eq!(popular_items(&ids, 5, 0.85), vec![true, true, true, false, false]);
        // Never an item without interactions, even at 100%.
        assert_eq!(popular_items(&ids, 5, 1.0), vec![true, true, true, true, false]);
    }

    #[test]
    fn training_curves_join_validations_to_their_steps() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            json!({"kind": "step", "step": 1, "elapsed_s": 10.0, "reward_mean": -3.0}),
            json!({"kind": "step", "step": 2, "elapsed_s": 20.0, "reward_mean": -2.5}),
            json!({"kind": "eval", "step": 2, "k": [5, 10], "hr": [0.1, 0.2], "ndcg": [0.05, 0.07], "improved": true}),
        ];
        let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
        std::fs::write(dir.path().join("metrics.jsonl"), text).unwrap();
        let c = training_curve(dir.path(), "grpo", "lr_grpo").unwrap();
        assert_eq!(c.points.len(), 2);
        assert_eq!((c.points[0].val_ndcg, c.points[1].val_ndcg), (None, Some(0.07)));
        assert_eq!((c.points[1].elapsed_s, c.points[1].reward), (20.0, -2.5));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = utc_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
        assert_eq!(data_note("CDs_and_Vinyl_5_2015-10-2018-11"), RECOVERED_NOTE);
    }
}
