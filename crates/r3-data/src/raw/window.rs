//! The time window of `process.py`: months, their Unix times and the 3-month move of the window start.

use crate::error::{Error, Result};

/// A calendar month, the unit of the time window (`--start 2017-10`, `--end 2018-11`).
///
/// Written `YYYY-MM` (zero-padded) by [`Display`](std::fmt::Display) and in configs; read from `YYYY-MM` or
/// `YYYY-M`. The dataset stem writes it without padding (`2017-1`), as the official script does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct YearMonth {
    /// The year, 1 to 9999.
    pub year: i32,
    /// The month, 1 (January) to 12 (December).
    pub month: u32,
}

impl YearMonth {
    /// A month, checked: `1 <= month <= 12` and `1 <= year <= 9999`. `key` names the setting in the error.
    pub fn new(key: &str, year: i32, month: u32) -> Result<Self> {
        let ym = YearMonth { year, month };
        ym.check(key)?;
        Ok(ym)
    }

    /// Checks the ranges of the fields (they are public, so a literal can hold anything).
    pub fn check(&self, key: &str) -> Result<()> {
        if !(1..=12).contains(&self.month) {
            return Err(Error::Setting {
                key: key.into(),
                message: format!("month {} is out of range: use 1 to 12 (e.g. {}-10)", self.month, self.year),
            });
        }
        if !(1..=9999).contains(&self.year) {
            return Err(Error::Setting {
                key: key.into(),
                message: format!("year {} is out of range: use 1 to 9999 (e.g. 2017)", self.year),
            });
        }
        Ok(())
    }

    /// Parses `YYYY-MM` (or `YYYY-M`); `key` names the setting in the error (e.g. `--start`).
    pub fn parse(key: &str, s: &str) -> Result<Self> {
        let bad = || Error::Setting {
            key: key.into(),
            message: format!("`{s}` is not a month: write YYYY-MM, e.g. 2017-10"),
        };
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let digits = |t: &str, max: usize| !t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(y, 4) || !digits(m, 2) {
            return Err(bad());
        }
        Self::new(key, y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
    }

    /// The Unix time (seconds) of the first second of the month, `{year}-{month}-01 00:00:00`, in UTC.
    ///
    /// NOTE: the official `process.py` computes `datetime.datetime(year, month, 1).timestamp()`, which uses the
    /// machine's local time zone, so its window edges move by that zone's offset from UTC. We use UTC so that
    /// the result does not depend on the machine; a review within a few hours of an edge may therefore fall on
    /// the other side than in files made on a machine in another zone.
    pub fn unix_utc(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, 1) * 86_400
    }

    /// The month `n` months earlier (`2017-1` minus 3 is `2016-10`).
    pub fn months_earlier(self, n: u32) -> Self {
        let total = i64::from(self.year) * 12 + i64::from(self.month) - 1 - i64::from(n);
        YearMonth { year: total.div_euclid(12) as i32, month: total.rem_euclid(12) as u32 + 1 }
    }

    /// The form used in dataset stems: no zero padding (`2017-1`, `2018-11`).
    pub fn stem_part(self) -> String {
        format!("{}-{}", self.year, self.month)
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for YearMonth {
    type Err = Error;
    /// Parses `YYYY-MM`; the error names the generic key `year-month` (use [`YearMonth::parse`] to name the
    /// actual setting).
    fn from_str(s: &str) -> Result<Self> {
        Self::parse("year-month", s)
    }
}

impl TryFrom<String> for YearMonth {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<YearMonth> for String {
    fn from(ym: YearMonth) -> String {
        ym.to_string()
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count from 1970-01-01 (Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_are_utc_month_starts() {
        // python3 -c "import datetime as d; print(int(d.datetime(2017,10,1,tzinfo=d.timezone.utc).timestamp()))"
        assert_eq!(YearMonth { year: 2017, month: 10 }.unix_utc(), 1_506_816_000);
        assert_eq!(YearMonth { year: 2018, month: 11 }.unix_utc(), 1_541_030_400);
        assert_eq!(YearMonth { year: 1970, month: 1 }.unix_utc(), 0);
        assert_eq!(YearMonth { year: 1996, month: 10 }.unix_utc(), 844_128_000);
        assert_eq!(YearMonth { year: 2000, month: 3 }.unix_utc(), 951_868_800); // after a leap day
        assert_eq!(YearMonth { year: 1969, month: 12 }.unix_utc(), -2_678_400);
    }

    #[test]
    fn the_window_start_moves_back_three_months_across_years() {
        let ym = |year, month| YearMonth { year, month };
        assert_eq!(ym(2017, 10).months_earlier(3), ym(2017, 7));
        assert_eq!(ym(2017, 1).months_earlier(3), ym(2016, 10));
        assert_eq!(ym(2017, 3).months_earlier(3), ym(2016, 12));
        assert_eq!(ym(2017, 4).months_earlier(3), ym(2017, 1));
        assert_eq!(ym(2017, 10).months_earlier(24), ym(2015, 10));
        assert_eq!(ym(2017, 1).stem_part(), "2017-1");
        assert_eq!(ym(2017, 1).to_string(), "2017-01");
    }

    #[test]
    fn parsing_names_the_key_and_the_format() {
        assert_eq!(YearMonth::parse("--start", "2017-10").unwrap(), YearMonth { year: 2017, month: 10 });
        assert_eq!("2017-1".parse::<YearMonth>().unwrap(), YearMonth { year: 2017, month: 1 });
        for bad in ["2017/10", "2017-13", "2017-0", "17-x", "", "2017-10-01"] {
            let e = YearMonth::parse("--start", bad).unwrap_err().to_string();
            assert!(e.contains("--start"), "{e}");
        }
        let e = YearMonth::parse("--end", "2017/10").unwrap_err().to_string();
        assert!(e.contains("YYYY-MM"), "{e}");
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 10_957, 17_532, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "{z} -> {y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(17_532), (2018, 1, 1));
    }
}
