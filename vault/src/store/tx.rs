//! [`Tx`]: one transaction's view of everything the vault stores.

use super::StoreResult;
use super::records::RefundRecord;
use super::records::{
    AccountRecord, ApiKeyRecord, CardRecord, ChargeRecord, Claim, EventRecord, JtiRecord, NewEvent,
    SealingKeyRecord, TokenRecord, WrapSlot, WrappedKeyRecord,
};
use super::records::{RecurringPage, RecurringRecord, RecurringRunRecord};
use crate::pagination::Page;

/// The unit of work. Every method runs inside the caller's transaction, so any mix of them
/// (consume a token, save a card, keep its CVC, append events) commits or rolls back as one.
/// A backend implements this once; [`super::Store`] only opens transactions around it.
pub trait Tx {
    // Sealing keys.

    /// All sealing keys, oldest first.
    fn sealing_keys(&self) -> StoreResult<Vec<SealingKeyRecord>>;
    /// Adds a key and marks every other unsuperseded key as superseded at `key.created`.
    fn add_sealing_key(&self, key: &SealingKeyRecord) -> StoreResult<()>;
    /// Destroys the sealing keys superseded before `before` (their grace period is over), never
    /// the active key. Returns how many.
    fn delete_sealing_keys(&self, before: i64) -> StoreResult<u64>;

    // Accounts and API keys.

    /// Adds an account and its API keys; [`super::StoreError::Duplicate`] for a second demo
    /// account.
    fn add_account(&self, account: &AccountRecord, keys: &[ApiKeyRecord]) -> StoreResult<()>;
    /// The demo account and its keys, if one was made.
    fn demo_account(&self) -> StoreResult<Option<(AccountRecord, Vec<ApiKeyRecord>)>>;
    /// The API key with this hash, and its account.
    fn api_key(&self, key_hash: &[u8; 32]) -> StoreResult<Option<(ApiKeyRecord, AccountRecord)>>;
    /// The account with this id.
    fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>>;
    /// Adds `key` and makes every other unrevoked key of its kind on its account expire at
    /// `old_expire_at` (a key due to expire earlier keeps its expiry). Returns how many keys
    /// got the new expiry.
    fn roll_api_key(&self, key: &ApiKeyRecord, old_expire_at: i64) -> StoreResult<u64>;
    /// Marks the key with this hash revoked at `now` (an earlier revocation stands). `false`
    /// when there is no such key.
    fn revoke_api_key(&self, key_hash: &[u8; 32], now: i64) -> StoreResult<bool>;
    /// Replaces an account's allowed origins. `false` when there is no such account.
    fn set_allowed_origins(&self, account_id: &str, origins: &[String]) -> StoreResult<bool>;
    /// The hosts the account may forward cards to (normalised allow-list entries); empty for
    /// an unknown account.
    fn forward_hosts(&self, account_id: &str) -> StoreResult<Vec<String>>;
    /// Replaces an account's forward allow-list. `false` when there is no such account.
    fn set_forward_hosts(&self, account_id: &str, hosts: &[String]) -> StoreResult<bool>;

    // Tokens.

    /// Records `jti`, stores `token` and appends `token.created`.
    /// [`super::StoreError::Duplicate`] when the `jti` was seen before.
    fn add_token(&self, token: &TokenRecord, jti: &JtiRecord) -> StoreResult<()>;
    /// The token made earlier from this `jti` (same expiry and hash) by the same account with
    /// the same idempotency key: the answer to a retried request whose first response was
    /// lost. `None` when `jti` has no idempotency key.
    fn replayed_token(&self, jti: &JtiRecord) -> StoreResult<Option<TokenRecord>>;
    /// The account's token.
    fn token(&self, account_id: &str, id: &str) -> StoreResult<Option<TokenRecord>>;
    /// Marks the account's token used, if it is unused and unexpired at `now`, and destroys its
    /// sealed card; returns the token as it was, sealed card included, for its one use. Of
    /// many concurrent calls for one token, at most one gets `Some`.
    fn use_token(&self, account_id: &str, id: &str, now: i64) -> StoreResult<Option<TokenRecord>>;
    /// Deletes expired `jti`s and the card data of expired tokens. Returns rows touched.
    fn purge(&self, now: i64) -> StoreResult<u64>;

    // Saved cards and their CVCs.

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

    // Charges.

