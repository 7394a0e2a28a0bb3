//! Idempotency keys, the hash-chained audit log and detokenize, driven through `app()`.

#[path = "support/helpers.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use support::*;

const VISA: &str = "4242424242424242";

fn post_with_key(path: &str, key: &str, body: &Value, idem: &str) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("idempotency-key", idem)
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn token(v: &TestVault) -> String {
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    assert_eq!(r.status, 200);
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_scope() {
    let v = TestVault::new().await;
    let sk = v.account.secret_key.clone();

    // A token retry with the same key and JWE gets the same token, before any decryption.
    let jwe = json!({ "card": v.seal_card(VISA, "123") });
    let first = v
        .call(post_with_key(
            "/v1/tokens",
            &v.account.publishable_key,
            &jwe,
            "k-tok",
        ))
        .await;
    assert_eq!(first.status, 200);
    // Past the iat window, so a second decryption would fail: the replay must not decrypt.
    v.clock.advance(6 * 60);
    let again = v
        .call(post_with_key(
            "/v1/tokens",
            &v.account.publishable_key,
            &jwe,
            "k-tok",
        ))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    // A charge replays: one charge, one response.
    let tok = token(&v).await;
    let body = json!({"amount": 1000, "currency": "eur", "source": tok});
    let a = v
        .call(post_with_key("/v1/charges", &sk, &body, "k-1"))
        .await;
    assert_eq!(a.status, 200);
    let b = v
        .call(post_with_key("/v1/charges", &sk, &body, "k-1"))
        .await;
    assert_eq!(b.status, 200);
    assert_eq!(a.json()["id"], b.json()["id"]);
    // An error is replayed too (not run again).
    let bad = json!({"amount": 1000, "currency": "eur", "source": tok});
    let e1 = v.call(post_with_key("/v1/charges", &sk, &bad, "k-2")).await;
    e1.assert_error(400, "invalid_request_error", "token_already_used");
    let e2 = v.call(post_with_key("/v1/charges", &sk, &bad, "k-2")).await;
    assert_eq!(e2.body, e1.body);

    // The same key with another body is refused.
    let other = json!({"amount": 999, "currency": "eur", "source": tok});
    v.call(post_with_key("/v1/charges", &sk, &other, "k-1"))
        .await
        .assert_error(400, "idempotency_error", "idempotency_key_mismatch");
    // Another account's identical key is its own.
    let tok2 = token(&v).await;
    let r = v
        .call(post_with_key(
            "/v1/charges",
            &v.other.secret_key,
            &json!({"amount": 1000, "currency": "eur", "source": tok2}),
            "k-1",
        ))
        .await;
    r.assert_error(404, "invalid_request_error", "resource_missing");

    // After 24 hours the key is forgotten.
    v.clock.advance(24 * 3600);
    let tok3 = token(&v).await;
    let r = v
        .call(post_with_key(
            "/v1/charges",
            &sk,
            &json!({"amount": 1, "currency": "eur", "source": tok3}),
            "k-1",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_ne!(r.json()["id"], a.json()["id"]);
}

#[tokio::test]
async fn a_concurrent_duplicate_gets_409() {
    let v = TestVault::new().await;
    let sk = v.account.secret_key.clone();
    let mut outcomes = Vec::new();
    for round in 0..5 {
        let tok = token(&v).await;
        let body = json!({"amount": 1000, "currency": "eur", "source": tok});
        let key = format!("dup-{round}");
        let calls = (0..16).map(|_| v.call(post_with_key("/v1/charges", &sk, &body, &key)));
        let replies = futures_util::future::join_all(calls).await;
        let ids: std::collections::HashSet<_> = replies
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.json()["id"].clone())
            .collect();
        assert_eq!(ids.len(), 1, "one charge per key");
        for r in &replies {
            if r.status != 200 {
                r.assert_error(409, "invalid_request_error", "idempotency_key_in_use");
            }
        }
        outcomes.extend(replies.iter().map(|r| r.status.as_u16()));
    }
    assert!(outcomes.contains(&200));
}

#[tokio::test]
async fn events_are_chained_and_edits_are_caught() {
    let v = TestVault::new().await;
    let sk = v.account.secret_key.clone();
    let tok = token(&v).await;
    let card = v
        .call(post_json("/v1/cards", &sk, &json!({"token": tok})))
        .await
        .json();
    let id = card["id"].as_str().unwrap().to_owned();
    let charge = v
        .call(post_json(
            "/v1/charges",
            &sk,
            &json!({"amount": 5, "currency": "eur", "source": id}),
        ))
        .await
        .json();
    let r = v.get("/v1/events?limit=100", &sk).await;
    assert_eq!(r.status, 200);
    let list = r.json();
    let types: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "charge.succeeded",
            "card.created",
            "token.used",
            "token.created"
        ]
    );
    assert_eq!(list["data"][0]["data"]["charge"], charge["id"]);
    assert!(!list.to_string().contains(VISA));
    v.get("/v1/events", &v.account.publishable_key)
        .await
        .assert_error(403, "permission_error", "secret_key_required");
    let page = v.get("/v1/events?limit=2", &sk).await.json();
    assert_eq!(page["has_more"], true);
    let after = page["data"][1]["id"].as_str().unwrap();
    let next = v
        .get(&format!("/v1/events?limit=2&starting_after={after}"), &sk)
        .await
        .json();
    assert_eq!(next["data"][0]["type"], "token.used");

    // Another account's event interleaves: chains are per account.
    let r = v
        .create_token(
            &v.other.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    assert_eq!(r.status, 200);
    let theirs = v.get("/v1/events", &v.other.secret_key).await.json();
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        cardseal_vault::events::verify(v.state.store(), v.state.master())
            .await
            .unwrap(),
        Ok(5)
    );
    // Edit one row: the chain breaks exactly there.
    db_query(
        v.dir.path(),
        "UPDATE events SET body = replace(body, '\"amount\":5', '\"amount\":500') WHERE type = 'charge.succeeded'",
    );
    let broken = cardseal_vault::events::verify(v.state.store(), v.state.master())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.seq, 4);
}

