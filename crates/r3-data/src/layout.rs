//! The BIGRec / D3 / R3 dataset layout: `info/{stem}.txt` and `{train,valid,test}/{stem}.csv`.
//!
//! The catalogue file has one line per item, `title<TAB>item_id`, ids dense from 0. A split file is a CSV with the
//! eleven columns of [`COLUMNS`]; the list columns are Python literals as the official `process.py` writes them
//! with `csv.writer` (`str(list)`), so both quote styles and backslash escapes occur. Lines end in `\r\n`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pylit;

/// The eleven columns of a split CSV, in file order.
pub const COLUMNS: [&str; 11] = [
    "user_id",
    "item_asins",
    "item_asin",
    "history_item_id",
    "item_id",
    "history_item_title",
    "item_title",
    "history_rating",
    "rating",
    "history_timestamp",
    "timestamp",
];

/// Item id: the 0-based line index of the item in `info/{stem}.txt`.
pub type ItemId = u32;

/// One of the three chronological splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The oldest 80% of the samples (by target time).
    Train,
    /// The next 10%.
    Valid,
    /// The newest 10%.
    Test,
}

impl Split {
    /// All splits in chronological order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// The folder name of the split (`train`, `valid`, `test`).
    pub fn dir_name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }

    /// The CSV path of the split for `stem` under `dir`.
    pub fn path(self, dir: &Path, stem: &str) -> PathBuf {
        dir.join(self.dir_name()).join(format!("{stem}.csv"))
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "train" => Ok(Split::Train),
            "valid" => Ok(Split::Valid),
            "test" => Ok(Split::Test),
            _ => Err(format!("unknown split `{s}`: use train, valid or test")),
        }
    }
}

/// One sample: a user's last ≤10 interactions (oldest first) and the next item, the prediction target.
///
/// The fields mirror the CSV columns one to one (see [`COLUMNS`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interaction {
    /// `user_id`: the Amazon reviewer id.
    pub user_id: String,
    /// `item_asins`: ASINs of the history items.
    pub history_asins: Vec<String>,
    /// `item_asin`: ASIN of the target item.
    pub item_asin: String,
    /// `history_item_id`: ids of the history items.
    pub history_item_ids: Vec<ItemId>,
    /// `item_id`: id of the target item.
    pub item_id: ItemId,
    /// `history_item_title`: titles of the history items.
    pub history_titles: Vec<String>,
    /// `item_title`: title of the target item.
    pub item_title: String,
    /// `history_rating`: star ratings of the history items.
    pub history_ratings: Vec<f64>,
    /// `rating`: star rating of the target interaction.
    pub rating: f64,
    /// `history_timestamp`: Unix times (seconds) of the history interactions.
    pub history_timestamps: Vec<i64>,
    /// `timestamp`: Unix time (seconds) of the target interaction.
    pub timestamp: i64,
}

impl Interaction {
    /// The number of history items.
    pub fn history_len(&self) -> usize {
        self.history_item_ids.len()
    }

    /// Checks the invariants that do not need the catalogue: the five history lists have one length and the
    /// times never decrease (history oldest first, then the target). Returns a message naming the offence.
    pub fn check_shape(&self) -> std::result::Result<(), String> {
        let n = self.history_item_ids.len();
        let lens = [
            ("item_asins", self.history_asins.len()),
            ("history_item_title", self.history_titles.len()),
            ("history_rating", self.history_ratings.len()),
            ("history_timestamp", self.history_timestamps.len()),
        ];
        for (name, len) in lens {
            if len != n {
                return Err(format!(
                    "history lists differ in length: `history_item_id` has {n} entries but `{name}` has {len}"
                ));
            }
        }
        let times = self.history_timestamps.iter().chain(std::iter::once(&self.timestamp));
        for (i, (a, b)) in times.clone().zip(times.skip(1)).enumerate() {
            if b < a {
                return Err(format!(
                    "timestamps decrease at history position {i}: {a} then {b} (histories are oldest first and \
                     precede the target)"
                ));
            }
        }
        Ok(())
    }

