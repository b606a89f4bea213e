//! Restart policies, decided as docker's restart manager does: whether an
//! exit leads to a restart, and after how long.

use std::time::Duration;

use berth_api::models::{RestartPolicy, RestartPolicyNameEnum};

/// First delay before a restart; doubled after each quick failure.
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest delay between restarts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run this long resets the backoff.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// The policy's name, `no` when unset.
pub fn name(p: Option<&RestartPolicy>) -> RestartPolicyNameEnum {
    match p.and_then(|p| p.name) {
        None | Some(RestartPolicyNameEnum::EMPTY) => RestartPolicyNameEnum::NO,
        Some(n) => n,
    }
}

/// What the daemon knows when a container exits.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: i64,
    /// The user stopped or killed it (`docker stop`/`kill`).
    pub manually_stopped: bool,
    /// How many times it was restarted so far.
    pub restart_count: i64,
    /// The daemon is shutting down or starting up.
    pub daemon_starting: bool,
}

/// Whether to restart after this exit.
pub fn should_restart(p: Option<&RestartPolicy>, e: Exit) -> bool {
    match name(p) {
        RestartPolicyNameEnum::ALWAYS => !e.manually_stopped || e.daemon_starting,
        RestartPolicyNameEnum::UNLESS_STOPPED => !e.manually_stopped,
        RestartPolicyNameEnum::ON_FAILURE => {
            let max = p.and_then(|p| p.maximum_retry_count).unwrap_or(0);
            !e.manually_stopped && e.code != 0 && (max == 0 || e.restart_count < max)
        }
        _ => false,
    }
}

/// The delay before the next restart: `previous` doubled (from
/// [`BACKOFF_START`]), capped at [`BACKOFF_MAX`]; back to the start when the
/// last run lasted at least [`RESET_AFTER`].
pub fn next_delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    if ran_for >= RESET_AFTER {
        return BACKOFF_START;
    }
    match previous {
        None => BACKOFF_START,
        Some(d) => (d * 2).min(BACKOFF_MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(n: RestartPolicyNameEnum, max: i64) -> RestartPolicy {
        RestartPolicy { name: Some(n), maximum_retry_count: Some(max) }
    }

    fn exit(code: i64, manual: bool, count: i64) -> Exit {
        Exit { code, manually_stopped: manual, restart_count: count, daemon_starting: false }
    }

    #[test]
    fn policies_follow_docker() {
        use RestartPolicyNameEnum::*;
        assert!(!should_restart(None, exit(1, false, 0)));
        assert!(should_restart(Some(&policy(ALWAYS, 0)), exit(0, false, 5)));
        assert!(!should_restart(Some(&policy(ALWAYS, 0)), exit(0, true, 0)));
        let mut at_start = exit(0, true, 0);
        at_start.daemon_starting = true;
        assert!(should_restart(Some(&policy(ALWAYS, 0)), at_start));
        assert!(!should_restart(Some(&policy(UNLESS_STOPPED, 0)), at_start));
        assert!(should_restart(Some(&policy(ON_FAILURE, 3)), exit(2, false, 2)));
        assert!(!should_restart(Some(&policy(ON_FAILURE, 3)), exit(2, false, 3)));
        assert!(!should_restart(Some(&policy(ON_FAILURE, 0)), exit(0, false, 0)));
        assert!(should_restart(Some(&policy(ON_FAILURE, 0)), exit(1, false, 100)));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let quick = Duration::from_millis(50);
        assert_eq!(next_delay(None, quick), BACKOFF_START);
        assert_eq!(next_delay(Some(BACKOFF_START), quick), Duration::from_millis(200));
        assert_eq!(next_delay(Some(Duration::from_secs(50)), quick), BACKOFF_MAX);
        assert_eq!(next_delay(Some(Duration::from_secs(50)), Duration::from_secs(11)), BACKOFF_START);
    }
}
