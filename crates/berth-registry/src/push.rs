//! `docker push`: each layer blob is skipped when the repository has it
//! (`HEAD`), mounted from another repository of the same registry that a
//! local image of it came from, or uploaded (one streaming `PUT`, or
//! `PATCH` chunks when configured), several at a time; then the config and
//! the manifest, byte for byte as stored so that the digest is the image's.

use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};

use crate::auth::{AuthConfig, repository_scope};
use crate::client::{Client, Repo, octet_stream, with_query};
use crate::blocking;
use crate::error::Error;
use crate::progress::{Progress, ProgressMessage, Ticker};
use berth_image::digest::Digest;
use berth_image::model::Descriptor;
use berth_image::reference::Reference;
use berth_image::store::ImageStore;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// From `X-Registry-Auth`; the credential files otherwise.
    pub auth: Option<AuthConfig>,
}

#[derive(Debug, Clone)]
pub struct PushReport {
    pub reference: Reference,
    /// The manifest's digest (recorded in RepoDigests).
    pub digest: Digest,
    pub size: u64,
    pub pushed: Vec<Digest>,
    pub mounted: Vec<Digest>,
    pub existing: Vec<Digest>,
}

/// How a blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    Existing,
    Mounted(String),
    Pushed,
}


impl Client {
    /// Push the local image `reference` names (default tag `latest`).
    pub async fn push(&self, store: Arc<ImageStore>, reference: &str, opts: &PushOptions, progress: &Progress) -> Result<PushReport, Error> {
        let r = Reference::parse(reference)?;
        let s = store.clone();
        let name = r.to_string();
        let img = blocking(move || s.resolve(&name).and_then(|id| s.image(&id))).await?;
        progress.send(ProgressMessage::status(format!("The push refers to repository [{}]", r.name())));
        let repo = self.repo(&r, true, opts.auth.as_ref()).await?;
        let md = img.record.manifest.digest.clone();
        let (c, md2) = (store.content().clone(), md.clone());
        let manifest_bytes = blocking(move || c.read(&md2)).await?;
        let mut report = PushReport { reference: r.clone(), digest: md.clone(), size: manifest_bytes.len() as u64, pushed: vec![], mounted: vec![], existing: vec![] };

        // Layers, top first as docker lists them; ids are short diff IDs.
        let layers: Vec<(Descriptor, String)> = img
            .manifest
            .layers
            .iter()
            .zip(&img.config.rootfs.diff_ids)
            .rev()
            .map(|(d, diff)| (d.clone(), diff.short().to_owned()))
            .collect();
        for (_, id) in &layers {
            progress.send(ProgressMessage::layer(id, "Preparing"));
        }
        let limit = self.options.max_concurrent_uploads.max(1);
        for (_, id) in layers.iter().skip(limit) {
            progress.send(ProgressMessage::layer(id, "Waiting"));
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(limit));
        let mut set = tokio::task::JoinSet::new();
        for (desc, id) in layers {
            let (client, repo, store, progress, sem) = (self.clone(), repo.clone(), store.clone(), progress.clone(), sem.clone());
            set.spawn(async move {
                let _p = sem.acquire().await.expect("semaphore open");
                let outcome = client.push_blob(&repo, &store, &desc, Some(&id), &progress).await?;
                Ok::<_, Error>((desc.digest, outcome))
            });
        }
        let mut first_err = None;
        while let Some(res) = set.join_next().await {
            match res.expect("upload task panicked") {
                Ok((d, BlobOutcome::Existing)) => report.existing.push(d),
                Ok((d, BlobOutcome::Mounted(_))) => report.mounted.push(d),
                Ok((d, BlobOutcome::Pushed)) => report.pushed.push(d),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        self.push_blob(&repo, &store, &img.manifest.config, None, progress).await?;

        let media_type = serde_json::from_slice::<serde_json::Value>(&manifest_bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| img.record.manifest.media_type.clone());
        let tag = r.tag().map(str::to_owned);
        let target = tag.clone().unwrap_or_else(|| md.to_string());
        let digest = self.put_manifest(&repo, &target, &media_type, manifest_bytes).await?;
        report.digest = digest.clone();
        let tag_shown = tag.unwrap_or_else(|| digest.to_string());
        progress.send(ProgressMessage::status(format!("{tag_shown}: digest: {digest} size: {}", report.size)));
        progress.send(ProgressMessage::aux(serde_json::json!({ "Tag": tag_shown, "Digest": digest.to_string(), "Size": report.size })));
        let (s, rd, id) = (store.clone(), r.with_digest(digest.clone()), img.record.id.clone());
        blocking(move || s.set_reference(&rd, &id)).await?;
        Ok(report)
    }

    /// `PUT` a manifest (by tag or digest); returns its digest, checked
    /// against what the registry says.
    pub async fn put_manifest(&self, repo: &Repo, reference: &str, media_type: &str, bytes: Vec<u8>) -> Result<Digest, Error> {
        let digest = Digest::sha256_of(&bytes);
        let url = repo.url(&format!("manifests/{reference}"));
        let mt = media_type.to_owned();
        let resp = self.send(repo, Method::PUT, &url, |rb| rb.header(CONTENT_TYPE, mt.as_str()).body(bytes.clone())).await?;
        if !resp.status().is_success() {
            return Err(self.error_for(repo, &Method::PUT, &url, resp, &format!("push of manifest to {}", repo.name)).await);
        }
        if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).and_then(|s| s.parse::<Digest>().ok())
            && d.algorithm() == digest.algorithm()
            && d != digest
        {
            return Err(Error::DigestMismatch { what: format!("manifest pushed to {}", repo.name), expected: digest, actual: d });
        }
        Ok(digest)
    }

    /// Repositories of the same registry that local images holding blob `d`
    /// came from: mount candidates.
    fn mount_sources(store: &ImageStore, repo: &Repo, d: &Digest) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let Ok(refs) = store.all_references() else { return out };
        for (id, r) in refs {
            if r.domain() != repo.registry || r.path() == repo.name || out.iter().any(|o| o == r.path()) {
                continue;
            }
            if store.image(&id).is_ok_and(|img| img.manifest.layers.iter().any(|l| &l.digest == d) || &img.manifest.config.digest == d) {
                out.push(r.path().to_owned());
            }
            if out.len() >= 3 {
                break;
            }
        }
        out
    }

