//! The distribution API: one dispatcher over the `/v2/` paths (repository
//! names hold `/`, so the route is found from the end of the path), OCI
//! JSON errors, and the upload sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::ServerConfig;
use super::auth::{Access, AuthMode, Authenticator};
use super::storage::{Storage, StorageError, valid_repository, valid_tag};
use berth_image::digest::{Algorithm, Digest, Hasher};
use berth_image::model::media;

const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// An OCI error response.
pub(crate) struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Option<Value>,
    headers: Vec<(HeaderName, String)>,
}

impl OciError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError { status, code, message: message.into(), detail: None, headers: Vec::new() }
    }
    fn detail(mut self, d: Value) -> OciError {
        self.detail = Some(d);
        self
    }
    fn header(mut self, name: HeaderName, value: String) -> OciError {
        self.headers.push((name, value));
        self
    }
    fn blob_unknown(d: &str) -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown to registry").detail(json!({ "digest": d }))
    }
    fn manifest_unknown(r: &str) -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown").detail(json!({ "reference": r }))
    }
    fn name_unknown(n: &str) -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "repository name not known to registry").detail(json!({ "name": n }))
    }
    fn digest_invalid(msg: impl Into<String>) -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", msg)
    }
    fn manifest_invalid(msg: impl Into<String>) -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", msg)
    }
    fn upload_unknown() -> OciError {
        OciError::new(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
    }
    fn unsupported(msg: &str) -> OciError {
        OciError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", msg)
    }
    fn internal(e: impl std::fmt::Display) -> OciError {
        tracing::error!(error = %e, "registry storage");
        // Internals stay in the log; the client learns only that it failed.
        OciError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal error")
    }
}

impl From<StorageError> for OciError {
    fn from(e: StorageError) -> OciError {
        OciError::internal(e)
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let mut err = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.detail {
            err["detail"] = d;
        }
        let body = serde_json::to_vec(&json!({ "errors": [err] })).expect("error serializes");
        let mut r = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len());
        for (k, v) in self.headers {
            r = r.header(k, v);
        }
        r.body(Body::from(body)).expect("valid response")
    }
}

type Res = Result<Response, OciError>;

struct Upload {
    repo: String,
    size: u64,
    /// Running hash; `None` after a failed write or a restart (rehashed
    /// from the file at the end).
    hasher: Option<Hasher>,
    algorithm: Algorithm,
}

/// The registry's shared state.
pub(crate) struct Registry {
    storage: Storage,
    auth: Authenticator,
    tls: bool,
    read_only: bool,
    delete_enabled: bool,
    max_manifest: usize,
    uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Upload>>>>,
}

impl Registry {
    pub(crate) fn new(config: &ServerConfig) -> Result<Registry, super::ServerError> {
        Ok(Registry {
            storage: Storage::open(&config.root)?,
            auth: Authenticator::new(config.auth.clone())?,
            tls: config.tls.is_some(),
            read_only: config.read_only,
            delete_enabled: config.delete_enabled,
            max_manifest: config.max_manifest_size,
            uploads: Mutex::new(HashMap::new()),
        })
    }
}

pub(crate) fn router(state: Arc<Registry>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

enum Route {
    Ping,
    Catalog,
    Token,
    Search,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

fn parse_route(path: &str) -> Option<Route> {
    match path {
        "/v2" | "/v2/" => return Some(Route::Ping),
        "/v2/_catalog" => return Some(Route::Catalog),
        "/token" => return Some(Route::Token),
        "/v1/search" => return Some(Route::Search),
        _ => {}
    }
    let rest = path.strip_prefix("/v2/")?;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_owned()));
    }
    let (head, last) = rest.rsplit_once('/')?;
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Some(if last.is_empty() { Route::UploadStart(name.to_owned()) } else { Route::Upload(name.to_owned(), last.to_owned()) });
    }
    if let Some(name) = head.strip_suffix("/blobs") {
        if last == "uploads" {
            return Some(Route::UploadStart(name.to_owned()));
        }
        return Some(Route::Blob(name.to_owned(), last.to_owned()));
    }
    if let Some(name) = head.strip_suffix("/manifests") {
        return Some(Route::Manifest(name.to_owned(), last.to_owned()));
    }
    if let Some(name) = head.strip_suffix("/referrers") {
        return Some(Route::Referrers(name.to_owned(), last.to_owned()));
    }
    None
}

fn query(req: &Request) -> Vec<(String, String)> {
    req.uri().query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn q<'a>(qs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    qs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn repo_access(name: &str, action: &'static str) -> Option<Access> {
    Some(Access { kind: "repository", name: name.to_owned(), action })
}

