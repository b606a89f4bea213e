//! Where the runtime's messages go: stderr, and the `--log` file in runc's
//! text or JSON format (containerd reads the last error from it).

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Sink {
    path: Option<PathBuf>,
    format: Format,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Set once, at startup.
pub fn init(path: Option<PathBuf>, format: Format) {
    let _ = SINK.set(Sink { path, format });
}

fn write(level: &str, msg: &str) {
    let sink = SINK.get();
    let Some(Sink { path: Some(path), format }) = sink else { return };
    let time = crate::state::now_rfc3339();
    let line = match format {
        Format::Json => serde_json::json!({"level": level, "msg": msg, "time": time}).to_string(),
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

pub fn error(msg: &str) {
    write("error", msg);
    eprintln!("berth-runtime: {msg}");
}

pub fn warn(msg: &str) {
    write("warning", msg);
    eprintln!("berth-runtime: warning: {msg}");
}
