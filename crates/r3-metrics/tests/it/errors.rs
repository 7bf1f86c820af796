//! Malformed prediction files: each error names the file, the record (and line for JSON lines) and the field.

use std::path::Path;

use r3_metrics::{Error, read_predictions};

fn read_err(dir: &Path, name: &str, text: &str) -> Error {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write the test file");
    read_predictions(&p).expect_err("the file is malformed")
}

#[test]
fn a_missing_predict_names_the_file_record_and_field() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ok = r#"{"input": "i", "output": "\"A\"\n", "predict": ["\"A\"\n"]}"#;
    let bad = r#"{"input": "i", "output": "\"A\"\n"}"#;
    let e = read_err(dir.path(), "array.json", &format!("[{ok}, {ok}, {bad}]"));
    assert!(matches!(&e, Error::Record { record: 2, line: None, field: "predict", .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("array.json") && msg.contains("record 2") && msg.contains("`predict`"), "{msg}");

    let e = read_err(dir.path(), "lines.jsonl", &format!("{ok}\n\n{bad}\n"));
    assert!(matches!(&e, Error::Record { record: 1, line: Some(3), field: "predict", .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("lines.jsonl: record 1 (line 3): field `predict`: missing"), "{msg}");
    Ok(())
}

#[test]
fn a_truncated_file_names_the_record_and_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rec = "    {\"input\": \"i\", \"output\": \"A\", \"predict\": [\"A\"]}";
    // Two complete records, then the third cut in the middle of line 4.
    let text = format!("[\n{rec},\n{rec},\n    {{\"input\": \"i\", \"outp");
    let e = read_err(dir.path(), "cut.json", &text);
    assert!(matches!(&e, Error::Syntax { record: 2, line: 4, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}:4:", dir.path().join("cut.json").display())), "{msg}");
    assert!(msg.contains("record 2") && msg.contains("rerun"), "{msg}");

    // A JSON-lines file cut in its second record.
    let e = read_err(dir.path(), "cut.jsonl", &format!("{}\n{}", rec.trim(), &rec.trim()[..20]));
    assert!(matches!(&e, Error::Syntax { record: 1, line: 2, .. }), "{e}");
    // A missing closing bracket after complete records.
    let e = read_err(dir.path(), "open.json", &format!("[\n{rec}\n"));
    assert!(matches!(&e, Error::Syntax { record: 1, .. }), "{e}");
    Ok(())
}

#[test]
fn empty_missing_and_non_utf8_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let e = read_err(dir.path(), "blank.json", " \n\n");
    assert!(matches!(&e, Error::Empty { .. }) && e.to_string().contains("blank.json"), "{e}");
    let e = read_predictions(&dir.path().join("absent.json")).expect_err("absent");
    assert!(matches!(&e, Error::Io { action: "read", .. }) && e.to_string().contains("absent.json"), "{e}");
    let p = dir.path().join("latin1.json");
    std::fs::write(&p, b"[{\"input\": \"\xe9\"}]")?;
    let e = read_predictions(&p).expect_err("not UTF-8");
    assert!(e.to_string().contains("UTF-8"), "{e}");
    Ok(())
}

#[test]
fn wrong_types_are_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let e = read_err(dir.path(), "t.json", r#"[{"input": "i", "output": 3, "predict": []}]"#);
    assert!(matches!(&e, Error::Record { field: "output", .. }) && e.to_string().contains("a number"), "{e}");
    let e = read_err(dir.path(), "t.jsonl", "{\"input\": \"i\", \"output\": \"A\", \"predict\": \"A\"}\n");
    assert!(matches!(&e, Error::Record { field: "predict", line: Some(1), .. }), "{e}");
    let e = read_err(dir.path(), "u.jsonl", "[1]\n");
    assert!(matches!(&e, Error::Record { field: "(record)", .. }), "{e}");
    Ok(())
}
