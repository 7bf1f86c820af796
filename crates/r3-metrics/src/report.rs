//! The evaluation report of one prediction set (optionally against a baseline) and its plain-text table.

use r3_data::ItemId;

use crate::bootstrap::{BootstrapConfig, Gain, relative_gains};
use crate::bucket::{BucketGains, BucketMetrics, gains_by_bucket, metrics_by_bucket};
use crate::error::Result;
use crate::eval::{Cutoffs, Metrics, Ranks, TitleIndex, evaluate_by_id, evaluate_by_title};
use crate::record::PredictionRecord;

/// The predictions outside the catalogue (the official `CC` counter) and the total number of predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outside {
    /// Predictions whose stripped text is not a stripped catalogue title.
    pub count: usize,
    /// All predictions.
    pub predictions: usize,
}

impl From<&Ranks> for Outside {
    fn from(r: &Ranks) -> Self {
        Outside { count: r.outside, predictions: r.predictions }
    }
}

/// The comparison with a baseline prediction set on the same samples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    /// The baseline's name (usually its file path).
    pub predictions: String,
    /// The baseline's metrics by title.
    pub by_title: Metrics,
    /// The baseline's predictions outside the catalogue.
    pub outside_catalogue: Outside,
    /// How the intervals were drawn.
    pub bootstrap: BootstrapConfig,
    /// Our gains over the baseline by title, on all samples.
    pub gains: Vec<Gain>,
    /// Our gains over the baseline by title, per bucket.
    pub buckets: Vec<BucketGains>,
}

/// Everything the `latentr3 metrics` command reports about one prediction set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The prediction set's name (usually its file path).
    pub predictions: String,
    /// The number of samples.
    pub samples: usize,
    /// HR@K and NDCG@K matching by title (the official evaluation).
    pub by_title: Metrics,
    /// HR@K and NDCG@K matching by item id, when target ids were given.
    pub by_item_id: Option<Metrics>,
    /// The predictions outside the catalogue.
    pub outside_catalogue: Outside,
    /// HR@K and NDCG@K by title per bucket, when labels were given.
    pub buckets: Vec<BucketMetrics>,
    /// The comparison with a baseline, when one was given.
    pub baseline: Option<Comparison>,
}

/// A baseline prediction set for [`ReportInput`].
#[derive(Debug, Clone, Copy)]
pub struct Baseline<'a> {
    /// Its name (usually its file path).
    pub name: &'a str,
    /// Its records, one per sample in the same order as ours.
    pub records: &'a [PredictionRecord],
}

/// The inputs of [`Report::build`].
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// The prediction set's name (usually its file path).
    pub name: &'a str,
    /// Its records.
    pub records: &'a [PredictionRecord],
    /// The stripped catalogue titles.
    pub index: &'a TitleIndex,
    /// The cut-offs.
    pub cutoffs: &'a Cutoffs,
    /// The target id of each sample, for matching by id.
    pub target_ids: Option<&'a [ItemId]>,
    /// The bucket label of each sample.
    pub buckets: Option<&'a [&'a str]>,
    /// A baseline to compare with.
    pub baseline: Option<Baseline<'a>>,
    /// How to draw the bootstrap intervals of the gains.
    pub bootstrap: BootstrapConfig,
}

impl Report {
    /// Evaluates the predictions (and the baseline) and gathers the report.
    pub fn build(input: &ReportInput<'_>) -> Result<Report> {
        let ranks = evaluate_by_title(input.records, input.index)?;
        let per_sample = ranks.per_sample(input.cutoffs);
        let by_item_id = match input.target_ids {
            Some(ids) => Some(evaluate_by_id(input.records, ids, input.index)?.metrics(input.cutoffs)),
            None => None,
        };
        let labels = input.buckets.unwrap_or(&[]);
        let buckets = if input.buckets.is_some() { metrics_by_bucket(&per_sample, labels)? } else { Vec::new() };
        let baseline = match input.baseline {
            Some(base) => {
                let base_ranks = evaluate_by_title(base.records, input.index)?;
                let base_per_sample = base_ranks.per_sample(input.cutoffs);
                let gains = relative_gains(&per_sample, &base_per_sample, &input.bootstrap)?;
                let buckets = if input.buckets.is_some() {
                    gains_by_bucket(&per_sample, &base_per_sample, labels, &input.bootstrap)?
                } else {
                    Vec::new()
                };
                Some(Comparison {
                    predictions: base.name.to_string(),
                    by_title: base_per_sample.mean(),
                    outside_catalogue: Outside::from(&base_ranks),
                    bootstrap: input.bootstrap,
                    gains,
                    buckets,
                })
            }
            None => None,
        };
        Ok(Report {
            predictions: input.name.to_string(),
            samples: ranks.len(),
            by_title: per_sample.mean(),
            by_item_id,
            outside_catalogue: Outside::from(&ranks),
            buckets,
            baseline,
        })
    }

