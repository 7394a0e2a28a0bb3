//! What the vault stores, as plain records. Card data appears only as AES-256-GCM blobs made by
//! [`crate::crypto::AccountKeys`] or a card's own key: the store never sees a key.

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

/// A saved card, as stored.
#[derive(Clone, Debug)]
pub struct CardRecord {
    /// `card_…`.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// The merchant's customer reference.
    pub customer: Option<String>,
    /// Brand, BIN, last four, expiry and fingerprint.
    pub summary: CardSummary,
    /// Issuer metadata from the BIN table.
    pub issuer: IssuerInfo,
    /// A JSON object of string values.
    pub metadata: String,
    /// The card's own AES-256 key, sealed with the account's data key. `None` once deleted:
    /// without it, `sealed` and any CVC can never be opened again.
    pub wrapped_key: Option<Vec<u8>>,
    /// Number, expiry and name, sealed with the card's key.
    pub sealed: Option<Vec<u8>>,
    /// The network transaction id of the card's last successful setup charge.
    pub network_transaction_id: Option<String>,
    /// Unix seconds.
    pub created: i64,
}

/// Issuer metadata of a card, from the BIN table; all `None` without one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuerInfo {
    /// The issuing bank.
    pub issuer: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// `credit`, `debit`, `prepaid`.
    pub funding: Option<String>,
    /// ISO 4217, lower case, from the country.
    pub currency: Option<String>,
}

/// A charge, as stored: its API object (which holds no card data) and what finds it.
#[derive(Clone, Debug)]
pub struct ChargeRecord {
    /// `ch_…`.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// The Charge object, JSON.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
}

/// An audit event to append.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// `evt_…`.
    pub id: String,
    /// The account it concerns.
    pub account_id: String,
    /// `card.created`, `charge.succeeded`, …
    pub event_type: String,
    /// Ids and outcomes only: never a card number or CVC.
    pub data: serde_json::Value,
    /// Unix seconds.
    pub created: i64,
}

/// A stored event with its place in the hash chain.
#[derive(Clone, Debug)]
pub struct EventRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// `evt_…`.
    pub id: String,
    /// The account it concerns.
    pub account_id: String,
    /// The type.
    pub event_type: String,
    /// The canonical JSON the hash covers.
    pub body: String,
    /// The previous event's hash (32 zero bytes for the first).
    pub prev_hash: Vec<u8>,
    /// HMAC-SHA256 of `prev_hash || body` under the account's audit key
    /// ([`crate::crypto::AuditKey::link`]).
    pub hash: Vec<u8>,
}

/// What an `Idempotency-Key` already stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: the request runs, and its response is recorded.
    Fresh,
    /// The same request ran: replay this status and body.
    Done {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: Vec<u8>,
    },
    /// The same key is running right now.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

/// The canonical JSON of an event: fixed member order, which the hash covers. It holds no
/// global position, so an account learns nothing about other accounts' activity.
pub fn canonical_event(e: &NewEvent) -> super::StoreResult<String> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        id: &'a str,
        object: &'static str,
        account: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        created: i64,
        data: &'a serde_json::Value,
    }
    serde_json::to_string(&Body {
        id: &e.id,
        object: "event",
        account: &e.account_id,
        event_type: &e.event_type,
        created: e.created,
        data: &e.data,
    })
    .map_err(|e| super::StoreError::Backend(e.to_string()))
}

/// Where a key wrapped under the master key is kept; [`WrapSlot::purpose`] is its AAD's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapSlot {
    /// `sealing_keys.private_key`, by `kid`.
    SealingKey,
    /// `accounts.data_key`, by account id.
    AccountDataKey,
    /// `accounts.fingerprint_key`, by account id.
    AccountFingerprintKey,
    /// `accounts.audit_key`, by account id.
    AccountAuditKey,
    /// `api_keys.wrapped_key` (demo account only), by the hex of the key's hash.
    DemoApiKey,
}

impl WrapSlot {
    /// The purpose the key was wrapped for ([`crate::crypto::MasterKey::wrap`]).
    pub fn purpose(self) -> &'static str {
        match self {
            WrapSlot::SealingKey => "sealing-key",
            WrapSlot::AccountDataKey => "account-data-key",
            WrapSlot::AccountFingerprintKey => "account-fingerprint-key",
            WrapSlot::AccountAuditKey => "account-audit-key",
            WrapSlot::DemoApiKey => "demo-api-key",
        }
    }
}

/// One key wrapped under the master key, for `keys rotate-master`.
#[derive(Clone, Debug)]
pub struct WrappedKeyRecord {
    /// Which column.
    pub slot: WrapSlot,
    /// The row: a `kid`, an account id, or the hex of an API key's hash.
    pub row: String,
    /// The id in the wrapping's AAD: the `kid`, or the account id.
    pub aad_id: String,
    /// The wrapped key.
    pub blob: Vec<u8>,
}

/// A recurring charge schedule, as stored. The API object is built from it and its runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurringRecord {
    /// `rc_…`.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// The saved card charged (`card_…`).
    pub source: String,
    /// Minor units per period.
    pub amount: i64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// `day`, `week`, `month` or `year`.
    pub interval: String,
    /// Intervals per period.
    pub interval_count: i64,
    /// The first period's due time (Unix seconds); later ones are anchored on it.
    pub start: i64,
    /// No period is due at or after this time.
    pub end_at: Option<i64>,
    /// How many periods there are.
    pub count: Option<i64>,
    /// `active`, `past_due`, `canceled` or `completed`.
    pub status: String,
    /// The period the next run charges, from 0.
    pub period: i64,
    /// Runs of that period so far (declined ones; the next is a retry when above 0).
    pub attempt: i64,
    /// When the next run is due; `None` once canceled or completed.
    pub next_run: Option<i64>,
    /// Unix seconds.
    pub created: i64,
    /// When it was canceled.
    pub canceled_at: Option<i64>,
}

/// One run of a schedule: the claim on (schedule, period, attempt), unique in the database,
/// and the charge it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurringRunRecord {
    /// The schedule's `rc_…`.
    pub recurring_id: String,
    /// The period charged, from 0.
    pub period: i64,
    /// 0 for the period's first run, then 1, 2, … for its retries.
    pub attempt: i64,
    /// The `ch_…` made, once made.
    pub charge_id: Option<String>,
    /// `succeeded` or `failed` (the charge's status).
    pub status: String,
    /// Unix seconds.
    pub created: i64,
}

/// A page of schedules to read, in Stripe's order (newest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecurringPage {
    /// Rows to return at most.
    pub limit: usize,
    /// Only older than this `rc_…`.
    pub starting_after: Option<String>,
    /// Only newer than this `rc_…` (the page just before it).
    pub ending_before: Option<String>,
    /// `created >= gte`.
    pub created_gte: Option<i64>,
    /// `created <= lte`.
    pub created_lte: Option<i64>,
}

/// A refund, as stored: its API object and what finds it.
#[derive(Clone, Debug)]
pub struct RefundRecord {
    /// `re_…`.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// The refunded charge's `ch_…`.
    pub charge_id: String,
    /// The Refund object, JSON.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
}
