//! Which namespaces a process gets: new ones (unshare) or existing ones
//! joined by path (setns), planned from the spec before fork.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("open {kind} namespace {path}: {errno}")]
    Open { kind: &'static str, path: PathBuf, errno: nix::Error },
    #[error("join {kind} namespace: {errno}")]
    Join { kind: &'static str, errno: nix::Error },
    #[error("create namespaces {flags:?}: {errno}")]
    Unshare { flags: CloneFlags, errno: nix::Error },
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME shares its value with CSIGNAL bits in clone(2) but
        // is fine for unshare/setns.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name `/proc/<pid>/ns/` uses.
pub fn proc_name(f: CloneFlags) -> &'static str {
    const TIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    match f {
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNET => "net",
        f if f == TIME => "time",
        _ => "unknown",
    }
}

/// Every namespace kind, in the order they are joined (user first so the
/// others are entered with its privileges; mount last because joining it
/// changes how paths resolve).
pub const JOIN_ORDER: [CloneFlags; 8] = [
    CloneFlags::CLONE_NEWUSER,
    CloneFlags::CLONE_NEWIPC,
    CloneFlags::CLONE_NEWUTS,
    CloneFlags::CLONE_NEWNET,
    CloneFlags::CLONE_NEWPID,
    CloneFlags::CLONE_NEWCGROUP,
    CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    CloneFlags::CLONE_NEWNS,
];

/// The namespace part of init's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsPlan {
    /// New namespaces to create (user and cgroup are handled apart).
    pub new: CloneFlags,
    /// Existing namespaces to join, in [`JOIN_ORDER`].
    pub join: Vec<(CloneFlags, PathBuf)>,
}

impl Default for NsPlan {
    fn default() -> Self {
        NsPlan { new: CloneFlags::empty(), join: Vec::new() }
    }
}

impl NsPlan {
    pub fn from_spec(spec: &Spec) -> NsPlan {
        let mut plan = NsPlan::default();
        let nss = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
        for ns in &nss {
            let f = flag(ns.typ());
            match ns.path() {
                Some(p) => plan.join.push((f, p.clone())),
                None => plan.new |= f,
            }
        }
        plan.join.sort_by_key(|(f, _)| JOIN_ORDER.iter().position(|o| o == f));
        plan
    }

    /// Join every namespace `pid` is in that differs from ours (for exec).
    pub fn join_process(pid: i32) -> NsPlan {
        let mut plan = NsPlan::default();
        for f in JOIN_ORDER {
            let name = proc_name(f);
            let theirs = Path::new("/proc").join(pid.to_string()).join("ns").join(name);
            let ours = Path::new("/proc/self/ns").join(name);
            match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
                (Ok(a), Ok(b)) if std::os::unix::fs::MetadataExt::ino(&a) == std::os::unix::fs::MetadataExt::ino(&b) => {}
                (Ok(_), _) => plan.join.push((f, theirs)),
                _ => {}
            }
        }
        plan
    }

    pub fn has(&self, f: CloneFlags) -> bool {
        self.new.contains(f) || self.join.iter().any(|(j, _)| *j == f)
    }

    pub fn new_user(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// pid and time namespaces apply to children only: init must be forked
    /// once more after entering them.
    pub fn needs_fork(&self) -> bool {
        self.has(CloneFlags::CLONE_NEWPID) || self.has(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
    }

    /// Open every namespace to join. Done before the first setns, since
    /// joining the mount namespace changes what the paths mean.
    pub fn open_joins(&self) -> Result<Vec<(CloneFlags, OwnedFd)>, NsError> {
        self.join
            .iter()
            .map(|(f, p)| {
                nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .map(|fd| (*f, fd))
                    .map_err(|errno| NsError::Open { kind: proc_name(*f), path: p.clone(), errno })
            })
            .collect()
    }
}

pub fn setns(fd: &OwnedFd, f: CloneFlags) -> Result<(), NsError> {
    nix::sched::setns(fd, f).map_err(|errno| NsError::Join { kind: proc_name(f), errno })
}

pub fn unshare(flags: CloneFlags) -> Result<(), NsError> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(|errno| NsError::Unshare { flags, errno })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_namespaces_split_into_new_and_joined_in_order() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[
              {"type":"mount"},{"type":"network","path":"/var/run/netns/x"},{"type":"pid"},
              {"type":"user","path":"/proc/1/ns/user"},{"type":"time"}]}}"#,
        )
        .unwrap();
        let plan = NsPlan::from_spec(&spec);
        assert!(plan.new.contains(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID));
        assert!(!plan.new.contains(CloneFlags::CLONE_NEWNET));
        let joined: Vec<_> = plan.join.iter().map(|(f, _)| proc_name(*f)).collect();
        assert_eq!(joined, ["user", "net"]);
        assert!(plan.needs_fork());
        assert!(!plan.new_user());
    }

    #[test]
    fn own_namespaces_are_not_joined() {
        let plan = NsPlan::join_process(std::process::id() as i32);
        assert!(plan.join.is_empty(), "{:?}", plan.join);
    }
}
