//! `latentr3 data stats` on the two real datasets (the acceptance numbers), and its errors.

use std::path::PathBuf;
use std::process::Command;

fn data_root() -> PathBuf {
    r3_data::shared_data_dir().expect("the shared data folder ../shared/datasets/amazon18 beside the repository")
}

fn stats_json(stem: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_latentr3"))
        .args(["data", "stats", "--stem", stem, "--json", "--data"])
        .arg(data_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "--json prints exactly one line");
    serde_json::from_str(&stdout).unwrap()
}

fn rows(v: &serde_json::Value) -> [u64; 4] {
    let r = |s: &str| v["splits"][s]["rows"].as_u64().unwrap();
    [v["items"].as_u64().unwrap(), r("train"), r("valid"), r("test")]
}

#[test]
fn stats_report_the_documented_sizes() {
    let cds = stats_json("CDs_and_Vinyl_5_2015-10-2018-11");
    assert_eq!(rows(&cds), [5841, 10_696, 6156, 6157]);
    assert_eq!(cds["shared_titles"], 185);
    assert_eq!(cds["users"], 2991);
    let lens: Vec<u64> =
        cds["splits"]["test"]["history_lengths"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert_eq!(lens.iter().sum::<u64>(), 6157);
    assert_eq!(lens.len(), 11, "histories hold 1..=10 items");
    let ind = stats_json("Industrial_and_Scientific_5_1996-10-2018-11");
    assert_eq!(rows(&ind), [3686, 10_393, 4532, 4533]);
    assert_eq!(ind["shared_titles"], 15);
}

#[test]
fn the_table_is_the_default_and_the_data_folder_defaults_to_shared() {
    // No --data: the default ../shared/datasets/amazon18 beside the repository is used.
    let out = Command::new(env!("CARGO_BIN_EXE_latentr3"))
        .args(["data", "stats", "--stem", "CDs_and_Vinyl_5_2015-10-2018-11"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("LATENTR3_DATA")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("items 5841"), "{table}");
    assert!(table.contains("train     10696"), "{table}");
}

#[test]
fn a_bad_stem_fails_with_a_hint() {
    let out = Command::new(env!("CARGO_BIN_EXE_latentr3"))
        .args(["data", "stats", "--stem", "Nope", "--data"])
        .arg(data_root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Nope.txt") && err.contains("--stem"), "{err}");
}
