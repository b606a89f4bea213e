//! berth's image store.

pub mod api;
pub mod archive;
pub mod change;
pub mod commit;
pub mod compression;
pub mod content;
pub mod digest;
#[cfg(test)]
mod fuzz_tests;
pub mod layer;
pub mod model;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod tarwrite;
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
