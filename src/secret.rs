//! Card data that must never be printed, logged or left in memory.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A card number or CVC: zeroized on drop, compared in constant time, and `Debug` prints `***`.
///
/// There is deliberately no `Display`; reading the value takes an explicit [`Secret::expose`].
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; the caller's copy should be dropped or zeroized by the caller.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value. Every call site is a place where card data is handled.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (card data is ASCII digits, so also in characters).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let s = Secret::new("4242424242424242");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("123"), Secret::new("123"));
        assert_ne!(Secret::new("123"), Secret::new("124"));
        assert_ne!(Secret::new("123"), Secret::new("1234"));
    }

    #[test]
    fn zeroize_clears_the_value() {
        let mut s = Secret::new("4242");
        s.zeroize();
        assert!(s.is_empty());
    }

    #[test]
    fn serde_round_trip() {
        let s: Secret = serde_json::from_str("\"378282246310005\"").unwrap();
        assert_eq!(s.expose(), "378282246310005");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"378282246310005\"");
    }
}
