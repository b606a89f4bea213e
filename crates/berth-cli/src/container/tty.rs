//! The local terminal: is it one, its size, raw mode (restored on drop),
//! and docker's detach keys.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{self, SetArg, Termios};

pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

pub fn stdin_is_tty() -> bool {
    is_tty(std::io::stdin().as_fd())
}

pub fn stdout_is_tty() -> bool {
    is_tty(std::io::stdout().as_fd())
}

/// (rows, columns) of the terminal on stdout, (0, 0) when there is none.
pub fn size() -> (u16, u16) {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer we pass, which
    // points at a live, properly sized local.
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if r != 0 { (0, 0) } else { (ws.ws_row, ws.ws_col) }
}

/// Raw mode on stdin while alive; the previous mode comes back on drop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid detach keys ({keys}): Unknown character: '{key}'")]
pub struct DetachKeysError {
    pub keys: String,
    pub key: String,
}

/// ctrl-p, ctrl-q: docker's default detach sequence.
pub const DEFAULT_DETACH: [u8; 2] = [16, 17];

/// docker's detach key syntax: `ctrl-p,ctrl-q`, `a,b`, `ctrl-@`..`ctrl-_`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, DetachKeysError> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let l = key.to_lowercase();
        let code = l.strip_prefix("ctrl-").filter(|c| c.len() == 1).and_then(|c| {
            let b = c.as_bytes()[0];
            match b {
                b'@' => Some(0),
                b'a'..=b'z' => Some(b - b'a' + 1),
                b'[' => Some(27),
                b'\\' => Some(28),
                b']' => Some(29),
                b'^' => Some(30),
                b'_' => Some(31),
                _ => None,
            }
        });
        match code {
            Some(c) => out.push(c),
            None => return Err(DetachKeysError { keys: keys.to_owned(), key: key.to_owned() }),
        }
    }
    Ok(out)
}

/// Watches typed input for the detach sequence (moby's escape proxy): the
/// bytes of a partial match are held back, and given back if the match
/// breaks.
pub struct EscapeProxy {
    keys: Vec<u8>,
    pos: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Bytes to send on.
    Forward(Vec<u8>),
    /// The whole sequence was typed; the bytes before it go on.
    Detach(Vec<u8>),
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, pos: 0 }
    }

    pub fn scan(&mut self, input: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return Scan::Forward(out);
        }
        for &b in input {
            if b == self.keys[self.pos] {
                self.pos += 1;
                if self.pos == self.keys.len() {
                    self.pos = 0;
                    return Scan::Detach(out);
                }
                continue;
            }
            if self.pos > 0 {
                out.extend_from_slice(&self.keys[..self.pos]);
                self.pos = 0;
                if b == self.keys[0] {
                    self.pos = 1;
                    continue;
                }
            }
            out.push(b);
        }
        Scan::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(parse_detach_keys("ctrl-a,x"), Ok(vec![1, b'x']));
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_,ctrl-["), Ok(vec![0, 31, 27]));
        assert_eq!(parse_detach_keys("CTRL-Q"), Ok(vec![17]));
        assert_eq!(
            parse_detach_keys("ctrl-x1").unwrap_err().to_string(),
            "invalid detach keys (ctrl-x1): Unknown character: 'ctrl-x1'"
        );
    }

    #[test]
    fn the_escape_proxy_holds_back_partial_matches() {
        let mut p = EscapeProxy::new(DEFAULT_DETACH.to_vec());
        assert_eq!(p.scan(b"ab"), Scan::Forward(b"ab".to_vec()));
        assert_eq!(p.scan(&[16]), Scan::Forward(vec![]));
        assert_eq!(p.scan(b"x"), Scan::Forward(vec![16, b'x']));
        assert_eq!(p.scan(&[16]), Scan::Forward(vec![]));
        assert_eq!(p.scan(&[17]), Scan::Detach(vec![]));
        assert_eq!(p.scan(&[b'a', 16, 16, 17]), Scan::Detach(vec![b'a', 16]));
        let mut none = EscapeProxy::new(vec![]);
        assert_eq!(none.scan(&[16, 17]), Scan::Forward(vec![16, 17]));
    }
}
