//! Container lifecycle, runtime side: create, start, state, kill, delete,
//! pause, resume, exec, ps, list. Each call is a short-lived process in
//! runc's model; everything between calls lives in the state directory.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::Serialize;

use berth_cgroups::Cgroup;

use crate::cgroups::{self, CgroupsError};
use crate::console::{self, ConsoleError};
use crate::hooks::{self, HookError, HookState, Phase};
use crate::init::{self, ContainerInit, InitKind, InitPlan, RootfsPlan};
use crate::namespaces::NsPlan;
use crate::process::ProcessError;
use crate::spec::{self, SpecError};
use crate::state::{self, Record, StateDir, StateError, Status};
use crate::sync::{self, Msg, SyncError};

/// runtime-spec version we report.
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Cgroups(#[from] CgroupsError),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Console(#[from] ConsoleError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("container init: {0}")]
    Init(String),
    #[error("container init exited before it was ready: {0}")]
    InitDied(String),
    #[error("cannot allocate a tty for a detached container without --console-socket")]
    NeedConsoleSocket,
    #[error("container {id} is {status}: cannot {action}")]
    Status { id: String, status: Status, action: &'static str },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{what}: {errno}")]
    Sys { what: &'static str, errno: nix::Error },
    #[error("container {id}: processes did not exit within {secs}s")]
    Timeout { id: String, secs: u64 },
}

impl ContainerError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        ContainerError::Io { what, path: path.to_owned(), source }
    }
}

/// Options of `create` (and of `run`, which is create + start + wait + delete).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Keep the pty master for the caller (foreground `run -t`) instead of
    /// requiring a console socket.
    pub keep_terminal: bool,
    /// stdin, stdout, stderr for the container's process (e.g. a shim's
    /// pipes); None: the caller's own.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// What `create` leaves the caller.
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
    /// The pty master, when `keep_terminal` asked for it.
    pub terminal: Option<OwnedFd>,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub keep_terminal: bool,
    /// stdin, stdout, stderr for the process; None: the caller's own.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// The JSON `state` prints (runc's shape).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// A runtime instance over one state root (`--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

