//! Opening a sealed card: a compact JWE with `RSA-OAEP-256` and `A256GCM`, decrypted with
//! aws-lc-rs (constant-time RSA, unlike the `rsa` crate's decryption).
//!
//! Header problems are reported precisely: a header is public and its checks leak nothing.
//! Every failure after the header (base64, lengths, RSA, AES-GCM, the plaintext's JSON) is the
//! one opaque [`UnsealError::Opaque`], and a failed RSA step continues with a random content
//! key so that RSA and GCM failures also take the same path (RFC 7516 §11.5).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use cardseal::jwe::Payload;
use cardseal::jwe::{ALG, ENC, PAYLOAD_VERSION};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::ids::random_bytes;
use crate::keys::{KeyRing, Lookup};

/// Header parameters that are refused outright: compression (a length oracle), critical
/// extensions we do not implement, and any way for the sender to name its own key.
const FORBIDDEN: &[&str] = &["zip", "crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"];

/// The A256GCM key length (RFC 7518 §5.3).
const CEK_LEN: usize = 32;

/// The A256GCM IV length (RFC 7518 §5.3).
const IV_LEN: usize = 12;

/// The A256GCM authentication tag length (RFC 7518 §5.3).
const TAG_LEN: usize = 16;

/// The longest ciphertext accepted: the default request body limit (8 KiB). A JWE in a body
/// of that size holds less after base64, and a card payload is a few hundred bytes.
const MAX_CIPHERTEXT: usize = 8 * 1024;

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsealError {
    /// The header is unusable; the message says why.
    Header(&'static str),
    /// The key named by `kid` is retired, or was never this vault's.
    KeyExpired,
    /// Anything after the header. Deliberately one value.
    Opaque,
}

/// A decrypted payload together with the `kid` that opened it.
#[derive(Debug)]
pub struct Unsealed {
    /// The plaintext.
    pub payload: Payload,
    /// The key that opened it.
    pub kid: String,
}

/// Checks a protected header's parameters: nothing refused, `alg` and `enc` pinned.
fn check_params(segment: &str) -> Result<Map<String, Value>, UnsealError> {
    const MALFORMED: UnsealError =
        UnsealError::Header("The sealed value's JWE header is malformed.");
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| MALFORMED)?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| MALFORMED)?;
    if FORBIDDEN.iter().any(|p| header.contains_key(*p)) {
        return Err(UnsealError::Header(
            "The sealed value's JWE header has a parameter this vault refuses (zip, crit, jku, jwk, x5u, x5c or x5t).",
        ));
    }
    if header.get("alg").and_then(Value::as_str) != Some(ALG) {
        return Err(UnsealError::Header(
            "The sealed value must use alg RSA-OAEP-256.",
        ));
    }
    if header.get("enc").and_then(Value::as_str) != Some(ENC) {
        return Err(UnsealError::Header(
            "The sealed value must use enc A256GCM.",
        ));
    }
    Ok(header)
}

/// Checks a protected header; returns its `kid`.
fn check_header(segment: &str) -> Result<String, UnsealError> {
    match check_params(segment)?.get("kid").and_then(Value::as_str) {
        Some(kid) if !kid.is_empty() && kid.len() <= 128 => Ok(kid.to_owned()),
        _ => Err(UnsealError::Header(
            "The sealed value's JWE header must name the vault key (kid).",
        )),
    }
}

/// The `kid` of a compact JWE, if its header is acceptable; lets a caller refresh its keys
/// before [`unseal`] when the `kid` is new to it.
pub fn header_kid(jwe: &str) -> Result<String, UnsealError> {
    let header = jwe.split('.').next().unwrap_or_default();
    check_header(header)
}

/// The five segments of a compact JWE, still base64url.
struct Compact<'a> {
    header: &'a str,
    encrypted_key: &'a str,
    iv: &'a str,
    ciphertext: &'a str,
    tag: &'a str,
}

