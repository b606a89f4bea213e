//! run, create, start and attach: the flows of docker's CLI. For `run`:
//! create (pulling once on "no such image"), attach (hijacked) before
//! start, register the wait (`next-exit`, or `removed` with `--rm`) before
//! start, start, resize the tty, stream, and exit with the container's code.

use berth_api::models::ContainerInspectResponse;
use futures_util::StreamExt;

use super::stream::{Ended, Session};
use super::{AttachArgs, ContainerError, CreateArgs, RunArgs, StartArgs, tty};
use crate::app::{Ctx, errln, outln};
use crate::client::{ApiError, Client, RawResponse, percent_encode, query};
use crate::opts::container::{ContainerFlags, CreateRequest};

/// docker's `toStatusError`: 127 when the command is not found, 126 when it
/// cannot be invoked, else 125.
pub fn status_code_for(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

fn with_help(command: &'static str, e: ContainerError) -> ContainerError {
    let code = status_code_for(&e.to_string());
    ContainerError::WithHelp { command, code, source: Box::new(e) }
}

fn detach_keys(ctx: &Ctx, flag: Option<&str>) -> Result<(String, Vec<u8>), ContainerError> {
    let keys = match flag {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => ctx.config().detach_keys.clone(),
    };
    let bytes = if keys.is_empty() { tty::DEFAULT_DETACH.to_vec() } else { tty::parse_detach_keys(&keys)? };
    Ok((keys, bytes))
}

fn build(flags: &ContainerFlags, cmdline: &[String], command: &'static str) -> Result<CreateRequest, ContainerError> {
    let console = if flags.tty { tty::size() } else { (0, 0) };
    flags.to_request(&cmdline[0], &cmdline[1..], console).map_err(|e| with_help(command, e.into()))
}

/// docker's reference rules, enough to say `busybox:latest`.
fn familiar_tagged(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') { image.to_owned() } else { format!("{image}:latest") }
}

async fn create_container(c: &Client, req: &CreateRequest, pull: &str, quiet: bool) -> Result<String, ContainerError> {
    if let Some(path) = &req.body.host_config.as_ref().and_then(|h| h.container_id_file.clone())
        && !path.is_empty()
        && std::path::Path::new(path).exists()
    {
        return Err(ContainerError::CidExists(path.clone()));
    }
    let image = req.body.image.clone().unwrap_or_default();
    if pull == "always" {
        pull_image(c, &image, req.platform.as_deref(), quiet).await?;
    }
    let resp = match post_create(c, req).await {
        Err(e) if e.is_not_found() && pull == "missing" => {
            if !quiet {
                errln(&format!("Unable to find image '{}' locally", familiar_tagged(&image)));
            }
            pull_image(c, &image, req.platform.as_deref(), quiet).await?;
            post_create(c, req).await?
        }
        r => r?,
    };
    for w in &resp.warnings {
        errln(&format!("WARNING: {w}"));
    }
    if let Some(path) = &req.body.host_config.as_ref().and_then(|h| h.container_id_file.clone())
        && !path.is_empty()
    {
        std::fs::write(path, &resp.id).map_err(|e| ContainerError::io(format!("write the container ID ({}) to file", resp.id), &e))?;
    }
    Ok(resp.id)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    id: String,
    #[serde(default)]
    warnings: Vec<String>,
}

/// `POST /containers/create?name=&platform=` with only the parameters set,
/// as docker's CLI sends them.
async fn post_create(c: &Client, req: &CreateRequest) -> Result<Created, ApiError> {
    let mut q = Vec::new();
    if let Some(n) = &req.name {
        q.push(("name", n.clone()));
    }
    if let Some(p) = &req.platform {
        q.push(("platform", p.clone()));
    }
    let body = serde_json::to_vec(&req.body).map_err(|e| ApiError::Protocol(e.to_string()))?;
    let mut r = c.raw("POST", &format!("/containers/create{}", query(&q)), false, Some(&body)).await?;
    serde_json::from_slice(&r.read_to_end().await?).map_err(|e| ApiError::Protocol(e.to_string()))
}

/// `POST /images/create?fromImage=`: the progress stream shown as docker's
/// plain (non-tty) progress lines.
pub async fn pull_image(c: &Client, image: &str, platform: Option<&str>, quiet: bool) -> Result<(), ContainerError> {
    // `run` and `create` pull `latest` when no tag is given.
    let tagged = berth_image::reference::Reference::parse(image).map(|r| r.to_string()).unwrap_or_else(|_| image.to_owned());
    crate::registry::pull_stream(c, &tagged, platform, quiet, true).await.map_err(|e| match e {
        crate::registry::RegistryError::Api(a) => ContainerError::Api(a),
        other => ContainerError::Pull(other.to_string()),
    })
}

/// One line of a JSON progress stream (pull, load, import).
pub fn show_progress(line: &[u8], quiet: bool) -> Result<(), ContainerError> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else { return Ok(()) };
    if let Some(e) = v.get("errorDetail").and_then(|d| d.get("message")).or_else(|| v.get("error")).and_then(|m| m.as_str()) {
        return Err(ContainerError::Pull(e.to_owned()));
    }
    if quiet {
        return Ok(());
    }
    let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("");
    if let Some(stream) = v.get("stream").and_then(|s| s.as_str()) {
        crate::app::out(stream);
    } else if !status.is_empty() {
        match v.get("id").and_then(|s| s.as_str()) {
            Some(id) => errln(&format!("{id}: {status}")),
            None => errln(status),
        }
    }
    Ok(())
}