async fn dispatch(State(reg): State<Arc<Registry>>, req: Request) -> Response {
    let mut resp = match handle(&reg, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    resp
}

async fn handle(reg: &Registry, req: Request) -> Res {
    let path = req.uri().path().to_owned();
    let route = parse_route(&path).ok_or_else(|| OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "no such endpoint"))?;
    let method = req.method().clone();
    let writes = matches!(method, Method::PUT | Method::POST | Method::PATCH | Method::DELETE);
    // Who may do what.
    let access = match &route {
        Route::Ping | Route::Token | Route::Search => None,
        Route::Catalog => Some(Access { kind: "registry", name: "catalog".into(), action: "*" }),
        Route::Tags(n) | Route::Manifest(n, _) | Route::Blob(n, _) | Route::UploadStart(n) | Route::Upload(n, _) | Route::Referrers(n, _) => {
            if !valid_repository(n) {
                return Err(OciError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", "invalid repository name").detail(json!({ "name": n })));
            }
            let action = match (&route, &method) {
                (Route::Manifest(..) | Route::Blob(..), &Method::DELETE) => "delete",
                _ if writes => "push",
                _ => "pull",
            };
            repo_access(n, action)
        }
    };
    let qs = query(&req);
    if !matches!(route, Route::Token) && !matches!(reg.auth.mode, AuthMode::None) {
        let authz = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        // A mount also reads the source repository: a token must say so.
        let mut needed: Vec<Access> = access.iter().cloned().collect();
        if let (Route::UploadStart(_), Some(_), Some(from)) = (&route, q(&qs, "mount"), q(&qs, "from"))
            && valid_repository(from)
            && matches!(reg.auth.mode, AuthMode::Token { .. })
        {
            needed.extend(repo_access(from, "pull"));
        }
        let ok = if needed.is_empty() { reg.auth.allowed(authz, None) } else { needed.iter().all(|a| reg.auth.allowed(authz, Some(a))) };
        if !ok {
            let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
            let base = format!("{}://{host}", if reg.tls { "https" } else { "http" });
            return Err(OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required")
                .header(header::WWW_AUTHENTICATE, reg.auth.challenge(&base, &needed)));
        }
    }
    if writes && reg.read_only && !matches!(route, Route::Token) {
        return Err(OciError::unsupported("the registry is read-only"));
    }
    match (route, method) {
        (Route::Ping, Method::GET | Method::HEAD) => Ok(empty(StatusCode::OK, &[]).into_response()),
        (Route::Token, Method::GET | Method::POST) => token(reg, &req, &qs),
        (Route::Search, Method::GET) => search(reg, &qs),
        (Route::Catalog, Method::GET) => catalog(reg, &qs),
        (Route::Tags(n), Method::GET) => tags(reg, &n, &qs),
        (Route::Manifest(n, r), Method::GET) => get_manifest(reg, &n, &r, true),
        (Route::Manifest(n, r), Method::HEAD) => get_manifest(reg, &n, &r, false),
        (Route::Manifest(n, r), Method::PUT) => put_manifest(reg, &n, &r, &qs, req).await,
        (Route::Manifest(n, r), Method::DELETE) => delete_manifest(reg, &n, &r),
        (Route::Blob(n, d), Method::GET) => get_blob(reg, &n, &d, req.headers(), true).await,
        (Route::Blob(n, d), Method::HEAD) => get_blob(reg, &n, &d, req.headers(), false).await,
        (Route::Blob(n, d), Method::DELETE) => delete_blob(reg, &n, &d),
        (Route::UploadStart(n), Method::POST) => start_upload(reg, &n, &qs, req).await,
        (Route::Upload(n, id), Method::GET) => upload_status(reg, &n, &id).await,
        (Route::Upload(n, id), Method::PATCH) => patch_upload(reg, &n, &id, req).await,
        (Route::Upload(n, id), Method::PUT) => put_upload(reg, &n, &id, &qs, req).await,
        (Route::Upload(n, id), Method::DELETE) => cancel_upload(reg, &n, &id).await,
        (Route::Referrers(n, d), Method::GET) => referrers(reg, &n, &d, &qs),
        _ => Err(OciError::unsupported("method not allowed")),
    }
}

fn empty(status: StatusCode, headers: &[(HeaderName, String)]) -> Response {
    let mut r = Response::builder().status(status).header(header::CONTENT_LENGTH, "0");
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.body(Body::empty()).expect("valid response")
}

fn json_response(status: StatusCode, content_type: &str, v: &Value, headers: &[(HeaderName, String)]) -> Response {
    let body = serde_json::to_vec(v).expect("json serializes");
    let mut r = Response::builder().status(status).header(header::CONTENT_TYPE, content_type).header(header::CONTENT_LENGTH, body.len());
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.body(Body::from(body)).expect("valid response")
}

fn hn(s: &'static str) -> HeaderName {
    HeaderName::from_static(s)
}

fn parse_digest(s: &str) -> Result<Digest, OciError> {
    s.parse::<Digest>().map_err(|e| OciError::digest_invalid(e.to_string()).detail(json!({ "digest": s })))
}

// ---- discovery ---------------------------------------------------------

fn paginate(all: Vec<String>, qs: &[(String, String)]) -> (Vec<String>, bool) {
    let mut items: Vec<String> = match q(qs, "last") {
        Some(last) => all.into_iter().filter(|t| t.as_str() > last).collect(),
        None => all,
    };
    let n = q(qs, "n").and_then(|n| n.parse::<usize>().ok());
    match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            (items, n > 0)
        }
        _ => (items, false),
    }
}

