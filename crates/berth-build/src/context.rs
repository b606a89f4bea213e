//! The build context on disk: a tar (plain or compressed, as `POST /build`
//! receives it) unpacked into a directory, `.dockerignore` applied (the
//! Dockerfile and `.dockerignore` themselves are always kept), and the
//! other direction for clients: a directory written as a context tar.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::ignore::{Ignore, IgnoreError};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("unpack build context: {0}")]
    Unpack(io::Error),
    #[error("read build context {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
}

/// Unpack a context tar (gzip, xz, zstd or plain) into `dest`.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<(), ContextError> {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    let head = r.fill_buf().map_err(ContextError::Unpack)?.to_vec();
    let r: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(r).map_err(ContextError::Unpack)?)
    } else {
        Box::new(r)
    };
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    for entry in a.entries().map_err(ContextError::Unpack)? {
        let entry = match entry {
            Ok(e) => e,
            // The docker CLI's `-f -` context ends right after the last
            // entry's data, without padding or end blocks; dockerd takes it.
            // (The tar crate reports it only by this message.)
            Err(e) if e.to_string().contains("unexpected EOF during skip") => break,
            Err(e) => return Err(ContextError::Unpack(e)),
        };
        // unpack_in refuses entries that would land outside `dest`.
        let mut entry = entry;
        entry.unpack_in(dest).map_err(ContextError::Unpack)?;
    }
    Ok(())
}

/// The `.dockerignore` of a context directory (empty when absent).
pub fn ignore_of(dir: &Path) -> Result<Ignore, ContextError> {
    match fs::read_to_string(dir.join(".dockerignore")) {
        Ok(t) => Ok(Ignore::parse(&t)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ignore::default()),
        Err(source) => Err(ContextError::Io { path: ".dockerignore".into(), source }),
    }
}

fn always_kept(rel: &str, dockerfile: &str) -> bool {
    rel == ".dockerignore" || rel == crate::ignore::clean(dockerfile)
}

/// Remove what `.dockerignore` excludes from an unpacked context.
pub fn apply_ignore(dir: &Path, dockerfile: &str) -> Result<(), ContextError> {
    let ig = ignore_of(dir)?;
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    // Deepest first, so a directory is removed after its contents.
    files.sort_by(|a, b| b.0.cmp(&a.0));
    for (rel, is_dir) in files {
        if always_kept(&rel, dockerfile) || !ig.excluded(&rel) {
            continue;
        }
        let p = dir.join(&rel);
        let r = if is_dir { fs::remove_dir(&p).or_else(|e| if e.kind() == io::ErrorKind::DirectoryNotEmpty { Ok(()) } else { Err(e) }) } else { fs::remove_file(&p) };
        r.map_err(|source| ContextError::Io { path: rel.clone(), source })?;
    }
    Ok(())
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, bool)>) -> Result<(), ContextError> {
    let here = if rel.is_empty() { dir.to_owned() } else { dir.join(rel) };
    let rd = fs::read_dir(&here).map_err(|source| ContextError::Io { path: rel.to_owned(), source })?;
    for e in rd {
        let e = e.map_err(|source| ContextError::Io { path: rel.to_owned(), source })?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((r.clone(), is_dir));
        if is_dir {
            walk(dir, &r, out)?;
        }
    }
    Ok(())
}

/// Write `dir` as a context tar, leaving out what its `.dockerignore`
/// excludes (the Dockerfile and `.dockerignore` are always sent). With
/// `extra`, that file (a Dockerfile read from elsewhere) is added under the
/// given name.
pub fn write_tar(dir: &Path, dockerfile: &str, extra: Option<(&str, &[u8])>, w: impl Write) -> Result<(), ContextError> {
    let ig = ignore_of(dir)?;
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    files.sort();
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let e = |path: &str| {
        let path = path.to_owned();
        move |source| ContextError::Io { path, source }
    };
    for (rel, is_dir) in &files {
        let excluded = !always_kept(rel, dockerfile) && ig.excluded(rel);
        if excluded && !(*is_dir && ig.has_exceptions()) {
            continue;
        }
        if *is_dir {
            if !excluded {
                b.append_dir(rel, dir.join(rel)).map_err(e(rel))?;
            }
        } else {
            b.append_path_with_name(dir.join(rel), rel).map_err(e(rel))?;
        }
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).map_err(e(name))?;
    }
    b.into_inner().map_err(e("context"))?.flush().map_err(e("context"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_round_trip_applies_dockerignore() {
        let base = std::env::temp_dir().join(format!("berth-build-ctx-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let src = base.join("src");
        fs::create_dir_all(src.join("logs")).unwrap();
        fs::create_dir_all(src.join("app")).unwrap();
        fs::write(src.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(src.join(".dockerignore"), "logs\n*.tmp\nDockerfile\n!keep.tmp\n").unwrap();
        fs::write(src.join("logs/a.log"), "x").unwrap();
        fs::write(src.join("a.tmp"), "x").unwrap();
        fs::write(src.join("keep.tmp"), "x").unwrap();
        fs::write(src.join("app/main.sh"), "echo").unwrap();
        let mut buf = Vec::new();
        write_tar(&src, "Dockerfile", None, &mut buf).unwrap();
        let dst = base.join("dst");
        fs::create_dir_all(&dst).unwrap();
        unpack(&buf[..], &dst).unwrap();
        assert!(dst.join("Dockerfile").exists(), "the Dockerfile is always sent");
        assert!(dst.join("app/main.sh").exists());
        assert!(dst.join("keep.tmp").exists());
        assert!(!dst.join("a.tmp").exists());
        assert!(!dst.join("logs").exists());
        // The daemon applies it again to what a client sent unfiltered.
        fs::write(dst.join("b.tmp"), "x").unwrap();
        apply_ignore(&dst, "Dockerfile").unwrap();
        assert!(!dst.join("b.tmp").exists());
        assert!(dst.join("keep.tmp").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn unpadded_last_entry_is_accepted_but_truncated_data_is_not() {
        let base = std::env::temp_dir().join(format!("berth-build-ctx-pad-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let mut tar = Vec::new();
        let mut b = tar::Builder::new(&mut tar);
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &b"FROM\n"[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        // As the docker CLI sends it: header + data, no padding, no end blocks.
        unpack(&tar[..512 + 5], &base).unwrap();
        assert_eq!(fs::read(base.join("Dockerfile")).unwrap(), b"FROM\n");
        assert!(unpack(&tar[..512 + 3], &base.join("x")).is_err());
        fs::remove_dir_all(&base).unwrap();
    }
}