    /// Get one blob of the local store into the repository.
    pub async fn push_blob(&self, repo: &Repo, store: &Arc<ImageStore>, desc: &Descriptor, id: Option<&str>, progress: &Progress) -> Result<BlobOutcome, Error> {
        let d = &desc.digest;
        let say = |s: &str| {
            if let Some(id) = id {
                progress.send(ProgressMessage::layer(id, s));
            }
        };
        if self.blob_exists(repo, d).await?.is_some() {
            say("Layer already exists");
            return Ok(BlobOutcome::Existing);
        }
        let (s, r2, d2) = (store.clone(), repo.clone(), d.clone());
        let sources = blocking(move || Client::mount_sources(&s, &r2, &d2)).await;
        let mut location = None;
        for from in sources {
            let mrepo = Repo { scope: format!("{} {}", repo.scope, repository_scope(&from, false)), ..repo.clone() };
            let url = with_query(&with_query(&repo.url("blobs/uploads/"), "mount", &d.to_string()), "from", &from);
            let resp = self.send(&mrepo, Method::POST, &url, |rb| rb.header(CONTENT_LENGTH, 0)).await?;
            match resp.status().as_u16() {
                201 => {
                    say(&format!("Mounted from {from}"));
                    return Ok(BlobOutcome::Mounted(from));
                }
                202 => {
                    location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    break;
                }
                _ => {}
            }
        }
        let location = match location {
            Some(l) => l,
            None => self.start_upload(repo).await?,
        };
        self.upload(repo, store, desc, &self.absolute(repo, &location), id, progress).await?;
        say("Pushed");
        Ok(BlobOutcome::Pushed)
    }

