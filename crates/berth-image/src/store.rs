//! The image store: names pointing at image records, each record pointing
//! at a manifest in the content store (containerd's `images.Image`), whose
//! config is the image (its digest is the image ID) and whose layers are
//! unpacked in the layer store.
//!
//! On disk, under `<data-root>/image/`:
//! ```text
//! content/blobs/sha256/<hex>     configs, manifests, layer tars (verified)
//! content/ingest/<sha256(ref)>/  partial writes, resumable
//! layers/<chain hex>/diff/       unpacked layer (overlay lower dir)
//! layers/<chain hex>/layer.json  diff ID, parent chain ID, size, short link
//! l/<short>                      -> ../layers/<chain hex>/diff
//! images/<id hex>.json           image record: manifest descriptor, parent
//! repositories.json              reference -> image ID (tags and digests)
//! snapshots/<key>/{fs,work,snapshot.json}
//! ```
//! Every record is written atomically; [`ImageStore::open`] repairs what a
//! crash leaves (temp files, unfinished layers and snapshots).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::api::{
    DeleteResponseItem, DiskUsage, GraphDriver, HistoryItem, ImageInspect, ImageMetadata, ImageSummary, PruneReport,
    RootFsInspect,
};
use crate::content::{ContentError, ContentStore};
use crate::digest::{Digest, chain_ids};
use crate::layer::{LayerError, LayerStore, fs_err};
use crate::model::{Descriptor, ImageConfig, Manifest, ModelError, media};
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{SnapshotError, Snapshotter};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("No such image: {name}")]
    NoSuchImage { name: String },
    #[error("{source}")]
    Reference {
        #[from]
        source: ReferenceError,
    },
    #[error("refusing to create a tag with a digest reference")]
    TagWithDigest { reference: String },
    #[error("image {id}: {source}")]
    Content { id: String, source: ContentError },
    #[error("image {id}: {source}")]
    Model { id: String, source: ModelError },
    #[error("image {id}: {source}")]
    Layer { id: String, source: LayerError },
    #[error("{source}")]
    Snapshot {
        #[from]
        source: SnapshotError,
    },
    #[error("conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}")]
    ReferenceInUse { reference: String, container: String, image: String },
    #[error("conflict: unable to delete {image} ({}) - {message}", if *.hard { "cannot be forced" } else { "must be forced" })]
    DeleteConflict { image: String, hard: bool, message: String },
    #[error("image store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("image store record {path}: {source}")]
    Record { path: PathBuf, source: serde_json::Error },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NoSuchImage { .. } => ErrorKind::NotFound,
            StoreError::Reference { .. } | StoreError::TagWithDigest { .. } => ErrorKind::InvalidParameter,
            StoreError::Content { source, .. } => source.kind(),
            StoreError::Model { source, .. } => source.kind(),
            StoreError::Layer { source, .. } => source.kind(),
            StoreError::Snapshot { source } => source.kind(),
            StoreError::ReferenceInUse { .. } | StoreError::DeleteConflict { .. } => ErrorKind::Conflict,
            StoreError::Io { .. } | StoreError::Record { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

/// A container that uses an image, as the daemon knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub container_id: String,
    pub running: bool,
}

/// Which containers use which image: the daemon plugs its container records
/// in here so that `rmi` and `prune` can refuse as docker does.
pub trait ImageUsers {
    fn users_of(&self, image: &Digest) -> Vec<ImageUser>;
}

/// No containers at all.
pub struct NoUsers;

impl ImageUsers for NoUsers {
    fn users_of(&self, _: &Digest) -> Vec<ImageUser> {
        Vec::new()
    }
}

impl ImageUsers for HashMap<Digest, Vec<ImageUser>> {
    fn users_of(&self, image: &Digest) -> Vec<ImageUser> {
        self.get(image).cloned().unwrap_or_default()
    }
}

/// What the store keeps about one image besides its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The image's manifest in the content store.
    pub manifest: Descriptor,
    /// The image this one was committed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

/// An image with its parsed manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    pub record: ImageRecord,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// Raw config bytes (their digest is the ID).
    pub config_bytes: Vec<u8>,
}

