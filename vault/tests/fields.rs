//! Hosted fields: the field documents at `/fields/{version}/{kind}.html?pk=…`, with a CSP of
//! their own whose `frame-ancestors` are the account's allowed origins, and their immutable
//! script; and the vault's own origin may use a publishable key.

#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use cardseal_vault::assets::Assets;
use support::*;

async fn vault_with_fields() -> (tempfile::TempDir, TestVault, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cardseal.js"), b"window.cardseal = {};").unwrap();
    std::fs::write(dir.path().join("cardseal_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("cardseal-frame.js"), b"/* frame */").unwrap();
    let assets = Arc::new(Assets::load(dir.path(), "0.1.0").unwrap());
    let version = assets.fields().unwrap().version().to_owned();
    let vault = TestVault::with_config(cardseal_vault::config::Config {
        snippet: Some(assets),
        ..unlimited()
    })
    .await;
    (dir, vault, version)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_field_document_carries_its_own_csp_with_the_accounts_origins() {
    let (_dir, v, version) = vault_with_fields().await;
    assert!(
        version.starts_with("0.1.0-") && version.len() == 14,
        "{version}"
    );
    let pk = &v.account.publishable_key;
    let res = v
        .call(get(&format!("/fields/{version}/number.html?pk={pk}")))
        .await;
    assert_eq!(res.status, 200);
    let csp = res.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",
        "frame-ancestors https://shop.example http://127.0.0.1:*",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains(" 'unsafe-eval'"));
    let html = String::from_utf8(res.body.to_vec()).unwrap();
    assert!(html.contains("data-kind=\"number\""));
    // The key the vault checked, for the frame script to seal with and its siblings to compare.
    assert!(html.contains(&format!(" data-pk=\"{pk}\" ")), "{html}");
    assert!(html.contains(&format!(
        "<script src=\"/fields/{version}/cardseal-frame.js\" integrity=\"sha384-"
    )));
    assert!(!html.contains("<style") && !html.contains("onload="));
    // Every kind exists; anything else does not.
    for kind in ["expiry", "cvc", "name", "card"] {
        let res = v
            .call(get(&format!("/fields/{version}/{kind}.html?pk={pk}")))
            .await;
        assert_eq!(res.status, 200, "{kind}");
    }
    for path in [
        format!("/fields/{version}/iban.html?pk={pk}"),
        format!("/fields/0.0.1-00000000/number.html?pk={pk}"),
        format!("/fields/{version}/../cardseal.js"),
    ] {
        assert_eq!(v.call(get(&path)).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn only_a_live_publishable_key_gets_a_document_and_no_one_may_frame_a_refusal() {
    let (_dir, v, version) = vault_with_fields().await;
    for key in [
        "",
        "pk_test_doesnotexist",
        v.account.secret_key.as_str(),
        v.account.restricted_key.as_str(),
    ] {
        let res = v
            .call(get(&format!("/fields/{version}/number.html?pk={key}")))
            .await;
        assert_eq!(res.status, 403, "{key:.8}");
        assert_eq!(
            res.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
    }
}

#[tokio::test]
async fn a_document_names_exactly_one_key() {
    let (_dir, v, version) = vault_with_fields().await;
    let pk = &v.account.publishable_key;
    // A second `pk` (in any spelling) could be read by the vault and by the frame's script as two
    // different accounts: the document would carry one's origins and seal into the other.
    for query in [
        format!("pk={pk}&pk=pk_test_doesnotexist"),
        format!("pk=pk_test_doesnotexist&pk={pk}"),
        format!("pk={pk}&pk={pk}"),
        format!("pk={pk}&p%6B={pk}"),
        format!("other={pk}"),
    ] {
        let res = v
            .call(get(&format!("/fields/{version}/number.html?{query}")))
            .await;
        assert_eq!(res.status, 403, "{query}");
        assert!(!String::from_utf8_lossy(&res.body).contains(pk.as_str()));
    }
    let res = v
        .call(get(&format!(
            "/fields/{version}/cvc.html?locale=fr&pk={pk}"
        )))
        .await;
    assert_eq!(res.status, 200);
}

#[tokio::test]
async fn the_field_script_is_immutable() {
    let (_dir, v, version) = vault_with_fields().await;
    let res = v
        .call(get(&format!("/fields/{version}/cardseal-frame.js")))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(&res.body[..], b"/* frame */");
    assert_eq!(
        res.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let wasm = v
        .call(get(&format!("/fields/{version}/cardseal_bg.wasm")))
        .await;
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
}

#[tokio::test]
async fn the_vaults_own_origin_may_use_a_publishable_key_and_others_still_may_not() {
    let (_dir, v, _version) = vault_with_fields().await;
    let pk = v.account.publishable_key.clone();
    let keys = |origin: &str| {
        Request::get("/v1/encryption_keys")
            .header("authorization", format!("Bearer {pk}"))
            .header("host", "vault.example")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(v.call(keys("https://vault.example")).await.status, 200);
    v.call(keys("https://elsewhere.example"))
        .await
        .assert_error(403, "permission_error", "origin_not_allowed");
    // A look-alike host is not the vault.
    v.call(keys("https://vault.example.evil"))
        .await
        .assert_error(403, "permission_error", "origin_not_allowed");
}
