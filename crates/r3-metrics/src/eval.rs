//! HR@K and NDCG@K exactly as the official evaluation computes them, by title and by item id.
//!
//! The official loop, for each sample (predictions `preds` stripped by [`strip_prediction`], target by
//! [`strip_target`]):
//!
//! ```text
//! minID = 1000000
//! for i in range(len(preds)):
//!     if preds[i] not in item_names: CC += 1
//!     if preds[i] == target: minID = i
//! for K in [1, 3, 5, 10, 20]:
//!     if minID < K: NDCG[K] += 1 / log2(minID + 2); HR[K] += 1
//! ```
//!
//! and then divides by the number of samples, so every sample counts and a miss contributes 0.
//!
//! NOTE: the paper defines the rank as "the index of the matching beam"; the official loop has no `break`, so when
//! a title is generated twice the *last* matching index is the rank. We follow the code.

use std::collections::HashMap;
use std::str::FromStr;

use r3_data::{Catalogue, ItemId};

use crate::error::{Error, Result};
use crate::record::PredictionRecord;
use crate::strip::{strip_catalogue_title, strip_prediction, strip_target};

/// The cut-offs K of HR@K and NDCG@K: non-empty, strictly increasing, each ≥ 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<usize>", into = "Vec<usize>")]
pub struct Cutoffs(Vec<usize>);

impl Cutoffs {
    /// `[CODE]` The cut-offs the official evaluation prints (the paper reports 5 and 10).
    pub const DEFAULT: [usize; 5] = [1, 3, 5, 10, 20];

    /// Checks and wraps a list of cut-offs.
    pub fn new(ks: Vec<usize>) -> Result<Self> {
        if ks.is_empty() {
            return Err(Error::Setting { key: "k", message: "no cut-off given: pass e.g. 1,3,5,10,20".into() });
        }
        if ks.contains(&0) {
            return Err(Error::Setting { key: "k", message: "K = 0 is meaningless: cut-offs start at 1".into() });
        }
        if ks.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Setting {
                key: "k",
                message: format!("cut-offs {ks:?} are not strictly increasing: list each once, smallest first"),
            });
        }
        Ok(Cutoffs(ks))
    }

    /// The cut-offs, smallest first.
    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }

    /// The number of cut-offs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false` (a `Cutoffs` holds at least one K); present for symmetry with [`Cutoffs::len`].
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for Cutoffs {
    fn default() -> Self {
        Cutoffs(Self::DEFAULT.to_vec())
    }
}

impl TryFrom<Vec<usize>> for Cutoffs {
    type Error = Error;
    fn try_from(ks: Vec<usize>) -> Result<Self> {
        Cutoffs::new(ks)
    }
}

impl From<Cutoffs> for Vec<usize> {
    fn from(c: Cutoffs) -> Self {
        c.0
    }
}

