//! [`Ledger`] on SQLite: saved cards, CVCs, charges, the keyed audit chains and idempotency
//! keys (migrations 2 and 3).

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, TOKEN_COLS, backend, token_from_row};
use crate::crypto::{AuditKey, MasterKey, sha256};
use crate::store::ledger::{
    CardRecord, ChargeRecord, Claim, EventRecord, IssuerInfo, Ledger, NewEvent, Tx, TxJob,
};
use crate::store::{CardSummary, StoreError, StoreResult, TokenRecord};

/// Migration 2. CVCs sit in their own table so that using one is a `DELETE`; card data and
/// CVCs are sealed with the card's own key, itself sealed with the account's data key.
pub(super) const MIGRATION: &str = "
    CREATE TABLE cards (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id),
        customer    TEXT,
        brand       TEXT NOT NULL,
        bin         TEXT NOT NULL,
        last4       TEXT NOT NULL,
        exp_month   INTEGER NOT NULL,
        exp_year    INTEGER NOT NULL,
        fingerprint BLOB NOT NULL,
        issuer      TEXT,
        country     TEXT,
        funding     TEXT,
        currency    TEXT,
        metadata    TEXT NOT NULL,
        card_key    BLOB,              -- the card's AES key sealed with the account key; NULL once deleted
        sealed      BLOB,              -- number and expiry, sealed with the card key
        network_transaction_id TEXT,
        created     INTEGER NOT NULL,
        deleted_at  INTEGER
    ) STRICT;
    CREATE INDEX cards_account ON cards(account_id, customer);
    CREATE TABLE card_cvcs (
        card_id    TEXT PRIMARY KEY REFERENCES cards(id),
        account_id TEXT NOT NULL,
        sealed     BLOB NOT NULL,      -- the CVC, sealed with the card key
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE charges (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        object     TEXT NOT NULL,      -- the Charge object; no card data
        created    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE events (
        seq        INTEGER PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        type       TEXT NOT NULL,
        body       TEXT NOT NULL,      -- canonical JSON; the hash covers it
        prev_hash  BLOB NOT NULL,
        hash       BLOB NOT NULL
    ) STRICT;
    CREATE INDEX events_account ON events(account_id, seq);
    CREATE TABLE idempotency_keys (
        account_id   TEXT NOT NULL,
        key_hash     BLOB NOT NULL,    -- SHA-256 of the Idempotency-Key
        request_hash BLOB NOT NULL,    -- SHA-256 of method, path and body
        status       INTEGER,          -- NULL while the first request runs
        body         BLOB,
        locked_until INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        PRIMARY KEY (account_id, key_hash)
    ) STRICT, WITHOUT ROWID;
";

/// Migration 3. Each account's audit key, wrapped under the master key; NULL until the account's
/// first event, or until a vault that keys chains first starts on an older database.
pub(super) const AUDIT_KEY_MIGRATION: &str = "
    ALTER TABLE accounts ADD COLUMN audit_key BLOB;
";

const CARD_COLS: &str = "id, account_id, customer, brand, bin, last4, exp_month, exp_year, fingerprint, issuer, country, funding, currency, metadata, card_key, sealed, network_transaction_id, created";

fn card_from_row(r: &Row<'_>) -> rusqlite::Result<CardRecord> {
    Ok(CardRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        customer: r.get(2)?,
        summary: CardSummary {
            brand: r.get(3)?,
            bin: r.get(4)?,
            last4: r.get(5)?,
            exp_month: r.get(6)?,
            exp_year: r.get(7)?,
            fingerprint: r.get(8)?,
        },
        issuer: IssuerInfo {
            issuer: r.get(9)?,
            country: r.get(10)?,
            funding: r.get(11)?,
            currency: r.get(12)?,
        },
        metadata: r.get(13)?,
        wrapped_key: r.get(14)?,
        sealed: r.get(15)?,
        network_transaction_id: r.get(16)?,
        created: r.get(17)?,
    })
}

const EVENT_COLS: &str = "seq, id, account_id, type, body, prev_hash, hash";

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        seq: r.get(0)?,
        id: r.get(1)?,
        account_id: r.get(2)?,
        event_type: r.get(3)?,
        body: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
    })
}

