//! Images in and out as archives: `import` (a root filesystem tar → a
//! one-layer image), `export` (a container's merged root → tar), `save`
//! (images → a tar in `docker save` layout that is also an OCI image
//! layout) and `load` (from `docker save` 20.10 and newer, `podman save`,
//! or an OCI layout tar, plain or compressed).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::change::{ChangeError, apply_changes};
use crate::compression::{self, BUF_SIZE, Compression};
use crate::digest::Digest;
use crate::model::{ContainerConfig, Descriptor, History, ImageConfig, Index, Manifest, ModelError, RootFs, media};
use crate::reference::Reference;
use crate::store::{ImageStore, StoreError};
use crate::unpack::clean_entry_path;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{source}")]
    Store {
        #[from]
        source: StoreError,
    },
    #[error("{source}")]
    Change {
        #[from]
        source: ChangeError,
    },
    #[error("invalid archive: {source}")]
    Read { source: io::Error },
    #[error("write archive: {source}")]
    Write { source: io::Error },
    #[error("invalid archive: {what} is missing")]
    Missing { what: String },
    #[error("invalid archive: {file}: {source}")]
    Json { file: String, source: serde_json::Error },
    #[error("invalid archive: {source}")]
    Model {
        #[from]
        source: ModelError,
    },
    #[error("invalid archive: no manifest.json or index.json found")]
    NoManifest,
    #[error("invalid archive: image {image} has no manifest for {platform}")]
    NoPlatform { image: String, platform: String },
}

impl ArchiveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Store { source } => source.kind(),
            ArchiveError::Change { source } => source.kind(),
            ArchiveError::Write { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidParameter,
        }
    }
}

fn store_err<E>(id: &str) -> impl FnOnce(E) -> ArchiveError + '_
where
    StoreError: From<(String, E)>,
{
    move |e| ArchiveError::Store { source: StoreError::from((id.to_owned(), e)) }
}

impl From<(String, crate::content::ContentError)> for StoreError {
    fn from((id, source): (String, crate::content::ContentError)) -> Self {
        StoreError::Content { id, source }
    }
}

impl From<(String, crate::layer::LayerError)> for StoreError {
    fn from((id, source): (String, crate::layer::LayerError)) -> Self {
        StoreError::Layer { id, source }
    }
}

/// Options for [`ImageStore::import`] (`docker import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `REPOSITORY[:TAG]` to tag the image with.
    pub reference: Option<String>,
    /// Dockerfile-style `--change` lines.
    pub changes: Vec<String>,
    /// `--message`: the history comment.
    pub message: String,
    /// Shown in the default comment (`Imported from <source>`).
    pub source: String,
}

/// What `load` did: docker's output lines and the images it stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// `Loaded image: busybox:latest` or `Loaded image ID: sha256:...`.
    pub lines: Vec<String>,
    pub images: Vec<Digest>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
        _ => media::OCI_LAYER,
    }
}

fn blob_compression(store: &ImageStore, d: &Digest) -> Result<Compression, ArchiveError> {
    let mut head = [0u8; 8];
    let mut f = store.content().open_blob(d).map_err(store_err(""))?;
    let n = f.read(&mut head).map_err(|source| ArchiveError::Read { source })?;
    Ok(Compression::detect(&head[..n]))
}

