//! Starting a shim (daemon side, blocking) and reading what a shim leaves.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_api::ErrorKind;
use serde::{Deserialize, Serialize};

use crate::logs::{LogConfig, LogError};
use crate::protocol::{self, ExitStatus, Ready};

/// How long [`spawn`] waits for the shim to report (create runs hooks).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`spawn`] waits for a shim that failed to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`SpawnOptions::exit_grace_ms`].
pub const DEFAULT_EXIT_GRACE_MS: u64 = 10_000;

/// Everything a shim needs; written to `<state_dir>/shim.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnOptions {
    /// The container id (the runtime's id, the cgroup's name).
    pub id: String,
    /// The OCI bundle. Its `process.terminal` must equal `tty`.
    pub bundle: PathBuf,
    /// The shim's own directory, `<exec-root>/shims/<id>`: socket, records.
    pub state_dir: PathBuf,
    /// berth-runtime's state root, shared with the daemon.
    pub runtime_root: PathBuf,
    /// The `berth-shim` executable.
    pub shim_binary: PathBuf,
    /// A pty instead of pipes.
    pub tty: bool,
    /// The container gets a stdin (`-i`); else /dev/null.
    pub open_stdin: bool,
    pub log: LogConfig,
    /// After the container exited, how long the shim waits with no client
    /// connected before it exits (the daemon normally says `shutdown`).
    #[serde(default = "default_grace")]
    pub exit_grace_ms: u64,
}

fn default_grace() -> u64 {
    DEFAULT_EXIT_GRACE_MS
}

/// A shim that is ready: the container is created, waiting for `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimHandle {
    pub id: String,
    pub state_dir: PathBuf,
    pub shim_pid: i32,
    /// The container's init (host pid).
    pub pid: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("invalid container id {id:?}")]
    InvalidId { id: String },
    #[error("shim state directory {path}: {source}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("a shim already serves {path}")]
    Busy { path: PathBuf },
    #[error("write shim config {path}: {source}")]
    Config { path: PathBuf, source: berth_sys::fs::FsError },
    #[error("failed to initialize logging driver: {0}")]
    Log(#[from] LogError),
    #[error("start shim {path}: {source}")]
    Exec { path: PathBuf, source: std::io::Error },
    /// The runtime could not create the container; its message, verbatim
    /// (e.g. `exec: "foo": executable file not found in $PATH`).
    #[error("{message}")]
    Create { id: String, message: String, kind: ErrorKind },
    #[error("shim for {id} did not become ready: {detail}")]
    NotReady { id: String, detail: String },
    #[error("read exit record {path}: {source}")]
    ExitRecord { path: PathBuf, source: std::io::Error },
}

impl ShimError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShimError::InvalidId { .. } => ErrorKind::InvalidParameter,
            ShimError::Busy { .. } => ErrorKind::Conflict,
            ShimError::Log(e) => e.kind(),
            ShimError::Create { kind, .. } => *kind,
            _ => ErrorKind::Internal,
        }
    }

    /// The exit code docker gives a container whose start failed so (126
    /// cannot invoke, 127 not found, 128 other), for `Create`.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ShimError::Create { message, .. } => Some(start_failure(message).0),
            _ => None,
        }
    }
}

/// moby's `setExitCodeFromError`: the exit code and error kind of a failed
/// container start, from the runtime's message.
pub fn start_failure(message: &str) -> (i32, ErrorKind) {
    let m = message.to_lowercase();
    if m.contains("permission denied") || m.contains("is a directory") {
        return (126, ErrorKind::InvalidParameter);
    }
    let not_found = ["not a directory", "executable file not found", "no such file or directory"];
    if not_found.iter().any(|s| m.contains(s)) {
        return (127, ErrorKind::InvalidParameter);
    }
    (128, ErrorKind::Internal)
}

fn state_err(path: &Path) -> impl FnOnce(std::io::Error) -> ShimError + '_ {
    move |source| ShimError::StateDir { path: path.to_owned(), source }
}