impl Image {
    pub fn id(&self) -> &Digest {
        &self.record.id
    }
    /// Chain ID of each layer, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.config.rootfs.diff_ids)
    }
    /// Chain ID of the top layer (the snapshot parent), if any.
    pub fn top_layer(&self) -> Option<Digest> {
        self.chain_ids().pop()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Repositories {
    /// Fully qualified reference (tag or digest) → image ID.
    refs: BTreeMap<String, Digest>,
}

pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    layers: LayerStore,
    snapshots: Snapshotter,
    /// Serializes read-modify-write of `repositories.json` and image records.
    lock: Mutex<()>,
}

/// Options for [`ImageStore::list`] (`docker images`).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Also intermediate images (untagged parents of others).
    pub all: bool,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `reference=<pattern>` (glob on `name` or `name:tag`).
    pub reference: Vec<String>,
    /// `label=<key>` or `label=<key>=<value>`.
    pub label: Vec<String>,
    /// `before=<image>`: created before that image.
    pub before: Option<String>,
    /// `since=<image>`: created after that image.
    pub since: Option<String>,
}

/// Options for [`ImageStore::prune`].
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every unused image, not only dangling ones (`-a`).
    pub all: bool,
    /// `label=<key>[=<value>]` the images must carry.
    pub label: Vec<String>,
}

impl ImageStore {
    /// Open the store under `<data_root>/image`, creating it, and repair what
    /// a crash left there.
    pub fn open(data_root: &Path) -> Result<ImageStore, StoreError> {
        let root = data_root.join("image");
        let images = root.join("images");
        fs::create_dir_all(&images).map_err(io_err(&images))?;
        berth_sys::fs::remove_temp_leftovers(&images).map_err(io_err(&images))?;
        berth_sys::fs::remove_temp_leftovers(&root).map_err(io_err(&root))?;
        let content = ContentStore::open(&root.join("content")).map_err(|source| StoreError::Content { id: String::new(), source })?;
        let layers = LayerStore::open(&root).map_err(|source| StoreError::Layer { id: String::new(), source })?;
        let snapshots = Snapshotter::open(&root.join("snapshots"), layers.clone())?;
        let store = ImageStore { root, content, layers, snapshots, lock: Mutex::new(()) };
        store.repair_records()?;
        Ok(store)
    }

