//! The thin wasm-bindgen layer: each export converts its inputs, calls the core, and converts
//! the result back. The hand-written `js/` wrapper turns these into the public API of DESIGN.md.
//!
//! Verdicts cross the boundary as packed `u32`s rather than objects: building a JS object from
//! wasm costs a crossing per property, and `validateNumber` runs on every keystroke (and in the
//! benchmark, 100,000 times). The layout is fixed here and decoded in `js/core.js`:
//!
//! | bits   | field                                             |
//! |--------|---------------------------------------------------|
//! | 0–15   | candidate brands (bit i = row i of the brand table) |
//! | 16–20  | brand: row + 1, 0 for none                        |
//! | 21     | `isValid`                                         |
//! | 22     | `isPotentiallyValid`                              |
//! | 23–27  | error: index in `Error::ALL` + 1, 0 for none      |

mod seal;

pub use seal::CardSealCore;

use std::sync::atomic::{AtomicU16, Ordering};

use wasm_bindgen::prelude::*;

use crate::Error;
use crate::card::{self, Brand, CardInput, Today, Verdict};
use crate::secret::Secret;

const BRAND_SHIFT: u32 = 16;
const VALID_BIT: u32 = 1 << 21;
const POTENTIAL_BIT: u32 = 1 << 22;
const CODE_SHIFT: u32 = 23;

fn code_bits(code: Option<Error>) -> u32 {
    code.and_then(|c| Error::ALL.iter().position(|e| *e == c))
        .map_or(0, |i| (i as u32 + 1) << CODE_SHIFT)
}

fn brand_bits(brand: Option<Brand>) -> u32 {
    brand.map_or(0, |b| (b.index() as u32 + 1) << BRAND_SHIFT)
}

fn verdict_bits(v: Verdict) -> u32 {
    let mut bits = code_bits(v.code);
    if v.is_valid {
        bits |= VALID_BIT;
    }
    if v.is_potentially_valid {
        bits |= POTENTIAL_BIT;
    }
    bits
}

/// The current month, by the browser's clock.
fn today() -> Today {
    // Date.now() is milliseconds since the epoch; f64 holds it exactly.
    Today::from_unix((js_sys::Date::now() / 1000.0) as i64)
}

fn brand_named(name: &str) -> Option<Brand> {
    Brand::from_name(name)
}

/// Brand wire names in table order, for decoding brand bits.
#[wasm_bindgen(js_name = "brandTable")]
pub fn brand_table() -> Vec<String> {
    Brand::all().map(|b| b.as_str().to_owned()).collect()
}

/// Error codes in `Error::ALL` order, as `[code, message, field or "", type]` rows flattened.
#[wasm_bindgen(js_name = "errorTable")]
pub fn error_table() -> Vec<String> {
    Error::ALL
        .iter()
        .flat_map(|e| {
            [
                e.code().to_owned(),
                e.message().to_owned(),
                e.field().map_or("", |f| f.as_str()).to_owned(),
                e.kind().to_owned(),
            ]
        })
        .collect()
}

/// UTF-16 code units of the last `validateNumber` input, written by JS straight into wasm
/// memory: a short string then crosses with one call, without the allocation, UTF-8 encoding
/// and free of a `&str` argument. Atomics, because JS writes them behind Rust's back (single
/// threaded, so Relaxed is enough).
static INPUT: [AtomicU16; INPUT_CAPACITY] = [const { AtomicU16::new(0) }; INPUT_CAPACITY];
const INPUT_CAPACITY: usize = 64;

/// Where JS writes `validateNumber` input: the address of a `u16` buffer in wasm memory.
#[wasm_bindgen(js_name = "inputBuffer")]
pub fn input_buffer() -> u32 {
    INPUT.as_ptr() as usize as u32
}

/// How many UTF-16 code units the input buffer holds; longer strings take the `&str` path.
#[wasm_bindgen(js_name = "inputCapacity")]
pub fn input_capacity() -> u32 {
    INPUT_CAPACITY as u32
}

