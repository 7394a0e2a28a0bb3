//! Does the vault's unseal take the same time whichever way a sealed card is bad? dudect's method
//! (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?", 2017): many measurements of
//! two classes of input, interleaved at random, and Welch's t-test on the two distributions.
//! |t| above 4.5 is the usual sign of a leak; below it, none was seen at this sample size.
//!
//! `cargo bench -p cardseal-vault --bench unseal_timing` (`-- --measurements N` per pair,
//! `-- --record` to write the figures and the machine into SECURITY.md's Conformance section).
//!
//! The model is the Marvin attack (RUSTSEC-2023-0071, the `rsa` crate's non-constant-time
//! decryption, why the vault decrypts with aws-lc-rs): an attacker who can tell a bad OAEP
//! padding from a good one, by time, has a decryption oracle. Two pairs, each through
//! `unseal::unseal` with a real key ring:
//!
//! 1. a valid sealed card against one whose encrypted key has a bad OAEP padding;
//! 2. a bad padding against a good padding with a wrong GCM tag, the pair an attacker would
//!    use (both fail, with the one opaque error).
//!
//! A bad padding is, at random, one of: a random encoded message (lHash and separator wrong),
//! one whose first byte is not zero, or a well-formed OAEP encoding under another label. The
//! figures are printed, never asserted; the last line is a JSON object prefixed `BENCH_JSON `.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cardseal::Secret;
use cardseal::jwe::{self, Payload, VaultKey};
use cardseal_vault::crypto::MasterKey;
use cardseal_vault::ids::random_bytes;
use cardseal_vault::keys::KeyRing;
use cardseal_vault::store::sqlite::SqliteStore;
use cardseal_vault::unseal::{self, UnsealError};
use rsa::BoxedUint;
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// Distinct inputs per class; each measurement draws one at random.
const POOL: usize = 256;

/// A small fast generator for the class and pool draws (not for keys).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

/// Welch's t and the two classes' means.
#[derive(Debug, Clone, Copy)]
struct Welch {
    n: [usize; 2],
    mean_us: [f64; 2],
    t: f64,
}

fn welch(samples: &[(usize, f64)], below: f64) -> Welch {
    let mut n = [0usize; 2];
    let mut sum = [0f64; 2];
    let mut sq = [0f64; 2];
    for &(class, x) in samples.iter().filter(|(_, x)| *x <= below) {
        n[class] += 1;
        sum[class] += x;
        sq[class] += x * x;
    }
    let count = |c: usize| n[c] as f64;
    let mean = |c: usize| sum[c] / count(c);
    let var = |c: usize| (sq[c] - sum[c] * sum[c] / count(c)) / (count(c) - 1.0);
    let t = (mean(0) - mean(1)) / (var(0) / count(0) + var(1) / count(1)).sqrt();
    Welch {
        n,
        mean_us: [mean(0) / 1e3, mean(1) / 1e3],
        t,
    }
}

fn percentile(samples: &[(usize, f64)], p: f64) -> f64 {
    let mut xs: Vec<f64> = samples.iter().map(|s| s.1).collect();
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p) as usize]
}

/// One pair: `measurements` unseals, each of a random class's random input.
fn measure(
    ring: &KeyRing,
    now: i64,
    classes: [&[String]; 2],
    measurements: usize,
    rng: &mut SplitMix,
    expect: [bool; 2],
) -> Vec<(usize, f64)> {
    // Warm-up: caches, branch predictors, the CPU's clock.
    for i in 0..2000 {
        let class = i % 2;
        let _ = black_box(unseal::unseal(ring, &classes[class][i % POOL], now, 0));
    }
    let mut samples = Vec::with_capacity(measurements);
    for _ in 0..measurements {
        let class = rng.below(2);
        let input = &classes[class][rng.below(POOL)];
        let start = Instant::now();
        let result = black_box(unseal::unseal(ring, black_box(input), now, 0));
        let ns = start.elapsed().as_nanos() as f64;
        // Each input does what its class says, or the figures mean nothing.
        assert_eq!(result.is_ok(), expect[class]);
        if let Err(e) = result {
            assert_eq!(e, UnsealError::Opaque);
        }
        samples.push((class, ns));
    }
    samples
}

struct Keys {
    vault: VaultKey,
    rsa: rsa::PublicKey,
    aws: OaepPublicEncryptingKey,
}

fn keys(jwks: &Value) -> Keys {
    let jwk = &jwks["keys"][0];
    let int = |name: &str| {
        BoxedUint::from_be_slice_vartime(
            &URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap(),
        )
    };
    let rsa = rsa::PublicKey::new(int("n"), int("e")).unwrap();
    let spki = rsa.to_public_key_der().unwrap();
    let aws = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(spki.as_bytes()).unwrap())
        .unwrap();
    Keys {
        vault: VaultKey::from_jwks(&jwks.to_string(), None).unwrap(),
        rsa,
        aws,
    }
}

fn payload(i: usize) -> Payload {
    Payload {
        v: 1,
        number: Some(Secret::new("4242424242424242")),
        exp_month: Some(12),
        exp_year: Some(2030),
        cvc: Some(Secret::new("123")),
        name: None,
        iat: 1_763_860_000 + i64::try_from(i).unwrap(),
        jti: jwe::new_jti().unwrap(),
    }
}

/// A sealed card with its encrypted key replaced.
fn with_encrypted_key(jwe: &str, ek: &[u8]) -> String {
    let mut s: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    s[1] = URL_SAFE_NO_PAD.encode(ek);
    s.join(".")
}

