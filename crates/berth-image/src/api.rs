//! The Engine API's JSON shapes for images (moby `api/swagger.yaml`):
//! what the daemon's image routes return. A `berth-api` crate of wire types
//! will take these over.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ContainerConfig;

/// `GET /images/json` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: i64,
    /// -1 unless computed (`system df`).
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    /// -1 unless computed (`system df`).
    pub containers: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: Option<ContainerConfig>,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: i64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsInspect,
    pub metadata: ImageMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsInspect {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

/// `GET /images/{name}/history` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID for the entry of an image's top, `<missing>` otherwise.
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
}

/// `DELETE /images/{name}` item: one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResponseItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

impl DeleteResponseItem {
    pub fn untagged(s: impl Into<String>) -> Self {
        DeleteResponseItem { untagged: Some(s.into()), deleted: None }
    }
    pub fn deleted(s: impl Into<String>) -> Self {
        DeleteResponseItem { untagged: None, deleted: Some(s.into()) }
    }
}

/// `POST /images/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<DeleteResponseItem>,
    pub space_reclaimed: u64,
}

/// `GET /containers/{id}/changes` item. Kind: 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

impl Change {
    pub const MODIFIED: u8 = 0;
    pub const ADDED: u8 = 1;
    pub const DELETED: u8 = 2;

    /// The line `docker diff` prints: `A /path`, `C /path`, `D /path`.
    pub fn line(&self) -> String {
        let c = match self.kind {
            Change::ADDED => 'A',
            Change::DELETED => 'D',
            _ => 'C',
        };
        format!("{c} {}", self.path)
    }
}

/// The image part of `GET /system/df`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Bytes of all layers, each counted once.
    pub layers_size: u64,
    pub images: Vec<ImageSummary>,
}
