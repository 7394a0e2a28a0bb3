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

// Migration keys (`keys export-jwks --purpose import|export-signing`, `export`, `import`).
//
// They live in the data directory, one file each, wrapped under the master key like every
// other key, and apart from the sealing keys: a browser key (which any shopper's page holds
// the public half of) can never push cards into the vault through `import`, and the import
// key is never served in the JWKS.

/// Which migration key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPurpose {
    /// The receiving vault's RSA key that exports are sealed for.
    Import,
    /// The exporting vault's Ed25519 key that signs export manifests.
    ExportSigning,
}

impl MigrationPurpose {
    /// The file in the data directory.
    pub fn file_name(self) -> &'static str {
        match self {
            MigrationPurpose::Import => "import-key.json",
            MigrationPurpose::ExportSigning => "export-signing-key.json",
        }
    }

    fn wrap_purpose(self) -> &'static str {
        match self {
            MigrationPurpose::Import => "import-key",
            MigrationPurpose::ExportSigning => "export-signing-key",
        }
    }

    fn kid_prefix(self) -> &'static str {
        match self {
            MigrationPurpose::Import => "imp_",
            MigrationPurpose::ExportSigning => "sig_",
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MigrationKeyFile {
    kid: String,
    created: i64,
    public_jwk: Value,
    /// The private key (PKCS#8 DER), wrapped under the master key, base64url.
    wrapped: String,
}

/// The import key: opens what `export` sealed for this vault.
pub struct ImportKey {
    /// Its `kid`.
    pub kid: String,
    /// The public JWK (`use: enc`, `alg: RSA-OAEP-256`).
    pub jwk: Value,
    /// A ring holding this key alone, for [`crate::unseal::unseal`].
    pub ring: KeyRing,
}

impl fmt::Debug for ImportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The export-signing key: signs export manifests.
pub struct ExportSigningKey {
    /// Its `kid`.
    pub kid: String,
    /// The public JWK (`kty: OKP`, `crv: Ed25519`).
    pub jwk: Value,
    /// The key pair.
    pub pair: aws_lc_rs::signature::Ed25519KeyPair,
}

impl fmt::Debug for ExportSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportSigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Reads the migration key of `purpose` from `data_dir`, making it (mode 0600) on first use.
/// Returns its `kid`, public JWK and private key (PKCS#8 DER, in the clear).
fn migration_key(
    data_dir: &std::path::Path,
    master: &MasterKey,
    purpose: MigrationPurpose,
    now: i64,
) -> Result<(String, Value, zeroize::Zeroizing<Vec<u8>>), String> {
    let path = data_dir.join(purpose.file_name());
    let shown = path.display();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kid = ids::new_id(purpose.kid_prefix());
            let (der, jwk) = match purpose {
                MigrationPurpose::Import => {
                    let key = PrivateDecryptingKey::generate(KeySize::Rsa2048)
                        .map_err(|_| "cannot generate an RSA key".to_owned())?;
                    let jwk = public_jwk(&kid, &key).map_err(|e| e.to_string())?;
                    let der = key
                        .as_der()
                        .map_err(|_| "cannot encode the RSA key".to_owned())?;
                    (zeroize::Zeroizing::new(der.as_ref().to_vec()), jwk)
                }
                MigrationPurpose::ExportSigning => {
                    use aws_lc_rs::signature::KeyPair;
                    let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(
                        &aws_lc_rs::rand::SystemRandom::new(),
                    )
                    .map_err(|_| "cannot generate an Ed25519 key".to_owned())?;
                    let der = zeroize::Zeroizing::new(doc.as_ref().to_vec());
                    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&der)
                        .map_err(|_| "cannot read the new Ed25519 key".to_owned())?;
                    let jwk = json!({
                        "kty": "OKP",
                        "crv": "Ed25519",
                        "kid": kid,
                        "use": "sig",
                        "alg": "EdDSA",
                        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                    });
                    (der, jwk)
                }
            };
            let wrapped = master
                .wrap(purpose.wrap_purpose(), &kid, &der)
                .map_err(|_| "cannot wrap the new key".to_owned())?;
            let file = MigrationKeyFile {
                kid,
                created: now,
                public_jwk: jwk,
                wrapped: URL_SAFE_NO_PAD.encode(wrapped),
            };
            let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
            match crate::crypto::write_private_file(&path, text.as_bytes()) {
                Ok(()) => text,
                // Another run made it first: use that one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?
                }
                Err(e) => return Err(format!("cannot create {shown}: {e}")),
            }
        }
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let file: MigrationKeyFile =
        serde_json::from_str(&text).map_err(|e| format!("{shown} is not a key file: {e}"))?;
    let wrapped = URL_SAFE_NO_PAD
        .decode(&file.wrapped)
        .map_err(|_| format!("{shown} is not a key file"))?;
    let der = master
        .unwrap_key(purpose.wrap_purpose(), &file.kid, &wrapped)
        .map_err(|_| format!("{shown} does not open: is this the right master key?"))?;
    Ok((file.kid, file.public_jwk, der))
}

/// The vault's import key, made on first use.
pub fn import_key(
    data_dir: &std::path::Path,
    master: &MasterKey,
    now: i64,
) -> Result<ImportKey, String> {
    let (kid, jwk, der) = migration_key(data_dir, master, MigrationPurpose::Import, now)?;
    let private = PrivateDecryptingKey::from_pkcs8(&der)
        .map_err(|_| "the import key is invalid".to_owned())?;
    let key = OaepPrivateDecryptingKey::new(private)
        .map_err(|_| "the import key is invalid".to_owned())?;
    let sealing = SealingKey {
        kid: kid.clone(),
        key,
        jwk: jwk.clone(),
        created: now,
        superseded_at: None,
    };
    let ring = KeyRing::default();
    *ring
        .keys
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Arc::new(HashMap::from([(kid.clone(), Arc::new(sealing))]));
    Ok(ImportKey { kid, jwk, ring })
}

/// The vault's export-signing key, made on first use.
pub fn export_signing_key(
    data_dir: &std::path::Path,
    master: &MasterKey,
    now: i64,
) -> Result<ExportSigningKey, String> {
    let (kid, jwk, der) = migration_key(data_dir, master, MigrationPurpose::ExportSigning, now)?;
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|_| "the export-signing key is invalid".to_owned())?;
    Ok(ExportSigningKey { kid, jwk, pair })
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
