//! Root integration tests of the image store: real layers unpacked with
//! owners and device nodes, overlay mounts, crash leftovers. Everything lives
//! under a `TestDir` and is unmounted and removed at the end.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::api::{Change, DeleteResponseItem};
use berth_image::archive::{ArchiveError, ImportOptions};
use berth_image::commit::CommitOptions;
use berth_image::digest::Digest;
use berth_image::store::{ImageStore, ImageUser, ListOptions, NoUsers, PruneOptions, StoreError};
use berth_image::{ErrorKind, unpack};
use berth_sys::mount::{Mount, unmount_detach};
use berth_testkit::{TestDir, require_root};

// ---------- helpers: tars written by hand, as docker writes them ----------

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Owned(&'a str, &'a [u8], u32, u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
}

fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, data, mode) => {
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Owned(p, data, uid, gid) => {
                h.set_mode(0o640);
                h.set_uid(*uid as u64);
                h.set_gid(*gid as u64);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Sym(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o600);
                h.set_size(0);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Char(p, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn sha(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

fn config_json(diff_ids: &[Digest], cmd: &str) -> Vec<u8> {
    let history: Vec<_> = diff_ids
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("/bin/sh -c #(nop) layer {i}")}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": [cmd], "Env": ["PATH=/usr/bin:/bin"]},
        "created": "2024-01-01T00:00:00Z",
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, data).unwrap();
}

/// An archive in the layout `docker save` wrote up to 24.x (moby
/// image/spec/v1.2.md): `<v1 id>/{VERSION,json,layer.tar}`, `<config
/// hex>.json`, `manifest.json`, `repositories`.
fn docker_legacy_save(layers: &[Vec<u8>], tags: &[&str], cmd: &str) -> (Vec<u8>, Digest) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| sha(l)).collect();
    let config = config_json(&diff_ids, cmd);
    let id = sha(&config);
    let mut b = tar::Builder::new(Vec::new());
    let mut layer_paths = Vec::new();
    let mut parent = String::new();
    for (i, l) in layers.iter().enumerate() {
        let v1 = sha(format!("{parent}{i}").as_bytes()).hex().to_owned();
        add_file(&mut b, &format!("{v1}/VERSION"), b"1.0");
        add_file(&mut b, &format!("{v1}/json"), format!(r#"{{"id":"{v1}","parent":"{parent}"}}"#).as_bytes());
        add_file(&mut b, &format!("{v1}/layer.tar"), l);
        layer_paths.push(format!("{v1}/layer.tar"));
        parent = v1;
    }
    add_file(&mut b, &format!("{}.json", id.hex()), &config);
    let manifest = serde_json::json!([{"Config": format!("{}.json", id.hex()), "RepoTags": tags, "Layers": layer_paths}]);
    add_file(&mut b, "manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let mut repos = serde_json::Map::new();
    for t in tags {
        let (n, tag) = t.rsplit_once(':').unwrap();
        repos.insert(n.to_owned(), serde_json::json!({ tag: parent }));
    }
    add_file(&mut b, "repositories", &serde_json::to_vec(&repos).unwrap());
    (b.into_inner().unwrap(), id)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn busybox_tar(dir: &TestDir) -> PathBuf {
    let p = dir.join("busybox.tar");
    berth_testkit::rootfs::busybox_rootfs_tar(&p).unwrap();
    p
}

fn import_busybox(store: &ImageStore, dir: &TestDir, tag: &str) -> Digest {
    let f = fs::File::open(busybox_tar(dir)).unwrap();
    let opts = ImportOptions { reference: Some(tag.into()), changes: vec![r#"CMD ["/bin/sh"]"#.into()], ..Default::default() };
    store.import(f, &opts).unwrap()
}

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount_detach(&self.0);
    }
}

fn mount(mounts: &[Mount], target: &Path) -> Mounted {
    fs::create_dir_all(target).unwrap();
    assert_eq!(mounts.len(), 1);
    mounts[0].mount_at(target).unwrap_or_else(|e| panic!("mount {:?}: {e}", mounts[0]));
    Mounted(target.to_owned())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Every path under `dir` with its type, mode, owner, size and content hash.
fn tree_listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let m = fs::symlink_metadata(e.path()).unwrap();
            let extra = if m.is_file() {
                sha(&fs::read(e.path()).unwrap()).short().to_owned()
            } else if m.file_type().is_symlink() {
                fs::read_link(e.path()).unwrap().display().to_string()
            } else {
                String::new()
            };
            out.push(format!("{} {:o} {}:{} {}", r.display(), m.mode(), m.uid(), m.gid(), extra));
            if m.is_dir() {
                stack.push(r);
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------- tests ----------------------------------

#[test]
fn import_busybox_rootfs_then_list_inspect_history() {
    require_root();
    let dir = TestDir::new("img-import");
    let store = ImageStore::open(dir.path()).unwrap();
    let id = import_busybox(&store, &dir, "berth-test/busybox:1");
    let img = store.image(&id).unwrap();
    assert_eq!(img.config.rootfs.diff_ids.len(), 1);
    assert_eq!(img.config.config.as_ref().unwrap().cmd.as_deref(), Some(&["/bin/sh".to_owned()][..]));
    let diff = store.layers().diff_dir(&img.top_layer().unwrap());
    let bb = fs::metadata(diff.join("bin/busybox")).unwrap();
    assert!(bb.len() > 100_000 && bb.mode() & 0o111 != 0);
    assert_eq!(fs::read_link(diff.join("bin/ls")).unwrap(), PathBuf::from("../bin/busybox"));
    assert_eq!(fs::metadata(diff.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
    assert_eq!(fs::metadata(diff.join("home/user")).unwrap().uid(), 1000);

    let list = store.list(&ListOptions::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].repo_tags, ["berth-test/busybox:1"]);
    assert_eq!(list[0].id, id.to_string());
    assert!(list[0].size > 100_000);

    let inspect = store.inspect("berth-test/busybox:1").unwrap();
    assert_eq!(inspect.id, id.to_string());
    assert_eq!(inspect.root_fs.layers, [img.config.rootfs.diff_ids[0].to_string()]);
    assert_eq!(inspect.os, "linux");
    let v = serde_json::to_value(&inspect).unwrap();
    for k in ["Id", "RepoTags", "RepoDigests", "Config", "RootFS", "Size", "GraphDriver", "Metadata", "Created"] {
        assert!(v.get(k).is_some(), "inspect lacks {k}: {v}");
    }
    assert_eq!(store.inspect(id.short()).unwrap().id, id.to_string());
    let h = store.history("berth-test/busybox:1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, id.to_string());
    assert_eq!(h[0].comment, "Imported from -");
    assert_eq!(h[0].tags, ["berth-test/busybox:1"]);

    // A second import of a gzip of the same tar shares the layer.
    let gz = gzip(&fs::read(dir.join("busybox.tar")).unwrap());
    let id2 = store.import(&gz[..], &ImportOptions { message: "again".into(), ..Default::default() }).unwrap();
    assert_ne!(id, id2);
    assert_eq!(store.image(&id2).unwrap().top_layer(), img.top_layer());
    let du = store.disk_usage(&NoUsers).unwrap();
    assert!(du.images.iter().all(|i| i.shared_size == i.size), "{du:?}");

    let err = store.inspect("nosuch:latest").unwrap_err();
    assert_eq!(err.to_string(), "No such image: nosuch:latest");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = store.inspect("Bad:Name").unwrap_err();
    assert!(err.to_string().starts_with("invalid reference format"), "{err}");
}

#[test]
fn snapshot_mount_write_delete_then_diff_commit_and_export() {
    require_root();
    let dir = TestDir::new("img-snap");
    let store = ImageStore::open(dir.path()).unwrap();
    let id = import_busybox(&store, &dir, "bb:latest");
    let lower = store.layers().diff_dir(&store.image(&id).unwrap().top_layer().unwrap());
    let lower_before = tree_listing(&lower);

    let mounts = store.prepare_container("c1", "bb").unwrap();
    assert_eq!(mounts[0].kind, "overlay");
    let root = dir.join("c1-rootfs");
    let m = mount(&mounts, &root);
    assert!(root.join("bin/busybox").is_file());
    fs::write(root.join("tmp/new.txt"), b"hello").unwrap();
    fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::remove_file(root.join("bin/ls")).unwrap();
    fs::create_dir(root.join("data")).unwrap();
    fs::remove_dir_all(root.join("home")).unwrap();

    let upper = store.snapshots().upper_dir("c1").unwrap();
    assert_eq!(fs::read(upper.join("tmp/new.txt")).unwrap(), b"hello");
    let wh = fs::symlink_metadata(upper.join("bin/ls")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "delete makes a whiteout");
    assert_eq!(tree_listing(&lower), lower_before, "lower dir untouched");

    let diff: Vec<String> = store.diff("c1").unwrap().iter().map(Change::line).collect();
    assert_eq!(diff, ["C /bin", "D /bin/ls", "A /data", "C /etc", "C /etc/passwd", "D /home", "C /tmp", "A /tmp/new.txt"]);

    // export of the merged root
    let mut exported = Vec::new();
    ImageStore::export_rootfs(&root, &mut exported).unwrap();
    let mut a = tar::Archive::new(&exported[..]);
    let paths: Vec<String> = a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert!(paths.contains(&"tmp/new.txt".to_owned()) && paths.contains(&"bin/busybox".to_owned()));
    assert!(!paths.contains(&"bin/ls".to_owned()) && !paths.iter().any(|p| p.starts_with("home")));
    // Mount points a runtime made (empty) are left out; a listed path that
    // holds data is kept.
    fs::write(root.join("etc/mountpoint"), b"").unwrap();
    fs::create_dir(root.join("mnt-dir")).unwrap();
    fs::write(root.join("etc/written"), b"data").unwrap();
    drop(m);

    let opts = CommitOptions {
        reference: Some("bb:committed".into()),
        author: "berth tests".into(),
        message: "add new.txt".into(),
        changes: vec!["ENV FOO=bar".into()],
        container_id: "c1".into(),
        placeholders: ["etc/mountpoint", "mnt-dir", "etc/written"].iter().map(PathBuf::from).collect(),
        ..Default::default()
    };
    let cid = store.commit("c1", "bb", &opts, None).unwrap();
    let cimg = store.image(&cid).unwrap();
    assert_eq!(cimg.config.rootfs.diff_ids.len(), 2);
    assert_eq!(cimg.record.parent.as_ref(), Some(&id));
    assert!(cimg.config.config.as_ref().unwrap().env.as_ref().unwrap().contains(&"FOO=bar".to_owned()));
    let h = store.history("bb:committed").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].id.as_str(), h[0].comment.as_str()), (cid.to_string().as_str(), "add new.txt"));
    assert_eq!(h[1].id, id.to_string());
    assert!(h[0].size >= 5);

    // The committed layer, stacked, reproduces the container's view.
    let m2 = store.prepare_container("c2", "bb:committed").unwrap();
    let root2 = dir.join("c2-rootfs");
    let _m2 = mount(&m2, &root2);
    assert_eq!(fs::read(root2.join("tmp/new.txt")).unwrap(), b"hello");
    assert!(!root2.join("bin/ls").exists() && !root2.join("home").exists());
    assert!(root2.join("data").is_dir() && root2.join("bin/cat").exists());
    assert!(!root2.join("etc/mountpoint").exists() && !root2.join("mnt-dir").exists(), "mount points stay out of the layer");
    assert_eq!(fs::read(root2.join("etc/written")).unwrap(), b"data");
    assert!(store.diff("c2").unwrap().is_empty());

    // rmi: the committed image has a child relation to its parent.
    let err = store.remove(&id.to_string(), true, true, &NoUsers).unwrap_err();
    assert!(err.to_string().contains("(cannot be forced) - image has dependent child images"), "{err}");
}

#[test]
fn two_snapshots_share_lower_dirs() {
    require_root();
    let dir = TestDir::new("img-shared");
    let store = ImageStore::open(dir.path()).unwrap();
    import_busybox(&store, &dir, "bb");
    let a = store.prepare_container("a", "bb").unwrap();
    let b = store.prepare_container("b", "bb").unwrap();
    let lower = |m: &[Mount]| m[0].options.iter().find(|o| o.starts_with("lowerdir=")).cloned().unwrap();
    assert_eq!(lower(&a), lower(&b));
    let (ra, rb) = (dir.join("ra"), dir.join("rb"));
    let _ma = mount(&a, &ra);
    let _mb = mount(&b, &rb);
    fs::write(ra.join("only-a"), b"a").unwrap();
    assert!(!rb.join("only-a").exists());
    assert!(rb.join("bin/sh").exists());
    let err = store.prepare_container("a", "bb").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    drop(_ma);
    drop(_mb);
    store.snapshots().remove("a").unwrap();
    assert_eq!(store.snapshots().list().unwrap().len(), 1);
}

#[test]
fn layers_with_whiteouts_opaque_dirs_and_special_files() {
    require_root();
    let dir = TestDir::new("img-wh");
    let store = ImageStore::open(dir.path()).unwrap();
    let l1 = layer_tar(&[
        E::Dir("etc", 0o755),
        E::File("etc/keep", b"keep", 0o644),
        E::File("etc/gone", b"gone", 0o644),
        E::Dir("opq", 0o755),
        E::File("opq/old", b"old", 0o644),
        E::File("suid", b"#!", 0o4755),
        E::Owned("owned", b"x", 123, 456),
        E::Hard("suid-link", "suid"),
        E::Fifo("fifo"),
        E::Char("null", 1, 3),
    ]);
    let l2 = layer_tar(&[
        E::File("etc/.wh.gone", b"", 0o644),
        E::Dir("opq", 0o755),
        E::File("opq/.wh..wh..opq", b"", 0o644),
        E::File("opq/new", b"new", 0o644),
    ]);
    let (archive, id) = docker_legacy_save(&[l1.clone(), l2.clone()], &["wh:test"], "sh");
    let report = store.load(&archive[..]).unwrap();
    assert_eq!(report.lines, ["Loaded image: wh:test"]);
    assert_eq!(report.images, std::slice::from_ref(&id));
    let img = store.image(&id).unwrap();
    let chains = img.chain_ids();
    let d1 = store.layers().diff_dir(&chains[0]);
    let d2 = store.layers().diff_dir(&chains[1]);
    let m = fs::metadata(d1.join("suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!(m.nlink(), 2, "hardlink kept");
    let o = fs::metadata(d1.join("owned")).unwrap();
    assert_eq!((o.uid(), o.gid(), o.mode() & 0o777), (123, 456, 0o640));
    assert!(fs::symlink_metadata(d1.join("fifo")).unwrap().file_type().is_fifo());
    let n = fs::symlink_metadata(d1.join("null")).unwrap();
    assert!(n.file_type().is_char_device() && n.rdev() == libc::makedev(1, 3));
    assert_eq!(fs::metadata(d1.join("etc/keep")).unwrap().mtime(), 1_700_000_000);
    let wh = fs::symlink_metadata(d2.join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(berth_image::tarwrite::is_opaque(&d2.join("opq")));
    assert!(!d2.join("opq/.wh..wh..opq").exists());

    let mounts = store.prepare_container("w", "wh:test").unwrap();
    let root = dir.join("w-root");
    let _m = mount(&mounts, &root);
    assert!(root.join("etc/keep").exists());
    assert!(!root.join("etc/gone").exists());
    assert_eq!(names(&root.join("opq")), ["new"]);

    // save re-creates the exact layer tars (same diff IDs).
    let mut saved = Vec::new();
    store.save(&["wh:test".into()], &mut saved).unwrap();
    let mut a = tar::Archive::new(&saved[..]);
    let mut found = HashMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        found.insert(p, data);
    }
    assert_eq!(found[&format!("blobs/sha256/{}", sha(&l1).hex())], l1);
    assert_eq!(found[&format!("blobs/sha256/{}", sha(&l2).hex())], l2);
}

#[test]
fn save_then_load_round_trip_keeps_ids_and_tags() {
    require_root();
    let dir = TestDir::new("img-roundtrip");
    let store = ImageStore::open(&dir.join("a")).unwrap();
    let id = import_busybox(&store, &dir, "berth-test/bb:1");
    store.tag("berth-test/bb:1", "berth-test/bb:2").unwrap();
    store.tag("berth-test/bb:1", "localhost:5000/other/name:x").unwrap();
    let saved = dir.join("saved.tar");
    store.save(&["berth-test/bb".into(), "localhost:5000/other/name:x".into()], fs::File::create(&saved).unwrap()).unwrap();

    // Docker's layout and the OCI layout side by side.
    let mut a = tar::Archive::new(fs::File::open(&saved).unwrap());
    let mut files = HashMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        files.insert(p, data);
    }
    for f in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(files.contains_key(f), "{f} missing from save");
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{}", id.hex()));
    let mut tags: Vec<String> = serde_json::from_value(manifest[0]["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, ["berth-test/bb:1", "berth-test/bb:2", "localhost:5000/other/name:x"]);
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    for (path, data) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && !hex.is_empty() {
                assert_eq!(sha(data).hex(), hex, "blob {path} matches its name");
            }
    }

    // Load into a fresh store: same ID, same tags.
    let other = ImageStore::open(&dir.join("b")).unwrap();
    let report = other.load(fs::File::open(&saved).unwrap()).unwrap();
    let mut lines = report.lines.clone();
    lines.sort();
    assert_eq!(lines, ["Loaded image: berth-test/bb:1", "Loaded image: berth-test/bb:2", "Loaded image: localhost:5000/other/name:x"]);
    assert_eq!(report.images, std::slice::from_ref(&id));
    assert_eq!(other.resolve("berth-test/bb:2").unwrap(), id);
    let before = tree_listing(&store.layers().diff_dir(&store.image(&id).unwrap().top_layer().unwrap()));
    let after = tree_listing(&other.layers().diff_dir(&other.image(&id).unwrap().top_layer().unwrap()));
    assert_eq!(before, after);

    // The OCI half alone (as an OCI tool or podman reads it), zstd-compressed.
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in &files {
        if p != "manifest.json" && p != "repositories" && !p.ends_with('/') && p != "blobs" && p != "blobs/sha256" {
            add_file(&mut b, p, data);
        }
    }
    let oci = zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap();
    let third = ImageStore::open(&dir.join("c")).unwrap();
    let report = third.load(&oci[..]).unwrap();
    assert_eq!(report.images.len(), 3);
    assert!(report.images.iter().all(|i| *i == id));
    assert!(report.lines.contains(&"Loaded image: localhost:5000/other/name:x".to_owned()), "{:?}", report.lines);

    // Loading again over the same tags changes nothing.
    let again = other.load(fs::File::open(&saved).unwrap()).unwrap();
    assert_eq!(again.images, [id]);
    assert_eq!(other.list(&ListOptions::default()).unwrap().len(), 1);
}

#[test]
fn load_docker_legacy_layout_gzip_compressed() {
    require_root();
    let dir = TestDir::new("img-legacy");
    let store = ImageStore::open(dir.path()).unwrap();
    let base = layer_tar(&[E::Dir("bin", 0o755), E::File("bin/tool", b"#!/bin/sh\necho hi\n", 0o755), E::Sym("bin/t", "tool")]);
    let top = layer_tar(&[E::Dir("etc", 0o755), E::File("etc/motd", b"hello\n", 0o644)]);
    let (archive, id) = docker_legacy_save(&[base, top], &["legacy:1.0", "docker.io/library/legacy:latest"], "/bin/tool");
    let report = store.load(&gzip(&archive)[..]).unwrap();
    assert_eq!(report.lines, ["Loaded image: legacy:1.0", "Loaded image: legacy:latest"]);
    assert_eq!(store.resolve("legacy").unwrap(), id);
    let summary = &store.list(&ListOptions::default()).unwrap()[0];
    assert_eq!(summary.repo_tags.len(), 2);
    assert_eq!(summary.created, 1704067200);
    let h = store.history("legacy").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].created_by, "/bin/sh -c #(nop) layer 1");
    assert_eq!(h[0].size, 6);
    assert_eq!(h[1].id, "<missing>");
}

#[test]
fn malicious_layers_are_refused_and_leave_nothing() {
    require_root();
    let dir = TestDir::new("img-evil");
    let store = ImageStore::open(&dir.join("store")).unwrap();
    let sentinel = dir.join("outside");
    fs::create_dir(&sentinel).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("../outside/evil", {
            // tar::Builder refuses "..": write the header by hand.
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..15].copy_from_slice(b"../outside/evil");
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            let mut v = h.as_bytes().to_vec();
            v.extend_from_slice(&[b'x'; 512]);
            v.extend_from_slice(&[0; 1024]);
            v
        }),
        ("/abs", {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..4].copy_from_slice(b"/abs");
            h.set_size(0);
            h.set_mode(0o644);
            h.set_cksum();
            let mut v = h.as_bytes().to_vec();
            v.extend_from_slice(&[0; 1024]);
            v
        }),
        ("up", layer_tar(&[E::Sym("up", "../../../../outside")])),
        ("root/outside/evil", layer_tar(&[E::Sym("root", "/"), E::File("root/outside/evil", b"x", 0o644)])),
        ("hl", {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Link);
            h.as_old_mut().name[..2].copy_from_slice(b"hl");
            h.as_old_mut().linkname[..13].copy_from_slice(b"../etc/passwd");
            h.set_size(0);
            h.set_mode(0o644);
            h.set_cksum();
            let mut v = h.as_bytes().to_vec();
            v.extend_from_slice(&[0; 1024]);
            v
        }),
    ];
    for (entry, tar) in cases {
        let err = store.layers().register(None, &tar[..], None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(entry) && msg.contains("refusing"), "{entry}: {msg}");
        assert_eq!(err.kind(), ErrorKind::InvalidParameter);
        assert!(names(&sentinel).is_empty(), "{entry} wrote outside");
        assert!(names(&dir.join("store/image/layers")).is_empty(), "{entry}: half layer left");
    }
    // A truncated layer fails and is removed too.
    let good = layer_tar(&[E::File("big", &[7u8; 100_000], 0o644)]);
    let err = store.layers().register(None, &good[..50_000], None).unwrap_err();
    assert!(err.to_string().contains("big"), "{err}");
    assert!(names(&dir.join("store/image/layers")).is_empty());
    // A layer whose content does not match the config's diff ID.
    let other = layer_tar(&[E::File("a", b"a", 0o644)]);
    let err = store.layers().register(None, &good[..], Some(&sha(&other))).unwrap_err();
    assert!(err.to_string().contains("diff id mismatch"), "{err}");
    assert!(names(&dir.join("store/image/layers")).is_empty());
}

#[test]
fn bad_archives_leave_the_store_as_it_was() {
    require_root();
    let dir = TestDir::new("img-badload");
    let store = ImageStore::open(dir.path()).unwrap();
    let id = import_busybox(&store, &dir, "keep:me");
    let blobs_before = store.content().list().unwrap();
    let layer = layer_tar(&[E::File("f", &[1u8; 200_000], 0o644)]);
    let (archive, _) = docker_legacy_save(std::slice::from_ref(&layer), &["bad:1"], "x");

    // truncated
    let err = store.load(&archive[..archive.len() / 2]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    // manifest pointing at a missing blob
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "manifest.json", br#"[{"Config":"nope.json","RepoTags":["bad:2"],"Layers":[]}]"#);
    let err = store.load(&b.into_inner().unwrap()[..]).unwrap_err();
    assert!(matches!(err, ArchiveError::Missing { .. }) && err.to_string().contains("nope.json"), "{err}");
    // a layer that does not match its diff ID
    let (mut archive2, _) = docker_legacy_save(std::slice::from_ref(&layer), &["bad:3"], "x");
    let pos = archive2.windows(8).position(|w| w == [1u8; 8]).unwrap();
    archive2[pos] = 2;
    let err = store.load(&archive2[..]).unwrap_err();
    assert!(err.to_string().contains("diff id mismatch"), "{err}");
    // a blob that does not match its name in an OCI layout
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, &format!("blobs/sha256/{}", sha(b"x").hex()), b"y");
    assert!(store.load(&b.into_inner().unwrap()[..]).unwrap_err().to_string().contains("digest mismatch"));
    // not an image archive
    assert!(matches!(store.load(&layer[..]).unwrap_err(), ArchiveError::NoManifest));

    assert_eq!(store.list(&ListOptions::default()).unwrap().len(), 1);
    assert_eq!(store.resolve("keep:me").unwrap(), id);
    assert_eq!(store.content().list().unwrap(), blobs_before);
    assert_eq!(store.layers().list().unwrap().len(), 1);
    assert!(store.resolve("bad:3").is_err());
}

#[test]
fn deep_image_of_150_layers_mounts() {
    require_root();
    let dir = TestDir::new("img-deep");
    let store = ImageStore::open(dir.path()).unwrap();
    let layers: Vec<Vec<u8>> =
        (0..150).map(|i| layer_tar(&[E::Dir("layers", 0o755), E::File(&format!("layers/{i:03}"), format!("{i}").as_bytes(), 0o644)])).collect();
    let (archive, id) = docker_legacy_save(&layers, &["deep:150"], "sh");
    store.load(&archive[..]).unwrap();
    let mounts = store.prepare_container("deep", "deep:150").unwrap();
    let data = mounts[0].options.join(",");
    assert!(data.len() > 4096, "the plain options exceed a page ({} bytes), so the short form is exercised", data.len());
    let root = dir.join("deep-root");
    let _m = mount(&mounts, &root);
    let got = names(&root.join("layers"));
    assert_eq!(got.len(), 150);
    assert_eq!(fs::read(root.join("layers/000")).unwrap(), b"0");
    assert_eq!(fs::read(root.join("layers/149")).unwrap(), b"149");
    fs::write(root.join("top"), b"t").unwrap();
    assert!(store.snapshots().upper_dir("deep").unwrap().join("top").exists());
    assert_eq!(store.image(&id).unwrap().chain_ids().len(), 150);
}

#[test]
fn rmi_tag_prune_follow_docker_rules() {
    require_root();
    let dir = TestDir::new("img-rmi");
    let store = ImageStore::open(dir.path()).unwrap();
    let id = import_busybox(&store, &dir, "one:latest");
    store.tag("one", "two:latest").unwrap();
    let err = store.tag("one", &format!("x@{id}")).unwrap_err();
    assert_eq!(err.to_string(), "refusing to create a tag with a digest reference");

    // by ID with two repositories: must be forced
    let err = store.remove(id.short(), false, true, &NoUsers).unwrap_err();
    assert_eq!(err.to_string(), format!("conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories", id.short()));
    assert_eq!(err.kind(), ErrorKind::Conflict);

    // by name: only untags
    assert_eq!(store.remove("two", false, true, &NoUsers).unwrap(), [DeleteResponseItem::untagged("two:latest")]);

    // a container uses the last reference
    let users: HashMap<Digest, Vec<ImageUser>> =
        [(id.clone(), vec![ImageUser { container_id: "0123456789abcdef0123".into(), running: false }])].into();
    let err = store.remove("one", false, true, &users).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to remove repository reference \"one\" (must force) - container 0123456789ab is using its referenced image {}", id.short())
    );
    // prune -a keeps images in use
    let rep = store.prune(&PruneOptions { all: true, ..Default::default() }, &users).unwrap();
    assert!(rep.images_deleted.is_empty());
    // forced while a running container uses it: untags, cannot delete
    let running: HashMap<Digest, Vec<ImageUser>> = [(id.clone(), vec![ImageUser { container_id: "c".into(), running: true }])].into();
    let err = store.remove("one", true, true, &running).unwrap_err();
    assert!(err.to_string().contains("(cannot be forced) - image is being used by running container c"), "{err}");

    // dangling images go with prune, tagged ones with prune -a
    let own_layer = layer_tar(&[E::File("dangling", b"only mine", 0o644)]);
    let dangling = store.import(&own_layer[..], &ImportOptions { message: "d".into(), ..Default::default() }).unwrap();
    let list = store.list(&ListOptions { dangling: Some(true), ..Default::default() }).unwrap();
    assert_eq!(list.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), [dangling.to_string()]);
    let rep = store.prune(&PruneOptions::default(), &NoUsers).unwrap();
    assert_eq!(rep.images_deleted[0], DeleteResponseItem::deleted(dangling.to_string()));
    assert_eq!(rep.images_deleted.len(), 2, "the image and its own layer");
    assert_eq!(rep.space_reclaimed, 9);
    assert_eq!(store.list(&ListOptions::default()).unwrap().len(), 1);
    let list = store.list(&ListOptions { reference: vec!["on*".into()], ..Default::default() }).unwrap();
    assert_eq!(list.len(), 1);
    assert!(store.list(&ListOptions { reference: vec!["zz*".into()], ..Default::default() }).unwrap().is_empty());

    // last tag by name: untag and delete with its layer, blobs collected
    let out = store.remove("one:latest", false, true, &NoUsers).unwrap();
    assert_eq!(out[0], DeleteResponseItem::untagged("one:latest"));
    assert_eq!(out[1], DeleteResponseItem::deleted(id.to_string()));
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(store.layers().list().unwrap().is_empty());
    assert!(store.content().list().unwrap().is_empty());
    assert!(matches!(store.remove("one", false, true, &NoUsers), Err(StoreError::NoSuchImage { .. })));
}

