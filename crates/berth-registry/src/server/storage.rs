//! The registry's filesystem storage.
//!
//! ```text
//! <root>/blobs/<alg>/<hex>                         every blob and manifest, once (dedup)
//! <root>/uploads/<uuid>/{data,repo}                upload sessions in progress
//! <root>/repositories/<name>/_blobs/<alg>/<hex>    the repository holds this blob (empty file)
//! <root>/repositories/<name>/_manifests/<alg>/<hex> the repository holds this manifest (its media type)
//! <root>/repositories/<name>/_tags/<tag>           tag → manifest digest
//! <root>/repositories/<name>/_referrers/<alg>-<hex>/<alg>-<hex>
//!                                                  subject → referrer descriptor (JSON)
//! ```
//!
//! Repository path components never start with `_`, so a repository named
//! `a/_tags` cannot exist and the `_` directories never collide with a
//! nested repository. Every file is written atomically (temp, fsync,
//! rename); a blob becomes visible by one rename once its digest is
//! verified.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_image::digest::{Algorithm, Digest, Hasher};

#[derive(Debug, thiserror::Error)]
#[error("registry storage {path}: {source}")]
pub struct StorageError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn serr(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError { path: path.to_owned(), source }
}

fn sys(path: &Path) -> impl FnOnce(berth_sys::fs::FsError) -> StorageError + '_ {
    move |e| StorageError { path: path.to_owned(), source: io::Error::other(e.to_string()) }
}

