//! OCI seccomp section → BPF program, compiled in the parent process.
//!
//! We build the filter with libseccomp (through the `libseccomp` crate) rather
//! than seccompiler: the OCI model gives every rule its own action (ERRNO with
//! its own errno, TRACE, NOTIFY, KILL_PROCESS, …), lets rules compare
//! arguments with masked equality, and asks for several architectures in one
//! filter (x86_64 + x86 + x32, aarch64 + arm); libseccomp does all of that and
//! resolves syscall names per architecture, seccompiler does not.
//!
//! Compiling allocates and calls into libseccomp, so it happens before the
//! container's init is forked; the init only hands the finished instructions
//! to the kernel (see [`crate::load`]).

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::Arch;
use crate::bpf;

/// The kernel refuses filters longer than this (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// Linux syscalls take at most six arguments.
const MAX_ARGS: usize = 6;

/// Errors from [`compile`], each naming the field of `linux.seccomp` at fault.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    #[error("{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite { field: String },
    #[error("{field}: {value} is out of range (0 to 65535)")]
    ErrnoRange { field: String, value: u32 },
    #[error("{field}: argument index {index} is out of range (0 to 5)")]
    ArgIndex { field: String, index: usize },
    #[error("{field}: adding architecture {arch} to the filter: {source}")]
    AddArch {
        field: String,
        arch: Arch,
        source: libseccomp::error::SeccompError,
    },
    #[error("{field}: adding the rule for syscall {name:?}: {source}")]
    AddRule {
        field: String,
        name: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: {stage}: {source}")]
    Libseccomp {
        stage: &'static str,
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: exporting the filter: {source}")]
    Export { source: std::io::Error },
    #[error(
        "linux.seccomp: SCMP_ACT_NOTIFY needs libseccomp API level 6 or more, this one has {level} (libseccomp 2.5 and Linux 5.7 or newer)"
    )]
    NotifyUnsupported { level: u32 },
    #[error(
        "linux.seccomp: the filter has {len} instructions, more than the kernel's {MAX_INSTRUCTIONS}"
    )]
    TooLong { len: usize },
    #[error("linux.seccomp: libseccomp exported {len} bytes, not a whole number of instructions")]
    Truncated { len: usize },
}

/// A compiled filter: the BPF instructions and the `SECCOMP_FILTER_FLAG_*`
/// bits to pass to `seccomp(2)`. Plain data, ready for [`crate::load`] in a
/// forked child, and serialisable for the cache.
#[derive(Clone)]
pub struct Program {
    pub(crate) filter: Vec<libc::sock_filter>,
    pub(crate) flags: u32,
}

impl Program {
    /// The BPF instructions.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.filter
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits [`crate::load`] passes to the kernel.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether a rule uses `SCMP_ACT_NOTIFY`: then loading returns a listener
    /// fd that the runtime must send to `linux.seccomp.listenerPath`.
    pub fn needs_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 != 0
    }

    const MAGIC: &'static [u8; 8] = b"BSECCMP1";

    /// A self-describing byte form: magic, flags, then the instructions in
    /// host byte order. Only meant to be read back on the same host.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.filter.len() * 8);
        out.extend_from_slice(Self::MAGIC);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        for insn in &self.filter {
            out.extend_from_slice(&insn_to_bytes(insn));
        }
        out
    }

    /// Reads [`Program::to_bytes`] output; `None` if it is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Program> {
        let rest = bytes.strip_prefix(Self::MAGIC.as_slice())?;
        let (flags, insns) = rest.split_first_chunk::<4>()?;
        if insns.len() % 8 != 0 || insns.is_empty() || insns.len() / 8 > MAX_INSTRUCTIONS {
            return None;
        }
        let filter = insns.chunks_exact(8).map(insn_from_bytes).collect();
        Some(Program {
            filter,
            flags: u32::from_ne_bytes(*flags),
        })
    }
}

impl PartialEq for Program {
    fn eq(&self, other: &Self) -> bool {
        self.flags == other.flags
            && self.filter.len() == other.filter.len()
            && self
                .filter
                .iter()
                .zip(&other.filter)
                .all(|(a, b)| insn_to_bytes(a) == insn_to_bytes(b))
    }
}

impl Eq for Program {}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("instructions", &self.filter.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .finish()
    }
}

