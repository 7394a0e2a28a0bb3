//! The sealed card, opened by independent decryptors: aws-lc-rs (what the vault uses) and the
//! pure-Rust `rsa` + `aes-gcm` pair. Plus tamper tests and key-import errors.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce as AwsNonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use cardseal::Error;
use cardseal::Secret;
use cardseal::card::{Card, CardInput, Cvc, Today};
use cardseal::jwe::{Payload, VaultKey, new_jti, seal_card, seal_cvc, seal_payload};

/// A vault key pair generated once per test binary.
struct TestKey {
    private: PrivateDecryptingKey,
    spki_der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl TestKey {
    fn generate(size: KeySize) -> Self {
        let private = PrivateDecryptingKey::generate(size).unwrap();
        let spki_der = private.public_key().as_der().unwrap().as_ref().to_vec();
        let public = rsa::PublicKey::from_public_key_der(&spki_der).unwrap();
        let strip = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<_>>();
        Self {
            n: strip(public.n().to_be_bytes().to_vec()),
            e: strip(public.e().to_be_bytes().to_vec()),
            private,
            spki_der,
        }
    }

    fn pem(&self) -> String {
        rsa::pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &self.spki_der).unwrap()
    }

    /// The JWK's members, to be extended or overridden by a test.
    fn jwk_value(&self, kid: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "enc",
            "alg": "RSA-OAEP-256",
            "kid": kid,
            "n": b64(&self.n),
            "e": b64(&self.e),
        })
    }

    fn jwk(&self, kid: &str) -> String {
        self.jwk_value(kid).to_string()
    }

    fn vault_key(&self, kid: &str) -> VaultKey {
        VaultKey::from_jwk(&self.jwk(kid)).unwrap()
    }
}

fn key_2048() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(KeySize::Rsa2048))
}

fn other_2048() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(KeySize::Rsa2048))
}

fn key_3072() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate(KeySize::Rsa3072))
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, ()> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| ())
}

/// Opens a compact JWE the way the vault does, with aws-lc-rs. Returns the header and the
/// plaintext; any failure is `Err(())`, as the vault reports one opaque error.
fn open_aws(key: &TestKey, jwe: &str) -> Result<(Value, Vec<u8>), ()> {
    let parts: Vec<&str> = jwe.split('.').collect();
    let [header_b64, ek, iv, ct, tag] = parts[..] else {
        return Err(());
    };
    let header: Value = serde_json::from_slice(&unb64(header_b64)?).map_err(|_| ())?;
    if header["alg"] != "RSA-OAEP-256" || header["enc"] != "A256GCM" {
        return Err(());
    }
    let oaep = OaepPrivateDecryptingKey::new(key.private.clone()).map_err(|_| ())?;
    let mut cek = [0u8; 1024];
    let cek = oaep
        .decrypt(&OAEP_SHA256_MGF1SHA256, &unb64(ek)?, &mut cek, None)
        .map_err(|_| ())?;
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).map_err(|_| ())?);
    let nonce = AwsNonce::try_assume_unique_for_key(&unb64(iv)?).map_err(|_| ())?;
    let mut in_out = unb64(ct)?;
    in_out.extend(unb64(tag)?);
    let plaintext = aead
        .open_in_place(nonce, Aad::from(header_b64.as_bytes()), &mut in_out)
        .map_err(|_| ())?
        .to_vec();
    Ok((header, plaintext))
}

/// Opens a compact JWE with the pure-Rust `rsa` and `aes-gcm` crates.
fn open_rustcrypto(key: &TestKey, jwe: &str) -> Result<Vec<u8>, ()> {
    let parts: Vec<&str> = jwe.split('.').collect();
    let [header_b64, ek, iv, ct, tag] = parts[..] else {
        return Err(());
    };
    let pkcs8 = key.private.as_der().unwrap();
    let private = rsa::PrivateKey::from_pkcs8_der(pkcs8.as_ref()).unwrap();
    let cek = private
        .oaep_decrypt::<sha2::Sha256>(&unb64(ek)?)
        .map_err(|_| ())?;
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| ())?;
    let iv: [u8; 12] = unb64(iv)?.try_into().map_err(|_| ())?;
    let tag: [u8; 16] = unb64(tag)?.try_into().map_err(|_| ())?;
    let mut buf = unb64(ct)?;
    cipher
        .decrypt_inout_detached(
            &Nonce::from(iv),
            header_b64.as_bytes(),
            buf.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| ())?;
    Ok(buf)
}