/// `name[:tag]` → (name, tag), digests kept whole.
pub fn split_tag(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

/// Register a wait before starting: the response head arrives at once, the
/// body when the condition is met.
async fn register_wait(c: &Client, id: &str, condition: &str) -> Result<RawResponse, ContainerError> {
    Ok(c.raw("POST", &format!("/containers/{}/wait?condition={condition}", percent_encode(id)), false, None).await?)
}

async fn wait_status(mut w: RawResponse) -> i32 {
    match w.read_to_end().await {
        Ok(body) => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(m) = v.get("Error").and_then(|e| e.get("Message")).and_then(|m| m.as_str()).filter(|m| !m.is_empty()) {
                errln(&format!("Error waiting for container: {m}"));
                return 125;
            }
            v.get("StatusCode").and_then(|s| s.as_i64()).unwrap_or(125) as i32
        }
        Err(e) => {
            errln(&format!("error waiting for container: {e}"));
            125
        }
    }
}

async fn open_attach(c: &Client, id: &str, stdin: bool, stdout: bool, stderr: bool, keys: &str) -> Result<RawResponse, ContainerError> {
    let b = |v: bool| if v { "1" } else { "0" };
    let mut q = vec![("stream", "1".to_owned())];
    if stdin {
        q.push(("stdin", b(stdin).into()));
    }
    if stdout {
        q.push(("stdout", b(stdout).into()));
    }
    if stderr {
        q.push(("stderr", b(stderr).into()));
    }
    if !keys.is_empty() {
        q.push(("detachKeys", keys.to_owned()));
    }
    Ok(c.raw("POST", &format!("/containers/{}/attach{}", percent_encode(id), query(&q)), true, None).await?)
}

/// Forward the signals docker's CLI forwards, as `kill` calls.
pub fn proxy_signals(c: &Client, id: &str) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
        (SignalKind::alarm(), "SIGALRM"),
    ];
    for (kind, name) in kinds {
        let Ok(mut s) = signal(kind) else { continue };
        let docker = c.docker.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = docker.kill_container(&id, Some(bollard::query_parameters::KillContainerOptions { signal: name.into() })).await;
            }
        });
    }
}

/// Keep the container's tty the size of ours: now, and on each SIGWINCH.
pub fn monitor_tty_size(c: &Client, id: &str, exec: bool) {
    let c = c.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let resize = |c: Client, id: String| async move {
            let (h, w) = tty::size();
            if h == 0 && w == 0 {
                return true;
            }
            let what = if exec { "exec" } else { "containers" };
            c.raw("POST", &format!("/{what}/{}/resize?h={h}&w={w}", percent_encode(&id)), false, None).await.is_ok()
        };
        if !resize(c.clone(), id.clone()).await {
            // The process may not be up yet: retry as docker does.
            let mut ok = false;
            for i in 1..=10u64 {
                tokio::time::sleep(std::time::Duration::from_millis(10 * i)).await;
                if resize(c.clone(), id.clone()).await {
                    ok = true;
                    break;
                }
            }
            if !ok {
                errln("failed to resize tty, using default size");
            }
        }
        let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else { return };
        while s.recv().await.is_some() {
            resize(c.clone(), id.clone()).await;
        }
    });
}