    /// Drop image records whose content went missing, and references to
    /// images that do not exist.
    fn repair_records(&self) -> Result<(), StoreError> {
        let _g = self.lock.lock().unwrap();
        for rec in self.records()? {
            let complete = self.content.exists(&rec.manifest.digest) && self.content.exists(&rec.id);
            if !complete {
                tracing::warn!(id = %rec.id, "dropping image record with missing content");
                let p = self.record_path(&rec.id);
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        let mut repos = self.read_repositories()?;
        let before = repos.refs.len();
        repos.refs.retain(|_, id| self.record_path(id).is_file());
        if repos.refs.len() != before {
            self.write_repositories(&repos)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn content(&self) -> &ContentStore {
        &self.content
    }
    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }
    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    fn repositories_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    fn read_repositories(&self) -> Result<Repositories, StoreError> {
        let p = self.repositories_path();
        match fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| StoreError::Record { path: p, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Repositories::default()),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    fn write_repositories(&self, r: &Repositories) -> Result<(), StoreError> {
        let p = self.repositories_path();
        berth_sys::fs::write_atomic(&p, &serde_json::to_vec_pretty(r).expect("repositories serialize"))
            .map_err(|e| StoreError::Io { path: p, source: fs_err(e) })
    }

    fn write_record(&self, rec: &ImageRecord) -> Result<(), StoreError> {
        let p = self.record_path(&rec.id);
        berth_sys::fs::write_atomic(&p, &serde_json::to_vec_pretty(rec).expect("record serializes"))
            .map_err(|e| StoreError::Io { path: p, source: fs_err(e) })
    }

    /// Every image record.
    pub fn records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                let data = fs::read(&p).map_err(io_err(&p))?;
                out.push(serde_json::from_slice(&data).map_err(|source| StoreError::Record { path: p.clone(), source })?);
            }
        }
        out.sort_by(|a: &ImageRecord, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn record(&self, id: &Digest) -> Result<ImageRecord, StoreError> {
        let p = self.record_path(id);
        let data = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NoSuchImage { name: id.to_string() },
            _ => StoreError::Io { path: p.clone(), source: e },
        })?;
        serde_json::from_slice(&data).map_err(|source| StoreError::Record { path: p, source })
    }

    /// Load an image by ID.
    pub fn image(&self, id: &Digest) -> Result<Image, StoreError> {
        let record = self.record(id)?;
        let cerr = |source| StoreError::Content { id: id.to_string(), source };
        let merr = |source| StoreError::Model { id: id.to_string(), source };
        let mbytes = self.content.read(&record.manifest.digest).map_err(cerr)?;
        let manifest = Manifest::parse(&record.manifest.digest, &mbytes).map_err(merr)?;
        let config_bytes = self.content.read(id).map_err(cerr)?;
        let config = ImageConfig::parse(id, &config_bytes).map_err(merr)?;
        Ok(Image { record, manifest, config, config_bytes })
    }

    /// Every reference (fully qualified) pointing at each image.
    fn refs_by_image(&self) -> Result<BTreeMap<Digest, Vec<Reference>>, StoreError> {
        let mut out: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
        for (r, id) in self.read_repositories()?.refs {
            if let Ok(r) = Reference::parse_named(&r) {
                out.entry(id).or_default().push(r);
            }
        }
        Ok(out)
    }

    /// References to one image.
    pub fn references(&self, id: &Digest) -> Result<Vec<Reference>, StoreError> {
        Ok(self.refs_by_image()?.remove(id).unwrap_or_default())
    }

    /// Resolve what a user typed (a reference, an image ID, or a unique ID
    /// prefix, with or without `sha256:`) to an image ID.
    pub fn resolve(&self, name: &str) -> Result<Digest, StoreError> {
        let not_found = || StoreError::NoSuchImage { name: name.to_owned() };
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let looks_like_id = !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match Reference::parse(name) {
            Ok(r) => {
                if let Some(id) = self.read_repositories()?.refs.get(&r.to_string()) {
                    return Ok(id.clone());
                }
                // name@digest where the digest is the image ID itself.
                if let Some(d) = r.digest()
                    && self.record_path(d).is_file() {
                        return Ok(d.clone());
                    }
            }
            Err(e) if !looks_like_id => return Err(e.into()),
            Err(_) => {}
        }
        if !looks_like_id {
            return Err(not_found());
        }
        let mut found: Vec<Digest> =
            self.records()?.into_iter().map(|r| r.id).filter(|id| id.hex().starts_with(hex)).collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            _ => Err(not_found()),
        }
    }

