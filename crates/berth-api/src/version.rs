//! API versions: berth serves [`MIN`] to [`MAX`]; a request names its version
//! in a `/v1.xx/` path prefix, or none (then [`MAX`]).

/// Oldest API version berth answers.
pub const MIN: ApiVersion = ApiVersion(1, 24);
/// Newest API version berth answers (what docker 28's CLI asks for is 1.50).
pub const MAX: ApiVersion = ApiVersion(1, 53);
/// What `/version` and `/_ping` report as berth's API version.
pub const CURRENT: ApiVersion = ApiVersion(1, 50);

/// A Docker API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('.').ok_or_else(|| VersionError::Malformed(s.to_owned()))?;
        let a = a.parse().map_err(|_| VersionError::Malformed(s.to_owned()))?;
        let b = b.parse().map_err(|_| VersionError::Malformed(s.to_owned()))?;
        Ok(ApiVersion(a, b))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid API version {0:?}")]
    Malformed(String),
    #[error("client version {0} is too new. Maximum supported API version is {MAX}")]
    TooNew(ApiVersion),
    #[error("client version {0} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version")]
    TooOld(ApiVersion),
}

impl VersionError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidParameter
    }
}

/// Split a request path into its API version and the route below it:
/// `/v1.43/containers/json` → (1.43, `/containers/json`); `/info` → (MAX, `/info`).
pub fn split_path(path: &str) -> Result<(ApiVersion, &str), VersionError> {
    let Some(rest) = path.strip_prefix("/v") else { return Ok((MAX, path)) };
    let Some((ver, route)) = rest.split_once('/') else { return Ok((MAX, path)) };
    if !ver.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok((MAX, path));
    }
    let v: ApiVersion = ver.parse()?;
    if v > MAX {
        return Err(VersionError::TooNew(v));
    }
    if v < MIN {
        return Err(VersionError::TooOld(v));
    }
    Ok((v, &path[path.len() - route.len() - 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_split_and_checked() {
        assert_eq!(split_path("/v1.43/containers/json").unwrap(), (ApiVersion(1, 43), "/containers/json"));
        assert_eq!(split_path("/_ping").unwrap(), (MAX, "/_ping"));
        assert_eq!(split_path("/volumes/v1.0/x").unwrap(), (MAX, "/volumes/v1.0/x"));
        assert_eq!(split_path("/v1.99/info").unwrap_err().to_string(), "client version 1.99 is too new. Maximum supported API version is 1.53");
        assert!(matches!(split_path("/v1.12/info"), Err(VersionError::TooOld(_))));
        assert!(matches!(split_path("/v1.x/info"), Err(VersionError::Malformed(_))));
    }
}
