//! TLS to PostgreSQL: `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`)
//! and `sslrootcert` in `--database-url`, with libpq's meanings. Each test starts a throwaway
//! cluster of its own (`scripts/pg.sh start-tls` with a CA and certificate made here, or
//! `start` without TLS) and looks in `pg_stat_ssl` at the connection the vault made. Skipped,
//! with a message, where PostgreSQL is not installed.

#[path = "support/helpers.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use cardseal_vault::store::postgres::PostgresStore;
use support::{spawn_server, with_pg};

const PG_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");

/// The name in the server's certificate; the tests reach it at 127.0.0.1 through `hostaddr`.
const DB_HOST: &str = "db.cardseal.test";

fn pg_installed() -> bool {
    let found = Command::new("bash")
        .args([PG_SH, "bindir"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
    }
    found
}

/// A cluster of `scripts/pg.sh` in a directory of its own; stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// `tls`: the certificate chain and key to serve, PEM.
    fn start(tls: Option<(&str, &str)>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg(PG_SH);
        match tls {
            Some((cert, key)) => {
                let (cert_file, key_file) = (dir.path().join("in.crt"), dir.path().join("in.key"));
                std::fs::write(&cert_file, cert).unwrap();
                std::fs::write(&key_file, key).unwrap();
                cmd.arg("start-tls")
                    .arg(dir.path())
                    .arg(cert_file)
                    .arg(key_file)
            }
            None => cmd.arg("start").arg(dir.path()),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "the cluster did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap();
        let port = url
            .trim()
            .rsplit_once(':')
            .and_then(|(_, p)| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        Cluster { dir, port }
    }

    /// A URL for 127.0.0.1 with `params` (`sslmode=…&…`).
    fn url(&self, params: &str) -> String {
        format!(
            "postgres://cardseal@127.0.0.1:{}/postgres?{params}",
            self.port
        )
    }

    /// A URL for [`DB_HOST`] (the certificate's name) at 127.0.0.1, with `params`.
    fn url_by_name(&self, params: &str) -> String {
        format!(
            "postgres://cardseal@{DB_HOST}:{}/postgres?hostaddr=127.0.0.1&{params}",
            self.port
        )
    }

    /// Whether the connections named `app` use TLS, by `pg_stat_ssl` (asked over a connection
    /// of the test's own); `None` if there is none.
    fn ssl_of(&self, app: &str) -> Option<(bool, Option<String>)> {
        let app = app.to_owned();
        with_pg(&self.url("sslmode=disable"), move |c| {
            c.query_opt(
                "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = $1 LIMIT 1",
                &[&app],
            )
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([PG_SH, "stop"])
            .arg(self.dir.path())
            .output();
    }
}

/// A CA, as PEM and as an issuer.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for [`DB_HOST`] only, and its key, PEM.
    fn server(&self) -> (String, String) {
        let params = rcgen::CertificateParams::new(vec![DB_HOST.to_owned()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, path: &Path) -> String {
        std::fs::write(path, &self.pem).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

/// Opens the vault's store on `url` (its real connect and migrations) and, if that worked,
/// says whether `pg_stat_ssl` shows its connection encrypted. The store stays open until then.
async fn open(cluster: &Cluster, url: &str, app: &str) -> Result<bool, String> {
    let url = format!("{url}&application_name={app}");
    let store = PostgresStore::open(&url).await.map_err(|e| e.to_string())?;
    let (ssl, version) = cluster
        .ssl_of(app)
        .unwrap_or_else(|| panic!("no connection named {app}"));
    if ssl {
        let version = version.unwrap_or_default();
        assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");
    }
    drop(store);
    Ok(ssl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_on_a_cluster_with_tls() {
    if !pg_installed() {
        return;
    }
    let ca = Ca::new("cardseal test CA");
    let other_ca = Ca::new("someone else's CA");
    let (cert, key) = ca.server();
    let cluster = Cluster::start(Some((&cert, &key)));
    let files = tempfile::tempdir().unwrap();
    let root = ca.write(&files.path().join("root.crt"));
    let other = other_ca.write(&files.path().join("other.crt"));

    // The real vault, with `require`: its own connection is TLS.
    let data = files.path().join("data");
    let url = cluster.url("sslmode=require&application_name=vault-require");
    let server = spawn_server(data.to_str().unwrap(), &["--database-url", &url]);
    let (ssl, _) = cluster
        .ssl_of("vault-require")
        .expect("the vault's connection");
    assert!(ssl, "sslmode=require: the vault's connection is not TLS");
    drop(server);

    // `prefer`, the default, uses the TLS the server offers; `disable` does not.
    assert_eq!(
        open(&cluster, &cluster.url("sslmode=prefer"), "prefer").await,
        Ok(true)
    );
    assert_eq!(
        open(&cluster, &cluster.url("connect_timeout=5"), "default").await,
        Ok(true)
    );
    assert_eq!(
        open(&cluster, &cluster.url("sslmode=disable"), "disable").await,
        Ok(false)
    );
    // `require` checks no certificate…
    assert_eq!(
        open(&cluster, &cluster.url("sslmode=require"), "require").await,
        Ok(true)
    );
    // …unless given a root, and then it is verify-ca: an unknown CA is refused.
    let params = format!("sslmode=require&sslrootcert={root}");
    assert_eq!(
        open(&cluster, &cluster.url(&params), "require-ca").await,
        Ok(true)
    );
    let params = format!("sslmode=require&sslrootcert={other}");
    let err = open(&cluster, &cluster.url(&params), "require-other")
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    // verify-ca: the chain, not the name (127.0.0.1 is not in the certificate).
    let params = format!("sslmode=verify-ca&sslrootcert={root}");
    assert_eq!(
        open(&cluster, &cluster.url(&params), "verify-ca").await,
        Ok(true)
    );
    let params = format!("sslmode=verify-ca&sslrootcert={other}");
    let err = open(&cluster, &cluster.url(&params), "verify-ca-other")
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    // verify-full: the chain and the name.
    let params = format!("sslmode=verify-full&sslrootcert={root}");
    let err = open(&cluster, &cluster.url(&params), "verify-full-ip")
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(
        open(&cluster, &cluster.url_by_name(&params), "verify-full").await,
        Ok(true)
    );
    // The parameters are percent-decoded, as in any URL.
    let spaced = ca.write(&files.path().join("root ca.crt"));
    let params = format!(
        "sslmode=verify%2Dfull&sslrootcert={}",
        spaced.replace(' ', "%20")
    );
    assert_eq!(
        open(
            &cluster,
            &cluster.url_by_name(&params),
            "verify-full-encoded"
        )
        .await,
        Ok(true)
    );
    let params = format!("sslmode=verify-full&sslrootcert={other}");
    let err = open(&cluster, &cluster.url_by_name(&params), "verify-full-other")
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    // Checking a certificate needs something to check it against; a typo is no mode.
    for mode in ["verify-ca", "verify-full"] {
        let err = open(&cluster, &cluster.url(&format!("sslmode={mode}")), mode)
            .await
            .unwrap_err();
        assert!(err.contains("needs sslrootcert"), "{err}");
    }
    let missing = files.path().join("missing.crt");
    let params = format!("sslmode=verify-full&sslrootcert={}", missing.display());
    let err = open(&cluster, &cluster.url(&params), "missing")
        .await
        .unwrap_err();
    assert!(err.contains("sslrootcert"), "{err}");
    for mode in ["allow", "verify_full", ""] {
        let err = open(&cluster, &cluster.url(&format!("sslmode={mode}")), "bad")
            .await
            .unwrap_err();
        assert!(err.contains("sslmode must be one of"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_on_a_cluster_without_tls() {
    if !pg_installed() {
        return;
    }
    let cluster = Cluster::start(None);
    assert_eq!(
        open(&cluster, &cluster.url("sslmode=disable"), "disable").await,
        Ok(false)
    );
    assert_eq!(
        open(&cluster, &cluster.url("sslmode=prefer"), "prefer").await,
        Ok(false)
    );
    // `require` and stronger never fall back to plaintext.
    let err = open(&cluster, &cluster.url("sslmode=require"), "require")
        .await
        .unwrap_err();
    assert!(err.contains("TLS") || err.contains("SSL"), "{err}");
}