fn tags(reg: &Registry, name: &str, qs: &[(String, String)]) -> Res {
    if !reg.storage.repo_exists(name) {
        return Err(OciError::name_unknown(name));
    }
    let (list, more) = paginate(reg.storage.tags(name)?, qs);
    let mut headers = Vec::new();
    if more && let Some(last) = list.last() {
        let n = q(qs, "n").unwrap_or_default();
        headers.push((header::LINK, format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\"")));
    }
    Ok(json_response(StatusCode::OK, "application/json", &json!({ "name": name, "tags": list }), &headers))
}

fn catalog(reg: &Registry, qs: &[(String, String)]) -> Res {
    let (list, more) = paginate(reg.storage.repositories()?, qs);
    let mut headers = Vec::new();
    if more && let Some(last) = list.last() {
        let n = q(qs, "n").unwrap_or_default();
        headers.push((header::LINK, format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\"")));
    }
    Ok(json_response(StatusCode::OK, "application/json", &json!({ "repositories": list }), &headers))
}

/// docker's v1 search over the repository names.
fn search(reg: &Registry, qs: &[(String, String)]) -> Res {
    let term = q(qs, "q").unwrap_or_default().to_ascii_lowercase();
    let limit = q(qs, "n").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(25);
    let results: Vec<Value> = reg
        .storage
        .repositories()?
        .into_iter()
        .filter(|r| r.contains(&term))
        .take(limit)
        .map(|r| json!({ "name": r, "description": "", "star_count": 0, "is_official": false, "is_automated": false }))
        .collect();
    let body = json!({ "num_results": results.len(), "query": term, "page": 1, "page_size": limit, "num_pages": 1, "results": results });
    Ok(json_response(StatusCode::OK, "application/json", &body, &[]))
}

fn token(reg: &Registry, req: &Request, qs: &[(String, String)]) -> Res {
    if !matches!(reg.auth.mode, AuthMode::Token { .. }) {
        return Err(OciError::new(StatusCode::NOT_FOUND, "UNSUPPORTED", "this registry issues no tokens"));
    }
    let scopes: Vec<String> = qs.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ').map(str::to_owned)).collect();
    let authz = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match reg.auth.issue_token(authz, &scopes) {
        Some(t) => {
            let body = json!({
                "token": t, "access_token": t, "expires_in": super::auth::TOKEN_LIFETIME_SECS,
                "issued_at": berth_image::model::now_rfc3339(),
            });
            Ok(json_response(StatusCode::OK, "application/json", &body, &[]))
        }
        None => Err(OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid username or password")),
    }
}

fn referrers(reg: &Registry, name: &str, d: &str, qs: &[(String, String)]) -> Res {
    let subject = parse_digest(d)?;
    let mut list = reg.storage.referrers(name, &subject)?;
    let mut headers = Vec::new();
    if let Some(at) = q(qs, "artifactType") {
        list.retain(|v| v.get("artifactType").and_then(Value::as_str) == Some(at));
        headers.push((hn("oci-filters-applied"), "artifactType".to_owned()));
    }
    let body = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": list });
    Ok(json_response(StatusCode::OK, media::OCI_INDEX, &body, &headers))
}

// ---- manifests ---------------------------------------------------------

/// Resolve a tag or digest to the manifest's digest and media type.
fn resolve(reg: &Registry, name: &str, reference: &str) -> Result<(Digest, String), OciError> {
    let d = if reference.contains(':') {
        parse_digest(reference)?
    } else {
        if !valid_tag(reference) {
            return Err(OciError::manifest_unknown(reference));
        }
        reg.storage.tag(name, reference).ok_or_else(|| OciError::manifest_unknown(reference))?
    };
    let mt = reg.storage.manifest_media_type(name, &d).ok_or_else(|| OciError::manifest_unknown(reference))?;
    Ok((d, mt))
}

fn get_manifest(reg: &Registry, name: &str, reference: &str, body: bool) -> Res {
    let (d, mt) = resolve(reg, name, reference)?;
    let data = reg.storage.read_blob(&d)?;
    let r = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, mt)
        .header(header::CONTENT_LENGTH, data.len())
        .header(hn("docker-content-digest"), d.to_string())
        .header(header::ETAG, format!("\"{d}\""));
    Ok(r.body(if body { Body::from(data) } else { Body::empty() }).expect("valid response"))
}

