//! `CardSeal`: seals cards with the vault's key and posts them to the vault with the global
//! `fetch`. The JS class in `js/core.js` wraps this one and turns the plain error objects it
//! rejects with into `CardSealError`s.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use crate::Error;
use crate::card::{Card, CardInput, Cvc};
use crate::jwe::{self, VaultKey};
use crate::secret::Secret;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (window, worker or Node), so the class works wherever fetch exists.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &Request) -> js_sys::Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

const DEFAULT_TIMEOUT_MS: u32 = 15_000;
const DEFAULT_RETRIES: u32 = 3;
const BACKOFF_BASE_MS: f64 = 250.0;
const BACKOFF_CAP_MS: f64 = 4_000.0;

/// A plain error object `{ code, type, param, message, status? }`.
fn error_object(
    code: &str,
    kind: &str,
    param: Option<&str>,
    message: &str,
    status: Option<u16>,
) -> JsValue {
    let o = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        // Setting a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), &v);
    };
    set("code", code.into());
    set("type", kind.into());
    set("param", param.map_or(JsValue::NULL, JsValue::from_str));
    set("message", message.into());
    if let Some(s) = status {
        set("status", JsValue::from(s));
    }
    o.into()
}

fn core_error(e: Error) -> JsValue {
    error_object(
        e.code(),
        e.kind(),
        e.field().map(|f| f.as_str()),
        e.message(),
        None,
    )
}

fn request_error(code: &str, param: &str, message: &str) -> JsValue {
    error_object(code, "invalid_request_error", Some(param), message, None)
}

fn connection_error(code: &str, message: &str) -> JsValue {
    error_object(code, "api_connection_error", None, message, None)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateOptions {
    vault_url: String,
    publishable_key: String,
    #[serde(default)]
    vault_key: Option<serde_json::Value>,
    #[serde(default)]
    timeout_ms: Option<f64>,
    #[serde(default)]
    retries: Option<f64>,
}

struct Inner {
    vault_url: String,
    publishable_key: String,
    key: RefCell<VaultKey>,
    timeout_ms: u32,
    retries: u32,
}

/// The keyed sealer behind the JS `CardSeal` class.
#[wasm_bindgen]
pub struct CardSealCore {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for CardSealCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSealCore")
            .field("vault_url", &self.inner.vault_url)
            .finish_non_exhaustive()
    }
}

fn key_from_value(v: &serde_json::Value) -> Result<VaultKey, Error> {
    match v {
        serde_json::Value::String(s) => VaultKey::parse(s),
        other => VaultKey::parse(&other.to_string()),
    }
}

fn now_seconds() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

fn today() -> crate::card::Today {
    crate::card::Today::from_unix(now_seconds())
}

fn random_id() -> Result<String, JsValue> {
    jwe::new_jti().map_err(core_error)
}

async fn sleep(ms: f64) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms.clamp(0.0, f64::from(i32::MAX)) as i32);
    });
    let _ = JsFuture::from(p).await;
}

/// Reads `{"error": {…}}` from a vault response, keeping only the documented members.
async fn vault_error(resp: &Response) -> JsValue {
    let status = resp.status();
    let body = match resp.json() {
        Ok(p) => JsFuture::from(p).await.ok(),
        Err(_) => None,
    };
    let err = body
        .and_then(|b| js_sys::Reflect::get(&b, &"error".into()).ok())
        .filter(|e| e.is_object());
    let field = |name: &str| -> Option<String> {
        err.as_ref()
            .and_then(|e| js_sys::Reflect::get(e, &name.into()).ok())
            .and_then(|v| v.as_string())
    };
    let code = field("code").unwrap_or_else(|| {
        if status >= 500 {
            "api_error".into()
        } else {
            "http_error".into()
        }
    });
    let kind = field("type").unwrap_or_else(|| "api_error".into());
    let message = field("message").unwrap_or_else(|| format!("The vault answered HTTP {status}."));
    error_object(
        &code,
        &kind,
        field("param").as_deref(),
        &message,
        Some(status),
    )
}

fn code_of(err: &JsValue) -> Option<String> {
    js_sys::Reflect::get(err, &"code".into())
        .ok()
        .and_then(|v| v.as_string())
}

