//! Table-driven tests of the card validation core.

use cardseal::card::{
    Brand, Card, CardInput, Today, format_card_number, format_expiry, validate_card, validate_cvc,
    validate_expiry, validate_number,
};
use cardseal::error::Field;
use cardseal::{Error, Secret};

/// The tests run "in" November 2026.
fn today() -> Today {
    Today::new(2026, 11)
}

/// Published test numbers (Stripe, Braintree, Adyen test-card pages) and, for brands without a
/// published number, Luhn-valid numbers in the brand's range.
const VALID: &[(&str, Brand)] = &[
    ("4242424242424242", Brand::Visa),
    ("4000056655665556", Brand::Visa),
    ("4242424242424000008", Brand::Visa),
    ("5555555555554444", Brand::Mastercard),
    ("2223003122003222", Brand::Mastercard),
    ("5200828282828210", Brand::Mastercard),
    ("378282246310005", Brand::Amex),
    ("371449635398431", Brand::Amex),
    ("6011111111111117", Brand::Discover),
    ("6011000990139424", Brand::Discover),
    ("6011000000000000001", Brand::Discover),
    ("6500000000000002", Brand::Discover),
    ("3056930009020004", Brand::Diners),
    ("36227206271667", Brand::Diners),
    ("3566002020360505", Brand::Jcb),
    ("2131000000000008", Brand::Jcb),
    ("1800000000000000", Brand::Jcb),
    ("6200000000000005", Brand::Unionpay),
    ("6205500000000000004", Brand::Unionpay),
    ("6759649826438453", Brand::Maestro),
    ("6304000000000000000", Brand::Maestro),
    ("2200000000000004", Brand::Mir),
    ("4011780000000006", Brand::Elo),
    ("5066991111111118", Brand::Elo),
    ("6363680000000007", Brand::Elo),
    ("6370950000000005", Brand::Hiper),
    ("6062826786276634", Brand::Hipercard),
    ("5060990000000008", Brand::Verve),
    ("9792000000000003", Brand::Troy),
    ("8600000000000007", Brand::Uzcard),
    ("9860000000000000", Brand::Humo),
];

#[test]
fn published_test_numbers_are_valid_with_their_brand() {
    for &(number, brand) in VALID {
        let v = validate_number(number);
        assert!(v.is_valid, "{number} should be valid: {v:?}");
        assert_eq!(v.brand, Some(brand), "{number}");
        assert_eq!(v.code, None);
        let parsed = cardseal::card::CardNumber::parse(number).unwrap();
        assert_eq!(parsed.brand(), brand);
        assert_eq!(parsed.expose(), number);
    }
    // Every brand in the table is covered by at least one number above.
    for brand in Brand::all() {
        assert!(
            VALID.iter().any(|(_, b)| *b == brand),
            "no test number for {brand}"
        );
    }
}

#[test]
fn range_boundaries() {
    // (number, brand or None when no brand may claim it)
    let cases: &[(&str, Option<Brand>)] = &[
        ("2220000000000000", None),
        ("2221000000000009", Some(Brand::Mastercard)),
        ("2720000000000005", Some(Brand::Mastercard)),
        ("2721000000000004", None),
        ("5100000000000008", Some(Brand::Mastercard)),
        ("5500000000000004", Some(Brand::Mastercard)),
        ("5600000000000003", Some(Brand::Maestro)),
        ("30000000000004", Some(Brand::Diners)),
        ("36000000000008", Some(Brand::Diners)),
        ("340000000000009", Some(Brand::Amex)),
        ("370000000000002", Some(Brand::Amex)),
        ("3528000000000007", Some(Brand::Jcb)),
        ("3589000000000003", Some(Brand::Jcb)),
        ("3590000000000000", None),
    ];
    for &(number, brand) in cases {
        let v = validate_number(number);
        assert_eq!(v.brand, brand, "{number}: {v:?}");
        assert_eq!(v.is_valid, brand.is_some(), "{number}: {v:?}");
        if brand.is_none() {
            assert_eq!(v.code, Some(Error::InvalidNumber), "{number}");
            assert!(!v.is_potentially_valid, "{number}");
        }
    }
    // The same boundaries as prefixes being typed.
    assert_eq!(validate_number("2221").brand, Some(Brand::Mastercard));
    assert_eq!(validate_number("2720").brand, Some(Brand::Mastercard));
    assert!(!validate_number("2721").is_potentially_valid);
    assert!(!validate_number("2220").is_potentially_valid);
    assert_eq!(validate_number("2204").brand, Some(Brand::Mir));
    assert!(!validate_number("2205").is_potentially_valid);
}

