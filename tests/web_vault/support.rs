//! What the vault client's browser tests share (`tests/web_vault.rs`, `tests/web_worker.rs`):
//! the servers' addresses, compiled in by `tests/support/with-servers.mjs`, and helpers.
#![allow(dead_code)]

use cardseal::wasm::Client;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const HOW: &str = "run through tests/support/with-servers.mjs, which starts the servers";

/// A server address compiled in by the harness; without the harness, the test says how to run it.
fn set(value: Option<&'static str>) -> &'static str {
    match value {
        Some(v) => v,
        None => panic!("{HOW}"),
    }
}

pub fn vault_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_VAULT_URL"))
}
pub fn publishable_key() -> &'static str {
    set(option_env!("CARDSEAL_TEST_PK"))
}
pub fn hang_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_HANG_URL"))
}
pub fn flaky_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_FLAKY_URL"))
}
pub fn closed_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_CLOSED_URL"))
}

pub fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

pub fn code(err: &JsValue) -> String {
    get(err, "code").as_string().unwrap_or_default()
}

pub fn options(url: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"vaultUrl".into(), &url.into()).unwrap();
    Reflect::set(&o, &"publishableKey".into(), &publishable_key().into()).unwrap();
    for (k, v) in extra {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

#[wasm_bindgen]
extern "C" {
    /// The global fetch: the window's or the worker's.
    fn fetch(input: &str, init: &JsValue) -> js_sys::Promise;
}

pub async fn fetch_json(url: &str, method: &str) -> JsValue {
    let init = Object::new();
    Reflect::set(&init, &"method".into(), &method.into()).unwrap();
    let resp: web_sys::Response = JsFuture::from(fetch(url, &init))
        .await
        .unwrap()
        .dyn_into()
        .unwrap();
    if resp.status() == 204 {
        return JsValue::NULL;
    }
    JsFuture::from(resp.json().unwrap()).await.unwrap()
}

/// The vault's JWKS as a JS value, to pass as `vaultKey` where the vault URL is not the vault.
pub async fn jwks() -> JsValue {
    fetch_json(&[vault_url(), "/.well-known/jwks.json"].concat(), "GET").await
}

/// Tells the flaky proxy what to do with the next token POSTs (and clears its stats).
pub async fn control(query: &str) {
    fetch_json(&[flaky_url(), "/__control?", query].concat(), "POST").await;
}

/// What the flaky proxy saw since the last `control`.
pub async fn stats() -> JsValue {
    fetch_json(&[flaky_url(), "/__stats"].concat(), "GET").await
}

/// `CardSeal.create`, as the wasm runs it.
pub async fn connect(options: JsValue) -> Result<Client, JsValue> {
    Client::connecting(options)?.await
}

pub fn card(number: &str) -> JsValue {
    let o = Object::new();
    for (k, v) in [
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "2035"),
        ("cvc", "123"),
        ("name", "Ada Lovelace"),
    ] {
        Reflect::set(&o, &k.into(), &v.into()).unwrap();
    }
    o.into()
}

pub async fn tokenize(client: &Client, number: &str) -> Result<JsValue, JsValue> {
    JsFuture::from(client.tokenize(card(number))).await
}

/// Tells the flaky proxy to fail the next token POST in `mode`, tokenizes through it, and
/// returns the token, the token ids the vault answered, and the idempotency keys it saw.
pub async fn through_flaky(mode: &str, number: &str) -> (JsValue, js_sys::Array, js_sys::Array) {
    control(&["fail=1&mode=", mode].concat()).await;
    let client = connect(options(flaky_url(), &[("vaultKey", jwks().await)]))
        .await
        .unwrap();
    let token = tokenize(&client, number).await.unwrap();
    let stats = stats().await;
    assert_eq!(
        get(&stats, "posts").as_f64(),
        Some(2.0),
        "one failure, one retry"
    );
    let ids = get(&stats, "tokenIds").dyn_into().unwrap();
    let keys = get(&stats, "idempotencyKeys").dyn_into().unwrap();
    (token, ids, keys)
}
