//! `Sealer`: the vault key, imported and checked, and the seals made with it. The JS `CardSeal`
//! class (`js/core.js`) holds one, and posts what it seals to the vault itself (`js/client.js`).
//! Rejections are the plain error objects of [`super::error`].

use wasm_bindgen::prelude::*;

use super::{error, now_seconds, today};
use crate::card::{Card, Cvc};
use crate::jwe::{self, VaultKey};

/// The vault's key, ready to seal with.
#[wasm_bindgen]
pub struct Sealer {
    key: VaultKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl Sealer {
    /// Imports a vault key given as text: a JWK, a JWKS (its newest encryption key) or a PEM.
    #[wasm_bindgen(constructor)]
    pub fn new(key: &str) -> Result<Sealer, JsValue> {
        Ok(Sealer {
            key: VaultKey::parse(key).map_err(error::core)?,
        })
    }

    /// The `kid` of the key.
    #[wasm_bindgen(getter)]
    pub fn kid(&self) -> Option<String> {
        self.key.kid().map(str::to_owned)
    }

    /// Validates and seals a card: the compact JWE. An invalid card rejects with every field's
    /// error.
    #[wasm_bindgen(js_name = sealCard)]
    pub fn seal_card(
        &self,
        number: String,
        exp_month: String,
        exp_year: String,
        cvc: Option<String>,
        name: Option<String>,
    ) -> Result<String, JsValue> {
        let input = super::card_input(number, exp_month, exp_year, cvc, name);
        let card = Card::parse(&input, today()).map_err(|e| error::invalid_card(&e))?;
        jwe::seal_card(&self.key, &card, now_seconds()).map_err(error::core)
    }

    /// Validates and seals a CVC alone, to re-add it to a saved card.
    #[wasm_bindgen(js_name = sealCvc)]
    pub fn seal_cvc(&self, cvc: &str) -> Result<String, JsValue> {
        let cvc = Cvc::parse(cvc, None).map_err(|e| error::invalid_card(&[e.into()]))?;
        jwe::seal_cvc(&self.key, &cvc, now_seconds()).map_err(error::core)
    }
}
