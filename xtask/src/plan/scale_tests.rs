//! The quick scale keeps the run keys of the former cpu scale; the cpu scale plans what docs/reproduce.md says.

use super::*;
use crate::execute::pick_value;
use crate::manifest::discover;
use crate::results::ResultFile;

fn setting(scale: Scale) -> Setting {
    let root = crate::project_root();
    Setting { data_dir: root.join("data"), runs: root.join("runs"), root, scale, device: "flex".into() }
}

#[test]
fn quick_results_keep_the_run_keys_of_the_former_cpu_scale() {
    let root = crate::project_root();
    let mut checked = 0;
    for e in discover(&root).unwrap() {
        let Some(r) = ResultFile::read(&ResultFile::path(&root, &e.name, Scale::Quick)).unwrap() else { continue };
        assert_eq!(r.scale, Scale::Quick, "{}", e.name);
        let runs = plan(&e.manifest, &setting(Scale::Quick), &r.dataset).unwrap();
        for rec in &r.runs {
            let p = runs.iter().find(|p| p.id == rec.id).unwrap_or_else(|| panic!("{}: run {}", e.name, rec.id));
            assert_eq!(p.key, rec.key, "{}: run `{}` was renamed", e.name, rec.id);
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} quick result files");
}

#[test]
fn the_cpu_scale_sweeps_the_learning_rate_and_evaluates_every_user() {
    let stem = "CDs_and_Vinyl_5_2015-10-2018-11";
    let e = discover(&crate::project_root()).unwrap().into_iter().find(|e| e.name == "table1/cds-bigrec-latentr3");
    let runs = plan(&e.unwrap().manifest, &setting(Scale::Cpu), stem).unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["sft", "grpo@train.lr=1e-5", "grpo@train.lr=5e-5", "grpo@train.lr=1e-4", "grpo@train.lr=5e-4", "grpo", "test"]
    );
    let config = &runs[0].resolved["config"];
    assert_eq!((config["data"]["sample"].as_u64(), config["data"]["valid_sample"].as_u64()), (Some(0), Some(1024)));
    assert_eq!((config["train"]["epochs"].as_u64(), config["train"]["patience"].as_u64()), (Some(3), Some(2)));
    // The sweep's runs: fewer prompts and validation users, one learning rate each, from the same SFT run.
    let sweep = &runs[1].commands[0].join(" ");
    assert!(sweep.contains("--set data.sample=512 --set eval.sample=256 --set eval.every=16 --set train.lr=1e-5"));
    assert_eq!(runs[1].resolved["from"], json!(runs[0].key));
    // The run itself: 2,048 prompts, the paper's warm-up share, 1,024 validation users, the picked rate.
    let grpo = &runs[5];
    let c = &grpo.resolved["config"];
    assert_eq!((c["data"]["sample"].as_u64(), c["train"]["warmup"].as_u64()), (Some(2048), Some(34)));
    assert_eq!(c["eval"]["sample"].as_u64(), Some(1024));
    assert_eq!(grpo.resolved["sweep"]["runs"], json!(runs[1..5].iter().map(|r| r.key.clone()).collect::<Vec<_>>()));
    let pick = grpo.pick.as_ref().unwrap();
    assert!(grpo.commands[0].contains(&pick.placeholder()));
    // Every test user: no --limit.
    assert!(!runs[6].commands[0].iter().any(|a| a == "--limit"));
    // BIGRec's SFT at the cpu scale differs from LatentR³'s only by the latent token.
    let b = discover(&crate::project_root()).unwrap().into_iter().find(|e| e.name == "table1/cds-bigrec").unwrap();
    let bigrec = plan(&b.manifest, &setting(Scale::Cpu), stem).unwrap();
    let (mut x, y) = (bigrec[0].resolved["config"].clone(), config);
    x["data"].as_object_mut().unwrap().remove("no_latent");
    assert_eq!(&x, y);
}

#[test]
fn the_sweep_picks_the_best_validation_metric_with_ties_to_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let summary = |name: &str, best: Option<f64>| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let s = json!({"run_dir": d, "steps": 64, "total_steps": 64, "best_metric": best, "best_step": 16,
            "finished": true, "elapsed_s": 1.0});
        std::fs::write(d.join("summary.json"), s.to_string()).unwrap();
        d
    };
    let candidates = vec![
        ("1e-5".to_string(), summary("a", Some(0.02))),
        ("5e-5".to_string(), summary("b", Some(0.03))),
        ("1e-4".to_string(), summary("c", Some(0.03))),
    ];
    let pick = Pick { key: "train.lr".into(), candidates };
    assert_eq!(pick_value(&pick, RunKind::Grpo).unwrap(), ("5e-5".to_string(), 0.03));
    // A sweep run without a validation metric is an error naming it, not a silent choice.
    let mut bad = pick.clone();
    bad.candidates.push(("5e-4".into(), summary("d", None)));
    let err = format!("{:#}", pick_value(&bad, RunKind::Grpo).unwrap_err());
    assert!(err.contains("train.lr=5e-4") && err.contains("no validation metric"), "{err}");
}
