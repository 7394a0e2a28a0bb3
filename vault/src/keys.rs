//! The vault's RSA sealing keys: generated on first start, rotated on request, served as a
//! JWKS, and kept for a grace period after rotation so that cards sealed with a cached key
//! still open.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::crypto::MasterKey;
use crate::ids;
use crate::store::{self, SealingKeyRecord, Store, StoreError};

/// A usable sealing key.
pub struct SealingKey {
    /// The JWK `kid`.
    pub kid: String,
    /// The private key, ready for RSA-OAEP.
    pub key: OaepPrivateDecryptingKey,
    /// The public JWK.
    pub jwk: Value,
    /// When it was made.
    pub created: i64,
    /// When a newer key replaced it.
    pub superseded_at: Option<i64>,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("kid", &self.kid)
            .field("created", &self.created)
            .field("superseded_at", &self.superseded_at)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Whether it still decrypts at `now`, given the grace period after rotation.
    pub fn accepted(&self, now: i64, grace: i64) -> bool {
        self.superseded_at
            .is_none_or(|t| now < t.saturating_add(grace))
    }
}

/// What a `kid` names at a given moment.
#[derive(Debug)]
pub enum Lookup {
    /// A key that decrypts.
    Accepted(Arc<SealingKey>),
    /// A key past its grace period.
    Expired,
    /// No key of this vault.
    Unknown,
}

