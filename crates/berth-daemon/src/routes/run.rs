//! Routes over running containers: start/stop/kill/restart/wait/remove,
//! attach and exec (hijacked connections), resize, logs, stats.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_shim::protocol::AttachOptions;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::containers::parse_body;
use super::{RequestVersion, api_version, query_bool};
use crate::containers::{Filters, Shared};
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{parent}/{alias}", delete(remove_link))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/exec", post(exec_create))
        .route("/exec/{id}/start", post(exec_start))
        .route("/exec/{id}/resize", post(exec_resize))
        .route("/exec/{id}/json", get(exec_inspect))
}

type Q = Query<HashMap<String, String>>;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// docker answers 304 for start of a started / stop of a stopped container.
fn or_not_modified(r: ApiResult<()>) -> ApiResult<Response> {
    match r {
        Ok(()) => Ok(no_content()),
        Err(e) if e.kind == berth_api::ErrorKind::NotModified => Ok(StatusCode::NOT_MODIFIED.into_response()),
        Err(e) => Err(e),
    }
}

async fn start(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    or_not_modified(d.start_container(&id).await)
}

fn timeout(q: &HashMap<String, String>) -> ApiResult<Option<i64>> {
    match q.get("t").or(q.get("timeout")).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t.parse().map(Some).map_err(|_| ApiError::invalid(format!("invalid value for t: {t}"))),
    }
}

async fn stop(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let t = timeout(&q)?;
    or_not_modified(d.stop_container(&id, t, q.get("signal").map(String::as_str).filter(|s| !s.is_empty())).await)
}

async fn restart(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let t = timeout(&q)?;
    d.restart_container(&id, t, q.get("signal").map(String::as_str).filter(|s| !s.is_empty())).await?;
    Ok(no_content())
}

async fn kill(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let sig = q.get("signal").map(String::as_str).filter(|s| !s.is_empty()).unwrap_or("SIGKILL");
    d.kill_container(&id, sig).await?;
    Ok(no_content())
}

async fn wait(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let condition = q.get("condition").map(String::as_str).unwrap_or("not-running");
    if !matches!(condition, "" | "not-running" | "next-exit" | "removed") {
        return Err(ApiError::invalid(format!("invalid condition: {condition:?}")));
    }
    // Resolve now so a missing container is a plain 404, then stream the
    // answer once it comes (the headers go out at once, as docker does).
    d.container(&id)?;
    let d2 = d.clone();
    let condition = condition.to_owned();
    let stream = super::system::async_stream(move |tx| async move {
        let body = match d2.wait_container(&id, &condition).await {
            Ok((code, err)) => json!({"StatusCode": code, "Error": err.map(|m| json!({"Message": m}))}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.message}}),
        };
        let _ = tx.send(bytes::Bytes::from(body.to_string() + "\n")).await;
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

async fn remove(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    if query_bool(q.get("link")) {
        d.remove_link(&id).await?;
        return Ok(no_content());
    }
    d.remove_container_with_volumes(&id, query_bool(q.get("force")), query_bool(q.get("v"))).await?;
    Ok(no_content())
}

/// `DELETE /containers/parent/alias?link=1`: a link's name has a slash.
async fn remove_link(State(d): State<Shared>, Path((parent, alias)): Path<(String, String)>, Query(q): Q) -> ApiResult<Response> {
    let name = format!("/{parent}/{alias}");
    if !query_bool(q.get("link")) {
        return Err(crate::containers::no_such(&name));
    }
    d.remove_link(&name).await?;
    Ok(no_content())
}

async fn prune(State(d): State<Shared>, Query(q): Q) -> ApiResult<Response> {
    let f = Filters::parse(q.get("filters").map(String::as_str))?;
    let (deleted, space) = d.prune_containers(&f).await?;
    Ok(axum::Json(json!({"ContainersDeleted": deleted, "SpaceReclaimed": space})).into_response())
}

/// docker's `--detach-keys` spec (`ctrl-p,ctrl-q`, `a,ctrl-[`) as bytes.
pub fn detach_keys(spec: &str) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                c if c.len() == 1 && c.as_bytes()[0].is_ascii_lowercase() => c.as_bytes()[0] - b'a' + 1,
                _ => return Err(ApiError::invalid(format!("Invalid detach keys ({spec}) provided"))),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(ApiError::invalid(format!("Invalid detach keys ({spec}) provided")));
        }
    }
    Ok(out)
}

