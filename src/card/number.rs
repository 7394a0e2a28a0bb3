//! Card numbers: scanning, brand detection, Luhn, and the as-you-type verdict.

use std::fmt;

use zeroize::Zeroize;

use super::brand::{BRANDS, Brand, Heads, rules_starting_with};
use crate::{Error, Secret};

/// The longest card number any brand issues (ISO/IEC 7812).
pub const MAX_DIGITS: usize = 19;

/// Brands as a bit set, bit `i` for row `i` of [`BRANDS`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct BrandSet(u32);

impl BrandSet {
    /// How many brands a set can hold: the brand table may grow to this many rows.
    pub const CAPACITY: usize = 32;

    fn insert(&mut self, brand_index: usize) {
        self.0 |= 1 << brand_index;
    }

    /// The raw bits (bit `i` is row `i` of the brand table).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// How many brands are in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The brands, in table order.
    pub fn iter(self) -> impl Iterator<Item = Brand> {
        BRANDS
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, b)| b.brand)
    }
}

impl fmt::Debug for BrandSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The as-you-type verdict on a card number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberVerdict {
    /// The brand, once the digits name exactly one (or one clearly most specific).
    pub brand: Option<Brand>,
    /// Every brand the digits typed so far could still be.
    pub candidates: BrandSet,
    /// The number is complete and valid.
    pub is_valid: bool,
    /// More typing could still make it valid.
    pub is_potentially_valid: bool,
    /// Why it is not valid: `incomplete_number` or `invalid_number`.
    pub code: Option<Error>,
}

/// Up to 19 ASCII digits on the stack, wiped on drop.
struct Digits {
    buf: [u8; MAX_DIGITS],
    len: usize,
}

impl Drop for Digits {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Reads the digits of a typed number. Spaces and dashes between digits are allowed, as is
/// surrounding whitespace; anything else (letters, non-ASCII digits, other whitespace between
/// digits) or a 20th digit is an error. Equivalent to scanning `input.trim()`, but in one pass
/// over `char`s, so the wasm layer can feed it UTF-16 without building a string.
fn scan_chars(chars: impl Iterator<Item = char>) -> Result<Digits, Error> {
    let mut digits = Digits {
        buf: [0; MAX_DIGITS],
        len: 0,
    };
    let mut started = false;
    // Whitespace other than ' ' seen after the start: fine if only whitespace follows (it was
    // trailing), an error if anything else does (it was inside the number).
    let mut pending_space = false;
    for c in chars {
        if c == ' ' {
            continue;
        }
        if c.is_whitespace() {
            pending_space |= started;
            continue;
        }
        if pending_space {
            return Err(Error::InvalidNumber);
        }
        started = true;
        match c {
            '0'..='9' => {
                let slot = digits.buf.get_mut(digits.len).ok_or(Error::InvalidNumber)?;
                *slot = c as u8;
                digits.len += 1;
            }
            '-' => {}
            _ => return Err(Error::InvalidNumber),
        }
    }
    Ok(digits)
}

fn scan(input: &str) -> Result<Digits, Error> {
    scan_chars(input.chars())
}

/// The Luhn (mod 10) check over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn detect(digits: &[u8]) -> (Option<Brand>, BrandSet) {
    let mut candidates = BrandSet::default();
    let Some(&first) = digits.first() else {
        return (None, candidates);
    };
    let heads = Heads::of(digits);
    // Per brand row: its strongest match (0 = only partially typed so far).
    let mut strength = [None::<u8>; 32];
    for rule in rules_starting_with(first - b'0') {
        if let Some(s) = rule.prefix.matches(&heads) {
            let slot = &mut strength[usize::from(rule.brand_index) % 32];
            if slot.is_none_or(|b| s > b) {
                *slot = Some(s);
            }
        }
    }
    let mut best: Option<(u8, usize)> = None;
    let mut all_full = true;
    for (i, s) in strength.iter().enumerate().take(BRANDS.len()) {
        let Some(s) = *s else { continue };
        candidates.insert(i);
        if s == 0 {
            all_full = false;
        } else if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, i));
        }
    }
    let brand = match candidates.len() {
        1 => candidates.iter().next(),
        // Several brands fit: pick the most specific prefix, but only once every candidate's
        // prefix has been typed in full (so "4" stays open while Elo's 401178 is possible).
        // Ties go to the earlier row of the table.
        _ if all_full => best.map(|(_, i)| BRANDS[i].brand),
        _ => None,
    };
    (brand, candidates)
}

/// The as-you-type verdict for any string (never panics).
pub fn validate_number(input: &str) -> NumberVerdict {
    validate_number_chars(input.chars())
}

/// [`validate_number`] over a stream of characters (e.g. decoded UTF-16).
pub fn validate_number_chars(input: impl Iterator<Item = char>) -> NumberVerdict {
    let digits = match scan_chars(input) {
        Ok(d) => d,
        Err(code) => return NumberVerdict::invalid(BrandSet::default(), code),
    };
    verdict(digits.as_slice())
}

