//! Reading, validating and writing the BIGRec/D3/R3 layout: both real datasets, their quirks, byte-exact round
//! trips, and the errors a malformed file gives.

use std::path::Path;

use r3_data::{Catalogue, Dataset, Interaction, Split, read_split, write_split};

use crate::common::{CDS, INDUSTRIAL, data_root};

fn sizes(ds: &Dataset) -> [usize; 4] {
    [ds.catalogue.len(), ds.train.len(), ds.valid.len(), ds.test.len()]
}

#[test]
fn both_real_datasets_load_with_the_documented_sizes() {
    // The sizes of docs/data.md.
    let cds = Dataset::load(&data_root(), CDS).unwrap();
    assert_eq!(sizes(&cds), [5841, 10_696, 6156, 6157]);
    let ind = Dataset::load(&data_root(), INDUSTRIAL).unwrap();
    assert_eq!(sizes(&ind), [3686, 10_393, 4532, 4533]);
    for ds in [&cds, &ind] {
        for split in Split::ALL {
            assert!(ds.split(split).iter().all(|r| r.history_len() <= 10 && r.history_len() >= 1));
        }
        // The global time split: train targets precede valid targets precede test targets.
        let last = |s: &[Interaction]| s.iter().map(|r| r.timestamp).max().unwrap();
        let first = |s: &[Interaction]| s.iter().map(|r| r.timestamp).min().unwrap();
        assert!(last(&ds.valid) <= first(&ds.test));
        assert!(first(&ds.valid) >= first(&ds.train));
    }
}

#[test]
fn cds_quirks_are_kept() {
    let cds = Dataset::load(&data_root(), CDS).unwrap();
    // 87 test targets carry the scraped-HTML title.
    let span = r#"<span class="a-size-medium a-color-secondary a-text-normal"#;
    assert_eq!(cds.test.iter().filter(|r| r.item_title.starts_with(span)).count(), 87);
    // 185 titles are shared by several ids (649 ids in all); a shared title maps to all its ids.
    let shared = cds.catalogue.shared_titles();
    assert_eq!(shared.len(), 185);
    assert_eq!(shared.iter().map(|(_, ids)| ids.len()).sum::<usize>(), 649);
    let (title, ids) = shared[0];
    for &id in ids {
        assert_eq!(cds.catalogue.title(id), Some(title));
    }
    // Titles with double quotes, apostrophes and backslashes arrive unescaped.
    let titles = cds.catalogue.titles();
    assert_eq!(titles.iter().filter(|t| t.contains('"')).count(), 69);
    assert_eq!(titles.iter().filter(|t| t.contains('\'')).count(), 369);
    assert!(cds.test.iter().flat_map(|r| &r.history_titles).any(|t| t.contains("Magic\\Daydream")));
}

/// Reads every split and the catalogue and writes them again: the bytes must not change.
fn assert_round_trip(stem: &str) {
    let dir = data_root();
    let tmp = tempfile::tempdir().unwrap();
    for split in Split::ALL {
        let src = split.path(&dir, stem);
        let rows = read_split(&src).unwrap();
        let out = tmp.path().join(format!("{split}.csv"));
        write_split(&out, &rows).unwrap();
        let (a, b) = (std::fs::read(&src).unwrap(), std::fs::read(&out).unwrap());
        assert!(a == b, "{} changed on a read/write round trip ({} vs {} bytes)", src.display(), a.len(), b.len());
    }
    let info = dir.join("info").join(format!("{stem}.txt"));
    let out = tmp.path().join("info.txt");
    Catalogue::read(&info).unwrap().write(&out).unwrap();
    assert_eq!(std::fs::read(&info).unwrap(), std::fs::read(&out).unwrap());
}

#[test]
fn real_files_round_trip_byte_for_byte() {
    assert_round_trip(CDS);
    assert_round_trip(INDUSTRIAL);
}

