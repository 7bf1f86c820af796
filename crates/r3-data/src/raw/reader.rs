//! Streaming readers of the raw Amazon 2018 JSON-lines files (plain or gzip) into compact in-memory form.
//!
//! A reviews file becomes one 24-byte [`Review`] per line, in file order, with reviewer ids and ASINs interned
//! into `u32` indices ([`Interner`]); a metadata file keeps only the titles of the ASINs that some review
//! mentions ([`Metadata`]). Each line is parsed with `serde_json` into a visitor that looks at the needed fields
//! and skips the rest without allocating, so memory is bounded by the compact records and the interned strings.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::Progress;
use crate::error::{Error, Result};

mod title;
use title::acceptable;
pub use title::{TitleOutcome, check_title, clean_title_once};

/// A small multiplicative hasher (the "Fx" hash of rustc): much faster than SipHash on short ASIN and reviewer
/// strings, and the inputs are not adversarial.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Interned strings: each distinct string gets the next `u32` index, in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: HashMap<Arc<str>, u32, BuildHasherDefault<FxHasher>>,
    names: Vec<Arc<str>>,
}

impl Interner {
    /// The index of `s`, adding it when new; `None` once `u32::MAX` strings are interned.
    pub fn intern(&mut self, s: &str) -> Option<u32> {
        if let Some(&i) = self.map.get(s) {
            return Some(i);
        }
        let i = u32::try_from(self.names.len()).ok().filter(|&i| i < u32::MAX)?;
        let name: Arc<str> = Arc::from(s);
        self.map.insert(Arc::clone(&name), i);
        self.names.push(name);
        Some(i)
    }

    /// The index of `s`, if interned.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    /// The string of index `i`.
    ///
    /// # Panics
    /// When `i` was not handed out by this interner.
    pub fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }

    /// The number of distinct strings.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One review line, compact: reviewer and item as [`Interner`] indices, `unixReviewTime` and `overall`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Review {
    /// Index of `reviewerID` in [`Reviews::users`].
    pub user: u32,
    /// Index of `asin` in [`Reviews::items`].
    pub item: u32,
    /// `unixReviewTime` (seconds).
    pub time: i64,
    /// `overall` (the star rating).
    pub rating: f64,
}

/// A whole reviews file in compact form.
#[derive(Debug, Default, Clone)]
pub struct Reviews {
    /// Reviewer ids in order of first appearance.
    pub users: Interner,
    /// ASINs in order of first appearance.
    pub items: Interner,
    /// One record per line, in file order.
    pub records: Vec<Review>,
}

/// Counts a reader's bytes into a [`Progress`].
struct Counting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// The lines of a plain or gzip JSON-lines file (gzip is detected by its magic bytes `1f 8b`; concatenated
/// gzip members are read as one stream).
struct JsonLines<'a> {
    path: &'a Path,
    reader: Box<dyn BufRead + 'a>,
    gzip: bool,
    buf: Vec<u8>,
    line: u64,
    progress: &'a dyn Progress,
}

impl<'a> JsonLines<'a> {
    fn open(path: &'a Path, stage: &str, what: &str, progress: &'a dyn Progress) -> Result<Self> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                path: path.to_path_buf(),
                hint: format!("the raw {what} file does not exist: check the path (plain or .gz JSON lines)"),
            },
            _ => Error::io(path, "open", e),
        })?;
        let total = file.metadata().ok().map(|m| m.len());
        progress.stage(stage, total);
        let mut raw = BufReader::with_capacity(1 << 16, Counting { inner: file, progress });
        let head = raw.fill_buf().map_err(|e| Error::io(path, "read", e))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead + 'a> = if gzip {
            Box::new(BufReader::with_capacity(1 << 16, flate2::bufread::MultiGzDecoder::new(raw)))
        } else {
            Box::new(raw)
        };
        Ok(JsonLines { path, reader, gzip, buf: Vec::with_capacity(1 << 12), line: 0, progress })
    }

    /// The next line (without its end) and its 1-based number, or `None` at the end of the file.
    fn next_line(&mut self) -> Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        let lineno = self.line + 1;
        let n = match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(n) => n,
            Err(e) if self.gzip => {
                return Err(Error::parse(
                    self.path,
                    lineno,
                    "(gzip)",
                    format!("corrupt or truncated gzip stream: {e}: re-download the file or check it with `gzip -t`"),
                ));
            }
            Err(e) => return Err(Error::io(self.path, "read", e)),
        };
        if n == 0 {
            return Ok(None);
        }
        self.line = lineno;
        let mut line = self.buf.as_slice();
        if let Some(l) = line.strip_suffix(b"\n") {
            line = l.strip_suffix(b"\r").unwrap_or(l);
        }
        crate::utf8_line(self.path, lineno, "(line)", line)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::parse(self.path, lineno, "(line)", "empty line: expected one JSON object per line"));
        }
        Ok(Some((lineno, line)))
    }

    fn finish(self) -> u64 {
        self.progress.finish_stage();
        self.line
    }
}

