//! Running a filter for real: fork, set no_new_privs, load, make syscalls,
//! report their results through a pipe. The child runs in a copy of a
//! multi-threaded test process, so it only makes raw syscalls: no
//! allocation, no lock, `_exit` at the end.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe};

use crate::{Program, load};

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Exited(i32),
    Signaled(nix::sys::signal::Signal),
}

/// Exit status of a child whose `load` failed.
pub(crate) const LOAD_FAILED: i32 = 120;

/// The errno of a raw syscall's return value: 0 on success.
pub(crate) fn errno_of(ret: libc::c_long) -> i32 {
    if ret < 0 {
        // SAFETY: the calling thread's errno slot.
        unsafe { *libc::__errno_location() }
    } else {
        0
    }
}

/// Forks; the child loads `program` and runs `body`, whose results come
/// back in order. If the child dies before reporting, the results are
/// empty and the outcome says why.
pub(crate) fn run_filtered<const N: usize>(
    program: &Program,
    body: impl FnOnce(Option<&OwnedFd>) -> [i32; N],
) -> (Outcome, Vec<i32>) {
    let (read, write) = pipe().expect("pipe");
    // SAFETY: the child only makes raw syscalls and leaves with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: plain syscalls on this process.
            unsafe {
                libc::close(read.as_raw_fd());
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(LOAD_FAILED);
                }
            }
            let listener = match load(program) {
                Ok(listener) => listener,
                Err(_) => unsafe { libc::_exit(LOAD_FAILED) },
            };
            let results = body(listener.as_ref());
            // SAFETY: writes the array's bytes, then leaves without
            // unwinding or running destructors.
            unsafe {
                libc::write(
                    write.as_raw_fd(),
                    results.as_ptr().cast(),
                    std::mem::size_of_val(&results),
                );
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => {
            drop(write);
            let mut bytes = Vec::new();
            std::fs::File::from(read)
                .read_to_end(&mut bytes)
                .expect("read results");
            let outcome = match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => Outcome::Exited(code),
                WaitStatus::Signaled(_, signal, _) => Outcome::Signaled(signal),
                other => panic!("unexpected child status {other:?}"),
            };
            let results = bytes
                .chunks_exact(4)
                .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (outcome, results)
        }
    }
}

/// Runs `body` under `program` and returns its results, failing the test if
/// the child did not report them.
pub(crate) fn results<const N: usize>(
    program: &Program,
    body: impl FnOnce() -> [i32; N],
) -> Vec<i32> {
    let (outcome, results) = run_filtered(program, |_| body());
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "child did not finish (results {results:?})"
    );
    assert_eq!(results.len(), N, "child reported {results:?}");
    results
}

/// A raw syscall's errno (0 on success).
macro_rules! sys {
    ($nr:expr $(, $arg:expr)* $(,)?) => {
        // SAFETY: test syscalls with arguments the kernel validates.
        $crate::testutil::errno_of(unsafe { libc::syscall($nr $(, $arg)*) })
    };
}
pub(crate) use sys;

/// A path that does not exist, as a C string.
pub(crate) const MISSING: &std::ffi::CStr = c"/nonexistent-berth-seccomp-test/x";
