//! The run folder: `config.resolved.toml` and `env.json` written before training, `metrics.jsonl` appended during
//! it (one record of the stage's type per line), `summary.json` at the end, and `checkpoints/` (see
//! [`crate::checkpoint`]).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The resolved configuration of a run.
pub const CONFIG_FILE: &str = "config.resolved.toml";
/// The environment of a run.
pub const ENV_FILE: &str = "env.json";
/// One JSON object per optimizer step and per validation.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The summary written when a run ends.
pub const SUMMARY_FILE: &str = "summary.json";

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
    /// The version of the training crates.
    pub r3_train_version: String,
}

impl RunEnv {
    /// Collects the environment now, for a run on `device` in `dtype` (`"f32"`, `"bf16"`).
    pub fn collect(device: &burn::tensor::Device, dtype: &str) -> Self {
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
            dtype: dtype.into(),
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

/// The hex SHA-256 of a resolved config's text: a checkpoint records it, and resuming checks it.
pub fn config_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A line of `metrics.jsonl`: any serde type that knows its optimizer step (a resumed run drops the lines of
/// the steps it replays).
pub trait MetricLine: Serialize + DeserializeOwned {
    /// The optimizer step of the record.
    fn step(&self) -> u64;
}

/// Reads every record of `metrics.jsonl` in `run_dir`.
///
/// # Errors
/// [`Error::Io`], or [`Error::Json`] naming the file for a line that is not a record of type `R`.
pub fn read_metrics<R: MetricLine>(run_dir: &Path) -> Result<Vec<R>> {
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
pub struct MetricsFile<R> {
    path: PathBuf,
    file: File,
    _record: PhantomData<fn(&R)>,
}

impl<R: MetricLine> MetricsFile<R> {
    /// Opens the file for appending, after dropping the records of steps later than `keep_until` (a resumed run
    /// replays them).
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Json`] for a line that is not a record of type `R`.
    pub fn open(run_dir: &Path, keep_until: u64) -> Result<Self> {
        let path = run_dir.join(METRICS_FILE);
        if path.exists() {
            let kept: Vec<R> = read_metrics::<R>(run_dir)?.into_iter().filter(|r| r.step() <= keep_until).collect();
            r3_data::write_atomic(&path, |w| {
                for r in &kept {
                    serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
                    w.write_all(b"\n")?;
                }
                Ok(())
            })?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, "open", e))?;
        Ok(MetricsFile { path, file, _record: PhantomData })
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Json`] naming the file.
    pub fn write(&mut self, record: &R) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|source| Error::Json { path: self.path.clone(), source })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::io(&self.path, "append", e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, "flush", e))
    }
}

/// Writes a value as pretty JSON, atomically.
///
/// # Errors
/// [`Error::Json`] or an atomic-write error naming the file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json { path: path.into(), source })?;
    r3_data::write_atomic(path, |w| w.write_all(&bytes))?;
    Ok(())
}

/// Reads a JSON file.
///
/// # Errors
/// [`Error::Io`] or [`Error::Json`] naming the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: path.into(), source })
}

/// Creates a fresh run folder (`base`, or `base/YYYYMMDD-HHMMSS` when `timestamped`) and writes
/// `config.resolved.toml` (`config_toml`) and `env.json` into it. Returns the folder.
///
/// # Errors
/// [`Error::Checkpoint`] when the folder already holds a run (`what` names the type to resume it with), and the
/// I/O errors of writing.
pub fn create_run_dir(base: &Path, timestamped: bool, config_toml: &str, env: &RunEnv, what: &str) -> Result<PathBuf> {
    let run_dir = if timestamped { base.join(utc_timestamp(now_unix() as i64, false)) } else { base.to_path_buf() };
    if crate::checkpoint::latest(&run_dir)?.is_some() || run_dir.join(METRICS_FILE).exists() {
        return Err(Error::Checkpoint {
            path: run_dir,
            message: format!("already holds a run: resume it (`{what}::resume`) or choose another `run.output_dir`"),
        });
    }
    std::fs::create_dir_all(&run_dir).map_err(|e| Error::io(&run_dir, "create run folder", e))?;
    r3_data::write_atomic(&run_dir.join(CONFIG_FILE), |w| w.write_all(config_toml.as_bytes()))?;
    write_json(&run_dir.join(ENV_FILE), env)?;
    Ok(run_dir)
}
