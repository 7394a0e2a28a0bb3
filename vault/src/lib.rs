#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts;
pub mod api;
pub mod assets;
pub mod bins;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod custody;
pub mod domain;
pub mod error;
pub mod events;
pub mod fields;
pub mod forward;
pub mod health;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod migrate;
pub mod pagination;
pub mod pan_scan;
pub mod processor;
pub mod purge;
pub mod ratelimit;
pub mod recurring;
pub mod server;
pub mod store;
pub mod tls;
pub mod unseal;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use tokio::sync::Mutex as AsyncMutex;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{AccountKeys, MasterKey, WrappedAccountKeys, sha256};
use crate::keys::{KeyError, KeyRing};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
pub use crate::server::Vault;
use crate::store::{KeyKind, Store, StoreError};

/// The router: the whole public HTTP surface (the API and, with `--snippet-dir`, the snippet
/// files), all with request ids, logging, metrics, authentication and CORS.
pub fn app(state: AppState) -> Router {
    api::router(state)
}

/// The operators' router, for `--admin-listen`: `/metrics` and `/healthz`, no authentication
/// and no CORS. It must not be reachable from the internet.
pub fn admin_app(state: AppState) -> Router {
    api::admin_router(state)
}

/// Who is calling: the account and key behind an `Authorization` header.
pub struct Principal {
    /// The account.
    pub account_id: String,
    /// The key's kind.
    pub kind: KeyKind,
    /// A restricted key's scopes.
    pub scopes: Vec<String>,
    /// The account's allowed origins.
    pub origins: Vec<String>,
    /// The account's data and fingerprint keys.
    pub keys: AccountKeys,
    /// A short, non-secret name of the key for rate-limit buckets and logs.
    pub key_ref: String,
    /// When a rolled key stops working (Unix seconds).
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("account_id", &self.account_id)
            .field("kind", &self.kind)
            .field("key_ref", &self.key_ref)
            .finish_non_exhaustive()
    }
}

/// A principal by key hash, with when its row was last read.
type CachedPrincipal = (Arc<Principal>, Instant);

/// Shared state of a running vault. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    key_limiter: RateLimiter,
    ip_limiter: RateLimiter,
    card_limiter: RateLimiter,
    decline_limiter: RateLimiter,
    principals: RwLock<HashMap<[u8; 32], CachedPrincipal>>,
    /// Serialises key reloads and remembers when the last one asked for by an unknown `kid`
    /// ran.
    reload: AsyncMutex<Option<Instant>>,
}

/// Why the vault could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl From<KeyError> for StartError {
    fn from(e: KeyError) -> Self {
        StartError(e.to_string())
    }
}

/// An unknown `kid` reloads the keys at most this often (another process may have rotated).
const RELOAD_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How long an authenticated key is trusted before its row is read again. A key revoked or
/// rolled, or an origin list changed, by another process (the CLI, another instance) takes
/// effect within this; under it, a request costs no database read.
const PRINCIPAL_TTL: Duration = Duration::from_millis(500);

