//! One token, many concurrent uses over real sockets: exactly one wins, every other request is
//! `token_already_used`.

#[path = "support/helpers.rs"]
mod support;

use serde_json::json;
use support::*;

/// Rounds of 64 concurrent requests. The issue asks for 100; that is the default here too,
/// and `CARDSEAL_RACE_ROUNDS` can change it.
fn rounds() -> usize {
    std::env::var("CARDSEAL_RACE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_is_used_once_under_64_concurrent_requests() {
    let v = TestVault::new().await;
    let addr = serve(&v).await;
    let sk = v.account.secret_key.clone();
    for round in 0..rounds() {
        let r = v
            .create_token(
                &v.account.publishable_key,
                &json!({ "card": v.seal_card("4242424242424242", "123") }),
            )
            .await;
        let tok = r.json()["id"].as_str().unwrap().to_owned();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (sk, tok) = (sk.clone(), tok.clone());
                tokio::spawn(async move {
                    let req = if i % 2 == 0 {
                        post_json(
                            "/v1/charges",
                            &sk,
                            &json!({"amount": 100, "currency": "eur", "source": tok}),
                        )
                    } else {
                        post_json("/v1/cards", &sk, &json!({"token": tok}))
                    };
                    http(addr, req).await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 200 {
                wins += 1;
            } else {
                r.assert_error(400, "invalid_request_error", "token_already_used");
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    // Every win left exactly one object behind.
    let objects = db_number(
        v.dir.path(),
        "SELECT (SELECT count(*) FROM charges) + (SELECT count(*) FROM cards)",
    );
    assert_eq!(usize::try_from(objects).unwrap(), rounds());
}
