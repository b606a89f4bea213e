//! `POST /build` (docker's classic builder) and `POST /build/prune`, over
//! berth-build. The body is the context tar; the answer is the classic
//! builder's JSON stream (`stream`, `aux`, `error`/`errorDetail`). Errors
//! found before the first step (a bad Dockerfile, a missing target) are
//! plain HTTP errors, as docker answers them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use berth_build::builder::{Build, BuildError, BuildOptions, Event};
use berth_build::exec::{Host, Puller};
use berth_image::reference::Reference;
use berth_registry::PullOptions;
use berth_registry::auth::DockerConfigFile;
use berth_registry::platform::PlatformSpec;
use berth_registry::progress::Progress;
use serde_json::json;

use super::images::body_reader;
use super::query_bool;
use crate::containers::Shared;
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<Shared> {
    Router::new().route("/build", post(build)).route("/build/prune", post(prune))
}

type Pairs = Query<Vec<(String, String)>>;

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a String> {
    pairs.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v)
}

fn json_param<T: serde::de::DeserializeOwned + Default>(pairs: &[(String, String)], k: &str) -> ApiResult<T> {
    match get(pairs, k).filter(|v| !v.is_empty()) {
        Some(v) => serde_json::from_str(v).map_err(|e| ApiError::invalid(format!("invalid {k} parameter: {e}"))),
        None => Ok(T::default()),
    }
}

/// The query parameters as builder options.
pub fn options(pairs: &[(String, String)]) -> ApiResult<BuildOptions> {
    let b = |k: &str| query_bool(get(pairs, k));
    let s = |k: &str| get(pairs, k).cloned().filter(|v| !v.is_empty());
    if let Some(r) = s("remote") {
        return Err(ApiError::not_implemented(format!("remote build contexts are not supported yet: {r}")));
    }
    if let Some(n) = s("networkmode").filter(|n| !matches!(n.as_str(), "default" | "bridge" | "host" | "none")) {
        return Err(ApiError::not_implemented(format!("network mode {n:?} is not supported for builds yet (default, host, none)")));
    }
    Ok(BuildOptions {
        dockerfile: s("dockerfile").unwrap_or_else(|| "Dockerfile".into()),
        tags: pairs.iter().filter(|(k, v)| k == "t" && !v.is_empty()).map(|(_, v)| v.clone()).collect(),
        build_args: json_param::<BTreeMap<String, Option<String>>>(pairs, "buildargs")?,
        labels: json_param::<BTreeMap<String, String>>(pairs, "labels")?,
        target: s("target"),
        no_cache: b("nocache"),
        pull: b("pull"),
        cache_from: json_param::<Vec<String>>(pairs, "cachefrom")?,
        network: s("networkmode").filter(|n| n != "default"),
        platform: s("platform"),
        rm: get(pairs, "rm").is_none_or(|v| query_bool(Some(v))),
        force_rm: b("forcerm"),
        quiet: b("q"),
    })
}

fn runtime_binary(shim: &std::path::Path) -> PathBuf {
    let beside_shim = shim.with_file_name("berth-runtime");
    if beside_shim.exists() {
        return beside_shim;
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("berth-runtime")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("berth-runtime"))
}

/// Where this daemon's builds run their steps.
pub fn host(d: &crate::Daemon) -> Host {
    Host {
        images: d.images.clone(),
        work_dir: d.config.exec_root.join("build"),
        runtime_binary: runtime_binary(&d.config.shim_binary),
        cgroup_parent: d.config.cgroup_parent.clone(),
        puller: None,
        network: Some(d.network.build_network()),
    }
}

/// Builds fetch what they miss through the daemon's registry client, as the
/// classic builder does: a FROM image that is not local, and every FROM
/// image with `--pull`. Credentials come from the build's
/// `X-Registry-Config`, else the daemon's credential files.
struct RegistryPuller {
    d: Shared,
    rt: tokio::runtime::Handle,
    creds: DockerConfigFile,
}

impl Puller for RegistryPuller {
    fn pull(&self, name: &str, platform: Option<&str>, progress: &dyn Fn(String)) -> Result<(), String> {
        let r = Reference::parse_named(name).map_err(|e| e.to_string())?;
        let platform = platform.map(PlatformSpec::parse).transpose().map_err(|e| e.to_string())?;
        let auth = self.creds.lookup(std::path::Path::new("X-Registry-Config"), r.domain()).map_err(|e| e.to_string())?;
        let opts = PullOptions { platform, auth };
        let (sink, mut rx) = Progress::channel();
        let (d, reference) = (self.d.clone(), r.to_string());
        let task = self.rt.spawn(async move { d.registry.pull(d.images.clone(), &reference, &opts, &sink).await });
        // The status lines only (layer bars have no place in a build's text).
        while let Some(m) = rx.blocking_recv() {
            if m.progress_detail.is_none() && !m.status.is_empty() {
                progress(if m.id.is_empty() { format!("{}\n", m.status) } else { format!("{}: {}\n", m.id, m.status) });
            }
        }
        self.rt.block_on(task).map_err(|e| e.to_string())?.map_err(|e| crate::registry::api_error(e).message)?;
        self.d.events.image(&r.familiar(), "pull", &[("name", &r.familiar_name())]);
        Ok(())
    }
}

