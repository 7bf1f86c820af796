//! `latentr3 metrics`: HR@K and NDCG@K of a prediction file, as the official evaluation computes them.
//!
//! The prediction records are matched to the rows of a split *by index*, because the official inference script
//! writes one record per row in split order. Each record's stripped target must equal its row's stripped
//! `item_title`; that check catches a file written for another split, stem or row order before any number is
//! printed. The report holds the metrics by title (the official ones) and by item id, per popularity bucket of the
//! target item, the predictions outside the catalogue, and with `--baseline` the relative gains with paired-
//! bootstrap 95% intervals.

use std::path::{Path, PathBuf};

use anyhow::bail;
use r3_data::{Dataset, Interaction, Popularity, Split};
use r3_metrics::{
    Baseline, BootstrapConfig, Cutoffs, PredictionRecord, Report, ReportInput, TitleIndex, read_predictions,
    strip_target, strip_target_text,
};

use super::DatasetArgs;

/// `--k` and `--coverage`: the cut-offs and the popularity buckets of the metric tables (`metrics`, `eval`).
#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// The cut-offs K of HR@K and NDCG@K, comma-separated ([CODE] 1,3,5,10,20; the paper reports 5 and 10).
    #[arg(long, default_value = "1,3,5,10,20")]
    pub k: Cutoffs,
    /// Share of train interactions covered by the "popular" items (the popularity buckets).
    #[arg(long, default_value_t = 0.8)]
    pub coverage: f64,
}

impl TableArgs {
    /// The report of `records` (named `name`) on `targets`, the rows they predict in record order: the metrics at
    /// `--k` by title and by item id, per popularity bucket of `--coverage` (see [`super::popularity_config`]), with the gains over `baseline`. The popularity split is returned too.
    pub fn report<'a>(
        &self,
        ds: &Dataset,
        targets: impl IntoIterator<Item = &'a Interaction>,
        name: &str,
        records: &[PredictionRecord],
        baseline: Option<Baseline<'_>>,
        bootstrap: BootstrapConfig,
    ) -> anyhow::Result<(Report, Popularity)> {
        let popularity =
            Popularity::from_train(&ds.train, ds.catalogue.len(), super::popularity_config(self.coverage)?);
        let (labels, ids): (Vec<&str>, Vec<_>) =
            targets.into_iter().map(|r| (popularity.bucket(r.item_id), r.item_id)).unzip();
        let index = TitleIndex::new(&ds.catalogue);
        let report = Report::build(&ReportInput {
            name,
            records,
            index: &index,
            cutoffs: &self.k,
            target_ids: Some(&ids),
            buckets: Some(&labels),
            baseline,
            bootstrap,
        })?;
        Ok((report, popularity))
    }
}

/// Arguments of `latentr3 metrics`.
#[derive(Debug, clap::Args)]
pub struct MetricsArgs {
    /// The prediction file: a JSON array of records with `input`, `output` and `predict`, or JSON lines.
    #[arg(long)]
    pub predictions: PathBuf,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// The split the predictions were made for (train, valid or test).
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// A baseline prediction file on the same split: report our relative gain over it.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Number of paired-bootstrap resamples for the intervals of the gains.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON line instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// The popularity split behind the bucket rows.
#[derive(Debug, serde::Serialize)]
struct PopularitySummary {
    coverage: f64,
    popular_items: usize,
    items: usize,
    covered_share: f64,
}

/// The JSON line of `--json`: where the samples came from, then the report's fields.
#[derive(Debug, serde::Serialize)]
struct MetricsOutput<'a> {
    data: String,
    stem: &'a str,
    split: Split,
    popularity: PopularitySummary,
    #[serde(flatten)]
    report: &'a Report,
}

/// Checks that `records` are the predictions of `rows`, one per row in order.
fn check_alignment(records: &[PredictionRecord], file: &Path, rows: &[Interaction], csv: &Path) -> anyhow::Result<()> {
    if records.len() != rows.len() {
        bail!(
            "{} has {} prediction records but {} has {} rows: the official evaluation writes one record per row in \
             split order; regenerate the predictions for this split, or pass the --stem/--split they were made for",
            file.display(),
            records.len(),
            csv.display(),
            rows.len()
        );
    }
    for (i, (rec, row)) in records.iter().zip(rows).enumerate() {
        let Some(target) = strip_target(&rec.output) else {
            bail!("{}: record {i}: `output` is an empty list (the target must be its first element)", file.display());
        };
        let expected = strip_target_text(&row.item_title);
        if target != expected {
            bail!(
                "{}: record {i} has the target `{target}` but row {i} (line {}) of {} has the item_title \
                 `{expected}`: records must follow the split's row order (the official script writes them in test \
                 order); regenerate the predictions for this --stem/--split, or do not reorder or filter them",
                file.display(),
                i + 2,
                csv.display()
            );
        }
    }
    Ok(())
}

fn read_aligned(file: &Path, rows: &[Interaction], csv: &Path) -> anyhow::Result<Vec<PredictionRecord>> {
    let records = read_predictions(file)?;
    check_alignment(&records, file, rows, csv)?;
    Ok(records)
}

/// Runs `latentr3 metrics`.
pub fn run(args: &MetricsArgs) -> anyhow::Result<()> {
    super::popularity_config(args.table.coverage)?;
    if args.baseline.is_some() && args.bootstrap == 0 {
        bail!("--bootstrap 0: the gains over --baseline need at least 1 resample (default 1000)");
    }
    let dir = args.dataset.dir()?;
    let ds = args.dataset.load(&dir)?;
    let rows = ds.split(args.split);
    let csv = args.split.path(&dir, &args.dataset.stem);
    let records = read_aligned(&args.predictions, rows, &csv)?;
    let baseline = match &args.baseline {
        Some(b) => Some(read_aligned(b, rows, &csv)?),
        None => None,
    };
    tracing::info!(records = records.len(), split = %args.split, stem = %args.dataset.stem, "evaluating predictions");

    let name = args.predictions.display().to_string();
    let base_name = args.baseline.as_ref().map(|b| b.display().to_string());
    let (report, popularity) = args.table.report(
        &ds,
        rows,
        &name,
        &records,
        baseline.as_deref().zip(base_name.as_deref()).map(|(records, name)| Baseline { name, records }),
        BootstrapConfig { resamples: args.bootstrap, seed: args.seed },
    )?;

    let summary = PopularitySummary {
        coverage: args.table.coverage,
        popular_items: popularity.n_popular(),
        items: ds.catalogue.len(),
        covered_share: popularity.covered_share(),
    };
    if args.json {
        let out = MetricsOutput {
            data: dir.display().to_string(),
            stem: &args.dataset.stem,
            split: args.split,
            popularity: summary,
            report: &report,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("dataset: {} ({} split, {} rows) in {}", args.dataset.stem, args.split, rows.len(), dir.display());
        println!(
            "popular items: {} of {}, covering {:.1}% of train interactions (--coverage {})",
            summary.popular_items,
            summary.items,
            100.0 * summary.covered_share,
            summary.coverage
        );
        print!("{}", report.to_table());
    }
    Ok(())
}
