//! An evaluation run folder: ranked recommendations for the users of a split, appended as they finish, resumable
//! after a kill, and the metrics file (docs/method.md §5; the official `evaluate.py` reads the same records).
//!
//! [`EvalRun::open`] creates or reopens the folder:
//! - `eval.json` ([`EvalSettings`]): what a resumed run must match; a mismatch is refused naming the setting and
//!   both values;
//! - `predictions.jsonl`: one official prediction record per user (`input`, `output`, `predict`, plus `row`,
//!   `user_id`, `item_id`, `scores`, `item_ids`, `latency_s`, `batch_s`, `batch_size` and, for chain-of-thought
//!   decoding, `reasoning`; [`UserRecord`]), appended and synced batch by batch. Reopening skips the users
//!   already in it (a partly written last line is cut off);
//! - `predictions.json`: the same records as one JSON array in user order ([`EvalRun::finish`]);
//! - `metrics.json` ([`EvalMetrics`], [`EvalRun::write_metrics`]).
//!
//! [`EvalRun::evaluate_stream`] decodes the pending users with [`crate::Recommender::recommend_stream`] (users
//! leave the batch as they finish and the next ones join); [`EvalRun::evaluate_batches`] decodes fixed batches
//! through a caller's function (chain-of-thought and guided decoding). A record's `latency_s` is the wall time
//! of the group of users written together divided by its size (`batch_s / batch_size`), so that summed over
//! the users it is the decoding time.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use r3_data::{Encoder, Interaction};
use r3_metrics::{Format, Output, PredictionRecord};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::eval::{Recommended, Recommender};
use crate::settings::EvalSettings;
use crate::stream::StreamStats;

/// The settings file of a run folder.
pub const SETTINGS_FILE: &str = "eval.json";
/// The per-user records, appended batch by batch.
pub const JSONL_FILE: &str = "predictions.jsonl";
/// The predictions in the official layout (one JSON array).
pub const JSON_FILE: &str = "predictions.json";
/// The metrics and latencies.
pub const METRICS_FILE: &str = "metrics.json";

/// The keys a record carries besides the official `input`, `output` and `predict`.
#[derive(Clone, Debug, Serialize)]
pub struct UserRecord<'a> {
    /// The user's row in the split.
    pub row: usize,
    /// The user id of that row.
    pub user_id: &'a str,
    /// The target item id.
    pub item_id: u32,
    /// The beam scores, best first.
    pub scores: Vec<f32>,
    /// The catalogue ids of each recommendation.
    pub item_ids: Vec<Vec<u32>>,
    /// `batch_s / batch_size`.
    pub latency_s: f64,
    /// The wall time of the group of users written together.
    pub batch_s: f64,
    /// The size of that group.
    pub batch_size: usize,
    /// The chain-of-thought reasoning text (only with chain-of-thought decoding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<&'a str>,
}

/// One decoded user: its split row, recommendations and optional reasoning text.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The split row.
    pub row: usize,
    /// The recommendations, best first.
    pub recs: Vec<Recommended>,
    /// The chain-of-thought reasoning text.
    pub reasoning: Option<String>,
}

/// An open run folder (see the module documentation).
#[derive(Debug)]
pub struct EvalRun<'a> {
    dir: PathBuf,
    settings: EvalSettings,
    rows: &'a [Interaction],
    done: HashMap<usize, PredictionRecord>,
    file: Option<File>,
}

