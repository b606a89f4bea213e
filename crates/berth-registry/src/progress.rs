//! Progress of pulls and pushes as docker's JSON messages (moby's
//! `jsonmessage.JSONMessage`), the lines `POST /images/create` and
//! `POST /images/{name}/push` stream to the client:
//!
//! ```text
//! {"status":"Pulling from library/busybox","id":"latest"}
//! {"status":"Pulling fs layer","progressDetail":{},"id":"ec562eabd705"}
//! {"status":"Downloading","progressDetail":{"current":1048576,"total":2152262},"progress":"[=======>   ]  1.049MB/2.152MB","id":"ec562eabd705"}
//! {"status":"Pull complete","progressDetail":{},"id":"ec562eabd705"}
//! {"status":"Digest: sha256:..."}
//! {"status":"Status: Downloaded newer image for busybox:latest"}
//! ```
//!
//! The pull and push functions hand each message to a [`Progress`] sink; the
//! daemon forwards them (e.g. through [`Progress::channel`]) to the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `progressDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `errorDetail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// One line of docker's JSON progress stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressMessage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(rename = "progressDetail", default, skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// The rendered bar (`[==>  ] 1.2MB/3.4MB`), for old clients.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub progress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "errorDetail", default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Push's final `{"Tag":..,"Digest":..,"Size":..}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl ProgressMessage {
    /// A line without an id (`Digest: ...`, `Status: ...`).
    pub fn status(status: impl Into<String>) -> ProgressMessage {
        ProgressMessage { status: status.into(), ..Default::default() }
    }

    /// A per-layer line (`Pulling fs layer`, `Pull complete`, `Pushed`):
    /// docker sends an empty `progressDetail` with these.
    pub fn layer(id: impl Into<String>, status: impl Into<String>) -> ProgressMessage {
        ProgressMessage { status: status.into(), id: id.into(), progress_detail: Some(ProgressDetail::default()), ..Default::default() }
    }

    /// A line with an id but no detail (`Pulling from library/busybox`).
    pub fn with_id(id: impl Into<String>, status: impl Into<String>) -> ProgressMessage {
        ProgressMessage { status: status.into(), id: id.into(), ..Default::default() }
    }

    /// `Downloading` / `Extracting` / `Pushing` with counts and the bar.
    pub fn bytes(id: impl Into<String>, status: impl Into<String>, current: u64, total: u64) -> ProgressMessage {
        let (current, total) = (current as i64, total as i64);
        ProgressMessage {
            status: status.into(),
            id: id.into(),
            progress_detail: Some(ProgressDetail { current, total }),
            progress: render_bar(current, total),
            ..Default::default()
        }
    }

    /// The final error line of a failed stream.
    pub fn error(message: impl Into<String>) -> ProgressMessage {
        let message = message.into();
        ProgressMessage { error_detail: Some(ErrorDetail { code: 0, message: message.clone() }), error: message, ..Default::default() }
    }

    pub fn aux(value: serde_json::Value) -> ProgressMessage {
        ProgressMessage { progress_detail: Some(ProgressDetail::default()), aux: Some(value), ..Default::default() }
    }

    /// The line as the daemon writes it (JSON and `\r\n`).
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("progress message serializes");
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// docker's `JSONProgress.String()` for a wide terminal: a 50 column bar
/// and `current/total` in decimal units.
pub fn render_bar(current: i64, total: i64) -> String {
    if total <= 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    if current > total {
        return bar;
    }
    format!("{bar}{:>8}/{}", human_size(current as f64), human_size(total as f64))
}

/// go-units' `HumanSize`: decimal units, 4 significant digits (`2.152MB`).
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g4(s), UNITS[i])
}

/// Go's `%.4g` for values in [0, 1000).
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let int_digits = if v >= 1.0 { (v.log10().floor() as i32) + 1 } else { 1 };
    let decimals = (4 - int_digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// Where progress goes: a callback the daemon supplies.
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Arc<dyn Fn(ProgressMessage) + Send + Sync>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.sink.is_some() { "Progress(sink)" } else { "Progress(none)" })
    }
}

impl Progress {
    pub fn new(f: impl Fn(ProgressMessage) + Send + Sync + 'static) -> Progress {
        Progress { sink: Some(Arc::new(f)) }
    }

    /// Discard everything.
    pub fn none() -> Progress {
        Progress { sink: None }
    }

    /// A sink and the receiving end of its channel (unbounded: messages
    /// are small and throttled).
    pub fn channel() -> (Progress, tokio::sync::mpsc::UnboundedReceiver<ProgressMessage>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Progress::new(move |m| drop(tx.send(m))), rx)
    }

    pub fn send(&self, m: ProgressMessage) {
        if let Some(s) = &self.sink {
            s(m);
        }
    }
}

/// Throttles byte-count updates of one layer (docker sends at most about
/// ten a second per layer).
pub(crate) struct Ticker {
    last: Option<Instant>,
}

impl Ticker {
    pub(crate) fn new() -> Ticker {
        Ticker { last: None }
    }
    pub(crate) fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < Duration::from_millis(100)) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_dockers_shape() {
        let m = ProgressMessage::bytes("ec562eabd705", "Downloading", 1_048_576, 2_152_262);
        let v: serde_json::Value = serde_json::from_slice(&m.to_line()[..]).unwrap();
        assert_eq!(v["status"], "Downloading");
        assert_eq!(v["progressDetail"]["current"], 1_048_576);
        assert_eq!(v["progressDetail"]["total"], 2_152_262);
        assert_eq!(v["id"], "ec562eabd705");
        assert_eq!(v["progress"], format!("[{}>{}]  1.049MB/2.152MB", "=".repeat(24), " ".repeat(26)));
        assert!(m.to_line().ends_with(b"}\r\n"));
        assert_eq!(
            serde_json::to_string(&ProgressMessage::layer("abc", "Pull complete")).unwrap(),
            r#"{"status":"Pull complete","progressDetail":{},"id":"abc"}"#
        );
        assert_eq!(serde_json::to_string(&ProgressMessage::status("Digest: sha256:x")).unwrap(), r#"{"status":"Digest: sha256:x"}"#);
        assert_eq!(
            serde_json::to_string(&ProgressMessage::error("boom")).unwrap(),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
    }

    #[test]
    fn sizes_render_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(772_800.0), "772.8kB");
        assert_eq!(human_size(2_152_262.0), "2.152MB");
        assert_eq!(human_size(32_000_000_000.0), "32GB");
        assert_eq!(render_bar(10, 0), "     10B");
        assert_eq!(render_bar(5, 5), format!("[{}>] {:>8}/5B", "=".repeat(50), "5B"));
    }

    #[test]
    fn channel_delivers_in_order() {
        let (p, mut rx) = Progress::channel();
        p.send(ProgressMessage::status("a"));
        p.send(ProgressMessage::status("b"));
        assert_eq!(rx.try_recv().unwrap().status, "a");
        assert_eq!(rx.try_recv().unwrap().status, "b");
        Progress::none().send(ProgressMessage::status("dropped"));
    }
}
