//! Python literals as `str(list)` writes them: the list columns of the split CSVs.
//!
//! The official `process.py` writes lists with `csv.writer`, which calls `str()` on them, so a list column holds a
//! Python literal such as `['Abbey Road', "Don't Look Back", 'Caf\xe9']`, `[2273, 17]`, `[5.0]` or
//! `[1443744000]`. [`parse_str_list`] and friends read those literals (both quote styles, every escape that
//! `repr` emits plus the other Python string escapes); [`repr_str`], [`repr_float`] and the `write_*` functions
//! produce exactly the text CPython 3 produces, so a file read and written again is byte-identical.

use std::fmt::Write as _;

/// A parse failure inside one literal: the 0-based character offset and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    /// 0-based character offset inside the cell where the problem was found.
    pub offset: usize,
    /// What was expected.
    pub message: String,
}

impl std::fmt::Display for LiteralError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.offset, self.message)
    }
}

struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    _src: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor { chars: src.chars().collect(), pos: 0, _src: src }
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, LiteralError> {
        Err(LiteralError { offset: self.pos, message: message.into() })
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }
    fn expect(&mut self, c: char) -> Result<(), LiteralError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            let got = self.peek().map_or("end of cell".to_string(), |g| format!("`{g}`"));
            self.err(format!("expected `{c}`, found {got}"))
        }
    }

    /// Runs `item` for each element of a `[a, b, ...]` list (a trailing comma is accepted, as Python does).
    fn list(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), LiteralError>) -> Result<(), LiteralError> {
        self.skip_ws();
        self.expect('[')?;
        self.skip_ws();
        if self.peek() == Some(']') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                item(self)?;
                self.skip_ws();
                match self.peek() {
                    Some(',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if self.peek() == Some(']') {
                            self.pos += 1;
                            break;
                        }
                    }
                    Some(']') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => return self.err(format!("expected `,` or `]`, found `{c}`")),
                    None => return self.err("unterminated list: expected `]`"),
                }
            }
        }
        self.skip_ws();
        if let Some(c) = self.peek() {
            return self.err(format!("unexpected `{c}` after the closing `]`"));
        }
        Ok(())
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char, LiteralError> {
        let start = self.pos;
        let mut value = 0u32;
        for _ in 0..digits {
            let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else {
                self.pos = start;
                return self.err(format!("escape needs {digits} hex digits"));
            };
            value = value * 16 + d;
            self.pos += 1;
        }
        char::from_u32(value).map_or_else(|| self.err(format!("escape U+{value:X} is not a character")), Ok)
    }

    fn string(&mut self) -> Result<String, LiteralError> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            Some(c) => return self.err(format!("expected a quoted string, found `{c}`")),
            None => return self.err("expected a quoted string, found end of cell"),
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.err(format!("unterminated string: expected a closing {quote}"));
            };
            self.pos += 1;
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else {
                return self.err("a backslash ends the cell");
            };
            self.pos += 1;
            match e {
                '\\' | '\'' | '"' => out.push(e),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '0'..='7' => {
                    let mut value = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                self.pos += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                }
                'x' => out.push(self.hex_escape(2)?),
                'u' => out.push(self.hex_escape(4)?),
                'U' => out.push(self.hex_escape(8)?),
                // Python keeps an unknown escape as the backslash and the character.
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn number_text(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.chars[start..self.pos].iter().collect()
    }
}

/// Parses a Python list of strings, e.g. `['A', "B's"]`.
pub fn parse_str_list(cell: &str) -> Result<Vec<String>, LiteralError> {
    let mut cur = Cursor::new(cell);
    let mut out = Vec::new();
    cur.list(|c| {
        out.push(c.string()?);
        Ok(())
    })?;
    Ok(out)
}

fn parse_num_list<T: std::str::FromStr>(cell: &str, what: &str) -> Result<Vec<T>, LiteralError> {
    let mut cur = Cursor::new(cell);
    let mut out = Vec::new();
    cur.list(|c| {
        let start = c.pos;
        let text = c.number_text();
        match text.replace('_', "").parse::<T>() {
            Ok(v) => {
                out.push(v);
                Ok(())
            }
            Err(_) => {
                c.pos = start;
                c.err(format!("expected {what}, found `{text}`"))
            }
        }
    })?;
    Ok(out)
}

/// Parses a Python list of integers, e.g. `[2273, 17]`.
pub fn parse_int_list(cell: &str) -> Result<Vec<i64>, LiteralError> {
    parse_num_list(cell, "an integer")
}