impl<'a> Compact<'a> {
    fn split(jwe: &'a str) -> Result<Self, UnsealError> {
        let segments: Vec<&str> = jwe.split('.').collect();
        let [header, encrypted_key, iv, ciphertext, tag] = segments[..] else {
            return Err(UnsealError::Header(
                "The sealed value is not a compact JWE (five segments).",
            ));
        };
        Ok(Self {
            header,
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }
}

/// Opens a compact JWE with the ring's keys, as of `now`, honouring the rotation `grace`.
pub fn unseal(ring: &KeyRing, jwe: &str, now: i64, grace: i64) -> Result<Unsealed, UnsealError> {
    let jwe = Compact::split(jwe)?;
    let kid = check_header(jwe.header)?;
    let key = match ring.lookup(&kid, now, grace) {
        Lookup::Accepted(key) => key,
        Lookup::Expired | Lookup::Unknown => return Err(UnsealError::KeyExpired),
    };
    let plaintext = decrypt(&key.key, &jwe)?;
    let payload: Payload = serde_json::from_slice(&plaintext).map_err(|_| UnsealError::Opaque)?;
    if payload.v != PAYLOAD_VERSION || payload.jti.is_empty() || payload.jti.len() > 128 {
        return Err(UnsealError::Opaque);
    }
    Ok(Unsealed { payload, kid })
}

/// [`unseal`] with the given key and without its two steps that are the vault's own rather
/// than JWE's: the `kid` lookup and the payload's JSON. The same header check and the same
/// decryption; it returns the plaintext. For the Wycheproof JWE vectors, which carry no `kid`
/// and no card (vault/tests/wycheproof.rs).
#[doc(hidden)]
pub fn unseal_with_key(
    key: &OaepPrivateDecryptingKey,
    jwe: &str,
) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
    let jwe = Compact::split(jwe)?;
    check_params(jwe.header)?;
    decrypt(key, &jwe)
}

/// Everything after the header: one error for every failure.
fn decrypt(
    key: &OaepPrivateDecryptingKey,
    jwe: &Compact<'_>,
) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| UnsealError::Opaque);
    let ek = decode(jwe.encrypted_key)?;
    let iv = decode(jwe.iv)?;
    let mut in_out = Zeroizing::new(decode(jwe.ciphertext)?);
    let tag = decode(jwe.tag)?;
    // Each segment must have exactly its own length. Checking only the sum (ciphertext plus
    // tag) let bytes move between the ciphertext and tag segments, or the whole
    // ciphertext-and-tag sit in one, and still decrypt: a second spelling of the same JWE.
    // These lengths are public, so refusing early leaks nothing; the refusal is still Opaque.
    if ek.len() != key.key_size_bytes()
        || iv.len() != IV_LEN
        || tag.len() != TAG_LEN
        || in_out.is_empty()
        || in_out.len() > MAX_CIPHERTEXT
    {
        return Err(UnsealError::Opaque);
    }

    let mut cek = Zeroizing::new(random_bytes::<CEK_LEN>());
    let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
    if let Ok(plain) = oaep_decrypt(key, &ek, &[], &mut out) {
        if plain.len() == CEK_LEN {
            cek.copy_from_slice(plain);
        }
    }
    // From here on a wrong content key (a failed RSA step) fails exactly like a forged tag.
    let len = open_content(&*cek, &iv, jwe.header.as_bytes(), &mut in_out, &tag)?.len();
    in_out.truncate(len);
    Ok(in_out)
}

/// RSAES-OAEP decryption with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1.2), by aws-lc-rs: the
/// vault's only RSA step. A JWE's encrypted key has the empty label (RFC 7518 §4.3); the
/// Wycheproof tests pass their vectors' labels. `out` holds at least the modulus size.
#[doc(hidden)]
pub fn oaep_decrypt<'o>(
    key: &OaepPrivateDecryptingKey,
    ciphertext: &[u8],
    label: &[u8],
    out: &'o mut [u8],
) -> Result<&'o mut [u8], UnsealError> {
    if ciphertext.len() != key.key_size_bytes() {
        return Err(UnsealError::Opaque);
    }
    key.decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, out, Some(label))
        .map_err(|_| UnsealError::Opaque)
}

/// A256GCM decryption of a JWE's content (RFC 7516 §5.2 step 14): `ciphertext` is replaced by
/// the ciphertext and `tag` and decrypted in place; the plaintext is returned. A key that is not
/// 256 bits, an IV that is not 96 bits or a tag that is not 128 bits is refused before anything
/// is decrypted (and `ciphertext` is left as it was).
#[doc(hidden)]
pub fn open_content<'b>(
    cek: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &'b mut Vec<u8>,
    tag: &[u8],
) -> Result<&'b mut [u8], UnsealError> {
    if cek.len() != CEK_LEN || iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(UnsealError::Opaque);
    }
    let aead = UnboundKey::new(&AES_256_GCM, cek)
        .map(LessSafeKey::new)
        .map_err(|_| UnsealError::Opaque)?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| UnsealError::Opaque)?;
    ciphertext.extend_from_slice(tag);
    aead.open_in_place(nonce, Aad::from(aad), ciphertext)
        .map_err(|_| UnsealError::Opaque)
}
