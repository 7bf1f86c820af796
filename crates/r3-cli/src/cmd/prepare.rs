//! `latentr3 data prepare` (raw Amazon 2018 files → the BIGRec / D3 / R3 layout, as the official `process.py`)
//! and `latentr3 data synth` (a synthetic raw set for benchmarks).

use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::ProgressBar;
use r3_data::raw::{PrepareConfig, Progress, YearMonth, prepare, synth};

fn parse_start(s: &str) -> Result<YearMonth, r3_data::Error> {
    YearMonth::parse("--start", s)
}

fn parse_end(s: &str) -> Result<YearMonth, r3_data::Error> {
    YearMonth::parse("--end", s)
}

/// Arguments of `latentr3 data prepare`.
#[derive(Debug, Clone, clap::Args)]
pub struct PrepareArgs {
    /// The raw reviews file, `{category}_5.json` or `{category}.json`, plain or gzip.
    #[arg(long, value_name = "FILE")]
    pub reviews: PathBuf,
    /// The raw metadata file, `meta_{category}.json`, plain or gzip.
    #[arg(long, value_name = "FILE")]
    pub meta: PathBuf,
    /// The Amazon category, e.g. CDs_and_Vinyl: the first part of the dataset stem.
    #[arg(long, value_name = "NAME")]
    pub category: String,
    /// The output folder; info/, train/, valid/ and test/ are created in it.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The first month of the time window, before any move.
    #[arg(long, value_name = "YYYY-MM", default_value = "2017-10", value_parser = parse_start)]
    pub start: YearMonth,
    /// The window ends at the first second of this month (inclusive).
    #[arg(long, value_name = "YYYY-MM", default_value = "2018-11", value_parser = parse_end)]
    pub end: YearMonth,
    /// Every kept user and item has at least k reviews in the window.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// While fewer items survive (and the window starts after 1996), the start moves back 3 months.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub min_items: usize,
    /// The seed of Python's `random.seed` before the item shuffle.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The maximum history length of a sample.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_history: usize,
    /// Print the report as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

impl PrepareArgs {
    /// The library config these arguments describe.
    pub fn config(&self) -> PrepareConfig {
        PrepareConfig {
            category: self.category.clone(),
            k: self.k,
            start: self.start,
            end: self.end,
            min_items: self.min_items,
            seed: self.seed,
            max_history: self.max_history,
        }
    }
}

/// Runs `latentr3 data prepare`: prints the report (text, or one JSON line with `--json`) on stdout and draws
/// one byte progress bar per stage on stderr.
pub fn run_prepare(args: &PrepareArgs) -> anyhow::Result<()> {
    let cfg = args.config();
    tracing::info!(config = ?cfg, reviews = %args.reviews.display(), meta = %args.meta.display(), "data prepare");
    let progress = BarProgress::default();
    let report = prepare(&args.reviews, &args.meta, &args.out, &cfg, &progress)
        .with_context(|| format!("preparing {} into {}", args.reviews.display(), args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
        println!("written under {}", args.out.display());
    }
    Ok(())
}

/// Arguments of `latentr3 data synth`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// The number of review lines to write.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub reviews: usize,
    /// The category name used in the file names.
    #[arg(long, value_name = "NAME", default_value = "Synthetic")]
    pub category: String,
    /// The output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The generator seed; the same seed writes the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `latentr3 data synth`: writes `{category}_5.json` and `meta_{category}.json` and prints their paths.
pub fn run_synth(args: &SynthArgs) -> anyhow::Result<()> {
    if args.reviews == 0 {
        anyhow::bail!("--reviews 0: nothing would be written; ask for at least 1 review line");
    }
    let (reviews, meta) = synth::write_synthetic(&args.out, &args.category, args.reviews, args.seed)
        .with_context(|| format!("writing a synthetic raw set into {}", args.out.display()))?;
    println!("reviews  {}", reviews.display());
    println!("metadata {}", meta.display());
    Ok(())
}

/// Draws the [`Progress`] of `prepare` with `indicatif`: a byte bar for each file stage, a spinner for the
/// others, on stderr (hidden when stderr is not a terminal).
#[derive(Default)]
pub struct BarProgress {
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress for BarProgress {
    fn stage(&self, name: &str, total_bytes: Option<u64>) {
        self.finish_stage();
        let bar = match total_bytes {
            Some(total) => crate::progress::byte_bar(name, total),
            None => crate::progress::spinner(name),
        };
        *self.bar.borrow_mut() = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }

    fn finish_stage(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish();
        }
    }
}
