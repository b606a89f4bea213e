//! The daemon's client for a shim (feature `client`, tokio). Each call
//! opens its own connection to `<state_dir>/shim.sock`, so calls can run
//! concurrently and none holds state.

use std::path::{Path, PathBuf};

use berth_api::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::protocol::{self, AttachOptions, ExecRequest, ExecState, ExitStatus, Reply, Request, ShimStatus};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to shim {path}: {source}")]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("talk to shim {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("shim {path} closed the connection without an answer")]
    NoReply { path: PathBuf },
    #[error("bad answer from shim {path}: {source}")]
    Decode { path: PathBuf, source: serde_json::Error },
    #[error("shim {path} answered without the expected {field}")]
    Missing { path: PathBuf, field: &'static str },
    /// The shim's own error (kind and message as it sent them).
    #[error("{message}")]
    Shim { kind: ErrorKind, message: String },
}

impl ClientError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Shim { kind, .. } => *kind,
            ClientError::Connect { .. } | ClientError::NoReply { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// The shim is not there (socket missing or nobody listening): the
    /// daemon should look for `exit.json` ([`crate::read_exit`]).
    pub fn shim_gone(&self) -> bool {
        match self {
            ClientError::Connect { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ),
            ClientError::NoReply { .. } => true,
            _ => false,
        }
    }
}

/// A started exec: its pid, and unless detached the connection carrying
/// its streams (in docker's framing without a tty, raw with one).
#[derive(Debug)]
pub struct ExecStarted {
    pub pid: i32,
    pub stream: Option<UnixStream>,
}

/// A handle on one shim.
#[derive(Debug, Clone)]
pub struct ShimClient {
    state_dir: PathBuf,
    socket: PathBuf,
}

impl ShimClient {
    /// A client for the shim of `state_dir`, checked with a `status`
    /// request (fails when the shim is gone: see [`ClientError::shim_gone`]).
    pub async fn connect(state_dir: impl AsRef<Path>) -> Result<ShimClient, ClientError> {
        let c = ShimClient::new(state_dir);
        c.status().await?;
        Ok(c)
    }

    /// A client without checking that the shim is there.
    pub fn new(state_dir: impl AsRef<Path>) -> ShimClient {
        let state_dir = state_dir.as_ref().to_owned();
        let socket = state_dir.join(protocol::SOCKET);
        ShimClient { state_dir, socket }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    async fn open(&self, req: &Request) -> Result<UnixStream, ClientError> {
        let mut s = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect { path: self.socket.clone(), source })?;
        let mut line = serde_json::to_vec(req).expect("request serializes");
        line.push(b'\n');
        s.write_all(&line).await.map_err(|source| self.io(source))?;
        Ok(s)
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io { path: self.socket.clone(), source }
    }

    /// Reads the reply line byte by byte, so that nothing after it (the
    /// streams) is consumed.
    async fn reply(&self, s: &mut UnixStream) -> Result<Reply, ClientError> {
        let mut line = Vec::with_capacity(128);
        let mut b = [0u8; 1];
        loop {
            let n = s.read(&mut b).await.map_err(|source| self.io(source))?;
            if n == 0 {
                return Err(ClientError::NoReply { path: self.socket.clone() });
            }
            if b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
        }
        let reply: Reply =
            serde_json::from_slice(&line).map_err(|source| ClientError::Decode { path: self.socket.clone(), source })?;
        if !reply.ok {
            let e = reply.error.unwrap_or(protocol::WireError { kind: ErrorKind::Internal, message: "unknown error".into() });
            return Err(ClientError::Shim { kind: e.kind, message: e.message });
        }
        Ok(reply)
    }

    async fn call(&self, req: &Request) -> Result<Reply, ClientError> {
        let mut s = self.open(req).await?;
        self.reply(&mut s).await
    }

    pub async fn status(&self) -> Result<ShimStatus, ClientError> {
        let r = self.call(&Request::Status).await?;
        r.status.ok_or(ClientError::Missing { path: self.socket.clone(), field: "status" })
    }

    /// Releases the container's process. Attach first to miss no output.
    pub async fn start(&self) -> Result<(), ClientError> {
        self.call(&Request::Start).await.map(drop)
    }

    /// A connection streaming the container's output as docker sends it on
    /// a hijacked attach (multiplexed frames without a tty, raw bytes with
    /// one); bytes written to it reach the container's stdin when
    /// `opts.stdin`; shutting down its write side closes that stdin when
    /// `opts.stdin_once`. It ends when the container's output does.
    pub async fn attach(&self, opts: AttachOptions) -> Result<UnixStream, ClientError> {
        let mut s = self.open(&Request::Attach(opts)).await?;
        self.reply(&mut s).await?;
        Ok(s)
    }

    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), ClientError> {
        self.call(&Request::Resize { exec_id: None, rows, cols }).await.map(drop)
    }

    pub async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), ClientError> {
        self.call(&Request::Resize { exec_id: Some(exec_id.to_owned()), rows, cols }).await.map(drop)
    }

    /// Waits until the container has exited and its output is flushed to
    /// the log.
    pub async fn wait(&self) -> Result<ExitStatus, ClientError> {
        let r = self.call(&Request::Wait).await?;
        r.exit.ok_or(ClientError::Missing { path: self.socket.clone(), field: "exit" })
    }

    /// Runs a process in the running container.
    pub async fn exec(&self, req: ExecRequest) -> Result<ExecStarted, ClientError> {
        let detach = req.detach;
        let mut s = self.open(&Request::Exec(Box::new(req))).await?;
        let r = self.reply(&mut s).await?;
        let pid = r.pid.ok_or(ClientError::Missing { path: self.socket.clone(), field: "pid" })?;
        Ok(ExecStarted { pid, stream: (!detach).then_some(s) })
    }

    pub async fn exec_state(&self, exec_id: &str) -> Result<ExecState, ClientError> {
        let r = self.call(&Request::ExecState { exec_id: exec_id.to_owned() }).await?;
        r.exec.ok_or(ClientError::Missing { path: self.socket.clone(), field: "exec" })
    }

    /// The daemon has the exit status: the shim may go (it refuses while
    /// the container runs).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        self.call(&Request::Shutdown).await.map(drop)
    }
}

/// Follows a log from a blocking thread, delivering entries on a channel;
/// reading stops when the receiver is dropped.
pub fn spawn_log_reader(
    reader: crate::logs::LogReader,
) -> tokio::sync::mpsc::Receiver<Result<crate::logs::LogEntry, crate::logs::LogError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let closed = tx.clone();
    let mut reader = reader.with_stop_also(move || closed.is_closed());
    tokio::task::spawn_blocking(move || {
        for item in reader.by_ref() {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
    });
    rx
}
