//! `cargo xtask reproduce <experiment|table|all> --scale smoke|quick|cpu|paper --device flex|wgpu|vulkan|cuda`: runs
//! what is missing of the experiments' runs by invoking the `latentr3` binary (built by cargo with the backend
//! feature of `--device`), then writes `results/<experiment>/<scale>.json`.
//!
//! Runs live in `<runs>/reproduce/<kind>/<key>/` (`<runs>`: [`default_runs_dir`] or `--runs`), `key` being the hash of the run's resolved configuration
//! ([`crate::plan`]): experiments that share a run (BIGRec's SFT for BIGRec and D3) share its folder, and a run
//! whose `xtask-run.json` exists is not run again. A killed training run is continued with `--resume`, a killed
//! evaluation by rerunning it into the same folder (it skips the users it has). Nothing is deleted except the
//! folder of a training run that died before its first checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use r3_runs::Provenance;

use crate::compare::{fmt_paired, reference_comparisons, references_first};
use crate::execute::{Capabilities, Executor, build_binary, eval_dir, hardware, run_state};
use crate::manifest::{Experiment, Scale, discover};
use crate::outcome::EvalOutcome;
use crate::plan::{PlannedRun, Setting, plan, resolve_dataset};
use crate::report::{ReportContext, report, run_record};
use crate::results::{Comparison, ResultFile, mixed_commits};

