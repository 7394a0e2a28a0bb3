//! Importing the vault's RSA public key from a JWK, a JWKS or a PEM.
//!
//! A JWK or JWKS arrives as a [`KeyDocument`]: any serde deserializer reads it, so the wasm
//! reads a JS object straight from `JsValue` (serde-wasm-bindgen) and native callers read
//! JSON text (`serde_json`), with no JSON text in between in the browser.

use std::cell::Cell;
use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::pkcs1::{self, der::Decode};
use rsa::pkcs8::SubjectPublicKeyInfoRef;
use rsa::{BoxedUint, Oaep, PublicKey};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{ALG, ENC, writer};
use crate::Error;

/// How deep arrays and objects may nest in a key document: `serde_json`'s limit (its 128th
/// level is an error), so a JS object and its JSON text get the same verdict, and a cyclic JS
/// object ends.
const MAX_DEPTH: u32 = 127;

/// Smallest modulus accepted, in bits (NIST SP 800-131A: 2048 through 2030).
const MIN_BITS: usize = 2048;
/// Largest modulus accepted, in bits; bigger keys are unusual and only cost the shopper time.
const MAX_BITS: usize = 8192;
/// Public exponents at or above this are refused: real keys use 65537, and a huge exponent
/// turns every seal into a denial of service.
const MAX_EXPONENT: u64 = 1 << 32;

/// The vault's RSA public key, checked and ready to seal with.
///
/// Build it once with [`VaultKey::parse`] (or the format-specific constructors) and reuse it for
/// every seal: import does all the checking and the per-key precomputation.
#[derive(Clone)]
pub struct VaultKey {
    kid: Option<String>,
    bits: usize,
    /// The `rsa` crate's key: the modulus and an exponent that is odd, at least 3, below 2^32.
    key: PublicKey,
    /// The base64url protected header. It depends only on `kid`, so it is encoded once.
    protected: String,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl VaultKey {
    /// Imports one RSA public key given as a JWK (RFC 7517).
    ///
    /// The JWK must have `kty: "RSA"`; if it has `use`, it must be `enc`; if it has `alg`, it
    /// must be `RSA-OAEP-256`; if it has `key_ops`, they must include `encrypt` or `wrapKey`.
    /// A JWK with private members (`d` …) is refused with [`Error::InvalidKey`].
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for malformed JSON or members, [`Error::UnsupportedKey`] for a
    /// non-RSA key, [`Error::KeyNotForEncryption`] for a signing key or another algorithm, and
    /// [`Error::KeyTooSmall`] under 2048 bits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_jwk(jwk: &str) -> Result<Self, Error> {
        Self::from_typed_jwk(KeyDocument::from_json(jwk)?.object()?)
    }

