//! Routes that talk to registries: pull (`POST /images/create?fromImage=`,
//! called from the images router), push, `POST /auth`, `GET
//! /images/search`, `GET /distribution/{name}/json`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_image::model::{Index, Manifest, media};
use berth_image::reference::Reference;
use berth_registry::auth::AuthConfig;
use berth_registry::platform::PlatformSpec;
use berth_registry::progress::ProgressMessage;
use berth_registry::{PullOptions, PushOptions};
use serde_json::json;

use crate::containers::Shared;
use crate::error::{ApiError, ApiResult};
use crate::registry::{Transfer, api_error, header_auth, pull_opening, push_opening};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/auth", post(auth))
        .route("/images/search", get(search))
        .route("/distribution/{*rest}", get(distribution))
}

type Q = Query<HashMap<String, String>>;

fn streamed(t: Transfer) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], t.into_body()).into_response()
}

/// The reference `fromImage` and `tag` name together; `None` for a
/// repository without tag or digest (docker then pulls every tag).
pub fn pull_reference(from: &str, tag: Option<&str>) -> ApiResult<Reference> {
    let named = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_owned(),
    };
    Reference::parse_named(&named).map_err(|e| ApiError::invalid(e.to_string()))
}

/// `POST /images/create?fromImage=&tag=&platform=`.
pub async fn pull(d: Shared, q: &HashMap<String, String>, headers: &HeaderMap) -> ApiResult<Response> {
    let from = q.get("fromImage").cloned().unwrap_or_default();
    let r = pull_reference(&from, q.get("tag").map(String::as_str))?;
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(PlatformSpec::parse(p).map_err(|e| ApiError::invalid(e.to_string()))?),
        None => None,
    };
    let opts = PullOptions { platform, auth: header_auth(headers)? };
    let all_tags = r.tag().is_none() && r.digest().is_none();
    let t = Transfer::new(move |progress| async move {
        let refs: Vec<Reference> = if all_tags {
            let mut tags = d.registry.tags(&r.to_string(), opts.auth.as_ref()).await.map_err(api_error)?;
            tags.sort();
            tags.iter().map(|t| r.with_tag(t)).collect()
        } else {
            vec![r.clone()]
        };
        let mut news = false;
        for one in &refs {
            let report = d.registry.pull(d.images.clone(), &one.to_string(), &opts, &progress).await.map_err(api_error)?;
            d.events.image(&one.familiar(), "pull", &[("name", &one.familiar_name())]);
            tracing::info!(image = %one, id = %report.id, layers = report.layers_downloaded.len(), bytes = report.bytes_downloaded, "pulled");
            news |= !report.up_to_date;
        }
        if all_tags {
            let what = if news { "Downloaded newer image" } else { "Image is up to date" };
            progress.send(ProgressMessage::status(format!("Status: {what} for {}", r.familiar_name())));
        }
        Ok(())
    });
    Ok(streamed(t.open(pull_opening).await?))
}

/// `POST /images/{name}/push?tag=`: one tag, or every tag of the repository.
pub async fn push(d: Shared, name: &str, q: &HashMap<String, String>, headers: &HeaderMap) -> ApiResult<Response> {
    let named = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_owned(),
    };
    let r = Reference::parse_named(&named).map_err(|e| ApiError::invalid(e.to_string()))?;
    let images = d.images.clone();
    let r2 = r.clone();
    let refs: Vec<Reference> = tokio::task::spawn_blocking(move || -> ApiResult<Vec<Reference>> {
        let all = images.all_references()?;
        let mut v: Vec<Reference> = all
            .into_iter()
            .map(|(_, x)| x)
            .filter(|x| x.tag().is_some() && if r2.tag().is_some() { *x == r2 } else { x.name_only() == r2 })
            .collect();
        v.sort_by_key(|x| x.to_string());
        Ok(v)
    })
    .await??;
    if refs.is_empty() {
        return Err(ApiError::not_found(format!("An image does not exist locally with the tag: {}", r.familiar_name())));
    }
    let opts = PushOptions { auth: header_auth(headers)? };
    let t = Transfer::new(move |progress| async move {
        for one in &refs {
            d.registry.push(d.images.clone(), &one.to_string(), &opts, &progress).await.map_err(api_error)?;
            d.events.image(&one.familiar(), "push", &[("name", &one.familiar_name())]);
        }
        Ok(())
    });
    Ok(streamed(t.open(push_opening).await?))
}

