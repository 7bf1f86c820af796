//! Full-catalogue ranking and its HR@K / NDCG@K through `r3-metrics`, exactly as the LLM models are scored.
//!
//! For each row of a split, the model scores every catalogue item after the row's own history (the same history
//! the LLM prompt lists); the items are ranked by score (ties by id) and mapped to their catalogue titles, one
//! prediction per distinct title (several ids share a title, and a title is one trie path for the LLM: it can be
//! generated once). The top `K` titles become an official [`PredictionRecord`] (`"title"\n` per prediction), and
//! [`r3_metrics`] matches them against the target as it does for the beams, overall and per popularity bucket.
//!
//! NOTE: history items are not removed from the ranking (RecBole removes them): the LLM decoders may recommend a
//! history item too, so both are ranked over the same full catalogue.

use std::collections::HashSet;

use r3_data::{Catalogue, Interaction, ItemId, Popularity};
use r3_metrics::{BootstrapConfig, Cutoffs, Metrics, Output, PredictionRecord, Report, ReportInput, TitleIndex};
use serde_json::json;

use crate::error::{Error, Result};
use crate::model::BaselineModel;

/// One ranked prediction: a catalogue title, the best-scored id carrying it and that id's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The item id (the best-scored id of the title).
    pub item_id: ItemId,
    /// The model's score of that item.
    pub score: f32,
}

/// Ranks the rows of one split with a model and scores the rankings.
#[derive(Debug, Clone)]
pub struct Evaluator<'a> {
    catalogue: &'a Catalogue,
    index: TitleIndex,
    rows: Vec<&'a Interaction>,
    cutoffs: Cutoffs,
    batch: usize,
}

impl<'a> Evaluator<'a> {
    /// An evaluator of `rows` (in that order) over `catalogue`, at `cutoffs`, scoring `batch` rows at a time.
    ///
    /// # Errors
    /// [`Error::Data`] when there is no row or `batch` is 0.
    pub fn new(catalogue: &'a Catalogue, rows: Vec<&'a Interaction>, cutoffs: Cutoffs, batch: usize) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::Data { message: "no rows to evaluate: the split is empty or --limit is 0".into() });
        }
        if batch == 0 {
            return Err(Error::Data { message: "the evaluation batch must be at least 1 row".into() });
        }
        Ok(Evaluator { catalogue, index: TitleIndex::new(catalogue), rows, cutoffs, batch })
    }

    /// The rows, in evaluation order.
    pub fn rows(&self) -> &[&'a Interaction] {
        &self.rows
    }

    /// The cut-offs.
    pub fn cutoffs(&self) -> &Cutoffs {
        &self.cutoffs
    }

    /// The number of predictions per row: the largest cut-off.
    pub fn depth(&self) -> usize {
        self.cutoffs.as_slice().last().copied().unwrap_or(10)
    }

    /// The model's scores of every item after each row's history, `N` values per row (a model on a plain,
    /// non-autodiff device; call `Module::valid` first).
    pub fn scores(&self, model: &BaselineModel) -> Vec<Vec<f32>> {
        let histories: Vec<&[ItemId]> = self.rows.iter().map(|r| r.history_item_ids.as_slice()).collect();
        model.score_rows(&histories, self.batch)
    }

    /// The top [`Evaluator::depth`] distinct titles of each row, best first.
    pub fn rank(&self, model: &BaselineModel) -> Vec<Vec<Ranked>> {
        let depth = self.depth();
        self.scores(model).iter().map(|s| top_titles(s, self.catalogue, depth)).collect()
    }

    /// The official prediction records of rankings (one per row, in row order), with `row`, `user_id`,
    /// `item_id`, `item_ids` and `scores` as extra keys.
    pub fn records(&self, ranked: &[Vec<Ranked>]) -> Vec<PredictionRecord> {
        self.rows
            .iter()
            .zip(ranked)
            .enumerate()
            .map(|(i, (row, r))| {
                let title = |id: ItemId| self.catalogue.title(id).unwrap_or_default();
                let input = row.history_titles.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
                let mut rec = PredictionRecord::new(
                    input,
                    Output::Text(format!("\"{}\"\n", row.item_title)),
                    r.iter().map(|x| format!("\"{}\"\n", title(x.item_id))).collect(),
                );
                for (k, v) in [
                    ("row", json!(i)),
                    ("user_id", json!(row.user_id)),
                    ("item_id", json!(row.item_id)),
                    ("item_ids", json!(r.iter().map(|x| x.item_id).collect::<Vec<_>>())),
                    ("scores", json!(r.iter().map(|x| x.score).collect::<Vec<_>>())),
                ] {
                    rec.extra.insert(k.into(), v);
                }
                rec
            })
            .collect()
    }

    /// HR@K and NDCG@K by title (the official evaluation) of `model` on the rows.
    ///
    /// # Errors
    /// [`Error::Metrics`] from `r3-metrics`.
    pub fn metrics(&self, model: &BaselineModel) -> Result<Metrics> {
        let records = self.records(&self.rank(model));
        Ok(r3_metrics::evaluate_by_title(&records, &self.index)?.metrics(&self.cutoffs))
    }

    /// The full report of `records` (from [`Evaluator::records`]): by title, by item id, and per popularity
    /// bucket of the target item.
    ///
    /// # Errors
    /// [`Error::Metrics`] from `r3-metrics`.
    pub fn report(&self, name: &str, records: &[PredictionRecord], popularity: &Popularity) -> Result<Report> {
        let ids: Vec<ItemId> = self.rows.iter().map(|r| r.item_id).collect();
        let labels: Vec<&str> = self.rows.iter().map(|r| popularity.bucket(r.item_id)).collect();
        Ok(Report::build(&ReportInput {
            name,
            records,
            index: &self.index,
            cutoffs: &self.cutoffs,
            target_ids: Some(&ids),
            buckets: Some(&labels),
            baseline: None,
            bootstrap: BootstrapConfig { resamples: 0, seed: 0 },
        })?)
    }
}

/// The best `k` distinct catalogue titles by score (ties by lower id), each as its best-scored id.
pub fn top_titles(scores: &[f32], catalogue: &Catalogue, k: usize) -> Vec<Ranked> {
    let n = scores.len();
    let order = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    let mut pool = (4 * k + 16).min(n);
    loop {
        let mut idx: Vec<usize> = (0..n).collect();
        if pool < n {
            idx.select_nth_unstable_by(pool, order);
            idx.truncate(pool);
        }
        idx.sort_unstable_by(order);
        let mut seen = HashSet::with_capacity(k);
        let out: Vec<Ranked> = idx
            .into_iter()
            .filter(|&i| seen.insert(catalogue.title(i as ItemId).unwrap_or_default()))
            .take(k)
            .map(|i| Ranked { item_id: i as ItemId, score: scores[i] })
            .collect();
        if out.len() == k || pool == n {
            return out;
        }
        pool = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_titles_dedupes_shared_titles() {
        let cat = Catalogue::from_titles(vec!["A".into(), "B".into(), "A".into(), "C".into()]);
        let r = top_titles(&[0.1, 0.5, 0.9, 0.5], &cat, 3);
        let ids: Vec<ItemId> = r.iter().map(|x| x.item_id).collect();
        // "A" via id 2 (0.9), then the tie B/C at 0.5 by id; id 0 repeats "A" and is skipped.
        assert_eq!(ids, [2, 1, 3]);
        assert_eq!(top_titles(&[0.1, 0.5, 0.9, 0.5], &cat, 5).len(), 3);
    }
}
