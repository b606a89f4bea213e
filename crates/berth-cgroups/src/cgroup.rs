//! One container's cgroup across every hierarchy of the host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::bpf::{CgroupDir, Program};
use crate::fs::{self, Files, Kernel};
use crate::hierarchy::{Controller, Hierarchy, Mode, Placement};
use crate::path::CgroupPath;
use crate::resources::{self, ApplyError, Dirs};
use crate::stats::{self, Stats, StatsError};
use crate::{ErrorKind, devices};

/// How long freeze and thaw wait for the kernel to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `destroy` retries busy cgroups while their last processes exit
/// (once for the whole cgroup, not per hierarchy).
const DESTROY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("create cgroup {}: {source}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    #[error("add process {pid} to cgroup {}: {source}", path.display())]
    AddProcess { pid: i32, path: PathBuf, source: std::io::Error },
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("write {value:?} to {}: {source}", path.display())]
    Write { path: PathBuf, value: String, source: std::io::Error },
    #[error("cgroup {path}: no {controller} controller on this host")]
    NoController { path: CgroupPath, controller: Controller },
    #[error("cgroup {}: still not {state} after {} ms", path.display(), timeout.as_millis())]
    FreezeTimeout { path: PathBuf, state: FreezerState, timeout: Duration },
    #[error("send signal {signal} to process {pid}: {source}")]
    Signal { pid: i32, signal: i32, source: std::io::Error },
    #[error("remove cgroup {path}: {}", list(failures))]
    Remove { path: CgroupPath, failures: Vec<(PathBuf, std::io::Error)> },
}

fn list(failures: &[(PathBuf, std::io::Error)]) -> String {
    failures.iter().map(|(p, e)| format!("{}: {e}", p.display())).collect::<Vec<_>>().join("; ")
}

impl CgroupError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CgroupError::Create { source, .. }
            | CgroupError::AddProcess { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Signal { source, .. } => crate::io_kind(source),
            CgroupError::NoController { .. } => ErrorKind::Unsupported,
            CgroupError::FreezeTimeout { .. } => ErrorKind::Busy,
            CgroupError::Remove { failures, .. } => {
                failures.first().map_or(ErrorKind::System, |(_, e)| crate::io_kind(e))
            }
        }
    }
}

/// The freezer's state, for `state`'s "paused".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezerState {
    Thawed,
    /// Asked to freeze, not all processes frozen yet.
    Freezing,
    Frozen,
}

impl std::fmt::Display for FreezerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FreezerState::Thawed => "thawed",
            FreezerState::Freezing => "freezing",
            FreezerState::Frozen => "frozen",
        })
    }
}

/// What the runtime mounts at the container's `/sys/fs/cgroup`, all
/// read-only, so that a root process in the container cannot raise its own
/// limits.
///
/// With `tmpfs` (v1 and hybrid hosts) the runtime mounts a tmpfs at
/// `/sys/fs/cgroup`, bind-mounts each of `mounts` at its destination below it
/// and remounts each bind read-only, makes `symlinks`, then remounts the tmpfs
/// read-only. Without (v2 hosts), the single mount goes at `/sys/fs/cgroup`
/// itself (destination `""`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub tmpfs: bool,
    pub mounts: Vec<CgroupMount>,
    pub symlinks: Vec<CgroupSymlink>,
}

/// The host directory of this container's cgroup in one hierarchy, and the
/// directory below the container's `/sys/fs/cgroup` to bind it at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMount {
    pub source: PathBuf,
    /// `memory`, `cpu,cpuacct`, `systemd`, `unified`; `""` for the v2 root.
    pub destination: String,
}

/// A link below the container's `/sys/fs/cgroup`: `cpu` → `cpu,cpuacct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSymlink {
    pub link: String,
    pub target: String,
}

