//! Tests of the manifests: parsing, validation, and the repository's experiments.

use super::*;

const CHAIN: &str = r#"
[paper]
table = "table1"
row = "BIGRec+LatentR3"
column = "CDs"
source = "docs/method.md §6"
values = { "H@5" = 0.0934 }

[experiment]
dataset = "CDs_and_Vinyl_5_2015-10-2018-11"

[[run]]
id = "sft"
kind = "sft"
config = "experiments/sft/cds-latentr3-{scale}.toml"

[[run]]
id = "grpo"
kind = "grpo"
from = "sft"
config = "experiments/grpo/cds-lrgrpo-{scale}.toml"
cpu = { set = ["train.lr=5e-5"] }

[[run]]
id = "test"
kind = "eval"
from = "grpo"
decoding = "d3"
smoke = { users = 4, batch = 2 }

[report]
run = "test"
"#;

#[test]
fn a_chain_parses_with_its_scales_and_defaults() {
    let m = Manifest::parse(CHAIN, "chain").unwrap();
    assert_eq!(m.runs.len(), 3);
    assert_eq!(m.paper.values.get("H@5"), Some(&0.0934));
    assert_eq!(m.scales(), Scale::ALL.to_vec());
    let grpo = m.run("grpo").unwrap();
    assert_eq!((grpo.kind(), grpo.from.as_deref()), (RunKind::Grpo, Some("sft")));
    assert_eq!(grpo.at(Scale::Cpu).set, vec!["train.lr=5e-5".to_string()]);
    assert!(grpo.at(Scale::Smoke).set.is_empty());
    let test = m.run("test").unwrap();
    assert_eq!(
        (test.decoding, test.at(Scale::Smoke).users, test.at(Scale::Paper).users),
        (Decoding::D3, Some(4), None)
    );
    assert_eq!(m.report.kind, ReportKind::Metrics);
    assert_eq!(m.report.metric_names(), ["H@5", "N@5", "H@10", "N@10"]);
}

fn err(text: &str) -> String {
    format!("{:#}", Manifest::parse(text, "m.toml").unwrap_err())
}

#[test]
fn unknown_keys_and_broken_references_are_errors_that_name_them() {
    let e = err(&CHAIN.replace("decoding = \"d3\"", "decodng = \"d3\""));
    assert!(e.contains("m.toml") && e.contains("decodng"), "{e}");
    let e = err(&CHAIN.replace("[experiment]", "[experiment]\nseed = 3"));
    assert!(e.contains("seed"), "{e}");
    let e = err(&CHAIN.replace("cpu = { set", "cpu = { sets"));
    assert!(e.contains("sets"), "{e}");
    // `from` must name an earlier run.
    let e = err(&CHAIN.replace("from = \"sft\"", "from = \"warmup\""));
    assert!(e.contains("`from = \"warmup\"` names no earlier run"), "{e}");
    // A grpo run starts from an sft run.
    let e = err(&CHAIN.replace("from = \"sft\"\n", ""));
    assert!(e.contains("a grpo run needs `from`"), "{e}");
    // An eval needs a model.
    let e = err(&CHAIN.replace("from = \"grpo\"\n", ""));
    assert!(e.contains("`from` (an sft or grpo run) or `model`"), "{e}");
    // The report names an evaluation.
    let e = err(&CHAIN.replace("run = \"test\"", "run = \"grpo\""));
    assert!(e.contains("must name an eval or baseline run"), "{e}");
    // Metrics are H@K or N@K.
    let e = err(&CHAIN.replace("\"H@5\" = 0.0934", "\"MRR\" = 0.1"));
    assert!(e.contains("MRR"), "{e}");
    let e = err(&CHAIN.replace("[report]\nrun = \"test\"", "[report]\nrun = \"test\"\nkind = \"popularity_gain\""));
    assert!(e.contains("needs `baseline`"), "{e}");
    let e = err(&CHAIN.replace("kind = \"sft\"\n", "kind = \"sft\"\nmodel = \"x\"\n"));
    assert!(e.contains("`model` and `args` are for eval and baseline runs"), "{e}");
}