/// What a pushed manifest refers to.
struct ParsedManifest {
    media_type: String,
    blobs: Vec<Digest>,
    manifests: Vec<Digest>,
    subject: Option<Digest>,
    artifact_type: Option<String>,
    annotations: Option<Value>,
}

fn descriptor(v: &Value, what: &str) -> Result<(String, Digest), OciError> {
    let bad = |m: &str| OciError::manifest_invalid(format!("{what}: {m}"));
    let o = v.as_object().ok_or_else(|| bad("not a descriptor"))?;
    let mt = o.get("mediaType").and_then(Value::as_str).ok_or_else(|| bad("mediaType missing"))?;
    let d = o.get("digest").and_then(Value::as_str).ok_or_else(|| bad("digest missing"))?;
    let d: Digest = d.parse().map_err(|e: berth_image::digest::DigestError| bad(&e.to_string()))?;
    let size_ok = o.get("size").and_then(Value::as_i64).is_some_and(|n| n >= 0);
    if !size_ok {
        return Err(bad("size missing or negative"));
    }
    Ok((mt.to_owned(), d))
}

fn parse_manifest(content_type: Option<&str>, body: &[u8]) -> Result<ParsedManifest, OciError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| OciError::manifest_invalid(format!("invalid json: {e}")))?;
    let o = v.as_object().ok_or_else(|| OciError::manifest_invalid("not a json object"))?;
    let field_mt = o.get("mediaType").and_then(Value::as_str);
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim()).filter(|c| !c.is_empty());
    let media_type = match (ct, field_mt) {
        (Some(c), Some(f)) if c != f => {
            return Err(OciError::manifest_invalid(format!("content type {c} does not match the manifest's mediaType {f}")));
        }
        (_, Some(f)) => f.to_owned(),
        (Some(c), None) => c.to_owned(),
        (None, None) => {
            if o.contains_key("manifests") { media::OCI_INDEX } else { media::OCI_MANIFEST }.to_owned()
        }
    };
    if o.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(OciError::manifest_invalid("schemaVersion must be 2"));
    }
    let mut p = ParsedManifest { media_type, blobs: Vec::new(), manifests: Vec::new(), subject: None, artifact_type: None, annotations: None };
    p.annotations = o.get("annotations").filter(|a| a.as_object().is_some_and(|m| !m.is_empty())).cloned();
    p.artifact_type = o.get("artifactType").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    if let Some(s) = o.get("subject") {
        p.subject = Some(descriptor(s, "subject")?.1);
    }
    if media::is_manifest(&p.media_type) {
        let (cmt, cd) = descriptor(o.get("config").ok_or_else(|| OciError::manifest_invalid("config missing"))?, "config")?;
        p.blobs.push(cd);
        if p.artifact_type.is_none() && p.media_type == media::OCI_MANIFEST {
            p.artifact_type = Some(cmt);
        }
        let layers = o.get("layers").and_then(Value::as_array).ok_or_else(|| OciError::manifest_invalid("layers missing"))?;
        for l in layers {
            let (lmt, ld) = descriptor(l, "layer")?;
            // Non-distributable (foreign) layers live elsewhere.
            if !lmt.contains("nondistributable") && !lmt.contains("foreign") {
                p.blobs.push(ld);
            }
        }
    } else if media::is_index(&p.media_type) {
        let ms = o.get("manifests").and_then(Value::as_array).ok_or_else(|| OciError::manifest_invalid("manifests missing"))?;
        for m in ms {
            p.manifests.push(descriptor(m, "manifest")?.1);
        }
    } else {
        return Err(OciError::manifest_invalid(format!("unsupported manifest media type {:?}", p.media_type)));
    }
    Ok(p)
}

