//! `berth registry gc`: mark every blob a manifest of some repository
//! refers to, then sweep the rest (and the repository links to them), and
//! remove abandoned upload sessions. As with distribution's
//! `garbage-collect`, run it while the registry is stopped or read-only: a
//! blob uploaded but not yet referenced by a manifest counts as garbage.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::storage::{Storage, StorageError};
use berth_image::digest::Digest;

#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Also delete manifests no tag reaches (directly, through an index, or
    /// as a referrer of a reachable manifest).
    pub delete_untagged: bool,
    /// Report what would go, delete nothing.
    pub dry_run: bool,
    /// Upload sessions untouched this long are removed (default one day).
    pub upload_max_age: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_deleted: Vec<Digest>,
    pub bytes_freed: u64,
    /// `(repository, manifest)` removed as untagged.
    pub manifests_deleted: Vec<(String, Digest)>,
    pub uploads_removed: usize,
}

/// What a stored manifest points at: blobs, child manifests, subject.
type Refs = (Vec<Digest>, Vec<Digest>, Option<Digest>);

fn references(data: &[u8]) -> Refs {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return Default::default() };
    let digest_of = |d: &Value| d.get("digest").and_then(Value::as_str).and_then(|s| s.parse::<Digest>().ok());
    let mut blobs = Vec::new();
    blobs.extend(v.get("config").and_then(digest_of));
    for key in ["layers", "blobs"] {
        if let Some(ls) = v.get(key).and_then(Value::as_array) {
            blobs.extend(ls.iter().filter_map(digest_of));
        }
    }
    let children = v.get("manifests").and_then(Value::as_array).map(|ms| ms.iter().filter_map(digest_of).collect()).unwrap_or_default();
    (blobs, children, v.get("subject").and_then(digest_of))
}

pub fn gc(root: &Path, opts: &GcOptions) -> Result<GcReport, StorageError> {
    let s = Storage::open(root)?;
    let mut report = GcReport::default();
    let mut marked: BTreeSet<Digest> = BTreeSet::new();
    for repo in s.repositories()? {
        let manifests = s.manifests(&repo)?;
        let mut parsed: HashMap<Digest, Refs> = HashMap::new();
        for m in &manifests {
            if let Ok(data) = s.read_blob(m) {
                parsed.insert(m.clone(), references(&data));
            }
        }
        let mut keep: BTreeSet<Digest> = manifests.iter().cloned().collect();
        if opts.delete_untagged {
            // Reachable from tags through index children and referrers.
            let mut reach: BTreeSet<Digest> = BTreeSet::new();
            let mut todo: Vec<Digest> = s.tags(&repo)?.iter().filter_map(|t| s.tag(&repo, t)).collect();
            while let Some(d) = todo.pop() {
                if !reach.insert(d.clone()) {
                    continue;
                }
                if let Some((_, children, _)) = parsed.get(&d) {
                    todo.extend(children.iter().cloned());
                }
                todo.extend(parsed.iter().filter(|(_, (_, _, subj))| subj.as_ref() == Some(&d)).map(|(m, _)| m.clone()));
            }
            for m in &manifests {
                if !reach.contains(m) {
                    keep.remove(m);
                    report.manifests_deleted.push((repo.clone(), m.clone()));
                    if !opts.dry_run {
                        if let Some((_, _, Some(subj))) = parsed.get(m) {
                            s.remove_referrer(&repo, subj, m)?;
                        }
                        s.unlink_manifest(&repo, m)?;
                    }
                }
            }
        }
        for m in &keep {
            marked.insert(m.clone());
            if let Some((blobs, _, _)) = parsed.get(m) {
                marked.extend(blobs.iter().cloned());
            }
        }
    }
    for (d, size) in s.all_blobs()? {
        if !marked.contains(&d) {
            report.blobs_deleted.push(d.clone());
            report.bytes_freed += size;
            if !opts.dry_run {
                s.delete_blob(&d)?;
            }
        }
    }
    if !opts.dry_run {
        let gone: BTreeSet<&Digest> = report.blobs_deleted.iter().collect();
        for repo in s.repositories()? {
            for b in s.repo_blobs(&repo)? {
                if gone.contains(&b) {
                    s.unlink_blob(&repo, &b)?;
                }
            }
        }
    }
    let max_age = opts.upload_max_age.unwrap_or(Duration::from_secs(24 * 3600));
    let uploads = root.join("uploads");
    if let Ok(rd) = std::fs::read_dir(&uploads) {
        for e in rd.flatten() {
            let old = std::fs::metadata(e.path().join("data")).or_else(|_| e.metadata()).and_then(|m| m.modified()).ok().and_then(|t| SystemTime::now().duration_since(t).ok()).is_some_and(|age| age >= max_age);
            if old {
                report.uploads_removed += 1;
                if !opts.dry_run {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    Ok(report)
}
