//! Running the vault in production: master-key custody, `keys rotate-master`, TLS, the
//! loopback rule, a full disk, and the admin metrics. Each test starts and stops the real
//! binary.

#[path = "support/helpers.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use cardseal::jwe::{self, VaultKey};
use cardseal_vault::crypto::MasterKey;
use cardseal_vault::store::sqlite::SqliteStore;
use cardseal_vault::store::{self, WrappedKeyRecord};
use serde_json::{Value, json};
use support::{BIN, card_payload, http, key_from, post_json, unix_now};

const OLD_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vault(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CARDSEAL_MASTER_KEY")
        .env("CARDSEAL_CARD_RATE", "0")
        .env("CARDSEAL_DECLINE_RATE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    vault(args, env).stdin(Stdio::null()).output().unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[track_caller]
fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "it started");
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Starts `serve` and waits for `listening on http(s)://`.
// `Server`'s drop kills and waits for the child; a failed start panics with it still running
// only until the test process exits.
#[allow(clippy::zombie_processes)]
fn serve(data: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = vault(&["serve", "--data-dir", data], env)
        .args(extra)
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
        let line = line.trim().to_owned();
        if let Some(a) = line
            .strip_prefix("listening on http://")
            .or_else(|| line.strip_prefix("listening on https://"))
        {
            let addr = a.parse().unwrap();
            return Server {
                child,
                addr,
                stdout,
            };
        }
        stdout.push(line);
    }
}

fn write_key_file(path: &Path, key: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{key}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn get(path: &str, key: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    r.body(Body::empty()).unwrap()
}

#[test]
fn serve_without_a_master_key_refuses_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let err = refused(&run(
        &["serve", "--data-dir", data, "--listen", "127.0.0.1:0"],
        &[],
    ));
    for hint in [
        "CARDSEAL_MASTER_KEY",
        "--master-key-file",
        "--master-key-command",
        "--demo",
    ] {
        assert!(err.contains(hint), "{hint} missing in {err}");
    }
    assert!(!Path::new(data).exists(), "a refused start left files");
    // Nor do other commands make a key beside the data.
    let err = refused(&run(
        &["accounts", "create", "--data-dir", data, "--name", "x"],
        &[],
    ));
    assert!(err.contains("no master key"), "{err}");

    // The demo keeps one in the data directory; after that a plain serve points at it.
    drop(serve(data, &["--demo", "--listen", "127.0.0.1:0"], &[]));
    assert!(Path::new(data).join("master.key").exists());
    let err = refused(&run(
        &["serve", "--data-dir", data, "--listen", "127.0.0.1:0"],
        &[],
    ));
    assert!(err.contains("move it"), "{err}");
    // Two sources at once are one too many.
    let err = refused(&run(
        &[
            "serve",
            "--data-dir",
            data,
            "--master-key-command",
            "true",
            "--listen",
            "127.0.0.1:0",
        ],
        &[("CARDSEAL_MASTER_KEY", OLD_KEY)],
    ));
    assert!(err.contains("only one"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_file_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data");
    let data = data_path.to_str().unwrap();
    std::fs::create_dir(&data_path).unwrap();
    let key_file = dir.path().join("master.key");
    write_key_file(&key_file, OLD_KEY, 0o644);
    let file = key_file.to_str().unwrap();
    let create = [
        "accounts",
        "create",
        "--data-dir",
        data,
        "--name",
        "shop",
        "--json",
    ];

    let err = refused(&run(
        &[&create[..], &["--master-key-file", file]].concat(),
        &[],
    ));
    assert!(err.contains("chmod 600"), "{err}");
    let inside = data_path.join("key");
    write_key_file(&inside, OLD_KEY, 0o600);
    let err = refused(&run(
        &[
            &create[..],
            &["--master-key-file", inside.to_str().unwrap()],
        ]
        .concat(),
        &[],
    ));
    assert!(err.contains("inside the data directory"), "{err}");
    std::fs::remove_file(&inside).unwrap();

    write_key_file(&key_file, OLD_KEY, 0o600);
    let account: Value = serde_json::from_str(&ok(&run(
        &[&create[..], &["--master-key-file", file]].concat(),
        &[],
    )))
    .unwrap();
    let sk = account["secret_key"].as_str().unwrap();

    // A command that prints the same key opens the same vault; the shell is not involved.
    let cmd = format!("cat {file}");
    let server = serve(
        data,
        &["--master-key-command", &cmd, "--listen", "127.0.0.1:0"],
        &[],
    );
    let r = http(server.addr, get("/v1/cards", Some(sk))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    drop(server);

    // A failing command stops the start with its status, never its output.
    let script = dir.path().join("kms.sh");
    std::fs::write(&script, "#!/bin/sh\necho secret-ish-output\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = refused(&run(
        &[
            "serve",
            "--data-dir",
            data,
            "--master-key-command",
            script.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    ));
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(!err.contains("secret-ish-output"), "{err}");
    // Another key does not open this vault.
    let err = refused(&run(
        &["serve", "--data-dir", data, "--listen", "127.0.0.1:0"],
        &[("CARDSEAL_MASTER_KEY", &"02".repeat(32))],
    ));
    assert!(err.contains("master key"), "{err}");
}

#[test]
fn a_listen_address_off_loopback_needs_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let env = [("CARDSEAL_MASTER_KEY", OLD_KEY)];
    let err = refused(&run(
        &["serve", "--data-dir", data, "--listen", "0.0.0.0:0"],
        &env,
    ));
    assert!(err.contains("--tls-cert"), "{err}");
    assert!(err.contains("--tls-terminated-upstream"), "{err}");
    let server = serve(
        data,
        &["--listen", "0.0.0.0:0", "--tls-terminated-upstream"],
        &env,
    );
    assert!(server.addr.ip().is_unspecified());
}

/// A CA and a leaf for 127.0.0.1 and localhost signed by it, as PEM.
struct Pki {
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cardseal test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            ca: rcgen::Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM, certificate DER) of a new leaf named `cn`.
    fn leaf(&self, cn: &str) -> (String, String, Vec<u8>) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

fn openssl_connects(addr: SocketAddr, version: &str, ca: &Path) -> bool {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), version])
        // Let the client offer old versions at all, so that a refusal is the vault's.
        .args(["-cipher", "DEFAULT@SECLEVEL=0", "-CAfile"])
        .arg(ca)
        .args(["-verify_return_error", "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed");
    drop(child.stdin.take());
    child.wait().unwrap().success()
}

