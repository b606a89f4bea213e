//! `/containers/*`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api::models::ContainerCreateBody;
use serde_json::json;

use std::path::PathBuf;

use super::query_bool;
use crate::containers::{Filters, Shared, fs};
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/rename", post(rename))
        .merge(fs_router())
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/update", post(update))
}

type Q = Query<HashMap<String, String>>;

/// A JSON body, with docker's 400 for a malformed one.
pub fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))
}

async fn create(State(d): State<Shared>, Query(q): Q, body: axum::body::Bytes) -> ApiResult<Response> {
    let body: ContainerCreateBody = parse_body(&body)?;
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
        let want = format!("linux/{}", crate::system::goarch());
        if p != "linux" && !p.starts_with(&want) {
            return Err(ApiError::not_found(format!(
                "image with reference {} was found but does not match the specified platform: wanted {p}",
                body.image.clone().unwrap_or_default()
            )));
        }
    }
    let (id, warnings) = d.create_container(q.get("name").cloned(), body).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"Id": id, "Warnings": warnings}))).into_response())
}

async fn list(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let filters = Filters::parse(q.get("filters").map(String::as_str))?;
    let limit = q.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    let all = query_bool(q.get("all")) || limit.is_some();
    let list = d.list_containers(all, limit, query_bool(q.get("size")), &filters).await?;
    Ok(axum::Json(list).into_response())
}

async fn inspect(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    Ok(axum::Json(d.inspect_container(&id, query_bool(q.get("size"))).await?).into_response())
}

