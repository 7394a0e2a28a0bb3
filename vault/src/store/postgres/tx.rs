//! [`Tx`] on PostgreSQL: every statement the vault runs, inside the caller's transaction.
//!
//! Transactions run at READ COMMITTED. Where a read decides a write, the row is locked first
//! (`FOR UPDATE`, or an `INSERT … ON CONFLICT`, which waits for a competing insert to commit),
//! so that several vault processes on one database decide each thing once. Every lock is taken
//! in the same order (token or card, then the account's chain head), so lock waits never form
//! a cycle.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{FromSql, ToSql};
use postgres::{Row, Statement, Transaction};

use super::pg_error;
use crate::crypto::{AuditKey, MasterKey};
use crate::pagination::Page;
use crate::store::records::{RefundRecord, canonical_event};
use crate::store::{
    AccountRecord, ApiKeyRecord, CardRecord, CardSummary, ChargeRecord, Claim, EventRecord,
    IssuerInfo, JtiRecord, KeyKind, NewEvent, SealingKeyRecord, StoreError, StoreResult,
    TokenRecord, TokenType, Tx, WrapSlot, WrappedKeyRecord,
};
use crate::store::{RecurringPage, RecurringRecord, RecurringRunRecord};

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

fn get<'r, T: FromSql<'r>>(r: &'r Row, i: usize) -> StoreResult<T> {
    r.try_get(i).map_err(pg_error)
}

fn bad_value(what: &str) -> StoreError {
    StoreError::Backend(format!("unexpected stored {what}"))
}

fn json_list(list: &[String]) -> StoreResult<String> {
    serde_json::to_string(list).map_err(|e| StoreError::Backend(e.to_string()))
}

fn parse_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|_| bad_value("list"))
}

fn hash32(bytes: Vec<u8>, what: &str) -> StoreResult<[u8; 32]> {
    bytes.try_into().map_err(|_| bad_value(what))
}

const ACCOUNT_COLS: &str =
    "a.id, a.name, a.allowed_origins, a.data_key, a.fingerprint_key, a.demo, a.created";

fn account_from_row(r: &Row, at: usize) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        id: get(r, at)?,
        name: get(r, at + 1)?,
        allowed_origins: parse_list(get(r, at + 2)?)?,
        wrapped_data_key: get(r, at + 3)?,
        wrapped_fingerprint_key: get(r, at + 4)?,
        demo: get(r, at + 5)?,
        created: get(r, at + 6)?,
    })
}

const KEY_COLS: &str = "k.key_hash, k.account_id, k.kind, k.scopes, k.wrapped_key, k.created, k.expires_at, k.revoked_at";
/// How many columns [`KEY_COLS`] names.
const KEY_COL_COUNT: usize = 8;

fn key_from_row(r: &Row) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        key_hash: hash32(get(r, 0)?, "key hash")?,
        account_id: get(r, 1)?,
        kind: KeyKind::parse(get(r, 2)?).ok_or_else(|| bad_value("key kind"))?,
        scopes: parse_list(get(r, 3)?)?,
        wrapped_key: get(r, 4)?,
        created: get(r, 5)?,
        expires_at: get(r, 6)?,
        revoked_at: get(r, 7)?,
    })
}

const TOKEN_COLS: &str = "id, account_id, type, brand, bin, last4, exp_month, exp_year, fingerprint, sealed, client_ip, created, expires_at, used_at";

fn small<T: TryFrom<i64>>(v: i64, what: &str) -> StoreResult<T> {
    T::try_from(v).map_err(|_| bad_value(what))
}

fn token_from_row(r: &Row) -> StoreResult<TokenRecord> {
    let brand: Option<String> = get(r, 3)?;
    let card = match brand {
        Some(brand) => Some(CardSummary {
            brand,
            bin: get::<Option<String>>(r, 4)?.unwrap_or_default(),
            last4: get::<Option<String>>(r, 5)?.unwrap_or_default(),
            exp_month: small(get::<Option<i64>>(r, 6)?.unwrap_or_default(), "month")?,
            exp_year: small(get::<Option<i64>>(r, 7)?.unwrap_or_default(), "year")?,
            fingerprint: hash32(
                get::<Option<Vec<u8>>>(r, 8)?.unwrap_or_default(),
                "fingerprint",
            )?,
        }),
        None => None,
    };
    Ok(TokenRecord {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        token_type: TokenType::parse(get(r, 2)?).ok_or_else(|| bad_value("token type"))?,
        card,
        sealed: get(r, 9)?,
        client_ip: get(r, 10)?,
        created: get(r, 11)?,
        expires_at: get(r, 12)?,
        used_at: get(r, 13)?,
    })
}

const CARD_COLS: &str = "id, account_id, customer, brand, bin, last4, exp_month, exp_year, fingerprint, issuer, country, funding, currency, metadata, card_key, sealed, network_transaction_id, created";

fn card_from_row(r: &Row) -> StoreResult<CardRecord> {
    Ok(CardRecord {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        customer: get(r, 2)?,
        summary: CardSummary {
            brand: get(r, 3)?,
            bin: get(r, 4)?,
            last4: get(r, 5)?,
            exp_month: small(get(r, 6)?, "month")?,
            exp_year: small(get(r, 7)?, "year")?,
            fingerprint: hash32(get(r, 8)?, "fingerprint")?,
        },
        issuer: IssuerInfo {
            issuer: get(r, 9)?,
            country: get(r, 10)?,
            funding: get(r, 11)?,
            currency: get(r, 12)?,
        },
        metadata: get(r, 13)?,
        wrapped_key: get(r, 14)?,
        sealed: get(r, 15)?,
        network_transaction_id: get(r, 16)?,
        created: get(r, 17)?,
    })
}

const EVENT_COLS: &str = "seq, id, account_id, type, body, prev_hash, hash";

fn event_from_row(r: &Row) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        seq: get(r, 0)?,
        id: get(r, 1)?,
        account_id: get(r, 2)?,
        event_type: get(r, 3)?,
        body: get(r, 4)?,
        prev_hash: get(r, 5)?,
        hash: get(r, 6)?,
    })
}

