//! Issuer metadata from a BIN table in the binlist CSV format (`--bin-table FILE`).
//!
//! Columns are found by name in the header: `iin_start`, `iin_end` (empty for a single IIN),
//! `type` (debit/credit), `prepaid`, `country` (ISO 3166-1 alpha-2) and `bank_name`. The most
//! specific (longest) matching IIN wins.

use std::fmt;
use std::path::Path;

use crate::store::IssuerInfo;

#[derive(Clone)]
struct Range {
    len: usize,
    start: u64,
    end: u64,
    info: IssuerInfo,
}

/// A loaded BIN table.
#[derive(Clone, Default)]
pub struct BinTable {
    ranges: Vec<Range>,
}

impl fmt::Debug for BinTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BinTable({} ranges)", self.ranges.len())
    }
}

/// Splits one CSV line, honouring double-quoted fields.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

impl BinTable {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the BIN table {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("BIN table {}: {e}", path.display()))
    }

    /// Parses binlist CSV text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        let header = split_csv(
            lines
                .next()
                .ok_or("the file is empty")?
                .trim_start_matches('\u{feff}'),
        );
        let col = |name: &str| {
            header
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| format!("no `{name}` column in the header"))
        };
        let (start, end, kind, prepaid, country, bank) = (
            col("iin_start")?,
            col("iin_end")?,
            col("type")?,
            col("prepaid")?,
            col("country")?,
            col("bank_name")?,
        );
        let mut ranges = Vec::new();
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f = split_csv(line);
            let get = |i: usize| f.get(i).map(|s| s.trim()).filter(|s| !s.is_empty());
            let bad = || format!("line {}: bad IIN", n + 2);
            let first = get(start).ok_or_else(bad)?;
            if !first.bytes().all(|b| b.is_ascii_digit()) || first.len() > 12 {
                return Err(bad());
            }
            let last = get(end).unwrap_or(first);
            if last.len() != first.len() || !last.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let country_code = get(country).map(str::to_ascii_uppercase);
            let funding = match get(prepaid) {
                Some(p) if p.eq_ignore_ascii_case("true") || p == "1" => Some("prepaid".to_owned()),
                _ => get(kind).map(str::to_ascii_lowercase),
            };
            ranges.push(Range {
                len: first.len(),
                start: first.parse().map_err(|_| bad())?,
                end: last.parse().map_err(|_| bad())?,
                info: IssuerInfo {
                    issuer: get(bank).map(str::to_owned),
                    currency: country_code
                        .as_deref()
                        .and_then(currency_of)
                        .map(str::to_owned),
                    country: country_code,
                    funding,
                },
            });
        }
        // Longest prefixes first, so the first match is the most specific.
        ranges.sort_by_key(|r| std::cmp::Reverse(r.len));
        Ok(Self { ranges })
    }

    /// How many ranges were loaded.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The issuer metadata for a card number (all `None` when no range matches).
    pub fn lookup(&self, number: &str) -> IssuerInfo {
        self.ranges
            .iter()
            .find(|r| {
                number
                    .get(..r.len)
                    .and_then(|p| p.parse::<u64>().ok())
                    .is_some_and(|p| (r.start..=r.end).contains(&p))
            })
            .map(|r| r.info.clone())
            .unwrap_or_default()
    }
}

/// The currency of a country (ISO 3166-1 alpha-2 to ISO 4217, lower case), for the countries
/// a BIN table commonly names.
pub fn currency_of(country: &str) -> Option<&'static str> {
    const EUR: &[&str] = &[
        "AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV",
        "MT", "NL", "PT", "SI", "SK", "AD", "MC", "SM", "VA", "ME", "XK",
    ];
    if EUR.contains(&country) {
        return Some("eur");
    }
    const OTHERS: &[(&str, &str)] = &[
        ("US", "usd"),
        ("GB", "gbp"),
        ("CA", "cad"),
        ("AU", "aud"),
        ("NZ", "nzd"),
        ("JP", "jpy"),
        ("CN", "cny"),
        ("HK", "hkd"),
        ("SG", "sgd"),
        ("IN", "inr"),
        ("BR", "brl"),
        ("MX", "mxn"),
        ("AR", "ars"),
        ("CL", "clp"),
        ("CO", "cop"),
        ("PE", "pen"),
        ("CH", "chf"),
        ("SE", "sek"),
        ("NO", "nok"),
        ("DK", "dkk"),
        ("PL", "pln"),
        ("CZ", "czk"),
        ("HU", "huf"),
        ("RO", "ron"),
        ("BG", "bgn"),
        ("TR", "try"),
        ("RU", "rub"),
        ("UA", "uah"),
        ("IL", "ils"),
        ("AE", "aed"),
        ("SA", "sar"),
        ("QA", "qar"),
        ("KW", "kwd"),
        ("ZA", "zar"),
        ("NG", "ngn"),
        ("KE", "kes"),
        ("EG", "egp"),
        ("KR", "krw"),
        ("TW", "twd"),
        ("TH", "thb"),
        ("MY", "myr"),
        ("ID", "idr"),
        ("PH", "php"),
        ("VN", "vnd"),
        ("PK", "pkr"),
        ("IS", "isk"),
        ("RS", "rsd"),
        ("BY", "byn"),
        ("KZ", "kzt"),
        ("MA", "mad"),
        ("PR", "usd"),
        ("EC", "usd"),
        ("PA", "pab"),
        ("UY", "uyu"),
        ("VE", "ves"),
        ("BO", "bob"),
        ("PY", "pyg"),
        ("CR", "crc"),
        ("GT", "gtq"),
        ("DO", "dop"),
        ("JM", "jmd"),
        ("TT", "ttd"),
        ("BS", "bsd"),
        ("BM", "bmd"),
        ("LB", "lbp"),
        ("JO", "jod"),
        ("BH", "bhd"),
        ("OM", "omr"),
        ("LK", "lkr"),
        ("BD", "bdt"),
        ("NP", "npr"),
        ("GH", "ghs"),
        ("MU", "mur"),
        ("GE", "gel"),
        ("AM", "amd"),
        ("AZ", "azn"),
        ("MD", "mdl"),
        ("MK", "mkd"),
        ("AL", "all"),
        ("BA", "bam"),
        ("MO", "mop"),
        ("MN", "mnt"),
        ("KH", "khr"),
        ("TN", "tnd"),
        ("DZ", "dzd"),
        ("SV", "usd"),
        ("HN", "hnl"),
        ("NI", "nio"),
        ("BZ", "bzd"),
        ("BB", "bbd"),
    ];
    OTHERS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, cur)| *cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_quotes_parse() {
        let t = BinTable::parse(
            "iin_start,iin_end,number_length,number_luhn,scheme,brand,type,prepaid,country,bank_name\n\
             4242,,,,visa,,credit,,US,\"BANK, N.A.\"\n\
             424242,,,,visa,,debit,,GB,Other Bank\n\
             510000,510099,,,mastercard,,credit,true,DE,Range Bank\n",
        )
        .unwrap();
        let a = t.lookup("4242424242424242");
        assert_eq!(a.issuer.as_deref(), Some("Other Bank"));
        assert_eq!(a.currency.as_deref(), Some("gbp"));
        assert_eq!(
            t.lookup("4242000000000000").issuer.as_deref(),
            Some("BANK, N.A.")
        );
        let m = t.lookup("5100500000000000");
        assert_eq!(m.funding.as_deref(), Some("prepaid"));
        assert_eq!(m.currency.as_deref(), Some("eur"));
        assert_eq!(t.lookup("6011000000000000"), IssuerInfo::default());
    }
}
