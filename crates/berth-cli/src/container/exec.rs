//! exec: create the exec, start it hijacked (or detached), stream, and exit
//! with the exec's code from its inspect.

use serde::Serialize;

use super::run::monitor_tty_size;
use super::stream::{Ended, Session};
use super::{ContainerError, ExecArgs, tty};
use crate::app::Ctx;
use crate::client::percent_encode;
use crate::opts;

/// docker's exec create body (field order and zero values as docker sends).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u16; 2]>,
    pub attach_stdin: bool,
    pub attach_stderr: bool,
    pub attach_stdout: bool,
    pub detach: bool,
    pub detach_keys: String,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    pub cmd: Vec<String>,
}

pub fn exec_config(a: &ExecArgs, config_keys: &str, console: (u16, u16)) -> Result<ExecConfig, ContainerError> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(opts::read_kv_file(f, true)?);
    }
    env.extend(a.env.iter().cloned());
    let keys = a.detach_keys.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| config_keys.to_owned());
    if let Some(k) = &a.detach_keys
        && !k.is_empty()
    {
        tty::parse_detach_keys(k)?;
    }
    Ok(ExecConfig {
        user: a.user.clone().unwrap_or_default(),
        privileged: a.privileged,
        tty: a.tty,
        console_size: if a.tty { Some([console.0, console.1]) } else { None },
        attach_stdin: !a.detach && a.interactive,
        attach_stderr: !a.detach,
        attach_stdout: !a.detach,
        detach: false,
        detach_keys: keys,
        env: if env.is_empty() { None } else { Some(env) },
        working_dir: a.workdir.clone().unwrap_or_default(),
        cmd: a.cmdline[1..].to_vec(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExecStart {
    detach: bool,
    tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    console_size: Option<[u16; 2]>,
}

pub async fn exec(ctx: &Ctx, a: &ExecArgs) -> Result<(), ContainerError> {
    let console = if a.tty { tty::size() } else { (0, 0) };
    let cfg = exec_config(a, &ctx.config().detach_keys, console)?;
    let c = ctx.client()?;
    let container = &a.cmdline[0];
    c.docker.inspect_container(container, None::<bollard::query_parameters::InspectContainerOptions>).await.map_err(|e| c.err(e))?;
    if !a.detach && cfg.attach_stdin && cfg.tty && !tty::stdin_is_tty() {
        return Err(ContainerError::NotATty);
    }
    let body = serde_json::to_vec(&cfg).unwrap_or_default();
    let mut resp = c.raw("POST", &format!("/containers/{}/exec", percent_encode(container)), false, Some(&body)).await?;
    let created: serde_json::Value = serde_json::from_slice(&resp.read_to_end().await?).unwrap_or_default();
    let id = created.get("Id").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).ok_or(ContainerError::NoExecId)?.to_owned();
    let console_size = cfg.console_size.filter(|s| s[0] != 0 || s[1] != 0);
    if a.detach {
        let start = serde_json::to_vec(&ExecStart { detach: true, tty: a.tty, console_size }).unwrap_or_default();
        let mut r = c.raw("POST", &format!("/exec/{}/start", percent_encode(&id)), false, Some(&start)).await?;
        r.read_to_end().await?;
        return Ok(());
    }
    let start = serde_json::to_vec(&ExecStart { detach: false, tty: a.tty, console_size }).unwrap_or_default();
    let hijacked = c.raw("POST", &format!("/exec/{}/start", percent_encode(&id)), true, Some(&start)).await?;
    if a.tty && tty::stdin_is_tty() {
        monitor_tty_size(c, &id, true);
    }
    let keys = if cfg.detach_keys.is_empty() { tty::DEFAULT_DETACH.to_vec() } else { tty::parse_detach_keys(&cfg.detach_keys)? };
    let session = Session { tty: a.tty, stdin: cfg.attach_stdin, stdout: true, stderr: true, detach_keys: keys };
    let (r, w) = tokio::io::split(hijacked.into_io());
    if session.run(r, w).await? == Ended::Detached {
        return Ok(());
    }
    let info = c.docker.inspect_exec(&id).await.map_err(|e| c.err(e))?;
    match info.exit_code.unwrap_or(0) {
        0 => Ok(()),
        code => Err(ContainerError::Exit(code as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ExecArgs,
    }

    fn cfg(args: &[&str]) -> ExecConfig {
        let m = crate::cli::pflag_like(T::command()).try_get_matches_from(std::iter::once("exec").chain(args.iter().copied())).unwrap();
        exec_config(&T::from_arg_matches(&m).unwrap().a, "", (0, 0)).unwrap()
    }

    #[test]
    fn the_body_is_what_docker_sends() {
        // Recorded from docker 28.2 for `exec -i -e A=1 -w /tmp -u 1 abc cat`.
        let docker = r#"{"User":"1","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=1"],"WorkingDir":"/tmp","Cmd":["cat"]}"#;
        let c = cfg(&["-i", "-e", "A=1", "-w", "/tmp", "-u", "1", "abc", "cat"]);
        assert_eq!(serde_json::to_string(&c).unwrap(), docker);
        let c = cfg(&["-d", "abc", "sh", "-c", "sleep 1 -x"]);
        assert!(!c.attach_stdout && !c.attach_stdin);
        assert_eq!(c.cmd, vec!["sh", "-c", "sleep 1 -x"]);
    }
}
