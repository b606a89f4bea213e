//! The container's init between fork and exec.
//!
//! The runtime prepares an [`InitPlan`] (everything computed, files opened,
//! seccomp compiled), forks, and the child runs [`run`]:
//!
//! ```text
//! stage 1 (forked child)          enter/create namespaces; user ns: ask the runtime to
//!                                 write the id maps; wait until the runtime has put us
//!                                 in the cgroup; fork again when pid/time namespaces
//!                                 apply only to children, report init's pid, exit
//! stage 2 (init)                  cgroup ns, rootfs (mounts, /dev, pty), hooks,
//!                                 pivot_root, sysctls, hostname, masked/readonly paths,
//!                                 rlimits, user, capabilities, no_new_privs;
//!                                 report Ready; wait on the exec fifo (container only);
//!                                 seccomp; execve
//! ```
//!
//! Any failure is sent to the runtime as text over the sync channel before
//! init exits, so the caller sees the real cause.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use crate::capabilities::{self, CapSets};
use crate::console;
use crate::hooks::{self, HookState, Phase};
use crate::namespaces::{self, NsPlan};
use crate::rootfs::{self, DeviceNode, MountStep};
use crate::sync::{Channel, Msg};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Namespace(#[from] namespaces::NsError),
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Capabilities(#[from] capabilities::CapError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error("runtime stopped answering: {0}")]
    Runtime(String),
    #[error("fork container init: {0}")]
    Fork(nix::Error),
    #[error("set uid/gid maps: become root in the user namespace: {0}")]
    UserNsRoot(nix::Error),
    #[error("write time namespace offsets: {0}")]
    TimeOffsets(std::io::Error),
    #[error("linux.sysctl {key}={value}: {source}")]
    Sysctl { key: String, value: String, source: std::io::Error },
    #[error("set hostname {name:?}: {errno}")]
    Hostname { name: String, errno: nix::Error },
    #[error("set domainname {name:?}: {errno}")]
    Domainname { name: String, errno: nix::Error },
    #[error("process.rlimits {name} (soft {soft}, hard {hard}): {errno}")]
    Rlimit { name: &'static str, soft: u64, hard: u64, errno: nix::Error },
    #[error("process.oomScoreAdj {value}: {source}")]
    OomScoreAdj { value: i32, source: std::io::Error },
    #[error("linux.personality: {errno}")]
    Personality { errno: nix::Error },
    #[error("set additional groups {gids:?}: {errno}")]
    Groups { gids: Vec<u32>, errno: nix::Error },
    #[error("set gid {gid}: {errno}")]
    Setgid { gid: u32, errno: nix::Error },
    #[error("set uid {uid}: {errno}")]
    Setuid { uid: u32, errno: nix::Error },
    #[error("set no_new_privileges: {0}")]
    NoNewPrivs(nix::Error),
    #[error("chdir to cwd ({cwd:?}) set in config.json failed: {errno}")]
    Cwd { cwd: PathBuf, errno: nix::Error },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {path:?}: stat {path}: {errno}")]
    Stat { path: String, errno: nix::Error },
    #[error("exec: {path:?}: permission denied")]
    NotExecutable { path: String },
    #[error("exec {path}: {errno}")]
    Exec { path: String, errno: nix::Error },
    #[error("exec fifo: {0}")]
    Fifo(nix::Error),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("set up stdio: {0}")]
    Stdio(nix::Error),
    #[error("close inherited file descriptors: {0}")]
    CloseFds(nix::Error),
    #[error("cgroup filesystem at {dest}: {errno}")]
    CgroupMount { dest: PathBuf, errno: nix::Error },
}

/// One rlimit to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    pub name: &'static str,
    pub resource: libc::c_int,
    pub soft: u64,
    pub hard: u64,
}

/// The process part: who and what runs, with which privileges.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// `PATH` from `env`, for resolving `args[0]`.
    pub path_var: String,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<Rlimit>,
    /// None: keep every capability (no capabilities section).
    pub caps: Option<CapSets>,
    pub last_cap: u8,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub preserve_fds: u32,
    /// Descriptors to become the process's stdin, stdout and stderr (a
    /// shim's pipes); None: inherit the runtime's. Ignored with a terminal.
    pub stdio: Option<[RawFd; 3]>,
    pub seccomp: Option<crate::seccomp::Program>,
}

/// The rootfs part, for a new container.
#[derive(Debug, Clone)]
pub struct RootfsPlan {
    pub rootfs: PathBuf,
    pub propagation: Option<String>,
    pub mounts: Vec<MountStep>,
    pub devices: Vec<DeviceNode>,
    pub cgroup_view: berth_cgroups::ContainerView,
    pub readonly_root: bool,
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
    pub new_mount_ns: bool,
    pub in_userns: bool,
}

