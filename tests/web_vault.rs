//! Browser tests of the vault client (src/wasm/client.rs) against servers on 127.0.0.1 that the
//! test script starts: a real vault, a server that never answers, a flaky proxy in front of the
//! vault (503, 409 in use, a rotated key, a long Retry-After, a non-JSON error), and a port
//! nothing listens on. `scripts/test.sh` runs
//! `node tests/support/with-servers.mjs -- wasm-pack test --headless --chrome --firefox -- --test web_vault`;
//! their addresses are compiled in from `CARDSEAL_TEST_*`. The vault's test account allows
//! `http://127.0.0.1:*`, the origin the test runner serves its page from.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[path = "web_vault/support.rs"]
mod support;

use support::*;

#[wasm_bindgen_test]
async fn tokenize_against_a_real_vault() {
    let client = connect(options(vault_url(), &[])).await.unwrap();
    assert!(client.kid().is_some());
    let token = tokenize(&client, "4242 4242 4242 4242").await.unwrap();
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

    let cvc = JsFuture::from(client.tokenize_cvc("123")).await.unwrap();
    assert_eq!(get(&cvc, "type").as_string().as_deref(), Some("cvc"));
    assert!(get(&cvc, "card").is_null());
}

#[wasm_bindgen_test]
async fn an_invalid_card_rejects_before_any_request() {
    control("fail=0").await;
    let client = connect(options(flaky_url(), &[("vaultKey", jwks().await)]))
        .await
        .unwrap();
    let err = tokenize(&client, "4242 4242 4242 4241").await.unwrap_err();
    assert_eq!(code(&err), "invalid_number");
    assert_eq!(get(&err, "param").as_string().as_deref(), Some("number"));
    assert_eq!(
        get(&err, "type").as_string().as_deref(),
        Some("validation_error")
    );
    let err = JsFuture::from(client.tokenize_cvc("12a"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_cvc");
    assert_eq!(get(&stats().await, "posts").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn a_server_that_never_answers_times_out_keys_and_tokens_alike() {
    // `timeout`, not `network_error`: the snippet tells a stalled vault from a refused one.
    let err = connect(options(hang_url(), &[("timeoutMs", 400.into())]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "timeout");
    assert_eq!(
        get(&err, "type").as_string().as_deref(),
        Some("api_connection_error")
    );
    let extra = [
        ("vaultKey", jwks().await),
        ("timeoutMs", 400.into()),
        ("retries", 1.into()),
    ];
    let client = connect(options(hang_url(), &extra)).await.unwrap();
    let err = tokenize(&client, "4242424242424242").await.unwrap_err();
    assert_eq!(code(&err), "timeout");
    assert_eq!(
        get(&err, "type").as_string().as_deref(),
        Some("api_connection_error")
    );
}

#[wasm_bindgen_test]
async fn a_refused_connection_is_a_network_error_after_the_retries() {
    let err = connect(options(closed_url(), &[])).await.unwrap_err();
    assert_eq!(code(&err), "network_error");
    assert_eq!(
        get(&err, "type").as_string().as_deref(),
        Some("api_connection_error")
    );
    let extra = [("vaultKey", jwks().await), ("retries", 1.into())];
    let client = connect(options(closed_url(), &extra)).await.unwrap();
    let err = tokenize(&client, "4242424242424242").await.unwrap_err();
    assert_eq!(code(&err), "network_error");
}

#[wasm_bindgen_test]
async fn a_503_is_retried_with_the_same_idempotency_key_and_makes_one_token() {
    let (token, ids, keys) = through_flaky("before", "5555 5555 5555 4444").await;
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
    let (token, ids, keys) = through_flaky("after", "4242 4242 4242 4242").await;
    assert_eq!(keys.get(0), keys.get(1));
    assert_eq!(ids.length(), 2, "the vault answered both attempts");
    assert_eq!(ids.get(0), ids.get(1), "with one and the same token");
    assert_eq!(ids.get(0), get(&token, "id"));
}

#[wasm_bindgen_test]
async fn a_409_in_use_is_retried_with_the_same_key() {
    let (token, ids, keys) = through_flaky("inuse", "4242 4242 4242 4242").await;
    assert_eq!(keys.get(0), keys.get(1));
    assert_eq!(ids.length(), 1);
    assert_eq!(ids.get(0), get(&token, "id"));
}

#[wasm_bindgen_test]
async fn a_rotated_key_is_fetched_once_more_and_the_card_sealed_and_sent_anew() {
    control("fail=1&mode=expired").await;
    let client = connect(options(flaky_url(), &[])).await.unwrap();
    let token = tokenize(&client, "4242424242424242").await.unwrap();
    let s = stats().await;
    assert_eq!(
        get(&s, "keyFetches").as_f64(),
        Some(2.0),
        "create, then the rotation"
    );
    assert_eq!(get(&s, "posts").as_f64(), Some(2.0));
    let keys: js_sys::Array = get(&s, "idempotencyKeys").dyn_into().unwrap();
    assert_ne!(keys.get(0), keys.get(1), "a new seal is a new request");
    let ids: js_sys::Array = get(&s, "tokenIds").dyn_into().unwrap();
    assert_eq!(ids.length(), 1);
    assert_eq!(ids.get(0), get(&token, "id"));
}

#[wasm_bindgen_test]
async fn a_key_that_expires_twice_is_the_vault_error_not_a_loop() {
    control("fail=5&mode=expired").await;
    let client = connect(options(flaky_url(), &[])).await.unwrap();
    let err = tokenize(&client, "4242424242424242").await.unwrap_err();
    assert_eq!(code(&err), "encryption_key_expired");
    assert_eq!(get(&err, "status").as_f64(), Some(400.0));
    let s = stats().await;
    assert_eq!(get(&s, "posts").as_f64(), Some(2.0));
    assert_eq!(get(&s, "keyFetches").as_f64(), Some(2.0));
}

#[wasm_bindgen_test]
async fn a_retry_after_beyond_the_deadline_ends_in_timeout_instead_of_a_retry() {
    control("fail=1&mode=busy").await;
    let extra = [("vaultKey", jwks().await), ("timeoutMs", 5000.into())];
    let client = connect(options(flaky_url(), &extra)).await.unwrap();
    let err = tokenize(&client, "4242424242424242").await.unwrap_err();
    assert_eq!(code(&err), "timeout");
    assert_eq!(
        get(&stats().await, "posts").as_f64(),
        Some(1.0),
        "it did not retry before the hour was up"
    );
}

#[wasm_bindgen_test]
async fn an_error_answer_that_is_not_json_still_has_a_code_a_type_and_the_status() {
    control("fail=1&mode=teapot").await;
    let client = connect(options(flaky_url(), &[("vaultKey", jwks().await)]))
        .await
        .unwrap();
    let err = tokenize(&client, "4242424242424242").await.unwrap_err();
    assert_eq!(code(&err), "http_error");
    assert_eq!(get(&err, "type").as_string().as_deref(), Some("api_error"));
    assert_eq!(get(&err, "status").as_f64(), Some(418.0));
}

#[wasm_bindgen_test]
async fn bad_options_reject_clearly_before_any_request() {
    let err = connect(options("ftp://x", &[])).await.unwrap_err();
    assert_eq!(code(&err), "invalid_vault_url");
    assert_eq!(get(&err, "param").as_string().as_deref(), Some("vaultUrl"));
    let o = options(vault_url(), &[]);
    Reflect::set(&o, &"publishableKey".into(), &"sk_test_oops".into()).unwrap();
    assert_eq!(
        code(&connect(o).await.unwrap_err()),
        "invalid_publishable_key"
    );
    let err = connect(options(vault_url(), &[("vaultKey", "not a key".into())]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_key");
    let err = connect(options("http://[::1", &[])).await.unwrap_err();
    assert_eq!(code(&err), "invalid_vault_url");
    for bad in [
        JsValue::UNDEFINED,
        JsValue::from(5),
        Object::new().into(),
        options(vault_url(), &[("timeoutMs", "100".into())]),
        options(
            vault_url(),
            &[("vaultKey", js_sys::Set::new(&JsValue::UNDEFINED).into())],
        ),
    ] {
        let err = connect(bad).await.unwrap_err();
        assert_eq!(code(&err), "invalid_options");
    }
    let err = connect(options(vault_url(), &[("retries", 1.5.into())]))
        .await
        .unwrap_err();
    assert_eq!(get(&err, "param").as_string().as_deref(), Some("retries"));
}
