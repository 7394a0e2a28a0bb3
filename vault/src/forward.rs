//! Forwarding a card to the merchant's payment processor (`POST /v1/forward`): the pieces that
//! do not touch storage. `crate::domain::forward` runs them in this order, so that everything
//! that can be refused is refused before the card is used and before a byte leaves:
//!
//! 1. [`template`]: the body's placeholders are parsed against its Content-Type;
//! 2. [`destination`]: the URL is https, its host is on the account's allow-list and not an IP
//!    literal, and every address it resolves to is public (or `--forward-allow-private`);
//! 3. [`client`]: TCP and TLS to one of those checked addresses (no second lookup);
//! 4. (the ledger: the token is consumed, the stored CVC taken);
//! 5. [`client`]: the filled request is sent; the answer is read within the size and time
//!    limits, redirects are not followed;
//! 6. [`crate::pan_scan`]: the number and the CVC are masked in what comes back, in any
//!    notation; an answer that cannot be searched (compressed, binary, another charset) is
//!    502 `forward_response_unreadable`, its body withheld.

pub mod client;
pub mod destination;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

pub use destination::{normalize_host_pattern, set_forward_hosts};

/// Largest processor answer handed back; beyond it, 502 `upstream_response_too_large`.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How `POST /v1/forward` reaches processors.
#[derive(Clone)]
pub struct ForwardSettings {
    /// Let destinations resolve to loopback, private, link-local and metadata addresses
    /// (`--forward-allow-private`): for tests and a processor on the same private network.
    pub allow_private: bool,
    /// The whole forward, from the DNS lookup to the answer's last byte; beyond it, 504.
    pub timeout: Duration,
    /// The largest answer handed back.
    pub max_response_bytes: usize,
    /// Built once: building a root store per request would cost more than the handshake.
    /// `None` only if the provider refused every protocol version: forwards then fail closed.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for ForwardSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardSettings")
            .field("allow_private", &self.allow_private)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl ForwardSettings {
    /// Public destinations only, the webpki roots, `timeout` per forward (the default is
    /// `config::defaults::FORWARD_TIMEOUT_SECS`, which `Config::default()` uses).
    pub fn new(timeout: Duration) -> Self {
        Self {
            allow_private: false,
            timeout,
            max_response_bytes: MAX_RESPONSE_BYTES,
            tls: tls_config(&[])
                .inspect_err(|e| tracing::error!(error = %e, "no TLS client for forwarding"))
                .ok(),
        }
    }

    /// Sets [`Self::allow_private`].
    pub fn with_allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Sets [`Self::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also trusts the CA certificates in `pem` (`--forward-ca-file`), beside the webpki roots.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self, String> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the forward CA file is not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err("the forward CA file holds no certificate".into());
        }
        self.tls = Some(tls_config(&certs)?);
        Ok(self)
    }

    /// [`Self::with_ca_pem`] from a file.
    pub fn with_ca_file(self, path: &std::path::Path) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the forward CA file {}: {e}", path.display()))?;
        self.with_ca_pem(&pem)
    }

    pub(crate) fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Named, not the process default: the vault must not depend on which provider another
    // crate installed first.
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_config(extra: &[CertificateDer<'static>]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a forward CA certificate is unusable: {e}"))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
