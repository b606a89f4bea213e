//! The connection to berthd: where it is (`-H`, `BERTH_HOST`, `DOCKER_HOST`),
//! the bollard client for request/response calls, and a small raw HTTP/1.1
//! path for the streams bollard frames by guesswork (attach, exec start,
//! logs) or whose response headers must arrive before the next call (wait).

use std::io;
use std::path::PathBuf;

use berth_api::ErrorKind;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// The API version berth's CLI asks for (what docker 28 sends).
pub const DEFAULT_API_VERSION: &str = "1.50";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect { host: String },
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("invalid host {host:?}: {reason}")]
    Host { host: String, reason: &'static str },
    #[error("invalid API version {0:?}")]
    Version(String),
    #[error("error during connect: {0}")]
    Transport(#[source] bollard::errors::Error),
    #[error("error reading the response from the daemon: {0}")]
    Io(#[from] io::Error),
    #[error("malformed response from the daemon: {0}")]
    Protocol(String),
    #[error("unable to upgrade to tcp, received {0}")]
    NoUpgrade(u16),
}

impl ApiError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Daemon { status, .. } => ErrorKind::from_http_status(*status),
            ApiError::Connect { .. } => ErrorKind::Unavailable,
            ApiError::Host { .. } | ApiError::Version(_) => ErrorKind::InvalidParameter,
            _ => ErrorKind::Internal,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// The daemon's own message, if this is a daemon error.
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            ApiError::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Where berthd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, ApiError> {
        let bad = |reason| ApiError::Host { host: s.to_owned(), reason };
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://").or_else(|| s.strip_prefix("http://")) {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                return Err(bad("empty address"));
            }
            let a = if a.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) { a.to_owned() } else { format!("{a}:2375") };
            return Ok(Host::Tcp(a));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(bad("unsupported protocol (use unix:// or tcp://)"))
    }

    /// Resolve `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.
    pub fn resolve(flag: Option<&str>) -> Result<Host, ApiError> {
        let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        let s = flag.map(str::to_owned).or_else(|| env("BERTH_HOST")).or_else(|| env("DOCKER_HOST"));
        Host::parse(s.as_deref().unwrap_or(DEFAULT_HOST))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// An open line to berthd: bollard for plain calls, raw HTTP for streams.
#[derive(Clone)]
pub struct Client {
    pub docker: bollard::Docker,
    pub host: Host,
    pub version: String,
}

/// bollard's timeout covers the wait for response headers: stop -t and
/// wait may take as long as the user asks, so it is effectively unbounded.
const NO_TIMEOUT: u64 = 10 * 365 * 24 * 3600;

impl Client {
    pub fn new(host: Host) -> Result<Client, ApiError> {
        let version = std::env::var("BERTH_API_VERSION")
            .or_else(|_| std::env::var("DOCKER_API_VERSION"))
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
        let (maj, min) = version.split_once('.').ok_or_else(|| ApiError::Version(version.clone()))?;
        let cv = bollard::ClientVersion {
            major_version: maj.parse().map_err(|_| ApiError::Version(version.clone()))?,
            minor_version: min.parse().map_err(|_| ApiError::Version(version.clone()))?,
        };
        let docker = match &host {
            // bollard refuses a socket path that does not exist yet; the
            // connect error then reads as docker's.
            Host::Unix(p) => bollard::Docker::connect_with_unix(&p.to_string_lossy(), NO_TIMEOUT, &cv),
            Host::Tcp(a) => bollard::Docker::connect_with_http(&format!("tcp://{a}"), NO_TIMEOUT, &cv),
        }
        .map_err(|e| map_bollard(&host, e))?;
        // bollard joins each path onto its `/v1.xx` base with `Url::join`,
        // which drops the version; put it back so that every request names
        // its API version, as docker's do.
        let prefix = format!("/v{version}");
        let docker = docker.with_request_modifier(move |mut req| {
            *req.uri_mut() = with_version(req.uri(), &prefix);
            req
        });
        Ok(Client { docker, host, version })
    }

    /// Map a bollard error to ours (connect failures read as docker's).
    pub fn err(&self, e: bollard::errors::Error) -> ApiError {
        map_bollard(&self.host, e)
    }

    async fn connect(&self) -> Result<Box<dyn Io>, ApiError> {
        let connect_err = |_| ApiError::Connect { host: self.host.to_string() };
        Ok(match &self.host {
            Host::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await.map_err(connect_err)?),
            Host::Tcp(a) => Box::new(tokio::net::TcpStream::connect(a).await.map_err(connect_err)?),
        })
    }

    /// Send one request and read the response head. `path` is below the
    /// version prefix and includes the query.
    pub async fn raw(&self, method: &str, path: &str, upgrade: bool, body: Option<&[u8]>) -> Result<RawResponse, ApiError> {
        self.request(method, path, upgrade, body.map(Body::Json), &[]).await
    }

    /// A request with extra headers (`X-Registry-Auth`).
    pub async fn raw_with_headers(&self, method: &str, path: &str, headers: &[(&str, String)], body: Option<&[u8]>) -> Result<RawResponse, ApiError> {
        self.request(method, path, false, body.map(Body::Json), headers).await
    }

    /// Send a body read from `src` (a tar, usually) in chunks.
    pub async fn upload(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        src: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<RawResponse, ApiError> {
        self.request(method, path, false, Some(Body::Stream { content_type, src }), &[]).await
    }

    async fn request(&self, method: &str, path: &str, upgrade: bool, body: Option<Body<'_>>, headers: &[(&str, String)]) -> Result<RawResponse, ApiError> {
        let mut io = self.connect().await?;
        let mut req = format!("{method} /v{}{path} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth/{}\r\n", self.version, env!("CARGO_PKG_VERSION"));
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if upgrade {
            req.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
        }
        match &body {
            Some(Body::Json(b)) => req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len())),
            Some(Body::Stream { content_type, .. }) => req.push_str(&format!("Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n")),
            None if upgrade => req.push_str("Content-Type: text/plain\r\n"),
            None => {}
        }
        req.push_str("\r\n");
        io.write_all(req.as_bytes()).await?;
        match body {
            Some(Body::Json(b)) => io.write_all(b).await?,
            Some(Body::Stream { src, .. }) => {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = src.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    io.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                    io.write_all(&buf[..n]).await?;
                    io.write_all(b"\r\n").await?;
                }
                io.write_all(b"0\r\n\r\n").await?;
            }
            None => {}
        }
        io.flush().await?;
        let mut r = BufReader::new(io);
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::Protocol(format!("bad status line {:?}", line.trim_end())))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Err(ApiError::Protocol("connection closed in the response headers".into()));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.as_str());
        let framing = if status == 101 {
            Framing::Raw
        } else if status == 204 || status == 304 {
            // Never a body (RFC 9110), whatever the headers say.
            Framing::Length(0)
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            Framing::Chunked { left: 0, done: false }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse().ok()) {
            Framing::Length(n)
        } else {
            Framing::Raw
        };
        let content_type = header("content-type").unwrap_or("").to_owned();
        let mut resp = RawResponse { status, content_type, io: r, framing };
        if status >= 400 {
            let body = resp.read_to_end().await?;
            return Err(daemon_error(status, &body));
        }
        if upgrade && status != 101 && status != 200 {
            return Err(ApiError::NoUpgrade(status));
        }
        Ok(resp)
    }
}

