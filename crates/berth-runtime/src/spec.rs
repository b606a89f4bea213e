//! Loading and checking an OCI bundle's `config.json`.
//!
//! Errors name the field at fault (`process.capabilities.bounding[2]`), so a
//! user can fix the file without guessing.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Oldest and newest runtime-spec versions we accept.
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parse {path}: {field}: {message}")]
    Parse { path: PathBuf, field: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("ociVersion {version:?} is not supported (supported: {OCI_VERSION_MIN} to {OCI_VERSION_MAX})")]
    Version { version: String },
    #[error("root.path {path}: {source}")]
    Rootfs { path: PathBuf, source: std::io::Error },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid { field: field.into(), message: message.into() }
}

/// Read `<bundle>/config.json`, parse and validate it.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|source| SpecError::Read { path: path.clone(), source })?;
    parse(&data, &path)
}

/// Parse and validate config.json content; `path` is used in messages only.
pub fn parse(data: &[u8], path: &Path) -> Result<Spec, SpecError> {
    let value: serde_json::Value = serde_json::from_slice(data).map_err(|e| SpecError::Parse {
        path: path.to_owned(),
        field: format!("line {} column {}", e.line(), e.column()),
        message: e.to_string(),
    })?;
    check_capability_names(&value)?;
    let spec: Spec = serde_path_to_error::deserialize(&value).map_err(|e| SpecError::Parse {
        path: path.to_owned(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    validate(&spec)?;
    Ok(spec)
}

/// Capability names are checked on the raw JSON so the error can say which
/// set and index holds the unknown name.
fn check_capability_names(value: &serde_json::Value) -> Result<(), SpecError> {
    let Some(caps) = value.pointer("/process/capabilities").and_then(|v| v.as_object()) else {
        return Ok(());
    };
    for (set, list) in caps {
        let Some(list) = list.as_array() else { continue };
        for (i, name) in list.iter().enumerate() {
            let field = format!("process.capabilities.{set}[{i}]");
            let Some(name) = name.as_str() else {
                return Err(invalid(field, "capability must be a string"));
            };
            if crate::capabilities::from_name(name).is_none() {
                return Err(invalid(field, format!("unknown capability {name:?}")));
            }
        }
    }
    Ok(())
}

/// Whether `version` lies in [OCI_VERSION_MIN, OCI_VERSION_MAX]; pre-release
/// and build suffixes (`1.0.2-dev`, `1.1.0+dev`) count as their release.
pub fn version_supported(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<u64> = match core.split('.').map(str::parse).collect() {
        Ok(p) => p,
        Err(_) => return false,
    };
    if parts.len() != 3 {
        return false;
    }
    let v = (parts[0], parts[1], parts[2]);
    ((1, 0, 0)..(1, 4, 0)).contains(&v)
}

fn validate(spec: &Spec) -> Result<(), SpecError> {
    if !version_supported(spec.version()) {
        return Err(SpecError::Version { version: spec.version().clone() });
    }
    if spec.root().is_none() {
        return Err(invalid("root", "missing"));
    }
    let process = spec.process().as_ref().ok_or_else(|| invalid("process", "missing"))?;
    match process.args() {
        Some(a) if !a.is_empty() => {}
        _ => return Err(invalid("process.args", "must hold at least the program to run")),
    }
    if !process.cwd().is_absolute() {
        return Err(invalid("process.cwd", format!("{} is not an absolute path", process.cwd().display())));
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(invalid(
                    format!("mounts[{i}].destination"),
                    format!("{} is not an absolute path", m.destination().display()),
                ));
            }
        }
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if seen.contains(&ns.typ()) {
                return Err(invalid(format!("linux.namespaces[{i}]"), format!("namespace {:?} listed twice", ns.typ())));
            }
            seen.push(ns.typ());
            if let Some(p) = ns.path()
                && !p.is_absolute() {
                    return Err(invalid(format!("linux.namespaces[{i}].path"), "must be an absolute path"));
                }
        }
        let userns = seen.contains(&LinuxNamespaceType::User);
        let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if has_maps && !userns {
            return Err(invalid("linux.uidMappings", "given without a user namespace"));
        }
        if let Some(p) = linux.rootfs_propagation()
            && !matches!(p.as_str(), "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable") {
                return Err(invalid("linux.rootfsPropagation", format!("unknown propagation {p:?}")));
            }
        if let Some(sysctl) = linux.sysctl() {
            for key in sysctl.keys() {
                if key.is_empty() || key.contains("..") || key.starts_with('/') {
                    return Err(invalid(format!("linux.sysctl[{key}]"), "not a sysctl name"));
                }
            }
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_new_namespace(spec, LinuxNamespaceType::Uts) {
        return Err(invalid("hostname", "setting the hostname needs a new uts namespace"));
    }
    Ok(())
}

/// Whether the spec asks for a *new* namespace of this type (listed without a path).
pub fn has_new_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|ns| ns.typ() == typ && ns.path().is_none()))
}

