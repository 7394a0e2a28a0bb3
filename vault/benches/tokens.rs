//! Token creation throughput and latency against the real `cardseal-vault` binary on loopback,
//! beside the machine's `openssl speed rsa2048` figure.
//!
//! `cargo bench -p cardseal-vault --bench tokens` (add `-- --requests 8000 --clients 64` etc.)
//!
//! 1. OpenSSL's RSA-2048 private-key operations per second (one core).
//! 2. Saturation: `--clients` keep-alive connections post pre-sealed cards (each `jti` can be
//!    used once) as fast as the vault answers: throughput, p50, p99.
//! 3. Half load: an open-loop client at half the target rate; latency counts from the moment
//!    a request was due, so a stalled vault cannot hide its queue.
//! 4. The vault's peak RSS (VmHWM).
//!
//! Target: throughput ≥ 80% × OpenSSL sign/s × cores the vault uses; p99 < 25 ms at half load.
//! The last line is the same figures as one JSON object, prefixed `BENCH_JSON `.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cardseal::Secret;
use cardseal::jwe::{self, Payload, VaultKey};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cardseal-vault");

/// The benchmark vault's master key (a throwaway data directory).
const BENCH_MASTER_KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";

/// Stops the vault even if the benchmark panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Options {
    requests: usize,
    clients: usize,
    workers: usize,
    half_seconds: f64,
    openssl_seconds: u32,
}

