//! Terminals: a pty opened inside the container's devpts instance, its master
//! handed to whoever asked (`--console-socket`, as runc does: the fd travels
//! with SCM_RIGHTS), or proxied to our own stdio for a foreground `run -t`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("open the container's /dev/ptmx: {0}")]
    OpenPtmx(nix::Error),
    #[error("unlock pty: {0}")]
    Unlock(nix::Error),
    #[error("open pty peer: {0}")]
    Peer(nix::Error),
    #[error("set terminal size: {0}")]
    Size(nix::Error),
    #[error("make the pty the controlling terminal: {0}")]
    Ctty(nix::Error),
    #[error("connect to console socket {path}: {source}")]
    Connect { path: std::path::PathBuf, source: std::io::Error },
    #[error("send pty master to console socket {path}: {source}")]
    Send { path: std::path::PathBuf, source: crate::sync::SyncError },
    #[error("terminal proxy: {0}")]
    Proxy(nix::Error),
}

/// A pty pair.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a pty through `ptmx` (a path resolved inside `root`, e.g.
/// `dev/pts/ptmx`), so the slave belongs to the container's devpts.
pub fn open_pty_in(root: BorrowedFd<'_>, ptmx: &Path) -> Result<Pty, ConsoleError> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let master = nix::fcntl::openat2(root, ptmx, how).map_err(ConsoleError::OpenPtmx)?;
    pty_from_master(master)
}

/// Open a pty through `/dev/ptmx` of the current mount namespace.
pub fn open_pty() -> Result<Pty, ConsoleError> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(ConsoleError::OpenPtmx)?;
    pty_from_master(master)
}

fn pty_from_master(master: OwnedFd) -> Result<Pty, ConsoleError> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int; master is a valid fd.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } != 0 {
        return Err(ConsoleError::Unlock(nix::Error::last()));
    }
    // TIOCGPTPEER opens the slave from the master without a path lookup.
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let fd = unsafe {
        libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_ulong)
    };
    if fd < 0 {
        return Err(ConsoleError::Peer(nix::Error::last()));
    }
    // SAFETY: the ioctl returned a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Pty { master, slave })
}

pub fn set_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), ConsoleError> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize struct.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(ConsoleError::Size(nix::Error::last()));
    }
    Ok(())
}

pub fn get_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize struct.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// In the container process: new session, the slave as controlling terminal
/// and as stdin, stdout and stderr.
pub fn make_controlling(slave: &OwnedFd) -> Result<(), ConsoleError> {
    let _ = nix::unistd::setsid();
    // SAFETY: TIOCSCTTY with argument 0.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(ConsoleError::Ctty(nix::Error::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(ConsoleError::Ctty(nix::Error::last()));
        }
    }
    Ok(())
}

/// Hand the pty master to the program listening on `socket` (runc's
/// `--console-socket` protocol: one message, the fd in SCM_RIGHTS).
pub fn send_to_socket(socket: &Path, master: &OwnedFd) -> Result<(), ConsoleError> {
    let stream = UnixStream::connect(socket)
        .map_err(|source| ConsoleError::Connect { path: socket.to_owned(), source })?;
    crate::sync::send_fd_with(stream.as_raw_fd(), master.as_raw_fd(), b"/dev/ptmx")
        .map_err(|source| ConsoleError::Send { path: socket.to_owned(), source })
}

/// Our stdin in raw mode for the life of the guard, when it is a terminal.
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else { return RawMode { saved: None } };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, s);
        }
    }
}

/// Copy between our stdio and the pty master until the master side hangs up
/// (every slave holder exited) or `done()` says the process is gone.
pub fn proxy(master: &OwnedFd, mut done: impl FnMut() -> bool) -> Result<(), ConsoleError> {
    let stdin: RawFd = 0;
    let mut stdin_open = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        // SAFETY: fd 0 stays open for the life of this loop.
        let stdin_fd = unsafe { BorrowedFd::borrow_raw(stdin) };
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::from(200u16)) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ConsoleError::Proxy(e)),
            Ok(0) => {
                if done() {
                    return Ok(());
                }
                continue;
            }
            Ok(_) => {}
        }
        let master_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ev = if stdin_open { fds[1].revents().unwrap_or(PollFlags::empty()) } else { PollFlags::empty() };
        if master_ev.contains(PollFlags::POLLIN) {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => return Ok(()),
                Ok(n) => write_all(1, &buf[..n]),
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(e) => return Err(ConsoleError::Proxy(e)),
            }
        } else if master_ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            return Ok(());
        }
        if stdin_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(stdin_fd, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => write_all(master.as_raw_fd(), &buf[..n]),
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    // SAFETY: fd is open for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_pair_carries_bytes_and_size() {
        let pty = open_pty().unwrap();
        set_size(pty.master.as_fd(), 30, 100).unwrap();
        assert_eq!(get_size(pty.slave.as_fd()), Some((30, 100)));
        nix::unistd::write(pty.slave.as_fd(), b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(pty.master.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi\r\n");
    }

    #[test]
    fn console_socket_receives_the_master() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let pty = open_pty().unwrap();
        send_to_socket(&sock, &pty.master).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let got = crate::sync::recv_fd_from(conn.as_raw_fd()).unwrap();
        nix::unistd::write(got.as_fd(), b"x\n").unwrap();
        let mut buf = [0u8; 4];
        let n = nix::unistd::read(pty.slave.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"x\n");
    }
}
