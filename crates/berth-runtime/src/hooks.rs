//! OCI hooks: each runs with the container's state as JSON on stdin, with
//! its own args and env, and is killed when its timeout passes.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};
use serde::Serialize;

/// Which hook list is running; names as in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    pub fn list(self, hooks: &Hooks) -> &[Hook] {
        let l = match self {
            Phase::Prestart => hooks.prestart(),
            Phase::CreateRuntime => hooks.create_runtime(),
            Phase::CreateContainer => hooks.create_container(),
            Phase::StartContainer => hooks.start_container(),
            Phase::Poststart => hooks.poststart(),
            Phase::Poststop => hooks.poststop(),
        };
        l.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hooks.{phase}[{index}] {path}: {source}")]
    Spawn { phase: &'static str, index: usize, path: PathBuf, source: std::io::Error },
    #[error("hooks.{phase}[{index}] {path} exited with {status}{stderr}")]
    Failed { phase: &'static str, index: usize, path: PathBuf, status: String, stderr: String },
    #[error("hooks.{phase}[{index}] {path} timed out after {secs}s")]
    Timeout { phase: &'static str, index: usize, path: PathBuf, secs: i64 },
}

/// The state handed to hooks on stdin (runtime-spec `state`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: &'a std::path::Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

/// Run every hook of `phase` in order; stop at the first failure.
pub fn run(hooks: Option<&Hooks>, phase: Phase, state: &HookState<'_>) -> Result<(), HookError> {
    let Some(hooks) = hooks else { return Ok(()) };
    let list = phase.list(hooks);
    if list.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).expect("hook state serializes");
    for (index, hook) in list.iter().enumerate() {
        run_one(hook, phase, index, &json)?;
    }
    Ok(())
}

fn run_one(hook: &Hook, phase: Phase, index: usize, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let spawn_err = |source| HookError::Spawn { phase: phase.name(), index, path: path.clone(), source };
    let mut cmd = Command::new(&path);
    if let Some([argv0, rest @ ..]) = hook.args().as_deref() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::inherit()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let deadline = hook.timeout().filter(|t| *t > 0).map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let status = loop {
        match child.try_wait().map_err(spawn_err)? {
            Some(status) => break status,
            None => {
                if let Some((secs, d)) = deadline
                    && Instant::now() >= d {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(HookError::Timeout { phase: phase.name(), index, path, secs });
                    }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        let stderr = stderr.trim();
        return Err(HookError::Failed {
            phase: phase.name(),
            index,
            path,
            status: status.to_string(),
            stderr: if stderr.is_empty() { String::new() } else { format!(": {stderr}") },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: &str) -> Hooks {
        serde_json::from_str(json).unwrap()
    }

    fn state(bundle: &std::path::Path) -> HookState<'_> {
        HookState { oci_version: "1.0.2", id: "c1", status: "creating", pid: Some(42), bundle, annotations: None }
    }

    #[test]
    fn hooks_get_state_on_stdin_and_their_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hooks(&format!(
            r#"{{"prestart":[{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$FOO\" >> {0}"],"env":["FOO=bar"]}}]}}"#,
            out.display()
        ));
        run(Some(&h), Phase::Prestart, &state(dir.path())).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.contains(r#""id":"c1""#) && got.contains(r#""pid":42"#) && got.ends_with("bar\n"), "{got}");
    }

    #[test]
    fn failing_hook_reports_phase_index_and_stderr() {
        let h = hooks(r#"{"poststop":[{"path":"/bin/true"},{"path":"/bin/sh","args":["sh","-c","echo nope >&2; exit 3"]}]}"#);
        let err = run(Some(&h), Phase::Poststop, &state(std::path::Path::new("/b"))).unwrap_err().to_string();
        assert_eq!(err, "hooks.poststop[1] /bin/sh exited with exit status: 3: nope");
    }

    #[test]
    fn slow_hook_times_out() {
        let h = hooks(r#"{"createRuntime":[{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}]}"#);
        let start = Instant::now();
        let err = run(Some(&h), Phase::CreateRuntime, &state(std::path::Path::new("/b"))).unwrap_err();
        assert!(matches!(err, HookError::Timeout { secs: 1, .. }));
        assert!(start.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn missing_hook_binary_is_a_spawn_error() {
        let h = hooks(r#"{"startContainer":[{"path":"/nonexistent/hook"}]}"#);
        let err = run(Some(&h), Phase::StartContainer, &state(std::path::Path::new("/b"))).unwrap_err().to_string();
        assert!(err.starts_with("hooks.startContainer[0] /nonexistent/hook:"), "{err}");
    }
}
