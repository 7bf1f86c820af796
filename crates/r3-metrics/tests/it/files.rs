//! Prediction-file round trips: JSON arrays and JSON lines, extra keys kept, unicode kept, atomic writes.

use r3_metrics::{Format, Output, read_predictions, write_predictions};
use serde_json::Value;

/// An official-looking file: `instruction` beside the three required keys, a list-valued output, non-ASCII
/// titles (one written with Python's `ensure_ascii` escapes), and a nested extra value.
const OFFICIAL: &str = r#"[
    {
        "instruction": "Given ten CDs the user listened to, recommend the next one.",
        "input": "The user has listened to \"Homogenic\" and \"Vespertine\".",
        "output": "\"Bj\u00f6rk - Post\"\n",
        "predict": ["\"Björk - Post\"\n", "\"Sigur Rós – ( )\"\n", "\"東京事変 - 教育\"\n"],
        "score": [-0.5, -1.25, -3.0],
        "meta": {"beam": 10, "note": null}
    },
    {
        "instruction": "Given ten CDs the user listened to, recommend the next one.",
        "input": "The user has listened to \"Abbey Road\".",
        "output": ["\"Help!\"", "ignored"],
        "predict": []
    }
]"#;

#[test]
fn json_round_trip_keeps_extra_keys_and_unicode() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("official.json");
    std::fs::write(&src, OFFICIAL)?;
    let records = read_predictions(&src)?;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].output, Output::Text("\"Björk - Post\"\n".into()));
    assert_eq!(records[0].predict[2], "\"東京事変 - 教育\"\n");
    assert_eq!(records[0].extra.keys().collect::<Vec<_>>(), ["instruction", "meta", "score"]);
    assert_eq!(records[1].output, Output::List(vec!["\"Help!\"".into(), "ignored".into()]));
    assert!(records[1].predict.is_empty());

    let out = dir.path().join("nested").join("rewritten.json");
    write_predictions(&out, &records, Format::Json)?;
    assert_eq!(read_predictions(&out)?, records);
    // Same JSON values as the source (objects compare without key order); non-ASCII is written as UTF-8.
    let (a, b): (Value, Value) =
        (serde_json::from_str(OFFICIAL)?, serde_json::from_str(&std::fs::read_to_string(&out)?)?);
    assert_eq!(a, b);
    let text = std::fs::read_to_string(&out)?;
    assert!(text.starts_with("[\n    {") && text.contains("Björk"), "{text}");
    // The atomic write leaves no temporary file behind.
    let names: Vec<_> =
        std::fs::read_dir(out.parent().unwrap())?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    assert_eq!(names, ["rewritten.json"]);
    Ok(())
}

#[test]
fn jsonl_round_trip_and_format_detection() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("official.json");
    std::fs::write(&src, OFFICIAL)?;
    let records = read_predictions(&src)?;
    let out = dir.path().join("preds.jsonl");
    write_predictions(&out, &records, Format::Jsonl)?;
    let text = std::fs::read_to_string(&out)?;
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(Format::detect(&text), Format::Jsonl);
    assert_eq!(read_predictions(&out)?, records);
    // Blank lines between records are skipped.
    let spaced = dir.path().join("spaced.jsonl");
    std::fs::write(&spaced, text.replace('\n', "\n\n"))?;
    assert_eq!(read_predictions(&spaced)?, records);
    Ok(())
}

#[test]
fn an_empty_array_reads_as_no_records() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let p = dir.path().join("empty.json");
    std::fs::write(&p, " [ ] \n")?;
    assert!(read_predictions(&p)?.is_empty());
    Ok(())
}
