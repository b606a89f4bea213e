//! berthd's configuration: command-line flags over a JSON config file with
//! dockerd's `daemon.json` keys where they apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where berthd keeps things and how it listens.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// `unix:///path` or `tcp://host:port` (the latter only with TLS).
    pub hosts: Vec<String>,
    /// Group owning the unix socket (mode 0660); `berth` when it exists.
    pub group: Option<String>,
    pub debug: bool,
    pub tls: Option<Tls>,
    /// Default log driver and options for new containers.
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    /// `--storage-opt overlay2.size=`: the size of containers' writable
    /// layers that don't give `--storage-opt size=` themselves.
    pub storage_size: Option<u64>,
    /// Cgroup parent of containers (relative to each hierarchy root).
    pub cgroup_parent: String,
    /// Where the berth-shim binary is.
    pub shim_binary: PathBuf,
    /// The static init binary `--init` runs as the container's pid 1.
    pub init_path: PathBuf,
    /// Networking: the default bridge, address pools, berth's names.
    pub network: crate::network::NetworkOptions,
    /// `insecure-registries`, `registry-mirrors`, `certs.d`, concurrency.
    pub registry: berth_registry::RegistryOptions,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The keys of daemon.json berthd understands (unknown keys are refused, as
/// dockerd does, so a typo doesn't silently do nothing).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub group: Option<String>,
    pub debug: Option<bool>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub cgroup_parent: Option<String>,
    pub log_level: Option<String>,
    /// Accepted for compatibility; berth has one storage driver.
    pub storage_driver: Option<String>,
    /// `overlay2.size=<size>`.
    pub storage_opts: Option<Vec<String>>,
    /// Networking (dockerd's keys, and berth's `network-prefix`).
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub default_address_pools: Option<Vec<berth_network::ipam::AddressPool>>,
    pub mtu: Option<u32>,
    pub icc: Option<bool>,
    pub ip_masq: Option<bool>,
    pub network_prefix: Option<String>,
    /// Read by later features (registries); accepted now.
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    /// berth's own: Docker Hub only through `registry-mirrors`, never
    /// itself (see `RegistryOptions::mirrors_only`).
    pub registry_mirrors_only: Option<bool>,
    pub dns: Option<Vec<String>>,
    pub features: Option<BTreeMap<String, bool>>,
    pub init_path: Option<PathBuf>,
    pub max_concurrent_downloads: Option<usize>,
    pub max_concurrent_uploads: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to configure the daemon with file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("unable to configure the daemon with file {path}: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("invalid host {host:?}: {reason}")]
    Host { host: String, reason: &'static str },
    #[error("unknown log driver {0:?} (json-file, local, none, syslog)")]
    LogDriver(String),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let data = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        serde_json::from_slice(&data).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }
}

/// The socket path of a `unix://` host.
pub fn unix_path(host: &str) -> Option<&Path> {
    host.strip_prefix("unix://").map(Path::new)
}

impl Config {
    /// Check what can be checked before anything is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for h in &self.hosts {
            if h.starts_with("unix://") {
                if unix_path(h).is_none_or(|p| !p.is_absolute()) {
                    return Err(ConfigError::Host { host: h.clone(), reason: "unix socket path must be absolute" });
                }
            } else if h.starts_with("tcp://") {
                if self.tls.is_none() {
                    return Err(ConfigError::Host {
                        host: h.clone(),
                        reason: "tcp listeners need TLS (--tlsverify --tlscacert --tlscert --tlskey)",
                    });
                }
            } else {
                return Err(ConfigError::Host { host: h.clone(), reason: "use unix:///path or tcp://host:port" });
            }
        }
        if !matches!(self.log_driver.as_str(), "json-file" | "local" | "none" | "syslog") {
            return Err(ConfigError::LogDriver(self.log_driver.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config {
            data_root: "/var/lib/berth".into(),
            exec_root: "/run/berth".into(),
            hosts: vec!["unix:///run/berth/berth.sock".into()],
            group: None,
            debug: false,
            tls: None,
            log_driver: "json-file".into(),
            log_opts: BTreeMap::new(),
            storage_size: None,
            cgroup_parent: "berth".into(),
            shim_binary: "/usr/bin/berth-shim".into(),
            init_path: "/usr/bin/berth-init".into(),
            network: Default::default(),
            registry: Default::default(),
        }
    }

    #[test]
    fn tcp_needs_tls_and_paths_must_be_absolute() {
        let mut c = base();
        c.hosts = vec!["tcp://0.0.0.0:2375".into()];
        assert!(c.validate().unwrap_err().to_string().contains("need TLS"));
        c.hosts = vec!["unix://rel.sock".into()];
        assert!(c.validate().is_err());
        assert!(base().validate().is_ok());
    }

    #[test]
    fn daemon_json_keys_and_typos() {
        let f: FileConfig = serde_json::from_str(r#"{"data-root":"/d","log-driver":"local","log-opts":{"max-size":"10m"}}"#).unwrap();
        assert_eq!(f.data_root.unwrap(), PathBuf::from("/d"));
        assert_eq!(f.log_opts.unwrap()["max-size"], "10m");
        assert!(serde_json::from_str::<FileConfig>(r#"{"data-rot":"/d"}"#).is_err());
    }
}