    /// Add an image whose layer blobs are in the content store, registering
    /// (unpacking) any layer not yet there, then store its config, manifest
    /// and record. The image becomes visible only with its record, once
    /// everything it needs is stored. Returns the image ID.
    pub fn add_image(
        &self,
        config_bytes: &[u8],
        layer_blobs: &[Descriptor],
        manifest_bytes: Option<Vec<u8>>,
        parent: Option<Digest>,
    ) -> Result<Digest, StoreError> {
        let id = Digest::sha256_of(config_bytes);
        let merr = |source| StoreError::Model { id: id.to_string(), source };
        let cerr = |source| StoreError::Content { id: id.to_string(), source };
        let config = ImageConfig::parse(&id, config_bytes).map_err(merr)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != layer_blobs.len() {
            return Err(merr(ModelError::LayerCount { digest: id.to_string(), diff_ids: diff_ids.len(), layers: layer_blobs.len() }));
        }
        let mut parent_chain: Option<Digest> = None;
        for (blob, diff_id) in layer_blobs.iter().zip(diff_ids) {
            let chain = crate::layer::chain_of(parent_chain.as_ref(), diff_id);
            if !self.layers.exists(&chain) {
                let f = self.content.open_blob(&blob.digest).map_err(cerr)?;
                self.layers
                    .register(parent_chain.as_ref(), io::BufReader::with_capacity(crate::compression::BUF_SIZE, f), Some(diff_id))
                    .map_err(|source| StoreError::Layer { id: id.to_string(), source })?;
            }
            parent_chain = Some(chain);
        }
        self.content.put(config_bytes).map_err(cerr)?;
        let manifest_bytes = match manifest_bytes {
            Some(b) => b,
            None => {
                let m = Manifest {
                    schema_version: 2,
                    media_type: Some(media::OCI_MANIFEST.into()),
                    config: Descriptor::new(media::OCI_CONFIG, id.clone(), config_bytes.len() as u64),
                    layers: layer_blobs.to_vec(),
                    annotations: BTreeMap::new(),
                };
                serde_json::to_vec(&m).expect("manifest serializes")
            }
        };
        let mdigest = self.content.put(&manifest_bytes).map_err(cerr)?;
        let manifest = Manifest::parse(&mdigest, &manifest_bytes).map_err(merr)?;
        let mt = manifest.media_type.clone().unwrap_or_else(|| media::OCI_MANIFEST.into());
        let _g = self.lock.lock().unwrap();
        let old = self.record(&id).ok();
        let rec = ImageRecord {
            id: id.clone(),
            manifest: Descriptor::new(&mt, mdigest, manifest_bytes.len() as u64),
            parent: parent.or_else(|| old.as_ref().and_then(|o| o.parent.clone())),
            last_tag_time: old.and_then(|o| o.last_tag_time),
        };
        self.write_record(&rec)?;
        Ok(id)
    }

    /// Add an image fetched from a registry: `manifest_bytes` (stored as
    /// they came, so the manifest digest is the registry's) and the config
    /// it names, whose layer blobs are already in the content store. Layers
    /// not yet registered are unpacked. Returns the image ID.
    pub fn add_pulled_image(&self, config_bytes: &[u8], manifest_bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let mdigest = Digest::sha256_of(&manifest_bytes);
        let manifest = Manifest::parse(&mdigest, &manifest_bytes)
            .map_err(|source| StoreError::Model { id: mdigest.to_string(), source })?;
        self.add_image(config_bytes, &manifest.layers, Some(manifest_bytes), None)
    }

    /// Point `reference` at image `id` (moving it from another image).
    pub fn set_reference(&self, reference: &Reference, id: &Digest) -> Result<(), StoreError> {
        let _g = self.lock.lock().unwrap();
        let mut rec = self.record(id)?;
        let mut repos = self.read_repositories()?;
        repos.refs.insert(reference.to_string(), id.clone());
        self.write_repositories(&repos)?;
        if reference.tag().is_some() {
            rec.last_tag_time = Some(crate::model::now_rfc3339());
            self.write_record(&rec)?;
        }
        Ok(())
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), StoreError> {
        let id = self.resolve(source)?;
        let r = Reference::parse(target)?;
        if r.digest().is_some() {
            return Err(StoreError::TagWithDigest { reference: target.to_owned() });
        }
        self.set_reference(&r, &id)
    }

    fn remove_reference(&self, reference: &Reference) -> Result<bool, StoreError> {
        let _g = self.lock.lock().unwrap();
        let mut repos = self.read_repositories()?;
        let had = repos.refs.remove(&reference.to_string()).is_some();
        if had {
            self.write_repositories(&repos)?;
        }
        Ok(had)
    }

    /// Images committed on `id`.
    fn children(&self, id: &Digest) -> Result<Vec<Digest>, StoreError> {
        Ok(self.records()?.into_iter().filter(|r| r.parent.as_ref() == Some(id)).map(|r| r.id).collect())
    }