impl<'a> EvalRun<'a> {
    /// Creates `dir` (with `eval.json`) or reopens it: checks the settings against its `eval.json` and reads the
    /// finished records of `predictions.jsonl`, cutting off a partly written last line. `rows` is the split.
    ///
    /// # Errors
    /// [`Error::Setting`] for invalid settings, [`Error::SettingsMismatch`] naming the setting that differs from
    /// the folder's, [`Error::Record`] for a record that is not one of this split, and I/O errors.
    pub fn open(dir: &Path, settings: EvalSettings, rows: &'a [Interaction]) -> Result<Self> {
        settings.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the run folder", dir, e))?;
        settings.check_or_write(&dir.join(SETTINGS_FILE))?;
        let done = read_done(&dir.join(JSONL_FILE), rows)?;
        Ok(EvalRun { dir: dir.to_path_buf(), settings, rows, done, file: None })
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings.
    pub fn settings(&self) -> &EvalSettings {
        &self.settings
    }

    /// The rows of `order` that have no record yet, in order.
    pub fn pending(&self, order: &[usize]) -> Vec<usize> {
        order.iter().copied().filter(|r| !self.done.contains_key(r)).collect()
    }

    /// Appends the records of `users`, decoded together in `secs` seconds, and syncs the file.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn append(&mut self, encoder: &Encoder, users: &[Decoded], secs: f64) -> Result<()> {
        let path = self.dir.join(JSONL_FILE);
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).open(&path);
            self.file = Some(f.map_err(|e| Error::io("opening", &path, e))?);
        }
        let mut lines = String::new();
        let mut records = Vec::with_capacity(users.len());
        for u in users {
            let rec = self.record(encoder, u, secs, users.len());
            lines.push_str(&serde_json::to_string(&rec).expect("a prediction record serialises"));
            lines.push('\n');
            records.push((u.row, rec));
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(lines.as_bytes()).map_err(|e| Error::io("appending to", &path, e))?;
        file.sync_data().map_err(|e| Error::io("syncing", &path, e))?;
        self.done.extend(records);
        Ok(())
    }

    /// The prediction record of one user.
    fn record(&self, encoder: &Encoder, user: &Decoded, secs: f64, group: usize) -> PredictionRecord {
        let row = &self.rows[user.row];
        let mut r = PredictionRecord::new(
            input_text(encoder, &row.history_titles),
            Output::Text(format!("\"{}\"\n", row.item_title)),
            user.recs.iter().map(Recommended::predict_text).collect(),
        );
        let extra = UserRecord {
            row: user.row,
            user_id: &row.user_id,
            item_id: row.item_id,
            scores: user.recs.iter().map(|x| x.score).collect(),
            item_ids: user.recs.iter().map(|x| x.item_ids.clone()).collect(),
            latency_s: secs / group as f64,
            batch_s: secs,
            batch_size: group,
            reasoning: user.reasoning.as_deref(),
        };
        if let serde_json::Value::Object(map) = serde_json::to_value(&extra).expect("a record serialises") {
            r.extra = map;
        }
        r
    }

    /// Decodes the users `todo` (split rows) by streaming them through a batch of `width` users
    /// ([`Recommender::recommend_stream`]); records are written in groups of `width` users as they finish.
    /// `progress(users, secs)` is called after each group.
    ///
    /// # Errors
    /// The first error writing the records (decoding continues to the end of the stream, nothing more is written).
    pub fn evaluate_stream(
        &mut self,
        rec: &Recommender<'_>,
        todo: &[usize],
        width: usize,
        progress: &mut (dyn FnMut(usize, f64) + Send),
    ) -> Result<StreamStats> {
        let samples: Vec<_> = todo.iter().map(|&r| rec.encode(&self.rows[r].history_titles)).collect();
        let mut pending: Vec<Decoded> = Vec::new();
        let mut failed: Option<Error> = None;
        let mut since = Instant::now();
        let encoder = rec.encoder();
        let stats = {
            let mut done = |u: usize, recs: Vec<Recommended>| {
                pending.push(Decoded { row: todo[u], recs, reasoning: None });
                if failed.is_none() && pending.len() >= width {
                    let secs = since.elapsed().as_secs_f64();
                    since = Instant::now();
                    let group = std::mem::take(&mut pending);
                    match self.append(encoder, &group, secs) {
                        Ok(()) => progress(group.len(), secs),
                        Err(e) => failed = Some(e),
                    }
                }
            };
            rec.recommend_stream(&samples, width, &mut done)
        };
        if let Some(e) = failed {
            return Err(e);
        }
        if !pending.is_empty() {
            let secs = since.elapsed().as_secs_f64();
            self.append(encoder, &pending, secs)?;
            progress(pending.len(), secs);
        }
        Ok(stats)
    }

    /// Decodes the users `todo` (split rows) in fixed batches of `batch` with `decode(rows, histories)` (which
    /// returns the users' recommendations and reasoning in row order), appending each batch's records.
    ///
    /// # Errors
    /// The errors of `decode` and of writing the records.
    pub fn evaluate_batches<E: From<Error>>(
        &mut self,
        encoder: &Encoder,
        todo: &[usize],
        batch: usize,
        mut decode: impl FnMut(&[usize], &[&[String]]) -> std::result::Result<Vec<(Vec<Recommended>, Option<String>)>, E>,
        mut progress: impl FnMut(usize, f64),
    ) -> std::result::Result<(), E> {
        for chunk in todo.chunks(batch.max(1)) {
            let t = Instant::now();
            let histories: Vec<&[String]> = chunk.iter().map(|&r| self.rows[r].history_titles.as_slice()).collect();
            let out = decode(chunk, &histories)?;
            let secs = t.elapsed().as_secs_f64();
            let users: Vec<Decoded> =
                chunk.iter().zip(out).map(|(&row, (recs, reasoning))| Decoded { row, recs, reasoning }).collect();
            self.append(encoder, &users, secs)?;
            progress(chunk.len(), secs);
        }
        Ok(())
    }

    /// The records of every user of `order` (this session's and earlier ones), in that order, also written as
    /// `predictions.json`.
    ///
    /// # Errors
    /// [`Error::MissingRecord`] when a user of `order` has no record, and write errors.
    pub fn finish(&mut self, order: &[usize]) -> Result<Vec<PredictionRecord>> {
        let jsonl = self.dir.join(JSONL_FILE);
        let records: Vec<PredictionRecord> = order
            .iter()
            .map(|r| self.done.get(r).cloned().ok_or_else(|| Error::MissingRecord { path: jsonl.clone(), row: *r }))
            .collect::<Result<_>>()?;
        r3_metrics::write_predictions(&self.dir.join(JSON_FILE), &records, Format::Json)?;
        Ok(records)
    }

    /// Writes `metrics.json`.
    ///
    /// # Errors
    /// Write errors, naming the file.
    pub fn write_metrics(&self, metrics: &crate::settings::EvalMetrics<'_>) -> Result<()> {
        let path = self.dir.join(METRICS_FILE);
        let text = serde_json::to_string_pretty(metrics).expect("the metrics serialise") + "\n";
        Ok(r3_data::write_atomic(&path, |w| w.write_all(text.as_bytes()))?)
    }
}