async fn rename(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let name = q.get("name").cloned().unwrap_or_default();
    d.rename_container(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn fs_router() -> Router<Shared> {
    Router::new()
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/archive", get(archive_get).head(archive_head).put(archive_put))
        .route("/commit", post(commit))
}

async fn changes(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let h = d.container(&id)?;
    let cid = h.lock().await.id.clone();
    let images = d.images.clone();
    let list = fs::hide_init_paths(tokio::task::spawn_blocking(move || images.diff(&cid)).await??);
    // docker answers null, not [], when nothing changed.
    if list.is_empty() {
        return Ok(axum::Json(serde_json::Value::Null).into_response());
    }
    Ok(axum::Json(list).into_response())
}

async fn export(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let h = d.container(&id)?;
    let (cid, name) = {
        let c = h.lock().await;
        (c.id.clone(), c.name.clone())
    };
    let (images, target) = (d.images.clone(), d.rootfs_dir(&cid));
    d.events.container(&cid, "export", &[("name", &name)]);
    Ok(super::images::blocking_body("application/x-tar", move |w| {
        fs::with_rootfs(&images, &cid, &target, |root| Ok(berth_image::store::ImageStore::export_rootfs(root, w)?))
    }))
}

/// The container's filesystem with its mounts, as `docker cp` sees it.
async fn archive_target(d: &Shared, id: &str) -> ApiResult<std::sync::Arc<crate::volumes::mounts::ContainerFs>> {
    let h = d.container(id)?;
    let container = h.lock().await.clone();
    let target: PathBuf = d.rootfs_dir(&container.id);
    Ok(std::sync::Arc::new(crate::volumes::mounts::ContainerFs { images: d.images.clone(), volumes: d.volumes.clone(), container, target }))
}

async fn archive_head(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let path = q.get("path").cloned().ok_or_else(|| ApiError::invalid("path is required"))?;
    let cfs = archive_target(&d, &id).await?;
    let stat = tokio::task::spawn_blocking(move || cfs.with(|root| fs::path_stat(&fs::resolve_in_root(root, &path, false)?, &path)))
    .await??;
    Ok(([("X-Docker-Container-Path-Stat", stat)], "").into_response())
}

async fn archive_get(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let path = q.get("path").cloned().ok_or_else(|| ApiError::invalid("path is required"))?;
    let cfs = archive_target(&d, &id).await?;
    // Stat first, so a missing path is a 404 before the stream starts.
    let (p2, c2) = (path.clone(), cfs.clone());
    let stat = tokio::task::spawn_blocking(move || c2.with(|root| fs::path_stat(&fs::resolve_in_root(root, &p2, false)?, &p2))).await??;
    let mut resp = super::images::blocking_body("application/x-tar", move |w| {
        cfs.with(|root| {
            let host = fs::resolve_in_root(root, &path, false)?;
            fs::archive_path(&host, &path, w)
        })
    });
    resp.headers_mut().insert("X-Docker-Container-Path-Stat", stat.parse().map_err(|_| ApiError::internal("stat header"))?);
    Ok(resp)
}

async fn archive_put(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q, body: axum::body::Body) -> ApiResult<Response> {
    let path = q.get("path").cloned().ok_or_else(|| ApiError::invalid("path is required"))?;
    let no_overwrite = query_bool(q.get("noOverwriteDirNonDir"));
    let cfs = archive_target(&d, &id).await?;
    let reader = super::images::body_reader(body);
    tokio::task::spawn_blocking(move || cfs.with(|root| fs::extract_into(root, &path, reader, no_overwrite))).await??;
    Ok(StatusCode::OK.into_response())
}

async fn commit(State(d): State<Shared>, Query(q): Q, Query(pairs): Query<Vec<(String, String)>>, body: axum::body::Bytes) -> ApiResult<Response> {
    let reference = q.get("container").cloned().unwrap_or_default();
    let h = d.container(&reference)?;
    let c = h.lock().await.clone();
    let mut config: berth_api::models::ContainerConfig = parse_body(&body)?;
    // Fields the client left out come from the container.
    if config.cmd.is_none() {
        config.cmd = c.config.cmd.clone();
    }
    if config.entrypoint.is_none() {
        config.entrypoint = c.config.entrypoint.clone();
    }
    if config.env.is_none() {
        config.env = c.config.env.clone();
    }
    if config.working_dir.is_none() {
        config.working_dir = c.config.working_dir.clone();
    }
    if config.user.is_none() {
        config.user = c.config.user.clone();
    }
    if config.labels.is_none() {
        config.labels = c.config.labels.clone();
    }
    if config.exposed_ports.is_none() {
        config.exposed_ports = c.config.exposed_ports.clone();
    }
    let image_config: Option<berth_image::model::ContainerConfig> =
        serde_json::to_value(&config).ok().and_then(|v| serde_json::from_value(v).ok());
    let reference_name = match (q.get("repo").filter(|r| !r.is_empty()), q.get("tag").filter(|t| !t.is_empty())) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.clone()),
        _ => None,
    };
    let opts = berth_image::commit::CommitOptions {
        reference: reference_name,
        author: q.get("author").cloned().unwrap_or_default(),
        message: q.get("comment").cloned().unwrap_or_default(),
        changes: super::query_lines(&pairs, "changes"),
        config: image_config,
        container_id: c.id.clone(),
        placeholders: fs::init_placeholders(),
    };
    let pause = q.get("pause").is_none_or(|p| p != "0" && p != "false") && fs::running(&c);
    let pauser = fs::RuntimePauser { runtime: d.runtime(), id: c.id.clone() };
    let images = d.images.clone();
    let (cid, image) = (c.id.clone(), c.image_id.clone());
    let id = tokio::task::spawn_blocking(move || {
        let p: Option<&dyn berth_image::commit::Pauser> = if pause { Some(&pauser) } else { None };
        images.commit(&cid, &image, &opts, p)
    })
    .await??;
    d.events.container(&c.id, "commit", &[("name", &c.name), ("imageID", &id.to_string())]);
    Ok((StatusCode::CREATED, axum::Json(json!({"Id": id.to_string()}))).into_response())
}

async fn top(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let args = q.get("ps_args").cloned().unwrap_or_default();
    Ok(axum::Json(d.top(&id, &args).await?).into_response())
}

async fn pause(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    d.pause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unpause(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    d.unpause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn update(State(d): State<Shared>, Path(id): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let hc: berth_api::models::HostConfig = parse_body(&body)?;
    let warnings = d.update_container(&id, hc).await?;
    Ok(axum::Json(json!({"Warnings": warnings})).into_response())
}