#[test]
fn ambiguous_prefixes_keep_every_candidate() {
    let v = validate_number("2");
    assert_eq!(v.brand, None);
    assert!(v.is_potentially_valid && !v.is_valid);
    assert_eq!(v.code, Some(Error::IncompleteNumber));
    let c: Vec<_> = v.candidates.iter().collect();
    assert!(
        c.contains(&Brand::Mastercard) && c.contains(&Brand::Mir) && c.contains(&Brand::Jcb),
        "{c:?}"
    );

    let v = validate_number("3");
    let c: Vec<_> = v.candidates.iter().collect();
    assert_eq!(v.brand, None);
    assert!(
        c.contains(&Brand::Amex) && c.contains(&Brand::Diners) && c.contains(&Brand::Jcb),
        "{c:?}"
    );

    // "4" is Visa, Elo (401178, 438935 …) or Maestro (493698) until later digits decide.
    let v = validate_number("4");
    assert_eq!(v.brand, None);
    assert_eq!(
        v.candidates.iter().collect::<Vec<_>>(),
        vec![Brand::Visa, Brand::Elo, Brand::Maestro]
    );
    assert_eq!(validate_number("42").brand, Some(Brand::Visa));
    assert_eq!(validate_number("37").brand, Some(Brand::Amex));
    // The most specific prefix wins once every candidate's prefix is typed in full.
    assert_eq!(validate_number("6011").brand, Some(Brand::Discover));
    assert_eq!(validate_number("401178").brand, Some(Brand::Elo));
    assert_eq!(validate_number("40117").brand, None);
}

#[test]
fn as_you_type_verdicts() {
    let cases: &[(&str, bool, bool, Option<Error>)] = &[
        // input, is_valid, is_potentially_valid, code
        ("", false, true, Some(Error::IncompleteNumber)),
        ("   ", false, true, Some(Error::IncompleteNumber)),
        ("4242", false, true, Some(Error::IncompleteNumber)),
        (
            "4242 4242 4242 424",
            false,
            true,
            Some(Error::IncompleteNumber),
        ),
        ("4242 4242 4242 4242", true, true, None),
        ("4242-4242-4242-4242", true, true, None),
        ("  4242424242424242\n", true, true, None),
        // Luhn fails at 16 digits; a 19-digit Visa could still follow.
        ("4242424242424241", false, true, Some(Error::InvalidNumber)),
        // Luhn fails at amex's only length.
        ("378282246310006", false, false, Some(Error::InvalidNumber)),
        // Too long for amex.
        ("3782822463100055", false, false, Some(Error::InvalidNumber)),
        // No brand starts with 0 or 99.
        ("0", false, false, Some(Error::InvalidNumber)),
        ("99", false, false, Some(Error::InvalidNumber)),
        ("4242abcd", false, false, Some(Error::InvalidNumber)),
        ("4242.4242", false, false, Some(Error::InvalidNumber)),
        (
            "42424242424242424242",
            false,
            false,
            Some(Error::InvalidNumber),
        ),
        (
            "4242424242424242424242",
            false,
            false,
            Some(Error::InvalidNumber),
        ),
        // Arabic-Indic and full-width digits are not card digits.
        ("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", false, false, Some(Error::InvalidNumber)),
        (
            "４２４２４２４２４２４２４２４２",
            false,
            false,
            Some(Error::InvalidNumber),
        ),
        ("4242\u{0}4242", false, false, Some(Error::InvalidNumber)),
        ("-", false, true, Some(Error::IncompleteNumber)),
    ];
    for &(input, valid, potential, code) in cases {
        let v = validate_number(input);
        assert_eq!(
            (v.is_valid, v.is_potentially_valid, v.code),
            (valid, potential, code),
            "{input:?}: {v:?}"
        );
    }
}

#[test]
fn unionpay_skips_luhn() {
    // UnionPay issues numbers without a Luhn check digit.
    let v = validate_number("6200000000000006");
    assert!(v.is_valid, "{v:?}");
}