/// What a new container's init does beyond running a process.
#[derive(Debug)]
pub struct ContainerInit {
    pub rootfs: RootfsPlan,
    pub sysctls: Vec<(String, String)>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub new_cgroup_ns: bool,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub personality: Option<libc::c_ulong>,
    /// The exec fifo, opened O_PATH by the runtime before fork.
    pub fifo: OwnedFd,
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The runtime runs prestart/createRuntime hooks: stop and ask it.
    pub runtime_hooks: bool,
    pub id: String,
    pub bundle: PathBuf,
    pub annotations: std::collections::HashMap<String, String>,
}

pub enum InitKind {
    Container(Box<ContainerInit>),
    Exec,
}

pub struct InitPlan {
    pub ns: NsPlan,
    pub kind: InitKind,
    pub process: ProcessPlan,
}

/// Run init in the forked child. Never returns.
pub fn run(plan: &InitPlan, chan: &Channel) -> ! {
    let err = match stage1(plan, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error(err.to_string()));
    // SAFETY: leave without running destructors or atexit handlers that
    // belong to the runtime process we were forked from.
    unsafe { libc::_exit(1) }
}

enum Never {}

fn expect_continue(chan: &Channel, what: &'static str) -> Result<(), InitError> {
    match chan.recv()? {
        Some(Msg::Continue) => Ok(()),
        Some(other) => Err(InitError::Runtime(format!("expected go-ahead for {what}, got {other:?}"))),
        None => Err(InitError::Runtime(format!("runtime went away before {what}"))),
    }
}

fn stage1(plan: &InitPlan, chan: &Channel) -> Result<Never, InitError> {
    if let InitKind::Exec = plan.kind {
        // Other processes of the container (same uid) must not ptrace or
        // read /proc of a half-set-up exec; exec restores dumpability.
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    let joins = plan.ns.open_joins()?;
    for (f, fd) in joins.iter().filter(|(f, _)| *f == CloneFlags::CLONE_NEWUSER) {
        namespaces::setns(fd, *f)?;
    }
    if plan.ns.new_user() {
        namespaces::unshare(CloneFlags::CLONE_NEWUSER)?;
        chan.send(&Msg::MapIds)?;
        expect_continue(chan, "user namespace maps")?;
        become_root()?;
    } else if joins.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER) {
        become_root()?;
    }
    for (f, fd) in joins.iter().filter(|(f, _)| *f != CloneFlags::CLONE_NEWUSER) {
        namespaces::setns(fd, *f)?;
    }
    drop(joins);
    // `difference`, not `& !`: complementing drops bits nix doesn't name
    // (CLONE_NEWTIME).
    let new = plan.ns.new.difference(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWCGROUP);
    namespaces::unshare(new)?;
    if let InitKind::Container(c) = &plan.kind
        && !c.time_offsets.is_empty() {
            let text: String = c.time_offsets.iter().map(|(clock, s, ns)| format!("{clock} {s} {ns}\n")).collect();
            std::fs::write("/proc/self/timens_offsets", text).map_err(InitError::TimeOffsets)?;
        }
    expect_continue(chan, "cgroup join")?;
    if plan.ns.needs_fork() {
        // SAFETY: the runtime is single-threaded, so the child may run
        // arbitrary code after fork.
        match unsafe { nix::unistd::fork() }.map_err(InitError::Fork)? {
            nix::unistd::ForkResult::Parent { child } => {
                chan.send(&Msg::Pid(child.as_raw()))?;
                // SAFETY: see `run`.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Child => {
                // Let our parent's Pid report reach the runtime before any
                // message of ours does.
                expect_continue(chan, "the pid report")?;
            }
        }
    } else {
        chan.send(&Msg::Pid(std::process::id() as i32))?;
    }
    stage2(plan, chan)
}

fn become_root() -> Result<(), InitError> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(InitError::UserNsRoot)?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(InitError::UserNsRoot)
}

