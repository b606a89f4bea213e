//! The daemon's side of registries: pull and push as docker's JSON progress
//! streams, login, search and distribution inspect, over the one
//! [`berth_registry::Client`] the daemon keeps.
//!
//! A pull or push runs inside the response body: when the client goes away
//! the body is dropped and the transfer with it (a pull keeps what it
//! downloaded in resumable ingests). Errors that come before any layer
//! progress (bad reference, unknown repository, refused credentials) are
//! answered with an HTTP status, as dockerd does; later ones end the stream
//! with docker's `{"error": ...}` line.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use berth_registry::auth::AuthConfig;
use berth_registry::progress::{Progress, ProgressMessage};
use berth_registry::{Client, RegistryOptions};
use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::{ApiError, image_kind};

/// What a pull or push ends with, once the stream is over.
type Finish = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send>>;

/// The client the daemon keeps: registry options from the daemon config,
/// credentials only from the API caller (`X-Registry-Auth`, `POST /auth`),
/// as dockerd.
pub fn client(options: RegistryOptions) -> Client {
    Client::new(options, berth_registry::auth::CredentialStore::default())
}

/// A registry error in API terms.
pub fn api_error(e: berth_registry::Error) -> ApiError {
    ApiError::new(image_kind(e.kind()), e.to_string())
}

/// `X-Registry-Auth`, decoded.
pub fn header_auth(headers: &axum::http::HeaderMap) -> Result<Option<AuthConfig>, ApiError> {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => AuthConfig::from_header(v).map_err(|e| ApiError::invalid(e.to_string())),
    }
}

/// A transfer under way: its future and the progress it reports.
pub struct Transfer {
    fut: Option<Finish>,
    rx: UnboundedReceiver<ProgressMessage>,
    held: VecDeque<ProgressMessage>,
    done: bool,
}

impl Transfer {
    /// Start `run` with a progress sink.
    pub fn new<F>(run: impl FnOnce(Progress) -> F) -> Transfer
    where
        F: Future<Output = Result<(), ApiError>> + Send + 'static,
    {
        let (p, rx) = Progress::channel();
        Transfer { fut: Some(Box::pin(run(p))), rx, held: VecDeque::new(), done: false }
    }

    /// Drive the transfer until it reports something worth streaming
    /// (anything `opening` does not accept) or fails first: then the
    /// failure is the answer.
    pub async fn open(mut self, opening: impl Fn(&ProgressMessage) -> bool) -> Result<Transfer, ApiError> {
        loop {
            let Some(fut) = self.fut.as_mut() else { return Ok(self) };
            tokio::select! {
                biased;
                m = self.rx.recv() => match m {
                    Some(m) => {
                        let stop = !opening(&m);
                        self.held.push_back(m);
                        if stop {
                            return Ok(self);
                        }
                    }
                    None => return Ok(self),
                },
                r = fut => {
                    while let Ok(m) = self.rx.try_recv() {
                        self.held.push_back(m);
                    }
                    match r {
                        // Failed before any real work: the answer is the error.
                        Err(e) if self.held.iter().all(&opening) => return Err(e),
                        r => {
                            self.finish(r);
                            return Ok(self);
                        }
                    }
                }
            }
        }
    }

    /// The next line of the stream.
    async fn next(&mut self) -> Option<ProgressMessage> {
        loop {
            if let Some(m) = self.held.pop_front() {
                return Some(m);
            }
            if self.done {
                return None;
            }
            let Some(fut) = self.fut.as_mut() else {
                self.done = true;
                continue;
            };
            let r = tokio::select! {
                biased;
                m = self.rx.recv() => match m {
                    Some(m) => return Some(m),
                    // Every sink is gone: only the result is left.
                    None => None,
                },
                r = &mut *fut => Some(r),
            };
            let r = match r {
                Some(r) => r,
                None => fut.await,
            };
            self.finish(r);
        }
    }

    fn finish(&mut self, r: Result<(), ApiError>) {
        self.fut = None;
        while let Ok(m) = self.rx.try_recv() {
            self.held.push_back(m);
        }
        if let Err(e) = r {
            self.held.push_back(ProgressMessage::error(e.message));
        }
        self.done = true;
    }

    /// The transfer as a response body of JSON lines.
    pub fn into_body(self) -> axum::body::Body {
        let s = futures_util::stream::unfold(self, |mut t| async move {
            t.next().await.map(|m| (Ok::<_, std::convert::Infallible>(Bytes::from(m.to_line())), t))
        });
        axum::body::Body::from_stream(s)
    }
}

/// Whether a pull line comes before any real work (`Pulling from`).
pub fn pull_opening(m: &ProgressMessage) -> bool {
    m.status.starts_with("Pulling from") && m.error.is_empty()
}

/// Whether a push line comes before any real work.
pub fn push_opening(m: &ProgressMessage) -> bool {
    m.status.starts_with("The push refers to") && m.error.is_empty()
}

/// docker's `docker info` view of the registry options.
pub fn info_json(o: &RegistryOptions) -> serde_json::Value {
    let mut cidrs = vec!["127.0.0.0/8".to_owned()];
    let mut index: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for r in &o.insecure_registries {
        if r.contains('/') {
            cidrs.push(r.clone());
        } else {
            index.insert(r.clone(), serde_json::json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}));
        }
    }
    index.insert(
        "docker.io".into(),
        serde_json::json!({"Name": "docker.io", "Mirrors": o.mirrors, "Secure": true, "Official": true}),
    );
    serde_json::json!({"IndexConfigs": index, "InsecureRegistryCIDRs": cidrs, "Mirrors": o.mirrors})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_early_failure_is_the_answer_and_a_late_one_ends_the_stream() {
        let t = Transfer::new(|p| async move {
            p.send(ProgressMessage::with_id("latest", "Pulling from a/b"));
            Err(ApiError::not_found("manifest unknown"))
        });
        let e = t.open(pull_opening).await.err().expect("early failure");
        assert_eq!(e.message, "manifest unknown");

        let t = Transfer::new(|p| async move {
            p.send(ProgressMessage::with_id("latest", "Pulling from a/b"));
            p.send(ProgressMessage::layer("abc", "Pulling fs layer"));
            tokio::task::yield_now().await;
            Err(ApiError::internal("connection reset"))
        });
        let mut t = t.open(pull_opening).await.expect("streams");
        let mut lines = Vec::new();
        while let Some(m) = t.next().await {
            lines.push(if m.error.is_empty() { m.status } else { format!("error: {}", m.error) });
        }
        assert_eq!(lines, ["Pulling from a/b", "Pulling fs layer", "error: connection reset"]);
    }

    #[test]
    fn info_lists_insecure_registries_and_mirrors() {
        let o = RegistryOptions { insecure_registries: vec!["10.0.0.0/8".into(), "reg.example:5000".into()], mirrors: vec!["https://m.example".into()], ..Default::default() };
        let v = info_json(&o);
        assert_eq!(v["InsecureRegistryCIDRs"], serde_json::json!(["127.0.0.0/8", "10.0.0.0/8"]));
        assert_eq!(v["IndexConfigs"]["reg.example:5000"]["Secure"], false);
        assert_eq!(v["Mirrors"][0], "https://m.example");
    }
}
