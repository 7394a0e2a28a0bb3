//! The default store: one SQLite file in the data directory, in WAL mode.
//!
//! One thread writes, committing whatever jobs are waiting in one transaction (each job in its
//! own savepoint, so one failing job does not undo the others), and a few connections read on
//! tokio's blocking pool. A second thread checkpoints the WAL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    AccountRecord, ApiKeyRecord, CardSummary, JtiRecord, KeyKind, SealingKeyRecord, Store,
    StoreError, StoreResult, TokenRecord, TokenType,
};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "cardseal-vault.sqlite3";

pub mod ledger;

/// Ordered migrations; `PRAGMA user_version` counts how many ran. Append only: a shipped
/// migration never changes.
const MIGRATIONS: &[&str] = &[
    // 1: keys, accounts, tokens and replay protection.
    "
    CREATE TABLE sealing_keys (
        kid           TEXT PRIMARY KEY,
        private_key   BLOB NOT NULL,     -- PKCS#8 DER wrapped under the master key
        public_jwk    TEXT NOT NULL,
        created       INTEGER NOT NULL,
        superseded_at INTEGER
    ) STRICT;
    CREATE TABLE accounts (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        allowed_origins TEXT NOT NULL,   -- JSON array of origin patterns
        data_key        BLOB NOT NULL,   -- AES-256-GCM key wrapped under the master key
        fingerprint_key BLOB NOT NULL,   -- HMAC-SHA256 key wrapped under the master key
        demo            INTEGER NOT NULL DEFAULT 0,
        created         INTEGER NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX accounts_one_demo ON accounts(demo) WHERE demo = 1;
    CREATE TABLE api_keys (
        key_hash    BLOB PRIMARY KEY,    -- SHA-256 of the key; the key itself is not kept
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        kind        TEXT NOT NULL,
        scopes      TEXT NOT NULL,       -- JSON array
        wrapped_key BLOB,                -- demo account only
        created     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX api_keys_account ON api_keys(account_id);
    CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        type        TEXT NOT NULL,
        brand       TEXT,
        bin         TEXT,
        last4       TEXT,
        exp_month   INTEGER,
        exp_year    INTEGER,
        fingerprint BLOB,
        sealed      BLOB,                -- card data, AES-256-GCM, AAD = account and token id
        client_ip   TEXT,
        created     INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    ) STRICT;
    CREATE INDEX tokens_expiry ON tokens(expires_at) WHERE sealed IS NOT NULL;
    -- Keyed by expiry first: a replayed JWE carries the same iat, hence the same expiry, so
    -- uniqueness holds; inserts land at the end of the B-tree instead of on a random page;
    -- and the purge is a range delete on the key.
    CREATE TABLE seen_jtis (
        expires_at      INTEGER NOT NULL,
        jti_hash        BLOB NOT NULL,    -- SHA-256 of the JWE's jti
        account_id      TEXT NOT NULL,
        token_id        TEXT NOT NULL,
        idempotency_key BLOB,             -- SHA-256 of the request's Idempotency-Key
        PRIMARY KEY (expires_at, jti_hash)
    ) STRICT, WITHOUT ROWID;
    ",
    // 2: saved cards, CVCs, charges, the audit log and idempotency keys.
    ledger::MIGRATION,
    // 3: API keys can be rolled (the old one expires after a grace period) and revoked.
    "
    ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
    ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
    ",
    // 4: per-account audit keys for the keyed event chains.
    ledger::AUDIT_KEY_MIGRATION,
    // 5: the hosts `POST /v1/forward` may send cards to (`accounts update --forward-host`).
    "ALTER TABLE accounts ADD COLUMN forward_hosts TEXT NOT NULL DEFAULT '[]'; -- JSON array",
];

/// How many read connections to keep.
const READERS: usize = 4;

/// SQLite behind [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Work for the writer thread. (A `Mutex` only because `Sender` is not `Sync` on every
    /// supported toolchain; it is held for the duration of one `send`.)
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    /// Keys the audit chains; set by [`crate::store::ledger::Ledger::use_master_key`].
    audit_master: std::sync::OnceLock<Arc<crate::crypto::MasterKey>>,
}

