//! Which cgroup filesystems the host has, and where each controller lives.
//!
//! Read once from mountinfo (one file) plus the unified hierarchy's
//! `cgroup.controllers` (one more), then kept: a [`Hierarchy`] is plain data,
//! cheap to clone and serializable, so the runtime can store it with the
//! container's state instead of reading mountinfo again.
//!
//! A controller is managed where the host bound it: in its v1 hierarchy when
//! one is mounted, otherwise in the unified (v2) hierarchy when that lists it
//! in `cgroup.controllers`. On a hybrid host this is how a controller that no
//! v1 hierarchy holds (often `hugetlb`) is still managed: through v2.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ErrorKind;

/// Errors of hierarchy detection and of `/proc/<pid>/cgroup` parsing.
#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("no cgroup filesystem is mounted (mountinfo lists neither cgroup nor cgroup2)")]
    NoCgroupMounts,
    #[error("malformed mountinfo line {line}: {text:?}")]
    Mountinfo { line: usize, text: String },
    #[error("malformed /proc/<pid>/cgroup line {line}: {text:?}")]
    ProcCgroup { line: usize, text: String },
}

impl HierarchyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            HierarchyError::Read { source, .. } => crate::io_kind(source),
            HierarchyError::NoCgroupMounts => ErrorKind::Unsupported,
            HierarchyError::Mountinfo { .. } | HierarchyError::ProcCgroup { .. } => ErrorKind::System,
        }
    }
}

/// The controllers berth knows. Named hierarchies without controllers (such
/// as `name=systemd`) are kept as [`V1Mount::name`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Devices,
    Freezer,
    /// `blkio` on v1, `io` on v2.
    Blkio,
    Pids,
    Hugetlb,
    NetCls,
    NetPrio,
    PerfEvent,
    Rdma,
    Misc,
}

impl Controller {
    pub const ALL: [Controller; 14] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Devices,
        Controller::Freezer,
        Controller::Blkio,
        Controller::Pids,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::PerfEvent,
        Controller::Rdma,
        Controller::Misc,
    ];

    /// The name in v1 mount options and `/proc/<pid>/cgroup`.
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Blkio => "blkio",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
        }
    }

    /// The name in v2 `cgroup.controllers`, for those v2 has as controllers.
    /// `cpuacct`, `freezer` and `devices` are core v2 features instead
    /// (`cpu.stat`, `cgroup.freeze`, eBPF programs).
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Cpu => Some("cpu"),
            Controller::Cpuset => Some("cpuset"),
            Controller::Memory => Some("memory"),
            Controller::Blkio => Some("io"),
            Controller::Pids => Some("pids"),
            Controller::Hugetlb => Some("hugetlb"),
            Controller::PerfEvent => Some("perf_event"),
            Controller::Rdma => Some("rdma"),
            Controller::Misc => Some("misc"),
            Controller::Cpuacct
            | Controller::Devices
            | Controller::Freezer
            | Controller::NetCls
            | Controller::NetPrio => None,
        }
    }

    fn from_v1_name(s: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.v1_name() == s)
    }

    fn from_v2_name(s: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.v2_name() == Some(s))
    }
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.v1_name())
    }
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Mount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mount_point: PathBuf,
    /// The controllers bound to it, e.g. `[Cpu, Cpuacct]`.
    pub controllers: Vec<Controller>,
    /// The name of a named hierarchy (`systemd` for `name=systemd`).
    pub name: Option<String>,
}

/// The mounted unified (v2) hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedMount {
    /// Where it is mounted: `/sys/fs/cgroup` on a v2 host, usually
    /// `/sys/fs/cgroup/unified` on a hybrid one.
    pub mount_point: PathBuf,
    /// The controllers its root offers (its `cgroup.controllers`).
    pub controllers: Vec<Controller>,
}

/// How the host's cgroups are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// v1 hierarchies only.
    Legacy,
    /// v1 hierarchies plus a unified one (which may hold some controllers).
    Hybrid,
    /// The unified hierarchy only.
    Unified,
}

/// Where a controller is managed: the index of a v1 mount, or the unified
/// hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    V1(usize),
    Unified,
}

/// The host's cgroup filesystems. See the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    v1: Vec<V1Mount>,
    unified: Option<UnifiedMount>,
}

impl Hierarchy {
    /// The hierarchy this process sees: `/proc/self/mountinfo`, paths as they
    /// are.
    pub fn detect() -> Result<Hierarchy, HierarchyError> {
        let path = Path::new("/proc/self/mountinfo");
        let text =
            std::fs::read_to_string(path).map_err(|source| HierarchyError::Read { path: path.to_owned(), source })?;
        Hierarchy::from_mountinfo(&text, Path::new("/"))
    }

