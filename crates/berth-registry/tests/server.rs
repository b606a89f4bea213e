//! `berth registry serve` spoken to over raw HTTP, one test per area of the
//! distribution spec: pull, push (monolithic, chunked, mounts), discovery
//! (tags, referrers), management (deletes), bad input, read-only mode, gc
//! and TLS.

mod common;

use berth_image::digest::{Algorithm, Digest, Hasher};
use berth_image::model::media;
use berth_registry::server::{self, GcOptions, TlsFiles};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(addr: std::net::SocketAddr) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Api { base: format!("http://{addr}"), http: reqwest::Client::new() }
    }
    fn url(&self, p: &str) -> String {
        if p.starts_with("http") { p.to_owned() } else { format!("{}{p}", self.base) }
    }
    async fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut rb = self.http.request(method.parse().unwrap(), self.url(path)).body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.unwrap()
    }
    /// Monolithic POST+PUT; returns the status of the PUT.
    async fn push_blob(&self, repo: &str, data: &[u8], d: &Digest) -> StatusCode {
        let r = self.req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], vec![]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        self.req("PUT", &format!("{loc}?digest={d}"), &[("content-type", "application/octet-stream")], data.to_vec()).await.status()
    }
    async fn put_manifest(&self, repo: &str, reference: &str, mt: &str, body: &[u8]) -> reqwest::Response {
        self.req("PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", mt)], body.to_vec()).await
    }
}