impl AppState {
    /// Loads the sealing keys (making the first one if there is none).
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        master: MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let keys = KeyRing::load(store.as_ref(), &master, clock.now()).await?;
        let master = Arc::new(master);
        store.use_master_key(Arc::clone(&master));
        // Chains written by a vault from before keyed chains are keyed now, at the first start
        // that can, rather than whenever each account next has an event.
        let keyed = store::write(store.as_ref(), |tx| tx.key_audit_chains())
            .await
            .map_err(|e| StartError(format!("keying the audit log: {e}")))?;
        if keyed > 0 {
            tracing::info!(accounts = keyed, "made audit keys");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                key_limiter: RateLimiter::with_clock(config.rate_per_key, Arc::clone(&clock)),
                ip_limiter: RateLimiter::with_clock(config.rate_per_ip, Arc::clone(&clock)),
                card_limiter: RateLimiter::with_clock(config.rate_per_card, Arc::clone(&clock)),
                decline_limiter: RateLimiter::with_clock(config.rate_declines, Arc::clone(&clock)),
                config,
                store,
                master,
                keys,
                clock,
                metrics: Metrics::default(),
                principals: RwLock::new(HashMap::new()),
                reload: AsyncMutex::new(None),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// The master key.
    pub fn master(&self) -> &MasterKey {
        &self.inner.master
    }

    /// The sealing keys.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// The clock.
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn key_limiter(&self) -> &RateLimiter {
        &self.inner.key_limiter
    }

    pub(crate) fn ip_limiter(&self) -> &RateLimiter {
        &self.inner.ip_limiter
    }

    pub(crate) fn card_limiter(&self) -> &RateLimiter {
        &self.inner.card_limiter
    }

    pub(crate) fn decline_limiter(&self) -> &RateLimiter {
        &self.inner.decline_limiter
    }

    /// Makes a new active sealing key; the old ones keep decrypting for the grace period.
    pub async fn rotate_keys(&self) -> Result<String, KeyError> {
        let kid = keys::add_key(self.store(), self.master(), self.now()).await?;
        self.reload_keys().await?;
        Ok(kid)
    }

    /// Re-reads the sealing keys from the store.
    pub async fn reload_keys(&self) -> Result<(), KeyError> {
        let _serial = self.inner.reload.lock().await;
        self.inner.keys.reload(self.store(), self.master()).await
    }

    /// Re-reads the keys unless that was done very recently; for an unknown `kid`.
    pub(crate) async fn reload_keys_throttled(&self) {
        let mut last = self.inner.reload.lock().await;
        if last.is_some_and(|t| t.elapsed() < RELOAD_MIN_INTERVAL) {
            return;
        }
        if let Err(e) = self.inner.keys.reload(self.store(), self.master()).await {
            tracing::error!(error = %e, "reloading sealing keys failed");
        }
        *last = Some(Instant::now());
    }

    /// The caller behind an API key, or `None` for a key that does not exist, was revoked or
    /// has expired.
    pub async fn authenticate(&self, api_key: &str) -> Result<Option<Arc<Principal>>, StoreError> {
        let hash = sha256(api_key.as_bytes());
        let now = self.now();
        let cached = self
            .inner
            .principals
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
            .map(|(p, read_at)| (Arc::clone(p), *read_at));
        if let Some((p, read_at)) = &cached {
            // A grace period can end between two reads of the row.
            if p.expires_at.is_some_and(|t| t <= now) {
                self.forget_principal(&hash);
                return Ok(None);
            }
            if read_at.elapsed() < PRINCIPAL_TTL {
                return Ok(Some(Arc::clone(p)));
            }
        }
        let read_at = Instant::now();
        let row = store::read(self.store(), move |tx| tx.api_key(&hash)).await?;
        let Some((key, account)) = row.filter(|(key, _)| key.usable_at(now)) else {
            self.forget_principal(&hash);
            return Ok(None);
        };
        let unchanged = cached.as_ref().is_some_and(|(p, _)| {
            p.account_id == account.id
                && p.kind == key.kind
                && p.scopes == key.scopes
                && p.origins == account.allowed_origins
                && p.expires_at == key.expires_at
        });
        let principal = match cached {
            // Most refreshes find nothing changed: keep the principal and its unwrapped keys.
            Some((p, _)) if unchanged => p,
            _ => {
                let keys = AccountKeys::unwrap(
                    self.master(),
                    &account.id,
                    &WrappedAccountKeys {
                        data_key: account.wrapped_data_key,
                        fingerprint_key: account.wrapped_fingerprint_key,
                    },
                )
                .map_err(|_| {
                    StoreError::Backend("cannot unwrap an account's keys: wrong master key?".into())
                })?;
                Arc::new(Principal {
                    key_ref: hex::encode(&hash[..8]),
                    account_id: account.id,
                    kind: key.kind,
                    scopes: key.scopes,
                    origins: account.allowed_origins,
                    keys,
                    expires_at: key.expires_at,
                })
            }
        };
        self.inner
            .principals
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(hash, (Arc::clone(&principal), read_at));
        Ok(Some(principal))
    }

    fn forget_principal(&self, hash: &[u8; 32]) {
        self.inner
            .principals
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(hash);
    }

    /// Destroys the private keys whose grace period is over: a retired key can then never
    /// open anything again, even from a stolen database and master key. Returns how many.
    pub async fn retire_keys(&self) -> Result<u64, KeyError> {
        let before = self.now().saturating_sub(self.config().key_grace_secs);
        let n = store::write(self.store(), move |tx| tx.delete_sealing_keys(before)).await?;
        if n > 0 {
            tracing::info!(keys = n, "destroyed retired sealing keys");
            self.reload_keys().await?;
        }
        Ok(n)
    }

    /// Periodic upkeep for a server: reloads keys rotated by `keys rotate`, destroys retired
    /// keys, and purges expired replay records and token data. Runs until the task is dropped.
    pub async fn maintain(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // While out of space, see whether space came back even if no request writes.
            health::writable(&self).await;
            if let Err(e) = self.reload_keys().await {
                tracing::error!(error = %e, "reloading sealing keys failed");
            }
            if let Err(e) = self.retire_keys().await {
                tracing::error!(error = %e, "retiring sealing keys failed");
            }
            let now = self.now();
            match purge::purge(self.store(), now, &purge::PurgeSettings::default()).await {
                Ok(p) if p.jtis + p.tokens == 0 => {}
                Ok(p) => {
                    tracing::debug!(jtis = p.jtis, tokens = p.tokens, "purged expired records")
                }
                Err(e) => tracing::error!(error = %e, "purge failed"),
            }
            // Expired CVCs and idempotency keys: a CVC is unusable after its hour anyway; this
            // removes its sealed bytes too.
            let purged = store::write(self.store(), move |tx| tx.purge_ledger(now)).await;
            if let Err(e) = purged {
                tracing::error!(error = %e, "purging CVCs and idempotency keys failed");
            }
            if let Err(e) = recurring::run_due(&self).await {
                tracing::error!(error = %e, "running recurring charges failed");
            }
        }
    }
}