#[test]
fn expiry_verdicts() {
    let cases: &[(&str, &str, Option<Error>, bool)] = &[
        // month, year, code, is_potentially_valid
        ("12", "30", None, true),
        ("12", "2030", None, true),
        ("1", "2030", None, true),
        ("01", "27", None, true),
        (" 11 ", " 26 ", None, true),
        // The current month is valid.
        ("11", "2026", None, true),
        ("11", "26", None, true),
        // Last month is in the past.
        ("10", "2026", Some(Error::InvalidExpiryYearPast), false),
        ("12", "2025", Some(Error::InvalidExpiryYearPast), false),
        ("12", "19", Some(Error::InvalidExpiryYearPast), false),
        ("0", "30", Some(Error::IncompleteExpiry), true),
        ("00", "30", Some(Error::InvalidExpiryMonth), false),
        ("13", "30", Some(Error::InvalidExpiryMonth), false),
        ("123", "30", Some(Error::InvalidExpiryMonth), false),
        ("1a", "30", Some(Error::InvalidExpiryMonth), false),
        ("", "", Some(Error::IncompleteExpiry), true),
        ("12", "", Some(Error::IncompleteExpiry), true),
        ("12", "2", Some(Error::IncompleteExpiry), true),
        ("12", "203", Some(Error::IncompleteExpiry), true),
        ("12", "20300", Some(Error::InvalidExpiryYear), false),
        ("12", "3x", Some(Error::InvalidExpiryYear), false),
        ("12", "٣٠", Some(Error::InvalidExpiryYear), false),
        // 20 years ahead is the limit.
        ("12", "2046", None, true),
        ("01", "2047", Some(Error::InvalidExpiryYear), false),
        // A wrong month is reported even when the year is unfinished.
        ("13", "", Some(Error::InvalidExpiryMonth), false),
    ];
    for &(m, y, code, potential) in cases {
        let v = validate_expiry(m, y, today());
        assert_eq!(v.code, code, "{m:?}/{y:?}");
        assert_eq!(v.is_valid, code.is_none(), "{m:?}/{y:?}");
        assert_eq!(v.is_potentially_valid, potential, "{m:?}/{y:?}");
    }
}

#[test]
fn expiry_follows_the_injected_clock() {
    // Valid through the last day of November anywhere on earth: 2026-12-01T11:59:59Z.
    let last_moment = Today::from_unix(1_796_083_200 + 12 * 3600 - 1);
    assert!(validate_expiry("11", "26", last_moment).is_valid);
    let next = Today::from_unix(1_796_083_200 + 12 * 3600);
    assert_eq!(
        validate_expiry("11", "26", next).code,
        Some(Error::InvalidExpiryYearPast)
    );
}

#[test]
fn cvc_verdicts() {
    let cases: &[(&str, Option<Brand>, Option<Error>)] = &[
        ("123", Some(Brand::Visa), None),
        ("1234", Some(Brand::Amex), None),
        ("123", Some(Brand::Amex), Some(Error::IncompleteCvc)),
        ("1234", Some(Brand::Visa), Some(Error::InvalidCvc)),
        ("12", Some(Brand::Visa), Some(Error::IncompleteCvc)),
        ("", Some(Brand::Visa), Some(Error::IncompleteCvc)),
        ("12a", Some(Brand::Visa), Some(Error::InvalidCvc)),
        ("١٢٣", Some(Brand::Visa), Some(Error::InvalidCvc)),
        ("123", None, None),
        ("1234", None, None),
        ("12345", None, Some(Error::InvalidCvc)),
        ("12", None, Some(Error::IncompleteCvc)),
        (" 123 ", Some(Brand::Mastercard), None),
    ];
    for &(cvc, brand, code) in cases {
        let v = validate_cvc(cvc, brand);
        assert_eq!(v.code, code, "{cvc:?} {brand:?}");
        assert_eq!(v.is_valid, code.is_none());
    }
}

fn input(number: &str, m: &str, y: &str, cvc: Option<&str>, name: Option<&str>) -> CardInput {
    CardInput {
        number: Secret::new(number),
        exp_month: m.into(),
        exp_year: y.into(),
        cvc: cvc.map(Secret::new),
        name: name.map(Into::into),
    }
}