/// Starts a shim for `opts.id` and waits until it is ready: the container
/// is created (its init waits for `start`), the shim listens on
/// `<state_dir>/shim.sock`. The shim runs in its own session, not a child
/// of the caller (nothing to reap), and outlives it.
///
/// On failure nothing is left: no shim, no container, no state directory.
pub fn spawn(opts: &SpawnOptions) -> Result<ShimHandle, ShimError> {
    berth_runtime::state::validate_id(&opts.id).map_err(|_| ShimError::InvalidId { id: opts.id.clone() })?;
    opts.log.validate()?;
    let dir = &opts.state_dir;
    std::fs::create_dir_all(dir).map_err(state_err(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(state_err(dir))?;
    let sock = dir.join(protocol::SOCKET);
    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        return Err(ShimError::Busy { path: dir.clone() });
    }
    for f in [protocol::SOCKET, protocol::EXIT_FILE, protocol::PID_FILE, protocol::SHIM_LOG] {
        match std::fs::remove_file(dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(state_err(dir)(e)),
            _ => {}
        }
    }
    let result = start(opts);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn start(opts: &SpawnOptions) -> Result<ShimHandle, ShimError> {
    let dir = &opts.state_dir;
    let config = dir.join(protocol::CONFIG);
    let data = serde_json::to_vec_pretty(opts).expect("options serialize");
    berth_sys::fs::write_replace(&config, &data).map_err(|source| ShimError::Config { path: config.clone(), source })?;
    let log_path = dir.join(protocol::SHIM_LOG);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(state_err(&log_path))?;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ShimError::Exec { path: opts.shim_binary.clone(), source: e.into() })?;
    let w = ready_w.as_raw_fd();
    let mut cmd = Command::new(&opts.shim_binary);
    cmd.arg(dir)
        .env_clear()
        .env("PATH", berth_runtime::process::DEFAULT_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // The readiness pipe becomes fd 3, without close-on-exec...
            let r = if w == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(w, 3) };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // ...and nothing else of the caller's leaks into the shim (marked,
            // not closed: std's own exec-error pipe must live until exec).
            libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| ShimError::Exec { path: opts.shim_binary.clone(), source })?;
    drop(ready_w);
    // The first shim process forks the real one and exits at once.
    let status = child.wait().map_err(|source| ShimError::Exec { path: opts.shim_binary.clone(), source })?;
    if !status.success() {
        return Err(not_ready(opts, format!("shim exited with {status}")));
    }
    let pipe = std::fs::File::from(ready_r);
    let line = read_ready(&pipe, READY_TIMEOUT).map_err(|detail| {
        kill_stuck_shim(dir);
        not_ready(opts, detail)
    })?;
    let ready: Ready = serde_json::from_slice(&line).map_err(|e| not_ready(opts, format!("bad readiness message: {e}")))?;
    if !ready.ok {
        // A shim that failed exits at once, and its end of the pipe closes
        // only when it is gone: wait for that, so that nothing is left
        // when the error is returned.
        if !wait_closed(&pipe, EXIT_TIMEOUT) && ready.shim_pid > 0 {
            // SAFETY: plain kill of the shim we started, which said its pid.
            unsafe { libc::kill(ready.shim_pid, libc::SIGKILL) };
        }
        let err = ready.error.unwrap_or(protocol::WireError { kind: ErrorKind::Internal, message: "unknown error".into() });
        return Err(ShimError::Create { id: opts.id.clone(), message: err.message, kind: err.kind });
    }
    Ok(ShimHandle { id: opts.id.clone(), state_dir: dir.clone(), shim_pid: ready.shim_pid, pid: ready.pid })
}

fn not_ready(opts: &SpawnOptions, detail: String) -> ShimError {
    let log = std::fs::read_to_string(opts.state_dir.join(protocol::SHIM_LOG)).unwrap_or_default();
    let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let detail = if last.is_empty() { detail } else { format!("{detail}: {last}") };
    ShimError::NotReady { id: opts.id.clone(), detail }
}

fn kill_stuck_shim(dir: &Path) {
    if let Some(pid) = shim_pid(dir) {
        // SAFETY: plain kill of the shim we started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Waits until `file` is readable (data or EOF), up to `deadline`.
fn poll_readable(file: &std::fs::File, deadline: Instant) -> Result<bool, nix::Error> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(file), nix::poll::PollFlags::POLLIN)];
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX)) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// Whether the other end of the readiness pipe closed (the shim exited)
/// within `timeout`; whatever else comes is discarded.
fn wait_closed(mut file: &std::fs::File, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        match poll_readable(file, deadline) {
            Ok(true) => {}
            Ok(false) | Err(_) => return false,
        }
        match file.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Reads the readiness line (up to a newline or EOF), bounded in time.
fn read_ready(mut file: &std::fs::File, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        match poll_readable(file, deadline) {
            Ok(true) => {}
            Ok(false) => return Err(format!("no answer within {}s", timeout.as_secs())),
            Err(e) => return Err(format!("wait for the shim: {e}")),
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from the shim: {e}")),
        }
    }
    if out.is_empty() {
        return Err("the shim exited before it was ready".into());
    }
    Ok(out)
}

/// The exit record a shim left, if the container has exited.
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitStatus>, ShimError> {
    let path = state_dir.join(protocol::EXIT_FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ShimError::ExitRecord { path, source }),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| ShimError::ExitRecord { path, source: std::io::Error::new(std::io::ErrorKind::InvalidData, e) })
}

/// The pid of the shim serving `state_dir`, if it is alive.
pub fn shim_pid(state_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(state_dir.join(protocol::PID_FILE)).ok()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0 || nix::Error::last() == nix::Error::EPERM;
    alive.then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_as_moby() {
        assert_eq!(start_failure("container init: exec: \"foo\": executable file not found in $PATH").0, 127);
        assert_eq!(start_failure("exec: \"/etc\": permission denied").0, 126);
        assert_eq!(start_failure("open /x: no such file or directory"), (127, ErrorKind::InvalidParameter));
        assert_eq!(start_failure("cgroup: device busy"), (128, ErrorKind::Internal));
    }

    #[test]
    fn options_round_trip() {
        let o = SpawnOptions {
            id: "c1".into(),
            bundle: "/b".into(),
            state_dir: "/s".into(),
            runtime_root: "/r".into(),
            shim_binary: "/bin/berth-shim".into(),
            tty: true,
            open_stdin: false,
            log: LogConfig::json_file("/l/c.log"),
            exit_grace_ms: 5,
        };
        let back: SpawnOptions = serde_json::from_slice(&serde_json::to_vec(&o).unwrap()).unwrap();
        assert_eq!(back, o);
    }
}
