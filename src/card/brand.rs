//! The brand table: one row per card brand, as data.
//!
//! Sources, named on each row:
//! - [CCT]: braintree/credit-card-type, `src/lib/card-types.ts` (the widely used table; MIT);
//! - [WIKI]: Wikipedia, "Payment card number", section "Issuer identification number (IIN)";
//! - the brands' own published test numbers are in the tests.

use std::fmt;
use std::sync::OnceLock;

/// A card brand. The wire names (`as_str`) are stable.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Brand {
    /// Visa.
    Visa,
    /// Mastercard.
    Mastercard,
    /// American Express.
    Amex,
    /// Diners Club International.
    Diners,
    /// Discover.
    Discover,
    /// JCB.
    Jcb,
    /// UnionPay.
    Unionpay,
    /// Maestro.
    Maestro,
    /// Mir (Russia).
    Mir,
    /// Elo (Brazil).
    Elo,
    /// Hiper (Brazil).
    Hiper,
    /// Hipercard (Brazil).
    Hipercard,
    /// Verve (Nigeria).
    Verve,
    /// Troy (Turkey).
    Troy,
    /// Uzcard (Uzbekistan).
    Uzcard,
    /// Humo (Uzbekistan).
    Humo,
}

/// A prefix rule: a single IIN prefix (`lo == hi`) or an inclusive range of prefixes with the
/// same number of digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// Lowest prefix of the range.
    pub lo: u32,
    /// Highest prefix of the range (same digit count as `lo`).
    pub hi: u32,
    /// How many leading digits of the number the rule reads.
    pub digits: u8,
}

const fn p(v: u32) -> Prefix {
    Prefix {
        lo: v,
        hi: v,
        digits: digit_count(v),
    }
}

const fn r(lo: u32, hi: u32) -> Prefix {
    Prefix {
        lo,
        hi,
        digits: digit_count(lo),
    }
}

