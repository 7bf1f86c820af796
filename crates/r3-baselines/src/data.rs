//! Item sequences from the train split and their tensor layouts.
//!
//! The train split stores one row per prediction target (a history of at most 10 items and the next item). A
//! sequential recommender trains on each user's whole sequence instead, so [`Sequences::from_train`] rebuilds it:
//! the user's rows in time order, the earliest row's history followed by every row's target. For rows that are
//! sliding windows or prefixes of one sequence (the official layout and the recovered train subsets alike) this is
//! exactly the user's train-period sequence.
//!
//! Item ids are the catalogue ids of `info/{stem}.txt`; embedding row `id + 1` holds item `id` and row 0 is the
//! padding ([`PAD`]).

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use r3_data::{Interaction, ItemId};

/// The embedding row of the padding.
pub const PAD: i64 = 0;

/// The embedding row of catalogue item `id`.
pub fn item_row(id: ItemId) -> i64 {
    i64::from(id) + 1
}

/// Every user's train sequence, oldest item first.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequences {
    /// The catalogue size: item ids lie in `0..n_items`.
    pub n_items: usize,
    /// One sequence per user of the train split, users in ascending `user_id` order.
    pub seqs: Vec<Vec<ItemId>>,
}

impl Sequences {
    /// Rebuilds each user's sequence from the train rows (see the module docs). Rows of a user are ordered by
    /// target time, then by history length (two reviews in one second keep their order).
    pub fn from_train(train: &[Interaction], n_items: usize) -> Self {
        let mut by_user: BTreeMap<&str, Vec<&Interaction>> = BTreeMap::new();
        for row in train {
            by_user.entry(row.user_id.as_str()).or_default().push(row);
        }
        let seqs = by_user
            .into_values()
            .map(|mut rows| {
                rows.sort_by_key(|r| (r.timestamp, r.history_len()));
                let mut seq = rows[0].history_item_ids.clone();
                seq.extend(rows.iter().map(|r| r.item_id));
                seq
            })
            .collect();
        Sequences { n_items, seqs }
    }

    /// The number of (history, next item) pairs: every position after the first of every sequence.
    pub fn n_targets(&self) -> usize {
        self.seqs.iter().map(|s| s.len().saturating_sub(1)).sum()
    }

    /// Whole sequences cut to their last `max_len + 1` items (inputs of `max_len` positions, each predicting the
    /// next item), the training examples of SASRec and GRU4Rec. Sequences of one item carry no target and are
    /// left out.
    pub fn windows(&self, max_len: usize) -> Vec<Vec<ItemId>> {
        self.seqs.iter().filter(|s| s.len() >= 2).map(|s| s[s.len().saturating_sub(max_len + 1)..].to_vec()).collect()
    }

    /// Every prefix that ends in a target, cut to its last `max_len + 1` items: the training examples of models
    /// that predict from the last position only (Caser).
    pub fn prefixes(&self, max_len: usize) -> Vec<Vec<ItemId>> {
        let mut out = Vec::with_capacity(self.n_targets());
        for s in &self.seqs {
            for end in 2..=s.len() {
                out.push(s[end.saturating_sub(max_len + 1)..end].to_vec());
            }
        }
        out
    }
}

/// A batch of item sequences laid out right-padded: row `b` holds its items at positions `0..len[b]`, padding
/// after them.
#[derive(Debug, Clone)]
pub struct RightPadded {
    /// Embedding rows `[B, L]` (items `id + 1`, padding 0).
    pub rows: Tensor<2, Int>,
    /// The real length of each sequence (0 for an empty history).
    pub lens: Vec<usize>,
    /// `L`: the longest sequence of the batch, at least 1.
    pub width: usize,
}

impl RightPadded {
    /// Lays out `seqs`, keeping the last `max_len` items of each.
    pub fn new(seqs: &[&[ItemId]], max_len: usize, device: &Device) -> Self {
        let cut: Vec<&[ItemId]> = seqs.iter().map(|s| &s[s.len().saturating_sub(max_len)..]).collect();
        let width = cut.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut data = vec![PAD; cut.len() * width];
        for (b, s) in cut.iter().enumerate() {
            for (i, &id) in s.iter().enumerate() {
                data[b * width + i] = item_row(id);
            }
        }
        let rows = Tensor::<2, Int>::from_data(TensorData::new(data, [cut.len(), width]), device);
        RightPadded { rows, lens: cut.iter().map(|s| s.len()).collect(), width }
    }

    /// The index of each row's last real position (0 for an empty row), as `[B, 1, d]` gather indices.
    pub fn last_index(&self, d: usize, device: &Device) -> Tensor<3, Int> {
        let b = self.lens.len();
        let idx: Vec<i64> = self.lens.iter().map(|&l| l.saturating_sub(1) as i64).collect();
        Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), device)
            .unsqueeze_dim::<3>(2) // [B, 1, 1]
            .expand([b, 1, d]) // [B, 1, d]
    }

    /// Whether each position holds an item, `[B, L]` as 1.0 / 0.0.
    pub fn real(&self, device: &Device) -> Tensor<2> {
        let w = self.width;
        let data: Vec<f32> =
            self.lens.iter().flat_map(|&l| (0..w).map(move |i| if i < l { 1.0 } else { 0.0 })).collect();
        Tensor::<2>::from_data(TensorData::new(data, [self.lens.len(), w]), device)
    }
}

