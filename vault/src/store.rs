//! Storage behind one interface, so that a PostgreSQL backend is a second implementation of
//! [`Store`] rather than a rewrite. SQLite ([`sqlite::SqliteStore`]) is the default.
//!
//! Records hold card data only as AES-256-GCM blobs made by [`crate::crypto::AccountKeys`]; the
//! store never sees a key.

pub mod ledger;
pub mod sqlite;

use std::fmt;

use async_trait::async_trait;

/// A storage failure.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// A unique value (such as a `jti`) was already stored.
    Duplicate,
    /// The backend failed; the text is for the operator's log, never for a response.
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Duplicate => f.write_str("duplicate"),
            StoreError::Backend(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// An RSA sealing key, as stored.
#[derive(Clone, Debug)]
pub struct SealingKeyRecord {
    /// The JWK `kid`.
    pub kid: String,
    /// PKCS#8 DER, wrapped under the master key.
    pub wrapped_private_key: Vec<u8>,
    /// The public JWK, as served in the JWKS.
    pub public_jwk: String,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// When a newer key replaced it; it is accepted for a grace period after this.
    pub superseded_at: Option<i64>,
}

/// What kind of API key a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `pk_test_…`: browser-side, allowed origins only, reads keys and creates tokens.
    Publishable,
    /// `sk_test_…`: server-side, everything but detokenize.
    Secret,
    /// `rk_test_…`: restricted to its scopes.
    Restricted,
}

impl KeyKind {
    /// The key prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Publishable => "pk_test_",
            KeyKind::Secret => "sk_test_",
            KeyKind::Restricted => "rk_test_",
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Publishable => "publishable",
            KeyKind::Secret => "secret",
            KeyKind::Restricted => "restricted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [KeyKind::Publishable, KeyKind::Secret, KeyKind::Restricted]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// An API key, as stored: only its SHA-256 is kept.
#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    /// SHA-256 of the whole key.
    pub key_hash: [u8; 32],
    /// The account the key belongs to.
    pub account_id: String,
    /// Its kind.
    pub kind: KeyKind,
    /// Scopes of a restricted key, such as `detokenize`.
    pub scopes: Vec<String>,
    /// The key wrapped under the master key, kept only for the demo account so `--demo` can
    /// print the same keys on every start.
    pub wrapped_key: Option<Vec<u8>>,
    /// When it was made.
    pub created: i64,
    /// When it stops working (set by `accounts keys roll` on the key it replaces).
    pub expires_at: Option<i64>,
    /// When `accounts keys revoke` stopped it.
    pub revoked_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key still authenticates at `now`: not revoked, not past its expiry.
    pub fn usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

/// An account, as stored.
#[derive(Clone, Debug)]
pub struct AccountRecord {
    /// `acct_…`.
    pub id: String,
    /// A display name.
    pub name: String,
    /// Origins (with optional `*` port) publishable keys may be used from.
    pub allowed_origins: Vec<String>,
    /// The account's data key, wrapped under the master key.
    pub wrapped_data_key: Vec<u8>,
    /// The account's fingerprint key, wrapped under the master key.
    pub wrapped_fingerprint_key: Vec<u8>,
    /// Whether this is the `--demo` account.
    pub demo: bool,
    /// When it was made.
    pub created: i64,
}

/// A token's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    /// A whole card.
    Card,
    /// A CVC only, to re-add a CVC to a saved card.
    Cvc,
}

impl TokenType {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Card => "card",
            TokenType::Cvc => "cvc",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "card" => Some(TokenType::Card),
            "cvc" => Some(TokenType::Cvc),
            _ => None,
        }
    }
}

/// The non-secret facts about a tokenized card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardSummary {
    /// `visa`, `mastercard`, …
    pub brand: String,
    /// The first six digits (PCI DSS allows showing first six and last four).
    pub bin: String,
    /// The last four digits.
    pub last4: String,
    /// 1 to 12.
    pub exp_month: u8,
    /// Four digits.
    pub exp_year: u16,
    /// HMAC-SHA256 of the number under the account's fingerprint key.
    pub fingerprint: [u8; 32],
}

/// A token, as stored.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    /// `tok_…`.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// Card or CVC.
    pub token_type: TokenType,
    /// For card tokens.
    pub card: Option<CardSummary>,
    /// The card data (JSON), sealed with the account's data key; `None` once purged.
    pub sealed: Option<Vec<u8>>,
    /// The IP address the token was created from.
    pub client_ip: Option<String>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; the token cannot be used after this.
    pub expires_at: i64,
    /// When it was used, if it was.
    pub used_at: Option<i64>,
}

