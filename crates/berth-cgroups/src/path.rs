//! The OCI `linux.cgroupsPath`, resolved to one path used in every hierarchy.
//!
//! - absolute (`/docker/<id>`): used as is, relative to each hierarchy's root
//!   (the root as this process sees it: its mount, or its cgroup namespace);
//! - relative (`mygroup/<id>`): placed under the caller's default parent,
//!   `/<parent>/mygroup/<id>`;
//! - absent: `/<parent>/<container id>`.
//!
//! berth does not place a relative path under the runtime's own cgroup, as
//! runc does: the runtime's cgroup is often one with processes in it, where
//! cgroup v2 forbids children with controllers, and finding it costs a read
//! of `/proc/self/cgroup` on every start.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("invalid cgroups path {path:?}: {reason}")]
    Invalid { path: String, reason: &'static str },
}

impl PathError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidSpec
    }
}

/// A normalized cgroup path: starts with `/`, no empty, `.` or `..`
/// components, never the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CgroupPath(String);

impl CgroupPath {
    /// Resolves the spec's `cgroupsPath` as the module doc says.
    pub fn from_spec(
        cgroups_path: Option<&Path>,
        default_parent: &str,
        container_id: &str,
    ) -> Result<CgroupPath, PathError> {
        let joined = match cgroups_path.map(|p| p.to_string_lossy()) {
            Some(p) if p.starts_with('/') => p.into_owned(),
            Some(p) => {
                if p.split(':').count() == 3 && !p.contains('/') {
                    return Err(PathError::Invalid {
                        path: p.into_owned(),
                        reason: "systemd cgroup paths (slice:prefix:name) need the systemd cgroup driver, which berth does not have",
                    });
                }
                format!("/{default_parent}/{p}")
            }
            None => format!("/{default_parent}/{container_id}"),
        };
        CgroupPath::new(&joined)
    }

    /// Checks and normalizes an absolute path (repeated and trailing slashes
    /// are dropped).
    pub fn new(path: &str) -> Result<CgroupPath, PathError> {
        let bad = |reason| PathError::Invalid { path: path.to_owned(), reason };
        if !path.starts_with('/') {
            return Err(bad("must be absolute"));
        }
        if path.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let mut out = String::with_capacity(path.len());
        for c in path.split('/').filter(|c| !c.is_empty()) {
            if c == "." || c == ".." {
                return Err(bad("must not contain . or .. components"));
            }
            out.push('/');
            out.push_str(c);
        }
        if out.is_empty() {
            return Err(bad("a container cannot use the root cgroup"));
        }
        Ok(CgroupPath(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path without its leading `/`, to join under a mount point.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }

    /// The components, top first: `/a/b` → `["a", "b"]`.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.relative().split('/')
    }
}

impl std::fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CgroupPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        CgroupPath::new(&s)
    }
}

impl From<CgroupPath> for String {
    fn from(p: CgroupPath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(p: Option<&str>) -> Result<String, String> {
        CgroupPath::from_spec(p.map(Path::new), "berth", "c1").map(|p| p.0).map_err(|e| e.to_string())
    }

    #[test]
    fn absolute_relative_and_absent() {
        assert_eq!(resolve(Some("/docker/c1")), Ok("/docker/c1".into()));
        assert_eq!(resolve(Some("//docker//c1/")), Ok("/docker/c1".into()));
        assert_eq!(resolve(Some("pod1/c1")), Ok("/berth/pod1/c1".into()));
        assert_eq!(resolve(None), Ok("/berth/c1".into()));
        let p = CgroupPath::new("/a/b").unwrap();
        assert_eq!(p.relative(), "a/b");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn rejects_escapes_root_and_systemd_form() {
        assert_eq!(
            resolve(Some("/a/../b")),
            Err("invalid cgroups path \"/a/../b\": must not contain . or .. components".into())
        );
        assert_eq!(
            resolve(Some("../x")),
            Err("invalid cgroups path \"/berth/../x\": must not contain . or .. components".into())
        );
        assert_eq!(
            resolve(Some("/")),
            Err("invalid cgroups path \"/\": a container cannot use the root cgroup".into())
        );
        assert!(resolve(Some("system.slice:docker:c1")).unwrap_err().contains("systemd cgroup paths"));
        assert!(CgroupPath::new("a").is_err());
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let p: CgroupPath = serde_json::from_str("\"/x/y\"").unwrap();
        assert_eq!(p.as_str(), "/x/y");
        assert!(serde_json::from_str::<CgroupPath>("\"/x/../y\"").is_err());
    }
}
