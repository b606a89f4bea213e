//! `/containers/*`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_api::models::ContainerCreateBody;
use serde_json::json;

use super::query_bool;
use crate::containers::{Filters, Shared};
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/rename", post(rename))
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
