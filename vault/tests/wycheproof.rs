//! Project Wycheproof's vectors through the vault's own decryption (vault/src/unseal.rs):
//! RSA-OAEP through [`unseal::oaep_decrypt`], AES-GCM through [`unseal::open_content`], and
//! the JWE file through [`unseal::unseal_with_key`] (the whole unseal but the `kid` lookup and
//! the card JSON). The counts go to SECURITY.md's "Conformance" section, which a test holds
//! equal to this run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cardseal_vault::unseal::{self, UnsealError};
use rsa::BoxedUint;
use rsa::pkcs8::EncodePrivateKey;
use serde_json::Value;
use wycheproof::{HashFunction, Mgf, TestResult};

/// What one file did: every vector lands in exactly one of the last three counts, or the test
/// fails.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Vectors in the file.
    in_file: usize,
    /// Vectors run (the rest are other algorithms the issue leaves out).
    run: usize,
    /// Valid (or acceptable) vectors that opened to their message.
    opened: usize,
    /// Invalid vectors refused with the uniform error.
    refused: usize,
    /// Valid (or acceptable) vectors refused by design.
    on_purpose: usize,
}

impl Counts {
    fn row(&self, name: &str) -> String {
        let in_file = match self.in_file {
            0 => "derived".to_owned(),
            n => n.to_string(),
        };
        format!(
            "| {name} | {in_file} | {} | {} | {} | {} |",
            self.run, self.opened, self.refused, self.on_purpose
        )
    }