/// Undo a half-made container: kill what was started, remove its cgroup and
/// state directory. Disarmed once create succeeds.
struct CreateGuard {
    dir: StateDir,
    cgroup: Option<Cgroup>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for &pid in &self.pids {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        let _ = self.dir.remove();
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    berth_sys::fs::write_replace(path, pid.to_string().as_bytes()).map_err(|e| ContainerError::Io {
        what: "write pid file",
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), ContainerError> {
    let linux = spec.linux().as_ref();
    for (file, maps) in [
        ("uid_map", linux.and_then(|l| l.uid_mappings().as_ref())),
        ("gid_map", linux.and_then(|l| l.gid_mappings().as_ref())),
    ] {
        let Some(maps) = maps else { continue };
        let text: String =
            maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect();
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(|e| ContainerError::io("write user namespace map", &path, e))?;
    }
    Ok(())
}

fn describe_wait(pid: i32) -> String {
    match nix::sys::wait::waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("wait: {e}"),
    }
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    /// Compiled seccomp programs, by profile.
    fn seccomp_cache(&self) -> PathBuf {
        self.root.join(".seccomp")
    }

    fn dir(&self, id: &str) -> Result<StateDir, ContainerError> {
        Ok(StateDir::new(&self.root, id)?)
    }

    /// Create a container from the bundle: init waits on the exec fifo until
    /// [`Runtime::start`]. Sets this process as child subreaper so init can
    /// be reaped here if it fails before it is ready.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Created, ContainerError> {
        let dir = self.dir(id)?;
        let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| ContainerError::io("bundle", &opts.bundle, e))?;
        let config_path = bundle.join("config.json");
        let config = std::fs::read(&config_path).map_err(|source| SpecError::Read { path: config_path.clone(), source })?;
        let spec = spec::parse(&config, &config_path)?;
        let rootfs = spec::rootfs_path(&spec, &bundle)?;
        let process = spec.process().as_ref().expect("validated: process present");
        let terminal = process.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && !opts.keep_terminal {
            return Err(ContainerError::NeedConsoleSocket);
        }
        let seccomp = crate::seccomp::plan(&spec, &self.seccomp_cache())?;
        let process_plan = crate::process::plan(process, opts.preserve_fds, opts.stdio, seccomp)?;
        let mounts = crate::rootfs::plan_mounts(&spec, &bundle)?;

        dir.create()?;
        let mut guard = CreateGuard { dir: dir.clone(), cgroup: None, pids: Vec::new(), armed: true };
        let linux = spec.linux().clone().unwrap_or_default();
        let annotations = spec.annotations().clone().unwrap_or_default();
        let mut record = Record {
            id: id.to_owned(),
            pid: 0,
            pid_start_time: 0,
            creator_pid: std::process::id() as i32,
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            created: state::now_rfc3339(),
            owner: String::new(),
            annotations: annotations.clone(),
            cgroup: None,
        };
        dir.save_config(&config)?;
        dir.save(&record)?;
        let fifo_path = dir.fifo();
        nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
            .map_err(|errno| ContainerError::Sys { what: "create exec fifo", errno })?;
        // Past the umask: init may run as any user (or a mapped root).
        std::fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
            .map_err(|e| ContainerError::io("chmod exec fifo", &fifo_path, e))?;
        let fifo = nix::fcntl::open(
            &fifo_path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|errno| ContainerError::Sys { what: "open exec fifo", errno })?;

        let cgroup = cgroups::create(&spec, id)?;
        guard.cgroup = Some(cgroup.clone());
        record.cgroup = Some(cgroup.clone());
        dir.save(&record)?;

        let ns = NsPlan::from_spec(&spec);
        let userns = ns.has(nix::sched::CloneFlags::CLONE_NEWUSER);
        let hooks = spec.hooks().clone();
        let runtime_hooks = hooks.as_ref().is_some_and(|h| {
            !Phase::Prestart.list(h).is_empty() || !Phase::CreateRuntime.list(h).is_empty()
        });
        let time_offsets = linux
            .time_offsets()
            .iter()
            .flatten()
            .map(|(clock, o)| (clock.clone(), o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0)))
            .collect();
        let plan = InitPlan {
            kind: InitKind::Container(Box::new(ContainerInit {
                rootfs: RootfsPlan {
                    rootfs: rootfs.clone(),
                    propagation: linux.rootfs_propagation().clone(),
                    mounts,
                    devices: crate::rootfs::plan_devices(&spec),
                    cgroup_view: cgroup.container_view(),
                    readonly_root: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
                    masked: linux.masked_paths().clone().unwrap_or_default(),
                    readonly: linux.readonly_paths().clone().unwrap_or_default(),
                    new_mount_ns: ns.new.contains(nix::sched::CloneFlags::CLONE_NEWNS),
                    in_userns: userns,
                },
                sysctls: linux.sysctl().clone().unwrap_or_default().into_iter().collect(),
                hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
                domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
                new_cgroup_ns: spec::has_new_namespace(&spec, LinuxNamespaceType::Cgroup),
                time_offsets,
                personality: linux.personality().as_ref().map(|p| match p.domain() {
                    oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
                    _ => 0,
                }),
                fifo,
                hooks: hooks.clone(),
                runtime_hooks,
                id: id.to_owned(),
                bundle: bundle.clone(),
                annotations: annotations.clone(),
            })),
            ns,
            process: process_plan,
        };

        // SAFETY: plain prctl; see the doc comment.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let (parent, child) = sync::pair()?;
        // SAFETY: this process is single-threaded; the child only runs init.
        let first = match unsafe { nix::unistd::fork() }.map_err(|errno| ContainerError::Sys { what: "fork", errno })? {
            nix::unistd::ForkResult::Child => {
                drop(parent);
                init::run(&plan, &child)
            }
            nix::unistd::ForkResult::Parent { child: pid } => pid.as_raw(),
        };
        drop(child);
        drop(plan);
        guard.pids.push(first);

