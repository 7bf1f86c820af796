//! `latentr3 metrics` on prediction files built from the real CDs test split: hand-computed HR/NDCG, the JSON
//! line, the table, a baseline, and misaligned files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use r3_data::{Catalogue, Dataset, Interaction, Popularity, PopularityConfig, Split, read_split};

const CDS: &str = "CDs_and_Vinyl_5_2015-10-2018-11";
const KS: [usize; 5] = [1, 3, 5, 10, 20];

/// The shared data folder beside the repository root (the ancestor of this crate that holds `crates/`).
fn data_root() -> PathBuf {
    r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18 beside the repository")
}

/// The CDs catalogue and test split.
fn cds() -> (Catalogue, Vec<Interaction>) {
    let dir = data_root();
    let catalogue = Catalogue::read(&dir.join("info").join(format!("{CDS}.txt"))).expect("the CDs catalogue");
    let test = read_split(&Split::Test.path(&dir, CDS)).expect("the CDs test split");
    (catalogue, test)
}

/// The rank we give sample `i`: `i % 12`, so ranks 10 and 11 are misses with 10 predictions.
fn planned_rank(i: usize) -> Option<usize> {
    (i % 12 < 10).then_some(i % 12)
}

/// One record per test row, as the official script writes them: `output` is `"title"\n`, `predict` holds 10
/// titles `"title"\n` with the target at `rank(i)` and other catalogue titles (never one equal to the target's,
/// since 185 titles are shared by several ids) elsewhere.
fn records(catalogue: &Catalogue, test: &[Interaction], rank: impl Fn(usize) -> Option<usize>) -> serde_json::Value {
    let n = catalogue.len();
    let recs: Vec<serde_json::Value> = test
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut fillers = (1..).map(|j| catalogue.title(((row.item_id as usize + j) % n) as u32).unwrap_or(""));
            let predict: Vec<String> = (0..10)
                .map(|r| {
                    let title = if rank(i) == Some(r) {
                        row.item_title.as_str()
                    } else {
                        fillers.find(|t| *t != row.item_title).unwrap_or("")
                    };
                    format!("\"{title}\"\n")
                })
                .collect();
            serde_json::json!({
                "instruction": "Recommend the next CD.",
                "input": format!("The user bought {} items.", row.history_len()),
                "output": format!("\"{}\"\n", row.item_title),
                "predict": predict,
            })
        })
        .collect();
    serde_json::Value::Array(recs)
}

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).expect("serialise")).expect("write the prediction file");
    p
}

fn latentr3(args: &[&str], predictions: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latentr3"))
        .args(args)
        .arg("--predictions")
        .arg(predictions)
        .arg("--data")
        .arg(data_root())
        .args(["--stem", CDS])
        .args(extra)
        .output()
        .expect("run latentr3")
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout");
    assert_eq!(stdout.lines().count(), 1, "--json prints exactly one line: {stdout}");
    serde_json::from_str(&stdout).expect("the JSON line parses")
}

