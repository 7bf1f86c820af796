//! The real CDs catalogue and test split: shared titles, and title matching versus id matching.

use r3_data::{Catalogue, Split, read_split};
use r3_metrics::{Cutoffs, TitleIndex, evaluate_by_id, evaluate_by_title, strip_catalogue_title, strip_target_text};

use crate::common::{CDS, data_root, record};

#[test]
fn title_and_id_matching_agree_on_the_cds_test_split() -> anyhow::Result<()> {
    let dir = data_root();
    let catalogue = Catalogue::read(&dir.join("info").join(format!("{CDS}.txt")))?;
    let test = read_split(&Split::Test.path(&dir, CDS))?;
    let index = TitleIndex::new(&catalogue);
    // Stripping can only merge titles, never split them: 5,841 ids, fewer distinct stripped titles (185 titles
    // are shared by several ids).
    assert!(index.len() <= catalogue.distinct_titles() && !catalogue.shared_titles().is_empty());
    // Each target string, written `"title"\n` and stripped, is the stripped catalogue title of its id, which is
    // the condition under which id matching equals title matching.
    for row in &test {
        assert_eq!(strip_target_text(&format!("\"{}\"\n", row.item_title)), strip_catalogue_title(&row.item_title));
    }
    // Sample i predicts 10 catalogue titles, its own title at rank i % 12 (ranks 10 and 11 are misses); the
    // fillers are the titles of the next ids, so shared titles (such as the scraped `<span ...` title) can also
    // hit early. Both modes must give the same rank for every sample.
    let n = catalogue.len();
    let records: Vec<_> = test
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut preds: Vec<&str> =
                (1..=10).map(|j| catalogue.title(((row.item_id as usize + j) % n) as u32).unwrap_or("")).collect();
            if i % 12 < 10 {
                preds[i % 12] = &row.item_title;
            }
            record(&row.item_title, &preds)
        })
        .collect();
    let ids: Vec<_> = test.iter().map(|r| r.item_id).collect();
    let by_title = evaluate_by_title(&records, &index)?;
    let by_id = evaluate_by_id(&records, &ids, &index)?;
    assert_eq!(by_title, by_id);
    assert_eq!(by_title.outside, 0);
    assert_eq!(by_title.len(), test.len());
    // At least 10 of every 12 samples hit; shared titles among the fillers can only add hits or move them later.
    let hits = by_title.ranks.iter().filter(|r| r.is_some()).count();
    assert!(hits >= test.len() / 12 * 10, "{hits} hits of {}", test.len());
    let m = by_title.metrics(&Cutoffs::default());
    assert!(m.hr[3] >= 10.0 / 12.0 - 0.01, "{m:?}");
    Ok(())
}
