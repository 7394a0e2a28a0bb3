//! The vault behind a reverse proxy, as vault/README.md documents it: nginx terminates TLS
//! for https://vault.example.com and passes requests to the vault on 127.0.0.1 without
//! setting `Host`, so the vault sees its upstream address there. The hosted fields post their
//! tokens from the vault's public origin, which `--public-url` names.

#[path = "support/helpers.rs"]
mod support;

use axum::body::Body;
use axum::http::Request;
use support::*;

fn token_post(pk: &str, origin: &str) -> Request<Body> {
    Request::post("/v1/tokens")
        .header("authorization", format!("Bearer {pk}"))
        .header("content-type", "application/json")
        .header("origin", origin)
        .header("x-forwarded-for", "198.51.100.20")
        .body(Body::from("{}"))
        .unwrap()
}

/// The second security review: `same_origin` compared `Origin` with `Host`, which behind the
/// documented nginx set-up is `127.0.0.1:PORT`, so the hosted fields' token POST was refused.
#[tokio::test]
async fn behind_the_documented_proxy_the_vaults_own_origin_is_its_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = spawn_server(
        data,
        &[
            "--demo",
            "--trust-forwarded-for",
            "--public-url",
            "https://Vault.Example.com:443/",
        ],
    );
    let pk = key_from(&server.stdout, "publishable_key");
    // `http` sends `Host: 127.0.0.1:PORT`, the upstream address, as nginx does. The demo
    // account allows only localhost origins: the public URL passes as the vault's own.
    let r = http(server.addr, token_post(&pk, "https://vault.example.com")).await;
    assert_eq!(
        r.code(),
        "parameter_missing",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://vault.example.com")
    );
    // Another origin is not the vault's, whatever the Host.
    for origin in [
        "https://evil.example",
        "http://vault.example.com",
        "https://vault.example.com:8443",
    ] {
        let r = http(server.addr, token_post(&pk, origin)).await;
        r.assert_error(403, "permission_error", "origin_not_allowed");
    }
}

#[test]
fn trusting_a_proxy_needs_the_public_url_and_it_must_be_an_origin() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        vault_command(dir.path())
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--trust-forwarded-for"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-url"));
    for bad in [
        "vault.example.com",
        "ftp://vault.example.com",
        "https://vault.example.com/path",
        "https://u@vault.example.com",
    ] {
        let out = run(&["--public-url", bad]);
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not an origin"),
            "{bad}"
        );
    }
}
