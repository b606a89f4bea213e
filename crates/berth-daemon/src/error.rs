//! The one place where an error becomes an HTTP response: its kind decides
//! the status (berth_api::ErrorKind::http_status), its message goes into
//! docker's `{"message": ...}` body. Internal errors keep their detail in
//! the daemon's log, not in the response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_api::{ErrorBody, ErrorKind};

/// An error on its way to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidParameter, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotImplemented, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.kind == ErrorKind::Internal {
            tracing::error!(message = %self.message, "internal error");
        } else {
            tracing::debug!(status = status.as_u16(), message = %self.message, "request failed");
        }
        (status, axum::Json(ErrorBody { message: self.message })).into_response()
    }
}

/// berth-image's error classes, in API terms.
pub fn image_kind(k: berth_image::ErrorKind) -> ErrorKind {
    use berth_image::ErrorKind as I;
    match k {
        I::NotFound => ErrorKind::NotFound,
        I::InvalidParameter => ErrorKind::InvalidParameter,
        I::Conflict => ErrorKind::Conflict,
        I::Unauthorized => ErrorKind::Unauthorized,
        I::Unavailable => ErrorKind::Unavailable,
        I::NotImplemented => ErrorKind::NotImplemented,
        I::Internal => ErrorKind::Internal,
    }
}

impl From<berth_image::store::StoreError> for ApiError {
    fn from(e: berth_image::store::StoreError) -> ApiError {
        ApiError::new(image_kind(e.kind()), e.to_string())
    }
}

impl From<berth_image::archive::ArchiveError> for ApiError {
    fn from(e: berth_image::archive::ArchiveError) -> ApiError {
        ApiError::new(image_kind(e.kind()), e.to_string())
    }
}

impl From<berth_api::version::VersionError> for ApiError {
    fn from(e: berth_api::version::VersionError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("background task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