#[tokio::test]
async fn detokenize_needs_the_scope_and_is_audited() {
    let v = TestVault::new().await;
    let tok = token(&v).await;
    let body = json!({"token": tok});
    v.call(post_json("/v1/detokenize", &v.account.secret_key, &body))
        .await
        .assert_error(403, "permission_error", "insufficient_scope");
    v.call(post_json(
        "/v1/detokenize",
        &v.account.publishable_key,
        &body,
    ))
    .await
    .assert_error(403, "permission_error", "secret_key_required");
    let r = v
        .call(post_json(
            "/v1/detokenize",
            &v.account.restricted_key,
            &body,
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["number"], VISA);
    assert_eq!(r.json()["exp_month"], 12);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // A restricted key can do nothing else.
    v.get(&format!("/v1/tokens/{tok}"), &v.account.restricted_key)
        .await
        .assert_error(403, "permission_error", "insufficient_scope");
    // A saved card, too.
    let card = v
        .call(post_json(
            "/v1/cards",
            &v.account.secret_key,
            &json!({"token": tok}),
        ))
        .await
        .json();
    let r = v
        .call(post_json(
            "/v1/detokenize",
            &v.account.restricted_key,
            &json!({"token": card["id"]}),
        ))
        .await;
    assert_eq!(r.json()["number"], VISA);
    let events = v.get("/v1/events", &v.account.secret_key).await.json();
    let detok = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "card.detokenized")
        .count();
    assert_eq!(detok, 2);
    assert!(!events.to_string().contains(VISA));
}

#[tokio::test]
async fn a_key_whose_first_request_still_runs_gets_409_until_its_lock_lapses() {
    use cardseal_vault::crypto::sha256;
    use cardseal_vault::store::{self, Claim};

    let v = TestVault::new().await;
    let tok = token(&v).await;
    let body = json!({"amount": 1000, "currency": "eur", "source": tok});
    // The first request has claimed the key and not finished (as a request in flight, or one
    // whose process died, leaves it).
    let request = format!("POST /v1/charges\n{body}");
    let (account, now) = (v.account.account.clone(), v.now());
    let principal = v
        .state
        .authenticate(&v.account.secret_key)
        .await
        .unwrap()
        .unwrap();
    let request_hash = principal
        .keys
        .keyed_digest("idempotency-request", request.as_bytes());
    let key_hash = sha256(format!("{}\nk-flight", principal.key_ref).as_bytes());
    let claim = store::write(v.state.store(), move |tx| {
        // Idempotency keys are scoped to the API key that sent them.
        tx.claim_key(&account, &key_hash, &request_hash, now, 60)
    })
    .await
    .unwrap();
    assert_eq!(claim, Claim::Fresh);
    let sk = v.account.secret_key.clone();
    v.call(post_with_key("/v1/charges", &sk, &body, "k-flight"))
        .await
        .assert_error(409, "invalid_request_error", "idempotency_key_in_use");
    // A dead process's claim lapses: the retry then runs.
    v.clock.advance(61);
    let r = v
        .call(post_with_key("/v1/charges", &sk, &body, "k-flight"))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "succeeded");
}
