//! Schema-checked TOML: unknown keys (in a file or in `--set key=value` overrides) are errors naming the key
//! and the valid ones, and a value of the wrong type names its key.

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::error::{Error, Result};

/// Parses TOML text into any run-configuration struct with the checks of [`SftConfig::from_toml_str`]: unknown
/// keys (in the file or in `--set key=value` overrides) are errors naming the key and listing the valid ones, and a
/// value of the wrong type is an error naming its key. `full` is a value whose serialisation holds every valid key
/// (fill optional blocks with `Some`); it only serves as the key schema. Validation of the values is the caller's.
///
/// # Errors
/// As [`SftConfig::from_toml_str`], without the range checks.
pub fn parse_toml_with_schema<T: Serialize + DeserializeOwned>(
    text: &str,
    origin: &str,
    overrides: &[String],
    full: &T,
) -> Result<T> {
    let mut tree: Table =
        toml::from_str(text).map_err(|e| Error::Toml { origin: origin.into(), message: e.to_string() })?;
    let schema = schema(full)?;
    check_keys(&tree, &schema, "", origin)?;
    // The key each override set, so that a value of the wrong type is blamed on its `--set`, not on the file.
    let mut set_by: Vec<(String, String)> = Vec::new();
    for arg in overrides {
        let (key, value) = parse_override(arg)?;
        let path: Vec<&str> = key.split('.').collect();
        check_path(&path, &schema, &format!("--set {arg}"))?;
        set_path(&mut tree, &path, value, arg)?;
        set_by.push((key, format!("--set {arg}")));
    }
    deserialize(tree, &schema, origin, &set_by)
}

/// Writes a configuration as pretty TOML (`origin` names it in the error).
///
/// # Errors
/// [`Error::BadValue`] if a value cannot be written as TOML (a non-finite float).
pub fn to_toml_string<T: Serialize>(value: &T, origin: &str) -> Result<String> {
    toml::to_string_pretty(value).map_err(|e| Error::BadValue {
        origin: origin.into(),
        key: "<root>".into(),
        message: format!("cannot be written as TOML: {e}"),
    })
}

/// The key tree of `full`: every valid key, with a value of its type.
pub(super) fn schema<T: Serialize>(full: &T) -> Result<Table> {
    let text = to_toml_string(full, "<defaults>")?;
    toml::from_str(&text).map_err(|e| Error::Toml { origin: "<defaults>".into(), message: e.to_string() })
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

pub(super) fn valid_keys(schema: &Table, prefix: &str) -> String {
    let keys: Vec<String> = schema.keys().map(|k| format!("`{}`", join(prefix, k))).collect();
    keys.join(", ")
}

/// Checks that every key of `tree` exists in `schema`, recursing into tables that are tables in both.
pub(super) fn check_keys(tree: &Table, schema: &Table, prefix: &str, origin: &str) -> Result<()> {
    for (key, value) in tree {
        let full = join(prefix, key);
        match schema.get(key) {
            None => {
                return Err(Error::UnknownKey { origin: origin.into(), key: full, valid: valid_keys(schema, prefix) });
            }
            Some(Value::Table(sub)) => match value {
                Value::Table(t) => check_keys(t, sub, &full, origin)?,
                other => {
                    return Err(Error::BadValue {
                        origin: origin.into(),
                        key: full.clone(),
                        message: format!("is a section: write `[{full}]` with keys inside, not a {}", other.type_str()),
                    });
                }
            },
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks that a dotted override path names a key of the schema.
pub(super) fn check_path(path: &[&str], schema: &Table, origin: &str) -> Result<()> {
    let mut table = schema;
    let mut prefix = String::new();
    for (i, key) in path.iter().enumerate() {
        let full = join(&prefix, key);
        match table.get(*key) {
            None => {
                return Err(Error::UnknownKey { origin: origin.into(), key: full, valid: valid_keys(table, &prefix) });
            }
            Some(Value::Table(sub)) if i + 1 < path.len() => table = sub,
            Some(Value::Table(_)) => {
                return Err(Error::BadValue {
                    origin: origin.into(),
                    key: full,
                    message: format!("is a section: set one of its keys: {}", valid_keys(table, &prefix)),
                });
            }
            Some(_) if i + 1 < path.len() => {
                return Err(Error::UnknownKey {
                    origin: origin.into(),
                    key: path.join("."),
                    valid: format!("none: `{full}` is a value, not a section"),
                });
            }
            Some(_) => {}
        }
        prefix = full;
    }
    Ok(())
}

/// Splits `key=value` and parses the value as a TOML literal, else as a plain string.
pub(super) fn parse_override(arg: &str) -> Result<(String, Value)> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(Error::Override { arg: arg.into(), message: "expected `section.key=value`".into() });
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::Override { arg: arg.into(), message: "the key is empty or has an empty part".into() });
    }
    let raw = raw.trim();
    let value = match toml::from_str::<Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(raw.into())),
        Err(_) => Value::String(raw.into()),
    };
    Ok((key.into(), value))
}

pub(super) fn set_path(tree: &mut Table, path: &[&str], value: Value, arg: &str) -> Result<()> {
    let (last, parents) =
        path.split_last().ok_or_else(|| Error::Override { arg: arg.into(), message: "empty key".into() })?;
    let mut table = tree;
    for key in parents {
        let entry = table.entry(key.to_string()).or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(t) => t,
            other => {
                return Err(Error::Override {
                    arg: arg.into(),
                    message: format!("`{key}` is a {} in the file, not a section", other.type_str()),
                });
            }
        };
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Deserialises the tree; on failure, finds the first leaf whose value alone breaks the defaults, to name it.
/// Deserialises `tree`; a value of the wrong type is reported with its key and its origin: the `--set` argument
/// that set it (the last one, from `set_by`: key and argument), else `origin`.
pub(super) fn deserialize<T: DeserializeOwned>(
    tree: Table,
    schema: &Table,
    origin: &str,
    set_by: &[(String, String)],
) -> Result<T> {
    match Value::Table(tree.clone()).try_into::<T>() {
        Ok(c) => Ok(c),
        Err(e) => {
            let mut leaves = Vec::new();
            collect_leaves(&tree, &mut Vec::new(), &mut leaves);
            for (path, value) in leaves {
                let mut probe = schema.clone();
                let parts: Vec<&str> = path.iter().map(String::as_str).collect();
                if set_path(&mut probe, &parts, value.clone(), "").is_err() {
                    continue;
                }
                if let Err(leaf_err) = Value::Table(probe).try_into::<T>() {
                    let expected = lookup(schema, &parts).map_or("another type", Value::type_str);
                    let key = path.join(".");
                    let origin = set_by.iter().rev().find(|(k, _)| *k == key).map_or(origin, |(_, arg)| arg.as_str());
                    return Err(Error::BadValue {
                        origin: origin.into(),
                        key,
                        message: format!(
                            "{} (got `{value}`, expected a {expected}; see the defaults in config.resolved.toml)",
                            leaf_err.message().trim()
                        ),
                    });
                }
            }
            Err(Error::BadValue { origin: origin.into(), key: "<root>".into(), message: e.message().trim().into() })
        }
    }
}

pub(super) fn lookup<'a>(table: &'a Table, path: &[&str]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut t = table;
    for p in parents {
        t = t.get(*p)?.as_table()?;
    }
    t.get(*last)
}

pub(super) fn collect_leaves(table: &Table, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    for (k, v) in table {
        prefix.push(k.clone());
        match v {
            Value::Table(t) => collect_leaves(t, prefix, out),
            other => out.push((prefix.clone(), other.clone())),
        }
        prefix.pop();
    }
}
