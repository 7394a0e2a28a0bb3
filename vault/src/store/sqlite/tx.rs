//! [`Tx`] on SQLite: every statement the vault runs, on the connection of the transaction (or
//! read) the caller is in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::backend;
use crate::crypto::{AuditKey, MasterKey, sha256};
use crate::pagination::Page;
use crate::store::records::{RefundRecord, canonical_event};
use crate::store::{
    AccountRecord, ApiKeyRecord, CardRecord, CardSummary, ChargeRecord, Claim, EventRecord,
    IssuerInfo, JtiRecord, KeyKind, NewEvent, SealingKeyRecord, StoreError, StoreResult,
    TokenRecord, TokenType, Tx, WrapSlot, WrappedKeyRecord,
};
use crate::store::{RecurringPage, RecurringRecord, RecurringRunRecord};

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
pub(super) struct SqlTx<'a>(&'a Connection, Option<&'a MasterKey>, &'a AuditKeyCache);

/// Audit keys already unwrapped, by account, each beside the wrapped form it came from: a
/// key is used only while the row still holds that same wrapped key, so the cache is never
/// ahead of the database (a rolled-back transaction, a rewrap) and only saves the unwrapping.
#[derive(Debug, Default)]
pub(super) struct AuditKeyCache(Mutex<HashMap<String, CachedAuditKey>>);

/// A wrapped audit key as stored, and the key it unwraps to.
type CachedAuditKey = (Vec<u8>, Arc<AuditKey>);

impl AuditKeyCache {
    fn get(&self, account_id: &str, wrapped: &[u8]) -> Option<Arc<AuditKey>> {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.get(account_id) {
            Some((w, key)) if w.as_slice() == wrapped => Some(Arc::clone(key)),
            _ => None,
        }
    }

    fn put(&self, account_id: &str, wrapped: Vec<u8>, key: Arc<AuditKey>) {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(account_id.to_owned(), (wrapped, key));
    }
}

impl<'a> SqlTx<'a> {
    pub(super) fn new(
        c: &'a Connection,
        master: Option<&'a MasterKey>,
        audit_keys: &'a AuditKeyCache,
    ) -> Self {
        SqlTx(c, master, audit_keys)
    }

    /// The account's audit key, made (and the account's existing events re-linked under it)
    /// if it has none yet.
    fn audit_key_for(&self, account_id: &str) -> StoreResult<Arc<AuditKey>> {
        let master = self.1.ok_or_else(|| {
            StoreError::Backend("the audit log needs the master key to key its chains".into())
        })?;
        let unwrap_failed = |_| {
            StoreError::Backend("cannot unwrap an account's audit key: wrong master key?".into())
        };
        if let Some(wrapped) = self.audit_key(account_id)? {
            if let Some(key) = self.2.get(account_id, &wrapped) {
                return Ok(key);
            }
            let key =
                Arc::new(AuditKey::unwrap(master, account_id, &wrapped).map_err(unwrap_failed)?);
            self.2.put(account_id, wrapped, Arc::clone(&key));
            return Ok(key);
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
        Ok(Arc::new(key))
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
    fn sealing_keys(&self) -> StoreResult<Vec<SealingKeyRecord>> {
        let mut stmt = self
            .0
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
    }

    fn add_sealing_key(&self, key: &SealingKeyRecord) -> StoreResult<()> {
        self.0
            .execute(
                "UPDATE sealing_keys SET superseded_at = ?1 WHERE superseded_at IS NULL",
                params![key.created],
            )
            .map_err(backend)?;
        self.0
            .execute(
                "INSERT INTO sealing_keys (kid, private_key, public_jwk, created, superseded_at)
                 VALUES (?1, ?2, ?3, ?4, NULL)",
                params![
                    key.kid,
                    key.wrapped_private_key,
                    key.public_jwk,
                    key.created
                ],
            )
            .map(drop)
            .map_err(backend)
    }

    fn delete_sealing_keys(&self, before: i64) -> StoreResult<u64> {
        let n = self
            .0
            .execute(
                "DELETE FROM sealing_keys WHERE superseded_at IS NOT NULL AND superseded_at < ?1",
                params![before],
            )
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn add_account(&self, account: &AccountRecord, keys: &[ApiKeyRecord]) -> StoreResult<()> {
        self.0
            .execute(
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
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Duplicate
                }
                e => backend(e),
            })?;
        for k in keys {
            insert_api_key(self.0, k)?;
        }
        Ok(())
    }

    fn demo_account(&self) -> StoreResult<Option<(AccountRecord, Vec<ApiKeyRecord>)>> {
        let account = self
            .0
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
        let mut stmt = self
            .0
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
    }

    fn api_key(&self, key_hash: &[u8; 32]) -> StoreResult<Option<(ApiKeyRecord, AccountRecord)>> {
        self.0
            .prepare_cached(&format!(
                "SELECT {KEY_COLS}, {ACCOUNT_COLS} FROM api_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.key_hash = ?1"
            ))
            .map_err(backend)?
            .query_row(params![&key_hash[..]], |r| {
                Ok((key_from_row(r)?, account_from_row(r, KEY_COL_COUNT)?))
            })
            .optional()
            .map_err(backend)
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>> {
        self.0
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = ?1"
            ))
            .map_err(backend)?
            .query_row(params![id], |r| account_from_row(r, 0))
            .optional()
            .map_err(backend)
    }

