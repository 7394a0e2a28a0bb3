//! The sealed card: a compact JWE (RFC 7516) that only the vault can open.
//!
//! `alg` is `RSA-OAEP-256` (RSAES-OAEP with SHA-256 and MGF1-SHA-256, RFC 7518 §4.3) and `enc`
//! is `A256GCM`. Each seal draws a fresh 256-bit content-encryption key (CEK) and a 96-bit IV
//! from the platform CSPRNG (the browser's `crypto.getRandomValues` in wasm). The AAD is the
//! ASCII of the base64url protected header, so the header cannot be changed either.
//!
//! The plaintext is the JSON [`Payload`]. It is written into a buffer that is encrypted in
//! place and zeroized on drop, and the CEK is zeroized too, so no clear card data outlives a
//! seal in this module's memory.

mod key;
mod writer;

pub use key::{KeyDocument, VaultKey};

use std::fmt;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::card::{Card, CardInput, Cvc, FieldError, Today};
use crate::{Error, Secret};

/// The payload format version, the `v` member.
pub const PAYLOAD_VERSION: u8 = 1;

/// The only key-management algorithm: the protected header's `alg`, and a vault key's `alg`.
pub const ALG: &str = "RSA-OAEP-256";

/// The content-encryption algorithm of every sealed card: the protected header's `enc`.
pub const ENC: &str = "A256GCM";

/// The plaintext of a sealed card, as the vault decodes it.
///
/// Serialized in DESIGN.md's member order, absent members omitted:
/// `{"v":1,"number":…,"exp_month":…,"exp_year":…,"cvc":…,"name":…,"iat":…,"jti":…}`.
/// A CVC-only seal is `{"v":1,"cvc":…,"iat":…,"jti":…}`. Decoding is strict: unknown members
/// are an error. Zeroized on drop; `Debug` never shows the number, CVC or name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Format version, [`PAYLOAD_VERSION`].
    pub v: u8,
    /// The card number, digits only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<Secret>,
    /// Expiry month, 1 to 12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_month: Option<u8>,
    /// Expiry year, four digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_year: Option<u16>,
    /// The card verification code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvc: Option<Secret>,
    /// The cardholder name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it was sealed, in Unix seconds.
    pub iat: i64,
    /// 128 random bits, base64url without padding (22 characters): the vault's replay guard.
    pub jti: String,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("v", &self.v)
            .field("number", &self.number)
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("cvc", &self.cvc)
            .field("name", &self.name.as_ref().map(|_| "***"))
            .field("iat", &self.iat)
            .field("jti", &self.jti)
            .finish()
    }
}

impl Payload {
    /// The payload of a full card.
    pub fn for_card(card: &Card, iat: i64, jti: String) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            number: Some(Secret::new(card.number.expose())),
            exp_month: Some(card.expiry.month()),
            exp_year: Some(card.expiry.year()),
            cvc: card.cvc.as_ref().map(|c| Secret::new(c.expose())),
            name: card.name.as_ref().map(|n| n.as_str().to_owned()),
            iat,
            jti,
        }
    }

    /// The card it carries, parsed by the same rules as [`Card::parse`], so that a vault
    /// refuses exactly what a form would. Errors come in form order, as `Card::parse` gives them.
    pub fn to_card(&self, today: Today) -> Result<Card, Vec<FieldError>> {
        let input = CardInput {
            number: self.number.clone().unwrap_or_default(),
            // A typed year goes through the same two- or four-digit rule as a typed string.
            exp_month: self.exp_month.map(|m| m.to_string()).unwrap_or_default(),
            exp_year: self.exp_year.map(|y| y.to_string()).unwrap_or_default(),
            cvc: self.cvc.clone(),
            name: self.name.clone(),
        };
        Card::parse(&input, today)
    }

    /// The payload of a CVC-only seal.
    pub fn for_cvc(cvc: &Cvc, iat: i64, jti: String) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            number: None,
            exp_month: None,
            exp_year: None,
            cvc: Some(Secret::new(cvc.expose())),
            name: None,
            iat,
            jti,
        }
    }
}

