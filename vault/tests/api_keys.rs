//! Rolling and revoking API keys, and changing allowed origins, with the CLI against the data
//! directory of a running vault: the vault follows within a second, without a restart.

#[path = "support/helpers.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use cardseal_vault::accounts;
use cardseal_vault::store::KeyKind;
use serde_json::Value;
use support::{Reply, TestVault, http, key_from, spawn_server, vault_command};

/// Runs `cardseal-vault ARGS… --data-dir DATA`, feeding it `stdin`.
fn cli_with_input(data: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = vault_command(data)
        .args(args)
        .args(["--data-dir", data])
        .env_remove("CARDSEAL_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed; returns its stdout.
fn cli(data: &str, args: &[&str]) -> String {
    let out = cli_with_input(data, args, "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_owned()).collect()
}

/// A request any secret key may make: 404 for an unknown token when the key works.
async fn with_sk(addr: SocketAddr, key: &str) -> Reply {
    http(
        addr,
        Request::get("/v1/tokens/tok_0000000000000000000000")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn works(r: &Reply) -> bool {
    r.status == 404 && r.code() == "resource_missing"
}

fn refused(r: &Reply) -> bool {
    r.status == 401 && r.code() == "invalid_api_key"
}

/// Polls `check` until it holds; gives up after 5 s. Returns how long it took.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            let took = start.elapsed();
            eprintln!("{what}: after {} ms", took.as_millis());
            return took;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: still not so after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rolled_without_grace_stops_on_the_running_vault() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = spawn_server(data, &["--demo"]);
    let account = key_from(&server.stdout, "account");
    let old = key_from(&server.stdout, "secret_key");
    assert!(works(&with_sk(server.addr, &old).await));

    let out = cli(
        data,
        &[
            "accounts",
            "keys",
            "roll",
            "--account",
            &account,
            "--kind",
            "sk",
            "--grace",
            "0",
            "--json",
        ],
    );
    let rolled: Value = serde_json::from_str(&out).unwrap();
    let new = rolled["key"].as_str().unwrap().to_owned();
    assert!(new.starts_with("sk_test_") && new != old, "{rolled}");
    assert_eq!(rolled["account"], account.as_str());
    assert_eq!(rolled["kind"], "secret");
    assert_eq!(rolled["old_keys"], 1);

    eventually("the old key is refused", || async {
        refused(&with_sk(server.addr, &old).await)
    })
    .await;
    assert!(works(&with_sk(server.addr, &new).await));
    drop(server);

    // The demo account shows its new key on the next start.
    let again = spawn_server(data, &["--demo"]);
    assert_eq!(key_from(&again.stdout, "secret_key"), new);
    assert!(works(&with_sk(again.addr, &new).await));
    assert!(refused(&with_sk(again.addr, &old).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_key_works_through_its_grace_and_revoke_stops_keys_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = spawn_server(data, &["--demo"]);
    let account = key_from(&server.stdout, "account");
    let old = key_from(&server.stdout, "secret_key");
    assert!(works(&with_sk(server.addr, &old).await));

    let out = lines(&cli(
        data,
        &[
            "accounts",
            "keys",
            "roll",
            "--account",
            &account,
            "--kind",
            "sk",
            "--grace",
            "1h",
        ],
    ));
    let new = key_from(&out, "secret_key");
    assert!(
        out.iter().any(|l| l.starts_with("old keys         1 ")),
        "{out:?}"
    );
    // Well past the time the vault takes to notice a change, both keys work.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(works(&with_sk(server.addr, &old).await));
    assert!(works(&with_sk(server.addr, &new).await));

    // Revoked by argument, and from stdin (kept out of the process list).
    cli(data, &["accounts", "keys", "revoke", &old]);
    eventually("the revoked old key is refused", || async {
        refused(&with_sk(server.addr, &old).await)
    })
    .await;
    let out = cli_with_input(
        data,
        &["accounts", "keys", "revoke", "-"],
        &format!("{new}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the revoked new key is refused", || async {
        refused(&with_sk(server.addr, &new).await)
    })
    .await;

    // An unknown key is an error that does not repeat the key.
    let bogus = "sk_test_0123456789abcdefghijklmnop";
    let out = cli_with_input(data, &["accounts", "keys", "revoke", bogus], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such API key") && !err.contains(bogus),
        "{err}"
    );

    // Other kinds roll too, a restricted key with its scopes.
    let out: Value = serde_json::from_str(&cli(
        data,
        &[
            "accounts",
            "keys",
            "roll",
            "--account",
            &account,
            "--kind",
            "rk",
            "--scope",
            "detokenize",
            "cards_read",
            "--json",
        ],
    ))
    .unwrap();
    assert!(out["key"].as_str().unwrap().starts_with("rk_test_"));
    assert_eq!(
        out["scopes"],
        serde_json::json!(["detokenize", "cards_read"])
    );
    // Scopes belong to restricted keys only.
    let out = cli_with_input(
        data,
        &[
            "accounts",
            "keys",
            "roll",
            "--account",
            &account,
            "--kind",
            "pk",
            "--scope",
            "x",
        ],
        "",
    );
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_changes_reach_the_running_vault() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = spawn_server(data, &["--demo"]);
    let account = key_from(&server.stdout, "account");
    let pk = key_from(&server.stdout, "publishable_key");
    let keys_from = |origin: &'static str| {
        let pk = pk.clone();
        async move {
            http(
                server.addr,
                Request::get("/v1/encryption_keys")
                    .header("authorization", format!("Bearer {pk}"))
                    .header("origin", origin)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(keys_from("http://localhost:5173").await.status, 200);
    keys_from("https://shop.example").await.assert_error(
        403,
        "permission_error",
        "origin_not_allowed",
    );

    let out = cli(
        data,
        &[
            "accounts",
            "update",
            "--account",
            &account,
            "--allowed-origin",
            "https://Shop.example/",
        ],
    );
    assert!(out.contains("https://shop.example"), "{out}");
    eventually("the new origin is allowed", || async {
        let r = keys_from("https://shop.example").await;
        r.status == 200 && r.header("access-control-allow-origin") == Some("https://shop.example")
    })
    .await;
    keys_from("http://localhost:5173").await.assert_error(
        403,
        "permission_error",
        "origin_not_allowed",
    );

    // An unknown account or a malformed origin is refused.
    for args in [
        [
            "--account",
            "acct_nope",
            "--allowed-origin",
            "https://a.example",
        ],
        [
            "--account",
            account.as_str(),
            "--allowed-origin",
            "shop.example",
        ],
    ] {
        let out = cli_with_input(data, &[&["accounts", "update"][..], &args[..]].concat(), "");
        assert!(!out.status.success(), "{args:?}");
    }
}

#[tokio::test]
async fn a_grace_period_ends_on_time_even_for_a_cached_key() {
    let v = TestVault::new().await;
    let sk = v.account.secret_key.clone();
    let get = || v.get("/v1/tokens/tok_0000000000000000000000", &sk);
    assert!(works(&get().await));
    let rolled = accounts::roll_key(
        v.state.store(),
        v.state.master(),
        &v.account.account,
        KeyKind::Secret,
        &[],
        60,
        v.now(),
    )
    .await
    .unwrap();
    assert_eq!(rolled.old_keys, 1);
    assert!(works(&get().await));
    // Past the cache's lifetime the vault has re-read the key and learnt its expiry.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(works(&get().await));
    v.clock.advance(59);
    assert!(works(&get().await));
    // The cached principal knows its expiry: no wait for the cache to lapse.
    v.clock.advance(1);
    assert!(refused(&get().await));
    assert!(works(
        &v.get("/v1/tokens/tok_0000000000000000000000", &rolled.key)
            .await
    ));
    // The other account's keys are untouched.
    assert!(works(
        &v.get("/v1/tokens/tok_0000000000000000000000", &v.other.secret_key)
            .await
    ));
}