fn verdict(digits: &[u8]) -> NumberVerdict {
    if digits.is_empty() {
        return NumberVerdict::incomplete(None, BrandSet::default());
    }
    let (brand, candidates) = detect(digits);
    if candidates.is_empty() {
        return NumberVerdict::invalid(candidates, Error::InvalidNumber);
    }
    let Some(brand) = brand else {
        return NumberVerdict::incomplete(None, candidates);
    };
    let info = brand.info();
    let len = digits.len();
    let max = brand.max_length();
    let right_length = info.lengths.iter().any(|&l| usize::from(l) == len);
    if right_length && (!info.luhn || luhn(digits)) {
        NumberVerdict {
            brand: Some(brand),
            candidates,
            is_valid: true,
            is_potentially_valid: true,
            code: None,
        }
    } else if right_length {
        // A failed check digit is invalid now, though a longer number of the brand may pass.
        NumberVerdict {
            brand: Some(brand),
            candidates,
            is_valid: false,
            is_potentially_valid: len < max,
            code: Some(Error::InvalidNumber),
        }
    } else if len < max {
        NumberVerdict::incomplete(Some(brand), candidates)
    } else {
        NumberVerdict {
            brand: Some(brand),
            ..NumberVerdict::invalid(candidates, Error::InvalidNumber)
        }
    }
}

impl NumberVerdict {
    fn incomplete(brand: Option<Brand>, candidates: BrandSet) -> Self {
        Self {
            brand,
            candidates,
            is_valid: false,
            is_potentially_valid: true,
            code: Some(Error::IncompleteNumber),
        }
    }

    fn invalid(candidates: BrandSet, code: Error) -> Self {
        Self {
            brand: None,
            candidates,
            is_valid: false,
            is_potentially_valid: false,
            code: Some(code),
        }
    }
}

/// A complete, valid card number: only this type reaches the sealing code.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber {
    digits: Secret,
    brand: Brand,
}

impl CardNumber {
    /// Parses a typed number (spaces and dashes allowed) into its digits.
    pub fn parse(input: &str) -> Result<CardNumber, Error> {
        let digits = scan(input)?;
        let v = verdict(digits.as_slice());
        match (v.is_valid, v.brand, v.code) {
            (true, Some(brand), _) => {
                let clear = digits
                    .as_slice()
                    .iter()
                    .map(|&b| char::from(b))
                    .collect::<String>();
                Ok(CardNumber {
                    digits: Secret::new(clear),
                    brand,
                })
            }
            (_, _, Some(code)) => Err(code),
            _ => Err(Error::InvalidNumber),
        }
    }

    /// The brand.
    pub fn brand(&self) -> Brand {
        self.brand
    }

    /// The digits, without separators.
    pub fn expose(&self) -> &str {
        self.digits.expose()
    }

    /// The last four digits (not secret).
    pub fn last4(&self) -> &str {
        let s = self.digits.expose();
        &s[s.len().saturating_sub(4)..]
    }

    /// The first six digits: the bank identification number (not secret).
    pub fn bin(&self) -> &str {
        let s = self.digits.expose();
        &s[..s.len().min(6)]
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.digits.len()
    }

    /// Always false: a parsed number has at least 12 digits.
    pub fn is_empty(&self) -> bool {
        self.digits.is_empty()
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({} ****{})", self.brand, self.last4())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"4242424242424242"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"4242424242424241"));
        assert!(!luhn(b"79927398710"));
    }

    #[test]
    fn scan_strips_separators_and_rejects_junk() {
        assert_eq!(
            scan(" 4242-4242 4242 4242\t").unwrap().as_slice(),
            b"4242424242424242"
        );
        assert!(matches!(scan("4242x"), Err(Error::InvalidNumber)));
        assert!(scan("12345678901234567890").is_err());
        assert!(scan("١٢٣٤").is_err());
    }

    /// The reference: the documented rule, written the obvious way.
    fn scan_reference(input: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for b in input.trim().bytes() {
            match b {
                b'0'..=b'9' => out.push(b),
                b' ' | b'-' => {}
                _ => return None,
            }
        }
        (out.len() <= MAX_DIGITS).then_some(out)
    }

    #[test]
    fn one_pass_scan_equals_trim_then_scan() {
        let pieces = [
            "4", "2", " ", "-", "\t", "\n", "\u{a0}", "\u{2003}", "a", "٤", "\u{0}", "😀", "  ",
        ];
        // Every string of up to 5 pieces: 13^5 = 371,293 cases.
        let mut idx = [0usize; 5];
        for len in 0..=5 {
            idx.iter_mut().for_each(|i| *i = 0);
            loop {
                let s: String = idx[..len].iter().map(|&i| pieces[i]).collect();
                let got = scan(&s).ok().map(|d| d.as_slice().to_vec());
                assert_eq!(got, scan_reference(&s), "{s:?}");
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < pieces.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        let long = "4".repeat(19);
        assert!(scan(&long).is_ok());
        assert!(scan(&format!("{long}4")).is_err());
    }

    #[test]
    fn debug_masks_the_number() {
        let n = CardNumber::parse("4242424242424242").unwrap();
        assert_eq!(format!("{n:?}"), "CardNumber(visa ****4242)");
        assert_eq!(n.bin(), "424242");
        assert_eq!(n.last4(), "4242");
    }
}
