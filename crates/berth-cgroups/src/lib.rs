//! Cgroup management for berth-runtime, on cgroup v1, v2 and hybrid hosts.
//!
//! The pieces, top to bottom:
//!
//! - [`Hierarchy`]: which cgroup filesystems this host has mounted, read once
//!   from mountinfo, and where each controller is managed (a v1 hierarchy, or
//!   the unified v2 one).
//! - [`CgroupPath`]: the OCI `linux.cgroupsPath`, resolved to one path that is
//!   placed under the root of every hierarchy.
//! - [`Cgroup`]: one container's cgroup. Its doc comment walks the lifecycle:
//!   create → apply → add_process → freeze/thaw → stats → kill_all → destroy.
//! - [`devices`]: OCI device rules as v1 `devices.allow`/`devices.deny` lines
//!   and as a v2 eBPF device program ([`bpf`] loads and attaches it).
//! - [`stats`]: the readout for `berth stats`, shaped like docker's stats JSON.
//!
//! Nothing here mounts or forks: the runtime mounts the read-only cgroup view
//! that [`Cgroup::container_view`] describes.

pub mod bpf;
pub mod cgroup;
pub mod devices;
mod fs;
pub mod hierarchy;
pub mod path;
pub mod resources;
pub mod stats;

pub use cgroup::{Cgroup, CgroupError, CgroupMount, CgroupSymlink, ContainerView, FreezerState};
pub use hierarchy::{
    Controller, Hierarchy, HierarchyError, Mode, Placement, ProcCgroup, UnifiedMount, V1Mount, parse_proc_cgroup,
    proc_cgroup_path,
};
pub use path::{CgroupPath, PathError};
pub use resources::ApplyError;
pub use stats::{Stats, StatsError};

/// What sort of failure an error is, for callers that map errors to API
/// statuses or exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The spec asks for something invalid, or the kernel refused a value.
    InvalidSpec,
    /// The host lacks a controller or feature the spec asks for.
    Unsupported,
    /// A cgroup, file or process is not there.
    NotFound,
    /// Processes are still in the cgroup, or it did not settle in time.
    Busy,
    /// Any other failure of the system.
    System,
}

/// The kind of an I/O failure: `NotFound` for ENOENT/ESRCH, else `System`.
pub(crate) fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => ErrorKind::NotFound,
        Some(libc::EBUSY) => ErrorKind::Busy,
        _ => ErrorKind::System,
    }
}