impl Inner {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.vault_url.trim_end_matches('/'), path)
    }

    async fn fetch_keys(
        vault_url: &str,
        publishable_key: &str,
        timeout_ms: u32,
    ) -> Result<VaultKey, JsValue> {
        let url = format!("{}/v1/encryption_keys", vault_url.trim_end_matches('/'));
        let controller = AbortController::new()?;
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(&controller.signal()));
        let headers = Headers::new()?;
        headers.set("Authorization", &format!("Bearer {publishable_key}"))?;
        init.set_headers(&headers);
        let req = Request::new_with_str_and_init(&url, &init).map_err(|_| {
            request_error(
                "invalid_vault_url",
                "vaultUrl",
                "vaultUrl is not a valid URL.",
            )
        })?;
        let abort = Closure::once_into_js(move || controller.abort());
        let timer = set_timeout(
            abort.unchecked_ref(),
            i32::try_from(timeout_ms).unwrap_or(i32::MAX),
        );
        let result = JsFuture::from(global_fetch(&req)).await;
        clear_timeout(&timer);
        let resp: Response = result
            .map_err(|_| {
                connection_error("network_error", "The vault's keys could not be fetched.")
            })?
            .dyn_into()?;
        if !resp.ok() {
            return Err(vault_error(&resp).await);
        }
        let text = JsFuture::from(resp.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        VaultKey::parse(&text).map_err(core_error)
    }

    /// POSTs `body` to `/v1/tokens` with one idempotency key, retrying network errors, 429 and
    /// 5xx with exponential backoff and jitter, all within one overall deadline.
    async fn post_token(
        &self,
        make_body: &dyn Fn(&VaultKey) -> Result<String, Error>,
    ) -> Result<JsValue, JsValue> {
        let started = js_sys::Date::now();
        let deadline = started + f64::from(self.timeout_ms);
        let controller = AbortController::new()?;
        let signal = controller.signal();
        let abort = Closure::once_into_js(move || controller.abort());
        let timer = set_timeout(
            abort.unchecked_ref(),
            i32::try_from(self.timeout_ms).unwrap_or(i32::MAX),
        );
        let result = self.post_token_until(make_body, deadline, &signal).await;
        clear_timeout(&timer);
        result
    }

    async fn post_token_until(
        &self,
        make_body: &dyn Fn(&VaultKey) -> Result<String, Error>,
        deadline: f64,
        signal: &web_sys::AbortSignal,
    ) -> Result<JsValue, JsValue> {
        let mut body = make_body(&self.key.borrow()).map_err(core_error)?;
        let mut idempotency_key = random_id()?;
        let mut refetched = false;
        let mut attempt = 0u32;
        loop {
            let init = RequestInit::new();
            init.set_method("POST");
            init.set_signal(Some(signal));
            let headers = Headers::new()?;
            headers.set("Authorization", &format!("Bearer {}", self.publishable_key))?;
            headers.set("Content-Type", "application/json")?;
            headers.set("Idempotency-Key", &idempotency_key)?;
            init.set_headers(&headers);
            init.set_body(&JsValue::from_str(&body));
            let req = Request::new_with_str_and_init(&self.url("/v1/tokens"), &init)?;
            let outcome = JsFuture::from(global_fetch(&req)).await;
            let retry_after = match outcome {
                Err(_) if signal.aborted() => {
                    return Err(connection_error(
                        "timeout",
                        "The vault did not answer in time.",
                    ));
                }
                Err(_) => None,
                Ok(resp) => {
                    let resp: Response = resp.dyn_into()?;
                    if resp.ok() {
                        return JsFuture::from(resp.json()?).await;
                    }
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("Retry-After")
                        .ok()
                        .flatten()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .map(|s| s * 1000.0);
                    let err = vault_error(&resp).await;
                    if code_of(&err).as_deref() == Some("encryption_key_expired") && !refetched {
                        // The vault rotated its key: fetch the new one once, seal again, and send
                        // it as a new request (the old one made no token).
                        refetched = true;
                        let remaining = (deadline - js_sys::Date::now()).max(1.0) as u32;
                        let key =
                            Inner::fetch_keys(&self.vault_url, &self.publishable_key, remaining)
                                .await?;
                        body = make_body(&key).map_err(core_error)?;
                        *self.key.borrow_mut() = key;
                        idempotency_key = random_id()?;
                        continue;
                    }
                    if status != 429 && status < 500 {
                        return Err(err);
                    }
                    if attempt >= self.retries {
                        return Err(err);
                    }
                    Some(retry_after.unwrap_or(0.0))
                }
            };
            if attempt >= self.retries {
                return Err(connection_error(
                    "network_error",
                    "The vault could not be reached.",
                ));
            }
            attempt += 1;
            let mut jitter = [0u8; 1];
            let _ = getrandom::fill(&mut jitter);
            let backoff = (BACKOFF_BASE_MS * f64::from(1u32 << attempt.min(8))).min(BACKOFF_CAP_MS)
                * (0.5 + f64::from(jitter[0]) / 255.0);
            let wait = backoff.max(retry_after.unwrap_or(0.0));
            let remaining = deadline - js_sys::Date::now();
            if remaining <= wait {
                return Err(connection_error(
                    "timeout",
                    "The vault did not answer in time.",
                ));
            }
            sleep(wait).await;
        }
    }
}

