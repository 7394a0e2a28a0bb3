//! The vault at scale (issue #26): the batched purge deletes exactly what is past keeping, a
//! replay inside the `iat` window is refused after a purge, events still verify, and every hot
//! statement's plan uses its index. On SQLite, and on PostgreSQL when
//! `CARDSEAL_TEST_DATABASE_URL` is set.

#[path = "support/helpers.rs"]
mod support;

use std::collections::BTreeSet;

use cardseal_vault::purge::{self, PurgeSettings};
use cardseal_vault::store::{
    self, CardRecord, CardSummary, ChargeRecord, IssuerInfo, JtiRecord, TokenRecord, TokenType,
};
use serde_json::json;
use support::*;

/// What a synthetic token is, and so whether the purge may delete it at the test's `now`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Unused, expires after `now`: kept.
    Live,
    /// Unused, expired at or before `now`: deleted.
    Expired,
    /// Used within the keeping time: kept.
    UsedRecently,
    /// Used longer ago than the keeping time: deleted.
    UsedLongAgo,
}

const KINDS: [Kind; 4] = [
    Kind::Live,
    Kind::Expired,
    Kind::UsedRecently,
    Kind::UsedLongAgo,
];
const KEEP_USED: i64 = 3600;
const TTL: i64 = 900;

fn record(account: &str, n: u64, created: i64, ttl: i64) -> (TokenRecord, JtiRecord) {
    let id = cardseal_vault::ids::new_id("tok_");
    let token = TokenRecord {
        id: id.clone(),
        account_id: account.to_owned(),
        token_type: TokenType::Cvc,
        card: None,
        sealed: Some(vec![0xa5; 64]),
        client_ip: Some("203.0.113.7".into()),
        created,
        expires_at: created + ttl,
        used_at: None,
    };
    let jti = JtiRecord {
        jti_hash: cardseal_vault::crypto::sha256(format!("jti-{account}-{n}").as_bytes()),
        // As the API sets it: the end of the iat window of a JWE sealed at `created`.
        expires_at: created + 301,
        account_id: account.to_owned(),
        token_id: id,
        idempotency_key: None,
    };
    (token, jti)
}

