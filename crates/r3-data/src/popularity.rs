//! Item popularity from the train split and the popular / unpopular split of the catalogue.
//!
//! The paper's long-tail figure compares the relative gain on popular and unpopular items. We count, for each
//! item, the train rows whose target is that item (each train interaction is a prediction target exactly once),
//! rank items by that count (ties by id), and call "popular" the smallest head of that ranking whose counts
//! together reach `coverage` (default 80%) of all train interactions; every other item, including items never
//! seen in train, is "unpopular".

use crate::layout::{Interaction, ItemId};

/// How to split the catalogue into popular and unpopular items.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopularityConfig {
    /// Share of train interactions that the popular head covers, in (0, 1]. Default 0.8 (the 80/20 rule).
    pub coverage: f64,
}

impl Default for PopularityConfig {
    fn default() -> Self {
        PopularityConfig { coverage: 0.8 }
    }
}

/// Train interaction counts per item and the popular / unpopular split.
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    counts: Vec<u32>,
    popular: Vec<bool>,
    coverage: f64,
}

impl Popularity {
    /// Counts the train targets of a catalogue of `n_items` items and splits it by `config.coverage`.
    ///
    /// # Panics
    /// If `config.coverage` is not in (0, 1] or a row's target id is `>= n_items` (rows come validated from
    /// [`crate::Dataset::load`]).
    pub fn from_train(train: &[Interaction], n_items: usize, config: PopularityConfig) -> Self {
        assert!(
            config.coverage > 0.0 && config.coverage <= 1.0,
            "popularity coverage must be in (0, 1], got {}",
            config.coverage
        );
        let mut counts = vec![0u32; n_items];
        for row in train {
            counts[row.item_id as usize] += 1;
        }
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let mut order: Vec<usize> = (0..n_items).collect();
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let mut popular = vec![false; n_items];
        let target = config.coverage * total as f64;
        let mut covered = 0u64;
        for &i in &order {
            if covered as f64 >= target || counts[i] == 0 {
                break;
            }
            popular[i] = true;
            covered += u64::from(counts[i]);
        }
        Popularity { counts, popular, coverage: config.coverage }
    }

    /// The number of train interactions of `id` (0 for an id outside the catalogue).
    pub fn count(&self, id: ItemId) -> u32 {
        self.counts.get(id as usize).copied().unwrap_or(0)
    }

    /// Whether `id` belongs to the popular head.
    pub fn is_popular(&self, id: ItemId) -> bool {
        self.popular.get(id as usize).copied().unwrap_or(false)
    }

    /// The bucket name of `id`: `"popular"` or `"unpopular"`.
    pub fn bucket(&self, id: ItemId) -> &'static str {
        if self.is_popular(id) { "popular" } else { "unpopular" }
    }

    /// The number of popular items.
    pub fn n_popular(&self) -> usize {
        self.popular.iter().filter(|&&p| p).count()
    }

    /// The share of train interactions whose target is popular (at least the configured coverage).
    pub fn covered_share(&self) -> f64 {
        let total: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        let covered: u64 = self.counts.iter().zip(&self.popular).filter(|(_, p)| **p).map(|(&c, _)| u64::from(c)).sum();
        if total == 0 { 0.0 } else { covered as f64 / total as f64 }
    }

    /// The configured coverage.
    pub fn coverage(&self) -> f64 {
        self.coverage
    }

    /// Counts per item, in id order.
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(item_id: ItemId) -> Interaction {
        Interaction {
            user_id: "u".into(),
            history_asins: vec![],
            item_asin: "a".into(),
            history_item_ids: vec![],
            item_id,
            history_titles: vec![],
            item_title: "t".into(),
            history_ratings: vec![],
            rating: 5.0,
            history_timestamps: vec![],
            timestamp: 0,
        }
    }

    #[test]
    fn head_covers_the_share_by_hand() {
        // Counts: item0 = 5, item1 = 3, item2 = 1, item3 = 1, item4 = 0; total 10, 80% = 8.
        // Ranking 0 (5), 1 (3) → covered 8 ≥ 8 after two items: popular = {0, 1}.
        let ids = [0, 0, 0, 0, 0, 1, 1, 1, 2, 3];
        let train: Vec<_> = ids.iter().map(|&i| row(i)).collect();
        let p = Popularity::from_train(&train, 5, PopularityConfig::default());
        assert_eq!(p.counts(), &[5, 3, 1, 1, 0]);
        assert_eq!((0..5).map(|i| p.is_popular(i)).collect::<Vec<_>>(), [true, true, false, false, false]);
        assert_eq!(p.n_popular(), 2);
        assert!((p.covered_share() - 0.8).abs() < 1e-12);
        // At 90% the head needs 9: items 0, 1 and then the tie 2/3 is broken by id → {0, 1, 2}.
        let p = Popularity::from_train(&train, 5, PopularityConfig { coverage: 0.9 });
        assert_eq!(p.n_popular(), 3);
        assert!(p.is_popular(2) && !p.is_popular(3));
        assert_eq!(p.bucket(4), "unpopular");
    }
}
