//! Item ids, per-user histories and the chronological 80/10/10 split of `process.py`, kept compact (indices)
//! until each split is written.

use super::kcore::Core;
use super::pyrandom::PyRandom;
use super::reader::Reviews;
use crate::layout::{Interaction, ItemId};

/// The samples in output order, as positions into a per-user, time-sorted array of review indices.
#[derive(Debug)]
pub(crate) struct Samples {
    /// Kept review indices grouped by user (users in order of first appearance), each group sorted by time with
    /// a stable sort (ties keep file order).
    flat: Vec<u32>,
    /// `(target position in flat, first history position in flat)`, stably sorted by target time.
    rows: Vec<(u32, u32)>,
    /// The item id of each item index (`u32::MAX` for items not in the catalogue).
    id_of: Vec<ItemId>,
}

/// Numbers the kept items as `process.py` does: `random.seed(seed); random.shuffle(items)`, id = position.
/// Returns the items in id order.
pub(crate) fn shuffled_items(core: &Core, seed: u64) -> Vec<u32> {
    let mut items = core.items.clone();
    PyRandom::seed(seed).shuffle(&mut items);
    items
}

impl Samples {
    /// Builds the samples: for each user (in order of first appearance among the kept reviews) the reviews are
    /// sorted by time, and each review after the first is a target whose history is the up to `max_history`
    /// reviews before it. All samples are then stably sorted by target time.
    pub(crate) fn build(reviews: &Reviews, core: &Core, items_by_id: &[u32], max_history: usize) -> Self {
        let records = &reviews.records;
        // Group by user with a counting sort, keeping file order inside each group.
        let mut slot = vec![u32::MAX; reviews.users.len()];
        let mut sizes: Vec<u32> = Vec::new();
        for &i in &core.kept {
            let u = records[i as usize].user as usize;
            if slot[u] == u32::MAX {
                slot[u] = sizes.len() as u32;
                sizes.push(0);
            }
            sizes[slot[u] as usize] += 1;
        }
        let mut starts = Vec::with_capacity(sizes.len() + 1);
        let mut acc = 0u32;
        starts.push(0);
        for s in &sizes {
            acc += s;
            starts.push(acc);
        }
        let mut fill = starts.clone();
        let mut flat = vec![0u32; core.kept.len()];
        for &i in &core.kept {
            let g = slot[records[i as usize].user as usize] as usize;
            flat[fill[g] as usize] = i;
            fill[g] += 1;
        }
        let mut rows = Vec::with_capacity(core.kept.len().saturating_sub(sizes.len()));
        for w in starts.windows(2) {
            let (a, b) = (w[0] as usize, w[1] as usize);
            // `sort_by_key` is stable, as Python's `sorted`.
            flat[a..b].sort_by_key(|&i| records[i as usize].time);
            for pos in a + 1..b {
                let first = pos.saturating_sub(max_history).max(a);
                rows.push((pos as u32, first as u32));
            }
        }
        rows.sort_by_key(|&(pos, _)| records[flat[pos as usize] as usize].time);
        let mut id_of = vec![ItemId::MAX; reviews.items.len()];
        for (id, &item) in items_by_id.iter().enumerate() {
            id_of[item as usize] = id as ItemId;
        }
        Samples { flat, rows, id_of }
    }

    /// The number of samples.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The split boundaries as `process.py` computes them: `int(n * 0.8)` and `int(n * 0.9)`.
    pub(crate) fn cuts(&self) -> (usize, usize) {
        let n = self.rows.len() as f64;
        ((n * 0.8) as usize, (n * 0.9) as usize)
    }

    /// The rows `range` as [`Interaction`]s.
    pub(crate) fn interactions(
        &self,
        reviews: &Reviews,
        titles: &[Option<String>],
        range: std::ops::Range<usize>,
    ) -> Vec<Interaction> {
        let records = &reviews.records;
        let title = |item: u32| titles[item as usize].clone().expect("every kept item has a title");
        self.rows[range]
            .iter()
            .map(|&(pos, first)| {
                let target = &records[self.flat[pos as usize] as usize];
                let hist: Vec<_> =
                    self.flat[first as usize..pos as usize].iter().map(|&i| &records[i as usize]).collect();
                Interaction {
                    user_id: reviews.users.name(target.user).to_string(),
                    history_asins: hist.iter().map(|r| reviews.items.name(r.item).to_string()).collect(),
                    item_asin: reviews.items.name(target.item).to_string(),
                    history_item_ids: hist.iter().map(|r| self.id_of[r.item as usize]).collect(),
                    item_id: self.id_of[target.item as usize],
                    history_titles: hist.iter().map(|r| title(r.item)).collect(),
                    item_title: title(target.item),
                    history_ratings: hist.iter().map(|r| r.rating).collect(),
                    rating: target.rating,
                    history_timestamps: hist.iter().map(|r| r.time).collect(),
                    timestamp: target.time,
                }
            })
            .collect()
    }
}
