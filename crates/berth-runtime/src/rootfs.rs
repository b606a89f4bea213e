//! The container's root filesystem: the spec's mounts in order, a minimal
//! `/dev`, pivot_root, then masked and read-only paths.
//!
//! Planning is pure ([`plan_mounts`], [`plan_devices`]) and unit-tested; the
//! `apply_*` functions run in the container's init, in its new mount
//! namespace, before exec. Every destination is resolved inside the rootfs
//! with `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image can never point
//! a mount at the host (`/proc` → `/host/etc` style escapes), and the mount is
//! made on the resolved file descriptor (`/proc/self/fd/N`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use berth_sys::mount::{ParsedOptions, parse_options};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mounts[{index}] ({dest}): bind source {source_path}: {source}")]
    BindSource { index: usize, dest: PathBuf, source_path: PathBuf, source: std::io::Error },
    #[error("mounts[{index}] ({dest}): {errno} while mounting {kind} {source_path}")]
    Mount { index: usize, dest: PathBuf, kind: String, source_path: String, errno: nix::Error },
    #[error("{what} {path} in the rootfs: {errno}")]
    Resolve { what: &'static str, path: PathBuf, errno: nix::Error },
    #[error("make {path} a mount point with {flags:?}: {errno}")]
    Propagation { path: PathBuf, flags: MsFlags, errno: nix::Error },
    #[error("linux.devices {path}: {errno}")]
    Device { path: PathBuf, errno: nix::Error },
    #[error("pivot_root into {rootfs}: {step}: {errno}")]
    Pivot { rootfs: PathBuf, step: &'static str, errno: nix::Error },
    #[error("{list} {path}: {errno}")]
    Path { list: &'static str, path: PathBuf, errno: nix::Error },
    #[error("remount root read-only: {errno}")]
    ReadonlyRoot { errno: nix::Error },
}

/// Whether a mount destination must be a directory or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    Dir,
    File,
}

/// One spec mount, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Index in the spec's `mounts`, for error messages.
    pub index: usize,
    /// Absolute path inside the container.
    pub dest: PathBuf,
    pub kind: String,
    pub source: String,
    pub options: ParsedOptions,
    pub dest_kind: DestKind,
    /// `type: cgroup`: expanded by the cgroup setup instead of mounted as is.
    pub cgroup: bool,
}

/// Turn the spec's mounts into steps. Bind sources are resolved against the
/// bundle and must exist; their type (file or directory) decides what the
/// destination will be.
pub fn plan_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<MountStep>, RootfsError> {
    let mut steps = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let kind = m.typ().clone().unwrap_or_else(|| "none".into());
        let options = parse_options(m.options().as_deref().unwrap_or(&[]));
        let is_bind = options.is_bind() || kind == "bind";
        let mut source = m.source().clone().unwrap_or_else(|| PathBuf::from(kind.as_str()));
        let mut dest_kind = DestKind::Dir;
        if is_bind {
            if source.is_relative() {
                source = bundle.join(&source);
            }
            let meta = std::fs::metadata(&source).map_err(|e| RootfsError::BindSource {
                index,
                dest: m.destination().clone(),
                source_path: source.clone(),
                source: e,
            })?;
            if !meta.is_dir() {
                dest_kind = DestKind::File;
            }
        }
        let mut options = options;
        if is_bind {
            options.flags.insert(MsFlags::MS_BIND);
        }
        steps.push(MountStep {
            index,
            dest: m.destination().clone(),
            cgroup: (kind == "cgroup" || kind == "cgroup2") && !is_bind,
            kind,
            source: source.to_string_lossy().into_owned(),
            options,
            dest_kind,
        });
    }
    Ok(steps)
}

