//! Two vault processes on one PostgreSQL database keep every guarantee: a token is used once,
//! an idempotency key has one effect, a replayed JWE is caught by the other instance, a
//! `kill -9` of one loses no acknowledged write, and a database outage answers 503 and
//! writes nothing half-way. Runs when `CARDSEAL_TEST_DATABASE_URL` is set (`npm test` sets it).

#[path = "support/helpers.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::{self, VaultKey};
use serde_json::{Value, json};
use support::*;

const NO_LIMITS: [&str; 4] = ["--key-rate", "0", "--ip-rate", "0"];

fn skip() -> bool {
    if on_postgres() {
        return false;
    }
    eprintln!("skipped: set {TEST_DATABASE_URL} to run the multi-instance tests on PostgreSQL");
    true
}

/// Two `serve` processes on `data`'s database (and master key), with the demo account's keys.
fn two_instances(data: &str, extra: &[&str]) -> (Server, Server, String, String) {
    let mut args = vec!["--demo"];
    args.extend_from_slice(&NO_LIMITS);
    args.extend_from_slice(extra);
    let a = spawn_server(data, &args);
    let b = spawn_server(data, &args);
    let pk = key_from(&a.stdout, "publishable_key");
    let sk = key_from(&a.stdout, "secret_key");
    assert_eq!(sk, key_from(&b.stdout, "secret_key"), "one demo account");
    (a, b, pk, sk)
}

