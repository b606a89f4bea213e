//! Docker's default seccomp profile, as berth's own table.
//!
//! The facts follow moby's profile (moby/profiles seccomp v0.2.x, docker 28
//! and later): deny with EPERM by default; allow about 360 syscalls any
//! process needs; allow more when the container holds the capability that
//! the kernel would check anyway (CAP_SYS_ADMIN: mount, unshare, setns,
//! clone with namespace flags, …); allow the architecture's own syscalls
//! (arch_prctl on x86_64, set_tls on arm, …); restrict `personality` to the
//! harmless personas, `socket` to address families other than AF_ALG (38)
//! and AF_VSOCK (40), and `clone` to calls without namespace flags unless the
//! container holds CAP_SYS_ADMIN; and answer `clone3` with ENOSYS, so that
//! libc falls back to `clone`, whose flags the filter can see.

use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};

use crate::Arch;
use crate::profile::{
    Architectures, Condition, ConditionalRule, DockerProfile, KernelVersion, Target, seccomp_arg,
};

/// Namespace flags that `clone` may not carry without CAP_SYS_ADMIN:
/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

/// One group of the table: syscalls, what happens to them, and when.
struct Group {
    names: &'static [&'static str],
    /// `None`: allow. `Some(errno)`: fail with errno.
    errno: Option<u32>,
    /// `(index, value, valueTwo, op)`, ANDed.
    args: &'static [(usize, u64, u64, LinuxSeccompOperator)],
    /// The container must hold every one of these.
    caps: &'static [&'static str],
    /// The container must run one of these (docker names).
    arches: &'static [&'static str],
    min_kernel: Option<KernelVersion>,
    /// The group does not apply if the container holds any of these.
    unless_caps: &'static [&'static str],
    /// The group does not apply on these architectures.
    unless_arches: &'static [&'static str],
}

const fn allow(names: &'static [&'static str]) -> Group {
    Group {
        names,
        errno: None,
        args: &[],
        caps: &[],
        arches: &[],
        min_kernel: None,
        unless_caps: &[],
        unless_arches: &[],
    }
}

impl Group {
    const fn with_cap(self, cap: &'static [&'static str]) -> Group {
        Group { caps: cap, ..self }
    }
    const fn on(self, arches: &'static [&'static str]) -> Group {
        Group { arches, ..self }
    }
    const fn when(self, args: &'static [(usize, u64, u64, LinuxSeccompOperator)]) -> Group {
        Group { args, ..self }
    }
    const fn errno(self, errno: u32) -> Group {
        Group {
            errno: Some(errno),
            ..self
        }
    }
    const fn since(self, kernel: u32, major: u32) -> Group {
        Group {
            min_kernel: Some(KernelVersion::new(kernel, major)),
            ..self
        }
    }
    const fn unless_cap(self, caps: &'static [&'static str]) -> Group {
        Group {
            unless_caps: caps,
            ..self
        }
    }
    const fn except_on(self, arches: &'static [&'static str]) -> Group {
        Group {
            unless_arches: arches,
            ..self
        }
    }
}

use LinuxSeccompOperator::{
    ScmpCmpEq as EQ, ScmpCmpGt as GT, ScmpCmpLt as LT, ScmpCmpMaskedEq as MASKED_EQ,
};

/// Syscalls every container may make.
const BASE: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

const S390: &[&str] = &["s390", "s390x"];