impl ImageStore {
    /// `docker import`: a root filesystem tar (plain, gzip, zstd or xz) as a
    /// one-layer image. Returns the image ID.
    pub fn import(&self, input: impl Read, opts: &ImportOptions) -> Result<Digest, ArchiveError> {
        let reference = opts.reference.as_deref().map(Reference::parse).transpose().map_err(StoreError::from)?;
        let mut config = ContainerConfig::default();
        apply_changes(&mut config, &opts.changes)?;
        let mut input = input;
        let ingest = format!("import-{}", crate::layer::random_name(16));
        let (blob, size) = self.content().put_stream(&ingest, &mut input, None).map_err(store_err(""))?;
        let compression = blob_compression(self, &blob)?;
        let f = self.content().open_blob(&blob).map_err(store_err(""))?;
        let layer = self
            .layers()
            .register(None, io::BufReader::with_capacity(BUF_SIZE, f), None)
            .map_err(store_err(""))?;
        let comment = if opts.message.is_empty() {
            format!("Imported from {}", if opts.source.is_empty() { "-" } else { &opts.source })
        } else {
            opts.message.clone()
        };
        let created = crate::model::now_rfc3339();
        let p = crate::model::host_platform();
        let image = ImageConfig {
            architecture: p.architecture,
            os: p.os,
            variant: p.variant,
            config: Some(config),
            created: Some(created.clone()),
            comment: comment.clone(),
            history: vec![History { created: Some(created), comment, ..Default::default() }],
            rootfs: RootFs { kind: "layers".into(), diff_ids: vec![layer.diff_id.clone()] },
            ..Default::default()
        };
        let desc = Descriptor::new(layer_media_type(compression), blob, size);
        let id = self.add_image(&image.to_bytes(), &[desc], None, None)?;
        if let Some(r) = reference {
            self.set_reference(&r, &id)?;
        }
        Ok(id)
    }