const fn digit_count(mut v: u32) -> u8 {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Everything known about one brand.
#[derive(Debug)]
pub struct BrandInfo {
    /// The brand.
    pub brand: Brand,
    /// Human name, e.g. "American Express".
    pub nice_name: &'static str,
    /// IIN prefixes and ranges.
    pub prefixes: &'static [Prefix],
    /// Valid number lengths, ascending.
    pub lengths: &'static [u8],
    /// Positions (digit counts) after which a space is shown.
    pub gaps: &'static [u8],
    /// What the brand calls its security code.
    pub cvc_name: &'static str,
    /// Security code length.
    pub cvc_size: u8,
    /// Whether the last digit is a Luhn check digit.
    pub luhn: bool,
}

const GAPS_4444: &[u8] = &[4, 8, 12];

/// The table. Order matters only to break ties between equally specific prefixes (an earlier
/// row wins), e.g. Verve's `506099..=506198` against Maestro's `504176..=506698`.
pub static BRANDS: &[BrandInfo] = &[
    BrandInfo {
        brand: Brand::Visa,
        nice_name: "Visa",
        // [CCT] visa: 4. Lengths 16, 18, 19 [CCT]; 13-digit Visa cards are no longer issued.
        prefixes: &[p(4)],
        lengths: &[16, 18, 19],
        gaps: GAPS_4444,
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Mastercard,
        nice_name: "Mastercard",
        // [CCT] mastercard: 51-55 and 2221-2720 (the 2-series, added 2017) [WIKI].
        prefixes: &[r(51, 55), r(2221, 2720)],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVC",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Amex,
        nice_name: "American Express",
        // [CCT] american-express: 34, 37; 15 digits shown 4-6-5.
        prefixes: &[p(34), p(37)],
        lengths: &[15],
        gaps: &[4, 10],
        cvc_name: "CID",
        cvc_size: 4,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Diners,
        nice_name: "Diners Club",
        // [CCT] diners-club: 300-305, 36, 38, 39; lengths 14, 16, 19.
        prefixes: &[r(300, 305), p(36), p(38), p(39)],
        lengths: &[14, 16, 19],
        gaps: &[4, 10],
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Discover,
        nice_name: "Discover",
        // [CCT] discover: 6011, 644-649, 65; lengths 16, 19.
        prefixes: &[p(6011), r(644, 649), p(65)],
        lengths: &[16, 19],
        gaps: GAPS_4444,
        cvc_name: "CID",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Jcb,
        nice_name: "JCB",
        // [CCT] jcb: 2131, 1800, 3528-3589; lengths 16-19.
        prefixes: &[p(2131), p(1800), r(3528, 3589)],
        lengths: &[16, 17, 18, 19],
        gaps: GAPS_4444,
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Unionpay,
        nice_name: "UnionPay",
        // [CCT] unionpay: 620, 62100-62182, 62184-62187, 62185-62197, 62200-62205,
        // 622010-622999, 622018, 62207-62209, 623-626, 6270, 6272, 6276, 627700-627779,
        // 627781-627799, 6282-6289, 6291, 6292, 810, 8110-8131, 8132-8151, 8152-8163, 8164-8171.
        // Some UnionPay numbers carry no Luhn check digit [CCT, card-validator].
        prefixes: &[
            p(620),
            r(62100, 62182),
            r(62184, 62187),
            r(62185, 62197),
            r(62200, 62205),
            r(622010, 622999),
            p(622018),
            r(62207, 62209),
            r(623, 626),
            p(6270),
            p(6272),
            p(6276),
            r(627700, 627779),
            r(627781, 627799),
            r(6282, 6289),
            p(6291),
            p(6292),
            p(810),
            r(8110, 8131),
            r(8132, 8151),
            r(8152, 8163),
            r(8164, 8171),
        ],
        lengths: &[14, 15, 16, 17, 18, 19],
        gaps: GAPS_4444,
        cvc_name: "CVN",
        cvc_size: 3,
        luhn: false,
    },
    BrandInfo {
        brand: Brand::Verve,
        nice_name: "Verve",
        // [WIKI] Verve: 506099-506198, 650002-650027, 507865-507964; lengths 16, 18, 19.
        // Listed before Maestro, whose 504176-506698 covers 5060xx-5061xx.
        prefixes: &[r(506099, 506198), r(650002, 650027), r(507865, 507964)],
        lengths: &[16, 18, 19],
        gaps: GAPS_4444,
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Elo,
        nice_name: "Elo",
        // [CCT] elo: 401178, 401179, 438935, 457631, 457632, 431274, 451416, 457393, 504175,
        // 506699-506778, 509000-509999, 627780, 636297, 636368, 650031-650033, 650035-650051,
        // 650405-650439, 650485-650538, 650541-650598, 650700-650718, 650720-650727,
        // 650901-650978, 651652-651679, 655000-655019, 655021-655058.
        prefixes: &[
            p(401178),
            p(401179),
            p(438935),
            p(457631),
            p(457632),
            p(431274),
            p(451416),
            p(457393),
            p(504175),
            r(506699, 506778),
            r(509000, 509999),
            p(627780),
            p(636297),
            p(636368),
            r(650031, 650033),
            r(650035, 650051),
            r(650405, 650439),
            r(650485, 650538),
            r(650541, 650598),
            r(650700, 650718),
            r(650720, 650727),
            r(650901, 650978),
            r(651652, 651679),
            r(655000, 655019),
            r(655021, 655058),
        ],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVE",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Maestro,
        nice_name: "Maestro",
        // [CCT] maestro: 493698, 500000-504174, 504176-506698, 506779-508999, 56-59, 63, 67, 6;
        // lengths 12-19.
        prefixes: &[
            p(493698),
            r(500000, 504174),
            r(504176, 506698),
            r(506779, 508999),
            r(56, 59),
            p(63),
            p(67),
            p(6),
        ],
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
        gaps: GAPS_4444,
        cvc_name: "CVC",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Mir,
        nice_name: "Mir",
        // [CCT] mir: 2200-2204; lengths 16-19.
        prefixes: &[r(2200, 2204)],
        lengths: &[16, 17, 18, 19],
        gaps: GAPS_4444,
        cvc_name: "CVP2",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Hiper,
        nice_name: "Hiper",
        // [CCT] hiper: 637095, 63737423, 63743358, 637568, 637599, 637609, 637612.
        prefixes: &[
            p(637095),
            p(63737423),
            p(63743358),
            p(637568),
            p(637599),
            p(637609),
            p(637612),
        ],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVC",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Hipercard,
        nice_name: "Hipercard",
        // [CCT] hipercard: 606282.
        prefixes: &[p(606282)],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVC",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Troy,
        nice_name: "Troy",
        // [WIKI] Troy: 9792 (its 65 range is shared with Discover, which keeps it here).
        prefixes: &[p(9792)],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Uzcard,
        nice_name: "Uzcard",
        // [WIKI] UzCard: 8600; 16 digits.
        prefixes: &[p(8600)],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
    BrandInfo {
        brand: Brand::Humo,
        nice_name: "Humo",
        // [WIKI] Humo: 9860; 16 digits.
        prefixes: &[p(9860)],
        lengths: &[16],
        gaps: GAPS_4444,
        cvc_name: "CVV",
        cvc_size: 3,
        luhn: true,
    },
];

impl Brand {
    /// Every brand, in table order.
    pub fn all() -> impl Iterator<Item = Brand> {
        BRANDS.iter().map(|b| b.brand)
    }

    /// The stable wire name, e.g. `"amex"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Diners => "diners",
            Brand::Discover => "discover",
            Brand::Jcb => "jcb",
            Brand::Unionpay => "unionpay",
            Brand::Maestro => "maestro",
            Brand::Mir => "mir",
            Brand::Elo => "elo",
            Brand::Hiper => "hiper",
            Brand::Hipercard => "hipercard",
            Brand::Verve => "verve",
            Brand::Troy => "troy",
            Brand::Uzcard => "uzcard",
            Brand::Humo => "humo",
        }
    }

    /// Parses a wire name; unknown names give `None`.
    pub fn from_name(name: &str) -> Option<Brand> {
        Brand::all().find(|b| b.as_str() == name)
    }

    /// The brand's row in [`BRANDS`].
    pub fn info(self) -> &'static BrandInfo {
        // Every variant has a row; the test `every_brand_has_one_row` holds that invariant.
        BRANDS
            .iter()
            .find(|b| b.brand == self)
            .unwrap_or(&BRANDS[0])
    }

    /// The brand's position in the table (the wasm layer encodes brands as bit indexes).
    pub fn index(self) -> usize {
        BRANDS.iter().position(|b| b.brand == self).unwrap_or(0)
    }

    /// Longest valid number length.
    pub fn max_length(self) -> usize {
        self.info().lengths.last().copied().unwrap_or(19).into()
    }
}

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest prefix in the table, in digits (Hiper's `63737423`).
const MAX_PREFIX_DIGITS: usize = 8;

const POW10: [u32; MAX_PREFIX_DIGITS + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The leading digits of a number as integers, computed once per verdict: `value(n)` is the
/// number formed by the first `n` digits. Matching the table then costs two comparisons a rule.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    values: [u32; MAX_PREFIX_DIGITS + 1],
    len: usize,
}

impl Heads {
    /// The heads of `digits` (ASCII).
    pub fn of(digits: &[u8]) -> Heads {
        let mut values = [0u32; MAX_PREFIX_DIGITS + 1];
        let len = digits.len().min(MAX_PREFIX_DIGITS);
        for (i, d) in digits[..len].iter().enumerate() {
            values[i + 1] = values[i] * 10 + u32::from(d.wrapping_sub(b'0') % 10);
        }
        Heads { values, len }
    }
}

impl Prefix {
    /// How this rule matches the typed digits: `None` if the number can never fall in it,
    /// `Some(0)` if it still might (too few digits typed), or `Some(digits)` when it matches
    /// fully (the strength: longer prefixes are more specific).
    pub fn matches(&self, heads: &Heads) -> Option<u8> {
        let n = usize::from(self.digits);
        if heads.len >= n {
            (self.lo..=self.hi)
                .contains(&heads.values[n])
                .then_some(self.digits)
        } else {
            // The typed digits span [value·10^k, (value+1)·10^k − 1]; does it meet the range?
            let scale = POW10[n - heads.len];
            let from = heads.values[heads.len] * scale;
            let to = from + (scale - 1);
            (from <= self.hi && to >= self.lo).then_some(0)
        }
    }
}

/// One prefix rule with the row of its brand.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// Row of the brand in [`BRANDS`].
    pub brand_index: u8,
    /// The rule.
    pub prefix: Prefix,
}