/// One container's cgroup: a directory named by one [`CgroupPath`] in every
/// mounted hierarchy (all v1 ones, as runc does, and the unified one).
///
/// # Lifecycle
///
/// 1. [`Cgroup::create`] makes the directories, and any missing parents; on
///    v1 it fills `cpuset.cpus`/`cpuset.mems` of new cpuset directories from
///    their parent (a new v1 cpuset is empty, and no task can join an empty
///    cpuset); on v2 it enables the controllers berth manages there in
///    `cgroup.subtree_control` of every level above. It remembers which
///    directories it made: those, and only those, are its to remove.
/// 2. [`Cgroup::apply`] writes `linux.resources`: limits, device rules (v1
///    lists, or a v2 eBPF program), hugetlb, the v2 `unified` map. Call it
///    again to update. When it fails during container creation, call
///    [`Cgroup::destroy`]: that leaves nothing behind.
/// 3. [`Cgroup::add_process`] moves the container's init into every
///    directory. Do it after `apply` and before the process runs user code,
///    so no limit is ever missing.
/// 4. [`Cgroup::freeze`] / [`Cgroup::thaw`] pause and resume;
///    [`Cgroup::freezer_state`] reads it back.
/// 5. [`Cgroup::stats`], [`Cgroup::procs`], [`Cgroup::pids_recursive`] read.
/// 6. [`Cgroup::kill_all`] signals every process (frozen first so none can
///    fork away), for `kill --all` and `delete --force`.
/// 7. [`Cgroup::destroy`] removes the directories `create` made, deepest
///    first, retrying briefly while the last processes exit; a parent that
///    is still in use, or that existed before, stays.
///
/// A `Cgroup` is plain data (serde): the runtime stores it with the
/// container's state so that a later process (`berth-runtime delete`) can
/// destroy exactly what `create` made. [`Cgroup::open`] makes a handle to an
/// existing cgroup that owns nothing (its `destroy` removes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    hierarchy: Hierarchy,
    path: CgroupPath,
    /// Directories `create` made, top-down in each hierarchy.
    owned: Vec<PathBuf>,
}

impl Cgroup {
    /// Creates the cgroup's directories (step 1 of the lifecycle). A
    /// directory that already exists is used, not owned. On failure nothing
    /// that was made stays.
    pub fn create(hierarchy: Hierarchy, path: CgroupPath) -> Result<Cgroup, CgroupError> {
        let mut cg = Cgroup { hierarchy, path, owned: Vec::new() };
        if let Err(e) = cg.make_dirs() {
            if let Err(undo) = cg.remove_owned() {
                tracing::warn!("undo cgroup creation: {undo}");
            }
            return Err(e);
        }
        Ok(cg)
    }

    /// A handle to an existing cgroup, for reading, freezing, signalling and
    /// adding processes. It owns no directory.
    pub fn open(hierarchy: Hierarchy, path: CgroupPath) -> Cgroup {
        Cgroup { hierarchy, path, owned: Vec::new() }
    }

    pub fn path(&self) -> &CgroupPath {
        &self.path
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The directories `create` made.
    pub fn owned(&self) -> &[PathBuf] {
        &self.owned
    }

    /// This cgroup's directory in every hierarchy: v1 ones first, then the
    /// unified one.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let v1 = self.hierarchy.v1_mounts().iter().map(|m| m.mount_point.join(self.path.relative()));
        v1.chain(self.unified_dir()).collect()
    }

