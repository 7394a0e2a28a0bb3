//! Card verification codes.

use std::fmt;

use super::{Brand, Verdict};
use crate::{Error, Secret};

/// A CVC of the right size: digits only, 3 or 4 as the brand prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(Secret);

impl Cvc {
    /// Parses a CVC for `brand` (3 digits, 4 for amex), or for no known brand (3 or 4 digits).
    pub fn parse(input: &str, brand: Option<Brand>) -> Result<Cvc, Error> {
        let s = input.trim();
        if s.is_empty() {
            return Err(Error::IncompleteCvc);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidCvc);
        }
        let (min, max) = match brand {
            Some(b) => (
                usize::from(b.info().cvc_size),
                usize::from(b.info().cvc_size),
            ),
            None => (3, 4),
        };
        match s.len() {
            n if n < min => Err(Error::IncompleteCvc),
            n if n > max => Err(Error::InvalidCvc),
            _ => Ok(Cvc(Secret::new(s))),
        }
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// The as-you-type verdict on a CVC (never panics).
pub fn validate_cvc(input: &str, brand: Option<Brand>) -> Verdict {
    Verdict::from_result(Cvc::parse(input, brand))
}