#[test]
fn open_repairs_crash_leftovers() {
    require_root();
    let dir = TestDir::new("img-repair");
    let id = {
        let store = ImageStore::open(dir.path()).unwrap();
        import_busybox(&store, &dir, "bb")
    };
    let root = dir.join("image");
    // A half-unpacked layer, a layer dir with no record, a dangling link, a
    // snapshot without record, a staging snapshot, temp records, an image
    // record whose manifest went missing.
    fs::create_dir_all(root.join("layers/.tmp-ABC/diff/bin")).unwrap();
    fs::create_dir_all(root.join(format!("layers/{}/diff", "f".repeat(64)))).unwrap();
    std::os::unix::fs::symlink("../layers/nothing/diff", root.join("l/DANGLINGLINK")).unwrap();
    fs::create_dir_all(root.join("snapshots/half/fs")).unwrap();
    fs::create_dir_all(root.join("snapshots/.tmp-x/work")).unwrap();
    fs::write(root.join("images/.tmp-abc.json.1"), b"{").unwrap();
    fs::write(root.join(".tmp-repositories.json.1"), b"{").unwrap();
    fs::write(root.join("content/blobs/sha256/.tmp-deadbeef.1"), b"half").unwrap();
    let ghost = serde_json::json!({"id": sha(b"ghost"), "manifest": {"mediaType": "x", "digest": sha(b"nothing"), "size": 1}});
    fs::write(root.join(format!("images/{}.json", sha(b"ghost").hex())), serde_json::to_vec(&ghost).unwrap()).unwrap();

    // A commit killed after its layer was stored but before its image
    // record: an ingest in progress and a layer no image uses.
    let mut w = berth_image::content::ContentStore::open(&root.join("content"))
        .unwrap()
        .writer("commit-c1-KILLED", berth_image::digest::Algorithm::Sha256)
        .unwrap();
    w.write_all(b"partial tar").unwrap();
    drop(w);
    let orphan = {
        let s = ImageStore::open(dir.path()).unwrap();
        s.layers().register(None, &layer_tar(&[E::File("committed", b"c", 0o644)])[..], None).unwrap().chain_id
    };
    // (the open above already repaired the rest; make the leftovers again)
    fs::create_dir_all(root.join("layers/.tmp-ABC/diff/bin")).unwrap();
    fs::create_dir_all(root.join("snapshots/half/fs")).unwrap();

    let store = ImageStore::open(dir.path()).unwrap();
    assert_eq!(store.list(&ListOptions::default()).unwrap().len(), 1, "no half-committed image");
    assert!(store.layers().exists(&orphan));
    store.gc().unwrap();
    assert!(!store.layers().exists(&orphan), "gc removes the layer no image uses");
    assert!(store.content().ingests().unwrap().is_empty());
    assert_eq!(names(&root.join("layers")).len(), 1);
    assert_eq!(names(&root.join("l")).len(), 1);
    assert!(names(&root.join("snapshots")).is_empty());
    assert_eq!(names(&root.join("images")), [format!("{}.json", id.hex())]);
    assert!(!root.join(".tmp-repositories.json.1").exists());
    assert!(!root.join("content/blobs/sha256/.tmp-deadbeef.1").exists());
    assert_eq!(store.resolve("bb").unwrap(), id);
    let m = store.prepare_container("after", "bb").unwrap();
    let _mm = mount(&m, &dir.join("after-root"));
    assert!(dir.join("after-root/bin/busybox").exists());
}

