//! Seal latency: `cargo run --release --example seal_speed [iterations]`.
//!
//! Key import and seal (the `rsa` crate's RSA-OAEP-256, then AES-256-GCM) on one 2048-bit key.
//! Chromium figures come from `npm run bench`; these are for quick comparisons while working on
//! the core.
#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use cardseal::jwe::{Payload, VaultKey, new_jti, seal_payload};
use cardseal::{Error, Secret};

/// A 2048-bit key from `openssl genrsa 2048`, public half.
const KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyg52enDhbcN0lcJkm1I0
SxTY8nFfSj4TC2jA4lTlvakDeHPWea4ohEE8vDRz6ygSsJE/qPOyqmeDOgqMeqUb
5C9SCrCRIQ4cVPFfBfMFWh548amAhf97xqWBO3MoByRSA+XpItzDX8Sm9jPVRfhI
6wcXaD4CGqGJ5lTHwnoMBhEI1rl1zft4tinnx9Ki4o+83EhZgFNp7yzHuz/Ozohb
um7Q4rU8FKAEbYr1hLo/ZtdnD8AomhxrBkXvxbE6e9OgBnZkOhck3b/xcKz4Meyu
TfRTiBJ4geRMI0Va/Js3YqmYmGfvtHFUQs/6sBx3MgB6oUd9EZaIH2st2ZvQfFeQ
7QIDAQAB
-----END PUBLIC KEY-----
";

/// Runs `f` `iterations` times to warm up (wasm engines optimize hot code only after a while),
/// then 100 batches of `iterations / 100`, and returns the best batch's time per call: on a
/// shared machine the minimum is the least noisy figure.
fn time<T>(iterations: u32, mut f: impl FnMut() -> T) -> Duration {
    for _ in 0..iterations {
        black_box(f());
    }
    let batch = iterations / 100 + 1;
    (0..100)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            start.elapsed() / batch
        })
        .min()
        .unwrap_or_default()
}

fn main() -> Result<(), Error> {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let key = VaultKey::parse(KEY)?;
    let payload = Payload {
        v: 1,
        number: Some(Secret::new("4242424242424242")),
        exp_month: Some(12),
        exp_year: Some(2030),
        cvc: Some(Secret::new("123")),
        name: Some("A B".into()),
        iat: 1_763_860_000,
        jti: new_jti()?,
    };
    let rows = [
        (
            "key import (PEM)",
            time(iterations / 10 + 1, || VaultKey::parse(KEY)),
        ),
        ("seal", time(iterations, || seal_payload(&key, &payload))),
        ("jti", time(iterations, new_jti)),
    ];
    for (name, mean) in rows {
        println!("{name:<20} {:>9.1} µs", mean.as_secs_f64() * 1e6);
    }
    Ok(())
}
