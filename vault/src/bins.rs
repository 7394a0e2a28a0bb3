//! Issuer metadata from a BIN table in the binlist CSV format (`--bin-table FILE`).
//!
//! Columns are found by name in the header: `iin_start`, `iin_end` (empty for a single IIN),
//! `type` (debit/credit), `prepaid`, `country` (ISO 3166-1 alpha-2) and `bank_name`. The most
//! specific (longest) matching IIN wins.

use std::fmt;
use std::path::Path;

use crate::store::IssuerInfo;

/// One row of the file, as parsed.
struct Range {
    len: usize,
    start: u64,
    end: u64,
    info: IssuerInfo,
}

/// A run of IINs of one length that one row of the file describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    start: u64,
    end: u64,
    /// Index into [`BinTable::infos`].
    info: usize,
}

/// The IINs of one length: disjoint segments sorted by start, for a binary search.
#[derive(Clone, Debug)]
struct Level {
    len: usize,
    segments: Vec<Segment>,
}

/// A loaded BIN table, parsed once into one sorted, disjoint list of segments per IIN length.
#[derive(Clone, Default)]
pub struct BinTable {
    /// Longest IIN length first: the most specific match wins.
    levels: Vec<Level>,
    infos: Vec<IssuerInfo>,
}

impl fmt::Debug for BinTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BinTable({} ranges)", self.infos.len())
    }
}

/// Resolves the rows of one IIN length (`rows`: indexes into `ranges`, in file order) into
/// disjoint segments. Where rows overlap, the earlier row in the file wins, as a first-match
/// scan of the file would have it. A sweep over the rows' starts and ends: O(n log n).
fn level_segments(ranges: &[Range], rows: &[usize]) -> Vec<Segment> {
    use std::collections::BTreeSet;

    // (position, opens?, row): a row is active on [start, end].
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(rows.len() * 2);
    for &i in rows {
        events.push((ranges[i].start, true, i));
        if let Some(after) = ranges[i].end.checked_add(1) {
            events.push((after, false, i));
        }
    }
    events.sort_unstable();
    let mut active = BTreeSet::new();
    let mut segments: Vec<Segment> = Vec::new();
    let mut k = 0;
    while k < events.len() {
        let at = events[k].0;
        while k < events.len() && events[k].0 == at {
            let (_, opens, row) = events[k];
            if opens {
                active.insert(row);
            } else {
                active.remove(&row);
            }
            k += 1;
        }
        let Some(&owner) = active.first() else {
            continue;
        };
        // Until the next event, or to the end of the owner's row if none comes.
        let end = events.get(k).map_or(ranges[owner].end, |e| e.0 - 1);
        match segments.last_mut() {
            Some(last) if last.info == owner && last.end.checked_add(1) == Some(at) => {
                last.end = end;
            }
            _ => segments.push(Segment {
                start: at,
                end,
                info: owner,
            }),
        }
    }
    segments
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
        Ok(Self::from_ranges(ranges))
    }

    fn from_ranges(ranges: Vec<Range>) -> Self {
        let mut lengths: Vec<usize> = ranges.iter().map(|r| r.len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        let levels = lengths
            .into_iter()
            .map(|len| {
                let rows: Vec<usize> = (0..ranges.len())
                    .filter(|&i| ranges[i].len == len)
                    .collect();
                Level {
                    len,
                    segments: level_segments(&ranges, &rows),
                }
            })
            .collect();
        let infos = ranges.into_iter().map(|r| r.info).collect();
        Self { levels, infos }
    }

    /// How many ranges were loaded.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// The issuer metadata for a card number (all `None` when no range matches): the longest
    /// matching IIN, each length found by binary search.
    pub fn lookup(&self, number: &str) -> IssuerInfo {
        self.levels
            .iter()
            .find_map(|level| {
                let prefix: u64 = number
                    .get(..level.len)
                    .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))?
                    .parse()
                    .ok()?;
                let i = level.segments.partition_point(|s| s.start <= prefix);
                let s = level.segments.get(i.checked_sub(1)?)?;
                (prefix <= s.end).then_some(s.info)
            })
            .map(|i| self.infos[i].clone())
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

    /// The first-match scan over the rows (longest length first, file order within a length)
    /// that the binary search replaces; the two must agree everywhere.
    fn scan(ranges: &[(usize, u64, u64)], number: &str) -> Option<usize> {
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ranges[i].0));
        order.into_iter().find(|&i| {
            let (len, start, end) = ranges[i];
            number
                .get(..len)
                .and_then(|p| p.parse::<u64>().ok())
                .is_some_and(|p| (start..=end).contains(&p))
        })
    }

    #[test]
    fn the_binary_search_agrees_with_a_first_match_scan_on_overlapping_rows() {
        // Overlapping, nested, touching and identical rows of two lengths.
        let rows: Vec<(usize, u64, u64)> = vec![
            (6, 400000, 400099),
            (6, 400050, 400150),
            (6, 400020, 400030),
            (6, 400151, 400151),
            (6, 400100, 400100),
            (6, 400000, 400099),
            (8, 40005000, 40005099),
            (8, 40004000, 40009999),
            (6, 999999, 999999),
        ];
        let mut csv = String::from("iin_start,iin_end,type,prepaid,country,bank_name\n");
        for (n, (_, start, end)) in rows.iter().enumerate() {
            csv.push_str(&format!("{start},{end},credit,,US,bank{n}\n"));
        }
        let t = BinTable::parse(&csv).unwrap();
        for p in 399990u64..=400200 {
            for tail in ["0000000000", "0050000000", "5099000000", "9999999999"] {
                let number = format!("{p}{tail}");
                let want = scan(&rows, &number).map(|n| format!("bank{n}"));
                assert_eq!(t.lookup(&number).issuer, want, "{number}");
            }
        }
        assert_eq!(
            t.lookup("9999990000000000").issuer.as_deref(),
            Some("bank8")
        );
        assert_eq!(t.lookup("12"), IssuerInfo::default());
        assert_eq!(t.lookup("4000x00000000000"), IssuerInfo::default());
    }
}
