//! The thin wasm-bindgen layer: each export converts its inputs, calls the core, and converts
//! the result back. The hand-written `js/` wrapper turns these into the public API of DESIGN.md.
//!
//! - this file: the stateless validators and formatters;
//! - [`verdict`]: the packed verdicts of the as-you-type validators (the keystroke hot path);
//! - [`seal`]: `Sealer`, the vault key and the seals made with it (`js/client.js` posts them);
//! - [`error`]: the error objects every export rejects with.
//!
//! Results off the hot path (tables, `validateCard`, errors) cross through serde-wasm-bindgen.
//! Options come in through typed getters instead: serde-wasm-bindgen's deserializer measured
//! 12.5 KB of gzipped wasm, most of it core's float formatting for error messages that are
//! thrown away.

mod error;
mod seal;
pub mod verdict;

pub use seal::Sealer;

use std::sync::atomic::{AtomicU16, Ordering};

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::Error;
use crate::card::{self, Brand, CardInput, FieldError, Today};
use crate::error::Locale;
use crate::secret::Secret;

#[cfg(not(target_feature = "atomics"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// `value` as a JS value: structs as plain objects, `None` as `null`.
fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    let s = serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true);
    // These types hold only strings, numbers, booleans, options and sequences, which always
    // serialize.
    value.serialize(&s).unwrap_or(JsValue::UNDEFINED)
}

fn now_seconds() -> i64 {
    // Date.now() is milliseconds since the epoch; f64 holds it exactly.
    (js_sys::Date::now() / 1000.0) as i64
}

/// The current month, by the browser's clock.
fn today() -> Today {
    Today::from_unix(now_seconds())
}

/// A card as the JS wrapper passes it; with an empty year, the month may hold the whole
/// `MM / YY` field.
fn card_input(
    number: String,
    exp_month: String,
    exp_year: String,
    cvc: Option<String>,
    name: Option<String>,
) -> CardInput {
    let (exp_month, exp_year) = card::expiry_fields(&exp_month, &exp_year);
    CardInput {
        number: Secret::new(number),
        exp_month,
        exp_year,
        cvc: cvc.map(Secret::new),
        name,
    }
}

/// Brand wire names in table order, for decoding candidate bits.
#[wasm_bindgen(js_name = "brandTable")]
pub fn brand_table() -> Vec<String> {
    Brand::all().map(|b| b.as_str().to_owned()).collect()
}

/// One row of `errorTable`.
#[derive(Serialize)]
struct ErrorRow {
    code: &'static str,
    message: &'static str,
    field: Option<&'static str>,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Error codes in `Error::ALL` order, as `{ code, message, field, type }`.
#[wasm_bindgen(js_name = "errorTable")]
pub fn error_table() -> JsValue {
    let rows: Vec<ErrorRow> = Error::ALL
        .iter()
        .map(|e| ErrorRow {
            code: e.code(),
            message: e.message(),
            field: e.field().map(|f| f.as_str()),
            kind: e.kind(),
        })
        .collect();
    to_js(&rows)
}

/// The supported locale a BCP 47 tag asks for, as its canonical tag (`pt` gives `pt-BR`, `zh-CN`
/// gives `zh-Hans`), or `undefined`.
#[wasm_bindgen(js_name = "resolveLocale")]
pub fn resolve_locale(tag: &str) -> Option<String> {
    Locale::parse(tag).map(|l| l.tag().to_owned())
}

/// A supported locale's messages in `errorTable` order, or `undefined` for another tag.
#[wasm_bindgen(js_name = "localeMessages")]
pub fn locale_messages(tag: &str) -> JsValue {
    match Locale::parse(tag) {
        Some(locale) => {
            let messages: Vec<&str> = Error::ALL.iter().map(|e| e.message_in(locale)).collect();
            to_js(&messages)
        }
        None => JsValue::UNDEFINED,
    }
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

/// `validateNumber` of the first `len` code units of the input buffer, packed (see
/// [`verdict`]). The buffer is wiped as it is read, so no card number lingers in wasm memory.
#[wasm_bindgen(js_name = "validateNumberInput")]
pub fn validate_number_input(len: u32) -> f64 {
    let len = (len as usize).min(INPUT_CAPACITY);
    let units = INPUT[..len].iter().map(|u| u.swap(0, Ordering::Relaxed));
    let chars = char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER));
    verdict::number(card::validate_number_chars(chars))
}

/// `validateNumber`, packed (see [`verdict`]).
#[wasm_bindgen(js_name = "validateNumberPacked")]
pub fn validate_number_packed(number: &str) -> f64 {
    verdict::number(card::validate_number(number))
}

/// `validateExpiry`, packed. With an empty `year`, `month` may hold the whole `MM / YY` field.
#[wasm_bindgen(js_name = "validateExpiryPacked")]
pub fn validate_expiry_packed(month: &str, year: &str) -> u32 {
    let (month, year) = card::expiry_fields(month, year);
    verdict::head(card::validate_expiry(&month, &year, today()), None)
}

/// `validateCvc`, packed. An empty or unknown `brand` means "brand not known yet".
#[wasm_bindgen(js_name = "validateCvcPacked")]
pub fn validate_cvc_packed(cvc: &str, brand: &str) -> u32 {
    verdict::head(card::validate_cvc(cvc, Brand::from_name(brand)), None)
}

/// A field error as JS sees it, `{ field, code, message }`.
#[derive(Debug, Serialize)]
struct FieldErrorJs {
    field: &'static str,
    code: &'static str,
    message: &'static str,
}

impl From<FieldError> for FieldErrorJs {
    fn from(e: FieldError) -> Self {
        FieldErrorJs {
            field: e.field.as_str(),
            code: e.code.code(),
            message: e.code.message(),
        }
    }
}

/// `validateCard`'s result.
#[derive(Serialize)]
struct CardValidation {
    valid: bool,
    brand: Option<&'static str>,
    errors: Vec<FieldErrorJs>,
}

/// `validateCard`: `{ valid, brand, errors: [{ field, code, message }] }`.
#[wasm_bindgen(js_name = "validateCard")]
pub fn validate_card(
    number: String,
    exp_month: String,
    exp_year: String,
    cvc: Option<String>,
    name: Option<String>,
) -> JsValue {
    let input = card_input(number, exp_month, exp_year, cvc, name);
    let v = card::validate_card(&input, today());
    to_js(&CardValidation {
        valid: v.valid,
        brand: v.brand.map(Brand::as_str),
        errors: v.errors.into_iter().map(FieldErrorJs::from).collect(),
    })
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

/// `formatCvc`: digits only, at most as many as the longest CVC; a negative caret means "at
/// the end".
#[wasm_bindgen(js_name = "formatCvc")]
pub fn format_cvc(input: &str, caret: i32) -> Formatted {
    card::format_cvc(input, caret_of(caret)).into()
}
