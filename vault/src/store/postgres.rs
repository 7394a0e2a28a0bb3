//! PostgreSQL behind [`Store`], so that several vault processes can share one database.
//!
//! [`Tx`](super::Tx) is synchronous: a job is a closure that calls it. So each job runs on
//! tokio's blocking pool with the synchronous `postgres` client (tokio-postgres underneath),
//! one job per transaction, on a connection from a small pool. Transactions are READ
//! COMMITTED; `tx.rs` locks the rows whose reads decide writes (a token's use, an idempotency
//! claim, an account's chain head), which keeps every guarantee across processes without
//! serialization failures, so no job ever has to run twice.
//!
//! A database that cannot be reached (refused, restarting, out of connections) is
//! [`StoreError::Unavailable`]: the API answers 503 and nothing of the request was written.
//!
//! The connection is TLS as the URL's `sslmode` and `sslrootcert` say, with libpq's meanings
//! ([`DatabaseTls`]), on rustls and aws-lc-rs like the rest of the vault.

mod schema;
mod tx;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::percent_decode_str;
use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, Statement};
use tokio::sync::Semaphore;
use tokio_postgres_rustls::MakeRustlsConnect;

use self::schema::MIGRATIONS;
use self::tx::PgTx;
use super::{Store, StoreError, StoreResult, TxError, TxJob, TxOutcome};
use crate::crypto::MasterKey;
use crate::tls::{DatabaseCertCheck, database_client_config, database_roots};

/// Connections per process at most; jobs beyond wait for one.
const POOL_SIZE: usize = 16;

/// How long connecting may take, unless the URL says (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Any constant: the advisory lock that makes processes starting together migrate one at a
/// time.
const MIGRATION_LOCK: i64 = 0x6361_7264_7365_616c;

/// PostgreSQL behind [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    // Never the URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

struct Inner {
    config: postgres::Config,
    /// Used unless `sslmode=disable` (then tokio-postgres never asks for TLS).
    tls: MakeRustlsConnect,
    idle: Mutex<Vec<Conn>>,
    /// One per connection: a job holds one while it runs.
    permits: Arc<Semaphore>,
    /// Keys the audit chains; set by [`Store::use_master_key`].
    audit_master: OnceLock<Arc<MasterKey>>,
}

impl Drop for Inner {
    /// A client closes its connection with a `block_on` of its own, which must not run on an
    /// async worker (the last store is often dropped on one): close them on a thread.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *lock(&self.idle));
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(idle));
        }
    }
}

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded list of idle connections stays consistent whatever panicked.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sorts a driver error: could the database not be reached, or did it fail?
pub(super) fn pg_error(e: postgres::Error) -> StoreError {
    let unreachable = if let Some(db) = e.as_db_error() {
        let code = db.code();
        code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::DISK_FULL,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
            ]
            .contains(code)
    } else {
        e.is_closed()
            || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
            || e.to_string().contains("timeout")
    };
    if unreachable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`) and runs pending
    /// migrations: the schema is made on first start.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let DatabaseTls { url, mode, check } = DatabaseTls::from_url(url)?;
        // The parser's message could quote the URL, password included.
        let mut config: postgres::Config = url.parse().map_err(|_| {
            StoreError::Backend(
                "--database-url is not a valid postgres://user:password@host:port/database URL"
                    .into(),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("cardseal-vault");
        }
        config.ssl_mode(mode);
        let tls =
            MakeRustlsConnect::new(database_client_config(check).map_err(StoreError::Backend)?);
        let store = Self {
            inner: Arc::new(Inner {
                config,
                tls,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(POOL_SIZE)),
                audit_master: OnceLock::new(),
            }),
        };
        let inner = Arc::clone(&store.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.connect().map_err(|e| match e {
                StoreError::Unavailable(e) => {
                    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}"))
                }
                e => e,
            })?;
            migrate(&mut conn.client)?;
            inner.put_back(conn);
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        Ok(store)
    }

    async fn run(&self, job: TxJob, write: bool) -> TxOutcome {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the connection pool was closed".into()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.run(job, write)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

/// `sslmode` and `sslrootcert` of a `postgres://` URL, applied by the vault: tokio-postgres
/// knows only `disable`, `prefer` and `require`, and checks no certificate itself.
struct DatabaseTls {
    /// The URL without the two, for tokio-postgres's parser.
    url: String,
    mode: SslMode,
    check: DatabaseCertCheck,
}

