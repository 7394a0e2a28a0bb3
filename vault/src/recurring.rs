//! The scheduler of recurring charges: the upkeep task ([`crate::AppState::maintain`]) calls
//! [`run_due`] on every tick, so a run is made within one tick of its due time, and at start,
//! so that a vault that was down through a due date catches up at once (and once: see
//! [`crate::domain::recurring`]).
//!
//! Any number of vault processes may run this against one database: each run is decided in a
//! transaction that locks the schedule's row and inserts the run's unique claim row.

use crate::crypto::{AccountKeys, WrappedAccountKeys};
use crate::domain::recurring;
use crate::error::ApiError;
use crate::store::{self, KeyKind, StoreError, TxError};
use crate::{AppState, Principal};

/// Schedules read per query; a tick keeps reading until none is due.
const BATCH: usize = 64;

/// Batches a tick reads at most, so that one tick always ends (runs left over wait for the
/// next tick).
const MAX_BATCHES: usize = 64;

/// What one pass made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ran {
    /// Runs made (charges, succeeded or declined) or schedules closed.
    pub runs: usize,
    /// Runs that failed and roll back; they are tried again on the next tick.
    pub failed: usize,
}

/// The account acting on its own schedule, as if with its secret key.
fn principal(
    state: &AppState,
    tx: &dyn store::Tx,
    account_id: &str,
) -> Result<Principal, TxError<ApiError>> {
    let Some(account) = tx.account(account_id)? else {
        return Err(TxError::Store(StoreError::Backend(
            "a recurring charge's account is gone".into(),
        )));
    };
    let keys = AccountKeys::unwrap(
        state.master(),
        &account.id,
        &WrappedAccountKeys {
            data_key: account.wrapped_data_key,
            fingerprint_key: account.wrapped_fingerprint_key,
        },
    )
    .map_err(|_| StoreError::Backend("cannot unwrap an account's keys".into()))?;
    Ok(Principal {
        account_id: account.id,
        kind: KeyKind::Secret,
        scopes: Vec::new(),
        origins: account.allowed_origins,
        keys,
        key_ref: "recurring".to_owned(),
        expires_at: None,
    })
}

/// Makes every run due at the vault's clock's time. Returns what it did; a run that fails
/// (storage, or a card that no longer opens) is logged and left for the next tick.
pub async fn run_due(state: &AppState) -> Result<Ran, StoreError> {
    let now = state.now();
    let mut ran = Ran::default();
    for _ in 0..MAX_BATCHES {
        let due = store::read(state.store(), move |tx| tx.due_recurring(now, BATCH)).await?;
        if due.is_empty() {
            break;
        }
        let mut progressed = false;
        for (account_id, id) in due {
            let s = state.clone();
            let bins = state.config().bin_table.clone();
            let made = store::write_or_abort(state.store(), move |tx| {
                let Some(r) = tx.recurring(&account_id, &id, true)? else {
                    return Ok(None);
                };
                let p = principal(&s, tx, &account_id)?;
                recurring::run(tx, &p, &r, bins.as_deref(), now)
            })
            .await;
            match made {
                Ok(made) => {
                    // Not made: another process made it first, so it is no longer due either.
                    progressed = true;
                    if let Some(run) = made {
                        ran.runs += 1;
                        if let Some((status, decline_code)) = run.charged {
                            state.metrics().charge(status, decline_code);
                        }
                    }
                }
                Err(e) => {
                    ran.failed += 1;
                    let reason = match e {
                        TxError::Store(e) => e.to_string(),
                        TxError::Abort(e) => e.code.as_str().to_owned(),
                    };
                    tracing::error!(error = %reason, "a recurring charge's run failed");
                }
            }
        }
        if !progressed {
            break;
        }
    }
    if ran.runs > 0 {
        tracing::info!(runs = ran.runs, "made recurring charges");
    }
    Ok(ran)
}
