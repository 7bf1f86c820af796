//! Raw Amazon 2018 ingestion: review and metadata JSON lines in, the BIGRec / D3 / R3 layout out
//! (`latentr3 data prepare`).
//!
//! [`prepare`] reproduces the official `process.py` of BIGRec / D3 / R3 row for row:
//!
//! 1. [`read_reviews`] streams `{category}_5.json[.gz]` into compact [`Review`] records (file order), and
//!    [`read_metadata`] streams `meta_{category}.json[.gz]`, keeping the raw titles of the reviewed ASINs.
//! 2. Titles are checked and cleaned ([`check_title`]); items without an acceptable title are removed.
//! 3. The reviews in the time window `[start, end]` go through the iterative k-core; when a window that starts
//!    after 1996 keeps fewer than `min_items` items, everything restarts with the start moved back 3 months.
//! 4. The kept items are numbered by CPython's `random.seed(seed); random.shuffle(items)` ([`PyRandom`]).
//! 5. Each user's reviews, sorted by time, give one sample per review after the first (history: the up to 10
//!    reviews before it); the samples, sorted by target time, are split 80 / 10 / 10 into train / valid / test.
//!
//! Each raw file is read once; all windows and k-core iterations run on the in-memory records.
//! [`synth::write_synthetic`] writes a realistic synthetic raw set for benchmarks and tests.
//!
//! ```
//! use r3_data::raw::{PrepareConfig, YearMonth};
//! let start = YearMonth::parse("--start", "2015-10")?;
//! let cfg = PrepareConfig { category: "CDs_and_Vinyl".into(), start, ..Default::default() };
//! cfg.validate()?;
//! assert_eq!(cfg.stem_for(cfg.start), "CDs_and_Vinyl_5_2015-10-2018-11");
//! # Ok::<(), r3_data::Error>(())
//! ```

mod kcore;
mod pyrandom;
mod reader;
mod samples;
pub mod synth;
mod window;

use std::path::Path;
use std::time::Instant;

pub use pyrandom::PyRandom;
pub use reader::{
    Interner, Metadata, MetadataStats, Review, Reviews, TitleOutcome, check_title, clean_title_once, read_metadata,
    read_reviews,
};
pub use window::YearMonth;

use crate::error::{Error, Result};
use crate::layout::{Catalogue, Split, write_split};

/// Progress of a long stage, in bytes of the input file as stored (compressed for gzip).
///
/// The library calls it; `latentr3` draws it with `indicatif`. Use [`NoProgress`] to ignore it.
pub trait Progress {
    /// A stage starts (`reviews`, `metadata`, `k-core`, `write`); `total_bytes` is the file size when known.
    fn stage(&self, name: &str, total_bytes: Option<u64>);
    /// `bytes` more bytes of the current stage's file were read.
    fn advance(&self, bytes: u64);
    /// The current stage is done.
    fn finish_stage(&self);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _name: &str, _total_bytes: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn finish_stage(&self) {}
}

/// The settings of `latentr3 data prepare`; the defaults are those of the official `process.py`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrepareConfig {
    /// (string) The Amazon category, e.g. `CDs_and_Vinyl`; the first part of the dataset stem.
    pub category: String,
    /// (int) The k of the k-core: every kept user and item has at least `k` reviews in the window. `[CODE]` 5.
    pub k: usize,
    /// (YYYY-MM) The first month of the window, before any move. `[CODE]` 2017-10.
    pub start: YearMonth,
    /// (YYYY-MM) The window ends at the first second of this month, inclusive. `[CODE]` 2018-11.
    pub end: YearMonth,
    /// (int) While the window starts after 1996 and a k-core iteration counts fewer items than this, the start
    /// moves back 3 months and everything restarts.
    ///
    /// NOTE: `process.py` hard-codes 10000 items and moves the start back one year; we parameterise its rule
    /// (default 5000 items) and move by 3 months, so the final start can fall between the original's.
    pub min_items: usize,
    /// (int) The seed of `random.seed` before the item shuffle. `[CODE]` 42.
    pub seed: u64,
    /// (int) The maximum history length of a sample. `[CODE]` 10.
    pub max_history: usize,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        PrepareConfig {
            category: String::new(),
            k: 5,
            start: YearMonth { year: 2017, month: 10 },
            end: YearMonth { year: 2018, month: 11 },
            min_items: 5000,
            seed: 42,
            max_history: 10,
        }
    }
}

