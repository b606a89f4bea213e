//! The content store: blobs addressed by digest.
//!
//! Lifecycle of a blob, as containerd's content store:
//! 1. [`ContentStore::writer`] opens an *ingest* named by a caller's ref
//!    (`ingest/<sha256(ref)>/data`). If an ingest of that ref exists from an
//!    interrupted write, the writer resumes it: the data already there is
//!    re-hashed and [`Writer::offset`] says where to continue.
//! 2. The caller writes bytes; they are hashed as they go.
//! 3. [`Writer::commit`] fsyncs, checks the digest (and size) against what the
//!    caller expected, and only then renames the data to
//!    `blobs/<alg>/<hex>`: a blob is never visible before it is verified.
//! 4. [`ContentStore::delete`] removes a blob; garbage collection decides
//!    which.
//!
//! Small blobs (configs, manifests) go through [`ContentStore::put`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::ErrorKind;
use crate::compression::BUF_SIZE;
use crate::digest::{Algorithm, Digest, Hasher};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content {digest}: not found")]
    NotFound { digest: Digest },
    #[error("digest mismatch for {reference}: expected {expected}, got {actual}")]
    DigestMismatch { reference: String, expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },
    #[error("content store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl ContentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound { .. } => ErrorKind::NotFound,
            ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. } => ErrorKind::InvalidParameter,
            ContentError::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
    move |source| ContentError::Io { path: path.to_owned(), source }
}

fn sys_err(e: berth_sys::fs::FsError) -> ContentError {
    let path = match &e {
        berth_sys::fs::FsError::Write { path, .. } | berth_sys::fs::FsError::SyncDir { path, .. } => path.clone(),
        berth_sys::fs::FsError::Rename { to, .. } => to.clone(),
        berth_sys::fs::FsError::NoParent { path } => path.clone(),
    };
    let msg = e.to_string();
    ContentError::Io { path, source: io::Error::other(msg) }
}

/// Blobs by digest under one directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Open (creating) the store under `root`, removing temp files a crashed
    /// writer left. Partial ingests stay, to be resumed or aborted.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        for d in ["blobs/sha256", "blobs/sha512", "ingest"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        for alg in ["sha256", "sha512"] {
            let p = root.join("blobs").join(alg);
            berth_sys::fs::remove_temp_leftovers(&p).map_err(io_err(&p))?;
        }
        Ok(ContentStore { root: root.to_owned() })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm().name()).join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64, ContentError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound { digest: d.clone() }),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::NotFound { digest: d.clone() },
            _ => ContentError::Io { path: p.clone(), source: e },
        })
    }

    /// Read a whole (small) blob and verify it against its digest.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut data = Vec::new();
        let p = self.blob_path(d);
        self.open_blob(d)?.read_to_end(&mut data).map_err(io_err(&p))?;
        let mut h = Hasher::new(d.algorithm());
        h.update(&data);
        let actual = h.finish();
        if &actual != d {
            return Err(ContentError::DigestMismatch { reference: p.display().to_string(), expected: d.clone(), actual });
        }
        Ok(data)
    }

    /// Store a small blob in one go; returns its sha256 digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest, ContentError> {
        let d = Digest::sha256_of(data);
        if !self.exists(&d) {
            berth_sys::fs::write_atomic(&self.blob_path(&d), data).map_err(sys_err)?;
        }
        Ok(d)
    }

    /// Store everything `r` yields, verified against `expected` when given.
    pub fn put_stream(&self, reference: &str, r: &mut dyn Read, expected: Option<&Digest>) -> Result<(Digest, u64), ContentError> {
        if let Some(d) = expected
            && self.exists(d) {
                return Ok((d.clone(), self.size(d)?));
            }
        let mut w = self.writer(reference, expected.map_or(Algorithm::Sha256, Digest::algorithm))?;
        if w.offset() > 0 && expected.is_none() {
            // Nothing to verify a resumed prefix against: start over.
            w.abort()?;
            w = self.writer(reference, Algorithm::Sha256)?;
        }
        if w.offset() > 0 {
            // A resumed ingest of a stream we cannot seek: skip what we have.
            let skipped = io::copy(&mut r.take(w.offset()), &mut io::sink()).map_err(io_err(&w.path))?;
            if skipped != w.offset() {
                w.abort()?;
                return self.put_stream(reference, r, expected);
            }
        }
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ContentError::Io { path: PathBuf::from(reference), source: e }),
            };
            w.write_all(&buf[..n]).map_err(io_err(&w.path))?;
        }
        w.commit(expected, None)
    }

    /// Remove a blob; absent is fine.
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Every stored blob with its size.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>, ContentError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
                let e = e.map_err(io_err(&dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(d) = Digest::from_hex(alg, &name) {
                    let len = e.metadata().map_err(io_err(&e.path()))?.len();
                    out.push((d, len));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn ingest_dir(&self, reference: &str) -> PathBuf {
        self.root.join("ingest").join(Digest::sha256_of(reference.as_bytes()).hex())
    }

    /// Open an ingest for `reference`, resuming a partial one if present.
    pub fn writer(&self, reference: &str, algorithm: Algorithm) -> Result<Writer, ContentError> {
        let dir = self.ingest_dir(reference);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let refp = dir.join("ref");
        if !refp.exists() {
            fs::write(&refp, reference).map_err(io_err(&refp))?;
        }
        let path = dir.join("data");
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io_err(&path))?;
        let mut hasher = Hasher::new(algorithm);
        let mut offset = 0u64;
        file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = file.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        Ok(Writer { store: self.clone(), reference: reference.to_owned(), dir, path, file, hasher, offset })
    }

    /// The refs of partial ingests, with their sizes so far.
    pub fn ingests(&self) -> Result<Vec<(String, u64)>, ContentError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let r = fs::read_to_string(e.path().join("ref")).unwrap_or_default();
            let len = fs::metadata(e.path().join("data")).map(|m| m.len()).unwrap_or(0);
            out.push((r, len));
        }
        Ok(out)
    }

    /// Drop every partial ingest (garbage collection, or a caller that will
    /// not resume).
    pub fn clear_ingests(&self) -> Result<usize, ContentError> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            fs::remove_dir_all(&p).map_err(io_err(&p))?;
            n += 1;
        }
        Ok(n)
    }
}

