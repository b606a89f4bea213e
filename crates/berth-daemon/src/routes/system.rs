//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use crate::containers::{Filters, Shared};
use crate::error::{ApiError, ApiResult};
use crate::events;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events_stream))
        .route("/system/df", get(df))
}

async fn ping(method: Method) -> Response {
    let mut h = HeaderMap::new();
    h.insert("Api-Version", HeaderValue::from_str(&berth_api::version::CURRENT.to_string()).expect("ascii"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if method == Method::HEAD {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        return (h, "").into_response();
    }
    (h, "OK").into_response()
}

async fn version() -> Response {
    axum::Json(crate::system::version_json()).into_response()
}

async fn info(State(d): State<Shared>) -> ApiResult<Response> {
    Ok(axum::Json(d.info().await?).into_response())
}

async fn df(State(d): State<Shared>) -> ApiResult<Response> {
    Ok(axum::Json(d.disk_usage().await?).into_response())
}

/// Whether an event passes `docker events --filter`.
fn event_matches(f: &Filters, e: &events::Event) -> bool {
    f.0.iter().all(|(k, vals)| match k.as_str() {
        "type" => vals.iter().any(|v| v == e.kind),
        "event" => vals.iter().any(|v| v == &e.action || e.action.starts_with(&format!("{v}:"))),
        "container" => {
            e.kind == "container" && vals.iter().any(|v| e.id.starts_with(v) || e.attribute("name") == Some(v.as_str()))
        }
        "image" => vals.iter().any(|v| e.attribute("image") == Some(v.as_str()) || (e.kind == "image" && e.id.contains(v.as_str()))),
        "label" => vals.iter().all(|v| match v.split_once('=') {
            Some((k, val)) => e.attribute(k) == Some(val),
            None => e.attribute(v).is_some(),
        }),
        _ => true,
    })
}

async fn events_stream(State(d): State<Shared>, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    let filters = Filters::parse(q.get("filters").map(String::as_str))?;
    let parse = |k: &str| -> ApiResult<Option<i128>> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => events::parse_time(v).map(Some).ok_or_else(|| ApiError::invalid(format!("invalid {k} value {v:?}"))),
        }
    };
    let since = parse("since")?;
    let until = parse("until")?;
    let (past, mut rx) = d.events.subscribe(since.or(until.map(|_| 0)));
    let stream = async_stream(move |tx| async move {
        for e in past {
            if until.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if event_matches(&filters, &e) && tx.send(line(&e)).await.is_err() {
                return;
            }
        }
        loop {
            let next = match until {
                Some(u) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as i128)
                        .unwrap_or(0);
                    if now >= u {
                        return;
                    }
                    match tokio::time::timeout(std::time::Duration::from_nanos((u - now) as u64), rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
                None => rx.recv().await,
            };
            match next {
                Ok(e) => {
                    if event_matches(&filters, &e) && tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

fn line(e: &events::Event) -> Bytes {
    let mut s = e.to_json().to_string();
    s.push('\n');
    Bytes::from(s)
}

/// A stream fed by a task through a channel: the simplest way to turn a
/// loop with awaits into a response body.
pub fn async_stream<F, Fut>(f: F) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters() {
        let e = events::Event {
            kind: "container",
            action: "exec_start: sh".into(),
            id: "abcdef".into(),
            attributes: vec![("name".into(), "web".into()), ("image".into(), "bb".into())],
            time_nano: 0,
        };
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        assert!(event_matches(&f(r#"{"event":["exec_start"]}"#), &e));
        assert!(event_matches(&f(r#"{"container":["web"],"type":["container"]}"#), &e));
        assert!(!event_matches(&f(r#"{"type":["image"]}"#), &e));
        assert!(event_matches(&f(r#"{"image":["bb"]}"#), &e));
    }
}
