//! The string normalisation of the official evaluation (`evaluate.py` of BIGRec / D3 / R3).
//!
//! NOTE: the paper says only that outputs are "stripped of spaces, newlines and quotes". The official code strips
//! catalogue titles, predictions and targets with three slightly different chains of Python `str.strip(chars)`
//! calls, and we copy each chain exactly, because the chains disagree on a few strings (for example a newline
//! inside the quotes survives the prediction chain but not the target chain).

use crate::record::Output;

/// Python's `s.strip(chars)`: removes every leading and trailing character that is one of `chars`.
fn py_strip<'a>(s: &'a str, chars: &[char]) -> &'a str {
    s.trim_matches(|c| chars.contains(&c))
}

/// Strips a generated title as the official evaluation does:
/// `p.strip(" \n").strip("\"").strip(" ")`.
///
/// ```
/// assert_eq!(r3_metrics::strip_prediction("\"Abbey Road\"\n"), "Abbey Road");
/// assert_eq!(r3_metrics::strip_prediction(" \" Help! \" "), "Help!");
/// ```
pub fn strip_prediction(p: &str) -> &str {
    py_strip(py_strip(py_strip(p, &[' ', '\n']), &['"']), &[' '])
}

/// Strips a target title given as a plain string: `output.strip(" \n\"")`.
pub fn strip_target_text(output: &str) -> &str {
    py_strip(output, &[' ', '\n', '"'])
}

/// Strips the first element of a list-valued target: `output[0].strip("\"").strip(" ")`.
///
/// NOTE: unlike [`strip_target_text`] this chain keeps newlines, as the official code does.
pub fn strip_target_list_item(first: &str) -> &str {
    py_strip(py_strip(first, &['"']), &[' '])
}

/// Strips a sample's target as the official evaluation does: `output[0].strip("\"").strip(" ")` when `output` is
/// a list, else `output.strip(" \n\"")`. `None` for an empty list (Python raises `IndexError` there).
///
/// ```
/// use r3_metrics::{Output, strip_target};
/// assert_eq!(strip_target(&Output::Text("\"Help!\"\n".into())), Some("Help!"));
/// assert_eq!(strip_target(&Output::List(vec!["\"Help!\"".into()])), Some("Help!"));
/// // The list chain strips quotes before spaces, so a quote behind a trailing space survives, as in Python.
/// assert_eq!(strip_target(&Output::List(vec!["\"Help!\" ".into()])), Some("Help!\""));
/// assert_eq!(strip_target(&Output::List(vec![])), None);
/// ```
pub fn strip_target(output: &Output) -> Option<&str> {
    match output {
        Output::Text(s) => Some(strip_target_text(s)),
        Output::List(v) => v.first().map(|s| strip_target_list_item(s)),
    }
}

/// Strips a catalogue title as the official evaluation strips the lines of `info/{stem}.txt`:
/// `line.split('\t')[0].strip("\"").strip(" ").strip('\n').strip('"')`.
///
/// NOTE: the official code keeps the text before the *first* tab, while `r3_data::Catalogue` keeps the text before
/// the last tab; we cut at the first tab here so that a title containing a tab is stripped as Python strips it.
pub fn strip_catalogue_title(title: &str) -> &str {
    let first = title.split('\t').next().unwrap_or(title);
    py_strip(py_strip(py_strip(py_strip(first, &['"']), &[' ']), &['\n']), &['"'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_chain_matches_python() {
        // Python: '"Abbey Road"\n'.strip(" \n") → '"Abbey Road"'; .strip('"') → 'Abbey Road'; .strip(" ") → same.
        assert_eq!(strip_prediction("\"Abbey Road\"\n"), "Abbey Road");
        // ' " Help! " \n' → '" Help! "' → ' Help! ' → 'Help!'.
        assert_eq!(strip_prediction(" \" Help! \" \n"), "Help!");
        // Repeated characters are all removed: '""x""' → 'x'.
        assert_eq!(strip_prediction("\"\"x\"\""), "x");
        // A newline inside the quotes survives: '"x\n"' → strip(" \n") keeps it (the ends are quotes) →
        // strip('"') → 'x\n' → strip(" ") → 'x\n'.
        assert_eq!(strip_prediction("\"x\n\""), "x\n");
        // Inner quotes and spaces are kept.
        assert_eq!(strip_prediction("\"Don't \"Stop\" Me\"\n"), "Don't \"Stop\" Me");
    }

    #[test]
    fn target_chains_match_python() {
        // String target: '"x\n"'.strip(' \n"') removes quotes and the newline together → 'x'.
        assert_eq!(strip_target_text("\"x\n\""), "x");
        assert_eq!(strip_target_text(" \"Help!\"\n"), "Help!");
        // List target: '"x\n"'.strip('"') → 'x\n'; .strip(" ") → 'x\n' (the newline is kept).
        assert_eq!(strip_target_list_item("\"x\n\""), "x\n");
        // List target: '"x" '.strip('"') → 'x" ' (the trailing space shields the quote); .strip(" ") → 'x"'.
        assert_eq!(strip_target_list_item("\"x\" "), "x\"");
        assert_eq!(strip_target(&Output::List(vec!["\" Help! \"".into(), "ignored".into()])), Some("Help!"));
        assert_eq!(strip_target(&Output::Text("\"Help!\"\n".into())), Some("Help!"));
    }

    #[test]
    fn catalogue_chain_matches_python() {
        // '"Abbey Road" '.strip('"') → 'Abbey Road" '; .strip(' ') → 'Abbey Road"'; .strip('\n') → same;
        // .strip('"') → 'Abbey Road'.
        assert_eq!(strip_catalogue_title("\"Abbey Road\" "), "Abbey Road");
        // The text after the first tab is dropped, as `split('\t')[0]` drops it.
        assert_eq!(strip_catalogue_title("A\tB"), "A");
        assert_eq!(strip_catalogue_title("Plain"), "Plain");
    }
}
