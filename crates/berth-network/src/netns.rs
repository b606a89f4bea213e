//! Network namespaces kept alive by a bind mount on a file (as `ip netns`
//! does), so that they outlive the thread that made them and a runtime can
//! join them by path.

use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use berth_api::ErrorKind;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::netlink::{Netlink, NetlinkError};

/// Errors from namespace files, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("create network namespace {path}: {source}")]
    Create { path: PathBuf, source: nix::Error },
    #[error("prepare {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("open network namespace {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("enter network namespace {path}: {source}")]
    Enter { path: PathBuf, source: nix::Error },
    #[error("remove network namespace {path}: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("in network namespace {path}: {source}")]
    Netlink { path: PathBuf, source: NetlinkError },
    #[error("write {path}: {source}")]
    Sysctl { path: PathBuf, source: std::io::Error },
    #[error("a thread in network namespace {path} panicked")]
    Thread { path: PathBuf },
}

impl NetnsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetnsError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}

/// Make `dir` a mount point with shared propagation (as `ip netns` does for
/// /run/netns), so that unmounting a namespace file here also unmounts the
/// copies other mount namespaces made of it.
pub fn prepare_dir(dir: &Path) -> Result<(), NetnsError> {
    fs::create_dir_all(dir).map_err(|source| NetnsError::Dir { path: dir.to_owned(), source })?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(None::<&str>, dir, None::<&str>, shared, None::<&str>).is_ok() && is_mount_point(dir) {
        return Ok(());
    }
    mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .and_then(|_| mount(None::<&str>, dir, None::<&str>, shared, None::<&str>))
        .map_err(|e| NetnsError::Dir { path: dir.to_owned(), source: e.into() })
}

/// Undo [`prepare_dir`]: detach the directory's own mount (once no
/// namespace file is held in it) so nothing of berth stays mounted.
pub fn release_dir(dir: &Path) -> Result<(), NetnsError> {
    if !is_mount_point(dir) {
        return Ok(());
    }
    nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH).map_err(|e| NetnsError::Dir { path: dir.to_owned(), source: e.into() })
}

fn is_mount_point(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else { return false };
    let d = dir.to_string_lossy();
    text.lines().any(|l| l.split(' ').nth(4) == Some(&*d))
}

/// Create a new network namespace held by the file `path`, with `lo` up.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|source| NetnsError::Dir { path: parent.to_owned(), source })?;
    }
    File::create(path).map_err(|source| NetnsError::Dir { path: path.to_owned(), source })?;
    let p = path.to_owned();
    // unshare(CLONE_NEWNET) changes only the calling thread: do it in a
    // thread that ends right after, so no other work runs in the new namespace.
    let result = std::thread::spawn(move || -> Result<(), NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Create { path: p.clone(), source })?;
        mount(Some("/proc/thread-self/ns/net"), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|source| NetnsError::Create { path: p.clone(), source })?;
        let mut nl = Netlink::open().map_err(|source| NetnsError::Netlink { path: p.clone(), source })?;
        nl.set_up("lo").map_err(|source| NetnsError::Netlink { path: p.clone(), source })?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(NetnsError::Thread { path: path.to_owned() }));
    if result.is_err() {
        let _ = remove(path);
    }
    result
}

/// Unmount and remove the namespace file; a missing file is not an error.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(NetnsError::Remove { path: path.to_owned(), source: e.into() }),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Remove { path: path.to_owned(), source }),
    }
}

/// An open handle on a namespace file.
pub struct Netns {
    path: PathBuf,
    file: File,
}

impl Netns {
    pub fn open(path: &Path) -> Result<Netns, NetnsError> {
        let file = File::open(path).map_err(|source| NetnsError::Open { path: path.to_owned(), source })?;
        Ok(Netns { path: path.to_owned(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }

    /// Run `f` on a thread that has entered this namespace. Sockets `f`
    /// opens stay in the namespace; processes it spawns start in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, NetnsError> {
        let file = self.file.try_clone().map_err(|source| NetnsError::Open { path: self.path.clone(), source })?;
        let path = self.path.clone();
        std::thread::spawn(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter { path: path.clone(), source })?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(NetnsError::Thread { path: self.path.clone() }))
    }

    /// A netlink socket working in this namespace.
    pub fn netlink(&self) -> Result<Netlink, NetnsError> {
        let path = self.path.clone();
        self.run(Netlink::open)?.map_err(|source| NetnsError::Netlink { path, source })
    }

    /// Write a sysctl of this namespace (`net/ipv4/...`, relative to /proc/sys).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), NetnsError> {
        let p = Path::new("/proc/sys").join(key);
        let (p2, v) = (p.clone(), value.to_owned());
        self.run(move || fs::write(&p2, v))?.map_err(|source| NetnsError::Sysctl { path: p, source })
    }
}