/// A unit of writing: runs inside the group transaction and returns what to tell its caller
/// once the transaction has committed (or failed to).
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// Jobs committed together at most; more wait for the next transaction.
const MAX_GROUP: usize = 256;

/// How long a busy writer waits to gather more jobs into one transaction.
const GATHER: Duration = Duration::from_micros(500);

/// How often the WAL is checkpointed into the database file, off the write path.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    run_cached(conn, "SAVEPOINT job")?;
    let result = f(conn);
    if result.is_err() {
        run_cached(conn, "ROLLBACK TO job")?;
    }
    run_cached(conn, "RELEASE job")?;
    result
}

/// Runs a parameterless statement, parsed once per connection.
fn run_cached(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(backend)
}

/// The writer thread: takes every job that is waiting, runs them in one transaction, commits
/// once, then answers them all. Under load this is group commit: one WAL append and one lock
/// round for many tokens. It ends when every `SqliteStore` is dropped.
fn writer_loop(conn: Connection, jobs: mpsc::Receiver<Job>) {
    let mut busy = false;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        // Under load (the last group had company) wait a moment for more jobs: a commit's
        // fixed cost (locks, WAL frame headers, wal-index update) is then shared by more
        // tokens. An idle vault commits a lone job at once.
        // Sleeping rather than waiting on the channel also spares each sender a futex wake.
        if busy {
            std::thread::sleep(GATHER);
        }
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        busy = batch.len() > 1;
        let begin = run_cached(&conn, "BEGIN IMMEDIATE");
        if let Err(e) = begin {
            for job in batch {
                // The job never ran; only its reply is wanted. Run it against nothing by
                // answering with the error straight away.
                drop(job);
                tracing::error!(error = %e, "cannot start a database transaction");
            }
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn)).collect();
        let commit = run_cached(&conn, "COMMIT");
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(commit.clone());
        }
    }
}