fn card_input(
    number: String,
    exp_month: String,
    exp_year: String,
    cvc: Option<String>,
    name: Option<String>,
) -> CardInput {
    CardInput {
        number: Secret::new(number),
        exp_month,
        exp_year,
        cvc: cvc.map(Secret::new),
        name,
    }
}

/// The first field error as the rejection, with every field's error in `errors`.
fn invalid_card(errors: &[crate::card::FieldError]) -> JsValue {
    let first = errors.first().map_or(Error::InvalidNumber, |e| e.code);
    let err = core_error(first);
    let list = js_sys::Array::new();
    for e in errors {
        list.push(&error_object(
            e.code.code(),
            e.code.kind(),
            Some(e.field.as_str()),
            e.code.message(),
            None,
        ));
    }
    let _ = js_sys::Reflect::set(&err, &"errors".into(), &list);
    err
}

#[wasm_bindgen]
impl CardSealCore {
    /// Checks the options and imports the vault key, fetching it from the vault if not given.
    pub async fn create(options: JsValue) -> Result<CardSealCore, JsValue> {
        let opts: CreateOptions = serde_wasm_bindgen::from_value(options).map_err(|_| {
            request_error(
                "invalid_options",
                "options",
                "CardSeal.create needs { vaultUrl, publishableKey } strings.",
            )
        })?;
        let url = opts.vault_url.trim().to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(request_error(
                "invalid_vault_url",
                "vaultUrl",
                "vaultUrl must be an http(s) URL.",
            ));
        }
        if !opts.publishable_key.starts_with("pk_") {
            return Err(request_error(
                "invalid_publishable_key",
                "publishableKey",
                "publishableKey must be a publishable key (pk_…); never put a secret key in a web page.",
            ));
        }
        let timeout_ms = match opts.timeout_ms {
            None => DEFAULT_TIMEOUT_MS,
            Some(t) if (1.0..=600_000.0).contains(&t) => t as u32,
            Some(_) => {
                return Err(request_error(
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
                return Err(request_error(
                    "invalid_options",
                    "retries",
                    "retries must be an integer 0 to 10.",
                ));
            }
        };
        let key = match &opts.vault_key {
            Some(v) => key_from_value(v).map_err(core_error)?,
            None => Inner::fetch_keys(&url, &opts.publishable_key, timeout_ms).await?,
        };
        Ok(CardSealCore {
            inner: Rc::new(Inner {
                vault_url: url,
                publishable_key: opts.publishable_key,
                key: RefCell::new(key),
                timeout_ms,
                retries,
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
        let card = Card::parse(&card_input(number, exp_month, exp_year, cvc, name), today())
            .map_err(|e| invalid_card(&e))?;
        jwe::seal_card(&self.inner.key.borrow(), &card, now_seconds()).map_err(core_error)
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
        let parsed = Card::parse(&card_input(number, exp_month, exp_year, cvc, name), today());
        wasm_bindgen_futures::future_to_promise(async move {
            // An invalid card rejects here, before any network call.
            let card = parsed.map_err(|e| invalid_card(&e))?;
            let body = |key: &VaultKey| {
                jwe::seal_card(key, &card, now_seconds())
                    .map(|jwe| serde_json::json!({ "card": jwe }).to_string())
            };
            inner.post_token(&body).await
        })
    }

    /// Validates, seals and posts a CVC alone; resolves to a Token of type `cvc`.
    #[wasm_bindgen(js_name = tokenizeCvc)]
    pub fn tokenize_cvc(&self, cvc: String) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let parsed = Cvc::parse(&cvc, None);
        wasm_bindgen_futures::future_to_promise(async move {
            let cvc = parsed.map_err(|e| invalid_card(&[e.into()]))?;
            let body = |key: &VaultKey| {
                jwe::seal_cvc(key, &cvc, now_seconds())
                    .map(|jwe| serde_json::json!({ "cvc": jwe }).to_string())
            };
            inner.post_token(&body).await
        })
    }
}