    /// Stores a charge.
    fn insert_charge(&self, charge: &ChargeRecord) -> StoreResult<()>;
    /// The account's charge.
    fn charge(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>>;

    // The audit log.

    /// Appends an event to the account's keyed hash chain.
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

    // Idempotency keys.

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

    // Master-key rotation.

    /// Every key wrapped under the master key: sealing keys, accounts' data, fingerprint and
    /// audit keys (where set), and the demo account's API keys.
    fn wrapped_keys(&self) -> StoreResult<Vec<WrappedKeyRecord>>;
    /// Replaces one wrapped key with `new` if it is still `old`; `false` if it was not (changed
    /// or gone).
    fn rewrap_key(&self, slot: WrapSlot, row: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;

    // Recurring charges.

    /// Stores a new schedule.
    fn insert_recurring(&self, r: &RecurringRecord) -> StoreResult<()>;
    /// The account's schedule. With `lock`, the row stays locked to this transaction (on a
    /// backend with row locks), so that runs and cancels of one schedule take turns.
    fn recurring(
        &self,
        account_id: &str,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<RecurringRecord>>;
    /// Writes a schedule's state (status, period, attempt, next run, cancel time).
    fn update_recurring(&self, r: &RecurringRecord) -> StoreResult<()>;
    /// A page of the account's schedules, newest first (`ending_before`: the page just newer
    /// than it, still newest first).
    fn recurring_page(
        &self,
        account_id: &str,
        page: &RecurringPage,
    ) -> StoreResult<Vec<RecurringRecord>>;
    /// Schedules of every account with a run due at `now`, soonest first: (account, id).
    fn due_recurring(&self, now: i64, limit: usize) -> StoreResult<Vec<(String, String)>>;
    /// Claims a run: `false` when that (schedule, period, attempt) was claimed before, by this
    /// process or another. The uniqueness comes from the database, not from timing.
    fn claim_recurring_run(&self, run: &RecurringRunRecord) -> StoreResult<bool>;
    /// Records the charge a claimed run made.
    fn finish_recurring_run(&self, run: &RecurringRunRecord) -> StoreResult<()>;
    /// A schedule's runs, oldest first.
    fn recurring_runs(&self, recurring_id: &str) -> StoreResult<Vec<RecurringRunRecord>>;

    // Charges' later life: capture, refunds, lists.

    /// The account's charge, locked until the transaction ends, so that of concurrent
    /// captures and refunds of one charge each sees the one before it.
    fn charge_for_update(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>>;
    /// Replaces the charge's object.
    fn update_charge(&self, account_id: &str, id: &str, object: &str) -> StoreResult<()>;
    /// A page of the account's charges (see [`Page::fetch`] for how many, in which order).
    fn charges(&self, account_id: &str, page: &Page) -> StoreResult<Vec<ChargeRecord>>;
    /// Stores a refund.
    fn insert_refund(&self, refund: &RefundRecord) -> StoreResult<()>;
    /// The account's refund.
    fn refund(&self, account_id: &str, id: &str) -> StoreResult<Option<RefundRecord>>;
    /// A page of the account's refunds, optionally of one charge.
    fn refunds(
        &self,
        account_id: &str,
        charge_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<RefundRecord>>;

    // Migration between vaults (`import`).

    /// Whether a card row with this id exists at all: live or deleted, of any account. An
    /// imported card keeps its id, which must not collide with one this vault ever gave out.
    fn card_id_taken(&self, id: &str) -> StoreResult<bool>;

    // Scale: the batched purge and the plans of hot statements.

    /// Deletes up to `limit` replay records expired at `before`, oldest first. Returns rows
    /// deleted; fewer than `limit` means none are left.
    fn purge_jtis(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` tokens: used at or before `used_before`, then unused ones expired
    /// at or before `expired_before` (their card data with them). Returns rows deleted; fewer
    /// than `limit` means none are left.
    fn purge_tokens(&self, used_before: i64, expired_before: i64, limit: u32) -> StoreResult<u64>;
    /// The query plan of each statement on the vault's hot path, by name: what the backend's
    /// `EXPLAIN` says, one line per step, for tests to check that each uses its index.
    fn explain_hot(&self) -> StoreResult<Vec<(&'static str, String)>>;
    /// Stores `tokens` as they are, without replay records or events: synthetic data for the
    /// scale benchmark (`vault/benches/scale.rs`), straight into the table. Returns rows stored.
    fn bulk_insert_tokens(&self, tokens: &[TokenRecord]) -> StoreResult<u64>;
}