/// Storage rooted at one directory.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Storage {
    pub fn open(root: &Path) -> Result<Storage, StorageError> {
        for d in ["blobs/sha256", "blobs/sha512", "uploads", "repositories"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(serr(&p))?;
        }
        for d in ["blobs/sha256", "blobs/sha512"] {
            let p = root.join(d);
            berth_sys::fs::remove_temp_leftovers(&p).map_err(serr(&p))?;
        }
        Ok(Storage { root: root.to_owned() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm().name()).join(d.hex())
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repositories").join(repo)
    }

    fn blob_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_blobs").join(d.algorithm().name()).join(d.hex())
    }

    fn manifest_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join(d.algorithm().name()).join(d.hex())
    }

    fn tag_path(&self, repo: &str, tag: &str) -> PathBuf {
        self.repo_dir(repo).join("_tags").join(tag)
    }

    fn referrers_dir(&self, repo: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_referrers").join(format!("{}-{}", subject.algorithm().name(), subject.hex()))
    }

    pub fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Whether the repository has ever held anything.
    pub fn repo_exists(&self, repo: &str) -> bool {
        let d = self.repo_dir(repo);
        d.join("_blobs").is_dir() || d.join("_manifests").is_dir() || d.join("_tags").is_dir()
    }

    pub fn blob_exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a blob the repository holds.
    pub fn repo_blob_size(&self, repo: &str, d: &Digest) -> Option<u64> {
        if !self.blob_link(repo, d).is_file() {
            return None;
        }
        fs::metadata(self.blob_path(d)).ok().map(|m| m.len())
    }

    pub fn link_blob(&self, repo: &str, d: &Digest) -> Result<(), StorageError> {
        let p = self.blob_link(repo, d);
        if p.is_file() {
            return Ok(());
        }
        write_file(&p, b"")
    }

    /// Drop the repository's link to a blob; whether it had one.
    pub fn unlink_blob(&self, repo: &str, d: &Digest) -> Result<bool, StorageError> {
        remove_file(&self.blob_link(repo, d))
    }

    /// Make a verified upload file the blob `d` (or drop it when the blob
    /// is already stored).
    pub fn commit_blob(&self, data: &Path, d: &Digest) -> Result<(), StorageError> {
        let target = self.blob_path(d);
        if target.is_file() {
            remove_file(data)?;
            return Ok(());
        }
        fs::File::open(data).and_then(|f| f.sync_all()).map_err(serr(data))?;
        berth_sys::fs::rename_synced(data, &target).map_err(sys(&target))
    }

    /// Store small content (a manifest) as a blob.
    pub fn put_blob_bytes(&self, d: &Digest, data: &[u8]) -> Result<(), StorageError> {
        let p = self.blob_path(d);
        if p.is_file() {
            return Ok(());
        }
        write_file(&p, data)
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StorageError> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(serr(&p))
    }

    pub fn link_manifest(&self, repo: &str, d: &Digest, media_type: &str) -> Result<(), StorageError> {
        let p = self.manifest_link(repo, d);
        write_file(&p, media_type.as_bytes())
    }

    /// The media type of a manifest the repository holds.
    pub fn manifest_media_type(&self, repo: &str, d: &Digest) -> Option<String> {
        let mt = fs::read_to_string(self.manifest_link(repo, d)).ok()?;
        self.blob_exists(d).then_some(mt)
    }

    pub fn unlink_manifest(&self, repo: &str, d: &Digest) -> Result<bool, StorageError> {
        remove_file(&self.manifest_link(repo, d))
    }

    pub fn tag(&self, repo: &str, tag: &str) -> Option<Digest> {
        fs::read_to_string(self.tag_path(repo, tag)).ok()?.trim().parse().ok()
    }

    pub fn set_tag(&self, repo: &str, tag: &str, d: &Digest) -> Result<(), StorageError> {
        let p = self.tag_path(repo, tag);
        write_file(&p, d.to_string().as_bytes())
    }

    pub fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool, StorageError> {
        remove_file(&self.tag_path(repo, tag))
    }

    /// Tags in Go's `sort.Strings` order.
    pub fn tags(&self, repo: &str) -> Result<Vec<String>, StorageError> {
        let mut out = list_names(&self.repo_dir(repo).join("_tags"))?;
        out.retain(|n| !n.starts_with(".tmp-"));
        out.sort();
        Ok(out)
    }

    /// Tags pointing at `d`.
    pub fn tags_of(&self, repo: &str, d: &Digest) -> Result<Vec<String>, StorageError> {
        Ok(self.tags(repo)?.into_iter().filter(|t| self.tag(repo, t).as_ref() == Some(d)).collect())
    }

    /// Record `referrer` (a descriptor, JSON) as pointing at `subject`.
    pub fn add_referrer(&self, repo: &str, subject: &Digest, referrer: &Digest, desc: &serde_json::Value) -> Result<(), StorageError> {
        let p = self.referrers_dir(repo, subject).join(format!("{}-{}", referrer.algorithm().name(), referrer.hex()));
        write_file(&p, &serde_json::to_vec(desc).expect("descriptor serializes"))
    }

    pub fn remove_referrer(&self, repo: &str, subject: &Digest, referrer: &Digest) -> Result<(), StorageError> {
        remove_file(&self.referrers_dir(repo, subject).join(format!("{}-{}", referrer.algorithm().name(), referrer.hex()))).map(drop)
    }

    /// Descriptors of the manifests whose subject is `subject`.
    pub fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<serde_json::Value>, StorageError> {
        let dir = self.referrers_dir(repo, subject);
        let mut names = list_names(&dir)?;
        names.sort();
        let mut out = Vec::new();
        for n in names.iter().filter(|n| !n.starts_with(".tmp-")) {
            let p = dir.join(n);
            if let Ok(data) = fs::read(&p)
                && let Ok(v) = serde_json::from_slice(&data)
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every manifest digest the repository holds.
    pub fn manifests(&self, repo: &str) -> Result<Vec<Digest>, StorageError> {
        list_digests(&self.repo_dir(repo).join("_manifests"))
    }

    /// Every blob digest the repository links.
    pub fn repo_blobs(&self, repo: &str) -> Result<Vec<Digest>, StorageError> {
        list_digests(&self.repo_dir(repo).join("_blobs"))
    }

    /// Every stored blob with its size.
    pub fn all_blobs(&self) -> Result<Vec<(Digest, u64)>, StorageError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            for n in list_names(&dir)? {
                if let Ok(d) = Digest::from_hex(alg, &n) {
                    let len = fs::metadata(dir.join(&n)).map(|m| m.len()).unwrap_or(0);
                    out.push((d, len));
                }
            }
        }
        Ok(out)
    }

    pub fn delete_blob(&self, d: &Digest) -> Result<bool, StorageError> {
        remove_file(&self.blob_path(d))
    }

    /// Every repository name, sorted.
    pub fn repositories(&self) -> Result<Vec<String>, StorageError> {
        let base = self.root.join("repositories");
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(StorageError { path: d, source: e }),
            };
            let mut is_repo = false;
            for e in rd {
                let e = e.map_err(serr(&d))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('_') {
                    is_repo = true;
                } else if e.file_type().map_err(serr(&d))?.is_dir() {
                    stack.push(e.path());
                }
            }
            if is_repo && let Ok(rel) = d.strip_prefix(&base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Hash a file with `alg`.
    pub fn hash_file(path: &Path, alg: Algorithm) -> Result<(Digest, u64), StorageError> {
        let mut f = fs::File::open(path).map_err(serr(path))?;
        let mut h = Hasher::new(alg);
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).map_err(serr(path))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        Ok((h.finish(), n))
    }
}