        let init_err = |r: Result<(), Result<String, SyncError>>| -> Result<(), ContainerError> {
            match r {
                Ok(()) => Ok(()),
                Err(Ok(msg)) => Err(ContainerError::Init(msg)),
                Err(Err(e)) => Err(e.into()),
            }
        };
        cgroup.add_process(first)?;
        if userns && linux.uid_mappings().is_some() {
            init_err(parent.expect(Msg::MapIds, "the user namespace map request"))?;
            write_id_maps(first, &spec)?;
            parent.send(&Msg::Continue)?;
        }
        parent.send(&Msg::Continue)?;
        let pid = match parent.recv()? {
            Some(Msg::Pid(p)) => p,
            Some(Msg::Error(e)) => return Err(ContainerError::Init(e)),
            Some(other) => return Err(SyncError::Unexpected { got: other, expected: "init's pid" }.into()),
            None => return Err(ContainerError::InitDied(describe_wait(first))),
        };
        if pid != first {
            guard.pids.push(pid);
            parent.send(&Msg::Continue)?;
            let _ = nix::sys::wait::waitpid(Pid::from_raw(first), None);
            guard.pids.retain(|p| *p != first);
        }
        let hook_state = |status: &'static str| HookState {
            oci_version: OCI_VERSION,
            id,
            status,
            pid: Some(pid),
            bundle: &bundle,
            annotations: Some(&annotations),
        };
        let mut terminal_fd = None;
        loop {
            match parent.recv()? {
                Some(Msg::RunHooks) => {
                    hooks::run(hooks.as_ref(), Phase::Prestart, &hook_state("creating"))?;
                    hooks::run(hooks.as_ref(), Phase::CreateRuntime, &hook_state("creating"))?;
                    parent.send(&Msg::Continue)?;
                }
                Some(Msg::Terminal) => {
                    let master = parent.recv_fd()?;
                    match &opts.console_socket {
                        Some(sock) => console::send_to_socket(sock, &master)?,
                        None => terminal_fd = Some(master),
                    }
                }
                Some(Msg::Ready) => break,
                Some(Msg::Error(e)) => return Err(ContainerError::Init(e)),
                Some(other) => return Err(SyncError::Unexpected { got: other, expected: "init ready" }.into()),
                None => return Err(ContainerError::InitDied(describe_wait(pid))),
            }
        }
        record.pid = pid;
        record.pid_start_time = state::proc_stat(pid).map(|s| s.start_time).unwrap_or(0);
        record.creator_pid = 0;
        dir.save(&record)?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, pid)?;
        }
        guard.armed = false;
        Ok(Created { pid, terminal: terminal_fd })
    }

    /// The record and the status derived from it.
    pub fn load(&self, id: &str) -> Result<(Record, Status), ContainerError> {
        let dir = self.dir(id)?;
        let record = dir.load()?;
        let status = self.status_of(&dir, &record);
        Ok((record, status))
    }

    fn status_of(&self, dir: &StateDir, r: &Record) -> Status {
        if r.pid == 0 {
            return if r.creator_pid > 0 && state::process_alive(r.creator_pid, 0) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !state::process_alive(r.pid, r.pid_start_time) {
            return Status::Stopped;
        }
        if r.cgroup.as_ref().is_some_and(cgroups::is_frozen) {
            return Status::Paused;
        }
        if dir.fifo().exists() { Status::Created } else { Status::Running }
    }

    pub fn state(&self, id: &str) -> Result<StateReport, ContainerError> {
        let (r, status) = self.load(id)?;
        Ok(report(r, status))
    }

    /// Every container under the root, sorted by id. Unreadable entries
    /// (a create that crashed before its first record) are skipped.
    pub fn list(&self) -> Result<Vec<StateReport>, ContainerError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(ContainerError::io("read state root", &self.root, e)),
        };
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') {
                continue;
            }
            if let Ok(rep) = self.state(&id) {
                out.push(rep);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Release init: it execs the container's process. Runs poststart hooks.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let (record, status) = self.load(id)?;
        if !status.can_start() {
            return Err(ContainerError::Status { id: id.to_owned(), status, action: "start" });
        }
        let dir = self.dir(id)?;
        // Read the hooks before releasing init: a short-lived container can
        // be gone, and its state deleted by its reaper, right after.
        let config = self.saved_spec(id)?;
        let fifo = dir.fifo();
        let fd = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|errno| ContainerError::Sys { what: "open exec fifo", errno })?;
        let mut buf = [0u8; 1];
        loop {
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&fd),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::Error::EINTR) => {
                    if !state::process_alive(record.pid, record.pid_start_time) {
                        return Err(ContainerError::Init("init exited before start".into()));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(errno) => return Err(ContainerError::Sys { what: "wait on exec fifo", errno }),
            }
            match nix::unistd::read(&fd, &mut buf) {
                Ok(1) => break,
                Ok(_) | Err(nix::Error::EAGAIN) => continue,
                Err(errno) => return Err(ContainerError::Sys { what: "read exec fifo", errno }),
            }
        }
        let _ = std::fs::remove_file(&fifo);
        let hs = HookState {
            oci_version: OCI_VERSION,
            id,
            status: "running",
            pid: Some(record.pid),
            bundle: &record.bundle,
            annotations: Some(&record.annotations),
        };
        if let Err(e) = hooks::run(config.hooks().as_ref(), Phase::Poststart, &hs) {
            // The container already runs: a poststart failure is a warning (spec).
            crate::log::warn(&e.to_string());
        }
        Ok(())
    }

    fn saved_spec(&self, id: &str) -> Result<Spec, ContainerError> {
        let dir = self.dir(id)?;
        let path = dir.config_file();
        let data = std::fs::read(&path).map_err(|source| SpecError::Read { path: path.clone(), source })?;
        Ok(serde_json::from_slice(&data).map_err(|e| SpecError::Parse {
            path,
            field: String::new(),
            message: e.to_string(),
        })?)
    }

    /// Send `signal` to init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), ContainerError> {
        let (record, status) = self.load(id)?;
        if !status.can_kill() {
            return Err(ContainerError::Status { id: id.to_owned(), status, action: "kill" });
        }
        if all {
            if let Some(cg) = &record.cgroup {
                cg.kill_all(signal as i32)?;
            }
            return Ok(());
        }
        signal_init(&record, signal)
    }

    pub fn pause(&self, id: &str) -> Result<(), ContainerError> {
        let (record, status) = self.load(id)?;
        if !status.can_pause() {
            return Err(ContainerError::Status { id: id.to_owned(), status, action: "pause" });
        }
        Ok(cgroup_of(&record)?.freeze()?)
    }

    pub fn resume(&self, id: &str) -> Result<(), ContainerError> {
        let (record, status) = self.load(id)?;
        if !status.can_resume() {
            return Err(ContainerError::Status { id: id.to_owned(), status, action: "resume" });
        }
        Ok(cgroup_of(&record)?.thaw()?)
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, ContainerError> {
        let (record, _) = self.load(id)?;
        Ok(cgroup_of(&record)?.procs()?)
    }

    /// Remove a stopped (or created) container; `force` kills a running one
    /// first. Runs poststop hooks; removes the cgroup and the state dir.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let dir = self.dir(id)?;
        let record = match dir.load() {
            Ok(r) => r,
            // A create that crashed before writing its record: nothing runs.
            Err(StateError::Read { .. } | StateError::Corrupt { .. }) if dir.exists() => {
                dir.remove().map_err(|e| ContainerError::io("remove state", &dir.dir, e))?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let status = self.status_of(&dir, &record);
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait(&record)?,
            Status::Creating if force => {}
            Status::Running | Status::Paused if force => self.kill_and_wait(&record)?,
            _ => return Err(ContainerError::Status { id: id.to_owned(), status, action: "delete (not stopped)" }),
        }
        if let Some(cgroup) = &record.cgroup {
            // Stray processes (e.g. with a host pid namespace) go too.
            if !cgroup.procs().unwrap_or_default().is_empty() {
                self.kill_and_wait(&record)?;
            }
            cgroup.destroy()?;
        }
        if let Ok(spec) = self.saved_spec(id) {
            let hs = HookState {
                oci_version: OCI_VERSION,
                id,
                status: "stopped",
                pid: None,
                bundle: &record.bundle,
                annotations: Some(&record.annotations),
            };
            if let Err(e) = hooks::run(spec.hooks().as_ref(), Phase::Poststop, &hs) {
                crate::log::warn(&e.to_string());
            }
        }
        dir.remove().map_err(|e| ContainerError::io("remove state", &dir.dir, e))
    }

    fn kill_and_wait(&self, record: &Record) -> Result<(), ContainerError> {
        if let Some(cgroup) = &record.cgroup {
            if cgroups::is_frozen(cgroup) {
                let _ = cgroup.thaw();
            }
            let _ = cgroup.kill_all(libc::SIGKILL);
        }
        let _ = signal_init(record, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let init_gone = !state::process_alive(record.pid, record.pid_start_time);
            let procs = record.cgroup.as_ref().and_then(|c| c.procs().ok()).unwrap_or_default();
            if init_gone && procs.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ContainerError::Timeout { id: record.id.clone(), secs: 10 });
            }
            // Reap init if it is our child (foreground run).
            let _ = nix::sys::wait::waitpid(Pid::from_raw(record.pid), Some(WaitPidFlag::WNOHANG));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Run `process` inside the running container `id`. Returns once it has
    /// exec'd (the sync socket closed) with its host pid.
    pub fn exec(&self, id: &str, process: &Process, opts: &ExecOptions) -> Result<Created, ContainerError> {
        let (record, status) = self.load(id)?;
        if !status.can_exec() {
            return Err(ContainerError::Status { id: id.to_owned(), status, action: "exec" });
        }
        let terminal = process.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && !opts.keep_terminal {
            return Err(ContainerError::NeedConsoleSocket);
        }
        let spec = self.saved_spec(id)?;
        let seccomp = crate::seccomp::plan(&spec, &self.seccomp_cache())?;
        let plan = InitPlan {
            ns: NsPlan::join_process(record.pid),
            kind: InitKind::Exec,
            process: crate::process::plan(process, opts.preserve_fds, opts.stdio, seccomp)?,
        };
        let cgroup = cgroup_of(&record)?.clone();
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let (parent, child) = sync::pair()?;
        // SAFETY: single-threaded; the child only runs init.
        let first = match unsafe { nix::unistd::fork() }.map_err(|errno| ContainerError::Sys { what: "fork", errno })? {
            nix::unistd::ForkResult::Child => {
                drop(parent);
                init::run(&plan, &child)
            }
            nix::unistd::ForkResult::Parent { child: pid } => pid.as_raw(),
        };
        drop(child);
        let mut pids = vec![first];
        let result = (|| {
            cgroup.add_process(first)?;
            parent.send(&Msg::Continue)?;
            let pid = match parent.recv()? {
                Some(Msg::Pid(p)) => p,
                Some(Msg::Error(e)) => return Err(ContainerError::Init(e)),
                Some(other) => return Err(SyncError::Unexpected { got: other, expected: "exec pid" }.into()),
                None => return Err(ContainerError::InitDied(describe_wait(first))),
            };
            if pid != first {
                pids.push(pid);
                parent.send(&Msg::Continue)?;
                let _ = nix::sys::wait::waitpid(Pid::from_raw(first), None);
            }
            let mut terminal_fd = None;
            loop {
                match parent.recv()? {
                    Some(Msg::Terminal) => {
                        let master = parent.recv_fd()?;
                        match &opts.console_socket {
                            Some(sock) => console::send_to_socket(sock, &master)?,
                            None => terminal_fd = Some(master),
                        }
                    }
                    Some(Msg::Error(e)) => {
                        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
                        return Err(ContainerError::Init(e));
                    }
                    Some(other) => return Err(SyncError::Unexpected { got: other, expected: "exec" }.into()),
                    None => break,
                }
            }
            if let Some(p) = &opts.pid_file {
                write_pid_file(p, pid)?;
            }
            Ok(Created { pid, terminal: terminal_fd })
        })();
        if result.is_err() {
            for &p in pids.iter().rev() {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
            }
        }
        result
    }
}

