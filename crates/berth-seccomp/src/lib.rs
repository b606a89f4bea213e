//! Seccomp for berth containers.
//!
//! The flow, from a container's configuration to its init:
//!
//! 1. The daemon picks a profile: docker's default ([`docker_default`]), or
//!    the user's file in docker's format ([`parse_docker_profile`]), resolved
//!    against the container's capabilities and architecture. The result is
//!    the OCI `linux.seccomp` section of config.json.
//! 2. The runtime compiles that section in its own process ([`compile`], or
//!    [`ProgramCache::compile`] to reuse earlier results): libseccomp builds
//!    the BPF program, and the result is plain data, a [`Program`].
//! 3. The container's init, between fork and exec, installs it with [`load`]:
//!    one syscall, no allocation, no lock. If the profile uses
//!    `SCMP_ACT_NOTIFY`, `load` returns the listener fd for the seccomp agent.

mod arch;
mod bpf;
mod cache;
mod compile;
mod default_profile;
mod load;
mod profile;
#[cfg(test)]
mod testutil;

pub use arch::Arch;
pub use cache::ProgramCache;
pub use compile::{CompileError, MAX_INSTRUCTIONS, Program, compile};
pub use default_profile::docker_default;
pub use load::{LoadError, load};
pub use profile::{
    Architectures, Condition, ConditionalRule, DockerProfile, KernelVersion, ProfileError, Target,
    parse_docker_profile,
};