/// Write a small file atomically, creating its directory.
fn write_file(p: &Path, data: &[u8]) -> Result<(), StorageError> {
    if let Some(dir) = p.parent()
        && !dir.is_dir()
    {
        fs::create_dir_all(dir).map_err(serr(dir))?;
    }
    berth_sys::fs::write_atomic(p, data).map_err(sys(p))
}

fn remove_file(p: &Path) -> Result<bool, StorageError> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(StorageError { path: p.to_owned(), source: e }),
    }
}

fn list_names(dir: &Path) -> Result<Vec<String>, StorageError> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()).map_err(serr(dir))).collect(),
        Err(e) if not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(StorageError { path: dir.to_owned(), source: e }),
    }
}

fn list_digests(dir: &Path) -> Result<Vec<Digest>, StorageError> {
    let mut out = Vec::new();
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        for n in list_names(&dir.join(alg.name()))? {
            if let Ok(d) = Digest::from_hex(alg, &n) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most 255 characters.
pub fn valid_repository(name: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        let an = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !an(b[0]) || !an(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if an(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            match b[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < b.len() && b[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < b.len() && b[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
            if i == start || i >= b.len() || !an(b[i]) {
                return false;
            }
        }
        true
    }
    !name.is_empty() && name.len() <= 255 && name.split('/').all(component)
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_follow_the_spec() {
        for ok in ["a", "a/b", "conformance/repo1", "a.b_c__d---e/f", "0"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in ["", "A", "a/", "/a", "a//b", "..", "a/../b", "a/_tags", "a_", "a___b", "a/.b", "a%2fb", "a b"] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(!valid_repository(&"a".repeat(256)));
        for ok in ["latest", "_x", "V1.2-rc_3"] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "..", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn links_tags_and_referrers() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"m");
        s.put_blob_bytes(&d, b"m").unwrap();
        assert!(!s.repo_exists("a/b"));
        s.link_manifest("a/b", &d, "application/x").unwrap();
        s.set_tag("a/b", "v2", &d).unwrap();
        s.set_tag("a/b", "V1", &d).unwrap();
        assert!(s.repo_exists("a/b"));
        assert_eq!(s.tags("a/b").unwrap(), ["V1", "v2"]);
        assert_eq!(s.manifest_media_type("a/b", &d).as_deref(), Some("application/x"));
        assert_eq!(s.manifest_media_type("a/c", &d), None);
        let sub = Digest::sha256_of(b"s");
        s.add_referrer("a/b", &sub, &d, &serde_json::json!({"digest": d.to_string()})).unwrap();
        assert_eq!(s.referrers("a/b", &sub).unwrap().len(), 1);
        s.remove_referrer("a/b", &sub, &d).unwrap();
        assert!(s.referrers("a/b", &sub).unwrap().is_empty());
        s.link_blob("a", &d).unwrap();
        assert_eq!(s.repositories().unwrap(), ["a", "a/b"]);
        assert_eq!(s.repo_blob_size("a", &d), Some(1));
        assert!(s.unlink_blob("a", &d).unwrap());
        assert_eq!(s.repo_blob_size("a", &d), None);
    }
}