/// The column reported when a JSON error happens outside the value of a field we read.
const NO_FIELD: &str = "(json)";

/// Turns a `serde_json` error on line `line` into an error naming the file, the line and the field.
fn json_error(path: &Path, line: u64, field: &str, e: serde_json::Error) -> Error {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    let what = match e.classify() {
        serde_json::error::Category::Eof => "truncated JSON line",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "bad value",
        serde_json::error::Category::Io => "read error",
    };
    Error::parse(path, line, field, format!("{what}: {msg} (byte {} of the line)", e.column()))
}

/// A JSON string that borrows from the line when it has no escapes.
struct Str<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads a map key and returns its index in `fields` (`None` for a key we skip).
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Option<usize>, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Option<usize>, E> {
        Ok(self.0.iter().position(|f| *f == v))
    }
}

const REVIEW_FIELDS: &[&str] = &["reviewerID", "asin", "overall", "unixReviewTime"];

/// The fields of one review line that `process.py` reads.
struct RawReview<'de> {
    user: Cow<'de, str>,
    item: Cow<'de, str>,
    rating: f64,
    time: i64,
}

/// Parses one review object, recording in `field` which field is being read so that errors can name it.
struct ReviewSeed<'c> {
    field: &'c Cell<&'static str>,
}

impl<'de> DeserializeSeed<'de> for ReviewSeed<'_> {
    type Value = RawReview<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<RawReview<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReviewSeed<'_> {
    type Value = RawReview<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object (one review per line)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawReview<'de>, A::Error> {
        let (mut user, mut item, mut rating, mut time) = (None, None, None, None);
        loop {
            self.field.set(NO_FIELD);
            let Some(key) = map.next_key_seed(Key(REVIEW_FIELDS))? else { break };
            let Some(k) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            self.field.set(REVIEW_FIELDS[k]);
            match k {
                0 => user = Some(map.next_value::<Str<'de>>()?.0),
                1 => item = Some(map.next_value::<Str<'de>>()?.0),
                2 => rating = Some(map.next_value::<f64>()?),
                _ => time = Some(map.next_value::<i64>()?),
            }
        }
        let missing = |name: &'static str| {
            self.field.set(name);
            de::Error::missing_field(name)
        };
        Ok(RawReview {
            user: user.ok_or_else(|| missing("reviewerID"))?,
            item: item.ok_or_else(|| missing("asin"))?,
            rating: rating.ok_or_else(|| missing("overall"))?,
            time: time.ok_or_else(|| missing("unixReviewTime"))?,
        })
    }
}

/// Reads a reviews file (`{category}_5.json[.gz]` or `{category}.json[.gz]`): one JSON object per line with
/// `reviewerID` (string), `asin` (string), `overall` (number) and `unixReviewTime` (integer); other fields are
/// skipped.
///
/// A malformed line (truncated or invalid JSON, a missing field, a field of the wrong type) or a corrupt gzip
/// stream is an error naming the file, the 1-based line and the field. Progress is reported in bytes of the file
/// as stored (compressed for gzip).
pub fn read_reviews(path: &Path, progress: &dyn Progress) -> Result<Reviews> {
    let mut lines = JsonLines::open(path, "reviews", "reviews", progress)?;
    let field = Cell::new(NO_FIELD);
    let mut out = Reviews::default();
    while let Some((lineno, line)) = lines.next_line()? {
        let mut de = serde_json::Deserializer::from_slice(line);
        let raw = ReviewSeed { field: &field }
            .deserialize(&mut de)
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| json_error(path, lineno, field.get(), e))?;
        let too_many = |what: &str| Error::invalid(path, lineno, format!("more than {} distinct {what}", u32::MAX - 1));
        let user = out.users.intern(&raw.user).ok_or_else(|| too_many("reviewers"))?;
        let item = out.items.intern(&raw.item).ok_or_else(|| too_many("ASINs"))?;
        out.records.push(Review { user, item, time: raw.time, rating: raw.rating });
    }
    let n = lines.finish();
    tracing::info!(
        path = %path.display(),
        lines = n,
        users = out.users.len(),
        items = out.items.len(),
        "read the reviews"
    );
    Ok(out)
}