/// One transaction, the connection's prepared statements, and the master key if the store was
/// given one.
pub(super) struct PgTx<'t, 'c> {
    tx: RefCell<Transaction<'c>>,
    statements: RefCell<&'t mut HashMap<String, Statement>>,
    master: Option<&'t MasterKey>,
}

impl<'t, 'c> PgTx<'t, 'c> {
    pub(super) fn new(
        tx: Transaction<'c>,
        statements: &'t mut HashMap<String, Statement>,
        master: Option<&'t MasterKey>,
    ) -> Self {
        Self {
            tx: RefCell::new(tx),
            statements: RefCell::new(statements),
            master,
        }
    }

    pub(super) fn into_inner(self) -> Transaction<'c> {
        self.tx.into_inner()
    }

    /// The statement for `sql`, parsed once per connection.
    fn statement(&self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.borrow_mut().prepare(sql).map_err(pg_error)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn rows(&self, sql: &str, params: Params<'_>) -> StoreResult<Vec<Row>> {
        let s = self.statement(sql)?;
        self.tx.borrow_mut().query(&s, params).map_err(pg_error)
    }

    fn row(&self, sql: &str, params: Params<'_>) -> StoreResult<Option<Row>> {
        let s = self.statement(sql)?;
        self.tx.borrow_mut().query_opt(&s, params).map_err(pg_error)
    }

    fn exec(&self, sql: &str, params: Params<'_>) -> StoreResult<u64> {
        let s = self.statement(sql)?;
        self.tx.borrow_mut().execute(&s, params).map_err(pg_error)
    }

    fn insert_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO api_keys (key_hash, account_id, kind, scopes, wrapped_key, created, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &&k.key_hash[..],
                &k.account_id,
                &k.kind.as_str(),
                &json_list(&k.scopes)?,
                &k.wrapped_key,
                &k.created,
                &k.expires_at,
                &k.revoked_at,
            ],
        )
        .map(drop)
    }

    /// Locks the account's row until the transaction ends and returns its audit key, made now
    /// if it has none. The lock is the chain head's: whoever holds it appends next, so each
    /// account's events form one chain however many processes write. `FOR NO KEY UPDATE`
    /// leaves inserts that merely reference the account (their foreign-key checks) unblocked.
    fn lock_chain(&self, account_id: &str) -> StoreResult<AuditKey> {
        let master = self.master.ok_or_else(|| {
            StoreError::Backend("the audit log needs the master key to key its chains".into())
        })?;
        let row = self
            .row(
                "SELECT audit_key FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
                &[&account_id],
            )?
            .ok_or_else(|| {
                StoreError::Backend(format!("events for {account_id}, which is not an account"))
            })?;
        if let Some(wrapped) = get::<Option<Vec<u8>>>(&row, 0)? {
            return AuditKey::unwrap(master, account_id, &wrapped).map_err(|_| {
                StoreError::Backend(
                    "cannot unwrap an account's audit key: wrong master key?".into(),
                )
            });
        }
        let (key, wrapped) = AuditKey::generate(master, account_id)
            .map_err(|_| StoreError::Backend("cannot make an audit key".into()))?;
        self.exec(
            "UPDATE accounts SET audit_key = $2 WHERE id = $1",
            &[&account_id, &wrapped],
        )?;
        Ok(key)
    }
}

