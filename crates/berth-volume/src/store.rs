//! The volume store: records on disk, references from containers, and the
//! mounts of volumes whose options ask for one.
//!
//! `<data-root>/volumes/<name>/volume.json` is written atomically after
//! `_data` exists, so a crash leaves either no record (the directory is
//! removed at the next open when `_data` is empty, adopted as a volume when
//! it holds data) or a whole one. Removal renames the directory to
//! `.removing-<name>` first; leftovers of that are finished at open.
//! Nothing under a mount point is ever deleted: a volume still mounted is
//! unmounted first, or not removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_api::ErrorKind;
use serde::{Deserialize, Serialize};

use crate::options::{self, OptionsError};
use crate::{ANONYMOUS_LABEL, LOCAL, name};

const RECORD: &str = "volume.json";
const DATA: &str = "_data";
const REMOVING: &str = ".removing-";

/// One volume's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// RFC 3339, seconds.
    pub created_at: String,
}

impl Volume {
    /// Made for one container (`-v /data`, an image's `VOLUME`).
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{}", name::invalid_message(.0))]
    InvalidName(String),
    #[error("create {name}: {source}")]
    Options { name: String, source: OptionsError },
    #[error("error looking up volume plugin {0}: plugin {0:?} not found")]
    NoDriver(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", .users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("volume {name}: {path}: {source}")]
    Io { name: String, path: PathBuf, source: std::io::Error },
    #[error("volume {name}: {source}")]
    Write { name: String, source: berth_sys::fs::FsError },
    #[error("mount volume {name}: {source}")]
    Mount { name: String, source: berth_sys::mount::MountError },
    #[error("remove {name}: {path} is still mounted")]
    StillMounted { name: String, path: PathBuf },
}

impl VolumeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::InvalidName(_) | VolumeError::Options { .. } => ErrorKind::InvalidParameter,
            VolumeError::NoDriver(_) | VolumeError::NotFound(_) => ErrorKind::NotFound,
            VolumeError::InUse { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}

#[derive(Default)]
struct Inner {
    volumes: BTreeMap<String, Volume>,
    /// volume → containers whose records name it.
    refs: HashMap<String, BTreeSet<String>>,
    /// volume → containers running with it (a mount-type volume is mounted
    /// while this is not empty).
    active: HashMap<String, BTreeSet<String>>,
}

/// Every volume of one data root.
pub struct VolumeStore {
    root: PathBuf,
    inner: Mutex<Inner>,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn is_mounted(path: &Path) -> bool {
    berth_sys::mount::mounts_under(path).map(|m| m.iter().any(|p| p == path)).unwrap_or(false)
}

impl VolumeStore {
    /// Open `<data_root>/volumes`, finishing what a crash left half done.
    pub fn open(data_root: &Path) -> Result<VolumeStore, VolumeError> {
        let root = data_root.join("volumes");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| VolumeError::Io { name: String::new(), path, source }
        };
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let mut volumes = BTreeMap::new();
        for e in std::fs::read_dir(&root).map_err(io(&root))?.flatten() {
            let dir = e.path();
            let fname = e.file_name().to_string_lossy().into_owned();
            if !dir.is_dir() {
                continue;
            }
            if fname.starts_with(REMOVING) {
                if berth_sys::mount::mounts_under(&dir).map(|m| m.is_empty()).unwrap_or(false) {
                    tracing::info!(dir = %dir.display(), "finishing an interrupted volume removal");
                    let _ = std::fs::remove_dir_all(&dir);
                }
                continue;
            }
            let _ = berth_sys::fs::remove_temp_leftovers(&dir);
            let record = std::fs::read(dir.join(RECORD)).ok().and_then(|d| serde_json::from_slice::<Volume>(&d).ok());
            match record {
                Some(v) if v.name == fname => {
                    volumes.insert(fname, v);
                }
                _ if !name::valid(&fname) => tracing::warn!(dir = %dir.display(), "not a volume directory; left alone"),
                _ if crate::copy::is_empty(&dir.join(DATA)) => {
                    tracing::warn!(dir = %dir.display(), "removing a volume whose create did not finish");
                    let _ = std::fs::remove_dir_all(&dir);
                }
                _ => {
                    // Data without a record: keep it, as a volume.
                    tracing::warn!(dir = %dir.display(), "volume data without a record: adopting it");
                    let v = Volume { name: fname.clone(), driver: LOCAL.into(), labels: BTreeMap::new(), options: BTreeMap::new(), created_at: now() };
                    write_record(&dir, &v)?;
                    volumes.insert(fname, v);
                }
            }
        }
        Ok(VolumeStore { root, inner: Mutex::new(Inner { volumes, ..Default::default() }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("volume store lock")
    }

    /// Where volume `name`'s data is (its `Mountpoint`).
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join(DATA)
    }

    /// `POST /volumes/create`: a new volume, or the existing one of that name.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        let mut inner = self.lock();
        self.create_locked(&mut inner, name, driver, options, labels)
    }