fn stage2(plan: &InitPlan, chan: &Channel) -> Result<Never, InitError> {
    let p = &plan.process;
    let mut slave: Option<OwnedFd> = None;
    match &plan.kind {
        InitKind::Container(c) => {
            if c.new_cgroup_ns {
                namespaces::unshare(CloneFlags::CLONE_NEWCGROUP)?;
            }
            slave = setup_container(c, p, chan)?;
        }
        InitKind::Exec => {
            let _ = nix::unistd::setsid();
            if p.terminal {
                let pty = console::open_pty()?;
                send_master(&pty, p, chan)?;
                slave = Some(pty.slave);
            }
        }
    }
    if let Some(s) = &slave {
        console::make_controlling(s)?;
    } else if let Some(fds) = p.stdio {
        for (target, fd) in fds.iter().enumerate() {
            // SAFETY: dup2 of fds this process holds onto 0, 1, 2.
            if *fd != target as RawFd && unsafe { libc::dup2(*fd, target as RawFd) } < 0 {
                return Err(InitError::Stdio(nix::Error::last()));
            }
        }
    }
    drop(slave);
    if let Some(v) = p.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", v.to_string())
            .map_err(|source| InitError::OomScoreAdj { value: v, source })?;
    }
    set_rlimits(&p.rlimits)?;
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    close_inherited_fds(p.preserve_fds)?;
    // Without no_new_privs, seccomp must go in while we still hold
    // CAP_SYS_ADMIN; with it, as late as possible (just before exec).
    if !p.no_new_privileges {
        load_seccomp(p)?;
    }
    switch_user(p)?;
    if p.no_new_privileges {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(InitError::NoNewPrivs(nix::Error::last()));
        }
    }
    nix::unistd::chdir(&p.cwd).map_err(|errno| InitError::Cwd { cwd: p.cwd.clone(), errno })?;
    let program = resolve_program(p)?;
    match &plan.kind {
        InitKind::Container(c) => {
            chan.send(&Msg::Ready)?;
            if let Err(e) = wait_for_start(&c.fifo) {
                fatal_after_ready(&e.to_string());
            }
            let state = HookState {
                oci_version: "1.2.0",
                id: &c.id,
                status: "created",
                pid: Some(std::process::id() as i32),
                bundle: &c.bundle,
                annotations: Some(&c.annotations),
            };
            if let Err(e) = hooks::run(c.hooks.as_ref(), Phase::StartContainer, &state) {
                fatal_after_ready(&e.to_string());
            }
            if p.no_new_privileges
                && let Err(e) = load_seccomp(p) {
                    fatal_after_ready(&e.to_string());
                }
            let e = exec(&program, p);
            fatal_after_ready(&e.to_string())
        }
        InitKind::Exec => {
            if p.no_new_privileges {
                load_seccomp(p)?;
            }
            // Success is the sync socket closing on exec (it is O_CLOEXEC).
            Err(exec(&program, p))
        }
    }
}

/// After Ready nobody waits on the sync channel: say it on stderr (the
/// container's) and exit as a shell would.
fn fatal_after_ready(msg: &str) -> ! {
    let line = format!("berth-runtime: {msg}\n");
    // SAFETY: writing to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    // SAFETY: see `run`.
    unsafe { libc::_exit(if msg.contains("not found") || msg.contains("no such file") { 127 } else { 126 }) }
}

fn send_master(pty: &console::Pty, p: &ProcessPlan, chan: &Channel) -> Result<(), InitError> {
    if let Some((rows, cols)) = p.console_size {
        console::set_size(pty.master.as_fd(), rows, cols)?;
    }
    chan.send(&Msg::Terminal)?;
    chan.send_fd(pty.master.as_raw_fd())?;
    Ok(())
}

