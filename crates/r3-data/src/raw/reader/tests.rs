//! Unit tests of `reader.rs`.

use super::*;

fn kept(t: &str) -> TitleOutcome {
    TitleOutcome::Kept(t.to_string())
}

#[test]
fn titles_are_cleaned_as_python_does() {
    // Each expectation follows the Python expression in the doc of `clean_title_once`.
    assert_eq!(check_title(Some("Tom &amp; Jerry"), 1), kept("Tom & Jerry"));
    assert_eq!(check_title(Some("&quot;Thriller&quot;"), 1), kept("Thriller"));
    assert_eq!(check_title(Some("  \"Abbey Road\"  "), 1), kept("Abbey Road"));
    // The space strip runs first, so spaces inside the quotes survive.
    assert_eq!(check_title(Some("\" Padded \""), 1), kept(" Padded "));
    // Only spaces are stripped, not tabs.
    assert_eq!(check_title(Some("\tTabbed "), 1), kept("\tTabbed"));
    // `&amp;quot;` needs two passes to become a quote.
    assert_eq!(check_title(Some("&amp;quot;Hi&amp;quot;"), 1), kept("&quot;Hi&quot;"));
    assert_eq!(check_title(Some("&amp;quot;Hi&amp;quot;"), 2), kept("Hi"));
    assert_eq!(check_title(Some("\" Padded \""), 2), kept("Padded"));
}

#[test]
fn titles_are_rejected_as_python_does() {
    assert_eq!(check_title(None, 1), TitleOutcome::Missing);
    assert_eq!(check_title(Some("<span id=\"x\">A</span>"), 1), TitleOutcome::SpanId);
    // `<span class` is not `<span id`: such titles are kept (the CDs data has 87 of them).
    assert!(matches!(check_title(Some("<span class=\"a\""), 1), TitleOutcome::Kept(_)));
    assert_eq!(check_title(Some("\"\"X\"\""), 1), TitleOutcome::TooShort("X".into()));
    assert_eq!(check_title(Some("é"), 1), TitleOutcome::TooShort("é".into()));
    assert_eq!(check_title(Some("éé"), 1), kept("éé"));
    let twenty = ["w"; 20].join(" ");
    assert_eq!(check_title(Some(&twenty), 1), kept(&twenty));
    let twenty_one = ["w"; 21].join(" ");
    assert_eq!(check_title(Some(&twenty_one), 1), TitleOutcome::TooLong(twenty_one.clone()));
    // Double spaces make empty words, as `split(" ")` does.
    let spaced = ["w"; 11].join("  ");
    assert!(matches!(check_title(Some(&spaced), 1), TitleOutcome::TooLong(_)));
}

#[test]
fn removal_wins_over_a_title_from_another_record() {
    let mut items = Interner::default();
    let a = items.intern("A").unwrap();
    let b = items.intern("B").unwrap();
    let c = items.intern("C").unwrap();
    let meta = Metadata {
        records: vec![
            (a, RawTitle::Text("First".into())),
            (a, RawTitle::Text("Second".into())),
            (b, RawTitle::Text("Kept".into())),
            (b, RawTitle::Rejected),
        ],
        stats: MetadataStats::default(),
    };
    let titles = meta.titles(items.len(), 1);
    assert_eq!(titles[a as usize].as_deref(), Some("Second"));
    assert_eq!(titles[b as usize], None);
    assert_eq!(titles[c as usize], None);
}

#[test]
fn later_passes_clean_the_already_cleaned_titles() {
    let mut items = Interner::default();
    let (a, b, c) = (items.intern("A").unwrap(), items.intern("B").unwrap(), items.intern("C").unwrap());
    let long = format!("\" {} \"", ["w"; 20].join(" ")); // 22 words after one pass (empty ends), 20 after two
    let meta = Metadata {
        records: vec![
            (a, RawTitle::Text("&amp;quot;Hi&amp;quot;".into())),
            (b, RawTitle::Text(long.into())),
            (c, RawTitle::Text("Plain".into())),
        ],
        stats: MetadataStats::default(),
    };
    let one = meta.titles(items.len(), 1);
    assert_eq!(one, [Some("&quot;Hi&quot;".to_string()), None, Some("Plain".into())]);
    let two = meta.titles(items.len(), 2);
    assert_eq!(two, [Some("Hi".to_string()), Some(["w"; 20].join(" ")), Some("Plain".into())]);
    assert_eq!(meta.titles(items.len(), 9), two);
    assert_eq!(check_title(Some("&amp;quot;Hi&amp;quot;"), 9), kept("Hi"));
}

#[test]
fn the_interner_numbers_in_first_appearance_order() {
    let mut i = Interner::default();
    assert_eq!(i.intern("x"), Some(0));
    assert_eq!(i.intern("y"), Some(1));
    assert_eq!(i.intern("x"), Some(0));
    assert_eq!(i.get("y"), Some(1));
    assert_eq!(i.get("z"), None);
    assert_eq!(i.name(1), "y");
    assert_eq!(i.len(), 2);
}
