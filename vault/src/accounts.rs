//! Accounts and their API keys.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::crypto::{AccountKeys, MasterKey, sha256};
use crate::ids;
use crate::store::{self, AccountRecord, ApiKeyRecord, KeyKind, Store, StoreError};

/// The scope that lets a restricted key see card numbers.
pub const SCOPE_DETOKENIZE: &str = "detokenize";

/// The origins the `--demo` account allows.
pub const DEMO_ORIGINS: [&str; 2] = ["http://localhost:*", "http://127.0.0.1:*"];

/// A new account and its keys, shown once (`accounts create`) or on every `--demo` start.
#[derive(Serialize)]
pub struct NewAccount {
    /// `acct_…`.
    pub account: String,
    /// `pk_test_…`.
    pub publishable_key: String,
    /// `sk_test_…`.
    pub secret_key: String,
    /// `rk_test_…` with the `detokenize` scope.
    pub restricted_key: String,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Why an account command failed.
#[derive(Debug)]
pub enum AccountError {
    /// An allowed origin is not `scheme://host[:port|:*]` or `*`.
    BadOrigin(String),
    /// No account has this id.
    NoSuchAccount(String),
    /// No stored key has this value.
    NoSuchKey,
    /// A scope is not lower-case letters and underscores, or was given for a key kind
    /// without scopes.
    BadScope(String),
    /// Storage or key wrapping failed.
    Internal(String),
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::BadOrigin(o) => write!(
                f,
                "allowed origin \"{o}\" must look like https://shop.example, http://localhost:8080, http://127.0.0.1:* or *"
            ),
            AccountError::NoSuchAccount(id) => write!(f, "no account {id}"),
            // Never the key itself: it may be a live secret typed into the wrong command.
            AccountError::NoSuchKey => f.write_str("no such API key"),
            AccountError::BadScope(s) => write!(
                f,
                "scope \"{s}\" is not allowed: only restricted keys (rk) have scopes, made of a-z and _"
            ),
            AccountError::Internal(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Internal(e.to_string())
    }
}

/// Checks and normalises an origin pattern (lower-case scheme and host, no trailing slash).
pub fn normalize_origin(pattern: &str) -> Result<String, AccountError> {
    let bad = || AccountError::BadOrigin(pattern.to_owned());
    let p = pattern.trim().trim_end_matches('/');
    if p == "*" {
        return Ok(p.to_owned());
    }
    let (scheme, rest) = p.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| {
        p == "*" || (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if !host_ok || !port_ok {
        return Err(bad());
    }
    let host = host.to_ascii_lowercase();
    Ok(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Whether `origin` (an `Origin` header) matches one of `patterns`. A `:*` port matches any
/// port, and no port.
pub fn origin_allowed(origin: &str, patterns: &[String]) -> bool {
    let origin = origin.to_ascii_lowercase();
    patterns.iter().any(|p| {
        if p == "*" || *p == origin {
            return true;
        }
        let Some(base) = p.strip_suffix(":*") else {
            return false;
        };
        match origin.strip_prefix(base) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix(':')
                .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())),
            None => false,
        }
    })
}

fn new_key(kind: KeyKind) -> Zeroizing<String> {
    Zeroizing::new(format!("{}{}", kind.prefix(), ids::base62(ids::KEY_LEN)))
}

/// Makes an account with a publishable, a secret and a restricted (`detokenize`) key.
pub async fn create_account(
    store: &dyn Store,
    master: &MasterKey,
    name: &str,
    origins: &[String],
    demo: bool,
    now: i64,
) -> Result<NewAccount, AccountError> {
    let origins = origins
        .iter()
        .map(|o| normalize_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let id = ids::new_id("acct_");
    let internal = |what: &str| AccountError::Internal(format!("cannot {what}"));
    let (_, wrapped) =
        AccountKeys::generate(master, &id).map_err(|_| internal("make the account keys"))?;
    let keys = [
        (KeyKind::Publishable, Vec::new()),
        (KeyKind::Secret, Vec::new()),
        (KeyKind::Restricted, vec![SCOPE_DETOKENIZE.to_owned()]),
    ]
    .map(|(kind, scopes)| (kind, scopes, new_key(kind)));
    let mut records = Vec::with_capacity(keys.len());
    for (kind, scopes, key) in &keys {
        let wrapped_key = if demo {
            Some(
                master
                    .wrap("demo-api-key", &id, key.as_bytes())
                    .map_err(|_| internal("wrap a key"))?,
            )
        } else {
            None
        };
        records.push(ApiKeyRecord {
            key_hash: sha256(key.as_bytes()),
            account_id: id.clone(),
            kind: *kind,
            scopes: scopes.clone(),
            wrapped_key,
            created: now,
            expires_at: None,
            revoked_at: None,
        });
    }
    let account = AccountRecord {
        id: id.clone(),
        name: name.to_owned(),
        allowed_origins: origins,
        wrapped_data_key: wrapped.data_key,
        wrapped_fingerprint_key: wrapped.fingerprint_key,
        demo,
        created: now,
    };
    store::write(store, move |tx| tx.add_account(&account, &records)).await?;
    let [(_, _, pk), (_, _, sk), (_, _, rk)] = keys;
    Ok(NewAccount {
        account: id,
        publishable_key: pk.to_string(),
        secret_key: sk.to_string(),
        restricted_key: rk.to_string(),
    })
}

/// The demo account's keys, making the account on first use.
pub async fn demo_account(
    store: &dyn Store,
    master: &MasterKey,
    now: i64,
) -> Result<NewAccount, AccountError> {
    if let Some((account, keys)) = store::read(store, |tx| tx.demo_account()).await? {
        let reveal = |kind: KeyKind| -> Result<String, AccountError> {
            // The newest usable one: after `accounts keys roll` the old key is on its way out.
            let k = keys
                .iter()
                .rev()
                .find(|k| k.kind == kind && k.wrapped_key.is_some() && k.usable_at(now))
                .and_then(|k| k.wrapped_key.as_deref())
                .ok_or_else(|| AccountError::Internal("the demo account lacks a key".into()))?;
            let bytes = master
                .unwrap_key("demo-api-key", &account.id, k)
                .map_err(|_| {
                    AccountError::Internal(
                        "cannot unwrap the demo keys: is this the right master key?".into(),
                    )
                })?;
            String::from_utf8(bytes.to_vec())
                .map_err(|_| AccountError::Internal("a demo key is corrupt".into()))
        };
        return Ok(NewAccount {
            account: account.id.clone(),
            publishable_key: reveal(KeyKind::Publishable)?,
            secret_key: reveal(KeyKind::Secret)?,
            restricted_key: reveal(KeyKind::Restricted)?,
        });
    }
    let origins: Vec<String> = DEMO_ORIGINS.iter().map(|s| (*s).to_owned()).collect();
    match create_account(store, master, "demo", &origins, true, now).await {
        // Another process made it at the same moment: use that one.
        Err(AccountError::Internal(_))
            if store::read(store, |tx| tx.demo_account()).await?.is_some() =>
        {
            Box::pin(demo_account(store, master, now)).await
        }
        other => other,
    }
}

/// A key made by [`roll_key`], shown once.
#[derive(Serialize)]
pub struct RolledKey {
    /// `acct_…`.
    pub account: String,
    /// `publishable`, `secret` or `restricted`.
    pub kind: &'static str,
    /// The new key.
    pub key: String,
    /// Its scopes (restricted keys only).
    pub scopes: Vec<String>,
    /// How many older keys of this kind now expire.
    pub old_keys: u64,
    /// When they stop working (Unix seconds).
    pub old_keys_expire_at: i64,
}

impl std::fmt::Debug for RolledKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolledKey")
            .field("account", &self.account)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Makes a new key of `kind` for the account and lets the account's other keys of that kind
/// work for `grace_secs` more (0: they stop at once). A restricted key without `scopes` gets
/// `detokenize`, as `accounts create` gives it.
pub async fn roll_key(
    store: &dyn Store,
    master: &MasterKey,
    account_id: &str,
    kind: KeyKind,
    scopes: &[String],
    grace_secs: i64,
    now: i64,
) -> Result<RolledKey, AccountError> {
    let scopes = match kind {
        KeyKind::Restricted if scopes.is_empty() => vec![SCOPE_DETOKENIZE.to_owned()],
        KeyKind::Restricted => {
            if let Some(bad) = scopes
                .iter()
                .find(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            {
                return Err(AccountError::BadScope(bad.clone()));
            }
            scopes.to_vec()
        }
        _ => match scopes.first() {
            Some(s) => return Err(AccountError::BadScope(s.clone())),
            None => Vec::new(),
        },
    };
    let id = account_id.to_owned();
    let account = store::read(store, move |tx| tx.account(&id))
        .await?
        .ok_or_else(|| AccountError::NoSuchAccount(account_id.to_owned()))?;
    let key = new_key(kind);
    // The demo account's keys are kept wrapped so that `--demo` can print them on every start;
    // a rolled one must be too, or the next start could not show it.
    let wrapped_key = if account.demo {
        Some(
            master
                .wrap("demo-api-key", &account.id, key.as_bytes())
                .map_err(|_| AccountError::Internal("cannot wrap a key".into()))?,
        )
    } else {
        None
    };
    let expire_at = now.saturating_add(grace_secs.max(0));
    let record = ApiKeyRecord {
        key_hash: sha256(key.as_bytes()),
        account_id: account.id.clone(),
        kind,
        scopes: scopes.clone(),
        wrapped_key,
        created: now,
        expires_at: None,
        revoked_at: None,
    };
    let old_keys = store::write(store, move |tx| tx.roll_api_key(&record, expire_at)).await?;
    Ok(RolledKey {
        account: account.id,
        kind: kind.as_str(),
        key: key.to_string(),
        scopes,
        old_keys,
        old_keys_expire_at: expire_at,
    })
}

/// Revokes an API key at once. Only its hash is looked up, as only the hash is stored.
pub async fn revoke_key(store: &dyn Store, key: &str, now: i64) -> Result<(), AccountError> {
    let hash = sha256(key.trim().as_bytes());
    if store::write(store, move |tx| tx.revoke_api_key(&hash, now)).await? {
        Ok(())
    } else {
        Err(AccountError::NoSuchKey)
    }
}

/// Replaces the origins an account's publishable keys may be used from; returns them
/// normalised.
pub async fn set_allowed_origins(
    store: &dyn Store,
    account_id: &str,
    origins: &[String],
) -> Result<Vec<String>, AccountError> {
    let origins = origins
        .iter()
        .map(|o| normalize_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    let (id, kept) = (account_id.to_owned(), origins.clone());
    if store::write(store, move |tx| tx.set_allowed_origins(&id, &kept)).await? {
        Ok(origins)
    } else {
        Err(AccountError::NoSuchAccount(account_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| normalize_origin(s).unwrap()).collect()
    }

    #[test]
    fn origins_match_exactly_or_by_port_wildcard() {
        let p = pats(&["http://127.0.0.1:*", "https://Shop.example/"]);
        assert!(origin_allowed("http://127.0.0.1:5173", &p));
        assert!(origin_allowed("http://127.0.0.1", &p));
        assert!(origin_allowed("https://shop.example", &p));
        assert!(!origin_allowed("https://shop.example:8443", &p));
        assert!(!origin_allowed("http://127.0.0.10:80", &p));
        assert!(!origin_allowed("http://127.0.0.1:80x", &p));
        assert!(!origin_allowed("http://127.0.0.1.evil.example", &p));
        assert!(!origin_allowed("https://127.0.0.1:5173", &p));
        assert!(!origin_allowed("null", &p));
        assert!(origin_allowed("https://any.example", &pats(&["*"])));
    }

    #[test]
    fn bad_origins_are_refused() {
        for o in [
            "localhost",
            "ftp://x",
            "http://",
            "http://a b",
            "http://x:port",
            "http://x/path",
        ] {
            assert!(normalize_origin(o).is_err(), "{o}");
        }
    }
}