    /// Formats the record as one CSV row in the official column order (list columns as Python literals).
    fn to_cells(&self) -> [String; 11] {
        let mut c: [String; 11] = Default::default();
        c[0].clone_from(&self.user_id);
        pylit::write_str_list(&mut c[1], &self.history_asins);
        c[2].clone_from(&self.item_asin);
        pylit::write_int_list(&mut c[3], &self.history_item_ids);
        c[4] = self.item_id.to_string();
        pylit::write_str_list(&mut c[5], &self.history_titles);
        c[6].clone_from(&self.item_title);
        pylit::write_float_list(&mut c[7], &self.history_ratings);
        pylit::repr_float(&mut c[8], self.rating);
        pylit::write_int_list(&mut c[9], &self.history_timestamps);
        c[10] = self.timestamp.to_string();
        c
    }
}

/// The item catalogue: titles by id, and the ids of each title (a title may belong to several ids).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    titles: Vec<String>,
    by_title: HashMap<String, Vec<ItemId>>,
}

impl Catalogue {
    /// Builds a catalogue from titles in id order.
    pub fn from_titles(titles: Vec<String>) -> Self {
        let mut by_title: HashMap<String, Vec<ItemId>> = HashMap::with_capacity(titles.len());
        for (id, t) in titles.iter().enumerate() {
            by_title.entry(t.clone()).or_default().push(id as ItemId);
        }
        Catalogue { titles, by_title }
    }

    /// Reads `info/{stem}.txt`: one `title<TAB>id` line per item with ids 0, 1, 2, ... in order.
    ///
    /// The title is everything before the last tab, so a title that contains a tab still reads correctly.
    pub fn read(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                path: path.to_path_buf(),
                hint: "the catalogue `info/{stem}.txt` is missing: check --data and --stem".into(),
            },
            _ => Error::io(path, "open", e),
        })?;
        let mut titles = Vec::new();
        let mut reader = BufReader::new(file);
        let mut bytes = Vec::new();
        for lineno in 1u64.. {
            bytes.clear();
            if reader.read_until(b'\n', &mut bytes).map_err(|e| Error::io(path, "read", e))? == 0 {
                break;
            }
            let line = utf8_line(path, lineno, "title<TAB>item_id", &bytes)?;
            let line = line.strip_suffix('\n').unwrap_or(line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some((title, id)) = line.rsplit_once('\t') else {
                return Err(Error::parse(path, lineno, "title<TAB>item_id", "no tab: expected `title<TAB>item_id`"));
            };
            if title.trim().is_empty() {
                return Err(Error::parse(
                    path,
                    lineno,
                    "title",
                    format!("item {} has an empty title: every item needs its title before the tab", id.trim()),
                ));
            }
            let id: usize = id
                .trim()
                .parse()
                .map_err(|_| Error::parse(path, lineno, "item_id", format!("`{id}` is not a non-negative integer")))?;
            if id != titles.len() {
                return Err(Error::invalid(
                    path,
                    lineno,
                    format!(
                        "item id {id} on line {lineno}: ids must be dense and in order (expected {})",
                        titles.len()
                    ),
                ));
            }
            titles.push(title.to_string());
        }
        if titles.is_empty() {
            return Err(Error::invalid(path, 1, "the catalogue is empty"));
        }
        Ok(Self::from_titles(titles))
    }

    /// Writes the catalogue atomically (a temporary file renamed into place), `title<TAB>id\n` per item.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, |w| {
            for (id, t) in self.titles.iter().enumerate() {
                writeln!(w, "{t}\t{id}")?;
            }
            Ok(())
        })
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.titles.len()
    }

    /// Whether the catalogue has no items.
    pub fn is_empty(&self) -> bool {
        self.titles.is_empty()
    }

    /// The title of `id`, if it is in the catalogue.
    pub fn title(&self, id: ItemId) -> Option<&str> {
        self.titles.get(id as usize).map(String::as_str)
    }

    /// All titles in id order.
    pub fn titles(&self) -> &[String] {
        &self.titles
    }

    /// The ids that carry `title` (several ids may share one title); empty for an unknown title.
    pub fn ids_of(&self, title: &str) -> &[ItemId] {
        self.by_title.get(title).map_or(&[], Vec::as_slice)
    }

    /// The titles carried by more than one id, with their ids, sorted by title.
    pub fn shared_titles(&self) -> Vec<(&str, &[ItemId])> {
        let mut v: Vec<_> = self
            .by_title
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(t, ids)| (t.as_str(), ids.as_slice()))
            .collect();
        v.sort_unstable();
        v
    }

    /// Checks a row against the catalogue: every id inside it, and each id's title equal to the catalogue's.
    pub fn check_row(&self, row: &Interaction) -> std::result::Result<(), String> {
        let n = self.len();
        let history = row.history_item_ids.iter().zip(&row.history_titles).map(|(id, t)| ("history_item_id", *id, t));
        for (col, id, title) in history.chain(std::iter::once(("item_id", row.item_id, &row.item_title))) {
            match self.title(id) {
                None => return Err(format!("`{col}` {id} is outside the catalogue of {n} items (ids 0..{n})")),
                Some(t) if t != title => {
                    return Err(format!("`{col}` {id} is titled `{title}` here but `{t}` in the catalogue"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The number of distinct titles.
    pub fn distinct_titles(&self) -> usize {
        self.by_title.len()
    }
}

/// Physical 1-based line numbers of byte offsets.
///
/// The csv reader's own line counter lags by one on `\r\n` files (a record starts at the `\n` of the previous
/// terminator), so lines are counted from the bytes: the line of offset `b` is one plus the number of `\n` in
/// `bytes[..=b]`.
struct LineIndex {
    newlines: Vec<u64>,
}

/// The text of line `line` of `path` (`bytes`, as read), or an error naming the file, the line and the first byte
/// that is not UTF-8 (a file saved in Latin-1 or Windows-1252, or a binary file given by mistake).
///
/// # Errors
/// [`Error::Parse`] at `path:line`, column `column`.
pub fn utf8_line<'a>(path: &Path, line: u64, column: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        Error::parse(
            path,
            line,
            column,
            format!(
                "byte {} of the line (0x{:02x}) is not UTF-8: save the file as UTF-8",
                at + 1,
                bytes.get(at).copied().unwrap_or(0)
            ),
        )
    })
}

impl LineIndex {
    fn new(bytes: &[u8]) -> Self {
        LineIndex { newlines: bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i as u64).collect() }
    }
    fn line_of(&self, byte: u64) -> u64 {
        self.newlines.partition_point(|&n| n <= byte) as u64 + 1
    }
}

