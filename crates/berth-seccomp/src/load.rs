//! Installing a compiled [`Program`] in the calling thread.
//!
//! [`load`] runs in the container's init between `fork` and `exec`, where the
//! parent may have had other threads holding the allocator's or libseccomp's
//! locks at the moment of the fork. So it allocates nothing, takes no lock and
//! calls nothing in libseccomp: it builds a `sock_fprog` on the stack that
//! points into the already compiled instructions and makes one syscall
//! (`seccomp(2)`, or `prctl(2)` on kernels older than 3.17). Its error is a
//! plain errno and flags; formatting it (which allocates) is for later.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::Program;

/// Why the kernel refused the filter. Only `Copy` data, so that building one
/// in a freshly forked child allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error(
        "load seccomp filter: permission denied: set no_new_privs first, or load while holding CAP_SYS_ADMIN"
    )]
    NeedsNoNewPrivs,
    #[error("load seccomp filter (flags {flags:#x}): {}", std::io::Error::from_raw_os_error(*errno))]
    Kernel { flags: u32, errno: i32 },
    #[error(
        "load seccomp filter: thread {tid} could not be synchronised (SECCOMP_FILTER_FLAG_TSYNC)"
    )]
    Tsync { tid: i32 },
    #[error("load seccomp filter: the program is empty")]
    Empty,
}

impl LoadError {
    /// The errno behind the error, for a child that reports it as a number.
    pub fn errno(&self) -> i32 {
        match self {
            LoadError::NeedsNoNewPrivs => libc::EACCES,
            LoadError::Kernel { errno, .. } => *errno,
            LoadError::Tsync { .. } => libc::ESRCH,
            LoadError::Empty => libc::EINVAL,
        }
    }
}

/// Installs `program` as a seccomp filter on the calling thread (and, with
/// `SECCOMP_FILTER_FLAG_TSYNC`, on its siblings).
///
/// Async-signal-safe: no allocation, no lock, one syscall. The caller must
/// have set `no_new_privs` (`prctl(PR_SET_NO_NEW_PRIVS, 1)`) or still hold
/// CAP_SYS_ADMIN in its user namespace, or the kernel answers EACCES
/// ([`LoadError::NeedsNoNewPrivs`]).
///
/// When the program uses `SCMP_ACT_NOTIFY` ([`Program::needs_listener`]), the
/// kernel returns a listener fd, and so does this function: the runtime sends
/// it to the seccomp agent at `linux.seccomp.listenerPath`. Otherwise `None`.
pub fn load(program: &Program) -> Result<Option<OwnedFd>, LoadError> {
    if program.filter.is_empty() {
        return Err(LoadError::Empty);
    }
    let prog = libc::sock_fprog {
        // compile() and Program::from_bytes keep the length under 4096.
        len: program.filter.len() as u16,
        filter: program.filter.as_ptr().cast_mut(),
    };
    let mut flags = program.flags;
    let listener = program.needs_listener();
    if listener && flags & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
        // With both, the kernel needs to be told to report a thread that
        // cannot be synchronised as ESRCH: the return value is the fd.
        flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
    }

    // SAFETY: `prog` points at `program.filter`, which outlives the call; the
    // kernel copies the instructions.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    let ret = if ret < 0 && errno() == libc::ENOSYS && flags == 0 {
        // Kernels before 3.17 have no seccomp(2); prctl takes no flags.
        // SAFETY: as above.
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            ) as libc::c_long
        }
    } else {
        ret
    };
    if ret < 0 {
        return Err(match errno() {
            libc::EACCES => LoadError::NeedsNoNewPrivs,
            errno => LoadError::Kernel { flags, errno },
        });
    }
    if listener {
        // SAFETY: with NEW_LISTENER a successful call returns a new fd that
        // nobody else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    if ret > 0 {
        // With TSYNC, a positive value is a thread that could not follow.
        return Err(LoadError::Tsync { tid: ret as i32 });
    }
    Ok(None)
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}
