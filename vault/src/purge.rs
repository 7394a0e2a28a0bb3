//! The purge: replay records, used tokens and expired tokens leave the database in small
//! batches, so that the tables hold a bounded window of rows instead of growing forever.
//!
//! Each batch is its own short write transaction of at most [`PurgeSettings::batch_rows`] rows,
//! and the task yields between batches, so requests waiting for the writer get it in between
//! (`npm run bench -- --only scale` prints what one batch costs, against a goal of 5 ms). What is
//! kept, and why:
//!
//! - a replay record (`seen_jtis`) until no JWE with its `iat` can pass the `iat` check: replay
//!   protection holds for the whole window;
//! - a used token for the idempotency window (a day), so that a retried charge within it still
//!   finds the token it used;
//! - an unused token until it expires; its card data goes with its row.
//!
//! Events do not refer to the rows deleted here, so `events verify` still holds.

use crate::store::{self, Store, StoreResult};

/// How the purge runs.
#[derive(Clone, Copy, Debug)]
pub struct PurgeSettings {
    /// Rows deleted per write transaction.
    pub batch_rows: u32,
    /// How long a used token's row stays after its use, in seconds.
    pub keep_used_secs: i64,
}

/// The defaults of [`PurgeSettings`].
pub mod defaults {
    /// Rows per batch. 256 measured 1.1 to 1.8 ms at the median but 4.1 to 6.3 ms at worst on
    /// the loaded 2-core machine (SQLite, 100,000 tokens, `--bench scale`); 128 halves the work
    /// per transaction to keep the worst under 5 ms.
    pub const BATCH_ROWS: u32 = 128;
    /// A used token stays as long as an idempotency key is kept: a day.
    pub const KEEP_USED_SECS: i64 = 24 * 3600;
}

impl Default for PurgeSettings {
    fn default() -> Self {
        Self {
            batch_rows: defaults::BATCH_ROWS,
            keep_used_secs: defaults::KEEP_USED_SECS,
        }
    }
}

/// What one purge deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Replay records.
    pub jtis: u64,
    /// Token rows, used and expired.
    pub tokens: u64,
    /// Write transactions it took.
    pub batches: u64,
}

/// Deletes, batch after batch, everything past keeping at `now`.
pub async fn purge(store: &dyn Store, now: i64, settings: &PurgeSettings) -> StoreResult<Purged> {
    let limit = settings.batch_rows.max(1);
    let mut done = Purged::default();
    loop {
        let n = store::write(store, move |tx| tx.purge_jtis(now, limit)).await?;
        done.jtis += n;
        done.batches += 1;
        if n < u64::from(limit) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let used_before = now.saturating_sub(settings.keep_used_secs);
    loop {
        let n = store::write(store, move |tx| tx.purge_tokens(used_before, now, limit)).await?;
        done.tokens += n;
        done.batches += 1;
        if n < u64::from(limit) {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(done)
}