impl Tx for PgTx<'_, '_> {
    fn sealing_keys(&self) -> StoreResult<Vec<SealingKeyRecord>> {
        self.rows(
            "SELECT kid, private_key, public_jwk, created, superseded_at
             FROM sealing_keys ORDER BY created, kid",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(SealingKeyRecord {
                kid: get(r, 0)?,
                wrapped_private_key: get(r, 1)?,
                public_jwk: get(r, 2)?,
                created: get(r, 3)?,
                superseded_at: get(r, 4)?,
            })
        })
        .collect()
    }

    /// Two rotations at once (two processes) must not both leave an active key: the table lock
    /// makes the second see the first's key and supersede it.
    fn add_sealing_key(&self, key: &SealingKeyRecord) -> StoreResult<()> {
        self.exec("LOCK TABLE sealing_keys IN SHARE ROW EXCLUSIVE MODE", &[])?;
        self.exec(
            "UPDATE sealing_keys SET superseded_at = $1 WHERE superseded_at IS NULL",
            &[&key.created],
        )?;
        self.exec(
            "INSERT INTO sealing_keys (kid, private_key, public_jwk, created, superseded_at)
             VALUES ($1, $2, $3, $4, NULL)",
            &[
                &key.kid,
                &key.wrapped_private_key,
                &key.public_jwk,
                &key.created,
            ],
        )
        .map(drop)
    }

    fn delete_sealing_keys(&self, before: i64) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM sealing_keys WHERE superseded_at IS NOT NULL AND superseded_at < $1",
            &[&before],
        )
    }

    fn add_account(&self, account: &AccountRecord, keys: &[ApiKeyRecord]) -> StoreResult<()> {
        // ON CONFLICT waits for a competing demo account to commit, then reports it here
        // instead of aborting the transaction with an error.
        let n = self.exec(
            "INSERT INTO accounts (id, name, allowed_origins, data_key, fingerprint_key, demo, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &account.id,
                &account.name,
                &json_list(&account.allowed_origins)?,
                &account.wrapped_data_key,
                &account.wrapped_fingerprint_key,
                &account.demo,
                &account.created,
            ],
        )?;
        if n == 0 {
            return Err(StoreError::Duplicate);
        }
        for k in keys {
            self.insert_api_key(k)?;
        }
        Ok(())
    }

    fn demo_account(&self) -> StoreResult<Option<(AccountRecord, Vec<ApiKeyRecord>)>> {
        let Some(row) = self.row(
            &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.demo"),
            &[],
        )?
        else {
            return Ok(None);
        };
        let account = account_from_row(&row, 0)?;
        let keys = self
            .rows(
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys k WHERE k.account_id = $1 ORDER BY k.seq"
                ),
                &[&account.id],
            )?
            .iter()
            .map(key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((account, keys)))
    }

    fn api_key(&self, key_hash: &[u8; 32]) -> StoreResult<Option<(ApiKeyRecord, AccountRecord)>> {
        self.row(
            &format!(
                "SELECT {KEY_COLS}, {ACCOUNT_COLS} FROM api_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.key_hash = $1"
            ),
            &[&&key_hash[..]],
        )?
        .map(|r| Ok((key_from_row(&r)?, account_from_row(&r, KEY_COL_COUNT)?)))
        .transpose()
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>> {
        self.row(
            &format!("SELECT {ACCOUNT_COLS} FROM accounts a WHERE a.id = $1"),
            &[&id],
        )?
        .map(|r| account_from_row(&r, 0))
        .transpose()
    }

    fn roll_api_key(&self, key: &ApiKeyRecord, old_expire_at: i64) -> StoreResult<u64> {
        let n = self.exec(
            "UPDATE api_keys SET expires_at = $4
             WHERE account_id = $1 AND kind = $2 AND key_hash != $3 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $4)",
            &[
                &key.account_id,
                &key.kind.as_str(),
                &&key.key_hash[..],
                &old_expire_at,
            ],
        )?;
        self.insert_api_key(key)?;
        Ok(n)
    }

    fn revoke_api_key(&self, key_hash: &[u8; 32], now: i64) -> StoreResult<bool> {
        self.exec(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_hash = $1",
            &[&&key_hash[..], &now],
        )
        .map(|n| n > 0)
    }

    fn set_allowed_origins(&self, account_id: &str, origins: &[String]) -> StoreResult<bool> {
        self.exec(
            "UPDATE accounts SET allowed_origins = $2 WHERE id = $1",
            &[&account_id, &json_list(origins)?],
        )
        .map(|n| n > 0)
    }

    fn forward_hosts(&self, account_id: &str) -> StoreResult<Vec<String>> {
        match self.row(
            "SELECT forward_hosts FROM accounts WHERE id = $1",
            &[&account_id],
        )? {
            Some(r) => parse_list(&r.get::<_, String>(0)),
            None => Ok(Vec::new()),
        }
    }

    fn set_forward_hosts(&self, account_id: &str, hosts: &[String]) -> StoreResult<bool> {
        self.exec(
            "UPDATE accounts SET forward_hosts = $2 WHERE id = $1",
            &[&account_id, &json_list(hosts)?],
        )
        .map(|n| n > 0)
    }

    /// The `jti` goes in with ON CONFLICT: of two processes given one JWE, the second waits
    /// for the first to commit and then finds it.
    fn add_token(&self, token: &TokenRecord, jti: &JtiRecord) -> StoreResult<()> {
        let fresh = self.exec(
            "INSERT INTO seen_jtis (jti_hash, expires_at, account_id, token_id, idempotency_key)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &&jti.jti_hash[..],
                &jti.expires_at,
                &jti.account_id,
                &jti.token_id,
                &jti.idempotency_key.as_ref().map(|k| &k[..]),
            ],
        )?;
        if fresh == 0 {
            return Err(StoreError::Duplicate);
        }
        let card = token.card.as_ref();
        self.exec(
            &format!(
                "INSERT INTO tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ),
            &[
                &token.id,
                &token.account_id,
                &token.token_type.as_str(),
                &card.map(|c| &c.brand),
                &card.map(|c| &c.bin),
                &card.map(|c| &c.last4),
                &card.map(|c| i64::from(c.exp_month)),
                &card.map(|c| i64::from(c.exp_year)),
                &card.map(|c| &c.fingerprint[..]),
                &token.sealed,
                &token.client_ip,
                &token.created,
                &token.expires_at,
                &token.used_at,
            ],
        )?;
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
        self.row(
            &format!(
                "SELECT {cols} FROM seen_jtis j JOIN tokens t ON t.id = j.token_id AND t.account_id = j.account_id
                 WHERE j.expires_at = $4 AND j.jti_hash = $1 AND j.account_id = $2 AND j.idempotency_key = $3"
            ),
            &[
                &&jti.jti_hash[..],
                &jti.account_id,
                &&idempotency_key[..],
                &jti.expires_at,
            ],
        )?
        .map(|r| token_from_row(&r))
        .transpose()
    }

    fn token(&self, account_id: &str, id: &str) -> StoreResult<Option<TokenRecord>> {
        self.row(
            &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = $1 AND account_id = $2"),
            &[&id, &account_id],
        )?
        .map(|r| token_from_row(&r))
        .transpose()
    }

    /// `FOR UPDATE` locks the row: a concurrent use (any process) waits, then re-reads the
    /// committed row, finds `used_at` set and gets nothing. The row as read, sealed card
    /// included, is what this use gets.
    fn use_token(&self, account_id: &str, id: &str, now: i64) -> StoreResult<Option<TokenRecord>> {
        let Some(row) = self.row(
            &format!(
                "SELECT {TOKEN_COLS} FROM tokens
                 WHERE id = $1 AND account_id = $2 AND used_at IS NULL AND expires_at > $3
                 FOR UPDATE"
            ),
            &[&id, &account_id, &now],
        )?
        else {
            return Ok(None);
        };
        let token = token_from_row(&row)?;
        let changed = self.exec(
            "UPDATE tokens SET used_at = $3, sealed = NULL
             WHERE id = $1 AND account_id = $2 AND used_at IS NULL",
            &[&id, &account_id, &now],
        )?;
        Ok((changed == 1).then_some(token))
    }

    fn purge(&self, now: i64) -> StoreResult<u64> {
        let jtis = self.exec("DELETE FROM seen_jtis WHERE expires_at <= $1", &[&now])?;
        let tokens = self.exec(
            "UPDATE tokens SET sealed = NULL WHERE used_at IS NULL AND sealed IS NOT NULL AND expires_at <= $1",
            &[&now],
        )?;
        Ok(jtis.saturating_add(tokens))
    }

    fn insert_card(&self, c: &CardRecord) -> StoreResult<()> {
        self.exec(
            &format!(
                "INSERT INTO cards ({CARD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
            ),
            &[
                &c.id,
                &c.account_id,
                &c.customer,
                &c.summary.brand,
                &c.summary.bin,
                &c.summary.last4,
                &i64::from(c.summary.exp_month),
                &i64::from(c.summary.exp_year),
                &&c.summary.fingerprint[..],
                &c.issuer.issuer,
                &c.issuer.country,
                &c.issuer.funding,
                &c.issuer.currency,
                &c.metadata,
                &c.wrapped_key,
                &c.sealed,
                &c.network_transaction_id,
                &c.created,
            ],
        )
        .map(drop)
    }

    fn card(&self, account_id: &str, id: &str) -> StoreResult<Option<CardRecord>> {
        self.row(
            &format!(
                "SELECT {CARD_COLS} FROM cards WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL"
            ),
            &[&id, &account_id],
        )?
        .map(|r| card_from_row(&r))
        .transpose()
    }

    fn cards(
        &self,
        account_id: &str,
        customer: Option<&str>,
        starting_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CardRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            &format!(
                "SELECT {CARD_COLS} FROM cards
                 WHERE account_id = $1 AND deleted_at IS NULL AND ($2::TEXT IS NULL OR customer = $2)
                   AND ($3::TEXT IS NULL OR seq < (SELECT seq FROM cards WHERE id = $3 AND account_id = $1))
                 ORDER BY seq DESC LIMIT $4"
            ),
            &[&account_id, &customer, &starting_after, &limit],
        )?
        .iter()
        .map(card_from_row)
        .collect()
    }

    fn set_network_transaction_id(
        &self,
        account_id: &str,
        id: &str,
        ntid: &str,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE cards SET network_transaction_id = $3 WHERE id = $1 AND account_id = $2",
            &[&id, &account_id, &ntid],
        )
        .map(drop)
    }

    fn delete_card(&self, account_id: &str, id: &str, now: i64) -> StoreResult<bool> {
        self.exec(
            "DELETE FROM card_cvcs WHERE card_id = $1 AND account_id = $2",
            &[&id, &account_id],
        )?;
        let n = self.exec(
            "UPDATE cards SET card_key = NULL, sealed = NULL, network_transaction_id = NULL,
                    deleted_at = $3
             WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
            &[&id, &account_id, &now],
        )?;
        Ok(n == 1)
    }

    fn put_cvc(
        &self,
        account_id: &str,
        card_id: &str,
        sealed: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        self.exec(
            "INSERT INTO card_cvcs (card_id, account_id, sealed, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (card_id) DO UPDATE
               SET account_id = EXCLUDED.account_id, sealed = EXCLUDED.sealed,
                   expires_at = EXCLUDED.expires_at",
            &[&card_id, &account_id, &sealed, &expires_at],
        )
        .map(drop)
    }

    /// `DELETE … RETURNING`: of two processes taking one CVC, the second waits for the first's
    /// delete to commit and then finds no row.
    fn take_cvc(&self, account_id: &str, card_id: &str, now: i64) -> StoreResult<Option<Vec<u8>>> {
        let row = self.row(
            "DELETE FROM card_cvcs WHERE card_id = $1 AND account_id = $2
             RETURNING sealed, expires_at",
            &[&card_id, &account_id],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let until: i64 = get(&row, 1)?;
        (until > now).then(|| get(&row, 0)).transpose()
    }

    fn cvc_until(&self, account_id: &str, card_id: &str, now: i64) -> StoreResult<Option<i64>> {
        self.row(
            "SELECT expires_at FROM card_cvcs
             WHERE card_id = $1 AND account_id = $2 AND expires_at > $3",
            &[&card_id, &account_id, &now],
        )?
        .map(|r| get(&r, 0))
        .transpose()
    }

    fn insert_charge(&self, c: &ChargeRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO charges (id, account_id, object, created) VALUES ($1, $2, $3, $4)",
            &[&c.id, &c.account_id, &c.object, &c.created],
        )
        .map(drop)
    }

    fn charge(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>> {
        self.row(
            "SELECT id, account_id, object, created FROM charges WHERE id = $1 AND account_id = $2",
            &[&id, &account_id],
        )?
        .map(|r| {
            Ok(ChargeRecord {
                id: get(&r, 0)?,
                account_id: get(&r, 1)?,
                object: get(&r, 2)?,
                created: get(&r, 3)?,
            })
        })
        .transpose()
    }

    /// The account row's lock ([`PgTx::lock_chain`]) is held from reading the tail to the
    /// commit, so the tail read here is still the tail when the row goes in.
    fn append_event(&self, e: &NewEvent) -> StoreResult<()> {
        let key = self.lock_chain(&e.account_id)?;
        let prev: Vec<u8> = match self.row(CHAIN_TAIL, &[&e.account_id])? {
            Some(r) => get(&r, 0)?,
            None => vec![0u8; 32],
        };
        let body = canonical_event(e)?;
        let hash = key.link(&prev, &body);
        self.exec(
            "INSERT INTO events (id, account_id, type, body, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &e.id,
                &e.account_id,
                &e.event_type,
                &body,
                &prev,
                &&hash[..],
            ],
        )
        .map(drop)
    }

    fn events(
        &self,
        account_id: &str,
        starting_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            &format!(
                "SELECT {EVENT_COLS} FROM events
                 WHERE account_id = $1
                   AND ($2::TEXT IS NULL OR seq < (SELECT seq FROM events WHERE id = $2 AND account_id = $1))
                 ORDER BY seq DESC LIMIT $3"
            ),
            &[&account_id, &starting_after, &limit],
        )?
        .iter()
        .map(event_from_row)
        .collect()
    }

    fn all_events(&self) -> StoreResult<Vec<EventRecord>> {
        self.rows(
            &format!("SELECT {EVENT_COLS} FROM events ORDER BY seq"),
            &[],
        )?
        .iter()
        .map(event_from_row)
        .collect()
    }

    fn audit_key(&self, account_id: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .row(
                "SELECT audit_key FROM accounts WHERE id = $1",
                &[&account_id],
            )?
            .map(|r| get::<Option<Vec<u8>>>(&r, 0))
            .transpose()?
            .flatten())
    }

    /// A PostgreSQL database has no chains from before keyed chains; accounts get their key
    /// here or at their first event, whichever comes first.
    fn key_audit_chains(&self) -> StoreResult<u64> {
        let ids: Vec<String> = self
            .rows(
                "SELECT id FROM accounts WHERE audit_key IS NULL ORDER BY seq",
                &[],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect::<StoreResult<_>>()?;
        for id in &ids {
            self.lock_chain(id)?;
        }
        Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
    }

    /// The first claim inserts the row; a competing insert from another process waits for it
    /// to commit (ON CONFLICT) and then reads the row locked, so exactly one request runs and
    /// the others get `InFlight` or the kept answer.
    fn claim_key(
        &self,
        account_id: &str,
        key_hash: &[u8; 32],
        request_hash: &[u8; 32],
        now: i64,
        lock_secs: i64,
    ) -> StoreResult<Claim> {
        let locked_until = now.saturating_add(lock_secs);
        let expires_at = now.saturating_add(24 * 3600);
        let params: Params<'_> = &[
            &account_id,
            &&key_hash[..],
            &&request_hash[..],
            &locked_until,
            &expires_at,
        ];
        // A row deleted between the insert and the read (a release) means another try.
        for _ in 0..3 {
            let fresh = self.exec(
                "INSERT INTO idempotency_keys
                   (account_id, key_hash, request_hash, status, body, locked_until, expires_at)
                 VALUES ($1, $2, $3, NULL, NULL, $4, $5) ON CONFLICT DO NOTHING",
                params,
            )?;
            if fresh == 1 {
                return Ok(Claim::Fresh);
            }
            let Some(row) = self.row(
                "SELECT request_hash, status, body, locked_until, expires_at FROM idempotency_keys
                 WHERE account_id = $1 AND key_hash = $2 FOR UPDATE",
                &[&account_id, &&key_hash[..]],
            )?
            else {
                continue;
            };
            let hash: Vec<u8> = get(&row, 0)?;
            let status: Option<i64> = get(&row, 1)?;
            let body: Option<Vec<u8>> = get(&row, 2)?;
            let row_locked_until: i64 = get(&row, 3)?;
            let row_expires_at: i64 = get(&row, 4)?;
            let expired = row_expires_at <= now;
            if !expired {
                if hash != request_hash[..] {
                    return Ok(Claim::Mismatch);
                }
                if let Some(status) = status {
                    return Ok(Claim::Done {
                        status: small(status, "status")?,
                        body: body.unwrap_or_default(),
                    });
                }
                if row_locked_until > now {
                    return Ok(Claim::InFlight);
                }
            }
            // Expired, or its process died with the claim: take it over.
            self.exec(
                "UPDATE idempotency_keys
                 SET request_hash = $3, status = NULL, body = NULL, locked_until = $4, expires_at = $5
                 WHERE account_id = $1 AND key_hash = $2",
                params,
            )?;
            return Ok(Claim::Fresh);
        }
        Err(StoreError::Backend(
            "an idempotency key kept changing under its claim".into(),
        ))
    }

    fn finish_key(
        &self,
        account_id: &str,
        key_hash: &[u8; 32],
        status: u16,
        body: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE idempotency_keys SET status = $3, body = $4, expires_at = $5
             WHERE account_id = $1 AND key_hash = $2",
            &[
                &account_id,
                &&key_hash[..],
                &i64::from(status),
                &body,
                &expires_at,
            ],
        )
        .map(drop)
    }

    fn release_key(&self, account_id: &str, key_hash: &[u8; 32]) -> StoreResult<()> {
        self.exec(
            "DELETE FROM idempotency_keys WHERE account_id = $1 AND key_hash = $2",
            &[&account_id, &&key_hash[..]],
        )
        .map(drop)
    }

    /// Other processes may be serving this database, and their claims are live: none is
    /// released. A claim of a process that died lapses after its lock time instead.
    fn release_all_claims(&self) -> StoreResult<u64> {
        Ok(0)
    }

    fn purge_ledger(&self, now: i64) -> StoreResult<u64> {
        let cvcs = self.exec("DELETE FROM card_cvcs WHERE expires_at <= $1", &[&now])?;
        let keys = self.exec(
            "DELETE FROM idempotency_keys WHERE expires_at <= $1",
            &[&now],
        )?;
        Ok(cvcs.saturating_add(keys))
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
                "SELECT encode(key_hash, 'hex'), account_id, wrapped_key FROM api_keys
                 WHERE wrapped_key IS NOT NULL ORDER BY key_hash",
            ),
        ];
        let mut out = Vec::new();
        for (slot, sql) in queries {
            for r in self.rows(sql, &[])? {
                out.push(WrappedKeyRecord {
                    slot,
                    row: r.try_get(0).map_err(pg_error)?,
                    aad_id: r.try_get(1).map_err(pg_error)?,
                    blob: r.try_get(2).map_err(pg_error)?,
                });
            }
        }
        Ok(out)
    }

    fn rewrap_key(&self, slot: WrapSlot, row: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let sql = match slot {
            WrapSlot::SealingKey => {
                "UPDATE sealing_keys SET private_key = $3 WHERE kid = $1 AND private_key = $2"
            }
            WrapSlot::AccountDataKey => {
                "UPDATE accounts SET data_key = $3 WHERE id = $1 AND data_key = $2"
            }
            WrapSlot::AccountFingerprintKey => {
                "UPDATE accounts SET fingerprint_key = $3 WHERE id = $1 AND fingerprint_key = $2"
            }
            WrapSlot::AccountAuditKey => {
                "UPDATE accounts SET audit_key = $3 WHERE id = $1 AND audit_key = $2"
            }
            WrapSlot::DemoApiKey => {
                "UPDATE api_keys SET wrapped_key = $3
                 WHERE key_hash = decode($1, 'hex') AND wrapped_key = $2"
            }
        };
        Ok(self.exec(sql, &[&row, &old, &new])? == 1)
    }

    fn insert_recurring(&self, r: &RecurringRecord) -> StoreResult<()> {
        self.exec(
            &format!(
                "INSERT INTO recurring_charges ({RECURRING_COLS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ),
            &[
                &r.id,
                &r.account_id,
                &r.source,
                &r.amount,
                &r.currency,
                &r.interval,
                &r.interval_count,
                &r.start,
                &r.end_at,
                &r.count,
                &r.status,
                &r.period,
                &r.attempt,
                &r.next_run,
                &r.created,
                &r.canceled_at,
            ],
        )
        .map(drop)
    }

    /// With `lock`, `FOR UPDATE`: a run and a cancel of one schedule, on any instance, take
    /// turns on its row, which each takes before anything else (then card, then chain head).
    fn recurring(
        &self,
        account_id: &str,
        id: &str,
        lock: bool,
    ) -> StoreResult<Option<RecurringRecord>> {
        let sql = format!(
            "SELECT {RECURRING_COLS} FROM recurring_charges WHERE id = $1 AND account_id = $2{}",
            if lock { " FOR UPDATE" } else { "" }
        );
        self.row(&sql, &[&id, &account_id])?
            .map(|r| recurring_from_row(&r))
            .transpose()
    }

    fn update_recurring(&self, r: &RecurringRecord) -> StoreResult<()> {
        self.exec(
            "UPDATE recurring_charges SET status = $3, period = $4, attempt = $5,
                    next_run = $6, canceled_at = $7
             WHERE id = $1 AND account_id = $2",
            &[
                &r.id,
                &r.account_id,
                &r.status,
                &r.period,
                &r.attempt,
                &r.next_run,
                &r.canceled_at,
            ],
        )
        .map(drop)
    }

    fn recurring_page(
        &self,
        account_id: &str,
        page: &RecurringPage,
    ) -> StoreResult<Vec<RecurringRecord>> {
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let before = page.ending_before.is_some();
        let sql = format!(
            "SELECT {RECURRING_COLS} FROM recurring_charges
             WHERE account_id = $1
               AND ($2::TEXT IS NULL OR (created, seq) <
                    (SELECT created, seq FROM recurring_charges WHERE id = $2 AND account_id = $1))
               AND ($3::TEXT IS NULL OR (created, seq) >
                    (SELECT created, seq FROM recurring_charges WHERE id = $3 AND account_id = $1))
               AND ($4::BIGINT IS NULL OR created >= $4) AND ($5::BIGINT IS NULL OR created <= $5)
             ORDER BY created {o}, seq {o} LIMIT $6",
            o = if before { "ASC" } else { "DESC" }
        );
        let mut out = self
            .rows(
                &sql,
                &[
                    &account_id,
                    &page.starting_after,
                    &page.ending_before,
                    &page.created_gte,
                    &page.created_lte,
                    &limit,
                ],
            )?
            .iter()
            .map(recurring_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if before {
            out.reverse();
        }
        Ok(out)
    }

    fn due_recurring(&self, now: i64, limit: usize) -> StoreResult<Vec<(String, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            "SELECT account_id, id FROM recurring_charges
             WHERE next_run IS NOT NULL AND next_run <= $1 ORDER BY next_run LIMIT $2",
            &[&now, &limit],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    /// `ON CONFLICT DO NOTHING` waits for a competing insert of the same key to commit or roll
    /// back, so of two instances claiming one run, exactly one gets `true`.
    fn claim_recurring_run(&self, run: &RecurringRunRecord) -> StoreResult<bool> {
        let n = self.exec(
            "INSERT INTO recurring_runs (recurring_id, period, attempt, charge_id, status, created)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &run.recurring_id,
                &run.period,
                &run.attempt,
                &run.charge_id,
                &run.status,
                &run.created,
            ],
        )?;
        Ok(n == 1)
    }

    fn finish_recurring_run(&self, run: &RecurringRunRecord) -> StoreResult<()> {
        self.exec(
            "UPDATE recurring_runs SET charge_id = $4, status = $5
             WHERE recurring_id = $1 AND period = $2 AND attempt = $3",
            &[
                &run.recurring_id,
                &run.period,
                &run.attempt,
                &run.charge_id,
                &run.status,
            ],
        )
        .map(drop)
    }

    fn recurring_runs(&self, recurring_id: &str) -> StoreResult<Vec<RecurringRunRecord>> {
        self.rows(
            "SELECT recurring_id, period, attempt, charge_id, status, created
             FROM recurring_runs WHERE recurring_id = $1 ORDER BY period, attempt",
            &[&recurring_id],
        )?
        .iter()
        .map(|r| {
            Ok(RecurringRunRecord {
                recurring_id: get(r, 0)?,
                period: get(r, 1)?,
                attempt: get(r, 2)?,
                charge_id: get(r, 3)?,
                status: get(r, 4)?,
                created: get(r, 5)?,
            })
        })
        .collect()
    }

    fn charge_for_update(&self, account_id: &str, id: &str) -> StoreResult<Option<ChargeRecord>> {
        self.row(
            "SELECT id, account_id, object, created FROM charges
             WHERE id = $1 AND account_id = $2 FOR UPDATE",
            &[&id, &account_id],
        )?
        .map(|r| charge_from_row(&r))
        .transpose()
    }

    fn update_charge(&self, account_id: &str, id: &str, object: &str) -> StoreResult<()> {
        self.exec(
            "UPDATE charges SET object = $3 WHERE id = $1 AND account_id = $2",
            &[&id, &account_id, &object],
        )
        .map(drop)
    }

    fn charges(&self, account_id: &str, page: &Page) -> StoreResult<Vec<ChargeRecord>> {
        let sql = page_sql("charges", "id, account_id, object, created", "", page);
        let p = PageParams::new(account_id, page);
        self.rows(&sql, &p.params())?
            .iter()
            .map(charge_from_row)
            .collect()
    }

    fn insert_refund(&self, r: &RefundRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO refunds (id, account_id, charge_id, object, created)
             VALUES ($1, $2, $3, $4, $5)",
            &[&r.id, &r.account_id, &r.charge_id, &r.object, &r.created],
        )
        .map(drop)
    }

    fn refund(&self, account_id: &str, id: &str) -> StoreResult<Option<RefundRecord>> {
        self.row(
            &format!("SELECT {REFUND_COLS} FROM refunds WHERE id = $1 AND account_id = $2"),
            &[&id, &account_id],
        )?
        .map(|r| refund_from_row(&r))
        .transpose()
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
            "AND ($7::TEXT IS NULL OR charge_id = $7)",
            page,
        );
        let p = PageParams::new(account_id, page);
        let mut params = p.params();
        params.push(&charge_id);
        self.rows(&sql, &params)?
            .iter()
            .map(refund_from_row)
            .collect()
    }

    fn card_id_taken(&self, id: &str) -> StoreResult<bool> {
        Ok(self
            .row("SELECT 1 FROM cards WHERE id = $1", &[&id])?
            .is_some())
    }

    fn purge_jtis(&self, before: i64, limit: u32) -> StoreResult<u64> {
        self.exec(PURGE_JTIS, &[&before, &i64::from(limit)])
    }

    fn purge_tokens(&self, used_before: i64, expired_before: i64, limit: u32) -> StoreResult<u64> {
        let used = self.exec(PURGE_USED_TOKENS, &[&used_before, &i64::from(limit)])?;
        let left = u64::from(limit).saturating_sub(used);
        let expired = if left == 0 {
            0
        } else {
            let left = i64::try_from(left).unwrap_or(i64::MAX);
            self.exec(PURGE_EXPIRED_TOKENS, &[&expired_before, &left])?
        };
        Ok(used.saturating_add(expired))
    }

    fn explain_hot(&self) -> StoreResult<Vec<(&'static str, String)>> {
        // A generic plan (the one a prepared statement settles on, whatever its values), with
        // sequential scans priced out: on a near-empty table the planner would rightly scan,
        // so a scan left in the plan means that no index can serve the statement.
        self.tx
            .borrow_mut()
            .batch_execute(
                "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off",
            )
            .map_err(pg_error)?;
        let mut out = Vec::new();
        for (i, (name, sql, args)) in HOT_STATEMENTS.iter().enumerate() {
            let mut tx = self.tx.borrow_mut();
            tx.batch_execute(&format!("PREPARE cardseal_hot_{i} AS {sql}"))
                .map_err(pg_error)?;
            let rows = tx
                .query(&format!("EXPLAIN EXECUTE cardseal_hot_{i}({args})"), &[])
                .map_err(pg_error)?;
            tx.batch_execute(&format!("DEALLOCATE cardseal_hot_{i}"))
                .map_err(pg_error)?;
            let steps = rows
                .iter()
                .map(|r| get::<String>(r, 0))
                .collect::<StoreResult<Vec<_>>>()?;
            out.push((*name, steps.join("\n")));
        }
        Ok(out)
    }

    fn bulk_insert_tokens(&self, tokens: &[TokenRecord]) -> StoreResult<u64> {
        // A prepared insert per row, in the caller's one transaction: the bench's load rate
        // is printed beside its figures.
        let sql = format!(
            "INSERT INTO tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        for token in tokens {
            let card = token.card.as_ref();
            let fingerprint = card.map(|c| c.fingerprint.to_vec());
            self.exec(
                &sql,
                &[
                    &token.id,
                    &token.account_id,
                    &token.token_type.as_str(),
                    &card.map(|c| c.brand.as_str()),
                    &card.map(|c| c.bin.as_str()),
                    &card.map(|c| c.last4.as_str()),
                    &card.map(|c| i64::from(c.exp_month)),
                    &card.map(|c| i64::from(c.exp_year)),
                    &fingerprint,
                    &token.sealed,
                    &token.client_ip,
                    &token.created,
                    &token.expires_at,
                    &token.used_at,
                ],
            )?;
        }
        Ok(u64::try_from(tokens.len()).unwrap_or(u64::MAX))
    }
}

