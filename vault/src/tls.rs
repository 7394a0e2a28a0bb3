//! TLS on the public listener (`--tls-cert`, `--tls-key`): rustls on aws-lc-rs, TLS 1.2 and 1.3
//! only, a certificate that SIGHUP reloads, and `Strict-Transport-Security` on every answer.
//! Also the client side of TLS to PostgreSQL (`sslmode`, `sslrootcert`), on the same provider.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::response::Response;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The PEM files of the public listener's certificate chain and private key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Two years, the value HSTS preload lists ask for.
const HSTS: &str = "max-age=63072000";

/// How long a client may take over its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `listen` may serve plain HTTP: only on loopback, or behind a proxy that terminates
/// TLS (`--tls-terminated-upstream`). Anything else would send card tokens and API keys across
/// the network in the clear.
pub fn check_listen(
    listen: SocketAddr,
    tls: bool,
    terminated_upstream: bool,
) -> Result<(), String> {
    if tls || terminated_upstream || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "--listen {listen} is reachable from the network, and without TLS API keys and tokens \
         would cross it in the clear: give --tls-cert FILE and --tls-key FILE (PEM), or \
         --tls-terminated-upstream if a proxy in front of the vault terminates TLS"
    ))
}

/// Sends `Strict-Transport-Security` with every response of `router`.
pub fn with_hsts(router: Router) -> Router {
    router.layer(axum::middleware::map_response(
        |mut response: Response| async move {
            response
                .headers_mut()
                .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
            response
        },
    ))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate in use, swapped by [`Tls::reload`].
struct Certificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ))
    }
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let (cert, key) = (files.cert.display(), files.key.display());
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("--tls-cert {cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {cert}: no PEM certificate in it"));
    }
    let private =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("--tls-key {key}: {e}"))?;
    CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| format!("--tls-cert {cert} with --tls-key {key}: {e}"))
}

/// The public listener's TLS settings.
#[derive(Clone)]
pub struct Tls {
    cert: Arc<Certificate>,
    acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate and key; TLS 1.2 and 1.3 only, HTTP/1.1.
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let provider = provider();
        let first = load(&files, &provider)?;
        let cert = Arc::new(Certificate {
            files,
            provider: Arc::clone(&provider),
            current: RwLock::new(Arc::new(first)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&cert) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            cert,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads the files again; new handshakes get the new certificate. On failure the old one
    /// stays in use.
    pub fn reload(&self) -> Result<(), String> {
        let next = load(&self.cert.files, &self.cert.provider)?;
        *self
            .cert
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    /// Reloads the certificate on every SIGHUP, until the task is dropped.
    pub async fn reload_on_sighup(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot watch for SIGHUP: the certificate will not be reloaded");
                return;
            };
            while hup.recv().await.is_some() {
                match self.reload() {
                    Ok(()) => tracing::info!(
                        cert = %self.cert.files.cert.display(),
                        "SIGHUP: reloaded the TLS certificate"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: cannot reload the TLS certificate; keeping the old one"
                    ),
                }
            }
        }
    }

    /// A listener that hands out connections once their handshake is done. Handshakes run on
    /// their own tasks, so a slow client holds up no one else.
    pub fn listener(&self, tcp: TcpListener) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (ready, incoming) = mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if ready.is_closed() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { incoming, addr })
    }
}

/// Connections whose TLS handshake completed, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(conn) => conn,
            // The accepting task holds the sender until it ends, which it does only once this
            // listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// How the vault checks a PostgreSQL server's certificate: `sslmode` and `sslrootcert` of
/// `--database-url`, with libpq's meanings.
#[derive(Debug)]
pub enum DatabaseCertCheck {
    /// `prefer` and `require` without `sslrootcert`: encrypted, but anyone on the path can
    /// stand in for the server.
    None,
    /// `verify-ca`, and `require` or `prefer` with `sslrootcert`: signed by one of these CAs.
    Chain(RootCertStore),
    /// `verify-full`: signed by one of these CAs and issued for the host connected to.
    ChainAndName(RootCertStore),
}

/// The CA certificates of `sslrootcert=FILE` (PEM).
pub fn database_roots(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("--database-url sslrootcert={shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "--database-url sslrootcert={shown}: no usable PEM certificate in it"
        ));
    }
    Ok(roots)
}

/// The rustls client settings for PostgreSQL: TLS 1.2 and 1.3 on aws-lc-rs, the server's
/// certificate checked as `check` says.
pub fn database_client_config(check: DatabaseCertCheck) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match check {
        DatabaseCertCheck::ChainAndName(roots) => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        DatabaseCertCheck::Chain(roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(DatabaseVerifier {
                roots: Some(Arc::new(roots)),
                provider,
            }))
            .with_no_client_auth(),
        DatabaseCertCheck::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(DatabaseVerifier {
                roots: None,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// libpq's checks short of `verify-full`, which rustls does not offer as settings: the chain
/// without the name (`verify-ca`), or nothing (`require`). The handshake's own signatures are
/// always checked, so the session is bound to the key in the certificate shown.
#[derive(Debug)]
struct DatabaseVerifier {
    /// `None`: any certificate.
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DatabaseVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