/// A sealed card whose encrypted key does not decode as OAEP, in one of three ways.
fn bad_padding(keys: &Keys, i: usize, rng: &mut SplitMix) -> String {
    let jwe = jwe::seal_payload(&keys.vault, &payload(i)).unwrap();
    let k = keys.aws.ciphertext_size();
    let kind = i % 3;
    let ek = match kind {
        // Raw RSA of a chosen encoded message: random after a zero byte, or with a first byte
        // that is not zero (still below n: n's top byte is at least 0x80).
        0 | 1 => {
            let mut em = vec![0u8; k];
            for b in &mut em {
                *b = rng.next() as u8;
            }
            em[0] = if kind == 0 {
                0
            } else {
                1 + (rng.next() % 0x7f) as u8
            };
            let precision = keys.rsa.n().as_ref().bits_precision();
            let m = BoxedUint::from_be_slice(&em, precision).unwrap();
            let c = rsa::hazmat::rsa_encrypt(&keys.rsa, &m).unwrap();
            let bytes = c.to_be_bytes();
            bytes[bytes.len() - k..].to_vec()
        }
        // A well-formed encoding of a 32-byte key under a label the vault does not use.
        _ => {
            let mut out = vec![0u8; k];
            keys.aws
                .encrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    &random_bytes::<32>(),
                    &mut out,
                    Some(b"not the empty label"),
                )
                .unwrap()
                .to_vec()
        }
    };
    with_encrypted_key(&jwe, &ek)
}

/// A sealed card with one bit of its tag flipped.
fn wrong_tag(keys: &Keys, i: usize) -> String {
    let jwe = jwe::seal_payload(&keys.vault, &payload(i)).unwrap();
    let mut s: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let mut tag = URL_SAFE_NO_PAD.decode(&s[4]).unwrap();
    tag[i % 16] ^= 1 << (i % 8);
    s[4] = URL_SAFE_NO_PAD.encode(tag);
    s.join(".")
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    format!("{model}, {cores} cores, load average {load} at the start")
}

/// Writes `block` between SECURITY.md's `<!-- conformance:timing -->` markers.
fn record(block: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../SECURITY.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        "<!-- conformance:timing -->\n",
        "<!-- /conformance:timing -->",
    );
    let from = text.find(start).expect("no timing block in SECURITY.md") + start.len();
    let to = text[from..].find(end).unwrap() + from;
    let mut out = text[..from].to_owned();
    out.push_str(block);
    out.push_str(&text[to..]);
    std::fs::write(&path, out).unwrap();
    println!("wrote the figures into {}", path.display());
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let measurements = args
        .iter()
        .position(|a| a == "--measurements")
        .and_then(|i| args.get(i + 1))
        .map_or(20_000, |n| n.parse().expect("--measurements N"));
    let record_it = args.iter().any(|a| a == "--record");
    let machine = machine();

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let master = MasterKey::random();
    let now = 1_763_860_000;
    let ring = KeyRing::load(&store, &master, now).await.unwrap();
    let keys = keys(&ring.jwks(now, 0));

    let mut rng = SplitMix(u64::from_le_bytes(random_bytes::<8>()));
    let valid: Vec<String> = (0..POOL)
        .map(|i| jwe::seal_payload(&keys.vault, &payload(i)).unwrap())
        .collect();
    let bad: Vec<String> = (0..POOL).map(|i| bad_padding(&keys, i, &mut rng)).collect();
    let tag: Vec<String> = (0..POOL).map(|i| wrong_tag(&keys, i)).collect();

    println!("unseal timing, dudect's Welch t-test ({machine})");
    println!("{measurements} measurements per pair, classes interleaved at random");
    let pairs = [
        (
            "valid",
            "bad OAEP padding",
            [&valid[..], &bad[..]],
            [true, false],
        ),
        (
            "bad OAEP padding",
            "good padding, wrong tag",
            [&bad[..], &tag[..]],
            [false, false],
        ),
    ];
    let mut results = Vec::new();
    for (a, b, classes, expect) in pairs {
        let samples = measure(&ring, now, classes, measurements, &mut rng, expect);
        // dudect also tests the fastest part of the distribution alone: the slow tail is mostly
        // the machine (interrupts, other processes), and cropping it sharpens the test.
        let all = welch(&samples, f64::INFINITY);
        let cropped = welch(&samples, percentile(&samples, 0.9));
        println!(
            "{a:>18} vs {b:<24} means {:.1} / {:.1} µs  |t| = {:.2} (all), {:.2} (fastest 90%)",
            all.mean_us[0],
            all.mean_us[1],
            all.t.abs(),
            cropped.t.abs()
        );
        results.push((a, b, all, cropped));
    }

    let json = json!({
        "machine": machine,
        "measurements_per_pair": measurements,
        "pairs": results.iter().map(|(a, b, all, cropped)| json!({
            "a": a, "b": b, "n": all.n, "mean_us": all.mean_us,
            "t_all": all.t.abs(), "t_fastest_90": cropped.t.abs(),
        })).collect::<Vec<_>>(),
    });

    let mut block = format!(
        "Measured by `cargo bench -p cardseal-vault --bench unseal_timing -- --record` on {machine}, \
         {measurements} measurements per pair:\n\n\
         | pair | mean (µs) | \\|t\\|, all | \\|t\\|, fastest 90% |\n| --- | ---: | ---: | ---: |\n"
    );
    for (a, b, all, cropped) in &results {
        writeln!(
            block,
            "| {a} vs {b} | {:.1} / {:.1} | {:.2} | {:.2} |",
            all.mean_us[0],
            all.mean_us[1],
            all.t.abs(),
            cropped.t.abs()
        )
        .unwrap();
    }
    if record_it {
        record(&block);
    }
    println!("BENCH_JSON {json}");
}
