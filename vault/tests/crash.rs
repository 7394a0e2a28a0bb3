//! Crash safety: `kill -9` the vault during a load of charges and card saves, restart it, and
//! check that every acknowledged charge and card is there, that every spent token has the
//! charge or card that spent it, that nothing is half-written, and that retrying every request
//! with its Idempotency-Key makes each happen exactly once.

#[path = "support/helpers.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::{self, VaultKey};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{
    card_payload, db_number, db_query, http, key_from, on_postgres, post_json, spawn_server,
    unix_now, vault_command,
};

const REQUESTS: usize = 300;

/// Request `i` of the load: a charge or a card save of `tok`, with its own Idempotency-Key.
fn request(i: usize, sk: &str, tok: &str) -> Request<Body> {
    let (path, body) = if i.is_multiple_of(2) {
        (
            "/v1/charges",
            json!({"amount": 100, "currency": "eur", "source": tok}),
        )
    } else {
        ("/v1/cards", json!({"token": tok}))
    };
    let mut req = post_json(path, sk, &body);
    req.headers_mut()
        .insert("idempotency-key", format!("load-{i}").parse().unwrap());
    req
}

/// Like `http`, but a dropped connection is `None` instead of a panic.
async fn try_http(addr: SocketAddr, req: Request<Body>) -> Option<(u16, Value)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_work_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = spawn_server(data, &["--demo", "--key-rate", "0", "--ip-rate", "0"]);
    let pk = key_from(&server.stdout, "publishable_key");
    let sk = key_from(&server.stdout, "secret_key");
    let addr = server.addr;

    let jwks = http(
        addr,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json();
    let key = VaultKey::parse(&jwks.to_string()).unwrap();
    let mut tokens = Vec::new();
    for _ in 0..REQUESTS {
        let sealed = jwe::seal_payload(
            &key,
            &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
        )
        .unwrap();
        let r = http(
            addr,
            post_json("/v1/tokens", &pk, &json!({ "card": sealed })),
        )
        .await;
        assert_eq!(r.status, 200);
        tokens.push(r.json()["id"].as_str().unwrap().to_owned());
    }

    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        let (sk, tok, counter) = (sk.clone(), tok.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let reply = try_http(addr, request(i, &sk, &tok)).await;
            if matches!(reply, Some((200, _))) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            (i, tok, reply)
        }));
        if i % 8 == 7 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if acked.load(Ordering::SeqCst) >= REQUESTS / 4 {
            break;
        }
    }
    // SIGKILL, in the middle of the load.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let ok: Vec<_> = replies
        .iter()
        .filter_map(|(_, tok, r)| match r {
            Some((200, v)) => Some((tok.clone(), v.clone())),
            _ => None,
        })
        .collect();
    assert!(!ok.is_empty());
    // Killed with requests in flight: some were sent and never answered.
    let lost = replies.iter().filter(|(_, _, r)| r.is_none()).count();
    eprintln!("{} acknowledged, {lost} cut off by the kill", ok.len());

    let server = spawn_server(data, &["--demo", "--key-rate", "0", "--ip-rate", "0"]);
    let addr = server.addr;
    for (tok, obj) in &ok {
        let id = obj["id"].as_str().unwrap();
        let path = if id.starts_with("ch_") {
            format!("/v1/charges/{id}")
        } else {
            format!("/v1/cards/{id}")
        };
        let get = |p: &str| {
            Request::get(p)
                .header("authorization", format!("Bearer {sk}"))
                .body(Body::empty())
                .unwrap()
        };
        let r = http(addr, get(&path)).await;
        assert_eq!(r.status, 200, "acknowledged {id} is gone");
        assert_eq!(&r.json(), obj);
        let t = http(addr, get(&format!("/v1/tokens/{tok}"))).await;
        assert_eq!(t.json()["used"], true);
    }

    // Every spent token has the object that spent it; nothing is half-written.
    let field = |name: &str| {
        if on_postgres() {
            format!("(e.body::jsonb -> 'data' ->> '{name}')")
        } else {
            format!("json_extract(e.body, '$.data.{name}')")
        }
    };
    let (token, used_for) = (field("token"), field("used_for"));
    let orphans = db_number(
        dir.path(),
        &format!(
            "SELECT count(*) FROM tokens t WHERE t.used_at IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM events e
                 WHERE e.type = 'token.used' AND {token} = t.id
                   AND (EXISTS (SELECT 1 FROM charges c WHERE c.id = {used_for})
                        OR EXISTS (SELECT 1 FROM cards k WHERE k.id = {used_for})))"
        ),
    );
    assert_eq!(orphans, 0, "a token was spent without its charge or card");
    let used = db_number(
        dir.path(),
        "SELECT count(*) FROM tokens WHERE used_at IS NOT NULL",
    );
    let objects = db_number(
        dir.path(),
        "SELECT (SELECT count(*) FROM charges) + (SELECT count(*) FROM cards)",
    );
    assert_eq!(used, objects);
    assert!(usize::try_from(used).unwrap() >= ok.len());
    let incomplete = db_number(
        dir.path(),
        "SELECT count(*) FROM cards WHERE card_key IS NULL OR sealed IS NULL",
    );
    assert_eq!(incomplete, 0);
    if !on_postgres() {
        let integrity = db_query(dir.path(), "PRAGMA integrity_check");
        assert_eq!(integrity, vec![vec![Some("ok".to_owned())]]);
    }

    // Every request again, with its Idempotency-Key: an answered one replays its answer, a
    // cut-off one replays what it committed or runs now. Each happens exactly once.
    // On PostgreSQL other instances may share the database, so a restart frees no claim: a
    // request cut off before it committed keeps its key in use until the claim lapses (60 s).
    let mut still_claimed = 0;
    for (i, tok, reply) in &replies {
        let r = http(addr, request(*i, &sk, tok)).await;
        if on_postgres() && reply.is_none() && r.status == 409 {
            r.assert_error(409, "invalid_request_error", "idempotency_key_in_use");
            still_claimed += 1;
            continue;
        }
        assert_eq!(
            r.status,
            200,
            "retry of {tok}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if let Some((200, first)) = reply {
            assert_eq!(&r.json(), first);
        }
    }
    let objects = db_number(
        dir.path(),
        "SELECT (SELECT count(*) FROM charges) + (SELECT count(*) FROM cards)",
    );
    // A cut-off request that still holds its claim may have committed before the kill.
    let objects = usize::try_from(objects).unwrap();
    assert!(
        objects <= replies.len() && objects + still_claimed >= replies.len(),
        "{objects} objects for {} requests, {still_claimed} still claimed",
        replies.len()
    );
    drop(server);
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
