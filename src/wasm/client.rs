//! The vault client: `fetch` with a deadline, the key fetch, and the token POST with its
//! retries, backoff and idempotency key. Rejections are the plain error objects of
//! [`super::error`].

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Headers, Request, RequestInit, Response};

use super::error::{self, JsError};
use crate::jwe::{self, VaultKey};
use crate::{ApiCode, Error};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (window, worker or Node), so the client works wherever fetch exists.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &Request) -> js_sys::Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

const BACKOFF_BASE_MS: f64 = 250.0;
const BACKOFF_CAP_MS: f64 = 4_000.0;

/// Where the vault is and how to call it.
#[derive(Debug)]
pub struct Client {
    /// The vault's base URL, without a trailing `/`.
    pub vault_url: String,
    /// The `pk_…` key every request carries.
    pub publishable_key: String,
    /// The deadline of one call, retries included.
    pub timeout_ms: u32,
    /// How many times a failed POST is tried again.
    pub retries: u32,
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

#[wasm_bindgen]
extern "C" {
    /// A vault's `{"error": {…}}` body, as `Response.json()` gives it.
    type ErrorBody;
    #[wasm_bindgen(method, getter)]
    fn error(this: &ErrorBody) -> JsValue;
    /// Its `error` object, with the documented members.
    type ErrorMembers;
    #[wasm_bindgen(method, getter)]
    fn code(this: &ErrorMembers) -> JsValue;
    #[wasm_bindgen(method, getter, js_name = type)]
    fn kind(this: &ErrorMembers) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn param(this: &ErrorMembers) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn message(this: &ErrorMembers) -> JsValue;
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
        // Only a JSON object body has members (a getter on `null` would throw); a member that
        // is not a string counts as absent.
        let err = body
            .filter(JsValue::is_object)
            .map(|b| b.unchecked_into::<ErrorBody>().error())
            .filter(JsValue::is_object)
            .map(JsValue::unchecked_into::<ErrorMembers>);
        let member =
            |get: fn(&ErrorMembers) -> JsValue| err.as_ref().and_then(|e| get(e).as_string());
        VaultError {
            status,
            code: member(ErrorMembers::code).unwrap_or_else(|| {
                if status >= 500 {
                    "api_error"
                } else {
                    "http_error"
                }
                .into()
            }),
            kind: member(ErrorMembers::kind).unwrap_or_else(|| "api_error".into()),
            param: member(ErrorMembers::param),
            message: member(ErrorMembers::message)
                .unwrap_or_else(|| format!("The vault answered HTTP {status}.")),
        }
    }

    fn to_js(&self) -> JsValue {
        JsError::new(&self.code, &self.kind, self.param.as_deref(), &self.message)
            .with_status(self.status)
            .into()
    }
}

