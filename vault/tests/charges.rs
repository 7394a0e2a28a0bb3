//! Charges as merchants expect them: Stripe's form encoding beside JSON, authorize and capture,
//! refunds (never more than captured, also with 32 at once), and Stripe-paginated lists; driven
//! through `app()` on SQLite, or PostgreSQL when `CARDSEAL_TEST_DATABASE_URL` is set. The
//! two-instance refund race is in `multi_instance.rs`.

#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use support::*;

const VISA: &str = "4242424242424242";

async fn token(v: &TestVault, number: &str) -> String {
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(number, "123") }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

fn post_form(path: &str, key: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("stripe-version", "2024-06-20")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn post(v: &TestVault, path: &str, body: Value) -> Reply {
    v.call(post_json(path, &v.account.secret_key, &body)).await
}

async fn form(v: &TestVault, path: &str, body: &str) -> Reply {
    v.call(post_form(path, &v.account.secret_key, body)).await
}

#[track_caller]
fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn charge(v: &TestVault, amount: i64, capture: bool) -> Value {
    let tok = token(v, VISA).await;
    ok(&post(
        v,
        "/v1/charges",
        json!({"amount": amount, "currency": "eur", "source": tok, "capture": capture}),
    )
    .await)
}

async fn count(v: &TestVault, table: &str) -> i64 {
    let path = match table {
        "charges" => "/v1/charges?limit=100",
        _ => "/v1/refunds?limit=100",
    };
    let r = v.get(path, &v.account.secret_key).await;
    ok(&r)["data"].as_array().unwrap().len() as i64
}

#[tokio::test]
async fn a_form_body_charges_like_json() {
    let v = TestVault::new().await;
    let tok = token(&v, VISA).await;
    // Brackets as stripe-python sends them (percent-encoded) and as stripe-node does (plain).
    let r = form(
        &v,
        "/v1/charges",
        &format!("amount=1999&currency=eur&source={tok}&capture=true&expand%5B%5D=refunds"),
    )
    .await;
    let c = ok(&r);
    assert_eq!(
        (c["amount"].as_i64(), c["captured"].as_bool()),
        (Some(1999), Some(true))
    );
    assert!(
        r.header("request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
    let r = form(
        &v,
        "/v1/refunds",
        &format!(
            "charge={}&amount=500&metadata[order]=A-1&reason=requested_by_customer",
            c["id"].as_str().unwrap()
        ),
    )
    .await;
    let re = ok(&r);
    assert_eq!(re["amount"], 500);
    assert_eq!(re["metadata"], json!({"order": "A-1"}));
}

#[tokio::test]
async fn a_form_body_is_checked_like_json() {
    let v = TestVault::new().await;
    let tok = token(&v, VISA).await;
    for (body, code, param) in [
        (
            format!("amount=0&currency=eur&source={tok}"),
            "parameter_invalid",
            Some("amount"),
        ),
        (
            format!("amount=-5&currency=eur&source={tok}"),
            "parameter_invalid",
            Some("amount"),
        ),
        (
            format!("amount=10.5&currency=eur&source={tok}"),
            "parameter_invalid",
            Some("amount"),
        ),
        (
            format!("amount=ten&currency=eur&source={tok}"),
            "parameter_invalid",
            Some("amount"),
        ),
        (
            format!("currency=eur&source={tok}"),
            "parameter_missing",
            Some("amount"),
        ),
        (
            format!("amount=100&currency=eur&source={tok}&capture=maybe"),
            "parameter_invalid",
            Some("capture"),
        ),
        // Malformed brackets, a repeated name, a scalar sent as an object.
        (
            format!("amount=100&currency=eur&source={tok}&metadata[order=1"),
            "invalid_body",
            None,
        ),
        (
            format!("amount=100&currency=eur&source={tok}&metadata]order[=1"),
            "invalid_body",
            None,
        ),
        (
            format!("amount=100&currency=eur&source={tok}&meta[a]x=1"),
            "invalid_body",
            None,
        ),
        (
            format!("amount=100&currency=eur&source={tok}&a[b][c][d][e][f][g]=1"),
            "invalid_body",
            None,
        ),
        (
            format!("amount=100&currency=eur&currency=usd&source={tok}"),
            "invalid_body",
            None,
        ),
        (
            format!("amount=100&amount=200&currency=eur&source={tok}"),
            "parameter_invalid",
            Some("amount"),
        ),
        (
            format!("amount=100&currency[x]=eur&source={tok}"),
            "invalid_body",
            None,
        ),
    ] {
        let r = form(&v, "/v1/charges", &body).await;
        r.assert_error(400, "invalid_request_error", code);
        assert_eq!(r.json()["error"]["param"].as_str(), param, "{body}");
        // Nothing echoed.
        assert!(!String::from_utf8_lossy(&r.body).contains(&tok), "{body}");
    }
    // Nothing was charged, and the token is still unused.
    assert_eq!(count(&v, "charges").await, 0);
    ok(&form(
        &v,
        "/v1/charges",
        &format!("amount=100&currency=eur&source={tok}"),
    )
    .await);
}

#[tokio::test]
async fn a_form_body_reaches_every_route() {
    let v = TestVault::new().await;
    // A route of another module: saving a card, with metadata in brackets.
    let tok = token(&v, VISA).await;
    let r = form(
        &v,
        "/v1/cards",
        &format!("token={tok}&customer=cus_1&metadata%5Bplan%5D=gold"),
    )
    .await;
    assert_eq!(ok(&r)["metadata"], json!({"plan": "gold"}));
    let r = form(&v, "/v1/cards", "token=tok_x&metadata[4242424242424242]=x").await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
}

#[tokio::test]
async fn an_authorization_is_captured_once_in_part() {
    let v = TestVault::new().await;
    let c = charge(&v, 5000, false).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        (c["captured"].as_bool(), c["amount_captured"].as_i64()),
        (Some(false), Some(0))
    );
    assert_eq!(c["status"], "succeeded");
    let expiry = c["capture_before"].as_i64().unwrap();
    assert_eq!(expiry, v.now() + 7 * 24 * 3600);
    // An authorization cannot be refunded before it is captured.
    post(&v, "/v1/refunds", json!({"charge": id}))
        .await
        .assert_error(400, "invalid_request_error", "charge_not_captured");
    // More than authorized, 0, a non-integer.
    for amount in [json!(5001), json!(0), json!(1.5), json!("x"), json!(-1)] {
        let r = post(
            &v,
            &format!("/v1/charges/{id}/capture"),
            json!({"amount": amount}),
        )
        .await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.json()["error"]["param"], "amount");
    }
    let c = ok(&form(&v, &format!("/v1/charges/{id}/capture"), "amount=3000").await);
    assert_eq!(
        (
            c["captured"].as_bool(),
            c["amount_captured"].as_i64(),
            c["amount"].as_i64()
        ),
        (Some(true), Some(3000), Some(5000))
    );
    assert!(c["capture_before"].is_null());
    post(&v, &format!("/v1/charges/{id}/capture"), json!({}))
        .await
        .assert_error(400, "invalid_request_error", "charge_already_captured");
    // What was captured is what can be refunded.
    post(&v, "/v1/refunds", json!({"charge": id, "amount": 3001}))
        .await
        .assert_error(400, "invalid_request_error", "parameter_invalid");
    let read = ok(&v
        .get(&format!("/v1/charges/{id}"), &v.account.secret_key)
        .await);
    assert_eq!(read, c);
}

#[tokio::test]
async fn an_empty_capture_takes_the_whole_authorization() {
    let v = TestVault::new().await;
    let c = charge(&v, 700, false).await;
    let id = c["id"].as_str().unwrap();
    // As the Stripe libraries send it: a form content type and no body.
    let c = ok(&form(&v, &format!("/v1/charges/{id}/capture"), "").await);
    assert_eq!(c["amount_captured"], 700);
}

#[tokio::test]
async fn an_expired_authorization_cannot_be_captured() {
    let v = TestVault::with_config(cardseal_vault::config::Config {
        authorization_secs: 3600,
        ..unlimited()
    })
    .await;
    let c = charge(&v, 700, false).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["capture_before"].as_i64(), Some(v.now() + 3600));
    v.clock.advance(3600);
    post(&v, &format!("/v1/charges/{id}/capture"), json!({}))
        .await
        .assert_error(400, "invalid_request_error", "charge_expired_for_capture");
    let read = ok(&v
        .get(&format!("/v1/charges/{id}"), &v.account.secret_key)
        .await);
    assert_eq!(read["captured"], false);
}