    fn check(&self) {
        assert_eq!(
            self.run,
            self.opened + self.refused + self.on_purpose,
            "{self:?}"
        );
        assert!(self.run > 0, "{self:?}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// RSA-OAEP

/// The RSA-OAEP files the issue names, and the vault's key loading: PKCS#8 into aws-lc-rs,
/// exactly as `keys.rs` opens a stored key.
fn rsa_file(name: wycheproof::rsa_oaep::TestName) -> Counts {
    let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
    let mut counts = Counts {
        in_file: set.number_of_tests,
        ..Counts::default()
    };
    for group in &set.test_groups {
        if group.hash != HashFunction::Sha2_256
            || group.mgf != Mgf::Mgf1
            || group.mgf_hash != HashFunction::Sha2_256
        {
            continue;
        }
        counts.run += group.tests.len();
        let key = match PrivateDecryptingKey::from_pkcs8(&group.pkcs8) {
            Ok(key) => OaepPrivateDecryptingKey::new(key).unwrap(),
            Err(_) => {
                // aws-lc-rs loads 2048 to 8192 bits only, and the vault makes 2048-bit keys.
                assert!(
                    group.key_size < 2048,
                    "a {}-bit key did not load",
                    group.key_size
                );
                assert!(group.tests.iter().all(|t| !t.result.must_fail()));
                counts.on_purpose += group.tests.len();
                continue;
            }
        };
        assert_eq!(key.key_size_bits(), group.key_size);
        let mut out = vec![0u8; key.min_output_size()];
        for test in &group.tests {
            let got = unseal::oaep_decrypt(&key, &test.ct, &test.label, &mut out);
            match (test.result, got) {
                (TestResult::Invalid, Err(e)) => {
                    assert_eq!(e, UnsealError::Opaque, "tcId {}", test.tc_id);
                    counts.refused += 1;
                }
                (TestResult::Invalid, Ok(m)) => panic!(
                    "tcId {} ({}) is invalid but decrypted to {}",
                    test.tc_id,
                    test.comment,
                    hex(m)
                ),
                (_, Ok(m)) => {
                    assert_eq!(hex(m), hex(&test.pt), "tcId {}", test.tc_id);
                    counts.opened += 1;
                }
                (TestResult::Acceptable, Err(e)) => {
                    // Acceptable: a ciphertext that is a small integer. Refusing it is allowed;
                    // then it must be the same error as any other.
                    assert_eq!(e, UnsealError::Opaque, "tcId {}", test.tc_id);
                    counts.on_purpose += 1;
                }
                (TestResult::Valid, Err(_)) => panic!(
                    "tcId {} ({}, label {}) is valid but did not decrypt",
                    test.tc_id,
                    test.comment,
                    hex(&test.label)
                ),
            }
        }
    }
    counts.check();
    counts
}

fn rsa_counts() -> &'static [(&'static str, Counts)] {
    use wycheproof::rsa_oaep::TestName;
    static COUNTS: OnceLock<Vec<(&str, Counts)>> = OnceLock::new();
    COUNTS.get_or_init(|| {
        [
            (
                "rsa_oaep_2048_sha256_mgf1sha256",
                TestName::Rsa2048Sha256Mgf1Sha256,
            ),
            (
                "rsa_oaep_3072_sha256_mgf1sha256",
                TestName::Rsa3072Sha256Mgf1Sha256,
            ),
            (
                "rsa_oaep_4096_sha256_mgf1sha256",
                TestName::Rsa4096Sha256Mgf1Sha256,
            ),
            (
                "rsa_oaep_misc (SHA-256 / MGF1-SHA-256 groups)",
                TestName::RsaMisc,
            ),
        ]
        .into_iter()
        .map(|(label, name)| (label, rsa_file(name)))
        .collect()
    })
}

#[test]
fn rsa_oaep_vectors_decrypt_with_the_vaults_function_or_fail_uniformly() {
    let counts = rsa_counts();
    // Wycheproof's labelled vectors are valid only with their label: the label reaches
    // aws-lc-rs (a function that dropped it would fail them).
    for (name, c) in counts {
        assert!(c.opened >= 18 || name.contains("misc"), "{name}: {c:?}");
        assert!(c.refused >= 19 || name.contains("misc"), "{name}: {c:?}");
    }
}

#[test]
fn rsa_oaep_labels_are_checked() {
    // The same labelled vector, with its label and without it: only the first decrypts.
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256Mgf1Sha256).unwrap();
    let group = &set.test_groups[0];
    let key =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&group.pkcs8).unwrap())
            .unwrap();
    let mut out = vec![0u8; key.min_output_size()];
    let labelled: Vec<_> = group
        .tests
        .iter()
        .filter(|t| !t.label.is_empty() && t.result == TestResult::Valid)
        .collect();
    assert!(labelled.len() >= 5, "{}", labelled.len());
    for t in labelled {
        assert_eq!(
            unseal::oaep_decrypt(&key, &t.ct, &t.label, &mut out).map(|m| m.to_vec()),
            Ok(t.pt.to_vec())
        );
        assert_eq!(
            unseal::oaep_decrypt(&key, &t.ct, &[], &mut out).map(|m| m.to_vec()),
            Err(UnsealError::Opaque),
            "tcId {} opened without its label",
            t.tc_id
        );
    }
}

// ---------------------------------------------------------------------------------------------
// AES-GCM

const GCM: (usize, usize, usize) = (256, 96, 128);

struct GcmCounts {
    file: Counts,
    /// Valid vectors with bytes moved between ciphertext and tag (a 15- or 17-byte tag).
    moved: Counts,
}

fn gcm_counts() -> &'static GcmCounts {
    static COUNTS: OnceLock<GcmCounts> = OnceLock::new();
    COUNTS.get_or_init(gcm_run)
}

