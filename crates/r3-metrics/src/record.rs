//! Prediction files in the official format: a JSON array of records, or JSON lines (one record per line).
//!
//! Each record has at least `input` (the prompt), `output` (the target: a string, or a list whose first element
//! is the target) and `predict` (the generated titles, best first). The official inference script adds other keys
//! (`instruction`, ...); they are kept in [`PredictionRecord::extra`] and written back unchanged, although the
//! order of the keys in an object is not kept (extra keys are written after `predict`, sorted).

use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The target of a record, as the official files store it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Output {
    /// A plain string, usually `"\"Title\"\n"`.
    Text(String),
    /// A list whose first element is the target (the other elements are ignored by the evaluation).
    List(Vec<String>),
}

/// One sample of a prediction file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PredictionRecord {
    /// The prompt text.
    pub input: String,
    /// The target title.
    pub output: Output,
    /// The generated titles, best first (the order of the beams).
    pub predict: Vec<String>,
    /// Every other key of the record, kept for the round trip. It must not hold `input`, `output` or `predict`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PredictionRecord {
    /// A record with no extra keys.
    pub fn new(input: impl Into<String>, output: Output, predict: Vec<String>) -> Self {
        PredictionRecord { input: input.into(), output, predict, extra: Map::new() }
    }
}

/// The two layouts of a prediction file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON array of records (what the official inference script writes with `json.dump(..., indent=4)`).
    Json,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// The format of a file's text: a JSON array when the first non-whitespace character is `[`, else JSON lines.
    pub fn detect(text: &str) -> Format {
        if text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']).starts_with('[') {
            Format::Json
        } else {
            Format::Jsonl
        }
    }
}

const SYNTAX_HINT: &str = "the file must be one JSON array of records or one JSON object per line; a truncated \
                           file usually means the inference run was interrupted: rerun it";
const FIELD_HINT: &str = "each record needs `input` (string), `output` (string or non-empty list of strings) and \
                          `predict` (list of strings)";

/// Reads a prediction file, JSON array or JSON lines ([`Format::detect`]).
///
/// Errors name the file, the record (0-based) and, for JSON lines, the line; a record without a required field is
/// [`Error::Record`] naming that field.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionRecord>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), action: "read", source })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line_start = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Error::Utf8 {
            path: path.to_path_buf(),
            line: bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1,
            column: at - line_start + 1,
            byte: bytes[at],
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse_predictions(path, text)
}

/// Parses the text of a prediction file; `path` only names the file in errors.
pub fn parse_predictions(path: &Path, text: &str) -> Result<Vec<PredictionRecord>> {
    if text.trim().is_empty() {
        return Err(Error::Empty {
            path: path.to_path_buf(),
            hint: "expected a JSON array of records or one JSON object per line (did the inference run finish?)",
        });
    }
    match Format::detect(text) {
        Format::Json => parse_array(path, text),
        Format::Jsonl => {
            check_not_wrapped(path, text)?;
            parse_lines(path, text)
        }
    }
}

/// Rejects a file that is one JSON object holding the records under some key (`{"predictions": [...]}`), which
/// would otherwise read as a JSON-lines file whose first record lacks `input`.
fn check_not_wrapped(path: &Path, text: &str) -> Result<()> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else { return Ok(()) };
    if ["input", "output", "predict"].iter().any(|k| map.contains_key(*k)) {
        return Ok(());
    }
    let keys: Vec<String> = map.keys().map(|k| format!("`{k}`")).collect();
    let lists: Vec<&String> = map.iter().filter(|(_, v)| v.is_array()).map(|(k, _)| k).collect();
    let hint = match lists.as_slice() {
        [one] => format!("if the records are the list under `{one}`, write that list alone as the file"),
        _ => "write the records as the file's top-level array, or one record per line".to_string(),
    };
    Err(Error::Layout {
        path: path.to_path_buf(),
        message: format!(
            "the file is one JSON object with the key(s) {} and not a list of records: a prediction file is a JSON \
             array of records (`[{{\"input\": ..., \"output\": ..., \"predict\": [...]}}, ...]`) or one such \
             object per line; {hint}",
            keys.join(", ")
        ),
    })
}

fn parse_array(path: &Path, text: &str) -> Result<Vec<PredictionRecord>> {
    let mut values = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Collect(&mut values).deserialize(&mut de).and_then(|()| de.end());
    if let Err(source) = parsed {
        // The visitor pushed every complete record, so the failing record is the next one.
        return Err(Error::Syntax {
            path: path.to_path_buf(),
            record: values.len(),
            line: source.line(),
            column: source.column(),
            source,
            hint: SYNTAX_HINT,
        });
    }
    values.into_iter().enumerate().map(|(i, v)| record_from_value(path, i, None, v)).collect()
}

fn parse_lines(path: &Path, text: &str) -> Result<Vec<PredictionRecord>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let lineno = i + 1;
        let record = out.len();
        let value: Value = serde_json::from_str(line).map_err(|source| Error::Syntax {
            path: path.to_path_buf(),
            record,
            line: lineno,
            column: source.column(),
            source,
            hint: SYNTAX_HINT,
        })?;
        out.push(record_from_value(path, record, Some(lineno), value)?);
    }
    Ok(out)
}

/// Collects the elements of a JSON array one by one, so that after a syntax error the number of complete records
/// (and hence the index of the failing one) is known.
struct Collect<'a>(&'a mut Vec<Value>);

