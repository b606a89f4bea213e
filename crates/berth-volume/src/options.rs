//! The local driver's options, as docker's: `type`, `device`, `o` (and
//! `size`, which needs project quotas berth's volumes don't have). With
//! `type` and `device` the volume is a mount (tmpfs, a bind, a block
//! device...) made on `_data` when its first user starts.

use std::collections::BTreeMap;

use berth_api::ErrorKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("invalid option: {0:?}")]
    Unknown(String),
    #[error("missing required option: {0:?}")]
    Missing(&'static str),
    #[error("quota size requested but no quota support")]
    NoQuota,
}

impl OptionsError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

/// What to mount on a volume's `_data`, when its options ask for a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Filesystem type (`tmpfs`, `ext4`, `none` for a bind...).
    pub fs_type: String,
    pub device: String,
    /// The `o=` list, split at commas.
    pub options: Vec<String>,
}

impl MountOptions {
    pub fn as_mount(&self) -> berth_sys::mount::Mount {
        berth_sys::mount::Mount::new(self.fs_type.clone(), self.device.clone(), self.options.clone())
    }
}

/// Check a volume's options as docker's local driver does, and say what
/// they mount (None: a plain directory).
pub fn parse(opts: &BTreeMap<String, String>) -> Result<Option<MountOptions>, OptionsError> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(OptionsError::Unknown(k.clone()));
        }
    }
    if opts.contains_key("size") {
        return Err(OptionsError::NoQuota);
    }
    let get = |k: &str| opts.get(k).filter(|v| !v.is_empty());
    let (fs_type, device, o) = (get("type"), get("device"), get("o"));
    match (fs_type, device) {
        (None, None) if o.is_none() => Ok(None),
        (Some(_), None) => Err(OptionsError::Missing("device")),
        (None, _) => Err(OptionsError::Missing("type")),
        (Some(t), Some(d)) => Ok(Some(MountOptions {
            fs_type: t.clone(),
            device: d.clone(),
            options: o.map(|o| o.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_as_dockers_local_driver() {
        assert_eq!(parse(&opts(&[])).unwrap(), None);
        let m = parse(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m,uid=1000")])).unwrap().unwrap();
        assert_eq!(m.fs_type, "tmpfs");
        assert_eq!(m.options, ["size=1m", "uid=1000"]);
        let b = parse(&opts(&[("type", "none"), ("device", "/srv/x"), ("o", "bind")])).unwrap().unwrap();
        assert!(berth_sys::mount::parse_options(&b.options).is_bind());
        assert_eq!(parse(&opts(&[("foo", "1")])).unwrap_err().to_string(), "invalid option: \"foo\"");
        assert_eq!(parse(&opts(&[("type", "tmpfs")])).unwrap_err().to_string(), "missing required option: \"device\"");
        assert_eq!(parse(&opts(&[("device", "/dev/sdz")])).unwrap_err().to_string(), "missing required option: \"type\"");
        assert_eq!(parse(&opts(&[("o", "size=1m")])).unwrap_err().to_string(), "missing required option: \"type\"");
        assert_eq!(parse(&opts(&[("size", "1g")])).unwrap_err(), OptionsError::NoQuota);
    }
}