    /// The report as plain-text tables: one row per metric set (HR@K then NDCG@K columns, four decimals), then,
    /// with a baseline, one row per gain with its 95% interval.
    pub fn to_table(&self) -> String {
        let mut rows = vec![("title", &self.by_title)];
        if let Some(m) = &self.by_item_id {
            rows.push(("item id", m));
        }
        for b in &self.buckets {
            rows.push((b.bucket.as_str(), &b.metrics));
        }
        if let Some(c) = &self.baseline {
            rows.push(("baseline title", &c.by_title));
        }
        let mut out = format!(
            "predictions: {} ({} samples; {} of {} predictions outside the catalogue)\n",
            self.predictions, self.samples, self.outside_catalogue.count, self.outside_catalogue.predictions
        );
        if !self.buckets.is_empty() {
            out.push_str("bucket rows match by title\n");
        }
        out.push('\n');
        out.push_str(&metrics_table(&rows));
        if let Some(c) = &self.baseline {
            out.push_str(&format!(
                "\nbaseline: {} ({} of {} predictions outside the catalogue)\n",
                c.predictions, c.outside_catalogue.count, c.outside_catalogue.predictions
            ));
            out.push_str(&format!(
                "relative gain = ours / baseline - 1 (by title); 95% paired-bootstrap percentile interval, \
                 {} resamples, seed {}\n\n",
                c.bootstrap.resamples, c.bootstrap.seed
            ));
            let mut groups = vec![("all", self.samples, c.gains.as_slice())];
            groups.extend(c.buckets.iter().map(|b| (b.bucket.as_str(), b.n, b.gains.as_slice())));
            out.push_str(&gains_table(&groups));
        }
        out
    }
}

/// Aligns cells in columns separated by two spaces: the first `left` columns left-aligned, the others
/// right-aligned; each row ends with a newline.
fn align(rows: &[Vec<String>], left: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| if c < left { format!("{s:<w$}", w = width[c]) } else { format!("{s:>w$}", w = width[c]) })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A table with one row per named metric set: `n`, then HR@K and NDCG@K for each cut-off of the first set,
/// four decimals. Rows must share the cut-offs of the first row.
pub fn metrics_table(rows: &[(&str, &Metrics)]) -> String {
    let Some((_, first)) = rows.first() else { return String::new() };
    let mut header = vec![String::new(), "n".to_string()];
    header.extend(first.k.iter().map(|k| format!("HR@{k}")));
    header.extend(first.k.iter().map(|k| format!("NDCG@{k}")));
    let mut cells = vec![header];
    for (name, m) in rows {
        let mut row = vec![(*name).to_string(), m.n.to_string()];
        row.extend(m.hr.iter().chain(&m.ndcg).map(|x| format!("{x:.4}")));
        cells.push(row);
    }
    align(&cells, 1)
}

