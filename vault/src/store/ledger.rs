//! Saved cards, CVCs, charges, the audit log and idempotency keys.
//!
//! The operations on these must combine freely in one transaction (consume a token, save a
//! card, keep its CVC, append events), so the backend offers a transaction handle, [`Tx`],
//! rather than one method per combination. A backend runs a closure over a `Tx` either as one
//! atomic write ([`Ledger::transact`]) or on a read connection ([`Ledger::query`]).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{StoreError, StoreResult, TokenRecord};
use crate::crypto::MasterKey;

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
    pub summary: super::CardSummary,
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

/// One transaction's view of the ledger. Every method runs inside the caller's transaction.
pub trait Tx {
    /// Marks the account's token used if it is unused and unexpired; see
    /// [`super::Store::use_token`].
    fn use_token(&self, account_id: &str, id: &str, now: i64) -> StoreResult<Option<TokenRecord>>;
    /// The account's token.
    fn token(&self, account_id: &str, id: &str) -> StoreResult<Option<TokenRecord>>;
    /// Stores a new card.
    fn insert_card(&self, card: &CardRecord) -> StoreResult<()>;
    /// The account's card, unless deleted.
    fn card(&self, account_id: &str, id: &str) -> StoreResult<Option<CardRecord>>;
    /// The account's cards, newest first, optionally of one customer, after `starting_after`.
    fn cards(
        &self,
        account_id: &str,
        customer: Option<&str>,
        starting_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CardRecord>>;
    /// Records a setup charge's network transaction id on the card.
    fn set_network_transaction_id(&self, account_id: &str, id: &str, ntid: &str)
    -> StoreResult<()>;
    /// Erases the card's key and data and any CVC; `false` if there was no such card.
    fn delete_card(&self, account_id: &str, id: &str, now: i64) -> StoreResult<bool>;
    /// Stores (replacing any) the card's CVC, sealed, until `expires_at`.
    fn put_cvc(
        &self,
        account_id: &str,
        card_id: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Deletes the card's CVC and returns it if it had not expired at `now`.
    fn take_cvc(&self, account_id: &str, card_id: &str, now: i64) -> StoreResult<Option<Vec<u8>>>;
    /// Until when the card's CVC is kept, if it has one at `now`.
    fn cvc_until(&self, account_id: &str, card_id: &str, now: i64) -> StoreResult<Option<i64>>;
    /// Stores a charge.
    fn insert_charge(&self, charge: &ChargeRecord) -> StoreResult<()>;
    /// The account's charge.
    fn charge(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>>;
    /// Appends an event to the hash chain.
    fn append_event(&self, event: &NewEvent) -> StoreResult<()>;
    /// The account's events, newest first, after `starting_after`.
    fn events(
        &self,
        account_id: &str,
        starting_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Every event in chain order, for `events verify`.
    fn all_events(&self) -> StoreResult<Vec<EventRecord>>;
    /// The account's audit key, wrapped under the master key; `None` before the account's
    /// chain was keyed.
    fn audit_key(&self, account_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Gives every account without an audit key one, re-linking any events it already has
    /// (from a vault that chained with plain SHA-256) under it. Returns accounts keyed.
    fn key_audit_chains(&self) -> StoreResult<u64>;
    /// Claims an idempotency key for a request with hash `request_hash`. A key in flight
    /// longer than `lock_secs` (its process died) is taken over.
    fn claim_key(
        &self,
        account_id: &str,
        key_hash: &[u8; 32],
        request_hash: &[u8; 32],
        now: i64,
        lock_secs: i64,
    ) -> StoreResult<Claim>;
    /// Records the response of a claimed key, kept until `expires_at`.
    fn finish_key(
        &self,
        account_id: &str,
        key_hash: &[u8; 32],
        status: u16,
        body: &[u8],
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Forgets a claimed key, so that a retry runs again (after a 5xx or 429).
    fn release_key(&self, account_id: &str, key_hash: &[u8; 32]) -> StoreResult<()>;
    /// Forgets every claim still in flight, for a process starting on a database no other
    /// process serves: nothing of its previous life is running any more. Returns rows deleted.
    fn release_all_claims(&self) -> StoreResult<u64>;
    /// Deletes expired CVCs and idempotency keys. Returns rows deleted.
    fn purge_ledger(&self, now: i64) -> StoreResult<u64>;
}

/// A closure over a transaction.
pub type TxJob = Box<dyn FnOnce(&dyn Tx) -> StoreResult<()> + Send>;

/// The ledger half of a backend.
#[async_trait]
pub trait Ledger {
    /// Runs `job` in one write transaction: all or nothing.
    async fn transact(&self, job: TxJob) -> StoreResult<()>;
    /// Runs `job` on a read connection; it must not write.
    async fn query(&self, job: TxJob) -> StoreResult<()>;
    /// Hands the backend the master key, which it needs to key the audit chains: appending an
    /// event fails without it.
    fn use_master_key(&self, master: Arc<MasterKey>);
}

/// A failure inside a transaction: the backend's, or the caller's own reason to roll back.
#[derive(Debug)]
pub enum TxError<E> {
    /// Storage failed.
    Store(StoreError),
    /// The caller aborted; nothing was written.
    Abort(E),
}

impl<E> From<StoreError> for TxError<E> {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

type Slot<T, E> = Arc<Mutex<Option<Result<T, E>>>>;

fn run<T, E>(
    slot: Slot<T, E>,
    f: impl FnOnce(&dyn Tx) -> Result<T, TxError<E>> + Send + 'static,
) -> TxJob
where
    T: Send + 'static,
    E: Send + 'static,
{
    Box::new(move |tx| {
        let (keep, result) = match f(tx) {
            Ok(v) => (Some(Ok(v)), Ok(())),
            Err(TxError::Abort(e)) => (
                Some(Err(e)),
                Err(StoreError::Backend("aborted by the caller".into())),
            ),
            Err(TxError::Store(e)) => (None, Err(e)),
        };
        *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keep;
        result
    })
}

fn finish<T, E>(slot: &Slot<T, E>, outcome: StoreResult<()>) -> Result<T, TxError<E>> {
    let kept = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match (kept, outcome) {
        (Some(Err(e)), _) => Err(TxError::Abort(e)),
        (Some(Ok(v)), Ok(())) => Ok(v),
        (_, Err(e)) => Err(TxError::Store(e)),
        (None, Ok(())) => Err(TxError::Store(StoreError::Backend(
            "a transaction ended without a result".into(),
        ))),
    }
}

/// Runs `f` in one write transaction and returns its value. An `Abort` rolls everything back.
pub async fn write<T, E>(
    store: &(dyn Ledger + Sync),
    f: impl FnOnce(&dyn Tx) -> Result<T, TxError<E>> + Send + 'static,
) -> Result<T, TxError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let slot: Slot<T, E> = Arc::new(Mutex::new(None));
    let outcome = store.transact(run(Arc::clone(&slot), f)).await;
    finish(&slot, outcome)
}

/// Runs `f` on a read connection and returns its value.
pub async fn read<T, E>(
    store: &(dyn Ledger + Sync),
    f: impl FnOnce(&dyn Tx) -> Result<T, TxError<E>> + Send + 'static,
) -> Result<T, TxError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let slot: Slot<T, E> = Arc::new(Mutex::new(None));
    let outcome = store.query(run(Arc::clone(&slot), f)).await;
    finish(&slot, outcome)
}
