//! [`Vault`]: a started vault, its listeners bound, ready to serve. The binary only turns flags
//! into a [`Config`] and prints what this reports.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::store::{self, Store};
use crate::tls::{self, Tls};
use crate::{AppState, StartError, admin_app, app};

/// How often [`AppState::maintain`] runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// A vault whose state is loaded and whose listeners are bound.
#[derive(Debug)]
pub struct Vault {
    state: AppState,
    listener: TcpListener,
    admin: Option<TcpListener>,
    tls: Option<Tls>,
}

impl Vault {
    /// Loads the state, frees the idempotency keys of requests a previous process left
    /// running, and binds `listen` (and `admin_listen`, for `/metrics`). Port 0 picks a port.
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        master: MasterKey,
        listen: SocketAddr,
        admin_listen: Option<SocketAddr>,
    ) -> Result<Vault, StartError> {
        let tls = config
            .tls
            .clone()
            .map(Tls::load)
            .transpose()
            .map_err(StartError)?;
        let state = AppState::new(config, store, master, Arc::new(SystemClock)).await?;
        // Requests that were running when the last process stopped will never finish: free
        // their idempotency keys now, so that retries run at once instead of after the claim
        // lapses. (Sound with one process per database, as SQLite is used.)
        let released = store::write(state.store(), |tx| tx.release_all_claims())
            .await
            .map_err(|e| StartError(e.to_string()))?;
        if released > 0 {
            tracing::info!(
                keys = released,
                "released idempotency keys of interrupted requests"
            );
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| StartError(format!("cannot listen on {listen}: {e}")))?;
        let admin = match admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                StartError(format!("cannot listen on {addr} (--admin-listen): {e}"))
            })?),
            None => None,
        };
        Ok(Vault {
            state,
            listener,
            admin,
            tls,
        })
    }

    /// The running state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The public listener's address.
    pub fn addr(&self) -> Result<SocketAddr, StartError> {
        self.listener
            .local_addr()
            .map_err(|e| StartError(e.to_string()))
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Result<Option<SocketAddr>, StartError> {
        self.admin
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|e| StartError(e.to_string()))
    }

    /// Serves both listeners and runs the upkeep until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        if let Some(admin) = self.admin {
            let router = admin_app(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(admin, router).await {
                    tracing::error!(error = %e, "the admin listener stopped");
                }
            });
        }
        tokio::spawn(self.state.clone().maintain(UPKEEP_EVERY));
        let config = self.state.config();
        let router = if config.tls.is_some() || config.tls_terminated_upstream {
            tls::with_hsts(app(self.state.clone()))
        } else {
            app(self.state.clone())
        };
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let Some(tls) = self.tls else {
            return axum::serve(self.listener, service)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| StartError(e.to_string()));
        };
        tokio::spawn(tls.clone().reload_on_sighup());
        let listener = tls
            .listener(self.listener)
            .map_err(|e| StartError(e.to_string()))?;
        // `tap_io` only to reach axum's `ConnectInfo<SocketAddr>` for any listener.
        axum::serve(listener.tap_io(|_| {}), service)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| StartError(e.to_string()))
    }
}
