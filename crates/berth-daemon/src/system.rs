//! `/version`, `/info`, `/system/df`: what the daemon says about itself.

use serde_json::{Value, json};

use crate::Daemon;
use crate::containers::state::Status;
use crate::error::ApiResult;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn uname() -> (String, String) {
    let u = nix::sys::utsname::uname().ok();
    let release = u.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let machine = u.as_ref().map(|u| u.machine().to_string_lossy().into_owned()).unwrap_or_default();
    (release, machine)
}

/// Go's GOARCH name for the machine.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub fn version_json() -> Value {
    let (kernel, _) = uname();
    let api = berth_api::version::CURRENT.to_string();
    let min = berth_api::version::MIN.to_string();
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {"ApiVersion": api, "MinAPIVersion": min, "Os": "linux", "Arch": goarch(), "KernelVersion": kernel}
        }],
        "Version": VERSION,
        "ApiVersion": api,
        "MinAPIVersion": min,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": goarch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

fn cgroup_version() -> &'static str {
    match berth_cgroups::Hierarchy::detect().map(|h| h.mode()) {
        Ok(berth_cgroups::Mode::Unified) => "2",
        _ => "1",
    }
}

fn os_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

impl Daemon {
    pub async fn info(&self) -> ApiResult<Value> {
        let (kernel, machine) = uname();
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        for h in self.containers.all() {
            match h.lock().await.state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        let images = self.images.clone();
        let image_count = tokio::task::spawn_blocking(move || images.records().map(|r| r.len()).unwrap_or(0)).await?;
        let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
        let v2 = cgroup_version() == "2";
        let mut security_options = vec!["name=seccomp,profile=builtin"];
        if v2 {
            security_options.push("name=cgroupns");
        }
        Ok(json!({
            "ID": "",
            "Containers": running + paused + stopped,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": stopped,
            "Images": image_count,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": Value::Null,
                         "Log": ["json-file", "local", "none", "syslog"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "KernelMemory": false,
            "KernelMemoryTCP": false,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "BridgeNfIptables": false,
            "BridgeNfIp6tables": false,
            "Debug": self.config.debug,
            "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
            "OomKillDisable": !v2,
            "NGoroutines": 0,
            "SystemTime": berth_image::model::now_rfc3339(),
            "LoggingDriver": self.config.log_driver,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel,
            "OperatingSystem": os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": crate::registry::info_json(&self.config.registry),
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total(),
            "GenericResources": Value::Null,
            "DockerRootDir": self.config.data_root,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": VERSION,
            "Runtimes": {"berth-runtime": {"path": "berth-runtime"}},
            "DefaultRuntime": "berth-runtime",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": Value::Null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": security_options,
            "Warnings": Value::Null,
        }))
    }
}