#[tokio::test]
async fn a_failed_or_unknown_charge_is_neither_captured_nor_refunded() {
    let v = TestVault::new().await;
    let tok = token(&v, "4000000000000002").await;
    let c = ok(&post(
        &v,
        "/v1/charges",
        json!({"amount": 100, "currency": "eur", "source": tok}),
    )
    .await);
    assert_eq!(
        (c["status"].as_str(), c["captured"].as_bool()),
        (Some("failed"), Some(false))
    );
    let id = c["id"].as_str().unwrap();
    post(&v, "/v1/refunds", json!({"charge": id}))
        .await
        .assert_error(400, "invalid_request_error", "charge_not_captured");
    post(&v, &format!("/v1/charges/{id}/capture"), json!({}))
        .await
        .assert_error(400, "invalid_request_error", "charge_not_captured");
    let unknown = "ch_000000000000000000000000";
    let r = post(&v, "/v1/refunds", json!({"charge": unknown})).await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    assert_eq!(r.json()["error"]["param"], "charge");
    post(&v, &format!("/v1/charges/{unknown}/capture"), json!({}))
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    // Another account's charge is unknown too.
    let mine = charge(&v, 100, true).await;
    let r = v
        .call(post_json(
            "/v1/refunds",
            &v.other.secret_key,
            &json!({"charge": mine["id"]}),
        ))
        .await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    assert_eq!(count(&v, "refunds").await, 0);
}