    /// Parses mountinfo text. Mount points are taken as paths under
    /// `fs_root` (`/` on a real host; a temporary directory in tests), and the
    /// unified hierarchy's `cgroup.controllers` is read from there.
    pub fn from_mountinfo(text: &str, fs_root: &Path) -> Result<Hierarchy, HierarchyError> {
        let mut v1: Vec<V1Mount> = Vec::new();
        let mut unified: Option<UnifiedMount> = None;
        let mut mounts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let parsed = parse_cgroup_mount_line(line)
                .ok_or_else(|| HierarchyError::Mountinfo { line: i + 1, text: line.to_owned() })?;
            mounts.extend(parsed);
        }
        // A hierarchy mounted twice is the same tree seen from two places: a
        // mount of its root (`/`) wins over a bind of a sub-tree, which is
        // used only when it is all there is (inside a container without a
        // cgroup namespace, where the sub-tree is the visible root).
        mounts.sort_by_key(|(_, m)| m.root != "/");
        for (fstype, mount) in mounts {
            let mount_point = rebase(fs_root, &mount.mount_point);
            match fstype {
                CgroupFs::V2 => {
                    if unified.is_none() {
                        let controllers = read_v2_controllers(&mount_point)?;
                        unified = Some(UnifiedMount { mount_point, controllers });
                    }
                }
                CgroupFs::V1 => {
                    let (controllers, name) = v1_options(mount.super_options);
                    if controllers.is_empty() && name.is_none() {
                        continue;
                    }
                    let seen = v1.iter().any(|m| {
                        m.controllers.iter().any(|c| controllers.contains(c)) || (name.is_some() && m.name == name)
                    });
                    if !seen {
                        v1.push(V1Mount { mount_point, controllers, name });
                    }
                }
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(HierarchyError::NoCgroupMounts);
        }
        Ok(Hierarchy { v1, unified })
    }

    /// A unified-only hierarchy mounted at `mount_point`, whatever else the
    /// host has: for hosts and containers that only use cgroup2, and for
    /// driving the v2 code on a hybrid host's `unified` mount.
    pub fn unified_at(mount_point: &Path) -> Result<Hierarchy, HierarchyError> {
        let controllers = read_v2_controllers(mount_point)?;
        Ok(Hierarchy {
            v1: Vec::new(),
            unified: Some(UnifiedMount { mount_point: mount_point.to_owned(), controllers }),
        })
    }

    pub fn mode(&self) -> Mode {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, _) => Mode::Unified,
            (false, true) => Mode::Hybrid,
            (false, false) => Mode::Legacy,
        }
    }

    pub fn v1_mounts(&self) -> &[V1Mount] {
        &self.v1
    }

    pub fn unified(&self) -> Option<&UnifiedMount> {
        self.unified.as_ref()
    }

    /// Where `controller` is managed on this host, or `None` when nowhere.
    /// v2 core features (`freezer`, `devices`, `cpuacct`) are placed in the
    /// unified hierarchy when no v1 hierarchy has them.
    pub fn placement(&self, controller: Controller) -> Option<Placement> {
        if let Some(i) = self.v1.iter().position(|m| m.controllers.contains(&controller)) {
            return Some(Placement::V1(i));
        }
        let unified = self.unified.as_ref()?;
        let core = matches!(controller, Controller::Freezer | Controller::Devices | Controller::Cpuacct);
        (core || unified.controllers.contains(&controller)).then_some(Placement::Unified)
    }

    /// The v2 controllers to enable in `cgroup.subtree_control` on the way
    /// down to a container's cgroup: those the unified hierarchy offers and
    /// no v1 hierarchy holds.
    pub(crate) fn unified_only_controllers(&self) -> Vec<Controller> {
        let Some(u) = &self.unified else { return Vec::new() };
        u.controllers.iter().copied().filter(|c| self.placement(*c) == Some(Placement::Unified)).collect()
    }
}

enum CgroupFs {
    V1,
    V2,
}

struct MountLine<'a> {
    root: &'a str,
    mount_point: String,
    super_options: &'a str,
}

/// `None`: malformed; `Some(None)`: not a cgroup mount.
fn parse_cgroup_mount_line(line: &str) -> Option<Option<(CgroupFs, MountLine<'_>)>> {
    if line.trim().is_empty() {
        return Some(None);
    }
    let (pre, post) = line.split_once(" - ")?;
    let mut post = post.split(' ');
    let fstype = match post.next()? {
        "cgroup" => CgroupFs::V1,
        "cgroup2" => CgroupFs::V2,
        _ => return Some(None),
    };
    let _source = post.next()?;
    let super_options = post.next().unwrap_or("");
    let mut pre = pre.split(' ');
    let root = pre.nth(3)?;
    let mount_point = unescape_octal(pre.next()?);
    Some(Some((fstype, MountLine { root, mount_point, super_options })))
}