    /// `docker save NAME...`: write the images to `out` in docker's layout
    /// (`manifest.json`, `repositories`) that is also an OCI image layout
    /// (`oci-layout`, `index.json`, `blobs/sha256/`). Layers are written
    /// uncompressed, named by diff ID.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<(), ArchiveError> {
        // image ID -> tags asked for, in the order given.
        let mut wanted: Vec<(Digest, Vec<Reference>)> = Vec::new();
        let mut add = |id: Digest, tags: Vec<Reference>| match wanted.iter_mut().find(|(w, _)| *w == id) {
            Some((_, t)) => {
                for x in tags {
                    if !t.contains(&x) {
                        t.push(x);
                    }
                }
            }
            None => wanted.push((id, tags)),
        };
        for name in names {
            // A bare repository name means every tag of it.
            if let Ok(r) = Reference::parse_named(name)
                && r.tag().is_none() && r.digest().is_none() && self.resolve(name).is_err() {
                    let tagged: Vec<(Digest, Reference)> =
                        self.all_references()?.into_iter().filter(|(_, x)| x.name() == r.name() && x.tag().is_some()).collect();
                    if tagged.is_empty() {
                        return Err(StoreError::NoSuchImage { name: name.clone() }.into());
                    }
                    for (id, t) in tagged {
                        add(id, vec![t]);
                    }
                    continue;
                }
            let id = self.resolve(name)?;
            let mut tags = Vec::new();
            if !crate::store::is_id_prefix(&id, name) {
                let r = Reference::parse(name).map_err(StoreError::from)?;
                if r.tag().is_some() {
                    tags.push(r);
                }
            }
            add(id, tags);
        }
        let mut b = tar::Builder::new(io::BufWriter::with_capacity(BUF_SIZE, out));
        let werr = |source| ArchiveError::Write { source };
        let dir = |b: &mut tar::Builder<_>, p: &str| -> Result<(), ArchiveError> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, p, io::empty()).map_err(werr)
        };
        let file = |b: &mut tar::Builder<_>, p: &str, data: &[u8]| -> Result<(), ArchiveError> {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, p, data).map_err(werr)
        };
        dir(&mut b, "blobs")?;
        dir(&mut b, "blobs/sha256")?;
        let mut written = std::collections::HashSet::new();
        let mut items = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, tags) in &wanted {
            let img = self.image(id)?;
            let mut layer_paths = Vec::new();
            let mut layer_descs = Vec::new();
            let mut parent: Option<Digest> = None;
            for (blob, diff) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
                let chain = crate::layer::chain_of(parent.as_ref(), diff);
                let info = self.layers().get(&chain).map_err(store_err(&id.to_string()))?;
                let path = format!("blobs/sha256/{}", diff.hex());
                if written.insert(diff.clone()) {
                    let f = self.content().open_blob(&blob.digest).map_err(store_err(&id.to_string()))?;
                    let (_, r) = compression::decompress(f).map_err(|source| ArchiveError::Read { source })?;
                    let mut h = tar::Header::new_ustar();
                    h.set_mode(0o644);
                    h.set_size(info.tar_size);
                    b.append_data(&mut h, &path, r).map_err(werr)?;
                }
                layer_descs.push(Descriptor::new(media::OCI_LAYER, diff.clone(), info.tar_size));
                layer_paths.push(path);
                parent = Some(chain);
            }
            let cpath = format!("blobs/sha256/{}", id.hex());
            if written.insert(id.clone()) {
                file(&mut b, &cpath, &img.config_bytes)?;
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.into()),
                config: Descriptor::new(media::OCI_CONFIG, id.clone(), img.config_bytes.len() as u64),
                layers: layer_descs,
                annotations: BTreeMap::new(),
            };
            let mbytes = serde_json::to_vec(&manifest).expect("manifest serializes");
            let mdigest = Digest::sha256_of(&mbytes);
            if written.insert(mdigest.clone()) {
                file(&mut b, &format!("blobs/sha256/{}", mdigest.hex()), &mbytes)?;
            }
            let mdesc = Descriptor::new(media::OCI_MANIFEST, mdigest, mbytes.len() as u64);
            if tags.is_empty() {
                index.push(mdesc.clone());
            }
            for t in tags {
                let mut d = mdesc.clone();
                d.annotations.insert("io.containerd.image.name".into(), t.to_string());
                d.annotations.insert("org.opencontainers.image.ref.name".into(), t.tag().unwrap_or_default().to_owned());
                index.push(d);
                if let Some(top) = img.config.rootfs.diff_ids.last() {
                    repositories.entry(t.familiar_name()).or_default().insert(t.tag().unwrap_or_default().into(), top.hex().into());
                }
            }
            items.push(SaveManifestItem {
                config: cpath,
                repo_tags: (!tags.is_empty()).then(|| tags.iter().map(Reference::familiar).collect()),
                layers: layer_paths,
            });
        }
        let idx = Index { schema_version: 2, media_type: Some(media::OCI_INDEX.into()), manifests: index, annotations: BTreeMap::new() };
        file(&mut b, "index.json", &serde_json::to_vec(&idx).expect("index serializes"))?;
        file(&mut b, "manifest.json", &serde_json::to_vec(&items).expect("manifest serializes"))?;
        file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if !repositories.is_empty() {
            file(&mut b, "repositories", &serde_json::to_vec(&repositories).expect("repositories serialize"))?;
        }
        b.into_inner().map_err(werr)?.flush().map_err(werr)
    }

    /// `docker load`: read a `docker save` / `podman save` / OCI layout tar
    /// (plain, gzip, zstd or xz). Every file goes to the content store as it
    /// streams by (verified where the archive names its digest); then each
    /// image is added, its layers unpacked and checked against the config's
    /// diff IDs. An image becomes visible only once all of it is stored.
    pub fn load(&self, input: impl Read) -> Result<LoadReport, ArchiveError> {
        let before: std::collections::HashSet<Digest> =
            self.content().list().map_err(store_err(""))?.into_iter().map(|(d, _)| d).collect();
        let result = self.load_inner(input);
        // Blobs this load brought that no image took (manifest.json, the
        // files of a failed load).
        let keep = self.referenced_blobs()?;
        for (d, _) in self.content().list().map_err(store_err(""))? {
            if !before.contains(&d) && !keep.contains(&d) {
                self.content().delete(&d).map_err(store_err(""))?;
            }
        }
        result
    }

    fn load_inner(&self, input: impl Read) -> Result<LoadReport, ArchiveError> {
        let (_, r) = compression::decompress(input).map_err(|source| ArchiveError::Read { source })?;
        let mut archive = tar::Archive::new(r);
        let rerr = |source| ArchiveError::Read { source };
        // path in the archive -> blob, and small files kept for parsing.
        let mut blobs: HashMap<PathBuf, Digest> = HashMap::new();
        let mut links: HashMap<PathBuf, PathBuf> = HashMap::new();
        let mut small: HashMap<PathBuf, Vec<u8>> = HashMap::new();
        let mut added = Vec::new();
        for entry in archive.entries().map_err(rerr)? {
            let mut entry = entry.map_err(rerr)?;
            let raw = entry.path_bytes().into_owned();
            let Ok(path) = clean_entry_path(&raw) else {
                return Err(ArchiveError::Read {
                    source: io::Error::new(io::ErrorKind::InvalidData, format!("unsafe entry name {:?}", String::from_utf8_lossy(&raw))),
                });
            };
            match entry.header().entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let t = entry.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default();
                    let base = if entry.header().entry_type() == tar::EntryType::Symlink {
                        path.parent().unwrap_or(Path::new("")).join(std::ffi::OsStr::from_bytes_compat(&t))
                    } else {
                        PathBuf::from(std::ffi::OsStr::from_bytes_compat(&t))
                    };
                    links.insert(path, normalize(&base));
                    continue;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                _ => continue,
            }
            // Archive blobs named by digest are verified as they are stored.
            let expected = blob_digest_of(&path);
            if entry.size() <= 4 << 20 {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(rerr)?;
                let d = match &expected {
                    Some(exp) if self.content().exists(exp) => exp.clone(),
                    _ => {
                        let (d, _) = self
                            .content()
                            .put_stream(&format!("load-{}", path.display()), &mut &data[..], expected.as_ref())
                            .map_err(store_err(""))?;
                        d
                    }
                };
                small.insert(path.clone(), data);
                blobs.insert(path, d);
            } else {
                let reference = format!("load-{}", path.display());
                let (d, _) = self.content().put_stream(&reference, &mut entry, expected.as_ref()).map_err(store_err(""))?;
                blobs.insert(path, d);
            }
        }
        let resolve = |p: &str| -> Option<PathBuf> {
            let mut p = normalize(Path::new(p));
            for _ in 0..16 {
                match links.get(&p) {
                    Some(t) => p = t.clone(),
                    None => break,
                }
            }
            Some(p)
        };
        let blob_at = |p: &str| -> Result<Digest, ArchiveError> {
            resolve(p).and_then(|p| blobs.get(&p).cloned()).ok_or_else(|| ArchiveError::Missing { what: p.to_owned() })
        };
        let small_at = |p: &str| -> Result<Vec<u8>, ArchiveError> {
            let d = blob_at(p)?;
            match resolve(p).and_then(|p| small.get(&p).cloned()) {
                Some(b) => Ok(b),
                None => self.content().read(&d).map_err(store_err("")),
            }
        };
        let mut report = LoadReport::default();
        let result = (|| {
            if small.contains_key(Path::new("manifest.json")) {
                let data = small_at("manifest.json")?;
                let items: Vec<SaveManifestItem> =
                    serde_json::from_slice(&data).map_err(|source| ArchiveError::Json { file: "manifest.json".into(), source })?;
                for item in items {
                    let config = small_at(&item.config)?;
                    let mut descs = Vec::new();
                    for l in &item.layers {
                        let d = blob_at(l)?;
                        let size = self.content().size(&d).map_err(store_err(""))?;
                        descs.push(Descriptor::new(layer_media_type(blob_compression(self, &d)?), d, size));
                    }
                    let id = self.add_image(&config, &descs, None, None)?;
                    added.push(id.clone());
                    let tags = item.repo_tags.unwrap_or_default();
                    self.report_loaded(&id, &tags.iter().map(|t| Reference::parse(t)).collect::<Result<Vec<_>, _>>().map_err(StoreError::from)?, &mut report)?;
                }
                Ok(())
            } else if small.contains_key(Path::new("index.json")) {
                let data = small_at("index.json")?;
                let index = Index::parse(&Digest::sha256_of(&data), &data)?;
                for desc in &index.manifests {
                    let (mdigest, mbytes) = self.pick_manifest(desc, &blob_at, &small_at)?;
                    let manifest = Manifest::parse(&mdigest, &mbytes)?;
                    let config = small_at(&blob_path(&manifest.config.digest))?;
                    for l in &manifest.layers {
                        blob_at(&blob_path(&l.digest))?;
                    }
                    let id = self.add_image(&config, &manifest.layers, Some(mbytes), None)?;
                    added.push(id.clone());
                    // ref.name is often a bare tag ("latest"): only a full
                    // reference names the image.
                    let name = desc
                        .annotations
                        .get("io.containerd.image.name")
                        .or_else(|| desc.annotations.get("org.opencontainers.image.ref.name").filter(|n| n.contains(['/', ':'])))
                        .and_then(|n| Reference::parse(n).ok());
                    self.report_loaded(&id, name.as_slice(), &mut report)?;
                }
                Ok(())
            } else {
                Err(ArchiveError::NoManifest)
            }
        })();
        result?;
        report.images = added;
        Ok(report)
    }

    fn report_loaded(&self, id: &Digest, refs: &[Reference], report: &mut LoadReport) -> Result<(), ArchiveError> {
        if refs.is_empty() {
            report.lines.push(format!("Loaded image ID: {id}"));
        }
        for r in refs {
            if let Ok(old) = self.resolve(&r.to_string())
                && &old != id {
                    report.lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string",
                        r.familiar()
                    ));
                }
            self.set_reference(r, id)?;
            report.lines.push(format!("Loaded image: {}", r.familiar()));
        }
        Ok(())
    }

    /// The manifest a descriptor of index.json names; for a nested index
    /// (multi-platform), the one for this host.
    fn pick_manifest(
        &self,
        desc: &Descriptor,
        blob_at: &dyn Fn(&str) -> Result<Digest, ArchiveError>,
        small_at: &dyn Fn(&str) -> Result<Vec<u8>, ArchiveError>,
    ) -> Result<(Digest, Vec<u8>), ArchiveError> {
        let path = blob_path(&desc.digest);
        blob_at(&path)?;
        let bytes = small_at(&path)?;
        if !media::is_index(&desc.media_type) {
            return Ok((desc.digest.clone(), bytes));
        }
        let index = Index::parse(&desc.digest, &bytes)?;
        let host = crate::model::host_platform();
        let pick = index
            .manifests
            .iter()
            .find(|m| {
                m.platform.as_ref().is_some_and(|p| p.os == host.os && p.architecture == host.architecture)
                    && blob_at(&blob_path(&m.digest)).is_ok()
            })
            .ok_or_else(|| ArchiveError::NoPlatform {
                image: desc.digest.to_string(),
                platform: format!("{}/{}", host.os, host.architecture),
            })?;
        self.pick_manifest(pick, blob_at, small_at)
    }

    /// `docker import`'s sibling: the root of a container (its mounted
    /// snapshot) as a tar, streamed to `out`.
    pub fn export_rootfs(rootfs: &Path, out: impl Write) -> Result<(), ArchiveError> {
        let w = crate::tarwrite::write_tree(rootfs, crate::tarwrite::TreeKind::Plain, io::BufWriter::with_capacity(BUF_SIZE, out))
            .map_err(|source| ArchiveError::Write { source })?;
        w.into_inner().map_err(|e| ArchiveError::Write { source: e.into_error() })?.flush().map_err(|source| ArchiveError::Write { source })
    }
}

/// `blobs/<alg>/<hex>` for a digest.
fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

/// The digest a path in an archive names: `blobs/sha256/<hex>`, or docker
/// 20.10's `<hex>.json` config (its digest is its name).
fn blob_digest_of(p: &Path) -> Option<Digest> {
    let s = p.to_str()?;
    if let Some(rest) = s.strip_prefix("blobs/") {
        let (alg, hex) = rest.split_once('/')?;
        return format!("{alg}:{hex}").parse().ok();
    }
    let hex = s.strip_suffix(".json")?;
    format!("sha256:{hex}").parse().ok()
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

trait OsStrCompat {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr;
}

impl OsStrCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}