fn csv_err(path: &Path, lines: &LineIndex, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| lines.line_of(p.byte()));
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, "read", io),
        csv::ErrorKind::Utf8 { err, .. } => Error::parse(path, line, format!("field {}", err.field() + 1), "not UTF-8"),
        csv::ErrorKind::UnequalLengths { len, expected_len, .. } => Error::parse(
            path,
            line,
            "(row)",
            format!("{len} fields where the header has {expected_len}: quote fields that contain commas"),
        ),
        other => Error::parse(path, line, "(row)", format!("{other:?}")),
    }
}

/// Reads one split CSV. Each row is parsed and shape-checked ([`Interaction::check_shape`]); a malformed row is
/// an error naming the file, line and column. Nothing is dropped.
pub fn read_split(path: &Path) -> Result<Vec<Interaction>> {
    read_split_checked(path, None)
}

/// [`read_split`], and with a catalogue also [`Catalogue::check_row`] on each row, so that the error carries the
/// row's physical line.
fn read_split_checked(path: &Path, catalogue: Option<&Catalogue>) -> Result<Vec<Interaction>> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing {
            path: path.to_path_buf(),
            hint: "the split CSV is missing: check --data and --stem (expected `{train,valid,test}/{stem}.csv`)".into(),
        },
        _ => Error::io(path, "read", e),
    })?;
    let lines = LineIndex::new(&bytes);
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes.as_slice());
    let header = rdr.headers().map_err(|e| csv_err(path, &lines, e))?.clone();
    if header.iter().ne(COLUMNS.iter().copied()) {
        return Err(Error::parse(
            path,
            1,
            "(header)",
            format!(
                "expected the columns `{}`, found `{}`",
                COLUMNS.join(","),
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(path, &lines, e)),
        }
        let line = record.position().map_or(0, |p| lines.line_of(p.byte()));
        let row = parse_row(&record).map_err(|(col, msg)| Error::parse(path, line, COLUMNS[col], msg))?;
        row.check_shape().map_err(|m| Error::invalid(path, line, m))?;
        if let Some(cat) = catalogue {
            cat.check_row(&row).map_err(|m| Error::invalid(path, line, m))?;
        }
        out.push(row);
    }
    Ok(out)
}

