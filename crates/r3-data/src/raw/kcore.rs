//! The time window and the iterative k-core of `process.py`, run on the compact in-memory reviews.

use super::PrepareConfig;
use super::reader::{Metadata, Reviews, TitlePasses};
use super::window::YearMonth;

/// The window start year at or below which `process.py` stops moving the window (`if st_year > 1996`).
pub(crate) const LAST_MOVABLE_YEAR: i32 = 1996;

/// How many months the window start moves back when too few items survive.
pub(crate) const MOVE_MONTHS: u32 = 3;

/// The result of the k-core stage: what the last iteration of the last window kept.
#[derive(Debug)]
pub(crate) struct Core {
    /// The final window start.
    pub start: YearMonth,
    /// How many times the window start moved back.
    pub moves: u32,
    /// k-core iterations over all windows.
    pub iterations: u32,
    /// Indices into `Reviews::records` of the kept reviews, in file order (`new_reviews`).
    pub kept: Vec<u32>,
    /// Kept items (interner indices) in order of first appearance among the kept reviews (`items.keys()`).
    pub items: Vec<u32>,
    /// The number of kept users.
    pub users: usize,
    /// `id_title` of the final window's metadata pass, per item index (`None`: removed).
    pub titles: Vec<Option<String>>,
}

/// Runs the window and k-core stage of `process.py`.
///
/// For each window: the items without an acceptable title are removed, then the loop counts reviews per user
/// and per item over the reviews inside the window whose user and item are not removed, removes every user and
/// item with fewer than `k` reviews, and repeats until nothing is removed. If the window starts after 1996 and an
/// iteration counts fewer than `min_items` items, everything restarts with fresh removal sets and the start
/// moved back three months.
///
/// Since the removal sets only grow within a window, each iteration filters the previous iteration's reviews
/// instead of rescanning the file: the result is the same.
pub(crate) fn run(reviews: &Reviews, meta: &Metadata, cfg: &PrepareConfig) -> Core {
    let records = &reviews.records;
    let (n_users, n_items) = (reviews.users.len(), reviews.items.len());
    let end = cfg.end.unix_utc();
    let mut start = cfg.start;
    let (mut moves, mut iterations) = (0u32, 0u32);
    let mut user_count = vec![0u32; n_users];
    let mut item_count = vec![0u32; n_items];
    // The metadata stage runs again after each move, on titles already cleaned by the previous runs (see
    // `Metadata::titles`).
    let mut passes = TitlePasses::new(meta);
    'window: loop {
        let titles = passes.id_title(n_items);
        let mut removed_item: Vec<bool> = titles.iter().map(Option::is_none).collect();
        let mut removed_user = vec![false; n_users];
        let lo = start.unix_utc();
        let mut kept: Vec<u32> =
            (0..records.len() as u32).filter(|&i| (lo..=end).contains(&records[i as usize].time)).collect();
        tracing::info!(start = %start, end = %cfg.end, reviews = kept.len(), "window");
        loop {
            kept.retain(|&i| {
                let r = &records[i as usize];
                !removed_user[r.user as usize] && !removed_item[r.item as usize]
            });
            let (mut users, mut items) = (Vec::new(), Vec::new());
            for &i in &kept {
                let r = &records[i as usize];
                let (u, it) = (r.user as usize, r.item as usize);
                if user_count[u] == 0 {
                    users.push(r.user);
                }
                user_count[u] += 1;
                if item_count[it] == 0 {
                    items.push(r.item);
                }
                item_count[it] += 1;
            }
            let mut changed = false;
            for &u in &users {
                let c = &mut user_count[u as usize];
                if (*c as usize) < cfg.k {
                    removed_user[u as usize] = true;
                    changed = true;
                }
                *c = 0;
            }
            for &it in &items {
                let c = &mut item_count[it as usize];
                if (*c as usize) < cfg.k {
                    removed_item[it as usize] = true;
                    changed = true;
                }
                *c = 0;
            }
            iterations += 1;
            tracing::debug!(users = users.len(), items = items.len(), reviews = kept.len(), "k-core iteration");
            if start.year > LAST_MOVABLE_YEAR && items.len() < cfg.min_items {
                let next = start.months_earlier(MOVE_MONTHS);
                tracing::info!(
                    items = items.len(),
                    min_items = cfg.min_items,
                    from = %start,
                    to = %next,
                    "too few items: moving the window start back"
                );
                start = next;
                moves += 1;
                passes.next_pass();
                continue 'window;
            }
            if !changed {
                return Core { start, moves, iterations, kept, items, users: users.len(), titles };
            }
        }
    }
}