/// A seen `jti`, kept until no request carrying it could pass the `iat` check.
#[derive(Clone, Debug)]
pub struct JtiRecord {
    /// SHA-256 of the `jti`.
    pub jti_hash: [u8; 32],
    /// Unix seconds after which the record may be purged.
    pub expires_at: i64,
    /// The account whose request carried it.
    pub account_id: String,
    /// The token it made.
    pub token_id: String,
    /// SHA-256 of the request's `Idempotency-Key`, so that a retry of the same request gets
    /// the same token instead of `replayed_request`.
    pub idempotency_key: Option<[u8; 32]>,
}

/// Everything the vault stores. Implementations must be safe to share between threads, and
/// every method is one atomic unit.
#[async_trait]
pub trait Store: ledger::Ledger + Send + Sync + fmt::Debug {
    /// All sealing keys, oldest first.
    async fn sealing_keys(&self) -> StoreResult<Vec<SealingKeyRecord>>;

    /// Adds a key and marks every other unsuperseded key as superseded at `key.created`.
    async fn add_sealing_key(&self, key: SealingKeyRecord) -> StoreResult<()>;

    /// Adds an account and its API keys.
    async fn add_account(&self, account: AccountRecord, keys: Vec<ApiKeyRecord>)
    -> StoreResult<()>;

    /// The demo account and its keys, if one was made.
    async fn demo_account(&self) -> StoreResult<Option<(AccountRecord, Vec<ApiKeyRecord>)>>;

    /// The API key with this hash, and its account.
    async fn api_key(
        &self,
        key_hash: [u8; 32],
    ) -> StoreResult<Option<(ApiKeyRecord, AccountRecord)>>;

    /// The account with this id.
    async fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>>;

    /// Adds `key` and makes every other unrevoked key of its kind on its account expire at
    /// `old_expire_at` (a key due to expire earlier keeps its expiry), in one transaction.
    /// Returns how many keys got the new expiry.
    async fn roll_api_key(&self, key: ApiKeyRecord, old_expire_at: i64) -> StoreResult<u64>;

    /// Marks the key with this hash revoked at `now` (an earlier revocation stands). `false`
    /// when there is no such key.
    async fn revoke_api_key(&self, key_hash: [u8; 32], now: i64) -> StoreResult<bool>;

    /// Replaces an account's allowed origins. `false` when there is no such account.
    async fn set_allowed_origins(
        &self,
        account_id: &str,
        origins: Vec<String>,
    ) -> StoreResult<bool>;

    /// The hosts the account may forward cards to (normalised allow-list entries); empty for
    /// an unknown account.
    async fn forward_hosts(&self, account_id: &str) -> StoreResult<Vec<String>>;

    /// Replaces an account's forward allow-list. `false` when there is no such account.
    async fn set_forward_hosts(&self, account_id: &str, hosts: Vec<String>) -> StoreResult<bool>;

    /// Records `jti` and stores `token` in one transaction. [`StoreError::Duplicate`] when the
    /// `jti` was seen before (and then nothing is stored).
    async fn add_token(&self, token: TokenRecord, jti: JtiRecord) -> StoreResult<()>;

    /// The token made earlier from this `jti` (same expiry and hash) by the same account with
    /// the same idempotency key: the answer to a retried request whose first response was
    /// lost. `None` when `jti` has no idempotency key.
    async fn replayed_token(&self, jti: JtiRecord) -> StoreResult<Option<TokenRecord>>;

    /// The account's token with this id.
    async fn token(&self, account_id: &str, id: &str) -> StoreResult<Option<TokenRecord>>;

    /// Marks the account's token used, if it is unused and unexpired at `now`, and returns it.
    /// Of many concurrent calls for one token, at most one gets `Some`.
    async fn use_token(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<TokenRecord>>;

    /// Deletes expired `jti`s and the card data of expired tokens. Returns rows touched.
    async fn purge(&self, now: i64) -> StoreResult<u64>;

    /// Destroys the sealing keys superseded before `before` (their grace period is over), never
    /// the active key. Returns how many.
    async fn delete_sealing_keys(&self, before: i64) -> StoreResult<u64>;
}