fn count(v: &TestVault, sql: &str) -> u64 {
    db_query(v.dir.path(), sql)[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// A small bulk load: `n` tokens, the kinds in turn, each with its replay record, in write
/// transactions of 100, as a day of traffic would leave them.
async fn bulk_load(
    v: &TestVault,
    account: &str,
    now: i64,
    n: u64,
) -> Vec<(String, Kind, JtiRecord)> {
    let account = account.to_owned();
    let mut all = Vec::new();
    for chunk in 0..n.div_ceil(100) {
        let mut batch = Vec::new();
        for n in chunk * 100..((chunk + 1) * 100).min(n) {
            let kind = KINDS[usize::try_from(n % 4).unwrap()];
            let created = match kind {
                Kind::Live => now - 60,
                Kind::Expired => now - TTL - 60 - i64::try_from(n).unwrap(),
                Kind::UsedRecently => now - KEEP_USED + 120,
                Kind::UsedLongAgo => now - KEEP_USED - 120 - i64::try_from(n).unwrap(),
            };
            let (token, jti) = record(&account, n, created, TTL);
            all.push((token.id.clone(), kind, jti.clone()));
            batch.push((token, jti, kind));
        }
        let acct = account.clone();
        store::write(v.store.as_ref(), move |tx| {
            for (token, jti, kind) in &batch {
                tx.add_token(token, jti)?;
                if matches!(kind, Kind::UsedRecently | Kind::UsedLongAgo) {
                    let used = tx.use_token(&acct, &token.id, token.created + 30)?;
                    assert!(used.is_some());
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    }
    all
}

#[tokio::test]
async fn the_purge_deletes_exactly_what_is_past_keeping() {
    let v = TestVault::new().await;
    let account = v.account.account.clone();
    let now = v.now();
    let ttl = TTL;
    let all = bulk_load(&v, &account, now, 600).await;
    let events_before = count(&v, "SELECT count(*) FROM events");

    // Batches smaller than the work, so that the purge takes several and stops at the right row.
    let settings = PurgeSettings {
        batch_rows: 64,
        keep_used_secs: KEEP_USED,
    };
    let purged = purge::purge(v.store.as_ref(), now, &settings)
        .await
        .unwrap();
    assert_eq!(purged.tokens, 300, "{purged:?}");
    // Every replay record but the live tokens' ends 301 s after its JWE's iat.
    assert_eq!(purged.jtis, 450, "{purged:?}");
    assert!(purged.batches >= 300 / 64 + 450 / 64, "{purged:?}");

    let mut kept = BTreeSet::new();
    for (id, kind, _) in &all {
        let (acct, id2) = (account.clone(), id.clone());
        let row = store::read(v.store.as_ref(), move |tx| tx.token(&acct, &id2))
            .await
            .unwrap();
        let keep = matches!(kind, Kind::Live | Kind::UsedRecently);
        assert_eq!(row.is_some(), keep, "{kind:?} {id}");
        if keep {
            kept.insert(id.clone());
        }
    }
    assert_eq!(kept.len(), 300);
    assert_eq!(count(&v, "SELECT count(*) FROM tokens"), 300);
    // Only the live tokens' replay records are left, and they still refuse their JWEs.
    assert_eq!(count(&v, "SELECT count(*) FROM seen_jtis"), 150);
    for (id, kind, jti) in all.iter().filter(|(_, k, _)| *k == Kind::Live).take(5) {
        let (token, jti) = (
            TokenRecord {
                id: format!("{id}x"),
                ..record(&account, 0, now, ttl).0
            },
            jti.clone(),
        );
        let again = store::write(v.store.as_ref(), move |tx| tx.add_token(&token, &jti)).await;
        assert!(
            matches!(again, Err(store::StoreError::Duplicate)),
            "{kind:?}"
        );
    }
    // The audit log is untouched: every token.created and token.used stays.
    assert_eq!(count(&v, "SELECT count(*) FROM events"), events_before);

    // Nothing more is past keeping: a second purge deletes nothing.
    let again = purge::purge(v.store.as_ref(), now, &settings)
        .await
        .unwrap();
    assert_eq!((again.tokens, again.jtis), (0, 0));
}

#[tokio::test]
async fn a_replay_inside_the_iat_window_is_refused_after_a_purge() {
    let v = TestVault::new().await;
    let jwe = v.seal_card("4242424242424242", "123");
    let body = json!({ "card": jwe });
    let r = v.create_token(&v.account.publishable_key, &body).await;
    assert_eq!(r.status, 200, "{}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // The token is used, and kept for no time at all: the purge deletes its row.
    let (acct, tok, now) = (v.account.account.clone(), id.clone(), v.now());
    store::write(v.store.as_ref(), move |tx| tx.use_token(&acct, &tok, now))
        .await
        .unwrap()
        .unwrap();
    // The JWE's iat is `now`; four minutes later it would still pass the iat check.
    v.clock.advance(4 * 60);
    let settings = PurgeSettings {
        batch_rows: 1,
        keep_used_secs: 0,
    };
    let purged = purge::purge(v.store.as_ref(), v.now(), &settings)
        .await
        .unwrap();
    assert_eq!((purged.tokens, purged.jtis), (1, 0), "{purged:?}");
    let gone = v
        .get(&format!("/v1/tokens/{id}"), &v.account.secret_key)
        .await;
    assert_eq!(gone.status, 404);

    let r = v.create_token(&v.account.publishable_key, &body).await;
    r.assert_error(409, "invalid_request_error", "replayed_request");
    // At the window's edge the record may go, and the JWE is refused by its iat instead.
    v.clock.advance(60 + 2);
    let purged = purge::purge(v.store.as_ref(), v.now(), &settings)
        .await
        .unwrap();
    assert_eq!(purged.jtis, 1);
    let r = v.create_token(&v.account.publishable_key, &body).await;
    r.assert_error(400, "invalid_request_error", "request_expired");
}

#[tokio::test]
async fn events_verify_after_a_purge() {
    let v = TestVault::new().await;
    for _ in 0..3 {
        let r = v
            .create_token(
                &v.account.publishable_key,
                &json!({ "card": v.seal_card("4242424242424242", "123") }),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    v.clock.advance(16 * 60);
    let purged = purge::purge(v.store.as_ref(), v.now(), &PurgeSettings::default())
        .await
        .unwrap();
    assert_eq!((purged.tokens, purged.jtis), (3, 3), "{purged:?}");
    let out = vault_command(v.dir.path())
        .args(["events", "verify", "--data-dir"])
        .arg(v.dir.path())
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The index each hot statement must use, by backend.
fn intended(name: &str, postgres: bool) -> &'static [&'static str] {
    match (name, postgres) {
        ("token" | "use_token.select" | "use_token.update", false) => {
            &["sqlite_autoindex_tokens_1"]
        }
        ("token" | "use_token.select" | "use_token.update", true) => &["tokens_pkey"],
        ("replayed_token", false) => &["PRIMARY KEY", "sqlite_autoindex_tokens_1"],
        ("replayed_token", true) => &["seen_jtis_pkey", "tokens_pkey"],
        ("card", false) => &["sqlite_autoindex_cards_1"],
        ("card", true) => &["cards_pkey"],
        ("charge", false) => &["sqlite_autoindex_charges_1"],
        ("charge", true) => &["charges_pkey"],
        ("chain_tail", _) => &["events_account"],
        ("claim_key", false) => &["PRIMARY KEY"],
        ("claim_key", true) => &["idempotency_keys_pkey"],
        ("api_key", false) => &["sqlite_autoindex_api_keys_1"],
        ("api_key", true) => &["api_keys_pkey"],
        ("purge_jtis", false) => &["PRIMARY KEY"],
        ("purge_jtis", true) => &["seen_jtis_pkey"],
        ("purge_used_tokens", _) => &["tokens_used"],
        ("purge_expired_tokens" | "purge_card_data", _) => &["tokens_unused_expiry"],
        ("purge_cvcs", _) => &["card_cvcs_expiry"],
        ("purge_idempotency_keys", _) => &["idempotency_keys_expiry"],
        _ => panic!("no intended index for {name}"),
    }
}

#[tokio::test]
async fn every_hot_statement_uses_its_index() {
    let v = TestVault::new().await;
    let postgres = on_postgres();
    // Plans as they are on a database in use: rows of every kind, and the statistics the
    // planner keeps (PostgreSQL's autovacuum would gather them; SQLite keeps none).
    // Two accounts of one size: the chain tail of one must not walk the other's events.
    bulk_load(&v, &v.account.account, v.now(), 1_000).await;
    bulk_load(&v, &v.other.account, v.now(), 1_000).await;
    let (account, now) = (v.account.account.clone(), v.now());
    store::write(v.store.as_ref(), move |tx| {
        for i in 0..500u32 {
            tx.insert_card(&CardRecord {
                id: cardseal_vault::ids::new_id("card_"),
                account_id: account.clone(),
                customer: Some(format!("cus_{}", i % 50)),
                summary: CardSummary {
                    brand: "visa".into(),
                    bin: "424242".into(),
                    last4: "4242".into(),
                    exp_month: 12,
                    exp_year: 2030,
                    fingerprint: [7; 32],
                },
                issuer: IssuerInfo::default(),
                metadata: "{}".into(),
                wrapped_key: Some(vec![1; 60]),
                sealed: Some(vec![2; 80]),
                network_transaction_id: None,
                created: now,
            })?;
        }
        // Charges too: on a nearly empty table the planner may find the account's list index
        // (`charges_account`) as cheap as the primary key for a lookup by id, a plan that
        // reads every charge of the account once it has many.
        for _ in 0..500u32 {
            tx.insert_charge(&ChargeRecord {
                id: cardseal_vault::ids::new_id("ch_"),
                account_id: account.clone(),
                object: "{}".into(),
                created: now,
            })?;
        }
        Ok(())
    })
    .await
    .unwrap();
    if postgres {
        db_query(v.dir.path(), "ANALYZE");
    }
    let plans = store::read(v.store.as_ref(), |tx| tx.explain_hot())
        .await
        .unwrap();
    assert!(plans.len() >= 15);
    for (name, plan) in plans {
        eprintln!("{name}: {plan}");
        for index in intended(name, postgres) {
            assert!(plan.contains(index), "{name} does not use {index}:\n{plan}");
        }
        let full_scan = plan.lines().any(|l| {
            let l = l.trim_start_matches([' ', '-', '>']);
            if postgres {
                l.contains("Seq Scan")
            } else {
                l.starts_with("SCAN ") && !l.starts_with("SCAN CONSTANT ROW")
            }
        });
        assert!(!full_scan, "{name} scans a whole table:\n{plan}");
    }
}