const RECURRING_COLS: &str = "id, account_id, source, amount, currency, interval, interval_count, start, end_at, count, status, period, attempt, next_run, created, canceled_at";

fn recurring_from_row(r: &Row) -> StoreResult<RecurringRecord> {
    Ok(RecurringRecord {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        source: get(r, 2)?,
        amount: get(r, 3)?,
        currency: get(r, 4)?,
        interval: get(r, 5)?,
        interval_count: get(r, 6)?,
        start: get(r, 7)?,
        end_at: get(r, 8)?,
        count: get(r, 9)?,
        status: get(r, 10)?,
        period: get(r, 11)?,
        attempt: get(r, 12)?,
        next_run: get(r, 13)?,
        created: get(r, 14)?,
        canceled_at: get(r, 15)?,
    })
}

fn charge_from_row(r: &Row) -> StoreResult<ChargeRecord> {
    Ok(ChargeRecord {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        object: get(r, 2)?,
        created: get(r, 3)?,
    })
}

const REFUND_COLS: &str = "id, account_id, charge_id, object, created";

fn refund_from_row(r: &Row) -> StoreResult<RefundRecord> {
    Ok(RefundRecord {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        charge_id: get(r, 2)?,
        object: get(r, 3)?,
        created: get(r, 4)?,
    })
}

