//! The audit log's hash chain: each event's hash is SHA-256 over the previous event's hash and
//! the event's canonical JSON, so editing, removing or reordering a row breaks the chain from
//! there on. `cardseal-vault events verify` walks it.

use crate::store::Store;
use crate::store::ledger::{self, EventRecord, TxError};
use crate::store::sqlite::ledger::chain_hash;

/// The first event that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Its position in the chain.
    pub seq: i64,
    /// Its id as stored.
    pub id: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks a chain in order; `Ok(n)` is the number of events verified.
pub fn verify_chain(events: &[EventRecord]) -> Result<usize, Broken> {
    let mut prev = vec![0u8; 32];
    for (i, e) in events.iter().enumerate() {
        let broken = |reason| Broken {
            seq: e.seq,
            id: e.id.clone(),
            reason,
        };
        if i64::try_from(i + 1).ok() != Some(e.seq) {
            return Err(broken("an event before it is missing"));
        }
        if e.prev_hash != prev {
            return Err(broken("it does not link to the event before it"));
        }
        if chain_hash(&prev, &e.body)[..] != e.hash[..] {
            return Err(broken("its content does not match its hash"));
        }
        let body: serde_json::Value =
            serde_json::from_str(&e.body).map_err(|_| broken("its content is not JSON"))?;
        if body["id"] != e.id.as_str()
            || body["type"] != e.event_type.as_str()
            || body["account"] != e.account_id.as_str()
            || body["seq"] != e.seq
        {
            return Err(broken("its columns do not match its content"));
        }
        prev.clone_from(&e.hash);
    }
    Ok(events.len())
}

/// Reads every event from the store and verifies the chain.
pub async fn verify(store: &dyn Store) -> Result<Result<usize, Broken>, String> {
    let events = ledger::read(store, |tx| tx.all_events().map_err(TxError::<()>::Store))
        .await
        .map_err(|e| match e {
            TxError::Store(e) => e.to_string(),
            TxError::Abort(()) => "aborted".to_owned(),
        })?;
    Ok(verify_chain(&events))
}
