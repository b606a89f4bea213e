//! The record a container leaves in the state directory, and its status.
//!
//! `<root>/<id>/state.json` is written atomically. The status is not stored:
//! it is derived each time from the init process (alive? still waiting on the
//! exec fifo?) and the freezer, so a crash can never leave a stale status.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A container's life, as the OCI runtime spec names the states, plus
/// `Paused` (runc's addition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still running (or died half way: see [`Record::creator_pid`]).
    Creating,
    /// Init is set up and waits for `start`.
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_delete(self) -> bool {
        self == Status::Stopped
    }
    pub fn can_pause(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
    pub fn can_exec(self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("container {id} already exists")]
    Exists { id: String },
    #[error("invalid container id {id:?}: use letters, digits, '_', '-', '.' (at most 1024)")]
    InvalidId { id: String },
    #[error("read state of {id}: {source}")]
    Read { id: String, source: std::io::Error },
    #[error("state of {id} is corrupt: {source}")]
    Corrupt { id: String, source: serde_json::Error },
    #[error("write state of {id}: {source}")]
    Write { id: String, source: berth_sys::fs::FsError },
    #[error("create state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Host pid of the container's init; 0 while creating.
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot) so a reused pid is not
    /// mistaken for our init.
    #[serde(default)]
    pub pid_start_time: u64,
    /// Pid of the `create` that is making this container, while it does.
    #[serde(default)]
    pub creator_pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup, with the directories create made (and
    /// delete removes); None until it exists.
    #[serde(default)]
    pub cgroup: Option<berth_cgroups::Cgroup>,
}

/// Checks that `id` is safe as a directory name and a cgroup name.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok { Ok(()) } else { Err(StateError::InvalidId { id: id.to_owned() }) }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// The state directory of one container: `<root>/<id>`.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub id: String,
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> Result<StateDir, StateError> {
        validate_id(id)?;
        Ok(StateDir { id: id.to_owned(), dir: root.join(id) })
    }

    /// Claim the id: creating the directory is the atomic step.
    pub fn create(&self) -> Result<(), StateError> {
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| StateError::CreateDir { path: parent.to_owned(), source })?;
        }
        match std::fs::create_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StateError::Exists { id: self.id.clone() }),
            Err(source) => Err(StateError::CreateDir { path: self.dir.clone(), source }),
        }
    }

    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    pub fn load(&self) -> Result<Record, StateError> {
        let data = std::fs::read(self.state_file()).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound && !self.exists() {
                StateError::NotFound { id: self.id.clone() }
            } else {
                StateError::Read { id: self.id.clone(), source }
            }
        })?;
        serde_json::from_slice(&data).map_err(|source| StateError::Corrupt { id: self.id.clone(), source })
    }

    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let data = serde_json::to_vec(record).expect("state record serializes");
        berth_sys::fs::write_replace(&self.state_file(), &data)
            .map_err(|source| StateError::Write { id: self.id.clone(), source })
    }

    /// Save the spec the container was created from: the bundle may change
    /// or vanish, but exec, kill and delete need the original.
    pub fn save_config(&self, config: &[u8]) -> Result<(), StateError> {
        berth_sys::fs::write_replace(&self.config_file(), config)
            .map_err(|source| StateError::Write { id: self.id.clone(), source })
    }

    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub ppid: i32,
    pub start_time: u64,
}

/// Parse `/proc/<pid>/stat` text (the command name may hold spaces and ')').
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After the name: state is field 3, ppid 4, starttime 22 (1-based) → 0, 1, 19.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&text)
}

/// Whether `pid` is still the process recorded (alive, not a zombie, and
/// started when the record says).
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some(s) => s.state != 'Z' && s.state != 'X' && (start_time == 0 || s.start_time == start_time),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_predicates_follow_the_lifecycle() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(Status::Stopped.can_delete());
        assert!(!Status::Running.can_delete());
        assert!(Status::Paused.can_resume() && !Status::Paused.can_pause());
        assert!(!Status::Stopped.can_kill());
        assert_eq!(serde_json::to_string(&Status::Created).unwrap(), "\"created\"");
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("abc-1_2.x").is_ok());
        for bad in ["", "..", "a/b", "a b", "ü"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proc_stat_parses_names_with_parens() {
        let text = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_proc_stat(text).unwrap();
        assert_eq!(s, ProcStat { state: 'S', ppid: 1, start_time: 987654 });
    }

    #[test]
    fn record_round_trips_and_missing_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::new(dir.path(), "c1").unwrap();
        assert!(matches!(sd.load(), Err(StateError::NotFound { .. })));
        sd.create().unwrap();
        assert!(matches!(sd.create(), Err(StateError::Exists { .. })));
        let rec = Record {
            id: "c1".into(),
            pid: 42,
            pid_start_time: 7,
            creator_pid: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroup: None,
        };
        sd.save(&rec).unwrap();
        assert_eq!(sd.load().unwrap().pid, 42);
    }
}
