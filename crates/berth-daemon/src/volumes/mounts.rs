//! A container's mount points over its life: resolved at create (volumes
//! created and referenced, `--volumes-from` followed, the image's and the
//! config's `Volumes` made anonymous volumes), mounted at each start
//! (copy-up, bind sources made), released at stop, dereferenced at remove
//! (anonymous volumes removed with `rm -v` and AutoRemove only).

use std::path::{Path, PathBuf};

use berth_api::models::HostConfig;
use berth_volume::VolumeStore;
use serde_json::{Value, json};

use super::spec::{self, Kind, MountPoint};
use crate::Daemon;
use crate::containers::store::Container;
use crate::error::{ApiError, ApiResult};

impl Daemon {
    /// At create: every mount point of the new container `id`. On error
    /// nothing is left referenced or created.
    pub async fn container_mounts(&self, id: &str, hc: &HostConfig, volumes: &[String]) -> ApiResult<Vec<MountPoint>> {
        if let Some(d) = hc.volume_driver.as_deref().filter(|d| !d.is_empty() && *d != berth_volume::LOCAL) {
            return Err(ApiError::not_found(format!("error looking up volume plugin {d}: plugin {d:?} not found")));
        }
        let tmpfs: Vec<String> = hc.tmpfs.iter().flatten().map(|(k, _)| k.clone()).collect();
        let requests = spec::parse_all(hc.binds.as_deref().unwrap_or(&[]), hc.mounts.as_deref().unwrap_or(&[]), &tmpfs)?;
        // --volumes-from first: explicit mounts win over what it brings.
        let mut from: Vec<MountPoint> = Vec::new();
        for f in hc.volumes_from.iter().flatten() {
            let (other, rw) = spec::parse_volumes_from(f)?;
            // A bad parameter (400), as dockerd answers: a 404 on create
            // makes the docker CLI pull the image and try again.
            let h = self.container(other).map_err(|e| ApiError::invalid(e.message))?;
            let o = h.lock().await;
            for m in o.mounts.iter().filter(|m| m.kind != Kind::Tmpfs) {
                let mut m = m.clone();
                m.rw = rw.unwrap_or(m.rw);
                m.copy_data = false;
                from.retain(|x| x.destination != m.destination);
                from.push(m);
            }
        }
        let store = self.volumes.clone();
        let id = id.to_owned();
        let volumes = volumes.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut out: Vec<MountPoint> = Vec::new();
            let result = (|| -> ApiResult<()> {
                for m in from {
                    if requests.iter().any(|r| r.point.destination == m.destination) || tmpfs.iter().any(|t| spec::clean(t) == m.destination) {
                        continue;
                    }
                    if m.kind == Kind::Volume {
                        store.reference(&m.name, &id)?;
                    }
                    out.push(m);
                }
                for r in requests {
                    let mut p = r.point;
                    if p.kind == Kind::Volume {
                        let name = (!p.name.is_empty()).then_some(p.name.as_str());
                        let v = store.create_for(name, r.driver_opts, r.labels, &id)?;
                        p.name = v.name;
                        p.source = store.mountpoint(&p.name).to_string_lossy().into_owned();
                    }
                    out.push(p);
                }
                // `-v /data` and the image's VOLUMEs: anonymous volumes where
                // nothing else is mounted.
                for dest in volumes {
                    let destination = spec::clean(&dest);
                    if !dest.starts_with('/') || destination == "/" {
                        return Err(ApiError::invalid(format!("invalid volume specification: '{dest}'")));
                    }
                    if out.iter().any(|m| m.destination == destination) || tmpfs.iter().any(|t| spec::clean(t) == destination) {
                        continue;
                    }
                    let v = store.create_for(None, Default::default(), Default::default(), &id)?;
                    out.push(MountPoint {
                        kind: Kind::Volume,
                        source: store.mountpoint(&v.name).to_string_lossy().into_owned(),
                        name: v.name,
                        destination,
                        driver: berth_volume::LOCAL.into(),
                        mode: String::new(),
                        rw: true,
                        propagation: String::new(),
                        copy_data: true,
                        create_source: false,
                        non_recursive: false,
                        tmpfs_options: String::new(),
                    });
                }
                Ok(())
            })();
            match result {
                Ok(()) => Ok(out),
                Err(e) => {
                    release(&store, &id, &out, false);
                    // Volumes made for this container alone go with it.
                    for m in out.iter().filter(|m| m.kind == Kind::Volume) {
                        if store.get(&m.name).is_ok_and(|v| v.is_anonymous()) {
                            let _ = store.remove(&m.name, true);
                        }
                    }
                    Err(e)
                }
            }
        })
        .await?
    }

    /// At remove: drop the container's references; with `remove_anonymous`
    /// (`rm -v`, AutoRemove) its anonymous volumes go too, unless another
    /// container still uses them.
    pub async fn release_mounts(&self, id: &str, mounts: &[MountPoint], remove_anonymous: bool) {
        let store = self.volumes.clone();
        let (id, mounts) = (id.to_owned(), mounts.to_vec());
        let _ = tokio::task::spawn_blocking(move || release(&store, &id, &mounts, remove_anonymous)).await;
    }

    /// At daemon start: references from every record, running containers'
    /// volumes marked in use, and mount-type volumes nobody uses unmounted.
    pub async fn restore_volumes(&self) {
        for h in self.containers.all() {
            let c = h.lock().await;
            for m in c.mounts.iter().filter(|m| m.kind == Kind::Volume) {
                if let Err(e) = self.volumes.reference(&m.name, &c.id) {
                    tracing::warn!(container = %c.id, "volume of a container: {e}");
                }
                if c.state.status.is_alive() || c.state.status == crate::containers::state::Status::Restarting {
                    self.volumes.mark_active(&m.name, &c.id);
                }
            }
        }
        self.volumes.unmount_unused();
    }
}

