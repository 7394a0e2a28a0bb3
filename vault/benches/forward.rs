//! `POST /v1/forward` round trip beside a direct call to the same fake processor (an https
//! server on loopback, tests/support/fake_processor.rs), one request at a time: p50 and p99.
//!
//! `cargo bench -p cardseal-vault --bench forward` (add `-- --requests 1000`)
//!
//! The vault opens a new TLS connection per forward (it checks the destination's address each
//! time and keeps no pool), so the direct call does the same: new TCP and TLS connection, one
//! request. The merchant's side keeps one connection to the vault open, as a server would.
//! Target: at most 2 ms of overhead at p50. The last line is the figures as JSON, prefixed
//! `BENCH_JSON `.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/helpers.rs"]
mod support;

#[path = "../tests/support/fake_processor.rs"]
mod fake_processor;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cardseal_vault::config::Config;
use cardseal_vault::forward::set_forward_hosts;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::json;
use support::{TestVault, post_json, unlimited};

fn pct(xs: &[f64], p: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s[((p * s.len() as f64) as usize).min(s.len() - 1)]
}

const BODY: &str = r#"{"pan":"4242424242424242","exp":"03/31","name":"Bench"}"#;

/// On a runtime worker, as the vault's own outbound call runs: the main task is not one.
async fn direct(tls: &tokio_rustls::TlsConnector, port: u16) -> Duration {
    let tls = tls.clone();
    tokio::spawn(async move { direct_call(&tls, port).await })
        .await
        .unwrap()
}

async fn direct_call(tls: &tokio_rustls::TlsConnector, port: u16) -> Duration {
    let t0 = Instant::now();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let r = sender
        .send_request(
            Request::post("/pay")
                .header("host", format!("localhost:{port}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.into_body().collect().await.unwrap();
    let took = t0.elapsed();
    driver.abort();
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests: usize = std::env::args()
        .skip_while(|a| a != "--requests")
        .nth(1)
        .map_or(500, |n| n.parse().unwrap());
    let fake = fake_processor::fake().await;
    let v = TestVault::with_config(Config {
        forward: Config::default()
            .forward
            .with_allow_private(true)
            .with_ca_pem(fake.ca_pem.as_bytes())
            .unwrap(),
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
    // A saved card, forwarded without its CVC, can go any number of times.
    let tok = v
        .create_token(
            &v.account.publishable_key,
            &json!({"card": v.seal_card("4242424242424242", "123")}),
        )
        .await
        .json()["id"]
        .clone();
    let card = v
        .call(post_json(
            "/v1/cards",
            &v.account.secret_key,
            &json!({"token": tok}),
        ))
        .await
        .json()["id"]
        .clone();
    let addr = support::serve(&v).await;

    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(fake.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ));

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut vault, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let forward_body = json!({
        "source": card,
        "destination": fake.url("/pay"),
        "headers": {"Content-Type": "application/json"},
        "body": r#"{"pan":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year2}}","name":"Bench"}"#,
    })
    .to_string();
    let forward = |vault: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>| {
        let req = Request::post("/v1/forward")
            .header("host", addr.to_string())
            .header("authorization", format!("Bearer {}", v.account.secret_key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(forward_body.clone())))
            .unwrap();
        let sent = vault.send_request(req);
        async move {
            let t0 = Instant::now();
            let r = sent.await.unwrap();
            assert_eq!(r.status(), 200);
            r.into_body().collect().await.unwrap();
            t0.elapsed()
        }
    };

    for _ in 0..50 {
        direct(&tls, fake.port).await;
        vault.ready().await.unwrap();
        forward(&mut vault).await;
    }
    let (mut d, mut f) = (Vec::new(), Vec::new());
    // Interleaved, so that both see the same machine.
    for _ in 0..requests {
        d.push(direct(&tls, fake.port).await.as_secs_f64() * 1000.0);
        vault.ready().await.unwrap();
        f.push(forward(&mut vault).await.as_secs_f64() * 1000.0);
    }
    let (d50, d99, f50, f99) = (pct(&d, 0.5), pct(&d, 0.99), pct(&f, 0.5), pct(&f, 0.99));
    println!("forward benchmark: {requests} sequential requests each, fake processor on loopback");
    println!("  direct call (new TLS connection)  p50 {d50:.3} ms  p99 {d99:.3} ms");
    println!("  POST /v1/forward                  p50 {f50:.3} ms  p99 {f99:.3} ms");
    println!(
        "  overhead                          p50 {:.3} ms  p99 {:.3} ms  (target p50 <= 2 ms)",
        f50 - d50,
        f99 - d99
    );
    println!(
        "BENCH_JSON {}",
        json!({"requests": requests, "direct_p50_ms": d50, "direct_p99_ms": d99,
               "forward_p50_ms": f50, "forward_p99_ms": f99,
               "overhead_p50_ms": f50 - d50, "overhead_p99_ms": f99 - d99})
    );
}