#[test]
fn d3_guidance_names_an_earlier_baseline_run_and_a_scale() {
    let assistant = "[[run]]\nid = \"assistant\"\nkind = \"baseline\"\nmodel = \"sasrec\"\n\n[[run]]\nid = \"test\"";
    let guided = CHAIN
        .replace("[[run]]\nid = \"test\"", assistant)
        .replace("decoding = \"d3\"\n", "decoding = \"d3\"\nguidance = { assistant = \"assistant\", scale = 0.5 }\n");
    let m = Manifest::parse(&guided, "m.toml").unwrap();
    let spec = GuidanceSpec { assistant: "assistant".into(), scale: 0.5 };
    assert_eq!(m.run("test").unwrap().guidance.as_ref(), Some(&spec));
    // Both keys are required, the scale is finite.
    let e = err(&guided.replace(", scale = 0.5", ""));
    assert!(e.contains("scale"), "{e}");
    let e = err(&guided.replace("assistant = \"assistant\", ", ""));
    assert!(e.contains("assistant"), "{e}");
    let e = err(&guided.replace("scale = 0.5", "scale = nan"));
    assert!(e.contains("finite"), "{e}");
    // Only D3's decoding is guided.
    let e = err(&guided.replace("decoding = \"d3\"", "decoding = \"bigrec\""));
    assert!(e.contains("only an eval run with `decoding = \"d3\"`"), "{e}");
    // The assistant is an earlier baseline run.
    let e = err(&guided.replace("assistant = \"assistant\",", "assistant = \"grpo\","));
    assert!(e.contains("`assistant = \"grpo\"` names no earlier baseline run"), "{e}");
    let e = err(&guided.replace("assistant = \"assistant\",", "assistant = \"sasrec\","));
    assert!(e.contains("`assistant = \"sasrec\"` names no earlier baseline run"), "{e}");
}

#[test]
fn metric_names_parse() {
    assert_eq!(parse_metric("H@10").unwrap(), (false, 10));
    assert_eq!(parse_metric("N@5").unwrap(), (true, 5));
    assert_eq!(parse_metric("NDCG@20").unwrap(), (true, 20));
    assert!(parse_metric("H@0").is_err());
    assert!(parse_metric("H5").is_err());
}

#[test]
fn manifests_and_run_configurations_are_told_apart() {
    assert!(is_manifest_path(Path::new("table1/cds-bigrec.toml")));
    assert!(!is_manifest_path(Path::new("sft/cds-bigrec-cpu.toml")));
    assert!(!is_manifest_path(Path::new("grpo/cds-lrgrpo-smoke.toml")));
    assert!(!is_manifest_path(Path::new("baselines/cds-sasrec.toml")));
    assert!(!is_manifest_path(Path::new("README.md")));
    assert!(!is_manifest_path(Path::new("top.toml")));
}

/// Every table and figure of the issue has its experiment files, and every manifest of the repository parses
/// and names configuration files that exist.
#[test]
fn the_repository_covers_every_table_and_figure() {
    let root = crate::project_root();
    let all = discover(&root).unwrap();
    let cells = |table: &str, column: &str| -> Vec<String> {
        let mut v: Vec<String> = all
            .iter()
            .filter(|e| e.manifest.paper.table == table && e.manifest.paper.column == column)
            .map(|e| e.manifest.paper.row.clone())
            .collect();
        v.sort();
        v
    };
    let table1 =
        ["AlphaRec", "BIGRec", "BIGRec+LatentR3", "Base", "Caser", "CoT", "D3", "D3+LatentR3", "GRU4Rec", "SASRec"];
    for column in ["CDs", "Industrial", "Toys", "Games", "Instruments"] {
        assert_eq!(cells("table1", column), table1, "{column}");
    }
    let ablation = ["full", "w/o LatentRATT", "w/o RL", "w/o batch advantage", "w/o reasoning"];
    for column in ["CDs", "Toys"] {
        assert_eq!(cells("ablation", column), ablation, "{column}");
    }
    assert_eq!(cells("popularity", "CDs").len(), 1);
    assert_eq!(cells("reasoning-length", "CDs"), ["N=1", "N=2", "N=3", "N=4"]);
    assert_eq!(cells("grpo-vs-lrgrpo", "CDs"), ["LR-GRPO", "original GRPO"]);
    assert_eq!(
        cells("inference-time", "CDs"),
        ["BIGRec", "BIGRec+LatentR3", "CoT 128 tokens", "CoT 256 tokens", "CoT 64 tokens"]
    );
    assert_eq!(cells("backbone-scale", "CDs"), ["Qwen2.5-Coder-0.5B", "Qwen2.5-Coder-1.5B", "SmolLM2-135M"]);
    for e in &all {
        assert!(e.manifest.missing_configs(&root).is_empty(), "{}: {:?}", e.name, e.manifest.missing_configs(&root));
    }
    // The paper's Table 1 values are carried: CDs H@5 of BIGRec+LatentR³.
    let cds = all.iter().find(|e| e.name == "table1/cds-bigrec-latentr3").unwrap();
    assert_eq!(cds.manifest.paper.values.get("H@5"), Some(&0.0934));
}
