//! Storage behind one interface: [`Tx`], the unit of work, and [`Store`], which runs a closure
//! over a `Tx` either as one atomic write or on a read connection. A PostgreSQL backend is a
//! second implementation of the two, not a rewrite. SQLite ([`sqlite::SqliteStore`]) is the
//! default; [`postgres::PostgresStore`] lets several processes share one database.
//!
//! [`write`] and [`read`] are what callers use: they carry the closure's value, and the
//! closure's own reason to roll back ([`TxError::Abort`]), through the backend as typed values.

pub mod postgres;
pub mod records;
pub mod sqlite;
pub mod tx;

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

pub use records::RefundRecord;
pub use records::{
    AccountRecord, ApiKeyRecord, CardRecord, CardSummary, ChargeRecord, Claim, EventRecord,
    IssuerInfo, JtiRecord, KeyKind, NewEvent, SealingKeyRecord, TokenRecord, TokenType, WrapSlot,
    WrappedKeyRecord,
};
pub use records::{RecurringPage, RecurringRecord, RecurringRunRecord};
pub use tx::Tx;

use crate::crypto::MasterKey;

/// A storage failure.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// A unique value (such as a `jti`) was already stored.
    Duplicate,
    /// The backend failed; the text is for the operator's log, never for a response.
    Backend(String),
    /// The database cannot be reached (down, restarting, out of connections): nothing was
    /// written, and a retry later may succeed. The text is for the log.
    Unavailable(String),
    /// A write failed for want of space (a full disk): nothing was written, and writes work
    /// again once space returns. The text is for the log.
    OutOfSpace(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Duplicate => f.write_str("duplicate"),
            StoreError::Backend(e) => write!(f, "storage: {e}"),
            StoreError::Unavailable(e) => write!(f, "database unavailable: {e}"),
            StoreError::OutOfSpace(e) => write!(f, "storage out of space: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

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

/// A value crossing the object-safe [`Store`] boundary; [`write`] and [`read`] restore its type.
pub type Erased = Box<dyn Any + Send>;

/// How a job ended: its value, or why it rolled back. Any `Err` rolls the job back.
pub type TxOutcome = Result<Erased, TxError<Erased>>;

/// A closure over a transaction.
pub type TxJob = Box<dyn FnOnce(&dyn Tx) -> TxOutcome + Send>;

/// A storage backend: opens transactions around [`Tx`].
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Runs `job` in one write transaction: all or nothing. A commit that fails turns the
    /// job's value into [`TxError::Store`].
    async fn transact(&self, job: TxJob) -> TxOutcome;
    /// Runs `job` on a read connection; it must not write.
    async fn query(&self, job: TxJob) -> TxOutcome;
    /// Hands the backend the master key, which it needs to key the audit chains: appending an
    /// event fails without it.
    fn use_master_key(&self, master: Arc<MasterKey>);
    /// Whether writes are failing for want of space, as the last ones found. A backend that
    /// cannot tell says no.
    fn out_of_space(&self) -> bool {
        false
    }
    /// Tries a small real write, to learn whether space came back; on success
    /// [`Store::out_of_space`] turns false.
    async fn probe_write(&self) -> StoreResult<()> {
        Ok(())
    }
    /// The connections and queued work of the backend, for `/metrics`.
    fn pool_stats(&self) -> PoolStats {
        PoolStats::default()
    }
}

pub use crate::metrics::PoolStats;

fn erase<T, E>(f: impl FnOnce(&dyn Tx) -> Result<T, TxError<E>> + Send + 'static) -> TxJob
where
    T: Send + 'static,
    E: Send + 'static,
{
    Box::new(move |tx| match f(tx) {
        Ok(v) => Ok(Box::new(v)),
        Err(TxError::Abort(e)) => Err(TxError::Abort(Box::new(e))),
        Err(TxError::Store(e)) => Err(TxError::Store(e)),
    })
}

fn restore<T: 'static, E: 'static>(outcome: TxOutcome) -> Result<T, TxError<E>> {
    // A backend hands back exactly what the job returned, so the types always match.
    let mixed_up = || StoreError::Backend("a transaction's result changed type".into());
    match outcome {
        Ok(v) => v.downcast::<T>().map(|v| *v).map_err(|_| mixed_up().into()),
        Err(TxError::Abort(e)) => Err(e
            .downcast::<E>()
            .map_or_else(|_| mixed_up().into(), |e| TxError::Abort(*e))),
        Err(TxError::Store(e)) => Err(TxError::Store(e)),
    }
}

/// Runs `f` in one write transaction and returns its value. An `Abort` rolls everything back
/// and comes back as it was given.
pub async fn write_or_abort<T, E>(
    store: &dyn Store,
    f: impl FnOnce(&dyn Tx) -> Result<T, TxError<E>> + Send + 'static,
) -> Result<T, TxError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let start = std::time::Instant::now();
    let outcome = store.transact(erase(f)).await;
    crate::metrics::transaction("write", start.elapsed());
    restore(outcome)
}

/// Runs `f` on a read connection and returns its value, or its `Abort`.
pub async fn read_or_abort<T, E>(
    store: &dyn Store,
    f: impl FnOnce(&dyn Tx) -> Result<T, TxError<E>> + Send + 'static,
) -> Result<T, TxError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let start = std::time::Instant::now();
    let outcome = store.query(erase(f)).await;
    crate::metrics::transaction("read", start.elapsed());
    restore(outcome)
}

fn no_abort<T>(r: Result<T, TxError<Infallible>>) -> StoreResult<T> {
    r.map_err(|e| match e {
        TxError::Store(e) => e,
        TxError::Abort(never) => match never {},
    })
}

/// Runs `f` in one write transaction, for work that never aborts.
pub async fn write<T: Send + 'static>(
    store: &dyn Store,
    f: impl FnOnce(&dyn Tx) -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    no_abort(write_or_abort(store, move |tx| f(tx).map_err(TxError::Store)).await)
}

/// Runs `f` on a read connection, for work that never aborts.
pub async fn read<T: Send + 'static>(
    store: &dyn Store,
    f: impl FnOnce(&dyn Tx) -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    no_abort(read_or_abort(store, move |tx| f(tx).map_err(TxError::Store)).await)
}
