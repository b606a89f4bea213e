//! From an OCI `process` section to the plan init executes.

use std::ffi::CString;

use oci_spec::runtime::{PosixRlimitType, Process};

use crate::capabilities::{self, CapSets};
use crate::init::{ProcessPlan, Rlimit};

/// PATH used to find `args[0]` when the process env has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{field}: contains a NUL byte")]
    Nul { field: String },
    #[error("process.args: must hold at least the program to run")]
    NoArgs,
}

fn cstring(s: &str, field: impl FnOnce() -> String) -> Result<CString, ProcessError> {
    CString::new(s).map_err(|_| ProcessError::Nul { field: field() })
}

pub fn rlimit_resource(t: PosixRlimitType) -> (&'static str, libc::c_int) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => ("RLIMIT_CPU", libc::RLIMIT_CPU as _),
        RlimitFsize => ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE as _),
        RlimitData => ("RLIMIT_DATA", libc::RLIMIT_DATA as _),
        RlimitStack => ("RLIMIT_STACK", libc::RLIMIT_STACK as _),
        RlimitCore => ("RLIMIT_CORE", libc::RLIMIT_CORE as _),
        RlimitRss => ("RLIMIT_RSS", libc::RLIMIT_RSS as _),
        RlimitNproc => ("RLIMIT_NPROC", libc::RLIMIT_NPROC as _),
        RlimitNofile => ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE as _),
        RlimitMemlock => ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK as _),
        RlimitAs => ("RLIMIT_AS", libc::RLIMIT_AS as _),
        RlimitLocks => ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS as _),
        RlimitSigpending => ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING as _),
        RlimitMsgqueue => ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE as _),
        RlimitNice => ("RLIMIT_NICE", libc::RLIMIT_NICE as _),
        RlimitRtprio => ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO as _),
        RlimitRttime => ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME as _),
    }
}

/// Build the process plan. `seccomp` is compiled by the caller.
pub fn plan(
    process: &Process,
    preserve_fds: u32,
    stdio: Option<[std::os::fd::RawFd; 3]>,
    seccomp: Option<crate::seccomp::Program>,
) -> Result<ProcessPlan, ProcessError> {
    let args = process.args().as_deref().unwrap_or(&[]);
    if args.is_empty() {
        return Err(ProcessError::NoArgs);
    }
    let args = args
        .iter()
        .enumerate()
        .map(|(i, a)| cstring(a, || format!("process.args[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let env_list = process.env().as_deref().unwrap_or(&[]);
    let env = env_list
        .iter()
        .enumerate()
        .map(|(i, e)| cstring(e, || format!("process.env[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let path_var = env_list
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_owned();
    let user = process.user();
    let rlimits = process
        .rlimits()
        .iter()
        .flatten()
        .map(|r| {
            let (name, resource) = rlimit_resource(r.typ());
            Rlimit { name, resource, soft: r.soft(), hard: r.hard() }
        })
        .collect();
    Ok(ProcessPlan {
        args,
        env,
        path_var,
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        rlimits,
        caps: process.capabilities().as_ref().map(CapSets::from_spec),
        last_cap: capabilities::last_cap(),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        oom_score_adj: process.oom_score_adj(),
        terminal: process.terminal().unwrap_or(false),
        console_size: process.console_size().as_ref().map(|b| (b.height() as u16, b.width() as u16)),
        preserve_fds,
        stdio,
        seccomp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_takes_path_from_env_and_maps_rlimits() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/tmp","args":["sh","-c","x"],"env":["A=1","PATH=/bin"],"user":{"uid":1000,"gid":1000,"additionalGids":[10]},
                "rlimits":[{"type":"RLIMIT_NOFILE","soft":1024,"hard":2048}],"noNewPrivileges":true}"#,
        )
        .unwrap();
        let plan = plan(&p, 0, None, None).unwrap();
        assert_eq!(plan.path_var, "/bin");
        assert_eq!(plan.rlimits, vec![Rlimit { name: "RLIMIT_NOFILE", resource: libc::RLIMIT_NOFILE as _, soft: 1024, hard: 2048 }]);
        assert_eq!((plan.uid, plan.gid, plan.additional_gids.clone()), (1000, 1000, vec![10]));
        assert!(plan.no_new_privileges && plan.caps.is_none());
    }

    #[test]
    fn nul_bytes_name_the_field() {
        let p: Process = serde_json::from_str(r#"{"cwd":"/","args":["sh"],"env":["A=1","B=x\u0000y"],"user":{"uid":0,"gid":0}}"#).unwrap();
        assert_eq!(plan(&p, 0, None, None).unwrap_err().to_string(), "process.env[1]: contains a NUL byte");
    }
}
