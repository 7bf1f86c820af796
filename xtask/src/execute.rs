//! Running the planned runs: building `latentr3`, checking which commands and flags it has, the state of a run
//! folder, and one run's commands (continued from its last checkpoint when it was killed), after which the run
//! gets its marker `xtask-run.json` ([`r3_runs::reproduce::RunMarker`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use r3_runs::Provenance;
use r3_runs::reproduce::{MARKER_FILE, RunMarker};

use crate::manifest::RunKind;
use crate::plan::{Pick, PlannedRun};

/// Builds `latentr3` with cargo (the backend feature `backend` unless flex), returning the binary's path.
pub fn build_binary(root: &Path, release: bool, backend: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "r3-cli", "--bin", "latentr3"]).current_dir(root);
    if release {
        cmd.arg("--release");
    }
    if backend != "flex" {
        cmd.args(["--features", &format!("r3-cli/{backend}")]);
    }
    eprintln!("$ {cmd:?}");
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("building latentr3 failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join(if release { "release" } else { "debug" }).join("latentr3"))
}

/// Which `latentr3` commands and flags exist (from their `--help`), cached.
pub struct Capabilities {
    bin: PathBuf,
    help: HashMap<String, Option<String>>,
}

impl Capabilities {
    /// The capabilities of the binary `bin`, asked lazily.
    pub fn new(bin: PathBuf) -> Self {
        Capabilities { bin, help: HashMap::new() }
    }

