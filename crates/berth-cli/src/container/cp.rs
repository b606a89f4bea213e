//! cp: the archive API both ways. `CONTAINER:SRC DEST` fetches a tar and
//! unpacks it with docker's renaming rules (`-` writes the tar to stdout);
//! `SRC CONTAINER:DEST` packs (or takes the tar on stdin for `-`) and puts
//! it in the destination directory.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use futures_util::StreamExt;

use super::{ContainerError, CpArgs};
use crate::app::Ctx;
use crate::client::{Client, percent_encode, query};

#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error("must specify at least one container source")]
    NoContainer,
    #[error("copying between containers is not supported")]
    Between,
    #[error("{path}: {reason}")]
    Local { path: String, reason: String },
    #[error("refusing to unpack {0:?}: it leaves the destination")]
    Escape(String),
    #[error("destination \"{0}\" must be a directory")]
    NotDir(String),
}

/// `container:path` or a local path (`./a:b` stays local).
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') || arg == "-" {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

fn local_err(path: &str, e: &std::io::Error) -> CpError {
    CpError::Local { path: path.to_owned(), reason: crate::opts::io_reason(e) }
}

#[derive(Debug, Default, serde::Deserialize)]
struct PathStat {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: u32,
}

const MODE_DIR: u32 = 1 << 31;

/// `HEAD /containers/{id}/archive?path=` → the stat docker puts in a header.
async fn stat(c: &Client, container: &str, path: &str) -> Result<Option<PathStat>, ContainerError> {
    match c.docker.get_container_archive_info(container, Some(bollard::query_parameters::ContainerArchiveInfoOptions { path: path.to_owned() })).await {
        Ok(info) => Ok(Some(PathStat { name: info.name, mode: info.file_mode })),
        Err(e) => {
            let e = c.err(e);
            if e.is_not_found() { Ok(None) } else { Err(e.into()) }
        }
    }
}

pub async fn cp(ctx: &Ctx, a: &CpArgs) -> Result<(), ContainerError> {
    let (sc, sp) = split_cp_arg(&a.src);
    let (dc, dp) = split_cp_arg(&a.dst);
    let c = ctx.client()?;
    match (sc, dc) {
        (Some(_), Some(_)) => Err(CpError::Between.into()),
        (None, None) => Err(CpError::NoContainer.into()),
        (Some(container), None) => from_container(c, container, sp, dp).await,
        (None, Some(container)) => to_container(c, container, sp, dp, a.archive, a.follow_link).await,
    }
}

async fn from_container(c: &Client, container: &str, src: &str, dst: &str) -> Result<(), ContainerError> {
    let o = bollard::query_parameters::DownloadFromContainerOptions { path: src.to_owned() };
    let mut s = c.docker.download_from_container(container, Some(o));
    let mut tar_bytes = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| c.err(e))?;
        if dst == "-" {
            crate::app::out_bytes(&chunk);
        } else {
            tar_bytes.extend_from_slice(&chunk);
        }
    }
    if dst == "-" {
        return Ok(());
    }
    let src_base = Path::new(src.trim_end_matches('/')).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dst_path = Path::new(dst);
    let src_contents_only = src.ends_with("/.");
    // docker's rules: into an existing directory the source keeps its
    // name; otherwise the source is renamed to the destination.
    let (root, rename_to): (PathBuf, Option<String>) = if dst_path.is_dir() {
        if src_contents_only { (dst_path.to_path_buf(), Some(String::new())) } else { (dst_path.to_path_buf(), None) }
    } else {
        if dst.ends_with('/') {
            return Err(CpError::NotDir(dst.to_owned()).into());
        }
        let parent = dst_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dst_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (parent.to_path_buf(), Some(name))
    };
    unpack(&tar_bytes, &root, &src_base, rename_to.as_deref())?;
    Ok(())
}

