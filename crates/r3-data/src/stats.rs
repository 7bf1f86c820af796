//! Dataset statistics: what `latentr3 data stats` prints.

use std::collections::{BTreeMap, HashSet};

use crate::layout::{Dataset, Split};
use crate::popularity::{Popularity, PopularityConfig};

/// Rows, users and time range of one split.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitStats {
    /// Number of samples (rows).
    pub rows: usize,
    /// Distinct users.
    pub users: usize,
    /// Distinct target items.
    pub target_items: usize,
    /// Targets whose item never appears as a train target (cold items; 0 for train itself).
    pub cold_targets: usize,
    /// Earliest target time (Unix seconds); `None` for an empty split.
    pub first_timestamp: Option<i64>,
    /// Latest target time (Unix seconds); `None` for an empty split.
    pub last_timestamp: Option<i64>,
    /// How many rows have a history of length 0, 1, ..., (index = length).
    pub history_lengths: Vec<usize>,
    /// Mean history length.
    pub mean_history: f64,
}

/// A summary of a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatasetStats {
    /// The file stem.
    pub stem: String,
    /// Items in the catalogue.
    pub items: usize,
    /// Distinct users over the three splits.
    pub users: usize,
    /// Per split: train, valid, test.
    pub splits: BTreeMap<Split, SplitStats>,
    /// Distinct titles in the catalogue.
    pub distinct_titles: usize,
    /// Titles carried by more than one item id.
    pub shared_titles: usize,
    /// Item ids whose title is shared with another id.
    pub items_with_shared_title: usize,
    /// Catalogue titles that contain scraped HTML (`<span`).
    pub markup_titles: usize,
    /// Popularity setting: share of train interactions the popular head covers.
    pub popularity_coverage: f64,
    /// Items in the popular head.
    pub popular_items: usize,
    /// Share of train interactions on popular items.
    pub popular_share_train: f64,
    /// Share of test targets that are popular items.
    pub popular_share_test: f64,
}

impl DatasetStats {
    /// Computes the statistics of `ds`, with the popular head defined by `popularity`.
    pub fn compute(ds: &Dataset, popularity: PopularityConfig) -> Self {
        let pop = Popularity::from_train(&ds.train, ds.catalogue.len(), popularity);
        let train_targets: HashSet<_> = ds.train.iter().map(|r| r.item_id).collect();
        let mut all_users = HashSet::new();
        let mut splits = BTreeMap::new();
        for split in Split::ALL {
            let rows = ds.split(split);
            let users: HashSet<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
            all_users.extend(users.iter().copied());
            let max_len = rows.iter().map(|r| r.history_len()).max().unwrap_or(0);
            let mut history_lengths = vec![0usize; max_len + 1];
            for r in rows {
                history_lengths[r.history_len()] += 1;
            }
            let total_hist: usize = rows.iter().map(|r| r.history_len()).sum();
            splits.insert(
                split,
                SplitStats {
                    rows: rows.len(),
                    users: users.len(),
                    target_items: rows.iter().map(|r| r.item_id).collect::<HashSet<_>>().len(),
                    cold_targets: rows.iter().filter(|r| !train_targets.contains(&r.item_id)).count(),
                    first_timestamp: rows.iter().map(|r| r.timestamp).min(),
                    last_timestamp: rows.iter().map(|r| r.timestamp).max(),
                    history_lengths,
                    mean_history: if rows.is_empty() { 0.0 } else { total_hist as f64 / rows.len() as f64 },
                },
            );
        }
        let shared = ds.catalogue.shared_titles();
        let test_popular = ds.test.iter().filter(|r| pop.is_popular(r.item_id)).count();
        DatasetStats {
            stem: ds.stem.clone(),
            items: ds.catalogue.len(),
            users: all_users.len(),
            splits,
            distinct_titles: ds.catalogue.distinct_titles(),
            shared_titles: shared.len(),
            items_with_shared_title: shared.iter().map(|(_, ids)| ids.len()).sum(),
            markup_titles: ds.catalogue.titles().iter().filter(|t| t.contains("<span")).count(),
            popularity_coverage: pop.coverage(),
            popular_items: pop.n_popular(),
            popular_share_train: pop.covered_share(),
            popular_share_test: if ds.test.is_empty() { 0.0 } else { test_popular as f64 / ds.test.len() as f64 },
        }
    }

    /// The statistics as an aligned plain-text report.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "dataset {}", self.stem);
        let _ = writeln!(s, "  items {}  users {}", self.items, self.users);
        let _ = writeln!(
            s,
            "  titles: {} distinct, {} shared by several ids ({} ids), {} with scraped HTML",
            self.distinct_titles, self.shared_titles, self.items_with_shared_title, self.markup_titles
        );
        let _ = writeln!(
            s,
            "  popularity: {} popular items cover {:.1}% of train interactions (setting {:.0}%); {:.1}% of test targets are popular",
            self.popular_items,
            100.0 * self.popular_share_train,
            100.0 * self.popularity_coverage,
            100.0 * self.popular_share_test
        );
        let _ = writeln!(
            s,
            "  {:<6} {:>8} {:>8} {:>8} {:>8} {:>9}  {:<23}  rows by history length 0, 1, 2, ...",
            "split", "rows", "users", "targets", "cold", "mean hist", "target time (UTC date)"
        );
        for (split, st) in &self.splits {
            let range = match (st.first_timestamp, st.last_timestamp) {
                (Some(a), Some(b)) => format!("{} .. {}", utc_date(a), utc_date(b)),
                _ => "-".into(),
            };
            let hist: Vec<String> = st.history_lengths.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "  {:<6} {:>8} {:>8} {:>8} {:>8} {:>9.2}  {:<23}  {}",
                split.dir_name(),
                st.rows,
                st.users,
                st.target_items,
                st.cold_targets,
                st.mean_history,
                range,
                hist.join(" ")
            );
        }
        s
    }
}

/// The UTC calendar date `YYYY-MM-DD` of a Unix time (proleptic Gregorian, Howard Hinnant's civil-from-days).
pub fn utc_date(t: i64) -> String {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc_date(0), "1970-01-01");
        assert_eq!(super::utc_date(1_443_744_000), "2015-10-02");
        assert_eq!(super::utc_date(951_782_400), "2000-02-29");
        assert_eq!(super::utc_date(-86_400), "1969-12-31");
    }
}
