use r3_metrics::Output;

use super::*;
use crate::compare::tests::interaction;

fn record(row: usize, user: &str, target: &str, predict: &[&str]) -> EvalPrediction {
    let q = |t: &str| format!("\"{t}\"\n");
    EvalPrediction {
        input: "x".into(),
        output: Output::Text(q(target)),
        predict: predict.iter().map(|p| q(p)).collect(),
        row,
        user_id: user.into(),
        item_id: 0,
        scores: vec![None; predict.len()],
        item_ids: vec![vec![]; predict.len()],
        latency_s: 1.0,
        batch_s: 1.0,
        batch_size: 1,
        reasoning: None,
    }
}

#[test]
fn example_users_show_history_top5_and_the_true_rank() {
    let test = vec![
        interaction(0, &["A", "B"]),
        interaction(0, &["C"]),
        interaction(0, &["H1", "H2", "H3", "H4", "H5", "H6", "H7"]),
        interaction(0, &["D"]),
    ];
    let top = ["P1", "P2", "P3", "P4", "P5", "P6", "Hit"];
    let records = vec![
        record(0, "u0", "Miss", &top),
        record(1, "u1", "Miss", &top),
        record(2, "u2", "Hit", &top),
        record(3, "u3", "Miss", &top),
    ];
    let lines = examples(&records, &test, 3);
    // Users 0 and 1, and user 2: the first whose true item was recommended, shown in test order.
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0], "user u0 (test row 0): history \"A\", \"B\"");
    assert_eq!(lines[1], "    top 5: 1. \"P1\"  2. \"P2\"  3. \"P3\"  4. \"P4\"  5. \"P5\"");
    assert_eq!(lines[2], "    true next item: \"Miss\": not among the 7 recommendations");
    assert_eq!(lines[6], "user u2 (test row 2): history … 2 older, then \"H3\", \"H4\", \"H5\", \"H6\", \"H7\"");
    assert_eq!(lines[8], "    true next item: \"Hit\": rank 7 of the 7 recommendations");
    assert!(examples(&records[..1], &test, 3).len() == 3, "fewer users than asked: all of them");
}

#[test]
fn the_smoke_scale_says_what_it_is_and_names_the_powered_command() {
    let line = scale_line("table1/cds-bigrec-latentr3", Scale::Smoke).unwrap();
    assert!(line.contains("smoke scale") && line.contains("mean nothing"), "{line}");
    assert!(line.contains("cargo xtask reproduce table1/cds-bigrec-latentr3 --scale cpu --device flex"), "{line}");
    assert!(line.contains("estimate") && line.contains(" h "), "{line}");
    assert!(scale_line("x", Scale::Cpu).is_none());
    let r = crate::tables::tests::result("table1/cds-bigrec-latentr3", Scale::Smoke, 0.0625);
    let lines = result_lines(&r);
    assert_eq!(lines[0], "table1/cds-bigrec-latentr3 (smoke scale, 16 test users, BIGRec+LatentR3):");
    assert!(lines[1].contains("H@5") && lines[1].contains("0.0625 [0.0000, 0.1875] (paper 0.0934, Δ -0.0309)"));
}