fn gcm_run() -> GcmCounts {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).unwrap();
    let mut file = Counts {
        in_file: set.number_of_tests,
        ..Counts::default()
    };
    let mut moved = Counts::default();
    for group in &set.test_groups {
        let ours = (group.key_size, group.nonce_size, group.tag_size) == GCM;
        for test in &group.tests {
            file.run += 1;
            let mut buf = test.ct.to_vec();
            let got = unseal::open_content(&test.key, &test.nonce, &test.aad, &mut buf, &test.tag)
                .map(|m| m.to_vec());
            match (ours, test.result.must_fail(), got) {
                (true, false, Ok(m)) => {
                    assert_eq!(hex(&m), hex(&test.pt), "tcId {}", test.tc_id);
                    file.opened += 1;
                }
                (true, true, Err(e)) => {
                    assert_eq!(e, UnsealError::Opaque, "tcId {}", test.tc_id);
                    file.refused += 1;
                }
                (false, must_fail, Err(e)) => {
                    assert_eq!(e, UnsealError::Opaque, "tcId {}", test.tc_id);
                    // Refused before any decryption: the buffer was never touched (a real
                    // attempt appends the tag to it and decrypts in place).
                    assert_eq!(buf, *test.ct, "tcId {} reached decryption", test.tc_id);
                    if must_fail {
                        file.refused += 1;
                    } else {
                        file.on_purpose += 1;
                    }
                }
                (_, _, got) => panic!(
                    "tcId {} ({}, key {} IV {} tag {} bits, {:?}) gave {got:?}",
                    test.tc_id,
                    test.comment,
                    group.key_size,
                    group.nonce_size,
                    group.tag_size,
                    test.result
                ),
            }
            // The same bytes split differently between the segments: a lenient tag length
            // would open them.
            if ours && !test.result.must_fail() {
                let joined = [&test.ct[..], &test.tag[..]].concat();
                let n = test.ct.len();
                let mut splits = vec![n + 1]; // a 15-byte tag
                if n > 0 {
                    splits.push(n - 1); // a 17-byte tag
                }
                for at in splits {
                    moved.run += 1;
                    let (ct, tag) = joined.split_at(at);
                    let mut buf = ct.to_vec();
                    let got =
                        unseal::open_content(&test.key, &test.nonce, &test.aad, &mut buf, tag)
                            .map(|m| m.to_vec());
                    assert_eq!(
                        got,
                        Err(UnsealError::Opaque),
                        "tcId {} with a {}-byte tag",
                        test.tc_id,
                        tag.len()
                    );
                    assert_eq!(buf, ct, "tcId {} reached decryption", test.tc_id);
                    moved.refused += 1;
                }
            }
        }
    }
    file.check();
    moved.check();
    GcmCounts { file, moved }
}

#[test]
fn aes_gcm_vectors_open_with_the_vaults_payload_decryption() {
    let c = gcm_counts();
    // The 256-bit key, 96-bit IV, 128-bit tag group: 39 valid, 27 invalid.
    assert_eq!(
        (c.file.opened, c.file.refused >= 27),
        (39, true),
        "{:?}",
        c.file
    );
}

// ---------------------------------------------------------------------------------------------
// JWE

const JWE_FILE: &str = "json_web_encryption_test.json";

/// The directory holding Wycheproof's JWE file: `$CARDSEAL_WYCHEPROOF_DIR`, else
/// `../shared/data/wycheproof` beside the repository, else `/work/shared/data/wycheproof`.
fn jwe_file() -> Result<PathBuf, Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("CARDSEAL_WYCHEPROOF_DIR") {
        tried.push(PathBuf::from(dir).join(JWE_FILE));
    }
    tried.push(root.join("../shared/data/wycheproof").join(JWE_FILE));
    tried.push(PathBuf::from("/work/shared/data/wycheproof").join(JWE_FILE));
    tried.iter().find(|p| p.is_file()).cloned().ok_or(tried)
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// A private JWK as aws-lc-rs loads it (PKCS#8, as the vault stores its keys).
fn jwk_key(jwk: &Value) -> OaepPrivateDecryptingKey {
    let int = |name: &str| BoxedUint::from_be_slice_vartime(&b64(jwk[name].as_str().unwrap()));
    let key =
        rsa::PrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
            .unwrap();
    let der = key.to_pkcs8_der().unwrap();
    OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(der.as_bytes()).unwrap())
        .unwrap()
}

/// A vault key for the groups whose key is not RSA (the vault never holds one): the
/// Wycheproof RSA-OAEP 2048-bit key.
fn stand_in_key() -> OaepPrivateDecryptingKey {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256Mgf1Sha256).unwrap();
    OaepPrivateDecryptingKey::new(
        PrivateDecryptingKey::from_pkcs8(&set.test_groups[0].pkcs8).unwrap(),
    )
    .unwrap()
}

