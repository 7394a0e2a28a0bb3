//! `cardseal-vault events verify` on a real data directory: intact, then with an edited row.

#[path = "support/helpers.rs"]
mod support;

use std::process::Command;

use serde_json::json;
use support::*;

fn verify(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cardseal-vault"))
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

    let db = rusqlite::Connection::open(v.dir.path().join("cardseal-vault.sqlite3")).unwrap();
    let (id, seq): (String, i64) = db
        .query_row(
            "SELECT id, seq FROM events WHERE type = 'charge.succeeded' ORDER BY seq LIMIT 1 OFFSET 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    db.execute(
        "UPDATE events SET body = replace(body, '\"amount\":100', '\"amount\":1') WHERE id = ?1",
        [&id],
    )
    .unwrap();
    let out = verify(v.dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&id) && err.contains(&format!("seq {seq}")),
        "{err}"
    );

    // Deleting a row is caught too.
    db.execute("DELETE FROM events WHERE seq = 2", []).unwrap();
    let out = verify(v.dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seq 3"));
}
