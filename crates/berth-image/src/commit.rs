//! A container's changes: `diff` (what `docker diff` prints) and `commit`
//! (those changes as a new layer on the container's image).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::api::Change;
use crate::archive::ArchiveError;
use crate::change::apply_changes;
use crate::compression::BUF_SIZE;
use crate::digest::Digest;
use crate::model::{ContainerConfig, Descriptor, History, ImageConfig, media};
use crate::reference::Reference;
use crate::store::{ImageStore, StoreError};
use crate::tarwrite::{TreeKind, TreeWriter, is_opaque, is_whiteout};

/// Pauses a container around `commit` (docker's `--pause`, on by default);
/// the daemon implements it with the freezer.
pub trait Pauser {
    fn pause(&self) -> io::Result<()>;
    fn resume(&self) -> io::Result<()>;
}

/// Options for [`ImageStore::commit`] (`docker commit`).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPOSITORY[:TAG]`.
    pub reference: Option<String>,
    /// `--author`.
    pub author: String,
    /// `--message`.
    pub message: String,
    /// `--change` lines.
    pub changes: Vec<String>,
    /// The container's own config, merged over the image's (docker merges
    /// the container's Cmd, Env... into the new image).
    pub config: Option<ContainerConfig>,
    /// The container's ID, recorded in the config.
    pub container_id: String,
    /// Mount points the runtime made in the writable layer (relative to the
    /// root, e.g. `etc/hosts`), left out of the layer while they are empty.
    pub placeholders: Vec<PathBuf>,
}

/// Whether `rel` exists in the lower layers (top first), seen through their
/// whiteouts.
fn in_lower(lowers: &[PathBuf], rel: &Path) -> bool {
    for l in lowers {
        // A whiteout of the path, or of a parent dir, hides everything below.
        let mut acc = PathBuf::new();
        for c in rel.components() {
            acc.push(c);
            if let Ok(m) = fs::symlink_metadata(l.join(&acc))
                && is_whiteout(&m) {
                    return false;
                }
        }
        if fs::symlink_metadata(l.join(rel)).is_ok() {
            return true;
        }
        if let Some(parent) = rel.parent()
            && !parent.as_os_str().is_empty() && is_opaque(&l.join(parent)) {
                return false;
            }
    }
    false
}

fn walk_changes(upper: &Path, lowers: &[PathBuf], rel: &Path, out: &mut Vec<Change>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(upper.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let abs = upper.join(&rel);
        let m = fs::symlink_metadata(&abs)?;
        let path = format!("/{}", rel.display());
        if is_whiteout(&m) {
            out.push(Change { path, kind: Change::DELETED });
            continue;
        }
        let kind = if in_lower(lowers, &rel) { Change::MODIFIED } else { Change::ADDED };
        out.push(Change { path, kind });
        if m.is_dir() {
            walk_changes(upper, lowers, &rel, out)?;
        }
    }
    Ok(())
}

impl ImageStore {
    fn snapshot_dirs(&self, key: &str) -> Result<(PathBuf, Vec<PathBuf>), StoreError> {
        let info = self.snapshots().get(key)?;
        let lowers = match &info.parent {
            Some(p) => self
                .layers()
                .ancestry(p)
                .map_err(|source| StoreError::Layer { id: key.to_owned(), source })?
                .iter()
                .map(|l| self.layers().diff_dir(&l.chain_id))
                .collect(),
            None => Vec::new(),
        };
        Ok((self.snapshots().upper_dir(key)?, lowers))
    }

    /// `docker diff`: the changes in snapshot `key` against its image,
    /// sorted by path. Deleted files (whiteouts) are `D`.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>, StoreError> {
        let (upper, lowers) = self.snapshot_dirs(key)?;
        let mut out = Vec::new();
        walk_changes(&upper, &lowers, Path::new(""), &mut out).map_err(|source| StoreError::Io { path: upper.clone(), source })?;
        Ok(out)
    }

    /// `docker commit`: snapshot `key`'s changes as a new layer on `image`
    /// (the container's image), with whiteouts for deletions and a history
    /// entry. Returns the new image ID.
    pub fn commit(&self, key: &str, image: &str, opts: &CommitOptions, pauser: Option<&dyn Pauser>) -> Result<Digest, ArchiveError> {
        let reference = opts.reference.as_deref().map(Reference::parse).transpose().map_err(StoreError::from)?;
        let base_id = self.resolve(image)?;
        let base = self.image(&base_id)?;
        let (upper, _) = self.snapshot_dirs(key)?;
        let mut cfg = match (&opts.config, &base.config.config) {
            (Some(c), _) => c.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => ContainerConfig::default(),
        };
        apply_changes(&mut cfg, &opts.changes)?;

        if let Some(p) = pauser {
            p.pause().map_err(|source| ArchiveError::Write { source })?;
        }
        let written = self.write_layer_blob(key, &upper, &opts.placeholders);
        if let Some(p) = pauser {
            p.resume().map_err(|source| ArchiveError::Write { source })?;
        }
        let (blob, size) = written?;

        let created = crate::model::now_rfc3339();
        let mut config: ImageConfig = base.config.clone();
        config.config = Some(cfg.clone());
        config.container = (!opts.container_id.is_empty()).then(|| opts.container_id.clone());
        config.container_config = None;
        config.created = Some(created.clone());
        config.author = opts.author.clone();
        config.comment = opts.message.clone();
        config.docker_version = None;
        config.rootfs.diff_ids.push(blob.clone());
        config.history.push(History {
            created: Some(created),
            author: opts.author.clone(),
            created_by: cfg.cmd.as_ref().map(|c| c.join(" ")).unwrap_or_default(),
            comment: opts.message.clone(),
            empty_layer: false,
        });
        let mut layers = base.manifest.layers.clone();
        layers.push(Descriptor::new(media::OCI_LAYER, blob, size));
        let id = self.add_image(&config.to_bytes(), &layers, None, Some(base_id))?;
        if let Some(r) = reference {
            self.set_reference(&r, &id)?;
        }
        Ok(id)
    }

    /// Tar the upper dir into the content store (uncompressed: its digest is
    /// the diff ID).
    fn write_layer_blob(&self, key: &str, upper: &Path, placeholders: &[PathBuf]) -> Result<(Digest, u64), ArchiveError> {
        let cerr = |source| ArchiveError::Store { source: StoreError::Content { id: key.to_owned(), source } };
        let w = self.content().writer(&format!("commit-{key}-{}", crate::layer::random_name(8)), crate::digest::Algorithm::Sha256).map_err(cerr)?;
        let mut b = tar::Builder::new(io::BufWriter::with_capacity(BUF_SIZE, w));
        let werr = |source| ArchiveError::Write { source };
        let r = TreeWriter::new(&mut b, upper, TreeKind::OverlayUpper).and_then(|t| t.without_placeholders(placeholders.to_vec()).write_all());
        r.map_err(werr)?;
        let mut bw = b.into_inner().map_err(werr)?;
        bw.flush().map_err(werr)?;
        let w = bw.into_inner().map_err(|e| werr(e.into_error()))?;
        w.commit(None, None).map_err(cerr)
    }
}