const GROUPS: &[Group] = &[
    allow(BASE),
    // Before 4.8, seccomp could be bypassed with ptrace.
    allow(&["process_vm_readv", "process_vm_writev", "ptrace"]).since(4, 8),
    // socket(2) for every family but AF_ALG and AF_VSOCK (39 between them
    // is fine). 32-bit x86 reaches socket through socketcall, which the
    // filter cannot inspect.
    allow(&["socket"]).when(&[(0, AF_ALG, 0, LT)]),
    allow(&["socket"]).when(&[(0, AF_ALG + 1, 0, EQ)]),
    allow(&["socket"]).when(&[(0, AF_VSOCK, 0, GT)]),
    // PER_LINUX, PER_LINUX32, with UNAME26, and the query value.
    allow(&["personality"]).when(&[(0, 0x0, 0, EQ)]),
    allow(&["personality"]).when(&[(0, 0x0008, 0, EQ)]),
    allow(&["personality"]).when(&[(0, 0x20000, 0, EQ)]),
    allow(&["personality"]).when(&[(0, 0x20008, 0, EQ)]),
    allow(&["personality"]).when(&[(0, 0xffff_ffff, 0, EQ)]),
    allow(&["sync_file_range2", "swapcontext"]).on(&["ppc64le"]),
    allow(&[
        "arm_fadvise64_64",
        "arm_sync_file_range",
        "sync_file_range2",
        "breakpoint",
        "cacheflush",
        "set_tls",
    ])
    .on(&["arm", "arm64"]),
    allow(&["arch_prctl"]).on(&["amd64", "x32"]),
    allow(&["modify_ldt"]).on(&["amd64", "x32", "x86"]),
    allow(&[
        "s390_pci_mmio_read",
        "s390_pci_mmio_write",
        "s390_runtime_instr",
    ])
    .on(S390),
    allow(&["riscv_flush_icache"]).on(&["riscv64"]),
    allow(&["open_by_handle_at"]).with_cap(&["CAP_DAC_READ_SEARCH"]),
    allow(&[
        "bpf",
        "clone",
        "clone3",
        "fanotify_init",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "lookup_dcookie",
        "lsm_get_self_attr",
        "lsm_list_modules",
        "lsm_set_self_attr",
        "mount",
        "mount_setattr",
        "move_mount",
        "open_tree",
        "perf_event_open",
        "quotactl",
        "quotactl_fd",
        "setdomainname",
        "sethostname",
        "setns",
        "syslog",
        "umount",
        "umount2",
        "unshare",
    ])
    .with_cap(&["CAP_SYS_ADMIN"]),
    // Without CAP_SYS_ADMIN, clone only without namespace flags. The flags
    // are clone's first argument, except on s390 where they are the second.
    allow(&["clone"])
        .when(&[(0, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)])
        .unless_cap(&["CAP_SYS_ADMIN"])
        .except_on(S390),
    allow(&["clone"])
        .when(&[(1, CLONE_NAMESPACE_FLAGS, 0, MASKED_EQ)])
        .on(S390)
        .unless_cap(&["CAP_SYS_ADMIN"]),
    // clone3 passes its flags in memory the filter cannot read: ENOSYS
    // makes libc fall back to clone.
    allow(&["clone3"]).errno(38).unless_cap(&["CAP_SYS_ADMIN"]),
    allow(&["reboot"]).with_cap(&["CAP_SYS_BOOT"]),
    allow(&["chroot"]).with_cap(&["CAP_SYS_CHROOT"]),
    allow(&["delete_module", "init_module", "finit_module"]).with_cap(&["CAP_SYS_MODULE"]),
    allow(&["acct"]).with_cap(&["CAP_SYS_PACCT"]),
    allow(&[
        "kcmp",
        "pidfd_getfd",
        "process_madvise",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
    ])
    .with_cap(&["CAP_SYS_PTRACE"]),
    allow(&["iopl", "ioperm"]).with_cap(&["CAP_SYS_RAWIO"]),
    allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"])
        .with_cap(&["CAP_SYS_TIME"]),
    allow(&["vhangup"]).with_cap(&["CAP_SYS_TTY_CONFIG"]),
    allow(&[
        "get_mempolicy",
        "mbind",
        "set_mempolicy",
        "set_mempolicy_home_node",
    ])
    .with_cap(&["CAP_SYS_NICE"]),
    allow(&["syslog"]).with_cap(&["CAP_SYSLOG"]),
    allow(&["bpf"]).with_cap(&["CAP_BPF"]),
    allow(&["perf_event_open"]).with_cap(&["CAP_PERFMON"]),
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Group {
    fn to_rule(&self) -> ConditionalRule {
        let mut rule = LinuxSyscall::default();
        rule.set_names(strings(self.names));
        match self.errno {
            None => rule.set_action(LinuxSeccompAction::ScmpActAllow),
            Some(errno) => {
                rule.set_action(LinuxSeccompAction::ScmpActErrno);
                rule.set_errno_ret(Some(errno))
            }
        };
        if !self.args.is_empty() {
            let args = self
                .args
                .iter()
                .map(|&(index, value, value_two, op)| seccomp_arg(index, value, value_two, op))
                .collect();
            rule.set_args(Some(args));
        }
        ConditionalRule {
            rule,
            includes: Condition {
                caps: strings(self.caps),
                arches: strings(self.arches),
                min_kernel: self.min_kernel,
            },
            excludes: Condition {
                caps: strings(self.unless_caps),
                arches: strings(self.unless_arches),
                min_kernel: None,
            },
        }
    }
}

impl DockerProfile {
    /// Docker's default profile, unresolved.
    pub fn docker_default() -> DockerProfile {
        DockerProfile {
            default_action: Some(LinuxSeccompAction::ScmpActErrno),
            default_errno_ret: Some(libc::EPERM as u32),
            architectures: Architectures::Map(
                Arch::all()
                    .filter_map(|a| Some((a, a.docker_arch_map_entry()?.to_vec())))
                    .collect(),
            ),
            flags: Vec::new(),
            listener_path: None,
            listener_metadata: None,
            rules: GROUPS.iter().map(Group::to_rule).collect(),
        }
    }
}

/// Docker's default profile resolved for a container holding `caps`
/// (bounding-set names such as `CAP_SYS_ADMIN`) on `arch`, on this host's
/// kernel.
pub fn docker_default(caps: &[String], arch: Arch) -> oci_spec::runtime::LinuxSeccomp {
    DockerProfile::docker_default()
        .resolve(&Target::new(caps, arch))
        .expect("the default profile has a default action")
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use oci_spec::runtime::{Arch as OciArch, LinuxSeccomp};

    use super::*;
    use crate::testutil::{MISSING, Outcome, results, run_filtered, sys};
    use crate::{Program, compile};

    /// The capabilities docker gives a container by default.
    const DOCKER_CAPS: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];

    fn caps(extra: &[&str]) -> Vec<String> {
        DOCKER_CAPS
            .iter()
            .chain(extra)
            .map(|c| (*c).to_owned())
            .collect()
    }

    fn default_program(extra: &[&str]) -> Program {
        compile(&docker_default(&caps(extra), Arch::native())).expect("docker's default compiles")
    }

    fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn resolves_like_docker_on_amd64() {
        let p = docker_default(&caps(&[]), Arch::X86_64);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        assert_eq!(
            p.architectures().as_deref(),
            Some(
                &[
                    OciArch::ScmpArchX86_64,
                    OciArch::ScmpArchX86,
                    OciArch::ScmpArchX32
                ][..]
            )
        );
        assert_eq!(rules_for(&p, "arch_prctl").len(), 1);
        assert_eq!(rules_for(&p, "modify_ldt").len(), 1);
        assert!(rules_for(&p, "set_tls").is_empty());
        assert!(rules_for(&p, "mount").is_empty());
        assert!(rules_for(&p, "ptrace").iter().all(|r| r.args().is_none()));
        // chroot comes with CAP_SYS_CHROOT, which docker grants.
        assert_eq!(rules_for(&p, "chroot").len(), 1);
        assert_eq!(rules_for(&p, "personality").len(), 5);
        assert_eq!(rules_for(&p, "socket").len(), 3);

        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.value_two()),
            (0, 0x7e02_0000, Some(0))
        );
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let admin = docker_default(&caps(&["CAP_SYS_ADMIN"]), Arch::X86_64);
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "sethostname",
            "bpf",
            "fsopen",
        ] {
            assert_eq!(rules_for(&admin, name).len(), 1, "{name}");
        }
        let clone = rules_for(&admin, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none());
        let clone3 = rules_for(&admin, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActAllow);

        let none = docker_default(&[], Arch::X86_64);
        assert!(rules_for(&none, "chroot").is_empty());
        for (cap, name) in [
            ("CAP_SYS_PTRACE", "kcmp"),
            ("CAP_SYS_MODULE", "finit_module"),
            ("CAP_SYS_BOOT", "reboot"),
            ("CAP_SYS_TIME", "clock_settime"),
            ("CAP_SYS_NICE", "mbind"),
            ("CAP_SYS_PACCT", "acct"),
            ("CAP_SYS_RAWIO", "iopl"),
            ("CAP_SYS_CHROOT", "chroot"),
            ("CAP_SYSLOG", "syslog"),
            ("CAP_BPF", "bpf"),
            ("CAP_PERFMON", "perf_event_open"),
            ("CAP_SYS_TTY_CONFIG", "vhangup"),
            ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
        ] {
            assert!(rules_for(&none, name).is_empty(), "{name} without {cap}");
            // Names without the CAP_ prefix, in any case, count too.
            let short = cap.trim_start_matches("CAP_").to_ascii_lowercase();
            let with = docker_default(&[short], Arch::X86_64);
            assert_eq!(rules_for(&with, name).len(), 1, "{name} with {cap}");
        }
    }

    #[test]
    fn architectures_pick_their_own_rules() {
        let arm = docker_default(&[], Arch::Aarch64);
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[OciArch::ScmpArchAarch64, OciArch::ScmpArchArm][..])
        );
        assert_eq!(rules_for(&arm, "set_tls").len(), 1);
        assert!(rules_for(&arm, "arch_prctl").is_empty());

        let s390x = docker_default(&[], Arch::S390x);
        let clone = rules_for(&s390x, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
        assert_eq!(rules_for(&s390x, "s390_runtime_instr").len(), 1);

        // Not in docker's archMap: no architectures, the runtime's native one.
        assert_eq!(docker_default(&[], Arch::Ppc64le).architectures(), &None);
    }

    #[test]
    fn compiles_for_every_mapped_architecture() {
        // Only the native one's rules run here, but libseccomp must accept
        // the others' names and arches, if they share the host's byte order.
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64] {
            for extra in [&[][..], &["CAP_SYS_ADMIN"][..]] {
                let program = compile(&docker_default(&caps(extra), arch)).unwrap();
                assert!(program.instructions().len() < crate::MAX_INSTRUCTIONS);
            }
        }
        #[cfg(target_endian = "little")]
        {
            let err = compile(&docker_default(&[], Arch::S390x))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(
                    "linux.seccomp.architectures[0]: adding architecture SCMP_ARCH_S390X"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn denies_what_docker_denies() {
        let p = default_program(&[]);
        let mut personality = [0; 3];
        let r = results(&p, || {
            personality = [
                sys!(libc::SYS_personality, 0xffff_ffff_u64),
                sys!(libc::SYS_personality, 0x0008),
                sys!(libc::SYS_personality, 0x0040000), // ADDR_NO_RANDOMIZE
            ];
            [
                sys!(libc::SYS_unshare, libc::CLONE_NEWUSER),
                sys!(libc::SYS_unshare, 0),
                sys!(libc::SYS_mount, MISSING.as_ptr(), MISSING.as_ptr(), 0, 0, 0),
                sys!(libc::SYS_umount2, MISSING.as_ptr(), 0),
                sys!(libc::SYS_kexec_load, 0, 0, 0, 0x8000),
                sys!(libc::SYS_clone3, 0, 0),
                sys!(libc::SYS_keyctl, 9999, 0, 0, 0, 0),
                sys!(libc::SYS_add_key, 0, 0, 0, 0, 0),
                sys!(libc::SYS_kcmp, 0, 0, 0, 0, 0),
                sys!(libc::SYS_setns, -1, 0),
                sys!(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0),
                sys!(libc::SYS_socket, libc::AF_ALG, libc::SOCK_SEQPACKET, 0),
                personality[0],
                personality[1],
                personality[2],
            ]
        });
        let eperm = libc::EPERM;
        assert_eq!(
            r,
            [
                eperm,
                eperm,
                eperm,
                eperm,
                eperm,
                libc::ENOSYS, // clone3: libc falls back to clone
                eperm,
                eperm,
                eperm,
                eperm,
                eperm,
                eperm,
                0,
                0,
                eperm
            ]
        );
    }

    #[test]
    fn clone_with_namespace_flags_is_denied_without_cap_sys_admin() {
        // CLONE_THREAD without CLONE_SIGHAND makes the kernel answer EINVAL
        // before it creates anything: past the filter, the call fails
        // harmlessly, whoever runs the test.
        let flags = libc::CLONE_NEWUTS | libc::CLONE_THREAD | libc::SIGCHLD;
        for (extra, expected) in [
            (&[][..], libc::EPERM),
            (&["CAP_SYS_ADMIN"][..], libc::EINVAL),
        ] {
            let p = default_program(extra);
            let r = results(&p, || [sys!(libc::SYS_clone, flags, 0, 0, 0, 0)]);
            assert_eq!(r, [expected], "caps {extra:?}");
        }
    }

    #[test]
    fn ptrace_is_allowed_since_4_8_and_kcmp_needs_cap_sys_ptrace() {
        // Docker allows ptrace without CAP_SYS_PTRACE on kernels from 4.8,
        // where ptrace can no longer be used to get around seccomp.
        let p = default_program(&[]);
        let r = results(&p, || {
            [
                sys!(libc::SYS_ptrace, libc::PTRACE_PEEKDATA, 0x7fff_fff0, 0, 0),
                sys!(libc::SYS_kcmp, 0, 0, 0, 0, 0),
            ]
        });
        assert_eq!(r, [libc::ESRCH, libc::EPERM]);

        let old_kernel = Target {
            caps: caps(&[]),
            arch: Arch::native(),
            kernel: Some(KernelVersion::new(4, 4)),
        };
        let profile = DockerProfile::docker_default()
            .resolve(&old_kernel)
            .unwrap();
        let p = compile(&profile).unwrap();
        let r = results(&p, || {
            [sys!(
                libc::SYS_ptrace,
                libc::PTRACE_PEEKDATA,
                0x7fff_fff0,
                0,
                0
            )]
        });
        assert_eq!(r, [libc::EPERM]);
    }

    #[test]
    fn capabilities_open_the_filter() {
        let admin = default_program(&["CAP_SYS_ADMIN"]);
        let r = results(&admin, || {
            [
                sys!(libc::SYS_unshare, 0),
                sys!(libc::SYS_mount, MISSING.as_ptr(), MISSING.as_ptr(), 0, 0, 0),
                sys!(libc::SYS_clone3, 0, 0),
            ]
        });
        // The kernel's own answers: success, no such target, bad arguments.
        assert_eq!(r[0], 0);
        assert_eq!(r[1], libc::ENOENT);
        assert!(
            r[2] == libc::EINVAL || r[2] == libc::EFAULT,
            "clone3: {}",
            r[2]
        );

        let ptrace = default_program(&["CAP_SYS_PTRACE"]);
        let r = results(&ptrace, || [sys!(libc::SYS_kcmp, 0, 0, 0, 0, 0)]);
        // kcmp of pid 0: the kernel's answer, not the filter's EPERM.
        assert_eq!(r, [libc::ESRCH]);
    }

    #[test]
    fn newer_syscalls_look_absent_rather_than_denied() {
        // fchmodat2 (Linux 6.6) is in docker's list; a libseccomp that does
        // not know it leaves it above every named number: ENOSYS, and glibc
        // falls back to fchmodat. A libseccomp that knows it allows it.
        #[cfg(target_arch = "x86_64")]
        {
            const FCHMODAT2: libc::c_long = 452;
            let p = default_program(&[]);
            let r = results(&p, || {
                [sys!(FCHMODAT2, libc::AT_FDCWD, MISSING.as_ptr(), 0o644, 0)]
            });
            assert!(
                r == [libc::ENOSYS] || r == [libc::ENOENT],
                "fchmodat2: {r:?}"
            );
        }
    }

    #[test]
    fn shell_workloads_run() {
        let script = c"echo hello >/dev/null && ls / >/dev/null && (exit 3); [ $? -eq 3 ] \
            && cat /proc/self/status >/dev/null && mkdir -p /tmp && exit 42";
        let envp = [c"PATH=/usr/bin:/bin".as_ptr(), std::ptr::null()];
        let p = default_program(&[]);
        // dash (dynamically linked) and, where installed, busybox (static).
        let mut shells = vec![(CString::new("/bin/sh").unwrap(), vec![c"sh"])];
        if std::path::Path::new("/bin/busybox").exists() {
            shells.push((
                CString::new("/bin/busybox").unwrap(),
                vec![c"busybox", c"sh"],
            ));
        }
        for (path, args) in &shells {
            let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
            argv.extend([c"-c".as_ptr(), script.as_ptr(), std::ptr::null()]);
            let (outcome, _) = run_filtered(&p, |_| -> [i32; 0] {
                // SAFETY: argv and envp are null-terminated arrays of C
                // strings made before the fork.
                unsafe {
                    libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                    libc::_exit(127)
                }
            });
            assert_eq!(outcome, Outcome::Exited(42), "{path:?}");
        }
    }

    /// `cargo test --release -p berth-seccomp -- --ignored --nocapture
    /// compile_time` prints how long resolving and compiling docker's
    /// default profile takes.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn compile_time() {
        use std::time::Instant;
        let caps = caps(&[]);
        let rounds = 200;
        let mut best = [std::time::Duration::MAX; 3];
        let mut sum = [std::time::Duration::ZERO; 3];
        for _ in 0..rounds {
            let t0 = Instant::now();
            let profile = docker_default(&caps, Arch::native());
            let t1 = Instant::now();
            let program = compile(&profile).unwrap();
            let t2 = Instant::now();
            let bytes = program.to_bytes();
            let back = Program::from_bytes(&bytes).unwrap();
            let t3 = Instant::now();
            assert_eq!(back, program);
            for (i, d) in [t1 - t0, t2 - t1, t3 - t2].into_iter().enumerate() {
                best[i] = best[i].min(d);
                sum[i] += d;
            }
        }
        let program = compile(&docker_default(&caps, Arch::native())).unwrap();
        println!(
            "docker default: {} instructions",
            program.instructions().len()
        );

        let tmp = tempfile::tempdir().unwrap();
        let cache = crate::ProgramCache::new(tmp.path());
        let profile = docker_default(&caps, Arch::native());
        cache.compile(&profile).unwrap();
        let mut cached = std::time::Duration::MAX;
        for _ in 0..rounds {
            let t = Instant::now();
            let from_cache = cache.compile(&profile).unwrap();
            cached = cached.min(t.elapsed());
            assert_eq!(from_cache, program);
        }
        println!("   cached compile: best {cached:?}");
        for (i, what) in ["resolve", "compile", "bytes round trip"]
            .iter()
            .enumerate()
        {
            println!("{what:>16}: best {:?}, mean {:?}", best[i], sum[i] / rounds);
        }
    }
}
