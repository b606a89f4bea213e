//! Snapshots: a container's root filesystem as an overlay of its image's
//! layers and its own upper and work directories.
//!
//! Lifecycle, as containerd's snapshotter (`core/snapshots/snapshotter.go`):
//! 1. [`Snapshotter::prepare`] makes an *active* snapshot `key` over a
//!    committed layer chain (or over nothing) and returns the mounts that
//!    build it; the caller mounts them (the store never mounts).
//! 2. [`Snapshotter::view`] makes a read-only snapshot over a chain.
//! 3. [`Snapshotter::mounts`] returns the same mounts again (after a restart).
//! 4. The container's changes are read from [`Snapshotter::upper_dir`]
//!    (`diff`, `commit`), and committed as a new layer by the image store.
//! 5. [`Snapshotter::remove`] deletes it once the caller has unmounted.
//!
//! Many snapshots share the same lower dirs: they are the layer store's
//! directories, reached through its short `l/` links so that deep images fit
//! the mount data limit (`berth_sys::mount` shortens the paths further when
//! needed, as docker's overlay2 does).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_sys::mount::Mount;
use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::digest::Digest;
use crate::layer::{LayerError, LayerStore, fs_err, remove_tree};

const TMP: &str = ".tmp-";
const RECORD: &str = "snapshot.json";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {key} does not exist")]
    NotFound { key: String },
    #[error("snapshot {key} already exists")]
    Exists { key: String },
    #[error("invalid snapshot key {key:?}")]
    InvalidKey { key: String },
    #[error("snapshot parent: {source}")]
    Layer {
        #[from]
        source: LayerError,
    },
    #[error("snapshot store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("snapshot record {path}: {source}")]
    Record { path: PathBuf, source: serde_json::Error },
}

impl SnapshotError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::Exists { .. } => ErrorKind::Conflict,
            SnapshotError::InvalidKey { .. } => ErrorKind::InvalidParameter,
            SnapshotError::Layer { source } => source.kind(),
            SnapshotError::Io { .. } | SnapshotError::Record { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_owned(), source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    Active,
    View,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub key: String,
    pub kind: SnapshotKind,
    /// Chain ID of the top image layer under it.
    pub parent: Option<Digest>,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    layers: LayerStore,
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Snapshotter {
    /// Open (creating) the snapshots under `root`; leftovers of a crash
    /// (staging dirs, dirs without a record) are removed.
    pub fn open(root: &Path, layers: LayerStore) -> Result<Snapshotter, SnapshotError> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        for e in fs::read_dir(root).map_err(io_err(root))? {
            let e = e.map_err(io_err(root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP) || !e.path().join(RECORD).is_file() {
                tracing::info!(path = %e.path().display(), "removing unfinished snapshot");
                remove_tree(&e.path()).map_err(io_err(&e.path()))?;
            }
        }
        Ok(Snapshotter { root: root.to_owned(), layers })
    }

    fn dir(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        if !valid_key(key) {
            return Err(SnapshotError::InvalidKey { key: key.to_owned() });
        }
        Ok(self.root.join(key))
    }

    /// The writable upper directory of an active snapshot.
    pub fn upper_dir(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        Ok(self.dir(key)?.join("fs"))
    }

    fn create(&self, key: &str, kind: SnapshotKind, parent: Option<&Digest>) -> Result<Vec<Mount>, SnapshotError> {
        let dir = self.dir(key)?;
        if dir.exists() {
            return Err(SnapshotError::Exists { key: key.to_owned() });
        }
        if let Some(p) = parent
            && !self.layers.exists(p) {
                return Err(LayerError::NotFound { chain_id: p.clone() }.into());
            }
        let staging = self.root.join(format!("{TMP}{key}"));
        let result = (|| {
            remove_tree(&staging).map_err(io_err(&staging))?;
            for d in ["fs", "work"] {
                let p = staging.join(d);
                fs::create_dir_all(&p).map_err(io_err(&p))?;
            }
            let info = SnapshotInfo { key: key.to_owned(), kind, parent: parent.cloned(), created: crate::model::now_rfc3339() };
            let rec = staging.join(RECORD);
            berth_sys::fs::write_atomic(&rec, &serde_json::to_vec_pretty(&info).expect("snapshot record serializes"))
                .map_err(|e| SnapshotError::Io { path: rec.clone(), source: fs_err(e) })?;
            berth_sys::fs::rename_synced(&staging, &dir).map_err(|e| SnapshotError::Io { path: dir.clone(), source: fs_err(e) })
        })();
        if let Err(e) = result {
            let _ = remove_tree(&staging);
            return Err(e);
        }
        self.mounts(key)
    }

    /// A writable snapshot `key` over the layer chain `parent`.
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, SnapshotKind::Active, parent)
    }

    /// A read-only snapshot `key` over `parent`.
    pub fn view(&self, key: &str, parent: Option<&Digest>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, SnapshotKind::View, parent)
    }

    pub fn get(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        let p = self.dir(key)?.join(RECORD);
        let data = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SnapshotError::NotFound { key: key.to_owned() },
            _ => SnapshotError::Io { path: p.clone(), source: e },
        })?;
        serde_json::from_slice(&data).map_err(|source| SnapshotError::Record { path: p, source })
    }

    /// The mounts that build snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let info = self.get(key)?;
        let dir = self.dir(key)?;
        let lowers = match &info.parent {
            Some(p) => self.layers.lower_dirs(p)?,
            None => Vec::new(),
        };
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let fsdir = dir.join("fs");
        Ok(vec![match (info.kind, lowers.len()) {
            (SnapshotKind::Active, 0) => Mount::new("bind", s(&fsdir), vec!["rbind".into(), "rw".into()]),
            (SnapshotKind::Active, _) => {
                let lower = lowers.iter().map(|p| s(p)).collect::<Vec<_>>().join(":");
                Mount::new(
                    "overlay",
                    "overlay",
                    vec![
                        format!("lowerdir={lower}"),
                        format!("upperdir={}", s(&fsdir)),
                        format!("workdir={}", s(&dir.join("work"))),
                    ],
                )
            }
            (SnapshotKind::View, 0) => Mount::new("bind", s(&fsdir), vec!["rbind".into(), "ro".into()]),
            (SnapshotKind::View, 1) => Mount::new("bind", s(&lowers[0]), vec!["rbind".into(), "ro".into()]),
            (SnapshotKind::View, _) => {
                let lower = lowers.iter().map(|p| s(p)).collect::<Vec<_>>().join(":");
                Mount::new("overlay", "overlay", vec!["ro".into(), format!("lowerdir={lower}")])
            }
        }])
    }

    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let e = e.map_err(io_err(&self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if valid_key(&name) {
                out.push(self.get(&name)?);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Bytes in the snapshot's own upper dir (docker's SizeRw).
    pub fn usage(&self, key: &str) -> Result<u64, SnapshotError> {
        self.get(key)?;
        Ok(crate::layer::dir_size(&self.upper_dir(key)?))
    }

    /// Delete a snapshot; the caller has unmounted it.
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let dir = self.dir(key)?;
        self.get(key)?;
        let doomed = self.root.join(format!("{TMP}rm-{key}"));
        fs::rename(&dir, &doomed).map_err(io_err(&dir))?;
        remove_tree(&doomed).map_err(io_err(&doomed))
    }
}
