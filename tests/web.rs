//! Browser tests of the wasm bindings: `wasm-pack test --headless --chrome --firefox`.
#![cfg(target_arch = "wasm32")]

use cardseal::wasm::{
    brand_table, error_table, format_card_number, format_expiry, validate_card_packed,
    validate_cvc_packed, validate_expiry_packed, validate_number_packed,
};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const VALID: u32 = 1 << 21;
const POTENTIAL: u32 = 1 << 22;

fn brand_of(bits: u32) -> Option<String> {
    let i = (bits >> 16) & 31;
    (i > 0).then(|| brand_table()[i as usize - 1].clone())
}

fn code_of(bits: u32) -> Option<String> {
    let i = (bits >> 23) & 31;
    (i > 0).then(|| error_table()[(i as usize - 1) * 4].clone())
}

#[wasm_bindgen_test]
fn number_verdicts_cross_the_boundary() {
    let v = validate_number_packed("4242 4242 4242 4242");
    assert_eq!(brand_of(v).as_deref(), Some("visa"));
    assert!(v & VALID != 0 && v & POTENTIAL != 0);
    assert_eq!(code_of(v), None);

    let v = validate_number_packed("378282246310006");
    assert_eq!(code_of(v).as_deref(), Some("invalid_number"));
    assert_eq!(v & (VALID | POTENTIAL), 0);

    // "2": Mastercard, JCB and Mir are all still possible.
    let v = validate_number_packed("2");
    assert_eq!(brand_of(v), None);
    assert_eq!((v & 0xffff).count_ones(), 3);
    assert_eq!(code_of(v).as_deref(), Some("incomplete_number"));
}

#[wasm_bindgen_test]
fn tables_match_the_core() {
    let brands = brand_table();
    assert!(brands.len() >= 15);
    assert_eq!(brands[0], "visa");
    let errors = error_table();
    assert_eq!(errors.len() % 4, 0);
    assert!(errors.chunks(4).any(|r| r[0] == "invalid_expiry_year_past"
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
    let aoe = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        now.get_time() - 12.0 * 3600.0 * 1000.0,
    ));
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

    let ok = validate_card_packed(
        "4242424242424242".into(),
        "12".into(),
        "2035".into(),
        Some("123".into()),
        None,
    );
    assert_eq!(ok, vec![1, 1]);
    let bad = validate_card_packed(
        "4242424242424241".into(),
        "13".into(),
        "2035".into(),
        Some("12".into()),
        None,
    );
    assert_eq!(bad[0], 0);
    let codes: Vec<_> = bad[2..]
        .iter()
        .map(|&i| error_table()[(usize::from(i) - 1) * 4].clone())
        .collect();
    assert_eq!(
        codes,
        ["invalid_number", "invalid_expiry_month", "incomplete_cvc"]
    );
}

#[wasm_bindgen_test]
fn formatting() {
    let f = format_card_number("378282246310005", -1);
    assert_eq!((f.value().as_str(), f.caret), ("3782 822463 10005", 17));
    let f = format_card_number("42424", 5);
    assert_eq!((f.value().as_str(), f.caret), ("4242 4", 6));
    let f = format_expiry("123", -1);
    assert_eq!((f.value().as_str(), f.caret), ("12 / 3", 6));
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
        let v = validate_number_packed(s);
        assert!(v & VALID == 0);
        let _ = validate_expiry_packed(s, s);
        let _ = validate_cvc_packed(s, s);
        let _ = validate_card_packed(s.into(), s.into(), s.into(), Some(s.into()), Some(s.into()));
        let f = format_card_number(s, 3);
        assert!(f.value().len() <= 23);
        let f = format_expiry(s, 10_000);
        assert!(f.value().len() <= 7);
    }
}
