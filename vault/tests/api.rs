//! The token API, driven through `app()` and through a real server on 127.0.0.1.

#[path = "support/helpers.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::VaultKey;
use cardseal_vault::store;
use serde_json::{Value, json};
use support::*;

const VISA: &str = "4242424242424242";
const AMEX: &str = "378282246310005";

#[tokio::test]
async fn core_sealed_card_becomes_a_token() {
    let v = TestVault::new().await;
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t = r.json();
    let id = t["id"].as_str().unwrap();
    assert!(id.starts_with("tok_") && id.len() == 26, "{id}");
    assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(t["object"], "token");
    assert_eq!(t["type"], "card");
    assert_eq!(
        t["card"],
        json!({"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "funding": null, "country": null})
    );
    assert_eq!(t["client_ip"], "203.0.113.7");
    assert_eq!(t["created"], v.now());
    assert_eq!(t["expires_at"], v.now() + 15 * 60);
    assert_eq!(t["livemode"], false);
    assert_eq!(t["used"], false);
    // Members in DESIGN.md's order.
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    let order = [
        "id",
        "object",
        "type",
        "card",
        "client_ip",
        "created",
        "expires_at",
        "livemode",
        "used",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
    assert_eq!(t.as_object().unwrap().len(), order.len());
    assert!(!String::from_utf8_lossy(&r.body).contains(VISA));

    let got = v
        .get(&format!("/v1/tokens/{id}"), &v.account.secret_key)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), t);
}

#[tokio::test]
async fn cvc_token_and_amex_card() {
    let v = TestVault::new().await;
    let cvc = cardseal::card::Cvc::parse("1234", None).unwrap();
    let sealed = cardseal::jwe::seal_cvc(&v.vault_key(), &cvc, v.now()).unwrap();
    let r = v
        .create_token(&v.account.secret_key, &json!({ "cvc": sealed }))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["type"], "cvc");
    assert_eq!(r.json()["card"], Value::Null);

    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(AMEX, "1234") }),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["card"]["brand"], "amex");
    assert_eq!(r.json()["card"]["last4"], "0005");

    // A whole card sent as a CVC is refused.
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "cvc": v.seal_card(VISA, "123") }),
        )
        .await;
    r.assert_error(400, "invalid_request_error", "parameter_invalid");
}

