//! Files written so that a crash at any instant leaves the old content or the
//! new one, never a mix: write a temporary sibling, fsync it, rename it over
//! the target, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Errors from the file helpers, each naming the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("rename {from} to {to}: {source}")]
    Rename { from: PathBuf, to: PathBuf, source: io::Error },
    #[error("sync directory {path}: {source}")]
    SyncDir { path: PathBuf, source: io::Error },
    #[error("{path} has no parent directory")]
    NoParent { path: PathBuf },
}

impl FsError {
    /// The underlying I/O error, for callers that branch on its kind.
    pub fn io(&self) -> Option<&io::Error> {
        match self {
            FsError::Write { source, .. }
            | FsError::Rename { source, .. }
            | FsError::SyncDir { source, .. } => Some(source),
            FsError::NoParent { .. } => None,
        }
    }
}

/// Name of the temporary file used while writing `path`. Leftovers carry this
/// prefix so that startup repair can find and remove them.
pub const TEMP_PREFIX: &str = ".tmp-";

fn temp_sibling(path: &Path) -> Result<PathBuf, FsError> {
    let parent = path.parent().ok_or_else(|| FsError::NoParent { path: path.to_owned() })?;
    let name = path.file_name().ok_or_else(|| FsError::NoParent { path: path.to_owned() })?;
    let mut tmp = std::ffi::OsString::from(TEMP_PREFIX);
    tmp.push(name);
    tmp.push(format!(".{}", std::process::id()));
    Ok(parent.join(tmp))
}

/// Atomically replace `path` with `data` (mode 0644).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), FsError> {
    write_atomic_mode(path, data, 0o644)
}

/// Atomically replace `path` with `data`, without making it durable: a
/// crash of the process leaves the old or the new file, but a power loss may
/// lose both. For runtime state under the exec root (`/run`), which does not
/// outlive a reboot anyway; it saves the fsyncs that dominate a container's
/// start on a slow disk.
pub fn write_replace(path: &Path, data: &[u8]) -> Result<(), FsError> {
    let tmp = temp_sibling(path)?;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|source| FsError::Write { path: tmp.clone(), source })?;
        f.write_all(data).map_err(|source| FsError::Write { path: tmp.clone(), source })?;
        fs::rename(&tmp, path).map_err(|source| FsError::Rename { from: tmp.clone(), to: path.to_owned(), source })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Atomically replace `path` with `data`, creating it with `mode`.
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), FsError> {
    let tmp = temp_sibling(path)?;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|source| FsError::Write { path: tmp.clone(), source })?;
        f.write_all(data).map_err(|source| FsError::Write { path: tmp.clone(), source })?;
        f.sync_all().map_err(|source| FsError::Write { path: tmp.clone(), source })?;
        rename_synced(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rename `from` to `to` and fsync the destination's directory, so the rename
/// itself survives a power loss.
pub fn rename_synced(from: &Path, to: &Path) -> Result<(), FsError> {
    fs::rename(from, to).map_err(|source| FsError::Rename {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })?;
    let parent = to.parent().ok_or_else(|| FsError::NoParent { path: to.to_owned() })?;
    sync_dir(parent)
}

/// fsync a directory so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    let d = File::open(dir).map_err(|source| FsError::SyncDir { path: dir.to_owned(), source })?;
    d.sync_all().map_err(|source| FsError::SyncDir { path: dir.to_owned(), source })
}

/// Remove temporary files left in `dir` by a writer that crashed mid-write.
/// Returns how many were removed.
pub fn remove_temp_leftovers(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn write_atomic_into_missing_dir_names_the_temp_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing/state.json");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert!(err.to_string().contains("missing/.tmp-state.json"), "{err}");
    }

    #[test]
    fn write_replace_swaps_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_replace(&p, b"one").unwrap();
        write_replace(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".tmp-a.1"), b"half").unwrap();
        fs::write(dir.path().join("keep"), b"whole").unwrap();
        assert_eq!(remove_temp_leftovers(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep").exists());
    }
}