    /// `None` when the requirement holds, else why not. A requirement is subcommands, then flags and values that
    /// the subcommand's help must mention: `baseline train`, `eval --cot-tokens`, `baseline train --model alpharec`.
    pub fn missing(&mut self, requirement: &str) -> Option<String> {
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

/// The current UTC time as RFC 3339 (`2026-11-26T02:15:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let s = secs.rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", r3_data::utc_date(secs), s / 3600, s / 60 % 60, s % 60)
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
    if run.dir.join(MARKER_FILE).is_file() {
        return RunState::Done;
    }
    let partial = match run.kind {
        RunKind::Sft | RunKind::Grpo => run.dir.join("checkpoints").join("latest.json").is_file(),
        RunKind::Eval => run.dir.join(r3_runs::eval::JSONL_FILE).is_file(),
        RunKind::Baseline => false,
    };
    if partial { RunState::Partial } else { RunState::Missing }
}

/// The folder holding an evaluation's predictions and `metrics.json`: the run folder of `latentr3 eval`, the
/// `test/` folder of a `latentr3 baseline train` run.
pub fn eval_dir(run: &PlannedRun) -> PathBuf {
    match run.kind {
        RunKind::Baseline => run.dir.join(r3_runs::baseline::TEST_DIR),
        _ => run.dir.clone(),
    }
}

/// The value of a sweep picked on validation and its score: the candidate whose finished run has the best
/// validation metric (GRPO: `summary.json`'s `best_metric`, higher is better; SFT: the negative best validation
/// loss); a tie goes to the value listed first.
pub fn pick_value(pick: &Pick, kind: RunKind) -> anyhow::Result<(String, f64)> {
    use r3_runs::train::{GrpoSummary, SUMMARY_FILE, SftSummary};
    let mut best: Option<(String, f64)> = None;
    for (value, dir) in &pick.candidates {
        let path = dir.join(SUMMARY_FILE);
        let score = match kind {
            RunKind::Grpo => r3_runs::read_json::<GrpoSummary>(&path)?.best_metric,
            RunKind::Sft => r3_runs::read_json::<SftSummary>(&path)?.best_val_loss.map(|l| -l),
            _ => bail!("a sweep picks a setting of an sft or grpo run"),
        };
        let score = score.with_context(|| {
            format!("{}: the sweep run of {}={value} has no validation metric", path.display(), pick.key)
        })?;
        if best.as_ref().is_none_or(|(_, b)| score > *b) {
            best = Some((value.clone(), score));
        }
    }
    best.context("a sweep without values")
}

/// `run` with the placeholder of its sweep's pick replaced by the picked value in its commands.
fn with_pick(run: &PlannedRun, pick: &Pick) -> anyhow::Result<PlannedRun> {
    let (value, score) = pick_value(pick, run.kind)?;
    eprintln!("reproduce: run `{}`: {}={value} (validation {score:.4}, the best of the sweep)", run.id, pick.key);
    let mut out = run.clone();
    for a in out.commands.iter_mut().flatten() {
        if *a == pick.placeholder() {
            *a = format!("{}={value}", pick.key);
        }
    }
    Ok(out)
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

/// Where and with what a run executes.
pub struct Executor<'a> {
    /// The `latentr3` binary.
    pub bin: &'a Path,
    /// The repository root.
    pub root: &'a Path,
    /// The run store (`--runs`).
    pub runs: &'a Path,
    /// The data folder.
    pub data: &'a Path,
    /// The hardware line.
    pub hardware: &'a str,
    /// The code of the binary, when the driver built it from its own tree.
    pub code: Option<Provenance>,
}

impl Executor<'_> {
    /// Executes one run of `experiment` unless it is done; returns its wall seconds (those recorded in its marker
    /// when it was done already).
    pub fn execute(&self, run: &PlannedRun, experiment: &str) -> anyhow::Result<f64> {
        let state = run_state(run);
        if state == RunState::Done {
            eprintln!("reproduce: run `{}` ({} {}) is done: {}", run.id, run.kind.name(), run.key, run.dir.display());
            // The wall time of the session that finished it.
            let marker: RunMarker = r3_runs::read_json(&run.dir.join(MARKER_FILE))?;
            return Ok(marker.wall_s);
        }
        let picked;
        let run = match &run.pick {
            Some(pick) => {
                picked = with_pick(run, pick)?;
                &picked
            }
            None => run,
        };
        let wall = self.commands(run, state)?;
        let expect = match run.kind {
            RunKind::Sft | RunKind::Grpo => run.dir.join(r3_runs::train::MODEL_DIR).join("latent.json"),
            RunKind::Eval | RunKind::Baseline => eval_dir(run).join(r3_runs::eval::METRICS_FILE),
        };
        if !expect.is_file() {
            bail!("run `{}` finished without {}: the command did not complete its run", run.id, expect.display());
        }
        let marker = RunMarker {
            experiment: experiment.into(),
            id: run.id.clone(),
            kind: run.kind.name().into(),
            key: run.key.clone(),
            resolved: run.resolved.clone(),
            commands: run.commands.clone(),
            wall_s: wall,
            finished: utc_now(),
            hardware: self.hardware.into(),
            code: self.code.clone(),
        };
        r3_runs::write_json(&run.dir.join(MARKER_FILE), &marker)?;
        // A finished training run is used only through its model folder; its checkpoints (weights and optimizer
        // state, about 12 bytes per parameter each) would fill the disk.
        let checkpoints = run.dir.join("checkpoints");
        if matches!(run.kind, RunKind::Sft | RunKind::Grpo) && checkpoints.is_dir() {
            std::fs::remove_dir_all(&checkpoints).with_context(|| format!("removing {}", checkpoints.display()))?;
            eprintln!("reproduce: removed the checkpoints of the finished run `{}` (its model/ folder stays)", run.id);
        }
        Ok(wall)
    }

    /// Runs the commands of a run that is not done: continues a killed training run, restarts one that died
    /// before its first checkpoint; returns the wall seconds.
    fn commands(&self, run: &PlannedRun, state: RunState) -> anyhow::Result<f64> {
        let go = |args: &[String]| latentr3(self.bin, self.root, self.data, args);
        match (run.kind, state, &run.resume) {
            (RunKind::Sft | RunKind::Grpo, RunState::Partial, Some(resume)) => {
                eprintln!("reproduce: continuing run `{}` from its last checkpoint", run.id);
                go(resume)
            }
            (RunKind::Sft | RunKind::Grpo, _, _) => {
                if run.dir.exists() {
                    // Died before its first checkpoint: nothing to keep, and the trainer refuses a used folder.
                    eprintln!("reproduce: removing {} (no checkpoint to continue from)", run.dir.display());
                    std::fs::remove_dir_all(&run.dir).with_context(|| format!("removing {}", run.dir.display()))?;
                }
                go(&run.commands[0])
            }
            _ => run.commands.iter().map(|c| go(c)).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let t = utc_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