#[tokio::test]
async fn jose_sealed_card_becomes_a_token() {
    let v = TestVault::new().await;
    let payload = json!({"v": 1, "number": "5555555555554444", "exp_month": 3, "exp_year": 2031, "cvc": "737",
        "name": "Ada Lovelace", "iat": v.now(), "jti": cardseal::jwe::new_jti().unwrap()});
    let jwe = jose_seal(&v.jwks(), &payload.to_string());
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": jwe }))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["card"]["brand"], "mastercard");
    assert_eq!(r.json()["card"]["exp_month"], 3);

    let cvc =
        json!({"v": 1, "cvc": "737", "iat": v.now(), "jti": cardseal::jwe::new_jti().unwrap()});
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "cvc": jose_seal(&v.jwks(), &cvc.to_string()) }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn headers_outside_the_pinned_set_are_rejected() {
    let v = TestVault::new().await;
    let jwk = v.jwk();
    let kid = jwk["kid"].as_str().unwrap().to_owned();
    let good = json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid});
    let with = |k: &str, val: Value| {
        let mut h = good.clone();
        h[k] = val;
        h
    };
    let cases: Vec<(&str, Value, Alg, bool)> = vec![
        ("RSA1_5", with("alg", json!("RSA1_5")), Alg::Rsa15, false),
        (
            "RSA-OAEP",
            with("alg", json!("RSA-OAEP")),
            Alg::RsaOaep,
            false,
        ),
        (
            "A128GCM",
            with("enc", json!("A128GCM")),
            Alg::RsaOaep256,
            true,
        ),
        ("zip", with("zip", json!("DEF")), Alg::RsaOaep256, false),
        ("crit", with("crit", json!(["exp"])), Alg::RsaOaep256, false),
        (
            "jku",
            with("jku", json!("https://evil.example/jwks")),
            Alg::RsaOaep256,
            false,
        ),
        ("jwk", with("jwk", jwk.clone()), Alg::RsaOaep256, false),
        (
            "x5u",
            with("x5u", json!("https://evil.example/cert")),
            Alg::RsaOaep256,
            false,
        ),
        (
            "no kid",
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
            Alg::RsaOaep256,
            false,
        ),
    ];
    for (name, header, alg, enc_128) in cases {
        let jwe = raw_jwe(&header, &jwk, alg, enc_128, &payload_json(VISA, v.now()));
        let r = v
            .create_token(&v.account.publishable_key, &json!({ "card": jwe }))
            .await;
        r.assert_error(400, "invalid_request_error", "invalid_encrypted_payload");
        assert_eq!(r.json()["error"]["param"], "card", "{name}");
    }

    // Unknown kid: the client is told to fetch the keys again.
    let jwe = raw_jwe(
        &with("kid", json!("key_unknown")),
        &jwk,
        Alg::RsaOaep256,
        false,
        &payload_json(VISA, v.now()),
    );
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": jwe }))
        .await;
    r.assert_error(400, "invalid_request_error", "encryption_key_expired");

    // The hand-made builder itself is right: the pinned header works.
    let jwe = raw_jwe(
        &good,
        &jwk,
        Alg::RsaOaep256,
        false,
        &payload_json(VISA, v.now()),
    );
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": jwe }))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let sealed = v.seal_card(VISA, "123");
    let parts: Vec<&str> = sealed.split('.').collect();
    let malformed = [
        parts[..4].join("."),
        format!("{sealed}.x"),
        format!("!!{}", &sealed[2..]),
        format!("{}.{}", "e30", parts[1..].join(".")),
        String::new(),
        format!("{}.%%%.{}", parts[0], parts[2..].join(".")),
        format!(
            "{}.{}.{}.{}=.{}",
            parts[0], parts[1], parts[2], parts[3], parts[4]
        ),
    ];
    for jwe in malformed {
        let r = v
            .create_token(&v.account.publishable_key, &json!({ "card": jwe }))
            .await;
        r.assert_error(400, "invalid_request_error", "invalid_encrypted_payload");
    }
}

