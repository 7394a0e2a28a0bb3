//! `cardseal-vault events verify` on a real data directory: intact, then with an edited row.

#[path = "support/helpers.rs"]
mod support;

use serde_json::json;
use support::*;

fn verify(dir: &std::path::Path) -> std::process::Output {
    vault_command(dir)
        .args(["events", "verify", "--data-dir"])
        .arg(dir)
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap()
}

#[tokio::test]
async fn events_verify_names_the_first_edited_event() {
    let v = TestVault::new().await;
    for _ in 0..3 {
        let r = v
            .create_token(
                &v.account.publishable_key,
                &json!({ "card": v.seal_card("4242424242424242", "123") }),
            )
            .await;
        let tok = r.json()["id"].as_str().unwrap().to_owned();
        let r = v
            .call(post_json(
                "/v1/charges",
                &v.account.secret_key,
                &json!({"amount": 100, "currency": "eur", "source": tok}),
            ))
            .await;
        assert_eq!(r.status, 200);
    }
    let out = verify(v.dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 9 events"));

    let row = db_query(
        v.dir.path(),
        "SELECT id, seq FROM events WHERE type = 'charge.succeeded' ORDER BY seq LIMIT 1 OFFSET 1",
    );
    let (id, seq) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    db_query(
        v.dir.path(),
        &format!(
            "UPDATE events SET body = replace(body, '\"amount\":100', '\"amount\":1') WHERE id = '{id}'"
        ),
    );
    let out = verify(v.dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&id) && err.contains(&format!("seq {seq}")),
        "{err}"
    );

    // Deleting a row is caught too.
    db_query(v.dir.path(), "DELETE FROM events WHERE seq = 2");
    let out = verify(v.dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seq 3"));
}

fn events_cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    vault_command(dir)
        .arg("events")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap()
}

/// A consistent copy of the vault's data directory (database and master key), as an attacker
/// holding the files, or an operator verifying a backup, would have it.
fn copy_of(v: &TestVault) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(v.dir.path().join("cardseal-vault.sqlite3")).unwrap();
    let target = copy.path().join("cardseal-vault.sqlite3");
    db.execute("VACUUM INTO ?1", [target.to_str().unwrap()])
        .unwrap();
    std::fs::copy(
        v.dir.path().join("master.key"),
        copy.path().join("master.key"),
    )
    .unwrap();
    copy
}

fn plain_sha256(prev: &[u8], body: &str) -> Vec<u8> {
    let mut buf = prev.to_vec();
    buf.extend_from_slice(body.as_bytes());
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &buf)
        .as_ref()
        .to_vec()
}