/// HR@K and NDCG@K from ranks by the definitions: HR@K = #{rank < K}/n, NDCG@K = Σ_{rank < K} 1/log2(rank+2) / n.
fn expected(ranks: &[Option<usize>]) -> (Vec<f64>, Vec<f64>) {
    let n = ranks.len() as f64;
    let hr = KS.iter().map(|&k| ranks.iter().flatten().filter(|&&r| r < k).count() as f64 / n).collect();
    let ndcg = KS
        .iter()
        .map(|&k| ranks.iter().flatten().filter(|&&r| r < k).map(|&r| 1.0 / ((r + 2) as f64).log2()).sum::<f64>() / n)
        .collect();
    (hr, ndcg)
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("a list").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn metrics_of_the_cds_test_split_match_the_hand_computation() {
    let (catalogue, test) = cds();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "preds.json", &records(&catalogue, &test, planned_rank));
    let v = json_of(&latentr3(&["metrics"], &file, &["--json"]));

    // 6,157 samples with ranks 0, 1, ..., 9, miss, miss, 0, 1, ...: 6157 = 513·12 + 1, so rank r < 10 occurs
    // 514 times for r = 0 and 513 times otherwise. HR@1 = 514/6157; HR@10 = HR@20 = (514 + 9·513)/6157 = 5131/6157.
    let ranks: Vec<_> = (0..test.len()).map(planned_rank).collect();
    let (hr, ndcg) = expected(&ranks);
    assert_eq!(test.len(), 6157);
    assert!((hr[0] - 514.0 / 6157.0).abs() < 1e-15 && (hr[4] - 5131.0 / 6157.0).abs() < 1e-15);
    assert_eq!(v["samples"], 6157);
    assert_eq!(v["by_title"]["k"], serde_json::json!(KS));
    assert_close(&floats(&v["by_title"]["hr"]), &hr, "HR by title");
    assert_close(&floats(&v["by_title"]["ndcg"]), &ndcg, "NDCG by title");
    // Target strings are the catalogue titles of the target ids, so matching by id gives the same numbers.
    assert_close(&floats(&v["by_item_id"]["hr"]), &hr, "HR by id");
    assert_close(&floats(&v["by_item_id"]["ndcg"]), &ndcg, "NDCG by id");
    assert_eq!(v["outside_catalogue"], serde_json::json!({"count": 0, "predictions": 61570}));
    assert_eq!((v["stem"].as_str(), v["split"].as_str()), (Some(CDS), Some("test")));
    assert!(v["baseline"].is_null());

    // Buckets: recompute the popular / unpopular split and each bucket's metrics from its own ranks.
    let ds = Dataset::load(&data_root(), CDS).expect("the CDs dataset");
    let pop = Popularity::from_train(&ds.train, ds.catalogue.len(), PopularityConfig::default());
    let buckets = v["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 2);
    for b in buckets {
        let name = b["bucket"].as_str().expect("a bucket name");
        let mine: Vec<_> =
            test.iter().enumerate().filter(|(_, r)| pop.bucket(r.item_id) == name).map(|(i, _)| ranks[i]).collect();
        assert_eq!(b["n"], mine.len(), "{name}");
        let (hr, ndcg) = expected(&mine);
        assert_close(&floats(&b["hr"]), &hr, name);
        assert_close(&floats(&b["ndcg"]), &ndcg, name);
    }
    assert_eq!(v["popularity"]["popular_items"], pop.n_popular());
}

#[test]
fn a_baseline_gives_gains_with_intervals() {
    let (catalogue, test) = cds();
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = write(dir.path(), "ours.json", &records(&catalogue, &test, planned_rank));
    // The baseline hits only samples whose planned rank is 0..=4, at the same rank: HR@5 is equal (gain 0), and
    // HR@10 falls from (514 + 9·513)/6157 to (514 + 4·513)/6157, a gain of 5131/2566 − 1 = 0.99961...
    let base = write(dir.path(), "base.json", &records(&catalogue, &test, |i| planned_rank(i).filter(|&r| r < 5)));
    let baseline = base.to_str().expect("a UTF-8 path");
    let v = json_of(&latentr3(&["metrics"], &ours, &["--json", "--baseline", baseline, "--bootstrap", "200"]));
    let gains = v["baseline"]["gains"].as_array().expect("gains");
    let gain = |m: &str| gains.iter().find(|g| g["metric"] == m).unwrap_or_else(|| panic!("{m} in {gains:?}"));
    assert_eq!(gain("HR@5")["gain"], 0.0);
    assert_eq!(gain("HR@5")["ci95"], serde_json::json!([0.0, 0.0]));
    let g10 = gain("HR@10");
    let want = 5131.0 / 2566.0 - 1.0;
    assert!((g10["gain"].as_f64().expect("a gain") - want).abs() < 1e-12, "{g10}");
    let ci = floats(&g10["ci95"]);
    assert!(ci[0] < want && want < ci[1], "{g10}");
    assert_eq!(v["baseline"]["bootstrap"], serde_json::json!({"resamples": 200, "seed": 0}));
    assert_eq!(v["baseline"]["buckets"].as_array().map(Vec::len), Some(2));

    // The table form shows the same comparison.
    let out = latentr3(&["metrics"], &ours, &["--baseline", baseline, "--bootstrap", "50"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(table.contains("NDCG@10") && table.contains("95% interval") && table.contains("+0.9996"), "{table}");
}

#[test]
fn a_misaligned_file_names_the_record_and_both_titles() {
    let (catalogue, test) = cds();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut v = records(&catalogue, &test, planned_rank);
    // Swap records 3 and 4 (their titles differ): record 3 no longer belongs to row 3.
    let recs = v.as_array_mut().expect("an array");
    assert_ne!(test[3].item_title, test[4].item_title);
    recs.swap(3, 4);
    let file = write(dir.path(), "swapped.json", &v);
    let out = latentr3(&["metrics"], &file, &["--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("record 3") && err.contains("swapped.json"), "{err}");
    assert!(err.contains(&test[3].item_title) && err.contains(&test[4].item_title), "{err}");
    assert!(err.contains("regenerate"), "{err}");
}

/// A file with fewer records than rows and no `row` fields is scored by its records alone (by title only), and
/// says so; a subset with `row` fields (what `eval --limit` writes) is scored on its rows, by title and by id.
#[test]
fn subsets_are_scored_by_their_rows_or_by_their_records_alone() {
    let (catalogue, test) = cds();
    let dir = tempfile::tempdir().expect("temp dir");
    let all = records(&catalogue, &test, planned_rank);

    let mut short = all.clone();
    short.as_array_mut().expect("an array").pop();
    let file = write(dir.path(), "short.json", &short);
    let out = latentr3(&["metrics"], &file, &["--json"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = json_of(&out);
    assert!(err.contains("6156 records for 6157 rows") && err.contains("records alone"), "{err}");
    assert!(v["scoring"].as_str().is_some_and(|s| s.contains("by title only")), "{v}");
    assert_eq!(v["samples"], 6156);
    assert!(v["by_item_id"].is_null() && v["buckets"].as_array().is_some_and(Vec::is_empty), "{v}");
    let ranks: Vec<_> = (0..6156).map(planned_rank).collect();
    assert_close(&floats(&v["by_title"]["hr"]), &expected(&ranks).0, "HR of the records alone");

    // 16 rows in a shuffled order, each record naming its row.
    let rows = [3usize, 4000, 17, 6156, 250, 251, 999, 5, 1200, 3333, 42, 77, 6000, 2, 1500, 808];
    let subset: Vec<serde_json::Value> = rows
        .iter()
        .map(|&r| {
            let mut rec = all[r].clone();
            rec["row"] = r.into();
            rec
        })
        .collect();
    let file = write(dir.path(), "predictions.json", &serde_json::Value::Array(subset.clone()));
    let v = json_of(&latentr3(&["metrics"], &file, &["--json"]));
    assert_eq!(v["samples"], 16);
    assert!(v["scoring"].as_str().is_some_and(|s| s.contains("16 of 6157 rows")), "{v}");
    let ranks: Vec<_> = rows.iter().map(|&r| planned_rank(r)).collect();
    let (hr, ndcg) = expected(&ranks);
    assert_close(&floats(&v["by_title"]["hr"]), &hr, "HR of the subset");
    assert_close(&floats(&v["by_item_id"]["ndcg"]), &ndcg, "NDCG by id of the subset");

    // A record whose row does not match its target is refused, naming both.
    let mut wrong = subset;
    wrong[1]["row"] = 4001.into();
    let file = write(dir.path(), "wrong_row.json", &serde_json::Value::Array(wrong));
    let out = latentr3(&["metrics"], &file, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("record 1") && err.contains("row 4001"), "{err}");
}

/// Every `predict` list empty: there is nothing to score, which is an error and not a table of zeros.
#[test]
fn empty_predictions_are_an_error_not_zeros() {
    let (catalogue, test) = cds();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut v = records(&catalogue, &test, planned_rank);
    for rec in v.as_array_mut().expect("an array") {
        rec["predict"] = serde_json::json!([]);
    }
    let file = write(dir.path(), "empty.json", &v);
    let out = latentr3(&["metrics"], &file, &["--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty() && err.contains("every `predict` list") && err.contains("nothing to score"), "{err}");
}

#[test]
fn a_malformed_file_or_option_fails_with_a_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("cut.json");
    std::fs::write(&file, "[{\"input\": \"i\", \"output\": \"A\", \"predict\": [\"A\"]}, {\"input\":").expect("write");
    let out = latentr3(&["metrics"], &file, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.json") && err.contains("record 1"), "{err}");

    let out = latentr3(&["metrics"], &file, &["--k", "5,1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strictly increasing"));
}