/// Run as a child process by `sigkill_during_load_leaves_no_half_image`.
#[test]
fn helper_slow_load() {
    let Ok(spec) = std::env::var("BERTH_IMAGE_TEST_LOAD") else { return };
    let (root, tar) = spec.split_once('|').unwrap();
    let store = ImageStore::open(Path::new(root)).unwrap();
    // Feed the archive slowly so the parent can kill us mid-way.
    struct Slow(fs::File);
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(2));
            let n = buf.len().min(64 * 1024);
            self.0.read(&mut buf[..n])
        }
    }
    store.load(Slow(fs::File::open(tar).unwrap())).unwrap();
}

#[test]
fn sigkill_during_load_leaves_no_half_image() {
    require_root();
    let dir = TestDir::new("img-kill");
    let store_root = dir.join("store");
    let keep = {
        let store = ImageStore::open(&store_root).unwrap();
        import_busybox(&store, &dir, "keep")
    };
    // 40 layers of 1 MiB of incompressible-ish data, loaded slowly.
    let layers: Vec<Vec<u8>> = (0..40u32)
        .map(|i| {
            let data: Vec<u8> = (0..(1u32 << 20)).map(|j| (j.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8).collect();
            layer_tar(&[E::File(&format!("f{i}"), &data, 0o644)])
        })
        .collect();
    let (archive, id) = docker_legacy_save(&layers, &["killed:1"], "sh");
    let tar_path = dir.join("kill.tar");
    fs::write(&tar_path, &archive).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_slow_load", "--nocapture", "--test-threads=1"])
        .env("BERTH_IMAGE_TEST_LOAD", format!("{}|{}", store_root.display(), tar_path.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is writing, then kill it.
    let ingest = store_root.join("image/content/ingest");
    let t0 = std::time::Instant::now();
    while names(&ingest).is_empty() && store_root.join("image/content/blobs/sha256").read_dir().map(|d| d.count()).unwrap_or(0) < 5 {
        assert!(t0.elapsed().as_secs() < 30, "child never started loading");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let store = ImageStore::open(&store_root).unwrap();
    assert!(store.resolve("killed:1").is_err(), "no half image visible");
    assert!(matches!(store.image(&id), Err(StoreError::NoSuchImage { .. })));
    assert_eq!(store.resolve("keep").unwrap(), keep, "what was stored is kept");
    // The load can simply be run again.
    let report = store.load(fs::File::open(&tar_path).unwrap()).unwrap();
    assert_eq!(report.images, [id]);
    store.gc().unwrap();
    assert!(names(&ingest).is_empty());
}

#[test]
fn unpack_keeps_xattrs_and_replaces_entries() {
    require_root();
    let dir = TestDir::new("img-xattr");
    // PAX xattr record, then a file replaced by a dir, then a dir by a file.
    let mut b = tar::Builder::new(Vec::new());
    let rec = b"31 SCHILY.xattr.user.berth=yes\n";
    let mut px = tar::Header::new_ustar();
    px.set_entry_type(tar::EntryType::XHeader);
    px.set_path("PaxHeaders/f").unwrap();
    px.set_size(rec.len() as u64);
    px.set_cksum();
    b.append(&px, &rec[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "f", &b"x"[..]).unwrap();
    let mut b_inner = b.into_inner().unwrap();
    b_inner.truncate(b_inner.len() - 1024);
    let rest = layer_tar(&[E::File("x", b"1", 0o644), E::Dir("x", 0o700), E::File("x/in", b"2", 0o644), E::Dir("d", 0o755), E::File("d", b"3", 0o600)]);
    b_inner.extend_from_slice(&rest);
    let target = dir.join("layer");
    fs::create_dir(&target).unwrap();
    let u = unpack::unpack(&b_inner[..], &target).unwrap();
    assert_eq!(u.diff_id, sha(&b_inner));
    assert_eq!(u.tar_size, b_inner.len() as u64);
    assert_eq!(berth_image::tarwrite::get_xattr(&target.join("f"), "user.berth").as_deref(), Some(&b"yes"[..]));
    assert!(target.join("x").is_dir() && target.join("x/in").is_file());
    assert!(target.join("d").is_file());
    assert_eq!(fs::metadata(target.join("x")).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn load_oci_layout_with_platform_index_and_compressed_layers() {
    require_root();
    let dir = TestDir::new("img-oci");
    let store = ImageStore::open(dir.path()).unwrap();
    let l1 = layer_tar(&[E::Dir("etc", 0o755), E::File("etc/one", b"1", 0o644)]);
    let l2 = layer_tar(&[E::File("etc/two", b"22", 0o644)]);
    let (gz1, zst2) = (gzip(&l1), zstd::encode_all(&l2[..], 3).unwrap());
    let config = config_json(&[sha(&l1), sha(&l2)], "sh");
    let desc = |mt: &str, d: &[u8]| serde_json::json!({"mediaType": mt, "digest": sha(d).to_string(), "size": d.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &gz1), desc("application/vnd.oci.image.layer.v1.tar+zstd", &zst2)],
    }))
    .unwrap();
    let host = berth_image::model::host_platform();
    let mut amd = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    amd["platform"] = serde_json::json!({"architecture": host.architecture, "os": "linux"});
    let mut other = desc("application/vnd.oci.image.manifest.v1+json", b"absent");
    other["platform"] = serde_json::json!({"architecture": "s390x", "os": "linux"});
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [other, amd],
    }))
    .unwrap();
    let mut top = desc("application/vnd.oci.image.index.v1+json", &list);
    top["annotations"] = serde_json::json!({"io.containerd.image.name": "registry.example:5000/multi/arch:v1"});
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]})).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in [&gz1, &zst2, &config, &manifest, &list] {
        add_file(&mut b, &format!("blobs/sha256/{}", sha(blob).hex()), blob);
    }
    add_file(&mut b, "index.json", &index);
    let archive = b.into_inner().unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 3);
    xz.write_all(&archive).unwrap();
    let report = store.load(&xz.finish().unwrap()[..]).unwrap();
    assert_eq!(report.lines, ["Loaded image: registry.example:5000/multi/arch:v1"]);
    let id = store.resolve("registry.example:5000/multi/arch:v1").unwrap();
    assert_eq!(id, sha(&config));
    let img = store.image(&id).unwrap();
    assert_eq!(img.record.manifest.digest, sha(&manifest), "the manifest is kept as loaded");
    let m = store.prepare_container("oci", "registry.example:5000/multi/arch:v1").unwrap();
    let root = dir.join("oci-root");
    let _m = mount(&m, &root);
    assert_eq!(names(&root.join("etc")), ["one", "two"]);
    // save writes the layers back uncompressed, under their diff IDs.
    let mut saved = Vec::new();
    store.save(&[id.to_string()], &mut saved).unwrap();
    let other = ImageStore::open(&dir.join("other")).unwrap();
    assert_eq!(other.load(&saved[..]).unwrap().lines, [format!("Loaded image ID: {id}")]);

    // import takes xz and zstd too; list filters by time.
    let zimg = store.import(&zstd::encode_all(&l1[..], 3).unwrap()[..], &ImportOptions { reference: Some("z:1".into()), ..Default::default() }).unwrap();
    assert_eq!(store.image(&zimg).unwrap().config.rootfs.diff_ids, [sha(&l1)]);
    let since = store.list(&ListOptions { since: Some("registry.example:5000/multi/arch:v1".into()), ..Default::default() }).unwrap();
    assert_eq!(since.iter().map(|s| s.repo_tags.clone()).collect::<Vec<_>>(), [["z:1"]]);
    let before = store.list(&ListOptions { before: Some("z:1".into()), ..Default::default() }).unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].id, id.to_string());
}