async fn put_manifest(reg: &Registry, name: &str, reference: &str, qs: &[(String, String)], req: Request) -> Res {
    let by_digest = reference.contains(':');
    let expected = if by_digest { Some(parse_digest(reference)?) } else { None };
    if !by_digest && !valid_tag(reference) {
        return Err(OciError::manifest_invalid("invalid tag").detail(json!({ "tag": reference })));
    }
    let extra_tags: Vec<&str> = qs.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.as_str()).collect();
    if let Some(t) = extra_tags.iter().find(|t| !valid_tag(t)) {
        return Err(OciError::manifest_invalid("invalid tag").detail(json!({ "tag": t })));
    }
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = axum::body::to_bytes(req.into_body(), reg.max_manifest).await.map_err(|_| {
        OciError::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", format!("manifest larger than {} bytes", reg.max_manifest))
    })?;
    let d = match &expected {
        Some(exp) => {
            let mut h = Hasher::new(exp.algorithm());
            h.update(&body);
            let actual = h.finish();
            if &actual != exp {
                return Err(OciError::digest_invalid("manifest digest did not match its content").detail(json!({ "expected": exp.to_string(), "actual": actual.to_string() })));
            }
            actual
        }
        None => Digest::sha256_of(&body),
    };
    let p = parse_manifest(ct.as_deref(), &body)?;
    let missing: Vec<String> = p
        .blobs
        .iter()
        .filter(|b| reg.storage.repo_blob_size(name, b).is_none())
        .chain(p.manifests.iter().filter(|m| reg.storage.manifest_media_type(name, m).is_none()))
        .map(|d| d.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(OciError::new(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry")
            .detail(json!({ "digests": missing })));
    }
    reg.storage.put_blob_bytes(&d, &body)?;
    reg.storage.link_manifest(name, &d, &p.media_type)?;
    let mut headers = vec![
        (header::LOCATION, format!("/v2/{name}/manifests/{d}")),
        (hn("docker-content-digest"), d.to_string()),
    ];
    if let Some(subject) = &p.subject {
        let mut desc = json!({ "mediaType": p.media_type, "digest": d.to_string(), "size": body.len() });
        if let Some(at) = &p.artifact_type {
            desc["artifactType"] = json!(at);
        }
        if let Some(a) = &p.annotations {
            desc["annotations"] = a.clone();
        }
        reg.storage.add_referrer(name, subject, &d, &desc)?;
        headers.push((hn("oci-subject"), subject.to_string()));
    }
    if !by_digest {
        reg.storage.set_tag(name, reference, &d)?;
    }
    for t in &extra_tags {
        reg.storage.set_tag(name, t, &d)?;
        headers.push((hn("oci-tag"), (*t).to_owned()));
    }
    Ok(empty(StatusCode::CREATED, &headers))
}

fn delete_manifest(reg: &Registry, name: &str, reference: &str) -> Res {
    if !reg.delete_enabled {
        return Err(OciError::unsupported("deletes are disabled"));
    }
    if !reg.storage.repo_exists(name) {
        return Err(OciError::name_unknown(name));
    }
    if !reference.contains(':') {
        if !valid_tag(reference) || !reg.storage.delete_tag(name, reference)? {
            return Err(OciError::manifest_unknown(reference));
        }
        return Ok(empty(StatusCode::ACCEPTED, &[]));
    }
    let d = parse_digest(reference)?;
    if reg.storage.manifest_media_type(name, &d).is_none() {
        return Err(OciError::manifest_unknown(reference));
    }
    // The referrers entry goes with the manifest.
    if let Ok(data) = reg.storage.read_blob(&d)
        && let Ok(p) = parse_manifest(None, &data)
        && let Some(s) = p.subject
    {
        reg.storage.remove_referrer(name, &s, &d)?;
    }
    for t in reg.storage.tags_of(name, &d)? {
        reg.storage.delete_tag(name, &t)?;
    }
    reg.storage.unlink_manifest(name, &d)?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

// ---- blobs -------------------------------------------------------------

/// A `Range: bytes=...` header against a blob of `len` bytes: the
/// inclusive range, or `Err` when it cannot be satisfied.
pub(crate) fn parse_range(h: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: serve the whole blob
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        let e: u64 = if b.is_empty() { len.saturating_sub(1) } else { b.parse().map_err(|_| ())? };
        (s, e.min(len.saturating_sub(1)))
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob(reg: &Registry, name: &str, d: &str, headers: &HeaderMap, body: bool) -> Res {
    let digest = parse_digest(d)?;
    let len = reg.storage.repo_blob_size(name, &digest).ok_or_else(|| OciError::blob_unknown(d))?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match range.map(|r| parse_range(r, len)) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(r))) => Some(r),
        Some(Err(())) => {
            return Err(OciError::new(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UNKNOWN", "requested range not satisfiable")
                .header(header::CONTENT_RANGE, format!("bytes */{len}")));
        }
    };
    let (status, start, count) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, len),
    };
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(hn("docker-content-digest"), digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""));
    if range.is_some() {
        r = r.header(header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", start + count - 1));
    }
    if !body {
        return Ok(r.body(Body::empty()).expect("valid response"));
    }
    let path = reg.storage.blob_path(&digest);
    let mut f = tokio::fs::File::open(&path).await.map_err(|e| OciError::internal(format!("{}: {e}", path.display())))?;
    if start > 0 {
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| OciError::internal(format!("{}: {e}", path.display())))?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(tokio::io::AsyncReadExt::take(f, count), 256 << 10);
    Ok(r.body(Body::from_stream(stream)).expect("valid response"))
}