/// GET /healthz over TLS trusting only `ca_pem`: the leaf certificate the vault showed, and
/// the response head.
async fn https_get(addr: SocketAddr, ca_pem: &str) -> (Vec<u8>, String) {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    (leaf, String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_only_with_hsts_and_sighup_reload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pki = Pki::new();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let (cert_pem, key_pem, first_der) = pki.leaf("first");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();

    let server = serve(
        data.to_str().unwrap(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("CARDSEAL_MASTER_KEY", OLD_KEY)],
    );
    assert!(
        !openssl_connects(server.addr, "-tls1_1", &ca),
        "TLS 1.1 accepted"
    );
    assert!(openssl_connects(server.addr, "-tls1_2", &ca));
    assert!(openssl_connects(server.addr, "-tls1_3", &ca));

    let (leaf, head) = https_get(server.addr, &pki.ca_pem).await;
    assert_eq!(leaf, first_der);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{head}"
    );
    // Plain HTTP on the TLS port gets nowhere.
    let mut plain = std::net::TcpStream::connect(server.addr).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // A renewed certificate: swap the files, SIGHUP, and new connections get it.
    let (cert_pem, key_pem, second_der) = pki.leaf("second");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut served = Vec::new();
    for _ in 0..200 {
        served = https_get(server.addr, &pki.ca_pem).await.0;
        if served == second_der {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(served, second_der, "the reloaded certificate is not served");
}

/// Which of `old` and `new` opens each wrapped key in the data directory: (under old, under
/// new, rows).
async fn wrapped_under(data: &Path, old: &str, new: &str) -> (usize, usize, usize) {
    let store = SqliteStore::open(data).unwrap();
    let rows: Vec<WrappedKeyRecord> = store::read(&store, |tx| tx.wrapped_keys()).await.unwrap();
    let (old, new) = (
        MasterKey::parse(old).unwrap(),
        MasterKey::parse(new).unwrap(),
    );
    let opens = |k: &MasterKey, r: &WrappedKeyRecord| {
        k.unwrap_key(r.slot.purpose(), &r.aad_id, &r.blob).is_ok()
    };
    (
        rows.iter().filter(|r| opens(&old, r)).count(),
        rows.iter().filter(|r| opens(&new, r)).count(),
        rows.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_master_resumes_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data");
    let data = data_path.to_str().unwrap();
    let old_env = [("CARDSEAL_MASTER_KEY", OLD_KEY)];

    // Three accounts, each with a saved card, and the demo account with its wrapped API keys.
    let server = serve(data, &["--demo", "--listen", "127.0.0.1:0"], &old_env);
    let jwks = http(server.addr, get("/.well-known/jwks.json", None))
        .await
        .json();
    let key = VaultKey::parse(&jwks.to_string()).unwrap();
    let mut cards = Vec::new();
    for i in 0..3 {
        let account: Value = serde_json::from_str(&ok(&run(
            &[
                "accounts",
                "create",
                "--data-dir",
                data,
                "--name",
                &format!("shop{i}"),
                "--json",
            ],
            &old_env,
        )))
        .unwrap();
        let sk = account["secret_key"].as_str().unwrap().to_owned();
        let rk = account["restricted_key"].as_str().unwrap().to_owned();
        let sealed = jwe::seal_payload(
            &key,
            &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
        )
        .unwrap();
        let tok = http(
            server.addr,
            post_json("/v1/tokens", &sk, &json!({ "card": sealed })),
        )
        .await
        .json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let card = http(
            server.addr,
            post_json("/v1/cards", &sk, &json!({ "token": tok })),
        )
        .await
        .json();
        cards.push((rk, card["id"].as_str().unwrap().to_owned()));
    }
    drop(server);
    let (under_old, _, rows) = wrapped_under(&data_path, OLD_KEY, OLD_KEY).await;
    // A sealing key, 4 accounts × (data, fingerprint and perhaps audit) keys, 3 demo API keys.
    assert!(rows >= 12, "{rows}");
    assert_eq!(under_old, rows);

    let new_file = dir.path().join("new-master.key");
    let new_arg = new_file.to_str().unwrap();
    let rotate = [
        "keys",
        "rotate-master",
        "--data-dir",
        data,
        "--new-master-key-file",
        new_arg,
    ];
    // Killed with SIGKILL after 5 rows.
    let mut child = vault(
        &rotate,
        &[
            ("CARDSEAL_MASTER_KEY", OLD_KEY),
            ("CARDSEAL_TEST_ROTATE_PAUSE_AFTER", "5"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{lines:?}");
        if line.starts_with("paused after 5 rows") {
            break;
        }
        lines.push(line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let new_key = std::fs::read_to_string(&new_file).unwrap();
    let new_key = new_key.trim();
    let (under_old, under_new, _) = wrapped_under(&data_path, OLD_KEY, new_key).await;
    assert_eq!((under_old, under_new), (rows - 5, 5), "halfway");
    // Running it again finishes the job.
    let text = ok(&run(&rotate, &old_env));
    assert!(
        text.contains(&format!("re-wrapped {} keys (5 were already", rows - 5)),
        "{text}"
    );
    let (under_old, under_new, _) = wrapped_under(&data_path, OLD_KEY, new_key).await;
    assert_eq!((under_old, under_new), (0, rows));

    // Every card opens under the new key, kept in its file.
    let server = serve(
        data,
        &["--master-key-file", new_arg, "--listen", "127.0.0.1:0"],
        &[],
    );
    for (rk, card) in &cards {
        let r = http(
            server.addr,
            post_json("/v1/detokenize", rk, &json!({ "token": card })),
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["number"], "4242424242424242");
    }
    drop(server);
    let server = serve(
        data,
        &["--demo", "--listen", "127.0.0.1:0"],
        &[("CARDSEAL_MASTER_KEY", new_key)],
    );
    assert!(key_from(&server.stdout, "secret_key").starts_with("sk_"));
    let ok_events = ok(&run(
        &["events", "verify", "--data-dir", data],
        &[("CARDSEAL_MASTER_KEY", new_key)],
    ));
    assert!(ok_events.starts_with("ok:"), "{ok_events}");
}

/// A tmpfs of `size` mounted for the test, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Mount(path.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system under `path` with a file until writes fail.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 16 * 1024];
    while f.write_all(&block).is_ok() && f.sync_all().is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() && f.sync_all().is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(dir.path(), "3m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = dir.path().join("data");
    let server = serve(
        data.to_str().unwrap(),
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--key-rate",
            "0",
            "--ip-rate",
            "0",
        ],
        &[],
    );
    let sk = key_from(&server.stdout, "secret_key");
    let admin: SocketAddr = key_from(&server.stdout, "admin")
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    let jwks = http(server.addr, get("/.well-known/jwks.json", None))
        .await
        .json();
    let key = VaultKey::parse(&jwks.to_string()).unwrap();
    let token = || async {
        let sealed = jwe::seal_payload(
            &key,
            &card_payload("4242424242424242", 12, 2030, Some("123"), unix_now()),
        )
        .unwrap();
        http(
            server.addr,
            post_json("/v1/tokens", &sk, &json!({ "card": sealed })),
        )
        .await
    };
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        let r = token().await;
        assert_eq!(r.status, 200);
        acknowledged.push(r.json()["id"].as_str().unwrap().to_owned());
    }

    let filler = dir.path().join("filler");
    fill(&filler);
    // Tokens go on into what room the database already has; then every answer is a 503.
    let mut refused = None;
    for _ in 0..5000 {
        let r = token().await;
        match r.status.as_u16() {
            200 => acknowledged.push(r.json()["id"].as_str().unwrap().to_owned()),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let r = refused.expect("the full disk was never noticed");
    r.assert_error(503, "api_error", "service_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    for _ in 0..3 {
        token()
            .await
            .assert_error(503, "api_error", "service_unavailable");
    }
    for addr in [server.addr, admin] {
        let h = http(addr, get("/healthz", None)).await;
        assert_eq!(h.status, 503);
        assert_eq!(h.json()["status"], "degraded");
        assert_eq!(h.json()["reason"], "out_of_space");
    }
    // Reads still work.
    let r = http(
        server.addr,
        get(&format!("/v1/tokens/{}", acknowledged[0]), Some(&sk)),
    )
    .await;
    assert_eq!(r.status, 200);

    // Space returns: the vault finds out by itself.
    std::fs::remove_file(&filler).unwrap();
    let h = http(admin, get("/healthz", None)).await;
    assert_eq!(h.status, 200, "{}", String::from_utf8_lossy(&h.body));
    assert_eq!(h.json()["status"], "ok");
    let r = token().await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    for id in &acknowledged {
        let r = http(server.addr, get(&format!("/v1/tokens/{id}"), Some(&sk))).await;
        assert_eq!(r.status, 200, "token {id} was lost");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_metrics_show_the_instance_the_pool_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path().to_str().unwrap(),
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let admin: SocketAddr = key_from(&server.stdout, "admin")
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    let health = http(admin, get("/healthz", None)).await.json();
    let instance = health["instance"].as_str().unwrap().to_owned();
    assert!(instance.starts_with("inst_"), "{health}");
    let r = http(admin, get("/metrics", None)).await;
    let text = String::from_utf8_lossy(&r.body);
    let info = format!("cardseal_instance_info{{instance_id=\"{instance}\"");
    for line in [
        info.as_str(),
        "cardseal_db_pool_connections{state=\"idle\"}",
        "cardseal_db_pool_max_connections 5",
        "cardseal_db_transaction_duration_seconds_bucket{kind=\"write\",le=\"+Inf\"}",
        "cardseal_db_transaction_duration_seconds_count{kind=\"read\"}",
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
    // The upkeep task writes as the server starts, one job at a time, so the scrape may catch
    // it queued behind a checkpoint: 0 or 1. What the gauge counts is pinned down exactly by
    // `pool_waiting_counts_the_writes_queued_behind_the_writer`.
    let waiting: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cardseal_db_pool_waiting "))
        .unwrap_or_else(|| panic!("cardseal_db_pool_waiting missing in {text}"))
        .parse()
        .unwrap();
    assert!(waiting <= 1, "{waiting} writes waiting on an idle vault");
}

/// `cardseal_db_pool_waiting` on SQLite: the writes queued for the writer thread, not the one
/// it is running. The writer is held inside a job until the other writes are seen queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_waiting_counts_the_writes_queued_behind_the_writer() {
    use cardseal_vault::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    assert_eq!(store.pool_stats().waiting, 0);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store::write(&*store, move |_tx| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .await
        })
    };
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    // The running job is no longer waiting.
    assert_eq!(store.pool_stats().waiting, 0);
    let queued: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store::write(&*store, |_tx| Ok(())).await })
        })
        .collect();
    // Both are queued once their tasks have run up to the send; the writer is still held.
    let mut seen = 0;
    for _ in 0..10_000 {
        seen = store.pool_stats().waiting;
        if seen == 2 {
            break;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(seen, 2, "two writes queued behind a busy writer");
    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    for q in queued {
        q.await.unwrap().unwrap();
    }
    assert_eq!(store.pool_stats().waiting, 0);
}
