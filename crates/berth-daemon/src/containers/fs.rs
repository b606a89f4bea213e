//! A container's filesystem: its rootfs mount (the image's layers plus its
//! writable layer), and what works on it: diff, export, commit, and the
//! archive API behind `docker cp`.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use serde_json::json;

use super::store::Container;
use crate::Daemon;
use crate::error::{ApiError, ApiResult};

impl Daemon {
    /// Where container `id`'s root filesystem is mounted while it runs.
    pub fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("rootfs").join(id)
    }

    /// The runtime's state root (shared with the shims).
    pub fn runtime_root(&self) -> PathBuf {
        self.config.exec_root.join("runtime")
    }

    pub fn runtime(&self) -> berth_runtime::Runtime {
        berth_runtime::Runtime::new(self.runtime_root())
    }
}

/// Whether `path` is a mount point right now.
pub fn is_mounted(path: &Path) -> bool {
    berth_sys::mount::mounts_under(path).map(|m| m.iter().any(|p| p == path)).unwrap_or(false)
}

/// Mount the container's snapshot at `target` (idempotent).
pub fn mount_rootfs(images: &berth_image::store::ImageStore, id: &str, target: &Path) -> ApiResult<()> {
    if is_mounted(target) {
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(|e| ApiError::internal(format!("create {}: {e}", target.display())))?;
    let mounts = images
        .snapshots()
        .mounts(id)
        .map_err(|e| ApiError::internal(format!("container {id}: its filesystem is missing: {e}")))?;
    for m in mounts {
        m.mount_at(target).map_err(|e| ApiError::internal(format!("mount rootfs of {id}: {e}")))?;
    }
    Ok(())
}

/// Unmount everything at and under `target` and remove the empty dir.
pub fn unmount_rootfs(target: &Path) {
    if let Ok(mounts) = berth_sys::mount::mounts_under(target) {
        for m in mounts {
            if let Err(e) = berth_sys::mount::unmount_detach(&m) {
                tracing::warn!("{e}");
            }
        }
    }
    let _ = std::fs::remove_dir(target);
}

/// Run `f` on the container's mounted rootfs, mounting it for the call
/// when it isn't (a stopped container).
pub fn with_rootfs<T>(
    images: &berth_image::store::ImageStore,
    id: &str,
    target: &Path,
    f: impl FnOnce(&Path) -> ApiResult<T>,
) -> ApiResult<T> {
    let was_mounted = is_mounted(target);
    mount_rootfs(images, id, target)?;
    let r = f(target);
    if !was_mounted {
        unmount_rootfs(target);
    }
    r
}

/// Resolve a path the client gave, inside the container's root, without
/// letting `..` or symlinks lead out of it (like `chroot` + lookup).
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> ApiResult<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut parts: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    parts.reverse();
    let mut hops = 0;
    while let Some(p) = parts.pop() {
        if p == ".." {
            out.pop();
            continue;
        }
        let candidate = out.join(&p);
        let last = parts.is_empty();
        let host = root.join(candidate.strip_prefix("/").expect("absolute"));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && (!last || follow_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(ApiError::invalid(format!("too many levels of symbolic links: {path}")));
                }
                let target = std::fs::read_link(&host).map_err(|e| ApiError::internal(e.to_string()))?;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                let mut more: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                more.reverse();
                parts.extend(more);
            }
            _ => out = candidate,
        }
    }
    Ok(root.join(out.strip_prefix("/").expect("absolute")))
}

/// Go's `os.FileMode` bits for a file, as docker's stat header carries them.
fn go_mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let perm = m.permissions().mode() & 0o777;
    let mut mode = perm;
    let ft = m.file_type();
    if ft.is_dir() {
        mode |= 1 << 31;
    } else if ft.is_symlink() {
        mode |= 1 << 27;
    } else if ft.is_fifo() {
        mode |= 1 << 25;
    } else if ft.is_socket() {
        mode |= 1 << 24;
    } else if ft.is_char_device() {
        mode |= (1 << 26) | (1 << 21);
    } else if ft.is_block_device() {
        mode |= 1 << 26;
    }
    let raw = m.permissions().mode();
    if raw & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if raw & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if raw & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// The `X-Docker-Container-Path-Stat` header value for `host` (the resolved