/// A table with one row per gain: bucket, metric, n, ours, baseline, gain and the 95% interval (four decimals,
/// `n/a` where the baseline mean is zero).
pub fn gains_table(groups: &[(&str, usize, &[Gain])]) -> String {
    let mut cells =
        vec![["bucket", "metric", "n", "ours", "baseline", "gain", "95% interval"].map(String::from).to_vec()];
    for (bucket, n, gains) in groups {
        for g in gains.iter() {
            cells.push(vec![
                (*bucket).to_string(),
                g.metric.clone(),
                n.to_string(),
                format!("{:.4}", g.ours),
                format!("{:.4}", g.baseline),
                g.gain.map_or_else(|| "n/a".into(), |x| format!("{x:+.4}")),
                g.ci95.map_or_else(|| "n/a".into(), |[lo, hi]| format!("[{lo:+.4}, {hi:+.4}]")),
            ]);
        }
    }
    align(&cells, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Output;

    fn rec(target: &str, predict: &[&str]) -> PredictionRecord {
        let predict = predict.iter().map(|p| format!("\"{p}\"\n")).collect();
        PredictionRecord::new("prompt", Output::Text(format!("\"{target}\"\n")), predict)
    }

    fn report(with_baseline: bool) -> Report {
        // Ours: ranks 0, 1, miss, 0. Baseline: ranks 1, miss, miss, 0.
        let index = TitleIndex::from_titles(&["A", "B", "C", "D"]);
        let ours = [rec("A", &["A", "B"]), rec("B", &["A", "B"]), rec("C", &["A", "X"]), rec("D", &["D", "A"])];
        let base = [rec("A", &["B", "A"]), rec("B", &["A", "C"]), rec("C", &["A", "B"]), rec("D", &["D", "A"])];
        let cutoffs = Cutoffs::new(vec![1, 5]).unwrap();
        let labels = ["popular", "unpopular", "unpopular", "popular"];
        Report::build(&ReportInput {
            name: "ours.json",
            records: &ours,
            index: &index,
            cutoffs: &cutoffs,
            target_ids: Some(&[0, 1, 2, 3]),
            buckets: Some(&labels),
            baseline: with_baseline.then_some(Baseline { name: "base.json", records: &base }),
            bootstrap: BootstrapConfig { resamples: 100, seed: 0 },
        })
        .unwrap()
    }

    #[test]
    fn report_gathers_every_part() {
        let r = report(true);
        // By title: HR@1 = 2/4 (samples 0, 3), HR@5 = 3/4; NDCG@5 = (1 + 1/log2(3) + 0 + 1)/4.
        assert_eq!((r.samples, r.by_title.hr.as_slice()), (4, [0.5, 0.75].as_slice()));
        assert_eq!(r.by_item_id.as_ref().map(|m| m.hr.clone()), Some(vec![0.5, 0.75]));
        // 'X' is the only prediction outside the catalogue.
        assert_eq!(r.outside_catalogue, Outside { count: 1, predictions: 8 });
        assert_eq!(
            r.buckets.iter().map(|b| (b.bucket.as_str(), b.metrics.n)).collect::<Vec<_>>(),
            [("popular", 2), ("unpopular", 2)]
        );
        let c = r.baseline.as_ref().unwrap();
        // Baseline HR@1 = 1/4 (sample 3), HR@5 = 2/4: gains 0.5/0.25 − 1 = 1.0 and 0.75/0.5 − 1 = 0.5.
        assert_eq!(c.gains.iter().map(|g| g.gain).take(2).collect::<Vec<_>>(), [Some(1.0), Some(0.5)]);
        assert_eq!(c.buckets.len(), 2);
        // The JSON form reads back (floats to within serde_json's parsing, which may differ in the last bit).
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!((back.samples, back.by_title.hr, back.outside_catalogue), (4, vec![0.5, 0.75], r.outside_catalogue));
        assert!(!json.contains("NaN"), "{json}");
    }

    #[test]
    fn the_table_aligns_four_decimals() {
        let table = report(false).to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("predictions: ours.json (4 samples; 1 of 8 predictions outside"), "{table}");
        let header = lines.iter().position(|l| l.contains("HR@1")).unwrap();
        let cols: Vec<&str> = lines[header].split_whitespace().collect();
        assert_eq!(cols, ["n", "HR@1", "HR@5", "NDCG@1", "NDCG@5"]);
        // Right-aligned numeric columns: every row of the table has the header's length.
        let title = lines[header + 1];
        assert!(title.starts_with("title") && title.contains("0.5000  0.7500"), "{table}");
        for l in &lines[header..] {
            assert_eq!(l.len(), lines[header].len(), "{table}");
        }
        let with_gains = report(true).to_table();
        assert!(with_gains.contains("95% interval") && with_gains.contains("+1.0000"), "{with_gains}");
        // A zero baseline mean prints `n/a` (the unpopular bucket: the baseline never hits there).
        assert!(with_gains.contains("n/a"), "{with_gains}");
    }
}
