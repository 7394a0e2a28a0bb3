//! The audit log's hash chains, one per account: each event's hash is SHA-256 over the hash
//! of the account's previous event and the event's canonical JSON, so editing, removing or
//! reordering a row breaks the chain from there on. `cardseal-vault events verify` walks them.

use std::collections::HashMap;

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

/// Checks the chains, events in storage order; `Ok(n)` is the number of events verified.
pub fn verify_chain(events: &[EventRecord]) -> Result<usize, Broken> {
    let mut tails: HashMap<&str, &[u8]> = HashMap::new();
    for e in events {
        let broken = |reason| Broken {
            seq: e.seq,
            id: e.id.clone(),
            reason,
        };
        let prev = tails
            .get(e.account_id.as_str())
            .copied()
            .unwrap_or(&[0u8; 32]);
        if e.prev_hash != prev {
            return Err(broken(
                "it does not link to the account's event before it (an event was removed or edited)",
            ));
        }
        if chain_hash(prev, &e.body)[..] != e.hash[..] {
            return Err(broken("its content does not match its hash"));
        }
        let body: serde_json::Value =
            serde_json::from_str(&e.body).map_err(|_| broken("its content is not JSON"))?;
        if body["id"] != e.id.as_str()
            || body["type"] != e.event_type.as_str()
            || body["account"] != e.account_id.as_str()
        {
            return Err(broken("its columns do not match its content"));
        }
        tails.insert(&e.account_id, &e.hash);
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