fn options() -> Options {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut o = Options {
        requests: 6000,
        clients: 32,
        workers: cores,
        half_seconds: 4.0,
        openssl_seconds: 3,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<f64>().ok());
        match args[i].as_str() {
            "--requests" => o.requests = value().expect("--requests N") as usize,
            "--clients" => o.clients = value().expect("--clients N") as usize,
            "--workers" => o.workers = value().expect("--workers N") as usize,
            "--half-seconds" => o.half_seconds = value().expect("--half-seconds S"),
            "--openssl-seconds" => o.openssl_seconds = value().expect("--openssl-seconds S") as u32,
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// `openssl speed -seconds S rsa2048`: RSA-2048 private-key (sign) operations per second.
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
    // The row has "rsa 2048 bits" where the header has nothing: three extra leading fields.
    let fields: Vec<&str> = row.split_whitespace().collect();
    fields.get(column + 3)?.parse().ok()
}

/// aws-lc-rs RSA-OAEP-256 decryptions per second on one thread: the vault's own RSA work,
/// with nothing around it.
fn aws_lc_decrypt_per_sec(seconds: f64) -> f64 {
    use aws_lc_rs::rsa::{
        KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
        PrivateDecryptingKey,
    };
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let public = OaepPublicEncryptingKey::new(private.public_key()).unwrap();
    let key = OaepPrivateDecryptingKey::new(private).unwrap();
    let mut ciphertext = vec![0u8; public.ciphertext_size()];
    let ciphertext = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, &[7u8; 32], &mut ciphertext, None)
        .unwrap()
        .to_vec();
    let mut out = vec![0u8; key.min_output_size()];
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < seconds {
        key.decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut out, None)
            .unwrap();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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

fn token_request(addr: SocketAddr, pk: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post("/v1/tokens")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {pk}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

async fn post(sender: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> u16 {
    sender.ready().await.unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    status
}

/// Pre-seals `n` cards (distinct `jti`s, distinct numbers) as request bodies.
fn seal_bodies(key: &VaultKey, n: usize) -> Vec<Bytes> {
    let numbers = [
        "4242424242424242",
        "5555555555554444",
        "4000056655665556",
        "2223003122003222",
        "6011111111111117",
    ];
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
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

/// Closed loop: `clients` connections, each sending its next request as soon as the last returns.
async fn saturate(
    addr: SocketAddr,
    pk: &str,
    bodies: Vec<Bytes>,
    clients: usize,
) -> (Duration, Vec<Duration>, usize) {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (bodies, next, pk) = (bodies.clone(), next.clone(), pk.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                if post(&mut sender, token_request(addr, &pk, body.clone())).await != 200 {
                    errors += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort();
    (elapsed, all, errors)
}

/// Open loop at `rate` per second; latency counts from when each request was due.
async fn open_loop(
    addr: SocketAddr,
    pk: &str,
    bodies: Vec<Bytes>,
    rate: f64,
    connections: usize,
) -> (Vec<Duration>, usize) {
    let (idle_tx, idle_rx) = async_channel(connections);
    for _ in 0..connections {
        idle_tx.send(connect(addr).await).await.unwrap();
    }
    let idle_rx = Arc::new(tokio::sync::Mutex::new(idle_rx));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (idle_tx, idle_rx, pk) = (idle_tx.clone(), idle_rx.clone(), pk.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut sender = idle_rx.lock().await.recv().await.unwrap();
            let ok = post(&mut sender, token_request(addr, &pk, body)).await == 200;
            let latency = due.elapsed();
            idle_tx.send(sender).await.unwrap();
            (latency, ok)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, ok) = t.await.unwrap();
        latencies.push(l);
        errors += usize::from(!ok);
    }
    latencies.sort();
    (latencies, errors)
}

fn async_channel<T>(n: usize) -> (tokio::sync::mpsc::Sender<T>, tokio::sync::mpsc::Receiver<T>) {
    tokio::sync::mpsc::channel(n)
}

fn main() {
    let o = options();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let vault_cores = o.workers.min(cores);
    println!(
        "cardseal-vault token benchmark: {cores} cores, vault workers {}, clients {}",
        o.workers, o.clients
    );

    let openssl = openssl_sign_per_sec(o.openssl_seconds);
    match openssl {
        Some(v) => println!(
            "openssl speed -seconds {} rsa2048: {v:.0} sign/s (one core)",
            o.openssl_seconds
        ),
        None => println!("openssl speed rsa2048: not available"),
    }

    let aws_lc = aws_lc_decrypt_per_sec(f64::from(o.openssl_seconds));
    println!(
        "aws-lc-rs RSA-OAEP-256 decrypt alone: {aws_lc:.0}/s (one core, {:.0} µs each)",
        1e6 / aws_lc
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let created = Command::new(BIN)
        .env("CARDSEAL_MASTER_KEY", BENCH_MASTER_KEY)
        .args([
            "accounts",
            "create",
            "--data-dir",
            data,
            "--name",
            "bench",
            "--allowed-origin",
            "http://127.0.0.1:*",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let account: Value = serde_json::from_slice(&created.stdout).unwrap();
    let pk = account["publishable_key"].as_str().unwrap().to_owned();
    let vault = Command::new(BIN)
        .env("CARDSEAL_MASTER_KEY", BENCH_MASTER_KEY)
        .args([
            "serve",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:0",
            "--key-rate",
            "0",
            "--ip-rate",
            "0",
            "--card-tokens-per-10m",
            "0",
        ])
        .args(["--workers", &o.workers.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut vault = KillOnDrop(vault);
    let pid = vault.0.id();
    let mut stdout = BufReader::new(vault.0.stdout.take().unwrap());
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the vault exited");
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            break a.parse().unwrap();
        }
    };

    // The client gets one thread: the vault should have the cores.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let mut sender = connect(addr).await;
        let jwks = sender
            .send_request(
                Request::get("/.well-known/jwks.json")
                    .header("host", addr.to_string())
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let key = VaultKey::parse(std::str::from_utf8(&jwks).unwrap()).unwrap();

        let warmup = seal_bodies(&key, 300);
        saturate(addr, &pk, warmup, o.clients).await;

        let bodies = seal_bodies(&key, o.requests);
        let cpu_before = cpu_seconds(pid);
        let (elapsed, latencies, errors) = saturate(addr, &pk, bodies, o.clients).await;
        let cpu = cpu_seconds(pid) - cpu_before;
        let throughput = latencies.len() as f64 / elapsed.as_secs_f64();
        let cpu_us_per_token = cpu * 1e6 / latencies.len() as f64;
        println!(
            "vault CPU: {cpu:.2} s over {:.2} s ({:.0}% of one core), {cpu_us_per_token:.0} µs per token, {:.0}% of it RSA",
            elapsed.as_secs_f64(),
            100.0 * cpu / elapsed.as_secs_f64(),
            100.0 * (1e6 / aws_lc) / cpu_us_per_token,
        );
        println!(
            "  so {vault_cores} idle cores would make {:.0} tokens/s",
            vault_cores as f64 * 1e6 / cpu_us_per_token
        );
        println!(
            "saturation: {} tokens in {:.2} s = {throughput:.0} tokens/s; p50 {:.2} ms, p99 {:.2} ms; {errors} errors",
            latencies.len(),
            elapsed.as_secs_f64(),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
        );

        let target = openssl.map(|s| 0.8 * s * vault_cores as f64);
        let half_rate = target.unwrap_or(throughput) / 2.0;
        let half_n = (half_rate * o.half_seconds).max(100.0) as usize;
        let bodies = seal_bodies(&key, half_n);
        let (vault_before, self_before, t) = (cpu_seconds(pid), cpu_seconds(std::process::id()), Instant::now());
        let (half, half_errors) = open_loop(addr, &pk, bodies, half_rate, o.clients).await;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  (half load CPU: vault {:.0}% of one core, load generator {:.0}%)",
            100.0 * (cpu_seconds(pid) - vault_before) / secs,
            100.0 * (cpu_seconds(std::process::id()) - self_before) / secs,
        );
        println!(
            "half load: {half_n} tokens at {half_rate:.0}/s (open loop): p50 {:.2} ms, p99 {:.2} ms; {half_errors} errors",
            ms(percentile(&half, 0.5)),
            ms(percentile(&half, 0.99)),
        );
        json!({
            "openssl_rsa2048_sign_per_s": openssl,
            "vault_cores": vault_cores,
            "target_tokens_per_s": target,
            "vault_cores_used_measured": cpu / elapsed.as_secs_f64(),
            "target_for_cores_used": openssl.map(|s| 0.8 * s * cpu / elapsed.as_secs_f64()),
            "tokens_per_s": throughput,
            "vault_cpu_us_per_token": cpu_us_per_token,
            "aws_lc_decrypt_per_s": aws_lc,
            "rsa_share_of_vault_cpu": (1e6 / aws_lc) / cpu_us_per_token,
            "projected_tokens_per_s_on_idle_cores": vault_cores as f64 * 1e6 / cpu_us_per_token,
            "p50_ms": ms(percentile(&latencies, 0.5)),
            "p99_ms": ms(percentile(&latencies, 0.99)),
            "errors": errors + half_errors,
            "half_load_per_s": half_rate,
            "half_load_p50_ms": ms(percentile(&half, 0.5)),
            "half_load_p99_ms": ms(percentile(&half, 0.99)),
        })
    });
    let rss = vm_hwm_kib(pid);
    drop(vault);
    let mut report = report;
    report["vault_peak_rss_mib"] = json!(rss.map(|k| k as f64 / 1024.0));
    if let Some(k) = rss {
        println!("vault peak RSS (VmHWM): {:.1} MiB", k as f64 / 1024.0);
    }
    if let (Some(target), Some(tput)) = (
        report["target_tokens_per_s"].as_f64(),
        report["tokens_per_s"].as_f64(),
    ) {
        let p99 = report["half_load_p99_ms"].as_f64().unwrap_or(f64::MAX);
        println!(
            "target: ≥ {target:.0} tokens/s (80% of OpenSSL × {vault_cores} cores): {} ({:.0}%); half-load p99 < 25 ms: {}",
            if tput >= target { "met" } else { "NOT met" },
            100.0 * tput / (target / 0.8),
            if p99 < 25.0 { "met" } else { "NOT met" },
        );
        report["target_met"] = json!(tput >= target && p99 < 25.0);
        // On a machine this small the load generator shares the vault's cores; judged against
        // the CPU the vault actually got, the same run reads:
        if let (Some(used), Some(t)) = (
            report["vault_cores_used_measured"].as_f64(),
            report["target_for_cores_used"].as_f64(),
        ) {
            println!(
                "  against the {used:.2} cores the vault actually got: ≥ {t:.0} tokens/s: {} ({:.0}%)",
                if tput >= t { "met" } else { "NOT met" },
                100.0 * tput / (t / 0.8),
            );
        }
    }
    println!("BENCH_JSON {report}");
}
