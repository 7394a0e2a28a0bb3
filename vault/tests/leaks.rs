//! After 50 cards go through the real binary (tokenized, saved, charged, CVC re-added),
//! neither the SQLite files (read raw, WAL included) nor the logs (at trace level) nor the
//! responses hold any card number or CVC.

#[path = "support/helpers.rs"]
mod support;

#[path = "support/scan.rs"]
mod scan;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::Request;
use cardseal::Secret;
use cardseal::jwe::{self, Payload, VaultKey};
use scan::{after_cvc, digit_runs, isolated_digit_runs};
use serde_json::{Value, json};
use support::{
    database_url_for, http, luhn_number, on_postgres, pg_bindir, post_json, unix_now, vault_command,
};

/// Kills the server even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TestCard {
    number: String,
    cvc: String,
}

/// 25 amex cards (4-digit CVCs, searched for anywhere) and 25 visa and mastercard cards
/// (3-digit CVCs, which random bytes contain by chance, so searched for in the forms a leak
/// would take: JSON members and key=value pairs).
fn cards() -> Vec<TestCard> {
    let mut cards = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::try_from(unix_now()).unwrap();
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let numbers: Vec<String> = (0..50)
        .map(|i| match i % 4 {
            0 => luhn_number("37", 15, next() % 1_000_000_000_000),
            2 => luhn_number("34", 15, next() % 1_000_000_000_000),
            1 => luhn_number("4", 16, next() % 100_000_000_000_000),
            _ => luhn_number("53", 16, next() % 10_000_000_000_000),
        })
        .collect();
    // The first six and last four digits are stored (side by side) and shown in clear, so a
    // CVC inside them would be found for the wrong reason.
    let clear: Vec<String> = numbers
        .iter()
        .map(|n| format!("{}{}{}", &n[n.len() - 4..], &n[..6], &n[n.len() - 4..]))
        .collect();
    for number in &numbers {
        let amex = number.len() == 15;
        let cvc = loop {
            // CVCs from 3000-8999 never look like a year, a port or a timestamp's leading digits.
            let cvc = if amex {
                format!("{}", 3000 + next() % 6000)
            } else {
                format!("{:03}", next() % 1000)
            };
            if !clear.iter().any(|c| c.contains(&cvc)) {
                break cvc;
            }
        };
        cards.push(TestCard {
            number: number.clone(),
            cvc,
        });
    }
    cards
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_or_cvc_in_the_database_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let created = vault_command(data)
        .args([
            "accounts",
            "create",
            "--data-dir",
            data,
            "--name",
            "leaks",
            "--allowed-origin",
            "http://127.0.0.1:*",
            "--json",
        ])
        .env("CARDSEAL_MASTER_KEY", "5a".repeat(32))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let account: Value = serde_json::from_slice(&created.stdout).unwrap();
    let pk = account["publishable_key"].as_str().unwrap().to_owned();
    let sk = account["secret_key"].as_str().unwrap().to_owned();

    let server = vault_command(data)
        .args([
            "serve",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:0",
            "--ip-rate",
            "0",
            "--key-rate",
            "0",
            "--card-tokens-per-10m",
            "0",
            "--declines-per-minute",
            "0",
        ])
        .env("CARDSEAL_LOG", "trace")
        .env("CARDSEAL_MASTER_KEY", "5a".repeat(32))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let mut stderr = server.0.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the server exited"
        );
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            break a.parse().unwrap();
        }
    };

    let jwks = http(
        addr,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let key = VaultKey::parse(std::str::from_utf8(&jwks.body).unwrap()).unwrap();
    let cards = cards();
    let mut summaries = Vec::new();
    // Digit text the vault stores on purpose: charges' network transaction ids.
    let mut ntids: Vec<Vec<u8>> = Vec::new();
    for c in &cards {
        let payload = Payload {
            v: 1,
            number: Some(Secret::new(c.number.as_str())),
            exp_month: Some(11),
            exp_year: Some(2031),
            cvc: Some(Secret::new(c.cvc.as_str())),
            name: Some("Leak Test".into()),
            iat: unix_now(),
            jti: jwe::new_jti().unwrap(),
        };
        let body = json!({ "card": jwe::seal_payload(&key, &payload).unwrap() });
        let r = http(addr, post_json("/v1/tokens", &pk, &body)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let t = r.json();
        let got = http(
            addr,
            Request::get(format!("/v1/tokens/{}", t["id"].as_str().unwrap()))
                .header("authorization", format!("Bearer {sk}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(got.status, 200);
        summaries.push(got.body.clone());
        // Saved as a card (its CVC kept), charged (the CVC used), the CVC re-added.
        let card = http(
            addr,
            post_json("/v1/cards", &sk, &json!({"token": t["id"]})),
        )
        .await;
        assert_eq!(card.status, 200, "{}", String::from_utf8_lossy(&card.body));
        let card_id = card.json()["id"].as_str().unwrap().to_owned();
        summaries.push(card.body.clone());
        let charge = http(
            addr,
            post_json(
                "/v1/charges",
                &sk,
                &json!({"amount": 100, "currency": "eur", "source": card_id}),
            ),
        )
        .await;
        assert_eq!(charge.json()["card"]["cvc_check"], "pass");
        let ntid = &charge.json()["outcome"]["network_transaction_id"];
        ntids.push(ntid.as_str().unwrap().as_bytes().to_vec());
        summaries.push(charge.body.clone());
        // A CVC token and a refused card too.
        let cvc = cardseal::card::Cvc::parse(&c.cvc, None).unwrap();
        let r = http(
            addr,
            post_json(
                "/v1/tokens",
                &pk,
                &json!({ "cvc": jwe::seal_cvc(&key, &cvc, unix_now()).unwrap() }),
            ),
        )
        .await;
        assert_eq!(r.status, 200);
        let added = http(
            addr,
            post_json(
                &format!("/v1/cards/{card_id}/cvc"),
                &sk,
                &json!({"token": r.json()["id"]}),
            ),
        )
        .await;
        assert_eq!(
            added.status,
            200,
            "{}",
            String::from_utf8_lossy(&added.body)
        );
        summaries.push(added.body.clone());
        let mut expired = payload.clone();
        expired.exp_year = Some(2001);
        expired.jti = jwe::new_jti().unwrap();
        let r = http(
            addr,
            post_json(
                "/v1/tokens",
                &pk,
                &json!({ "card": jwe::seal_payload(&key, &expired).unwrap() }),
            ),
        )
        .await;
        assert_eq!(r.status, 402);
        summaries.push(r.body.clone());
    }
    // Killed, not stopped: the WAL stays as it was, unflushed frames and all. The pause lets
    // the log writer thread catch up first.
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(server);
    let logs = logs.join().unwrap();

    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        // Key material in hex, not card data; its digit runs would only add noise.
        if path.ends_with("master.key") {
            continue;
        }
        files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    if let Some(url) = database_url_for(dir.path()) {
        let (text, bytea) = pg_dump(&url);
        files.push(("pg_dump".into(), text));
        files.push(("pg_dump (bytea values decoded)".into(), bytea));
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        on_postgres() || names.iter().any(|n| n.ends_with(".sqlite3-wal")),
        "{names:?}"
    );
    let db_bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(db_bytes > 50 * 200, "the database should hold the tokens");
    // The logs were captured at trace level and hold the request lines.
    let log_text = String::from_utf8_lossy(&logs);
    assert!(log_text.matches("/v1/tokens").count() >= 150, "{log_text}");
    files.push(("logs".into(), logs));
    for body in summaries {
        files.push(("response".into(), body.to_vec()));
    }

    // The detectors themselves catch a leak.
    let probe = format!(
        "ab{}cd \"cvc\":\"{}\" x{}y",
        cards[0].number, cards[1].cvc, cards[0].cvc
    );
    assert!(
        digit_runs(probe.as_bytes())
            .iter()
            .any(|r| *r == cards[0].number.as_bytes())
    );
    assert!(after_cvc(probe.as_bytes()).contains(&cards[1].cvc.as_bytes()));
    assert!(digit_runs(probe.as_bytes()).contains(&cards[0].cvc.as_bytes()));
    assert!(isolated_digit_runs(probe.as_bytes()).contains(&cards[1].cvc.as_bytes()));
    assert!(!isolated_digit_runs(b"req_ab1234cd").contains(&&b"1234"[..]));

    let mut db_cvcs = std::collections::BTreeSet::new();
    for (name, bytes) in &files {
        let runs = digit_runs(bytes);
        // Without the digit text stored on purpose (network transaction ids, and Unix times in
        // the audit log's JSON), whose random digits would otherwise hold CVCs by chance.
        let stored: Vec<&[u8]> = runs
            .iter()
            .copied()
            .filter(|r| {
                let timestamp = r.len() == 10 && r[0] == b'1';
                !timestamp && !ntids.iter().any(|n| n == r)
            })
            .collect();
        let isolated = isolated_digit_runs(bytes);
        let cvc_values = after_cvc(bytes);
        for c in &cards {
            let number = c.number.as_bytes();
            assert!(
                !runs
                    .iter()
                    .any(|r| r.windows(number.len()).any(|w| w == number)),
                "card number in {name}"
            );
            // 4-digit CVCs. Logs and responses are text: any stand-alone digit run equal to a
            // CVC fails. The database files are mostly ciphertext, where a given 4-digit run
            // turns up by chance about once in a few hundred runs (and then again in every WAL
            // copy of its page), so there the CVCs found are counted below: a leak shows all
            // 25 of them, chance one or two.
            if c.cvc.len() == 4 {
                if name.contains("sqlite3") || name.starts_with("pg_dump") {
                    // Within runs: SQLite stores a record's text columns side by side.
                    let cvc = c.cvc.as_bytes();
                    if stored
                        .iter()
                        .any(|r| r.windows(cvc.len()).any(|w| w == cvc))
                    {
                        db_cvcs.insert(c.cvc.clone());
                    }
                } else {
                    assert!(
                        !isolated.contains(&c.cvc.as_bytes()),
                        "CVC {} in {name}",
                        c.cvc
                    );
                }
            }
            assert!(
                !cvc_values.contains(&c.cvc.as_bytes()),
                "CVC {} after `cvc` in {name}",
                c.cvc
            );
        }
    }
    assert!(
        db_cvcs.len() <= 2,
        "CVCs in the database files: {db_cvcs:?}"
    );
}

/// A plain `pg_dump` of the database at `url`: its text with every bytea value cut out, and
/// those values decoded from hex, one after another, as they sit on disk.
fn pg_dump(url: &str) -> (Vec<u8>, Vec<u8>) {
    let out = Command::new(pg_bindir().join("pg_dump"))
        .args(["--no-owner", "--dbname", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = out.stdout;
    let (mut text, mut bytea) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < dump.len() {
        if dump[i..].starts_with(b"\\x") {
            text.extend_from_slice(b"\\x");
            i += 2;
            let start = i;
            while i < dump.len() && dump[i].is_ascii_hexdigit() {
                i += 1;
            }
            // Not every `\\x` in the text starts a bytea value.
            if let Ok(bytes) = hex::decode(&dump[start..i]) {
                bytea.extend(bytes);
                bytea.push(0);
            }
        } else {
            text.push(dump[i]);
            i += 1;
        }
    }
    assert!(
        bytea.len() > 50 * 200,
        "the dump should hold the sealed cards"
    );
    (text, bytea)
}
