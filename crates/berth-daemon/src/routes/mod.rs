//! The Engine API's routes, one router per resource, and the API version
//! prefix handling around them.

pub mod build;
pub mod containers;
pub mod images;
pub mod networks;
pub mod registry;
pub mod run;
pub mod system;
pub mod volumes;

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_api::version::{self, ApiVersion, VersionError};

use crate::containers::Shared;
use crate::error::ApiError;

/// The API version a request asked for (or why it can't be served).
#[derive(Debug, Clone)]
pub struct RequestVersion(pub Result<ApiVersion, VersionError>);

/// Every route, without version prefixes.
pub fn router(d: Shared) -> Router {
    Router::new()
        .merge(system::router())
        .merge(containers::router())
        .merge(images::router())
        .merge(registry::router())
        .merge(run::router())
        .merge(networks::router())
        .merge(volumes::router())
        .merge(build::router())
        .fallback(|uri: Uri| async move { ApiError::not_found(format!("page not found: {}", uri.path())) })
        .layer(axum::middleware::from_fn(check_version))
        .with_state(d)
}

/// Strip `/v1.xx` from the path (before routing) and remember the version.
pub fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path().to_owned();
    let (version, rest) = match version::split_path(&path) {
        Ok((v, rest)) => (Ok(v), rest.to_owned()),
        Err(e) => {
            // Route anyway (so a bad version isn't a 404); check_version answers.
            let rest = path.strip_prefix("/v").and_then(|r| r.find('/').map(|i| r[i..].to_owned())).unwrap_or(path.clone());
            (Err(e), rest)
        }
    };
    if rest != path {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest,
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(RequestVersion(version));
    req
}

async fn check_version(req: Request, next: Next) -> Response {
    if let Some(RequestVersion(Err(e))) = req.extensions().get::<RequestVersion>() {
        return ApiError::from(e.clone()).into_response();
    }
    next.run(req).await
}

/// The version a handler is serving.
pub fn api_version(req_version: Option<&RequestVersion>) -> ApiVersion {
    match req_version {
        Some(RequestVersion(Ok(v))) => *v,
        _ => version::MAX,
    }
}

/// Every value of a parameter docker lets repeat (`changes=A&changes=B`),
/// each split at newlines as well.
pub fn query_lines(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == key).flat_map(|(_, v)| v.split('\n')).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// Docker's boolean query values: 1/true/True, 0/false/"".
pub fn query_bool(v: Option<&String>) -> bool {
    matches!(v.map(|s| s.as_str()), Some("1" | "true" | "True" | "TRUE" | "yes"))
}
