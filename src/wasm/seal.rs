//! `CardSeal`: seals cards with the vault's key and posts them to the vault with the global
//! `fetch`. The JS class in `js/core.js` wraps this one and turns the plain error objects it
//! rejects with into `CardSealError`s.

use std::cell::RefCell;
use std::rc::Rc;

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

/// The options of `CardSeal.create`, read from the JS object member by member, by the rules
/// serde-wasm-bindgen applied before. Reading them by hand (with [`retry_after_ms`] and
/// [`token_body`]) took 33 KB off the gzipped wasm: serde-wasm-bindgen itself, core's float
/// formatting and parsing, and `serde_json::Value` printing.
struct CreateOptions {
    vault_url: String,
    publishable_key: String,
    /// The key as text: a string as given, anything else as JSON.
    vault_key: Option<String>,
    timeout_ms: Option<f64>,
    retries: Option<f64>,
}

/// Deeper than serde_json's nesting limit (128), so cutting a `vaultKey` off here changes no
/// verdict; it only stops a cyclic object from overflowing the stack.
const MAX_KEY_DEPTH: u32 = 200;

impl CreateOptions {
    /// `None` when `options` is not an object or a member has the wrong type: strings for
    /// `vaultUrl` and `publishableKey`; for the rest `null`, `undefined` or absent, or a number
    /// (`timeoutMs`, `retries`), a string or JSON-like value (`vaultKey`, see [`write_json`]).
    /// Members are read in that order, inherited ones included, and reading stops at the first
    /// bad one.
    fn read(options: &JsValue) -> Option<Self> {
        if !options.is_object() {
            return None;
        }
        let get = |name: &str| js_sys::Reflect::get(options, &JsValue::from_str(name)).ok();
        let optional = |name: &str| get(name).map(|v| (!v.loose_eq(&JsValue::NULL)).then_some(v));
        let vault_url = get("vaultUrl")?.as_string()?;
        let publishable_key = get("publishableKey")?.as_string()?;
        let vault_key = match optional("vaultKey")? {
            None => None,
            Some(v) => Some(match v.as_string() {
                Some(text) => text,
                None => {
                    let mut json = Vec::new();
                    write_json(&v, 0, &mut json)?;
                    String::from_utf8(json).ok()?
                }
            }),
        };
        let number = |name: &str| match optional(name)? {
            None => Some(None),
            Some(v) => v.as_f64().map(Some),
        };
        let timeout_ms = number("timeoutMs")?;
        let retries = number("retries")?;
        Some(Self {
            vault_url,
            publishable_key,
            vault_key,
            timeout_ms,
            retries,
        })
    }
}

/// Writes a JS value as JSON: `null` and `undefined` as `null`; booleans; numbers (a safe
/// integer as an integer, any other finite number as a float, `NaN` and infinities as `null`);
/// BigInts within 64 bits; strings; arrays (holes as `null`); `Map`s with string keys and other
/// non-iterable objects by their own enumerable members. `None` for anything else (functions,
/// symbols, `Set`s, bytes, larger BigInts, …).
fn write_json(v: &JsValue, depth: u32, out: &mut Vec<u8>) -> Option<()> {
    if depth > MAX_KEY_DEPTH || v.loose_eq(&JsValue::NULL) {
        out.extend_from_slice(b"null");
    } else if let Some(b) = v.as_bool() {
        out.extend_from_slice(if b { b"true" } else { b"false" });
    } else if v.is_bigint() {
        let text = match i64::try_from(v.clone()) {
            Ok(i) => i.to_string(),
            Err(v) => u64::try_from(v).ok()?.to_string(),
        };
        out.extend_from_slice(text.as_bytes());
    } else if let Some(n) = v.as_f64() {
        if js_sys::Number::is_safe_integer(v) {
            out.extend_from_slice((n as i64).to_string().as_bytes());
        } else if n.is_finite() {
            // JavaScript's own shortest form; `.0` keeps a large whole number a float.
            let text: String = js_sys::Number::to_string_with_radix(v.unchecked_ref(), 10)
                .ok()?
                .into();
            out.extend_from_slice(text.as_bytes());
            if !text.contains(['.', 'e']) {
                out.extend_from_slice(b".0");
            }
        } else {
            out.extend_from_slice(b"null");
        }
    } else if let Some(s) = v.as_string() {
        serde_json::to_writer(&mut *out, &s).ok()?;
    } else if let Some(array) = v.dyn_ref::<js_sys::Array>() {
        out.push(b'[');
        for (i, item) in array.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(&item, depth + 1, out)?;
        }
        out.push(b']');
    } else if v.is_instance_of::<js_sys::Uint8Array>() || v.is_instance_of::<js_sys::ArrayBuffer>()
    {
        return None;
    } else if v.is_object()
        && (!js_sys::Symbol::iterator().js_in(v) || v.is_instance_of::<js_sys::Map>())
    {
        let entries = match js_sys::try_iter(v).ok()? {
            Some(iter) => iter.collect::<Result<Vec<_>, _>>().ok()?,
            None => js_sys::Object::entries(v.unchecked_ref()).to_vec(),
        };
        out.push(b'{');
        for (i, entry) in entries.iter().enumerate() {
            let entry: &js_sys::Array = entry.unchecked_ref();
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &entry.get(0).as_string()?).ok()?;
            out.push(b':');
            write_json(&entry.get(1), depth + 1, out)?;
        }
        out.push(b'}');
    } else {
        return None;
    }
    Some(())
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

