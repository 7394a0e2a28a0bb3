//! BIN enrichment from the shared binlist table, and the raw-card API off and on.

#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;

use cardseal_vault::bins::BinTable;
use serde_json::{Value, json};
use support::*;

/// The shared binlist table (`CARDSEAL_BINLIST`, else `../shared/data/binlist/ranges.csv`
/// beside the repository); it is never copied into the repository. `None` (and the tests that
/// need it say so and pass) in a checkout without it.
fn shared_table() -> Option<Arc<BinTable>> {
    let path = std::env::var_os("CARDSEAL_BINLIST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/binlist/ranges.csv")
        });
    if !path.exists() {
        eprintln!(
            "skipped: no BIN table at {} (set CARDSEAL_BINLIST)",
            path.display()
        );
        return None;
    }
    Some(Arc::new(BinTable::load(&path).unwrap()))
}

async fn vault(raw: bool, bins: Option<Arc<BinTable>>) -> TestVault {
    TestVault::with_config(cardseal_vault::config::Config {
        allow_raw_card_api: raw,
        bin_table: bins,
        ..unlimited()
    })
    .await
}

#[tokio::test]
async fn cards_and_tokens_carry_issuer_metadata_from_the_bin_table() {
    let Some(table) = shared_table() else { return };
    assert_eq!(table.len(), 5805);
    let v = vault(false, Some(table)).await;
    // 400390 is Bank of America (US, credit) in the table.
    let number = luhn_number("400390", 16, 7);
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(&number, "123") }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["card"]["funding"], "credit");
    assert_eq!(r.json()["card"]["country"], "US");
    let tok = r.json()["id"].as_str().unwrap().to_owned();
    let card = v
        .call(post_json(
            "/v1/cards",
            &v.account.secret_key,
            &json!({"token": tok}),
        ))
        .await
        .json();
    assert_eq!(card["issuer"], "BANK OF AMERICA, N.A. (USA)");
    assert_eq!(card["country"], "US");
    assert_eq!(card["funding"], "credit");
    assert_eq!(card["currency"], "usd");
    let charge = v
        .call(post_json(
            "/v1/charges",
            &v.account.secret_key,
            &json!({"amount": 100, "currency": "usd", "source": card["id"]}),
        ))
        .await
        .json();
    assert_eq!(charge["card"]["country"], "US");

    // A BIN the table does not know: nulls.
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card("6011111111111117", "123") }),
        )
        .await;
    assert_eq!(r.json()["card"]["country"], Value::Null);
}

#[tokio::test]
async fn without_a_table_issuer_fields_are_null() {
    let v = vault(false, None).await;
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(&luhn_number("400390", 16, 7), "123") }),
        )
        .await;
    assert_eq!(r.json()["card"]["funding"], Value::Null);
}

async fn charge(v: &TestVault, id: &str) -> Reply {
    v.call(post_json(
        "/v1/charges",
        &v.account.secret_key,
        &json!({"amount": 100, "currency": "gbp", "source": id}),
    ))
    .await
}

fn raw_body(v: &TestVault, number: &str) -> Value {
    json!({"card_number": number, "cvv": "123", "expiry_month": 12, "expiry_year": "2030",
           "organisation": v.account.account})
}

#[tokio::test]
async fn the_raw_card_api_is_off_by_default() {
    let v = vault(false, None).await;
    let r = v
        .call(post_json(
            "/v1/card",
            &v.account.secret_key,
            &raw_body(&v, "4242424242424242"),
        ))
        .await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    let r = v
        .call(post_json(
            "/v1/card/card_0000000000000000000000",
            &v.account.secret_key,
            &json!({"cvv": "123", "organisation": v.account.account}),
        ))
        .await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
    // Without a key too: the URL does not exist.
    let r = v
        .call(
            axum::http::Request::post("/v1/card")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    raw_body(&v, "4242424242424242").to_string(),
                ))
                .unwrap(),
        )
        .await;
    r.assert_error(404, "invalid_request_error", "resource_missing");
}

#[tokio::test]
async fn the_raw_card_api_saves_cards_when_enabled() {
    let table = shared_table();
    let enriched = table.is_some();
    let v = vault(true, table).await;
    let sk = v.account.secret_key.clone();
    let number = luhn_number("402396", 16, 3);
    let r = v
        .call(post_json("/v1/card", &sk, &raw_body(&v, &number)))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let c = r.json();
    let id = c["_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("card_"));
    if enriched {
        assert_eq!(c["issuer"], "VANQUIS");
        assert_eq!(c["issuer_country"], "GB");
        assert_eq!(c["currency"], "gbp");
        assert_eq!(c["type"], "credit");
    }
    assert!(!r.body.windows(number.len()).any(|w| w == number.as_bytes()));

    // The saved card is an ordinary card: its CVV pays one charge.
    let first = charge(&v, &id).await.json();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["card"]["cvc_check"], "pass");
    assert_eq!(
        charge(&v, &id).await.json()["card"]["cvc_check"],
        Value::Null
    );
    // Re-added.
    let r = v
        .call(post_json(
            &format!("/v1/card/{id}"),
            &sk,
            &json!({"cvv": "456", "organisation": v.account.account}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["cvv_available_until"], v.now() + 3600);
    assert_eq!(charge(&v, &id).await.json()["card"]["cvc_check"], "pass");

    // With an Idempotency-Key, a retry is the same card.
    let keyed = || {
        let mut req = post_json("/v1/card", &sk, &raw_body(&v, &number));
        req.headers_mut()
            .insert("idempotency-key", "raw-1".parse().unwrap());
        req
    };
    let first = v.call(keyed()).await;
    let again = v.call(keyed()).await;
    assert_eq!(first.status, 200);
    assert_eq!(again.body, first.body);
    assert_ne!(first.json()["_id"], c["_id"]);

    // Validated by the cardseal core.
    let r = v
        .call(post_json(
            "/v1/card",
            &sk,
            &raw_body(&v, "4242424242424241"),
        ))
        .await;
    r.assert_error(402, "card_error", "invalid_number");
    let mut past = raw_body(&v, &number);
    past["expiry_year"] = json!(2020);
    v.call(post_json("/v1/card", &sk, &past))
        .await
        .assert_error(402, "card_error", "invalid_expiry_year_past");
    // Another organisation than the key's: 403.
    let mut other = raw_body(&v, &number);
    other["organisation"] = json!(v.other.account);
    v.call(post_json("/v1/card", &sk, &other))
        .await
        .assert_error(403, "permission_error", "organisation_mismatch");
    v.call(post_json(
        &format!("/v1/card/{id}"),
        &v.other.secret_key,
        &json!({"cvv": "456", "organisation": v.other.account}),
    ))
    .await
    .assert_error(404, "invalid_request_error", "resource_missing");
    // Publishable keys never reach it.
    v.call(post_json(
        "/v1/card",
        &v.account.publishable_key,
        &raw_body(&v, &number),
    ))
    .await
    .assert_error(403, "permission_error", "secret_key_required");
}
