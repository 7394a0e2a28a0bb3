//! Browser tests of `CardSeal` against servers on 127.0.0.1 that the test script starts:
//! `node tests/support/with-servers.mjs -- wasm-pack test --headless --chrome --firefox -- --test web_vault`
//! (`npm test` does this). Their addresses are compiled in from `CARDSEAL_TEST_*`.
#![cfg(target_arch = "wasm32")]

use cardseal::wasm::CardSealCore;
use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const HOW: &str = "run through tests/support/with-servers.mjs, which starts the servers";

/// A server address compiled in by the harness; without the harness, the test says how to run it.
fn set(value: Option<&'static str>) -> &'static str {
    match value {
        Some(v) => v,
        None => panic!("{HOW}"),
    }
}

fn vault_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_VAULT_URL"))
}
fn publishable_key() -> &'static str {
    set(option_env!("CARDSEAL_TEST_PK"))
}
fn hang_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_HANG_URL"))
}
fn flaky_url() -> &'static str {
    set(option_env!("CARDSEAL_TEST_FLAKY_URL"))
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

fn options(url: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"vaultUrl".into(), &url.into()).unwrap();
    Reflect::set(&o, &"publishableKey".into(), &publishable_key().into()).unwrap();
    for (k, v) in extra {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

async fn fetch_json(url: &str, method: &str) -> JsValue {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let req = web_sys::Request::new_with_str_and_init(url, &init).unwrap();
    let resp: web_sys::Response = JsFuture::from(fetch(&req))
        .await
        .unwrap()
        .dyn_into()
        .unwrap();
    if resp.status() == 204 {
        return JsValue::NULL;
    }
    JsFuture::from(resp.json().unwrap()).await.unwrap()
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    fn fetch(input: &web_sys::Request) -> js_sys::Promise;
}

/// The vault's JWKS as a JS value, to pass as `vaultKey` where the vault URL is not the vault.
async fn jwks() -> JsValue {
    fetch_json(&format!("{}/.well-known/jwks.json", vault_url()), "GET").await
}

async fn tokenize(seal: &CardSealCore, number: &str) -> Result<JsValue, JsValue> {
    JsFuture::from(seal.tokenize(
        number.into(),
        "12".into(),
        "2035".into(),
        Some("123".into()),
        Some("Ada Lovelace".into()),
    ))
    .await
}

#[wasm_bindgen_test]
async fn tokenize_against_a_real_vault() {
    let seal = CardSealCore::create(options(vault_url(), &[]))
        .await
        .unwrap();
    assert!(seal.kid().is_some());
    let token = tokenize(&seal, "4242 4242 4242 4242").await.unwrap();
    let id = get(&token, "id").as_string().unwrap();
    assert!(id.starts_with("tok_") && id.len() == 26, "{id}");
    assert_eq!(get(&token, "type").as_string().as_deref(), Some("card"));
    assert_eq!(get(&token, "used").as_bool(), Some(false));
    let card = get(&token, "card");
    assert_eq!(get(&card, "last4").as_string().as_deref(), Some("4242"));
    assert_eq!(get(&card, "brand").as_string().as_deref(), Some("visa"));
    // Nothing of the number but the last four digits comes back.
    let text = js_sys::JSON::stringify(&token)
        .unwrap()
        .as_string()
        .unwrap();
    assert!(!text.contains("42424242"), "{text}");

    let cvc = JsFuture::from(seal.tokenize_cvc("123".into()))
        .await
        .unwrap();
    assert_eq!(get(&cvc, "type").as_string().as_deref(), Some("cvc"));
}

#[wasm_bindgen_test]
async fn an_invalid_card_rejects_before_any_request() {
    fetch_json(&format!("{}/__control?fail=0", flaky_url()), "POST").await;
    let seal = CardSealCore::create(options(flaky_url(), &[("vaultKey", jwks().await)]))
        .await
        .unwrap();
    let err = tokenize(&seal, "4242 4242 4242 4241").await.unwrap_err();
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("invalid_number")
    );
    assert_eq!(get(&err, "param").as_string().as_deref(), Some("number"));
    let stats = fetch_json(&format!("{}/__stats", flaky_url()), "GET").await;
    assert_eq!(get(&stats, "posts").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn a_server_that_never_answers_times_out() {
    let extra = [
        ("vaultKey", jwks().await),
        ("timeoutMs", JsValue::from(400)),
        ("retries", JsValue::from(1)),
    ];
    let seal = CardSealCore::create(options(hang_url(), &extra))
        .await
        .unwrap();
    let started = js_sys::Date::now();
    let err = tokenize(&seal, "4242424242424242").await.unwrap_err();
    assert_eq!(get(&err, "code").as_string().as_deref(), Some("timeout"));
    assert_eq!(
        get(&err, "type").as_string().as_deref(),
        Some("api_connection_error")
    );
    // It gave up by itself (the hang server never closes), not because the test harness did.
    assert!(js_sys::Date::now() - started < 60_000.0);
}

#[wasm_bindgen_test]
async fn keys_from_a_server_that_never_answers_time_out() {
    let err = CardSealCore::create(options(hang_url(), &[("timeoutMs", JsValue::from(400))]))
        .await
        .unwrap_err();
    // `timeout`, not `network_error`: the snippet tells a stalled vault from a refused one.
    assert_eq!(get(&err, "code").as_string().as_deref(), Some("timeout"));
    assert_eq!(
        get(&err, "type").as_string().as_deref(),
        Some("api_connection_error")
    );
}

/// Tells the flaky proxy to fail the next token POST in `mode`, tokenizes through it, and
/// returns the token, the token ids the vault answered, and the idempotency keys it saw.
async fn tokenize_through_flaky(
    mode: &str,
    number: &str,
) -> (JsValue, js_sys::Array, js_sys::Array) {
    fetch_json(
        &format!("{}/__control?fail=1&mode={mode}", flaky_url()),
        "POST",
    )
    .await;
    let seal = CardSealCore::create(options(flaky_url(), &[("vaultKey", jwks().await)]))
        .await
        .unwrap();
    let token = tokenize(&seal, number).await.unwrap();
    let stats = fetch_json(&format!("{}/__stats", flaky_url()), "GET").await;
    assert_eq!(
        get(&stats, "posts").as_f64(),
        Some(2.0),
        "one failure, one retry"
    );
    let ids = get(&stats, "tokenIds").dyn_into().unwrap();
    let keys = get(&stats, "idempotencyKeys").dyn_into().unwrap();
    (token, ids, keys)
}

#[wasm_bindgen_test]
async fn a_503_is_retried_with_the_same_idempotency_key_and_makes_one_token() {
    let (token, ids, keys) = tokenize_through_flaky("before", "5555 5555 5555 4444").await;
    assert_eq!(keys.length(), 2);
    assert!(keys.get(0).as_string().is_some_and(|k| k.len() >= 16));
    assert_eq!(keys.get(0), keys.get(1));
    assert_eq!(ids.length(), 1);
    assert_eq!(ids.get(0), get(&token, "id"));
}

#[wasm_bindgen_test]
async fn a_503_after_the_vault_made_the_token_replays_that_token() {
    // The vault made a token but the answer was lost: the retry, with the same idempotency key,
    // gets the same token back instead of a second one.
    let (token, ids, keys) = tokenize_through_flaky("after", "4242 4242 4242 4242").await;
    assert_eq!(keys.get(0), keys.get(1));
    assert_eq!(ids.length(), 2, "the vault answered both attempts");
    assert_eq!(ids.get(0), ids.get(1), "with one and the same token");
    assert_eq!(ids.get(0), get(&token, "id"));
}

#[wasm_bindgen_test]
async fn a_409_in_use_is_retried() {
    let (token, ids, keys) = tokenize_through_flaky("inuse", "4242 4242 4242 4242").await;
    assert_eq!(keys.get(0), keys.get(1));
    assert_eq!(ids.length(), 1);
    assert_eq!(ids.get(0), get(&token, "id"));
}

#[wasm_bindgen_test]
async fn bad_options_reject_clearly() {
    let err = CardSealCore::create(options("ftp://x", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("invalid_vault_url")
    );
    let o = options(vault_url(), &[]);
    Reflect::set(&o, &"publishableKey".into(), &"sk_test_oops".into()).unwrap();
    let err = CardSealCore::create(o).await.unwrap_err();
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("invalid_publishable_key")
    );
    let err = CardSealCore::create(options(vault_url(), &[("vaultKey", "not a key".into())]))
        .await
        .unwrap_err();
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("invalid_key")
    );
}