/// `validateNumber` of the first `len` code units of the input buffer, packed. The buffer is
/// wiped as it is read, so no card number lingers in wasm memory.
#[wasm_bindgen(js_name = "validateNumberInput")]
pub fn validate_number_input(len: u32) -> u32 {
    let len = (len as usize).min(INPUT_CAPACITY);
    let units = INPUT[..len].iter().map(|u| u.swap(0, Ordering::Relaxed));
    let chars = char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER));
    number_bits(card::validate_number_chars(chars))
}

/// `validateNumber`, packed (see the module docs).
#[wasm_bindgen(js_name = "validateNumberPacked")]
pub fn validate_number_packed(number: &str) -> u32 {
    number_bits(card::validate_number(number))
}

fn number_bits(v: card::NumberVerdict) -> u32 {
    let mut bits = v.candidates.bits() | brand_bits(v.brand) | code_bits(v.code);
    if v.is_valid {
        bits |= VALID_BIT;
    }
    if v.is_potentially_valid {
        bits |= POTENTIAL_BIT;
    }
    bits
}

/// `validateExpiry`, packed. With an empty `year`, `month` may hold the whole `MM / YY` field.
#[wasm_bindgen(js_name = "validateExpiryPacked")]
pub fn validate_expiry_packed(month: &str, year: &str) -> u32 {
    let v = if year.is_empty() && month.contains(['/', '-']) {
        let (m, y) = card::split_expiry(month);
        card::validate_expiry(&m, &y, today())
    } else {
        card::validate_expiry(month, year, today())
    };
    verdict_bits(v)
}

/// `validateCvc`, packed. An empty or unknown `brand` means "brand not known yet".
#[wasm_bindgen(js_name = "validateCvcPacked")]
pub fn validate_cvc_packed(cvc: &str, brand: &str) -> u32 {
    verdict_bits(card::validate_cvc(cvc, brand_named(brand)))
}

/// `validateCard`: `[valid, brand row + 1, error index + 1 …]`.
#[wasm_bindgen(js_name = "validateCardPacked")]
pub fn validate_card_packed(
    number: String,
    exp_month: String,
    exp_year: String,
    cvc: Option<String>,
    name: Option<String>,
) -> Vec<u8> {
    let input = CardInput {
        number: Secret::new(number),
        exp_month,
        exp_year,
        cvc: cvc.map(Secret::new),
        name,
    };
    let v = card::validate_card(&input, today());
    let mut out = Vec::with_capacity(2 + v.errors.len());
    out.push(u8::from(v.valid));
    out.push(v.brand.map_or(0, |b| b.index() as u8 + 1));
    for e in &v.errors {
        out.push(
            Error::ALL
                .iter()
                .position(|x| *x == e.code)
                .map_or(0, |i| i as u8 + 1),
        );
    }
    out
}

/// A formatted value and caret, as `{ value, caret }`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Formatted {
    value: String,
    /// The caret offset (UTF-16 code units).
    pub caret: u32,
}

#[wasm_bindgen]
impl Formatted {
    /// The formatted value.
    #[wasm_bindgen(getter)]
    pub fn value(&self) -> String {
        self.value.clone()
    }
}

impl From<card::Formatted> for Formatted {
    fn from(f: card::Formatted) -> Self {
        Formatted {
            value: f.value,
            caret: u32::try_from(f.caret).unwrap_or(u32::MAX),
        }
    }
}

fn caret_of(caret: i32) -> Option<usize> {
    usize::try_from(caret).ok()
}

/// `formatCardNumber`; a negative caret means "at the end".
#[wasm_bindgen(js_name = "formatCardNumber")]
pub fn format_card_number(input: &str, caret: i32) -> Formatted {
    card::format_card_number(input, caret_of(caret)).into()
}

/// `formatExpiry`; a negative caret means "at the end".
#[wasm_bindgen(js_name = "formatExpiry")]
pub fn format_expiry(input: &str, caret: i32) -> Formatted {
    card::format_expiry(input, caret_of(caret)).into()
}
