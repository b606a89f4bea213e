//! The Docker Engine API as berth speaks it.
//!
//! - [`models`]: the request and response bodies. They are the types
//!   generated from moby's `api/swagger.yaml` (the `bollard-stubs` crate), so
//!   field names, casing and optionality match what docker clients send and
//!   expect; timestamps are RFC 3339 strings.
//! - [`version`]: which API versions berth serves and how a request's
//!   `/v1.xx/` prefix is negotiated.
//! - [`ErrorKind`] and [`ErrorBody`]: the error classes every layer maps its
//!   errors to, and docker's JSON error body. The HTTP status for each kind is
//!   decided here, once.

pub use bollard_stubs::models;

pub mod version;

use serde::{Deserialize, Serialize};

/// The class of an error, as moby's `errdefs`: decides the HTTP status and
/// the CLI's exit code. Every error type in berth has a `kind()` mapping to
/// one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    NotFound,
    InvalidParameter,
    Conflict,
    Unauthorized,
    Forbidden,
    Unavailable,
    NotImplemented,
    NotModified,
    Internal,
}

impl ErrorKind {
    /// The HTTP status docker answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::InvalidParameter => 400,
            ErrorKind::Conflict => 409,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::NotImplemented => 501,
            ErrorKind::NotModified => 304,
            ErrorKind::Internal => 500,
        }
    }

    /// The kind an HTTP status stands for (client side).
    pub fn from_http_status(status: u16) -> ErrorKind {
        match status {
            404 => ErrorKind::NotFound,
            400 => ErrorKind::InvalidParameter,
            409 => ErrorKind::Conflict,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            503 => ErrorKind::Unavailable,
            501 => ErrorKind::NotImplemented,
            304 => ErrorKind::NotModified,
            _ => ErrorKind::Internal,
        }
    }
}

/// docker's error body: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_http_status() {
        for k in [
            ErrorKind::NotFound,
            ErrorKind::InvalidParameter,
            ErrorKind::Conflict,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::Unavailable,
            ErrorKind::NotImplemented,
            ErrorKind::NotModified,
            ErrorKind::Internal,
        ] {
            assert_eq!(ErrorKind::from_http_status(k.http_status()), k);
        }
    }

    #[test]
    fn create_body_reads_what_the_docker_cli_sends() {
        let body = r#"{"Hostname":"","Image":"busybox","Cmd":["true"],"HostConfig":{"Memory":67108864,"AutoRemove":true,"RestartPolicy":{"Name":"no"}},"NetworkingConfig":{"EndpointsConfig":{}}}"#;
        let b: models::ContainerCreateBody = serde_json::from_str(body).unwrap();
        assert_eq!(b.image.as_deref(), Some("busybox"));
        let hc = b.host_config.unwrap();
        assert_eq!(hc.memory, Some(67108864));
        assert_eq!(hc.auto_remove, Some(true));
    }
}
