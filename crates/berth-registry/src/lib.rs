//! berth's registry side: a distribution client (pull, push, login, search,
//! tags, multi-platform manifest lists) over the image store, and a
//! registry server of its own (`berth registry serve`).
//!
//! The daemon keeps one [`Client`] and calls, per Engine API route:
//!
//! | route / command | call | progress |
//! |---|---|---|
//! | `POST /images/create?fromImage=` (`pull`) | [`Client::pull`] | [`progress::Progress`] sink of docker's JSON lines |
//! | `POST /images/{name}/push` | [`Client::push`] | same |
//! | `POST /auth` (`login`) | [`Client::login`], then [`auth::DockerConfigFile::store`] | — |
//! | `GET /images/search` | [`Client::search`] | — |
//! | `X-Registry-Auth` header | [`auth::AuthConfig::from_header`] | — |
//! | `manifest create/annotate/inspect/push/rm` | [`lists::ManifestLists`], [`Client::inspect`] | — |
//! | `berth registry serve` | [`server::serve`] with [`server::ServerConfig`] | — |
//! | `berth registry gc` | [`server::gc()`] | — |
//!
//! Errors carry a `kind()` ([`berth_image::ErrorKind`]) for the daemon's
//! one mapping to HTTP statuses.

pub mod auth;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod lists;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod server;

pub use client::Client;
pub use endpoint::RegistryOptions;
pub use error::Error;
pub use pull::{PullOptions, PullReport};
pub use push::{PushOptions, PushReport};

/// Run blocking file work (content store, layer unpack) off the runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task panicked")
}
