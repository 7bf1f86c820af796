use r3_data::{Interaction, PopularityConfig};
use serde_json::json;

use super::*;
use crate::manifest::Manifest;

/// An evaluation outcome with the given ranks and target items (its report is not read by the comparison).
fn outcome(ranks: &[Option<usize>], items: &[u32]) -> EvalOutcome {
    let m = json!({"n": ranks.len(), "k": [5], "hr": [0.0], "ndcg": [0.0]});
    let report = json!({"predictions": "p", "samples": ranks.len(), "by_title": m, "by_item_id": null,
        "outside_catalogue": {"count": 0, "predictions": 0}, "buckets": [], "baseline": null});
    EvalOutcome {
        ranks: ranks.to_vec(),
        item_ids: items.to_vec(),
        latency_s: Vec::new(),
        coverage: 0.5,
        report: serde_json::from_value(report).unwrap(),
    }
}

/// A split row with target `item` after the history `titles` (the other fields are not read here).
pub(crate) fn interaction(item: u32, titles: &[&str]) -> Interaction {
    Interaction {
        user_id: "u".into(),
        history_asins: vec![],
        item_asin: "a".into(),
        history_item_ids: vec![],
        item_id: item,
        history_titles: titles.iter().map(|t| t.to_string()).collect(),
        item_title: "t".into(),
        history_ratings: vec![],
        rating: 5.0,
        history_timestamps: vec![],
        timestamp: 0,
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_hand_checked_pair_gives_its_difference_and_interval() {
    // Two users. Ours hits both at rank 0 (H@5 = 1); the reference hits the first only (H@5 = 0.5).
    // The per-user differences are 0 and 1: a resample of two users has mean difference 0, 0.5 or 1 with
    // probabilities 1/4, 1/2, 1/4, so 1,000 resamples put the 2.5th percentile at 0 and the 97.5th at 1.
    // The relative gain is 1 / 0.5 − 1 = +100%; a resample is either both users of the first kind (reference
    // mean 1, gain 0), one of each (gain 1 / 0.5 − 1 = 1), or both of the second (reference mean 0: left out).
    let ours = outcome(&[Some(0), Some(0)], &[0, 1]);
    let reference = outcome(&[Some(0), None], &[0, 1]);
    let c = compare(("table1/cds-bigrec", "BIGRec"), &ours, &reference, &names(&["H@5"]), None).unwrap();
    assert_eq!((c.reference.as_str(), c.row.as_str(), c.users, c.entries.len()), ("table1/cds-bigrec", "BIGRec", 2, 1));
    let p = &c.entries[0];
    assert_eq!((p.name.as_str(), p.ours, p.reference, p.diff, p.n), ("H@5", 1.0, 0.5, 0.5, 2));
    assert_eq!(p.diff_ci95, Some([0.0, 1.0]));
    assert_eq!((p.gain, p.gain_ci95), (Some(1.0), Some([0.0, 1.0])));
    assert_eq!(fmt_paired(p), "+0.5000 [+0.0000, +1.0000], +100.0% [+0.0%, +100.0%]");
}

#[test]
fn the_interval_is_paired_over_the_same_users() {
    // Ours equals the reference user by user (half of 200 users hit): every paired resample has difference 0,
    // although each mean alone varies by about ±0.07 across resamples. An unpaired interval would be that wide.
    let ranks: Vec<Option<usize>> = (0..200).map(|i| (i % 2 == 0).then_some(3)).collect();
    let items: Vec<u32> = (0..200).collect();
    let c = compare(("r", "R"), &outcome(&ranks, &items), &outcome(&ranks, &items), &names(&["N@5"]), None).unwrap();
    let p = &c.entries[0];
    assert_eq!((p.diff, p.diff_ci95, p.gain, p.gain_ci95), (0.0, Some([0.0, 0.0]), Some(0.0), Some([0.0, 0.0])));
    // Other users, or the same users in another order, are refused.
    let other = outcome(&ranks, &items.iter().rev().copied().collect::<Vec<_>>());
    let err = compare(("r", "R"), &outcome(&ranks, &items), &other, &names(&["N@5"]), None).unwrap_err();
    assert!(err.to_string().contains("not of the same users"), "{err}");
}

#[test]
fn popularity_buckets_split_the_users() {
    // Item 0 is the only popular item (4 of 6 train targets at coverage 0.5); users 0, 1 have it as target.
    let train: Vec<Interaction> = [0, 0, 0, 0, 1, 2].iter().map(|&i| interaction(i, &[])).collect();
    let pop = Popularity::from_train(&train, 3, PopularityConfig { coverage: 0.5 });
    let ours = outcome(&[Some(0), Some(0), Some(0), None], &[0, 0, 1, 2]);
    let reference = outcome(&[Some(0), None, None, None], &[0, 0, 1, 2]);
    let c = compare(("r", "R"), &ours, &reference, &names(&["H@5"]), Some(&pop)).unwrap();
    let got: Vec<(&str, f64, usize)> = c.entries.iter().map(|e| (e.name.as_str(), e.diff, e.n)).collect();
    assert_eq!(got, vec![("H@5", 0.5, 4), ("popular H@5", 0.5, 2), ("unpopular H@5", 0.5, 2)]);
    // The unpopular reference mean is 0: no relative gain, never an infinity.
    assert_eq!(c.entry("unpopular H@5").unwrap().gain, None);
}

fn experiment(name: &str, row: &str, compare: &str) -> Experiment {
    let text = format!(
        "[paper]\ntable = \"table1\"\nrow = \"{row}\"\ncolumn = \"CDs\"\nsource = \"s\"\n[experiment]\ndataset = \
         \"D\"\n[[run]]\nid = \"test\"\nkind = \"eval\"\nmodel = \"m\"\n[report]\nrun = \"test\"\ncompare = [{compare}]\n"
    );
    Experiment {
        name: name.into(),
        path: format!("{name}.toml").into(),
        manifest: Manifest::parse(&text, name).unwrap(),
    }
}

#[test]
fn the_delta_cell_renders_comparisons_or_a_dash() {
    let all = vec![
        experiment("t/bigrec", "BIGRec", ""),
        experiment("t/latent", "BIGRec+LatentR3", "\"t/bigrec\", \"t/worl\""),
        experiment("t/worl", "w/o RL", "\"t/bigrec\""),
    ];
    crate::manifest::check_references(&all).unwrap();
    let mut r = crate::tables::tests::result("t/latent", Scale::Smoke, 0.0625);
    // A result without comparisons (written before them, or its references not run): a dash, nothing invented.
    assert_eq!(delta_cell(&all[1], Some(&r), &all), "vs BIGRec: —<br>vs w/o RL: —");
    assert_eq!(delta_cell(&all[0], Some(&r), &all), "–");
    let ours = outcome(&[Some(0), Some(0)], &[0, 1]);
    let reference = outcome(&[Some(0), None], &[0, 1]);
    r.comparisons.push(compare(("t/bigrec", "BIGRec"), &ours, &reference, &names(&["H@5"]), None).unwrap());
    assert_eq!(
        delta_cell(&all[1], Some(&r), &all),
        "vs BIGRec: H@5 +0.5000 [+0.0000, +1.0000], +100.0% [+0.0%, +100.0%]<br>vs w/o RL: —"
    );
    // The comparison survives a write and a read of the result file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smoke.json");
    r.write(&path).unwrap();
    assert_eq!(ResultFile::read(&path).unwrap().unwrap().comparisons, r.comparisons);
    // References come first when several experiments run; a reference that is no experiment is an error.
    let order: Vec<&str> = references_first(all.iter().collect(), |e| *e).iter().map(|e| e.name.as_str()).collect();
    assert_eq!(order, vec!["t/bigrec", "t/worl", "t/latent"]);
    let bad = vec![experiment("t/latent", "L", "\"t/nothing\"")];
    assert!(crate::manifest::check_references(&bad).unwrap_err().to_string().contains("t/nothing"));
}

#[test]
fn the_repository_declares_the_paper_comparisons() {
    let all = crate::manifest::discover(&crate::project_root()).unwrap();
    let refs = |name: &str| all.iter().find(|e| e.name == name).unwrap().manifest.report.compare.clone();
    assert_eq!(refs("table1/cds-bigrec-latentr3"), vec!["table1/cds-bigrec", "ablation/cds-wo-rl"]);
    assert_eq!(refs("ablation/cds-wo-rl"), vec!["table1/cds-bigrec"]);
    assert_eq!(refs("ablation/cds-full"), vec!["ablation/cds-wo-rl"]);
    assert_eq!(refs("table1/cds-d3-latentr3"), vec!["table1/cds-d3"]);
    assert_eq!(refs("reasoning-length/cds-n2"), vec!["reasoning-length/cds-n1"]);
    assert_eq!(refs("grpo-vs-lrgrpo/cds-grpo"), vec!["grpo-vs-lrgrpo/cds-lrgrpo"]);
}
