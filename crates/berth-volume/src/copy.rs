//! Copy-up: a new volume mounted where the image has content starts with
//! that content, owners, modes, times and links kept (docker's
//! `copyExistingContents`). Written here because no well-kept crate copies
//! a tree with ownership, special files and hard-link-free semantics as the
//! kernel sees them; it is a short walk over std and nix calls.
//!
//! Also the usage of a volume: the bytes of its files, each inode once.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io { path: path.to_owned(), source }
}

/// Whether `dir` has no entries (a missing dir counts as empty).
pub fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

/// Fill the empty directory `dst` with the content of `src`, and give `dst`
/// the owner and mode of `src`. Nothing happens when `dst` isn't empty or
/// `src` isn't a directory.
pub fn copy_up(src: &Path, dst: &Path) -> Result<bool, CopyError> {
    let Ok(meta) = std::fs::metadata(src) else { return Ok(false) };
    if !meta.is_dir() || !is_empty(dst) {
        return Ok(false);
    }
    copy_dir_contents(src, dst)?;
    set_owner_mode(dst, &meta)?;
    Ok(true)
}

fn set_owner_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), CopyError> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid())).map_err(io(path))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io(path))?;
    }
    Ok(())
}

fn set_times(path: &Path, meta: &std::fs::Metadata) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let at = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mt = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    let _ = utimensat(nix::fcntl::AT_FDCWD, path, &at, &mt, UtimensatFlags::NoFollowSymlink);
}

fn copy_dir_contents(src: &Path, dst: &Path) -> Result<(), CopyError> {
    for entry in std::fs::read_dir(src).map_err(io(src))? {
        let entry = entry.map_err(io(src))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&from).map_err(io(&from))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).map_err(io(&to))?;
            copy_dir_contents(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(io(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io(&to))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(io(&to))?;
        } else {
            // fifos, sockets, device nodes: made again with their numbers.
            let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
            nix::sys::stat::mknod(&to, kind, perm, meta.rdev()).map_err(|e| CopyError::Io { path: to.clone(), source: e.into() })?;
        }
        set_owner_mode(&to, &meta)?;
        set_times(&to, &meta);
    }
    Ok(())
}

/// Bytes used by the files under `dir`, each inode counted once (docker's
/// `directory.Size`). Unreadable entries are skipped.
pub fn usage(dir: &Path) -> u64 {
    fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                // Another filesystem mounted inside still counts, as docker's.
                total += walk(&e.path(), seen);
            } else if m.is_file() && (m.nlink() < 2 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
        total
    }
    walk(dir, &mut HashSet::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_up_fills_an_empty_dir_only() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "hello").unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hard")).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir(&dst).unwrap();
        assert!(copy_up(&src, &dst).unwrap());
        assert_eq!(std::fs::read_to_string(dst.join("sub/f")).unwrap(), "hello");
        assert_eq!(std::fs::metadata(dst.join("sub/f")).unwrap().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap(), Path::new("sub/f"));
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o777, 0o750);
        assert_eq!(
            std::fs::metadata(src.join("sub/f")).unwrap().mtime(),
            std::fs::metadata(dst.join("sub/f")).unwrap().mtime()
        );
        // Not empty any more: a second copy-up leaves it alone.
        std::fs::write(src.join("new"), "x").unwrap();
        assert!(!copy_up(&src, &dst).unwrap());
        assert!(!dst.join("new").exists());
        // A missing source copies nothing.
        assert!(!copy_up(&t.path().join("nope"), &t.path().join("other")).unwrap());
        // 5 bytes in sub/f (hard-linked as src/hard: counted once), the
        // symlink's length is not a file's.
        assert_eq!(usage(&src), 5 + 1);
    }
}