/// What an attacker without the master key can do, and what the vault accepted before its
/// chains were keyed: re-link the account's events from `from_seq` on with plain SHA-256.
fn relink_plain(db: &rusqlite::Connection, account: &str, from_seq: i64) {
    let rows: Vec<(i64, String)> = db
        .prepare("SELECT seq, body FROM events WHERE account_id = ?1 AND seq >= ?2 ORDER BY seq")
        .unwrap()
        .query_map(rusqlite::params![account, from_seq], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev: Vec<u8> = db
        .query_row(
            "SELECT hash FROM events WHERE account_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1",
            rusqlite::params![account, from_seq],
            |r| r.get(0),
        )
        .unwrap_or_else(|_| vec![0u8; 32]);
    for (seq, body) in rows {
        let hash = plain_sha256(&prev, &body);
        db.execute(
            "UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_copy_of_the_data_cannot_be_rewritten_or_truncated_unnoticed() {
    if on_postgres() {
        return sqlite_only("copies of the database file");
    }
    let v = TestVault::new().await;
    for account in [&v.account, &v.other, &v.account] {
        for _ in 0..2 {
            let r = v
                .create_token(
                    &account.publishable_key,
                    &json!({ "card": v.seal_card("4242424242424242", "123") }),
                )
                .await;
            let tok = r.json()["id"].as_str().unwrap().to_owned();
            let r = v
                .call(post_json(
                    "/v1/charges",
                    &account.secret_key,
                    &json!({"amount": 100, "currency": "eur", "source": tok}),
                ))
                .await;
            assert_eq!(r.status, 200);
        }
    }
    let acct = v.account.account.clone();

    // Untouched: both checks pass.
    let clean = copy_of(&v);
    let out = events_cli(clean.path(), &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 18 events"));
    let out = events_cli(clean.path(), &["checkpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checkpoint_text = String::from_utf8(out.stdout).unwrap();
    let heads: Vec<serde_json::Value> = checkpoint_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(heads.len(), 2, "{checkpoint_text}");
    let keep = tempfile::tempdir().unwrap();
    let checkpoint = keep.path().join("checkpoint.jsonl");
    std::fs::write(&checkpoint, &checkpoint_text).unwrap();
    let cp = checkpoint.to_str().unwrap();
    let out = events_cli(clean.path(), &["verify", "--checkpoint", cp]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 checkpointed heads"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // (a) A charge amount edited and the chain re-linked with plain SHA-256 from there on.
    let edited = copy_of(&v);
    let db = rusqlite::Connection::open(edited.path().join("cardseal-vault.sqlite3")).unwrap();
    let (id, seq): (String, i64) = db
        .query_row(
            "SELECT id, seq FROM events WHERE account_id = ?1 AND type = 'charge.succeeded' ORDER BY seq LIMIT 1 OFFSET 1",
            [&acct],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let n = db
        .execute(
            "UPDATE events SET body = replace(body, '\"amount\":100', '\"amount\":1') WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(n, 1);
    relink_plain(&db, &acct, seq);
    let out = events_cli(edited.path(), &["verify"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&id) && err.contains(&format!("seq {seq}")),
        "{err}"
    );
    // The whole account chain re-linked with plain SHA-256, as the vault once wrote it: no
    // better.
    relink_plain(&db, &acct, 0);
    let out = events_cli(edited.path(), &["verify"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("keyed hash"), "{}", stderr(&out));

    // (b) The account's last three events deleted: the rest is a valid chain, but it no longer
    // reaches the checkpointed head.
    let truncated = copy_of(&v);
    let db = rusqlite::Connection::open(truncated.path().join("cardseal-vault.sqlite3")).unwrap();
    let n = db
        .execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE account_id = ?1 ORDER BY seq DESC LIMIT 3)",
            [&acct],
        )
        .unwrap();
    assert_eq!(n, 3);
    let out = events_cli(truncated.path(), &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = events_cli(truncated.path(), &["verify", "--checkpoint", cp]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&acct) && err.contains("no longer reaches"),
        "{err}"
    );

    // A checkpoint whose sequence was moved back to the truncated chain's new head is refused,
    // on the truncated copy and on the untouched one.
    let new_head: (i64, String, Vec<u8>) = db
        .query_row(
            "SELECT seq, id, hash FROM events WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1",
            [&acct],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let forged: String = heads
        .iter()
        .map(|h| {
            let mut h = h.clone();
            if h["account"] == acct.as_str() {
                h["seq"] = json!(new_head.0);
                h["event"] = json!(new_head.1);
                h["hash"] = json!(hex::encode(&new_head.2));
            }
            format!("{h}\n")
        })
        .collect();
    let forged_path = keep.path().join("forged.jsonl");
    std::fs::write(&forged_path, forged).unwrap();
    for dir in [truncated.path(), clean.path()] {
        let out = events_cli(
            dir,
            &["verify", "--checkpoint", forged_path.to_str().unwrap()],
        );
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("invalid signature"),
            "{}",
            stderr(&out)
        );
    }
    // Only the sequence changed: refused as well.
    let only_seq = checkpoint_text.replacen(
        &format!("\"seq\":{}", heads[0]["seq"]),
        &format!("\"seq\":{}", heads[0]["seq"].as_i64().unwrap() - 1),
        1,
    );
    assert_ne!(only_seq, checkpoint_text);
    std::fs::write(&forged_path, only_seq).unwrap();
    let out = events_cli(
        clean.path(),
        &["verify", "--checkpoint", forged_path.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid signature"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_database_from_before_keyed_chains_is_keyed_at_the_next_start() {
    if on_postgres() {
        return sqlite_only("SQLite databases from before keyed chains");
    }
    use std::sync::Arc;

    use cardseal_vault::clock::ManualClock;
    use cardseal_vault::crypto::MasterKey;
    use cardseal_vault::store::sqlite::SqliteStore;

    let v = TestVault::new().await;
    for account in [&v.account, &v.other] {
        let r = v
            .create_token(
                &account.publishable_key,
                &json!({ "card": v.seal_card("4242424242424242", "123") }),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    // The database as a vault before migration 4 left it: plain SHA-256 chains, no audit keys.
    let old = copy_of(&v);
    let db = rusqlite::Connection::open(old.path().join("cardseal-vault.sqlite3")).unwrap();
    for account in [&v.account.account, &v.other.account] {
        relink_plain(&db, account, 0);
    }
    // Migration 5's column (forward hosts) and 6's tables (recurring charges) go too: the
    // database is as version 3 left it.
    db.execute_batch(
        "DROP TABLE recurring_runs; DROP TABLE recurring_charges;
         ALTER TABLE accounts DROP COLUMN forward_hosts; ALTER TABLE accounts DROP COLUMN audit_key; PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(db);

    // The new vault migrates it; until a start keys the chains, verify says they are not.
    let out = events_cli(old.path(), &["verify"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no usable audit key"),
        "{}",
        stderr(&out)
    );

    let state = cardseal_vault::AppState::new(
        unlimited(),
        Arc::new(SqliteStore::open(old.path()).unwrap()),
        MasterKey::load(None, old.path()).unwrap(),
        Arc::new(ManualClock::new(unix_now())),
    )
    .await
    .unwrap();
    assert_eq!(
        cardseal_vault::events::verify(state.store(), state.master())
            .await
            .unwrap(),
        Ok(2)
    );
    drop(state);
    let out = events_cli(old.path(), &["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
