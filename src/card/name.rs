//! Cardholder names.

use crate::Error;

/// Longest accepted name, in characters (ISO/IEC 7813 track 1 allows 26; embossed names and
/// wallets allow more, so this only stops abuse).
pub const MAX_NAME_CHARS: usize = 100;

/// A cardholder name: trimmed, at most 100 characters, no control characters and no digits.
/// Digits are refused so that a card number typed into the name field is never sealed as a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// Parses a name; an empty or blank one is `Ok(None)` (the name is optional).
    pub fn parse(input: &str) -> Result<Option<Name>, Error> {
        let s = input.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if s.chars().count() > MAX_NAME_CHARS
            || s.chars()
                .any(|c| c.is_control() || c.is_numeric() || c == '\u{FFFD}')
        {
            return Err(Error::InvalidName);
        }
        Ok(Some(Name(s.to_owned())))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
