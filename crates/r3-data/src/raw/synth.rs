//! A realistic synthetic raw Amazon 2018 set (reviews and metadata JSON lines) for benchmarks and tests.
//!
//! The generator mimics the real files closely enough to exercise every branch of [`prepare`](super::prepare):
//! the reviews are grouped by ASIN as in the Amazon dumps, carry the usual extra fields (`verified`,
//! `reviewTime`, `reviewerName`, `reviewText`, `summary`), item popularity is Zipf-like, each user reviews
//! several items within an activity span of up to 18 months, and the review times are whole days from 2014 to
//! 2018. The metadata has a title for most items, but also records without a title, `<span id` titles, titles
//! that need cleaning (`&amp;`, `&quot;`, padding, double-encoded `&amp;quot;`), too short and too long titles,
//! non-ASCII and quote characters, repeated ASINs and items nobody reviewed.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::window::{civil_from_days, days_from_civil};
use crate::error::{Error, Result};
use crate::layout::write_atomic;

/// `splitmix64`: a tiny, fast and well-mixed generator; enough for synthetic data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by the multiply-shift method.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

const WORDS: &[&str] = &[
    "Abbey",
    "Road",
    "Blue",
    "Train",
    "Live",
    "at",
    "the",
    "Royal",
    "Albert",
    "Hall",
    "Greatest",
    "Hits",
    "Night",
    "Dreams",
    "Rumours",
    "Kind",
    "of",
    "Moon",
    "Dark",
    "Side",
    "Velvet",
    "Underground",
    "Songs",
    "in",
    "Key",
    "Life",
    "Remastered",
    "Deluxe",
    "Edition",
    "Vinyl",
    "LP",
    "Anthology",
    "Volume",
    "Sessions",
    "Gold",
    "River",
    "City",
    "Heart",
    "Fire",
    "Electric",
    "Ladyland",
    "Paranoid",
    "Revolver",
    "Pet",
    "Sounds",
    "Harvest",
    "Born",
    "Run",
    "Purple",
    "Rain",
    "Nevermind",
    "Thriller",
    "Back",
    "Black",
    "Led",
    "Zeppelin",
    "IV",
    "Wall",
    "Sticky",
    "Fingers",
    "Tapestry",
    "Graceland",
    "Highway",
    "Revisited",
    "Café",
    "Motörhead",
    "Björk",
    "Señor",
    "Noël",
    "Déjà",
    "Vu",
    "Don't",
    "Stop",
    "It's",
    "Rock'n'Roll",
    "Live!",
    "(Remix)",
    "[Import]",
    "2-CD",
    "Set,",
    "Part",
    "II",
    "-",
    "Collector's",
    "Box",
    "Ballads",
    "Blues",
    "Jazz",
    "Classics",
    "Symphony",
    "No.",
    "5",
];

const NAMES: &[&str] =
    &["James", "Mary", "Amazon Customer", "J. Smith", "Kindle Customer", "Rock Fan", "María", "Zoë", "Li Wei", "Bob"];

const CATEGORIES: &[&str] = &["Rock", "Pop", "Jazz", "Classical", "Blues", "Country", "Soundtracks", "Folk"];