/// `/containers/json?all=1` → `/v1.50/containers/json?all=1` (kept when
/// already versioned).
pub fn with_version(uri: &http::Uri, prefix: &str) -> http::Uri {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if pq.starts_with("/v1.") {
        return uri.clone();
    }
    let mut parts = uri.clone().into_parts();
    match format!("{prefix}{pq}").parse() {
        Ok(p) => parts.path_and_query = Some(p),
        Err(_) => return uri.clone(),
    }
    http::Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

fn daemon_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    let message = match serde_json::from_slice::<Msg>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    ApiError::Daemon { status, message }
}

fn map_bollard(host: &Host, e: bollard::errors::Error) -> ApiError {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError { status_code, message } => ApiError::Daemon { status: status_code, message },
        B::SocketNotFoundError(_) => ApiError::Connect { host: host.to_string() },
        B::HyperLegacyError { ref err } if err.is_connect() => ApiError::Connect { host: host.to_string() },
        B::IOError { ref err } if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            ApiError::Connect { host: host.to_string() }
        }
        other => ApiError::Transport(other),
    }
}

enum Body<'a> {
    Json(&'a [u8]),
    Stream { content_type: &'a str, src: &'a mut (dyn AsyncRead + Unpin + Send) },
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Raw,
}

/// A response whose body is read as it arrives.
pub struct RawResponse {
    pub status: u16,
    pub content_type: String,
    io: BufReader<Box<dyn Io>>,
    framing: Framing,
}