#[tokio::test]
async fn refunds_add_up_to_at_most_the_capture() {
    let v = TestVault::new().await;
    let c = charge(&v, 1000, true).await;
    let id = c["id"].as_str().unwrap();
    let r1 = ok(&post(
        &v,
        "/v1/refunds",
        json!({"charge": id, "amount": 300, "reason": "duplicate"}),
    )
    .await);
    assert_eq!(
        (
            r1["object"].as_str(),
            r1["charge"].as_str(),
            r1["status"].as_str(),
            r1["currency"].as_str()
        ),
        (Some("refund"), Some(id), Some("succeeded"), Some("eur"))
    );
    for (body, param) in [
        (json!({"charge": id, "amount": 0}), "amount"),
        (json!({"charge": id, "amount": -1}), "amount"),
        (json!({"charge": id, "amount": 2.5}), "amount"),
        (json!({"charge": id, "amount": 701}), "amount"),
        (json!({"charge": id, "reason": "because"}), "reason"),
        (
            json!({"charge": id, "reason": "4242424242424242"}),
            "reason",
        ),
        (
            json!({"charge": id, "metadata": {"note": "card 4242 4242 4242 4242"}}),
            "metadata",
        ),
        (json!({"charge": id, "metadata": {"n": 5}}), "metadata"),
    ] {
        let r = post(&v, "/v1/refunds", body.clone()).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.json()["error"]["param"], param, "{body}");
        assert!(!String::from_utf8_lossy(&r.body).contains("4242"), "{body}");
    }
    post(&v, "/v1/refunds", json!({})).await.assert_error(
        400,
        "invalid_request_error",
        "parameter_missing",
    );
    // The rest, by default.
    let r2 = ok(&post(&v, "/v1/refunds", json!({"charge": id})).await);
    assert_eq!(r2["amount"], 700);
    post(&v, "/v1/refunds", json!({"charge": id, "amount": 1}))
        .await
        .assert_error(400, "invalid_request_error", "charge_already_refunded");
    let c = ok(&v
        .get(&format!("/v1/charges/{id}"), &v.account.secret_key)
        .await);
    assert_eq!(
        (c["amount_refunded"].as_i64(), c["refunded"].as_bool()),
        (Some(1000), Some(true))
    );
    let embedded: Vec<_> = c["refunds"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(embedded, [r2["id"].clone(), r1["id"].clone()]);
    let got = ok(&v
        .get(
            &format!("/v1/refunds/{}", r1["id"].as_str().unwrap()),
            &v.account.secret_key,
        )
        .await);
    assert_eq!(got, r1);
    v.get(
        "/v1/refunds/re_000000000000000000000000",
        &v.account.secret_key,
    )
    .await
    .assert_error(404, "invalid_request_error", "resource_missing");
    let list = ok(&v
        .get(&format!("/v1/refunds?charge={id}"), &v.account.secret_key)
        .await);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["url"], "/v1/refunds");
    // Each step is in the keyed audit chain.
    let events = ok(&v.get("/v1/events?limit=100", &v.account.secret_key).await);
    let types: Vec<_> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "charge.refunded").count(),
        2,
        "{types:?}"
    );
    let chain = cardseal_vault::events::verify(v.state.store(), v.state.master()).await;
    assert!(matches!(chain, Ok(Ok(n)) if n > 0), "{chain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_refunds_at_once_never_exceed_the_capture() {
    let v = Arc::new(TestVault::new().await);
    for round in 0..3 {
        let c = charge(&v, 1000, true).await;
        let id = c["id"].as_str().unwrap().to_owned();
        // 32 refunds of 100 on 1000 captured: exactly 10 succeed.
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let v = Arc::clone(&v);
                let id = id.clone();
                tokio::spawn(async move {
                    post(&v, "/v1/refunds", json!({"charge": id, "amount": 100})).await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 200 {
                wins += 1;
            } else {
                r.assert_error(400, "invalid_request_error", "charge_already_refunded");
            }
        }
        assert_eq!(wins, 10, "round {round}");
        let c = ok(&v
            .get(&format!("/v1/charges/{id}"), &v.account.secret_key)
            .await);
        assert_eq!(c["amount_refunded"], 1000, "round {round}");
        let list = ok(&v
            .get(
                &format!("/v1/refunds?charge={id}&limit=100"),
                &v.account.secret_key,
            )
            .await);
        assert_eq!(list["data"].as_array().unwrap().len(), 10);
    }
}

async fn page(v: &TestVault, q: String) -> Value {
    ok(&v
        .get(&format!("/v1/charges?{q}"), &v.account.secret_key)
        .await)
}

#[tokio::test]
async fn lists_page_newest_first_and_hold_still_while_charges_arrive() {
    let v = TestVault::new().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        if i == 4 {
            v.clock.advance(100);
        }
        ids.push(
            charge(&v, 100 + i, true).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse(); // newest first
    let sk = &v.account.secret_key;
    let ids_of = |l: &Value| -> Vec<String> {
        l["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = page(&v, String::new()).await;
    assert_eq!(
        (all["object"].as_str(), all["url"].as_str()),
        (Some("list"), Some("/v1/charges"))
    );
    assert_eq!(
        (ids_of(&all), all["has_more"].as_bool()),
        (ids.clone(), Some(false))
    );
    let first = page(&v, "limit=3".into()).await;
    assert_eq!(
        (ids_of(&first), first["has_more"].as_bool()),
        (ids[..3].to_vec(), Some(true))
    );
    // New charges arrive between pages: the next page is still the one after the cursor.
    for _ in 0..3 {
        charge(&v, 1, true).await;
    }
    let second = page(&v, format!("limit=3&starting_after={}", ids[2])).await;
    assert_eq!(
        (ids_of(&second), second["has_more"].as_bool()),
        (ids[3..6].to_vec(), Some(true))
    );
    let last = page(&v, format!("limit=3&starting_after={}", ids[5])).await;
    assert_eq!(
        (ids_of(&last), last["has_more"].as_bool()),
        (ids[6..].to_vec(), Some(false))
    );
    let back = page(&v, format!("limit=2&ending_before={}", ids[5])).await;
    assert_eq!(
        (ids_of(&back), back["has_more"].as_bool()),
        (ids[3..5].to_vec(), Some(true))
    );
    // created: the first four were made 100 seconds before the last three.
    let t = v.now();
    let recent = page(&v, format!("created%5Bgte%5D={}", t)).await;
    assert_eq!(
        ids_of(&recent).len(),
        6,
        "the three later ones and the three new ones"
    );
    let older = page(&v, format!("created[lt]={}&limit=100", t)).await;
    assert_eq!(ids_of(&older), ids[3..].to_vec());
    for (q, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=1.5", "limit"),
        ("created[gte]=soon", "created[gte]"),
        (
            "starting_after=re_000000000000000000000000",
            "starting_after",
        ),
    ] {
        let r = v.get(&format!("/v1/charges?{q}"), sk).await;
        r.assert_error(400, "invalid_request_error", "parameter_invalid");
        assert_eq!(r.json()["error"]["param"], param, "{q}");
    }
    // Another account sees none of them.
    let theirs = ok(&v.get("/v1/charges", &v.other.secret_key).await);
    assert_eq!(theirs["data"], json!([]));
}