fn parse_row(r: &csv::StringRecord) -> std::result::Result<Interaction, (usize, String)> {
    let cell = |i: usize| r.get(i).unwrap_or("");
    let lit = |i: usize, e: pylit::LiteralError| (i, format!("{e} in `{}`", cell(i)));
    let int = |i: usize| -> std::result::Result<i64, (usize, String)> {
        cell(i).trim().parse::<i64>().map_err(|_| (i, format!("`{}` is not an integer", cell(i))))
    };
    let id = |i: usize, v: i64| -> std::result::Result<ItemId, (usize, String)> {
        ItemId::try_from(v).map_err(|_| (i, format!("item id {v} is out of range")))
    };
    let history_item_ids = pylit::parse_int_list(cell(3))
        .map_err(|e| lit(3, e))?
        .into_iter()
        .map(|v| id(3, v))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Interaction {
        user_id: cell(0).to_string(),
        history_asins: pylit::parse_str_list(cell(1)).map_err(|e| lit(1, e))?,
        item_asin: cell(2).to_string(),
        history_item_ids,
        item_id: id(4, int(4)?)?,
        history_titles: pylit::parse_str_list(cell(5)).map_err(|e| lit(5, e))?,
        item_title: cell(6).to_string(),
        history_ratings: pylit::parse_float_list(cell(7)).map_err(|e| lit(7, e))?,
        rating: cell(8).trim().parse().map_err(|_| (8, format!("`{}` is not a number", cell(8))))?,
        history_timestamps: pylit::parse_int_list(cell(9)).map_err(|e| lit(9, e))?,
        timestamp: int(10)?,
    })
}

/// Writes one split CSV atomically, byte-compatible with Python's `csv.writer` (minimal quoting, `\r\n`).
pub fn write_split(path: &Path, rows: &[Interaction]) -> Result<()> {
    write_atomic(path, |w| {
        let mut wtr = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(w);
        let to_io = |e: csv::Error| match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        };
        wtr.write_record(COLUMNS).map_err(to_io)?;
        for row in rows {
            wtr.write_record(row.to_cells()).map_err(to_io)?;
        }
        wtr.flush()
    })
}

/// Writes `path` through a temporary file in the same folder, then renames it into place, so a reader never
/// sees a half-written file and an interrupted write leaves the old file intact. Creates the parent folder.
pub fn write_atomic(path: &Path, body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create folder", e))?;
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 16, file);
        body(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, "write", e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename into place", e))
}

/// A whole dataset: the catalogue and the three splits of one stem.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The file stem, e.g. `CDs_and_Vinyl_5_2015-10-2018-11`.
    pub stem: String,
    /// The item catalogue.
    pub catalogue: Catalogue,
    /// The train split.
    pub train: Vec<Interaction>,
    /// The validation split.
    pub valid: Vec<Interaction>,
    /// The test split.
    pub test: Vec<Interaction>,
}

impl Dataset {
    /// Loads `info/{stem}.txt` and the three splits from `dir`, and checks every row against the catalogue
    /// ([`Catalogue::check_row`]).
    pub fn load(dir: &Path, stem: &str) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Missing {
                path: dir.to_path_buf(),
                hint: "the data folder does not exist: pass --data DIR (a folder with info/, train/, valid/, test/)"
                    .into(),
            });
        }
        let catalogue = Catalogue::read(&dir.join("info").join(format!("{stem}.txt")))?;
        let read = |split: Split| read_split_checked(&split.path(dir, stem), Some(&catalogue));
        let (train, valid, test) = (read(Split::Train)?, read(Split::Valid)?, read(Split::Test)?);
        Ok(Dataset { stem: stem.to_string(), catalogue, train, valid, test })
    }

    /// The rows of one split.
    pub fn split(&self, split: Split) -> &[Interaction] {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }

    /// Checks every row against the catalogue ([`Catalogue::check_row`]); the error names the split file under
    /// `dir` and the row's line, counting one line per row after the header.
    pub fn validate(&self, dir: &Path) -> Result<()> {
        for split in Split::ALL {
            for (i, row) in self.split(split).iter().enumerate() {
                self.catalogue
                    .check_row(row)
                    .map_err(|m| Error::invalid(split.path(dir, &self.stem), i as u64 + 2, m))?;
            }
        }
        Ok(())
    }

    /// Writes the catalogue and the three splits under `dir` (atomically, file by file).
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.catalogue.write(&dir.join("info").join(format!("{}.txt", self.stem)))?;
        for split in Split::ALL {
            write_split(&split.path(dir, &self.stem), self.split(split))?;
        }
        Ok(())
    }
}