/// Per-record counts of a metadata file (over all records, whether or not a review mentions the ASIN), from the
/// first cleaning pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetadataStats {
    /// Lines (records) in the file.
    pub lines: u64,
    /// Records whose ASIN some review mentions (only these are kept in memory).
    pub matched: u64,
    /// Records without a `title`.
    pub missing: u64,
    /// Records whose title contains `<span id`.
    pub span_id: u64,
    /// Records whose cleaned title has at most one character.
    pub too_short: u64,
    /// Records whose cleaned title has more than 20 words.
    pub too_long: u64,
    /// Records whose cleaned title is kept.
    pub kept: u64,
}

/// The title field of one matched metadata record, before cleaning.
#[derive(Debug, Clone)]
enum RawTitle {
    /// No `title`, or one containing `<span id`: the ASIN is removed whatever the pass.
    Rejected,
    /// The title as in the file.
    Text(Box<str>),
}

/// The metadata records of the reviewed ASINs, in file order, with their raw titles.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    records: Vec<(u32, RawTitle)>,
    /// Counts over the whole file.
    pub stats: MetadataStats,
}

impl Metadata {
    /// The number of records of reviewed ASINs that have a title (before cleaning; `<span id` titles do not count).
    pub fn titled(&self) -> usize {
        self.records.iter().filter(|(_, t)| matches!(t, RawTitle::Text(_))).count()
    }
}

impl Metadata {
    /// `id_title` after the metadata stage of `process.py`, as a title per item index of the [`Interner`] given
    /// to [`read_metadata`]: `Some(title)` when the item may be used, `None` when it is in `remove_items` (no
    /// record, or some record without an acceptable title: removal wins over a title from another record of the
    /// same ASIN). A later record of the same ASIN overwrites an earlier title.
    ///
    /// NOTE: `process.py` cleans the titles in place (`meta['title'] = meta["title"].replace(...)`) and, when too
    /// few items survive, calls itself again on the same, already cleaned, metadata list. After `w` moves of the
    /// window the titles have therefore been cleaned `w + 1` times (`&amp;quot;` becomes `&quot;`, then `"`,
    /// which the next strip may remove). `passes` is that number, and we reproduce it to match the official
    /// files row for row.
    pub fn titles(&self, n_items: usize, passes: usize) -> Vec<Option<String>> {
        let mut p = TitlePasses::new(self);
        for _ in 1..passes {
            p.next_pass();
        }
        p.id_title(n_items)
    }

    /// The number of metadata records kept in memory (those of reviewed ASINs).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record of a reviewed ASIN was found.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The titles of the matched metadata records after some number of cleaning passes (see [`Metadata::titles`]),
/// advanced one pass at a time: a pass only re-cleans the titles the previous pass changed, so many window moves
/// stay cheap.
pub(crate) struct TitlePasses<'m> {
    meta: &'m Metadata,
    /// The current title of each record (`None`: no title or `<span id`).
    texts: Vec<Option<String>>,
    /// Whether the record's title is a fixed point of the cleaning.
    settled: Vec<bool>,
}

impl<'m> TitlePasses<'m> {
    /// The titles after the first pass.
    pub(crate) fn new(meta: &'m Metadata) -> Self {
        let texts: Vec<Option<String>> = meta
            .records
            .iter()
            .map(|(_, raw)| match raw {
                RawTitle::Rejected => None,
                RawTitle::Text(t) => Some(clean_title_once(t)),
            })
            .collect();
        let settled = texts.iter().map(Option::is_none).collect();
        TitlePasses { meta, texts, settled }
    }