/// A `Retry-After` of seconds, in milliseconds; `None` for an HTTP-date or anything else.
///
/// It reads what `str::parse::<f64>` reads (fractions, exponents, `inf` too; the test below
/// holds them to it), without core's float parser and its 10 KB of tables. A negative value or
/// NaN is `None`: the wait is only ever made longer than the backoff, never shorter.
pub(crate) fn retry_after_ms(header: &str) -> Option<f64> {
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
pub(crate) fn token_body(member: &str, jwe: &str) -> String {
    format!(r#"{{"{member}":"{jwe}"}}"#)
}

impl Client {
    fn request(
        &self,
        method: &str,
        path: &str,
        signal: &AbortSignal,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Request, JsValue> {
        let init = RequestInit::new();
        init.set_method(method);
        init.set_signal(Some(signal));
        let h = Headers::new()?;
        h.set("Authorization", &format!("Bearer {}", self.publishable_key))?;
        for (name, value) in headers {
            h.set(name, value)?;
        }
        init.set_headers(&h);
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(body));
        }
        Request::new_with_str_and_init(&format!("{}{path}", self.vault_url), &init)
    }

    /// `GET /v1/encryption_keys`, within `timeout_ms`.
    pub async fn fetch_keys(&self, timeout_ms: u32) -> Result<VaultKey, JsValue> {
        let deadline = Deadline::new(timeout_ms)?;
        let req = self
            .request("GET", "/v1/encryption_keys", &deadline.signal, &[], None)
            .map_err(|_| {
                error::request(
                    "invalid_vault_url",
                    "vaultUrl",
                    "vaultUrl is not a valid URL.",
                )
            })?;
        let resp: Response = JsFuture::from(global_fetch(&req))
            .await
            .map_err(|_| {
                // A vault that accepts the connection and never answers ends here too.
                if deadline.signal.aborted() {
                    timeout()
                } else {
                    error::connection("network_error", "The vault's keys could not be fetched.")
                }
            })?
            .dyn_into()?;
        if !resp.ok() {
            return Err(VaultError::read(&resp).await.to_js());
        }
        let text = JsFuture::from(resp.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        VaultKey::parse(&text).map_err(error::core)
    }

    /// POSTs what `make_body` seals with `key` to `/v1/tokens` with one idempotency key,
    /// retrying network errors, 429, 5xx and 409 `idempotency_key_in_use` with exponential
    /// backoff and jitter, all within one deadline. An `encryption_key_expired` answer fetches
    /// the keys once, seals again, and keeps the new key in `key`.
    pub async fn post_token(
        &self,
        key: &RefCell<VaultKey>,
        make_body: &dyn Fn(&VaultKey) -> Result<String, Error>,
    ) -> Result<JsValue, JsValue> {
        let end = js_sys::Date::now() + f64::from(self.timeout_ms);
        let deadline = Deadline::new(self.timeout_ms)?;
        let signal = &deadline.signal;
        let mut body = make_body(&key.borrow()).map_err(error::core)?;
        let mut idempotency_key = jwe::new_jti().map_err(error::core)?;
        let mut refetched = false;
        let mut attempt = 0u32;
        loop {
            let headers = [
                ("Content-Type", "application/json"),
                ("Idempotency-Key", idempotency_key.as_str()),
            ];
            let req = self.request("POST", "/v1/tokens", signal, &headers, Some(&body))?;
            let outcome = JsFuture::from(global_fetch(&req)).await;
            let retry_after = match outcome {
                Err(_) if signal.aborted() => return Err(timeout()),
                Err(_) => None,
                Ok(resp) => {
                    let resp: Response = resp.dyn_into()?;
                    if resp.ok() {
                        return JsFuture::from(resp.json()?).await;
                    }
                    let retry_after = resp
                        .headers()
                        .get("Retry-After")
                        .ok()
                        .flatten()
                        .and_then(|s| retry_after_ms(&s));
                    let err = VaultError::read(&resp).await;
                    if err.code == ApiCode::EncryptionKeyExpired.as_str() && !refetched {
                        // The vault rotated its key: fetch the new one once, seal again, and send
                        // it as a new request (the old one made no token).
                        refetched = true;
                        let remaining = (end - js_sys::Date::now()).max(1.0) as u32;
                        let new_key = self.fetch_keys(remaining).await?;
                        body = make_body(&new_key).map_err(error::core)?;
                        *key.borrow_mut() = new_key;
                        idempotency_key = jwe::new_jti().map_err(error::core)?;
                        continue;
                    }
                    // 409 `idempotency_key_in_use`: an earlier attempt with this key is still being
                    // processed (its answer was lost to a timeout or network error); asking again
                    // later replays its outcome.
                    let in_flight =
                        err.status == 409 && err.code == ApiCode::IdempotencyKeyInUse.as_str();
                    if (err.status != 429 && err.status < 500 && !in_flight)
                        || attempt >= self.retries
                    {
                        return Err(err.to_js());
                    }
                    Some(retry_after.unwrap_or(0.0))
                }
            };
            if attempt >= self.retries {
                return Err(error::connection(
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
            if end - js_sys::Date::now() <= wait {
                return Err(timeout());
            }
            sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    /// `str::parse::<f64>`, in milliseconds. A negative or NaN wait never matters (the backoff
    /// is always longer), so those count as `None`.
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
