//! Config files: unknown keys, bad values, `--set` overrides, validation and the resolved round trip.

use r3_data::Template;
use r3_train::{Dtype, Error, SftConfig};

const FILE: &str = r#"
[model]
id = "qwen2.5-coder-0.5b"
dtype = "f32"

[data]
stem = "CDs_and_Vinyl_5_2015-10-2018-11"
template = "corrected"

[train]
lr = 1e-4
batch = 64
"#;

#[test]
fn a_file_overrides_only_the_keys_it_names() -> anyhow::Result<()> {
    let c = SftConfig::from_toml_str(FILE, "exp.toml", &[])?;
    assert_eq!(c.model.id, "qwen2.5-coder-0.5b");
    assert_eq!(c.model.dtype, Dtype::F32);
    assert_eq!(c.data.template, Template::Corrected);
    assert_eq!((c.train.lr, c.train.batch), (1e-4, 64));
    assert_eq!((c.train.micro_batch, c.train.epochs, c.train.warmup, c.data.cutoff), (4, 3, 20, 512));
    Ok(())
}

#[test]
fn unknown_keys_are_named_with_the_valid_ones() {
    let err = SftConfig::from_toml_str("[train]\nlrr = 1e-4\n", "exp.toml", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::UnknownKey { ref key, .. } if key == "train.lrr"), "{msg}");
    assert!(msg.contains("exp.toml") && msg.contains("`train.lr`") && msg.contains("`train.micro_batch`"), "{msg}");

    let err = SftConfig::from_toml_str("[trian]\nlr = 1\n", "exp.toml", &[]).unwrap_err();
    assert!(err.to_string().contains("`trian`") && err.to_string().contains("`train`"), "{err}");

    let err = SftConfig::from_toml_str("", "exp.toml", &["model.lora.rnak=4".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`model.lora.rnak`") && msg.contains("`model.lora.rank`") && msg.contains("--set"), "{msg}");
}

#[test]
fn bad_values_name_their_key() {
    let err = SftConfig::from_toml_str("[train]\nbatch = \"many\"\n", "exp.toml", &[]).unwrap_err();
    assert!(matches!(err, Error::BadValue { ref key, .. } if key == "train.batch"), "{err}");
    let err = SftConfig::from_toml_str("", "exp.toml", &["data.template=fancy".into()]).unwrap_err();
    assert!(matches!(err, Error::BadValue { ref key, .. } if key == "data.template"), "{err}");
    let err = SftConfig::from_toml_str("train = 3\n", "exp.toml", &[]).unwrap_err();
    assert!(err.to_string().contains("[train]"), "{err}");
}

#[test]
fn validation_says_how_to_fix_the_batch() {
    let err = SftConfig::from_toml_str("[train]\nbatch = 10\nmicro_batch = 4\n", "exp.toml", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("train.micro_batch") && msg.contains("not a multiple") && msg.contains("e.g. 2"), "{msg}");
    let err = SftConfig::from_toml_str("[data]\nn_thought = 0\n", "exp.toml", &[]).unwrap_err();
    assert!(err.to_string().contains("no_latent"), "{err}");
    assert!(SftConfig::from_toml_str("[data]\nn_thought = 0\nno_latent = true\n", "e", &[]).is_ok());
}

#[test]
fn set_overrides_apply_in_order_before_deserialising() -> anyhow::Result<()> {
    let sets: Vec<String> =
        ["train.lr=5e-5", "train.batch=32", "data.template=paper", "data.no_latent=true", "train.lr=2e-5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let c = SftConfig::from_toml_str(FILE, "exp.toml", &sets)?;
    assert_eq!((c.train.lr, c.train.batch), (2e-5, 32), "the last override wins");
    assert_eq!(c.data.template, Template::Paper);
    assert_eq!(c.n_thought(), 0);
    let c = SftConfig::from_toml_str("", "e", &[r#"model.lora.targets=["q_proj", "v_proj"]"#.into()])?;
    assert_eq!(c.model.lora.targets, ["q_proj", "v_proj"]);
    assert!(SftConfig::from_toml_str("", "e", &["train.lr".into()]).is_err(), "an override needs `=`");
    Ok(())
}

#[test]
fn the_resolved_config_round_trips() -> anyhow::Result<()> {
    let c = SftConfig::from_toml_str(FILE, "exp.toml", &["train.eps=1e-7".into(), "model.lora.enabled=true".into()])?;
    let text = c.to_toml()?;
    assert!(text.contains("[train]") && text.contains("warmup = 20"), "every key is written:\n{text}");
    let back = SftConfig::from_toml_str(&text, "config.resolved.toml", &[])?;
    assert_eq!(back, c);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.toml");
    std::fs::write(&path, &text)?;
    assert_eq!(SftConfig::from_file(&path, &[])?, c);
    Ok(())
}