fn base36(mut v: u64, digits: usize) -> String {
    let mut out = vec![b'0'; digits];
    for d in out.iter_mut().rev() {
        *d = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A distinct ASIN per index: `B` and 9 base-36 digits of a bijection of `index` modulo 36⁹.
fn asin(index: usize, salt: u64) -> String {
    const MOD: u64 = 101_559_956_668_416; // 36^9
    let v = (index as u64 % MOD).wrapping_mul(2_654_435_761) % MOD;
    format!("B{}", base36((v + salt % MOD) % MOD, 9))
}

/// A distinct reviewer id per index: `A`, 12 base-36 digits of a bijection modulo 36¹², and one more digit.
fn reviewer(index: usize, salt: u64) -> String {
    const MOD: u64 = 4_738_381_338_321_616_896; // 36^12
    let v = ((index as u128 * 2_654_435_761u128) % u128::from(MOD)) as u64;
    format!("A{}{}", base36((v + salt % MOD) % MOD, 12), base36(index as u64 % 36, 1))
}

fn words(rng: &mut SplitMix64, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

/// A title as the Amazon metadata has them, sometimes in need of cleaning or to be rejected.
fn title(rng: &mut SplitMix64) -> Option<String> {
    let plain = |rng: &mut SplitMix64| {
        let n = 2 + rng.below(5);
        words(rng, n)
    };
    let p = rng.below(1000);
    Some(match p {
        0..=9 => return None,
        10..=19 => format!("<span id=\"productTitle\" class=\"a-size-large\">{}</span>", plain(rng)),
        20..=24 => rng.pick(&["X", "\"Y\"", " Z ", "é"]).to_string(),
        25..=29 => {
            let n = 21 + rng.below(5);
            words(rng, n)
        }
        30..=32 => format!("\" {} \"", words(rng, 20)), // too long once, kept after a second cleaning pass
        33..=52 => format!("{} &amp; {}", plain(rng), plain(rng)),
        53..=62 => format!("&quot;{}&quot; {}", plain(rng), plain(rng)),
        63..=67 => format!("&amp;quot;{}&amp;quot;", plain(rng)), // needs two cleaning passes
        68..=72 => format!("\" {} \"", plain(rng)),               // quotes outside spaces
        73..=82 => format!("  {}  ", plain(rng)),
        83..=85 => "<span class=\"a-size-medium a-color-secondary a-text-normal".to_string(),
        86..=90 => format!("{} \"{}\" {}", plain(rng), plain(rng), rng.pick(&["It's", "Don't", "Rock'n'Roll"])),
        91..=93 => format!("{}\u{a0}{}", plain(rng), plain(rng)), // a no-break space: repr escapes it
        94..=96 => format!("{} \u{2019}{}\u{2019}", plain(rng), plain(rng)),
        _ => plain(rng),
    })
}

#[derive(serde::Serialize)]
#[allow(non_snake_case)] // The field names of the Amazon 2018 files.
struct SynthReview<'a> {
    overall: f64,
    verified: bool,
    reviewTime: String,
    reviewerID: &'a str,
    asin: &'a str,
    reviewerName: &'a str,
    reviewText: String,
    summary: String,
    unixReviewTime: i64,
}

#[derive(serde::Serialize)]
struct SynthMeta<'a> {
    category: [&'a str; 2],
    tech1: &'a str,
    description: [String; 1],
    fit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    also_buy: Vec<String>,
    brand: &'a str,
    feature: [&'a str; 0],
    rank: String,
    main_cat: &'a str,
    price: String,
    asin: &'a str,
}

/// Writes `{dir}/{category}_5.json` (exactly `n_reviews` review lines) and `{dir}/meta_{category}.json` (one
/// record per item, plus repeats and unreviewed items), plain JSON lines, deterministic given `seed`. Returns the
/// two paths (reviews, metadata).
///
/// Sizes scale with `n_reviews`: about `n_reviews / 20` items and `n_reviews / 7` users.
pub fn write_synthetic(dir: &Path, category: &str, n_reviews: usize, seed: u64) -> Result<(PathBuf, PathBuf)> {
    if category.is_empty() || category.contains(['/', '\\', '\0']) {
        return Err(Error::Setting {
            key: "category".into(),
            message: format!("`{category}` cannot be a file name stem: use e.g. Synthetic"),
        });
    }
    let mut rng = SplitMix64(seed ^ 0x5eed_0fa3_a201_8018);
    let salt = rng.next();
    let n_items = (n_reviews / 20).max(30);
    // Zipf-like popularity: weight 1 / (rank + 10), cumulative for inverse-CDF sampling. Ranks are shuffled over
    // the item indices so that popular items are spread across the file.
    let mut rank_of: Vec<usize> = (0..n_items).collect();
    for i in (1..n_items).rev() {
        let j = rng.below(i + 1);
        rank_of.swap(i, j);
    }
    let mut cumulative = Vec::with_capacity(n_items);
    let mut acc = 0.0;
    for r in 0..n_items {
        acc += 1.0 / (r as f64 + 10.0);
        cumulative.push(acc);
    }
    let first_day = days_from_civil(2014, 1, 1);
    let last_day = days_from_civil(2018, 12, 31);

    // (item, user, day, stars), then grouped by item as in the Amazon dumps.
    let mut reviews: Vec<(u32, u32, i64, u8)> = Vec::with_capacity(n_reviews);
    let mut user = 0u32;
    while reviews.len() < n_reviews {
        let count = 2 + (-(1.0 - rng.unit()).ln() * 5.0) as usize;
        let begin = first_day + rng.below((last_day - first_day + 1) as usize) as i64;
        let span = 30 + rng.below(520) as i64;
        for _ in 0..count.min(n_reviews - reviews.len()) {
            let x = rng.unit() * acc;
            let rank = cumulative.partition_point(|&c| c <= x).min(n_items - 1);
            let day = (begin + rng.below(span as usize) as i64).min(last_day);
            let stars = match rng.below(100) {
                0..=59 => 5,
                60..=79 => 4,
                80..=89 => 3,
                90..=94 => 2,
                _ => 1,
            };
            reviews.push((rank_of[rank] as u32, user, day, stars));
        }
        user += 1;
    }
    reviews.sort_by_key(|r| r.0);

    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    let reviews_path = dir.join(format!("{category}_5.json"));
    let meta_path = dir.join(format!("meta_{category}.json"));
    let mut text_rng = SplitMix64(rng.next());
    write_atomic(&reviews_path, |w| {
        for &(item, user, day, stars) in &reviews {
            let (y, m, d) = civil_from_days(day);
            let (item_asin, user_id) = (asin(item as usize, salt), reviewer(user as usize, salt));
            let n_words = 5 + text_rng.below(26);
            let mut text = words(&mut text_rng, n_words);
            if text_rng.below(20) == 0 {
                text.push_str(" \"Quoted\" line\nbreak \u{1f3b5}");
            }
            let summary_words = 1 + text_rng.below(4);
            let r = SynthReview {
                overall: f64::from(stars),
                verified: text_rng.below(10) < 8,
                reviewTime: format!("{m:02} {d:02}, {y}"),
                reviewerID: &user_id,
                asin: &item_asin,
                reviewerName: text_rng.pick(NAMES),
                reviewText: text,
                summary: words(&mut text_rng, summary_words),
                unixReviewTime: day * 86_400,
            };
            serde_json::to_writer(&mut *w, &r).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;

    let mut meta_rng = SplitMix64(rng.next());
    let extra = n_items / 50 + 1;
    write_atomic(&meta_path, |w| {
        let mut repeats = Vec::new();
        for i in 0..n_items + extra {
            let a = asin(i, salt);
            let t = title(&mut meta_rng);
            if meta_rng.below(100) == 0 {
                repeats.push(i);
            }
            write_meta(w, &mut meta_rng, &a, t.as_deref())?;
        }
        // Some ASINs appear again later with another title (the later title wins, a rejected one removes it).
        for i in repeats {
            let t = title(&mut meta_rng);
            write_meta(w, &mut meta_rng, &asin(i, salt), t.as_deref())?;
        }
        Ok(())
    })?;
    tracing::info!(reviews = n_reviews, items = n_items, users = user, dir = %dir.display(), "wrote synthetic data");
    Ok((reviews_path, meta_path))
}

fn write_meta(w: &mut dyn Write, rng: &mut SplitMix64, asin_: &str, title: Option<&str>) -> std::io::Result<()> {
    let n_words = 8 + rng.below(20);
    let description = [words(rng, n_words)];
    let m = SynthMeta {
        category: ["CDs & Vinyl", rng.pick(CATEGORIES)],
        tech1: "",
        description,
        fit: "",
        title,
        also_buy: (0..rng.below(4)).map(|_| format!("B{:09}", rng.below(1_000_000_000))).collect(),
        brand: rng.pick(NAMES),
        feature: [],
        rank: format!("{} in CDs & Vinyl (", 1 + rng.below(900_000)),
        main_cat: "Music",
        price: format!("${}.{:02}", 1 + rng.below(60), rng.below(100)),
        asin: asin_,
    };
    serde_json::to_writer(&mut *w, &m).map_err(std::io::Error::other)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_shaped_like_amazon_ids() {
        let asins: std::collections::HashSet<String> = (0..10_000).map(|i| asin(i, 7)).collect();
        assert_eq!(asins.len(), 10_000);
        assert!(asins.iter().all(|a| a.len() == 10 && a.starts_with('B')));
        let users: std::collections::HashSet<String> = (0..10_000).map(|i| reviewer(i, 7)).collect();
        assert_eq!(users.len(), 10_000);
        assert!(users.iter().all(|u| u.len() == 14 && u.starts_with('A')));
    }
}
