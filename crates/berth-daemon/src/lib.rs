//! berthd: the Docker Engine API over berth's runtime, shims and image store.
//!
//! ```text
//! server (axum, unix socket, /v1.xx/ prefixes)
//!   └─ routes::{system, containers, exec, images}   one router per resource
//!        └─ Daemon                                  records, image store, events
//!             ├─ containers::store                  atomic records, names
//!             ├─ containers::oci                    record → OCI spec (docker's defaults)
//!             ├─ containers::run                    shims: start, stop, attach, logs, exec
//!             ├─ berth_image::ImageStore            images, layers, snapshots
//!             └─ volumes (berth_volume::VolumeStore) volumes, a container's mounts
//! ```

#![recursion_limit = "256"]

pub mod cli;
pub mod config;
pub mod containers;
pub mod error;
pub mod events;
pub mod network;
pub mod registry;
pub mod routes;
pub mod server;
pub mod shim;
pub mod system;
pub mod volumes;

use std::sync::Arc;

use berth_image::store::ImageStore;

use crate::config::Config;
use crate::containers::store::ContainerStore;
use crate::events::Events;

/// The daemon's state, shared by every request.
pub struct Daemon {
    pub config: Config,
    pub containers: ContainerStore,
    pub images: Arc<ImageStore>,
    pub events: Events,
    pub waits: crate::containers::ops::Waits,
    pub pending: crate::containers::run::PendingAttaches,
    pub backoffs: std::sync::Mutex<std::collections::HashMap<String, std::time::Duration>>,
    pub execs: crate::containers::exec::Execs,
    pub started: std::time::Instant,
    pub network: crate::network::Networking,
    /// The registry client (pull, push, login, search).
    pub registry: berth_registry::Client,
    pub volumes: Arc<berth_volume::VolumeStore>,
}
