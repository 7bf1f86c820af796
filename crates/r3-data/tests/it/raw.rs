//! Raw Amazon 2018 ingestion (`r3_data::raw`): the two real raw files of the shared data folder, a raw set
//! derived from the CDs CSVs, the moving time window, a row-for-row cross-check against a Python
//! re-implementation of the official `process.py`, and the errors a malformed raw file gives.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use r3_data::raw::{
    Interner, NoProgress, PrepareConfig, Progress, YearMonth, prepare, read_metadata, read_reviews, synth,
};
use r3_data::{Dataset, Interaction, Split, read_split};

use crate::common::{CDS, data_root};

fn ym(year: i32, month: u32) -> YearMonth {
    YearMonth { year, month }
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn review_line(user: &str, asin: &str, rating: f64, time: i64) -> String {
    let v = serde_json::json!({"overall": rating, "reviewerID": user, "asin": asin, "reviewText": "fine"});
    // `unixReviewTime` last, as in the Amazon files.
    format!("{},\"unixReviewTime\":{time}}}", v.to_string().trim_end_matches('}'))
}

fn meta_line(asin: &str, title: &str) -> String {
    serde_json::json!({"category": ["Music"], "title": title, "asin": asin, "price": "$1.00"}).to_string()
}

/// The four output files of a stem, as bytes.
fn output_files(dir: &Path, stem: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths = vec![dir.join("info").join(format!("{stem}.txt"))];
    paths.extend(Split::ALL.iter().map(|s| s.path(dir, stem)));
    paths
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))))
        .collect()
}

/// A [`Progress`] that records what it is told.
#[derive(Default)]
struct CountingProgress {
    stages: std::cell::RefCell<Vec<(String, Option<u64>)>>,
    bytes: std::cell::Cell<u64>,
    finished: std::cell::Cell<u32>,
}

impl Progress for CountingProgress {
    fn stage(&self, name: &str, total_bytes: Option<u64>) {
        self.stages.borrow_mut().push((name.to_string(), total_bytes));
    }
    fn advance(&self, bytes: u64) {
        self.bytes.set(self.bytes.get() + bytes);
    }
    fn finish_stage(&self) {
        self.finished.set(self.finished.get() + 1);
    }
}

#[test]
fn the_real_reviews_file_parses() {
    // Expected values computed with python3 on this file:
    //   revs = [json.loads(l) for l in gzip.open('Appliances_5.json.gz', 'rt')]
    //   len(revs), len({r['reviewerID'] for r in revs}), len({r['asin'] for r in revs}),
    //   min/max of unixReviewTime, sum(r['overall'] for r in revs), Counter(r['overall'] for r in revs)[5.0]
    let path = data_root().join("raw").join("Appliances_5.json.gz");
    let r = read_reviews(&path, &NoProgress).unwrap();
    assert_eq!(r.records.len(), 2277);
    assert_eq!(r.users.len(), 47);
    assert_eq!(r.items.len(), 48);
    assert_eq!(r.records.iter().map(|x| x.time).min(), Some(1_221_523_200));
    assert_eq!(r.records.iter().map(|x| x.time).max(), Some(1_523_923_200));
    assert_eq!(r.records.iter().map(|x| x.rating).sum::<f64>(), 10_246.0);
    assert_eq!(r.records.iter().filter(|x| x.rating == 5.0).count(), 1612);
    // The first and the last line.
    let first = r.records[0];
    assert_eq!((r.users.name(first.user), r.items.name(first.item)), ("A34A1UP40713F8", "B00009W3I4"));
    assert_eq!((first.rating, first.time), (5.0, 1_377_129_600));
    // Progress counts the bytes of the file as stored (compressed).
    let progress = CountingProgress::default();
    read_reviews(&path, &progress).unwrap();
    assert_eq!(progress.stages.borrow().as_slice(), [("reviews".to_string(), Some(74_112))]);
    assert_eq!((progress.bytes.get(), progress.finished.get()), (74_112, 1));
    let last = r.records[2276];
    assert_eq!((r.users.name(last.user), r.items.name(last.item)), ("A3GP2HMB2AFOKF", "B00W4YKCGC"));
    assert_eq!((last.rating, last.time), (5.0, 1_480_896_000));
}

