//! Only `r3-data` turns text into token ids and back (`docs/architecture.md`): tidy finds the calls of `encode`
//! and `decode` on a tokenizer (`tokenizer().decode(..)`, `tok.try_encode(..)`) in the other crates' sources
//! (outside their test modules), and reports them unless the file is on [`ALLOWED`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::deps::TEXT_CRATE;
use super::read;

/// Files outside `r3-data` that still encode or decode text themselves, each with why. Issue 20 ("invariants
/// that hold") moves the chain-of-thought cues and the decoding of titles into `r3_data::Encoder`; until then
/// these files are reported but allowed. Remove an entry when its file no longer calls the tokenizer (tidy
/// reports a stale entry).
pub const ALLOWED: [(&str, &str); 5] = [
    // The CoT baseline encodes its cues and decodes the reasoning it generates (issue 20).
    ("crates/r3-decode/src/cot.rs", "chain-of-thought cues and reasoning text (issue 20)"),
    // Beams outside the catalogue are decoded back to text for the prediction records (issue 20).
    ("crates/r3-decode/src/eval.rs", "titles of beams outside the catalogue (issue 20)"),
    // AlphaRec's item representations: the backbone's hidden states of each encoded title (issue 20: an
    // `Encoder` method for bare titles would own this).
    ("crates/r3-cli/src/cmd/baseline.rs", "AlphaRec's title representations (issue 20)"),
    // `latentr3 generate`: free text in, free text out (a backbone check, no recommendation).
    ("crates/r3-cli/src/cmd/generate.rs", "free-text generation of `latentr3 generate`"),
    // `latentr3 bench`: the benchmark's token windows come from encoding catalogue titles.
    ("crates/r3-cli/src/cmd/bench.rs", "the benchmark's token windows"),
];

/// The source of a file without comments, with the contents of string literals blanked, and without its
/// `#[cfg(test)]` module (the first one and everything after it).
fn code_of(text: &str) -> String {
    let text = text.split("\n#[cfg(test)]").next().unwrap_or("");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let (mut in_str, mut escaped, mut prev) = (false, false, ' ');
        for c in line.chars() {
            if in_str {
                if c == '"' && !escaped {
                    in_str = false;
                    out.push('"');
                } else {
                    out.push(' ');
                }
                escaped = c == '\\' && !escaped;
                continue;
            }
            if c == '/' && prev == '/' {
                out.pop();
                break;
            }
            in_str = c == '"';
            out.push(c);
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// The 1-based lines of `code` that call `encode*`/`decode*` (or `try_encode`/`try_decode`) on a receiver named
/// like a tokenizer: `tokenizer()`, `tokenizer`, `tok`, `*_tokenizer`.
pub fn tokenizer_calls(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut lines = Vec::new();
    for (dot, _) in code.match_indices('.') {
        let mut i = dot + 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && ident(b[i]) {
            i += 1;
        }
        let method = &code[start..i];
        let m = method.strip_prefix("try_").unwrap_or(method);
        if !(m.starts_with("encode") || m.starts_with("decode")) || !code[i..].trim_start().starts_with('(') {
            continue;
        }
        let before = code[..dot].trim_end();
        let receiver = match before.strip_suffix("()") {
            Some(call) => call.trim_end(),
            None => before,
        };
        let name_start = receiver.bytes().rposition(|c| !ident(c)).map_or(0, |p| p + 1);
        let name = &receiver[name_start..];
        if name == "tok" || name == "tokenizer" || name.ends_with("_tokenizer") {
            let line = code[..dot].matches('\n').count() + 1;
            if lines.last() != Some(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Checks the sources of every crate but `r3-data`; returns the report line (naming the allowed files).
pub fn check(root: &Path, crate_dirs: &[PathBuf], failures: &mut Vec<String>) -> anyhow::Result<String> {
    let mut allowed_used = Vec::new();
    let mut files = 0;
    for dir in crate_dirs.iter().filter(|d| !d.ends_with(TEXT_CRATE)) {
        for path in rust_files(&dir.join("src")) {
            files += 1;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let calls = tokenizer_calls(&code_of(&read(&path)?));
            if calls.is_empty() {
                continue;
            }
            let at: Vec<String> = calls.iter().map(|l| format!("{rel}:{l}")).collect();
            if ALLOWED.iter().any(|(f, _)| *f == rel) {
                allowed_used.push(rel);
            } else {
                failures.push(format!(
                    "{}: encodes or decodes text; only {TEXT_CRATE} does (go through r3_data::Encoder)",
                    at.join(", ")
                ));
            }
        }
    }
    let mut line = format!("tidy: {files} source files outside {TEXT_CRATE} checked for tokenizer calls");
    if !allowed_used.is_empty() {
        let _ = write!(line, "; allowed for now (issue 20): {}", allowed_used.join(", "));
    }
    let stale: Vec<&str> = ALLOWED.iter().map(|(f, _)| *f).filter(|f| !allowed_used.iter().any(|u| u == f)).collect();
    if !stale.is_empty() {
        let _ = write!(line, "; stale allow-list entries (remove them): {}", stale.join(", "));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_calls_are_found_across_lines_and_not_in_comments_or_strings() {
        let code = code_of(
            "fn a(e: &Encoder, tok: &Tokenizer) {\n\
             let t = e.tokenizer().decode(&ids); // tokenizer.encode(x) in a comment\n\
             let ids = tok\n    .try_encode(&text)?;\n\
             let s = \"tokenizer.decode(x) in a string\";\n\
             let u = url::decode(x); let v = base64.encode(y);\n\
             let w = self.encoder.tokenizer()\n    .encode(\"x\");\n\
             }\n#[cfg(test)]\nmod tests { fn t() { tok.decode(&[1]); } }\n",
        );
        assert_eq!(tokenizer_calls(&code), [2, 4, 8], "the lines of the dots");
    }

    #[test]
    fn the_allow_list_names_files_that_exist() {
        let root = crate::project_root();
        for (f, why) in ALLOWED {
            assert!(root.join(f).is_file(), "{f}: {why}");
        }
    }
}
