//! `Client`: the vault client behind `CardSeal.create`, `tokenize` and `tokenizeCvc`.
//!
//! It reads the options (serde-wasm-bindgen), imports the vault key or fetches it, seals, and
//! posts to the vault over the global `fetch` (web-sys `Request`, `Headers`, `Response`,
//! `AbortController` for the deadline; wasm-bindgen-futures for the promises). The global, not
//! `window`, so it works in a worker too. Rejections are the plain error objects of
//! [`super::error`].

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{AbortController, AbortSignal, Headers, Request, RequestInit, Response};

use super::error::{self, JsError};
use super::{card_input, now_seconds, today};
use crate::card::{Card, Cvc};
use crate::jwe::{self, KeyDocument, VaultKey};
use crate::{ApiCode, retry};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (window or worker), so the client works wherever fetch exists.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &Request) -> js_sys::Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

const DEFAULT_TIMEOUT_MS: f64 = 15_000.0;
const DEFAULT_RETRIES: f64 = 3.0;

/// The options of `CardSeal.create`, read member by member through their getters (inherited
/// ones count) in this order; a member of the wrong type makes the options bad before any
/// value is checked. `locale` is the JS wrapper's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Options {
    vault_url: String,
    publishable_key: String,
    #[serde(default)]
    vault_key: Option<KeyDocument>,
    #[serde(default)]
    timeout_ms: Option<f64>,
    #[serde(default)]
    retries: Option<f64>,
}

/// Where the vault is and how to call it.
#[derive(Debug)]
struct Settings {
    /// The vault's base URL, without a trailing `/`.
    vault_url: String,
    /// `Bearer pk_…`, the `Authorization` of every request.
    authorization: String,
    /// The deadline of one call, retries included.
    timeout_ms: u32,
    /// How many times a failed POST is tried again.
    retries: u32,
}

impl Settings {
    /// Checks the values of well-typed options.
    fn new(o: &Options) -> Result<Self, JsValue> {
        let url = o.vault_url.trim();
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(error::request(
                "invalid_vault_url",
                "vaultUrl",
                "vaultUrl must be an http(s) URL.",
            ));
        }
        if !o.publishable_key.starts_with("pk_") {
            return Err(error::request(
                "invalid_publishable_key",
                "publishableKey",
                "publishableKey must be a publishable key (pk_…); never put a secret key in a web page.",
            ));
        }
        let timeout = o.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1.0..=600_000.0).contains(&timeout) {
            return Err(error::request(
                "invalid_options",
                "timeoutMs",
                "timeoutMs must be 1 to 600000.",
            ));
        }
        let retries = o.retries.unwrap_or(DEFAULT_RETRIES);
        if !(0.0..=10.0).contains(&retries) || retries.fract() != 0.0 {
            return Err(error::request(
                "invalid_options",
                "retries",
                "retries must be an integer 0 to 10.",
            ));
        }
        Ok(Settings {
            vault_url: url.trim_end_matches('/').to_owned(),
            authorization: ["Bearer ", &o.publishable_key].concat(),
            timeout_ms: timeout as u32,
            retries: retries as u32,
        })
    }
}

/// A key given as text: PEM, or the JSON text of a JWK or JWKS (read by the browser's
/// `JSON.parse`, so the wasm carries no JSON reader).
fn key_from_text(text: &str) -> Result<VaultKey, crate::Error> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VaultKey::from_spki_pem(text);
    }
    let value = js_sys::JSON::parse(text).map_err(|_| crate::Error::InvalidKey)?;
    let doc: KeyDocument =
        serde_wasm_bindgen::from_value(value).map_err(|_| crate::Error::InvalidKey)?;
    VaultKey::from_document(&doc)
}

/// A `vaultKey` option or a fetched JWKS: text or a JWK/JWKS object.
fn key_from(doc: &KeyDocument) -> Result<VaultKey, JsValue> {
    match doc.as_text() {
        Some(text) => key_from_text(text),
        None => VaultKey::from_document(doc),
    }
    .map_err(error::core)
}

