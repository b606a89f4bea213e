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