    fn roll_api_key(&self, key: &ApiKeyRecord, old_expire_at: i64) -> StoreResult<u64> {
        let n = self
            .0
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
        insert_api_key(self.0, key)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn revoke_api_key(&self, key_hash: &[u8; 32], now: i64) -> StoreResult<bool> {
        self.0
            .execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE key_hash = ?1",
                params![&key_hash[..], now],
            )
            .map(|n| n > 0)
            .map_err(backend)
    }

    fn set_allowed_origins(&self, account_id: &str, origins: &[String]) -> StoreResult<bool> {
        self.0
            .execute(
                "UPDATE accounts SET allowed_origins = ?2 WHERE id = ?1",
                params![account_id, json_list(origins)?],
            )
            .map(|n| n > 0)
            .map_err(backend)
    }

    fn forward_hosts(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let text: Option<String> = self
            .0
            .prepare_cached("SELECT forward_hosts FROM accounts WHERE id = ?1")
            .map_err(backend)?
            .query_row(params![account_id], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        match text {
            Some(t) => parse_list(&t).map_err(backend),
            None => Ok(Vec::new()),
        }
    }

    fn set_forward_hosts(&self, account_id: &str, hosts: &[String]) -> StoreResult<bool> {
        self.0
            .execute(
                "UPDATE accounts SET forward_hosts = ?2 WHERE id = ?1",
                params![account_id, json_list(hosts)?],
            )
            .map(|n| n > 0)
            .map_err(backend)
    }

    fn add_token(&self, token: &TokenRecord, jti: &JtiRecord) -> StoreResult<()> {
        let fresh = self
            .0
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
        self.0
            .prepare_cached(&format!(
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
        self.append_event(&NewEvent {
            id: crate::ids::new_id("evt_"),
            account_id: token.account_id.clone(),
            event_type: "token.created".to_owned(),
            data: serde_json::json!({"token": token.id, "type": token.token_type.as_str()}),
            created: token.created,
        })
    }

    fn replayed_token(&self, jti: &JtiRecord) -> StoreResult<Option<TokenRecord>> {
        let Some(idempotency_key) = jti.idempotency_key else {
            return Ok(None);
        };
        let cols = TOKEN_COLS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.0
            .prepare_cached(&format!(
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
    }

    /// `RETURNING` shows the row after the update, so the row is read first; the connection
    /// is the only writer and this runs inside its transaction, so nothing comes between the
    /// read and the update.
    fn use_token(&self, account_id: &str, id: &str, now: i64) -> StoreResult<Option<TokenRecord>> {
        let Some(token) = self
            .0
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
        let changed = self
            .0
            .prepare_cached(
                "UPDATE tokens SET used_at = ?3, sealed = NULL
                 WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL",
            )
            .map_err(backend)?
            .execute(params![id, account_id, now])
            .map_err(backend)?;
        Ok((changed == 1).then_some(token))
    }

    fn purge(&self, now: i64) -> StoreResult<u64> {
        let jtis = self
            .0
            .execute("DELETE FROM seen_jtis WHERE expires_at <= ?1", params![now])
            .map_err(backend)?;
        let tokens = self
            .0
            .execute(
                "UPDATE tokens SET sealed = NULL WHERE used_at IS NULL AND sealed IS NOT NULL AND expires_at <= ?1",
                params![now],
            )
            .map_err(backend)?;
        Ok(u64::try_from(jtis + tokens).unwrap_or(u64::MAX))
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

    fn wrapped_keys(&self) -> StoreResult<Vec<WrappedKeyRecord>> {
        // (slot, row, AAD id, blob) from every column that holds a wrapped key.
        let queries: [(WrapSlot, &str); 5] = [
            (
                WrapSlot::SealingKey,
                "SELECT kid, kid, private_key FROM sealing_keys ORDER BY kid",
            ),
            (
                WrapSlot::AccountDataKey,
                "SELECT id, id, data_key FROM accounts ORDER BY id",
            ),
            (
                WrapSlot::AccountFingerprintKey,
                "SELECT id, id, fingerprint_key FROM accounts ORDER BY id",
            ),
            (
                WrapSlot::AccountAuditKey,
                "SELECT id, id, audit_key FROM accounts WHERE audit_key IS NOT NULL ORDER BY id",
            ),
            (
                WrapSlot::DemoApiKey,
                "SELECT lower(hex(key_hash)), account_id, wrapped_key FROM api_keys
                 WHERE wrapped_key IS NOT NULL ORDER BY key_hash",
            ),
        ];
        let mut out = Vec::new();
        for (slot, sql) in queries {
            let mut stmt = self.0.prepare(sql).map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(WrappedKeyRecord {
                        slot,
                        row: r.get(0)?,
                        aad_id: r.get(1)?,
                        blob: r.get(2)?,
                    })
                })
                .map_err(backend)?;
            for row in rows {
                out.push(row.map_err(backend)?);
            }
        }
        Ok(out)
    }

    fn rewrap_key(&self, slot: WrapSlot, row: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let sql = match slot {
            WrapSlot::SealingKey => {
                "UPDATE sealing_keys SET private_key = ?3 WHERE kid = ?1 AND private_key = ?2"
            }
            WrapSlot::AccountDataKey => {
                "UPDATE accounts SET data_key = ?3 WHERE id = ?1 AND data_key = ?2"
            }
            WrapSlot::AccountFingerprintKey => {
                "UPDATE accounts SET fingerprint_key = ?3 WHERE id = ?1 AND fingerprint_key = ?2"
            }
            WrapSlot::AccountAuditKey => {
                "UPDATE accounts SET audit_key = ?3 WHERE id = ?1 AND audit_key = ?2"
            }
            WrapSlot::DemoApiKey => {
                "UPDATE api_keys SET wrapped_key = ?3
                 WHERE key_hash = unhex(?1) AND wrapped_key = ?2"
            }
        };
        let n = self
            .0
            .execute(sql, params![row, old, new])
            .map_err(backend)?;
        Ok(n == 1)
    }

    fn insert_recurring(&self, r: &RecurringRecord) -> StoreResult<()> {
        self.0
            .prepare_cached(&format!(
                "INSERT INTO recurring_charges ({RECURRING_COLS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))
            .map_err(backend)?
            .execute(params![
                r.id,
                r.account_id,
                r.source,
                r.amount,
                r.currency,
                r.interval,
                r.interval_count,
                r.start,
                r.end_at,
                r.count,
                r.status,
                r.period,
                r.attempt,
                r.next_run,
                r.created,
                r.canceled_at
            ])
            .map(drop)
            .map_err(backend)
    }

    fn recurring(
        &self,
        account_id: &str,
        id: &str,
        _lock: bool,
    ) -> StoreResult<Option<RecurringRecord>> {
        // One writer at a time holds the database: a write transaction's read is already
        // locked against every other writer.
        self.0
            .prepare_cached(&format!(
                "SELECT {RECURRING_COLS} FROM recurring_charges WHERE id = ?1 AND account_id = ?2"
            ))
            .map_err(backend)?
            .query_row(params![id, account_id], recurring_from_row)
            .optional()
            .map_err(backend)
    }

    fn update_recurring(&self, r: &RecurringRecord) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "UPDATE recurring_charges SET status = ?3, period = ?4, attempt = ?5,
                        next_run = ?6, canceled_at = ?7
                 WHERE id = ?1 AND account_id = ?2",
            )
            .map_err(backend)?
            .execute(params![
                r.id,
                r.account_id,
                r.status,
                r.period,
                r.attempt,
                r.next_run,
                r.canceled_at
            ])
            .map(drop)
            .map_err(backend)
    }

    fn recurring_page(
        &self,
        account_id: &str,
        page: &RecurringPage,
    ) -> StoreResult<Vec<RecurringRecord>> {
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        // Newest first by (created, rowid): a cursor keeps its place while rows are added.
        let before = page.ending_before.is_some();
        let sql = format!(
            "SELECT {RECURRING_COLS} FROM recurring_charges
             WHERE account_id = ?1
               AND (?2 IS NULL OR (created, rowid) <
                    (SELECT created, rowid FROM recurring_charges WHERE id = ?2 AND account_id = ?1))
               AND (?3 IS NULL OR (created, rowid) >
                    (SELECT created, rowid FROM recurring_charges WHERE id = ?3 AND account_id = ?1))
               AND (?4 IS NULL OR created >= ?4) AND (?5 IS NULL OR created <= ?5)
             ORDER BY created {o}, rowid {o} LIMIT ?6",
            o = if before { "ASC" } else { "DESC" }
        );
        let mut stmt = self.0.prepare_cached(&sql).map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    account_id,
                    page.starting_after,
                    page.ending_before,
                    page.created_gte,
                    page.created_lte,
                    limit
                ],
                recurring_from_row,
            )
            .map_err(backend)?;
        let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
        if before {
            out.reverse();
        }
        Ok(out)
    }

    fn due_recurring(&self, now: i64, limit: usize) -> StoreResult<Vec<(String, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT account_id, id FROM recurring_charges
                 WHERE next_run IS NOT NULL AND next_run <= ?1 ORDER BY next_run LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn claim_recurring_run(&self, run: &RecurringRunRecord) -> StoreResult<bool> {
        let n = self
            .0
            .prepare_cached(
                "INSERT INTO recurring_runs (recurring_id, period, attempt, charge_id, status, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )
            .map_err(backend)?
            .execute(params![
                run.recurring_id,
                run.period,
                run.attempt,
                run.charge_id,
                run.status,
                run.created
            ])
            .map_err(backend)?;
        Ok(n == 1)
    }

    fn finish_recurring_run(&self, run: &RecurringRunRecord) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "UPDATE recurring_runs SET charge_id = ?4, status = ?5
                 WHERE recurring_id = ?1 AND period = ?2 AND attempt = ?3",
            )
            .map_err(backend)?
            .execute(params![
                run.recurring_id,
                run.period,
                run.attempt,
                run.charge_id,
                run.status
            ])
            .map(drop)
            .map_err(backend)
    }

    fn recurring_runs(&self, recurring_id: &str) -> StoreResult<Vec<RecurringRunRecord>> {
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT recurring_id, period, attempt, charge_id, status, created
                 FROM recurring_runs WHERE recurring_id = ?1 ORDER BY period, attempt",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![recurring_id], |r| {
                Ok(RecurringRunRecord {
                    recurring_id: r.get(0)?,
                    period: r.get(1)?,
                    attempt: r.get(2)?,
                    charge_id: r.get(3)?,
                    status: r.get(4)?,
                    created: r.get(5)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn charge_for_update(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>> {
        // One writer at a time: the transaction already holds SQLite's write lock.
        self.charge(account_id, id)
    }

    fn update_charge(&self, account_id: &str, id: &str, object: &str) -> StoreResult<()> {
        self.0
            .prepare_cached("UPDATE charges SET object = ?3 WHERE id = ?1 AND account_id = ?2")
            .map_err(backend)?
            .execute(params![id, account_id, object])
            .map(drop)
            .map_err(backend)
    }

    fn charges(&self, account_id: &str, page: &Page) -> StoreResult<Vec<ChargeRecord>> {
        let sql = page_sql("charges", "id, account_id, object, created", "", page);
        let mut stmt = self.0.prepare_cached(&sql).map_err(backend)?;
        let rows = stmt
            .query_map(params_from_iter(page_params(account_id, page, None)), |r| {
                Ok(ChargeRecord {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    object: r.get(2)?,
                    created: r.get(3)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn insert_refund(&self, r: &RefundRecord) -> StoreResult<()> {
        self.0
            .prepare_cached(
                "INSERT INTO refunds (id, account_id, charge_id, object, created)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend)?
            .execute(params![
                r.id,
                r.account_id,
                r.charge_id,
                r.object,
                r.created
            ])
            .map(drop)
            .map_err(backend)
    }

    fn refund(&self, account_id: &str, id: &str) -> StoreResult<Option<RefundRecord>> {
        self.0
            .prepare_cached(&format!(
                "SELECT {REFUND_COLS} FROM refunds WHERE id = ?1 AND account_id = ?2"
            ))
            .map_err(backend)?
            .query_row(params![id, account_id], refund_from_row)
            .optional()
            .map_err(backend)
    }

    fn refunds(
        &self,
        account_id: &str,
        charge_id: Option<&str>,
        page: &Page,
    ) -> StoreResult<Vec<RefundRecord>> {
        let sql = page_sql(
            "refunds",
            REFUND_COLS,
            "AND (?7 IS NULL OR charge_id = ?7)",
            page,
        );
        let mut stmt = self.0.prepare_cached(&sql).map_err(backend)?;
        let rows = stmt
            .query_map(
                params_from_iter(page_params(account_id, page, Some(&charge_id))),
                refund_from_row,
            )
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn card_id_taken(&self, id: &str) -> StoreResult<bool> {
        self.0
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM cards WHERE id = ?1)")
            .map_err(backend)?
            .query_row(params![id], |r| r.get::<_, bool>(0))
            .map_err(backend)
    }

    fn purge_jtis(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let n = self
            .0
            .prepare_cached(PURGE_JTIS)
            .map_err(backend)?
            .execute(params![before, limit])
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn purge_tokens(&self, used_before: i64, expired_before: i64, limit: u32) -> StoreResult<u64> {
        let used = self
            .0
            .prepare_cached(PURGE_USED_TOKENS)
            .map_err(backend)?
            .execute(params![used_before, limit])
            .map_err(backend)?;
        let left = limit.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX));
        let expired = if left == 0 {
            0
        } else {
            self.0
                .prepare_cached(PURGE_EXPIRED_TOKENS)
                .map_err(backend)?
                .execute(params![expired_before, left])
                .map_err(backend)?
        };
        Ok(u64::try_from(used + expired).unwrap_or(u64::MAX))
    }

    fn explain_hot(&self) -> StoreResult<Vec<(&'static str, String)>> {
        let mut out = Vec::new();
        for (name, sql) in hot_statements() {
            let mut st = self
                .0
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .map_err(backend)?;
            // A plan does not depend on the values (the vault keeps no sqlite_stat tables).
            let nulls = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
            let steps = st
                .query_map(params_from_iter(nulls), |r| r.get::<_, String>(3))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            out.push((name, steps.join("\n")));
        }
        Ok(out)
    }

    fn bulk_insert_tokens(&self, tokens: &[TokenRecord]) -> StoreResult<u64> {
        let mut st = self
            .0
            .prepare_cached(&format!(
                "INSERT INTO tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))
            .map_err(backend)?;
        for token in tokens {
            let card = token.card.as_ref();
            st.execute(params![
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
        }
        Ok(u64::try_from(tokens.len()).unwrap_or(u64::MAX))
    }
}

const RECURRING_COLS: &str = "id, account_id, source, amount, currency, interval, interval_count, start, end_at, count, status, period, attempt, next_run, created, canceled_at";

fn recurring_from_row(r: &Row<'_>) -> rusqlite::Result<RecurringRecord> {
    Ok(RecurringRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        source: r.get(2)?,
        amount: r.get(3)?,
        currency: r.get(4)?,
        interval: r.get(5)?,
        interval_count: r.get(6)?,
        start: r.get(7)?,
        end_at: r.get(8)?,
        count: r.get(9)?,
        status: r.get(10)?,
        period: r.get(11)?,
        attempt: r.get(12)?,
        next_run: r.get(13)?,
        created: r.get(14)?,
        canceled_at: r.get(15)?,
    })
}

const REFUND_COLS: &str = "id, account_id, charge_id, object, created";

fn refund_from_row(r: &Row) -> rusqlite::Result<RefundRecord> {
    Ok(RefundRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        charge_id: r.get(2)?,
        object: r.get(3)?,
        created: r.get(4)?,
    })
}

/// The SQL of one [`Page`] of `table`, whose rows have `id`, `account_id` and `created`:
/// `?1` the account, `?2` `starting_after`, `?3` `ending_before`, `?4` and `?5` the `created`
/// bounds, `?6` how many rows; `filter` (`AND …`) may use `?7` on. With [`page_params`], for
/// any list the vault keeps.
pub(crate) fn page_sql(table: &str, cols: &str, filter: &str, page: &Page) -> String {
    let order = if page.ascending() { "ASC" } else { "DESC" };
    format!(
        "SELECT {cols} FROM {table}
         WHERE account_id = ?1
           AND (?2 IS NULL OR rowid < (SELECT rowid FROM {table} WHERE id = ?2 AND account_id = ?1))
           AND (?3 IS NULL OR rowid > (SELECT rowid FROM {table} WHERE id = ?3 AND account_id = ?1))
           AND (?4 IS NULL OR created >= ?4) AND (?5 IS NULL OR created <= ?5)
           {filter}
         ORDER BY rowid {order} LIMIT ?6"
    )
}

/// The parameters `?1` to `?6` of [`page_sql`], then `extra` as `?7`.
pub(crate) fn page_params<'p>(
    account_id: &'p str,
    page: &'p Page,
    extra: Option<&'p dyn rusqlite::ToSql>,
) -> Vec<Box<dyn rusqlite::ToSql + 'p>> {
    let fetch = i64::try_from(page.fetch()).unwrap_or(i64::MAX);
    let mut v: Vec<Box<dyn rusqlite::ToSql + 'p>> = vec![
        Box::new(account_id),
        Box::new(page.after()),
        Box::new(page.before()),
        Box::new(page.created_gte),
        Box::new(page.created_lte),
        Box::new(fetch),
    ];
    if let Some(e) = extra {
        v.push(Box::new(e));
    }
    v
}

/// Oldest expired replay records first, a batch at a time (the key starts with the expiry).
const PURGE_JTIS: &str = "DELETE FROM seen_jtis WHERE (expires_at, jti_hash) IN
     (SELECT expires_at, jti_hash FROM seen_jtis WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
const PURGE_USED_TOKENS: &str = "DELETE FROM tokens WHERE rowid IN
     (SELECT rowid FROM tokens WHERE used_at IS NOT NULL AND used_at <= ?1 LIMIT ?2)";
const PURGE_EXPIRED_TOKENS: &str = "DELETE FROM tokens WHERE rowid IN
     (SELECT rowid FROM tokens WHERE used_at IS NULL AND expires_at <= ?1 LIMIT ?2)";

/// The statements of the hot path and of the upkeep, as the methods above run them (the
/// select lists aside, which do not change a plan), for [`Tx::explain_hot`].
fn hot_statements() -> Vec<(&'static str, String)> {
    vec![
        ("token", "SELECT * FROM tokens WHERE id = ?1 AND account_id = ?2".into()),
        (
            "use_token.select",
            "SELECT * FROM tokens WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL AND expires_at > ?3".into(),
        ),
        (
            "use_token.update",
            "UPDATE tokens SET used_at = ?3, sealed = NULL WHERE id = ?1 AND account_id = ?2 AND used_at IS NULL".into(),
        ),
        (
            "replayed_token",
            "SELECT t.* FROM seen_jtis j JOIN tokens t ON t.id = j.token_id AND t.account_id = j.account_id
             WHERE j.expires_at = ?4 AND j.jti_hash = ?1 AND j.account_id = ?2 AND j.idempotency_key = ?3".into(),
        ),
        (
            "card",
            "SELECT * FROM cards WHERE id = ?1 AND account_id = ?2 AND deleted_at IS NULL".into(),
        ),
        ("charge", "SELECT id, account_id, object, created FROM charges WHERE id = ?1 AND account_id = ?2".into()),
        ("chain_tail", "SELECT hash FROM events WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1".into()),
        (
            "claim_key",
            "SELECT request_hash, status, body, locked_until, expires_at FROM idempotency_keys
             WHERE account_id = ?1 AND key_hash = ?2".into(),
        ),
        ("api_key", "SELECT * FROM api_keys WHERE key_hash = ?1".into()),
        ("purge_jtis", PURGE_JTIS.into()),
        ("purge_used_tokens", PURGE_USED_TOKENS.into()),
        ("purge_expired_tokens", PURGE_EXPIRED_TOKENS.into()),
        (
            "purge_card_data",
            "UPDATE tokens SET sealed = NULL WHERE used_at IS NULL AND sealed IS NOT NULL AND expires_at <= ?1".into(),
        ),
        ("purge_cvcs", "DELETE FROM card_cvcs WHERE expires_at <= ?1".into()),
        ("purge_idempotency_keys", "DELETE FROM idempotency_keys WHERE expires_at <= ?1".into()),
    ]
}
