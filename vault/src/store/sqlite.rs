//! The default store: one SQLite file in the data directory, in WAL mode.
//!
//! One thread writes, committing whatever jobs are waiting in one transaction (each job in its
//! own savepoint, so one failing job does not undo the others), and a few connections read on
//! tokio's blocking pool. A second thread checkpoints the WAL.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

mod schema;
mod tx;

use std::sync::OnceLock;

use async_trait::async_trait;
use rusqlite::Connection;

use self::schema::MIGRATIONS;
use self::tx::{AuditKeyCache, SqlTx};
use super::{PoolStats, Store, StoreError, StoreResult, TxError, TxJob, TxOutcome};
use crate::crypto::MasterKey;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "cardseal-vault.sqlite3";

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
    /// Keys the audit chains; set by [`Store::use_master_key`].
    audit_master: OnceLock<Arc<MasterKey>>,
    health: Arc<WriteHealth>,
    /// Held by the writer thread around each group transaction, and by the checkpoint thread
    /// for the short second pass that lets the WAL restart (see [`checkpoint_loop`]).
    wal_gate: Arc<Mutex<()>>,
    /// Audit keys unwrapped once, not for every event.
    audit_keys: AuditKeyCache,
}

/// What the writer thread tells the rest: whether writes fail for want of space, and how many
/// jobs wait for it.
#[derive(Debug, Default)]
struct WriteHealth {
    out_of_space: AtomicBool,
    /// Set by a job of the current group that failed for want of space.
    group_out_of_space: AtomicBool,
    queued: AtomicU64,
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

/// Runs a job in its own savepoint: an `Err` (a failure or the caller's abort) undoes the job,
/// and only the job.
fn in_savepoint(conn: &Connection, f: impl FnOnce(&Connection) -> TxOutcome) -> TxOutcome {
    // SQLite may roll back the whole group transaction on an error such as a full disk; a job
    // run after that would commit on its own, outside the group, and then be told it failed.
    if conn.is_autocommit() {
        return Err(TxError::Store(StoreError::Backend(
            "the transaction was rolled back by an earlier failure".into(),
        )));
    }
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
fn writer_loop(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    health: Arc<WriteHealth>,
    gate: Arc<Mutex<()>>,
) {
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
        let _gate = lock(&gate);
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
        health.group_out_of_space.store(false, Ordering::Relaxed);
        let changes = conn.total_changes();
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn)).collect();
        let commit = run_cached(&conn, "COMMIT");
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Out of space until a group that wrote something commits without meeting the limit.
        match &commit {
            Err(StoreError::OutOfSpace(_)) => health.out_of_space.store(true, Ordering::Relaxed),
            Ok(())
                if conn.total_changes() > changes
                    && !health.group_out_of_space.load(Ordering::Relaxed)
                    && health.out_of_space.swap(false, Ordering::Relaxed) =>
            {
                tracing::info!("the database has space again: writes work");
            }
            _ => {}
        }
        for reply in replies {
            reply(commit.clone());
        }
    }
}

