//! Building, running and stopping the server: our own tokio-rustls accept loop (so each
//! connection's client certificates and exporter value reach the handlers), hyper HTTP/1.1
//! connections serving the axum router, background refresh of the trusted CAs and purging of
//! expired challenges and sessions, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::DeviceAuth;
use crate::challenges::ChallengeBook;
use crate::clock::{Clock, SystemClock};
use crate::config::{ServerConfig, StorageConfig};
use crate::error::{Error, Result};
use crate::http::{AppState, router};
use crate::registry::Registry;
use crate::store::{AuditRecord, Outcome, PostgresStore, SqliteStore, Store};
use crate::tls::{ConnectionInfo, ServerIdentity, server_config};
use crate::trust::{EnrolledCaVerifier, Trust};
use crate::vault::KeyVault;

/// Opens the store a configuration names (SQLite file or PostgreSQL), migrating it.
pub async fn open_store(config: &StorageConfig) -> Result<Arc<dyn Store>> {
    Ok(match config {
        StorageConfig::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
        StorageConfig::Postgres { url, pool_size } => {
            Arc::new(PostgresStore::connect(url, *pool_size).await?)
        }
    })
}

/// The server. Start with [`Server::builder`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder for `config`.
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            identity: None,
            store: None,
            clock: Arc::new(SystemClock),
            anchors: Vec::new(),
            secure_element: None,
            releases_dir: None,
        }
    }
}

/// Configures and binds a server.
#[derive(Debug)]
pub struct ServerBuilder {
    config: ServerConfig,
    identity: Option<ServerIdentity>,
    store: Option<Arc<dyn Store>>,
    clock: Arc<dyn Clock>,
    anchors: Vec<Vec<u8>>,
    secure_element: Option<Arc<dyn ironclad_se::SecureElement>>,
    releases_dir: Option<std::path::PathBuf>,
}

impl ServerBuilder {
    /// The server's certificate and key (otherwise read from `config.tls`).
    pub fn identity(mut self, identity: ServerIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// An already open store (otherwise opened from `config.storage`).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (tests move a [`crate::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Trusts another CA certificate (DER) for device chains, like `config.trust_anchors`.
    pub fn trust_anchor(mut self, der: Vec<u8>) -> Self {
        self.anchors.push(der);
        self
    }

    /// The server's secure element: it holds the key vault's master key and the signing keys
    /// (without one, the key vault and media-key endpoints answer "unavailable").
    pub fn secure_element(mut self, se: Arc<dyn ironclad_se::SecureElement>) -> Self {
        self.secure_element = Some(se);
        self
    }

    /// Where OTA release files are kept (otherwise `config.ota.releases_dir`, else a
    /// `releases` directory next to the SQLite database the configuration names).
    pub fn releases_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.releases_dir = Some(dir.into());
        self
    }

    /// Opens the store, binds `config.listen` and starts serving.
    pub async fn bind(self) -> Result<RunningServer> {
        let config = self.config;
        let identity = match (self.identity, &config.tls.certificate, &config.tls.private_key) {
            (Some(id), _, _) => id,
            (None, Some(cert), Some(key)) => ServerIdentity::from_pem_files(cert, key)?,
            _ => {
                return Err(Error::Config(
                    "no server certificate: set tls.certificate and tls.private_key".into(),
                ));
            }
        };
        let mut anchors = self.anchors;
        for path in &config.trust_anchors {
            let pem = std::fs::read(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                anchors.push(cert.to_vec());
            }
        }
        let releases_dir =
            self.releases_dir.or_else(|| config.ota.releases_dir.clone()).or_else(|| match &config.storage {
                StorageConfig::Sqlite { path } => {
                    Some(path.parent().unwrap_or(std::path::Path::new(".")).join("releases"))
                }
                _ => None,
            });
        let store = match self.store {
            Some(s) => s,
            None => open_store(&config.storage).await?,
        };
        let provider = Arc::new(crate::tls::crypto_provider());
        let trust = Arc::new(Trust::new(anchors, provider.clone())?);
        trust.refresh(store.as_ref()).await?;
        let tls = server_config(
            &identity,
            Arc::new(EnrolledCaVerifier(trust.clone())),
            config.tls.tls12,
            provider,
        )?;

        let registry = Registry::with_trust(store.clone(), self.clock.clone(), trust.clone());
        let device = DeviceAuth {
            store: store.clone(),
            clock: self.clock.clone(),
            trust: trust.clone(),
            limits: config.auth,
            challenges: Arc::new(ChallengeBook::default()),
        };
        let vault = match self.secure_element {
            Some(se) => Some(KeyVault::open(se, store.clone(), self.clock.clone())?),
            None => None,
        };
        let ota = crate::ota::Ota::new(
            store.clone(),
            vault.clone(),
            self.clock.clone(),
            config.ota.clone(),
            releases_dir,
        );
        let app = router(AppState {
            device: device.clone(),
            registry: registry.clone(),
            vault: vault.clone(),
            ota: ota.clone(),
        });

        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let background = spawn_background(
            &config,
            store.clone(),
            self.clock.clone(),
            trust,
            device.challenges.clone(),
            shutdown_rx.clone(),
        );
        let accept = AcceptLoop {
            listener,
            acceptor: TlsAcceptor::from(tls),
            app,
            device,
            handshake_timeout: Duration::from_secs(config.handshake_timeout_secs.max(1)),
            grace: Duration::from_secs(config.shutdown_grace_secs),
        };
        let task = tokio::spawn(accept.run(shutdown_rx));
        tracing::info!(%addr, backend = store.backend_name(), "ironclad server listening");
        Ok(RunningServer { addr, registry, vault, shutdown_tx, task, background })
    }
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    registry: Registry,
    vault: Option<KeyVault>,
    shutdown_tx: watch::Sender<bool>,
    task: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Registry operations on the server's store (enrollments, tokens, revocation), with the
    /// server's trusted CAs refreshed on changes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The key vault, when the server has a secure element.
    pub fn vault(&self) -> Option<&KeyVault> {
        self.vault.as_ref()
    }

