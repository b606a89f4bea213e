//! Runtime calls made in a forked child of the shim.
//!
//! `Runtime::create`, `start`, `exec` and `delete` parse specs, compile
//! seccomp filters, run hooks and wait: done in the shim itself they would
//! grow its heap for good and stall its event loop. A helper is a fork that
//! makes one call, sends the answer (and a pty master, if any) back over a
//! SOCK_SEQPACKET pair and exits. The processes it starts are orphaned when
//! it exits and, the shim being a child subreaper, become the shim's
//! children.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};

/// A helper's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    /// The process started (create, exec).
    #[serde(default)]
    pub pid: i32,
    /// The runtime's error message.
    #[serde(default)]
    pub error: Option<String>,
    /// The container's cgroup file holding the OOM kill count (create).
    #[serde(default)]
    pub oom_file: Option<PathBuf>,
}

impl Answer {
    pub fn failed(message: impl Into<String>) -> Answer {
        Answer { ok: false, error: Some(message.into()), ..Answer::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("runtime helper: {what}: {errno}")]
    Sys { what: &'static str, errno: nix::Error },
    #[error("runtime helper sent a bad answer: {0}")]
    Decode(serde_json::Error),
}

impl HelperError {
    pub fn kind(&self) -> berth_api::ErrorKind {
        berth_api::ErrorKind::Internal
    }
}

/// A running helper: its pid and the socket its answer comes on.
#[derive(Debug)]
pub struct Helper {
    pub pid: i32,
    pub sock: OwnedFd,
}

const MAX_ANSWER: usize = 16 * 1024;

/// Forks a helper that runs `f` and sends back what it returns.
pub fn fork(f: impl FnOnce() -> (Answer, Option<OwnedFd>)) -> Result<Helper, HelperError> {
    let (parent, child) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|errno| HelperError::Sys { what: "socketpair", errno })?;
    // SAFETY: the shim is single-threaded; the child only makes runtime
    // calls and exits with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|errno| HelperError::Sys { what: "fork", errno })? {
        nix::unistd::ForkResult::Parent { child: pid } => {
            drop(child);
            Ok(Helper { pid: pid.as_raw(), sock: parent })
        }
        nix::unistd::ForkResult::Child => {
            drop(parent);
            reset_signals();
            let (answer, fd) = f();
            let _ = send(&child, &answer, fd.as_ref().map(|f| f.as_raw_fd()));
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
    }
}

/// What the container inherits from the helper: no blocked signals and
/// SIGPIPE at its default (the shim blocks SIGCHLD and ignores SIGPIPE;
/// an ignored signal stays ignored across exec).
fn reset_signals() {
    // SAFETY: plain signal-mask and disposition calls on this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn send(sock: &OwnedFd, answer: &Answer, fd: Option<RawFd>) -> nix::Result<usize> {
    let data = serde_json::to_vec(answer).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    let iov = [IoSlice::new(&data)];
    let fds = fd.map(|f| [f]);
    let cmsg: Vec<ControlMessage<'_>> = fds.as_ref().map(|f| vec![ControlMessage::ScmRights(f)]).unwrap_or_default();
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
}

/// Receives the answer; None when the helper went away without one.
pub fn recv(sock: &OwnedFd) -> Result<Option<(Answer, Option<OwnedFd>)>, HelperError> {
    let mut buf = vec![0u8; MAX_ANSWER];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fd = None;
                for c in msg.cmsgs().map_err(|errno| HelperError::Sys { what: "read answer", errno })? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            // SAFETY: the kernel gave us this fd.
                            let owned = unsafe { OwnedFd::from_raw_fd(f) };
                            if fd.is_none() {
                                fd = Some(owned);
                            }
                        }
                    }
                }
                break (msg.bytes, fd);
            }
            Err(nix::Error::EINTR) => continue,
            Err(errno) => return Err(HelperError::Sys { what: "read answer", errno }),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let answer: Answer = serde_json::from_slice(&buf[..n]).map_err(HelperError::Decode)?;
    Ok(Some((answer, fd)))
}

/// Waits for a helper to exit (it does right after answering).
pub fn reap(pid: i32) {
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        if r >= 0 || nix::Error::last() != nix::Error::EINTR {
            return;
        }
    }
}