    /// The directory in the unified hierarchy, if the host has one (for
    /// `clone3(CLONE_INTO_CGROUP)`).
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.hierarchy.unified().map(|u| u.mount_point.join(self.path.relative()))
    }

    /// The directory where `controller`'s files are, and whether it is v2.
    pub fn controller_dir(&self, controller: Controller) -> Option<(PathBuf, bool)> {
        match self.hierarchy.placement(controller)? {
            Placement::V1(i) => Some((self.hierarchy.v1_mounts()[i].mount_point.join(self.path.relative()), false)),
            Placement::Unified => self.unified_dir().map(|d| (d, true)),
        }
    }

    fn resource_dirs(&self) -> Dirs {
        let controllers =
            Controller::ALL.iter().filter_map(|c| self.controller_dir(*c).map(|(d, v2)| (*c, d, v2))).collect();
        Dirs { controllers, unified: self.unified_dir() }
    }

    fn make_dirs(&mut self) -> Result<(), CgroupError> {
        let rel = self.path.relative().to_owned();
        for m in self.hierarchy.v1_mounts() {
            let first_new = self.owned.len();
            mkdir_p(&m.mount_point, &m.mount_point.join(&rel), &mut self.owned)?;
            if m.controllers.contains(&Controller::Cpuset) && self.owned.len() > first_new {
                fill_cpusets(&m.mount_point, &self.owned[first_new..])?;
            }
        }
        if let Some(u) = self.hierarchy.unified() {
            mkdir_p(&u.mount_point, &u.mount_point.join(&rel), &mut self.owned)?;
            // On a pure v2 host every controller lives here and must be
            // offered down to the container. On a hybrid host the unified
            // hierarchy is shared with other tools (crun refuses to run when
            // its root enables controllers), so a v2-only controller is
            // enabled only when a container's resources use it (`apply`).
            if self.hierarchy.mode() == Mode::Unified {
                self.enable_unified(&self.hierarchy.unified_only_controllers(), &Kernel)
                    .map_err(|(path, value, source)| CgroupError::Write { path, value, source })?;
            }
        }
        Ok(())
    }

    /// Enable `controllers` in `cgroup.subtree_control` at every level above
    /// the container's cgroup, from the root down: a controller is only
    /// offered to a cgroup whose parent enabled it. Writing an already
    /// enabled one is a no-op.
    fn enable_unified(&self, controllers: &[Controller], files: &dyn Files) -> Result<(), (PathBuf, String, std::io::Error)> {
        let Some(u) = self.hierarchy.unified() else { return Ok(()) };
        let enable: Vec<String> = controllers.iter().filter_map(|c| c.v2_name()).map(|n| format!("+{n}")).collect();
        if enable.is_empty() {
            return Ok(());
        }
        let value = enable.join(" ");
        let mut dir = u.mount_point.clone();
        for c in self.path.components() {
            let file = dir.join("cgroup.subtree_control");
            files.write(&file, &value).map_err(|e| (file, value.clone(), e))?;
            dir.push(c);
        }
        Ok(())
    }

    /// Writes `resources` (step 2 of the lifecycle).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), ApplyError> {
        self.apply_with(resources, &Kernel)
    }

    fn apply_with(&self, resources: &LinuxResources, files: &dyn Files) -> Result<(), ApplyError> {
        // Device rules are checked before anything is written.
        let rules = resources.devices().as_deref().map(devices::normalize).transpose()?;
        if self.hierarchy.mode() == Mode::Hybrid
            && resources.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
            && self.hierarchy.placement(Controller::Hugetlb) == Some(crate::hierarchy::Placement::Unified)
        {
            self.enable_unified(&[Controller::Hugetlb], files).map_err(|(path, value, source)| ApplyError::Write {
                field: "linux.resources.hugepageLimits",
                path,
                value,
                source,
            })?;
        }
        let dirs = self.resource_dirs();
        resources::apply(&dirs, resources, files)?;
        if let Some(rules) = rules
            && let Some(dir) = resources::apply_devices(&dirs, &rules, files)?
        {
            // The new program goes on before the old ones come off, so the
            // cgroup is never without one.
            let program = Program::load(&devices::program(&rules))?;
            let target = CgroupDir::open(dir)?;
            let old = target.device_programs()?;
            program.attach(&target)?;
            for id in old {
                target.detach(id)?;
            }
        }
        Ok(())
    }

    /// Moves process `pid` (all its threads) into this cgroup in every
    /// hierarchy (step 3).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in self.dirs() {
            let path = dir.join("cgroup.procs");
            // EINVAL can mean the task is still being created (TASK_NEW);
            // it settles within moments.
            let mut tries = 0;
            loop {
                match fs::write(&path, &value) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && tries < 5 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(source) => return Err(CgroupError::AddProcess { pid, path, source }),
                }
            }
        }
        Ok(())
    }

    /// The directory whose `cgroup.procs` lists the container's processes:
    /// the freezer's (the one `kill_all` freezes), else the first.
    fn procs_dir(&self) -> Option<PathBuf> {
        self.controller_dir(Controller::Freezer).map(|(d, _)| d).or_else(|| self.dirs().into_iter().next())
    }

    /// The processes directly in this cgroup.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else { return Ok(Vec::new()) };
        let path = dir.join("cgroup.procs");
        fs::read_pids(&path).map_err(|source| CgroupError::Read { path, source })
    }

    /// The processes in this cgroup and in every cgroup below it.
    pub fn pids_recursive(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        if let Some(dir) = self.procs_dir() {
            collect_pids(&dir, &mut out)?;
        }
        Ok(out)
    }

    /// Freezes every process of the cgroup and waits until they are (step 4).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    /// Thaws the cgroup and waits until it is.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn freezer_dir(&self) -> Result<(PathBuf, bool), CgroupError> {
        self.controller_dir(Controller::Freezer)
            .ok_or(CgroupError::NoController { path: self.path.clone(), controller: Controller::Freezer })
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let (dir, v2) = self.freezer_dir()?;
        let want = if frozen { FreezerState::Frozen } else { FreezerState::Thawed };
        let (file, value) = match (v2, frozen) {
            (true, _) => ("cgroup.freeze", if frozen { "1" } else { "0" }),
            (false, true) => ("freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED"),
        };
        let path = dir.join(file);
        write(&path, value)?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(50);
        for round in 1u32.. {
            if read_freezer_state(&dir, v2)? == want {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                if frozen {
                    // Leave it running rather than half frozen.
                    let _ = self.set_frozen(false);
                }
                return Err(CgroupError::FreezeTimeout { path: dir, state: want, timeout: FREEZE_TIMEOUT });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
            // v1 freezes the tasks it can at each write; the rest (in
            // uninterruptible sleep) need asking again.
            if !v2 && frozen && round % 8 == 0 {
                write(&path, value)?;
            }
        }
        Ok(())
    }

    /// The freezer's state.
    pub fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        let (dir, v2) = self.freezer_dir()?;
        read_freezer_state(&dir, v2)
    }

    /// The resource usage (step 5).
    pub fn stats(&self) -> Result<Stats, StatsError> {
        stats::read_all(&self.resource_dirs())
    }

    /// Sends `signal` to every process in the cgroup and below, with the
    /// cgroup frozen meanwhile so none can fork past the signal (as runc's
    /// signalAllProcesses). Returns how many processes were signalled. On v2
    /// SIGKILL goes through `cgroup.kill` (Linux 5.14+), which is atomic.
    pub fn kill_all(&self, signal: i32) -> Result<usize, CgroupError> {
        if signal == libc::SIGKILL
            && let Ok((dir, true)) = self.freezer_dir()
        {
            let pids = self.pids_recursive()?;
            let path = dir.join("cgroup.kill");
            match fs::write(&path, "1") {
                Ok(()) => return Ok(pids.len()),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(source) => return Err(CgroupError::Write { path, value: "1".into(), source }),
            }
        }
        let frozen = match self.freeze() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("signalling {} unfrozen: {e}", self.path);
                false
            }
        };
        let result = self.signal_each(signal);
        if frozen {
            self.thaw()?;
        }
        result
    }

    fn signal_each(&self, signal: i32) -> Result<usize, CgroupError> {
        let mut sent = 0;
        for pid in self.pids_recursive()? {
            // SAFETY: kill(2) has no memory-safety preconditions.
            if unsafe { libc::kill(pid, signal) } == 0 {
                sent += 1;
                continue;
            }
            let source = std::io::Error::last_os_error();
            if source.raw_os_error() != Some(libc::ESRCH) {
                return Err(CgroupError::Signal { pid, signal, source });
            }
        }
        Ok(sent)
    }

    /// Removes the directories `create` made (step 7): deepest first, and in
    /// the container's own directories any sub-cgroups its processes made.
    /// Keeps going past failures and reports them all. Kill the processes
    /// first ([`Cgroup::kill_all`]); a directory still busy after a short
    /// wait is an error. A made parent that is in use by another container
    /// stays, silently.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if self.hierarchy.placement(Controller::Devices) == Some(Placement::Unified)
            && let Some(dir) = self.unified_dir().filter(|d| self.owned.contains(d))
        {
            // Removing the directory releases its programs too; detaching
            // first just frees them without waiting for the cgroup to go.
            if let Err(e) = detach_device_programs(&dir) {
                tracing::debug!("detach device programs of {}: {e}", self.path);
            }
        }
        self.remove_owned()
    }

    fn remove_owned(&self) -> Result<(), CgroupError> {
        let leaves = self.dirs();
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        let mut failures = Vec::new();
        for dir in self.owned.iter().rev() {
            if leaves.contains(dir) {
                remove_tree(dir, deadline, &mut failures);
            } else {
                match std::fs::remove_dir(dir) {
                    Ok(()) => {}
                    // Another container's cgroup lives here now.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY | libc::ENOENT)) => {}
                    Err(e) => failures.push((dir.clone(), e)),
                }
            }
        }
        if failures.is_empty() { Ok(()) } else { Err(CgroupError::Remove { path: self.path.clone(), failures }) }
    }

    /// What the runtime mounts read-only at the container's `/sys/fs/cgroup`.
    pub fn container_view(&self) -> ContainerView {
        let rel = self.path.relative();
        if self.hierarchy.mode() == Mode::Unified {
            let mounts = self
                .unified_dir()
                .map(|source| CgroupMount { source, destination: String::new() })
                .into_iter()
                .collect();
            return ContainerView { tmpfs: false, mounts, symlinks: Vec::new() };
        }
        let mut view = ContainerView { tmpfs: true, mounts: Vec::new(), symlinks: Vec::new() };
        for m in self.hierarchy.v1_mounts() {
            let destination = base_name(&m.mount_point).unwrap_or_else(|| {
                m.name
                    .clone()
                    .unwrap_or_else(|| m.controllers.iter().map(|c| c.v1_name()).collect::<Vec<_>>().join(","))
            });
            if m.controllers.len() > 1 {
                for c in &m.controllers {
                    if c.v1_name() != destination {
                        view.symlinks.push(CgroupSymlink { link: c.v1_name().to_owned(), target: destination.clone() });
                    }
                }
            }
            view.mounts.push(CgroupMount { source: m.mount_point.join(rel), destination });
        }
        if let Some(u) = self.hierarchy.unified() {
            let destination = base_name(&u.mount_point).unwrap_or_else(|| "unified".to_owned());
            view.mounts.push(CgroupMount { source: u.mount_point.join(rel), destination });
        }
        view
    }
}

