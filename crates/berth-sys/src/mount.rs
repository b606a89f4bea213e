//! Mounts described as data, applied by one function.
//!
//! A [`Mount`] is what a snapshotter returns and what an OCI spec lists: a
//! type, a source and fstab-style options. [`parse_options`] turns the options
//! into kernel flags, propagation changes and the filesystem data string; the
//! split is pure so it is unit-tested without root.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Errors from mounting, each naming the target.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {kind} {source_path} on {target}: {errno}")]
    Mount { kind: String, source_path: String, target: PathBuf, errno: nix::Error },
    #[error("set propagation {flags:?} on {target}: {errno}")]
    Propagation { target: PathBuf, flags: MsFlags, errno: nix::Error },
    #[error("remount {target} read-only: {errno}")]
    Remount { target: PathBuf, errno: nix::Error },
    #[error("unmount {target}: {errno}")]
    Unmount { target: PathBuf, errno: nix::Error },
}

impl MountError {
    pub fn errno(&self) -> nix::Error {
        match self {
            MountError::Mount { errno, .. }
            | MountError::Propagation { errno, .. }
            | MountError::Remount { errno, .. }
            | MountError::Unmount { errno, .. } => *errno,
        }
    }
}

/// One mount, as containerd's `mount.Mount`: apply it with [`Mount::mount_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Filesystem type (`overlay`, `bind`, `tmpfs`, `proc`...).
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Options split into what `mount(2)` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOptions {
    /// Flags for the first `mount(2)` call.
    pub flags: MsFlags,
    /// Propagation changes applied after the mount (`MS_PRIVATE`, `MS_SLAVE`...,
    /// possibly with `MS_REC`).
    pub propagation: Vec<MsFlags>,
    /// Comma-joined filesystem options (`size=64m,mode=755`).
    pub data: String,
    /// A bind mount asked for `ro` (or other per-mount flags): those need a
    /// remount after the bind, since the kernel ignores them on the bind itself.
    pub bind_remount: bool,
}

impl ParsedOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Split fstab-style options into kernel flags, propagation and data.
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> ParsedOptions {
    let mut out = ParsedOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind_remount: false,
    };
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_ref();
        // (flag, clear?) for the plain flags; propagation handled apart.
        let flag: Option<(MsFlags, bool)> = match opt {
            "defaults" => Some((MsFlags::empty(), false)),
            "ro" => Some((MsFlags::MS_RDONLY, false)),
            "rw" => Some((MsFlags::MS_RDONLY, true)),
            "suid" => Some((MsFlags::MS_NOSUID, true)),
            "nosuid" => Some((MsFlags::MS_NOSUID, false)),
            "dev" => Some((MsFlags::MS_NODEV, true)),
            "nodev" => Some((MsFlags::MS_NODEV, false)),
            "exec" => Some((MsFlags::MS_NOEXEC, true)),
            "noexec" => Some((MsFlags::MS_NOEXEC, false)),
            "sync" => Some((MsFlags::MS_SYNCHRONOUS, false)),
            "async" => Some((MsFlags::MS_SYNCHRONOUS, true)),
            "dirsync" => Some((MsFlags::MS_DIRSYNC, false)),
            "remount" => Some((MsFlags::MS_REMOUNT, false)),
            "mand" => Some((MsFlags::MS_MANDLOCK, false)),
            "nomand" => Some((MsFlags::MS_MANDLOCK, true)),
            "atime" => Some((MsFlags::MS_NOATIME, true)),
            "noatime" => Some((MsFlags::MS_NOATIME, false)),
            "diratime" => Some((MsFlags::MS_NODIRATIME, true)),
            "nodiratime" => Some((MsFlags::MS_NODIRATIME, false)),
            "relatime" => Some((MsFlags::MS_RELATIME, false)),
            "norelatime" => Some((MsFlags::MS_RELATIME, true)),
            "strictatime" => Some((MsFlags::MS_STRICTATIME, false)),
            "nostrictatime" => Some((MsFlags::MS_STRICTATIME, true)),
            "bind" => Some((MsFlags::MS_BIND, false)),
            "rbind" => Some((MsFlags::MS_BIND | MsFlags::MS_REC, false)),
            "silent" => Some((MsFlags::MS_SILENT, false)),
            "loud" => Some((MsFlags::MS_SILENT, true)),
            _ => None,
        };
        if let Some((f, clear)) = flag {
            if clear {
                out.flags.remove(f);
            } else {
                out.flags.insert(f);
            }
            continue;
        }
        let prop = match opt {
            "private" => Some(MsFlags::MS_PRIVATE),
            "rprivate" => Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => Some(MsFlags::MS_SHARED),
            "rshared" => Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => Some(MsFlags::MS_SLAVE),
            "rslave" => Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => Some(MsFlags::MS_UNBINDABLE),
            "runbindable" => Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            _ => None,
        };
        if let Some(p) = prop {
            out.propagation.push(p);
            continue;
        }
        // Options the kernel has no flag for and filesystems don't take.
        if matches!(opt, "tmpcopyup" | "z" | "Z" | "nocopy" | "copy" | "idmap" | "ridmap") {
            continue;
        }
        data.push(opt);
    }
    out.data = data.join(",");
    let per_mount = MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NOATIME
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_STRICTATIME;
    out.bind_remount = out.is_bind() && out.flags.intersects(per_mount);
    out
}

