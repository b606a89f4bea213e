//! Unpacked layers, shared read-only by every image and container that
//! stacks them.
//!
//! Lifecycle:
//! 1. [`LayerStore::register`] unpacks a tar stream into a staging directory
//!    `layers/.tmp-<random>/diff`, hashing it into the diff ID, and checks it
//!    against the expected diff ID when one is known.
//! 2. The chain ID follows from the parent's chain ID and the diff ID. The
//!    record `layer.json` and a short name under `l/` (for overlay's
//!    lowerdir, see [`LayerStore::lower_dirs`]) are written, and one rename
//!    `layers/.tmp-<random>` → `layers/<chain hex>` makes the layer visible.
//! 3. [`LayerStore::remove`] renames it back out of sight, then deletes it.
//!
//! A crash at any point leaves a `.tmp-` directory, a directory without
//! `layer.json`, or a dangling `l/` link; [`LayerStore::open`] removes them.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::digest::{Digest, chain_ids};
use crate::unpack::{self, UnpackError, Unpacked};

const TMP: &str = ".tmp-";
const RECORD: &str = "layer.json";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {chain_id} does not exist")]
    NotFound { chain_id: Digest },
    #[error("layer diff id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("unpack layer: {source}")]
    Unpack {
        #[from]
        source: UnpackError,
    },
    #[error("layer store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("layer record {path}: {source}")]
    Record { path: PathBuf, source: serde_json::Error },
}

impl LayerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LayerError::NotFound { .. } => ErrorKind::NotFound,
            LayerError::DiffIdMismatch { .. } => ErrorKind::InvalidParameter,
            LayerError::Unpack { source } => source.kind(),
            LayerError::Io { .. } | LayerError::Record { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io { path: path.to_owned(), source }
}

pub(crate) fn fs_err(e: berth_sys::fs::FsError) -> io::Error {
    io::Error::other(e.to_string())
}

/// What is recorded about one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content (docker's layer size).
    pub size: u64,
    /// Length of the uncompressed tar.
    pub tar_size: u64,
    /// Short name under `l/`.
    pub link: String,
}

#[derive(Debug, Clone)]
pub struct LayerStore {
    root: PathBuf,
}

/// Random name made of `len` base32 characters.
pub(crate) fn random_name(len: usize) -> String {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = vec![0u8; len];
    if fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i * 5) % 120)) as u8 ^ (std::process::id() as u8).wrapping_mul(i as u8 + 1);
        }
    }
    bytes.iter().map(|b| ALPHA[(b & 31) as usize] as char).collect()
}

/// Length of the short names under `l/`. 12 base32 characters keep 150
/// lower dirs well under the one-page limit of mount data.
const LINK_LEN: usize = 12;

