//! `POST /v1/forward` against a fake processor: an https server on 127.0.0.1 with a CA made
//! here (rcgen), reached as `localhost` by a vault that trusts that CA and allows private
//! addresses. The fake records every request it gets.

#[path = "support/helpers.rs"]
mod support;

#[path = "support/fake_processor.rs"]
mod fake_processor;

#[path = "support/scan.rs"]
mod scan;

use std::time::{Duration, Instant};

use axum::http::Request;
use cardseal_vault::accounts;
use cardseal_vault::config::Config;
use cardseal_vault::forward::{ForwardSettings, set_forward_hosts};
use cardseal_vault::store::KeyKind;
use fake_processor::{Fake, fake};
use scan::{after_cvc, digit_runs, isolated_digit_runs};
use serde_json::{Value, json};
use support::{Reply, TestVault, post_json, unlimited};

fn settings(fake: &Fake, allow_private: bool) -> ForwardSettings {
    ForwardSettings::new(Duration::from_secs(2))
        .with_allow_private(allow_private)
        .with_ca_pem(fake.ca_pem.as_bytes())
        .unwrap()
}

async fn vault_for(fake: &Fake, allow_private: bool) -> TestVault {
    let v = TestVault::with_config(Config {
        forward: settings(fake, allow_private),
        ..unlimited()
    })
    .await;
    for acct in [&v.account.account, &v.other.account] {
        set_forward_hosts(
            v.state.store(),
            acct,
            &[format!("localhost:{}", fake.port), "api.psp.example".into()],
        )
        .await
        .unwrap();
    }
    v
}

const NAME: &str = "Zoë \"Q\" O'Brien & Sons+Co=%\\";