/// Why the header check refuses a JWE, worked out here from the header itself (not by calling
/// the vault), with the vault's exact error; `None` for the one shape it lets through.
fn expected_refusal(jwe: &Value) -> Option<(String, UnsealError)> {
    let Some(text) = jwe.as_str() else {
        return Some((
            "JSON serialization (the vault takes compact JWEs only)".into(),
            UnsealError::Header("The sealed value is not a compact JWE (five segments)."),
        ));
    };
    if text.split('.').count() != 5 {
        return Some((
            "not five segments".into(),
            UnsealError::Header("The sealed value is not a compact JWE (five segments)."),
        ));
    }
    let malformed = || {
        Some((
            "header not base64url JSON".into(),
            UnsealError::Header("The sealed value's JWE header is malformed."),
        ))
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(text.split('.').next().unwrap_or_default()) else {
        return malformed();
    };
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return malformed();
    };
    let forbidden = ["zip", "crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"];
    if let Some(p) = forbidden.iter().find(|p| header.contains_key(**p)) {
        return Some((
            format!("`{p}` in the header"),
            UnsealError::Header(
                "The sealed value's JWE header has a parameter this vault refuses (zip, crit, jku, jwk, x5u, x5c or x5t).",
            ),
        ));
    }
    let alg = header.get("alg").and_then(Value::as_str);
    let enc = header.get("enc").and_then(Value::as_str);
    if alg != Some("RSA-OAEP-256") {
        let why = match alg {
            Some("RSA-OAEP") => "alg RSA-OAEP (OAEP with SHA-1)".to_owned(),
            Some("RSA1_5") => "alg RSA1_5 (PKCS #1 v1.5, a padding oracle)".to_owned(),
            Some(other) => format!("alg {other} (not RSA-OAEP-256)"),
            None => "no alg".to_owned(),
        };
        return Some((
            why,
            UnsealError::Header("The sealed value must use alg RSA-OAEP-256."),
        ));
    }
    if enc != Some("A256GCM") {
        return Some((
            format!("enc {} (not A256GCM)", enc.unwrap_or("missing")),
            UnsealError::Header("The sealed value must use enc A256GCM."),
        ));
    }
    None
}

struct JweRun {
    file: Counts,
    /// Tampered copies of the one vector the check lets through.
    tampered: Counts,
    /// Valid vectors refused by design: reason → tcIds.
    refused_valid: BTreeMap<String, Vec<usize>>,
}

fn jwe_run() -> Option<&'static JweRun> {
    static RUN: OnceLock<Option<JweRun>> = OnceLock::new();
    RUN.get_or_init(|| match jwe_file() {
        Ok(path) => Some(jwe_vectors(&path)),
        Err(tried) => {
            let tried: Vec<_> = tried.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "\n!!! SKIPPED: Wycheproof's JWE vectors ({JWE_FILE}) were not found; tried {}.\n\
                 !!! Set CARDSEAL_WYCHEPROOF_DIR to the directory that holds it.\n",
                tried.join(", ")
            );
            None
        }
    })
    .as_ref()
}

