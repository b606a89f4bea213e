//! The runtime's side of cgroups: which cgroup a container gets, with the
//! device rules every container needs, created and limited before init runs.

use berth_cgroups::{Cgroup, CgroupPath, FreezerState, Hierarchy};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

/// Where containers go when the spec names no cgroup, or a relative one.
pub const DEFAULT_PARENT: &str = "berth";

#[derive(Debug, thiserror::Error)]
pub enum CgroupsError {
    #[error("linux.cgroupsPath: {0}")]
    Path(#[from] berth_cgroups::PathError),
    #[error("cgroups: {0}")]
    Hierarchy(#[from] berth_cgroups::HierarchyError),
    #[error("cgroups: {0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error("{0}")]
    Apply(#[from] berth_cgroups::ApplyError),
}

/// Devices every container may use whatever its spec's rules say, because
/// the runtime itself creates them (runc's list).
fn default_allowed() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_owned()));
        r
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),   // null
        rule(C, Some(1), Some(5), "rwm"),   // zero
        rule(C, Some(1), Some(7), "rwm"),   // full
        rule(C, Some(1), Some(8), "rwm"),   // random
        rule(C, Some(1), Some(9), "rwm"),   // urandom
        rule(C, Some(5), Some(0), "rwm"),   // tty
        rule(C, Some(5), Some(1), "rwm"),   // console
        rule(C, Some(5), Some(2), "rwm"),   // ptmx
        rule(C, Some(136), None, "rwm"),    // pts/*
    ]
}

/// The spec's resources with the default device rules appended (the last
/// matching rule wins, so they hold even after a deny-all).
pub fn effective_resources(spec: &Spec) -> LinuxResources {
    let mut r = spec.linux().as_ref().and_then(|l| l.resources().clone()).unwrap_or_default();
    let mut devices = r.devices().clone().unwrap_or_default();
    devices.extend(default_allowed());
    r.set_devices(Some(devices));
    r
}

/// Create the container's cgroup and apply its limits; on failure nothing
/// is left.
pub fn create(spec: &Spec, id: &str) -> Result<Cgroup, CgroupsError> {
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let path = CgroupPath::from_spec(cgroups_path.as_deref(), DEFAULT_PARENT, id)?;
    let hierarchy = Hierarchy::detect()?;
    let cg = Cgroup::create(hierarchy, path)?;
    if let Err(e) = cg.apply(&effective_resources(spec)) {
        let _ = cg.destroy();
        return Err(e.into());
    }
    Ok(cg)
}

pub fn is_frozen(cg: &Cgroup) -> bool {
    matches!(cg.freezer_state(), Ok(FreezerState::Frozen | FreezerState::Freezing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_devices_follow_the_spec_rules() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]}}}"#,
        )
        .unwrap();
        let r = effective_resources(&spec);
        let d = r.devices().as_ref().unwrap();
        assert!(!d[0].allow());
        assert!(d.iter().skip(1).all(|r| r.allow()));
        assert!(d.iter().any(|r| r.major() == Some(1) && r.minor() == Some(3)));
    }
}