    /// `docker rmi [-f] NAME`: untag, and delete the image when no reference
    /// is left, as docker's `ImageDelete` decides. `prune` also removes
    /// untagged parents (docker's default; `--no-prune` turns it off).
    pub fn remove(&self, name: &str, force: bool, prune: bool, users: &dyn ImageUsers) -> Result<Vec<DeleteResponseItem>, StoreError> {
        let id = self.resolve(name)?;
        let mut out = Vec::new();
        let refs = self.references(&id)?;
        let by_id = is_id_prefix(&id, name);
        if !by_id {
            let r = Reference::parse(name)?;
            if !force && is_single_reference(&refs)
                && let Some(u) = users.users_of(&id).first() {
                    return Err(StoreError::ReferenceInUse {
                        reference: name.to_owned(),
                        container: short(&u.container_id),
                        image: id.short().to_owned(),
                    });
                }
            self.check_conflict(&id, force, true, users)?;
            if self.remove_reference(&r)? {
                out.push(DeleteResponseItem::untagged(r.familiar()));
            }
            let mut left = self.references(&id)?;
            // As docker: the last tag of a repository removed takes that
            // repository's digests with it (other repositories' references stay).
            if r.tag().is_some() && !left.iter().any(|x| x.digest().is_none() && x.name() == r.name()) {
                let (same, other): (Vec<Reference>, Vec<Reference>) = left.into_iter().partition(|x| x.name() == r.name());
                for d in same {
                    self.remove_reference(&d)?;
                    out.push(DeleteResponseItem::untagged(d.familiar()));
                }
                left = other;
            }
            if !left.is_empty() {
                return Ok(out);
            }
        } else if is_single_reference(&refs) {
            self.check_conflict(&id, force, true, users)?;
            for r in &refs {
                self.remove_reference(r)?;
                out.push(DeleteResponseItem::untagged(r.familiar()));
            }
        }
        self.delete_image(&id, force, prune, false, users, &mut out)?;
        Ok(out)
    }

    /// docker's `checkImageDeleteConflict`: hard conflicts (children, running
    /// containers) always; soft ones (more references, stopped containers)
    /// unless forced.
    fn check_conflict(&self, id: &Digest, force: bool, ignore_refs: bool, users: &dyn ImageUsers) -> Result<(), StoreError> {
        let conflict = |hard, message: String| StoreError::DeleteConflict { image: id.short().to_owned(), hard, message };
        if !self.children(id)?.is_empty() {
            return Err(conflict(true, "image has dependent child images".into()));
        }
        let us = users.users_of(id);
        if let Some(u) = us.iter().find(|u| u.running) {
            return Err(conflict(true, format!("image is being used by running container {}", short(&u.container_id))));
        }
        if force {
            return Ok(());
        }
        if !ignore_refs && self.references(id)?.len() > 1 {
            return Err(conflict(false, "image is referenced in multiple repositories".into()));
        }
        if let Some(u) = us.first() {
            return Err(conflict(false, format!("image is being used by stopped container {}", short(&u.container_id))));
        }
        Ok(())
    }

