//! HEALTHCHECK: run the test command in the container every interval,
//! keep the last five results, and turn the streak into docker's
//! `starting` / `healthy` / `unhealthy`.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::HealthConfig;

use super::state::{HealthEntry, Status};
use super::store::Container;
use crate::Daemon;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Output kept per check, as docker.
const MAX_OUTPUT: usize = 4096;

/// The command a test runs: `CMD` args as is, `CMD-SHELL` through `/bin/sh -c`.
pub fn test_command(h: &HealthConfig) -> Option<Vec<String>> {
    let test = h.test.as_ref()?;
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()).filter(|v| !v.is_empty()),
        Some("CMD-SHELL") => Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")]),
        Some("NONE") | None => None,
        // A bare list is CMD-SHELL in docker's older form.
        Some(_) => Some(vec!["/bin/sh".into(), "-c".into(), test.join(" ")]),
    }
}

fn duration(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// What a result does to the status: (new status, new failing streak).
pub fn next_status(current: &str, streak: i64, exit_code: i64, retries: i64, in_start_period: bool) -> (String, i64) {
    if exit_code == 0 {
        return ("healthy".into(), 0);
    }
    if in_start_period && current != "healthy" {
        // Failures during the start period don't count.
        return (current.to_owned(), streak);
    }
    let streak = streak + 1;
    if streak >= retries { ("unhealthy".into(), streak) } else { (current.to_owned(), streak) }
}

/// Start the checker for this run of `c` (no-op without a healthcheck).
pub fn spawn(d: Arc<Daemon>, c: &Container) {
    let Some(h) = c.config.healthcheck.clone() else { return };
    let Some(cmd) = test_command(&h) else { return };
    let (id, run) = (c.id.clone(), c.run);
    let interval = duration(h.interval, DEFAULT_INTERVAL);
    let timeout = duration(h.timeout, DEFAULT_TIMEOUT);
    let start_period = duration(h.start_period, Duration::ZERO);
    let start_interval = duration(h.start_interval, interval);
    let retries = h.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        loop {
            let in_start = started.elapsed() < start_period;
            tokio::time::sleep(if in_start { start_interval } else { interval }).await;
            let Ok(handle) = d.container(&id) else { return };
            {
                let c = handle.lock().await;
                if c.run != run || c.state.status != Status::Running {
                    return;
                }
            }
            let begin = berth_image::model::now_rfc3339();
            let (code, mut output) = match crate::shim::exec_capture(&d, &id, &cmd, timeout).await {
                Ok(r) => r,
                Err(e) => (-1, e.message),
            };
            if output.len() > MAX_OUTPUT {
                output.truncate(MAX_OUTPUT);
            }
            let mut c = handle.lock().await;
            if c.run != run || c.state.status != Status::Running {
                return;
            }
            let before = c.state.health.clone();
            let in_start = started.elapsed() < start_period;
            let (status, streak) = next_status(&c.state.health, c.state.failing_streak, code, retries, in_start);
            c.state.health = status;
            c.state.failing_streak = streak;
            c.state.health_log.push(HealthEntry { start: begin, end: berth_image::model::now_rfc3339(), exit_code: code, output });
            let excess = c.state.health_log.len().saturating_sub(5);
            c.state.health_log.drain(..excess);
            let _ = d.containers.save_state(&c);
            if c.state.health != before {
                d.events.container(&c.id, &format!("health_status: {}", c.state.health), &[("name", &c.name)]);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_forms_and_status_transitions() {
        let h = |t: &[&str]| HealthConfig { test: Some(t.iter().map(|s| s.to_string()).collect()), ..Default::default() };
        assert_eq!(test_command(&h(&["CMD", "true"])).unwrap(), ["true"]);
        assert_eq!(test_command(&h(&["CMD-SHELL", "exit 1"])).unwrap(), ["/bin/sh", "-c", "exit 1"]);
        assert!(test_command(&h(&["NONE"])).is_none());
        assert_eq!(next_status("starting", 0, 0, 3, false), ("healthy".into(), 0));
        assert_eq!(next_status("healthy", 1, 1, 3, false), ("healthy".into(), 2));
        assert_eq!(next_status("healthy", 2, 1, 3, false), ("unhealthy".into(), 3));
        assert_eq!(next_status("starting", 0, 1, 1, true), ("starting".into(), 0));
    }
}