impl Payload {
    /// Appends the payload as JSON, in member order, absent members omitted: exactly what
    /// `serde_json` writes for it (a test holds them together).
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"v":"#);
        writer::write_int(out, i64::from(self.v));
        if let Some(number) = &self.number {
            member(out, "number");
            writer::write_str(out, number.expose());
        }
        if let Some(month) = self.exp_month {
            member(out, "exp_month");
            writer::write_int(out, month.into());
        }
        if let Some(year) = self.exp_year {
            member(out, "exp_year");
            writer::write_int(out, year.into());
        }
        if let Some(cvc) = &self.cvc {
            member(out, "cvc");
            writer::write_str(out, cvc.expose());
        }
        if let Some(name) = &self.name {
            member(out, "name");
            writer::write_str(out, name);
        }
        member(out, "iat");
        writer::write_int(out, self.iat);
        member(out, "jti");
        writer::write_str(out, &self.jti);
        out.push(b'}');
    }
}

/// `,"name":`
fn member(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A fresh `jti`: 128 bits from the CSPRNG, base64url without padding (22 characters).
///
/// # Errors
/// [`Error::Crypto`] if the platform has no working CSPRNG.
pub fn new_jti() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| Error::Crypto)?;
    Ok(Base64UrlUnpadded::encode_string(&bytes))
}

/// Seals a card for the vault, with a fresh `jti`; `iat` is the current Unix time.
///
/// # Errors
/// [`Error::Crypto`] if randomness or encryption fails.
pub fn seal_card(key: &VaultKey, card: &Card, iat: i64) -> Result<String, Error> {
    seal_payload(key, &Payload::for_card(card, iat, new_jti()?))
}

/// Seals a CVC alone (to re-add it to a saved card), with a fresh `jti`.
///
/// # Errors
/// [`Error::Crypto`] if randomness or encryption fails.
pub fn seal_cvc(key: &VaultKey, cvc: &Cvc, iat: i64) -> Result<String, Error> {
    seal_payload(key, &Payload::for_cvc(cvc, iat, new_jti()?))
}

/// Seals any payload as a compact JWE:
/// `BASE64URL(header).BASE64URL(encrypted CEK).BASE64URL(IV).BASE64URL(ciphertext).BASE64URL(tag)`.
///
/// # Errors
/// [`Error::Crypto`] if randomness or encryption fails. The cause is deliberately not kept.
pub fn seal_payload(key: &VaultKey, payload: &Payload) -> Result<String, Error> {
    let mut buf = Zeroizing::new(Vec::with_capacity(payload_capacity(payload)));
    payload.write_json(&mut buf);

    // CEK and IV in one CSPRNG call: in wasm each call crosses into JavaScript.
    let mut random = Zeroizing::new([0u8; CEK_LEN + IV_LEN]);
    getrandom::fill(random.as_mut_slice()).map_err(|_| Error::Crypto)?;
    let (cek, iv) = random.split_at(CEK_LEN);
    let cek: &[u8; CEK_LEN] = cek.try_into().map_err(|_| Error::Crypto)?;
    let iv: &[u8; IV_LEN] = iv.try_into().map_err(|_| Error::Crypto)?;

    // The OAEP seed comes from the same CSPRNG, drawn by the `rsa` crate.
    let encrypted_key = key.wrap_cek(cek, &mut getrandom::SysRng)?;

    let header = key.protected_header();
    let tag = encrypt_content(cek, iv, header.as_bytes(), &mut buf)?;

    let segments: [&[u8]; 4] = [&encrypted_key, iv, &buf, &tag];
    let mut jwe = String::with_capacity(
        header.len() + segments.iter().map(|s| s.len() * 4 / 3 + 4).sum::<usize>(),
    );
    jwe.push_str(header);
    for segment in segments {
        jwe.push('.');
        jwe.push_str(&Base64UrlUnpadded::encode_string(segment));
    }
    Ok(jwe)
}

/// Bytes of the A256GCM content-encryption key.
const CEK_LEN: usize = 32;
/// Bytes of the GCM IV (RFC 7518 §5.3: 96 bits).
const IV_LEN: usize = 12;

/// A256GCM encryption of a JWE's content in place (RFC 7516 §5.1 step 15), returning the tag:
/// the AES-GCM step of every seal, callable for the Wycheproof vectors (tests/wycheproof.rs).
///
/// # Errors
/// [`Error::Crypto`] if encryption fails.
#[doc(hidden)]
pub fn encrypt_content(
    cek: &[u8; CEK_LEN],
    iv: &[u8; IV_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; 16], Error> {
    let cipher = Aes256Gcm::new_from_slice(cek).map_err(|_| Error::Crypto)?;
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(*iv), aad, buf.into())
        .map_err(|_| Error::Crypto)?;
    Ok(tag.into())
}

