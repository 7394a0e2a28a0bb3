//! Hostile `iat` values and JWE segment lengths: each gets the vault's usual answer, no token
//! is made, and the server keeps serving.

#[path = "support/helpers.rs"]
mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use support::*;

const VISA: &str = "4242424242424242";

fn token_count(v: &TestVault) -> i64 {
    db_number(v.dir.path(), "SELECT count(*) FROM tokens")
}

/// A card payload with `iat` set to any JSON value, sealed with the vault's real key.
fn sealed_with_iat(v: &TestVault, iat: Value) -> String {
    let jwk = v.jwk();
    let header = json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": jwk["kid"]});
    let payload = json!({"v": 1, "number": VISA, "exp_month": 12, "exp_year": 2030,
        "cvc": "123", "iat": iat, "jti": cardseal::jwe::new_jti().unwrap()});
    raw_jwe(
        &header,
        &jwk,
        Alg::RsaOaep256,
        false,
        payload.to_string().as_bytes(),
    )
}

#[tokio::test]
async fn extreme_or_non_integer_iat_is_refused_and_the_server_keeps_serving() {
    let v = TestVault::new().await;
    // A real socket: a panicking handler drops the connection, which `http` turns into a
    // test failure, instead of unwinding through the test itself.
    let addr = serve(&v).await;
    let pk = v.account.publishable_key.clone();
    let now = v.now();
    let stale = [
        json!(i64::MIN),
        json!(i64::MAX),
        // `now - iat` wraps to i64::MIN here, whose `abs()` wraps to itself, below the window.
        json!(now + i64::MIN),
        json!(1_i64 << 53),
        json!(-(1_i64 << 53)),
        json!(now + (1_i64 << 53)),
        json!(now - (1_i64 << 53)),
        json!(0),
    ];
    let not_integers = [
        json!(1.5),
        json!(now as f64 + 0.5),
        json!("123"),
        json!(now.to_string()),
        Value::Null,
        json!(u64::MAX),
        json!([now]),
    ];
    let before = token_count(&v);
    let cases = stale.into_iter().map(|iat| (iat, "request_expired")).chain(
        not_integers
            .into_iter()
            .map(|iat| (iat, "invalid_encrypted_payload")),
    );
    for (iat, code) in cases {
        let body = json!({ "card": sealed_with_iat(&v, iat.clone()) });
        let r = http(addr, post_json("/v1/tokens", &pk, &body)).await;
        assert_eq!(
            r.code(),
            code,
            "iat {iat}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.assert_error(400, "invalid_request_error", code);
        // The same server still answers a good request.
        let good = json!({ "card": v.seal_card(VISA, "123") });
        let ok = http(addr, post_json("/v1/tokens", &pk, &good)).await;
        assert_eq!(ok.status, 200, "after iat {iat}");
    }
    // Only the good requests made tokens.
    assert_eq!(token_count(&v), before + 15);
}

/// The five segments of a compact JWE, decoded (the header stays as text: it is the AAD).
fn split(jwe: &str) -> (String, Vec<Vec<u8>>) {
    let parts: Vec<&str> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5);
    let decoded = parts[1..].iter().map(|p| B64.decode(p).unwrap()).collect();
    (parts[0].to_owned(), decoded)
}

fn join(header: &str, ek: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> String {
    format!(
        "{header}.{}.{}.{}.{}",
        B64.encode(ek),
        B64.encode(iv),
        B64.encode(ciphertext),
        B64.encode(tag)
    )
}

#[tokio::test]
async fn every_segment_must_have_its_own_length() {
    // A larger body limit, so that an oversized ciphertext reaches the JWE checks.
    let v = TestVault::with_config(cardseal_vault::config::Config {
        body_limit: 64 * 1024,
        ..unlimited()
    })
    .await;
    let pk = v.account.publishable_key.clone();
    let sealed = v.seal_card(VISA, "123");
    let (header, seg) = split(&sealed);
    let (ek, iv, ct, tag) = (&seg[0], &seg[1], &seg[2], &seg[3]);
    assert_eq!((iv.len(), tag.len()), (12, 16));

    // The reference body: a flipped tag byte, which every vault refuses.
    let mut flipped = tag.clone();
    flipped[0] ^= 1;
    let reference = v
        .create_token(&pk, &json!({ "card": join(&header, ek, iv, ct, &flipped) }))
        .await;
    reference.assert_error(400, "invalid_request_error", "invalid_encrypted_payload");

    let split_at = ct.len() - 4;
    let moved_tag: Vec<u8> = ct[split_at..].iter().chain(tag.iter()).copied().collect();
    let all_in_one: Vec<u8> = ct.iter().chain(tag.iter()).copied().collect();
    let mut padded_ek = vec![0u8];
    padded_ek.extend_from_slice(ek);
    let variants = [
        (
            "4 ciphertext bytes moved into the tag",
            join(&header, ek, iv, &ct[..split_at], &moved_tag),
        ),
        (
            "ciphertext and tag in one segment",
            join(&header, ek, iv, &all_in_one, &[]),
        ),
        (
            "everything in the tag segment",
            join(&header, ek, iv, &[], &all_in_one),
        ),
        (
            "a 16-byte IV",
            join(&header, ek, &[iv.as_slice(), &[0; 4]].concat(), ct, tag),
        ),
        ("an 8-byte IV", join(&header, ek, &iv[..8], ct, tag)),
        (
            "a short encrypted key",
            join(&header, &ek[1..], iv, ct, tag),
        ),
        (
            "an encrypted key with a leading zero",
            join(&header, &padded_ek, iv, ct, tag),
        ),
        ("an empty encrypted key", join(&header, &[], iv, ct, tag)),
        ("an empty ciphertext", join(&header, ek, iv, &[], tag)),
        (
            "a ciphertext over the default body limit",
            join(&header, ek, iv, &vec![7u8; 8 * 1024 + 1], tag),
        ),
    ];
    let before = token_count(&v);
    for (what, jwe) in variants {
        let r = v.create_token(&pk, &json!({ "card": jwe })).await;
        r.assert_error(400, "invalid_request_error", "invalid_encrypted_payload");
        assert_eq!(r.body, reference.body, "{what} gave a different body");
    }
    assert_eq!(token_count(&v), before, "a malformed JWE made a token");

    // The untouched JWE still works: the reshaping, not a broken fixture, caused the failures.
    let r = v.create_token(&pk, &json!({ "card": sealed })).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
