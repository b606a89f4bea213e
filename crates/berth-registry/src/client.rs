//! The distribution client: one [`Client`] per daemon, holding HTTP
//! connections per registry, the endpoint each registry answered on, and
//! cached authorization per (registry, scope).
//!
//! Every request goes through [`Client::send`]: it carries the cached
//! `Authorization` for its scope; a `401` is answered once, by Basic
//! credentials or by a Bearer token fetched from the challenge's realm, and
//! the request is sent again. Requests with streaming bodies are only made
//! after a bodiless request of the same scope has settled the
//! authorization (an upload always starts with `POST .../uploads/`).
//!
//! Async on tokio (the daemon's runtime), HTTP through reqwest with rustls
//! on ring: concurrent layer downloads are tasks, not threads, and the body
//! of a layer streams from the socket to the content store in bounded
//! chunks; blocking file work (writes, fsync, unpack) runs on the blocking
//! pool.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::auth::{AuthConfig, Challenge, CredentialStore, repository_scope};
use crate::endpoint::{Endpoint, RegistryOptions, normalize_server};
use crate::error::{Error, oci_message};
use berth_image::digest::{Digest, Hasher};
use berth_image::model::media;
use berth_image::reference::Reference;

/// Manifest types berth reads, best first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The client the daemon keeps for its lifetime; clones share connections,
/// tokens and endpoints.
#[derive(Clone)]
pub struct Client {
    pub(crate) options: Arc<RegistryOptions>,
    credentials: Arc<CredentialStore>,
    http: Arc<Mutex<HashMap<(String, bool), reqwest::Client>>>,
    /// Authorization header per (registry host, scope, whose credentials):
    /// one caller's token is never sent for another.
    tokens: Arc<Mutex<HashMap<TokenKey, String>>>,
    /// The endpoint each registry host answered on.
    chosen: Arc<Mutex<HashMap<String, Endpoint>>>,
}

/// Where one repository is reached, and as whom.
#[derive(Debug, Clone)]
pub struct Repo {
    pub endpoint: Endpoint,
    /// `library/busybox`.
    pub name: String,
    /// The registry host of the reference (`docker.io` for the Hub).
    pub registry: String,
    pub scope: String,
    pub auth: Option<AuthConfig>,
}

impl Repo {
    pub fn url(&self, rest: &str) -> String {
        self.endpoint.url(&self.name, rest)
    }
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// One `GET /v1/search` result, as docker's API returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// What `POST /auth` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginReport {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "IdentityToken", default)]
    pub identity_token: String,
}

fn system_roots() -> &'static Vec<rustls_pki_types::CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Accepts any certificate: for insecure registries only.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Map a transport error to docker's shape of message.
fn connect_err(method: &Method, url: &str, e: reqwest::Error) -> Error {
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    Error::Connect { method: method.to_string(), url: url.to_owned(), message: msg }
}

impl Client {
    pub fn new(options: RegistryOptions, credentials: CredentialStore) -> Client {
        Client {
            options: Arc::new(options),
            credentials: Arc::new(credentials),
            http: Default::default(),
            tokens: Default::default(),
            chosen: Default::default(),
        }
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The HTTP client for a registry host: system roots plus `certs.d/<host>/*.crt`,
    /// a client certificate from `client.cert`/`client.key`, or no
    /// verification for an insecure registry.
    pub fn http_client(&self, host: &str, insecure: bool) -> Result<reqwest::Client, Error> {
        self.http(host, insecure)
    }

    fn http(&self, host: &str, insecure: bool) -> Result<reqwest::Client, Error> {
        let key = (host.to_owned(), insecure);
        if let Some(c) = self.http.lock().unwrap().get(&key) {
            return Ok(c.clone());
        }
        let terr = |message: String| Error::Tls { host: host.to_owned(), message };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| terr(e.to_string()))?;
        let certs_dir = self.options.certs_dir.join(host);
        let builder = if insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(system_roots().iter().cloned());
            for ca in read_dir_sorted(&certs_dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "crt")) {
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(&ca).map_err(|e| terr(format!("{}: {e}", ca.display())))?;
                for c in certs {
                    roots.add(c.map_err(|e| terr(format!("{}: {e}", ca.display())))?).map_err(|e| terr(format!("{}: {e}", ca.display())))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let (cert, keyf) = (certs_dir.join("client.cert"), certs_dir.join("client.key"));
        let tls = if cert.is_file() && keyf.is_file() {
            use rustls_pki_types::pem::PemObject;
            let chain = rustls_pki_types::CertificateDer::pem_file_iter(&cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| terr(format!("{}: {e}", cert.display())))?;
            let k = rustls_pki_types::PrivateKeyDer::from_pem_file(&keyf).map_err(|e| terr(format!("{}: {e}", keyf.display())))?;
            builder.with_client_auth_cert(chain, k).map_err(|e| terr(e.to_string()))?
        } else {
            builder.with_no_client_auth()
        };
        let c = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(&self.options.user_agent)
            .connect_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| terr(e.to_string()))?;
        self.http.lock().unwrap().insert(key, c.clone());
        Ok(c)
    }