/// A device node to create in the container's `/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets, as runc and docker give them.
pub fn default_devices() -> Vec<DeviceNode> {
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
        .into_iter()
        .map(|(name, major, minor)| DeviceNode {
            path: PathBuf::from("/dev").join(name),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect()
}

/// Default devices plus `linux.devices`; a spec device replaces a default
/// one at the same path.
pub fn plan_devices(spec: &Spec) -> Vec<DeviceNode> {
    let mut out = default_devices();
    for d in spec.linux().as_ref().and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let node = DeviceNode {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        out.retain(|n| n.path != node.path);
        out.push(node);
    }
    out
}

/// Path of `p` relative to the container root (`/dev/null` → `dev/null`),
/// with `.` components dropped; `..` is left for openat2 to clamp.
fn relative(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect()
}

fn open_how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Open `rel` inside `root` as an O_PATH fd, symlinks resolved within root.
pub fn open_in_root(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, nix::Error> {
    if rel.as_os_str().is_empty() {
        return nix::fcntl::openat(root.as_fd(), ".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty());
    }
    nix::fcntl::openat2(root.as_fd(), rel, open_how(OFlag::O_PATH))
}

/// Create every missing directory of `rel` inside `root` and return an
/// O_PATH fd for the last one. A dangling symlink on the way is followed
/// the way the kernel would, but inside `root`: its target is created there.
pub fn mkdir_all_in_root(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, nix::Error> {
    mkdir_all_depth(root, rel, 0)
}

fn mkdir_all_depth(root: &OwnedFd, rel: &Path, depth: u32) -> Result<OwnedFd, nix::Error> {
    if depth > 40 {
        return Err(nix::Error::ELOOP);
    }
    match open_in_root(root, rel) {
        Ok(fd) => return Ok(fd),
        Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().ok_or(nix::Error::EINVAL)?;
    let parent_fd = mkdir_all_depth(root, parent, depth)?;
    match nix::sys::stat::mkdirat(parent_fd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::Error::EEXIST) => {}
        Err(e) => return Err(e),
    }
    match open_in_root(root, rel) {
        Err(nix::Error::ENOENT) => {
            // `name` exists yet resolves to nothing: a dangling symlink.
            let target = nix::fcntl::readlinkat(parent_fd.as_fd(), name)?;
            let target = Path::new(&target);
            let next = if target.is_absolute() { relative(target) } else { parent.join(target) };
            mkdir_all_depth(root, &next, depth + 1)?;
            open_in_root(root, rel)
        }
        other => other,
    }
}

/// Create (if missing) the file `rel` inside `root`, its directories too, and
/// return an O_PATH fd for it.
pub fn mkfile_in_root(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, nix::Error> {
    match open_in_root(root, rel) {
        Ok(fd) => return Ok(fd),
        Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().ok_or(nix::Error::EINVAL)?;
    let parent_fd = mkdir_all_in_root(root, parent)?;
    // The parent was resolved within root; the name has no '/', and
    // O_NOFOLLOW refuses a symlink planted there.
    let f = nix::fcntl::openat(
        parent_fd.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    );
    // O_PATH parents can't be used for O_CREAT on every kernel; fall back to
    // reopening the parent as a real directory fd.
    let f = match f {
        Err(nix::Error::EBADF) => {
            let dir = reopen_dir(&parent_fd)?;
            nix::fcntl::openat(
                dir.as_fd(),
                name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?
        }
        other => other?,
    };
    drop(f);
    open_in_root(root, rel)
}

fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, nix::Error> {
    nix::fcntl::open(
        fd_path(fd.as_raw_fd()).as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The magic-link path of an fd, for mounting on it.
pub fn fd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

fn mount_raw(source: Option<&str>, target: &str, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> nix::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data)
}

/// Step one in the new mount namespace: stop mount events leaking to the
/// host (root propagation, rslave unless the spec says otherwise), and make
/// the rootfs a mount point of its own so pivot_root accepts it.
pub fn prepare_root(rootfs: &Path, propagation: Option<&str>) -> Result<(), RootfsError> {
    let flags = match propagation.unwrap_or("") {
        "" | "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
    };
    mount_raw(None, "/", None, flags, None)
        .map_err(|errno| RootfsError::Propagation { path: "/".into(), flags, errno })?;
    if flags.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a shared parent: make the rootfs's parent mount private.
        if let Some(mp) = containing_mount(rootfs) {
            mount_raw(None, &mp.to_string_lossy(), None, MsFlags::MS_PRIVATE, None)
                .map_err(|errno| RootfsError::Propagation { path: mp, flags: MsFlags::MS_PRIVATE, errno })?;
        }
    }
    let r = rootfs.to_string_lossy();
    mount_raw(Some(&r), &r, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).map_err(|errno| {
        RootfsError::Propagation { path: rootfs.to_owned(), flags: MsFlags::MS_BIND | MsFlags::MS_REC, errno }
    })
}

/// The mount point holding `path` (longest mountinfo prefix).
fn containing_mount(path: &Path) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.components().count())
}

/// Open the rootfs as the anchor for every in-root resolution.
pub fn open_root(rootfs: &Path) -> Result<OwnedFd, RootfsError> {
    nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| RootfsError::Resolve { what: "open", path: rootfs.to_owned(), errno })
}

/// Mount one step at its destination inside `root`.
pub fn apply_mount(root: &OwnedFd, step: &MountStep) -> Result<(), RootfsError> {
    let rel = relative(&step.dest);
    let err = |errno| RootfsError::Mount {
        index: step.index,
        dest: step.dest.clone(),
        kind: step.kind.clone(),
        source_path: step.source.clone(),
        errno,
    };
    let target = match step.dest_kind {
        DestKind::Dir => mkdir_all_in_root(root, &rel),
        DestKind::File => mkfile_in_root(root, &rel),
    }
    .map_err(|errno| RootfsError::Resolve { what: "create mount point", path: step.dest.clone(), errno })?;
    let target_path = fd_path(target.as_raw_fd());
    let opts = &step.options;
    let data = if opts.data.is_empty() { None } else { Some(opts.data.as_str()) };
    if opts.is_bind() {
        let flags = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
        mount_raw(Some(&step.source), &target_path, None, flags, None).map_err(err)?;
        let per_mount = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !per_mount.is_empty() {
            // Re-open: the mount now sits on top of the old target.
            let target = open_in_root(root, &rel)
                .map_err(|errno| RootfsError::Resolve { what: "reopen", path: step.dest.clone(), errno })?;
            let flags = per_mount | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            mount_raw(None, &fd_path(target.as_raw_fd()), None, flags, None).map_err(err)?;
        }
    } else {
        let r = mount_raw(Some(&step.source), &target_path, Some(&step.kind), opts.flags, data);
        match r {
            // sysfs can't be mounted without owning the network namespace
            // (e.g. --net=host with a user namespace): bind the host's instead.
            Err(nix::Error::EPERM) if step.kind == "sysfs" => {
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount_raw(Some("/sys"), &target_path, None, flags, None).map_err(err)?;
            }
            // mqueue needs its own ipc namespace owner; skip as runc does
            // when that is not ours.
            Err(nix::Error::EPERM) if step.kind == "mqueue" => {}
            other => other.map_err(err)?,
        }
    }
    if !opts.propagation.is_empty() {
        let target = open_in_root(root, &rel)
            .map_err(|errno| RootfsError::Resolve { what: "reopen", path: step.dest.clone(), errno })?;
        for p in &opts.propagation {
            mount_raw(None, &fd_path(target.as_raw_fd()), None, *p, None).map_err(err)?;
        }
    }
    Ok(())
}

/// Create the device nodes in `<root>/dev`. In a user namespace, where mknod
/// is not allowed, bind the host's node over an empty file instead.
pub fn create_devices(root: &OwnedFd, devices: &[DeviceNode], bind_instead: bool) -> Result<(), RootfsError> {
    let old = nix::sys::stat::umask(Mode::empty());
    let result = devices.iter().try_for_each(|d| create_device(root, d, bind_instead));
    nix::sys::stat::umask(old);
    result
}

fn create_device(root: &OwnedFd, d: &DeviceNode, bind_instead: bool) -> Result<(), RootfsError> {
    let rel = relative(&d.path);
    let err = |errno| RootfsError::Device { path: d.path.clone(), errno };
    if bind_instead {
        let target = mkfile_in_root(root, &rel).map_err(err)?;
        let src = d.path.to_string_lossy();
        return mount_raw(Some(&src), &fd_path(target.as_raw_fd()), None, MsFlags::MS_BIND, None).map_err(err);
    }
    let parent = mkdir_all_in_root(root, rel.parent().unwrap_or(Path::new(""))).map_err(err)?;
    let parent = reopen_dir(&parent).map_err(err)?;
    let name = rel.file_name().ok_or(nix::Error::EINVAL).map_err(err)?;
    let dev = nix::sys::stat::makedev(d.major, d.minor);
    match nix::sys::stat::mknodat(parent.as_fd(), name, d.kind, Mode::from_bits_truncate(d.mode), dev) {
        Ok(()) => {}
        Err(nix::Error::EEXIST) => {
            // An image may ship /dev/null; replace it so it is the real device.
            nix::unistd::unlinkat(parent.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir).map_err(err)?;
            nix::sys::stat::mknodat(parent.as_fd(), name, d.kind, Mode::from_bits_truncate(d.mode), dev).map_err(err)?;
        }
        Err(e) => return Err(err(e)),
    }
    nix::unistd::fchownat(
        parent.as_fd(),
        name,
        Some(d.uid.into()),
        Some(d.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(err)
}

/// The links every `/dev` has: fd, stdin/out/err, ptmx, core.
pub fn create_dev_symlinks(root: &OwnedFd) -> Result<(), RootfsError> {
    let dev = mkdir_all_in_root(root, Path::new("dev"))
        .map_err(|errno| RootfsError::Resolve { what: "create", path: "/dev".into(), errno })?;
    let dev = reopen_dir(&dev).map_err(|errno| RootfsError::Resolve { what: "open", path: "/dev".into(), errno })?;
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
        ("/proc/kcore", "core"),
    ];
    for (target, name) in links {
        if name == "ptmx" {
            // An image's own /dev/ptmx would bypass the container's devpts instance.
            let _ = nix::unistd::unlinkat(dev.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(errno) => return Err(RootfsError::Device { path: PathBuf::from("/dev").join(name), errno }),
        }
    }
    for d in ["shm", "pts", "mqueue"] {
        match nix::sys::stat::mkdirat(dev.as_fd(), d, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(errno) => return Err(RootfsError::Device { path: PathBuf::from("/dev").join(d), errno }),
        }
    }
    Ok(())
}

/// Bind-mount `source` (a host path, e.g. a pty slave) on `/dev/console`.
pub fn bind_console(root: &OwnedFd, source: &Path) -> Result<(), RootfsError> {
    let target = mkfile_in_root(root, Path::new("dev/console"))
        .map_err(|errno| RootfsError::Device { path: "/dev/console".into(), errno })?;
    mount_raw(Some(&source.to_string_lossy()), &fd_path(target.as_raw_fd()), None, MsFlags::MS_BIND, None)
        .map_err(|errno| RootfsError::Device { path: "/dev/console".into(), errno })
}

/// pivot_root into `rootfs` without a put_old directory: pivot onto itself,
/// then detach the old root that now sits underneath.
pub fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |step, errno| RootfsError::Pivot { rootfs: rootfs.to_owned(), step, errno };
    let old_root = nix::fcntl::open("/", OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| err("open old root", e))?;
    let new_root = nix::fcntl::open(rootfs, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| err("open new root", e))?;
    nix::unistd::fchdir(&new_root).map_err(|e| err("chdir", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| err("pivot_root", e))?;
    nix::unistd::fchdir(&old_root).map_err(|e| err("chdir old root", e))?;
    // Make the old root a slave first so the unmount doesn't propagate to the host.
    mount_raw(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None).map_err(|e| err("make old root rslave", e))?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(|e| err("detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| err("chdir /", e))
}

/// Without a new mount namespace there is nothing to pivot: chroot instead.
pub fn chroot(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |step, errno| RootfsError::Pivot { rootfs: rootfs.to_owned(), step, errno };
    nix::unistd::chroot(rootfs).map_err(|e| err("chroot", e))?;
    nix::unistd::chdir("/").map_err(|e| err("chdir /", e))
}

/// Hide each path: a directory under an empty read-only tmpfs, anything
/// else under `/dev/null`. Missing paths are skipped.
pub fn mask_paths(paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let r = mount_raw(Some("/dev/null"), p, None, MsFlags::MS_BIND, None);
        match r {
            Ok(()) | Err(nix::Error::ENOENT) => {}
            Err(nix::Error::ENOTDIR) => {
                mount_raw(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None)
                    .map_err(|errno| RootfsError::Path { list: "linux.maskedPaths", path: p.into(), errno })?;
            }
            Err(errno) => return Err(RootfsError::Path { list: "linux.maskedPaths", path: p.into(), errno }),
        }
    }
    Ok(())
}

/// Make each path read-only (bind onto itself, remount ro). Missing paths are
/// skipped.
pub fn readonly_paths(paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        match mount_raw(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None) {
            Ok(()) => {}
            Err(nix::Error::ENOENT) => continue,
            Err(errno) => return Err(RootfsError::Path { list: "linux.readonlyPaths", path: p.into(), errno }),
        }
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount_raw(None, p, None, flags, None)
            .map_err(|errno| RootfsError::Path { list: "linux.readonlyPaths", path: p.into(), errno })?;
    }
    Ok(())
}

/// Remount `/` read-only (`root.readonly`), keeping its other flags.
pub fn remount_root_readonly() -> Result<(), RootfsError> {
    let st = nix::sys::statvfs::statvfs("/").map_err(|errno| RootfsError::ReadonlyRoot { errno })?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    use nix::sys::statvfs::FsFlags;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if st.flags().contains(fs) {
            flags |= ms;
        }
    }
    mount_raw(None, "/", None, flags, None).map_err(|errno| RootfsError::ReadonlyRoot { errno })
}

/// A C string for an fd path, for callers that need one.
pub fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// Wrap a raw fd we own.
///
/// # Safety
/// `fd` must be open and owned by nobody else.
pub unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: per the caller's contract.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn docker_style_mounts_plan_in_order_with_flags() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[
              {"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},
              {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
              {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
              {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro","nosuid","noexec","nodev"]}]}"#,
        );
        let steps = plan_mounts(&s, Path::new("/b")).unwrap();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0].options.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV);
        assert_eq!(steps[1].options.data, "mode=755,size=65536k");
        assert!(steps[1].options.flags.contains(MsFlags::MS_STRICTATIME));
        assert_eq!(steps[2].options.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
        assert!(steps[3].cgroup && !steps[0].cgroup);
        assert!(steps.iter().all(|s| s.dest_kind == DestKind::Dir));
    }

    #[test]
    fn bind_of_a_file_plans_a_file_destination_relative_to_bundle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
        let s = spec(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/etc/hosts","type":"bind","source":"hosts","options":["rbind","ro"]}]}"#,
        );
        let steps = plan_mounts(&s, dir.path()).unwrap();
        assert_eq!(steps[0].dest_kind, DestKind::File);
        assert_eq!(steps[0].source, dir.path().join("hosts").to_string_lossy());
        assert!(steps[0].options.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
    }

    #[test]
    fn missing_bind_source_names_the_mount() {
        let s = spec(r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/data","type":"bind","source":"/nonexistent-berth","options":["bind"]}]}"#);
        let err = plan_mounts(&s, Path::new("/b")).unwrap_err().to_string();
        assert!(err.starts_with("mounts[0] (/data): bind source /nonexistent-berth:"), "{err}");
    }

    #[test]
    fn spec_devices_add_to_and_replace_defaults() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[
              {"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438},
              {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":420,"uid":5}]}}"#,
        );
        let d = plan_devices(&s);
        assert_eq!(d.len(), 7);
        let null = d.iter().find(|n| n.path == Path::new("/dev/null")).unwrap();
        assert_eq!((null.mode, null.uid), (0o644, 5));
        assert!(d.iter().any(|n| n.path == Path::new("/dev/fuse") && n.major == 10 && n.minor == 229));
    }

    #[test]
    fn relative_drops_root_and_dots() {
        assert_eq!(relative(Path::new("/dev/./pts")), PathBuf::from("dev/pts"));
        assert_eq!(relative(Path::new("/")), PathBuf::from(""));
    }
}
