//! Where a reference is fetched from: registry host → base URLs (HTTPS or
//! HTTP, mirrors first for Docker Hub), as docker's `registry` package maps
//! them.

use std::net::IpAddr;
use std::path::PathBuf;

use berth_image::reference::{DEFAULT_DOMAIN, Reference};

/// The host Docker Hub's API is served from.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key Docker Hub credentials are stored under in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// How the client reaches registries: the daemon config's
/// `insecure-registries`, `registry-mirrors`, certificates and concurrency.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `host[:port]` or CIDR (`10.0.0.0/8`) entries reached over HTTP, or
    /// HTTPS without certificate checks. Loopback is always insecure.
    pub insecure_registries: Vec<String>,
    /// Mirrors of Docker Hub (`https://mirror.example:5000`), tried in order
    /// before it for pulls.
    pub mirrors: Vec<String>,
    /// Reach Docker Hub only through `mirrors`, never itself: no fallback
    /// to it when the mirrors fail, and no pushes, logins or searches of
    /// it (berthd's `registry-mirrors-only`; test daemons set it so that
    /// nothing they do reaches the internet).
    pub mirrors_only: bool,
    /// `certs.d` directory: `<dir>/<host[:port]>/*.crt` are extra CA roots,
    /// `client.cert` + `client.key` a client certificate.
    pub certs_dir: PathBuf,
    /// Layers downloaded at once (docker: 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once (docker: 5).
    pub max_concurrent_uploads: usize,
    /// Upload blobs in PATCH chunks of this size; `None` uploads each blob
    /// in one PUT.
    pub upload_chunk_size: Option<u64>,
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            mirrors_only: false,
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            upload_chunk_size: None,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl RegistryOptions {
    /// Whether `host` (`name[:port]`) may be reached without verified TLS:
    /// loopback names and addresses, and the configured insecure registries.
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host_name(host);
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        let ip: Option<IpAddr> = name.trim_start_matches('[').trim_end_matches(']').parse().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            let entry = entry.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
            if entry == host || entry == name {
                return true;
            }
            match (entry.split_once('/'), ip) {
                (Some((net, bits)), Some(ip)) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }

    /// The base URLs to try for `host`, best first. Docker Hub goes through
    /// its mirrors first when `for_pull`, and only through them with
    /// `mirrors_only` (then the list may be empty).
    pub fn endpoints(&self, host: &str, for_pull: bool) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if host == DEFAULT_DOMAIN {
            if for_pull {
                for m in &self.mirrors {
                    let m = m.trim_end_matches('/');
                    let (scheme, h) = match m.split_once("://") {
                        Some((s, h)) => (s, h),
                        None => ("https", m),
                    };
                    out.push(Endpoint { host: h.to_owned(), plain_http: scheme == "http", insecure: self.is_insecure(h), mirror: true });
                }
            }
            if !self.mirrors_only {
                out.push(Endpoint { host: DOCKER_HUB_API.into(), plain_http: false, insecure: false, mirror: false });
            }
            return out;
        }
        let insecure = self.is_insecure(host);
        out.push(Endpoint { host: host.to_owned(), plain_http: false, insecure, mirror: false });
        if insecure {
            out.push(Endpoint { host: host.to_owned(), plain_http: true, insecure, mirror: false });
        }
        out
    }
}

/// One way to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` as used in URLs.
    pub host: String,
    pub plain_http: bool,
    /// Skip certificate verification (insecure registry over HTTPS).
    pub insecure: bool,
    pub mirror: bool,
}

impl Endpoint {
    pub fn base(&self) -> String {
        format!("{}://{}", if self.plain_http { "http" } else { "https" }, self.host)
    }
    /// `<base>/v2/<name>/<rest>`.
    pub fn url(&self, repository: &str, rest: &str) -> String {
        format!("{}/v2/{repository}/{rest}", self.base())
    }
}

/// The repository path a reference has on its registry (`library/busybox`).
pub fn repository(r: &Reference) -> &str {
    r.path()
}

/// The key under which `config.json` keeps credentials for a registry host:
/// Docker Hub's legacy URL, the bare host otherwise.
pub fn auth_key(host: &str) -> String {
    if host == DEFAULT_DOMAIN || host == DOCKER_HUB_API || host == "index.docker.io" {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// Normalize what a user gives `login` (`https://host:5000/`, `docker.io`,
/// empty) to a registry host.
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    if s.is_empty() {
        return DEFAULT_DOMAIN.to_owned();
    }
    let s = s.trim_start_matches("https://").trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_DOMAIN.to_owned(),
        h => h.to_owned(),
    }
}

/// `host` without its port (`[::1]:5000` → `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_configured_registries_are_insecure() {
        let mut o = RegistryOptions::default();
        assert!(o.is_insecure("localhost:5000"));
        assert!(o.is_insecure("127.0.0.1:5000"));
        assert!(o.is_insecure("127.3.2.1"));
        assert!(o.is_insecure("[::1]:5000"));
        assert!(!o.is_insecure("registry.example:5000"));
        assert!(!o.is_insecure("10.1.2.3:5000"));
        o.insecure_registries = vec!["registry.example:5000".into(), "10.0.0.0/8".into()];
        assert!(o.is_insecure("registry.example:5000"));
        assert!(!o.is_insecure("registry.example:5001"));
        assert!(o.is_insecure("10.1.2.3:5000"));
        assert!(!o.is_insecure("11.1.2.3:5000"));
    }

    #[test]
    fn references_map_to_urls() {
        let o = RegistryOptions { mirrors: vec!["http://mirror.local:5000/".into()], ..Default::default() };
        let r = Reference::parse("busybox").unwrap();
        let eps = o.endpoints(r.domain(), true);
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].url(repository(&r), "manifests/latest"), "http://mirror.local:5000/v2/library/busybox/manifests/latest");
        assert!(eps[0].mirror);
        assert_eq!(eps[1].url(repository(&r), "manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest");
        assert_eq!(o.endpoints(r.domain(), false).len(), 1, "pushes never go to mirrors");
        // Mirrors only: Docker Hub itself is never among the endpoints.
        let only = RegistryOptions { mirrors_only: true, ..o.clone() };
        let eps = only.endpoints(r.domain(), true);
        assert_eq!(eps.len(), 1);
        assert!(eps[0].mirror);
        assert!(only.endpoints(r.domain(), false).is_empty());
        assert_eq!(only.endpoints("quay.io", true).len(), 1, "other registries are not affected");
        let r = Reference::parse("localhost:5000/a/b:1").unwrap();
        let eps = o.endpoints(r.domain(), true);
        assert_eq!(eps.iter().map(|e| e.base()).collect::<Vec<_>>(), ["https://localhost:5000", "http://localhost:5000"]);
        assert_eq!(eps[0].url(repository(&r), "blobs/uploads/"), "https://localhost:5000/v2/a/b/blobs/uploads/");
        let r = Reference::parse("quay.io/x/y").unwrap();
        assert_eq!(o.endpoints(r.domain(), true), vec![Endpoint { host: "quay.io".into(), plain_http: false, insecure: false, mirror: false }]);
    }

    #[test]
    fn login_servers_normalize() {
        assert_eq!(normalize_server(""), "docker.io");
        assert_eq!(normalize_server("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_server("http://localhost:5000/"), "localhost:5000");
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key("localhost:5000"), "localhost:5000");
    }
}