#[test]
fn the_real_metadata_file_parses() {
    // Expected values computed with python3, applying the title rule of process.py to every record of
    // meta_Magazine_Subscriptions.json.gz: 3385 records, 2320 distinct ASINs; per record 0 without title,
    // 0 with `<span id`, 0 too short, 2 too long (> 20 words), 3383 kept; id_title has 2318 ASINs and
    // remove_items the 2 ASINs B00K1M4L6G and B00N5ASI2E; no ASIN is in both.
    let path = data_root().join("raw").join("meta_Magazine_Subscriptions.json.gz");
    // Intern every ASIN of the file (read independently here) so that all records are matched.
    let mut items = Interner::default();
    let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap());
    for line in std::io::BufReader::new(gz).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        items.intern(v["asin"].as_str().unwrap()).unwrap();
    }
    assert_eq!(items.len(), 2320);
    let meta = read_metadata(&path, &items, &NoProgress).unwrap();
    let s = meta.stats;
    assert_eq!((s.lines, s.matched), (3385, 3385));
    assert_eq!((s.missing, s.span_id, s.too_short, s.too_long, s.kept), (0, 0, 0, 2, 3383));
    let titles = meta.titles(items.len(), 1);
    assert_eq!(titles.iter().filter(|t| t.is_some()).count(), 2318);
    for removed in ["B00K1M4L6G", "B00N5ASI2E"] {
        assert_eq!(titles[items.get(removed).unwrap() as usize], None, "{removed}");
    }
    let title = |asin: &str| titles[items.get(asin).unwrap() as usize].as_deref();
    assert_eq!(title("B000066B5M"), Some("Disney & Me")); // `Disney &amp; Me` in the file
    // `<span class=...` is not `<span id`: kept, with its trailing quote stripped.
    assert_eq!(title("B00005N7NQ"), Some("<span class=\"a-size-medium a-color-secondary"));

    // Against the Appliances reviews (another category) no record matches.
    let reviews = read_reviews(&data_root().join("raw").join("Appliances_5.json.gz"), &NoProgress).unwrap();
    let meta = read_metadata(&path, &reviews.items, &NoProgress).unwrap();
    assert_eq!((meta.stats.lines, meta.stats.matched, meta.len()), (3385, 0, 0));
}

/// Writes a raw set derived from the CDs CSVs: every (user, asin, rating, time) of every history and target,
/// deduplicated on (user, asin, time), grouped by user (users and their reviews in order of first appearance),
/// and one metadata record per ASIN.
fn write_cds_raw(dir: &Path) -> (PathBuf, PathBuf) {
    let root = data_root();
    let mut seen = HashSet::new();
    let mut by_user: Vec<(String, Vec<String>)> = Vec::new();
    let mut user_slot: HashMap<String, usize> = HashMap::new();
    let mut titles: Vec<(String, String)> = Vec::new();
    let mut titled = HashSet::new();
    for split in Split::ALL {
        for row in read_split(&split.path(&root, CDS)).unwrap() {
            let hist = (0..row.history_len()).map(|i| {
                (&row.history_asins[i], &row.history_titles[i], row.history_ratings[i], row.history_timestamps[i])
            });
            let target = std::iter::once((&row.item_asin, &row.item_title, row.rating, row.timestamp));
            for (asin, title, rating, time) in hist.chain(target) {
                if titled.insert(asin.clone()) {
                    titles.push((asin.clone(), title.clone()));
                }
                if !seen.insert((row.user_id.clone(), asin.clone(), time)) {
                    continue;
                }
                let slot = *user_slot.entry(row.user_id.clone()).or_insert_with(|| {
                    by_user.push((row.user_id.clone(), Vec::new()));
                    by_user.len() - 1
                });
                by_user[slot].1.push(review_line(&row.user_id, asin, rating, time));
            }
        }
    }
    let reviews = dir.join("CDs_and_Vinyl_5.json");
    write_lines(&reviews, &by_user.into_iter().flat_map(|(_, l)| l).collect::<Vec<_>>());
    let meta = dir.join("meta_CDs_and_Vinyl.json");
    write_lines(&meta, &titles.iter().map(|(a, t)| meta_line(a, t)).collect::<Vec<_>>());
    (reviews, meta)
}