impl FromStr for Cutoffs {
    type Err = Error;
    /// Parses a comma-separated list such as `1,3,5,10,20`.
    fn from_str(s: &str) -> Result<Self> {
        let ks = s
            .split(',')
            .map(|p| {
                p.trim().parse::<usize>().map_err(|_| Error::Setting {
                    key: "k",
                    message: format!("`{}` is not a positive integer: pass e.g. 1,3,5,10,20", p.trim()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Cutoffs::new(ks)
    }
}

/// The catalogue titles stripped as the official evaluation strips them ([`strip_catalogue_title`]), each with
/// the ids that carry it.
///
/// Several ids may share a title (185 titles of the CDs catalogue do), and two raw titles may become one after
/// stripping; the index keeps every id of a stripped title.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TitleIndex {
    by_title: HashMap<String, Vec<ItemId>>,
}

impl TitleIndex {
    /// Indexes a catalogue.
    pub fn new(catalogue: &Catalogue) -> Self {
        Self::from_titles(catalogue.titles())
    }

    /// Indexes raw titles given in id order (title `i` has id `i`).
    pub fn from_titles<S: AsRef<str>>(titles: &[S]) -> Self {
        let mut by_title: HashMap<String, Vec<ItemId>> = HashMap::with_capacity(titles.len());
        for (id, t) in titles.iter().enumerate() {
            by_title.entry(strip_catalogue_title(t.as_ref()).to_string()).or_default().push(id as ItemId);
        }
        TitleIndex { by_title }
    }

    /// Whether a stripped title is in the catalogue (Python's `pred in item_names`).
    pub fn contains(&self, stripped: &str) -> bool {
        self.by_title.contains_key(stripped)
    }

    /// The ids whose stripped catalogue title equals `stripped`; empty for a title outside the catalogue.
    pub fn ids_of(&self, stripped: &str) -> &[ItemId] {
        self.by_title.get(stripped).map_or(&[], Vec::as_slice)
    }

    /// The number of distinct stripped titles.
    pub fn len(&self) -> usize {
        self.by_title.len()
    }

    /// Whether the index holds no title.
    pub fn is_empty(&self) -> bool {
        self.by_title.is_empty()
    }
}

/// The rank of a target among predictions matched by title: the index of the *last* prediction whose stripped
/// text equals `target` (already stripped), or `None` when none does.
///
/// ```
/// let preds = ["\"A\"\n".to_string(), "\"B\"\n".into(), "\"A\"\n".into()];
/// assert_eq!(r3_metrics::title_rank(&preds, "A"), Some(2)); // the last match wins
/// assert_eq!(r3_metrics::title_rank(&preds, "C"), None);
/// ```
pub fn title_rank<S: AsRef<str>>(predict: &[S], target: &str) -> Option<usize> {
    predict.iter().rposition(|p| strip_prediction(p.as_ref()) == target)
}

/// The rank of a target item among predictions matched by id: the index of the *last* prediction whose stripped
/// text is the stripped catalogue title of an id set that contains `target`, or `None`.
///
/// A title shared by several ids matches every one of them, so when the target's stripped catalogue title equals
/// the stripped target string, this rank equals [`title_rank`]. They differ only when the target string is not
/// the catalogue title of the target id.
pub fn id_rank<S: AsRef<str>>(predict: &[S], target: ItemId, index: &TitleIndex) -> Option<usize> {
    predict.iter().rposition(|p| index.ids_of(strip_prediction(p.as_ref())).contains(&target))
}

/// The number of predictions whose stripped text is not a catalogue title (the official `CC` counter).
pub fn count_outside<S: AsRef<str>>(predict: &[S], index: &TitleIndex) -> usize {
    predict.iter().filter(|p| !index.contains(strip_prediction(p.as_ref()))).count()
}

/// The outcome of matching one prediction set: the target's rank in each sample and the predictions outside the
/// catalogue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ranks {
    /// Per sample, the 0-based rank of the target, or `None` for a miss.
    pub ranks: Vec<Option<usize>>,
    /// The number of predictions, over all samples, whose stripped text is not a catalogue title.
    pub outside: usize,
    /// The number of predictions over all samples.
    pub predictions: usize,
}

impl Ranks {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// The per-sample HR and NDCG values at each cut-off.
    pub fn per_sample(&self, cutoffs: &Cutoffs) -> PerSample {
        PerSample::from_ranks(&self.ranks, cutoffs)
    }

    /// HR@K and NDCG@K averaged over all samples.
    pub fn metrics(&self, cutoffs: &Cutoffs) -> Metrics {
        self.per_sample(cutoffs).mean()
    }
}

fn no_samples() -> Error {
    Error::Mismatch {
        what: "number of samples",
        expected: 1,
        got: 0,
        hint: "the prediction set is empty (the official evaluation would divide by zero)",
    }
}

fn target_of(i: usize, r: &PredictionRecord) -> Result<&str> {
    strip_target(&r.output).ok_or_else(|| Error::Sample {
        sample: i,
        message: "`output` is an empty list: the target must be its first element".into(),
    })
}

/// Evaluates by title, as the official script does: each record's stripped predictions against its stripped
/// target, counting the predictions outside the catalogue.
pub fn evaluate_by_title(records: &[PredictionRecord], index: &TitleIndex) -> Result<Ranks> {
    if records.is_empty() {
        return Err(no_samples());
    }
    let mut ranks = Vec::with_capacity(records.len());
    let (mut outside, mut predictions) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let target = target_of(i, r)?;
        let mut rank = None;
        for (j, p) in r.predict.iter().enumerate() {
            let p = strip_prediction(p);
            if !index.contains(p) {
                outside += 1;
            }
            // NOTE: no `break`, as in the official loop: a repeated target keeps its last index.
            if p == target {
                rank = Some(j);
            }
        }
        predictions += r.predict.len();
        ranks.push(rank);
    }
    Ok(Ranks { ranks, outside, predictions })
}

/// Evaluates by item id: sample `i` has target `target_ids[i]` and a prediction hits when its stripped text is
/// the stripped catalogue title of an id set holding the target (see [`id_rank`]). The `output` field is not
/// used. The predictions outside the catalogue are counted as in [`evaluate_by_title`].
pub fn evaluate_by_id(records: &[PredictionRecord], target_ids: &[ItemId], index: &TitleIndex) -> Result<Ranks> {
    if records.is_empty() {
        return Err(no_samples());
    }
    if target_ids.len() != records.len() {
        return Err(Error::Mismatch {
            what: "number of target ids",
            expected: records.len(),
            got: target_ids.len(),
            hint: "pass one target id per prediction record, in record order",
        });
    }
    let mut ranks = Vec::with_capacity(records.len());
    let (mut outside, mut predictions) = (0, 0);
    for (r, &target) in records.iter().zip(target_ids) {
        let mut rank = None;
        for (j, p) in r.predict.iter().enumerate() {
            let ids = index.ids_of(strip_prediction(p));
            if ids.is_empty() {
                outside += 1;
            }
            if ids.contains(&target) {
                rank = Some(j);
            }
        }
        predictions += r.predict.len();
        ranks.push(rank);
    }
    Ok(Ranks { ranks, outside, predictions })
}

/// Per-sample metric values: `hr[c][i]` is 1 when sample `i` has rank < K_c, else 0, and `ndcg[c][i]` is
/// `1 / log2(rank + 2)` when rank < K_c, else 0. Means, buckets and the bootstrap all start from these vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct PerSample {
    cutoffs: Cutoffs,
    hr: Vec<Vec<f64>>,
    ndcg: Vec<Vec<f64>>,
}

impl PerSample {
    /// Computes the per-sample values of each cut-off from the ranks.
    pub fn from_ranks(ranks: &[Option<usize>], cutoffs: &Cutoffs) -> Self {
        let mut hr = Vec::with_capacity(cutoffs.len());
        let mut ndcg = Vec::with_capacity(cutoffs.len());
        for &k in cutoffs.as_slice() {
            let hit = |r: &Option<usize>| r.filter(|&r| r < k);
            hr.push(ranks.iter().map(|r| if hit(r).is_some() { 1.0 } else { 0.0 }).collect());
            ndcg.push(ranks.iter().map(|r| hit(r).map_or(0.0, |r| 1.0 / ((r + 2) as f64).log2())).collect());
        }
        PerSample { cutoffs: cutoffs.clone(), hr, ndcg }
    }

