//! Project Wycheproof's vectors on the library's side: its AES-GCM encryption against
//! `aes_gcm_test`, and its seal with the public keys of the RSA-OAEP files, each seal opened by
//! aws-lc-rs (what the vault decrypts with) with the file's private key. The counts go to
//! SECURITY.md's "Conformance" section, which a test holds equal to this run.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::json;

use cardseal::Secret;
use cardseal::jwe::{Payload, VaultKey, encrypt_content, new_jti, seal_payload};

/// Seals per key size.
const SEALS: usize = 1000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one file did, as in vault/tests/wycheproof.rs: every vector run lands in one of the last
/// three counts, or the test fails.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    in_file: Option<usize>,
    run: usize,
    matched: usize,
    refused: usize,
    on_purpose: usize,
}

impl Counts {
    fn row(&self, name: &str) -> String {
        let in_file = self
            .in_file
            .map_or_else(|| "derived".to_owned(), |n| n.to_string());
        format!(
            "| {name} | {in_file} | {} | {} | {} | {} |",
            self.run, self.matched, self.refused, self.on_purpose
        )
    }
}

// ---------------------------------------------------------------------------------------------
// AES-GCM

fn gcm_counts() -> &'static Counts {
    static COUNTS: OnceLock<Counts> = OnceLock::new();
    COUNTS.get_or_init(|| {
        use wycheproof::aead::{TestName, TestSet};
        let set = TestSet::load(TestName::AesGcm).unwrap();
        let mut c = Counts {
            in_file: Some(set.number_of_tests),
            ..Counts::default()
        };
        // The library encrypts with a 256-bit key and a 96-bit IV, by type: the other groups
        // cannot be expressed, so they are not run.
        for group in set
            .test_groups
            .iter()
            .filter(|g| (g.key_size, g.nonce_size, g.tag_size) == (256, 96, 128))
        {
            for test in &group.tests {
                c.run += 1;
                let key: &[u8; 32] = test.key[..].try_into().unwrap();
                let iv: &[u8; 12] = test.nonce[..].try_into().unwrap();
                let mut buf = test.pt.to_vec();
                let tag = encrypt_content(key, iv, &test.aad, &mut buf).unwrap();
                let same = (hex(&buf), hex(&tag)) == (hex(&test.ct), hex(&test.tag));
                if test.result.must_fail() {
                    // An invalid vector is a modified ciphertext or tag: the encryption of its
                    // message must be something else.
                    assert!(!same, "tcId {} ({})", test.tc_id, test.comment);
                    c.refused += 1;
                } else {
                    assert_eq!(
                        (hex(&buf), hex(&tag)),
                        (hex(&test.ct), hex(&test.tag)),
                        "tcId {} ({})",
                        test.tc_id,
                        test.comment
                    );
                    c.matched += 1;
                }
            }
        }
        assert_eq!(c.run, c.matched + c.refused + c.on_purpose);
        c
    })
}

#[test]
fn aes_gcm_encryption_matches_wycheproof() {
    let c = gcm_counts();
    assert_eq!((c.run, c.matched, c.refused), (66, 39, 27), "{c:?}");
}

// ---------------------------------------------------------------------------------------------
// Sealing with Wycheproof's RSA keys

/// Opens a sealed card the way the vault does: aws-lc-rs RSA-OAEP-256, then A256GCM with the
/// protected header as AAD. Returns the payload's JSON.
fn open(key: &OaepPrivateDecryptingKey, jwe: &str) -> Result<Vec<u8>, String> {
    let parts: Vec<&str> = jwe.split('.').collect();
    let [header, ek, iv, ct, tag] = parts[..] else {
        return Err("not five segments".into());
    };
    let unb64 = |s: &str| Base64UrlUnpadded::decode_vec(s).map_err(|e| e.to_string());
    let header_json: serde_json::Value =
        serde_json::from_slice(&unb64(header)?).map_err(|e| e.to_string())?;
    if header_json["alg"] != "RSA-OAEP-256" || header_json["enc"] != "A256GCM" {
        return Err(format!("header {header_json}"));
    }
    let mut out = vec![0u8; key.min_output_size()];
    let cek = key
        .decrypt(&OAEP_SHA256_MGF1SHA256, &unb64(ek)?, &mut out, None)
        .map_err(|_| "RSA-OAEP failed")?;
    if cek.len() != 32 {
        return Err(format!("a {}-byte CEK", cek.len()));
    }
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).map_err(|_| "CEK")?);
    let nonce = Nonce::try_assume_unique_for_key(&unb64(iv)?).map_err(|_| "IV")?;
    let mut in_out = unb64(ct)?;
    let tag = unb64(tag)?;
    if tag.len() != 16 {
        return Err("tag".into());
    }
    in_out.extend(tag);
    let plain = aead
        .open_in_place(nonce, Aad::from(header.as_bytes()), &mut in_out)
        .map_err(|_| "AES-GCM failed")?;
    Ok(plain.to_vec())
}