async fn vault_key(addr: SocketAddr) -> VaultKey {
    let jwks = http(
        addr,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    VaultKey::parse(std::str::from_utf8(&jwks.body).unwrap()).unwrap()
}

fn sealed(key: &VaultKey) -> String {
    jwe::seal_payload(
        key,
        &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
    )
    .unwrap()
}

async fn token(addr: SocketAddr, pk: &str, key: &VaultKey) -> String {
    let r = http(
        addr,
        post_json("/v1/tokens", pk, &json!({ "card": sealed(key) })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

fn charge(sk: &str, tok: &str, idempotency_key: Option<&str>) -> Request<Body> {
    let mut req = post_json(
        "/v1/charges",
        sk,
        &json!({"amount": 100, "currency": "eur", "source": tok}),
    );
    if let Some(k) = idempotency_key {
        req.headers_mut()
            .insert("idempotency-key", k.parse().unwrap());
    }
    req
}

fn events_verify(data: &str) {
    let out = vault_command(data)
        .args(["events", "verify", "--data-dir", data])
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_charged_64_times_at_once_on_two_instances_is_used_once() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (a, b, pk, sk) = two_instances(data, &[]);
    let key = vault_key(a.addr).await;
    for round in 0..20 {
        let tok = token(a.addr, &pk, &key).await;
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let addr = if i % 2 == 0 { a.addr } else { b.addr };
                let req = charge(&sk, &tok, None);
                tokio::spawn(async move { http(addr, req).await })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            let r = t.await.unwrap();
            if r.status == 200 {
                wins += 1;
            } else {
                r.assert_error(400, "invalid_request_error", "token_already_used");
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    assert_eq!(db_number(dir.path(), "SELECT count(*) FROM charges"), 20);
    events_verify(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_has_one_effect_across_instances() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (a, b, pk, sk) = two_instances(data, &[]);
    let key = vault_key(a.addr).await;

    // One after the other: the second instance replays the first one's answer.
    let tok = token(a.addr, &pk, &key).await;
    let first = http(a.addr, charge(&sk, &tok, Some("order-1"))).await;
    assert_eq!(first.status, 200);
    let again = http(b.addr, charge(&sk, &tok, Some("order-1"))).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());

    // At once, 16 on each: one runs; the others replay it or are told it is still running.
    let tok = token(b.addr, &pk, &key).await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            let req = charge(&sk, &tok, Some("order-2"));
            tokio::spawn(async move { http(addr, req).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 200 {
            ids.insert(r.json()["id"].as_str().unwrap().to_owned());
        } else {
            r.assert_error(409, "invalid_request_error", "idempotency_key_in_use");
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(db_number(dir.path(), "SELECT count(*) FROM charges"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwe_replayed_to_the_other_instance_is_refused() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (a, b, pk, _sk) = two_instances(data, &[]);
    let card = sealed(&vault_key(a.addr).await);
    let body = json!({ "card": card });
    let r = http(a.addr, post_json("/v1/tokens", &pk, &body)).await;
    assert_eq!(r.status, 200);
    let r = http(b.addr, post_json("/v1/tokens", &pk, &body)).await;
    r.assert_error(409, "invalid_request_error", "replayed_request");
    assert_eq!(db_number(dir.path(), "SELECT count(*) FROM tokens"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotated_by_one_instance_opens_on_the_other() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (a, b, pk, _sk) = two_instances(data, &[]);
    // Rotated by a third process, `keys rotate`: neither instance made the key.
    let out = vault_command(data)
        .args(["keys", "rotate", "--data-dir", data])
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let kid = text
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap();
    assert!(kid.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    let jwk = db_query(
        dir.path(),
        &format!("SELECT public_jwk FROM sealing_keys WHERE kid = '{kid}'"),
    )[0][0]
        .clone()
        .unwrap();
    let key = VaultKey::parse(&jwk).unwrap();
    for addr in [a.addr, b.addr] {
        let r = http(
            addr,
            post_json("/v1/tokens", &pk, &json!({ "card": sealed(&key) })),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_instance_loses_no_acknowledged_write() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (mut a, b, pk, sk) = two_instances(data, &[]);
    let key = vault_key(b.addr).await;
    let (a_addr, b_addr) = (a.addr, b.addr);
    // Tokens made beforehand, then 200 charges spread over both instances; `a` dies when a
    // quarter of them has been answered.
    let mut tokens = Vec::new();
    for _ in 0..200 {
        tokens.push(token(b_addr, &pk, &key).await);
    }
    let answered = Arc::new(AtomicUsize::new(0));
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, tok)| {
            let addr = if i % 2 == 0 { a_addr } else { b_addr };
            let req = charge(&sk, tok, Some(&format!("load-{i}")));
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let reply = try_http(addr, req).await;
                answered.fetch_add(1, Ordering::SeqCst);
                reply
            })
        })
        .collect();
    let killer = {
        let answered = Arc::clone(&answered);
        tokio::spawn(async move {
            while answered.load(Ordering::SeqCst) < 50 {
                tokio::task::yield_now().await;
            }
            killed_tx.send(true).unwrap();
        })
    };
    let mut killed = killed_rx;
    killed.wait_for(|k| *k).await.unwrap();
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    killer.await.unwrap();
    let mut acknowledged = Vec::new();
    for t in tasks {
        if let Some((200, body)) = t.await.unwrap() {
            acknowledged.push(body);
        }
    }
    assert!(acknowledged.len() >= 50, "{}", acknowledged.len());
    // Every acknowledged charge is there, read through the surviving instance, which keeps
    // serving new work too.
    for c in &acknowledged {
        let id = c["id"].as_str().unwrap();
        let r = http(
            b_addr,
            Request::get(format!("/v1/charges/{id}"))
                .header("authorization", format!("Bearer {sk}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "acknowledged {id} is gone");
        assert_eq!(&r.json(), c);
    }
    let tok = token(b_addr, &pk, &key).await;
    assert_eq!(http(b_addr, charge(&sk, &tok, None)).await.status, 200);
    // Nothing half-written: every used token has its charge.
    assert_eq!(
        db_number(
            dir.path(),
            "SELECT count(*) FROM tokens WHERE used_at IS NOT NULL"
        ),
        db_number(dir.path(), "SELECT count(*) FROM charges")
    );
    drop(b);
    events_verify(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_answers_503_and_loses_nothing() {
    if skip() {
        return;
    }
    // A cluster of its own, to stop and start under the load.
    let cluster = tempfile::tempdir().unwrap();
    let url = pg(&["start", cluster.path().to_str().unwrap()]);
    let _stop = StopCluster(cluster.path().to_owned());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut args = vec!["--demo", "--database-url", url.as_str()];
    args.extend_from_slice(&NO_LIMITS);
    let server = spawn_server(data, &args);
    let (pk, sk) = (
        key_from(&server.stdout, "publishable_key"),
        key_from(&server.stdout, "secret_key"),
    );
    let addr = server.addr;
    let key = vault_key(addr).await;

    let answered = Arc::new(AtomicUsize::new(0));
    let load = |n: usize| {
        (0..n)
            .map(|_| {
                let body = json!({ "card": sealed(&key) });
                let req = post_json("/v1/tokens", &pk, &body);
                let answered = Arc::clone(&answered);
                tokio::spawn(async move {
                    let r = http(addr, req).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect::<Vec<_>>()
    };
    let before = load(200);
    while answered.load(Ordering::SeqCst) < 40 {
        tokio::task::yield_now().await;
    }
    let stopped_at = {
        let cluster = cluster.path().to_owned();
        tokio::task::spawn_blocking(move || pg(&["stop", cluster.to_str().unwrap()]))
            .await
            .unwrap();
        answered.load(Ordering::SeqCst)
    };
    let during = load(50);
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for t in before.into_iter().chain(during) {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => acknowledged.push(r.json()["id"].as_str().unwrap().to_owned()),
            503 => {
                r.assert_error(503, "api_error", "service_unavailable");
                unavailable += 1;
            }
            s => panic!("{s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(stopped_at >= 40);
    assert!(unavailable >= 50, "{unavailable} answers of 503");

    pg(&["start", cluster.path().to_str().unwrap()]);
    // Serving again at once, and every acknowledged token is there.
    let tok = token(addr, &pk, &key).await;
    assert_eq!(http(addr, charge(&sk, &tok, None)).await.status, 200);
    for id in &acknowledged {
        let r = http(
            addr,
            Request::get(format!("/v1/tokens/{id}"))
                .header("authorization", format!("Bearer {sk}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "acknowledged {id} is gone");
    }
    // Nothing half-written: every token has its `token.created` event and no more.
    let counts = db_query_url(
        &url,
        "SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM events WHERE type = 'token.created')",
    );
    assert_eq!(counts[0][0], counts[0][1]);
    drop(server);
    let out = std::process::Command::new(BIN)
        .args([
            "events",
            "verify",
            "--data-dir",
            data,
            "--database-url",
            &url,
        ])
        .env_remove("CARDSEAL_MASTER_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `scripts/pg.sh ARGS…`; returns what it printed.
fn pg(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Stops the test's own cluster however the test ends.
struct StopCluster(std::path::PathBuf);

impl Drop for StopCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh"))
            .args(["stop", self.0.to_str().unwrap()])
            .output();
    }
}

fn db_query_url(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let sql = sql.to_owned();
    with_pg(url, move |c| {
        c.simple_query(&sql)
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// Like `http`, but a connection cut by a killed server is `None` instead of a panic.
async fn try_http(addr: SocketAddr, req: Request<Body>) -> Option<(u16, Value)> {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert("host", addr.to_string().parse().unwrap());
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, serde_json::from_slice(&body).ok()?))
}