fn card_payload() -> Payload {
    Payload {
        v: 1,
        number: Some(Secret::new("4242424242424242")),
        exp_month: Some(12),
        exp_year: Some(2030),
        cvc: Some(Secret::new("123")),
        name: Some("A B".into()),
        iat: 1_763_860_000,
        jti: new_jti().unwrap(),
    }
}

#[test]
fn round_trip_through_aws_lc_rs() {
    let key = key_2048();
    let payload = card_payload();
    let jwe = seal_payload(&key.vault_key("k1"), &payload).unwrap();
    let (header, plaintext) = open_aws(key, &jwe).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k1"})
    );
    // The exact header bytes, since they are the AAD any decryptor must reproduce.
    let header_b64 = jwe.split('.').next().unwrap();
    assert_eq!(
        unb64(header_b64).unwrap(),
        br#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k1"}"#
    );
    assert_eq!(plaintext, serde_json::to_vec(&payload).unwrap());
    assert_eq!(
        serde_json::from_slice::<Payload>(&plaintext).unwrap(),
        payload
    );
}

#[test]
fn round_trip_through_rustcrypto() {
    let key = key_2048();
    let payload = card_payload();
    let jwe = seal_payload(&key.vault_key("k1"), &payload).unwrap();
    let plaintext = open_rustcrypto(key, &jwe).unwrap();
    assert_eq!(
        serde_json::from_slice::<Payload>(&plaintext).unwrap(),
        payload
    );
}

#[test]
fn seals_under_2048_and_3072_bit_keys_open_with_both_decrypters() {
    for key in [key_2048(), key_3072()] {
        let payload = card_payload();
        let jwe = seal_payload(&key.vault_key("r"), &payload).unwrap();
        let (header, plaintext) = open_aws(key, &jwe).unwrap();
        assert_eq!(header["kid"], "r");
        assert_eq!(
            serde_json::from_slice::<Payload>(&plaintext).unwrap(),
            payload
        );
        assert_eq!(open_rustcrypto(key, &jwe).unwrap(), plaintext);
    }
}

