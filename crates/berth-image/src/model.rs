//! Image model: descriptors, OCI and Docker v2 schema 2 manifests and
//! indexes (manifest lists), the image config, and the media types that
//! name them. Read and written as the specs give them; unknown fields of a
//! config survive a read-modify-write through `extra`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::digest::Digest;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDIST_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    pub fn is_manifest(m: &str) -> bool {
        m == OCI_MANIFEST || m == DOCKER_MANIFEST
    }
    pub fn is_index(m: &str) -> bool {
        m == OCI_INDEX || m == DOCKER_MANIFEST_LIST
    }
    pub fn is_config(m: &str) -> bool {
        m == OCI_CONFIG || m == DOCKER_CONFIG
    }
    pub fn is_layer(m: &str) -> bool {
        m.starts_with("application/vnd.oci.image.layer.") || m.starts_with("application/vnd.docker.image.rootfs.")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid {what} {digest}: {source}")]
    Json { what: &'static str, digest: String, source: serde_json::Error },
    #[error("unsupported schema version {version} in {what} {digest}")]
    SchemaVersion { what: &'static str, digest: String, version: u32 },
    #[error("unsupported media type {media_type:?} for {what} {digest}")]
    MediaType { what: &'static str, digest: String, media_type: String },
    #[error("image config {digest} has {diff_ids} diff ids but its manifest lists {layers} layers")]
    LayerCount { digest: String, diff_ids: usize, layers: usize },
}

impl ModelError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

/// A content descriptor (OCI image-spec descriptor.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size: size as i64,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

/// An image manifest: OCI or Docker v2 schema 2 (same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The same image as a Docker v2 schema 2 manifest (what registries
    /// that predate OCI take), or as an OCI manifest: media types of the
    /// manifest, config and layers translated, digests and sizes kept.
    pub fn converted(&self, docker: bool) -> Manifest {
        let layer = |mt: &str| -> String {
            let gz = mt.ends_with("gzip");
            let zst = mt.ends_with("zstd");
            match (docker, gz, zst) {
                (true, true, _) => media::DOCKER_LAYER_GZIP.into(),
                (true, false, false) => media::DOCKER_LAYER.into(),
                (true, false, true) => mt.into(), // docker has no zstd type; OCI's is understood
                (false, true, _) => media::OCI_LAYER_GZIP.into(),
                (false, false, true) => media::OCI_LAYER_ZSTD.into(),
                (false, false, false) => media::OCI_LAYER.into(),
            }
        };
        let mut m = self.clone();
        m.media_type = Some(if docker { media::DOCKER_MANIFEST } else { media::OCI_MANIFEST }.into());
        m.config.media_type = if docker { media::DOCKER_CONFIG } else { media::OCI_CONFIG }.into();
        for l in &mut m.layers {
            l.media_type = layer(&l.media_type);
        }
        m
    }
}

impl Index {
    /// The same list as a Docker manifest list or an OCI index.
    pub fn converted(&self, docker: bool) -> Index {
        let mut i = self.clone();
        i.media_type = Some(if docker { media::DOCKER_MANIFEST_LIST } else { media::OCI_INDEX }.into());
        for m in &mut i.manifests {
            if media::is_manifest(&m.media_type) {
                m.media_type = if docker { media::DOCKER_MANIFEST } else { media::OCI_MANIFEST }.into();
            }
        }
        i
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn parse_json<T: for<'de> Deserialize<'de>>(what: &'static str, digest: &Digest, data: &[u8]) -> Result<T, ModelError> {
    serde_json::from_slice(data).map_err(|source| ModelError::Json { what, digest: digest.to_string(), source })
}

impl Manifest {
    /// Parse and check a manifest blob whose digest is `digest`.
    pub fn parse(digest: &Digest, data: &[u8]) -> Result<Manifest, ModelError> {
        let m: Manifest = parse_json("manifest", digest, data)?;
        if m.schema_version != 2 {
            return Err(ModelError::SchemaVersion { what: "manifest", digest: digest.to_string(), version: m.schema_version });
        }
        if let Some(mt) = &m.media_type
            && !media::is_manifest(mt) {
                return Err(ModelError::MediaType { what: "manifest", digest: digest.to_string(), media_type: mt.clone() });
            }
        if !media::is_config(&m.config.media_type) {
            return Err(ModelError::MediaType {
                what: "config",
                digest: m.config.digest.to_string(),
                media_type: m.config.media_type.clone(),
            });
        }
        for l in &m.layers {
            if !media::is_layer(&l.media_type) {
                return Err(ModelError::MediaType { what: "layer", digest: l.digest.to_string(), media_type: l.media_type.clone() });
            }
        }
        Ok(m)
    }
}

impl Index {
    pub fn parse(digest: &Digest, data: &[u8]) -> Result<Index, ModelError> {
        let i: Index = parse_json("index", digest, data)?;
        if i.schema_version != 2 {
            return Err(ModelError::SchemaVersion { what: "index", digest: digest.to_string(), version: i.schema_version });
        }
        if let Some(mt) = &i.media_type
            && !media::is_index(mt) {
                return Err(ModelError::MediaType { what: "index", digest: digest.to_string(), media_type: mt.clone() });
            }
        Ok(i)
    }
}

/// The container configuration inside an image config (docker's
/// `container.Config`; the OCI config uses the same names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_stdin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_stdout: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_once: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The image config blob (docker's image JSON; OCI config.md). Its digest is
/// the image ID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    pub rootfs: RootFs,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageConfig {
    pub fn parse(digest: &Digest, data: &[u8]) -> Result<ImageConfig, ModelError> {
        parse_json("image config", digest, data)
    }

    /// The config as canonical JSON bytes (what gets hashed into an ID).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("image config serializes")
    }

    /// Seconds since the epoch of `created`, 0 when absent or unparsable.
    pub fn created_unix(&self) -> i64 {
        self.created.as_deref().and_then(parse_time).unwrap_or(0)
    }
}

/// Parse an RFC 3339 time into seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

/// Now, as docker writes `created` (RFC 3339 with nanoseconds, UTC).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The platform berth runs on, in OCI/Go names.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_owned();
    let variant = (architecture == "arm64").then(|| "v8".to_owned());
    Platform { architecture, os: "linux".into(), variant, os_version: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_unknown_fields_and_reads_docker_shape() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Foo":1},
            "created":"2024-01-02T03:04:05.123456789Z","rootfs":{"type":"layers","diff_ids":[]},"moby.extra":true}"#;
        let d = Digest::sha256_of(raw);
        let c = ImageConfig::parse(&d, raw).unwrap();
        assert_eq!(c.config.as_ref().unwrap().cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(c.created_unix(), 1704164645);
        let back: serde_json::Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(back["moby.extra"], true);
        assert_eq!(back["config"]["Foo"], 1);
    }

    #[test]
    fn manifests_convert_between_docker_and_oci_and_parse_back() {
        let d = Digest::sha256_of(b"x");
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor::new(media::OCI_CONFIG, d.clone(), 1),
            layers: vec![Descriptor::new(media::OCI_LAYER_GZIP, d.clone(), 2), Descriptor::new(media::OCI_LAYER, d.clone(), 3)],
            annotations: BTreeMap::new(),
        };
        let docker = m.converted(true);
        assert_eq!(docker.media_type.as_deref(), Some(media::DOCKER_MANIFEST));
        assert_eq!(docker.config.media_type, media::DOCKER_CONFIG);
        assert_eq!(docker.layers[0].media_type, media::DOCKER_LAYER_GZIP);
        assert_eq!(docker.layers[1].media_type, media::DOCKER_LAYER);
        let bytes = serde_json::to_vec(&docker).unwrap();
        assert_eq!(Manifest::parse(&Digest::sha256_of(&bytes), &bytes).unwrap(), docker);
        assert_eq!(docker.converted(false), m);
        let list = Index { schema_version: 2, media_type: None, manifests: vec![Descriptor::new(media::OCI_MANIFEST, d, 1)], annotations: BTreeMap::new() };
        let dl = list.converted(true);
        assert_eq!(dl.manifests[0].media_type, media::DOCKER_MANIFEST);
        let bytes = serde_json::to_vec(&dl).unwrap();
        assert!(Index::parse(&Digest::sha256_of(&bytes), &bytes).is_ok());
    }

    #[test]
    fn manifest_rejects_wrong_media_types() {
        let d = Digest::sha256_of(b"x");
        let cfg = format!(r#"{{"mediaType":"{}","digest":"{d}","size":1}}"#, media::DOCKER_CONFIG);
        let ok = format!(r#"{{"schemaVersion":2,"mediaType":"{}","config":{cfg},"layers":[]}}"#, media::DOCKER_MANIFEST);
        assert!(Manifest::parse(&d, ok.as_bytes()).is_ok());
        let bad = ok.replace(media::DOCKER_MANIFEST, media::OCI_INDEX);
        assert!(matches!(Manifest::parse(&d, bad.as_bytes()), Err(ModelError::MediaType { .. })));
        let v1 = ok.replace("\"schemaVersion\":2", "\"schemaVersion\":1");
        assert!(matches!(Manifest::parse(&d, v1.as_bytes()), Err(ModelError::SchemaVersion { .. })));
    }
}