pub async fn create(ctx: &Ctx, a: &CreateArgs) -> Result<(), ContainerError> {
    let req = build(&a.flags, &a.cmdline, "create")?;
    let c = ctx.client()?;
    let id = create_container(c, &req, &a.flags.pull, a.flags.quiet).await?;
    outln(&id);
    Ok(())
}

pub async fn run(ctx: &Ctx, a: &RunArgs) -> Result<(), ContainerError> {
    let mut req = build(&a.flags, &a.cmdline, "run")?;
    let c = ctx.client().map_err(|e| with_help("run", e.into()))?;
    let (keys, key_bytes) = detach_keys(ctx, a.detach_keys.as_deref())?;
    {
        let body = &mut req.body;
        body.args_escaped = None;
        if a.detach {
            if !a.flags.attach.is_empty() {
                return Err(with_help("run", ContainerError::AttachAndDetach));
            }
            body.attach_stdin = Some(false);
            body.attach_stdout = Some(false);
            body.attach_stderr = Some(false);
            body.stdin_once = Some(false);
        } else if body.attach_stdin == Some(true) && a.flags.tty && !tty::stdin_is_tty() {
            return Err(ContainerError::NotATty);
        }
    }
    let (stdin, stdout, stderr) =
        (req.body.attach_stdin == Some(true), req.body.attach_stdout == Some(true), req.body.attach_stderr == Some(true));
    let attach = stdin || stdout || stderr;

    let id = create_container(c, &req, &a.flags.pull, a.flags.quiet).await.map_err(|e| with_help("run", e))?;
    if a.sig_proxy {
        proxy_signals(c, &id);
    }
    if !attach {
        outln(&id);
    }
    let hijacked = if attach { Some(open_attach(c, &id, stdin, stdout, stderr, &keys).await?) } else { None };
    // docker registers the wait before start; detached without --rm nothing
    // reads it, so berth saves the round trip.
    let wait = if attach || a.flags.rm {
        Some(register_wait(c, &id, if a.flags.rm { "removed" } else { "next-exit" }).await)
    } else {
        None
    };

    if let Err(e) = c.docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await.map_err(|e| c.err(e)) {
        drop(hijacked);
        if a.flags.rm
            && let Some(Ok(w)) = wait
        {
            wait_status(w).await;
        }
        return Err(with_help("run", e.into()));
    }
    let (Some(hijacked), Some(wait)) = (hijacked, wait) else { return Ok(()) };
    let session = Session { tty: a.flags.tty, stdin, stdout, stderr, detach_keys: key_bytes };
    stream_to_exit(c, &id, session, hijacked, wait?).await
}

/// Stream an attached container to its end (or the detach keys), then
/// exit with its status from the registered wait.
async fn stream_to_exit(c: &Client, id: &str, session: Session, hijacked: RawResponse, wait: RawResponse) -> Result<(), ContainerError> {
    if session.tty && tty::stdout_is_tty() {
        monitor_tty_size(c, id, false);
    }
    let (r, w) = tokio::io::split(hijacked.into_io());
    if session.run(r, w).await? == Ended::Detached {
        return Ok(());
    }
    match wait_status(wait).await {
        0 => Ok(()),
        code => Err(ContainerError::Exit(code)),
    }
}

async fn inspect_running(c: &Client, id: &str) -> Result<ContainerInspectResponse, ContainerError> {
    let info = c.docker.inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>).await.map_err(|e| c.err(e))?;
    let state = info.state.clone().unwrap_or_default();
    if state.running != Some(true) {
        return Err(ContainerError::AttachStopped);
    }
    if state.paused == Some(true) {
        return Err(ContainerError::AttachPaused);
    }
    if state.restarting == Some(true) {
        return Err(ContainerError::AttachRestarting);
    }
    Ok(info)
}