async fn token(v: &TestVault, number: &str, cvc: &str) -> String {
    let mut payload = v.payload(number, 3, 2031, Some(cvc));
    payload.name = Some(NAME.into());
    let r = v
        .create_token(
            &v.account.publishable_key,
            &json!({"card": v.seal(&payload)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn saved_card(v: &TestVault, number: &str, cvc: &str) -> String {
    let tok = token(v, number, cvc).await;
    let r = v
        .call(post_json(
            "/v1/cards",
            &v.account.secret_key,
            &json!({"token": tok}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

fn json_body(destination: &str, source: &str) -> Value {
    json!({
        "source": source,
        "destination": destination,
        "method": "POST",
        "headers": {"Authorization": "Bearer psp_test_key", "Content-Type": "application/json"},
        "body": "{\"pan\":\"{{card.number}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year2}}\",\"year\":\"{{card.exp_year}}\",\"cvc\":\"{{card.cvc}}\",\"name\":\"{{card.name}}\"}",
    })
}

async fn forward(v: &TestVault, key: &str, body: &Value) -> Reply {
    v.call(post_json("/v1/forward", key, body)).await
}

/// `a=b&c=d` with `+` and `%XX` decoded.
fn form_decode(s: &str) -> Vec<(String, String)> {
    let decode = |t: &str| {
        let mut out = Vec::new();
        let b = t.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    out.push(u8::from_str_radix(&t[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    s.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn the_processor_gets_the_card_in_json_and_the_merchant_a_masked_answer() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let tok = token(&v, "4242424242424242", "987").await;
    let r = forward(
        &v,
        &v.account.secret_key,
        &json_body(&fake.url("/v1/pay?x=1"), &tok),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(fake.count(), 1);
    let seen = fake.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/pay")
    );
    assert_eq!(seen.headers["authorization"], "Bearer psp_test_key");
    assert_eq!(seen.headers["host"], format!("localhost:{}", fake.port));
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        sent,
        json!({"pan": "4242424242424242", "exp": "03/31", "year": "2031", "cvc": "987", "name": NAME})
    );
    let answer = r.json();
    assert_eq!(answer["status"], 201);
    assert_eq!(answer["headers"]["request-id"], "req_fake_1");
    assert_eq!(answer["headers"]["content-type"], "application/json");
    assert!(answer["headers"].get("set-cookie").is_none(), "{answer}");
    let body = answer["body"].as_str().unwrap();
    assert!(!body.contains("4242424242424242"), "{body}");
    assert!(!body.contains("987"), "{body}");
    assert!(body.contains("************4242"), "{body}");
    assert!(!String::from_utf8_lossy(&r.body).contains("4242424242424242"));

    // The event: host, status and request id, never the body.
    let events = v.get("/v1/events", &v.account.secret_key).await.json();
    let text = events.to_string();
    let fwd = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "card.forwarded")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(fwd["data"]["host"], "localhost");
    assert_eq!(fwd["data"]["status"], 201);
    assert_eq!(fwd["data"]["request_id"], r.header("request-id").unwrap());
    assert!(!text.contains("psp_test_key") && !text.contains("4242424242424242"));
}

#[tokio::test]
async fn form_bodies_are_percent_encoded_with_names_that_need_it() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let tok = token(&v, "5555555555554444", "321").await;
    let r = forward(
        &v,
        &v.account.secret_key,
        &json!({
            "source": tok,
            "destination": fake.url("/v1/payment_methods"),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "body": "type=card&card%5Bnumber%5D={{card.number}}&card%5Bexp_month%5D={{card.exp_month}}&card%5Bexp_year%5D={{card.exp_year}}&card%5Bcvc%5D={{card.cvc}}&billing_details%5Bname%5D={{card.name}}",
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sent = form_decode(std::str::from_utf8(&fake.last().body).unwrap());
    assert_eq!(
        sent,
        [
            ("type", "card"),
            ("card[number]", "5555555555554444"),
            ("card[exp_month]", "03"),
            ("card[exp_year]", "2031"),
            ("card[cvc]", "321"),
            ("billing_details[name]", NAME),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("5555555555554444"));
}

#[tokio::test]
async fn refused_destinations_and_placeholders_send_nothing_and_keep_the_token() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let sk = v.account.secret_key.clone();
    let tok = token(&v, "4242424242424242", "987").await;
    let port = fake.port;
    for (destination, code) in [
        (
            "https://api.other.example/pay".to_owned(),
            "forward_destination_not_allowed",
        ),
        (
            format!("https://localhost:{}/pay", port + 1),
            "forward_destination_not_allowed",
        ),
        (
            format!("http://localhost:{port}/pay"),
            "forward_destination_not_allowed",
        ),
        (
            format!("https://127.0.0.1:{port}/pay"),
            "forward_destination_not_allowed",
        ),
        (
            format!("https://[::1]:{port}/pay"),
            "forward_destination_not_allowed",
        ),
    ] {
        let r = forward(&v, &sk, &json_body(&destination, &tok)).await;
        r.assert_error(400, "invalid_request_error", code);
        assert_eq!(r.json()["error"]["param"], "destination");
    }
    let mut body = json_body(&fake.url("/pay"), &tok);
    body["body"] = json!("{\"pan\":\"{{card.pan}}\"}");
    let r = forward(&v, &sk, &body).await;
    r.assert_error(400, "invalid_request_error", "placeholder_unknown");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{{card.pan}}")
    );
    body["body"] = json!("<pan>{{card.number}}</pan>");
    body["headers"]["Content-Type"] = json!("text/xml");
    forward(&v, &sk, &body).await.assert_error(
        400,
        "invalid_request_error",
        "content_type_unsupported",
    );
    // A merchant-initiated interaction never sends a CVC.
    let mut mit = json_body(&fake.url("/pay"), &tok);
    mit["interaction"] = json!("COF_UNSCHEDULED");
    forward(&v, &sk, &mit)
        .await
        .assert_error(402, "card_error", "cvc_unavailable");
    assert_eq!(fake.count(), 0);

    // Without --forward-allow-private, localhost is refused after the lookup.
    let strict = TestVault::with_config(Config {
        forward: settings(&fake, false),
        ..unlimited()
    })
    .await;
    set_forward_hosts(
        strict.state.store(),
        &strict.account.account,
        &[format!("localhost:{port}")],
    )
    .await
    .unwrap();
    let stok = token(&strict, "4242424242424242", "987").await;
    forward(
        &strict,
        &strict.account.secret_key,
        &json_body(&fake.url("/pay"), &stok),
    )
    .await
    .assert_error(
        400,
        "invalid_request_error",
        "forward_destination_not_allowed",
    );
    assert_eq!(fake.count(), 0);

    // A redirect comes back as it is, and is not followed.
    let r = forward(&v, &sk, &json_body(&fake.url("/redirect"), &tok)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], 302);
    assert_eq!(r.json()["headers"]["location"], fake.url("/pay"));
    assert_eq!(fake.count(), 1);
    assert_eq!(fake.last().path, "/redirect");
}

#[tokio::test]
async fn a_saved_card_without_a_cvc_is_402_and_its_cvc_is_used_once() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let sk = v.account.secret_key.clone();
    let card = saved_card(&v, "4242424242424242", "987").await;
    let r = forward(&v, &sk, &json_body(&fake.url("/pay"), &card)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        serde_json::from_slice::<Value>(&fake.last().body).unwrap()["cvc"],
        "987"
    );
    let r = forward(&v, &sk, &json_body(&fake.url("/pay"), &card)).await;
    r.assert_error(402, "card_error", "cvc_unavailable");
    assert_eq!(fake.count(), 1);
    // Without {{card.cvc}}, a saved card goes again and again.
    let mut body = json_body(&fake.url("/pay"), &card);
    body["body"] = json!("{\"pan\":\"{{card.number}}\"}");
    for _ in 0..2 {
        assert_eq!(forward(&v, &sk, &body).await.status, 200);
    }
    assert_eq!(fake.count(), 3);
}

#[tokio::test]
async fn a_token_is_forwarded_once_and_an_idempotency_key_calls_once() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let sk = v.account.secret_key.clone();
    let tok = token(&v, "4242424242424242", "987").await;
    assert_eq!(
        forward(&v, &sk, &json_body(&fake.url("/pay"), &tok))
            .await
            .status,
        200
    );
    forward(&v, &sk, &json_body(&fake.url("/pay"), &tok))
        .await
        .assert_error(400, "invalid_request_error", "token_already_used");
    assert_eq!(fake.count(), 1);

    let card = saved_card(&v, "4242424242424242", "987").await;
    let mut body = json_body(&fake.url("/pay"), &card);
    body["body"] = json!("{\"pan\":\"{{card.number}}\"}");
    let send = || {
        let mut req = post_json("/v1/forward", &sk, &body);
        req.headers_mut()
            .insert("idempotency-key", "fwd-1".parse().unwrap());
        v.call(req)
    };
    let first = send().await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let second = send().await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.body, second.body);
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn a_hanging_processor_is_504_and_a_huge_answer_502() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let sk = v.account.secret_key.clone();
    let tok = token(&v, "4242424242424242", "987").await;
    let start = Instant::now();
    let r = forward(&v, &sk, &json_body(&fake.url("/hang"), &tok)).await;
    r.assert_error(504, "api_error", "upstream_timeout");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // The token was used: the request may have reached the processor.
    forward(&v, &sk, &json_body(&fake.url("/pay"), &tok))
        .await
        .assert_error(400, "invalid_request_error", "token_already_used");

    let tok = token(&v, "4242424242424242", "987").await;
    forward(&v, &sk, &json_body(&fake.url("/huge"), &tok))
        .await
        .assert_error(502, "api_error", "upstream_response_too_large");

    // Nobody listening: a 502 with a code, at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    set_forward_hosts(
        v.state.store(),
        &v.account.account,
        &[format!("localhost:{port}")],
    )
    .await
    .unwrap();
    let tok = token(&v, "4242424242424242", "987").await;
    forward(
        &v,
        &sk,
        &json_body(&format!("https://localhost:{port}/pay"), &tok),
    )
    .await
    .assert_error(502, "api_error", "upstream_connection_failed");
    // Refused before the card was used: the token still works for a charge.
    let r = v
        .call(post_json(
            "/v1/charges",
            &sk,
            &json!({"amount": 100, "currency": "eur", "source": tok}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn keys_scopes_and_tenants() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    // Another account's card is a 404, and so is its token.
    let card = saved_card(&v, "4242424242424242", "987").await;
    let tok = token(&v, "4242424242424242", "987").await;
    for source in [&card, &tok] {
        forward(
            &v,
            &v.other.secret_key,
            &json_body(&fake.url("/pay"), source),
        )
        .await
        .assert_error(404, "invalid_request_error", "resource_missing");
    }
    forward(
        &v,
        &v.account.publishable_key,
        &json_body(&fake.url("/pay"), &tok),
    )
    .await
    .assert_error(403, "permission_error", "secret_key_required");
    // The detokenize key lacks the forward scope; a key with it may forward.
    forward(
        &v,
        &v.account.restricted_key,
        &json_body(&fake.url("/pay"), &tok),
    )
    .await
    .assert_error(403, "permission_error", "insufficient_scope");
    assert_eq!(fake.count(), 0);
    let rk = accounts::roll_key(
        v.state.store(),
        v.state.master(),
        &v.account.account,
        KeyKind::Restricted,
        &["forward".to_owned()],
        3600,
        v.now(),
    )
    .await
    .unwrap();
    let r = forward(&v, &rk.key, &json_body(&fake.url("/pay"), &tok)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(fake.count(), 1);
}

/// After 50 forwards through the real binary (25 tokens, 25 saved cards with their CVC, JSON
/// and form bodies), neither the database files (WAL included) nor the logs (at trace level)
/// nor the merchant's answers hold a card number or a CVC, though the processor echoed both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_number_or_cvc_in_the_database_or_the_logs_after_50_forwards() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    use cardseal::Secret;
    use cardseal::jwe::{self, Payload, VaultKey};
    use support::{BIN, http, luhn_number, unix_now};

    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &fake.ca_pem).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env("CARDSEAL_MASTER_KEY", "6b".repeat(32))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let account: Value = serde_json::from_str(&run(&[
        "accounts",
        "create",
        "--data-dir",
        &data,
        "--name",
        "forward-leaks",
        "--json",
    ]))
    .unwrap();
    let acct = account["account"].as_str().unwrap().to_owned();
    let pk = account["publishable_key"].as_str().unwrap().to_owned();
    let sk = account["secret_key"].as_str().unwrap().to_owned();
    let host = format!("localhost:{}", fake.port);
    let printed = run(&[
        "accounts",
        "update",
        "--data-dir",
        &data,
        "--account",
        &acct,
        "--forward-host",
        &host,
        "*.psp.example",
    ]);
    assert!(
        printed.contains(&format!("forward hosts *.psp.example {host}")),
        "{printed}"
    );

    let mut server = Command::new(BIN)
        .args([
            "serve",
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--ip-rate",
            "0",
            "--key-rate",
            "0",
            "--card-tokens-per-10m",
            "0",
            "--forward-allow-private",
            "--forward-ca-file",
            ca_file.to_str().unwrap(),
        ])
        .env("CARDSEAL_LOG", "trace")
        .env("CARDSEAL_MASTER_KEY", "6b".repeat(32))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = server.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    let addr: std::net::SocketAddr = loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = server.kill();
            panic!("the server exited");
        }
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            break a.parse().unwrap();
        }
    };
    let jwks = http(
        addr,
        Request::get("/.well-known/jwks.json")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    let key = VaultKey::parse(std::str::from_utf8(&jwks.body).unwrap()).unwrap();

    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::try_from(unix_now()).unwrap();
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let numbers: Vec<String> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                luhn_number("37", 15, next() % 1_000_000_000_000)
            } else {
                luhn_number("4", 16, next() % 100_000_000_000_000)
            }
        })
        .collect();
    // The first six and last four digits are shown in clear (masked answers keep the last
    // four), so a CVC inside them would be found for the wrong reason.
    let clear: Vec<String> = numbers
        .iter()
        .map(|n| format!("{}{}{}", &n[n.len() - 4..], &n[..6], &n[n.len() - 4..]))
        .collect();
    let mut cards = Vec::new();
    let mut answers = Vec::new();
    for (i, number) in numbers.into_iter().enumerate() {
        let cvc = loop {
            // 4-digit CVCs from 3000-8999 never look like a year, a port or a timestamp.
            let cvc = if i % 2 == 0 {
                format!("{}", 3000 + next() % 6000)
            } else {
                format!("{:03}", next() % 1000)
            };
            if !clear.iter().any(|c| c.contains(&cvc)) {
                break cvc;
            }
        };
        let payload = Payload {
            v: 1,
            number: Some(Secret::new(number.as_str())),
            exp_month: Some(11),
            exp_year: Some(2031),
            cvc: Some(Secret::new(cvc.as_str())),
            name: Some("Leak Test".into()),
            iat: unix_now(),
            jti: jwe::new_jti().unwrap(),
        };
        let r = http(
            addr,
            post_json(
                "/v1/tokens",
                &pk,
                &json!({"card": jwe::seal_payload(&key, &payload).unwrap()}),
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let mut source = r.json()["id"].as_str().unwrap().to_owned();
        if i % 4 >= 2 {
            let card = http(addr, post_json("/v1/cards", &sk, &json!({"token": source}))).await;
            assert_eq!(card.status, 200, "{}", String::from_utf8_lossy(&card.body));
            source = card.json()["id"].as_str().unwrap().to_owned();
        }
        let body = if i % 3 == 0 {
            json!({
                "source": source, "destination": fake.url("/v1/payment_methods"),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body": "card%5Bnumber%5D={{card.number}}&card%5Bcvc%5D={{card.cvc}}&card%5Bexp_year%5D={{card.exp_year}}",
            })
        } else {
            json_body(&fake.url("/payments"), &source)
        };
        let r = http(addr, post_json("/v1/forward", &sk, &body)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        answers.push(r.body.to_vec());
        cards.push((number, cvc));
    }
    assert_eq!(fake.count(), 50);
    // The processor got them all in clear.
    let received: Vec<u8> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|s| s.body.clone())
        .collect();
    for (number, cvc) in &cards {
        assert!(digit_runs(&received).contains(&number.as_bytes()));
        assert!(after_cvc(&received).contains(&cvc.as_bytes()));
    }

    // Killed, not stopped: the WAL stays as it was. The pause lets the log writer catch up.
    std::thread::sleep(Duration::from_millis(300));
    let _ = server.kill();
    let _ = server.wait();
    let logs = logs.join().unwrap();
    assert!(
        String::from_utf8_lossy(&logs)
            .matches("/v1/forward")
            .count()
            >= 50
    );
    let mut files = vec![("logs".to_owned(), logs)];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("master.key") {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files.extend(answers.into_iter().map(|a| ("answer".to_owned(), a)));
    let mut db_cvcs = std::collections::BTreeSet::new();
    for (name, bytes) in &files {
        let runs = digit_runs(bytes);
        let isolated = isolated_digit_runs(bytes);
        let cvc_values = after_cvc(bytes);
        for (number, cvc) in &cards {
            let n = number.as_bytes();
            assert!(
                !runs.iter().any(|r| r.windows(n.len()).any(|w| w == n)),
                "card number in {name}"
            );
            assert!(
                !cvc_values.contains(&cvc.as_bytes()),
                "CVC after `cvc` in {name}"
            );
            if cvc.len() == 4 {
                if name.contains("sqlite3") {
                    // Mostly ciphertext, where a given 4-digit run turns up by chance: count.
                    let stored = runs.iter().any(|r| {
                        !(r.len() == 10 && r[0] == b'1')
                            && r.windows(4).any(|w| w == cvc.as_bytes())
                    });
                    if stored {
                        db_cvcs.insert(cvc.clone());
                    }
                } else {
                    assert!(!isolated.contains(&cvc.as_bytes()), "CVC {cvc} in {name}");
                }
            }
        }
    }
    assert!(
        db_cvcs.len() <= 2,
        "CVCs in the database files: {db_cvcs:?}"
    );
}

/// Every digit of `text`, in order: a number spelled with any separators shows in it.
fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The number and the CVC as a processor that echoes them might write them back: the forms of
/// the second security review, read from the request the fake got, so that it is the
/// forwarded card that comes back.
fn echo_forms(seen: &fake_processor::Seen) -> fake_processor::Canned {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    let pan = sent["pan"].as_str().unwrap().to_owned();
    let cvc = sent["cvc"].as_str().unwrap().to_owned();
    let groups: Vec<&str> = (0..pan.len())
        .step_by(4)
        .map(|i| &pan[i..(i + 4).min(pan.len())])
        .collect();
    let spaced = |sep: &str| groups.join(sep);
    let escaped: String = pan
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let utf16: Vec<u8> = pan.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let cvc_spaced: Vec<String> = cvc.chars().map(String::from).collect();
    let body = format!(
        r#"{{"a":"card {} 12/30 declined","b":"ref 1 {}","c":"{}","d":"{}","e":"{}","f":"{}","g":"{escaped}","h":"{}","i":"{}","j":"{}","k":"cvc {}"}}"#,
        spaced(" "),
        spaced(" "),
        spaced("."),
        spaced("/"),
        spaced("  "),
        spaced("\u{a0}"),
        STANDARD.encode(&pan),
        URL_SAFE_NO_PAD.encode(format!("{{\"pan\":\"{pan}\"}}")),
        STANDARD.encode(&utf16),
        cvc_spaced.join(" "),
    );
    let reason: &'static str = Box::leak(format!("OK {pan}").into_boxed_str());
    fake_processor::Canned {
        status: 200,
        reason: Some(reason),
        headers: vec![
            ("content-type", b"application/json".to_vec()),
            ("x-request-id", format!("{} 12", spaced(" ")).into_bytes()),
            (
                "location",
                format!("https://psp.example/r?pan={}", spaced("%20")).into_bytes(),
            ),
        ],
        body: body.into_bytes(),
    }
}

#[tokio::test]
async fn an_echoing_processor_hands_back_no_form_of_the_number_or_the_cvc() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let fake = fake().await;
    fake.on("/echo", echo_forms);
    let v = vault_for(&fake, true).await;
    let pan = "4000056655665556";
    let tok = token(&v, pan, "739").await;
    let mut body = json_body(&fake.url("/echo"), &tok);
    body["body"] = json!("{\"pan\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\"}");
    let r = forward(&v, &v.account.secret_key, &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(fake.count(), 1);
    let answer = r.json();
    assert_eq!(answer["status"], 200);
    let body = answer["body"].as_str().unwrap();
    let echoed: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    // Each field on its own: no digit sequence of it spells the number.
    for (field, value) in echoed.as_object().unwrap() {
        let value = value.as_str().unwrap();
        assert!(!digits_of(value).contains(pan), "{field}: {value}");
    }
    for form in [
        STANDARD.encode(pan),
        URL_SAFE_NO_PAD.encode(format!("{{\"pan\":\"{pan}\"}}")),
        STANDARD.encode(
            pan.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        ),
    ] {
        assert!(!body.contains(&form), "{body}");
    }
    assert_eq!(echoed["k"], "cvc * * *");
    assert!(
        echoed["a"]
            .as_str()
            .unwrap()
            .ends_with("5556 12/30 declined"),
        "{echoed}"
    );
    for (name, value) in answer["headers"].as_object().unwrap() {
        let value = value.as_str().unwrap();
        assert!(!digits_of(value).contains(pan), "{name}: {value}");
        assert!(
            !digits_of(&value.replace("%20", " ")).contains(pan),
            "{name}: {value}"
        );
    }
    // Nor anywhere in the reply, the status line's reason included.
    let whole = String::from_utf8_lossy(&r.body);
    assert!(!whole.contains("OK 4000"), "{whole}");
}

#[tokio::test]
async fn a_utf16_answer_is_masked_and_an_unreadable_one_is_502_without_its_body() {
    let fake = fake().await;
    let pan = "4000056655665556";
    let utf16 = |s: &str, le: bool| -> Vec<u8> {
        s.encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    };
    for (path, ct, le) in [
        ("/le", "text/plain; charset=utf-16le", true),
        ("/be", "text/plain; charset=UTF-16BE", false),
    ] {
        let body = utf16(&format!("declined {pan}"), le);
        fake.on(path, move |_| fake_processor::Canned {
            status: 402,
            headers: vec![("content-type", ct.as_bytes().to_vec())],
            body: body.clone(),
            ..Default::default()
        });
    }
    // The gzip header and a stored (uncompressed) deflate block: gzip that holds the number
    // as it is, which only decompressing would show.
    let gz = [
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 16, 0, 0xef, 0xff][..],
        pan.as_bytes(),
    ]
    .concat();
    let unreadable: Vec<(&str, &'static str, Vec<u8>, Option<&'static str>)> = vec![
        ("/gzip", "application/json", gz, Some("gzip")),
        (
            "/bin",
            "application/octet-stream",
            pan.as_bytes().to_vec(),
            None,
        ),
        (
            "/latin1",
            "text/plain; charset=iso-8859-1",
            format!("pan {pan}").into_bytes(),
            None,
        ),
        (
            "/raw",
            "text/plain",
            [&[0u8, 1, 2, 0xff][..], pan.as_bytes()].concat(),
            None,
        ),
    ];
    for (path, ct, body, encoding) in unreadable.clone() {
        fake.on(path, move |_| {
            let mut headers = vec![
                ("content-type", ct.as_bytes().to_vec()),
                ("request-id", b"req_bin".to_vec()),
            ];
            if let Some(e) = encoding {
                headers.push(("content-encoding", e.as_bytes().to_vec()));
            }
            fake_processor::Canned {
                status: 201,
                headers,
                body: body.clone(),
                ..Default::default()
            }
        });
    }
    let v = vault_for(&fake, true).await;
    for path in ["/le", "/be"] {
        let tok = token(&v, pan, "739").await;
        let r = forward(&v, &v.account.secret_key, &json_body(&fake.url(path), &tok)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], 402);
        assert_eq!(r.json()["body"], "declined ************5556", "{path}");
    }
    for (path, ct, _, _) in unreadable {
        let tok = token(&v, pan, "739").await;
        let r = forward(&v, &v.account.secret_key, &json_body(&fake.url(path), &tok)).await;
        r.assert_error(502, "api_error", "forward_response_unreadable");
        let answer = r.json();
        assert_eq!(answer["status"], 201, "{path}");
        assert_eq!(answer["headers"]["content-type"], ct);
        assert_eq!(answer["headers"]["request-id"], "req_bin");
        assert!(answer.get("body").is_none(), "{answer}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("5566"),
            "{answer}"
        );
    }
    // The event says what happened; nothing is kept for a replay (a 502).
    let events = v.get("/v1/events", &v.account.secret_key).await.json();
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "card.forwarded"
                && e["data"]["error"] == "forward_response_unreadable"
                && e["data"]["status"] == 201),
        "{events}"
    );
}

/// The second security review: the key's claim lasted 60 s whatever `--forward-timeout` was,
/// so a retry after 62 s, while the first call still waited on a slow processor, sent the card
/// again. The clock is the vault's injected one; the processor answers when the test says.
#[tokio::test]
async fn a_retry_while_a_late_processor_has_not_answered_is_409_and_sends_nothing() {
    let fake = fake().await;
    // A real deadline far beyond the test, so that only the injected clock moves past 60 s.
    let v = TestVault::with_config(Config {
        forward: settings(&fake, true).with_timeout(Duration::from_secs(120)),
        ..unlimited()
    })
    .await;
    set_forward_hosts(
        v.state.store(),
        &v.account.account,
        &[format!("localhost:{}", fake.port)],
    )
    .await
    .unwrap();
    let sk = v.account.secret_key.clone();
    let card = saved_card(&v, "4242424242424242", "987").await;
    let mut body = json_body(&fake.url("/late"), &card);
    body["body"] = json!("{\"pan\":\"{{card.number}}\"}");
    let send = || {
        let mut req = post_json("/v1/forward", &sk, &body);
        req.headers_mut()
            .insert("idempotency-key", "fwd-late".parse().unwrap());
        v.call(req)
    };
    let retries = async {
        fake.wait_for(1).await;
        // Past the old 60 s claim, within the forward's own 120 s deadline.
        v.clock.advance(62);
        let during = send().await;
        v.clock.advance(100);
        let later = send().await;
        fake.release();
        (during, later)
    };
    let (first, (during, later)) = tokio::join!(send(), retries);
    during.assert_error(409, "invalid_request_error", "idempotency_key_in_use");
    later.assert_error(409, "invalid_request_error", "idempotency_key_in_use");
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(fake.count(), 1);
    let replay = send().await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert_eq!(fake.count(), 1);
}

/// The second security review: a placeholder outside a JSON string let a cardholder name
/// write JSON of its own (`{"name": {{card.name}}}` with a name `1, "amount": 100`). Such a
/// body is refused before anything is used or sent.
#[tokio::test]
async fn a_placeholder_outside_a_json_string_or_a_form_value_is_refused_before_sending() {
    let fake = fake().await;
    let v = vault_for(&fake, true).await;
    let sk = v.account.secret_key.clone();
    let tok = token(&v, "4242424242424242", "987").await;
    for (body, ct) in [
        (r#"{"amount":100,"name":{{card.name}}}"#, "application/json"),
        (r#"{"year":{{card.exp_year}}}"#, "application/json"),
        (
            r#"{"pan":"{{card.number}}"}{{card.cvc}}"#,
            "application/json",
        ),
        (
            "{{card.name}}=1&pan={{card.number}}",
            "application/x-www-form-urlencoded",
        ),
        (
            "pan={{card.number}}&{{card.name}}",
            "application/x-www-form-urlencoded",
        ),
    ] {
        let r = forward(
            &v,
            &sk,
            &json!({"source": tok, "destination": fake.url("/pay"), "headers": {"content-type": ct}, "body": body}),
        )
        .await;
        r.assert_error(400, "invalid_request_error", "placeholder_malformed");
        assert_eq!(r.json()["error"]["param"], "body", "{body}");
    }
    assert_eq!(fake.count(), 0);
    // The token was not used: it still forwards, with every placeholder in a string.
    let r = forward(&v, &sk, &json_body(&fake.url("/pay"), &tok)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(fake.count(), 1);
}
