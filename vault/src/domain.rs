//! What the vault does with cards, apart from HTTP: using tokens, sealing and opening saved
//! cards and their CVCs, resolving a charge's source, charging, and forwarding. Each function
//! runs inside the caller's transaction ([`Tx`]), so a handler decides only where a transaction
//! begins and what its answer looks like; the one exception is [`forward::forward`], which
//! must call the processor between two transactions and so opens them itself.
//!
//! Failures a caller should see are [`TxError::Abort`]s carrying the [`ApiError`] to answer;
//! they roll the transaction back.

pub mod card;
pub mod charge;
pub mod forward;
pub mod plain;
pub mod recurring;
pub mod refund;
pub mod token;

use crate::error::ApiError;
use crate::ids;
use crate::store::{NewEvent, TxError};

#[cfg(doc)]
use crate::store::Tx;

/// The result of domain work inside a transaction.
pub type Work<T> = Result<T, TxError<ApiError>>;

/// Rolls the transaction back and answers `e`.
pub fn abort<T>(e: ApiError) -> Work<T> {
    Err(TxError::Abort(e))
}

/// Card data that does not open or seal is the vault's fault, never the caller's: a 500, with
/// nothing about why in the answer.
pub(crate) fn crypto_failed<T>(_: T) -> TxError<ApiError> {
    tracing::error!("opening or sealing card data failed");
    TxError::Abort(ApiError::internal())
}

/// A new audit event.
pub fn event(account_id: &str, event_type: &str, data: serde_json::Value, now: i64) -> NewEvent {
    NewEvent {
        id: ids::new_id("evt_"),
        account_id: account_id.to_owned(),
        event_type: event_type.to_owned(),
        data,
        created: now,
    }
}