/// Parses a Python list of numbers (ints or floats), e.g. `[5.0, 4]`.
pub fn parse_float_list(cell: &str) -> Result<Vec<f64>, LiteralError> {
    parse_num_list(cell, "a number")
}

/// Whether CPython's `str.isprintable()` holds for a non-ASCII character.
///
/// CPython escapes the characters of the Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs (except the ASCII
/// space) in `repr`. This covers the control, format, separator and private-use characters and the
/// noncharacters; unassigned code points (Cn) elsewhere are treated as printable, which only matters for text that
/// no real catalogue contains.
fn is_printable_non_ascii(c: char) -> bool {
    let u = c as u32;
    !matches!(u,
        0x80..=0xA0 | 0xAD
        | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x1680 | 0x180E
        | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x2064 | 0x2066..=0x206F | 0x3000
        | 0xD800..=0xF8FF | 0xFDD0..=0xFDEF | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE..=0xFFFF
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..=0x10FFFF)
        && (u & 0xFFFE) != 0xFFFE
}

/// Writes `s` as CPython's `repr(s)` does: single quotes unless the text has a `'` and no `"`.
pub fn repr_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() || is_printable_non_ascii(c) => out.push(c),
            c => {
                let u = c as u32;
                let _ = if u < 0x100 {
                    write!(out, "\\x{u:02x}")
                } else if u < 0x10000 {
                    write!(out, "\\u{u:04x}")
                } else {
                    write!(out, "\\U{u:08x}")
                };
            }
        }
    }
    out.push(quote);
}

/// Writes `x` as CPython's `repr(float)`: the shortest round-trip digits, `.0` on integral values, and
/// exponent notation (`1e+16`, `1e-05`) outside `[1e-4, 1e16)`.
pub fn repr_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
        let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
    } else {
        let _ = write!(out, "{x:?}");
    }
}

/// Writes a Python list literal of strings.
pub fn write_str_list(out: &mut String, items: &[String]) {
    write_list(out, items, |o, s| repr_str(o, s));
}

/// Writes a Python list literal of integers.
pub fn write_int_list<T: std::fmt::Display>(out: &mut String, items: &[T]) {
    write_list(out, items, |o, v| {
        let _ = write!(o, "{v}");
    });
}

/// Writes a Python list literal of floats.
pub fn write_float_list(out: &mut String, items: &[f64]) {
    write_list(out, items, |o, v| repr_float(o, *v));
}

fn write_list<T>(out: &mut String, items: &[T], mut item: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item(out, v);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(s: &str) -> String {
        let mut o = String::new();
        repr_str(&mut o, s);
        o
    }

    #[test]
    fn strings_round_trip_in_both_quote_styles() {
        let cell = r#"['Abbey Road', "Don't Look Back", 'Say \"Hi\"', 'a\\b', 'tab\there', 'Caf\xe9', 'x\u2028y']"#;
        let got = parse_str_list(cell).unwrap();
        assert_eq!(got, ["Abbey Road", "Don't Look Back", "Say \"Hi\"", "a\\b", "tab\there", "Café", "x\u{2028}y"]);
        let mut back = String::new();
        write_str_list(&mut back, &got);
        // CPython writes the accented letter as is (printable) and escapes the line separator.
        assert_eq!(back, r#"['Abbey Road', "Don't Look Back", 'Say "Hi"', 'a\\b', 'tab\there', 'Café', 'x\u2028y']"#);
    }

    #[test]
    fn repr_picks_the_quote_as_cpython() {
        assert_eq!(repr("plain"), "'plain'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(repr("nbsp\u{a0}x"), "'nbsp\\xa0x'");
        assert_eq!(repr("\u{1}"), "'\\x01'");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_int_list("[2273, 17]").unwrap(), [2273, 17]);
        assert_eq!(parse_int_list("[]").unwrap(), Vec::<i64>::new());
        assert_eq!(parse_float_list("[5.0, 4]").unwrap(), [5.0, 4.0]);
        let mut o = String::new();
        write_float_list(&mut o, &[5.0, 4.5, 1e16, 1e-5, 0.1]);
        assert_eq!(o, "[5.0, 4.5, 1e+16, 1e-05, 0.1]");
    }

    #[test]
    fn errors_name_the_offset() {
        let e = parse_str_list("['a', 'b").unwrap_err();
        assert!(e.message.contains("unterminated string"), "{e}");
        let e = parse_int_list("[1, x]").unwrap_err();
        assert_eq!(e.offset, 4, "{e}");
        let e = parse_str_list("['a'] junk").unwrap_err();
        assert!(e.message.contains("after the closing"), "{e}");
        assert!(parse_str_list("'a'").is_err());
    }
}
