//! berth-runtime: an OCI runtime. A bundle (config.json + rootfs) in, an
//! isolated, limited container out.
//!
//! [`container::Runtime`] is the library face (used by berth's shim);
//! [`cli`] is runc's command line over it.

pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod defaults;
pub mod hooks;
pub mod init;
pub mod log;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;

pub use container::{CreateOptions, Created, ExecOptions, Runtime, StateReport};

/// docker's default seccomp profile as JSON, for `spec`.
pub fn default_seccomp_json() -> Option<serde_json::Value> {
    Some(seccomp::docker_default_json())
}

/// What `features` prints.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": spec::OCI_VERSION_MIN,
        "ociVersionMax": spec::OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "loud",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave",
            "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": (0..=capabilities::last_cap()).filter_map(capabilities::name).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"io.github.berth.runtime.version": env!("CARGO_PKG_VERSION")}
    })
}
