//! Capability sets as bit masks, applied with one `capset(2)`.
//!
//! The `caps` crate gives us the names; applying goes through raw syscalls
//! because this runs between fork and exec: one `capset` for effective,
//! permitted and inheritable (instead of a read-modify-write per set), no
//! allocation, and errors that say which step failed.

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// The capability sets of one process, bit `n` = capability number `n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Capability number for a name (`CAP_SYS_ADMIN` or `SYS_ADMIN`, any case).
pub fn from_name(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    caps::Capability::from_str(&full).ok().map(|c| c.index())
}

/// Name of capability number `n` (`CAP_CHOWN`).
pub fn name(n: u8) -> Option<String> {
    caps::all().into_iter().find(|c| c.index() == n).map(|c| c.to_string())
}

fn mask(set: &Option<Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .filter_map(|c| from_name(&c.to_string()))
        .fold(0u64, |m, i| m | (1u64 << i))
}

impl CapSets {
    pub fn from_spec(caps: &LinuxCapabilities) -> CapSets {
        CapSets {
            bounding: mask(caps.bounding()),
            effective: mask(caps.effective()),
            permitted: mask(caps.permitted()),
            inheritable: mask(caps.inheritable()),
            ambient: mask(caps.ambient()),
        }
    }

    /// Every capability the kernel knows (up to `last_cap`), in every set
    /// but ambient: what a process without a capabilities section keeps.
    pub fn full(last_cap: u8) -> CapSets {
        let all = if last_cap >= 63 { u64::MAX } else { (1u64 << (last_cap + 1)) - 1 };
        CapSets { bounding: all, effective: all, permitted: all, inheritable: 0, ambient: 0 }
    }
}

/// Highest capability number the running kernel knows.
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Which step of applying capabilities failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("drop capability {cap} from the bounding set: {errno}")]
    Bounding { cap: u8, errno: nix::Error },
    #[error("set effective, permitted and inheritable capabilities: {errno}")]
    Capset { errno: nix::Error },
    #[error("raise ambient capability {cap}: {errno}")]
    Ambient { cap: u8, errno: nix::Error },
    #[error("set keep-capabilities flag: {errno}")]
    KeepCaps { errno: nix::Error },
}

/// Drop every capability not in `sets.bounding` from the bounding set.
/// Needs CAP_SETPCAP, so it runs before the user switch.
pub fn drop_bounding(sets: &CapSets, last_cap: u8) -> Result<(), CapError> {
    for cap in 0..=last_cap {
        if sets.bounding & (1u64 << cap) == 0 {
            // SAFETY: plain prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let errno = nix::Error::last();
                // EINVAL: the kernel doesn't know this capability; nothing to drop.
                if errno != nix::Error::EINVAL {
                    return Err(CapError::Bounding { cap, errno });
                }
            }
        }
    }
    Ok(())
}

/// Keep permitted capabilities across the setuid to a non-root user.
pub fn set_keep_caps(keep: bool) -> Result<(), CapError> {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) };
    if r != 0 {
        return Err(CapError::KeepCaps { errno: nix::Error::last() });
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Set effective, permitted and inheritable in one `capset`, then the
/// ambient set (cleared, then each asked capability raised).
pub fn apply(sets: &CapSets) -> Result<(), CapError> {
    let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [
        CapData {
            effective: sets.effective as u32,
            permitted: sets.permitted as u32,
            inheritable: sets.inheritable as u32,
        },
        CapData {
            effective: (sets.effective >> 32) as u32,
            permitted: (sets.permitted >> 32) as u32,
            inheritable: (sets.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and data are valid for the duration of the call, laid
    // out as the kernel's __user_cap_header_struct / __user_cap_data_struct[2].
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(CapError::Capset { errno: nix::Error::last() });
    }
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    for cap in 0..64u8 {
        if sets.ambient & (1u64 << cap) != 0 {
            // SAFETY: plain prctl with integer arguments.
            let r = unsafe {
                libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, cap as libc::c_ulong, 0, 0)
            };
            if r != 0 {
                return Err(CapError::Ambient { cap, errno: nix::Error::last() });
            }
        }
    }
    Ok(())
}

/// The capabilities docker grants a container by default.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(from_name("CAP_CHOWN"), Some(0));
        assert_eq!(from_name("sys_admin"), Some(21));
        assert_eq!(from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(from_name("CAP_FLY"), None);
        assert_eq!(name(21).as_deref(), Some("CAP_SYS_ADMIN"));
    }

    #[test]
    fn spec_sets_become_masks() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"],"ambient":[]}"#,
        )
        .unwrap();
        let s = CapSets::from_spec(&caps);
        assert_eq!(s.bounding, (1 << 0) | (1 << 5));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.inheritable, 0);
    }

    #[test]
    fn docker_defaults_are_known_names() {
        for n in DOCKER_DEFAULT {
            assert!(from_name(n).is_some(), "{n}");
        }
        assert_eq!(CapSets::full(40).bounding, (1u64 << 41) - 1);
    }
}