    fn create_locked(
        &self,
        inner: &mut Inner,
        name: Option<&str>,
        driver: Option<&str>,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or(LOCAL);
        if driver != LOCAL {
            return Err(VolumeError::NoDriver(driver.to_owned()));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) if !name::valid(n) => return Err(VolumeError::InvalidName(n.to_owned())),
            Some(n) => n.to_owned(),
            None => name::generate(),
        };
        if let Some(v) = inner.volumes.get(&name) {
            return Ok(v.clone());
        }
        options::parse(&options).map_err(|source| VolumeError::Options { name: name.clone(), source })?;
        let v = Volume { name: name.clone(), driver: LOCAL.into(), labels, options, created_at: now() };
        let dir = self.root.join(&name);
        let made = std::fs::create_dir_all(dir.join(DATA))
            .map_err(|source| VolumeError::Io { name: name.clone(), path: dir.clone(), source })
            .and_then(|()| write_record(&dir, &v));
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        inner.volumes.insert(name, v.clone());
        Ok(v)
    }

    /// Create (if missing) and reference `name` for `container`, in one step
    /// so that no removal comes between. None: a new anonymous volume.
    pub fn create_for(
        &self,
        name: Option<&str>,
        options: BTreeMap<String, String>,
        mut labels: BTreeMap<String, String>,
        container: &str,
    ) -> Result<Volume, VolumeError> {
        let mut inner = self.lock();
        if name.is_none() {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let v = self.create_locked(&mut inner, name, None, options, labels)?;
        inner.refs.entry(v.name.clone()).or_default().insert(container.to_owned());
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        self.lock().volumes.get(name).cloned().ok_or_else(|| VolumeError::NotFound(name.to_owned()))
    }

    pub fn list(&self) -> Vec<Volume> {
        self.lock().volumes.values().cloned().collect()
    }

    /// A container's record names volume `name` (at create, and at daemon
    /// start for every record).
    pub fn reference(&self, name: &str, container: &str) -> Result<(), VolumeError> {
        let mut inner = self.lock();
        if !inner.volumes.contains_key(name) {
            return Err(VolumeError::NotFound(name.to_owned()));
        }
        inner.refs.entry(name.to_owned()).or_default().insert(container.to_owned());
        Ok(())
    }

    pub fn dereference(&self, name: &str, container: &str) {
        let mut inner = self.lock();
        if let Some(r) = inner.refs.get_mut(name) {
            r.remove(container);
            if r.is_empty() {
                inner.refs.remove(name);
            }
        }
    }

    /// The containers that reference `name`.
    pub fn users(&self, name: &str) -> Vec<String> {
        self.lock().refs.get(name).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// `DELETE /volumes/{name}`: refused while a container names it; with
    /// `force`, a missing volume is not an error.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let mut inner = self.lock();
        if !inner.volumes.contains_key(name) {
            return if force { Ok(()) } else { Err(VolumeError::NotFound(name.to_owned())) };
        }
        if let Some(users) = inner.refs.get(name).filter(|r| !r.is_empty()) {
            return Err(VolumeError::InUse { name: name.to_owned(), users: users.iter().cloned().collect() });
        }
        let dir = self.root.join(name);
        let data = dir.join(DATA);
        if is_mounted(&data) {
            berth_sys::mount::unmount_detach(&data).map_err(|source| VolumeError::Mount { name: name.to_owned(), source })?;
        }
        if berth_sys::mount::mounts_under(&dir).map(|m| !m.is_empty()).unwrap_or(true) {
            return Err(VolumeError::StillMounted { name: name.to_owned(), path: data });
        }
        let trash = self.root.join(format!("{REMOVING}{name}"));
        let io = |path: &Path| {
            let (name, path) = (name.to_owned(), path.to_owned());
            move |source| VolumeError::Io { name, path, source }
        };
        std::fs::rename(&dir, &trash).map_err(io(&dir))?;
        inner.volumes.remove(name);
        inner.active.remove(name);
        std::fs::remove_dir_all(&trash).map_err(io(&trash))?;
        Ok(())
    }

    /// A container starts with volume `name`: mount it if its options ask
    /// and nobody has yet. Returns the path to bind into the container.
    pub fn mount(&self, name: &str, container: &str) -> Result<PathBuf, VolumeError> {
        let mut inner = self.lock();
        let v = inner.volumes.get(name).ok_or_else(|| VolumeError::NotFound(name.to_owned()))?;
        let data = self.mountpoint(name);
        let m = options::parse(&v.options).map_err(|source| VolumeError::Options { name: name.to_owned(), source })?;
        let users = inner.active.entry(name.to_owned()).or_default();
        if let Some(m) = m
            && users.is_empty()
            && !is_mounted(&data)
        {
            m.as_mount().mount_at(&data).map_err(|source| VolumeError::Mount { name: name.to_owned(), source })?;
        }
        users.insert(container.to_owned());
        Ok(data)
    }

    /// Record that `container` runs with `name` mounted, without mounting
    /// (a daemon restart finding a running container).
    pub fn mark_active(&self, name: &str, container: &str) {
        self.lock().active.entry(name.to_owned()).or_default().insert(container.to_owned());
    }

    /// `container` stopped: unmount each volume it was the last user of.
    pub fn unmount_all(&self, container: &str) {
        let mut inner = self.lock();
        let names: Vec<String> = inner.active.iter().filter(|(_, u)| u.contains(container)).map(|(n, _)| n.clone()).collect();
        for n in names {
            let users = inner.active.get_mut(&n).expect("listed");
            users.remove(container);
            if users.is_empty() {
                inner.active.remove(&n);
                self.unmount_if_mount_type(&inner, &n);
            }
        }
    }

    /// Unmount mount-type volumes no running container uses (after a crash
    /// of the daemon, once running containers are marked).
    pub fn unmount_unused(&self) {
        let inner = self.lock();
        for n in inner.volumes.keys() {
            if inner.active.get(n).is_none_or(|u| u.is_empty()) {
                self.unmount_if_mount_type(&inner, n);
            }
        }
    }

    fn unmount_if_mount_type(&self, inner: &Inner, name: &str) {
        let Some(v) = inner.volumes.get(name) else { return };
        if matches!(options::parse(&v.options), Ok(Some(_))) {
            let data = self.mountpoint(name);
            if is_mounted(&data)
                && let Err(e) = berth_sys::mount::unmount_detach(&data)
            {
                tracing::warn!(volume = name, "{e}");
            }
        }
    }

    /// Bytes in the volume (`UsageData.Size`).
    pub fn usage(&self, name: &str) -> u64 {
        crate::copy::usage(&self.mountpoint(name))
    }
}

fn write_record(dir: &Path, v: &Volume) -> Result<(), VolumeError> {
    let data = serde_json::to_vec_pretty(v).expect("volume record serializes");
    berth_sys::fs::write_atomic(&dir.join(RECORD), &data).map_err(|source| VolumeError::Write { name: v.name.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let t = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(t.path()).unwrap();
        (t, s)
    }

    #[test]
    fn create_reference_remove() {
        let (t, s) = store();
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let v = s.create(Some("data"), None, BTreeMap::new(), labels.clone()).unwrap();
        assert_eq!(v.driver, "local");
        assert!(s.mountpoint("data").is_dir());
        // Creating it again gives the same volume.
        assert_eq!(s.create(Some("data"), Some("local"), BTreeMap::new(), BTreeMap::new()).unwrap(), v);
        assert!(matches!(s.create(Some("x/y"), None, BTreeMap::new(), BTreeMap::new()), Err(VolumeError::InvalidName(_))));
        assert!(!t.path().join("volumes/x").exists());
        let bad = BTreeMap::from([("bogus".to_string(), "1".to_string())]);
        let e = s.create(Some("badopt"), None, bad, BTreeMap::new()).unwrap_err();
        assert_eq!(e.to_string(), "create badopt: invalid option: \"bogus\"");
        assert!(!t.path().join("volumes/badopt").exists());
        assert_eq!(s.create(Some("v2"), Some("nfs"), BTreeMap::new(), BTreeMap::new()).unwrap_err().kind(), ErrorKind::NotFound);

        s.reference("data", "c1").unwrap();
        let e = s.remove("data", true).unwrap_err();
        assert_eq!(e.to_string(), "remove data: volume is in use - [c1]");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        s.dereference("data", "c1");
        std::fs::write(s.mountpoint("data").join("f"), "x").unwrap();
        s.remove("data", false).unwrap();
        assert!(!t.path().join("volumes/data").exists());
        assert_eq!(s.remove("data", false).unwrap_err().to_string(), "get data: no such volume");
        s.remove("data", true).unwrap();

        let anon = s.create_for(None, BTreeMap::new(), BTreeMap::new(), "c2").unwrap();
        assert!(anon.is_anonymous());
        assert_eq!(s.users(&anon.name), ["c2"]);
    }

    #[test]
    fn open_repairs_what_a_crash_left() {
        let (t, s) = store();
        s.create(Some("kept"), None, BTreeMap::new(), BTreeMap::from([("l".into(), "v".into())])).unwrap();
        drop(s);
        let root = t.path().join("volumes");
        // A create that died before its record, with nothing in it.
        std::fs::create_dir_all(root.join("half/_data")).unwrap();
        // Data without a record (written by hand, or a lost record).
        std::fs::create_dir_all(root.join("orphan/_data")).unwrap();
        std::fs::write(root.join("orphan/_data/f"), "keep me").unwrap();
        // A removal interrupted after its rename.
        std::fs::create_dir_all(root.join(".removing-gone/_data")).unwrap();
        let s = VolumeStore::open(t.path()).unwrap();
        let names: Vec<String> = s.list().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["kept", "orphan"]);
        assert_eq!(s.get("kept").unwrap().labels["l"], "v");
        assert!(!root.join("half").exists());
        assert!(!root.join(".removing-gone").exists());
        assert_eq!(std::fs::read_to_string(s.mountpoint("orphan").join("f")).unwrap(), "keep me");
        assert_eq!(s.usage("orphan"), 7);
    }
}