/// Run as a child process by `sigkill_during_commit_leaves_no_half_image`.
#[test]
fn helper_commit() {
    let Ok(spec) = std::env::var("BERTH_IMAGE_TEST_COMMIT") else { return };
    let store = ImageStore::open(Path::new(&spec)).unwrap();
    let opts = CommitOptions { reference: Some("killed:commit".into()), ..Default::default() };
    store.commit("victim", "base", &opts, None).unwrap();
}

#[test]
fn sigkill_during_commit_leaves_no_half_image() {
    require_root();
    let dir = TestDir::new("img-killcommit");
    let store_root = dir.join("store");
    {
        let store = ImageStore::open(&store_root).unwrap();
        store.import(&layer_tar(&[E::Dir("data", 0o755)])[..], &ImportOptions { reference: Some("base".into()), ..Default::default() }).unwrap();
        store.prepare_container("victim", "base").unwrap();
        // 64 MiB of changes, written straight into the upper dir.
        let upper = store.snapshots().upper_dir("victim").unwrap();
        fs::create_dir_all(upper.join("data")).unwrap();
        let chunk: Vec<u8> = (0..(1u32 << 20)).map(|j| (j.wrapping_mul(2654435761) >> 11) as u8).collect();
        for i in 0..64 {
            fs::write(upper.join(format!("data/f{i}")), &chunk).unwrap();
        }
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_commit", "--nocapture", "--test-threads=1"])
        .env("BERTH_IMAGE_TEST_COMMIT", &store_root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ingest = store_root.join("image/content/ingest");
    let t0 = std::time::Instant::now();
    let mut killed_mid_way = false;
    while t0.elapsed().as_secs() < 60 {
        let partial = fs::read_dir(&ingest).unwrap().flatten().any(|e| fs::metadata(e.path().join("data")).is_ok_and(|m| m.len() > 8 << 20));
        if partial {
            child.kill().unwrap();
            killed_mid_way = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.wait().unwrap();
    assert!(killed_mid_way, "the commit finished before it could be killed");
    let store = ImageStore::open(&store_root).unwrap();
    assert!(store.resolve("killed:commit").is_err(), "no half image visible");
    assert_eq!(store.list(&ListOptions::default()).unwrap().len(), 1);
    assert_eq!(store.diff("victim").unwrap().len(), 65, "the container's changes are intact");
    let id = store.commit("victim", "base", &CommitOptions { reference: Some("again:1".into()), ..Default::default() }, None).unwrap();
    assert_eq!(store.image(&id).unwrap().config.rootfs.diff_ids.len(), 2);
    store.gc().unwrap();
    assert!(names(&ingest).is_empty());
}
