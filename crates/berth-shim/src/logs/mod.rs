//! Container logs: the drivers the shim writes with, and the reader the
//! daemon's `logs` endpoint uses.
//!
//! Writing (in the shim): the container's output goes through a
//! [`copier::LineSplitter`] per stream, which cuts it into messages exactly
//! as docker's log copier does (one per line, lines over 16 KiB split into
//! partial messages), then into the driver:
//!
//! - `json-file`: docker's format byte for byte, one JSON object per line
//!   (`{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}`),
//!   see [`jsonfile`];
//! - `local`: berth's compact binary records, see [`local`];
//! - `syslog`: one message per line to `/dev/log` (or the configured
//!   address), in docker's formats, see [`syslog`];
//! - `none`: nothing.
//!
//! Both file drivers rotate as docker does ([`rotate`]): when the file has
//! reached `max-size`, `file` becomes `file.1`, `file.1` becomes `file.2`...
//! keeping `max-file` files in all.
//!
//! Reading (in the daemon): [`reader::LogReader`] gives entries with their
//! stream and time, with `tail`, `since`, `until`, the stream filter, and
//! `follow` across rotations.

pub mod copier;
pub mod jsonfile;
pub mod local;
pub mod reader;
pub mod rotate;
pub mod syslog;

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_api::ErrorKind;
use serde::{Deserialize, Serialize};

pub use crate::protocol::Stream;
pub use copier::{LineSplitter, Message};
pub use reader::{LogReader, ReadOptions};

/// docker's `--log-driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDriver {
    #[serde(rename = "json-file")]
    JsonFile,
    #[serde(rename = "local")]
    Local,
    #[serde(rename = "none")]
    None,
    #[serde(rename = "syslog")]
    Syslog,
}

impl LogDriver {
    pub fn parse(name: &str) -> Option<LogDriver> {
        match name {
            "json-file" => Some(LogDriver::JsonFile),
            "local" => Some(LogDriver::Local),
            "none" => Some(LogDriver::None),
            "syslog" => Some(LogDriver::Syslog),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::None => "none",
            LogDriver::Syslog => "syslog",
        }
    }

    /// The drivers `logs` can read back.
    pub fn readable(self) -> bool {
        matches!(self, LogDriver::JsonFile | LogDriver::Local)
    }
}

/// docker's defaults for the `local` driver: 20 MB per file, 5 files.
pub const LOCAL_DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const LOCAL_DEFAULT_MAX_FILE: u32 = 5;

/// Where and how a container's output is logged. The daemon resolves
/// `--log-opt`s (sizes, tag template, labels/env attributes) into this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub driver: LogDriver,
    /// The log file (json-file, local).
    #[serde(default)]
    pub path: PathBuf,
    /// Rotate once a file has reached this many bytes; None: never.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included (at least 1).
    #[serde(default = "one")]
    pub max_file: u32,
    /// json-file's `attrs` (from the `labels`, `env`, `tag` options).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    /// syslog settings.
    #[serde(default)]
    pub syslog: SyslogConfig,
}

fn one() -> u32 {
    1
}

impl LogConfig {
    pub fn json_file(path: impl Into<PathBuf>) -> LogConfig {
        LogConfig {
            driver: LogDriver::JsonFile,
            path: path.into(),
            max_size: None,
            max_file: 1,
            attrs: BTreeMap::new(),
            syslog: SyslogConfig::default(),
        }
    }

    pub fn local(path: impl Into<PathBuf>) -> LogConfig {
        LogConfig {
            driver: LogDriver::Local,
            max_size: Some(LOCAL_DEFAULT_MAX_SIZE),
            max_file: LOCAL_DEFAULT_MAX_FILE,
            ..LogConfig::json_file(path)
        }
    }

    pub fn none() -> LogConfig {
        LogConfig { driver: LogDriver::None, ..LogConfig::json_file("") }
    }