fn cgroup_of(record: &Record) -> Result<&Cgroup, ContainerError> {
    record.cgroup.as_ref().ok_or_else(|| ContainerError::Status {
        id: record.id.clone(),
        status: Status::Creating,
        action: "use its cgroup (not created yet)",
    })
}

/// Signal init through a pidfd, so a recycled pid is never hit.
fn signal_init(record: &Record, signal: Signal) -> Result<(), ContainerError> {
    // SAFETY: pidfd_open takes a pid and flags, returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, record.pid, 0) };
    if fd < 0 {
        return Err(ContainerError::Sys { what: "open init pidfd", errno: nix::Error::last() });
    }
    // SAFETY: fresh fd from the kernel.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    if !state::process_alive(record.pid, record.pid_start_time) {
        return Err(ContainerError::Status { id: record.id.clone(), status: Status::Stopped, action: "kill" });
    }
    // SAFETY: pidfd_send_signal with a valid pidfd and no siginfo.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signal as libc::c_int, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if r != 0 {
        return Err(ContainerError::Sys { what: "signal init", errno: nix::Error::last() });
    }
    Ok(())
}

fn report(r: Record, status: Status) -> StateReport {
    StateReport {
        oci_version: OCI_VERSION.to_owned(),
        id: r.id,
        pid: if status == Status::Stopped { 0 } else { r.pid },
        status,
        bundle: r.bundle,
        rootfs: r.rootfs,
        created: r.created,
        owner: r.owner,
        annotations: r.annotations,
    }
}
