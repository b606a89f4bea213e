//! A container's mounts as the API gives them — `HostConfig.Binds`
//! (`-v src:dst:mode`), `HostConfig.Mounts` (`--mount`), `HostConfig.Tmpfs`
//! — parsed and checked with docker's rules and words, into the mount
//! points its record keeps. Pure: tested without root.

use std::collections::BTreeMap;

use berth_api::models::{Mount, MountType};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Bind,
    Volume,
    Tmpfs,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Volume => "volume",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, as its record keeps it (docker's MountPoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: Kind,
    /// The volume's name (volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host path: a bind's source, a volume's mountpoint.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// The mode as given with `-v` (`ro,z`...).
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    /// Fill a new, empty volume with the image's content at `destination`.
    #[serde(default)]
    pub copy_data: bool,
    /// `-v /host:/x` makes a missing `/host`; `--mount` refuses it.
    #[serde(default)]
    pub create_source: bool,
    #[serde(default)]
    pub non_recursive: bool,
    /// tmpfs data (`size=…,mode=…`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tmpfs_options: String,
}

/// A mount point to be, with what a volume it names is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub point: MountPoint,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

const PROPAGATIONS: &[&str] = &["shared", "rshared", "slave", "rslave", "private", "rprivate"];

/// docker's `invalid mount config for type "bind": …`.
fn config_error(kind: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("invalid mount config for type \"{kind}\": {what}"))
}

/// A destination must be absolute and not `/`.
fn check_target(kind: &str, target: &str) -> ApiResult<String> {
    if target.is_empty() {
        return Err(config_error(kind, "field Target must not be empty"));
    }
    if !target.starts_with('/') {
        return Err(config_error(kind, format_args!("invalid mount path: '{target}' mount path must be absolute")));
    }
    let clean = clean(target);
    if clean == "/" {
        return Err(config_error(kind, "invalid specification: destination can't be '/'"));
    }
    Ok(clean)
}

/// Lexically clean an absolute path: no `.`, `..`, repeated or trailing `/`.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether every comma-separated mode of `-v` is one docker knows, each
/// kind at most once.
fn valid_mode(mode: &str) -> bool {
    let (mut rw, mut label, mut prop, mut copy, mut consistency) = (0, 0, 0, 0, 0);
    for m in mode.split(',') {
        match m {
            "rw" | "ro" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            "consistent" | "cached" | "delegated" => consistency += 1,
            p if PROPAGATIONS.contains(&p) => prop += 1,
            _ => return false,
        }
    }
    rw <= 1 && label <= 1 && prop <= 1 && copy <= 1 && consistency <= 1
}

/// One `HostConfig.Binds` entry: `[source:]target[:mode]`. A source that is
/// an absolute path is a bind; a name, a named volume; none, an anonymous
/// volume.
pub fn parse_bind(raw: &str) -> ApiResult<Request> {
    let invalid = || ApiError::invalid(format!("invalid volume specification: '{raw}'"));
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [t, m] if valid_mode(m) && !m.is_empty() => ("", *t, *m),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(invalid()),
    };
    if target.is_empty() {
        return Err(invalid());
    }
    if !mode.is_empty() && !valid_mode(mode) {
        return Err(ApiError::invalid(format!("invalid mode: {mode}")));
    }
    let modes: Vec<&str> = mode.split(',').filter(|m| !m.is_empty()).collect();
    let kind = if source.starts_with('/') { Kind::Bind } else { Kind::Volume };
    let destination = check_target(kind.as_str(), target)?;
    let propagation = modes.iter().find(|m| PROPAGATIONS.contains(m)).map(|m| m.to_string());
    let point = MountPoint {
        kind,
        name: if kind == Kind::Volume { source.to_owned() } else { String::new() },
        source: if kind == Kind::Bind { clean(source) } else { String::new() },
        destination,
        driver: if kind == Kind::Volume { berth_volume::LOCAL.into() } else { String::new() },
        // docker shows a named volume's empty mode as its default label mode.
        mode: if mode.is_empty() && kind == Kind::Volume && !source.is_empty() { "z".into() } else { mode.to_owned() },
        rw: !modes.contains(&"ro"),
        propagation: propagation.unwrap_or_else(|| if kind == Kind::Bind { "rprivate".into() } else { String::new() }),
        copy_data: kind == Kind::Volume && !modes.contains(&"nocopy"),
        create_source: kind == Kind::Bind,
        non_recursive: false,
        tmpfs_options: String::new(),
    };
    Ok(Request { point, driver_opts: BTreeMap::new(), labels: BTreeMap::new() })
}

