//! The daemon's side of berth-shim, in one place: spawning a shim for a run,
//! the control requests, exec, and reading logs back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_shim::client::ShimClient;
use berth_shim::logs::{LogConfig, LogDriver, ReadOptions};
use berth_shim::protocol::{AttachOptions, ExecRequest, ExecState, ExitStatus, Stream};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use crate::Daemon;
use crate::containers::store::Container;
use crate::error::{ApiError, ApiResult};

pub type Client = ShimClient;

fn shim_err(e: impl std::fmt::Display, kind: berth_api::ErrorKind) -> ApiError {
    ApiError::new(kind, e.to_string())
}

impl From<berth_shim::client::ClientError> for ApiError {
    fn from(e: berth_shim::client::ClientError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// docker's size strings: `10m`, `1g`, `512k`, plain bytes.
pub fn parse_size(s: &str) -> ApiResult<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.trim_end_matches('b').len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    let n: f64 = num.parse().map_err(|_| ApiError::invalid(format!("invalid size: '{s}'")))?;
    Ok((n * mult as f64) as u64)
}

/// The log configuration of a container from its `LogConfig` (driver and
/// docker's `--log-opt` keys).
pub fn log_config(c: &Container, path: &Path) -> ApiResult<LogConfig> {
    let lc = c.host_config.log_config.clone().unwrap_or_default();
    let driver_name = lc.typ.clone().filter(|t| !t.is_empty()).unwrap_or_else(|| "json-file".into());
    let driver = LogDriver::parse(&driver_name)
        .ok_or_else(|| ApiError::invalid(format!("failed to create logging driver: logger: no log driver named '{driver_name}' is registered")))?;
    let opts: HashMap<String, String> = lc.config.unwrap_or_default();
    let mut cfg = match driver {
        LogDriver::None => LogConfig::none(),
        LogDriver::Local => LogConfig::local(path.with_file_name("container.log")),
        _ => LogConfig::json_file(path),
    };
    cfg.driver = driver;
    for (k, v) in &opts {
        match k.as_str() {
            "max-size" => cfg.max_size = Some(parse_size(v)?).filter(|n| *n > 0),
            "max-file" => {
                cfg.max_file = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| ApiError::invalid(format!("invalid value for max-file: {v}")))?
            }
            "compress" | "mode" | "max-buffer-size" => {}
            "labels" | "env" | "labels-regex" | "env-regex" => {
                for key in v.split(',').filter(|k| !k.is_empty()) {
                    if let Some(val) = c.config.labels.as_ref().and_then(|l| l.get(key)) {
                        cfg.attrs.insert(key.to_owned(), val.clone());
                    }
                    if let Some(e) = c.config.env.iter().flatten().find(|e| e.split('=').next() == Some(key)) {
                        cfg.attrs.insert(key.to_owned(), e.split_once('=').map(|x| x.1).unwrap_or("").to_owned());
                    }
                }
            }
            "tag" => cfg.syslog.tag = v.clone(),
            "syslog-address" => cfg.syslog.address = Some(v.clone()),
            "syslog-facility" => cfg.syslog.facility = Some(v.clone()),
            "syslog-format" => cfg.syslog.format = Some(v.clone()),
            other if driver == LogDriver::Syslog && other.starts_with("syslog-") => {}
            other => return Err(ApiError::invalid(format!("unknown log opt '{other}' for {driver_name} log driver"))),
        }
    }
    if driver == LogDriver::Local && cfg.max_size.is_none() {
        // docker's local driver defaults: 20 MB × 5 files.
        cfg.max_size = Some(20 << 20);
        if !opts.contains_key("max-file") {
            cfg.max_file = 5;
        }
    }
    if driver == LogDriver::Syslog && cfg.syslog.tag.is_empty() {
        cfg.syslog.tag = c.id[..12].to_owned();
    }
    Ok(cfg)
}

/// Spawn the shim for a run of `c` (the container is created, not started).
pub async fn spawn(d: &Daemon, c: &Container, bundle: &Path, log_path: &Path) -> ApiResult<Client> {
    let log = log_config(c, log_path)?;
    let opts = berth_shim::SpawnOptions {
        id: c.id.clone(),
        bundle: bundle.to_owned(),
        state_dir: d.shim_dir(&c.id),
        runtime_root: d.runtime_root(),
        shim_binary: d.config.shim_binary.clone(),
        tty: c.config.tty.unwrap_or(false),
        open_stdin: c.config.open_stdin.unwrap_or(false),
        log,
        exit_grace_ms: berth_shim::spawn::DEFAULT_EXIT_GRACE_MS,
    };
    let handle = tokio::task::spawn_blocking(move || berth_shim::spawn(&opts))
        .await?
        .map_err(|e| shim_err(&e, e.kind()))?;
    Ok(ShimClient::new(&handle.state_dir))
}

