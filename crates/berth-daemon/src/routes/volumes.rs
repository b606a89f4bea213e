//! `/volumes/*`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{RequestVersion, api_version, query_bool};
use crate::containers::{Filters, Shared};
use crate::error::ApiResult;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

type Q = Query<HashMap<String, String>>;

async fn list(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    Ok(axum::Json(d.list_volumes(&f).await?).into_response())
}

async fn create(State(d): State<Shared>, body: axum::body::Bytes) -> ApiResult<Response> {
    let req: berth_api::models::VolumeCreateRequest = super::containers::parse_body(&body)?;
    Ok((StatusCode::CREATED, axum::Json(d.create_volume(req).await?)).into_response())
}

async fn inspect(State(d): State<Shared>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(d.inspect_volume(&name).await?).into_response())
}

async fn remove(State(d): State<Shared>, Path(name): Path<String>, Query(q): Q) -> ApiResult<Response> {
    d.remove_volume(&name, query_bool(q.get("force"))).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(d): State<Shared>, Query(q): Q, req: Request) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    let version = api_version(req.extensions().get::<RequestVersion>());
    Ok(axum::Json(d.prune_volumes(&f, version).await?).into_response())
}