/// The rules whose numbers can start with digit `first` (0–9). Indexing by the first digit
/// leaves about a tenth of the table to test per keystroke.
pub fn rules_starting_with(first: u8) -> &'static [Rule] {
    static BY_FIRST_DIGIT: OnceLock<[Vec<Rule>; 10]> = OnceLock::new();
    let table = BY_FIRST_DIGIT.get_or_init(|| {
        let mut t: [Vec<Rule>; 10] = Default::default();
        for (i, info) in BRANDS.iter().enumerate() {
            for prefix in info.prefixes {
                let scale = POW10[usize::from(prefix.digits) - 1];
                let (lo, hi) = (prefix.lo / scale, prefix.hi / scale);
                for d in lo..=hi.min(9) {
                    t[d as usize].push(Rule {
                        brand_index: i as u8,
                        prefix: *prefix,
                    });
                }
            }
        }
        t
    });
    table.get(usize::from(first)).map_or(&[], Vec::as_slice)
}

impl BrandInfo {
    /// The best match of this brand's prefixes against typed digits (see [`Prefix::matches`]).
    pub fn matches(&self, heads: &Heads) -> Option<u8> {
        let mut best = None;
        for p in self.prefixes {
            if let Some(s) = p.matches(heads) {
                if best.is_none_or(|b| s > b) {
                    best = Some(s);
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_brand_has_one_row() {
        let all = [
            Brand::Visa,
            Brand::Mastercard,
            Brand::Amex,
            Brand::Diners,
            Brand::Discover,
            Brand::Jcb,
            Brand::Unionpay,
            Brand::Maestro,
            Brand::Mir,
            Brand::Elo,
            Brand::Hiper,
            Brand::Hipercard,
            Brand::Verve,
            Brand::Troy,
            Brand::Uzcard,
            Brand::Humo,
        ];
        assert!(BRANDS.len() >= 15);
        assert!(BRANDS.len() <= crate::card::BrandSet::CAPACITY);
        assert_eq!(BRANDS.len(), all.len());
        for b in all {
            assert_eq!(BRANDS.iter().filter(|i| i.brand == b).count(), 1, "{b}");
            assert_eq!(b.info().brand, b);
            assert_eq!(Brand::from_name(b.as_str()), Some(b));
        }
    }

    #[test]
    fn table_rows_are_well_formed() {
        for info in BRANDS {
            for p in info.prefixes {
                assert!(p.lo <= p.hi, "{:?}", p);
                assert_eq!(digit_count(p.lo), digit_count(p.hi), "{:?}", p);
            }
            assert!(info.lengths.windows(2).all(|w| w[0] < w[1]));
            assert!(info.lengths.iter().all(|l| (12..=19).contains(l)));
            assert!(
                info.gaps
                    .iter()
                    .all(|g| usize::from(*g) < info.brand.max_length())
            );
            assert!(matches!(info.cvc_size, 3 | 4));
            assert!(
                info.prefixes
                    .iter()
                    .all(|p| usize::from(p.digits) <= MAX_PREFIX_DIGITS)
            );
        }
    }

    #[test]
    fn the_first_digit_index_holds_every_rule_that_can_match() {
        // Brute force over every 1- to 3-digit start: a rule matches only if it is indexed.
        for v in 0u32..1000 {
            for len in 1..=3 {
                let s = format!("{v:03}");
                let d = &s.as_bytes()[..len];
                let heads = Heads::of(d);
                for (i, info) in BRANDS.iter().enumerate() {
                    for p in info.prefixes {
                        if p.matches(&heads).is_some() {
                            assert!(
                                rules_starting_with(d[0] - b'0')
                                    .iter()
                                    .any(|r| usize::from(r.brand_index) == i && r.prefix == *p),
                                "{s} {p:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn prefix_matching_is_partial_then_full() {
        let mc = r(2221, 2720);
        let mc = |d: &[u8]| mc.matches(&Heads::of(d));
        assert_eq!(mc(b"2"), Some(0));
        assert_eq!(mc(b"22"), Some(0));
        assert_eq!(mc(b"222"), Some(0));
        assert_eq!(mc(b"2220"), None);
        assert_eq!(mc(b"2221"), Some(4));
        assert_eq!(mc(b"22219999"), Some(4));
        assert_eq!(mc(b"2720"), Some(4));
        assert_eq!(mc(b"2721"), None);
        assert_eq!(mc(b"28"), None);
        assert_eq!(mc(b""), Some(0));
        assert_eq!(p(4).matches(&Heads::of(b"4242")), Some(1));
        assert_eq!(p(63737423).matches(&Heads::of(b"6373742")), Some(0));
        assert_eq!(p(63737423).matches(&Heads::of(b"6373742399")), Some(8));
        assert_eq!(p(63737423).matches(&Heads::of(b"6373742499")), None);
    }
}