fn detach_device_programs(dir: &Path) -> Result<(), crate::bpf::BpfError> {
    let target = match CgroupDir::open(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for id in target.device_programs()? {
        target.detach(id)?;
    }
    Ok(())
}

fn base_name(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read { path: path.to_owned(), source })
}

/// Makes `dir` and its missing parents up to (not including) `root`, pushing
/// each made directory on `owned`, top first. One mkdir when only the leaf
/// is missing.
fn mkdir_p(root: &Path, dir: &Path, owned: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Create { path: dir.to_owned(), source };
    match std::fs::create_dir(dir) {
        Ok(()) => owned.push(dir.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir.parent().filter(|p| p.starts_with(root) && *p != root).ok_or_else(|| err(e))?;
            mkdir_p(root, parent, owned)?;
            match std::fs::create_dir(dir) {
                Ok(()) => owned.push(dir.to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e)),
            }
        }
        Err(e) => return Err(err(e)),
    }
    Ok(())
}

/// Copies `cpuset.cpus` and `cpuset.mems` into the new v1 cpuset directories
/// `made` (top-down) from the nearest parent that has them; a parent that has
/// none (made by someone else, never filled) is filled the same way first.
fn fill_cpusets(root: &Path, made: &[PathBuf]) -> Result<(), CgroupError> {
    let Some(parent) = made.first().and_then(|d| d.parent()) else { return Ok(()) };
    let (cpus, mems) = cpuset_of(root, parent)?;
    for dir in made {
        write(&dir.join("cpuset.cpus"), &cpus)?;
        write(&dir.join("cpuset.mems"), &mems)?;
    }
    Ok(())
}