pub async fn attach(ctx: &Ctx, a: &AttachArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let (keys, key_bytes) = detach_keys(ctx, a.detach_keys.as_deref())?;
    let wait = register_wait(c, &a.container, "not-running").await?;
    let info = inspect_running(c, &a.container).await?;
    let config = info.config.clone().unwrap_or_default();
    let is_tty = config.tty == Some(true);
    if !a.no_stdin && is_tty && !tty::stdin_is_tty() {
        return Err(ContainerError::NotATty);
    }
    let stdin = !a.no_stdin && config.open_stdin == Some(true);
    let id = info.id.clone().unwrap_or_else(|| a.container.clone());
    if a.sig_proxy && !is_tty {
        proxy_signals(c, &id);
    }
    let hijacked = open_attach(c, &id, stdin, true, true, &keys).await?;
    inspect_running(c, &id).await?;
    let session = Session { tty: is_tty, stdin, stdout: true, stderr: true, detach_keys: key_bytes };
    stream_to_exit(c, &id, session, hijacked, wait).await
}

pub async fn start(ctx: &Ctx, a: &StartArgs) -> Result<(), ContainerError> {
    let c = ctx.client()?;
    let (keys, key_bytes) = detach_keys(ctx, a.detach_keys.as_deref())?;
    if !(a.attach || a.interactive) {
        let mut errs = Vec::new();
        for name in &a.containers {
            match c.docker.start_container(name, None::<bollard::query_parameters::StartContainerOptions>).await {
                Ok(()) => outln(name),
                Err(e) => errs.push(ContainerError::from(c.err(e))),
            }
        }
        return if errs.is_empty() { Ok(()) } else { Err(ContainerError::Many(errs)) };
    }
    if a.containers.len() > 1 {
        return Err(ContainerError::StartMany);
    }
    let info = c.docker.inspect_container(&a.containers[0], None::<bollard::query_parameters::InspectContainerOptions>).await.map_err(|e| c.err(e))?;
    let id = info.id.clone().unwrap_or_else(|| a.containers[0].clone());
    let config = info.config.clone().unwrap_or_default();
    let is_tty = config.tty == Some(true);
    let auto_remove = info.host_config.as_ref().and_then(|h| h.auto_remove) == Some(true);
    if !is_tty {
        proxy_signals(c, &id);
    }
    let stdin = a.interactive && config.open_stdin == Some(true);
    if stdin && is_tty && !tty::stdin_is_tty() {
        return Err(ContainerError::NotATty);
    }
    let hijacked = open_attach(c, &id, stdin, true, true, &keys).await?;
    let wait = register_wait(c, &id, if auto_remove { "removed" } else { "next-exit" }).await?;
    if let Err(e) = c.docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await {
        drop(hijacked);
        if auto_remove {
            wait_status(wait).await;
        }
        return Err(c.err(e).into());
    }
    let session = Session { tty: is_tty, stdin, stdout: true, stderr: true, detach_keys: key_bytes };
    stream_to_exit(c, &id, session, hijacked, wait).await
}

/// Used by `wait`: one container's exit code.
pub async fn wait_one(c: &Client, id: &str) -> Result<i64, ApiError> {
    let mut s = c.docker.wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    match s.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(c.err(e)),
        None => Err(ApiError::Protocol("empty wait response".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_exit_codes() {
        let m = |s: &str| status_code_for(s);
        assert_eq!(m("failed to create task: exec: \"nope\": executable file not found in $PATH"), 127);
        assert_eq!(m("exec /x: no such file or directory"), 127);
        assert_eq!(m("exec /etc: permission denied"), 126);
        assert_eq!(m("exec /etc: is a directory"), 126);
        assert_eq!(m("No such image: x"), 125);
    }

    #[test]
    fn run_errors_read_like_docker() {
        let e = with_help("run", ContainerError::Api(ApiError::Daemon { status: 500, message: "boom".into() }));
        assert_eq!(e.to_string(), "berth: Error response from daemon: boom\n\nRun 'berth run --help' for more information");
        assert_eq!(e.exit_code(), 125);
        let e = with_help("run", ContainerError::Api(ApiError::Connect { host: "unix:///x".into() }));
        assert_eq!(e.exit_code(), 125);
    }

    #[test]
    fn image_names() {
        assert_eq!(familiar_tagged("busybox"), "busybox:latest");
        assert_eq!(familiar_tagged("localhost:5000/bb"), "localhost:5000/bb:latest");
        assert_eq!(familiar_tagged("bb:1"), "bb:1");
        assert_eq!(split_tag("localhost:5000/bb"), ("localhost:5000/bb", "latest"));
        assert_eq!(split_tag("bb:1.2"), ("bb", "1.2"));
    }
}
