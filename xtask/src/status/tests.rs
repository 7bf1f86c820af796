use std::path::PathBuf;

use serde_json::json;

use super::*;

fn planned(dir: PathBuf, kind: RunKind, resolved: Value) -> PlannedRun {
    PlannedRun {
        id: kind.name().into(),
        kind,
        key: "0123456789abcdef".into(),
        dir,
        resolved,
        commands: vec![],
        resume: None,
        requires: vec![],
        users: 0,
        pick: None,
    }
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    std::fs::write(path, text).unwrap();
}

fn prediction(latency: f64) -> Value {
    json!({"input": "x", "output": "\"A\"\n", "predict": ["\"A\"\n"], "row": 0, "user_id": "u", "item_id": 0,
        "scores": [0.0], "item_ids": [[0]], "latency_s": latency, "batch_s": latency, "batch_size": 1})
}

#[test]
fn status_of_a_finished_a_partial_and_a_missing_run() {
    let root = tempfile::tempdir().unwrap();
    // Finished: the driver's marker.
    let done = root.path().join("done");
    std::fs::create_dir(&done).unwrap();
    let marker = json!({"experiment": "e", "id": "test", "kind": "eval", "key": "k", "resolved": {}, "commands": [],
        "wall_s": 5400.0, "finished": "2026-12-07T00:00:00Z", "hardware": "h"});
    std::fs::write(done.join(MARKER_FILE), marker.to_string()).unwrap();
    let p = progress(&planned(done.clone(), RunKind::Eval, json!({})), None).unwrap();
    assert_eq!(p, Progress::Done { wall_s: 5400.0 });
    assert_eq!(p.to_string(), "done (90 min in its last session)");
    // Partial: 4 of 10 users appended at 2 s each: 8 s so far, 6 users left → ETA 12 s; not final.
    let part = root.path().join("part");
    std::fs::create_dir(&part).unwrap();
    let settings = json!({"checkpoint": "m", "model": null, "data": "d", "stem": "s", "split": "test", "limit": 10,
        "seed": 0, "decoding": "bigrec", "users": 10});
    std::fs::write(part.join(SETTINGS_FILE), settings.to_string()).unwrap();
    write_lines(&part.join(JSONL_FILE), &[prediction(2.0), prediction(2.0), prediction(2.0), prediction(2.0)]);
    let p = progress(&planned(part.clone(), RunKind::Eval, json!({})), None).unwrap();
    assert_eq!(p.eta_s(), Some(12.0));
    assert_eq!(
        p.to_string(),
        "partial: 4/10 users (40%), 8 s so far, ETA 12 s; not final: the metrics are written when every user is done"
    );
    // Even with its metrics.json written, a run without the marker is not reported as done.
    std::fs::write(part.join(METRICS_FILE), "{}").unwrap();
    let p = progress(&planned(part, RunKind::Eval, json!({})), None).unwrap();
    assert!(matches!(p, Progress::Partial { done: 4, .. }) && p.to_string().contains("rerun"), "{p}");
    // Not started: no folder.
    let p = progress(&planned(root.path().join("none"), RunKind::Sft, json!({})), None).unwrap();
    assert_eq!(p.to_string(), "not started");
    let lines = status_lines(&[planned(done, RunKind::Eval, json!({}))], None);
    assert!(lines[0].contains("eval") && lines[0].contains("done"), "{lines:?}");
}

#[test]
fn training_progress_comes_from_the_metrics_records() {
    let root = tempfile::tempdir().unwrap();
    // GRPO: 64 of 256 steps in 384 s → 192 steps left at 6 s: ETA 1,152 s = 19 min.
    let grpo = root.path().join("grpo");
    std::fs::create_dir(&grpo).unwrap();
    let step = |s: u64, t: f64| {
        json!({"kind": "step", "step": s, "total_steps": 256, "epoch": 0, "loss": 0.1, "reward_mean": -2.0,
            "reward_std": 0.3, "equal_reward_groups": 0.0, "advantage_norm": 1.0, "clip_ratio": 0.0, "kl": null,
            "grad_norm": 0.2, "lr": 1e-5, "samples_per_s": 3.0, "elapsed_s": t})
    };
    let eval = json!({"kind": "eval", "step": 64, "k": [10], "hr": [0.1], "ndcg": [0.05], "improved": true});
    write_lines(&grpo.join("metrics.jsonl"), &[step(63, 378.0), step(64, 384.0), eval]);
    let p = progress(&planned(grpo, RunKind::Grpo, json!({})), None).unwrap();
    assert_eq!(p.to_string(), "partial: 64/256 steps (25%), 6 min so far, ETA 19 min");
    // SFT: the total comes from the resolved configuration: 3 epochs × ⌈10,696 / 32⌉ = 1,005 steps.
    let sft = root.path().join("sft");
    std::fs::create_dir(&sft).unwrap();
    let rec = json!({"kind": "step", "step": 100, "epoch": 0, "loss": 2.0, "lr": 1e-4, "grad_norm": 1.0,
        "tokens": 1900, "tokens_per_s": 80.0, "elapsed_s": 2300.0});
    write_lines(&sft.join("metrics.jsonl"), &[rec]);
    let resolved = json!({"config": {"data": {"sample": 0}, "train": {"epochs": 3, "batch": 32}}});
    assert_eq!(sft_total_steps(&resolved, Some(10_696)), Some(1005));
    assert_eq!(sft_total_steps(&resolved, None), None, "all rows of an unknown split: no guess");
    assert_eq!(sft_total_steps(&json!({"config": {"train": {"epochs": 3}}}), Some(10)), None);
    let p = progress(&planned(sft.clone(), RunKind::Sft, resolved), Some(10_696)).unwrap();
    assert_eq!(p.eta_s(), Some(905.0 * 23.0));
    assert!(p.to_string().starts_with("partial: 100/1005 steps (10%), 38 min so far, ETA 5.8 h"), "{p}");
    // A started run without records yet.
    std::fs::remove_file(sft.join("metrics.jsonl")).unwrap();
    let p = progress(&planned(sft, RunKind::Sft, json!({})), None).unwrap();
    assert_eq!(p.to_string(), "partial: 0 steps of an unknown total; no step recorded yet");
}
