//! [`PlainCard`]: card data in the clear, the one shape a token or a saved card keeps sealed.

use cardseal::Secret;
use cardseal::card::{Card, Cvc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Principal;
use crate::store::CardSummary;

/// A card in the clear, as a token or a saved card keeps it sealed: the one plaintext shape.
/// A saved card never holds its CVC here (that has its own table, and its own hour); a CVC
/// token holds only the CVC. No `Debug`: it holds the number.
#[derive(Serialize, Deserialize, Default)]
pub struct PlainCard {
    /// Digits only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<Secret>,
    /// 1 to 12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_month: Option<u8>,
    /// Four digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_year: Option<u16>,
    /// The card verification code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvc: Option<Secret>,
    /// The cardholder name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Debug for PlainCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainCard")
            .field("number", &self.number)
            .field("cvc", &self.cvc)
            .finish_non_exhaustive()
    }
}

impl PlainCard {
    /// A parsed card, CVC included.
    pub fn of(card: &Card) -> Self {
        PlainCard {
            number: Some(Secret::new(card.number.expose())),
            exp_month: Some(card.expiry.month()),
            exp_year: Some(card.expiry.year()),
            cvc: card.cvc.as_ref().map(|c| Secret::new(c.expose())),
            name: card.name.as_ref().map(|n| n.as_str().to_owned()),
        }
    }

    /// A CVC alone.
    pub fn cvc_only(cvc: &Cvc) -> Self {
        PlainCard {
            cvc: Some(Secret::new(cvc.expose())),
            ..PlainCard::default()
        }
    }

    /// The JSON to seal.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
        // Sized up front so the buffer never reallocates and leaves an unzeroized copy behind.
        let mut buf = Zeroizing::new(Vec::with_capacity(512));
        serde_json::to_writer(&mut *buf, self)?;
        Ok(buf)
    }

    /// Reads JSON made by [`PlainCard::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The non-secret facts about a card, its fingerprint keyed by the account.
pub fn summary(principal: &Principal, card: &Card) -> CardSummary {
    CardSummary {
        brand: card.number.brand().as_str().to_owned(),
        bin: card.number.bin().to_owned(),
        last4: card.number.last4().to_owned(),
        exp_month: card.expiry.month(),
        exp_year: card.expiry.year(),
        fingerprint: principal.keys.fingerprint(card.number.expose()),
    }
}
