//! Filesystem work of build steps: paths resolved inside a root (an image's
//! symlinks never lead out of it), COPY/ADD's copy with docker's directory
//! rules, ownership and modes, ADD's archive extraction, content checksums
//! for the cache, and USER's passwd/group lookups.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Why a file operation of a step failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error("too many levels of symbolic links resolving {path}")]
    Loop { path: PathBuf },
    #[error("unable to find user {user}: no matching entries in passwd file")]
    NoUser { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    NoGroup { group: String },
    #[error("extract {path}: {source}")]
    Extract { path: PathBuf, source: io::Error },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError::Io { what, path: path.to_owned(), source }
}

/// `root` joined with `path`, following symlinks as if `root` were `/`:
/// the result is always inside `root`. The last component is followed
/// only with `follow_last`.
pub fn scoped(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, FsError> {
    let mut pending: Vec<String> = path.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect();
    pending.reverse();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&c);
        let last = pending.is_empty();
        match fs::symlink_metadata(root.join(&next)) {
            Ok(m) if m.file_type().is_symlink() && (!last || follow_last) => {
                links += 1;
                if links > 255 {
                    return Err(FsError::Loop { path: PathBuf::from(path) });
                }
                let target = fs::read_link(root.join(&next)).map_err(io_err("read link", &next))?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur = PathBuf::new();
                }
                let mut parts: Vec<String> = t.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect();
                parts.reverse();
                pending.extend(parts);
            }
            _ => cur = next,
        }
    }
    Ok(root.join(cur))
}

/// Clean a context-relative path; None when it leaves the context.
pub fn clean_rel(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(n) => parts.push(n.to_str()?),
        }
    }
    Some(parts.join("/"))
}

/// Ownership and mode to give copied files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    pub chmod: Option<u32>,
}

/// Create `dir` and missing parents (0755, root) inside `root`.
pub fn mkdir_all(root: &Path, dir: &str, owner: Option<(u32, u32)>) -> Result<PathBuf, FsError> {
    let mut acc = String::new();
    for c in dir.split('/').filter(|c| !c.is_empty()) {
        acc.push('/');
        acc.push_str(c);
        let p = scoped(root, &acc, true)?;
        if !p.exists() {
            fs::create_dir(&p).map_err(io_err("create directory", &p))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &p))?;
            if let Some((u, g)) = owner {
                std::os::unix::fs::lchown(&p, Some(u), Some(g)).map_err(io_err("chown", &p))?;
            }
        }
    }
    scoped(root, dir, true)
}

fn set_attrs(p: &Path, meta: &fs::Metadata, a: &Attrs) -> Result<(), FsError> {
    std::os::unix::fs::lchown(p, Some(a.uid), Some(a.gid)).map_err(io_err("chown", p))?;
    if !meta.file_type().is_symlink() {
        let mode = a.chmod.unwrap_or(meta.mode() & 0o7777);
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", p))?;
    }
    let mtime = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    let _ = nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &mtime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
    Ok(())
}

/// Copy `src` (a file, symlink or directory on the host) to `dst` (already
/// resolved inside the target root). A directory's contents are merged into
/// `dst`.
pub fn copy_tree(src: &Path, dst: &Path, a: &Attrs) -> Result<(), FsError> {
    let meta = fs::symlink_metadata(src).map_err(io_err("stat", src))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        if !fs::symlink_metadata(dst).is_ok_and(|m| m.is_dir()) {
            let _ = fs::remove_file(dst);
            fs::create_dir(dst).map_err(io_err("create directory", dst))?;
        }
        let mut names: Vec<_> = fs::read_dir(src).map_err(io_err("read directory", src))?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            copy_tree(&src.join(&n), &dst.join(&n), a)?;
        }
    } else {
        if let Ok(m) = fs::symlink_metadata(dst) {
            if m.is_dir() {
                fs::remove_dir_all(dst).map_err(io_err("replace", dst))?;
            } else {
                fs::remove_file(dst).map_err(io_err("replace", dst))?;
            }
        }
        if ft.is_symlink() {
            let t = fs::read_link(src).map_err(io_err("read link", src))?;
            symlink(&t, dst).map_err(io_err("symlink", dst))?;
        } else if ft.is_file() {
            fs::copy(src, dst).map_err(io_err("copy to", dst))?;
        } else {
            // Devices, fifos, sockets: recreated as the node they are.
            let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode());
            nix::sys::stat::mknod(dst, kind, nix::sys::stat::Mode::from_bits_truncate(meta.mode()), meta.rdev())
                .map_err(|e| FsError::Io { what: "mknod", path: dst.to_owned(), source: e.into() })?;
        }
    }
    set_attrs(dst, &meta, a)
}

