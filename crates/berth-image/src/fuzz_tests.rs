//! Property tests over untrusted input: tar streams, archives, manifests and
//! references. Whatever comes in, nothing panics and nothing lands outside
//! the layer directory.

use std::fs;
use std::path::Path;

use proptest::prelude::*;

use crate::digest::Digest;
use crate::model::{ImageConfig, Index, Manifest};
use crate::reference::Reference;
use crate::unpack::unpack;

/// One raw tar header block with the given fields (no validation, so `..`
/// and absolute names get through).
fn raw_header(name: &str, kind: u8, link: &str, size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_old();
    let n = name.as_bytes();
    h.as_old_mut().name[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    let l = link.as_bytes();
    h.as_old_mut().linkname[..l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.as_old_mut().linkflag = [kind];
    h.set_cksum();
    *h.as_bytes()
}

#[derive(Debug, Clone)]
struct RawEntry {
    name: String,
    kind: u8,
    link: String,
    data: Vec<u8>,
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("sentinel".to_owned()),
        Just(".wh.a".to_owned()),
        Just(".wh..wh..opq".to_owned()),
        "[a-c]{1,3}",
    ]
}

fn entry_path() -> impl Strategy<Value = String> {
    (prop::bool::weighted(0.1), prop::collection::vec(component(), 1..4))
        .prop_map(|(abs, parts)| format!("{}{}", if abs { "/" } else { "" }, parts.join("/")))
}

fn raw_entry() -> impl Strategy<Value = RawEntry> {
    (
        entry_path(),
        prop_oneof![Just(b'0'), Just(b'5'), Just(b'2'), Just(b'1'), Just(b'6')],
        prop_oneof![entry_path(), Just("/".to_owned()), Just("../../..".to_owned())],
        prop::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(name, kind, link, data)| {
            let data = if kind == b'0' { data } else { Vec::new() };
            RawEntry { name, kind, link, data }
        })
}

fn build(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&raw_header(&e.name, e.kind, &e.link, e.data.len() as u64));
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Unpack into `<tmp>/layer` beside `<tmp>/sentinel`, then check that
/// nothing outside the layer changed.
fn unpack_contained(tar: &[u8]) {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    let sentinel = tmp.path().join("sentinel");
    fs::create_dir(&layer).unwrap();
    fs::create_dir(&sentinel).unwrap();
    let _ = unpack(tar, &layer);
    let mut top: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    top.sort();
    assert_eq!(top, ["layer", "sentinel"]);
    assert_eq!(fs::read_dir(&sentinel).unwrap().count(), 0, "an entry escaped into the sentinel dir");
    assert!(Path::new(&layer).is_dir());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_escape_or_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        unpack_contained(&bytes);
    }

    #[test]
    fn hostile_tar_entries_never_escape(entries in prop::collection::vec(raw_entry(), 1..12)) {
        unpack_contained(&build(&entries));
    }

    #[test]
    fn huge_sizes_in_headers_fail_cleanly(size in 1u64 << 20..1u64 << 40, name in "[a-z]{1,8}") {
        let mut t = raw_header(&name, b'0', "", size).to_vec();
        t.extend_from_slice(&[1u8; 512]);
        let tmp = tempfile::tempdir().unwrap();
        prop_assert!(unpack(&t[..], tmp.path()).is_err());
    }

    #[test]
    fn manifest_index_config_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), json in "\\{\"(schemaVersion|mediaType|config|layers|manifests|rootfs|diff_ids)\":[0-9\\[\\]\"a-z{}:,]{0,40}\\}") {
        let d = Digest::sha256_of(&bytes);
        for input in [&bytes[..], json.as_bytes()] {
            let _ = Manifest::parse(&d, input);
            let _ = Index::parse(&d, input);
            let _ = ImageConfig::parse(&d, input);
        }
    }

    #[test]
    fn references_that_parse_round_trip(s in "[a-zA-Z0-9:/@._-]{0,40}") {
        if let Ok(r) = Reference::parse(&s) {
            let again = Reference::parse(&r.to_string()).unwrap();
            prop_assert_eq!(&again, &r);
            prop_assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    /// A valid `docker save` archive with bytes flipped: load fails or
    /// succeeds, and either way the store holds whole images only.
    #[test]
    fn mutated_archives_load_whole_or_not_at_all(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let layer = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, "hello", &b"hi\n"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let diff = Digest::sha256_of(&layer);
        let config = format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#);
        let id = Digest::sha256_of(config.as_bytes());
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |p: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, data).unwrap();
        };
        add(&format!("blobs/sha256/{}", diff.hex()), &layer);
        add(&format!("blobs/sha256/{}", id.hex()), config.as_bytes());
        let manifest = format!(r#"[{{"Config":"blobs/sha256/{}","RepoTags":["fuzz:1"],"Layers":["blobs/sha256/{}"]}}]"#, id.hex(), diff.hex());
        add("manifest.json", manifest.as_bytes());
        let mut archive = b.into_inner().unwrap();
        for (i, v) in flips {
            let at = i.index(archive.len());
            archive[at] = v;
        }
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::ImageStore::open(tmp.path()).unwrap();
        let _ = store.load(&archive[..]);
        for rec in store.records().unwrap() {
            let img = store.image(&rec.id).unwrap();
            for c in img.chain_ids() {
                prop_assert!(store.layers().exists(&c));
            }
        }
        let layers = tmp.path().join("image/layers");
        for e in fs::read_dir(&layers).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            prop_assert!(!name.starts_with(".tmp-"), "staging dir left: {}", name);
        }
    }
}
