//! The channel between the runtime and the container's init while it is
//! being set up: a `SOCK_SEQPACKET` socketpair, one message per packet.
//!
//! Init reports progress and errors as they happen, so a failure after the
//! fork reaches the caller as the real message (not a bare EOF). A file
//! descriptor (the pty master) travels with [`Channel::send_fd`].

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};

/// Messages, tagged by their first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Init's host pid (sent by the intermediate process that forked it).
    Pid(i32),
    /// Init asks the runtime to write its uid/gid maps.
    MapIds,
    /// Init stands in the new namespaces, before pivot_root: the runtime may
    /// run its prestart and createRuntime hooks.
    RunHooks,
    /// Init is set up and now waits for `start`.
    Ready,
    /// Init failed; it exits after sending this.
    Error(String),
    /// The runtime's answer to a request (MapIds, RunHooks, the cgroup join).
    Continue,
    /// The pty master follows as an fd.
    Terminal,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("create sync socket: {0}")]
    Socket(nix::Error),
    #[error("send to container init: {0}")]
    Send(nix::Error),
    #[error("receive from container init: {0}")]
    Recv(nix::Error),
    #[error("container init closed the sync socket before {expected}")]
    Eof { expected: &'static str },
    #[error("container init sent {got:?} while {expected} was expected")]
    Unexpected { got: Msg, expected: &'static str },
    #[error("message from container init is malformed")]
    Malformed,
}

impl Msg {
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Msg::Pid(p) => {
                buf.push(b'p');
                buf.extend_from_slice(&p.to_le_bytes());
            }
            Msg::MapIds => buf.push(b'm'),
            Msg::RunHooks => buf.push(b'h'),
            Msg::Ready => buf.push(b'r'),
            Msg::Error(e) => {
                buf.push(b'e');
                buf.extend_from_slice(e.as_bytes());
            }
            Msg::Continue => buf.push(b'c'),
            Msg::Terminal => buf.push(b't'),
        }
    }

    fn decode(b: &[u8]) -> Result<Msg, SyncError> {
        let (&tag, rest) = b.split_first().ok_or(SyncError::Malformed)?;
        Ok(match tag {
            b'p' => Msg::Pid(i32::from_le_bytes(rest.try_into().map_err(|_| SyncError::Malformed)?)),
            b'm' => Msg::MapIds,
            b'h' => Msg::RunHooks,
            b'r' => Msg::Ready,
            b'e' => Msg::Error(String::from_utf8_lossy(rest).into_owned()),
            b'c' => Msg::Continue,
            b't' => Msg::Terminal,
            _ => return Err(SyncError::Malformed),
        })
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: `.0` stays with the runtime, `.1` goes to init.
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(SyncError::Socket)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let mut buf = Vec::with_capacity(64);
        msg.encode(&mut buf);
        loop {
            match socket::send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(SyncError::Send(e)),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Next message; `None` on EOF (the other end closed or exited).
    pub fn recv(&self) -> Result<Option<Msg>, SyncError> {
        let mut buf = [0u8; 8192];
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(SyncError::Recv(e)),
                Ok(0) => return Ok(None),
                Ok(n) => return Msg::decode(&buf[..n]).map(Some),
            }
        }
    }

    /// Receive and require a particular message; an `Error` from init is
    /// returned as `Err(Ok(message))` so callers can report it verbatim.
    pub fn expect(&self, want: Msg, expected: &'static str) -> Result<(), Result<String, SyncError>> {
        match self.recv() {
            Ok(Some(m)) if m == want => Ok(()),
            Ok(Some(Msg::Error(e))) => Err(Ok(e)),
            Ok(Some(got)) => Err(Err(SyncError::Unexpected { got, expected })),
            Ok(None) => Err(Err(SyncError::Eof { expected })),
            Err(e) => Err(Err(e)),
        }
    }

    /// Send `fd` with a `Terminal` message (SCM_RIGHTS).
    pub fn send_fd(&self, fd: RawFd) -> Result<(), SyncError> {
        send_fd_with(self.fd.as_raw_fd(), fd, b"t")
    }

    /// Receive an fd sent with [`Channel::send_fd`].
    pub fn recv_fd(&self) -> Result<OwnedFd, SyncError> {
        recv_fd_from(self.fd.as_raw_fd())
    }
}

/// Send one fd over a unix socket with `payload` as the data bytes.
pub fn send_fd_with(sock: RawFd, fd: RawFd, payload: &[u8]) -> Result<(), SyncError> {
    let iov = [IoSlice::new(payload)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    socket::sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map_err(SyncError::Send)?;
    Ok(())
}

/// Receive one fd sent over a unix socket.
pub fn recv_fd_from(sock: RawFd) -> Result<OwnedFd, SyncError> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = socket::recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(SyncError::Recv)?;
    for c in msg.cmsgs().map_err(SyncError::Recv)? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor; we own it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
    }
    if msg.bytes == 0 {
        return Err(SyncError::Eof { expected: "a file descriptor" });
    }
    Err(SyncError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = pair().unwrap();
        for m in [Msg::Pid(1234), Msg::MapIds, Msg::RunHooks, Msg::Ready, Msg::Error("mount /proc: EPERM".into()), Msg::Continue] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn expect_surfaces_init_errors() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Error("boom".into())).unwrap();
        assert_eq!(b.expect(Msg::Ready, "ready").unwrap_err().unwrap(), "boom");
    }

    #[test]
    fn fds_travel() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_fd(f.as_raw_fd()).unwrap();
        let got = b.recv_fd().unwrap();
        assert!(got.as_raw_fd() >= 0);
    }
}
