//! The leaks a security review found, each tried as the attacker would: with a copy of the
//! data directory and the master key, with only the publishable key, or with another key of
//! the same account.

#[path = "support/helpers.rs"]
mod support;

#[path = "support/fake_processor.rs"]
mod fake_processor;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use std::time::Duration;

use cardseal_vault::config::{Config, RateLimit};
use cardseal_vault::crypto::{AccountKeys, BlobKey, WrappedAccountKeys};
use cardseal_vault::forward::{ForwardSettings, set_forward_hosts};
use serde_json::{Value, json};
use support::*;

async fn post(v: &TestVault, path: &str, key: &str, body: Value) -> Reply {
    v.call(post_json(path, key, &body)).await
}

async fn post_with_key(v: &TestVault, path: &str, key: &str, idem: &str, body: &str) -> Reply {
    v.call(
        Request::post(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .header("idempotency-key", idem)
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

async fn token(v: &TestVault, number: &str, cvc: &str) -> String {
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(number, cvc) }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn cvc_token(v: &TestVault, cvc: &str) -> String {
    let cvc = cardseal::card::Cvc::parse(cvc, None).unwrap();
    let sealed = cardseal::jwe::seal_cvc(&v.vault_key(), &cvc, v.now()).unwrap();
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "cvc": sealed }))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn charge(v: &TestVault, source: &str) -> Reply {
    post(
        v,
        "/v1/charges",
        &v.account.secret_key,
        json!({"amount": 1999, "currency": "eur", "source": source}),
    )
    .await
}

async fn delete_card(v: &TestVault, card: &str) {
    let r = v
        .call(
            Request::delete(format!("/v1/cards/{card}"))
                .header("authorization", format!("Bearer {}", v.account.secret_key))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

async fn save(v: &TestVault, token: &str) -> String {
    let r = post(
        v,
        "/v1/cards",
        &v.account.secret_key,
        json!({"token": token}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

/// A saved card's id, account, wrapped key and sealed data.
type CardRow = (String, String, Vec<u8>, Option<Vec<u8>>);

fn card_aad(account: &str, card: &str, what: &str) -> Vec<u8> {
    format!("cardseal-vault/v1/card-{what}/{account}/{card}").into_bytes()
}

/// Everything in a database file that the master key opens: token data, saved cards and
/// their CVCs, each as text. What an attacker with a copy of the data directory can read.
fn decrypt_everything(db: &std::path::Path, v: &TestVault) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut keys = HashMap::new();
    let mut q = c
        .prepare("SELECT id, data_key, fingerprint_key FROM accounts")
        .unwrap();
    for row in q
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .unwrap()
    {
        let (id, data_key, fingerprint_key) = row.unwrap();
        let k = AccountKeys::unwrap(
            v.state.master(),
            &id,
            &WrappedAccountKeys {
                data_key,
                fingerprint_key,
            },
        )
        .unwrap();
        keys.insert(id, k);
    }
    let mut out = Vec::new();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut q = c
        .prepare("SELECT id, account_id, sealed FROM tokens WHERE sealed IS NOT NULL")
        .unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, acct, blob) in rows {
        let plain = keys[&acct]
            .open_record(&acct, "token", &id, &blob)
            .expect("a stored token blob opens with the master key");
        out.push(text(&plain));
    }
    let mut card_keys = HashMap::new();
    let mut q = c
        .prepare("SELECT id, account_id, card_key, sealed FROM cards WHERE card_key IS NOT NULL")
        .unwrap();
    let rows: Vec<CardRow> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, acct, wrapped, sealed) in rows {
        let raw = keys[&acct]
            .open_record(&acct, "card-key", &id, &wrapped)
            .unwrap();
        let key = BlobKey::new(raw.as_slice().try_into().unwrap());
        if let Some(sealed) = sealed {
            out.push(text(
                &key.open(&card_aad(&acct, &id, "data"), &sealed).unwrap(),
            ));
        }
        card_keys.insert(id, key);
    }
    let mut q = c
        .prepare("SELECT card_id, account_id, sealed FROM card_cvcs")
        .unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (card, acct, blob) in rows {
        // A CVC whose card key is gone can never be opened: that is the deletion.
        if let Some(key) = card_keys.get(&card) {
            out.push(text(
                &key.open(&card_aad(&acct, &card, "cvc"), &blob).unwrap(),
            ));
        }
    }
    out
}

/// The sealed bytes of a row, read from the live database.
fn blob(v: &TestVault, sql: &str, id: &str) -> Vec<u8> {
    let c = rusqlite::Connection::open(v.sqlite.as_ref().unwrap().path()).unwrap();
    c.query_row(sql, [id], |r| r.get(0)).unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn used_tokens_deleted_cards_and_used_cvcs_leave_nothing_that_decrypts() {
    if on_postgres() {
        // PostgreSQL keeps an updated row's old version until VACUUM: see vault/README.md.
        return sqlite_only("no destroyed ciphertext left in the database files");
    }
    let processor = fake_processor::fake().await;
    let v = TestVault::with_config(Config {
        allow_raw_card_api: true,
        forward: ForwardSettings::new(Duration::from_secs(5))
            .with_allow_private(true)
            .with_ca_pem(processor.ca_pem.as_bytes())
            .unwrap(),
        ..unlimited()
    })
    .await;
    set_forward_hosts(
        v.state.store(),
        &v.account.account,
        &[format!("localhost:{}", processor.port)],
    )
    .await
    .unwrap();
    let sk = v.account.secret_key.clone();
    let charged = luhn_number("424242", 16, 1);
    let forwarded = luhn_number("222300", 16, 6);
    let saved = luhn_number("555555", 16, 2);
    let deleted = luhn_number("378282", 15, 3);
    let raw_kept = luhn_number("601111", 16, 4);
    let raw_deleted = luhn_number("400000", 16, 5);
    // CVCs an attacker must never find: used by a charge, or on a deleted card.
    let gone_cvcs = ["731", "842", "953", "1644", "275", "386", "497"];

    // A token charged directly.
    let t1 = token(&v, &charged, gone_cvcs[0]).await;
    let t1_blob = blob(&v, "SELECT sealed FROM tokens WHERE id = ?1", &t1);
    assert_eq!(charge(&v, &t1).await.json()["status"], "succeeded");

    // A token saved as a card, charged with its CVC, given a new CVC by a CVC token and
    // charged again, then deleted.
    let t2 = token(&v, &saved, gone_cvcs[1]).await;
    let t2_blob = blob(&v, "SELECT sealed FROM tokens WHERE id = ?1", &t2);
    let card2 = save(&v, &t2).await;
    assert_eq!(charge(&v, &card2).await.json()["status"], "succeeded");
    let c2 = cvc_token(&v, gone_cvcs[2]).await;
    let c2_blob = blob(&v, "SELECT sealed FROM tokens WHERE id = ?1", &c2);
    let r = post(
        &v,
        &format!("/v1/cards/{card2}/cvc"),
        &sk,
        json!({ "token": c2 }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cvc2_blob = blob(
        &v,
        "SELECT sealed FROM card_cvcs WHERE card_id = ?1",
        &card2,
    );
    assert_eq!(charge(&v, &card2).await.json()["status"], "succeeded");
    let card2_blob = blob(&v, "SELECT sealed FROM cards WHERE id = ?1", &card2);
    delete_card(&v, &card2).await;

    // A token saved as a card and deleted with its CVC still kept (amex: 4 digits).
    let t3 = token(&v, &deleted, gone_cvcs[3]).await;
    let card3 = save(&v, &t3).await;
    delete_card(&v, &card3).await;

    // The raw-card API: a card whose CVV a charge uses, and one deleted.
    let raw = |number: &str, cvv: &str| {
        json!({"card_number": number, "cvv": cvv, "expiry_month": 12, "expiry_year": "2030",
               "organisation": v.account.account})
    };
    let r = post(&v, "/v1/card", &sk, raw(&raw_kept, gone_cvcs[4])).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let card4 = r.json()["_id"].as_str().unwrap().to_owned();
    assert_eq!(charge(&v, &card4).await.json()["status"], "succeeded");
    let r = post(&v, "/v1/card", &sk, raw(&raw_deleted, gone_cvcs[5])).await;
    let card5 = r.json()["_id"].as_str().unwrap().to_owned();
    delete_card(&v, &card5).await;

    // A token forwarded to a processor, its CVC filled in.
    let t6 = token(&v, &forwarded, gone_cvcs[6]).await;
    let t6_blob = blob(&v, "SELECT sealed FROM tokens WHERE id = ?1", &t6);
    let r = post(
        &v,
        "/v1/forward",
        &sk,
        json!({
            "source": t6,
            "destination": processor.url("/v1/payments"),
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": "{\"pan\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\"}",
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(processor.count(), 1, "the processor got the card");

    // The attacker copies the data directory (after the vault's periodic checkpoint) and
    // opens every blob with the master key.
    let sqlite = v.sqlite.as_ref().unwrap();
    sqlite.checkpoint().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(v.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        names.push(path.file_name().unwrap().to_owned());
        let to = copy.path().join(path.file_name().unwrap());
        std::fs::copy(&path, &to).unwrap();
        files.push(std::fs::read(&to).unwrap());
    }
    let db = copy.path().join(sqlite.path().file_name().unwrap());
    let opened = decrypt_everything(&db, &v);
    assert!(
        opened.iter().any(|t| t.contains(&raw_kept)),
        "the attack opens what is legitimately kept"
    );
    for text in &opened {
        for number in [&charged, &saved, &deleted, &raw_deleted, &forwarded] {
            assert!(!text.contains(number.as_str()), "a destroyed card opens");
        }
        for cvc in gone_cvcs {
            // A CVC blob holds the digits alone; token and card data hold JSON.
            let used = text == cvc || text.contains(&format!("\"{cvc}\""));
            assert!(!used, "a used or deleted CVC opens: {cvc}");
        }
    }
    // Not even the ciphertext is left anywhere in the files, WAL included.
    for (f, file) in files.iter().enumerate() {
        for (i, old) in [
            &t1_blob,
            &t2_blob,
            &c2_blob,
            &cvc2_blob,
            &card2_blob,
            &t6_blob,
        ]
        .iter()
        .enumerate()
        {
            assert!(
                !contains(file, old),
                "destroyed blob {i} is still on disk in file {f} of {names:?}"
            );
        }
    }
}

#[tokio::test]
async fn detokenize_refuses_a_used_or_expired_token() {
    let v = TestVault::new().await;
    let rk = v.account.restricted_key.clone();
    let fresh = token(&v, "4242424242424242", "123").await;
    let r = post(&v, "/v1/detokenize", &rk, json!({ "token": fresh })).await;
    assert_eq!(r.status, 200, "a fresh token detokenizes");
    assert_eq!(r.json()["number"], "4242424242424242");

    assert_eq!(charge(&v, &fresh).await.json()["status"], "succeeded");
    post(&v, "/v1/detokenize", &rk, json!({ "token": fresh }))
        .await
        .assert_error(400, "invalid_request_error", "token_already_used");

    // Saved, then the card deleted: neither the token nor the card gives the number.
    let t = token(&v, "5555555555554444", "123").await;
    let card = save(&v, &t).await;
    post(&v, "/v1/detokenize", &rk, json!({ "token": t }))
        .await
        .assert_error(400, "invalid_request_error", "token_already_used");
    delete_card(&v, &card).await;
    post(&v, "/v1/detokenize", &rk, json!({ "token": card }))
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");

    let late = token(&v, "4000056655665556", "123").await;
    v.clock.advance(16 * 60);
    post(&v, "/v1/detokenize", &rk, json!({ "token": late }))
        .await
        .assert_error(400, "invalid_request_error", "token_expired");
    charge(&v, &late)
        .await
        .assert_error(400, "invalid_request_error", "token_expired");
}

fn kept_keys(v: &TestVault) -> i64 {
    db_number(v.dir.path(), "SELECT count(*) FROM idempotency_keys")
}

const CHARGE: &str = r#"{"amount":1999,"currency":"eur","source":"SOURCE"}"#;

#[tokio::test]
async fn a_publishable_key_cannot_spoil_a_secret_keys_idempotency_key() {
    let v = TestVault::new().await;
    let pk = v.account.publishable_key.clone();
    let r = post_with_key(&v, "/v1/charges", &pk, "order-350641", "junk").await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(kept_keys(&v), 0, "a refused request is not kept");

    let tok = token(&v, "4242424242424242", "123").await;
    let body = CHARGE.replace("SOURCE", &tok);
    let r = post_with_key(
        &v,
        "/v1/charges",
        &v.account.secret_key,
        "order-350641",
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "succeeded");
    let again = post_with_key(
        &v,
        "/v1/charges",
        &v.account.secret_key,
        "order-350641",
        &body,
    )
    .await;
    assert_eq!(
        again.json()["id"],
        r.json()["id"],
        "the merchant's retry replays"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn another_key_of_the_account_cannot_read_a_kept_answer() {
    let v = TestVault::new().await;
    let tok = token(&v, "4242424242424242", "123").await;
    let body = CHARGE.replace("SOURCE", &tok);
    let r = post_with_key(&v, "/v1/charges", &v.account.secret_key, "order-7", &body).await;
    assert_eq!(r.status, 200);
    let charge_id = r.json()["id"].as_str().unwrap().to_owned();
    for key in [&v.account.publishable_key, &v.account.restricted_key] {
        let r = post_with_key(&v, "/v1/charges", key, "order-7", &body).await;
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.header("idempotent-replayed").is_none());
        assert!(!String::from_utf8_lossy(&r.body).contains(&charge_id));
    }
}

#[tokio::test]
async fn requests_refused_before_they_ran_keep_no_idempotency_key() {
    let v = TestVault::new().await;
    let sk = v.account.secret_key.clone();
    // 404 route, 400 unparsable body, 400 invalid parameter, 413 too large, 401 unknown key.
    let r = post_with_key(&v, "/v1/nothing", &sk, "k-404", "{}").await;
    assert_eq!(r.status, 404);
    let r = post_with_key(&v, "/v1/charges", &sk, "k-400", "{not json").await;
    assert_eq!(r.status, 400);
    let r = post_with_key(&v, "/v1/charges", &sk, "k-param", r#"{"amount":-1}"#).await;
    assert_eq!(r.status, 400);
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(9 * 1024));
    let r = post_with_key(&v, "/v1/charges", &sk, "k-413", &big).await;
    assert_eq!(r.status, 413);
    let r = post_with_key(&v, "/v1/charges", "sk_test_nosuchkey", "k-401", "{}").await;
    assert_eq!(r.status, 401);
    assert_eq!(kept_keys(&v), 0);
    // Each key is still free for the real request.
    for k in ["k-404", "k-400", "k-param", "k-413", "k-401"] {
        let tok = token(&v, "4242424242424242", "123").await;
        let r = post_with_key(&v, "/v1/charges", &sk, k, &CHARGE.replace("SOURCE", &tok)).await;
        assert_eq!(r.status, 200, "{k}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], "succeeded");
    }
    assert_eq!(kept_keys(&v), 5);
}

#[tokio::test]
async fn publishable_writes_count_against_the_rate_limits_and_are_not_stored() {
    let v = TestVault::with_config(Config {
        rate_per_key: RateLimit {
            per_second: 0.001,
            burst: 20.0,
        },
        ..unlimited()
    })
    .await;
    let pk = v.account.publishable_key.clone();
    let mut statuses = Vec::new();
    for i in 0..800 {
        let r = post_with_key(&v, "/v1/charges", &pk, &format!("fresh-{i}"), "junk").await;
        statuses.push(r.status.as_u16());
    }
    assert!(statuses[..20].iter().all(|s| *s == 403));
    assert!(statuses[20..].iter().all(|s| *s == 429));
    assert_eq!(kept_keys(&v), 0, "no refused request was kept");
    // The merchant's secret key has its own bucket.
    let tok_r = v
        .create_token(
            &v.account.secret_key,
            &json!({ "card": v.seal_card("4242424242424242", "123") }),
        )
        .await;
    assert_eq!(tok_r.status, 200);
}

#[tokio::test]
async fn the_ip_limit_holds_across_publishable_routes_and_groups_ipv6_by_64() {
    let v = TestVault::with_config(Config {
        rate_per_ip: RateLimit {
            per_second: 0.001,
            burst: 4.0,
        },
        trust_forwarded_for: true,
        ..unlimited()
    })
    .await;
    let from = |ip: &str, path: &str, key: &str, body: String| {
        Request::post(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(Body::from(body))
            .unwrap()
    };
    let card = || json!({ "card": v.seal_card("4242424242424242", "123") }).to_string();
    // Two tokens and two refused charges from one /64, with both accounts' publishable keys.
    let pk = v.account.publishable_key.clone();
    let other = v.other.publishable_key.clone();
    let r = v
        .call(from("2001:db8:1:2::1", "/v1/tokens", &pk, card()))
        .await;
    assert_eq!(r.status, 200);
    let r = v
        .call(from("2001:db8:1:2::2", "/v1/tokens", &other, card()))
        .await;
    assert_eq!(r.status, 200);
    let r = v
        .call(from(
            "2001:db8:1:2:ffff::9",
            "/v1/charges",
            &pk,
            "{}".into(),
        ))
        .await;
    assert_eq!(r.status, 403);
    let r = v
        .call(from("2001:db8:1:2::4", "/v1/cards", &other, "{}".into()))
        .await;
    assert_eq!(r.status, 403);
    let r = v
        .call(from("2001:db8:1:2::5", "/v1/tokens", &pk, card()))
        .await;
    r.assert_error(429, "rate_limit_error", "rate_limit");
    assert!(r.header("retry-after").is_some());
    // The next /64 is someone else.
    let r = v
        .call(from("2001:db8:1:3::1", "/v1/tokens", &pk, card()))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn one_card_tokenized_more_than_ten_times_in_ten_minutes_is_refused() {
    let v = TestVault::with_config(Config {
        rate_per_card: RateLimit::per_window(10, 600),
        ..unlimited()
    })
    .await;
    let pk = v.account.publishable_key.clone();
    let tokens_before =
        |v: &TestVault| -> i64 { db_number(v.dir.path(), "SELECT count(*) FROM tokens") };
    for month in 1..=10u8 {
        // Card testing: the same number with guessed expiries.
        let p = v.payload("4242424242424242", month, 2031, Some("123"));
        let r = v.create_token(&pk, &json!({ "card": v.seal(&p) })).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let stored = tokens_before(&v);
    let p = v.payload("4242424242424242", 11, 2031, Some("999"));
    let r = v.create_token(&pk, &json!({ "card": v.seal(&p) })).await;
    r.assert_error(429, "rate_limit_error", "rate_limit");
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        tokens_before(&v),
        stored,
        "nothing stored for the refused one"
    );
    // Through the secret key too, and another card is fine.
    let r = v
        .create_token(
            &v.account.secret_key,
            &json!({ "card": v.seal_card("4242424242424242", "123") }),
        )
        .await;
    assert_eq!(r.status, 429);
    let r = v
        .create_token(
            &pk,
            &json!({ "card": v.seal_card("5555555555554444", "123") }),
        )
        .await;
    assert_eq!(r.status, 200);
    // Another account's customers are not affected.
    let r = v
        .create_token(
            &v.other.publishable_key,
            &json!({ "card": v.seal_card("4242424242424242", "123") }),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_run_of_declines_slows_charges() {
    let v = TestVault::with_config(Config {
        rate_declines: RateLimit::per_window(20, 60),
        ..unlimited()
    })
    .await;
    for _ in 0..20 {
        let t = token(&v, "4000000000000002", "123").await;
        let r = charge(&v, &t).await;
        assert_eq!(r.json()["status"], "failed");
    }
    let good = token(&v, "4242424242424242", "123").await;
    let r = charge(&v, &good).await;
    r.assert_error(429, "rate_limit_error", "rate_limit");
    assert!(r.header("retry-after").is_some());
    // Refused before it ran: the token is still unused.
    let t = v
        .get(&format!("/v1/tokens/{good}"), &v.account.secret_key)
        .await;
    assert_eq!(t.json()["used"], false);
    // Another account charges as usual.
    let r = v
        .create_token(
            &v.other.publishable_key,
            &json!({ "card": v.seal_card("4242424242424242", "123") }),
        )
        .await;
    let tok = r.json()["id"].as_str().unwrap().to_owned();
    let r = post(
        &v,
        "/v1/charges",
        &v.other.secret_key,
        json!({"amount": 100, "currency": "eur", "source": tok}),
    )
    .await;
    assert_eq!(r.json()["status"], "succeeded");
}

/// The second security review: with the old per-IP default (60 at once, 10 a second), 101
/// token requests from one address spread over a minute all passed. The defaults now stop a
/// card-testing run after 22 (a burst of 20, then one every 30 s); the clock is the vault's,
/// moved by the test.
#[tokio::test]
async fn the_default_limits_stop_a_card_testing_run_spread_over_a_minute() {
    let defaults = Config::default();
    let v = TestVault::with_config(Config {
        trust_forwarded_for: true,
        ..defaults
    })
    .await;
    let pk = v.account.publishable_key.clone();
    let from = |ip: &str, card: String| {
        Request::post("/v1/tokens")
            .header("authorization", format!("Bearer {pk}"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(Body::from(json!({ "card": card }).to_string()))
            .unwrap()
    };
    let (mut passed, mut limited) = (0, 0);
    for i in 0..101u64 {
        // 101 different cards over 60 seconds: a request every 0.6 s.
        if i > 0 && i % 5 == 0 {
            v.clock.advance(3);
        }
        let card = v.seal_card(&luhn_number("400000", 16, i), "123");
        let r = v.call(from("198.51.100.7", card)).await;
        match r.status.as_u16() {
            200 => passed += 1,
            429 => {
                r.assert_error(429, "rate_limit_error", "rate_limit");
                limited += 1;
            }
            s => panic!("{s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert_eq!(passed + limited, 101);
    assert!((20..=22).contains(&passed), "{passed} of 101 passed");
    // Another shopper is not held back by the tester's address.
    let r = v
        .call(from("203.0.113.9", v.seal_card("4242424242424242", "123")))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// The second security review: `is_public_v6` missed IPv4-mapped addresses inside other
/// forms, the local-use NAT64 prefix and Teredo. A row per block of IANA's IPv4 and IPv6
/// Special-Purpose Address Registries (and multicast, and IPv6 outside 2000::/3), each with an
/// address inside it that must be refused; then public neighbours that must not be.
#[test]
fn every_iana_special_purpose_block_is_refused_as_a_forward_destination() {
    use cardseal_vault::forward::destination::is_public;
    let refused = [
        ("0.0.0.0/8", "0.1.2.3"),
        ("10.0.0.0/8", "10.255.0.1"),
        ("100.64.0.0/10", "100.127.255.254"),
        ("127.0.0.0/8", "127.8.8.8"),
        ("169.254.0.0/16", "169.254.169.254"),
        ("172.16.0.0/12", "172.31.0.1"),
        ("192.0.0.0/24", "192.0.0.170"),
        ("192.0.0.0/24 (PCP anycast)", "192.0.0.9"),
        ("192.0.2.0/24", "192.0.2.1"),
        ("192.31.196.0/24", "192.31.196.1"),
        ("192.52.193.0/24", "192.52.193.1"),
        ("192.88.99.0/24", "192.88.99.1"),
        ("192.168.0.0/16", "192.168.255.255"),
        ("192.175.48.0/24", "192.175.48.6"),
        ("198.18.0.0/15", "198.19.255.1"),
        ("198.51.100.0/24", "198.51.100.7"),
        ("203.0.113.0/24", "203.0.113.1"),
        ("224.0.0.0/4", "239.255.255.250"),
        ("240.0.0.0/4", "250.1.2.3"),
        ("255.255.255.255/32", "255.255.255.255"),
        ("::1/128", "::1"),
        ("::/128", "::"),
        ("::ffff:0:0/96", "::ffff:10.0.0.1"),
        ("::ffff:0:0:0/96 (IPv4-translated)", "::ffff:0:a9fe:a9fe"),
        ("::/96 (IPv4-compatible)", "::7f00:1"),
        ("64:ff9b::/96 to a private address", "64:ff9b::a9fe:a9fe"),
        ("64:ff9b::/96 to a mapped loopback", "64:ff9b::7f00:1"),
        ("64:ff9b:1::/48", "64:ff9b:1::5db8:d822"),
        ("100::/64", "100::1"),
        ("100:0:0:1::/64", "100:0:0:1::1"),
        ("2001::/23", "2001:1ff::1"),
        ("2001::/32 (Teredo)", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
        ("2001:1::1/128", "2001:1::1"),
        ("2001:1::2/128", "2001:1::2"),
        ("2001:1::3/128", "2001:1::3"),
        ("2001:2::/48", "2001:2::1"),
        ("2001:3::/32", "2001:3::1"),
        ("2001:4:112::/48", "2001:4:112::1"),
        ("2001:10::/28", "2001:1f::1"),
        ("2001:20::/28", "2001:2f::1"),
        ("2001:30::/28", "2001:3f::1"),
        ("2001:db8::/32", "2001:db8::1"),
        (
            "2002::/16 (6to4 of a public address too)",
            "2002:5db8:d822::1",
        ),
        ("2620:4f:8000::/48", "2620:4f:8000::42"),
        ("3fff::/20", "3fff:fff::1"),
        ("5f00::/16", "5f00::1"),
        ("fc00::/7", "fd00:ec2::254"),
        ("fe80::/10", "fe80::1"),
        ("fec0::/10 (site-local)", "fec0::1"),
        ("ff00::/8", "ff02::1"),
        ("outside 2000::/3", "4000::1"),
    ];
    for (block, ip) in refused {
        assert!(!is_public(ip.parse().unwrap()), "{block}: {ip}");
    }
    for ip in [
        "93.184.216.34",
        "1.1.1.1",
        "100.128.0.1",
        "172.32.0.1",
        "192.0.1.1",
        "198.20.0.1",
        "223.255.255.1",
        "2606:4700::1111",
        "2001:200::1",
        "2003::1",
        "2620:4f:8001::1",
        "3fff:1000::1",
        "64:ff9b::5db8:d822",
        "::ffff:93.184.216.34",
    ] {
        assert!(is_public(ip.parse().unwrap()), "{ip}");
    }
}
