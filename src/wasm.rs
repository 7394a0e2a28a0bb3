//! The thin wasm-bindgen layer: each export converts its inputs, calls the core, and converts
//! the result back. The hand-written `js/` wrapper turns these into the public API of DESIGN.md.
//!
//! - this file: the stateless validators and formatters;
//! - [`verdict`]: the packed verdicts of the as-you-type validators (the keystroke hot path);
//! - [`client`]: `Client`, the vault client (`CardSeal.create`, `tokenize`, `tokenizeCvc`) over
//!   web-sys `fetch`, with the vault key it seals with;
//! - [`error`]: the error objects every export rejects with.
//!
//! Values cross the boundary through serde-wasm-bindgen: options, card input and keys in, as
//! typed structs; tables, `validateCard`'s result, formatted values and errors out, as plain
//! objects. Only the per-keystroke verdicts cross as packed numbers ([`verdict`]).

mod client;
mod error;
pub mod verdict;

pub use client::Client;

use std::sync::atomic::{AtomicU16, Ordering};

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::Error;
use crate::card::{self, Brand, CardInput, FieldError, Today};
use crate::error::Locale;
use crate::secret::Secret;

#[cfg(not(target_feature = "atomics"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// A Rust value as a plain JS object (absent members as `null`, as the public types have them).
fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true))
        .unwrap_or(JsValue::UNDEFINED)
}

fn now_seconds() -> i64 {
    // Date.now() is milliseconds since the epoch; f64 holds it exactly.
    (js_sys::Date::now() / 1000.0) as i64
}

/// The current month, by the browser's clock.
fn today() -> Today {
    Today::from_unix(now_seconds())
}

/// A `CardInput` as `js/validate.js` passes it: every member already text (JS coerces the odd
/// values a page may pass, as it always did); with an empty year, the month may hold the whole
/// `MM / YY` field.
#[derive(Deserialize)]
struct CardInputJs {
    number: String,
    exp_month: String,
    exp_year: String,
    cvc: Option<String>,
    name: Option<String>,
}

/// A card input from JS; anything but the object `js/validate.js` builds is an empty card.
fn card_input(value: JsValue) -> CardInput {
    let c: CardInputJs = serde_wasm_bindgen::from_value(value).unwrap_or(CardInputJs {
        number: String::new(),
        exp_month: String::new(),
        exp_year: String::new(),
        cvc: None,
        name: None,
    });
    let (exp_month, exp_year) = card::expiry_fields(&c.exp_month, &c.exp_year);
    CardInput {
        number: Secret::new(c.number),
        exp_month,
        exp_year,
        cvc: c.cvc.map(Secret::new),
        name: c.name,
    }
}

/// Brand wire names in table order, for decoding candidate bits.
#[wasm_bindgen(js_name = "brandTable")]
pub fn brand_table() -> JsValue {
    to_js(&Brand::all().map(Brand::as_str).collect::<Vec<_>>())
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

/// Error codes in `Error::ALL` order, as `[{ code, message, field, type }]`.
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
        Some(locale) => to_js(
            &Error::ALL
                .iter()
                .map(|e| e.message_in(locale))
                .collect::<Vec<_>>(),
        ),
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

/// `{ field, code, message }`.
#[derive(Debug, Serialize)]
struct FieldErrorJs {
    field: &'static str,
    code: &'static str,
    message: &'static str,
}

impl From<&FieldError> for FieldErrorJs {
    fn from(e: &FieldError) -> Self {
        FieldErrorJs {
            field: e.field.as_str(),
            code: e.code.code(),
            message: e.code.message(),
        }
    }
}

/// `validateCard`'s result.
#[derive(Serialize)]
struct CardValidationJs {
    valid: bool,
    brand: Option<&'static str>,
    errors: Vec<FieldErrorJs>,
}

/// `validateCard`: `{ valid, brand, errors: [{ field, code, message }] }`.
#[wasm_bindgen(js_name = "validateCard")]
pub fn validate_card(card: JsValue) -> JsValue {
    let v = card::validate_card(&card_input(card), today());
    to_js(&CardValidationJs {
        valid: v.valid,
        brand: v.brand.map(Brand::as_str),
        errors: v.errors.iter().map(FieldErrorJs::from).collect(),
    })
}

/// A formatted value and its caret (UTF-16 code units).
#[derive(Serialize)]
struct FormattedJs<'a> {
    value: &'a str,
    caret: u32,
}

/// `{ value, caret }`.
fn formatted(f: &card::Formatted) -> JsValue {
    to_js(&FormattedJs {
        value: &f.value,
        caret: u32::try_from(f.caret).unwrap_or(u32::MAX),
    })
}

fn caret_of(caret: i32) -> Option<usize> {
    usize::try_from(caret).ok()
}

/// `formatCardNumber`; a negative caret means "at the end".
#[wasm_bindgen(js_name = "formatCardNumber")]
pub fn format_card_number(input: &str, caret: i32) -> JsValue {
    formatted(&card::format_card_number(input, caret_of(caret)))
}

/// `formatExpiry`; a negative caret means "at the end".
#[wasm_bindgen(js_name = "formatExpiry")]
pub fn format_expiry(input: &str, caret: i32) -> JsValue {
    formatted(&card::format_expiry(input, caret_of(caret)))
}

/// `formatCvc`: digits only, at most as many as the longest CVC; a negative caret means "at
/// the end".
#[wasm_bindgen(js_name = "formatCvc")]
pub fn format_cvc(input: &str, caret: i32) -> JsValue {
    formatted(&card::format_cvc(input, caret_of(caret)))
}