fn release(store: &VolumeStore, id: &str, mounts: &[MountPoint], remove_anonymous: bool) {
    store.unmount_all(id);
    for m in mounts.iter().filter(|m| m.kind == Kind::Volume) {
        store.dereference(&m.name, id);
        if remove_anonymous
            && store.get(&m.name).is_ok_and(|v| v.is_anonymous())
            && store.users(&m.name).is_empty()
            && let Err(e) = store.remove(&m.name, true)
        {
            tracing::warn!(volume = %m.name, "remove anonymous volume: {e}");
        }
    }
}

/// `--storage-opt` as docker's overlay2 reads it: `size` only (any case),
/// the daemon's `overlay2.size` when the container gives none, and docker's
/// error when the data root has no project quotas (`supported`). The size
/// of the container's writable layer in bytes (`None`: no limit; docker's
/// overlay2 has no minimum, and 0 means no limit).
pub fn storage_size(hc: &HostConfig, default: Option<u64>, supported: bool) -> ApiResult<Option<u64>> {
    let mut size = None;
    for (k, v) in hc.storage_opt.iter().flatten() {
        match k.to_ascii_lowercase().as_str() {
            "size" => size = Some(crate::shim::parse_size(v)?),
            k => return Err(ApiError::invalid(format!("Unknown option {k}"))),
        }
    }
    let size = size.or(default);
    if size.is_some() && !supported {
        return Err(ApiError::invalid("--storage-opt is supported only for overlay over xfs with 'pquota' mount option"));
    }
    Ok(size.filter(|s| *s > 0))
}

fn path_depth(p: &str) -> usize {
    p.split('/').filter(|s| !s.is_empty()).count()
}

/// At start (blocking, rootfs mounted at `rootfs`): mount the container's
/// volumes, copy image content up into new ones, make `-v` bind sources,
/// and return the OCI mounts. On error, whatever was mounted is released.
pub fn prepare_run(store: &VolumeStore, c: &Container, rootfs: &Path) -> ApiResult<Vec<Value>> {
    let r = (|| {
        let mut out = Vec::new();
        for m in &c.mounts {
            let source: PathBuf = match m.kind {
                Kind::Tmpfs => {
                    out.push(crate::containers::oci::tmpfs_mount(&m.destination, &m.tmpfs_options));
                    continue;
                }
                Kind::Volume => {
                    let data = store.mount(&m.name, &c.id)?;
                    if m.copy_data && berth_volume::copy::is_empty(&data) {
                        let src = crate::containers::fs::resolve_in_root(rootfs, &m.destination, true)?;
                        berth_volume::copy::copy_up(&src, &data)
                            .map_err(|e| ApiError::internal(format!("copy image content into volume {}: {e}", m.name)))?;
                    }
                    data
                }
                Kind::Bind => {
                    let src = PathBuf::from(&m.source);
                    if !src.exists() {
                        if !m.create_source {
                            return Err(ApiError::invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                m.source
                            )));
                        }
                        std::fs::create_dir_all(&src).map_err(|e| ApiError::internal(format!("create bind source {}: {e}", m.source)))?;
                    }
                    src
                }
            };
            let mut options = vec![if m.non_recursive { "bind" } else { "rbind" }.to_owned()];
            options.push(if m.propagation.is_empty() { "rprivate".into() } else { m.propagation.clone() });
            if !m.rw {
                options.push("ro".into());
            }
            out.push(json!({"destination": m.destination, "type": "bind", "source": source, "options": options}));
        }
        Ok(out)
    })();
    if r.is_err() {
        store.unmount_all(&c.id);
    }
    r
}

/// Put a container's own mounts into its spec: each replaces a default
/// mount at the same place, and all are ordered parents first.
pub fn add_to_spec(spec: &mut Value, user: Vec<Value>) {
    let Some(list) = spec.get_mut("mounts").and_then(Value::as_array_mut) else { return };
    let dests: Vec<String> = user.iter().filter_map(|m| m["destination"].as_str().map(str::to_owned)).collect();
    list.retain(|m| !m["destination"].as_str().is_some_and(|d| dests.iter().any(|x| x == d)));
    list.extend(user);
    list.sort_by_key(|m| path_depth(m["destination"].as_str().unwrap_or("")));
}