    /// `POST .../blobs/uploads/`: the session's location.
    async fn start_upload(&self, repo: &Repo) -> Result<String, Error> {
        let url = repo.url("blobs/uploads/");
        let resp = self.send(repo, Method::POST, &url, |rb| rb.header(CONTENT_LENGTH, 0)).await?;
        if resp.status().as_u16() != 202 {
            return Err(self.error_for(repo, &Method::POST, &url, resp, &format!("upload to {}", repo.name)).await);
        }
        resp.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::Registry { method: "POST".into(), url, status: 202, message: "no Location in the upload response".into() })
    }

    /// Stream the blob from the content store to an upload session.
    async fn upload(&self, repo: &Repo, store: &Arc<ImageStore>, desc: &Descriptor, location: &str, id: Option<&str>, progress: &Progress) -> Result<(), Error> {
        let d = &desc.digest;
        let path = store.content().blob_path(d);
        let size = tokio::fs::metadata(&path).await.map_err(|source| Error::Io { path: path.clone(), source })?.len();
        let http_err = |url: &str, e: reqwest::Error| Error::Connect { method: "PUT".into(), url: url.to_owned(), message: e.to_string() };
        let auth = self.auth_header(repo);
        let http = self.http_for(repo)?;
        let body_of = |offset: u64, len: u64| {
            let path = path.clone();
            async move {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut f = tokio::fs::File::open(&path).await.map_err(|source| Error::Io { path: path.clone(), source })?;
            f.seek(std::io::SeekFrom::Start(offset)).await.map_err(|source| Error::Io { path: path.clone(), source })?;
            Ok::<_, Error>(tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 << 10))
            }
        };
        let progress_stream = |stream: tokio_util::io::ReaderStream<tokio::io::Take<tokio::fs::File>>, base: u64| {
            let (progress, id) = (progress.clone(), id.map(str::to_owned));
            let mut sent = base;
            let mut ticker = Ticker::new();
            stream.map(move |c| {
                if let Ok(b) = &c {
                    sent += b.len() as u64;
                    if let Some(id) = &id
                        && ticker.due()
                    {
                        progress.send(ProgressMessage::bytes(id, "Pushing", sent, size));
                    }
                }
                c
            })
        };
        let mut loc = location.to_owned();
        let mut offset = 0u64;
        if let Some(chunk) = self.options.upload_chunk_size.filter(|c| *c > 0 && *c < size) {
            while offset < size {
                let len = chunk.min(size - offset);
                let body = reqwest::Body::wrap_stream(progress_stream(body_of(offset, len).await?, offset));
                let mut rb = http.patch(&loc).headers(octet_stream(len)).header(CONTENT_RANGE, format!("{}-{}", offset, offset + len - 1)).body(body);
                if let Some(a) = &auth {
                    rb = rb.header(reqwest::header::AUTHORIZATION, a);
                }
                let resp = rb.send().await.map_err(|e| http_err(&loc, e))?;
                if resp.status().as_u16() != 202 {
                    return Err(self.error_for(repo, &Method::PATCH, &loc.clone(), resp, &format!("upload of {d}")).await);
                }
                if let Some(l) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                    loc = self.absolute(repo, l);
                }
                offset += len;
            }
        }
        let url = with_query(&loc, "digest", &d.to_string());
        let rest = size - offset;
        let body = reqwest::Body::wrap_stream(progress_stream(body_of(offset, rest).await?, offset));
        let mut rb = http.put(&url).headers(octet_stream(rest)).body(body);
        if let Some(a) = &auth {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = rb.send().await.map_err(|e| http_err(&url, e))?;
        if resp.status().as_u16() != 201 {
            return Err(self.error_for(repo, &Method::PUT, &url, resp, &format!("upload of {d}")).await);
        }
        Ok(())
    }
}
