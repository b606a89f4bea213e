//! Container records: one JSON file per container, written atomically, and
//! an in-memory index by id and name.
//!
//! `<data-root>/containers/<id>/config.v2.json` holds the whole record. A
//! crash at any instant leaves the old or the new file; on open, a directory
//! without a readable record (a create that died half way) is removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_api::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

use super::state::State;
use crate::error::ApiError;

/// Everything berthd knows about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Without docker's leading '/'.
    pub name: String,
    pub created: String,
    /// Image ID (`sha256:…`).
    pub image_id: String,
    /// The container's config, merged with its image's defaults.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: State,
    /// Entrypoint + command as run: `path` and `args`.
    pub path: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub restart_count: i64,
    #[serde(default)]
    pub has_been_started: bool,
    /// Stopped by the user (stop/kill): `unless-stopped` then stays down,
    /// also across daemon restarts.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub log_path: String,
    #[serde(default)]
    pub platform: String,
    /// Generation counter of runs: a shim's exit report is only applied to
    /// the run it belongs to.
    #[serde(default)]
    pub run: u64,
    /// The networks the container is attached to, by name, with its
    /// settings on each (`--ip`, `--network-alias`, `--mac-address`).
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, berth_api::models::EndpointSettings>,
    /// Binds, volumes and tmpfs mounts, resolved at create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<crate::volumes::spec::MountPoint>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("write container record {path}: {source}")]
    Write { path: PathBuf, source: berth_sys::fs::FsError },
    #[error("container store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

/// A shared, lockable container.
pub type Handle = Arc<tokio::sync::Mutex<Container>>;

struct Index {
    by_id: HashMap<String, Handle>,
    /// name → id
    names: HashMap<String, String>,
}

pub struct ContainerStore {
    dir: PathBuf,
    index: RwLock<Index>,
}

/// What a lookup by name or id prefix found.
pub enum Lookup {
    Found(Handle),
    NotFound,
    Ambiguous,
}

impl ContainerStore {
    /// Open the store, loading every record; half-created containers are removed.
    pub fn open(data_root: &Path) -> Result<(ContainerStore, Vec<Container>), StoreError> {
        let dir = data_root.join("containers");
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        let mut loaded = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?.flatten() {
            let path = e.path().join("config.v2.json");
            let _ = berth_sys::fs::remove_temp_leftovers(&e.path());
            match std::fs::read(&path).ok().and_then(|d| serde_json::from_slice::<Container>(&d).ok()) {
                Some(c) => loaded.push(c),
                None => {
                    tracing::warn!(dir = %e.path().display(), "removing container directory without a record");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let mut index = Index { by_id: HashMap::new(), names: HashMap::new() };
        for c in &loaded {
            index.names.insert(c.name.clone(), c.id.clone());
            index.by_id.insert(c.id.clone(), Arc::new(tokio::sync::Mutex::new(c.clone())));
        }
        Ok((ContainerStore { dir, index: RwLock::new(index) }, loaded))
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Persist a state change (atomically, not durably): what it records is
    /// also known to the container's shim, and a daemon that starts after a
    /// power loss reconciles records with the shims it finds.
    pub fn save_state(&self, c: &Container) -> Result<(), StoreError> {
        let dir = self.container_dir(&c.id);
        let path = dir.join("config.v2.json");
        let data = serde_json::to_vec(c).expect("container record serializes");
        berth_sys::fs::write_replace(&path, &data).map_err(|source| StoreError::Write { path, source })
    }

    /// Persist a record (atomically and durably: created, renamed, updated).
    pub fn save(&self, c: &Container) -> Result<(), StoreError> {
        let dir = self.container_dir(&c.id);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        let path = dir.join("config.v2.json");
        let data = serde_json::to_vec(c).expect("container record serializes");
        berth_sys::fs::write_atomic(&path, &data).map_err(|source| StoreError::Write { path, source })
    }

    /// Reserve `name` for `id`; Err(existing id) when taken.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), String> {
        let mut idx = self.index.write().expect("index lock");
        match idx.names.get(name) {
            Some(other) if other != id => Err(other.clone()),
            _ => {
                idx.names.insert(name.to_owned(), id.to_owned());
                Ok(())
            }
        }
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let mut idx = self.index.write().expect("index lock");
        if idx.names.get(name).is_some_and(|i| i == id) {
            idx.names.remove(name);
        }
    }

    /// Add a new container (its name must be reserved) and persist it.
    pub fn insert(&self, c: Container) -> Result<Handle, StoreError> {
        self.save(&c)?;
        let h = Arc::new(tokio::sync::Mutex::new(c.clone()));
        self.index.write().expect("index lock").by_id.insert(c.id.clone(), h.clone());
        Ok(h)
    }

    /// Forget a container and delete its directory.
    pub fn remove(&self, id: &str, name: &str) -> Result<(), StoreError> {
        {
            let mut idx = self.index.write().expect("index lock");
            idx.by_id.remove(id);
            if idx.names.get(name).is_some_and(|i| i == id) {
                idx.names.remove(name);
            }
        }
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io { path: dir, source: e }),
            _ => Ok(()),
        }
    }

    /// Find by full id, by name (with or without '/'), or by unique id prefix.
    pub fn lookup(&self, reference: &str) -> Lookup {
        let idx = self.index.read().expect("index lock");
        if let Some(h) = idx.by_id.get(reference) {
            return Lookup::Found(h.clone());
        }
        let name = reference.strip_prefix('/').unwrap_or(reference);
        if let Some(id) = idx.names.get(name)
            && let Some(h) = idx.by_id.get(id)
        {
            return Lookup::Found(h.clone());
        }
        if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Lookup::NotFound;
        }
        let mut found = idx.by_id.iter().filter(|(id, _)| id.starts_with(reference));
        match (found.next(), found.next()) {
            (Some((_, h)), None) => Lookup::Found(h.clone()),
            (Some(_), Some(_)) => Lookup::Ambiguous,
            _ => Lookup::NotFound,
        }
    }

