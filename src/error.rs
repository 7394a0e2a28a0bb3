//! The one error type of the cardseal core, with stable codes.
//!
//! Codes are part of the public contract (JS `CardSealError.code`, the vault's `error.code`), so a
//! variant's code never changes. The messages are one table per language in [`messages`].

use std::fmt;

/// Every failure the core can report.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The card number is empty or too short so far.
    IncompleteNumber,
    /// The card number can never become valid (bad characters, length, prefix or Luhn).
    InvalidNumber,
    /// The expiry date is empty or not finished.
    IncompleteExpiry,
    /// The expiry month is not 1 to 12.
    InvalidExpiryMonth,
    /// The expiry year is not a 2- or 4-digit year, or is too far in the future.
    InvalidExpiryYear,
    /// The expiry date is in the past.
    InvalidExpiryYearPast,
    /// The CVC is empty or shorter than the brand needs.
    IncompleteCvc,
    /// The CVC has non-digits or is longer than the brand allows.
    InvalidCvc,
    /// The cardholder name is too long or holds control characters or digits.
    InvalidName,
    /// A key is not valid JSON, JWK, JWKS or PEM.
    InvalidKey,
    /// An RSA key is shorter than 2048 bits.
    KeyTooSmall,
    /// A key is not an RSA key.
    UnsupportedKey,
    /// A key is marked for signing (`use: sig`) or for another algorithm.
    KeyNotForEncryption,
    /// A JWKS holds no usable encryption key (or not the one named).
    NoEncryptionKey,
    /// Sealing failed; deliberately opaque so that no failure acts as an oracle.
    Crypto,
}

/// The field a validation error belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The card number.
    Number,
    /// The expiry month and year.
    Expiry,
    /// The card verification code.
    Cvc,
    /// The cardholder name.
    Name,
}

impl Field {
    /// The wire name: `number`, `expiry`, `cvc` or `name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Number => "number",
            Field::Expiry => "expiry",
            Field::Cvc => "cvc",
            Field::Name => "name",
        }
    }
}

impl Error {
    /// All variants, in code-table order (the wasm layer encodes codes as indexes into this).
    pub const ALL: [Error; 15] = [
        Error::IncompleteNumber,
        Error::InvalidNumber,
        Error::IncompleteExpiry,
        Error::InvalidExpiryMonth,
        Error::InvalidExpiryYear,
        Error::InvalidExpiryYearPast,
        Error::IncompleteCvc,
        Error::InvalidCvc,
        Error::InvalidName,
        Error::InvalidKey,
        Error::KeyTooSmall,
        Error::UnsupportedKey,
        Error::KeyNotForEncryption,
        Error::NoEncryptionKey,
        Error::Crypto,
    ];

    /// The stable machine-readable code, as Stripe.js names them where it has one.
    pub fn code(&self) -> &'static str {
        match self {
            Error::IncompleteNumber => "incomplete_number",
            Error::InvalidNumber => "invalid_number",
            Error::IncompleteExpiry => "incomplete_expiry",
            Error::InvalidExpiryMonth => "invalid_expiry_month",
            Error::InvalidExpiryYear => "invalid_expiry_year",
            Error::InvalidExpiryYearPast => "invalid_expiry_year_past",
            Error::IncompleteCvc => "incomplete_cvc",
            Error::InvalidCvc => "invalid_cvc",
            Error::InvalidName => "invalid_name",
            Error::InvalidKey => "invalid_key",
            Error::KeyTooSmall => "key_too_small",
            Error::UnsupportedKey => "unsupported_key",
            Error::KeyNotForEncryption => "key_not_for_encryption",
            Error::NoEncryptionKey => "no_encryption_key",
            Error::Crypto => "crypto_error",
        }
    }

    /// Looks a code up; the inverse of [`Error::code`].
    pub fn from_code(code: &str) -> Option<Error> {
        Error::ALL.into_iter().find(|e| e.code() == code)
    }

    /// The error family, as Stripe names it: `validation_error` for what the customer typed,
    /// `invalid_request_error` for what the integrating developer passed.
    pub fn kind(&self) -> &'static str {
        if self.field().is_some() {
            "validation_error"
        } else {
            "invalid_request_error"
        }
    }

    /// The field a validation error concerns, if any.
    pub fn field(&self) -> Option<Field> {
        match self {
            Error::IncompleteNumber | Error::InvalidNumber => Some(Field::Number),
            Error::IncompleteExpiry
            | Error::InvalidExpiryMonth
            | Error::InvalidExpiryYear
            | Error::InvalidExpiryYearPast => Some(Field::Expiry),
            Error::IncompleteCvc | Error::InvalidCvc => Some(Field::Cvc),
            Error::InvalidName => Some(Field::Name),
            _ => None,
        }
    }

    /// Whether more typing could still fix it (the as-you-type `isPotentiallyValid`).
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self,
            Error::IncompleteNumber | Error::IncompleteExpiry | Error::IncompleteCvc
        )
    }

    /// The English message, from [`messages::EN`].
    pub fn message(&self) -> &'static str {
        messages::lookup(messages::EN, *self)
    }

    /// The message in `locale`.
    pub fn message_in(&self, locale: Locale) -> &'static str {
        messages::lookup(locale.table(), *self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lower-case, and never the input: errors end up in logs.
        f.write_str(self.code())
    }
}

impl std::error::Error for Error {}

pub mod messages;

pub use messages::Locale;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_unique_code_and_an_english_message() {
        let mut codes: Vec<_> = Error::ALL.iter().map(Error::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Error::ALL.len());
        for e in Error::ALL {
            assert!(
                messages::EN.iter().any(|(x, _)| *x == e),
                "{e} has no message"
            );
            assert_eq!(Error::from_code(e.code()), Some(e));
            assert_eq!(e.to_string(), e.code());
        }
        assert_eq!(Error::from_code("nope"), None);
    }

    #[test]
    fn validation_errors_have_fields() {
        assert_eq!(Error::InvalidCvc.field(), Some(Field::Cvc));
        assert_eq!(Error::InvalidCvc.kind(), "validation_error");
        assert_eq!(Error::KeyTooSmall.field(), None);
        assert_eq!(Error::KeyTooSmall.kind(), "invalid_request_error");
        assert!(Error::IncompleteExpiry.is_incomplete());
        assert!(!Error::InvalidExpiryMonth.is_incomplete());
    }
}
