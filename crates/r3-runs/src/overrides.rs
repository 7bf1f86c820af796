//! `--set key.sub=value` overrides of a TOML run configuration, as `latentr3 train --set` applies them and
//! `cargo xtask reproduce` resolves them: the value is a TOML literal (`3e-4`, `true`, `"x"`, `[1, 2]`), else a
//! plain string (`corrected`).

use toml::{Table, Value};

use crate::error::{Error, Result};

/// One parsed override.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The override as given (for messages).
    pub arg: String,
    /// The dotted key, split: `["train", "lr"]`.
    pub path: Vec<String>,
    /// The value.
    pub value: Value,
}

impl Override {
    /// Parses `section.key=value`.
    ///
    /// # Errors
    /// [`Error::Override`] without `=`, or with an empty key or key part.
    pub fn parse(arg: &str) -> Result<Override> {
        let bad = |message: &str| Error::Override { arg: arg.into(), message: message.into() };
        let (key, raw) = arg.split_once('=').ok_or_else(|| bad("expected `section.key=value`"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad("the key is empty or has an empty part"));
        }
        let raw = raw.trim();
        let value = match format!("v = {raw}").parse::<Table>() {
            Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(raw.into())),
            Err(_) => Value::String(raw.into()),
        };
        Ok(Override { arg: arg.into(), path: key.split('.').map(str::to_string).collect(), value })
    }

    /// The dotted key (`train.lr`).
    pub fn key(&self) -> String {
        self.path.join(".")
    }

    /// Sets the value in `tree`, creating the sections on the way.
    ///
    /// # Errors
    /// [`Error::Override`] when a section on the path is a value in the tree.
    pub fn apply(&self, tree: &mut Table) -> Result<()> {
        let Some((last, parents)) = self.path.split_last() else {
            return Err(Error::Override { arg: self.arg.clone(), message: "empty key".into() });
        };
        let mut table = tree;
        for key in parents {
            let entry = table.entry(key.clone()).or_insert_with(|| Value::Table(Table::new()));
            table = match entry {
                Value::Table(t) => t,
                other => {
                    return Err(Error::Override {
                        arg: self.arg.clone(),
                        message: format!("`{key}` is a {} in the file, not a section", other.type_str()),
                    });
                }
            };
        }
        table.insert(last.clone(), self.value.clone());
        Ok(())
    }
}

/// Parses and applies each override to `tree` in order.
///
/// # Errors
/// The first [`Error::Override`].
pub fn apply_overrides<S: AsRef<str>>(tree: &mut Table, overrides: &[S]) -> Result<()> {
    for o in overrides {
        Override::parse(o.as_ref())?.apply(tree)?;
    }
    Ok(())
}

/// A TOML string literal of `s`, for an override whose value must stay a string (`data.stem="A B"`).
pub fn toml_string(s: &str) -> String {
    Value::String(s.into()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_literals_or_plain_strings() {
        let mut t: Table = "[train]\nlr = 3e-4\n".parse().unwrap();
        apply_overrides(
            &mut t,
            &["train.lr=1e-4", "data.template=corrected", "data.stem=\"A B\"", "latent.ratt = false"],
        )
        .unwrap();
        assert_eq!(t["train"]["lr"].as_float(), Some(1e-4));
        assert_eq!(t["data"]["template"].as_str(), Some("corrected"));
        assert_eq!(t["data"]["stem"].as_str(), Some("A B"));
        assert_eq!(t["latent"]["ratt"].as_bool(), Some(false));
        let o = Override::parse(" eval.k = [5, 10] ").unwrap();
        assert_eq!((o.key(), o.value.as_array().map(Vec::len)), ("eval.k".to_string(), Some(2)));
        // A string literal reads back as the same string, whatever it holds.
        for s in ["A \"B\"", "runs/x y", "it's", "3e-4"] {
            let o = Override::parse(&format!("data.stem={}", toml_string(s))).unwrap();
            assert_eq!(o.value.as_str(), Some(s));
        }
    }

    #[test]
    fn malformed_overrides_are_errors_that_name_them() {
        let mut t: Table = "[train]\nlr = 3e-4\n".parse().unwrap();
        let e = Override::parse("train.lr").unwrap_err().to_string();
        assert!(e.contains("`train.lr`") && e.contains("section.key=value"), "{e}");
        assert!(Override::parse("=1").is_err());
        assert!(Override::parse("train..lr=1").is_err());
        let e = apply_overrides(&mut t, &["train.lr.x=1"]).unwrap_err().to_string();
        assert!(e.contains("`lr` is a float in the file, not a section"), "{e}");
    }
}