/// Why a key operation failed.
#[derive(Debug)]
pub enum KeyError {
    /// Storage failed.
    Store(StoreError),
    /// A key could not be made, wrapped or unwrapped (e.g. a wrong master key).
    Crypto(&'static str),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Store(e) => e.fmt(f),
            KeyError::Crypto(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for KeyError {}

impl From<StoreError> for KeyError {
    fn from(e: StoreError) -> Self {
        KeyError::Store(e)
    }
}

/// The sealing keys in memory, reloaded from the store when another process rotates them.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<Arc<HashMap<String, Arc<SealingKey>>>>,
}

const WRAP_PURPOSE: &str = "sealing-key";

impl KeyRing {
    /// Loads the keys, generating the first one if there is none.
    pub async fn load(store: &dyn Store, master: &MasterKey, now: i64) -> Result<Self, KeyError> {
        let ring = Self::default();
        if store::read(store, |tx| tx.sealing_keys()).await?.is_empty() {
            add_key(store, master, now).await?;
        }
        ring.reload(store, master).await?;
        Ok(ring)
    }

    /// Re-reads the keys from the store, reusing the already parsed ones.
    pub async fn reload(&self, store: &dyn Store, master: &MasterKey) -> Result<(), KeyError> {
        let records = store::read(store, |tx| tx.sealing_keys()).await?;
        let current = self.snapshot();
        let mut next = HashMap::with_capacity(records.len());
        for r in records {
            let key = match current.get(&r.kid) {
                Some(k) if k.superseded_at == r.superseded_at => Arc::clone(k),
                _ => Arc::new(open_record(master, &r)?),
            };
            next.insert(r.kid, key);
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    fn snapshot(&self) -> Arc<HashMap<String, Arc<SealingKey>>> {
        Arc::clone(
            &self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The key named `kid`, as of `now`.
    pub fn lookup(&self, kid: &str, now: i64, grace: i64) -> Lookup {
        match self.snapshot().get(kid) {
            Some(k) if k.accepted(now, grace) => Lookup::Accepted(Arc::clone(k)),
            Some(_) => Lookup::Expired,
            None => Lookup::Unknown,
        }
    }

    /// The JWKS of the keys accepted at `now`; the active key (the one to seal with) is last.
    pub fn jwks(&self, now: i64, grace: i64) -> Value {
        let snapshot = self.snapshot();
        let mut keys: Vec<_> = snapshot
            .values()
            .filter(|k| k.accepted(now, grace))
            .collect();
        // Oldest first and the active key last: clients seal with the key of the greatest `iat`,
        // and among equals with the last listed (the cardseal core's rule).
        keys.sort_by_key(|k| (k.superseded_at.is_none(), k.created, k.superseded_at));
        json!({ "keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>() })
    }
}

/// Makes a new active key; the others become superseded as of `now`. Returns its `kid`.
pub async fn add_key(store: &dyn Store, master: &MasterKey, now: i64) -> Result<String, KeyError> {
    // Prime generation takes a noticeable moment; keep it off the async workers.
    let record = tokio::task::spawn_blocking(|| PrivateDecryptingKey::generate(KeySize::Rsa2048))
        .await
        .map_err(|_| KeyError::Crypto("key generation panicked"))?
        .map_err(|_| KeyError::Crypto("cannot generate an RSA key"))?;
    let kid = ids::new_id("key_");
    let jwk = public_jwk(&kid, &record)?;
    let der = record
        .as_der()
        .map_err(|_| KeyError::Crypto("cannot encode the RSA key"))?;
    let wrapped = master
        .wrap(WRAP_PURPOSE, &kid, der.as_ref())
        .map_err(|_| KeyError::Crypto("cannot wrap the RSA key"))?;
    let record = SealingKeyRecord {
        kid: kid.clone(),
        wrapped_private_key: wrapped,
        public_jwk: jwk.to_string(),
        created: now,
        superseded_at: None,
    };
    store::write(store, move |tx| tx.add_sealing_key(&record)).await?;
    Ok(kid)
}

fn open_record(master: &MasterKey, r: &SealingKeyRecord) -> Result<SealingKey, KeyError> {
    let der = master
        .unwrap_key(WRAP_PURPOSE, &r.kid, &r.wrapped_private_key)
        .map_err(|_| {
            KeyError::Crypto("cannot unwrap a sealing key: is this the right master key?")
        })?;
    let private = PrivateDecryptingKey::from_pkcs8(&der)
        .map_err(|_| KeyError::Crypto("a stored sealing key is invalid"))?;
    let key = OaepPrivateDecryptingKey::new(private)
        .map_err(|_| KeyError::Crypto("a stored sealing key is invalid"))?;
    let mut jwk: Value = serde_json::from_str(&r.public_jwk)
        .map_err(|_| KeyError::Crypto("a stored public key is invalid"))?;
    // `iat` tells clients which key is newest.
    jwk["iat"] = json!(r.created);
    Ok(SealingKey {
        kid: r.kid.clone(),
        key,
        jwk,
        created: r.created,
        superseded_at: r.superseded_at,
    })
}

/// The public JWK of `key`.
fn public_jwk(kid: &str, key: &PrivateDecryptingKey) -> Result<Value, KeyError> {
    let spki = key
        .public_key()
        .as_der()
        .map_err(|_| KeyError::Crypto("cannot encode the public key"))?;
    let (n, e) =
        rsa_spki_components(spki.as_ref()).ok_or(KeyError::Crypto("cannot read the public key"))?;
    Ok(json!({
        "kty": "RSA",
        "kid": kid,
        "use": "enc",
        "alg": cardseal::jwe::ALG,
        "n": URL_SAFE_NO_PAD.encode(n),
        "e": URL_SAFE_NO_PAD.encode(e),
    }))
}

/// Reads one DER TLV: returns (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        (
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// Modulus and exponent (big-endian, without leading zeros) of an RSA SubjectPublicKeyInfo.
fn rsa_spki_components(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    const INTEGER: u8 = 0x02;
    let (SEQUENCE, spki, _) = der_tlv(spki)? else {
        return None;
    };
    let (SEQUENCE, _algorithm, rest) = der_tlv(spki)? else {
        return None;
    };
    let (BIT_STRING, bits, _) = der_tlv(rest)? else {
        return None;
    };
    let (&0, rsa_key) = bits.split_first()? else {
        return None;
    };
    let (SEQUENCE, rsa_key, _) = der_tlv(rsa_key)? else {
        return None;
    };
    let (INTEGER, n, rest) = der_tlv(rsa_key)? else {
        return None;
    };
    let (INTEGER, e, _) = der_tlv(rest)? else {
        return None;
    };
    Some((trim_zeros(n), trim_zeros(e)))
}

fn trim_zeros(x: &[u8]) -> &[u8] {
    let start = x.iter().position(|&b| b != 0).unwrap_or(x.len());
    &x[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwk_has_the_modulus_of_the_key() {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let jwk = public_jwk("key_x", &key).unwrap();
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["use"], "enc");
        assert_eq!(jwk["alg"], "RSA-OAEP-256");
    }
}
