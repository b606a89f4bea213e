//! `/images/*` and `/commit`, over berth-image's store.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_image::store::{ImageUser, ImageUsers, ListOptions, PruneOptions};
use futures_util::TryStreamExt;
use serde_json::json;

use super::query_bool;
use crate::containers::{Filters, Shared};
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/prune", post(prune))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/create", post(create))
        .route("/images/{*rest}", get(by_name_get).delete(remove).post(by_name_post))
}

type Q = Query<HashMap<String, String>>;

/// Which images containers use, for rmi and prune.
pub struct ContainerUsers(pub HashMap<berth_image::digest::Digest, Vec<ImageUser>>);

impl ImageUsers for ContainerUsers {
    fn users_of(&self, image: &berth_image::digest::Digest) -> Vec<ImageUser> {
        self.0.get(image).cloned().unwrap_or_default()
    }
}

impl crate::Daemon {
    pub async fn image_users(&self) -> ContainerUsers {
        let mut map: HashMap<berth_image::digest::Digest, Vec<ImageUser>> = HashMap::new();
        for h in self.containers.all() {
            let c = h.lock().await;
            if let Ok(d) = c.image_id.parse::<berth_image::digest::Digest>() {
                map.entry(d).or_default().push(ImageUser { container_id: c.id.clone(), running: c.state.status.is_alive() });
            }
        }
        ContainerUsers(map)
    }