/// An abort signal that fires after `ms`, until dropped.
struct Deadline {
    signal: AbortSignal,
    timer: JsValue,
}

impl Deadline {
    fn new(ms: u32) -> Result<Self, JsValue> {
        let controller = AbortController::new()?;
        let signal = controller.signal();
        let abort = Closure::once_into_js(move || controller.abort());
        let timer = set_timeout(abort.unchecked_ref(), i32::try_from(ms).unwrap_or(i32::MAX));
        Ok(Deadline { signal, timer })
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        clear_timeout(&self.timer);
    }
}

fn timeout() -> JsValue {
    error::connection("timeout", "The vault did not answer in time.")
}

async fn sleep(ms: f64) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms.clamp(0.0, f64::from(i32::MAX)) as i32);
    });
    let _ = JsFuture::from(p).await;
}

/// Member `name` of `obj` when it is a string; `None` when `obj` is not an object (Reflect
/// throws). A vault's `{"error": {…}}` body is read this way, not by serde-wasm-bindgen: its two
/// structs and string visitor measured larger (this and the one future type of `posting` saved
/// 1,567 B of the wasm, gzipped).
fn string_member(obj: &JsValue, name: &str) -> Option<String> {
    js_sys::Reflect::get(obj, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string())
}

/// A vault's error answer.
struct VaultError {
    status: u16,
    code: String,
    kind: String,
    param: Option<String>,
    message: String,
}

impl VaultError {
    async fn read(resp: &Response) -> Self {
        let status = resp.status();
        let body = match resp.json() {
            Ok(p) => JsFuture::from(p).await.ok(),
            Err(_) => None,
        };
        // Only an object's members count (a string body has none).
        let err = body
            .filter(JsValue::is_object)
            .and_then(|b| js_sys::Reflect::get(&b, &JsValue::from_str("error")).ok())
            .filter(JsValue::is_object)
            .unwrap_or(JsValue::UNDEFINED);
        let member = |name| string_member(&err, name);
        VaultError {
            status,
            code: member("code").unwrap_or_else(|| {
                if status >= 500 {
                    "api_error"
                } else {
                    "http_error"
                }
                .into()
            }),
            kind: member("type").unwrap_or_else(|| "api_error".into()),
            param: member("param"),
            message: member("message")
                .unwrap_or_else(|| ["The vault answered HTTP ", &decimal(status), "."].concat()),
        }
    }

    fn to_js(&self) -> JsValue {
        JsError::new(&self.code, &self.kind, self.param.as_deref(), &self.message)
            .with_status(self.status)
            .into()
    }
}

/// `n` in decimal, without the formatting machinery.
fn decimal(mut n: u16) -> String {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[i..].iter().map(|d| char::from(*d)).collect()
}

/// The `/v1/tokens` request body, `{"card":"…"}` or `{"cvc":"…"}`. A compact JWE is base64url
/// and dots, so it needs no JSON escaping.
fn token_body(member: &str, jwe: &str) -> String {
    ["{\"", member, "\":\"", jwe, "\"}"].concat()
}

/// What a token POST seals.
enum Sealable {
    Card(Card),
    Cvc(Cvc),
}

impl Sealable {
    fn body(&self, key: &VaultKey) -> Result<String, JsValue> {
        match self {
            Sealable::Card(card) => {
                jwe::seal_card(key, card, now_seconds()).map(|jwe| token_body("card", &jwe))
            }
            Sealable::Cvc(cvc) => {
                jwe::seal_cvc(key, cvc, now_seconds()).map(|jwe| token_body("cvc", &jwe))
            }
        }
        .map_err(error::core)
    }
}