#[test]
fn a_raw_set_derived_from_the_cds_csvs_gives_a_valid_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let (reviews, meta) = write_cds_raw(tmp.path());
    let cfg = |k| PrepareConfig {
        category: "CDs_and_Vinyl".into(),
        k,
        start: ym(2015, 10),
        min_items: 5,
        ..Default::default()
    };

    // The derived set has 25694 reviews (2991 users, 5590 items): the recovered train subset lacks most of the
    // original train interactions, so the 5-core collapses to a tiny core. Its size was computed with python3 by
    // running the k-core loop of process.py over the same derived reviews: 38 iterations, 7 users, 7 items, 36
    // reviews.
    let out5 = tmp.path().join("out5");
    let report = prepare(&reviews, &meta, &out5, &cfg(5), &NoProgress).unwrap();
    assert_eq!(report.stem, CDS);
    assert_eq!((report.review_lines, report.raw_users, report.raw_items), (25_694, 2991, 5590));
    assert_eq!((report.kcore_iterations, report.users, report.items, report.reviews_kept), (38, 7, 7, 36));
    check_prepared(&out5, &report, 5);

    // The 4-core keeps a realistic dataset (python3, same loop: 2427 users, 2359 items, 17104 reviews).
    let out = tmp.path().join("out4");
    let report = prepare(&reviews, &meta, &out, &cfg(4), &NoProgress).unwrap();
    assert_eq!(report.stem, "CDs_and_Vinyl_4_2015-10-2018-11");
    assert_eq!((report.window_moves, report.users, report.items, report.reviews_kept), (0, 2427, 2359, 17_104));
    check_prepared(&out, &report, 4);

    // A second run into another folder writes the same bytes.
    let out2 = tmp.path().join("out4-again");
    prepare(&reviews, &meta, &out2, &cfg(4), &NoProgress).unwrap();
    for ((p1, b1), (p2, b2)) in output_files(&out, &report.stem).into_iter().zip(output_files(&out2, &report.stem)) {
        assert!(b1 == b2, "{} and {} differ", p1.display(), p2.display());
    }
}

/// Checks the invariants of a prepared dataset: sizes, the k-core, dense ids, chronological disjoint splits,
/// histories and clean titles.
fn check_prepared(out: &Path, report: &r3_data::raw::PrepareReport, k: usize) {
    // `Dataset::load` also checks every id and title against the catalogue.
    let ds = Dataset::load(out, &report.stem).unwrap();
    let all: Vec<&Interaction> = ds.train.iter().chain(&ds.valid).chain(&ds.test).collect();
    assert_eq!(ds.catalogue.len(), report.items);
    assert_eq!(all.len(), report.reviews_kept - report.users);
    assert_eq!(
        [ds.train.len(), ds.valid.len(), ds.test.len()],
        [report.train_rows, report.valid_rows, report.test_rows]
    );
    let n = all.len();
    assert_eq!(ds.train.len(), (n as f64 * 0.8) as usize);
    assert_eq!(ds.train.len() + ds.valid.len(), (n as f64 * 0.9) as usize);

    // The k-core holds: rebuild the kept reviews (each user's first review is the oldest history entry of its
    // first sample; every other review is a target) and count them per user and per item.
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    let mut per_item: HashMap<u32, usize> = HashMap::new();
    let mut first_sample: HashMap<&str, &Interaction> = HashMap::new();
    for r in &all {
        *per_user.entry(&r.user_id).or_default() += 1;
        *per_item.entry(r.item_id).or_default() += 1;
        let f = first_sample.entry(&r.user_id).or_insert(r);
        if r.history_len() < f.history_len() {
            *f = r;
        }
    }
    for r in first_sample.values() {
        assert_eq!(r.history_len(), 1, "a user's first sample has exactly one history item");
        *per_item.entry(r.history_item_ids[0]).or_default() += 1;
    }
    assert_eq!(per_user.len(), report.users);
    assert!(per_user.values().all(|&c| c + 1 >= k), "every user has >= k reviews");
    assert!(per_item.values().all(|&c| c >= k), "every item has >= k reviews");
    assert_eq!(per_item.values().sum::<usize>(), report.reviews_kept);
    // Ids are dense and every id is used.
    assert_eq!(per_item.len(), ds.catalogue.len());
    assert!(per_item.keys().all(|&id| (id as usize) < ds.catalogue.len()));

    // The splits are chronological and disjoint.
    let span = |s: &[Interaction]| (s.iter().map(|r| r.timestamp).min(), s.iter().map(|r| r.timestamp).max());
    let (t, v, e) = (span(&ds.train), span(&ds.valid), span(&ds.test));
    assert!(t.1 <= v.0.or(e.0) && (v.1.is_none() || v.1 <= e.0), "train {t:?} valid {v:?} test {e:?}");
    let key = |r: &Interaction| (r.user_id.clone(), r.item_asin.clone(), r.timestamp, r.history_asins.clone());
    let mut keys = HashSet::new();
    assert!(all.iter().all(|r| keys.insert(key(r))), "a sample appears twice");
    // Histories: at most 10, oldest first, never after the target.
    for r in &all {
        assert!((1..=10).contains(&r.history_len()));
        r.check_shape().unwrap();
        assert!(r.history_timestamps.iter().all(|&h| h <= r.timestamp));
    }
    // Titles are clean.
    for t in ds.catalogue.titles() {
        assert_eq!(t.trim_matches([' ', '"']), t, "unclean title {t:?}");
        assert!(t.chars().count() > 1 && t.split(' ').count() <= 20 && !t.contains("<span id"));
    }
}