/// Every this many checkpoints, one truncates the WAL (see [`checkpoint_loop`]).
const TRUNCATE_EVERY: u32 = 20;

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`], so that the
/// writer never stalls on the bulk of a checkpoint's copying and fsyncs. Every
/// [`TRUNCATE_EVERY`]th one also empties the WAL file: a passive checkpoint leaves old frames
/// in it, and those would keep the sealed card of a used token or a deleted card that the
/// database file itself no longer holds. Ends with the store.
///
/// A checkpoint that runs beside a busy writer never catches up with it: the WAL would only
/// grow (by some 16 KB a token) until the next truncation, and every frame would land on a
/// fresh page of the file, which the kernel must allocate. So after the first pass, which
/// copies the bulk while the writer goes on, a second pass runs between two of the writer's
/// group transactions (holding `gate`): it copies only what was committed meanwhile, and
/// leaves the WAL fully copied, so that the writer's next transaction starts it again from the
/// beginning, over pages the kernel already holds.
fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<Inner>, gate: Arc<Mutex<()>>) {
    let mut n: u32 = 0;
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        n = n.wrapping_add(1);
        let truncate = n.is_multiple_of(TRUNCATE_EVERY);
        let first = checkpoint(&conn, "PASSIVE");
        let result = match first {
            Ok(_) => {
                let _gate = lock(&gate);
                checkpoint(&conn, if truncate { "TRUNCATE" } else { "PASSIVE" })
            }
            Err(e) => Err(e),
        };
        let mode = if truncate { "TRUNCATE" } else { "PASSIVE" };
        match result {
            Ok(true) => {}
            // Busy: a reader was in the way; the next round catches up.
            Ok(false) => tracing::debug!(mode, "WAL checkpoint could not complete"),
            // A full disk is reported by the writes that fail, not every half second here.
            Err(e) if is_disk_full(&e) => {
                tracing::debug!(error = %e, mode, "WAL checkpoint failed");
            }
            Err(e) => tracing::warn!(error = %e, mode, "WAL checkpoint failed"),
        }
    }
}

/// Runs a checkpoint; `false` when a reader or writer kept it from completing, or (passive)
/// left frames uncopied.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<bool> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        let (busy, log, copied) = (
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        );
        Ok(busy == 0 && log == copied)
    })
}

/// A storage error for the log; a full disk (or database) becomes [`StoreError::OutOfSpace`].
fn backend<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    let any: &dyn std::any::Any = &e;
    match any.downcast_ref::<rusqlite::Error>() {
        Some(error) if is_disk_full(error) => StoreError::OutOfSpace(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
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
            audit_master: OnceLock::new(),
            health: Arc::default(),
            wal_gate: Arc::default(),
            audit_keys: AuditKeyCache::default(),
        });
        let health = Arc::clone(&inner.health);
        let (writer_gate, checkpoint_gate) =
            (Arc::clone(&inner.wal_gate), Arc::clone(&inner.wal_gate));
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map(drop)
                .map_err(|e| StoreError::Backend(format!("cannot start the {name} thread: {e}")))
        };
        spawn(
            "sqlite-writer",
            Box::new(move || writer_loop(writer, queue, health, writer_gate)),
        )?;
        let alive = Arc::downgrade(&inner);
        spawn(
            "sqlite-checkpoint",
            Box::new(move || checkpoint_loop(checkpointer, alive, checkpoint_gate)),
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
    async fn write(&self, f: impl FnOnce(&Connection) -> TxOutcome + Send + 'static) -> TxOutcome {
        let stopped = || StoreError::Backend("the database writer has stopped".into());
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let health = Arc::clone(&self.inner.health);
        health.queued.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move |conn: &Connection| {
            health.queued.fetch_sub(1, Ordering::Relaxed);
            let result = in_savepoint(conn, f);
            if let Err(TxError::Store(StoreError::OutOfSpace(_))) = &result {
                health.out_of_space.store(true, Ordering::Relaxed);
                health.group_out_of_space.store(true, Ordering::Relaxed);
            }
            Box::new(move |commit: StoreResult<()>| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(TxError::Store(e)),
                };
                // The caller may have gone away (a dropped request); nothing to do then.
                let _ = reply_tx.send(outcome);
            })
        });
        lock(&self.inner.jobs).send(job).map_err(|_| stopped())?;
        reply_rx.await.map_err(|_| stopped())?
    }

    async fn read(&self, f: impl FnOnce(&Connection) -> TxOutcome + Send + 'static) -> TxOutcome {
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

/// Free room [`Store::probe_write`] asks for before calling the disk healthy again.
const PROBE_BYTES: usize = 256 * 1024;

/// Whether `bytes` can be written to a file at `path` (removed again).
fn space_for(path: &Path, bytes: usize) -> std::io::Result<()> {
    use std::io::Write;
    let written = std::fs::File::create(path).and_then(|mut f| {
        f.write_all(&vec![0u8; bytes])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(path);
    written
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

#[async_trait]
impl Store for SqliteStore {
    async fn transact(&self, job: TxJob) -> TxOutcome {
        let master = self.inner.audit_master.get().cloned();
        let inner = Arc::clone(&self.inner);
        self.write(move |c| job(&SqlTx::new(c, master.as_deref(), &inner.audit_keys)))
            .await
    }

    async fn query(&self, job: TxJob) -> TxOutcome {
        let master = self.inner.audit_master.get().cloned();
        let inner = Arc::clone(&self.inner);
        self.read(move |c| job(&SqlTx::new(c, master.as_deref(), &inner.audit_keys)))
            .await
    }

    fn use_master_key(&self, master: Arc<MasterKey>) {
        // Set once: a store serves one vault, whose master key does not change under it.
        let _ = self.inner.audit_master.set(master);
    }

    fn out_of_space(&self) -> bool {
        self.inner.health.out_of_space.load(Ordering::Relaxed)
    }

    async fn probe_write(&self) -> StoreResult<()> {
        // First room for a few requests' worth of pages: a one-page write can squeeze into
        // the WAL's slack while a token's rows cannot, and would call the disk healthy too soon.
        let probe = self.inner.path.with_extension("space-probe");
        tokio::task::spawn_blocking(move || space_for(&probe, PROBE_BYTES))
            .await
            .map_err(backend)?
            .map_err(|e| StoreError::OutOfSpace(e.to_string()))?;
        // Then a write that changes nothing but still dirties a page, so it goes through the
        // WAL like any other; there is always a sealing key to touch.
        let outcome = self
            .write(|c| {
                c.execute("UPDATE sealing_keys SET created = created", [])
                    .map_err(|e| TxError::Store(backend(e)))?;
                Ok(Box::new(()) as super::Erased)
            })
            .await;
        match outcome {
            Ok(_) if !self.out_of_space() => Ok(()),
            Ok(_) => Err(StoreError::OutOfSpace("still out of space".into())),
            Err(TxError::Store(e)) => Err(e),
            Err(TxError::Abort(_)) => Err(StoreError::Backend("the write probe aborted".into())),
        }
    }

    fn pool_stats(&self) -> PoolStats {
        // One writer connection, up to READERS kept for reads (more open under load).
        PoolStats {
            max: READERS as u64 + 1,
            idle: lock(&self.inner.readers).len() as u64,
            in_use: 0,
            waiting: self.inner.health.queued.load(Ordering::Relaxed),
        }
    }
}