fn jwe_vectors(path: &Path) -> JweRun {
    let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let stand_in = stand_in_key();
    let mut counts = Counts {
        in_file: usize::try_from(file["numberOfTests"].as_u64().unwrap()).unwrap(),
        ..Counts::default()
    };
    let mut refused_valid: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut tampered = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        let private = &group["private"];
        let own = (private["kty"] == "RSA").then(|| jwk_key(private));
        let key = own.as_ref().unwrap_or(&stand_in);
        for test in group["tests"].as_array().unwrap() {
            counts.run += 1;
            let id = usize::try_from(test["tcId"].as_u64().unwrap()).unwrap();
            let valid = test["result"] != "invalid";
            let jwe = &test["jwe"];
            let text = jwe.as_str().map_or_else(|| jwe.to_string(), str::to_owned);
            let got = unseal::unseal_with_key(key, &text).map(|p| p.to_vec());
            match expected_refusal(jwe) {
                Some((why, error)) => {
                    assert_eq!(got, Err(error), "tcId {id}: {why}");
                    if valid {
                        refused_valid.entry(why).or_default().push(id);
                        counts.on_purpose += 1;
                    } else {
                        counts.refused += 1;
                    }
                }
                None if valid => {
                    let pt = test["pt"].as_str().unwrap();
                    assert_eq!(got.map(|p| hex(&p)), Ok(pt.to_owned()), "tcId {id}");
                    assert!(own.is_some(), "tcId {id} opened with the stand-in key");
                    tampered.push(tamper(key, &text, pt));
                    counts.opened += 1;
                }
                None => {
                    assert_eq!(got, Err(UnsealError::Opaque), "tcId {id}");
                    counts.refused += 1;
                }
            }
        }
    }
    counts.check();
    assert_eq!(counts.run, counts.in_file);
    // Exactly one vector is RSA-OAEP-256 + A256GCM: tcId 90, "acceptsA256GCM".
    assert_eq!(tampered.len(), 1);
    JweRun {
        file: counts,
        tampered: tampered[0],
        refused_valid,
    }
}

