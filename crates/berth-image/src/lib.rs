//! berth's image store: images as docker has them, layers shared between
//! images and containers through overlayfs, content addressed by sha256,
//! and interchangeable with docker's own files.
//!
//! The daemon opens one [`store::ImageStore`] on its data root and calls,
//! per Engine API route:
//!
//! | route | call |
//! |---|---|
//! | `POST /images/create?fromSrc` (import) | [`store::ImageStore::import`] |
//! | `GET /containers/{id}/export` | [`store::ImageStore::export_rootfs`] |
//! | `GET /images/get` (save) | [`store::ImageStore::save`] |
//! | `POST /images/load` | [`store::ImageStore::load`] |
//! | `GET /containers/{id}/changes` | [`store::ImageStore::diff`] |
//! | `POST /commit` | [`store::ImageStore::commit`] |
//! | `GET /images/{name}/history` | [`store::ImageStore::history`] |
//! | `POST /images/{name}/tag` | [`store::ImageStore::tag`] |
//! | `DELETE /images/{name}` | [`store::ImageStore::remove`] |
//! | `POST /images/prune` | [`store::ImageStore::prune`] |
//! | `GET /images/json` | [`store::ImageStore::list`] |
//! | `GET /images/{name}/json` | [`store::ImageStore::inspect`] |
//! | `GET /system/df` (images) | [`store::ImageStore::disk_usage`] |
//! | container create / rm | [`store::ImageStore::prepare_container`], [`snapshot::Snapshotter::remove`] |
//!
//! Each module has its own error enum with a `kind()` ([`ErrorKind`]) for
//! the API layer to map to an HTTP status; the JSON shapes the routes
//! return are in [`api`].

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
pub mod quota;
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
    Unauthorized,
    Unavailable,
    NotImplemented,
    Internal,
}