/// Unpack, renaming the leading `src_base` component to `rename_to`
/// (empty: drop it); entries that would leave `root` are refused.
pub fn unpack(data: &[u8], root: &Path, src_base: &str, rename_to: Option<&str>) -> Result<(), CpError> {
    let mut ar = tar::Archive::new(data);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    let entries = ar.entries().map_err(|e| local_err("archive", &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| local_err("archive", &e))?;
        let path = entry.path().map_err(|e| local_err("archive", &e))?.into_owned();
        let mut comps = path.components().filter(|c| !matches!(c, Component::CurDir));
        let first = comps.next();
        let rest: PathBuf = comps.collect();
        let rel = match (first, rename_to) {
            (Some(Component::Normal(f)), Some(new)) if f.to_string_lossy() == src_base => match (new.is_empty(), rest.as_os_str().is_empty()) {
                (true, _) => rest,
                (false, true) => PathBuf::from(new),
                (false, false) => Path::new(new).join(rest),
            },
            (Some(f), _) if rest.as_os_str().is_empty() => PathBuf::from(f.as_os_str()),
            (Some(f), _) => Path::new(f.as_os_str()).join(rest),
            (None, _) => continue,
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(CpError::Escape(path.to_string_lossy().into_owned()));
        }
        let target = root.join(&rel);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| local_err(&p.to_string_lossy(), &e))?;
        }
        entry.unpack(&target).map_err(|e| local_err(&target.to_string_lossy(), &e))?;
    }
    Ok(())
}

/// Pack a local path as a tar whose top entry is `name`.
pub fn pack(src: &Path, name: &str, follow: bool) -> Result<Vec<u8>, CpError> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let meta = if follow { std::fs::metadata(src) } else { std::fs::symlink_metadata(src) }.map_err(|e| local_err(&src.to_string_lossy(), &e))?;
    if meta.is_dir() {
        b.append_dir_all(name, src).map_err(|e| local_err(&src.to_string_lossy(), &e))?;
    } else {
        b.append_path_with_name(src, name).map_err(|e| local_err(&src.to_string_lossy(), &e))?;
    }
    b.into_inner().map_err(|e| local_err(&src.to_string_lossy(), &e))
}

async fn to_container(c: &Client, container: &str, src: &str, dst: &str, archive: bool, follow: bool) -> Result<(), ContainerError> {
    let (dir, body) = if src == "-" {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data).map_err(|e| ContainerError::io("read stdin", &e))?;
        (dst.to_owned(), data)
    } else {
        let st = stat(c, container, dst).await?;
        let src_path = Path::new(src);
        let base = src_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into());
        match st {
            Some(s) if s.mode & MODE_DIR != 0 => (dst.to_owned(), pack(src_path, &base, follow)?),
            Some(s) => {
                let parent = Path::new(dst).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
                let name = if s.name.is_empty() { base } else { s.name };
                (if parent.is_empty() { "/".into() } else { parent }, pack(src_path, &name, follow)?)
            }
            None => {
                if dst.ends_with('/') {
                    return Err(CpError::NotDir(dst.to_owned()).into());
                }
                let p = Path::new(dst);
                let parent = p.parent().map(|p| p.to_string_lossy().into_owned()).filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(base);
                (parent, pack(src_path, &name, follow)?)
            }
        }
    };
    let mut q = vec![("path", dir), ("noOverwriteDirNonDir", "true".to_owned())];
    if archive {
        q.push(("copyUIDGID", "true".into()));
    }
    let path = format!("/containers/{}/archive{}", percent_encode(container), query(&q));
    put_tar(c, &path, &body).await
}

async fn put_tar(c: &Client, path: &str, body: &[u8]) -> Result<(), ContainerError> {
    let mut r = c.upload("PUT", path, "application/x-tar", &mut &body[..]).await?;
    r.read_to_end().await?;
    let _ = std::io::stdout().flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_like_docker() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
    }

    #[test]
    fn pack_and_unpack_rename_the_top_entry() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "hi").unwrap();
        let tar = pack(&src, "src", false).unwrap();
        // into an existing directory: keeps its name
        let into = d.path().join("into");
        std::fs::create_dir(&into).unwrap();
        unpack(&tar, &into, "src", None).unwrap();
        assert_eq!(std::fs::read_to_string(into.join("src/sub/f")).unwrap(), "hi");
        // to a new name: renamed
        unpack(&tar, d.path(), "src", Some("renamed")).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("renamed/sub/f")).unwrap(), "hi");
    }

    #[test]
    fn entries_leaving_the_destination_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // write a raw name with `..` (the builder's set_path refuses it)
        h.as_old_mut().name[..8].copy_from_slice(b"x/../../");
        h.set_cksum();
        b.append(&h, &b"z"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(unpack(&data, d.path(), "x", Some("y")), Err(CpError::Escape(_))));
    }
}