    fn delete_image(
        &self,
        id: &Digest,
        force: bool,
        prune: bool,
        quiet: bool,
        users: &dyn ImageUsers,
        out: &mut Vec<DeleteResponseItem>,
    ) -> Result<(), StoreError> {
        if let Err(e) = self.check_conflict(id, force, false, users) {
            return if quiet { Ok(()) } else { Err(e) };
        }
        let rec = self.record(id)?;
        for r in self.references(id)? {
            self.remove_reference(&r)?;
            out.push(DeleteResponseItem::untagged(r.familiar()));
        }
        let image = self.image(id)?;
        {
            let _g = self.lock.lock().unwrap();
            let p = self.record_path(id);
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        out.push(DeleteResponseItem::deleted(id.to_string()));
        // Layers nothing else uses go too, top first.
        let used = self.used_layers()?;
        for chain in image.chain_ids().iter().rev() {
            if used.contains(chain) || !self.layers.exists(chain) {
                continue;
            }
            self.layers.remove(chain).map_err(|source| StoreError::Layer { id: id.to_string(), source })?;
            out.push(DeleteResponseItem::deleted(chain.to_string()));
        }
        self.collect_blobs()?;
        if prune
            && let Some(parent) = rec.parent
                && self.record_path(&parent).is_file() && self.references(&parent)?.is_empty() {
                    self.delete_image(&parent, false, true, true, users, out)?;
                }
        Ok(())
    }

    /// Chain IDs used by any image or snapshot, with their ancestors.
    fn used_layers(&self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut used = BTreeSet::new();
        for rec in self.records()? {
            if let Ok(img) = self.image(&rec.id) {
                used.extend(img.chain_ids());
            }
        }
        for s in self.snapshots.list()? {
            if let Some(p) = s.parent {
                for l in self.layers.ancestry(&p).map_err(|source| StoreError::Layer { id: s.key.clone(), source })? {
                    used.insert(l.chain_id);
                }
            }
        }
        Ok(used)
    }

    /// Every (reference, image ID) in the store.
    pub fn all_references(&self) -> Result<Vec<(Digest, Reference)>, StoreError> {
        Ok(self
            .refs_by_image()?
            .into_iter()
            .flat_map(|(id, rs)| rs.into_iter().map(move |r| (id.clone(), r)))
            .collect())
    }

    /// Blobs some image needs: configs, manifests, layer tars.
    pub(crate) fn referenced_blobs(&self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut keep = BTreeSet::new();
        for rec in self.records()? {
            keep.insert(rec.id.clone());
            keep.insert(rec.manifest.digest.clone());
            if let Ok(img) = self.image(&rec.id) {
                keep.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
            }
        }
        Ok(keep)
    }

    /// Delete blobs no image references (configs, manifests, layer tars).
    fn collect_blobs(&self) -> Result<u64, StoreError> {
        let keep = self.referenced_blobs()?;
        let cerr = |source| StoreError::Content { id: String::new(), source };
        let mut freed = 0;
        for (d, size) in self.content.list().map_err(cerr)? {
            if !keep.contains(&d) {
                self.content.delete(&d).map_err(cerr)?;
                freed += size;
            }
        }
        Ok(freed)
    }

    /// Garbage collection: remove blobs, layers and partial ingests that no
    /// image or snapshot references. Returns the bytes freed.
    pub fn gc(&self) -> Result<u64, StoreError> {
        let used = self.used_layers()?;
        let lerr = |source| StoreError::Layer { id: String::new(), source };
        let mut freed = 0;
        // Children before parents: a layer's record names its parent.
        let mut layers = self.layers.list().map_err(lerr)?;
        layers.sort_by_key(|l| std::cmp::Reverse(self.layers.ancestry(&l.chain_id).map(|a| a.len()).unwrap_or(0)));
        for l in layers {
            if !used.contains(&l.chain_id) {
                self.layers.remove(&l.chain_id).map_err(lerr)?;
                freed += l.size;
            }
        }
        self.content.clear_ingests().map_err(|source| StoreError::Content { id: String::new(), source })?;
        Ok(freed + self.collect_blobs()?)
    }

    /// `docker image prune [-a]`.
    pub fn prune(&self, opts: &PruneOptions, users: &dyn ImageUsers) -> Result<PruneReport, StoreError> {
        let mut deleted = Vec::new();
        let before = self.layer_bytes()?;
        let refs = self.refs_by_image()?;
        for rec in self.records()? {
            let tagged = refs.get(&rec.id).is_some_and(|r| r.iter().any(|x| x.tag().is_some()));
            if (!opts.all && tagged) || !users.users_of(&rec.id).is_empty() {
                continue;
            }
            if !self.record_path(&rec.id).is_file() {
                continue; // went with a child
            }
            let Ok(img) = self.image(&rec.id) else { continue };
            if !labels_match(&img.config, &opts.label) || !self.children(&rec.id)?.is_empty() {
                continue;
            }
            self.delete_image(&rec.id, true, true, true, users, &mut deleted)?;
        }
        let freed = before.saturating_sub(self.layer_bytes()?);
        self.gc()?;
        Ok(PruneReport { images_deleted: deleted, space_reclaimed: freed })
    }

    fn layer_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.layers.list().map_err(|source| StoreError::Layer { id: String::new(), source })?.iter().map(|l| l.size).sum())
    }

    fn image_size(&self, img: &Image) -> u64 {
        img.chain_ids().iter().filter_map(|c| self.layers.get(c).ok()).map(|l| l.size).sum()
    }

    fn summary(&self, img: &Image, refs: &[Reference]) -> ImageSummary {
        let (mut tags, mut digests) = (Vec::new(), Vec::new());
        for r in refs {
            if r.digest().is_some() {
                digests.push(r.familiar());
            } else {
                tags.push(r.familiar());
            }
        }
        let labels = img.config.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
        ImageSummary {
            id: img.id().to_string(),
            parent_id: img.record.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            repo_tags: tags,
            repo_digests: digests,
            created: img.config.created_unix(),
            size: self.image_size(img) as i64,
            shared_size: -1,
            labels,
            containers: -1,
        }
    }

    /// `docker images`: newest first.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ImageSummary>, StoreError> {
        let refs = self.refs_by_image()?;
        let records = self.records()?;
        let parents: BTreeSet<Digest> = records.iter().filter_map(|r| r.parent.clone()).collect();
        let created_of = |name: &Option<String>| -> Result<Option<i64>, StoreError> {
            match name {
                Some(n) => Ok(Some(self.image(&self.resolve(n)?)?.config.created_unix())),
                None => Ok(None),
            }
        };
        let (before, since) = (created_of(&opts.before)?, created_of(&opts.since)?);
        let mut out = Vec::new();
        for rec in records {
            let img = self.image(&rec.id)?;
            let rs = refs.get(&rec.id).cloned().unwrap_or_default();
            let dangling = !rs.iter().any(|r| r.tag().is_some());
            if !opts.all && rs.is_empty() && parents.contains(&rec.id) {
                continue;
            }
            if opts.dangling.is_some_and(|d| d != dangling) {
                continue;
            }
            let created = img.config.created_unix();
            if !labels_match(&img.config, &opts.label)
                || before.is_some_and(|b| created >= b)
                || since.is_some_and(|b| created <= b)
            {
                continue;
            }
            let mut rs = rs;
            if !opts.reference.is_empty() {
                rs.retain(|r| {
                    opts.reference.iter().any(|p| glob_match(p, &r.familiar_name()) || glob_match(p, &r.familiar()))
                });
                if rs.is_empty() {
                    continue;
                }
            }
            out.push(self.summary(&img, &rs));
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `docker image inspect`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect, StoreError> {
        let id = self.resolve(name)?;
        let img = self.image(&id)?;
        let refs = self.references(&id)?;
        let s = self.summary(&img, &refs);
        let dirs: Vec<String> =
            img.chain_ids().iter().rev().map(|c| self.layers.diff_dir(c).to_string_lossy().into_owned()).collect();
        let mut data = BTreeMap::new();
        if let Some((top, lower)) = dirs.split_first() {
            data.insert("UpperDir".into(), top.clone());
            let layer_dir = Path::new(top).parent().unwrap_or(Path::new(top));
            data.insert("MergedDir".into(), layer_dir.join("merged").to_string_lossy().into_owned());
            data.insert("WorkDir".into(), layer_dir.join("work").to_string_lossy().into_owned());
            if !lower.is_empty() {
                data.insert("LowerDir".into(), lower.join(":"));
            }
        }
        let c = &img.config;
        Ok(ImageInspect {
            id: id.to_string(),
            repo_tags: s.repo_tags,
            repo_digests: s.repo_digests,
            parent: s.parent_id,
            comment: c.comment.clone(),
            created: c.created.clone().unwrap_or_default(),
            docker_version: c.docker_version.clone().unwrap_or_default(),
            author: c.author.clone(),
            config: c.config.clone(),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            os_version: c.os_version.clone(),
            size: s.size,
            graph_driver: GraphDriver { name: "overlay2".into(), data },
            root_fs: RootFsInspect {
                kind: "layers".into(),
                layers: c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            metadata: ImageMetadata { last_tag_time: img.record.last_tag_time.clone() },
        })
    }

    /// `docker history`: newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>, StoreError> {
        let id = self.resolve(name)?;
        let img = self.image(&id)?;
        let chains = img.chain_ids();
        let mut layer = 0usize;
        let mut items = Vec::new();
        for h in &img.config.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = chains.get(layer).and_then(|c| self.layers.get(c).ok()).map_or(0, |l| l.size);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: h.created.as_deref().and_then(crate::model::parse_time).unwrap_or(0),
                created_by: h.created_by.clone(),
                tags: Vec::new(),
                size: size as i64,
                comment: h.comment.clone(),
            });
        }
        items.reverse();
        // The newest entry is the image itself, the next its parent, and so on.
        let mut cur = Some(id);
        for item in items.iter_mut() {
            let Some(c) = cur.take() else { break };
            item.id = c.to_string();
            item.tags = self.references(&c)?.iter().filter(|r| r.tag().is_some()).map(Reference::familiar).collect();
            cur = self.record(&c).ok().and_then(|r| r.parent);
        }
        Ok(items)
    }

    /// The image part of `docker system df`: each image's size, the part of
    /// it shared with other images, and how many containers use it.
    pub fn disk_usage(&self, users: &dyn ImageUsers) -> Result<DiskUsage, StoreError> {
        let refs = self.refs_by_image()?;
        let images: Vec<Image> = self.records()?.iter().map(|r| self.image(&r.id)).collect::<Result<_, _>>()?;
        let mut count: HashMap<Digest, usize> = HashMap::new();
        for img in &images {
            for c in img.chain_ids() {
                *count.entry(c).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for img in &images {
            let mut s = self.summary(img, refs.get(img.id()).map(Vec::as_slice).unwrap_or(&[]));
            s.shared_size = img
                .chain_ids()
                .iter()
                .filter(|c| count.get(*c).copied().unwrap_or(0) > 1)
                .filter_map(|c| self.layers.get(c).ok())
                .map(|l| l.size as i64)
                .sum();
            s.containers = users.users_of(img.id()).len() as i64;
            out.push(s);
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(DiskUsage { layers_size: self.layer_bytes()?, images: out })
    }

    /// A container's writable snapshot over image `name`; returns the mounts
    /// that make its root filesystem.
    pub fn prepare_container(&self, key: &str, name: &str) -> Result<Vec<berth_sys::mount::Mount>, StoreError> {
        self.prepare_container_sized(key, name, None)
    }

    /// As [`ImageStore::prepare_container`], the writable layer limited to
    /// `size` bytes (`--storage-opt size=`).
    pub fn prepare_container_sized(&self, key: &str, name: &str, size: Option<u64>) -> Result<Vec<berth_sys::mount::Mount>, StoreError> {
        let img = self.image(&self.resolve(name)?)?;
        Ok(self.snapshots.prepare_sized(key, img.top_layer().as_ref(), size)?)
    }
}

fn short(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).chars().take(12).collect()
}

/// Whether `name` names the image by (a prefix of) its ID.
pub(crate) fn is_id_prefix(id: &Digest, name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty() && id.hex().starts_with(hex)
}

/// docker's `isSingleReference`: at most one tag, and every reference in
/// the same repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let tags: Vec<&Reference> = refs.iter().filter(|r| r.digest().is_none()).collect();
    if tags.len() > 1 {
        return false;
    }
    let name = tags.first().copied().unwrap_or(&refs[0]).name();
    refs.iter().all(|r| r.name() == name)
}

fn labels_match(config: &ImageConfig, filters: &[String]) -> bool {
    let labels = config.config.as_ref().and_then(|c| c.labels.as_ref());
    filters.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => labels.and_then(|l| l.get(k)).is_some_and(|x| x == v),
        None => labels.is_some_and(|l| l.contains_key(f)),
    })
}

/// Go's `path.Match` subset: `*` (not across `/`), `?`, literal text.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).take_while(|&i| i == 0 || s[i - 1] != b'/').any(|i| go(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && go(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "foo/bar"));
        assert!(glob_match("*/*", "foo/bar"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(!glob_match("busybox", "busybox2"));
    }

    #[test]
    fn single_reference_rule() {
        let r = |s: &str| Reference::parse_named(s).unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(is_single_reference(&[r("a:1")]));
        assert!(is_single_reference(&[r("a:1"), r(&format!("a@{d}"))]));
        assert!(!is_single_reference(&[r("a:1"), r("a:2")]));
        assert!(!is_single_reference(&[r("a:1"), r(&format!("b@{d}"))]));
        assert!(!is_single_reference(&[]));
    }
}