fn insn_to_bytes(insn: &libc::sock_filter) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&insn.code.to_ne_bytes());
    b[2] = insn.jt;
    b[3] = insn.jf;
    b[4..8].copy_from_slice(&insn.k.to_ne_bytes());
    b
}

fn insn_from_bytes(b: &[u8]) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::from_ne_bytes([b[0], b[1]]),
        jt: b[2],
        jf: b[3],
        k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
    }
}

/// Compiles an OCI seccomp section into a BPF program.
///
/// Follows runc where the spec leaves room:
/// - `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`; ERRNO and TRACE without
///   `errnoRet` use EPERM (1).
/// - A syscall name libseccomp does not know is skipped (an older libseccomp
///   or a profile written for a newer kernel), with a debug log.
/// - A rule whose action equals the default action is skipped: it would not
///   change the filter, and libseccomp refuses it.
/// - Conditions of one rule are ANDed; rules for the same syscall are ORed.
///   When one rule has two conditions on the same argument, libseccomp cannot
///   AND them, and each condition becomes a rule of its own (ORed), as runc
///   does.
/// - The native architecture is always in the filter; the listed ones are
///   added to it. A syscall made from another architecture gets
///   `SCMP_ACT_KILL_THREAD`.
///
/// When the default action denies (anything but ALLOW, LOG or TRACE), a
/// syscall whose number is above every number the profile names on that
/// architecture gets ENOSYS instead of the default action, as runc does:
/// a syscall newer than the profile then looks absent, and libc falls back
/// to the older one (fchmodat2 → fchmodat, clone3 → clone).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, CompileError> {
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == ScmpAction::Notify {
        return Err(CompileError::NotifyDefault);
    }
    let rules: &[LinuxSyscall] = seccomp.syscalls().as_deref().unwrap_or_default();

    let mut ctx = ScmpFilterContext::new(default).map_err(|source| CompileError::Libseccomp {
        stage: "creating the filter",
        source,
    })?;

    let mut arches = vec![Arch::native()];
    for (i, oci) in seccomp.architectures().iter().flatten().enumerate() {
        let arch = Arch::from_oci(*oci);
        if arches.contains(&arch) {
            continue;
        }
        ctx.add_arch(arch.scmp())
            .map_err(|source| CompileError::AddArch {
                field: format!("linux.seccomp.architectures[{i}]"),
                arch,
                source,
            })?;
        arches.push(arch);
    }

    // libseccomp's binary-tree layout makes long filters cheaper to run;
    // libseccomp 2.5 misbehaves with it on a filter without rules, and it only
    // pays off on long ones (runc uses the same threshold).
    if rules.len() > 32 {
        // Not fatal: an older libseccomp just builds the linear layout.
        let _ = ctx.set_ctl_optimize(2);
    }

    let mut notify = false;
    let mut known: Vec<&str> = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = || format!("linux.seccomp.syscalls[{i}]");
        let act = action(
            rule.action(),
            rule.errno_ret(),
            &format!("{}.errnoRet", field()),
        )?;
        if act == ScmpAction::Notify {
            check_notify_supported()?;
            if rule.names().iter().any(|n| n == "write") {
                return Err(CompileError::NotifyWrite {
                    field: format!("{}.names", field()),
                });
            }
        }
        let args = rule.args().as_deref().unwrap_or_default();
        let conditions = conditions(args, &field)?;
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                tracing::debug!(syscall = %name, "unknown seccomp syscall ignored");
                continue;
            };
            known.push(name);
            if act == default {
                continue;
            }
            notify |= act == ScmpAction::Notify;
            add_rule(&mut ctx, act, syscall, args, &conditions).map_err(|source| {
                CompileError::AddRule {
                    field: field(),
                    name: name.clone(),
                    source,
                }
            })?;
        }
    }

    let mut filter = Vec::new();
    if !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) {
        filter = bpf::enosys_prefix(&arches, &known);
    }
    filter.extend(export(&ctx)?);
    if filter.len() > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLong { len: filter.len() });
    }

    let mut flags = 0u32;
    for flag in seccomp.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // The kernel refuses it without a listener; it only means
            // something for SCMP_ACT_NOTIFY.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        } as u32;
    }
    if notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
    }
    Ok(Program { filter, flags })
}

