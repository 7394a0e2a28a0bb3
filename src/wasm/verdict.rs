//! The packed verdicts of `validateNumber`, `validateExpiry` and `validateCvc`.
//!
//! `validateNumber` runs on every keystroke (and 100,000 times in the benchmark). An object built
//! from wasm costs a crossing per property; a number costs none. So a verdict crosses as one
//! number: a head word (brand, `isValid`, `isPotentiallyValid`, error) and, for a card number,
//! the candidate set in the low 32 bits below it (an `f64` holds integers to 2^53 exactly).
//! [`LAYOUT`] is the only definition of where each part sits: `js/core.js` reads it from
//! `verdictLayout()` at `ready()`.

use wasm_bindgen::prelude::*;

use crate::Error;
use crate::card::{BRANDS, Brand, BrandSet, NumberVerdict, Verdict};

/// Where each part of a packed verdict sits. The head word is `brand row + 1` in its lowest
/// bits (0 for none), then the two flags, then `index in Error::ALL + 1` (0 for none).
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// Bits of the head word that hold the brand row + 1.
    pub brand_mask: u32,
    /// The `isValid` bit of the head word.
    pub valid_bit: u32,
    /// The `isPotentiallyValid` bit of the head word.
    pub potential_bit: u32,
    /// Where the error index + 1 starts in the head word.
    pub code_shift: u32,
    /// Its bits, once shifted down.
    pub code_mask: u32,
    /// What the head word of a number verdict is multiplied by, above the candidate set.
    pub head_scale: f64,
}

/// The layout.
pub const LAYOUT: Layout = Layout {
    brand_mask: 0x3f,
    valid_bit: 1 << 6,
    potential_bit: 1 << 7,
    code_shift: 8,
    code_mask: 0x3f,
    head_scale: 4_294_967_296.0,
};

// The table must fit: 32 candidate bits, and a row + 1 or an error index + 1 in 6 bits.
const _: () = assert!(BRANDS.len() <= BrandSet::CAPACITY && BrandSet::CAPACITY <= 32);
const _: () = assert!(BrandSet::CAPACITY < LAYOUT.brand_mask as usize);
const _: () = assert!(Error::ALL.len() < LAYOUT.code_mask as usize);

/// The layout of the packed verdicts: `{ brandMask, validBit, potentialBit, codeShift,
/// codeMask, headScale }`.
#[wasm_bindgen(js_name = "verdictLayout")]
pub fn verdict_layout() -> JsValue {
    super::to_js(&LAYOUT)
}

/// The head word of a verdict.
pub fn head(v: Verdict, brand: Option<Brand>) -> u32 {
    let code = v
        .code
        .and_then(|c| Error::ALL.iter().position(|e| *e == c))
        .map_or(0, |i| (i as u32 + 1) << LAYOUT.code_shift);
    let brand = brand.map_or(0, |b| b.index() as u32 + 1);
    let mut bits = code | brand;
    if v.is_valid {
        bits |= LAYOUT.valid_bit;
    }
    if v.is_potentially_valid {
        bits |= LAYOUT.potential_bit;
    }
    bits
}

/// A card number's verdict: the head word above the candidate set.
pub fn number(v: NumberVerdict) -> f64 {
    let verdict = Verdict {
        is_valid: v.is_valid,
        is_potentially_valid: v.is_potentially_valid,
        code: v.code,
    };
    f64::from(head(verdict, v.brand)) * LAYOUT.head_scale + f64::from(v.candidates.bits())
}
