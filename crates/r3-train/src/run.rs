//! The run folder (STYLE.md §9): `config.resolved.toml` and `env.json` written before training,
//! `metrics.jsonl` appended during it, and `checkpoints/` (see [`crate::checkpoint`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::SftConfig;
use crate::error::{Error, Result};

/// The resolved configuration of a run.
pub const CONFIG_FILE: &str = "config.resolved.toml";
/// The environment of a run.
pub const ENV_FILE: &str = "env.json";
/// One JSON object per optimizer step and per validation.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// The burn version this crate is built against (pinned exactly in the workspace).
pub const BURN_VERSION: &str = "0.22.1";

/// The environment of a run, written to `env.json` before training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunEnv {
    /// `git rev-parse HEAD` of the working directory, when git and a repository are available.
    pub git_commit: Option<String>,
    /// Whether the working tree had uncommitted changes (`git status --porcelain` non-empty).
    pub git_dirty: Option<bool>,
    /// The burn version.
    pub burn_version: String,
    /// The device, as burn prints it.
    pub device: String,
    /// The configured dtype (`model.dtype`).
    pub dtype: String,
    /// The host name (`/etc/hostname` or `$HOSTNAME`).
    pub hostname: Option<String>,
    /// Seconds since the Unix epoch when the run (or the resumed session) started.
    pub unix_time: u64,
    /// The same time as `YYYY-MM-DDTHH:MM:SSZ`.
    pub time_utc: String,
    /// This crate's version.
    pub r3_train_version: String,
}

impl RunEnv {
    /// Collects the environment now.
    pub fn collect(device: &burn::tensor::Device, config: &SftConfig) -> Self {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let hostname = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok());
        let unix_time = now_unix();
        RunEnv {
            git_commit: git(&["rev-parse", "HEAD"]).filter(|s| !s.is_empty()),
            git_dirty: git(&["status", "--porcelain"]).map(|s| !s.is_empty()),
            burn_version: BURN_VERSION.into(),
            device: format!("{device:?}"),
            dtype: format!("{:?}", config.model.dtype).to_lowercase(),
            hostname,
            unix_time,
            time_utc: utc_timestamp(unix_time as i64, true),
            r3_train_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ` (`iso`) or `YYYYMMDD-HHMMSS` (a folder name) of a Unix time.
pub fn utc_timestamp(t: i64, iso: bool) -> String {
    let date = r3_data::utc_date(t); // YYYY-MM-DD
    let s = t.rem_euclid(86_400);
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if iso {
        format!("{date}T{h:02}:{m:02}:{sec:02}Z")
    } else {
        format!("{}-{h:02}{m:02}{sec:02}", date.replace('-', ""))
    }
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricRecord {
    /// An optimizer step.
    Step {
        /// The 1-based optimizer step.
        step: u64,
        /// The 0-based epoch.
        epoch: usize,
        /// The loss of the global batch (Σ NLL / target tokens).
        loss: f64,
        /// The learning rate used.
        lr: f64,
        /// The global gradient norm before clipping.
        grad_norm: f64,
        /// The real target tokens of the batch.
        tokens: u64,
        /// Target tokens per second of this step.
        tokens_per_s: f64,
        /// Seconds of training so far (over all sessions of the run).
        elapsed_s: f64,
    },
    /// A validation.
    Eval {
        /// The optimizer steps taken.
        step: u64,
        /// The 0-based epoch.
        epoch: usize,
        /// The validation loss.
        val_loss: f64,
    },
}

impl MetricRecord {
    /// The step of the record.
    pub fn step(&self) -> u64 {
        match self {
            MetricRecord::Step { step, .. } | MetricRecord::Eval { step, .. } => *step,
        }
    }
}

/// Reads `metrics.jsonl`.
///
/// # Errors
/// [`Error::Io`], or [`Error::Json`] naming the file for a bad line.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<MetricRecord>> {
    let path = run_dir.join(METRICS_FILE);
    let file = File::open(&path).map_err(|e| Error::io(&path, "open", e))?;
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(&path, "read", e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|source| Error::Json { path: path.clone(), source })?);
    }
    Ok(out)
}

/// Appends records to `metrics.jsonl`, one line each, flushed at once (a killed run loses no written line).
pub(crate) struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    /// Opens the file for appending, after dropping the records of steps later than `keep_until` (a resumed run
    /// replays them).
    pub(crate) fn open(run_dir: &Path, keep_until: Option<u64>) -> Result<Self> {
        let path = run_dir.join(METRICS_FILE);
        if let Some(step) = keep_until
            && path.exists()
        {
            let kept: Vec<MetricRecord> = read_metrics(run_dir)?.into_iter().filter(|r| r.step() <= step).collect();
            r3_data::write_atomic(&path, |w| {
                for r in &kept {
                    serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, "open", e))?;
        Ok(MetricsWriter { path, file })
    }

    /// Appends one record.
    pub(crate) fn write(&mut self, record: &MetricRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|source| Error::Json { path: self.path.clone(), source })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::io(&self.path, "append", e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, "flush", e))
    }
}

/// Writes `config.resolved.toml` and `env.json` into `run_dir` (atomically).
pub(crate) fn write_run_files(run_dir: &Path, config: &SftConfig, env: &RunEnv) -> Result<()> {
    let toml = config.to_toml()?;
    r3_data::write_atomic(&run_dir.join(CONFIG_FILE), |w| w.write_all(toml.as_bytes()))?;
    write_json(&run_dir.join(ENV_FILE), env)
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json { path: path.into(), source })?;
    r3_data::write_atomic(path, |w| w.write_all(&bytes))?;
    Ok(())
}

/// Reads a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: path.into(), source })
}
