//! A container's life as docker describes it, as one enum with predicates,
//! and the record of its last run.

use serde::{Deserialize, Serialize};

/// Docker's container states (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// A process is alive (running or frozen).
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }
    pub fn can_stop(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_unpause(self) -> bool {
        self == Status::Paused
    }
    pub fn can_exec(self) -> bool {
        self == Status::Running
    }
    /// Removable without force.
    pub fn can_remove(self) -> bool {
        matches!(self, Status::Created | Status::Exited | Status::Dead)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `State` of a container record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default = "zero_time")]
    pub started_at: String,
    #[serde(default = "zero_time")]
    pub finished_at: String,
    /// Health check status: "" (none), starting, healthy, unhealthy.
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub failing_streak: i64,
    #[serde(default)]
    pub health_log: Vec<HealthEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// Go's zero time, as docker prints unset timestamps.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn zero_time() -> String {
    ZERO_TIME.to_owned()
}

impl State {
    pub fn created() -> State {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: zero_time(),
            finished_at: zero_time(),
            health: String::new(),
            failing_streak: 0,
            health_log: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_predicates() {
        assert!(Status::Created.can_start() && Status::Exited.can_start());
        assert!(!Status::Running.can_start());
        assert!(Status::Paused.can_stop() && Status::Paused.can_unpause());
        assert!(!Status::Running.can_remove() && Status::Dead.can_remove());
        assert_eq!(serde_json::to_string(&Status::Restarting).unwrap(), "\"restarting\"");
    }
}