/// A checksum over the sources' names, types, modes and contents: what the
/// cache key of COPY/ADD includes.
pub fn checksum(paths: &[(String, PathBuf)]) -> Result<String, FsError> {
    let mut h = Sha256::new();
    fn walk(h: &mut Sha256, rel: &str, p: &Path) -> Result<(), FsError> {
        let m = fs::symlink_metadata(p).map_err(io_err("stat", p))?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(format!("{:o}", m.mode()).as_bytes());
        if m.is_dir() {
            let mut names: Vec<_> = fs::read_dir(p).map_err(io_err("read directory", p))?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            names.sort();
            for n in names {
                walk(h, &format!("{rel}/{}", n.to_string_lossy()), &p.join(&n))?;
            }
        } else if m.file_type().is_symlink() {
            h.update(fs::read_link(p).map_err(io_err("read link", p))?.to_string_lossy().as_bytes());
        } else if m.is_file() {
            let mut f = fs::File::open(p).map_err(io_err("open", p))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(io_err("read", p))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        h.update([1]);
        Ok(())
    }
    for (rel, p) in paths {
        walk(&mut h, rel, p)?;
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The compression (or plain tar) of a local file ADD extracts, if it is an
/// archive.
pub fn archive_kind(p: &Path) -> Option<&'static str> {
    let mut head = [0u8; 262];
    let n = fs::File::open(p).and_then(|mut f| f.read(&mut head)).ok()?;
    let h = &head[..n];
    if h.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if n >= 262 && &h[257..262] == b"ustar" {
        Some("tar")
    } else {
        None
    }
}

/// Extract a (compressed) tar into `dst` (inside the root): entries never
/// land outside `dst`; owners are kept, as docker's ADD does.
pub fn extract(archive: &Path, kind: &str, dst: &Path) -> Result<(), FsError> {
    let f = io::BufReader::new(fs::File::open(archive).map_err(io_err("open", archive))?);
    let e = |source| FsError::Extract { path: archive.to_owned(), source };
    let r: Box<dyn Read> = match kind {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(f)),
        "xz" => Box::new(liblzma::read::XzDecoder::new(f)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(f).map_err(e)?),
        _ => Box::new(f),
    };
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_overwrite(true);
    a.set_unpack_xattrs(false);
    for entry in a.entries().map_err(e)? {
        let mut entry = entry.map_err(e)?;
        entry.unpack_in(dst).map_err(e)?;
    }
    Ok(())
}

/// Write a heredoc or downloaded file.
pub fn write_file(dst: &Path, data: &[u8], a: &Attrs, default_mode: u32) -> Result<(), FsError> {
    if fs::symlink_metadata(dst).is_ok() {
        fs::remove_file(dst).map_err(io_err("replace", dst))?;
    }
    let mut f = fs::File::create(dst).map_err(io_err("create", dst))?;
    f.write_all(data).map_err(io_err("write", dst))?;
    std::os::unix::fs::lchown(dst, Some(a.uid), Some(a.gid)).map_err(io_err("chown", dst))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(a.chmod.unwrap_or(default_mode))).map_err(io_err("chmod", dst))
}

fn db_lines(root: &Path, file: &str) -> Vec<Vec<String>> {
    let Ok(p) = scoped(root, file, true) else { return Vec::new() };
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect()
}