/// path) named `name` in the container.
pub fn path_stat(host: &Path, name: &str) -> ApiResult<String> {
    let m = std::fs::symlink_metadata(host).map_err(|_| {
        ApiError::not_found(format!("Could not find the file {name} in container"))
    })?;
    let link = if m.file_type().is_symlink() {
        std::fs::read_link(host).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = m.modified().map(|t| humantime::format_rfc3339_nanos(t).to_string()).unwrap_or_default();
    let base = Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
    let v = json!({"name": base, "size": m.len(), "mode": go_mode(&m), "mtime": mtime, "linkTarget": link});
    Ok(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

/// `GET /containers/{id}/archive`: a tar of `path`, named by its last
/// component (as docker's), written to `out`.
pub fn archive_path(host: &Path, name: &str, out: impl Write) -> ApiResult<()> {
    let base = Path::new(name).file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(host).map_err(|_| ApiError::not_found(format!("Could not find the file {name} in container")))?;
    let r = if meta.is_dir() { b.append_dir_all(&base, host) } else { b.append_path_with_name(host, &base) };
    r.and_then(|()| b.finish()).map_err(|e| ApiError::internal(format!("archive {name}: {e}")))
}

/// `PUT /containers/{id}/archive`: extract a tar into the directory `dir`
/// (resolved inside the root). Entries may not climb out (`..`, absolute
/// paths, or through symlinks present in the container).
pub fn extract_into(root: &Path, dir: &str, input: impl Read, no_overwrite_dir_non_dir: bool) -> ApiResult<()> {
    let target = resolve_in_root(root, dir, true)?;
    let meta = std::fs::metadata(&target).map_err(|_| ApiError::not_found(format!("Could not find the file {dir} in container")))?;
    if !meta.is_dir() {
        return Err(ApiError::invalid(format!("extraction point is not a directory: {dir}")));
    }
    // docker takes a compressed archive as well (gzip, xz).
    let (_, input) = berth_image::compression::decompress(input).map_err(|e| ApiError::invalid(format!("read archive: {e}")))?;
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let entries = ar.entries().map_err(|e| ApiError::invalid(format!("read archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ApiError::invalid(format!("read archive: {e}")))?;
        let rel = entry.path().map_err(|e| ApiError::invalid(e.to_string()))?.into_owned();
        if rel.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(ApiError::invalid(format!("archive entry {} leaves the target directory", rel.display())));
        }
        // Resolve the parent inside the container's root, so a symlink in
        // the container can't redirect the write to the host.
        let rel_str = rel.to_string_lossy();
        let inside = Path::new(dir).join(rel_str.trim_start_matches('/'));
        let parent = inside.parent().unwrap_or(Path::new("/"));
        let parent_host = resolve_in_root(root, &parent.to_string_lossy(), true)?;
        if !parent_host.starts_with(root) {
            return Err(ApiError::invalid(format!("archive entry {} leaves the container", rel.display())));
        }
        std::fs::create_dir_all(&parent_host).map_err(|e| ApiError::internal(format!("create {}: {e}", parent.display())))?;
        let dest = parent_host.join(inside.file_name().unwrap_or_default());
        if no_overwrite_dir_non_dir && let Ok(existing) = std::fs::symlink_metadata(&dest) {
            let is_dir = entry.header().entry_type().is_dir();
            if existing.is_dir() != is_dir {
                return Err(ApiError::invalid(format!(
                    "cannot overwrite {} {} with {}",
                    if existing.is_dir() { "directory" } else { "non-directory" },
                    inside.display(),
                    if is_dir { "directory" } else { "non-directory" }
                )));
            }
        }
        entry.unpack(&dest).map_err(|e| ApiError::internal(format!("extract {}: {e}", inside.display())))?;
    }
    Ok(())
}

/// Commit's pause around the snapshot: freeze the container while its
/// writable layer is read.
pub struct RuntimePauser {
    pub runtime: berth_runtime::Runtime,
    pub id: String,
}

impl berth_image::commit::Pauser for RuntimePauser {
    fn pause(&self) -> std::io::Result<()> {
        self.runtime.pause(&self.id).map_err(std::io::Error::other)
    }
    fn resume(&self) -> std::io::Result<()> {
        self.runtime.resume(&self.id).map_err(std::io::Error::other)
    }
}

/// Whether the container has a live process (so commit should pause it).
pub fn running(c: &Container) -> bool {
    c.state.status.is_alive()
}

/// The mount points docker keeps in a container's init layer, under its
/// writable layer, so that `docker diff` never shows them. berth makes the
/// ones it needs in the writable layer itself.
const INIT_PATHS: &[&str] =
    &["/dev/pts", "/dev/shm", "/proc", "/sys", "/.dockerenv", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/dev/console", "/etc/mtab"];

/// The init layer's mount points as paths inside the root, for commit to
/// leave out.
pub fn init_placeholders() -> Vec<std::path::PathBuf> {
    INIT_PATHS.iter().map(|p| std::path::PathBuf::from(&p[1..])).collect()
}

/// `docker diff` as docker shows it: without the init layer's mount points,
/// nor a directory listed only because one of them was made in it.
pub fn hide_init_paths(changes: Vec<berth_image::api::Change>) -> Vec<berth_image::api::Change> {
    let under = |p: &str, dir: &str| p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/';
    let kept: Vec<_> = changes.into_iter().filter(|c| !INIT_PATHS.contains(&c.path.as_str())).collect();
    let only_for_init = |c: &berth_image::api::Change| {
        c.kind != berth_image::api::Change::DELETED
            && INIT_PATHS.iter().any(|i| under(i, &c.path))
            && !kept.iter().any(|o| under(&o.path, &c.path))
    };
    kept.iter().filter(|c| !only_for_init(c)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_hides_the_init_layers_mount_points() {
        use berth_image::api::Change;
        let c = |path: &str, kind| Change { path: path.into(), kind };
        let changes = vec![c("/etc", 0), c("/etc/hostname", 1), c("/etc/hosts", 1), c("/etc/resolv.conf", 1), c("/proc", 1)];
        assert!(hide_init_paths(changes).is_empty());
        let changes = vec![c("/etc", 0), c("/etc/hosts", 1), c("/etc/passwd", 0), c("/tmp", 0), c("/tmp/x", 1)];
        assert_eq!(hide_init_paths(changes), vec![c("/etc", 0), c("/etc/passwd", 0), c("/tmp", 0), c("/tmp/x", 1)]);
    }

    #[test]
    fn paths_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/a", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("a/up")).unwrap();
        assert_eq!(resolve_in_root(root, "/abs/b", true).unwrap(), root.join("a/b"));
        assert_eq!(resolve_in_root(root, "/../../a", true).unwrap(), root.join("a"));
        // A link that climbs out lands at the container's root instead.
        assert_eq!(resolve_in_root(root, "/a/up/passwd", true).unwrap(), root.join("etc/passwd"));
        assert_eq!(resolve_in_root(root, "/abs", false).unwrap(), root.join("abs"));
    }

    #[test]
    fn archives_round_trip_and_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/f"), "x").unwrap();
        let mut tarball = Vec::new();
        archive_path(&root.join("data"), "/data", &mut tarball).unwrap();
        std::fs::create_dir_all(root.join("copy")).unwrap();
        extract_into(&root, "/copy", &tarball[..], false).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("copy/data/f")).unwrap(), "x");
        // A symlink in the container pointing at the host's /tmp is followed
        // inside the root only.
        std::os::unix::fs::symlink("/tmp", root.join("copy/evil")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "evil/pwned-by-berth-test", &b"y"[..]).unwrap();
        let t = b.into_inner().unwrap();
        extract_into(&root, "/copy", &t[..], false).unwrap();
        assert!(!Path::new("/tmp/pwned-by-berth-test").exists());
        assert!(root.join("tmp/pwned-by-berth-test").exists());
        let stat = path_stat(&root.join("data"), "/data").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(stat).unwrap()).unwrap();
        assert_eq!(v["name"], "data");
        assert_eq!(v["mode"].as_u64().unwrap() >> 31, 1);
    }
}
