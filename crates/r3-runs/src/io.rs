//! Reading and writing run files: whole JSON files and JSON-lines files, every error naming the file and line.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// What a reader says when a file does not match its schema.
const HINT: &str = "the file was written by other code than this reader expects: rerun the command that writes it, \
                    or read it with the revision that wrote it";

/// A run file: its name inside the run folder and what it is, for the messages.
pub trait RunFile: Sized {
    /// What the file is, for messages (`the metrics.json of latentr3 eval`).
    const WHAT: &'static str;
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), action: "read", source })
}

/// Reads a whole JSON file into `T`; a missing or unknown field is an error naming the file and the field.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Schema`] when it does not match `T`.
pub fn read_json<T: RunFile + DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| Error::Schema {
        path: path.into(),
        line: String::new(),
        what: T::WHAT,
        source,
        hint: HINT,
    })
}

/// Reads a JSON-lines file (one `T` per non-empty line), naming the file and the 1-based line of a bad record.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Schema`] for the first line that does not match `T`.
pub fn read_jsonl<T: RunFile + DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = read_text(path)?;
    parse_jsonl(path, &text)
}

/// Parses the text of a JSON-lines file read from `path` (see [`read_jsonl`]).
///
/// # Errors
/// [`Error::Schema`] for the first line that does not match `T`.
pub fn parse_jsonl<T: RunFile + DeserializeOwned>(path: &Path, text: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|source| Error::Schema {
            path: path.into(),
            line: format!(":{}", i + 1),
            what: T::WHAT,
            source,
            hint: HINT,
        })?);
    }
    Ok(out)
}

/// Reads a JSON array file of `T` (the official `predictions.json` layout).
///
/// # Errors
/// As [`read_json`].
pub fn read_json_array<T: RunFile + DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|source| Error::Schema {
        path: path.into(),
        line: String::new(),
        what: T::WHAT,
        source,
        hint: HINT,
    })
}

/// Writes `value` as pretty JSON with a final newline, atomically (a temporary file renamed into place).
///
/// # Errors
/// [`Error::Data`] when the file cannot be written.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|source| Error::Schema {
        path: path.into(),
        line: String::new(),
        what: "a value JSON can hold",
        source,
        hint: "a map key that is not a string cannot be written as JSON",
    })? + "\n";
    r3_data::write_atomic(path, |w| w.write_all(text.as_bytes()))?;
    Ok(())
}
