//! Browser tests of the wasm bindings: `wasm-pack test --headless --chrome --firefox`.
#![cfg(target_arch = "wasm32")]

use cardseal::wasm::verdict::LAYOUT;
use cardseal::wasm::{
    brand_table, error_table, format_card_number, format_expiry, validate_card,
    validate_cvc_packed, validate_expiry_packed, validate_number_packed,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const VALID: u32 = LAYOUT.valid_bit;
const POTENTIAL: u32 = LAYOUT.potential_bit;

fn get(v: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(v, &k.into()).unwrap()
}

/// A card input object as `js/validate.js` builds it.
fn card(number: &str, month: &str, year: &str, cvc: Option<&str>, name: Option<&str>) -> JsValue {
    let o = js_sys::Object::new();
    let set = |k: &str, v: &str| js_sys::Reflect::set(&o, &k.into(), &v.into()).unwrap();
    set("number", number);
    set("exp_month", month);
    set("exp_year", year);
    cvc.map(|c| set("cvc", c));
    name.map(|n| set("name", n));
    o.into()
}

/// A formatter's `{ value, caret }`, a plain object.
fn value_caret(f: JsValue) -> (String, u32) {
    (
        get(&f, "value").as_string().unwrap(),
        get(&f, "caret").as_f64().unwrap() as u32,
    )
}

fn brands() -> Vec<String> {
    js_sys::Array::from(&brand_table())
        .iter()
        .map(|b| b.as_string().unwrap())
        .collect()
}

/// `errorTable()` as `[code, message, field or "", type]` rows.
fn error_rows() -> Vec<[String; 4]> {
    js_sys::Array::from(&error_table())
        .iter()
        .map(|r| {
            ["code", "message", "field", "type"].map(|k| get(&r, k).as_string().unwrap_or_default())
        })
        .collect()
}

/// A number verdict's head word and candidate bits.
fn split(packed: f64) -> (u32, u32) {
    (
        (packed / LAYOUT.head_scale) as u32,
        (packed % LAYOUT.head_scale) as u32,
    )
}

fn number_head(s: &str) -> u32 {
    split(validate_number_packed(s)).0
}

fn brand_of(bits: u32) -> Option<String> {
    let i = bits & LAYOUT.brand_mask;
    (i > 0).then(|| brands()[i as usize - 1].clone())
}

fn code_of(bits: u32) -> Option<String> {
    let i = (bits >> LAYOUT.code_shift) & LAYOUT.code_mask;
    (i > 0).then(|| error_rows()[i as usize - 1][0].clone())
}

#[wasm_bindgen_test]
fn number_verdicts_cross_the_boundary() {
    let v = number_head("4242 4242 4242 4242");
    assert_eq!(brand_of(v).as_deref(), Some("visa"));
    assert!(v & VALID != 0 && v & POTENTIAL != 0);
    assert_eq!(code_of(v), None);

    let v = number_head("378282246310006");
    assert_eq!(code_of(v).as_deref(), Some("invalid_number"));
    assert_eq!(v & (VALID | POTENTIAL), 0);

    // "2": Mastercard, JCB and Mir are all still possible.
    let (v, candidates) = split(validate_number_packed("2"));
    assert_eq!(brand_of(v), None);
    assert_eq!(candidates.count_ones(), 3);
    assert_eq!(code_of(v).as_deref(), Some("incomplete_number"));
}

#[wasm_bindgen_test]
fn tables_match_the_core() {
    let brands = brands();
    assert!(brands.len() >= 15);
    assert_eq!(brands[0], "visa");
    let errors = error_rows();
    assert!(errors.iter().any(|r| r[0] == "invalid_expiry_year_past"
        && r[2] == "expiry"
        && r[3] == "validation_error"));
}

#[wasm_bindgen_test]
fn expiry_uses_the_browser_clock() {
    // The browser's current month is valid, whatever the date the test runs; the past is not.
    assert_eq!(
        code_of(validate_expiry_packed("12", "2019")).as_deref(),
        Some("invalid_expiry_year_past")
    );
    let now = js_sys::Date::new_0();
    // The month it is in UTC-12, the last place a month ends.
    let aoe = js_sys::Date::new(&JsValue::from_f64(now.get_time() - 12.0 * 3600.0 * 1000.0));
    let (m, y) = (aoe.get_utc_month() + 1, aoe.get_utc_full_year());
    assert!(validate_expiry_packed(&m.to_string(), &y.to_string()) & VALID != 0);
    assert!(validate_expiry_packed("12", &(y + 5).to_string()) & VALID != 0);
    assert_eq!(
        code_of(validate_expiry_packed("12", &(y + 21).to_string())).as_deref(),
        Some("invalid_expiry_year")
    );
    // The combined field form.
    let v = validate_expiry_packed(&format!("{m:02} / {:02}", y % 100), "");
    assert!(v & VALID != 0, "{v:b}");
    assert_eq!(
        code_of(validate_expiry_packed("13", "30")).as_deref(),
        Some("invalid_expiry_month")
    );
}

#[wasm_bindgen_test]
fn cvc_and_card() {
    assert!(validate_cvc_packed("1234", "amex") & VALID != 0);
    assert_eq!(
        code_of(validate_cvc_packed("1234", "visa")).as_deref(),
        Some("invalid_cvc")
    );
    assert!(validate_cvc_packed("123", "not-a-brand") & VALID != 0);

    let ok = validate_card(card("4242424242424242", "12", "2035", Some("123"), None));
    assert_eq!(get(&ok, "valid"), JsValue::TRUE);
    assert_eq!(get(&ok, "brand").as_string().as_deref(), Some("visa"));
    assert_eq!(js_sys::Array::from(&get(&ok, "errors")).length(), 0);
    let bad = validate_card(card("4242424242424241", "13", "2035", Some("12"), None));
    assert_eq!(get(&bad, "valid"), JsValue::FALSE);
    let codes: Vec<_> = js_sys::Array::from(&get(&bad, "errors"))
        .iter()
        .map(|e| get(&e, "code").as_string().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["invalid_number", "invalid_expiry_month", "incomplete_cvc"]
    );
}

#[wasm_bindgen_test]
fn formatting() {
    let (value, caret) = value_caret(format_card_number("378282246310005", -1));
    assert_eq!((value.as_str(), caret), ("3782 822463 10005", 17));
    let (value, caret) = value_caret(format_card_number("42424", 5));
    assert_eq!((value.as_str(), caret), ("4242 4", 6));
    let (value, caret) = value_caret(format_expiry("123", -1));
    assert_eq!((value.as_str(), caret), ("12 / 3", 6));
}

#[wasm_bindgen_test]
fn hostile_input_never_panics() {
    let long = "9".repeat(10_000);
    let inputs = [
        "",
        "\u{0}\u{1}\u{7f}",
        "\u{FFFD}",
        "😀😀😀😀",
        "٤٢٤٢",
        long.as_str(),
        "4242\u{202E}4242",
        "  -- -- ",
    ];
    for s in inputs {
        let v = number_head(s);
        assert!(v & VALID == 0);
        let _ = validate_expiry_packed(s, s);
        let _ = validate_cvc_packed(s, s);
        let _ = validate_card(card(s, s, s, Some(s), Some(s)));
        let _ = validate_card(s.into());
        assert!(value_caret(format_card_number(s, 3)).0.len() <= 23);
        assert!(value_caret(format_expiry(s, 10_000)).0.len() <= 7);
    }
}