/// A USER or --chown value resolved in the image: uid, gid and the user's
/// supplementary groups.
pub fn resolve_user(root: &Path, spec: &str) -> Result<(u32, u32, Vec<u32>), FsError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = db_lines(root, "/etc/passwd");
    let groups = db_lines(root, "/etc/group");
    let entry = passwd.iter().find(|e| e.first().map(String::as_str) == Some(user) || (user.parse::<u32>().is_ok() && e.get(2).map(String::as_str) == Some(user)));
    let (uid, mut gid, name) = match (user.parse::<u32>(), entry) {
        (_, Some(e)) => (
            e.get(2).and_then(|s| s.parse().ok()).unwrap_or(0),
            e.get(3).and_then(|s| s.parse().ok()).unwrap_or(0),
            e.first().cloned().unwrap_or_default(),
        ),
        (Ok(n), None) => (n, 0, String::new()),
        (Err(_), None) if user.is_empty() => (0, 0, "root".into()),
        (Err(_), None) => return Err(FsError::NoUser { user: user.to_owned() }),
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e.first().map(String::as_str) == Some(g))
                .and_then(|e| e.get(2)?.parse().ok())
                .ok_or_else(|| FsError::NoGroup { group: g.to_owned() })?,
        };
    }
    let extra = if group.is_none() && !name.is_empty() {
        groups
            .iter()
            .filter(|e| e.get(3).is_some_and(|m| m.split(',').any(|x| x == name)))
            .filter_map(|e| e.get(2)?.parse().ok())
            .filter(|g| *g != gid)
            .collect()
    } else {
        Vec::new()
    };
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-build-fsops-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn scoped_never_leaves_root() {
        let d = tmp("scoped");
        fs::create_dir_all(d.join("a")).unwrap();
        symlink("/etc", d.join("a/abs")).unwrap();
        symlink("../../../..", d.join("a/up")).unwrap();
        assert_eq!(scoped(&d, "/a/abs/passwd", true).unwrap(), d.join("etc/passwd"));
        assert_eq!(scoped(&d, "a/up/x", true).unwrap(), d.join("x"));
        assert_eq!(scoped(&d, "/a/abs", false).unwrap(), d.join("a/abs"));
        symlink("loop", d.join("loop")).unwrap();
        assert!(matches!(scoped(&d, "/loop/x", true), Err(FsError::Loop { .. })));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn clean_rel_refuses_escapes() {
        assert_eq!(clean_rel("./a/../b/").as_deref(), Some("b"));
        assert_eq!(clean_rel("/abs/x").as_deref(), Some("abs/x"));
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel("a/../../x"), None);
    }

    #[test]
    fn users_and_groups() {
        let d = tmp("users");
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(d.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n").unwrap();
        fs::write(d.join("etc/group"), "root:x:0:\napp:x:1001:\nwheel:x:10:app\n").unwrap();
        assert_eq!(resolve_user(&d, "app").unwrap(), (1000, 1001, vec![10]));
        assert_eq!(resolve_user(&d, "app:wheel").unwrap(), (1000, 10, vec![]));
        assert_eq!(resolve_user(&d, "1000").unwrap().0, 1000);
        assert_eq!(resolve_user(&d, "4242:7").unwrap(), (4242, 7, vec![]));
        assert_eq!(resolve_user(&d, "nobody").unwrap_err().to_string(), "unable to find user nobody: no matching entries in passwd file");
        assert!(resolve_user(&d, "app:nogroup").is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn checksum_follows_content_and_mode() {
        let d = tmp("sum");
        fs::write(d.join("f"), "one").unwrap();
        let a = checksum(&[("f".into(), d.join("f"))]).unwrap();
        fs::write(d.join("f"), "two").unwrap();
        let b = checksum(&[("f".into(), d.join("f"))]).unwrap();
        assert_ne!(a, b);
        fs::set_permissions(d.join("f"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(b, checksum(&[("f".into(), d.join("f"))]).unwrap());
        fs::remove_dir_all(&d).unwrap();
    }
}
