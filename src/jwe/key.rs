//! Importing the vault's RSA public key from a JWK, a JWKS or a PEM.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::pkcs1::{self, der::Decode};
use rsa::pkcs8::SubjectPublicKeyInfoRef;
use rsa::{BoxedUint, PublicKey};
use zeroize::Zeroizing;

use super::monty::Modulus;
use super::{ALG, ENC, oaep};
use crate::{Error, json};

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
    /// The modulus, big-endian without leading zeros.
    n: Vec<u8>,
    /// The public exponent: odd, at least 3, below 2^32.
    e: u32,
    /// `n` with its Montgomery constants, for the fast RSA operation.
    modulus: Modulus,
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
    pub fn from_jwk(jwk: &str) -> Result<Self, Error> {
        Self::from_typed_jwk(&parse_object(jwk)?)
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
    pub fn from_jwks(jwks: &str, kid: Option<&str>) -> Result<Self, Error> {
        Self::from_typed_jwks(&parse_object(jwks)?.keys, kid)
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
    pub fn parse(key: &str) -> Result<Self, Error> {
        let key = key.trim();
        if key.starts_with("-----BEGIN") {
            return Self::from_spki_pem(key);
        }
        let any = parse_object(key)?;
        match any.keys {
            Member::Absent => Self::from_typed_jwk(&any),
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

    /// RSAES-OAEP-SHA-256 of `cek` with the given seed: the JWE Encrypted Key. The fast path.
    pub(crate) fn wrap_cek(
        &self,
        cek: &[u8],
        seed: &[u8; oaep::HASH_LEN],
    ) -> Result<Vec<u8>, Error> {
        let mut em = Zeroizing::new(vec![0u8; self.modulus.len()]);
        oaep::encode(cek, seed, &mut em)?;
        let mut encrypted = vec![0u8; self.modulus.len()];
        self.modulus.pow_public(&em, self.e, &mut encrypted);
        Ok(encrypted)
    }

    /// The same with the `rsa` crate: the reference path.
    pub(crate) fn wrap_cek_with_rsa_crate<R>(
        &self,
        cek: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error>
    where
        R: rsa::rand_core::TryCryptoRng + ?Sized,
    {
        self.rsa_public_key()?
            .oaep_encrypt_with_rng::<sha2::Sha256, R>(rng, cek)
            .map_err(|_| Error::Crypto)
    }

    /// The key as the `rsa` crate's type.
    pub(crate) fn rsa_public_key(&self) -> Result<PublicKey, Error> {
        PublicKey::new(
            BoxedUint::from_be_slice_vartime(&self.n),
            BoxedUint::from(u64::from(self.e)),
        )
        .map_err(|_| Error::Crypto)
    }

    /// The base64url-encoded protected header, which is also the AAD.
    pub(crate) fn protected_header(&self) -> &str {
        &self.protected
    }

    #[cfg(test)]
    pub(crate) fn from_parts_for_tests(n: &[u8]) -> Self {
        #[allow(clippy::unwrap_used)]
        Self::from_parts(n, &[1, 0, 1], Some("t".into())).unwrap()
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
        let e = u32::try_from(e).map_err(|_| Error::InvalidKey)?;
        let modulus = Modulus::new(n).ok_or(Error::InvalidKey)?;
        let protected = protected_header(kid.as_deref());
        Ok(Self {
            kid,
            bits,
            n: n.to_vec(),
            e,
            modulus,
            protected,
        })
    }
}

/// The base64url JSON of `{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":…}`.
fn protected_header(kid: Option<&str>) -> String {
    let mut header = Vec::new();
    header.extend_from_slice(br#"{"alg":"#);
    json::write_str(&mut header, ALG);
    header.extend_from_slice(br#","enc":"#);
    json::write_str(&mut header, ENC);
    if let Some(kid) = kid {
        header.extend_from_slice(br#","kid":"#);
        json::write_str(&mut header, kid);
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

impl Member {
    /// A JSON value as a member; objects are read as JWKs. Every member of an object is read,
    /// the unknown ones too (the reader's nesting limit holds for the whole text); of a
    /// repeated member, the last one counts.
    fn from_json(value: json::Value) -> Self {
        match value {
            json::Value::String(s) => Member::Str(s),
            json::Value::Int(n) => Member::Int(n),
            json::Value::Array(items) => {
                Member::List(items.into_iter().map(Member::from_json).collect())
            }
            json::Value::Object(members) => {
                let mut jwk = Jwk::default();
                for (name, value) in members {
                    if let Some(slot) = jwk.member(&name) {
                        *slot = Member::from_json(value);
                    }
                }
                Member::Map(Box::new(jwk))
            }
            json::Value::Null | json::Value::Bool(_) | json::Value::Number => Member::Other,
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

/// A JSON text that must be an object, read as a JWK (or a JWKS, in its `keys`). One parse
/// into typed members; anything else is `InvalidKey`.
fn parse_object(text: &str) -> Result<Jwk, Error> {
    match json::parse(text).map(Member::from_json) {
        Some(Member::Map(jwk)) => Ok(*jwk),
        _ => Err(Error::InvalidKey),
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use rsa::rand_core::{TryCryptoRng, TryRng};

    use super::super::monty::tests::TestRng;
    use super::*;

    /// Hands the `rsa` crate a chosen OAEP seed, so both paths can be compared byte for byte.
    struct Replay<'a>(&'a [u8]);

    impl TryRng for Replay<'_> {
        type Error = Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            unreachable!("OAEP draws its seed with fill_bytes")
        }

        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            unreachable!("OAEP draws its seed with fill_bytes")
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            let (head, tail) = self.0.split_at(dst.len());
            dst.copy_from_slice(head);
            self.0 = tail;
            Ok(())
        }
    }

    impl TryCryptoRng for Replay<'_> {}

    fn key_from(n: &[u8], e: u32) -> VaultKey {
        VaultKey::from_parts(n, &e.to_be_bytes(), Some("t".into())).unwrap()
    }

    fn check(rng: &mut TestRng, key: &VaultKey, msg_len: usize) {
        let msg = rng.bytes(msg_len);
        let mut seed = [0u8; oaep::HASH_LEN];
        rng.fill(&mut seed);
        let fast = key.wrap_cek(&msg, &seed).unwrap();
        let reference = key
            .wrap_cek_with_rsa_crate(&msg, &mut Replay(&seed))
            .unwrap();
        assert_eq!(fast, reference, "{} bits, e = {}", key.bits, key.e);
    }

    #[test]
    fn fast_oaep_matches_the_rsa_crate() {
        let mut rng = TestRng(11);
        for bits in [2048, 2049, 2055, 2056, 2060, 2111, 3072, 4096] {
            for _ in 0..3 {
                let key = key_from(&rng.modulus(bits), rng.exponent());
                let max = key.modulus.len() - 2 * oaep::HASH_LEN - 2;
                for msg_len in [32, 0, 1, max] {
                    check(&mut rng, &key, msg_len);
                }
            }
        }
    }

    /// The exhaustive run: `cargo test --release -- --ignored fast_oaep_matches_exhaustively`.
    #[test]
    #[ignore = "slow; run in release"]
    fn fast_oaep_matches_exhaustively() {
        let mut rng = TestRng(12);
        for bits in (2048..2120).chain([3072, 4096, 8192]) {
            for _ in 0..20 {
                let key = key_from(&rng.modulus(bits), rng.exponent());
                for _ in 0..5 {
                    check(&mut rng, &key, 32);
                }
            }
        }
    }

    #[test]
    fn too_long_messages_fail_on_both_paths() {
        let mut rng = TestRng(13);
        let key = key_from(&rng.modulus(2048), 65537);
        assert_eq!(key.wrap_cek(&[0; 191], &[0; 32]), Err(Error::Crypto));
        assert_eq!(
            key.wrap_cek_with_rsa_crate(&[0; 191], &mut Replay(&[0; 32])),
            Err(Error::Crypto)
        );
    }
}