#[test]
fn too_few_items_move_the_window_start_and_both_edges_are_inclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let start = ym(2017, 1).unix_utc(); // the start after one move
    let end = ym(2018, 11).unix_utc();
    let day = |m: u32, d: u32| ym(2017, m).unix_utc() + i64::from(d - 1) * 86_400;
    let reviews = tmp.path().join("X_5.json");
    write_lines(
        &reviews,
        &[
            review_line("U1", "I1", 5.0, day(5, 10)),
            review_line("U1", "I2", 4.0, day(6, 1)),
            review_line("U1", "I3", 3.0, start), // exactly the moved start: kept
            review_line("U2", "I1", 2.0, day(7, 1)),
            review_line("U2", "I2", 1.0, day(8, 1)),
            review_line("U2", "I3", 5.0, end),       // exactly the end: kept
            review_line("U3", "I3", 5.0, start - 1), // one second early: dropped
            review_line("U3", "I1", 5.0, end + 1),   // one second late: dropped
        ],
    );
    let meta = tmp.path().join("meta_X.json");
    write_lines(&meta, &[meta_line("I1", "One"), meta_line("I2", "Two"), meta_line("I3", "Three")]);
    // With the start at 2017-4, the first iteration counts 3 items but removes I3 (one review in the window), and
    // the second counts 2 < min_items = 3: the start moves to 2017-1, where I3 has two reviews.
    let cfg = PrepareConfig { category: "X".into(), k: 2, start: ym(2017, 4), min_items: 3, ..Default::default() };
    let out = tmp.path().join("out");
    let report = prepare(&reviews, &meta, &out, &cfg, &NoProgress).unwrap();
    assert_eq!(report.stem, "X_2_2017-1-2018-11");
    assert_eq!((report.start, report.window_moves), (ym(2017, 1), 1));
    assert_eq!((report.users, report.items, report.reviews_kept), (2, 3, 6));
    let ds = Dataset::load(&out, &report.stem).unwrap();
    let all: Vec<&Interaction> = ds.train.iter().chain(&ds.valid).chain(&ds.test).collect();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|r| r.user_id != "U3"));
    assert!(all.iter().any(|r| r.history_timestamps.contains(&start)), "the review at the start is kept");
    assert!(all.iter().any(|r| r.timestamp == end && r.item_asin == "I3"), "the review at the end is kept");
    // n = 4: int(3.2) = 3 train rows, int(3.6) - 3 = 0 valid rows, 1 test row (the newest target).
    assert_eq!([ds.train.len(), ds.valid.len(), ds.test.len()], [3, 0, 1]);
    assert_eq!(ds.test[0].timestamp, end);

    // A window starting in 1996 or earlier never moves, however few items survive.
    let cfg = PrepareConfig { start: ym(1996, 10), min_items: 100, ..cfg };
    let report = prepare(&reviews, &meta, &tmp.path().join("out96"), &cfg, &NoProgress).unwrap();
    assert_eq!((report.stem.as_str(), report.window_moves), ("X_2_1996-10-2018-11", 0));
    assert_eq!(report.items, 3);
}