fn cpuset_of(root: &Path, dir: &Path) -> Result<(String, String), CgroupError> {
    let cpus = read(&dir.join("cpuset.cpus"))?.trim().to_owned();
    let mems = read(&dir.join("cpuset.mems"))?.trim().to_owned();
    if (!cpus.is_empty() && !mems.is_empty()) || dir == root {
        return Ok((cpus, mems));
    }
    let parent = dir.parent().unwrap_or(root);
    let (pc, pm) = cpuset_of(root, parent)?;
    let (cpus, mems) = (if cpus.is_empty() { pc } else { cpus }, if mems.is_empty() { pm } else { mems });
    write(&dir.join("cpuset.cpus"), &cpus)?;
    write(&dir.join("cpuset.mems"), &mems)?;
    Ok((cpus, mems))
}

fn read_freezer_state(dir: &Path, v2: bool) -> Result<FreezerState, CgroupError> {
    if v2 {
        let asked = read(&dir.join("cgroup.freeze"))?.trim() == "1";
        let frozen = stats::parse_flat_keyed(&read(&dir.join("cgroup.events"))?).get("frozen") == Some(&1);
        return Ok(match (asked, frozen) {
            (true, true) => FreezerState::Frozen,
            (true, false) => FreezerState::Freezing,
            (false, _) => FreezerState::Thawed,
        });
    }
    Ok(match read(&dir.join("freezer.state"))?.trim() {
        "FROZEN" => FreezerState::Frozen,
        "FREEZING" => FreezerState::Freezing,
        _ => FreezerState::Thawed,
    })
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    out.extend(fs::read_pids(&path).map_err(|source| CgroupError::Read { path, source })?);
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read { path: dir.to_owned(), source })?;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// Removes `dir` and the cgroups below it, deepest first, retrying EBUSY
/// until `deadline` while processes finish exiting.
fn remove_tree(dir: &Path, deadline: Instant, failures: &mut Vec<(PathBuf, std::io::Error)>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), deadline, failures);
            }
        }
    }
    let mut pause = Duration::from_micros(100);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                failures.push((dir.to_owned(), e));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fake::Recorder;
    use crate::hierarchy::tests::{HYBRID, LEGACY, UNIFIED, fake_root};
    use oci_spec::runtime::{
        LinuxDeviceCgroupBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxRdmaBuilder,
        LinuxResourcesBuilder,
    };

    fn path(p: &str) -> CgroupPath {
        CgroupPath::new(p).unwrap()
    }

    /// cpuset roots need their files for `create` to copy them.
    fn seed_cpuset(h: &Hierarchy) {
        for m in h.v1_mounts() {
            if m.controllers.contains(&Controller::Cpuset) {
                std::fs::write(m.mount_point.join("cpuset.cpus"), "0-3\n").unwrap();
                std::fs::write(m.mount_point.join("cpuset.mems"), "0\n").unwrap();
            }
        }
    }

    /// Every directory below `root`, relative, sorted.
    fn tree(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    out.push(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
                    walk(root, &e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn failed_create_rolls_back_every_dir() {
        let (root, h) = fake_root(HYBRID, "hugetlb\n");
        seed_cpuset(&h);
        let before = tree(root.path());
        // A new cpuset directory in a temp dir has no cpuset.cpus (the kernel
        // would make one), so create fails at the third hierarchy, after it
        // made directories in cpu and cpuacct.
        let e = Cgroup::create(h, path("/berth/c1")).unwrap_err();
        assert!(e.to_string().contains("cpuset/berth/cpuset.cpus"), "{e}");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(tree(root.path()), before);
    }

    #[test]
    fn create_and_destroy_own_exactly_what_was_made() {
        // A v1 host without cpuset, so the temp dir needs no kernel files.
        let mountinfo: String = LEGACY.lines().filter(|l| !l.contains("cpuset")).map(|l| format!("{l}\n")).collect();
        let (root, h) = fake_root(&mountinfo, "");
        let cg_root = root.path().join("sys/fs/cgroup");
        // A parent that exists already in one hierarchy: used, never removed.
        std::fs::create_dir(cg_root.join("memory/berth")).unwrap();
        let before = tree(root.path());
        let cg = Cgroup::create(h, path("/berth/c1")).unwrap();
        let dirs = cg.dirs();
        assert_eq!(dirs.len(), 10);
        assert!(dirs.iter().all(|d| d.is_dir()));
        assert!(dirs.contains(&cg_root.join("cpu,cpuacct/berth/c1")));
        assert!(!cg.owned().contains(&cg_root.join("memory/berth")));
        assert!(cg.owned().contains(&cg_root.join("memory/berth/c1")));
        assert!(cg.owned().contains(&cg_root.join("pids/berth")));
        // Stored and read back, as `delete` in a later process does.
        let cg: Cgroup = serde_json::from_str(&serde_json::to_string(&cg).unwrap()).unwrap();
        // A sub-cgroup made inside the container's own cgroup goes too.
        std::fs::create_dir(cg_root.join("pids/berth/c1/inner")).unwrap();
        cg.destroy().unwrap();
        assert_eq!(tree(root.path()), before);
        cg.destroy().unwrap();
        // An opened handle owns nothing.
        let cg = Cgroup::create(cg.hierarchy().clone(), path("/berth/c1")).unwrap();
        Cgroup::open(cg.hierarchy().clone(), path("/berth/c1")).destroy().unwrap();
        assert!(cg_root.join("pids/berth/c1").is_dir());
        cg.destroy().unwrap();
    }

    #[test]
    fn unified_enables_controllers_on_the_way_down() {
        let (root, h) = fake_root(UNIFIED, "memory pids\n");
        let u = root.path().join("sys/fs/cgroup");
        std::fs::write(u.join("cgroup.subtree_control"), "").unwrap();
        let before = tree(root.path());
        // The root's subtree_control is written; the new "berth" level has
        // none in a temp dir, so create fails there and rolls back.
        let e = Cgroup::create(h, path("/berth/a")).unwrap_err();
        assert!(e.to_string().contains("berth/cgroup.subtree_control"), "{e}");
        assert_eq!(std::fs::read_to_string(u.join("cgroup.subtree_control")).unwrap(), "+memory +pids");
        assert_eq!(tree(root.path()), before);
    }

    #[test]
    fn destroy_leaves_a_made_parent_that_another_cgroup_uses() {
        let (root, h) = fake_root(UNIFIED, "");
        let u = root.path().join("sys/fs/cgroup");
        let a = Cgroup::create(h.clone(), path("/berth/a")).unwrap();
        let b = Cgroup::create(h, path("/berth/b")).unwrap();
        assert_eq!(a.owned(), [u.join("berth"), u.join("berth/a")]);
        assert_eq!(b.owned(), [u.join("berth/b")]);
        // rmdir of "berth" fails while b is in it (ENOTEMPTY here, EBUSY on
        // cgroupfs): a leaves it.
        a.destroy().unwrap();
        assert!(u.join("berth/b").is_dir());
        b.destroy().unwrap();
        assert!(u.join("berth").is_dir(), "not b's to remove");
    }

    #[test]
    fn apply_routes_hybrid_controllers() {
        let (_root, h) = fake_root(HYBRID, "hugetlb\n");
        let cg = Cgroup::open(h, path("/berth/c1"));
        let f = Recorder::with(&["memory.limit_in_bytes", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "pids.max", "cgroup.subtree_control"]);
        let res = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(1 << 20).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default().page_size("2MB").limit(0).build().unwrap()])
            .build()
            .unwrap();
        cg.apply_with(&res, &f).unwrap();
        let w: Vec<String> = f
            .writes
            .borrow()
            .iter()
            .map(|(p, v)| format!("{} {v}", p.to_string_lossy().split("cgroup/").nth(1).unwrap()))
            .collect();
        assert_eq!(
            w,
            [
                "unified/cgroup.subtree_control +hugetlb",
                "unified/berth/cgroup.subtree_control +hugetlb",
                "memory/berth/c1/memory.limit_in_bytes 1048576",
                "pids/berth/c1/pids.max 5",
                "unified/berth/c1/hugetlb.2MB.max 0",
                "unified/berth/c1/hugetlb.2MB.rsvd.max 0",
            ]
        );
        let res = LinuxResourcesBuilder::default()
            .rdma(
                [("mlx5_0".to_owned(), LinuxRdmaBuilder::default().hca_handles(2u32).build().unwrap())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .build()
            .unwrap();
        let e = cg.apply_with(&res, &f).unwrap_err();
        assert_eq!(e.to_string(), "linux.resources.rdma: the rdma cgroup controller is not available on this host");
    }

    #[test]
    fn apply_checks_device_rules_before_writing() {
        let (_root, h) = fake_root(LEGACY, "");
        let cg = Cgroup::open(h, path("/c"));
        let f = Recorder::with(&["pids.max", "devices.allow", "devices.deny"]);
        let res = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .devices(vec![LinuxDeviceCgroupBuilder::default().allow(true).access("rwx").build().unwrap()])
            .build()
            .unwrap();
        assert!(cg.apply_with(&res, &f).is_err());
        assert!(f.names().is_empty());
    }

    #[test]
    fn container_views() {
        let (root, h) = fake_root(LEGACY, "");
        let v = Cgroup::open(h, path("/berth/c1")).container_view();
        assert!(v.tmpfs);
        let cpu = v.mounts.iter().find(|m| m.destination == "cpu,cpuacct").unwrap();
        assert_eq!(cpu.source, root.path().join("sys/fs/cgroup/cpu,cpuacct/berth/c1"));
        assert!(v.mounts.iter().any(|m| m.destination == "systemd"));
        assert_eq!(
            v.symlinks,
            [
                CgroupSymlink { link: "cpu".into(), target: "cpu,cpuacct".into() },
                CgroupSymlink { link: "cpuacct".into(), target: "cpu,cpuacct".into() },
                CgroupSymlink { link: "net_cls".into(), target: "net_cls,net_prio".into() },
                CgroupSymlink { link: "net_prio".into(), target: "net_cls,net_prio".into() },
            ]
        );
        let (_r, h) = fake_root(HYBRID, "hugetlb\n");
        let v = Cgroup::open(h, path("/c")).container_view();
        assert_eq!(v.mounts.len(), 10);
        assert_eq!(v.mounts[9].destination, "unified");
        assert!(v.symlinks.is_empty());
        let (root, h) = fake_root(UNIFIED, "memory\n");
        let v = Cgroup::open(h, path("/c")).container_view();
        assert_eq!(
            v,
            ContainerView {
                tmpfs: false,
                mounts: vec![CgroupMount { source: root.path().join("sys/fs/cgroup/c"), destination: String::new() }],
                symlinks: vec![]
            }
        );
    }

    #[test]
    fn freezer_state_from_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cgroup.freeze"), "1\n").unwrap();
        std::fs::write(tmp.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(read_freezer_state(tmp.path(), true).unwrap(), FreezerState::Freezing);
        std::fs::write(tmp.path().join("freezer.state"), "FROZEN\n").unwrap();
        assert_eq!(read_freezer_state(tmp.path(), false).unwrap(), FreezerState::Frozen);
        let e = read_freezer_state(&tmp.path().join("x"), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn procs_and_recursive_pids() {
        let (_root, h) = fake_root(UNIFIED, "");
        let cg = Cgroup::open(h, path("/c"));
        let dir = cg.unified_dir().unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "10\n11\n").unwrap();
        std::fs::write(dir.join("sub/cgroup.procs"), "12\n").unwrap();
        assert_eq!(cg.procs().unwrap(), [10, 11]);
        let mut all = cg.pids_recursive().unwrap();
        all.sort();
        assert_eq!(all, [10, 11, 12]);
        let e = Cgroup::open(cg.hierarchy().clone(), path("/gone")).procs().unwrap_err();
        assert!(e.to_string().starts_with("read "), "{e}");
    }
}
