//! `latentr3 metrics`: HR@K and NDCG@K of a prediction file, as the official evaluation computes them.
//!
//! The prediction records are matched to the rows of a split *by index*, because the official inference script
//! writes one record per row in split order. Each record's stripped target must equal its row's stripped
//! `item_title`; that check catches a file written for another split, stem or row order before any number is
//! printed. Two other layouts are scored too, and the output says which was used (`scored:` line, `scoring` key):
//! records that carry a `row` field (what `eval --limit` writes) are scored on those rows only; a file without
//! `row` fields and with fewer records than rows is scored by its records alone, matching titles only (no
//! item-id metrics, no popularity buckets), provided every target is a target of the split.
//!
//! A file whose `predict` lists are all empty is an error (exit status 1), not a table of zeros: nothing was
//! generated, and the zeros would say nothing about the model.
//!
//! The report holds the metrics by title (the official ones) and by item id, per popularity bucket of the
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
    /// The prediction file: a JSON array of records with `input`, `output` and `predict` (and optionally `row`),
    /// or JSON lines.
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
    /// Which rows were scored ([`Alignment::describe`]).
    scoring: String,
    popularity: PopularitySummary,
    #[serde(flatten)]
    report: &'a Report,
}

/// How the records of a prediction file map to the rows of the split.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Alignment {
    /// One record per row, in split order (what the official inference script writes).
    All,
    /// A subset: record `i` predicts row `rows[i]`, from the records' `row` fields (what `eval --limit` writes);
    /// the records are sorted by row.
    Rows(Vec<usize>),
    /// Neither one record per row nor `row` fields: the records are scored alone, matching titles only.
    RecordsOnly,
}

impl Alignment {
    /// How the scoring is described in the output.
    fn describe(&self, rows: usize) -> String {
        match self {
            Alignment::All => format!("all {rows} rows, one record per row in split order"),
            Alignment::Rows(r) => format!("{} of {rows} rows, by the records' `row` fields", r.len()),
            Alignment::RecordsOnly => "the records alone (no `row` fields): by title only, without item ids or \
                                       popularity buckets"
                .into(),
        }
    }
}

/// Checks that record `i` (the prediction of row `r`, on `line` of `csv`) has that row's target.
fn check_target(
    rec: &PredictionRecord,
    i: usize,
    r: usize,
    row: &Interaction,
    file: &Path,
    csv: &Path,
) -> anyhow::Result<()> {
    let Some(target) = strip_target(&rec.output) else {
        bail!("{}: record {i}: `output` is an empty list (the target must be its first element)", file.display());
    };
    let expected = strip_target_text(&row.item_title);
    if target != expected {
        bail!(
            "{}: record {i} has the target `{target}` but row {r} (line {}) of {} has the item_title `{expected}`: \
             records must follow the split's row order (the official script writes them in test order) or carry \
             their `row`; regenerate the predictions for this --stem/--split, or do not reorder or filter them",
            file.display(),
            r + 2,
            csv.display()
        );
    }
    Ok(())
}

/// Checks that the targets of `records` (scored without rows) are targets of the split, each at most as often
/// as the split has it: a file made for another split or stem fails here instead of being scored.
fn check_targets_in_split(
    records: &[PredictionRecord],
    file: &Path,
    rows: &[Interaction],
    csv: &Path,
) -> anyhow::Result<()> {
    let mut left: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for row in rows {
        *left.entry(strip_target_text(&row.item_title)).or_default() += 1;
    }
    for (i, rec) in records.iter().enumerate() {
        let Some(target) = strip_target(&rec.output) else {
            bail!("{}: record {i}: `output` is an empty list (the target must be its first element)", file.display());
        };
        match left.get_mut(target) {
            Some(n) if *n > 0 => *n -= 1,
            _ => bail!(
                "{}: record {i} has the target `{target}`, which is not (or not that often) a target of {}: the \
                 records without `row` fields must be predictions of rows of this split; pass the --stem/--split \
                 they were made for",
                file.display(),
                csv.display()
            ),
        }
    }
    Ok(())
}