fn seal_with(name: wycheproof::rsa_oaep::TestName) -> Counts {
    let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
    let group = &set.test_groups[0];
    let private =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&group.pkcs8).unwrap())
            .unwrap();
    let b64 = |x: &[u8]| Base64UrlUnpadded::encode_string(x);
    let strip = |x: &[u8]| {
        x.iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect::<Vec<_>>()
    };
    let jwk = json!({
        "kty": "RSA",
        "use": "enc",
        "alg": "RSA-OAEP-256",
        "kid": "wycheproof",
        "n": b64(&strip(&group.key.n)),
        "e": b64(&strip(&group.key.e)),
    });
    let key = VaultKey::from_jwk(&jwk.to_string()).unwrap();
    assert_eq!(key.bits(), group.key_size);
    let mut c = Counts::default();
    let mut failures = Vec::new();
    for i in 0..SEALS {
        c.run += 1;
        let payload = Payload {
            v: 1,
            number: Some(Secret::new("4242424242424242")),
            exp_month: Some(12),
            exp_year: Some(2030),
            cvc: Some(Secret::new("123")),
            name: None,
            iat: 1_763_860_000 + i64::try_from(i).unwrap(),
            jti: new_jti().unwrap(),
        };
        let jwe = seal_payload(&key, &payload).unwrap();
        match open(&private, &jwe)
            .and_then(|p| serde_json::from_slice::<Payload>(&p).map_err(|e| e.to_string()))
        {
            Ok(opened) if opened == payload => c.matched += 1,
            Ok(_) => failures.push(format!("seal {i}: another payload")),
            Err(e) => failures.push(format!("seal {i}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SEALS} seals with the {}-bit key did not open: {:?}",
        failures.len(),
        group.key_size,
        &failures[..failures.len().min(5)]
    );
    c
}

fn seal_counts() -> &'static [(usize, Counts)] {
    use wycheproof::rsa_oaep::TestName;
    static COUNTS: OnceLock<Vec<(usize, Counts)>> = OnceLock::new();
    // One thread per size: the 3,000 seals and openings are most of this binary's time.
    COUNTS.get_or_init(|| {
        std::thread::scope(|s| {
            [
                (2048, TestName::Rsa2048Sha256Mgf1Sha256),
                (3072, TestName::Rsa3072Sha256Mgf1Sha256),
                (4096, TestName::Rsa4096Sha256Mgf1Sha256),
            ]
            .map(|(bits, name)| (bits, s.spawn(move || seal_with(name))))
            .into_iter()
            .map(|(bits, h)| (bits, h.join().unwrap()))
            .collect()
        })
    })
}

#[test]
fn seals_with_wycheproofs_keys_open_with_aws_lc_rs() {
    for (bits, c) in seal_counts() {
        assert_eq!((c.run, c.matched), (SEALS, SEALS), "{bits} bits");
    }
}

// ---------------------------------------------------------------------------------------------
// The record

const SECURITY_MD: &str = include_str!("../SECURITY.md");

#[test]
fn security_md_records_this_run() {
    let mut want = String::from(
        "| file (library side) | vectors | run | valid: matched | invalid: not produced | refused on purpose |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    want.push_str(&gcm_counts().row("aes_gcm_test (256-bit key, 96-bit IV groups)"));
    want.push('\n');
    for (bits, c) in seal_counts() {
        want.push_str(&c.row(&format!(
            "seal with rsa_oaep_{bits}_sha256_mgf1sha256's public key, opened by aws-lc-rs"
        )));
        want.push('\n');
    }
    let name = "conformance:library";
    let start = format!("<!-- {name} -->\n");
    let got = SECURITY_MD.find(&start).and_then(|from| {
        let from = from + start.len();
        let to = SECURITY_MD[from..].find(&format!("<!-- /{name} -->"))? + from;
        Some(&SECURITY_MD[from..to])
    });
    assert!(
        got == Some(want.as_str()),
        "SECURITY.md's <!-- {name} --> block is not this run's. It should read:\n\n\
         <!-- {name} -->\n{want}<!-- /{name} -->\n"
    );
}