impl Mount {
    pub fn new(kind: impl Into<String>, source: impl Into<String>, options: Vec<String>) -> Self {
        Mount { kind: kind.into(), source: source.into(), options }
    }

    /// Mount this at `target`: the mount itself, a read-only (or other flag)
    /// remount for binds, then any propagation change.
    pub fn mount_at(&self, target: &Path) -> Result<(), MountError> {
        let parsed = parse_options(&self.options);
        mount_parsed(&self.kind, &self.source, target, &parsed)
    }
}

/// Apply already-parsed options: the primitive under [`Mount::mount_at`].
pub fn mount_parsed(
    kind: &str,
    source: &str,
    target: &Path,
    parsed: &ParsedOptions,
) -> Result<(), MountError> {
    let fstype = if parsed.is_bind() || kind == "bind" { None } else { Some(kind) };
    let mut flags = parsed.flags;
    if kind == "bind" {
        flags.insert(MsFlags::MS_BIND);
    }
    let data = if parsed.data.is_empty() { None } else { Some(parsed.data.as_str()) };
    let mount_err = |errno| MountError::Mount {
        kind: kind.to_owned(),
        source_path: source.to_owned(),
        target: target.to_owned(),
        errno,
    };
    match data.filter(|d| kind == "overlay" && d.len() > MOUNT_DATA_MAX).and_then(compact_overlay_data) {
        Some((dir, short)) => mount_from_dir(&dir, source, target, kind, flags, &short).map_err(mount_err)?,
        None => nix::mount::mount(Some(source), target, fstype, flags, data).map_err(mount_err)?,
    }
    if flags.contains(MsFlags::MS_BIND) && (parsed.bind_remount || flags.contains(MsFlags::MS_RDONLY)) {
        let remount = (flags & !MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
        nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
            .map_err(|errno| MountError::Remount { target: target.to_owned(), errno })?;
    }
    for p in &parsed.propagation {
        set_propagation(target, *p)?;
    }
    Ok(())
}

/// Longest mount data `mount(2)` takes: one page, less the NUL.
pub const MOUNT_DATA_MAX: usize = 4095;

/// Overlay data too long for one page, made shorter as docker's overlay2
/// and containerd do: when every `lowerdir` entry sits in one directory,
/// return that directory and the data with the entries named relative to
/// it. The mount is then made from inside that directory.
pub fn compact_overlay_data(data: &str) -> Option<(PathBuf, String)> {
    let opts: Vec<&str> = data.split(',').collect();
    let lower = opts.iter().find_map(|o| o.strip_prefix("lowerdir="))?;
    let dirs: Vec<&Path> = lower.split(':').map(Path::new).collect();
    let common = dirs.first()?.parent()?;
    if !common.is_absolute() || dirs.iter().any(|d| d.parent() != Some(common)) {
        return None;
    }
    let names: Vec<String> = dirs.iter().map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())).collect::<Option<_>>()?;
    let short: Vec<String> = opts
        .iter()
        .map(|o| if o.starts_with("lowerdir=") { format!("lowerdir={}", names.join(":")) } else { (*o).to_owned() })
        .collect();
    Some((common.to_owned(), short.join(",")))
}

