//! Refunds across two vault processes on one PostgreSQL database: of many concurrent refunds
//! of one charge, spread over both, never more than was captured succeeds, and the audit chain
//! still verifies. Runs when `CARDSEAL_TEST_DATABASE_URL` is set (`npm test` sets it).

#[path = "support/helpers.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::{self, VaultKey};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_on_two_instances_never_exceed_the_capture() {
    if !on_postgres() {
        eprintln!("skipped: set {TEST_DATABASE_URL} to run the two-instance refund test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--demo", "--key-rate", "0", "--ip-rate", "0"];
    let a = spawn_server(data, &args);
    let b = spawn_server(data, &args);
    let pk = key_from(&a.stdout, "publishable_key");
    let sk = key_from(&a.stdout, "secret_key");
    let jwks = http(
        a.addr,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let key = VaultKey::parse(std::str::from_utf8(&jwks.body).unwrap()).unwrap();
    for round in 0..3 {
        let sealed = jwe::seal_payload(
            &key,
            &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
        )
        .unwrap();
        let tok = http(
            a.addr,
            post_json("/v1/tokens", &pk, &json!({ "card": sealed })),
        )
        .await;
        let tok = tok.json()["id"].as_str().unwrap().to_owned();
        // Authorized on one instance, captured on the other.
        let c = http(
            a.addr,
            post_json(
                "/v1/charges",
                &sk,
                &json!({"amount": 1000, "currency": "eur", "source": tok, "capture": false}),
            ),
        )
        .await;
        assert_eq!(c.status, 200, "{}", String::from_utf8_lossy(&c.body));
        let id = c.json()["id"].as_str().unwrap().to_owned();
        let cap = http(
            b.addr,
            post_json(
                &format!("/v1/charges/{id}/capture"),
                &sk,
                &json!({"amount": 800}),
            ),
        )
        .await;
        assert_eq!(cap.json()["amount_captured"], 800);
        // 32 refunds of 100 of 800 captured, half on each instance: exactly 8 succeed.
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let addr = if i % 2 == 0 { a.addr } else { b.addr };
                let req = post_json("/v1/refunds", &sk, &json!({"charge": id, "amount": 100}));
                tokio::spawn(async move { http(addr, req).await })
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
        assert_eq!(wins, 8, "round {round}");
        let c = http(b.addr, {
            Request::get(format!("/v1/charges/{id}"))
                .header("authorization", format!("Bearer {sk}"))
                .body(Body::empty())
                .unwrap()
        })
        .await;
        assert_eq!(c.json()["amount_refunded"], 800, "round {round}");
        assert_eq!(
            db_number(
                dir.path(),
                &format!("SELECT count(*) FROM refunds WHERE charge_id = '{id}'")
            ),
            8
        );
    }
    drop((a, b));
    let out = vault_command(data)
        .args(["events", "verify", "--data-dir", data])
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
