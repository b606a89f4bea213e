//! Listening: the API on unix sockets (mode 0660, group `berth` when it
//! exists), version prefixes stripped before routing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::ServiceExt;
use tower::Layer;
use axum::extract::Request;
use tokio::net::UnixListener;

use crate::containers::Shared;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listen on {path}: {source}")]
    Listen { path: String, source: std::io::Error },
    #[error("socket group {group:?}: {reason}")]
    Group { group: String, reason: String },
    #[error("serve: {0}")]
    Serve(std::io::Error),
    #[error("tls: {0}")]
    Tls(String),
}

/// Bind a unix socket at `path` (replacing a stale one), mode 0660.
pub fn bind_unix(path: &Path, group: Option<&str>) -> Result<UnixListener, ServeError> {
    let err = |source| ServeError::Listen { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    let group = group.map(str::to_owned).or_else(|| {
        nix::unistd::Group::from_name("berth").ok().flatten().map(|_| "berth".to_owned())
    });
    if let Some(g) = group {
        let gid = match nix::unistd::Group::from_name(&g) {
            Ok(Some(gr)) => gr.gid,
            Ok(None) => return Err(ServeError::Group { group: g, reason: "no such group".into() }),
            Err(e) => return Err(ServeError::Group { group: g, reason: e.to_string() }),
        };
        nix::unistd::chown(path, None, Some(gid)).map_err(|e| ServeError::Group { group: g, reason: e.to_string() })?;
    }
    Ok(listener)
}

/// Serve the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    daemon: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let router = crate::routes::router(daemon);
    let app = tower::util::MapRequestLayer::new(crate::routes::strip_version).layer(router);
    axum::serve(listener, ServiceExt::<Request>::into_make_service(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

/// TLS for `-H tcp://`: the server's certificate and key, and with
/// `--tlsverify` a client certificate signed by `--tlscacert`, as dockerd.
pub fn tls_config(tls: &crate::config::Tls) -> Result<std::sync::Arc<rustls::ServerConfig>, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: String| ServeError::Tls(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| bad(&tls.cert.display().to_string(), e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&tls.cert.display().to_string(), e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| bad(&tls.key.display().to_string(), e.to_string()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls", e.to_string()))?;
    let builder = if tls.verify {
        let ca = tls.ca.as_ref().ok_or_else(|| ServeError::Tls("--tlsverify needs --tlscacert".into()))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&ca.display().to_string(), e.to_string()))? {
            roots.add(c.map_err(|e| bad(&ca.display().to_string(), e.to_string()))?).map_err(|e| bad("ca", e.to_string()))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(std::sync::Arc::new(roots), provider)
            .build()
            .map_err(|e| bad("client verifier", e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| bad("certificate", e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// Serve the API over TLS on `listener` until `shutdown`.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
    daemon: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let router = crate::routes::router(daemon);
    let app = tower::util::MapRequestLayer::new(crate::routes::strip_version).layer(router);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => r.map_err(ServeError::Serve)?,
            _ = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, "tls handshake: {e}");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(
                tower::ServiceExt::map_request(app, |r: hyper::Request<hyper::body::Incoming>| r.map(axum::body::Body::new)),
            );
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service).await {
                tracing::debug!(%peer, "connection: {e}");
            }
        });
    }
}