impl RawResponse {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ApiError> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match &mut self.framing {
                Framing::Length(0) => return Ok(None),
                Framing::Length(left) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = self.io.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Err(ApiError::Protocol("unexpected end of the response body".into()));
                    }
                    *left -= n as u64;
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Framing::Raw => {
                    let n = self.io.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Framing::Chunked { done: true, .. } => return Ok(None),
                Framing::Chunked { left, done } => {
                    if *left == 0 {
                        let mut line = String::new();
                        if self.io.read_line(&mut line).await? == 0 {
                            // Cut off before the last chunk (a daemon that died mid-pull).
                            return Err(ApiError::Protocol("unexpected EOF".into()));
                        }
                        let size = line.trim().split(';').next().unwrap_or("");
                        if size.is_empty() {
                            continue; // the CRLF after a chunk
                        }
                        let n = u64::from_str_radix(size, 16).map_err(|_| ApiError::Protocol(format!("bad chunk size {size:?}")))?;
                        if n == 0 {
                            *done = true;
                            return Ok(None);
                        }
                        *left = n;
                    }
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = self.io.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Err(ApiError::Protocol("unexpected end of a chunk".into()));
                    }
                    *left -= n as u64;
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
            }
        }
    }

    pub async fn read_to_end(&mut self) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// The hijacked connection, for attach and exec.
    pub fn into_io(self) -> BufReader<Box<dyn Io>> {
        self.io
    }
}

/// docker's stream multiplexing (`stdcopy`): 8-byte headers `[stream, 0, 0,
/// 0, len(be32)]` before each frame; stream 0 stdin, 1 stdout, 2 stderr, 3
/// an error from the daemon.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    SystemErr(String),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized input header: {0}")]
pub struct BadHeader(pub u8);

impl Demux {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Result<Option<Frame>, BadHeader> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload: Vec<u8> = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        match kind {
            0 | 1 => Ok(Some(Frame::Stdout(payload))),
            2 => Ok(Some(Frame::Stderr(payload))),
            3 => Ok(Some(Frame::SystemErr(String::from_utf8_lossy(&payload).into_owned()))),
            k => Err(BadHeader(k)),
        }
    }
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Build `?a=b&c=d` from pairs (values percent-encoded).
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
    format!("?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_resolve_like_docker() {
        assert_eq!(Host::parse("unix:///run/berth/berth.sock").unwrap(), Host::Unix("/run/berth/berth.sock".into()));
        assert_eq!(Host::parse("tcp://127.0.0.1:2375").unwrap(), Host::Tcp("127.0.0.1:2375".into()));
        assert_eq!(Host::parse("tcp://localhost").unwrap(), Host::Tcp("localhost:2375".into()));
        assert!(Host::parse("ssh://x").is_err());
        assert_eq!(Host::Unix("/x.sock".into()).to_string(), "unix:///x.sock");
    }

    #[test]
    fn demux_splits_frames_across_pushes() {
        let mut d = Demux::default();
        d.push(&[1, 0, 0, 0, 0, 0, 0, 3, b'a']);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(b"bc");
        d.push(&[2, 0, 0, 0, 0, 0, 0, 1, b'e']);
        assert_eq!(d.next_frame(), Ok(Some(Frame::Stdout(b"abc".to_vec()))));
        assert_eq!(d.next_frame(), Ok(Some(Frame::Stderr(b"e".to_vec()))));
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(BadHeader(9)));
    }

    #[test]
    fn bollard_paths_get_the_version_back() {
        let u: http::Uri = "unix://2f72756e/containers/json?all=true".parse().unwrap();
        assert_eq!(with_version(&u, "/v1.50").to_string(), "unix://2f72756e/v1.50/containers/json?all=true");
        let v: http::Uri = "unix://2f72756e/v1.44/info".parse().unwrap();
        assert_eq!(with_version(&v, "/v1.50"), v);
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(query(&[("filters", r#"{"a":["b c"]}"#.into())]), "?filters=%7B%22a%22%3A%5B%22b%20c%22%5D%7D");
        assert_eq!(query(&[]), "");
    }
}
