//! The vault client in a dedicated worker, where the global is a `WorkerGlobalScope` and there
//! is no `window`: create (the key fetch), tokenize, a retried 503 and a timeout, against the
//! servers `tests/support/with-servers.mjs` starts (see `tests/web_vault.rs`).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "web_vault/support.rs"]
mod support;

use support::*;

#[wasm_bindgen_test]
async fn the_client_runs_in_a_worker_scope() {
    let global = js_sys::global();
    assert!(
        js_sys::Reflect::get(&global, &"window".into())
            .unwrap()
            .is_undefined(),
        "not a worker"
    );
    let client = connect(options(vault_url(), &[])).await.unwrap();
    let token = tokenize(&client, "4242 4242 4242 4242").await.unwrap();
    assert!(get(&token, "id").as_string().unwrap().starts_with("tok_"));

    let (token, ids, keys) = through_flaky("before", "4242 4242 4242 4242").await;
    assert_eq!(keys.get(0), keys.get(1));
    assert_eq!(ids.get(0), get(&token, "id"));

    let extra = [
        ("vaultKey", jwks().await),
        ("timeoutMs", JsValue::from(400)),
        ("retries", JsValue::from(1)),
    ];
    let client = connect(options(hang_url(), &extra)).await.unwrap();
    let err = tokenize(&client, "4242424242424242").await.unwrap_err();
    assert_eq!(code(&err), "timeout");
}