fn delete_blob(reg: &Registry, name: &str, d: &str) -> Res {
    if !reg.delete_enabled {
        return Err(OciError::unsupported("deletes are disabled"));
    }
    let digest = parse_digest(d)?;
    if !reg.storage.unlink_blob(name, &digest)? {
        return Err(OciError::blob_unknown(d));
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

// ---- uploads -----------------------------------------------------------

fn new_upload_id() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

fn upload_headers(name: &str, id: &str, size: u64) -> Vec<(HeaderName, String)> {
    vec![
        (header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}")),
        (header::RANGE, format!("0-{}", size.saturating_sub(1))),
        (hn("docker-upload-uuid"), id.to_owned()),
    ]
}

impl Registry {
    fn create_upload(&self, repo: &str, algorithm: Algorithm) -> Result<(String, Arc<tokio::sync::Mutex<Upload>>), OciError> {
        let id = new_upload_id();
        let dir = self.storage.upload_dir(&id);
        std::fs::create_dir_all(&dir).map_err(OciError::internal)?;
        std::fs::write(dir.join("repo"), repo).map_err(OciError::internal)?;
        std::fs::write(dir.join("data"), b"").map_err(OciError::internal)?;
        let up = Arc::new(tokio::sync::Mutex::new(Upload { repo: repo.to_owned(), size: 0, hasher: Some(Hasher::new(algorithm)), algorithm }));
        self.uploads.lock().unwrap().insert(id.clone(), up.clone());
        Ok((id, up))
    }

    /// An upload session of `repo`, from memory or (after a restart) disk.
    fn upload(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Upload>>, OciError> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OciError::upload_unknown());
        }
        let mut map = self.uploads.lock().unwrap();
        let up = match map.get(id) {
            Some(u) => u.clone(),
            None => {
                let dir = self.storage.upload_dir(id);
                let owner = std::fs::read_to_string(dir.join("repo")).map_err(|_| OciError::upload_unknown())?;
                let size = std::fs::metadata(dir.join("data")).map_err(|_| OciError::upload_unknown())?.len();
                let up = Arc::new(tokio::sync::Mutex::new(Upload { repo: owner, size, hasher: None, algorithm: Algorithm::Sha256 }));
                map.insert(id.to_owned(), up.clone());
                up
            }
        };
        drop(map);
        Ok(up)
    }

    /// Lock an upload session that belongs to `repo`.
    async fn lock_upload(&self, repo: &str, id: &str) -> Result<tokio::sync::OwnedMutexGuard<Upload>, OciError> {
        let g = self.upload(id)?.lock_owned().await;
        if g.repo != repo {
            return Err(OciError::upload_unknown());
        }
        Ok(g)
    }

    fn drop_upload(&self, id: &str) {
        self.uploads.lock().unwrap().remove(id);
        let _ = std::fs::remove_dir_all(self.storage.upload_dir(id));
    }
}

/// Append a request body to an upload's data.
async fn append(path: &Path, up: &mut Upload, body: Body) -> Result<u64, OciError> {
    let mut f = tokio::fs::OpenOptions::new().append(true).open(path).await.map_err(OciError::internal)?;
    let before = up.size;
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    let result: Result<(), String> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            f.write_all(&chunk).await.map_err(|e| e.to_string())?;
            if let Some(h) = &mut up.hasher {
                h.update(&chunk);
            }
            n += chunk.len() as u64;
        }
        f.flush().await.map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => {
            up.size = before + n;
            Ok(n)
        }
        Err(e) => {
            // Keep the session as it was before this request.
            let _ = f.set_len(before).await;
            up.size = before;
            up.hasher = None;
            Err(OciError::new(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID", format!("upload interrupted: {e}")))
        }
    }
}