fn setup_container(c: &ContainerInit, p: &ProcessPlan, chan: &Channel) -> Result<Option<OwnedFd>, InitError> {
    let r = &c.rootfs;
    let mut slave = None;
    if r.new_mount_ns {
        rootfs::prepare_root(&r.rootfs, r.propagation.as_deref())?;
        let root = rootfs::open_root(&r.rootfs)?;
        for step in &r.mounts {
            if step.cgroup {
                mount_cgroup_view(&root, step, &r.cgroup_view, c.new_cgroup_ns)?;
            } else {
                rootfs::apply_mount(&root, step)?;
            }
        }
        rootfs::create_devices(&root, &r.devices, r.in_userns)?;
        rootfs::create_dev_symlinks(&root)?;
        if p.terminal {
            let pty = console::open_pty_in(root.as_fd(), Path::new("dev/pts/ptmx"))?;
            rootfs::bind_console(&root, Path::new(&rootfs::fd_path(pty.slave.as_raw_fd())))?;
            send_master(&pty, p, chan)?;
            slave = Some(pty.slave);
        }
    } else if p.terminal {
        let pty = console::open_pty()?;
        send_master(&pty, p, chan)?;
        slave = Some(pty.slave);
    }
    if c.runtime_hooks {
        chan.send(&Msg::RunHooks)?;
        expect_continue(chan, "prestart and createRuntime hooks")?;
    }
    let state = HookState {
        oci_version: "1.2.0",
        id: &c.id,
        status: "creating",
        pid: Some(std::process::id() as i32),
        bundle: &c.bundle,
        annotations: Some(&c.annotations),
    };
    hooks::run(c.hooks.as_ref(), Phase::CreateContainer, &state)?;
    if r.new_mount_ns {
        rootfs::pivot_root(&r.rootfs)?;
    } else {
        rootfs::chroot(&r.rootfs)?;
    }
    for (key, value) in &c.sysctls {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|source| InitError::Sysctl { key: key.clone(), value: value.clone(), source })?;
    }
    if let Some(name) = &c.hostname {
        nix::unistd::sethostname(name).map_err(|errno| InitError::Hostname { name: name.clone(), errno })?;
    }
    if let Some(name) = &c.domainname {
        // SAFETY: name points at name.len() valid bytes.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(InitError::Domainname { name: name.clone(), errno: nix::Error::last() });
        }
    }
    if r.new_mount_ns {
        rootfs::readonly_paths(&r.readonly)?;
        rootfs::mask_paths(&r.masked)?;
        if r.readonly_root {
            rootfs::remount_root_readonly()?;
        }
    }
    if let Some(persona) = c.personality {
        // SAFETY: personality takes a plain integer.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(InitError::Personality { errno: nix::Error::last() });
        }
    }
    Ok(slave)
}

/// The cgroup filesystem inside the container, read-only when the mount
/// says `ro` (docker's default): so a root process inside cannot raise its
/// own limits. v1/hybrid: a tmpfs with each hierarchy's container dir bound
/// read-only below it; v2: a fresh cgroup2 in a cgroup namespace, else the
/// container's dir bound.
fn mount_cgroup_view(
    root: &OwnedFd,
    step: &MountStep,
    view: &berth_cgroups::ContainerView,
    cgroupns: bool,
) -> Result<(), InitError> {
    use nix::mount::MsFlags;
    let dest = step.dest.clone();
    let err = |errno| InitError::CgroupMount { dest: dest.clone(), errno };
    let rel: PathBuf = step.dest.strip_prefix("/").unwrap_or(&step.dest).to_owned();
    let ro = step.options.flags.contains(MsFlags::MS_RDONLY);
    let base = step.options.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let target = rootfs::mkdir_all_in_root(root, &rel).map_err(err)?;
    let target_path = rootfs::fd_path(target.as_raw_fd());
    let bind = |src: &Path, rel_dest: &Path| -> Result<(), InitError> {
        let t = rootfs::mkdir_all_in_root(root, rel_dest).map_err(err)?;
        let tp = rootfs::fd_path(t.as_raw_fd());
        nix::mount::mount(Some(src), tp.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(err)?;
        let t = rootfs::open_in_root(root, rel_dest).map_err(err)?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
        nix::mount::mount(None::<&str>, rootfs::fd_path(t.as_raw_fd()).as_str(), None::<&str>, flags, None::<&str>)
            .map_err(err)
    };
    if !view.tmpfs {
        if cgroupns {
            let flags = base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
            return nix::mount::mount(Some("cgroup2"), target_path.as_str(), Some("cgroup2"), flags, None::<&str>)
                .map_err(err);
        }
        return match view.mounts.first() {
            Some(m) => bind(&m.source, &rel),
            None => Ok(()),
        };
    }
    nix::mount::mount(Some("tmpfs"), target_path.as_str(), Some("tmpfs"), base, Some("mode=755")).map_err(err)?;
    for m in &view.mounts {
        bind(&m.source, &rel.join(&m.destination))?;
    }
    let dir = rootfs::open_in_root(root, &rel).map_err(err)?;
    let dir = nix::fcntl::open(
        target_dir_path(&dir).as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(err)?;
    for l in &view.symlinks {
        match nix::unistd::symlinkat(l.target.as_str(), dir.as_fd(), l.link.as_str()) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(err(e)),
        }
    }
    if ro {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base;
        nix::mount::mount(None::<&str>, target_dir_path(&dir).as_str(), None::<&str>, flags, Some("mode=755"))
            .map_err(err)?;
    }
    Ok(())
}

fn target_dir_path(fd: &OwnedFd) -> String {
    rootfs::fd_path(fd.as_raw_fd())
}

fn set_rlimits(limits: &[Rlimit]) -> Result<(), InitError> {
    for l in limits {
        let rl = libc::rlimit { rlim_cur: l.soft, rlim_max: l.hard };
        // SAFETY: setrlimit reads the struct.
        if unsafe { libc::setrlimit(l.resource as _, &rl) } != 0 {
            return Err(InitError::Rlimit { name: l.name, soft: l.soft, hard: l.hard, errno: nix::Error::last() });
        }
    }
    Ok(())
}

/// Mark every fd from 3 + preserve_fds up close-on-exec: nothing of the
/// runtime's leaks into the container (one syscall, close_range).
fn close_inherited_fds(preserve: u32) -> Result<(), InitError> {
    let first = 3 + preserve;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes flags.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r != 0 {
        return Err(InitError::CloseFds(nix::Error::last()));
    }
    Ok(())
}

fn switch_user(p: &ProcessPlan) -> Result<(), InitError> {
    let caps = p.caps.unwrap_or_else(|| CapSets::full(p.last_cap));
    capabilities::drop_bounding(&caps, p.last_cap)?;
    let changing = p.uid != 0;
    if changing {
        capabilities::set_keep_caps(true)?;
    }
    let gids: Vec<Gid> = p.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        // In a user namespace with setgroups denied, only an empty list could be set.
        Err(nix::Error::EPERM) if gids.is_empty() => {}
        Err(errno) => return Err(InitError::Groups { gids: p.additional_gids.clone(), errno }),
    }
    let g = Gid::from_raw(p.gid);
    nix::unistd::setresgid(g, g, g).map_err(|errno| InitError::Setgid { gid: p.gid, errno })?;
    let u = Uid::from_raw(p.uid);
    nix::unistd::setresuid(u, u, u).map_err(|errno| InitError::Setuid { uid: p.uid, errno })?;
    if changing {
        capabilities::set_keep_caps(false)?;
    }
    capabilities::apply(&caps)?;
    Ok(())
}