/// The usage text of `cargo xtask reproduce`.
pub const USAGE: &str = "\
usage: cargo xtask reproduce <experiment|table|all> --scale smoke|quick|cpu|paper --device flex|wgpu|vulkan|cuda[:N]
                             [--release|--dev] [--bin PATH] [--data DIR] [--runs DIR] [--dry-run|--status]
                             [--allow-mixed-code]

  <experiment>  a manifest under experiments/ without .toml (table1/cds-latentr3), a folder of them (table1),
                or `all`
  --scale       smoke (minutes on a CPU), quick (hours on 2 cores), cpu (every train row and test user: about a
                day on 2 cores), paper (the paper's hyper-parameters)
  --device      the latentr3 --device; a GPU backend builds latentr3 with that cargo feature
  --release     build latentr3 with the release profile (default for cpu and paper); --dev: the dev profile
                (default for smoke)
  --bin PATH    use this latentr3 binary instead of building one
  --data DIR    the data folder (default $LATENTR3_DATA, else ../shared/datasets/amazon18)
  --dry-run     print the runs, their keys, folders, state and commands; run nothing
  --status      print each run's progress (steps or users done of the total, time so far, ETA); run nothing
  --runs DIR    the run store, relative to the repository root (default $LATENTR3_RUNS, else runs/ beside the
                model cache: ~/.cache/latentr3/runs; `--runs runs` uses the working tree's runs/ as before)
  --allow-mixed-code
                write a result whose runs were made by different code (commits); without it such a result is
                refused (runs that recorded no commit do not count)";

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
    /// Write results whose runs were made by different code.
    pub allow_mixed_code: bool,
    /// Print each run's progress and run nothing.
    pub status: bool,
    /// The run store (`--runs`; relative to the repository root).
    pub runs: Option<PathBuf>,
}

impl Args {
    /// Parses the arguments after `reproduce`.
    pub fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut target = None;
        let (mut scale, mut device, mut release, mut bin, mut data, mut dry_run) =
            (None, None, None, None, None, false);
        let (mut allow_mixed_code, mut status, mut runs) = (false, false, None);
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
                "--allow-mixed-code" => allow_mixed_code = true,
                "--status" => status = true,
                "--runs" => runs = Some(PathBuf::from(value("--runs")?)),
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
            allow_mixed_code,
            status,
            runs,
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

/// The default run store: `$LATENTR3_RUNS`, else `runs/` beside the model cache `$LATENTR3_CACHE`, else
/// `~/.cache/latentr3/runs`: outside the working tree, so that runs outlive a checkout and a clean.
pub fn default_runs_dir() -> PathBuf {
    if let Some(r) = std::env::var_os("LATENTR3_RUNS") {
        return PathBuf::from(r);
    }
    if let Some(c) = std::env::var_os("LATENTR3_CACHE") {
        let cache = PathBuf::from(c);
        return cache.parent().map_or_else(|| cache.join("runs"), |p| p.join("runs"));
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("latentr3").join("runs")
}

/// `--status`: each run's progress and ETA (see [`crate::status`]).
fn print_status(plans: &Plans<'_>, setting: &Setting) {
    for (e, stem, runs) in plans.plans.iter() {
        println!("{} ({stem}, {} scale):", e.name, setting.scale);
        // The size of the train split, for the steps of an SFT run that trains on all of it.
        let rows = r3_data::Dataset::load(&setting.data_dir, stem).ok().map(|d| d.train.len() as u64);
        for line in crate::status::status_lines(runs, rows) {
            println!("{line}");
        }
    }
    for (name, why) in &plans.skipped {
        println!("{name}: skipped: {why}");
    }
}

/// The experiments to run with their dataset stems and planned runs, and those skipped with the reason.
struct Plans<'a> {
    plans: Vec<(&'a Experiment, String, Vec<PlannedRun>)>,
    skipped: Vec<(String, String)>,
}

/// Plans every chosen experiment first, so that a configuration error stops the command before hours of training.
fn plan_all<'a>(chosen: Vec<&'a Experiment>, setting: &Setting) -> anyhow::Result<Plans<'a>> {
    let mut out = Plans { plans: Vec::new(), skipped: Vec::new() };
    for e in chosen {
        if !e.manifest.scales().contains(&setting.scale) {
            out.skipped.push((e.name.clone(), format!("not defined at the {} scale", setting.scale)));
            continue;
        }
        match resolve_dataset(&setting.data_dir, &e.manifest.experiment.dataset)? {
            None => out.skipped.push((
                e.name.clone(),
                format!("no `{}` in {}", e.manifest.experiment.dataset, setting.data_dir.display()),
            )),
            Some(stem) => out.plans.push((e, stem.clone(), plan(&e.manifest, setting, &stem)?)),
        }
    }
    Ok(out)
}

/// `--dry-run`: prints the runs, their keys, folders, state and commands.
fn print_plans(plans: &Plans<'_>, scale: Scale) {
    for (e, stem, runs) in &plans.plans {
        println!("{} ({stem}, {scale} scale; {}):", e.name, e.path.display());
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
    for (name, why) in &plans.skipped {
        println!("{name}: skipped: {why}");
    }
}

/// What every experiment of one `reproduce` shares: every manifest (the reference rows), the setting, the executor
/// and the arguments.
struct Session<'a> {
    all: &'a [Experiment],
    setting: &'a Setting,
    exec: &'a Executor<'a>,
    args: &'a Args,
}

/// The paired comparisons of an experiment's report evaluation with its reference rows (those done at this
/// scale); prints the references that are not.
fn comparisons(e: &Experiment, stem: &str, runs: &[PlannedRun], s: &Session<'_>) -> anyhow::Result<Vec<Comparison>> {
    if e.manifest.report.compare.is_empty() {
        return Ok(Vec::new());
    }
    let main = runs.iter().find(|r| r.id == e.manifest.report.run).context("the report's run was not planned")?;
    let main = EvalOutcome::read(&eval_dir(main), main.kind)?;
    let (found, missing) = reference_comparisons(e, &main, s.all, s.setting, stem)?;
    for m in missing {
        eprintln!("reproduce: {}: no paired comparison with {m}", e.name);
    }
    for c in &found {
        for p in c.entries.iter().filter(|p| !p.name.contains(' ')) {
            eprintln!("    {:<18} {}", format!("Δ {} vs {}", p.name, c.row), fmt_paired(p));
        }
    }
    Ok(found)
}

/// Runs what is missing of one experiment's runs and writes its result file; returns its path and its closing
/// summary ([`crate::summary`]).
fn run_experiment(
    e: &Experiment,
    stem: &str,
    runs: &[PlannedRun],
    s: &Session<'_>,
) -> anyhow::Result<(PathBuf, String)> {
    let (exec, args) = (s.exec, s.args);
    eprintln!("reproduce: {} ({stem}, {} scale, --device {})", e.name, args.scale, args.device);
    let t = Instant::now();
    let mut records = Vec::new();
    for r in runs {
        let wall = exec.execute(r, &e.name).with_context(|| format!("run `{}`", r.id))?;
        records.push(run_record(exec.root, exec.runs, r, wall)?);
    }
    if mixed_commits(records.iter().filter_map(|r| r.commit.as_deref())) && !args.allow_mixed_code {
        let code: Vec<String> =
            records.iter().map(|r| format!("{}: {}", r.id, r.commit.as_deref().unwrap_or("?"))).collect();
        bail!(
            "its runs were made by different code ({}): rerun the older runs (delete their folders) or pass \
             --allow-mixed-code",
            code.join(", ")
        );
    }
    let command = format!("cargo xtask reproduce {} --scale {} --device {}", e.name, args.scale, args.device);
    let ctx = ReportContext {
        root: exec.root,
        data: exec.data,
        stem,
        hw: exec.hardware,
        device: &args.device,
        command: &command,
    };
    let mut result = report(e, args.scale, runs, records, &ctx)?;
    result.comparisons = comparisons(e, stem, runs, s)?;
    let path = ResultFile::path(exec.root, &e.name, args.scale);
    result.write(&path)?;
    eprintln!("reproduce: {} in {:.0} s → {}", e.name, t.elapsed().as_secs_f64(), path.display());
    // The summary is for reading: a failure to build it does not fail the written result.
    let summary = crate::summary::summary(e, &result, runs, exec.data)
        .unwrap_or_else(|err| format!("{}: written; no example users ({err:#})", e.name));
    Ok((path, summary))
}

/// Runs `cargo xtask reproduce`.
pub fn run(root: &Path, argv: &[String]) -> anyhow::Result<()> {
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = Args::parse(argv)?;
    let all = discover(root)?;
    let data = args.data.clone().unwrap_or_else(|| default_data_dir(root));
    let runs = args.runs.as_ref().map_or_else(default_runs_dir, |r| root.join(r));
    let setting = Setting {
        root: root.to_path_buf(),
        data_dir: data.clone(),
        scale: args.scale,
        device: args.device.clone(),
        runs,
    };
    let mut plans = plan_all(select(&all, &args.target)?, &setting)?;
    // A reference row runs before the rows compared with it.
    plans.plans = references_first(plans.plans, |p| p.0);
    if args.dry_run {
        print_plans(&plans, args.scale);
        return Ok(());
    }
    if args.status {
        print_status(&plans, &setting);
        return Ok(());
    }
    if plans.plans.is_empty() {
        let why: Vec<String> = plans.skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        bail!("nothing to run: {}", why.join("; "));
    }
    // The binary's code is known when it is built here from this tree.
    let (bin, code) = match &args.bin {
        Some(b) => (b.clone(), None),
        None => (build_binary(root, args.release, args.backend())?, Some(Provenance::of_working_tree(root))),
    };
    let mut caps = Capabilities::new(bin.clone());
    let hw = hardware(&args.device);
    let exec = Executor { bin: &bin, root, runs: &setting.runs, data: &data, hardware: &hw, code };
    let (mut failures, mut written) = (Vec::new(), Vec::new());
    for (e, stem, runs) in &plans.plans {
        let not_runnable: Vec<String> =
            runs.iter().flat_map(|r| r.requires.iter()).filter_map(|q| caps.missing(q)).collect();
        if !not_runnable.is_empty() {
            plans.skipped.push((e.name.clone(), format!("not runnable: {}", not_runnable.join("; "))));
            continue;
        }
        let session = Session { all: &all, setting: &setting, exec: &exec, args: &args };
        match run_experiment(e, stem, runs, &session) {
            Ok(done) => written.push(done),
            Err(err) => {
                eprintln!("reproduce: {} failed: {err:#}", e.name);
                failures.push(format!("{}: {err:#}", e.name));
            }
        }
    }
    for (name, why) in &plans.skipped {
        eprintln!("reproduce: {name}: skipped: {why}");
    }
    eprintln!("reproduce: {} result file(s) written", written.len());
    if !written.is_empty() {
        crate::tables::run(root)?;
    }
    // The end of the output: each result's table, example users and what its scale was.
    for (_, summary) in &written {
        println!("\n{summary}");
    }
    if !failures.is_empty() {
        bail!("{} experiment(s) failed:\n  {}", failures.len(), failures.join("\n  "));
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
        assert_eq!((a.release, a.dry_run, a.device.as_str(), a.allow_mixed_code), (false, true, "flex", false));
        assert!(Args::parse(&s(&["all", "--scale", "cpu", "--allow-mixed-code"])).unwrap().allow_mixed_code);
        assert!(Args::parse(&s(&["all"])).unwrap_err().to_string().contains("--scale is required"));
        assert!(Args::parse(&s(&["all", "--scale", "big"])).unwrap_err().to_string().contains("unknown scale"));
        assert!(Args::parse(&s(&["all", "--scale", "cpu", "--device", "tpu"])).is_err());
        assert!(Args::parse(&s(&["--scale", "cpu"])).is_err());
    }

    #[test]
    fn runs_of_different_known_code_are_mixed() {
        let m = |v: &[&str]| mixed_commits(v.iter().copied());
        assert!(!m(&[]) && !m(&["unknown", "unknown"]) && !m(&["abc", "unknown", "abc"]));
        assert!(m(&["abc", "abc-dirty"]) && m(&["abc", "unknown", "def"]));
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
}