/// Answer 101 and splice the upgraded connection onto `stream` (which may
/// come later: an attach made before the container starts).
fn hijack(
    mut req: Request,
    tty: bool,
    stream: impl std::future::Future<Output = ApiResult<tokio::net::UnixStream>> + Send + 'static,
) -> ApiResult<Response> {
    let wants_upgrade = req.headers().get(header::UPGRADE).is_some();
    if !wants_upgrade {
        return Err(ApiError::invalid("this endpoint hijacks the connection: send Connection: Upgrade, Upgrade: tcp"));
    }
    let version = api_version(req.extensions().get::<RequestVersion>());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                match stream.await {
                    Ok(mut shim) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut shim).await;
                    }
                    Err(e) => {
                        // docker's stream type 3: an error for the client.
                        use tokio::io::AsyncWriteExt;
                        let msg = e.message.into_bytes();
                        let mut frame = vec![3u8, 0, 0, 0];
                        frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                        frame.extend_from_slice(&msg);
                        let _ = client.write_all(&frame).await;
                    }
                }
            }
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    let content_type = if tty || version < berth_api::version::ApiVersion(1, 42) {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

async fn attach(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q, req: Request) -> ApiResult<Response> {
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => Some(detach_keys(k)?),
        None => None,
    };
    let h = d.container(&id)?;
    let stdin_once = h.lock().await.config.stdin_once.unwrap_or(false);
    let opts = AttachOptions {
        stdin: query_bool(q.get("stdin")),
        stdout: query_bool(q.get("stdout")),
        stderr: query_bool(q.get("stderr")),
        stdin_once,
        detach_keys: keys,
    };
    if query_bool(q.get("logs")) && !query_bool(q.get("stream")) {
        return Err(ApiError::not_implemented("attach with logs=1 and stream=0: use the logs endpoint"));
    }
    let (stream, tty) = d.attach_stream(&id, opts).await?;
    hijack(req, tty, stream)
}

fn size(q: &HashMap<String, String>) -> ApiResult<(u16, u16)> {
    let n = |k: &str| -> ApiResult<u16> {
        q.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| ApiError::invalid(format!("invalid {k} value")))
    };
    Ok((n("h")?, n("w")?))
}

async fn resize(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let (rows, cols) = size(&q)?;
    let h = d.container(&id)?;
    let c = h.lock().await.clone();
    if !c.state.status.is_alive() {
        return Err(crate::containers::ops::not_running(&c.id));
    }
    // Without a terminal there is nothing to resize: docker (containerd)
    // answers OK.
    if !c.config.tty.unwrap_or(false) {
        return Ok(StatusCode::OK.into_response());
    }
    let client = crate::shim::connect(&d.shim_dir(&c.id)).await?;
    crate::shim::resize(&client, None, rows, cols).await?;
    Ok(StatusCode::OK.into_response())
}

async fn logs(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    crate::shim::logs_response(&d, &id, &q).await
}

async fn stats(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let h = d.container(&id)?;
    let stream = q.get("stream").is_none_or(|s| s != "0" && s != "false");
    let one_shot = query_bool(q.get("one-shot"));
    let d2 = d.clone();
    let body = super::system::async_stream(move |tx| async move {
        let mut previous: Option<serde_json::Value> = None;
        loop {
            let c = h.lock().await.clone();
            let sample = match (c.state.status.is_alive(), d2.cgroup_of(&c.id)) {
                (true, Ok(cg)) => {
                    let d3 = d2.clone();
                    let c2 = c.clone();
                    tokio::task::spawn_blocking(move || d3.stats_sample(&c2, &cg)).await.unwrap_or_default()
                }
                // A stopped container: docker streams zeroed samples.
                _ => json!({"read": berth_image::model::now_rfc3339(), "id": c.id, "name": format!("/{}", c.name),
                            "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}, "pids_stats": {},
                            "blkio_stats": {}, "networks": {}}),
            };
            let mut out = sample.clone();
            match &previous {
                Some(p) => {
                    out["precpu_stats"] = p["cpu_stats"].clone();
                    out["preread"] = p["read"].clone();
                }
                None => {
                    out["precpu_stats"] = json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}});
                    out["preread"] = json!("0001-01-01T00:00:00Z");
                }
            }
            // Without streaming, docker waits one interval so the client
            // gets a CPU delta (unless one-shot).
            if !stream && previous.is_none() && !one_shot {
                previous = Some(sample);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            if tx.send(bytes::Bytes::from(out.to_string() + "\n")).await.is_err() || !stream {
                return;
            }
            previous = Some(sample);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}

async fn exec_create(State(d): State<Shared>, Path(id): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let config: berth_api::models::ExecConfig = parse_body(&body)?;
    if let Some(k) = config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        detach_keys(k)?;
    }
    let exec_id = d.create_exec(&id, config).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"Id": exec_id}))).into_response())
}

async fn exec_start(State(d): State<Shared>, Path(id): Path<String>, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.map_err(|e| ApiError::invalid(e.to_string()))?;
    let start: berth_api::models::ExecStartConfig = parse_body(&bytes)?;
    let req = Request::from_parts(parts, Body::empty());
    let detach = start.detach.unwrap_or(false);
    let (stream, tty) = crate::shim::start_exec(&d, &id, detach, start.tty).await?;
    match stream {
        None => Ok(StatusCode::OK.into_response()),
        Some(s) => hijack(req, tty, async move { Ok(s) }),
    }
}

async fn exec_resize(State(d): State<Shared>, Path(id): Path<String>, Query(q): Q) -> ApiResult<Response> {
    let (rows, cols) = size(&q)?;
    let r = d.execs.get(&id).ok_or_else(|| crate::containers::exec::no_such_exec(&id))?;
    let client = crate::shim::connect(&d.shim_dir(&r.container_id)).await?;
    crate::shim::resize(&client, Some(id), rows, cols).await?;
    Ok(StatusCode::OK.into_response())
}

async fn exec_inspect(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(axum::Json(d.inspect_exec(&id).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(detach_keys("a,ctrl-[").unwrap(), vec![b'a', 27]);
        assert!(detach_keys("ctrl-pp").is_err());
    }
}
