//! A master key given in `CARDSEAL_MASTER_KEY` does not stay in the running vault's
//! environment image (`/proc/PID/environ`, readable by the vault's user and by root): the
//! vault re-execs itself without it, same PID, and the key arrives over a pipe. The vault that
//! serves still opens what an earlier one stored, and commands keep their standard streams.
#![cfg(target_os = "linux")]

#[path = "support/helpers.rs"]
mod support;

use std::io::Write;
use std::process::Stdio;

use cardseal::jwe::{self, VaultKey};
use serde_json::{Value, json};
use support::{
    SPAWNED_MASTER_KEY, card_payload, http, post_json, spawn_server, unix_now, vault_command,
};

fn get(path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap()
}

/// `/proc/PID/FILE` of a process, NUL separators and all.
fn proc_file(pid: u32, file: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{file}")).unwrap()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_is_not_in_the_environment_of_the_serving_vault() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();

    // A command's standard output survives the re-exec: the JSON is read from it.
    let out = vault_command(data)
        .env("CARDSEAL_MASTER_KEY", SPAWNED_MASTER_KEY)
        .args(["accounts", "create", "--data-dir", data, "--name", "shop"])
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sk = account["secret_key"].as_str().unwrap();
    let rk = account["restricted_key"].as_str().unwrap();
    let pk = account["publishable_key"].as_str().unwrap();

    // A card saved by one vault…
    let server = spawn_server(data, &[]);
    let jwks = http(server.addr, get("/.well-known/jwks.json"))
        .await
        .json();
    let key = VaultKey::parse(&jwks.to_string()).unwrap();
    let sealed = jwe::seal_payload(
        &key,
        &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
    )
    .unwrap();
    let token = http(
        server.addr,
        post_json("/v1/tokens", sk, &json!({ "card": sealed })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let card = http(
        server.addr,
        post_json("/v1/cards", sk, &json!({ "token": token })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(server);

    // …is opened by the next, whose environment image holds no key: the process that answers
    // is the one that was started (the exec keeps its PID).
    let server = spawn_server(data, &[]);
    let pid = server.child.id();
    let environ = proc_file(pid, "environ");
    assert!(
        !contains(&environ, SPAWNED_MASTER_KEY),
        "the master key is in /proc/{pid}/environ"
    );
    assert!(
        !contains(&environ, "CARDSEAL_MASTER_KEY="),
        "CARDSEAL_MASTER_KEY is still in /proc/{pid}/environ"
    );
    // Other variables stay (the test's card-rate setting, for one).
    assert!(contains(&environ, "CARDSEAL_CARD_RATE=0"));
    assert!(!contains(&proc_file(pid, "cmdline"), SPAWNED_MASTER_KEY));
    let r = http(
        server.addr,
        post_json("/v1/detokenize", rk, &json!({ "token": card })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["number"], "4242424242424242");
    drop(server);

    // A command's standard input survives it too: the key to revoke is read from it.
    let mut child = vault_command(data)
        .env("CARDSEAL_MASTER_KEY", SPAWNED_MASTER_KEY)
        .args(["accounts", "keys", "revoke", "--data-dir", data, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{pk}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("revoked"));
}

#[test]
fn a_key_that_is_not_one_is_refused_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let bogus = "not-a-key-but-secret-ish";
    let out = vault_command(data)
        .env("CARDSEAL_MASTER_KEY", bogus)
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CARDSEAL_MASTER_KEY"), "{err}");
    assert!(!err.contains(bogus), "{err}");
    // The variable and a key file are still one source too many after the hand-over.
    let file = dir.path().join("master.key");
    std::fs::write(&file, format!("{SPAWNED_MASTER_KEY}\n")).unwrap();
    let out = vault_command(data)
        .env("CARDSEAL_MASTER_KEY", SPAWNED_MASTER_KEY)
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .arg("--master-key-file")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only one"), "{err}");
}
