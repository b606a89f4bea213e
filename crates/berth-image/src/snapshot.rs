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
use std::sync::{Arc, Mutex};

use berth_sys::mount::Mount;
use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::digest::Digest;
use crate::layer::{LayerError, LayerStore, fs_err, remove_tree};
use crate::quota::{self, Quota};

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
    /// docker's overlay2 error where project quotas are not available.
    #[error("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")]
    QuotaUnsupported,
    #[error("failed to set quota limit for projid {id} on {path}: {source}")]
    Quota { id: u32, path: PathBuf, source: io::Error },
}

impl SnapshotError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::Exists { .. } => ErrorKind::Conflict,
            SnapshotError::InvalidKey { .. } | SnapshotError::QuotaUnsupported => ErrorKind::InvalidParameter,
            SnapshotError::Layer { source } => source.kind(),
            SnapshotError::Io { .. } | SnapshotError::Record { .. } | SnapshotError::Quota { .. } => ErrorKind::Internal,
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
    /// `--storage-opt size=`: the project ID of its directory and the
    /// limit in bytes on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    layers: LayerStore,
    /// Project quotas, when the root's filesystem has them.
    quota: Option<Arc<Quota>>,
    /// Held while a project ID is picked and given.
    project_lock: Arc<Mutex<()>>,
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
            if name == quota::BACKING_DEV {
                continue;
            }
            if name.starts_with(TMP) || !e.path().join(RECORD).is_file() {
                tracing::info!(path = %e.path().display(), "removing unfinished snapshot");
                remove_tree(&e.path()).map_err(io_err(&e.path()))?;
            }
        }
        let quota = Quota::probe(root).map(Arc::new);
        Ok(Snapshotter { root: root.to_owned(), layers, quota, project_lock: Arc::default() })
    }

    /// Whether snapshots can be given a size (project quotas on the root's
    /// filesystem).
    pub fn supports_size(&self) -> bool {
        self.quota.is_some()
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

    fn create(&self, key: &str, kind: SnapshotKind, parent: Option<&Digest>, size: Option<u64>) -> Result<Vec<Mount>, SnapshotError> {
        let size = size.filter(|s| *s > 0);
        let quota = match (size, &self.quota) {
            (None, _) => None,
            (Some(_), None) => return Err(SnapshotError::QuotaUnsupported),
            (Some(_), Some(q)) => Some(q.clone()),
        };
        // One project ID per snapshot: the lowest no other snapshot has.
        let _held = quota.as_ref().map(|_| self.project_lock.lock().unwrap_or_else(|e| e.into_inner()));
        let dir = self.dir(key)?;
        if dir.exists() {
            return Err(SnapshotError::Exists { key: key.to_owned() });
        }
        if let Some(p) = parent
            && !self.layers.exists(p) {
                return Err(LayerError::NotFound { chain_id: p.clone() }.into());
            }
        let staging = self.root.join(format!("{TMP}{key}"));
        let project_id = match &quota {
            Some(q) => Some(self.free_project_id(q)?),
            None => None,
        };
        let result = (|| {
            remove_tree(&staging).map_err(io_err(&staging))?;
            for d in ["fs", "work"] {
                let p = staging.join(d);
                fs::create_dir_all(&p).map_err(io_err(&p))?;
            }
            let info = SnapshotInfo {
                key: key.to_owned(),
                kind,
                parent: parent.cloned(),
                created: crate::model::now_rfc3339(),
                project_id,
                size: project_id.and(size),
            };
            let rec = staging.join(RECORD);
            berth_sys::fs::write_atomic(&rec, &serde_json::to_vec_pretty(&info).expect("snapshot record serializes"))
                .map_err(|e| SnapshotError::Io { path: rec.clone(), source: fs_err(e) })?;
            berth_sys::fs::rename_synced(&staging, &dir).map_err(|e| SnapshotError::Io { path: dir.clone(), source: fs_err(e) })
        })();
        if let Err(e) = result {
            let _ = remove_tree(&staging);
            return Err(e);
        }
        // The project ID is given in place, after the rename: xfs and ext4
        // refuse (EXDEV) to move a directory of another project into one
        // that has PROJINHERIT, which a root set up with `xfs_quota project`
        // has. The snapshot dir, fs and work (empty yet) each get it, and
        // pass it on to what the container makes.
        if let (Some(q), Some(id), Some(bytes)) = (&quota, project_id, size) {
            let given = (|| {
                for p in [dir.clone(), dir.join("fs"), dir.join("work")] {
                    quota::set_project_id(&p, id).map_err(|source| SnapshotError::Quota { id, path: p.clone(), source })?;
                }
                q.set_limit(id, bytes).map_err(|source| SnapshotError::Quota { id, path: dir.clone(), source })
            })();
            if let Err(e) = given {
                let _ = q.set_limit(id, 0);
                let _ = remove_tree(&dir);
                return Err(e);
            }
        }
        self.mounts(key)
    }

    /// A writable snapshot `key` over the layer chain `parent`.
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, SnapshotKind::Active, parent, None)
    }

    /// A writable snapshot that can hold at most `size` bytes of its own
    /// (`--storage-opt size=`; `None` or 0: no limit). Needs project quotas
    /// ([`Snapshotter::supports_size`]), else docker's error.
    pub fn prepare_sized(&self, key: &str, parent: Option<&Digest>, size: Option<u64>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, SnapshotKind::Active, parent, size)
    }

    /// A read-only snapshot `key` over `parent`.
    pub fn view(&self, key: &str, parent: Option<&Digest>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, SnapshotKind::View, parent, None)
    }

    /// The lowest project ID at or above the quota's minimum that no
    /// snapshot record holds (the caller holds `project_lock`).
    fn free_project_id(&self, q: &Quota) -> Result<u32, SnapshotError> {
        let mut used: Vec<u32> = Vec::new();
        for e in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let e = e.map_err(io_err(&self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rec = if valid_key(&name) { self.get(&name).ok().and_then(|i| i.project_id) } else { None };
            // Staging and doomed dirs still hold theirs on disk.
            let on_disk = if e.path().is_dir() { quota::project_id(&e.path()).ok().filter(|id| *id >= q.min_id) } else { None };
            used.extend(rec.into_iter().chain(on_disk));
        }
        let mut id = q.min_id;
        while used.contains(&id) {
            id += 1;
        }
        Ok(id)
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

    /// Delete a snapshot; the caller has unmounted it. A sized snapshot's
    /// project ID is released: its limit lifted, the ID free for the next.
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let dir = self.dir(key)?;
        let info = self.get(key)?;
        let doomed = self.root.join(format!("{TMP}rm-{key}"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => remove_tree(&doomed).map_err(io_err(&doomed))?,
            // A sized snapshot under a PROJINHERIT root (see create): in place.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => remove_tree(&dir).map_err(io_err(&dir))?,
            Err(e) => return Err(io_err(&dir)(e)),
        }
        if let (Some(id), Some(q)) = (info.project_id, &self.quota) {
            let _held = self.project_lock.lock().unwrap_or_else(|e| e.into_inner());
            q.set_limit(id, 0).map_err(|source| SnapshotError::Quota { id, path: self.root.clone(), source })?;
        }
        Ok(())
    }
}