/// Reads `file` and works out which rows of the split its records predict ([`Alignment`]), checking each
/// record's target against its row. Records with `row` fields are sorted by row.
fn read_aligned(file: &Path, rows: &[Interaction], csv: &Path) -> anyhow::Result<(Vec<PredictionRecord>, Alignment)> {
    let mut records = read_predictions(file)?;
    if records.is_empty() {
        bail!("{} holds no prediction record: there is nothing to score", file.display());
    }
    let row_of = |rec: &PredictionRecord| rec.extra.get("row").map(|v| v.as_u64().map(|r| r as usize));
    let with_rows = records.iter().filter(|r| row_of(r).is_some()).count();
    if with_rows == 0 {
        if records.len() < rows.len() {
            check_targets_in_split(&records, file, rows, csv)?;
            return Ok((records, Alignment::RecordsOnly));
        }
        if records.len() > rows.len() {
            bail!(
                "{} has {} prediction records but {} has {} rows: the official evaluation writes one record per row \
                 in split order; regenerate the predictions for this split, or pass the --stem/--split they were \
                 made for",
                file.display(),
                records.len(),
                csv.display(),
                rows.len()
            );
        }
        for (i, (rec, row)) in records.iter().zip(rows).enumerate() {
            check_target(rec, i, i, row, file, csv)?;
        }
        return Ok((records, Alignment::All));
    }
    if with_rows != records.len() {
        bail!(
            "{}: {with_rows} of {} records have a `row` field: either every record names its row (as `eval` \
             writes them) or none does (one record per row in split order)",
            file.display(),
            records.len()
        );
    }
    let mut seen = vec![false; rows.len()];
    let mut order = Vec::with_capacity(records.len());
    for (i, rec) in records.iter().enumerate() {
        let r = match row_of(rec).flatten() {
            Some(r) if r < rows.len() => r,
            _ => bail!(
                "{}: record {i}: `row` {} is not a row of {} ({} rows, numbered from 0): pass the --stem/--split the \
                 predictions were made for",
                file.display(),
                rec.extra["row"],
                csv.display(),
                rows.len()
            ),
        };
        if std::mem::replace(&mut seen[r], true) {
            bail!("{}: record {i}: row {r} is predicted twice; keep one record per row", file.display());
        }
        check_target(rec, i, r, &rows[r], file, csv)?;
        order.push(r);
    }
    let mut paired: Vec<(usize, PredictionRecord)> = order.into_iter().zip(records.drain(..)).collect();
    paired.sort_by_key(|(r, _)| *r);
    let (order, records): (Vec<usize>, Vec<PredictionRecord>) = paired.into_iter().unzip();
    if order.len() == rows.len() {
        return Ok((records, Alignment::All));
    }
    Ok((records, Alignment::Rows(order)))
}

/// Fails when no record has a prediction (all metrics would be 0 for a reason unrelated to the model) and warns
/// when some records have none.
fn check_predictions(records: &[PredictionRecord], file: &Path) -> anyhow::Result<()> {
    let empty = records.iter().filter(|r| r.predict.is_empty()).count();
    if empty == records.len() {
        bail!(
            "{}: every `predict` list of its {} records is empty: there is nothing to score (every metric would be \
             0); the generation produced no titles — check the run that wrote the file",
            file.display(),
            records.len()
        );
    }
    if empty > 0 {
        tracing::warn!(
            "{}: {empty} of {} records have an empty `predict` list (scored as misses)",
            file.display(),
            records.len()
        );
    }
    Ok(())
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
    let (records, alignment) = read_aligned(&args.predictions, rows, &csv)?;
    check_predictions(&records, &args.predictions)?;
    let baseline = match &args.baseline {
        Some(b) => {
            let (records, base_alignment) = read_aligned(b, rows, &csv)?;
            if base_alignment != alignment {
                bail!(
                    "{} scores {} but the baseline {} scores {}: both files must predict the same rows",
                    args.predictions.display(),
                    alignment.describe(rows.len()),
                    b.display(),
                    base_alignment.describe(rows.len())
                );
            }
            check_predictions(&records, b)?;
            Some(records)
        }
        None => None,
    };
    let scoring = alignment.describe(rows.len());
    if alignment != Alignment::All {
        tracing::warn!(
            "{} has {} records for {} rows: scoring {scoring}",
            args.predictions.display(),
            records.len(),
            rows.len()
        );
    }
    tracing::info!(records = records.len(), split = %args.split, stem = %args.dataset.stem, "evaluating predictions");

    let name = args.predictions.display().to_string();
    let base_name = args.baseline.as_ref().map(|b| b.display().to_string());
    let baseline = baseline.as_deref().zip(base_name.as_deref()).map(|(records, name)| Baseline { name, records });
    let bootstrap = BootstrapConfig { resamples: args.bootstrap, seed: args.seed };
    let (report, popularity) = match &alignment {
        Alignment::All => args.table.report(&ds, rows, &name, &records, baseline, bootstrap)?,
        Alignment::Rows(order) => {
            args.table.report(&ds, order.iter().map(|&r| &rows[r]), &name, &records, baseline, bootstrap)?
        }
        Alignment::RecordsOnly => {
            let popularity =
                Popularity::from_train(&ds.train, ds.catalogue.len(), super::popularity_config(args.table.coverage)?);
            let index = TitleIndex::new(&ds.catalogue);
            let report = Report::build(&ReportInput {
                name: &name,
                records: &records,
                index: &index,
                cutoffs: &args.table.k,
                target_ids: None,
                buckets: None,
                baseline,
                bootstrap,
            })?;
            (report, popularity)
        }
    };

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
            scoring,
            popularity: summary,
            report: &report,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("dataset: {} ({} split, {} rows) in {}", args.dataset.stem, args.split, rows.len(), dir.display());
        println!("scored: {scoring}");
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