impl<'de> DeserializeSeed<'de> for Collect<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of prediction records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.0.push(v);
        }
        Ok(())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn record_from_value(path: &Path, record: usize, line: Option<usize>, v: Value) -> Result<PredictionRecord> {
    let err = |field: &'static str, message: String| Error::Record {
        path: path.to_path_buf(),
        record,
        line,
        field,
        message,
        hint: FIELD_HINT,
    };
    let Value::Object(mut map) = v else {
        return Err(err("(record)", format!("expected a JSON object, found {}", kind(&v))));
    };
    let mut take = |field: &'static str| map.remove(field).ok_or_else(|| err(field, "missing".into()));
    let input = take("input")?;
    let output = take("output")?;
    let predict = take("predict")?;
    let input = match input {
        Value::String(s) => s,
        other => return Err(err("input", format!("expected a string, found {}", kind(&other)))),
    };
    let strings = |field: &'static str, items: Vec<Value>| -> Result<Vec<String>> {
        items
            .into_iter()
            .enumerate()
            .map(|(j, x)| match x {
                Value::String(s) => Ok(s),
                other => Err(err(field, format!("element {j} is {}, expected a string", kind(&other)))),
            })
            .collect()
    };
    let output = match output {
        Value::String(s) => Output::Text(s),
        Value::Array(items) if items.is_empty() => {
            return Err(err("output", "an empty list (the target is the first element)".into()));
        }
        Value::Array(items) => Output::List(strings("output", items)?),
        other => return Err(err("output", format!("expected a string or a list, found {}", kind(&other)))),
    };
    let predict = match predict {
        Value::Array(items) => strings("predict", items)?,
        other => return Err(err("predict", format!("expected a list of strings, found {}", kind(&other)))),
    };
    Ok(PredictionRecord { input, output, predict, extra: map })
}

/// Writes a prediction file atomically (a temporary file renamed into place): a JSON array indented by four
/// spaces, as the official script writes it, or JSON lines. Non-ASCII characters are written as UTF-8.
pub fn write_predictions(path: &Path, records: &[PredictionRecord], format: Format) -> Result<()> {
    r3_data::write_atomic(path, |w| {
        match format {
            Format::Json => {
                let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
                let mut ser = serde_json::Serializer::with_formatter(&mut *w, fmt);
                serde::Serialize::serialize(records, &mut ser).map_err(std::io::Error::from)?;
                writeln!(w)?;
            }
            Format::Jsonl => {
                for r in records {
                    serde_json::to_writer(&mut *w, r).map_err(std::io::Error::from)?;
                    writeln!(w)?;
                }
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_format_by_the_first_character() {
        assert_eq!(Format::detect("  \n[ {} ]"), Format::Json);
        assert_eq!(Format::detect("{\"input\": \"[\"}"), Format::Jsonl);
        assert_eq!(Format::detect("\u{feff}[]"), Format::Json);
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let p = Path::new("p.json");
        let e =
            parse_predictions(p, r#"[{"input": "a", "output": "b", "predict": []}, {"input": "a", "output": "b"}]"#)
                .unwrap_err();
        assert!(matches!(e, Error::Record { record: 1, line: None, field: "predict", .. }), "{e}");
        let e = parse_predictions(p, "{\"input\": \"a\", \"output\": [], \"predict\": []}\n").unwrap_err();
        assert!(matches!(e, Error::Record { record: 0, line: Some(1), field: "output", .. }), "{e}");
        let e = parse_predictions(p, "\n{\"input\": 1, \"output\": \"b\", \"predict\": []}\n").unwrap_err();
        assert!(matches!(e, Error::Record { record: 0, line: Some(2), field: "input", .. }), "{e}");
        let e = parse_predictions(p, "[{\"input\": \"a\", \"output\": \"b\", \"predict\": [1]}]").unwrap_err();
        assert!(e.to_string().contains("element 0 is a number"), "{e}");
        let e = parse_predictions(p, "[3]").unwrap_err();
        assert!(matches!(e, Error::Record { field: "(record)", .. }), "{e}");
    }

    #[test]
    fn a_truncated_array_names_the_failing_record() {
        let text = "[\n {\"input\": \"a\", \"output\": \"b\", \"predict\": []},\n {\"input\": \"a\", \"outp";
        let e = parse_predictions(Path::new("p.json"), text).unwrap_err();
        assert!(matches!(e, Error::Syntax { record: 1, line: 3, .. }), "{e}");
    }

    #[test]
    fn records_wrapped_in_an_object_say_what_format_is_expected() {
        let rec = r#"{"input": "a", "output": "b", "predict": ["b"]}"#;
        for text in [format!("{{\"predictions\": [{rec}]}}"), format!("{{\n  \"predictions\": [\n    {rec}\n  ]\n}}\n")]
        {
            let e = parse_predictions(Path::new("p.json"), &text).unwrap_err().to_string();
            assert!(e.contains("`predictions`") && e.contains("JSON array of records"), "{e}");
            assert!(!e.contains("missing"), "{e}");
        }
        // One record on one line is still a JSON-lines file.
        assert_eq!(parse_predictions(Path::new("p.jsonl"), rec).unwrap().len(), 1);
    }

    #[test]
    fn bytes_that_are_not_utf8_name_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.jsonl");
        let rec = r#"{"input": "a", "output": "b", "predict": ["b"]}"#;
        let mut bytes = format!("{rec}\n{rec}\n").into_bytes();
        bytes.extend_from_slice(b"{\"input\": \"caf\xe9\", \"output\": \"b\", \"predict\": []}\n");
        std::fs::write(&path, bytes).unwrap();
        let e = read_predictions(&path).unwrap_err().to_string();
        assert!(e.contains("p.jsonl:3:15:") && e.contains("0xe9"), "{e}");
    }
}
