//! `berth registry serve`: an OCI distribution-spec v1.1 registry over
//! filesystem storage ([`storage`]), with basic or token auth ([`auth`]),
//! TLS, a read-only mode, and offline garbage collection ([`gc()`]).
//!
//! The CLI calls [`serve`] with a [`ServerConfig`]; tests and embedders use
//! [`bind`] to learn the address before serving.
//!
//! Conformance: the distribution-spec conformance suite (its `conformance/`
//! program, spec commit 967efdc) passes all of its 862 tests with its
//! default settings, over plain, basic-auth and token-auth servers, and all
//! 986 with tag parameters, upload cancel and required digest headers
//! turned on. (Debian's `docker-registry` 2.8 fails 99 of 848 there.)

pub mod auth;
mod gc;
mod handlers;
pub mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use auth::AuthMode;
pub use gc::{GcOptions, GcReport, gc};

use berth_image::ErrorKind;

/// Default largest manifest accepted (distribution's limit).
pub const DEFAULT_MAX_MANIFEST_SIZE: usize = 4 << 20;

/// Everything `berth registry serve` takes.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `--addr`, default `0.0.0.0:5000` as docker's `registry` image.
    pub addr: String,
    /// `--root`: where repositories and blobs live.
    pub root: PathBuf,
    /// PEM certificate chain and key: serve HTTPS.
    pub tls: Option<TlsFiles>,
    pub auth: AuthMode,
    /// Refuse pushes and deletes (`405 UNSUPPORTED`).
    pub read_only: bool,
    /// Allow `DELETE` of manifests, tags and blobs.
    pub delete_enabled: bool,
    pub max_manifest_size: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "0.0.0.0:5000".into(),
            root: PathBuf::from("/var/lib/berth-registry"),
            tls: None,
            auth: AuthMode::None,
            read_only: false,
            delete_enabled: true,
            max_manifest_size: DEFAULT_MAX_MANIFEST_SIZE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("{source}")]
    Storage {
        #[from]
        source: storage::StorageError,
    },
    #[error("{source}")]
    Auth {
        #[from]
        source: auth::AuthSetupError,
    },
    #[error("tls {path}: {message}")]
    Tls { path: PathBuf, message: String },
    #[error("registry manifest {digest}: {message}")]
    Manifest { digest: String, message: String },
}

impl ServerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServerError::Listen { .. } => ErrorKind::Unavailable,
            ServerError::Auth { .. } | ServerError::Tls { .. } => ErrorKind::InvalidParameter,
            ServerError::Storage { .. } | ServerError::Manifest { .. } => ErrorKind::Internal,
        }
    }
}

/// A registry bound to its address, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
}

/// Bind the address and open the storage.
pub async fn bind(config: ServerConfig) -> Result<BoundServer, ServerError> {
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    let state = handlers::Registry::new(&config)?;
    let app = handlers::router(Arc::new(state));
    let listener = TcpListener::bind(&config.addr).await.map_err(|source| ServerError::Listen { addr: config.addr.clone(), source })?;
    Ok(BoundServer { listener, tls, app })
}

/// Serve until the process ends: `berth registry serve`.
pub async fn serve(config: ServerConfig) -> Result<(), ServerError> {
    let addr = config.addr.clone();
    let s = bind(config).await?;
    tracing::info!(addr = %s.local_addr(), tls = s.tls.is_some(), "registry listening");
    s.run().await.map_err(|source| ServerError::Listen { addr, source })
}

/// A registry serving in the background; dropped or [`stop`](Self::stop)ped
/// it stops accepting.
pub struct RunningServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serve on a background task.
    pub fn spawn(self) -> RunningServer {
        let addr = self.local_addr();
        let task = tokio::spawn(async move {
            if let Err(e) = self.run().await {
                tracing::error!(error = %e, "registry stopped");
            }
        });
        RunningServer { addr, task }
    }

    /// Accept connections forever.
    pub async fn run(self) -> std::io::Result<()> {
        let BoundServer { listener, tls, app } = self;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let builder = auto::Builder::new(TokioExecutor::new());
                let result = match tls {
                    Some(acc) => match tokio::time::timeout(std::time::Duration::from_secs(10), acc.accept(stream)).await {
                        Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), svc).await,
                        _ => return,
                    },
                    None => builder.serve_connection(TokioIo::new(stream), svc).await,
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "registry connection");
                }
            });
        }
    }
}

fn load_tls(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let terr = |path: &PathBuf, message: String| ServerError::Tls { path: path.clone(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| terr(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| terr(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(terr(&files.cert, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| terr(&files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| terr(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| terr(&files.cert, e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}