    pub async fn disk_usage(&self) -> ApiResult<serde_json::Value> {
        let users = self.image_users().await;
        let images = self.images.clone();
        let du = tokio::task::spawn_blocking(move || images.disk_usage(&users)).await??;
        let mut containers = Vec::new();
        for h in self.containers.all() {
            let c = h.lock().await.clone();
            let (rw, rootfs) = self.container_sizes(&c).await;
            let mut v = crate::containers::summary_json(&c);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
            containers.push(v);
        }
        let mut v = serde_json::to_value(&du).map_err(|e| ApiError::internal(e.to_string()))?;
        v["Containers"] = json!(containers);
        v["Volumes"] = self.volumes_usage().await;
        if v.get("BuildCache").is_none() {
            v["BuildCache"] = json!([]);
        }
        Ok(v)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn list(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    let first = |k: &str| f.get(k).first().cloned();
    let opts = ListOptions {
        all: query_bool(q.get("all")),
        dangling: first("dangling").map(|v| v == "true" || v == "1"),
        reference: f.get("reference").to_vec(),
        label: f.get("label").to_vec(),
        before: first("before"),
        since: first("since"),
    };
    let images = d.images.clone();
    let mut list = blocking(move || Ok(images.list(&opts)?)).await?;
    let users = d.image_users().await;
    for img in &mut list {
        if let Ok(id) = img.id.parse::<berth_image::digest::Digest>() {
            img.containers = users.users_of(&id).len() as i64;
        }
    }
    Ok(axum::Json(list).into_response())
}

async fn prune(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    let all = f.get("dangling").first().is_some_and(|v| v == "false" || v == "0");
    let opts = PruneOptions { all, label: f.get("label").to_vec() };
    let users = d.image_users().await;
    let images = d.images.clone();
    let report = blocking(move || Ok(images.prune(&opts, &users)?)).await?;
    for item in &report.images_deleted {
        if let Some(id) = &item.deleted {
            d.events.image(id, "delete", &[]);
        }
    }
    Ok(axum::Json(report).into_response())
}

/// The request body as a blocking reader, for the image store.
pub fn body_reader(body: Body) -> tokio_util::io::SyncIoBridge<impl tokio::io::AsyncRead + Unpin> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

/// A response body written by blocking code.
pub fn blocking_body(
    content_type: &'static str,
    f: impl FnOnce(&mut dyn std::io::Write) -> ApiResult<()> + Send + 'static,
) -> Response {
    let (reader, writer) = tokio::io::duplex(256 * 1024);
    tokio::task::spawn_blocking(move || {
        let mut w = tokio_util::io::SyncIoBridge::new(writer);
        if let Err(e) = f(&mut w) {
            tracing::warn!("streamed response failed: {e}");
        }
        let _ = std::io::Write::flush(&mut w);
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn load(State(d): State<Shared>, Query(q): Q, body: Body) -> ApiResult<Response> {
    // `quiet` only silences progress; the "Loaded image" lines always come.
    let _quiet = query_bool(q.get("quiet"));
    let images = d.images.clone();
    let reader = body_reader(body);
    let report = blocking(move || Ok(images.load(reader)?)).await?;
    for img in &report.images {
        d.events.image(&img.to_string(), "load", &[]);
    }
    let mut out = String::new();
    for line in &report.lines {
        out.push_str(&json!({"stream": format!("{line}\n")}).to_string());
        out.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

async fn save_names(d: Shared, names: Vec<String>) -> ApiResult<Response> {
    let images = d.images.clone();
    // Resolve first so a missing image is a 404, not a broken stream.
    let check = names.clone();
    let images2 = images.clone();
    blocking(move || {
        for n in &check {
            images2.resolve(n).map_err(|e| match e.kind() {
                berth_image::ErrorKind::NotFound => ApiError::not_found(format!("reference does not exist: {n}")),
                _ => ApiError::from(e),
            })?;
        }
        Ok(())
    })
    .await?;
    for n in &names {
        d.events.image(n, "save", &[]);
    }
    Ok(blocking_body("application/x-tar", move |w| Ok(images.save(&names, w)?)))
}

async fn save_many(State(d): State<Shared>, axum::extract::RawQuery(raw): axum::extract::RawQuery) -> ApiResult<Response> {
    let names: Vec<String> = raw
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("names="))
        .map(percent_decode)
        .collect();
    if names.is_empty() {
        return Err(ApiError::invalid("no images named"));
    }
    save_names(d, names).await
}

/// `%2F` → `/` for names in a raw query string.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn create(State(d): State<Shared>, Query(q): Q, Query(pairs): Query<Vec<(String, String)>>, headers: axum::http::HeaderMap, body: Body) -> ApiResult<Response> {
    if q.get("fromImage").is_some_and(|f| !f.is_empty()) {
        return super::registry::pull(d, &q, &headers).await;
    }
    let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid("fromImage or fromSrc is required"));
    };
    if src != "-" {
        return Err(ApiError::not_implemented("import from a URL is not implemented yet (use -)"));
    }
    let reference = match (q.get("repo").filter(|r| !r.is_empty()), q.get("tag").filter(|t| !t.is_empty())) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.clone()),
        _ => None,
    };
    let changes = super::query_lines(&pairs, "changes");
    let opts = berth_image::archive::ImportOptions {
        reference,
        changes,
        message: q.get("message").cloned().unwrap_or_default(),
        source: "-".into(),
    };
    let images = d.images.clone();
    let reader = body_reader(body);
    let id = blocking(move || Ok(images.import(reader, &opts)?)).await?;
    d.events.image(&id.to_string(), "import", &[]);
    let line = json!({"status": id.to_string()}).to_string() + "\n";
    Ok(([(header::CONTENT_TYPE, "application/json")], line).into_response())
}

/// Split `/images/<name>/<action>`: names may hold slashes.
fn split_action<'a>(rest: &'a str, actions: &[&'a str]) -> (&'a str, Option<&'a str>) {
    for a in actions {
        if let Some(name) = rest.strip_suffix(&format!("/{a}")) {
            return (name, Some(a));
        }
    }
    (rest, None)
}

async fn by_name_get(State(d): State<Shared>, Path(rest): Path<String>) -> ApiResult<Response> {
    let (name, action) = split_action(&rest, &["json", "history", "get"]);
    let name = name.to_owned();
    let images = d.images.clone();
    match action {
        Some("json") => {
            let n = name.clone();
            let v = blocking(move || images.inspect(&n).map_err(|e| not_found_image(&n, e))).await?;
            Ok(axum::Json(v).into_response())
        }
        Some("history") => {
            let n = name.clone();
            let v = blocking(move || images.history(&n).map_err(|e| not_found_image(&n, e))).await?;
            Ok(axum::Json(v).into_response())
        }
        Some("get") => save_names(d, vec![name]).await,
        _ => Err(ApiError::not_found(format!("page not found: /images/{rest}"))),
    }
}

fn not_found_image(name: &str, e: berth_image::store::StoreError) -> ApiError {
    match e.kind() {
        berth_image::ErrorKind::NotFound => ApiError::not_found(format!("No such image: {name}")),
        _ => ApiError::from(e),
    }
}

async fn by_name_post(State(d): State<Shared>, Path(rest): Path<String>, Query(q): Q, headers: axum::http::HeaderMap) -> ApiResult<Response> {
    let (name, action) = split_action(&rest, &["tag", "push"]);
    match action {
        Some("tag") => {
            let repo = q.get("repo").cloned().unwrap_or_default();
            let target = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo,
            };
            let (images, source, t) = (d.images.clone(), name.to_owned(), target.clone());
            blocking(move || images.tag(&source, &t).map_err(|e| not_found_image(&source, e))).await?;
            d.events.image(name, "tag", &[("name", &target)]);
            Ok(StatusCode::CREATED.into_response())
        }
        Some("push") => super::registry::push(d, name, &q, &headers).await,
        _ => Err(ApiError::not_found(format!("page not found: /images/{rest}"))),
    }
}

async fn remove(State(d): State<Shared>, Path(name): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let force = query_bool(q.get("force"));
    let prune = !query_bool(q.get("noprune"));
    let users = d.image_users().await;
    let images = d.images.clone();
    let n = name.clone();
    let items = blocking(move || images.remove(&n, force, prune, &users).map_err(|e| not_found_image(&n, e))).await?;
    for item in &items {
        if let Some(t) = &item.untagged {
            d.events.image(t, "untag", &[]);
        }
        if let Some(id) = &item.deleted {
            d.events.image(id, "delete", &[]);
        }
    }
    Ok(axum::Json(items).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_split_from_their_action() {
        assert_eq!(split_action("localhost:5000/a/b:1/json", &["json"]), ("localhost:5000/a/b:1", Some("json")));
        assert_eq!(split_action("busybox", &["json"]), ("busybox", None));
        assert_eq!(percent_decode("a%2Fb%3A1"), "a/b:1");
    }
}
