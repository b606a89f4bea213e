//! `docker manifest create/annotate/inspect/push/rm`: multi-platform lists
//! assembled locally from manifests already in a registry, then pushed.
//!
//! Lifecycle, as docker keeps it under `~/.docker/manifests`:
//! 1. [`ManifestLists::create`] fetches each image's manifest and config
//!    from its registry and stores one entry per image (descriptor with the
//!    platform from the config, and the raw manifest) under
//!    `<dir>/<list>/<image>.json`.
//! 2. [`ManifestLists::annotate`] changes an entry's platform.
//! 3. [`ManifestLists::inspect`] builds the list from the entries.
//! 4. [`ManifestLists::push`] copies manifests (and mounts their blobs)
//!    into the list's repository where they live elsewhere on the same
//!    registry, then pushes the list under its tag.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthConfig, repository_scope};
use crate::client::{Client, with_query};
use crate::error::Error;
use berth_image::digest::Digest;
use berth_image::model::{Descriptor, ImageConfig, Index, Manifest, Platform, media};
use berth_image::reference::Reference;

/// One image of a local list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The image as given, normalized.
    pub reference: String,
    pub descriptor: Descriptor,
    /// The manifest's bytes.
    pub raw: String,
}

/// `docker manifest annotate` flags.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
}

/// Local manifest lists under one directory.
#[derive(Debug, Clone)]
pub struct ManifestLists {
    dir: PathBuf,
}

fn escape(r: &Reference) -> String {
    r.to_string().replace(['/', ':', '@'], "_")
}

fn list_error(message: String) -> Error {
    Error::ManifestList { message }
}

impl ManifestLists {
    pub fn open(dir: &Path) -> ManifestLists {
        ManifestLists { dir: dir.to_owned() }
    }

    fn list_dir(&self, list: &Reference) -> PathBuf {
        self.dir.join(escape(list))
    }

