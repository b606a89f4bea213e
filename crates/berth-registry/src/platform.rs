//! Platforms (`os/arch[/variant]`) as `--platform` takes them, normalized
//! as containerd's `platforms` package does, and the choice of one manifest
//! from an index or manifest list.

use std::fmt;

use berth_image::model::{Descriptor, Platform};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {value:?}: {reason}")]
pub struct PlatformError {
    pub value: String,
    pub reason: &'static str,
}

/// A normalized platform to match index entries against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// The host's platform.
    pub fn host() -> PlatformSpec {
        let p = berth_image::model::host_platform();
        PlatformSpec::normalized(&p.os, &p.architecture, p.variant.as_deref())
    }

    /// Parse `linux/arm64/v8`, `linux/amd64`, `arm64` (os defaults to
    /// linux), normalizing aliases (`aarch64`, `x86_64`, `armhf`, ...).
    pub fn parse(s: &str) -> Result<PlatformSpec, PlatformError> {
        let err = |reason| PlatformError { value: s.to_owned(), reason };
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty component"));
        }
        match parts.as_slice() {
            [arch] if !is_os(arch) => Ok(PlatformSpec::normalized("linux", arch, None)),
            [os] => Ok(PlatformSpec::normalized(os, &PlatformSpec::host().architecture, None)),
            [os, arch] => Ok(PlatformSpec::normalized(os, arch, None)),
            [os, arch, variant] => Ok(PlatformSpec::normalized(os, arch, Some(variant))),
            _ => Err(err("expected os/arch[/variant]")),
        }
    }

    fn normalized(os: &str, arch: &str, variant: Option<&str>) -> PlatformSpec {
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_owned(),
            o => o.to_owned(),
        };
        let variant = variant.map(str::to_ascii_lowercase);
        let (architecture, variant) = match arch.to_ascii_lowercase().as_str() {
            "i386" | "i486" | "i586" | "i686" => ("386".to_owned(), None),
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_owned(), variant.filter(|v| v != "v1")),
            "aarch64" | "arm64" => ("arm64".to_owned(), Some(match variant.as_deref() {
                None | Some("8") | Some("v8") => "v8".to_owned(),
                Some(v) => v.to_owned(),
            })),
            "armhf" => ("arm".to_owned(), Some("v7".to_owned())),
            "armel" => ("arm".to_owned(), Some("v6".to_owned())),
            "arm" => ("arm".to_owned(), Some(match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7".to_owned(),
                Some("5") | Some("6") | Some("8") => format!("v{}", variant.unwrap_or_default()),
                Some(v) => v.to_owned(),
            })),
            a => (a.to_owned(), variant),
        };
        PlatformSpec { os, architecture, variant }
    }

    /// Whether an index entry's platform is this one. An entry without a
    /// variant matches any variant asked for except where the architecture
    /// implies one (arm64 → v8, arm → v7).
    pub fn matches(&self, p: &Platform) -> bool {
        let other = PlatformSpec::normalized(&p.os, &p.architecture, p.variant.as_deref());
        other.os == self.os && other.architecture == self.architecture && (other.variant == self.variant || other.variant.is_none())
    }

    /// The best entry of an index for this platform: an exact variant match
    /// first, then one without a variant; for `arm/v7`, `arm/v6` and `v5`
    /// builds run too and are taken last, newest first.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let exact = manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| {
            let o = PlatformSpec::normalized(&p.os, &p.architecture, p.variant.as_deref());
            o == *self
        }));
        if exact.is_some() {
            return exact;
        }
        if let Some(d) = manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| self.matches(p))) {
            return Some(d);
        }
        // Older arm variants run on newer cores.
        if self.architecture == "arm" {
            let mine: u32 = self.variant.as_deref().and_then(|v| v.trim_start_matches('v').parse().ok()).unwrap_or(7);
            for v in (5..mine).rev() {
                let older = PlatformSpec { variant: Some(format!("v{v}")), ..self.clone() };
                if let Some(d) = older.select(manifests) {
                    return Some(d);
                }
            }
        }
        None
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn is_os(s: &str) -> bool {
    matches!(s, "linux" | "windows" | "darwin" | "freebsd" | "netbsd" | "openbsd" | "solaris" | "illumos" | "android" | "ios" | "plan9" | "aix" | "js" | "wasip1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::digest::Digest;

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        let mut d = Descriptor::new(berth_image::model::media::OCI_MANIFEST, Digest::sha256_of(&[n]), 1);
        d.platform = Some(Platform { os: os.into(), architecture: arch.into(), variant: variant.map(Into::into), os_version: None });
        d
    }

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(PlatformSpec::parse("linux/arm64").unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(PlatformSpec::parse("linux/aarch64/v8").unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(PlatformSpec::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(PlatformSpec::parse("linux/arm").unwrap().to_string(), "linux/arm/v7");
        assert_eq!(PlatformSpec::parse("linux/arm/6").unwrap().to_string(), "linux/arm/v6");
        assert_eq!(PlatformSpec::parse("arm64").unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(PlatformSpec::parse("windows/amd64").unwrap().os, "windows");
        assert!(PlatformSpec::parse("linux//v7").is_err());
        assert!(PlatformSpec::parse("a/b/c/d").is_err());
    }

    #[test]
    fn selects_from_an_index() {
        let list = vec![
            entry("linux", "amd64", None, 0),
            entry("linux", "arm", Some("v6"), 1),
            entry("linux", "arm", Some("v7"), 2),
            entry("linux", "arm64", Some("v8"), 3),
            entry("windows", "amd64", None, 4),
            entry("linux", "386", None, 5),
        ];
        let pick = |s: &str| PlatformSpec::parse(s).unwrap().select(&list).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64"), Some(list[0].digest.clone()));
        assert_eq!(pick("linux/arm/v7"), Some(list[2].digest.clone()));
        assert_eq!(pick("linux/arm/v6"), Some(list[1].digest.clone()));
        assert_eq!(pick("linux/arm64"), Some(list[3].digest.clone()));
        assert_eq!(pick("windows/amd64"), Some(list[4].digest.clone()));
        assert_eq!(pick("linux/s390x"), None);
        // arm64 entries written without a variant still match
        let bare = vec![entry("linux", "arm64", None, 9)];
        assert!(PlatformSpec::parse("linux/arm64/v8").unwrap().select(&bare).is_some());
        // v8 arm falls back to v7
        let only7 = vec![entry("linux", "arm", Some("v7"), 7)];
        assert!(PlatformSpec::parse("linux/arm/v8").unwrap().select(&only7).is_some());
        assert!(PlatformSpec::parse("linux/arm/v6").unwrap().select(&only7).is_none());
    }
}
