//! Formatting as the customer types, keeping the caret where it belongs.
//!
//! Carets are UTF-16 offsets, as `HTMLInputElement.selectionStart` gives them. Output is ASCII,
//! so output offsets are the same in UTF-8 and UTF-16.

use super::brand::Brand;
use super::cvc::MAX_CVC_SIZE;
use super::number::{MAX_DIGITS, validate_number};

/// A formatted field value and where the caret goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Formatted {
    /// The new value of the input.
    pub value: String,
    /// The new caret offset.
    pub caret: usize,
}

/// ASCII digits of `input`, and how many of them come before the UTF-16 offset `caret`.
fn digits_and_caret(input: &str, caret: Option<usize>) -> (Vec<u8>, usize) {
    let mut digits = Vec::with_capacity(MAX_DIGITS);
    let mut before = None;
    let mut offset = 0usize;
    for c in input.chars() {
        if before.is_none() && caret.is_some_and(|k| offset >= k) {
            before = Some(digits.len());
        }
        if c.is_ascii_digit() {
            digits.push(c as u8);
        }
        offset += c.len_utf16();
    }
    let before = before.unwrap_or(digits.len());
    (digits, before)
}

fn gaps_for(brand: Option<Brand>, len: usize) -> &'static [u8] {
    // Up to 15 digits the brand's own layout (amex 4-6-5, diners 4-6-4); 16 to 19 digits are
    // shown 4-4-4-4-3 for every brand.
    match brand {
        _ if len > 15 => &[4, 8, 12, 16],
        Some(b) => b.info().gaps,
        None => &[4, 8, 12, 16],
    }
}

/// Formats a card number: `4242424242424242` becomes `4242 4242 4242 4242`, an amex number
/// `3782 822463 10005`. Digits beyond the brand's longest length are dropped; other characters
/// are ignored. Without `caret`, the caret goes to the end.
pub fn format_card_number(input: &str, caret: Option<usize>) -> Formatted {
    let (mut digits, before) = digits_and_caret(input, caret);
    let brand = {
        let probe = String::from_utf8_lossy(&digits[..digits.len().min(MAX_DIGITS)]).into_owned();
        validate_number(&probe).brand
    };
    let max = brand.map_or(MAX_DIGITS, Brand::max_length);
    digits.truncate(max);
    let gaps = gaps_for(brand, digits.len());
    let mut value = String::with_capacity(digits.len() + gaps.len());
    let mut caret_out = None;
    for (i, d) in digits.iter().enumerate() {
        if i == before {
            caret_out = Some(value.len());
        }
        if gaps.iter().any(|&g| usize::from(g) == i) {
            value.push(' ');
        }
        value.push(char::from(*d));
    }
    let caret = caret_out.unwrap_or(value.len());
    Formatted { value, caret }
}

/// Formats a CVC: digits only, at most [`MAX_CVC_SIZE`] of them (whether they fit the brand is
/// `validate_cvc`'s verdict, not the formatter's).
pub fn format_cvc(input: &str, caret: Option<usize>) -> Formatted {
    let (mut digits, before) = digits_and_caret(input, caret);
    digits.truncate(MAX_CVC_SIZE);
    let caret = before.min(digits.len());
    let value = digits.into_iter().map(char::from).collect();
    Formatted { value, caret }
}

/// Formats an expiry as `MM / YY`. A first digit of 2 to 9 is a month and gets its leading
/// zero; a `/` after one digit pads it too. Without year digits, only the month is shown, so
/// that deleting backwards through ` / ` works.
pub fn format_expiry(input: &str, caret: Option<usize>) -> Formatted {
    let (slash_month, has_slash) = match input.split_once('/') {
        Some((m, _)) => (m.chars().filter(char::is_ascii_digit).count(), true),
        None => (0, false),
    };
    let (digits, before) = digits_and_caret(input, caret);
    let mut month: Vec<u8> = Vec::with_capacity(2);
    let mut padded = false;
    let rest: &[u8];
    match digits.as_slice() {
        [] => rest = &[],
        [d, tail @ ..] if (b'2'..=b'9').contains(d) || (has_slash && slash_month == 1) => {
            month.extend([b'0', *d]);
            padded = true;
            rest = tail;
        }
        [a, b, tail @ ..] => {
            month.extend([*a, *b]);
            rest = tail;
        }
        [a] => {
            month.push(*a);
            rest = &[];
        }
    }
    let year: Vec<u8> = if rest.len() == 4 && rest.starts_with(b"20") {
        rest[2..].to_vec()
    } else {
        rest.iter().take(2).copied().collect()
    };
    let mut value: String = month.iter().map(|&b| char::from(b)).collect();
    if !year.is_empty() {
        value.push_str(" / ");
        value.extend(year.iter().map(|&b| char::from(b)));
    }
    // Map "k digits before the caret" onto the output, counting an inserted leading zero.
    let k = if padded && before > 0 {
        before + 1
    } else {
        before
    };
    let caret = if caret.is_none() || k >= month.len() + year.len() {
        value.len()
    } else if k <= month.len() {
        k
    } else {
        k + 3
    };
    Formatted { value, caret }
}