    /// Credentials for a registry: the caller's, else the config files'.
    pub fn credentials_for(&self, registry: &str, given: Option<&AuthConfig>) -> Result<Option<AuthConfig>, Error> {
        if let Some(a) = given.filter(|a| !a.is_empty()) {
            return Ok(Some(a.clone()));
        }
        Ok(self.credentials.lookup(registry)?)
    }

    /// Reach `reference`'s repository: the first endpoint that answers the
    /// ping (mirrors first for Docker Hub pulls).
    pub async fn repo(&self, reference: &Reference, push: bool, auth: Option<&AuthConfig>) -> Result<Repo, Error> {
        let eps = self.endpoints(reference.domain(), !push).await?;
        let auth = self.credentials_for(reference.domain(), auth)?;
        Ok(Repo {
            endpoint: eps.into_iter().next().expect("endpoints() never returns an empty list"),
            name: reference.path().to_owned(),
            registry: reference.domain().to_owned(),
            scope: repository_scope(reference.path(), push),
            auth,
        })
    }

    /// Every endpoint of `host` that answered (for pulls, mirrors that fail
    /// a request fall back to the next); at least one.
    pub async fn endpoints(&self, host: &str, for_pull: bool) -> Result<Vec<Endpoint>, Error> {
        let all = self.options.endpoints(host, for_pull);
        if all.is_empty() {
            return Err(Error::Connect {
                method: "GET".into(),
                url: host.into(),
                message: format!("{host} is reached only through registry mirrors (registry-mirrors-only), and none serves this request"),
            });
        }
        let mut out = Vec::new();
        let mut last_err = None;
        // Mirrors are tried in order, then the registry itself; HTTPS before
        // HTTP for insecure registries.
        let mut i = 0;
        while i < all.len() {
            let ep = &all[i];
            i += 1;
            if !ep.mirror && let Some(c) = self.chosen.lock().unwrap().get(&ep.host).cloned() {
                out.push(c);
                while i < all.len() && all[i].host == ep.host {
                    i += 1;
                }
                continue;
            }
            match self.ping(ep).await {
                Ok(()) => {
                    if !ep.mirror {
                        self.chosen.lock().unwrap().insert(ep.host.clone(), ep.clone());
                    }
                    out.push(ep.clone());
                    while i < all.len() && all[i].host == ep.host && !all[i].mirror {
                        i += 1;
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        if out.is_empty() {
            return Err(last_err.unwrap_or_else(|| Error::Connect { method: "GET".into(), url: host.into(), message: "no endpoint".into() }));
        }
        Ok(out)
    }

    /// `GET /v2/`: reachable, and speaking the API (200 or 401).
    async fn ping(&self, ep: &Endpoint) -> Result<(), Error> {
        let url = format!("{}/v2/", ep.base());
        let http = self.http(&ep.host, ep.insecure)?;
        let resp = http.get(&url).timeout(Duration::from_secs(30)).send().await.map_err(|e| connect_err(&Method::GET, &url, e))?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::UNAUTHORIZED => Ok(()),
            s => Err(Error::Registry { method: "GET".into(), url, status: s.as_u16(), message: String::new() }),
        }
    }

    /// The HTTP client of a repository's endpoint.
    pub(crate) fn http_for(&self, repo: &Repo) -> Result<reqwest::Client, Error> {
        self.http(&repo.endpoint.host, repo.endpoint.insecure)
    }

    /// The `Authorization` a repository's requests carry now, if any.
    pub(crate) fn auth_header(&self, repo: &Repo) -> Option<String> {
        self.tokens.lock().unwrap().get(&token_key(repo)).cloned()
    }

    /// Send a request built by `build` (called again for the retry after a
    /// challenge), following docker's auth flow.
    pub async fn send(
        &self,
        repo: &Repo,
        method: Method,
        url: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let http = self.http(&repo.endpoint.host, repo.endpoint.insecure)?;
        let mut retried = false;
        loop {
            let mut rb = build(http.request(method.clone(), url));
            if let Some(h) = self.auth_header(repo) {
                rb = rb.header(AUTHORIZATION, h);
            }
            let resp = rb.send().await.map_err(|e| connect_err(&method, url, e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            let challenges: Vec<Challenge> =
                resp.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).filter_map(Challenge::parse).collect();
            let Some(ch) = challenges.iter().find(|c| matches!(c, Challenge::Bearer { .. })).or(challenges.first()) else {
                return Ok(resp);
            };
            let header = self.authorize(repo, ch).await?;
            self.tokens.lock().unwrap().insert(token_key(repo), header);
            retried = true;
        }
    }

    /// The `Authorization` header answering a challenge.
    async fn authorize(&self, repo: &Repo, ch: &Challenge) -> Result<String, Error> {
        let unauthorized = |message: String| Error::Unauthorized { registry: repo.registry.clone(), message };
        match ch {
            Challenge::Basic { .. } => {
                let a = repo.auth.as_ref().filter(|a| !a.username.is_empty()).ok_or_else(|| unauthorized("unauthorized: authentication required".into()))?;
                Ok(format!("Basic {}", STANDARD.encode(format!("{}:{}", a.username, a.password))))
            }
            Challenge::Bearer { realm, service, scope } => {
                let mut scopes: Vec<String> = repo.scope.split(' ').map(str::to_owned).collect();
                if let Some(s) = scope.as_ref().filter(|s| !s.is_empty() && **s != repo.scope) {
                    scopes.push(s.clone());
                }
                let t = self.fetch_token(repo, realm, service.as_deref(), &scopes).await?;
                Ok(format!("Bearer {t}"))
            }
        }
    }

    /// Trade credentials for a token at `realm` (docker's token protocol;
    /// OAuth2 refresh-token grant when the credential is an identity token).
    async fn fetch_token(&self, repo: &Repo, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String, Error> {
        let realm_url = url::Url::parse(realm).map_err(|e| Error::Unauthorized { registry: repo.registry.clone(), message: format!("invalid token realm {realm:?}: {e}") })?;
        let insecure = self.options.is_insecure(&host_port(&realm_url));
        let http = self.http(&host_port(&realm_url), insecure)?;
        let auth = repo.auth.as_ref();
        let resp = if let Some(a) = auth.filter(|a| !a.identitytoken.is_empty()) {
            let mut form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", a.identitytoken.clone()), ("client_id", "berth".to_owned())];
            if let Some(s) = service {
                form.push(("service", s.to_owned()));
            }
            form.push(("scope", scopes.join(" ")));
            http.post(realm_url.clone()).form(&form).send().await
        } else {
            let mut u = realm_url.clone();
            {
                let mut q = u.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scopes.iter().filter(|s| !s.is_empty()) {
                    q.append_pair("scope", s);
                }
            }
            let mut rb = http.get(u);
            if let Some(a) = auth.filter(|a| !a.username.is_empty()) {
                rb = rb.basic_auth(&a.username, Some(&a.password));
            } else if let Some(a) = auth.filter(|a| !a.registrytoken.is_empty()) {
                return Ok(a.registrytoken.clone());
            }
            rb.send().await
        }
        .map_err(|e| connect_err(&Method::GET, realm, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| connect_err(&Method::GET, realm, e))?;
        if !status.is_success() {
            let msg = oci_message(&body);
            return Err(Error::Unauthorized {
                registry: repo.registry.clone(),
                message: if status == StatusCode::UNAUTHORIZED { format!("unauthorized: {}", if msg.is_empty() { "authentication required".into() } else { msg }) } else { format!("token request to {realm} failed: {status}: {msg}") },
            });
        }
        #[derive(Deserialize)]
        struct Tok {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Tok = serde_json::from_slice(&body).map_err(|e| Error::Unauthorized { registry: repo.registry.clone(), message: format!("invalid token response: {e}") })?;
        Ok(if t.token.is_empty() { t.access_token } else { t.token })
    }

    /// Turn an error response into an [`Error`], with docker's messages for
    /// the common cases.
    pub(crate) async fn error_for(&self, repo: &Repo, method: &Method, url: &str, resp: reqwest::Response, what: &str) -> Error {
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        let message = oci_message(&body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
                registry: repo.registry.clone(),
                message: if what.starts_with("pull") {
                    format!("pull access denied for {}, repository does not exist or may require 'docker login': {message}", repo.name)
                } else {
                    format!("{what}: {}", if message.is_empty() { "unauthorized: authentication required".into() } else { message })
                },
            },
            StatusCode::NOT_FOUND => Error::NotFound { message: format!("{what} not found: {}", if message.is_empty() { "not found".into() } else { message }) },
            _ => Error::Registry { method: method.to_string(), url: url.to_owned(), status: status.as_u16(), message },
        }
    }

    /// `GET` (or `HEAD`) a manifest by tag or digest, verifying its digest
    /// when the reference is one.
    pub async fn get_manifest(&self, repo: &Repo, reference: &str, label: &str) -> Result<FetchedManifest, Error> {
        let url = repo.url(&format!("manifests/{reference}"));
        let resp = self.send(repo, Method::GET, &url, |r| r.header(ACCEPT, MANIFEST_ACCEPT)).await?;
        if !resp.status().is_success() {
            return Err(self.error_for(repo, &Method::GET, &url, resp, &format!("manifest for {label}")).await);
        }
        let header_digest: Option<Digest> = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).and_then(|s| s.parse().ok());
        let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|s| s.split(';').next().unwrap_or("").trim().to_owned());
        let bytes = resp.bytes().await.map_err(|e| connect_err(&Method::GET, &url, e))?.to_vec();
        if bytes.len() > 8 << 20 {
            return Err(Error::InvalidManifest { what: label.to_owned(), message: "larger than 8 MiB".into() });
        }
        let expected: Option<Digest> = reference.parse().ok().or(header_digest);
        let digest = match &expected {
            Some(exp) => {
                let mut h = Hasher::new(exp.algorithm());
                h.update(&bytes);
                let actual = h.finish();
                if &actual != exp {
                    return Err(Error::DigestMismatch { what: format!("manifest of {label}"), expected: exp.clone(), actual });
                }
                actual
            }
            None => Digest::sha256_of(&bytes),
        };
        #[derive(Deserialize)]
        struct Mt {
            #[serde(rename = "mediaType", default)]
            media_type: Option<String>,
            #[serde(default)]
            manifests: Option<serde_json::Value>,
        }
        let mt: Mt = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest { what: label.to_owned(), message: e.to_string() })?;
        let media_type = match (mt.media_type, ct) {
            (Some(m), _) => m,
            (None, Some(c)) if media::is_manifest(&c) || media::is_index(&c) => c,
            (None, _) => if mt.manifests.is_some() { media::OCI_INDEX } else { media::OCI_MANIFEST }.to_owned(),
        };
        Ok(FetchedManifest { digest, media_type, bytes })
    }

    /// `HEAD` a blob: its size when the repository has it.
    pub async fn blob_exists(&self, repo: &Repo, d: &Digest) -> Result<Option<u64>, Error> {
        let url = repo.url(&format!("blobs/{d}"));
        let resp = self.send(repo, Method::HEAD, &url, |r| r).await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.error_for(repo, &Method::HEAD, &url, resp, &format!("blob {d}")).await),
        }
    }

    /// A small blob (a config) in memory, verified.
    pub async fn get_small_blob(&self, repo: &Repo, d: &Digest, max: usize) -> Result<Vec<u8>, Error> {
        let url = repo.url(&format!("blobs/{d}"));
        let resp = self.send(repo, Method::GET, &url, |r| r).await?;
        if !resp.status().is_success() {
            return Err(self.error_for(repo, &Method::GET, &url, resp, &format!("blob {d}")).await);
        }
        let bytes = resp.bytes().await.map_err(|e| connect_err(&Method::GET, &url, e))?;
        if bytes.len() > max {
            return Err(Error::InvalidManifest { what: d.to_string(), message: format!("blob larger than {max} bytes") });
        }
        let mut h = Hasher::new(d.algorithm());
        h.update(&bytes);
        let actual = h.finish();
        if &actual != d {
            return Err(Error::DigestMismatch { what: format!("blob {d}"), expected: d.clone(), actual });
        }
        Ok(bytes.to_vec())
    }

    /// Tags of a repository (all pages).
    pub async fn tags(&self, reference: &str, auth: Option<&AuthConfig>) -> Result<Vec<String>, Error> {
        let r = Reference::parse_named(reference)?;
        let repo = self.repo(&r, false, auth).await?;
        let mut url = repo.url("tags/list");
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let resp = self.send(&repo, Method::GET, &url, |r| r).await?;
            if !resp.status().is_success() {
                return Err(self.error_for(&repo, &Method::GET, &url, resp, &format!("tags of {}", r.familiar_name())).await);
            }
            let next = resp.headers().get("link").and_then(|v| v.to_str().ok()).and_then(|l| {
                let start = l.find('<')? + 1;
                let end = l[start..].find('>')? + start;
                Some(l[start..end].to_owned())
            });
            #[derive(Deserialize)]
            struct Tags {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let body = resp.bytes().await.map_err(|e| connect_err(&Method::GET, &url, e))?;
            let t: Tags = serde_json::from_slice(&body).map_err(|e| Error::Registry { method: "GET".into(), url: url.clone(), status: 200, message: format!("invalid tag list: {e}") })?;
            out.extend(t.tags.unwrap_or_default());
            match next {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", repo.endpoint.base()),
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// The manifest `reference` names on its registry (`docker manifest
    /// inspect`, `buildx imagetools inspect`).
    pub async fn inspect(&self, reference: &str, auth: Option<&AuthConfig>) -> Result<FetchedManifest, Error> {
        let r = Reference::parse(reference)?;
        let repo = self.repo(&r, false, auth).await?;
        let tag_or_digest = r.digest().map(|d| d.to_string()).or_else(|| r.tag().map(str::to_owned)).unwrap_or_else(|| "latest".into());
        self.get_manifest(&repo, &tag_or_digest, &r.familiar()).await
    }

    /// `docker login`: check the credentials against the registry. The
    /// caller stores them (`DockerConfigFile::store`) when it succeeds.
    pub async fn login(&self, auth: &AuthConfig, server: &str) -> Result<LoginReport, Error> {
        let host = normalize_server(if server.is_empty() { &auth.serveraddress } else { server });
        let ep = self.endpoints(&host, false).await?.remove(0);
        let repo = Repo { endpoint: ep.clone(), name: String::new(), registry: host.clone(), scope: String::new(), auth: Some(auth.clone()) };
        let url = format!("{}/v2/", ep.base());
        let http = self.http(&ep.host, ep.insecure)?;
        let resp = http.get(&url).send().await.map_err(|e| connect_err(&Method::GET, &url, e))?;
        let ok = LoginReport { status: "Login Succeeded".into(), identity_token: String::new() };
        if resp.status().is_success() {
            return Ok(ok);
        }
        let ch = resp.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).filter_map(Challenge::parse).next();
        let denied = |status: String| Error::Unauthorized { registry: host.clone(), message: format!("login attempt to {url} failed with status: {status}") };
        match ch {
            Some(Challenge::Basic { .. }) => {
                let r = http.get(&url).basic_auth(&auth.username, Some(&auth.password)).send().await.map_err(|e| connect_err(&Method::GET, &url, e))?;
                if r.status().is_success() { Ok(ok) } else { Err(denied(r.status().to_string())) }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let tok = self.fetch_token(&repo, &realm, service.as_deref(), &[]).await?;
                let r = http.get(&url).bearer_auth(&tok).send().await.map_err(|e| connect_err(&Method::GET, &url, e))?;
                if r.status().is_success() { Ok(ok) } else { Err(denied(r.status().to_string())) }
            }
            None => Err(denied(resp.status().to_string())),
        }
    }

    /// `docker search TERM`: `TERM` may name a registry (`host:5000/name`);
    /// Docker Hub's index otherwise.
    pub async fn search(&self, term: &str, limit: usize, auth: Option<&AuthConfig>) -> Result<Vec<SearchResult>, Error> {
        let (host, q) = match term.split_once('/') {
            Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => (h.to_owned(), rest.to_owned()),
            _ => ("docker.io".to_owned(), term.to_owned()),
        };
        let base = if host == "docker.io" {
            "https://index.docker.io".to_owned()
        } else {
            self.endpoints(&host, false).await?.remove(0).base()
        };
        let ep_host = base.split("://").nth(1).unwrap_or(&host).to_owned();
        let insecure = self.options.is_insecure(&ep_host);
        let http = self.http(&ep_host, insecure)?;
        let mut url = url::Url::parse(&format!("{base}/v1/search")).map_err(|e| Error::Registry { method: "GET".into(), url: base.clone(), status: 0, message: e.to_string() })?;
        url.query_pairs_mut().append_pair("q", &q).append_pair("n", &limit.max(1).to_string());
        let mut rb = http.get(url.clone());
        if let Some(a) = self.credentials_for(&host, auth)?.filter(|a| !a.username.is_empty()) {
            rb = rb.basic_auth(&a.username, Some(&a.password));
        }
        let resp = rb.send().await.map_err(|e| connect_err(&Method::GET, url.as_str(), e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::Registry { method: "GET".into(), url: url.to_string(), status, message: oci_message(&body) });
        }
        #[derive(Deserialize)]
        struct Results {
            #[serde(default)]
            results: Vec<SearchResult>,
        }
        let body = resp.bytes().await.map_err(|e| connect_err(&Method::GET, url.as_str(), e))?;
        let r: Results = serde_json::from_slice(&body).map_err(|e| Error::Registry { method: "GET".into(), url: url.to_string(), status: 200, message: format!("invalid search results: {e}") })?;
        let mut out = r.results;
        out.truncate(limit.max(1));
        Ok(out)
    }

    /// Resolve `location` (absolute or relative, from a `Location` header)
    /// against the repository's endpoint.
    pub(crate) fn absolute(&self, repo: &Repo, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            format!("{}{location}", repo.endpoint.base())
        } else {
            format!("{}/{location}", repo.endpoint.base())
        }
    }
}

/// Host, scope, and a digest of the credentials (empty for anonymous requests).
type TokenKey = (String, String, String);

/// The token cache's key of a repository's requests.
fn token_key(repo: &Repo) -> TokenKey {
    let who = match repo.auth.as_ref().filter(|a| !a.is_empty()) {
        Some(a) => Digest::sha256_of(format!("{}\0{}\0{}\0{}", a.username, a.password, a.identitytoken, a.registrytoken).as_bytes()).hex().to_owned(),
        None => String::new(),
    };
    (repo.endpoint.host.clone(), repo.scope.clone(), who)
}

fn host_port(u: &url::Url) -> String {
    match u.port() {
        Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
        None => u.host_str().unwrap_or_default().to_owned(),
    }
}

fn read_dir_sorted(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// Append `k=v` to a URL that may already have a query.
pub(crate) fn with_query(url: &str, k: &str, v: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())
}

/// Headers for a blob upload body.
pub(crate) fn octet_stream(len: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from(len));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_endpoint() {
        let c = Client::new(RegistryOptions::default(), CredentialStore::default());
        let repo = Repo {
            endpoint: Endpoint { host: "localhost:5000".into(), plain_http: true, insecure: true, mirror: false },
            name: "a/b".into(),
            registry: "localhost:5000".into(),
            scope: String::new(),
            auth: None,
        };
        assert_eq!(c.absolute(&repo, "/v2/a/b/blobs/uploads/x?state=1"), "http://localhost:5000/v2/a/b/blobs/uploads/x?state=1");
        assert_eq!(c.absolute(&repo, "https://s3.example/up"), "https://s3.example/up");
        assert_eq!(with_query("http://h/u?state=1", "digest", "sha256:ab"), "http://h/u?state=1&digest=sha256%3Aab");
        assert_eq!(with_query("http://h/u", "digest", "x"), "http://h/u?digest=x");
    }
}
