//! Reading and writing cgroup files.
//!
//! Limits are written through the small [`Files`] seam so that unit tests can
//! record every write (a cgroup file takes many writes, e.g. one
//! `devices.allow` line each, which a plain file in a temp dir would not
//! keep) and make chosen files refuse values as the kernel does.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub(crate) trait Files {
    /// Writes `value` with one write(2) to an existing file.
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
}

/// The real cgroup filesystem.
pub(crate) struct Kernel;

impl Files for Kernel {
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        write(path, value)
    }
}

/// Opens an existing file (never creates one: a missing cgroup file is an
/// error, as on cgroupfs) and writes `value` with a single write(2), which is
/// what the kernel parses as one value.
pub(crate) fn write(path: &Path, value: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).custom_flags(libc::O_CLOEXEC).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("short write: {n} of {} bytes", value.len())));
    }
    Ok(())
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> io::Result<Vec<i32>> {
    Ok(std::fs::read_to_string(path)?.split_whitespace().filter_map(|s| s.parse().ok()).collect())
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::PathBuf;

    /// A recording fake: writes to files named in `present` succeed and are
    /// recorded; others fail with ENOENT; `refuse` makes a file fail with an
    /// errno.
    #[derive(Default)]
    pub(crate) struct Recorder {
        pub present: Vec<&'static str>,
        pub refuse: HashMap<&'static str, i32>,
        pub writes: RefCell<Vec<(PathBuf, String)>>,
    }

    impl Recorder {
        pub fn with(present: &[&'static str]) -> Recorder {
            Recorder { present: present.to_vec(), ..Recorder::default() }
        }

        fn name(path: &Path) -> String {
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        }

        /// `(file name, value)` of every write, in order.
        pub fn names(&self) -> Vec<(String, String)> {
            self.writes.borrow().iter().map(|(p, v)| (Recorder::name(p), v.clone())).collect()
        }
    }

    impl Files for Recorder {
        fn write(&self, path: &Path, value: &str) -> io::Result<()> {
            let name = Recorder::name(path);
            if let Some(errno) = self.refuse.get(name.as_str()) {
                return Err(io::Error::from_raw_os_error(*errno));
            }
            if !self.present.iter().any(|p| *p == name) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            self.writes.borrow_mut().push((path.to_owned(), value.to_owned()));
            Ok(())
        }
    }
}
