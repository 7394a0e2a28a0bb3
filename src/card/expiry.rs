//! Expiry dates, judged against an injected clock.

use super::Verdict;
use crate::Error;

/// How far ahead an expiry may be, by default (cards are issued for at most a few years; 20
/// leaves room while still catching typos such as 2092).
pub const DEFAULT_MAX_YEARS_AHEAD: u16 = 20;

/// The current month, as the validity rule needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Today {
    year: u16,
    month: u8,
}

impl Today {
    /// A fixed month (tests, or a caller with its own clock). Out-of-range months are clamped.
    pub fn new(year: u16, month: u8) -> Today {
        Today {
            year,
            month: month.clamp(1, 12),
        }
    }

    /// The month it still is *somewhere on earth* at `unix_seconds`: a card stays valid until
    /// the last day of its month has ended in the last time zone (UTC−12, "anywhere on earth").
    pub fn from_unix(unix_seconds: i64) -> Today {
        let days = (unix_seconds - 12 * 3600).div_euclid(86_400);
        let (year, month) = civil_from_days(days);
        Today {
            year: u16::try_from(year.clamp(0, 9999)).unwrap_or(9999),
            month,
        }
    }

    /// The year, e.g. 2026.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }
}

/// Year and month of a day count since 1970-01-01 (proleptic Gregorian calendar; the
/// era-based method from Howard Hinnant's "chrono-compatible low-level date algorithms").
fn civil_from_days(days: i64) -> (i64, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u8::try_from(month).unwrap_or(1))
}

/// A valid, not yet expired month and year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    month: u8,
    year: u16,
}

/// Splits one `MM / YY` field (any of `/`, spaces, `-` as separator) into month and year.
/// Without a separator, `MMYY` and `MMYYYY` are read as the digits fall.
pub fn split_expiry(input: &str) -> (String, String) {
    let input = input.trim();
    if let Some((m, y)) = input.split_once(['/', '-']) {
        return (m.trim().to_owned(), y.trim().to_owned());
    }
    let compact: String = input.chars().filter(|c| *c != ' ').collect();
    if compact.chars().all(|c| c.is_ascii_digit()) && compact.len() > 2 {
        // All ASCII, so byte 2 is a char boundary; `get` keeps core's slice panic out of the wasm.
        if let (Some(m), Some(y)) = (compact.get(..2), compact.get(2..)) {
            return (m.to_owned(), y.to_owned());
        }
    }
    (compact, String::new())
}

/// The month and year as a form gives them. With `year` empty, `month` may hold the whole
/// `MM / YY` field: it is split when it has a `/` or `-` (see [`split_expiry`]). This is the one
/// rule for `validateExpiry`, `validateCard` and the snippet's expiry input.
pub fn expiry_fields(month: &str, year: &str) -> (String, String) {
    if year.is_empty() && month.contains(['/', '-']) {
        split_expiry(month)
    } else {
        (month.to_owned(), year.to_owned())
    }
}

fn month_of(input: &str) -> Result<u8, Error> {
    let m = input.trim();
    if m.is_empty() || m == "0" {
        return Err(Error::IncompleteExpiry);
    }
    if m.len() > 2 || !m.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidExpiryMonth);
    }
    match m.parse::<u8>() {
        Ok(v @ 1..=12) => Ok(v),
        _ => Err(Error::InvalidExpiryMonth),
    }
}

fn year_of(input: &str, today: Today) -> Result<u16, Error> {
    let y = input.trim();
    if !y.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidExpiryYear);
    }
    match y.len() {
        0 | 1 | 3 => Err(Error::IncompleteExpiry),
        // Two digits are this century's, as printed on the card.
        2 => Ok(today.year / 100 * 100 + y.parse::<u16>().map_err(|_| Error::InvalidExpiryYear)?),
        4 => y.parse::<u16>().map_err(|_| Error::InvalidExpiryYear),
        _ => Err(Error::InvalidExpiryYear),
    }
}

impl Expiry {
    /// Parses a month (`"1"`, `"01"` … `"12"`) and a 2- or 4-digit year, rejecting dates in the
    /// past and more than `max_years_ahead` years ahead.
    pub fn parse_with(
        month: &str,
        year: &str,
        today: Today,
        max_years_ahead: u16,
    ) -> Result<Expiry, Error> {
        let m = month_of(month);
        let y = year_of(year, today);
        let (m, y) = match (m, y) {
            (Ok(m), Ok(y)) => (m, y),
            // A wrong month is reported before an unfinished year.
            (Err(e), _) if e != Error::IncompleteExpiry => return Err(e),
            (_, Err(e)) if e != Error::IncompleteExpiry => return Err(e),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        if (y, m) < (today.year, today.month) {
            return Err(Error::InvalidExpiryYearPast);
        }
        if y > today.year.saturating_add(max_years_ahead) {
            return Err(Error::InvalidExpiryYear);
        }
        Ok(Expiry { month: m, year: y })
    }

    /// [`Expiry::parse_with`] and the default 20-year horizon.
    pub fn parse(month: &str, year: &str, today: Today) -> Result<Expiry, Error> {
        Self::parse_with(month, year, today, DEFAULT_MAX_YEARS_AHEAD)
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }
}

/// The as-you-type verdict on an expiry (never panics).
pub fn validate_expiry(month: &str, year: &str, today: Today) -> Verdict {
    Verdict::from_result(Expiry::parse(month, year, today))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1));
        assert_eq!(civil_from_days(31), (1970, 2));
        assert_eq!(civil_from_days(-1), (1969, 12));
        // 2000-02-29 and 2000-03-01
        assert_eq!(civil_from_days(11_016), (2000, 2));
        assert_eq!(civil_from_days(11_017), (2000, 3));
    }

    #[test]
    fn today_is_anywhere_on_earth() {
        // 2026-12-01T00:00:00Z: it is still November 30 in UTC−12.
        assert_eq!(Today::from_unix(1_796_083_200), Today::new(2026, 11));
        // 12:00Z on Dec 1 is midnight in UTC−12: December has begun everywhere.
        assert_eq!(
            Today::from_unix(1_796_083_200 + 12 * 3600),
            Today::new(2026, 12)
        );
        assert_eq!(
            Today::from_unix(1_796_083_200 + 12 * 3600 - 1),
            Today::new(2026, 11)
        );
    }

    #[test]
    fn split_one_field() {
        assert_eq!(split_expiry("12 / 30"), ("12".into(), "30".into()));
        assert_eq!(split_expiry("1/2030"), ("1".into(), "2030".into()));
        assert_eq!(split_expiry("1230"), ("12".into(), "30".into()));
        assert_eq!(split_expiry("12"), ("12".into(), String::new()));
        assert_eq!(split_expiry(""), (String::new(), String::new()));
    }

    #[test]
    fn a_whole_field_in_the_month() {
        let f = |m: &str, y: &str| expiry_fields(m, y);
        assert_eq!(f("12 / 30", ""), ("12".into(), "30".into()));
        assert_eq!(f("12-30", ""), ("12".into(), "30".into()));
        assert_eq!(f("12", "30"), ("12".into(), "30".into()));
        // Without a separator the month stays as typed, so "1230" is a wrong month.
        assert_eq!(f("1230", ""), ("1230".into(), String::new()));
        assert_eq!(f("1/2", "30"), ("1/2".into(), "30".into()));
    }
}