    /// The entries of a list, in the order they were added.
    pub fn entries(&self, list: &str) -> Result<Vec<ListEntry>, Error> {
        let l = Reference::parse(list)?;
        let dir = self.list_dir(&l);
        let rd = std::fs::read_dir(&dir).map_err(|_| list_error(format!("No such manifest: {}", l.familiar())))?;
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let data = std::fs::read(&p).map_err(|source| Error::Io { path: p.clone(), source })?;
                serde_json::from_slice(&data).map_err(|e| list_error(format!("{}: {e}", p.display())))
            })
            .collect()
    }

    fn write_entry(&self, list: &Reference, e: &ListEntry) -> Result<(), Error> {
        let r = Reference::parse(&e.reference)?;
        let p = self.list_dir(list).join(format!("{}.json", escape(&r)));
        std::fs::create_dir_all(self.list_dir(list)).map_err(|source| Error::Io { path: self.list_dir(list), source })?;
        berth_sys::fs::write_atomic(&p, &serde_json::to_vec_pretty(e).expect("entry serializes"))
            .map_err(|err| Error::Io { path: p.clone(), source: std::io::Error::other(err.to_string()) })
    }

    /// `docker manifest create LIST IMAGE...` (`--amend` adds to an
    /// existing list). Returns docker's line `Created manifest list ...`.
    pub async fn create(&self, client: &Client, list: &str, images: &[String], amend: bool, auth: Option<&AuthConfig>) -> Result<String, Error> {
        let l = Reference::parse(list)?;
        let dir = self.list_dir(&l);
        if dir.exists() && !amend {
            return Err(list_error(format!("refusing to amend an existing manifest list with no --amend flag: {}", l.familiar())));
        }
        for image in images {
            let r = Reference::parse(image)?;
            if r.domain() != l.domain() {
                return Err(list_error(format!("cannot use source images from a different registry than the target image: {} != {}", r.domain(), l.domain())));
            }
            let fetched = client.inspect(image, auth).await?;
            if media::is_index(&fetched.media_type) {
                return Err(list_error(format!("{} is a manifest list", r.familiar())));
            }
            let m = Manifest::parse(&fetched.digest, &fetched.bytes).map_err(|e| Error::InvalidManifest { what: r.familiar(), message: e.to_string() })?;
            let repo = client.repo(&r, false, auth).await?;
            let cfg = client.get_small_blob(&repo, &m.config.digest, 16 << 20).await?;
            let c = ImageConfig::parse(&m.config.digest, &cfg).map_err(|e| Error::InvalidManifest { what: r.familiar(), message: e.to_string() })?;
            let mut desc = Descriptor::new(&fetched.media_type, fetched.digest.clone(), fetched.bytes.len() as u64);
            desc.platform = Some(Platform { architecture: c.architecture, os: c.os, variant: c.variant, os_version: c.os_version });
            let raw = String::from_utf8(fetched.bytes).map_err(|_| list_error(format!("manifest of {} is not utf-8", r.familiar())))?;
            self.write_entry(&l, &ListEntry { reference: r.to_string(), descriptor: desc, raw })?;
        }
        Ok(format!("Created manifest list {l}"))
    }

    /// `docker manifest annotate LIST IMAGE --os --arch --variant`.
    pub fn annotate(&self, list: &str, image: &str, a: &Annotation) -> Result<(), Error> {
        let l = Reference::parse(list)?;
        let r = Reference::parse(image)?;
        let mut e = self
            .entries(list)?
            .into_iter()
            .find(|e| e.reference == r.to_string())
            .ok_or_else(|| list_error(format!("manifest for image {} does not exist in {}", r.familiar(), l.familiar())))?;
        let p = e.descriptor.platform.get_or_insert(Platform { architecture: String::new(), os: String::new(), variant: None, os_version: None });
        if let Some(os) = &a.os {
            p.os = os.clone();
        }
        if let Some(arch) = &a.arch {
            p.architecture = arch.clone();
        }
        if let Some(v) = &a.variant {
            p.variant = Some(v.clone()).filter(|v| !v.is_empty());
        }
        if let Some(v) = &a.os_version {
            p.os_version = Some(v.clone()).filter(|v| !v.is_empty());
        }
        self.write_entry(&l, &e)
    }

    /// `docker manifest inspect LIST` of a local list: the index it will
    /// push (a Docker manifest list when every entry is a Docker manifest,
    /// an OCI index otherwise).
    pub fn inspect(&self, list: &str) -> Result<Index, Error> {
        let entries = self.entries(list)?;
        let docker = entries.iter().all(|e| e.descriptor.media_type == media::DOCKER_MANIFEST);
        Ok(Index {
            schema_version: 2,
            media_type: Some(if docker { media::DOCKER_MANIFEST_LIST } else { media::OCI_INDEX }.into()),
            manifests: entries.into_iter().map(|e| e.descriptor).collect(),
            annotations: Default::default(),
        })
    }

    /// `docker manifest rm LIST`.
    pub fn remove(&self, list: &str) -> Result<(), Error> {
        let l = Reference::parse(list)?;
        let dir = self.list_dir(&l);
        if !dir.exists() {
            return Err(list_error(format!("No such manifest: {}", l.familiar())));
        }
        std::fs::remove_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })
    }

    /// `docker manifest push LIST [--purge]`: returns the list's digest.
    pub async fn push(&self, client: &Client, list: &str, purge: bool, auth: Option<&AuthConfig>) -> Result<Digest, Error> {
        let l = Reference::parse(list)?;
        let entries = self.entries(list)?;
        let index = self.inspect(list)?;
        let repo = client.repo(&l, true, auth).await?;
        for e in &entries {
            let src = Reference::parse(&e.reference)?;
            if src.path() == l.path() {
                continue;
            }
            // Same registry, other repository: mount the blobs, copy the manifest.
            let m = Manifest::parse(&e.descriptor.digest, e.raw.as_bytes()).map_err(|err| Error::InvalidManifest { what: src.familiar(), message: err.to_string() })?;
            let mrepo = crate::client::Repo { scope: format!("{} {}", repo.scope, repository_scope(src.path(), false)), ..repo.clone() };
            for b in std::iter::once(&m.config).chain(&m.layers) {
                if b.media_type.contains("nondistributable") || b.media_type.contains("foreign") || client.blob_exists(&repo, &b.digest).await?.is_some() {
                    continue;
                }
                let url = with_query(&with_query(&repo.url("blobs/uploads/"), "mount", &b.digest.to_string()), "from", src.path());
                let resp = client.send(&mrepo, Method::POST, &url, |rb| rb.header(reqwest::header::CONTENT_LENGTH, 0)).await?;
                if resp.status().as_u16() != 201 {
                    return Err(list_error(format!("cannot mount blob {} from {} into {}", b.digest, src.path(), l.path())));
                }
            }
            client.put_manifest(&repo, &e.descriptor.digest.to_string(), &e.descriptor.media_type, e.raw.clone().into_bytes()).await?;
        }
        let bytes = serde_json::to_vec(&index).expect("index serializes");
        let target = l.tag().map(str::to_owned).unwrap_or_else(|| "latest".into());
        let digest = client.put_manifest(&repo, &target, index.media_type.as_deref().unwrap_or(media::OCI_INDEX), bytes).await?;
        if purge {
            self.remove(list)?;
        }
        Ok(digest)
    }
}
