//! A log file that rotates as docker's (moby
//! `daemon/logger/loggerutils/logfile.go`): before an entry is written, a
//! file that has reached `max_size` is rotated: with `max_file` >= 2,
//! `file.(max_file-2)` → `file.(max_file-1)` ... `file` → `file.1` (the
//! oldest dropped); with `max_file` 1 the file is removed. Then a new empty
//! `file` is created. Entries are never split across files.
//!
//! Readers in other processes open the set of files while holding a shared
//! `flock` on the log directory; a rotation holds it exclusively, so a
//! reader never sees the renames half done.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::LogError;

/// Name of the `n`th rotated file (`n` >= 1).
pub fn rotated_name(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// An flock on a directory, released on drop.
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    pub fn lock(dir: &Path, exclusive: bool) -> Result<DirLock, LogError> {
        let f = File::open(dir).map_err(|source| LogError::Open { path: dir.to_owned(), source })?;
        let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
                return Ok(DirLock { _dir: f });
            }
            let errno = nix::Error::last();
            if errno != nix::Error::EINTR {
                return Err(LogError::Lock { path: dir.to_owned(), errno });
            }
        }
    }
}

pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub struct RotatingFile {
    path: PathBuf,
    max_size: Option<u64>,
    max_file: u32,
    file: File,
    size: u64,
}

fn open_log(path: &Path, truncate: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        // O_APPEND with O_TRUNC: std refuses the pair, the kernel does not.
        .custom_flags(libc::O_CLOEXEC | if truncate { libc::O_TRUNC } else { 0 })
        .open(path)
        .map_err(|source| LogError::Open { path: path.to_owned(), source })
}

impl RotatingFile {
    /// Opens (appends to) `path`, creating it and its directory.
    pub fn open(path: &Path, max_size: Option<u64>, max_file: u32) -> Result<RotatingFile, LogError> {
        let dir = parent_dir(path);
        std::fs::create_dir_all(dir).map_err(|source| LogError::Open { path: dir.to_owned(), source })?;
        let file = open_log(path, false)?;
        let size = file.metadata().map_err(|source| LogError::Open { path: path.to_owned(), source })?.len();
        Ok(RotatingFile { path: path.to_owned(), max_size, max_file: max_file.max(1), file, size })
    }

    /// Writes one whole entry, rotating first if the file is full.
    pub fn write_entry(&mut self, data: &[u8]) -> Result<(), LogError> {
        if self.max_size.is_some_and(|max| self.size >= max) {
            self.rotate()?;
        }
        self.file.write_all(data).map_err(|source| LogError::Write { path: self.path.clone(), source })?;
        self.size += data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let _lock = DirLock::lock(parent_dir(&self.path), true)?;
        let err = |source| LogError::Rotate { path: self.path.clone(), source };
        let ignore_missing = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        if self.max_file >= 2 {
            ignore_missing(std::fs::remove_file(rotated_name(&self.path, self.max_file - 1))).map_err(err)?;
            for i in (2..self.max_file).rev() {
                ignore_missing(std::fs::rename(rotated_name(&self.path, i - 1), rotated_name(&self.path, i))).map_err(err)?;
            }
            ignore_missing(std::fs::rename(&self.path, rotated_name(&self.path, 1))).map_err(err)?;
        } else {
            ignore_missing(std::fs::remove_file(&self.path)).map_err(err)?;
        }
        self.file = open_log(&self.path, true)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|_| "<none>".into())
    }

    #[test]
    fn rotates_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut f = RotatingFile::open(&path, Some(10), 3).unwrap();
        for e in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n", "eeeeee\n"] {
            f.write_entry(e.as_bytes()).unwrap();
        }
        // A file is full once it holds >= 10 bytes: two entries each.
        assert_eq!(read(&path), "eeeeee\n");
        assert_eq!(read(&rotated_name(&path, 1)), "cccccc\ndddddd\n");
        assert_eq!(read(&rotated_name(&path, 2)), "aaaaaa\nbbbbbb\n");
        assert_eq!(read(&rotated_name(&path, 3)), "<none>");
        for e in ["ffffff\n", "gggggg\n"] {
            f.write_entry(e.as_bytes()).unwrap();
        }
        assert_eq!(read(&path), "gggggg\n");
        assert_eq!(read(&rotated_name(&path, 1)), "eeeeee\nffffff\n");
        assert_eq!(read(&rotated_name(&path, 2)), "cccccc\ndddddd\n");
    }

    #[test]
    fn one_file_is_truncated_and_reopening_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut f = RotatingFile::open(&path, Some(4), 1).unwrap();
        f.write_entry(b"one\n").unwrap();
        f.write_entry(b"two\n").unwrap();
        assert_eq!(read(&path), "two\n");
        assert_eq!(read(&rotated_name(&path, 1)), "<none>");
        drop(f);
        let mut f = RotatingFile::open(&path, None, 1).unwrap();
        f.write_entry(b"three\n").unwrap();
        assert_eq!(read(&path), "two\nthree\n");
    }
}