/// The one vector that passes the header check, with its header (or another segment) changed.
fn tamper(key: &OaepPrivateDecryptingKey, jwe: &str, pt: &str) -> Counts {
    let segments: Vec<&str> = jwe.split('.').collect();
    let header = String::from_utf8(b64(segments[0])).unwrap();
    assert_eq!(header, r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
    let with_header = |h: &str| {
        let mut s = segments.clone();
        let h = URL_SAFE_NO_PAD.encode(h);
        s[0] = &h;
        s.join(".")
    };
    let flip = |i: usize| {
        let mut s: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        let mut bytes = b64(&s[i]);
        bytes[0] ^= 1;
        s[i] = URL_SAFE_NO_PAD.encode(bytes);
        s.join(".")
    };
    const FORBIDDEN: UnsealError = UnsealError::Header(
        "The sealed value's JWE header has a parameter this vault refuses (zip, crit, jku, jwk, x5u, x5c or x5t).",
    );
    let cases: Vec<(String, UnsealError)> = vec![
        // Same parameters, other bytes: the AAD changes, so the tag fails.
        (
            with_header(r#"{"enc":"A256GCM","alg":"RSA-OAEP-256"}"#),
            UnsealError::Opaque,
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256", "enc":"A256GCM"}"#),
            UnsealError::Opaque,
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"x"}"#),
            UnsealError::Opaque,
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","cty":"JWT"}"#),
            UnsealError::Opaque,
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","zip":"DEF"}"#),
            FORBIDDEN,
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","crit":["exp"],"exp":1}"#),
            FORBIDDEN,
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","jku":"https://x.invalid/"}"#),
            FORBIDDEN,
        ),
        (
            with_header(r#"{"alg":"rsa-oaep-256","enc":"A256GCM"}"#),
            UnsealError::Header("The sealed value must use alg RSA-OAEP-256."),
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
            UnsealError::Header("The sealed value must use alg RSA-OAEP-256."),
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256","enc":"A128GCM"}"#),
            UnsealError::Header("The sealed value must use enc A256GCM."),
        ),
        (
            with_header(r#"{"alg":"RSA-OAEP-256"}"#),
            UnsealError::Header("The sealed value must use enc A256GCM."),
        ),
        (
            with_header(r#"["RSA-OAEP-256","A256GCM"]"#),
            UnsealError::Header("The sealed value's JWE header is malformed."),
        ),
        (
            format!("{}={}", segments[0], &jwe[segments[0].len()..]),
            UnsealError::Header("The sealed value's JWE header is malformed."),
        ),
        (
            format!("{jwe}."),
            UnsealError::Header("The sealed value is not a compact JWE (five segments)."),
        ),
        (flip(1), UnsealError::Opaque),
        (flip(2), UnsealError::Opaque),
        (flip(3), UnsealError::Opaque),
        (flip(4), UnsealError::Opaque),
    ];
    let mut counts = Counts::default();
    // The untouched vector opens: the refusals below are the changes', not the key's.
    assert_eq!(
        unseal::unseal_with_key(key, jwe).map(|p| hex(&p)),
        Ok(pt.to_owned())
    );
    for (case, want) in cases {
        counts.run += 1;
        assert_eq!(
            unseal::unseal_with_key(key, &case).map(|p| p.to_vec()),
            Err(want),
            "{case}"
        );
        counts.refused += 1;
    }
    counts.check();
    counts
}

#[test]
fn jwe_vectors_pass_the_header_check_only_as_rsa_oaep_256_with_a256gcm() {
    let Some(run) = jwe_run() else { return };
    assert_eq!(run.file.opened, 1);
    // Wycheproof's valid RSA-OAEP (SHA-1) + A256GCM vector is among the refused.
    assert!(
        run.refused_valid
            .iter()
            .any(|(why, ids)| why.starts_with("alg RSA-OAEP ") && ids.contains(&84)),
        "{:?}",
        run.refused_valid
    );
    assert!(run.tampered.refused >= 18);
}

// ---------------------------------------------------------------------------------------------
// The record

const SECURITY_MD: &str = include_str!("../../SECURITY.md");

/// The text between `<!-- {name} -->` and `<!-- /{name} -->` in SECURITY.md.
fn block(name: &str) -> Option<&'static str> {
    let start = format!("<!-- {name} -->\n");
    let end = format!("<!-- /{name} -->");
    let from = SECURITY_MD.find(&start)? + start.len();
    let to = SECURITY_MD[from..].find(&end)? + from;
    Some(&SECURITY_MD[from..to])
}

fn expect_block(name: &str, want: &str, skip: impl Fn(&str) -> bool) {
    let got = block(name).unwrap_or_default();
    let keep = |s: &str| {
        s.lines()
            .filter(|l| !skip(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        keep(got) == keep(want),
        "SECURITY.md's <!-- {name} --> block is not this run's. It should read:\n\n\
         <!-- {name} -->\n{want}<!-- /{name} -->\n"
    );
}

#[test]
fn security_md_records_this_run() {
    let mut table = String::from(
        "| file (vault side) | vectors | run | valid: opened | invalid: refused | valid: refused on purpose |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (name, c) in rsa_counts() {
        table.push_str(&c.row(name));
        table.push('\n');
    }
    let gcm = gcm_counts();
    table.push_str(&gcm.file.row("aes_gcm_test"));
    table.push('\n');
    table.push_str(
        &gcm.moved.row(
            "aes_gcm_test's valid 96-bit-IV vectors, one byte moved between ciphertext and tag",
        ),
    );
    table.push('\n');
    let jwe = jwe_run();
    let mut refused = String::new();
    if let Some(run) = jwe {
        table.push_str(&run.file.row(JWE_FILE.trim_end_matches(".json")));
        table.push('\n');
        table.push_str(
            &run.tampered
                .row("json_web_encryption_test tcId 90, tampered"),
        );
        table.push('\n');
        for (why, ids) in &run.refused_valid {
            let ids: Vec<String> = ids.iter().map(usize::to_string).collect();
            refused.push_str(&format!("- {why}: tcId {}\n", ids.join(", ")));
        }
    }
    // The timing figures cannot come from a test (no timed tests); the benchmark writes them.
    assert!(
        block("conformance:timing").is_some_and(|b| b.starts_with(
            "Measured by `cargo bench -p cardseal-vault --bench unseal_timing -- --record` on "
        )),
        "SECURITY.md's timing block is not the benchmark's: run it with --record"
    );
    let is_jwe = |l: &str| jwe.is_none() && l.contains("json_web_encryption");
    expect_block("conformance:vault", &table, is_jwe);
    if jwe.is_some() {
        expect_block("conformance:jwe-refused", &refused, |_| false);
    }
}