/// One `HostConfig.Mounts` entry (`--mount`).
pub fn parse_mount(m: &Mount) -> ApiResult<Request> {
    let typ = m.typ.unwrap_or(MountType::VOLUME);
    let kind = match typ {
        MountType::BIND => Kind::Bind,
        MountType::VOLUME => Kind::Volume,
        MountType::TMPFS => Kind::Tmpfs,
        other => return Err(config_error(&other.to_string(), "mount type unknown")),
    };
    let k = kind.as_str();
    let destination = check_target(k, m.target.as_deref().unwrap_or(""))?;
    let source = m.source.clone().unwrap_or_default();
    let must_not = |field: &str| Err(config_error(k, format_args!("field {field} must not be specified")));
    let rw = !m.read_only.unwrap_or(false);
    let mut point = MountPoint {
        kind,
        name: String::new(),
        source: String::new(),
        destination,
        driver: String::new(),
        mode: String::new(),
        rw,
        propagation: String::new(),
        copy_data: false,
        create_source: false,
        non_recursive: false,
        tmpfs_options: String::new(),
    };
    let (mut driver_opts, mut labels) = (BTreeMap::new(), BTreeMap::new());
    match kind {
        Kind::Bind => {
            if m.volume_options.is_some() {
                return must_not("VolumeOptions");
            }
            if m.tmpfs_options.is_some() {
                return must_not("TmpfsOptions");
            }
            if source.is_empty() {
                return Err(config_error(k, "field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(config_error(k, format_args!("invalid mount path: '{source}' mount path must be absolute")));
            }
            point.source = clean(&source);
            let b = m.bind_options.clone().unwrap_or_default();
            point.propagation = b.propagation.map(|p| p.to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| "rprivate".into());
            point.non_recursive = b.non_recursive.unwrap_or(false);
            point.create_source = b.create_mountpoint.unwrap_or(false);
        }
        Kind::Volume => {
            if m.bind_options.is_some() {
                return must_not("BindOptions");
            }
            if m.tmpfs_options.is_some() {
                return must_not("TmpfsOptions");
            }
            point.mode = if source.is_empty() { String::new() } else { "z".into() };
            point.name = source;
            point.driver = berth_volume::LOCAL.into();
            let v = m.volume_options.clone().unwrap_or_default();
            if v.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::not_implemented("volume-subpath is not implemented"));
            }
            point.copy_data = !v.no_copy.unwrap_or(false);
            if let Some(dc) = v.driver_config {
                if let Some(d) = dc.name.filter(|d| !d.is_empty() && d != berth_volume::LOCAL) {
                    return Err(ApiError::not_found(format!("error looking up volume plugin {d}: plugin {d:?} not found")));
                }
                driver_opts = dc.options.unwrap_or_default().into_iter().collect();
            }
            labels = v.labels.unwrap_or_default().into_iter().collect();
        }
        Kind::Tmpfs => {
            if !source.is_empty() {
                return must_not("Source");
            }
            if m.bind_options.is_some() {
                return must_not("BindOptions");
            }
            if m.volume_options.is_some() {
                return must_not("VolumeOptions");
            }
            let t = m.tmpfs_options.clone().unwrap_or_default();
            let mut opts = Vec::new();
            if let Some(s) = t.size_bytes {
                if s < 0 {
                    return Err(config_error(k, "invalid tmpfs size"));
                }
                if s > 0 {
                    opts.push(format!("size={s}"));
                }
            }
            if let Some(mode) = t.mode.filter(|m| *m != 0) {
                opts.push(format!("mode={mode:o}"));
            }
            for o in t.options.iter().flatten() {
                opts.push(o.join("="));
            }
            if !rw {
                opts.push("ro".into());
            }
            point.tmpfs_options = opts.join(",");
        }
    }
    Ok(Request { point, driver_opts, labels })
}

/// All of a host config's explicit mounts, `-v` then `--mount`, refusing a
/// destination given twice (also by `--tmpfs`).
pub fn parse_all(binds: &[String], mounts: &[Mount], tmpfs: &[String]) -> ApiResult<Vec<Request>> {
    let mut out: Vec<Request> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut claim = |dest: &str| {
        if seen.iter().any(|d| d == dest) {
            return Err(ApiError::invalid(format!("Duplicate mount point: {dest}")));
        }
        seen.push(dest.to_owned());
        Ok(())
    };
    for t in tmpfs {
        if !t.starts_with('/') {
            return Err(config_error("tmpfs", format_args!("invalid mount path: '{t}' mount path must be absolute")));
        }
        if clean(t) == "/" {
            return Err(config_error("tmpfs", "invalid specification: destination can't be '/'"));
        }
        claim(&clean(t))?;
    }
    for b in binds {
        let r = parse_bind(b)?;
        claim(&r.point.destination)?;
        out.push(r);
    }
    for m in mounts {
        let r = parse_mount(m)?;
        claim(&r.point.destination)?;
        out.push(r);
    }
    Ok(out)
}