    /// The cut-offs.
    pub fn cutoffs(&self) -> &Cutoffs {
        &self.cutoffs
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.hr.first().map_or(0, Vec::len)
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// HR of each sample at cut-off index `c` (the position of K in [`Cutoffs::as_slice`]).
    ///
    /// # Panics
    /// If `c` is not below the number of cut-offs.
    pub fn hr(&self, c: usize) -> &[f64] {
        &self.hr[c]
    }

    /// NDCG of each sample at cut-off index `c`.
    ///
    /// # Panics
    /// If `c` is not below the number of cut-offs.
    pub fn ndcg(&self, c: usize) -> &[f64] {
        &self.ndcg[c]
    }

    /// The samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is not below [`PerSample::len`].
    pub fn subset(&self, indices: &[usize]) -> PerSample {
        let pick = |v: &Vec<Vec<f64>>| v.iter().map(|col| indices.iter().map(|&i| col[i]).collect()).collect();
        PerSample { cutoffs: self.cutoffs.clone(), hr: pick(&self.hr), ndcg: pick(&self.ndcg) }
    }

    /// The means over the samples, summed in sample order and divided by the count as the official script does
    /// (all zeros when there is no sample).
    pub fn mean(&self) -> Metrics {
        let n = self.len();
        let mean = |v: &Vec<f64>| if n == 0 { 0.0 } else { v.iter().sum::<f64>() / n as f64 };
        Metrics {
            n,
            k: self.cutoffs.as_slice().to_vec(),
            hr: self.hr.iter().map(mean).collect(),
            ndcg: self.ndcg.iter().map(mean).collect(),
        }
    }
}

/// HR@K and NDCG@K of a sample set; `hr[c]` and `ndcg[c]` belong to cut-off `k[c]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// The number of samples.
    pub n: usize,
    /// The cut-offs.
    pub k: Vec<usize>,
    /// HR@K per cut-off.
    pub hr: Vec<f64>,
    /// NDCG@K per cut-off.
    pub ndcg: Vec<f64>,
}

impl Metrics {
    /// HR@`k`, if `k` is one of the cut-offs.
    pub fn hr_at(&self, k: usize) -> Option<f64> {
        self.k.iter().position(|&x| x == k).map(|c| self.hr[c])
    }