/// mountinfo writes space, tab, newline and backslash as `\040` etc.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn v1_options(super_options: &str) -> (Vec<Controller>, Option<String>) {
    let mut controllers = Vec::new();
    let mut name = None;
    for opt in super_options.split(',') {
        if let Some(n) = opt.strip_prefix("name=") {
            name = Some(n.to_owned());
        } else if let Some(c) = Controller::from_v1_name(opt) {
            controllers.push(c);
        }
    }
    (controllers, name)
}

fn rebase(fs_root: &Path, mount_point: &str) -> PathBuf {
    fs_root.join(mount_point.trim_start_matches('/'))
}

fn read_v2_controllers(mount_point: &Path) -> Result<Vec<Controller>, HierarchyError> {
    let path = mount_point.join("cgroup.controllers");
    let text = std::fs::read_to_string(&path).map_err(|source| HierarchyError::Read { path, source })?;
    Ok(text.split_whitespace().filter_map(Controller::from_v2_name).collect())
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id; 0 for the unified hierarchy.
    pub hierarchy_id: u32,
    /// Controllers and names of the hierarchy (`["cpu", "cpuacct"]`,
    /// `["name=systemd"]`); empty for the unified hierarchy.
    pub controllers: Vec<String>,
    /// The cgroup path relative to the hierarchy's root (as the process's
    /// cgroup namespace shows it).
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup` text: `id:controllers:path` lines.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, HierarchyError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = || HierarchyError::ProcCgroup { line: i + 1, text: line.to_owned() };
        let mut parts = line.splitn(3, ':');
        let id = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let ctls = parts.next().ok_or_else(bad)?;
        let path = parts.next().ok_or_else(bad)?;
        let controllers = if ctls.is_empty() { Vec::new() } else { ctls.split(',').map(str::to_owned).collect() };
        out.push(ProcCgroup { hierarchy_id: id, controllers, path: path.to_owned() });
    }
    Ok(out)
}

/// The path of `pid`'s cgroup in the hierarchy holding `controller` (a v1
/// name such as `memory` or `name=systemd`), or in the unified hierarchy for
/// `""`.
pub fn proc_cgroup_path<'a>(entries: &'a [ProcCgroup], controller: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(
            |e| if controller.is_empty() { e.hierarchy_id == 0 } else { e.controllers.iter().any(|c| c == controller) },
        )
        .map(|e| e.path.as_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This VM: v1 controllers mounted one by one, `name=systemd`, and a
    /// unified hierarchy holding only hugetlb.
    pub(crate) const HYBRID: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A classic systemd v1 host: comounted cpu,cpuacct and net_cls,net_prio,
    /// xattr option, no unified mount.
    pub(crate) const LEGACY: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,hugetlb
33 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
34 25 0:31 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,freezer
35 25 0:32 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,devices
36 25 0:33 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,blkio
37 25 0:34 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:21 - cgroup cgroup rw,cpuset
38 25 0:35 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:22 - cgroup cgroup rw,perf_event
";

    /// A v2-only host, plus a bind mount of a sub-tree that must be ignored.
    pub(crate) const UNIFIED: &str = "\
26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
90 26 0:24 /user.slice /mnt/my\\040cgroup rw,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    pub(crate) fn fake_root(mountinfo: &str, unified_controllers: &str) -> (tempfile::TempDir, Hierarchy) {
        let dir = tempfile::tempdir().unwrap();
        for line in mountinfo.lines() {
            if let Some(Some((fs, m))) = parse_cgroup_mount_line(line) {
                let p = rebase(dir.path(), &m.mount_point);
                std::fs::create_dir_all(&p).unwrap();
                if matches!(fs, CgroupFs::V2) {
                    std::fs::write(p.join("cgroup.controllers"), unified_controllers).unwrap();
                }
            }
        }
        let h = Hierarchy::from_mountinfo(mountinfo, dir.path()).unwrap();
        (dir, h)
    }

    #[test]
    fn hybrid_places_unmounted_v1_controllers_in_unified() {
        let (root, h) = fake_root(HYBRID, "hugetlb\n");
        assert_eq!(h.mode(), Mode::Hybrid);
        assert_eq!(h.v1_mounts().len(), 9);
        let mem = &h.v1_mounts()[h.v1_mounts().iter().position(|m| m.controllers == [Controller::Memory]).unwrap()];
        assert_eq!(mem.mount_point, root.path().join("sys/fs/cgroup/memory"));
        assert_eq!(h.v1_mounts()[8].name.as_deref(), Some("systemd"));
        assert!(h.v1_mounts()[8].controllers.is_empty());
        let u = h.unified().unwrap();
        assert_eq!(u.mount_point, root.path().join("sys/fs/cgroup/unified"));
        assert_eq!(u.controllers, [Controller::Hugetlb]);
        assert_eq!(h.placement(Controller::Hugetlb), Some(Placement::Unified));
        assert!(matches!(h.placement(Controller::Memory), Some(Placement::V1(_))));
        assert!(matches!(h.placement(Controller::Freezer), Some(Placement::V1(_))));
        assert_eq!(h.placement(Controller::Rdma), None);
        assert_eq!(h.unified_only_controllers(), [Controller::Hugetlb]);
    }

    #[test]
    fn legacy_keeps_comounts_together() {
        let (_root, h) = fake_root(LEGACY, "");
        assert_eq!(h.mode(), Mode::Legacy);
        let cpu = h.v1_mounts().iter().find(|m| m.controllers.contains(&Controller::Cpu)).unwrap();
        assert_eq!(cpu.controllers, [Controller::Cpu, Controller::Cpuacct]);
        assert!(cpu.mount_point.ends_with("sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h.placement(Controller::Cpu), h.placement(Controller::Cpuacct));
        assert_eq!(h.v1_mounts()[0].name.as_deref(), Some("systemd"));
        assert!(h.unified().is_none());
        assert_eq!(h.placement(Controller::Rdma), None);
        assert!(h.unified_only_controllers().is_empty());
    }

    #[test]
    fn unified_reads_controllers_and_ignores_sub_tree_binds() {
        let (root, h) = fake_root(UNIFIED, "cpuset cpu io memory hugetlb pids rdma misc\n");
        assert_eq!(h.mode(), Mode::Unified);
        let u = h.unified().unwrap();
        assert_eq!(u.mount_point, root.path().join("sys/fs/cgroup"));
        assert_eq!(u.controllers.len(), 8);
        assert_eq!(h.placement(Controller::Blkio), Some(Placement::Unified));
        assert_eq!(h.placement(Controller::Devices), Some(Placement::Unified));
        assert_eq!(h.placement(Controller::Freezer), Some(Placement::Unified));
        assert_eq!(h.placement(Controller::NetCls), None);
    }

    #[test]
    fn sub_tree_mounts_count_when_nothing_else_is_there() {
        // Inside a container without a cgroup namespace: the hierarchies are
        // binds of the container's own cgroup.
        let text = "\
700 699 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
701 699 0:33 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
";
        let (root, h) = fake_root(text, "");
        assert_eq!(h.v1_mounts().len(), 2);
        assert_eq!(h.v1_mounts()[0].mount_point, root.path().join("sys/fs/cgroup/memory"));
    }

    #[test]
    fn mountinfo_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = Hierarchy::from_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n", dir.path()).unwrap_err();
        assert!(matches!(err, HierarchyError::NoCgroupMounts));
        let err = Hierarchy::from_mountinfo("garbage\n", dir.path()).unwrap_err();
        assert_eq!(err.to_string(), "malformed mountinfo line 1: \"garbage\"");
        // cgroup2 mounted but its cgroup.controllers is missing.
        let err = Hierarchy::from_mountinfo(UNIFIED, dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("read "), "{err}");
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn octal_escapes_in_mount_points() {
        assert_eq!(unescape_octal("/mnt/my\\040cgroup"), "/mnt/my cgroup");
        assert_eq!(unescape_octal("/a\\134b"), "/a\\b");
        assert_eq!(unescape_octal("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn proc_cgroup_lines() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/user.slice/a:b\n";
        let e = parse_proc_cgroup(text).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(
            e[1],
            ProcCgroup { hierarchy_id: 4, controllers: vec!["memory".into()], path: "/process_api/abc".into() }
        );
        assert_eq!(proc_cgroup_path(&e, "cpuacct"), Some("/x"));
        assert_eq!(proc_cgroup_path(&e, "name=systemd"), Some("/"));
        assert_eq!(proc_cgroup_path(&e, ""), Some("/user.slice/a:b"));
        assert_eq!(proc_cgroup_path(&e, "pids"), None);
        let err = parse_proc_cgroup("x:memory:/\n").unwrap_err();
        assert_eq!(err.to_string(), "malformed /proc/<pid>/cgroup line 1: \"x:memory:/\"");
    }
}