/// OCI action + errnoRet → libseccomp action.
fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction, CompileError> {
    let data = || -> Result<u16, CompileError> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(value) => u16::try_from(value).map_err(|_| CompileError::ErrnoRange {
                field: field.to_owned(),
                value,
            }),
        }
    };
    Ok(match act {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn check_notify_supported() -> Result<(), CompileError> {
    let level = libseccomp::get_api();
    if level < 6 {
        return Err(CompileError::NotifyUnsupported { level });
    }
    Ok(())
}

/// The libseccomp comparisons for one rule's `args`.
fn conditions(
    args: &[LinuxSeccompArg],
    field: &dyn Fn() -> String,
) -> Result<Vec<ScmpArgCompare>, CompileError> {
    args.iter()
        .enumerate()
        .map(|(j, arg)| {
            let index = arg.index();
            if index >= MAX_ARGS {
                return Err(CompileError::ArgIndex {
                    field: format!("{}.args[{j}].index", field()),
                    index,
                });
            }
            let value = arg.value();
            let (op, datum) = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
                LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
                LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
                LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
                LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
                LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
                // OCI: `(arg & value) == valueTwo`.
                LinuxSeccompOperator::ScmpCmpMaskedEq => (
                    ScmpCompareOp::MaskedEqual(value),
                    arg.value_two().unwrap_or(0),
                ),
            };
            Ok(ScmpArgCompare::new(index as u32, op, datum))
        })
        .collect()
}

/// Adds one OCI rule's conditions for one syscall: ANDed in one libseccomp
/// rule, or, when two conditions test the same argument (which libseccomp
/// cannot AND), one rule per condition.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    syscall: ScmpSyscall,
    args: &[LinuxSeccompArg],
    conditions: &[ScmpArgCompare],
) -> Result<(), libseccomp::error::SeccompError> {
    let mut seen = [false; MAX_ARGS];
    let repeats_an_arg = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    if repeats_an_arg {
        for c in conditions {
            ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))?;
        }
    } else {
        ctx.add_rule_conditional(act, syscall, conditions)?;
    }
    Ok(())
}