/// The `input` of an official record: the user-input text of the prompt (`The user has palyed ...: "a", "b"`).
pub fn input_text(encoder: &Encoder, history: &[String]) -> String {
    let c = encoder.config();
    let block = c.template.user_input(&c.category, history);
    let inner = block.strip_prefix("### User Input: \n").unwrap_or(&block);
    inner.strip_suffix("\n\n### Response: \n").unwrap_or(inner).to_string()
}

/// Reads the finished records of a run's JSONL file, keyed by split row. A last line without its newline (a
/// write cut by a kill) is removed from the file. Every record must belong to the row it names.
fn read_done(path: &Path, rows: &[Interaction]) -> Result<HashMap<usize, PredictionRecord>> {
    let mut done = HashMap::new();
    if !path.exists() {
        return Ok(done);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        tracing::warn!(file = %path.display(), bytes = text.len() - complete, "cutting off a partly written last line");
        let f = OpenOptions::new().write(true).open(path).map_err(|e| Error::io("opening", path, e))?;
        f.set_len(complete as u64).map_err(|e| Error::io("truncating", path, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", path, e))?;
    }
    for (i, line) in text[..complete].lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: String| Error::Record { path: path.to_path_buf(), line: i + 1, what };
        let rec: PredictionRecord = serde_json::from_str(line)
            .map_err(|e| bad(format!("not a prediction record ({e}); delete the file to start over")))?;
        let row = rec.extra.get("row").and_then(serde_json::Value::as_u64).map(|r| r as usize);
        let Some(row) = row.filter(|&r| r < rows.len()) else {
            return Err(bad(format!("the key `row` is missing or outside the split's {} rows", rows.len())));
        };
        let user = rec.extra.get("user_id").and_then(serde_json::Value::as_str);
        if user != Some(rows[row].user_id.as_str()) {
            return Err(bad(format!(
                "`user_id` {user:?} is not row {row}'s user {:?}: the folder belongs to another dataset; pass \
                 another --out",
                rows[row].user_id
            )));
        }
        done.insert(row, rec);
    }
    Ok(done)
}