#[test]
fn whole_card() {
    let ok = validate_card(
        &input(
            "4242 4242 4242 4242",
            "12",
            "30",
            Some("123"),
            Some("Ada Lovelace"),
        ),
        today(),
    );
    assert!(ok.valid);
    assert_eq!(ok.brand, Some(Brand::Visa));
    assert!(ok.errors.is_empty());

    // A 3-digit CVC on an amex card is incomplete for that brand.
    let amex = validate_card(
        &input("378282246310005", "12", "30", Some("123"), None),
        today(),
    );
    assert!(!amex.valid);
    assert_eq!(amex.brand, Some(Brand::Amex));
    assert_eq!(amex.errors.len(), 1);
    assert_eq!(
        (amex.errors[0].field, amex.errors[0].code),
        (Field::Cvc, Error::IncompleteCvc)
    );

    // Every field wrong at once, reported in form order.
    let bad = validate_card(
        &input(
            "4242424242424241",
            "13",
            "30",
            Some("12a"),
            Some("4242 4242"),
        ),
        today(),
    );
    let got: Vec<_> = bad.errors.iter().map(|e| (e.field, e.code)).collect();
    assert_eq!(
        got,
        vec![
            (Field::Number, Error::InvalidNumber),
            (Field::Expiry, Error::InvalidExpiryMonth),
            (Field::Cvc, Error::InvalidCvc),
            (Field::Name, Error::InvalidName),
        ]
    );

    // A collected but empty CVC is incomplete; an absent one is fine.
    let empty = validate_card(
        &input("4242424242424242", "12", "30", Some(" "), None),
        today(),
    );
    assert_eq!(
        empty.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        [Error::IncompleteCvc]
    );

    // CVC and name are optional; a blank name is absent.
    let card = Card::parse(
        &input("5555555555554444", "1", "2030", None, Some("  ")),
        today(),
    )
    .unwrap();
    assert_eq!(card.number.last4(), "4444");
    assert_eq!((card.expiry.month(), card.expiry.year()), (1, 2030));
    assert!(card.cvc.is_none() && card.name.is_none());
    // The parsed card never prints its secrets.
    let card = Card::parse(
        &input("4242424242424242", "12", "30", Some("987"), None),
        today(),
    )
    .unwrap();
    let debug = format!("{card:?}");
    assert!(
        !debug.contains("424242424242") && !debug.contains("987"),
        "{debug}"
    );
}

#[test]
fn names() {
    let name = |n: &str| {
        validate_card(
            &input("4242424242424242", "12", "30", None, Some(n)),
            today(),
        )
        .valid
    };
    assert!(name("Ada Lovelace"));
    assert!(name("José Ñúñez-O'Brien"));
    assert!(name("李小龍"));
    assert!(!name("Ada\u{7}Lovelace"));
    assert!(!name("4242 4242 4242 4242"));
    assert!(!name(&"a".repeat(101)));
    assert!(name(&"a".repeat(100)));
}

#[test]
fn card_number_formatting() {
    let cases: &[(&str, Option<usize>, &str, usize)] = &[
        // input, caret, value, caret after
        ("4242424242424242", None, "4242 4242 4242 4242", 19),
        ("378282246310005", None, "3782 822463 10005", 17),
        ("36227206271667", None, "3622 720627 1667", 16),
        ("4242424242424000008", None, "4242 4242 4242 4000 008", 23),
        ("6011000000000000001", None, "6011 0000 0000 0000 001", 23),
        // Digits beyond the brand's longest length are dropped.
        ("3782822463100059999", None, "3782 822463 10005", 17),
        (
            "42424242424242424242424",
            None,
            "4242 4242 4242 4242 424",
            23,
        ),
        ("", None, "", 0),
        ("abc", Some(3), "", 0),
        ("4242 42", None, "4242 42", 7),
        // Typing the fifth digit: the caret follows it past the new space.
        ("42424", Some(5), "4242 4", 6),
        // Editing in the middle keeps the caret after the same digit.
        ("4242 4242 4242 4242", Some(2), "4242 4242 4242 4242", 2),
        ("4242 9 4242 4242 4242", Some(6), "4242 9424 2424 2424 2", 6),
        // Deleting a space deletes nothing but moves the caret before the gap.
        ("42424242 4242 4242", Some(4), "4242 4242 4242 4242", 4),
        // UTF-16 carets: the emoji is two code units and is dropped.
        ("4242\u{1F600}4242", Some(6), "4242 4242", 4),
        ("  4-2-4-2  ", None, "4242", 4),
    ];
    for &(input, caret, value, after) in cases {
        let f = format_card_number(input, caret);
        assert_eq!(
            (f.value.as_str(), f.caret),
            (value, after),
            "{input:?} caret {caret:?}"
        );
    }
}

#[test]
fn expiry_formatting() {
    let cases: &[(&str, Option<usize>, &str, usize)] = &[
        ("", None, "", 0),
        ("1", None, "1", 1),
        ("12", None, "12", 2),
        ("123", None, "12 / 3", 6),
        ("1230", None, "12 / 30", 7),
        ("12302", None, "12 / 30", 7),
        ("4", None, "04", 2),
        ("42", None, "04 / 2", 6),
        ("1/", None, "01", 2),
        ("1/3", None, "01 / 3", 6),
        ("12 / 2030", None, "12 / 30", 7),
        // Backspace through the separator leaves the month alone.
        ("04 / ", Some(5), "04", 2),
        ("04 /", Some(4), "04", 2),
        ("12 / 3", Some(1), "12 / 3", 1),
        ("1a2b", None, "12", 2),
    ];
    for &(input, caret, value, after) in cases {
        let f = format_expiry(input, caret);
        assert_eq!(
            (f.value.as_str(), f.caret),
            (value, after),
            "{input:?} caret {caret:?}"
        );
    }
}