/// `Content-Range: <start>-<end>` of a chunk must continue the upload.
fn check_range(headers: &HeaderMap, name: &str, id: &str, size: u64) -> Result<Option<u64>, OciError> {
    let Some(v) = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let v = v.trim().trim_start_matches("bytes ").trim_start_matches("bytes=");
    let bad = || OciError::new(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", "chunk out of order").header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}")).header(header::RANGE, format!("0-{}", size.saturating_sub(1)));
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.split('/').next().unwrap_or("").parse().map_err(|_| bad())?);
    if a != size || b < a {
        return Err(bad());
    }
    Ok(Some(b - a + 1))
}

async fn start_upload(reg: &Registry, name: &str, qs: &[(String, String)], req: Request) -> Res {
    // Cross-repository mount.
    if let Some(m) = q(qs, "mount") {
        let d = parse_digest(m)?;
        let from = q(qs, "from");
        let source_ok = match from {
            Some(f) if valid_repository(f) => {
                let authz = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                reg.storage.repo_blob_size(f, &d).is_some() && reg.auth.allowed(authz, repo_access(f, "pull").as_ref())
            }
            Some(_) => false,
            None => reg.storage.blob_exists(&d),
        };
        if source_ok {
            reg.storage.link_blob(name, &d)?;
            return Ok(empty(StatusCode::CREATED, &[
                (header::LOCATION, format!("/v2/{name}/blobs/{d}")),
                (hn("docker-content-digest"), d.to_string()),
            ]));
        }
    }
    let algorithm = match q(qs, "digest-algorithm") {
        None | Some("sha256") => Algorithm::Sha256,
        Some("sha512") => Algorithm::Sha512,
        Some(other) => return Err(OciError::digest_invalid(format!("unsupported digest algorithm {other}"))),
    };
    if let Some(dg) = q(qs, "digest") {
        // Monolithic upload in one POST.
        let d = parse_digest(dg)?;
        let (id, up) = reg.create_upload(name, d.algorithm())?;
        let mut up = up.lock().await;
        let data = reg.storage.upload_dir(&id).join("data");
        if let Err(e) = append(&data, &mut up, req.into_body()).await {
            reg.drop_upload(&id);
            return Err(e);
        }
        return finish_upload(reg, name, &id, &mut up, &d).await;
    }
    let (id, _) = reg.create_upload(name, algorithm)?;
    Ok(empty(StatusCode::ACCEPTED, &upload_headers(name, &id, 0)))
}

async fn upload_status(reg: &Registry, name: &str, id: &str) -> Res {
    let up = reg.lock_upload(name, id).await?;
    Ok(empty(StatusCode::NO_CONTENT, &upload_headers(name, id, up.size)))
}

async fn patch_upload(reg: &Registry, name: &str, id: &str, req: Request) -> Res {
    let mut up = reg.lock_upload(name, id).await?;
    let want = check_range(req.headers(), name, id, up.size)?;
    let data = reg.storage.upload_dir(id).join("data");
    let n = append(&data, &mut up, req.into_body()).await?;
    if want.is_some_and(|w| w != n) {
        let before = up.size - n;
        let f = std::fs::OpenOptions::new().write(true).open(&data).map_err(OciError::internal)?;
        f.set_len(before).map_err(OciError::internal)?;
        up.size = before;
        up.hasher = None;
        return Err(OciError::new(StatusCode::BAD_REQUEST, "SIZE_INVALID", "chunk length does not match its Content-Range"));
    }
    Ok(empty(StatusCode::ACCEPTED, &upload_headers(name, id, up.size)))
}

async fn put_upload(reg: &Registry, name: &str, id: &str, qs: &[(String, String)], req: Request) -> Res {
    let mut up = reg.lock_upload(name, id).await?;
    check_range(req.headers(), name, id, up.size)?;
    let d = parse_digest(q(qs, "digest").ok_or_else(|| OciError::digest_invalid("digest parameter missing"))?)?;
    let data = reg.storage.upload_dir(id).join("data");
    append(&data, &mut up, req.into_body()).await?;
    finish_upload(reg, name, id, &mut up, &d).await
}

