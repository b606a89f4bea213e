//! Errors of the registry client (pull, push, login, search, manifest
//! lists), with docker's wording where scripts grep for it.

use std::path::PathBuf;

use berth_image::ErrorKind;
use berth_image::content::ContentError;
use berth_image::digest::Digest;
use berth_image::layer::LayerError;
use berth_image::reference::ReferenceError;
use berth_image::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{source}")]
    Reference {
        #[from]
        source: ReferenceError,
    },
    #[error("{source}")]
    Platform {
        #[from]
        source: crate::platform::PlatformError,
    },
    #[error("{source}")]
    Auth {
        #[from]
        source: crate::auth::AuthError,
    },
    /// The registry could not be reached (DNS, connection, TLS, reset).
    #[error("{method} \"{url}\": {message}")]
    Connect { method: String, url: String, message: String },
    #[error("{message}")]
    Unauthorized { registry: String, message: String },
    #[error("{message}")]
    NotFound { message: String },
    /// Any other error status, with the registry's OCI error if it sent one.
    #[error("{method} {url}: {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Registry { method: String, url: String, status: u16, message: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingManifest { platform: String },
    #[error("image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch { reference: String, wanted: String, actual: String },
    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    UnsupportedManifest { reference: String, media_type: String },
    #[error("invalid manifest {what}: {message}")]
    InvalidManifest { what: String, message: String },
    #[error("{source}")]
    Store {
        #[from]
        source: StoreError,
    },
    #[error("{source}")]
    Content {
        #[from]
        source: ContentError,
    },
    #[error("{source}")]
    Layer {
        #[from]
        source: LayerError,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("tls for {host}: {message}")]
    Tls { host: String, message: String },
    #[error("pull of {reference} was cancelled")]
    Cancelled { reference: String },
    #[error("{message}")]
    ManifestList { message: String },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Reference { source } => source.kind(),
            Error::Platform { .. } => ErrorKind::InvalidParameter,
            Error::Auth { source } => source.kind(),
            Error::Connect { .. } => ErrorKind::Unavailable,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::NotFound { .. } | Error::NoMatchingManifest { .. } | Error::PlatformMismatch { .. } => ErrorKind::NotFound,
            Error::Registry { status, .. } => match status {
                400 | 405 | 413 | 416 => ErrorKind::InvalidParameter,
                404 => ErrorKind::NotFound,
                401 | 403 => ErrorKind::Unauthorized,
                429 | 502 | 503 | 504 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Error::DigestMismatch { .. } | Error::UnsupportedManifest { .. } | Error::InvalidManifest { .. } => ErrorKind::InvalidParameter,
            Error::Store { source } => source.kind(),
            Error::Content { source } => source.kind(),
            Error::Layer { source } => source.kind(),
            Error::Io { .. } | Error::Tls { .. } => ErrorKind::Internal,
            Error::Cancelled { .. } => ErrorKind::Unavailable,
            Error::ManifestList { .. } => ErrorKind::InvalidParameter,
        }
    }
}

/// `code: message` of the first error in an OCI error body, or the body's
/// first line when it is not one.
pub(crate) fn oci_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<E>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| if e.message.is_empty() { e.code.to_ascii_lowercase() } else { format!("{}: {}", e.code.to_ascii_lowercase().replace('_', " "), e.message) })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body).lines().next().unwrap_or_default().chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_like_dockers() {
        assert_eq!(
            oci_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(oci_message(b"<html>bad gateway</html>\nmore"), "<html>bad gateway</html>");
        assert_eq!(Error::NoMatchingManifest { platform: "linux/arm64/v8".into() }.to_string(), "no matching manifest for linux/arm64/v8 in the manifest list entries");
        assert_eq!(Error::NoMatchingManifest { platform: String::new() }.kind(), ErrorKind::NotFound);
    }
}