/// `--volumes-from name[:ro|:rw]`.
pub fn parse_volumes_from(spec: &str) -> ApiResult<(&str, Option<bool>)> {
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((c, "ro")) => Ok((c, Some(false))),
        Some((c, "rw")) => Ok((c, Some(true))),
        Some((_, m)) => Err(ApiError::invalid(format!("invalid mode: {m}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::models::{MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountVolumeOptions};

    #[test]
    fn binds_as_docker_parses_them() {
        let r = parse_bind("/host/dir/:/data:ro,rshared").unwrap().point;
        assert_eq!((r.kind, r.source.as_str(), r.destination.as_str(), r.rw), (Kind::Bind, "/host/dir", "/data", false));
        assert_eq!((r.propagation.as_str(), r.mode.as_str(), r.create_source), ("rshared", "ro,rshared", true));
        let r = parse_bind("/h:/c").unwrap().point;
        assert_eq!(r.propagation, "rprivate");
        assert!(r.rw);
        assert_eq!(parse_bind("vol:/data").unwrap().point.mode, "z");
        assert_eq!(parse_bind("/data").unwrap().point.mode, "");
        let r = parse_bind("vol:/data:nocopy").unwrap().point;
        assert_eq!((r.kind, r.name.as_str(), r.copy_data, r.driver.as_str()), (Kind::Volume, "vol", false, "local"));
        let r = parse_bind("/data").unwrap().point;
        assert_eq!((r.kind, r.name.as_str(), r.copy_data), (Kind::Volume, "", true));
        let r = parse_bind("/data:ro").unwrap().point;
        assert_eq!((r.kind, r.name.as_str(), r.rw), (Kind::Volume, "", false));
        // z/Z are accepted (no SELinux here).
        assert!(parse_bind("v:/d:z").is_ok());
    }

    #[test]
    fn bad_binds_get_dockers_errors() {
        let msg = |s: &str| parse_bind(s).unwrap_err().message;
        assert_eq!(msg("/h:/"), "invalid mount config for type \"bind\": invalid specification: destination can't be '/'");
        assert_eq!(msg("vol:/"), "invalid mount config for type \"volume\": invalid specification: destination can't be '/'");
        assert_eq!(msg("/h:rel"), "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute");
        assert_eq!(msg("/h:/c:bogus"), "invalid mode: bogus");
        assert_eq!(msg("/h:/c:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(msg("a:b:c:d"), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(msg(""), "invalid volume specification: ''");
        let dup = parse_all(&["/a:/x".into(), "v:/x/".into()], &[], &[]).unwrap_err();
        assert_eq!(dup.message, "Duplicate mount point: /x");
        assert!(parse_all(&["/a:/run".into()], &[], &["/run".into()]).is_err());
        assert!(parse_all(&[], &[], &["run".into()]).is_err());
    }

    #[test]
    fn mounts_as_docker_parses_them() {
        let bind = Mount {
            typ: Some(MountType::BIND),
            source: Some("/srv".into()),
            target: Some("/srv".into()),
            read_only: Some(true),
            bind_options: Some(MountBindOptions { propagation: Some(MountBindOptionsPropagationEnum::RSLAVE), ..Default::default() }),
            ..Default::default()
        };
        let p = parse_mount(&bind).unwrap().point;
        assert_eq!((p.kind, p.rw, p.propagation.as_str(), p.create_source), (Kind::Bind, false, "rslave", false));
        let vol = Mount {
            typ: Some(MountType::VOLUME),
            source: Some("named".into()),
            target: Some("/v".into()),
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                labels: Some([("a".to_string(), "b".to_string())].into()),
                driver_config: Some(berth_api::models::MountVolumeOptionsDriverConfig {
                    name: None,
                    options: Some([("type".to_string(), "tmpfs".to_string())].into()),
                }),
                subpath: None,
            }),
            ..Default::default()
        };
        let r = parse_mount(&vol).unwrap();
        assert_eq!((r.point.name.as_str(), r.point.copy_data), ("named", false));
        assert_eq!(r.driver_opts["type"], "tmpfs");
        assert_eq!(r.labels["a"], "b");
        let tmpfs = Mount {
            typ: Some(MountType::TMPFS),
            target: Some("/t".into()),
            tmpfs_options: Some(MountTmpfsOptions { size_bytes: Some(1 << 20), mode: Some(0o1770), options: None }),
            ..Default::default()
        };
        assert_eq!(parse_mount(&tmpfs).unwrap().point.tmpfs_options, "size=1048576,mode=1770");
        // Bad ones.
        let msg = |m: Mount| parse_mount(&m).unwrap_err().message;
        assert_eq!(
            msg(Mount { typ: Some(MountType::BIND), source: Some("rel".into()), target: Some("/x".into()), ..Default::default() }),
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            msg(Mount { typ: Some(MountType::TMPFS), source: Some("/x".into()), target: Some("/x".into()), ..Default::default() }),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            msg(Mount { typ: Some(MountType::VOLUME), target: Some("/".into()), ..Default::default() }),
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
        );
        assert_eq!(
            msg(Mount { typ: Some(MountType::BIND), target: Some("/x".into()), ..Default::default() }),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(parse_volumes_from("c:ro").unwrap(), ("c", Some(false)));
        assert!(parse_volumes_from("c:xx").is_err());
        assert_eq!(clean("/a/./b/../c//"), "/a/c");
    }
}
