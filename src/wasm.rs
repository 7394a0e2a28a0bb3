//! The thin wasm-bindgen layer: each export converts its inputs, calls the core, and converts
//! the result back. The hand-written `js/` wrapper turns these into the public API of DESIGN.md.
//!
//! - this file: the stateless validators and formatters;
//! - [`verdict`]: the packed verdicts of the as-you-type validators (the keystroke hot path);
//! - [`seal`]: `Sealer`, the vault key and the seals made with it (`js/client.js` posts them);
//! - [`error`]: the error objects every export rejects with.
//!
//! Results off the hot path (tables, `validateCard`, formatted values, errors) cross as JSON
//! text that `js/core.js` parses: one string per call, written by `crate::json`. Through
//! serde-wasm-bindgen they cost more than they saved (figures in README "Performance").

mod error;
mod seal;
pub mod verdict;

pub use seal::Sealer;

use std::sync::atomic::{AtomicU16, Ordering};

use wasm_bindgen::prelude::*;

use crate::card::{self, Brand, CardInput, FieldError, Today};
use crate::error::Locale;
use crate::secret::Secret;
use crate::{Error, json};

#[cfg(not(target_feature = "atomics"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// JSON text, as `write` writes it.
fn json(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    // Always UTF-8: JSON written from `&str`s and ASCII.
    String::from_utf8(out).unwrap_or_default()
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

/// Brand wire names in table order, for decoding candidate bits: a JSON array.
#[wasm_bindgen(js_name = "brandTable")]
pub fn brand_table() -> String {
    json(|out| json::write_str_array(out, Brand::all().map(Brand::as_str)))
}

/// Error codes in `Error::ALL` order, as a JSON array of `{ code, message, field, type }`.
#[wasm_bindgen(js_name = "errorTable")]
pub fn error_table() -> String {
    json(|out| {
        json::write_array(out, Error::ALL.iter(), |out, e| {
            let mut row = json::Object::new(out);
            row.str("code", Some(e.code()))
                .str("message", Some(e.message()))
                .str("field", e.field().map(|f| f.as_str()))
                .str("type", Some(e.kind()));
            row.end();
        });
    })
}

/// The supported locale a BCP 47 tag asks for, as its canonical tag (`pt` gives `pt-BR`, `zh-CN`
/// gives `zh-Hans`), or `undefined`.
#[wasm_bindgen(js_name = "resolveLocale")]
pub fn resolve_locale(tag: &str) -> Option<String> {
    Locale::parse(tag).map(|l| l.tag().to_owned())
}

/// A supported locale's messages in `errorTable` order, as a JSON array, or `undefined` for
/// another tag.
#[wasm_bindgen(js_name = "localeMessages")]
pub fn locale_messages(tag: &str) -> Option<String> {
    let locale = Locale::parse(tag)?;
    Some(json(|out| {
        json::write_str_array(out, Error::ALL.iter().map(|e| e.message_in(locale)));
    }))
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
fn write_field_error(out: &mut Vec<u8>, e: &FieldError) {
    let mut o = json::Object::new(out);
    o.str("field", Some(e.field.as_str()))
        .str("code", Some(e.code.code()))
        .str("message", Some(e.code.message()));
    o.end();
}

/// A JSON array of field errors.
fn write_field_errors(out: &mut Vec<u8>, errors: &[FieldError]) {
    json::write_array(out, errors, write_field_error);
}

/// `validateCard`: `{ valid, brand, errors: [{ field, code, message }] }`, as JSON.
#[wasm_bindgen(js_name = "validateCard")]
pub fn validate_card(
    number: String,
    exp_month: String,
    exp_year: String,
    cvc: Option<String>,
    name: Option<String>,
) -> String {
    let input = card_input(number, exp_month, exp_year, cvc, name);
    let v = card::validate_card(&input, today());
    json(|out| {
        let mut o = json::Object::new(out);
        o.bool("valid", v.valid)
            .str("brand", v.brand.map(Brand::as_str));
        write_field_errors(o.member("errors"), &v.errors);
        o.end();
    })
}

/// A formatted value and its caret (UTF-16 code units), as JSON `{ value, caret }`.
fn formatted(f: &card::Formatted) -> String {
    json(|out| {
        let mut o = json::Object::new(out);
        o.str("value", Some(&f.value))
            .int("caret", i64::try_from(f.caret).unwrap_or(i64::MAX));
        o.end();
    })
}

fn caret_of(caret: i32) -> Option<usize> {
    usize::try_from(caret).ok()
}

/// `formatCardNumber`; a negative caret means "at the end".
#[wasm_bindgen(js_name = "formatCardNumber")]
pub fn format_card_number(input: &str, caret: i32) -> String {
    formatted(&card::format_card_number(input, caret_of(caret)))
}

/// `formatExpiry`; a negative caret means "at the end".
#[wasm_bindgen(js_name = "formatExpiry")]
pub fn format_expiry(input: &str, caret: i32) -> String {
    formatted(&card::format_expiry(input, caret_of(caret)))
}

/// `formatCvc`: digits only, at most as many as the longest CVC; a negative caret means "at
/// the end".
#[wasm_bindgen(js_name = "formatCvc")]
pub fn format_cvc(input: &str, caret: i32) -> String {
    formatted(&card::format_cvc(input, caret_of(caret)))
}