    pub fn all(&self) -> Vec<Handle> {
        self.index.read().expect("index lock").by_id.values().cloned().collect()
    }

    pub fn name_of(&self, id: &str) -> Option<String> {
        let idx = self.index.read().expect("index lock");
        idx.names.iter().find(|(_, i)| *i == id).map(|(n, _)| n.clone())
    }

    pub fn len(&self) -> usize {
        self.index.read().expect("index lock").by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A new random container id: 64 hex digits.
pub fn new_id() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            created: "2026-01-01T00:00:00Z".into(),
            image_id: "sha256:00".into(),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            state: State::created(),
            path: "sh".into(),
            args: vec![],
            restart_count: 0,
            has_been_started: false,
            manually_stopped: false,
            log_path: String::new(),
            endpoints: Default::default(),
            platform: "linux".into(),
            run: 0,
            mounts: Vec::new(),
        }
    }

    #[test]
    fn lookup_by_id_name_and_prefix_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = ContainerStore::open(dir.path()).unwrap();
        let a = format!("abc{}", "0".repeat(61));
        let b = format!("abd{}", "1".repeat(61));
        for (id, name) in [(&a, "web"), (&b, "db")] {
            store.reserve_name(name, id).unwrap();
            store.insert(record(id, name)).unwrap();
        }
        assert!(matches!(store.lookup("web"), Lookup::Found(_)));
        assert!(matches!(store.lookup("/db"), Lookup::Found(_)));
        assert!(matches!(store.lookup("abc"), Lookup::Found(_)));
        assert!(matches!(store.lookup("ab"), Lookup::Ambiguous));
        assert!(matches!(store.lookup("zzz"), Lookup::NotFound));
        assert_eq!(store.reserve_name("web", &b).unwrap_err(), a);
        // A half-created container (no record) is removed on reopen.
        std::fs::create_dir_all(dir.path().join("containers/deadbeef")).unwrap();
        let (store2, loaded) = ContainerStore::open(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2);
        assert!(!dir.path().join("containers/deadbeef").exists());
        assert!(matches!(store2.lookup("db"), Lookup::Found(_)));
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
