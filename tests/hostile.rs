//! Any string into every core function: a verdict, never a panic, and consistent invariants.
#![cfg(not(target_arch = "wasm32"))]

use cardseal::Secret;
use cardseal::card::{
    Brand, CardInput, Today, format_card_number, format_expiry, validate_card, validate_cvc,
    validate_expiry, validate_number,
};
use proptest::prelude::*;

fn today() -> Today {
    Today::new(2026, 11)
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9 -]{0,30}",
        "[0-9]{12,19}",
        "[0-9/ ]{0,10}",
        "[\\x00-\\x1f\\u{202e}\\u{fffd}0-9]{0,20}",
        "[😀-🙏٠-٩０-９]{0,20}",
        Just("9".repeat(10_000)),
        Just("\u{0}".repeat(10_000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn number_verdicts_are_consistent(s in hostile()) {
        let v = validate_number(&s);
        prop_assert_eq!(v.is_valid, v.code.is_none());
        prop_assert!(!v.is_valid || v.is_potentially_valid);
        if v.is_valid {
            prop_assert!(v.brand.is_some());
        }
        if let Some(b) = v.brand {
            prop_assert!(v.candidates.iter().any(|c| c == b));
        }
    }

    #[test]
    fn other_validators_never_panic(s in hostile(), t in hostile()) {
        let e = validate_expiry(&s, &t, today());
        prop_assert_eq!(e.is_valid, e.code.is_none());
        for brand in [None, Some(Brand::Amex), Some(Brand::Visa)] {
            let c = validate_cvc(&s, brand);
            prop_assert_eq!(c.is_valid, c.code.is_none());
        }
        let card = CardInput {
            number: Secret::new(s.clone()),
            exp_month: s.clone(),
            exp_year: t.clone(),
            cvc: Some(Secret::new(t.clone())),
            name: Some(s.clone()),
        };
        let v = validate_card(&card, today());
        prop_assert_eq!(v.valid, v.errors.is_empty());
    }

    #[test]
    fn formatting_outputs_digits_spaces_and_a_caret_inside(s in hostile(), caret in 0usize..20_000) {
        let f = format_card_number(&s, Some(caret));
        prop_assert!(f.value.bytes().all(|b| b.is_ascii_digit() || b == b' '));
        prop_assert!(f.value.len() <= 23 && f.caret <= f.value.len());
        // Formatting is idempotent.
        prop_assert_eq!(format_card_number(&f.value, None).value, f.value.clone());
        let g = format_expiry(&s, Some(caret));
        prop_assert!(g.value.bytes().all(|b| b.is_ascii_digit() || b == b' ' || b == b'/'));
        prop_assert!(g.value.len() <= 7 && g.caret <= g.value.len());
        prop_assert_eq!(format_expiry(&g.value, None).value, g.value.clone());
    }

    #[test]
    fn formatted_numbers_validate_like_the_raw_digits(d in "[0-9]{1,19}") {
        let f = format_card_number(&d, None);
        let digits: String = f.value.chars().filter(char::is_ascii_digit).collect();
        if digits.len() == d.len() {
            prop_assert_eq!(validate_number(&f.value), validate_number(&d));
        }
    }
}
