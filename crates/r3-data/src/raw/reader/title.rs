//! The title check of the official `process.py`: which metadata titles are kept, and how they are cleaned.

/// What the title check of `process.py` makes of one metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TitleOutcome {
    /// The record has no `title`: the ASIN is removed.
    Missing,
    /// The title contains `<span id` (scraped HTML): the ASIN is removed.
    SpanId,
    /// The cleaned title has at most one character: the ASIN is removed.
    TooShort(String),
    /// The cleaned title has more than 20 space-separated words: the ASIN is removed.
    TooLong(String),
    /// The cleaned title is kept (`id_title[asin] = title`).
    Kept(String),
}

/// One cleaning pass of `process.py`:
/// `title.replace("&quot;", "\"").replace("&amp;", "&").strip(" ").strip("\"")`.
///
/// Python's `strip(chars)` removes every leading and trailing character in `chars`, so `strip(" ")` removes only
/// spaces (not tabs or newlines) and the quote strip runs after the space strip: `' "A" '` becomes `A` but
/// `'" A "'` becomes `' A '`.
pub fn clean_title_once(title: &str) -> String {
    title.replace("&quot;", "\"").replace("&amp;", "&").trim_matches(' ').trim_matches('"').to_string()
}

/// The title rule of `process.py` for one metadata record, with `passes` cleaning passes (1 normally; see
/// [`Metadata::titles`] for why there can be more).
///
/// A title containing `<span id` is rejected before cleaning. Otherwise the cleaned title is kept when it has
/// more than one character (Python's `len`: code points) and at most 20 words of `split(" ")` (single spaces,
/// so `"a  b"` counts three words).
pub fn check_title(title: Option<&str>, passes: usize) -> TitleOutcome {
    let Some(title) = title else { return TitleOutcome::Missing };
    if title.contains("<span id") {
        return TitleOutcome::SpanId;
    }
    let mut t = clean_title_once(title);
    for _ in 1..passes {
        let next = clean_title_once(&t);
        if next == t {
            break; // a fixed point: further passes change nothing
        }
        t = next;
    }
    if t.chars().count() <= 1 {
        TitleOutcome::TooShort(t)
    } else if !fits_length(&t) {
        TitleOutcome::TooLong(t)
    } else {
        TitleOutcome::Kept(t)
    }
}

/// The length rule of `process.py` on a cleaned title: `len(title) > 1 and len(title.split(" ")) <= 20`.
pub(super) fn acceptable(t: &str) -> bool {
    t.chars().nth(1).is_some() && fits_length(t)
}

fn fits_length(t: &str) -> bool {
    t.split(' ').nth(20).is_none()
}
