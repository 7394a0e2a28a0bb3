//! Accounts and their API keys.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::crypto::{AccountKeys, MasterKey, sha256};
use crate::ids;
use crate::store::{AccountRecord, ApiKeyRecord, KeyKind, Store, StoreError};

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

/// Why an account could not be made.
#[derive(Debug)]
pub enum AccountError {
    /// An allowed origin is not `scheme://host[:port|:*]` or `*`.
    BadOrigin(String),
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
        });
    }
    store
        .add_account(
            AccountRecord {
                id: id.clone(),
                name: name.to_owned(),
                allowed_origins: origins,
                wrapped_data_key: wrapped.data_key,
                wrapped_fingerprint_key: wrapped.fingerprint_key,
                demo,
                created: now,
            },
            records,
        )
        .await?;
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
    if let Some((account, keys)) = store.demo_account().await? {
        let reveal = |kind: KeyKind| -> Result<String, AccountError> {
            let k = keys
                .iter()
                .find(|k| k.kind == kind)
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
        Err(AccountError::Internal(_)) if store.demo_account().await?.is_some() => {
            Box::pin(demo_account(store, master, now)).await
        }
        other => other,
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