/// `POST /auth`: check credentials against the registry (the client keeps
/// them).
async fn auth(State(d): State<Shared>, body: axum::body::Bytes) -> ApiResult<Response> {
    let a: AuthConfig = serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("invalid auth config: {e}")))?;
    let a = match AuthConfig::from_header(&a.to_header()) {
        Ok(Some(a)) => a,
        Ok(None) => return Err(ApiError::invalid("username and password are required")),
        Err(e) => return Err(ApiError::invalid(e.to_string())),
    };
    let report = d.registry.login(&a, &a.serveraddress).await.map_err(api_error)?;
    Ok(axum::Json(report).into_response())
}

/// `GET /images/search?term=&limit=&filters=`.
async fn search(State(d): State<Shared>, Query(q): Q, headers: HeaderMap) -> ApiResult<Response> {
    let term = q.get("term").filter(|t| !t.is_empty()).ok_or_else(|| ApiError::invalid("term is required"))?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => 25,
        Some(l) => l.parse::<usize>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| ApiError::invalid("limit must be between 1 and 100"))?,
    };
    let f = crate::containers::Filters::parse(q.get("filters").map(String::as_str))?;
    for k in ["is-official", "is-automated", "stars"] {
        for v in f.get(k) {
            let ok = if k == "stars" { v.parse::<i64>().is_ok() } else { matches!(v.as_str(), "true" | "false" | "1" | "0") };
            if !ok {
                return Err(ApiError::invalid(format!("invalid filter '{k}={v}'")));
            }
        }
    }
    let auth = header_auth(&headers)?;
    let results = d.registry.search(term, limit, auth.as_ref()).await.map_err(api_error)?;
    let truthy = |v: &String| v == "true" || v == "1";
    let results: Vec<_> = results
        .into_iter()
        .filter(|r| f.get("is-official").iter().all(|v| truthy(v) == r.is_official))
        .filter(|r| f.get("is-automated").iter().all(|v| truthy(v) == r.is_automated))
        .filter(|r| f.get("stars").iter().all(|v| v.parse::<i64>().is_ok_and(|n| r.star_count >= n)))
        .collect();
    Ok(axum::Json(results).into_response())
}

/// `GET /distribution/{name}/json`: the descriptor a reference resolves to
/// on its registry, and the platforms it offers.
async fn distribution(State(d): State<Shared>, Path(rest): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError::not_found(format!("page not found: /distribution/{rest}")));
    };
    let r = Reference::parse(name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let auth = header_auth(&headers)?;
    let m = d.registry.inspect(&r.to_string(), auth.as_ref()).await.map_err(api_error)?;
    let invalid = |e: String| ApiError::invalid(format!("invalid manifest of {}: {e}", r.familiar()));
    let platforms: Vec<serde_json::Value> = if media::is_index(&m.media_type) {
        let idx = Index::parse(&m.digest, &m.bytes).map_err(|e| invalid(e.to_string()))?;
        idx.manifests.iter().filter_map(|x| x.platform.as_ref()).map(|p| serde_json::to_value(p).unwrap_or_default()).collect()
    } else {
        let man = Manifest::parse(&m.digest, &m.bytes).map_err(|e| invalid(e.to_string()))?;
        let repo = d.registry.repo(&r, false, auth.as_ref()).await.map_err(api_error)?;
        let cfg = d.registry.get_small_blob(&repo, &man.config.digest, 16 << 20).await.map_err(api_error)?;
        let c: serde_json::Value = serde_json::from_slice(&cfg).map_err(|e| invalid(e.to_string()))?;
        let mut p = json!({"architecture": c["architecture"], "os": c["os"]});
        if let Some(v) = c.get("variant").filter(|v| v.is_string()) {
            p["variant"] = v.clone();
        }
        vec![p]
    };
    Ok(axum::Json(json!({
        "Descriptor": {"mediaType": m.media_type, "digest": m.digest.to_string(), "size": m.bytes.len()},
        "Platforms": platforms,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_image_and_tag_make_one_reference() {
        assert_eq!(pull_reference("busybox", Some("1.36")).unwrap().to_string(), "docker.io/library/busybox:1.36");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(pull_reference("localhost:5000/a/b", Some(&d)).unwrap().digest().unwrap().to_string(), d);
        let all = pull_reference("localhost:5000/a/b", None).unwrap();
        assert!(all.tag().is_none() && all.digest().is_none());
        assert!(pull_reference("UPPER", Some("x")).is_err());
    }
}