impl Settings {
    fn request(
        &self,
        method: &str,
        path: &str,
        signal: &AbortSignal,
        idempotency_key: Option<&str>,
        body: Option<&str>,
    ) -> Result<Request, JsValue> {
        let init = RequestInit::new();
        init.set_method(method);
        init.set_signal(Some(signal));
        let h = Headers::new()?;
        h.set("Authorization", &self.authorization)?;
        if let Some(key) = idempotency_key {
            h.set("Content-Type", "application/json")?;
            h.set("Idempotency-Key", key)?;
        }
        init.set_headers(&h);
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(body));
        }
        Request::new_with_str_and_init(&[&self.vault_url, path].concat(), &init).map_err(|_| {
            error::request(
                "invalid_vault_url",
                "vaultUrl",
                "vaultUrl is not a valid URL.",
            )
        })
    }

    /// `GET /v1/encryption_keys`, within `timeout_ms`.
    async fn fetch_keys(&self, timeout_ms: u32) -> Result<VaultKey, JsValue> {
        let deadline = Deadline::new(timeout_ms)?;
        let unreachable = || {
            // A vault that accepts the connection and never answers ends here too.
            if deadline.signal.aborted() {
                timeout()
            } else {
                error::connection("network_error", "The vault's keys could not be fetched.")
            }
        };
        let req = self.request("GET", "/v1/encryption_keys", &deadline.signal, None, None)?;
        let resp: Response = JsFuture::from(global_fetch(&req))
            .await
            .map_err(|_| unreachable())?
            .unchecked_into();
        if !resp.ok() {
            return Err(VaultError::read(&resp).await.to_js());
        }
        let body = JsFuture::from(resp.text()?)
            .await
            .map_err(|_| unreachable())?;
        key_from_text(&body.as_string().unwrap_or_default()).map_err(error::core)
    }
}

struct Inner {
    settings: Settings,
    key: RefCell<VaultKey>,
}

impl Inner {
    /// POSTs `what`, sealed with the current key, to `/v1/tokens` with one idempotency key,
    /// retrying network errors, 429, 5xx and 409 `idempotency_key_in_use` with exponential
    /// backoff and jitter, all within one deadline. An `encryption_key_expired` answer fetches
    /// the keys once, seals again, and keeps the new key.
    async fn post_token(&self, what: Sealable) -> Result<JsValue, JsValue> {
        let settings = &self.settings;
        let end = js_sys::Date::now() + f64::from(settings.timeout_ms);
        let deadline = Deadline::new(settings.timeout_ms)?;
        let signal = &deadline.signal;
        let mut body = what.body(&self.key.borrow())?;
        let mut idempotency_key = jwe::new_jti().map_err(error::core)?;
        let mut refetched = false;
        let mut attempt = 0u32;
        loop {
            let req = settings.request(
                "POST",
                "/v1/tokens",
                signal,
                Some(&idempotency_key),
                Some(&body),
            )?;
            let mut retry_after = None;
            // A failure to reach the vault, or to read its answer: retried, unless the deadline
            // passed.
            if let Ok(resp) = JsFuture::from(global_fetch(&req)).await {
                let resp: Response = resp.unchecked_into();
                if resp.ok() {
                    if let Ok(token) = JsFuture::from(resp.json()?).await {
                        return Ok(token);
                    }
                } else {
                    retry_after = resp
                        .headers()
                        .get("Retry-After")
                        .ok()
                        .flatten()
                        .and_then(|s| retry::retry_after_ms(&s));
                    let err = VaultError::read(&resp).await;
                    if err.code == ApiCode::EncryptionKeyExpired.as_str() && !refetched {
                        // The vault rotated its key: fetch the new one once, seal again, and send
                        // it as a new request (the old one made no token).
                        refetched = true;
                        let remaining = (end - js_sys::Date::now()).max(1.0) as u32;
                        let new_key = settings.fetch_keys(remaining).await?;
                        body = what.body(&new_key)?;
                        *self.key.borrow_mut() = new_key;
                        idempotency_key = jwe::new_jti().map_err(error::core)?;
                        continue;
                    }
                    // 409 `idempotency_key_in_use`: an earlier attempt with this key is still
                    // being processed (its answer was lost to a timeout or network error);
                    // asking again later replays its outcome.
                    let in_flight =
                        err.status == 409 && err.code == ApiCode::IdempotencyKeyInUse.as_str();
                    if (err.status != 429 && err.status < 500 && !in_flight)
                        || attempt >= settings.retries
                    {
                        return Err(err.to_js());
                    }
                }
            }
            if signal.aborted() {
                return Err(timeout());
            }
            if attempt >= settings.retries {
                return Err(error::connection(
                    "network_error",
                    "The vault could not be reached.",
                ));
            }
            attempt += 1;
            let mut jitter = [0u8; 1];
            getrandom::fill(&mut jitter).map_err(|_| error::core(crate::Error::Crypto))?;
            let wait = retry::wait_ms(attempt, jitter[0], retry_after);
            if end - js_sys::Date::now() <= wait {
                return Err(timeout());
            }
            sleep(wait).await;
        }
    }
}

