//! Seccomp as the runtime uses it: compiled in the runtime before fork
//! (cached by profile under the state root), loaded by init with a single
//! syscall.

use std::path::Path;

pub use berth_seccomp::{Program, load};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: {0}")]
    Compile(#[from] berth_seccomp::CompileError),
    #[error("linux.seccomp: SCMP_ACT_NOTIFY needs a seccomp agent at listenerPath, which berth-runtime does not support yet")]
    Notify,
}

/// Compile the spec's seccomp section, if any, through the cache in `cache_dir`.
pub fn plan(spec: &oci_spec::runtime::Spec, cache_dir: &Path) -> Result<Option<Program>, SeccompError> {
    let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else { return Ok(None) };
    let program = berth_seccomp::ProgramCache::new(cache_dir).compile(section)?;
    if program.needs_listener() {
        return Err(SeccompError::Notify);
    }
    Ok(Some(program))
}

/// docker's default profile for docker's default capabilities, as JSON.
pub fn docker_default_json() -> serde_json::Value {
    let caps: Vec<String> = crate::capabilities::DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect();
    let profile = berth_seccomp::docker_default(&caps, berth_seccomp::Arch::native());
    serde_json::to_value(profile).expect("seccomp profile serializes")
}
