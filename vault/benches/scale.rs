//! The vault at scale: the hot requests on a database bulk-loaded with synthetic tokens and
//! saved cards, beside the same run's empty database and `openssl speed rsa2048`.
//!
//! `cargo bench -p cardseal-vault --bench scale -- --sizes 0,100000,1000000`
//! (`--requests N`, `--clients N`, `--database-url URL` for PostgreSQL with one and two
//! instances; without it, SQLite only).
//!
//! At each size: the tokens go straight into the store (80% used, spread over two days, so
//! half are past the purge's day; 15% unused and expired; 5% unused and live), with
//! min(size, 100,000) saved cards. Then, in the bench process, the purge's batches are timed
//! on that table (each is one write transaction of `purge::defaults::BATCH_ROWS` rows: the writer is held that long).
//! Then the real binary serves `POST /v1/tokens` (closed loop, throughput, p50, p99),
//! `GET /v1/cards/{id}` on loaded cards and `POST /v1/charges` on a card saved through the
//! API; the database's size on disk and the vault's RSS are read after.
//! The last line is every figure as one JSON object, prefixed `BENCH_JSON `.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cardseal::Secret;
use cardseal::jwe::{self, Payload, VaultKey};
use cardseal_vault::store::postgres::PostgresStore;
use cardseal_vault::store::sqlite::SqliteStore;
use cardseal_vault::store::{
    self, CardRecord, CardSummary, IssuerInfo, Store, TokenRecord, TokenType,
};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cardseal-vault");
const BENCH_MASTER_KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Options {
    sizes: Vec<u64>,
    requests: usize,
    clients: usize,
    database_url: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        sizes: vec![0, 100_000, 1_000_000],
        requests: 3000,
        clients: 32,
        database_url: std::env::var("CARDSEAL_BENCH_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--sizes" => {
                o.sizes = v
                    .split(',')
                    .map(|s| s.parse().expect("--sizes N,N"))
                    .collect()
            }
            "--requests" => o.requests = v.parse().expect("--requests N"),
            "--clients" => o.clients = v.parse().expect("--clients N"),
            "--database-url" => o.database_url = Some(v),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn openssl_sign_per_sec(seconds: u32) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "rsa2048"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().find(|l| l.contains("sign/s"))?;
    let column = header.split_whitespace().position(|c| c == "sign/s")?;
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("rsa") && l.contains("2048"))?;
    let fields: Vec<&str> = row.split_whitespace().collect();
    fields.get(column + 3)?.parse().ok()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn pg_database_bytes(url: &str) -> u64 {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let v: i64 = c
            .query_one("SELECT pg_database_size(current_database())", &[])
            .unwrap()
            .get(0);
        v as u64
    })
    .join()
    .unwrap()
}

/// A fresh database named `name` on the server of `url`, dropped first if it exists.
fn fresh_pg_database(url: &str, name: &str) -> String {
    let server = url.to_owned();
    let db = name.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        // One statement each: DROP DATABASE cannot run inside a multi-statement batch.
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    })
    .join()
    .unwrap();
    let (base, query) = url
        .split_once('?')
        .map_or((url, String::new()), |(b, q)| (b, format!("?{q}")));
    let host_end = base[base.find("://").map_or(0, |i| i + 3)..]
        .find('/')
        .map_or(base.len(), |i| base.find("://").map_or(0, |j| j + 3) + i);
    format!("{}/{name}{query}", &base[..host_end])
}

fn vault_cmd(db_url: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    c.env("CARDSEAL_MASTER_KEY", BENCH_MASTER_KEY);
    match db_url {
        Some(u) => c.env("CARDSEAL_DATABASE_URL", u),
        None => c.env_remove("CARDSEAL_DATABASE_URL"),
    };
    c
}

fn serve(data: &str, db_url: Option<&str>) -> (KillOnDrop, SocketAddr) {
    let child = vault_cmd(db_url)
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .args([
            "--key-rate",
            "0",
            "--ip-rate",
            "0",
            "--card-tokens-per-10m",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the vault exited");
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            break a.parse().unwrap();
        }
    };
    (child, addr)
}