/// `mount(2)` run in a child process whose working directory is `dir`, so
/// that relative paths in `data` resolve there without changing the working
/// directory of this (multi-threaded) process.
fn mount_from_dir(dir: &Path, source: &str, target: &Path, fstype: &str, flags: MsFlags, data: &str) -> Result<(), nix::Error> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let target = if target.is_absolute() {
        target.to_owned()
    } else {
        std::env::current_dir().map_err(|_| nix::Error::ENOENT)?.join(target)
    };
    let c = |b: &[u8]| CString::new(b).map_err(|_| nix::Error::EINVAL);
    let (dir, source, target, fstype, data) = (
        c(dir.as_os_str().as_bytes())?,
        c(source.as_bytes())?,
        c(target.as_os_str().as_bytes())?,
        c(fstype.as_bytes())?,
        c(data.as_bytes())?,
    );
    // Only async-signal-safe calls between fork and _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(nix::Error::last());
    }
    if pid == 0 {
        unsafe {
            let mut code = 0;
            if libc::chdir(dir.as_ptr()) != 0
                || libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags.bits(), data.as_ptr().cast()) != 0
            {
                code = *libc::__errno_location();
            }
            libc::_exit(code);
        }
    }
    let mut status = 0;
    loop {
        if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
            break;
        }
        let e = nix::Error::last();
        if e != nix::Error::EINTR {
            return Err(e);
        }
    }
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, code) => Err(nix::Error::from_raw(code)),
        _ => Err(nix::Error::ECHILD),
    }
}

/// Change the propagation type of the mount at `target`.
pub fn set_propagation(target: &Path, flags: MsFlags) -> Result<(), MountError> {
    nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|errno| MountError::Propagation { target: target.to_owned(), flags, errno })
}

/// Bind-mount `source` on `target`, read-only if asked.
pub fn bind(source: &Path, target: &Path, recursive: bool, readonly: bool) -> Result<(), MountError> {
    let mut opts = vec![if recursive { "rbind" } else { "bind" }.to_owned()];
    if readonly {
        opts.push("ro".into());
    }
    Mount::new("bind", source.to_string_lossy(), opts).mount_at(target)
}

/// Detach the mount at `target` (lazy unmount: it goes when unused).
pub fn unmount_detach(target: &Path) -> Result<(), MountError> {
    nix::mount::umount2(target, MntFlags::MNT_DETACH)
        .map_err(|errno| MountError::Unmount { target: target.to_owned(), errno })
}

/// Unmount `target`, treating "not mounted" and "no such path" as done.
pub fn unmount_if_mounted(target: &Path) -> Result<(), MountError> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(errno) => Err(MountError::Unmount { target: target.to_owned(), errno }),
    }
}

/// Mount points at or under `root`, deepest first, read from
/// `/proc/self/mountinfo`. Used by cleanup and leak checks.
pub fn mounts_under(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mounts_under_in(&info, root))
}

/// The pure part of [`mounts_under`]: parse mountinfo text.
pub fn mounts_under_in(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ro_bind_needs_remount_and_keeps_data_empty() {
        let p = parse_options(&["rbind", "ro", "nosuid", "rprivate"]);
        assert!(p.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert!(p.bind_remount);
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(p.data, "");
    }

    #[test]
    fn filesystem_options_go_to_data() {
        let p = parse_options(&["nosuid", "size=65536k", "mode=755", "rw"]);
        assert_eq!(p.flags, MsFlags::MS_NOSUID);
        assert_eq!(p.data, "size=65536k,mode=755");
        assert!(!p.bind_remount);
    }

    #[test]
    fn later_options_override_earlier() {
        let p = parse_options(&["ro", "rw", "noexec", "exec"]);
        assert!(p.flags.is_empty());
    }

    #[test]
    fn long_overlay_lowerdirs_are_made_relative_to_their_directory() {
        let lowers: Vec<String> = (0..3).map(|i| format!("/data/l/L{i}")).collect();
        let data = format!("lowerdir={},upperdir=/s/fs,workdir=/s/work", lowers.join(":"));
        let (dir, short) = compact_overlay_data(&data).unwrap();
        assert_eq!(dir, PathBuf::from("/data/l"));
        assert_eq!(short, "lowerdir=L0:L1:L2,upperdir=/s/fs,workdir=/s/work");
        assert!(compact_overlay_data("lowerdir=/a/x:/b/y,upperdir=/u").is_none());
        assert!(compact_overlay_data("upperdir=/u").is_none());
    }

    #[test]
    fn mountinfo_under_root_deepest_first_with_escapes() {
        let info = "22 1 0:21 / /sys rw - sysfs sysfs rw\n\
                    40 30 0:50 / /tmp/r/a rw - tmpfs t rw\n\
                    41 40 0:51 / /tmp/r/a/b\\040c rw - tmpfs t rw\n\
                    42 30 0:52 / /tmp/rr rw - tmpfs t rw\n";
        let got = mounts_under_in(info, Path::new("/tmp/r"));
        assert_eq!(got, vec![PathBuf::from("/tmp/r/a/b c"), PathBuf::from("/tmp/r/a")]);
    }
}