#[test]
fn round_trip_with_every_import_format_and_size() {
    for key in [key_2048(), key_3072()] {
        let imports = [
            VaultKey::from_jwk(&key.jwk("a")).unwrap(),
            VaultKey::from_spki_pem(&key.pem()).unwrap(),
            VaultKey::parse(&format!("\n  {}", key.pem())).unwrap(),
            VaultKey::parse(&format!(r#"{{"keys":[{}]}}"#, key.jwk("b"))).unwrap(),
        ];
        for vault_key in &imports {
            let payload = card_payload();
            let jwe = seal_payload(vault_key, &payload).unwrap();
            let (header, plaintext) = open_aws(key, &jwe).unwrap();
            assert_eq!(header.get("kid").and_then(Value::as_str), vault_key.kid());
            assert_eq!(
                serde_json::from_slice::<Payload>(&plaintext).unwrap(),
                payload
            );
            // The encrypted key is exactly the modulus size.
            let ek = unb64(jwe.split('.').nth(1).unwrap()).unwrap();
            assert_eq!(ek.len() * 8, vault_key.bits());
        }
    }
}

#[test]
fn header_omits_kid_when_the_key_has_none() {
    let key = key_2048();
    let vault_key = VaultKey::from_spki_pem(&key.pem()).unwrap();
    assert_eq!(vault_key.kid(), None);
    let jwe = seal_payload(&vault_key, &card_payload()).unwrap();
    let header = unb64(jwe.split('.').next().unwrap()).unwrap();
    assert_eq!(header, br#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
}

#[test]
fn kid_is_json_escaped_in_the_header() {
    let key = key_2048();
    let vault_key = key.vault_key("a\"b\\c");
    let jwe = seal_payload(&vault_key, &card_payload()).unwrap();
    let (header, _) = open_aws(key, &jwe).unwrap();
    assert_eq!(header["kid"], "a\"b\\c");
}

#[test]
fn cvc_only_payload_round_trips_with_the_exact_shape() {
    let key = key_2048();
    let payload = Payload {
        v: 1,
        number: None,
        exp_month: None,
        exp_year: None,
        cvc: Some(Secret::new("1234")),
        name: None,
        iat: 1_763_860_000,
        jti: "0123456789abcdefghijkl".into(),
    };
    let jwe = seal_payload(&key.vault_key("k1"), &payload).unwrap();
    let (_, plaintext) = open_aws(key, &jwe).unwrap();
    assert_eq!(
        plaintext,
        br#"{"v":1,"cvc":"1234","iat":1763860000,"jti":"0123456789abcdefghijkl"}"#
    );
}

fn parse_card(cvc: Option<&str>, name: Option<&str>) -> Card {
    let input = CardInput {
        number: Secret::new("4242 4242 4242 4242"),
        exp_month: "12".into(),
        exp_year: "30".into(),
        cvc: cvc.map(Secret::new),
        name: name.map(str::to_owned),
    };
    Card::parse(&input, Today::new(2025, 1)).unwrap()
}

fn open_json(key: &TestKey, jwe: &str) -> Value {
    serde_json::from_slice(&open_aws(key, jwe).unwrap().1).unwrap()
}

#[test]
fn seal_card_carries_every_field() {
    let key = key_2048();
    let jwe = seal_card(
        &key.vault_key("k1"),
        &parse_card(Some("123"), Some("A B")),
        1_763_860_000,
    )
    .unwrap();
    let json = open_json(key, &jwe);
    let jti = json["jti"].as_str().unwrap().to_owned();
    assert_eq!(jti.len(), 22);
    assert_eq!(
        json,
        json!({"v": 1, "number": "4242424242424242", "exp_month": 12, "exp_year": 2030,
               "cvc": "123", "name": "A B", "iat": 1_763_860_000, "jti": jti})
    );
    // Member order is DESIGN.md's.
    let (_, plaintext) = open_aws(key, &jwe).unwrap();
    let text = String::from_utf8(plaintext).unwrap();
    assert!(
        text.starts_with(r#"{"v":1,"number":"4242424242424242","exp_month":12,"#),
        "{text}"
    );
}

#[test]
fn seal_card_omits_absent_cvc_and_name() {
    let key = key_2048();
    let jwe = seal_card(&key.vault_key("k1"), &parse_card(None, None), 7).unwrap();
    let json = open_json(key, &jwe);
    let members: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec!["v", "number", "exp_month", "exp_year", "iat", "jti"];
    expected.sort_unstable();
    let mut members = members;
    members.sort_unstable();
    assert_eq!(members, expected);
}

#[test]
fn seal_cvc_is_cvc_only() {
    let key = key_2048();
    let cvc = Cvc::parse("1234", None).unwrap();
    let a = open_json(key, &seal_cvc(&key.vault_key("k1"), &cvc, 9).unwrap());
    let b = open_json(key, &seal_cvc(&key.vault_key("k1"), &cvc, 9).unwrap());
    let jti = a["jti"].as_str().unwrap();
    assert_eq!(a, json!({"v": 1, "cvc": "1234", "iat": 9, "jti": jti}));
    assert_ne!(a["jti"], b["jti"], "each seal gets a fresh jti");
}

#[test]
fn every_seal_is_fresh() {
    let key = key_2048();
    let vault_key = key.vault_key("k1");
    let payload = card_payload();
    let a = seal_payload(&vault_key, &payload).unwrap();
    let b = seal_payload(&vault_key, &payload).unwrap();
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    assert_eq!(a[0], b[0]);
    for i in 1..5 {
        assert_ne!(a[i], b[i], "segment {i} repeated");
    }
}

#[test]
fn the_wrong_private_key_cannot_open_it() {
    let jwe = seal_payload(&key_2048().vault_key("k1"), &card_payload()).unwrap();
    assert!(open_aws(other_2048(), &jwe).is_err());
    assert!(open_rustcrypto(other_2048(), &jwe).is_err());
}

/// Re-encodes segment `index` of a compact JWE after `edit` changes its decoded bytes.
fn tamper(jwe: &str, index: usize, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let mut bytes = unb64(&parts[index]).unwrap();
    edit(&mut bytes);
    parts[index] = b64(&bytes);
    parts.join(".")
}

#[test]
fn tampering_with_any_segment_fails_decryption() {
    let key = key_2048();
    let jwe = seal_payload(&key.vault_key("k1"), &card_payload()).unwrap();
    assert!(open_aws(key, &jwe).is_ok());
    let names = ["header", "encrypted key", "iv", "ciphertext", "tag"];
    for (index, name) in names.iter().enumerate() {
        let len = unb64(jwe.split('.').nth(index).unwrap()).unwrap().len();
        for position in [0, len / 2, len - 1] {
            for bit in [0, 7] {
                let bad = tamper(&jwe, index, |b| b[position] ^= 1 << bit);
                assert!(
                    open_aws(key, &bad).is_err(),
                    "{name} byte {position} bit {bit} went unnoticed by aws-lc-rs"
                );
                assert!(
                    open_rustcrypto(key, &bad).is_err(),
                    "{name} byte {position} bit {bit} went unnoticed by rsa/aes-gcm"
                );
            }
        }
        // Truncation and extension too.
        assert!(
            open_aws(
                key,
                &tamper(&jwe, index, |b| {
                    b.pop();
                })
            )
            .is_err()
        );
        assert!(open_aws(key, &tamper(&jwe, index, |b| b.push(0))).is_err());
    }
}

#[test]
fn a_still_valid_but_different_header_fails_as_aad() {
    let key = key_2048();
    let jwe = seal_payload(&key.vault_key("k1"), &card_payload()).unwrap();
    for header in [
        r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k2"}"#,
        r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#,
        r#"{"enc":"A256GCM","alg":"RSA-OAEP-256","kid":"k1"}"#,
        r#"{"alg":"RSA-OAEP-256", "enc":"A256GCM","kid":"k1"}"#,
    ] {
        let bad = tamper(&jwe, 0, |b| *b = header.as_bytes().to_vec());
        assert!(open_aws(key, &bad).is_err(), "{header}");
        assert!(open_rustcrypto(key, &bad).is_err(), "{header}");
    }
}

#[test]
fn tampering_with_every_byte_of_iv_and_tag_fails() {
    let key = key_2048();
    let jwe = seal_payload(&key.vault_key("k1"), &card_payload()).unwrap();
    for index in [2, 4] {
        let len = unb64(jwe.split('.').nth(index).unwrap()).unwrap().len();
        for position in 0..len {
            let bad = tamper(&jwe, index, |b| b[position] ^= 0x80);
            assert!(
                open_aws(key, &bad).is_err(),
                "segment {index} byte {position}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Key import
// ---------------------------------------------------------------------------------------------

/// A 1024-bit RSA key (`openssl genrsa 1024`), public half only.
const RSA_1024_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDTXPVOz3lUqQvCzriyV96TKAr7
AWy1cNTdcPcIzMNDA+V6aQEKnBh4YbNxrdi/c6gK7rdPs/YlElhpisGq5Vj5/+Wi
+OZ1c5f6aQcbbmAsRD8mdOFYzRbQTwNnP0kZ8UblNN4NvG9li8dN9TAwkdkK44fQ
uh3ofZbj1DWmLZa93wIDAQAB
-----END PUBLIC KEY-----
";

/// A P-256 key (`openssl ecparam -name prime256v1 -genkey`), public half.
const EC_P256_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8l6l6gECt9ZeBbjkOKA6YGsQnich
IWVdslvSodQ/YZ6vM+Avi/obBnzoRNHowCSnVDpNMU7oH4QaCP2DSRXpSg==
-----END PUBLIC KEY-----
";

/// An Ed25519 key (`openssl genpkey -algorithm ed25519`), public half.
const ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAa1s2ZM3E9Q0qHOHlXKRshI8AqWJ3SUczd9MNGkSGh+U=
-----END PUBLIC KEY-----
";

/// An RSASSA-PSS key (`openssl genpkey -algorithm RSA-PSS`), public half: RSA, but for signing.
const RSA_PSS_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIDALBgkqhkiG9w0BAQoDggEPADCCAQoCggEBAJKZONcuPQ3+oRiIzquHm+tW
GaupxrN/zNvnrfs/FvCkGyYhH1TGRcfF/1vfGI45Q2vudg7WXNgy5/vQ0FmihHpI
GHUbWMZgx+FxizE9KU8aGRelkX5zoyQ80M99Vz21pFdnTsdAKy24+mpl1MaNseld
ceG/M46YUiNKW1ZQ+P6XtJWIiOLxOHZeFa4HAgSjCwDlCixPw6Ch4AXAsMoaw9Dj
uEx97/TF0L7ezi56NoslRVLzcPnlg5a+Se4DxIxICZnFBluriPnVh2hsvKTzxJSK
99xXGUBRopIQO/NXWmWJ3OA3tigbvYz6EuzvN9tc9RMqRsWZv5ZXVsHEQpn2HSEC
AwEAAQ==
-----END PUBLIC KEY-----
";

/// The JWK of a 2048-bit test key with `edit` applied to its members.
fn jwk_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut value = key_2048().jwk_value("k1");
    edit(value.as_object_mut().unwrap());
    value.to_string()
}

fn err(result: Result<VaultKey, Error>) -> Error {
    result.unwrap_err()
}

#[test]
fn good_keys_import() {
    let key = key_2048();
    let vault_key = VaultKey::from_jwk(&key.jwk("k1")).unwrap();
    assert_eq!(vault_key.kid(), Some("k1"));
    assert_eq!(vault_key.bits(), 2048);
    // `use` and `alg` are optional on a lone JWK.
    let bare = jwk_with(|m| {
        m.remove("use");
        m.remove("alg");
        m.remove("kid");
    });
    assert_eq!(VaultKey::from_jwk(&bare).unwrap().kid(), None);
    let ops = jwk_with(|m| drop(m.insert("key_ops".into(), json!(["wrapKey"]))));
    assert!(VaultKey::from_jwk(&ops).is_ok());
    // Some encoders pad base64url; tolerate it.
    let padded = jwk_with(|m| drop(m.insert("e".into(), json!("AQAB=="))));
    assert!(VaultKey::from_jwk(&padded).is_ok());
    // A leading zero byte on n is not canonical but harmless.
    let mut n = vec![0];
    n.extend(&key.n);
    let zero = jwk_with(|m| drop(m.insert("n".into(), json!(b64(&n)))));
    assert_eq!(VaultKey::from_jwk(&zero).unwrap().bits(), 2048);
    assert_eq!(VaultKey::from_spki_pem(&key.pem()).unwrap().bits(), 2048);
    assert_eq!(key_3072().vault_key("x").bits(), 3072);
    // PKCS#1 PEM.
    let public = rsa::PublicKey::from_public_key_der(&key.spki_der).unwrap();
    let pkcs1 = public.to_pkcs1_pem(LineEnding::CRLF).unwrap();
    assert_eq!(VaultKey::parse(&pkcs1).unwrap().bits(), 2048);
}

#[test]
fn debug_shows_only_kid_and_bits() {
    let debug = format!("{:?}", key_2048().vault_key("k1"));
    assert!(debug.contains("k1") && debug.contains("2048"), "{debug}");
    assert!(debug.len() < 80, "{debug}");
}

#[test]
fn small_keys_are_too_small() {
    assert_eq!(
        err(VaultKey::from_spki_pem(RSA_1024_PEM)),
        Error::KeyTooSmall
    );
    assert_eq!(err(VaultKey::parse(RSA_1024_PEM)), Error::KeyTooSmall);
    let public = rsa::PublicKey::from_public_key_pem(RSA_1024_PEM).unwrap();
    let jwk = jwk_with(|m| drop(m.insert("n".into(), json!(b64(&public.n().to_be_bytes())))));
    assert_eq!(err(VaultKey::from_jwk(&jwk)), Error::KeyTooSmall);
    // 2047 bits: the top bit of a 2048-bit modulus cleared.
    let mut n = key_2048().n.clone();
    n[0] &= 0x7f;
    let jwk = jwk_with(|m| drop(m.insert("n".into(), json!(b64(&n)))));
    assert_eq!(err(VaultKey::from_jwk(&jwk)), Error::KeyTooSmall);
}

#[test]
fn non_rsa_keys_are_unsupported() {
    let ec = r#"{"kty":"EC","crv":"P-256","use":"enc","x":"8l6l6gECt9ZeBbjkOKA6YGsQnichIWVdslvSodQ_YZ4","y":"rzPgL4v6GwZ86ETR6MAkp1Q6TTFO6B-EGgj9g0kV6Uo"}"#;
    assert_eq!(err(VaultKey::from_jwk(ec)), Error::UnsupportedKey);
    assert_eq!(err(VaultKey::parse(ec)), Error::UnsupportedKey);
    let oct = r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#;
    assert_eq!(err(VaultKey::from_jwk(oct)), Error::UnsupportedKey);
    let okp = r#"{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    assert_eq!(err(VaultKey::from_jwk(okp)), Error::UnsupportedKey);
    assert_eq!(
        err(VaultKey::from_spki_pem(EC_P256_PEM)),
        Error::UnsupportedKey
    );
    assert_eq!(err(VaultKey::parse(ED25519_PEM)), Error::UnsupportedKey);
    // Over 8192 bits: RSA, but not something a checkout page should ever be handed.
    let huge = jwk_with(|m| drop(m.insert("n".into(), json!(b64(&[0xff; 1025])))));
    assert_eq!(err(VaultKey::from_jwk(&huge)), Error::UnsupportedKey);
}

#[test]
fn signing_keys_are_not_for_encryption() {
    let sig = jwk_with(|m| drop(m.insert("use".into(), json!("sig"))));
    assert_eq!(err(VaultKey::from_jwk(&sig)), Error::KeyNotForEncryption);
    assert_eq!(err(VaultKey::parse(&sig)), Error::KeyNotForEncryption);
    for alg in ["RS256", "PS256", "RSA-OAEP", "RSA1_5", "RSA-OAEP-512"] {
        let jwk = jwk_with(|m| drop(m.insert("alg".into(), json!(alg))));
        assert_eq!(
            err(VaultKey::from_jwk(&jwk)),
            Error::KeyNotForEncryption,
            "{alg}"
        );
    }
    let ops = jwk_with(|m| drop(m.insert("key_ops".into(), json!(["verify"]))));
    assert_eq!(err(VaultKey::from_jwk(&ops)), Error::KeyNotForEncryption);
    assert_eq!(
        err(VaultKey::from_spki_pem(RSA_PSS_PEM)),
        Error::KeyNotForEncryption
    );
}

#[test]
fn malformed_keys_are_invalid() {
    let key = key_2048();
    let pem = key.pem();
    let garbage = [
        String::new(),
        "   ".into(),
        "nope".into(),
        "{".into(),
        "[]".into(),
        "{}".into(),
        "null".into(),
        r#"{"kty":1}"#.into(),
        jwk_with(|m| drop(m.remove("n"))),
        jwk_with(|m| drop(m.remove("e"))),
        jwk_with(|m| drop(m.insert("n".into(), json!("not base64!")))),
        jwk_with(|m| drop(m.insert("n".into(), json!(12)))),
        jwk_with(|m| drop(m.insert("kid".into(), json!(7)))),
        jwk_with(|m| drop(m.insert("use".into(), json!(["enc"])))),
        jwk_with(|m| drop(m.insert("key_ops".into(), json!("encrypt")))),
        // A private JWK must never reach a browser.
        jwk_with(|m| drop(m.insert("d".into(), json!("AQAB")))),
        // Exponents: 1, even, and absurdly large.
        jwk_with(|m| drop(m.insert("e".into(), json!("AQ")))),
        jwk_with(|m| drop(m.insert("e".into(), json!("Ag")))),
        jwk_with(|m| drop(m.insert("e".into(), json!(b64(&[1, 0, 0]))))),
        jwk_with(|m| drop(m.insert("e".into(), json!(b64(&[1, 0, 0, 0, 1]))))),
        jwk_with(|m| drop(m.insert("e".into(), json!(b64(&[1; 9]))))),
        jwk_with(|m| drop(m.insert("e".into(), json!("")))),
        // An even modulus.
        jwk_with(|m| {
            let mut n = key.n.clone();
            *n.last_mut().unwrap() &= 0xfe;
            m.insert("n".into(), json!(b64(&n)));
        }),
        pem.replace("MII", "XXX"),
        pem.replace("-----END PUBLIC KEY-----", ""),
        pem.replace("PUBLIC KEY", "PRIVATE KEY"),
        pem.replace("PUBLIC KEY", "CERTIFICATE"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
        r#"{"keys":"nope"}"#.into(),
    ];
    for text in &garbage {
        assert_eq!(err(VaultKey::parse(text)), Error::InvalidKey, "{text}");
    }
    assert_eq!(err(VaultKey::from_jwk("[1]")), Error::InvalidKey);
    assert_eq!(err(VaultKey::from_jwks("{}", None)), Error::InvalidKey);
    assert_eq!(err(VaultKey::from_jwks("x", None)), Error::InvalidKey);
    assert_eq!(
        err(VaultKey::from_spki_pem(&key.jwk("k1"))),
        Error::InvalidKey
    );
}

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

#[test]
fn jwks_picks_the_named_key() {
    let (a, b) = (key_2048(), other_2048());
    let set = jwks(&[
        a.jwk_value("a"),
        b.jwk_value("b"),
        key_3072().jwk_value("c"),
    ]);
    for kid in ["a", "b", "c"] {
        assert_eq!(
            VaultKey::from_jwks(&set, Some(kid)).unwrap().kid(),
            Some(kid)
        );
    }
    let chosen = VaultKey::from_jwks(&set, Some("a")).unwrap();
    let jwe = seal_payload(&chosen, &card_payload()).unwrap();
    assert!(open_aws(a, &jwe).is_ok());
    assert!(open_aws(b, &jwe).is_err());
    assert_eq!(
        err(VaultKey::from_jwks(&set, Some("zz"))),
        Error::NoEncryptionKey
    );
}

#[test]
fn jwks_named_key_must_still_be_an_encryption_key() {
    let mut sig = key_2048().jwk_value("s");
    sig["use"] = json!("sig");
    let set = jwks(&[sig, other_2048().jwk_value("e")]);
    assert_eq!(
        err(VaultKey::from_jwks(&set, Some("s"))),
        Error::KeyNotForEncryption
    );
    assert_eq!(VaultKey::from_jwks(&set, None).unwrap().kid(), Some("e"));
}

#[test]
fn jwks_without_a_kid_picks_the_newest() {
    let (a, b, c) = (key_2048(), other_2048(), key_3072());
    // No timestamps: the last listed.
    let set = jwks(&[a.jwk_value("a"), b.jwk_value("b")]);
    assert_eq!(VaultKey::from_jwks(&set, None).unwrap().kid(), Some("b"));
    assert_eq!(VaultKey::parse(&set).unwrap().kid(), Some("b"));
    // `iat` decides over position; a key without one counts as oldest.
    let mut newer = a.jwk_value("a");
    newer["iat"] = json!(1_800_000_000);
    let mut older = b.jwk_value("b");
    older["iat"] = json!(1_700_000_000);
    let set = jwks(&[newer.clone(), older.clone(), c.jwk_value("c")]);
    assert_eq!(VaultKey::from_jwks(&set, None).unwrap().kid(), Some("a"));
    // `nbf` stands in for a missing `iat`.
    let mut nbf = c.jwk_value("c");
    nbf["nbf"] = json!(1_900_000_000);
    let set = jwks(&[newer, nbf, older]);
    assert_eq!(VaultKey::from_jwks(&set, None).unwrap().kid(), Some("c"));
}

#[test]
fn jwks_skips_keys_not_meant_for_rsa_oaep_256() {
    let a = key_2048();
    let mut sig = other_2048().jwk_value("sig");
    sig["use"] = json!("sig");
    let mut rs256 = other_2048().jwk_value("rs256");
    rs256.as_object_mut().unwrap().remove("use");
    rs256["alg"] = json!("RS256");
    let mut unmarked = other_2048().jwk_value("unmarked");
    unmarked.as_object_mut().unwrap().remove("use");
    unmarked.as_object_mut().unwrap().remove("alg");
    let ec = json!({"kty": "EC", "use": "enc", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA"});
    let mut alg_only = a.jwk_value("alg-only");
    alg_only.as_object_mut().unwrap().remove("use");
    let set = jwks(&[
        alg_only,
        sig.clone(),
        rs256.clone(),
        unmarked.clone(),
        ec.clone(),
        json!(1),
    ]);
    assert_eq!(
        VaultKey::from_jwks(&set, None).unwrap().kid(),
        Some("alg-only")
    );
    let set = jwks(&[sig, rs256, unmarked, ec]);
    assert_eq!(err(VaultKey::from_jwks(&set, None)), Error::NoEncryptionKey);
    assert_eq!(
        err(VaultKey::from_jwks(&jwks(&[]), None)),
        Error::NoEncryptionKey
    );
}

#[test]
fn jwks_reports_a_broken_newest_key_instead_of_falling_back() {
    let mut small = key_2048().jwk_value("small");
    let public = rsa::PublicKey::from_public_key_pem(RSA_1024_PEM).unwrap();
    small["n"] = json!(b64(&public.n().to_be_bytes()));
    let set = jwks(&[other_2048().jwk_value("ok"), small]);
    assert_eq!(err(VaultKey::from_jwks(&set, None)), Error::KeyTooSmall);
}