/// `Mounts` in container inspect and list, as docker shows them.
pub fn inspect_json(mounts: &[MountPoint]) -> Value {
    Value::Array(
        mounts
            .iter()
            .map(|m| match m.kind {
                Kind::Volume => json!({"Type": "volume", "Name": m.name, "Source": m.source, "Destination": m.destination,
                    "Driver": m.driver, "Mode": m.mode, "RW": m.rw, "Propagation": ""}),
                Kind::Bind => json!({"Type": "bind", "Source": m.source, "Destination": m.destination, "Mode": m.mode,
                    "RW": m.rw, "Propagation": m.propagation}),
                Kind::Tmpfs => json!({"Type": "tmpfs", "Source": "", "Destination": m.destination, "Mode": "", "RW": m.rw, "Propagation": ""}),
            })
            .collect(),
    )
}

/// A container's filesystem as the archive API (`docker cp`) sees it: the
/// running container's own view, or for a stopped one its rootfs with its
/// volumes and binds mounted in for the call.
pub struct ContainerFs {
    pub images: std::sync::Arc<berth_image::store::ImageStore>,
    pub volumes: std::sync::Arc<VolumeStore>,
    pub container: Container,
    pub target: PathBuf,
}

impl ContainerFs {
    pub fn with<T>(&self, f: impl FnOnce(&Path) -> ApiResult<T>) -> ApiResult<T> {
        let c = &self.container;
        if c.state.status.is_alive() && c.state.pid > 0 {
            let root = PathBuf::from(format!("/proc/{}/root", c.state.pid));
            if root.exists() {
                return f(&root);
            }
        }
        let key = format!("archive:{}", c.id);
        let r = crate::containers::fs::with_rootfs(&self.images, &c.id, &self.target, |root| {
            let mut sorted: Vec<&MountPoint> = c.mounts.iter().filter(|m| m.kind != Kind::Tmpfs).collect();
            sorted.sort_by_key(|m| path_depth(&m.destination));
            for m in sorted {
                let src = match m.kind {
                    Kind::Volume => self.volumes.mount(&m.name, &key)?,
                    _ => PathBuf::from(&m.source),
                };
                if !src.exists() {
                    continue;
                }
                let dest = crate::containers::fs::resolve_in_root(root, &m.destination, true)?;
                if !dest.exists() {
                    if src.is_dir() {
                        std::fs::create_dir_all(&dest)
                    } else {
                        dest.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|()| std::fs::write(&dest, b""))
                    }
                    .map_err(|e| ApiError::internal(format!("create mount point {}: {e}", m.destination)))?;
                }
                berth_sys::mount::bind(&src, &dest, !m.non_recursive, !m.rw).map_err(|e| ApiError::internal(e.to_string()))?;
            }
            f(root)
        });
        self.volumes.unmount_all(&key);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_mounts_replace_defaults_and_sort_parents_first() {
        let mut spec = json!({"mounts": [
            {"destination": "/proc"}, {"destination": "/dev/shm", "type": "tmpfs"}, {"destination": "/etc/hosts"}
        ]});
        add_to_spec(&mut spec, vec![
            json!({"destination": "/data/sub", "type": "bind"}),
            json!({"destination": "/dev/shm", "type": "bind"}),
            json!({"destination": "/data", "type": "bind"}),
        ]);
        let order: Vec<(&str, &str)> = spec["mounts"].as_array().unwrap().iter()
            .map(|m| (m["destination"].as_str().unwrap(), m["type"].as_str().unwrap_or(""))).collect();
        assert_eq!(order, [("/proc", ""), ("/data", "bind"), ("/etc/hosts", ""), ("/data/sub", "bind"), ("/dev/shm", "bind")]);
    }

    #[test]
    fn inspect_shows_dockers_fields() {
        let b = spec::parse_bind("/h:/c:ro").unwrap().point;
        let v = inspect_json(&[b]);
        assert_eq!(v[0], json!({"Type": "bind", "Source": "/h", "Destination": "/c", "Mode": "ro", "RW": false, "Propagation": "rprivate"}));
    }

    #[test]
    fn storage_opts_are_checked() {
        let hc = HostConfig { storage_opt: Some([("bogus".to_string(), "1".to_string())].into()), ..Default::default() };
        assert_eq!(storage_size(&hc, None, true).unwrap_err().message, "Unknown option bogus");
        assert_eq!(storage_size(&HostConfig::default(), None, false).unwrap(), None);
        let sized = |v: &str| HostConfig { storage_opt: Some([("Size".to_string(), v.to_string())].into()), ..Default::default() };
        assert_eq!(storage_size(&sized("10M"), None, true).unwrap(), Some(10 << 20));
        assert_eq!(storage_size(&sized("0"), Some(5), true).unwrap(), None);
        assert_eq!(storage_size(&HostConfig::default(), Some(1 << 30), true).unwrap(), Some(1 << 30));
        let e = storage_size(&sized("0"), None, false).unwrap_err().message;
        assert_eq!(e, "--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
        assert!(storage_size(&HostConfig::default(), Some(1), false).is_err());
        assert_eq!(storage_size(&sized("ten"), None, true).unwrap_err().message, "invalid size: 'ten'");
    }
}
