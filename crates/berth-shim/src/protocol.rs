//! The control protocol between the daemon and a shim, and docker's stream
//! framing. See the crate documentation for the exchange itself.

use berth_api::ErrorKind;
use serde::{Deserialize, Serialize};

/// The shim's control socket, in its state directory.
pub const SOCKET: &str = "shim.sock";
/// The spawn options, written by [`crate::spawn()`] for the shim to read.
pub const CONFIG: &str = "shim.json";
/// The shim's pid, written once it is ready.
pub const PID_FILE: &str = "shim.pid";
/// The exit record, written when the container has exited and its output is
/// in the log.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's own diagnostics (its stderr).
pub const SHIM_LOG: &str = "shim.log";

/// Longest request line a shim accepts.
pub const MAX_REQUEST: usize = 1 << 20;

/// Which output stream a frame carries (the first byte of docker's 8-byte
/// header; 0 is stdin, which a shim never sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub fn from_name(s: &str) -> Option<Stream> {
        match s {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// docker's multiplexing header: stream type, three zero bytes, the payload
/// length as a big-endian u32.
pub fn frame_header(stream: Stream, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [stream as u8, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Appends `data` as one or more frames (a frame holds at most u32::MAX
/// bytes).
pub fn push_frames(out: &mut Vec<u8>, stream: Stream, data: &[u8]) {
    for chunk in data.chunks(u32::MAX as usize) {
        out.extend_from_slice(&frame_header(stream, chunk.len()));
        out.extend_from_slice(chunk);
    }
}

/// Splits a multiplexed byte stream back into (stream, payload) frames, as
/// the docker CLI does. Feed it bytes as they come.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("bad stream type {0} in frame header")]
    BadStream(u8),
}

impl FrameError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

impl FrameDecoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if there is one.
    pub fn next_frame(&mut self) -> Result<Option<(Stream, Vec<u8>)>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let stream = match self.buf[0] {
            1 => Stream::Stdout,
            2 => Stream::Stderr,
            b => return Err(FrameError::BadStream(b)),
        };
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let payload = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        Ok(Some((stream, payload)))
    }

    /// Bytes held that do not yet make a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// What an attach asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachOptions {
    /// Bytes written on the connection go to the container's stdin.
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// docker's `StdinOnce`: end of input on this connection closes the
    /// container's stdin.
    #[serde(default)]
    pub stdin_once: bool,
    /// A key sequence on stdin that detaches (closes this connection) instead
    /// of reaching the container, e.g. `[0x10, 0x11]` for ctrl-p ctrl-q.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach_keys: Option<Vec<u8>>,
}

/// A request: the first line a client writes on a new connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The shim's view of the container.
    Status,
    /// Release the container's process (`Runtime::start`).
    Start,
    /// Stream the container's output (and take its input) on this connection.
    Attach(AttachOptions),
    /// Set the pty size of the container (`exec_id` None) or of an exec.
    Resize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
        rows: u16,
        cols: u16,
    },
    /// Answer once the container has exited and its output is flushed.
    Wait,
    /// Run a process in the container.
    Exec(Box<ExecRequest>),
    /// An exec's pid and exit code.
    ExecState { exec_id: String },
    /// The container has exited and the daemon has what it needs: exit.
    Shutdown,
}

/// An exec to run (the request's body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub exec_id: String,
    /// The OCI process; its `terminal` is set from `tty`.
    pub process: oci_spec::runtime::Process,
    pub tty: bool,
    /// Bytes written on the connection go to the process's stdin.
    pub stdin: bool,
    /// Nobody attaches: output is discarded and the connection closes after
    /// the reply.
    pub detach: bool,
    /// Detach keys, as for an attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach_keys: Option<Vec<u8>>,
}

/// How the container's process ended. Stored as `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal that killed it.
    pub code: i32,
    /// The signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// When the shim reaped it: RFC 3339, UTC, nanoseconds.
    pub time: String,
    /// The OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// The container's init pid (host namespace).
    pub pid: i32,
}

impl ExitStatus {
    /// The exit time in nanoseconds since the epoch.
    pub fn time_nanos(&self) -> Option<i64> {
        crate::timefmt::parse_rfc3339(&self.time)
    }
}

/// Where the container is, as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Created, waiting for `start`.
    Created,
    Running,
    /// Init has exited; output is being drained, the container deleted.
    Stopping,
    /// Exited, output flushed, exit.json written.
    Exited,
}

/// The answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStatus {
    pub id: String,
    pub shim_pid: i32,
    pub pid: i32,
    pub phase: Phase,
    pub tty: bool,
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
}

/// An exec's state (`exec_state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    pub exec_id: String,
    /// 0 when it could not be started.
    pub pid: i32,
    pub running: bool,
    /// Set once it has exited: its code or 128 + signal; 126 when it
    /// could not be started (docker's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it could not be started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An error as it travels in a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
}

/// A reply line. `ok` false comes with `error`; the other fields depend on
/// the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ShimStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecState>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply { ok: true, ..Reply::default() }
    }

    pub fn err(kind: ErrorKind, message: impl Into<String>) -> Reply {
        Reply { ok: false, error: Some(WireError { kind, message: message.into() }), ..Reply::default() }
    }

    /// The reply as a line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("reply serializes");
        v.push(b'\n');
        v
    }
}

/// What the shim writes on the readiness pipe once (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default)]
    pub pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_dockers() {
        let mut out = Vec::new();
        push_frames(&mut out, Stream::Stderr, b"hi\n");
        push_frames(&mut out, Stream::Stdout, &[7u8; 300]);
        assert_eq!(&out[..11], b"\x02\x00\x00\x00\x00\x00\x00\x03hi\n");
        assert_eq!(&out[11..19], &[1, 0, 0, 0, 0, 0, 1, 44]);
        let mut d = FrameDecoder::default();
        for b in out.chunks(5) {
            d.push(b);
        }
        assert_eq!(d.next_frame().unwrap(), Some((Stream::Stderr, b"hi\n".to_vec())));
        assert_eq!(d.next_frame().unwrap(), Some((Stream::Stdout, vec![7u8; 300])));
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::BadStream(3)));
    }

    #[test]
    fn requests_are_tagged_json_lines() {
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false,"stdin_once":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach(AttachOptions { stdin: true, stdout: true, stderr: false, stdin_once: true, detach_keys: None })
        );
        assert_eq!(serde_json::to_string(&Request::Wait).unwrap(), r#"{"op":"wait"}"#);
        assert_eq!(
            serde_json::to_string(&Request::Resize { exec_id: None, rows: 24, cols: 80 }).unwrap(),
            r#"{"op":"resize","rows":24,"cols":80}"#
        );
        let e = Reply::err(ErrorKind::Conflict, "container is not running");
        assert_eq!(
            String::from_utf8(e.to_line()).unwrap(),
            "{\"ok\":false,\"error\":{\"kind\":\"Conflict\",\"message\":\"container is not running\"}}\n"
        );
    }
}