#[tokio::test]
async fn every_failure_after_the_header_has_one_identical_body() {
    let v = TestVault::new().await;
    let sealed = v.seal_card(VISA, "123");
    let dot: Vec<usize> = sealed.match_indices('.').map(|(i, _)| i).collect();
    let mut reference: Option<(axum::body::Bytes, Option<String>)> = None;
    let mut checked = 0;
    let mut positions: Vec<usize> = (dot[0] + 1..sealed.len())
        .filter(|i| !dot.contains(i))
        .collect();
    // Every byte of the IV, ciphertext and tag; every third byte of the 342-byte key segment.
    positions.retain(|&i| i > dot[1] || (i - dot[0]).is_multiple_of(3));
    for (n, &i) in positions.iter().enumerate() {
        let mut bytes = sealed.clone().into_bytes();
        // Mostly another valid base64url character; sometimes one outside the alphabet.
        bytes[i] = match (n % 7, bytes[i]) {
            (0, _) => b'*',
            (_, b'A') => b'B',
            _ => b'A',
        };
        let jwe = String::from_utf8(bytes).unwrap();
        let r = v
            .create_token(&v.account.publishable_key, &json!({ "card": jwe }))
            .await;
        assert_eq!(r.status, 400, "position {i}");
        match &reference {
            None => {
                r.assert_error(400, "invalid_request_error", "invalid_encrypted_payload");
                assert_eq!(r.json()["error"]["request_id"], Value::Null);
                reference = Some((r.body.clone(), r.header("request-id").map(str::to_owned)));
            }
            Some((body, first_id)) => {
                assert_eq!(&r.body, body, "position {i} gave a different body");
                // The request id is still there, in the header.
                assert!(
                    r.header("request-id")
                        .is_some_and(|id| Some(id) != first_id.as_deref())
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
    // The untouched JWE still works: the flips, not a broken fixture, caused the failures.
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": sealed }))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_replayed_jwe_is_refused_unless_it_is_an_idempotent_retry() {
    let v = TestVault::new().await;
    let sealed = v.seal_card(VISA, "123");
    let body = json!({ "card": sealed });
    assert_eq!(
        v.create_token(&v.account.publishable_key, &body)
            .await
            .status,
        200
    );
    let r = v.create_token(&v.account.publishable_key, &body).await;
    r.assert_error(409, "invalid_request_error", "replayed_request");
    // Also from another account.
    let r = v.create_token(&v.other.publishable_key, &body).await;
    r.assert_error(409, "invalid_request_error", "replayed_request");

    // A retry with the same Idempotency-Key gets the same token back.
    let sealed = v.seal_card(VISA, "123");
    let request = |key: &str| {
        let mut req = post_json(
            "/v1/tokens",
            &v.account.publishable_key,
            &json!({ "card": sealed }),
        );
        req.headers_mut()
            .insert("idempotency-key", key.parse().unwrap());
        req
    };
    let first = v.call(request("retry-1")).await;
    assert_eq!(first.status, 200);
    let again = v.call(request("retry-1")).await;
    assert_eq!(again.status, 200);
    assert_eq!(first.json()["id"], again.json()["id"]);
    v.call(request("retry-2"))
        .await
        .assert_error(409, "invalid_request_error", "replayed_request");
}

#[tokio::test]
async fn iat_must_be_within_five_minutes() {
    let v = TestVault::new().await;
    for offset in [-600, 600, -301] {
        let p = card_payload(VISA, 12, 2030, Some("123"), v.now() + offset);
        let r = v
            .create_token(&v.account.publishable_key, &json!({ "card": v.seal(&p) }))
            .await;
        r.assert_error(400, "invalid_request_error", "request_expired");
    }
    for offset in [-299, 299] {
        let p = card_payload(VISA, 12, 2030, Some("123"), v.now() + offset);
        let r = v
            .create_token(&v.account.publishable_key, &json!({ "card": v.seal(&p) }))
            .await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn the_card_is_validated_with_the_core() {
    let v = TestVault::new().await;
    let cases = [
        (
            card_payload("4242424242424241", 12, 2030, Some("123"), v.now()),
            "invalid_number",
            "number",
        ),
        (
            card_payload("4242", 12, 2030, Some("123"), v.now()),
            "incomplete_number",
            "number",
        ),
        (
            card_payload(VISA, 13, 2030, Some("123"), v.now()),
            "invalid_expiry_month",
            "expiry",
        ),
        (
            card_payload(VISA, 1, 2001, Some("123"), v.now()),
            "invalid_expiry_year_past",
            "expiry",
        ),
        (
            card_payload(VISA, 12, 2030, Some("12a"), v.now()),
            "invalid_cvc",
            "cvc",
        ),
        (
            card_payload(AMEX, 12, 2030, Some("123"), v.now()),
            "incomplete_cvc",
            "cvc",
        ),
    ];
    for (payload, code, param) in cases {
        let r = v
            .create_token(
                &v.account.publishable_key,
                &json!({ "card": v.seal(&payload) }),
            )
            .await;
        r.assert_error(402, "card_error", code);
        assert_eq!(r.json()["error"]["param"], param);
        assert!(!String::from_utf8_lossy(&r.body).contains("424242424242"));
    }
}

#[tokio::test]
async fn keys_and_origins() {
    let v = TestVault::new().await;
    let pk = &v.account.publishable_key;
    let sealed = || json!({ "card": v.seal_card(VISA, "123") });

    // No key, a bad key.
    let r = v
        .call(
            Request::post("/v1/tokens")
                .body(Body::from(sealed().to_string()))
                .unwrap(),
        )
        .await;
    r.assert_error(401, "authentication_error", "api_key_required");
    v.create_token("pk_test_nope", &sealed())
        .await
        .assert_error(401, "authentication_error", "invalid_api_key");

    // A publishable key from an origin the account does not allow.
    let mut req = post_json("/v1/tokens", pk, &sealed());
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let r = v.call(req).await;
    r.assert_error(403, "permission_error", "origin_not_allowed");
    // It names the origin it saw (public), so the developer knows which to allow.
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("https://evil.example"), "{message}");
    // From allowed origins, with CORS headers.
    for origin in ["https://shop.example", "http://127.0.0.1:5173"] {
        let mut req = post_json("/v1/tokens", pk, &sealed());
        req.headers_mut().insert("origin", origin.parse().unwrap());
        let r = v.call(req).await;
        assert_eq!(r.status, 200, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert!(
            r.header("access-control-expose-headers")
                .unwrap()
                .contains("Request-Id")
        );
    }
    // Browsers' preflight.
    let r = v
        .call(
            Request::options("/v1/tokens")
                .header("origin", "https://shop.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type, idempotency-key",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );

    // A publishable key cannot read tokens.
    let id = v.create_token(pk, &sealed()).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    v.get(&format!("/v1/tokens/{id}"), pk).await.assert_error(
        403,
        "permission_error",
        "secret_key_required",
    );
    // Restricted keys neither.
    v.get(&format!("/v1/tokens/{id}"), &v.account.restricted_key)
        .await
        .assert_error(403, "permission_error", "insufficient_scope");

    // Another account's token looks exactly like an unknown one.
    let theirs = v
        .get(&format!("/v1/tokens/{id}"), &v.other.secret_key)
        .await;
    theirs.assert_error(404, "invalid_request_error", "resource_missing");
    let unknown = v
        .get("/v1/tokens/tok_0000000000000000000000", &v.other.secret_key)
        .await;
    unknown.assert_error(404, "invalid_request_error", "resource_missing");
    let strip = |mut j: Value| {
        j["error"]["request_id"] = Value::Null;
        j
    };
    assert_eq!(strip(theirs.json()), strip(unknown.json()));

    // The JWKS: public, and with a publishable key.
    let r = v
        .call(
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), v.jwks());
    let r = v.get("/v1/encryption_keys", pk).await;
    assert_eq!(r.json(), v.jwks());
    let jwk = &r.json()["keys"][0];
    assert_eq!(jwk["use"], "enc");
    assert_eq!(jwk["alg"], "RSA-OAEP-256");
    assert!(VaultKey::parse(&r.json().to_string()).unwrap().bits() >= 2048);
    v.call(
        Request::get("/v1/encryption_keys")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .assert_error(401, "authentication_error", "api_key_required");
}

#[tokio::test]
async fn bad_bodies_get_the_envelope_and_never_echo_input() {
    let v = TestVault::new().await;
    let pk = &v.account.publishable_key;
    let big = json!({ "card": "a".repeat(9 * 1024) });
    let r = v.create_token(pk, &big).await;
    r.assert_error(413, "invalid_request_error", "request_too_large");
    // Also without a Content-Length (chunked).
    let chunks: Vec<Result<_, std::io::Error>> = vec![Ok(big.to_string())];
    let req = Request::post("/v1/tokens")
        .header("authorization", format!("Bearer {pk}"))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    v.call(req)
        .await
        .assert_error(413, "invalid_request_error", "request_too_large");

    for body in [
        json!({ "card": VISA }),
        json!({ "number": VISA, "cvc": 4242 }),
    ] {
        let r = v.create_token(pk, &body).await;
        assert_eq!(r.status, 400);
        assert!(
            !String::from_utf8_lossy(&r.body).contains(VISA),
            "{:?}",
            r.body
        );
    }
    let r = v
        .call(
            Request::post("/v1/tokens")
                .header("authorization", format!("Bearer {pk}"))
                .body(Body::from(format!("{{\"card\": {VISA}")))
                .unwrap(),
        )
        .await;
    r.assert_error(400, "invalid_request_error", "invalid_body");
    assert!(!String::from_utf8_lossy(&r.body).contains(VISA));
    v.create_token(pk, &json!({})).await.assert_error(
        400,
        "invalid_request_error",
        "parameter_missing",
    );

    v.get("/v1/nothing", pk)
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    let r = v
        .call(Request::delete("/v1/tokens").body(Body::empty()).unwrap())
        .await;
    r.assert_error(405, "invalid_request_error", "method_not_allowed");
}

#[tokio::test]
async fn real_server_tokens_limits_and_preflight() {
    let v = TestVault::with_config(cardseal_vault::config::Config {
        rate_per_key: cardseal_vault::config::RateLimit {
            per_second: 0.01,
            burst: 5.0,
        },
        ..unlimited()
    })
    .await;
    let addr = serve(&v).await;
    let pk = v.account.publishable_key.clone();

    let r = http(addr, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 200);

    let mut req = post_json(
        "/v1/tokens",
        &pk,
        &json!({ "card": v.seal_card(VISA, "123") }),
    );
    req.headers_mut()
        .insert("origin", "http://127.0.0.1:9999".parse().unwrap());
    let r = http(addr, req).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["client_ip"], "127.0.0.1");
    assert!(r.header("request-id").unwrap().starts_with("req_"));

    let r = http(
        addr,
        post_json("/v1/tokens", &pk, &json!({ "card": "a".repeat(9 * 1024) })),
    )
    .await;
    r.assert_error(413, "invalid_request_error", "request_too_large");

    let r = http(
        addr,
        Request::options("/v1/tokens")
            .header("origin", "http://localhost:3000")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );

    // The burst allows 5, and two were used above: the token, and the too-large body (every
    // write of a publishable key counts, refused or not). The rest of a burst of 10 is
    // refused with 429.
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..10 {
        let r = http(
            addr,
            post_json(
                "/v1/tokens",
                &pk,
                &json!({ "card": v.seal_card(VISA, "123") }),
            ),
        )
        .await;
        statuses.push(r.status.as_u16());
        last = Some(r);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    let last = last.unwrap();
    last.assert_error(429, "rate_limit_error", "rate_limit");
    assert!(last.header("retry-after").is_some());
    // Another key of the same account has its own bucket.
    let r = http(
        addr,
        post_json(
            "/v1/tokens",
            &v.account.secret_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        ),
    )
    .await;
    assert_eq!(r.status, 200);

    let text = v.metrics().await;
    assert!(
        text.contains("cardseal_tokens_created_total{type=\"card\"} 5"),
        "{text}"
    );
    assert!(
        text.contains(
            "cardseal_http_requests_total{method=\"POST\",route=\"/v1/tokens\",status=\"429\"} 7"
        ),
        "{text}"
    );
    assert!(
        text.contains("cardseal_tokens_rejected_total{code=\"rate_limit\"} 7"),
        "{text}"
    );
}

#[tokio::test]
async fn per_ip_limit() {
    let v = TestVault::with_config(cardseal_vault::config::Config {
        rate_per_ip: cardseal_vault::config::RateLimit {
            per_second: 0.01,
            burst: 3.0,
        },
        ..unlimited()
    })
    .await;
    let mut codes = Vec::new();
    for key in [
        &v.account.publishable_key,
        &v.other.publishable_key,
        &v.account.secret_key,
        &v.other.secret_key,
    ] {
        codes.push(
            v.create_token(key, &json!({ "card": v.seal_card(VISA, "123") }))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 200, 429]);
}

#[tokio::test]
async fn key_rotation_across_the_grace_period() {
    let v = TestVault::new().await;
    let grace = v.state.config().key_grace_secs;
    let old_kid = v.jwk()["kid"].as_str().unwrap().to_owned();
    let old_key = v.vault_key();
    let seal_old = |v: &TestVault| {
        cardseal::jwe::seal_payload(&old_key, &v.payload(VISA, 12, 2030, Some("123"))).unwrap()
    };

    let new_kid = v.state.rotate_keys().await.unwrap();
    assert_ne!(new_kid, old_kid);
    let kids: Vec<String> = v.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kids,
        [old_kid.clone(), new_kid.clone()],
        "the active key comes last"
    );
    // A client picking the `enc` key from the JWKS now seals with the new key.
    assert_eq!(v.vault_key().kid(), Some(new_kid.as_str()));

    // Within the grace period both keys open cards.
    v.clock.advance(grace - 60);
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": seal_old(&v) }))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    assert_eq!(r.status, 200);

    // After it, the old key is retired.
    v.clock.advance(61);
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": seal_old(&v) }))
        .await;
    r.assert_error(400, "invalid_request_error", "encryption_key_expired");
    let kids: Vec<String> = v.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, std::slice::from_ref(&new_kid));
    // Upkeep then destroys the retired private key; the answer stays the same.
    assert_eq!(v.state.retire_keys().await.unwrap(), 1);
    assert_eq!(v.state.retire_keys().await.unwrap(), 0);
    let stored: Vec<String> = store::read(v.store.as_ref(), |tx| tx.sealing_keys())
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(stored, [new_kid]);
    let r = v
        .create_token(&v.account.publishable_key, &json!({ "card": seal_old(&v) }))
        .await;
    r.assert_error(400, "invalid_request_error", "encryption_key_expired");
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_token_is_used_at_most_once_under_concurrency() {
    let v = TestVault::new().await;
    let r = v
        .create_token(
            &v.account.secret_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let account = v.account.account.clone();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = v.store.clone();
        let (account, id, now) = (account.clone(), id.clone(), v.now());
        tasks.push(tokio::spawn(async move {
            store::write(store.as_ref(), move |tx| tx.use_token(&account, &id, now))
                .await
                .unwrap()
        }));
    }
    let mut used = 0;
    for t in tasks {
        if let Some(token) = t.await.unwrap() {
            used += 1;
            assert!(token.sealed.is_some());
        }
    }
    assert_eq!(used, 1);
    let (other, token, now) = (v.other.account.clone(), id.clone(), v.now());
    assert!(
        store::write(v.store.as_ref(), move |tx| tx
            .use_token(&other, &token, now))
        .await
        .unwrap()
        .is_none()
    );
    let r = v
        .get(&format!("/v1/tokens/{id}"), &v.account.secret_key)
        .await;
    assert_eq!(r.json()["used"], true);

    // An expired token cannot be used, and its card data is purged.
    let r = v
        .create_token(
            &v.account.secret_key,
            &json!({ "card": v.seal_card(VISA, "123") }),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    v.clock.advance(15 * 60);
    let (acct, token, now) = (account.clone(), id.clone(), v.now());
    assert!(
        store::write(v.store.as_ref(), move |tx| tx.use_token(&acct, &token, now))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store::write(v.store.as_ref(), move |tx| tx.purge(now))
            .await
            .unwrap()
            >= 1
    );
    assert!(
        store::read(v.store.as_ref(), move |tx| tx.token(&account, &id))
            .await
            .unwrap()
            .unwrap()
            .sealed
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_jwe_posted_concurrently_makes_one_token() {
    let v = std::sync::Arc::new(TestVault::new().await);
    let body = json!({ "card": v.seal_card(VISA, "123") });
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (v, body) = (v.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            v.create_token(&v.account.publishable_key, &body)
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        23,
        "{statuses:?}"
    );
}