async fn code(r: reqwest::Response) -> String {
    let v: Value = r.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    v["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
}

/// A config blob, a layer blob and an image manifest over them, pushed.
async fn image(api: &Api, repo: &str, seed: u8) -> (Digest, Vec<u8>) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"seed":{seed}}}"#).into_bytes();
    let layer = vec![seed; 1000];
    let (cd, ld) = (Digest::sha256_of(&config), Digest::sha256_of(&layer));
    assert_eq!(api.push_blob(repo, &config, &cd).await, StatusCode::CREATED);
    assert_eq!(api.push_blob(repo, &layer, &ld).await, StatusCode::CREATED);
    let m = json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": ld.to_string(), "size": layer.len()}],
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    (Digest::sha256_of(&bytes), bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_push_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::registry(dir.path(), |c| c.max_manifest_size = 64 * 1024).await;
    let api = Api::new(reg.addr);
    let r = api.req("GET", "/v2/", &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-distribution-api-version"], "registry/2.0");

    let (md, mbytes) = image(&api, "a/b", 1).await;
    let r = api.put_manifest("a/b", "v1", media::OCI_MANIFEST, &mbytes).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["docker-content-digest"], md.to_string().as_str());
    assert_eq!(r.headers()["location"], format!("/v2/a/b/manifests/{md}").as_str());
    for reference in ["v1".to_owned(), md.to_string()] {
        let r = api.req("GET", &format!("/v2/a/b/manifests/{reference}"), &[], vec![]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], media::OCI_MANIFEST);
        assert_eq!(r.bytes().await.unwrap().to_vec(), mbytes, "stored byte for byte");
        let r = api.req("HEAD", &format!("/v2/a/b/manifests/{reference}"), &[], vec![]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-length"], mbytes.len().to_string().as_str());
    }
    // a blob belongs to the repositories it was pushed or mounted to
    let layer = vec![1u8; 1000];
    let ld = Digest::sha256_of(&layer);
    assert_eq!(api.req("GET", &format!("/v2/other/blobs/{ld}"), &[], vec![]).await.status(), StatusCode::NOT_FOUND);
    let r = api.req("POST", &format!("/v2/other/blobs/uploads/?mount={ld}&from=a/b"), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api.req("POST", &format!("/v2/other/blobs/uploads/?mount={}&from=a/b", Digest::sha256_of(b"absent")), &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "a failed mount opens an upload");
    // ranges
    let r = api.req("GET", &format!("/v2/a/b/blobs/{ld}"), &[("range", "bytes=100-199")], vec![]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/1000");
    assert_eq!(r.bytes().await.unwrap().len(), 100);
    let r = api.req("GET", &format!("/v2/a/b/blobs/{ld}"), &[("range", "bytes=2000-3000")], vec![]).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Bad input is refused and nothing is stored.
    let before = std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count();
    let r = api.put_manifest("a/b", &Digest::sha256_of(b"not it").to_string(), media::OCI_MANIFEST, &mbytes).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    let r = api.put_manifest("a/b", "sha256:baddigeststring", media::OCI_MANIFEST, &mbytes).await;
    assert_eq!(code(r).await, "DIGEST_INVALID");
    let r = api.put_manifest("a/b", "x", "application/vnd.docker.distribution.manifest.v1+prettyjws", br#"{"schemaVersion":1}"#).await;
    assert_eq!((r.status(), code(r).await.as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"));
    let r = api.put_manifest("a/b", "x", media::OCI_MANIFEST, b"{not json").await;
    assert_eq!(code(r).await, "MANIFEST_INVALID");
    let r = api.put_manifest("a/b", "x", media::OCI_INDEX, &mbytes).await;
    assert_eq!(code(r).await, "MANIFEST_INVALID", "content type and mediaType disagree");
    let missing = String::from_utf8(mbytes.clone()).unwrap().replace(&ld.to_string(), &Digest::sha256_of(b"gone").to_string());
    let r = api.put_manifest("a/b", "x", media::OCI_MANIFEST, missing.as_bytes()).await;
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");
    let big = format!(r#"{{"schemaVersion":2,"pad":"{}"}}"#, "x".repeat(70 * 1024));
    let r = api.put_manifest("a/b", "x", media::OCI_MANIFEST, big.as_bytes()).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.push_blob("a/b", b"data", &Digest::sha256_of(b"other data")).await, StatusCode::BAD_REQUEST);
    for bad in ["/v2/../etc/manifests/x", "/v2/A/manifests/x", "/v2/a/%2e%2e/manifests/x", "/v2/a/_tags/manifests/x"] {
        let r = api.req("PUT", bad, &[("content-type", media::OCI_MANIFEST)], mbytes.clone()).await;
        assert!(r.status() == StatusCode::BAD_REQUEST || r.status() == StatusCode::NOT_FOUND, "{bad}: {}", r.status());
    }
    assert_eq!(api.req("GET", "/v2/a/b/manifests/x", &[], vec![]).await.status(), StatusCode::NOT_FOUND);
    let after = std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count();
    assert_eq!(before, after, "nothing was stored");
    assert!(!dir.path().join("etc").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_uploads_and_sha512() {
    let dir = tempfile::tempdir().unwrap();
    let reg = common::registry(dir.path(), |_| {}).await;
    let api = Api::new(reg.addr);
    let data = common::noise(30_000, 3);
    let d = Digest::sha256_of(&data);
    let r = api.req("POST", "/v2/c/blobs/uploads/", &[("content-length", "0")], vec![]).await;
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let r = api.req("PATCH", &loc, &[("content-range", "0-9999")], data[..10_000].to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["range"], "0-9999");
    // out of order: 416, and the session is unchanged
    let r = api.req("PATCH", &loc, &[("content-range", "20000-29999")], data[20_000..].to_vec()).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = api.req("PUT", &format!("{loc}?digest={d}"), &[("content-range", "0-29999")], data.clone()).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = api.req("GET", &loc, &[], vec![]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-9999");
    let r = api.req("PATCH", &loc, &[("content-range", "10000-19999")], data[10_000..20_000].to_vec()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = api.req("PUT", &format!("{loc}?digest={d}"), &[("content-range", "20000-29999")], data[20_000..].to_vec()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = api.req("GET", &format!("/v2/c/blobs/{d}"), &[], vec![]).await.bytes().await.unwrap();
    assert_eq!(got.to_vec(), data);
    // cancel
    let r = api.req("POST", "/v2/c/blobs/uploads/", &[], vec![]).await;
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(api.req("DELETE", &loc, &[], vec![]).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.req("GET", &loc, &[], vec![]).await.status(), StatusCode::NOT_FOUND);
    // sha512, in a single POST
    let mut h = Hasher::new(Algorithm::Sha512);
    h.update(&data);
    let d512 = h.finish();
    let r = api.req("POST", &format!("/v2/c/blobs/uploads/?digest={d512}"), &[], data.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api.req("HEAD", &format!("/v2/c/blobs/{d512}"), &[], vec![]).await;
    assert_eq!(r.headers()["docker-content-digest"], d512.to_string().as_str());
    // an upload of one repository is not another's
    let r = api.req("POST", "/v2/c/blobs/uploads/", &[], vec![]).await;
    let loc = r.headers()["location"].to_str().unwrap().replace("/v2/c/", "/v2/d/");
    assert_eq!(api.req("GET", &loc, &[], vec![]).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_management_read_only_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let reg = common::registry(&root, |_| {}).await;
    let api = Api::new(reg.addr);
    let (md, mbytes) = image(&api, "r", 1).await;
    for t in ["b", "a", "c", "B"] {
        assert_eq!(api.put_manifest("r", t, media::OCI_MANIFEST, &mbytes).await.status(), StatusCode::CREATED);
    }
    let v: Value = api.req("GET", "/v2/r/tags/list", &[], vec![]).await.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    assert_eq!(v["tags"], json!(["B", "a", "b", "c"]));
    let r = api.req("GET", "/v2/r/tags/list?n=2", &[], vec![]).await;
    assert_eq!(r.headers()["link"], "</v2/r/tags/list?n=2&last=a>; rel=\"next\"");
    let v: Value = r.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    assert_eq!(v["tags"], json!(["B", "a"]));
    let v: Value = api.req("GET", "/v2/r/tags/list?n=2&last=a", &[], vec![]).await.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    assert_eq!(v["tags"], json!(["b", "c"]));
    let r = api.req("GET", "/v2/r/tags/list?n=0", &[], vec![]).await;
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap()["tags"], json!([]));
    assert_eq!(api.req("GET", "/v2/nothere/tags/list", &[], vec![]).await.status(), StatusCode::NOT_FOUND);

    // referrers: an artifact whose subject is the image
    let empty = b"{}".to_vec();
    let ed = Digest::sha256_of(&empty);
    assert_eq!(api.push_blob("r", &empty, &ed).await, StatusCode::CREATED);
    let art = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed.to_string(), "size": 2},
        "layers": [], "subject": {"mediaType": media::OCI_MANIFEST, "digest": md.to_string(), "size": mbytes.len()},
        "annotations": {"org.example": "yes"},
    }))
    .unwrap();
    let ad = Digest::sha256_of(&art);
    let r = api.put_manifest("r", &ad.to_string(), media::OCI_MANIFEST, &art).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["oci-subject"], md.to_string().as_str());
    let r = api.req("GET", &format!("/v2/r/referrers/{md}"), &[], vec![]).await;
    assert_eq!(r.headers()["content-type"], media::OCI_INDEX);
    let v: Value = r.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    assert_eq!(v["manifests"][0]["digest"], ad.to_string());
    assert_eq!(v["manifests"][0]["artifactType"], "application/vnd.example.sbom");
    assert_eq!(v["manifests"][0]["annotations"]["org.example"], "yes");
    let r = api.req("GET", &format!("/v2/r/referrers/{md}?artifactType=other"), &[], vec![]).await;
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    assert_eq!(r.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap()["manifests"], json!([]));
    assert_eq!(api.req("GET", "/v2/r/referrers/sha256:nope", &[], vec![]).await.status(), StatusCode::BAD_REQUEST);

    // deletes
    assert_eq!(api.req("DELETE", "/v2/r/manifests/c", &[], vec![]).await.status(), StatusCode::ACCEPTED);
    assert_eq!(api.req("GET", "/v2/r/manifests/c", &[], vec![]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.req("DELETE", &format!("/v2/r/manifests/{ad}"), &[], vec![]).await.status(), StatusCode::ACCEPTED);
    let v: Value = api.req("GET", &format!("/v2/r/referrers/{md}"), &[], vec![]).await.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    assert_eq!(v["manifests"], json!([]), "a deleted referrer is gone from the list");
    assert_eq!(api.req("DELETE", &format!("/v2/r/blobs/{ed}"), &[], vec![]).await.status(), StatusCode::ACCEPTED);
    assert_eq!(api.req("DELETE", &format!("/v2/r/blobs/{ed}"), &[], vec![]).await.status(), StatusCode::NOT_FOUND);
    // an unreferenced upload, then gc
    let orphan = b"orphan".to_vec();
    assert_eq!(api.push_blob("r", &orphan, &Digest::sha256_of(&orphan)).await, StatusCode::CREATED);
    drop(reg);
    let report = server::gc(&root, &GcOptions::default()).unwrap();
    let gone: Vec<String> = report.blobs_deleted.iter().map(|d| d.to_string()).collect();
    assert!(gone.contains(&Digest::sha256_of(&orphan).to_string()));
    assert!(gone.contains(&ad.to_string()) && gone.contains(&ed.to_string()));
    assert!(!gone.contains(&md.to_string()));
    // deleting the last tagged manifest makes its blobs garbage too
    let report = server::gc(&root, &GcOptions { delete_untagged: true, ..Default::default() }).unwrap();
    assert!(report.blobs_deleted.is_empty() && report.manifests_deleted.is_empty());

    // read-only: pulls work, pushes and deletes are refused
    let ro = common::registry(&root, |c| c.read_only = true).await;
    let api = Api::new(ro.addr);
    assert_eq!(api.req("GET", "/v2/r/manifests/a", &[], vec![]).await.status(), StatusCode::OK);
    let r = api.req("POST", "/v2/r/blobs/uploads/", &[], vec![]).await;
    assert_eq!((r.status(), code(r).await.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"));
    assert_eq!(api.req("DELETE", "/v2/r/manifests/a", &[], vec![]).await.status(), StatusCode::METHOD_NOT_ALLOWED);
    let v: Value = api.req("GET", "/v2/_catalog", &[], vec![]).await.bytes().await.map(|b| serde_json::from_slice::<Value>(&b).unwrap()).unwrap();
    assert_eq!(v["repositories"], json!(["r"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_certs_d_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("ca.pem"));
    // A CA, and a server certificate it signs for localhost.
    let d = dir.path();
    let script = format!(
        "set -e; cd {dir}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=berth-test-ca -keyout ca.key -out ca.pem; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout key.pem -out req.csr; \
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf; \
         openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem",
        dir = d.display()
    );
    let ok = std::process::Command::new("sh").arg("-c").arg(&script).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
    if !ok.is_ok_and(|s| s.success()) {
        eprintln!("skipped: openssl could not make test certificates");
        return;
    }
    let reg = common::registry(&dir.path().join("root"), |c| c.tls = Some(TlsFiles { cert: cert.clone(), key: key.clone() })).await;
    let host = format!("localhost:{}", reg.addr.port());
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&host)).unwrap();
    std::fs::copy(&ca, certs_d.join(&host).join("ca.crt")).unwrap();
    let opts = berth_registry::RegistryOptions { certs_dir: certs_d.clone(), ..Default::default() };
    let c = berth_registry::Client::new(opts, Default::default());
    // Verified against the certs.d CA (loopback registries are insecure
    // by default, so ask for verification explicitly here) ...
    let https = c.http_client(&host, false).unwrap();
    let r = https.get(format!("https://{host}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // ... and refused without it.
    let bare = berth_registry::Client::new(berth_registry::RegistryOptions { certs_dir: dir.path().join("none"), ..Default::default() }, Default::default());
    assert!(bare.http_client(&host, false).unwrap().get(format!("https://{host}/v2/")).send().await.is_err());
    let a = common::store(&dir.path().join("a"));
    let name = format!("{host}/tls/img:1");
    let (id, _) = common::make_image(&a, &[common::layer_tar(&[("f", b"tls".to_vec())])], "amd64", &name);
    c.push(a, &name, &Default::default(), &Default::default()).await.unwrap();
    let b = common::store(&dir.path().join("b"));
    assert_eq!(c.pull(b, &name, &Default::default(), &Default::default()).await.unwrap().id, id);
    let eps = c.endpoints(&host, true).await.unwrap();
    assert!(!eps[0].plain_http, "spoken over HTTPS");
}