pub async fn connect(state_dir: &Path) -> ApiResult<Client> {
    Ok(ShimClient::connect(state_dir).await?)
}

pub async fn attach(client: &Client, opts: AttachOptions) -> ApiResult<UnixStream> {
    Ok(client.attach(opts).await?)
}

/// Release the container; its init pid.
pub async fn start(client: &Client) -> ApiResult<i32> {
    client.start().await?;
    Ok(client.status().await?.pid)
}

pub async fn resize(client: &Client, exec_id: Option<String>, rows: u16, cols: u16) -> ApiResult<()> {
    match exec_id {
        Some(e) => Ok(client.resize_exec(&e, rows, cols).await?),
        None => Ok(client.resize(rows, cols).await?),
    }
}

pub async fn exec_state(client: &Client, exec_id: &str) -> ApiResult<ExecState> {
    Ok(client.exec_state(exec_id).await?)
}

/// The exit of the current run: from the shim, or, when it is gone, from
/// its exit record; a run whose shim vanished without one counts as
/// killed (255), as docker reports a container lost with its shim.
pub async fn wait(client: &Client, state_dir: &Path) -> ExitStatus {
    loop {
        match client.wait().await {
            Ok(s) => return s,
            Err(e) if e.shim_gone() => {
                if let Some(s) = read_exit(state_dir) {
                    return s;
                }
                return ExitStatus { code: 255, signal: None, time: berth_image::model::now_rfc3339(), oom_killed: false, pid: 0 };
            }
            Err(e) => {
                tracing::debug!(dir = %state_dir.display(), "wait on shim: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

pub fn read_exit(state_dir: &Path) -> Option<ExitStatus> {
    berth_shim::read_exit(state_dir).ok().flatten()
}

/// Tell the shim its run is recorded: it may go.
pub async fn shutdown(state_dir: &Path) {
    let _ = ShimClient::new(state_dir).shutdown().await;
}

/// `POST /exec/{id}/start`: run the exec; its stream unless detached, and
/// whether it has a tty.
pub async fn start_exec(d: &Daemon, exec_id: &str, detach: bool, tty: Option<bool>) -> ApiResult<(Option<UnixStream>, bool)> {
    let r = d.execs.get(exec_id).ok_or_else(|| crate::containers::exec::no_such_exec(exec_id))?;
    if r.started {
        return Err(ApiError::conflict(format!("Error: Exec command {exec_id} has already run")));
    }
    let c = d.container(&r.container_id)?.lock().await.clone();
    if !c.state.status.is_alive() {
        return Err(crate::containers::ops::not_running(&c.id));
    }
    let tty = tty.or(r.config.tty).unwrap_or(false);
    let mut rec = r.clone();
    rec.config.tty = Some(tty);
    let process = d.exec_process(&rec).await?;
    let client = connect(&d.shim_dir(&c.id)).await?;
    let keys = match r.config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(crate::routes::run::detach_keys(k)?),
        None => None,
    };
    d.execs.update(exec_id, |x| {
        x.started = true;
        x.running = true;
    });
    let cmd = r.config.cmd.clone().unwrap_or_default().join(" ");
    let started = client
        .exec(ExecRequest { exec_id: exec_id.to_owned(), process, tty, stdin: r.config.attach_stdin.unwrap_or(false), detach, detach_keys: keys })
        .await;
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            d.execs.update(exec_id, |x| {
                x.running = false;
                x.exit_code = Some(126);
            });
            return Err(e.into());
        }
    };
    d.execs.update(exec_id, |x| x.pid = started.pid);
    d.events.container(&c.id, &format!("exec_start: {cmd}"), &[("name", &c.name), ("execID", exec_id)]);
    Ok((started.stream, tty))
}

/// Run `cmd` in container `id` and collect its output (health checks).
pub async fn exec_capture(d: &Daemon, id: &str, cmd: &[String], timeout: Duration) -> ApiResult<(i64, String)> {
    let exec_id = d
        .create_exec(
            id,
            berth_api::models::ExecConfig {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await?;
    let (stream, _) = start_exec(d, &exec_id, false, Some(false)).await?;
    let mut output = Vec::new();
    if let Some(mut s) = stream {
        let read = async {
            let mut buf = [0u8; 8192];
            let mut dec = berth_shim::protocol::FrameDecoder::default();
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                dec.push(&buf[..n]);
                while let Ok(Some((_, payload))) = dec.next_frame() {
                    output.extend_from_slice(&payload);
                }
            }
        };
        if tokio::time::timeout(timeout, read).await.is_err() {
            return Ok((-1, format!("Health check exceeded timeout ({timeout:?})")));
        }
    }
    let client = connect(&d.shim_dir(id)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let st = client.exec_state(&exec_id).await?;
        if let Some(code) = st.exit_code {
            d.execs.update(&exec_id, |x| {
                x.running = false;
                x.exit_code = Some(code as i64);
            });
            return Ok((code as i64, String::from_utf8_lossy(&output).into_owned()));
        }
        if tokio::time::Instant::now() > deadline {
            return Ok((-1, String::from_utf8_lossy(&output).into_owned()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET /containers/{id}/logs`.
pub async fn logs_response(d: &Daemon, reference: &str, q: &HashMap<String, String>) -> ApiResult<Response> {
    let h = d.container(reference)?;
    let c = h.lock().await.clone();
    let flag = |k: &str| crate::routes::query_bool(q.get(k));
    let (stdout, stderr) = (flag("stdout"), flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::invalid("Bad parameters: you must choose at least one stream"));
    }
    let time = |k: &str| -> ApiResult<Option<i64>> {
        match q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => crate::events::parse_time(v).map(|t| Some(t as i64)).ok_or_else(|| ApiError::invalid(format!("invalid value for {k}: {v}"))),
        }
    };
    let tail = match q.get("tail").map(String::as_str) {
        None | Some("all") | Some("") => None,
        Some(n) => n.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| n as usize),
    };
    let cfg = log_config(&c, Path::new(&c.log_path))?;
    if !cfg.driver.readable() {
        return Err(ApiError::not_implemented("configured logging driver does not support reading"));
    }
    let follow = flag("follow") && c.state.status.is_alive();
    let opts = ReadOptions { since: time("since")?, until: time("until")?, tail, follow, stdout, stderr };
    let timestamps = flag("timestamps");
    let details = flag("details");
    let tty = c.config.tty.unwrap_or(false);
    if c.log_path.is_empty() {
        return Ok(([(header::CONTENT_TYPE, content_type(tty))], Body::empty()).into_response());
    }
    let mut reader = berth_shim::logs::LogReader::open(&cfg, opts).map_err(|e| shim_err(&e, e.kind()))?;
    if follow {
        reader = reader.with_stop(berth_shim::logs::reader::stop_when_shim_done(&d.shim_dir(&c.id)));
    }
    let mut rx = berth_shim::client::spawn_log_reader(reader);
    let body = crate::routes::system::async_stream(move |tx| async move {
        while let Some(item) = rx.recv().await {
            let Ok(e) = item else { break };
            let mut payload = Vec::with_capacity(e.line.len() + 40);
            if timestamps {
                payload.extend_from_slice(berth_shim::timefmt::rfc3339_nano(e.time).as_bytes());
                payload.push(b' ');
            }
            if details && !e.attrs.is_empty() {
                let attrs: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                payload.extend_from_slice(attrs.join(",").as_bytes());
                payload.push(b' ');
            }
            payload.extend_from_slice(&e.line);
            let mut out = Vec::with_capacity(payload.len() + 8);
            if tty {
                out = payload;
            } else {
                berth_shim::protocol::push_frames(&mut out, e.stream, &payload);
            }
            if tx.send(bytes::Bytes::from(out)).await.is_err() {
                break;
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, content_type(tty))], Body::from_stream(body)).into_response())
}

fn content_type(tty: bool) -> &'static str {
    if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" }
}

#[allow(dead_code)]
fn stream_name(s: Stream) -> &'static str {
    s.as_str()
}

/// Where a container's json-file log lives.
pub fn log_file(container_dir: &Path, id: &str) -> PathBuf {
    container_dir.join(format!("{id}-json.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_dockers() {
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("2048").unwrap(), 2048);
        assert!(parse_size("ten").is_err());
    }
}
