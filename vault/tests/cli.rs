//! The binary's commands: `--demo`, `keys rotate` under a running server, storage errors.

#[path = "support/helpers.rs"]
mod support;

use std::process::Command;

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::{self, VaultKey};
use serde_json::{Value, json};
use support::{
    BIN, card_payload, db_query, http, key_from, post_json, spawn_server, unix_now, vault_command,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keys_survive_restarts_and_work_from_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let first = spawn_server(data, &["--demo"]);
    let pk = key_from(&first.stdout, "publishable_key");
    let sk = key_from(&first.stdout, "secret_key");
    assert!(pk.starts_with("pk_test_") && sk.starts_with("sk_test_"));
    drop(first);

    let second = spawn_server(data, &["--demo"]);
    assert_eq!(key_from(&second.stdout, "publishable_key"), pk);
    assert_eq!(key_from(&second.stdout, "secret_key"), sk);
    let jwks = http(
        second.addr,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let key = VaultKey::parse(std::str::from_utf8(&jwks.body).unwrap()).unwrap();
    let sealed = jwe::seal_payload(
        &key,
        &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
    )
    .unwrap();
    let mut req = post_json("/v1/tokens", &pk, &json!({ "card": sealed }));
    req.headers_mut()
        .insert("origin", "http://localhost:5173".parse().unwrap());
    let r = http(second.addr, req).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_reaches_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = spawn_server(data, &["--demo"]);
    let pk = key_from(&server.stdout, "publishable_key");
    let jwks = || async {
        http(
            server.addr,
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .json()
    };
    let before = jwks().await;
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);

    let out = vault_command(data)
        .args(["keys", "rotate", "--data-dir", data])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let kid = text
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned();

    // A card sealed with the new key (its public half read from the database, as a client
    // with fresh keys would have it) makes the server load the key at once.
    assert!(kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    let jwk = db_query(
        dir.path(),
        &format!("SELECT public_jwk FROM sealing_keys WHERE kid = '{kid}'"),
    )[0][0]
        .clone()
        .unwrap();
    let key = VaultKey::parse(&jwk).unwrap();
    let sealed = jwe::seal_payload(
        &key,
        &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
    )
    .unwrap();
    let r = http(
        server.addr,
        post_json("/v1/tokens", &pk, &json!({ "card": sealed })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let after = jwks().await;
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[1], kid, "the new key is the active one, listed last");
    // The old key still works within the grace period.
    let old = VaultKey::parse(&before.to_string()).unwrap();
    let sealed = jwe::seal_payload(
        &old,
        &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
    )
    .unwrap();
    let r = http(
        server.addr,
        post_json("/v1/tokens", &pk, &json!({ "card": sealed })),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[test]
fn storage_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let run = |args: &[&str], master: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_remove("CARDSEAL_MASTER_KEY");
        if let Some(m) = master {
            cmd.env("CARDSEAL_MASTER_KEY", m);
        }
        cmd.output().unwrap()
    };
    let out = run(
        &[
            "serve",
            "--data-dir",
            data,
            "--database-url",
            "postgres://localhost/vault",
        ],
        Some(&"11".repeat(32)),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PostgreSQL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A data directory made with one master key refuses another.
    let key_a = "11".repeat(32);
    let out = run(
        &[
            "accounts",
            "create",
            "--data-dir",
            data,
            "--name",
            "a",
            "--json",
        ],
        Some(&key_a),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(account["account"].as_str().unwrap().starts_with("acct_"));
    let out = run(&["keys", "rotate", "--data-dir", data], Some(&key_a));
    assert!(out.status.success());
    let out = run(
        &["serve", "--data-dir", data, "--listen", "127.0.0.1:0"],
        Some(&"22".repeat(32)),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key"), "{err}");
    let out = run(&["serve", "--data-dir", data], Some("not a key"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key"));
}