/// A `Retry-After` of seconds, in milliseconds; `None` for an HTTP-date or anything else.
///
/// The header holds whole seconds (RFC 9110 §10.2.3). This reads what `str::parse::<f64>` did
/// before, without core's float parser and its 10 KB of tables: fractions, exponents and `inf`
/// too. A negative value or NaN is `None`, which the caller treated the same anyway (it only
/// ever waits longer than the backoff, never shorter).
fn retry_after_ms(header: &str) -> Option<f64> {
    let s = header.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") {
        return Some(f64::INFINITY);
    }
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    // Digits as an integer times a power of ten, milliseconds included.
    let (mut digits, mut scale) = (0u64, 3i32);
    for (i, b) in whole.bytes().chain(fraction.bytes()).enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        if digits < 1 << 60 {
            digits = digits * 10 + u64::from(b - b'0');
            scale -= i32::from(i >= whole.len());
        } else {
            scale += i32::from(i < whole.len());
        }
    }
    if let Some(e) = exponent {
        let (negative, e) = match e.strip_prefix('-') {
            Some(e) => (true, e),
            None => (false, e.strip_prefix('+').unwrap_or(e)),
        };
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Saturate: 10^±10000 is already infinite or zero.
        let e = e
            .bytes()
            .fold(0i32, |n, b| (n * 10 + i32::from(b - b'0')).min(10_000));
        scale += if negative { -e } else { e };
    }
    if digits == 0 {
        return Some(0.0);
    }
    Some(digits as f64 * 10f64.powi(scale))
}

/// The `/v1/tokens` request body, `{"card":"…"}` or `{"cvc":"…"}`. A compact JWE is base64url
/// and dots, so it needs no JSON escaping.
fn token_body(member: &str, jwe: &str) -> String {
    format!(r#"{{"{member}":"{jwe}"}}"#)
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
        let signal = controller.signal();
        let abort = Closure::once_into_js(move || controller.abort());
        let timer = set_timeout(
            abort.unchecked_ref(),
            i32::try_from(timeout_ms).unwrap_or(i32::MAX),
        );
        let result = JsFuture::from(global_fetch(&req)).await;
        clear_timeout(&timer);
        let resp: Response = result
            .map_err(|_| {
                // A vault that accepts the connection and never answers ends here too.
                if signal.aborted() {
                    connection_error("timeout", "The vault did not answer in time.")
                } else {
                    connection_error("network_error", "The vault's keys could not be fetched.")
                }
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
                        .and_then(|s| retry_after_ms(&s));
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
                    // 409 `idempotency_key_in_use`: an earlier attempt with this key is still being
                    // processed (its answer was lost to a timeout or network error); asking again
                    // later replays its outcome.
                    let in_flight =
                        status == 409 && code_of(&err).as_deref() == Some("idempotency_key_in_use");
                    if status != 429 && status < 500 && !in_flight {
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
        let opts = CreateOptions::read(&options).ok_or_else(|| {
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
            Some(text) => VaultKey::parse(text).map_err(core_error)?,
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
                jwe::seal_card(key, &card, now_seconds()).map(|jwe| token_body("card", &jwe))
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
                jwe::seal_cvc(key, &cvc, now_seconds()).map(|jwe| token_body("cvc", &jwe))
            };
            inner.post_token(&body).await
        })
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    /// What the code did before: `str::parse::<f64>`, in milliseconds. A negative or NaN wait
    /// never mattered (the backoff is always longer), so those count as `None`.
    fn with_f64_parse(header: &str) -> Option<f64> {
        let ms = header.trim().parse::<f64>().ok()? * 1000.0;
        (ms > 0.0).then_some(ms)
    }

    #[wasm_bindgen_test]
    fn retry_after_reads_what_the_f64_parse_read() {
        let inputs = [
            "0",
            "1",
            " 2 ",
            "120",
            "+3",
            "1.5",
            "0.25",
            ".5",
            "5.",
            "1e2",
            "1E+2",
            "15e-1",
            "2.5e-3",
            "inf",
            "+Infinity",
            "INF",
            "99999999999999999999",
            "1e400",
            "1e-400",
            "0e99999",
            "00000000000000000000000000001",
            "1.000000000000000000000001",
            "-1",
            "-inf",
            "nan",
            "NaN",
            "",
            " ",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.5.3",
            "1e5e3",
            "0x10",
            "1_000",
            "٣",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "infinit",
            "infinityy",
        ];
        for input in inputs {
            let new = retry_after_ms(input).filter(|ms| *ms > 0.0);
            let old = with_f64_parse(input);
            match (new, old) {
                (Some(a), Some(b)) => assert!(
                    a == b || (a - b).abs() <= b * 1e-12,
                    "{input:?}: {a} != {b}"
                ),
                (a, b) => assert_eq!(a, b, "{input:?}"),
            }
        }
    }

    #[wasm_bindgen_test]
    fn token_bodies_are_json() {
        assert_eq!(token_body("card", "a.b-_.c"), r#"{"card":"a.b-_.c"}"#);
        assert_eq!(
            token_body("cvc", "x"),
            serde_json::json!({ "cvc": "x" }).to_string()
        );
    }
}