    /// Checks what can be checked before a container starts.
    pub fn validate(&self) -> Result<(), LogError> {
        if matches!(self.driver, LogDriver::JsonFile | LogDriver::Local) && self.path.as_os_str().is_empty() {
            return Err(LogError::NoPath { driver: self.driver.name() });
        }
        if self.max_file == 0 {
            return Err(LogError::Invalid { option: "max-file", message: "max-file cannot be less than 1".into() });
        }
        if self.max_size == Some(0) {
            return Err(LogError::Invalid { option: "max-size", message: "max-size must be a positive number".into() });
        }
        if self.driver == LogDriver::Syslog {
            syslog::Settings::parse(&self.syslog)?;
        }
        Ok(())
    }
}

/// The syslog driver's options (docker's `syslog-*` log options).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyslogConfig {
    /// `unix:///path`, `unixgram:///path` or `udp://host:port`; None: the
    /// local syslog (`/dev/log`).
    #[serde(default)]
    pub address: Option<String>,
    /// A facility name (`daemon`, `local0`...) or number; None: `daemon`.
    #[serde(default)]
    pub facility: Option<String>,
    /// `rfc3164`, `rfc5424`, `rfc5424micro`; None: docker's default (the
    /// local form `<pri>Jan  2 15:04:05 tag[pid]: msg`).
    #[serde(default)]
    pub format: Option<String>,
    /// The tag (docker's default is the first 12 characters of the id).
    #[serde(default)]
    pub tag: String,
}

/// One log entry read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: Stream,
    /// Nanoseconds since the epoch.
    pub time: i64,
    /// The output, with its trailing newline when the line was complete.
    pub line: Vec<u8>,
    /// The line continues in the next entry (no newline followed).
    pub partial: bool,
    /// json-file's `attrs`.
    pub attrs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("the {driver} log driver needs a log file path")]
    NoPath { driver: &'static str },
    #[error("log option {option}: {message}")]
    Invalid { option: &'static str, message: String },
    #[error("open log file {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("write log file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("rotate log file {path}: {source}")]
    Rotate { path: PathBuf, source: std::io::Error },
    #[error("read log file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("lock log directory {path}: {errno}")]
    Lock { path: PathBuf, errno: nix::Error },
    #[error("watch log directory {path}: {errno}")]
    Watch { path: PathBuf, errno: nix::Error },
    #[error("syslog {address}: {source}")]
    Syslog { address: String, source: std::io::Error },
    #[error("configured logging driver does not support reading")]
    NotReadable { driver: &'static str },
}

impl LogError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogError::NoPath { .. } | LogError::Invalid { .. } => ErrorKind::InvalidParameter,
            LogError::NotReadable { .. } => ErrorKind::NotImplemented,
            LogError::Open { source, .. } | LogError::Read { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Internal,
        }
    }
}

/// The shim's log sink: one of the drivers, fed messages.
pub enum LogWriter {
    None,
    JsonFile(jsonfile::Writer),
    Local(local::Writer),
    Syslog(syslog::Writer),
}

impl LogWriter {
    /// Opens the driver (creates the log file, connects to syslog).
    pub fn open(config: &LogConfig) -> Result<LogWriter, LogError> {
        config.validate()?;
        Ok(match config.driver {
            LogDriver::None => LogWriter::None,
            LogDriver::JsonFile => LogWriter::JsonFile(jsonfile::Writer::open(config)?),
            LogDriver::Local => LogWriter::Local(local::Writer::open(config)?),
            LogDriver::Syslog => LogWriter::Syslog(syslog::Writer::open(&config.syslog)?),
        })
    }

    pub fn log(&mut self, msg: &Message<'_>) -> Result<(), LogError> {
        match self {
            LogWriter::None => Ok(()),
            LogWriter::JsonFile(w) => w.log(msg),
            LogWriter::Local(w) => w.log(msg),
            LogWriter::Syslog(w) => w.log(msg),
        }
    }
}
