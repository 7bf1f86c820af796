//! Unit tests of `config.rs`.

use super::schema::parse_override;
use super::*;
use toml::Value;

#[test]
fn defaults_are_the_official_values_and_valid() {
    let c = SftConfig::default();
    assert_eq!((c.train.lr, c.train.batch, c.train.epochs, c.train.warmup), (3e-4, 128, 3, 20));
    assert_eq!((c.train.weight_decay, c.train.clip, c.train.patience, c.data.cutoff), (0.0, 1.0, 1, 512));
    c.validate("defaults").unwrap();
}

#[test]
fn override_values_are_toml_literals_or_strings() {
    assert_eq!(parse_override("train.lr=1e-4").unwrap().1, Value::Float(1e-4));
    assert_eq!(parse_override("data.template=corrected").unwrap().1, Value::String("corrected".into()));
    assert_eq!(parse_override("data.no_latent = true").unwrap().1, Value::Boolean(true));
    assert!(parse_override("train.lr").is_err());
}

#[test]
fn subset_is_seeded_and_without_repeats() {
    let a = seeded_subset(100, 10, 0);
    assert_eq!(a, seeded_subset(100, 10, 0));
    assert_ne!(a, seeded_subset(100, 10, 1));
    let mut s = a.clone();
    s.sort_unstable();
    s.dedup();
    assert_eq!(s.len(), 10);
    assert_eq!(seeded_subset(5, 0, 3), vec![0, 1, 2, 3, 4]);
}

/// A `--set` value of the wrong type is blamed on the `--set` argument, not on the config file (issue 22 item 10).
#[test]
fn a_bad_override_value_names_the_override_not_the_file() {
    let err = SftConfig::from_toml_str("[train]\nlr = 1e-4\n", "exp.toml", &["train.lr=abc".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("--set train.lr=abc: config key `train.lr`"), "{msg}");
    assert!(!msg.contains("exp.toml"), "{msg}");
    // A wrong type in the file itself is still the file's.
    let msg = SftConfig::from_toml_str("[train]\nlr = \"x\"\n", "exp.toml", &[]).unwrap_err().to_string();
    assert!(msg.starts_with("exp.toml: config key `train.lr`"), "{msg}");
}