/// An open ingest: write, then commit or abort.
pub struct Writer {
    store: ContentStore,
    reference: String,
    dir: PathBuf,
    path: PathBuf,
    file: File,
    hasher: Hasher,
    offset: u64,
}

impl Writer {
    /// Bytes already in the ingest (non-zero when resuming).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file the ingest is written to: a reader may follow it while it
    /// grows (an open descriptor stays valid across [`Writer::commit`]).
    pub fn data_path(&self) -> &Path {
        &self.path
    }

    /// Verify and make the blob visible. Fails, removing the ingest, when the
    /// content does not match `expected` or `expected_size`.
    pub fn commit(self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<(Digest, u64), ContentError> {
        self.file.sync_all().map_err(io_err(&self.path))?;
        let actual = self.hasher.clone().finish();
        let size = self.offset;
        if let Some(exp) = expected
            && exp != &actual {
                let reference = self.reference.clone();
                self.abort()?;
                return Err(ContentError::DigestMismatch { reference, expected: exp.clone(), actual });
            }
        if let Some(exp) = expected_size
            && exp != size {
                self.abort()?;
                return Err(ContentError::SizeMismatch { digest: actual, expected: exp, actual: size });
            }
        let target = self.store.blob_path(&actual);
        if target.exists() {
            self.abort()?;
        } else {
            berth_sys::fs::rename_synced(&self.path, &target).map_err(sys_err)?;
            fs::remove_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        }
        Ok((actual, size))
    }

    /// Throw the partial data away.
    pub fn abort(self) -> Result<(), ContentError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io { path: self.dir.clone(), source: e }),
        }
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.put(b"hello").unwrap();
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.list().unwrap(), vec![(d.clone(), 5)]);
        cs.delete(&d).unwrap();
        assert!(matches!(cs.read(&d), Err(ContentError::NotFound { .. })));
    }

    #[test]
    fn mismatched_digest_is_never_visible() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let wrong = Digest::sha256_of(b"other");
        let err = cs.put_stream("x", &mut &b"data"[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&wrong.to_string()));
        assert!(cs.list().unwrap().is_empty());
        assert!(cs.ingests().unwrap().is_empty());
    }

    #[test]
    fn interrupted_ingest_resumes_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
        let expected = Digest::sha256_of(&data);
        {
            let mut w = cs.writer("layer-1", Algorithm::Sha256).unwrap();
            w.write_all(&data[..20_000]).unwrap();
            // dropped without commit: a crash
        }
        assert_eq!(cs.ingests().unwrap(), vec![("layer-1".to_owned(), 20_000)]);
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.writer("layer-1", Algorithm::Sha256).unwrap();
        assert_eq!(w.offset(), 20_000);
        w.write_all(&data[20_000..]).unwrap();
        let (d, n) = w.commit(Some(&expected), Some(50_000)).unwrap();
        assert_eq!((d, n), (expected.clone(), 50_000));
        // a stream resumed through put_stream skips what is there
        let mut w = cs.writer("again", Algorithm::Sha256).unwrap();
        w.write_all(&data[..100]).unwrap();
        drop(w);
        cs.delete(&expected).unwrap();
        let (d, _) = cs.put_stream("again", &mut &data[..], Some(&expected)).unwrap();
        assert_eq!(cs.read(&d).unwrap(), data);
    }

    #[test]
    fn open_removes_temp_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let tmp = dir.path().join("blobs/sha256/.tmp-abc.1");
        fs::write(&tmp, b"half").unwrap();
        ContentStore::open(dir.path()).unwrap();
        assert!(!tmp.exists());
        assert!(cs.list().unwrap().is_empty());
    }
}