/// Next-item targets of right-padded training sequences: position `i` of row `b` predicts `seq[i + 1]`, the
/// padding and the last position predict nothing.
#[derive(Debug, Clone)]
pub struct NextItems {
    /// The inputs: each sequence without its last item.
    pub input: RightPadded,
    /// The target item id per input position, flattened `[B · L]`; `-1` where there is no target.
    pub targets: Vec<i64>,
}

impl NextItems {
    /// Builds inputs and targets of `seqs` (each at least two items, at most `max_len + 1` used).
    pub fn new(seqs: &[&[ItemId]], max_len: usize, device: &Device) -> Self {
        let cut: Vec<&[ItemId]> = seqs.iter().map(|s| &s[s.len().saturating_sub(max_len + 1)..]).collect();
        let inputs: Vec<&[ItemId]> = cut.iter().map(|s| &s[..s.len().saturating_sub(1)]).collect();
        let input = RightPadded::new(&inputs, max_len, device);
        let w = input.width;
        let mut targets = vec![-1i64; cut.len() * w];
        for (b, s) in cut.iter().enumerate() {
            for (i, &t) in s.iter().skip(1).enumerate() {
                targets[b * w + i] = i64::from(t);
            }
        }
        NextItems { input, targets }
    }
}

/// Left-padded fixed-width windows (Caser): row `b` holds the last `width` items of its sequence, right-aligned,
/// with padding before them.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Embedding rows `[B, width]`.
    pub rows: Tensor<2, Int>,
    /// 1.0 where a position holds an item, `[B, width]`.
    pub real: Tensor<2>,
}

impl Windows {
    /// Lays out the last `width` items of each sequence.
    pub fn new(seqs: &[&[ItemId]], width: usize, device: &Device) -> Self {
        let b = seqs.len();
        let mut rows = vec![PAD; b * width];
        let mut real = vec![0f32; b * width];
        for (r, s) in seqs.iter().enumerate() {
            let s = &s[s.len().saturating_sub(width)..];
            let off = width - s.len();
            for (i, &id) in s.iter().enumerate() {
                rows[r * width + off + i] = item_row(id);
                real[r * width + off + i] = 1.0;
            }
        }
        Windows {
            rows: Tensor::<2, Int>::from_data(TensorData::new(rows, [b, width]), device),
            real: Tensor::<2>::from_data(TensorData::new(real, [b, width]), device),
        }
    }
}

/// Mean cross-entropy of `logits` `[M, N]` against `targets` (`M` item ids, `-1` = ignored) over the kept rows.
///
/// # Panics
/// When no target is kept.
pub fn cross_entropy(logits: Tensor<2>, targets: &[i64]) -> Tensor<1> {
    let device = logits.device();
    let [m, _] = logits.dims();
    assert_eq!(targets.len(), m, "one target per logits row");
    let kept: Vec<i64> = (0..m as i64).filter(|&i| targets[i as usize] >= 0).collect();
    assert!(!kept.is_empty(), "a batch without any target");
    let k = kept.len();
    let t: Vec<i64> = kept.iter().map(|&i| targets[i as usize]).collect();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(kept, [k]), &device);
    let logits = logits.select(0, rows); // [K, N]
    let logp = burn::tensor::activation::log_softmax(logits, 1); // [K, N]
    let t = Tensor::<2, Int>::from_data(TensorData::new(t, [k, 1]), &device);
    logp.gather(1, t).mean().neg() // [1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, history: &[ItemId], item: ItemId, ts: i64) -> Interaction {
        let n = history.len();
        Interaction {
            user_id: user.into(),
            history_asins: vec!["a".into(); n],
            item_asin: "a".into(),
            history_item_ids: history.to_vec(),
            item_id: item,
            history_titles: vec!["t".into(); n],
            item_title: "t".into(),
            history_ratings: vec![5.0; n],
            rating: 5.0,
            history_timestamps: vec![0; n],
            timestamp: ts,
        }
    }

    #[test]
    fn sequences_join_prefix_rows() {
        // User u: rows are the prefixes of 4 → 5 → 6 → 7, given out of order; user v has sliding windows.
        let train = [
            row("u", &[4, 5], 6, 30),
            row("v", &[1, 2], 3, 10),
            row("u", &[4], 5, 20),
            row("u", &[4, 5, 6], 7, 40),
            row("v", &[2, 3], 8, 11),
        ];
        let s = Sequences::from_train(&train, 9);
        assert_eq!(s.seqs, vec![vec![4, 5, 6, 7], vec![1, 2, 3, 8]]);
        assert_eq!(s.n_targets(), 6);
        assert_eq!(s.windows(2), vec![vec![5, 6, 7], vec![2, 3, 8]]);
        assert_eq!(s.prefixes(1)[..3], [vec![4, 5], vec![5, 6], vec![6, 7]]);
    }

    #[test]
    fn layouts_by_hand() {
        let device = Device::flex();
        let n = NextItems::new(&[&[3, 4, 5], &[7, 8]], 50, &device);
        assert_eq!(n.input.lens, [2, 1]);
        assert_eq!(n.targets, [4, 5, 8, -1]);
        let rows: Vec<i64> = n.input.rows.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(rows, [4, 5, 8, 0]);
        let w = Windows::new(&[&[1, 2, 3], &[9]], 2, &device);
        let rows: Vec<i64> = w.rows.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(rows, [3, 4, 0, 10]);
    }

    #[test]
    fn cross_entropy_by_hand() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data([[0.0f32, 0.0], [2.0, 0.0], [5.0, 5.0]], &device);
        let l: f32 = cross_entropy(logits, &[1, 0, -1]).into_scalar();
        let want = (2f32.ln() + (1.0 + (-2f32).exp()).ln()) / 2.0;
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }
}