    /// Stops accepting connections, lets open ones finish their current request (up to
    /// `shutdown_grace_secs`), and returns when the server has stopped.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let _ = self.task.await;
        for t in self.background {
            t.abort();
        }
    }
}

fn spawn_background(
    config: &ServerConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    trust: Arc<Trust>,
    challenges: Arc<ChallengeBook>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let refresh = Duration::from_secs(config.trust_refresh_secs.max(1));
    let purge = Duration::from_secs(config.purge_interval_secs.max(1));
    let (s1, mut stop1) = (store.clone(), shutdown.clone());
    let refresher = tokio::spawn(async move {
        // Announcements from other server processes (PostgreSQL) refresh at once; the timer
        // covers the rest.
        let mut announced = s1.trust_changes();
        loop {
            let announcement = async {
                match announced.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop1.changed() => break,
                _ = tokio::time::sleep(refresh) => {}
                open = announcement => {
                    if !open {
                        announced = None;
                    }
                }
            }
            if let Err(e) = trust.refresh(s1.as_ref()).await {
                tracing::warn!("refreshing the trusted CAs failed: {e}");
            }
        }
    });
    let mut stop2 = shutdown;
    let purger = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop2.changed() => break,
                _ = tokio::time::sleep(purge) => {
                    // Keep used challenges an extra minute so late replays are named as such.
                    challenges.purge(clock.unix() - 60);
                    if let Err(e) = store.purge_expired(clock.unix() - 60).await {
                        tracing::warn!("purging expired challenges and sessions failed: {e}");
                    }
                }
            }
        }
    });
    vec![refresher, purger]
}

struct AcceptLoop {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    device: DeviceAuth,
    handshake_timeout: Duration,
    grace: Duration,
}

impl AcceptLoop {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let graceful = GracefulShutdown::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.changed() => break,
                a = self.listener.accept() => a,
            };
            let (tcp, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let conn = Connection {
                acceptor: self.acceptor.clone(),
                app: self.app.clone(),
                device: self.device.clone(),
                handshake_timeout: self.handshake_timeout,
            };
            let watcher = graceful.watcher();
            tokio::spawn(async move { conn.serve(tcp, remote, watcher).await });
        }
        drop(self.listener);
        if tokio::time::timeout(self.grace, graceful.shutdown()).await.is_err() {
            tracing::warn!("graceful shutdown timed out; closing remaining connections");
        }
    }
}

struct Connection {
    acceptor: TlsAcceptor,
    app: axum::Router,
    device: DeviceAuth,
    handshake_timeout: Duration,
}

impl Connection {
    async fn serve(
        self,
        tcp: tokio::net::TcpStream,
        remote: SocketAddr,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let tls = match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.handshake_failed(remote, &e).await;
                return;
            }
            Err(_) => return,
        };
        let info = match ConnectionInfo::from_connection(tls.get_ref().1, remote) {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(%remote, "{e}");
                return;
            }
        };
        let app = self.app;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            app.clone().oneshot(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(tls), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%remote, "connection ended: {e}");
        }
    }

    /// Client-certificate failures are audited (an unknown CA, an expired certificate):
    /// they are authentication refusals. Other handshake failures are only logged.
    async fn handshake_failed(&self, remote: SocketAddr, e: &std::io::Error) {
        let rustls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match rustls_error {
            Some(err @ rustls::Error::InvalidCertificate(_)) => {
                tracing::info!(%remote, "TLS handshake refused: {err}");
                let record = AuditRecord {
                    at: self.device.clock.unix(),
                    event: "tls.handshake".into(),
                    outcome: Outcome::Refused,
                    reason: Some("client_certificate_invalid".into()),
                    detail: format!("client certificate refused: {err}"),
                    device_id: None,
                    actor: None,
                    peer: Some(remote.to_string()),
                };
                if let Err(e) = self.device.store.append_audit(&record).await {
                    tracing::warn!("audit write failed: {e}");
                }
            }
            _ => tracing::debug!(%remote, "TLS handshake failed: {e}"),
        }
    }
}
