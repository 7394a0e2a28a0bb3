//! Shared test fixtures: an in-process vault with a movable clock, sealing helpers, a raw JWE
//! builder for hostile inputs, and a small HTTP client for the real-server tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey,
    PublicEncryptingKey,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use cardseal::Secret;
use cardseal::jwe::{self, Payload, VaultKey};
use cardseal_vault::accounts::{self, NewAccount};
use cardseal_vault::clock::{Clock, ManualClock};
use cardseal_vault::config::{Config, RateLimit};
use cardseal_vault::crypto::MasterKey;
use cardseal_vault::store::Store;
use cardseal_vault::store::postgres::PostgresStore;
use cardseal_vault::store::sqlite::{DB_FILE, SqliteStore};
use cardseal_vault::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A config with the rate limits off, so that only the rate-limit tests meet them.
pub fn unlimited() -> Config {
    Config {
        rate_per_key: RateLimit::OFF,
        rate_per_ip: RateLimit::OFF,
        rate_per_card: RateLimit::OFF,
        rate_declines: RateLimit::OFF,
        ..Config::default()
    }
}

/// An in-process vault with two accounts and a clock the test moves.
pub struct TestVault {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    /// The SQLite store, unless the tests run on PostgreSQL ([`TEST_DATABASE_URL`]).
    pub sqlite: Option<SqliteStore>,
    /// Allowed from `https://shop.example` and `http://127.0.0.1:*`.
    pub account: NewAccount,
    pub other: NewAccount,
    pub router: Router,
}

pub fn unix_now() -> i64 {
    cardseal_vault::clock::SystemClock.now()
}