/// At startup: remove what builds interrupted by a crash left.
pub fn reconcile(d: &crate::Daemon) {
    berth_build::exec::reconcile(&host(d));
}

fn message(e: &Event) -> String {
    let v = match e {
        Event::Stream(s) => json!({"stream": s}),
        Event::Aux(id) => json!({"aux": {"ID": id}}),
    };
    format!("{v}\r\n")
}

fn error_message(e: &BuildError) -> String {
    let msg = e.to_string();
    let detail = match e {
        BuildError::RunFailed { code, .. } => json!({"code": code, "message": msg}),
        _ => json!({"message": msg}),
    };
    format!("{}\r\n", json!({"errorDetail": detail, "error": msg}))
}

/// Removes the unpacked context whatever happens.
struct ContextDir(PathBuf);

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn build(State(d): State<Shared>, Query(pairs): Pairs, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let opts = options(&pairs)?;
    let ctx = ContextDir(d.config.exec_root.join("build").join(format!("context-{}", berth_build::exec::random_hex(12))));
    let creds = match headers.get("x-registry-config").and_then(|v| v.to_str().ok()) {
        Some(v) => DockerConfigFile::from_build_header(v).map_err(|e| ApiError::invalid(e.to_string()))?,
        None => DockerConfigFile::default(),
    };
    let mut host = host(&d);
    host.puller = Some(Arc::new(RegistryPuller { d: d.clone(), rt: tokio::runtime::Handle::current(), creds }));
    let mut reader = body_reader(body);
    let ctx_path = ctx.0.clone();
    let dockerfile = opts.dockerfile.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        std::fs::create_dir_all(&ctx_path).map_err(|e| ApiError::internal(format!("build context {}: {e}", ctx_path.display())))?;
        let unpacked = berth_build::context::unpack(&mut reader, &ctx_path);
        // Read the body to its end (the tar's end blocks, the last chunk)
        // whatever happened: a connection closed with unread request data is
        // reset, and the client could lose the answer.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        unpacked.map_err(|e| ApiError::invalid(e.to_string()))?;
        berth_build::context::apply_ignore(&ctx_path, &dockerfile).map_err(|e| ApiError::invalid(e.to_string()))
    })
    .await??;
    // Parse before answering, so a bad Dockerfile is an HTTP error.
    let (check_host, ctx_path, o) = (host.clone(), ctx.0.clone(), opts.clone());
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        let b = Build::new(&check_host, &ctx_path, &o, None).map_err(|e| ApiError::invalid(e.to_string()))?;
        b.check().map_err(|e| ApiError::invalid(e.to_string()))
    })
    .await??;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let images = d.clone();
    tokio::task::spawn_blocking(move || {
        let ctx = ctx;
        let quiet = opts.quiet;
        let held = std::sync::Mutex::new(Vec::<String>::new());
        let send = |m: String| {
            let _ = tx.send(m);
        };
        let result = Build::new(&host, &ctx.0, &opts, None).and_then(|b| {
            b.run(&|e: Event| {
                if quiet && matches!(e, Event::Stream(_)) {
                    held.lock().unwrap().push(message(&e));
                } else {
                    send(message(&e));
                }
            })
        });
        match result {
            Ok(built) => {
                // Quiet: the classic builder answers only the image ID.
                if quiet {
                    send(message(&Event::Stream(format!("{}\n", built.id))));
                }
                for t in &built.tags {
                    images.events.image(&built.id.to_string(), "tag", &[("name", t.as_str())]);
                }
            }
            Err(e) => {
                // Quiet builds show their output only when they fail.
                for m in held.lock().unwrap().drain(..) {
                    send(m);
                }
                send(error_message(&e));
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(|s| Ok(bytes::Bytes::from(s)))))
}

/// `POST /build/prune`: forget the build cache index (the images stay, as
/// ordinary images that `image prune` handles).
async fn prune(State(d): State<Shared>) -> ApiResult<Response> {
    let dir = d.images.root().join("build-cache");
    let removed = tokio::task::spawn_blocking(move || {
        let n = std::fs::read_dir(&dir).map(|rd| rd.count()).unwrap_or(0);
        let _ = std::fs::remove_dir_all(&dir);
        n
    })
    .await?;
    Ok(axum::Json(json!({"CachesDeleted": serde_json::Value::Null, "SpaceReclaimed": 0, "Removed": removed})).into_response())
}