/// Verify the upload against `d` and make it the blob.
async fn finish_upload(reg: &Registry, name: &str, id: &str, up: &mut Upload, d: &Digest) -> Res {
    let data: PathBuf = reg.storage.upload_dir(id).join("data");
    let actual = match &up.hasher {
        Some(h) if up.algorithm == d.algorithm() => h.clone().finish(),
        _ => {
            let (p, alg) = (data.clone(), d.algorithm());
            tokio::task::spawn_blocking(move || Storage::hash_file(&p, alg)).await.map_err(OciError::internal)??.0
        }
    };
    if &actual != d {
        reg.drop_upload(id);
        return Err(OciError::digest_invalid("provided digest did not match uploaded content")
            .detail(json!({ "expected": d.to_string(), "actual": actual.to_string() })));
    }
    let (storage, d2, p) = (reg.storage.clone(), d.clone(), data.clone());
    tokio::task::spawn_blocking(move || storage.commit_blob(&p, &d2)).await.map_err(OciError::internal)??;
    reg.storage.link_blob(name, d)?;
    reg.drop_upload(id);
    Ok(empty(StatusCode::CREATED, &[
        (header::LOCATION, format!("/v2/{name}/blobs/{d}")),
        (hn("docker-content-digest"), d.to_string()),
    ]))
}

async fn cancel_upload(reg: &Registry, name: &str, id: &str) -> Res {
    let _g = reg.lock_upload(name, id).await?;
    reg.drop_upload(id);
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_from_the_end() {
        assert!(matches!(parse_route("/v2/"), Some(Route::Ping)));
        assert!(matches!(parse_route("/v2/a/b/tags/list"), Some(Route::Tags(n)) if n == "a/b"));
        assert!(matches!(parse_route("/v2/a/blobs/blobs/sha256:x"), Some(Route::Blob(n, d)) if n == "a/blobs" && d == "sha256:x"));
        assert!(matches!(parse_route("/v2/a/b/blobs/uploads/"), Some(Route::UploadStart(n)) if n == "a/b"));
        assert!(matches!(parse_route("/v2/a/b/blobs/uploads"), Some(Route::UploadStart(n)) if n == "a/b"));
        assert!(matches!(parse_route("/v2/a/blobs/uploads/abc"), Some(Route::Upload(n, i)) if n == "a" && i == "abc"));
        assert!(matches!(parse_route("/v2/m/manifests/latest"), Some(Route::Manifest(n, r)) if n == "m" && r == "latest"));
        assert!(matches!(parse_route("/v2/m/referrers/sha256:x"), Some(Route::Referrers(..))));
        assert!(parse_route("/v2/m/other/x").is_none());
        assert!(parse_route("/etc/passwd").is_none());
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=500-1499", 2000), Ok(Some((500, 1499))));
        assert_eq!(parse_range("bytes=500-", 2000), Ok(Some((500, 1999))));
        assert_eq!(parse_range("bytes=-500", 2000), Ok(Some((1500, 1999))));
        assert_eq!(parse_range("bytes=1000-5000", 2000), Ok(Some((1000, 1999))));
        assert_eq!(parse_range("bytes=500-0", 2000), Err(()));
        assert_eq!(parse_range("bytes=5000-10000", 2000), Err(()));
        assert_eq!(parse_range("items=1-2", 2000), Ok(None));
    }

    #[test]
    fn manifests_are_checked() {
        let d = Digest::sha256_of(b"x");
        let ok = format!(r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.example","digest":"{d}","size":1}},"layers":[{{"mediaType":"{}","digest":"{d}","size":1}}],"subject":{{"mediaType":"{}","digest":"{d}","size":1}}}}"#, media::OCI_MANIFEST, media::OCI_LAYER_NONDIST, media::OCI_MANIFEST);
        let p = parse_manifest(Some(media::OCI_MANIFEST), ok.as_bytes()).unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(p.blobs, vec![d.clone()], "non-distributable layers are not required");
        assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.example"));
        assert_eq!(p.subject, Some(d.clone()));
        assert_eq!(parse_manifest(Some(media::OCI_INDEX), ok.as_bytes()).err().map(|e| e.code), Some("MANIFEST_INVALID"));
        assert_eq!(parse_manifest(None, b"{").err().map(|e| e.code), Some("MANIFEST_INVALID"));
        assert_eq!(parse_manifest(Some("application/x-unknown"), br#"{"schemaVersion":2}"#).err().map(|e| e.code), Some("MANIFEST_INVALID"));
        let bad_digest = ok.replace(&d.to_string(), "sha256:nothex");
        assert_eq!(parse_manifest(None, bad_digest.as_bytes()).err().map(|e| e.code), Some("MANIFEST_INVALID"));
    }
}