/// The SQL of one [`Page`] of `table`, whose rows have `id`, `account_id`, `created` and the
/// identity `seq`: `$1` the account, `$2` `starting_after`, `$3` `ending_before`, `$4` and `$5`
/// the `created` bounds, `$6` how many rows; `filter` (`AND …`) may use `$7` on. With
/// [`PageParams`], for any list the vault keeps.
pub(crate) fn page_sql(table: &str, cols: &str, filter: &str, page: &Page) -> String {
    let order = if page.ascending() { "ASC" } else { "DESC" };
    format!(
        "SELECT {cols} FROM {table}
         WHERE account_id = $1
           AND ($2::TEXT IS NULL OR seq < (SELECT seq FROM {table} WHERE id = $2 AND account_id = $1))
           AND ($3::TEXT IS NULL OR seq > (SELECT seq FROM {table} WHERE id = $3 AND account_id = $1))
           AND ($4::BIGINT IS NULL OR created >= $4) AND ($5::BIGINT IS NULL OR created <= $5)
           {filter}
         ORDER BY seq {order} LIMIT $6"
    )
}

/// The parameters `$1` to `$6` of [`page_sql`].
pub(crate) struct PageParams<'p> {
    account_id: &'p str,
    after: Option<&'p str>,
    before: Option<&'p str>,
    gte: Option<i64>,
    lte: Option<i64>,
    fetch: i64,
}

