//! Card verification codes.

use std::fmt;

use super::{Brand, Verdict};
use crate::{Error, Secret};

/// The longest CVC of any brand (amex's four digits).
pub const MAX_CVC_SIZE: usize = 4;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{BRANDS, format_cvc};

    #[test]
    fn the_longest_cvc_of_the_table() {
        let longest = BRANDS.iter().map(|b| usize::from(b.cvc_size)).max();
        assert_eq!(longest, Some(MAX_CVC_SIZE));
    }

    #[test]
    fn formatting_keeps_digits_up_to_the_longest_size() {
        let f = |s: &str, caret| {
            let f = format_cvc(s, caret);
            (f.value, f.caret)
        };
        assert_eq!(f("12a3", None), ("123".into(), 3));
        assert_eq!(f("1 2", Some(2)), ("12".into(), 1));
        assert_eq!(f("123456", Some(6)), ("1234".into(), 4));
        assert_eq!(f("", Some(0)), (String::new(), 0));
    }
}
