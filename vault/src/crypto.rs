//! Encryption at rest: the master key, wrapped keys, per-account data keys and fingerprints.
//!
//! Every blob is `nonce (12) || ciphertext || tag (16)`, AES-256-GCM with a random nonce, and
//! its AAD names what the blob is and which record it belongs to, so a blob copied into another
//! row or another account fails to decrypt.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, Zeroizing};

use crate::ids::random_bytes;

/// Why a key or blob could not be used. Deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoError;

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("decryption failed")
    }
}

impl std::error::Error for CryptoError {}

/// An AES-256-GCM key that seals and opens blobs with a random nonce.
pub struct BlobKey(RandomizedNonceKey);

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlobKey(***)")
    }
}

impl BlobKey {
    /// A key from 32 bytes.
    pub fn new(bytes: &[u8; 32]) -> Self {
        match RandomizedNonceKey::new(&AES_256_GCM, bytes) {
            Ok(key) => Self(key),
            // AES-256-GCM accepts every 32-byte key; the length is checked by the type.
            Err(_) => std::process::abort(),
        }
    }

    /// Encrypts `plaintext` (which is consumed and overwritten) under `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: Zeroizing<Vec<u8>>) -> Result<Vec<u8>, CryptoError> {
        let mut buf = plaintext;
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(aad), &mut *buf)
            .map_err(|_| CryptoError)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(nonce.as_ref());
        // `buf` now holds ciphertext and tag only; it is still zeroized on drop.
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts a blob made by [`BlobKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(CryptoError);
        }
        let (nonce, body) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The master key: wraps sealing keys and account data keys, never card data directly.
#[derive(Debug)]
pub struct MasterKey(BlobKey);

/// The file a master key is kept in when `CARDSEAL_MASTER_KEY` is not set.
pub const MASTER_KEY_FILE: &str = "master.key";

impl MasterKey {
    /// Parses 32 bytes given as 64 hex characters or as base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(text).map_err(|_| "the master key is not valid hex".to_owned())?
            } else {
                STANDARD
                    .decode(text)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                    .map_err(|_| {
                        "the master key must be 32 bytes as 64 hex characters or base64".to_owned()
                    })?
            },
        );
        let bytes: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| "the master key must be exactly 32 bytes".to_owned())?;
        Ok(Self(BlobKey::new(bytes)))
    }

    /// A fresh random key, for tests and benchmarks.
    pub fn random() -> Self {
        let bytes = Zeroizing::new(random_bytes::<32>());
        Self(BlobKey::new(&bytes))
    }

    /// `value` if given (from `CARDSEAL_MASTER_KEY`), else the key file in `data_dir`, made
    /// with mode 0600 on first use.
    pub fn load(value: Option<&str>, data_dir: &Path) -> Result<Self, String> {
        if let Some(value) = value {
            return Self::parse(value);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = random_bytes::<32>();
                let text = Zeroizing::new(hex::encode(bytes));
                bytes.zeroize();
                write_private_file(&path, text.as_bytes())
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                Self::parse(&text)
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Wraps key material; `purpose` and `id` become the AAD.
    pub fn wrap(&self, purpose: &str, id: &str, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .seal(&wrap_aad(purpose, id), Zeroizing::new(key.to_vec()))
    }

    /// Unwraps what [`MasterKey::wrap`] made for the same `purpose` and `id`.
    pub fn unwrap_key(
        &self,
        purpose: &str,
        id: &str,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0.open(&wrap_aad(purpose, id), blob)
    }
}

fn wrap_aad(purpose: &str, id: &str) -> Vec<u8> {
    format!("cardseal-vault/v1/wrap/{purpose}/{id}").into_bytes()
}

/// Creates `path` with mode 0600 (owner only) and writes `contents`; fails if it exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// An account's own keys: one for card data at rest, one for fingerprints.
pub struct AccountKeys {
    data: BlobKey,
    fingerprint: hmac::Key,
}

impl fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKeys(***)")
    }
}

/// Wrapped forms of an account's keys, as stored.
#[derive(Debug, Clone)]
pub struct WrappedAccountKeys {
    /// The AES-256-GCM data key, wrapped.
    pub data_key: Vec<u8>,
    /// The HMAC-SHA256 fingerprint key, wrapped.
    pub fingerprint_key: Vec<u8>,
}

impl AccountKeys {
    /// New random keys for `account_id`, and their wrapped forms.
    pub fn generate(
        master: &MasterKey,
        account_id: &str,
    ) -> Result<(Self, WrappedAccountKeys), CryptoError> {
        let data = Zeroizing::new(random_bytes::<32>());
        let fingerprint = Zeroizing::new(random_bytes::<32>());
        let wrapped = WrappedAccountKeys {
            data_key: master.wrap("account-data-key", account_id, &*data)?,
            fingerprint_key: master.wrap("account-fingerprint-key", account_id, &*fingerprint)?,
        };
        Ok((Self::from_bytes(&data, &fingerprint), wrapped))
    }

    /// Unwraps stored keys.
    pub fn unwrap(
        master: &MasterKey,
        account_id: &str,
        wrapped: &WrappedAccountKeys,
    ) -> Result<Self, CryptoError> {
        let data = master.unwrap_key("account-data-key", account_id, &wrapped.data_key)?;
        let fingerprint = master.unwrap_key(
            "account-fingerprint-key",
            account_id,
            &wrapped.fingerprint_key,
        )?;
        let data: &[u8; 32] = data.as_slice().try_into().map_err(|_| CryptoError)?;
        let fingerprint: &[u8; 32] = fingerprint.as_slice().try_into().map_err(|_| CryptoError)?;
        Ok(Self::from_bytes(data, fingerprint))
    }

    fn from_bytes(data: &[u8; 32], fingerprint: &[u8; 32]) -> Self {
        Self {
            data: BlobKey::new(data),
            fingerprint: hmac::Key::new(hmac::HMAC_SHA256, fingerprint),
        }
    }

    /// Encrypts card data for the record `kind`/`record_id` of `account_id`.
    pub fn seal_record(
        &self,
        account_id: &str,
        kind: &str,
        record_id: &str,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<Vec<u8>, CryptoError> {
        self.data
            .seal(&record_aad(account_id, kind, record_id), plaintext)
    }

    /// Decrypts what [`AccountKeys::seal_record`] made for the same account and record.
    pub fn open_record(
        &self,
        account_id: &str,
        kind: &str,
        record_id: &str,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.data
            .open(&record_aad(account_id, kind, record_id), blob)
    }

    /// HMAC-SHA256 of `data` under the fingerprint key, domain-separated by `purpose` (a NUL
    /// keeps it apart from fingerprints, since no card number holds one). For digests of
    /// requests that may carry card data, which a plain hash would let anyone brute-force.
    pub fn keyed_digest(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.fingerprint);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(data);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The card fingerprint: HMAC-SHA256 of the number under this account's key, so the same
    /// card gives the same fingerprint within an account and unrelated ones across accounts.
    pub fn fingerprint(&self, number: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.fingerprint, number.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// An account's audit key: keys its event chain, so that only a holder of the master key can
/// rewrite the chain, and signs checkpoints of it. Both are derived from one random 32-byte
/// key wrapped under the master key (`audit_key` on the account row), with distinct labels,
/// so a checkpoint MAC can never pass for a chain link or the other way round.
pub struct AuditKey {
    chain: hmac::Key,
    checkpoint: hmac::Key,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

const AUDIT_KEY_PURPOSE: &str = "account-audit-key";

impl AuditKey {
    /// A new random key for `account_id`, and its wrapped form.
    pub fn generate(master: &MasterKey, account_id: &str) -> Result<(Self, Vec<u8>), CryptoError> {
        let raw = Zeroizing::new(random_bytes::<32>());
        let wrapped = master.wrap(AUDIT_KEY_PURPOSE, account_id, &*raw)?;
        Ok((Self::from_bytes(&raw), wrapped))
    }

    /// Unwraps a stored key; fails for another account's key or another master key.
    pub fn unwrap(
        master: &MasterKey,
        account_id: &str,
        wrapped: &[u8],
    ) -> Result<Self, CryptoError> {
        let raw = master.unwrap_key(AUDIT_KEY_PURPOSE, account_id, wrapped)?;
        let raw: &[u8; 32] = raw.as_slice().try_into().map_err(|_| CryptoError)?;
        Ok(Self::from_bytes(raw))
    }

    fn from_bytes(raw: &[u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, raw);
        let derive = |label: &[u8]| {
            let sub = Zeroizing::new(hmac::sign(&root, label).as_ref().to_vec());
            hmac::Key::new(hmac::HMAC_SHA256, &sub)
        };
        Self {
            chain: derive(b"cardseal-vault/v1/audit/chain"),
            checkpoint: derive(b"cardseal-vault/v1/audit/checkpoint"),
        }
    }

    /// An event's link: HMAC-SHA256 over the previous event's link and the event's canonical
    /// JSON.
    pub fn link(&self, prev: &[u8], body: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.chain);
        ctx.update(prev);
        ctx.update(body.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The MAC of a checkpointed head: the chain reached event `event_id` at `seq` with link
    /// `hash`.
    pub fn sign_head(&self, account_id: &str, seq: i64, event_id: &str, hash: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(
            &self.checkpoint,
            &head_message(account_id, seq, event_id, hash),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `mac` is [`AuditKey::sign_head`]'s for these values (compared in constant time).
    pub fn verify_head(
        &self,
        account_id: &str,
        seq: i64,
        event_id: &str,
        hash: &[u8],
        mac: &[u8],
    ) -> bool {
        hmac::verify(
            &self.checkpoint,
            &head_message(account_id, seq, event_id, hash),
            mac,
        )
        .is_ok()
    }
}

fn head_message(account_id: &str, seq: i64, event_id: &str, hash: &[u8]) -> Vec<u8> {
    // Ids hold no newline, and the hash is fixed-width hex, so the encoding is unambiguous.
    format!(
        "cardseal-vault/v1/checkpoint\n{account_id}\n{seq}\n{event_id}\n{}",
        hex::encode(hash)
    )
    .into_bytes()
}

fn record_aad(account_id: &str, kind: &str, record_id: &str) -> Vec<u8> {
    // Ids never contain '/', so the encoding is unambiguous.
    format!("cardseal-vault/v1/{kind}/{account_id}/{record_id}").into_bytes()
}

/// SHA-256, for looking up API keys and `jti`s without storing them.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Base64 (standard, padded) for the demo key files and the like.
pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_open_only_with_their_own_aad() {
        let master = MasterKey::random();
        let (keys, wrapped) = AccountKeys::generate(&master, "acct_a").unwrap();
        let blob = keys
            .seal_record("acct_a", "token", "tok_1", Zeroizing::new(b"4242".to_vec()))
            .unwrap();
        assert_eq!(
            &**keys.open_record("acct_a", "token", "tok_1", &blob).unwrap(),
            b"4242"
        );
        assert!(keys.open_record("acct_b", "token", "tok_1", &blob).is_err());
        assert!(keys.open_record("acct_a", "token", "tok_2", &blob).is_err());
        let again = AccountKeys::unwrap(&master, "acct_a", &wrapped).unwrap();
        assert_eq!(again.fingerprint("4242"), keys.fingerprint("4242"));
        assert!(AccountKeys::unwrap(&master, "acct_b", &wrapped).is_err());
        assert!(AccountKeys::unwrap(&MasterKey::random(), "acct_a", &wrapped).is_err());
    }

    #[test]
    fn audit_keys_are_per_account_and_separate_chain_from_checkpoint() {
        let master = MasterKey::random();
        let (key, wrapped) = AuditKey::generate(&master, "acct_a").unwrap();
        let again = AuditKey::unwrap(&master, "acct_a", &wrapped).unwrap();
        assert_eq!(key.link(&[0; 32], "{}"), again.link(&[0; 32], "{}"));
        assert!(AuditKey::unwrap(&master, "acct_b", &wrapped).is_err());
        assert!(AuditKey::unwrap(&MasterKey::random(), "acct_a", &wrapped).is_err());
        let mac = key.sign_head("acct_a", 7, "evt_1", &[1; 32]);
        assert!(again.verify_head("acct_a", 7, "evt_1", &[1; 32], &mac));
        assert!(!again.verify_head("acct_a", 6, "evt_1", &[1; 32], &mac));
        assert!(!again.verify_head("acct_b", 7, "evt_1", &[1; 32], &mac));
        // Not the plain hash an attacker could recompute.
        assert_ne!(
            key.link(&[0; 32], "{}"),
            sha256(&[&[0u8; 32][..], b"{}"].concat())
        );
    }

    #[test]
    fn master_key_parses_hex_and_base64() {
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::parse(&b64(&[7u8; 32])).is_ok());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&b64(&[7u8; 31])).is_err());
    }

    #[test]
    fn master_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load(None, dir.path()).unwrap();
        let blob = a.wrap("p", "i", b"k").unwrap();
        let b = MasterKey::load(None, dir.path()).unwrap();
        assert_eq!(&**b.unwrap_key("p", "i", &blob).unwrap(), b"k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