/// The canonical JSON of an event: fixed member order, which the hash covers. It holds no
/// global position, so an account learns nothing about other accounts' activity.
pub fn canonical_event(e: &NewEvent) -> StoreResult<String> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        id: &'a str,
        object: &'static str,
        account: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        created: i64,
        data: &'a serde_json::Value,
    }
    serde_json::to_string(&Body {
        id: &e.id,
        object: "event",
        account: &e.account_id,
        event_type: &e.event_type,
        created: e.created,
        data: &e.data,
    })
    .map_err(backend)
}

/// SHA-256 over the previous hash and the canonical body: how vaults before migration 4
/// chained events. Only used to check such a chain before re-linking it under a key.
fn legacy_chain_hash(prev: &[u8], body: &str) -> [u8; 32] {
    let mut buf = Vec::with_capacity(prev.len() + body.len());
    buf.extend_from_slice(prev);
    buf.extend_from_slice(body.as_bytes());
    sha256(&buf)
}

/// An idempotency key's row: request hash, status, body, locked until, expires at.
type KeyRow = (Vec<u8>, Option<u16>, Option<Vec<u8>>, i64, i64);

/// A transaction, with the master key if the store was given one.
struct SqlTx<'a>(&'a Connection, Option<&'a MasterKey>);

/// Marks the token used and destroys its sealed card in one transaction, returning the token
/// as it was (sealed card included) for the caller to use once. `RETURNING` shows the row
/// after the update, so the row is read first; the connection is the only writer and this
/// runs inside its transaction, so nothing comes between the read and the update.
pub(super) fn use_token(
    c: &Connection,
    account_id: &str,
    id: &str,
    now: i64,
) -> StoreResult<Option<TokenRecord>> {
    let Some(token) = c
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLS} FROM tokens
             WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL AND expires_at > ?3"
        ))
        .map_err(backend)?
        .query_row(params![id, account_id, now], token_from_row)
        .optional()
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let changed = c
        .prepare_cached(
            "UPDATE tokens SET used_at = ?3, sealed = NULL
             WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL",
        )
        .map_err(backend)?
        .execute(params![id, account_id, now])
        .map_err(backend)?;
    Ok((changed == 1).then_some(token))
}

/// Appends `token.created` in the transaction that stores the token.
pub(super) fn token_created(
    c: &Connection,
    master: Option<&MasterKey>,
    token: &TokenRecord,
) -> StoreResult<()> {
    SqlTx(c, master).append_event(&NewEvent {
        id: crate::ids::new_id("evt_"),
        account_id: token.account_id.clone(),
        event_type: "token.created".to_owned(),
        data: serde_json::json!({"token": token.id, "type": token.token_type.as_str()}),
        created: token.created,
    })
}