impl<'p> PageParams<'p> {
    pub(crate) fn new(account_id: &'p str, page: &'p Page) -> Self {
        PageParams {
            account_id,
            after: page.after(),
            before: page.before(),
            gte: page.created_gte,
            lte: page.created_lte,
            fetch: i64::try_from(page.fetch()).unwrap_or(i64::MAX),
        }
    }

    /// `$1` to `$6`; push any `$7` on.
    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.account_id,
            &self.after,
            &self.before,
            &self.gte,
            &self.lte,
            &self.fetch,
        ]
    }
}

/// The account's last event. Written with `max(seq)` rather than `ORDER BY seq DESC LIMIT 1`:
/// for that form the planner's generic plan walks the whole log backwards on the primary key
/// and filters by account (seen in `tests/scale.rs` with two accounts), which for a quiet
/// account among busy ones reads every event since its last; `max` is an index-only probe of
/// `events_account`.
const CHAIN_TAIL: &str = "SELECT hash FROM events
     WHERE account_id = $1 AND seq = (SELECT max(seq) FROM events WHERE account_id = $1)";

/// Each batch walks its index from the oldest row (`ORDER BY` the indexed column). Without the
/// order, a batch on a freshly loaded table took 22 ms at the median for 128 rows
/// (`--bench scale`, 100,000 tokens): the planner scanned the heap, past the dead rows of the
/// batches before it.
///
/// Oldest expired replay records first, a batch at a time; rows another instance is deleting
/// are skipped, not waited for.
const PURGE_JTIS: &str = "DELETE FROM seen_jtis WHERE (expires_at, jti_hash) IN
     (SELECT expires_at, jti_hash FROM seen_jtis WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2
      FOR UPDATE SKIP LOCKED)";