    /// NDCG@`k`, if `k` is one of the cut-offs.
    pub fn ndcg_at(&self, k: usize) -> Option<f64> {
        self.k.iter().position(|&x| x == k).map(|c| self.ndcg[c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Output;

    /// A record whose target is `"target"\n` and whose predictions are `"p"\n`, as the inference script writes.
    fn rec(target: &str, predict: &[&str]) -> PredictionRecord {
        let predict = predict.iter().map(|p| format!("\"{p}\"\n")).collect();
        PredictionRecord::new("prompt", Output::Text(format!("\"{target}\"\n")), predict)
    }

    /// Titles `T0`, `T1`, ... of a small catalogue.
    fn titles(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("T{i}")).collect()
    }

    /// 20 predictions `T0..T19` except that position `rank` holds `target` (`None`: the target is absent).
    fn ranked(target: &str, rank: Option<usize>) -> PredictionRecord {
        let mut p: Vec<String> = (0..20).map(|i| format!("T{}", i + 100)).collect();
        if let Some(r) = rank {
            p[r] = target.to_string();
        }
        rec(target, &p.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_ranks() {
        // 4 samples: hit at 0, hit at 2, miss, hit at 12.
        let records = [ranked("T1", Some(0)), ranked("T2", Some(2)), ranked("T3", None), ranked("T4", Some(12))];
        let index = TitleIndex::from_titles(&titles(200));
        let ranks = evaluate_by_title(&records, &index).unwrap();
        assert_eq!(ranks.ranks, [Some(0), Some(2), None, Some(12)]);
        let m = ranks.metrics(&Cutoffs::default());
        assert_eq!(m.k, [1, 3, 5, 10, 20]);
        // HR@1 = 1/4 (rank 0); HR@3 = HR@5 = HR@10 = 2/4 (ranks 0, 2); HR@20 = 3/4 (ranks 0, 2, 12).
        assert_eq!(m.hr, [0.25, 0.5, 0.5, 0.5, 0.75]);
        // NDCG@1 = (1/log2(2))/4 = 0.25.
        // NDCG@3 = NDCG@5 = NDCG@10 = (1/log2(2) + 1/log2(4))/4 = (1 + 0.5)/4 = 0.375.
        // NDCG@20 = (1 + 0.5 + 1/log2(14))/4 = (1.5 + 0.262650)/4 = 0.440662.
        assert_eq!(&m.ndcg[..4], [0.25, 0.375, 0.375, 0.375]);
        assert!(close(m.ndcg[4], (1.5 + 1.0 / 14f64.log2()) / 4.0));
        assert!((m.ndcg[4] - 0.440662).abs() < 1e-6);
        assert_eq!((m.hr_at(20), m.ndcg_at(3), m.hr_at(7)), (Some(0.75), Some(0.375), None));
        // The 4 × 20 = 80 predictions (fillers T100..T119 and the targets) are all catalogue titles: CC = 0.
        assert_eq!((ranks.outside, ranks.predictions), (0, 80));
    }

    #[test]
    fn a_duplicated_target_takes_its_last_index() {
        // The target T5 is predicted at 1 and again at 4. The official loop has no break, so rank = 4:
        // HR@3 = 0 (4 ≥ 3), HR@5 = 1, NDCG@5 = 1/log2(4 + 2) = 1/log2(6) = 0.386853.
        let r = rec("T5", &["T0", "T5", "T1", "T2", "T5", "T3"]);
        assert_eq!(title_rank(&r.predict, "T5"), Some(4));
        let index = TitleIndex::from_titles(&titles(10));
        let m = evaluate_by_title(std::slice::from_ref(&r), &index).unwrap().metrics(&Cutoffs::default());
        assert_eq!(m.hr, [0.0, 0.0, 1.0, 1.0, 1.0]);
        assert!(close(m.ndcg[2], 1.0 / 6f64.log2()) && (m.ndcg[2] - 0.386853).abs() < 1e-6);
        // Matching by id follows the same rule.
        assert_eq!(id_rank(&r.predict, 5, &index), Some(4));
    }

    #[test]
    fn quotes_spaces_and_newlines_are_stripped() {
        // Target '"Help!"\n' → 'Help!'; prediction ' " Help! " \n' → strip(" \n") → '" Help! "' → strip('"')
        // → ' Help! ' → strip(" ") → 'Help!': a hit at rank 1.
        let r = PredictionRecord::new(
            "prompt",
            Output::Text("\"Help!\"\n".into()),
            vec!["\"Abbey Road\"\n".into(), " \" Help! \" \n".into()],
        );
        // The catalogue line '"Help!" ' is stripped to 'Help!' too, so neither prediction is outside it.
        let index = TitleIndex::from_titles(&["Abbey Road", "\"Help!\" "]);
        let ranks = evaluate_by_title(&[r], &index).unwrap();
        assert_eq!((ranks.ranks[0], ranks.outside), (Some(1), 0));
    }

    #[test]
    fn a_list_valued_output_uses_its_first_element() {
        // output = ['"Help!"', 'ignored'] → target 'Help!' (first element, quotes and spaces stripped).
        let r = PredictionRecord::new(
            "prompt",
            Output::List(vec!["\"Help!\"".into(), "Abbey Road".into()]),
            vec!["\"Abbey Road\"\n".into(), "\"Help!\"\n".into()],
        );
        let index = TitleIndex::from_titles(&["Abbey Road", "Help!"]);
        assert_eq!(evaluate_by_title(&[r], &index).unwrap().ranks, [Some(1)]);
        let empty = PredictionRecord::new("prompt", Output::List(vec![]), vec![]);
        assert!(matches!(evaluate_by_title(&[empty], &index), Err(Error::Sample { sample: 0, .. })));
    }

    #[test]
    fn predictions_outside_the_catalogue_are_counted() {
        // Sample 0: 'Let It Be' and 'Yesterday' are not catalogue titles → 2; sample 1: 'Help!!' → 1. CC = 3.
        // Sample 0's target 'Help!' is at rank 2; sample 1 misses.
        let records = [rec("Help!", &["Let It Be", "Yesterday", "Help!"]), rec("Abbey Road", &["Help!!", "Help!"])];
        let index = TitleIndex::from_titles(&["Abbey Road", "Help!"]);
        let ranks = evaluate_by_title(&records, &index).unwrap();
        assert_eq!(ranks.ranks, [Some(2), None]);
        assert_eq!((ranks.outside, ranks.predictions), (3, 5));
        assert_eq!(count_outside(&records[0].predict, &index), 2);
        // Every sample counts: HR@3 = (1 + 0)/2 = 0.5, NDCG@3 = (1/log2(4) + 0)/2 = 0.25.
        let m = ranks.metrics(&Cutoffs::new(vec![3]).unwrap());
        assert_eq!((m.hr[0], m.ndcg[0]), (0.5, 0.25));
    }

    #[test]
    fn shared_titles_match_every_id_and_equal_title_matching() {
        // Ids 0 and 2 share 'Greatest Hits'. A prediction of that title hits a target of either id, exactly as
        // string matching hits a target string 'Greatest Hits' whichever id it came from.
        let cat = ["Greatest Hits", "Abbey Road", "Greatest Hits", "Help!"];
        let index = TitleIndex::from_titles(&cat);
        assert_eq!(index.ids_of("Greatest Hits"), &[0, 2]);
        let records = [
            rec("Greatest Hits", &["Help!", "Greatest Hits"]),
            rec("Greatest Hits", &["Greatest Hits", "Abbey Road"]),
            rec("Abbey Road", &["Greatest Hits", "Help!"]),
            rec("Help!", &["Abbey Road", "Help!", "Greatest Hits", "Help!"]),
        ];
        let ids = [0, 2, 1, 3];
        let by_title = evaluate_by_title(&records, &index).unwrap();
        let by_id = evaluate_by_id(&records, &ids, &index).unwrap();
        // Ranks: 1, 0, miss, 3 (the last 'Help!') in both modes.
        assert_eq!(by_title.ranks, [Some(1), Some(0), None, Some(3)]);
        assert_eq!(by_title, by_id);
    }

    #[test]
    fn a_catalogue_title_that_differs_from_the_target_string_splits_the_modes() {
        // The record's target string is 'Abbey Road (Remastered)' but its target id 0 is titled 'Abbey Road'.
        // By title the prediction 'Abbey Road (Remastered)' hits at 1 (and counts as outside the catalogue);
        // by id only 'Abbey Road' (rank 0) carries id 0.
        let index = TitleIndex::from_titles(&["Abbey Road", "Help!"]);
        let records = [rec("Abbey Road (Remastered)", &["Abbey Road", "Abbey Road (Remastered)"])];
        let by_title = evaluate_by_title(&records, &index).unwrap();
        let by_id = evaluate_by_id(&records, &[0], &index).unwrap();
        assert_eq!((by_title.ranks[0], by_title.outside), (Some(1), 1));
        assert_eq!((by_id.ranks[0], by_id.outside), (Some(0), 1));
        assert!(matches!(evaluate_by_id(&records, &[0, 1], &index), Err(Error::Mismatch { .. })));
    }

    #[test]
    fn ranks_beyond_the_largest_cutoff_are_misses_for_the_metrics() {
        // Rank 25 with K ≤ 20: the sample keeps its rank but adds 0 to every HR and NDCG.
        let s = PerSample::from_ranks(&[Some(25), Some(0)], &Cutoffs::default());
        assert_eq!(s.hr(4), [0.0, 1.0]);
        assert_eq!(s.mean().hr, [0.5; 5]);
    }

    #[test]
    fn cutoffs_parse_and_validate() {
        assert_eq!("1, 3,5".parse::<Cutoffs>().unwrap().as_slice(), [1, 3, 5]);
        assert!("".parse::<Cutoffs>().is_err());
        assert!("0,1".parse::<Cutoffs>().is_err());
        assert!("5,3".parse::<Cutoffs>().is_err());
        assert!("5,5".parse::<Cutoffs>().is_err());
        assert!("a".parse::<Cutoffs>().is_err());
        assert_eq!(serde_json::to_string(&Cutoffs::default()).unwrap(), "[1,3,5,10,20]");
        assert!(serde_json::from_str::<Cutoffs>("[3,1]").is_err());
    }

    #[test]
    fn an_empty_prediction_set_is_an_error() {
        let index = TitleIndex::from_titles(&["A"]);
        assert!(matches!(evaluate_by_title(&[], &index), Err(Error::Mismatch { got: 0, .. })));
    }
}
