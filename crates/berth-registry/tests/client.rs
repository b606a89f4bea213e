//! berth's client against `berth registry serve` on 127.0.0.1 (and against
//! Debian's `docker-registry` when it is installed): push, pull, digests,
//! multi-arch lists, auth, resumed pulls. No root needed.

mod common;

use std::io::Write;
use std::sync::Arc;

use berth_image::archive::ImportOptions;
use berth_image::digest::{Algorithm, Digest};
use berth_image::reference::Reference;
use berth_registry::auth::{AuthConfig, CredentialStore, DockerConfigFile};
use berth_registry::lists::{Annotation, ManifestLists};
use berth_registry::platform::PlatformSpec;
use berth_registry::progress::Progress;
use berth_registry::server::AuthMode;
use berth_registry::server::auth::Htpasswd;
use berth_registry::{Client, Error, PullOptions, PushOptions};
use common::*;

fn client() -> Client {
    Client::new(Default::default(), CredentialStore::default())
}

/// A store holding busybox imported from a one-file root filesystem tar.
fn busybox_store(dir: &std::path::Path, reference: &str) -> (Arc<berth_image::store::ImageStore>, Digest) {
    let s = store(dir);
    let bb = std::fs::read(berth_testkit::rootfs::BUSYBOX).expect("busybox-static is installed");
    let tar = layer_tar(&[("bin/busybox", bb), ("etc/hostname", b"berth\n".to_vec())]);
    let id = s.import(&tar[..], &ImportOptions { reference: Some(reference.into()), ..Default::default() }).unwrap();
    (s, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn push_then_pull_gives_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(&dir.path().join("registry"), |_| {}).await;
    let name = format!("127.0.0.1:{}/test/busybox:1.0", reg.addr.port());
    let (a, id) = busybox_store(&dir.path().join("a"), &name);
    let c = client();

    let (p, log) = capture();
    let pushed = c.push(a.clone(), &name, &PushOptions::default(), &p).await.unwrap();
    let st = statuses(&log);
    assert_eq!(st[0], format!("The push refers to repository [127.0.0.1:{}/test/busybox]", reg.addr.port()));
    assert!(st.iter().any(|s| s.ends_with(": Pushed")), "{st:?}");
    assert!(st.contains(&format!("1.0: digest: {} size: {}", pushed.digest, pushed.size)), "{st:?}");
    assert_eq!(pushed.pushed.len(), 1);
    assert!(a.inspect(&name).unwrap().repo_digests.contains(&format!("127.0.0.1:{}/test/busybox@{}", reg.addr.port(), pushed.digest)));

    // Again: everything is there already.
    let (p, log) = capture();
    let again = c.push(a.clone(), &name, &PushOptions::default(), &p).await.unwrap();
    assert_eq!(again.digest, pushed.digest);
    assert_eq!(again.existing.len(), 1);
    assert!(statuses(&log).iter().any(|s| s.ends_with(": Layer already exists")));

    // Pull into a second store.
    let b = store(&dir.path().join("b"));
    let (p, log) = capture();
    let pulled = c.pull(b.clone(), &name, &PullOptions::default(), &p).await.unwrap();
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.digest, pushed.digest);
    assert!(!pulled.up_to_date);
    let st = statuses(&log);
    assert_eq!(st[0], "1.0: Pulling from test/busybox");
    assert!(st.iter().any(|s| s.ends_with(": Pull complete")), "{st:?}");
    assert!(st.contains(&format!("Digest: {}", pushed.digest)));
    assert_eq!(st.last().unwrap(), &format!("Status: Downloaded newer image for {name}"));
    let ia = a.inspect(&name).unwrap();
    let ib = b.inspect(&name).unwrap();
    assert_eq!(ia.id, ib.id);
    assert_eq!(ia.root_fs.layers, ib.root_fs.layers);
    assert_eq!(b.image(&id).unwrap().record.manifest.digest, pushed.digest);
    assert_eq!(ib.repo_digests, vec![format!("127.0.0.1:{}/test/busybox@{}", reg.addr.port(), pushed.digest)]);
    assert!(b.content().ingests().unwrap().is_empty());
    // the pulled image pushes back byte for byte (save needs the blobs)
    let mut out = Vec::new();
    b.save(std::slice::from_ref(&name), &mut out).unwrap();

    // A second pull is a no-op.
    let (p, log) = capture();
    let again = c.pull(b.clone(), &name, &PullOptions::default(), &p).await.unwrap();
    assert!(again.up_to_date);
    assert_eq!(statuses(&log).last().unwrap(), &format!("Status: Image is up to date for {name}"));

    // By digest, into a third store: no tag, a repo digest.
    let cst = store(&dir.path().join("c"));
    let by_digest = format!("127.0.0.1:{}/test/busybox@{}", reg.addr.port(), pushed.digest);
    let r = c.pull(cst.clone(), &by_digest, &PullOptions::default(), &Progress::none()).await.unwrap();
    assert_eq!(r.id, id);
    let ic = cst.inspect(&by_digest).unwrap();
    assert!(ic.repo_tags.is_empty());
    assert_eq!(ic.repo_digests, vec![by_digest.clone()]);

    // Unknown tag and repository: docker's messages.
    let missing = format!("127.0.0.1:{}/test/busybox:nope", reg.addr.port());
    let e = c.pull(cst.clone(), &missing, &PullOptions::default(), &Progress::none()).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("manifest for {missing} not found: manifest unknown")), "{e}");
    // A wrong digest is refused before anything is stored.
    let wrong = format!("127.0.0.1:{}/test/busybox@{}", reg.addr.port(), Digest::sha256_of(b"other"));
    assert!(c.pull(cst, &wrong, &PullOptions::default(), &Progress::none()).await.is_err());
    assert_eq!(c.tags(&format!("127.0.0.1:{}/test/busybox", reg.addr.port()), None).await.unwrap(), ["1.0"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_layer_pull_mounts_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(&dir.path().join("registry"), |_| {}).await;
    let port = reg.addr.port();
    let a = store(&dir.path().join("a"));
    let layers: Vec<Vec<u8>> = (0..5).map(|i| layer_tar(&[(&format!("l{i}/data"), noise(200_000 + i * 1000, i as u64))])).collect();
    let name = format!("127.0.0.1:{port}/one/multi:v1");
    let (id, _) = make_image(&a, &layers, "amd64", &name);
    // chunked uploads
    let opts = berth_registry::RegistryOptions { upload_chunk_size: Some(64 * 1024), max_concurrent_downloads: 2, ..Default::default() };
    let c = Client::new(opts, CredentialStore::default());
    let r = c.push(a.clone(), &name, &PushOptions::default(), &Progress::none()).await.unwrap();
    assert_eq!(r.pushed.len(), 5);
    // the same image under another repository of the registry: blobs mount
    let other = format!("127.0.0.1:{port}/two/multi:v1");
    a.tag(&name, &other).unwrap();
    let (p, log) = capture();
    let r2 = c.push(a.clone(), &other, &PushOptions::default(), &p).await.unwrap();
    assert_eq!(r2.mounted.len(), 5, "{:?}", statuses(&log));
    assert!(statuses(&log).iter().any(|s| s.ends_with(": Mounted from one/multi")));
    // pull it: layers unpacked in order while downloading, two at a time
    let b = store(&dir.path().join("b"));
    let (p, log) = capture();
    let pulled = c.pull(b.clone(), &other, &PullOptions::default(), &p).await.unwrap();
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.layers_downloaded.len(), 5);
    let st = statuses(&log);
    assert_eq!(st.iter().filter(|s| s.ends_with(": Pull complete")).count(), 5, "{st:?}");
    assert!(st.iter().filter(|s| s.ends_with(": Waiting")).count() >= 3, "{st:?}");
    assert_eq!(b.image(&id).unwrap().chain_ids().len(), 5);
    for c in b.image(&id).unwrap().chain_ids() {
        assert!(b.layers().exists(&c));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_arch_list_push_and_platform_pull() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(&dir.path().join("registry"), |_| {}).await;
    let port = reg.addr.port();
    let a = store(&dir.path().join("a"));
    let c = client();
    let amd = format!("127.0.0.1:{port}/multi/app:amd64");
    let arm = format!("127.0.0.1:{port}/multi/app:arm64");
    let (amd_id, _) = make_image(&a, &[layer_tar(&[("arch", b"amd64".to_vec())])], "amd64", &amd);
    let (arm_id, _) = make_image(&a, &[layer_tar(&[("arch", b"arm64".to_vec())])], "arm64", &arm);
    c.push(a.clone(), &amd, &PushOptions::default(), &Progress::none()).await.unwrap();
    c.push(a.clone(), &arm, &PushOptions::default(), &Progress::none()).await.unwrap();

    let lists = ManifestLists::open(&dir.path().join("manifests"));
    let list = format!("127.0.0.1:{port}/multi/app:latest");
    let line = lists.create(&c, &list, &[amd.clone(), arm.clone()], false, None).await.unwrap();
    assert_eq!(line, format!("Created manifest list {list}"));
    assert!(lists.create(&c, &list, std::slice::from_ref(&amd), false, None).await.is_err(), "needs --amend");
    lists.annotate(&list, &arm, &Annotation { variant: Some("v8".into()), ..Default::default() }).unwrap();
    let idx = lists.inspect(&list).unwrap();
    assert_eq!(idx.manifests.len(), 2);
    assert_eq!(idx.manifests[1].platform.as_ref().unwrap().architecture, "arm64");
    let list_digest = lists.push(&c, &list, true, None).await.unwrap();
    assert!(lists.entries(&list).is_err(), "purged");
    let remote = c.inspect(&list, None).await.unwrap();
    assert_eq!(remote.digest, list_digest);

    let b = store(&dir.path().join("b"));
    let arm_opts = PullOptions { platform: Some(PlatformSpec::parse("linux/arm64").unwrap()), ..Default::default() };
    let r = c.pull(b.clone(), &list, &arm_opts, &Progress::none()).await.unwrap();
    assert_eq!(r.id, arm_id);
    assert_eq!(r.digest, list_digest, "RepoDigests name the list");
    let amd_opts = PullOptions { platform: Some(PlatformSpec::parse("linux/amd64").unwrap()), ..Default::default() };
    let r = c.pull(b.clone(), &list, &amd_opts, &Progress::none()).await.unwrap();
    assert_eq!(r.id, amd_id);
    let none = PullOptions { platform: Some(PlatformSpec::parse("linux/s390x").unwrap()), ..Default::default() };
    let e = c.pull(b, &list, &none, &Progress::none()).await.unwrap_err();
    assert_eq!(e.to_string(), "no matching manifest for linux/s390x in the manifest list entries");
    // a single-platform image must be the platform asked for
    let e = c.pull(store(&dir.path().join("d")), &arm, &amd_opts, &Progress::none()).await.unwrap_err();
    assert_eq!(e.to_string(), format!("image with reference {arm} was found but does not match the specified platform: wanted linux/amd64, actual: linux/arm64/v8"));
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_and_token_auth() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, Htpasswd::entry("alice", "wonderland") + "\n").unwrap();
    for (i, mode) in [
        AuthMode::Basic { htpasswd: htpasswd.clone(), realm: "berth".into() },
        AuthMode::Token { htpasswd: htpasswd.clone(), service: "berth-test".into() },
    ]
    .into_iter()
    .enumerate()
    {
        let reg = registry(&dir.path().join(format!("registry{i}")), |c| c.auth = mode.clone()).await;
        let host = format!("127.0.0.1:{}", reg.addr.port());
        let name = format!("{host}/private/img:1");
        let a = store(&dir.path().join(format!("a{i}")));
        make_image(&a, &[layer_tar(&[("f", b"x".to_vec())])], "amd64", &name);
        let c = client();
        let e = c.push(a.clone(), &name, &PushOptions::default(), &Progress::none()).await.unwrap_err();
        assert_eq!(e.kind(), berth_image::ErrorKind::Unauthorized, "{e}");
        let bad = AuthConfig::basic("alice", "nope");
        assert!(c.login(&bad, &host).await.is_err());
        let good = AuthConfig::basic("alice", "wonderland");
        assert_eq!(c.login(&good, &host).await.unwrap().status, "Login Succeeded");
        let opts = PushOptions { auth: Some(good.clone()) };
        c.push(a.clone(), &name, &opts, &Progress::none()).await.unwrap();
        // a mount reads the source repository: the token asks for both
        let other = format!("{host}/private/copy:1");
        a.tag(&name, &other).unwrap();
        let r = c.push(a.clone(), &other, &opts, &Progress::none()).await.unwrap();
        assert_eq!(r.mounted.len(), 1, "mode {i}");
        // Credentials from a docker config.json, as `login` would store them.
        let cfg = dir.path().join(format!("config{i}.json"));
        let mut f = DockerConfigFile::default();
        f.store(&host, &good);
        f.write(&cfg).unwrap();
        let c2 = Client::new(Default::default(), CredentialStore { files: vec![cfg] });
        let b = store(&dir.path().join(format!("b{i}")));
        c2.pull(b.clone(), &name, &PullOptions::default(), &Progress::none()).await.unwrap();
        // and from X-Registry-Auth
        let hdr = AuthConfig::from_header(&good.to_header()).unwrap();
        let b2 = store(&dir.path().join(format!("c{i}")));
        client().pull(b2, &name, &PullOptions { auth: hdr, ..Default::default() }, &Progress::none()).await.unwrap();
        let e = client().pull(b, &name, &PullOptions::default(), &Progress::none()).await.unwrap_err();
        assert!(e.to_string().contains("pull access denied") || e.to_string().contains("unauthorized"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_pull_resumes_with_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(&dir.path().join("registry"), |_| {}).await;
    let name = format!("127.0.0.1:{}/big/img:1", reg.addr.port());
    let a = store(&dir.path().join("a"));
    let layers: Vec<Vec<u8>> = (0..3).map(|i| layer_tar(&[(&format!("f{i}"), noise(3_000_000, 7 + i as u64))])).collect();
    let (id, _) = make_image(&a, &layers, "amd64", &name);
    let c = client();
    c.push(a.clone(), &name, &PushOptions::default(), &Progress::none()).await.unwrap();
    let img = a.image(&id).unwrap();
    let blobs: Vec<_> = img.manifest.layers.clone();

    // A pull cut off half way: layer 0 stored whole, half of layer 1 in its
    // ingest, nothing of layer 2.
    let b = store(&dir.path().join("b"));
    let l0 = std::fs::read(a.content().blob_path(&blobs[0].digest)).unwrap();
    b.content().put_stream("x", &mut &l0[..], Some(&blobs[0].digest)).unwrap();
    let l1 = std::fs::read(a.content().blob_path(&blobs[1].digest)).unwrap();
    let half = l1.len() / 2;
    let mut w = b.content().writer(&format!("pull-{}", blobs[1].digest), Algorithm::Sha256).unwrap();
    w.write_all(&l1[..half]).unwrap();
    drop(w);
    let r = c.pull(b.clone(), &name, &PullOptions::default(), &Progress::none()).await.unwrap();
    assert_eq!(r.id, id);
    let mut got = r.layers_downloaded.clone();
    got.sort();
    let mut want = vec![blobs[1].digest.clone(), blobs[2].digest.clone()];
    want.sort();
    assert_eq!(got, want, "the stored layer was not fetched again");
    assert_eq!(r.layers_downloaded.len(), 2);
    assert_eq!(r.bytes_downloaded, (l1.len() - half) as u64 + blobs[2].size as u64, "only the missing bytes were fetched");
    for ch in b.image(&id).unwrap().chain_ids() {
        assert!(b.layers().exists(&ch));
    }
    assert!(b.content().ingests().unwrap().is_empty());

    // A pull really interrupted (its future dropped) mid-download, then
    // run again: the image is whole and verified.
    let d = store(&dir.path().join("d"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let p = Progress::new(move |m| {
        if m.status == "Downloading" && let Some(t) = tx.lock().unwrap().take() {
            let _ = t.send(());
        }
    });
    let popts = PullOptions::default();
    tokio::select! {
        r = c.pull(d.clone(), &name, &popts, &p) => { r.unwrap(); }
        _ = rx => {}
    }
    let r = c.pull(d.clone(), &name, &PullOptions::default(), &Progress::none()).await.unwrap();
    assert_eq!(r.id, id);
    let ref_ = Reference::parse(&name).unwrap();
    assert_eq!(d.resolve(&ref_.to_string()).unwrap(), id);
    for ch in d.image(&id).unwrap().chain_ids() {
        assert!(d.layers().exists(&ch));
    }
}

/// Debian's `docker-registry` (distribution 2.8), when installed.
#[tokio::test(flavor = "multi_thread")]
async fn against_debians_docker_registry() {
    let bin = std::path::Path::new("/usr/bin/docker-registry");
    if !bin.exists() {
        eprintln!("skipped: /usr/bin/docker-registry is not installed (apt-get install docker-registry)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin).arg("serve").arg(&cfg).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let result = async {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let name = format!("127.0.0.1:{port}/debian/busybox:latest");
        let (a, id) = busybox_store(&dir.path().join("a"), &name);
        let c = client();
        let pushed = c.push(a, &name, &PushOptions::default(), &Progress::none()).await.unwrap();
        let b = store(&dir.path().join("b"));
        let pulled = c.pull(b, &name, &PullOptions::default(), &Progress::none()).await.unwrap();
        assert_eq!(pulled.id, id);
        assert_eq!(pulled.digest, pushed.digest);
    };
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), result).await;
    let _ = child.kill();
    let _ = child.wait();
    outcome.expect("timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_hub_names_pull_through_a_mirror_and_zstd_layers_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(&dir.path().join("registry"), |_| {}).await;
    let mirror = format!("http://127.0.0.1:{}", reg.addr.port());
    let a = store(&dir.path().join("a"));
    let tar = layer_tar(&[("zst", noise(50_000, 11))]);
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let (id, _) = make_image_with(&a, &[(tar, zst, berth_image::model::media::OCI_LAYER_ZSTD)], "amd64", &format!("127.0.0.1:{}/library/busybox:latest", reg.addr.port()));
    let c = client();
    c.push(a.clone(), &format!("127.0.0.1:{}/library/busybox:latest", reg.addr.port()), &PushOptions::default(), &Progress::none()).await.unwrap();

    // `busybox` is docker.io/library/busybox: served by the mirror.
    let opts = berth_registry::RegistryOptions { mirrors: vec![mirror.clone()], ..Default::default() };
    let via_mirror = Client::new(opts, CredentialStore::default());
    let b = store(&dir.path().join("b"));
    let r = via_mirror.pull(b.clone(), "busybox", &PullOptions::default(), &Progress::none()).await.unwrap();
    assert_eq!(r.id, id);
    assert_eq!(b.inspect("busybox").unwrap().repo_tags, vec!["busybox:latest".to_owned()]);
    assert_eq!(b.image(&id).unwrap().manifest.layers[0].media_type, berth_image::model::media::OCI_LAYER_ZSTD);

    // search over the registry's repositories
    let found = c.search(&format!("127.0.0.1:{}/busy", reg.addr.port()), 10, None).await.unwrap();
    assert_eq!(found.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["library/busybox"]);
}