impl TestVault {
    pub async fn new() -> Self {
        Self::with_config(unlimited()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (store, sqlite): (Arc<dyn Store>, _) = match database_url_for(dir.path()) {
            Some(url) => (Arc::new(PostgresStore::open(&url).await.unwrap()), None),
            None => {
                let s = SqliteStore::open(dir.path()).unwrap();
                (Arc::new(s.clone()), Some(s))
            }
        };
        // In the data directory, so that the CLI (`events verify`) opens the same vault.
        let master = MasterKey::load(None, dir.path()).unwrap();
        let clock = Arc::new(ManualClock::new(unix_now()));
        let state = AppState::new(config, Arc::clone(&store), master, clock.clone())
            .await
            .unwrap();
        let origins = [
            "https://shop.example".to_owned(),
            "http://127.0.0.1:*".to_owned(),
        ];
        let account = accounts::create_account(
            state.store(),
            state.master(),
            "shop",
            &origins,
            false,
            clock.now(),
        )
        .await
        .unwrap();
        let other = accounts::create_account(
            state.store(),
            state.master(),
            "other",
            &origins,
            false,
            clock.now(),
        )
        .await
        .unwrap();
        let router =
            app(state.clone()).layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 7], 40000))));
        Self {
            state,
            clock,
            dir,
            store,
            sqlite,
            account,
            other,
            router,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn jwks(&self) -> Value {
        self.state
            .keys()
            .jwks(self.now(), self.state.config().key_grace_secs)
    }

    /// The active key's JWK.
    pub fn jwk(&self) -> Value {
        self.jwks()["keys"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone()
    }

    pub fn vault_key(&self) -> VaultKey {
        VaultKey::parse(&self.jwks().to_string()).unwrap()
    }

    /// A card payload sealed now.
    pub fn payload(&self, number: &str, month: u8, year: u16, cvc: Option<&str>) -> Payload {
        card_payload(number, month, year, cvc, self.now())
    }

    /// Seals a card with the cardseal core.
    pub fn seal_card(&self, number: &str, cvc: &str) -> String {
        jwe::seal_payload(
            &self.vault_key(),
            &self.payload(number, 12, 2030, Some(cvc)),
        )
        .unwrap()
    }

    pub fn seal(&self, payload: &Payload) -> String {
        jwe::seal_payload(&self.vault_key(), payload).unwrap()
    }

    pub async fn call(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `/metrics` from the admin router (the public one has none).
    pub async fn metrics(&self) -> String {
        let response = cardseal_vault::admin_app(self.state.clone())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    pub async fn create_token(&self, key: &str, body: &Value) -> Reply {
        self.call(post_json("/v1/tokens", key, body)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(
            Request::get(path)
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

pub fn card_payload(number: &str, month: u8, year: u16, cvc: Option<&str>, iat: i64) -> Payload {
    Payload {
        v: 1,
        number: Some(Secret::new(number)),
        exp_month: Some(month),
        exp_year: Some(year),
        cvc: cvc.map(Secret::new),
        name: None,
        iat,
        jti: jwe::new_jti().unwrap(),
    }
}

pub fn post_json(path: &str, key: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, kind: &str, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let j = self.json();
        assert_eq!(j["error"]["type"], kind, "{j}");
        assert_eq!(j["error"]["code"], code, "{j}");
        assert!(
            j["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{j}"
        );
        let keys: Vec<_> = j["error"].as_object().unwrap().keys().cloned().collect();
        for k in ["type", "code", "param", "message", "request_id"] {
            assert!(keys.contains(&k.to_owned()), "{k} missing in {j}");
        }
    }
}

/// Key-management algorithms for hand-made JWEs.
#[derive(Clone, Copy)]
pub enum Alg {
    RsaOaep256,
    RsaOaep,
    Rsa15,
}

/// Builds a compact JWE by hand, with any header, so tests can send what cardseal never makes.
pub fn raw_jwe(header: &Value, jwk: &Value, alg: Alg, enc_128: bool, plaintext: &[u8]) -> String {
    let public = public_key(jwk);
    let rng = SystemRandom::new();
    let cek_len = if enc_128 { 16 } else { 32 };
    let mut cek = vec![0u8; cek_len];
    rng.fill(&mut cek).unwrap();
    let ek = match alg {
        Alg::RsaOaep256 | Alg::RsaOaep => {
            let key = OaepPublicEncryptingKey::new(public).unwrap();
            let mut out = vec![0u8; key.ciphertext_size()];
            let algorithm = if matches!(alg, Alg::RsaOaep256) {
                &OAEP_SHA256_MGF1SHA256
            } else {
                &OAEP_SHA1_MGF1SHA1
            };
            key.encrypt(algorithm, &cek, &mut out, None)
                .unwrap()
                .to_vec()
        }
        Alg::Rsa15 => {
            let key = Pkcs1PublicEncryptingKey::new(public).unwrap();
            let mut out = vec![0u8; key.ciphertext_size()];
            key.encrypt(&cek, &mut out).unwrap().to_vec()
        }
    };
    let header_b64 = B64.encode(header.to_string());
    let mut iv = [0u8; 12];
    rng.fill(&mut iv).unwrap();
    let key = LessSafeKey::new(
        UnboundKey::new(if enc_128 { &AES_128_GCM } else { &AES_256_GCM }, &cek).unwrap(),
    );
    let mut in_out = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header_b64.as_bytes()),
            &mut in_out,
        )
        .unwrap();
    format!(
        "{header_b64}.{}.{}.{}.{}",
        B64.encode(ek),
        B64.encode(iv),
        B64.encode(&in_out),
        B64.encode(tag.as_ref())
    )
}

/// The RSA public key of a JWK, via a DER RSAPublicKey (PKCS#1) built from `n` and `e`.
fn public_key(jwk: &Value) -> PublicEncryptingKey {
    fn der_len(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    fn der_int(bytes: &[u8], out: &mut Vec<u8>) {
        let mut v = bytes.to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        out.push(0x02);
        der_len(v.len(), out);
        out.extend(v);
    }
    let n = B64.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = B64.decode(jwk["e"].as_str().unwrap()).unwrap();
    let mut body = Vec::new();
    der_int(&n, &mut body);
    der_int(&e, &mut body);
    let mut pkcs1 = vec![0x30];
    der_len(body.len(), &mut pkcs1);
    pkcs1.extend(body);
    // SubjectPublicKeyInfo { rsaEncryption, NULL } wrapping the PKCS#1 key in a BIT STRING.
    let mut spki_body = vec![
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        0x03,
    ];
    der_len(pkcs1.len() + 1, &mut spki_body);
    spki_body.push(0);
    spki_body.extend(pkcs1);
    let mut der = vec![0x30];
    der_len(spki_body.len(), &mut der);
    der.extend(spki_body);
    PublicEncryptingKey::from_der(&der).unwrap()
}

/// A payload as JSON bytes, for [`raw_jwe`].
pub fn payload_json(number: &str, iat: i64) -> Vec<u8> {
    json!({"v": 1, "number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123", "iat": iat, "jti": jwe::new_jti().unwrap()})
        .to_string()
        .into_bytes()
}

/// Seals `payload` with the npm package `jose` (an independent JOSE implementation).
pub fn jose_seal(jwks: &Value, payload: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jose_encrypt.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(jwks.to_string())
        .arg(payload)
        .output()
        .expect("node must be installed (npm test installs it and the jose package)");
    assert!(
        out.status.success(),
        "jose_encrypt.mjs failed (run `npm install` at the repository root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Luhn-valid numbers: `prefix` padded with a counter to `len - 1` digits plus a check digit.
pub fn luhn_number(prefix: &str, len: usize, counter: u64) -> String {
    let mut body = prefix.to_owned();
    let pad = len - 1 - prefix.len();
    body.push_str(&format!("{counter:0pad$}"));
    let digits: Vec<u32> = body.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    body.push(char::from_digit((10 - sum % 10) % 10, 10).unwrap());
    body
}

/// A minimal HTTP/1.1 client for the real-server tests (one request per connection).
pub async fn http(addr: SocketAddr, req: Request<Body>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert("host", addr.to_string().parse().unwrap());
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// Serves `vault` on 127.0.0.1 with a real socket; returns the address.
pub async fn serve(vault: &TestVault) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(vault.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The vault binary, for the tests that run it as a process.
pub const BIN: &str = env!("CARGO_BIN_EXE_cardseal-vault");

/// A `cardseal-vault serve` child process on a free loopback port; killed on drop.
pub struct Server {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    /// What it printed before `listening on …` (e.g. the demo keys).
    pub stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The master key of the vaults [`spawn_server`] starts without `--demo`.
pub const SPAWNED_MASTER_KEY: &str =
    "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";

/// Starts `cardseal-vault serve --data-dir DATA --listen 127.0.0.1:0 EXTRA…` and waits until it
/// listens.
// The child is killed and waited for by `Server`'s `Drop`, also on panics.
#[allow(clippy::zombie_processes)]
pub fn spawn_server(data: &str, extra: &[&str]) -> Server {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut command = vault_command(data);
    // A vault outside --demo needs its master key from outside the data directory.
    if extra.contains(&"--demo") {
        command.env_remove("CARDSEAL_MASTER_KEY");
    } else {
        command.env("CARDSEAL_MASTER_KEY", SPAWNED_MASTER_KEY);
    }
    let mut child = command
        .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"])
        .args(extra)
        // Same test cards many times over: the card-testing limits have their own tests.
        .env("CARDSEAL_CARD_RATE", "0")
        .env("CARDSEAL_DECLINE_RATE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the server exited: {stdout:?}"
        );
        if let Some(a) = line.trim().strip_prefix("listening on http://") {
            let addr = a.parse().unwrap();
            return Server {
                child,
                addr,
                stdout,
            };
        }
        stdout.push(line.trim().to_owned());
    }
}

/// The value printed after `name` in a server's start-up lines (e.g. `secret_key`).
pub fn key_from(lines: &[String], name: &str) -> String {
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix(name)
                .map(|k| k.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("{name} missing in {lines:?}"))
}

/// Set to a PostgreSQL URL (`postgres://user@host:port/postgres`) to run the vault tests on
/// PostgreSQL instead of SQLite. Every data directory then gets a database of its own on that
/// server, `t_<hash of the directory>`, made on first use; `npm test` runs the suite both ways
/// against a throwaway cluster (`scripts/pg.sh`).
pub const TEST_DATABASE_URL: &str = "CARDSEAL_TEST_DATABASE_URL";

/// The PostgreSQL server the tests run on, if any.
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL)
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    test_database_url().is_some()
}

/// Says why a check of the SQLite file itself does not run on PostgreSQL.
pub fn sqlite_only(what: &str) {
    eprintln!("skipped on PostgreSQL: {what} (a check of the SQLite file)");
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// Runs `f` with a synchronous PostgreSQL client on a thread of its own (the `postgres` crate
/// starts a runtime, which cannot happen inside a test's runtime).
pub fn with_pg<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> T {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
        f(&mut client)
    })
    .join()
    .unwrap()
}

/// The database of the data directory `dir` when the tests run on PostgreSQL (made if
/// missing), else `None`: SQLite in `dir`.
pub fn database_url_for(dir: impl AsRef<Path>) -> Option<String> {
    let server = test_database_url()?;
    let path = std::fs::canonicalize(dir.as_ref()).unwrap_or_else(|_| dir.as_ref().to_owned());
    let hash = cardseal_vault::crypto::sha256(path.to_string_lossy().as_bytes());
    let name = format!("t_{}", hex::encode(&hash[..10]));
    let db = name.clone();
    with_pg(&server, move |c| {
        let exists = c
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
            .unwrap()
            .is_some();
        if !exists {
            // Two first uses at once: the loser's error is harmless.
            let _ = c.batch_execute(&format!("CREATE DATABASE {db}"));
        }
    });
    Some(with_database(&server, &name))
}

/// `cardseal-vault` with the environment that points it at `data`'s database: nothing for
/// SQLite (the file in the data directory), `CARDSEAL_DATABASE_URL` for PostgreSQL.
pub fn vault_command(data: impl AsRef<Path>) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    match database_url_for(data) {
        Some(url) => cmd.env("CARDSEAL_DATABASE_URL", url),
        None => cmd.env_remove("CARDSEAL_DATABASE_URL"),
    };
    cmd
}

/// Runs `sql` on the database of the data directory `dir`, whichever backend; the rows with
/// every value as text. For checks and edits the API cannot make.
pub fn db_query(dir: impl AsRef<Path>, sql: &str) -> Vec<Vec<Option<String>>> {
    if let Some(url) = database_url_for(dir.as_ref()) {
        let sql = sql.to_owned();
        return with_pg(&url, move |c| {
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
        });
    }
    use rusqlite::types::ValueRef;
    let db = rusqlite::Connection::open(dir.as_ref().join(DB_FILE)).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(v) => Some(v.to_string()),
                        ValueRef::Real(v) => Some(v.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// The first value of the first row of `sql`, as a number (e.g. a `count(*)`).
pub fn db_number(dir: impl AsRef<Path>, sql: &str) -> i64 {
    db_query(dir, sql)[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// Where PostgreSQL's programs (`pg_dump`, `pg_ctl`) are, as `scripts/pg.sh bindir` finds them.
pub fn pg_bindir() -> std::path::PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");
    let out = std::process::Command::new("bash")
        .args([script, "bindir"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PostgreSQL's programs are not installed"
    );
    String::from_utf8(out.stdout).unwrap().trim().into()
}