    /// Cleans every title once more.
    pub(crate) fn next_pass(&mut self) {
        for (text, settled) in self.texts.iter_mut().zip(&mut self.settled) {
            if let (Some(t), false) = (text.as_mut(), *settled) {
                let next = clean_title_once(t);
                if next == *t {
                    *settled = true;
                } else {
                    *t = next;
                }
            }
        }
    }

    /// `id_title` minus `remove_items` per item index: the last acceptable title of the item's records, or
    /// `None` when some record of the item is rejected or the item has no record.
    pub(crate) fn id_title(&self, n_items: usize) -> Vec<Option<String>> {
        let mut title: Vec<Option<String>> = vec![None; n_items];
        let mut removed = vec![false; n_items];
        for ((item, _), text) in self.meta.records.iter().zip(&self.texts) {
            let i = *item as usize;
            match text {
                Some(t) if acceptable(t) => title[i] = Some(t.clone()),
                _ => removed[i] = true,
            }
        }
        for (t, r) in title.iter_mut().zip(removed) {
            if r {
                *t = None;
            }
        }
        title
    }
}

const META_FIELDS: &[&str] = &["asin", "title"];

struct RawMeta<'de> {
    asin: Cow<'de, str>,
    title: Option<Cow<'de, str>>,
}

struct MetaSeed<'c> {
    field: &'c Cell<&'static str>,
}

impl<'de> DeserializeSeed<'de> for MetaSeed<'_> {
    type Value = RawMeta<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<RawMeta<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed<'_> {
    type Value = RawMeta<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object (one item per line)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawMeta<'de>, A::Error> {
        let (mut asin, mut title) = (None, None);
        loop {
            self.field.set(NO_FIELD);
            let Some(key) = map.next_key_seed(Key(META_FIELDS))? else { break };
            let Some(k) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            self.field.set(META_FIELDS[k]);
            if k == 0 {
                asin = Some(map.next_value::<Str<'de>>()?.0);
            } else {
                title = Some(map.next_value::<Str<'de>>()?.0);
            }
        }
        let asin = asin.ok_or_else(|| {
            self.field.set("asin");
            de::Error::missing_field("asin")
        })?;
        Ok(RawMeta { asin, title })
    }
}

/// Reads a metadata file (`meta_{category}.json[.gz]`): one JSON object per line with `asin` (string) and an
/// optional `title` (string); other fields are skipped.
///
/// Only the records of ASINs in `items` (the reviewed ones) are kept, with their raw titles; the
/// [`MetadataStats`] count all records. Errors name the file, line and field as in [`read_reviews`].
pub fn read_metadata(path: &Path, items: &Interner, progress: &dyn Progress) -> Result<Metadata> {
    let mut lines = JsonLines::open(path, "metadata", "metadata", progress)?;
    let field = Cell::new(NO_FIELD);
    let mut out = Metadata::default();
    while let Some((lineno, line)) = lines.next_line()? {
        let mut de = serde_json::Deserializer::from_slice(line);
        let raw = MetaSeed { field: &field }
            .deserialize(&mut de)
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| json_error(path, lineno, field.get(), e))?;
        let outcome = check_title(raw.title.as_deref(), 1);
        let s = &mut out.stats;
        match outcome {
            TitleOutcome::Missing => s.missing += 1,
            TitleOutcome::SpanId => s.span_id += 1,
            TitleOutcome::TooShort(_) => s.too_short += 1,
            TitleOutcome::TooLong(_) => s.too_long += 1,
            TitleOutcome::Kept(_) => s.kept += 1,
        }
        if let Some(item) = items.get(&raw.asin) {
            s.matched += 1;
            let title = match (outcome, raw.title) {
                (TitleOutcome::Missing | TitleOutcome::SpanId, _) | (_, None) => RawTitle::Rejected,
                (_, Some(t)) => RawTitle::Text(t.into()),
            };
            out.records.push((item, title));
        }
    }
    out.stats.lines = lines.finish();
    tracing::info!(path = %path.display(), stats = ?out.stats, "read the metadata");
    Ok(out)
}

#[cfg(test)]
mod tests;