/// The synthetic tokens `from..to` of a load of any size: the same shares at every size.
fn synthetic_tokens(account: &str, from: u64, to: u64, t: i64) -> Vec<TokenRecord> {
    (from..to)
        .map(|n| {
            let age = i64::try_from(n % 172_800).unwrap();
            let (created, used_at) = match n % 20 {
                // 16 in 20 used, over the last two days.
                0..=15 => (t - age - 60, Some(t - age)),
                // 3 in 20 expired unused.
                16..=18 => (t - 900 - 1 - age % 86_400, None),
                _ => (t - 30, None),
            };
            TokenRecord {
                id: cardseal_vault::ids::new_id("tok_"),
                account_id: account.to_owned(),
                token_type: TokenType::Card,
                card: Some(summary()),
                sealed: used_at.is_none().then(|| vec![0x5a; 150]),
                client_ip: Some("203.0.113.7".into()),
                created,
                expires_at: created + 900,
                used_at,
            }
        })
        .collect()
}

fn summary() -> CardSummary {
    CardSummary {
        brand: "visa".into(),
        bin: "424242".into(),
        last4: "4242".into(),
        exp_month: 12,
        exp_year: 2030,
        fingerprint: [9; 32],
    }
}

struct Loaded {
    load_s: f64,
    card_ids: Vec<String>,
    purge_batch_ms: Vec<f64>,
    purge_rows: u64,
}

