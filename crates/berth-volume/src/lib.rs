//! berth's volumes: docker's `local` driver.
//!
//! A volume is a directory `<data-root>/volumes/<name>/_data` and a record
//! `<data-root>/volumes/<name>/volume.json` next to it. Its lifecycle:
//!
//! ```text
//! create ──► reference(container) ──► mount(container) ─► unmount(container) ──► dereference ──► remove
//!  (record      (a container's          (`--opt type=…`        (the last user          (in use until
//!   written      record names it)        mounted at first       unmounts it)            no container
//!   atomically)                          use)                                           names it)
//! ```
//!
//! - [`name`]: docker's volume names, and generated names for anonymous volumes.
//! - [`options`]: the local driver's `--opt type=… o=… device=…` and how they mount.
//! - [`store`]: the records, references and mounts, repaired at open after a crash.
//! - [`copy`]: docker's copy-up of image content into a new volume, and usage.

pub mod copy;
pub mod name;
pub mod options;
pub mod store;

pub use store::{Volume, VolumeError, VolumeStore};

/// The label docker puts on volumes made for one container (`-v /data`,
/// image `VOLUME`): prune removes only these unless asked for all.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver berth has.
pub const LOCAL: &str = "local";
