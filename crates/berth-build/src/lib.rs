//! berth-build: Dockerfile builds.
//!
//! ```text
//! parser       text → Nodes (directives, continuations, heredocs)    pure
//! instruction  Nodes → typed Instructions grouped in stages          pure
//! expand       variable substitution with ARG/ENV scoping            pure
//! ignore       .dockerignore patterns                                pure
//! context      the build context on disk, checksums of COPY sources
//! builder      stages → images: cache, layers, history, output
//! exec         one RUN step in a container on berth-runtime (its network from the daemon)
//! ```

pub mod expand;
pub mod ignore;
pub mod instruction;
pub mod parser;
#[cfg(feature = "builder")]
pub mod builder;
pub mod context;
#[cfg(feature = "builder")]
pub mod exec;
#[cfg(feature = "builder")]
pub mod fetch;
#[cfg(feature = "builder")]
pub mod fsops;
