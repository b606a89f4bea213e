//! Shared test support: a registry on 127.0.0.1, stores with images made
//! from generated layers, progress capture.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_image::digest::Digest;
use berth_image::model::{Descriptor, ImageConfig, Manifest, RootFs, media};
use berth_image::store::ImageStore;
use berth_registry::progress::{Progress, ProgressMessage};
use berth_registry::server::{self, RunningServer, ServerConfig};

/// A registry on a random loopback port over `root`.
pub async fn registry(root: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut cfg = ServerConfig { addr: "127.0.0.1:0".into(), root: root.to_owned(), ..Default::default() };
    tweak(&mut cfg);
    server::bind(cfg).await.expect("bind registry").spawn()
}

/// A layer tar holding `files` (path, content).
pub fn layer_tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Deterministic bytes that do not compress.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Store an image of gzip'd `layers` for `arch` in `store`, tagged `tag`.
/// Returns (image ID, manifest digest).
pub fn make_image(store: &ImageStore, layers: &[Vec<u8>], arch: &str, tag: &str) -> (Digest, Digest) {
    let blobs: Vec<(Vec<u8>, Vec<u8>, &str)> = layers.iter().map(|t| (t.clone(), gzip(t), media::OCI_LAYER_GZIP)).collect();
    make_image_with(store, &blobs, arch, tag)
}

/// Store an image of (tar, blob, media type) layers.
pub fn make_image_with(store: &ImageStore, layers: &[(Vec<u8>, Vec<u8>, &str)], arch: &str, tag: &str) -> (Digest, Digest) {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, (tar, blob, mt)) in layers.iter().enumerate() {
        diff_ids.push(Digest::sha256_of(tar));
        let (d, n) = store.content().put_stream(&format!("test-layer-{i}"), &mut &blob[..], None).unwrap();
        descs.push(Descriptor::new(mt, d, n));
    }
    let config = ImageConfig {
        architecture: arch.into(),
        os: "linux".into(),
        variant: (arch == "arm64").then(|| "v8".into()),
        created: Some("2026-01-02T03:04:05Z".into()),
        rootfs: RootFs { kind: "layers".into(), diff_ids },
        ..Default::default()
    };
    let cbytes = config.to_bytes();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor::new(media::OCI_CONFIG, Digest::sha256_of(&cbytes), cbytes.len() as u64),
        layers: descs,
        annotations: BTreeMap::new(),
    };
    let mbytes = serde_json::to_vec(&m).unwrap();
    let md = Digest::sha256_of(&mbytes);
    let id = store.add_pulled_image(&cbytes, mbytes).unwrap();
    store.set_reference(&berth_image::reference::Reference::parse(tag).unwrap(), &id).unwrap();
    (id, md)
}

/// A progress sink that keeps every message.
pub fn capture() -> (Progress, Arc<Mutex<Vec<ProgressMessage>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    (Progress::new(move |m| l.lock().unwrap().push(m)), log)
}

pub fn statuses(log: &Arc<Mutex<Vec<ProgressMessage>>>) -> Vec<String> {
    log.lock().unwrap().iter().map(|m| if m.id.is_empty() { m.status.clone() } else { format!("{}: {}", m.id, m.status) }).collect()
}

pub fn store(dir: &Path) -> Arc<ImageStore> {
    Arc::new(ImageStore::open(dir).unwrap())
}