fn load_seccomp(p: &ProcessPlan) -> Result<(), InitError> {
    if let Some(prog) = &p.seccomp {
        crate::seccomp::load(prog).map_err(|e| InitError::Seccomp(e.to_string()))?;
    }
    Ok(())
}

/// Find `args[0]` as a shell would: a name with a '/' as is, else along PATH.
fn resolve_program(p: &ProcessPlan) -> Result<CString, InitError> {
    let arg0 = p.args[0].to_string_lossy().into_owned();
    if arg0.contains('/') {
        check_executable(&arg0)?;
        return Ok(p.args[0].clone());
    }
    let mut denied = None;
    for dir in p.path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{arg0}");
        match check_executable(&candidate) {
            Ok(()) => return Ok(CString::new(candidate).expect("no NUL in path")),
            Err(e @ InitError::NotExecutable { .. }) => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or(InitError::NotFound(arg0)))
}

fn check_executable(path: &str) -> Result<(), InitError> {
    let st = nix::sys::stat::stat(path).map_err(|errno| InitError::Stat { path: path.to_owned(), errno })?;
    let is_file = (st.st_mode & libc::S_IFMT) == libc::S_IFREG;
    if !is_file || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(InitError::NotExecutable { path: path.to_owned() });
    }
    Ok(())
}

/// Block until `start` opens the fifo for reading, then tell it we're off.
fn wait_for_start(fifo: &OwnedFd) -> Result<(), InitError> {
    let path = rootfs::fd_path(fifo.as_raw_fd());
    let fd = loop {
        match nix::fcntl::open(path.as_str(), nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
            Err(nix::Error::EINTR) => continue,
            r => break r.map_err(InitError::Fifo)?,
        }
    };
    nix::unistd::write(&fd, b"0").map_err(InitError::Fifo)?;
    Ok(())
}

fn exec(program: &CString, p: &ProcessPlan) -> InitError {
    reset_signals();
    let errno = nix::unistd::execve(program, &p.args, &p.env).unwrap_err();
    InitError::Exec { path: program.to_string_lossy().into_owned(), errno }
}

/// The container's process starts with every signal unblocked and at its
/// default action: exec keeps ignored signals ignored and the mask as is,
/// and the runtime's caller (a CLI ignoring SIGPIPE, a shim blocking
/// signals) must not leak those into the container.
fn reset_signals() {
    // The raw syscall: glibc refuses to touch 32 and 33 (its own), which a
    // caller may still have left ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid struct; nothing runs in between.
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, &act as *const KernelSigaction, std::ptr::null::<u8>(), 8usize) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None);
}

/// Borrow a raw fd for the duration of a call.
pub fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass fds that outlive the use.
    unsafe { BorrowedFd::borrow_raw(fd) }
}