/// Every this many checkpoints, one truncates the WAL (see [`checkpoint_loop`]).
const TRUNCATE_EVERY: u32 = 20;

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`], so that the
/// writer never stalls on a checkpoint's fsync. Every [`TRUNCATE_EVERY`]th one also empties
/// the WAL file: a passive checkpoint leaves old frames in it, and those would keep the sealed
/// card of a used token or a deleted card that the database file itself no longer holds.
/// Ends with the store.
fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<Inner>) {
    let mut n: u32 = 0;
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        n = n.wrapping_add(1);
        let mode = if n.is_multiple_of(TRUNCATE_EVERY) {
            "TRUNCATE"
        } else {
            "PASSIVE"
        };
        match checkpoint(&conn, mode) {
            Ok(true) => {}
            // Busy: a reader or the writer was in the way; the next round catches up.
            Ok(false) => tracing::debug!(mode, "WAL checkpoint could not complete"),
            Err(e) => tracing::warn!(error = %e, mode, "WAL checkpoint failed"),
        }
    }
}

/// Runs a checkpoint; `false` when a reader or writer kept it from completing.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<bool> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        r.get::<_, i64>(0).map(|busy| busy == 0)
    })
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a connection that SQLite itself keeps consistent
    // (an open transaction is rolled back when its guard drops), so poisoning is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL: readers never block the writer. NORMAL: a power cut may lose the last commits but
    // never corrupts the file. secure_delete: deleted card blobs are overwritten, not left in
    // free pages.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and runs pending migrations.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        Self::open_file(&data_dir.join(DB_FILE))
    }

    /// Opens the database at `path`.
    pub fn open_file(path: &Path) -> StoreResult<Self> {
        create_private(path)?;
        let mut writer = open(path).map_err(backend)?;
        migrate(&mut writer)?;
        // Checkpoints run on their own connection instead of inside some unlucky commit.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(backend)?;
        let checkpointer = open(path).map_err(backend)?;
        let (jobs, queue) = mpsc::channel();
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            jobs: Mutex::new(jobs),
            readers: Mutex::new(Vec::new()),
            audit_master: std::sync::OnceLock::new(),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map(drop)
                .map_err(|e| StoreError::Backend(format!("cannot start the {name} thread: {e}")))
        };
        spawn(
            "sqlite-writer",
            Box::new(move || writer_loop(writer, queue)),
        )?;
        let alive = Arc::downgrade(&inner);
        spawn(
            "sqlite-checkpoint",
            Box::new(move || checkpoint_loop(checkpointer, alive)),
        )?;
        Ok(Self { inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Copies the WAL into the database file and empties it now, as the checkpoint thread
    /// does every few seconds; afterwards no destroyed card data is left in either file.
    pub fn checkpoint(&self) -> StoreResult<()> {
        let conn = open(&self.inner.path).map_err(backend)?;
        for _ in 0..100 {
            if checkpoint(&conn, "TRUNCATE").map_err(backend)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(StoreError::Backend(
            "the WAL checkpoint stayed busy for 2 s".into(),
        ))
    }

    /// Runs `f` on the writer thread, inside a savepoint of the current group transaction,
    /// and answers once that transaction has committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = in_savepoint(conn, f);
            Box::new(move |commit: StoreResult<()>| {
                // The caller may have gone away (a dropped request); nothing to do then.
                let _ = reply_tx.send(commit.and(result));
            })
        });
        lock(&self.inner.jobs)
            .send(job)
            .map_err(|_| StoreError::Backend("the database writer has stopped".into()))?;
        reply_rx
            .await
            .map_err(|_| StoreError::Backend("the database writer has stopped".into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = lock(&inner.readers).pop();
            let conn = match conn {
                Some(c) => c,
                None => open(&inner.path).map_err(backend)?,
            };
            let out = f(&conn);
            let mut readers = lock(&inner.readers);
            if readers.len() < READERS {
                readers.push(conn);
            }
            out
        })
        .await
        .map_err(backend)?
    }
}

/// Creates the database file owner-only (SQLite gives its -wal and -shm files the same mode).
fn create_private(path: &Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {version}, newer than this vault ({}); upgrade the vault",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn json_list(list: &[String]) -> StoreResult<String> {
    serde_json::to_string(list).map_err(backend)
}

fn parse_list(text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn bad_value(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unexpected stored {what}").into(),
    )
}

const ACCOUNT_COLS: &str =
    "a.id, a.name, a.allowed_origins, a.data_key, a.fingerprint_key, a.demo, a.created";

fn account_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: r.get(at)?,
        name: r.get(at + 1)?,
        allowed_origins: parse_list(&r.get::<_, String>(at + 2)?)?,
        wrapped_data_key: r.get(at + 3)?,
        wrapped_fingerprint_key: r.get(at + 4)?,
        demo: r.get(at + 5)?,
        created: r.get(at + 6)?,
    })
}

const KEY_COLS: &str = "k.key_hash, k.account_id, k.kind, k.scopes, k.wrapped_key, k.created, k.expires_at, k.revoked_at";
/// How many columns [`KEY_COLS`] names.
const KEY_COL_COUNT: usize = 8;

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let kind: String = r.get(2)?;
    Ok(ApiKeyRecord {
        key_hash: r.get(0)?,
        account_id: r.get(1)?,
        kind: KeyKind::parse(&kind).ok_or_else(|| bad_value("key kind"))?,
        scopes: parse_list(&r.get::<_, String>(3)?)?,
        wrapped_key: r.get(4)?,
        created: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

const TOKEN_COLS: &str = "id, account_id, type, brand, bin, last4, exp_month, exp_year, fingerprint, sealed, client_ip, created, expires_at, used_at";

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let token_type: String = r.get(2)?;
    let brand: Option<String> = r.get(3)?;
    let card = match brand {
        Some(brand) => Some(CardSummary {
            brand,
            bin: r.get(4)?,
            last4: r.get(5)?,
            exp_month: r.get(6)?,
            exp_year: r.get(7)?,
            fingerprint: r.get(8)?,
        }),
        None => None,
    };
    Ok(TokenRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        token_type: TokenType::parse(&token_type).ok_or_else(|| bad_value("token type"))?,
        card,
        sealed: r.get(9)?,
        client_ip: r.get(10)?,
        created: r.get(11)?,
        expires_at: r.get(12)?,
        used_at: r.get(13)?,
    })
}

fn insert_api_key(c: &Connection, k: &ApiKeyRecord) -> StoreResult<()> {
    c.execute(
        "INSERT INTO api_keys (key_hash, account_id, kind, scopes, wrapped_key, created, expires_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            k.key_hash,
            k.account_id,
            k.kind.as_str(),
            json_list(&k.scopes)?,
            k.wrapped_key,
            k.created,
            k.expires_at,
            k.revoked_at
        ],
    )
    .map(drop)
    .map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    async fn sealing_keys(&self) -> StoreResult<Vec<SealingKeyRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT kid, private_key, public_jwk, created, superseded_at
                     FROM sealing_keys ORDER BY created, rowid",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(SealingKeyRecord {
                        kid: r.get(0)?,
                        wrapped_private_key: r.get(1)?,
                        public_jwk: r.get(2)?,
                        created: r.get(3)?,
                        superseded_at: r.get(4)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn add_sealing_key(&self, key: SealingKeyRecord) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE sealing_keys SET superseded_at = ?1 WHERE superseded_at IS NULL",
                params![key.created],
            )
            .map_err(backend)?;
            c.execute(
                "INSERT INTO sealing_keys (kid, private_key, public_jwk, created, superseded_at)
                 VALUES (?1, ?2, ?3, ?4, NULL)",
                params![
                    key.kid,
                    key.wrapped_private_key,
                    key.public_jwk,
                    key.created
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn add_account(
        &self,
        account: AccountRecord,
        keys: Vec<ApiKeyRecord>,
    ) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO accounts (id, name, allowed_origins, data_key, fingerprint_key, demo, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    account.id,
                    account.name,
                    json_list(&account.allowed_origins)?,
                    account.wrapped_data_key,
                    account.wrapped_fingerprint_key,
                    account.demo,
                    account.created
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Duplicate
                }
                e => backend(e),
            })?;
            for k in &keys {
                insert_api_key(c, k)?;
            }
            Ok(())
        })
        .await
    }

    async fn demo_account(&self) -> StoreResult<Option<(AccountRecord, Vec<ApiKeyRecord>)>> {
        self.read(|c| {
            let account = c
                .query_row(
                    &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.demo = 1"),
                    [],
                    |r| account_from_row(r, 0),
                )
                .optional()
                .map_err(backend)?;
            let Some(account) = account else {
                return Ok(None);
            };
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {KEY_COLS} FROM api_keys k WHERE k.account_id = ?1 ORDER BY k.rowid"
                ))
                .map_err(backend)?;
            let keys = stmt
                .query_map(params![account.id], key_from_row)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(Some((account, keys)))
        })
        .await
    }

    async fn api_key(
        &self,
        key_hash: [u8; 32],
    ) -> StoreResult<Option<(ApiKeyRecord, AccountRecord)>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLS}, {ACCOUNT_COLS} FROM api_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.key_hash = ?1"
            ))
            .map_err(backend)?
            .query_row(params![key_hash], |r| {
                Ok((key_from_row(r)?, account_from_row(r, KEY_COL_COUNT)?))
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = ?1"
            ))
            .map_err(backend)?
            .query_row(params![id], |r| account_from_row(r, 0))
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn roll_api_key(&self, key: ApiKeyRecord, old_expire_at: i64) -> StoreResult<u64> {
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE api_keys SET expires_at = ?4
                     WHERE account_id = ?1 AND kind = ?2 AND key_hash != ?3 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?4)",
                    params![
                        key.account_id,
                        key.kind.as_str(),
                        key.key_hash,
                        old_expire_at
                    ],
                )
                .map_err(backend)?;
            insert_api_key(c, &key)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn revoke_api_key(&self, key_hash: [u8; 32], now: i64) -> StoreResult<bool> {
        self.write(move |c| {
            c.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE key_hash = ?1",
                params![key_hash, now],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn set_allowed_origins(
        &self,
        account_id: &str,
        origins: Vec<String>,
    ) -> StoreResult<bool> {
        let account_id = account_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE accounts SET allowed_origins = ?2 WHERE id = ?1",
                params![account_id, json_list(&origins)?],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn forward_hosts(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let account_id = account_id.to_owned();
        self.read(move |c| {
            let text: Option<String> = c
                .prepare_cached("SELECT forward_hosts FROM accounts WHERE id = ?1")
                .map_err(backend)?
                .query_row(params![account_id], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            match text {
                Some(t) => parse_list(&t).map_err(backend),
                None => Ok(Vec::new()),
            }
        })
        .await
    }

    async fn set_forward_hosts(&self, account_id: &str, hosts: Vec<String>) -> StoreResult<bool> {
        let account_id = account_id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE accounts SET forward_hosts = ?2 WHERE id = ?1",
                params![account_id, json_list(&hosts)?],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn add_token(&self, token: TokenRecord, jti: JtiRecord) -> StoreResult<()> {
        let master = self.inner.audit_master.get().cloned();
        self.write(move |c| {
            let fresh = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO seen_jtis (jti_hash, expires_at, account_id, token_id, idempotency_key)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?
                .execute(params![
                    jti.jti_hash,
                    jti.expires_at,
                    jti.account_id,
                    jti.token_id,
                    jti.idempotency_key.as_ref().map(|k| &k[..])
                ])
                .map_err(backend)?;
            if fresh == 0 {
                return Err(StoreError::Duplicate);
            }
            let card = token.card.as_ref();
            c.prepare_cached(&format!(
                "INSERT INTO tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))
            .map_err(backend)?
            .execute(params![
                token.id,
                token.account_id,
                token.token_type.as_str(),
                card.map(|c| &c.brand),
                card.map(|c| &c.bin),
                card.map(|c| &c.last4),
                card.map(|c| c.exp_month),
                card.map(|c| c.exp_year),
                card.map(|c| &c.fingerprint[..]),
                token.sealed,
                token.client_ip,
                token.created,
                token.expires_at,
                token.used_at
            ])
            .map_err(backend)?;
            ledger::token_created(c, master.as_deref(), &token)?;
            Ok(())
        })
        .await
    }

    async fn replayed_token(&self, jti: JtiRecord) -> StoreResult<Option<TokenRecord>> {
        let Some(idempotency_key) = jti.idempotency_key else {
            return Ok(None);
        };
        self.read(move |c| {
            let cols = TOKEN_COLS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
            c.prepare_cached(&format!(
                "SELECT {cols} FROM seen_jtis j JOIN tokens t ON t.id = j.token_id AND t.account_id = j.account_id
                 WHERE j.expires_at = ?4 AND j.jti_hash = ?1 AND j.account_id = ?2 AND j.idempotency_key = ?3"
            ))
            .map_err(backend)?
            .query_row(
                params![jti.jti_hash, jti.account_id, idempotency_key, jti.expires_at],
                token_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn token(&self, account_id: &str, id: &str) -> StoreResult<Option<TokenRecord>> {
        let (account_id, id) = (account_id.to_owned(), id.to_owned());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1 AND account_id = ?2"
            ))
            .map_err(backend)?
            .query_row(params![id, account_id], token_from_row)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn use_token(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<TokenRecord>> {
        let (account_id, id) = (account_id.to_owned(), id.to_owned());
        self.write(move |c| ledger::use_token(c, &account_id, &id, now))
            .await
    }

    async fn purge(&self, now: i64) -> StoreResult<u64> {
        self.write(move |c| {
            let jtis = c
                .execute("DELETE FROM seen_jtis WHERE expires_at <= ?1", params![now])
                .map_err(backend)?;
            let tokens = c
                .execute(
                    "UPDATE tokens SET sealed = NULL WHERE sealed IS NOT NULL AND expires_at <= ?1",
                    params![now],
                )
                .map_err(backend)?;
            Ok(u64::try_from(jtis + tokens).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn delete_sealing_keys(&self, before: i64) -> StoreResult<u64> {
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM sealing_keys WHERE superseded_at IS NOT NULL AND superseded_at < ?1",
                    params![before],
                )
                .map_err(backend)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }
}
