//! The binary's commands: `--demo`, `keys rotate` under a running server, storage errors.

#[path = "support/helpers.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::{self, VaultKey};
use serde_json::{Value, json};
use support::{card_payload, http, post_json, unix_now};

const BIN: &str = env!("CARGO_BIN_EXE_cardseal-vault");

struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is killed and waited for by `Server`'s `Drop`, also on panics.
#[allow(clippy::zombie_processes)]
fn serve(data: &str, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("CARDSEAL_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the server exited: {stdout:?}"
        );
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            let addr = a.parse().unwrap();
            return Server {
                child,
                addr,
                stdout,
            };
        }
        stdout.push(line.trim().to_owned());
    }
}

fn key_from(lines: &[String], name: &str) -> String {
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix(name)
                .map(|k| k.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("{name} missing in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keys_survive_restarts_and_work_from_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let first = serve(data, &["--demo"]);
    let pk = key_from(&first.stdout, "publishable_key");
    let sk = key_from(&first.stdout, "secret_key");
    assert!(pk.starts_with("pk_test_") && sk.starts_with("sk_test_"));
    drop(first);

    let second = serve(data, &["--demo"]);
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
    let server = serve(data, &["--demo"]);
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

    let out = Command::new(BIN)
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
    let conn = rusqlite::Connection::open(dir.path().join("cardseal-vault.sqlite3")).unwrap();
    let jwk: String = conn
        .query_row(
            "SELECT public_jwk FROM sealing_keys WHERE kid = ?1",
            [&kid],
            |r| r.get(0),
        )
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
        None,
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