    /// Imports the encryption key from a JWKS (`{"keys": [...]}`).
    ///
    /// With `kid`, the key with that `kid` is taken and must pass every check of
    /// [`VaultKey::from_jwk`]. Without it, the candidates are the RSA keys whose `use` is `enc`
    /// (or that have no `use` but `alg: "RSA-OAEP-256"`), whose `alg`, if any, is
    /// `RSA-OAEP-256`. Of these the newest wins: the one with the greatest numeric `iat` (or,
    /// lacking `iat`, `nbf`); keys without either count as older than keys with one, and among
    /// equals the one listed last wins (a vault appends the key it rotates in).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when the text is not a JWKS; [`Error::NoEncryptionKey`] when no
    /// key qualifies or none has the named `kid`; otherwise the chosen key's own import error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_jwks(jwks: &str, kid: Option<&str>) -> Result<Self, Error> {
        Self::from_typed_jwks(&KeyDocument::from_json(jwks)?.object()?.keys, kid)
    }

    /// Imports an RSA public key from PEM: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1
    /// (`BEGIN RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for malformed PEM/DER or another PEM label (private keys and
    /// certificates included), [`Error::UnsupportedKey`] for an SPKI of another algorithm (EC,
    /// Ed25519 …), [`Error::KeyNotForEncryption`] for an RSASSA-PSS key, and
    /// [`Error::KeyTooSmall`] under 2048 bits.
    pub fn from_spki_pem(pem: &str) -> Result<Self, Error> {
        let (label, der) =
            pkcs1::pem::decode_vec(pem.trim().as_bytes()).map_err(|_| Error::InvalidKey)?;
        match label {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(&der, None),
            _ => Err(Error::InvalidKey),
        }
    }

    /// Imports a key in any supported form, told apart by its first character: a JWK or JWKS
    /// (JSON, with the newest encryption key chosen from a JWKS) or PEM.
    ///
    /// # Errors
    /// As [`VaultKey::from_jwk`], [`VaultKey::from_jwks`] and [`VaultKey::from_spki_pem`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn parse(key: &str) -> Result<Self, Error> {
        let key = key.trim();
        if key.starts_with("-----BEGIN") {
            return Self::from_spki_pem(key);
        }
        Self::from_document(&KeyDocument::from_json(key)?)
    }

    /// Imports a key from a JWK or a JWKS already read into a [`KeyDocument`] (the newest
    /// encryption key of a JWKS, as [`VaultKey::from_jwks`] without `kid`).
    ///
    /// # Errors
    /// As [`VaultKey::from_jwk`] and [`VaultKey::from_jwks`].
    pub fn from_document(doc: &KeyDocument) -> Result<Self, Error> {
        let any = doc.object()?;
        match any.keys {
            Member::Absent => Self::from_typed_jwk(any),
            ref keys => Self::from_typed_jwks(keys, None),
        }
    }

    /// The key id the vault gave this key, sent as the JWE header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// RSAES-OAEP with SHA-256, MGF1-SHA-256 and an empty label (`RSA-OAEP-256`) of `cek`:
    /// the JWE Encrypted Key, by the `rsa` crate, its seed from `rng`.
    pub(crate) fn wrap_cek<R>(&self, cek: &[u8], rng: &mut R) -> Result<Vec<u8>, Error>
    where
        R: rsa::rand_core::TryCryptoRng + ?Sized,
    {
        self.key
            .encrypt(rng, Oaep::<sha2::Sha256>::new(), cek)
            .map_err(|_| Error::Crypto)
    }

    /// The base64url-encoded protected header, which is also the AAD.
    pub(crate) fn protected_header(&self) -> &str {
        &self.protected
    }

    /// From a JWKS's `keys`: a list, whose entries that are not objects are skipped.
    fn from_typed_jwks(keys: &Member, kid: Option<&str>) -> Result<Self, Error> {
        let Member::List(keys) = keys else {
            return Err(Error::InvalidKey);
        };
        let mut jwks = keys.iter().filter_map(|e| match e {
            Member::Map(jwk) => Some(jwk.as_ref()),
            _ => None,
        });
        if let Some(kid) = kid {
            let jwk = jwks
                .rfind(|k| k.kid.as_str() == Some(kid))
                .ok_or(Error::NoEncryptionKey)?;
            return Self::from_typed_jwk(jwk);
        }
        // `max_by_key` returns the last of equal maxima: the last listed wins ties.
        let newest = jwks
            .filter(|k| k.is_candidate())
            .max_by_key(|k| k.issued_at())
            .ok_or(Error::NoEncryptionKey)?;
        Self::from_typed_jwk(newest)
    }

    fn from_typed_jwk(jwk: &Jwk) -> Result<Self, Error> {
        match &jwk.kty {
            Member::Str(kty) if kty == "RSA" => {}
            Member::Str(_) => return Err(Error::UnsupportedKey),
            _ => return Err(Error::InvalidKey),
        }
        if jwk.has_private_members() {
            return Err(Error::InvalidKey);
        }
        match &jwk.use_ {
            Member::Absent => {}
            Member::Str(u) if u == "enc" => {}
            Member::Str(_) => return Err(Error::KeyNotForEncryption),
            _ => return Err(Error::InvalidKey),
        }
        match &jwk.alg {
            Member::Absent => {}
            Member::Str(a) if a == ALG => {}
            Member::Str(_) => return Err(Error::KeyNotForEncryption),
            _ => return Err(Error::InvalidKey),
        }
        match &jwk.key_ops {
            Member::Absent => {}
            Member::List(ops)
                if ops
                    .iter()
                    .any(|op| matches!(op.as_str(), Some("encrypt" | "wrapKey"))) => {}
            Member::List(_) => return Err(Error::KeyNotForEncryption),
            _ => return Err(Error::InvalidKey),
        }
        let kid = match &jwk.kid {
            Member::Absent => None,
            Member::Str(kid) => Some(kid.clone()),
            _ => return Err(Error::InvalidKey),
        };
        let n = b64_member(&jwk.n)?;
        let e = b64_member(&jwk.e)?;
        Self::from_parts(&n, &e, kid)
    }

    fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        /// RSASSA-PSS (RFC 4055): an RSA key restricted to signatures.
        const RSA_PSS_OID: pkcs1::ObjectIdentifier =
            pkcs1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| Error::InvalidKey)?;
        if spki.algorithm.oid == RSA_PSS_OID {
            return Err(Error::KeyNotForEncryption);
        }
        if spki.algorithm.oid != pkcs1::ALGORITHM_OID {
            return Err(Error::UnsupportedKey);
        }
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or(Error::InvalidKey)?;
        Self::from_pkcs1_der(key, None)
    }

    fn from_pkcs1_der(der: &[u8], kid: Option<String>) -> Result<Self, Error> {
        let key = pkcs1::RsaPublicKeyRef::from_der(der).map_err(|_| Error::InvalidKey)?;
        Self::from_parts(key.modulus.as_bytes(), key.public_exponent.as_bytes(), kid)
    }

    /// Checks the big-endian modulus and exponent and builds the key.
    fn from_parts(n: &[u8], e: &[u8], kid: Option<String>) -> Result<Self, Error> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_len(n);
        if bits < MIN_BITS {
            return Err(Error::KeyTooSmall);
        }
        if bits > MAX_BITS {
            return Err(Error::UnsupportedKey);
        }
        if n.last().is_none_or(|b| b & 1 == 0) {
            return Err(Error::InvalidKey);
        }
        if e.len() > 8 {
            return Err(Error::InvalidKey);
        }
        let e = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        if e < 3 || e & 1 == 0 || e >= MAX_EXPONENT {
            return Err(Error::InvalidKey);
        }
        let key = PublicKey::new(BoxedUint::from_be_slice_vartime(n), BoxedUint::from(e))
            .map_err(|_| Error::InvalidKey)?;
        let protected = protected_header(kid.as_deref());
        Ok(Self {
            kid,
            bits,
            key,
            protected,
        })
    }
}

