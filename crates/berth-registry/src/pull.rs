//! `docker pull`: manifest (and platform choice in an index), config, then
//! the layers: downloaded concurrently (3 at a time by default) into the
//! content store's resumable ingests, while one blocking unpacker registers
//! them bottom up. The unpacker reads a layer from its ingest file as it
//! grows, so the bottom layer unpacks while it downloads; a layer above
//! unpacks once its parent is registered. A layer is unpacked before its
//! compressed digest is known to be right, but not trusted before: the
//! layer store checks the diff ID against the config (whose digest the
//! manifest pins), and the pull fails unless every blob then verifies.
//!
//! A pull that is cancelled (its future dropped) or cut off leaves each
//! partial blob in its ingest (`pull-<digest>`); the next pull asks for the
//! rest with a `Range` request. Blobs and layers already stored are
//! skipped. The image becomes visible only once all of it is stored, in the
//! state `load` leaves: manifest, config and layer blobs in the content
//! store, layers registered, the tag and the repository digest recorded.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::RANGE;

use crate::auth::AuthConfig;
use crate::client::{Client, FetchedManifest, Repo};
use crate::blocking;
use crate::error::Error;
use crate::platform::PlatformSpec;
use crate::progress::{Progress, ProgressMessage, Ticker};
use berth_image::content::Writer;
use berth_image::digest::{Digest, chain_ids};
use berth_image::model::{Descriptor, ImageConfig, Index, Manifest, media};
use berth_image::reference::Reference;
use berth_image::store::ImageStore;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform`; the host's when `None`.
    pub platform: Option<PlatformSpec>,
    /// From `X-Registry-Auth`; the credential files otherwise.
    pub auth: Option<AuthConfig>,
}

#[derive(Debug, Clone)]
pub struct PullReport {
    /// The reference as pulled (normalized).
    pub reference: Reference,
    /// The image ID (config digest).
    pub id: Digest,
    /// The digest the tag resolved to (an index's when there is one): the
    /// one in RepoDigests and in `Digest:`.
    pub digest: Digest,
    /// Nothing was fetched and the reference already named the image.
    pub up_to_date: bool,
    /// Layer blobs fetched (wholly or the rest of a partial one).
    pub layers_downloaded: Vec<Digest>,
    /// Bytes received for layer blobs.
    pub bytes_downloaded: u64,
}

/// Download progress of one layer, shared with the unpacker.
#[derive(Default)]
struct DlState {
    /// The ingest file once the download started.
    path: Option<PathBuf>,
    /// Bytes in that file so far.
    written: u64,
    /// Set when the blob is stored and verified, or the download failed.
    done: Option<Result<(), String>>,
}

#[derive(Default)]
struct Shared {
    st: Mutex<DlState>,
    cv: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut DlState)) {
        f(&mut self.st.lock().unwrap());
        self.cv.notify_all();
    }
    /// Wait until `ready` says so; `None` when the pull was cancelled.
    fn wait<T>(&self, cancel: &AtomicBool, mut ready: impl FnMut(&DlState) -> Option<T>) -> Option<T> {
        let mut g = self.st.lock().unwrap();
        loop {
            if let Some(t) = ready(&g) {
                return Some(t);
            }
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            g = self.cv.wait_timeout(g, Duration::from_millis(200)).unwrap().0;
        }
    }
}

/// Marks a download failed if its task ends (or is aborted) before it
/// says otherwise.
struct DoneGuard(Arc<Shared>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.0.update(|s| {
            if s.done.is_none() {
                s.done = Some(Err("download cancelled".into()));
            }
        });
    }
}

/// Sets the pull's cancel flag when the pull future goes away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Reads an ingest file while the download appends to it.
struct FollowReader {
    file: File,
    pos: u64,
    shared: Arc<Shared>,
    cancel: Arc<AtomicBool>,
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.pos;
        let avail = self.shared.wait(&self.cancel, |s| {
            if s.written > pos {
                Some(Ok(s.written - pos))
            } else {
                match &s.done {
                    Some(Ok(())) => Some(Ok(0)),
                    Some(Err(e)) => Some(Err(io::Error::other(e.clone()))),
                    None => None,
                }
            }
        });
        let avail = match avail {
            None => return Err(io::Error::other("pull cancelled")),
            Some(r) => r?,
        };
        if avail == 0 {
            return Ok(0);
        }
        let want = buf.len().min(avail as usize);
        self.file.seek(SeekFrom::Start(pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Counts what the unpacker consumed, for `Extracting` progress.
struct Counting<R> {
    inner: R,
    n: u64,
    total: u64,
    id: String,
    progress: Progress,
    ticker: Ticker,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        if k > 0 && self.ticker.due() {
            self.progress.send(ProgressMessage::bytes(&self.id, "Extracting", self.n.min(self.total), self.total));
        }
        Ok(k)
    }
}

struct Job {
    desc: Descriptor,
    diff_id: Digest,
    parent: Option<Digest>,
    short: String,
    need_download: bool,
    need_unpack: bool,
    shared: Arc<Shared>,
}

/// One lock per blob digest in this process: two pulls of the same layer
/// share one download.
fn inflight(d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
    static MAP: std::sync::OnceLock<Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>> = std::sync::OnceLock::new();
    MAP.get_or_init(Default::default).lock().unwrap().entry(d.clone()).or_default().clone()
}

fn short(d: &Digest) -> String {
    d.short().to_owned()
}


impl Client {
    /// Pull `reference` into `store`, reporting progress as docker does.
    pub async fn pull(&self, store: Arc<ImageStore>, reference: &str, opts: &PullOptions, progress: &Progress) -> Result<PullReport, Error> {
        let r = Reference::parse(reference)?;
        let tag_or_digest = r.digest().map(|d| d.to_string()).or_else(|| r.tag().map(str::to_owned)).unwrap_or_else(|| "latest".into());
        progress.send(ProgressMessage::with_id(&tag_or_digest, format!("Pulling from {}", r.path())));
        let auth = self.credentials_for(r.domain(), opts.auth.as_ref())?;
        let endpoints = self.endpoints(r.domain(), true).await?;
        let mut last = None;
        for ep in endpoints {
            let mirror = ep.mirror;
            let repo = Repo {
                endpoint: ep,
                name: r.path().to_owned(),
                registry: r.domain().to_owned(),
                scope: crate::auth::repository_scope(r.path(), false),
                auth: auth.clone(),
            };
            match self.pull_from(&repo, &r, &tag_or_digest, store.clone(), opts, progress).await {
                Err(e) if mirror => {
                    tracing::info!(mirror = %repo.endpoint.host, error = %e, "mirror failed, trying the next endpoint");
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.expect("at least one endpoint was tried"))
    }

    async fn pull_from(
        &self,
        repo: &Repo,
        r: &Reference,
        tag_or_digest: &str,
        store: Arc<ImageStore>,
        opts: &PullOptions,
        progress: &Progress,
    ) -> Result<PullReport, Error> {
        let label = r.familiar();
        let top = self.get_manifest(repo, tag_or_digest, &label).await?;
        let manifest: FetchedManifest = if media::is_index(&top.media_type) {
            let idx = Index::parse(&top.digest, &top.bytes).map_err(|e| Error::InvalidManifest { what: label.clone(), message: e.to_string() })?;
            let platform = opts.platform.clone().unwrap_or_else(PlatformSpec::host);
            let pick = platform.select(&idx.manifests).ok_or_else(|| Error::NoMatchingManifest { platform: platform.to_string() })?;
            let m = self.get_manifest(repo, &pick.digest.to_string(), &label).await?;
            if m.digest != pick.digest {
                return Err(Error::DigestMismatch { what: format!("manifest of {label}"), expected: pick.digest.clone(), actual: m.digest });
            }
            m
        } else if media::is_manifest(&top.media_type) {
            top.clone()
        } else {
            return Err(Error::UnsupportedManifest { reference: label, media_type: top.media_type });
        };
        let m = Manifest::parse(&manifest.digest, &manifest.bytes).map_err(|e| Error::InvalidManifest { what: label.clone(), message: e.to_string() })?;
        let content = store.content().clone();
        let config_bytes = if content.exists(&m.config.digest) {
            let (c, d) = (content.clone(), m.config.digest.clone());
            blocking(move || c.read(&d)).await?
        } else {
            self.get_small_blob(repo, &m.config.digest, 16 << 20).await?
        };
        let config = ImageConfig::parse(&m.config.digest, &config_bytes).map_err(|e| Error::InvalidManifest { what: label.clone(), message: e.to_string() })?;
        // A single-platform image must be the platform asked for.
        if let Some(want) = &opts.platform
            && !media::is_index(&top.media_type)
        {
            let have = berth_image::model::Platform { architecture: config.architecture.clone(), os: config.os.clone(), variant: config.variant.clone(), os_version: None };
            if !want.matches(&have) {
                let actual = format!("{}/{}{}", config.os, config.architecture, config.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default());
                return Err(Error::PlatformMismatch { reference: label, wanted: want.to_string(), actual });
            }
        }
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != m.layers.len() {
            return Err(Error::InvalidManifest {
                what: label,
                message: format!("config has {} diff ids but the manifest {} layers", diff_ids.len(), m.layers.len()),
            });
        }
        let id = Digest::sha256_of(&config_bytes);
        let chains = chain_ids(&diff_ids);
        let up_to_date = store.image(&id).is_ok_and(|img| img.record.manifest.digest == manifest.digest)
            && m.layers.iter().all(|l| content.exists(&l.digest))
            && chains.iter().all(|c| store.layers().exists(c));

        let mut report = PullReport { reference: r.clone(), id: id.clone(), digest: top.digest.clone(), up_to_date, layers_downloaded: Vec::new(), bytes_downloaded: 0 };
        if !up_to_date {
            let jobs: Vec<Arc<Job>> = m
                .layers
                .iter()
                .zip(&diff_ids)
                .enumerate()
                .map(|(i, (desc, diff))| {
                    Arc::new(Job {
                        desc: desc.clone(),
                        diff_id: diff.clone(),
                        parent: (i > 0).then(|| chains[i - 1].clone()),
                        short: short(&desc.digest),
                        need_download: !content.exists(&desc.digest),
                        need_unpack: !store.layers().exists(&chains[i]),
                        shared: Arc::new(Shared::default()),
                    })
                })
                .collect();
            let (downloaded, bytes) = self.fetch_layers(repo, &store, &jobs, progress).await?;
            report.layers_downloaded = downloaded;
            report.bytes_downloaded = bytes;
            let (s, cb, mb) = (store.clone(), config_bytes.clone(), manifest.bytes.clone());
            let added = blocking(move || s.add_pulled_image(&cb, mb)).await?;
            debug_assert_eq!(added, id);
        }
        // As docker: a reference that now points elsewhere is news too.
        let (s, rs) = (store.clone(), r.to_string());
        let reference_current = blocking(move || s.resolve(&rs).ok()).await.as_ref() == Some(&id);
        report.up_to_date &= reference_current;
        let s = store.clone();
        let (tagged, digested, idc) = (r.tag().is_some().then(|| r.clone()), r.with_digest(top.digest.clone()), id.clone());
        blocking(move || -> Result<(), Error> {
            if let Some(t) = tagged {
                s.set_reference(&t, &idc)?;
            }
            s.set_reference(&digested, &idc)?;
            Ok(())
        })
        .await?;
        progress.send(ProgressMessage::status(format!("Digest: {}", top.digest)));
        progress.send(ProgressMessage::status(format!(
            "Status: {} for {}",
            if report.up_to_date { "Image is up to date" } else { "Downloaded newer image" },
            r.familiar()
        )));
        Ok(report)
    }

    /// Download what is missing and register what is not unpacked yet.
    async fn fetch_layers(&self, repo: &Repo, store: &Arc<ImageStore>, jobs: &[Arc<Job>], progress: &Progress) -> Result<(Vec<Digest>, u64), Error> {
        let limit = self.options.max_concurrent_downloads.max(1);
        let sem = Arc::new(tokio::sync::Semaphore::new(limit));
        let cancel = Arc::new(AtomicBool::new(false));
        let _cancel_guard = CancelOnDrop(cancel.clone());
        let mut waiting = 0;
        for j in jobs {
            if !j.need_download && !j.need_unpack {
                progress.send(ProgressMessage::layer(&j.short, "Already exists"));
                j.shared.update(|s| s.done = Some(Ok(())));
            } else {
                progress.send(ProgressMessage::layer(&j.short, "Pulling fs layer"));
            }
        }
        for j in jobs.iter().filter(|j| j.need_download) {
            waiting += 1;
            if waiting > limit {
                progress.send(ProgressMessage::layer(&j.short, "Waiting"));
            }
        }
        // Downloads: tasks of a set that aborts them all when dropped.
        let mut set = tokio::task::JoinSet::new();
        for j in jobs.iter().filter(|j| j.need_download || j.need_unpack) {
            let (j, repo, store, progress, sem) = (j.clone(), repo.clone(), store.clone(), progress.clone(), sem.clone());
            let client = self.clone();
            set.spawn(async move {
                let guard = DoneGuard(j.shared.clone());
                let result = if j.need_download { client.download(&repo, &store, &j, &progress, &sem).await } else { Ok(None) };
                match &result {
                    Ok(_) => j.shared.update(|s| s.done = Some(Ok(()))),
                    Err(e) => {
                        let msg = e.to_string();
                        j.shared.update(|s| s.done = Some(Err(msg)));
                    }
                }
                drop(guard);
                result.map(|r| r.map(|n| (j.desc.digest.clone(), n)))
            });
        }
        // The unpacker, bottom layer first.
        let unpacker = {
            let (jobs, store, progress, cancel) = (jobs.to_vec(), store.clone(), progress.clone(), cancel.clone());
            tokio::task::spawn_blocking(move || unpack_in_order(&jobs, &store, &progress, &cancel))
        };
        let mut downloaded = Vec::new();
        let mut bytes = 0;
        let mut first_err = None;
        while let Some(res) = set.join_next().await {
            match res.expect("download task panicked") {
                Ok(Some((d, n))) => {
                    downloaded.push(d);
                    bytes += n;
                }
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let unpacked = unpacker.await.expect("unpacker panicked");
        if let Some(e) = first_err {
            return Err(e);
        }
        unpacked?;
        Ok((downloaded, bytes))
    }
}

impl Client {
    /// Fetch one layer blob into the content store; `Some(bytes received)`
    /// when it was fetched here, `None` when another pull stored it.
    async fn download(&self, repo: &Repo, store: &Arc<ImageStore>, j: &Job, progress: &Progress, sem: &tokio::sync::Semaphore) -> Result<Option<u64>, Error> {
        // Held until the writer thread below is done with the ingest: a
        // cancelled pull's thread may still be writing buffered chunks (or
        // committing) when the next pull of the same blob starts.
        let one = inflight(&j.desc.digest).lock_owned().await;
        let content = store.content().clone();
        if content.exists(&j.desc.digest) {
            return Ok(None);
        }
        let _permit = sem.acquire().await.expect("semaphore open");
        let size = j.desc.size.max(0) as u64;
        let digest = j.desc.digest.clone();
        let ingest = format!("pull-{digest}");
        let alg = digest.algorithm();
        let open = |fresh: bool| {
            let (c, i) = (content.clone(), ingest.clone());
            blocking(move || -> Result<Writer, Error> {
                let mut w = c.writer(&i, alg)?;
                if fresh || w.offset() > size {
                    w.abort()?;
                    w = c.writer(&i, alg)?;
                }
                Ok(w)
            })
        };
        let mut writer = open(false).await?;
        if size > 0 && writer.offset() == size {
            // Whole but not committed (a crash between the last byte and
            // the rename): verify it, or fetch it again.
            let d = digest.clone();
            match blocking(move || writer.commit(Some(&d), Some(size))).await {
                Ok(_) => {
                    progress.send(ProgressMessage::layer(&j.short, "Download complete"));
                    return Ok(Some(0));
                }
                Err(_) => writer = open(true).await?,
            }
        }
        let url = repo.url(&format!("blobs/{digest}"));
        let offset = writer.offset();
        let resp = self.send(repo, Method::GET, &url, |rb| if offset > 0 { rb.header(RANGE, format!("bytes={offset}-")) } else { rb }).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.error_for(repo, &Method::GET, &url, resp, &format!("blob {digest}")).await);
        }
        let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT
            && resp.headers().get("content-range").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim_start_matches("bytes ").starts_with(&format!("{offset}-")));
        if offset > 0 && !resumed {
            // The registry sent the whole blob: start over.
            drop(writer);
            writer = open(true).await?;
        }
        let start = writer.offset();
        j.shared.update(|s| {
            s.path = Some(writer.data_path().to_owned());
            s.written = start;
        });
        if start > 0 {
            tracing::info!(blob = %digest, offset = start, "resuming download");
        }
        // Socket → bounded channel → blocking writer, which commits on
        // `Finish` (verifying digest and size) and otherwise, when the pull
        // goes away, leaves the partial blob for the next one. The unpacker
        // follows the file meanwhile.
        enum Msg {
            Data(bytes::Bytes),
            Finish,
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(16);
        let (shared, d, ing) = (j.shared.clone(), digest.clone(), ingest.clone());
        let wtask = tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let _one = one;
            while let Some(m) = rx.blocking_recv() {
                match m {
                    Msg::Data(b) => {
                        writer.write_all(&b).map_err(|source| Error::Io { path: PathBuf::from(&ing), source })?;
                        shared.update(|s| s.written += b.len() as u64);
                    }
                    Msg::Finish => {
                        writer.commit(Some(&d), Some(size))?;
                        return Ok(());
                    }
                }
            }
            Err(Error::Cancelled { reference: d.to_string() })
        });
        let mut stream = resp.bytes_stream();
        let mut got = 0u64;
        let mut ticker = Ticker::new();
        let mut failed = None;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failed = Some(Error::Connect { method: "GET".into(), url: url.clone(), message: e.to_string() });
                    break;
                }
            };
            got += chunk.len() as u64;
            if tx.send(Msg::Data(chunk)).await.is_err() {
                break;
            }
            if ticker.due() {
                progress.send(ProgressMessage::bytes(&j.short, "Downloading", start + got, size));
            }
        }
        if failed.is_none() {
            progress.send(ProgressMessage::layer(&j.short, "Verifying Checksum"));
            let _ = tx.send(Msg::Finish).await;
        }
        drop(tx);
        let written = wtask.await.expect("writer task panicked");
        if let Some(e) = failed {
            return Err(e); // the partial blob stays for the next pull
        }
        written?;
        progress.send(ProgressMessage::layer(&j.short, "Download complete"));
        Ok(Some(got))
    }
}

/// Register each layer that is not yet, in order, following downloads.
fn unpack_in_order(jobs: &[Arc<Job>], store: &ImageStore, progress: &Progress, cancel: &Arc<AtomicBool>) -> Result<(), Error> {
    let content = store.content();
    for j in jobs {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled { reference: j.desc.digest.to_string() });
        }
        let await_done = || -> Result<(), Error> {
            match j.shared.wait(cancel, |s| s.done.clone()) {
                None => Err(Error::Cancelled { reference: j.desc.digest.to_string() }),
                Some(Err(e)) => Err(Error::Connect { method: "GET".into(), url: j.desc.digest.to_string(), message: e }),
                Some(Ok(())) => Ok(()),
            }
        };
        if !j.need_unpack {
            if j.need_download {
                await_done()?;
                progress.send(ProgressMessage::layer(&j.short, "Pull complete"));
            }
            continue;
        }
        // The blob if stored, else its ingest as it grows.
        let reader: Box<dyn Read + Send> = if content.exists(&j.desc.digest) {
            Box::new(content.open_blob(&j.desc.digest)?)
        } else {
            let path = j.shared.wait(cancel, |s| match (&s.path, &s.done) {
                (Some(p), _) => Some(Ok(Some(p.clone()))),
                (None, Some(Ok(()))) => Some(Ok(None)),
                (None, Some(Err(e))) => Some(Err(e.clone())),
                (None, None) => None,
            });
            match path {
                None => return Err(Error::Cancelled { reference: j.desc.digest.to_string() }),
                Some(Err(e)) => return Err(Error::Connect { method: "GET".into(), url: j.desc.digest.to_string(), message: e }),
                Some(Ok(None)) => Box::new(content.open_blob(&j.desc.digest)?),
                Some(Ok(Some(p))) => {
                    let file = File::open(&p).or_else(|_| content.open_blob(&j.desc.digest).map_err(|e| io::Error::other(e.to_string())));
                    let file = file.map_err(|source| Error::Io { path: p.clone(), source })?;
                    Box::new(FollowReader { file, pos: 0, shared: j.shared.clone(), cancel: cancel.clone() })
                }
            }
        };
        let total = j.desc.size.max(0) as u64;
        let counting = Counting { inner: reader, n: 0, total, id: j.short.clone(), progress: progress.clone(), ticker: Ticker::new() };
        store.layers().register(j.parent.as_ref(), io::BufReader::with_capacity(1 << 20, counting), Some(&j.diff_id))?;
        progress.send(ProgressMessage::bytes(&j.short, "Extracting", total, total));
        await_done()?;
        progress.send(ProgressMessage::layer(&j.short, "Pull complete"));
    }
    Ok(())
}
