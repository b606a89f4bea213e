//! Image references, parsed and normalized as docker does
//! (`busybox` → `docker.io/library/busybox:latest`,
//! `host:port/ns/name:tag@sha256:...`).
//!
//! Grammar (distribution's `reference` package):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain "/"] component ("/" component)*
//! domain     := host [":" port]
//! component  := [a-z0-9]+ (separator [a-z0-9]+)*     separator := [_.] | "__" | "-"+
//! tag        := [\w][\w.-]{0,127}
//! ```

use std::fmt;

use crate::ErrorKind;
use crate::digest::{Digest, DigestError};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format { reference: String },
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase { name: String },
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    HexName { name: String },
    #[error("repository name must not be more than 255 characters")]
    NameTooLong { name: String },
    #[error("invalid reference format: {source}")]
    Digest { source: DigestError },
}

impl ReferenceError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

/// A normalized reference: domain, path, and a tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse as `docker pull` does: normalize the name and add `:latest`
    /// when neither tag nor digest is given.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Parse and normalize without adding a default tag.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        let format = || ReferenceError::Format { reference: s.to_owned() };
        if s.is_empty() {
            return Err(format());
        }
        if is_full_hex(s) {
            return Err(ReferenceError::HexName { name: s.to_owned() });
        }
        let (rest, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(|source| ReferenceError::Digest { source })?)),
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t) {
                return Err(format());
            }
        let (domain, path) = split_domain(name);
        if !domain.is_empty() && !valid_domain(domain) {
            return Err(format());
        }
        if path.is_empty() || !path.split('/').all(valid_component_any_case) {
            return Err(format());
        }
        let mut path = path.to_owned();
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            let shown = if domain.is_empty() && !path.contains('/') { format!("{OFFICIAL_PREFIX}{path}") } else { path };
            return Err(ReferenceError::Uppercase { name: shown });
        }
        let mut domain = if domain.is_empty() { DEFAULT_DOMAIN.to_owned() } else { domain.to_owned() };
        if domain == LEGACY_DOMAIN {
            domain = DEFAULT_DOMAIN.to_owned();
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_PREFIX}{path}");
        }
        if domain.len() + 1 + path.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong { name: name.to_owned() });
        }
        Ok(Reference { domain, path, tag: tag.map(str::to_owned), digest })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `foo/bar`, `quay.io/x/y`: the name as docker shows it.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix(OFFICIAL_PREFIX).filter(|p| !p.contains('/')).unwrap_or(&self.path).to_owned()
        } else {
            self.name()
        }
    }

    /// This reference with only its name and `tag`.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: Some(tag.to_owned()), digest: None }
    }

    /// This reference with only its name and `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: Some(digest) }
    }

    /// The name without tag or digest.
    pub fn name_only(&self) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: None }
    }

    /// `busybox:latest`, `foo/bar@sha256:...`: the string docker shows in
    /// RepoTags and RepoDigests.
    pub fn familiar(&self) -> String {
        self.render(&self.familiar_name())
    }

    fn render(&self, name: &str) -> String {
        let mut s = name.to_owned();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.name()))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

fn is_full_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Split `name` into (domain, path) as docker's `splitDockerDomain`: the
/// first component is a domain when it has a `.` or `:`, is `localhost`, or
/// has upper-case letters.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("", name),
    }
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A path component; case is checked apart so that upper case gets its own
/// message.
fn valid_component_any_case(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_alphanumeric();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: "_", "__", ".", or a run of "-".
        let start = i;
        if b[i] == b'-' {
            while i < b.len() && b[i] == b'-' {
                i += 1;
            }
        } else if b[i] == b'_' {
            i += 1;
            if i < b.len() && b[i] == b'_' {
                i += 1;
            }
        } else if b[i] == b'.' {
            i += 1;
        } else {
            return false;
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [IPv6]:port
        let Some((h, after)) = rest.split_once(']') else { return false };
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => return !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            None => return after.is_empty(),
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return false;
        }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("foo/bar:1.0"), "docker.io/foo/bar:1.0");
        assert_eq!(norm("index.docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("localhost:5000/ns/name:tag"), "localhost:5000/ns/name:tag");
        assert_eq!(norm("[::1]:5000/x:y"), "[::1]:5000/x:y");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(norm(&format!("host:5000/ns/name:tag@{d}")), format!("host:5000/ns/name:tag@{d}"));
        assert_eq!(norm(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        assert_eq!(norm("a__b-c---e/f_g.h"), "docker.io/a__b-c---e/f_g.h:latest");
    }

    #[test]
    fn familiar_forms() {
        assert_eq!(Reference::parse("busybox").unwrap().familiar(), "busybox:latest");
        assert_eq!(Reference::parse("docker.io/foo/bar:x").unwrap().familiar(), "foo/bar:x");
        assert_eq!(Reference::parse("docker.io/library/a/b").unwrap().familiar(), "library/a/b:latest");
        assert_eq!(Reference::parse("quay.io/a/b:c").unwrap().familiar(), "quay.io/a/b:c");
    }

    #[test]
    fn rejects_with_docker_messages() {
        let e = Reference::parse("Busybox").unwrap_err();
        assert_eq!(e.to_string(), "invalid reference format: repository name (library/Busybox) must be lowercase");
        let e = Reference::parse("foo/Bar").unwrap_err();
        assert_eq!(e.to_string(), "invalid reference format: repository name (foo/Bar) must be lowercase");
        for bad in ["", ":tag", "a:", "a::b", "-a", "a-", "a..b", "a/", "/a", "a//b", "a:-x", "a@sha256:zz", "a b", "a___b", "a.-b", "host:/a", "a:b:c"] {
            let e = Reference::parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid reference format"), "{bad}: {e}");
        }
        assert!(matches!(Reference::parse(&"a".repeat(64)), Err(ReferenceError::HexName { .. })));
        assert!(matches!(Reference::parse(&"a".repeat(300)), Err(ReferenceError::NameTooLong { .. })));
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }
}