/// A faithful re-implementation of the official `process.py` (BIGRec / D3 / R3), with our three parameters:
/// the window start moves back 3 months (not one year) while fewer than `min_items` (not 10000) items survive,
/// the window edges are in UTC (not the machine's time zone), and files are opened as UTF-8. Everything else,
/// including the in-place title cleaning that repeats after each move, is the original code.
const PROCESS_PY: &str = r#"
import csv, datetime, gzip, json, os, random, sys

def get_timestamp_start(year, month):
    return int(datetime.datetime(year=year, month=month, day=1, tzinfo=datetime.timezone.utc).timestamp())

def load(path):
    with open(path, 'rb') as f:
        gz = f.read(2) == b'\x1f\x8b'
    with (gzip.open(path, 'rt', encoding='utf-8') if gz else open(path, encoding='utf-8')) as f:
        return [json.loads(line) for line in f]

def gao(category, metadata, reviews, K, st_year, st_month, ed_year, ed_month, min_items, seed, out):
    start_timestamp = get_timestamp_start(st_year, st_month)
    end_timestamp = get_timestamp_start(ed_year, ed_month)
    remove_users = set()
    remove_items = set()
    id_title = {}
    for meta in metadata:
        if ('title' not in meta) or (meta['title'].find('<span id') > -1):
            remove_items.add(meta['asin'])
            continue
        meta['title'] = meta["title"].replace("&quot;", "\"").replace("&amp;", "&").strip(" ").strip("\"")
        if len(meta['title']) > 1 and len(meta['title'].split(" ")) <= 20:
            id_title[meta['asin']] = meta['title']
        else:
            remove_items.add(meta['asin'])
    for review in reviews:
        if review['asin'] not in id_title:
            remove_items.add(review['asin'])
    while True:
        flag = False
        total = 0
        users = dict()
        items = dict()
        new_reviews = []
        for review in reviews:
            if int(review["unixReviewTime"]) < start_timestamp or int(review["unixReviewTime"]) > end_timestamp:
                continue
            if review['reviewerID'] in remove_users or review['asin'] in remove_items:
                continue
            if review['reviewerID'] not in users:
                users[review['reviewerID']] = 0
            users[review['reviewerID']] += 1
            if review['asin'] not in items:
                items[review['asin']] = 0
            items[review['asin']] += 1
            total += 1
            new_reviews.append(review)
        for user in users:
            if users[user] < K:
                remove_users.add(user)
                flag = True
        for item in items:
            if items[item] < K:
                remove_items.add(item)
                flag = True
        if st_year > 1996 and len(items) < min_items:
            break
        if not flag:
            break
    if st_year > 1996 and len(items) < min_items:
        st_month -= 3
        if st_month < 1:
            st_month += 12
            st_year -= 1
        return gao(category, metadata, reviews, K, st_year, st_month, ed_year, ed_month, min_items, seed, out)

    stem = f"{category}_{K}_{st_year}-{st_month}-{ed_year}-{ed_month}"
    items = list(items.keys())
    random.seed(seed)
    random.shuffle(items)
    item2id = dict()
    count = 0
    for d in ("info", "train", "valid", "test"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    with open(os.path.join(out, "info", f"{stem}.txt"), 'w', encoding='utf-8') as f:
        for item in items:
            item2id[item] = count
            f.write(f"{id_title[item]}\t{count}\n")
            count += 1
    interact = dict()
    for review in new_reviews:
        user = review['reviewerID']
        item = review['asin']
        if user not in interact:
            interact[user] = {'items': [], 'ratings': [], 'timestamps': [], 'reviews': []}
        interact[user]['items'].append(item)
        interact[user]['ratings'].append(review['overall'])
        interact[user]['timestamps'].append(review['unixReviewTime'])
    interaction_list = []
    for key in interact.keys():
        items = interact[key]['items']
        ratings = interact[key]['ratings']
        timestamps = interact[key]['timestamps']
        all = list(zip(items, ratings, timestamps))
        res = sorted(all, key=lambda x: int(x[2]))
        items, ratings, timestamps = zip(*res)
        items, ratings, timestamps = list(items), list(ratings), list(timestamps)
        interact[key]['items'] = items
        interact[key]['ratings'] = ratings
        interact[key]['timestamps'] = timestamps
        interact[key]['item_ids'] = [item2id[item] for item in items]
        interact[key]['title'] = [id_title[item] for item in items]
        for i in range(1, len(items)):
            st = max(i - 10, 0)
            interaction_list.append([key, interact[key]['items'][st:i], interact[key]['items'][i],
                                     interact[key]['item_ids'][st:i], interact[key]['item_ids'][i],
                                     interact[key]['title'][st:i], interact[key]['title'][i],
                                     interact[key]['ratings'][st:i], interact[key]['ratings'][i],
                                     interact[key]['timestamps'][st:i], interact[key]['timestamps'][i]])
    interaction_list = sorted(interaction_list, key=lambda x: int(x[-1]))
    header = ['user_id', 'item_asins', 'item_asin', 'history_item_id', 'item_id', 'history_item_title',
              'item_title', 'history_rating', 'rating', 'history_timestamp', 'timestamp']
    n = len(interaction_list)
    splits = (("train", interaction_list[:int(n * 0.8)]),
              ("valid", interaction_list[int(n * 0.8):int(n * 0.9)]),
              ("test", interaction_list[int(n * 0.9):]))
    for name, rows in splits:
        with open(os.path.join(out, name, f"{stem}.csv"), "w", encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
    print(json.dumps({"stem": stem, "items": count, "rows": n}))

if __name__ == '__main__':
    reviews_file, meta_file, out, category, K, st, ed, min_items, seed = sys.argv[1:]
    (st_year, st_month), (ed_year, ed_month) = [map(int, s.split('-')) for s in (st, ed)]
    gao(category, load(meta_file), load(reviews_file), int(K), st_year, st_month, ed_year, ed_month,
        int(min_items), int(seed), out)
"#;

#[test]
fn the_output_equals_python_process_py_byte_for_byte() {
    let python = "python3";
    if let Err(e) = std::process::Command::new(python).arg("--version").output() {
        eprintln!("skipped the_output_equals_python_process_py_byte_for_byte: `{python}` cannot run ({e})");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (reviews, meta) = synth::write_synthetic(tmp.path(), "Synthetic", 20_000, 7).unwrap();
    let script = tmp.path().join("process.py");
    std::fs::write(&script, PROCESS_PY).unwrap();
    // min_items is chosen so that the window moves several times (and the titles get re-cleaned).
    let cfg = PrepareConfig { category: "Synthetic".into(), min_items: 400, ..Default::default() };
    let ours = tmp.path().join("ours");
    let report = prepare(&reviews, &meta, &ours, &cfg, &NoProgress).unwrap();
    assert!(report.window_moves >= 2, "the cross-check should exercise window moves: {report}");
    assert!(report.train_rows > 1000, "{report}");

    let theirs = tmp.path().join("theirs");
    let output = std::process::Command::new(python)
        .arg(&script)
        .args([&reviews, &meta, &theirs])
        .args(["Synthetic", "5", "2017-10", "2018-11", "400", "42"])
        .output()
        .unwrap();
    assert!(output.status.success(), "process.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["stem"], report.stem.as_str());
    for ((ours_path, a), (theirs_path, b)) in
        output_files(&ours, &report.stem).into_iter().zip(output_files(&theirs, &report.stem))
    {
        if a != b {
            let line = a.split(|&c| c == b'\n').zip(b.split(|&c| c == b'\n')).position(|(x, y)| x != y);
            panic!(
                "{} differs from {} (first differing line index {line:?})",
                ours_path.display(),
                theirs_path.display()
            );
        }
    }

    // The same files gzipped (the reviews as two concatenated gzip members, as `cat a.gz b.gz` makes) give the
    // same bytes.
    let gz_reviews = tmp.path().join("Synthetic_5.json.gz");
    let text = std::fs::read(&reviews).unwrap();
    let cut = text[..text.len() / 2].iter().rposition(|&c| c == b'\n').unwrap() + 1;
    let mut bytes = gzip(&text[..cut]);
    bytes.extend(gzip(&text[cut..]));
    std::fs::write(&gz_reviews, bytes).unwrap();
    let gz_meta = tmp.path().join("meta_Synthetic.json.gz");
    std::fs::write(&gz_meta, gzip(&std::fs::read(&meta).unwrap())).unwrap();
    let ours_gz = tmp.path().join("ours-gz");
    let report_gz = prepare(&gz_reviews, &gz_meta, &ours_gz, &cfg, &NoProgress).unwrap();
    assert_eq!(report_gz.stem, report.stem);
    for ((p1, a), (p2, b)) in output_files(&ours, &report.stem).into_iter().zip(output_files(&ours_gz, &report.stem)) {
        assert!(a == b, "{} and {} differ", p1.display(), p2.display());
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Runs `read_reviews` on `lines` written to a file named `name` and returns the error's text.
fn reviews_error(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    read_reviews(&path, &NoProgress).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn malformed_raw_files_give_errors_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = r#"{"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1500000000}"#;

    let e = reviews_error(tmp.path(), "truncated.json", &[ok, ok, r#"{"reviewerID": "A1", "asin": "B0"#]);
    assert!(e.contains("truncated.json:3:") && e.contains("truncated"), "{e}");

    let e = reviews_error(
        tmp.path(),
        "missing.json",
        &[ok, r#"{"reviewerID": "A1", "overall": 5.0, "unixReviewTime": 1}"#],
    );
    assert!(e.contains("missing.json:2:") && e.contains("`asin`"), "{e}");

    let wrong = r#"{"reviewerID": "A1", "asin": "B1", "overall": "5.0", "unixReviewTime": 1}"#;
    let e = reviews_error(tmp.path(), "wrong_type.json", &[ok, ok, ok, wrong]);
    assert!(e.contains("wrong_type.json:4:") && e.contains("`overall`"), "{e}");

    let float_time = r#"{"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1.5}"#;
    let e = reviews_error(tmp.path(), "float_time.json", &[float_time]);
    assert!(e.contains("float_time.json:1:") && e.contains("`unixReviewTime`"), "{e}");

    let e = reviews_error(tmp.path(), "blank.json", &[ok, "", ok]);
    assert!(e.contains("blank.json:2:") && e.contains("empty line"), "{e}");

    // A valid gzip header, then garbage.
    let path = tmp.path().join("corrupt.json.gz");
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
    bytes.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    std::fs::write(&path, bytes).unwrap();
    let e = read_reviews(&path, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("corrupt.json.gz:1:") && e.contains("gzip"), "{e}");

    // A real gzip file cut in half fails at the line where the data runs out.
    let full = std::fs::read(data_root().join("raw").join("Appliances_5.json.gz")).unwrap();
    let path = tmp.path().join("Appliances_cut.json.gz");
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let e = read_reviews(&path, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("Appliances_cut.json.gz:") && e.contains("gzip"), "{e}");
    let line: u64 = e.split(':').nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
    assert!(line > 100, "the error is near the cut, not at the start: {e}");

    // Metadata errors name the metadata file.
    let meta = tmp.path().join("meta_bad.json");
    std::fs::write(&meta, "{\"asin\": \"B1\", \"title\": \"Ok\"}\n{\"title\": \"No asin\"}\n").unwrap();
    let e = read_metadata(&meta, &Interner::default(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("meta_bad.json:2:") && e.contains("`asin`"), "{e}");
    std::fs::write(&meta, "{\"asin\": \"B1\", \"title\": [\"A list\"]}\n").unwrap();
    let e = read_metadata(&meta, &Interner::default(), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("meta_bad.json:1:") && e.contains("`title`"), "{e}");

    // A missing file says so.
    let e = read_reviews(&tmp.path().join("nope.json"), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("nope.json") && e.contains("missing"), "{e}");
}

#[test]
fn invalid_settings_are_rejected_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("none.json");
    let cases = [
        (PrepareConfig { category: "X".into(), k: 0, ..Default::default() }, "`k`"),
        (PrepareConfig { category: "X".into(), start: ym(2019, 1), ..Default::default() }, "`start`"),
        (PrepareConfig { category: "X".into(), end: ym(2018, 13), ..Default::default() }, "`end`"),
        (PrepareConfig { category: "".into(), ..Default::default() }, "`category`"),
        (PrepareConfig { category: "a/b".into(), ..Default::default() }, "`category`"),
        (PrepareConfig { category: "X".into(), max_history: 0, ..Default::default() }, "`max_history`"),
    ];
    for (cfg, key) in cases {
        let e = prepare(&nowhere, &nowhere, tmp.path(), &cfg, &NoProgress).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    // The config reads from TOML-like data with unknown keys rejected.
    let cfg: PrepareConfig = serde_json::from_str(r#"{"category": "CDs", "start": "2015-10"}"#).unwrap();
    assert_eq!((cfg.start, cfg.k, cfg.seed), (ym(2015, 10), 5, 42));
    assert!(serde_json::from_str::<PrepareConfig>(r#"{"category": "CDs", "kk": 5}"#).is_err());
    assert!(serde_json::from_str::<PrepareConfig>(r#"{"start": "2015/10"}"#).is_err());
}

#[test]
fn inputs_without_a_usable_item_say_what_is_wrong_instead_of_lower_k() {
    let tmp = tempfile::tempdir().unwrap();
    let (reviews, meta) = (tmp.path().join("reviews.json"), tmp.path().join("meta.json"));
    let cfg = PrepareConfig { category: "CDs_and_Vinyl".into(), ..Default::default() };
    let run = || prepare(&reviews, &meta, &tmp.path().join("out"), &cfg, &NoProgress).unwrap_err().to_string();
    let reviewed: Vec<String> = (0..20).map(|i| review_line(&format!("U{i}"), "B1", 5.0, 1_500_000_000 + i)).collect();

    // Metadata of another category: no ASIN in common.
    write_lines(&reviews, &reviewed);
    write_lines(&meta, &[meta_line("Z9", "Some Title"), meta_line("Z8", "Other Title")]);
    let e = run();
    assert!(e.contains("meta.json") && e.contains("different categories") && !e.contains("lower k"), "{e}");

    // Metadata of the reviewed items, all without a title.
    write_lines(&meta, &[r#"{"asin": "B1"}"#.to_string()]);
    let e = run();
    assert!(e.contains("meta.json") && e.contains("usable `title`") && !e.contains("lower k"), "{e}");

    // An empty reviews file and an empty metadata file.
    std::fs::write(&reviews, "").unwrap();
    let e = run();
    assert!(e.contains("reviews.json") && e.contains("no review") && !e.contains("lower k"), "{e}");
    write_lines(&reviews, &reviewed);
    std::fs::write(&meta, "").unwrap();
    let e = run();
    assert!(e.contains("meta.json") && e.contains("no record"), "{e}");
}

#[test]
fn non_utf8_bytes_in_a_jsonl_file_name_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("latin1.json");
    let ok = r#"{"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1500000000}"#;
    let mut bytes = format!("{ok}\n{ok}\n").into_bytes();
    bytes.extend_from_slice(
        b"{\"reviewerID\": \"A\xe91\", \"asin\": \"B1\", \"overall\": 5.0, \"unixReviewTime\": 1}\n",
    );
    std::fs::write(&path, bytes).unwrap();
    let e = read_reviews(&path, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("latin1.json:3:") && e.contains("not UTF-8") && e.contains("0xe9"), "{e}");
}