impl PrepareConfig {
    /// Checks the settings and says how to fix each failure.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| Err(Error::Setting { key: key.into(), message });
        if self.category.is_empty() {
            return bad("category", "the category is empty: pass the Amazon category, e.g. CDs_and_Vinyl".into());
        }
        if self.category.contains(['/', '\\', '\0']) || self.category.starts_with('.') {
            return bad(
                "category",
                format!(
                    "`{}` cannot be a file name stem: use the Amazon category name, e.g. CDs_and_Vinyl",
                    self.category
                ),
            );
        }
        if self.k == 0 {
            return bad("k", "k must be at least 1 (the official value is 5)".into());
        }
        self.start.check("start")?;
        self.end.check("end")?;
        if self.start > self.end {
            return bad("start", format!("the window start {} is after its end {}: swap them", self.start, self.end));
        }
        if self.max_history == 0 {
            return bad("max_history", "max_history must be at least 1 (the official value is 10)".into());
        }
        Ok(())
    }

    /// The dataset stem for a window start: `{category}_{k}_{start}-{end}` with unpadded months, e.g.
    /// `CDs_and_Vinyl_5_2015-10-2018-11`.
    pub fn stem_for(&self, start: YearMonth) -> String {
        format!("{}_{}_{}-{}", self.category, self.k, start.stem_part(), self.end.stem_part())
    }
}

/// Wall-clock seconds of each stage of [`prepare`].
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Timings {
    /// Reading the reviews file.
    pub read_reviews_s: f64,
    /// Reading the metadata file.
    pub read_metadata_s: f64,
    /// Windows and k-core iterations.
    pub kcore_s: f64,
    /// Item ids, samples and the split.
    pub samples_s: f64,
    /// Writing the four files.
    pub write_s: f64,
    /// Everything.
    pub total_s: f64,
}

/// What [`prepare`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrepareReport {
    /// The stem of the written files (with the final window start).
    pub stem: String,
    /// The final window start.
    pub start: YearMonth,
    /// The window end.
    pub end: YearMonth,
    /// How many times the window start moved back 3 months.
    pub window_moves: u32,
    /// k-core iterations over all windows.
    pub kcore_iterations: u32,
    /// Lines of the reviews file.
    pub review_lines: u64,
    /// Distinct reviewers in the reviews file.
    pub raw_users: usize,
    /// Distinct ASINs in the reviews file.
    pub raw_items: usize,
    /// Counts over the metadata file.
    pub metadata: MetadataStats,
    /// Kept users.
    pub users: usize,
    /// Kept items (the catalogue size).
    pub items: usize,
    /// Kept reviews.
    pub reviews_kept: usize,
    /// Train rows.
    pub train_rows: usize,
    /// Validation rows.
    pub valid_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Stage timings.
    pub timings: Timings,
}

impl std::fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "stem            {}", self.stem)?;
        writeln!(f, "window          {} .. {} ({} moves of 3 months)", self.start, self.end, self.window_moves)?;
        writeln!(
            f,
            "raw             {} reviews, {} users, {} items",
            self.review_lines, self.raw_users, self.raw_items
        )?;
        writeln!(
            f,
            "metadata        {} records, {} of reviewed items, {} titles kept",
            self.metadata.lines, self.metadata.matched, self.metadata.kept
        )?;
        writeln!(
            f,
            "k-core          {} users, {} items, {} reviews ({} iterations)",
            self.users, self.items, self.reviews_kept, self.kcore_iterations
        )?;
        writeln!(f, "rows            train {} / valid {} / test {}", self.train_rows, self.valid_rows, self.test_rows)?;
        let t = &self.timings;
        write!(
            f,
            "time            {:.2} s (reviews {:.2}, metadata {:.2}, k-core {:.2}, samples {:.2}, write {:.2})",
            t.total_s, t.read_reviews_s, t.read_metadata_s, t.kcore_s, t.samples_s, t.write_s
        )
    }
}