impl SqlTx<'_> {
    /// The account's audit key, made (and the account's existing events re-linked under it)
    /// if it has none yet.
    fn audit_key_for(&self, account_id: &str) -> StoreResult<AuditKey> {
        let master = self.1.ok_or_else(|| {
            StoreError::Backend("the audit log needs the master key to key its chains".into())
        })?;
        let unwrap_failed = |_| {
            StoreError::Backend("cannot unwrap an account's audit key: wrong master key?".into())
        };
        if let Some(wrapped) = self.audit_key(account_id)? {
            return AuditKey::unwrap(master, account_id, &wrapped).map_err(unwrap_failed);
        }
        let (key, wrapped) = AuditKey::generate(master, account_id)
            .map_err(|_| StoreError::Backend("cannot make an audit key".into()))?;
        let relinked = self.relink_legacy_chain(account_id, &key)?;
        let n = self
            .0
            .execute(
                "UPDATE accounts SET audit_key = ?2 WHERE id = ?1 AND audit_key IS NULL",
                params![account_id, wrapped],
            )
            .map_err(backend)?;
        if n != 1 {
            return Err(StoreError::Backend(format!(
                "events for {account_id}, which is not an account"
            )));
        }
        if relinked > 0 {
            tracing::info!(
                account = account_id,
                events = relinked,
                "keyed an audit chain made by an older vault"
            );
        }
        Ok(key)
    }

    /// Re-links an account's plain SHA-256 chain (from before migration 4) under `key`, as far
    /// as that chain is intact. From the first broken event on, rows stay as they are, so that
    /// `events verify` still names it. Returns the events re-linked.
    fn relink_legacy_chain(&self, account_id: &str, key: &AuditKey) -> StoreResult<usize> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, String)> = {
            let mut stmt = self
                .0
                .prepare(
                    "SELECT seq, prev_hash, hash, body FROM events WHERE account_id = ?1 ORDER BY seq",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![account_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let mut old_prev = vec![0u8; 32];
        let mut new_prev = vec![0u8; 32];
        let mut n = 0;
        for (seq, prev, hash, body) in rows {
            if prev != old_prev || legacy_chain_hash(&prev, &body)[..] != hash[..] {
                break;
            }
            let link = key.link(&new_prev, &body);
            self.0
                .prepare_cached("UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1")
                .map_err(backend)?
                .execute(params![seq, new_prev, &link[..]])
                .map_err(backend)?;
            old_prev = hash;
            new_prev = link.to_vec();
            n += 1;
        }
        Ok(n)
    }
}

impl Tx for SqlTx<'_> {
    fn use_token(&self, account_id: &str, id: &str, now: i64) -> StoreResult<Option<TokenRecord>> {
        use_token(self.0, account_id, id, now)
    }

    fn token(&self, account_id: &str, id: &str) -> StoreResult<Option<TokenRecord>> {
        self.0
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1 AND account_id = ?2"
            ))
            .map_err(backend)?
            .query_row(params![id, account_id], token_from_row)
            .optional()
            .map_err(backend)
    }

    fn insert_card(&self, c: &CardRecord) -> StoreResult<()> {
        self.0
            .prepare_cached(&format!(
                "INSERT INTO cards ({CARD_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
            ))
            .map_err(backend)?
            .execute(params![
                c.id,
                c.account_id,
                c.customer,
                c.summary.brand,
                c.summary.bin,
                c.summary.last4,
                c.summary.exp_month,
                c.summary.exp_year,
                &c.summary.fingerprint[..],
                c.issuer.issuer,
                c.issuer.country,
                c.issuer.funding,
                c.issuer.currency,
                c.metadata,
                c.wrapped_key,
                c.sealed,
                c.network_transaction_id,
                c.created
            ])
            .map(drop)
            .map_err(backend)
    }

    fn card(&self, account_id: &str, id: &str) -> StoreResult<Option<CardRecord>> {
        self.0
            .prepare_cached(&format!(
                "SELECT {CARD_COLS} FROM cards WHERE id = ?1 AND account_id = ?2 AND deleted_at IS NULL"
            ))
            .map_err(backend)?
            .query_row(params![id, account_id], card_from_row)
            .optional()
            .map_err(backend)
    }

    fn cards(
        &self,
        account_id: &str,
        customer: Option<&str>,
        starting_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CardRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .0
            .prepare_cached(&format!(
                "SELECT {CARD_COLS} FROM cards
                 WHERE account_id = ?1 AND deleted_at IS NULL AND (?2 IS NULL OR customer = ?2)
                   AND (?3 IS NULL OR rowid < (SELECT rowid FROM cards WHERE id = ?3 AND account_id = ?1))
                 ORDER BY rowid DESC LIMIT ?4"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![account_id, customer, starting_after, limit],
                card_from_row,
            )
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn set_network_transaction_id(
        &self,
        account_id: &str,
        id: &str,
        ntid: &str,
    ) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "UPDATE cards SET network_transaction_id = ?3 WHERE id = ?1 AND account_id = ?2",
            )
            .map_err(backend)?
            .execute(params![id, account_id, ntid])
            .map(drop)
            .map_err(backend)
    }

    fn delete_card(&self, account_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        self.0
            .execute(
                "DELETE FROM card_cvcs WHERE card_id = ?1 AND account_id = ?2",
                params![id, account_id],
            )
            .map_err(backend)?;
        // With secure_delete on, the old key and blob are overwritten, not left in free pages.
        let n = self
            .0
            .execute(
                "UPDATE cards SET card_key = NULL, sealed = NULL, network_transaction_id = NULL,
                        deleted_at = ?3
                 WHERE id = ?1 AND account_id = ?2 AND deleted_at IS NULL",
                params![id, account_id, now],
            )
            .map_err(backend)?;
        Ok(n == 1)
    }

    fn put_cvc(
        &self,
        account_id: &str,
        card_id: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "INSERT OR REPLACE INTO card_cvcs (card_id, account_id, sealed, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![card_id, account_id, sealed, expires_at])
            .map(drop)
            .map_err(backend)
    }

    fn take_cvc(&self, account_id: &str, card_id: &str, now: i64) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>, i64)> = self
            .0
            .prepare_cached(
                "DELETE FROM card_cvcs WHERE card_id = ?1 AND account_id = ?2
                 RETURNING sealed, expires_at",
            )
            .map_err(backend)?
            .query_row(params![card_id, account_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(backend)?;
        Ok(row.filter(|(_, until)| *until > now).map(|(s, _)| s))
    }

    fn cvc_until(&self, account_id: &str, card_id: &str, now: i64) -> StoreResult<Option<i64>> {
        self.0
            .prepare_cached(
                "SELECT expires_at FROM card_cvcs
                 WHERE card_id = ?1 AND account_id = ?2 AND expires_at > ?3",
            )
            .map_err(backend)?
            .query_row(params![card_id, account_id, now], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    fn insert_charge(&self, c: &ChargeRecord) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "INSERT INTO charges (id, account_id, object, created) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![c.id, c.account_id, c.object, c.created])
            .map(drop)
            .map_err(backend)
    }

    fn charge(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>> {
        self.0
            .prepare_cached(
                "SELECT id, account_id, object, created FROM charges WHERE id = ?1 AND account_id = ?2",
            )
            .map_err(backend)?
            .query_row(params![id, account_id], |r| {
                Ok(ChargeRecord {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    object: r.get(2)?,
                    created: r.get(3)?,
                })
            })
            .optional()
            .map_err(backend)
    }

    fn append_event(&self, e: &NewEvent) -> StoreResult<()> {
        // Each account has its own chain. One writer at a time (the transaction holds SQLite's
        // write lock), so the tail read here is still the tail when the row goes in.
        let prev: Vec<u8> = self
            .0
            .prepare_cached(
                "SELECT hash FROM events WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1",
            )
            .map_err(backend)?
            .query_row(params![e.account_id], |r| r.get(0))
            .optional()
            .map_err(backend)?
            .unwrap_or_else(|| vec![0u8; 32]);
        let body = canonical_event(e)?;
        let hash = self.audit_key_for(&e.account_id)?.link(&prev, &body);
        self.0
            .prepare_cached(&format!(
                "INSERT INTO events ({EVENT_COLS}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6)"
            ))
            .map_err(backend)?
            .execute(params![
                e.id,
                e.account_id,
                e.event_type,
                body,
                prev,
                &hash[..]
            ])
            .map(drop)
            .map_err(backend)
    }

    fn events(
        &self,
        account_id: &str,
        starting_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .0
            .prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM events
                 WHERE account_id = ?1
                   AND (?2 IS NULL OR seq < (SELECT seq FROM events WHERE id = ?2 AND account_id = ?1))
                 ORDER BY seq DESC LIMIT ?3"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![account_id, starting_after, limit], event_from_row)
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn all_events(&self) -> StoreResult<Vec<EventRecord>> {
        let mut stmt = self
            .0
            .prepare(&format!("SELECT {EVENT_COLS} FROM events ORDER BY seq"))
            .map_err(backend)?;
        let rows = stmt.query_map([], event_from_row).map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn audit_key(&self, account_id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.0
            .prepare_cached("SELECT audit_key FROM accounts WHERE id = ?1")
            .map_err(backend)?
            .query_row(params![account_id], |r| r.get(0))
            .optional()
            .map_err(backend)
            .map(Option::flatten)
    }

    fn key_audit_chains(&self) -> StoreResult<u64> {
        let ids: Vec<String> = {
            let mut stmt = self
                .0
                .prepare("SELECT id FROM accounts WHERE audit_key IS NULL ORDER BY rowid")
                .map_err(backend)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        for id in &ids {
            self.audit_key_for(id)?;
        }
        Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
    }

    fn claim_key(
        &self,
        account_id: &str,
        key_hash: &[u8; 32],
        request_hash: &[u8; 32],
        now: i64,
        lock_secs: i64,
    ) -> StoreResult<Claim> {
        let existing: Option<KeyRow> = self
            .0
            .prepare_cached(
                "SELECT request_hash, status, body, locked_until, expires_at FROM idempotency_keys
                 WHERE account_id = ?1 AND key_hash = ?2",
            )
            .map_err(backend)?
            .query_row(params![account_id, &key_hash[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
            .map_err(backend)?;
        match existing {
            Some((_, _, _, _, expires_at)) if expires_at <= now => {}
            Some((hash, _, _, _, _)) if hash != request_hash[..] => return Ok(Claim::Mismatch),
            Some((_, Some(status), body, _, _)) => {
                return Ok(Claim::Done {
                    status,
                    body: body.unwrap_or_default(),
                });
            }
            Some((_, None, _, locked_until, _)) if locked_until > now => {
                return Ok(Claim::InFlight);
            }
            _ => {}
        }
        self.0
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys
                   (account_id, key_hash, request_hash, status, body, locked_until, expires_at)
                 VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5)",
            )
            .map_err(backend)?
            .execute(params![
                account_id,
                &key_hash[..],
                &request_hash[..],
                now + lock_secs,
                now + 24 * 3600
            ])
            .map_err(backend)?;
        Ok(Claim::Fresh)
    }

    fn finish_key(
        &self,
        account_id: &str,
        key_hash: &[u8; 32],
        status: u16,
        body: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "UPDATE idempotency_keys SET status = ?3, body = ?4, expires_at = ?5
                 WHERE account_id = ?1 AND key_hash = ?2",
            )
            .map_err(backend)?
            .execute(params![account_id, &key_hash[..], status, body, expires_at])
            .map(drop)
            .map_err(backend)
    }

    fn release_key(&self, account_id: &str, key_hash: &[u8; 32]) -> StoreResult<()> {
        self.0
            .prepare_cached("DELETE FROM idempotency_keys WHERE account_id = ?1 AND key_hash = ?2")
            .map_err(backend)?
            .execute(params![account_id, &key_hash[..]])
            .map(drop)
            .map_err(backend)
    }

    fn release_all_claims(&self) -> StoreResult<u64> {
        let n = self
            .0
            .execute("DELETE FROM idempotency_keys WHERE status IS NULL", [])
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn purge_ledger(&self, now: i64) -> StoreResult<u64> {
        let cvcs = self
            .0
            .execute("DELETE FROM card_cvcs WHERE expires_at <= ?1", params![now])
            .map_err(backend)?;
        let keys = self
            .0
            .execute(
                "DELETE FROM idempotency_keys WHERE expires_at <= ?1",
                params![now],
            )
            .map_err(backend)?;
        Ok(u64::try_from(cvcs + keys).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl Ledger for SqliteStore {
    async fn transact(&self, job: TxJob) -> StoreResult<()> {
        let master = self.inner.audit_master.get().cloned();
        self.write(move |c| job(&SqlTx(c, master.as_deref()))).await
    }

    async fn query(&self, job: TxJob) -> StoreResult<()> {
        let master = self.inner.audit_master.get().cloned();
        self.read(move |c| job(&SqlTx(c, master.as_deref()))).await
    }

    fn use_master_key(&self, master: Arc<MasterKey>) {
        // Set once: a store serves one vault, whose master key does not change under it.
        let _ = self.inner.audit_master.set(master);
    }
}
