//! Card validation: brand, number, expiry, CVC, name, and formatting. Pure Rust, no I/O.
//!
//! Parse, don't validate: [`Card::parse`] turns a [`CardInput`] into a [`Card`] whose parts are
//! each known good, and only a `Card` can be sealed. The `validate_*` functions give the
//! as-you-type verdicts that a form shows.

pub mod brand;
pub mod cvc;
pub mod expiry;
pub mod format;
pub mod name;
pub mod number;

pub use brand::{BRANDS, Brand, BrandInfo, Heads};
pub use cvc::{Cvc, MAX_CVC_SIZE, validate_cvc};
pub use expiry::{Expiry, Today, expiry_fields, split_expiry, validate_expiry};
pub use format::{Formatted, format_card_number, format_cvc, format_expiry};
pub use name::Name;
pub use number::{
    BrandSet, CardNumber, NumberVerdict, luhn, validate_number, validate_number_chars,
};

use crate::error::Field;
use crate::{Error, Secret};

/// A verdict on one field as it is being typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The field is complete and valid.
    pub is_valid: bool,
    /// More typing could still make it valid.
    pub is_potentially_valid: bool,
    /// Why it is not valid.
    pub code: Option<Error>,
}

impl Verdict {
    fn from_result<T>(r: Result<T, Error>) -> Verdict {
        match r {
            Ok(_) => Verdict {
                is_valid: true,
                is_potentially_valid: true,
                code: None,
            },
            Err(e) => Verdict {
                is_valid: false,
                is_potentially_valid: e.is_incomplete(),
                code: Some(e),
            },
        }
    }
}

/// What the customer typed, unparsed. The number and CVC are secret from the start.
#[derive(Clone, Debug, Default)]
pub struct CardInput {
    /// The card number, separators allowed.
    pub number: Secret,
    /// The month, `"1"`…`"12"`.
    pub exp_month: String,
    /// The year, 2 or 4 digits.
    pub exp_year: String,
    /// The CVC, if collected.
    pub cvc: Option<Secret>,
    /// The cardholder name, if collected.
    pub name: Option<String>,
}

/// One field's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field.
    pub field: Field,
    /// The error (its `code()` and `message()` are what a form shows).
    pub code: Error,
}

impl From<Error> for FieldError {
    fn from(code: Error) -> Self {
        FieldError {
            field: code.field().unwrap_or(Field::Number),
            code,
        }
    }
}

/// A complete, valid card: the only thing that can be sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The number and its brand.
    pub number: CardNumber,
    /// The expiry.
    pub expiry: Expiry,
    /// The CVC, sized for the brand, if one was given.
    pub cvc: Option<Cvc>,
    /// The cardholder name, if one was given.
    pub name: Option<Name>,
}

impl Card {
    /// Parses every field, reporting every field's error at once (in form order).
    pub fn parse(input: &CardInput, today: Today) -> Result<Card, Vec<FieldError>> {
        let number = CardNumber::parse(input.number.expose());
        let brand = number.as_ref().ok().map(CardNumber::brand);
        let expiry = Expiry::parse(&input.exp_month, &input.exp_year, today);
        // A CVC that was collected but left empty is incomplete; `None` means "not collected".
        let cvc = input
            .cvc
            .as_ref()
            .map(|c| Cvc::parse(c.expose(), brand))
            .transpose();
        let name = input
            .name
            .as_deref()
            .map(Name::parse)
            .transpose()
            .map(Option::flatten);
        match (number, expiry, cvc, name) {
            (Ok(number), Ok(expiry), Ok(cvc), Ok(name)) => Ok(Card {
                number,
                expiry,
                cvc,
                name,
            }),
            (n, e, c, m) => Err([n.err(), e.err(), c.err(), m.err()]
                .into_iter()
                .flatten()
                .map(FieldError::from)
                .collect()),
        }
    }
}

/// The verdict on a whole card, as `validateCard` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardValidation {
    /// Every field is valid.
    pub valid: bool,
    /// The brand, if the number names one.
    pub brand: Option<Brand>,
    /// One error per invalid field.
    pub errors: Vec<FieldError>,
}

/// Validates a whole card (never panics).
pub fn validate_card(input: &CardInput, today: Today) -> CardValidation {
    let brand = validate_number(input.number.expose()).brand;
    match Card::parse(input, today) {
        Ok(card) => CardValidation {
            valid: true,
            brand: Some(card.number.brand()),
            errors: Vec::new(),
        },
        Err(errors) => CardValidation {
            valid: false,
            brand,
            errors,
        },
    }
}