/// The base64url JSON of `{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":…}`.
fn protected_header(kid: Option<&str>) -> String {
    let mut header = Vec::new();
    header.extend_from_slice(br#"{"alg":"#);
    writer::write_str(&mut header, ALG);
    header.extend_from_slice(br#","enc":"#);
    writer::write_str(&mut header, ENC);
    if let Some(kid) = kid {
        header.extend_from_slice(br#","kid":"#);
        writer::write_str(&mut header, kid);
    }
    header.push(b'}');
    Base64UrlUnpadded::encode_string(&header)
}

/// A JWK member as the checks need it: absent, or a string, an integer, a list, or some other
/// JSON value. Typed this loosely so that a wrongly typed member is told apart from a missing
/// one (and, in a JWKS, only disqualifies its own key rather than the whole set).
#[derive(Debug, Default)]
enum Member {
    #[default]
    Absent,
    Str(String),
    /// An integer that fits an `i64`.
    Int(i64),
    List(Vec<Member>),
    /// A JSON object, read as a JWK (members it does not know are ignored).
    Map(Box<Jwk>),
    Other,
}

impl Member {
    fn as_str(&self) -> Option<&str> {
        match self {
            Member::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Reads one member, `depth` arrays and objects deep; objects are read as JWKs. Every member
/// of an object is read, the unknown ones too (the nesting limit holds for the whole
/// document); of a repeated member, the last one counts. An array or object at the limit sets
/// `deep` and is not read (so a cyclic JS object ends), which makes the whole document invalid.
#[derive(Clone, Copy)]
struct MemberSeed<'a> {
    depth: u32,
    deep: &'a Cell<bool>,
}

impl MemberSeed<'_> {
    /// Whether an array or object here is past the limit (and marks the document if so).
    fn too_deep(&self) -> bool {
        let deep = self.depth >= MAX_DEPTH;
        if deep {
            self.deep.set(true);
        }
        deep
    }
}

impl<'de> DeserializeSeed<'de> for MemberSeed<'_> {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed<'_> {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Member, E> {
        Ok(Member::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Member, E> {
        Ok(Member::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Member, E> {
        Ok(Member::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Member, E> {
        Ok(i64::try_from(v).map_or(Member::Other, Member::Int))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_none<E: de::Error>(self) -> Result<Member, E> {
        Ok(Member::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
        if self.too_deep() {
            return Ok(Member::Other);
        }
        let inner = MemberSeed {
            depth: self.depth + 1,
            ..self
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Member::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member, A::Error> {
        if self.too_deep() {
            return Ok(Member::Other);
        }
        let inner = MemberSeed {
            depth: self.depth + 1,
            ..self
        };
        let mut jwk = Jwk::default();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(inner)?;
            if let Some(slot) = jwk.member(&name) {
                *slot = value;
            }
        }
        Ok(Member::Map(Box::new(jwk)))
    }
}

/// A vault key as a JWK or a JWKS document, read by any serde deserializer: typed just enough
/// for the checks of [`VaultKey::from_document`]. A deserializer error means the value was not
/// JSON-like at all (a JS `Set`, bytes, a function …, or text that is not JSON).
#[derive(Debug)]
pub struct KeyDocument {
    root: Member,
    /// Nested deeper than [`MAX_DEPTH`] somewhere.
    too_deep: bool,
}

impl<'de> serde::Deserialize<'de> for KeyDocument {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let deep = Cell::new(false);
        let root = MemberSeed {
            depth: 0,
            deep: &deep,
        }
        .deserialize(d)?;
        Ok(KeyDocument {
            root,
            too_deep: deep.get(),
        })
    }
}

impl KeyDocument {
    /// Reads JSON text; anything but JSON is `InvalidKey`.
    #[cfg(not(target_arch = "wasm32"))]
    fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|_| Error::InvalidKey)
    }

    /// The text, when the document is a string (a PEM, or JSON text to read first).
    pub fn as_text(&self) -> Option<&str> {
        self.root.as_str()
    }

    /// The document's object, read as a JWK (or a JWKS, in its `keys`); anything else is
    /// `InvalidKey`.
    fn object(&self) -> Result<&Jwk, Error> {
        match &self.root {
            Member::Map(jwk) if !self.too_deep => Ok(jwk),
            _ => Err(Error::InvalidKey),
        }
    }
}

/// The members of a JWK (RFC 7517, RFC 7518 §6.3) that importing a vault key looks at; others
/// are ignored.
#[derive(Debug, Default)]
struct Jwk {
    kty: Member,
    use_: Member,
    alg: Member,
    key_ops: Member,
    kid: Member,
    n: Member,
    e: Member,
    iat: Member,
    nbf: Member,
    // Private-key members: present means refused (the private key must never reach a page).
    d: Member,
    p: Member,
    q: Member,
    dp: Member,
    dq: Member,
    qi: Member,
    /// Present when the object is a JWKS rather than a JWK.
    keys: Member,
}

impl Jwk {
    /// The slot of a member this import reads, by its JSON name.
    fn member(&mut self, name: &str) -> Option<&mut Member> {
        Some(match name {
            "kty" => &mut self.kty,
            "use" => &mut self.use_,
            "alg" => &mut self.alg,
            "key_ops" => &mut self.key_ops,
            "kid" => &mut self.kid,
            "n" => &mut self.n,
            "e" => &mut self.e,
            "iat" => &mut self.iat,
            "nbf" => &mut self.nbf,
            "d" => &mut self.d,
            "p" => &mut self.p,
            "q" => &mut self.q,
            "dp" => &mut self.dp,
            "dq" => &mut self.dq,
            "qi" => &mut self.qi,
            "keys" => &mut self.keys,
            _ => return None,
        })
    }

    fn has_private_members(&self) -> bool {
        [&self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi]
            .iter()
            .any(|m| !matches!(m, Member::Absent))
    }

    /// Whether a JWKS entry is meant for `RSA-OAEP-256` encryption: an RSA key marked `use: enc`
    /// or `alg: RSA-OAEP-256` (or both), and marked for nothing else.
    fn is_candidate(&self) -> bool {
        let absent = |m: &Member| matches!(m, Member::Absent);
        let for_enc = self.use_.as_str() == Some("enc");
        let for_alg = self.alg.as_str() == Some(ALG);
        self.kty.as_str() == Some("RSA")
            && (absent(&self.use_) || for_enc)
            && (absent(&self.alg) || for_alg)
            && (for_enc || for_alg)
    }

    /// The key's issue time for "newest" ordering: `iat`, else `nbf`.
    fn issued_at(&self) -> Option<i64> {
        [&self.iat, &self.nbf].into_iter().find_map(|m| match m {
            Member::Int(t) => Some(*t),
            _ => None,
        })
    }
}

/// Decodes a base64url member. Trailing `=` padding is tolerated, since some encoders add it.
fn b64_member(member: &Member) -> Result<Vec<u8>, Error> {
    let Member::Str(text) = member else {
        return Err(Error::InvalidKey);
    };
    Base64UrlUnpadded::decode_vec(text.trim_end_matches('=')).map_err(|_| Error::InvalidKey)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Bit length of a big-endian number without leading zero bytes.
fn bit_len(n: &[u8]) -> usize {
    n.first()
        .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn doc(text: &str) -> KeyDocument {
        KeyDocument::from_json(text).unwrap()
    }

    #[test]
    fn documents_nest_to_serde_jsons_limit() {
        let nested = |n: usize| format!(r#"{{"x":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
        let verdict = |n| KeyDocument::from_json(&nested(n)).and_then(|d| d.object().map(|_| ()));
        assert_eq!(verdict(126), Ok(()));
        for n in [127, 128, 200, 5000] {
            assert_eq!(verdict(n), Err(Error::InvalidKey), "{n}");
        }
    }

    #[test]
    fn the_last_of_a_repeated_member_counts() {
        let d = doc(r#"{"kid":"a","kid":"b","n":1,"iat":18446744073709551615}"#);
        let jwk = d.object().unwrap();
        assert_eq!(jwk.kid.as_str(), Some("b"));
        assert!(matches!(jwk.n, Member::Int(1)));
        assert!(matches!(jwk.iat, Member::Other));
        assert!(doc("[]").object().is_err());
    }
}