#[test]
fn unicode_quotes_and_escapes_round_trip() {
    // The real files happen to be pure ASCII, so non-ASCII text (and the characters that Python's repr escapes)
    // is checked on a handmade row.
    let row = Interaction {
        user_id: "U1".into(),
        history_asins: vec!["A1".into(), "A2".into(), "A3".into()],
        item_asin: "A4".into(),
        history_item_ids: vec![0, 1, 2],
        item_id: 3,
        history_titles: vec!["Björk — Homogenic".into(), "Don't \"Stop\"".into(), "tab\there\\nbsp\u{a0}".into()],
        item_title: "Sigur Rós, \"Ágætis byrjun\"".into(),
        history_ratings: vec![5.0, 4.0, 3.5],
        rating: 1.0,
        history_timestamps: vec![1, 2, 2],
        timestamp: 3,
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.csv");
    write_split(&path, std::slice::from_ref(&row)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // What CPython's csv.writer writes for this row.
    let want = "U1,\"['A1', 'A2', 'A3']\",A4,\"[0, 1, 2]\",3,\"['Björk — Homogenic', 'Don\\'t \"\"Stop\"\"', \
                'tab\\there\\\\nbsp\\xa0']\",\"Sigur Rós, \"\"Ágætis byrjun\"\"\",\"[5.0, 4.0, 3.5]\",1.0,\"[1, 2, 2]\",3\r\n";
    assert_eq!(text.lines().nth(1).map(|l| format!("{l}\n")), Some(want.replace("\r\n", "\n")));
    assert_eq!(read_split(&path).unwrap(), vec![row]);
}

/// Copies the CDs dataset into a temporary folder with one line of one split replaced.
fn corrupt(split: Split, line: usize, edit: impl Fn(&str) -> String) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = data_root();
    for s in Split::ALL {
        let text = std::fs::read_to_string(s.path(&src, CDS)).unwrap();
        let text = if s == split {
            text.split("\r\n")
                .enumerate()
                .map(|(i, l)| if i + 1 == line { edit(l) } else { l.to_string() })
                .collect::<Vec<_>>()
                .join("\r\n")
        } else {
            text
        };
        let dst = s.path(tmp.path(), CDS);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(&dst, text).unwrap();
    }
    let info = Path::new("info").join(format!("{CDS}.txt"));
    std::fs::create_dir_all(tmp.path().join("info")).unwrap();
    std::fs::copy(src.join(&info), tmp.path().join(&info)).unwrap();
    let path = split.path(tmp.path(), CDS);
    (tmp, path)
}

fn load_err(dir: &Path) -> String {
    Dataset::load(dir, CDS).unwrap_err().to_string()
}

#[test]
fn malformed_rows_name_file_line_and_column() {
    // An unterminated string in `history_item_title` on line 5 of valid.
    let (tmp, path) = corrupt(Split::Valid, 5, |l| l.replacen("['", "['oops, ", 1).replacen("']", "", 1));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:5:", path.display())), "{e}");
    assert!(e.contains("item_asins") || e.contains("history_item_title"), "{e}");

    // A non-integer item id on line 3 of test.
    let (tmp, path) = corrupt(Split::Test, 3, |l| {
        let mut cells: Vec<String> = l.split(',').map(String::from).collect();
        let last = cells.len() - 1;
        cells[last] = "12x".into();
        cells.join(",")
    });
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:3: column `timestamp`", path.display())), "{e}");

    // A wrong number of fields.
    let (tmp, path) = corrupt(Split::Train, 2, |l| format!("{l},extra"));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:2:", path.display())) && e.contains("12 fields"), "{e}");

    // A wrong header.
    let (tmp, path) = corrupt(Split::Train, 1, |l| l.replace("item_asin,", "asin,"));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:1: column `(header)`", path.display())), "{e}");
}

#[test]
fn broken_invariants_are_errors() {
    // Train line 2 is `A19BLIV9717B3R,['B000001EKE'],B001K3JF7K,[2273],3817,['Light Of Worlds'],Quiet Nights,...`.
    // History lists of different lengths.
    let (tmp, path) = corrupt(Split::Train, 2, |l| l.replacen("[5.0]", "\"[5.0, 4.0]\"", 1));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:2:", path.display())) && e.contains("differ in length"), "{e}");
    // An id outside the catalogue of 5,841 items.
    let (tmp, path) = corrupt(Split::Train, 2, |l| l.replacen(",3817,", ",5841,", 1));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:2:", path.display())) && e.contains("outside the catalogue"), "{e}");
    // A title that disagrees with the catalogue.
    let (tmp, path) = corrupt(Split::Train, 2, |l| l.replacen("Quiet Nights", "Loud Days", 1));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:2:", path.display())) && e.contains("Loud Days"), "{e}");
    // The target earlier than the history.
    let (tmp, path) = corrupt(Split::Train, 2, |l| l.replacen("[1443744000]", "[1443744001]", 1));
    let e = load_err(tmp.path());
    assert!(e.contains(&format!("{}:2:", path.display())) && e.contains("timestamps decrease"), "{e}");
}

#[test]
fn missing_files_say_what_to_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Dataset::load(tmp.path(), CDS).unwrap_err().to_string();
    assert!(e.contains(&format!("info/{CDS}.txt")) && e.contains("--data"), "{e}");
    let e = Dataset::load(&tmp.path().join("nope"), CDS).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("--data"), "{e}");
    let e = Dataset::load(&data_root(), "No_Such_Stem").unwrap_err().to_string();
    assert!(e.contains("No_Such_Stem.txt"), "{e}");
}

#[test]
fn catalogue_lines_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.txt");
    std::fs::write(&p, "A\t0\nB\t2\n").unwrap();
    let e = Catalogue::read(&p).unwrap_err().to_string();
    assert!(e.contains("c.txt:2:") && e.contains("dense"), "{e}");
    std::fs::write(&p, "A\t0\nno tab here\n").unwrap();
    let e = Catalogue::read(&p).unwrap_err().to_string();
    assert!(e.contains("c.txt:2:") && e.contains("no tab"), "{e}");
    // An empty title is an error at its line, not later at a split row that uses it.
    std::fs::write(&p, "A\t0\n\t1\nC\t2\n").unwrap();
    let e = Catalogue::read(&p).unwrap_err().to_string();
    assert!(e.contains("c.txt:2:") && e.contains("empty title"), "{e}");
    // Bytes that are not UTF-8 name the line.
    std::fs::write(&p, b"A\t0\nCaf\xe9\t1\n").unwrap();
    let e = Catalogue::read(&p).unwrap_err().to_string();
    assert!(e.contains("c.txt:2:") && e.contains("not UTF-8"), "{e}");
    // A title containing a tab keeps it: the id is after the last tab.
    std::fs::write(&p, "A\tB\t0\n").unwrap();
    assert_eq!(Catalogue::read(&p).unwrap().title(0), Some("A\tB"));
}