/// Exports the filter's BPF into memory. libseccomp 2.5 can only write it to
/// a file descriptor, so it goes through a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, CompileError> {
    let export_err = |source| CompileError::Export { source };
    // SAFETY: memfd_create with a static name and MFD_CLOEXEC; the fd is
    // owned below.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(export_err(std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(|source| CompileError::Libseccomp {
            stage: "exporting the filter",
            source,
        })?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(export_err)?;
    file.read_to_end(&mut bytes).map_err(export_err)?;
    if bytes.len() % 8 != 0 {
        return Err(CompileError::Truncated { len: bytes.len() });
    }
    Ok(bytes.chunks_exact(8).map(insn_from_bytes).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    use crate::testutil::{MISSING, Outcome, results, run_filtered, sys};
    use nix::sys::signal::Signal;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(value).expect("valid OCI seccomp section")
    }

    fn program(value: serde_json::Value) -> Program {
        compile(&spec(value)).expect("compiles")
    }

    #[test]
    fn errno_rule_fails_with_its_errno_and_eperm_without_one() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC},
                {"names": ["chdir"], "action": "SCMP_ACT_ERRNO"},
            ]
        }));
        let r = results(&p, || {
            [
                sys!(libc::SYS_mkdir, MISSING.as_ptr(), 0o755),
                sys!(libc::SYS_chdir, MISSING.as_ptr()),
                // Not in the profile: the kernel answers.
                sys!(libc::SYS_rmdir, MISSING.as_ptr()),
            ]
        });
        assert_eq!(r, [libc::ENOSPC, libc::EPERM, libc::ENOENT]);
    }

    #[test]
    fn default_errno_ret_is_honoured() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EOPNOTSUPP,
            "syscalls": [
                {"names": ["write", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW"},
            ]
        }));
        let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
        let r = results(&p, || {
            [
                sys!(libc::SYS_uname, uts.as_mut_ptr()),
                sys!(libc::SYS_getppid),
            ]
        });
        assert_eq!(r, [libc::EOPNOTSUPP, libc::EOPNOTSUPP]);
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        // exit_group is the highest number named; anything above is "newer".
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["write", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW"},
            ]
        }));
        let r = results(&p, || {
            [sys!(libc::SYS_getppid), sys!(libc::SYS_getrandom, 0, 0, 0)]
        });
        #[cfg(target_arch = "x86_64")]
        assert_eq!(r, [libc::EPERM, libc::ENOSYS]);
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn an_allow_all_profile_gets_no_enosys_prefix() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }));
        let r = results(&p, || [sys!(libc::SYS_getrandom, 0, 0, 0)]);
        assert_eq!(r, [0]);
    }

    #[test]
    fn kill_actions_kill_with_sigsys() {
        // In a single-threaded child, killing the thread ends the process.
        for action in [
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL",
        ] {
            let p = program(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["uname"], "action": action}]
            }));
            let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
            let (outcome, reported) =
                run_filtered(&p, |_| [sys!(libc::SYS_uname, uts.as_mut_ptr())]);
            assert_eq!(outcome, Outcome::Signaled(Signal::SIGSYS), "{action}");
            assert!(reported.is_empty());
        }
    }

    #[test]
    fn loading_without_no_new_privs_or_cap_sys_admin_is_refused() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        }));
        // SAFETY: the child makes raw syscalls and leaves with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // Root gives up every capability by becoming nobody; a
                // non-root test run has none to give up.
                unsafe { libc::setresuid(65534, 65534, 65534) };
                let code = match crate::load(&p) {
                    Err(crate::LoadError::NeedsNoNewPrivs) => 0,
                    Err(_) => 2,
                    Ok(_) => 3,
                };
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn trap_sends_sigsys() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_TRAP"}]
        }));
        let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
        let (outcome, _) = run_filtered(&p, |_| [sys!(libc::SYS_uname, uts.as_mut_ptr())]);
        assert_eq!(outcome, Outcome::Signaled(Signal::SIGSYS));
    }

    #[test]
    fn conditions_of_one_rule_are_anded() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["getpriority"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::ENOSPC,
                "args": [
                    {"index": 0, "value": libc::PRIO_PROCESS, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 999_999, "op": "SCMP_CMP_EQ"},
                ]
            }]
        }));
        let r = results(&p, || {
            [
                sys!(libc::SYS_getpriority, libc::PRIO_PROCESS, 999_999),
                sys!(libc::SYS_getpriority, libc::PRIO_PROCESS, 0),
                sys!(libc::SYS_getpriority, libc::PRIO_PGRP, 999_999),
            ]
        });
        assert_eq!(r, [libc::ENOSPC, 0, libc::ESRCH]);
    }

    #[test]
    fn rules_for_one_syscall_are_ored_and_same_argument_conditions_split() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["getpriority"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": libc::ENOSPC,
                    // Two conditions on argument 0: runc's rule, one rule each.
                    "args": [
                        {"index": 0, "value": 5, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 6, "op": "SCMP_CMP_EQ"},
                    ]
                },
                {
                    "names": ["getpriority"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": libc::EDOM,
                    "args": [{"index": 0, "value": 0xf0, "valueTwo": 0x20, "op": "SCMP_CMP_MASKED_EQ"}]
                },
            ]
        }));
        let r = results(&p, || {
            [
                sys!(libc::SYS_getpriority, 5, 0),
                sys!(libc::SYS_getpriority, 6, 0),
                sys!(libc::SYS_getpriority, 7, 0),
                sys!(libc::SYS_getpriority, 0x2f, 0),
                sys!(libc::SYS_getpriority, 0x3f, 0),
            ]
        });
        assert_eq!(
            r,
            [
                libc::ENOSPC,
                libc::ENOSPC,
                libc::EINVAL,
                libc::EDOM,
                libc::EINVAL
            ]
        );
    }

    #[test]
    fn comparison_operators() {
        let rule = |op: &str, value: u64| {
            json!({
                "names": ["getpriority"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::ENOSPC,
                "args": [{"index": 0, "value": value, "op": op}]
            })
        };
        for (op, value, denied) in [
            ("SCMP_CMP_NE", 10, [true, false, true]),
            ("SCMP_CMP_LT", 10, [true, false, false]),
            ("SCMP_CMP_LE", 10, [true, true, false]),
            ("SCMP_CMP_GE", 10, [false, true, true]),
            ("SCMP_CMP_GT", 10, [false, false, true]),
        ] {
            let p =
                program(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(op, value)]}));
            let r = results(&p, || {
                [
                    sys!(libc::SYS_getpriority, 9, 0),
                    sys!(libc::SYS_getpriority, 10, 0),
                    sys!(libc::SYS_getpriority, 11, 0),
                ]
            });
            let expected: Vec<i32> = denied
                .iter()
                .map(|d| if *d { libc::ENOSPC } else { libc::EINVAL })
                .collect();
            assert_eq!(r, expected, "{op} {value}");
        }
    }

    #[test]
    fn unknown_names_and_rules_equal_to_the_default_are_skipped() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["no_such_syscall", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            ]
        }));
        let r = results(&p, || [sys!(libc::SYS_mkdir, MISSING.as_ptr(), 0o755)]);
        assert_eq!(r, [libc::EPERM]);
    }

    #[test]
    fn notify_returns_a_listener() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        assert!(p.needs_listener());
        let (outcome, r) = run_filtered(&p, |listener| {
            let Some(fd) = listener else { return [-1] };
            // A listener knows no notification with id 0.
            let id: u64 = 0;
            // SAFETY: ioctl on the listener with a pointer to a local.
            let ret = unsafe {
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &id)
            };
            [crate::testutil::errno_of(ret as libc::c_long)]
        });
        assert_eq!(outcome, Outcome::Exited(0));
        assert_eq!(r, [libc::ENOENT]);
    }

    #[test]
    fn wait_killable_recv_is_kept_only_with_a_listener() {
        let flags = json!([
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            "SECCOMP_FILTER_FLAG_LOG"
        ]);
        let plain = program(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
        assert_eq!(plain.flags(), libc::SECCOMP_FILTER_FLAG_LOG as u32);
        let notify = program(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
        assert_eq!(
            notify.flags(),
            (libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                | libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER) as u32
        );
        let r = results(&plain, || [sys!(libc::SYS_mkdir, MISSING.as_ptr(), 0o755)]);
        assert_eq!(r, [libc::EPERM]);
    }

    #[test]
    fn tsync_flag_loads() {
        let p = program(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
        let r = results(&p, || [sys!(libc::SYS_mkdir, MISSING.as_ptr(), 0o755)]);
        assert_eq!(r, [libc::EPERM]);
    }

    /// `int 0x80` from a 64-bit process is an i386 syscall: the filter sees
    /// AUDIT_ARCH_I386 and i386 numbers.
    #[cfg(target_arch = "x86_64")]
    fn i386_getppid() -> i32 {
        const I386_GETPPID: i64 = 64;
        let ret: i64;
        // SAFETY: an i386 getppid, which takes no argument.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("rax") I386_GETPPID => ret, options(nostack));
        }
        if ret < 0 { -ret as i32 } else { 0 }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn listed_architectures_are_filtered_and_others_are_killed() {
        if !std::path::Path::new("/proc/sys/abi/vsyscall32").exists() {
            eprintln!("no ia32 emulation on this kernel: nothing to check");
            return;
        }
        let rule =
            json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC});
        let multi = program(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [rule]
        }));
        assert_eq!(results(&multi, || [i386_getppid()]), [libc::ENOSPC]);
        let native_only = program(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}));
        let (outcome, _) = run_filtered(&native_only, |_| [i386_getppid()]);
        assert_eq!(outcome, Outcome::Signaled(Signal::SIGSYS));
    }

    #[test]
    fn refuses_what_cannot_work() {
        let err = |value| compile(&spec(value)).unwrap_err().to_string();
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"},
                             {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]})),
            "linux.seccomp.syscalls[1].names: SCMP_ACT_NOTIFY cannot be used for the write syscall"
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]})),
            "linux.seccomp.syscalls[0].errnoRet: 70000 is out of range (0 to 65535)"
        );
        assert_eq!(
            err(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})),
            "linux.seccomp.syscalls[0].args[0].index: argument index 6 is out of range (0 to 5)"
        );
    }

    #[test]
    fn program_bytes_round_trip() {
        let p = program(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        }));
        let bytes = p.to_bytes();
        assert_eq!(Program::from_bytes(&bytes), Some(p.clone()));
        assert_eq!(Program::from_bytes(&bytes[..bytes.len() - 3]), None);
        assert_eq!(Program::from_bytes(b"BSECCMP1\0\0\0\0"), None);
        assert_eq!(Program::from_bytes(b"nonsense"), None);
    }
}