const PURGE_USED_TOKENS: &str = "DELETE FROM tokens WHERE id IN
     (SELECT id FROM tokens WHERE used_at IS NOT NULL AND used_at <= $1 ORDER BY used_at LIMIT $2
      FOR UPDATE SKIP LOCKED)";
// An expired token can no longer be used, so a row chosen here cannot change before it goes.
const PURGE_EXPIRED_TOKENS: &str = "DELETE FROM tokens WHERE id IN
     (SELECT id FROM tokens WHERE used_at IS NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2
      FOR UPDATE SKIP LOCKED)";

/// The statements of the hot path and of the upkeep, as the methods above run them (the
/// select lists aside, which do not change which index serves them), with values to run
/// them on, for [`Tx::explain_hot`].
const HOT_STATEMENTS: &[(&str, &str, &str)] = &[
    ("token", "SELECT * FROM tokens WHERE id = $1 AND account_id = $2", "'tok_x', 'acct_x'"),
    (
        "use_token.select",
        "SELECT * FROM tokens WHERE id = $1 AND account_id = $2 AND used_at IS NULL AND expires_at > $3 FOR UPDATE",
        "'tok_x', 'acct_x', 0",
    ),
    (
        "use_token.update",
        "UPDATE tokens SET used_at = $3, sealed = NULL WHERE id = $1 AND account_id = $2 AND used_at IS NULL",
        "'tok_x', 'acct_x', 0",
    ),
    (
        "replayed_token",
        "SELECT t.* FROM seen_jtis j JOIN tokens t ON t.id = j.token_id AND t.account_id = j.account_id
         WHERE j.expires_at = $4 AND j.jti_hash = $1 AND j.account_id = $2 AND j.idempotency_key = $3",
        "'\\x00'::bytea, 'acct_x', '\\x00'::bytea, 0",
    ),
    (
        "card",
        "SELECT * FROM cards WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL",
        "'card_x', 'acct_x'",
    ),
    (
        "charge",
        "SELECT id, account_id, object, created FROM charges WHERE id = $1 AND account_id = $2",
        "'ch_x', 'acct_x'",
    ),
    ("chain_tail", CHAIN_TAIL, "'acct_x'"),
    (
        "claim_key",
        "SELECT request_hash, status, body, locked_until, expires_at FROM idempotency_keys
         WHERE account_id = $1 AND key_hash = $2",
        "'acct_x', '\\x00'::bytea",
    ),
    ("api_key", "SELECT * FROM api_keys WHERE key_hash = $1", "'\\x00'::bytea"),
    ("purge_jtis", PURGE_JTIS, "0, 100"),
    ("purge_used_tokens", PURGE_USED_TOKENS, "0, 100"),
    ("purge_expired_tokens", PURGE_EXPIRED_TOKENS, "0, 100"),
    (
        "purge_card_data",
        "UPDATE tokens SET sealed = NULL WHERE used_at IS NULL AND sealed IS NOT NULL AND expires_at <= $1",
        "0",
    ),
    ("purge_cvcs", "DELETE FROM card_cvcs WHERE expires_at <= $1", "0"),
    ("purge_idempotency_keys", "DELETE FROM idempotency_keys WHERE expires_at <= $1", "0"),
];