/// An upper bound on the JSON size, so that the buffer never grows (a grown `Vec` would leave
/// a copy of the plaintext behind in freed memory, unzeroized).
fn payload_capacity(payload: &Payload) -> usize {
    // Member names, numbers and punctuation take at most 107 bytes (`v` of three digits,
    // `iat` of twenty); a string escapes to at most 6 bytes per input byte (`\u00XX`).
    let strings = [
        payload.number.as_ref().map_or(0, Secret::len),
        payload.cvc.as_ref().map_or(0, Secret::len),
        payload.name.as_ref().map_or(0, String::len),
        payload.jti.len(),
    ];
    160 + strings.iter().sum::<usize>() * 6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Payload {
        Payload {
            v: 1,
            number: Some(Secret::new("4242424242424242")),
            exp_month: Some(12),
            exp_year: Some(2030),
            cvc: Some(Secret::new("123")),
            name: Some("A B".into()),
            iat: 1_763_860_000,
            jti: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        }
    }

    #[test]
    fn payload_json_has_design_md_shape() {
        assert_eq!(
            serde_json::to_string(&full()).unwrap(),
            r#"{"v":1,"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123","name":"A B","iat":1763860000,"jti":"AAAAAAAAAAAAAAAAAAAAAA"}"#
        );
        let cvc_only = Payload::for_cvc(&Cvc::parse("1234", None).unwrap(), 5, "j".into());
        assert_eq!(
            serde_json::to_string(&cvc_only).unwrap(),
            r#"{"v":1,"cvc":"1234","iat":5,"jti":"j"}"#
        );
    }

    #[test]
    fn a_payload_parses_to_the_card_it_was_made_from() {
        let today = Today::from_unix(1_763_860_000);
        let card = full().to_card(today).unwrap();
        assert_eq!(card.number.expose(), "4242424242424242");
        assert_eq!((card.expiry.month(), card.expiry.year()), (12, 2030));
        assert_eq!(
            Payload::for_card(&card, 1, "j".into()).to_card(today),
            Ok(card)
        );
        let errors = Payload::for_cvc(&Cvc::parse("123", None).unwrap(), 1, "j".into())
            .to_card(today)
            .unwrap_err();
        assert_eq!(errors[0].code, Error::IncompleteNumber);
    }

    #[test]
    fn payload_decoding_is_strict() {
        let json = serde_json::to_string(&full()).unwrap();
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), full());
        let extra = json.replacen("{", r#"{"x":1,"#, 1);
        assert!(serde_json::from_str::<Payload>(&extra).is_err());
        assert!(serde_json::from_str::<Payload>(r#"{"v":1,"cvc":"1","iat":1}"#).is_err());
        assert!(
            serde_json::from_str::<Payload>(r#"{"v":1,"cvc":"1","iat":1,"jti":"j"}"#)
                .unwrap()
                .number
                .is_none()
        );
    }

    #[test]
    fn payload_debug_hides_card_data() {
        let debug = format!("{:?}", full());
        assert!(!debug.contains("4242"), "{debug}");
        assert!(!debug.contains("123\""), "{debug}");
        assert!(!debug.contains("A B"), "{debug}");
    }

    #[test]
    fn jti_is_22_base64url_chars_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let jti = new_jti().unwrap();
            assert_eq!(jti.len(), 22);
            assert!(
                jti.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(Base64UrlUnpadded::decode_vec(&jti).unwrap().len(), 16);
            assert!(seen.insert(jti));
        }
    }

    fn written(p: &Payload) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload_capacity(p));
        let capacity = out.capacity();
        p.write_json(&mut out);
        assert_eq!(out.capacity(), capacity, "the buffer grew");
        out
    }

    #[test]
    fn payload_json_is_serde_jsons_and_never_outgrows_its_buffer() {
        let mut worst = full();
        worst.v = u8::MAX;
        worst.exp_month = Some(u8::MAX);
        worst.exp_year = Some(u16::MAX);
        worst.iat = i64::MIN;
        worst.name = Some("\u{1}".repeat(200));
        worst.cvc = Some(Secret::new("\u{1}\u{1}\u{1}\u{1}"));
        worst.jti = "\"".repeat(22);
        let mut cvc_only = Payload::for_cvc(&Cvc::parse("123", None).unwrap(), 1, "j".into());
        cvc_only.iat = i64::MAX;
        for p in [full(), worst, cvc_only] {
            assert_eq!(written(&p), serde_json::to_vec(&p).unwrap());
        }
    }
}
