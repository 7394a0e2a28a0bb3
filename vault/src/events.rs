//! The audit log's chains, one per account: each event's link is an HMAC-SHA256, under the
//! account's audit key, over the previous event's link and the event's canonical JSON. Editing,
//! removing or reordering a row breaks the chain from there on, and without the master key
//! (which wraps the audit keys) nobody can compute a chain that passes. A truncated tail leaves
//! a valid chain, so `events checkpoint` signs each chain's head for the operator to keep
//! elsewhere, and `events verify --checkpoint` checks the chains still reach those heads.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::crypto::{AuditKey, MasterKey};
use crate::store::{self, EventRecord, Store};

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

/// The audit keys of the accounts that have events; `None` for an account whose stored key is
/// missing or does not unwrap.
pub type AuditKeys = HashMap<String, Option<AuditKey>>;

/// Checks the chains, events in storage order, each account's under its audit key; `Ok(n)` is
/// the number of events verified.
pub fn verify_chain(events: &[EventRecord], keys: &AuditKeys) -> Result<usize, Broken> {
    let mut tails: HashMap<&str, &[u8]> = HashMap::new();
    for e in events {
        let broken = |reason| Broken {
            seq: e.seq,
            id: e.id.clone(),
            reason,
        };
        let Some(Some(key)) = keys.get(&e.account_id) else {
            return Err(broken(
                "its account has no usable audit key (removed, replaced, or a wrong master key)",
            ));
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
        if key.link(prev, &e.body)[..] != e.hash[..] {
            return Err(broken(
                "its content does not match its keyed hash (edited, or the chain was recomputed without the key)",
            ));
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

/// Every event, and the wrapped audit key of every account that has one.
async fn read_all(
    store: &dyn Store,
) -> Result<(Vec<EventRecord>, HashMap<String, Option<Vec<u8>>>), String> {
    store::read(store, |tx| {
        let events = tx.all_events()?;
        let mut wrapped = HashMap::new();
        for e in &events {
            if !wrapped.contains_key(&e.account_id) {
                wrapped.insert(e.account_id.clone(), tx.audit_key(&e.account_id)?);
            }
        }
        Ok((events, wrapped))
    })
    .await
    .map_err(|e| e.to_string())
}

fn unwrap_keys(master: &MasterKey, wrapped: HashMap<String, Option<Vec<u8>>>) -> AuditKeys {
    wrapped
        .into_iter()
        .map(|(account, blob)| {
            let key = blob.and_then(|b| AuditKey::unwrap(master, &account, &b).ok());
            (account, key)
        })
        .collect()
}

/// Reads every event from the store and verifies the chains.
pub async fn verify(
    store: &dyn Store,
    master: &MasterKey,
) -> Result<Result<usize, Broken>, String> {
    let (events, wrapped) = read_all(store).await?;
    Ok(verify_chain(&events, &unwrap_keys(master, wrapped)))
}

/// A signed chain head: account `account`'s chain reached event `event` at `seq` with link
/// `hash`. One JSON line of `events checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The account.
    pub account: String,
    /// The event's position.
    pub seq: i64,
    /// The event's id.
    pub event: String,
    /// The event's link, hex.
    pub hash: String,
    /// HMAC-SHA256 of the above under the account's checkpoint key, hex.
    pub mac: String,
}

/// Verifies the chains, then signs the head of every account's chain. Refuses a broken chain:
/// a checkpoint vouches only for a log that verified.
pub async fn checkpoint(store: &dyn Store, master: &MasterKey) -> Result<Vec<Head>, String> {
    let (events, wrapped) = read_all(store).await?;
    let keys = unwrap_keys(master, wrapped);
    verify_chain(&events, &keys).map_err(|b| broken_message(&b))?;
    let mut heads: Vec<Head> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for e in &events {
        let Some(Some(key)) = keys.get(&e.account_id) else {
            // verify_chain refused such an event already.
            continue;
        };
        let head = Head {
            account: e.account_id.clone(),
            seq: e.seq,
            event: e.id.clone(),
            hash: hex::encode(&e.hash),
            mac: hex::encode(key.sign_head(&e.account_id, e.seq, &e.id, &e.hash)),
        };
        match at.get(e.account_id.as_str()) {
            Some(&i) => heads[i] = head,
            None => {
                at.insert(&e.account_id, heads.len());
                heads.push(head);
            }
        }
    }
    Ok(heads)
}

/// Checks the chains and, against `checkpoint` (the JSON lines `events checkpoint` printed),
/// that each head's signature is valid and each chain still reaches its head. `Ok` holds the
/// numbers of events and heads checked; `Err` says what failed.
pub async fn verify_with_checkpoint(
    store: &dyn Store,
    master: &MasterKey,
    checkpoint: &str,
) -> Result<(usize, usize), String> {
    let (events, wrapped) = read_all(store).await?;
    let keys = unwrap_keys(master, wrapped);
    let n = verify_chain(&events, &keys).map_err(|b| broken_message(&b))?;
    let by_seq: HashMap<i64, &EventRecord> = events.iter().map(|e| (e.seq, e)).collect();
    let mut heads = 0;
    for (i, line) in checkpoint.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i + 1;
        let head: Head = serde_json::from_str(line)
            .map_err(|_| format!("checkpoint line {line_no} is not a chain head"))?;
        let hash = hex::decode(&head.hash).ok();
        let mac = hex::decode(&head.mac).ok();
        // The account's key as stored now; a checkpoint's account has events, so it is in
        // `keys` unless its events are all gone.
        let key = match keys.get(&head.account) {
            Some(Some(key)) => Some(key),
            Some(None) => None,
            None => {
                return Err(format!(
                    "account {}'s chain no longer reaches seq {} of the checkpoint (line {line_no}): its events were removed",
                    head.account, head.seq
                ));
            }
        };
        let signed = match (key, &hash, &mac) {
            (Some(key), Some(hash), Some(mac)) => {
                key.verify_head(&head.account, head.seq, &head.event, hash, mac)
            }
            _ => false,
        };
        if !signed {
            return Err(format!(
                "checkpoint line {line_no} (account {}) has an invalid signature: the checkpoint was edited, or the account's audit key changed",
                head.account
            ));
        }
        match by_seq.get(&head.seq) {
            Some(e)
                if e.account_id == head.account
                    && e.id == head.event
                    && Some(&e.hash) == hash.as_ref() => {}
            Some(e) if e.account_id == head.account => {
                return Err(format!(
                    "event {} (seq {}) is not the event the checkpoint holds for account {}: the chain was rewritten",
                    e.id, head.seq, head.account
                ));
            }
            _ => {
                return Err(format!(
                    "account {}'s chain no longer reaches seq {} ({}) of the checkpoint: events were removed",
                    head.account, head.seq, head.event
                ));
            }
        }
        heads += 1;
    }
    Ok((n, heads))
}

/// How `events verify` reports a broken chain.
pub fn broken_message(b: &Broken) -> String {
    format!(
        "event {} (seq {}) is broken: {}; every later event is unverified",
        b.id, b.seq, b.reason
    )
}