impl LayerStore {
    /// Open (creating) the store under `root` and repair crash leftovers.
    pub fn open(root: &Path) -> Result<LayerStore, LayerError> {
        let s = LayerStore { root: root.to_owned() };
        for d in [s.layers_dir(), s.links_dir()] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        s.repair()?;
        Ok(s)
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    /// The directory of short links used in overlay lowerdir options.
    pub fn links_dir(&self) -> PathBuf {
        self.root.join("l")
    }
    fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.layers_dir().join(chain.hex())
    }
    /// The unpacked tree of a layer.
    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain).join("diff")
    }

    fn repair(&self) -> Result<(), LayerError> {
        let dir = self.layers_dir();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP) || !e.path().join(RECORD).is_file() {
                tracing::info!(path = %e.path().display(), "removing unfinished layer");
                remove_tree(&e.path()).map_err(io_err(&e.path()))?;
            }
        }
        let links = self.links_dir();
        for e in fs::read_dir(&links).map_err(io_err(&links))? {
            let e = e.map_err(io_err(&links))?;
            if !e.path().exists() {
                fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
            }
        }
        berth_sys::fs::remove_temp_leftovers(&links).map_err(io_err(&links))?;
        Ok(())
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.layer_dir(chain).join(RECORD).is_file()
    }

    pub fn get(&self, chain: &Digest) -> Result<LayerInfo, LayerError> {
        let p = self.layer_dir(chain).join(RECORD);
        let data = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LayerError::NotFound { chain_id: chain.clone() },
            _ => LayerError::Io { path: p.clone(), source: e },
        })?;
        serde_json::from_slice(&data).map_err(|source| LayerError::Record { path: p, source })
    }

    /// Every layer.
    pub fn list(&self) -> Result<Vec<LayerInfo>, LayerError> {
        let dir = self.layers_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(d) = Digest::from_hex(crate::digest::Algorithm::Sha256, &name)
                && self.exists(&d) {
                    out.push(self.get(&d)?);
                }
        }
        Ok(out)
    }

    /// Unpack `tar` (any compression) as a layer over `parent`. Returns the
    /// existing layer when the same chain ID is already stored.
    pub fn register(
        &self,
        parent: Option<&Digest>,
        tar: impl Read + Send,
        expected_diff_id: Option<&Digest>,
    ) -> Result<LayerInfo, LayerError> {
        if let Some(p) = parent
            && !self.exists(p) {
                return Err(LayerError::NotFound { chain_id: p.clone() });
            }
        // Known already: no need to unpack (the caller's stream is not read).
        if let Some(diff) = expected_diff_id {
            let chain = chain_of(parent, diff);
            if self.exists(&chain) {
                return self.get(&chain);
            }
        }
        let staging = self.layers_dir().join(format!("{TMP}{}", random_name(16)));
        let result = self.register_staged(&staging, parent, tar, expected_diff_id);
        if result.is_err() || staging.exists() {
            let _ = remove_tree(&staging);
        }
        result
    }

    fn register_staged(
        &self,
        staging: &Path,
        parent: Option<&Digest>,
        tar: impl Read + Send,
        expected_diff_id: Option<&Digest>,
    ) -> Result<LayerInfo, LayerError> {
        let diff = staging.join("diff");
        fs::create_dir_all(&diff).map_err(io_err(&diff))?;
        let Unpacked { diff_id, tar_size, content_size, .. } = unpack::unpack(tar, &diff)?;
        if let Some(exp) = expected_diff_id
            && exp != &diff_id {
                return Err(LayerError::DiffIdMismatch { expected: exp.clone(), actual: diff_id });
            }
        let chain_id = chain_of(parent, &diff_id);
        if self.exists(&chain_id) {
            return self.get(&chain_id);
        }
        let final_dir = self.layer_dir(&chain_id);
        if final_dir.exists() {
            remove_tree(&final_dir).map_err(io_err(&final_dir))?;
        }
        let link = self.make_link(&chain_id)?;
        let info = LayerInfo { chain_id: chain_id.clone(), diff_id, parent: parent.cloned(), size: content_size, tar_size, link };
        let rec = staging.join(RECORD);
        berth_sys::fs::write_atomic(&rec, &serde_json::to_vec_pretty(&info).expect("layer record serializes"))
            .map_err(|e| LayerError::Io { path: rec.clone(), source: fs_err(e) })?;
        if let Err(e) = berth_sys::fs::rename_synced(staging, &final_dir) {
            // Another registration of the same layer won the race: use it.
            let _ = fs::remove_file(self.links_dir().join(&info.link));
            if self.exists(&chain_id) {
                return self.get(&chain_id);
            }
            return Err(LayerError::Io { path: final_dir, source: fs_err(e) });
        }
        Ok(info)
    }

    /// Create `l/<short>` → `../layers/<chain hex>/diff`.
    fn make_link(&self, chain: &Digest) -> Result<String, LayerError> {
        let target = PathBuf::from("../layers").join(chain.hex()).join("diff");
        loop {
            let name = random_name(LINK_LEN);
            let p = self.links_dir().join(&name);
            match std::os::unix::fs::symlink(&target, &p) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(LayerError::Io { path: p, source: e }),
            }
        }
    }

    /// The chain of a layer, topmost first: itself, its parent, ...
    pub fn ancestry(&self, chain: &Digest) -> Result<Vec<LayerInfo>, LayerError> {
        let mut out = Vec::new();
        let mut cur = Some(chain.clone());
        while let Some(c) = cur {
            let info = self.get(&c)?;
            cur = info.parent.clone();
            out.push(info);
        }
        Ok(out)
    }

    /// Overlay lowerdir paths for a chain, topmost first, through the short
    /// links (`<root>/l/<short>`).
    pub fn lower_dirs(&self, chain: &Digest) -> Result<Vec<PathBuf>, LayerError> {
        Ok(self.ancestry(chain)?.into_iter().map(|l| self.links_dir().join(l.link)).collect())
    }

    /// Remove a layer (the caller made sure nothing uses it).
    pub fn remove(&self, chain: &Digest) -> Result<(), LayerError> {
        let info = self.get(chain)?;
        let dir = self.layer_dir(chain);
        let doomed = self.layers_dir().join(format!("{TMP}rm-{}", chain.hex()));
        fs::rename(&dir, &doomed).map_err(io_err(&dir))?;
        let link = self.links_dir().join(&info.link);
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(LayerError::Io { path: link, source: e }),
        }
        remove_tree(&doomed).map_err(io_err(&doomed))
    }
}

/// The chain ID of `diff` over `parent`.
pub fn chain_of(parent: Option<&Digest>, diff: &Digest) -> Digest {
    match parent {
        None => diff.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff}").as_bytes()),
    }
}

/// Chain IDs for a list of diff IDs (re-exported for callers of the store).
pub fn chain_ids_of(diff_ids: &[Digest]) -> Vec<Digest> {
    chain_ids(diff_ids)
}

/// Remove a directory tree, treating "absent" as done.
pub(crate) fn remove_tree(p: &Path) -> io::Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Disk usage of a tree in bytes (file sizes, hardlinks counted once).
pub fn dir_size(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}