/// Turns a raw reviews file and a raw metadata file into `info/{stem}.txt` and `{train,valid,test}/{stem}.csv`
/// under `out_dir`, exactly as the official `process.py` does (see the [module docs](self)).
///
/// The files are written one by one, atomically, with [`Catalogue::write`] and [`write_split`] (the same
/// writers as [`Dataset::write`](crate::Dataset::write)); each split is built just before it is written, so only
/// one split's rows are in memory at a time.
///
/// Errors: an invalid config ([`Error::Setting`]), a missing or malformed raw file (naming file, line and
/// field), no item surviving the k-core, or a failed write.
pub fn prepare(
    reviews: &Path,
    meta: &Path,
    out_dir: &Path,
    cfg: &PrepareConfig,
    progress: &dyn Progress,
) -> Result<PrepareReport> {
    cfg.validate()?;
    let t0 = Instant::now();
    let raw = read_reviews(reviews, progress)?;
    let t_reviews = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let metadata = read_metadata(meta, &raw.items, progress)?;
    let t_meta = t1.elapsed().as_secs_f64();

    check_inputs(reviews, meta, &raw, &metadata)?;

    let t2 = Instant::now();
    progress.stage("k-core", None);
    let core = kcore::run(&raw, &metadata, cfg);
    progress.finish_stage();
    let t_kcore = t2.elapsed().as_secs_f64();
    if core.items.is_empty() {
        return Err(Error::Setting {
            key: "k".into(),
            message: format!(
                "no item has {} reviews from {} to {} after removing the items without a usable title: lower k or \
                 move the window start earlier",
                cfg.k, core.start, cfg.end
            ),
        });
    }
    let stem = cfg.stem_for(core.start);

    let t3 = Instant::now();
    let items_by_id = samples::shuffled_items(&core, cfg.seed);
    let samples = samples::Samples::build(&raw, &core, &items_by_id, cfg.max_history);
    let (a, b) = samples.cuts();
    let n = samples.len();
    let t_samples = t3.elapsed().as_secs_f64();

    let t4 = Instant::now();
    progress.stage("write", None);
    let titles: Vec<String> =
        items_by_id.iter().map(|&i| core.titles[i as usize].clone().expect("every kept item has a title")).collect();
    Catalogue::from_titles(titles).write(&out_dir.join("info").join(format!("{stem}.txt")))?;
    for (split, range) in [(Split::Train, 0..a), (Split::Valid, a..b), (Split::Test, b..n)] {
        let rows = samples.interactions(&raw, &core.titles, range);
        write_split(&split.path(out_dir, &stem), &rows)?;
    }
    progress.finish_stage();
    let t_write = t4.elapsed().as_secs_f64();

    let report = PrepareReport {
        stem,
        start: core.start,
        end: cfg.end,
        window_moves: core.moves,
        kcore_iterations: core.iterations,
        review_lines: raw.records.len() as u64,
        raw_users: raw.users.len(),
        raw_items: raw.items.len(),
        metadata: metadata.stats,
        users: core.users,
        items: core.items.len(),
        reviews_kept: core.kept.len(),
        train_rows: a,
        valid_rows: b - a,
        test_rows: n - b,
        timings: Timings {
            read_reviews_s: t_reviews,
            read_metadata_s: t_meta,
            kcore_s: t_kcore,
            samples_s: t_samples,
            write_s: t_write,
            total_s: t0.elapsed().as_secs_f64(),
        },
    };
    tracing::info!(stem = %report.stem, users = report.users, items = report.items, rows = n, "prepared");
    Ok(report)
}

/// Errors for raw inputs that read correctly but cannot give any item, each saying what is wrong, so that the
/// k-core's "lower k" advice is given only when k is the cause: no review at all, no metadata record at all, no
/// metadata record of a reviewed ASIN (the two files are of different categories), or no title among them.
fn check_inputs(reviews: &Path, meta: &Path, raw: &Reviews, metadata: &Metadata) -> Result<()> {
    let unusable = |path: &Path, message: String| Err(Error::Unusable { path: path.to_path_buf(), message });
    if raw.records.is_empty() {
        return unusable(reviews, "the reviews file has no review: expected one JSON object per line".into());
    }
    let stats = &metadata.stats;
    if stats.lines == 0 {
        return unusable(meta, "the metadata file has no record: expected one JSON object per line".into());
    }
    if stats.matched == 0 {
        return unusable(
            meta,
            format!(
                "none of its {} records has the ASIN of one of the {} reviewed items of {}: the reviews and the \
                 metadata are of different categories (or files); pass the `meta_{{category}}.json.gz` of the \
                 reviews' category",
                stats.lines,
                raw.items.len(),
                reviews.display()
            ),
        );
    }
    if metadata.titled() == 0 {
        return unusable(
            meta,
            format!(
                "none of the {} records of reviewed items has a usable `title` ({} without one, {} with scraped \
                 HTML): every item needs a title; check that this is the metadata file of the reviews",
                stats.matched, stats.missing, stats.span_id
            ),
        );
    }
    Ok(())
}