async fn bulk_load(store: &dyn Store, account: &str, size: u64) -> Loaded {
    let t = now();
    let start = Instant::now();
    let chunk = 10_000;
    let mut from = 0;
    while from < size {
        let to = (from + chunk).min(size);
        let tokens = synthetic_tokens(account, from, to, t);
        store::write(store, move |tx| tx.bulk_insert_tokens(&tokens))
            .await
            .unwrap();
        from = to;
    }
    let cards = size.min(100_000);
    let mut card_ids = Vec::new();
    let mut from = 0;
    while from < cards {
        let to = (from + chunk).min(cards);
        let batch: Vec<CardRecord> = (from..to)
            .map(|i| CardRecord {
                id: cardseal_vault::ids::new_id("card_"),
                account_id: account.to_owned(),
                customer: Some(format!("cus_{}", i % 20_000)),
                summary: summary(),
                issuer: IssuerInfo::default(),
                metadata: "{}".into(),
                wrapped_key: Some(vec![1; 60]),
                sealed: Some(vec![2; 90]),
                network_transaction_id: None,
                created: t - i64::try_from(cards - i).unwrap(),
            })
            .collect();
        card_ids.extend(batch.iter().step_by(97).map(|c| c.id.clone()));
        store::write(store, move |tx| {
            for c in &batch {
                tx.insert_card(c)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        from = to;
    }
    let load_s = start.elapsed().as_secs_f64();
    // The purge's batches on this table, as the upkeep runs them: each one write transaction.
    let mut purge_batch_ms = Vec::new();
    let mut purge_rows = 0;
    let used_before = t - cardseal_vault::purge::defaults::KEEP_USED_SECS;
    for _ in 0..200 {
        let b = Instant::now();
        let n = store::write(store, move |tx| {
            tx.purge_tokens(used_before, t, cardseal_vault::purge::defaults::BATCH_ROWS)
        })
        .await
        .unwrap();
        purge_batch_ms.push(b.elapsed().as_secs_f64() * 1000.0);
        purge_rows += n;
        if n < u64::from(cardseal_vault::purge::defaults::BATCH_ROWS) {
            break;
        }
    }
    Loaded {
        load_s,
        card_ids,
        purge_batch_ms,
        purge_rows,
    }
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> (u16, Bytes) {
    sender.ready().await.unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    key: &str,
    body: Option<Bytes>,
) -> Request<Full<Bytes>> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        r = r.header("content-type", "application/json");
    }
    r.body(Full::new(body.unwrap_or_default())).unwrap()
}

fn seal_bodies(key: &VaultKey, n: usize) -> Vec<Bytes> {
    let numbers = [
        "4242424242424242",
        "5555555555554444",
        "4000056655665556",
        "6011111111111117",
    ];
    let iat = now();
    (0..n)
        .map(|i| {
            let payload = Payload {
                v: 1,
                number: Some(Secret::new(numbers[i % numbers.len()])),
                exp_month: Some(12),
                exp_year: Some(2030),
                cvc: Some(Secret::new("123")),
                name: None,
                iat,
                jti: jwe::new_jti().unwrap(),
            };
            Bytes::from(json!({ "card": jwe::seal_payload(key, &payload).unwrap() }).to_string())
        })
        .collect()
}

/// What a closed loop of `clients` connections measured.
struct Run {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// Closed loop over `jobs` (method, path, key, body), clients spread over `addrs`.
async fn saturate(
    addrs: &[SocketAddr],
    jobs: Vec<(&'static str, String, String, Option<Bytes>)>,
    clients: usize,
) -> Run {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = addrs[c % addrs.len()];
        let (jobs, next) = (jobs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut lat = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((m, path, key, body)) = jobs.get(i) else {
                    break;
                };
                let t = Instant::now();
                let (status, _) =
                    send(&mut sender, request(m, addr, path, key, body.clone())).await;
                errors += usize::from(status != 200);
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    Run {
        per_s: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        errors,
    }
}

/// One size on one backend with `instances` vault processes.
fn run_size(o: &Options, backend: &str, size: u64, instances: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let db_url = o
        .database_url
        .as_deref()
        .filter(|_| backend == "postgres")
        .map(|u| fresh_pg_database(u, &format!("cardseal_scale_{size}_{instances}")));
    let created = vault_cmd(db_url.as_deref())
        .args(["accounts", "create", "--data-dir", &data, "--name", "bench"])
        .args(["--allowed-origin", "http://127.0.0.1:*", "--json"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let account: Value = serde_json::from_slice(&created.stdout).unwrap();
    let (acct, pk, sk) = (
        account["account"]
            .as_str()
            .or(account["id"].as_str())
            .unwrap()
            .to_owned(),
        account["publishable_key"].as_str().unwrap().to_owned(),
        account["secret_key"].as_str().unwrap().to_owned(),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loaded = rt.block_on(async {
        let store: Arc<dyn Store> = match &db_url {
            Some(u) => Arc::new(PostgresStore::open(u).await.unwrap()),
            None => Arc::new(SqliteStore::open(dir.path()).unwrap()),
        };
        bulk_load(store.as_ref(), &acct, size).await
    });
    let mut batch_sorted = loaded.purge_batch_ms.clone();
    batch_sorted.sort_by(f64::total_cmp);
    let batch_max = batch_sorted.last().copied().unwrap_or(0.0);
    let batch_p50 = batch_sorted
        .get(batch_sorted.len() / 2)
        .copied()
        .unwrap_or(0.0);

    let vaults: Vec<(KillOnDrop, SocketAddr)> = (0..instances)
        .map(|_| serve(&data, db_url.as_deref()))
        .collect();
    let addrs: Vec<SocketAddr> = vaults.iter().map(|v| v.1).collect();
    let (tokens, cards, charges) = rt.block_on(async {
        let addr = addrs[0];
        let mut s = connect(addr).await;
        let (_, jwks) = send(
            &mut s,
            request("GET", addr, "/.well-known/jwks.json", &pk, None),
        )
        .await;
        let key = VaultKey::parse(std::str::from_utf8(&jwks).unwrap()).unwrap();
        let token_jobs = |n| {
            seal_bodies(&key, n)
                .into_iter()
                .map(|b| ("POST", "/v1/tokens".to_owned(), pk.clone(), Some(b)))
                .collect::<Vec<_>>()
        };
        saturate(&addrs, token_jobs(300), o.clients).await;
        let tokens = saturate(&addrs, token_jobs(o.requests), o.clients).await;

        // A card saved through the API, for charges (the loaded cards' keys are synthetic).
        let body = seal_bodies(&key, 1).pop().unwrap();
        let (_, tok) = send(&mut s, request("POST", addr, "/v1/tokens", &pk, Some(body))).await;
        let tok: Value = serde_json::from_slice(&tok).unwrap();
        let body = Bytes::from(json!({ "token": tok["id"] }).to_string());
        let (st, card) = send(&mut s, request("POST", addr, "/v1/cards", &sk, Some(body))).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&card));
        let card: Value = serde_json::from_slice(&card).unwrap();
        let charge = Bytes::from(
            json!({ "amount": 1000, "currency": "eur", "source": card["id"] }).to_string(),
        );
        let charges = saturate(
            &addrs,
            (0..o.requests / 2)
                .map(|_| {
                    (
                        "POST",
                        "/v1/charges".to_owned(),
                        sk.clone(),
                        Some(charge.clone()),
                    )
                })
                .collect(),
            o.clients,
        )
        .await;
        let mut ids = loaded.card_ids.clone();
        if ids.is_empty() {
            ids.push(card["id"].as_str().unwrap().to_owned());
        }
        let cards = saturate(
            &addrs,
            (0..o.requests)
                .map(|i| {
                    (
                        "GET",
                        format!("/v1/cards/{}", ids[i % ids.len()]),
                        sk.clone(),
                        None,
                    )
                })
                .collect(),
            o.clients,
        )
        .await;
        (tokens, cards, charges)
    });
    let rss_mib = vaults
        .iter()
        .map(|v| status_kib(v.0.0.id(), "VmRSS:"))
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    drop(vaults);
    let db_mib = match &db_url {
        Some(u) => pg_database_bytes(u),
        None => dir_bytes(dir.path()),
    } as f64
        / (1024.0 * 1024.0);
    println!(
        "{backend} x{instances} {size:>9} tokens: load {:.1} s; purge {} rows, batch p50 {batch_p50:.2} ms max {batch_max:.2} ms; \
         POST /v1/tokens {:.0}/s p50 {:.2} p99 {:.2} ms ({} errors); POST /v1/charges {:.0}/s p99 {:.2} ms ({} errors); \
         GET /v1/cards {:.0}/s p99 {:.2} ms ({} errors); database {db_mib:.1} MiB; vault RSS {rss_mib:.1} MiB",
        loaded.load_s,
        loaded.purge_rows,
        tokens.per_s,
        tokens.p50_ms,
        tokens.p99_ms,
        tokens.errors,
        charges.per_s,
        charges.p99_ms,
        charges.errors,
        cards.per_s,
        cards.p99_ms,
        cards.errors,
    );
    json!({
        "backend": backend, "instances": instances, "tokens": size, "cards": size.min(100_000),
        "load_s": loaded.load_s, "purge_rows": loaded.purge_rows, "purge_batches": loaded.purge_batch_ms.len(),
        "purge_batch_p50_ms": batch_p50, "purge_batch_max_ms": batch_max,
        "tokens_per_s": tokens.per_s, "tokens_p50_ms": tokens.p50_ms, "tokens_p99_ms": tokens.p99_ms, "token_errors": tokens.errors,
        "charges_per_s": charges.per_s, "charges_p99_ms": charges.p99_ms, "charge_errors": charges.errors,
        "cards_get_per_s": cards.per_s, "cards_get_p99_ms": cards.p99_ms, "card_errors": cards.errors,
        "db_mib": db_mib, "vault_rss_mib": rss_mib,
    })
}

fn main() {
    let o = options();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "cardseal-vault scale benchmark: {cores} cores, sizes {}, {} requests, {} clients",
        o.sizes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        o.requests,
        o.clients
    );
    let openssl = openssl_sign_per_sec(3);
    if let Some(v) = openssl {
        println!("openssl speed -seconds 3 rsa2048: {v:.0} sign/s (one core)");
    }
    let start = Instant::now();
    let mut runs = Vec::new();
    let mut plan = vec![("sqlite", 1)];
    if o.database_url.is_some() {
        plan.push(("postgres", 1));
        plan.push(("postgres", 2));
    }
    for (backend, instances) in plan {
        for &size in &o.sizes {
            let t = Instant::now();
            let mut r = run_size(&o, backend, size, instances);
            r["step_s"] = json!(t.elapsed().as_secs_f64());
            runs.push(r);
        }
    }
    println!(
        "BENCH_JSON {}",
        json!({ "cores": cores, "openssl_rsa2048_sign_per_s": openssl, "runs": runs, "total_s": start.elapsed().as_secs_f64() })
    );
}
