//! `cargo bench -p cardseal-vault --bench migrate`: `export` and `import` throughput with the
//! real (release) binary, 5,000 saved cards from a SQLite vault A to a SQLite vault B, beside
//! the RSA limit (the import's one RSA-2048 decrypt per card): aws-lc-rs RSA-OAEP decrypts per
//! second on one core, as measured in the same run.
//!
//! The last line is the figures as one JSON object, prefixed `BENCH_JSON `. Figures are
//! printed, never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cardseal::Secret;
use cardseal::card::{Card, CardInput, Today};
use cardseal_vault::Principal;
use cardseal_vault::crypto::{AccountKeys, MasterKey, WrappedAccountKeys};
use cardseal_vault::domain::card::{self, NewCard};
use cardseal_vault::domain::plain::summary;
use cardseal_vault::store::sqlite::SqliteStore;
use cardseal_vault::store::{self, IssuerInfo, KeyKind, TxError};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cardseal-vault");
const MASTER: &str = "6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d";

fn vault(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .env("CARDSEAL_MASTER_KEY", MASTER)
        .env("CARDSEAL_DATA_DIR", dir)
        .env_remove("CARDSEAL_DATABASE_URL")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn luhn(counter: u64) -> String {
    let body = format!("4{counter:014}");
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

async fn bulk(dir: &Path, account: &str, n: usize) {
    let store = SqliteStore::open(dir).unwrap();
    let master = MasterKey::parse(MASTER).unwrap();
    let acct = account.to_owned();
    let r = store::read(&store, move |tx| tx.account(&acct))
        .await
        .unwrap()
        .unwrap();
    let keys = AccountKeys::unwrap(
        &master,
        &r.id,
        &WrappedAccountKeys {
            data_key: r.wrapped_data_key,
            fingerprint_key: r.wrapped_fingerprint_key,
        },
    )
    .unwrap();
    let principal = Principal {
        account_id: r.id,
        kind: KeyKind::Secret,
        scopes: vec![],
        origins: vec![],
        keys,
        key_ref: "bench".into(),
        expires_at: None,
    };
    store::write_or_abort(&store, move |tx| {
        for i in 0..n {
            let number = luhn(i as u64);
            let parsed = Card::parse(
                &CardInput {
                    number: Secret::new(&number),
                    exp_month: "12".into(),
                    exp_year: "2034".into(),
                    cvc: None,
                    name: None,
                },
                Today::new(2026, 1),
            )
            .unwrap();
            card::insert(
                tx,
                &principal,
                NewCard {
                    summary: summary(&principal, &parsed),
                    number: &Secret::new(&number),
                    name: None,
                    cvc: None,
                    customer: Some(format!("cus_{i}")),
                    metadata: "{}".into(),
                    issuer: IssuerInfo::default(),
                },
                1_700_000_000,
            )?;
        }
        Ok::<_, TxError<cardseal_vault::error::ApiError>>(())
    })
    .await
    .map_err(|_| "bulk insert failed")
    .unwrap();
}

/// aws-lc-rs RSA-OAEP-256 decryptions per second on one thread.
fn rsa_decrypt_per_sec(seconds: f64) -> f64 {
    use aws_lc_rs::rsa::{
        KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
        PrivateDecryptingKey,
    };
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let public = OaepPublicEncryptingKey::new(private.public_key()).unwrap();
    let key = OaepPrivateDecryptingKey::new(private).unwrap();
    let mut ct = vec![0u8; public.ciphertext_size()];
    let ct = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, &[7u8; 32], &mut ct, None)
        .unwrap()
        .to_vec();
    let mut out = vec![0u8; key.min_output_size()];
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < seconds {
        key.decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut out, None)
            .unwrap();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("CARDSEAL_BENCH_MIGRATE_CARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let acct = |dir: &Path| -> String {
        let out = vault(dir, &["accounts", "create", "--name", "bench", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["account"].as_str().unwrap().to_owned()
    };
    let (acct_a, acct_b) = (acct(&a), acct(&b));
    bulk(&a, &acct_a, n).await;
    let jwks = root.path().join("import.jwks");
    let out = vault(&b, &["keys", "export-jwks", "--purpose", "import"]);
    std::fs::write(&jwks, &out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let thumb = stderr
        .split_whitespace()
        .skip_while(|w| *w != "thumbprint")
        .nth(1)
        .unwrap()
        .to_owned();
    let signing = root.path().join("signing.jwks");
    std::fs::write(
        &signing,
        vault(&a, &["keys", "export-jwks", "--purpose", "export-signing"]).stdout,
    )
    .unwrap();
    let file = root.path().join("export.jsonl");
    let manifest = root.path().join("export.jsonl.manifest.json");
    let (jwks, file_s, manifest_s, signing_s) = (
        jwks.to_str().unwrap(),
        file.to_str().unwrap(),
        manifest.to_str().unwrap(),
        signing.to_str().unwrap(),
    );

    let t = Instant::now();
    vault(
        &a,
        &[
            "export",
            "--account",
            &acct_a,
            "--to-jwks",
            jwks,
            "--pin-thumbprint",
            &thumb,
            "--out",
            file_s,
        ],
    );
    let export_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    vault(
        &b,
        &[
            "import",
            "--account",
            &acct_b,
            "--in",
            file_s,
            "--manifest",
            manifest_s,
            "--verify-key",
            signing_s,
        ],
    );
    let import_s = t.elapsed().as_secs_f64();
    let rsa = rsa_decrypt_per_sec(2.0);
    let export_per_s = n as f64 / export_s;
    let import_per_s = n as f64 / import_s;
    println!("{n} cards, whole commands (start-up included), one process each");
    println!("export: {export_per_s:.0} cards/s ({export_s:.2} s)");
    println!("import: {import_per_s:.0} cards/s ({import_s:.2} s)");
    println!("aws-lc-rs RSA-2048 OAEP decrypt: {rsa:.0}/s on one core (the import's limit)");
    let report = json!({
        "cards": n,
        "export_cards_per_s": export_per_s,
        "import_cards_per_s": import_per_s,
        "rsa_decrypt_per_s_one_core": rsa,
        "target_cards_per_s": 1000,
    });
    println!("BENCH_JSON {report}");
}
