//! `CardSealCore`: the keyed sealer behind the JS `CardSeal` class. It checks the options of
//! `create`, seals cards with the vault's key, and tokenizes them through [`super::client`].
//! The JS class in `js/core.js` turns the plain error objects it rejects with into
//! `CardSealError`s.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::client::{Client, token_body};
use super::{error, json, now_seconds, today};
use crate::card::{Card, Cvc};
use crate::jwe::{self, VaultKey};

const DEFAULT_TIMEOUT_MS: u32 = 15_000;
const DEFAULT_RETRIES: u32 = 3;

#[wasm_bindgen]
extern "C" {
    /// The options object of `CardSeal.create`, read through its getters, so inherited members
    /// count. A getter that throws makes the options bad.
    type Options;
    #[wasm_bindgen(method, catch, getter, js_name = vaultUrl)]
    fn vault_url(this: &Options) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, getter, js_name = publishableKey)]
    fn publishable_key(this: &Options) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, getter, js_name = vaultKey)]
    fn vault_key(this: &Options) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, getter, js_name = timeoutMs)]
    fn timeout_ms(this: &Options) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, getter)]
    fn retries(this: &Options) -> Result<JsValue, JsValue>;
}

/// The options of `CardSeal.create`, type-checked.
struct CreateOptions {
    vault_url: String,
    publishable_key: String,
    /// The key as text: a string as given, anything else as JSON.
    vault_key: Option<String>,
    timeout_ms: Option<f64>,
    retries: Option<f64>,
}

impl CreateOptions {
    /// `None` when `options` is not an object or a member has the wrong type: strings for
    /// `vaultUrl` and `publishableKey`; for the rest `null`, `undefined` or absent, or a number
    /// (`timeoutMs`, `retries`), a string or JSON-like value (`vaultKey`, see
    /// [`json::key_text`]). Members are read in that order, and reading stops at the first bad
    /// one.
    fn read(options: &JsValue) -> Option<Self> {
        if !options.is_object() {
            return None;
        }
        let o: &Options = options.unchecked_ref();
        let optional = |v: JsValue| (!v.loose_eq(&JsValue::NULL)).then_some(v);
        let number = |v: JsValue| match optional(v) {
            None => Some(None),
            Some(v) => v.as_f64().map(Some),
        };
        Some(Self {
            vault_url: o.vault_url().ok()?.as_string()?,
            publishable_key: o.publishable_key().ok()?.as_string()?,
            vault_key: match optional(o.vault_key().ok()?) {
                None => None,
                Some(v) => Some(json::key_text(&v)?),
            },
            timeout_ms: number(o.timeout_ms().ok()?)?,
            retries: number(o.retries().ok()?)?,
        })
    }
}

struct Inner {
    client: Client,
    key: RefCell<VaultKey>,
}

/// The keyed sealer behind the JS `CardSeal` class.
#[wasm_bindgen]
pub struct CardSealCore {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for CardSealCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSealCore")
            .field("vault_url", &self.inner.client.vault_url)
            .finish_non_exhaustive()
    }
}

fn bad_options() -> JsValue {
    error::request(
        "invalid_options",
        "options",
        "CardSeal.create needs { vaultUrl, publishableKey } strings.",
    )
}

#[wasm_bindgen]
impl CardSealCore {
    /// Checks the options and imports the vault key, fetching it from the vault if not given.
    pub async fn create(options: JsValue) -> Result<CardSealCore, JsValue> {
        let opts = CreateOptions::read(&options).ok_or_else(bad_options)?;
        let url = opts.vault_url.trim().to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(error::request(
                "invalid_vault_url",
                "vaultUrl",
                "vaultUrl must be an http(s) URL.",
            ));
        }
        if !opts.publishable_key.starts_with("pk_") {
            return Err(error::request(
                "invalid_publishable_key",
                "publishableKey",
                "publishableKey must be a publishable key (pk_…); never put a secret key in a web page.",
            ));
        }
        let timeout_ms = match opts.timeout_ms {
            None => DEFAULT_TIMEOUT_MS,
            Some(t) if (1.0..=600_000.0).contains(&t) => t as u32,
            Some(_) => {
                return Err(error::request(
                    "invalid_options",
                    "timeoutMs",
                    "timeoutMs must be 1 to 600000.",
                ));
            }
        };
        let retries = match opts.retries {
            None => DEFAULT_RETRIES,
            Some(r) if r.is_finite() && (0.0..=10.0).contains(&r) && r.fract() == 0.0 => r as u32,
            Some(_) => {
                return Err(error::request(
                    "invalid_options",
                    "retries",
                    "retries must be an integer 0 to 10.",
                ));
            }
        };
        let client = Client {
            vault_url: url.trim_end_matches('/').to_owned(),
            publishable_key: opts.publishable_key,
            timeout_ms,
            retries,
        };
        let key = match &opts.vault_key {
            Some(text) => VaultKey::parse(text).map_err(error::core)?,
            None => client.fetch_keys(timeout_ms).await?,
        };
        Ok(CardSealCore {
            inner: Rc::new(Inner {
                client,
                key: RefCell::new(key),
            }),
        })
    }

    /// The `kid` of the key in use.
    #[wasm_bindgen(getter)]
    pub fn kid(&self) -> Option<String> {
        self.inner.key.borrow().kid().map(str::to_owned)
    }

    /// Validates and seals a card: the compact JWE.
    pub fn seal(
        &self,
        number: String,
        exp_month: String,
        exp_year: String,
        cvc: Option<String>,
        name: Option<String>,
    ) -> Result<String, JsValue> {
        let input = super::card_input(number, exp_month, exp_year, cvc, name);
        let card = Card::parse(&input, today()).map_err(|e| error::invalid_card(&e))?;
        jwe::seal_card(&self.inner.key.borrow(), &card, now_seconds()).map_err(error::core)
    }

    /// Validates, seals and posts a card; resolves to the vault's Token.
    pub fn tokenize(
        &self,
        number: String,
        exp_month: String,
        exp_year: String,
        cvc: Option<String>,
        name: Option<String>,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let input = super::card_input(number, exp_month, exp_year, cvc, name);
        let parsed = Card::parse(&input, today());
        wasm_bindgen_futures::future_to_promise(async move {
            // An invalid card rejects here, before any network call.
            let card = parsed.map_err(|e| error::invalid_card(&e))?;
            let body = |key: &VaultKey| {
                jwe::seal_card(key, &card, now_seconds()).map(|jwe| token_body("card", &jwe))
            };
            inner.client.post_token(&inner.key, &body).await
        })
    }

    /// Validates, seals and posts a CVC alone; resolves to a Token of type `cvc`.
    #[wasm_bindgen(js_name = tokenizeCvc)]
    pub fn tokenize_cvc(&self, cvc: String) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let parsed = Cvc::parse(&cvc, None);
        wasm_bindgen_futures::future_to_promise(async move {
            let cvc = parsed.map_err(|e| error::invalid_card(&[e.into()]))?;
            let body = |key: &VaultKey| {
                jwe::seal_cvc(key, &cvc, now_seconds()).map(|jwe| token_body("cvc", &jwe))
            };
            inner.client.post_token(&inner.key, &body).await
        })
    }
}