/// The root filesystem path: `root.path`, relative to the bundle when not absolute.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    let root = spec.root().as_ref().ok_or_else(|| invalid("root", "missing"))?;
    let p = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    let canon = std::fs::canonicalize(&p).map_err(|source| SpecError::Rootfs { path: p.clone(), source })?;
    if !canon.is_dir() {
        return Err(SpecError::Rootfs { path: p, source: std::io::Error::from_raw_os_error(libc::ENOTDIR) });
    }
    Ok(canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}{extra}}},
            "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"uts"}}]}}}}"#
        )
    }

    #[test]
    fn versions_in_range_are_accepted() {
        for v in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.5+dev"] {
            assert!(version_supported(v), "{v}");
        }
        for v in ["0.9.0", "1.4.0", "2.0.0", "1.0", "x", ""] {
            assert!(!version_supported(v), "{v}");
        }
    }

    #[test]
    fn minimal_config_parses() {
        let spec = parse(minimal("").as_bytes(), Path::new("config.json")).unwrap();
        assert_eq!(spec.process().as_ref().unwrap().args().as_ref().unwrap()[0], "sh");
    }

    #[test]
    fn unknown_capability_names_its_field() {
        let cfg = minimal(r#","capabilities":{"bounding":["CAP_CHOWN","CAP_FLY"]}"#);
        let err = parse(cfg.as_bytes(), Path::new("config.json")).unwrap_err().to_string();
        assert_eq!(err, "process.capabilities.bounding[1]: unknown capability \"CAP_FLY\"");
    }

    #[test]
    fn type_errors_name_the_json_path() {
        let cfg = minimal(r#","noNewPrivileges":"yes""#);
        let err = parse(cfg.as_bytes(), Path::new("b/config.json")).unwrap_err().to_string();
        assert!(err.starts_with("parse b/config.json: process.noNewPrivileges:"), "{err}");
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let err = parse(b"{\n  \"ociVersion\": ,", Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("line 2 column"), "{err}");
    }

    #[test]
    fn unsupported_version_is_refused() {
        let cfg = minimal("").replace("1.0.2", "2.0.0");
        let err = parse(cfg.as_bytes(), Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("ociVersion \"2.0.0\" is not supported"), "{err}");
    }

    #[test]
    fn empty_args_and_relative_mounts_are_refused() {
        let cfg = minimal("").replace(r#""args":["sh"]"#, r#""args":[]"#);
        let err = parse(cfg.as_bytes(), Path::new("c")).unwrap_err().to_string();
        assert!(err.starts_with("process.args:"), "{err}");
        let cfg = minimal("").replacen(r#""linux""#, r#""mounts":[{"destination":"proc","type":"proc"}],"linux""#, 1);
        let err = parse(cfg.as_bytes(), Path::new("c")).unwrap_err().to_string();
        assert_eq!(err, "mounts[0].destination: proc is not an absolute path");
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let cfg = minimal("").replace(r#",{"type":"uts"}"#, "").replacen('{', r#"{"hostname":"h","#, 1);
        let err = parse(cfg.as_bytes(), Path::new("c")).unwrap_err().to_string();
        assert!(err.starts_with("hostname:"), "{err}");
    }
}