/// The keyed half of the JS API: the vault's key, imported and checked, and the vault client
/// that seals with it. `js/tokenizer.js` wraps one per `CardSeal`.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

#[wasm_bindgen]
impl Client {
    /// `CardSeal.create`: reads and checks `{ vaultUrl, publishableKey, vaultKey?, timeoutMs?,
    /// retries? }` at once (throwing a plain error object), then resolves to a client with the
    /// given `vaultKey` (a JWK or JWKS object or text, or a PEM) or the keys fetched from
    /// `GET {vaultUrl}/v1/encryption_keys`.
    pub fn create(options: JsValue) -> Result<js_sys::Promise, JsValue> {
        let connecting = Self::connecting(options)?;
        Ok(future_to_promise(
            async move { Ok(connecting.await?.into()) },
        ))
    }

    /// The `kid` of the key in use.
    #[wasm_bindgen(getter)]
    pub fn kid(&self) -> Option<String> {
        self.inner.key.borrow().kid().map(str::to_owned)
    }

    /// Validates and seals a card: the compact JWE. An invalid card rejects with every field's
    /// error.
    #[wasm_bindgen(js_name = sealCard)]
    pub fn seal_card(&self, card: JsValue) -> Result<String, JsValue> {
        let card = parse_card(card)?;
        jwe::seal_card(&self.inner.key.borrow(), &card, now_seconds()).map_err(error::core)
    }

    /// Validates, seals and posts a card: the Token the vault answers. An invalid card rejects
    /// before any request.
    pub fn tokenize(&self, card: JsValue) -> js_sys::Promise {
        posting(Rc::clone(&self.inner), parse_card(card).map(Sealable::Card))
    }

    /// Validates, seals and posts a CVC alone, to re-add it to a saved card.
    #[wasm_bindgen(js_name = tokenizeCvc)]
    pub fn tokenize_cvc(&self, cvc: &str) -> js_sys::Promise {
        let parsed = Cvc::parse(cvc, None).map_err(|e| error::invalid_card(&[e.into()]));
        posting(Rc::clone(&self.inner), parsed.map(Sealable::Cvc))
    }
}

/// The promise of one token POST: one future type for `tokenize` and `tokenizeCvc`, so the
/// wasm holds one copy of the promise glue and of `post_token`'s state machine.
fn posting(inner: Rc<Inner>, what: Result<Sealable, JsValue>) -> js_sys::Promise {
    future_to_promise(async move { inner.post_token(what?).await })
}

impl Client {
    /// `create` for Rust callers (the browser tests): the options are read and checked before
    /// the first await, as `create` reads them before it returns its promise.
    ///
    /// # Errors
    /// The plain error objects `create` rejects with.
    pub fn connecting(
        options: JsValue,
    ) -> Result<impl Future<Output = Result<Client, JsValue>>, JsValue> {
        let options: Options =
            serde_wasm_bindgen::from_value(options).map_err(|_| error::bad_options())?;
        let settings = Settings::new(&options)?;
        let given = options.vault_key.as_ref().map(key_from).transpose()?;
        Ok(async move {
            let key = match given {
                Some(key) => key,
                None => settings.fetch_keys(settings.timeout_ms).await?,
            };
            Ok(Client {
                inner: Rc::new(Inner {
                    settings,
                    key: RefCell::new(key),
                }),
            })
        })
    }
}

fn parse_card(card: JsValue) -> Result<Card, JsValue> {
    Card::parse(&card_input(card), today()).map_err(|e| error::invalid_card(&e))
}