impl DatabaseTls {
    /// libpq's meanings: `disable` plaintext; `prefer` (the default) TLS if the server offers
    /// it; `require` TLS; `verify-ca` TLS with a certificate signed by a CA of `sslrootcert`;
    /// `verify-full` that and issued for the host name. `require` (and `prefer`) with an
    /// `sslrootcert` check the chain as `verify-ca` does. Unlike libpq, `sslrootcert` has no
    /// default file (`~/.postgresql/root.crt` is not read), and `prefer` does not fall back to
    /// plaintext when a TLS handshake fails.
    fn from_url(url: &str) -> StoreResult<Self> {
        let bad = |what: &str| StoreError::Backend(format!("--database-url: {what}"));
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let (mut mode, mut root) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = || {
                percent_decode_str(value)
                    .decode_utf8()
                    .map(|v| v.into_owned())
                    .map_err(|_| bad(&format!("{key} is not UTF-8")))
            };
            match key {
                "sslmode" => mode = Some(decoded()?),
                "sslrootcert" => root = Some(PathBuf::from(decoded()?)),
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let roots = || root.as_deref().map(database_roots).transpose();
        let needs_root = |mode: &str| {
            bad(&format!(
                "sslmode={mode} needs sslrootcert=FILE: the PEM certificates of the CAs that \
                 sign the server's certificate"
            ))
        };
        let chain =
            |roots: Option<_>| roots.map_or(DatabaseCertCheck::None, DatabaseCertCheck::Chain);
        let (mode, check) = match mode.as_deref().unwrap_or("prefer") {
            "disable" => (SslMode::Disable, DatabaseCertCheck::None),
            "prefer" => (
                SslMode::Prefer,
                chain(roots().map_err(StoreError::Backend)?),
            ),
            "require" => (
                SslMode::Require,
                chain(roots().map_err(StoreError::Backend)?),
            ),
            m @ "verify-ca" => (
                SslMode::Require,
                DatabaseCertCheck::Chain(
                    roots()
                        .map_err(StoreError::Backend)?
                        .ok_or_else(|| needs_root(m))?,
                ),
            ),
            m @ "verify-full" => (
                SslMode::Require,
                DatabaseCertCheck::ChainAndName(
                    roots()
                        .map_err(StoreError::Backend)?
                        .ok_or_else(|| needs_root(m))?,
                ),
            ),
            _ => {
                return Err(bad(
                    "sslmode must be one of disable, prefer, require, verify-ca and verify-full",
                ));
            }
        };
        Ok(Self { url, mode, check })
    }
}

impl Inner {
    fn connect(&self) -> StoreResult<Conn> {
        let client = self.config.connect(self.tls.clone()).map_err(|e| {
            // The driver's message alone is e.g. "error performing TLS handshake"; the why (an
            // unknown CA, another host name, no TLS on the server) is its source.
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            match (pg_error(e), cause) {
                (StoreError::Unavailable(m), Some(c)) => {
                    StoreError::Unavailable(format!("{m}: {c}"))
                }
                (StoreError::Backend(m), Some(c)) => StoreError::Backend(format!("{m}: {c}")),
                (e, _) => e,
            }
        })?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn put_back(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
    }

    fn run(&self, job: TxJob, write: bool) -> TxOutcome {
        let master = self.audit_master.get().cloned();
        let mut job = Some(job);
        let pooled = lock(&self.idle).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let outcome = match attempt(&mut conn, &mut job, write, master.as_deref()) {
            Ok(outcome) => outcome,
            // BEGIN failed, so the job has not run. A pooled connection may have died with a
            // database restart, and then so have the other idle ones: start afresh, once.
            Err(e) => {
                tracing::debug!(error = %e, "a pooled database connection failed; reconnecting");
                lock(&self.idle).clear();
                conn = self.connect()?;
                attempt(&mut conn, &mut job, write, master.as_deref())
                    .map_err(|e| TxError::Store(pg_error(e)))?
            }
        };
        self.put_back(conn);
        outcome
    }
}

/// Runs `job` in a transaction on `conn`, unless the transaction cannot even begin (`Err`,
/// with `job` left in place).
fn attempt(
    conn: &mut Conn,
    job: &mut Option<TxJob>,
    write: bool,
    master: Option<&MasterKey>,
) -> Result<TxOutcome, postgres::Error> {
    let tx = conn
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .read_only(!write)
        .start()?;
    let Some(job) = job.take() else {
        return Ok(Err(TxError::Store(StoreError::Backend(
            "a job was handed to the database twice".into(),
        ))));
    };
    let pg = PgTx::new(tx, &mut conn.statements, master);
    let outcome = job(&pg);
    let tx = pg.into_inner();
    Ok(match outcome {
        Ok(value) => tx
            .commit()
            .map(|()| value)
            .map_err(|e| TxError::Store(pg_error(e))),
        Err(e) => {
            // A failed rollback leaves a closed connection, which is not pooled again.
            let _ = tx.rollback();
            Err(e)
        }
    })
}

/// Runs the pending migrations in one transaction, under an advisory lock so that processes
/// starting together take turns.
fn migrate(client: &mut Client) -> StoreResult<()> {
    let mut tx = client.transaction().map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS cardseal_schema (version BIGINT NOT NULL);
         INSERT INTO cardseal_schema (version)
           SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM cardseal_schema);",
    )
    .map_err(pg_error)?;
    let version: i64 = tx
        .query_one("SELECT version FROM cardseal_schema", &[])
        .and_then(|r| r.try_get(0))
        .map_err(pg_error)?;
    let done = usize::try_from(version).unwrap_or(usize::MAX);
    if done > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {version}, newer than this vault ({}); upgrade the vault",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.batch_execute(sql).map_err(pg_error)?;
        let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
        tx.execute("UPDATE cardseal_schema SET version = $1", &[&version])
            .map_err(pg_error)?;
    }
    tx.commit().map_err(pg_error)
}

#[async_trait]
impl Store for PostgresStore {
    async fn transact(&self, job: TxJob) -> TxOutcome {
        self.run(job, true).await
    }

    async fn query(&self, job: TxJob) -> TxOutcome {
        self.run(job, false).await
    }

    fn use_master_key(&self, master: Arc<MasterKey>) {
        // Set once: a store serves one vault, whose master key does not change under it.
        let _ = self.inner.audit_master.set(master);
    }
}
