//! berth's image store.

pub mod compression;
pub mod content;
pub mod digest;
pub mod model;
pub mod reference;
pub mod unpack;

/// What an error means to an API client; the daemon maps each to an HTTP
/// status in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidParameter,
    Conflict,
    Unavailable,
    Internal,
}
